//! Replay conformance for WinRS (issue 3): the real `Client`, over Basic on HTTP, runs
//! the shells and commands that pypsrp and WinRMSharp ran against real Windows hosts,
//! against a server that answers with the recorded responses. Each captured request must
//! be equivalent to its recorded one (`support/compare.rs`), up to the documented
//! [`INTENDED_DIFFERENCES`] a test grants, and the recorded responses must come out as
//! the recorded output, exit code or typed fault.
//!
//! The replay server (`support/replay_server.rs`) matches each request to the next
//! unanswered recorded exchange with the same `wsa:Action` and releases the replies in
//! recorded order: this client may legitimately have a Receive in flight while it sends
//! stdin (Windows holds the Receive until output arrives), and the recorded order is what
//! the real server did. A request with no recorded exchange left gets HTTP 599 and fails
//! the test; a recorded exchange that never gets its request fails it too (a hang reports
//! the pending script).

#[path = "support/compare.rs"]
mod compare;
#[path = "support/mini_http.rs"]
mod mini_http;
#[path = "support/recorded.rs"]
mod recorded;
#[path = "support/replay_server.rs"]
mod replay_server;
#[path = "support/winrs_differences.rs"]
mod winrs_differences;

use std::time::Duration;

use compare::{Allowance, equivalent_with};
use replay_server::{Replay, drain, exit_of, stderr_of, stdout_of, steps_of};
use tokio_winrm::shell::text;
use tokio_winrm::{CancelReason, CommandEvent, ExitStatus};
use winrs_differences::*;
use wsman_protocol::fault::code;

const PT20S: Duration = Duration::from_secs(20);
const PT5S: Duration = Duration::from_secs(5);

/// The usual pypsrp run: one shell, one `cmd.exe`-style command read to its end, close.
/// Returns the command's events.
async fn pypsrp_run(
    name: &str,
    allowances: &[&'static Allowance],
    open: impl FnOnce(tokio_winrm::ShellBuilder) -> tokio_winrm::ShellBuilder,
    command: &str,
    args: &[&str],
) -> Vec<CommandEvent> {
    let rec = recorded::load(&format!("pypsrp/{name}"));
    let replay = Replay::start(&rec, steps_of(&rec, allowances)).await;
    let c = replay.client(PT20S);
    let shell = replay
        .within("Create", open(c.shell()).open())
        .await
        .expect("open");
    let cmd = replay
        .within(
            "Command",
            // The recorded clients wrote each argument verbatim: raw_arg, not arg.
            args.iter()
                .fold(shell.command(command), |b, a| b.raw_arg(*a))
                .start(),
        )
        .await
        .expect("start");
    let (events, error) = drain(&replay, cmd).await;
    assert!(error.is_none(), "{name}: {error:?}");
    replay.within("Delete", shell.close()).await.expect("close");
    replay.within("shutdown", c.shutdown()).await;
    replay.finish();
    events
}

// ---- pypsrp ----------------------------------------------------------------------

#[tokio::test]
async fn pypsrp_standard() {
    let events = pypsrp_run(
        "test_winrs_standard",
        &[
            &BOOL_OPTION_CASE,
            &SIGNAL_TERMINATE_AFTER_DONE,
            &DEFAULT_CODEPAGE_STATED,
        ],
        |b| b,
        "cmd.exe",
        &["/c", "echo", "hi"],
    )
    .await;
    assert_eq!(
        events,
        vec![
            CommandEvent::Stdout(b"hi\r\n".to_vec().into()),
            CommandEvent::Exit(ExitStatus::Exited(0))
        ]
    );
}

#[tokio::test]
async fn pypsrp_stderr_and_exit_code() {
    let events = pypsrp_run(
        "test_winrs_stderr_rc",
        &[
            &BOOL_OPTION_CASE,
            &SIGNAL_TERMINATE_AFTER_DONE,
            &DEFAULT_CODEPAGE_STATED,
        ],
        |b| b,
        "cmd.exe",
        &["/c echo out && echo err>&2 && exit 1"],
    )
    .await;
    assert_eq!(stdout_of(&events), b"out \r\n");
    assert_eq!(stderr_of(&events), b"err \r\n");
    assert_eq!(exit_of(&events), ExitStatus::Exited(1));
}

#[tokio::test]
async fn pypsrp_unicode_codepage_65001() {
    let events = pypsrp_run(
        "test_winrs_unicode",
        &[
            &BOOL_OPTION_CASE,
            &SIGNAL_TERMINATE_AFTER_DONE,
            &CODEPAGE_MUST_COMPLY,
        ],
        |b| b.codepage(65001),
        "powershell.exe",
        &["Write-Host こんにちは"],
    )
    .await;
    assert_eq!(text::decode(&stdout_of(&events), 65001), "こんにちは\n");
    assert_eq!(exit_of(&events), ExitStatus::Exited(0));
}

#[tokio::test]
async fn pypsrp_environment() {
    let special = r#"_-(){}[]<>*+-/\?"!@#$^&|;:i,.`~0"#;
    let events = pypsrp_run(
        "test_winrs_environment",
        &[
            &BOOL_OPTION_CASE,
            &SIGNAL_TERMINATE_AFTER_DONE,
            &SHELL_SCHEMA_ORDER,
            &DEFAULT_CODEPAGE_STATED,
        ],
        |b| {
            b.env("env1", "var1")
                .env("1234", "5678")
                .env(special, special)
        },
        "cmd.exe",
        &["/c", "set"],
    )
    .await;
    let out = text::decode(&stdout_of(&events), 437).into_owned();
    assert!(out.starts_with("1234=5678\r\n"), "{out}");
    assert!(out.contains("\r\nenv1=var1\r\n"), "{out}");
    assert!(
        out.contains(&format!("\r\n{special}={special}\r\n")),
        "{out}"
    );
    assert_eq!(exit_of(&events), ExitStatus::Exited(0));
}

#[tokio::test]
async fn pypsrp_extra_shell_options() {
    let events = pypsrp_run(
        "test_winrs_extra_opts",
        &[
            &BOOL_OPTION_CASE,
            &SIGNAL_TERMINATE_AFTER_DONE,
            &SHELL_SCHEMA_ORDER,
            &SHELL_NAME_LIFETIME_UNSUPPORTED,
            &DEFAULT_CODEPAGE_STATED,
        ],
        |b| {
            b.idle_timeout(Duration::from_secs(60))
                .working_directory(r"C:\Windows")
        },
        "powershell.exe",
        &["(pwd).Path"],
    )
    .await;
    assert_eq!(stdout_of(&events), b"C:\\Windows\r\n");
    assert_eq!(exit_of(&events), ExitStatus::Exited(0));
}

#[tokio::test]
async fn pypsrp_noprofile() {
    let events = pypsrp_run(
        "test_winrs_noprofile",
        &[
            &BOOL_OPTION_CASE,
            &SIGNAL_TERMINATE_AFTER_DONE,
            &DEFAULT_CODEPAGE_STATED,
        ],
        |b| b.no_profile(true),
        "cmd.exe",
        &["/c", "set"],
    )
    .await;
    let out = text::decode(&stdout_of(&events), 437).into_owned();
    assert!(
        out.contains("\r\nUSERPROFILE=C:\\Users\\Default\r\n"),
        "{out}"
    );
    assert_eq!(exit_of(&events), ExitStatus::Exited(0));
}

#[tokio::test]
async fn pypsrp_operation_timeout_polls_again() {
    let rec = recorded::load("pypsrp/test_winrs_operation_timeout");
    let replay = Replay::start(
        &rec,
        steps_of(
            &rec,
            &[
                &BOOL_OPTION_CASE,
                &SIGNAL_TERMINATE_AFTER_DONE,
                &DEFAULT_CODEPAGE_STATED,
            ],
        ),
    )
    .await;
    // pypsrp ran with a 10 s OperationTimeout; two Receives timed out on the server.
    let c = replay.client(Duration::from_secs(10));
    let shell = replay.within("Create", c.shell().open()).await.unwrap();
    let cmd = replay
        .within(
            "Command",
            shell
                .command("powershell.exe")
                .raw_arg("Write-Host hi; Start-Sleep 30; Write-Host hi again")
                .start(),
        )
        .await
        .unwrap();
    let (events, error) = drain(&replay, cmd).await;
    assert!(error.is_none(), "{error:?}");
    // The TimedOut faults are silent: output chunks as sent, in order, then Exit.
    let chunk = |s: &[u8]| CommandEvent::Stdout(s.to_vec().into());
    assert_eq!(
        events,
        vec![
            chunk(b"hi"),
            chunk(b"\n"),
            chunk(b"hi"),
            chunk(b" again\n"),
            CommandEvent::Exit(ExitStatus::Exited(0))
        ]
    );
    replay.within("Delete", shell.close()).await.unwrap();
    replay.within("shutdown", c.shutdown()).await;
    let reqs = replay.finish();
    let receives = reqs
        .iter()
        .filter(|r| r.text().contains("/windows/shell/Receive<"))
        .count();
    assert_eq!(receives, 4, "one Receive per recorded Receive, no more");
}

#[tokio::test]
async fn pypsrp_send_stdin_in_recorded_chunks() {
    let rec = recorded::load("pypsrp/test_winrs_send");
    let replay = Replay::start(
        &rec,
        steps_of(
            &rec,
            &[
                &BOOL_OPTION_CASE,
                &SIGNAL_TERMINATE_AFTER_DONE,
                &SEND_END_ATTRIBUTE,
                &DEFAULT_CODEPAGE_STATED,
            ],
        ),
    )
    .await;
    let c = replay.client(PT20S);
    let shell = replay.within("Create", c.shell().open()).await.unwrap();
    let cmd = replay
        .within("Command", shell.command("powershell.exe").arg("-").start())
        .await
        .unwrap();
    // The recording's two Sends: the first without End, the second with End.
    replay
        .within("Send 1", cmd.send(br#"Write-Host "output 1";"#))
        .await
        .unwrap();
    replay
        .within("Send 2", cmd.close_stdin(br#"Write-Host "output 2";"#))
        .await
        .unwrap();
    let (events, error) = drain(&replay, cmd).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(stdout_of(&events), b"output 1\noutput 2\n");
    assert_eq!(exit_of(&events), ExitStatus::Exited(0));
    replay.within("Delete", shell.close()).await.unwrap();
    replay.within("shutdown", c.shutdown()).await;
    replay.finish();
}

#[tokio::test]
async fn pypsrp_bad_command_id_is_a_typed_gone_fault() {
    let rec = recorded::load("pypsrp/test_winrs_bad_cmd_id");
    let mut steps = steps_of(
        &rec,
        &[
            &BOOL_OPTION_CASE,
            &SIGNAL_TERMINATE_AFTER_DONE,
            &DEFAULT_CODEPAGE_STATED,
        ],
    );
    assert_eq!(
        rec.exchanges[2].overrides.len(),
        1,
        "the harness override of the Receive"
    );
    steps[2].allowances.push(&BAD_COMMAND_ID_OVERRIDE);
    let replay = Replay::start(&rec, steps).await;
    let c = replay.client(PT20S);
    let shell = replay.within("Create", c.shell().open()).await.unwrap();
    let cmd = replay
        .within(
            "Command",
            shell.command("cmd.exe").args(["/c", "echo", "hi"]).start(),
        )
        .await
        .unwrap();
    let (events, error) = drain(&replay, cmd).await;
    assert!(
        events.is_empty(),
        "no output and no Exit before the error: {events:?}"
    );
    let err = error.expect("the Receive fault surfaces from the stream");
    let f = err
        .fault()
        .unwrap_or_else(|| panic!("expected a fault, got {err:?}"));
    assert_eq!(f.code(), Some(code::INVALID_SELECTORS));
    assert!(f.is_gone());
    // The driver still sends Signal terminate; the server answers it before the Delete.
    replay.within("Delete", shell.close()).await.unwrap();
    replay.within("shutdown", c.shutdown()).await;
    replay.finish();
}

#[tokio::test]
async fn pypsrp_no_cmd_shell_file_not_found_then_full_path() {
    let rec = recorded::load("pypsrp/test_winrs_no_cmd_shell");
    let replay = Replay::start(
        &rec,
        steps_of(
            &rec,
            &[
                &BOOL_OPTION_CASE,
                &SIGNAL_TERMINATE_AFTER_DONE,
                &DEFAULT_CODEPAGE_STATED,
            ],
        ),
    )
    .await;
    let c = replay.client(PT20S);
    let shell = replay.within("Create", c.shell().open()).await.unwrap();
    let err = replay
        .within(
            "Command 1",
            shell
                .command("powershell.exe")
                .args(["Write-Host", "hi"])
                .skip_cmd_shell(true)
                .start(),
        )
        .await
        .expect_err("without cmd.exe, a bare program name is not found");
    let f = err
        .fault()
        .unwrap_or_else(|| panic!("expected a fault, got {err:?}"));
    assert_eq!(f.code(), Some(code::FILE_NOT_FOUND));
    let cmd = replay
        .within(
            "Command 2",
            shell
                .command(r"C:\Windows\system32\WindowsPowerShell\v1.0\powershell.exe")
                .args(["Write-Host", "hi"])
                .skip_cmd_shell(true)
                .start(),
        )
        .await
        .unwrap();
    let (events, error) = drain(&replay, cmd).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(stdout_of(&events), b"hi\n");
    assert_eq!(exit_of(&events), ExitStatus::Exited(0));
    replay.within("Delete", shell.close()).await.unwrap();
    replay.within("shutdown", c.shutdown()).await;
    replay.finish();
}

// ---- WinRMSharp ------------------------------------------------------------------

#[tokio::test]
async fn winrmsharp_open_close_shell() {
    let rec = recorded::load("WinRMSharp/ProtocolOpenCloseShell");
    let replay = Replay::start(
        &rec,
        steps_of(
            &rec,
            &[WINRMSHARP_HEADERS, &[&DEFAULT_CODEPAGE_STATED]].concat(),
        ),
    )
    .await;
    let c = replay.client(PT5S);
    let shell = replay.within("Create", c.shell().open()).await.unwrap();
    assert_eq!(shell.id(), "8552200B-8CA3-4FF5-8236-3384D727C7F4");
    replay.within("Delete", shell.close()).await.unwrap();
    replay.within("shutdown", c.shutdown()).await;
    replay.finish();
}

#[tokio::test]
async fn winrmsharp_command_with_input() {
    let rec = recorded::load("WinRMSharp/ProtocolRunCommandWithCommandInput");
    let mut allowances = WINRMSHARP_HEADERS.to_vec();
    allowances.extend([
        &OPTION_SET_MUST_UNDERSTAND,
        &RECEIVE_KEEPALIVE,
        &SEND_END_ATTRIBUTE,
        &DEFAULT_CODEPAGE_STATED,
    ]);
    let replay = Replay::start(&rec, steps_of(&rec, &allowances)).await;
    let c = replay.client(PT5S);
    let shell = replay.within("Create", c.shell().open()).await.unwrap();
    let cmd = replay
        .within(
            "Command",
            shell
                .command("cmd")
                .console_mode_stdin(true)
                .skip_cmd_shell(false)
                .start(),
        )
        .await
        .unwrap();
    // The recording's one Send, without End (cmd exits on its own).
    replay
        .within("Send", cmd.send(b"echo \"hello world\" && exit\r\n"))
        .await
        .unwrap();
    let (events, error) = drain(&replay, cmd).await;
    assert!(error.is_none(), "{error:?}");
    let out = text::decode(&stdout_of(&events), 437).into_owned();
    assert!(
        out.starts_with("Microsoft Windows [Version 10.0.22621.963]\r\n"),
        "{out}"
    );
    assert!(out.ends_with("\r\n\"hello world\" \r\n"), "{out}");
    assert_eq!(exit_of(&events), ExitStatus::Exited(0));
    replay.within("Delete", shell.close()).await.unwrap();
    replay.within("shutdown", c.shutdown()).await;
    replay.finish();
}

#[tokio::test]
async fn winrmsharp_command_with_command_timeout() {
    let rec = recorded::load("WinRMSharp/ProtocolRunCommandWithCommandTimeout");
    let mut steps = steps_of(&rec, WINRMSHARP_HEADERS);
    steps[0].allowances.push(&DEFAULT_CODEPAGE_STATED);
    for s in &mut steps {
        s.allowances.push(&OPTION_SET_MUST_UNDERSTAND);
    }
    steps[2].allowances.push(&RECEIVE_KEEPALIVE);
    // WinRMSharp's 15 s command timeout became the OperationTimeout of its Command and
    // Receive; here it is the command's deadline, and every request keeps PT5S.
    steps[1].allowances.push(&COMMAND_TIMEOUT_IS_A_DEADLINE);
    steps[2].allowances.push(&COMMAND_TIMEOUT_IS_A_DEADLINE);
    let replay = Replay::start(&rec, steps).await;
    let c = replay.client(PT5S);
    let shell = replay.within("Create", c.shell().open()).await.unwrap();
    let cmd = replay
        .within(
            "Command",
            shell
                .command("powershell -Command Start-Sleep -s 10")
                .console_mode_stdin(true)
                .skip_cmd_shell(false)
                .deadline(Duration::from_secs(15))
                .start(),
        )
        .await
        .unwrap();
    let (events, error) = drain(&replay, cmd).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(events, vec![CommandEvent::Exit(ExitStatus::Exited(0))]);
    replay.within("Delete", shell.close()).await.unwrap();
    replay.within("shutdown", c.shutdown()).await;
    replay.finish();
}

#[tokio::test]
async fn winrmsharp_exceeding_operation_timeout_then_terminate() {
    let rec = recorded::load("WinRMSharp/ProtocolRunCommandExceedingOperationTimeout");
    let mut allowances = WINRMSHARP_HEADERS.to_vec();
    allowances.extend([
        &OPTION_SET_MUST_UNDERSTAND,
        &RECEIVE_KEEPALIVE,
        &DEFAULT_CODEPAGE_STATED,
    ]);
    let mut steps = steps_of(&rec, &allowances);
    // After the TimedOut fault this client polls again (WinRMSharp gave up); that Receive
    // is held open, and the test cancels the command while it is pending.
    let mut repoll = steps_of(&rec, &allowances).remove(2);
    repoll.label.push_str(" (poll again, held)");
    repoll.hold = true;
    steps.insert(3, repoll);
    let replay = Replay::start(&rec, steps).await;
    let c = replay.client(PT5S);
    let shell = replay.within("Create", c.shell().open()).await.unwrap();
    let cmd = replay
        .within(
            "Command",
            shell
                .command("powershell -Command Start-Sleep -s 10")
                .console_mode_stdin(true)
                .skip_cmd_shell(false)
                .start(),
        )
        .await
        .unwrap();
    replay.requested(3).await;
    cmd.cancel();
    let (events, error) = drain(&replay, cmd).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        events,
        vec![CommandEvent::Exit(ExitStatus::Cancelled {
            reason: CancelReason::User
        })]
    );
    replay.within("Delete", shell.close()).await.unwrap();
    replay.within("shutdown", c.shutdown()).await;
    let reqs = replay.finish();
    // The Signal (recorded: terminate, compared without allowance) went out on another
    // connection than the Receive it abandoned.
    assert!(reqs[4].text().contains("/windows/shell/signal/terminate<"));
    assert_ne!(reqs[3].connection, reqs[4].connection);
}

// ---- the allowances themselves ---------------------------------------------------

#[test]
fn intended_differences_are_documented_and_distinct() {
    let mut names: Vec<&str> = INTENDED_DIFFERENCES.iter().map(|a| a.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(
        names.len(),
        INTENDED_DIFFERENCES.len(),
        "duplicate allowance names"
    );
    for a in INTENDED_DIFFERENCES {
        assert!(a.reason.len() > 40, "{} needs a real reason", a.name);
    }
}

#[test]
fn allowances_do_not_hide_real_differences() {
    let rec = recorded::load("pypsrp/test_winrs_standard");
    // Every allowance a pypsrp replay may be granted.
    let all: Vec<&Allowance> = vec![
        &BOOL_OPTION_CASE,
        &SIGNAL_TERMINATE_AFTER_DONE,
        &CODEPAGE_MUST_COMPLY,
        &SHELL_SCHEMA_ORDER,
        &SHELL_NAME_LIFETIME_UNSUPPORTED,
        &SEND_END_ATTRIBUTE,
        &BAD_COMMAND_ID_OVERRIDE,
    ];
    let signal = &rec.exchanges[3].request;
    // The recorded ctrl_c becomes terminate, so our terminate matches ...
    let ours = signal.replace("signal/ctrl_c", "signal/terminate");
    equivalent_with("pypsrp", &ours, signal, &all).unwrap();
    // ... but a ctrl_c, a break, or another command id from us does not.
    for bad in [
        signal.clone(),
        signal.replace("signal/ctrl_c", "signal/ctrl_break"),
        ours.replace("CommandId=\"CF84", "CommandId=\"0F84"),
    ] {
        assert!(
            equivalent_with("pypsrp", &bad, signal, &all).is_err(),
            "{bad}"
        );
    }
    // Boolean case is allowed, a flipped boolean is not.
    let command = &rec.exchanges[1].request;
    let upper = command.replace(">False<", ">FALSE<");
    equivalent_with("pypsrp", &upper, command, &all).unwrap();
    let flipped = command.replace(">False<", ">TRUE<");
    assert!(equivalent_with("pypsrp", &flipped, command, &all).is_err());
}
