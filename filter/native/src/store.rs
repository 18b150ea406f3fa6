//! Shared data for every worker of the process, with Envoy's shared-data semantics (what the Wasm
//! build gets from the host): a value carries a CAS token; `set` with a non-zero token fails if the
//! value changed since; token 0, or a key not there yet, writes unconditionally. Sharded by key so
//! that workers rarely wait on each other.

use cagate_core::{SetError, SharedStore};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

const SHARDS: usize = 32;

/// Values with their CAS tokens.
type Shard = Mutex<HashMap<String, (Vec<u8>, u32)>>;

pub(crate) struct Store {
    shards: Vec<Shard>,
    /// The last token handed out (process-wide, so a token never repeats across keys).
    tokens: AtomicU32,
    hasher: std::collections::hash_map::RandomState,
}

/// One store for the process: like a Wasm VM id's shared data, it outlives a reconfiguration (nonces
/// seen and traffic counters stay).
pub(crate) fn global() -> &'static Store {
    static STORE: OnceLock<Store> = OnceLock::new();
    STORE.get_or_init(Store::new)
}

impl Store {
    pub(crate) fn new() -> Store {
        Store { shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(), tokens: AtomicU32::new(0), hasher: Default::default() }
    }

    fn shard(&self, key: &str) -> &Shard {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    fn next_token(&self) -> u32 {
        loop {
            let t = self.tokens.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
            if t != 0 {
                return t;
            }
        }
    }
}

impl SharedStore for Store {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        let shard = self.shard(key).lock().ok()?;
        shard.get(key).cloned()
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), SetError> {
        let mut shard = self.shard(key).lock().map_err(|_| SetError::Failed)?;
        match shard.get_mut(key) {
            Some(entry) => {
                if cas != 0 && cas != entry.1 {
                    return Err(SetError::CasMismatch);
                }
                entry.0.clear();
                entry.0.extend_from_slice(value);
                entry.1 = self.next_token();
            }
            None => {
                let token = self.next_token();
                shard.insert(key.to_string(), (value.to_vec(), token));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn cas_semantics_like_envoy() {
        let s = Store::new();
        assert_eq!(s.get("k"), None);
        assert!(s.set("k", b"a", 12345).is_ok(), "an absent key is written whatever the token");
        let (v, cas) = s.get("k").unwrap_or_default();
        assert_eq!(v, b"a");
        assert!(s.set("k", b"b", cas).is_ok());
        assert_eq!(s.set("k", b"c", cas), Err(SetError::CasMismatch));
        assert!(s.set("k", b"d", 0).is_ok(), "token 0 writes unconditionally");
        assert_eq!(s.get("k").map(|(v, _)| v), Some(b"d".to_vec()));
    }

    /// Increments by compare-and-swap from several threads lose no count (what traffic counters and
    /// the nonce store rely on).
    #[test]
    fn concurrent_cas_increments_are_exact() {
        let s = Arc::new(Store::new());
        assert!(s.set("n", &0u64.to_le_bytes(), 0).is_ok());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..5000 {
                        loop {
                            let (v, cas) = s.get("n").unwrap_or_default();
                            let n = u64::from_le_bytes(v.try_into().unwrap_or([0; 8]));
                            if s.set("n", &(n + 1).to_le_bytes(), cas).is_ok() {
                                break;
                            }
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().is_ok());
        }
        let (v, _) = s.get("n").unwrap_or_default();
        assert_eq!(u64::from_le_bytes(v.try_into().unwrap_or([0; 8])), 20_000);
    }
}
