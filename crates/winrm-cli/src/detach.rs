//! `winrm run --detach` and `winrm attach`: a command that outlives the tool
//! ([MS-WSMV] Disconnect and Connect). `run --detach` starts the command, disconnects
//! from its shell and prints `SHELL_ID COMMAND_ID` on one line (output that arrived
//! before the disconnect goes to stderr); `attach SHELL_ID
//! COMMAND_ID` (from any process) connects to the shell, streams the rest of the
//! command's output and exits with its exit code.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_winrm::{CancelReason, Client, CommandEvent, ExitStatus};

use crate::Failure;
use crate::stream::{
    Opening, cleanup_left, exit_code, not_started_interrupted, opening, watch_ctrl_c,
};

/// Starts `command args` in a new UTF-8 shell, disconnects and prints the ids (`SHELL
/// COMMAND`, or with `json` an object with `shell_id` and `command_id`).
pub async fn detach(
    client: &Client,
    command: &str,
    args: &[String],
    idle_timeout: Option<Duration>,
    skip_cmd_shell: bool,
    json: bool,
) -> Result<ExitCode, Failure> {
    let shell = client.shell().codepage(65001).open().await?;
    let cmd = match args
        .iter()
        .fold(
            shell.command(command).skip_cmd_shell(skip_cmd_shell),
            |b, a| b.raw_arg(a.clone()),
        )
        .start()
        .await
    {
        Ok(cmd) => cmd,
        Err(e) => {
            let _ = shell.close().await;
            return Err(e.into());
        }
    };
    let command_id = cmd.id().to_string();
    let mut cmd = cmd;
    let disconnected = shell.disconnect(idle_timeout).await?;
    // Output the server sent before the Disconnect is not sent again to whoever attaches:
    // it goes to stderr here (stdout keeps the one line of ids), so nothing is lost. The
    // stream then ends with Error::Disconnected; dropping it sends nothing.
    while let Some(ev) = cmd.next().await {
        match ev {
            Ok(CommandEvent::Stdout(b) | CommandEvent::Stderr(b)) => {
                let _ = std::io::stderr().write_all(&b);
            }
            Ok(CommandEvent::Exit(status)) => {
                eprintln!("note: the command ended before the disconnect: {status:?}");
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    drop(cmd);
    if json {
        let ids = serde_json::json!({ "shell_id": disconnected.id(), "command_id": command_id });
        crate::out::outln!("{ids}");
    } else {
        crate::out::outln!("{} {}", disconnected.id(), command_id);
    }
    let _ = std::io::stdout().flush();
    Ok(ExitCode::SUCCESS)
}

/// Connects to a disconnected shell, streams the command's remaining output, closes
/// the shell and exits with the command's exit code.
pub async fn attach(
    client: &Client,
    shell_id: &str,
    command_id: &str,
) -> Result<ExitCode, Failure> {
    let mut interrupts = watch_ctrl_c();
    // An interrupt while connecting leaves the command as it was; once the shell is
    // connected, it cancels the command as it does while streaming (the shell deleted).
    let connect = client.shell().codepage(65001).connect(shell_id);
    let shell = match opening(connect, &mut interrupts, None).await {
        Opening::Done(shell) => shell?,
        Opening::Interrupted | Opening::DeadlinePassed => {
            return Ok(not_started_interrupted(
                &format!("while connecting to shell {shell_id}"),
                "the command goes on running (if the server took the Connect, the shell \
                 stays connected to no client until its idle timeout passes)",
            ));
        }
    };
    let mut cmd = match opening(shell.attach_command(command_id), &mut interrupts, None).await {
        Opening::Done(Ok(cmd)) => cmd,
        Opening::Done(Err(e)) => {
            // Leave the shell as we found it, for another try.
            if shell.disconnect(None).await.is_err() {
                eprintln!("warning: could not disconnect from shell {shell_id} again");
            }
            return Err(e.into());
        }
        Opening::Interrupted | Opening::DeadlinePassed => {
            let code = not_started_interrupted(
                "while attaching to the command",
                "deleting its shell, which ends the command",
            );
            if !matches!(
                tokio::time::timeout(cleanup_left(), shell.close()).await,
                Ok(Ok(()))
            ) {
                eprintln!(
                    "warning: the server did not confirm the shell's deletion; it deletes the shell when its idle timeout passes"
                );
            }
            return Ok(code);
        }
    };
    let cancel = cmd.cancel_handle();
    let status = loop {
        tokio::select! {
            ev = cmd.next() => match ev {
                Some(Ok(CommandEvent::Stdout(b))) => {
                    let mut o = std::io::stdout().lock();
                    if o.write_all(&b).and_then(|()| o.flush()).is_err() {
                        cancel.cancel();
                    }
                }
                Some(Ok(CommandEvent::Stderr(b))) => {
                    let mut e = std::io::stderr().lock();
                    let _ = e.write_all(&b).and_then(|()| e.flush());
                }
                Some(Ok(CommandEvent::Exit(status))) => break status,
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Err(Failure::Message("the output stream ended without an exit status".into(), 1)),
            },
            Some(()) = interrupts.recv() => {
                if cancel.is_cancelled() {
                    std::process::exit(crate::stream::interrupted_code().into());
                }
                eprintln!("{}: cancelling the remote command (Signal terminate); press Ctrl-C again to quit at once", crate::stream::interrupt_name());
                cancel.cancel();
            }
        }
    };
    drop(cmd);
    if let Err(e) = shell.close().await {
        eprintln!("warning: closing the shell failed: {e}");
    }
    Ok(match status {
        ExitStatus::Exited(code) => exit_code(code),
        ExitStatus::ExitedWithoutCode => {
            eprintln!(
                "error: the server reported the command done without an exit code; exiting with {}",
                crate::stream::EXIT_NO_CODE
            );
            ExitCode::from(crate::stream::EXIT_NO_CODE)
        }
        ExitStatus::Cancelled { reason } => {
            if reason != CancelReason::User {
                eprintln!("cancelled: {reason}");
            }
            ExitCode::from(crate::stream::interrupted_code())
        }
        other => {
            eprintln!("error: the command ended with a status this tool does not know: {other:?}");
            ExitCode::from(crate::EXIT_CLIENT_ERROR)
        }
    })
}
