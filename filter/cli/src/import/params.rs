//! Swagger Parameter Objects as cagate `parameters[]`: location, type, required, maxLength, enum,
//! pattern, default, and Aliyun's mapping to a backend name and location.

use super::diag::{at, Diags};
use super::swagger::{unknown_extensions, OpSite};
use super::value::{boolean, integer, key_text, s, scalar_text};
use serde_yaml::{Mapping, Value};

pub(crate) const BACKEND_NAME: &str = "x-aliyun-apigateway-backend-name";
pub(crate) const BACKEND_LOCATION: &str = "x-aliyun-apigateway-backend-location";
const PARAM_EXTENSIONS: &[&str] = &[BACKEND_NAME, BACKEND_LOCATION];
/// Swagger validation keywords Aliyun checks but cagate does not.
const UNCHECKED: &[&str] =
    &["minLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minItems", "maxItems", "uniqueItems"];

/// A location word of Swagger (`formData`), of Aliyun's API (`HEAD`, `BODY`) or of cagate, in cagate's
/// vocabulary.
pub(crate) fn location_word(w: &str) -> Option<&'static str> {
    match w.to_ascii_lowercase().as_str() {
        "path" => Some("PATH"),
        "query" => Some("QUERY"),
        "header" | "head" => Some("HEADER"),
        "formdata" | "form" | "body" => Some("FORM"),
        _ => None,
    }
}

/// The operation's parameters (the path item's, overridden by the operation's of the same name and
/// location). `passthrough`: only path parameters are kept (Aliyun checks and maps nothing else).
pub(crate) fn parameters(root: &Mapping, site: &OpSite<'_>, op: &Mapping, passthrough: bool, d: &mut Diags) -> Vec<Value> {
    let mut shared = Vec::new();
    gather(root, site.shared, &site.shared_path, &mut shared, d);
    let mut own = Vec::new();
    gather(root, op.get("parameters"), &at(&site.path, "parameters"), &mut own, d);
    no_twice(&shared, d);
    no_twice(&own, d);
    let mut chosen: Vec<(String, &Value)> = shared.into_iter().filter(|(_, v)| !own.iter().any(|(_, o)| same(o, v))).collect();
    chosen.extend(own);
    let consumes = root_or_op_list(root, op, "consumes");
    let multipart_only = !consumes.is_empty() && consumes.iter().all(|c| c.starts_with("multipart/form-data"));
    let mut out = Vec::new();
    let mut dropped = Vec::new();
    let mut seen_path = Vec::new();
    for (path, v) in chosen {
        match parameter(&path, v, site, passthrough, multipart_only, d) {
            Got::Param(m, location, name) => {
                if location == "PATH" {
                    seen_path.push(name);
                }
                out.push(Value::Mapping(m));
            }
            Got::Dropped(name) => dropped.push(name),
            Got::Nothing => {}
        }
    }
    for n in site.template_params {
        if !seen_path.contains(n) {
            d.error(&site.path, format!("the path parameter {{{n}}} has no `in: path` parameter"));
        }
    }
    if !dropped.is_empty() {
        d.note(
            &site.path,
            format!(
                "PASSTHROUGH: Aliyun checks and maps only path parameters; not imported: {} (use MAPPING parameter handling to check them)",
                dropped.join(", ")
            ),
        );
    }
    out
}

/// Same name and location (both given).
fn same(a: &Value, b: &Value) -> bool {
    let key = |v: &Value| (v.get("name").and_then(Value::as_str).map(str::to_string), v.get("in").and_then(Value::as_str).map(str::to_string));
    let (ka, kb) = (key(a), key(b));
    ka.0.is_some() && ka.1.is_some() && ka == kb
}

fn no_twice(list: &[(String, &Value)], d: &mut Diags) {
    for (i, (path, v)) in list.iter().enumerate() {
        if list[..i].iter().any(|(_, w)| same(v, w)) {
            let name = v.get("name").and_then(Value::as_str).unwrap_or_default();
            d.error(path, format!("the parameter {name} is declared twice in one location"));
        }
    }
}

/// The backend names of PATH parameters (the backend path may use them).
pub(crate) fn path_aliases(params: &[Value]) -> Vec<String> {
    params
        .iter()
        .filter(|p| p.get("location").and_then(Value::as_str) == Some("PATH"))
        .filter_map(|p| p.get("backendName").and_then(Value::as_str).map(str::to_string))
        .collect()
}

fn root_or_op_list(root: &Mapping, op: &Mapping, key: &str) -> Vec<String> {
    let v = op.get(key).or_else(|| root.get(key));
    v.and_then(Value::as_sequence).map(|l| l.iter().filter_map(Value::as_str).map(str::to_ascii_lowercase).collect()).unwrap_or_default()
}

/// The items of a `parameters` list with their paths, `$ref`s to `#/parameters/…` resolved.
fn gather<'a>(root: &'a Mapping, v: Option<&'a Value>, path: &str, out: &mut Vec<(String, &'a Value)>, d: &mut Diags) {
    let Some(v) = v else { return };
    let Some(items) = v.as_sequence() else {
        d.error(path, "must be a list");
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        match item.get("$ref").map(Value::as_str) {
            None => out.push((p, item)),
            Some(Some(r)) => match r.strip_prefix("#/parameters/").and_then(|n| root.get("parameters").and_then(|ps| ps.get(n))) {
                Some(target) => out.push((format!("{p} ({r})"), target)),
                None => d.error(&at(&p, "$ref"), format!("{r}: not found (only #/parameters/NAME references are followed)")),
            },
            Some(None) => d.error(&at(&p, "$ref"), "must be a string"),
        }
    }
}

enum Got {
    Param(Mapping, &'static str, String),
    Dropped(String),
    Nothing,
}

fn parameter(path: &str, v: &Value, site: &OpSite<'_>, passthrough: bool, multipart_only: bool, d: &mut Diags) -> Got {
    let Some(m) = v.as_mapping() else {
        d.error(path, "a parameter must be an object");
        return Got::Nothing;
    };
    unknown_extensions(m, path, PARAM_EXTENSIONS, d);
    let Some(name) = m.get("name").and_then(Value::as_str) else {
        d.error(&at(path, "name"), "missing");
        return Got::Nothing;
    };
    let mapped = m.contains_key(BACKEND_NAME) || m.contains_key(BACKEND_LOCATION);
    let location = match m.get("in").and_then(Value::as_str) {
        Some("path") => "PATH",
        Some("query") => "QUERY",
        Some("header") => "HEADER",
        Some("formData") => "FORM",
        Some("body") => {
            if mapped {
                d.warn(path, "a body parameter is the whole body, passed on as it is: its backend name and location are ignored");
            }
            return Got::Nothing;
        }
        other => {
            d.error(&at(path, "in"), format!("{}: path, query, header, formData or body", other.unwrap_or("missing")));
            return Got::Nothing;
        }
    };
    if mapped && passthrough {
        d.error(path, format!("{BACKEND_NAME} and {BACKEND_LOCATION} need MAPPING parameter handling (Aliyun refuses them in PASSTHROUGH)"));
        return Got::Nothing;
    }
    if location == "PATH" {
        if !site.template_params.iter().any(|p| p == name) {
            d.error(&at(path, "name"), format!("no {{{name}}} segment in the path"));
            return Got::Nothing;
        }
    } else if passthrough {
        return Got::Dropped(name.to_string());
    }
    if location == "FORM" && multipart_only {
        d.warn(path, "a multipart/form-data field: cagate checks urlencoded form fields only; not imported");
        return Got::Nothing;
    }
    let Some(kind) = kind(m, path, d) else { return Got::Nothing };
    let mut out = Mapping::new();
    out.insert(s("name"), s(name));
    out.insert(s("location"), s(location));
    if kind != "STRING" {
        out.insert(s("type"), s(kind));
    }
    // Java generators write `required: 'true'`, a string.
    if location == "PATH" || m.get("required").and_then(boolean) == Some(true) {
        out.insert(s("required"), Value::Bool(true));
    }
    checks(m, path, &mut out, d);
    mapping(m, path, location, &mut out, d);
    Got::Param(out, location, name.to_string())
}

/// Swagger `type` and `format` as cagate's parameter type; `None`: the parameter is left out.
fn kind(m: &Mapping, path: &str, d: &mut Diags) -> Option<&'static str> {
    let format = m.get("format").and_then(Value::as_str).unwrap_or("");
    Some(match m.get("type").and_then(Value::as_str) {
        None | Some("string") => "STRING",
        Some("array") => {
            d.warn(path, "an array: checked as one string, so a request repeating it (?ids=1&ids=2) is refused (I400IP); leave it out of MAPPING's parameters, or use PASSTHROUGH, to forward every value");
            "STRING"
        }
        Some("integer") if format == "int32" => "INT",
        Some("integer") => "LONG",
        Some("number") if format == "float" => "FLOAT",
        Some("number") => "DOUBLE",
        Some("boolean") => "BOOLEAN",
        Some("file") => {
            d.warn(path, "a file upload: cagate does not check files; not imported");
            return None;
        }
        Some(other) => {
            d.warn(&at(path, "type"), format!("unknown type {other}: checked as a string"));
            "STRING"
        }
    })
}

/// maxLength, enum, pattern, default, description; Swagger keywords cagate does not check are warned about.
fn checks(m: &Mapping, path: &str, out: &mut Mapping, d: &mut Diags) {
    if let Some(v) = m.get("maxLength") {
        match integer(v).filter(|n| (0..=1 << 20).contains(n)) {
            Some(n) => {
                out.insert(s("maxLength"), Value::Number(n.into()));
            }
            None => d.error(&at(path, "maxLength"), "must be a whole number from 0 to 1048576"),
        }
    }
    if let Some(v) = m.get("enum") {
        match v.as_sequence().map(|l| l.iter().map(scalar_text).collect::<Option<Vec<String>>>()) {
            Some(Some(values)) => {
                out.insert(s("enumValues"), Value::Sequence(values.iter().map(|x| s(x)).collect()));
            }
            _ => d.error(&at(path, "enum"), "must be a list of strings or numbers"),
        }
    }
    if let Some(v) = m.get("pattern") {
        match v.as_str().map(|p| (p, regex_lite::Regex::new(p))) {
            Some((p, Ok(_))) => {
                out.insert(s("regularExpression"), s(p));
            }
            Some((_, Err(e))) => d.error(&at(path, "pattern"), format!("not a valid regular expression: {e}")),
            None => d.error(&at(path, "pattern"), "must be a string"),
        }
    }
    match m.get("default").and_then(scalar_text) {
        Some(v) if v.chars().any(char::is_control) => {
            d.warn(&at(path, "default"), "holds a control character: left out (the backend gets no default)")
        }
        Some(v) if !v.is_empty() => {
            out.insert(s("defaultValue"), s(&v));
        }
        _ => {}
    }
    if let Some(v) = m.get("description").and_then(Value::as_str) {
        out.insert(s("description"), s(v));
    }
    let unchecked: Vec<String> = m.keys().filter_map(key_text).filter(|k| UNCHECKED.contains(&k.as_str())).collect();
    if !unchecked.is_empty() {
        d.warn(path, format!("{} not checked by cagate", unchecked.join(", ")));
    }
}

/// `x-aliyun-apigateway-backend-name` / `-location` as backendName / backendLocation.
fn mapping(m: &Mapping, path: &str, location: &str, out: &mut Mapping, d: &mut Diags) {
    let mut backend_name = None;
    if let Some(v) = m.get(BACKEND_NAME) {
        match v.as_str().filter(|n| !n.is_empty()) {
            Some(n) => backend_name = Some(n),
            None => d.error(&at(path, BACKEND_NAME), "must be a name"),
        }
    }
    let mut backend_location = None;
    if let Some(v) = m.get(BACKEND_LOCATION) {
        match v.as_str().and_then(location_word) {
            Some(l) if (l == "PATH") != (location == "PATH") => {
                d.error(&at(path, BACKEND_LOCATION), "a path parameter stays a path parameter at the backend, and no other becomes one");
            }
            Some(l) => backend_location = Some(l),
            None => d.error(&at(path, BACKEND_LOCATION), "unknown location: path, query, header or formData"),
        }
    }
    let name = m.get("name").and_then(Value::as_str).unwrap_or_default();
    if backend_location.unwrap_or(location) == "FORM" && (location != "FORM" || backend_name.is_some_and(|n| n != name)) {
        d.warn(path, "cagate forwards the body as sent: it moves no parameter into the body and renames none in it, so this one reaches the backend as the client sends it");
        return;
    }
    if let Some(n) = backend_name {
        out.insert(s("backendName"), s(n));
    }
    if let Some(l) = backend_location {
        out.insert(s("backendLocation"), s(l));
    }
}
