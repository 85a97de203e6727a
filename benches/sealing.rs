//! Sealing cost, printed as figures: sequential Get round trips per second over Basic,
//! over NTLM with message encryption and (feature `kerberos`, with a KDC) over Kerberos
//! with message encryption, all against one simulator in the same run, and over CredSSP
//! (every message encrypted with its inner TLS session) beside Basic against a second
//! simulator in HTTPS mode (CredSSP needs HTTPS), alternating (Basic, NTLM, Basic over
//! HTTPS, CredSSP, Kerberos, Basic, ...) so that drift on a shared machine affects all
//! alike; medians over the rounds, ratios against Basic (target: sealed >= 70% of Basic;
//! CredSSP also against Basic over HTTPS).
//! CPU per round trip is this process's user + system time (`/proc/self/stat`, 10 ms
//! ticks), which holds the client and the simulator both. Then seal + frame + parse +
//! unseal MB/s (NTLM).
//!
//! `cargo bench --bench sealing` (Basic and NTLM). With Kerberos, against a throwaway MIT
//! KDC on loopback:
//!
//! ```text
//! eval "$(tests/kdc/setup.sh)"
//! cargo bench --features kerberos --bench sealing
//! kill $TOKIO_WINRM_KDC_PID
//! ```
//!
//! Without a KDC (or without the feature) the Kerberos row says why it was skipped.
//! `SEALING_BENCH_ROUNDS` sets the round trips per measurement (default 2000),
//! `SEALING_BENCH_REPEATS` the rounds per scheme (default 5).

use std::time::{Duration, Instant};

use tokio_winrm::{Auth, Client, Resource};
use winrm_simulator::{SimConfig, SimKerberos, SimTls, Simulator};
use wsman_protocol::encryption as sealing;
use wsman_protocol::security::ntlm::NtlmContext;

/// This process's CPU seconds so far (user + system, all threads; USER_HZ = 100).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of proc_pid_stat(5); `after` starts at field 3.
    (tick(11) + tick(12)) / 100.0
}

/// One measurement: a new client (its handshake and 50 warm-up Gets not counted), then
/// `rounds` sequential Gets. Returns (round trips per second, CPU ms per round trip).
/// `ca`: the PEM CA an `https://` endpoint's certificate is checked against.
async fn round_trips(endpoint: &str, ca: Option<&str>, auth: Auth, rounds: usize) -> (f64, f64) {
    let mut builder = Client::builder(endpoint)
        .auth(auth)
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(10));
    if let Some(ca) = ca {
        builder = builder
            .add_root_certificate_pem(ca.as_bytes())
            .only_added_roots(true);
    }
    let client = builder.build().expect("client");
    let res = Resource::wmi("root/cimv2", "Win32_OperatingSystem");
    for _ in 0..50 {
        client.get(&res).await.expect("warm-up get");
    }
    let (start, cpu) = (Instant::now(), cpu_secs());
    for _ in 0..rounds {
        client.get(&res).await.expect("get");
    }
    let (wall, cpu) = (start.elapsed().as_secs_f64(), cpu_secs() - cpu);
    (rounds as f64 / wall, 1000.0 * cpu / rounds as f64)
}

/// A simulator in HTTPS mode with CredSSP on (a throwaway self-signed certificate for
/// `localhost`), and that certificate in PEM for the clients to trust.
async fn https_credssp_simulator() -> (Simulator, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    let tls = SimTls::from_der(vec![cert.der().to_vec()], key.serialize_der()).expect("tls");
    let sim = Simulator::start_with(SimConfig {
        log_requests: false,
        tls: Some(tls),
        credssp: true,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    (sim, cert.pem())
}

/// Where a row runs: the endpoint and, for `https://`, the CA to trust.
type Target<'a> = (&'a str, Option<&'a str>);

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The Kerberos client and the simulator's acceptor, from the environment that
/// `tests/kdc/setup.sh` prints; `Err` says why Kerberos is skipped.
#[cfg(feature = "kerberos")]
fn kerberos_setup() -> Result<(Auth, SimKerberos), String> {
    let Ok(addr) = std::env::var("TOKIO_WINRM_KDC") else {
        return Err("skipped: no KDC (run under tests/kdc/setup.sh)".into());
    };
    let var = |name: &str| std::env::var(name).map_err(|_| format!("skipped: {name} is not set"));
    let (realm, keytab) = (
        var("TOKIO_WINRM_KDC_REALM")?,
        var("TOKIO_WINRM_KDC_KEYTAB")?,
    );
    let acceptor = SimKerberos::from_keytab(&keytab, "HTTP/localhost")
        .map_err(|e| format!("skipped: keytab {keytab}: {e}"))?;
    let auth = Auth::kerberos("vagrant", "vagrant")
        .kerberos_options(tokio_winrm::KerberosOptions::new(&addr, &realm));
    Ok((auth, acceptor))
}

#[cfg(not(feature = "kerberos"))]
fn kerberos_setup() -> Result<(Auth, SimKerberos), String> {
    Err(
        "skipped: built without feature `kerberos` (and no KDC: run under tests/kdc/setup.sh)"
            .into(),
    )
}

fn main() {
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let rounds = env("SEALING_BENCH_ROUNDS", 2000);
    let repeats = env("SEALING_BENCH_REPEATS", 5).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let kerberos = kerberos_setup();
        let config = SimConfig {
            log_requests: false,
            kerberos: kerberos.as_ref().ok().map(|(_, acceptor)| acceptor.clone()),
            ..SimConfig::default()
        };
        let sim = Simulator::start_with(config).await.expect("simulator");
        // `localhost`: the Kerberos SPN is then HTTP/localhost; the same name for all.
        let endpoint = format!("http://localhost:{}/wsman", sim.addr().port());
        let (user, password) = (sim.user().to_string(), sim.password().to_string());
        // CredSSP needs HTTPS: it runs against a second simulator in HTTPS mode, beside
        // Basic over the same HTTPS (the fair baseline: the same outer TLS).
        let (tls_sim, ca) = https_credssp_simulator().await;
        let tls_endpoint = format!("https://localhost:{}/wsman", tls_sim.addr().port());
        let plain = (endpoint.as_str(), None);
        let https = (tls_endpoint.as_str(), Some(ca.as_str()));
        let mut schemes: Vec<(&str, Target<'_>, Auth)> = vec![
            ("basic", plain, Auth::basic(&user, &password)),
            ("ntlm sealed", plain, Auth::ntlm(&user, &password)),
            ("basic https", https, Auth::basic(&user, &password)),
            ("credssp sealed", https, Auth::credssp(&user, &password)),
        ];
        if let Ok((auth, _)) = &kerberos {
            schemes.push(("kerberos sealed", plain, auth.clone()));
        }
        let mut rates = vec![Vec::new(); schemes.len()];
        let mut cpu = vec![Vec::new(); schemes.len()];
        for _ in 0..repeats {
            for (i, (_, (at, ca), auth)) in schemes.iter().enumerate() {
                let (r, c) = round_trips(at, *ca, auth.clone(), rounds).await;
                rates[i].push(r);
                cpu[i].push(c);
            }
        }
        println!(
            "round trips (sequential Get, {rounds} per run, median of {repeats} alternating runs; \
             CPU = client + simulator, one process):"
        );
        let basic = median(&rates[0]);
        let basic_https = median(&rates[2]);
        for (i, (name, _, _)) in schemes.iter().enumerate() {
            let (r, c) = (median(&rates[i]), median(&cpu[i]));
            let runs: Vec<String> = rates[i].iter().map(|r| format!("{r:.0}")).collect();
            let ratio = match *name {
                "basic" => String::new(),
                "credssp sealed" => format!(
                    "  {:.0}% of basic https, {:.0}% of basic",
                    100.0 * r / basic_https,
                    100.0 * r / basic
                ),
                _ => format!("  {:.0}% of basic", 100.0 * r / basic),
            };
            println!(
                "  {name:<16} {r:8.0} /s  {c:6.3} CPU ms/round trip{ratio}  (runs: {})",
                runs.join(", ")
            );
        }
        if let Err(why) = &kerberos {
            println!("  {:<16} {why}", "kerberos sealed");
        } else {
            // The Kerberos rows were Kerberos: one handshake per client, every message sealed.
            let k = sim.kerberos_counters();
            let (handshakes, sealed) = (k.handshakes, k.sealed_messages);
            assert!(
                handshakes >= repeats as u64,
                "{handshakes} Kerberos handshakes"
            );
            assert!(
                sealed >= (repeats * rounds) as u64,
                "{sealed} sealed messages"
            );
        }
        assert!(sim.counters().ntlm_handshakes >= repeats as u64);
        // The CredSSP rows were CredSSP: one exchange per client, every message encrypted.
        let c = tls_sim.credssp_counters();
        assert!(c.handshakes >= repeats as u64, "{c:?}");
        assert!(c.sealed_messages >= (repeats * rounds) as u64, "{c:?}");
    });
    println!("seal + frame + parse + unseal (NTLM):");
    for size in [1024usize, 16 * 1024, 150 * 1024, 1024 * 1024] {
        let message = vec![b'x'; size];
        let rounds = (64 * 1024 * 1024 / size).max(16);
        let elapsed = bench_seal_unseal(&message, rounds);
        let mb = (size * rounds) as f64 / (1024.0 * 1024.0);
        println!(
            "  {:>8} bytes: {:8.1} MB/s",
            size,
            mb / elapsed.as_secs_f64()
        );
    }
}

/// Benchmark support: authenticates a client and a server context in memory, then
/// `rounds` times seals `message` (client), frames it, parses the frame and unseals it
/// (server). Returns the elapsed time of the rounds. Panics if any step fails.
fn bench_seal_unseal(message: &[u8], rounds: usize) -> std::time::Duration {
    let password = secrecy::SecretString::from("bench".to_string());
    let (mut client, t1) = NtlmContext::client("bench", &password, None).expect("client context");
    let mut server = NtlmContext::server();
    let t2 = server.accept(&t1, None).expect("challenge");
    let t3 = client.respond(&t2).expect("authenticate");
    server.accept(&t3, Some("bench")).expect("accepted");
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        let (signature, sealed) = client.seal(message).expect("seal");
        let body = sealing::frame(message.len(), &signature, &sealed);
        let parts = sealing::parse(&body).expect("frame");
        let plain = server.unseal(parts.signature, parts.data).expect("unseal");
        assert_eq!(plain.len(), message.len());
    }
    start.elapsed()
}
