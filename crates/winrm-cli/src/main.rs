//! `winrm`: a command-line WS-Management client on tokio-winrm, the quickest way to try
//! the library.
//!
//! ```text
//! winrm identify
//! winrm get wmicimv2/Win32_Service --selector Name=WinRM
//! winrm run ping -n 3 localhost
//! winrm \
//!     --endpoint https://host:5986/wsman --user 'DOMAIN\me' identify
//! winrm --endpoint URL run --detach long-job.cmd   # prints SHELL_ID COMMAND_ID, exits 0
//! winrm --endpoint URL attach SHELL_ID COMMAND_ID  # streams the rest, exits with its code
//! winrm --user U run --hosts hosts.txt --concurrency 64 -- ipconfig   # fan-out: a summary
//! ```
//!
//! Without `--endpoint` the tool starts the embedded simulator in-process and talks to
//! it with the simulator's credentials. Exit codes: 0 success, 1 error (faults print
//! their code, meaning and message), 2 usage, the remote exit code for `run`/`ps`,
//! 124 when `--deadline` passed, 125 when the server reported the command done without
//! an exit code, 130 after Ctrl-C (143 after SIGTERM, 129 after SIGHUP: each cancels the
//! remote operation as Ctrl-C does). For `run`, `ps` and `attach`, whose status is the
//! remote command's, an error of the tool or the connection exits 255 (as ssh does).

// The doc comments of the clap types are the tool's --help text, where a URL is plain
// and `[user:pass@]` is usage syntax, not a link.
#![allow(rustdoc::bare_urls, rustdoc::broken_intra_doc_links)]

/// `eprintln!` that never panics. The standard one panics when stderr is closed (`2>&-`,
/// or a reader that went away, as in `2>&1 | head`), which would turn the tool's real
/// exit status into a panic's 101; a message that cannot be written is dropped instead.
/// Defined before the modules, so that it is the `eprintln!` every one of them uses.
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod cp;
mod detach;
mod fanout;
mod out;
mod pwsh;
mod render;
mod sim;
mod stream;
mod wql;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio_winrm::{Auth, Client, Error, Instance, Resource};
use winrm_simulator::Simulator;

/// Talk to a Windows host (or the embedded simulator) over WS-Management.
#[derive(Debug, Parser)]
#[command(name = "winrm", version, about, long_about = None, after_help = EXIT_STATUS_HELP)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Cmd,
}

/// The exit statuses, shown by `--help`.
const EXIT_STATUS_HELP: &str = "\
Exit status: 0 success; 1 error (faults print their code, meaning and message); 2 usage;
for `run` and `ps` the remote exit code (1 when it does not fit 0-255), 124 when
--deadline passed, 125 when the server reported the command done without an exit code
(its outcome is unknown), 130 after Ctrl-C, 141 when stdout was closed. SIGTERM and
SIGHUP cancel the remote operation as Ctrl-C does and exit 143 and 129.
For `run`, `ps` and `attach` an error of the tool or the connection exits 255 (as ssh
does), so that it cannot be taken for the command's own 1. With --json an error is one
JSON object on stderr: {\"error\": {\"message\", \"kind\", \"fault\",
\"may_have_executed\", \"retryable\", \"hint\"}}.
`run --hosts`: 0 when every host exited 0, 1 when any did not, 130 after Ctrl-C.";

/// `--concurrency`'s default for `run --hosts` and `cp --hosts`: hosts in flight at once.
const HOSTS_AT_ONCE: u32 = 32;

/// `--concurrency`'s largest value (`run --hosts`, `cp --hosts`).
const MAX_HOSTS_AT_ONCE: i64 = 4096;

/// Options every client subcommand takes (`sim` takes only [`SIM_OPTIONS`] of them).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Connection and output options (every subcommand but sim)")]
struct Global {
    /// The endpoint, e.g. https://host:5986/wsman. Without it the embedded simulator is
    /// started in-process and used.
    #[arg(long, env = "WINRM_ENDPOINT", global = true, value_name = "URL")]
    endpoint: Option<String>,
    /// User name: `user`, `DOMAIN\user` or `user@domain`.
    #[arg(long, env = "WINRM_USER", global = true)]
    user: Option<String>,
    /// Password (prefer the environment variable, --password-stdin or the prompt; it is
    /// never printed). With --user and no password, a terminal is asked without echo.
    #[arg(long, env = "WINRM_PASSWORD", global = true, hide_env_values = true)]
    password: Option<String>,
    /// Read the password from the first line of stdin (then `run` passes no stdin).
    /// Without --endpoint: used with the embedded simulator's user name.
    #[arg(long, global = true)]
    password_stdin: bool,
    /// Tracing output on stderr: -v for info, -vv for debug (RUST_LOG, when set, wins).
    /// Secrets never appear in it.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Authentication scheme (ntlm and negotiate seal messages over http://).
    #[arg(long, value_enum, default_value_t = AuthKind::Negotiate, global = true)]
    auth: AuthKind,
    /// Accept any TLS certificate (lab hosts only: anyone on the path can read the traffic).
    #[arg(long, global = true)]
    insecure: bool,
    /// Trust the CA certificates in this PEM file, in addition to the web PKI roots.
    #[arg(long, value_name = "FILE", global = true)]
    ca: Option<PathBuf>,
    /// Also trust the operating system's trust store (on Linux the system CA bundle, or
    /// SSL_CERT_FILE / SSL_CERT_DIR; where an internal CA is usually installed).
    #[arg(long, global = true)]
    os_roots: bool,
    /// Trust exactly the server certificate with this SHA-256 fingerprint (64 hex digits,
    /// colons optional, as `openssl x509 -noout -fingerprint -sha256` prints it); repeat
    /// for several (a renewal). The pin replaces CA and host-name checks; the server
    /// must still prove it holds the certificate's key.
    #[arg(long = "pin", value_name = "SHA256", global = true)]
    pins: Vec<String>,
    /// Allow Basic authentication over plain http:// (the password travels in clear text).
    #[arg(long, global = true)]
    allow_http_basic: bool,
    /// The WS-Management OperationTimeout of each request, in seconds.
    #[arg(long, value_name = "SECS", value_parser = parse_secs, global = true)]
    operation_timeout: Option<Duration>,
    /// The most one HTTP request may take, in seconds (a slow server or a stalled
    /// connection then fails with a timeout instead of hanging). Default: the operation
    /// timeout + 10 s; keep it above the operation timeout, which long polls wait out.
    #[arg(long, value_name = "SECS", value_parser = parse_secs, global = true)]
    http_timeout: Option<Duration>,
    /// Print JSON instead of text (one document; JSON lines for wql, enumerate, pwsh,
    /// `run --hosts` and `cp --hosts`; run and ps print the command's own text).
    #[arg(long, global = true)]
    json: bool,
    /// Print this process's peak resident set size (VmHWM) on stderr at exit (Linux;
    /// for the fan-out smoke test).
    #[arg(long, global = true, hide = true)]
    report_peak_rss: bool,
    /// Connect through this proxy: http://[user:pass@]host[:port] (an HTTP CONNECT
    /// tunnel), socks5://... (names resolved here) or socks5h://... (resolved by the
    /// proxy). The user:pass@ is for the proxy only and is never printed.
    #[arg(long, value_name = "URL", global = true, value_parser = parse_proxy_arg)]
    proxy: Option<ProxyArg>,
    /// Take the proxy from HTTPS_PROXY / HTTP_PROXY / ALL_PROXY and NO_PROXY, as curl
    /// does (ignored with --proxy).
    #[arg(long, global = true)]
    proxy_from_env: bool,
    /// With --auth kerberos (or --auth negotiate --spnego): the service principal name to
    /// ask a ticket for, e.g. HTTP/web01.corp.example (default: HTTP/ and the endpoint's
    /// host as written; use it when the endpoint is an alias or an IP address).
    #[arg(long, value_name = "SPN", global = true)]
    spn: Option<String>,
    /// With --auth certificate: the client certificate (PEM; leaf first, then any
    /// intermediates), which the host maps to a user.
    #[arg(long, value_name = "FILE", global = true)]
    cert: Option<PathBuf>,
    /// With --auth certificate: the client certificate's private key (PEM: PKCS#8,
    /// PKCS#1 or SEC1). It is never printed.
    #[arg(long, value_name = "FILE", global = true)]
    key: Option<PathBuf>,
    /// With --auth kerberos (a build with the gssapi feature): log on as --user with its
    /// key from this client keytab, as `kinit -k -t FILE` would. Without it and without a
    /// password, --auth kerberos uses the ticket cache (KRB5CCNAME; run kinit first).
    #[arg(long, value_name = "FILE", global = true)]
    keytab: Option<PathBuf>,
    /// With --auth kerberos: ask for the ticket of HTTP/ and the endpoint host's
    /// canonical DNS name (its CNAME target). Off by default: DNS is not authenticated.
    #[arg(long, global = true)]
    canonicalize_host: bool,
    /// SPNEGO under `Authorization: Negotiate`, as Windows' own clients do. With --auth
    /// negotiate: Kerberos first when the user names a realm whose KDC krb5.conf
    /// (KRB5_CONFIG) lists and the host is not an IP address (else --spn), NTLM inside
    /// SPNEGO otherwise, instead of raw NTLM tokens. With --auth kerberos from the
    /// ticket cache or --keytab (gssapi build): the Kerberos token SPNEGO-wrapped
    /// instead of the bare AP-REQ under `Kerberos`.
    #[arg(long, global = true)]
    spnego: bool,
}

/// The `--proxy` URL as given; its `Debug` hides the user information. Parsed when the
/// client is built, so that no parse error (clap's repeat the value) shows a password.
#[derive(Clone)]
struct ProxyArg(String);

impl std::fmt::Debug for ProxyArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match tokio_winrm::Proxy::parse(&self.0) {
            Ok(p) => write!(f, "{p:?}"),
            Err(_) => f.write_str("ProxyArg(<unparsable>)"),
        }
    }
}

fn parse_proxy_arg(s: &str) -> Result<ProxyArg, std::convert::Infallible> {
    Ok(ProxyArg(s.to_string()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AuthKind {
    Basic,
    Ntlm,
    Negotiate,
    Kerberos,
    /// A TLS client certificate (--cert, --key) mapped to a user by the host; https only.
    Certificate,
    /// CredSSP: the password delegated to the host (second hop); https with a verified
    /// or pinned certificate only.
    Credssp,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// What the endpoint is (WS-Management Identify).
    Identify {
        /// Send no credentials (`WSMANIDENTIFY: unauthenticated`).
        #[arg(long)]
        unauthenticated: bool,
    },
    /// Get one instance, e.g. `get wmicimv2/Win32_Service --selector Name=WinRM`.
    Get {
        /// Resource URI or short form (wmicimv2/CLASS, winrm/config, ...).
        resource: String,
        /// A selector (key), repeatable.
        #[arg(long = "selector", short = 's', value_name = "K=V", value_parser = parse_kv)]
        selectors: Vec<(String, String)>,
    },
    /// Invoke a method, e.g. `invoke wmicimv2/Win32_Process Create --param CommandLine=notepad.exe`.
    Invoke {
        /// Resource URI or short form.
        resource: String,
        /// The method name.
        method: String,
        /// A selector (key), repeatable.
        #[arg(long = "selector", short = 's', value_name = "K=V", value_parser = parse_kv)]
        selectors: Vec<(String, String)>,
        /// An input parameter, repeatable.
        #[arg(long = "param", short = 'p', value_name = "K=V", value_parser = parse_kv)]
        params: Vec<(String, String)>,
    },
    /// Run a command line in a remote cmd shell (as ssh does: the words form one remote
    /// command line), streaming its output; exits with its exit code.
    ///
    /// The words after `run` are joined with single spaces into one command line that
    /// cmd.exe reads as typed at its prompt: `&`, `&&`, `||`, `|`, `<`, `>`, `^`, `"`
    /// and `%NAME%` are cmd's, so `winrm run 'echo a & echo b'` runs two commands and a
    /// path with spaces needs quotes that reach cmd.exe:
    /// `winrm run 'type "C:\Program Files\app\log.txt"'` (outer quotes for your local
    /// shell). Nothing is quoted for you (programs using the library get that from
    /// `CommandBuilder::arg`).
    Run {
        /// Cancel after this many seconds (exit 124), counted from the start: the logon
        /// and the shell's creation are part of it. With --hosts, per host.
        #[arg(long, value_name = "SECS", value_parser = parse_secs, conflicts_with = "detach")]
        deadline: Option<Duration>,
        /// Start the command, disconnect from its shell (WinRS Disconnect) and print
        /// `SHELL_ID COMMAND_ID` on one line (with --json: `{"shell_id":..,"command_id":..}`);
        /// the command goes on running and `winrm
        /// attach SHELL_ID COMMAND_ID` streams the rest. Output that arrived before the
        /// disconnect is written to stderr (it is not sent again). Needs --endpoint (the
        /// built-in simulator ends with this process). Stdin is not passed.
        #[arg(long)]
        detach: bool,
        /// With --detach: how long the server keeps the disconnected shell (and its
        /// command) without a client before deleting it (`rsp:IdleTimeOut`). Default:
        /// the shell's idle timeout.
        #[arg(long, value_name = "SECS", value_parser = parse_secs, requires = "detach")]
        idle_timeout: Option<Duration>,
        /// Pass each word after the program as one argument of it, quoted under the
        /// Windows rules (cmd.exe's metacharacters made inert; `%` and `!` refused),
        /// instead of one command line.
        #[arg(long, conflicts_with = "detach")]
        argv: bool,
        /// Start the program directly instead of through `cmd.exe /c`
        /// (WINRS_SKIP_CMD_SHELL): cmd's syntax (`&`, `|`, `>`, `%NAME%`, `!NAME!`) is
        /// then plain text and its internal commands (`echo`, `dir`, `type`, `set`) do
        /// not exist; name the program by its path (`C:\Windows\System32\PING.EXE`).
        /// With --argv, words holding `%`, `!` or a line break pass through as they
        /// are.
        #[arg(long)]
        skip_cmd_shell: bool,
        /// Run the command on many hosts at once (fan-out) instead of --endpoint: a
        /// file with one host per line (`#` starts a comment), or a comma-separated
        /// list. A host is an endpoint URL (`https://h:5986/wsman`) or `host[:port]`:
        /// port 5986 means https://, any other (default 5985) http://, path /wsman. A
        /// URL's `#label` fragment only names the row. Output is not streamed: a
        /// per-host summary (host, exit code or error, duration, first line of stderr
        /// or the error) is printed at the end, JSON lines with --json. Exit status 0
        /// when every host exited 0, 1 when any failed, 130 after Ctrl-C (which cancels
        /// every remote command: Signal terminate, shells deleted; 5 s for all the
        /// cleanups). A row's JSON `status` is `exited`, `error`, `deadline`,
        /// `no_exit_code`, `cancelled` (by Ctrl-C), `not_started` (Ctrl-C came first) or
        /// `abandoned` (cancelled, but its cleanup had not finished when the 5 s ended or
        /// a second Ctrl-C stopped the wait: its error says which).
        #[arg(long, value_name = "FILE|H1,H2", conflicts_with = "detach")]
        hosts: Option<String>,
        /// With --hosts: how many hosts run at once.
        #[arg(long, value_name = "N", default_value_t = HOSTS_AT_ONCE, requires = "hosts",
              value_parser = clap::value_parser!(u32).range(1..=MAX_HOSTS_AT_ONCE))]
        concurrency: u32,
        /// The remote command line: its words, joined with spaces, are run by cmd.exe
        /// as typed (with --argv: the program and its arguments).
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "CMD"
        )]
        words: Vec<String>,
    },
    /// Connect to a shell left by `run --detach` (WinRS Connect, from any process) and
    /// stream the rest of its command's output; exits with the command's exit code and
    /// deletes the shell. Needs --endpoint. Ctrl-C (or SIGTERM) does not detach again:
    /// it terminates the command (Signal terminate), deletes the shell and exits 130
    /// (143 after SIGTERM).
    Attach {
        /// The ShellId `run --detach` printed.
        shell_id: String,
        /// The CommandId `run --detach` printed.
        command_id: String,
    },
    /// Run a PowerShell script as `powershell.exe -EncodedCommand` in a cmd shell: text
    /// out, error records decoded (see `pwsh` for objects over PowerShell Remoting).
    Ps {
        /// Cancel the script after this many seconds (exit 124), counted from the start:
        /// the logon and the shell's creation are part of it.
        #[arg(long, value_name = "SECS", value_parser = parse_secs)]
        deadline: Option<Duration>,
        /// The script text; `-` reads it from stdin (as `pwsh -` does).
        script: String,
    },
    /// Replace properties of an instance (WS-Transfer Put), e.g.
    /// `put wmicimv2/Win32_Service --selector Name=Spooler --param StartMode=Manual`;
    /// prints the instance the server sends back.
    Put {
        /// Resource URI or short form.
        resource: String,
        /// A selector (key), repeatable.
        #[arg(long = "selector", short = 's', value_name = "K=V", value_parser = parse_kv)]
        selectors: Vec<(String, String)>,
        /// A property to set, repeatable.
        #[arg(long = "param", short = 'p', value_name = "K=V", value_parser = parse_kv, required = true)]
        params: Vec<(String, String)>,
    },
    /// Create an instance (WS-Transfer Create) from properties; prints its endpoint
    /// reference.
    Create {
        /// Resource URI or short form.
        resource: String,
        /// A property of the new instance, repeatable.
        #[arg(long = "param", short = 'p', value_name = "K=V", value_parser = parse_kv)]
        params: Vec<(String, String)>,
    },
    /// Delete an instance (WS-Transfer Delete).
    Delete {
        /// Resource URI or short form.
        resource: String,
        /// A selector (key), repeatable.
        #[arg(long = "selector", short = 's', value_name = "K=V", value_parser = parse_kv)]
        selectors: Vec<(String, String)>,
    },
    /// List every instance of a resource (WS-Enumeration without a filter), e.g.
    /// `enumerate wmicimv2/Win32_Service --max 5`; rows are printed as they arrive.
    Enumerate {
        /// Resource URI or short form.
        resource: String,
        /// A selector, repeatable (narrows the enumeration where the resource allows).
        #[arg(long = "selector", short = 's', value_name = "K=V", value_parser = parse_kv)]
        selectors: Vec<(String, String)>,
        /// Stop after this many rows.
        #[arg(long, value_name = "N")]
        max: Option<u64>,
    },
    /// Show the host's WinRM configuration (a Get of
    /// http://schemas.microsoft.com/wbem/wsman/1/config, as `winrm get winrm/config`).
    Config,
    /// Serve the WS-Management simulator (a simulated Windows WinRM endpoint) for
    /// clients in other processes: prints its endpoint URL on stdout, accepts --user
    /// and --password (default vagrant/vagrant), runs until Ctrl-C, SIGTERM or end of
    /// stdin.
    Sim(sim::SimArgs),
    /// Print a completion script for a shell, e.g.
    /// `winrm completions bash > /etc/bash_completion.d/winrm`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Run a WQL query, printing rows as they arrive.
    Wql {
        /// The query, e.g. "SELECT Name, State FROM Win32_Service".
        #[arg(value_parser = clap::builder::NonEmptyStringValueParser::new())]
        query: String,
        /// The WMI namespace.
        #[arg(long, default_value = "root/cimv2")]
        namespace: String,
        /// Stop after this many rows.
        #[arg(long, value_name = "N")]
        max: Option<u64>,
    },
    /// Run a PowerShell script over PowerShell Remoting (a runspace pool and a
    /// pipeline; as Invoke-Command does, not PowerShell 7), e.g.
    /// `pwsh 'Get-Service | Select-Object -First 3'`: output objects as a table (JSON
    /// lines with --json), the error,
    /// warning, verbose, debug and information streams on stderr with their labels.
    /// Ctrl-C stops the pipeline on the server and exits 130 after printing what
    /// arrived; exit 1 when the script failed or wrote errors.
    Pwsh {
        /// Stop the pipeline after this many seconds (exit 124), counted from the start:
        /// the logon and the runspace pool's opening are part of it.
        #[arg(long, value_name = "SECS", value_parser = parse_secs)]
        deadline: Option<Duration>,
        /// The script text, e.g. 'Get-Service | Select-Object -First 3'; `-` reads it
        /// from stdin.
        script: String,
    },
    /// Copy a local file (or with -r a directory) to the host over PowerShell Remoting,
    /// e.g. `cp setup.msi '%TEMP%\setup.msi'`: streamed, SHA-256 checked on both sides,
    /// written under a temporary name and renamed (an overwritten file keeps its
    /// previous version until the new one is whole). A progress bar on stderr, then a
    /// line with size, time and rate (a JSON object on stdout with --json). Ctrl-C stops
    /// it, removes the partial file and exits 130. With --hosts, to every host.
    ///
    /// Without --endpoint the file goes to this command's own embedded simulator, which
    /// stops when the command ends: a later `winrm fetch` or `winrm run` starts another
    /// and does not see it. To try cp, then fetch, on one simulator, start `winrm sim`
    /// and give each command its URL with --endpoint.
    Cp {
        #[command(flatten)]
        transfer: cp::TransferArgs,
        /// Copy to every host of a list (as `run --hosts`): a file of endpoints or a
        /// comma-separated list.
        #[arg(long, value_name = "FILE|LIST")]
        hosts: Option<String>,
        /// With --hosts: how many hosts copy at once (as `run --hosts`).
        #[arg(long, value_name = "N", default_value_t = HOSTS_AT_ONCE, requires = "hosts",
              value_parser = clap::value_parser!(u32).range(1..=MAX_HOSTS_AT_ONCE))]
        concurrency: u32,
        /// The local file or directory.
        local: PathBuf,
        /// The destination on the host (an existing directory receives the file under
        /// its own name).
        #[arg(value_parser = clap::builder::NonEmptyStringValueParser::new())]
        remote: String,
    },
    /// Fetch a file (or with -r a directory) from the host over PowerShell Remoting,
    /// e.g. `fetch 'C:\Logs\app.log' .`: as cp, the other way; a cancelled or failed
    /// fetch leaves no partial local file. Without --endpoint it reads this command's
    /// own embedded simulator (its standard files only; see cp).
    Fetch {
        #[command(flatten)]
        transfer: cp::TransferArgs,
        /// The file or directory on the host.
        #[arg(value_parser = clap::builder::NonEmptyStringValueParser::new())]
        remote: String,
        /// The local destination (an existing directory receives the file under its
        /// remote name); `-` writes the file's bytes to stdout (not with -r or --json).
        local: PathBuf,
    },
}

/// Why the tool stops early.
pub enum Failure {
    /// An error of the library: printed with fault details, exit 1.
    Winrm(Error),
    /// A message and an exit code.
    Message(String, u8),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Winrm(e)
    }
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if v.is_nan() || v <= 0.0 {
        return Err("must be positive".into());
    }
    Duration::try_from_secs_f64(v).map_err(|e| e.to_string())
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// The options of [`Global`] that `winrm sim` uses: the account it accepts and its
/// tracing. The others configure a client; `sim --help` does not list them and `sim`
/// refuses them on its command line ([`sim_misplaced_option`]).
const SIM_OPTIONS: &[(&str, &str)] = &[
    (
        "user",
        "The user name the simulator accepts (default vagrant)",
    ),
    (
        "password",
        "The password the simulator accepts (default vagrant; it is never printed)",
    ),
    (
        "password_stdin",
        "Read the password the simulator accepts from the first line of stdin",
    ),
    (
        "verbose",
        "Tracing output on stderr: -v for info, -vv for debug (RUST_LOG, when set, wins)",
    ),
];

/// The tool's command line: [`Cli`], with the client options hidden from `winrm sim
/// --help`. They are global, so clap would copy them into every subcommand; sim gets its
/// own copies first (clap then copies nothing over them): hidden, except the few it
/// uses, which get sim's wording.
fn cli_command() -> clap::Command {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let globals: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .cloned()
        .collect();
    cmd.mut_subcommand("sim", |sim| {
        globals.into_iter().fold(sim, |sim, a| {
            let a = a.global(false);
            let a = match sim_option_help(a.get_id().as_str()) {
                Some(help) => a.help(help).help_heading("Account and tracing"),
                None => a.hide(true),
            };
            sim.arg(a)
        })
    })
}

fn sim_option_help(id: &str) -> Option<&'static str> {
    SIM_OPTIONS.iter().find(|(i, _)| *i == id).map(|(_, h)| *h)
}

/// `--http-timeout` no longer than the operation timeout: every Receive that waits its
/// whole OperationTimeout for output is cut by the HTTP timeout first and sent again.
fn http_timeout_warning(g: &Global) -> Option<String> {
    let http = g.http_timeout?;
    let operation = g
        .operation_timeout
        .unwrap_or(tokio_winrm::DEFAULT_OPERATION_TIMEOUT);
    (http <= operation).then(|| {
        format!(
            "warning: --http-timeout {} s is not longer than the operation timeout ({} s): a \
             Receive waiting that long for output is cut and sent again; give the HTTP timeout \
             a few seconds more than --operation-timeout",
            http.as_secs_f64(),
            operation.as_secs_f64()
        )
    })
}

/// `--endpoint` came from `WINRM_ENDPOINT` and was not typed (a global option: its
/// source is on the top level or on the subcommand).
fn endpoint_only_from_env(matches: &clap::ArgMatches) -> bool {
    use clap::parser::ValueSource;
    let all = [Some(matches), matches.subcommand().map(|(_, m)| m)];
    let sources = || {
        all.into_iter()
            .flatten()
            .map(|m| m.value_source("endpoint"))
    };
    sources().any(|s| s == Some(ValueSource::EnvVariable))
        && !sources().any(|s| s == Some(ValueSource::CommandLine))
}

/// A client option given on `winrm sim`'s command line (before or after `sim`): the
/// usage error to print. From the environment (`WINRM_ENDPOINT`, ...) they are ignored.
fn sim_misplaced_option(matches: &clap::ArgMatches) -> Option<String> {
    let (_, sim) = matches.subcommand().filter(|(name, _)| *name == "sim")?;
    let cmd = cli_command();
    cmd.get_arguments()
        .filter(|a| a.is_global_set() && sim_option_help(a.get_id().as_str()).is_none())
        .find(|a| {
            sim.value_source(a.get_id().as_str()) == Some(clap::parser::ValueSource::CommandLine)
        })
        .map(|a| {
            let name = a.get_long().unwrap_or(a.get_id().as_str());
            format!(
                "--{name} configures a client; `winrm sim` serves an endpoint and does not take \
                 it (its options: winrm sim --help)"
            )
        })
}

fn main() -> ExitCode {
    let matches = cli_command().get_matches();
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let Some(m) = sim_misplaced_option(&matches) {
        return report(Failure::Message(m, 2));
    }
    let mut cli = cli;
    if let Cmd::Run { words, .. } = &cli.command
        && words.first().is_some_and(|w| w.trim().is_empty())
    {
        // Caught here rather than sent: the server's answer would be a bare fault 87
        // ("The parameter is incorrect").
        return report(Failure::Message(
            "run: the command is empty (its first word is blank)".into(),
            2,
        ));
    }
    if matches!(
        cli.command,
        Cmd::Run { hosts: Some(_), .. } | Cmd::Cp { hosts: Some(_), .. }
    ) && endpoint_only_from_env(&matches)
    {
        // Each --hosts entry is an endpoint; one exported for single-host use is not a
        // conflict (one typed on the command line still is).
        eprintln!("note: WINRM_ENDPOINT is ignored with --hosts (each entry is an endpoint)");
        cli.global.endpoint = None;
    }
    if matches!(cli.command, Cmd::Run { hosts: Some(_), .. }) {
        // Before the runtime's threads exist (see `one_malloc_arena`).
        one_malloc_arena();
    }
    if matches!(cli.command, Cmd::Cp { .. } | Cmd::Fetch { .. }) {
        // Before the runtime's threads exist (see `cp::keep_transfer_buffers`).
        cp::keep_transfer_buffers();
    }
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(async_main(cli)),
        Err(e) => report(Failure::Message(
            format!("cannot start the async runtime: {e}"),
            1,
        )),
    }
}

/// A fan-out (`run --hosts`): glibc gives each thread that allocates its own malloc
/// arena and keeps freed memory per arena, so with hundreds of hosts' connections and
/// buffers spread over the runtime's threads the peak RSS per host in flight was
/// 46-62 kB against 30-41 kB with one arena (`bench/fanout_memory.sh`, and the same
/// with `MALLOC_ARENA_MAX=1`). The tool is IO-bound, so one arena's lock costs nothing
/// measurable. Elsewhere (other C libraries) nothing is changed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn one_malloc_arena() {
    // SAFETY: mallopt only sets an allocator parameter; it is called from `main` before
    // the runtime (or anything else) has started another thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn one_malloc_arena() {}

async fn async_main(cli: Cli) -> ExitCode {
    let global = &cli.global;
    if let Cmd::Completions { shell } = cli.command {
        use std::io::Write;
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut cli_command(), "winrm", &mut script);
        let mut out = std::io::stdout().lock();
        return match out.write_all(&script).and_then(|()| out.flush()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(141),
            Err(e) => report(Failure::Message(format!("cannot write the script: {e}"), 1)),
        };
    }
    init_tracing(global.verbose);
    if let Some(w) = http_timeout_warning(global) {
        eprintln!("{w}");
    }
    if let Cmd::Sim(args) = cli.command {
        if global.endpoint.is_some() {
            eprintln!(
                "note: winrm sim serves an endpoint of its own; WINRM_ENDPOINT is for the \
                 client subcommands and is ignored here"
            );
        }
        let user = global.user.clone().unwrap_or_else(|| "vagrant".into());
        let password = match global.password.clone() {
            Some(p) => p,
            None if global.password_stdin => match password_from_stdin() {
                Ok(p) => p,
                Err(f) => return report(f),
            },
            None => "vagrant".into(),
        };
        return sim::serve(args, user, password).await;
    }
    let detaching = matches!(
        cli.command,
        Cmd::Run { detach: true, .. } | Cmd::Attach { .. }
    );
    if detaching && global.endpoint.is_none() {
        return report(Failure::Message(
            "run --detach and attach need --endpoint: the built-in simulator ends with this process (start a standalone one with `winrm sim`)".into(),
            2,
        ));
    }
    let code = run_command(cli.command, global).await;
    if global.report_peak_rss {
        fanout::report_peak_rss();
    }
    code
}

async fn run_command(command: Cmd, global: &Global) -> ExitCode {
    if let Cmd::Run {
        hosts: Some(hosts),
        concurrency,
        deadline,
        argv,
        skip_cmd_shell,
        words,
        ..
    } = command
    {
        let opts = fanout::Options {
            concurrency: concurrency as usize,
            deadline,
            words: if argv {
                stream::Words::Arguments
            } else {
                stream::Words::CommandLine
            },
            skip_cmd_shell,
        };
        return match fanout::run(global, &hosts, &words, opts).await {
            Ok(code) => out::exit_code().unwrap_or(code),
            Err(f) => report_with_hint(
                f,
                global,
                Report {
                    shell: true,
                    ..Report::default()
                },
            ),
        };
    }
    if let Cmd::Cp {
        hosts: Some(hosts),
        concurrency,
        transfer,
        local,
        remote,
    } = command
    {
        return match cp::fan_out(
            global,
            &hosts,
            concurrency as usize,
            local,
            remote,
            &transfer,
        )
        .await
        {
            Ok(code) => out::exit_code().unwrap_or(code),
            Err(f) => report_with_hint(
                f,
                global,
                Report {
                    shell: true,
                    ..Report::default()
                },
            ),
        };
    }
    let cli_command = command;
    let how = Report {
        remote_code: passes_remote_code(&cli_command),
        ..Report::default()
    };
    match connect(global).await {
        Err(f) => report_with_hint(f, global, how),
        Ok((client, sim)) => {
            let kind = file_command(&cli_command);
            let shell = in_a_shell(&cli_command);
            let selectors_given = gives_selectors(&cli_command);
            let result = dispatch(&client, global, cli_command).await;
            if sim.is_some()
                && let Some(note) =
                    throwaway_note(kind, matches!(result, Ok(c) if c == ExitCode::SUCCESS))
            {
                eprintln!("{note}");
            }
            // Wait for background cleanups (shells deleted by Drop, the Signal of a
            // cancelled command) before exiting; briefly after a cancel, when the server
            // may be what stalled.
            let interrupted = matches!(&result, Ok(code) if *code == ExitCode::from(124) || *code == ExitCode::from(stream::interrupted_code()) || *code == ExitCode::from(141));
            let grace = if interrupted {
                // What is left of the grace the cancel's own cleanup began, if it did.
                stream::cleanup_left()
            } else {
                Duration::from_secs(10)
            };
            let _ = tokio::time::timeout(grace, client.shutdown()).await;
            drop(sim);
            out::flush();
            match result {
                // A result that could not be written (stdout closed by its reader).
                Ok(_) if out::closed() => out::exit_code().unwrap_or(ExitCode::from(1)),
                Ok(code) => code,
                Err(f) => report_with_hint(
                    f,
                    global,
                    Report {
                        shell,
                        selectors_given,
                        ..how
                    },
                ),
            }
        }
    }
}

/// A subcommand that reads or writes the host's files, for [`throwaway_note`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileCommand {
    Copy,
    Fetch,
}

fn file_command(cmd: &Cmd) -> Option<FileCommand> {
    match cmd {
        Cmd::Cp { .. } => Some(FileCommand::Copy),
        Cmd::Fetch { .. } => Some(FileCommand::Fetch),
        _ => None,
    }
}

/// What to tell a user whose file command ran against the embedded simulator (no
/// --endpoint), which lives only as long as the command: a copy that succeeded is gone
/// with it, and a fetch that failed may be looking for an earlier copy's file.
fn throwaway_note(kind: Option<FileCommand>, succeeded: bool) -> Option<&'static str> {
    match (kind?, succeeded) {
        (FileCommand::Copy, true) => Some(
            "note: the file went to this command's own embedded simulator, which stops with it; \
             to copy, then fetch or run, against one simulator: start `winrm sim` and pass its URL \
             with --endpoint",
        ),
        (FileCommand::Fetch, false) => Some(
            "note: without --endpoint each command starts its own embedded simulator, so a file \
             an earlier `winrm cp` copied is not there: start `winrm sim` and pass its URL with \
             --endpoint to both",
        ),
        _ => None,
    }
}

/// `-v`: info from the library, `-vv`: debug; `RUST_LOG` (when set) chooses instead.
/// Output goes to stderr so that stdout stays the result.
fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::new(v),
        _ => match verbose {
            0 => return,
            1 => EnvFilter::new("tokio_winrm=info"),
            _ => EnvFilter::new("tokio_winrm=debug"),
        },
    };
    use std::io::IsTerminal;
    // Colours only on a terminal (and never with NO_COLOR set): logs piped to a file
    // or a grep stay plain text.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .try_init();
}

/// Set once the password was read from stdin: `run` then passes no stdin.
pub static STDIN_CONSUMED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// The first line of stdin, without its line end (`--password-stdin`).
fn password_from_stdin() -> Result<String, Failure> {
    use std::io::BufRead;
    let mut line = String::new();
    let n = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::Message(format!("cannot read the password from stdin: {e}"), 2))?;
    STDIN_CONSUMED.store(true, std::sync::atomic::Ordering::SeqCst);
    if n == 0 {
        return Err(Failure::Message(
            "--password-stdin: stdin is empty (expected the password on its first line)".into(),
            2,
        ));
    }
    let end = line.trim_end_matches(['\r', '\n']).len();
    line.truncate(end);
    Ok(line)
}

/// The password for `user`: `--password-stdin`, else --password / WINRM_PASSWORD, else a
/// prompt without echo when stdin is a terminal.
fn password_for(g: &Global, user: &str) -> Result<Option<String>, Failure> {
    use std::io::IsTerminal;
    if g.password_stdin {
        return password_from_stdin().map(Some);
    }
    if let Some(p) = &g.password {
        return Ok(Some(p.clone()));
    }
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(format!("Password for {user}: "))
            .map(Some)
            .map_err(|e| Failure::Message(format!("cannot read the password: {e}"), 2));
    }
    Ok(None)
}

/// The library's credentials for the chosen scheme (and, for Kerberos, `--spn`).
fn credentials(g: &Global, user: String, password: String) -> Auth {
    match g.auth {
        AuthKind::Ntlm => Auth::ntlm(user, password),
        AuthKind::Negotiate => negotiate(g, user, password),
        AuthKind::Credssp => Auth::credssp(user, password),
        // The KDC is found for the user's realm in the krb5.conf that KRB5_CONFIG names.
        #[cfg(feature = "kerberos")]
        AuthKind::Kerberos => kerberos_options(g, Auth::kerberos(user, password)),
        #[cfg(not(feature = "kerberos"))]
        AuthKind::Kerberos => Auth::basic(user, password),
        // Refused before this is reached (certificate_auth); never a password logon.
        AuthKind::Basic | AuthKind::Certificate => Auth::basic(user, password),
    }
}

/// `--auth negotiate`: raw NTLM tokens, or SPNEGO with `--spnego` (Kerberos first with
/// `--spn` when the build has the kerberos feature).
fn negotiate(g: &Global, user: String, password: String) -> Auth {
    let auth = Auth::negotiate(user, password).spnego(g.spnego);
    #[cfg(feature = "kerberos")]
    if g.spnego && g.spn.is_some() {
        return auth.kerberos_options(tokio_winrm::KerberosOptions {
            spn: g.spn.clone(),
            ..Default::default()
        });
    }
    auth
}

/// `--spn` and `--canonicalize-host` on a Kerberos logon.
#[cfg(feature = "kerberos")]
fn kerberos_options(g: &Global, auth: Auth) -> Auth {
    if g.spn.is_none() && !g.canonicalize_host && !g.spnego {
        return auth;
    }
    auth.kerberos_options(tokio_winrm::KerberosOptions {
        spn: g.spn.clone(),
        canonicalize_host: g.canonicalize_host,
        spnego: g.spnego,
        ..Default::default()
    })
}

/// `--auth kerberos` without a password (feature `gssapi`): `--keytab` with `--user`,
/// else the ticket cache (`--user` picks the principal). `None`: a password logon.
#[cfg(feature = "gssapi")]
fn kerberos_without_password(g: &Global) -> Result<Option<Auth>, Failure> {
    if g.auth != AuthKind::Kerberos {
        return Ok(None);
    }
    if let Some(keytab) = &g.keytab {
        let Some(user) = &g.user else {
            return Err(Failure::Message(
                "--keytab needs --user: the principal whose key it holds (user@REALM)".into(),
                2,
            ));
        };
        if g.password.is_some() || g.password_stdin {
            return Err(Failure::Message(
                "--keytab and a password exclude each other".into(),
                2,
            ));
        }
        return Ok(Some(kerberos_options(
            g,
            Auth::kerberos_keytab(user.clone(), keytab.clone()),
        )));
    }
    if g.password.is_none() && !g.password_stdin {
        return Ok(Some(kerberos_options(
            g,
            Auth::kerberos_ticket_cache(g.user.as_deref()),
        )));
    }
    Ok(None)
}

/// Builds the client; without `--endpoint`, starts the simulator first.
async fn connect(g: &Global) -> Result<(Client, Option<Simulator>), Failure> {
    check_kerberos(g, g.endpoint.is_some())?;
    let (endpoint, auth, allow_http_basic, sim) = match &g.endpoint {
        Some(url) => {
            endpoint_url(url)?;
            let auth = endpoint_auth(g)?;
            refuse_clear_basic(g, url, &auth)?;
            (url.clone(), auth, g.allow_http_basic, None)
        }
        None => {
            certificate_auth_flags_alone(g)?;
            credentials_without_endpoint(g)?;
            if g.auth == AuthKind::Certificate {
                return Err(Failure::Message(
                    "--auth certificate needs --endpoint https://...: the embedded simulator \
                     speaks plain HTTP (for an HTTPS one with a certificate mapping, see \
                     `winrm sim --help`: --tls-cert, --tls-key, --map-cert)"
                        .into(),
                    2,
                ));
            }
            if g.auth == AuthKind::Credssp {
                return Err(Failure::Message(
                    "--auth credssp needs --endpoint https://...: CredSSP delegates the password, \
                     so only to a host whose certificate is verified; the embedded simulator \
                     speaks plain HTTP (for an HTTPS one with CredSSP, see `winrm sim --help`: \
                     --tls-cert, --tls-key, --credssp)"
                        .into(),
                    2,
                ));
            }
            let sim = Simulator::start().await.map_err(|e| {
                Failure::Message(format!("cannot start the embedded simulator: {e}"), 1)
            })?;
            eprintln!(
                "note: no --endpoint given: started the embedded simulator at {} and using its credentials (user {:?})",
                sim.endpoint(),
                sim.user()
            );
            let password = if g.password_stdin {
                password_from_stdin()?
            } else {
                sim.password().to_string()
            };
            let auth = credentials(g, sim.user().to_string(), password);
            (sim.endpoint(), auth, true, Some(sim))
        }
    };
    let ca = read_ca(g)?;
    Ok((
        build_client(g, endpoint, auth, allow_http_basic, ca.as_deref())?,
        sim,
    ))
}

/// Credentials (`--user`, `--password` or their environment variables) with no endpoint
/// are refused: without one the tool would run on its embedded simulator, with the
/// simulator's own account, and report success; a mistyped or unset `WINRM_ENDPOINT`
/// in a script must fail instead. `--password-stdin` alone stays the documented way to
/// try a password against the simulator.
fn credentials_without_endpoint(g: &Global) -> Result<(), Failure> {
    let given = match (&g.user, &g.password) {
        (Some(_), Some(_)) => "--user and --password (or WINRM_USER and WINRM_PASSWORD) were",
        (Some(_), None) => "--user (or WINRM_USER) was",
        (None, Some(_)) => "--password (or WINRM_PASSWORD) was",
        (None, None) => return Ok(()),
    };
    Err(Failure::Message(
        format!(
            "{given} given without an endpoint: name the host with --endpoint URL (or \
             WINRM_ENDPOINT); without one the tool runs on its embedded simulator with the \
             simulator's own account, and these credentials would be ignored"
        ),
        2,
    ))
}

/// Kerberos needs the feature and a real endpoint (the built-in simulator has no KDC).
fn check_kerberos(g: &Global, has_endpoint: bool) -> Result<(), Failure> {
    #[cfg(not(feature = "kerberos"))]
    if g.auth == AuthKind::Kerberos {
        return Err(Failure::Message(
            "--auth kerberos needs the tool built with the kerberos feature \
             (the default; it was built with --no-default-features); use basic, ntlm or negotiate"
                .into(),
            2,
        ));
    }
    let spnego_negotiate = g.spnego && g.auth == AuthKind::Negotiate;
    if g.spn.is_some() && g.auth != AuthKind::Kerberos && !spnego_negotiate {
        return Err(Failure::Message(
            "--spn names the service principal of a Kerberos logon: use it with --auth kerberos \
             (or --auth negotiate --spnego)"
                .into(),
            2,
        ));
    }
    if g.keytab.is_some() && g.auth != AuthKind::Kerberos {
        return Err(Failure::Message(
            "--keytab holds the key of a Kerberos logon: use it with --auth kerberos".into(),
            2,
        ));
    }
    #[cfg(not(feature = "gssapi"))]
    if g.keytab.is_some() {
        return Err(Failure::Message(
            "--keytab needs the tool built with the gssapi feature \
             (cargo install --path crates/winrm-cli --features gssapi)"
                .into(),
            2,
        ));
    }
    if g.spnego && !spnego_negotiate && (g.auth != AuthKind::Kerberos || !cfg!(feature = "gssapi"))
    {
        return Err(Failure::Message(
            "--spnego is for --auth negotiate (SPNEGO: Kerberos first, NTLM when not \
             possible) and for --auth kerberos from the ticket cache or --keytab, in a build \
             with the gssapi feature"
                .into(),
            2,
        ));
    }
    if g.canonicalize_host && g.auth != AuthKind::Kerberos {
        return Err(Failure::Message(
            "--canonicalize-host is for the service principal of --auth kerberos".into(),
            2,
        ));
    }
    if g.auth == AuthKind::Kerberos && !has_endpoint {
        return Err(Failure::Message(
            "--auth kerberos needs --endpoint: the built-in simulator has no KDC".into(),
            2,
        ));
    }
    Ok(())
}

/// The credentials for a real endpoint: `--user` with its password, or none.
fn endpoint_auth(g: &Global) -> Result<Auth, Failure> {
    if let Some(auth) = certificate_auth(g)? {
        return Ok(auth);
    }
    #[cfg(feature = "gssapi")]
    if let Some(auth) = kerberos_without_password(g)? {
        return Ok(auth);
    }
    match &g.user {
        Some(u) => match password_for(g, u)? {
            Some(p) => Ok(credentials(g, u.clone(), p)),
            None => Err(Failure::Message(
                format!(
                    "--user needs a password: --password-stdin, WINRM_PASSWORD, --password, or run it on a terminal to be asked{}",
                    if g.auth == AuthKind::Kerberos && !cfg!(feature = "gssapi") {
                        " (the ticket cache of kinit needs the tool built with the gssapi feature)"
                    } else {
                        ""
                    }
                ),
                2,
            )),
        },
        None if g.password_stdin => Err(Failure::Message(
            "--password-stdin needs --user (or WINRM_USER)".into(),
            2,
        )),
        None => Ok(Auth::None),
    }
}

/// `--auth certificate`: the identity from --cert and --key (both needed); those two
/// without it are a usage error.
fn certificate_auth(g: &Global) -> Result<Option<Auth>, Failure> {
    if g.auth != AuthKind::Certificate {
        if g.cert.is_some() || g.key.is_some() {
            return Err(Failure::Message(
                "--cert and --key are for --auth certificate".into(),
                2,
            ));
        }
        return Ok(None);
    }
    let (Some(cert), Some(key)) = (&g.cert, &g.key) else {
        return Err(Failure::Message(
            "--auth certificate needs --cert FILE and --key FILE (PEM)".into(),
            2,
        ));
    };
    Ok(Some(Auth::certificate_from_files(cert, key)?))
}

/// --cert and --key without --auth certificate are a usage error.
fn certificate_auth_flags_alone(g: &Global) -> Result<(), Failure> {
    if g.auth != AuthKind::Certificate {
        certificate_auth(g)?;
    }
    Ok(())
}

/// Basic over plain http:// only with --allow-http-basic.
/// `--endpoint` takes a URL; a bare `host:port/wsman` would fail later with only the
/// URL parser's "invalid format", so it is refused here with the forms that work.
fn endpoint_url(url: &str) -> Result<(), Failure> {
    let lower = url.trim().to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Ok(());
    }
    Err(Failure::Message(
        format!(
            "--endpoint {url:?} is not a URL: write http://HOST:5985/wsman or \
             https://HOST:5986/wsman (`run --hosts` and `cp --hosts` also take host[:port])"
        ),
        2,
    ))
}

fn refuse_clear_basic(g: &Global, url: &str, auth: &Auth) -> Result<(), Failure> {
    let plain_http = url.trim_start().to_ascii_lowercase().starts_with("http://");
    if plain_http && matches!(auth, Auth::Basic { .. }) && !g.allow_http_basic {
        return Err(Failure::Message(
            format!(
                "Basic authentication over {url} would send the password in clear text: use https://, --auth ntlm, or pass --allow-http-basic"
            ),
            1,
        ));
    }
    Ok(())
}

/// The `--ca` PEM file's contents, when given.
fn read_ca(g: &Global) -> Result<Option<Vec<u8>>, Failure> {
    g.ca.as_ref()
        .map(|path| {
            let pem = std::fs::read(path).map_err(|e| {
                Failure::Message(format!("cannot read --ca {}: {e}", path.display()), 1)
            })?;
            // Named here, with the file: the library's own error cannot say which file.
            if !pem
                .windows(b"-----BEGIN CERTIFICATE-----".len())
                .any(|w| w == b"-----BEGIN CERTIFICATE-----")
            {
                return Err(Failure::Message(
                    format!(
                        "--ca {}: no certificate in the file (a PEM file of \
                         -----BEGIN CERTIFICATE----- blocks is expected)",
                        path.display()
                    ),
                    2,
                ));
            }
            Ok(pem)
        })
        .transpose()
}

/// A client for `endpoint` with the global TLS and timeout options.
fn build_client(
    g: &Global,
    endpoint: String,
    auth: Auth,
    allow_http_basic: bool,
    ca: Option<&[u8]>,
) -> Result<Client, Failure> {
    let mut b = Client::builder(endpoint)
        .auth(auth)
        .allow_insecure_basic(allow_http_basic)
        .danger_accept_invalid_certs(g.insecure);
    if let Some(pem) = ca {
        b = b.add_root_certificate_pem(pem);
    }
    b = b.os_roots(g.os_roots);
    for pin in &g.pins {
        b = b.pin_sha256(pin);
    }
    if let Some(d) = g.operation_timeout {
        b = b.operation_timeout(d);
    }
    if let Some(d) = g.http_timeout {
        b = b.http_timeout(d);
    }
    if let Some(p) = &g.proxy {
        b = b.proxy(tokio_winrm::Proxy::parse(&p.0)?);
    }
    b = b.proxy_from_env(g.proxy_from_env);
    // What the builder refuses comes from the options (a malformed pin, proxy or CA
    // file): a usage error, as clap's own are.
    b.build().map_err(|e| match e {
        Error::Config(m) => Failure::Message(render::in_tool_terms(&m), 2),
        other => Failure::Winrm(other),
    })
}

fn resource(uri: &str, selectors: &[(String, String)]) -> Resource {
    selectors.iter().fold(Resource::new(uri), |r, (k, v)| {
        r.selector(k.clone(), v.clone())
    })
}

async fn dispatch(client: &Client, g: &Global, cmd: Cmd) -> Result<ExitCode, Failure> {
    match cmd {
        Cmd::Identify { unauthenticated } => {
            let id = if unauthenticated {
                client.identify_unauthenticated().await?
            } else {
                client.identify().await?
            };
            render::print_identify(&id, g.json);
        }
        Cmd::Get {
            resource: uri,
            selectors,
        } => {
            let inst = client.get(&resource(&uri, &selectors)).await?;
            render::print_instance(&inst, g.json);
        }
        Cmd::Invoke {
            resource: uri,
            method,
            selectors,
            params,
        } => {
            let input = params
                .into_iter()
                .fold(Instance::new(format!("{method}_INPUT")), |i, (k, v)| {
                    i.with(k, v)
                });
            let out = client
                .invoke(&resource(&uri, &selectors), &method, &input)
                .await?;
            render::print_instance(&out, g.json);
        }
        Cmd::Run {
            deadline,
            detach,
            idle_timeout,
            argv: as_arguments,
            skip_cmd_shell,
            words,
            ..
        } => {
            let (command, args) = words.split_first().expect("clap requires CMD");
            if detach {
                return detach::detach(client, command, args, idle_timeout, skip_cmd_shell, g.json)
                    .await;
            }
            let words = if as_arguments {
                stream::Words::Arguments
            } else {
                stream::Words::CommandLine
            };
            return stream::run(client, command, args, deadline, words, skip_cmd_shell).await;
        }
        Cmd::Attach {
            shell_id,
            command_id,
        } => {
            return detach::attach(client, &shell_id, &command_id).await;
        }
        Cmd::Ps { deadline, script } => {
            let script = if script == "-" {
                use std::io::Read as _;
                let mut text = String::new();
                std::io::stdin().read_to_string(&mut text).map_err(|e| {
                    Failure::Message(format!("reading the script from stdin: {e}"), 2)
                })?;
                text
            } else {
                script
            };
            let ps = tokio_winrm::shell::PowerShellCommand::for_script(&script)?;
            return stream::run(
                client,
                ps.program,
                &ps.args,
                deadline,
                stream::Words::CommandLine,
                ps.skip_cmd_shell,
            )
            .await;
        }
        Cmd::Put {
            resource: uri,
            selectors,
            params,
        } => {
            let inst = properties(params);
            let back = client.put(&resource(&uri, &selectors), &inst).await?;
            match back {
                Some(back) => render::print_instance(&back, g.json),
                None if g.json => crate::out::outln!("null"),
                None => crate::out::outln!("(the server sent no instance back)"),
            }
        }
        Cmd::Create {
            resource: uri,
            params,
        } => {
            let inst = properties(params);
            let epr = client.create(&resource(&uri, &[]), &inst).await?;
            render::print_reference(&epr, g.json);
        }
        Cmd::Delete {
            resource: uri,
            selectors,
        } => {
            let r = resource(&uri, &selectors);
            client.delete(&r).await?;
            if g.json {
                crate::out::outln!(
                    "{}",
                    serde_json::json!({ "deleted": true, "resource_uri": r.uri() })
                );
            } else {
                crate::out::outln!("deleted");
            }
        }
        Cmd::Enumerate {
            resource: uri,
            selectors,
            max,
        } => {
            let builder = client.enumerate(&resource(&uri, &selectors));
            return wql::stream_rows(builder, None, max, g.json).await;
        }
        Cmd::Config => {
            let inst = client
                .get(&Resource::new(
                    "http://schemas.microsoft.com/wbem/wsman/1/config",
                ))
                .await?;
            render::print_instance(&inst, g.json);
        }
        Cmd::Completions { .. } | Cmd::Sim(_) => unreachable!("handled before connecting"),
        Cmd::Wql {
            query,
            namespace,
            max,
        } => {
            return wql::run(client, &query, &namespace, max, g.json).await;
        }
        Cmd::Pwsh { deadline, script } => {
            return pwsh::run(client, &script, g.json, deadline).await;
        }
        Cmd::Cp {
            transfer,
            local,
            remote,
            ..
        } => {
            return cp::run(
                client,
                cp::Direction::Copy,
                local,
                remote,
                &transfer,
                g.json,
            )
            .await;
        }
        Cmd::Fetch {
            transfer,
            remote,
            local,
        } => {
            return cp::run(
                client,
                cp::Direction::Fetch,
                local,
                remote,
                &transfer,
                g.json,
            )
            .await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// An instance of the resource's class from `K=V` properties.
fn properties(params: Vec<(String, String)>) -> Instance {
    params
        .into_iter()
        .fold(Instance::new(""), |i, (k, v)| i.with(k, v))
}

/// Whether a subcommand works in a WinRS shell (cmd or PowerShell Remoting's), for
/// [`render::HintContext::shell`].
fn in_a_shell(cmd: &Cmd) -> bool {
    matches!(
        cmd,
        Cmd::Run { .. }
            | Cmd::Attach { .. }
            | Cmd::Ps { .. }
            | Cmd::Pwsh { .. }
            | Cmd::Cp { .. }
            | Cmd::Fetch { .. }
    )
}

/// Whether a subcommand was given `--selector`s, for
/// [`render::HintContext::selectors_given`].
fn gives_selectors(cmd: &Cmd) -> bool {
    match cmd {
        Cmd::Get { selectors, .. }
        | Cmd::Put { selectors, .. }
        | Cmd::Delete { selectors, .. }
        | Cmd::Invoke { selectors, .. } => !selectors.is_empty(),
        _ => false,
    }
}

/// How [`report_with_hint`] reports a failure.
#[derive(Debug, Clone, Copy, Default)]
struct Report {
    /// The subcommand worked in a WinRS shell (for the hints).
    shell: bool,
    /// The subcommand was given `--selector`s (for the hints).
    selectors_given: bool,
    /// The subcommand's exit status is the remote command's ([`passes_remote_code`]),
    /// so an error of its own exits [`EXIT_CLIENT_ERROR`].
    remote_code: bool,
}

/// The exit status of an error of the tool or the connection in `run`, `ps` and
/// `attach`, whose status is otherwise the remote command's: 255, as ssh's, so that a
/// caller can tell "the tool failed" from "the command exited 1".
pub(crate) const EXIT_CLIENT_ERROR: u8 = 255;

/// Whether a subcommand exits with the remote command's own exit code.
fn passes_remote_code(cmd: &Cmd) -> bool {
    matches!(
        cmd,
        Cmd::Run { hosts: None, .. } | Cmd::Ps { .. } | Cmd::Attach { .. }
    )
}

/// [`report`] (as JSON with `--json`), then a hint for the common causes of the error.
fn report_with_hint(f: Failure, g: &Global, how: Report) -> ExitCode {
    let hint = match &f {
        Failure::Winrm(e) => render::hint(
            e,
            &render::HintContext {
                endpoint: g.endpoint.as_deref(),
                auth: format!("{:?}", g.auth).to_ascii_lowercase(),
                user_given: g.user.is_some() || g.endpoint.is_none(),
                shell: how.shell,
                selectors_given: how.selectors_given,
            },
        ),
        Failure::Message(..) => None,
    };
    let code = match &f {
        Failure::Winrm(_) | Failure::Message(_, 1) if how.remote_code => EXIT_CLIENT_ERROR,
        Failure::Winrm(_) => 1,
        Failure::Message(_, code) => *code,
    };
    if g.json {
        eprintln!("{}", render::error_json(&f, hint.as_deref()));
    } else {
        print_failure(&f);
        if let Some(h) = hint {
            eprintln!("{h}");
        }
    }
    ExitCode::from(code)
}

/// Prints a failure on stderr and returns its exit code.
fn report(f: Failure) -> ExitCode {
    print_failure(&f);
    match f {
        Failure::Message(_, code) => ExitCode::from(code),
        Failure::Winrm(_) => ExitCode::from(1),
    }
}

/// A failure as the tool prints it: `error: ...`, with a fault's details.
fn print_failure(f: &Failure) {
    match f {
        Failure::Message(m, _) => eprintln!("error: {m}"),
        Failure::Winrm(e) => eprintln!("{}", render::describe_error(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(args: &[&str]) -> Global {
        let mut argv = vec!["winrm"];
        argv.extend_from_slice(args);
        argv.push("identify");
        Cli::try_parse_from(argv).expect("parses").global
    }

    #[test]
    #[cfg(feature = "kerberos")]
    fn spn_reaches_the_kerberos_options() {
        let g = global(&["--auth", "kerberos", "--spn", "HTTP/web01.corp.example"]);
        let auth = credentials(&g, "alice@CORP.EXAMPLE".into(), "pw".into());
        let d = format!("{auth:?}");
        assert!(d.contains("HTTP/web01.corp.example"), "{d}");
        assert!(!d.contains("\"pw\""), "{d}");
        let without = credentials(
            &global(&["--auth", "kerberos"]),
            "alice@CORP.EXAMPLE".into(),
            "pw".into(),
        );
        assert!(!format!("{without:?}").contains("web01"));
    }

    #[test]
    fn an_endpoint_without_a_scheme_is_a_usage_error_naming_the_forms() {
        let m = usage_error(endpoint_url("127.0.0.1:5985/wsman"));
        assert!(
            m.contains("is not a URL") && m.contains("http://HOST:5985/wsman"),
            "{m}"
        );
        assert!(endpoint_url("http://h:5985/wsman").is_ok());
        assert!(endpoint_url("HTTPS://h:5986/wsman").is_ok());
    }

    fn usage_error(r: Result<impl std::fmt::Debug, Failure>) -> String {
        match r {
            Err(Failure::Message(m, 2)) => m,
            Err(_) => panic!("expected a usage error (exit 2), got another failure"),
            Ok(x) => panic!("accepted: {x:?}"),
        }
    }

    #[test]
    #[cfg(feature = "gssapi")]
    fn kerberos_without_a_password_uses_the_ticket_cache_or_the_keytab() {
        let auth = endpoint_auth(&global(&["--auth", "kerberos"])).unwrap_or_else(|_| panic!());
        assert!(format!("{auth:?}").contains("TicketCache"), "{auth:?}");
        assert_eq!(auth.user(), None);
        let auth = endpoint_auth(&global(&[
            "--auth",
            "kerberos",
            "--user",
            "alice@CORP.EXAMPLE",
            "--spn",
            "HTTP/web01.corp.example",
        ]))
        .unwrap_or_else(|_| panic!());
        let d = format!("{auth:?}");
        assert!(
            d.contains("TicketCache") && d.contains("alice@CORP.EXAMPLE"),
            "{d}"
        );
        assert!(d.contains("HTTP/web01.corp.example"), "{d}");
        let auth = endpoint_auth(&global(&[
            "--auth",
            "kerberos",
            "--user",
            "svc@CORP.EXAMPLE",
            "--keytab",
            "/etc/svc.keytab",
            "--canonicalize-host",
        ]))
        .unwrap_or_else(|_| panic!());
        let d = format!("{auth:?}");
        assert!(d.contains("Keytab") && d.contains("/etc/svc.keytab"), "{d}");
        assert!(d.contains("canonicalize_host: true"), "{d}");
        let auth = endpoint_auth(&global(&["--auth", "kerberos", "--spnego"]))
            .unwrap_or_else(|_| panic!());
        assert!(format!("{auth:?}").contains("spnego: true"), "{auth:?}");
        // A password given: the password path, as before.
        let auth = endpoint_auth(&global(&[
            "--auth",
            "kerberos",
            "--user",
            "bob@R",
            "--password",
            "pw",
        ]))
        .unwrap_or_else(|_| panic!());
        assert!(!format!("{auth:?}").contains("TicketCache"), "{auth:?}");
        let m = usage_error(endpoint_auth(&global(&[
            "--auth", "kerberos", "--keytab", "k",
        ])));
        assert!(m.contains("--user"), "{m}");
    }

    #[test]
    fn keytab_and_canonicalize_host_need_auth_kerberos() {
        let m = usage_error(check_kerberos(
            &global(&["--auth", "ntlm", "--keytab", "k"]),
            true,
        ));
        assert!(m.contains("--auth kerberos"), "{m}");
        let m = usage_error(check_kerberos(
            &global(&["--auth", "ntlm", "--canonicalize-host"]),
            true,
        ));
        assert!(m.contains("--auth kerberos"), "{m}");
        let m = usage_error(check_kerberos(
            &global(&["--auth", "ntlm", "--spnego"]),
            true,
        ));
        assert!(m.contains("--auth negotiate"), "{m}");
        #[cfg(all(feature = "kerberos", not(feature = "gssapi")))]
        {
            let m = usage_error(check_kerberos(
                &global(&["--auth", "kerberos", "--keytab", "k"]),
                true,
            ));
            assert!(m.contains("gssapi"), "{m}");
        }
    }

    #[test]
    fn auth_negotiate_spnego_makes_a_spnego_logon() {
        let g = global(&["--auth", "negotiate", "--spnego"]);
        assert!(check_kerberos(&g, true).is_ok());
        let auth = credentials(&g, "vagrant".into(), "pw-secret".into());
        let d = format!("{auth:?}");
        assert!(
            d.contains("spnego: true") && !d.contains("pw-secret"),
            "{d}"
        );
        let plain = credentials(&global(&["--auth", "negotiate"]), "v".into(), "p".into());
        assert!(format!("{plain:?}").contains("spnego: false"));
        // --spn names the service of the Kerberos attempt.
        let g = global(&["--auth", "negotiate", "--spnego", "--spn", "HTTP/web01"]);
        assert!(check_kerberos(&g, true).is_ok());
        assert!(
            check_kerberos(&global(&["--auth", "negotiate", "--spn", "HTTP/x"]), true).is_err()
        );
    }

    #[test]
    fn auth_credssp_makes_a_credssp_logon() {
        let g = global(&["--auth", "credssp"]);
        let auth = credentials(&g, "SIM\\vagrant".into(), "pw-secret".into());
        assert_eq!(auth.scheme(), "CredSSP");
        assert!(!format!("{auth:?}").contains("pw-secret"));
    }

    #[test]
    fn an_http_timeout_within_the_operation_timeout_is_warned_about() {
        let w = http_timeout_warning(&global(&["--http-timeout", "1"])).expect("a warning");
        assert!(w.contains("1 s") && w.contains("20 s"), "{w}");
        assert!(
            http_timeout_warning(&global(&[
                "--http-timeout",
                "5",
                "--operation-timeout",
                "5"
            ]))
            .is_some()
        );
        assert!(http_timeout_warning(&global(&["--http-timeout", "30"])).is_none());
        assert!(
            http_timeout_warning(&global(&[
                "--http-timeout",
                "8",
                "--operation-timeout",
                "5"
            ]))
            .is_none()
        );
        assert!(http_timeout_warning(&global(&[])).is_none());
    }

    #[test]
    fn spn_without_kerberos_is_a_usage_error() {
        let g = global(&["--auth", "ntlm", "--spn", "HTTP/x"]);
        match check_kerberos(&g, true) {
            Err(Failure::Message(m, 2)) => assert!(m.contains("--auth kerberos"), "{m}"),
            Err(_) => panic!("expected a usage error (exit 2), got another failure"),
            Ok(()) => panic!("--spn with --auth ntlm was accepted"),
        }
        assert!(check_kerberos(&global(&["--auth", "ntlm"]), true).is_ok());
    }

    /// `run --hosts` and `cp --hosts` take the same `--concurrency`: one default, one
    /// range, and only with --hosts.
    #[test]
    fn run_and_cp_fan_out_the_same_number_of_hosts_at_once() {
        let at_once = |args: &[&str]| match Cli::try_parse_from(args).map(|c| c.command) {
            Ok(Cmd::Run { concurrency, .. } | Cmd::Cp { concurrency, .. }) => Ok(concurrency),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e.kind()),
        };
        let run = at_once(&["winrm", "run", "--hosts", "a,b", "--", "ver"]);
        let cp = at_once(&["winrm", "cp", "--hosts", "a,b", "f", "C:\\f"]);
        assert_eq!(run, Ok(32));
        assert_eq!(cp, run);
        for sub in [&["run", "--"][..], &["cp"][..]] {
            let mut args = vec!["winrm", sub[0], "--hosts", "a", "--concurrency", "4097"];
            args.extend_from_slice(&sub[1..]);
            args.extend_from_slice(&["x", "y"]);
            assert_eq!(
                at_once(&args),
                Err(clap::error::ErrorKind::ValueValidation),
                "{args:?}"
            );
        }
        assert_eq!(
            at_once(&["winrm", "cp", "--concurrency", "8", "f", "C:\\f"]),
            Err(clap::error::ErrorKind::MissingRequiredArgument)
        );
    }

    /// `--json`'s help names every subcommand that prints JSON lines (one value per
    /// line) rather than one document.
    #[test]
    fn json_help_names_every_json_lines_subcommand() {
        let cmd = cli_command();
        let help = cmd
            .get_arguments()
            .find(|a| a.get_id() == "json")
            .and_then(|a| a.get_help())
            .map(|h| h.to_string())
            .expect("--json has help");
        for lines in ["wql", "enumerate", "pwsh", "`run --hosts`", "`cp --hosts`"] {
            assert!(help.contains(lines), "{lines} missing: {help}");
        }
    }

    fn help_of(args: &[&str]) -> String {
        match cli_command().try_get_matches_from(args) {
            Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => e.render().to_string(),
            other => panic!("{args:?}: {other:?}"),
        }
    }

    /// `winrm sim --help` lists sim's own options and the account it accepts, not the
    /// client options (which every client subcommand still lists); a client option on
    /// sim's command line is a usage error, from the environment it is ignored.
    #[test]
    fn sim_help_shows_only_what_sim_takes() {
        let sim = help_of(&["winrm", "sim", "--help"]);
        for own in ["--addr", "--tls-cert", "--user", "--password", "--verbose"] {
            assert!(sim.contains(own), "{own} missing:\n{sim}");
        }
        for client in [
            "--endpoint",
            "--auth",
            "--insecure",
            "--proxy",
            "--json",
            "--spn",
        ] {
            assert!(!sim.contains(client), "{client} listed:\n{sim}");
        }
        let run = help_of(&["winrm", "run", "--help"]);
        for client in ["--endpoint", "--auth", "--insecure", "--user"] {
            assert!(run.contains(client), "{client} missing:\n{run}");
        }
        let misplaced = |args: &[&str]| {
            sim_misplaced_option(&cli_command().try_get_matches_from(args).expect("parses"))
        };
        let m = misplaced(&["winrm", "sim", "--auth", "ntlm"]).expect("refused");
        assert!(
            m.contains("--auth") && m.contains("winrm sim --help"),
            "{m}"
        );
        assert!(misplaced(&["winrm", "--insecure", "sim"]).is_some());
        assert_eq!(misplaced(&["winrm", "sim", "--user", "u", "-v"]), None);
        assert_eq!(misplaced(&["winrm", "run", "--auth", "ntlm", "ver"]), None);
        // What sim takes still reaches it, before or after `sim`.
        for args in [
            &["winrm", "sim", "--user", "u", "--password", "p"][..],
            &["winrm", "--user", "u", "--password", "p", "sim"][..],
        ] {
            let m = cli_command().try_get_matches_from(args).unwrap();
            let cli = <Cli as clap::FromArgMatches>::from_arg_matches(&m).unwrap();
            assert_eq!(cli.global.user.as_deref(), Some("u"), "{args:?}");
            assert_eq!(cli.global.password.as_deref(), Some("p"), "{args:?}");
            assert!(matches!(cli.command, Cmd::Sim(_)));
        }
    }
}
