//! A Swagger 2.0 document with Aliyun's `x-aliyun-apigateway-*` operation extensions, as cagate
//! `apis[]`: one API per operation, `{param}` path segments as `[param]`, auth type, AppCode auth,
//! forced nonce check, parameter handling (request mode), parameters, and the backend.

use super::backend::{self, Clusters, Outcome, View};
use super::diag::{at, Diags};
use super::params;
use super::value::{boolean, key_text, s, scalar_text};
use serde_yaml::{Mapping, Value};
use std::collections::HashSet;

pub(crate) const EXT_PREFIX: &str = "x-aliyun-apigateway-";
const AUTH_TYPE: &str = "x-aliyun-apigateway-auth-type";
const APP_CODE: &str = "x-aliyun-apigateway-app-code-auth-type";
const FORCE_NONCE: &str = "x-aliyun-apigateway-api-force-nonce-check";
/// The same, in funcraft's vocabulary; accepted.
const FORCE_NONCE_SHORT: &str = "x-aliyun-apigateway-force-nonce-check";
const MARKET: &str = "x-aliyun-apigateway-api-market-enable";
const HANDLING: &str = "x-aliyun-apigateway-parameter-handling";
/// The spelling every real-world export uses.
const HANDLING_MISSPELT: &str = "x-aliyun-apigateway-paramater-handling";
pub(crate) const ANY_METHOD: &str = "x-aliyun-apigateway-any-method";
const API_NAME: &str = "x-aliyun-apigateway-api-name";

/// Operation extensions the importer reads; any other `x-aliyun-apigateway-*` is warned about.
const OPERATION_EXTENSIONS: &[&str] = &[
    AUTH_TYPE,
    APP_CODE,
    FORCE_NONCE,
    FORCE_NONCE_SHORT,
    MARKET,
    HANDLING,
    HANDLING_MISSPELT,
    ANY_METHOD,
    API_NAME,
    backend::BACKEND,
    backend::SYSTEM,
    backend::CONSTANT,
];

/// Aliyun's parameter handling, cagate's `requestMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Passthrough,
    Mapping,
    MappingPassthrough,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Passthrough => "PASSTHROUGH",
            Mode::Mapping => "MAPPING",
            Mode::MappingPassthrough => "MAPPING_PASSTHROUGH",
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Imported {
    pub(crate) apis: Vec<Value>,
    /// For each API (same index): the operation's path in the Swagger document.
    pub(crate) origins: Vec<String>,
    pub(crate) clusters: Clusters,
    /// Operations not imported (a backend type cagate does not support).
    pub(crate) skipped: usize,
}

struct Ctx<'a> {
    root: &'a Mapping,
    base_path: String,
    stages: &'a [String],
    names: HashSet<String>,
    out: Imported,
}

/// Where an operation is: its document path, method, gateway path and the path's parameters.
pub(crate) struct OpSite<'a> {
    pub(crate) path: String,
    pub(crate) method: String,
    pub(crate) gateway_path: &'a str,
    pub(crate) template_params: &'a [String],
    /// The path item's `parameters`, shared by its operations.
    pub(crate) shared: Option<&'a Value>,
    pub(crate) shared_path: String,
}

/// Converts the document; `stages` are the stages every imported API is published in.
pub(crate) fn convert(doc: &Value, stages: &[String], d: &mut Diags) -> Imported {
    let Some(root) = doc.as_mapping() else {
        d.error("", "not a Swagger document: the top level must be an object");
        return Imported::default();
    };
    if !version(root, d) {
        return Imported::default();
    }
    let base_path = base_path(root, d);
    for k in root.keys().filter_map(key_text) {
        if k.starts_with(EXT_PREFIX) {
            d.warn(&k, "not supported at the top level of the document: ignored");
        }
    }
    let Some(paths) = root.get("paths").and_then(Value::as_mapping) else {
        d.error("paths", "missing or not an object: nothing to import");
        return Imported::default();
    };
    let mut cx = Ctx { root, base_path, stages, names: HashSet::new(), out: Imported::default() };
    for (k, item) in paths {
        match key_text(k) {
            Some(key) if key.starts_with("x-") => {}
            Some(key) => path_item(&mut cx, &key, item, d),
            None => d.error("paths", "a path must be a string"),
        }
    }
    if cx.out.apis.is_empty() && d.errors.is_empty() {
        d.error("paths", "no operation to import");
    }
    cx.out
}

fn version(root: &Mapping, d: &mut Diags) -> bool {
    match root.get("swagger") {
        Some(v) if scalar_text(v).as_deref() == Some("2.0") => {
            if !v.is_string() {
                d.note("swagger", "write it as the string '2.0' (Swagger requires a string)");
            }
            true
        }
        Some(v) => {
            let found = scalar_text(v).unwrap_or_else(|| "(not a string)".to_string());
            d.error("swagger", format!("version {found}: only Swagger 2.0 documents can be imported (Aliyun's ImportSwagger format)"));
            false
        }
        None => {
            match root.get("openapi").and_then(scalar_text) {
                Some(v) => {
                    d.error("openapi", format!("an OpenAPI {v} document: only Swagger 2.0 documents can be imported (Aliyun's ImportSwagger format)"))
                }
                None => d.error("swagger", "missing: not a Swagger 2.0 document"),
            }
            false
        }
    }
}

/// `basePath` without its final `/`, put before every API path (Swagger: the URL is basePath + path).
fn base_path(root: &Mapping, d: &mut Diags) -> String {
    match root.get("basePath") {
        None => String::new(),
        Some(Value::String(b)) if b.starts_with('/') && !b.contains(['{', '}', '[', ']', '?', '#']) => {
            let t = b.trim_end_matches('/');
            if !t.is_empty() {
                d.note("basePath", format!("API paths start with {t}"));
            }
            t.to_string()
        }
        Some(_) => {
            d.error("basePath", "must be a path starting with /, without parameters");
            String::new()
        }
    }
}

/// A Swagger path as an Aliyun path template: `{name}` (or `[name]`) segments become `[name]`.
/// Returns the template and its parameter names.
pub(crate) fn template(p: &str) -> Result<(String, Vec<String>), String> {
    if !p.starts_with('/') {
        return Err("must start with /".to_string());
    }
    let mut names: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for seg in p.split('/') {
        let inner = seg.strip_prefix('{').and_then(|x| x.strip_suffix('}')).or_else(|| seg.strip_prefix('[').and_then(|x| x.strip_suffix(']')));
        match inner {
            Some(n) => {
                if n.is_empty() || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)) {
                    return Err(format!("path parameter {{{n}}}: a name of letters, digits, '_', '-' or '.'"));
                }
                if names.iter().any(|x| x == n) {
                    return Err(format!("path parameter {{{n}}} appears twice"));
                }
                names.push(n.to_string());
                out.push(format!("[{n}]"));
            }
            None if seg.contains(['{', '}', '[', ']']) => {
                return Err(format!("segment {seg}: a path parameter must be a whole segment, /{{name}}/"));
            }
            None => out.push(seg.to_string()),
        }
    }
    Ok((out.join("/"), names))
}

fn path_item(cx: &mut Ctx<'_>, key: &str, item: &Value, d: &mut Diags) {
    let path = at("paths", key);
    let Some(m) = item.as_mapping() else {
        d.error(&path, "a path item must be an object");
        return;
    };
    let (tpl, names) = match template(key) {
        Ok(t) => t,
        Err(e) => {
            d.error(&path, e);
            return;
        }
    };
    let gateway_path = if tpl == "/" && !cx.base_path.is_empty() { cx.base_path.clone() } else { format!("{}{tpl}", cx.base_path) };
    for (k, v) in m {
        let Some(k) = key_text(k) else { continue };
        let method = match k.as_str() {
            "get" | "put" | "post" | "delete" | "options" | "head" | "patch" => k.to_ascii_uppercase(),
            ANY_METHOD => "ANY".to_string(),
            "parameters" => continue,
            "$ref" => {
                d.warn(&at(&path, "$ref"), "a path item reference is not followed: its operations are not imported");
                continue;
            }
            other if other.starts_with(EXT_PREFIX) => {
                d.warn(&at(&path, other), "not supported on a path item: ignored");
                continue;
            }
            other if other.starts_with("x-") => continue,
            other => {
                d.warn(&at(&path, other), "not a Swagger 2.0 operation: ignored");
                continue;
            }
        };
        let site = OpSite {
            path: at(&path, &k),
            method,
            gateway_path: &gateway_path,
            template_params: &names,
            shared: m.get("parameters"),
            shared_path: at(&path, "parameters"),
        };
        operation(cx, &site, v, d);
    }
}

fn operation(cx: &mut Ctx<'_>, site: &OpSite<'_>, v: &Value, d: &mut Diags) {
    let p = site.path.as_str();
    let Some(op) = v.as_mapping() else {
        d.error(p, "an operation must be an object");
        return;
    };
    let errors = d.errors.len();
    unknown_extensions(op, p, OPERATION_EXTENSIONS, d);
    let method = match op.get(ANY_METHOD).map(boolean) {
        None | Some(Some(false)) => site.method.clone(),
        Some(Some(true)) => "ANY".to_string(),
        Some(None) => {
            d.error(&at(p, ANY_METHOD), "must be true or false");
            site.method.clone()
        }
    };
    let mode = request_mode(op, p, d);
    let parameters = params::parameters(cx.root, site, op, mode == Mode::Passthrough, d);
    let aliases = params::path_aliases(&parameters);
    let view = View { path: p, gateway_path: site.gateway_path, params: site.template_params, aliases: &aliases };
    let backend = backend::backend(op, &view, &mut cx.out.clusters, d);
    let mut api = Mapping::new();
    let name = api_name(cx, op, p, &method, site.gateway_path, d);
    api.insert(s("name"), s(&name));
    if let Some(text) = op.get("summary").or_else(|| op.get("description")).and_then(Value::as_str) {
        api.insert(s("description"), s(text));
    }
    api.insert(s("method"), s(&method));
    api.insert(s("path"), s(site.gateway_path));
    auth(op, p, &mut api, d);
    if let Some(protocol) =
        protocol(op.get("schemes").map(|v| (v, at(p, "schemes"))).or_else(|| cx.root.get("schemes").map(|v| (v, "schemes".to_string()))), d)
    {
        api.insert(s("protocol"), s(protocol));
    }
    api.insert(s("stages"), Value::Sequence(cx.stages.iter().map(|x| s(x)).collect()));
    api.insert(s("requestMode"), s(mode.as_str()));
    if !parameters.is_empty() {
        api.insert(s("parameters"), Value::Sequence(parameters));
    }
    match backend {
        Outcome::Backend(b) => {
            api.insert(s("backend"), b);
        }
        Outcome::Absent => d.warn(p, "no x-aliyun-apigateway-backend: the API has no backend (the Envoy route decides)"),
        Outcome::Skip => {
            cx.out.skipped += 1;
            cx.names.remove(&name);
            return;
        }
        Outcome::Invalid => return,
    }
    if d.errors.len() == errors {
        cx.out.apis.push(Value::Mapping(api));
        cx.out.origins.push(p.to_string());
    }
}

/// Swagger `schemes` (the operation's, else the document's) as the API's `protocol`: an HTTPS-only API
/// must stay HTTPS-only. `None` for both schemes (the default) or none given.
fn protocol(schemes: Option<(&Value, String)>, d: &mut Diags) -> Option<&'static str> {
    let (v, path) = schemes?;
    let Some(list) = v.as_sequence() else {
        d.error(&path, "must be a list of schemes");
        return None;
    };
    let (mut http, mut https) = (false, false);
    for x in list {
        match x.as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("http") => http = true,
            Some("https") => https = true,
            _ => d.warn(&path, "only http and https are served: other schemes ignored"),
        }
    }
    match (http, https) {
        (true, false) => Some("HTTP"),
        (false, true) => Some("HTTPS"),
        _ => None,
    }
}

/// Warns about every `x-aliyun-apigateway-*` key of `m` that is not in `known`.
pub(crate) fn unknown_extensions(m: &Mapping, path: &str, known: &[&str], d: &mut Diags) {
    for k in m.keys().filter_map(key_text) {
        if k.starts_with(EXT_PREFIX) && !known.contains(&k.as_str()) {
            d.warn(&at(path, &k), "not supported by cagate: ignored");
        }
    }
}

/// The API name: `x-aliyun-apigateway-api-name`, else `operationId`, else METHOD_path; made unique.
fn api_name(cx: &mut Ctx<'_>, op: &Mapping, p: &str, method: &str, gateway_path: &str, d: &mut Diags) -> String {
    let given = [API_NAME, "operationId"].iter().find_map(|k| op.get(*k).and_then(Value::as_str)).map(str::trim).filter(|n| !n.is_empty());
    let base = given.map_or_else(|| derived_name(method, gateway_path), str::to_string);
    let mut name = base.clone();
    let mut n = 2;
    while cx.names.contains(&name) {
        name = format!("{base}_{n}");
        n += 1;
    }
    if name != base {
        d.warn(p, format!("the API name {base} is taken: this one is {name}"));
    }
    cx.names.insert(name.clone());
    name
}

/// `GET /orders/[orderId]` → `GET_orders_orderId`.
fn derived_name(method: &str, path: &str) -> String {
    let mut out = method.to_string();
    let mut any = false;
    for seg in path.split('/').filter(|x| !x.is_empty()) {
        out.push('_');
        out.extend(seg.trim_matches(['[', ']']).chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }));
        any = true;
    }
    if !any {
        out.push_str("_root");
    }
    out
}

/// authType, appCodeAuth and forceNonceCheck.
fn auth(op: &Mapping, p: &str, api: &mut Mapping, d: &mut Diags) {
    let auth = match op.get(AUTH_TYPE).map(|v| v.as_str()) {
        None => "APP",
        Some(Some(t @ ("APP" | "ANONYMOUS"))) => t,
        Some(Some("APPOPENID")) => {
            d.warn(&at(p, AUTH_TYPE), "APPOPENID: OpenID Connect is not supported; imported as APP (signature or AppCode)");
            "APP"
        }
        Some(other) => {
            d.error(&at(p, AUTH_TYPE), format!("unknown auth type {}: APP or ANONYMOUS", other.unwrap_or("(not a string)")));
            "APP"
        }
    };
    api.insert(s("authType"), s(auth));
    match op.get(APP_CODE).map(|v| v.as_str()) {
        None => {}
        Some(Some(c @ ("DISABLE" | "HEADER" | "HEADER_QUERY"))) => {
            api.insert(s("appCodeAuth"), s(c));
        }
        Some(Some("DEFAULT")) => {
            d.note(&at(p, APP_CODE), "DEFAULT follows the API group's setting, which the document does not carry: AppCodes are not accepted (set appCodeAuth to change that)");
        }
        Some(other) => d.error(
            &at(p, APP_CODE),
            format!("unknown AppCode auth type {}: DEFAULT, DISABLE, HEADER or HEADER_QUERY", other.unwrap_or("(not a string)")),
        ),
    }
    let (key, nonce) = match (op.get(FORCE_NONCE), op.get(FORCE_NONCE_SHORT)) {
        (Some(v), _) => (FORCE_NONCE, Some(v)),
        (None, Some(v)) => (FORCE_NONCE_SHORT, Some(v)),
        (None, None) => (FORCE_NONCE, None),
    };
    let force = nonce.map_or(Some(false), boolean).unwrap_or_else(|| {
        d.error(&at(p, key), "must be true or false");
        false
    });
    api.insert(s("forceNonceCheck"), Value::Bool(force));
    match op.get(MARKET).map(boolean) {
        None | Some(Some(false)) => {}
        Some(Some(true)) => d.warn(&at(p, MARKET), "publishing to Alibaba Cloud Marketplace is not supported: ignored"),
        Some(None) => d.error(&at(p, MARKET), "must be true or false"),
    }
}

/// `x-aliyun-apigateway-parameter-handling`, or the misspelt `…-paramater-handling`.
fn request_mode(op: &Mapping, p: &str, d: &mut Diags) -> Mode {
    let (key, v) = match (op.get(HANDLING), op.get(HANDLING_MISSPELT)) {
        (Some(a), Some(b)) if a != b => {
            d.error(p, format!("{HANDLING} and {HANDLING_MISSPELT} disagree"));
            return Mode::Passthrough;
        }
        (Some(a), _) => (HANDLING, a),
        (None, Some(b)) => (HANDLING_MISSPELT, b),
        (None, None) => return Mode::Passthrough,
    };
    match v.as_str() {
        Some("PASSTHROUGH") => Mode::Passthrough,
        Some("MAPPING") => Mode::Mapping,
        Some("MAPPING_PASSTHROUGH") => Mode::MappingPassthrough,
        other => {
            d.error(&at(p, key), format!("unknown parameter handling {}: PASSTHROUGH or MAPPING", other.unwrap_or("(not a string)")));
            Mode::Passthrough
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn templates() {
        assert_eq!(
            template("/orders/{orderId}/items/{item}").unwrap(),
            ("/orders/[orderId]/items/[item]".to_string(), vec!["orderId".to_string(), "item".to_string()])
        );
        assert_eq!(template("/a/[b]").unwrap().1, ["b"]);
        assert_eq!(template("/").unwrap().0, "/");
        assert!(template("/orders/{id}.json").unwrap_err().contains("whole segment"));
        assert!(template("/a/{x}/{x}").unwrap_err().contains("twice"));
        assert!(template("orders").is_err());
        assert_eq!(derived_name("GET", "/orders/[orderId]"), "GET_orders_orderId");
        assert_eq!(derived_name("ANY", "/"), "ANY_root");
    }
}
