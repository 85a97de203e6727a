//! A small WQL (WMI Query Language) subset used by the simulator to answer
//! WS-Enumeration requests that carry a WQL filter.
//!
//! Supported grammar (keywords case-insensitive):
//!
//! ```text
//! query   := SELECT ( '*' | ident (',' ident)* ) FROM ident [ WHERE or ]
//! or      := and ( OR and )*
//! and     := unary ( AND unary )*
//! unary   := NOT unary | '(' or ')' | cond
//! cond    := ident op literal | literal op ident
//!          | ident [NOT] LIKE string | ident IS [NOT] NULL
//! op      := '=' | '!=' | '<>' | '<' | '<=' | '>' | '>='
//! literal := string | integer | decimal | TRUE | FALSE | NULL
//! ```
//!
//! Evaluation uses two-valued logic: a comparison that cannot be decided
//! (a NULL operand, an unknown property, incomparable types) is false.

use std::cmp::Ordering;

/// Deepest allowed nesting of parentheses and `NOT`.
const MAX_DEPTH: usize = 64;

/// Words that cannot be used as property or class names.
const KEYWORDS: &[&str] = &[
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "LIKE", "IS", "NULL", "TRUE", "FALSE",
];

/// A WQL syntax error, or an unknown property reported by
/// [`Query::validate_properties`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid WQL at {position}: {message}")]
pub struct WqlError {
    /// Byte offset into the query text where the problem was found
    /// (0 for errors from [`Query::validate_properties`]).
    pub position: usize,
    /// Human-readable description of the problem.
    pub message: String,
}

impl WqlError {
    fn new(position: usize, message: impl Into<String>) -> Self {
        Self {
            position,
            message: message.into(),
        }
    }
}

/// A literal in a query, or a property value supplied to [`Query::matches`].
#[derive(Debug, Clone, PartialEq)]
pub enum WqlValue {
    /// The NULL value.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// A string.
    Str(String),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=` or `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The operator with its operands swapped (`a < b` is `b > a`).
    fn flipped(self) -> Self {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            other => other,
        }
    }

    fn holds(self, ord: Ordering) -> bool {
        match self {
            CmpOp::Eq => ord == Ordering::Equal,
            CmpOp::Ne => ord != Ordering::Equal,
            CmpOp::Lt => ord == Ordering::Less,
            CmpOp::Le => ord != Ordering::Greater,
            CmpOp::Gt => ord == Ordering::Greater,
            CmpOp::Ge => ord != Ordering::Less,
        }
    }
}

/// A WHERE-clause expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `property op value` (a `value op property` form is normalised to this).
    Compare {
        /// Property name as written.
        property: String,
        /// The operator.
        op: CmpOp,
        /// The literal compared against.
        value: WqlValue,
    },
    /// `property LIKE 'pattern'` (`NOT LIKE` is `Not(Like)`).
    Like {
        /// Property name as written.
        property: String,
        /// The pattern (`%`, `_`, `[set]`); validated at parse time.
        pattern: String,
    },
    /// `property IS NULL`, or `IS NOT NULL` when `negated`.
    IsNull {
        /// Property name as written.
        property: String,
        /// True for `IS NOT NULL`.
        negated: bool,
    },
    /// Logical negation.
    Not(Box<Expr>),
    /// Conjunction of two or more terms.
    And(Vec<Expr>),
    /// Disjunction of two or more terms.
    Or(Vec<Expr>),
}

impl Expr {
    /// Evaluates the expression; `get` looks properties up by
    /// case-insensitive name and returns `None` for unknown properties.
    pub fn matches(&self, get: &dyn Fn(&str) -> Option<WqlValue>) -> bool {
        match self {
            Expr::Compare {
                property,
                op,
                value,
            } => get(property).is_some_and(|v| compare(&v, *op, value)),
            Expr::Like { property, pattern } => {
                let Ok(pat) = compile_like(pattern) else {
                    return false;
                };
                get(property)
                    .and_then(|v| like_text(&v))
                    .is_some_and(|text| like_match(&pat, &text))
            }
            Expr::IsNull { property, negated } => {
                get(property).is_some_and(|v| (v == WqlValue::Null) != *negated)
            }
            Expr::Not(inner) => !inner.matches(get),
            Expr::And(terms) => terms.iter().all(|t| t.matches(get)),
            Expr::Or(terms) => terms.iter().any(|t| t.matches(get)),
        }
    }

    fn collect_properties<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Expr::Compare { property, .. }
            | Expr::Like { property, .. }
            | Expr::IsNull { property, .. } => out.push(property),
            Expr::Not(inner) => inner.collect_properties(out),
            Expr::And(terms) | Expr::Or(terms) => {
                terms.iter().for_each(|t| t.collect_properties(out));
            }
        }
    }
}

/// A parsed `SELECT` query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Selected properties as written; `None` means `*`.
    pub properties: Option<Vec<String>>,
    /// The class named after `FROM`, as written.
    pub class: String,
    /// The `WHERE` condition, if any.
    pub filter: Option<Expr>,
}

impl Query {
    /// True when an instance whose properties are read through `get`
    /// satisfies the `WHERE` clause (always true without one). `get`
    /// returns `None` for a property the class does not have.
    pub fn matches(&self, get: &dyn Fn(&str) -> Option<WqlValue>) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(get))
    }

    /// True when `prop` is in the select list (case-insensitive) or the
    /// query selects `*`.
    pub fn selects(&self, prop: &str) -> bool {
        self.properties
            .as_ref()
            .is_none_or(|ps| ps.iter().any(|p| p.eq_ignore_ascii_case(prop)))
    }

    /// Checks that every selected and every filtered property is one of
    /// `known` (case-insensitive), as WMI rejects queries naming unknown
    /// properties.
    ///
    /// # Errors
    /// [`WqlError`] naming the first property that is not in `known`.
    pub fn validate_properties(&self, known: &[&str]) -> Result<(), WqlError> {
        let mut used: Vec<&str> = Vec::new();
        if let Some(ps) = &self.properties {
            used.extend(ps.iter().map(String::as_str));
        }
        if let Some(f) = &self.filter {
            f.collect_properties(&mut used);
        }
        match used
            .into_iter()
            .find(|u| !known.iter().any(|k| k.eq_ignore_ascii_case(u)))
        {
            Some(u) => Err(WqlError::new(
                0,
                format!("unknown property '{u}' of class {}", self.class),
            )),
            None => Ok(()),
        }
    }
}

/// Parses a WQL `SELECT` query.
///
/// # Errors
/// [`WqlError`] with the byte position and the reason for a query that does not parse: an
/// unterminated string, a malformed number, a token out of place, a `LIKE` without a string
/// pattern.
pub fn parse(input: &str) -> Result<Query, WqlError> {
    let toks = lex(input)?;
    let mut p = Parser {
        toks,
        i: 0,
        depth: 0,
    };
    p.query()
}

// ---------------------------------------------------------------- lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(WqlValue),
    Op(CmpOp),
    Star,
    Comma,
    LParen,
    RParen,
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: usize,
}

fn lex(input: &str) -> Result<Vec<Token>, WqlError> {
    let mut out = Vec::new();
    let mut it = input.char_indices().peekable();
    while let Some((pos, c)) = it.next() {
        let tok = match c {
            c if c.is_whitespace() => continue,
            '*' => Tok::Star,
            ',' => Tok::Comma,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '=' => Tok::Op(CmpOp::Eq),
            '!' if it.next_if(|&(_, c)| c == '=').is_some() => Tok::Op(CmpOp::Ne),
            '<' if it.next_if(|&(_, c)| c == '>').is_some() => Tok::Op(CmpOp::Ne),
            '<' if it.next_if(|&(_, c)| c == '=').is_some() => Tok::Op(CmpOp::Le),
            '<' => Tok::Op(CmpOp::Lt),
            '>' if it.next_if(|&(_, c)| c == '=').is_some() => Tok::Op(CmpOp::Ge),
            '>' => Tok::Op(CmpOp::Gt),
            '\'' | '"' => {
                let mut s = String::new();
                loop {
                    match it.next() {
                        None => return Err(WqlError::new(pos, "unterminated string")),
                        Some((_, q)) if q == c => break,
                        // WMI's escapes: `\\`, `\'` and `\"`. Any other (`'C:\Windows'`
                        // with single backslashes, the usual slip) is an invalid query
                        // on Windows, never the text as typed.
                        Some((i, '\\')) => match it.next() {
                            Some((_, e @ ('\'' | '"' | '\\'))) => s.push(e),
                            Some((_, e)) => {
                                return Err(WqlError::new(
                                    i,
                                    format!(
                                        "invalid escape \\{e} in a string (write \\\\ for a backslash)"
                                    ),
                                ));
                            }
                            None => return Err(WqlError::new(pos, "unterminated string")),
                        },
                        Some((_, ch)) => s.push(ch),
                    }
                }
                Tok::Str(s)
            }
            c if c.is_ascii_digit()
                || (c == '-' && it.peek().is_some_and(|&(_, d)| d.is_ascii_digit())) =>
            {
                let mut end = pos + 1;
                let mut real = false;
                while let Some((i, d)) = it.next_if(|&(_, d)| d.is_ascii_digit() || d == '.') {
                    if d == '.' {
                        if real {
                            return Err(WqlError::new(i, "malformed number"));
                        }
                        real = true;
                    }
                    end = i + 1;
                }
                let text = &input[pos..end];
                if text.ends_with('.') {
                    return Err(WqlError::new(pos, "malformed number"));
                }
                if let Some(&(i, _)) = it.peek().filter(|&&(_, d)| is_ident_char(d)) {
                    return Err(WqlError::new(i, "malformed number"));
                }
                let value = match (real, text.parse::<i64>()) {
                    (false, Ok(n)) => WqlValue::Int(n),
                    _ => match text.parse::<f64>() {
                        Ok(f) => WqlValue::Real(f),
                        Err(_) => return Err(WqlError::new(pos, "malformed number")),
                    },
                };
                Tok::Num(value)
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut s = String::from(c);
                while let Some((_, d)) = it.next_if(|&(_, d)| is_ident_char(d)) {
                    s.push(d);
                }
                Tok::Ident(s)
            }
            other => {
                return Err(WqlError::new(
                    pos,
                    format!("unexpected character {other:?}"),
                ));
            }
        };
        out.push(Token { tok, pos });
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: input.len(),
    });
    Ok(out)
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn is_keyword(s: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(s))
}

// ---------------------------------------------------------------- parser

struct Parser {
    toks: Vec<Token>,
    i: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        // The token list always ends with Eof and `i` never passes it.
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if t.tok != Tok::Eof {
            self.i += 1;
        }
        t
    }

    fn at_kw(&self, kw: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let hit = self.at_kw(kw);
        if hit {
            self.bump();
        }
        hit
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), WqlError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.error(format!("expected {kw}")))
        }
    }

    fn error(&self, message: impl Into<String>) -> WqlError {
        WqlError::new(self.peek().pos, message)
    }

    /// Consumes a non-keyword identifier.
    fn name(&mut self, what: &str) -> Result<String, WqlError> {
        match &self.peek().tok {
            Tok::Ident(s) if !is_keyword(s) => {
                let s = s.clone();
                self.bump();
                Ok(s)
            }
            _ => Err(self.error(format!("expected {what}"))),
        }
    }

    fn query(&mut self) -> Result<Query, WqlError> {
        self.expect_kw("SELECT")?;
        let properties = if self.peek().tok == Tok::Star {
            self.bump();
            None
        } else {
            let mut ps = vec![self.name("property name or *")?];
            while self.peek().tok == Tok::Comma {
                self.bump();
                ps.push(self.name("property name")?);
            }
            Some(ps)
        };
        self.expect_kw("FROM")?;
        let class = self.name("class name")?;
        let filter = if self.eat_kw("WHERE") {
            Some(self.or()?)
        } else {
            None
        };
        if self.peek().tok != Tok::Eof {
            return Err(self.error("unexpected token after end of query"));
        }
        Ok(Query {
            properties,
            class,
            filter,
        })
    }

    fn or(&mut self) -> Result<Expr, WqlError> {
        self.list("OR", Self::and, Expr::Or)
    }

    fn and(&mut self) -> Result<Expr, WqlError> {
        self.list("AND", Self::unary, Expr::And)
    }

    /// One or more `item`s separated by keyword `sep`, flattened into `wrap`.
    fn list(
        &mut self,
        sep: &str,
        item: fn(&mut Self) -> Result<Expr, WqlError>,
        wrap: fn(Vec<Expr>) -> Expr,
    ) -> Result<Expr, WqlError> {
        let mut terms = vec![item(self)?];
        while self.eat_kw(sep) {
            terms.push(item(self)?);
        }
        Ok(match terms.len() {
            1 => terms.remove(0),
            _ => wrap(terms),
        })
    }

    fn enter(&mut self) -> Result<(), WqlError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!("nesting deeper than {MAX_DEPTH}")));
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<Expr, WqlError> {
        if self.at_kw("NOT") {
            self.enter()?;
            self.bump();
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        if self.peek().tok == Tok::LParen {
            self.enter()?;
            self.bump();
            let inner = self.or()?;
            if self.peek().tok != Tok::RParen {
                return Err(self.error("expected )"));
            }
            self.bump();
            self.depth -= 1;
            return Ok(inner);
        }
        match &self.peek().tok {
            Tok::Ident(s) if !is_keyword(s) => self.condition(),
            Tok::Str(_) | Tok::Num(_) => self.reversed_compare(),
            _ if self.at_kw("TRUE") || self.at_kw("FALSE") || self.at_kw("NULL") => {
                self.reversed_compare()
            }
            _ => Err(self.error("expected condition")),
        }
    }

    /// `literal op property`.
    fn reversed_compare(&mut self) -> Result<Expr, WqlError> {
        let value = self.literal()?;
        let Tok::Op(op) = self.peek().tok else {
            return Err(self.error("expected comparison operator"));
        };
        self.bump();
        let property = self.name("property name")?;
        Ok(Expr::Compare {
            property,
            op: op.flipped(),
            value,
        })
    }

    /// A condition starting with a property name.
    fn condition(&mut self) -> Result<Expr, WqlError> {
        let property = self.name("property name")?;
        if let Tok::Op(op) = self.peek().tok {
            self.bump();
            let value = self.literal()?;
            return Ok(Expr::Compare {
                property,
                op,
                value,
            });
        }
        if self.eat_kw("IS") {
            let negated = self.eat_kw("NOT");
            self.expect_kw("NULL")?;
            return Ok(Expr::IsNull { property, negated });
        }
        let negated = self.eat_kw("NOT");
        if !self.eat_kw("LIKE") {
            let want = if negated {
                "LIKE"
            } else {
                "comparison operator"
            };
            return Err(self.error(format!("expected {want}")));
        }
        let pos = self.peek().pos;
        let Tok::Str(pattern) = self.bump().tok else {
            return Err(WqlError::new(pos, "expected string pattern after LIKE"));
        };
        if let Err(msg) = compile_like(&pattern) {
            return Err(WqlError::new(pos, msg));
        }
        let like = Expr::Like { property, pattern };
        Ok(if negated {
            Expr::Not(Box::new(like))
        } else {
            like
        })
    }

    fn literal(&mut self) -> Result<WqlValue, WqlError> {
        let value = match &self.peek().tok {
            Tok::Str(s) => WqlValue::Str(s.clone()),
            Tok::Num(n) => n.clone(),
            _ if self.at_kw("TRUE") => WqlValue::Bool(true),
            _ if self.at_kw("FALSE") => WqlValue::Bool(false),
            _ if self.at_kw("NULL") => WqlValue::Null,
            _ => return Err(self.error("expected literal value")),
        };
        self.bump();
        Ok(value)
    }
}

// ---------------------------------------------------------------- evaluation

fn as_f64(v: &WqlValue) -> Option<f64> {
    match v {
        WqlValue::Int(i) => Some(*i as f64),
        WqlValue::Real(f) => Some(*f),
        WqlValue::Bool(b) => Some(f64::from(u8::from(*b))),
        WqlValue::Str(s) => s.trim().parse().ok(),
        WqlValue::Null => None,
    }
}

fn compare(lhs: &WqlValue, op: CmpOp, rhs: &WqlValue) -> bool {
    use WqlValue::{Bool, Int, Null, Str};
    let parse_bool = |s: &str| match s.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    };
    let ord = match (lhs, rhs) {
        (Null, _) | (_, Null) => None,
        (Str(a), Str(b)) => Some(a.to_lowercase().cmp(&b.to_lowercase())),
        (Bool(a), Str(b)) => parse_bool(b).map(|b| a.cmp(&b)),
        (Str(a), Bool(b)) => parse_bool(a).map(|a| a.cmp(b)),
        (Int(a), Int(b)) => Some(a.cmp(b)),
        _ => as_f64(lhs)
            .zip(as_f64(rhs))
            .and_then(|(a, b)| a.partial_cmp(&b)),
    };
    ord.is_some_and(|o| op.holds(o))
}

fn like_text(v: &WqlValue) -> Option<String> {
    match v {
        WqlValue::Null => None,
        WqlValue::Bool(b) => Some(b.to_string()),
        WqlValue::Int(i) => Some(i.to_string()),
        WqlValue::Real(f) => Some(f.to_string()),
        WqlValue::Str(s) => Some(s.clone()),
    }
}

#[derive(Debug)]
enum Pat {
    AnyRun,
    One,
    Lit(char),
    Set {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

fn compile_like(pattern: &str) -> Result<Vec<Pat>, &'static str> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '%' => out.push(Pat::AnyRun),
            '_' => out.push(Pat::One),
            '[' => {
                let negated = chars.get(i) == Some(&'^');
                if negated {
                    i += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    let Some(&lo) = chars.get(i) else {
                        return Err("unterminated [ in LIKE pattern");
                    };
                    i += 1;
                    // A `]` right after `[` or `[^` is a literal member.
                    if lo == ']' && !ranges.is_empty() {
                        break;
                    }
                    match (chars.get(i), chars.get(i + 1)) {
                        (Some('-'), Some(&hi)) if hi != ']' => {
                            if hi < lo {
                                return Err("reversed range in LIKE pattern");
                            }
                            ranges.push((lo, hi));
                            i += 2;
                        }
                        _ => ranges.push((lo, lo)),
                    }
                }
                out.push(Pat::Set { negated, ranges });
            }
            c => out.push(Pat::Lit(c)),
        }
    }
    Ok(out)
}

fn lower(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

fn upper(c: char) -> char {
    c.to_uppercase().next().unwrap_or(c)
}

fn pat_accepts(p: &Pat, c: char) -> bool {
    match p {
        Pat::AnyRun | Pat::One => true,
        Pat::Lit(l) => lower(*l) == lower(c),
        Pat::Set { negated, ranges } => {
            let hit = ranges.iter().any(|&(lo, hi)| {
                [c, lower(c), upper(c)]
                    .iter()
                    .any(|x| (lo..=hi).contains(x))
            });
            hit != *negated
        }
    }
}

/// Case-insensitive LIKE match, by simulating the pattern as an automaton
/// (O(pattern * text), no backtracking blow-up).
fn like_match(pat: &[Pat], text: &str) -> bool {
    let n = pat.len();
    let close = |states: &mut Vec<bool>| {
        for j in 0..n {
            if states[j] && matches!(pat[j], Pat::AnyRun) {
                states[j + 1] = true;
            }
        }
    };
    let mut cur = vec![false; n + 1];
    cur[0] = true;
    close(&mut cur);
    for c in text.chars() {
        let mut next = vec![false; n + 1];
        for j in (0..n).filter(|&j| cur[j]) {
            if matches!(pat[j], Pat::AnyRun) {
                next[j] = true;
            } else if pat_accepts(&pat[j], c) {
                next[j + 1] = true;
            }
        }
        close(&mut next);
        if !next.contains(&true) {
            return false;
        }
        cur = next;
    }
    cur[n]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn svc(name: &str) -> Option<WqlValue> {
        match name.to_ascii_lowercase().as_str() {
            "name" => Some(WqlValue::Str("WinRM".into())),
            "state" => Some(WqlValue::Str("Running".into())),
            "pid" => Some(WqlValue::Int(1234)),
            "load" => Some(WqlValue::Real(0.75)),
            "digits" => Some(WqlValue::Str(" 42 ".into())),
            "started" => Some(WqlValue::Bool(true)),
            "path" => Some(WqlValue::Str(r"C:\Windows\it's".into())),
            "desc" => Some(WqlValue::Null),
            "uni" => Some(WqlValue::Str("Ünïcødé".into())),
            _ => None,
        }
    }

    fn hit(filter: &str) -> bool {
        let q = parse(&format!("SELECT * FROM Win32_Service WHERE {filter}"))
            .unwrap_or_else(|e| panic!("{filter}: {e}"));
        q.matches(&svc)
    }

    fn like(pattern: &str, text: &str) -> bool {
        let pat = compile_like(pattern).expect("valid pattern");
        like_match(&pat, text)
    }

    fn err(q: &str) -> WqlError {
        parse(q).expect_err(q)
    }

    fn cmp(property: &str, op: CmpOp, value: i64) -> Expr {
        Expr::Compare {
            property: property.into(),
            op,
            value: WqlValue::Int(value),
        }
    }

    #[test]
    fn simple_select() {
        let q = parse("select * from Win32_Service").unwrap();
        assert_eq!(q.properties, None);
        assert_eq!(q.class, "Win32_Service");
        assert_eq!(q.filter, None);
        assert!(q.selects("anything"));
        assert!(q.matches(&|_| None));
    }

    #[test]
    fn property_list() {
        let q = parse("SELECT Name,State , ProcessId FROM win32_service").unwrap();
        let want = vec!["Name".to_string(), "State".into(), "ProcessId".into()];
        assert_eq!(q.properties, Some(want));
        assert_eq!(q.class, "win32_service");
        assert!(q.selects("NAME") && q.selects("processid"));
        assert!(!q.selects("StartMode"));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let q = parse("SELECT * FROM C WHERE a = 1 OR b = 2 AND c = 3").unwrap();
        let want = Expr::Or(vec![
            cmp("a", CmpOp::Eq, 1),
            Expr::And(vec![cmp("b", CmpOp::Eq, 2), cmp("c", CmpOp::Eq, 3)]),
        ]);
        assert_eq!(q.filter, Some(want));
        assert!(hit("Pid = 1234 OR Pid = 1 AND Pid = 2"));
        assert!(!hit("(Pid = 1234 OR Pid = 1) AND Pid = 2"));
        assert!(hit("Pid = 1 AND Pid = 2 OR Name = 'winrm'"));
    }

    #[test]
    fn like_patterns() {
        assert!(like("%rm", "WinRM") && like("w%", "WinRM") && like("%", ""));
        assert!(like("W_nRM", "winrm") && !like("W_RM", "WinRM"));
        assert!(like("[abc]x", "Bx") && !like("[abc]x", "dx"));
        assert!(like("[a-c]%", "Cat") && !like("[a-c]%", "dog"));
        assert!(like("[^x]y", "ay") && !like("[^x]y", "xy") && !like("[^x]y", "XY"));
        assert!(like("100[%]", "100%") && !like("100[%]", "1000"));
        assert!(like("[]]", "]") && like("[a-]", "-") && like("%a%b%c%", "xaybzc"));
        assert!(!like("%a%b%c%", "cba"));
        assert!(like(
            "%%%%%%%%%%%%%%%%%%%%b",
            &format!("{}b", "a".repeat(5000))
        ));
        assert!(hit("Name LIKE '%rm'") && !hit("Name NOT LIKE '%rm'"));
        assert!(hit("Pid LIKE '12%'"), "numbers are matched as text");
        assert!(!hit("Desc LIKE '%'") && !hit("Nope LIKE '%'"));
        assert_eq!(err("SELECT * FROM C WHERE a LIKE 'x[ab'").position, 29);
        assert_eq!(err("SELECT * FROM C WHERE a LIKE 3").position, 29);
    }

    #[test]
    fn is_null() {
        assert!(hit("Desc IS NULL") && !hit("Desc IS NOT NULL"));
        assert!(hit("Name is not null") && !hit("Name IS NULL"));
        assert!(!hit("Nope IS NULL") && !hit("Nope IS NOT NULL"));
        assert!(!hit("Desc = NULL") && !hit("Desc <> 'x'") && !hit("Name = NULL"));
    }

    #[test]
    fn not_operator() {
        assert!(hit("NOT Pid = 1") && !hit("NOT Pid = 1234"));
        assert!(hit("NOT NOT Pid = 1234"));
        assert!(hit("NOT (Pid = 1 OR Pid = 2) AND Name = 'WinRM'"));
        let q = parse("SELECT * FROM C WHERE NOT a = 1 AND b = 2").unwrap();
        let want = Expr::And(vec![
            Expr::Not(Box::new(cmp("a", CmpOp::Eq, 1))),
            cmp("b", CmpOp::Eq, 2),
        ]);
        assert_eq!(q.filter, Some(want));
    }

    #[test]
    fn numeric_comparisons() {
        assert!(hit("Pid = 1234") && hit("Pid >= 1234") && hit("Pid <= 1234"));
        assert!(hit("Pid > -5") && hit("Pid != 1") && hit("Pid <> 1"));
        assert!(!hit("Pid < 1234") && !hit("Pid > 1234"));
        assert!(hit("Load < 1") && hit("Load > 0.5") && hit("Load = 0.75"));
        assert!(hit("Digits = 42") && hit("Digits > 41.5") && !hit("Name = 42"));
        assert!(hit("1000 < Pid") && !hit("1000 > Pid") && hit("-1.5 <= Load"));
        assert!(hit("Started = TRUE") && hit("Started = 'true'") && !hit("Started = FALSE"));
        assert!(!hit("Nope = 1") && !hit("Nope != 1"));
        let q = parse("SELECT * FROM C WHERE a = 99999999999999999999").unwrap();
        let Some(Expr::Compare { value, .. }) = q.filter else {
            panic!("expected comparison")
        };
        assert_eq!(value, WqlValue::Real(1e20));
    }

    #[test]
    fn string_comparisons() {
        assert!(hit("Name = 'winrm'") && hit("Name = \"WINRM\"") && hit("'WinRM' = Name"));
        assert!(hit("Name < 'x'") && hit("Name > 'VVV'") && !hit("Name > 'winrmz'"));
        assert!(hit("State <> 'Stopped'") && !hit("State != 'running'"));
        assert!(hit("Uni = 'ÜNÏCØDÉ'") && hit("Uni LIKE '[ü]n%É'"));
    }

    #[test]
    fn quoting_and_escapes() {
        assert!(hit(r"Path = 'C:\\Windows\\it\'s'"));
        assert!(hit(r#"Path = "c:\\windows\\IT's""#));
        // Only `\\`, `\'` and `\"` escape; a single backslash before anything else is
        // an invalid query, as in WMI (`'C:\Windows'` must be `'C:\\Windows'`).
        assert!(parse(r"SELECT * FROM C WHERE b = 'x\q'").is_err());
        assert!(parse(r"SELECT * FROM C WHERE Path = 'C:\Windows\System32'").is_err());
        let q = parse(r#"SELECT * FROM C WHERE a = "say \"hi\"" OR b = 'x\\q'"#).unwrap();
        let Some(Expr::Or(terms)) = q.filter else {
            panic!("expected OR")
        };
        let values: Vec<_> = terms
            .iter()
            .map(|t| match t {
                Expr::Compare { value, .. } => value.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        let want = [
            WqlValue::Str("say \"hi\"".into()),
            WqlValue::Str(r"x\q".into()),
        ];
        assert_eq!(values, want);
    }

    #[test]
    fn errors_carry_positions() {
        let e = err("SELECT * Win32_Service");
        assert_eq!(e.to_string(), "invalid WQL at 9: expected FROM");
        assert_eq!(err("").to_string(), "invalid WQL at 0: expected SELECT");
        assert_eq!(err("SELECT FROM C").message, "expected property name or *");
        let e = err("SELECT * FROM C WHERE a = 1 & b = 2");
        assert_eq!(
            (e.position, e.message.as_str()),
            (28, "unexpected character '&'")
        );
        let e = err("SELECT * FROM C WHERE a = 'abc");
        assert_eq!(
            (e.position, e.message.as_str()),
            (26, "unterminated string")
        );
        assert_eq!(err("SELECT * FROM C WHERE a = 'x\\").position, 26);
        let e = err("SELECT * FROM C extra");
        assert_eq!(
            (e.position, e.message.as_str()),
            (16, "unexpected token after end of query")
        );
        let e = err("SELECT * FROM C WHERE (a = 1");
        assert_eq!((e.position, e.message.as_str()), (28, "expected )"));
        assert_eq!(err("SELECT * FROM C WHERE (a = 1 b").position, 29);
        assert_eq!(err("SELECT * FROM C WHERE a = 1 AND").position, 31);
        assert_eq!(err("SELECT * FROM C WHERE a IS 1").message, "expected NULL");
        assert_eq!(err("SELECT * FROM C WHERE a = 12ab").position, 28);
        assert_eq!(
            err("SELECT * FROM C WHERE a = 1.2.3").message,
            "malformed number"
        );
        assert_eq!(err("SELECT * FROM Where").message, "expected class name");
        // Multi-byte characters: positions are byte offsets, never panics.
        assert_eq!(err("SELECT é FROM C").position, 7);
        assert_eq!(err("SELECT * FROM C WHERE 'é' ≠ a").position, 27);
    }

    #[test]
    fn nesting_is_capped() {
        let ok = format!(
            "SELECT * FROM C WHERE {}a = 1{}",
            "(".repeat(60),
            ")".repeat(60)
        );
        assert!(parse(&ok).is_ok());
        let deep = format!(
            "SELECT * FROM C WHERE {}a = 1{}",
            "(".repeat(100),
            ")".repeat(100)
        );
        assert!(err(&deep).message.contains("nesting"));
        let nots = format!("SELECT * FROM C WHERE {}a = 1", "NOT ".repeat(10_000));
        assert!(err(&nots).message.contains("nesting"));
        // Long flat chains are not nesting and evaluate without recursion.
        let chain = vec!["Pid = 1234"; 20_000].join(" AND ");
        assert!(hit(&chain));
    }

    #[test]
    fn validate_properties_rejects_unknown() {
        let known = ["Name", "State", "ProcessId"];
        let q = parse("SELECT name FROM C WHERE processid > 4 AND NOT (State = 'x')").unwrap();
        assert_eq!(q.validate_properties(&known), Ok(()));
        let e = parse("SELECT Name, Bogus FROM C")
            .unwrap()
            .validate_properties(&known);
        assert!(e.unwrap_err().message.contains("'Bogus'"));
        let q = parse("SELECT * FROM C WHERE Name = 'a' OR Other IS NULL").unwrap();
        assert!(
            q.validate_properties(&known)
                .unwrap_err()
                .message
                .contains("'Other'")
        );
    }

    const VALID: &[&str] = &[
        "SELECT * FROM Win32_Service WHERE Name LIKE '[a-z]%' AND NOT (Pid < 3 OR Desc IS NULL)",
        "select Name, State from Win32_Process where 'x' <> Name or Load >= -1.5",
        r#"SELECT Path FROM C WHERE Path = "C:\\it\'s" AND Started = TRUE"#,
    ];

    proptest! {
        #[test]
        fn random_input_never_panics(s in "\\PC{0,80}") {
            match parse(&s) {
                Ok(q) => {
                    let _ = q.matches(&svc);
                    prop_assert!(!q.class.is_empty());
                    prop_assert!(q.validate_properties(&["Name"]).is_ok() || q.filter.is_some()
                        || q.properties.is_some());
                }
                Err(e) => prop_assert!(e.position <= s.len() && s.is_char_boundary(e.position)),
            }
        }

        #[test]
        fn mutated_queries_never_panic(
            idx in 0..VALID.len(),
            edits in proptest::collection::vec((0u8..3, any::<usize>(), any::<char>()), 1..6),
        ) {
            let mut chars: Vec<char> = VALID[idx].chars().collect();
            for (kind, at, c) in edits {
                let at = at % (chars.len() + 1);
                match kind {
                    0 => chars.insert(at, c),
                    1 if at < chars.len() => { chars.remove(at); }
                    _ if at < chars.len() => chars[at] = c,
                    _ => chars.push(c),
                }
            }
            let s: String = chars.into_iter().collect();
            match parse(&s) {
                Ok(q) => { let _ = q.matches(&svc); }
                Err(e) => prop_assert!(e.position <= s.len() && s.is_char_boundary(e.position)),
            }
        }

        #[test]
        fn wildcarded_text_still_matches(
            text in "[a-zA-Z0-9 ]{0,20}",
            mask in proptest::collection::vec(0u8..4, 20),
        ) {
            let pattern: String = text.chars().zip(&mask).map(|(c, m)| match m {
                0 => '_',
                1 => '%',
                2 => c.to_ascii_uppercase(),
                _ => c,
            }).collect();
            let q = parse(&format!("SELECT * FROM C WHERE p LIKE '{pattern}' AND p = '{text}'"))
                .unwrap();
            let get = |_: &str| Some(WqlValue::Str(text.clone()));
            prop_assert!(q.matches(&get));
        }
    }
}
