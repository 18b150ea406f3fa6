//! Stats through Envoy's metrics callbacks. Envoy freezes definitions once a configuration is
//! created, so every metric is defined up front, and what the Wasm build puts in a stat's name (the
//! refusal code, the API and stage, the plugin, …) is a label here, named as the Wasm build's tag.
//! With Envoy's runtime feature `dynamic_modules_strip_custom_stat_prefix` on (see
//! `envoy/envoy-native.yaml`), Prometheus shows the same names and tags as for the Wasm build
//! (`cagate_refused{code="A400IK"}`, `cagate_requests{cagate_api=…}`), so one dashboard and one set of
//! alerts serve both builds; Envoy's own flat names differ (`dynamicmodulescustom.cagate.refused.code.A400IK`).

use crate::ffi::{ConfigHandle, FilterHandle, MetricKind};
use cagate_core::{stat_safe, Stat, Stats};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

/// Metric ids of one configuration (`None`: Envoy refused the definition; nothing is counted then).
pub(crate) struct Metrics {
    allowed: Option<usize>,
    refused_total: Option<usize>,
    nonce_full: Option<usize>,
    breaker_opened: Option<usize>,
    breaker_refused: Option<usize>,
    refused: Option<usize>,
    traffic_admitted: Option<usize>,
    traffic_throttled: Option<usize>,
    requests: Option<usize>,
    app_requests: Option<usize>,
    backend_failures: Option<usize>,
    would_refuse: Option<usize>,
    registry_fetches: Option<usize>,
    jwks: Option<usize>,
    cluster: Option<usize>,
    filter_us: Option<usize>,
    caching_hits: Option<usize>,
    caching_misses: Option<usize>,
    caching_stored: Option<usize>,
    pub(crate) registry_version: Option<usize>,
    pub(crate) registry_apps: Option<usize>,
    pub(crate) registry_age: Option<usize>,
}

impl Metrics {
    /// Defines every metric (only during the configuration's creation). The registry's age exists
    /// only where a registry is configured, as in the Wasm build.
    pub(crate) fn define(c: ConfigHandle, with_registry: bool) -> Metrics {
        let counter = |name: &str, labels: &[&str]| c.define(MetricKind::Counter, name, labels);
        let gauge = |name: &str| c.define(MetricKind::Gauge, name, &[]);
        Metrics {
            allowed: counter("cagate.requests_allowed", &[]),
            refused_total: counter("cagate.requests_refused", &[]),
            nonce_full: counter("cagate.nonce_store_full", &[]),
            breaker_opened: counter("cagate.breaker_opened", &[]),
            breaker_refused: counter("cagate.breaker_refused", &[]),
            refused: counter("cagate.refused", &["code"]),
            traffic_admitted: counter("cagate.traffic.admitted", &["plugin", "dimension"]),
            traffic_throttled: counter("cagate.traffic.throttled", &["plugin", "dimension"]),
            requests: counter("cagate.requests", &["cagate_api", "cagate_stage", "cagate_code"]),
            app_requests: counter("cagate.app_requests", &["cagate_app", "cagate_code"]),
            backend_failures: counter("cagate.backend_failures", &["cagate_code"]),
            would_refuse: counter("cagate.report_only_would_refuse", &["code"]),
            registry_fetches: counter("cagate.registry.fetches", &["cagate_result"]),
            jwks: counter("cagate.jwks", &["cagate_plugin", "cagate_result"]),
            cluster: counter("cagate.cluster", &["cagate_service", "cagate_result"]),
            filter_us: c.define(MetricKind::Histogram, "cagate.filter_us", &[]),
            caching_hits: counter("cagate.caching_hits", &[]),
            caching_misses: counter("cagate.caching_misses", &[]),
            caching_stored: counter("cagate.caching_stored", &[]),
            registry_version: gauge("cagate.registry.version"),
            registry_apps: gauge("cagate.registry.apps"),
            registry_age: if with_registry { gauge("cagate.registry.age_seconds") } else { None },
        }
    }

    /// App registry fetches by result (main thread).
    pub(crate) fn registry_fetch(&self, c: ConfigHandle, result: &str) {
        if let Some(id) = self.registry_fetches {
            c.increment(id, &[result], 1);
        }
    }

    pub(crate) fn jwks(&self, c: ConfigHandle, plugin: &str, result: &str) {
        if let Some(id) = self.jwks {
            c.increment(id, &[&stat_safe(plugin), result], 1);
        }
    }

    pub(crate) fn set(&self, c: ConfigHandle, gauge: Option<usize>, value: u64) {
        if let Some(id) = gauge {
            c.set_gauge(id, value);
        }
    }
}

/// Counts of one worker since the last flush. Envoy looks a labelled counter up by name and labels on
/// every increment through the ABI, which cost about as much as the rest of the adapter's per-request
/// work: so, as the Wasm adapter does, a request only adds to its worker's tallies, and the
/// configuration's main-thread tick hands each tally to Envoy once (`flush`). Label values are
/// rendered once per distinct key, not per request.
#[derive(Default)]
pub(crate) struct Pending {
    allowed: u64,
    refused_total: u64,
    nonce_full: u64,
    breaker_opened: u64,
    breaker_refused: u64,
    caching_hits: u64,
    caching_misses: u64,
    caching_stored: u64,
    refused: Codes,
    backend_failures: Codes,
    would_refuse: Codes,
    /// Cluster-mode calls and verdicts by (service, result): a handful of static pairs.
    cluster: Vec<((&'static str, &'static str), u64)>,
    requests: Tallies<RequestKey>,
    app_requests: Tallies<AppKey>,
    traffic: Tallies<TrafficKey>,
}

/// Keys are the module's own indices and static codes, never a client's bytes: a fast
/// multiply-rotate hash (no flooding to resist) instead of SipHash.
type Tallies<K> = HashMap<K, Tally, BuildHasherDefault<FastHasher>>;

#[derive(Default)]
pub(crate) struct FastHasher(u64);

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Per refusal code (few distinct codes: a scan beats hashing).
type Codes = Vec<(&'static str, u64)>;

/// Indices are only meaningful within one compiled configuration: `generation` (the registry
/// version the request's engine was built from) keeps two configurations' names apart.
type RequestKey = (u32, Option<u32>, Option<u32>, &'static str);
type AppKey = (u32, u32, &'static str);
type TrafficKey = (u32, u32, &'static str, bool);

struct Tally {
    labels: Vec<String>,
    count: u64,
}

fn add_code(codes: &mut Codes, code: &'static str) {
    match codes.iter_mut().find(|(c, _)| *c == code) {
        Some((_, n)) => *n += 1,
        None => codes.push((code, 1)),
    }
}

fn add_labelled<K: std::hash::Hash + Eq>(map: &mut Tallies<K>, key: K, labels: impl FnOnce() -> Vec<String>) {
    map.entry(key).or_insert_with(|| Tally { labels: labels(), count: 0 }).count += 1;
}

impl Pending {
    /// Hands every tally to Envoy (main thread) and starts over. Keys not seen since the previous
    /// flush are dropped, so the maps hold only what is in use.
    pub(crate) fn flush(&mut self, m: &Metrics, c: ConfigHandle) {
        let plain = [
            (m.allowed, &mut self.allowed),
            (m.refused_total, &mut self.refused_total),
            (m.nonce_full, &mut self.nonce_full),
            (m.breaker_opened, &mut self.breaker_opened),
            (m.breaker_refused, &mut self.breaker_refused),
            (m.caching_hits, &mut self.caching_hits),
            (m.caching_misses, &mut self.caching_misses),
            (m.caching_stored, &mut self.caching_stored),
        ];
        for (id, n) in plain {
            if let (Some(id), true) = (id, *n > 0) {
                c.increment(id, &[], *n);
            }
            *n = 0;
        }
        for (id, codes) in
            [(m.refused, &mut self.refused), (m.backend_failures, &mut self.backend_failures), (m.would_refuse, &mut self.would_refuse)]
        {
            for (code, n) in codes.drain(..) {
                if let Some(id) = id {
                    c.increment(id, &[code], n);
                }
            }
        }
        for ((service, result), n) in self.cluster.drain(..) {
            if let Some(id) = m.cluster {
                c.increment(id, &[service, result], n);
            }
        }
        flush_tallies(&mut self.requests, m.requests, c);
        flush_tallies(&mut self.app_requests, m.app_requests, c);
        // Admitted and throttled share a map; the key's last field tells them apart.
        self.traffic.retain(|_, t| t.count > 0);
        for (key, t) in self.traffic.iter_mut() {
            let id = if key.3 { m.traffic_admitted } else { m.traffic_throttled };
            if let Some(id) = id {
                let labels: Vec<&str> = t.labels.iter().map(String::as_str).collect();
                c.increment(id, &labels, t.count);
            }
            t.count = 0;
        }
    }
}

fn flush_tallies<K>(map: &mut Tallies<K>, id: Option<usize>, c: ConfigHandle) {
    map.retain(|_, t| t.count > 0);
    for t in map.values_mut() {
        if let Some(id) = id {
            let labels: Vec<&str> = t.labels.iter().map(String::as_str).collect();
            c.increment(id, &labels, t.count);
        }
        t.count = 0;
    }
}

/// A request's stat events into its worker's tallies; the filter's time straight to Envoy's
/// histogram (a sample cannot be summed).
pub(crate) struct Sink<'a> {
    pub(crate) metrics: &'a Metrics,
    pub(crate) pending: &'a Mutex<Pending>,
    /// The registry version of the request's engine (see `RequestKey`).
    pub(crate) generation: u32,
    pub(crate) stream: FilterHandle,
    /// The appIds this worker counts by app (at most `max_apps`, as a Wasm VM does; by appId, which a
    /// registry install does not renumber).
    pub(crate) apps: &'a RefCell<HashSet<Box<str>>>,
}

impl Sink<'_> {
    fn app_counted(&self, app_id: &str, max_apps: usize) -> bool {
        let mut apps = self.apps.borrow_mut();
        if apps.contains(app_id) {
            return true;
        }
        if apps.len() >= max_apps {
            return false;
        }
        apps.insert(app_id.into());
        true
    }
}

impl Stats for Sink<'_> {
    fn record(&self, stat: Stat<'_>) {
        if let Stat::FilterMicros(us) = stat {
            if let Some(id) = self.metrics.filter_us {
                self.stream.record(id, us);
            }
            return;
        }
        // Only the main thread's flush competes for this lock, twice a second.
        let Ok(mut p) = self.pending.lock() else { return };
        let g = self.generation;
        match stat {
            Stat::Allowed => p.allowed += 1,
            Stat::Refused(code) => {
                p.refused_total += 1;
                add_code(&mut p.refused, code);
            }
            Stat::Traffic { plugin, name, dim, admitted } => {
                add_labelled(&mut p.traffic, (g, plugin.index() as u32, dim, admitted), || vec![stat_safe(name), dim.to_string()]);
            }
            Stat::ClusterMode(service, result) => match p.cluster.iter_mut().find(|(k, _)| *k == (service, result)) {
                Some((_, n)) => *n += 1,
                None => p.cluster.push(((service, result), 1)),
            },
            Stat::BreakerOpened => p.breaker_opened += 1,
            Stat::BreakerRefused => p.breaker_refused += 1,
            Stat::NonceStoreFull => p.nonce_full += 1,
            Stat::Request { api, stage, app, max_apps, code } => {
                let key = (g, api.map(|(a, _)| a.index() as u32), stage.map(|(s, _)| s.index() as u32), code);
                add_labelled(&mut p.requests, key, || {
                    vec![api.map_or(String::new(), |(_, n)| stat_safe(n)), stage.map_or(String::new(), |(_, n)| stat_safe(n)), code.to_string()]
                });
                if let Some((idx, id)) = app {
                    if self.app_counted(id, max_apps) {
                        add_labelled(&mut p.app_requests, (g, idx.0, code), || vec![stat_safe(id), code.to_string()]);
                    }
                }
            }
            Stat::FilterMicros(_) => {}
            Stat::BackendFailure(code) => add_code(&mut p.backend_failures, code),
            Stat::WouldRefuse(code) => add_code(&mut p.would_refuse, code),
            Stat::Caching("hit") => p.caching_hits += 1,
            Stat::Caching("miss") => p.caching_misses += 1,
            Stat::Caching(_) => p.caching_stored += 1,
        }
    }
}
