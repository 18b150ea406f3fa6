//! The app registry in the adapter: one VM fetches the document (a lease in shared data, with
//! `If-None-Match`), validates it against the static configuration and shares it; every VM installs a
//! newer shared version on its tick by building a new `State` around the merged configuration.
//! Requests in flight keep the state they started with.

use crate::host::{HostClock, HostStore};
use crate::hostcall::{self, Buffer, Map};
use crate::State;
use cagate_core::{app_registry, Clock, Gateway, RegistryInstall, SharedStore};
use proxy_wasm::traits::Context;
use std::rc::Rc;

/// The registry as one VM sees it.
#[derive(Default)]
pub(crate) struct Registry {
    /// The static configuration, which every document is merged into.
    pub(crate) base: Option<Rc<Gateway>>,
    /// The shared document version installed here (0: none yet).
    installed: u32,
    /// The fetch in flight, if this VM is fetching.
    fetch: Option<u32>,
    /// A document being merged, a batch per slice of a tick.
    installing: Option<Installing>,
}

struct Installing {
    install: RegistryInstall,
    /// The shared version it is (`None`: fetched here, shared once it proves valid, with its ETag).
    version: Option<u32>,
    etag: Option<String>,
    started_ns: u64,
}

/// How long one tick may spend merging a document before it lets requests run again.
const SLICE_NS: u64 = 5_000_000;
const BATCH: usize = 200;

impl Registry {
    pub(crate) fn reset(&mut self, base: Rc<Gateway>) {
        *self = Registry { base: Some(base), ..Default::default() };
    }

    /// Hands back the fetch lease of a fetch in flight (the VM is going away).
    pub(crate) fn release_fetch(&mut self) {
        if self.fetch.take().is_some() {
            app_registry::release(&HostStore);
        }
    }

    /// Whether a document is being merged (the root ticks faster meanwhile).
    pub(crate) fn busy(&self) -> bool {
        self.installing.is_some()
    }

    /// Starts a fetch when one is due and this VM wins the lease.
    pub(crate) fn maybe_fetch(&mut self, ctx: &dyn Context, state: &State) {
        let Some(settings) = self.base.as_ref().and_then(|b| b.registry.clone()) else { return };
        if self.fetch.is_some() || self.busy() || !app_registry::should_fetch(&HostStore, &settings, HostClock.now_ms()) {
            return;
        }
        let etag = app_registry::etag(&HostStore);
        let mut headers =
            vec![(":method", "GET"), (":path", settings.path.as_str()), (":authority", settings.authority.as_str()), ("accept", "application/json")];
        if let Some(tag) = &etag {
            headers.push(("if-none-match", tag.as_str()));
        }
        // The SDK's wrapper registers the token with its dispatcher; it panics only on a status other
        // than Ok, BadArgument and InternalFailure, which Envoy's httpCall never returns.
        match ctx.dispatch_http_call(&settings.cluster, headers, None, vec![], std::time::Duration::from_millis(settings.timeout_ms)) {
            Ok(token) => self.fetch = Some(token),
            Err(e) => {
                log::warn!("cagate: app registry: cannot fetch through cluster {} ({e:?}); keeping the last good document", settings.cluster);
                state.metrics.borrow_mut().registry_fetch("failed");
                app_registry::touch(&HostStore, HostClock.now_ms());
            }
        }
    }

    /// The fetch's answer: a new document is validated as a whole and shared, or refused with its
    /// problems logged (paths, never a secret). Returns false when the token is not the registry's.
    pub(crate) fn on_response(&mut self, state: &State, token: u32, body_size: usize) -> bool {
        if self.fetch != Some(token) {
            return false;
        }
        self.fetch = None;
        let now = HostClock.now_ms();
        let status = hostcall::header(Map::HttpCallResponse, ":status").unwrap_or_default();
        let result = match status.as_slice() {
            b"304" => "unchanged",
            b"200" => {
                // One byte past the largest document accepted: enough for `start` to refuse a larger one.
                let body = hostcall::buffer(Buffer::HttpCallResponseBody, 0, body_size.min(app_registry::MAX_DOCUMENT_BYTES + 1));
                let etag = hostcall::header(Map::HttpCallResponse, "etag").map(|t| String::from_utf8_lossy(&t).into_owned());
                match self.base.as_ref().map(|b| RegistryInstall::start(b, body)) {
                    // Validated in steps on the coming ticks, then shared (see `step`).
                    Some(Ok(install)) => {
                        self.installing = Some(Installing { install, version: None, etag, started_ns: hostcall::now_nanos() });
                        return true;
                    }
                    Some(Err(problems)) => {
                        refused(&problems);
                        "invalid"
                    }
                    None => "failed",
                }
            }
            other => {
                let shown = if other.is_empty() { "no response".to_string() } else { String::from_utf8_lossy(other).into_owned() };
                log::warn!("cagate: app registry: fetch failed ({shown}); keeping the last good document");
                "failed"
            }
        };
        if result != "changed" {
            app_registry::touch(&HostStore, now);
        }
        app_registry::release(&HostStore);
        fetched(state, result, now);
        true
    }

    /// At configuration time: the shared document, merged at once (a reload must not leave the
    /// registry's apps refused while a document is merged in slices).
    pub(crate) fn install_now(&mut self, state: &State) -> Option<Gateway> {
        let base = self.base.clone()?;
        base.registry.as_ref()?;
        let (version, doc) = app_registry::load_if_changed(&HostStore, 0)?;
        self.installed = version;
        match base.with_registry(&doc) {
            Ok(gw) => {
                log::info!("cagate: app registry: version {version} installed at configuration, {} apps", gw.app_count());
                state.metrics.borrow_mut().registry_installed(gw.registry_version.unwrap_or(0), gw.app_count());
                Some(gw)
            }
            Err(problems) => {
                refused(&problems);
                None
            }
        }
    }

    /// One slice of work on the tick: merge some more of a document being installed, or start on a
    /// newer shared one. Returns the merged configuration once a document is complete and good.
    pub(crate) fn step(&mut self, state: &State) -> Option<Gateway> {
        let base = self.base.clone()?;
        base.registry.as_ref()?;
        let Some(mut job) = self.installing.take() else {
            let (version, doc) = app_registry::load_if_changed(&HostStore, self.installed)?;
            self.installed = version;
            match RegistryInstall::start(&base, doc) {
                Ok(install) => self.installing = Some(Installing { install, version: Some(version), etag: None, started_ns: hostcall::now_nanos() }),
                Err(problems) => refused(&problems),
            }
            return None;
        };
        let deadline = hostcall::now_nanos().saturating_add(SLICE_NS);
        while !job.install.step(BATCH) {
            if hostcall::now_nanos() >= deadline {
                self.installing = Some(job);
                return None;
            }
        }
        let doc = job.install.document().to_vec();
        let ms = hostcall::now_nanos().saturating_sub(job.started_ns) / 1_000_000;
        match job.install.finish() {
            Ok(gw) => {
                let version = match job.version {
                    Some(v) => v,
                    // Fetched here and now known good: shared with every VM.
                    None => {
                        let result = app_registry::publish(&HostStore, &doc, job.etag.as_deref(), HostClock.now_ms());
                        app_registry::release(&HostStore);
                        fetched(state, if result.is_ok() { "changed" } else { "failed" }, HostClock.now_ms());
                        if let Err(e) = result {
                            log::warn!("cagate: app registry: {e}; keeping the last good document");
                            return None;
                        }
                        app_registry::load_if_changed(&HostStore, 0).map_or(0, |(v, _)| v)
                    }
                };
                self.installed = version;
                log::info!("cagate: app registry: version {version} installed, {} apps, merged in {ms} ms (in slices)", gw.app_count());
                state.metrics.borrow_mut().registry_installed(gw.registry_version.unwrap_or(0), gw.app_count());
                Some(gw)
            }
            Err(problems) => {
                refused(&problems);
                if job.version.is_none() {
                    state.metrics.borrow_mut().registry_fetch("invalid");
                    app_registry::touch(&HostStore, HostClock.now_ms());
                    app_registry::release(&HostStore);
                }
                None
            }
        }
    }
}

fn refused(problems: &[cagate_core::Problem]) {
    log::warn!("cagate: app registry: document refused, {} problem(s); keeping the last good document", problems.len());
    for p in problems.iter().take(50) {
        log::warn!("cagate: app registry: {p}");
    }
}

/// Where the VM that fetched records when the registry last answered well (a new document, or 304):
/// every VM reports the age from it.
const GOOD_KEY: &str = "cagate.registry.good";

/// A fetch's result, counted; a good one restarts the registry's age.
fn fetched(state: &State, result: &'static str, now_ms: i64) {
    state.metrics.borrow_mut().registry_fetch(result);
    if result == "changed" || result == "unchanged" {
        let _ = HostStore.set(GOOD_KEY, &now_ms.to_le_bytes(), 0);
    }
}

/// Seconds since the registry last answered well (since `since_ms`, the configuration, before that).
pub(crate) fn age_seconds(now_ms: i64, since_ms: i64) -> u64 {
    let good = HostStore.get(GOOD_KEY).and_then(|(v, _)| <[u8; 8]>::try_from(v.get(..8)?).ok()).map(i64::from_le_bytes);
    ((now_ms - good.unwrap_or(since_ms)).max(0) / 1000) as u64
}
