//! Authentication and authorization of a routed request: the digest signature or an AppCode, the
//! timestamp and replay checks, the grant.

use crate::apps::directory::Credential;
use crate::auth::replay::{NonceStore, OneTime, OneTimeKind, Outcome};
use crate::auth::signature::{content_md5_matches, form_body, repeated, Algorithm, Repeated, Signed, StringToSign};
use crate::config::model::{AppCodeAuth, AuthType, Gateway};
use crate::contract::errors::{self, classic, ErrorCode, ErrorContract};
use crate::contract::refusal::Refusal;
use crate::host::{Clock, SharedStore};
use crate::ids::AppId;
use crate::request::model::{Identity, Request, Routed};
use crate::wire::headers::Headers;
use crate::wire::text::header_safe;
use crate::wire::url::{parse_urlencoded, starts_with_ignore_case, trim, UrlParam};

/// The spellings of the AppCode query parameter that clients use.
const APPCODE_QUERY_NAMES: [&[u8]; 5] = [b"AppCode", b"appcode", b"appCode", b"APPCODE", b"APPCode"];

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

/// Whether authentication remembers the request's nonce, or leaves it to the caller (`claim_nonce`).
#[derive(Clone, Copy)]
pub(crate) enum Nonces<'n> {
    Remember(&'n NonceStore),
    Later,
}

/// Authenticates and authorizes a routed request. `body` is the full body when `routed.needs_body`.
pub(crate) fn authenticate(
    gw: &Gateway,
    nonces: Nonces<'_>,
    req: &Request<'_>,
    routed: &Routed,
    body: Option<&[u8]>,
    clock: &dyn Clock,
    store: &dyn SharedStore,
) -> Result<Identity, Refusal> {
    let mut identity = Identity { api: routed.api, stage: routed.stage, app: None, nonce: None };
    let Some(api) = gw.api(routed.api) else {
        return Err(Refusal::new(&errors::X500AM, &[], "api index out of range"));
    };
    if api.auth == AuthType::Anonymous {
        // A Content-MD5 is checked whoever sends it: a backend may trust it as the body's.
        check_content_md5(gw.error_contract, req.headers, body)?;
        return Ok(identity);
    }
    let h = req.headers;
    let mut now = Now { clock, value: None };

    if let Some(key) = h.get(b"x-ca-key").map(trim).filter(|k| !k.is_empty()) {
        let app = gw.app_by_key(key).ok_or_else(|| unknown_app(gw, &errors::A400IK, "unknown appKey"))?;
        let refuse = |e: &'static ErrorCode, args: &[&str], cause| Refusal::new(e, args, cause).app(app);
        // The app's pairs with this key that are still valid (a rotated-out pair has expired).
        let today = now.get();
        let pairs: Vec<&Credential> =
            gw.app(app).map(|a| a.credentials.iter().filter(|c| c.key.as_bytes() == key && c.valid_at(today)).collect()).unwrap_or_default();
        if pairs.is_empty() {
            return Err(refuse(&errors::A400IK, &[], "appKey expired"));
        }
        let nonce = h.get(b"x-ca-nonce").map(trim).filter(|n| !n.is_empty());
        if api.force_nonce && nonce.is_none() {
            return Err(refuse(&errors::I400NC, &[], "nonce required"));
        }
        let timestamp = h.get(b"x-ca-timestamp").map(trim);
        let mut signed_at = None;
        match timestamp {
            Some(ts) => {
                let Some(t) = parse_millis(ts) else {
                    return Err(refuse(&errors::S403TE, &[], "timestamp malformed").classic(&classic::INVALID_TIMESTAMP));
                };
                if t.abs_diff(now.get()) > gw.tolerance_ms {
                    return Err(refuse(&errors::S403TE, &[], "timestamp outside tolerance"));
                }
                signed_at = Some(t);
            }
            // Without a timestamp a nonce could be replayed once it is forgotten.
            None if nonce.is_some() || api.force_nonce || gw.require_timestamp => {
                return Err(refuse(&errors::S403TE, &[], "timestamp missing").classic(&classic::INVALID_TIMESTAMP));
            }
            None => {}
        }
        // An unsupported method verifies nothing: a mismatch, reported with the StringToSign.
        let alg = Algorithm::from_header(h.get(b"x-ca-signature-method"));
        check_content_md5(gw.error_contract, h, body).map_err(|r| r.app(app))?;

        let form = form_body(h, body);
        let signed = Signed { method: req.method, path: req.path, headers: h, form };
        let decoded = std::borrow::Cow::Borrowed(&*req.decoded_path);
        let sts = StringToSign::build_split(&signed, req.raw_path, decoded, req.query);
        let signature = h.get(b"x-ca-signature").filter(|s| !trim(s).is_empty());
        let valid = alg.is_some_and(|alg| signature.is_some_and(|sig| pairs.iter().any(|c| sts.verify(alg, &c.hmac_sha256, &c.hmac_sha1, sig))));
        if !valid {
            let shown = header_safe(&sts.canonical());
            let cause = if alg.is_some() { "signature mismatch" } else { "unsupported signature method" };
            let r = refuse(&errors::A403IS, &[&shown], cause);
            return Err(if signature.is_none() { r.classic(&classic::EMPTY_SIGNATURE) } else { r });
        }
        if let Some(r) = repeated_refusal(&signed, req.query, gw.strict_signature) {
            return Err(r.app(app));
        }
        if let Some((name, from_form)) = crate::auth::signature::ambiguous_parameter(req.query, form, gw.strict_signature) {
            let reason = format!("parameter `{}`: an escaped `=` or `&` signs as two parameters", header_safe(&name));
            let (code, cause) =
                if from_form { (&errors::I400BD, "ambiguous signed form parameter") } else { (&errors::I400RU, "ambiguous signed query parameter") };
            return Err(refuse(code, &[&reason], cause));
        }
        // An unsigned nonce or timestamp could be changed at will on a captured request. Aliyun and
        // some of its SDKs' demos do not sign them; `signature.strict` refuses them.
        for (value, name, shown) in [(nonce, &b"x-ca-nonce"[..], "X-Ca-Nonce"), (timestamp, b"x-ca-timestamp", "X-Ca-Timestamp")] {
            if gw.strict_signature && value.is_some() && !signs_header(h, name) {
                return Err(refuse(&errors::I400HD, &[shown, "is not signed: list it in X-Ca-Signature-Headers"], "nonce or timestamp not signed"));
            }
        }
        authorize(gw, routed, app, &mut now)?;
        if let (Some(nonce), Nonces::Remember(nonces)) = (nonce, nonces) {
            identity.nonce = remember_nonce(gw, nonces, store, key, app, nonce, signed_at, now.get()).map_err(|r| r.app(app))?;
        }
        identity.app = Some(app);
        return Ok(identity);
    }

    // AppCode: the header first, then the query where the API allows it.
    let from_header =
        h.get(b"authorization").map(trim).filter(|v| starts_with_ignore_case(v, b"APPCODE ")).map(|v| trim(v.get(8..).unwrap_or_default()));
    let (code, in_query) = match from_header {
        Some(c) => (Some(std::borrow::Cow::Borrowed(c)), false),
        None => (query_appcode(req.query), true),
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
    let app = gw.app_by_code(&code).ok_or_else(|| unknown_app(gw, &errors::A400AC, "unknown appcode"))?;
    check_content_md5(gw.error_contract, h, body).map_err(|r| r.app(app))?;
    authorize(gw, routed, app, &mut now)?;
    identity.app = Some(app);
    Ok(identity)
}

/// Records a nonce, for as long as the request could pass the timestamp check again (a timestamp
/// ahead of the clock stays acceptable until `timestamp + tolerance`). In cluster mode, the key to
/// claim across Envoys.
#[allow(clippy::too_many_arguments)]
fn remember_nonce(
    gw: &Gateway,
    nonces: &NonceStore,
    store: &dyn SharedStore,
    key: &[u8],
    app: AppId,
    nonce: &[u8],
    signed_at: Option<i64>,
    now_ms: i64,
) -> Result<Option<OneTime>, Refusal> {
    let until = (now_ms.saturating_add(gw.nonce_ttl_ms as i64)).max(signed_at.unwrap_or(0).saturating_add(gw.tolerance_ms as i64));
    // The app's share, whichever of its key pairs signed: a second pair is no second share.
    let owner = gw.app(app).map_or(key, |a| a.id.as_bytes());
    match nonces.record_until(store, key, owner, nonce, now_ms, until) {
        Outcome::Fresh if gw.cluster_mode.one_time_keys.is_some() => Ok(Some(OneTime::new(OneTimeKind::Nonce, key, nonce, until))),
        Outcome::Fresh => Ok(None),
        Outcome::Replayed => Err(Refusal::new(&errors::S403NU, &[], "nonce replayed")),
        Outcome::Full => Err(Refusal::new(&errors::X503BZ, &[], crate::auth::replay::NONCES_FULL)),
        // The app's own doing, not the gateway's: a limit on the app, not "service busy".
        Outcome::AppShareFull => Err(Refusal::new(&errors::T429IN, &[], "nonce share of the app full")),
        Outcome::Contended => Err(Refusal::new(&errors::X503BZ, &[], "nonce store contended")),
    }
}

/// Remembers the nonce of a request authentication admitted with `Nonces::Later` (its headers were
/// checked then: the key is known, the timestamp well formed).
pub(crate) fn claim_nonce(
    gw: &Gateway,
    nonces: &NonceStore,
    store: &dyn SharedStore,
    h: &Headers<'_>,
    app: AppId,
    clock: &dyn Clock,
) -> Result<Option<OneTime>, Refusal> {
    let (Some(key), Some(nonce)) = (h.get(b"x-ca-key").map(trim), h.get(b"x-ca-nonce").map(trim).filter(|n| !n.is_empty())) else {
        return Ok(None);
    };
    let signed_at = h.get(b"x-ca-timestamp").map(trim).and_then(parse_millis);
    remember_nonce(gw, nonces, store, key, app, nonce, signed_at, clock.now_ms())
}

/// An unknown appKey or AppCode; while the app registry has not loaded a first document, the app may
/// well exist there: the client is told to retry (`X503BZ`) rather than that its credentials are bad.
fn unknown_app(gw: &Gateway, code: &'static ErrorCode, cause: &'static str) -> Refusal {
    if gw.registry.is_some() && !gw.registry_loaded {
        let mut r = Refusal::new(&errors::X503BZ, &[], "app registry not loaded yet");
        r.headers.push(("retry-after".into(), "1".to_string()));
        return r;
    }
    Refusal::new(code, &[], cause)
}

fn check_content_md5(contract: ErrorContract, h: &Headers<'_>, body: Option<&[u8]>) -> Result<(), Refusal> {
    // An empty value claims nothing about the body: clients that sign an absent body send one. Every
    // other value, under any spelling a backend reads as Content-MD5, must be the body's.
    let mut digests = h.spellings(b"content-md5").map(trim).filter(|v| !v.is_empty()).peekable();
    if digests.peek().is_none() {
        return Ok(());
    }
    let body = body.unwrap_or_default();
    if body.is_empty() && contract == ErrorContract::Classic {
        // The classic gateway's table refuses any digest of an empty body.
        return Err(Refusal::new(&errors::I400I5, &["the body is empty"], "content-md5 with an empty body"));
    }
    if !digests.all(|md5| content_md5_matches(md5, body)) {
        return Err(Refusal::new(&errors::I400I5, &["does not match the body"], "content-md5 mismatch"));
    }
    Ok(())
}

fn authorize(gw: &Gateway, routed: &Routed, app: crate::ids::AppId, now: &mut Now<'_>) -> Result<(), Refusal> {
    match gw.grant(routed.api, app, routed.stage) {
        None => Err(Refusal::new(&errors::A403UA, &[], "no grant for api and stage").app(app)),
        Some(g) if g.expires_ms.is_some_and(|end| now.get() >= end) => Err(Refusal::new(&errors::A403EP, &[], "grant expired").app(app)),
        Some(_) => Ok(()),
    }
}

/// A signed value given twice is refused (the table's invalid header, URI or body): the signature
/// covers one copy and a backend may act on another.
/// A signed value given again with another (see `repeated`).
fn repeated_refusal(signed: &Signed<'_>, query: &[u8], strict: bool) -> Option<Refusal> {
    let r = match repeated(signed, query, strict)? {
        Repeated::Header(name) => Refusal::new(&errors::I400HD, &[&header_safe(&name), "is repeated"], "signed header repeated"),
        Repeated::Query(name) => {
            let reason = format!("parameter `{}` is repeated", header_safe(&name));
            Refusal::new(&errors::I400RU, &[&reason], "signed query parameter repeated")
        }
        Repeated::Form(name) => {
            let reason = format!("parameter `{}` is repeated", header_safe(&name));
            Refusal::new(&errors::I400BD, &[&reason], "signed form parameter repeated")
        }
    };
    Some(r)
}

/// Whether `X-Ca-Signature-Headers` lists `name` (given in lower case), in any case.
fn signs_header(h: &Headers<'_>, name: &[u8]) -> bool {
    h.get(b"x-ca-signature-headers").is_some_and(|list| list.split(|&b| b == b',').any(|n| trim(n).eq_ignore_ascii_case(name)))
}

fn parse_millis(ts: &[u8]) -> Option<i64> {
    if ts.is_empty() || ts.len() > 15 || !ts.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // At most 15 digits: no overflow.
    Some(ts.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
}

fn query_appcode(query: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    if query.is_empty() {
        return None;
    }
    let mut params: Vec<UrlParam<'_>> = Vec::new();
    parse_urlencoded(query, &mut params);
    params.into_iter().find(|p| APPCODE_QUERY_NAMES.iter().any(|n| *n == &*p.name)).and_then(|p| p.value)
}
