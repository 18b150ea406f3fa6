//! Aliyun's jwtAuth plugin: the token from a header, query parameter or cookie, verified against the
//! plugin's keys (static `jwk`/`jwks`, or a remote JWKS kept fresh by the adapter), with the claims
//! made available to the backend and to later plugins.

pub mod jwk;
pub mod jwks_fetch;

use crate::auth::replay::NonceStoreConfig;
use crate::auth::replay::{NonceStore, OneTime, OneTimeKind, Outcome};
use crate::contract::errors::{self, ErrorCode};
use crate::contract::refusal::Refusal;
use crate::plugins::definition::{AliyunPlugin, Definition};
use crate::schema::validator::{join, Validator};
use crate::wire::headers::Headers;
use crate::wire::url::{parse_urlencoded, starts_with_ignore_case, trim, UrlParam};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwk::{Alg, Key};
use serde_json::{Map, Value};
use std::collections::{HashMap, VecDeque};
use std::hash::Hasher;
use std::sync::Arc;

pub type Claims = Arc<Map<String, Value>>;

/// Longest token accepted; longer ones are refused before any decoding.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
pub const DEFAULT_CLOCK_SKEW_S: u64 = 60;
pub const DEFAULT_CACHE_SIZE: u64 = 1024;
/// How long a `jti` without `exp` is remembered.
pub const DEFAULT_JTI_TTL_S: u64 = 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenLocation {
    Header,
    Query,
    Cookie,
}

#[derive(Debug, Clone)]
pub struct ClaimParameter {
    pub claim: String,
    pub name: String,
    /// Header (lower-cased name) or query parameter.
    pub location: TokenLocation,
}

/// A validated jwtAuth plugin.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub plugin: String,
    pub parameter: String,
    pub location: TokenLocation,
    pub keys: Vec<Key>,
    pub remote: Option<jwks_fetch::JwksFetch>,
    pub claim_parameters: Vec<ClaimParameter>,
    pub prevent_jti_replay: bool,
    pub bypass_empty_token: bool,
    pub ignore_expiration: bool,
    pub issuers: Vec<String>,
    pub audiences: Vec<String>,
    pub skew_ms: i64,
    pub cache_size: usize,
    pub jti_store: NonceStoreConfig,
    pub jti_ttl_ms: i64,
}

const FIELDS: &[&str] = &[
    "parameter",
    "parameterLocation",
    "jwk",
    "jwks",
    "claimParameters",
    "preventJtiReplay",
    "bypassEmptyToken",
    "ignoreExpirationCheck",
    "issuer",
    "audiences",
    "clockSkewSeconds",
    "cacheSize",
    "jtiCapacity",
    "jtiTtlSeconds",
    "jwksUri",
    "jwksCluster",
    "jwksRefreshSeconds",
    "jwksTimeoutMs",
];
/// Aliyun fields cagate accepts and ignores.
const TOLERATED: &[&str] = &["orgnization", "organization"];

impl AliyunPlugin for JwtConfig {
    const TYPE: &'static str = "jwtAuth";

    /// Validates jwtAuth plugin data.
    fn parse(c: &mut Validator, data: &Value, def: &Definition<'_>) -> Option<Self> {
        let (plugin, path) = (def.name, def.path);
        let o = c.object_lenient(data, path, FIELDS, TOLERATED)?;
        let before = c.problems.len();
        let parameter = c.string(o, path, "parameter", true).unwrap_or_default().to_string();
        let location = match c.string(o, path, "parameterLocation", false) {
            None | Some("header") | Some("HEADER") => TokenLocation::Header,
            Some("query") | Some("QUERY") => TokenLocation::Query,
            Some("cookie") | Some("COOKIE") => TokenLocation::Cookie,
            Some(other) => {
                c.err(&join(path, "parameterLocation"), format!("unknown location {other}: header, query or cookie"));
                TokenLocation::Header
            }
        };
        let mut keys = Vec::new();
        for field in ["jwk", "jwks"] {
            if let Some(v) = o.get(field) {
                match jwk::parse_key_set(v) {
                    Ok(k) => keys.extend(k),
                    Err(e) => c.err(&join(path, field), e),
                }
            }
        }
        let remote = jwks_fetch::parse(c, o, path);
        if keys.is_empty() && remote.is_none() && c.problems.len() == before {
            c.err(path, "needs at least one key: `jwk`, `jwks` or `jwksUri`");
        }
        let mut claim_parameters = Vec::new();
        for (i, v) in c.array(o, path, "claimParameters").iter().enumerate() {
            let p = format!("{path}.claimParameters[{i}]");
            let Some(m) = c.object(v, &p, &["claimName", "parameterName", "location"]) else { continue };
            let claim = c.string(m, &p, "claimName", true);
            let name = c.string(m, &p, "parameterName", true);
            let location = match c.string(m, &p, "location", false) {
                None | Some("header") | Some("HEADER") => TokenLocation::Header,
                Some("query") | Some("QUERY") => TokenLocation::Query,
                Some(other) => {
                    c.err(&join(&p, "location"), format!("unknown location {other}: header or query"));
                    TokenLocation::Header
                }
            };
            if let (Some(claim), Some(name)) = (claim, name) {
                if location == TokenLocation::Header && !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)) {
                    c.err(&join(&p, "parameterName"), "not a valid header name");
                    continue;
                }
                let name = if location == TokenLocation::Header { name.to_ascii_lowercase() } else { name.to_string() };
                claim_parameters.push(ClaimParameter { claim: claim.to_string(), name, location });
            }
        }
        let issuers = match o.get("issuer") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(_) => c.strings(o, path, "issuer").unwrap_or_default().into_iter().map(str::to_string).collect(),
            None => Vec::new(),
        };
        let audiences = c.strings(o, path, "audiences").unwrap_or_default().into_iter().map(str::to_string).collect();
        let capacity = c.integer(o, path, "jtiCapacity", 65_536, 64, 1 << 22);
        Some(JwtConfig {
            plugin: plugin.to_string(),
            parameter: if location == TokenLocation::Header { parameter.to_ascii_lowercase() } else { parameter },
            location,
            keys,
            remote,
            claim_parameters,
            prevent_jti_replay: c.boolean(o, path, "preventJtiReplay", false),
            bypass_empty_token: c.boolean(o, path, "bypassEmptyToken", false),
            ignore_expiration: c.boolean(o, path, "ignoreExpirationCheck", false),
            issuers,
            audiences,
            skew_ms: c.integer(o, path, "clockSkewSeconds", DEFAULT_CLOCK_SKEW_S, 0, 3600) as i64 * 1000,
            cache_size: c.integer(o, path, "cacheSize", DEFAULT_CACHE_SIZE, 0, 1 << 20) as usize,
            jti_store: NonceStoreConfig::for_capacity(capacity),
            jti_ttl_ms: c.integer(o, path, "jtiTtlSeconds", DEFAULT_JTI_TTL_S, 1, 30 * 86_400) as i64 * 1000,
        })
    }
}

/// A token that verified, as remembered by the cache.
#[derive(Debug, Clone)]
struct Verified {
    claims: Claims,
    exp: Option<i64>,
    nbf: Option<i64>,
}

/// Per-VM state of one jwtAuth plugin: the verified-token cache, the remote key set, the jti store.
pub struct JwtState {
    cache: HashMap<u64, Verified>,
    order: VecDeque<u64>,
    seed: (u64, u64),
    /// Keys fetched from `jwksUri`; `None` while none has ever loaded.
    pub remote_keys: Option<Vec<Key>>,
    /// CAS token of the shared JWKS this VM last installed.
    pub remote_cas: u32,
    pub jti: NonceStore,
}

impl JwtState {
    pub fn new(cfg: &JwtConfig, seed: (u64, u64)) -> Self {
        JwtState {
            cache: HashMap::new(),
            order: VecDeque::new(),
            seed,
            remote_keys: None,
            remote_cas: 0,
            jti: NonceStore::with_prefix(&format!("cagate.jti.{}", cfg.plugin), cfg.jti_store),
        }
    }

    fn token_hash(&self, token: &[u8]) -> u64 {
        #[allow(deprecated)]
        let mut h = std::hash::SipHasher::new_with_keys(self.seed.0, self.seed.1);
        h.write(token);
        h.finish()
    }

    fn remember(&mut self, cfg: &JwtConfig, hash: u64, v: Verified) {
        if cfg.cache_size == 0 {
            return;
        }
        while self.order.len() >= cfg.cache_size {
            match self.order.pop_front() {
                Some(old) => {
                    self.cache.remove(&old);
                }
                None => break,
            }
        }
        if self.cache.insert(hash, v).is_none() {
            self.order.push_back(hash);
        }
    }

    /// Forgets every verified token (the key set changed).
    pub fn clear_cache(&mut self) {
        self.cache.clear();
        self.order.clear();
    }
}

/// What the plugin decided for an admitted request.
#[derive(Debug, Clone)]
pub enum JwtOutcome {
    /// No token and `bypassEmptyToken`: passed on unchecked.
    Bypassed,
    /// Verified; with `preventJtiReplay`, the `jti` admitted here (for a claim across Envoys).
    Verified(Claims, Option<OneTime>),
}

fn refuse(e: &'static ErrorCode, args: &[&str], cause: &'static str) -> Refusal {
    Refusal::new(e, args, cause)
}

fn invalid(reason: &str, cause: &'static str) -> Refusal {
    refuse(&errors::A403JT, &[reason], cause)
}

/// The token, as the plugin's `parameter` and `parameterLocation` say; `query` is the request's.
/// `Err` when it is given more than once with different values (two headers in any spelling, a
/// repeated query parameter): only one copy is verified, and a backend that reads the token's claims
/// itself may read another (PHP takes a query's last value). A cookie is the first of its name:
/// browsers send several of one name when they were set for different paths (the most specific
/// first), so a repeated cookie is no sign of forgery.
pub fn extract<'a>(cfg: &JwtConfig, h: &Headers<'a>, query: &'a [u8]) -> Result<Option<std::borrow::Cow<'a, [u8]>>, TokenRepeated> {
    use std::borrow::Cow;
    let mut found: Option<Cow<'a, [u8]>> = None;
    let mut repeated = false;
    let mut offer = |v: Cow<'a, [u8]>| match &found {
        _ if v.is_empty() => {}
        None => found = Some(v),
        Some(first) => repeated |= *first != v,
    };
    match cfg.location {
        TokenLocation::Header => {
            for v in h.spellings(cfg.parameter.as_bytes()) {
                let v = trim(v);
                let v = if starts_with_ignore_case(v, b"bearer ") { v.get(7..).map(trim).unwrap_or_default() } else { v };
                offer(Cow::Borrowed(v));
            }
        }
        TokenLocation::Query => {
            let mut ps: Vec<UrlParam<'a>> = Vec::new();
            parse_urlencoded(query, &mut ps);
            for v in ps.into_iter().filter(|p| *p.name == *cfg.parameter.as_bytes()).filter_map(|p| p.value) {
                offer(v);
            }
        }
        TokenLocation::Cookie => {
            let first = h.spellings(b"cookie").flat_map(|cookies| cookies.split(|&b| b == b';').map(trim)).find_map(|c| {
                let eq = c.iter().position(|&b| b == b'=')?;
                (c.get(..eq)? == cfg.parameter.as_bytes()).then(|| c.get(eq + 1..).map(trim).unwrap_or_default())
            });
            offer(Cow::Borrowed(first.unwrap_or_default()));
        }
    }
    if repeated {
        return Err(TokenRepeated);
    }
    Ok(found)
}

/// The token was given more than once, with different values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenRepeated;

fn decode_json(part: &[u8]) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

fn shown(token: &[u8]) -> String {
    let cut = &token[..token.len().min(64)];
    let mut s = crate::wire::text::header_safe(cut);
    if token.len() > 64 {
        s.push_str("...");
    }
    s
}

fn time_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, Refusal> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(x) if x.is_finite() && x.abs() < 1e12 => Ok(Some((x * 1000.0) as i64)),
            _ => Err(invalid(&format!("`{name}` is out of range"), "bad time claim")),
        },
        Some(_) => Err(invalid(&format!("`{name}` is not a number"), "bad time claim")),
    }
}

/// Checks the request's token. `now_ms` is read only when a token is present.
pub fn check(
    cfg: &JwtConfig,
    state: &mut JwtState,
    h: &Headers<'_>,
    query: &[u8],
    now: &mut dyn FnMut() -> i64,
    store: &dyn crate::host::SharedStore,
) -> Result<JwtOutcome, Refusal> {
    let Ok(token) = extract(cfg, h, query) else {
        return Err(refuse(&errors::I400JD, &["the token is given more than once, with different values"], "token repeated"));
    };
    let Some(token) = token else {
        if cfg.bypass_empty_token {
            return Ok(JwtOutcome::Bypassed);
        }
        return Err(refuse(&errors::I400JR, &[], "no token"));
    };
    if token.len() > MAX_TOKEN_BYTES {
        return Err(refuse(&errors::I400JD, &[&shown(&token)], "token too large"));
    }
    let hash = state.token_hash(&token);
    let verified = match state.cache.get(&hash) {
        Some(v) => v.clone(),
        None => {
            let v = verify(cfg, state, &token)?;
            state.remember(cfg, hash, v.clone());
            v
        }
    };
    let now_ms = now();
    if !cfg.ignore_expiration {
        if let Some(exp) = verified.exp {
            if now_ms > exp + cfg.skew_ms {
                let date = crate::wire::time::format_rfc3339(exp);
                return Err(refuse(&errors::A403JE, &[&date], "token expired"));
            }
        }
    }
    if let Some(nbf) = verified.nbf {
        if now_ms + cfg.skew_ms < nbf {
            return Err(invalid("token is not valid yet (nbf)", "token not yet valid"));
        }
    }
    if cfg.prevent_jti_replay {
        // RFC 7519 makes `jti` a string; some issuers write a number, which identifies the token as well.
        let jti: std::borrow::Cow<'_, str> = match verified.claims.get("jti") {
            Some(Value::String(j)) if !j.is_empty() => j.as_str().into(),
            Some(Value::Number(n)) => n.to_string().into(),
            _ => return Err(refuse(&errors::S403JI, &[], "jti missing")),
        };
        // Remembered while the token can still pass: until `exp` plus the skew; a token that never
        // expires here (no `exp`, or ignoreExpirationCheck) for jtiTtlSeconds at least.
        let ttl_floor = now_ms + cfg.jti_ttl_ms;
        let until = match verified.exp {
            Some(e) if !cfg.ignore_expiration => (e + cfg.skew_ms).max(now_ms + 1000),
            Some(e) => (e + cfg.skew_ms).max(ttl_floor),
            None => ttl_floor,
        };
        match state.jti.record_until(store, cfg.plugin.as_bytes(), cfg.plugin.as_bytes(), jti.as_bytes(), now_ms, until) {
            Outcome::Fresh => {
                let claimed = OneTime::new(OneTimeKind::Jti, cfg.plugin.as_bytes(), jti.as_bytes(), until);
                return Ok(JwtOutcome::Verified(verified.claims, Some(claimed)));
            }
            Outcome::Replayed => return Err(refuse(&errors::A403SV, &[], "jti replayed")),
            Outcome::Full | Outcome::AppShareFull => return Err(refuse(&errors::X503BZ, &[], crate::auth::replay::JTIS_FULL)),
            Outcome::Contended => return Err(refuse(&errors::X503BZ, &[], "jti store contended")),
        }
    }
    Ok(JwtOutcome::Verified(verified.claims, None))
}

/// Decodes and verifies a token's signature, issuer and audience (not its times: those are checked
/// on every use, cached or not).
fn verify(cfg: &JwtConfig, state: &JwtState, token: &[u8]) -> Result<Verified, Refusal> {
    let undecodable = || refuse(&errors::I400JD, &[&shown(token)], "token undecodable");
    let mut parts = token.split(|&b| b == b'.');
    let (Some(h64), Some(p64), Some(s64), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(undecodable());
    };
    let header = decode_json(h64).ok_or_else(undecodable)?;
    let claims = decode_json(p64).ok_or_else(undecodable)?;
    let sig = URL_SAFE_NO_PAD.decode(s64).map_err(|_| undecodable())?;
    let alg_name = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let Some(alg) = Alg::parse(alg_name) else {
        return Err(invalid(&format!("algorithm `{}` is not accepted", crate::wire::text::header_safe(alg_name.as_bytes())), "bad alg"));
    };
    if header.contains_key("crit") {
        return Err(invalid("`crit` header parameters are not supported", "crit"));
    }
    let kid = match header.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) => Some(k.as_str()),
        Some(_) => return Err(undecodable()),
    };
    let remote: &[Key] = state.remote_keys.as_deref().unwrap_or_default();
    let all = || cfg.keys.iter().chain(remote.iter());
    let candidates: Vec<&Key> = match kid {
        Some(k) => all().filter(|key| key.kid.as_deref() == Some(k)).collect(),
        // The keys without a `kid` first, then the others.
        None => all().filter(|key| key.kid.is_none()).chain(all().filter(|key| key.kid.is_some())).collect(),
    };
    if candidates.is_empty() {
        let shown_kid = crate::wire::text::header_safe(kid.unwrap_or("").as_bytes());
        return Err(refuse(&errors::A403JK, &[&shown_kid], "no key for kid"));
    }
    let fitting: Vec<&Key> = candidates.into_iter().filter(|k| k.allows(alg)).collect();
    if fitting.is_empty() {
        return Err(invalid(&format!("algorithm {alg:?} does not match the key"), "alg/key mismatch"));
    }
    let signing_input_len = h64.len() + 1 + p64.len();
    let signing_input = &token[..signing_input_len];
    if !fitting.iter().any(|k| k.verify(alg, signing_input, &sig)) {
        return Err(invalid("signature mismatch", "bad signature"));
    }
    if !cfg.issuers.is_empty() {
        let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
        if !cfg.issuers.iter().any(|i| i == iss) {
            return Err(invalid("issuer not allowed", "issuer"));
        }
    }
    if !cfg.audiences.is_empty() {
        let ok = match claims.get("aud") {
            Some(Value::String(a)) => cfg.audiences.contains(a),
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(|a| cfg.audiences.iter().any(|x| x == a)),
            _ => false,
        };
        if !ok {
            return Err(invalid("audience not allowed", "audience"));
        }
    }
    let exp = time_claim(&claims, "exp")?;
    let nbf = time_claim(&claims, "nbf")?;
    Ok(Verified { claims: Arc::new(claims), exp, nbf })
}
