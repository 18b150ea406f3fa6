//! The access record: one JSON object per request, admitted or refused, published once as Envoy filter
//! state (`wasm.cagate`) for the access log and later filters. Field names follow Aliyun's request
//! log where it has one (requestId, apiName, stage, appId, appKey, errorCode, errorMessage,
//! clientNonce, httpMethod, path, statusCode). The client's address is Envoy's own access-log field
//! (`%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%`): reading it here would cost every request a host call.
//! Never a secret: no signature, AppCode, token or app secret is ever put in it; a bound logMask
//! plugin masks the header values it holds (`clientNonce`, `envoyRequestId`, `appKey`).

use crate::config::model::Gateway;
use crate::plugins::binding::PluginKind;
use crate::plugins::log_mask::{LogMaskConfig, Policy};
use std::cell::RefCell;

/// How a request was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthKind {
    Signature,
    AppCode,
    Jwt,
    Anonymous,
}

impl AuthKind {
    fn as_str(self) -> &'static str {
        match self {
            AuthKind::Signature => "SIGNATURE",
            AuthKind::AppCode => "APPCODE",
            AuthKind::Jwt => "JWT",
            AuthKind::Anonymous => "ANONYMOUS",
        }
    }
}

/// At most this much of a client value goes into the record.
const MAX_VALUE: usize = 1024;

/// Where a client value is in `Record::raw`.
#[derive(Debug, Default, Clone, Copy)]
struct Span {
    start: usize,
    len: usize,
}

/// What the backend received as its path, for the record.
#[derive(Debug, Default, Clone, Copy)]
enum BackendPath {
    /// Not forwarded (refused, answered by the gateway).
    #[default]
    None,
    /// The client's path, unchanged.
    Same,
    At(Span),
}

/// What the gateway learnt of one request, filled as the request goes.
#[derive(Debug, Default)]
pub(crate) struct Record {
    pub(crate) started_us: i64,
    pub(crate) filter_us: i64,
    /// The client's values as sent (each cut at `MAX_VALUE` bytes), in one buffer: the record costs a
    /// request one allocation, and the JSON is written from these bytes when it is published.
    raw: Vec<u8>,
    method: Span,
    path: Span,
    envoy_request_id: Option<Span>,
    client_nonce: Option<Span>,
    /// The `X-Ca-Key` sent: during a key rotation, which of the app's keys the client signed with.
    client_key: Option<Span>,
    backend_path: BackendPath,
    pub(crate) api: Option<crate::ids::ApiId>,
    pub(crate) stage: Option<crate::ids::StageId>,
    pub(crate) app: Option<crate::ids::AppId>,
    pub(crate) auth: Option<AuthKind>,
    pub(crate) error: Option<(&'static str, String)>,
    pub(crate) status: u16,
    /// `false` in report-only mode: the error was recorded, the request went on.
    pub(crate) not_enforced: bool,
}

thread_local! {
    /// The JSON of the record being published, reused by every request of the VM (a Wasm VM is one
    /// thread; natively, one per worker thread).
    static JSON: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
}

/// The plugin a refusal code comes from, if a plugin refused. `I504RB` is left out: routing and
/// circuitBreaker's downgrade share it (its message names the route), and the group's and the
/// instance's limits (`T429GR`, `T429IN`) are no plugin's.
pub(super) fn plugin_of(code: &str) -> Option<&'static str> {
    Some(match code {
        "T429GR" | "T429IN" => return None,
        "A403IP" => "ipControl",
        "A401BA" => "basicAuth",
        "A403AC" => "accessControl",
        "A403CO" | "I404CO" => "cors",
        "D503CB" => "circuitBreaker",
        "I404CH" => "caching",
        "A403RA" | "X503RA" => "remoteAuth",
        "I400JR" | "S403JI" | "A403SV" | "I400JD" | "A403JT" | "A403JK" | "A403JE" | "I400JP" => "jwtAuth",
        c if c.starts_with("T429") => "trafficControl",
        _ => return None,
    })
}

fn cut(v: &[u8]) -> &[u8] {
    v.get(..MAX_VALUE).unwrap_or(v)
}

/// Whether a byte needs escaping in a JSON string (`"`, `\`, a control character, DEL).
fn needs_escape(c: u8) -> bool {
    c == b'"' || c == b'\\' || c < 0x20 || c == 0x7f
}

/// Whether any of 8 bytes needs escaping: a word at a time, as most values need none.
fn word_needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    (zero_byte(w ^ (ONES * u64::from(b'"'))) | zero_byte(w ^ (ONES * u64::from(b'\\'))) | zero_byte(w ^ (ONES * 0x7f)) | below_space) != 0
}

/// The index of the first byte at or after `from` that needs escaping.
fn next_escape(b: &[u8], mut from: usize) -> Option<usize> {
    while let Some(word) = b.get(from..from + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
        if word_needs_escape(u64::from_le_bytes(word)) {
            break;
        }
        from += 8;
    }
    b.get(from..)?.iter().position(|&c| needs_escape(c)).map(|i| from + i)
}

/// Text escaped for a JSON string: runs that need no escape are copied whole.
fn push_escaped(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(i) = next_escape(b, from) {
        out.extend_from_slice(b.get(from..i).unwrap_or_default());
        match b.get(i).copied().unwrap_or_default() {
            b'"' => out.extend_from_slice(br#"\""#),
            b'\\' => out.extend_from_slice(br"\\"),
            c => out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(c >> 4)], HEX[usize::from(c & 15)]]),
        }
        from = i + 1;
    }
    out.extend_from_slice(b.get(from..).unwrap_or_default());
}

/// Client bytes as JSON string content: invalid UTF-8 as U+FFFD (as `String::from_utf8_lossy`),
/// masked character by character when a logMask rule says so.
fn push_bytes(out: &mut Vec<u8>, v: &[u8], mask: Option<Policy>) {
    let Some(policy) = mask else {
        // Nearly every value is valid UTF-8, which one validation pass settles.
        if let Ok(s) = std::str::from_utf8(v) {
            push_escaped(out, s);
            return;
        }
        for chunk in v.utf8_chunks() {
            push_escaped(out, chunk.valid());
            if !chunk.invalid().is_empty() {
                out.extend_from_slice("\u{fffd}".as_bytes());
            }
        }
        return;
    };
    let chars = || v.utf8_chunks().flat_map(|c| c.valid().chars().chain((!c.invalid().is_empty()).then_some('\u{fffd}')));
    let len = chars().count();
    let mut buf = [0u8; 4];
    for (i, ch) in chars().enumerate() {
        if policy.masks(i, len) {
            out.push(b'*');
        } else {
            push_escaped(out, ch.encode_utf8(&mut buf));
        }
    }
}

/// A string field: `open` is `,"key":"` (one copy), the value escaped.
fn push_str(out: &mut Vec<u8>, open: &[u8], value: &str) {
    out.extend_from_slice(open);
    push_escaped(out, value);
    out.push(b'"');
}

/// A field of client bytes, masked by `mask`.
fn push_client(out: &mut Vec<u8>, open: &[u8], value: &[u8], mask: Option<Policy>) {
    out.extend_from_slice(open);
    push_bytes(out, value, mask);
    out.push(b'"');
}

/// A number field: `open` is `,"key":`.
fn push_u64(out: &mut Vec<u8>, open: &[u8], mut n: u64) {
    out.extend_from_slice(open);
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(at..).unwrap_or_default());
}

impl Record {
    /// The client's values, copied once from the request's header map.
    pub(crate) fn client(&mut self, method: &[u8], path: &[u8], request_id: Option<&[u8]>, nonce: Option<&[u8]>, key: Option<&[u8]>) {
        let (method, path, request_id, nonce, key) = (cut(method), cut(path), request_id.map(cut), nonce.map(cut), key.map(cut));
        let optional = [request_id, nonce, key].iter().map(|v| v.map_or(0, <[u8]>::len)).sum::<usize>();
        self.raw = Vec::with_capacity(method.len() + path.len() + optional);
        self.method = self.keep(method);
        self.path = self.keep(path);
        self.envoy_request_id = request_id.map(|v| self.keep(v));
        self.client_nonce = nonce.map(|v| self.keep(v));
        self.client_key = key.map(|v| self.keep(v));
    }

    fn keep(&mut self, v: &[u8]) -> Span {
        let start = self.raw.len();
        self.raw.extend_from_slice(v);
        Span { start, len: v.len() }
    }

    fn get(&self, s: Span) -> &[u8] {
        self.raw.get(s.start..s.start + s.len).unwrap_or_default()
    }

    /// The path the backend receives without its query: `None` when the gateway leaves the client's.
    pub(crate) fn forwarded(&mut self, path: Option<&[u8]>) {
        self.backend_path = match path {
            None => BackendPath::Same,
            Some(p) => BackendPath::At(self.keep(cut(p))),
        };
    }

    /// The logMask plugin bound to the request's API in its stage, if any.
    fn mask<'g>(&self, gw: &'g Gateway) -> Option<&'g LogMaskConfig> {
        let id = gw.bound(self.api?, self.stage?).log_mask?;
        match &gw.plugins.get(id.index())?.kind {
            PluginKind::LogMask(m) => Some(m),
            _ => None,
        }
    }

    /// Publishes the record as one JSON object (`request_id` is the gateway's X-Ca-Request-Id),
    /// written into the VM's buffer.
    pub(crate) fn publish(&self, gw: &Gateway, request_id: &str, publish: impl FnOnce(&[u8])) {
        JSON.with(|buf| match buf.try_borrow_mut() {
            Ok(mut out) => {
                self.write_json(gw, request_id, &mut out);
                publish(&out);
            }
            Err(_) => {
                let mut out = Vec::new();
                self.write_json(gw, request_id, &mut out);
                publish(&out);
            }
        });
    }

    fn write_json(&self, gw: &Gateway, request_id: &str, out: &mut Vec<u8>) {
        let mask = self.mask(gw);
        let header_mask = |name: &str| mask.and_then(|m| m.header(name));
        out.clear();
        push_str(out, br#"{"requestId":""#, request_id);
        if let Some(id) = self.envoy_request_id {
            push_client(out, br#","envoyRequestId":""#, self.get(id), header_mask("x-request-id"));
        }
        if let Some(api) = self.api.and_then(|a| gw.api(a)) {
            push_str(out, br#","apiName":""#, &api.name);
        }
        if let Some(stage) = self.stage.and_then(|s| gw.stages.get(s.index())) {
            push_str(out, br#","stage":""#, stage);
        }
        if let Some(app) = self.app.and_then(|a| gw.app(a)) {
            push_str(out, br#","appId":""#, &app.id);
            // A signed request names the key it used; an app found otherwise (AppCode) by its own key.
            let key = match (self.auth, self.client_key) {
                (Some(AuthKind::Signature), Some(k)) => self.get(k),
                _ => app.key.as_bytes(),
            };
            push_client(out, br#","appKey":""#, key, header_mask("x-ca-key"));
        }
        if let Some(auth) = self.auth {
            push_str(out, br#","authType":""#, auth.as_str());
        }
        if let Some((code, message)) = &self.error {
            push_str(out, br#","errorCode":""#, code);
            push_str(out, br#","errorMessage":""#, message.get(..MAX_VALUE).unwrap_or(message));
            if let Some(p) = plugin_of(code) {
                push_str(out, br#","plugin":""#, p);
            }
        }
        if let Some(n) = self.client_nonce {
            push_client(out, br#","clientNonce":""#, self.get(n), header_mask("x-ca-nonce"));
        }
        push_client(out, br#","httpMethod":""#, self.get(self.method), None);
        push_client(out, br#","path":""#, self.get(self.path), None);
        let backend = match self.backend_path {
            BackendPath::None => None,
            BackendPath::Same => Some(self.path),
            BackendPath::At(s) => Some(s),
        };
        if let Some(s) = backend {
            push_client(out, br#","backendPath":""#, self.get(s), None);
        }
        push_u64(out, br#","statusCode":"#, u64::from(self.status));
        // None when the stream ended before the gateway decided.
        if self.filter_us >= 0 {
            push_u64(out, br#","gatewayMicros":"#, self.filter_us as u64);
        }
        out.extend_from_slice(if self.not_enforced { br#","enforced":false}"# } else { br#","enforced":true}"# });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(r: &Record, gw: &Gateway) -> serde_json::Value {
        let mut out = Vec::new();
        r.publish(gw, "RID", |b| out = b.to_vec());
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn the_record_is_json_with_escaped_client_values() {
        let gw = crate::config::compile::compile(br#"{"apis":[{"name":"p","method":"ANY","path":"/p/*","authType":"ANONYMOUS"}]}"#).unwrap();
        let mut r = Record {
            api: Some(crate::ids::ApiId(0)),
            stage: Some(crate::ids::StageId(0)),
            error: Some(("A403AC", "Access Control Forbidden by r1".into())),
            status: 403,
            filter_us: 12,
            ..Record::default()
        };
        r.client(b"GET", b"/p/\"x\"\\\n\xff\x7f", Some(b"e-1"), None, None);
        let v = json(&r, &gw);
        assert_eq!(v["requestId"], "RID");
        assert_eq!(v["envoyRequestId"], "e-1");
        assert_eq!(v["apiName"], "p");
        assert_eq!(v["stage"], "RELEASE");
        assert_eq!(v["httpMethod"], "GET");
        assert_eq!(v["path"], "/p/\"x\"\\\n\u{fffd}\u{7f}");
        assert_eq!(v["plugin"], "accessControl");
        assert_eq!(v["statusCode"], 403);
        assert_eq!(v["gatewayMicros"], 12);
        assert_eq!(v["enforced"], true);
        assert!(v.get("backendPath").is_none() && v.get("clientNonce").is_none());
    }

    #[test]
    fn every_character_is_escaped_wherever_it_is_in_a_word() {
        for c in (0u32..0x100).filter_map(char::from_u32) {
            for at in 0..19 {
                let mut text: String = "abcdefghijklmnopqrs".into();
                text.insert(at, c);
                let mut out = vec![b'"'];
                push_escaped(&mut out, &text);
                out.push(b'"');
                let back: String = serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{c:?} at {at}: {e}"));
                assert_eq!(back, text);
                let raw_control = out.iter().any(|&b| b < 0x20 || b == 0x7f);
                assert!(!raw_control, "{c:?} at {at} left unescaped");
            }
        }
    }

    #[test]
    fn client_values_are_cut_and_the_backend_path_is_its_own() {
        let gw = crate::config::compile::compile(br#"{"apis":[{"name":"p","method":"ANY","path":"/p/*","authType":"ANONYMOUS"}]}"#).unwrap();
        let mut r = Record { not_enforced: true, ..Record::default() };
        let long = vec![b'n'; 3000];
        r.client(b"POST", b"/p/a", None, Some(&long), None);
        r.forwarded(None);
        let v = json(&r, &gw);
        assert_eq!(v["clientNonce"].as_str().unwrap().len(), MAX_VALUE);
        assert_eq!(v["backendPath"], "/p/a");
        assert_eq!(v["enforced"], false);
        r.forwarded(Some(b"/backend/a"));
        assert_eq!(json(&r, &gw)["backendPath"], "/backend/a");
        assert_eq!(json(&r, &gw)["path"], "/p/a");
    }

    #[test]
    fn a_bound_log_mask_masks_the_header_values_the_record_holds() {
        let gw = crate::config::compile::compile(
            br#"{"apps":[{"appId":1,"appKey":"key-123456","appSecret":"s-0123456789abcdef0123456789"}],
                "plugins":[{"name":"m","type":"logMask","data":{"maskRules":[
                  {"name":"n","policy":"KEEP_LEFT:2","location":"HEADER","parameters":["X-Ca-Nonce"]},
                  {"name":"k","policy":"KEEP_RIGHT:3","location":"HEADER","parameters":"x-ca-key,x-request-id"}]}}],
                "apis":[{"name":"p","method":"ANY","path":"/p/*","authorizations":[{"appId":1}],"plugins":[{"plugin":"m"}]},
                        {"name":"q","method":"ANY","path":"/q/*","authorizations":[{"appId":1}]}]}"#,
        )
        .unwrap();
        let mut r =
            Record { api: Some(crate::ids::ApiId(0)), stage: Some(crate::ids::StageId(0)), app: Some(crate::ids::AppId(0)), ..Record::default() };
        r.client(b"GET", b"/p/a", Some(b"rid-\"98765"), Some("nönce-\u{7f}1".as_bytes()), None);
        let v = json(&r, &gw);
        assert_eq!(v["clientNonce"], "nö******");
        assert_eq!(v["envoyRequestId"], "*******765");
        assert_eq!(v["appKey"], "*******456");
        assert_eq!(v["appId"], "1");
        assert_eq!(v["path"], "/p/a");
        r.api = Some(crate::ids::ApiId(1));
        let v = json(&r, &gw);
        assert_eq!((v["clientNonce"].as_str(), v["appKey"].as_str()), (Some("nönce-\u{7f}1"), Some("key-123456")));
    }
}
