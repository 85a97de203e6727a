//! Text XML 1.0 cannot carry (NUL, the other C0 controls but tab, LF and CR, U+FFFE,
//! U+FFFF; not even as character references) is refused before anything is sent, with
//! `Error::InvalidText` naming what and which, the character and its position, never
//! the text: in selectors, options and resource URIs, property values of Put, Create
//! and Invoke, WQL and selector filters, command lines and raw arguments. PSRP strings
//! carry such characters in CLIXML's `_xHHHH_` encoding. The simulator refuses an
//! envelope holding one, as Windows refuses an ill-formed envelope.

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_winrm::psrp::PsValue;
use tokio_winrm::{Auth, Client, Error, Filter, Instance, InvalidText, Resource, Value};
use winrm_simulator::{CmdletContext, SimClass, Simulator};
use wsman_protocol::envelope::Selector;

#[path = "support/raw_http.rs"]
mod raw_http;

const WMI: &str = "root/cimv2";

/// Runs a test body with a deadline, so a hang fails fast.
async fn within<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("test timed out");
}

async fn start() -> (Simulator, Client) {
    let sim = Simulator::start().await.unwrap();
    sim.register_class(
        SimClass::new("Esc_Thing")
            .key("Name")
            .property("Note")
            .instance([("Name", Value::from("plain")), ("Note", Value::from("n"))]),
    );
    let client = Client::builder(sim.endpoint())
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    (sim, client)
}

/// Requests the simulator has seen: its counter and its log.
fn seen(sim: &Simulator) -> (u64, usize) {
    (sim.counters().requests, sim.requests().len())
}

/// The `InvalidText` of an error, after checking that the text is not shown.
fn invalid_text(r: Result<impl std::fmt::Debug, Error>, secret: &str) -> InvalidText {
    match r {
        Err(e @ Error::InvalidText(_)) => {
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains(secret), "the text is shown: {shown}");
            let Error::InvalidText(t) = e else {
                unreachable!()
            };
            t
        }
        other => panic!("expected Error::InvalidText, got {other:?}"),
    }
}

fn fields(t: &InvalidText) -> (&'static str, &str, char, usize) {
    (t.what, t.name.as_str(), t.character, t.offset)
}

#[tokio::test]
async fn selectors_options_and_uris_are_refused_before_sending() {
    within(async {
        let (sim, client) = start().await;
        let thing = |name: &str| Resource::wmi(WMI, "Esc_Thing").selector("Name", name);

        let before = seen(&sim);
        let e = invalid_text(client.get(&thing("hunter2\u{1}b\u{0}c")).await, "hunter2");
        assert_eq!(fields(&e), ("selector", "Name", '\u{1}', 7));
        let shown = e.to_string();
        assert!(
            shown.contains("selector \"Name\"")
                && shown.contains("U+0001")
                && shown.contains("character 7"),
            "{shown}"
        );
        // Past non-ASCII characters the position still counts characters.
        let e = invalid_text(client.delete(&thing("é😀\u{FFFE}")).await, "é");
        assert_eq!(fields(&e), ("selector", "Name", '\u{FFFE}', 2));
        let e = invalid_text(
            client
                .get(&thing("plain").option("Opt", "hunter2\u{FFFF}"))
                .await,
            "hunter2",
        );
        assert_eq!(fields(&e), ("option", "Opt", '\u{FFFF}', 7));
        let e = invalid_text(
            client.get(&Resource::new("wmicimv2/Esc_\u{1B}Thing")).await,
            "Esc_",
        );
        assert_eq!(e.what, "resource URI");
        assert_eq!(e.character, '\u{1B}');
        assert_eq!(
            seen(&sim),
            before,
            "a refused request reached the simulator"
        );

        // Tab, CR and LF are text XML carries: sent (and not found).
        let sent = client.get(&thing("a\tb\r\nc")).await;
        assert!(matches!(sent, Err(Error::Fault(_))), "{sent:?}");
        assert_ne!(seen(&sim), before);
        // The same selector without the control character is found.
        assert!(client.get(&thing("plain")).await.is_ok());
    })
    .await;
}

#[tokio::test]
async fn property_values_are_refused_before_sending() {
    within(async {
        let (sim, client) = start().await;
        let res = Resource::wmi(WMI, "Esc_Thing").selector("Name", "plain");
        let before = seen(&sim);

        let flat = Instance::new("Esc_Thing").with("Note", "hunter2\u{0}");
        let e = invalid_text(client.put(&res, &flat).await, "hunter2");
        assert_eq!(fields(&e), ("property", "Note", '\u{0}', 7));
        let e = invalid_text(client.create(&res, &flat).await, "hunter2");
        assert_eq!(fields(&e), ("property", "Note", '\u{0}', 7));

        let nested = Instance::new("Esc_Thing").with(
            "Outer",
            Value::Instance(Box::new(Instance::new("Inner").with("Ok", "fine").with(
                "Deep",
                Value::Array(vec![Value::from("a"), Value::from("b\u{8}")]),
            ))),
        );
        let e = invalid_text(client.put(&res, &nested).await, "b\u{8}");
        assert_eq!(fields(&e), ("property", "Outer.Deep[1]", '\u{8}', 1));

        let input = Instance::new("Esc_Thing").with("Arg", "x\u{C}");
        let e = invalid_text(client.invoke(&res, "Touch", &input).await, "x\u{C}");
        assert_eq!(fields(&e), ("property", "Arg", '\u{C}', 1));
        // An Invoke's selectors as well.
        let bad_key = Resource::wmi(WMI, "Esc_Thing").selector("Name", "k\u{1F}");
        let e = invalid_text(
            client
                .invoke(&bad_key, "Touch", &Instance::new("Esc_Thing"))
                .await,
            "k\u{1F}",
        );
        assert_eq!(fields(&e), ("selector", "Name", '\u{1F}', 1));
        assert_eq!(
            seen(&sim),
            before,
            "a refused request reached the simulator"
        );

        // A value XML carries goes out.
        let fine = Instance::new("Esc_Thing").with("Note", "a\tb <&> é");
        client.put(&res, &fine).await.unwrap();
        assert_ne!(seen(&sim), before);
    })
    .await;
}

#[tokio::test]
async fn filters_are_refused_before_sending() {
    within(async {
        let (sim, client) = start().await;
        let before = seen(&sim);
        let query = "SELECT * FROM Esc_Thing WHERE Name = 'hunter2\u{1B}[0m'";
        let mut stream = client.wql(WMI, query).start();
        let first = stream.next().await.expect("an item");
        let e = invalid_text(first, "hunter2");
        assert_eq!(fields(&e), ("WQL filter", "", '\u{1B}', 45));
        assert!(
            stream.next().await.is_none(),
            "the stream ends after the error"
        );

        let selectors = Filter::Selectors(vec![Selector::new("Name", "p\u{2}")]);
        let mut stream = client
            .enumerate(&Resource::wmi(WMI, "Esc_Thing"))
            .filter(selectors)
            .start();
        let e = invalid_text(stream.next().await.expect("an item"), "p\u{2}");
        assert_eq!(fields(&e), ("selector", "Name", '\u{2}', 1));
        assert_eq!(
            seen(&sim),
            before,
            "a refused request reached the simulator"
        );

        // A query XML carries runs.
        let items: Vec<_> = client
            .wql(WMI, "SELECT * FROM Esc_Thing")
            .start()
            .collect()
            .await;
        assert!(items.iter().all(Result::is_ok), "{items:?}");
    })
    .await;
}

#[tokio::test]
async fn command_lines_are_refused_before_sending() {
    within(async {
        let (sim, client) = start().await;
        let shell = client.shell().open().await.unwrap();
        let before = seen(&sim);

        let r = shell.command("echo hunter2\u{7}").start().await;
        let e = invalid_text(r.map(|_| ()), "hunter2");
        assert_eq!(fields(&e), ("command", "", '\u{7}', 12));

        let r = shell
            .command("echo")
            .arg("fine")
            .raw_arg("> out\u{0}.txt")
            .start()
            .await;
        let e = invalid_text(r.map(|_| ()), "out");
        assert_eq!(fields(&e), ("command argument", "#2", '\u{0}', 5));
        assert!(e.to_string().contains("command argument \"#2\""), "{e}");

        // A quoted argument is refused by the quoting, as before (U+FFFF now too).
        let r = shell.command("echo").arg("a\u{FFFF}").start().await;
        assert!(
            matches!(r, Err(Error::InvalidArgument { index: 0, .. })),
            "{:?}",
            r.map(|_| ())
        );
        assert_eq!(
            seen(&sim),
            before,
            "a refused request reached the simulator"
        );
        assert_eq!(sim.counters().commands_started, 0);
        shell.close().await.unwrap();
    })
    .await;
}

/// PSRP strings carry every character, controls and noncharacters included, in
/// CLIXML's `_xHHHH_` encoding: they reach the simulator (which refuses ill-formed
/// XML) and come back unchanged.
#[tokio::test]
async fn psrp_strings_carry_controls_in_their_encoding() {
    within(async {
        let (sim, client) = start().await;
        sim.register_cmdlet("Esc-Echo", |mut ctx: CmdletContext| async move {
            while let Some(v) = ctx.next_input().await {
                ctx.write_output(v).await;
            }
            Ok(())
        });
        let pool = client.runspace_pool().open().await.unwrap();
        let text = "a\u{0}b\u{1}\u{1B}[0m\u{FFFE}\u{FFFF}_X0041_\r\n";
        let out = pool
            .pipeline()
            .command("Esc-Echo")
            .input([PsValue::from(text)])
            .invoke()
            .await
            .unwrap();
        assert_eq!(out.output, vec![PsValue::from(text)]);
        pool.close().await.unwrap();
    })
    .await;
}

/// The simulator refuses an envelope holding such a character, raw or as a character
/// reference, with the fault of an ill-formed envelope; a tab reference is fine.
#[tokio::test]
async fn the_simulator_refuses_ill_formed_envelopes() {
    within(async {
        let (sim, _client) = start().await;
        let get = |value: &str| {
            let to = sim.endpoint();
            let selectors = [Selector::new("Name", "plain")];
            let env = wsman_protocol::Envelope {
                resource_uri: Some(
                    "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Esc_Thing",
                ),
                selectors: &selectors,
                ..wsman_protocol::Envelope::new(wsman_protocol::ns::action::GET, &to)
            }
            .write(|_| {});
            // The selector's text, replaced as it goes on the wire.
            env.replace(">plain<", &format!(">{value}<"))
        };
        let auth = base64_basic(sim.user(), sim.password());
        let post = |body: String| {
            let auth = auth.clone();
            let addr = sim.addr();
            async move {
                raw_http::send(
                    addr,
                    "POST",
                    "/wsman",
                    &[
                        ("Authorization", auth),
                        (
                            "Content-Type",
                            "application/soap+xml;charset=UTF-8".to_string(),
                        ),
                    ],
                    body.as_bytes(),
                )
                .await
            }
        };
        let ok = post(get("plain")).await;
        assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
        let tab = post(get("pl&#9;ain")).await;
        let tab_body = String::from_utf8_lossy(&tab.body).to_string();
        assert!(!tab_body.contains("XML 1.0"), "{tab_body}");
        for bad in [
            "pl\u{1}ain",
            "pl&#1;ain",
            "pl&#x0;ain",
            "pl&#xFFFE;ain",
            "pl\u{FFFF}ain",
        ] {
            let r = post(get(bad)).await;
            let body = String::from_utf8_lossy(&r.body).to_string();
            assert_eq!(r.status, 500, "{bad:?}: {body}");
            assert!(
                body.contains("2150858791") && body.contains("XML 1.0"),
                "{bad:?}: {body}"
            );
        }
    })
    .await;
}

fn base64_basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}
