//! The simulator never panics and never hangs on hostile input: random bytes and
//! mutated real requests (from the pypsrp recordings) go to `SimRequest::parse` and,
//! over HTTP, to a running simulator, which must answer every one and stay alive.

#[path = "support/raw_http.rs"]
mod raw_http;
#[path = "support/recorded.rs"]
mod recorded;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use proptest::prelude::*;
use proptest::sample::Index;
use tokio::runtime::Runtime;
use winrm_simulator::{SimConfig, SimRequest, Simulator};

/// Statuses the simulator may answer with.
const STATUSES: [u16; 6] = [200, 401, 404, 413, 415, 500];

fn requests() -> &'static [String] {
    static REQUESTS: OnceLock<Vec<String>> = OnceLock::new();
    REQUESTS.get_or_init(|| {
        let all: Vec<String> = recorded::all()
            .into_iter()
            .filter(|r| r.origin == "pypsrp")
            .flat_map(|r| r.exchanges)
            .map(|e| e.request)
            .filter(|r| !r.is_empty())
            .collect();
        assert!(
            all.len() > 50,
            "the pypsrp recordings hold {} requests",
            all.len()
        );
        all
    })
}

struct Server {
    rt: Runtime,
    addr: SocketAddr,
    auth: String,
    sim: Simulator,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let sim = rt
            .block_on(Simulator::start_with(SimConfig {
                ping_interval: Duration::from_millis(10),
                ..SimConfig::default()
            }))
            .unwrap();
        let token = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            sim.user(),
            sim.password()
        ));
        Server {
            addr: sim.addr(),
            auth: format!("Basic {token}"),
            rt,
            sim,
        }
    })
}

/// Posts `body` with valid credentials and returns the status, or why none came.
async fn post(addr: SocketAddr, auth: &str, body: &[u8]) -> Result<u16, String> {
    let headers = [
        ("Authorization", auth.to_string()),
        (
            "Content-Type",
            "application/soap+xml;charset=UTF-8".to_string(),
        ),
    ];
    raw_http::try_send(addr, "POST", "/wsman", &headers, body)
        .await
        .map(|r| r.status)
}

/// The `OperationTimeout` a request asks for, in whole seconds (`PT<n>S` or
/// `PT<n>.<frac>S`), when it has one: a long poll (a Receive on a runspace pool with
/// nothing to say, as in the recordings) may rightly take that long before its answer.
fn operation_timeout_secs(body: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(body);
    let at = text.find("OperationTimeout>PT")? + "OperationTimeout>PT".len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Sends over HTTP with a deadline and checks the answer is one the simulator gives.
/// The deadline is 15 s, or the request's own OperationTimeout and 10 s more, but at most
/// 75 s (the recordings ask for 20 s; a mutation that asks for more than a minute fails
/// here rather than stalling the suite).
fn send_checked(body: &[u8]) -> Result<u16, TestCaseError> {
    let s = server();
    let bound = operation_timeout_secs(body)
        .map_or(15, |t| t.saturating_add(10))
        .clamp(15, 75);
    let status = s.rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(bound), post(s.addr, &s.auth, body)).await
    });
    let status = status.map_err(|_| {
        TestCaseError::fail(format!("the simulator did not answer within {bound} s"))
    })?;
    let status = status.map_err(TestCaseError::fail)?;
    prop_assert!(STATUSES.contains(&status), "unexpected status {status}");
    Ok(status)
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(Index),
    Flip(Index, u8),
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
    Duplicate(Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (
            any::<Index>(),
            prop::collection::vec(prop::sample::select(b"<>/=\"' &;:xs\0\xff".to_vec()), 1..8)
        )
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<Index>(), 1usize..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Duplicate(a, b)),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len().max(1);
        match m {
            Mutation::Truncate(i) => bytes.truncate(i.index(len)),
            Mutation::Flip(i, b) => {
                if !bytes.is_empty() {
                    let at = i.index(bytes.len());
                    bytes[at] ^= b | 1;
                }
            }
            Mutation::Insert(i, v) => {
                let at = i.index(len).min(bytes.len());
                bytes.splice(at..at, v.iter().copied());
            }
            Mutation::Delete(i, n) => {
                let at = i.index(len).min(bytes.len());
                let end = (at + n).min(bytes.len());
                bytes.drain(at..end);
            }
            Mutation::Duplicate(a, b) => {
                let (x, y) = (a.index(len).min(bytes.len()), b.index(len).min(bytes.len()));
                let (from, to) = (x.min(y), x.max(y).min(x.min(y) + 256));
                let chunk = bytes[from..to].to_vec();
                bytes.splice(to..to, chunk);
            }
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = SimRequest::parse(&bytes);
    }

    #[test]
    fn parse_never_panics_on_mutated_requests(which in any::<Index>(), ms in prop::collection::vec(mutation(), 1..6)) {
        let reqs = requests();
        let original = reqs[which.index(reqs.len())].as_bytes().to_vec();
        let _ = SimRequest::parse(&apply(original, &ms));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn server_answers_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        send_checked(&bytes)?;
    }

    #[test]
    fn server_answers_mutated_requests(which in any::<Index>(), ms in prop::collection::vec(mutation(), 0..4)) {
        let reqs = requests();
        let original = reqs[which.index(reqs.len())].as_bytes().to_vec();
        send_checked(&apply(original, &ms))?;
    }
}

#[test]
fn every_recorded_request_is_answered_and_the_server_survives() {
    let s = server();
    let before = s.sim.counters().requests;
    let statuses: Vec<u16> = requests()
        .iter()
        .map(|r| send_checked(r.as_bytes()).unwrap())
        .collect();
    // Real requests are read as SOAP: some succeed (config Get, shell Create), some fault
    // (recorded shell ids the simulator never issued).
    assert!(
        statuses.contains(&200) && statuses.contains(&500),
        "{statuses:?}"
    );
    assert!(s.sim.counters().requests >= before + statuses.len() as u64);
    // Still alive and serving after all of the above.
    let identify = b"<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:wsmid=\"http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd\"><s:Header/><s:Body><wsmid:Identify/></s:Body></s:Envelope>";
    let status = s.rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), post(s.addr, &s.auth, identify)).await
    });
    assert_eq!(status.unwrap().unwrap(), 200);
}
