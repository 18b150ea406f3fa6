//! Host services for the core, through proxy-wasm host calls: the clock, shared data, stats, the raw
//! header map and randomness.

use crate::hostcall::{self, Map, CAS_MISMATCH};
use cagate_core::{Clock, SetError, SharedStore, Stat, Stats, Stream};
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

pub(crate) fn now_nanos() -> u64 {
    hostcall::now_nanos()
}

pub(crate) struct HostClock;

thread_local! {
    static COARSE_MS: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

/// Reads the host clock into the per-VM coarse clock (the root context does it on every tick).
pub(crate) fn refresh_coarse_clock() {
    let now = HostClock.now_ms();
    COARSE_MS.with(|c| c.set(now));
}

/// The clock as of the last tick (at most the tick period old): for checks with tolerances of seconds
/// or minutes (timestamps, nonces, grants, JWT times), it spares every request a host call. Rate
/// limits and the circuit breaker read the host clock.
pub(crate) struct CoarseClock;

impl Clock for CoarseClock {
    fn now_ms(&self) -> i64 {
        match COARSE_MS.with(|c| c.get()) {
            0 => {
                refresh_coarse_clock();
                COARSE_MS.with(|c| c.get())
            }
            t => t,
        }
    }
}

impl Clock for HostClock {
    fn now_ms(&self) -> i64 {
        (now_nanos() / 1_000_000) as i64
    }

    fn now_us(&self) -> i64 {
        (now_nanos() / 1_000) as i64
    }
}

pub(crate) struct HostStore;

impl SharedStore for HostStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        hostcall::shared(key)
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), SetError> {
        match hostcall::set_shared(key, value, cas) {
            Ok(()) => Ok(()),
            Err(CAS_MISMATCH) => Err(SetError::CasMismatch),
            Err(_) => Err(SetError::Failed),
        }
    }
}

/// The stream of the current HTTP context, as the host reports it.
pub(crate) struct HostStream;

impl Stream for HostStream {
    fn peer_address(&self) -> Option<Vec<u8>> {
        hostcall::property(&["source", "address"])
    }

    fn response_header(&self, name: &str) -> Option<Vec<u8>> {
        hostcall::header(Map::Response, name)
    }
}

/// The engine's stat events into this VM's counters.
pub(crate) struct StatsSink<'m>(pub(crate) &'m RefCell<Metrics>);

impl Stats for StatsSink<'_> {
    fn record(&self, stat: Stat<'_>) {
        let mut m = self.0.borrow_mut();
        match stat {
            Stat::Allowed => m.allowed(),
            Stat::Refused(code) => m.refused(code),
            Stat::Traffic { plugin, name, dim, admitted } => m.traffic(plugin, name, dim, admitted),
            Stat::Cluster(service, what) => m.cluster(service, what),
            Stat::BreakerOpened => m.breaker_opened(),
            Stat::BreakerRefused => m.breaker_refused(),
            Stat::NonceStoreFull => m.nonce_store_full(),
        }
    }
}

/// 16 bytes from the host's randomness (WASI `random_get`, through std's hasher seeding).
pub(crate) fn random_bytes() -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(now_nanos() ^ i as u64);
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

/// Counters, defined once per VM (per-code refusal counters on first use). Increments are kept in
/// the VM and flushed to Envoy by the root context's timer (and before a reconfiguration), so a
/// request pays no host call for its stats; Envoy's view lags by at most one flush period.
pub(crate) struct Metrics {
    allowed: Counter,
    refused: Counter,
    nonce_full: Counter,
    breaker_opened: Counter,
    breaker_refused: Counter,
    by_code: HashMap<&'static str, Counter>,
    traffic: HashMap<(u32, &'static str, bool), Counter>,
    cluster: HashMap<(&'static str, &'static str), Counter>,
    registry: HashMap<&'static str, Counter>,
    registry_version: Option<u32>,
    registry_apps: Option<u32>,
}

struct Counter {
    id: Option<u32>,
    pending: i64,
}

impl Counter {
    fn new(name: &str) -> Self {
        Counter { id: hostcall::define_counter(name), pending: 0 }
    }

    fn flush(&mut self) {
        if let (Some(id), true) = (self.id, self.pending != 0) {
            let _ = hostcall::increment(id, self.pending);
        }
        self.pending = 0;
    }
}

impl Metrics {
    pub(crate) fn define() -> Self {
        Metrics {
            allowed: Counter::new("cagate.requests_allowed"),
            refused: Counter::new("cagate.requests_refused"),
            nonce_full: Counter::new("cagate.nonce_store_full"),
            breaker_opened: Counter::new("cagate.breaker_opened"),
            breaker_refused: Counter::new("cagate.breaker_refused"),
            by_code: HashMap::new(),
            traffic: HashMap::new(),
            cluster: HashMap::new(),
            registry: HashMap::new(),
            registry_version: hostcall::define_gauge("cagate.registry.version"),
            registry_apps: hostcall::define_gauge("cagate.registry.apps"),
        }
    }

    /// trafficControl: a request admitted or throttled by one dimension of one plugin.
    pub(crate) fn traffic(&mut self, plugin_idx: u32, plugin: &str, dim: &'static str, admitted: bool) {
        let what = if admitted { "admitted" } else { "throttled" };
        self.traffic.entry((plugin_idx, dim, admitted)).or_insert_with(|| Counter::new(&format!("cagate.traffic.{plugin}.{dim}.{what}"))).pending +=
            1;
    }

    /// Cluster mode: `cagate.cluster.<service>.<what>` (calls, over_limit, replayed, errors, timeouts,
    /// fail_open, refused_unavailable).
    pub(crate) fn cluster(&mut self, service: &'static str, what: &'static str) {
        self.cluster.entry((service, what)).or_insert_with(|| Counter::new(&format!("cagate.cluster.{service}.{what}"))).pending += 1;
    }

    /// App registry fetches by result: changed, unchanged, failed, invalid.
    pub(crate) fn registry_fetch(&mut self, result: &'static str) {
        self.registry.entry(result).or_insert_with(|| Counter::new(&format!("cagate.registry.fetches.{result}"))).pending += 1;
    }

    /// The registry version and app count installed (gauges, set at once).
    pub(crate) fn registry_installed(&mut self, version: u32, apps: usize) {
        if let Some(id) = self.registry_version {
            let _ = hostcall::record(id, u64::from(version));
        }
        if let Some(id) = self.registry_apps {
            let _ = hostcall::record(id, apps as u64);
        }
    }

    pub(crate) fn allowed(&mut self) {
        self.allowed.pending += 1;
    }

    pub(crate) fn refused(&mut self, code: &'static str) {
        self.refused.pending += 1;
        self.by_code.entry(code).or_insert_with(|| Counter::new(&format!("cagate.refused.{code}"))).pending += 1;
    }

    pub(crate) fn breaker_opened(&mut self) {
        self.breaker_opened.pending += 1;
    }

    pub(crate) fn breaker_refused(&mut self) {
        self.breaker_refused.pending += 1;
    }

    pub(crate) fn nonce_store_full(&mut self) {
        self.nonce_full.pending += 1;
    }

    pub(crate) fn flush(&mut self) {
        self.allowed.flush();
        self.refused.flush();
        self.nonce_full.flush();
        self.breaker_opened.flush();
        self.breaker_refused.flush();
        for c in self.by_code.values_mut().chain(self.traffic.values_mut()).chain(self.cluster.values_mut()).chain(self.registry.values_mut()) {
            c.flush();
        }
    }
}
