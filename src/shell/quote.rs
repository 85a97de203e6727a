//! Windows command-line quoting for [`super::CommandBuilder::arg`].
//!
//! WinRS joins `rsp:Command` and each `rsp:Arguments` with one space into one command
//! line. A Windows program splits that line into `argv` itself, nearly always with the
//! rules of the Microsoft C runtime (the same as `CommandLineToArgvW` for every entry
//! after the program name):
//!
//! * space and tab separate arguments outside double quotes;
//! * `"` starts or ends a quoted run (its characters, spaces included, stay in the
//!   argument), and is removed;
//! * `2n` backslashes before a `"` give `n` backslashes and the quote keeps its meaning;
//!   `2n + 1` give `n` backslashes and a literal `"`; backslashes not before a `"` are
//!   literal.
//!
//! [`msvcrt`] writes an argument so these rules give it back exactly. When the line runs
//! through `cmd.exe /c` (WinRS' default), cmd reads it first: it expands `%NAME%`, and
//! outside a quoted run it treats `& | < > ( )` as operators and `^` as an escape that
//! it removes; inside a quoted run (which a `"` of any kind opens or closes, a `\"` as
//! well) everything is literal and a `^` stays. [`for_cmd`] therefore puts a `^` before
//! every `"`, `&`, `|`, `<`, `>`, `^`, `(` and `)` of the quoted argument: cmd never
//! enters a quoted run, removes each `^`, and hands the program the [`msvcrt`] form.
//! What cmd would expand or cut (`%`, `!`, line breaks) cannot be escaped on a `cmd /c`
//! line and is refused.

/// Why an argument cannot be written as one argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `%`: cmd.exe expands `%NAME%` on a `cmd /c` line and has no escape for it.
    Percent,
    /// `!`: expanded by cmd.exe when delayed expansion is on (a registry setting of the
    /// host, `DelayedExpansion`, that the client cannot see).
    Bang,
    /// CR or LF: a line break ends cmd.exe's command line.
    LineBreak,
    /// NUL or another control character that XML 1.0 cannot carry.
    Control,
}

impl Refusal {
    /// The reason, for [`crate::Error::InvalidArgument`].
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Refusal::Percent => {
                "`%` would be expanded by cmd.exe (%NAME%) and cannot be escaped on a `cmd /c` line; \
                 use skip_cmd_shell(true) to run the program without cmd.exe, or raw_arg"
            }
            Refusal::Bang => {
                "`!` would be expanded by cmd.exe when delayed expansion is enabled on the host; \
                 use skip_cmd_shell(true) to run the program without cmd.exe, or raw_arg"
            }
            Refusal::LineBreak => {
                "a line break (CR or LF) ends cmd.exe's command line; \
                 use skip_cmd_shell(true) to run the program without cmd.exe"
            }
            Refusal::Control => {
                "NUL, control characters other than tab, CR and LF, U+FFFE and U+FFFF cannot \
                 be sent in a WS-Management message"
            }
        }
    }
}

/// Characters XML 1.0 cannot carry (a command line cannot hold NUL either).
fn is_unsendable(c: char) -> bool {
    ((c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
}

/// Quotes `arg` for the C runtime's rules (see the module docs): unchanged when it has no
/// space, tab, line break or `"` and is not empty; else in double quotes
/// with backslashes doubled before a `"` (its own or the closing one) and each `"`
/// escaped.
pub(crate) fn msvcrt(arg: &str) -> Result<String, Refusal> {
    if arg.chars().any(is_unsendable) {
        return Err(Refusal::Control);
    }
    let plain = !arg.is_empty() && !arg.contains([' ', '\t', '\n', '\r', '"']);
    if plain {
        return Ok(arg.to_string());
    }
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('"');
    let mut backslashes = 0usize;
    for c in arg.chars() {
        match c {
            '\\' => backslashes += 1,
            '"' => {
                push_backslashes(&mut out, 2 * backslashes + 1);
                backslashes = 0;
                out.push('"');
            }
            c => {
                push_backslashes(&mut out, backslashes);
                backslashes = 0;
                out.push(c);
            }
        }
    }
    // Before the closing quote backslashes must be doubled, or the quote is escaped.
    push_backslashes(&mut out, 2 * backslashes);
    out.push('"');
    Ok(out)
}

fn push_backslashes(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n('\\', n));
}

/// The characters cmd.exe gives a meaning outside a quoted run, `"` included (it opens
/// one).
fn is_cmd_special(c: char) -> bool {
    matches!(c, '"' | '&' | '|' | '<' | '>' | '^' | '(' | ')')
}

/// Quotes `arg` for the C runtime and escapes the result for a `cmd /c` line.
pub(crate) fn for_cmd(arg: &str) -> Result<String, Refusal> {
    for c in arg.chars() {
        match c {
            '%' => return Err(Refusal::Percent),
            '!' => return Err(Refusal::Bang),
            '\r' | '\n' => return Err(Refusal::LineBreak),
            _ => {}
        }
    }
    let quoted = msvcrt(arg)?;
    let mut out = String::with_capacity(quoted.len() + 8);
    for c in quoted.chars() {
        if is_cmd_special(c) {
            out.push('^');
        }
        out.push(c);
    }
    Ok(out)
}

/// One argument as written into `rsp:Arguments`.
pub(crate) fn quote(arg: &str, through_cmd: bool) -> Result<String, Refusal> {
    if through_cmd {
        for_cmd(arg)
    } else {
        msvcrt(arg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The documented Microsoft rules ("Parsing C command-line arguments", the
    /// post-2008 C runtime, which `CommandLineToArgvW` follows for arguments after the
    /// program name), written independently of the quoting above.
    fn parse_argv(line: &str) -> Vec<String> {
        let chars: Vec<char> = line.chars().collect();
        let mut args = Vec::new();
        let mut i = 0;
        loop {
            while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
                i += 1;
            }
            if i >= chars.len() {
                return args;
            }
            let mut arg = String::new();
            let mut quoted = false;
            while i < chars.len() {
                let c = chars[i];
                if !quoted && (c == ' ' || c == '\t') {
                    break;
                }
                if c == '\\' {
                    let start = i;
                    while i < chars.len() && chars[i] == '\\' {
                        i += 1;
                    }
                    let n = i - start;
                    if i < chars.len() && chars[i] == '"' {
                        arg.extend(std::iter::repeat_n('\\', n / 2));
                        if n % 2 == 1 {
                            arg.push('"');
                            i += 1;
                        }
                    } else {
                        arg.extend(std::iter::repeat_n('\\', n));
                    }
                    continue;
                }
                if c == '"' {
                    if quoted && chars.get(i + 1) == Some(&'"') {
                        // `""` inside a quoted run: a literal quote, still quoted.
                        arg.push('"');
                        i += 2;
                        continue;
                    }
                    quoted = !quoted;
                    i += 1;
                    continue;
                }
                arg.push(c);
                i += 1;
            }
            args.push(arg);
        }
    }

    /// cmd.exe's second phase on text that has no operators: outside a quoted run `^`
    /// escapes the next character (and is removed), `"` toggles the run; panics on an
    /// operator cmd would act on.
    fn cmd_pass(line: &str) -> String {
        let mut out = String::new();
        let mut quoted = false;
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '^' if !quoted => out.push(chars.next().expect("caret at the end")),
                '"' => {
                    quoted = !quoted;
                    out.push(c);
                }
                '&' | '|' | '<' | '>' | '(' | ')' if !quoted => panic!("operator {c} in {line:?}"),
                c => out.push(c),
            }
        }
        out
    }

    fn round_trip(args: &[String], through_cmd: bool) -> Vec<String> {
        let mut line = String::from("prog");
        for a in args {
            line.push(' ');
            line.push_str(&quote(a, through_cmd).unwrap());
        }
        let line = if through_cmd { cmd_pass(&line) } else { line };
        let mut argv = parse_argv(&line);
        assert_eq!(argv.remove(0), "prog");
        argv
    }

    #[test]
    fn examples() {
        let cases: &[(&str, &str)] = &[
            ("plain", "plain"),
            ("", "\"\""),
            ("a b", "\"a b\""),
            ("tab\there", "\"tab\there\""),
            (r"C:\Program Files\app", r#""C:\Program Files\app""#),
            (r"C:\dir\", r"C:\dir\"),
            (r"C:\my dir\", r#""C:\my dir\\""#),
            (r#"say "hi""#, r#""say \"hi\"""#),
            (r#"a\"b"#, r#""a\\\"b""#),
            ("x & echo INJECTED", "\"x & echo INJECTED\""),
        ];
        for (arg, want) in cases {
            assert_eq!(msvcrt(arg).unwrap(), *want, "{arg:?}");
            assert_eq!(round_trip(&[arg.to_string()], false), [*arg]);
            assert_eq!(round_trip(&[arg.to_string()], true), [*arg]);
        }
        assert_eq!(
            for_cmd("x & echo INJECTED").unwrap(),
            "^\"x ^& echo INJECTED^\""
        );
        assert_eq!(for_cmd("a^b(c)").unwrap(), "a^^b^(c^)");
        assert_eq!(for_cmd("<in>|out").unwrap(), "^<in^>^|out");
    }

    #[test]
    fn refusals() {
        assert_eq!(for_cmd("%PATH%"), Err(Refusal::Percent));
        assert_eq!(for_cmd("100%"), Err(Refusal::Percent));
        assert_eq!(for_cmd("!x!"), Err(Refusal::Bang));
        assert_eq!(for_cmd("a\nb"), Err(Refusal::LineBreak));
        assert_eq!(for_cmd("a\rb"), Err(Refusal::LineBreak));
        assert_eq!(for_cmd("a\0b"), Err(Refusal::Control));
        assert_eq!(msvcrt("a\u{1}b"), Err(Refusal::Control));
        // Without cmd.exe they are ordinary characters.
        assert_eq!(msvcrt("%PATH%").unwrap(), "%PATH%");
        assert_eq!(msvcrt("!x!").unwrap(), "!x!");
        assert_eq!(msvcrt("a\nb").unwrap(), "\"a\nb\"");
        for r in [
            Refusal::Percent,
            Refusal::Bang,
            Refusal::LineBreak,
            Refusal::Control,
        ] {
            assert!(!r.reason().is_empty());
        }
    }

    /// Characters that matter to either parser, plus some that do not.
    fn arg_strategy() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just(" ".to_string()),
            Just("\t".to_string()),
            Just("\"".to_string()),
            Just("\\".to_string()),
            Just("\\\\".to_string()),
            Just("&".to_string()),
            Just("|".to_string()),
            Just("<".to_string()),
            Just(">".to_string()),
            Just("^".to_string()),
            Just("(".to_string()),
            Just(")".to_string()),
            Just("é".to_string()),
            Just("こんにちは".to_string()),
            "[a-z0-9=,;:./-]{1,3}",
        ];
        prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn quote_then_parse_round_trips(args in prop::collection::vec(arg_strategy(), 0..5)) {
            prop_assert_eq!(round_trip(&args, false), args.clone());
            prop_assert_eq!(round_trip(&args, true), args);
        }

        #[test]
        fn any_text_round_trips_without_cmd(arg in "\\PC*") {
            prop_assume!(!arg.chars().any(is_unsendable));
            prop_assert_eq!(round_trip(std::slice::from_ref(&arg), false), vec![arg]);
        }
    }
}
