//! Arguments are arguments, not shell syntax (issue 10, section 2): each value given to
//! `arg()` / `Client::run` reaches the remote program as exactly one argv entry, through
//! cmd.exe or not; what cmd.exe would expand is refused before anything is sent;
//! `raw_arg()` is shell syntax. The simulator reads command lines as Windows does
//! (cmd's `/c` rule, `%NAME%`, carets, quotes, operators, then the C runtime's argv
//! rules) and its `showargs` prints the argv it received as JSON.

use std::time::Duration;

use proptest::prelude::*;
use tokio_winrm::{Auth, Client, Error, Output};
use winrm_simulator::Simulator;

const T: Duration = Duration::from_secs(20);
/// `showargs` by a full path, as Windows needs it without cmd.exe.
const SHOWARGS_EXE: &str = r"C:\sim\showargs.exe";

async fn sim() -> (Simulator, Client) {
    let sim = Simulator::start().await.unwrap();
    let client = Client::builder(sim.endpoint())
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    (sim, client)
}

/// The argv `showargs` printed (one JSON array on one line, argv[0] first).
fn argv(out: &Output) -> Vec<String> {
    let text = out.stdout_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "one line of output expected: {text:?}");
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{e}: {text:?}"))
}

/// Values that mean something to cmd.exe or to the C runtime's argv rules.
const TRICKY: &[&str] = &[
    r"C:\Program Files\app",
    "x & echo INJECTED",
    "",
    "two  spaces",
    "\ttab",
    r#"say "hi""#,
    r#"""#,
    r"trailing\",
    r"C:\my dir\",
    r#"back\"quote"#,
    r"\\server\share\",
    "a|b",
    "<in",
    "out>",
    ">>log",
    "2>&1",
    "^",
    "^^caret^",
    "(group)",
    ")",
    "&&",
    "||",
    "héllo",
    "こんにちは",
    "emoji 🦀",
    r#"" & echo INJECTED & ""#,
    r#"\" & echo INJECTED"#,
    "=,;",
    "@echo",
];

#[tokio::test]
async fn each_value_arrives_as_one_argv_entry_through_cmd() {
    let (sim, client) = sim().await;
    let out = tokio::time::timeout(T, client.run("showargs", TRICKY))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "{}", out.stderr_text());
    let got = argv(&out);
    assert_eq!(got[0], "showargs");
    assert_eq!(&got[1..], TRICKY);
    assert!(!out.stdout_text().contains("\nINJECTED"));
    assert_eq!(sim.counters().commands_started, 1);
}

#[tokio::test]
async fn each_value_arrives_as_one_argv_entry_without_cmd() {
    let (_sim, client) = sim().await;
    let shell = client.shell().codepage(65001).open().await.unwrap();
    let mut values = TRICKY.to_vec();
    // Without cmd.exe these are ordinary characters.
    values.extend(["%PATH%", "!x!", "100%", "line\nbreak", "cr\rlf"]);
    let out = shell
        .command(SHOWARGS_EXE)
        .skip_cmd_shell(true)
        .args(values.iter().copied())
        .start()
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let got = argv(&out);
    assert_eq!(got[0], SHOWARGS_EXE);
    assert_eq!(&got[1..], values);
    shell.close().await.unwrap();
}

/// The measurement of the issue: the path stays one argument, no second command runs.
#[tokio::test]
async fn the_injection_from_the_issue_runs_no_second_command() {
    let (_sim, client) = sim().await;
    let out = client
        .run("showargs", &["C:\\Program Files\\app", "x & echo INJECTED"])
        .await
        .unwrap();
    assert_eq!(
        out.stdout_text(),
        "[\"showargs\",\"C:\\\\Program Files\\\\app\",\"x & echo INJECTED\"]\r\n"
    );
    assert_eq!(out.code, Some(0));
}

#[tokio::test]
async fn what_cmd_would_expand_is_refused_and_nothing_is_sent() {
    let (sim, client) = sim().await;
    for (value, index) in [
        ("%PATH%", 1),
        ("hunter2%secret", 1),
        ("!x!", 1),
        ("line\nbreak", 1),
        ("cr\rlf", 1),
    ] {
        let shell = client.shell().open().await.unwrap();
        let err = shell
            .command("showargs")
            .arg("fine")
            .arg(value)
            .start()
            .await
            .unwrap_err();
        match &err {
            Error::InvalidArgument { index: i, reason } => {
                assert_eq!(*i, index, "{value:?}");
                assert!(reason.contains("skip_cmd_shell"), "{reason}");
            }
            other => panic!("{value:?}: {other:?}"),
        }
        // The value may be a secret: the error never shows it.
        let shown = format!("{err} {err:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("PATH%"),
            "{shown}"
        );
        shell.close().await.unwrap();
    }
    // Client::run refuses the same way.
    let err = client.run("showargs", &["%OS%"]).await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { index: 0, .. }),
        "{err:?}"
    );
    // NUL cannot be sent in either mode.
    let shell = client.shell().open().await.unwrap();
    let err = shell
        .command(SHOWARGS_EXE)
        .skip_cmd_shell(true)
        .arg("a\0b")
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { index: 0, .. }),
        "{err:?}"
    );
    shell.close().await.unwrap();
    assert_eq!(sim.counters().commands_started, 0, "nothing was sent");
}

#[tokio::test]
async fn raw_arg_is_shell_syntax() {
    let (_sim, client) = sim().await;
    let shell = client.shell().codepage(65001).open().await.unwrap();
    let out = shell
        .command("echo")
        .raw_arg("a & echo b")
        .start()
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "a \r\nb\r\n");
    // Mixed: the quoted value stays one argument, the raw text is cmd's.
    let out = shell
        .command("showargs")
        .arg("x & y")
        .raw_arg("%OS% && echo second")
        .start()
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(
        out.stdout_text(),
        "[\"showargs\",\"x & y\",\"Windows_NT\"]\r\nsecond\r\n"
    );
    shell.close().await.unwrap();
}

/// The simulator's cmd emulation does act on what is not escaped, so the tests above
/// are meaningful.
#[tokio::test]
async fn the_simulator_acts_on_unescaped_cmd_syntax() {
    let (_sim, client) = sim().await;
    let shell = client.shell().codepage(65001).open().await.unwrap();
    let run = |line: &'static str| {
        let cmd = shell.command("showargs").raw_arg(line);
        async move { cmd.start().await.unwrap().collect().await.unwrap() }
    };
    // An unquoted `&` ends the command and starts another.
    let out = run("x & echo INJECTED").await;
    assert_eq!(out.stdout_text(), "[\"showargs\",\"x\"]\r\nINJECTED\r\n");
    // Unquoted spaces split; `%NAME%` is expanded, quoted or not.
    let out = run(r#"C:\Program Files\app "%OS%""#).await;
    assert_eq!(
        argv(&out),
        ["showargs", "C:\\Program", "Files\\app", "Windows_NT"]
    );
    // `>` redirects (the output is gone), `^` escapes outside quotes and is kept inside.
    let out = run("a > nul").await;
    assert!(out.stdout.is_empty(), "{out:?}");
    let out = run(r#"a^&b "c^&d""#).await;
    assert_eq!(argv(&out), ["showargs", "a&b", "c^&d"]);
    // An escaped quote opens no quoted run: the `&` after it is an operator.
    let out = run(r#"^"e & echo f^""#).await;
    assert_eq!(out.stdout_text(), "[\"showargs\",\"e \"]\r\nf\"\r\n");
    // `|` is an operator (the simulator has no pipes and says so).
    let out = run("a | findstr a").await;
    assert_eq!(out.code, Some(255));
    assert!(out.stdout.is_empty());
    // `( )` group commands.
    let out = shell
        .command("(echo one & echo two) > nul & echo three")
        .start()
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "three\r\n");
    // `%NAME%` is expanded before operators are read (as on Windows).
    let shell2 = client
        .shell()
        .env("PAIR", "left & echo right")
        .open()
        .await
        .unwrap();
    let out = shell2
        .command("echo")
        .raw_arg("%PAIR%")
        .start()
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "left \r\nright\r\n");
    shell2.close().await.unwrap();
    shell.close().await.unwrap();
}

/// A quoted program path with spaces works through cmd.exe with quoted arguments: the
/// client adds the pair of quotes cmd's `/c` rule removes.
#[tokio::test]
async fn quoted_program_path_with_spaces_through_cmd() {
    let (_sim, client) = sim().await;
    let exe = r"C:\Program Files\sim\showargs.exe";
    let out = client
        .run(&format!("\"{exe}\""), &["a b", "c"])
        .await
        .unwrap();
    assert_eq!(argv(&out), [exe, "a b", "c"]);
    let out = client.run(&format!("\"{exe}\""), &[]).await.unwrap();
    assert_eq!(argv(&out), [exe]);
    // Unquoted, cmd splits it: the caller must quote the command.
    let out = client.run(exe, &["a"]).await.unwrap();
    assert_eq!(out.code, Some(9009), "{out:?}");
}

/// Values that matter to cmd.exe or the argv rules, mixed with ordinary text.
fn value() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(" "),
        Just("\t"),
        Just("\""),
        Just("\\"),
        Just("&"),
        Just("|"),
        Just("<"),
        Just(">"),
        Just("^"),
        Just("("),
        Just(")"),
        Just("é"),
        Just("語"),
        Just("a"),
        Just("Z9"),
        Just("-/:.,;="),
    ];
    prop::collection::vec(piece, 0..10).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The client's quoting against the simulator's independent parser, end to end.
    #[test]
    fn arbitrary_values_round_trip_through_the_simulator(
        values in prop::collection::vec(value(), 0..4),
        skip in any::<bool>(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let got = rt.block_on(async {
            let (_sim, client) = sim().await;
            let shell = client.shell().codepage(65001).open().await.unwrap();
            let program = if skip { SHOWARGS_EXE } else { "showargs" };
            let out = shell
                .command(program)
                .skip_cmd_shell(skip)
                .args(values.iter().cloned())
                .start()
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
            shell.close().await.unwrap();
            argv(&out)
        });
        prop_assert_eq!(&got[1..], &values[..]);
    }
}
