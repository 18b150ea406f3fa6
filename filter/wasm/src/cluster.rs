//! Cluster mode in the adapter: sends the core's remote checks over gRPC (in parallel, one round trip
//! when the lease is known), collects the answers, and hands them back to the core for verdicts.
//! Leases of one-time keys are granted ahead by the root context's tick, so a request rarely waits
//! for one.

use crate::hostcall;
use cagate_core::{GrpcCall, Lease, OneTime};
use proxy_wasm::traits::Context;
use std::time::Duration;

/// gRPC status codes the adapter tells apart.
const GRPC_NOT_FOUND: u32 = 5;
const GRPC_FAILED_PRECONDITION: u32 = 9;
const GRPC_UNAVAILABLE: u32 = 14;

/// Leases this VM knows exist: (id, end of its bucket in epoch seconds). A handful at a time.
#[derive(Default)]
pub(crate) struct LeaseBook {
    known: Vec<(i64, i64)>,
}

impl LeaseBook {
    pub(crate) fn knows(&self, lease: &Lease) -> bool {
        self.known.iter().any(|(id, _)| *id == lease.id)
    }

    pub(crate) fn add(&mut self, lease: &Lease, now_s: i64) {
        self.known.retain(|(_, end)| *end >= now_s);
        if !self.knows(lease) {
            if self.known.len() >= 32 {
                self.known.remove(0);
            }
            self.known.push((lease.id, lease.bucket_end_s));
        }
    }

    pub(crate) fn forget(&mut self, lease: &Lease) {
        self.known.retain(|(id, _)| *id != lease.id);
    }
}

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

/// How a gRPC answer came back.
pub(crate) enum Answer {
    Ok(Vec<u8>),
    Timeout,
    Failed(u32),
}

impl Answer {
    pub(crate) fn read(status: u32, size: usize) -> Answer {
        if status == 0 {
            return Answer::Ok(hostcall::buffer(hostcall::Buffer::GrpcReceive, 0, size));
        }
        let message = hostcall::grpc_status_message();
        if status == GRPC_UNAVAILABLE && message.contains("timeout") {
            Answer::Timeout
        } else {
            Answer::Failed(status)
        }
    }

    pub(crate) fn body(&self) -> Option<&[u8]> {
        match self {
            Answer::Ok(b) => Some(b),
            _ => None,
        }
    }

    /// etcd says the lease exists already (another Envoy or worker granted it first).
    pub(crate) fn lease_exists(&self) -> bool {
        matches!(self, Answer::Failed(GRPC_FAILED_PRECONDITION))
    }

    /// etcd says the lease a claim named does not exist (expired, or never granted).
    pub(crate) fn lease_missing(&self) -> bool {
        matches!(self, Answer::Failed(GRPC_NOT_FOUND))
    }
}

/// One call of a request waiting for its answer.
pub(crate) enum Waiting {
    RateLimit,
    Grant { key: OneTime, lease: Lease },
    Claim { key: OneTime, lease: Lease, retried: bool },
}

/// What the root context keeps of a lease grant in flight.
pub(crate) struct Granting {
    pub(crate) token: u32,
    pub(crate) lease: Lease,
}
