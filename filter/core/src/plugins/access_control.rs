//! Aliyun's accessControl plugin: ordered rules over the request's parameters; `ALLOW` admits at once,
//! `DENY` refuses at once (`A403AC`, or the rule's own status, message, headers and body). A rule
//! may also assert that a parameter's value is in a plugin dataset (`assertParameterName`,
//! `assertInDataset`): the rule holds when its condition (if any) holds and the value is a live entry.

use crate::plugins::conditions::{self, Expr, VarSource};
use crate::plugins::definition::{AliyunPlugin, Definition};
use crate::schema::validator::{join, Validator};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub condition: Expr,
    pub if_true: Option<Verdict>,
    pub if_false: Option<Verdict>,
    pub status: u16,
    pub error_message: Option<String>,
    pub response_headers: Vec<(String, String)>,
    pub response_body: Option<String>,
    /// `assertParameterName` / `assertInDataset`: the parameter (index into `params`), the dataset id
    /// and the field's path.
    pub assert: Option<Assert>,
}

#[derive(Debug, Clone)]
pub struct Assert {
    pub var: usize,
    pub dataset: String,
    pub path: String,
}

/// Named variables and where they come from (shared by accessControl and errorMapping).
#[derive(Debug, Clone, Default)]
pub struct Variables {
    pub names: Vec<String>,
    pub locations: Vec<VarSource>,
}

#[derive(Debug, Clone)]
pub struct AccessConfig {
    pub params: Variables,
    pub rules: Vec<Rule>,
}

impl AccessConfig {
    /// The datasets the rules read, with the path of the field naming each.
    pub(crate) fn dataset_refs(&self) -> Vec<(&str, &str)> {
        self.rules.iter().filter_map(|r| r.assert.as_ref()).map(|a| (a.dataset.as_str(), a.path.as_str())).collect()
    }
}

/// `assertParameterName` and `assertInDataset`, given together.
fn assertion(c: &mut Validator, ro: &Map<String, Value>, rp: &str, params: &Variables) -> Option<Assert> {
    let name = c.string(ro, rp, "assertParameterName", false);
    let dataset = c.id(ro, rp, "assertInDataset", false);
    match (name, dataset) {
        (None, None) => None,
        (Some(n), Some(dataset)) => match params.names.iter().position(|p| p == n) {
            Some(var) => Some(Assert { var, dataset, path: join(rp, "assertInDataset") }),
            None => {
                c.err(&join(rp, "assertParameterName"), format!("unknown parameter {n}: not in parameters"));
                None
            }
        },
        (Some(_), None) => {
            c.err(&join(rp, "assertInDataset"), "is required with assertParameterName");
            None
        }
        (None, Some(_)) => {
            c.err(&join(rp, "assertParameterName"), "is required with assertInDataset");
            None
        }
    }
}

/// Parses `parameters` (name -> location); `response` says which phase the plugin runs in.
pub(crate) fn parse_variables(c: &mut Validator, o: &Map<String, Value>, path: &str, response: bool) -> Variables {
    let mut p = Variables::default();
    let Some(v) = o.get("parameters") else { return p };
    let Some(m) = v.as_object() else {
        c.err(&join(path, "parameters"), "must be an object of name: location");
        return p;
    };
    for (name, loc) in m {
        let lp = format!("{}.{name}", join(path, "parameters"));
        let Some(text) = loc.as_str() else {
            c.err(&lp, "must be a location string such as Header:X-User or Token:sub");
            continue;
        };
        match VarSource::parse(text) {
            Ok(l) if response && l.request_only() => c.err(&lp, format!("{text} is not available in the response phase")),
            Ok(l) if !response && l.response_only() => c.err(&lp, format!("{text} is only available in the response phase")),
            Ok(l) => {
                if l == VarSource::ErrorCode {
                    c.warn(&lp, crate::plugins::conditions::ERROR_CODE_IS_NULL);
                }
                p.names.push(name.clone());
                p.locations.push(l);
            }
            Err(e) => c.err(&lp, e),
        }
    }
    p
}

fn verdict(c: &mut Validator, o: &Map<String, Value>, path: &str, key: &str) -> Option<Verdict> {
    match c.string(o, path, key, false)? {
        "ALLOW" => Some(Verdict::Allow),
        "DENY" => Some(Verdict::Deny),
        other => {
            c.err(&join(path, key), format!("{other}: ALLOW or DENY"));
            None
        }
    }
}

const RULE_FIELDS: [&str; 10] = [
    "name",
    "condition",
    "ifTrue",
    "ifFalse",
    "statusCode",
    "errorMessage",
    "responseHeaders",
    "responseBody",
    "assertParameterName",
    "assertInDataset",
];

impl AliyunPlugin for AccessConfig {
    const TYPE: &'static str = "accessControl";

    fn parse(c: &mut Validator, data: &Value, def: &Definition<'_>) -> Option<Self> {
        let path = def.path;
        let o = c.object(data, path, &["parameters", "rules"])?;
        let params = parse_variables(c, o, path, false);
        let mut rules = Vec::new();
        for (i, r) in c.array(o, path, "rules").iter().enumerate() {
            let rp = format!("{path}.rules[{i}]");
            let Some(ro) = c.object(r, &rp, &RULE_FIELDS) else {
                continue;
            };
            let name = c.string(ro, &rp, "name", true).unwrap_or_default().to_string();
            let rule_label = format!("{rp} (rule {name})");
            let assert = assertion(c, ro, &rp, &params);
            // With an assertion the condition may be left out: the assertion alone decides.
            let needs_condition = !ro.contains_key("assertInDataset");
            let condition = match c.string(ro, &rp, "condition", needs_condition).map(|s| conditions::parse(s, &params.names)) {
                Some(Ok(e)) => Some(e),
                Some(Err(e)) => {
                    c.err(&join(&rule_label, "condition"), e.to_string());
                    None
                }
                None if !needs_condition => Some(Expr::Truthy(conditions::Operand::Lit(conditions::Val::Bool(true)))),
                None => None,
            };
            let if_true = verdict(c, ro, &rp, "ifTrue");
            let if_false = verdict(c, ro, &rp, "ifFalse");
            if if_true.is_none() && if_false.is_none() && ro.get("ifTrue").is_none() && ro.get("ifFalse").is_none() {
                c.err(&rule_label, "needs ifTrue or ifFalse");
            }
            let status = c.integer(ro, &rp, "statusCode", 403, 200, 599) as u16;
            let error_message = c.string(ro, &rp, "errorMessage", false).map(str::to_string);
            let mut response_headers = Vec::new();
            if let Some(h) = ro.get("responseHeaders") {
                match h.as_object() {
                    Some(m) => {
                        for (k, v) in m {
                            match v.as_str() {
                                Some(s) if k.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)) => {
                                    if c.header_value(&format!("{rp}.responseHeaders.{k}"), s) {
                                        response_headers.push((k.to_ascii_lowercase(), s.to_string()))
                                    }
                                }
                                _ => c.err(&format!("{rp}.responseHeaders.{k}"), "must be a header name with a string value"),
                            }
                        }
                    }
                    None => c.err(&join(&rp, "responseHeaders"), "must be an object of header: value"),
                }
            }
            let response_body = c.string(ro, &rp, "responseBody", false).map(str::to_string);
            if let Some(condition) = condition {
                rules.push(Rule { name, condition, if_true, if_false, status, error_message, response_headers, response_body, assert });
            }
        }
        Some(AccessConfig { params, rules })
    }
}
