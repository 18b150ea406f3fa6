//! The request decision: routing, then authentication (signature or AppCode), replay protection and
//! authorization, as pure functions over the request and the host services.

use crate::config::{AppCodeAuth, AuthType, Gateway};
use crate::errors::{self, ErrorCode};
use crate::headers::Headers;
use crate::nonce::{NonceStore, Outcome};
use crate::params::{is_form, parse_urlencoded, percent_decode, split_path, starts_with_ignore_case, trim, Param};
use crate::sign::{content_md5_matches, form_body, header_safe, Algorithm, Signed, StringToSign};
use crate::store::{Clock, SharedStore};
use std::borrow::Cow;

/// Headers the backend can trust: set by the gateway, any client-sent copy removed.
pub const APP_ID_HEADER: &str = "x-ca-app-id";
pub const API_NAME_HEADER: &str = "x-ca-api-name";
pub const REQUEST_ID_HEADER: &str = "x-ca-request-id";

/// The spellings of the AppCode query parameter that clients use.
const APPCODE_QUERY_NAMES: [&[u8]; 5] = [b"AppCode", b"appcode", b"appCode", b"APPCODE", b"APPCode"];

/// The request as the core sees it.
pub struct Request<'a> {
    pub method: &'a [u8],
    /// `:path`, with the query.
    pub path: &'a [u8],
    pub headers: &'a Headers<'a>,
}

/// Why a request is refused: its table row, the rendered (header-safe) message, and for logs the app
/// if one was identified and a short cause. Nothing here holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub error: &'static ErrorCode,
    pub message: String,
    pub app: Option<u32>,
    pub cause: &'static str,
    /// Response headers beyond the error contract (`Retry-After`, `RateLimit-*`, …).
    pub headers: Vec<(Cow<'static, str>, String)>,
    /// The traffic-control plugin and dimension that throttled the request, for stats.
    pub throttled: Option<(u32, crate::traffic::Dim)>,
    /// A status and a body replacing the table's status and the JSON body (accessControl's own).
    pub status: Option<u16>,
    pub body: Option<String>,
}

impl Refusal {
    pub fn new(error: &'static ErrorCode, args: &[&str], cause: &'static str) -> Self {
        Refusal { error, message: error.render(args), app: None, cause, headers: Vec::new(), throttled: None, status: None, body: None }
    }
    fn app(mut self, app: u32) -> Self {
        self.app = Some(app);
        self
    }
}

/// The API a request is for, and whether its body must be read before deciding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routed {
    pub api: u32,
    pub stage: u32,
    pub needs_body: bool,
    /// The cors plugin of the API, when the request comes from an allowed browser origin.
    pub cors: Option<u32>,
    /// A CORS preflight the gateway answers itself.
    pub preflight: bool,
}

/// Who is calling, once authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub api: u32,
    pub stage: u32,
    pub app: Option<u32>,
}

/// Selects the API (stage, method, path), answers CORS preflights and refuses disallowed origins.
/// Needs only the headers.
pub fn route(gw: &Gateway, req: &Request<'_>) -> Result<Routed, Refusal> {
    let h = req.headers;
    if req.path.len() as u64 > gw.max_url_bytes {
        return Err(Refusal::new(&errors::I413UL, &[], "url over maxUrlBytes"));
    }
    if let Some(max) = gw.max_hops {
        if header_u64(h, HOPS_HEADER).unwrap_or(0) >= max {
            return Err(Refusal::new(&errors::I508LD, &[], "loop detected"));
        }
    }
    let stage = match h.get(b"x-ca-stage") {
        None => gw.release_stage,
        Some(s) => gw.stage_index(trim(s)).ok_or_else(|| Refusal::new(&errors::I400SG, &[], "unknown stage"))?,
    };
    let (raw_path, _) = split_path(req.path);
    let path = percent_decode(raw_path, false);
    // A backend that resolves `..` would act on another API's path than the one routed here.
    if has_dot_segment(&path) {
        return Err(Refusal::new(&errors::I400PA, &[&header_safe(shorten(raw_path))], "dot segment in path"));
    }
    let origin = h.get(b"origin");
    let cors_of = |api: u32| -> Option<(u32, &crate::cors::CorsConfig)> {
        let idx = gw.bound(api, stage).cors?;
        match &gw.plugins.get(idx as usize)?.kind {
            crate::plugins::PluginKind::Cors(c) => Some((idx, c.as_ref())),
            _ => None,
        }
    };
    let disallowed = |origin: &[u8]| {
        Refusal::new(&errors::A403CO, &[&header_safe(origin)], "cors origin not allowed")
    };
    if let (b"OPTIONS", Some(origin), Some(wanted)) = (req.method, origin, h.get(b"access-control-request-method")) {
        let wanted = trim(wanted);
        match gw.route(wanted, &path, stage) {
            Some(api) => {
                if let Some((idx, cors)) = cors_of(api) {
                    if !cors.allows(origin) {
                        return Err(disallowed(origin));
                    }
                    return Ok(Routed { api, stage, needs_body: false, cors: Some(idx), preflight: true });
                }
            }
            None if gw.has_cors => {
                let (m, p) = (String::from_utf8_lossy(wanted), String::from_utf8_lossy(&path));
                return Err(Refusal::new(&errors::I404CO, &[&header_safe(m.as_bytes()), &header_safe(p.as_bytes())], "preflight for no api"));
            }
            None => {}
        }
    }
    let Some(api_idx) = gw.route(req.method, &path, stage) else {
        let stage_name = gw.stages.get(stage as usize).map_or("", String::as_str);
        let reason = format!("`{} {}` in stage {stage_name}", String::from_utf8_lossy(req.method), String::from_utf8_lossy(&path));
        return Err(Refusal::new(&errors::I404NF, &[&header_safe(reason.as_bytes())], "no api"));
    };
    let mut cors = None;
    if let (Some(origin), Some((idx, cfg))) = (origin, cors_of(api_idx)) {
        if !cfg.allows(origin) {
            return Err(disallowed(origin));
        }
        cors = Some(idx);
    }
    let form = is_form(h.get(b"content-type"));
    let needs_body = gw.api(api_idx).is_some_and(|api| {
        (api.auth == AuthType::App && (h.contains(b"content-md5") || (h.contains(b"x-ca-key") && form))) || (api.reads_form && form)
    });
    if needs_body && header_u64(h, b"content-length").is_some_and(|n| n > gw.max_body_bytes) {
        return Err(Refusal::new(&errors::I413RL, &[], "content-length over maxBodyBytes"));
    }
    Ok(Routed { api: api_idx, stage, needs_body, cors, preflight: false })
}

/// True if a segment of the decoded path is `.` or `..`; `\\` counts as a separator, as some
/// servers read it so.
pub fn has_dot_segment(path: &[u8]) -> bool {
    path.split(|&b| b == b'/' || b == b'\\').any(|seg| seg == b"." || seg == b"..")
}

/// At most 256 bytes of a client value, for a message.
fn shorten(v: &[u8]) -> &[u8] {
    v.get(..256).unwrap_or(v)
}

/// A header holding a whole number (`Content-Length`, the hop counter).
fn header_u64(h: &Headers<'_>, name: &[u8]) -> Option<u64> {
    std::str::from_utf8(trim(h.get(name)?)).ok()?.parse().ok()
}

/// The hop counter for loop detection (`maxHops`).
pub const HOPS_HEADER: &[u8] = b"x-ca-hops";

/// CORS headers for a routed request: the preflight answer's, or those of an actual response.
pub fn cors_headers(gw: &Gateway, routed: &Routed, req: &Request<'_>) -> Vec<(&'static str, String)> {
    let (Some(idx), Some(origin)) = (routed.cors, req.headers.get(b"origin")) else { return Vec::new() };
    match gw.plugins.get(idx as usize).map(|p| &p.kind) {
        Some(crate::plugins::PluginKind::Cors(c)) if routed.preflight => {
            c.preflight_headers(origin, req.headers.get(b"access-control-request-headers"))
        }
        Some(crate::plugins::PluginKind::Cors(c)) => c.response_headers(origin),
        _ => Vec::new(),
    }
}

/// The clock is read at most once, and only if a check needs it.
struct Now<'c> {
    clock: &'c dyn Clock,
    value: Option<i64>,
}

impl Now<'_> {
    fn get(&mut self) -> i64 {
        *self.value.get_or_insert_with(|| self.clock.now_ms())
    }
}

/// Authenticates and authorizes a routed request. `body` is the full body when `routed.needs_body`.
pub fn authenticate(
    gw: &Gateway,
    nonces: &NonceStore,
    req: &Request<'_>,
    routed: &Routed,
    body: Option<&[u8]>,
    clock: &dyn Clock,
    store: &dyn SharedStore,
) -> Result<Identity, Refusal> {
    let mut identity = Identity { api: routed.api, stage: routed.stage, app: None };
    let Some(api) = gw.api(routed.api) else {
        return Err(Refusal::new(&errors::X500AM, &[], "api index out of range"));
    };
    if api.auth == AuthType::Anonymous {
        return Ok(identity);
    }
    let h = req.headers;
    let mut now = Now { clock, value: None };

    if let Some(key) = h.get(b"x-ca-key").map(trim).filter(|k| !k.is_empty()) {
        let app = gw.app_by_key(key).ok_or_else(|| Refusal::new(&errors::A400IK, &[], "unknown appKey"))?;
        let refuse = |e: &'static ErrorCode, args: &[&str], cause| Refusal::new(e, args, cause).app(app);
        let nonce = h.get(b"x-ca-nonce").map(trim).filter(|n| !n.is_empty());
        if api.force_nonce && nonce.is_none() {
            return Err(refuse(&errors::I400NC, &[], "nonce required"));
        }
        let timestamp = h.get(b"x-ca-timestamp").map(trim);
        let mut signed_at = None;
        match timestamp {
            Some(ts) => {
                signed_at = parse_millis(ts).filter(|t| t.abs_diff(now.get()) <= gw.tolerance_ms);
                if signed_at.is_none() {
                    return Err(refuse(&errors::S403TE, &[], "timestamp malformed or outside tolerance"));
                }
            }
            // Without a timestamp a nonce could be replayed once it is forgotten.
            None if nonce.is_some() || api.force_nonce || gw.require_timestamp => {
                return Err(refuse(&errors::S403TE, &[], "timestamp missing"));
            }
            None => {}
        }
        check_content_md5(h, body).map_err(|r| r.app(app))?;

        let form = form_body(h, body);
        let sts = StringToSign::build(&Signed { method: req.method, path: req.path, headers: h, form });
        let Some(keys) = gw.app(app) else {
            return Err(refuse(&errors::X500AM, &[], "app index out of range"));
        };
        let valid = match (Algorithm::from_header(h.get(b"x-ca-signature-method")), h.get(b"x-ca-signature")) {
            (Some(alg), Some(sig)) => sts.verify(alg, &keys.hmac_sha256, &keys.hmac_sha1, sig),
            _ => false,
        };
        if !valid {
            let shown = header_safe(&sts.canonical());
            return Err(refuse(&errors::A403IS, &[&shown], "signature mismatch"));
        }
        // An unsigned nonce or timestamp could be changed at will on a captured request.
        for (value, name, shown) in [(nonce, &b"x-ca-nonce"[..], "X-Ca-Nonce"), (timestamp, b"x-ca-timestamp", "X-Ca-Timestamp")] {
            if value.is_some() && !signs_header(h, name) {
                return Err(refuse(&errors::I400HD, &[shown, "is not signed: list it in X-Ca-Signature-Headers"], "nonce or timestamp not signed"));
            }
        }
        authorize(gw, routed, app, &mut now)?;
        if let Some(nonce) = nonce {
            // Remembered for as long as the request could pass the timestamp check again: a
            // timestamp ahead of the clock stays acceptable until `timestamp + tolerance`.
            let now_ms = now.get();
            let until = (now_ms.saturating_add(gw.nonce_ttl_ms as i64))
                .max(signed_at.unwrap_or(0).saturating_add(gw.tolerance_ms as i64));
            match nonces.record_until(store, key, nonce, now_ms, until) {
                Outcome::Fresh => {}
                Outcome::Replayed => return Err(refuse(&errors::S403NU, &[], "nonce replayed")),
                Outcome::Full => return Err(refuse(&errors::X503BZ, &[], "nonce store full")),
                Outcome::Contended => return Err(refuse(&errors::X503BZ, &[], "nonce store contended")),
            }
        }
        identity.app = Some(app);
        return Ok(identity);
    }

    // AppCode: the header first, then the query where the API allows it.
    let from_header = h
        .get(b"authorization")
        .map(trim)
        .filter(|v| starts_with_ignore_case(v, b"APPCODE "))
        .map(|v| trim(v.get(8..).unwrap_or_default()));
    let (code, in_query) = match from_header {
        Some(c) => (Some(std::borrow::Cow::Borrowed(c)), false),
        None => (query_appcode(req.path), true),
    };
    let Some(code) = code else {
        return Err(Refusal::new(&errors::A400MA, &[], "no credentials"));
    };
    let allowed = match api.app_code {
        AppCodeAuth::Disable => false,
        AppCodeAuth::Header => !in_query,
        AppCodeAuth::HeaderQuery => true,
    };
    if !allowed {
        let reason = if in_query { "AppCode in the query is not allowed for this API" } else { "AppCode is not allowed for this API" };
        return Err(Refusal::new(&errors::A400AC, &[reason], "appcode not allowed here"));
    }
    let app = gw.app_by_code(&code).ok_or_else(|| Refusal::new(&errors::A400AC, &[], "unknown appcode"))?;
    check_content_md5(h, body).map_err(|r| r.app(app))?;
    authorize(gw, routed, app, &mut now)?;
    identity.app = Some(app);
    Ok(identity)
}

fn check_content_md5(h: &Headers<'_>, body: Option<&[u8]>) -> Result<(), Refusal> {
    match h.get(b"content-md5") {
        Some(md5) if !content_md5_matches(md5, body.unwrap_or_default()) => {
            Err(Refusal::new(&errors::I400I5, &["does not match the body"], "content-md5 mismatch"))
        }
        _ => Ok(()),
    }
}

fn authorize(gw: &Gateway, routed: &Routed, app: u32, now: &mut Now<'_>) -> Result<(), Refusal> {
    match gw.grant(routed.api, app, routed.stage) {
        None => Err(Refusal::new(&errors::A403UA, &[], "no grant for api and stage").app(app)),
        Some(g) if g.expires_ms.is_some_and(|end| now.get() >= end) => {
            Err(Refusal::new(&errors::A403EP, &[], "grant expired").app(app))
        }
        Some(_) => Ok(()),
    }
}

/// Whether `X-Ca-Signature-Headers` lists `name` (given in lower case), in any case.
fn signs_header(h: &Headers<'_>, name: &[u8]) -> bool {
    h.get(b"x-ca-signature-headers").is_some_and(|list| list.split(|&b| b == b',').any(|n| trim(n).eq_ignore_ascii_case(name)))
}

fn parse_millis(ts: &[u8]) -> Option<i64> {
    if ts.is_empty() || ts.len() > 15 || !ts.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(ts).ok()?.parse().ok()
}

fn query_appcode(path: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    let (_, query) = split_path(path);
    if query.is_empty() {
        return None;
    }
    let mut params: Vec<Param<'_>> = Vec::new();
    parse_urlencoded(query, &mut params);
    params.into_iter().find(|p| APPCODE_QUERY_NAMES.iter().any(|n| *n == &*p.name)).and_then(|p| p.value)
}

/// The identity headers for the backend: `(name, value)`; a `None` value means "remove any
/// client-sent copy". The request id is added by the caller, which generated it.
pub fn identity_headers<'g>(gw: &'g Gateway, id: &Identity) -> [(&'static str, Option<&'g str>); 2] {
    [
        (APP_ID_HEADER, id.app.and_then(|a| gw.app(a)).map(|a| a.id.as_str())),
        (API_NAME_HEADER, gw.api(id.api).map(|a| a.name.as_str())),
    ]
}

/// What the backend receives beyond the request itself: header edits (`None` removes), and the
/// verified JWT claims for later plugins.
#[derive(Debug, Clone)]
pub struct Admission {
    pub identity: Identity,
    pub claims: Option<crate::jwt::Claims>,
    pub edits: Vec<(String, Option<Vec<u8>>)>,
    /// trafficControl: the plugin, the dimensions counted (for stats) and, when the plugin asks for
    /// `RateLimit-*` headers, the tightest quota.
    pub traffic: Option<(u32, Vec<crate::traffic::Dim>, Option<crate::traffic::Quota>)>,
    /// circuitBreaker: the plugin, its state key, and how this request passed (the response reports).
    pub breaker: Option<(u32, String, crate::breaker::Pass)>,
}

/// Runs the request-phase plugins bound to the API in its stage, in Aliyun's order (ipControl →
/// jwtAuth → accessControl → trafficControl), after authentication.
/// What the request phase knows beyond the request: its id, its body (if read), the peer address.
pub struct Ctx<'a> {
    pub request_id: &'a str,
    pub body: Option<&'a [u8]>,
    pub peer: &'a dyn Fn() -> Option<Vec<u8>>,
    /// A clock that may lag by a fraction of a second, for checks with tolerances of seconds
    /// (JWT `exp`/`nbf`); rate limits and the breaker use the precise `clock`.
    pub coarse: &'a dyn Clock,
}

pub fn run_plugins(
    gw: &Gateway,
    rt: &mut crate::plugins::Runtime,
    req: &Request<'_>,
    identity: Identity,
    clock: &dyn Clock,
    store: &dyn SharedStore,
    ctx: &Ctx<'_>,
) -> Result<Admission, Refusal> {
    use crate::plugins::{Plugin, PluginKind};
    let mut admission = Admission { identity, claims: None, edits: Vec::new(), traffic: None, breaker: None };
    let bound = gw.bound(identity.api, identity.stage);
    let mut cached_now = None;
    let mut now = || *cached_now.get_or_insert_with(|| clock.now_ms());
    let app = identity.app.and_then(|a| gw.app(a));
    let plugin = |i: Option<u32>| i.and_then(|i| gw.plugins.get(i as usize));
    let with_app = |r: Refusal| Refusal { app: identity.app, ..r };
    if let Some(api) = gw.api(identity.api) {
        if !api.params.is_empty() {
            crate::vars::check_parameters(api, req, ctx).map_err(with_app)?;
        }
    }
    if let Some(Plugin { kind: PluginKind::Ip(cfg), .. }) = plugin(bound.ip) {
        let peer_addr = match cfg.source {
            crate::ipcontrol::Source::Peer => (ctx.peer)(),
            crate::ipcontrol::Source::Xff(_) => None,
        };
        let ip = crate::ipcontrol::client_ip(cfg.source, peer_addr.as_deref(), req.headers.get(b"x-forwarded-for"));
        if !crate::ipcontrol::allowed(cfg, ip, app.map(|a| a.id.as_str())) {
            return Err(Refusal { app: identity.app, ..Refusal::new(&errors::A403IP, &[], "ip control") });
        }
    }
    if let Some(Plugin { kind: PluginKind::Basic(cfg), .. }) = plugin(bound.basic) {
        if cfg.check(req.headers.get(b"authorization")).is_none() {
            let mut r = Refusal::new(&errors::A401BA, &[], "basic auth");
            r.headers.push(("www-authenticate".into(), cfg.challenge()));
            return Err(with_app(r));
        }
    }
    if let Some(idx) = bound.jwt {
        let (Some(crate::plugins::Plugin { kind: crate::plugins::PluginKind::Jwt(cfg), .. }), Some(Some(state))) =
            (gw.plugins.get(idx as usize), rt.jwt.get_mut(idx as usize))
        else {
            return Err(Refusal::new(&errors::I400JP, &["plugin state missing"], "jwt plugin state missing"));
        };
        let mut coarse_now = || ctx.coarse.now_ms();
        let claims = match crate::jwt::check(cfg, state, req.headers, req.path, &mut coarse_now, store) {
            Ok(crate::jwt::JwtOutcome::Verified(c)) => Some(c),
            Ok(crate::jwt::JwtOutcome::Bypassed) => None,
            Err(r) => return Err(Refusal { app: identity.app, ..r }),
        };
        forward_claims(cfg, claims.as_deref(), req, &mut admission.edits);
        admission.claims = claims;
    }
    if let Some(Plugin { kind: PluginKind::Access(cfg), .. }) = plugin(bound.access) {
        let view = crate::vars::RequestVars { gw, req, identity: &identity, claims: admission.claims.as_deref(), ctx };
        crate::vars::access_control(cfg, &view).map_err(with_app)?;
    }
    if let Some(idx) = bound.traffic {
        if let (Some(Plugin { kind: PluginKind::Traffic(cfg), .. }), Some(api)) = (gw.plugins.get(idx as usize), gw.api(identity.api)) {
            let who = app.map(|a| (a.id.as_str(), a.owner_id.as_str()));
            match crate::traffic::admit(cfg, idx, &api.name, who, now(), store) {
                Ok((dims, quota)) => admission.traffic = Some((idx, dims, cfg.rate_limit_headers.then_some(quota))),
                Err(r) => return Err(Refusal { app: identity.app, ..r }),
            }
        }
    }
    if let (Some(Plugin { kind: PluginKind::Breaker(cfg), .. }), Some(api)) = (plugin(bound.breaker), gw.api(identity.api)) {
        let key = crate::breaker::key(cfg, &api.name);
        let pass = crate::breaker::admit(cfg, &key, now(), store).map_err(with_app)?;
        admission.breaker = bound.breaker.map(|i| (i, key, pass));
    }
    if let Some(Plugin { kind: PluginKind::Backend(cfg), .. }) = plugin(bound.backend) {
        // Signed over what the backend will receive: the path after any claim rewrite.
        let path = admission.edits.iter().rev().find(|(n, _)| n == ":path").and_then(|(_, v)| v.clone());
        let path = path.as_deref().unwrap_or(req.path);
        let form = form_body(req.headers, ctx.body);
        let md5 = req.headers.get(b"content-md5");
        admission.edits.extend(crate::backend::headers(cfg, req.method, md5, path, form, ctx.request_id.as_bytes()));
    }
    if gw.max_hops.is_some() {
        let hops = header_u64(req.headers, HOPS_HEADER).unwrap_or(0);
        admission.edits.push(("x-ca-hops".to_string(), Some((hops + 1).to_string().into_bytes())));
    }
    Ok(admission)
}

/// `claimParameters`: claims to the backend as headers (client-sent copies always replaced or
/// removed) or as query parameters (replacing any client-sent parameter of that name).
fn forward_claims(
    cfg: &crate::jwt::JwtConfig,
    claims: Option<&serde_json::Map<String, serde_json::Value>>,
    req: &Request<'_>,
    edits: &mut Vec<(String, Option<Vec<u8>>)>,
) {
    let value = |name: &str| claims.and_then(|c| c.get(name)).map(crate::jwt::claim_text);
    let mut query_adds: Vec<(&str, String)> = Vec::new();
    for p in &cfg.claim_parameters {
        match p.location {
            crate::jwt::Location::Query => {
                if let Some(v) = value(&p.claim) {
                    query_adds.push((&p.name, v));
                }
            }
            _ => edits.push((p.name.clone(), value(&p.claim).map(String::into_bytes))),
        }
    }
    let replaced: Vec<&str> = cfg.claim_parameters.iter().filter(|p| p.location == crate::jwt::Location::Query).map(|p| p.name.as_str()).collect();
    if replaced.is_empty() {
        return;
    }
    let (path, query) = split_path(req.path);
    let mut out = path.to_vec();
    let mut first = true;
    let mut push = |piece: &[u8], out: &mut Vec<u8>| {
        out.push(if first { b'?' } else { b'&' });
        first = false;
        out.extend_from_slice(piece);
    };
    for piece in query.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let name = piece.split(|&b| b == b'=').next().unwrap_or_default();
        if !replaced.iter().any(|r| *percent_decode(name, true) == *r.as_bytes()) {
            push(piece, &mut out);
        }
    }
    for (name, v) in query_adds {
        let piece = format!("{}={}", url_encode(name), url_encode(&v));
        push(piece.as_bytes(), &mut out);
    }
    edits.push((":path".to_string(), Some(out)));
}

/// `X-Ca-Debug-Info` for debug mode: the API matched, the stage, the app, the plugins bound, the
/// filter's own time. Header-safe; never a secret.
pub fn debug_info(gw: &Gateway, a: &Admission, app_id: &str, elapsed_us: u64) -> String {
    let b = gw.bound(a.identity.api, a.identity.stage);
    let plugins: Vec<String> = [b.ip, b.basic, b.jwt, b.access, b.traffic, b.breaker, b.backend, b.mapping, b.cors]
        .iter()
        .flatten()
        .filter_map(|i| gw.plugins.get(*i as usize))
        .map(|p| format!("{}/{}", p.type_name, p.name))
        .collect();
    let api = gw.api(a.identity.api).map_or("", |x| x.name.as_str());
    let stage = gw.stages.get(a.identity.stage as usize).map_or("", String::as_str);
    let text = format!("api={api};stage={stage};app={app_id};plugins={};filterMicros={elapsed_us}", plugins.join(","));
    header_safe(text.as_bytes())
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
