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
use crate::plugins::circuit_breaker::{Pass, DOWNGRADE_HEADER};
use crate::request::model::Admission;
use crate::wire::headers::Headers;
use crate::wire::url::split_path;
use std::cell::Cell;
use std::rc::Rc;

/// The marker on an answer the gateway gave from its cache (Aliyun's).
const CACHING_HEADER: &str = "x-ca-caching";

/// What all responses being copied for the cache may hold at once, per VM: each copy is bounded by
/// `MAX_ENTRY_BODY`, but many slow concurrent misses could otherwise fill the VM's memory.
const MAX_IN_FLIGHT: usize = 16 * 1024 * 1024;

/// A response being copied for the cache.
#[derive(Debug)]
pub(super) struct Fill {
    plugin: PluginId,
    key: Vec<u8>,
    /// Set once the response headers said the answer may be kept.
    ttl_s: Option<u64>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The VM's count of bytes being copied, which this copy's body is part of until it is dropped.
    in_flight: Rc<Cell<usize>>,
}

impl Drop for Fill {
    fn drop(&mut self) {
        self.in_flight.set(self.in_flight.get().saturating_sub(self.body.len()));
    }
}

/// Whether a request edit is part of the cache key. Every edit is but those new on every request:
/// the backend signature's (it signs the request id) and a system parameter of the API's backend that
/// is (`system`). The backend answers the request as the gateway made it, so another destination (a
/// route, a canary, a downgrade) or another identity the gateway forwards (a claim, a mapped value,
/// what remoteAuth passed on) is never answered with another's.
fn keyed(name: &str, system: &[crate::config::backend::SystemParam]) -> bool {
    !name.starts_with(crate::plugins::backend_signature::SIGNATURE)
        && !system.iter().any(|s| s.system.per_request() && s.backend_name.eq_ignore_ascii_case(name))
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
        let bound = gw.bound(a.identity.api, a.identity.stage);
        let id = bound.caching?;
        let cfg = config(engine, id)?;
        // Not cached: a downgraded request (the downgrade's answer is not the API's), a request a
        // report-only check would have refused, and an API whose transformer edits responses (a
        // cached answer would skip them).
        let downgraded = a.edits.iter().rev().find(|(n, _)| n == DOWNGRADE_HEADER).is_some_and(|(_, v)| v.is_some());
        let transformed = bound.transformer.is_some();
        if downgraded || transformed || self.record.error.is_some() {
            return None;
        }
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
        let mut key = caching::key(cfg, &parts);
        let system = match gw.api(a.identity.api).and_then(|api| api.backend.as_ref()) {
            Some(crate::config::backend::Backend::Http(h)) => h.system.as_slice(),
            _ => &[],
        };
        for (name, value) in a.edits.iter().filter(|(n, _)| keyed(n, system)) {
            for part in [name.as_bytes(), value.as_deref().unwrap_or_default()] {
                key.extend_from_slice(&(part.len() as u32).to_le_bytes());
                key.extend_from_slice(part);
            }
        }
        // The circuit breaker's half-open trial must reach the backend: its answer closes or reopens it.
        let trial = matches!(a.breaker, Some((_, _, Pass::Trial(_))));
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
            let in_flight = engine.cache_in_flight.clone();
            self.fill = Some(Box::new(Fill { plugin: id, key, ttl_s: None, headers: Vec::new(), body: Vec::new(), in_flight }));
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
        let budget = fill.in_flight.get();
        if fill.body.len() + body_size > MAX_ENTRY_BODY || budget.saturating_add(body_size) > MAX_IN_FLIGHT {
            // Larger than announced, or unannounced, or too much being copied at once on this VM:
            // it streams on, not stored.
            self.fill = None;
            return;
        }
        let chunk = io.response_body(body_size);
        fill.in_flight.set(budget.saturating_add(chunk.len()));
        fill.body.extend_from_slice(&chunk);
        if end_of_stream {
            self.store_fill(engine, svc);
        }
    }

    fn store_fill(&mut self, engine: &Engine, svc: &Services<'_>) {
        let Some(mut fill) = self.fill.take() else { return };
        let Some(ttl_s) = fill.ttl_s else { return };
        let expires_ms = svc.clock.now_ms().saturating_add(ttl_s.saturating_mul(1000) as i64);
        let (headers, body) = (std::mem::take(&mut fill.headers), std::mem::take(&mut fill.body));
        fill.in_flight.set(fill.in_flight.get().saturating_sub(body.len()));
        let cached = caching::Cached { status: 200, headers, body, expires_ms };
        if engine.cache.borrow_mut().insert(std::mem::take(&mut fill.key), cached) {
            svc.stats.record(Stat::Caching("stored"));
        }
    }
}
