//! How the simulated host reads a command line, in the order Windows does:
//!
//! 1. `cmd /c` quote rule ([`strip_c_quotes`]): a line that begins with `"` loses its
//!    first and its last `"` unless cmd's exception applies (exactly two quotes around
//!    the name of a program, whitespace and no special character between them, no `/s`).
//!    The line WinRS starts cmd.exe with is treated as if `/s` were given (no
//!    exception): hosts are reported to turn `"C:\Program Files\x\tool.exe" arg` into
//!    `'C:\Program' is not recognized`.
//! 2. cmd's first phase ([`expand_vars`]): `%NAME%` of a defined variable is replaced
//!    by its value, anywhere in the line, quotes or not; an undefined one stays as
//!    written (command-line mode, not a batch file). Delayed expansion (`!NAME!`) is not
//!    emulated: it is off unless the host's registry turns it on.
//! 3. cmd's second phase ([`classify`], [`split_ops`]): `"` opens and closes a quoted
//!    run in which everything is literal (a `^` included); outside one, `^` makes the
//!    next character literal and is removed, and `&`, `&&`, `||`, `|`, `<`, `>`, `(` and
//!    `)` are operators.
//! 4. The program splits what cmd hands it into `argv` ([`split_argv`]) by the rules of
//!    the Microsoft C runtime / `CommandLineToArgvW`.

/// Expands `%NAME%` from the environment (unknown names stay as written).
pub(crate) fn expand_vars(text: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('%') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('%') {
            Some(end) => match env
                .iter()
                .find(|(k, _)| !after[..end].is_empty() && k.eq_ignore_ascii_case(&after[..end]))
            {
                Some((_, v)) => {
                    out.push_str(v);
                    rest = &after[end + 1..];
                }
                None => {
                    out.push('%');
                    rest = after;
                }
            },
            None => {
                out.push('%');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The characters cmd's `/c` exception forbids between the two quotes.
fn is_c_special(c: char) -> bool {
    matches!(c, '&' | '<' | '>' | '(' | ')' | '@' | '^' | '|')
}

/// cmd's `/c` quote rule (see the module docs). `strip_always` is `/s`; `is_program`
/// tells whether a name is a program the host has (the exception's last condition).
pub(crate) fn strip_c_quotes(
    line: &str,
    strip_always: bool,
    is_program: impl Fn(&str) -> bool,
) -> String {
    let text = line.trim_start_matches([' ', '\t']);
    if !text.starts_with('"') {
        return line.to_string();
    }
    if !strip_always && text.matches('"').count() == 2 {
        let inner = &text[1..text[1..].find('"').map_or(text.len(), |i| i + 1)];
        if !inner.chars().any(is_c_special) && inner.contains([' ', '\t']) && is_program(inner) {
            return line.to_string();
        }
    }
    let mut out = text[1..].to_string();
    if let Some(last) = out.rfind('"') {
        out.remove(last);
    }
    out
}

/// One character of a line after cmd's second phase: its byte offset in the raw text,
/// the character, and whether cmd acts on it (outside quotes and not escaped). Escaping
/// carets are left out; a `^` at the very end is dropped.
pub(crate) fn classify(raw: &str) -> Vec<(usize, char, bool)> {
    let mut out = Vec::with_capacity(raw.len());
    let mut quoted = false;
    let mut chars = raw.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '^' if !quoted => {
                if let Some((j, n)) = chars.next() {
                    out.push((j, n, false));
                }
            }
            '"' => {
                quoted = !quoted;
                out.push((i, c, false));
            }
            c => out.push((i, c, !quoted)),
        }
    }
    out
}

/// How a part of a cmd line is joined to the part before it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Op {
    /// The first part, or after `&`.
    Always,
    /// After `&&`.
    And,
    /// After `||`.
    Or,
    /// After `|`.
    Pipe,
}

/// Splits a raw cmd line at its operators `&`, `&&`, `||`, `|` outside parenthesised
/// groups. The parts stay raw (carets and quotes kept) for [`classify`] to read again.
pub(crate) fn split_ops(raw: &str) -> Vec<(Op, String)> {
    let classified = classify(raw);
    let mut parts = Vec::new();
    let mut op = Op::Always;
    let mut start = 0;
    let mut depth = 0usize;
    // Whether only blanks (and `@`) came since the part began: `(` opens a group there.
    let mut at_start = true;
    let mut prev_redirect = false;
    let mut k = 0;
    while k < classified.len() {
        let (i, c, special) = classified[k];
        let next = classified.get(k + 1).filter(|n| n.2).map(|n| n.1);
        let mut split = None;
        if special {
            match c {
                '(' if at_start => depth += 1,
                ')' if depth > 0 => depth -= 1,
                // `>&2`, `2>&1`: a redirection, not an operator.
                '&' if prev_redirect => {}
                '&' if depth == 0 => {
                    split = Some(if next == Some('&') {
                        (Op::And, 2)
                    } else {
                        (Op::Always, 1)
                    })
                }
                '|' if depth == 0 => {
                    split = Some(if next == Some('|') {
                        (Op::Or, 2)
                    } else {
                        (Op::Pipe, 1)
                    })
                }
                _ => {}
            }
        }
        if let Some((next_op, len)) = split {
            parts.push((op, raw[start..i].to_string()));
            op = next_op;
            start = i + len;
            k += len;
            at_start = true;
            prev_redirect = false;
            continue;
        }
        prev_redirect = special && c == '>';
        at_start = at_start && (c == ' ' || c == '\t' || c == '@' || (special && c == '('));
        k += 1;
    }
    parts.push((op, raw[start..].to_string()));
    parts
}

/// Splits `prog rest`: the first token (quotes removed) and the text after it (one
/// separating blank removed). The first token follows `CommandLineToArgvW`'s rule for
/// the program name: quotes group, backslashes are literal.
pub(crate) fn split_program(text: &str) -> (String, &str) {
    let text = text.trim_start();
    let mut quoted = false;
    let mut end = text.len();
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    let program = text[..end].replace('"', "");
    let rest = &text[end..];
    let rest = rest.strip_prefix([' ', '\t']).unwrap_or(rest);
    (program, rest)
}

/// Splits arguments (what follows the program name) by the rules of the Microsoft C
/// runtime: space and tab separate outside quotes; `"` toggles a quoted run (`""`
/// inside one is a literal quote); `2n` backslashes before a `"` are `n` backslashes
/// and the quote acts, `2n + 1` are `n` backslashes and a literal `"`; other
/// backslashes are literal.
pub(crate) fn split_args(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < chars.len() && matches!(chars[i], ' ' | '\t') {
            i += 1;
        }
        if i >= chars.len() {
            return args;
        }
        let mut arg = String::new();
        let mut quoted = false;
        while i < chars.len() {
            match chars[i] {
                ' ' | '\t' if !quoted => break,
                '\\' => {
                    let n = chars[i..].iter().take_while(|c| **c == '\\').count();
                    i += n;
                    if chars.get(i) == Some(&'"') {
                        arg.extend(std::iter::repeat_n('\\', n / 2));
                        if n % 2 == 1 {
                            arg.push('"');
                            i += 1;
                        }
                    } else {
                        arg.extend(std::iter::repeat_n('\\', n));
                    }
                }
                '"' if quoted && chars.get(i + 1) == Some(&'"') => {
                    arg.push('"');
                    i += 2;
                }
                '"' => {
                    quoted = !quoted;
                    i += 1;
                }
                c => {
                    arg.push(c);
                    i += 1;
                }
            }
        }
        args.push(arg);
    }
}

/// The whole `argv` of a command line: the program name as [`split_program`] reads it,
/// then [`split_args`].
#[cfg(test)]
fn split_argv(text: &str) -> Vec<String> {
    let (program, rest) = split_program(text);
    let mut argv = vec![program];
    argv.extend(split_args(rest));
    argv
}

/// `argv` as a JSON array of strings, for `showargs`.
pub(crate) fn json_array(argv: &[String]) -> String {
    let mut out = String::from("[");
    for (i, a) in argv.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for c in a.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases() {
        assert_eq!(
            expand_vars("%OS% %nope% %%", &[("os".into(), "Windows_NT".into())]),
            "Windows_NT %nope% %%"
        );
        let ops: Vec<Op> = split_ops("a & b && c || d | e")
            .iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(ops, [Op::Always, Op::Always, Op::And, Op::Or, Op::Pipe]);
        assert_eq!(split_ops("echo a ^& b \"c & d\"").len(), 1);
        assert_eq!(split_ops("echo err>&2 & x").len(), 2);
        assert_eq!(split_ops("(echo a & echo b) & echo c").len(), 2);
        assert_eq!(split_ops("echo (a & echo b)").len(), 2);
        let text: String = classify("a^&b \"^&\" ^\"&").iter().map(|c| c.1).collect();
        assert_eq!(text, "a&b \"^&\" \"&");
        assert!(
            classify("^\"&").last().unwrap().2,
            "an escaped quote opens no run"
        );
        assert_eq!(strip_c_quotes("\"a b\" \"c\"", true, |_| true), "a b\" \"c");
        assert_eq!(strip_c_quotes("\"\"a b\" c\"", true, |_| true), "\"a b\" c");
        assert_eq!(strip_c_quotes("\"a b\"", false, |_| true), "\"a b\"");
        assert_eq!(strip_c_quotes("\"a b\"", false, |_| false), "a b");
        assert_eq!(strip_c_quotes("x \"a\"", true, |_| true), "x \"a\"");
        assert_eq!(
            split_args(r#"a "b c" d\"e "" x\\"y z" \\\\ "q""r""#),
            ["a", "b c", "d\"e", "", "x\\y z", "\\\\\\\\", "q\"r"]
        );
        assert_eq!(split_argv(r#""C:\x y\p.exe" -a"#), ["C:\\x y\\p.exe", "-a"]);
        assert_eq!(
            json_array(&["a\"\\\n".into(), "é".into()]),
            r#"["a\"\\\u000a","é"]"#
        );
    }
}
