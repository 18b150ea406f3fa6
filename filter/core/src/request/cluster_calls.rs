//! Cluster mode's checks of an admitted request, as messages to send and verdicts on the
//! answers: the rate-limit call and the claims of one-time keys. The adapter sends them in parallel,
//! only after every local check passed (a forged request never costs a cluster call), and admits the
//! request when every verdict is Ok.

use crate::auth::replay::{OneTime, OneTimeKind};
use crate::cluster::etcd::{self, Lease};
use crate::cluster::rls;
use crate::cluster::settings::grpc_upstream;
use crate::config::model::Gateway;
use crate::contract::errors;
use crate::contract::refusal::Refusal;
use crate::plugins::binding::PluginKind;
use crate::plugins::traffic_control::Quota;
use crate::request::model::Admission;

/// A gRPC call to make: the serialized `GrpcService` naming the Envoy cluster, the service and method,
/// the message, the timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcCall {
    /// The Envoy cluster, by name (a host that makes the call as plain HTTP/2 needs only this).
    pub cluster: String,
    /// The same as a serialized `GrpcService` (proxy-wasm's gRPC calls take it whole).
    pub upstream: Vec<u8>,
    pub service: &'static str,
    pub method: &'static str,
    pub message: Vec<u8>,
    pub timeout_ms: u64,
}

/// The rate-limit call of an admission, if the rate limit service counts its trafficControl.
pub(crate) fn rate_limit_call(gw: &Gateway, a: &Admission) -> Option<GrpcCall> {
    let rls_settings = gw.cluster_mode.rate_limit_service.as_ref()?;
    let call = a.rate_limit.as_ref()?;
    Some(GrpcCall {
        cluster: rls_settings.grpc_cluster.clone(),
        upstream: grpc_upstream(&rls_settings.grpc_cluster),
        service: rls::SERVICE,
        method: rls::METHOD,
        message: call.message.clone(),
        timeout_ms: rls_settings.timeout_ms,
    })
}

/// The verdict on the rate limit service's answer (`None`: the call failed or timed out). Ok carries
/// the quota for the `RateLimit-*` headers when the plugin asks for them.
pub(crate) fn rate_limit_verdict(gw: &Gateway, a: &Admission, answer: Option<&[u8]>) -> Result<Option<Quota>, Refusal> {
    let (Some(settings), Some(call)) = (gw.cluster_mode.rate_limit_service.as_ref(), a.rate_limit.as_ref()) else { return Ok(None) };
    let Some(PluginKind::Traffic(cfg)) = gw.plugins.get(call.plugin as usize).map(|p| &p.kind) else { return Ok(None) };
    let quota = rls::verdict(cfg, call, answer, settings.fail_open).map_err(|r| Refusal { app: a.identity.app, ..r })?;
    Ok(if cfg.rate_limit_headers { quota } else { None })
}

/// The lease a one-time key is put with.
pub(crate) fn lease_of(gw: &Gateway, key: &OneTime, now_ms: i64) -> Option<Lease> {
    let settings = gw.cluster_mode.one_time_keys.as_ref()?;
    Some(etcd::lease_for(&settings.key_prefix, key.until_ms, now_ms))
}

/// `Lease.LeaseGrant` for a lease.
pub(crate) fn lease_call(gw: &Gateway, lease: &Lease) -> Option<GrpcCall> {
    let settings = gw.cluster_mode.one_time_keys.as_ref()?;
    Some(GrpcCall {
        cluster: settings.etcd_cluster.clone(),
        upstream: grpc_upstream(&settings.etcd_cluster),
        service: etcd::LEASE_SERVICE,
        method: etcd::LEASE_GRANT,
        message: etcd::lease_grant(lease),
        timeout_ms: settings.timeout_ms,
    })
}

/// Whether a `LeaseGrant` answer leaves the lease usable.
pub(crate) fn lease_granted(answer: &[u8]) -> bool {
    etcd::lease_granted(answer)
}

/// The claim of a one-time key (`KV.Txn`) with its lease, marked as the claiming request's.
pub(crate) fn claim_call(gw: &Gateway, key: &OneTime, lease: &Lease, mark: &[u8]) -> Option<GrpcCall> {
    let settings = gw.cluster_mode.one_time_keys.as_ref()?;
    Some(GrpcCall {
        cluster: settings.etcd_cluster.clone(),
        upstream: grpc_upstream(&settings.etcd_cluster),
        service: etcd::KV_SERVICE,
        method: etcd::TXN,
        message: etcd::claim(&etcd::key(&settings.key_prefix, key), lease.id, mark),
        timeout_ms: settings.timeout_ms,
    })
}

/// A claim as a batch member: the etcd key it puts, and its message (as `claim_call` sends it alone).
pub(crate) fn claim_member(gw: &Gateway, key: &OneTime, lease: &Lease, mark: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let settings = gw.cluster_mode.one_time_keys.as_ref()?;
    let k = etcd::key(&settings.key_prefix, key);
    let message = etcd::claim(&k, lease.id, mark);
    Some((k, message))
}

/// The `KV.Txn` of a batch of claims (`etcd::claims`), given `left_ms` before its first member's
/// deadline: each etcd call gets half a chain's time at most, as a claim sent alone.
pub(crate) fn claims_call(gw: &Gateway, message: Vec<u8>, left_ms: i64) -> Option<GrpcCall> {
    let settings = gw.cluster_mode.one_time_keys.as_ref()?;
    Some(GrpcCall {
        cluster: settings.etcd_cluster.clone(),
        upstream: grpc_upstream(&settings.etcd_cluster),
        service: etcd::KV_SERVICE,
        method: etcd::TXN,
        message,
        timeout_ms: (settings.timeout_ms / 2).max(1).min(left_ms.max(1) as u64),
    })
}

/// An admission's rate-limit descriptors as a batch member (its call's message without the domain),
/// and how many there are.
pub(crate) fn rate_limit_member<'a>(gw: &Gateway, a: &'a Admission) -> Option<(&'a [u8], usize)> {
    let settings = gw.cluster_mode.rate_limit_service.as_ref()?;
    let call = a.rate_limit.as_ref()?;
    Some((rls::descriptors(&settings.domain, &call.message)?, call.dimensions.len()))
}

/// The call of a batch of rate-limit descriptors (`build` gets the domain), given `left_ms` before its
/// first member's deadline.
pub(crate) fn rate_limit_batch(gw: &Gateway, build: impl FnOnce(&str) -> Vec<u8>, left_ms: i64) -> Option<GrpcCall> {
    let settings = gw.cluster_mode.rate_limit_service.as_ref()?;
    Some(GrpcCall {
        cluster: settings.grpc_cluster.clone(),
        upstream: grpc_upstream(&settings.grpc_cluster),
        service: rls::SERVICE,
        method: rls::METHOD,
        message: build(&settings.domain),
        timeout_ms: settings.timeout_ms.min(left_ms.max(1) as u64),
    })
}

/// The verdict on a claim's answer (`None`: the call failed or timed out: a replay must never pass, so
/// the request is refused).
pub(crate) fn claim_verdict(key: &OneTime, answer: Option<&[u8]>, mark: &[u8]) -> Result<(), Refusal> {
    match answer.and_then(|a| etcd::claimed(a, mark)) {
        Some(true) => Ok(()),
        Some(false) => Err(match key.kind {
            OneTimeKind::Nonce => Refusal::new(&errors::S403NU, &[], "nonce replayed on another envoy"),
            OneTimeKind::Jti => Refusal::new(&errors::A403SV, &[], "jti replayed on another envoy"),
        }),
        None => {
            let mut r = Refusal::new(&errors::X503BZ, &[], "one-time key store unavailable");
            r.headers.push(("retry-after".into(), "1".to_string()));
            Err(r)
        }
    }
}
