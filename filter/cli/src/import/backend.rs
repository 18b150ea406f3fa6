//! `x-aliyun-apigateway-backend` (HTTP, HTTP-VPC, MOCK) with its constant and system parameters, as
//! a cagate `backend`. A backend address becomes an Envoy cluster named from its host and port.

use super::diag::{at, Diags};
use super::params::location_word;
use super::swagger::unknown_extensions;
use super::value::{self, integer, key_text, s, scalar_text};
use serde_yaml::{Mapping, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;

pub(crate) const BACKEND: &str = "x-aliyun-apigateway-backend";
pub(crate) const SYSTEM: &str = "x-aliyun-apigateway-system-parameters";
pub(crate) const CONSTANT: &str = "x-aliyun-apigateway-constant-parameters";

/// System parameters Aliyun defines that cagate does not supply (warned about, left out).
pub(crate) const ALIYUN_ONLY_SYSTEM: &[&str] = &["CaProxy", "CaCloudMarketInstanceId", "CaAppExtendInfo", "CaInstanceId", "CaSourceVpcId"];

/// Backend types Aliyun has and cagate does not (matched in any case), with what they are.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("FC", "Function Compute"),
    ("FUNCTION_COMPUTE", "Function Compute"),
    ("FUNCTIONCOMPUTE", "Function Compute"),
    ("FC-HTTP", "Function Compute"),
    ("HTTP-FC", "Function Compute"),
    ("OSS", "Object Storage Service"),
    ("EVENTBRIDGE", "EventBridge"),
];

/// Aliyun's longest backend timeout, and cagate's.
const MAX_TIMEOUT_MS: i64 = 30_000;

/// An Envoy cluster the configuration needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cluster {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: bool,
    /// An IP address (a STATIC cluster), not a name (STRICT_DNS).
    pub(crate) ip: bool,
    /// What it was made from, for the listing.
    pub(crate) source: String,
    /// A VPC access name: its address is a guess the user must check.
    pub(crate) placeholder: bool,
}

pub(crate) type Clusters = BTreeMap<String, Cluster>;

pub(crate) enum Outcome {
    Backend(Value),
    /// No backend extension.
    Absent,
    /// A backend type cagate does not support: the operation is left out (warned).
    Skip,
    /// A wrong backend (an error was reported).
    Invalid,
}

/// The operation the backend belongs to.
pub(crate) struct View<'a> {
    pub(crate) path: &'a str,
    pub(crate) gateway_path: &'a str,
    /// The gateway path's parameters, and the backend names of PATH parameters.
    pub(crate) params: &'a [String],
    pub(crate) aliases: &'a [String],
}

pub(crate) fn backend(op: &Mapping, view: &View<'_>, clusters: &mut Clusters, d: &mut Diags) -> Outcome {
    let bp = at(view.path, BACKEND);
    let Some(raw) = op.get(BACKEND) else {
        for k in [SYSTEM, CONSTANT] {
            if op.contains_key(k) {
                d.warn(&at(view.path, k), format!("ignored: the operation has no {BACKEND}"));
            }
        }
        return Outcome::Absent;
    };
    // One real-world form is the object as a JSON string.
    let parsed = match raw {
        Value::String(t) => value::parse(t).ok(),
        _ => None,
    };
    let Some(b) = parsed.as_ref().unwrap_or(raw).as_mapping() else {
        d.error(&bp, "must be an object with a type: HTTP, HTTP-VPC or MOCK");
        return Outcome::Invalid;
    };
    let Some(kind) = b.get("type").and_then(Value::as_str) else {
        d.error(&at(&bp, "type"), "missing or not a string: HTTP, HTTP-VPC or MOCK");
        return Outcome::Invalid;
    };
    match kind {
        "HTTP" => http(op, b, &bp, view, clusters, d),
        "HTTP-VPC" => vpc(op, b, &bp, view, clusters, d),
        "MOCK" => mock(op, b, &bp, view, d),
        k => match UNSUPPORTED.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)) {
            Some((_, what)) => {
                d.warn(&bp, format!("type {k} is not supported ({what}): the operation is not imported"));
                Outcome::Skip
            }
            None => {
                d.error(&at(&bp, "type"), format!("unknown backend type {k}: HTTP, HTTP-VPC or MOCK"));
                Outcome::Invalid
            }
        },
    }
}

fn known_keys(b: &Mapping, bp: &str, known: &[&str], d: &mut Diags) {
    for k in b.keys().filter_map(key_text) {
        if !known.contains(&k.as_str()) {
            d.warn(&at(bp, &k), "not supported by cagate: ignored");
        }
    }
}

fn http(op: &Mapping, b: &Mapping, bp: &str, view: &View<'_>, clusters: &mut Clusters, d: &mut Diags) -> Outcome {
    known_keys(b, bp, &["type", "address", "path", "method", "timeout"], d);
    let Some(address) = b.get("address").and_then(Value::as_str) else {
        d.error(&at(bp, "address"), "missing: the backend's http://host[:port] or https://host[:port]");
        return Outcome::Invalid;
    };
    let Some(target) = address_target(address, &at(bp, "address"), clusters, d) else { return Outcome::Invalid };
    if !target.prefix.is_empty() {
        d.note(&at(bp, "address"), format!("the address's path {} is put before the backend path", target.prefix));
    }
    let mut out = Mapping::new();
    out.insert(s("type"), s("HTTP"));
    out.insert(s("cluster"), s(&target.cluster));
    if !common(b, bp, view, &target.prefix, &mut out, d) {
        return Outcome::Invalid;
    }
    if let Some(h) = target.host {
        out.insert(s("host"), s(&h));
    }
    mapped_parameters(op, view.path, &mut out, d);
    Outcome::Backend(Value::Mapping(out))
}

fn vpc(op: &Mapping, b: &Mapping, bp: &str, view: &View<'_>, clusters: &mut Clusters, d: &mut Diags) -> Outcome {
    known_keys(b, bp, &["type", "vpcAccessName", "path", "method", "timeout"], d);
    let Some(name) = b.get("vpcAccessName").and_then(Value::as_str).filter(|n| !n.trim().is_empty()) else {
        d.error(&at(bp, "vpcAccessName"), "missing: the name of the VPC access authorization");
        return Outcome::Invalid;
    };
    if !name.contains('#') && !clusters.contains_key(name) {
        let cluster = Cluster { host: name.to_string(), port: 80, tls: false, ip: false, source: format!("VPC access {name}"), placeholder: true };
        clusters.insert(name.to_string(), cluster);
        d.warn(
            &at(bp, "vpcAccessName"),
            format!("the VPC access {name} becomes the Envoy cluster {name}: define its address (with --envoy, a placeholder resolving {name}:80 is written)"),
        );
    }
    let mut out = Mapping::new();
    out.insert(s("type"), s("HTTP"));
    out.insert(s("cluster"), s(name));
    if !common(b, bp, view, "", &mut out, d) {
        return Outcome::Invalid;
    }
    mapped_parameters(op, view.path, &mut out, d);
    Outcome::Backend(Value::Mapping(out))
}

/// path, method and timeout (HTTP and HTTP-VPC); false on an error.
fn common(b: &Mapping, bp: &str, view: &View<'_>, prefix: &str, out: &mut Mapping, d: &mut Diags) -> bool {
    let mut ok = true;
    match b.get("path").map(Value::as_str) {
        None if prefix.is_empty() => {}
        None => {
            out.insert(s("path"), s(&format!("{prefix}{}", view.gateway_path)));
        }
        Some(Some(p)) if p.starts_with('/') => {
            let converted = p.replace('{', "[").replace('}', "]");
            for name in bracketed(&converted) {
                if !view.params.iter().chain(view.aliases).any(|x| *x == name) {
                    d.error(&at(bp, "path"), format!("[{name}] is not a path parameter of the operation"));
                    ok = false;
                }
            }
            out.insert(s("path"), s(&format!("{prefix}{converted}")));
        }
        Some(_) => {
            d.error(&at(bp, "path"), "must be a path starting with /");
            ok = false;
        }
    }
    match b.get("method").map(|m| m.as_str().map(str::to_ascii_uppercase)) {
        None => {}
        Some(Some(m)) => match m.as_str() {
            "GET" | "POST" | "PUT" | "DELETE" | "PATCH" | "HEAD" | "OPTIONS" => {
                out.insert(s("method"), s(&m));
            }
            "HEADER" => {
                out.insert(s("method"), s("HEAD"));
            }
            "ANY" => {}
            "TRACE" | "CONNECT" => d.warn(&at(bp, "method"), format!("{m} is not supported: the request's method is used")),
            _ => {
                d.error(&at(bp, "method"), format!("unknown method {m}"));
                ok = false;
            }
        },
        Some(None) => {
            d.error(&at(bp, "method"), "must be a string");
            ok = false;
        }
    }
    if let Some(v) = b.get("timeout") {
        match integer(v) {
            Some(t) if (1..=MAX_TIMEOUT_MS).contains(&t) => {
                out.insert(s("timeoutMs"), Value::Number(t.into()));
            }
            Some(t) if t > MAX_TIMEOUT_MS => {
                d.warn(&at(bp, "timeout"), format!("{t} ms is longer than Aliyun's and cagate's limit: {MAX_TIMEOUT_MS} ms"));
                out.insert(s("timeoutMs"), Value::Number(MAX_TIMEOUT_MS.into()));
            }
            _ => {
                d.error(&at(bp, "timeout"), "must be a number of milliseconds, 1 to 30000");
                ok = false;
            }
        }
    }
    ok
}

/// The `[name]`s of a backend path.
fn bracketed(p: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = p;
    while let Some(start) = rest.find('[') {
        let Some(end) = rest[start..].find(']') else { break };
        out.push(rest[start + 1..start + end].to_string());
        rest = &rest[start + end + 1..];
    }
    out
}

/// Where an address sends requests: the cluster, the Host to send, a path to put before the
/// backend path.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) cluster: String,
    pub(crate) host: Option<String>,
    pub(crate) prefix: String,
}

/// `http(s)://host[:port][/prefix]` → its cluster (added to `clusters`); `http://#name#` → the
/// cluster `#name#`, a stage variable.
pub(crate) fn address_target(address: &str, path: &str, clusters: &mut Clusters, d: &mut Diags) -> Option<Target> {
    let lower = address.to_ascii_lowercase();
    let (tls, rest) = match (lower.strip_prefix("http://"), lower.strip_prefix("https://")) {
        (Some(_), _) => (false, &address[7..]),
        (_, Some(_)) => (true, &address[8..]),
        _ => {
            d.error(path, format!("{address}: expected http://host[:port] or https://host[:port]"));
            return None;
        }
    };
    let (authority, prefix) = rest.find('/').map_or((rest, ""), |i| (&rest[..i], &rest[i..]));
    if authority.contains('@') || prefix.contains(['?', '#']) || authority.contains('?') {
        d.error(path, format!("{address}: expected http://host[:port] or https://host[:port], no user, query or fragment"));
        return None;
    }
    let prefix = prefix.trim_end_matches('/').to_string();
    if authority.contains('#') {
        let host = authority.rsplit_once(':').filter(|(_, p)| p.parse::<u16>().is_ok()).map_or(authority, |(h, _)| h);
        let var = host.strip_prefix('#').and_then(|h| h.strip_suffix('#')).filter(|v| !v.is_empty() && !v.contains('#'));
        if var.is_none() {
            d.error(path, "a stage variable must be the whole host (http://#name#): it names the Envoy cluster of each stage");
            return None;
        }
        if host != authority {
            d.note(path, "the port of a stage-variable address is not used: the variable names the whole Envoy cluster");
        }
        return Some(Target { cluster: host.to_string(), host: None, prefix });
    }
    let (host, port) = match host_port(authority, tls) {
        Ok(hp) => hp,
        Err(e) => {
            d.error(path, format!("{address}: {e}"));
            return None;
        }
    };
    let name = cluster_name(&host, port, tls);
    let ip = host.parse::<IpAddr>().is_ok();
    let source = format!("{}://{authority}", if tls { "https" } else { "http" });
    clusters.entry(name.clone()).or_insert(Cluster { host, port, tls, ip, source, placeholder: false });
    Some(Target { cluster: name, host: Some(authority.to_ascii_lowercase()), prefix })
}

fn host_port(authority: &str, tls: bool) -> Result<(String, u16), String> {
    let default = if tls { 443 } else { 80 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, rest) = v6.split_once(']').ok_or("an unclosed [")?;
        (h, rest.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() || !host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b)) {
        return Err("not a host name or address".to_string());
    }
    let port = match port {
        None => default,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| format!("bad port {p}"))?,
    };
    Ok((host.to_ascii_lowercase(), port))
}

/// `orders.internal`, 8080 → `backend_orders_internal_8080` (`_tls` for https).
pub(crate) fn cluster_name(host: &str, port: u16, tls: bool) -> String {
    let clean: String = host.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("backend_{clean}_{port}{}", if tls { "_tls" } else { "" })
}

fn mock(op: &Mapping, b: &Mapping, bp: &str, view: &View<'_>, d: &mut Diags) -> Outcome {
    known_keys(b, bp, &["type", "mockResult", "mockStatusCode", "mockHeaders"], d);
    for k in [SYSTEM, CONSTANT] {
        if op.contains_key(k) {
            d.warn(&at(view.path, k), "ignored: a MOCK backend sends nothing to a backend");
        }
    }
    let mut out = Mapping::new();
    out.insert(s("type"), s("MOCK"));
    let status = match b.get("mockStatusCode").map(integer) {
        None => 200,
        Some(Some(c)) if (100..=599).contains(&c) => c,
        Some(_) => {
            d.error(&at(bp, "mockStatusCode"), "must be an HTTP status, 100 to 599");
            return Outcome::Invalid;
        }
    };
    out.insert(s("mockStatusCode"), Value::Number(status.into()));
    let result = match b.get("mockResult") {
        None => String::new(),
        Some(v @ (Value::Mapping(_) | Value::Sequence(_))) => serde_json::to_string(v).unwrap_or_default(),
        Some(v) => scalar_text(v).unwrap_or_default(),
    };
    out.insert(s("mockResult"), s(&result));
    if let Some(h) = b.get("mockHeaders") {
        let Some(headers) = mock_headers(h, &at(bp, "mockHeaders"), d) else { return Outcome::Invalid };
        if !headers.is_empty() {
            out.insert(s("mockHeaders"), Value::Sequence(headers));
        }
    }
    Outcome::Backend(Value::Mapping(out))
}

/// `[{headerName, headerValue}]` (Aliyun's API names), `[{name, value}]`, or `{name: value}`.
fn mock_headers(v: &Value, path: &str, d: &mut Diags) -> Option<Vec<Value>> {
    let pairs: Vec<(Option<String>, Option<String>)> = match v {
        Value::Sequence(items) => items
            .iter()
            .map(|i| {
                let pick = |a: &str, b: &str| i.get(a).or_else(|| i.get(b)).and_then(scalar_text);
                (pick("headerName", "name"), pick("headerValue", "value"))
            })
            .collect(),
        Value::Mapping(m) => m.iter().map(|(k, v)| (key_text(k), scalar_text(v))).collect(),
        _ => {
            d.error(path, "must be a list of {headerName, headerValue}");
            return None;
        }
    };
    let mut out = Vec::new();
    for (i, pair) in pairs.into_iter().enumerate() {
        match pair {
            (Some(n), Some(v)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)) => {
                out.push(value::map([("name", s(&n)), ("value", s(&v))]));
            }
            _ => {
                d.error(&format!("{path}[{i}]"), "needs a header name (letters, digits, '-', '_') and a value");
                return None;
            }
        }
    }
    Some(out)
}

/// Constant and system parameters into the backend.
fn mapped_parameters(op: &Mapping, p: &str, out: &mut Mapping, d: &mut Diags) {
    let mut constants = list(op, p, CONSTANT, d, constant);
    // Aliyun: a constant header `host` is the Host the backend receives.
    let is_host = |c: &Value| {
        c.get("location").and_then(Value::as_str) == Some("HEADER")
            && c.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case("host"))
    };
    if let Some(i) = constants.iter().position(is_host) {
        let host = constants.remove(i).get("value").and_then(Value::as_str).unwrap_or_default().to_string();
        d.note(&at(p, CONSTANT), format!("the constant header host is the backend's Host: {host}"));
        out.insert(s("host"), s(&host));
    }
    if !constants.is_empty() {
        out.insert(s("constantParameters"), Value::Sequence(constants));
    }
    let system = list(op, p, SYSTEM, d, system);
    if !system.is_empty() {
        out.insert(s("systemParameters"), Value::Sequence(system));
    }
}

type Item = fn(&Mapping, &str, &mut Diags) -> Option<(Value, String)>;

/// The items of one list extension, each made by `item` with a key for duplicates.
fn list(op: &Mapping, p: &str, key: &str, d: &mut Diags, item: Item) -> Vec<Value> {
    let path = at(p, key);
    let Some(v) = op.get(key) else { return Vec::new() };
    let Some(items) = v.as_sequence() else {
        d.error(&path, "must be a list");
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for (i, v) in items.iter().enumerate() {
        let ip = format!("{path}[{i}]");
        let Some(m) = v.as_mapping() else {
            d.error(&ip, "must be an object");
            continue;
        };
        if let Some((value, dup_key)) = item(m, &ip, d) {
            if seen.contains(&dup_key) {
                d.note(&ip, "the same as an earlier item: once is enough");
                continue;
            }
            seen.push(dup_key);
            out.push(value);
        }
    }
    out
}

/// `location` of a constant or system parameter: header or query (cagate sends them nowhere else).
fn item_location(m: &Mapping, ip: &str, d: &mut Diags) -> Option<&'static str> {
    let Some(word) = m.get("location").and_then(Value::as_str) else {
        d.note(ip, "no location: sent as a header");
        return Some("HEADER");
    };
    match location_word(word) {
        Some(l @ ("HEADER" | "QUERY")) => Some(l),
        Some(_) => {
            d.warn(&at(ip, "location"), format!("{word}: cagate sends constant and system parameters as a header or in the query only; left out"));
            None
        }
        None => {
            d.error(&at(ip, "location"), format!("unknown location {word}: header or query"));
            None
        }
    }
}

fn dup_key(name: &str, location: &str) -> String {
    format!("{location}:{}", if location == "HEADER" { name.to_ascii_lowercase() } else { name.to_string() })
}

fn system(m: &Mapping, ip: &str, d: &mut Diags) -> Option<(Value, String)> {
    unknown_extensions(m, ip, &[], d);
    let Some(name) = m.get("systemName").and_then(Value::as_str) else {
        d.error(&at(ip, "systemName"), "missing: CaClientIp, CaRequestId, …");
        return None;
    };
    let Some(backend_name) = m.get("backendName").and_then(Value::as_str).filter(|n| !n.is_empty()) else {
        d.error(&at(ip, "backendName"), "missing: the name the backend receives it under");
        return None;
    };
    if ALIYUN_ONLY_SYSTEM.contains(&name) {
        d.warn(&at(ip, "systemName"), format!("{name} is not supported by cagate: left out"));
        return None;
    }
    if !cagate_core::system_parameter_names().any(|n| n == name) {
        let known: Vec<&str> = cagate_core::system_parameter_names().collect();
        d.error(&at(ip, "systemName"), format!("unknown system parameter {name}: {}", known.join(", ")));
        return None;
    }
    let location = item_location(m, ip, d)?;
    let v = value::map([("name", s(name)), ("backendName", s(backend_name)), ("location", s(location))]);
    Some((v, dup_key(backend_name, location)))
}

fn constant(m: &Mapping, ip: &str, d: &mut Diags) -> Option<(Value, String)> {
    let Some(name) = ["backendName", "name"].iter().find_map(|k| m.get(*k).and_then(Value::as_str)).filter(|n| !n.is_empty()) else {
        d.error(&at(ip, "backendName"), "missing: the name the backend receives it under");
        return None;
    };
    let Some(value) = ["value", "constantValue"].iter().find_map(|k| m.get(*k).and_then(scalar_text)) else {
        d.error(&at(ip, "value"), "missing: the constant value");
        return None;
    };
    let location = item_location(m, ip, d)?;
    let v = value::map([("name", s(name)), ("value", s(&value)), ("location", s(location))]);
    Some((v, dup_key(name, location)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn addresses() {
        let mut c = Clusters::new();
        let mut d = Diags::default();
        let t = address_target("http://orders.internal:8080", "a", &mut c, &mut d).unwrap();
        assert_eq!(t, Target { cluster: "backend_orders_internal_8080".into(), host: Some("orders.internal:8080".into()), prefix: String::new() });
        let t = address_target("HTTPS://10.0.0.7/base/", "a", &mut c, &mut d).unwrap();
        assert_eq!((t.cluster.as_str(), t.prefix.as_str()), ("backend_10_0_0_7_443_tls", "/base"));
        assert!(c["backend_10_0_0_7_443_tls"].ip && c["backend_10_0_0_7_443_tls"].tls);
        assert!(!c["backend_orders_internal_8080"].ip);
        let t = address_target("http://[::1]:9000", "a", &mut c, &mut d).unwrap();
        assert_eq!(t.cluster, "backend___1_9000");
        assert_eq!(address_target("http://#orders#", "a", &mut c, &mut d).unwrap().cluster, "#orders#");
        assert!(d.errors.is_empty());
        for bad in ["orders.internal:8080", "http://a@b", "http://h:99999", "http://x#orders#", "http://:80", "ftp://h"] {
            assert!(address_target(bad, "a", &mut c, &mut d).is_none(), "{bad}");
        }
        assert_eq!(d.errors.len(), 6);
        assert_eq!(c.len(), 3);
    }
}
