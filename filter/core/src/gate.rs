//! The request decision: routing, then authentication (signature or AppCode), replay protection and
//! authorization, as pure functions over the request and the host services.

use crate::config::{AppCodeAuth, AuthType, Gateway};
use crate::errors::{self, ErrorCode};
use crate::headers::Headers;
use crate::nonce::{NonceStore, Outcome};
use crate::params::{is_form, parse_urlencoded, percent_decode, split_path, starts_with_ignore_case, trim, Param};
use crate::sign::{content_md5_matches, form_body, header_safe, Algorithm, Signed, StringToSign};
use crate::store::{Clock, SharedStore};

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
    pub headers: Vec<(&'static str, String)>,
    /// The traffic-control plugin and dimension that throttled the request, for stats.
    pub throttled: Option<(u32, crate::traffic::Dim)>,
}

impl Refusal {
    pub fn new(error: &'static ErrorCode, args: &[&str], cause: &'static str) -> Self {
        Refusal { error, message: error.render(args), app: None, cause, headers: Vec::new(), throttled: None }
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
}

/// Who is calling, once authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub api: u32,
    pub stage: u32,
    pub app: Option<u32>,
}

/// Selects the API (stage, method, path). Needs only the headers.
pub fn route(gw: &Gateway, req: &Request<'_>) -> Result<Routed, Refusal> {
    let h = req.headers;
    let stage = match h.get(b"x-ca-stage") {
        None => gw.release_stage,
        Some(s) => gw.stage_index(trim(s)).ok_or_else(|| Refusal::new(&errors::I400SG, &[], "unknown stage"))?,
    };
    let (raw_path, _) = split_path(req.path);
    let path = percent_decode(raw_path, false);
    let Some(api_idx) = gw.route(req.method, &path, stage) else {
        let stage_name = gw.stages.get(stage as usize).map_or("", String::as_str);
        let reason = format!("`{} {}` in stage {stage_name}", String::from_utf8_lossy(req.method), String::from_utf8_lossy(&path));
        return Err(Refusal::new(&errors::I404NF, &[&header_safe(reason.as_bytes())], "no api"));
    };
    let needs_body = gw.api(api_idx).is_some_and(|api| api.auth == AuthType::App)
        && (h.contains(b"content-md5") || (h.contains(b"x-ca-key") && is_form(h.get(b"content-type"))));
    if needs_body {
        let declared = h.get(b"content-length").and_then(|v| std::str::from_utf8(trim(v)).ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > gw.max_body_bytes) {
            return Err(Refusal::new(&errors::I413RL, &[], "content-length over maxBodyBytes"));
        }
    }
    Ok(Routed { api: api_idx, stage, needs_body })
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
        match h.get(b"x-ca-timestamp").map(trim) {
            Some(ts) => {
                let ok = parse_millis(ts).is_some_and(|t| t.abs_diff(now.get()) <= gw.tolerance_ms);
                if !ok {
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
        authorize(gw, routed, app, &mut now)?;
        if let Some(nonce) = nonce {
            match nonces.record(store, key, nonce, now.get(), gw.nonce_ttl_ms) {
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
}

/// Runs the request-phase plugins bound to the API in its stage, in Aliyun's order (ipControl →
/// jwtAuth → accessControl → trafficControl), after authentication.
#[allow(clippy::too_many_arguments)]
pub fn run_plugins(
    gw: &Gateway,
    rt: &mut crate::plugins::Runtime,
    req: &Request<'_>,
    identity: Identity,
    clock: &dyn Clock,
    store: &dyn SharedStore,
    peer: &dyn Fn() -> Option<Vec<u8>>,
) -> Result<Admission, Refusal> {
    use crate::plugins::{Plugin, PluginKind};
    let mut admission = Admission { identity, claims: None, edits: Vec::new(), traffic: None };
    let bound = gw.bound(identity.api, identity.stage);
    let mut cached_now = None;
    let mut now = || *cached_now.get_or_insert_with(|| clock.now_ms());
    let app = identity.app.and_then(|a| gw.app(a));
    if let Some(Plugin { kind: PluginKind::Ip(cfg), .. }) = bound.ip.and_then(|i| gw.plugins.get(i as usize)) {
        let peer_addr = match cfg.source {
            crate::ipcontrol::Source::Peer => peer(),
            crate::ipcontrol::Source::Xff(_) => None,
        };
        let ip = crate::ipcontrol::client_ip(cfg.source, peer_addr.as_deref(), req.headers.get(b"x-forwarded-for"));
        if !crate::ipcontrol::allowed(cfg, ip, app.map(|a| a.id.as_str())) {
            return Err(Refusal { app: identity.app, ..Refusal::new(&errors::A403IP, &[], "ip control") });
        }
    }
    if let Some(idx) = bound.jwt {
        let (Some(crate::plugins::Plugin { kind: crate::plugins::PluginKind::Jwt(cfg), .. }), Some(Some(state))) =
            (gw.plugins.get(idx as usize), rt.jwt.get_mut(idx as usize))
        else {
            return Err(Refusal::new(&errors::I400JP, &["plugin state missing"], "jwt plugin state missing"));
        };
        let claims = match crate::jwt::check(cfg, state, req.headers, req.path, &mut now, store) {
            Ok(crate::jwt::JwtOutcome::Verified(c)) => Some(c),
            Ok(crate::jwt::JwtOutcome::Bypassed) => None,
            Err(r) => return Err(Refusal { app: identity.app, ..r }),
        };
        forward_claims(cfg, claims.as_deref(), req, &mut admission.edits);
        admission.claims = claims;
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
