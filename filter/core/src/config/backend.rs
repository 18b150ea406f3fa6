//! An API's backend, as Aliyun defines it: an HTTP service (an Envoy cluster, per stage through stage
//! variables `#name#`, a path with `[param]` segments, a method, a timeout, a host) or a mock answer;
//! the request mode of parameter mapping; constant and system parameters.

use crate::config::parameters::ParamLocation;
use crate::config::router::Segment;
use crate::plugins::system::SystemValue;
use crate::schema::validator::{join, Validator};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Aliyun's parameter mapping rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequestMode {
    /// Path parameters are mapped; everything else reaches the backend as sent.
    #[default]
    Passthrough,
    /// Only declared parameters reach the backend, under their backend names and locations.
    Mapping,
    /// Declared parameters are mapped, undeclared ones passed on.
    MappingPassthrough,
}

/// One piece of the backend path: text, or the value of a path parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPiece {
    Text(String),
    Param(String),
}

/// A constant parameter: always sent to the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constant {
    pub name: String,
    pub value: String,
    pub location: ParamLocation,
}

/// A system parameter: a value the gateway knows (`CaClientIp`, …) sent under `backend_name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemParam {
    pub system: SystemValue,
    pub backend_name: String,
    pub location: ParamLocation,
}

/// The names of the system parameters cagate supplies (for tools that write configurations).
pub use crate::plugins::system::names as system_parameter_names;

#[derive(Debug, Clone)]
pub struct HttpBackend {
    /// The Envoy cluster per stage index, stage variables substituted at load time.
    pub clusters: Vec<(u32, String)>,
    /// The backend path (`None`: the request's own).
    pub path: Option<Vec<PathPiece>>,
    pub method: Option<String>,
    pub timeout_ms: u64,
    /// The Host sent to the backend per stage index (none: the client's), stage variables substituted.
    pub hosts: Vec<(u32, String)>,
    pub constants: Vec<Constant>,
    pub system: Vec<SystemParam>,
}

/// A mock answer (defined with the routing plugin, whose MOCK routes answer the same way).
pub use crate::plugins::routing::MockBackend;

#[derive(Debug, Clone)]
pub enum Backend {
    Http(Box<HttpBackend>),
    Mock(Box<MockBackend>),
}

impl HttpBackend {
    pub fn cluster(&self, stage: crate::ids::StageId) -> Option<&str> {
        self.clusters.iter().find(|(s, _)| *s == stage.0).map(|(_, c)| c.as_str())
    }
    pub fn host(&self, stage: crate::ids::StageId) -> Option<&str> {
        self.hosts.iter().find(|(s, _)| *s == stage.0).map(|(_, h)| h.as_str())
    }
}

pub(crate) const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Aliyun's longest backend timeout.
pub(crate) const MAX_TIMEOUT_MS: u64 = 30_000;

const FIELDS: &[&str] = &[
    "type",
    "cluster",
    "path",
    "method",
    "timeoutMs",
    "host",
    "constantParameters",
    "systemParameters",
    "mockStatusCode",
    "mockResult",
    "mockHeaders",
    "description",
];

const HTTP_FIELDS: &[&str] = &["cluster", "path", "method", "timeoutMs", "host", "constantParameters", "systemParameters"];
const MOCK_FIELDS: &[&str] = &["mockStatusCode", "mockResult", "mockHeaders"];

/// `stageVariables`: stage name -> variable -> value.
pub(crate) type StageVariables = HashMap<String, HashMap<String, String>>;

pub(crate) fn parse_stage_variables(c: &mut Validator, top: &Map<String, Value>, stages: &[String]) -> StageVariables {
    let mut out = StageVariables::new();
    let Some(v) = top.get("stageVariables") else { return out };
    let Some(o) = v.as_object() else {
        c.err("stageVariables", "must be an object: stage -> { variable: value }");
        return out;
    };
    for (stage, vars) in o {
        let path = join("stageVariables", stage);
        if !stages.contains(stage) {
            c.err(&path, format!("unknown stage {stage}"));
        }
        let Some(vars) = vars.as_object() else {
            c.err(&path, "must be an object: variable -> value");
            continue;
        };
        let mut m = HashMap::new();
        for (name, value) in vars {
            match value.as_str() {
                Some(s) => {
                    m.insert(name.clone(), s.to_string());
                }
                None => c.err(&join(&path, name), "must be a string"),
            }
        }
        out.insert(stage.clone(), m);
    }
    out
}

pub(crate) fn parse_request_mode(c: &mut Validator, o: &Map<String, Value>, path: &str) -> RequestMode {
    let modes =
        [("PASSTHROUGH", RequestMode::Passthrough), ("MAPPING", RequestMode::Mapping), ("MAPPING_PASSTHROUGH", RequestMode::MappingPassthrough)];
    c.choice(o, path, "requestMode", "requestMode", false, &modes).unwrap_or_default()
}

/// What a backend definition is checked against.
pub(crate) struct BackendScope<'a> {
    pub(crate) stages: &'a [String],
    /// The stages the API is published in (bit i: stage i).
    pub(crate) stage_bits: u64,
    pub(crate) variables: &'a StageVariables,
    /// The API's path template and the backend names of its declared PATH parameters.
    pub(crate) template: &'a [Segment],
    pub(crate) path_aliases: &'a [String],
}

/// `apis[i].backend`.
pub(crate) fn parse(c: &mut Validator, v: &Value, path: &str, scope: &BackendScope<'_>) -> Option<Backend> {
    let o = c.object(v, path, FIELDS)?;
    let _ = c.string(o, path, "description", false);
    let kind = c.string(o, path, "type", false).unwrap_or("HTTP");
    // A field of the other type is never read: said, so that a value someone relies on is not lost unseen.
    let (others, of) = if kind == "MOCK" { (HTTP_FIELDS, "HTTP") } else { (MOCK_FIELDS, "MOCK") };
    for f in others.iter().filter(|f| o.contains_key(**f)) {
        c.warn(&join(path, f), format!("applies to {of} backends only: ignored"));
    }
    match kind {
        "HTTP" => http(c, o, path, scope).map(|h| Backend::Http(Box::new(h))),
        "MOCK" => mock(c, o, path).map(|m| Backend::Mock(Box::new(m))),
        other => {
            c.err(&join(path, "type"), format!("unknown backend type {other}: HTTP or MOCK"));
            None
        }
    }
}

fn http(c: &mut Validator, o: &Map<String, Value>, path: &str, scope: &BackendScope<'_>) -> Option<HttpBackend> {
    let cluster = c.string(o, path, "cluster", true);
    // A bad path is reported and the other fields are still checked (every problem is reported).
    let pieces = c.string(o, path, "path", false).map(|p| path_pieces(c, p, &join(path, "path"), scope));
    let method = c.string(o, path, "method", false).map(|m| {
        if crate::config::router::Method::parse(m).is_none() || m == "ANY" {
            c.err(&join(path, "method"), format!("unknown method {m}: GET, POST, PUT, DELETE, PATCH, HEAD or OPTIONS"));
        }
        m.to_string()
    });
    let timeout_ms = c.integer(o, path, "timeoutMs", DEFAULT_TIMEOUT_MS, 1, MAX_TIMEOUT_MS);
    let host = c.string(o, path, "host", false);
    let constants = constants(c, o, path);
    let system = system(c, o, path);
    let clusters = cluster
        .and_then(|t| per_stage(c, t, &join(path, "cluster"), scope, |n| n.bytes().all(|b| b.is_ascii_graphic()), "is not an Envoy cluster name"));
    const NOT_A_HOST: &str = "is not a host name, optionally with a port";
    let hosts = match host {
        // Checked as written too, so an API published in no stage is refused a bad one all the same.
        Some(h) if !h.contains('#') && !crate::wire::url::is_host(h) => {
            c.err(&join(path, "host"), format!("{h:?} {NOT_A_HOST}"));
            None
        }
        Some(h) => per_stage(c, h, &join(path, "host"), scope, crate::wire::url::is_host, NOT_A_HOST),
        None => Some(Vec::new()),
    };
    let backend_path = match pieces {
        Some(p) => Some(p?),
        None => None,
    };
    Some(HttpBackend { clusters: clusters?, path: backend_path, method, timeout_ms, hosts: hosts?, constants, system })
}

/// A value per published stage, with `#name#` replaced from that stage's variables.
fn per_stage(
    c: &mut Validator,
    template: &str,
    path: &str,
    scope: &BackendScope<'_>,
    valid: fn(&str) -> bool,
    invalid: &str,
) -> Option<Vec<(u32, String)>> {
    let mut out = Vec::new();
    let before = c.problems.len();
    for (k, stage) in scope.stages.iter().enumerate().take(64) {
        if scope.stage_bits & (1u64 << k) == 0 {
            continue;
        }
        let mut name = String::new();
        let mut rest = template;
        while let Some(start) = rest.find('#') {
            name.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let Some(end) = after.find('#') else {
                c.err(path, "an unclosed #variable#");
                return None;
            };
            let var = &after[..end];
            match scope.variables.get(stage).and_then(|vars| vars.get(var)) {
                Some(value) => name.push_str(value),
                None => c.err(path, format!("stage variable #{var}# is not defined for stage {stage}")),
            }
            rest = &after[end + 1..];
        }
        name.push_str(rest);
        if name.is_empty() || !valid(&name) {
            c.err(path, format!("{name:?} {invalid} (stage {stage})"));
        }
        out.push((k as u32, name));
    }
    (c.problems.len() == before).then_some(out)
}

fn path_pieces(c: &mut Validator, p: &str, path: &str, scope: &BackendScope<'_>) -> Option<Vec<PathPiece>> {
    if !p.starts_with('/') {
        c.err(path, "must start with /");
        return None;
    }
    if p.chars().any(|ch| ch.is_control() || ch == ' ') {
        c.err(path, "must not contain spaces or control characters");
        return None;
    }
    // The query is the gateway's to build (mapping, constants, claims): a `?` here would let a raw
    // `&` in a path parameter add a query parameter ahead of the configured ones.
    if p.contains(['?', '#']) {
        c.err(path, "must be a path only: no ? or # (set query parameters with constantParameters or parameter mapping)");
        return None;
    }
    let api_params: Vec<&str> = scope
        .template
        .iter()
        .filter_map(|s| match s {
            Segment::Param(n) => Some(n.as_ref()),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    let mut rest = p;
    while let Some(start) = rest.find('[') {
        out.push(PathPiece::Text(rest[..start].to_string()));
        let Some(end) = rest[start..].find(']') else {
            c.err(path, "an unclosed [parameter]");
            return None;
        };
        let name = &rest[start + 1..start + end];
        if !api_params.contains(&name) && !scope.path_aliases.iter().any(|a| a == name) {
            c.err(path, format!("[{name}] is not a path parameter of the API"));
        }
        out.push(PathPiece::Param(name.to_string()));
        rest = &rest[start + end + 1..];
    }
    out.push(PathPiece::Text(rest.to_string()));
    out.retain(|p| !matches!(p, PathPiece::Text(t) if t.is_empty()));
    Some(out)
}

fn location(c: &mut Validator, o: &Map<String, Value>, path: &str, key: &str) -> Option<ParamLocation> {
    match c.string(o, path, key, true)? {
        "HEADER" => Some(ParamLocation::Header),
        "QUERY" => Some(ParamLocation::Query),
        other => {
            c.err(&join(path, key), format!("unsupported location {other}: HEADER or QUERY"));
            None
        }
    }
}

fn constants(c: &mut Validator, o: &Map<String, Value>, path: &str) -> Vec<Constant> {
    let mut out = Vec::new();
    for (i, v) in c.array(o, path, "constantParameters").iter().enumerate() {
        let p = format!("{path}.constantParameters[{i}]");
        let Some(co) = c.object(v, &p, &["name", "value", "location", "description"]) else { continue };
        let (name, value, loc) = (c.string(co, &p, "name", true), c.string(co, &p, "value", true), location(c, co, &p, "location"));
        if let (Some(name), Some(value), Some(location)) = (name, value, loc) {
            if location == ParamLocation::Header && !(c.header_name(&join(&p, "name"), name) && c.header_value(&join(&p, "value"), value)) {
                continue;
            }
            out.push(Constant { name: header_name(name, location), value: value.to_string(), location });
        }
    }
    out
}

fn system(c: &mut Validator, o: &Map<String, Value>, path: &str) -> Vec<SystemParam> {
    let mut out = Vec::new();
    for (i, v) in c.array(o, path, "systemParameters").iter().enumerate() {
        let p = format!("{path}.systemParameters[{i}]");
        let Some(so) = c.object(v, &p, &["name", "backendName", "location", "description"]) else { continue };
        let name = c.string(so, &p, "name", true);
        let backend = c.string(so, &p, "backendName", true);
        let loc = location(c, so, &p, "location");
        let system = name.and_then(|n| {
            let found = SystemValue::parse(n);
            if found.is_none() {
                c.err(&join(&p, "name"), format!("unknown system parameter {n}: {}", SystemValue::known()));
            }
            found
        });
        if let (Some(system), Some(b), Some(location)) = (system, backend, loc) {
            if location == ParamLocation::Header && !c.header_name(&join(&p, "backendName"), b) {
                continue;
            }
            out.push(SystemParam { system, backend_name: header_name(b, location), location });
        }
    }
    out
}

/// Header names are matched and set in lower case (Envoy's form).
fn header_name(name: &str, location: ParamLocation) -> String {
    if location == ParamLocation::Header {
        name.to_ascii_lowercase()
    } else {
        name.to_string()
    }
}

fn mock(c: &mut Validator, o: &Map<String, Value>, path: &str) -> Option<MockBackend> {
    let status = c.integer(o, path, "mockStatusCode", 200, 100, 599) as u16;
    let body = c.string(o, path, "mockResult", false).unwrap_or_default().to_string();
    let mut headers = Vec::new();
    for (i, v) in c.array(o, path, "mockHeaders").iter().enumerate() {
        let p = format!("{path}.mockHeaders[{i}]");
        let Some(ho) = c.object(v, &p, &["name", "value"]) else { continue };
        if let (Some(n), Some(v)) = (c.string(ho, &p, "name", true), c.string(ho, &p, "value", true)) {
            if !c.header_name(&join(&p, "name"), n) || !c.header_value(&join(&p, "value"), v) {
                continue;
            }
            headers.push((n.to_ascii_lowercase(), v.to_string()));
        }
    }
    Some(MockBackend { status, body, headers })
}
