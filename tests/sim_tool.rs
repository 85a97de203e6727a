//! The simulator as a testing tool: classes and commands a test registers, faults it
//! injects, the request log it asserts on, and the "user automation" pattern a user
//! copies to test their own code without a Windows host.

use std::future::Future;
use std::time::Duration;

use tokio_winrm::{
    Auth, Client, EnumItem, EnumerationMode, Error, Filter, Instance, Resource, Value,
};
use winrm_simulator::{CommandContext, Injection, Operation, SimClass, SimFault, Simulator};
use wsman_protocol::envelope::Selector;

/// Runs a test body with a deadline, so a hang fails fast.
async fn within<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test timed out");
}

fn client(sim: &Simulator) -> Client {
    Client::builder(sim.endpoint())
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn widgets() -> SimClass {
    SimClass::new("Acme_Widget")
        .key("Name")
        .property("Size")
        .property("Color")
        .instance([
            ("Name", Value::from("gear")),
            ("Size", Value::from(3u64)),
            ("Color", Value::from("red")),
        ])
        .instance([("Name", Value::from("cog")), ("Size", Value::from(5u64))])
        .instance([
            ("Name", Value::from("sprocket")),
            ("Size", Value::from(8u64)),
            ("Color", Value::from("blue")),
        ])
}

#[tokio::test]
async fn registered_class_get_by_selector() {
    within(async {
        let sim = Simulator::start().await.unwrap();
        sim.register_class(widgets());
        let c = client(&sim);
        let cog = c
            .get(&Resource::wmi("root/cimv2", "Acme_Widget").selector("Name", "COG"))
            .await
            .unwrap();
        assert_eq!(cog.class_name, "Acme_Widget");
        assert_eq!(cog.get_str("Name"), Some("cog"));
        // Untyped XML: the client reads numbers as text.
        assert_eq!(cog.get_str("Size"), Some("5"));
        // A declared property the instance lacks is nil.
        assert_eq!(cog.get("Color"), Some(&Value::Null));
        // An unknown key value, or a selector that is not a key: InvalidSelectors.
        for r in [
            Resource::wmi("root/cimv2", "Acme_Widget").selector("Name", "nope"),
            Resource::wmi("root/cimv2", "Acme_Widget").selector("Size", "5"),
        ] {
            match c.get(&r).await {
                Err(Error::Fault(f)) => assert_eq!(f.code(), Some(2_150_858_843), "{f:?}"),
                other => panic!("expected InvalidSelectors, got {other:?}"),
            }
        }
    })
    .await;
}

#[tokio::test]
async fn registered_class_enumerates_with_wql_and_eprs() {
    within(async {
        let sim = Simulator::start().await.unwrap();
        sim.register_class(widgets());
        let c = client(&sim);
        let all = c
            .enumerate(&Resource::wmi("root/cimv2", "Acme_Widget"))
            .start()
            .collect_items()
            .await
            .unwrap();
        assert_eq!(all.len(), 3);
        let big = c
            .wql(
                "root/cimv2",
                "SELECT Name FROM Acme_Widget WHERE Size > 4 AND Color IS NOT NULL",
            )
            .start()
            .collect_items()
            .await
            .unwrap();
        let names: Vec<_> = big
            .iter()
            .map(|i| i.instance().and_then(|i| i.get_str("Name")).unwrap())
            .collect();
        assert_eq!(names, ["sprocket"]);
        // Unknown properties in the query are refused, as for the built-in classes.
        let bad = c
            .wql("root/cimv2", "SELECT Weight FROM Acme_Widget")
            .start()
            .collect_items()
            .await;
        assert!(matches!(bad, Err(Error::Fault(_))), "{bad:?}");
        // EPRs carry the key selector, and a Get through one works.
        let refs = c
            .enumerate(&Resource::wmi("root/cimv2", "Acme_Widget"))
            .mode(EnumerationMode::References)
            .start()
            .collect_items()
            .await
            .unwrap();
        let EnumItem::Reference(epr) = &refs[0] else {
            panic!("expected a reference: {refs:?}");
        };
        assert_eq!(epr.selectors.len(), 1, "{epr:?}");
        assert_eq!(epr.selectors[0].name, "Name");
        let again = c.get(&Resource::from_epr(epr)).await.unwrap();
        assert_eq!(again.get_str("Name"), Some("gear"));
        // A selector filter picks one instance by key.
        let one = c
            .enumerate(&Resource::wmi("root/cimv2", "Acme_Widget"))
            .filter(Filter::Selectors(vec![Selector::new("Name", "cog")]))
            .start()
            .collect_items()
            .await
            .unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(
            one[0].instance().and_then(|i| i.get_str("Name")),
            Some("cog")
        );
        assert_eq!(sim.counters().open_enumerations, 0);
    })
    .await;
}

#[tokio::test]
async fn registering_again_replaces_the_class() {
    within(async {
        let sim = Simulator::start().await.unwrap();
        sim.register_class(widgets());
        sim.register_class(
            SimClass::new("acme_widget")
                .key("Name")
                .instance([("Name", "only")]),
        );
        let c = client(&sim);
        let all = c
            .wql("root/cimv2", "SELECT * FROM Acme_Widget")
            .start()
            .collect_items()
            .await
            .unwrap();
        assert_eq!(all.len(), 1);
        // A class that was never registered stays unknown.
        let missing = c
            .get(&Resource::wmi("root/cimv2", "Acme_Gadget").selector("Name", "x"))
            .await;
        assert!(matches!(missing, Err(Error::Fault(_))), "{missing:?}");
    })
    .await;
}

#[tokio::test]
async fn register_command_takes_a_plain_async_block_or_a_boxed_future() {
    within(async {
        let sim = Simulator::start().await.unwrap();
        sim.register_command("greet", |ctx: CommandContext| async move {
            ctx.print(&format!("hello {}\r\n", ctx.args.join(" ")))
                .await;
            7
        });
        // The boxed form existing callers use still compiles.
        sim.register_command("boxed", |ctx: CommandContext| {
            Box::pin(async move {
                ctx.print("boxed\r\n").await;
                0
            })
        });
        let c = client(&sim);
        let out = c.run("greet", &["world"]).await.unwrap();
        assert_eq!(out.stdout_text(), "hello world\r\n");
        assert_eq!(out.code, Some(7));
        let out = c.run("boxed", &[]).await.unwrap();
        assert_eq!(out.stdout_text(), "boxed\r\n");
        assert_eq!(out.code, Some(0));
    })
    .await;
}

fn widget(name: &str) -> Resource {
    Resource::wmi("root/cimv2", "Acme_Widget").selector("Name", name)
}

#[tokio::test]
async fn injected_fault_code_applies_to_the_next_n_matching_requests() {
    within(async {
        let sim = Simulator::start().await.unwrap();
        sim.register_class(widgets());
        let c = client(&sim);
        sim.inject(Injection::on(Operation::Get).fault_code(1726).times(2));
        assert_eq!(sim.pending_injections(), 2);
        // Other operations are not touched.
        c.wql("root/cimv2", "SELECT * FROM Acme_Widget")
            .start()
            .collect_items()
            .await
            .unwrap();
        for _ in 0..2 {
            match c.get(&widget("gear")).await {
                Err(Error::Fault(f)) => assert_eq!(f.code(), Some(1726), "{f:?}"),
                other => panic!("expected the injected fault, got {other:?}"),
            }
        }
        // Used up: the third Get succeeds.
        assert_eq!(
            c.get(&widget("gear")).await.unwrap().get_str("Name"),
            Some("gear")
        );
        assert_eq!(sim.pending_injections(), 0);
        assert_eq!(sim.counters().injected, 2);
    })
    .await;
}

/// `after(n)`: the first n matching requests go by untouched, then the injection
/// applies; an injection armed earlier does not hide the requests from its count.
#[tokio::test]
async fn injected_fault_after_n_matching_requests_hits_the_next_one() {
    within(async {
        let sim = Simulator::start().await.unwrap();
        sim.register_class(widgets());
        let c = client(&sim);
        let code = |r: Result<tokio_winrm::Instance, Error>| match r {
            Ok(_) => None,
            Err(Error::Fault(f)) => f.code(),
            Err(e) => panic!("{e}"),
        };
        sim.inject(Injection::on(Operation::Get).fault_code(1726));
        sim.inject(Injection::on(Operation::Get).fault_code(5).after(2));
        assert_eq!(sim.pending_injections(), 2);
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(code(c.get(&widget("gear")).await));
        }
        // The first Get takes the first injection and counts for the second; the second
        // goes by; the third takes the second injection; the fourth is untouched.
        assert_eq!(got, [Some(1726), None, Some(5), None]);
        assert_eq!(sim.pending_injections(), 0);
        assert_eq!(sim.counters().injected, 2);
    })
    .await;
}

#[tokio::test]
async fn injected_custom_fault_and_resource_uri_filter() {
    within(async {
        let sim = Simulator::start().await.unwrap();
        sim.register_class(widgets());
        let c = client(&sim);
        let mut access_denied = SimFault::internal("Access is denied.", 5);
        access_denied.subcode = "w:AccessDenied".into();
        access_denied.code = "s:Sender";
        sim.inject(
            Injection::on(Operation::Get)
                .resource_uri("http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/acme_")
                .fault(access_denied),
        );
        // A Get of another class does not match.
        c.get(&Resource::wmi("root/cimv2", "Win32_Service").selector("Name", "WinRM"))
            .await
            .unwrap();
        match c.get(&widget("cog")).await {
            Err(Error::Fault(f)) => {
                assert_eq!(f.code(), Some(5), "{f:?}");
                assert!(f.to_string().contains("Access is denied"), "{f}");
            }
            other => panic!("expected the injected fault, got {other:?}"),
        }
        c.get(&widget("cog")).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn injected_http_status() {
    within(async {
        let sim = Simulator::start().await.unwrap();
        sim.register_class(widgets());
        let c = client(&sim);
        sim.inject(Injection::on(Operation::Any).http_status(503));
        match c.get(&widget("gear")).await {
            Err(Error::Http { status, .. }) => assert_eq!(status, 503),
            other => panic!("expected HTTP 503, got {other:?}"),
        }
        c.get(&widget("gear")).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn injected_delay_holds_the_request() {
    within(async {
        let sim = Simulator::start().await.unwrap();
        sim.register_class(widgets());
        let c = client(&sim);
        c.get(&widget("gear")).await.unwrap(); // connection up
        sim.inject(Injection::on(Operation::Get).delay(Duration::from_millis(400)));
        let t = std::time::Instant::now();
        c.get(&widget("gear")).await.unwrap();
        assert!(
            t.elapsed() >= Duration::from_millis(400),
            "{:?}",
            t.elapsed()
        );
        let t = std::time::Instant::now();
        c.get(&widget("gear")).await.unwrap();
        assert!(
            t.elapsed() < Duration::from_millis(400),
            "{:?}",
            t.elapsed()
        );
    })
    .await;
}

#[tokio::test]
async fn injected_connection_drop() {
    within(async {
        let sim = Simulator::start().await.unwrap();
        sim.register_class(widgets());
        let c = client(&sim);
        // A Get is safe to repeat: the client re-sends it once on a fresh connection.
        sim.inject(Injection::on(Operation::Get).drop_connection());
        c.get(&widget("gear")).await.unwrap();
        let gets = sim
            .requests()
            .iter()
            .filter(|r| r.action.ends_with("/transfer/Get"))
            .count();
        assert_eq!(gets, 2);
        assert_eq!(sim.counters().connections, 2);
        // An Invoke is not: the client reports that the server may have carried it out.
        let create =
            "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Process/Create";
        sim.inject(Injection::on(Operation::Action(create.into())).drop_connection());
        let r = c
            .invoke(
                &Resource::wmi("root/cimv2", "Win32_Process"),
                "Create",
                &Instance::new("Win32_Process_INPUT").with("CommandLine", "notepad.exe"),
            )
            .await;
        assert!(matches!(r, Err(Error::ResponseLost { .. })), "{r:?}");
    })
    .await;
}

#[tokio::test]
async fn request_log_records_what_the_client_sent() {
    within(async {
        let sim = Simulator::start().await.unwrap();
        sim.register_class(widgets());
        let c = client(&sim);
        c.get(&widget("sprocket")).await.unwrap();
        c.run("echo", &["hi"]).await.unwrap();
        let log = sim.requests();
        let get = log
            .iter()
            .find(|r| r.action.ends_with("/transfer/Get"))
            .expect("the Get is logged");
        assert_eq!(
            get.resource_uri.as_deref(),
            Some("http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Acme_Widget")
        );
        assert_eq!(get.selector("name"), Some("sprocket"));
        let command = log
            .iter()
            .find(|r| r.action.ends_with("/shell/Command"))
            .expect("the Command is logged");
        assert!(
            command.body.contains("<rsp:Command>echo</rsp:Command>"),
            "{}",
            command.body
        );
        assert!(command.selector("ShellId").is_some(), "{command:?}");
        // In order, Get before Create and Command.
        let pos = |suffix: &str| log.iter().position(|r| r.action.ends_with(suffix)).unwrap();
        assert!(pos("/transfer/Get") < pos("/transfer/Create"));
        assert!(pos("/transfer/Create") < pos("/shell/Command"));
        assert!(log.windows(2).all(|w| w[0].at <= w[1].at));
        sim.clear_requests();
        assert!(sim.requests().is_empty());
        c.get(&widget("gear")).await.unwrap();
        assert_eq!(sim.requests().len(), 1);
    })
    .await;
}

/// The log carries the request's options and timeouts (what a client's settings put
/// on the wire), and a request the simulator could not read is logged with the reason
/// of its fault.
#[tokio::test]
async fn request_log_has_options_timeouts_and_refused_requests() {
    within(async {
        let sim = Simulator::start().await.unwrap();
        let c = Client::builder(sim.endpoint())
            .auth(Auth::basic(sim.user(), sim.password()))
            .allow_insecure_basic(true)
            .operation_timeout(Duration::from_secs(7))
            .max_envelope_size(200_000)
            .build()
            .unwrap();
        let shell = c.shell().codepage(437).open().await.unwrap();
        shell.close().await.unwrap();
        let log = sim.requests();
        let create = log
            .iter()
            .find(|r| r.action.ends_with("/transfer/Create"))
            .expect("the Create is logged");
        assert_eq!(create.option("winrs_codepage"), Some("437"), "{create:?}");
        assert_eq!(create.operation_timeout, Some(Duration::from_secs(7)));
        assert_eq!(create.max_envelope_size, Some(200_000));
        assert_eq!(create.refused, None);

        // Not XML at all, with valid credentials: a fault, and a log entry saying why.
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let url = sim.endpoint();
        let authority = url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let mut tcp = tokio::net::TcpStream::connect(&authority).await.unwrap();
        let body = "<s:Envelope this is not xml";
        let credentials = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{}:{}", sim.user(), sim.password()),
        );
        let head = format!(
            "POST /wsman HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Basic {credentials}\r\n\
             Content-Type: application/soap+xml;charset=UTF-8\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        tcp.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 400") || answer.starts_with("HTTP/1.1 500"),
            "{answer}"
        );
        let refused = sim.requests().into_iter().last().expect("logged");
        assert!(
            refused.refused.as_deref().is_some_and(|r| !r.is_empty()),
            "{refused:?}"
        );
        assert!(refused.action.is_empty(), "{refused:?}");
    })
    .await;
}

// ---------------------------------------------------------------------------
// The "user automation" pattern: a function written as a user writes it, against the
// public client API only, tested without Windows.

/// What the user's automation reports for one host.
#[derive(Debug, PartialEq)]
struct Inventory {
    /// Names of the widgets larger than `min_size`.
    big_widgets: Vec<String>,
    /// The deploy tool's exit code and first output line.
    deploy: Option<(i64, String)>,
}

/// The user's code: lists the big widgets, then deploys; a failed deploy (a fault, or
/// a lost connection) is reported as `None` instead of failing the whole run, while a
/// failed query is an error.
async fn inventory_and_deploy(client: &Client, min_size: u64) -> Result<Inventory, Error> {
    let query = format!("SELECT Name FROM Acme_Widget WHERE Size > {min_size}");
    let mut big_widgets = Vec::new();
    for item in client
        .wql("root/cimv2", &query)
        .start()
        .collect_items()
        .await?
    {
        if let Some(name) = item.instance().and_then(|i| i.get_str("Name")) {
            big_widgets.push(name.to_string());
        }
    }
    let deploy = match client
        .run("deploy", &["--widgets", &big_widgets.join(",")])
        .await
    {
        Ok(out) => Some((
            out.code.unwrap_or(-1),
            out.stdout_text()
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
        )),
        Err(Error::Fault(_) | Error::ResponseLost { .. }) => None,
        Err(e) => return Err(e),
    };
    Ok(Inventory {
        big_widgets,
        deploy,
    })
}

async fn automation_sim() -> Simulator {
    let sim = Simulator::start().await.unwrap();
    sim.register_class(widgets());
    sim.register_command("deploy", |ctx: CommandContext| async move {
        ctx.print(&format!("deployed {}\r\n", ctx.args[1])).await;
        0
    });
    sim
}

#[tokio::test]
async fn user_automation_happy_path() {
    within(async {
        let sim = automation_sim().await;
        let c = client(&sim);
        let got = inventory_and_deploy(&c, 4).await.unwrap();
        assert_eq!(
            got,
            Inventory {
                big_widgets: vec!["cog".into(), "sprocket".into()],
                deploy: Some((0, "deployed cog,sprocket".into())),
            }
        );
        // The command line the automation sent.
        let command = sim
            .requests()
            .into_iter()
            .find(|r| r.action.ends_with("/shell/Command"))
            .unwrap();
        assert!(
            command
                .body
                .contains("<rsp:Arguments>cog,sprocket</rsp:Arguments>"),
            "{}",
            command.body
        );
        assert_eq!(sim.counters().commands_started, 1);
    })
    .await;
}

#[tokio::test]
async fn user_automation_survives_a_failed_deploy_but_not_a_failed_query() {
    within(async {
        let sim = automation_sim().await;
        let c = client(&sim);
        // The host refuses the command: reported, not fatal.
        sim.inject(Injection::on(Operation::Command).fault_code(1726));
        let got = inventory_and_deploy(&c, 4).await.unwrap();
        assert_eq!(got.big_widgets, ["cog", "sprocket"]);
        assert_eq!(got.deploy, None);
        assert_eq!(sim.counters().commands_started, 0);
        // The connection drops under the Command before it runs: the client retransmits
        // it (Robust Connections, on by default on both sides) and the deploy succeeds.
        sim.clear_requests();
        sim.inject(Injection::on(Operation::Command).drop_connection());
        assert_eq!(
            inventory_and_deploy(&c, 4).await.unwrap().deploy,
            Some((0, "deployed cog,sprocket".into()))
        );
        let commands = sim
            .requests()
            .iter()
            .filter(|r| r.action.ends_with("/shell/Command"))
            .count();
        assert_eq!(commands, 2);
        assert_eq!(sim.counters().commands_started, 1);
        // The query's Enumerate fails: the automation's error. (A 503 would not do:
        // the client retransmits those under Robust Connections.)
        sim.inject(Injection::on(Operation::Enumerate).fault_code(1726));
        match inventory_and_deploy(&c, 4).await {
            Err(Error::Fault(f)) => assert_eq!(f.code(), Some(1726), "{f:?}"),
            other => panic!("expected the injected fault, got {other:?}"),
        }
        assert_eq!(sim.counters().injected, 3);
        assert_eq!(sim.pending_injections(), 0);
        // The failed query stopped the run before any shell was opened.
        let creates = sim
            .requests()
            .iter()
            .filter(|r| r.action.ends_with("/transfer/Create"))
            .count();
        assert_eq!(creates, 1, "only the second run's");
    })
    .await;
}

#[tokio::test]
async fn registered_class_in_another_namespace() {
    within(async {
        let sim = Simulator::start().await.unwrap();
        sim.register_class(
            SimClass::new("MSFT_NetAdapter")
                .namespace("root\\StandardCimv2")
                .key("Name")
                .property("Status")
                .instance([("Name", "Ethernet"), ("Status", "Up")])
                .instance([("Name", "Wi-Fi"), ("Status", "Disconnected")]),
        );
        let c = client(&sim);
        let up = c
            .wql(
                "root/StandardCimv2",
                "SELECT * FROM MSFT_NetAdapter WHERE Status = 'Up'",
            )
            .start()
            .collect_items()
            .await
            .unwrap();
        assert_eq!(up.len(), 1);
        let eth = up[0].instance().unwrap();
        assert_eq!(eth.get_str("Name"), Some("Ethernet"));
        let wifi = c
            .get(&Resource::wmi("root/standardcimv2", "MSFT_NetAdapter").selector("Name", "Wi-Fi"))
            .await
            .unwrap();
        assert_eq!(wifi.get_str("Status"), Some("Disconnected"));
        // Not in root/cimv2, and the built-in classes are not in root/StandardCimv2.
        let wrong_ns = c
            .get(&Resource::wmi("root/cimv2", "MSFT_NetAdapter").selector("Name", "Wi-Fi"))
            .await;
        assert!(matches!(wrong_ns, Err(Error::Fault(_))), "{wrong_ns:?}");
        let builtin = c
            .wql("root/StandardCimv2", "SELECT * FROM Win32_Service")
            .start()
            .collect_items()
            .await;
        assert!(matches!(builtin, Err(Error::Fault(_))), "{builtin:?}");
        // An unknown namespace is not found.
        let nowhere = c
            .wql("root/Nowhere", "SELECT * FROM MSFT_NetAdapter")
            .start()
            .collect_items()
            .await;
        assert!(matches!(nowhere, Err(Error::Fault(_))), "{nowhere:?}");
    })
    .await;
}

/// A WQL literal built with `Wql::string` finds a value with backslashes and a quote;
/// the same path written with single backslashes is an invalid query (a bad-filter
/// fault), as WMI reads it, never a match.
#[tokio::test]
async fn wql_string_literals_escape_as_wmi_reads_them() {
    within(async {
        let sim = Simulator::start().await.unwrap();
        let path = r"C:\Program Files\O'Brien\app.exe";
        sim.register_class(
            SimClass::new("Acme_App")
                .key("Name")
                .property("Path")
                .instance([("Name", Value::from("app")), ("Path", Value::from(path))])
                .instance([
                    ("Name", Value::from("other")),
                    ("Path", Value::from(r"C:\x")),
                ]),
        );
        let c = client(&sim);
        let query = format!(
            "SELECT Name FROM Acme_App WHERE Path = {}",
            tokio_winrm::Wql::string(path)
        );
        let found = c
            .wql("root/cimv2", &query)
            .start()
            .collect_items()
            .await
            .unwrap();
        let names: Vec<_> = found
            .iter()
            .map(|i| i.instance().and_then(|i| i.get_str("Name")).unwrap())
            .collect();
        assert_eq!(names, ["app"]);
        let raw = c
            .wql(
                "root/cimv2",
                r"SELECT Name FROM Acme_App WHERE Path = 'C:\x'",
            )
            .start()
            .collect_items()
            .await;
        assert!(
            matches!(&raw, Err(Error::Fault(f)) if f.is_bad_filter()),
            "{raw:?}"
        );
    })
    .await;
}

/// A Put to an instance of a registered class is stored: a later Get and an
/// enumeration return the new value, the other instances stay as they were, and the
/// Put's answer is the stored instance.
#[tokio::test]
async fn a_put_to_a_registered_class_is_stored() {
    within(async {
        let sim = Simulator::start().await.unwrap();
        sim.register_class(widgets());
        let c = client(&sim);
        let gear = Resource::wmi("root/cimv2", "Acme_Widget").selector("Name", "GEAR");
        let echoed = c
            .put(&gear, &Instance::new("Acme_Widget").with("Color", "green"))
            .await
            .unwrap()
            .expect("the stored instance");
        assert_eq!(echoed.get_str("Color"), Some("green"));
        assert_eq!(echoed.get_str("Size"), Some("3"), "the rest kept");
        let again = c.get(&gear).await.unwrap();
        assert_eq!(again.get_str("Color"), Some("green"));
        assert_eq!(again.get_str("Size"), Some("3"));
        let all = c
            .wql(
                "root/cimv2",
                "SELECT * FROM Acme_Widget WHERE Color = 'green'",
            )
            .start()
            .collect_items()
            .await
            .unwrap();
        assert_eq!(all.len(), 1);
        let sprocket = c
            .get(&Resource::wmi("root/cimv2", "Acme_Widget").selector("Name", "sprocket"))
            .await
            .unwrap();
        assert_eq!(
            sprocket.get_str("Color"),
            Some("blue"),
            "other instances untouched"
        );
    })
    .await;
}

/// The shell list (Enumerate of `.../windows/shell`, as pypsrp and `Get-PSSession`
/// read it): every open shell, WinRS and PowerShell, with its id, resource URI, owner
/// and state; a closed shell is gone from it. Optimized or pulled page by page, the
/// same list.
#[tokio::test]
async fn the_shell_list_shows_the_open_shells() {
    within(async {
        let sim = Simulator::start().await.unwrap();
        let c = client(&sim);
        let shells = Resource::new("http://schemas.microsoft.com/wbem/wsman/1/windows/shell");
        let cmd = c.shell().open().await.unwrap();
        let pool = c.runspace_pool().open().await.unwrap();
        for optimize in [true, false] {
            let items = c
                .enumerate(&shells)
                .optimize(optimize)
                .max_elements(1)
                .start()
                .collect_items()
                .await
                .unwrap();
            let listed: Vec<(String, String, String)> = items
                .iter()
                .map(|i| {
                    let i = i.instance().expect("an instance");
                    assert_eq!(i.class_name, "Shell");
                    assert_eq!(i.get_str("Owner"), Some(r"SIM\vagrant"));
                    (
                        i.get_str("ShellId").unwrap().to_string(),
                        i.get_str("ResourceUri").unwrap().to_string(),
                        i.get_str("State").unwrap().to_string(),
                    )
                })
                .collect();
            assert_eq!(listed.len(), 2, "{listed:?}");
            assert!(
                listed
                    .iter()
                    .any(|(id, uri, state)| id.eq_ignore_ascii_case(cmd.id())
                        && uri.ends_with("/windows/shell/cmd")
                        && state == "Connected"),
                "{listed:?}"
            );
            assert!(
                listed.iter().any(|(_, uri, _)| uri
                    == "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"),
                "{listed:?}"
            );
        }
        // A disconnected shell is listed as such (what a leak hunt looks for).
        let id = cmd.id().to_string();
        let away = cmd.disconnect(None).await.unwrap();
        let items = c.enumerate(&shells).start().collect_items().await.unwrap();
        let state = items
            .iter()
            .filter_map(|i| i.instance())
            .find(|i| {
                i.get_str("ShellId")
                    .is_some_and(|s| s.eq_ignore_ascii_case(&id))
            })
            .and_then(|i| i.get_str("State"))
            .map(str::to_string);
        assert_eq!(state.as_deref(), Some("Disconnected"));
        away.reconnect().await.unwrap().close().await.unwrap();
        pool.close().await.unwrap();
        let items = c.enumerate(&shells).start().collect_items().await.unwrap();
        assert!(items.is_empty(), "{items:?}");
    })
    .await;
}
