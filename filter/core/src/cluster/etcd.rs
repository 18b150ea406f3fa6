//! One-time keys in etcd v3: a key is claimed with one `KV.Txn` (compare `create_revision == 0`, then
//! put), so exactly one claim of a key succeeds across every Envoy. Every key carries a lease, shared by
//! all keys that expire in the same minute, so etcd's memory is bounded without a lease per key. The
//! lease id is derived from the key prefix and the minute, so every Envoy uses the same one and whoever
//! grants it first creates it.
//!
//! A claim puts the claiming request's mark (its request id) and, when the key exists, reads it back:
//! a claim is then safe to send again after a timeout, since "exists with my mark" means "my earlier
//! attempt committed", and any other value means another request has it.
//!
//! Field numbers (etcd api/etcdserverpb/rpc.proto, mvccpb/kv.proto): TxnRequest { compare = 1;
//! success = 2; failure = 3 } · Compare { result = 1; target = 2; key = 3; create_revision = 5 } ·
//! RequestOp { request_range = 1; request_put = 2 } · RangeRequest { key = 1 } · PutRequest { key = 1;
//! value = 2; lease = 3 } · TxnResponse { succeeded = 2; responses = 3 } · ResponseOp
//! { response_range = 1 } · RangeResponse { kvs = 2 } · KeyValue { value = 5 } · LeaseGrantRequest
//! { TTL = 1; ID = 2 } · LeaseGrantResponse { ID = 2; TTL = 3; error = 4 }; for batches, RequestOp
//! { request_txn = 4 } · ResponseOp { response_txn = 4 }.
//!
//! Batches: the claims of concurrent requests go as one `KV.Txn` whose success branch holds each claim
//! as a nested transaction (etcd 3.3 and later). The outer one compares nothing, so it always takes
//! its success branch and each nested claim puts or reads back its key on its own: the answer holds,
//! in order, the `TxnResponse` each claim would have had alone.

use crate::auth::replay::{OneTime, OneTimeKind};
use crate::cluster::proto;
use cagate_digest::sha256;

pub(crate) const KV_SERVICE: &str = "etcdserverpb.KV";
pub(crate) const TXN: &str = "Txn";
pub(crate) const LEASE_SERVICE: &str = "etcdserverpb.Lease";
pub(crate) const LEASE_GRANT: &str = "LeaseGrant";

/// Keys expiring in the same bucket share one lease.
pub const LEASE_BUCKET_S: i64 = 60;
/// A lease outlives the last moment a key of its bucket must be kept by this much.
const LEASE_MARGIN_S: i64 = 30;

/// A lease: its id and the TTL to grant it with, from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lease {
    pub id: i64,
    pub ttl_s: i64,
    /// The bucket's end (epoch seconds): every key of the bucket may be forgotten after it.
    pub bucket_end_s: i64,
}

/// The lease for a key that must be kept until `until_ms`.
pub(crate) fn lease_for(prefix: &str, until_ms: i64, now_ms: i64) -> Lease {
    let until_s = until_ms.max(0).div_euclid(1000) + 1;
    let bucket = until_s.div_euclid(LEASE_BUCKET_S) + 1;
    let bucket_end_s = bucket * LEASE_BUCKET_S;
    let d = sha256(&[b"cagate-lease\0", prefix.as_bytes(), &bucket.to_le_bytes()]);
    let mut id_bytes = [0u8; 8];
    id_bytes.copy_from_slice(d.get(..8).unwrap_or(&[1; 8]));
    // etcd lease ids are positive int64s; 0 means "none".
    let id = (i64::from_le_bytes(id_bytes) & i64::MAX).max(1);
    let ttl_s = (bucket_end_s + LEASE_MARGIN_S - now_ms.div_euclid(1000)).max(1);
    Lease { id, ttl_s, bucket_end_s }
}

/// The etcd key of a one-time key: the prefix, its kind (`n` nonce, `j` jti) and its digest (a nonce is
/// the client's and may be anything; the digest keeps keys short and uniform).
pub(crate) fn key(prefix: &str, key: &OneTime) -> Vec<u8> {
    let kind = match key.kind {
        OneTimeKind::Nonce => "n/",
        OneTimeKind::Jti => "j/",
    };
    let mut out = Vec::with_capacity(prefix.len() + 34);
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice(kind.as_bytes());
    for b in key.digest {
        out.extend_from_slice(format!("{b:02x}").as_bytes());
    }
    out
}

/// `KV.Txn`: if the key has never been created, put it with the lease and `mark`; otherwise read it.
pub(crate) fn claim(key: &[u8], lease: i64, mark: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() * 3 + mark.len() + 40);
    proto::message(&mut out, 1, |c| {
        proto::uint(c, 2, 1); // target CREATE (result EQUAL is 0, the default)
        proto::bytes(c, 3, key);
        proto::uint(c, 5, 0); // create_revision == 0: written, it is in a oneof
    });
    proto::message(&mut out, 2, |op| {
        proto::message(op, 2, |put| {
            proto::bytes(put, 1, key);
            proto::bytes(put, 2, mark);
            proto::uint(put, 3, lease as u64);
        });
    });
    proto::message(&mut out, 3, |op| proto::message(op, 1, |range| proto::bytes(range, 1, key)));
    out
}

/// Whether a `TxnResponse` says the key is this claim's: put now, or put by an earlier attempt of the
/// same claim (the value read back is `mark`). `None` if the answer is malformed: a claim that did
/// not succeed always reads the key back (it exists: that is why the comparison failed), so an answer
/// without it (an empty body from something between, not etcd) is no evidence of a replay.
pub(crate) fn claimed(buf: &[u8], mark: &[u8]) -> Option<bool> {
    let txn = proto::fields(buf)?;
    if proto::last_uint(&txn, 2) != 0 {
        return Some(true);
    }
    let op = proto::last_bytes(&txn, 3)?;
    let range = proto::last_bytes(&proto::fields(op)?, 1)?;
    let kv = proto::last_bytes(&proto::fields(range)?, 2)?;
    Some(proto::last_bytes(&proto::fields(kv)?, 5) == Some(mark))
}

/// Several claims (each a `claim` message) as one `KV.Txn`. Their keys must differ: etcd refuses a
/// transaction that puts a key twice.
pub(crate) fn claims<'a>(claims: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for c in claims {
        proto::message(&mut out, 2, |op| proto::bytes(op, 4, c));
    }
    out
}

/// The answers of a `claims` transaction, in order: each the `TxnResponse` of one claim. `None` if
/// the answer is malformed.
pub(crate) fn claim_answers(buf: &[u8]) -> Option<Vec<&[u8]>> {
    let txn = proto::fields(buf)?;
    proto::all_bytes(&txn, 3).into_iter().map(|op| proto::last_bytes(&proto::fields(op)?, 4)).collect()
}

/// `Lease.LeaseGrant` with the client-chosen id.
pub(crate) fn lease_grant(lease: &Lease) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    proto::uint(&mut out, 1, lease.ttl_s as u64);
    proto::uint(&mut out, 2, lease.id as u64);
    out
}

/// Whether a `LeaseGrantResponse` granted the lease. A lease that exists already (another Envoy
/// granted it) is as good; etcd reports that as a gRPC error, which the caller treats the same way.
pub(crate) fn lease_granted(buf: &[u8]) -> bool {
    proto::fields(buf).is_some_and(|f| proto::last_bytes(&f, 4).is_none_or(<[u8]>::is_empty))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_shared_per_bucket_and_outlive_their_keys() {
        let now = 1_700_000_000_000;
        let a = lease_for("cagate/", now + 900_000, now);
        let b = lease_for("cagate/", now + 900_500, now + 10);
        assert_eq!(a.id, b.id, "same minute, same lease");
        assert!(a.id > 0);
        assert!(now / 1000 + a.ttl_s > (now + 900_000) / 1000, "the lease outlives the key's deadline");
        assert!(a.ttl_s <= 900 + LEASE_BUCKET_S + LEASE_MARGIN_S + 1);
        assert_ne!(lease_for("other/", now + 900_000, now).id, a.id, "per prefix");
        assert_ne!(lease_for("cagate/", now + 960_000, now).id, a.id, "next minute, next lease");
    }

    #[test]
    fn messages() {
        let k = key("cagate/", &OneTime::new(OneTimeKind::Nonce, b"app-key", b"nonce-1", 0));
        assert!(k.starts_with(b"cagate/n/") && k.len() == "cagate/n/".len() + 32);
        assert_ne!(k, key("cagate/", &OneTime::new(OneTimeKind::Nonce, b"app-key2", b"nonce-1", 0)));
        let txn = claim(&k, 7, b"mark-1");
        assert!(txn.windows(2).any(|w| w == [0x28, 0x00]), "create_revision = 0 written explicitly");
        assert_eq!(claimed(&[0x10, 0x01], b"mark-1"), Some(true));
        assert_eq!(claimed(&[], b"mark-1"), None, "an empty answer is no evidence of a replay");
        assert_eq!(claimed(&[0x12], b"mark-1"), None);
        // Not put: the key read back (responses[0].response_range.kvs[0].value).
        let read_back = |value: &[u8]| {
            let mut out = Vec::new();
            proto::uint(&mut out, 2, 0);
            proto::message(&mut out, 3, |op| {
                proto::message(op, 1, |range| {
                    proto::message(range, 2, |kv| {
                        proto::bytes(kv, 1, &k);
                        proto::bytes(kv, 5, value);
                    })
                })
            });
            out
        };
        assert_eq!(claimed(&read_back(b"mark-1"), b"mark-1"), Some(true), "an earlier attempt of this claim committed");
        assert_eq!(claimed(&read_back(b"mark-2"), b"mark-1"), Some(false), "another request's");
        assert_eq!(claimed(&read_back(b"1"), b"mark-1"), Some(false), "a key put by an older version");
        assert!(lease_granted(&[0x10, 0x07]));
        // A batch: each claim nested; the answer's nested responses come back in order.
        let batch = claims([txn.as_slice(), txn.as_slice()].into_iter());
        let f = proto::fields(&batch).unwrap();
        assert!(proto::last_bytes(&f, 1).is_none(), "the outer transaction compares nothing");
        let ops = proto::all_bytes(&f, 2);
        assert_eq!(ops.len(), 2);
        assert_eq!(proto::last_bytes(&proto::fields(ops[0]).unwrap(), 4), Some(txn.as_slice()));
        let mut answer = Vec::new();
        proto::uint(&mut answer, 2, 1);
        for inner in [read_back(b"mark-1"), vec![0x10, 0x01]] {
            proto::message(&mut answer, 3, |op| proto::bytes(op, 4, &inner));
        }
        let parts = claim_answers(&answer).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(claimed(parts[0], b"mark-1"), Some(true));
        assert_eq!(claimed(parts[1], b"mark-9"), Some(true), "put now");
        assert!(claim_answers(&[0x1a, 0x02, 0x08, 0x01]).is_none(), "a response that is not a nested txn");
        assert!(!lease_granted(&[0x22, 0x03, b'b', b'a', b'd']));
    }
}
