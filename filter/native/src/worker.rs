//! Per-worker state of a configuration (what a Wasm VM holds): the core's engine, with its caches,
//! request ids and nonce-store view, built on a worker's first request. Every worker shares the
//! process's store (`store::global`), as Wasm VMs share Envoy's shared data. A worker refreshes from
//! what the main thread shared (a merged registry document, newly fetched JWKS) at most once per
//! tick, on a request's start.

use crate::batch::{Link, Outgoing};
use crate::config::{CoarseClock, Config, Shared, SystemClock, TICK};
use crate::metrics::Pending;
use crate::store;
use cagate_core::jwt::jwks_fetch;
use cagate_core::{Clock, Delivery, Engine, Lease, PluginKind, Seeds, Stat, Stats};
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

pub(crate) struct Worker {
    pub(crate) shared: Arc<Shared>,
    engine: RefCell<Rc<Engine>>,
    installed: Cell<u32>,
    next_refresh_ms: Cell<i64>,
    /// The apps counted by app on this worker (`metrics.maxApps`).
    pub(crate) apps: RefCell<HashSet<u32>>,
    /// This worker's counts since the main thread's last flush (registered in `Shared::pending`).
    pub(crate) pending: Arc<Mutex<Pending>>,
    /// Cluster-mode batching (`batch`): the main thread's answers, the streams that wait for a
    /// batch, this worker's calls in flight through the main thread.
    pub(crate) link: Arc<Link>,
    pub(crate) parked: RefCell<Vec<(u32, Inbox)>>,
    calls: RefCell<Vec<(u32, CallKind)>>,
    next_token: Cell<u32>,
    next_stream: Cell<u32>,
}

/// What a call this worker handed to the main thread was.
enum CallKind {
    Batch,
    Lease(Lease),
}

/// Where the worker puts the answers to a waiting request's queued checks.
pub(crate) type Inbox = Rc<RefCell<Vec<Delivery>>>;

thread_local! {
    // A handful of configurations at most: a scan of their ids beats hashing on every request.
    static WORKERS: RefCell<Vec<(u64, Rc<Worker>)>> = const { RefCell::new(Vec::new()) };
}

/// This thread's state for a configuration, built on first use. Entries of destroyed configurations
/// are dropped then.
pub(crate) fn of(config: &Config) -> Rc<Worker> {
    let id = config.shared.id;
    WORKERS.with(|w| {
        let mut list = w.borrow_mut();
        if let Some((_, worker)) = list.iter().find(|(i, _)| *i == id) {
            return worker.clone();
        }
        list.retain(|(_, w)| w.shared.alive.load(Ordering::Acquire));
        let worker = Rc::new(Worker::new(config.shared.clone()));
        list.push((id, worker.clone()));
        worker
    })
}

/// 16 bytes of the process's randomness (std's hasher keys come from the OS).
fn random_bytes() -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(crate::config::now_nanos() ^ i as u64);
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

fn seeds() -> Seeds {
    let ids = random_bytes();
    let caches = random_bytes();
    Seeds {
        request_ids: u64::from_le_bytes(ids[..8].try_into().unwrap_or([0; 8])),
        caches: (u64::from_le_bytes(caches[..8].try_into().unwrap_or([0; 8])), u64::from_le_bytes(caches[8..].try_into().unwrap_or([0; 8]))),
        nonce_store: random_bytes(),
        runtime: random_bytes(),
    }
}

impl Worker {
    fn new(shared: Arc<Shared>) -> Worker {
        let (version, gateway) = match shared.registry.lock().ok().and_then(|r| r.clone()) {
            Some((v, gw)) => (v, (*gw).clone()),
            None => (0, shared.base.clone()),
        };
        let engine = Engine::new(gateway, seeds(), store::global());
        if shared.batches() {
            engine.enable_batching();
        }
        let pending = Arc::new(Mutex::new(Pending::default()));
        if let Ok(mut all) = shared.pending.lock() {
            all.push(pending.clone());
        }
        Worker {
            pending,
            shared,
            engine: RefCell::new(Rc::new(engine)),
            installed: Cell::new(version),
            next_refresh_ms: Cell::new(0),
            apps: Default::default(),
            link: Arc::default(),
            parked: RefCell::default(),
            calls: RefCell::default(),
            next_token: Cell::new(0),
            next_stream: Cell::new(0),
        }
    }

    /// An id for a new stream on this worker (answers to its queued checks name it).
    pub(crate) fn stream_id(&self) -> u32 {
        let id = self.next_stream.get().wrapping_add(1);
        self.next_stream.set(id);
        id
    }

    fn token(&self) -> u32 {
        let t = self.next_token.get().wrapping_add(1);
        self.next_token.set(t);
        t
    }

    /// Sends what the batches hold now through the main thread, and hands the checks out of time
    /// their answer.
    pub(crate) fn flush(&self, stats: &dyn Stats) {
        if !self.engine.borrow().batches_pending() {
            return;
        }
        let engine = self.engine.borrow().clone();
        let flush = engine.take_batches(SystemClock.now_ms());
        let mut out = Vec::new();
        for (lease, call) in flush.leases {
            let granting = self.calls.borrow().iter().any(|(_, k)| matches!(k, CallKind::Lease(l) if l.id == lease.id));
            if granting {
                continue;
            }
            let token = self.token();
            self.calls.borrow_mut().push((token, CallKind::Lease(lease)));
            stats.record(Stat::ClusterMode("etcd", "calls"));
            out.push(Outgoing { link: self.link.clone(), token, call, streams: Vec::new() });
        }
        let mut deliveries = flush.expired;
        for batch in flush.calls {
            let token = self.token();
            let (service, size) = (batch.service(), batch.size());
            if let Ok(mut p) = self.pending.lock() {
                p.add_cluster(service, "calls", 1);
                p.add_cluster(service, "batches", 1);
                p.add_cluster(service, "batched", size as u64);
            }
            let streams: Vec<u32> = batch.streams().collect();
            let call = batch.call.clone();
            self.calls.borrow_mut().push((token, CallKind::Batch));
            deliveries.extend(engine.batch_sent(batch, Some(token)));
            out.push(Outgoing { link: self.link.clone(), token, call, streams });
        }
        self.shared.send(out);
        self.deliver(deliveries);
    }

    /// Takes the main thread's answers into the batches: each waiting stream gets its own answer in
    /// its inbox (and an event to run it in); then sends what can go next.
    pub(crate) fn pump(&self, stats: &dyn Stats) {
        let mail = self.link.take_mail();
        if mail.is_empty() {
            return;
        }
        let engine = self.engine.borrow().clone();
        for (token, answer) in mail {
            let kind = {
                let mut calls = self.calls.borrow_mut();
                let Some(pos) = calls.iter().position(|(t, _)| *t == token) else { continue };
                calls.swap_remove(pos).1
            };
            match kind {
                CallKind::Batch => {
                    if let Some(deliveries) = engine.batch_answered(token, &answer) {
                        self.deliver(deliveries);
                    }
                }
                CallKind::Lease(lease) => {
                    if !engine.lease_answered(&lease, &answer, CoarseClock.now_ms()) {
                        stats.record(Stat::ClusterMode("etcd", "errors"));
                    }
                }
            }
        }
        self.flush(stats);
    }

    fn deliver(&self, deliveries: Vec<Delivery>) {
        for d in deliveries {
            let stream = d.stream;
            // Gone: the request ended while it waited.
            let Some(parked) = self.parked.borrow().iter().find(|(id, _)| *id == stream).map(|(_, p)| p.clone()) else { continue };
            parked.borrow_mut().push(d);
            self.link.wake(stream);
        }
    }

    /// The engine a new request runs with (refreshed first when a tick has passed), and the registry
    /// version it was built from.
    pub(crate) fn engine(&self) -> (Rc<Engine>, u32) {
        let now = CoarseClock.now_ms();
        if now >= self.next_refresh_ms.get() {
            self.next_refresh_ms.set(now + TICK.as_millis() as i64);
            self.refresh();
        }
        (self.engine.borrow().clone(), self.installed.get())
    }

    /// Installs what the main thread shared since: a newer merged registry document (a new engine
    /// around the same runtime pieces; requests in flight keep theirs), newer JWKS.
    fn refresh(&self) {
        if self.shared.registry_version.load(Ordering::Acquire) != self.installed.get() {
            if let Some((v, gw)) = self.shared.registry.lock().ok().and_then(|r| r.clone()) {
                let next = self.engine.borrow().with_gateway((*gw).clone());
                *self.engine.borrow_mut() = Rc::new(next);
                self.installed.set(v);
            }
        }
        let engine = self.engine.borrow();
        for (idx, plugin) in engine.gateway.plugins.iter().enumerate() {
            let PluginKind::Jwt(cfg) = &plugin.kind else { continue };
            if cfg.remote.is_none() {
                continue;
            }
            if let Some(Some(js)) = engine.runtime().borrow_mut().jwt.get_mut(idx) {
                if let Some((cas, keys)) = jwks_fetch::load_if_changed(store::global(), &plugin.name, js.remote_cas) {
                    js.remote_cas = cas;
                    js.remote_keys = Some(keys);
                    js.clear_cache();
                }
            }
        }
    }
}
