//! Conveniences: run one command (or a PowerShell script) in a fresh shell and collect
//! its output.

use std::borrow::Cow;

use super::text;
use crate::client::Client;
use crate::error::Result;

/// The collected result of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Output {
    /// Raw standard output.
    pub stdout: Vec<u8>,
    /// Raw standard error.
    pub stderr: Vec<u8>,
    /// The exit code; `None` when the server reported the command done without one
    /// ([`crate::ExitStatus::ExitedWithoutCode`]), which is not success.
    pub code: Option<i64>,
    /// The code page the bytes are in.
    pub codepage: u32,
}

impl Output {
    /// Standard output decoded from the shell's code page.
    pub fn stdout_text(&self) -> Cow<'_, str> {
        text::decode(&self.stdout, self.codepage)
    }

    /// Standard error decoded from the shell's code page; PowerShell's CLIXML error
    /// records are turned into readable text ([`text::decode_clixml`]: a BOM or native
    /// stderr before them is handled, progress records are dropped, a malformed block
    /// is kept raw).
    pub fn stderr_text(&self) -> Cow<'_, str> {
        let raw = text::decode(&self.stderr, self.codepage);
        match text::decode_clixml(&raw) {
            Some(t) => Cow::Owned(t),
            None => raw,
        }
    }

    /// Exit code 0 (an unknown exit code is not success).
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// How the command ended: [`crate::ExitStatus::Exited`], or
    /// [`crate::ExitStatus::ExitedWithoutCode`] when [`Output::code`] is `None`.
    pub fn status(&self) -> super::ExitStatus {
        self.code.map_or(
            super::ExitStatus::ExitedWithoutCode,
            super::ExitStatus::Exited,
        )
    }
}

impl Client {
    /// Runs `command` with `args` in a new shell (UTF-8 code page), collects its output
    /// (at most [`crate::ClientBuilder::max_output`] bytes, 64 MiB unless set) and
    /// deletes the shell.
    ///
    /// Each of `args` reaches the program as exactly one argument, quoted for cmd.exe
    /// ([`crate::shell::CommandBuilder::arg`]). `command` is not: it is the start of a
    /// cmd.exe command line, written as given (`dir`, `ipconfig`, or
    /// `"\"C:\\Program Files\\app\\tool.exe\""` with the quotes a path with spaces needs),
    /// so never build it from data: `&`, `|` or `>` in it are cmd.exe's. Pass data as
    /// `args`.
    ///
    /// # Errors
    /// Faults and transport errors of any step; [`crate::Error::OutputTooLarge`] when
    /// the output exceeds the bound (the command is stopped and the shell deleted).
    ///
    /// # Cancel safety
    /// Dropping the future cancels the command and deletes the shell in the background.
    pub async fn run(&self, command: &str, args: &[&str]) -> Result<Output> {
        let shell = self.shell().codepage(65001).open().await?;
        let result = shell
            .command(command)
            .args(args.iter().copied())
            .start()
            .await;
        let out = match result {
            Ok(cmd) => cmd.collect().await,
            Err(e) => Err(e),
        };
        let closed = shell.close().await;
        let out = out?;
        closed?;
        Ok(out)
    }

    /// Runs a PowerShell script (`powershell -EncodedCommand`, UTF-16LE base64) and
    /// collects its output; [`Output::stderr_text`] decodes CLIXML error records.
    ///
    /// This starts a new `powershell.exe` for every call and returns text. Prefer a
    /// PowerShell Remoting pipeline ([`Client::runspace_pool`], [`crate::psrp`]) when you
    /// run more than one script on a host (one opened pool runs many pipelines without
    /// a process start each), want objects rather than text ([`crate::psrp::PsEvent`],
    /// serde), need the error, warning, verbose or information streams apart, send
    /// input objects, or need to stop a script cleanly (the PSRP stop signal). `run_ps`
    /// remains the way to reach hosts whose PowerShell Remoting endpoint is disabled
    /// (only the WinRS `cmd` shell is allowed).
    ///
    /// # Errors
    /// As [`Client::run`].
    ///
    /// # Cancel safety
    /// As [`Client::run`].
    pub async fn run_ps(&self, script: &str) -> Result<Output> {
        let encoded = text::encode_powershell(script);
        self.run(
            "powershell.exe",
            &[
                "-NoProfile",
                "-NonInteractive",
                "-ExecutionPolicy",
                "Bypass",
                "-EncodedCommand",
                &encoded,
            ],
        )
        .await
    }
}
