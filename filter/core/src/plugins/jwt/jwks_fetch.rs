//! Remote JWKS (`jwksUri`): fetched by the adapter's root contexts through an Envoy cluster, shared by
//! all workers through shared data. One VM at a time fetches (a lease taken by compare-and-swap);
//! every VM installs the newest good key set it finds. A failed fetch keeps the last good keys.
//! Keys per plugin are fixed (`cagate.jwks.<plugin>` and its `.lease`): the store stays bounded.

use super::jwk::{parse_key_set, Key};
use crate::host::SharedStore;
use crate::schema::validator::{join, Validator};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksFetch {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub refresh_ms: i64,
    pub timeout_ms: u64,
}

pub(crate) fn parse(c: &mut Validator, o: &Map<String, Value>, path: &str) -> Option<JwksFetch> {
    let uri = c.string(o, path, "jwksUri", false);
    let cluster = c.string(o, path, "jwksCluster", false);
    let refresh_s = c.integer(o, path, "jwksRefreshSeconds", 300, 1, 86_400);
    let timeout_ms = c.integer(o, path, "jwksTimeoutMs", 5000, 100, 60_000);
    match (uri, cluster) {
        (None, None) => None,
        (Some(_), None) => {
            c.err(&join(path, "jwksCluster"), "is required with jwksUri: the Envoy cluster that reaches the JWKS server");
            None
        }
        (None, Some(_)) => {
            c.err(&join(path, "jwksUri"), "is required with jwksCluster");
            None
        }
        (Some(uri), Some(cluster)) => {
            let (authority, p) = match crate::wire::url::http_target(uri) {
                Ok(t) => t,
                Err(e) => {
                    c.err(&join(path, "jwksUri"), e);
                    return None;
                }
            };
            Some(JwksFetch {
                cluster: cluster.to_string(),
                authority: authority.to_string(),
                path: p.to_string(),
                refresh_ms: refresh_s as i64 * 1000,
                timeout_ms,
            })
        }
    }
}

fn data_key(plugin: &str) -> String {
    format!("cagate.jwks.{plugin}")
}

fn lease_key(plugin: &str) -> String {
    format!("cagate.jwks.{plugin}.lease")
}

/// True if this VM should fetch now: no fresh key set is shared, and it won the fetch lease.
pub fn should_fetch(store: &dyn SharedStore, plugin: &str, remote: &JwksFetch, now_ms: i64) -> bool {
    crate::host::fetch_due(store, &data_key(plugin), &lease_key(plugin), remote.refresh_ms, remote.timeout_ms, now_ms)
}

/// Hands back this VM's fetch lease (its fetch will never be answered): the next VM's tick fetches.
pub fn release(store: &dyn SharedStore, plugin: &str) {
    let key = lease_key(plugin);
    if let Some((_, cas)) = store.get(&key) {
        let _ = store.set(&key, &0i64.to_le_bytes(), cas);
    }
}

/// The largest JWKS accepted: a key set holds at most 64 keys of a few KB each. A larger answer is
/// refused, and the adapters read no more than one byte past this, so a misbehaving key server
/// cannot exhaust a VM's memory.
pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// Validates a fetched JWKS; if good, shares it with every VM and returns its keys.
pub fn publish(store: &dyn SharedStore, plugin: &str, now_ms: i64, body: &[u8]) -> Result<Vec<Key>, String> {
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(format!("the JWKS is larger than {MAX_DOCUMENT_BYTES} bytes"));
    }
    let v: Value = serde_json::from_slice(body).map_err(|_| "the JWKS is not JSON".to_string())?;
    let keys = parse_key_set(&v)?;
    if keys.is_empty() {
        return Err("the JWKS has no key".into());
    }
    let mut value = now_ms.to_le_bytes().to_vec();
    value.extend_from_slice(body);
    store.set(&data_key(plugin), &value, 0).map_err(|_| "shared data refused the JWKS".to_string())?;
    // The next fetch is due a refresh period from now, not when this fetch's lease lapses. A failed
    // fetch keeps its lease: the lapse is the retry's back-off.
    release(store, plugin);
    Ok(keys)
}

/// The shared key set if it changed since `last_cas` (`Some((cas, keys))`), for a VM to install.
pub fn load_if_changed(store: &dyn SharedStore, plugin: &str, last_cas: u32) -> Option<(u32, Vec<Key>)> {
    let (v, cas) = store.get(&data_key(plugin))?;
    if cas == last_cas || v.len() <= 8 {
        return None;
    }
    let body: Value = serde_json::from_slice(v.get(8..)?).ok()?;
    parse_key_set(&body).ok().map(|k| (cas, k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::MemoryStore;

    const JWKS: &[u8] = br#"{"keys":[{"kty":"oct","kid":"k1","alg":"HS256","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTMyYg"}]}"#;

    #[test]
    fn a_good_fetch_frees_the_lease_and_a_lost_one_is_handed_back() {
        let store = MemoryStore::new();
        let remote = JwksFetch { cluster: "jwks".into(), authority: "a".into(), path: "/k".into(), refresh_ms: 1_000, timeout_ms: 1_000 };
        let t = 1_700_000_000_000;
        assert!(should_fetch(&store, "p", &remote, t), "the first VM takes the lease");
        assert!(!should_fetch(&store, "p", &remote, t + 1), "the others wait");
        assert!(publish(&store, "p", t + 10, JWKS).is_ok());
        assert!(!should_fetch(&store, "p", &remote, t + 500), "fresh for the refresh period");
        assert!(should_fetch(&store, "p", &remote, t + 1_100), "due a refresh period after the fetch, not when its lease would lapse");
        // That fetch is never answered (its VM went away): handed back, the next tick of any VM fetches.
        assert!(!should_fetch(&store, "p", &remote, t + 1_200));
        release(&store, "p");
        assert!(should_fetch(&store, "p", &remote, t + 1_300));
        // A failed fetch keeps its lease: the retry waits for it to lapse.
        assert!(!should_fetch(&store, "p", &remote, t + 5_000));
        assert!(should_fetch(&store, "p", &remote, t + 1_300 + 6_001));
    }

    #[test]
    fn a_key_set_larger_than_the_limit_is_refused_and_not_shared() {
        let store = MemoryStore::new();
        // Whitespace keeps it valid JSON: only its size refuses it.
        let padded = |len: usize| {
            let mut d = JWKS.to_vec();
            d.resize(len, b' ');
            d
        };
        assert_eq!(publish(&store, "p", 1, &padded(MAX_DOCUMENT_BYTES + 1)).err().as_deref(), Some("the JWKS is larger than 1048576 bytes"));
        assert!(load_if_changed(&store, "p", 0).is_none(), "nothing shared");
        assert!(publish(&store, "p", 1, &padded(MAX_DOCUMENT_BYTES)).is_ok(), "at the limit");
    }
}
