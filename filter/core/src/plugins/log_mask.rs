//! Aliyun's logMask plugin: masking rules for what the gateway logs. cagate's log is the access
//! record, which holds few client values: the record fields that carry a header a HEADER rule names
//! are masked there (and only there: the backend gets the value as sent). The record never holds the
//! query, a token or a body, so rules for those have nothing to mask.

use crate::plugins::definition::{AliyunPlugin, Definition};
use crate::schema::validator::{join, kind, Validator};
use serde_json::{Map, Value};

/// How a value is masked (Aliyun's `policy`): every character, or all but the first or last N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    All,
    KeepLeft(usize),
    KeepRight(usize),
}

/// Where a rule's parameters are (Aliyun's `location`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Location {
    Header,
    Query,
    Token,
    Body,
}

#[derive(Debug, Clone)]
pub struct LogMaskConfig {
    /// HEADER rules: lowercase header names and their policy (the first rule naming a header wins).
    headers: Vec<(String, Policy)>,
}

const RULE_FIELDS: &[&str] = &["name", "policy", "location", "parameters", "matchMode"];
/// A KEEP_LEFT / KEEP_RIGHT count above this keeps more than the record ever holds of a value.
const MAX_KEEP: usize = 1024;

fn policy(c: &mut Validator, path: &str, text: &str) -> Option<Policy> {
    let (kind, n) = match text.split_once(':') {
        Some((k, n)) => (k.trim(), Some(n.trim())),
        None => (text.trim(), None),
    };
    let count = |c: &mut Validator| match n.map(str::parse::<usize>) {
        Some(Ok(n)) if n <= MAX_KEEP => Some(n),
        _ => {
            c.err(path, format!("{kind} needs a count: {kind}:N, N a whole number from 0 to {MAX_KEEP}"));
            None
        }
    };
    match kind.to_ascii_uppercase().as_str() {
        "ALL" if n.is_none() => Some(Policy::All),
        "KEEP_LEFT" => count(c).map(Policy::KeepLeft),
        "KEEP_RIGHT" => count(c).map(Policy::KeepRight),
        _ => {
            c.err(path, format!("unknown policy {text}: ALL, KEEP_LEFT:N or KEEP_RIGHT:N"));
            None
        }
    }
}

fn location(c: &mut Validator, path: &str, text: &str) -> Option<Location> {
    Some(match text.to_ascii_uppercase().as_str() {
        "HEADER" => Location::Header,
        "QUERY" => Location::Query,
        "TOKEN" => Location::Token,
        "BODY" => Location::Body,
        _ => {
            c.err(path, format!("unknown location {text}: HEADER, QUERY, TOKEN or BODY"));
            return None;
        }
    })
}

/// `parameters`: a list of names, or one string of names separated by commas (as Aliyun's console
/// takes them).
fn parameters(c: &mut Validator, o: &Map<String, Value>, path: &str) -> Vec<String> {
    let p = join(path, "parameters");
    let names: Vec<String> = match o.get("parameters") {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::String(s)) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect(),
        Some(Value::Array(_)) => c.strings(o, path, "parameters").unwrap_or_default().into_iter().map(str::to_string).collect(),
        Some(v) => {
            c.err(&p, format!("must be a list of names or a comma-separated string, not {}", kind(v)));
            return Vec::new();
        }
    };
    if names.is_empty() {
        c.err(&p, "names no parameter");
    }
    names
}

impl AliyunPlugin for LogMaskConfig {
    const TYPE: &'static str = "logMask";

    fn parse(c: &mut Validator, data: &Value, def: &Definition<'_>) -> Option<Self> {
        let path = def.path;
        let o = c.object(data, path, &["maskRules"])?;
        let rules = c.array(o, path, "maskRules");
        if rules.is_empty() {
            c.err(&join(path, "maskRules"), "needs at least one rule");
        }
        let mut cfg = LogMaskConfig { headers: Vec::new() };
        let mut names: Vec<&str> = Vec::new();
        for (i, v) in rules.iter().enumerate() {
            let rp = format!("{}[{i}]", join(path, "maskRules"));
            let Some(r) = c.object(v, &rp, RULE_FIELDS) else { continue };
            if let Some(name) = c.string(r, &rp, "name", true) {
                if names.contains(&name) {
                    c.err(&join(&rp, "name"), format!("duplicate rule name {name}"));
                }
                names.push(name);
            }
            let pol = c.string(r, &rp, "policy", false).map_or(Some(Policy::All), |t| policy(c, &join(&rp, "policy"), t));
            let loc = c.string(r, &rp, "location", true).and_then(|t| location(c, &join(&rp, "location"), t));
            let params = parameters(c, r, &rp);
            if r.contains_key("matchMode") {
                let _ = c.string(r, &rp, "matchMode", false);
                c.warn(&join(&rp, "matchMode"), "accepted; the access record holds no body, so there is nothing to match");
            }
            match loc {
                Some(Location::Body) => {}
                Some(_) if params.is_empty() && !r.contains_key("parameters") => c.err(&join(&rp, "parameters"), "is required for this location"),
                _ => {}
            }
            let (Some(pol), Some(Location::Header)) = (pol, loc) else { continue };
            for (j, name) in params.iter().enumerate() {
                if c.header_name(&format!("{}[{j}]", join(&rp, "parameters")), name) {
                    let lower = name.to_ascii_lowercase();
                    if !cfg.headers.iter().any(|(n, _)| *n == lower) {
                        cfg.headers.push((lower, pol));
                    }
                }
            }
        }
        Some(cfg)
    }
}

impl LogMaskConfig {
    /// The policy for a request header (`name` lowercase), if a rule names it.
    pub(crate) fn header(&self, name: &str) -> Option<Policy> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, p)| *p)
    }
}

impl Policy {
    /// Whether the `i`th of `len` characters is masked.
    pub(crate) fn masks(self, i: usize, len: usize) -> bool {
        match self {
            Policy::All => true,
            Policy::KeepLeft(n) => i >= n,
            Policy::KeepRight(n) => i + n < len,
        }
    }

    /// A value masked (`*` for each masked character).
    #[cfg(test)]
    pub(crate) fn apply(self, value: &str) -> String {
        let len = value.chars().count();
        value.chars().enumerate().map(|(i, ch)| if self.masks(i, len) { '*' } else { ch }).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(data: Value) -> (Option<LogMaskConfig>, Vec<String>, Vec<String>) {
        let mut c = Validator::default();
        let def = Definition { name: "m", path: "plugins[0].data", app_ids: &[] };
        let cfg = LogMaskConfig::parse(&mut c, &data, &def);
        (cfg, c.problems.iter().map(ToString::to_string).collect(), c.warnings)
    }

    #[test]
    fn policies_mask_as_aliyun_documents() {
        assert_eq!(Policy::All.apply("123456"), "******");
        assert_eq!(Policy::KeepLeft(3).apply("123456"), "123***");
        assert_eq!(Policy::KeepRight(3).apply("123456"), "***456");
        assert_eq!(Policy::KeepLeft(9).apply("12"), "12");
        assert_eq!(Policy::KeepRight(0).apply("中文ab"), "****");
        assert_eq!(Policy::All.apply(""), "");
    }

    #[test]
    fn header_rules_are_kept_by_lowercase_name() {
        let (cfg, errs, warns) = parse(serde_json::json!({"maskRules": [
            {"name": "nonce", "policy": "KEEP_LEFT:4", "location": "HEADER", "parameters": ["X-Ca-Nonce", "X-Request-Id"]},
            {"name": "again", "policy": "ALL", "location": "header", "parameters": "x-ca-nonce, X-Ca-Key"},
            {"name": "q", "policy": "ALL", "location": "QUERY", "parameters": "phone"},
            {"name": "b", "policy": "ALL", "location": "BODY", "matchMode": "EMAIL"}
        ]}));
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(warns, ["plugins[0].data.maskRules[3].matchMode: accepted; the access record holds no body, so there is nothing to match"]);
        let cfg = cfg.unwrap();
        assert_eq!(cfg.header("x-ca-nonce"), Some(Policy::KeepLeft(4)));
        assert_eq!(cfg.header("x-request-id"), Some(Policy::KeepLeft(4)));
        assert_eq!(cfg.header("x-ca-key"), Some(Policy::All));
        assert_eq!(cfg.header("phone"), None);
    }

    #[test]
    fn a_missing_policy_masks_everything() {
        let (cfg, errs, _) = parse(serde_json::json!({"maskRules": [{"name": "n", "location": "HEADER", "parameters": ["x-ca-nonce"]}]}));
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(cfg.unwrap().header("x-ca-nonce"), Some(Policy::All));
    }

    #[test]
    fn bad_rules_are_refused_with_their_path() {
        let (_, errs, _) = parse(serde_json::json!({"maskRules": [
            {"name": "a", "policy": "KEEP_LEFT", "location": "HEADER", "parameters": ["x"]},
            {"name": "a", "policy": "HASH", "location": "COOKIE", "parameters": ["x"], "extra": 1},
            {"name": "c", "policy": "KEEP_RIGHT:x", "location": "QUERY"},
            {"name": "d", "location": "HEADER", "parameters": ["bad name"]},
            {"name": "e", "location": "QUERY", "parameters": 3}
        ], "other": true}));
        let want = [
            "plugins[0].data.other: unknown field",
            "plugins[0].data.maskRules[0].policy: KEEP_LEFT needs a count: KEEP_LEFT:N, N a whole number from 0 to 1024",
            "plugins[0].data.maskRules[1].extra: unknown field",
            "plugins[0].data.maskRules[1].name: duplicate rule name a",
            "plugins[0].data.maskRules[1].policy: unknown policy HASH: ALL, KEEP_LEFT:N or KEEP_RIGHT:N",
            "plugins[0].data.maskRules[1].location: unknown location COOKIE: HEADER, QUERY, TOKEN or BODY",
            "plugins[0].data.maskRules[2].policy: KEEP_RIGHT needs a count: KEEP_RIGHT:N, N a whole number from 0 to 1024",
            "plugins[0].data.maskRules[2].parameters: is required for this location",
            "plugins[0].data.maskRules[3].parameters[0]: \"bad name\" is not a header name",
            "plugins[0].data.maskRules[4].parameters: must be a list of names or a comma-separated string, not a number",
        ];
        assert_eq!(errs, want);
    }

    #[test]
    fn at_least_one_rule() {
        let (_, errs, _) = parse(serde_json::json!({}));
        assert_eq!(errs, ["plugins[0].data.maskRules: needs at least one rule"]);
    }
}
