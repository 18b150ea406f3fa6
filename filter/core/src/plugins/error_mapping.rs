//! Aliyun's errorMapping plugin (response phase): when `errorCondition` holds for a backend response,
//! its status becomes the mapping's (selected by the value of `errorCode`'s variable) or the
//! default's, and `X-Ca-Error-Message` carries the message. The body is kept. Only JSON bodies within
//! a bound are read.

use crate::plugins::access_control::{parse_variables, Variables};
use crate::plugins::conditions::{self, eval, json_lookup, substitute, Expr, Val, VarSource};
use crate::plugins::definition::{AliyunPlugin, Definition};
use crate::plugins::system::{self, Known, SystemValue};
use crate::schema::validator::{join, Validator};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Mapping {
    pub code: String,
    pub status: u16,
    pub message: Option<String>,
}

#[derive(Debug, Clone)]
pub struct MappingConfig {
    pub params: Variables,
    pub condition: Expr,
    /// Index of the variable whose value selects a mapping.
    pub code_var: Option<usize>,
    pub mappings: Vec<Mapping>,
    pub default: Option<Mapping>,
    pub max_body: usize,
    /// `errorCondition` reads the body: a response whose body was not read as JSON is not mapped.
    pub condition_reads_body: bool,
    /// The `System:` variables read from the request itself (`CaDomain`, …): kept at admission for
    /// the response phase, when the request is gone.
    pub captures: Vec<SystemValue>,
}

/// Largest backend body the plugin reads.
pub const DEFAULT_MAX_BODY: u64 = 64 * 1024;

fn mapping(c: &mut Validator, v: &Value, path: &str, need_code: bool) -> Option<Mapping> {
    let o = c.object(v, path, &["code", "statusCode", "errorMessage"])?;
    // Result codes are often numbers (`code: 1001` in YAML): matched as their text.
    let code = if need_code { c.id(o, path, "code", true)? } else { String::new() };
    let status = c.integer(o, path, "statusCode", 500, 100, 599) as u16;
    let message = c.string(o, path, "errorMessage", false).map(str::to_string);
    Some(Mapping { code, status, message })
}

impl AliyunPlugin for MappingConfig {
    const TYPE: &'static str = "errorMapping";

    fn parse(c: &mut Validator, data: &Value, def: &Definition<'_>) -> Option<Self> {
        let path = def.path;
        let o = c.object(data, path, &["parameters", "errorCondition", "errorCode", "mappings", "defaultMapping", "maxBodyBytes"])?;
        let params = parse_variables(c, o, path, true);
        let condition = match c.string(o, path, "errorCondition", true).map(|s| conditions::parse(s, &params.names)) {
            Some(Ok(e)) => e,
            Some(Err(e)) => {
                c.err(&join(path, "errorCondition"), e.to_string());
                return None;
            }
            None => return None,
        };
        let code_var = c.string(o, path, "errorCode", false).and_then(|name| {
            let i = params.names.iter().position(|n| n == name.trim_start_matches('$'));
            if i.is_none() {
                c.err(&join(path, "errorCode"), format!("{name} is not one of the parameters"));
            }
            i
        });
        let mappings =
            c.array(o, path, "mappings").iter().enumerate().filter_map(|(i, m)| mapping(c, m, &format!("{path}.mappings[{i}]"), true)).collect();
        let default = o.get("defaultMapping").and_then(|d| mapping(c, d, &join(path, "defaultMapping"), false));
        let max_body = c.integer(o, path, "maxBodyBytes", DEFAULT_MAX_BODY, 0, 1 << 24) as usize;
        let mut captures: Vec<SystemValue> = Vec::new();
        for l in &params.locations {
            if let VarSource::System(v) = l {
                if v.of_request() && !captures.contains(v) {
                    captures.push(*v);
                }
            }
        }
        let body_var = |i: usize| matches!(params.locations.get(i), Some(VarSource::BodyJsonField(_)));
        let condition_reads_body = condition.reads(&body_var);
        Some(MappingConfig { params, condition, code_var, mappings, default, max_body, condition_reads_body, captures })
    }
}

impl MappingConfig {
    /// Whether any variable needs the response body.
    pub fn reads_body(&self) -> bool {
        self.params.locations.iter().any(|l| matches!(l, VarSource::BodyJsonField(_)))
    }
}

/// What a response looks like to the plugin.
pub struct Response<'a> {
    pub status: u16,
    /// The host's view of the response (its headers).
    pub stream: &'a dyn crate::host::Stream,
    pub body: Option<&'a Value>,
    pub claims: Option<&'a serde_json::Map<String, Value>>,
    /// What is known of the request (`System:` variables), with what was captured of it at admission.
    pub system: &'a Known<'a>,
}

fn value(loc: &VarSource, r: &Response<'_>) -> Val {
    match loc {
        VarSource::StatusCode => Val::Num(r.status as f64),
        VarSource::Header(n) => r.stream.response_header(n).map_or(Val::Null, |v| Val::Str(String::from_utf8_lossy(&v).into_owned())),
        VarSource::BodyJsonField(p) => r.body.and_then(|b| json_lookup(b, p)).map_or(Val::Null, Val::from_json),
        VarSource::Token(n) => r.claims.and_then(|c| c.get(n)).map_or(Val::Null, Val::from_json),
        VarSource::System(v) => system::value(*v, r.system).map_or(Val::Null, Val::Str),
        _ => Val::Null,
    }
}

/// The new status and message, if the error condition holds.
pub fn apply(cfg: &MappingConfig, r: &Response<'_>) -> Option<(u16, Option<String>)> {
    let values: Vec<Val> = cfg.params.locations.iter().map(|l| value(l, r)).collect();
    let var = |i: usize| values.get(i).cloned().unwrap_or(Val::Null);
    let mut never_random = || 0.0;
    if !eval(&cfg.condition, &var, &mut never_random) {
        return None;
    }
    let selected = cfg.code_var.map(|i| var(i).to_string());
    let m = selected.and_then(|code| cfg.mappings.iter().find(|m| m.code == code)).or(cfg.default.as_ref())?;
    let message = m.message.as_ref().map(|t| crate::wire::text::header_safe(substitute(t, &cfg.params.names, &var).as_bytes()));
    Some((m.status, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> MappingConfig {
        let mut c = Validator::default();
        let data: Value = serde_yaml::from_str(
            r#"
parameters:
  statusCode: "StatusCode"
  resultCode: "BodyJsonField:$.result_code"
  resultId: "BodyJsonField:$.req_msg_id"
errorCondition: "$statusCode = 200 and $resultCode <> 'OK'"
errorCode: "resultCode"
mappings:
  - code: "ROLE_NOT_EXISTS"
    statusCode: 404
    errorMessage: "Role Not Exists, RequestId=${resultId}"
  - code: 1001
    statusCode: 409
defaultMapping:
  statusCode: 500
  errorMessage: "Unknown Error, ${resultCode}, RequestId=${resultId}"
"#,
        )
        .unwrap();
        let out = MappingConfig::parse(&mut c, &data, &Definition { name: "t", path: "m", app_ids: &[] }).unwrap();
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        out
    }

    fn nothing_known() -> Known<'static> {
        Known { seen: system::Seen::Captured(&[]), stream: &crate::host::NoStream, app: None, api: None, stage: None, request_id: "r" }
    }

    fn run(status: u16, body: Value) -> Option<(u16, Option<String>)> {
        apply(&cfg(), &Response { status, stream: &crate::host::NoStream, body: Some(&body), claims: None, system: &nothing_known() })
    }

    #[test]
    fn mapping_selection() {
        assert_eq!(run(200, serde_json::json!({"result_code": "OK"})), None);
        assert_eq!(run(500, serde_json::json!({"result_code": "X"})), None, "condition needs 200");
        assert_eq!(
            run(200, serde_json::json!({"result_code": "ROLE_NOT_EXISTS", "req_msg_id": "r-1"})),
            Some((404, Some("Role Not Exists, RequestId=r-1".into())))
        );
        assert_eq!(
            run(200, serde_json::json!({"result_code": "BOOM", "req_msg_id": 7})),
            Some((500, Some("Unknown Error, BOOM, RequestId=7".into())))
        );
        assert_eq!(run(200, serde_json::json!({"result_code": 1001})).map(|m| m.0), Some(409), "a numeric code, as pasted from YAML");
        assert_eq!(run(200, serde_json::json!({"result_code": "1001"})).map(|m| m.0), Some(409));
        assert!(cfg().reads_body());
        assert!(cfg().condition_reads_body);
    }

    #[test]
    fn a_condition_on_the_status_alone_does_not_need_the_body() {
        let mut c = Validator::default();
        let data = serde_json::json!({ "parameters": { "st": "StatusCode", "rc": "BodyJsonField:$.code" },
            "errorCondition": "$st = 502 or not ($st < 500)", "errorCode": "rc", "defaultMapping": { "statusCode": 503 } });
        let cfg = MappingConfig::parse(&mut c, &data, &Definition { name: "t", path: "m", app_ids: &[] }).unwrap();
        assert!(cfg.reads_body(), "the code is read from the body when there is one");
        assert!(!cfg.condition_reads_body);
    }

    #[test]
    fn request_locations_are_refused_in_the_response_phase() {
        let mut c = Validator::default();
        let data = serde_json::json!({ "parameters": { "q": "Query:x" }, "errorCondition": "$q = 1" });
        MappingConfig::parse(&mut c, &data, &Definition { name: "t", path: "m", app_ids: &[] });
        assert!(c.problems[0].to_string().contains("m.parameters.q: Query:x is not available in the response phase"));
    }

    /// `ErrorCode` would always be null here (errorMapping never sees the gateway's own answers, the
    /// only ones with a code): refused when the configuration loads, with the reason.
    #[test]
    fn error_code_loads_with_a_warning_and_is_always_null() {
        // Pasted Aliyun data loads; the gateway's own code is never on a response errorMapping sees.
        let mut c = Validator::default();
        let data = serde_json::json!({ "parameters": { "e": "ErrorCode", "st": "StatusCode" },
            "errorCondition": "$e <> null or $st = 418", "defaultMapping": { "statusCode": 503 } });
        let cfg = MappingConfig::parse(&mut c, &data, &Definition { name: "t", path: "m", app_ids: &[] }).unwrap();
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        let shown = c.warnings.join("\n");
        assert!(shown.contains("m.parameters.e") && shown.contains("ErrorCode is always null here"), "{shown}");
        let run = |status| apply(&cfg, &Response { status, stream: &crate::host::NoStream, body: None, claims: None, system: &nothing_known() });
        assert_eq!(run(500).map(|m| m.0), None, "$e is null: no mapping");
        assert_eq!(run(418).map(|m| m.0), Some(503));
    }

    /// `System:CaClientIp`, `CaAppKey`, `CaDomain`, `CaHttpSchema`, `CaClientUa` were accepted and
    /// always null in the response phase: the request-side ones are now captured at admission
    /// (`captures` lists exactly those), the others read from what the response phase knows.
    #[test]
    fn system_variables_have_values_in_the_response_phase() {
        let mut c = Validator::default();
        let data = serde_json::json!({
            "parameters": { "ip": "System:CaClientIp", "key": "System:CaAppKey", "dom": "System:CaDomain", "sch": "System:CaHttpSchema",
                            "ua": "System:CaClientUa", "ua2": "System:CaClientUa", "app": "System:CaAppId", "st": "StatusCode" },
            "errorCondition": "$st = 200",
            "defaultMapping": { "statusCode": 502, "errorMessage": "${ip}|${key}|${dom}|${sch}|${ua}|${app}" }
        });
        let cfg = MappingConfig::parse(&mut c, &data, &Definition { name: "t", path: "m", app_ids: &[] }).unwrap();
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        let mut captures = cfg.captures.clone();
        captures.sort_by_key(|v| v.name());
        assert_eq!(captures, [SystemValue::ClientUa, SystemValue::Domain, SystemValue::HttpSchema], "request-side ones, once each");
        let kept = [
            (SystemValue::Domain, "api.example.com".to_string()),
            (SystemValue::HttpSchema, "https".to_string()),
            (SystemValue::ClientUa, "ua/1".to_string()),
        ];
        let app = crate::apps::directory::App { id: "77".into(), name: "n".into(), key: "k77".into(), owner_id: String::new(), credentials: vec![] };
        let known = Known {
            seen: system::Seen::Captured(&kept),
            stream: &crate::host::FixedPeer("192.0.2.4:5555"),
            app: Some(&app),
            api: Some("thing"),
            stage: Some("RELEASE"),
            request_id: "r",
        };
        let r = Response { status: 200, stream: &crate::host::NoStream, body: None, claims: None, system: &known };
        assert_eq!(apply(&cfg, &r), Some((502, Some("192.0.2.4|k77|api.example.com|https|ua/1|77".into()))));
    }
}
