//! A small reader of PowerShell script text: statements (`;`, new lines) of pipelines
//! (`|`) of commands with literal arguments: `-Name value`, `-Name:value`, switches,
//! quoted strings, numbers, `$true`/`$false`/`$null`, comma lists and bare words.
//! Anything else (variables, script blocks, sub-expressions) is a parse error.

use crate::soap::psrp::messages::Argument;
use crate::soap::psrp::{PsObject, PsValue};

/// One command of a script: its name and arguments.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScriptCommand {
    pub name: String,
    pub args: Vec<Argument>,
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

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
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
            '(' | ')' | '{' | '}' | '@' | '[' | ']' | '=' | '>' | '<' | '&' => {
                return Err(format!(
                    "Unexpected token '{c}' in expression or statement."
                ));
            }
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
pub(crate) fn parse(text: &str) -> Result<Vec<Vec<ScriptCommand>>, String> {
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
                    statements.push(std::mem::take(&mut pipeline));
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
            t @ (Token::Word(_) | Token::Str(_)) => match current.as_mut() {
                None => {
                    let name = match t {
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

    #[test]
    fn pipelines_arguments_and_statements() {
        let s = parse("Get-Service -Name win* | Select-Object -First 3; Write-Output 1,'two',3.5 -NoEnumerate\nStart-Sleep -Seconds:1").unwrap();
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
        assert_eq!(
            parse("  # nothing\n").unwrap(),
            Vec::<Vec<ScriptCommand>>::new()
        );
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
                prop_assert!(statements.iter().all(|s| !s.is_empty()));
            }
        }
    }
}
