//! Aliyun's third-party authentication plugin (`remoteAuth`): before the backend, the gateway asks an
//! authentication service of the user's own, sending chosen values of the request, and admits the
//! request only when the answer meets `successCondition`. Envoy cannot be told to call a URL from a
//! filter, so the service is reached through an Envoy cluster (`cluster`, cagate's own field) with
//! `authUri.address` as the authority. Parsed here; the call, the verdict and the per-worker cache of
//! successes are pure functions the engine (`engine/remote_checks.rs`) drives.
//!
//! Fail-closed: no answer (timeout, connection failure, reset) or a 5xx refuses the request with
//! `X503RA`; an answer that does not meet the condition refuses it with `A403RA`. Failures are never
//! cached.

use crate::contract::errors;
use crate::contract::refusal::{OwnReply, Refusal};
use crate::plugins::access_control::{parse_variables, Variables};
use crate::plugins::conditions::{self, eval, json_lookup, Expr, Val, VarSource};
use crate::plugins::definition::{AliyunPlugin, Definition};
use crate::schema::validator::{has_control, join, Validator};
use crate::wire::headers::{same_name, starts_with_name, Headers};
use crate::wire::url::{parse_urlencoded, trim, url_encode, UrlParam};
use serde_json::{Map, Value};
use std::collections::{HashMap, VecDeque};
use std::hash::Hasher;

/// Aliyun's longest `authUri.timeout` (10 s).
const MAX_TIMEOUT_MS: u64 = 10_000;
/// cagate's default when `authUri.timeout` is absent: a request waits at most this long.
const DEFAULT_TIMEOUT_MS: u64 = 1_000;
/// Aliyun's longest `cachedTimeBySecond` (10 minutes).
const MAX_CACHE_S: u64 = 600;
/// Most `authParameters` (Aliyun publishes none; each is a value copied per request).
const MAX_PARAMETERS: usize = 32;
/// Most headers passed from an answer (to the backend or to the client).
const MAX_PASSED_HEADERS: usize = 16;
/// Longest answer body the verdict reads (a `BodyJsonField` parameter); the adapters read no more.
pub const MAX_ANSWER_BODY: usize = 64 * 1024;
/// Most successes one worker remembers, all plugins together: the cache is bounded per worker.
pub(crate) const CACHE_ENTRIES: usize = 1024;
/// The header that carries the request's path to the service with `passThroughPath` (Aliyun's name).
pub(crate) const RAW_PATH_HEADER: &str = "x-ca-remote-auth-raw-path";
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

/// Where a value is read from (the client's request) or sent to (the authentication call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Header,
    Query,
}

/// One of `authParameters`: a value of the request sent to the service under another name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthParameter {
    pub source: Location,
    /// Lower case for a header.
    pub source_name: String,
    pub target: Location,
    pub target_name: String,
}

#[derive(Debug, Clone)]
pub struct RemoteAuthConfig {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub method: &'static str,
    pub timeout_ms: u64,
    pub pass_through_path: bool,
    pub cache_ms: i64,
    pub trim_authorization_prefix: bool,
    pub parameters: Vec<AuthParameter>,
    pub vars: Variables,
    pub condition: Expr,
    pub error_status: Option<u16>,
    pub error_message: Option<String>,
    /// Headers of a successful answer the backend receives (lower case; cagate's guess of the field).
    pub success_headers: Vec<String>,
    /// Headers of a refusing answer the client receives (lower case).
    pub error_headers: Vec<String>,
}

/// Names an answer may never set on the backend's request or the client's refusal: the gateway's own
/// (`X-Ca-*`, `X-Cagate-*`), Envoy's (`X-Envoy-*`), pseudo-headers and the message framing.
fn reserved(name: &str) -> bool {
    let n = name.as_bytes();
    n.first() == Some(&b':')
        || [b"x-ca-".as_slice(), b"x-cagate-", b"x-envoy-"].iter().any(|p| starts_with_name(n, p))
        || ["host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "keep-alive", "content-type"]
            .iter()
            .any(|r| same_name(n, r.as_bytes()))
}

fn location(c: &mut Validator, o: &Map<String, Value>, path: &str, key: &str) -> Option<Location> {
    c.choice(o, path, key, "location", true, &[("header", Location::Header), ("query", Location::Query)])
}

fn parameters(c: &mut Validator, o: &Map<String, Value>, path: &str) -> Vec<AuthParameter> {
    let list = c.array(o, path, "authParameters");
    if list.len() > MAX_PARAMETERS {
        c.err(&join(path, "authParameters"), format!("has {} entries; at most {MAX_PARAMETERS}", list.len()));
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, v) in list.iter().enumerate() {
        let p = format!("{}[{i}]", join(path, "authParameters"));
        let Some(o) = c.object(v, &p, &["targetParameterName", "sourceParameterName", "targetLocation", "sourceLocation"]) else { continue };
        let target_name = c.string(o, &p, "targetParameterName", true);
        let source_name = c.string(o, &p, "sourceParameterName", true);
        let (target, source) = (location(c, o, &p, "targetLocation"), location(c, o, &p, "sourceLocation"));
        let (Some(target_name), Some(source_name), Some(target), Some(source)) = (target_name, source_name, target, source) else { continue };
        let mut ok = true;
        for (name, loc, key) in [(target_name, target, "targetParameterName"), (source_name, source, "sourceParameterName")] {
            if loc == Location::Header && !c.header_name(&join(&p, key), name) {
                ok = false;
            }
            if has_control(name) {
                c.err(&join(&p, key), "must not contain control characters");
                ok = false;
            }
        }
        if target == Location::Header && reserved(target_name) {
            c.err(&join(&p, "targetParameterName"), format!("{target_name} is a header the gateway or Envoy owns"));
            ok = false;
        }
        if ok {
            let lower = |n: &str, l: Location| if l == Location::Header { n.to_ascii_lowercase() } else { n.to_string() };
            out.push(AuthParameter { source, source_name: lower(source_name, source), target, target_name: lower(target_name, target) });
        }
    }
    out
}

/// A list of header names: an array, or one string of comma-separated names (Aliyun's sample is cut
/// off before the value; both forms are accepted).
fn header_list(c: &mut Validator, o: &Map<String, Value>, path: &str, key: &str) -> Vec<String> {
    let names: Vec<String> = match o.get(key) {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::String(s)) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect(),
        Some(_) => c.strings(o, path, key).unwrap_or_default().into_iter().map(str::to_string).collect(),
    };
    let p = join(path, key);
    if names.len() > MAX_PASSED_HEADERS {
        c.err(&p, format!("names {} headers; at most {MAX_PASSED_HEADERS}", names.len()));
        return Vec::new();
    }
    let mut out = Vec::new();
    for n in names {
        if !c.header_name(&p, &n) {
            continue;
        }
        if reserved(&n) {
            c.err(&p, format!("{n} is a header the gateway or Envoy owns: an answer cannot set it"));
            continue;
        }
        out.push(n.to_ascii_lowercase());
    }
    out
}

/// `authUri`: the authority (from `address`, else the cluster's name), the path, the method, the timeout.
fn auth_uri(c: &mut Validator, v: Option<&Value>, path: &str, cluster: &str) -> Option<(String, String, &'static str, u64)> {
    let p = join(path, "authUri");
    let Some(v) = v else {
        c.err(&p, "is required");
        return None;
    };
    let o = c.object(v, &p, &["address", "path", "timeout", "method"])?;
    let authority = match c.string(o, &p, "address", false).map(crate::wire::url::http_target) {
        None => cluster.to_string(),
        Some(Ok((authority, "/"))) if !has_control(authority) => authority.to_string(),
        Some(Ok((_, "/"))) => {
            c.err(&join(&p, "address"), "must not contain control characters");
            return None;
        }
        Some(Ok(_)) => {
            c.err(&join(&p, "address"), "must be a scheme, a host and a port only: the path goes in authUri.path");
            return None;
        }
        Some(Err(e)) => {
            c.err(&join(&p, "address"), e);
            return None;
        }
    };
    let target = c.string(o, &p, "path", true)?;
    if !target.starts_with('/') || target.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'#') {
        c.err(&join(&p, "path"), "must start with / and hold no space, control character or #");
        return None;
    }
    let timeout = c.integer(o, &p, "timeout", DEFAULT_TIMEOUT_MS, 1, MAX_TIMEOUT_MS);
    let method = match c.string(o, &p, "method", false) {
        None => "GET",
        Some(m) => match METHODS.iter().find(|x| x.eq_ignore_ascii_case(m)) {
            Some(x) => x,
            None => {
                c.err(&join(&p, "method"), format!("unknown method {m}: {}", METHODS.join(", ")));
                return None;
            }
        },
    };
    Some((authority, target.to_string(), method, timeout))
}

/// `successCondition` in Aliyun's `${name}` spelling, or the condition language's `$name`.
fn condition(c: &mut Validator, o: &Map<String, Value>, path: &str, vars: &Variables) -> Option<Expr> {
    let src = c.string(o, path, "successCondition", false).unwrap_or("$statusCode = 200");
    let mut plain = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(at) = rest.find("${") {
        plain.push_str(&rest[..at]);
        let Some(end) = rest[at..].find('}') else {
            c.err(&join(path, "successCondition"), "has an unclosed ${");
            return None;
        };
        plain.push('$');
        plain.push_str(&rest[at + 2..at + end]);
        rest = &rest[at + end + 1..];
    }
    plain.push_str(rest);
    match conditions::parse(&plain, &vars.names) {
        Ok(e) => Some(e),
        Err(e) => {
            c.err(&join(path, "successCondition"), e.to_string());
            None
        }
    }
}

impl AliyunPlugin for RemoteAuthConfig {
    const TYPE: &'static str = "remoteAuth";

    fn parse(c: &mut Validator, data: &Value, def: &Definition<'_>) -> Option<Self> {
        let path = def.path;
        let o = c.object(
            data,
            path,
            &[
                "cluster",
                "parameters",
                "authUriType",
                "authUri",
                "passThroughBody",
                "passThroughPath",
                "cachedTimeBySecond",
                "trimAuthorizationHeaderPrefix",
                "authParameters",
                "successCondition",
                "errorMessage",
                "errorStatusCode",
                "errorPassThroughHeaderList",
                "successPassThroughHeaderList",
            ],
        )?;
        let cluster = c.string(o, path, "cluster", false);
        if cluster.is_none() {
            c.err(&join(path, "cluster"), "is required: the Envoy cluster that reaches the authentication service (cagate cannot call a URL itself)");
        }
        let cluster = cluster.filter(|s| c.text(&join(path, "cluster"), s)).unwrap_or_default().to_string();
        // Both of Aliyun's types (an Internet address, an address in a VPC) are reached the same way here: through the cluster.
        let _ = c.choice(o, path, "authUriType", "authUriType", false, &[("HTTP", ()), ("HTTP-VPC", ())]);
        let uri = auth_uri(c, o.get("authUri"), path, &cluster);
        if c.boolean(o, path, "passThroughBody", false) {
            c.err(&join(path, "passThroughBody"), "true is not supported: cagate sends the authentication service no body");
        }
        let pass_through_path = c.boolean(o, path, "passThroughPath", false);
        let cache_s = c.integer(o, path, "cachedTimeBySecond", 0, 0, MAX_CACHE_S);
        let trim_authorization_prefix = c.boolean(o, path, "trimAuthorizationHeaderPrefix", false);
        let parameters = parameters(c, o, path);
        let mut vars = parse_variables(c, o, path, true);
        for (name, loc) in vars.names.iter().zip(&vars.locations) {
            if !matches!(loc, VarSource::StatusCode | VarSource::Header(_) | VarSource::BodyJsonField(_)) {
                c.err(
                    &format!("{}.{name}", join(path, "parameters")),
                    "is not available to remoteAuth: its condition reads the service's answer (StatusCode, Header:<name>, BodyJsonField:<path>)",
                );
            }
        }
        if !vars.names.iter().any(|n| n == "statusCode") {
            vars.names.push("statusCode".to_string());
            vars.locations.push(VarSource::StatusCode);
        }
        let condition = condition(c, o, path, &vars);
        let error_status = o.contains_key("errorStatusCode").then(|| c.integer(o, path, "errorStatusCode", 403, 400, 599) as u16);
        let error_message = c.string(o, path, "errorMessage", false).filter(|m| c.header_value(&join(path, "errorMessage"), m)).map(str::to_string);
        let error_headers = header_list(c, o, path, "errorPassThroughHeaderList");
        let success_headers = header_list(c, o, path, "successPassThroughHeaderList");
        let ((authority, path, method, timeout_ms), condition) = (uri?, condition?);
        if cluster.is_empty() {
            return None;
        }
        Some(RemoteAuthConfig {
            cluster,
            authority,
            path,
            method,
            timeout_ms,
            pass_through_path,
            cache_ms: cache_s as i64 * 1000,
            trim_authorization_prefix,
            parameters,
            vars,
            condition,
            error_status,
            error_message,
            success_headers,
            error_headers,
        })
    }
}

/// An HTTP call through an Envoy cluster, made by the adapter on a stream's behalf; its answer comes
/// back as `Exchange::on_http_answer` with the token the adapter returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCall {
    pub cluster: String,
    /// `:method`, `:path`, `:authority` first, then the call's headers; values header-safe.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout_ms: u64,
}

/// What came back from an `HttpCall`: `status` is `None` when no response came (timeout, connection
/// failure, reset); the body is at most `MAX_ANSWER_BODY` bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: Option<u16>,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl HttpAnswer {
    /// From the host's answer: its header pairs (`:status` among them; none when the call failed)
    /// and its body.
    pub fn from_pairs(headers: Vec<(Vec<u8>, Vec<u8>)>, mut body: Vec<u8>) -> HttpAnswer {
        let status = headers.iter().find(|(n, _)| n == b":status").and_then(|(_, v)| std::str::from_utf8(v).ok()?.trim().parse::<u16>().ok());
        body.truncate(MAX_ANSWER_BODY);
        HttpAnswer { status, headers, body }
    }

    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| same_name(n, name.as_bytes())).map(|(_, v)| v.as_slice())
    }
}

/// A source the client gave more than once (a header in two spellings or twice, a query parameter
/// twice): the service would judge one value and the backend might read another, so such a request
/// is refused rather than asked about.
pub(crate) fn repeated_source<'c>(cfg: &'c RemoteAuthConfig, headers: &Headers<'_>, query: &[u8]) -> Option<&'c str> {
    let mut params: Option<Vec<UrlParam<'_>>> = None;
    for p in &cfg.parameters {
        let n = match p.source {
            Location::Header => headers.spellings(p.source_name.as_bytes()).count(),
            Location::Query => {
                let ps = params.get_or_insert_with(|| {
                    let mut v = Vec::new();
                    parse_urlencoded(query, &mut v);
                    v
                });
                ps.iter().filter(|q| *q.name == *p.source_name.as_bytes()).count()
            }
        };
        if n > 1 {
            return Some(&p.source_name);
        }
    }
    None
}

/// The value of one `authParameters` source in the client's request (`None`: absent, not sent).
fn source_value(cfg: &RemoteAuthConfig, p: &AuthParameter, headers: &Headers<'_>, query: &[u8]) -> Option<Vec<u8>> {
    match p.source {
        Location::Header => {
            // Any spelling a backend reads as this name (at most one: repeats are refused first).
            let v = trim(headers.spellings(p.source_name.as_bytes()).next()?);
            // `Authorization: Bearer x` sends `x` (Aliyun: the prefix up to the first space is skipped).
            let v = if cfg.trim_authorization_prefix && p.source_name == "authorization" {
                v.iter().position(|&b| b == b' ').map_or(v, |sp| trim(v.get(sp + 1..).unwrap_or_default()))
            } else {
                v
            };
            Some(v.to_vec())
        }
        Location::Query => {
            let mut params = Vec::new();
            parse_urlencoded(query, &mut params);
            let found = params.into_iter().find(|q| *q.name == *p.source_name.as_bytes())?;
            Some(found.value.map(|v| v.into_owned()).unwrap_or_default())
        }
    }
}

/// The call for one request, and the key its success is cached under (when the plugin caches):
/// the plugin, the API and every value sent (Aliyun keys its cache by the API and the parameters).
pub(crate) fn call(
    cfg: &RemoteAuthConfig,
    plugin: u32,
    api: u32,
    headers: &Headers<'_>,
    raw_path: &[u8],
    query: &[u8],
    seed: (u64, u64),
) -> (HttpCall, u128) {
    let mut out_headers: Vec<(String, String)> = Vec::with_capacity(4 + cfg.parameters.len());
    let mut out_query = String::new();
    let mut keys = [(seed.0, seed.1), (seed.1 ^ 0x5bd1_e995, seed.0.rotate_left(17))].map(|(a, b)| {
        #[allow(deprecated)]
        let mut h = std::hash::SipHasher::new_with_keys(a, b);
        h.write_u32(plugin);
        h.write_u32(api);
        h
    });
    let mut feed = |tag: u8, name: &[u8], value: &[u8]| {
        for h in keys.iter_mut() {
            h.write_u8(tag);
            h.write_usize(name.len());
            h.write(name);
            h.write_usize(value.len());
            h.write(value);
        }
    };
    for p in &cfg.parameters {
        let Some(value) = source_value(cfg, p, headers, query) else {
            feed(0, p.target_name.as_bytes(), b"");
            continue;
        };
        feed(1, p.target_name.as_bytes(), &value);
        let text = String::from_utf8_lossy(&value);
        match p.target {
            Location::Header => out_headers.push((p.target_name.clone(), crate::wire::text::header_value(&text).into_owned())),
            Location::Query => {
                out_query.push(if out_query.is_empty() { '?' } else { '&' });
                out_query.push_str(&url_encode(&p.target_name));
                out_query.push('=');
                out_query.push_str(&url_encode(&text));
            }
        }
    }
    if cfg.pass_through_path {
        feed(2, b"", raw_path);
        out_headers.push((RAW_PATH_HEADER.to_string(), crate::wire::text::header_safe(raw_path)));
    }
    let key = keys.map(|h| h.finish());
    let mut all = vec![
        (":method".to_string(), cfg.method.to_string()),
        (":path".to_string(), format!("{}{out_query}", cfg.path)),
        (":authority".to_string(), cfg.authority.clone()),
    ];
    all.extend(out_headers);
    let call = HttpCall { cluster: cfg.cluster.clone(), headers: all, body: Vec::new(), timeout_ms: cfg.timeout_ms };
    (call, (key[0] as u128) << 64 | key[1] as u128)
}

fn answer_value(loc: &VarSource, a: &HttpAnswer, body: &Option<Value>) -> Val {
    match loc {
        VarSource::StatusCode => a.status.map_or(Val::Null, |s| Val::Num(f64::from(s))),
        VarSource::Header(n) => a.header(n).map_or(Val::Null, |v| Val::Str(String::from_utf8_lossy(v).into_owned())),
        VarSource::BodyJsonField(p) => body.as_ref().and_then(|b| json_lookup(b, p)).map_or(Val::Null, Val::from_json),
        _ => Val::Null,
    }
}

/// The service's verdict: the headers the backend receives from a success (lower-case names, the
/// configured ones the answer has), or the refusal. No answer or a 5xx is the service failing.
pub(crate) fn verdict(cfg: &RemoteAuthConfig, a: &HttpAnswer) -> Result<Passed, Refusal> {
    match a.status {
        None | Some(0) => return Err(Refusal::new(&errors::X503RA, &["no answer"], "remote auth: no answer")),
        Some(s) if s >= 500 => return Err(Refusal::new(&errors::X503RA, &[&format!("status {s}")], "remote auth: service error")),
        Some(_) => {}
    }
    let body = if cfg.vars.locations.iter().any(|l| matches!(l, VarSource::BodyJsonField(_))) { serde_json::from_slice(&a.body).ok() } else { None };
    let values: Vec<Val> = cfg.vars.locations.iter().map(|l| answer_value(l, a, &body)).collect();
    let var = |i: usize| values.get(i).cloned().unwrap_or(Val::Null);
    let mut never_random = || 0.0;
    let passed = |names: &[String]| -> Passed {
        names
            .iter()
            .filter(|n| !reserved(n))
            .filter_map(|n| a.header(n).map(|v| (n.clone(), crate::wire::text::header_value(&String::from_utf8_lossy(v)).into_owned().into_bytes())))
            .collect()
    };
    if eval(&cfg.condition, &var, &mut never_random) {
        return Ok(passed(&cfg.success_headers));
    }
    let mut r = Refusal::new(&errors::A403RA, &[], "remote auth: refused");
    if let Some(m) = &cfg.error_message {
        r.message = m.clone();
    }
    if let Some(status) = cfg.error_status {
        r.own = Some(Box::new(OwnReply { status, body: None }));
    }
    r.headers = passed(&cfg.error_headers).into_iter().map(|(n, v)| (n.into(), String::from_utf8_lossy(&v).into_owned())).collect();
    Err(r)
}

/// Headers an answer passes on: lower-case name, value.
pub(crate) type Passed = Vec<(String, Vec<u8>)>;

/// The successes one worker remembers (`cachedTimeBySecond`): by the call's keyed hash, never a
/// value of the request; at most `CACHE_ENTRIES`, the oldest forgotten first. In the worker's memory,
/// never in Envoy's shared data (which never frees a key).
#[derive(Debug)]
pub struct AuthCache {
    entries: HashMap<u128, (i64, Passed)>,
    order: VecDeque<u128>,
    pub(crate) seed: (u64, u64),
}

impl AuthCache {
    pub fn new(seed: (u64, u64)) -> AuthCache {
        // Its own keys: a cache key never equals a JWT cache's hash of the same bytes.
        AuthCache { entries: HashMap::new(), order: VecDeque::new(), seed: (seed.0.rotate_left(31) ^ 0x7261_6175, seed.1.rotate_right(7)) }
    }

    /// A remembered success still fresh at `now_ms`: the headers it passed on.
    pub fn get(&self, key: u128, now_ms: i64) -> Option<&[(String, Vec<u8>)]> {
        self.entries.get(&key).filter(|(until, _)| *until > now_ms).map(|(_, h)| h.as_slice())
    }

    pub fn remember(&mut self, key: u128, until_ms: i64, headers: Passed) {
        while self.order.len() >= CACHE_ENTRIES {
            match self.order.pop_front() {
                Some(old) => {
                    self.entries.remove(&old);
                }
                None => break,
            }
        }
        if self.entries.insert(key, (until_ms, headers)).is_none() {
            self.order.push_back(key);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(data: Value) -> Result<RemoteAuthConfig, Vec<String>> {
        let mut c = Validator::default();
        let def = Definition { name: "ra", path: "ra", app_ids: &[] };
        let cfg = RemoteAuthConfig::parse(&mut c, &data, &def);
        match (cfg, c.problems.is_empty()) {
            (Some(cfg), true) => Ok(cfg),
            _ => Err(c.problems.iter().map(|p| p.to_string()).collect()),
        }
    }

    fn base() -> Value {
        serde_json::json!({
            "cluster": "auth",
            "authUri": { "address": "http://auth.example:8080", "path": "/auth", "timeout": 500, "method": "POST" },
            "authParameters": [
                { "targetParameterName": "x-token", "sourceParameterName": "Authorization", "targetLocation": "header", "sourceLocation": "header" },
                { "targetParameterName": "user", "sourceParameterName": "userId", "targetLocation": "query", "sourceLocation": "query" }
            ],
            "trimAuthorizationHeaderPrefix": true,
            "passThroughPath": true,
            "successCondition": "${statusCode} = 200",
            "successPassThroughHeaderList": "X-User-Id, x-tenant"
        })
    }

    #[test]
    fn builds_the_call_from_the_request() {
        let cfg = parse(base()).expect("valid");
        assert_eq!((cfg.authority.as_str(), cfg.method, cfg.timeout_ms), ("auth.example:8080", "POST", 500));
        let h = Headers::from_pairs(vec![(&b"authorization"[..], &b"Bearer abc"[..]), (&b"host"[..], &b"api"[..])]);
        let (call, key) = call(&cfg, 0, 1, &h, b"/p/q", b"userId=u%201&x=2", (1, 2));
        let get = |n: &str| call.headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get(":path"), Some("/auth?user=u%201"));
        assert_eq!(get(":authority"), Some("auth.example:8080"));
        assert_eq!(get("x-token"), Some("abc"), "Bearer prefix trimmed");
        assert_eq!(get(RAW_PATH_HEADER), Some("/p/q"));
        let (_, other) = super::call(&cfg, 0, 1, &h, b"/p/q", b"userId=u2", (1, 2));
        assert_ne!(key, other, "another value, another key");
        let (_, again) = super::call(&cfg, 0, 1, &h, b"/p/q", b"userId=u%201", (1, 2));
        assert_eq!(key, again);
    }

    #[test]
    fn verdicts() {
        let cfg = parse(base()).expect("valid");
        let ok = HttpAnswer::from_pairs(vec![(b":status".to_vec(), b"200".to_vec()), (b"x-user-id".to_vec(), b"u1".to_vec())], Vec::new());
        assert_eq!(verdict(&cfg, &ok), Ok(vec![("x-user-id".to_string(), b"u1".to_vec())]));
        let denied = HttpAnswer::from_pairs(vec![(b":status".to_vec(), b"401".to_vec())], Vec::new());
        assert_eq!(verdict(&cfg, &denied).map_err(|r| r.error.code), Err("A403RA"));
        let failed = HttpAnswer::from_pairs(vec![(b":status".to_vec(), b"503".to_vec())], Vec::new());
        assert_eq!(verdict(&cfg, &failed).map_err(|r| r.error.code), Err("X503RA"));
        assert_eq!(verdict(&cfg, &HttpAnswer::default()).map_err(|r| r.error.code), Err("X503RA"));
    }

    #[test]
    fn refuses_bad_configurations_with_their_paths() {
        let mut v = base();
        v["authUri"]["vpc"] = Value::Bool(true);
        v["successPassThroughHeaderList"] = Value::String("x-ca-app-id".into());
        v["passThroughBody"] = Value::Bool(true);
        v.as_object_mut().map(|o| o.remove("cluster"));
        let problems = parse(v).err().unwrap_or_default().join("\n");
        for want in ["ra.authUri.vpc", "ra.successPassThroughHeaderList: x-ca-app-id is a header", "ra.passThroughBody", "ra.cluster: is required"] {
            assert!(problems.contains(want), "{want} in {problems}");
        }
    }

    #[test]
    fn the_cache_is_bounded_and_expires() {
        let mut cache = AuthCache::new((0, 0));
        for k in 0..(CACHE_ENTRIES as u128 + 10) {
            cache.remember(k, 100, Vec::new());
        }
        assert_eq!(cache.len(), CACHE_ENTRIES);
        assert!(cache.get(0, 50).is_none(), "the oldest went first");
        assert!(cache.get(CACHE_ENTRIES as u128 + 9, 50).is_some());
        assert!(cache.get(CACHE_ENTRIES as u128 + 9, 100).is_none(), "expired");
    }
}
