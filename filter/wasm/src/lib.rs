//! The proxy-wasm adapter: gathers the request through host calls, runs cagate-core, and applies the
//! decision (local reply, or identity headers for the backend). No policy lives here.

mod host;
mod http;
mod root;

use cagate_core::config::Gateway;
use cagate_core::nonce::NonceStore;
use cagate_core::plugins::Runtime;
use cagate_core::reqid::RequestIds;
use host::Metrics;
use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;
use std::cell::RefCell;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(root::Root::new()) });
}}

/// Everything a request needs, built once per configuration.
pub(crate) struct State {
    gateway: Gateway,
    runtime: RefCell<Runtime>,
    nonces: NonceStore,
    metrics: RefCell<Metrics>,
    ids: RefCell<RequestIds>,
}
