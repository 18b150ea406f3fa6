//! cagate-core: Alibaba Cloud API Gateway's request authentication as pure functions and types.
//! No proxy-wasm here: the adapter gathers the request, calls `gate`, and applies the decision.
//! Host services (clock, shared data) come in through the traits of `store`.

mod check;
pub mod config;
pub mod errors;
pub mod gate;
pub mod headers;
pub mod ipcontrol;
pub mod jwt;
pub mod nonce;
pub mod params;
pub mod plugins;
pub mod reply;
pub mod reqid;
pub mod router;
pub mod sign;
pub mod store;
pub mod timefmt;
pub mod traffic;
