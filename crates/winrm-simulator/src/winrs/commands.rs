//! The simulated programs: a small `cmd.exe` (the `/c` quote rule, `%NAME%`, quotes,
//! `^`, `&&`, `||`, `&`, `( )` groups, `>&2`, `2>&1`, `>nul`, `> file`, `< file`, `/c`,
//! and an interactive mode reading stdin; see [`super::cmdline`]) and its table of
//! commands: `echo`, `type`, `set`, `cd`, `exit`, `ver`, `hostname`, `whoami`, `ping`,
//! `timeout`, `findstr`, `more`, `gen`/`sim-gen`, `showargs`, `powershell`, `sim-no-exit-code` (prints its
//! arguments and ends with `CommandState Done` but no `ExitCode`), `sim-clixml` (stderr
//! as public bug reports show it: a native tool's line, then a BOM and a CLIXML block
//! written in pieces), and the commands users registered.
//!
//! A line through cmd over 8,191 characters fails as cmd.exe does ([`MAX_CMD_LINE`]).
//!
//! Not emulated: pipes (`a | b` prints a message and exits 255 without running either
//! side), delayed expansion (`!NAME!`), files (`> file` discards, `< file` reads
//! nothing).

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::Registry;
use super::cmdline::{self, Op, classify, split_args, split_ops, split_program};
use super::powershell;
use super::process::{CommandContext, Io, StreamKind, Target};
use super::programs::{findstr, generate, more, ping, timeout};
use crate::SimFault;

/// Exit code of an unknown command run through cmd (`%ERRORLEVEL%` 9009 on Windows).
pub(crate) const NOT_RECOGNIZED: i32 = 9009;

/// The interpreter state of one command: its streams, environment and directory.
pub(crate) struct Sh {
    pub io: Io,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    pub user: String,
    pub shell_id: String,
    pub command_id: String,
    pub registry: Arc<Registry>,
    pub ping_interval: Duration,
    /// Programs started by programs (`cmd /c cmd /c ...`), bounded by [`MAX_DEPTH`].
    pub depth: usize,
}

/// How deeply programs may start programs: nested polls use the task's stack.
const MAX_DEPTH: usize = 32;

/// What runs for a Command request.
#[derive(Debug)]
pub(crate) enum Program {
    /// The command line through `cmd.exe /c` (the default).
    Cmd(String),
    /// A program started directly (`WINRS_SKIP_CMD_SHELL`).
    Direct(String),
}

/// How a cmd line ends: its last code, or an `exit` that ends cmd itself.
enum Flow {
    Next(i32),
    Exit(i32),
}

impl Flow {
    fn code(&self) -> i32 {
        match self {
            Flow::Next(c) | Flow::Exit(c) => *c,
        }
    }
}

/// Resolves a command line before the command starts. With `skip_cmd` the program must
/// be found as a file: a registered command, or a built-in program named by its full
/// path (Windows answers `powershell.exe` without a path with 2147942402).
pub(crate) fn resolve(
    line: &str,
    skip_cmd: bool,
    registry: &Registry,
) -> Result<Program, SimFault> {
    if !skip_cmd {
        return Ok(Program::Cmd(line.to_string()));
    }
    let (program, _) = split_program(line);
    let found = registry.command(&program).is_some()
        || ((program.contains('\\') || program.contains('/')) && is_program(&base_name(&program)));
    if found {
        Ok(Program::Direct(line.to_string()))
    } else {
        let mut f = SimFault::internal("The system cannot find the file specified. ", 2147942402);
        f.provider = Some((
            "Shell cmd plugin".into(),
            "%systemroot%\\system32\\winrscmd.dll|The system cannot find the file specified. "
                .into(),
        ));
        Err(f)
    }
}

/// The longest command line cmd.exe runs (8,191 characters, counted in UTF-16 code
/// units); a longer one ends with "The command line is too long." on stderr and exit
/// code 1. WinRS's own limit (CreateProcess', 32,767) is checked before the command
/// starts.
pub(crate) const MAX_CMD_LINE: usize = 8_191;

/// Runs a resolved program to its exit code.
pub(crate) async fn run(mut sh: Sh, program: Program) -> i32 {
    match program {
        Program::Cmd(line) if line.encode_utf16().count() > MAX_CMD_LINE => {
            sh.io.print(true, "The command line is too long.\r\n").await;
            1
        }
        Program::Cmd(line) => {
            // WinRS starts `cmd.exe /c LINE`, as if with `/s` (see `cmdline`).
            let line = cmdline::strip_c_quotes(&line, true, |_| false);
            run_cmd_line(&mut sh, &line).await.code()
        }
        // No cmd.exe: the line goes to the program as it is.
        Program::Direct(line) => dispatch(&mut sh, &line).await.code(),
    }
}

/// The lowercase file name of a program without directory and `.exe`.
fn base_name(program: &str) -> String {
    let name = program
        .rsplit(['\\', '/'])
        .next()
        .unwrap_or(program)
        .to_ascii_lowercase();
    name.strip_suffix(".exe")
        .map(str::to_string)
        .unwrap_or(name)
}

/// Programs (not cmd internals) the simulator has.
fn is_program(name: &str) -> bool {
    matches!(
        name,
        "cmd"
            | "powershell"
            | "pwsh"
            | "ping"
            | "timeout"
            | "findstr"
            | "more"
            | "gen"
            | "sim-gen"
            | "showargs"
            | "sim-no-exit-code"
            | "sim-clixml"
            | "hostname"
            | "whoami"
            | "ipconfig"
    )
}

/// Runs a line as cmd.exe does: `%NAME%` expanded first, then [`run_line`].
fn run_cmd_line<'a>(sh: &'a mut Sh, line: &'a str) -> BoxFuture<'a, Flow> {
    Box::pin(async move {
        let line = cmdline::expand_vars(line, &sh.env);
        run_line(sh, &line).await
    })
}

/// Runs an expanded cmd line: parts joined by `&`, `&&`, `||`.
fn run_line<'a>(sh: &'a mut Sh, line: &'a str) -> BoxFuture<'a, Flow> {
    Box::pin(async move {
        let parts = split_ops(line);
        if parts.iter().any(|(op, _)| *op == Op::Pipe) {
            sh.io
                .print(true, "The simulator does not emulate pipes (|).\r\n")
                .await;
            return Flow::Next(255);
        }
        let mut last = 0;
        for (op, segment) in parts {
            let run = match op {
                Op::Always | Op::Pipe => true,
                Op::And => last == 0,
                Op::Or => last != 0,
            };
            if !run {
                continue;
            }
            match run_simple(sh, &segment).await {
                Flow::Exit(c) => return Flow::Exit(c),
                Flow::Next(c) => last = c,
            }
        }
        Flow::Next(last)
    })
}

/// Removes the redirections cmd acts on from a part of a line (carets and operators
/// already classified) and returns the text the command sees and its stdout and stderr
/// targets.
fn redirections(chars: &[(usize, char, bool)], io: &Io) -> (String, Target, Target) {
    let (mut out, mut err) = (io.out, io.err);
    let mut text = String::with_capacity(chars.len());
    let mut k = 0;
    let skip_blanks = |k: &mut usize| {
        while chars.get(*k).is_some_and(|c| c.1 == ' ' || c.1 == '\t') {
            *k += 1;
        }
    };
    // A file name: up to a blank outside quotes or an operator.
    let skip_word = |k: &mut usize| {
        let mut quoted = false;
        while let Some(&(_, c, special)) = chars.get(*k) {
            if c == '"' {
                quoted = !quoted;
            } else if !quoted && ((c == ' ' || c == '\t') || (special && matches!(c, '<' | '>'))) {
                break;
            }
            *k += 1;
        }
    };
    while k < chars.len() {
        let (_, c, special) = chars[k];
        k += 1;
        if !special || !matches!(c, '<' | '>') {
            text.push(c);
            continue;
        }
        if c == '<' {
            skip_blanks(&mut k);
            skip_word(&mut k);
            continue;
        }
        // The handle number written just before `>`, if any.
        let fd = match text.chars().last() {
            Some(d @ ('1' | '2'))
                if text.len() == 1 || text[..text.len() - 1].ends_with([' ', '\t']) =>
            {
                text.pop();
                if d == '2' { 2 } else { 1 }
            }
            _ => 1,
        };
        if chars.get(k).is_some_and(|c| c.1 == '>' && c.2) {
            k += 1;
        }
        skip_blanks(&mut k);
        let target = if chars.get(k).is_some_and(|c| c.1 == '&' && c.2) {
            k += 1;
            let t = match chars.get(k).map(|c| c.1) {
                Some('2') => err,
                _ => out,
            };
            k += 1;
            t
        } else {
            // A file: the simulator has no file system, the output is discarded.
            skip_word(&mut k);
            Target::Null
        };
        if fd == 2 {
            err = target;
        } else {
            out = target;
        }
    }
    (text, out, err)
}

/// Runs one command of a cmd line (with its redirections).
fn run_simple<'a>(sh: &'a mut Sh, segment: &'a str) -> BoxFuture<'a, Flow> {
    Box::pin(async move {
        if sh.depth >= MAX_DEPTH {
            sh.io
                .print(
                    true,
                    "The simulator does not nest programs this deeply.\r\n",
                )
                .await;
            return Flow::Next(1);
        }
        let chars = classify(segment);
        let first = chars.iter().position(|c| !matches!(c.1, ' ' | '\t' | '@'));
        // `( ... )`: a group, run as a line, with the redirections after it.
        let group = first
            .filter(|&f| chars[f].1 == '(' && chars[f].2)
            .and_then(|f| {
                let mut depth = 0usize;
                for (k, &(_, c, special)) in chars.iter().enumerate().skip(f) {
                    match c {
                        '(' if special => depth += 1,
                        ')' if special => {
                            depth -= 1;
                            if depth == 0 {
                                return Some((f, k));
                            }
                        }
                        _ => {}
                    }
                }
                None
            });
        let (inner, rest) = match group {
            Some((open, close)) => (
                Some(&segment[chars[open].0 + 1..chars[close].0]),
                &chars[close + 1..],
            ),
            None => (None, &chars[..]),
        };
        let (text, out, err) = redirections(rest, &sh.io);
        let saved = (sh.io.out, sh.io.err);
        sh.io.out = out;
        sh.io.err = err;
        sh.depth += 1;
        let flow = match inner {
            Some(inner) => run_line(sh, inner).await,
            None => dispatch(sh, text.trim_start().trim_start_matches('@')).await,
        };
        sh.depth -= 1;
        sh.io.out = saved.0;
        sh.io.err = saved.1;
        flow
    })
}

async fn dispatch(sh: &mut Sh, text: &str) -> Flow {
    if text.trim().is_empty() {
        return Flow::Next(0);
    }
    let (program, rest) = split_program(text);
    let lower = program.to_ascii_lowercase();
    if let Some(f) = sh.registry.command(&program) {
        let ctx = CommandContext {
            program: program.clone(),
            args: split_args(rest),
            arg_text: rest.to_string(),
            env: sh.env.clone(),
            working_directory: sh.cwd.clone(),
            codepage: sh.io.codepage,
            user: sh.user.clone(),
            shell_id: sh.shell_id.clone(),
            command_id: sh.command_id.clone(),
            io: sh.io.clone(),
        };
        return Flow::Next(f(ctx).await);
    }
    if lower
        .strip_prefix("echo")
        .is_some_and(|a| a.starts_with(['.', ':', '(']))
    {
        // `echo.` prints an empty line, `echo.text` prints text.
        let shown = text.get(5..).unwrap_or("");
        sh.io.print(false, &format!("{shown}\r\n")).await;
        return Flow::Next(0);
    }
    let args = split_args(rest);
    let code = match lower.as_str() {
        "echo" => echo(sh, rest).await,
        "dir" => dir(sh, &args).await,
        "rem" => 0,
        "type" => type_files(sh, &args).await,
        "set" => set(sh, rest).await,
        "cd" | "chdir" => cd(sh, rest).await,
        "ver" => {
            sh.io
                .print(false, "\r\nMicrosoft Windows [Version 10.0.20348.2113]\r\n")
                .await;
            0
        }
        "exit" => {
            let n = args.iter().find(|a| !a.eq_ignore_ascii_case("/b"));
            return Flow::Exit(n.and_then(|n| n.parse().ok()).unwrap_or(0));
        }
        _ => return Flow::Next(program_by_name(sh, &program, rest, &args).await),
    };
    Flow::Next(code)
}

/// The stderr of `sim-clixml`, in the pieces it is written in: a native program's line,
/// then PowerShell's block after a UTF-8 BOM, with a progress record and one error
/// record, split inside the XML.
const SIM_CLIXML_STDERR: [&str; 5] = [
    "native.exe : something failed\r\n",
    "\u{feff}#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\">\
     <Obj S=\"progress\" RefId=\"0\"><TN RefId=\"0\"><T>System.Management.Automation.PSCustomObject</T>\
     <T>System.Object</T></TN><MS><I64 N=\"SourceId\">1</I64><PR N=\"Record\">\
     <AV>Preparing modules for first use.</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC>\
     <T>Completed</T><SR>-1</SR><SD> </SD></PR></MS></Obj><S S=\"Err",
    "or\">sim-clixml : boom_x000D__x000A_</S><S S=\"Error\">    + CategoryInfo          : \
     NotSpecified: (:) [Write-Error], WriteErrorException_x000D__x000A_</S>",
    "</Ob",
    "js>",
];

/// Runs an external program (one with a file name, possibly path-qualified).
async fn program_by_name(sh: &mut Sh, program: &str, rest: &str, args: &[String]) -> i32 {
    match base_name(program).as_str() {
        "cmd" => cmd(sh, rest).await,
        "powershell" | "pwsh" => powershell::run(sh, rest).await,
        "ping" => ping(sh, args).await,
        "timeout" => timeout(sh, args).await,
        "findstr" => findstr(sh, args).await,
        "more" => more(sh).await,
        "gen" | "sim-gen" => generate(sh, args).await,
        "showargs" => {
            // The argv the program received, as a JSON array (argv[0] first).
            let mut argv = vec![program.to_string()];
            argv.extend(args.iter().cloned());
            sh.io
                .print(false, &format!("{}\r\n", cmdline::json_array(&argv)))
                .await;
            0
        }
        "sim-no-exit-code" => {
            if !args.is_empty() {
                sh.io.print(false, &format!("{}\r\n", args.join(" "))).await;
            }
            sh.io.proc.omit_exit_code();
            // A client that takes a missing ExitCode for 0 would call this a success.
            0
        }
        "sim-clixml" => {
            for piece in SIM_CLIXML_STDERR {
                // Each write is a chunk of its own in the ReceiveResponse.
                sh.io.print(true, piece).await;
            }
            1
        }
        "hostname" => {
            sh.io.print(false, "SIM\r\n").await;
            0
        }
        "ipconfig" => {
            // A fixed, plausible configuration (documentation addresses, RFC 5737).
            let all = args.iter().any(|a| a.eq_ignore_ascii_case("/all"));
            let mut text = String::from("\r\nWindows IP Configuration\r\n\r\n");
            if all {
                text.push_str("   Host Name . . . . . . . . . . . . : SIM\r\n   Primary Dns Suffix  . . . . . . . : sim.test\r\n   Node Type . . . . . . . . . . . . : Hybrid\r\n   IP Routing Enabled. . . . . . . . : No\r\n\r\n");
            }
            text.push_str("Ethernet adapter Ethernet:\r\n\r\n   Connection-specific DNS Suffix  . : sim.test\r\n");
            if all {
                text.push_str("   Description . . . . . . . . . . . : Simulated Ethernet Adapter\r\n   Physical Address. . . . . . . . . : 00-15-5D-00-00-01\r\n   DHCP Enabled. . . . . . . . . . . : No\r\n");
            }
            text.push_str("   IPv4 Address. . . . . . . . . . . : 192.0.2.10\r\n   Subnet Mask . . . . . . . . . . . : 255.255.255.0\r\n   Default Gateway . . . . . . . . . : 192.0.2.1\r\n");
            sh.io.print(false, &text).await;
            0
        }
        "whoami" => {
            sh.io
                .print(false, &format!("sim\\{}\r\n", sh.user.to_lowercase()))
                .await;
            0
        }
        _ => {
            let msg = format!(
                "'{program}' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"
            );
            sh.io.print(true, &msg).await;
            NOT_RECOGNIZED
        }
    }
}

/// Runs another program from PowerShell or cmd by name, if the simulator knows it.
pub(crate) async fn run_external(sh: &mut Sh, text: &str) -> Option<i32> {
    let (program, _) = split_program(text);
    if sh.registry.command(&program).is_none() && !is_program(&base_name(&program)) {
        return None;
    }
    Some(run_simple(sh, text).await.code())
}

async fn echo(sh: &mut Sh, rest: &str) -> i32 {
    let trimmed = rest.trim();
    if trimmed.is_empty() {
        sh.io.print(false, "ECHO is on.\r\n").await;
    } else if !(trimmed.eq_ignore_ascii_case("on") || trimmed.eq_ignore_ascii_case("off")) {
        // `%NAME%` was expanded with the whole line.
        sh.io.print(false, &format!("{rest}\r\n")).await;
    }
    0
}

async fn type_files(sh: &mut Sh, args: &[String]) -> i32 {
    if args.is_empty() {
        sh.io
            .print(true, "The syntax of the command is incorrect.\r\n")
            .await;
        return 1;
    }
    let mut code = 0;
    for name in args {
        match sh.registry.file(&absolute(&sh.cwd, name)) {
            Some(bytes) => sh.io.write(false, &bytes).await,
            None => {
                sh.io
                    .print(true, "The system cannot find the file specified.\r\n")
                    .await;
                code = 1;
            }
        }
    }
    code
}

/// A Windows path made absolute against `cwd`.
pub(crate) fn absolute(cwd: &str, path: &str) -> String {
    let path = path.replace('/', "\\");
    if path.len() >= 2 && path.as_bytes()[1] == b':' {
        path
    } else if let Some(p) = path.strip_prefix('\\') {
        format!("{}\\{p}", cwd.get(..2).unwrap_or("C:"))
    } else {
        format!("{}\\{path}", cwd.trim_end_matches('\\'))
    }
}

async fn set(sh: &mut Sh, rest: &str) -> i32 {
    let rest = rest.trim();
    if let Some((name, value)) = rest.split_once('=') {
        sh.env.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        if !value.is_empty() {
            sh.env.push((name.to_string(), value.to_string()));
        }
        return 0;
    }
    let mut vars: Vec<&(String, String)> = sh
        .env
        .iter()
        .filter(|(k, _)| {
            k.to_ascii_lowercase()
                .starts_with(&rest.to_ascii_lowercase())
        })
        .collect();
    if vars.is_empty() {
        sh.io
            .print(
                true,
                &format!("Environment variable {rest} not defined\r\n"),
            )
            .await;
        return 1;
    }
    vars.sort_by_key(|(k, _)| k.to_ascii_lowercase());
    let text: String = vars.iter().map(|(k, v)| format!("{k}={v}\r\n")).collect();
    sh.io.print(false, &text).await;
    0
}

async fn cd(sh: &mut Sh, rest: &str) -> i32 {
    let target = rest.trim();
    let target = target
        .strip_prefix("/d")
        .or_else(|| target.strip_prefix("/D"))
        .unwrap_or(target)
        .trim();
    if target.is_empty() {
        let line = format!("{}\r\n", sh.cwd);
        sh.io.print(false, &line).await;
    } else if target == ".." {
        if let Some(i) = sh.cwd.rfind('\\').filter(|&i| i > 2) {
            sh.cwd.truncate(i);
        }
    } else {
        sh.cwd = absolute(&sh.cwd, target.trim_matches('"'))
            .trim_end_matches('\\')
            .to_string();
    }
    0
}

/// `cmd /c LINE` runs a line (after the `/c` quote rule); `cmd` alone reads commands
/// from stdin like a console.
async fn cmd(sh: &mut Sh, rest: &str) -> i32 {
    let mut text = rest.trim_start();
    let mut strip = false;
    loop {
        let (flag, after) = split_program(text);
        match flag.to_ascii_lowercase().as_str() {
            "/c" | "/k" => {
                let registry = Arc::clone(&sh.registry);
                let line = cmdline::strip_c_quotes(after, strip, |name| {
                    registry.command(name).is_some()
                        || ((name.contains('\\') || name.contains('/'))
                            && is_program(&base_name(name)))
                });
                return run_cmd_line(sh, &line).await.code();
            }
            "/s" => {
                strip = true;
                text = after;
            }
            "/q" | "/d" | "/a" | "/u" => text = after,
            f if f.starts_with("/v")
                || f.starts_with("/e")
                || f.starts_with("/f")
                || f.starts_with("/t") =>
            {
                text = after
            }
            _ => break,
        }
    }
    let banner = "Microsoft Windows [Version 10.0.20348.2113]\r\n(c) Microsoft Corporation. All rights reserved.\r\n\r\n";
    sh.io.print(false, banner).await;
    let mut last = 0;
    loop {
        let prompt = format!("{}>", sh.cwd);
        sh.io.print(false, &prompt).await;
        let line = sh.io.stdin.lock().await.line().await;
        let Some(line) = line else { return last };
        let line = String::from_utf8_lossy(&line)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        sh.io.print(false, &format!("{line}\r\n")).await;
        match run_cmd_line(sh, &line).await {
            Flow::Exit(c) => return c,
            Flow::Next(c) => last = c,
        }
        sh.io.print(false, "\r\n").await;
    }
}

/// The stream a command writes to by default.
pub(crate) fn default_targets() -> (Target, Target) {
    (
        Target::Stream(StreamKind::Stdout),
        Target::Stream(StreamKind::Stderr),
    )
}

/// `dir [path]`: the directories and files of the host's file system (built in, put
/// with `Simulator::put_file` / `register_file`, or copied by a client) in a directory
/// (the current one by default, or `path` against it), or one file, in the shape of
/// cmd's listing. Switches (`/b`, `/s`, ...) are not simulated and are ignored.
async fn dir(sh: &mut Sh, args: &[String]) -> i32 {
    let target = args.iter().find(|a| !a.starts_with('/')).map_or_else(
        || sh.cwd.clone(),
        |p| absolute(&sh.cwd, p.trim_matches('"')),
    );
    let target = if target.len() > 3 {
        target.trim_end_matches('\\').to_string()
    } else {
        target
    };
    let (shown, entries) = match sh.registry.entries(&target) {
        Some(entries) => (target, entries),
        None => match sh.registry.file(&target) {
            // One file: its directory's listing of it alone.
            Some(bytes) => {
                let (parent, name) = target.rsplit_once('\\').unwrap_or(("C:", &target));
                let parent = if parent.len() == 2 {
                    format!("{parent}\\")
                } else {
                    parent.to_string()
                };
                (parent, vec![(name.to_string(), Some(bytes.len()))])
            }
            None => (target, Vec::new()),
        },
    };
    let mut text = format!(
        " Volume in drive C has no label.\r\n Volume Serial Number is 5143-0000\r\n\r\n Directory of {shown}\r\n\r\n"
    );
    let (mut files, mut dirs, mut total) = (0, 0, 0);
    for (name, len) in &entries {
        match len {
            Some(len) => {
                files += 1;
                total += len;
                text.push_str(&format!("01/01/2026  12:00 PM {len:>17} {name}\r\n"));
            }
            None => {
                dirs += 1;
                text.push_str(&format!(
                    "01/01/2026  12:00 PM    <DIR>          {name}\r\n"
                ));
            }
        }
    }
    text.push_str(&format!("{files:>16} File(s) {total:>14} bytes\r\n"));
    text.push_str(&format!("{dirs:>16} Dir(s)\r\n"));
    if entries.is_empty() {
        sh.io.print(false, &text).await;
        sh.io.print(true, "File Not Found\r\n").await;
        return 1;
    }
    sh.io.print(false, &text).await;
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_and_redirections() {
        let parts = split_ops("echo out && echo err>&2 && exit 1");
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[1].1, " echo err>&2 ");
        let (out, err) = default_targets();
        let (proc, rx) = super::super::process::Proc::new("X".into());
        let io = Io {
            proc,
            stdin: Arc::new(tokio::sync::Mutex::new(
                super::super::process::StdinReader::new(rx),
            )),
            out,
            err,
            codepage: 65001,
        };
        let (text, o, _) = redirections(&classify(" echo err>&2 "), &io);
        assert_eq!(text, " echo err ");
        assert_eq!(o, err);
        let (text, o, e) = redirections(&classify("echo x 2>&1 >nul"), &io);
        assert_eq!(text.trim_end(), "echo x");
        assert_eq!((o, e), (Target::Null, out));
        // Escaped or quoted, `>` and `<` are text.
        let (text, o, _) = redirections(&classify("echo a ^> b \"<c>\" < in.txt"), &io);
        assert_eq!((text.as_str(), o), ("echo a > b \"<c>\" ", out));
        assert_eq!(split_ops("echo a ^& b")[0].1, "echo a ^& b");
        assert_eq!(split_args(r#"a "b c" d\"e"#), vec!["a", "b c", "d\"e"]);
        assert_eq!(
            split_program("\"C:\\x y\\p.exe\" -a b"),
            ("C:\\x y\\p.exe".to_string(), "-a b")
        );
    }
}
