//! A small `powershell.exe` (5.1) for the simulator: its switches (`-EncodedCommand`,
//! `-Command`, `-File`, `-`, the ones that take a value) and a script subset:
//! `Write-Output`, `Write-Host`, `Write-Error` and `Write-Warning` (on stderr as CLIXML,
//! as PowerShell writes them when stderr is redirected), `Start-Sleep`, `exit N`,
//! literals, `$env:NAME`, `$LASTEXITCODE`, `pwd`, `| Out-Null`, and the simulator's other programs.
//! Statements are separated by `;` or new lines. The exit code is `exit N`, else 1 when
//! the last statement failed, else 0.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::commands::{self, Sh, absolute};
use super::process::Target;

const CLIXML_NS: &str = "http://schemas.microsoft.com/powershell/2004/04";

/// Where the script comes from.
enum Source {
    Script(String),
    Stdin,
    File(String),
}

/// True when `tok` (without its dash, lowercase) abbreviates `full` to at least `min`.
fn abbreviates(tok: &str, full: &str, min: usize) -> bool {
    tok.len() >= min && full.starts_with(tok)
}

/// Tokens of a command line with the byte offsets where each starts and ends.
fn spans(text: &str) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut start = None;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() && !quoted {
            if let Some(s) = start.take() {
                out.push((std::mem::take(&mut cur), s, i));
            }
            continue;
        }
        start.get_or_insert(i);
        if c == '"' {
            quoted = !quoted;
        } else {
            cur.push(c);
        }
    }
    if let Some(s) = start {
        out.push((cur, s, text.len()));
    }
    out
}

fn parse_switches(text: &str) -> Result<Source, String> {
    let toks = spans(text);
    let mut i = 0;
    while let Some((tok, start, end)) = toks.get(i) {
        if tok == "-" {
            return Ok(Source::Stdin);
        }
        let Some(name) = tok.strip_prefix('-').or_else(|| tok.strip_prefix('/')) else {
            // The first non-switch starts the command (an implicit -Command).
            return Ok(Source::Script(unquote(&text[*start..])));
        };
        let name = name.to_ascii_lowercase();
        if abbreviates(&name, "command", 1) {
            let script = text[*end..].trim();
            return Ok(if script == "-" {
                Source::Stdin
            } else {
                Source::Script(unquote(script))
            });
        }
        if abbreviates(&name, "encodedcommand", 1) || name == "ec" {
            let value = toks.get(i + 1).map_or("", |t| t.0.as_str());
            return decode_encoded(value).map(Source::Script);
        }
        if abbreviates(&name, "file", 1) {
            return Ok(Source::File(
                toks.get(i + 1).map(|t| t.0.clone()).unwrap_or_default(),
            ));
        }
        let takes_value = abbreviates(&name, "executionpolicy", 2)
            || name == "ep"
            || abbreviates(&name, "inputformat", 1)
            || abbreviates(&name, "outputformat", 1)
            || abbreviates(&name, "windowstyle", 1)
            || abbreviates(&name, "version", 1)
            || abbreviates(&name, "psconsolefile", 2)
            || abbreviates(&name, "configurationname", 3);
        i += if takes_value { 2 } else { 1 };
    }
    Ok(Source::Stdin)
}

/// Strips one pair of quotes around the whole text.
fn unquote(text: &str) -> String {
    let t = text.trim();
    match t.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) if !inner.contains('"') => inner.to_string(),
        _ => t.to_string(),
    }
}

/// The script of `-EncodedCommand`: base64 of UTF-16LE.
fn decode_encoded(value: &str) -> Result<String, String> {
    let bad = || {
        "Cannot process the command because the value specified with -EncodedCommand is not properly encoded. The value must be Base64 encoded.\r\n".to_string()
    };
    let bytes = STANDARD.decode(value.trim()).map_err(|_| bad())?;
    if bytes.len() % 2 != 0 {
        return Err(bad());
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .collect();
    Ok(String::from_utf16_lossy(&units))
}

/// Runs `powershell.exe` with the argument text `rest`.
pub(crate) async fn run(sh: &mut Sh, rest: &str) -> i32 {
    let mut state = PsState::default();
    let exit = match parse_switches(rest) {
        Ok(Source::Script(script)) => script_block(sh, &script, &mut state).await,
        Ok(Source::File(path)) => match sh.registry.file(&absolute(&sh.cwd, &path)) {
            Some(bytes) => script_block(sh, &String::from_utf8_lossy(&bytes), &mut state).await,
            None => {
                let msg = format!(
                    "The argument '{path}' to the -File parameter does not exist. Provide the path to an existing '.ps1' file as an argument to the -File parameter.\r\n"
                );
                sh.io.print(true, &msg).await;
                return -196608;
            }
        },
        Ok(Source::Stdin) => loop {
            let line = sh.io.stdin.lock().await.line().await;
            let Some(line) = line else { break None };
            if let Some(code) = script_block(sh, &String::from_utf8_lossy(&line), &mut state).await
            {
                break Some(code);
            }
        },
        Err(msg) => {
            sh.io.print(true, &msg).await;
            return 1;
        }
    };
    exit.unwrap_or(i32::from(state.failed))
}

#[derive(Default)]
struct PsState {
    /// The last statement failed (`$?` is false).
    failed: bool,
    /// `$LASTEXITCODE`: the exit code of the last program run (`$null` before any).
    last_exit: Option<i32>,
}

/// Splits at unquoted `sep` characters.
fn split_unquoted(text: &str, seps: &[char]) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    for c in text.chars() {
        match (quote, c) {
            (None, '"' | '\'') => {
                quote = Some(c);
                cur.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (None, c) if seps.contains(&c) => out.push(std::mem::take(&mut cur)),
            (_, c) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// A PowerShell token: text after quote removal and expansion, and whether it was quoted.
struct Tok {
    text: String,
    quoted: bool,
}

fn tokenize(text: &str, sh: &Sh, last_exit: Option<i32>) -> Vec<Tok> {
    let mut toks = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut s = String::new();
        if c == '\'' || c == '"' {
            chars.next();
            while let Some(ch) = chars.next() {
                if ch == c {
                    if chars.peek() == Some(&c) {
                        chars.next();
                        s.push(c);
                        continue;
                    }
                    break;
                }
                if c == '"' && ch == '`' {
                    match chars.next() {
                        Some('n') => s.push('\n'),
                        Some('r') => s.push('\r'),
                        Some('t') => s.push('\t'),
                        Some(other) => s.push(other),
                        None => {}
                    }
                    continue;
                }
                s.push(ch);
            }
            let text = if c == '"' {
                expand(&s, sh, last_exit)
            } else {
                s
            };
            toks.push(Tok { text, quoted: true });
        } else {
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() {
                    break;
                }
                s.push(ch);
                chars.next();
            }
            toks.push(Tok {
                text: expand(&s, sh, last_exit),
                quoted: false,
            });
        }
    }
    toks
}

/// Expands `$env:NAME` references.
fn expand(text: &str, sh: &Sh, last_exit: Option<i32>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(after.len());
        let word = &after[..end];
        let lower = word.to_ascii_lowercase();
        if let Some(name) = lower.strip_prefix("env:") {
            let name = &word[4..4 + name.len()];
            if let Some((_, v)) = sh.env.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
                out.push_str(v);
            }
        } else if lower == "lastexitcode" {
            // `$null` (nothing) before any program ran.
            if let Some(code) = last_exit {
                out.push_str(&code.to_string());
            }
        } else {
            out.push('$');
            out.push_str(word);
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Escapes text for a CLIXML `<S>` element (XML, and `_xHHHH_` for control characters).
fn clixml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // As PowerShell's EncodeString: before `x` or `X` (.NET decodes both).
            '_' if matches!(chars.peek(), Some('x' | 'X')) => out.push_str("_x005F_"),
            c if (c as u32) < 0x20 => out.push_str(&format!("_x{:04X}_", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// One record on stderr as PowerShell writes it when stderr is redirected.
async fn clixml(sh: &Sh, stream: &str, message: &str) {
    let text = format!(
        "#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"{CLIXML_NS}\"><S S=\"{stream}\">{}</S></Objs>",
        clixml_escape(&format!("{message}\r\n"))
    );
    sh.io.print(true, &text).await;
}

/// Arguments that are not switches; `valued` switches skip their value too.
fn plain_args<'a>(toks: &'a [Tok], valued: &[&str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut i = 1;
    while let Some(t) = toks.get(i) {
        if !t.quoted
            && t.text.starts_with('-')
            && t.text.len() > 1
            && t.text.parse::<f64>().is_err()
        {
            let name = t.text[1..].to_ascii_lowercase();
            i += if valued.iter().any(|v| abbreviates(&name, v, 2)) {
                2
            } else {
                1
            };
            continue;
        }
        out.push(t.text.as_str());
        i += 1;
    }
    out
}

/// Runs statements; Some(code) when `exit` ran.
async fn script_block(sh: &mut Sh, script: &str, state: &mut PsState) -> Option<i32> {
    for stmt in split_unquoted(script, &[';', '\n']) {
        if let Some(code) = statement(sh, &stmt, state).await {
            return Some(code);
        }
    }
    None
}

async fn statement(sh: &mut Sh, stmt: &str, state: &mut PsState) -> Option<i32> {
    let stmt = stmt.trim();
    if stmt.is_empty() || stmt.starts_with('#') {
        return None;
    }
    let mut stages = split_unquoted(stmt, &['|']).into_iter();
    let first = stages.next().unwrap_or_default();
    let discard = stages.any(|s| s.trim().eq_ignore_ascii_case("out-null"));
    let saved = sh.io.out;
    if discard {
        sh.io.out = Target::Null;
    }
    let result = run_command(sh, first.trim(), state).await;
    sh.io.out = saved;
    result
}

async fn output_line(sh: &Sh, text: &str, newline: &str) {
    sh.io.print(false, text).await;
    sh.io.print(false, newline).await;
}

async fn run_command(sh: &mut Sh, stmt: &str, state: &mut PsState) -> Option<i32> {
    let toks = tokenize(stmt, sh, state.last_exit);
    let head = toks.first()?;
    let name = if head.quoted {
        String::new()
    } else {
        head.text.to_ascii_lowercase()
    };
    state.failed = false;
    match name.as_str() {
        "exit" => return Some(toks.get(1).and_then(|t| t.text.parse().ok()).unwrap_or(0)),
        "write-output" | "echo" | "write" => {
            for arg in plain_args(&toks, &[]) {
                output_line(sh, arg, "\r\n").await;
            }
        }
        "write-host" => {
            let no_newline = toks
                .iter()
                .any(|t| !t.quoted && t.text.eq_ignore_ascii_case("-nonewline"));
            let args = plain_args(&toks, &["foregroundcolor", "backgroundcolor", "separator"]);
            output_line(sh, &args.join(" "), if no_newline { "" } else { "\n" }).await;
        }
        "write-error" => {
            let args = plain_args(
                &toks,
                &["category", "errorid", "targetobject", "recommendedaction"],
            );
            clixml(sh, "Error", &args.join(" ")).await;
            state.failed = true;
        }
        "write-warning" => clixml(sh, "warning", &plain_args(&toks, &[]).join(" ")).await,
        "write-verbose" | "write-debug" | "write-information" | "out-null" => {}
        "start-sleep" | "sleep" => {
            let mut ms = None;
            for (i, t) in toks.iter().enumerate().skip(1) {
                let lower = t.text.to_ascii_lowercase();
                let value = || toks.get(i + 1).and_then(|v| v.text.parse::<f64>().ok());
                let switch = lower.strip_prefix('-');
                if switch.is_some_and(|s| s == "ms" || abbreviates(s, "milliseconds", 1)) {
                    ms = value();
                } else if switch.is_some_and(|s| abbreviates(s, "seconds", 1)) {
                    ms = value().map(|s| s * 1000.0);
                } else if ms.is_none() && i == 1 {
                    ms = t.text.parse::<f64>().ok().map(|s| s * 1000.0);
                }
            }
            let ms = ms.unwrap_or(0.0).clamp(0.0, 86_400_000.0 * 365.0);
            tokio::time::sleep(Duration::from_millis(ms as u64)).await;
        }
        "get-service" | "gsv" => {
            let names = plain_args(&toks, &["name", "displayname", "computername"]);
            let wanted: Vec<&(&str, &str, &str)> = SERVICES
                .iter()
                .filter(|(name, _, _)| {
                    names.is_empty() || names.iter().any(|n| n.eq_ignore_ascii_case(name))
                })
                .collect();
            for n in &names {
                if !SERVICES
                    .iter()
                    .any(|(name, _, _)| n.eq_ignore_ascii_case(name))
                {
                    let msg =
                        format!("Get-Service : Cannot find any service with service name '{n}'.");
                    clixml(sh, "Error", &msg).await;
                    state.failed = true;
                }
            }
            if !wanted.is_empty() {
                let mut table = String::from(
                    "\r\nStatus   Name               DisplayName\r\n------   ----               -----------\r\n",
                );
                for (name, status, display) in wanted {
                    table.push_str(&format!("{status:<8} {name:<18} {display}\r\n"));
                }
                table.push_str("\r\n\r\n");
                sh.io.print(false, &table).await;
            }
        }
        "pwd" | "get-location" | "gl" => {
            let table = format!("\r\nPath\r\n----\r\n{}\r\n\r\n\r\n", sh.cwd);
            sh.io.print(false, &table).await;
        }
        _ if head.quoted
            || head.text.parse::<f64>().is_ok()
            || (stmt.starts_with('$') && toks.len() == 1) =>
        {
            output_line(sh, &head.text, "\r\n").await;
        }
        _ if ["(pwd).path", "(get-location).path"]
            .contains(&stmt.to_ascii_lowercase().as_str()) =>
        {
            let cwd = sh.cwd.clone();
            output_line(sh, &cwd, "\r\n").await;
        }
        _ => match commands::run_external(sh, stmt).await {
            Some(code) => {
                state.failed = code != 0;
                state.last_exit = Some(code);
            }
            None => {
                let word = &head.text;
                let msg = format!(
                    "{word} : The term '{word}' is not recognized as the name of a cmdlet, function, script file, or operable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again."
                );
                clixml(sh, "Error", &msg).await;
                state.failed = true;
            }
        },
    }
    None
}

/// The services `Get-Service` knows: name, status, display name.
const SERVICES: &[(&str, &str, &str)] = &[
    ("Spooler", "Running", "Print Spooler"),
    ("W32Time", "Running", "Windows Time"),
    (
        "WinRM",
        "Running",
        "Windows Remote Management (WS-Management)",
    ),
    ("wuauserv", "Stopped", "Windows Update"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches() {
        let enc = STANDARD.encode(
            "Write-Output hi"
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<u8>>(),
        );
        match parse_switches(&format!("-NoProfile -NonInteractive -EncodedCommand {enc}")) {
            Ok(Source::Script(s)) => assert_eq!(s, "Write-Output hi"),
            _ => panic!("not decoded"),
        }
        match parse_switches("-ExecutionPolicy Bypass -Command \"Start-Sleep -s 10\"") {
            Ok(Source::Script(s)) => assert_eq!(s, "Start-Sleep -s 10"),
            _ => panic!("not a command"),
        }
        match parse_switches("Write-Host hi; Start-Sleep 30; Write-Host hi again") {
            Ok(Source::Script(s)) => {
                assert_eq!(s, "Write-Host hi; Start-Sleep 30; Write-Host hi again")
            }
            _ => panic!("not an implicit command"),
        }
        assert!(matches!(parse_switches("-"), Ok(Source::Stdin)));
        assert!(parse_switches("-enc !!!").is_err());
        assert_eq!(
            clixml_escape("a<b>\r\n_x"),
            "a&lt;b&gt;_x000D__x000A__x005F_x"
        );
        assert_eq!(clixml_escape("a_X0041_"), "a_x005F_X0041_");
        assert_eq!(split_unquoted("a; 'b;c'; \"d;e\"", &[';']).len(), 3);
    }
}
