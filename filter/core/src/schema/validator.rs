//! Walking a JSON configuration document: typed field access that records every problem with its
//! path instead of stopping at the first. Shared by the top-level configuration and plugin data.

use serde_json::{Map, Value};
use std::fmt;

/// One thing wrong with a configuration, at a JSON path (`apis[2].method`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Collects problems while walking the document.
#[derive(Default)]
pub(crate) struct Validator {
    pub(crate) problems: Vec<Problem>,
    pub(crate) warnings: Vec<String>,
}

impl Validator {
    pub(crate) fn err(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push(Problem { path: path.to_string(), message: message.into() });
    }

    /// An object whose fields are all in `allowed`; any other field is reported.
    pub(crate) fn object<'v>(&mut self, v: &'v Value, path: &str, allowed: &[&str]) -> Option<&'v Map<String, Value>> {
        self.object_lenient(v, path, allowed, &[])
    }

    pub(crate) fn string<'v>(&mut self, map: &'v Map<String, Value>, path: &str, key: &str, required: bool) -> Option<&'v str> {
        match map.get(key) {
            None | Some(Value::Null) if !required => None,
            None | Some(Value::Null) => {
                self.err(&join(path, key), "is required");
                None
            }
            Some(Value::String(s)) if s.is_empty() => {
                self.err(&join(path, key), "must not be empty");
                None
            }
            Some(Value::String(s)) => Some(s),
            Some(v) => {
                self.err(&join(path, key), format!("must be a string, not {}", kind(v)));
                None
            }
        }
    }

    /// An identifier given as a string or a whole number (Aliyun ids are numbers).
    pub(crate) fn id(&mut self, map: &Map<String, Value>, path: &str, key: &str, required: bool) -> Option<String> {
        match map.get(key) {
            Some(Value::Number(n)) if n.is_u64() || n.is_i64() => Some(n.to_string()),
            Some(Value::Number(_)) => {
                self.err(&join(path, key), "must be a string or a whole number");
                None
            }
            _ => self.string(map, path, key, required).map(str::to_string),
        }
    }

    pub(crate) fn boolean(&mut self, map: &Map<String, Value>, path: &str, key: &str, default: bool) -> bool {
        match map.get(key) {
            None | Some(Value::Null) => default,
            Some(Value::Bool(b)) => *b,
            Some(v) => {
                self.err(&join(path, key), format!("must be true or false, not {}", kind(v)));
                default
            }
        }
    }

    pub(crate) fn integer(&mut self, map: &Map<String, Value>, path: &str, key: &str, default: u64, min: u64, max: u64) -> u64 {
        match map.get(key) {
            None | Some(Value::Null) => default,
            Some(Value::Number(n)) => match n.as_u64() {
                Some(x) if (min..=max).contains(&x) => x,
                _ => {
                    self.err(&join(path, key), format!("must be a whole number from {min} to {max}"));
                    default
                }
            },
            Some(v) => {
                self.err(&join(path, key), format!("must be a number, not {}", kind(v)));
                default
            }
        }
    }

    pub(crate) fn array<'v>(&mut self, map: &'v Map<String, Value>, path: &str, key: &str) -> &'v [Value] {
        match map.get(key) {
            None | Some(Value::Null) => &[],
            Some(Value::Array(a)) => a,
            Some(v) => {
                self.err(&join(path, key), format!("must be an array, not {}", kind(v)));
                &[]
            }
        }
    }

    pub(crate) fn strings<'v>(&mut self, map: &'v Map<String, Value>, path: &str, key: &str) -> Option<Vec<&'v str>> {
        if !map.contains_key(key) {
            return None;
        }
        let mut out = Vec::new();
        for (i, v) in self.array(map, path, key).iter().enumerate() {
            match v.as_str() {
                Some(s) if !s.is_empty() => out.push(s),
                _ => self.err(&format!("{}[{i}]", join(path, key)), "must be a non-empty string"),
            }
        }
        Some(out)
    }
}

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Validator {
    pub(crate) fn warn(&mut self, path: &str, message: impl Into<String>) {
        self.warnings.push(format!("{path}: {}", message.into()));
    }

    /// Like `object`, but fields Aliyun defines and cagate does not implement are accepted with a
    /// warning, so that data pasted from Aliyun loads.
    pub(crate) fn object_lenient<'v>(&mut self, v: &'v Value, path: &str, allowed: &[&str], tolerated: &[&str]) -> Option<&'v Map<String, Value>> {
        let Some(map) = v.as_object() else {
            self.err(path, format!("must be an object, not {}", kind(v)));
            return None;
        };
        for k in map.keys() {
            if tolerated.contains(&k.as_str()) {
                self.warn(&join(path, k), "accepted but not implemented by cagate; ignored");
            } else if !allowed.contains(&k.as_str()) {
                self.err(&join(path, k), "unknown field");
            }
        }
        Some(map)
    }
}
/// A header name as HTTP defines it (a token): what a configured header name must be.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether a configured value that ends up in a header has a control character (CR and LF would
/// split the message Envoy sends).
pub(crate) fn has_control(s: &str) -> bool {
    s.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

/// Whether text the gateway writes into a header, a log line or a metric name has a control
/// character: C0 (NUL, TAB, LF, CR, ESC, …), DEL or C1 (U+0080 to U+009F, which a terminal may act
/// on, e.g. U+009B as CSI). Printable text of any script is kept (app names may be Chinese).
pub(crate) fn has_control_char(s: &str) -> bool {
    s.chars().any(char::is_control)
}

impl Validator {
    /// Text that names something in a header, a log line or a metric (an app's appId, name, ownerId,
    /// appKey, AppCode; static configuration and app registry alike): refused with a control
    /// character in it (see `has_control_char`). The message never quotes the value.
    pub(crate) fn text(&mut self, path: &str, value: &str) -> bool {
        if has_control_char(value) {
            self.err(path, "must not contain control characters (CR, LF, TAB, NUL, ESC, DEL, …)");
            return false;
        }
        true
    }

    /// One of a fixed set of names (`options`), as its value; `None` when absent (reported if
    /// `required`) or unknown ("unknown {what} X: A, B or C").
    pub(crate) fn choice<T: Copy>(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
        what: &str,
        required: bool,
        options: &[(&str, T)],
    ) -> Option<T> {
        let given = self.string(map, path, key, required)?;
        if let Some((_, v)) = options.iter().find(|(name, _)| *name == given) {
            return Some(*v);
        }
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let list = match names.split_last() {
            Some((last, [])) => last.to_string(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        self.err(&join(path, key), format!("unknown {what} {given}: {list}"));
        None
    }

    /// A header value from the configuration: refused with a control character in it.
    pub(crate) fn header_value(&mut self, path: &str, value: &str) -> bool {
        if has_control(value) {
            self.err(path, "must not contain control characters (CR, LF, NUL, …)");
            return false;
        }
        true
    }

    /// A header name from the configuration: refused unless it is an HTTP token.
    pub(crate) fn header_name(&mut self, path: &str, name: &str) -> bool {
        if !is_token(name) {
            self.err(path, format!("{name:?} is not a header name"));
            return false;
        }
        true
    }
}
