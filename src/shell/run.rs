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
    /// the output exceeds the bound (the command is stopped and the shell deleted);
    /// [`crate::Error::InvalidArgument`] (nothing sent) for an argument cmd.exe would
    /// expand (`%` or `!` in it: see [`crate::shell::CommandBuilder::arg`]);
    /// [`crate::Error::Cancelled`] once the client's token is cancelled
    /// ([`Client::cancel_all`], [`Client::shutdown`]).
    ///
    /// # Cancel safety
    /// Dropping the future cancels the command and deletes the shell in the background,
    /// so `tokio::time::timeout(limit, client.run(..))` bounds it safely. For the output
    /// received before a time limit, and a final [`crate::ExitStatus::Cancelled`] with
    /// reason `Timeout`, stream the command instead: `client.shell().open()`, then
    /// [`crate::shell::Shell::command`] with [`crate::shell::CommandBuilder::deadline`].
    /// [`Client::cancel_all`] stops the command and deletes the shell itself, without
    /// waiting for this future to be polled again.
    pub async fn run(&self, command: &str, args: &[&str]) -> Result<Output> {
        self.run_collect(command, args, false).await
    }

    async fn run_collect(&self, command: &str, args: &[&str], skip_cmd: bool) -> Result<Output> {
        let shell = self.shell().codepage(65001).open().await?;
        // Deleted by its command's driver if the client cancels everything.
        shell.inner.delete_with_command();
        let result = shell
            .command(command)
            .args(args.iter().copied())
            .skip_cmd_shell(skip_cmd)
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
    /// input objects, run a script longer than about 12,000 characters, or need to stop
    /// a script cleanly (the PSRP stop signal). `run_ps` remains the way to reach hosts
    /// whose PowerShell Remoting endpoint is disabled (only the WinRS `cmd` shell is
    /// allowed).
    ///
    /// A script whose command line fits cmd.exe's 8,191 characters (up to about 3,000
    /// characters of script) runs as `powershell.exe` through `cmd.exe /c`, found on the
    /// host's `PATH` wherever Windows is installed. A longer one, which cmd.exe would
    /// refuse ("The command line is too long."), starts `powershell.exe` without cmd.exe
    /// (`WINRS_SKIP_CMD_SHELL`) by its path in `C:\Windows\System32` (WinRS does not
    /// search `PATH` then), where the limit is Windows' 32,767 characters for a process's
    /// command line.
    ///
    /// # Errors
    /// [`crate::Error::ScriptTooLong`] (nothing sent) when the encoded script would not
    /// fit that command line: a script longer than 12,240 UTF-16 code units (characters,
    /// but 2 for one outside the Basic Multilingual Plane); run it in a pipeline instead
    /// (`client.runspace_pool().open()`, then `pool.pipeline().script(..)`). Otherwise
    /// as [`Client::run`].
    ///
    /// # Cancel safety
    /// As [`Client::run`].
    pub async fn run_ps(&self, script: &str) -> Result<Output> {
        let ps = PowerShellCommand::for_script(script)?;
        let args: Vec<&str> = ps.args.iter().map(String::as_str).collect();
        self.run_collect(ps.program, &args, ps.skip_cmd_shell).await
    }
}

/// How [`Client::run_ps`] starts PowerShell for a script, for a caller that runs the
/// command itself (to stream its output, as `winrm ps` does): the program, its
/// arguments (the script as `-EncodedCommand`), and whether it starts without cmd.exe
/// ([`crate::shell::CommandBuilder::skip_cmd_shell`]). Give the arguments with
/// [`crate::shell::CommandBuilder::args`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PowerShellCommand {
    /// `powershell.exe`, or its path when it starts without cmd.exe.
    pub program: &'static str,
    /// `-NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand <base64>`.
    pub args: Vec<String>,
    /// Start it without cmd.exe (a script too long for cmd.exe's line).
    pub skip_cmd_shell: bool,
}

impl PowerShellCommand {
    /// The command for `script`, as [`Client::run_ps`] describes it: through cmd.exe
    /// while the line fits its 8,191 characters, else without it by powershell.exe's
    /// path.
    ///
    /// # Errors
    /// [`crate::Error::ScriptTooLong`] for a script longer than 12,240 UTF-16 code units.
    pub fn for_script(script: &str) -> Result<PowerShellCommand> {
        let length = script.encode_utf16().count();
        if length > RUN_PS_MAX_SCRIPT {
            return Err(crate::Error::ScriptTooLong {
                length,
                max: RUN_PS_MAX_SCRIPT,
            });
        }
        let args: Vec<String> = POWERSHELL_ARGS
            .iter()
            .map(|a| a.to_string())
            .chain([text::encode_powershell(script)])
            .collect();
        let line = POWERSHELL_ON_PATH.len() + args.iter().map(|a| a.len() + 1).sum::<usize>();
        let skip_cmd_shell = line > MAX_CMD_LINE;
        Ok(PowerShellCommand {
            program: if skip_cmd_shell {
                POWERSHELL
            } else {
                POWERSHELL_ON_PATH
            },
            args,
            skip_cmd_shell,
        })
    }
}

/// `powershell.exe` as cmd.exe finds it on the host's `PATH`.
const POWERSHELL_ON_PATH: &str = "powershell.exe";

/// The longest command line cmd.exe runs.
const MAX_CMD_LINE: usize = 8_191;

/// `powershell.exe` by its path: started without cmd.exe, WinRS does not search `PATH`
/// (it answers a bare `powershell.exe` with 2147942402, file not found).
const POWERSHELL: &str = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe";

/// The arguments before the encoded script.
const POWERSHELL_ARGS: [&str; 5] = [
    "-NoProfile",
    "-NonInteractive",
    "-ExecutionPolicy",
    "Bypass",
    "-EncodedCommand",
];

/// The longest command line Windows starts a process with (`CreateProcess`: 32,767
/// characters including the terminating NUL).
const MAX_PROCESS_COMMAND_LINE: usize = 32_766;

/// The longest script (in UTF-16 code units) [`Client::run_ps`] sends: its base64 (4
/// characters for each 3 bytes of UTF-16LE, 2 bytes a unit) fits the command line after
/// the program and its arguments, each joined with a space.
const RUN_PS_MAX_SCRIPT: usize = {
    let mut prefix = POWERSHELL.len();
    let mut i = 0;
    while i < POWERSHELL_ARGS.len() {
        prefix += 1 + POWERSHELL_ARGS[i].len();
        i += 1;
    }
    // The space before the encoded script.
    let budget = MAX_PROCESS_COMMAND_LINE - prefix - 1;
    budget / 4 * 3 / 2
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_run_ps_script_fills_the_process_command_line() {
        assert_eq!(RUN_PS_MAX_SCRIPT, 12_240, "as run_ps's docs say");
        let line = |n: usize| {
            let encoded = text::encode_powershell(&"x".repeat(n));
            let mut line = POWERSHELL.to_string();
            for a in POWERSHELL_ARGS.iter().copied().chain([encoded.as_str()]) {
                line.push(' ');
                line.push_str(a);
            }
            line.len()
        };
        assert!(line(RUN_PS_MAX_SCRIPT) <= MAX_PROCESS_COMMAND_LINE);
        assert!(line(RUN_PS_MAX_SCRIPT + 1) > MAX_PROCESS_COMMAND_LINE);
    }
}
