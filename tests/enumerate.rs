//! WS-Enumeration end to end against the embedded simulator (and a scripted server for
//! the recordings): typed streams, WQL and selector filters, the MI_Operation_Cancel
//! contract (Release while a Pull is pending, drop, deadline), expired contexts, EPRs
//! used for Invoke, and property tests that never panic either side.

#[path = "support/mini_http.rs"]
mod mini_http;
#[path = "support/recorded.rs"]
mod recorded;

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::StreamExt;
use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, TestRunner};
use serde::Deserialize;
use tokio_winrm::{
    Auth, CancelReason, Client, EnumEnd, EnumEvent, EnumItem, Enumeration, EnumerationMode, Error,
    Filter, Instance, Page, Resource, Value, Wql,
};
use winrm_simulator::{SimConfig, Simulator};
use wsman_protocol::envelope::Selector;

const T: Duration = Duration::from_secs(20);

#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(rename_all = "PascalCase")]
struct Service {
    name: String,
    display_name: String,
    state: String,
    start_mode: String,
    started: bool,
    accept_stop: bool,
    process_id: u32,
    exit_code: u32,
    install_date: Option<String>,
    path_name: String,
}

async fn sim_with(cfg: SimConfig) -> (Simulator, Client) {
    let sim = Simulator::start_with(cfg).await.unwrap();
    let client = client_for(&sim.endpoint(), sim.user(), sim.password());
    (sim, client)
}

fn client_for(url: &str, user: &str, password: &str) -> Client {
    Client::builder(url)
        .auth(Auth::basic(user, password))
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn services() -> Resource {
    Resource::wmi("root/cimv2", "Win32_Service")
}

fn items() -> Resource {
    Resource::wmi("root/cimv2", "Sim_Item")
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < T, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Reads the whole stream: the items, the one final status, and checks nothing follows.
async fn drain<T: Send + 'static>(mut e: Enumeration<T>) -> (Vec<T>, EnumEnd) {
    let mut out = Vec::new();
    let end = loop {
        match tokio::time::timeout(T, e.next())
            .await
            .expect("stream stalled")
        {
            Some(Ok(EnumEvent::Item(t))) => out.push(t),
            Some(Ok(EnumEvent::End(end))) => break end,
            Some(Err(err)) => panic!("error after {} items: {err}", out.len()),
            None => panic!("stream ended without a final status"),
            _ => panic!("an event of an unknown kind"),
        }
    };
    assert!(e.next().await.is_none(), "nothing after the final status");
    (out, end)
}

async fn next_item<T: Send + 'static>(e: &mut Enumeration<T>) -> T {
    match tokio::time::timeout(T, e.next())
        .await
        .expect("stream stalled")
    {
        Some(Ok(EnumEvent::Item(t))) => t,
        other => panic!("expected an item, got {:?}", other.map(|r| r.map(|_| ()))),
    }
}

fn instance_of(item: EnumItem) -> Instance {
    item.into_instance().expect("an instance")
}

#[tokio::test]
async fn full_enumeration_of_services_into_a_struct() {
    let (sim, client) = sim_with(SimConfig::default()).await;
    // Small batches: many Pulls, each with a fresh context id.
    let (all, end) = drain(
        client
            .enumerate_as::<Service>(&services())
            .max_elements(17)
            .start(),
    )
    .await;
    assert_eq!(end, EnumEnd::Complete);
    assert_eq!(all.len(), SimConfig::default().service_count);
    let names: BTreeSet<_> = all.iter().map(|s| s.name.clone()).collect();
    assert_eq!(names.len(), all.len(), "each service once");
    assert!(names.contains("WinRM"));
    for s in &all {
        assert_eq!(s.started, s.state == "Running", "{s:?}");
        assert!(s.install_date.is_none());
    }
    // Without OptimizeEnumeration the first batch comes from the first Pull.
    let (again, end) = drain(
        client
            .enumerate_as::<Service>(&services())
            .optimize(false)
            .max_elements(64)
            .start(),
    )
    .await;
    assert_eq!(end, EnumEnd::Complete);
    assert_eq!(again, all);
    // A Get of one enumerated instance agrees.
    let got: Service = client
        .get_as(&services().selector("Name", &all[7].name))
        .await
        .unwrap();
    assert_eq!(got, all[7]);
    assert_eq!(sim.counters().open_enumerations, 0);
    // collect_items is the short form.
    let n = client
        .enumerate(&items())
        .start()
        .collect_items()
        .await
        .unwrap()
        .len();
    assert_eq!(n as u64, SimConfig::default().synthetic_count);
}

#[tokio::test]
async fn wql_filters_give_the_right_subset() {
    let (sim, client) = sim_with(SimConfig::default()).await;
    let all: Vec<Instance> = drain(client.enumerate(&services()).start())
        .await
        .0
        .into_iter()
        .map(instance_of)
        .collect();
    let text = |i: &Instance, p: &str| i.get_str(p).unwrap_or_default().to_string();
    let num = |i: &Instance, p: &str| i.get(p).and_then(Value::as_u64).unwrap_or_default();
    type Pred = Box<dyn Fn(&Instance) -> bool>;
    let cases: Vec<(&str, Pred)> = vec![
        (
            "State = 'Running' AND StartMode = 'Auto'",
            Box::new(move |i| text(i, "State") == "Running" && text(i, "StartMode") == "Auto"),
        ),
        (
            "Name LIKE 'Win%' OR Name LIKE 'SimSvc00_1'",
            Box::new(move |i| {
                let n = text(i, "Name").to_lowercase();
                n.starts_with("win")
                    || (n.len() == 10 && n.starts_with("simsvc00") && n.ends_with('1'))
            }),
        ),
        (
            "ProcessId > 20000 AND NOT (State = 'Stopped')",
            Box::new(move |i| num(i, "ProcessId") > 20000 && text(i, "State") != "Stopped"),
        ),
        (
            "(StartMode = 'Disabled' OR StartMode = 'Manual') AND Started = TRUE",
            Box::new(move |i| text(i, "StartMode") != "Auto" && text(i, "Started") == "true"),
        ),
        ("Name = 'NoSuchService'", Box::new(|_| false)),
    ];
    for (cond, pred) in cases {
        let expected: BTreeSet<String> = all
            .iter()
            .filter(|i| pred(i))
            .map(|i| text(i, "Name"))
            .collect();
        let q = format!("SELECT * FROM Win32_Service WHERE {cond}");
        let (got, end) = drain(client.wql("root/cimv2", &q).max_elements(9).start()).await;
        assert_eq!(end, EnumEnd::Complete);
        let got: BTreeSet<String> = got
            .into_iter()
            .map(|i| text(&instance_of(i), "Name"))
            .collect();
        assert_eq!(got, expected, "{q}");
        // The same through the class's own resource URI.
        let (got2, _) = drain(client.enumerate(&services()).filter(Wql(&q)).start()).await;
        assert_eq!(got2.len(), expected.len(), "{q}");
    }
    // A property list comes back as XmlFragment items with just those properties.
    let (rows, _) = drain(
        client
            .wql(
                "root/cimv2",
                "SELECT Name, State FROM Win32_Service WHERE Name LIKE 'W%'",
            )
            .start(),
    )
    .await;
    assert!(!rows.is_empty());
    for r in rows.into_iter().map(instance_of) {
        let names: Vec<_> = r.properties.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["Name", "State"]);
        assert!(
            text(&r, "Name").to_lowercase().starts_with('w'),
            "LIKE is case-insensitive"
        );
    }
    // Range queries on the synthetic class.
    let (few, _) = drain(
        client
            .wql("root/cimv2", "SELECT * FROM Sim_Item WHERE Index >= 9990")
            .start(),
    )
    .await;
    assert_eq!(few.len(), 10);
    // A selector filter picks one instance by key.
    let (one, _) = drain(
        client
            .enumerate(&services())
            .filter(Filter::Selectors(vec![Selector::new("Name", "WinRM")]))
            .start(),
    )
    .await;
    assert_eq!(one.len(), 1);
    assert_eq!(instance_of(one[0].clone()).get_str("Name"), Some("WinRM"));
    assert_eq!(sim.counters().open_enumerations, 0);
}

#[tokio::test]
async fn bad_wql_is_cannot_process_filter() {
    let (sim, client) = sim_with(SimConfig::default()).await;
    for q in [
        "SELECT * FROM Win32_Processa WHERE name=\"sshd.exe\"",
        "SELECT FROM",
        "SELECT Nope FROM Win32_Service",
    ] {
        let mut e = client.wql("root/cimv2", q).start();
        let err = match tokio::time::timeout(T, e.next()).await.unwrap() {
            Some(Err(err)) => err,
            other => panic!("{q}: expected a fault, got {:?}", other.map(|r| r.is_ok())),
        };
        let f = err.fault().expect("a fault");
        assert!(f.is_bad_filter(), "{q}: {f}");
        assert_eq!(
            f.code(),
            Some(tokio_winrm::fault_code::CANNOT_PROCESS_FILTER)
        );
        assert!(e.next().await.is_none(), "the error is the last item");
    }
    assert_eq!(sim.counters().open_enumerations, 0);
}

fn slow_pulls() -> SimConfig {
    SimConfig {
        pull_delay: Duration::from_secs(60),
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn cancel_releases_while_a_pull_is_pending_and_delivers_what_was_received() {
    let (sim, client) = sim_with(slow_pulls()).await;
    let mut e = client.enumerate(&items()).max_elements(5).start();
    let handle = e.cancel_handle();
    let first = instance_of(next_item(&mut e).await);
    assert_eq!(first.get_str("Name"), Some("Item0000000"));
    // The stream pulls the next batch while the consumer holds this one.
    wait_for("a pending Pull", || sim.counters().pulls_pending == 1).await;
    let cancelled_at = std::time::Instant::now();
    handle.cancel();
    handle.cancel(); // idempotent
    let (rest, end) = drain(e).await;
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(5),
        "the Pull was abandoned, not waited out"
    );
    assert_eq!(
        end,
        EnumEnd::Cancelled {
            reason: CancelReason::User
        }
    );
    let names: Vec<_> = rest
        .into_iter()
        .map(|i| instance_of(i).get_str("Name").unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        ["Item0000001", "Item0000002", "Item0000003", "Item0000004"],
        "every item received before the cancel"
    );
    wait_for("the Release", || sim.counters().releases == 1).await;
    client.shutdown().await;
    wait_for("the pending Pull to end", || {
        sim.counters().pulls_pending == 0
    })
    .await;
    let c = sim.counters();
    assert_eq!(c.releases_while_pull_pending, 1, "{c:?}");
    assert_eq!(c.open_enumerations, 0, "{c:?}");
}

#[tokio::test]
async fn close_returns_the_release_result() {
    let (sim, client) = sim_with(slow_pulls()).await;
    let mut e = client.enumerate(&items()).max_elements(3).start();
    next_item(&mut e).await;
    wait_for("a pending Pull", || sim.counters().pulls_pending == 1).await;
    tokio::time::timeout(T, e.close()).await.unwrap().unwrap();
    let c = sim.counters();
    assert_eq!(
        (
            c.releases,
            c.releases_while_pull_pending,
            c.open_enumerations
        ),
        (1, 1, 0),
        "{c:?}"
    );
    // A finished enumeration (here within the first batch) closes without a Release.
    let mut e = client
        .wql(
            "root/cimv2",
            "SELECT * FROM Win32_Service WHERE Name = 'WinRM'",
        )
        .start();
    next_item(&mut e).await;
    assert!(matches!(
        e.next().await,
        Some(Ok(EnumEvent::End(EnumEnd::Complete)))
    ));
    tokio::time::timeout(T, e.close()).await.unwrap().unwrap();
    assert_eq!(sim.counters().releases, 1);
}

#[tokio::test]
async fn token_cancel_while_the_consumer_is_idle() {
    let (sim, client) = sim_with(SimConfig::default()).await;
    let token = tokio_util::sync::CancellationToken::new();
    let mut e = client
        .enumerate(&items())
        .max_elements(4)
        .cancellation(token.clone())
        .start();
    next_item(&mut e).await;
    // The driver has pulled the next batch and waits for room; nothing is pending.
    wait_for("the second batch", || sim.counters().requests >= 2).await;
    token.cancel();
    wait_for("the Release at once", || sim.counters().releases == 1).await;
    let (rest, end) = drain(e).await;
    assert_eq!(
        end,
        EnumEnd::Cancelled {
            reason: CancelReason::User
        }
    );
    assert!(
        rest.len() >= 3,
        "the rest of the first batch (and what was pulled) is delivered"
    );
    assert_eq!(sim.counters().open_enumerations, 0);
}

#[tokio::test]
async fn drop_sends_release_that_shutdown_waits_for() {
    let (sim, client) = sim_with(slow_pulls()).await;
    let mut e = client.enumerate(&items()).max_elements(2).start();
    next_item(&mut e).await;
    wait_for("a pending Pull", || sim.counters().pulls_pending == 1).await;
    drop(e);
    tokio::time::timeout(T, client.shutdown()).await.unwrap();
    let c = sim.counters();
    assert_eq!(
        (c.releases, c.open_enumerations),
        (1, 0),
        "released before shutdown() returned: {c:?}"
    );
    // Dropped before the first batch was read: still released.
    let (sim, client) = sim_with(SimConfig::default()).await;
    let e = client.enumerate(&items()).max_elements(2).start();
    wait_for("the Enumerate", || sim.counters().open_enumerations == 1).await;
    drop(e);
    tokio::time::timeout(T, client.shutdown()).await.unwrap();
    let c = sim.counters();
    assert_eq!((c.releases, c.open_enumerations), (1, 0), "{c:?}");
}

#[tokio::test]
async fn deadline_cancels_with_reason_timeout() {
    let (sim, client) = sim_with(slow_pulls()).await;
    let e = client
        .enumerate(&items())
        .max_elements(3)
        .deadline(Duration::from_millis(300))
        .start();
    let (got, end) = drain(e).await;
    assert_eq!(
        end,
        EnumEnd::Cancelled {
            reason: CancelReason::Timeout
        }
    );
    assert_eq!(got.len(), 3, "the first batch");
    client.shutdown().await;
    let c = sim.counters();
    assert_eq!((c.releases, c.open_enumerations), (1, 0), "{c:?}");
    // collect_items reports the cancel as an error.
    let err = client
        .enumerate(&items())
        .max_elements(3)
        .deadline(Duration::from_millis(100))
        .start()
        .collect_items()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Cancelled {
                reason: CancelReason::Timeout
            }
        ) && err.is_timeout(),
        "{err}"
    );
}

#[tokio::test]
async fn expired_context_is_a_typed_error() {
    let cfg = SimConfig {
        enumeration_timeout: Duration::from_millis(150),
        ..SimConfig::default()
    };
    let (sim, client) = sim_with(cfg).await;
    let mut e = client.enumerate(&services()).max_elements(1).start();
    next_item(&mut e).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut seen = 1;
    let err = loop {
        match tokio::time::timeout(T, e.next()).await.unwrap() {
            Some(Ok(EnumEvent::Item(_))) => seen += 1,
            Some(Err(err)) => break err,
            other => panic!(
                "expected the expired context, got {:?}",
                other.map(|r| r.is_ok())
            ),
        }
    };
    assert!(seen <= 3, "at most one batch ahead: {seen}");
    let f = err.fault().expect("a fault");
    assert!(f.is_invalid_enumeration_context(), "{f}");
    assert_eq!(f.code(), Some(2_150_858_779));
    assert!(e.next().await.is_none());
    assert_eq!(sim.counters().open_enumerations, 0);
}

#[tokio::test]
async fn enumerated_epr_invokes_stop_service() {
    let (sim, client) = sim_with(SimConfig::default()).await;
    let q = "SELECT * FROM Win32_Service WHERE State = 'Running' AND AcceptStop = TRUE AND Name LIKE 'SimSvc%'";
    let (rows, _) = drain(
        client
            .enumerate(&services())
            .filter(Wql(q))
            .mode(EnumerationMode::ObjectsAndReferences)
            .start(),
    )
    .await;
    let (inst, epr) = match &rows[0] {
        EnumItem::ObjectAndReference(i, r) => (i.clone(), r.clone()),
        other => panic!("{other:?}"),
    };
    assert_eq!(epr.selector("Name"), inst.get_str("Name"));
    let target = Resource::from_epr(&epr);
    let out = client
        .invoke(&target, "StopService", &Instance::new("StopService_INPUT"))
        .await
        .unwrap();
    assert_eq!(out.get("ReturnValue").and_then(Value::as_u64), Some(0));
    let now: Service = client.get_as(&target).await.unwrap();
    assert_eq!(now.state, "Stopped");
    // References mode: bare EPRs, one per instance.
    let (refs, _) = drain(
        client
            .enumerate(&services())
            .mode(EnumerationMode::References)
            .start(),
    )
    .await;
    assert_eq!(refs.len(), SimConfig::default().service_count);
    assert!(
        refs.iter()
            .all(|r| matches!(r, EnumItem::Reference(e) if e.selector("Name").is_some()))
    );
    assert_eq!(sim.counters().invokes, 1);
}

#[tokio::test]
async fn replay_recorded_shell_enumeration_and_wql_faults() {
    let rec = recorded::load("pypsrp/test_psrp_disconnect_runspaces");
    let ex = rec
        .exchanges
        .iter()
        .find(|x| x.response.contains("EnumerateResponse") && x.response.contains("<w:Items>"))
        .unwrap();
    let page = Page::parse(ex.response.as_bytes()).unwrap();
    assert!(page.end_of_sequence && page.context.is_none());
    let ids: Vec<_> = page
        .items
        .iter()
        .map(|i| {
            i.instance()
                .unwrap()
                .get_str("ShellId")
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        ids,
        [
            "B6631D8E-65A0-49F2-9053-A1B156C95777",
            "01AA3E43-9E21-424B-A7FC-BC16AA34F4CE"
        ]
    );
    let shell = page.items[0].instance().unwrap();
    assert_eq!(shell.class_name, "Shell");
    assert_eq!(shell.get_str("State"), Some("Disconnected"));
    // The same bytes served by a scripted server, through the stream.
    let body = ex.response.clone();
    let server =
        mini_http::Server::start(move |_, _| mini_http::Reply::Bytes(mini_http::soap(200, &body)))
            .await;
    let client = client_for(&server.url(), "u", "p");
    let shells = Resource::new("http://schemas.microsoft.com/wbem/wsman/1/windows/shell");
    let (got, end) = drain(client.enumerate(&shells).start()).await;
    assert_eq!((got.len(), end), (2, EnumEnd::Complete));
    let sent = server.requests()[0].text();
    assert!(
        sent.contains("<w:OptimizeEnumeration/><w:MaxElements>32000</w:MaxElements>"),
        "{sent}"
    );
    assert!(
        sent.contains(
            ex.request
                .split("<wsman:ResourceURI s:mustUnderstand=\"true\">")
                .nth(1)
                .unwrap()
                .split('<')
                .next()
                .unwrap()
        )
    );
    // The recorded WQL faults, as the answer to an Enumerate.
    for name in ["WinRb-WinRM/soap_fault_v1", "WinRb-WinRM/soap_fault_v2"] {
        let fault = recorded::load(name).exchanges[0].response.clone();
        let err = Page::parse(fault.as_bytes()).unwrap_err();
        assert!(err.fault().unwrap().is_bad_filter(), "{name}");
        let server = mini_http::Server::start(move |_, _| {
            mini_http::Reply::Bytes(mini_http::soap(500, &fault))
        })
        .await;
        let client = client_for(&server.url(), "u", "p");
        let mut e = client
            .wql(
                "root/cimv2",
                "Select * from Win32_Processa where name=\"sshd.exe\"",
            )
            .start();
        let err = match tokio::time::timeout(T, e.next()).await.unwrap() {
            Some(Err(err)) => err,
            other => panic!("{name}: {:?}", other.map(|r| r.is_ok())),
        };
        let f = err.fault().expect("typed fault");
        assert!(f.is_bad_filter(), "{name}: {f}");
        assert_eq!(f.code(), Some(2_150_858_778));
        assert_eq!(
            f.provider.as_ref().and_then(|p| p.message.as_deref()),
            Some("The specified class does not exist in the given namespace.")
        );
        assert!(e.next().await.is_none());
    }
}

/// WQL-ish strings: fragments of valid queries mixed with noise.
fn wql_strategy() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        Just("SELECT".to_string()),
        Just("*".to_string()),
        Just("FROM".to_string()),
        Just("WHERE".to_string()),
        Just("Win32_Service".to_string()),
        Just("Sim_Item".to_string()),
        Just("Name".to_string()),
        Just("State".to_string()),
        Just("Index".to_string()),
        Just("AND".to_string()),
        Just("OR".to_string()),
        Just("NOT".to_string()),
        Just("LIKE".to_string()),
        Just("IS NULL".to_string()),
        Just("'W%'".to_string()),
        Just("'[a-".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just("=".to_string()),
        Just("<>".to_string()),
        Just(">=".to_string()),
        Just(",".to_string()),
        (0i64..100_000).prop_map(|n| n.to_string()),
        "[ -~]{0,6}",
        "\\PC{0,3}",
    ];
    prop::collection::vec(word, 0..14).prop_map(|w| w.join(" "))
}

fn selectors_strategy() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        Just("Name".to_string()),
        Just("State".to_string()),
        Just("Index".to_string()),
        "[A-Za-z_]{1,8}"
    ];
    let value = prop_oneof![
        Just("WinRM".to_string()),
        Just("Item0000003".to_string()),
        Just("Running".to_string()),
        "\\PC{0,8}"
    ];
    prop::collection::vec((name, value), 0..4)
}

/// An enumeration either completes or fails with a fault the simulator meant (never a
/// panic turned into E_FAIL, never a transport or parse error).
async fn values_or_typed_fault(e: Enumeration<EnumItem>) -> Result<usize, String> {
    match tokio::time::timeout(T, e.collect_items()).await {
        Err(_) => Err("timed out".into()),
        Ok(Ok(v)) => Ok(v.len()),
        Ok(Err(Error::Fault(f))) if f.code() != Some(0x8000_4005) => Ok(0),
        Ok(Err(other)) => Err(other.to_string()),
    }
}

#[test]
fn random_filters_and_selector_sets_get_values_or_typed_faults() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (sim, client) = rt.block_on(sim_with(SimConfig {
        synthetic_count: 300,
        ..SimConfig::default()
    }));
    let mut runner = TestRunner::new(PropConfig::with_cases(96));
    runner
        .run(&wql_strategy(), |q| {
            let r = rt.block_on(values_or_typed_fault(
                client.wql("root/cimv2", &q).max_elements(50).start(),
            ));
            prop_assert!(r.is_ok(), "{q:?}: {r:?}");
            Ok(())
        })
        .unwrap();
    let mut runner = TestRunner::new(PropConfig::with_cases(64));
    runner
        .run(
            &(selectors_strategy(), prop::bool::ANY),
            |(sel, on_items)| {
                let set = sel.iter().map(|(n, v)| Selector::new(n, v)).collect();
                let res = if on_items { items() } else { services() };
                let r = rt.block_on(values_or_typed_fault(
                    client
                        .enumerate(&res)
                        .filter(Filter::Selectors(set))
                        .start(),
                ));
                prop_assert!(r.is_ok(), "{sel:?}: {r:?}");
                Ok(())
            },
        )
        .unwrap();
    assert_eq!(sim.counters().open_enumerations, 0);
}

/// Instances with awkward text, nil values and arrays.
fn instance_strategy() -> impl Strategy<Value = Instance> {
    let value = prop_oneof![
        "\\PC{0,12}".prop_map(Value::String),
        Just(Value::Null),
        (0u64..u64::MAX).prop_map(Value::UInt),
        prop::collection::vec("[a-z<&>\"' ]{0,5}".prop_map(Value::String), 2..4)
            .prop_map(Value::Array),
    ];
    prop::collection::vec(("[A-Z][A-Za-z0-9_]{0,10}", value), 0..12).prop_map(|props| {
        let mut inst = Instance::new("Win32_Thing");
        let mut seen = BTreeSet::new();
        for (n, v) in props {
            if seen.insert(n.clone()) {
                inst.properties.push((n, v));
            }
        }
        inst
    })
}

#[test]
fn streaming_reader_agrees_with_the_tree_reader() {
    let mut runner = TestRunner::new(PropConfig::with_cases(200));
    runner
        .run(&prop::collection::vec(instance_strategy(), 0..5), |insts| {
            let mut w = wsman_protocol::envelope::XmlWriter::default();
            for i in &insts {
                i.write(&mut w, "Win32_Thing", "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Thing");
            }
            let items = w.into_string();
            let doc = format!(
                "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:n=\"http://schemas.xmlsoap.org/ws/2004/09/enumeration\"><s:Body><n:PullResponse><n:EnumerationContext>x</n:EnumerationContext><n:Items>{items}</n:Items></n:PullResponse></s:Body></s:Envelope>"
            );
            let page = Page::parse(doc.as_bytes()).unwrap();
            let tree = wsman_protocol::xml::parse(doc.as_bytes()).unwrap();
            let body_items = tree.children[0].children[0].children[1].children.iter().map(Instance::from_element);
            let fast: Vec<_> = page.items.iter().map(|i| i.instance().unwrap().clone()).collect();
            prop_assert_eq!(fast, body_items.collect::<Vec<_>>());
            Ok(())
        })
        .unwrap();
    // Arbitrary bytes and truncations never panic.
    let mut runner = TestRunner::new(PropConfig::with_cases(300));
    let sample = recorded::load("pypsrp/test_psrp_disconnect_runspaces")
        .exchanges
        .iter()
        .find(|x| x.response.contains("<w:Items>"))
        .unwrap()
        .response
        .clone();
    runner
        .run(
            &(0..sample.len(), prop::collection::vec(any::<u8>(), 0..8)),
            |(cut, noise)| {
                let mut bytes = sample.as_bytes()[..cut].to_vec();
                bytes.extend(noise);
                let _ = Page::parse(&bytes);
                Ok(())
            },
        )
        .unwrap();
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
struct Mixed {
    count: u32,
    delta: Option<i64>,
    flag: bool,
    label: String,
    tags: Vec<String>,
    note: Option<String>,
    #[serde(default)]
    small: Option<u8>,
}

/// Property values that may or may not fit `Mixed`'s fields.
fn mixed_strategy() -> impl Strategy<Value = Instance> {
    let text = prop_oneof![
        Just("42".to_string()),
        Just(" 7 ".to_string()),
        Just("-3".to_string()),
        Just("300".to_string()),
        Just("TRUE".to_string()),
        Just("0".to_string()),
        Just(String::new()),
        "\\PC{0,6}",
    ];
    let value = prop_oneof![
        text.clone().prop_map(Value::String),
        Just(Value::Null),
        prop::collection::vec(text.prop_map(Value::String), 1..3).prop_map(Value::Array),
    ];
    let name = prop_oneof![
        Just("Count"),
        Just("Delta"),
        Just("Flag"),
        Just("Label"),
        Just("Tags"),
        Just("Note"),
        Just("Small"),
        Just("Other")
    ];
    prop::collection::vec((name, value), 0..10).prop_map(|props| {
        let mut inst = Instance::new("Win32_Mixed");
        for (n, v) in props {
            if inst.get(n).is_none() {
                inst.properties.push((n.to_string(), v));
            }
        }
        inst
    })
}

#[test]
fn typed_reader_agrees_with_from_instance() {
    let mut runner = TestRunner::new(PropConfig::with_cases(400));
    runner
        .run(&mixed_strategy(), |inst| {
            let mut w = wsman_protocol::envelope::XmlWriter::default();
            inst.write(&mut w, "Win32_Mixed", "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Mixed");
            let doc = format!(
                "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:n=\"http://schemas.xmlsoap.org/ws/2004/09/enumeration\"><s:Body><n:PullResponse><n:Items>{}</n:Items><n:EndOfSequence/></n:PullResponse></s:Body></s:Envelope>",
                w.into_string()
            );
            let (items, _, end) = tokio_winrm::parse_page_as::<Mixed>(doc.as_bytes()).unwrap();
            prop_assert!(end);
            let fast = items.into_iter().next().unwrap();
            let slow = tokio_winrm::from_instance::<Mixed>(&inst);
            match (&fast, &slow) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(_), Err(_)) => {}
                _ => prop_assert!(false, "typed {fast:?} vs from_instance {slow:?} for {inst:?}"),
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn namespaces_are_resolved_not_matched_by_prefix() {
    // Unusual prefixes, a default namespace, a redeclared prefix, xsi under another name.
    let doc = concat!(
        "<env:Envelope xmlns:env=\"http://www.w3.org/2003/05/soap-envelope\"><env:Body>",
        "<PullResponse xmlns=\"http://schemas.xmlsoap.org/ws/2004/09/enumeration\"><EnumerationContext>c1</EnumerationContext>",
        "<m:Items xmlns:m=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\">",
        "<m:Item><q:Svc xmlns:q=\"urn:svc\" xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\"><q:Name>A</q:Name><q:Gone i:nil=\"true\"/>",
        "<q:When><c:Datetime xmlns:c=\"http://schemas.dmtf.org/wbem/wscim/1/common\">2024-02-03T04:05:06Z</c:Datetime></q:When></q:Svc>",
        "<x:EndpointReference xmlns:x=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\"><x:Address>anon</x:Address>",
        "<x:ReferenceParameters><m:ResourceURI>urn:svc</m:ResourceURI><m:SelectorSet><m:Selector Name=\"Name\">A</m:Selector></m:SelectorSet></x:ReferenceParameters></x:EndpointReference></m:Item>",
        "<m:Item xmlns:m=\"urn:not-wsman\"><m:X/></m:Item>",
        "</m:Items><m:EndOfSequence xmlns:m=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\"/></PullResponse></env:Body></env:Envelope>"
    );
    let page = Page::parse(doc.as_bytes()).unwrap();
    assert!(page.end_of_sequence);
    assert_eq!(page.context.as_deref(), Some("c1"));
    assert_eq!(page.items.len(), 2);
    let EnumItem::ObjectAndReference(inst, epr) = &page.items[0] else {
        panic!("{:?}", page.items[0])
    };
    assert_eq!(inst.namespace.as_deref(), Some("urn:svc"));
    assert!(inst.get("Gone").unwrap().is_null());
    assert_eq!(inst.get("When").unwrap().as_datetime().unwrap().day, 3);
    assert_eq!(epr.selector("Name"), Some("A"));
    // In another namespace, "Item" is just an instance element.
    let other = page.items[1].instance().unwrap();
    assert_eq!(
        (other.class_name.as_str(), other.namespace.as_deref()),
        ("Item", Some("urn:not-wsman"))
    );
}
