//! A small reader of PowerShell script text: statements (`;`, new lines) of pipelines
//! (`|`) of commands with literal arguments: `-Name value`, `-Name:value`, switches,
//! quoted strings, numbers, `$true`/`$false`/`$null`, comma lists and bare words, and
//! the `throw` statement (bare, or with one string or number).
//!
//! Real syntax errors (an unterminated string, unbalanced brackets) are refused with
//! PowerShell's ParseException messages. Valid PowerShell the simulator does not
//! implement (variables, assignments, script blocks, sub-expressions, ranges, ...) is
//! refused too, with a message that names the construct and says "not supported by
//! the simulator", so a user does not think their script is wrong.

use crate::soap::psrp::messages::Argument;
use crate::soap::psrp::{PsObject, PsValue};

/// One command of a script: its name and arguments.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScriptCommand {
    pub name: String,
    pub args: Vec<Argument>,
}

/// One statement of a script.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Statement {
    /// A pipeline of one or more commands.
    Pipeline(Vec<ScriptCommand>),
    /// `throw` with the value thrown (`None` for a bare `throw` or `throw $null`): a
    /// terminating error that ends the whole pipeline.
    Throw(Option<PsValue>),
}

/// Parameters the built-in cmdlets take as switches (a switch never takes the next
/// token as its value).
const SWITCHES: &[&str] = &[
    "verbose",
    "debug",
    "compress",
    "force",
    "recurse",
    "nonewline",
    "asstring",
    "ashashtable",
    "enumeratecollection",
    "noenumerate",
    "completed",
    "unique",
    "aslist",
];

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Param(String, Option<String>),
    Pipe,
    Comma,
    End,
}

/// The index just after the string literal opening at `chars[i]` (a `'` or `"`).
///
/// # Errors
/// PowerShell's message for a string without its terminator.
fn string_end(chars: &[char], i: usize) -> Result<usize, String> {
    let quote = chars[i];
    let mut j = i + 1;
    loop {
        match chars.get(j) {
            None => return Err(format!("The string is missing the terminator: {quote}.")),
            Some(&q) if q == quote => {
                if chars.get(j + 1) == Some(&quote) {
                    j += 2;
                } else {
                    return Ok(j + 1);
                }
            }
            Some('`') if quote == '"' => j += 2,
            Some(_) => j += 1,
        }
    }
}

/// Checks the script's syntax the simulator can judge without implementing the
/// language: strings are terminated and `()`, `{}`, `[]` balanced. Returns, for each
/// opening bracket's index, the index of its closing one.
///
/// # Errors
/// PowerShell's ParseException message for the first problem.
fn check_balance(chars: &[char]) -> Result<std::collections::HashMap<usize, usize>, String> {
    let mut pairs = std::collections::HashMap::new();
    let mut open: Vec<(char, usize)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '`' => i += 2,
            '\'' | '"' => i = string_end(chars, i)?,
            c @ ('(' | '{' | '[') => {
                open.push((c, i));
                i += 1;
            }
            c @ (')' | '}' | ']') => {
                let expected = match c {
                    ')' => '(',
                    '}' => '{',
                    _ => '[',
                };
                match open.pop() {
                    Some((o, at)) if o == expected => {
                        pairs.insert(at, i);
                    }
                    _ => {
                        return Err(format!(
                            "Unexpected token '{c}' in expression or statement."
                        ));
                    }
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    match open.pop() {
        None => Ok(pairs),
        Some(('{', _)) => Err("Missing closing '}' in statement block or type definition.".into()),
        Some(('(', _)) => Err("Missing closing ')' in expression.".into()),
        Some(_) => Err("Missing ']' at end of attribute or type literal.".into()),
    }
}

/// At most 40 characters of `chars[from..to]`, for naming a construct in a message.
fn snippet(chars: &[char], from: usize, to: usize) -> String {
    let to = to.min(chars.len());
    if to - from <= 40 {
        chars[from..to].iter().collect()
    } else {
        chars[from..from + 37].iter().collect::<String>() + "..."
    }
}

/// The message for valid PowerShell at `chars[i]` that the simulator does not
/// implement (`pairs`: the closing bracket of each opening one).
fn unsupported(
    chars: &[char],
    i: usize,
    pairs: &std::collections::HashMap<usize, usize>,
) -> String {
    let c = chars[i];
    let end = pairs.get(&i).map_or(i + 1, |e| e + 1);
    let what = snippet(chars, i, end);
    match c {
        '{' => format!("Script blocks are not supported by the simulator: {what}"),
        '(' => format!(
            "Parenthesised expressions and sub-expressions are not supported by the simulator: {what}"
        ),
        '[' => format!("Type literals and indexing are not supported by the simulator: {what}"),
        '@' => format!(
            "Array, hash table and splatting expressions (@) are not supported by the simulator: {}",
            snippet(chars, i, pairs.get(&(i + 1)).map_or(i + 2, |e| e + 1))
        ),
        '=' => "Assignments (=) are not supported by the simulator.".into(),
        '>' => "Redirection (>) is not supported by the simulator.".into(),
        _ => "The call operator (&) is not supported by the simulator.".into(),
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let pairs = check_balance(&chars)?;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\r' => i += 1,
            '\n' | ';' => {
                out.push(Token::End);
                i += 1;
            }
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '|' => {
                out.push(Token::Pipe);
                i += 1;
            }
            ',' => {
                out.push(Token::Comma);
                i += 1;
            }
            '\'' | '"' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err("The string is missing the terminator: ".to_string()
                                + &quote.to_string()
                                + ".");
                        }
                        Some(&q) if q == quote => {
                            if chars.get(i + 1) == Some(&quote) {
                                s.push(quote);
                                i += 2;
                            } else {
                                i += 1;
                                break;
                            }
                        }
                        Some('`') if quote == '"' => {
                            let e = chars.get(i + 1).copied().unwrap_or('`');
                            s.push(match e {
                                'n' => '\n',
                                'r' => '\r',
                                't' => '\t',
                                '0' => '\0',
                                other => other,
                            });
                            i += 2;
                        }
                        Some('$') if quote == '"' => {
                            return Err("Variables in expandable strings are not supported by the simulator.".into());
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push(Token::Str(s));
            }
            '<' => return Err("The '<' operator is reserved for future use.".into()),
            '&' if chars.get(i + 1) == Some(&'&') => {
                return Err(
                    "The token '&&' is not a valid statement separator in this version.".into(),
                );
            }
            ')' | '}' | ']' => {
                // Unreachable after `check_balance`; refused as PowerShell would.
                return Err(format!(
                    "Unexpected token '{c}' in expression or statement."
                ));
            }
            '(' | '{' | '@' | '[' | '=' | '>' | '&' => return Err(unsupported(&chars, i, &pairs)),
            _ => {
                let start = i;
                while i < chars.len() && !" \t\r\n;|,'\"(){}".contains(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                if let Some(name) = word
                    .strip_prefix('-')
                    .filter(|n| n.chars().next().is_some_and(|c| c.is_ascii_alphabetic()))
                {
                    match name.split_once(':') {
                        Some((n, v)) => out.push(Token::Param(n.to_string(), Some(v.to_string()))),
                        None => out.push(Token::Param(name.to_string(), None)),
                    }
                } else {
                    out.push(Token::Word(word));
                }
            }
        }
    }
    out.push(Token::End);
    Ok(out)
}

/// The value of a bare word or quoted string.
fn literal(token: &Token) -> Result<PsValue, String> {
    match token {
        Token::Str(s) => Ok(PsValue::String(s.clone())),
        Token::Word(w) => word_value(w),
        _ => Err("Missing expression.".into()),
    }
}

pub(crate) fn word_value(w: &str) -> Result<PsValue, String> {
    if let Some(var) = w.strip_prefix('$') {
        return match var.to_ascii_lowercase().as_str() {
            "true" => Ok(PsValue::Bool(true)),
            "false" => Ok(PsValue::Bool(false)),
            "null" => Ok(PsValue::Null),
            _ => Err(format!(
                "Variables are not supported by the simulator: ${var}"
            )),
        };
    }
    if let Ok(n) = w.parse::<i32>() {
        return Ok(PsValue::I32(n));
    }
    if let Ok(n) = w.parse::<i64>() {
        return Ok(PsValue::I64(n));
    }
    if w.chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || c == '.')
        && let Ok(f) = w.parse::<f64>()
    {
        return Ok(PsValue::F64(f));
    }
    Ok(PsValue::String(w.to_string()))
}

fn array(items: Vec<PsValue>) -> PsValue {
    PsObject::list(["System.Object[]", "System.Array", "System.Object"], items).into()
}

/// Parses a script into statements of pipelines.
///
/// # Errors
/// The parser's message, as PowerShell's ParseException would say it (roughly).
pub(crate) fn parse(text: &str) -> Result<Vec<Statement>, String> {
    let tokens = tokenize(text)?;
    let mut statements = Vec::new();
    let mut pipeline: Vec<ScriptCommand> = Vec::new();
    let mut current: Option<ScriptCommand> = None;
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::End => {
                if let Some(c) = current.take() {
                    pipeline.push(c);
                } else if !pipeline.is_empty() {
                    return Err("An empty pipe element is not allowed.".into());
                }
                if !pipeline.is_empty() {
                    statements.push(Statement::Pipeline(std::mem::take(&mut pipeline)));
                }
                i += 1;
            }
            Token::Pipe => {
                let c = current
                    .take()
                    .ok_or("An empty pipe element is not allowed.")?;
                pipeline.push(c);
                i += 1;
            }
            Token::Comma => return Err("Missing argument in parameter list.".into()),
            Token::Param(name, inline) => {
                let Some(cmd) = current.as_mut() else {
                    return Err(format!(
                        "Unexpected token '-{name}' in expression or statement."
                    ));
                };
                i += 1;
                if let Some(v) = inline {
                    let (value, next) = value_list(word_value(v)?, &tokens, i)?;
                    cmd.args.push(Argument::named(name.clone(), value));
                    i = next;
                } else if SWITCHES.contains(&name.to_ascii_lowercase().as_str())
                    || !matches!(tokens.get(i), Some(Token::Word(_) | Token::Str(_)))
                {
                    cmd.args.push(Argument::switch(name.clone()));
                } else {
                    let first = literal(&tokens[i])?;
                    let (value, next) = value_list(first, &tokens, i + 1)?;
                    cmd.args.push(Argument::named(name.clone(), value));
                    i = next;
                }
            }
            Token::Word(w)
                if current.is_none() && pipeline.is_empty() && w.eq_ignore_ascii_case("throw") =>
            {
                let (thrown, next) = throw_value(&tokens, i + 1)?;
                statements.push(Statement::Throw(thrown));
                i = next;
            }
            t @ (Token::Word(_) | Token::Str(_)) => match current.as_mut() {
                None => {
                    let name = match t {
                        Token::Word(w) if is_range(w) => {
                            return Err(format!(
                                "Range expressions (..) are not supported by the simulator: {w}"
                            ));
                        }
                        Token::Word(w) if !w.starts_with('$') && w.parse::<f64>().is_err() => {
                            w.clone()
                        }
                        Token::Word(w) => {
                            return Err(format!(
                                "Expressions are not supported by the simulator: {w}"
                            ));
                        }
                        _ => return Err("Expressions are not supported by the simulator.".into()),
                    };
                    current = Some(ScriptCommand {
                        name,
                        args: Vec::new(),
                    });
                    i += 1;
                }
                Some(cmd) => {
                    let first = literal(t)?;
                    let (value, next) = value_list(first, &tokens, i + 1)?;
                    cmd.args.push(Argument::positional(value));
                    i = next;
                }
            },
        }
    }
    Ok(statements)
}

/// `a..b` with integer (or variable) ends: PowerShell's range operator.
fn is_range(w: &str) -> bool {
    w.split_once("..").is_some_and(|(a, b)| {
        let end = |e: &str| e.parse::<i64>().is_ok() || (e.starts_with('$') && e.len() > 1);
        end(a) && end(b)
    })
}

/// What follows `throw` (from `tokens[i]`) up to the statement's end: nothing, or one
/// string or number. Returns the value thrown (`None`: `ScriptHalted`) and the index
/// of the statement's end.
fn throw_value(tokens: &[Token], i: usize) -> Result<(Option<PsValue>, usize), String> {
    let rest = tokens[i..]
        .iter()
        .position(|t| *t == Token::End)
        .map_or(tokens.len(), |n| i + n);
    let value = match &tokens[i..rest] {
        [] => None,
        [Token::Str(s)] => Some(PsValue::String(s.clone())),
        [Token::Word(w)] => match word_value(w)? {
            PsValue::Null => None,
            PsValue::String(_) => {
                return Err(format!(
                    "Commands after 'throw' are not supported by the simulator: throw {w}"
                ));
            }
            v => Some(v),
        },
        [_, Token::Str(s), ..] => {
            return Err(format!(
                "Unexpected token ''{}'' in expression or statement.",
                s.replace('\'', "''")
            ));
        }
        _ => {
            return Err(
                "Expressions after 'throw' other than one string or number are not supported by the simulator."
                    .into(),
            );
        }
    };
    Ok((value, rest))
}

/// `first` and any `, item` after it: one value, or an array of several.
fn value_list(first: PsValue, tokens: &[Token], mut i: usize) -> Result<(PsValue, usize), String> {
    if tokens.get(i) != Some(&Token::Comma) {
        return Ok((first, i));
    }
    let mut items = vec![first];
    while tokens.get(i) == Some(&Token::Comma) {
        let t = tokens.get(i + 1).ok_or("Missing expression after ','.")?;
        items.push(literal(t).map_err(|_| "Missing expression after ','.".to_string())?);
        i += 2;
    }
    Ok((array(items), i))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statements of `text`, which are all pipelines.
    fn pipelines(text: &str) -> Vec<Vec<ScriptCommand>> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|s| match s {
                Statement::Pipeline(p) => p,
                Statement::Throw(v) => panic!("throw {v:?} in {text}"),
            })
            .collect()
    }

    #[test]
    fn pipelines_arguments_and_statements() {
        let s = pipelines(
            "Get-Service -Name win* | Select-Object -First 3; Write-Output 1,'two',3.5 -NoEnumerate\nStart-Sleep -Seconds:1",
        );
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].len(), 2);
        assert_eq!(s[0][0].name, "Get-Service");
        assert_eq!(s[0][0].args[0].name.as_deref(), Some("Name"));
        assert_eq!(s[0][0].args[0].value, PsValue::String("win*".into()));
        assert_eq!(s[0][1].args[0].value, PsValue::I32(3));
        let list = s[1][0].args[0].value.as_list().unwrap();
        assert_eq!(list, [PsValue::I32(1), "two".into(), PsValue::F64(3.5)]);
        assert_eq!(s[1][0].args[1].name.as_deref(), Some("NoEnumerate"));
        assert_eq!(s[2][0].args[0].value, PsValue::I32(1));
    }

    #[test]
    fn refused_syntax() {
        for bad in [
            "Get-Date |",
            "| Get-Date",
            "Write-Output $x",
            "Write-Output (1)",
            "'a",
            "Get-Date,",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse("  # nothing\n").unwrap(), Vec::<Statement>::new());
    }

    #[test]
    fn throw_statements() {
        let s = parse("Write-Output a; throw 'bad'\nthrow; THROW 42; throw $null").unwrap();
        assert_eq!(s.len(), 5);
        assert!(matches!(&s[0], Statement::Pipeline(p) if p[0].name == "Write-Output"));
        assert_eq!(s[1], Statement::Throw(Some("bad".into())));
        assert_eq!(s[2], Statement::Throw(None));
        assert_eq!(s[3], Statement::Throw(Some(PsValue::I32(42))));
        assert_eq!(s[4], Statement::Throw(None));
        // `throw` is a keyword only where a statement starts.
        let s = pipelines("Write-Output throw");
        assert_eq!(s[0][0].args[0].value, PsValue::String("throw".into()));
        // What the simulator cannot evaluate after `throw` is refused, not run.
        assert_eq!(
            parse("throw 'a' 'b'").unwrap_err(),
            "Unexpected token ''b'' in expression or statement."
        );
        for text in ["throw Get-Date", "throw \"a\" + 'b'", "throw 'a' -f 1"] {
            let e = parse(text).unwrap_err();
            assert!(e.contains("not supported by the simulator"), "{text}: {e}");
        }
    }

    /// Valid PowerShell the simulator does not implement names the construct and says
    /// so; real syntax errors keep PowerShell's parser messages.
    #[test]
    fn unsupported_constructs_are_not_syntax_errors() {
        for (text, construct) in [
            (
                "Get-Service | Where-Object { $_.Status -eq 'Running' }",
                "Script blocks",
            ),
            (
                "Get-Service | Where-Object { }",
                "Script blocks are not supported by the simulator: { }",
            ),
            ("$x = Get-Date", "Assignments (=)"),
            ("1..3 | % { $_ * 2 }", "Script blocks"),
            (
                "1..3",
                "Range expressions (..) are not supported by the simulator: 1..3",
            ),
            (
                "Write-Output (1 + 2)",
                "Parenthesised expressions and sub-expressions are not supported by the simulator: (1 + 2)",
            ),
            ("Write-Output $(Get-Date)", "sub-expressions"),
            ("@{a = 1}", "hash table"),
            ("[int]'1'", "Type literals"),
            ("Get-Date > out.txt", "Redirection"),
            ("& Get-Date", "call operator"),
            ("$x", "Expressions are not supported by the simulator: $x"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(construct), "{text}: {e}");
            assert!(e.contains("not supported by the simulator"), "{text}: {e}");
        }
        for (text, message) in [
            (
                "Write-Output 'a",
                "The string is missing the terminator: '.",
            ),
            (
                "Where-Object { $_ ",
                "Missing closing '}' in statement block or type definition.",
            ),
            ("Write-Output (1", "Missing closing ')' in expression."),
            (
                "Get-Date }",
                "Unexpected token '}' in expression or statement.",
            ),
            (
                "Write-Output (1 }",
                "Unexpected token '}' in expression or statement.",
            ),
            (
                "Where-Object { 'a }",
                "The string is missing the terminator: '.",
            ),
            (
                "Get-Date < x",
                "The '<' operator is reserved for future use.",
            ),
        ] {
            assert_eq!(parse(text).unwrap_err(), message, "{text}");
        }
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    proptest! {
        /// Script text comes from the network: any text parses or is refused, never a
        /// panic.
        #[test]
        fn any_text(text in "\\PC{0,200}") {
            let _ = super::parse(&text);
        }

        #[test]
        fn script_like_text(text in "[-a-zA-Z0-9 '\"|;,:$`\\n.*]{0,120}") {
            if let Ok(statements) = super::parse(&text) {
                let non_empty = statements.iter().all(|s| match s {
                    super::Statement::Pipeline(p) => !p.is_empty(),
                    super::Statement::Throw(_) => true,
                });
                prop_assert!(non_empty);
            }
        }
    }
}
