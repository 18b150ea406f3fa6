//! Host services for the core, through proxy-wasm host calls: the clock, shared data, stats, the raw
//! header map and randomness.

use crate::hostcall::{self, Map, CAS_MISMATCH};
use cagate_core::{stat_safe, Clock, SetError, SharedStore, Stat, Stats, Stream};
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
            Stat::Traffic { plugin, name, dim, admitted } => m.traffic(plugin.0, name, dim, admitted),
            Stat::ClusterMode(service, what) => m.cluster_mode(service, what),
            Stat::BreakerOpened => m.breaker_opened(),
            Stat::BreakerRefused => m.breaker_refused(),
            Stat::NonceStoreFull => m.nonce_store_full(),
            Stat::Request { api, stage, app, max_apps, code } => {
                let (api_idx, api_name) = api.map_or((u32::MAX, ""), |(i, n)| (i.0, n));
                let (stage_idx, stage_name) = stage.map_or((u32::MAX, ""), |(i, n)| (i.0, n));
                m.request((api_idx, stage_idx), (api_name, stage_name), code);
                if let Some((_, id)) = app {
                    m.app_request(id, code, max_apps);
                }
            }
            Stat::FilterMicros(us) => m.filter_micros(us),
            Stat::BackendFailure(code) => m.backend_failure(code),
            Stat::WouldRefuse(code) => m.would_refuse(code),
            Stat::Caching(what) => m.caching(what),
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
    /// Every request once, by API, stage and the code the client got (`OK`: the backend answered).
    requests: HashMap<(u32, u32, &'static str), Counter>,
    /// By app and code, when the configuration asks for it; at most `max_apps` apps. Keyed by the
    /// appId, not the app's index: a registry install renumbers the apps, and these counters outlive it.
    app_requests: HashMap<Box<str>, HashMap<&'static str, Counter>>,
    backend_failures: HashMap<&'static str, Counter>,
    /// Report-only: requests a check would have refused, by code.
    would_refuse: HashMap<&'static str, Counter>,
    /// caching: hits, misses and answers stored (defined on first use).
    caching: HashMap<&'static str, Counter>,
    jwks: HashMap<(u32, &'static str), Counter>,
    filter_us: Option<u32>,
    registry_age: Option<u32>,
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
            requests: HashMap::new(),
            app_requests: HashMap::new(),
            backend_failures: HashMap::new(),
            would_refuse: HashMap::new(),
            caching: HashMap::new(),
            jwks: HashMap::new(),
            filter_us: hostcall::define_histogram("cagate.filter_us"),
            registry_age: None,
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
        self.traffic
            .entry((plugin_idx, dim, admitted))
            .or_insert_with(|| Counter::new(&format!("cagate.traffic.{}.{dim}.{what}", stat_safe(plugin))))
            .pending += 1;
    }

    /// Cluster mode: `cagate.cluster.<service>.<what>` (calls, retries, over_limit, replayed, errors, timeouts,
    /// fail_open, refused_unavailable).
    pub(crate) fn cluster_mode(&mut self, service: &'static str, what: &'static str) {
        self.cluster_mode_add(service, what, 1);
    }

    /// As `cluster_mode`, by `n` (`batched`: the checks a batch carried).
    pub(crate) fn cluster_mode_add(&mut self, service: &'static str, what: &'static str, n: usize) {
        self.cluster.entry((service, what)).or_insert_with(|| Counter::new(&format!("cagate.cluster.{service}.{what}"))).pending +=
            i64::try_from(n).unwrap_or(i64::MAX);
    }

    /// App registry fetches by result: changed, unchanged, failed, invalid.
    pub(crate) fn registry_fetch(&mut self, result: &'static str) {
        self.registry.entry(result).or_insert_with(|| Counter::new(&format!("cagate.registry.fetches.{result}"))).pending += 1;
    }

    /// The installed registry document's own version (0: none given) and its app count (gauges, set
    /// at once).
    pub(crate) fn registry_installed(&mut self, version: u64, apps: usize) {
        if let Some(id) = self.registry_version {
            let _ = hostcall::record(id, version);
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

    /// One request, counted once with the code the client got. Names are made stat-safe (a tag
    /// regex splits them on dots).
    pub(crate) fn request(&mut self, key: (u32, u32), names: (&str, &str), code: &'static str) {
        self.requests
            .entry((key.0, key.1, code))
            .or_insert_with(|| Counter::new(&format!("cagate.requests.{}.{}.{code}", stat_safe(names.0), stat_safe(names.1))))
            .pending += 1;
    }

    /// One request of an app; a new app past `max_apps` distinct ones is not counted (its requests
    /// still are, by API).
    pub(crate) fn app_request(&mut self, app_id: &str, code: &'static str, max_apps: usize) {
        let count = |codes: &mut HashMap<&'static str, Counter>| {
            codes.entry(code).or_insert_with(|| Counter::new(&format!("cagate.app_requests.{}.{code}", stat_safe(app_id)))).pending += 1;
        };
        if let Some(codes) = self.app_requests.get_mut(app_id) {
            return count(codes);
        }
        if self.app_requests.len() < max_apps {
            count(self.app_requests.entry(app_id.into()).or_default());
        }
    }

    pub(crate) fn backend_failure(&mut self, code: &'static str) {
        self.backend_failures.entry(code).or_insert_with(|| Counter::new(&format!("cagate.backend_failures.{code}"))).pending += 1;
    }

    pub(crate) fn would_refuse(&mut self, code: &'static str) {
        self.would_refuse.entry(code).or_insert_with(|| Counter::new(&format!("cagate.report_only_would_refuse.{code}"))).pending += 1;
    }

    /// caching: `cagate.caching_hits`, `cagate.caching_misses`, `cagate.caching_stored` (flat names, as
    /// the native build's).
    pub(crate) fn caching(&mut self, what: &'static str) {
        let name = match what {
            "hit" => "cagate.caching_hits",
            "miss" => "cagate.caching_misses",
            _ => "cagate.caching_stored",
        };
        self.caching.entry(name).or_insert_with(|| Counter::new(name)).pending += 1;
    }

    /// The filter's own time for one request (a histogram sample: one host call).
    pub(crate) fn filter_micros(&mut self, us: u64) {
        if let Some(id) = self.filter_us {
            let _ = hostcall::record(id, us);
        }
    }

    /// JWKS fetch results per plugin: ok, failed, refused.
    pub(crate) fn jwks(&mut self, plugin_idx: u32, plugin: &str, result: &'static str) {
        self.jwks.entry((plugin_idx, result)).or_insert_with(|| Counter::new(&format!("cagate.jwks.{}.{result}", stat_safe(plugin)))).pending += 1;
    }

    /// Seconds since the app registry last answered well (defined only where a registry is
    /// configured: an Envoy without one exports no age).
    pub(crate) fn registry_age(&mut self, seconds: u64) {
        if self.registry_age.is_none() {
            self.registry_age = hostcall::define_gauge("cagate.registry.age_seconds");
        }
        if let Some(id) = self.registry_age {
            let _ = hostcall::record(id, seconds);
        }
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
        let all = self.by_code.values_mut().chain(self.traffic.values_mut()).chain(self.cluster.values_mut()).chain(self.registry.values_mut());
        let more = self
            .requests
            .values_mut()
            .chain(self.app_requests.values_mut().flat_map(HashMap::values_mut))
            .chain(self.backend_failures.values_mut())
            .chain(self.would_refuse.values_mut())
            .chain(self.caching.values_mut());
        for c in all.chain(more).chain(self.jwks.values_mut()) {
            c.flush();
        }
    }
}
