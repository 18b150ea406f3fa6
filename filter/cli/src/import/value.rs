//! Documents as `serde_yaml::Value`: its mappings keep the order keys were written in, both when a
//! JSON or YAML file is read and when the result is written as JSON, so the output follows the
//! Swagger document's order of operations.

use serde_yaml::{Mapping, Value};

/// Parses JSON (strictly, first) or YAML. Merge keys (`<<`) are applied.
pub(crate) fn parse(text: &str) -> Result<Value, String> {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return Ok(v);
    }
    let mut v: Value = serde_yaml::from_str(text).map_err(|e| {
        let at = e.location().map(|l| format!(" (line {}, column {})", l.line(), l.column())).unwrap_or_default();
        format!("neither JSON nor YAML{at}")
    })?;
    v.apply_merge().map_err(|e| format!("YAML merge keys: {e}"))?;
    Ok(v)
}

/// A mapping from pairs, in their order.
pub(crate) fn map<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    let mut m = Mapping::new();
    for (k, v) in pairs {
        m.insert(s(k), v);
    }
    Value::Mapping(m)
}

pub(crate) fn s(text: &str) -> Value {
    Value::String(text.to_string())
}

/// A mapping key as text (YAML allows numbers and booleans as keys: `200:`).
pub(crate) fn key_text(k: &Value) -> Option<String> {
    scalar_text(k)
}

/// A scalar's text: strings as they are, numbers and booleans as written.
pub(crate) fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(t) => Some(t.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A whole number, written as a number or as a numeric string (`timeout: "10000"` is common).
pub(crate) fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64)),
        Value::String(t) => t.trim().parse().ok(),
        _ => None,
    }
}

/// A boolean, written as one or as the string `true` / `false` (any case).
pub(crate) fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(t) if t.eq_ignore_ascii_case("true") => Some(true),
        Value::String(t) if t.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// The document as pretty JSON, keys in mapping order.
pub(crate) fn to_json(v: &Value) -> Result<String, String> {
    serde_json::to_string_pretty(v).map_err(|e| format!("cannot write JSON: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keeps_order_and_reads_both_syntaxes() {
        let j = parse(r#"{"zeta": 1, "alpha": {"b": 2, "a": [true, "x"]}}"#).unwrap();
        assert_eq!(to_json(&j).unwrap().replace([' ', '\n'], ""), r#"{"zeta":1,"alpha":{"b":2,"a":[true,"x"]}}"#);
        let y = parse("zeta: 1\nalpha:\n  b: 2\n  200: {description: OK}\nbase: &b {k: v}\nuse:\n  <<: *b\n").unwrap();
        let keys: Vec<String> = y.as_mapping().unwrap().keys().filter_map(key_text).collect();
        assert_eq!(keys, ["zeta", "alpha", "base", "use"]);
        assert_eq!(y["use"]["k"], s("v"));
        assert!(parse("a: [unclosed").unwrap_err().contains("line"));
    }

    #[test]
    fn lenient_scalars() {
        assert_eq!(integer(&s("10000")), Some(10000));
        assert_eq!(integer(&serde_yaml::from_str::<Value>("3000.0").unwrap()), Some(3000));
        assert_eq!(integer(&s("ten")), None);
        assert_eq!(boolean(&s("TRUE")), Some(true));
        assert_eq!(boolean(&Value::Bool(false)), Some(false));
        assert_eq!(scalar_text(&serde_yaml::from_str::<Value>("2.0").unwrap()).as_deref(), Some("2.0"));
    }
}
