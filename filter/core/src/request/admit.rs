//! Admission of an authenticated request: the request-phase plugins in Aliyun's order, then the header
//! edits the backend receives (identity, claims, backend signature, hop count).

use crate::auth::signature::form_body;
use crate::config::model::Gateway;
use crate::contract::errors;
use crate::contract::names::{API_NAME_HEADER, APP_ID_HEADER, HOPS_HEADER};
use crate::contract::refusal::Refusal;
use crate::host::{Clock, SharedStore};
use crate::ids::{ApiId, AppId};
use crate::request::forward::{self, QueryAdds};
use crate::request::model::{Admission, Ctx, Edits, Identity, Request};
use crate::wire::text::header_safe;
use crate::wire::url::{percent_decode, split_path};
use std::borrow::Cow;

/// The identity headers for the backend: `(name, value)`; a `None` value means "remove any
/// client-sent copy". The request id is added by the caller, which generated it.
pub(crate) fn identity_headers(gw: &Gateway, api: Option<ApiId>, app: Option<AppId>) -> [(&'static str, Option<&str>); 2] {
    [(APP_ID_HEADER, app.and_then(|a| gw.app(a)).map(|a| a.id.as_str())), (API_NAME_HEADER, api.and_then(|a| gw.api(a)).map(|a| a.name.as_str()))]
}

/// Runs the request-phase plugins bound to the API in its stage, in Aliyun's order (ipControl →
/// jwtAuth → accessControl → trafficControl), after authentication.
pub(crate) fn run_plugins(
    gw: &Gateway,
    rt: &mut crate::plugins::binding::Runtime,
    req: &Request<'_>,
    identity: Identity,
    clock: &dyn Clock,
    store: &dyn SharedStore,
    ctx: &Ctx<'_>,
) -> Result<Admission, Refusal> {
    use crate::plugins::binding::{Plugin, PluginKind};
    use crate::plugins::circuit_breaker::Pass;
    let mut admission = Admission { identity, claims: None, edits: Vec::new(), traffic: None, breaker: None, rate_limit: None, one_time: Vec::new() };
    admission.one_time.extend(identity.nonce);
    let mut query_adds = QueryAdds::default();
    let bound = gw.bound(identity.api, identity.stage);
    let mut cached_now = None;
    let mut now = || *cached_now.get_or_insert_with(|| clock.now_ms());
    let app = identity.app.and_then(|a| gw.app(a));
    let plugin = |i: Option<crate::ids::PluginId>| i.and_then(|i| gw.plugins.get(i.index()));
    let with_app = |r: Refusal| Refusal { app: identity.app, ..r };
    if let Some(api) = gw.api(identity.api) {
        if !api.params.is_empty() {
            crate::request::vars::check_parameters(api, req, ctx).map_err(with_app)?;
        }
    }
    client_checks(gw, req, ctx, &bound, app.map(|a| a.id.as_str())).map_err(with_app)?;
    if let Some(idx) = bound.jwt {
        let (Some(crate::plugins::binding::Plugin { kind: crate::plugins::binding::PluginKind::Jwt(cfg), .. }), Some(Some(state))) =
            (gw.plugins.get(idx.index()), rt.jwt.get_mut(idx.index()))
        else {
            return Err(Refusal::new(&errors::I400JP, &["plugin state missing"], "jwt plugin state missing"));
        };
        let mut coarse_now = || ctx.coarse.now_ms();
        let claims = match crate::plugins::jwt::check(cfg, state, req.headers, req.query, &mut coarse_now, store) {
            Ok(crate::plugins::jwt::JwtOutcome::Verified(c, jti)) => {
                if gw.cluster_mode.one_time_keys.is_some() {
                    admission.one_time.extend(jti);
                }
                Some(c)
            }
            Ok(crate::plugins::jwt::JwtOutcome::Bypassed) => None,
            Err(r) => return Err(Refusal { app: identity.app, ..r }),
        };
        forward_claims(cfg, claims.as_deref(), &mut admission.edits, &mut query_adds);
        admission.claims = claims;
    }
    if let Some(Plugin { kind: PluginKind::Access(cfg), .. }) = plugin(bound.access) {
        let view = crate::request::vars::RequestVars { gw, req, identity: &identity, claims: admission.claims.as_deref(), ctx };
        crate::request::vars::access_control(cfg, &view).map_err(with_app)?;
    }
    if gw.limits != crate::plugins::traffic_control::GatewayLimits::default() {
        crate::plugins::traffic_control::admit_limits(&gw.limits, now(), store).map_err(with_app)?;
    }
    if let Some(idx) = bound.traffic {
        if let (Some(Plugin { kind: PluginKind::Traffic(cfg), .. }), Some(api)) = (gw.plugins.get(idx.index()), gw.api(identity.api)) {
            let who = app.map(|a| (a.id.as_str(), a.owner_id.as_str()));
            if let Some(rls) = &gw.cluster_mode.rate_limit_service {
                // Counted by the rate limit service, after every local check has passed.
                admission.rate_limit = Some(crate::cluster::rls::call(&rls.domain, cfg, idx.0, &api.name, gw.stage_name(identity.stage), who));
            } else {
                match crate::plugins::traffic_control::admit(cfg, idx.0, &api.name, gw.stage_name(identity.stage), who, now(), store) {
                    Ok((dims, quota)) => admission.traffic = Some((idx, dims, cfg.rate_limit_headers.then_some(quota))),
                    Err(r) => return Err(Refusal { app: identity.app, ..r }),
                }
            }
        }
    }
    let mut downgrade = None;
    if let (Some(Plugin { kind: PluginKind::Breaker(cfg), .. }), Some(api)) = (plugin(bound.breaker), gw.api(identity.api)) {
        let key = crate::plugins::circuit_breaker::key(cfg, &api.name, gw.stage_name(identity.stage));
        match crate::plugins::circuit_breaker::admit(cfg, &key, now(), store) {
            Ok(pass) => admission.breaker = bound.breaker.map(|i| (i, key, pass)),
            // Open, with a downgrade: the request goes there, and its outcome is not the backend's.
            Err(_) if cfg.downgrade.is_some() => downgrade = Some(cfg),
            Err(r) => return Err(with_app(r)),
        }
    }
    if let Some(api) = gw.api(identity.api) {
        let forwarded = match downgrade {
            Some(cfg) => forward::upstream_downgraded(gw, api, &identity, req, ctx, query_adds, &mut admission.edits, cfg),
            None => forward::upstream(gw, api, &identity, req, ctx, query_adds, &mut admission.edits),
        };
        if let Err(r) = forwarded {
            // Refused after the breaker made this request its trial: the next request is.
            if let (Some(Plugin { kind: PluginKind::Breaker(cfg), .. }), Some((_, key, Pass::Trial(started)))) =
                (plugin(bound.breaker), &admission.breaker)
            {
                crate::plugins::circuit_breaker::give_back(cfg, key, *started, now(), store);
            }
            return Err(with_app(r));
        }
    }
    if let Some(Plugin { kind: PluginKind::BackendSignature(cfg), .. }) = plugin(bound.backend_signature) {
        // Signed over what the backend will receive: the path after mapping and claims (split and
        // decoded here, as the request's own path was once, when it is not the request's).
        let edited = admission.edits.iter().rev().find(|(n, _)| n == ":path").and_then(|(_, v)| v.clone());
        let (decoded_path, query) = match edited.as_deref().map(split_path) {
            Some((raw, query)) => (percent_decode(raw, false), query),
            None => (Cow::Borrowed(&*req.decoded_path), req.query),
        };
        let target = crate::plugins::backend_signature::Target { decoded_path: &decoded_path, query };
        let form = form_body(req.headers, ctx.body);
        let md5 = req.headers.get(b"content-md5");
        admission.edits.extend(
            crate::plugins::backend_signature::headers(cfg, req.method, md5, &target, form, ctx.request_id.as_bytes())
                .into_iter()
                .map(|(n, v)| (n.into(), v)),
        );
    }
    // Without loop detection the gateway counts nothing, and a client's count is removed all the same.
    let hops = gw.max_hops.map(|_| (req.headers.number(HOPS_HEADER).unwrap_or(0) + 1).to_string().into_bytes());
    admission.edits.push(("x-ca-hops".into(), hops));
    Ok(admission)
}

/// ipControl and basicAuth: who is calling, from where (their lists possibly from datasets).
fn client_checks(
    gw: &Gateway,
    req: &Request<'_>,
    ctx: &Ctx<'_>,
    bound: &crate::plugins::binding::Bound,
    app_id: Option<&str>,
) -> Result<(), Refusal> {
    use crate::plugins::binding::{Plugin, PluginKind};
    let plugin = |i: Option<crate::ids::PluginId>| i.and_then(|i| gw.plugins.get(i.index()));
    if let Some(Plugin { kind: PluginKind::Ip(cfg), .. }) = plugin(bound.ip) {
        let peer_addr = match cfg.source {
            crate::plugins::ip_control::Source::Peer => ctx.stream.peer_address(),
            crate::plugins::ip_control::Source::Xff(_) => None,
        };
        let ip = crate::plugins::ip_control::client_ip(cfg.source, peer_addr.as_deref(), req.headers.get(b"x-forwarded-for"));
        let in_dataset = |id: &str, key: u128| gw.datasets.has_ip(id, key, ctx.coarse.now_ms());
        if !crate::plugins::ip_control::allowed(cfg, ip, app_id, &in_dataset) {
            return Err(Refusal::new(&errors::A403IP, &[], "ip control"));
        }
    }
    if let Some(Plugin { kind: PluginKind::Basic(cfg), .. }) = plugin(bound.basic) {
        let in_dataset = |id: &str, digest: &[u8; 32]| gw.datasets.has_user(id, digest, ctx.coarse.now_ms());
        if !cfg.admits(req.headers.get(b"authorization"), &in_dataset) {
            let mut r = Refusal::new(&errors::A401BA, &[], "basic auth");
            r.headers.push(("www-authenticate".into(), cfg.challenge()));
            return Err(r);
        }
    }
    Ok(())
}

/// `claimParameters`: claims to the backend as headers (client-sent copies always replaced or
/// removed) or as query parameters (replacing any client-sent parameter of that name; the upstream
/// path is built once, in `forward`).
fn forward_claims(
    cfg: &crate::plugins::jwt::JwtConfig,
    claims: Option<&serde_json::Map<String, serde_json::Value>>,
    edits: &mut Edits,
    adds: &mut QueryAdds,
) {
    let value = |name: &str| claims.and_then(|c| c.get(name)).map(crate::plugins::conditions::json_text);
    for p in &cfg.claim_parameters {
        match p.location {
            crate::plugins::jwt::TokenLocation::Query => {
                adds.replaced.push(p.name.clone());
                if let Some(v) = value(&p.claim) {
                    adds.pairs.push((p.name.clone(), v));
                }
            }
            // A claim with CR or LF would make Envoy refuse to send the request at all.
            _ => edits.push((p.name.clone().into(), value(&p.claim).map(|v| crate::wire::text::header_value(&v).into_owned().into_bytes()))),
        }
    }
}

/// `X-Ca-Debug-Info` for debug mode: the API matched, the stage, the app, the plugins bound, the
/// filter's own time. Header-safe; never a secret.
pub(crate) fn debug_info(gw: &Gateway, a: &Admission, app_id: &str, elapsed_us: u64) -> String {
    let b = gw.bound(a.identity.api, a.identity.stage);
    let plugins: Vec<String> =
        b.all().iter().flatten().filter_map(|i| gw.plugins.get(i.index())).map(|p| format!("{}/{}", p.type_name, p.name)).collect();
    let api = gw.api(a.identity.api).map_or("", |x| x.name.as_str());
    let stage = gw.stage_name(a.identity.stage);
    let text = format!("api={api};stage={stage};app={app_id};plugins={};filterMicros={elapsed_us}", plugins.join(","));
    header_safe(text.as_bytes())
}
