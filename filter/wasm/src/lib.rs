//! The proxy-wasm adapter: gathers the request through host calls, runs cagate-core, and applies the
//! decision (local reply, or identity headers for the backend). No policy lives here.

mod cluster;
mod host;
mod hostcall;
mod http;
mod registry;
mod root;

use cagate_core::Gateway;
use cagate_core::NonceStore;
use cagate_core::RequestIds;
use cagate_core::Runtime;
use host::Metrics;
use proxy_wasm::traits::RootContext;
use std::cell::RefCell;
use std::rc::Rc;

proxy_wasm::main! {{
    // Our logger and panic hook, not the SDK's: those unwrap the host's answer to a log call.
    if log::set_logger(&hostcall::HostLogger).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
    std::panic::set_hook(Box::new(|info| hostcall::log(5, &info.to_string())));
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(root::Root::new()) });
}}

/// Everything a request needs, built once per configuration (and again, around the same runtime
/// pieces, when a newer app registry document is installed). A request keeps the state it started
/// with.
pub(crate) struct State {
    gateway: Gateway,
    runtime: Rc<RefCell<Runtime>>,
    nonces: NonceStore,
    metrics: Rc<RefCell<Metrics>>,
    ids: Rc<RefCell<RequestIds>>,
    /// Cluster mode: the etcd leases this VM knows exist.
    leases: Rc<RefCell<cluster::LeaseBook>>,
}

impl State {
    /// The same runtime pieces (caches, stats, request ids, leases) around another configuration.
    pub(crate) fn with_gateway(&self, gateway: Gateway) -> State {
        State {
            gateway,
            runtime: self.runtime.clone(),
            nonces: self.nonces.clone(),
            metrics: self.metrics.clone(),
            ids: self.ids.clone(),
            leases: self.leases.clone(),
        }
    }
}
