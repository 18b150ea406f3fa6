//! Aliyun's transformer plugin (the "request-response rewrite" plugin): constant edits of what the
//! backend receives (headers and query parameters added if absent, put, removed) and of what the
//! client receives (the status code, response headers). Parsed here; the request edits are applied in
//! `request/forward.rs` after every check has admitted the request and after parameter mapping (the
//! signature was verified on what the client sent), the response edits in `engine/response.rs` after
//! errorMapping, as Aliyun orders them.
//!
//! Aliyun gives the edits as lists under one key per operation, with no order between the keys; one
//! name edited by two operations would make the result depend on an order nobody wrote down, so it is
//! refused. Headers the gateway owns (the identity it vouches for, its routing and hop headers, HTTP
//! framing) are refused too: a transformer cannot make the backend trust a value the gateway did not set.

use crate::plugins::definition::{AliyunPlugin, Definition};
use crate::schema::validator::{join, kind, Validator};
use crate::wire::headers::{same_name, starts_with_name, Headers};
use crate::wire::url::{percent_decode, url_encode};
use serde_json::{Map, Value};

/// Most edits in one list (Aliyun publishes no limit; each is applied per request).
const MAX_EDITS: usize = 32;
/// Longest value: it is sent in a header or a query parameter.
const MAX_VALUE: usize = 4096;

/// Request headers a transformer may not set or remove (any spelling a backend reads as the same
/// name): the gateway sets them, and a backend trusts them because it does.
const OWNED_REQUEST: &[&str] = &[
    crate::contract::names::APP_ID_HEADER,
    crate::contract::names::API_NAME_HEADER,
    crate::contract::names::REQUEST_ID_HEADER,
    crate::contract::names::ROUTING_NAME_HEADER,
    crate::contract::names::BACKEND_CLUSTER_HEADER,
    crate::plugins::circuit_breaker::DOWNGRADE_HEADER,
    "x-ca-hops",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "te",
    "upgrade",
    "keep-alive",
    "proxy-connection",
];
/// Request header prefixes a transformer may not touch: the backend signature's headers and Envoy's
/// own controls (timeouts, retries), which the gateway sets or Envoy reads.
const OWNED_REQUEST_PREFIXES: &[&str] = &["x-ca-proxy-", "x-cagate-", "x-envoy-"];
/// Response headers a transformer may not touch: the gateway's error contract and request id, and framing.
const OWNED_RESPONSE: &[&str] = &[
    crate::contract::names::REQUEST_ID_HEADER,
    crate::contract::names::ERROR_CODE_HEADER,
    crate::contract::names::ERROR_MESSAGE_HEADER,
    "x-ca-debug-info",
    "content-length",
    "transfer-encoding",
    "connection",
];

/// Header edits: set a name to a value, or remove it (`None`).
pub(crate) use crate::wire::headers::Edits as HeaderEdits;

/// What an edit does (Aliyun's key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `add…IfAbsent`: set only when the name is not there.
    AddIfAbsent,
    /// `put…`: set, replacing every value there.
    Put,
    /// `remove…`: remove every value.
    Remove,
}

/// Where a request edit applies (Aliyun's `location`; `form` is refused: the gateway does not rewrite bodies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Header,
    Query,
}

/// One edit: a header name in lower case, or a query parameter's name as given; no value for a removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub op: Op,
    pub location: Location,
    pub name: String,
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct TransformerConfig {
    /// Request edits (header and query).
    pub request: Vec<Edit>,
    /// `setResponseStatusCode`.
    pub status: Option<u16>,
    /// Response header edits (`location` is always header).
    pub response: Vec<Edit>,
}

const KEYS: &[(&str, Op, bool)] = &[
    ("addRequestParameterIfAbsent", Op::AddIfAbsent, false),
    ("putRequestParameter", Op::Put, false),
    ("removeRequestParameter", Op::Remove, false),
    ("addResponseHeaderIfAbsent", Op::AddIfAbsent, true),
    ("putResponseHeader", Op::Put, true),
    ("removeResponseHeader", Op::Remove, true),
];

/// A constant value: Aliyun's YAML template writes numbers unquoted (`value: 123456`).
fn value(c: &mut Validator, o: &Map<String, Value>, path: &str) -> Option<String> {
    let text = match o.get("value") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        None | Some(Value::Null) => {
            c.err(&join(path, "value"), "is required");
            return None;
        }
        Some(v) => {
            c.err(&join(path, "value"), format!("must be a string or a number, not {}", kind(v)));
            return None;
        }
    };
    if text.len() > MAX_VALUE {
        c.err(&join(path, "value"), format!("is {} bytes; at most {MAX_VALUE}", text.len()));
        return None;
    }
    c.header_value(&join(path, "value"), &text).then_some(text)
}

fn location(c: &mut Validator, o: &Map<String, Value>, path: &str) -> Option<Location> {
    let given = c.string(o, path, "location", true)?;
    match given.to_ascii_lowercase().as_str() {
        "header" => Some(Location::Header),
        "query" => Some(Location::Query),
        "form" | "body" => {
            c.err(
                &join(path, "location"),
                format!("location {given} is not supported by cagate (it does not rewrite request bodies): header or query"),
            );
            None
        }
        _ => {
            c.err(&join(path, "location"), format!("unknown location {given}: header, query (or form, which cagate does not support)"));
            None
        }
    }
}

/// Whether a header name is one the gateway owns on this side.
fn owned(name: &str, response: bool) -> bool {
    let (names, prefixes) = if response { (OWNED_RESPONSE, &[][..]) } else { (OWNED_REQUEST, OWNED_REQUEST_PREFIXES) };
    names.iter().any(|o| same_name(name.as_bytes(), o.as_bytes())) || prefixes.iter().any(|p| starts_with_name(name.as_bytes(), p.as_bytes()))
}

fn edit(c: &mut Validator, v: &Value, path: &str, op: Op, response: bool) -> Option<Edit> {
    let fields: &[&str] = match (op, response) {
        (Op::Remove, false) => &["name", "location"],
        (_, false) => &["name", "value", "location"],
        (Op::Remove, true) => &["name"],
        (_, true) => &["name", "value"],
    };
    let o = c.object(v, path, fields)?;
    let name = c.string(o, path, "name", true);
    let loc = if response { Some(Location::Header) } else { location(c, o, path) };
    let value = if op == Op::Remove { None } else { Some(value(c, o, path)?) };
    let (name, location) = (name?, loc?);
    let npath = join(path, "name");
    let name = match location {
        Location::Header => {
            if !c.header_name(&npath, name) {
                return None;
            }
            if owned(name, response) {
                c.err(&npath, format!("header {name} is the gateway's own: a transformer cannot set or remove it"));
                return None;
            }
            name.to_ascii_lowercase()
        }
        Location::Query => {
            if !c.text(&npath, name) {
                return None;
            }
            name.to_string()
        }
    };
    Some(Edit { op, location, name, value })
}

/// Whether two edits name the same thing: header names as a backend reads them, query names exactly.
fn same_target(a: &Edit, b: &Edit) -> bool {
    a.location == b.location
        && match a.location {
            Location::Header => same_name(a.name.as_bytes(), b.name.as_bytes()),
            Location::Query => a.name == b.name,
        }
}

impl AliyunPlugin for TransformerConfig {
    const TYPE: &'static str = "transformer";

    fn parse(c: &mut Validator, data: &Value, def: &Definition<'_>) -> Option<Self> {
        let path = def.path;
        let mut fields: Vec<&str> = KEYS.iter().map(|k| k.0).collect();
        fields.push("setResponseStatusCode");
        let o = c.object(data, path, &fields)?;
        let before = c.problems.len();
        let mut cfg = TransformerConfig::default();
        let mut paths: Vec<(String, bool)> = Vec::new();
        for &(key, op, response) in KEYS {
            let list = c.array(o, path, key);
            if list.len() > MAX_EDITS {
                c.err(&join(path, key), format!("has {} edits; at most {MAX_EDITS}", list.len()));
                continue;
            }
            for (i, v) in list.iter().enumerate() {
                let p = format!("{}[{i}]", join(path, key));
                let Some(e) = edit(c, v, &p, op, response) else { continue };
                let side = if response { &cfg.response } else { &cfg.request };
                let side_paths: Vec<&String> = paths.iter().filter(|(_, r)| *r == response).map(|(p, _)| p).collect();
                if let Some(at) = side.iter().position(|x| same_target(x, &e)) {
                    let first = side_paths.get(at).map_or("", |s| s.as_str());
                    c.err(&join(&p, "name"), format!("{} is already edited by {first}: one edit per name", e.name));
                    continue;
                }
                paths.push((p, response));
                if response {
                    cfg.response.push(e)
                } else {
                    cfg.request.push(e)
                }
            }
        }
        if o.contains_key("setResponseStatusCode") {
            cfg.status = Some(c.integer(o, path, "setResponseStatusCode", 200, 200, 599) as u16);
        }
        (c.problems.len() == before).then_some(cfg)
    }
}

impl TransformerConfig {
    /// Whether any edit changes the query.
    pub(crate) fn edits_query(&self) -> bool {
        self.request.iter().any(|e| e.location == Location::Query)
    }

    /// Whether the plugin decides the query parameter `name`: puts or removes it (an add-if-absent
    /// leaves the client's value).
    pub(crate) fn sets_query(&self, name: &[u8]) -> bool {
        self.request.iter().any(|e| e.location == Location::Query && e.op != Op::AddIfAbsent && e.name.as_bytes() == name)
    }
}

/// The request's header edits, after the gateway's own (`edits`, applied to the client's headers
/// `head` as `exchange::edit_upstream_headers` does): whether a header is there is judged on what the
/// backend would receive, under any spelling a backend reads as the same name.
pub(crate) fn request_headers(cfg: &TransformerConfig, head: &Headers<'_>, edits: &mut HeaderEdits) {
    for e in cfg.request.iter().filter(|e| e.location == Location::Header) {
        let name = e.name.as_bytes();
        let present = || {
            let set_by_gateway = edits.iter().any(|(n, v)| same_name(n.as_bytes(), name) && v.is_some());
            let gateway_touches = edits.iter().any(|(n, _)| same_name(n.as_bytes(), name));
            set_by_gateway || (!gateway_touches && head.iter().any(|(n, _)| same_name(n, name)))
        };
        match (e.op, &e.value) {
            (Op::AddIfAbsent, Some(_)) if present() => {}
            (Op::AddIfAbsent | Op::Put, Some(v)) => {
                edits.retain(|(n, _)| !same_name(n.as_bytes(), name));
                edits.push((e.name.clone().into(), Some(v.as_bytes().to_vec())));
            }
            _ => {
                edits.retain(|(n, _)| !same_name(n.as_bytes(), name));
                edits.push((e.name.clone().into(), None));
            }
        }
    }
}

/// The query the backend receives after the query edits, given the one it would receive otherwise
/// (raw, as it goes on the wire); `None` when no edit changes it.
pub(crate) fn request_query(cfg: &TransformerConfig, query: &[u8]) -> Option<Vec<u8>> {
    if !cfg.edits_query() {
        return None;
    }
    let mut pieces: Vec<Vec<u8>> = query.split(|&b| b == b'&').filter(|p| !p.is_empty()).map(<[u8]>::to_vec).collect();
    let named = |piece: &[u8], name: &str| {
        let raw = piece.split(|&b| b == b'=').next().unwrap_or_default();
        &*percent_decode(raw, true) == name.as_bytes()
    };
    let mut changed = false;
    for e in cfg.request.iter().filter(|e| e.location == Location::Query) {
        let present = pieces.iter().any(|p| named(p, &e.name));
        if e.op == Op::AddIfAbsent && present {
            continue;
        }
        if present {
            pieces.retain(|p| !named(p, &e.name));
            changed = true;
        }
        if let (Op::AddIfAbsent | Op::Put, Some(v)) = (e.op, &e.value) {
            pieces.push(format!("{}={}", url_encode(&e.name), url_encode(v)).into_bytes());
            changed = true;
        }
    }
    changed.then(|| pieces.join(&b'&'))
}

/// The response's edits on the backend's headers `head`: the header edits to make (`None`: remove),
/// and the status to answer with, if the plugin sets one.
pub(crate) fn response(cfg: &TransformerConfig, head: Option<&Headers<'_>>) -> (HeaderEdits, Option<u16>) {
    let mut out = Vec::with_capacity(cfg.response.len());
    for e in &cfg.response {
        let present = head.is_some_and(|h| h.contains(e.name.as_bytes()));
        match (e.op, &e.value) {
            (Op::AddIfAbsent, Some(_)) if present => {}
            (Op::AddIfAbsent | Op::Put, Some(v)) => out.push((e.name.clone().into(), Some(v.as_bytes().to_vec()))),
            _ => out.push((e.name.clone().into(), None)),
        }
    }
    (out, cfg.status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(request: Vec<Edit>) -> TransformerConfig {
        TransformerConfig { request, ..TransformerConfig::default() }
    }

    fn q(op: Op, name: &str, value: Option<&str>) -> Edit {
        Edit { op, location: Location::Query, name: name.into(), value: value.map(str::to_string) }
    }

    #[test]
    fn query_edits_keep_other_parameters_as_sent() {
        let c = cfg(vec![q(Op::AddIfAbsent, "a", Some("1")), q(Op::Put, "b", Some("x y")), q(Op::Remove, "c", None)]);
        assert_eq!(request_query(&c, b"z=%2F&b=old&c=1&c=2").as_deref(), Some(&b"z=%2F&a=1&b=x%20y"[..]));
        // Present (encoded name): left alone.
        assert_eq!(request_query(&c, b"%61=9").as_deref(), Some(&b"%61=9&b=x%20y"[..]));
    }

    #[test]
    fn no_query_edit_leaves_the_query_alone() {
        assert_eq!(request_query(&cfg(vec![]), b"a=1"), None);
        assert_eq!(request_query(&cfg(vec![q(Op::Remove, "x", None)]), b"a=1"), None);
    }
}
