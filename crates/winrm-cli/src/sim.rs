//! `winrm sim`: the WS-Management simulator (the `winrm-simulator` crate) as a standalone
//! server, for clients in other processes (this tool with `--endpoint`, pywinrm, pypsrp,
//! a test suite).
//!
//! ```text
//! winrm sim --addr 127.0.0.1:5985
//! ```
//!
//! The first line on stdout is the endpoint URL (`http://127.0.0.1:PORT/wsman`); the
//! user name goes to stderr.
//!
//! HTTPS, with WinRM's client-certificate mapping (`--auth certificate` clients, and
//! pywinrm's `transport='certificate'`):
//!
//! ```text
//! winrm sim --tls-cert server.pem --tls-key server.key \
//!     --client-ca ca.pem --map-cert alice.pem=alice --map-cert 3F2A...9C=bob
//! ```
//!
//! The endpoint is then `https://127.0.0.1:PORT/wsman`. A request with the certificate
//! `Authorization` header logs on as the user its client certificate is mapped to
//! (by file, or by the SHA-256 fingerprint of its DER form, as `openssl x509 -noout
//! -fingerprint -sha256` prints it); otherwise it gets HTTP 401. Without `--client-ca`
//! the mapping alone decides; with it, a certificate must also chain to that CA. The server runs until Ctrl-C, SIGTERM, or end of stdin (so
//! a parent process can stop it by closing the pipe).

use std::io::{IsTerminal, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use winrm_simulator::{SimConfig, SimTls, Simulator};

/// The options of `winrm sim`.
#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Interval between `ping -n N` lines, in milliseconds (Windows: 1000).
    #[arg(long, value_name = "MS")]
    ping_interval_ms: Option<u64>,
    /// MaxShellsPerUser quota.
    #[arg(long, value_name = "N")]
    max_shells: Option<usize>,
    /// Number of instances of the synthetic class Sim_Item.
    #[arg(long, value_name = "N")]
    synthetic_count: Option<u64>,
    /// PSRP: `Get-Process` writes N synthetic 25-property processes (`svchost0`...)
    /// instead of the simulated process table (for throughput benchmarks).
    #[arg(long, value_name = "N")]
    psrp_processes: Option<usize>,
    /// Keep running when stdin reaches end of input (only Ctrl-C or SIGTERM stop it).
    #[arg(long)]
    ignore_stdin: bool,
    /// HTTPS: the server's certificate chain (PEM, leaf first); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// HTTPS: the server's private key (PEM); needs --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// HTTPS: trust the CA certificates of this PEM file for client certificates.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    client_ca: Option<PathBuf>,
    /// HTTPS: map a client certificate to a user, as CERT=USER where CERT is a PEM file
    /// or a SHA-256 fingerprint (64 hex digits, `:` allowed); repeatable.
    #[arg(long, value_name = "CERT=USER", requires = "tls_cert")]
    map_cert: Vec<String>,
    /// Accept CredSSP logons (with --tls-cert: HTTPS, as clients require); the
    /// credentials delegated are counted on exit (never shown).
    #[arg(long)]
    credssp: bool,
    /// Kerberos: accept AP-REQs for --kerberos-service with its key from this keytab
    /// (aes256-cts-hmac-sha1-96); the principal's account must be --user.
    #[arg(long, value_name = "FILE")]
    kerberos_keytab: Option<PathBuf>,
    /// Kerberos: the service principal of --kerberos-keytab, without the realm.
    #[arg(long, value_name = "SPN", default_value = "HTTP/localhost")]
    kerberos_service: String,
}

/// The HTTPS settings of the options, if any.
fn tls(o: &SimArgs) -> Result<Option<SimTls>, String> {
    let (Some(cert), Some(key)) = (&o.tls_cert, &o.tls_key) else {
        return Ok(None);
    };
    let read =
        |p: &PathBuf| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let key_pem = Zeroize(read(key)?);
    let mut tls = SimTls::from_pem(&read(cert)?, &key_pem.0)
        .map_err(|e| format!("--tls-cert/--tls-key: {e}"))?;
    if let Some(ca) = &o.client_ca {
        tls = tls
            .client_ca_pem(&read(ca)?)
            .map_err(|e| format!("--client-ca: {e}"))?;
    }
    for m in &o.map_cert {
        let Some((which, user)) = m
            .rsplit_once('=')
            .filter(|(w, u)| !w.is_empty() && !u.is_empty())
        else {
            return Err(format!("--map-cert {m:?}: expected CERT=USER"));
        };
        let path = std::path::Path::new(which);
        tls = if path.exists() {
            tls.map_certificate_pem(&read(&path.to_path_buf())?, user)
        } else {
            tls.map_fingerprint(which, user)
        }
        .map_err(|e| {
            format!("--map-cert {m:?}: {e} (neither a readable file nor a fingerprint)")
        })?;
    }
    Ok(Some(tls))
}

/// Key bytes, overwritten when dropped.
struct Zeroize(Vec<u8>);

impl Drop for Zeroize {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(|b| *b = 0);
        std::hint::black_box(&self.0);
    }
}

/// Runs the simulator until Ctrl-C, SIGTERM, or end of stdin (unless `--ignore-stdin`),
/// accepting `user` and `password` (Basic, NTLM and Negotiate logons).
pub async fn serve(o: SimArgs, user: String, password: String) -> std::process::ExitCode {
    let mut cfg = SimConfig {
        addr: o.addr,
        users: vec![(user, password)],
        // Nobody in this process reads the request log.
        log_requests: false,
        credssp: o.credssp,
        ..SimConfig::default()
    };
    if let Some(ms) = o.ping_interval_ms {
        cfg.ping_interval = Duration::from_millis(ms);
    }
    if let Some(n) = o.max_shells {
        cfg.max_shells_per_user = n;
    }
    if let Some(n) = o.synthetic_count {
        cfg.synthetic_count = n;
    }
    if let Some(n) = o.psrp_processes {
        cfg.psrp_synthetic_processes = n;
    }
    if let Some(keytab) = &o.kerberos_keytab {
        match winrm_simulator::SimKerberos::from_keytab(keytab, &o.kerberos_service) {
            Ok(k) => cfg.kerberos = Some(k),
            Err(e) => {
                eprintln!("error: --kerberos-keytab {}: {e}", keytab.display());
                return std::process::ExitCode::from(2);
            }
        }
    }
    match tls(&o) {
        Ok(t) => cfg.tls = t,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    }
    let sim = match Simulator::start_with(cfg).await {
        Ok(s) => s,
        // The settings themselves (a certificate and key that do not belong together, a
        // CA file without certificates): a usage error, as the other option errors are.
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            eprintln!("error: cannot start the simulator: {e}");
            return std::process::ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", o.addr);
            return std::process::ExitCode::from(1);
        }
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", sim.endpoint());
        let _ = out.flush();
    }
    let stop = if o.ignore_stdin {
        "stop with Ctrl-C or SIGTERM"
    } else {
        "stop with Ctrl-C, SIGTERM or by closing stdin"
    };
    eprintln!(
        "simulator listening on {} (user {:?}); {stop}",
        sim.endpoint(),
        sim.user()
    );

    let stdin_eof = async {
        if o.ignore_stdin || std::io::stdin().is_terminal() {
            return std::future::pending::<()>().await;
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        // A plain thread: a blocking read must not hold up the runtime at exit.
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut stdin = std::io::stdin().lock();
            while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
            let _ = tx.send(());
        });
        let _ = rx.await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => eprintln!("simulator: interrupted, stopping"),
        _ = terminated() => eprintln!("simulator: terminated, stopping"),
        () = stdin_eof => eprintln!(
            "simulator: stdin closed, stopping (started in the background, as `winrm sim &`? \
             add --ignore-stdin to keep it serving until Ctrl-C or SIGTERM)"
        ),
    }
    let c = sim.counters();
    eprintln!(
        "simulator: {} requests, {} shells created ({} open), {} commands, {} open enumerations",
        c.requests, c.shells_created, c.open_shells, c.commands_started, c.open_enumerations
    );
    eprintln!(
        "simulator: NTLM: {} handshakes ({} inside SPNEGO), {} sealed requests, {} failed logons",
        c.ntlm_handshakes, c.spnego_ntlm_handshakes, c.sealed_messages, c.failed_logons
    );
    if o.credssp {
        let c = sim.credssp_counters();
        // Who delegated, and whether the password was the account's: never the password.
        let mut delegated = std::collections::BTreeMap::<String, usize>::new();
        for d in sim.credssp_delegations() {
            let ok = secrecy::ExposeSecret::expose_secret(&d.password) == sim.password();
            let who = format!(
                "{}\\{} (password {})",
                d.domain,
                d.user,
                if ok { "matches" } else { "differs" }
            );
            *delegated.entry(who).or_default() += 1;
        }
        let delegated: Vec<String> = delegated
            .into_iter()
            .map(|(who, n)| format!("{who} x{n}"))
            .collect();
        eprintln!(
            "simulator: CredSSP: {} logons with credentials delegated [{}], {} encrypted requests ({} in several parts), {} refusals",
            c.handshakes,
            delegated.join(", "),
            c.sealed_messages,
            c.multi_part_requests,
            c.failures
        );
    }
    sim.stop();
    std::process::ExitCode::SUCCESS
}

#[cfg(unix)]
async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn terminated() {
    std::future::pending().await
}
