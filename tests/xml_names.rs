//! Names that become XML element names in Put, Create and Invoke bodies (class,
//! property and method names) are checked before anything is sent: a name that is not
//! an XML `NCName` is refused with `Error::InvalidName`, and the simulator sees no
//! request. Values, and selector names (attribute values), stay escaped text.

use std::future::Future;
use std::time::Duration;

use tokio_winrm::{Auth, Client, Error, Instance, InvalidName, Resource, Value};
use winrm_simulator::Simulator;

const WMI: &str = "root/cimv2";

/// Runs a test body with a deadline, so a hang fails fast.
async fn within<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test timed out");
}

async fn start() -> (Simulator, Client) {
    let sim = Simulator::start().await.unwrap();
    let client = Client::builder(sim.endpoint())
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    (sim, client)
}

/// The refused name of an `Error::InvalidName`.
fn invalid_name(r: Result<impl std::fmt::Debug, Error>) -> InvalidName {
    match r {
        Err(Error::InvalidName(n)) => n,
        other => panic!("expected Error::InvalidName, got {other:?}"),
    }
}

/// Requests the simulator has seen: its counter and its log.
fn seen(sim: &Simulator) -> (u64, usize) {
    (sim.counters().requests, sim.requests().len())
}

const BAD_PROPERTY_NAMES: &[&str] = &[
    "Start Mode",
    "StartMode>Manual</p:StartMode><p:State",
    "",
    "1st",
    "-x",
    ".x",
    "p:StartMode",
    "A\"B",
    "A&B",
];

#[tokio::test]
async fn put_refuses_bad_names_before_sending() {
    within(async {
        let (sim, client) = start().await;
        let res = Resource::wmi(WMI, "Win32_Service").selector("Name", "W32Time");
        for &name in BAD_PROPERTY_NAMES {
            let before = seen(&sim);
            let change = Instance::new("Win32_Service").with(name, "Manual");
            let e = invalid_name(client.put(&res, &change).await);
            assert_eq!((e.what, e.name.as_str()), ("property name", name));
            assert_eq!(seen(&sim), before, "{name:?} reached the simulator");
        }
        // In an embedded instance, inside an array.
        let nested = Instance::new("Win32_Service").with(
            "Inner",
            Value::Array(vec![Value::Instance(Box::new(
                Instance::new("X").with("Ok", "1").with("Not ok", "2"),
            ))]),
        );
        let before = seen(&sim);
        assert_eq!(invalid_name(client.put(&res, &nested).await).name, "Not ok");
        // The class name, the element name of the body.
        let class = Instance::new("Win32_Service xmlns:q=\"x\"").with("StartMode", "Manual");
        let e = invalid_name(client.put(&res, &class).await);
        assert_eq!(e.what, "class name");
        assert_eq!(seen(&sim), before);
        assert!(e.to_string().contains("Win32_Service xmlns:q"), "{e}");

        // The same put with a good name is sent, and its markup-like value escaped.
        let good = Instance::new("Win32_Service").with("StartMode", "Disabled");
        let echoed = client.put(&res, &good).await.unwrap().unwrap();
        assert_eq!(echoed.get_str("StartMode"), Some("Disabled"));
        assert_eq!(sim.counters().puts, 1);
        assert!(seen(&sim).0 > before.0);
    })
    .await;
}

#[tokio::test]
async fn create_refuses_bad_names_before_sending() {
    within(async {
        let (sim, client) = start().await;
        let res = Resource::wmi(WMI, "Win32_Environment");
        for &name in BAD_PROPERTY_NAMES {
            let before = seen(&sim);
            let inst = Instance::new("Win32_Environment").with(name, "x");
            let e = invalid_name(client.create(&res, &inst).await);
            assert_eq!((e.what, e.name.as_str()), ("property name", name));
            assert_eq!(seen(&sim), before, "{name:?} reached the simulator");
        }
        // With no class name, the resource's last segment is the element name.
        let before = seen(&sim);
        let odd = Resource::new("http://example.invalid/wmi/root/cimv2/Bad Class");
        let e = invalid_name(client.create(&odd, &Instance::new("")).await);
        assert_eq!((e.what, e.name.as_str()), ("class name", "Bad Class"));
        assert_eq!(seen(&sim), before);

        // A Create with good names is sent (whatever the simulator answers to it).
        let good = Instance::new("Win32_Environment").with("Name", "a<b>&c");
        let _ = client.create(&res, &good).await;
        assert!(seen(&sim).0 > before.0, "a good Create was not sent");
    })
    .await;
}

#[tokio::test]
async fn invoke_refuses_bad_method_and_parameter_names_before_sending() {
    within(async {
        let (sim, client) = start().await;
        let res = Resource::wmi(WMI, "Win32_Process");
        let input = Instance::new("Create_INPUT").with("CommandLine", "notepad.exe");
        let before = seen(&sim);
        for method in [
            "Create_INPUT xmlns:p=\"x\"/><p:Create",
            "Create Now",
            "",
            "9Create",
        ] {
            let e = invalid_name(client.invoke(&res, method, &input).await);
            assert_eq!((e.what, e.name.as_str()), ("method name", method));
        }
        for &name in BAD_PROPERTY_NAMES {
            let bad = Instance::new("Create_INPUT").with(name, "x");
            let e = invalid_name(client.invoke(&res, "Create", &bad).await);
            assert_eq!((e.what, e.name.as_str()), ("property name", name));
        }
        // Invoke input's class name is not written: it is not checked.
        let ignored = Instance::new("not a name").with("CommandLine", "notepad.exe");
        assert_eq!(seen(&sim), before, "a refused Invoke reached the simulator");
        assert_eq!(sim.counters().invokes, 0);

        let out = client.invoke(&res, "Create", &ignored).await.unwrap();
        assert_eq!(out.get("ReturnValue").and_then(Value::as_u64), Some(0));
        assert_eq!(sim.counters().invokes, 1);
    })
    .await;
}
