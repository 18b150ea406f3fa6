//! `cluster`: which remote services make several Envoys one gateway. Each part is optional; without
//! it the per-process behaviour stays (one Envoy needs no other server).

use crate::schema::validator::{join, Validator};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitService {
    /// The Envoy cluster (HTTP/2) of the rate limit service.
    pub grpc_cluster: String,
    pub domain: String,
    pub timeout_ms: u64,
    /// Admit when the service cannot answer in time.
    pub fail_open: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeKeys {
    /// The Envoy cluster (HTTP/2) of etcd.
    pub etcd_cluster: String,
    pub key_prefix: String,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterModeSettings {
    pub rate_limit_service: Option<RateLimitService>,
    pub one_time_keys: Option<OneTimeKeys>,
}

pub(crate) fn parse(c: &mut Validator, top: &Map<String, Value>) -> ClusterModeSettings {
    let mut out = ClusterModeSettings::default();
    let Some(v) = top.get("cluster") else { return out };
    let Some(o) = c.object(v, "cluster", &["rateLimitService", "oneTimeKeys"]) else { return out };
    if let Some(v) = o.get("rateLimitService") {
        let p = "cluster.rateLimitService";
        if let Some(r) = c.object(v, p, &["grpcCluster", "domain", "timeoutMs", "failOpen"]) {
            let grpc_cluster = cluster_name(c, r, p, "grpcCluster");
            let domain = c.string(r, p, "domain", false).unwrap_or("cagate").to_string();
            if domain.is_empty() {
                c.err(&join(p, "domain"), "must not be empty");
            }
            let timeout_ms = c.integer(r, p, "timeoutMs", 50, 1, 10_000);
            let fail_open = c.boolean(r, p, "failOpen", false);
            out.rate_limit_service = grpc_cluster.map(|grpc_cluster| RateLimitService { grpc_cluster, domain, timeout_ms, fail_open });
        }
    }
    if let Some(v) = o.get("oneTimeKeys") {
        let p = "cluster.oneTimeKeys";
        if let Some(e) = c.object(v, p, &["etcdCluster", "keyPrefix", "timeoutMs"]) {
            let etcd_cluster = cluster_name(c, e, p, "etcdCluster");
            let key_prefix = c.string(e, p, "keyPrefix", false).unwrap_or("cagate/").to_string();
            let timeout_ms = c.integer(e, p, "timeoutMs", 50, 1, 10_000);
            out.one_time_keys = etcd_cluster.map(|etcd_cluster| OneTimeKeys { etcd_cluster, key_prefix, timeout_ms });
        }
    }
    out
}

fn cluster_name(c: &mut Validator, o: &Map<String, Value>, path: &str, key: &str) -> Option<String> {
    let name = c.string(o, path, key, true)?;
    // At most 120 bytes: the serialized GrpcService that names it stays ASCII (one-byte lengths).
    if name.is_empty() || name.len() > 120 || !name.bytes().all(|b| b.is_ascii_graphic()) {
        c.err(&join(path, key), "must be an Envoy cluster name");
        return None;
    }
    Some(name.to_string())
}

/// The `upstream` argument of a gRPC call: a serialized `GrpcService { envoy_grpc { cluster_name } }`.
/// Envoy first tries to parse the argument as that message, so a bare cluster name that happens to
/// parse as one (some do) would be misread.
pub(crate) fn grpc_upstream(cluster: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(cluster.len() + 6);
    crate::cluster::proto::message(&mut out, 1, |e| crate::cluster::proto::bytes(e, 1, cluster.as_bytes()));
    out
}
