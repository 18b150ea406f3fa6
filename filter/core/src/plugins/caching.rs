//! Aliyun's caching plugin: a backend's 200 answer to a GET is kept for a while and given again, by
//! the gateway itself, to later requests with the same key (the API, the stage, the path, and the
//! request values the plugin varies by). Parsed here; the key, the client's and the backend's
//! `Cache-Control`, and the bounded per-VM store are pure functions and types here too. The engine
//! (`engine/caching.rs`) consults the store after every request check admitted a request, so a
//! cached answer never reaches a request the gateway would refuse.
//!
//! The store is per VM (one per Envoy worker) and bounded: never Envoy's shared data, whose keys are
//! never freed.

use crate::plugins::definition::{AliyunPlugin, Definition};
use crate::schema::validator::{join, kind, Validator};
use crate::wire::headers::Headers;
use crate::wire::url::{parse_urlencoded, trim};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

/// Aliyun's longest lifetime of a cached answer (48 hours).
pub(crate) const MAX_DURATION_S: u64 = 172_800;
/// The lifetime when `duration` is absent (Aliyun's template shows 3600; its default is not published).
pub(crate) const DEFAULT_DURATION_S: u64 = 3_600;
/// The largest body kept: a larger answer passes through and is not stored.
pub(crate) const MAX_ENTRY_BODY: usize = 1024 * 1024;
/// What one VM's store holds at most, keys, headers and bodies counted.
pub(crate) const MAX_STORE_BYTES: usize = 64 * 1024 * 1024;
/// The most entries one VM's store holds.
pub(crate) const MAX_STORE_ENTRIES: usize = 65_536;
/// Bookkeeping counted per entry on top of its bytes (map slots, the recency index).
const ENTRY_OVERHEAD: usize = 128;
/// Most names in each of `varyByParameters`, `varyByHeaders` and `cacheableHeaders`.
const MAX_NAMES: usize = 32;
/// The response headers Aliyun keeps by default.
const DEFAULT_CACHEABLE: [&str; 3] = ["content-type", "content-encoding", "content-language"];
/// Response headers that are never kept, even when listed: the gateway's own (`X-Ca-*`: a cached
/// answer gets a fresh request id) and those that describe one connection or one message's framing.
// `set-cookie` is one client's: a cached copy would hand it to every caller of the key.
const NEVER_CACHED: [&str; 8] = ["content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer", "set-cookie"];

/// Whose `Cache-Control` request header is honoured (`clientCacheControl.mode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientControl {
    /// Nobody's (Aliyun's default).
    Off,
    /// Every caller's.
    All,
    /// Only the listed apps' (AppIds).
    Apps(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct CachingConfig {
    pub vary_by_app: bool,
    /// Query parameter names, as sent.
    pub vary_by_parameters: Vec<String>,
    /// Request header names, lower case.
    pub vary_by_headers: Vec<String>,
    pub client_control: ClientControl,
    /// Response header names kept with the body, lower case (Aliyun's defaults included).
    pub cacheable_headers: Vec<String>,
    pub duration_s: u64,
}

/// A list of names (header names lower-cased), each checked; duplicates kept once.
fn names(
    c: &mut Validator,
    o: &serde_json::Map<String, Value>,
    path: &str,
    key: &str,
    header: bool,
    refused: impl Fn(&str) -> Option<String>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let list = c.strings(o, path, key).unwrap_or_default();
    if list.len() > MAX_NAMES {
        c.err(&join(path, key), format!("has {} names; at most {MAX_NAMES}", list.len()));
    }
    for (i, name) in list.iter().enumerate() {
        if header && !c.header_name(&format!("{}[{i}]", join(path, key)), name) {
            continue;
        }
        let name = if header { name.to_ascii_lowercase() } else { name.to_string() };
        if let Some(why) = refused(&name) {
            c.err(&format!("{}[{i}]", join(path, key)), why);
            continue;
        }
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

fn client_control(c: &mut Validator, v: Option<&Value>, path: &str) -> ClientControl {
    let Some(v) = v.filter(|v| !v.is_null()) else { return ClientControl::Off };
    let Some(o) = c.object(v, path, &["mode", "apps"]) else { return ClientControl::Off };
    // Aliyun's text says `app`, its template's comment `apps`: both are read as the list mode.
    let options = [("off", 0u8), ("all", 1), ("app", 2), ("apps", 2)];
    let mode = c.choice(o, path, "mode", "mode", true, &options);
    let mut apps = Vec::new();
    for (i, a) in c.array(o, path, "apps").iter().enumerate() {
        match a {
            Value::String(s) if !s.is_empty() => apps.push(s.clone()),
            Value::Number(n) if n.is_u64() => apps.push(n.to_string()),
            other => c.err(&format!("{path}.apps[{i}]"), format!("must be an AppId (a string or a whole number), not {}", kind(other))),
        }
    }
    match mode {
        Some(2) => {
            if apps.is_empty() {
                c.err(&join(path, "apps"), "needs at least one AppId with mode app");
            }
            ClientControl::Apps(apps)
        }
        Some(m) => {
            if !apps.is_empty() {
                c.warn(&join(path, "apps"), "is read only with mode app; ignored");
            }
            if m == 1 {
                ClientControl::All
            } else {
                ClientControl::Off
            }
        }
        None => ClientControl::Off,
    }
}

impl AliyunPlugin for CachingConfig {
    const TYPE: &'static str = "caching";

    fn parse(c: &mut Validator, data: &Value, def: &Definition<'_>) -> Option<Self> {
        let path = def.path;
        let fields = ["varyByApp", "varyByParameters", "varyByHeaders", "clientCacheControl", "cacheableHeaders", "duration"];
        let o = c.object(data, path, &fields)?;
        let vary_by_app = c.boolean(o, path, "varyByApp", false);
        let vary_by_parameters = names(c, o, path, "varyByParameters", false, |_| None);
        let vary_by_headers = names(c, o, path, "varyByHeaders", true, |_| None);
        let client_control = client_control(c, o.get("clientCacheControl"), &join(path, "clientCacheControl"));
        let never =
            |name: &str| (name.starts_with("x-ca-") || NEVER_CACHED.contains(&name)).then(|| format!("{name} is never kept in a cached answer"));
        let listed = names(c, o, path, "cacheableHeaders", true, never);
        let mut cacheable_headers: Vec<String> = DEFAULT_CACHEABLE.iter().map(|s| s.to_string()).collect();
        cacheable_headers.extend(listed.into_iter().filter(|n| !DEFAULT_CACHEABLE.contains(&n.as_str())));
        let duration_s = c.integer(o, path, "duration", DEFAULT_DURATION_S, 1, MAX_DURATION_S);
        Some(CachingConfig { vary_by_app, vary_by_parameters, vary_by_headers, client_control, cacheable_headers, duration_s })
    }
}

impl CachingConfig {
    /// Whether this caller's `Cache-Control` request header is honoured.
    pub(crate) fn honours_client(&self, app_id: Option<&str>) -> bool {
        match &self.client_control {
            ClientControl::Off => false,
            ClientControl::All => true,
            ClientControl::Apps(list) => app_id.is_some_and(|id| list.iter().any(|a| a == id)),
        }
    }
}

/// What goes into a key besides the plugin's vary parts.
pub(crate) struct KeyParts<'a> {
    pub api: u32,
    pub stage: u32,
    /// The request's path as sent, without the query: two resources of one API (path parameters)
    /// never share an entry.
    pub path: &'a [u8],
    pub query: &'a [u8],
    /// The authenticated caller's AppId (never a value the client wrote itself).
    pub app_id: Option<&'a str>,
    pub headers: &'a Headers<'a>,
}

fn field(key: &mut Vec<u8>, bytes: &[u8]) {
    key.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    key.extend_from_slice(bytes);
}

/// The cache key: every part length-prefixed, so no choice of values makes two different requests'
/// keys equal; absent and empty values differ (a count precedes the values of each name).
pub(crate) fn key(cfg: &CachingConfig, p: &KeyParts<'_>) -> Vec<u8> {
    let mut key = Vec::with_capacity(64 + p.path.len());
    key.extend_from_slice(&p.api.to_le_bytes());
    key.extend_from_slice(&p.stage.to_le_bytes());
    field(&mut key, p.path);
    if cfg.vary_by_app {
        match p.app_id {
            Some(id) => {
                key.push(1);
                field(&mut key, id.as_bytes());
            }
            None => key.push(0),
        }
    }
    if !cfg.vary_by_parameters.is_empty() {
        let mut params = Vec::new();
        parse_urlencoded(p.query, &mut params);
        for name in &cfg.vary_by_parameters {
            let values: Vec<&[u8]> =
                params.iter().filter(|q| q.name.as_ref() == name.as_bytes()).map(|q| q.value.as_deref().unwrap_or(b"")).collect();
            key.extend_from_slice(&(values.len() as u32).to_le_bytes());
            for v in values {
                field(&mut key, v);
            }
        }
    }
    for name in &cfg.vary_by_headers {
        // Every spelling a backend reads as this header (`Accept_Language` for `accept-language`).
        let values: Vec<&[u8]> = p.headers.spellings(name.as_bytes()).collect();
        key.extend_from_slice(&(values.len() as u32).to_le_bytes());
        for v in values {
            field(&mut key, v);
        }
    }
    key
}

/// The directives of one or more `Cache-Control` values, lower-cased, with their arguments.
fn directives<'a>(values: impl Iterator<Item = &'a [u8]>) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for value in values {
        for d in value.split(|&b| b == b',') {
            let d = trim(d);
            if d.is_empty() {
                continue;
            }
            let (name, arg) = match d.iter().position(|&b| b == b'=') {
                Some(eq) => (trim(&d[..eq]), Some(trim(&d[eq + 1..]))),
                None => (d, None),
            };
            let name = String::from_utf8_lossy(name).to_ascii_lowercase();
            let arg = arg.map(|a| String::from_utf8_lossy(a).trim_matches('"').to_string());
            out.push((name, arg));
        }
    }
    out
}

/// What a client's `Cache-Control` asks of the gateway (when its header is honoured).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ClientAsks {
    /// `no-cache` or `max-age=0`: a fresh answer from the backend (which may then be stored).
    pub fresh: bool,
    /// `no-store`: a fresh answer, and it is not stored.
    pub no_store: bool,
    /// `only-if-cached`: the cached answer or `I404CH`, never the backend.
    pub only_if_cached: bool,
}

pub(crate) fn client_asks<'a>(values: impl Iterator<Item = &'a [u8]>) -> ClientAsks {
    let mut asks = ClientAsks::default();
    for (name, arg) in directives(values) {
        match name.as_str() {
            "no-cache" => asks.fresh = true,
            "max-age" if arg.as_deref().and_then(|a| a.parse::<u64>().ok()) == Some(0) => asks.fresh = true,
            "no-store" => {
                asks.fresh = true;
                asks.no_store = true;
            }
            "only-if-cached" => asks.only_if_cached = true,
            _ => {}
        }
    }
    asks
}

/// How long the backend's answer may be kept, given its `Cache-Control`: `None` when it says not to
/// (`no-store`, `private`, `no-cache`, a zero or unreadable age); else the plugin's duration, or the
/// backend's `s-maxage` (else `max-age`) when shorter.
pub(crate) fn lifetime_s<'a>(duration_s: u64, cache_control: impl Iterator<Item = &'a [u8]>) -> Option<u64> {
    let mut max_age: Option<u64> = None;
    let mut s_maxage: Option<u64> = None;
    for (name, arg) in directives(cache_control) {
        let age = || arg.as_deref().and_then(|a| a.parse::<u64>().ok());
        match name.as_str() {
            "no-store" | "private" | "no-cache" => return None,
            "max-age" => max_age = Some(age()?),
            "s-maxage" => s_maxage = Some(age()?),
            _ => {}
        }
    }
    let ttl = s_maxage.or(max_age).map_or(duration_s, |age| age.min(duration_s));
    (ttl > 0).then_some(ttl)
}

/// The response headers kept with a cached body (`cacheableHeaders` and Aliyun's defaults, in the
/// response's order); `None` when one of them is not text, as a local reply's headers must be.
pub(crate) fn kept_headers(cfg: &CachingConfig, response: &Headers<'_>) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (name, value) in response.iter() {
        let Ok(name) = std::str::from_utf8(name) else { continue };
        if cfg.cacheable_headers.iter().any(|n| n == name) {
            out.push((name.to_string(), std::str::from_utf8(value).ok()?.to_string()));
        }
    }
    Some(out)
}

/// A backend's answer as kept.
#[derive(Debug)]
pub(crate) struct Cached {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub expires_ms: i64,
}

impl Cached {
    fn size(&self, key: &[u8]) -> usize {
        // The key is held twice: in the map and in the recency index.
        let headers: usize = self.headers.iter().map(|(n, v)| n.len() + v.len() + 16).sum();
        2 * key.len() + headers + self.body.len() + ENTRY_OVERHEAD
    }
}

#[derive(Debug)]
struct Slot {
    cached: Rc<Cached>,
    used: u64,
    size: usize,
}

/// One VM's cached answers: least recently used first out, bounded in entries and bytes. An expired
/// entry is dropped when looked up, or when eviction reaches it.
#[derive(Debug)]
pub(crate) struct ResponseCache {
    entries: HashMap<Vec<u8>, Slot>,
    /// Use ticks to keys: the first is the least recently used.
    recency: BTreeMap<u64, Vec<u8>>,
    tick: u64,
    bytes: usize,
    max_bytes: usize,
    max_entries: usize,
}

impl Default for ResponseCache {
    fn default() -> Self {
        ResponseCache::with_limits(MAX_STORE_BYTES, MAX_STORE_ENTRIES)
    }
}

impl ResponseCache {
    pub(crate) fn with_limits(max_bytes: usize, max_entries: usize) -> Self {
        ResponseCache { entries: HashMap::new(), recency: BTreeMap::new(), tick: 0, bytes: 0, max_bytes, max_entries }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }

    /// Bytes held, as counted against the bound.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.bytes
    }

    /// The fresh answer under `key`, now the most recently used; an expired one is dropped.
    pub(crate) fn get(&mut self, key: &[u8], now_ms: i64) -> Option<Rc<Cached>> {
        let expired = self.entries.get(key)?.cached.expires_ms <= now_ms;
        if expired {
            self.remove(key);
            return None;
        }
        self.tick += 1;
        let tick = self.tick;
        let slot = self.entries.get_mut(key)?;
        let old = std::mem::replace(&mut slot.used, tick);
        let cached = slot.cached.clone();
        if let Some(k) = self.recency.remove(&old) {
            self.recency.insert(tick, k);
        }
        Some(cached)
    }

    /// Stores an answer (replacing one under the same key), evicting the least recently used until
    /// it fits; `false` when it can never fit (its body over `MAX_ENTRY_BODY`, or over the bound).
    pub(crate) fn insert(&mut self, key: Vec<u8>, cached: Cached) -> bool {
        let size = cached.size(&key);
        if cached.body.len() > MAX_ENTRY_BODY || size > self.max_bytes || self.max_entries == 0 {
            return false;
        }
        self.remove(&key);
        while self.bytes + size > self.max_bytes || self.entries.len() >= self.max_entries {
            let Some((_, oldest)) = self.recency.pop_first() else { break };
            if let Some(slot) = self.entries.remove(&oldest) {
                self.bytes = self.bytes.saturating_sub(slot.size);
            }
        }
        self.tick += 1;
        self.recency.insert(self.tick, key.clone());
        self.entries.insert(key, Slot { cached: Rc::new(cached), used: self.tick, size });
        self.bytes += size;
        true
    }

    fn remove(&mut self, key: &[u8]) {
        if let Some(slot) = self.entries.remove(key) {
            self.recency.remove(&slot.used);
            self.bytes = self.bytes.saturating_sub(slot.size);
        }
    }

    /// Drops everything (a test kit's fresh start).
    #[cfg(any(test, feature = "test-kit"))]
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.recency.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(body: usize, expires_ms: i64) -> Cached {
        Cached { status: 200, headers: vec![], body: vec![b'a'; body], expires_ms }
    }

    #[test]
    fn least_recently_used_goes_first_and_bytes_stay_bounded() {
        let one = entry(100, 10).size(b"k1");
        let mut c = ResponseCache::with_limits(one * 2, 10);
        assert!(c.insert(b"k1".to_vec(), entry(100, 10)));
        assert!(c.insert(b"k2".to_vec(), entry(100, 10)));
        assert!(c.get(b"k1", 0).is_some(), "k1 used: k2 is now the oldest");
        assert!(c.insert(b"k3".to_vec(), entry(100, 10)));
        assert!(c.get(b"k2", 0).is_none());
        assert!(c.get(b"k1", 0).is_some() && c.get(b"k3", 0).is_some());
        assert!(c.bytes() <= one * 2);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn entries_count_is_bounded_and_expired_entries_are_dropped() {
        let mut c = ResponseCache::with_limits(usize::MAX / 2, 2);
        for k in [b"a", b"b", b"c"] {
            assert!(c.insert(k.to_vec(), entry(1, 10)));
        }
        assert_eq!(c.len(), 2);
        assert!(c.get(b"a", 0).is_none());
        assert!(c.get(b"c", 10).is_none(), "expired at its expiry time");
        assert_eq!(c.len(), 1);
        assert!(!c.insert(b"big".to_vec(), entry(MAX_ENTRY_BODY + 1, 10)), "over the per-entry body bound");
    }

    #[test]
    fn backend_cache_control() {
        let l = |v: &str| lifetime_s(60, std::iter::once(v.as_bytes()));
        assert_eq!(l(""), Some(60));
        assert_eq!(l("public, max-age=5"), Some(5));
        assert_eq!(l("max-age=600"), Some(60), "never longer than the plugin's duration");
        assert_eq!(l("max-age=600, s-maxage=7"), Some(7), "s-maxage is the shared cache's");
        assert_eq!(l("No-Store"), None);
        assert_eq!(l("private"), None);
        assert_eq!(l("no-cache=\"set-cookie\""), None);
        assert_eq!(l("max-age=0"), None);
        assert_eq!(l("max-age=soon"), None);
    }

    #[test]
    fn client_cache_control() {
        let a = |v: &str| client_asks(std::iter::once(v.as_bytes()));
        assert_eq!(a("only-if-cached"), ClientAsks { only_if_cached: true, ..ClientAsks::default() });
        assert!(a("no-cache").fresh && !a("no-cache").no_store);
        assert!(a("max-age=0").fresh);
        assert!(a("no-store").no_store);
        assert_eq!(a("max-age=60"), ClientAsks::default());
    }
}
