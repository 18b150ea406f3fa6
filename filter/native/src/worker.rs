//! Per-worker state of a configuration (what a Wasm VM holds): the core's engine, with its caches,
//! request ids and nonce-store view, built on a worker's first request. Every worker shares the
//! process's store (`store::global`), as Wasm VMs share Envoy's shared data. A worker refreshes from
//! what the main thread shared (a merged registry document, newly fetched JWKS) at most once per
//! tick, on a request's start.

use crate::config::{CoarseClock, Config, Shared, TICK};
use crate::metrics::Pending;
use crate::store;
use cagate_core::jwt::jwks_fetch;
use cagate_core::{Clock, Engine, PluginKind, Seeds};
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
    pub(crate) apps: RefCell<HashSet<Box<str>>>,
    /// This worker's counts since the main thread's last flush (registered in `Shared::pending`).
    pub(crate) pending: Arc<Mutex<Pending>>,
}

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
