//! A document written as YAML in the style of the samples (block mappings, `- ` items indented under
//! their key, short lists and objects on one line in flow style, plain scalars where they read back as
//! the same string), for an Istio WasmPlugin's `pluginConfig`. What is written is read back and
//! compared before it is used, so a quoting mistake can never change a value.

use serde_yaml::Value;

const WIDTH: usize = 100;

/// The mapping `v` as YAML lines at indentation 0.
pub(crate) fn mapping(v: &Value) -> Result<String, String> {
    let mut out = String::new();
    match v {
        Value::Mapping(m) if !m.is_empty() => block_mapping(m, 0, &mut out),
        _ => return Err("pluginConfig must be a non-empty mapping".into()),
    }
    let back: serde_json::Value = serde_yaml::from_str(&out).map_err(|e| format!("the YAML written for pluginConfig does not parse: {e}"))?;
    let want: serde_json::Value = serde_json::to_value(v).map_err(|e| e.to_string())?;
    if back != want {
        return Err("the YAML written for pluginConfig does not read back as the document; edit the file by hand".into());
    }
    Ok(out)
}

fn block_mapping(m: &serde_yaml::Mapping, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for (k, v) in m {
        let key = scalar(k, false);
        let head = format!("{pad}{key}:");
        match v {
            Value::Mapping(inner) if !inner.is_empty() && !fits(&head, v) => {
                out.push_str(&head);
                out.push('\n');
                block_mapping(inner, indent + 2, out);
            }
            Value::Sequence(items) if !items.is_empty() && !fits(&head, v) => {
                out.push_str(&head);
                out.push('\n');
                block_sequence(items, indent + 2, out);
            }
            Value::Mapping(_) | Value::Sequence(_) => out.push_str(&format!("{head} {}\n", flow(v))),
            _ => out.push_str(&format!("{head} {}\n", scalar(v, false))),
        }
    }
}

fn block_sequence(items: &[Value], indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for v in items {
        match v {
            Value::Mapping(m) if !m.is_empty() && !fits(&format!("{pad}- "), v) => {
                // The first entry on the dash's line, the others under it.
                let mut inner = String::new();
                block_mapping(m, indent + 2, &mut inner);
                let first = inner.get(indent + 2..).unwrap_or_default();
                out.push_str(&format!("{pad}- {first}"));
            }
            Value::Sequence(s) if !s.is_empty() && !fits(&format!("{pad}- "), v) => {
                out.push_str(&format!("{pad}-\n"));
                block_sequence(s, indent + 2, out);
            }
            Value::Mapping(_) | Value::Sequence(_) => out.push_str(&format!("{pad}- {}\n", flow(v))),
            _ => out.push_str(&format!("{pad}- {}\n", scalar(v, false))),
        }
    }
}

/// One line in flow style: short lists of scalars, and small objects in a list (grants); an object
/// that is a key's value, and a list of objects, are blocks, as the samples write them.
fn fits(head: &str, v: &Value) -> bool {
    let shape = match v {
        Value::Mapping(m) => {
            head.trim_end().ends_with('-') && (2..=3).contains(&m.len()) && m.values().all(|x| !matches!(x, Value::Mapping(_) | Value::Sequence(_)))
        }
        Value::Sequence(s) => s.iter().all(|y| !matches!(y, Value::Mapping(_) | Value::Sequence(_))),
        _ => true,
    };
    shape && head.len() + 1 + flow(v).len() <= WIDTH
}

fn flow(v: &Value) -> String {
    match v {
        Value::Mapping(m) if m.is_empty() => "{}".into(),
        Value::Mapping(m) => format!("{{ {} }}", m.iter().map(|(k, v)| format!("{}: {}", scalar(k, true), flow(v))).collect::<Vec<_>>().join(", ")),
        Value::Sequence(s) => format!("[{}]", s.iter().map(flow).collect::<Vec<_>>().join(", ")),
        other => scalar(other, true),
    }
}

/// A scalar: plain when it reads back as the same string, else a JSON string (valid YAML).
fn scalar(v: &Value, in_flow: bool) -> String {
    match v {
        Value::String(s) => {
            let allowed = |c: char| c.is_ascii_alphanumeric() || "_./-".contains(c) || (!in_flow && "[]".contains(c));
            let plain = !s.is_empty()
                && !yaml11_special(s)
                && s.chars().all(allowed)
                && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '/' || c == '_')
                && serde_yaml::from_str::<Value>(s).ok().as_ref() == Some(v);
            if plain {
                s.clone()
            } else {
                serde_json::to_string(s).unwrap_or_default()
            }
        }
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Tagged(t) => scalar(&t.value, in_flow),
        Value::Mapping(_) | Value::Sequence(_) => flow(v),
    }
}

/// What a YAML 1.1 reader (Kubernetes, Istio) would take for a boolean, null or number, though YAML
/// 1.2 reads it as a string: `yes`, `off`, `1_000`, `1:20`, hex-looking AppCodes.
fn yaml11_special(s: &str) -> bool {
    const WORDS: &[&str] = &["y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"];
    let numeric =
        s.starts_with(|c: char| c.is_ascii_digit() || "+-.".contains(c)) && s.chars().all(|c| c.is_ascii_hexdigit() || "xXoO_.:+-".contains(c));
    WORDS.contains(&s.to_ascii_lowercase().as_str()) || numeric
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn samples_style() {
        let v: Value = serde_yaml::from_str(
            r#"{"stages": ["RELEASE", "TEST"], "signature": {"timestampToleranceSeconds": 900},
               "apps": [{"appId": 10001, "name": "demo", "appKey": "test-app-key-1", "appSecret": "s-1", "appCodes": ["3F25"]},
                        {"appId": "10002", "appKey": "k2", "appSecret": "yes"}],
               "apis": [{"name": "orders", "method": "GET", "path": "/orders/[orderId]", "authorizations": [{"appId": 10001, "stage": "RELEASE"}]}]}"#,
        )
        .unwrap();
        let y = mapping(&v).unwrap();
        assert!(
            y.starts_with("stages: [RELEASE, TEST]\nsignature:\n  timestampToleranceSeconds: 900\napps:\n  - appId: 10001\n    name: demo\n"),
            "{y}"
        );
        assert!(y.contains("appCodes: [\"3F25\"]"), "{y}");
        assert!(y.contains("  - { appId: \"10002\", appKey: k2, appSecret: \"yes\" }\n"), "{y}");
        assert!(
            y.contains(
                "  - name: orders\n    method: GET\n    path: /orders/[orderId]\n    authorizations:\n      - { appId: 10001, stage: RELEASE }\n"
            ),
            "{y}"
        );
    }
}
