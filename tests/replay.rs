//! Replay conformance for the foundation's operations (Identify, WS-Transfer Get): a
//! scripted HTTP server answers with the recorded responses, in order and with the
//! recorded status, and captures what the real `Client` sends. Each captured request must
//! be equivalent to the recorded one (see [`compare::equivalent`]), and each recorded response
//! must come out as the expected value or typed fault.

#[path = "support/compare.rs"]
mod compare;
#[path = "support/mini_http.rs"]
mod mini_http;
#[path = "support/recorded.rs"]
mod recorded;

use std::time::Duration;

use compare::equivalent;
use mini_http::{Captured, Reply, Server};
use tokio_winrm::{Auth, Client, Error, Resource, Value};
use wsman_protocol::fault::code;

const TIMEOUT: Duration = Duration::from_secs(10);

/// A server that answers request `i` with `script[i]` (status, body) and fails loudly
/// (HTTP 599) on any request beyond the script.
async fn scripted(script: Vec<(u16, String)>) -> Server {
    Server::start(move |i, _req| match script.get(i) {
        Some((status, body)) => Reply::Bytes(mini_http::soap(*status, body)),
        None => Reply::Bytes(mini_http::response(
            599,
            "text/plain",
            b"request beyond the script",
            &[],
        )),
    })
    .await
}

fn client(server: &Server) -> tokio_winrm::ClientBuilder {
    Client::builder(server.url())
        .auth(Auth::basic("vagrant", "Secr3t!"))
        .allow_insecure_basic(true)
}

fn check_http(req: &Captured) {
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/wsman");
    assert_eq!(
        req.header("content-type"),
        Some("application/soap+xml;charset=UTF-8")
    );
    // base64("vagrant:Secr3t!")
    assert_eq!(
        req.header("authorization"),
        Some("Basic dmFncmFudDpTZWNyM3Qh")
    );
}

fn assert_equivalent(origin: &str, captured: &Captured, recorded: &str) {
    if let Err(e) = equivalent(origin, &captured.text(), recorded) {
        panic!(
            "request not equivalent to the {origin} recording: {e}\ncaptured: {}",
            captured.text()
        );
    }
}

async fn within<T>(fut: impl std::future::IntoFuture<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, fut).await.expect("timed out")
}

#[tokio::test]
async fn identify_matches_winrmsharp() {
    let rec = recorded::load("WinRMSharp/ProtocolIdentify");
    let ex = &rec.exchanges[0];
    let server = scripted(vec![(ex.status, ex.response.clone()); 2]).await;
    let c = client(&server).build().unwrap();
    let id = within(c.identify()).await.unwrap();
    assert_eq!(
        id.protocol_version,
        "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
    );
    assert_eq!(id.product_vendor, "Microsoft Corporation");
    assert_eq!(id.product_version, "OS: 10.0.14393 SP: 0.0 Stack: 3.0");
    assert_eq!(id.security_profiles.len(), 2);
    let anon = within(c.identify_unauthenticated()).await.unwrap();
    assert_eq!(anon, id);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    check_http(&reqs[0]);
    assert_eq!(reqs[0].header("wsmanidentify"), None);
    assert_equivalent("WinRMSharp", &reqs[0], &ex.request);
    assert_eq!(reqs[1].header("wsmanidentify"), Some("unauthenticated"));
    assert_eq!(reqs[1].header("authorization"), None);
    assert_equivalent("WinRMSharp", &reqs[1], &ex.request);
}

#[tokio::test]
async fn config_get_matches_pypsrp() {
    let rec = recorded::load("pypsrp/test_wsman_update_envelope_size_4096");
    let ex = &rec.exchanges[0];
    let server = scripted(vec![(ex.status, ex.response.clone())]).await;
    let c = client(&server)
        .operation_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let cfg = within(c.get(&Resource::config())).await.unwrap();
    assert_eq!(cfg.class_name, "Config");
    assert_eq!(
        cfg.get("MaxEnvelopeSizekb").and_then(Value::as_u64),
        Some(4096)
    );
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    check_http(&reqs[0]);
    assert_equivalent("pypsrp", &reqs[0], &ex.request);
}

#[tokio::test]
async fn shell_get_then_invalid_selectors_matches_pypsrp() {
    let rec = recorded::load("pypsrp/test_psrp_is_alive_invalid_selectors");
    // Only the WS-Transfer Get exchanges; Create and Receive belong to PSRP and WinRS.
    let gets: Vec<_> = rec
        .exchanges
        .iter()
        .filter(|e| {
            e.request
                .contains("http://schemas.xmlsoap.org/ws/2004/09/transfer/Get<")
        })
        .collect();
    assert_eq!(gets.len(), 2);
    assert_eq!((gets[0].status, gets[1].status), (200, 500));
    let server = scripted(
        gets.iter()
            .map(|e| (e.status, e.response.clone()))
            .collect(),
    )
    .await;
    let c = client(&server).max_envelope_size(512_000).build().unwrap();
    let shell = Resource::new("http://schemas.microsoft.com/wbem/wsman/1/windows/shell")
        .selector("ShellId", "6F1903CA-E06A-4A8B-BDFC-B44203149D55");
    let inst = within(c.get(&shell)).await.unwrap();
    assert_eq!(inst.class_name, "Shell");
    assert_eq!(
        inst.get_str("ShellId"),
        Some("6F1903CA-E06A-4A8B-BDFC-B44203149D55")
    );
    assert_eq!(inst.get_str("State"), Some("Connected"));
    let err = within(c.get(&shell)).await.unwrap_err();
    let f = err
        .fault()
        .unwrap_or_else(|| panic!("expected a fault, got {err:?}"));
    assert_eq!(f.code(), Some(code::INVALID_SELECTORS));
    assert!(f.is_gone());
    assert_eq!(
        f.provider.as_ref().and_then(|p| p.provider.as_deref()),
        Some("Shell provider")
    );
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    for (captured, recorded) in reqs.iter().zip(&gets) {
        check_http(captured);
        assert_equivalent("pypsrp", captured, &recorded.request);
    }
    // Both requests went over one kept-alive connection.
    assert_eq!(c.transport_stats().connects, 1);
}

#[tokio::test]
async fn invalid_header_fault_is_typed() {
    // The recorded request carries OperationTimeout PT-1S, which this client cannot send
    // (a Duration is never negative), so only the response is replayed here.
    let rec = recorded::load("pypsrp/test_psrp_is_alive_other_wsman_error");
    let ex = &rec.exchanges[3];
    assert_eq!(ex.status, 500);
    let server = scripted(vec![(ex.status, ex.response.clone())]).await;
    let c = client(&server).build().unwrap();
    let err = within(c.get(&Resource::new("shell/cmd").selector("ShellId", "x")))
        .await
        .unwrap_err();
    let f = err.fault().expect("fault");
    assert_eq!(f.code(), Some(code::INVALID_HEADER));
    assert_eq!(f.subcode_name(), Some("InvalidMessageInformationHeader"));
}

/// A recording, the fault code it must surface, and a predicate on the error.
type FaultCase = (&'static str, u32, fn(&Error) -> bool);

#[tokio::test]
async fn winrb_faults_served_to_a_get_are_typed() {
    let cases: [FaultCase; 3] = [
        (
            "WinRb-WinRM/soap_fault_v1",
            code::CANNOT_PROCESS_FILTER,
            |e| e.fault().is_some_and(|f| f.is_bad_filter()),
        ),
        (
            "WinRb-WinRM/soap_fault_v2",
            code::CANNOT_PROCESS_FILTER,
            |e| e.fault().is_some_and(|f| f.is_bad_filter()),
        ),
        (
            "WinRb-WinRM/wmi_error_v2",
            code::MAX_SHELLS,
            Error::is_quota,
        ),
    ];
    let script = cases
        .iter()
        .map(|(k, _, _)| {
            let ex = &recorded::load(k).exchanges[0];
            (ex.status, ex.response.clone())
        })
        .collect();
    let server = scripted(script).await;
    let c = client(&server).build().unwrap();
    let res = Resource::wmi("root/cimv2", "Win32_Processa").selector("Handle", "0");
    for (key, code, pred) in cases {
        let err = within(c.get(&res)).await.unwrap_err();
        assert_eq!(
            err.fault().and_then(|f| f.code()),
            Some(code),
            "{key}: {err:?}"
        );
        assert!(pred(&err), "{key}: {err:?}");
        assert!(err.to_string().contains(&code.to_string()), "{key}: {err}");
    }
    // A fault is a complete answer: the connection stays usable.
    assert_eq!(server.requests().len(), 3);
    assert_eq!(c.transport_stats().connects, 1);
}

#[test]
fn comparator_sees_real_differences() {
    let rec = recorded::load("pypsrp/test_wsman_update_envelope_size_4096");
    let original = &rec.exchanges[0].request;
    // Identical, and reordered headers with new ids, are equivalent.
    equivalent("pypsrp", original, original).unwrap();
    let shuffled = original
        .replace(
            "<wsa:Action s:mustUnderstand=\"true\">http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</wsa:Action>",
            "",
        )
        .replace(
            "</s:Header>",
            "<wsa:Action s:mustUnderstand=\"true\">http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</wsa:Action></s:Header>",
        )
        .replace("uuid:19BB0C7B-013F-4BED-A95B-765900F5D92A", "uuid:00000000-0000-0000-0000-000000000000");
    equivalent("pypsrp", &shuffled, original).unwrap();
    // Each of these is a real difference.
    let broken = [
        original.replace("153600", "512000"),
        original.replace("PT20S", "PT60S"),
        original.replace(
            "s:mustUnderstand=\"false\" xml:lang=\"en-US\" /><wsman:Locale",
            "xml:lang=\"en-US\" /><wsman:Locale",
        ),
        original.replace("<wsman:OperationTimeout>PT20S</wsman:OperationTimeout>", ""),
        original.replace("<s:Body />", "<s:Body><x/></s:Body>"),
        original.replace("wbem/wsman/1/config<", "wbem/wsman/1/config/Listener<"),
        original.replace("<wsa:To>https://127.0.0.1:55986/wsman</wsa:To>", ""),
    ];
    for (i, b) in broken.iter().enumerate() {
        assert_ne!(b, original, "case {i} changed nothing");
        assert!(
            equivalent("pypsrp", b, original).is_err(),
            "case {i} passed the comparator"
        );
    }
}
