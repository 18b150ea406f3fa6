//! What the backend receives: the API's backend (cluster, path, method, host, timeout) and Aliyun's
//! parameter mapping (request mode, backend names and locations, constant and system parameters), and
//! jwtAuth's claims forwarded as query parameters; the routing plugin's route, which overlays the
//! API's backend for an admitted request. One place builds the upstream `:path`.

use crate::config::backend::{Backend, HttpBackend, MockBackend, PathPiece, RequestMode, DEFAULT_TIMEOUT_MS};
use crate::config::model::{Api, Gateway};
use crate::config::parameters::{ApiParameter, ParamLocation};
use crate::config::router::path_params;
use crate::contract::errors;
use crate::contract::names::{BACKEND_CLUSTER_HEADER, ROUTING_NAME_HEADER, UPSTREAM_TIMEOUT_HEADER};
use crate::contract::refusal::Refusal;
use crate::plugins::binding::PluginKind;
use crate::plugins::circuit_breaker::DOWNGRADE_HEADER;
use crate::plugins::conditions::{eval, Val, VarSource};
use crate::plugins::routing::{HttpOverlay, Overlay, Route, RouteVar, RoutingConfig};
use crate::plugins::system;
use crate::plugins::transformer::{self, TransformerConfig};
use crate::request::model::{Ctx, Edits, Identity, Request};
use crate::request::vars::RequestVars;
use crate::wire::text::header_safe;
use crate::wire::url::{is_form, parse_urlencoded, percent_decode, url_encode, UrlParam};
use std::borrow::Cow;

/// Query parameters the gateway sets (claims, constants, system values), replacing any client-sent
/// parameter of the same name.
#[derive(Debug, Default)]
pub(crate) struct QueryAdds {
    pub(crate) pairs: Vec<(String, String)>,
    /// Names whose client-sent values are dropped (a claim parameter is replaced even when the claim
    /// is absent).
    pub(crate) replaced: Vec<String>,
}

impl QueryAdds {
    /// Whether the gateway replaces the client's query parameter `name`.
    fn replaces(&self, name: &[u8]) -> bool {
        self.replaced.iter().any(|r| r.as_bytes() == name)
    }
}

/// The backend's header edits and `:path` for an admitted request; `adds` are the claim query
/// parameters jwtAuth asked for. The routing plugin's first matching route, if any, overlays the
/// API's backend (`I504RB` when the result has no cluster to send to).
///
/// One rule: the backend receives only what the gateway validated or set. Every name the gateway
/// sets (a mapping target, a constant, a system parameter, the route's name) is removed from the
/// client's request first, whether or not the gateway then has a value for it; path parameters and
/// the path itself are forwarded as the gateway decoded and checked them, re-encoded one canonical way.
pub(crate) fn upstream(
    gw: &Gateway,
    api: &Api,
    identity: &Identity,
    req: &Request<'_>,
    ctx: &Ctx<'_>,
    adds: QueryAdds,
    edits: &mut Edits,
) -> Result<(), Refusal> {
    let route = choose(gw, api, identity, req, ctx);
    build(gw, api, identity, req, ctx, adds, edits, route)
}

/// For a request the circuit breaker sends to its `downgradeBackend` while open: the downgrade
/// overlays the API's backend as a route would (the routing plugin's choice does not apply), and the
/// backend is told by `X-Ca-Downgrade` (the breaker's name); a MOCK downgrade is answered by the gateway.
#[allow(clippy::too_many_arguments)]
pub(crate) fn upstream_downgraded(
    gw: &Gateway,
    api: &Api,
    identity: &Identity,
    req: &Request<'_>,
    ctx: &Ctx<'_>,
    adds: QueryAdds,
    edits: &mut Edits,
    breaker: &crate::plugins::circuit_breaker::BreakerConfig,
) -> Result<(), Refusal> {
    build(gw, api, identity, req, ctx, adds, edits, breaker.downgrade.as_ref())?;
    // The downgrade is no route of the routing plugin: its name never reaches the backend.
    edits.retain(|(n, _)| n != ROUTING_NAME_HEADER);
    edits.push((ROUTING_NAME_HEADER.into(), None));
    set_header(edits, DOWNGRADE_HEADER, breaker.plugin.as_bytes().to_vec());
    Ok(())
}

/// For a request a check would refuse and report-only lets go on: the API's own backend. Routing
/// only changes where an admitted request goes.
pub(crate) fn upstream_unrouted(
    gw: &Gateway,
    api: &Api,
    identity: &Identity,
    req: &Request<'_>,
    ctx: &Ctx<'_>,
    edits: &mut Edits,
) -> Result<(), Refusal> {
    build(gw, api, identity, req, ctx, QueryAdds::default(), edits, None)
}

/// Where the request goes: the API's HTTP backend, overlaid by the route's.
struct Target<'b> {
    cluster: Option<&'b str>,
    timeout_ms: u64,
    method: Option<&'b str>,
    host: Option<&'b str>,
}

/// The API's own backend under a route's HTTP overlay; `Err` names what is missing.
fn destination<'b>(own: Option<&'b HttpBackend>, overlay: Option<&'b HttpOverlay>, stage: crate::ids::StageId) -> Result<Target<'b>, &'static str> {
    let own_cluster = own.and_then(|h| h.cluster(stage));
    let Some(o) = overlay else {
        return Ok(Target {
            cluster: own_cluster,
            timeout_ms: own.map_or(DEFAULT_TIMEOUT_MS, |h| h.timeout_ms),
            method: own.and_then(|h| h.method.as_deref()),
            host: own.and_then(|h| h.host(stage)),
        });
    };
    let cluster = match (&o.cluster, o.vpc) {
        (Some(c), _) => c.as_str(),
        (None, true) => return Err("an HTTP-VPC backend without vpcAccessName"),
        (None, false) => own_cluster.ok_or("an HTTP backend without cluster, and the API's own backend is not HTTP")?,
    };
    // The API's `host` belongs to the API's cluster; another cluster gets its route's, else the client's.
    let host = if o.cluster.is_none() { own.and_then(|h| h.host(stage)) } else { o.host.as_deref() };
    let timeout_ms = o.timeout_ms.or(own.map(|h| h.timeout_ms)).unwrap_or(DEFAULT_TIMEOUT_MS);
    Ok(Target { cluster: Some(cluster), timeout_ms, method: o.method.as_deref().or(own.and_then(|h| h.method.as_deref())), host })
}

/// `I504RB`, Aliyun's answer for a route whose backend overlay leaves the backend incomplete.
fn incomplete(route: &str, why: &str) -> Refusal {
    let reason = format!("route {route}: {why}");
    Refusal::new(&errors::I504RB, &[&reason], "routing backend incomplete")
}

#[allow(clippy::too_many_arguments)]
fn build(
    gw: &Gateway,
    api: &Api,
    identity: &Identity,
    req: &Request<'_>,
    ctx: &Ctx<'_>,
    mut adds: QueryAdds,
    edits: &mut Edits,
    route: Option<&Route>,
) -> Result<(), Refusal> {
    // Client-sent copies of the routing headers never count, whatever the API.
    edits.push((BACKEND_CLUSTER_HEADER.into(), None));
    edits.push((UPSTREAM_TIMEOUT_HEADER.into(), None));
    edits.push((ROUTING_NAME_HEADER.into(), None));
    edits.push((DOWNGRADE_HEADER.into(), None));
    let http = match &api.backend {
        Some(Backend::Http(h)) => Some(h.as_ref()),
        _ => None,
    };
    let mut overlay = None;
    if let Some(r) = route {
        set_header(edits, ROUTING_NAME_HEADER, r.name.as_bytes().to_vec());
        match &r.backend {
            // The gateway answers with the route's mock (`mock_reply`): nothing goes to a backend.
            Overlay::Mock(_) => return Ok(()),
            Overlay::Http(o) => overlay = Some(o.as_ref()),
            Overlay::Keep => {}
        }
    }
    let (raw_path, query, decoded) = (req.raw_path, req.query, &*req.decoded_path);
    // The backend's path, when it is not the request's own (built only then: this runs per request).
    let mut backend = None;
    if http.is_some() || overlay.is_some() {
        let t = destination(http, overlay, identity.stage).map_err(|why| incomplete(route.map_or("", |r| r.name.as_str()), why))?;
        route_to(&t, edits);
        backend = match overlay.and_then(|o| o.path.as_deref()) {
            Some(p) => Some(p.as_bytes().to_vec()),
            None => http.and_then(|h| h.path.as_ref()).map(|pieces| backend_path(pieces, api, decoded)),
        };
    }
    if let Some(h) = http {
        for c in &h.constants {
            set(c.location, &c.name, Some(c.value.clone()), edits, &mut adds);
        }
        if !h.system.is_empty() {
            let known = crate::request::vars::known_now(gw, identity, req, ctx);
            for s in &h.system {
                set(s.location, &s.backend_name, system::value(s.system, &known), edits, &mut adds);
            }
        }
    }
    for c in route.map_or(&[][..], |r| &r.constants) {
        let location = if c.query { ParamLocation::Query } else { ParamLocation::Header };
        set(location, &c.name, Some(c.value.clone()), edits, &mut adds);
    }
    // A form the gateway read (to sign it, to check it) must decode.
    let mut fields = Vec::new();
    let form = ctx.body.filter(|_| is_form(req.headers.get(b"content-type")));
    if let Some(form) = form {
        if let Some(r) = crate::request::vars::undecodable_form(form) {
            return Err(r);
        }
        parse_urlencoded(form, &mut fields);
    }
    let mapping = api.request_mode != RequestMode::Passthrough;
    // Query names the gateway sets by other means than the FORM and QUERY parameters' own mapping
    // (claims, constants, system parameters, a route's constants, HEADER parameters mapped there).
    let mut elsewhere = adds.replaced.len();
    if mapping {
        map_headers(api, req, edits, &mut adds);
        clear_header_targets(api, edits);
        elsewhere = adds.replaced.len();
        clear_query_targets(api, &mut adds);
        map_form(api, &fields, edits, &mut adds);
    }
    // A backend that merges query and form parameters (servlets, Spring, PHP's $_REQUEST) must not
    // read a client's form field in place of a query parameter the gateway sets; a FORM parameter
    // mapped to the query parameter of its own name, and set by nothing else, is the value set.
    if form.is_some() {
        let source = |f: &UrlParam<'_>| {
            let own = |p: &ApiParameter| target(p).is_some_and(|(l, n)| l == ParamLocation::Query && n.as_bytes() == &*f.name);
            mapping
                && !adds.replaced.get(..elsewhere).unwrap_or_default().iter().any(|r| r.as_bytes() == &*f.name)
                && api.params.iter().filter(|p| own(p)).count() == 1
                && api.params.iter().any(|p| p.location == ParamLocation::Form && p.name.as_bytes() == &*f.name && own(p))
        };
        if let Some(f) = fields.iter().find(|f| adds.replaces(&f.name) && !source(f)) {
            let reason = format!("parameter `{}` is set by the gateway", header_safe(&f.name));
            return Err(Refusal::new(&errors::I400BD, &[&reason], "form field named like a gateway parameter"));
        }
        // A backend that splits the body on `;` too reads a field there.
        if let Some(name) = form.and_then(|f| after_semicolon(f, |n| adds.replaces(n))) {
            let reason = format!("parameter `{}` is set by the gateway", header_safe(&name));
            return Err(Refusal::new(&errors::I400BD, &[&reason], "form field after ; named like a gateway parameter"));
        }
    }
    let mapped = map_query(api, query, &mut adds, edits);
    let transformer = transformer_of(gw, identity);
    let mapped = transform(transformer, req, edits, mapped, query);
    // Checked on the query the backend receives (what MAPPING drops is gone), and reported after
    // every edit is made: report-only mode forwards the request with them.
    let sent = mapped.as_deref().unwrap_or(query);
    let set_here = |name: &[u8]| adds.replaces(name) || transformer.is_some_and(|t| t.sets_query(name));
    let shadowed = after_semicolon(sent, set_here).map(|name| {
        let name = header_safe(&name);
        Refusal::new(&errors::I400IP, &[&name, "is set by the gateway: a `;` may not give it"], "query name after ; set by the gateway")
    });
    // A path with escapes goes on as the gateway decoded and routed it: the backend never splits or
    // resolves it differently (`%2F`, `%5C`, `%2e`).
    let backend = backend.or_else(|| (decoded != raw_path).then(|| encode_path(decoded)).filter(|p| p != raw_path));
    if backend.is_some() || mapped.is_some() {
        let mut path = backend.unwrap_or_else(|| raw_path.to_vec());
        let query = mapped.unwrap_or_else(|| query.to_vec());
        if !query.is_empty() {
            path.push(b'?');
            path.extend_from_slice(&query);
        }
        edits.push((":path".into(), Some(path)));
    }
    shadowed.map_or(Ok(()), Err)
}

/// Whether the gateway sets query parameters for this API in this stage (mapping targets, constants,
/// system parameters, jwtAuth claims, a route's constants): a form body must then be read, to refuse a field of the same name.
pub(crate) fn sets_query(gw: &Gateway, api: &Api, stage: crate::ids::StageId) -> bool {
    let mapped = api.request_mode != RequestMode::Passthrough && api.params.iter().filter_map(target).any(|(l, _)| l == ParamLocation::Query);
    let backend = match &api.backend {
        Some(Backend::Http(h)) => {
            h.constants.iter().any(|c| c.location == ParamLocation::Query) || h.system.iter().any(|s| s.location == ParamLocation::Query)
        }
        _ => false,
    };
    let bound = api.plugins.iter().find(|(s, _)| *s == stage).map(|(_, b)| *b).unwrap_or_default();
    let claims = bound.jwt.and_then(|i| gw.plugins.get(i.index())).is_some_and(|p| match &p.kind {
        PluginKind::Jwt(cfg) => cfg.claim_parameters.iter().any(|c| c.location == crate::plugins::jwt::TokenLocation::Query),
        _ => false,
    });
    let routes = bound.routing.and_then(|i| gw.plugins.get(i.index())).is_some_and(|p| match &p.kind {
        PluginKind::Routing(cfg) => cfg.routes.iter().any(|r| r.constants.iter().any(|c| c.query)),
        _ => false,
    });
    mapped || backend || claims || routes
}

fn route_to(t: &Target<'_>, edits: &mut Edits) {
    if let Some(cluster) = t.cluster {
        set_header(edits, BACKEND_CLUSTER_HEADER, cluster.as_bytes().to_vec());
    }
    set_header(edits, UPSTREAM_TIMEOUT_HEADER, t.timeout_ms.to_string().into_bytes());
    if let Some(m) = t.method {
        edits.push((":method".into(), Some(m.as_bytes().to_vec())));
    }
    if let Some(host) = t.host {
        edits.push((":authority".into(), Some(host.as_bytes().to_vec())));
    }
}

/// The routing plugin bound to the API in the request's stage.
fn routing_of<'g>(gw: &'g Gateway, identity: &Identity) -> Option<&'g RoutingConfig> {
    let idx = gw.bound(identity.api, identity.stage).routing?;
    match &gw.plugins.get(idx.index())?.kind {
        PluginKind::Routing(cfg) => Some(cfg),
        _ => None,
    }
}

/// A parameter of the API by its name (Aliyun's `$name` in a route's condition), read where the API
/// declares it.
fn api_parameter(api: &Api, name: &str, view: &RequestVars<'_>) -> Val {
    let Some(p) = api.params.iter().find(|p| p.name == name) else { return Val::Null };
    let source = match p.location {
        ParamLocation::Header => VarSource::Header(name.to_ascii_lowercase()),
        ParamLocation::Query => VarSource::Query(name.to_string()),
        ParamLocation::Form => VarSource::Form(name.to_string()),
        ParamLocation::Path => VarSource::Parameter(name.to_string()),
    };
    view.get(&source)
}

/// A name that `set` holds and that follows a `;` in `query`. A legacy backend splits a query (or a
/// form body) on `;` too (Python before 3.9.2, Go before 1.17), and would read there, as the client
/// wrote it, a parameter the gateway sets; to cagate it is part of another parameter's value.
fn after_semicolon<'q>(query: &'q [u8], set: impl Fn(&[u8]) -> bool) -> Option<Cow<'q, [u8]>> {
    if !query.contains(&b';') {
        return None;
    }
    query.split(|&b| b == b'&').flat_map(|piece| piece.split(|&b| b == b';').skip(1)).find_map(|segment| {
        let name = percent_decode(segment.split(|&b| b == b'=').next().unwrap_or_default(), true);
        set(&name).then_some(name)
    })
}

/// The transformer bound to the request's API in its stage, if any.
fn transformer_of<'g>(gw: &'g Gateway, identity: &Identity) -> Option<&'g TransformerConfig> {
    let idx = gw.bound(identity.api, identity.stage).transformer?;
    match gw.plugins.get(idx.index()).map(|p| &p.kind) {
        Some(PluginKind::Transformer(cfg)) => Some(cfg),
        _ => None,
    }
}

/// The transformer (`cfg`), applied last (after mapping, constants and claims, as Aliyun orders it):
/// its header edits join `edits`; the query the backend receives after its query edits, or `mapped`
/// (`None`: the client's) when it has none.
fn transform(cfg: Option<&TransformerConfig>, req: &Request<'_>, edits: &mut Edits, mapped: Option<Vec<u8>>, query: &[u8]) -> Option<Vec<u8>> {
    let Some(cfg) = cfg else { return mapped };
    transformer::request_headers(cfg, req.headers, edits);
    transformer::request_query(cfg, mapped.as_deref().unwrap_or(query)).or(mapped)
}

/// The first route whose condition holds, if a routing plugin is bound.
fn choose<'g>(gw: &'g Gateway, api: &Api, identity: &Identity, req: &Request<'_>, ctx: &Ctx<'_>) -> Option<&'g Route> {
    let cfg = routing_of(gw, identity)?;
    let view = RequestVars { gw, req, identity, claims: None, ctx };
    let values: Vec<Val> = cfg
        .vars
        .iter()
        .map(|v| match v {
            RouteVar::Source(l) => view.get(l),
            RouteVar::ApiParameter(n) => api_parameter(api, n, &view),
        })
        .collect();
    let var = |i: usize| values.get(i).cloned().unwrap_or(Val::Null);
    let mut draws = 0u64;
    let mut random = || {
        draws += 1;
        crate::request::vars::random_for("routing", ctx.request_id, draws)
    };
    cfg.routes.iter().find(|r| eval(&r.condition, &var, &mut random))
}

/// The mock the gateway answers an admitted request with: the chosen route's (its name is in the
/// edits), else, unless a route sends it to an HTTP backend, the API's own.
pub(crate) fn mock_reply<'g>(gw: &'g Gateway, identity: &Identity, edits: &Edits) -> Option<&'g MockBackend> {
    let downgraded = edits.iter().rev().find(|(n, _)| n == DOWNGRADE_HEADER).is_some_and(|(_, v)| v.is_some());
    if downgraded {
        let breaker = gw.bound(identity.api, identity.stage).breaker.and_then(|i| gw.plugins.get(i.index()));
        if let Some(PluginKind::Breaker(cfg)) = breaker.map(|p| &p.kind) {
            return match cfg.downgrade.as_ref().map(|r| &r.backend) {
                Some(Overlay::Mock(m)) => Some(m),
                Some(Overlay::Keep) => gw.mock_reply(identity.api),
                _ => None,
            };
        }
    }
    let chosen = edits.iter().rev().find(|(n, _)| *n == ROUTING_NAME_HEADER).and_then(|(_, v)| v.as_deref());
    if let Some(route) = chosen.and_then(|name| routing_of(gw, identity)?.route(name)) {
        match &route.backend {
            Overlay::Mock(m) => return Some(m),
            Overlay::Http(_) => return None,
            Overlay::Keep => {}
        }
    }
    gw.mock_reply(identity.api)
}

/// Replaces an earlier edit of the same header (the removal every request starts with).
fn set_header(edits: &mut Edits, name: impl Into<Cow<'static, str>>, value: Vec<u8>) {
    let name = name.into();
    edits.retain(|(n, _)| *n != name);
    edits.push((name, Some(value)));
}

/// Sets a parameter the gateway owns; with no value, the client's copies are removed all the same.
fn set(location: ParamLocation, name: &str, value: Option<String>, edits: &mut Edits, adds: &mut QueryAdds) {
    match (location, value) {
        (ParamLocation::Query, value) => {
            adds.replaced.push(name.to_string());
            adds.pairs.extend(value.map(|v| (name.to_string(), v)));
        }
        (_, Some(v)) => set_header(edits, name.to_string(), v.into_bytes()),
        (_, None) => edits.push((name.to_string().into(), None)),
    }
}

/// Bytes a path segment keeps as they are; everything else is percent-encoded.
fn path_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b)
}

/// A decoded path, percent-encoded one canonical way (`/` kept as the separator).
fn encode_path(decoded: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(decoded.len() + 8);
    for &b in decoded {
        if b == b'/' {
            out.push(b);
        } else {
            push_encoded(&mut out, b);
        }
    }
    out
}

/// A path parameter's decoded value as one segment: `/`, `?`, `#`, `%`, `&` and the rest encoded.
fn encode_segment(value: &[u8], out: &mut Vec<u8>) {
    for &b in value {
        if b == b'&' || b == b'=' || b == b';' {
            // Kept out of the segment too: they start a query or path parameter for some servers.
            push_hex(out, b);
        } else {
            push_encoded(out, b);
        }
    }
}

fn push_encoded(out: &mut Vec<u8>, b: u8) {
    if path_safe(b) {
        out.push(b);
    } else {
        push_hex(out, b);
    }
}

fn push_hex(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
}

/// The backend path: its text, with each `[name]` replaced by the value of the API's path parameter
/// `name` (or of the declared PATH parameter whose backend name it is) exactly as it was validated:
/// taken from the decoded path, encoded as one segment.
fn backend_path(pieces: &[PathPiece], api: &Api, decoded_path: &[u8]) -> Vec<u8> {
    let values = path_params(&api.template, decoded_path);
    let mut out = Vec::with_capacity(decoded_path.len() + 16);
    for piece in pieces {
        match piece {
            PathPiece::Text(t) => out.extend_from_slice(t.as_bytes()),
            PathPiece::Param(name) => {
                let api_name = api
                    .params
                    .iter()
                    .find(|p| p.location == ParamLocation::Path && p.backend_name.as_deref() == Some(name))
                    .map_or(name.as_str(), |p| p.name.as_str());
                if let Some((_, v)) = values.iter().find(|(n, _)| *n == api_name) {
                    encode_segment(v, &mut out);
                }
            }
        }
    }
    out
}

fn declared<'a>(api: &'a Api, location: ParamLocation, name: &[u8]) -> Option<&'a ApiParameter> {
    api.params.iter().find(|p| p.location == location && p.name.as_bytes() == name)
}

/// Where a declared parameter goes at the backend, when mapping moves or renames it.
fn target(p: &ApiParameter) -> Option<(ParamLocation, String)> {
    let location = p.backend_location.unwrap_or(p.location);
    let name = match (location, &p.backend_name) {
        (_, Some(n)) => n.clone(),
        (ParamLocation::Header, None) => p.name.to_ascii_lowercase(),
        (_, None) => p.name.clone(),
    };
    let same = location == p.location
        && match location {
            ParamLocation::Header => name.eq_ignore_ascii_case(&p.name),
            _ => name == p.name,
        };
    (!same && p.location != ParamLocation::Path).then_some((location, name))
}

/// Query parameters that mapping produces: a client's own copies never reach the backend.
fn clear_query_targets(api: &Api, adds: &mut QueryAdds) {
    for (location, name) in api.params.iter().filter_map(target) {
        if location == ParamLocation::Query {
            adds.replaced.push(name);
        }
    }
}

/// Declared HEADER parameters under their backend names and locations (mapping modes). The target
/// is set only from the validated source: a client's copy of the target name is removed.
fn map_headers(api: &Api, req: &Request<'_>, edits: &mut Edits, adds: &mut QueryAdds) {
    for p in api.params.iter().filter(|p| p.location == ParamLocation::Header) {
        // The value validated: the first under any spelling (the only one: a second is refused).
        let sent = req.headers.spellings(p.name.as_bytes()).next();
        let Some((location, name)) = target(p) else {
            if let (None, Some(d)) = (sent, &p.default) {
                if !set_by_gateway(edits, &p.name) {
                    set_header(edits, p.name.to_ascii_lowercase(), d.clone().into_bytes());
                }
            }
            continue;
        };
        let value = sent.map(|v| String::from_utf8_lossy(v).into_owned()).or_else(|| default_for(p, location, &name, edits, adds));
        edits.push((p.name.to_ascii_lowercase().into(), None));
        set(location, &name, value, edits, adds);
    }
}

/// Declared FORM parameters mapped to the query or a header (mapping modes): the value validated,
/// from the form the gateway read. The body itself goes on as sent.
fn map_form(api: &Api, fields: &[UrlParam<'_>], edits: &mut Edits, adds: &mut QueryAdds) {
    for p in api.params.iter().filter(|p| p.location == ParamLocation::Form) {
        let Some((location, name)) = target(p).filter(|(l, _)| *l != ParamLocation::Form) else { continue };
        // A header another setter (a claim, a constant) gives a value keeps it removed, as before
        // FORM parameters were mapped: a client's field never takes its place.
        if location == ParamLocation::Header && set_by_gateway(edits, &name) {
            continue;
        }
        let value = fields
            .iter()
            .find(|f| &*f.name == p.name.as_bytes())
            .map(|f| String::from_utf8_lossy(f.value.as_deref().unwrap_or_default()).into_owned())
            .or_else(|| default_for(p, location, &name, edits, adds));
        set(location, &name, value, edits, adds);
    }
}

/// Whether an edit so far gives the header `name` a value (a claim, a constant, a system parameter).
fn set_by_gateway(edits: &Edits, name: &str) -> bool {
    edits.iter().any(|(n, v)| v.is_some() && n.eq_ignore_ascii_case(name))
}

/// A parameter's default, unless the gateway already gives its target a value by other means: a
/// default never stands beside or in place of a claim's or a constant's value.
fn default_for(p: &ApiParameter, location: ParamLocation, name: &str, edits: &Edits, adds: &QueryAdds) -> Option<String> {
    let taken = match location {
        ParamLocation::Header => set_by_gateway(edits, name),
        _ => adds.pairs.iter().any(|(n, _)| n == name),
    };
    p.default.clone().filter(|_| !taken)
}

/// Header targets of mapped QUERY parameters: removed from the client's request whether or not the
/// source is present.
fn clear_header_targets(api: &Api, edits: &mut Edits) {
    for p in api.params.iter().filter(|p| p.location != ParamLocation::Header) {
        if let Some((ParamLocation::Header, name)) = target(p) {
            edits.push((name.into(), None));
        }
    }
}

/// The query the backend receives, or `None` when it is the client's, unchanged.
fn map_query(api: &Api, query: &[u8], adds: &mut QueryAdds, edits: &mut Edits) -> Option<Vec<u8>> {
    let mode = api.request_mode;
    let mapping = mode != RequestMode::Passthrough && api.params.iter().any(|p| p.location == ParamLocation::Query);
    if adds.pairs.is_empty() && adds.replaced.is_empty() && !mapping && mode != RequestMode::Mapping {
        return None;
    }
    let mut out: Vec<u8> = Vec::with_capacity(query.len() + 32);
    let mut push = |piece: &[u8]| {
        if !out.is_empty() {
            out.push(b'&');
        }
        out.extend_from_slice(piece);
    };
    // Declared parameters the client sent: the others get their default.
    let mut sent: Vec<&str> = Vec::new();
    for piece in query.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let mut parts = piece.splitn(2, |&b| b == b'=');
        let raw_name = parts.next().unwrap_or_default();
        let raw_value = parts.next();
        let name = percent_decode(raw_name, true);
        if adds.replaces(&name) {
            continue;
        }
        match (mode, declared(api, ParamLocation::Query, &name)) {
            (RequestMode::Passthrough, _) | (RequestMode::MappingPassthrough, None) => push(piece),
            (RequestMode::Mapping, None) => {}
            (_, Some(p)) => {
                sent.push(p.name.as_str());
                match p.backend_location.unwrap_or(ParamLocation::Query) {
                    ParamLocation::Header => {
                        let v = raw_value.map(|v| percent_decode(v, true).into_owned()).unwrap_or_default();
                        let name = p.backend_name.clone().unwrap_or_else(|| p.name.to_ascii_lowercase());
                        set_header(edits, name, v);
                    }
                    _ => {
                        let renamed = p.backend_name.as_deref().map_or_else(|| raw_name.to_vec(), |n| url_encode(n).into_bytes());
                        let mut piece = renamed;
                        if let Some(v) = raw_value {
                            piece.push(b'=');
                            piece.extend_from_slice(v);
                        }
                        push(&piece);
                    }
                }
            }
        }
    }
    if mode != RequestMode::Passthrough {
        for p in api.params.iter().filter(|p| p.default.is_some() && p.location == ParamLocation::Query && !sent.contains(&p.name.as_str())) {
            let (location, name) = target(p).unwrap_or_else(|| (ParamLocation::Query, p.name.clone()));
            let Some(v) = default_for(p, location, &name, edits, adds) else { continue };
            match location {
                ParamLocation::Header => set_header(edits, name, v.into_bytes()),
                _ => push(format!("{}={}", url_encode(&name), url_encode(&v)).as_bytes()),
            }
        }
    }
    for (name, value) in &adds.pairs {
        push(format!("{}={}", url_encode(name), url_encode(value)).as_bytes());
    }
    Some(out)
}
