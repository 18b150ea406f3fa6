//! The Envoy dynamic-module adapter (`envoy.filters.http.dynamic_modules`): the same core and request
//! engine as the Wasm filter, run natively. Envoy's hooks become the engine's events (`http`), a
//! configuration is compiled once on the main thread (`config`), each worker keeps its own engine
//! (`worker`) over one process-wide store with Envoy's shared-data semantics (`store`). All FFI is in
//! `ffi`. No policy lives here.

mod config;
// Public only so that the exported hooks count as reachable (Envoy finds them by symbol name).
pub mod ffi;
mod http;
mod logger;
mod metrics;
mod store;
mod tick;
mod worker;
