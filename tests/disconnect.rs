//! Disconnect, Reconnect and Connect ([MS-WSMV] §3.1.4.15-17) against the embedded
//! simulator: a command's output read partly by one client, the shell disconnected,
//! that client dropped, and the rest read by a new client, byte-exact.

use std::time::Duration;

use futures_util::StreamExt;
use tokio_winrm::{Auth, Client, Command, CommandEvent, Error, ExitStatus};
use winrm_simulator::{SimConfig, Simulator};

const T: Duration = Duration::from_secs(30);

/// Output of the `pattern` command: 4 MiB, more than the simulator's 1 MiB pipe, so the
/// command is held up by the full pipe while the shell is disconnected.
const TOTAL: usize = 4 << 20;
const EXIT: i32 = 7;

fn pattern_byte(i: usize) -> u8 {
    // Not periodic at any chunk size the transport or the pipe uses.
    ((i * 31 + i / 4099) % 251) as u8
}

fn expected() -> Vec<u8> {
    (0..TOTAL).map(pattern_byte).collect()
}

async fn sim() -> Simulator {
    let sim = Simulator::start_with(SimConfig {
        max_shells_per_user: 100,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    sim.register_command("pattern", |ctx| {
        Box::pin(async move {
            let mut i = 0;
            while i < TOTAL {
                let n = (TOTAL - i).min(50_000);
                let chunk: Vec<u8> = (i..i + n).map(pattern_byte).collect();
                ctx.write_stdout(&chunk).await;
                i += n;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            EXIT
        })
    });
    sim.register_command("forever", |_ctx| {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            0
        })
    });
    sim
}

fn client(sim: &Simulator) -> Client {
    Client::builder(sim.endpoint())
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < T, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn is_internal_error(e: &Error) -> bool {
    e.fault()
        .is_some_and(|f| f.subcode_name() == Some("InternalError"))
}

/// Reads the stream to its end: (stdout, the final item).
async fn drain(cmd: &mut Command) -> (Vec<u8>, Option<Result<ExitStatus, Error>>) {
    let mut out = Vec::new();
    while let Some(ev) = tokio::time::timeout(T, cmd.next()).await.unwrap() {
        match ev {
            Ok(CommandEvent::Stdout(b)) => out.extend_from_slice(&b),
            Ok(CommandEvent::Stderr(b)) => panic!("unexpected stderr {b:?}"),
            Ok(CommandEvent::Exit(s)) => return (out, Some(Ok(s))),
            Err(e) => return (out, Some(Err(e))),
            other => panic!("unexpected {other:?}"),
        }
    }
    (out, None)
}

#[tokio::test]
async fn disconnect_drop_client_connect_from_new_client_reads_the_rest_byte_exact() {
    let sim = sim().await;
    let first = client(&sim);
    let shell = first.shell().open().await.unwrap();
    let mut cmd = shell.command("pattern").start().await.unwrap();
    let (shell_id, command_id) = (shell.id().to_string(), cmd.id().to_string());

    // Read part of the output.
    let mut got = Vec::new();
    while got.len() < 512 * 1024 {
        match tokio::time::timeout(T, cmd.next()).await.unwrap() {
            Some(Ok(CommandEvent::Stdout(b))) => got.extend_from_slice(&b),
            other => panic!("unexpected {other:?}"),
        }
    }
    let disconnected = tokio::time::timeout(T, shell.disconnect(None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(disconnected.id(), shell_id);
    // The first stream yields what the server had sent, then the typed end.
    let (rest, end) = drain(&mut cmd).await;
    got.extend_from_slice(&rest);
    match end {
        Some(Err(Error::Disconnected {
            shell_id: s,
            command_id: c,
        })) => {
            assert_eq!(
                (s.as_str(), c.as_str()),
                (shell_id.as_str(), command_id.as_str())
            );
        }
        other => panic!("expected Error::Disconnected, got {other:?}"),
    }
    assert!(
        got.len() < TOTAL,
        "the command must still have output to give"
    );
    assert_eq!(
        got[..],
        expected()[..got.len()],
        "prefix before the disconnect"
    );
    let c = sim.counters();
    assert_eq!(c.disconnected_shells, 1, "{c:?}");
    assert_eq!(c.receives_pending, 0, "{c:?}");

    // Drop the first client entirely: no Signal, no Delete.
    drop(cmd);
    drop(disconnected);
    tokio::time::timeout(T, first.shutdown()).await.unwrap();
    drop(first);
    // Let the command fill its pipe while nobody reads.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let c = sim.counters();
    assert_eq!(
        c.terminate_signals, 0,
        "a disconnect must not terminate: {c:?}"
    );
    assert_eq!(c.open_shells, 1, "{c:?}");
    assert_eq!(c.running_commands, 1, "{c:?}");
    assert_eq!(c.disconnected_shells, 1, "{c:?}");

    // A new client attaches by id and reads the rest.
    let second = client(&sim);
    let shell = tokio::time::timeout(T, second.connect_shell(&shell_id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shell.id(), shell_id);
    assert_eq!(sim.counters().disconnected_shells, 0);
    let mut cmd = shell.attach_command(&command_id).await.unwrap();
    assert_eq!(cmd.id(), command_id);
    let (rest, end) = drain(&mut cmd).await;
    assert_eq!(
        sim.counters().terminate_signals,
        1,
        "Signal terminate once, at the end"
    );
    got.extend_from_slice(&rest);
    assert_eq!(
        end.map(|r| r.unwrap()),
        Some(ExitStatus::Exited(EXIT.into()))
    );
    assert_eq!(got.len(), TOTAL);
    assert!(
        got == expected(),
        "output differs from the sequence written"
    );
    drop(cmd);
    shell.close().await.unwrap();
    tokio::time::timeout(T, second.shutdown()).await.unwrap();
    let c = sim.counters();
    assert_eq!(c.open_shells, 0, "{c:?}");
    assert_eq!(c.running_commands, 0, "{c:?}");
    assert_eq!(c.disconnected_shells, 0, "{c:?}");
    assert_eq!(c.receives_pending, 0, "{c:?}");
    assert_eq!(
        (c.disconnects, c.reconnects, c.terminate_signals),
        (1, 1, 1),
        "{c:?}"
    );
}

#[tokio::test]
async fn requests_to_a_disconnected_shell_get_internal_error_and_reconnect_restores_it() {
    let sim = sim().await;
    let client = client(&sim);
    let shell = client.shell().open().await.unwrap();
    let id = shell.id().to_string();
    let mut cmd = shell.command("forever").start().await.unwrap();
    let disconnected = shell
        .disconnect(Some(Duration::from_secs(60)))
        .await
        .unwrap();
    let (_, end) = drain(&mut cmd).await;
    assert!(
        matches!(end, Some(Err(Error::Disconnected { .. }))),
        "{end:?}"
    );

    // §3.1.4.1.31.7: Send (and any request but Disconnect, Reconnect, Connect, Delete)
    // is refused with wsman:InternalError.
    let e = cmd.send(b"x").await.unwrap_err();
    assert!(is_internal_error(&e), "{e:?}");
    assert!(!e.fault().unwrap().is_gone(), "{e:?}");
    // A Connect to a shell that does not exist is invalid selectors.
    let other = client
        .connect_shell("00000000-0000-0000-0000-000000000000")
        .await;
    assert!(other.unwrap_err().fault().is_some_and(|f| f.is_gone()));

    // Reconnect (the same client), then the command is readable again.
    let shell = disconnected.reconnect().await.unwrap();
    assert_eq!(shell.id(), id);
    assert_eq!(sim.counters().disconnected_shells, 0);
    // A Connect from another client to a connected shell is an InternalError (§3.1.4.17).
    let e = client.connect_shell(&id).await.unwrap_err();
    assert!(is_internal_error(&e), "{e:?}");
    // Attaching to an unknown command: invalid selectors.
    let e = shell.attach_command("NOT-A-COMMAND").await.unwrap_err();
    assert!(e.fault().is_some_and(|f| f.is_gone()), "{e:?}");
    let cmd2 = shell.attach_command(cmd.id()).await.unwrap();
    drop(cmd);
    assert_eq!(sim.counters().terminate_signals, 0);
    // Dropping the attached command cancels it as usual: one Signal terminate.
    drop(cmd2);
    shell.close().await.unwrap();
    client.shutdown().await;
    let c = sim.counters();
    assert_eq!(c.terminate_signals, 1, "{c:?}");
    assert_eq!(
        (c.open_shells, c.running_commands, c.disconnected_shells),
        (0, 0, 0),
        "{c:?}"
    );
}

#[tokio::test]
async fn a_disconnected_shell_past_its_idle_timeout_is_deleted() {
    let sim = sim().await;
    let client = client(&sim);
    let shell = client.shell().open().await.unwrap();
    let id = shell.id().to_string();
    let mut cmd = shell.command("forever").start().await.unwrap();
    let started = std::time::Instant::now();
    let disconnected = shell
        .disconnect(Some(Duration::from_millis(300)))
        .await
        .unwrap();
    let _ = drain(&mut cmd).await;
    wait_for("the idle timeout to delete the shell", || {
        sim.counters().open_shells == 0
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "deleted before its idle timeout"
    );
    let c = sim.counters();
    assert_eq!((c.running_commands, c.disconnected_shells), (0, 0), "{c:?}");
    let e = client.connect_shell(&id).await.unwrap_err();
    assert!(e.fault().is_some_and(|f| f.is_gone()), "{e:?}");
    let e = disconnected.reconnect().await.unwrap_err();
    assert!(e.fault().is_some_and(|f| f.is_gone()), "{e:?}");
}

#[tokio::test]
async fn dropping_a_disconnected_shell_leaves_it_on_the_server() {
    let sim = sim().await;
    let client = client(&sim);
    let shell = client.shell().open().await.unwrap();
    let id = shell.id().to_string();
    let cmd = shell.command("forever").start().await.unwrap();
    let disconnected = shell.disconnect(None).await.unwrap();
    drop(disconnected);
    drop(cmd);
    client.shutdown().await;
    drop(client);
    let c = sim.counters();
    assert_eq!((c.open_shells, c.running_commands), (1, 1), "{c:?}");
    assert_eq!(c.disconnected_shells, 1, "{c:?}");
    assert_eq!(c.terminate_signals, 0, "{c:?}");

    // Another client can still connect, and its close deletes it.
    let other = self::client(&sim);
    let shell = other.connect_shell(&id).await.unwrap();
    shell.close().await.unwrap();
    let c = sim.counters();
    assert_eq!(
        (c.open_shells, c.running_commands, c.disconnected_shells),
        (0, 0, 0),
        "{c:?}"
    );
}

#[tokio::test]
async fn reconnect_is_refused_once_another_client_has_connected() {
    let sim = sim().await;
    let first = client(&sim);
    let shell = first.shell().open().await.unwrap();
    let id = shell.id().to_string();
    let disconnected = shell.disconnect(None).await.unwrap();
    // Another client takes the shell over with Connect.
    let second = client(&sim);
    let taken = second.connect_shell(&id).await.unwrap();
    // The first client's Reconnect is for a shell that is no longer its own (§3.2.6.4).
    let e = disconnected.reconnect().await.unwrap_err();
    assert!(is_internal_error(&e), "{e:?}");
    assert!(e.to_string().contains("use Connect"), "{e}");
    // The second client still holds it.
    assert_eq!(sim.counters().open_shells, 1);
    taken.close().await.unwrap();
    first.shutdown().await;
    assert_eq!(sim.counters().open_shells, 0);
}

/// A shell opened without a code page is created with 437, stated on the wire (the text
/// helpers decode with it, so the host must not pick its own OEM page); one created with
/// 65001 and connected from another client with `.codepage(65001)` decodes its UTF-8
/// output as such.
#[tokio::test]
async fn the_code_page_is_stated_at_create_and_named_at_connect() {
    let sim = sim().await;
    let c = client(&sim);
    let plain = c.shell().open().await.unwrap();
    assert_eq!(plain.codepage(), 437);
    let create = sim
        .requests()
        .into_iter()
        .rfind(|r| r.action.ends_with("/transfer/Create"))
        .expect("the Create is logged");
    assert_eq!(create.option("WINRS_CODEPAGE"), Some("437"), "{create:?}");
    plain.close().await.unwrap();

    let shell = c.shell().codepage(65001).open().await.unwrap();
    let away = shell.disconnect(None).await.unwrap();
    let other = client(&sim);
    let again = other
        .shell()
        .codepage(65001)
        .connect(away.id())
        .await
        .unwrap();
    assert_eq!(again.codepage(), 65001);
    let out = again
        .command("echo")
        .args(["héllo", "wörld"])
        .start()
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(out.stdout_text().trim_end(), "héllo wörld");
    again.close().await.unwrap();
}
