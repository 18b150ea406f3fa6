//! Aliyun's parameters and condition language (accessControl, errorMapping): variables bound to
//! request or response locations, and SQL-like conditions parsed once at configuration time into a
//! tree that is evaluated per request without re-parsing.

use crate::plugins::system::SystemValue;
use serde_json::Value;
use std::fmt;

/// ParamLocation a variable's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarSource {
    Method,
    Path,
    Header(String),
    Query(String),
    Form(String),
    Parameter(String),
    System(SystemValue),
    Token(String),
    Xff(i32),
    StatusCode,
    /// The gateway's own error code: always null, since errorMapping sees only the backend's answers.
    ErrorCode,
    BodyJsonField(Vec<JsonStep>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonStep {
    Key(String),
    Index(usize),
}

/// What a configuration using `ErrorCode` is told: Aliyun's location is the gateway's error code in
/// the response phase, and errorMapping (the only response-phase plugin) maps the backend's responses
/// only; the gateway's own answers, the only ones with a code, are never mapped.
pub(crate) const ERROR_CODE_IS_NULL: &str =
    "ErrorCode is always null here: it is the gateway's error code, and errorMapping maps only the backend's responses (never the gateway's own answers)";

impl VarSource {
    pub fn parse(s: &str) -> Result<VarSource, String> {
        let named = |rest: &str, what: &str| {
            if rest.is_empty() {
                Err(format!("{what}: needs a name"))
            } else {
                Ok(rest.to_string())
            }
        };
        Ok(match s {
            "Method" => VarSource::Method,
            "Path" => VarSource::Path,
            "StatusCode" => VarSource::StatusCode,
            "ErrorCode" => VarSource::ErrorCode,
            _ => match s.split_once(':') {
                Some(("Header", n)) => VarSource::Header(named(n, "Header")?.to_ascii_lowercase()),
                Some(("Query", n)) => VarSource::Query(named(n, "Query")?),
                Some(("Form", n)) => VarSource::Form(named(n, "Form")?),
                Some(("Parameter", n)) => VarSource::Parameter(named(n, "Parameter")?),
                Some(("Token", n)) => VarSource::Token(named(n, "Token")?),
                Some(("System", n)) => match SystemValue::parse(n) {
                    Some(v) => VarSource::System(v),
                    None => return Err(format!("unknown System variable {n}: {}", SystemValue::known())),
                },
                Some(("XFF", n)) => VarSource::Xff(n.parse().map_err(|_| "XFF:N needs a whole number".to_string())?),
                Some(("BodyJsonField", p)) => VarSource::BodyJsonField(parse_json_path(p)?),
                _ => return Err(format!("unknown location {s}")),
            },
        })
    }

    /// True for locations only the response phase has.
    pub fn response_only(&self) -> bool {
        matches!(self, VarSource::StatusCode | VarSource::ErrorCode | VarSource::BodyJsonField(_))
    }

    /// True for locations only the request phase has.
    pub fn request_only(&self) -> bool {
        matches!(self, VarSource::Method | VarSource::Path | VarSource::Query(_) | VarSource::Form(_) | VarSource::Parameter(_) | VarSource::Xff(_))
    }
}

/// `$.a.b[0].c`, `$['a']`: dotted and indexed.
fn parse_json_path(p: &str) -> Result<Vec<JsonStep>, String> {
    let rest = p.strip_prefix('$').ok_or("a JSONPath starts with $")?;
    let mut steps = Vec::new();
    let b = rest.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'.' => {
                let end = rest[i + 1..].find(['.', '[']).map_or(rest.len(), |e| i + 1 + e);
                let key = &rest[i + 1..end];
                if key.is_empty() {
                    return Err(format!("empty key in JSONPath {p}"));
                }
                steps.push(JsonStep::Key(key.to_string()));
                i = end;
            }
            b'[' => {
                let end = rest[i..].find(']').map(|e| i + e).ok_or_else(|| format!("unclosed [ in JSONPath {p}"))?;
                let inner = &rest[i + 1..end];
                if let Ok(n) = inner.parse::<usize>() {
                    steps.push(JsonStep::Index(n));
                } else if let Some(k) = inner.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')) {
                    steps.push(JsonStep::Key(k.to_string()));
                } else {
                    return Err(format!("bad index [{inner}] in JSONPath {p}"));
                }
                i = end + 1;
            }
            _ => return Err(format!("unexpected character in JSONPath {p}")),
        }
    }
    Ok(steps)
}

/// Looks a JSONPath up in a document.
pub fn json_lookup<'a>(doc: &'a serde_json::Value, steps: &[JsonStep]) -> Option<&'a serde_json::Value> {
    steps.iter().try_fold(doc, |v, s| match s {
        JsonStep::Key(k) => v.get(k.as_str()),
        JsonStep::Index(n) => v.get(*n),
    })
}

/// A JSON value as text (a claim forwarded as a parameter): a string as it is, anything else as its
/// JSON text (a number as written, `null`, `true`).
pub fn json_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A value in a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Str(String),
    Num(f64),
    Bool(bool),
}

impl Val {
    /// A JSON value (a claim, a field of a body) as a condition value: strings, numbers and booleans
    /// as themselves, `null` as null (as a number too large for a double), arrays and objects as their
    /// JSON text.
    pub fn from_json(v: &Value) -> Val {
        match v {
            Value::Null => Val::Null,
            Value::Number(n) => n.as_f64().map_or(Val::Null, Val::Num),
            Value::Bool(b) => Val::Bool(*b),
            Value::String(_) | Value::Array(_) | Value::Object(_) => Val::Str(json_text(v)),
        }
    }

    fn as_num(&self) -> Option<f64> {
        match self {
            Val::Num(n) => Some(*n),
            Val::Str(s) => s.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
            _ => None,
        }
    }

    fn truthy(&self) -> bool {
        match self {
            Val::Bool(b) => *b,
            Val::Str(s) => s.eq_ignore_ascii_case("true"),
            Val::Num(n) => *n != 0.0,
            Val::Null => false,
        }
    }
}

impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::Null => Ok(()),
            Val::Str(s) => write!(f, "{s}"),
            Val::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => write!(f, "{}", *n as i64),
            Val::Num(n) => write!(f, "{n}"),
            Val::Bool(b) => write!(f, "{b}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Var(usize),
    Lit(Val),
    Random,
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp(Operand, Op, Operand),
    Truthy(Operand),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Var(String),
    Str(String),
    Num(f64),
    Word(String),
    Op(Op),
    LParen,
    RParen,
}

/// A parse error at a 1-based column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub column: usize,
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at column {}: {}", self.column, self.message)
    }
}

fn lex(src: &str) -> Result<Vec<(usize, Tok)>, SyntaxError> {
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let col = |byte: usize| src[..byte].chars().count() + 1;
    let err = |byte: usize, m: &str| SyntaxError { column: col(byte), message: m.to_string() };
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&(at, c)) = chars.get(i) {
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push((at, Tok::LParen));
                i += 1;
            }
            ')' => {
                out.push((at, Tok::RParen));
                i += 1;
            }
            '=' => {
                out.push((at, Tok::Op(Op::Eq)));
                i += 1;
            }
            '!' | '<' | '>' => {
                let next = chars.get(i + 1).map(|x| x.1);
                let (op, len) = match (c, next) {
                    ('!', Some('=')) => (Op::Ne, 2),
                    ('<', Some('>')) => (Op::Ne, 2),
                    ('<', Some('=')) => (Op::Le, 2),
                    ('>', Some('=')) => (Op::Ge, 2),
                    ('<', _) => (Op::Lt, 1),
                    ('>', _) => (Op::Gt, 1),
                    _ => return Err(err(at, "expected != ")),
                };
                out.push((at, Tok::Op(op)));
                i += len;
            }
            '\'' | '"' => {
                let mut s = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return Err(err(at, "unterminated string")),
                        Some(&(_, q)) if q == c => {
                            // a doubled quote is a literal quote, as in SQL
                            if chars.get(j + 1).map(|x| x.1) == Some(c) {
                                s.push(c);
                                j += 2;
                                continue;
                            }
                            break;
                        }
                        Some(&(_, ch)) => {
                            s.push(ch);
                            j += 1;
                        }
                    }
                }
                out.push((at, Tok::Str(s)));
                i = j + 1;
            }
            '$' => {
                let mut j = i + 1;
                while chars.get(j).is_some_and(|x| x.1.is_alphanumeric() || x.1 == '_') {
                    j += 1;
                }
                if j == i + 1 {
                    return Err(err(at, "expected a variable name after $"));
                }
                let name: String = chars[i + 1..j].iter().map(|x| x.1).collect();
                out.push((at, Tok::Var(name)));
                i = j;
            }
            c if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(|x| x.1.is_ascii_digit())) => {
                let mut j = i + 1;
                while chars.get(j).is_some_and(|x| x.1.is_ascii_digit() || x.1 == '.') {
                    j += 1;
                }
                let text: String = chars[i..j].iter().map(|x| x.1).collect();
                let n = text.parse::<f64>().map_err(|_| err(at, "bad number"))?;
                out.push((at, Tok::Num(n)));
                i = j;
            }
            c if c.is_alphabetic() => {
                let mut j = i + 1;
                while chars.get(j).is_some_and(|x| x.1.is_alphanumeric() || x.1 == '_') {
                    j += 1;
                }
                out.push((at, Tok::Word(chars[i..j].iter().map(|x| x.1).collect())));
                i = j;
            }
            other => return Err(err(at, &format!("unexpected character {other:?}"))),
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    src: &'a str,
    vars: &'a [String],
    /// Parentheses and `not`s open around the current position, and `and`/`or` joins so far: both
    /// bounded, so that parsing, evaluating and dropping a condition never recurse deeply (the Wasm
    /// VM's stack is small, and a stack overflow kills the VM).
    depth: usize,
    joins: usize,
}

/// Most parentheses and `not`s nested in one condition.
const MAX_DEPTH: usize = 32;
/// Most `and`/`or` in one condition.
const MAX_JOINS: usize = 256;

impl Parser<'_> {
    fn col(&self) -> usize {
        let byte = self.toks.get(self.pos).map_or(self.src.len(), |t| t.0);
        self.src[..byte].chars().count() + 1
    }
    fn err<T>(&self, m: impl Into<String>) -> Result<T, SyntaxError> {
        Err(SyntaxError { column: self.col(), message: m.into() })
    }
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.1)
    }
    fn word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
    }
    fn join(&mut self) -> Result<(), SyntaxError> {
        self.pos += 1;
        self.joins += 1;
        if self.joins > MAX_JOINS {
            return self.err(format!("too many and/or (at most {MAX_JOINS})"));
        }
        Ok(())
    }
    fn nest(&mut self) -> Result<(), SyntaxError> {
        self.pos += 1;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err(format!("nested too deeply (at most {MAX_DEPTH} parentheses and nots)"));
        }
        Ok(())
    }
    fn or(&mut self) -> Result<Expr, SyntaxError> {
        let mut left = self.and()?;
        while self.word("or") {
            self.join()?;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Expr, SyntaxError> {
        let mut left = self.not()?;
        while self.word("and") {
            self.join()?;
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }
    fn not(&mut self) -> Result<Expr, SyntaxError> {
        if self.word("not") {
            self.nest()?;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.cmp()
    }
    fn cmp(&mut self) -> Result<Expr, SyntaxError> {
        if self.peek() == Some(&Tok::LParen) {
            self.nest()?;
            let e = self.or()?;
            if self.peek() != Some(&Tok::RParen) {
                return self.err("expected )");
            }
            self.pos += 1;
            self.depth -= 1;
            return Ok(e);
        }
        let left = self.operand()?;
        match self.peek() {
            Some(Tok::Op(op)) => {
                let op = *op;
                self.pos += 1;
                let right = self.operand()?;
                Ok(Expr::Cmp(left, op, right))
            }
            _ => Ok(Expr::Truthy(left)),
        }
    }
    fn operand(&mut self) -> Result<Operand, SyntaxError> {
        let Some(tok) = self.peek().cloned() else { return self.err("expected a value") };
        let out = match tok {
            Tok::Var(name) => match self.vars.iter().position(|v| *v == name) {
                Some(i) => Operand::Var(i),
                None => return self.err(format!("unknown variable ${name}: not in parameters")),
            },
            Tok::Str(s) => Operand::Lit(Val::Str(s)),
            Tok::Num(n) => Operand::Lit(Val::Num(n)),
            Tok::Word(w) if w.eq_ignore_ascii_case("null") => Operand::Lit(Val::Null),
            Tok::Word(w) if w.eq_ignore_ascii_case("true") => Operand::Lit(Val::Bool(true)),
            Tok::Word(w) if w.eq_ignore_ascii_case("false") => Operand::Lit(Val::Bool(false)),
            Tok::Word(w) if w.eq_ignore_ascii_case("random") => {
                self.pos += 1;
                if self.peek() != Some(&Tok::LParen) || self.toks.get(self.pos + 1).map(|t| &t.1) != Some(&Tok::RParen) {
                    return self.err("Random takes no arguments: Random()");
                }
                self.pos += 1;
                Operand::Random
            }
            Tok::Word(w) => return self.err(format!("unexpected word {w}")),
            _ => return self.err("expected a value"),
        };
        self.pos += 1;
        Ok(out)
    }
}

/// Parses a condition; `vars` are the names the plugin's `parameters` define.
pub fn parse(src: &str, vars: &[String]) -> Result<Expr, SyntaxError> {
    let toks = lex(src)?;
    let mut p = Parser { toks, pos: 0, src, vars, depth: 0, joins: 0 };
    if p.peek().is_none() {
        return p.err("empty condition");
    }
    let e = p.or()?;
    if p.peek().is_some() {
        return p.err("unexpected input after the condition");
    }
    Ok(e)
}

impl Expr {
    /// Whether the condition reads a parameter `wanted` picks (by index).
    pub fn reads(&self, wanted: &dyn Fn(usize) -> bool) -> bool {
        let operand = |o: &Operand| matches!(o, Operand::Var(i) if wanted(*i));
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => a.reads(wanted) || b.reads(wanted),
            Expr::Not(a) => a.reads(wanted),
            Expr::Truthy(o) => operand(o),
            Expr::Cmp(l, _, r) => operand(l) || operand(r),
        }
    }
}

/// Evaluates a condition; `var(i)` gives the value of parameter i (`Null` if absent).
pub fn eval(e: &Expr, var: &dyn Fn(usize) -> Val, random: &mut dyn FnMut() -> f64) -> bool {
    match e {
        Expr::And(a, b) => eval(a, var, random) && eval(b, var, random),
        Expr::Or(a, b) => eval(a, var, random) || eval(b, var, random),
        Expr::Not(a) => !eval(a, var, random),
        Expr::Truthy(o) => value(o, var, random).truthy(),
        Expr::Cmp(l, op, r) => compare(&value(l, var, random), *op, &value(r, var, random)),
    }
}

fn value(o: &Operand, var: &dyn Fn(usize) -> Val, random: &mut dyn FnMut() -> f64) -> Val {
    match o {
        Operand::Var(i) => var(*i),
        Operand::Lit(v) => v.clone(),
        Operand::Random => Val::Num(random()),
    }
}

/// `null` equals only `null`; a number and a numeric string compare as numbers; strings compare
/// byte-wise; anything else is only (un)equal.
pub fn compare(a: &Val, op: Op, b: &Val) -> bool {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match (a, b) {
        (Val::Null, Val::Null) => Some(Ordering::Equal),
        (Val::Null, _) | (_, Val::Null) => None,
        (Val::Bool(x), Val::Bool(y)) => (x == y).then_some(Ordering::Equal),
        (Val::Str(x), Val::Str(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Val::Bool(x), Val::Str(s)) | (Val::Str(s), Val::Bool(x)) => {
            (s.eq_ignore_ascii_case(if *x { "true" } else { "false" })).then_some(Ordering::Equal)
        }
        _ => match (a.as_num(), b.as_num()) {
            (Some(x), Some(y)) => x.partial_cmp(&y),
            _ => None,
        },
    };
    match (op, ord) {
        (Op::Eq, o) => o == Some(Ordering::Equal),
        (Op::Ne, o) => o != Some(Ordering::Equal),
        (_, None) => false,
        (Op::Lt, Some(o)) => o == Ordering::Less,
        (Op::Le, Some(o)) => o != Ordering::Greater,
        (Op::Gt, Some(o)) => o == Ordering::Greater,
        (Op::Ge, Some(o)) => o != Ordering::Less,
    }
}

/// Replaces `${name}` with the variable's value (empty when absent).
pub fn substitute(template: &str, vars: &[String], var: &dyn Fn(usize) -> Val) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        match rest[start..].find('}') {
            Some(len) => {
                let name = &rest[start + 2..start + len];
                if let Some(i) = vars.iter().position(|v| v == name) {
                    out.push_str(&var(i).to_string());
                }
                rest = &rest[start + len + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    fn run(src: &str, vals: &[Val]) -> bool {
        let vars: Vec<String> = (0..vals.len()).map(|i| ["a", "b", "c", "d"][i].to_string()).collect();
        let e = parse(src, &vars).unwrap_or_else(|e| panic!("{src}: {e}"));
        eval(&e, &|i| vals[i].clone(), &mut || 0.5)
    }

    fn s(x: &str) -> Val {
        Val::Str(x.to_string())
    }

    #[test]
    fn precedence_and_parentheses() {
        // and binds tighter than or; not tighter than and
        assert!(run("$a = 'x' or $b = 'y' and $c = 'z'", &[s("x"), s("n"), s("n")]));
        assert!(!run("($a = 'x' or $b = 'y') and $c = 'z'", &[s("x"), s("n"), s("n")]));
        assert!(run("not $a = 'x' and $b = 'y'", &[s("q"), s("y")]));
        assert!(!run("not ($a = 'q' and $b = 'y')", &[s("q"), s("y")]));
        assert!(run("$a = 'x' AND ($b <> 2 OR $c = null)", &[s("x"), Val::Num(2.0), Val::Null]));
    }

    #[test]
    fn operators_numbers_strings_null() {
        assert!(run("$a = 10", &[s("10")]), "numeric string vs number");
        assert!(run("$a = 10", &[s("10.0")]));
        assert!(run("$a > 9", &[s("10")]), "numerically, not '10' < '9'");
        assert!(run("$a < '9'", &[s("10")]), "two strings compare as strings");
        assert!(run("$a >= 10 and $a <= 10 and $a != 11 and $a <> 11", &[Val::Num(10.0)]));
        assert!(!run("$a > 1", &[s("abc")]), "not a number: no order");
        assert!(run("$a = null", &[Val::Null]));
        assert!(!run("$a = null", &[s("")]), "empty is not null");
        assert!(run("$a != null", &[s("x")]));
        assert!(!run("$a < 1", &[Val::Null]));
        assert!(run("$a = true", &[s("TRUE")]));
        assert!(run("$a", &[s("true")]));
        assert!(run("$a = \"it's\"", &[s("it's")]));
        assert!(run("$a = 'it''s'", &[s("it's")]));
        assert!(run("$a = -1.5", &[s("-1.5")]));
        assert!(run("Random() < 0.6", &[]));
        assert!(!run("Random() >= 0.6", &[]));
    }

    #[test]
    fn syntax_errors_with_positions() {
        let v = names(&["a"]);
        let cases = [
            ("$a = ", 6, "expected a value"),
            ("$a = 'x", 6, "unterminated string"),
            ("($a = 1", 8, "expected )"),
            ("$b = 1", 1, "unknown variable $b"),
            ("$a = 1 $a", 8, "unexpected input"),
            ("$a == 1", 5, "expected a value"),
            ("$a ~ 1", 4, "unexpected character"),
            ("", 1, "empty condition"),
            ("$a = 1 and", 11, "expected a value"),
            ("Random(1) > 0", 7, "Random takes no arguments"),
        ];
        for (src, col, msg) in cases {
            let e = parse(src, &v).unwrap_err();
            assert_eq!(e.column, col, "{src}: {e}");
            assert!(e.message.contains(msg), "{src}: {e}");
        }
    }

    #[test]
    fn locations_and_json_paths() {
        assert_eq!(VarSource::parse("Header:X-User").unwrap(), VarSource::Header("x-user".into()));
        assert_eq!(VarSource::parse("XFF:-1").unwrap(), VarSource::Xff(-1));
        assert_eq!(VarSource::parse("System:CaAppId").unwrap(), VarSource::System(SystemValue::AppId));
        assert_eq!(VarSource::parse("System:CaRequestHandleTime").unwrap(), VarSource::System(SystemValue::RequestHandleTime));
        assert!(VarSource::parse("System:Nope").unwrap_err().contains("CaClientIp, CaRequestId"));
        assert_eq!(VarSource::parse("ErrorCode").unwrap(), VarSource::ErrorCode);
        assert!(VarSource::parse("Cookie:x").is_err());
        assert!(VarSource::parse("Header:").is_err());
        let VarSource::BodyJsonField(p) = VarSource::parse("BodyJsonField:$.data.items[1]['na.me']").unwrap() else { panic!() };
        let doc = serde_json::json!({"data": {"items": [0, {"na.me": "x"}]}});
        assert_eq!(json_lookup(&doc, &p), Some(&serde_json::json!("x")));
        assert!(VarSource::parse("BodyJsonField:data").is_err());
        assert!(VarSource::parse("BodyJsonField:$.a[").is_err());
    }

    /// One conversion from JSON: what a claim and a body field become in a condition, and as text.
    #[test]
    fn json_values() {
        use serde_json::json;
        assert_eq!(Val::from_json(&json!(null)), Val::Null);
        assert_eq!(Val::from_json(&json!("x")), s("x"));
        assert_eq!(Val::from_json(&json!(7)), Val::Num(7.0));
        assert_eq!(Val::from_json(&json!(true)), Val::Bool(true));
        assert_eq!(Val::from_json(&json!([1, "a"])), s(r#"[1,"a"]"#));
        assert_eq!(Val::from_json(&json!({"k": 1})), s(r#"{"k":1}"#));
        assert_eq!(json_text(&json!("x")), "x");
        assert_eq!(json_text(&json!(12345678901234567890u64)), "12345678901234567890", "a number as written");
        assert_eq!(json_text(&json!(null)), "null");
        assert_eq!(json_text(&json!({"k": [1]})), r#"{"k":[1]}"#);
    }

    #[test]
    fn substitution() {
        let v = names(&["userId", "n"]);
        let vals = [s("42"), Val::Num(3.0)];
        assert_eq!(substitute("Path not match ${userId} vs /${n} ${missing} ${", &v, &|i| vals[i].clone()), "Path not match 42 vs /3  ${");
    }

    /// Found by fuzzing (fuzz/regressions/conditions/deep-parentheses): a condition nested thousands
    /// deep overflowed the stack. Nesting and joins are bounded; a condition at the bounds still works.
    #[test]
    fn deep_nesting_is_a_syntax_error_not_a_stack_overflow() {
        let vars = vec!["a".to_string()];
        let deep = format!("{}$a = 1{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(parse(&deep, &vars).unwrap_err().message.starts_with("nested too deeply"));
        let nots = format!("{}$a = 1", "not ".repeat(100_000));
        assert!(parse(&nots, &vars).unwrap_err().message.starts_with("nested too deeply"));
        let joins = vec!["$a = 1"; 10_000].join(" or ");
        assert!(parse(&joins, &vars).unwrap_err().message.starts_with("too many and/or"));
        let ok = format!("{}$a = 1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(parse(&ok, &vars).is_ok());
        let ok = vec!["$a = 1"; MAX_JOINS + 1].join(" and ");
        let e = parse(&ok, &vars).unwrap();
        assert!(eval(&e, &|_| Val::Num(1.0), &mut || 0.0));
        let regression = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/regressions/conditions/deep-parentheses"));
        if let Ok(bytes) = regression {
            let _ = parse(&String::from_utf8_lossy(&bytes), &vars);
        }
    }
}
