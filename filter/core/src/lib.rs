//! cagate-core: Alibaba Cloud API Gateway's request authentication as pure functions and types.
//! No proxy-wasm here: the adapter gathers the request, calls `gate`, and applies the decision.
//! Host services (clock, shared data) come in through the traits of `store`.

pub mod access;
pub mod backend;
pub mod basic;
pub mod breaker;
mod check;
pub mod conditions;
pub mod config;
pub mod cors;
pub mod errors;
pub mod gate;
pub mod headers;
pub mod ipcontrol;
pub mod jwt;
pub mod mapping;
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
pub mod upstream;
pub mod validate;
pub mod vars;
