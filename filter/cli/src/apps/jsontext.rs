//! JSON as text with the byte span of every value, and edits that touch only the spans they change:
//! a hand-formatted configuration keeps its layout, and the diff shows only what the command did.
//! The text is first checked by serde_json, so the scanner here only has to find spans, not judge.

use serde_yaml::Value;

#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) kind: Kind,
}

#[derive(Debug)]
pub(crate) enum Kind {
    Object(Vec<Member>),
    Array(Vec<Node>),
    Scalar,
}

#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) key: String,
    pub(crate) key_start: usize,
    pub(crate) value: Node,
}

impl Node {
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        self.members().iter().find(|m| m.key == key).map(|m| &m.value)
    }
    pub(crate) fn members(&self) -> &[Member] {
        match &self.kind {
            Kind::Object(m) => m,
            _ => &[],
        }
    }
    pub(crate) fn items(&self) -> &[Node] {
        match &self.kind {
            Kind::Array(a) => a,
            _ => &[],
        }
    }
    pub(crate) fn text<'a>(&self, doc: &'a str) -> &'a str {
        doc.get(self.start..self.end).unwrap_or_default()
    }
    /// The string this node holds (`None`: not a string).
    pub(crate) fn string(&self, doc: &str) -> Option<String> {
        serde_json::from_str::<String>(self.text(doc)).ok()
    }
    /// A string or a number, as text: how ids are compared (`10001` and `"10001"` are one app).
    pub(crate) fn id(&self, doc: &str) -> Option<String> {
        let t = self.text(doc);
        self.string(doc).or_else(|| t.bytes().all(|b| b.is_ascii_digit() || b == b'-').then(|| t.to_string()))
    }
}

/// Parses `text` (which must be JSON) into its spans.
pub(crate) fn parse(text: &str) -> Result<Node, String> {
    serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let mut p = Scanner { b: text.as_bytes(), i: 0, text };
    p.ws();
    p.value()
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    text: &'a str,
}

impl Scanner<'_> {
    fn ws(&mut self) {
        while self.b.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", c as char, self.i))
        }
    }
    fn string_end(&mut self) -> Result<(), String> {
        self.i += 1;
        while let Some(&c) = self.b.get(self.i) {
            self.i += if c == b'\\' { 2 } else { 1 };
            if c == b'"' {
                return Ok(());
            }
        }
        Err("unterminated string".into())
    }
    fn value(&mut self) -> Result<Node, String> {
        self.ws();
        let start = self.i;
        let kind = match self.b.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut members = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        let key_start = self.i;
                        self.string_end()?;
                        let key = serde_json::from_str::<String>(self.text.get(key_start..self.i).unwrap_or_default()).map_err(|e| e.to_string())?;
                        self.eat(b':')?;
                        let value = self.value()?;
                        members.push(Member { key, key_start, value });
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            _ => break,
                        }
                    }
                    self.eat(b'}')?;
                }
                Kind::Object(members)
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    loop {
                        items.push(self.value()?);
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            _ => break,
                        }
                    }
                    self.eat(b']')?;
                }
                Kind::Array(items)
            }
            Some(b'"') => {
                self.string_end()?;
                Kind::Scalar
            }
            Some(_) => {
                while self.b.get(self.i).is_some_and(|c| !c.is_ascii_whitespace() && !b",]}".contains(c)) {
                    self.i += 1;
                }
                Kind::Scalar
            }
            None => return Err("unexpected end".into()),
        };
        Ok(Node { start, end: self.i, kind })
    }
}

/// Longest line an inserted value is written on before it is broken over lines.
const WIDTH: usize = 110;

/// `v` on one line, the way the samples write short objects: `{ "appId": 1, "stage": "TEST" }`.
pub(crate) fn inline(v: &Value) -> String {
    match v {
        Value::Mapping(m) if m.is_empty() => "{}".into(),
        Value::Mapping(m) => {
            let parts: Vec<String> = m.iter().map(|(k, v)| format!("{}: {}", scalar(k), inline(v))).collect();
            format!("{{ {} }}", parts.join(", "))
        }
        Value::Sequence(s) if s.iter().any(|x| matches!(x, Value::Mapping(_))) => {
            format!("[ {} ]", s.iter().map(inline).collect::<Vec<_>>().join(", "))
        }
        Value::Sequence(s) => format!("[{}]", s.iter().map(inline).collect::<Vec<_>>().join(", ")),
        other => scalar(other),
    }
}

/// `v` over several lines, its inner lines indented from `indent`; short parts stay on one line.
pub(crate) fn block(v: &Value, indent: usize) -> String {
    let one = inline(v);
    if indent + one.len() <= WIDTH {
        return one;
    }
    let pad = " ".repeat(indent + 2);
    match v {
        Value::Mapping(m) => {
            let parts: Vec<String> = m.iter().map(|(k, v)| format!("{pad}{}: {}", scalar(k), block(v, indent + 2))).collect();
            format!("{{\n{}\n{}}}", parts.join(",\n"), " ".repeat(indent))
        }
        Value::Sequence(s) => {
            let parts: Vec<String> = s.iter().map(|v| format!("{pad}{}", block(v, indent + 2))).collect();
            format!("[\n{}\n{}]", parts.join(",\n"), " ".repeat(indent))
        }
        _ => one,
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Tagged(t) => scalar(&t.value),
        Value::Mapping(_) | Value::Sequence(_) => inline(v),
    }
}

/// The indentation (spaces) of the line `at` is on.
fn line_indent(doc: &str, at: usize) -> usize {
    let line_start = doc.get(..at).and_then(|t| t.rfind('\n')).map_or(0, |i| i + 1);
    doc.get(line_start..).map_or(0, |l| l.len() - l.trim_start_matches(' ').len())
}

/// What goes between two entries, learnt from the container: the text after the comma between its
/// last two entries, or after its opening bracket when it has one.
fn separator(doc: &str, open: usize, starts: &[usize], ends: &[usize]) -> String {
    let n = starts.len();
    let gap = if n >= 2 {
        doc.get(ends[n - 2]..starts[n - 1]).unwrap_or(",").trim_start_matches(|c: char| c.is_whitespace()).trim_start_matches(',').to_string()
    } else {
        doc.get(open + 1..starts[0]).unwrap_or_default().to_string()
    };
    if gap.is_empty() {
        " ".into()
    } else {
        gap
    }
}

fn indent_after(sep: &str, doc: &str, at: usize) -> usize {
    match sep.rfind('\n') {
        Some(i) => sep.len() - i - 1,
        None => line_indent(doc, at),
    }
}

fn splice(doc: &str, start: usize, end: usize, with: &str) -> String {
    format!("{}{with}{}", doc.get(..start).unwrap_or_default(), doc.get(end..).unwrap_or_default())
}

/// `doc` with `v` appended to the array `arr`.
pub(crate) fn append(doc: &str, arr: &Node, v: &Value) -> String {
    let items = arr.items();
    let (starts, ends): (Vec<usize>, Vec<usize>) = items.iter().map(|n| (n.start, n.end)).unzip();
    match ends.last() {
        Some(&last) => {
            let sep = separator(doc, arr.start, &starts, &ends);
            let indent = indent_after(&sep, doc, starts[starts.len() - 1]);
            splice(doc, last, last, &format!(",{sep}{}", block(v, indent)))
        }
        None => splice(doc, arr.start, arr.end, &format!("[ {} ]", block(v, line_indent(doc, arr.start) + 2))),
    }
}

/// `doc` with `"key": v` added at the end of the object `obj`.
pub(crate) fn add_member(doc: &str, obj: &Node, key: &str, v: &Value) -> String {
    let members = obj.members();
    let key_json = serde_json::to_string(key).unwrap_or_default();
    match members.last() {
        Some(last) => {
            let starts: Vec<usize> = members.iter().map(|m| m.key_start).collect();
            let ends: Vec<usize> = members.iter().map(|m| m.value.end).collect();
            let sep = separator(doc, obj.start, &starts, &ends);
            let indent = indent_after(&sep, doc, last.key_start);
            splice(doc, last.value.end, last.value.end, &format!(",{sep}{key_json}: {}", block(v, indent)))
        }
        None => {
            let one = format!("{key_json}: {}", block(v, line_indent(doc, obj.start) + 2));
            splice(doc, obj.start, obj.end, &format!("{{ {one} }}"))
        }
    }
}

/// `doc` with the node replaced by `v` (a scalar, or a value written on one line if short).
pub(crate) fn replace(doc: &str, node: &Node, v: &Value) -> String {
    splice(doc, node.start, node.end, &block(v, line_indent(doc, node.start)))
}

/// `doc` without entry `i` of an array or object (`spans`: each entry's start and end), and the
/// comma that separated it.
fn remove_entry(doc: &str, spans: &[(usize, usize)], i: usize) -> String {
    match (i, spans.len()) {
        (_, 1) => collapse(splice(doc, spans[0].0, spans[0].1, ""), spans[0].0),
        (i, n) if i + 1 < n => splice(doc, spans[i].0, spans[i + 1].0, ""),
        (i, _) => splice(doc, spans[i - 1].1, spans[i].1, ""),
    }
}

/// `[ ]` or `{ }` left at `at` once its only entry is gone becomes `[]` or `{}`.
fn collapse(doc: String, at: usize) -> String {
    let b = doc.get(..at).unwrap_or_default().trim_end();
    let a = doc.get(at..).unwrap_or_default().trim_start();
    if (b.ends_with('[') && a.starts_with(']')) || (b.ends_with('{') && a.starts_with('}')) {
        format!("{b}{a}")
    } else {
        doc
    }
}

pub(crate) fn remove_item(doc: &str, arr: &Node, i: usize) -> String {
    let spans: Vec<(usize, usize)> = arr.items().iter().map(|n| (n.start, n.end)).collect();
    remove_entry(doc, &spans, i)
}

#[cfg(test)]
pub(crate) fn remove_member(doc: &str, obj: &Node, key: &str) -> String {
    let spans: Vec<(usize, usize)> = obj.members().iter().map(|m| (m.key_start, m.value.end)).collect();
    match obj.members().iter().position(|m| m.key == key) {
        Some(i) => remove_entry(doc, &spans, i),
        None => doc.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::import::value::{map, s};

    #[test]
    fn spans_and_keys() {
        let doc = r#" { "a" : [1, "x\"y", {"b": null}], "c\u0041": true } "#;
        let n = parse(doc).unwrap();
        assert_eq!(n.get("a").unwrap().items()[1].string(doc).unwrap(), "x\"y");
        assert_eq!(n.get("cA").unwrap().text(doc), "true");
        assert!(parse("{").is_err());
    }

    #[test]
    fn append_follows_the_layout() {
        let doc = "{\n  \"l\": [\n    1,\n    2\n  ]\n}";
        let n = parse(doc).unwrap();
        assert_eq!(append(doc, n.get("l").unwrap(), &Value::Number(3.into())), "{\n  \"l\": [\n    1,\n    2,\n    3\n  ]\n}");
        let doc = r#"{"l": [1, 2], "e": []}"#;
        let n = parse(doc).unwrap();
        assert_eq!(append(doc, n.get("l").unwrap(), &s("x")), r#"{"l": [1, 2, "x"], "e": []}"#);
        assert_eq!(append(doc, n.get("e").unwrap(), &map([("a", s("b"))])), r#"{"l": [1, 2], "e": [ { "a": "b" } ]}"#);
    }

    #[test]
    fn members_added_and_removed() {
        let doc = "{ \"a\": 1,\n  \"b\": 2 }";
        let n = parse(doc).unwrap();
        assert_eq!(add_member(doc, &n, "c", &s("x")), "{ \"a\": 1,\n  \"b\": 2,\n  \"c\": \"x\" }");
        assert_eq!(remove_member(doc, &n, "a"), "{ \"b\": 2 }");
        assert_eq!(remove_member(doc, &n, "b"), "{ \"a\": 1 }");
        let doc = r#"{"l": [ 7 ], "o": {}}"#;
        let n = parse(doc).unwrap();
        assert_eq!(remove_item(doc, n.get("l").unwrap(), 0), r#"{"l": [], "o": {}}"#);
        assert_eq!(add_member(doc, n.get("o").unwrap(), "k", &Value::Bool(true)), r#"{"l": [ 7 ], "o": { "k": true }}"#);
        let doc = "[1, 2, 3]";
        let n = parse(doc).unwrap();
        assert_eq!(remove_item(doc, &n, 1), "[1, 3]");
        assert_eq!(remove_item(doc, &n, 2), "[1, 2]");
    }

    #[test]
    fn long_values_are_broken_over_lines() {
        let long = map([("appId", s("1")), ("appKey", s(&"k".repeat(60))), ("appSecret", s(&"s".repeat(60)))]);
        let b = block(&long, 4);
        assert!(b.starts_with("{\n      \"appId\": \"1\",\n"), "{b}");
        assert!(b.ends_with("\n    }"), "{b}");
    }
}
