//! Cluster mode in the adapter: sends the engine's gRPC calls. Which calls, and what their answers
//! mean, is the engine's (`cagate_core::Engine`, `Exchange::on_grpc_answer`).

use cagate_core::{GrpcCall, Lease};
use proxy_wasm::traits::Context;
use std::time::Duration;

/// Sends a call through the SDK (which must register its token with its dispatcher). Its wrapper
/// panics on a status other than Ok, ParseFailure and InternalFailure. Envoy's `Context::grpcCall`
/// answers one other, BadArgument, when it cannot create a gRPC client for the `GrpcService`; it
/// creates one without checking the cluster, and ours holds only an `envoy_grpc` cluster name
/// (validated when the configuration loads, at most 120 bytes, so the serialized message is ASCII),
/// for which creating the client does not fail.
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
