//! One filter configuration (what the Wasm build's root context is): compiled once on Envoy's main
//! thread, refused as a whole when invalid, with the same messages. Its main-thread tick fetches the
//! remote JWKS and the app registry through HTTP callouts; the workers pick up what it shares (see
//! `worker`).

use crate::ffi::{CalloutAnswer, ConfigHandle};
use crate::metrics::{Metrics, Pending};
use crate::store;
use crate::tick::Ticker;
use cagate_core::jwt::jwks_fetch;
use cagate_core::{app_registry, compile, Clock, Gateway, PluginKind, Problem, RegistryInstall, SharedStore};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What every worker of a configuration shares.
pub(crate) struct Shared {
    /// Tells this configuration's per-worker state apart from another's.
    pub(crate) id: u64,
    pub(crate) handle: ConfigHandle,
    /// The static configuration, which every registry document is merged into.
    pub(crate) base: Gateway,
    pub(crate) metrics: Metrics,
    /// The newest registry document merged (its shared version and the merged configuration).
    pub(crate) registry: Mutex<Option<(u32, Arc<Gateway>)>>,
    pub(crate) registry_version: AtomicU32,
    /// False once Envoy destroyed the configuration (workers then drop their state for it).
    pub(crate) alive: AtomicBool,
    /// Every worker's counts, flushed to Envoy by the main thread's tick.
    pub(crate) pending: Mutex<Vec<Arc<Mutex<Pending>>>>,
}

/// Main-thread state: fetches in flight.
#[derive(Default)]
struct MainThread {
    registry_fetch: Option<u64>,
    /// Remote JWKS fetches in flight: callout id -> plugin index.
    jwks_fetches: Vec<(u64, usize)>,
    configured_ms: i64,
}

pub(crate) struct Config {
    pub(crate) shared: Arc<Shared>,
    main: Mutex<MainThread>,
    ticker: Option<Ticker>,
}

/// How often the main thread refreshes the registry's age and starts due fetches.
pub(crate) const TICK: std::time::Duration = std::time::Duration::from_millis(500);

/// Where the configuration that fetched records when the registry last answered well (a new
/// document, or 304): the age is reported from it (the same key as the Wasm build's).
const GOOD_KEY: &str = "cagate.registry.good";

pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        (now_nanos() / 1_000_000) as i64
    }

    fn now_us(&self) -> i64 {
        (now_nanos() / 1_000) as i64
    }
}

/// The kernel's coarse wall clock (updated on the scheduler tick, a few milliseconds at most old;
/// no timestamp counter read): for checks with tolerances of seconds or minutes (timestamps, nonces,
/// grants, JWT times), as the Wasm build's per-tick clock, but far fresher. Rate limits, the circuit
/// breaker and the filter's own time read `SystemClock`.
pub(crate) struct CoarseClock;

impl Clock for CoarseClock {
    fn now_ms(&self) -> i64 {
        crate::ffi::coarse_now_ms().unwrap_or_else(|| SystemClock.now_ms())
    }
}

pub(crate) fn now_nanos() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

impl Config {
    /// Compiles the configuration; `None` (Envoy refuses it) with every problem logged.
    pub(crate) fn new(handle: ConfigHandle, _name: &[u8], doc: &[u8]) -> Option<Config> {
        let gateway = match compile(doc) {
            Ok(g) => g,
            Err(problems) => {
                log::error!("cagate: configuration refused, {} problem(s)", problems.len());
                for p in &problems {
                    log::error!("cagate: config: {p}");
                }
                return None;
            }
        };
        for w in &gateway.warnings {
            log::warn!("cagate: config: {w}");
        }
        static IDS: AtomicU64 = AtomicU64::new(1);
        let metrics = Metrics::define(handle, gateway.registry.is_some());
        log::info!("cagate: configured {} apps, {} apis, {} stages (native)", gateway.app_count(), gateway.apis.len(), gateway.stages.len());
        let shared = Arc::new(Shared {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            handle,
            base: gateway,
            metrics,
            registry: Mutex::new(None),
            registry_version: AtomicU32::new(0),
            alive: AtomicBool::new(true),
            pending: Mutex::new(Vec::new()),
        });
        let config = Config {
            shared,
            main: Mutex::new(MainThread { configured_ms: SystemClock.now_ms(), ..Default::default() }),
            ticker: handle.scheduler().map(|s| Ticker::start(s, TICK)),
        };
        if config.ticker.is_none() {
            log::warn!("cagate: no main-thread scheduler: remote JWKS and the app registry are not refreshed");
        }
        // A document shared before this configuration (a reload) is installed at once.
        config.install_shared_document();
        Some(config)
    }

    /// Envoy destroys the configuration: the tick stops before its scheduler goes, then the last
    /// counts are handed over (Envoy destroys a configuration after its last stream, and its metrics
    /// after this hook).
    pub(crate) fn shutdown(mut self) {
        self.shared.alive.store(false, Ordering::Release);
        if let Some(t) = self.ticker.take() {
            t.stop();
        }
        self.flush_counts();
    }

    /// The main thread's tick: the registry's age, the newest shared document, due fetches.
    pub(crate) fn tick(&self) {
        self.flush_counts();
        let Ok(mut main) = self.main.lock() else { return };
        let now = SystemClock.now_ms();
        let shared = &self.shared;
        if shared.base.registry.is_some() {
            let good = store::global().get(GOOD_KEY).and_then(|(v, _)| <[u8; 8]>::try_from(v.get(..8)?).ok()).map(i64::from_le_bytes);
            let age = ((now - good.unwrap_or(main.configured_ms)).max(0) / 1000) as u64;
            shared.metrics.set(shared.handle, shared.metrics.registry_age, age);
            self.install_shared_document();
            self.maybe_fetch_registry(&mut main, now);
        }
        self.fetch_due_jwks(&mut main, now);
    }

    /// Hands every worker's counts to Envoy (a worker waits only while its own tallies are read).
    fn flush_counts(&self) {
        let shared = &self.shared;
        let Ok(all) = shared.pending.lock() else { return };
        for worker in all.iter() {
            if let Ok(mut p) = worker.lock() {
                p.flush(&shared.metrics, shared.handle);
            }
        }
    }

    /// Merges a newer shared registry document (fetched by this or another configuration).
    fn install_shared_document(&self) {
        let shared = &self.shared;
        if shared.base.registry.is_none() {
            return;
        }
        let installed = shared.registry_version.load(Ordering::Acquire);
        let Some((version, doc)) = app_registry::load_if_changed(store::global(), installed) else { return };
        match shared.base.with_registry(&doc) {
            Ok(gw) => {
                log::info!("cagate: app registry: version {version} installed, {} apps", gw.app_count());
                self.publish_merged(version, gw);
            }
            Err(problems) => refused(&problems),
        }
    }

    fn publish_merged(&self, version: u32, gw: Gateway) {
        let shared = &self.shared;
        shared.metrics.set(shared.handle, shared.metrics.registry_version, gw.registry_version.unwrap_or(0));
        shared.metrics.set(shared.handle, shared.metrics.registry_apps, gw.app_count() as u64);
        if let Ok(mut r) = shared.registry.lock() {
            *r = Some((version, Arc::new(gw)));
        }
        shared.registry_version.store(version, Ordering::Release);
    }

    fn maybe_fetch_registry(&self, main: &mut MainThread, now: i64) {
        let shared = &self.shared;
        let Some(settings) = &shared.base.registry else { return };
        let store = store::global();
        if main.registry_fetch.is_some() || !app_registry::should_fetch(store, settings, now) {
            return;
        }
        let etag = app_registry::etag(store);
        let mut headers =
            vec![(":method", "GET"), (":path", settings.path.as_str()), (":authority", settings.authority.as_str()), ("accept", "application/json")];
        if let Some(tag) = &etag {
            headers.push(("if-none-match", tag.as_str()));
        }
        match shared.handle.callout(&settings.cluster, &headers, settings.timeout_ms) {
            Some(id) => main.registry_fetch = Some(id),
            None => {
                log::warn!("cagate: app registry: cannot fetch through cluster {}; keeping the last good document", settings.cluster);
                self.fetched("failed", now);
                app_registry::touch(store, now);
                app_registry::release(store);
            }
        }
    }

    fn fetch_due_jwks(&self, main: &mut MainThread, now: i64) {
        let shared = &self.shared;
        for (idx, plugin) in shared.base.plugins.iter().enumerate() {
            let PluginKind::Jwt(cfg) = &plugin.kind else { continue };
            let Some(r) = &cfg.remote else { continue };
            if main.jwks_fetches.iter().any(|(_, i)| *i == idx) || !jwks_fetch::should_fetch(store::global(), &plugin.name, r, now) {
                continue;
            }
            let headers = [(":method", "GET"), (":path", r.path.as_str()), (":authority", r.authority.as_str()), ("accept", "application/json")];
            match shared.handle.callout(&r.cluster, &headers, r.timeout_ms) {
                Some(id) => main.jwks_fetches.push((id, idx)),
                None => {
                    // Counted as a failed fetch: a cluster Envoy lacks must trip the alert too.
                    shared.metrics.jwks(shared.handle, &plugin.name, "failed");
                    log::warn!("cagate: plugin {}: cannot fetch JWKS through cluster {}", plugin.name, r.cluster)
                }
            }
        }
    }

    /// A callout's answer (main thread).
    pub(crate) fn callout_done(&self, id: u64, answer: CalloutAnswer) {
        let Ok(mut main) = self.main.lock() else { return };
        let now = SystemClock.now_ms();
        if main.registry_fetch == Some(id) {
            main.registry_fetch = None;
            drop(main);
            self.registry_answered(&answer, now);
            return;
        }
        let Some(pos) = main.jwks_fetches.iter().position(|(t, _)| *t == id) else { return };
        let (_, idx) = main.jwks_fetches.swap_remove(pos);
        drop(main);
        let shared = &self.shared;
        let Some(plugin) = shared.base.plugins.get(idx) else { return };
        let name = plugin.name.as_str();
        let status = answer.header(":status");
        if status != Some(b"200") {
            shared.metrics.jwks(shared.handle, name, "failed");
            let shown = status.map_or_else(|| "no response".to_string(), |s| String::from_utf8_lossy(s).into_owned());
            log::warn!("cagate: plugin {name}: JWKS fetch failed ({shown}); keeping the last good keys");
            return;
        }
        // Shared: every worker installs the keys on its next refresh (`worker::Worker::refresh`).
        match jwks_fetch::publish(store::global(), name, now, &answer.body) {
            Ok(keys) => {
                shared.metrics.jwks(shared.handle, name, "ok");
                log::info!("cagate: plugin {name}: JWKS loaded, {} key(s)", keys.len());
            }
            Err(e) => {
                shared.metrics.jwks(shared.handle, name, "refused");
                log::warn!("cagate: plugin {name}: JWKS refused ({e}); keeping the last good keys");
            }
        }
    }

    /// The registry fetch's answer: a new document is validated as a whole (on the main thread, so no
    /// request waits for it), merged and shared, or refused with its problems logged.
    fn registry_answered(&self, answer: &CalloutAnswer, now: i64) {
        let store = store::global();
        let status = answer.header(":status").unwrap_or_default();
        let result = match status {
            b"304" => "unchanged",
            b"200" => {
                let etag = answer.header("etag").map(|t| String::from_utf8_lossy(t).into_owned());
                match self.merge(answer.body.clone()) {
                    Ok(gw) => {
                        let published = app_registry::publish(store, &answer.body, etag.as_deref(), now);
                        app_registry::release(store);
                        self.fetched(if published.is_ok() { "changed" } else { "failed" }, now);
                        if let Err(e) = published {
                            log::warn!("cagate: app registry: {e}; keeping the last good document");
                            return;
                        }
                        let version = app_registry::load_if_changed(store, 0).map_or(0, |(v, _)| v);
                        log::info!("cagate: app registry: version {version} installed, {} apps", gw.app_count());
                        self.publish_merged(version, gw);
                        return;
                    }
                    Err(problems) => {
                        refused(&problems);
                        "invalid"
                    }
                }
            }
            other => {
                let shown = if other.is_empty() { "no response".to_string() } else { String::from_utf8_lossy(other).into_owned() };
                log::warn!("cagate: app registry: fetch failed ({shown}); keeping the last good document");
                "failed"
            }
        };
        app_registry::touch(store, now);
        app_registry::release(store);
        self.fetched(result, now);
    }

    fn merge(&self, doc: Vec<u8>) -> Result<Gateway, Vec<Problem>> {
        let mut install = RegistryInstall::start(&self.shared.base, doc)?;
        while !install.step(1000) {}
        install.finish()
    }

    /// A fetch's result, counted; a good one restarts the registry's age.
    fn fetched(&self, result: &'static str, now_ms: i64) {
        self.shared.metrics.registry_fetch(self.shared.handle, result);
        if result == "changed" || result == "unchanged" {
            let _ = store::global().set(GOOD_KEY, &now_ms.to_le_bytes(), 0);
        }
    }
}

fn refused(problems: &[Problem]) {
    log::warn!("cagate: app registry: document refused, {} problem(s); keeping the last good document", problems.len());
    for p in problems.iter().take(50) {
        log::warn!("cagate: app registry: {p}");
    }
}
