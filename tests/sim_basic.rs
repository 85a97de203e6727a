//! The simulator core against the real client over Basic/HTTP: Identify, WS-Transfer on
//! WMI classes and the config resource, Invoke, faults, HTTP-level refusals, counters
//! and cancellation. Addressing faults are sent by hand with a raw HTTP client, since
//! the client never writes such requests.

#[path = "support/raw_http.rs"]
mod raw_http;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use raw_http::{Raw, send};
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_winrm::{Auth, CancelReason, Client, Error, Fault, Instance, Resource, Value};
use winrm_simulator::{SimConfig, Simulator};
use wsman_protocol::xml;

const WMI: &str = "root/cimv2";

/// Runs a test body with a deadline, so a hang fails fast.
async fn within<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test timed out");
}

fn client_for(endpoint: &str, user: &str, password: &str) -> Client {
    Client::builder(endpoint)
        .auth(Auth::basic(user, password))
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn start() -> (Simulator, Client) {
    let sim = Simulator::start().await.unwrap();
    let client = client_for(&sim.endpoint(), sim.user(), sim.password());
    (sim, client)
}

fn fault(e: Error) -> Fault {
    match e {
        Error::Fault(f) => *f,
        other => panic!("expected a fault, got {other:?}"),
    }
}

/// The SOAP fault of a raw response.
fn raw_fault(r: &Raw) -> Fault {
    let root = xml::parse(&r.body).expect("a SOAP body");
    Fault::from_envelope(&root).expect("a fault")
}

fn basic(sim: &Simulator) -> (&'static str, String) {
    let token = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        sim.user(),
        sim.password()
    ));
    ("Authorization", format!("Basic {token}"))
}

fn soap_headers(sim: &Simulator) -> Vec<(&'static str, String)> {
    vec![
        basic(sim),
        ("Content-Type", "application/soap+xml;charset=UTF-8".into()),
    ]
}

/// A Get of the OS instance written by hand; `drop` names header elements to leave out.
fn handmade_get(max_envelope: u32, drop: &[&str]) -> String {
    let headers = [
        ("To", "<a:To>http://localhost/wsman</a:To>".to_string()),
        ("ResourceURI", "<w:ResourceURI s:mustUnderstand=\"true\">http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_OperatingSystem</w:ResourceURI>".into()),
        ("ReplyTo", "<a:ReplyTo><a:Address s:mustUnderstand=\"true\">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>".into()),
        ("Action", "<a:Action s:mustUnderstand=\"true\">http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</a:Action>".into()),
        ("MaxEnvelopeSize", format!("<w:MaxEnvelopeSize s:mustUnderstand=\"true\">{max_envelope}</w:MaxEnvelopeSize>")),
        ("MessageID", "<a:MessageID>uuid:0A6B3D51-7A2E-4E86-9E2B-4C6C8D1F0A11</a:MessageID>".into()),
        ("OperationTimeout", "<w:OperationTimeout>PT60S</w:OperationTimeout>".into()),
    ];
    let header: String = headers
        .iter()
        .filter(|(n, _)| !drop.contains(n))
        .map(|(_, x)| x.as_str())
        .collect();
    format!(
        "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" xmlns:w=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\"><s:Header>{header}</s:Header><s:Body/></s:Envelope>"
    )
}

#[tokio::test]
async fn identify_with_and_without_credentials() {
    within(async {
        let (sim, client) = start().await;
        let id = client.identify().await.unwrap();
        assert_eq!(
            id.protocol_version,
            "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
        );
        assert_eq!(id.product_vendor, "Microsoft Corporation");
        assert_eq!(id.product_version, "OS: 10.0.20348 SP: 0.0 Stack: 3.0");
        assert_eq!(id.stack_version(), Some("3.0"));
        assert!(
            id.security_profiles
                .iter()
                .any(|p| p.ends_with("/http/basic")),
            "{:?}",
            id.security_profiles
        );
        assert!(
            id.security_profiles
                .iter()
                .any(|p| p.ends_with("/http/spnego-kerberos"))
        );

        let anon = client.identify_unauthenticated().await.unwrap();
        assert_eq!(anon.product_version, id.product_version);
        assert!(
            anon.security_profiles.is_empty(),
            "no profiles without authentication"
        );

        // Without credentials only the unauthenticated Identify is admitted.
        let nobody = Client::builder(sim.endpoint()).build().unwrap();
        assert!(nobody.identify_unauthenticated().await.is_ok());
        let e = nobody
            .get(&Resource::wmi(WMI, "Win32_OperatingSystem"))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
    })
    .await;
}

#[tokio::test]
async fn get_operating_system() {
    within(async {
        let (_sim, client) = start().await;
        let os = client
            .get(&Resource::wmi(WMI, "Win32_OperatingSystem"))
            .await
            .unwrap();
        assert_eq!(os.class_name, "Win32_OperatingSystem");
        assert_eq!(os.get_str("Version"), Some("10.0.20348"));
        assert_eq!(os.get_str("BuildNumber"), Some("20348"));
        assert!(
            os.get_str("Caption")
                .unwrap()
                .starts_with("Microsoft Windows Server 2022")
        );
        assert!(os.get_str("CSName").unwrap().starts_with("WIN-"));
        assert!(os.get("CSDVersion").unwrap().is_null());
        let boot = os
            .get("LastBootUpTime")
            .unwrap()
            .as_datetime()
            .expect("a datetime");
        assert_eq!((boot.year, boot.month), (2025, 3));
        let now = os.get("LocalDateTime").unwrap().as_datetime().unwrap();
        assert!(now.raw > boot.raw, "{} after {}", now.raw, boot.raw);
        let free = os.get("FreePhysicalMemory").unwrap().as_u64().unwrap();
        let total = os.get("TotalVisibleMemorySize").unwrap().as_u64().unwrap();
        assert!(0 < free && free < total, "{free} of {total}");
        assert_eq!(os.get("NumberOfProcesses").unwrap().as_u64(), Some(80));
        // Properties come in schema order.
        let names: Vec<&str> = os.properties.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            &names[..4],
            ["BootDevice", "BuildNumber", "BuildType", "Caption"]
        );
    })
    .await;
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Win32Service {
    name: String,
    display_name: String,
    state: String,
    start_mode: String,
    started: bool,
    accept_stop: bool,
    process_id: u32,
    exit_code: u32,
    install_date: Option<String>,
    system_name: String,
}

#[tokio::test]
async fn get_service_by_name_into_a_struct() {
    within(async {
        let (_sim, client) = start().await;
        let res = Resource::wmi(WMI, "Win32_Service").selector("Name", "WinRM");
        let svc: Win32Service = client.get_as(&res).await.unwrap();
        assert_eq!(svc.name, "WinRM");
        assert_eq!(
            svc.display_name,
            "Windows Remote Management (WS-Management)"
        );
        assert_eq!(
            (svc.state.as_str(), svc.start_mode.as_str()),
            ("Running", "Auto")
        );
        assert!(svc.started && svc.accept_stop);
        assert!(svc.process_id > 0);
        assert_eq!(svc.exit_code, 0);
        assert_eq!(svc.install_date, None);
        assert!(svc.system_name.starts_with("WIN-"));
        let inst = client.get(&res).await.unwrap();
        assert_eq!(inst.properties.len(), 26);
        // Generated services follow the real ones.
        let generated = client
            .get(&Resource::wmi(WMI, "Win32_Service").selector("Name", "SimSvc0001"))
            .await
            .unwrap();
        assert_eq!(
            generated.get_str("DisplayName"),
            Some("Simulated Service 0001")
        );
    })
    .await;
}

#[tokio::test]
async fn selector_and_class_faults() {
    within(async {
        let (_sim, client) = start().await;
        for res in [
            Resource::wmi(WMI, "Win32_Service").selector("Name", "NoSuchService"),
            Resource::wmi(WMI, "Win32_Service").selector("Nmae", "WinRM"),
            Resource::wmi(WMI, "Win32_Service"),
            Resource::wmi(WMI, "Win32_Process").selector("Handle", "not-a-pid"),
        ] {
            let f = fault(client.get(&res).await.unwrap_err());
            assert!(f.is_gone(), "{f:?}");
            assert_eq!(f.code(), Some(2150858843));
            assert_eq!(f.subcode_name(), Some("InvalidSelectors"));
        }
        let f = fault(
            client
                .get(&Resource::wmi(WMI, "Win32_NoSuchClass"))
                .await
                .unwrap_err(),
        );
        assert!(f.is_not_found(), "{f:?}");
        assert_eq!(f.code(), Some(tokio_winrm::fault_code::RESOURCE_NOT_FOUND));
        let f = fault(
            client
                .get(&Resource::new("http://example.invalid/resource"))
                .await
                .unwrap_err(),
        );
        assert!(f.is_not_found());
        let f = fault(
            client
                .delete(&Resource::wmi(WMI, "Win32_Service").selector("Name", "WinRM"))
                .await
                .unwrap_err(),
        );
        assert_eq!(f.subcode_name(), Some("ActionNotSupported"));
    })
    .await;
}

#[tokio::test]
async fn wrong_password_is_unauthorized_with_the_offered_schemes() {
    within(async {
        let (sim, _client) = start().await;
        let before = sim.counters();
        let bad = client_for(&sim.endpoint(), sim.user(), "wrong");
        match bad.identify().await.unwrap_err() {
            Error::Unauthorized { offered } => {
                assert!(offered.iter().any(|s| s == "Negotiate"), "{offered:?}");
                assert!(offered.iter().any(|s| s == "Basic"), "{offered:?}");
            }
            other => panic!("expected Unauthorized, got {other:?}"),
        }
        assert_eq!(sim.counters().auth_failures, before.auth_failures + 1);

        // With Basic disabled the server offers Negotiate only and refuses Basic.
        let no_basic = Simulator::start_with(SimConfig {
            allow_basic: false,
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let c = client_for(&no_basic.endpoint(), no_basic.user(), no_basic.password());
        match c.identify().await.unwrap_err() {
            Error::Unauthorized { offered } => assert_eq!(offered, ["Negotiate"]),
            other => panic!("expected Unauthorized, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn config_get_and_put() {
    within(async {
        let (sim, client) = start().await;
        let cfg = client.get(&Resource::config()).await.unwrap();
        assert_eq!(cfg.class_name, "Config");
        assert_eq!(
            cfg.namespace.as_deref(),
            Some("http://schemas.microsoft.com/wbem/wsman/1/config")
        );
        assert_eq!(cfg.get_str("MaxEnvelopeSizekb"), Some("500"));
        assert_eq!(cfg.get_str("MaxTimeoutms"), Some("60000"));
        let service = cfg.get("Service").unwrap().as_instance().unwrap();
        assert_eq!(
            service
                .get("Auth")
                .unwrap()
                .as_instance()
                .unwrap()
                .get_str("Basic"),
            Some("true")
        );
        // As configured (SimConfig::allow_unencrypted, false by default as on Windows):
        // the simulator refuses unsealed NTLM and Kerberos messages over HTTP.
        assert_eq!(service.get_str("AllowUnencrypted"), Some("false"));

        let puts = sim.counters().puts;
        let change = Instance::new("Config").with("MaxEnvelopeSizekb", 1024u32);
        let echoed = client
            .put(&Resource::config(), &change)
            .await
            .unwrap()
            .expect("the new document");
        assert_eq!(echoed.get_str("MaxEnvelopeSizekb"), Some("1024"));
        assert_eq!(sim.counters().puts, puts + 1);
        let again = client.get(&Resource::config()).await.unwrap();
        assert_eq!(again.get_str("MaxEnvelopeSizekb"), Some("1024"));

        let winrs = client
            .get(&Resource::new("winrm/config/Winrs"))
            .await
            .unwrap();
        assert_eq!(winrs.class_name, "Winrs");
        assert_eq!(winrs.get_str("MaxShellsPerUser"), Some("30"));

        let bad = Instance::new("Config").with("MaxEnvelopeSizekb", "lots");
        let f = fault(client.put(&Resource::config(), &bad).await.unwrap_err());
        assert_eq!(f.code(), Some(87));
        let still = client.get(&Resource::config()).await.unwrap();
        assert_eq!(still.get_str("MaxEnvelopeSizekb"), Some("1024"));
    })
    .await;
}

#[tokio::test]
async fn invoke_process_create() {
    within(async {
        let (sim, client) = start().await;
        let res = Resource::wmi(WMI, "Win32_Process");
        let invokes = sim.counters().invokes;
        let input = Instance::new("Create_INPUT")
            .with("CommandLine", "notepad.exe C:\\temp\\a.txt")
            .with("CurrentDirectory", "C:\\temp");
        let out = client.invoke(&res, "Create", &input).await.unwrap();
        assert_eq!(out.class_name, "Create_OUTPUT");
        assert_eq!(out.get("ReturnValue").unwrap().as_u64(), Some(0));
        let pid = out.get("ProcessId").unwrap().as_u64().unwrap();
        assert!(pid > 0);
        let out2 = client.invoke(&res, "Create", &input).await.unwrap();
        assert!(
            out2.get("ProcessId").unwrap().as_u64().unwrap() > pid,
            "process ids increase"
        );

        // The new process is an instance now.
        let p = client
            .get(&res.clone().selector("Handle", pid.to_string()))
            .await
            .unwrap();
        assert_eq!(p.get_str("Name"), Some("notepad.exe"));
        assert_eq!(
            p.get_str("CommandLine"),
            Some("notepad.exe C:\\temp\\a.txt")
        );
        assert_eq!(
            p.get_str("ExecutablePath"),
            Some("C:\\Windows\\system32\\notepad.exe")
        );

        let empty = client
            .invoke(
                &res,
                "Create",
                &Instance::new("Create_INPUT").with("CommandLine", ""),
            )
            .await
            .unwrap();
        assert_eq!(empty.get("ReturnValue").unwrap().as_u64(), Some(9));
        assert!(empty.get("ProcessId").unwrap().is_null());

        let f = fault(
            client
                .invoke(&res, "Explode", &Instance::new("x"))
                .await
                .unwrap_err(),
        );
        assert_eq!(f.subcode_name(), Some("ActionNotSupported"));
        assert_eq!(sim.counters().invokes, invokes + 4);
    })
    .await;
}

#[tokio::test]
async fn stop_and_start_a_service() {
    within(async {
        let (_sim, client) = start().await;
        let res = Resource::wmi(WMI, "Win32_Service").selector("Name", "Spooler");
        let rv = |i: Instance| i.get("ReturnValue").and_then(Value::as_u64);
        let none = Instance::new("StopService_INPUT");
        assert_eq!(
            rv(client.invoke(&res, "StopService", &none).await.unwrap()),
            Some(0)
        );
        let svc = client.get(&res).await.unwrap();
        assert_eq!(svc.get_str("State"), Some("Stopped"));
        assert_eq!(svc.get("Started").unwrap().as_bool(), Some(false));
        assert_eq!(
            rv(client.invoke(&res, "StopService", &none).await.unwrap()),
            Some(6),
            "not active"
        );
        assert_eq!(
            rv(client.invoke(&res, "StartService", &none).await.unwrap()),
            Some(0)
        );
        assert_eq!(
            client.get(&res).await.unwrap().get_str("State"),
            Some("Running")
        );
        let gone = Resource::wmi(WMI, "Win32_Service").selector("Name", "Nope");
        assert!(
            fault(
                client
                    .invoke(&gone, "StopService", &none)
                    .await
                    .unwrap_err()
            )
            .is_gone()
        );
    })
    .await;
}

#[tokio::test]
async fn put_on_a_wmi_instance_echoes_it() {
    within(async {
        let (sim, client) = start().await;
        let res = Resource::wmi(WMI, "Win32_Service").selector("Name", "W32Time");
        let change = Instance::new("Win32_Service").with("StartMode", "Disabled");
        let echoed = client.put(&res, &change).await.unwrap().unwrap();
        assert_eq!(echoed.get_str("Name"), Some("W32Time"));
        assert_eq!(echoed.get_str("StartMode"), Some("Disabled"));
        assert_eq!(sim.counters().puts, 1);
        let bad = Instance::new("Win32_Service").with("NoSuchProperty", "1");
        assert_eq!(
            fault(client.put(&res, &bad).await.unwrap_err()).code(),
            Some(87)
        );
    })
    .await;
}

#[tokio::test]
async fn addressing_faults_from_handmade_requests() {
    within(async {
        let (sim, _client) = start().await;
        let addr = sim.addr();
        let ok = send(
            addr,
            "POST",
            "/wsman",
            &soap_headers(&sim),
            handmade_get(153600, &[]).as_bytes(),
        )
        .await;
        assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
        let root = xml::parse(&ok.body).unwrap();
        let header = root.child(wsman_protocol::ns::SOAP, "Header").unwrap();
        let relates = header.child_text(wsman_protocol::ns::ADDRESSING, "RelatesTo");
        assert_eq!(relates, Some("uuid:0A6B3D51-7A2E-4E86-9E2B-4C6C8D1F0A11"));

        for (missing, subcode) in [
            ("MessageID", "MessageInformationHeaderRequired"),
            ("ReplyTo", "MessageInformationHeaderRequired"),
            ("Action", "MessageInformationHeaderRequired"),
        ] {
            let r = send(
                addr,
                "POST",
                "/wsman",
                &soap_headers(&sim),
                handmade_get(153600, &[missing]).as_bytes(),
            )
            .await;
            assert_eq!(r.status, 500, "without {missing}");
            assert!(
                r.header("Content-Type")
                    .unwrap()
                    .starts_with("application/soap+xml")
            );
            let f = raw_fault(&r);
            assert_eq!(f.subcode_name(), Some(subcode), "without {missing}: {f:?}");
            assert!(f.reason.contains(missing), "{}", f.reason);
        }
        let r = send(
            addr,
            "POST",
            "/wsman",
            &soap_headers(&sim),
            handmade_get(4096, &[]).as_bytes(),
        )
        .await;
        assert_eq!(r.status, 500);
        let f = raw_fault(&r);
        assert_eq!(f.subcode_name(), Some("EncodingLimit"));
        assert_eq!(f.code(), Some(tokio_winrm::fault_code::ENCODING_LIMIT));

        let r = send(addr, "POST", "/wsman", &soap_headers(&sim), b"<not xml").await;
        assert_eq!(r.status, 500);
        assert_eq!(raw_fault(&r).subcode_name(), Some("SchemaValidationError"));
    })
    .await;
}

#[tokio::test]
async fn http_level_refusals() {
    within(async {
        let (sim, client) = start().await;
        let addr = sim.addr();
        let get = send(addr, "GET", "/wsman", &[basic(&sim)], b"").await;
        assert_eq!(get.status, 405);
        assert!(
            get.header("Content-Type")
                .unwrap()
                .starts_with("text/plain")
        );
        assert!(xml::parse(&get.body).is_err(), "not a SOAP body");
        assert_eq!(
            send(addr, "POST", "/other", &soap_headers(&sim), b"")
                .await
                .status,
            404
        );
        let text = vec![basic(&sim), ("Content-Type", "text/xml".to_string())];
        let body = handmade_get(153600, &[]);
        assert_eq!(
            send(addr, "POST", "/wsman", &text, body.as_bytes())
                .await
                .status,
            415
        );
        let no_auth = vec![("Content-Type", "application/soap+xml".to_string())];
        let r = send(addr, "POST", "/wsman", &no_auth, body.as_bytes()).await;
        assert_eq!(r.status, 401);
        let offered = r.header_all("WWW-Authenticate");
        assert_eq!(offered, ["Negotiate", "Basic realm=\"WSMAN\""]);

        let big = vec![b'x'; 2 * 1024 * 1024];
        assert_eq!(
            send(addr, "POST", "/wsman", &soap_headers(&sim), &big)
                .await
                .status,
            413
        );

        // The client surfaces 413 as a typed HTTP error.
        let giant = Instance::new("Win32_Service").with("Description", "y".repeat(2 * 1024 * 1024));
        let res = Resource::wmi(WMI, "Win32_Service").selector("Name", "WinRM");
        match client.put(&res, &giant).await.unwrap_err() {
            Error::Http { status, .. } => assert_eq!(status, 413),
            other => panic!("expected HTTP 413, got {other:?}"),
        }
        // Under the HTTP cap but over MaxEnvelopeSizekb (500 KB): a SOAP EncodingLimit fault.
        let large = Instance::new("Win32_Service").with("Description", "y".repeat(600 * 1024));
        let f = fault(client.put(&res, &large).await.unwrap_err());
        assert_eq!(f.subcode_name(), Some("EncodingLimit"));
        // And the server is still there.
        assert!(client.identify().await.is_ok());
    })
    .await;
}

#[tokio::test]
async fn counters_move_as_expected() {
    within(async {
        let (sim, client) = start().await;
        let c0 = sim.counters();
        assert_eq!(
            (c0.requests, c0.faults, c0.invokes, c0.puts, c0.connections),
            (0, 0, 0, 0, 0)
        );
        client.identify().await.unwrap();
        client
            .get(&Resource::wmi(WMI, "Win32_OperatingSystem"))
            .await
            .unwrap();
        let _ = client
            .get(&Resource::wmi(WMI, "Win32_Nope"))
            .await
            .unwrap_err();
        let res = Resource::wmi(WMI, "Win32_Process");
        client
            .invoke(
                &res,
                "Create",
                &Instance::new("i").with("CommandLine", "cmd.exe"),
            )
            .await
            .unwrap();
        let c = sim.counters();
        assert_eq!(c.requests, 4);
        assert_eq!(c.faults, 1);
        assert_eq!(c.invokes, 1);
        assert_eq!(c.auth_failures, 0);
        assert!(
            c.connections >= 1 && c.connections <= 4,
            "keep-alive reuses connections: {}",
            c.connections
        );
        assert_eq!(client.transport_stats().connects, c.connections);
    })
    .await;
}

/// A TCP proxy that holds each connection for `delay` before forwarding it, so a
/// request is still in flight when the test cancels it.
async fn slow_proxy(target: SocketAddr, delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let Ok(mut outbound) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn cancelled_calls() {
    within(async {
        let (sim, client) = start().await;
        // Cancelled before it starts.
        let token = CancellationToken::new();
        token.cancel();
        let e = client
            .get(&Resource::wmi(WMI, "Win32_OperatingSystem"))
            .cancellation(token)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Cancelled {
                    reason: CancelReason::User
                }
            ),
            "{e:?}"
        );

        // Cancelled in flight, through a proxy that holds the request back.
        let proxy = slow_proxy(sim.addr(), Duration::from_millis(400)).await;
        let slow = client_for(&format!("http://{proxy}/wsman"), sim.user(), sim.password());
        let token = CancellationToken::new();
        let t = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(60)).await;
            t.cancel();
        });
        let started = tokio::time::Instant::now();
        let e = slow
            .get(&Resource::wmi(WMI, "Win32_OperatingSystem"))
            .cancellation(token)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Cancelled {
                    reason: CancelReason::User
                }
            ),
            "{e:?}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(350),
            "cancel returns at once"
        );

        // An Invoke cannot be cancelled: it is abandoned, and the server may still run it.
        let invokes = sim.counters().invokes;
        let token = CancellationToken::new();
        let t = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(60)).await;
            t.cancel();
        });
        let input = Instance::new("Create_INPUT").with("CommandLine", "ping.exe -n 100 localhost");
        let e = slow
            .invoke(&Resource::wmi(WMI, "Win32_Process"), "Create", &input)
            .cancellation(token)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Abandoned {
                    reason: CancelReason::User
                }
            ),
            "{e:?}"
        );
        assert!(e.is_cancelled());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while sim.counters().invokes == invokes && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            sim.counters().invokes,
            invokes + 1,
            "the abandoned Invoke still reached the server"
        );
    })
    .await;
}

#[tokio::test]
async fn stopping_the_simulator_refuses_new_connections() {
    within(async {
        let (sim, client) = start().await;
        client.identify().await.unwrap();
        sim.stop();
        tokio::time::sleep(Duration::from_millis(700)).await;
        let fresh = client_for(&sim.endpoint(), sim.user(), sim.password());
        assert!(fresh.identify().await.is_err());
    })
    .await;
}

/// The simulator's settings, as a test prints them with `{:?}`, show the users' names
/// and never their passwords.
#[test]
fn the_settings_debug_shows_no_password() {
    let config = winrm_simulator::SimConfig {
        users: vec![
            ("alice".into(), "s3cret-one".into()),
            ("bob".into(), "s3cret-two".into()),
        ],
        ..Default::default()
    };
    let shown = format!("{config:?} {config:#?}");
    assert!(shown.contains("alice") && shown.contains("bob"), "{shown}");
    assert!(!shown.contains("s3cret"), "{shown}");
}
