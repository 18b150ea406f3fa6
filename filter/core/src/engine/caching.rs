//! The caching plugin in the engine. Request side: once every check admitted a GET (signature,
//! plugins, rate limits, cluster-mode checks), a fresh cached answer is given as a local reply, or
//! `I404CH` when the client asked `only-if-cached` and there is none. Response side: a 200 the backend
//! itself sent (`via_upstream`), that its `Cache-Control` lets a shared cache keep, is copied chunk by
//! chunk as it streams to the client (never held for it) and stored when it ends within the bound.

use super::exchange::Exchange;
use super::{Engine, Flow, Services, Stat, StreamIo};
use crate::contract::errors;
use crate::contract::names::REQUEST_ID_HEADER;
use crate::contract::refusal::Refusal;
use crate::ids::PluginId;
use crate::plugins::binding::PluginKind;
use crate::plugins::caching::{self, CachingConfig, KeyParts, MAX_ENTRY_BODY};
use crate::plugins::circuit_breaker::Pass;
use crate::request::model::Admission;
use crate::wire::headers::Headers;
use crate::wire::url::split_path;

/// The marker on an answer the gateway gave from its cache (Aliyun's).
const CACHING_HEADER: &str = "x-ca-caching";

/// A response being copied for the cache.
#[derive(Debug)]
pub(super) struct Fill {
    plugin: PluginId,
    key: Vec<u8>,
    /// Set once the response headers said the answer may be kept.
    ttl_s: Option<u64>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn config(engine: &Engine, id: PluginId) -> Option<&CachingConfig> {
    match engine.gateway.plugins.get(id.index()).map(|p| &p.kind) {
        Some(PluginKind::Caching(cfg)) => Some(cfg),
        _ => None,
    }
}

impl Exchange {
    /// Before an admitted request goes on: `Some` when the gateway answered it (from the cache, or
    /// `I404CH`); else, for a cacheable request, the copy of its response is prepared.
    pub(super) fn consult_cache(
        &mut self,
        engine: &Engine,
        svc: &Services<'_>,
        io: &dyn StreamIo,
        head: &Headers<'_>,
        a: &Admission,
    ) -> Option<Flow> {
        let gw = &engine.gateway;
        let id = gw.bound(a.identity.api, a.identity.stage).caching?;
        let cfg = config(engine, id)?;
        // Aliyun caches GET only; a HEAD or any other method is neither answered nor stored.
        if head.get(b":method") != Some(b"GET") {
            return None;
        }
        let app_id = a.identity.app.and_then(|i| gw.app(i)).map(|app| app.id.as_str());
        let asks = if cfg.honours_client(app_id) {
            caching::client_asks(head.iter().filter(|(n, _)| *n == b"cache-control").map(|(_, v)| v))
        } else {
            caching::ClientAsks::default()
        };
        let (path, query) = split_path(head.get(b":path").unwrap_or_default());
        let parts = KeyParts { api: a.identity.api.0, stage: a.identity.stage.0, path, query, app_id, headers: head };
        let key = caching::key(cfg, &parts);
        // The circuit breaker's half-open trial must reach the backend: its answer closes or reopens it.
        let trial = matches!(a.breaker, Some((_, _, Pass::Trial)));
        if !trial && (asks.only_if_cached || !asks.fresh) {
            let found = engine.cache.borrow_mut().get(&key, svc.clock.now_ms());
            if let Some(hit) = found {
                svc.stats.record(Stat::Caching("hit"));
                return Some(self.cached_reply(engine, svc, io, a, &hit));
            }
            svc.stats.record(Stat::Caching("miss"));
        }
        if asks.only_if_cached {
            let r = Refusal::new(&errors::I404CH, &[], "only-if-cached and nothing cached");
            return Some(self.refuse(gw, svc, io, &r));
        }
        if !asks.no_store {
            self.fill = Some(Box::new(Fill { plugin: id, key, ttl_s: None, headers: Vec::new(), body: Vec::new() }));
        }
        None
    }

    /// A cached answer as a local reply: its status, kept headers and body, `X-Ca-Caching: true`, a
    /// fresh request id, and what this request earned of its own (rate-limit and CORS headers).
    fn cached_reply(&mut self, engine: &Engine, svc: &Services<'_>, io: &dyn StreamIo, a: &Admission, hit: &caching::Cached) -> Flow {
        let gw = &engine.gateway;
        self.count_traffic(gw, svc, a);
        svc.stats.record(Stat::Allowed);
        self.conclude(gw, svc, io, hit.status);
        let rid = self.request_id;
        let quota: Vec<(&str, String)> = self.quota.map(|q| q.headers().to_vec()).unwrap_or_default();
        let cors = std::mem::take(&mut self.cors);
        let mut headers: Vec<(&str, &str)> = hit.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        headers.push((REQUEST_ID_HEADER, std::str::from_utf8(&rid).unwrap_or("")));
        headers.push((CACHING_HEADER, "true"));
        headers.extend(quota.iter().map(|(n, v)| (*n, v.as_str())));
        headers.extend(cors.iter().map(|(n, v)| (*n, v.as_str())));
        self.reply(io, hit.status, &headers, &hit.body)
    }

    /// The response headers of a request being copied: kept only for a 200 the backend sent itself
    /// (not one Envoy made, nor one errorMapping changed), that its `Cache-Control` lets a shared
    /// cache keep, with text headers and an announced length within the bound.
    pub(super) fn cache_response_head(
        &mut self,
        engine: &Engine,
        svc: &Services<'_>,
        io: &dyn StreamIo,
        response: Option<&Headers<'_>>,
        end_of_stream: bool,
    ) {
        let Some(fill) = self.fill.as_mut() else { return };
        let (Some(cfg), Some(h)) = (config(engine, fill.plugin), response) else {
            self.fill = None;
            return;
        };
        let ok = h.get(b":status") == Some(b"200")
            && h.number(b"content-length").is_none_or(|l| l <= MAX_ENTRY_BODY as u64)
            && io.response_details() == b"via_upstream";
        let ttl = caching::lifetime_s(cfg.duration_s, h.iter().filter(|(n, _)| *n == b"cache-control").map(|(_, v)| v));
        match (ok, ttl, caching::kept_headers(cfg, h)) {
            (true, Some(ttl), Some(headers)) => {
                fill.ttl_s = Some(ttl);
                fill.headers = headers;
            }
            _ => {
                self.fill = None;
                return;
            }
        }
        if end_of_stream {
            self.store_fill(engine, svc);
        }
    }

    /// A response data frame of a request being copied, once it is in the host's buffer for the
    /// filter to read: this frame alone when the filter lets frames go on, or every frame so far
    /// when errorMapping held them (the caller skips the frames held until their release).
    pub(super) fn cache_response_body(&mut self, engine: &Engine, svc: &Services<'_>, io: &dyn StreamIo, body_size: usize, end_of_stream: bool) {
        let Some(fill) = self.fill.as_mut() else { return };
        if fill.ttl_s.is_none() {
            return;
        }
        if fill.body.len() + body_size > MAX_ENTRY_BODY {
            self.fill = None; // larger than announced, or unannounced: it streams on, not stored
            return;
        }
        fill.body.extend_from_slice(&io.response_body(body_size));
        if end_of_stream {
            self.store_fill(engine, svc);
        }
    }

    fn store_fill(&mut self, engine: &Engine, svc: &Services<'_>) {
        let Some(fill) = self.fill.take() else { return };
        let Some(ttl_s) = fill.ttl_s else { return };
        let expires_ms = svc.clock.now_ms().saturating_add(ttl_s.saturating_mul(1000) as i64);
        let cached = caching::Cached { status: 200, headers: fill.headers, body: fill.body, expires_ms };
        if engine.cache.borrow_mut().insert(fill.key, cached) {
            svc.stats.record(Stat::Caching("stored"));
        }
    }
}
