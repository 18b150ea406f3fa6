//! Where the cagate document sits in a file, and how an edited document is put back: the whole JSON
//! file; a JSON string inside an Envoy JSON file; a YAML block scalar (`value: |`) of an Envoy
//! bootstrap or EnvoyFilter; an Istio WasmPlugin's `pluginConfig` block. Only that span of the file
//! changes: YAML comments and layout around it stay byte for byte.

use super::jsontext::{self, Node};
use super::yaml_emit;
use serde_json::Value as Json;

/// How the document is held in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Holder {
    /// The file's bytes `start..end` are the JSON document itself.
    Json { start: usize, end: usize },
    /// The bytes are a JSON string literal holding the document.
    JsonString { start: usize, end: usize },
    /// Whole lines `start..end` of a YAML literal block scalar, indented `indent` spaces.
    Block { start: usize, end: usize, indent: usize },
    /// Whole lines `start..end` of a YAML mapping (WasmPlugin `pluginConfig`), indented `indent`.
    Mapping { start: usize, end: usize, indent: usize },
}

/// One document found in a file: where, as JSON text (what the edits work on).
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub(crate) label: String,
    pub(crate) holder: Holder,
    pub(crate) json: String,
    /// The block held YAML comments, which a rewritten mapping cannot keep.
    pub(crate) comments: bool,
}

const STRING_VALUE: &str = "google.protobuf.StringValue";

/// Every cagate document in `text`: the top of a JSON file that is one, else the Envoy Wasm filter
/// configurations and Istio pluginConfigs inside it.
pub(crate) fn locate(text: &str) -> Result<Vec<Found>, String> {
    if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
        let root = jsontext::parse(text)?;
        let mut out = Vec::new();
        walk_json(text, &root, "", &mut out);
        if out.is_empty() && (root.get("apis").is_some() || root.get("apps").is_some() || root.get("authorizations").is_some()) {
            out.push(Found {
                label: "(document)".into(),
                holder: Holder::Json { start: root.start, end: root.end },
                json: root.text(text).into(),
                comments: false,
            });
        }
        return Ok(out);
    }
    locate_yaml(text)
}

fn walk_json(text: &str, n: &Node, path: &str, out: &mut Vec<Found>) {
    let is_string_value = n.get("@type").and_then(|t| t.string(text)).is_some_and(|t| t.ends_with(STRING_VALUE));
    if let (true, Some(v)) = (is_string_value, n.get("value")) {
        if let Some(json) = v.string(text) {
            out.push(Found { label: format!("{path}.value"), holder: Holder::JsonString { start: v.start, end: v.end }, json, comments: false });
            return;
        }
    }
    if let Some(pc) = n.get("pluginConfig") {
        out.push(Found {
            label: format!("{path}.pluginConfig"),
            holder: Holder::Json { start: pc.start, end: pc.end },
            json: pc.text(text).into(),
            comments: false,
        });
        return;
    }
    for m in n.members() {
        walk_json(text, &m.value, &format!("{path}.{}", m.key), out);
    }
    for (i, item) in n.items().iter().enumerate() {
        walk_json(text, item, &format!("{path}[{i}]"), out);
    }
}

/// What YAML parsing finds, to confirm what the line scan finds: StringValue texts and pluginConfigs.
fn parsed_yaml(text: &str) -> Result<(Vec<String>, Vec<Json>), String> {
    let (mut strings, mut configs) = (Vec::new(), Vec::new());
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let v: Json = serde::Deserialize::deserialize(doc)
            .map_err(|e| format!("YAML document {i} does not parse{}", e.location().map_or(String::new(), |l| format!(" (line {})", l.line()))))?;
        collect(&v, &mut strings, &mut configs);
    }
    Ok((strings, configs))
}

fn collect(v: &Json, strings: &mut Vec<String>, configs: &mut Vec<Json>) {
    match v {
        Json::Object(m) => {
            if let (Some(Json::String(t)), Some(Json::String(value))) = (m.get("@type"), m.get("value")) {
                if t.ends_with(STRING_VALUE) {
                    strings.push(value.clone());
                    return;
                }
            }
            if let Some(pc) = m.get("pluginConfig") {
                configs.push(pc.clone());
                return;
            }
            m.values().for_each(|c| collect(c, strings, configs));
        }
        Json::Array(a) => a.iter().for_each(|c| collect(c, strings, configs)),
        _ => {}
    }
}

/// Lines with their byte offsets (each line's text without its newline).
fn lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut at = 0;
    for l in text.split_inclusive('\n') {
        out.push((at, l.trim_end_matches('\n').trim_end_matches('\r')));
        at += l.len();
    }
    out
}

fn indent_of(l: &str) -> usize {
    l.len() - l.trim_start_matches(' ').len()
}

/// The child lines of the key on line `k` (indented deeper than it): first index, end index (blank
/// and comment lines at the end left out), and their indentation.
fn child_block(ls: &[(usize, &str)], k: usize) -> Option<(usize, usize, usize)> {
    let parent = indent_of(ls[k].1) + if ls[k].1.trim_start().starts_with("- ") { 2 } else { 0 };
    let first = (k + 1..ls.len()).find(|&i| !ls[i].1.trim().is_empty())?;
    let indent = indent_of(ls[first].1);
    if indent <= parent && !ls[first].1.trim_start().starts_with('#') {
        return None;
    }
    let mut end = first;
    for (i, (_, l)) in ls.iter().enumerate().skip(first) {
        if l.trim().is_empty() {
            continue;
        }
        if indent_of(l) < indent {
            break;
        }
        end = i + 1;
    }
    Some((first, end, indent))
}

/// The key and the rest of a `key: rest` line (`- key: rest` too).
fn key_line(l: &str) -> Option<(&str, &str)> {
    let t = l.trim_start().trim_start_matches("- ");
    let (k, rest) = t.split_once(':')?;
    let k = k.trim().trim_matches('"').trim_matches('\'');
    Some((k, rest.trim()))
}

fn locate_yaml(text: &str) -> Result<Vec<Found>, String> {
    let (strings, configs) = parsed_yaml(text)?;
    let ls = lines(text);
    let mut out = Vec::new();
    for k in 0..ls.len() {
        let Some((key, rest)) = key_line(ls[k].1) else { continue };
        let rest = rest.split(" #").next().unwrap_or_default().trim();
        let byte = |i: usize| ls.get(i).map_or(text.len(), |l| l.0);
        if key == "value" && rest.starts_with('|') {
            let Some((first, end, indent)) = child_block(&ls, k) else { continue };
            let content: Vec<&str> = ls[first..end].iter().map(|(_, l)| l.get(indent..).unwrap_or_default()).collect();
            let content = content.join("\n");
            if !strings.iter().any(|s| s.trim_end() == content.trim_end()) {
                continue;
            }
            if rest.len() > 1 && rest[1..].trim_start_matches(['-', '+']).chars().next().is_some_and(|c| c.is_ascii_digit()) {
                return Err(format!("line {}: a block scalar with an indentation indicator ({rest}) is not supported; write `value: |`", k + 1));
            }
            out.push(Found {
                label: format!("line {}", k + 1),
                holder: Holder::Block { start: byte(first), end: end_byte(text, &ls, end), indent },
                json: content,
                comments: false,
            });
        } else if key == "pluginConfig" && rest.is_empty() {
            let Some((first, end, indent)) = child_block(&ls, k) else { continue };
            let block: Vec<&str> = ls[first..end].iter().map(|(_, l)| l.get(indent.min(indent_of(l)).min(l.len())..).unwrap_or_default()).collect();
            let comments = ls[first..end].iter().any(|(_, l)| l.trim_start().starts_with('#') || l.contains(" #"));
            let parsed: Json = serde_yaml::from_str(&block.join("\n")).map_err(|e| format!("line {}: pluginConfig: {e}", k + 1))?;
            if !configs.contains(&parsed) {
                continue;
            }
            let ordered: serde_yaml::Value = serde_yaml::from_str(&block.join("\n")).map_err(|e| format!("line {}: pluginConfig: {e}", k + 1))?;
            let json = jsontext::block(&ordered, 0);
            out.push(Found {
                label: format!("line {} (pluginConfig)", k + 1),
                holder: Holder::Mapping { start: byte(first), end: end_byte(text, &ls, end), indent },
                json,
                comments,
            });
        }
    }
    let found_strings = out.iter().filter(|f| matches!(f.holder, Holder::Block { .. })).count();
    let found_configs = out.len() - found_strings;
    if found_strings < strings.len() || found_configs < configs.len() {
        return Err(format!(
            "{} cagate configuration(s) in this file are not written as `value: |` block scalars or `pluginConfig:` blocks; only those can be edited in place",
            strings.len() + configs.len() - out.len()
        ));
    }
    Ok(out)
}

/// The byte just after line `end - 1`'s newline (or the end of the text).
fn end_byte(text: &str, ls: &[(usize, &str)], end: usize) -> usize {
    ls.get(end).map_or(text.len(), |l| l.0)
}

/// `text` with the document `found` replaced by `json` (the edited document, JSON).
pub(crate) fn put_back(text: &str, found: &Found, json: &str) -> Result<String, String> {
    let splice =
        |start: usize, end: usize, with: &str| format!("{}{with}{}", text.get(..start).unwrap_or_default(), text.get(end..).unwrap_or_default());
    let pad_lines = |body: &str, indent: usize| -> String {
        body.lines().map(|l| if l.is_empty() { "\n".to_string() } else { format!("{}{l}\n", " ".repeat(indent)) }).collect()
    };
    Ok(match found.holder {
        Holder::Json { start, end } => splice(start, end, json),
        Holder::JsonString { start, end } => splice(start, end, &serde_json::to_string(json).map_err(|e| e.to_string())?),
        Holder::Block { start, end, indent } => {
            // The original ended its last line with a newline unless it was the end of the file.
            let mut body = pad_lines(json.trim_end(), indent);
            if !text.get(..end).unwrap_or_default().ends_with('\n') {
                body.pop();
            }
            splice(start, end, &body)
        }
        Holder::Mapping { start, end, indent } => {
            let value: serde_yaml::Value = serde_yaml::from_str(json).map_err(|e| format!("the edited document: {e}"))?;
            let yaml = yaml_emit::mapping(&value)?;
            let mut body = pad_lines(&yaml, indent);
            if !text.get(..end).unwrap_or_default().ends_with('\n') {
                body.pop();
            }
            splice(start, end, &body)
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ENVOY: &str = "# top comment\nstatic_resources:\n  listeners:\n  - filters:\n    - typed_config:\n        configuration:\n          \"@type\": type.googleapis.com/google.protobuf.StringValue\n          # the document\n          value: |\n            {\n              \"apps\": [],\n              \"apis\": []\n            }\n        # after\n  clusters: []   # kept\n";

    #[test]
    fn block_scalar_is_found_and_only_its_lines_change() {
        let f = locate(ENVOY).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].json, "{\n  \"apps\": [],\n  \"apis\": []\n}");
        let out = put_back(ENVOY, &f[0], "{\n  \"apps\": [1],\n  \"apis\": []\n}").unwrap();
        assert_eq!(out, ENVOY.replace("\"apps\": []", "\"apps\": [1]"));
        let Holder::Block { start, end, .. } = f[0].holder else { panic!() };
        assert_eq!(&out[..start], &ENVOY[..start]);
        assert_eq!(&out[out.len() - (ENVOY.len() - end)..], &ENVOY[end..]);
    }

    #[test]
    fn plugin_config_is_rewritten_in_place() {
        let wp = "apiVersion: x\nkind: WasmPlugin\nspec:\n  url: oci://r/c\n  pluginConfig:\n    # the apps\n    apps:\n      - { appId: 1, appKey: k, appSecret: s }\n    apis: []\n  phase: AUTHN # kept\n";
        let f = locate(wp).unwrap();
        assert_eq!(f.len(), 1);
        assert!(f[0].comments);
        let v: Json = serde_json::from_str(&f[0].json).unwrap();
        assert_eq!(v["apps"][0]["appKey"], "k");
        let out = put_back(
            wp,
            &f[0],
            r#"{"apps": [{"appId": 1, "appKey": "k", "appSecret": "s"}, {"appId": "2", "appKey": "k2", "appSecret": "s2"}], "apis": []}"#,
        )
        .unwrap();
        assert!(out.starts_with("apiVersion: x\nkind: WasmPlugin\nspec:\n  url: oci://r/c\n  pluginConfig:\n    apps:\n"), "{out}");
        assert!(out.ends_with("    apis: []\n  phase: AUTHN # kept\n"), "{out}");
        let again = locate(&out).unwrap();
        let v: Json = serde_json::from_str(&again[0].json).unwrap();
        assert_eq!(v["apps"][1]["appId"], "2");
    }

    #[test]
    fn the_samples_read_back_unchanged() {
        for sample in [
            include_str!("../../../../envoy/istio/wasmplugin.yaml"),
            include_str!("../../../../envoy/envoy.yaml"),
            include_str!("../../../../envoy/istio/envoyfilter.yaml"),
        ] {
            let f = locate(sample).unwrap();
            assert_eq!(f.len(), 1);
            assert_eq!(put_back(sample, &f[0], &f[0].json).unwrap(), sample);
        }
    }

    #[test]
    fn json_files() {
        let doc = r#"{"apps": [], "apis": []}"#;
        assert_eq!(locate(doc).unwrap()[0].holder, Holder::Json { start: 0, end: doc.len() });
        let envoy = r#"{"x": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": "{\"apps\": []}"}}"#;
        let f = locate(envoy).unwrap();
        assert_eq!(f[0].json, r#"{"apps": []}"#);
        let out = put_back(envoy, &f[0], r#"{"apps": [1]}"#).unwrap();
        assert_eq!(out, envoy.replace(r#"[]}"#, r#"[1]}"#));
    }

    #[test]
    fn quoted_values_are_refused() {
        let y = "c:\n  \"@type\": type.googleapis.com/google.protobuf.StringValue\n  value: '{\"apps\": []}'\n";
        assert!(locate(y).unwrap_err().contains("block scalar"));
    }
}
