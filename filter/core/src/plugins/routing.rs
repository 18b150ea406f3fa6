//! Aliyun's routing plugin: ordered routes, each a condition and a backend overlay (another Envoy
//! cluster, path, method or timeout, or a mock answer) with constant parameters. The first route whose
//! condition holds changes where an admitted request goes; none holding leaves the API's own backend.
//! Parsed here; decided per request in `request/forward.rs`, after every check has admitted it.

use crate::plugins::access_control::parse_variables;
use crate::plugins::conditions::{self, Expr, VarSource};
use crate::plugins::definition::{AliyunPlugin, Definition};
use crate::plugins::system::SystemValue;
use crate::schema::validator::{join, Validator};
use serde_json::{Map, Value};

/// Most routes in one plugin (Aliyun publishes no limit; every route is evaluated per request).
pub(crate) const MAX_ROUTES: usize = 16;
/// Longest route name: it is sent to the backend in a header.
pub(crate) const MAX_NAME: usize = 64;
/// A route's longest `timeout`: Aliyun's longest backend timeout, as for `apis[].backend.timeoutMs`.
const MAX_TIMEOUT_MS: u64 = 30_000;
/// The methods a backend may be called with (Aliyun's, as for `apis[].backend.method`).
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

/// A mock answer: an API's MOCK backend (`apis[].backend`, re-exported by `config::backend`) or a
/// MOCK route's. Defined here, below the configuration layer, so that both share it.
#[derive(Debug, Clone)]
pub struct MockBackend {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

/// A route's constant parameter: a header (lower case) or a query parameter sent to the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConstant {
    pub name: String,
    pub value: String,
    pub query: bool,
}

/// Where a condition variable's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteVar {
    /// A location declared in `parameters`, or a system parameter named directly (`$CaAppId`).
    Source(VarSource),
    /// A parameter of the API the request is for, by its name (`$ClientVersion`), as Aliyun's
    /// conditions refer to them: read where the API declares it; null when the API declares none.
    ApiParameter(String),
}

/// What a matching route does to the API's own backend.
#[derive(Debug, Clone)]
pub enum Overlay {
    /// No `backend`: the API's own, with the route's constant parameters.
    Keep,
    Http(Box<HttpOverlay>),
    Mock(Box<MockBackend>),
}

/// An HTTP overlay: each field given replaces the API's; the cluster is required unless the API's
/// own backend is HTTP and the overlay is `HTTP` (an `HTTP-VPC` overlay names its own).
#[derive(Debug, Clone, Default)]
pub struct HttpOverlay {
    /// `HTTP-VPC`: the overlay names its own cluster (`vpcAccessName`); the API's is never kept.
    pub vpc: bool,
    pub cluster: Option<String>,
    pub path: Option<String>,
    pub method: Option<String>,
    pub timeout_ms: Option<u64>,
    /// The `Host` its cluster expects (`cagate import` sets it from an Aliyun `address`).
    pub host: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    pub condition: Expr,
    pub backend: Overlay,
    pub constants: Vec<RouteConstant>,
}

#[derive(Debug, Clone)]
pub struct RoutingConfig {
    pub names: Vec<String>,
    pub vars: Vec<RouteVar>,
    pub routes: Vec<Route>,
}

impl RoutingConfig {
    /// The route of this name (the one `X-Ca-Routing-Name` names).
    pub fn route(&self, name: &[u8]) -> Option<&Route> {
        self.routes.iter().find(|r| r.name.as_bytes() == name)
    }
}

/// The `$name`s a condition refers to (a name inside a quoted string is collected too; it is then
/// an unused variable, which is harmless).
fn referenced(condition: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = condition;
    while let Some(at) = rest.find('$') {
        let after = &rest[at + 1..];
        let end = after.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(after.len());
        if end > 0 {
            out.push(after[..end].to_string());
        }
        rest = &after[end..];
    }
    out
}

pub(crate) fn overlay(c: &mut Validator, v: &Value, path: &str) -> Option<Overlay> {
    const FIELDS: &[&str] = &[
        "type",
        "cluster",
        "vpcAccessName",
        "address",
        "host",
        "path",
        "method",
        "timeout",
        "statusCode",
        "body",
        "mockBody",
        "mockHeaders",
        "description",
    ];
    let o = c.object(v, path, FIELDS)?;
    let _ = c.string(o, path, "description", false);
    let kind = c.string(o, path, "type", false);
    let http_only = ["cluster", "vpcAccessName", "host", "path", "method", "timeout"];
    let mock_only = ["statusCode", "body", "mockBody", "mockHeaders"];
    let misplaced = |c: &mut Validator, keys: &[&str], what: &str| {
        for k in keys.iter().filter(|k| o.contains_key(**k)) {
            c.err(&join(path, k), format!("is not a field of a {what} backend"));
        }
    };
    if o.contains_key("address") {
        c.err(&join(path, "address"), "give the Envoy cluster instead: cluster (cagate import turns an address into a cluster)");
    }
    match kind {
        Some("MOCK") => {
            misplaced(c, &http_only, "MOCK");
            mock(c, o, path).map(|m| Overlay::Mock(Box::new(m)))
        }
        // `HTTP_VPC`: the spelling of an older version of Aliyun's page.
        None | Some("HTTP") | Some("HTTP-VPC") | Some("HTTP_VPC") => {
            let vpc = matches!(kind, Some("HTTP-VPC") | Some("HTTP_VPC"));
            misplaced(c, &mock_only, kind.unwrap_or("HTTP"));
            if !vpc && o.contains_key("vpcAccessName") {
                c.err(&join(path, "vpcAccessName"), "is a field of an HTTP-VPC backend");
            }
            let mut cluster = None;
            for key in ["cluster", "vpcAccessName"] {
                if let Some(name) = c.string(o, path, key, false) {
                    if name.contains('#') {
                        c.err(&join(path, key), "takes no #stage variable#: bind a routing plugin per stage instead");
                    } else if !name.bytes().all(|b| b.is_ascii_graphic()) {
                        c.err(&join(path, key), format!("{name:?} is not an Envoy cluster name"));
                    } else if cluster.replace(name.to_string()).is_some() {
                        c.err(&join(path, key), "give cluster or vpcAccessName, not both");
                    }
                }
            }
            let route_path = c.string(o, path, "path", false).map(str::to_string);
            if let Some(p) = &route_path {
                if !p.starts_with('/') || !p.bytes().all(|b| b.is_ascii_graphic() && !b"?#[]".contains(&b)) {
                    c.err(&join(path, "path"), "must be a literal path starting with /: ASCII, no spaces, ?, # or [parameters]");
                }
            }
            let method = c.string(o, path, "method", false).map(|m| {
                if !METHODS.contains(&m) {
                    c.err(&join(path, "method"), format!("unknown method {m}: {}", METHODS.join(", ")));
                }
                m.to_string()
            });
            let timeout_ms = o.contains_key("timeout").then(|| c.integer(o, path, "timeout", MAX_TIMEOUT_MS, 1, MAX_TIMEOUT_MS));
            let host = c.string(o, path, "host", false).map(str::to_string);
            if host.as_deref().is_some_and(|h| !crate::wire::url::is_host(h)) {
                c.err(&join(path, "host"), "must be a host name, optionally with a port");
            } else if host.is_some() && cluster.is_none() {
                c.err(&join(path, "host"), "belongs to the route's own cluster: give cluster (or vpcAccessName) too");
            }
            if kind.is_none() && o.keys().all(|k| k == "description") {
                return Some(Overlay::Keep);
            }
            Some(Overlay::Http(Box::new(HttpOverlay { vpc, cluster, path: route_path, method, timeout_ms, host })))
        }
        Some(other) => {
            c.err(&join(path, "type"), format!("unsupported backend type {other}: HTTP, HTTP-VPC or MOCK"));
            None
        }
    }
}

fn mock(c: &mut Validator, o: &Map<String, Value>, path: &str) -> Option<MockBackend> {
    let status = c.integer(o, path, "statusCode", 200, 100, 599) as u16;
    if o.contains_key("body") && o.contains_key("mockBody") {
        c.err(&join(path, "mockBody"), "give body or mockBody, not both");
    }
    let body = c.string(o, path, "body", false).or_else(|| c.string(o, path, "mockBody", false)).unwrap_or_default().to_string();
    let mut headers = Vec::new();
    for (i, v) in c.array(o, path, "mockHeaders").iter().enumerate() {
        let p = format!("{path}.mockHeaders[{i}]");
        let Some(ho) = c.object(v, &p, &["name", "value"]) else { continue };
        if let (Some(n), Some(v)) = (c.string(ho, &p, "name", true), c.string(ho, &p, "value", true)) {
            if c.header_name(&join(&p, "name"), n) && c.header_value(&join(&p, "value"), v) {
                headers.push((n.to_ascii_lowercase(), v.to_string()));
            }
        }
    }
    Some(MockBackend { status, body, headers })
}

/// `constant-parameters`: `{name, location, value}`, the location `header` or `query` (Aliyun writes
/// them in lower case; upper case as in `constantParameters` is taken too).
fn constants(c: &mut Validator, ro: &Map<String, Value>, rp: &str) -> Vec<RouteConstant> {
    let mut out = Vec::new();
    for (i, v) in c.array(ro, rp, "constant-parameters").iter().enumerate() {
        let p = format!("{rp}.constant-parameters[{i}]");
        let Some(co) = c.object(v, &p, &["name", "value", "location", "description"]) else { continue };
        let (name, value) = (c.string(co, &p, "name", true), c.string(co, &p, "value", true));
        let query = match c.string(co, &p, "location", true) {
            Some(l) if l.eq_ignore_ascii_case("header") => false,
            Some(l) if l.eq_ignore_ascii_case("query") => true,
            Some(other) => {
                c.err(&join(&p, "location"), format!("unsupported location {other}: header or query"));
                continue;
            }
            None => continue,
        };
        let (Some(name), Some(value)) = (name, value) else { continue };
        let header_ok = |c: &mut Validator| c.header_name(&join(&p, "name"), name) && c.header_value(&join(&p, "value"), value);
        if !query && !header_ok(c) {
            continue;
        }
        let name = if query { name.to_string() } else { name.to_ascii_lowercase() };
        out.push(RouteConstant { name, value: value.to_string(), query });
    }
    out
}

/// Checks one route's name: letters and digits (Aliyun's rule; it is sent in a header), unique.
fn route_name(c: &mut Validator, ro: &Map<String, Value>, rp: &str, seen: &mut Vec<String>) -> String {
    let name = c.string(ro, rp, "name", true).unwrap_or_default().to_string();
    if name.len() > MAX_NAME {
        c.err(&join(rp, "name"), format!("is {} characters; a route name is at most {MAX_NAME}", name.len()));
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
        c.err(&join(rp, "name"), "must be letters and digits only");
    } else if seen.contains(&name) {
        c.err(&join(rp, "name"), format!("duplicate route name {name}"));
    }
    seen.push(name.clone());
    name
}

impl AliyunPlugin for RoutingConfig {
    const TYPE: &'static str = "routing";

    fn parse(c: &mut Validator, data: &Value, def: &Definition<'_>) -> Option<Self> {
        let path = def.path;
        let o = c.object(data, path, &["parameters", "routes"])?;
        let declared = parse_variables(c, o, path, false);
        let mut names = declared.names;
        let mut vars: Vec<RouteVar> = Vec::with_capacity(names.len());
        for (name, loc) in names.iter().zip(declared.locations) {
            // Routing is decided where the API's backend is: neither the claims nor a form body are there.
            if matches!(loc, VarSource::Token(_) | VarSource::Form(_)) {
                c.err(&format!("{}.{name}", join(path, "parameters")), "Token: and Form: locations are not available to routing");
            }
            vars.push(RouteVar::Source(loc));
        }
        let list = c.array(o, path, "routes");
        if list.is_empty() {
            c.err(&join(path, "routes"), "needs at least one route");
        }
        if list.len() > MAX_ROUTES {
            c.err(&join(path, "routes"), format!("has {} routes; at most {MAX_ROUTES}", list.len()));
        }
        // Names a condition uses without declaring them: system parameters, else the API's own.
        for r in list {
            let Some(cond) = r.get("condition").and_then(Value::as_str) else { continue };
            for name in referenced(cond) {
                if !names.contains(&name) {
                    vars.push(match SystemValue::parse(&name) {
                        Some(v) => RouteVar::Source(VarSource::System(v)),
                        None => RouteVar::ApiParameter(name.clone()),
                    });
                    names.push(name);
                }
            }
        }
        let mut routes = Vec::new();
        let mut seen = Vec::new();
        for (i, r) in list.iter().enumerate() {
            let rp = format!("{path}.routes[{i}]");
            let Some(ro) = c.object(r, &rp, &["name", "condition", "backend", "constant-parameters", "description"]) else { continue };
            let _ = c.string(ro, &rp, "description", false);
            let name = route_name(c, ro, &rp, &mut seen);
            let label = format!("{rp} (route {name})");
            let condition = match c.string(ro, &rp, "condition", true).map(|s| conditions::parse(s, &names)) {
                Some(Ok(e)) => Some(e),
                Some(Err(e)) => {
                    c.err(&join(&label, "condition"), e.to_string());
                    None
                }
                None => None,
            };
            let backend = match ro.get("backend") {
                Some(b) => overlay(c, b, &join(&rp, "backend")),
                None => Some(Overlay::Keep),
            };
            let constants = constants(c, ro, &rp);
            if let (Some(condition), Some(backend)) = (condition, backend) {
                routes.push(Route { name, condition, backend, constants });
            }
        }
        Some(RoutingConfig { names, vars, routes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referenced_names_are_collected() {
        assert_eq!(referenced("$CaAppId = 1 and $v_2 < '2.0' or $"), vec!["CaAppId".to_string(), "v_2".to_string()]);
    }
}
