//! Cluster mode in the adapter: sends the engine's gRPC calls. Which calls, and what their answers
//! mean, is the engine's (`cagate_core::Engine`, `Exchange::on_grpc_answer`).

use cagate_core::{GrpcCall, Lease};
use proxy_wasm::traits::Context;
use std::time::Duration;

/// Sends a call through the SDK (which must register its token with its dispatcher). Its wrapper
/// panics only on a status other than Ok, ParseFailure and InternalFailure, and Envoy's
/// `Context::grpcCall` returns no other (memory errors aside, impossible with our slices); the
/// upstream is the serialized `GrpcService`, ASCII by construction (cluster names ≤ 120 bytes).
pub(crate) fn send(ctx: &dyn Context, call: &GrpcCall) -> Option<u32> {
    let upstream = std::str::from_utf8(&call.upstream).ok()?;
    match ctx.dispatch_grpc_call(upstream, call.service, call.method, vec![], Some(&call.message), Duration::from_millis(call.timeout_ms)) {
        Ok(token) => Some(token),
        Err(e) => {
            log::warn!("cagate: cluster: cannot call {}/{} ({e:?})", call.service, call.method);
            None
        }
    }
}

/// What the root context keeps of a lease grant in flight.
pub(crate) struct Granting {
    pub(crate) token: u32,
    pub(crate) lease: Lease,
}
