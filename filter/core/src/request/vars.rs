//! Request-phase values: the variables of accessControl conditions (`Header:`, `Query:`, `Form:`,
//! `Parameter:`, `System:`, `Token:`, `XFF:`, `Method`, `Path`) and API parameter validation.

use crate::config::backend::RequestMode;
use crate::config::model::{Api, Gateway};
use crate::config::parameters::{invalid_reason, ApiParameter, ParamLocation};
use crate::config::router::path_params;
use crate::contract::errors;
use crate::contract::refusal::Refusal;
use crate::host::{Clock, Stream};
use crate::plugins::access_control::{AccessConfig, Verdict};
use crate::plugins::binding::PluginKind;
use crate::plugins::conditions::{eval, substitute, Val, VarSource};
use crate::plugins::system::{self, Known, Seen, SystemValue};
use crate::request::model::{Ctx, Identity, Request};
use crate::wire::headers::Headers;
use crate::wire::url::{is_form, parse_urlencoded, trim, UrlParam};
use serde_json::{Map, Value};
use std::borrow::Cow;

pub(crate) struct RequestVars<'a> {
    pub gw: &'a Gateway,
    pub req: &'a Request<'a>,
    pub identity: &'a Identity,
    pub claims: Option<&'a Map<String, Value>>,
    pub ctx: &'a Ctx<'a>,
}

fn text(b: &[u8]) -> Val {
    Val::Str(String::from_utf8_lossy(b).into_owned())
}

fn first_param(src: &[u8], name: &str) -> Option<Vec<u8>> {
    values_of(src, name).into_iter().next().map(|v| v.map(Cow::into_owned).unwrap_or_default())
}

fn form<'a>(req: &Request<'_>, ctx: &Ctx<'a>) -> Option<&'a [u8]> {
    if is_form(req.headers.get(b"content-type")) {
        ctx.body
    } else {
        None
    }
}

/// `I400BD` for a urlencoded form the gateway reads that does not decode: a `%` without two hex digits,
/// or `%00`. The gateway would check one reading of it and a backend's decoder may make another (or
/// stop at the NUL), as for the query (`I400RU`).
pub(crate) fn undecodable_form(form: &[u8]) -> Option<Refusal> {
    let hex = |b: Option<&u8>| b.is_some_and(u8::is_ascii_hexdigit);
    let bad = |i: usize| !(hex(form.get(i + 1)) && hex(form.get(i + 2)) && form.get(i + 1..i + 3) != Some(b"00"));
    let at = form.iter().enumerate().position(|(i, &b)| b == b'%' && bad(i))?;
    let reason = format!("the form cannot be decoded at byte {at}");
    Some(Refusal::new(&errors::I400BD, &[&reason], "form body cannot be decoded"))
}

fn path_param(api: &Api, req: &Request<'_>, name: &str) -> Option<Vec<u8>> {
    path_params(&api.template, &req.decoded_path).into_iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_vec())
}

/// What is known of a request (to `api` in `stage`, from `app`) for its system parameters: the
/// request itself (`Seen::Request`), or what was captured of it at admission (`Seen::Captured`, the
/// response phase).
pub(crate) fn known<'a>(
    gw: &'a Gateway,
    (api, stage, app): (crate::ids::ApiId, crate::ids::StageId, Option<crate::ids::AppId>),
    seen: Seen<'a>,
    stream: &'a dyn Stream,
    request_id: &'a str,
) -> Known<'a> {
    Known {
        seen,
        stream,
        app: app.and_then(|a| gw.app(a)),
        api: gw.api(api).map(|a| a.name.as_str()),
        stage: gw.stages.get(stage.index()).map(String::as_str),
        request_id,
    }
}

/// What is known of a request in the request phase, for its system parameters.
pub(crate) fn known_now<'a>(gw: &'a Gateway, id: &Identity, req: &Request<'a>, ctx: &Ctx<'a>) -> Known<'a> {
    known(gw, (id.api, id.stage, id.app), Seen::Request { headers: req.headers, clock: ctx.coarse }, ctx.stream, ctx.request_id)
}

/// What the errorMapping bound to the request's API and stage reads of the request itself
/// (`System:CaDomain`, …), kept at admission for the response phase, when the request is gone.
/// Empty, allocating nothing, when no errorMapping is bound or it reads none of these.
pub(crate) fn captured_for_error_mapping(gw: &Gateway, identity: &Identity, headers: &Headers<'_>, clock: &dyn Clock) -> Vec<(SystemValue, String)> {
    let Some(idx) = gw.bound(identity.api, identity.stage).error_mapping else { return Vec::new() };
    match gw.plugins.get(idx.index()).map(|p| &p.kind) {
        Some(PluginKind::ErrorMapping(cfg)) if !cfg.captures.is_empty() => system::capture(&cfg.captures, headers, clock),
        _ => Vec::new(),
    }
}

impl RequestVars<'_> {
    pub(crate) fn get(&self, loc: &VarSource) -> Val {
        let (req, gw) = (self.req, self.gw);
        let h = req.headers;
        let found = |v: Option<Vec<u8>>| v.map_or(Val::Null, |b| text(&b));
        match loc {
            VarSource::Method => text(req.method),
            VarSource::Path => text(&req.decoded_path),
            // Under any spelling a backend reads as the name (`X_Tenant` is `X-Tenant` to CGI).
            VarSource::Header(n) => h.spellings(n.as_bytes()).next().map_or(Val::Null, text),
            VarSource::Query(n) => found(first_param(req.query, n)),
            VarSource::Form(n) => found(form(req, self.ctx).and_then(|f| first_param(f, n))),
            VarSource::Parameter(n) => found(gw.api(self.identity.api).and_then(|api| path_param(api, req, n))),
            VarSource::Token(n) => self.claims.and_then(|c| c.get(n)).map_or(Val::Null, Val::from_json),
            VarSource::Xff(n) => {
                let ip = crate::plugins::ip_control::client_ip(crate::plugins::ip_control::Source::Xff(*n), None, h.get(b"x-forwarded-for"));
                ip.map_or(Val::Null, |ip| Val::Str(ip.to_string()))
            }
            VarSource::System(v) => system::value(*v, &known_now(gw, self.identity, req, self.ctx)).map_or(Val::Null, Val::Str),
            VarSource::StatusCode | VarSource::ErrorCode | VarSource::BodyJsonField(_) => Val::Null,
        }
    }
}

/// A number in [0, 1) for `Random()`: varies per request, needs no host call. `draw` keeps the
/// plugins' draws apart (a route's from accessControl's).
pub(crate) fn random_for(draw: &str, request_id: &str, n: u64) -> f64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (draw, request_id, n).hash(&mut h);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Whether a value is followed by another that differs.
fn differs<'a>(mut values: impl Iterator<Item = Option<Cow<'a, [u8]>>>) -> bool {
    let first = values.next();
    first.is_some() && values.any(|v| Some(v) != first)
}

/// The values of parameter `name` in a query or form, in order (`None`: a bare name).
fn values_of<'a>(src: &'a [u8], name: &str) -> Vec<Option<Cow<'a, [u8]>>> {
    let mut ps: Vec<UrlParam<'a>> = Vec::new();
    parse_urlencoded(src, &mut ps);
    ps.into_iter().filter(|p| *p.name == *name.as_bytes()).map(|p| p.value).collect()
}

/// A header, query or form value a rule reads, given again with another value: the rule would decide
/// on the first while a backend may act on another (`I400HD`, `I400RU`, `I400BD`).
fn given_twice(loc: &VarSource, view: &RequestVars<'_>) -> Option<Refusal> {
    let repeated = |name: &str| format!("parameter `{}` is repeated", crate::wire::text::header_safe(name.as_bytes()));
    match loc {
        VarSource::Header(n) => differs(view.req.headers.spellings(n.as_bytes()).map(|v| Some(Cow::Borrowed(trim(v)))))
            .then(|| Refusal::new(&errors::I400HD, &[&crate::wire::text::header_safe(n.as_bytes()), "is repeated"], "rule header repeated")),
        VarSource::Query(n) => {
            differs(values_of(view.req.query, n).into_iter()).then(|| Refusal::new(&errors::I400RU, &[&repeated(n)], "rule query parameter repeated"))
        }
        VarSource::Form(n) => form(view.req, view.ctx)
            .is_some_and(|f| differs(values_of(f, n).into_iter()))
            .then(|| Refusal::new(&errors::I400BD, &[&repeated(n)], "rule form parameter repeated")),
        _ => None,
    }
}

/// Runs the rules in order: the first rule that decides wins; none deciding admits.
pub(crate) fn access_control(cfg: &AccessConfig, view: &RequestVars<'_>) -> Result<(), Refusal> {
    if cfg.params.locations.iter().any(|l| matches!(l, VarSource::Form(_))) {
        if let Some(r) = form(view.req, view.ctx).and_then(undecodable_form) {
            return Err(r);
        }
    }
    if let Some(r) = cfg.params.locations.iter().find_map(|l| given_twice(l, view)) {
        return Err(r);
    }
    let values: Vec<Val> = cfg.params.locations.iter().map(|l| view.get(l)).collect();
    let var = |i: usize| values.get(i).cloned().unwrap_or(Val::Null);
    let mut draws = 0u64;
    let mut random = || {
        draws += 1;
        random_for("accessControl", view.ctx.request_id, draws)
    };
    for rule in &cfg.rules {
        let holds = eval(&rule.condition, &var, &mut random)
            && rule.assert.as_ref().is_none_or(|a| match var(a.var) {
                Val::Null => false,
                v => view.gw.datasets.contains(&a.dataset, &v.to_string(), view.ctx.coarse.now_ms()),
            });
        match if holds { rule.if_true } else { rule.if_false } {
            None => continue,
            Some(Verdict::Allow) => return Ok(()),
            Some(Verdict::Deny) => {
                let mut r = Refusal::new(&errors::A403AC, &[&rule.name], "access control");
                if let Some(m) = &rule.error_message {
                    r.message = crate::wire::text::header_safe(substitute(m, &cfg.params.names, &var).as_bytes());
                }
                let body = rule.response_body.as_ref().map(|b| substitute(b, &cfg.params.names, &var));
                r.own = Some(Box::new(crate::contract::refusal::OwnReply { status: rule.status, body }));
                r.headers = rule.response_headers.iter().map(|(n, v)| (n.clone().into(), substitute(v, &cfg.params.names, &var))).collect();
                return Err(r);
            }
        }
    }
    Ok(())
}

/// Checks the API's parameter definitions: `I400CT`, `I400BD`, `I400MH`, `I400MP`, `I400IP`. A
/// declared parameter is read under every spelling a backend may read it by, and given once at most:
/// the value checked is then the only one the backend can see.
pub(crate) fn check_parameters(api: &Api, req: &Request<'_>, ctx: &Ctx<'_>) -> Result<(), Refusal> {
    let query = req.query;
    // FORM parameters are read from a urlencoded body only: a body of another type (multipart, say)
    // would carry them past every check.
    if let Some(ct) = req.headers.get(b"content-type").filter(|ct| !trim(ct).is_empty()) {
        if !is_form(Some(ct)) && api.params.iter().any(|p| p.location == ParamLocation::Form) {
            let shown = crate::wire::text::header_safe(ct.get(..128).unwrap_or(ct));
            let r = Refusal::new(&errors::I400CT, &[&shown], "content type the api does not take");
            let multipart = crate::wire::url::starts_with_ignore_case(trim(ct), b"multipart/");
            return Err(if multipart { r.classic(&errors::classic::UNSUPPORTED_MULTIPART) } else { r });
        }
    }
    if api.params.iter().any(|p| p.location == ParamLocation::Form) {
        if let Some(r) = form(req, ctx).and_then(undecodable_form) {
            return Err(r);
        }
    }
    let mut query_params: Option<Vec<UrlParam<'_>>> = None;
    let mut form_params: Option<Vec<UrlParam<'_>>> = None;
    for def in &api.params {
        let (value, count): (Option<Cow<'_, [u8]>>, usize) = match def.location {
            ParamLocation::Header => {
                let mut found = req.headers.spellings(def.name.as_bytes());
                let first = found.next().map(Cow::Borrowed);
                (first, usize::from(found.next().is_some()) + 1)
            }
            ParamLocation::Query => occurrences(query_params.get_or_insert_with(|| parsed(Some(query))), &def.name),
            ParamLocation::Form => occurrences(form_params.get_or_insert_with(|| parsed(form(req, ctx))), &def.name),
            ParamLocation::Path => (path_param(api, req, &def.name).map(Cow::Owned), 1),
        };
        // The name as a message shows it, made only for a refusal.
        let shown = || crate::wire::text::header_safe(def.name.as_bytes());
        let Some(v) = value else {
            if def.required {
                let (e, cause) =
                    if def.location == ParamLocation::Header { (&errors::I400MH, "missing header") } else { (&errors::I400MP, "missing parameter") };
                return Err(Refusal::new(e, &[&shown()], cause));
            }
            continue;
        };
        if count > 1 {
            return Err(Refusal::new(&errors::I400IP, &[&shown(), "is given more than once"], "repeated parameter"));
        }
        if mapped_to_header(api, def) && v.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(Refusal::new(&errors::I400IP, &[&shown(), "holds a control character"], "control character for a header"));
        }
        if let Some(reason) = invalid_reason(def, &String::from_utf8_lossy(&v)) {
            return Err(Refusal::new(&errors::I400IP, &[&shown(), &reason], "invalid parameter"));
        }
    }
    Ok(())
}

fn parsed(src: Option<&[u8]>) -> Vec<UrlParam<'_>> {
    let mut ps = Vec::new();
    parse_urlencoded(src.unwrap_or_default(), &mut ps);
    ps
}

/// The first value of `name` and how many times it is given (counting stops at two).
fn occurrences<'p>(params: &[UrlParam<'p>], name: &str) -> (Option<Cow<'p, [u8]>>, usize) {
    let mut found = params.iter().filter(|p| *p.name == *name.as_bytes());
    let Some(first) = found.next() else { return (None, 0) };
    let value = first.value.clone().unwrap_or(Cow::Borrowed(&[]));
    (Some(value), usize::from(found.next().is_some()) + 1)
}

/// A non-header parameter that parameter mapping sends to the backend as a header.
fn mapped_to_header(api: &Api, def: &ApiParameter) -> bool {
    api.request_mode != RequestMode::Passthrough && def.location != ParamLocation::Header && def.backend_location == Some(ParamLocation::Header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit::{Call, Kit};
    use crate::host::FixedClock;
    use crate::wire::time::format_rfc3339;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000_000;

    fn config(plugin: Value) -> String {
        json!({
            "apps": [ { "appId": 77, "appKey": "k77", "appSecret": "s", "appCodes": ["C"] } ],
            "plugins": [ plugin ],
            "apis": [ { "name": "thing", "method": "GET", "path": "/things/[id]", "appCodeAuth": "HEADER",
                        "authorizations": [ { "appId": 77 } ], "plugins": [ { "plugin": "p" } ] } ]
        })
        .to_string()
    }

    fn mapping(parameters: Value) -> Value {
        json!({ "name": "p", "type": "errorMapping", "data": { "parameters": parameters, "errorCondition": "1 = 1",
                "defaultMapping": { "statusCode": 502, "errorMessage": "x" } } })
    }

    /// errorMapping's `System:CaClientIp`, `CaAppKey`, `CaDomain`, `CaHttpSchema`, `CaClientUa` were
    /// always null (and `CaRequestHandleTime` refused): through the engine, they now have the request's
    /// values, the request-side ones captured at admission.
    #[test]
    fn error_mapping_reads_the_request_it_answers() {
        let params = json!({ "ip": "System:CaClientIp", "key": "System:CaAppKey", "dom": "System:CaDomain", "sch": "System:CaHttpSchema",
                             "ua": "System:CaClientUa", "t": "System:CaRequestHandleTime", "rid": "System:CaRequestId", "st": "StatusCode" });
        let plugin = json!({ "name": "p", "type": "errorMapping", "data": { "parameters": params, "errorCondition": "$st = 200",
            "defaultMapping": { "statusCode": 502, "errorMessage": "${ip}|${key}|${dom}|${sch}|${ua}|${t}|${rid}" } } });
        let kit = Kit::new(&config(plugin), NOW);
        let rid = kit.next_request_id();
        let headers = [("authorization", "APPCODE C"), ("host", "api.example.com"), ("x-forwarded-proto", "https"), ("user-agent", "ua/1")];
        let mut o = kit.send(&Call { method: "GET", path: "/things/1", headers: &headers, peer: Some("192.0.2.4:5555"), ..Call::default() });
        assert!(o.forwarded());
        kit.respond(&mut o, 200, &[], "via_upstream", b"");
        assert_eq!(o.stream.response_header(":status").as_deref(), Some("502"));
        let expected = format!("192.0.2.4|k77|api.example.com|https|ua/1|{}|{rid}", format_rfc3339(NOW));
        assert_eq!(o.stream.response_header("x-ca-error-message"), Some(expected));
    }

    /// Only what the bound errorMapping reads of the request is kept, and nothing (no allocation)
    /// without one that reads some.
    #[test]
    fn captured_only_when_needed() {
        let pairs: Vec<(&[u8], &[u8])> = vec![(b":authority", b"api.example.com"), (b"user-agent", b"ua/1")];
        let buf = crate::wire::headers::serialize(&pairs);
        let headers = Headers::from_serialized(&buf).unwrap_or_default();
        let captured = |plugin: Value| {
            let gw = crate::config::compile::compile(config(plugin).as_bytes()).unwrap();
            let identity = Identity { api: crate::ids::ApiId(0), stage: gw.release_stage, app: Some(crate::ids::AppId(0)), nonce: None };
            captured_for_error_mapping(&gw, &identity, &headers, &FixedClock(NOW))
        };
        let access = json!({ "name": "p", "type": "accessControl", "data": { "parameters": { "d": "System:CaDomain" },
                             "rules": [ { "name": "r", "condition": "$d = 'x'", "ifTrue": "DENY" } ] } });
        for none in [access, mapping(json!({ "st": "StatusCode", "app": "System:CaAppId", "ip": "System:CaClientIp" }))] {
            let kept = captured(none);
            assert!(kept.is_empty() && kept.capacity() == 0);
        }
        let kept = captured(mapping(json!({ "d": "System:CaDomain", "d2": "System:CaDomain", "s": "System:CaHttpSchema" })));
        assert_eq!(kept, [(SystemValue::Domain, "api.example.com".to_string())], "once each; an absent value is not kept");
    }

    /// accessControl's `System:CaDomain` did not fall back to `Host` as the backend's did: one
    /// evaluator now, `:authority` first. (`CaRequestHandleTime`, in the one list, is accepted too.)
    #[test]
    fn access_control_domain_falls_back_to_host() {
        let condition = format!("$dom = 'api.example.com' and $t = '{}'", format_rfc3339(NOW));
        let plugin = json!({ "name": "p", "type": "accessControl", "data": {
            "parameters": { "dom": "System:CaDomain", "t": "System:CaRequestHandleTime" },
            "rules": [ { "name": "r", "condition": condition, "ifFalse": "DENY" } ] } });
        let kit = Kit::new(&config(plugin), NOW);
        let send = |headers: &[(&str, &str)]| kit.send(&Call { method: "GET", path: "/things/1", headers, ..Call::default() });
        assert!(send(&[("authorization", "APPCODE C"), ("host", "api.example.com")]).forwarded());
        assert!(send(&[("authorization", "APPCODE C"), (":authority", "api.example.com"), ("host", "other")]).forwarded());
        assert_eq!(send(&[("authorization", "APPCODE C"), (":authority", "other"), ("host", "api.example.com")]).code().as_deref(), Some("A403AC"));
    }
}
