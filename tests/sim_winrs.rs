//! The simulator's WinRS, driven with raw WS-Management envelopes over a tiny HTTP
//! client: shell lifecycle and counters, output streams and exit codes, stdin, code
//! pages, long polls and their timeout, Signal while a Receive is pending, faults.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use winrm_simulator::{SimConfig, Simulator};
use wsman_protocol::envelope::{Envelope, OptionItem, Selector};
use wsman_protocol::ns;
use wsman_protocol::xml::{Element, parse};

const SHELL: &str = ns::SHELL;
const FAULT_NS: &str = ns::WSMAN_FAULT;

/// Fails a test that hangs.
async fn within<T>(secs: u64, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("test step timed out")
}

/// One POST on its own connection; returns the HTTP status and the parsed envelope.
async fn post(sim: &Simulator, body: &str) -> (u16, Element) {
    let mut s = TcpStream::connect(sim.addr()).await.unwrap();
    let head = format!(
        "POST /wsman HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic dmFncmFudDp2YWdyYW50\r\nContent-Type: application/soap+xml;charset=UTF-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        sim.addr(),
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no header end");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, parse(&body).expect("response is not XML"))
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..eol]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 4 + size..];
    }
}

fn body(root: &Element) -> &Element {
    root.child(ns::SOAP, "Body").expect("no Body")
}

/// The WSManFault code of a fault response.
fn fault_code(root: &Element) -> Option<u32> {
    let f = body(root).path(&[
        (ns::SOAP, "Fault"),
        (ns::SOAP, "Detail"),
        (FAULT_NS, "WSManFault"),
    ])?;
    f.attr("Code")?.parse().ok()
}

fn fault_message(root: &Element) -> String {
    body(root)
        .path(&[
            (ns::SOAP, "Fault"),
            (ns::SOAP, "Detail"),
            (FAULT_NS, "WSManFault"),
            (FAULT_NS, "Message"),
        ])
        .map(|m| m.text.clone())
        .unwrap_or_default()
}

/// A request envelope for the cmd shell resource.
fn request(
    sim: &Simulator,
    action: &str,
    shell: Option<&str>,
    options: &[OptionItem],
    timeout: Option<Duration>,
    body: impl FnOnce(&mut wsman_protocol::envelope::XmlWriter),
) -> String {
    let to = sim.endpoint();
    let selectors: Vec<Selector> = shell
        .map(|s| vec![Selector::new("ShellId", s)])
        .unwrap_or_default();
    let env = Envelope {
        resource_uri: Some(ns::RESOURCE_CMD),
        operation_timeout: timeout.or(Some(Duration::from_secs(20))),
        max_envelope_size: Some(153_600),
        selectors: &selectors,
        options,
        namespaces: &[("rsp", SHELL)],
        ..Envelope::new(action, &to)
    };
    env.write(body)
}

async fn create_shell_with(
    sim: &Simulator,
    options: &[OptionItem],
    inner: &str,
) -> Result<(String, Element), Element> {
    let xml = request(sim, ns::action::CREATE, None, options, None, |w| {
        w.raw("<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams>");
        w.raw(inner);
        w.raw("</rsp:Shell>");
    });
    let (status, root) = post(sim, &xml).await;
    if status != 200 {
        return Err(root);
    }
    let id = body(&root)
        .path(&[(SHELL, "Shell"), (SHELL, "ShellId")])
        .unwrap()
        .text
        .clone();
    Ok((id, root))
}

async fn create_shell(sim: &Simulator) -> String {
    create_shell_with(sim, &[], "")
        .await
        .expect("create failed")
        .0
}

/// Starts `command` with `args`; Ok(command id) or the fault.
async fn start(
    sim: &Simulator,
    shell: &str,
    command: &str,
    args: &[&str],
    skip_cmd: bool,
) -> Result<String, Element> {
    let opts = [OptionItem::new(
        "WINRS_SKIP_CMD_SHELL",
        if skip_cmd { "True" } else { "False" },
    )];
    let xml = request(sim, ns::action::COMMAND, Some(shell), &opts, None, |w| {
        w.raw("<rsp:CommandLine>");
        w.element("rsp:Command", command);
        for a in args {
            w.element("rsp:Arguments", a);
        }
        w.raw("</rsp:CommandLine>");
    });
    let (status, root) = post(sim, &xml).await;
    if status != 200 {
        return Err(root);
    }
    Ok(body(&root)
        .path(&[(SHELL, "CommandResponse"), (SHELL, "CommandId")])
        .unwrap()
        .text
        .clone())
}

/// One Receive response.
#[derive(Debug, Default)]
struct Received {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    ends: Vec<String>,
    exit: Option<i64>,
}

async fn receive_once(
    sim: &Simulator,
    shell: &str,
    cmd: &str,
    timeout: Duration,
) -> Result<Received, Element> {
    let xml = request(
        sim,
        ns::action::RECEIVE,
        Some(shell),
        &[],
        Some(timeout),
        |w| {
            w.raw("<rsp:Receive><rsp:DesiredStream CommandId=\"");
            w.attr_text(cmd);
            w.raw("\">stdout stderr</rsp:DesiredStream></rsp:Receive>");
        },
    );
    let (status, root) = post(sim, &xml).await;
    if status != 200 {
        return Err(root);
    }
    let resp = body(&root)
        .child(SHELL, "ReceiveResponse")
        .expect("no ReceiveResponse");
    let mut r = Received::default();
    for s in resp.children_named(SHELL, "Stream") {
        assert_eq!(s.attr("CommandId"), Some(cmd));
        let data = STANDARD.decode(s.text.trim()).unwrap();
        let name = s.attr("Name").unwrap();
        match name {
            "stdout" => r.stdout.extend(data),
            "stderr" => r.stderr.extend(data),
            other => panic!("stream {other}"),
        }
        if s.attr("End") == Some("true") {
            r.ends.push(name.to_string());
        }
    }
    let state = resp.child(SHELL, "CommandState").expect("no CommandState");
    if state.attr("State").unwrap().ends_with("/Done") {
        r.exit = Some(
            state
                .child_text(SHELL, "ExitCode")
                .unwrap()
                .parse()
                .unwrap(),
        );
    } else {
        assert!(state.attr("State").unwrap().ends_with("/Running"));
    }
    Ok(r)
}

/// Receives until Done; returns the output and the number of Receives that had output.
async fn receive_all(sim: &Simulator, shell: &str, cmd: &str) -> (Received, usize) {
    let mut all = Received::default();
    let mut with_output = 0;
    loop {
        let r = receive_once(sim, shell, cmd, Duration::from_secs(20))
            .await
            .expect("receive fault");
        if !r.stdout.is_empty() || !r.stderr.is_empty() {
            with_output += 1;
        }
        all.stdout.extend(r.stdout);
        all.stderr.extend(r.stderr);
        all.ends.extend(r.ends);
        if r.exit.is_some() {
            all.exit = r.exit;
            return (all, with_output);
        }
    }
}

async fn signal(sim: &Simulator, shell: &str, cmd: &str, code: &str) -> (u16, Element) {
    let xml = request(sim, ns::action::SIGNAL, Some(shell), &[], None, |w| {
        w.raw("<rsp:Signal CommandId=\"");
        w.attr_text(cmd);
        w.raw("\"><rsp:Code>");
        w.text(code);
        w.raw("</rsp:Code></rsp:Signal>");
    });
    post(sim, &xml).await
}

async fn send(sim: &Simulator, shell: &str, cmd: &str, data: &str, end: bool) -> (u16, Element) {
    let xml = request(sim, ns::action::SEND, Some(shell), &[], None, |w| {
        w.raw(&format!(
            "<rsp:Send><rsp:Stream Name=\"stdin\" CommandId=\"{cmd}\" End=\"{}\">{data}</rsp:Stream></rsp:Send>",
            if end { "True" } else { "False" }
        ));
    });
    post(sim, &xml).await
}

async fn delete(sim: &Simulator, shell: &str) -> u16 {
    let xml = request(sim, ns::action::DELETE, Some(shell), &[], None, |_| {});
    post(sim, &xml).await.0
}

/// Runs a command to the end and cleans up as pywinrm does (Signal terminate).
async fn run(sim: &Simulator, shell: &str, command: &str, args: &[&str]) -> Received {
    let cmd = start(sim, shell, command, args, false)
        .await
        .expect("command fault");
    let (out, _) = receive_all(sim, shell, &cmd).await;
    assert_eq!(signal(sim, shell, &cmd, ns::signal::TERMINATE).await.0, 200);
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test]
async fn lifecycle_echo_and_counters() {
    let sim = Simulator::start().await.unwrap();
    within(10, async {
        let env = "<rsp:Environment><rsp:Variable Name=\"GREETING\">hi &amp; bye</rsp:Variable></rsp:Environment><rsp:WorkingDirectory>C:\\Windows</rsp:WorkingDirectory>";
        let (shell, root) = create_shell_with(&sim, &[], env).await.unwrap();
        let b = body(&root);
        let created = b.path(&[(ns::TRANSFER, "ResourceCreated"), (ns::ADDRESSING, "ReferenceParameters"), (ns::WSMAN, "SelectorSet"), (ns::WSMAN, "Selector")]).unwrap();
        assert_eq!(created.text, shell);
        let s = b.child(SHELL, "Shell").unwrap();
        assert_eq!(s.child_text(SHELL, "Owner"), Some("vagrant"));
        assert_eq!(s.child_text(SHELL, "IdleTimeOut"), Some("PT7200.000S"));
        assert_eq!(s.child_text(SHELL, "WorkingDirectory"), Some("C:\\Windows"));
        assert_eq!(s.path(&[(SHELL, "Environment"), (SHELL, "Variable")]).unwrap().text, "hi & bye");
        assert_eq!(sim.counters().open_shells, 1);

        let cmd = start(&sim, &shell, "cmd.exe", &["/c", "echo", "hi"], false).await.unwrap();
        assert_eq!(sim.counters().running_commands, 1);
        let (out, _) = receive_all(&sim, &shell, &cmd).await;
        assert_eq!(text(&out.stdout), "hi\r\n");
        assert!(out.stderr.is_empty());
        assert_eq!(out.ends, ["stdout", "stderr"]);
        assert_eq!(out.exit, Some(0));
        assert_eq!(signal(&sim, &shell, &cmd, ns::signal::TERMINATE).await.0, 200);
        assert_eq!(sim.counters().running_commands, 0);

        // The environment and directory reach commands; `set` and `cd` show them.
        // cmd expands `%NAME%` before it reads operators: quoted, the `&` stays text.
        assert_eq!(text(&run(&sim, &shell, "echo \"%GREETING%\"", &[]).await.stdout), "\"hi & bye\"\r\n");
        assert_eq!(text(&run(&sim, &shell, "cd", &[]).await.stdout), "C:\\Windows\r\n");
        let set = run(&sim, &shell, "set", &["GREET"]).await;
        assert_eq!(text(&set.stdout), "GREETING=hi & bye\r\n");

        assert_eq!(delete(&sim, &shell).await, 200);
        let c = sim.counters();
        assert_eq!((c.open_shells, c.running_commands, c.receives_pending), (0, 0, 0));
        assert_eq!((c.shells_created, c.commands_started, c.signals, c.terminate_signals), (1, 4, 4, 4));
        // The shell is gone.
        assert_eq!(delete(&sim, &shell).await, 500);
    })
    .await;
}

#[tokio::test]
async fn exit_codes_and_stderr() {
    let sim = Simulator::start().await.unwrap();
    within(10, async {
        let shell = create_shell(&sim).await;
        let r = run(&sim, &shell, "cmd.exe", &["/c", "exit", "/b", "3"]).await;
        assert_eq!(r.exit, Some(3));
        // As recorded from Windows (test_winrs_stderr_rc).
        let r = run(&sim, &shell, "cmd.exe", &["/c echo out && echo err>&2 && exit 1"]).await;
        assert_eq!((text(&r.stdout).as_str(), text(&r.stderr).as_str(), r.exit), ("out \r\n", "err \r\n", Some(1)));
        let r = run(&sim, &shell, "nosuchtool", &["x"]).await;
        assert_eq!(
            text(&r.stderr),
            "'nosuchtool' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"
        );
        assert_eq!(r.exit, Some(9009));
        let r = run(&sim, &shell, "type", &["C:\\missing.txt"]).await;
        assert_eq!((text(&r.stderr).as_str(), r.exit), ("The system cannot find the file specified.\r\n", Some(1)));
        let r = run(&sim, &shell, "type C:\\Windows\\win.ini", &[]).await;
        assert!(text(&r.stdout).contains("[fonts]"));
        let r = run(&sim, &shell, "exit 1 || echo never", &[]).await;
        assert_eq!((r.stdout.len(), r.exit), (0, Some(1)));
        let r = run(&sim, &shell, "cmd /c \"type nothere || echo fallback\"", &[]).await;
        assert_eq!((text(&r.stdout).as_str(), r.exit), ("fallback\r\n", Some(0)));
        assert_eq!(delete(&sim, &shell).await, 200);
    })
    .await;
}

#[tokio::test]
async fn stdin_to_findstr_more_and_interactive_cmd() {
    let sim = Simulator::start().await.unwrap();
    within(10, async {
        let shell = create_shell(&sim).await;
        let cmd = start(&sim, &shell, "findstr", &["hello"], false)
            .await
            .unwrap();
        assert_eq!(
            send(
                &sim,
                &shell,
                &cmd,
                &STANDARD.encode("hello world\r\nbye\r\n"),
                false
            )
            .await
            .0,
            200
        );
        assert_eq!(
            send(&sim, &shell, &cmd, &STANDARD.encode("hello again\n"), true)
                .await
                .0,
            200
        );
        let (out, _) = receive_all(&sim, &shell, &cmd).await;
        assert_eq!(
            (text(&out.stdout).as_str(), out.exit),
            ("hello world\r\nhello again\n", Some(0))
        );

        let cmd = start(&sim, &shell, "more", &[], false).await.unwrap();
        send(&sim, &shell, &cmd, &STANDARD.encode("a\nb"), true).await;
        assert_eq!(
            text(&receive_all(&sim, &shell, &cmd).await.0.stdout),
            "a\r\nb\r\n"
        );

        // cmd with no /c reads commands from stdin (WinRMSharp's recording).
        let cmd = start(&sim, &shell, "cmd", &[], false).await.unwrap();
        send(
            &sim,
            &shell,
            &cmd,
            &STANDARD.encode("echo \"hello world\" && exit\r\n"),
            false,
        )
        .await;
        let (out, _) = receive_all(&sim, &shell, &cmd).await;
        let shown = text(&out.stdout);
        assert!(shown.starts_with("Microsoft Windows [Version"), "{shown}");
        assert!(
            shown.ends_with(
                "C:\\Users\\vagrant>echo \"hello world\" && exit\r\n\"hello world\" \r\n"
            ),
            "{shown}"
        );
        assert_eq!(out.exit, Some(0));

        // Bad base64 is a fault, not a crash.
        let cmd = start(&sim, &shell, "more", &[], false).await.unwrap();
        let (status, root) = send(&sim, &shell, &cmd, "!!!not base64", true).await;
        assert_eq!((status, fault_code(&root)), (500, Some(87)));
        assert_eq!(delete(&sim, &shell).await, 200);
        assert_eq!(sim.counters().running_commands, 0);
    })
    .await;
}

#[tokio::test]
async fn codepages() {
    let sim = Simulator::start().await.unwrap();
    within(10, async {
        let oem = create_shell_with(&sim, &[OptionItem::new("WINRS_CODEPAGE", "437")], "")
            .await
            .unwrap()
            .0;
        let r = run(&sim, &oem, "echo", &["héllo"]).await;
        assert_eq!(r.stdout, b"h\x82llo\r\n");
        let utf8 = create_shell_with(&sim, &[OptionItem::new("WINRS_CODEPAGE", "65001")], "")
            .await
            .unwrap()
            .0;
        let r = run(&sim, &utf8, "powershell.exe", &["Write-Host こんにちは"]).await;
        assert_eq!(text(&r.stdout), "こんにちは\n");
        let bad = create_shell_with(&sim, &[OptionItem::new("WINRS_CODEPAGE", "utf8")], "")
            .await
            .unwrap_err();
        assert_eq!(fault_code(&bad), Some(87));
    })
    .await;
}

#[tokio::test]
async fn ping_lines_arrive_over_several_receives() {
    let config = SimConfig {
        ping_interval: Duration::from_millis(150),
        ..SimConfig::default()
    };
    let sim = Simulator::start_with(config).await.unwrap();
    within(10, async {
        let shell = create_shell(&sim).await;
        let started = Instant::now();
        let cmd = start(&sim, &shell, "ping", &["-n", "4", "localhost"], false)
            .await
            .unwrap();
        let (out, with_output) = receive_all(&sim, &shell, &cmd).await;
        let shown = text(&out.stdout);
        assert!(
            shown.starts_with("\r\nPinging localhost [127.0.0.1] with 32 bytes of data:\r\n"),
            "{shown}"
        );
        assert_eq!(
            shown
                .matches("Reply from 127.0.0.1: bytes=32 time<1ms TTL=128\r\n")
                .count(),
            4
        );
        assert!(shown.contains("Packets: Sent = 4, Received = 4, Lost = 0 (0% loss)"));
        assert!(with_output >= 3, "only {with_output} receives had output");
        assert!(started.elapsed() >= Duration::from_millis(440));
        assert_eq!(out.exit, Some(0));
    })
    .await;
}

#[tokio::test]
async fn receive_long_poll_times_out() {
    let sim = Simulator::start().await.unwrap();
    within(10, async {
        let shell = create_shell(&sim).await;
        let cmd = start(&sim, &shell, "timeout", &["/t", "30"], false)
            .await
            .unwrap();
        let first = receive_once(&sim, &shell, &cmd, Duration::from_secs(1))
            .await
            .unwrap();
        assert!(text(&first.stdout).contains("Waiting for 30 seconds"));
        let t = Instant::now();
        let root = receive_once(&sim, &shell, &cmd, Duration::from_secs(1))
            .await
            .unwrap_err();
        let waited = t.elapsed();
        assert_eq!(fault_code(&root), Some(2150858793));
        let sub = body(&root)
            .path(&[
                (ns::SOAP, "Fault"),
                (ns::SOAP, "Code"),
                (ns::SOAP, "Subcode"),
                (ns::SOAP, "Value"),
            ])
            .unwrap();
        assert_eq!(sub.text, "w:TimedOut");
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
            "{waited:?}"
        );
        assert_eq!(sim.counters().receives_pending, 0);
        assert_eq!(delete(&sim, &shell).await, 200);
        assert_eq!(sim.counters().running_commands, 0);
    })
    .await;
}

#[tokio::test]
async fn terminate_while_receive_pending_returns_it_promptly() {
    let sim = std::sync::Arc::new(Simulator::start().await.unwrap());
    within(10, async {
        let shell = create_shell(&sim).await;
        let cmd = start(&sim, &shell, "ping", &["-t", "host"], false)
            .await
            .unwrap();
        let first = receive_once(&sim, &shell, &cmd, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(text(&first.stdout).contains("Reply from"));
        // The next line comes after 1 s: this Receive waits.
        let pending = {
            let (sim, shell, cmd) = (sim.clone(), shell.clone(), cmd.clone());
            tokio::spawn(
                async move { receive_once(&sim, &shell, &cmd, Duration::from_secs(60)).await },
            )
        };
        while sim.counters().receives_pending == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let t = Instant::now();
        assert_eq!(
            signal(
                &sim,
                &shell,
                &cmd,
                "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/Terminate"
            )
            .await
            .0,
            200
        );
        let r = pending.await.unwrap().unwrap();
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(r.exit, Some(1));
        assert_eq!(r.ends, ["stdout", "stderr"]);
        let c = sim.counters();
        assert_eq!(
            (
                c.signals_while_receive_pending,
                c.terminate_signals,
                c.running_commands,
                c.receives_pending
            ),
            (1, 1, 0, 0)
        );
        // The command is gone now.
        let gone = receive_once(&sim, &shell, &cmd, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(fault_code(&gone), Some(2150858843));
        assert_eq!(delete(&sim, &shell).await, 200);
    })
    .await;
}

#[tokio::test]
async fn ctrl_c_stops_a_command_which_stays_until_signalled_again() {
    let sim = Simulator::start().await.unwrap();
    within(10, async {
        let shell = create_shell(&sim).await;
        let cmd = start(&sim, &shell, "timeout", &["/t", "30"], false)
            .await
            .unwrap();
        assert_eq!(signal(&sim, &shell, &cmd, ns::signal::CTRL_C).await.0, 200);
        let (out, _) = receive_all(&sim, &shell, &cmd).await;
        assert_eq!(out.exit, Some(3221225786));
        assert_eq!(sim.counters().running_commands, 1);
        assert_eq!(signal(&sim, &shell, &cmd, ns::signal::CTRL_C).await.0, 200);
        assert_eq!(sim.counters().running_commands, 0);
        let (status, root) = signal(&sim, &shell, &cmd, ns::signal::TERMINATE).await;
        assert_eq!((status, fault_code(&root)), (500, Some(2150858843)));
    })
    .await;
}

#[tokio::test]
async fn bad_command_id_is_invalid_selectors() {
    let sim = Simulator::start().await.unwrap();
    within(10, async {
        let shell = create_shell(&sim).await;
        let root = receive_once(&sim, &shell, "87E77BEB-6761-4C48-9D70-A00266B8459A", Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(fault_code(&root), Some(2150858843));
        assert!(fault_message(&root).starts_with("The Windows Remote Shell received a request to perform an operation on a command identifier that does not exist."));
        let detail = body(&root).path(&[(ns::SOAP, "Fault"), (ns::SOAP, "Detail"), (ns::WSMAN, "FaultDetail")]).unwrap();
        assert_eq!(detail.text, "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors");
        // An unknown shell, and a Receive without CommandId (87, as recorded).
        let root = receive_once(&sim, "00000000-0000-0000-0000-000000000000", "X", Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(fault_code(&root), Some(2150858843));
        let xml = request(&sim, ns::action::RECEIVE, Some(&shell), &[], None, |w| {
            w.raw("<rsp:Receive><rsp:DesiredStream>stdout stderr</rsp:DesiredStream></rsp:Receive>");
        });
        let (status, root) = post(&sim, &xml).await;
        assert_eq!((status, fault_code(&root)), (500, Some(87)));
    })
    .await;
}

#[tokio::test]
async fn shell_quota() {
    let config = SimConfig {
        max_shells_per_user: 2,
        ..SimConfig::default()
    };
    let sim = Simulator::start_with(config).await.unwrap();
    within(10, async {
        let a = create_shell(&sim).await;
        let _b = create_shell(&sim).await;
        let root = create_shell_with(&sim, &[], "").await.unwrap_err();
        assert_eq!(fault_code(&root), Some(2150859173));
        assert_eq!(sim.counters().open_shells, 2);
        assert_eq!(delete(&sim, &a).await, 200);
        create_shell(&sim).await;
        assert_eq!(sim.counters().shells_created, 3);
    })
    .await;
}

fn encoded(script: &str) -> String {
    STANDARD.encode(
        script
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect::<Vec<u8>>(),
    )
}

#[tokio::test]
async fn powershell_encoded_command() {
    let sim = Simulator::start().await.unwrap();
    within(10, async {
        let shell = create_shell(&sim).await;
        let line = format!("powershell -NoProfile -EncodedCommand {}", encoded("Write-Output 'hello'; Write-Error \"boom\""));
        let r = run(&sim, &shell, &line, &[]).await;
        assert_eq!(text(&r.stdout), "hello\r\n");
        assert_eq!(
            text(&r.stderr),
            "#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\"><S S=\"Error\">boom_x000D__x000A_</S></Objs>"
        );
        assert_eq!(r.exit, Some(1));
        let t = Instant::now();
        let script = "Write-Host a\nStart-Sleep -Milliseconds 200\nWrite-Output $env:COMPUTERNAME; exit 7";
        let r = run(&sim, &shell, "powershell.exe", &["-EncodedCommand", &encoded(script)]).await;
        assert!(t.elapsed() >= Duration::from_millis(200));
        assert_eq!((text(&r.stdout).as_str(), r.exit), ("a\nSIM\r\n", Some(7)));
        let r = run(&sim, &shell, "powershell -Command Start-Sleep -s 0; Write-Output done", &[]).await;
        assert_eq!((text(&r.stdout).as_str(), r.exit), ("done\r\n", Some(0)));
        // `powershell -` reads the script from stdin (pypsrp's recording).
        let cmd = start(&sim, &shell, "powershell.exe", &["-"], false).await.unwrap();
        send(&sim, &shell, &cmd, &STANDARD.encode("Write-Host \"output 1\";\n"), false).await;
        send(&sim, &shell, &cmd, &STANDARD.encode("Write-Host \"output 2\";"), true).await;
        let (out, _) = receive_all(&sim, &shell, &cmd).await;
        assert_eq!((text(&out.stdout).as_str(), out.exit), ("output 1\noutput 2\n", Some(0)));
    })
    .await;
}

#[tokio::test]
async fn skip_cmd_shell_needs_a_path() {
    let sim = Simulator::start().await.unwrap();
    within(10, async {
        let shell = create_shell(&sim).await;
        let root = start(&sim, &shell, "powershell.exe", &["Write-Host", "hi"], true)
            .await
            .unwrap_err();
        assert_eq!(fault_code(&root), Some(2147942402));
        let sub = body(&root)
            .path(&[
                (ns::SOAP, "Fault"),
                (ns::SOAP, "Code"),
                (ns::SOAP, "Subcode"),
                (ns::SOAP, "Value"),
            ])
            .unwrap();
        assert_eq!(sub.text, "w:InternalError");
        let cmd = start(
            &sim,
            &shell,
            "C:\\Windows\\system32\\WindowsPowerShell\\v1.0\\powershell.exe",
            &["Write-Host", "hi"],
            true,
        )
        .await
        .unwrap();
        let (out, _) = receive_all(&sim, &shell, &cmd).await;
        assert_eq!((text(&out.stdout).as_str(), out.exit), ("hi\n", Some(0)));
        assert_eq!(sim.counters().commands_started, 1);
    })
    .await;
}

#[tokio::test]
async fn registered_command() {
    let sim = Simulator::start().await.unwrap();
    sim.register_command("deploy", |ctx| {
        Box::pin(async move {
            ctx.print(&format!(
                "deploying {} to {}\r\n",
                ctx.args.join(","),
                ctx.env_var("TARGET").unwrap_or("?")
            ))
            .await;
            let input = ctx.read_to_end().await;
            ctx.write_stderr(&input).await;
            5
        })
    });
    within(10, async {
        let env =
            "<rsp:Environment><rsp:Variable Name=\"TARGET\">prod</rsp:Variable></rsp:Environment>";
        let shell = create_shell_with(&sim, &[], env).await.unwrap().0;
        let cmd = start(
            &sim,
            &shell,
            "C:\\tools\\deploy.exe",
            &["a", "\"b c\""],
            false,
        )
        .await
        .unwrap();
        send(&sim, &shell, &cmd, &STANDARD.encode("xyz"), true).await;
        let (out, _) = receive_all(&sim, &shell, &cmd).await;
        assert_eq!(text(&out.stdout), "deploying a,b c to prod\r\n");
        assert_eq!((text(&out.stderr).as_str(), out.exit), ("xyz", Some(5)));
        // Through cmd, with && and a closed stdin.
        let cmd = start(
            &sim,
            &shell,
            "cmd",
            &["/c", "deploy x || echo failed"],
            false,
        )
        .await
        .unwrap();
        send(&sim, &shell, &cmd, "", true).await;
        let (out, _) = receive_all(&sim, &shell, &cmd).await;
        assert_eq!(
            (text(&out.stdout).as_str(), out.exit),
            ("deploying x to prod\r\nfailed\r\n", Some(0))
        );
    })
    .await;
}

#[tokio::test]
async fn delete_ends_running_commands() {
    let sim = Simulator::start().await.unwrap();
    within(10, async {
        let shell = create_shell(&sim).await;
        start(&sim, &shell, "timeout", &["/t", "60"], false)
            .await
            .unwrap();
        let ping = start(&sim, &shell, "ping", &["-t", "x"], false)
            .await
            .unwrap();
        start(&sim, &shell, "findstr", &["never"], false)
            .await
            .unwrap();
        assert_eq!(sim.counters().running_commands, 3);
        assert_eq!(delete(&sim, &shell).await, 200);
        let c = sim.counters();
        assert_eq!((c.open_shells, c.running_commands), (0, 0));
        let root = receive_once(&sim, &shell, &ping, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(fault_code(&root), Some(2150858843));
    })
    .await;
}

#[tokio::test]
async fn generator_output_is_split_under_the_envelope_size() {
    let sim = Simulator::start().await.unwrap();
    within(20, async {
        let shell = create_shell(&sim).await;
        let cmd = start(&sim, &shell, "sim-gen", &["--mib", "3"], false).await.unwrap();
        let mut total = 0;
        let mut receives = 0;
        loop {
            let xml = request(&sim, ns::action::RECEIVE, Some(&shell), &[], None, |w| {
                w.raw(&format!("<rsp:Receive><rsp:DesiredStream CommandId=\"{cmd}\">stdout stderr</rsp:DesiredStream></rsp:Receive>"));
            });
            let (status, root) = post(&sim, &xml).await;
            assert_eq!(status, 200);
            receives += 1;
            let resp = body(&root).child(SHELL, "ReceiveResponse").unwrap();
            let size: usize = resp.children_named(SHELL, "Stream").map(|s| s.text.len() + 120).sum();
            assert!(size < 153_600, "response of {size} bytes");
            for s in resp.children_named(SHELL, "Stream") {
                total += STANDARD.decode(s.text.trim()).unwrap().len();
            }
            if resp.child(SHELL, "CommandState").unwrap().attr("State").unwrap().ends_with("/Done") {
                break;
            }
        }
        assert_eq!(total, 3 * 1024 * 1024);
        assert!(receives >= 20, "{receives}");
    })
    .await;
}

#[tokio::test]
async fn idle_shells_are_removed() {
    let sim = Simulator::start().await.unwrap();
    within(10, async {
        create_shell_with(&sim, &[], "<rsp:IdleTimeOut>PT0.5S</rsp:IdleTimeOut>")
            .await
            .unwrap();
        let kept = create_shell(&sim).await;
        assert_eq!(sim.counters().open_shells, 2);
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert_eq!(sim.counters().open_shells, 1);
        assert_eq!(delete(&sim, &kept).await, 200);
    })
    .await;
}

#[tokio::test]
async fn odd_requests_are_faults() {
    let sim = Simulator::start().await.unwrap();
    within(10, async {
        let shell = create_shell(&sim).await;
        // No ShellId.
        let xml = request(&sim, ns::action::COMMAND, None, &[], None, |w| {
            w.raw("<rsp:CommandLine><rsp:Command>echo</rsp:Command></rsp:CommandLine>")
        });
        assert_eq!(post(&sim, &xml).await.0, 500);
        // No CommandLine, an empty one, a huge one.
        let xml = request(&sim, ns::action::COMMAND, Some(&shell), &[], None, |_| {});
        assert_eq!(fault_code(&post(&sim, &xml).await.1), Some(87));
        assert!(start(&sim, &shell, "", &[], false).await.is_err());
        let huge = "x".repeat(40_000);
        assert!(start(&sim, &shell, "echo", &[&huge], false).await.is_err());
        // An unknown signal code.
        let cmd = start(&sim, &shell, "echo", &["x"], false).await.unwrap();
        let (status, root) = signal(&sim, &shell, &cmd, "http://example.invalid/signal/nope").await;
        assert_eq!((status, fault_code(&root)), (500, Some(87)));
        // An unknown action on the shell resource.
        let xml = request(&sim, ns::action::PUT, Some(&shell), &[], None, |_| {});
        assert_eq!(post(&sim, &xml).await.0, 500);
        // Deep nesting is refused, not a stack overflow (within cmd.exe's 8,191
        // characters: a longer line is refused as too long before any nesting).
        let deep = format!("{}echo deep", "cmd /c ".repeat(1100));
        let r = run(&sim, &shell, &deep, &[]).await;
        assert_eq!(r.exit, Some(1));
        assert!(text(&r.stderr).contains("nest"));
        // Still serving.
        assert_eq!(run(&sim, &shell, "echo", &["ok"]).await.exit, Some(0));
        assert_eq!(delete(&sim, &shell).await, 200);
        assert_eq!(sim.counters().running_commands, 0);
    })
    .await;
}
