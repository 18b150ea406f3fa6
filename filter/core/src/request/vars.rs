//! Request-phase values: the variables of accessControl conditions (`Header:`, `Query:`, `Form:`,
//! `Parameter:`, `System:`, `Token:`, `XFF:`, `Method`, `Path`) and API parameter validation.

use crate::config::backend::RequestMode;
use crate::config::model::{Api, Gateway};
use crate::config::parameters::{invalid_reason, ApiParameter, ParamLocation};
use crate::config::router::path_params;
use crate::contract::errors;
use crate::contract::refusal::Refusal;
use crate::plugins::access_control::{AccessConfig, Verdict};
use crate::plugins::conditions::{eval, substitute, Val, VarSource};
use crate::request::model::{Ctx, Identity, Request};
use crate::wire::url::{is_form, parse_urlencoded, percent_decode, split_path, trim, UrlParam};
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
    let mut ps: Vec<UrlParam<'_>> = Vec::new();
    parse_urlencoded(src, &mut ps);
    ps.into_iter().find(|p| *p.name == *name.as_bytes()).map(|p| p.value.map(|v| v.into_owned()).unwrap_or_default())
}

fn form<'a>(req: &Request<'_>, ctx: &Ctx<'a>) -> Option<&'a [u8]> {
    if is_form(req.headers.get(b"content-type")) {
        ctx.body
    } else {
        None
    }
}

fn path_param(api: &Api, req: &Request<'_>, name: &str) -> Option<Vec<u8>> {
    let (raw, _) = split_path(req.path);
    let decoded = percent_decode(raw, false);
    path_params(&api.template, &decoded).into_iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_vec())
}

impl RequestVars<'_> {
    pub(crate) fn get(&self, loc: &VarSource) -> Val {
        let (req, gw) = (self.req, self.gw);
        let h = req.headers;
        let app = self.identity.app.and_then(|a| gw.app(a));
        let found = |v: Option<Vec<u8>>| v.map_or(Val::Null, |b| text(&b));
        match loc {
            VarSource::Method => text(req.method),
            VarSource::Path => text(&percent_decode(split_path(req.path).0, false)),
            VarSource::Header(n) => h.get(n.as_bytes()).map_or(Val::Null, text),
            VarSource::Query(n) => found(first_param(split_path(req.path).1, n)),
            VarSource::Form(n) => found(form(req, self.ctx).and_then(|f| first_param(f, n))),
            VarSource::Parameter(n) => found(gw.api(self.identity.api).and_then(|api| path_param(api, req, n))),
            VarSource::Token(n) => match self.claims.and_then(|c| c.get(n)) {
                None | Some(Value::Null) => Val::Null,
                Some(Value::String(s)) => Val::Str(s.clone()),
                Some(Value::Number(x)) => x.as_f64().map_or(Val::Null, Val::Num),
                Some(Value::Bool(b)) => Val::Bool(*b),
                Some(other) => Val::Str(other.to_string()),
            },
            VarSource::Xff(n) => {
                let ip = crate::plugins::ip_control::client_ip(crate::plugins::ip_control::Source::Xff(*n), None, h.get(b"x-forwarded-for"));
                ip.map_or(Val::Null, |ip| Val::Str(ip.to_string()))
            }
            VarSource::System(name) => match name.as_str() {
                "CaAppId" => app.map_or(Val::Null, |a| Val::Str(a.id.clone())),
                "CaAppKey" => app.map_or(Val::Null, |a| Val::Str(a.key.clone())),
                "CaApiName" => gw.api(self.identity.api).map_or(Val::Null, |a| Val::Str(a.name.clone())),
                "CaStage" => gw.stages.get(self.identity.stage as usize).map_or(Val::Null, |s| Val::Str(s.clone())),
                "CaRequestId" => Val::Str(self.ctx.request_id.to_string()),
                "CaClientIp" => {
                    let peer = self.ctx.stream.peer_address();
                    let ip = crate::plugins::ip_control::client_ip(crate::plugins::ip_control::Source::Peer, peer.as_deref(), None);
                    ip.map_or(Val::Null, |ip| Val::Str(ip.to_string()))
                }
                "CaDomain" => h.get(b":authority").map_or(Val::Null, text),
                "CaHttpSchema" => h.get(b"x-forwarded-proto").or(h.get(b":scheme")).map_or(Val::Null, text),
                "CaClientUa" => h.get(b"user-agent").map_or(Val::Null, text),
                _ => Val::Null,
            },
            VarSource::StatusCode | VarSource::ErrorCode | VarSource::BodyJsonField(_) => Val::Null,
        }
    }
}

/// A number in [0, 1) for `Random()`: varies per request, needs no host call.
fn random_for(request_id: &str, n: u64) -> f64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    request_id.hash(&mut h);
    n.hash(&mut h);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Runs the rules in order: the first rule that decides wins; none deciding admits.
pub(crate) fn access_control(cfg: &AccessConfig, view: &RequestVars<'_>) -> Result<(), Refusal> {
    let values: Vec<Val> = cfg.params.locations.iter().map(|l| view.get(l)).collect();
    let var = |i: usize| values.get(i).cloned().unwrap_or(Val::Null);
    let mut draws = 0u64;
    let mut random = || {
        draws += 1;
        random_for(view.ctx.request_id, draws)
    };
    for rule in &cfg.rules {
        let holds = eval(&rule.condition, &var, &mut random);
        match if holds { rule.if_true } else { rule.if_false } {
            None => continue,
            Some(Verdict::Allow) => return Ok(()),
            Some(Verdict::Deny) => {
                let mut r = Refusal::new(&errors::A403AC, &[&rule.name], "access control");
                if let Some(m) = &rule.error_message {
                    r.message = crate::wire::text::header_safe(substitute(m, &cfg.params.names, &var).as_bytes());
                }
                r.status = Some(rule.status);
                r.body = rule.response_body.as_ref().map(|b| substitute(b, &cfg.params.names, &var));
                r.headers = rule.response_headers.iter().map(|(n, v)| (n.clone().into(), substitute(v, &cfg.params.names, &var))).collect();
                return Err(r);
            }
        }
    }
    Ok(())
}

/// Checks the API's parameter definitions: `I400MH`, `I400MP`, `I400IP`. A declared parameter is
/// read under every spelling a backend may read it by, and given once at most: the value checked is
/// then the only one the backend can see.
pub(crate) fn check_parameters(api: &Api, req: &Request<'_>, ctx: &Ctx<'_>) -> Result<(), Refusal> {
    let (_, query) = split_path(req.path);
    // FORM parameters are read from a urlencoded body only: a body of another type (multipart, say)
    // would carry them past every check.
    if let Some(ct) = req.headers.get(b"content-type").filter(|ct| !trim(ct).is_empty()) {
        if !is_form(Some(ct)) && api.params.iter().any(|p| p.location == ParamLocation::Form) {
            let shown = crate::wire::text::header_safe(ct.get(..128).unwrap_or(ct));
            return Err(Refusal::new(&errors::I400CT, &[&shown], "content type the api does not take"));
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
        let shown = crate::wire::text::header_safe(def.name.as_bytes());
        let Some(v) = value else {
            if def.required {
                let (e, cause) =
                    if def.location == ParamLocation::Header { (&errors::I400MH, "missing header") } else { (&errors::I400MP, "missing parameter") };
                return Err(Refusal::new(e, &[&shown], cause));
            }
            continue;
        };
        if count > 1 {
            return Err(Refusal::new(&errors::I400IP, &[&shown, "is given more than once"], "repeated parameter"));
        }
        if mapped_to_header(api, def) && v.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(Refusal::new(&errors::I400IP, &[&shown, "holds a control character"], "control character for a header"));
        }
        if let Some(reason) = invalid_reason(def, &String::from_utf8_lossy(&v)) {
            return Err(Refusal::new(&errors::I400IP, &[&shown, &reason], "invalid parameter"));
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
