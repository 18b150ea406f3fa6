//! The proxy-wasm adapter: gathers the request through host calls, runs cagate-core, and applies the
//! decision (local reply, or identity headers for the backend). No policy lives here.

mod cluster;
mod host;
mod hostcall;
mod http;
mod root;

use cagate_core::Gateway;
use cagate_core::NonceStore;
use cagate_core::Runtime;
use cagate_core::RequestIds;
use host::Metrics;
use proxy_wasm::traits::RootContext;
use std::cell::RefCell;

proxy_wasm::main! {{
    // Our logger and panic hook, not the SDK's: those unwrap the host's answer to a log call.
    if log::set_logger(&hostcall::HostLogger).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
    std::panic::set_hook(Box::new(|info| hostcall::log(5, &info.to_string())));
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(root::Root::new()) });
}}

/// Everything a request needs, built once per configuration.
pub(crate) struct State {
    gateway: Gateway,
    runtime: RefCell<Runtime>,
    nonces: NonceStore,
    metrics: RefCell<Metrics>,
    ids: RefCell<RequestIds>,
    /// Cluster mode: the etcd leases this VM knows exist.
    leases: RefCell<cluster::LeaseBook>,
}
