//! The root context: configuration (once, in `on_configure`), the tick (stats flush, coarse clock,
//! remote JWKS), and the factory of HTTP contexts.

use crate::host::{self, HostClock, HostStore, Metrics};
use crate::hostcall::{self, Buffer, Map};
use crate::http::Http;
use crate::State;
use cagate_core::jwt::jwks_fetch;
use cagate_core::PluginKind;
use cagate_core::{compile, Answer, Clock, Engine, Seeds};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use std::cell::RefCell;
use std::rc::Rc;

/// How often each VM hands its counters to Envoy, refreshes its coarse clock and checks remote JWKS.
const TICK_MS: u64 = 500;
/// The tick while an app registry document is being merged in slices.
const INSTALL_TICK_MS: u64 = 10;
/// The tick while cluster-mode checks are queued: the longest a queued check waits for its batch when
/// none is in flight.
pub(crate) const FLUSH_TICK_MS: u64 = 1;

pub(crate) struct Root {
    /// This root context's id: host calls act on it again after a batch's answers were delivered.
    id: u32,
    state: Option<Rc<State>>,
    /// Remote JWKS fetches in flight: call token -> plugin index.
    fetches: Vec<(u32, u32)>,
    /// Cluster mode: etcd lease grants in flight.
    granting: Vec<crate::grpc::Granting>,
    registry: crate::app_registry::Registry,
    /// When the configuration was installed (ms): the registry's age before its first good fetch.
    configured_ms: i64,
    /// When the periodic work (stats, clock, keys, leases, registry fetch) and a registry slice last ran (ms).
    last_tick_ms: i64,
    last_install_ms: i64,
}

impl Root {
    pub(crate) fn new(id: u32) -> Self {
        Root {
            id,
            state: None,
            fetches: Vec::new(),
            granting: Vec::new(),
            registry: Default::default(),
            configured_ms: 0,
            last_tick_ms: 0,
            last_install_ms: 0,
        }
    }
}

impl Context for Root {
    fn on_grpc_call_response(&mut self, token: u32, status: u32, size: usize) {
        let Some(state) = self.state.clone() else { return };
        let answer = Answer::from_grpc(status, || hostcall::buffer(Buffer::GrpcReceive, 0, size), hostcall::grpc_status_message);
        if let Some(deliveries) = state.engine.batch_answered(token, &answer) {
            self.deliver(&state, deliveries);
        } else if let Some(pos) = self.granting.iter().position(|g| g.token == token) {
            let g = self.granting.swap_remove(pos);
            // A grant ahead of the requests is a check of its own: its errors stay a share of checks.
            let granted = state.engine.lease_answered(&g.lease, &answer, host::CoarseClock.now_ms());
            let mut m = state.metrics.borrow_mut();
            m.cluster_mode("etcd", "checks");
            if !granted {
                m.cluster_mode("etcd", "errors");
            }
        } else {
            return;
        }
        // The next batch goes at once (its checks queued while this one was in flight).
        self.flush_batches(&state);
    }

    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _trailers: usize) {
        if let Some(state) = self.state.clone() {
            if self.registry.on_response(&state, token, body_size) {
                return;
            }
        }
        let Some(pos) = self.fetches.iter().position(|(t, _)| *t == token) else { return };
        let (_, idx) = self.fetches.swap_remove(pos);
        let Some(state) = self.state.clone() else { return };
        let Some(cagate_core::Plugin { name, .. }) = state.engine.gateway.plugins.get(idx as usize) else { return };
        let status = hostcall::header(Map::HttpCallResponse, ":status");
        // One byte past the largest key set accepted: enough for `publish` to refuse a larger one.
        let body = hostcall::buffer(Buffer::HttpCallResponseBody, 0, body_size.min(jwks_fetch::MAX_DOCUMENT_BYTES + 1));
        if status.as_deref() != Some(b"200") {
            state.metrics.borrow_mut().jwks(idx, name, "failed");
            let shown = status.map(|s| String::from_utf8_lossy(&s).into_owned()).unwrap_or_else(|| "no response".into());
            log::warn!("cagate: plugin {name}: JWKS fetch failed ({shown}); keeping the last good keys");
            return;
        }
        match jwks_fetch::publish(&HostStore, name, HostClock.now_ms(), &body) {
            Ok(keys) => {
                state.metrics.borrow_mut().jwks(idx, name, "ok");
                log::info!("cagate: plugin {name}: JWKS loaded, {} key(s)", keys.len());
                if let Some(Some(js)) = state.engine.runtime().borrow_mut().jwt.get_mut(idx as usize) {
                    js.remote_keys = Some(keys);
                    js.clear_cache();
                }
            }
            Err(e) => {
                state.metrics.borrow_mut().jwks(idx, name, "refused");
                log::warn!("cagate: plugin {name}: JWKS refused ({e}); keeping the last good keys");
            }
        }
    }

    fn on_done(&mut self) -> bool {
        if let Some(state) = &self.state {
            state.metrics.borrow_mut().flush();
            // A VM dropped by a reload hands its fetch leases back, so another VM fetches on its next
            // tick instead of after the lease lapses (the fetch's timeout plus a margin).
            for (_, idx) in self.fetches.drain(..) {
                if let Some(plugin) = state.engine.gateway.plugins.get(idx as usize) {
                    jwks_fetch::release(&HostStore, &plugin.name);
                }
            }
        }
        self.registry.release_fetch();
        true
    }
}

impl Root {
    /// Installs a newer shared JWKS in this VM, and starts a fetch when one is due and this VM wins
    /// the lease.
    fn refresh_remote_keys(&mut self, state: &State) {
        install_shared_keys(state);
        for (idx, plugin) in state.engine.gateway.plugins.iter().enumerate() {
            let PluginKind::Jwt(cfg) = &plugin.kind else { continue };
            let Some(r) = &cfg.remote else { continue };
            if self.fetches.iter().any(|(_, i)| *i == idx as u32) || !jwks_fetch::should_fetch(&HostStore, &plugin.name, r, HostClock.now_ms()) {
                continue;
            }
            let headers = vec![(":method", "GET"), (":path", r.path.as_str()), (":authority", r.authority.as_str()), ("accept", "application/json")];
            match self.dispatch_http_call(&r.cluster, headers, None, vec![], std::time::Duration::from_millis(r.timeout_ms)) {
                Ok(token) => self.fetches.push((token, idx as u32)),
                Err(e) => {
                    // Counted as a failed fetch: a cluster Envoy lacks must trip the alert too.
                    state.metrics.borrow_mut().jwks(idx as u32, &plugin.name, "failed");
                    log::warn!("cagate: plugin {}: cannot fetch JWKS through cluster {} ({e:?})", plugin.name, r.cluster)
                }
            }
        }
    }
}

/// Installs in this VM the key sets another VM fetched and shared, where newer than its own.
fn install_shared_keys(state: &State) {
    for (idx, plugin) in state.engine.gateway.plugins.iter().enumerate() {
        let PluginKind::Jwt(cfg) = &plugin.kind else { continue };
        if cfg.remote.is_none() {
            continue;
        }
        if let Some(Some(js)) = state.engine.runtime().borrow_mut().jwt.get_mut(idx) {
            if let Some((cas, keys)) = jwks_fetch::load_if_changed(&HostStore, &plugin.name, js.remote_cas) {
                js.remote_cas = cas;
                js.remote_keys = Some(keys);
                js.clear_cache();
            }
        }
    }
}

impl Root {
    /// Grants the etcd leases the next nonces will use (this minute's and the next), so a request's
    /// claim is one round trip.
    fn grant_leases_ahead(&mut self, state: &State) {
        if !self.granting.is_empty() {
            return;
        }
        for (lease, call) in state.engine.leases_to_grant(HostClock.now_ms()) {
            if let Some(token) = crate::grpc::send(self, &call) {
                state.metrics.borrow_mut().cluster_mode("etcd", "calls");
                self.granting.push(crate::grpc::Granting { token, lease });
            }
        }
    }
}

impl Root {
    /// Installs a newer shared registry document: a new state around the merged configuration, for the
    /// requests that start from now on.
    fn install_registry(&mut self) {
        let Some(state) = self.state.clone() else { return };
        if let Some(gw) = self.registry.step(&state) {
            self.state = Some(Rc::new(state.with_gateway(gw)));
        }
    }

    /// The tick this VM needs now: short while checks are queued, often while a registry document is
    /// merged (a few milliseconds of it per tick), else the periodic one.
    fn set_tick(&self) {
        let Some(state) = &self.state else { return };
        let ms = if state.engine.batches_pending() {
            FLUSH_TICK_MS
        } else if self.registry.busy() {
            INSTALL_TICK_MS
        } else {
            TICK_MS
        };
        if state.tick_ms.get() != ms && hostcall::set_tick_period(std::time::Duration::from_millis(ms)).is_ok() {
            state.tick_ms.set(ms);
        }
    }

    /// Sends what the batches hold now, from this context (which outlives every request, so no
    /// answer is lost with a request that ends), and delivers the checks whose time ran out.
    fn flush_batches(&mut self, state: &State) {
        if !state.engine.batches_pending() {
            return;
        }
        let flush = state.engine.take_batches(HostClock.now_ms());
        for (lease, call) in flush.leases {
            if self.granting.iter().any(|g| g.lease.id == lease.id) {
                continue;
            }
            if let Some(token) = crate::grpc::send(self, &call) {
                state.metrics.borrow_mut().cluster_mode("etcd", "calls");
                self.granting.push(crate::grpc::Granting { token, lease });
            }
        }
        let mut deliveries = flush.expired;
        for batch in flush.calls {
            let (service, size) = (batch.service(), batch.size());
            let token = crate::grpc::send(self, &batch.call);
            {
                let mut m = state.metrics.borrow_mut();
                m.cluster_mode(service, "calls");
                m.cluster_mode(service, "batches");
                m.cluster_mode_add(service, "batched", size);
            }
            deliveries.extend(state.engine.batch_sent(batch, token));
        }
        self.deliver(state, deliveries);
    }

    /// Runs each answer in its request's exchange, with that request's stream as the effective context.
    fn deliver(&self, state: &State, deliveries: Vec<cagate_core::Delivery>) {
        if deliveries.is_empty() {
            return;
        }
        for d in &deliveries {
            let parked = state.parked.borrow().get(&d.stream).and_then(std::rc::Weak::upgrade);
            // Gone: the request ended (its client went away) while it waited.
            let Some(parked) = parked else { continue };
            if hostcall::set_effective_context(d.stream).is_ok() {
                parked.deliver(d);
            }
        }
        let _ = hostcall::set_effective_context(self.id);
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        if let Some(old) = &self.state {
            old.metrics.borrow_mut().flush();
        }
        let doc = hostcall::buffer(Buffer::PluginConfiguration, 0, usize::MAX);
        let gateway = match compile(&doc) {
            Ok(g) => g,
            Err(problems) => {
                log::error!("cagate: configuration refused, {} problem(s)", problems.len());
                for p in &problems {
                    log::error!("cagate: config: {p}");
                }
                return false;
            }
        };
        for w in &gateway.warnings {
            log::warn!("cagate: config: {w}");
        }
        let cache_seed = host::random_bytes();
        let seeds = Seeds {
            request_ids: u64::from_le_bytes(host::random_bytes()[..8].try_into().unwrap_or([0; 8])),
            caches: (
                u64::from_le_bytes(cache_seed[..8].try_into().unwrap_or([0; 8])),
                u64::from_le_bytes(cache_seed[8..].try_into().unwrap_or([0; 8])),
            ),
            nonce_store: host::random_bytes(),
            runtime: host::random_bytes(),
        };
        self.registry.reset(Rc::new(gateway.clone()));
        let engine = Engine::new(gateway, seeds, &HostStore);
        log::info!(
            "cagate: configured {} apps, {} apis, {} stages; nonce store {} shards",
            engine.gateway.app_count(),
            engine.gateway.apis.len(),
            engine.gateway.stages.len(),
            engine.nonce_shards()
        );
        self.state = Some(Rc::new(State::new(engine, Rc::new(RefCell::new(Metrics::define())), self.state.as_deref())));
        // A document or a key set shared before this configuration (a reload) is installed at once:
        // waiting for the first tick would refuse the registry's apps or the current keys' tokens.
        if let Some(state) = self.state.clone() {
            if let Some(gw) = self.registry.install_now(&state) {
                self.state = Some(Rc::new(state.with_gateway(gw)));
            }
        }
        if let Some(state) = &self.state {
            install_shared_keys(state);
        }
        host::refresh_coarse_clock();
        self.configured_ms = HostClock.now_ms();
        if let Some(state) = self.state.as_ref().filter(|s| s.wake.get().is_none()) {
            // A name of this VM's own: Envoy keys queues by VM id and name, and the last root context to
            // register a name gets its wake-ups.
            let tag = u64::from_le_bytes(host::random_bytes()[..8].try_into().unwrap_or([0; 8]));
            state.wake.set(hostcall::register_shared_queue(&format!("cagate-flush-{tag:016x}")));
        }
        match hostcall::set_tick_period(std::time::Duration::from_millis(TICK_MS)) {
            Ok(()) => {
                if let Some(state) = &self.state {
                    state.tick_ms.set(TICK_MS);
                }
            }
            Err(e) => log::warn!("cagate: no tick (host status {e}): stats and remote keys are not refreshed"),
        }
        true
    }

    /// A request queued a check: flush now, on this turn of the event loop.
    fn on_queue_ready(&mut self, queue_id: u32) {
        let Some(state) = self.state.clone() else { return };
        if state.wake.get() == Some(queue_id) {
            state.wake_pending.set(false);
        }
        while hostcall::dequeue_shared_queue(queue_id).is_some() {}
        self.flush_batches(&state);
        self.set_tick();
    }

    fn on_tick(&mut self) {
        let Some(state) = self.state.clone() else { return };
        self.flush_batches(&state);
        let now = HostClock.now_ms();
        // The short ticks only flush: the periodic work keeps its own pace (timers fire a little early).
        if now - self.last_tick_ms >= (TICK_MS * 9 / 10) as i64 {
            self.last_tick_ms = now;
            #[cfg(feature = "host-call-count")]
            hostcall::publish_host_calls();
            host::refresh_coarse_clock();
            if state.engine.gateway.registry.is_some() {
                let age = crate::app_registry::age_seconds(now, self.configured_ms);
                state.metrics.borrow_mut().registry_age(age);
            }
            state.metrics.borrow_mut().flush();
            self.refresh_remote_keys(&state);
            self.grant_leases_ahead(&state);
            let mut registry = std::mem::take(&mut self.registry);
            registry.maybe_fetch(self, &state);
            self.registry = registry;
        }
        if now - self.last_install_ms >= (INSTALL_TICK_MS * 9 / 10) as i64 {
            self.last_install_ms = now;
            self.install_registry();
        }
        self.set_tick();
    }

    fn create_http_context(&self, id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http::new(self.state.clone(), id)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
