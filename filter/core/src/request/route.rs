//! Routing: the API of a request (stage, method, path), CORS preflights and origins, and the checks
//! that come before any credential (URL length, loops, dot segments, body size).

use crate::config::model::{AuthType, Gateway};
use crate::contract::errors;
use crate::contract::names::HOPS_HEADER;
use crate::contract::refusal::Refusal;
use crate::host::Stream;
use crate::request::model::{Request, Routed};
use crate::wire::text::header_safe;
use crate::wire::url::{is_form, trim};

/// Selects the API (stage, method, path), answers CORS preflights and refuses disallowed origins.
/// Needs only the headers.
pub(crate) fn route(gw: &Gateway, req: &Request<'_>) -> Result<Routed, Refusal> {
    let h = req.headers;
    if req.path.len() as u64 > gw.max_url_bytes {
        return Err(Refusal::new(&errors::I413UL, &[], "url over maxUrlBytes"));
    }
    if let Some(max) = gw.max_hops {
        if h.number(HOPS_HEADER).unwrap_or(0) >= max {
            return Err(Refusal::new(&errors::I508LD, &[], "loop detected"));
        }
    }
    if !ALIYUN_METHODS.contains(&req.method) {
        return Err(Refusal::new(&errors::I405UM, &[&header_safe(shorten(req.method))], "method not served"));
    }
    if !gw.domains.is_empty() {
        let host = host_of(h.get(b":authority").or_else(|| h.get(b"host")).unwrap_or_default());
        if !gw.domains.iter().any(|d| domain_matches(d, &host)) {
            return Err(Refusal::new(&errors::I404DO, &[&header_safe(shorten(&host))], "unknown domain"));
        }
    }
    let stage = match h.get(b"x-ca-stage") {
        None => gw.release_stage,
        Some(s) => gw.stage_index(trim(s)).ok_or_else(|| Refusal::new(&errors::I400SG, &[], "unknown stage"))?,
    };
    let (raw_path, query) = (req.raw_path, req.query);
    if !decodable(raw_path) {
        return Err(Refusal::new(&errors::I400PA, &[&header_safe(shorten(raw_path))], "path cannot be decoded"));
    }
    // The query may hold an AppCode or a token: the reason names the path only.
    if !decodable(query) {
        let reason = format!("{}?…: the query cannot be decoded", header_safe(shorten(raw_path)));
        return Err(Refusal::new(&errors::I400RU, &[&reason], "query cannot be decoded"));
    }
    if crate::wire::url::too_many_parameters(query) {
        let reason = format!("{}?…: more than {} query parameters", header_safe(shorten(raw_path)), crate::wire::url::MAX_PARAMETERS);
        return Err(Refusal::new(&errors::I400RU, &[&reason], "too many query parameters"));
    }
    let path: &[u8] = &req.decoded_path;
    // A backend that resolves `..` would act on another API's path than the one routed here.
    if has_dot_segment(path) {
        return Err(Refusal::new(&errors::I400PA, &[&header_safe(shorten(raw_path))], "dot segment in path"));
    }
    let origin = h.get(b"origin");
    let cors_of = |api: crate::ids::ApiId| -> Option<(crate::ids::PluginId, &crate::plugins::cors::CorsConfig)> {
        let idx = gw.bound(api, stage).cors?;
        match &gw.plugins.get(idx.index())?.kind {
            crate::plugins::binding::PluginKind::Cors(c) => Some((idx, c.as_ref())),
            _ => None,
        }
    };
    let disallowed = |origin: &[u8]| Refusal::new(&errors::A403CO, &[&header_safe(origin)], "cors origin not allowed");
    if let (b"OPTIONS", Some(origin), Some(wanted)) = (req.method, origin, h.get(b"access-control-request-method")) {
        let wanted = trim(wanted);
        match gw.route(wanted, path, stage) {
            Some(api) => {
                if let Some((idx, cors)) = cors_of(api) {
                    if !cors.allows(origin) {
                        return Err(disallowed(origin));
                    }
                    return Ok(Routed { api, stage, needs_body: false, cors: Some(idx), preflight: true });
                }
            }
            None if gw.has_cors => {
                let (m, p) = (String::from_utf8_lossy(wanted), String::from_utf8_lossy(path));
                return Err(Refusal::new(&errors::I404CO, &[&header_safe(m.as_bytes()), &header_safe(p.as_bytes())], "preflight for no api"));
            }
            None => {}
        }
    }
    let Some(api_idx) = gw.route(req.method, path, stage) else {
        let stage_name = gw.stage_name(stage);
        let reason = format!("`{} {}` in stage {stage_name}", String::from_utf8_lossy(req.method), String::from_utf8_lossy(path));
        return Err(Refusal::new(&errors::I404NF, &[&header_safe(reason.as_bytes())], "no api"));
    };
    // The backend must act on the API checked here: a path it may read as another API's (Express and
    // ASP.NET ignore case, Tomcat drops `;` parameters, Spring a trailing `/`, every framework answers
    // HEAD with GET's handler) would reach that API's handler under this API's policy.
    if gw.shadowed(req.method, path, stage, api_idx).is_some() {
        let reason = format!("{}: a backend may read it as another API's path", String::from_utf8_lossy(shorten(path)));
        return Err(Refusal::new(&errors::I400PA, &[&header_safe(reason.as_bytes())], "path shadows another api"));
    }
    let mut cors = None;
    if let (Some(origin), Some((idx, cfg))) = (origin, cors_of(api_idx)) {
        if !cfg.allows(origin) {
            return Err(disallowed(origin));
        }
        cors = Some(idx);
    }
    if let Some(api) = gw.api(api_idx) {
        let scheme = h.get(b"x-forwarded-proto").or_else(|| h.get(b":scheme")).map(|s| trim(s.split(|&b| b == b',').next().unwrap_or_default()));
        let https = scheme.is_some_and(|s| s.eq_ignore_ascii_case(b"https"));
        if !api.protocols.allows(https) {
            return Err(Refusal::new(&errors::I403PT, &[if https { "HTTPS" } else { "HTTP" }], "protocol not allowed"));
        }
    }
    let needs_body = needs_body(gw, h, api_idx, stage)?;
    if needs_body && h.number(b"content-length").is_some_and(|n| n > gw.max_body_bytes) {
        return Err(Refusal::new(&errors::I413RL, &[], "content-length over maxBodyBytes"));
    }
    Ok(Routed { api: api_idx, stage, needs_body, cors, preflight: false })
}

/// Whether the decision needs the body: a `Content-MD5` to check, or a urlencoded form the gateway
/// reads (signed, `FORM` parameters, `Form:` variables, query names the gateway sets).
fn needs_body(gw: &Gateway, h: &crate::wire::headers::Headers<'_>, api: crate::ids::ApiId, stage: crate::ids::StageId) -> Result<bool, Refusal> {
    let reads_form = is_form(h.get(b"content-type"))
        && gw.api(api).is_some_and(|api| {
            (api.auth == AuthType::App && h.contains(b"x-ca-key")) || api.reads_form || crate::request::forward::sets_query(gw, api, stage)
        });
    // The gateway checks a form as it reads it: a compressed one (which a backend may inflate and
    // read) would pass every check unseen. Alibaba's SDKs never compress a request body.
    if reads_form {
        if let Some(coding) = h.spellings(b"content-encoding").map(trim).find(|v| !v.is_empty() && !v.eq_ignore_ascii_case(b"identity")) {
            let reason = format!("a form with Content-Encoding `{}` cannot be checked", header_safe(shorten(coding)));
            return Err(Refusal::new(&errors::I400BD, &[&reason], "encoded form"));
        }
    }
    Ok(reads_form || h.spellings(b"content-md5").any(|v| !trim(v).is_empty()))
}

/// The methods Aliyun's gateway serves; anything else (TRACE, CONNECT, WebDAV's) is `I405UM`.
const ALIYUN_METHODS: [&[u8]; 7] = [b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"HEAD", b"OPTIONS"];

/// Every `%` starts a valid escape, and none decodes to NUL (which some backends end a path at).
fn decodable(s: &[u8]) -> bool {
    let hex = |b: Option<&u8>| b.is_some_and(u8::is_ascii_hexdigit);
    s.iter().enumerate().all(|(i, &b)| b != b'%' || (hex(s.get(i + 1)) && hex(s.get(i + 2)) && s.get(i + 1..i + 3) != Some(b"00")))
}

/// The host of an `:authority`, without its port, in lower case.
fn host_of(authority: &[u8]) -> Vec<u8> {
    let a = trim(authority);
    let host = if a.first() == Some(&b'[') {
        a.iter().position(|&b| b == b']').and_then(|e| a.get(..=e)).unwrap_or(a)
    } else {
        a.iter().position(|&b| b == b':').and_then(|e| a.get(..e)).unwrap_or(a)
    };
    host.to_ascii_lowercase()
}

/// `domains` entries: an exact host, or `*.example.org` for any subdomain of it (a host name: a
/// `Host` of `evil.com,x.example.org` ends like one but names another).
fn domain_matches(pattern: &str, host: &[u8]) -> bool {
    match pattern.strip_prefix("*.") {
        Some(parent) => {
            host.len() > parent.len() + 1
                && host.ends_with(parent.as_bytes())
                && host.get(host.len() - parent.len() - 1) == Some(&b'.')
                && host.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        }
        None => host == pattern.as_bytes(),
    }
}

/// True if a segment of the decoded path is `.` or `..`; `\\` counts as a separator, as some
/// servers read it so, and a segment is read up to its first `;` (Tomcat and Spring drop path
/// parameters, so `..;x` is `..` to them).
pub(crate) fn has_dot_segment(path: &[u8]) -> bool {
    path.split(|&b| b == b'/' || b == b'\\').any(|seg| {
        let seg = seg.split(|&b| b == b';').next().unwrap_or(seg);
        seg == b"." || seg == b".."
    })
}

/// At most 256 bytes of a client value, for a message.
fn shorten(v: &[u8]) -> &[u8] {
    v.get(..256).unwrap_or(v)
}

/// CORS headers for a routed request: the preflight answer's, or those of an actual response.
pub(crate) fn cors_headers(gw: &Gateway, routed: &Routed, req: &Request<'_>) -> Vec<(&'static str, String)> {
    let (Some(idx), Some(origin)) = (routed.cors, req.headers.get(b"origin")) else { return Vec::new() };
    match gw.plugins.get(idx.index()).map(|p| &p.kind) {
        Some(crate::plugins::binding::PluginKind::Cors(c)) if routed.preflight => {
            c.preflight_headers(origin, req.headers.get(b"access-control-request-headers"))
        }
        Some(crate::plugins::binding::PluginKind::Cors(c)) => c.response_headers(origin),
        _ => Vec::new(),
    }
}

/// `I400BD` for a urlencoded body the gateway read that holds more parameters than it parses.
pub(crate) fn bounded_form(headers: &crate::wire::headers::Headers<'_>, body: Option<&[u8]>) -> Result<(), Refusal> {
    match body {
        Some(b) if is_form(headers.get(b"content-type")) && crate::wire::url::too_many_parameters(b) => {
            let reason = format!("more than {} form parameters", crate::wire::url::MAX_PARAMETERS);
            Err(Refusal::new(&errors::I400BD, &[&reason], "too many form parameters"))
        }
        _ => Ok(()),
    }
}

/// `A403IN`: an API closed to the internet (`disableInternet`) called from a public address. The
/// address is the one Envoy decided is the client's (the connection's peer, or the one its
/// `use_remote_address` and `xff_num_trusted_hops` take from `X-Forwarded-For`): never a header a
/// client controls. One host call, only for such APIs; no address known means no access.
pub(crate) fn reachable(gw: &Gateway, routed: &Routed, stream: &dyn Stream) -> Result<(), Refusal> {
    let Some(api) = gw.api(routed.api).filter(|a| a.disable_internet) else { return Ok(()) };
    let peer = stream.peer_address();
    match crate::plugins::ip_control::client_ip(crate::plugins::ip_control::Source::Peer, peer.as_deref(), None) {
        Some(ip) if is_internal(ip) => Ok(()),
        _ => Err(Refusal::new(&errors::A403IN, &[&format!("for api `{}`", header_safe(api.name.as_bytes()))], "internet access disabled")),
    }
}

/// Loopback, private (RFC 1918, IPv6 unique-local), link-local and shared (RFC 6598, where cloud
/// providers put their internal services) addresses.
fn is_internal(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback() || v4.is_private() || v4.is_link_local() || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_internal(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                v6.is_loopback() || first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80
            }
        },
    }
}
