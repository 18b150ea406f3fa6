//! Stats through Envoy's metrics callbacks. Envoy freezes definitions once a configuration is
//! created, so every metric is defined up front, and what the Wasm build puts in a stat's name (the
//! refusal code, the API and stage, the plugin, …) is a label here, named as the Wasm build's tag.
//! With Envoy's runtime feature `dynamic_modules_strip_custom_stat_prefix` on (see
//! `envoy/envoy-native.yaml`), Prometheus shows the same names and tags as for the Wasm build
//! (`cagate_refused{code="A400IK"}`, `cagate_requests{cagate_api=…}`), so one dashboard and one set of
//! alerts serve both builds; Envoy's own flat names differ (`dynamicmodulescustom.cagate.refused.code.A400IK`).

use crate::ffi::{ConfigHandle, FilterHandle, MetricKind};
use cagate_core::{Stat, Stats};
use std::cell::RefCell;
use std::collections::HashSet;

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
    filter_us: Option<usize>,
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
            filter_us: c.define(MetricKind::Histogram, "cagate.filter_us", &[]),
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

/// A request's stat events into Envoy's counters, through its stream.
pub(crate) struct Sink<'a> {
    pub(crate) metrics: &'a Metrics,
    pub(crate) stream: FilterHandle,
    /// The apps this worker counts by app (at most `max_apps`, as a Wasm VM does).
    pub(crate) apps: &'a RefCell<HashSet<u32>>,
}

impl Sink<'_> {
    fn inc(&self, id: Option<usize>, labels: &[&str]) {
        if let Some(id) = id {
            self.stream.increment(id, labels, 1);
        }
    }

    fn app_counted(&self, app: u32, max_apps: usize) -> bool {
        let mut apps = self.apps.borrow_mut();
        if apps.contains(&app) {
            return true;
        }
        if apps.len() >= max_apps {
            return false;
        }
        apps.insert(app);
        true
    }
}

impl Stats for Sink<'_> {
    fn record(&self, stat: Stat<'_>) {
        let m = self.metrics;
        match stat {
            Stat::Allowed => self.inc(m.allowed, &[]),
            Stat::Refused(code) => {
                self.inc(m.refused_total, &[]);
                self.inc(m.refused, &[code]);
            }
            Stat::Traffic { name, dim, admitted, .. } => {
                let id = if admitted { m.traffic_admitted } else { m.traffic_throttled };
                self.inc(id, &[name, dim]);
            }
            // Cluster mode is refused at configuration time in this build.
            Stat::ClusterMode(..) => {}
            Stat::BreakerOpened => self.inc(m.breaker_opened, &[]),
            Stat::BreakerRefused => self.inc(m.breaker_refused, &[]),
            Stat::NonceStoreFull => self.inc(m.nonce_full, &[]),
            Stat::Request { api, stage, app, max_apps, code } => {
                let api = api.map_or(String::new(), |(_, n)| stat_safe(n));
                let stage = stage.map_or(String::new(), |(_, n)| stat_safe(n));
                self.inc(m.requests, &[&api, &stage, code]);
                if let Some((idx, id)) = app {
                    if self.app_counted(idx.0, max_apps) {
                        self.inc(m.app_requests, &[&stat_safe(id), code]);
                    }
                }
            }
            Stat::FilterMicros(us) => {
                if let Some(id) = m.filter_us {
                    self.stream.record(id, us);
                }
            }
            Stat::BackendFailure(code) => self.inc(m.backend_failures, &[code]),
            Stat::WouldRefuse(code) => self.inc(m.would_refuse, &[code]),
        }
    }
}

/// A label value as the Wasm build's stat name segment: anything outside `[A-Za-z0-9_-]` becomes `_`.
pub(crate) fn stat_safe(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::stat_safe;

    #[test]
    fn label_values_match_the_wasm_name_segments() {
        assert_eq!(stat_safe("orders.v2/用户"), "orders_v2___");
        assert_eq!(stat_safe("per-app_1"), "per-app_1");
    }
}
