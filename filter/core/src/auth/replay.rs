//! Replay protection across all of one Envoy's worker threads.
//!
//! Envoy's shared data never frees a key, so a nonce is never a key: nonces are hashed into a fixed
//! set of shard keys (`cagate.nonce.<n>`), each value a packed list of (fingerprint, expiry) entries.
//! Every write prunes expired entries and goes through compare-and-swap, retried a bounded number of
//! times. A shard full of live nonces refuses the new one rather than forgetting an old one: a
//! forgotten nonce could be replayed.

use crate::host::{le_u32, le_u64, SetError, SharedStore};
use std::hash::Hasher;

/// Nonce store geometry: `shards` shared-data keys of at most `per_shard` live entries each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonceStoreConfig {
    pub shards: u32,
    pub per_shard: u32,
}

/// Shards of every one-time-key store, whatever its capacity: the shard of a key never depends on
/// the configuration, so a reload that changes a capacity still finds every live key.
pub(crate) const ONE_TIME_KEY_SHARDS: u32 = 4096;

impl NonceStoreConfig {
    /// Room for at least `capacity` live keys. Keys fall into shards at random (a binomial count per
    /// shard), so each shard gets its mean plus four standard deviations plus a little: the first
    /// full shard then comes after the capacity is reached, not at 80-90 % of it.
    pub fn for_capacity(capacity: u64) -> Self {
        let shards = ONE_TIME_KEY_SHARDS;
        let mean = capacity.div_ceil(shards as u64);
        let spread = (4.0 * (mean as f64).sqrt()).ceil() as u64;
        let per_shard = (mean + spread + 8).min(u32::MAX as u64) as u32;
        NonceStoreConfig { shards, per_shard }
    }
}

/// A one-time key admitted here, for a claim across Envoys (cluster mode): what it is, a digest of its
/// scope and value, and until when it must stay claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OneTime {
    pub kind: OneTimeKind,
    pub digest: [u8; 16],
    pub until_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OneTimeKind {
    Nonce,
    Jti,
}

impl OneTime {
    pub(crate) fn new(kind: OneTimeKind, scope: &[u8], value: &[u8], until_ms: i64) -> Self {
        let whole = cagate_digest::sha256(&[scope, &[0xff], value]);
        let mut digest = [0u8; 16];
        digest.copy_from_slice(whole.get(..16).unwrap_or(&[0; 16]));
        OneTime { kind, digest, until_ms }
    }
}

const ENTRY: usize = 12;
/// First byte of every shard value. A shard is never empty, so "absent" and "empty" cannot be
/// confused (Envoy reports an empty value as no data).
const VERSION: u8 = 1;
/// CAS attempts before giving up on a contended shard.
pub(crate) const MAX_ATTEMPTS: usize = 16;
const SEED_KEY: &str = "cagate.nonce.seed";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// First use: recorded.
    Fresh,
    /// Seen within its lifetime.
    Replayed,
    /// The shard holds `per_shard` live nonces.
    Full,
    /// Lost compare-and-swap `MAX_ATTEMPTS` times, or the host failed.
    Contended,
}

/// The nonce store's shape and keys, computed once per configuration.
#[derive(Debug, Clone)]
pub struct NonceStore {
    keys: Vec<String>,
    per_shard: usize,
    seed: (u64, u64),
}

impl NonceStore {
    pub fn new(cfg: NonceStoreConfig) -> Self {
        Self::with_prefix("cagate.nonce", cfg)
    }

    /// A store of its own under `prefix` (the JWT plugin keeps `jti`s this way).
    pub fn with_prefix(prefix: &str, cfg: NonceStoreConfig) -> Self {
        NonceStore { keys: (0..cfg.shards).map(|i| format!("{prefix}.{i}")).collect(), per_shard: cfg.per_shard as usize, seed: (0, 0) }
    }

    /// Creates the shard keys that do not exist yet and agrees on the hashing seed with every other
    /// VM (the first writer's `fresh_seed` wins). Run once per VM at configuration time, before
    /// traffic, since Envoy cannot create a key only if it is absent.
    pub fn ensure(&mut self, store: &dyn SharedStore, fresh_seed: [u8; 16]) {
        if store.get(SEED_KEY).is_none() {
            let _ = store.set(SEED_KEY, &fresh_seed, 0);
        }
        if let Some((v, _)) = store.get(SEED_KEY) {
            if v.len() >= 16 {
                self.seed = (le_u64(&v, 0), le_u64(&v, 8));
            }
        }
        for key in &self.keys {
            if store.get(key).is_none() {
                let _ = store.set(key, &[VERSION], 0);
            }
        }
    }

    pub fn shard_count(&self) -> usize {
        self.keys.len()
    }

    /// Keyed (SipHash) so that a caller cannot choose nonces that all land in one shard.
    fn fingerprint(&self, app_key: &[u8], nonce: &[u8]) -> u64 {
        #[allow(deprecated)]
        let mut h = std::hash::SipHasher::new_with_keys(self.seed.0, self.seed.1);
        h.write(app_key);
        h.write_u8(0xff);
        h.write(nonce);
        h.finish()
    }

    /// Records the nonce of `app_key` if it was not used within its lifetime.
    pub fn record(&self, store: &dyn SharedStore, app_key: &[u8], nonce: &[u8], now_ms: i64, ttl_ms: u64) -> Outcome {
        self.record_until(store, app_key, nonce, now_ms, now_ms.max(0).saturating_add(ttl_ms as i64))
    }

    /// Records `id` within `scope` until `expires_ms`, if not already recorded and live.
    pub fn record_until(&self, store: &dyn SharedStore, scope: &[u8], id: &[u8], now_ms: i64, expires_ms: i64) -> Outcome {
        let fp = self.fingerprint(scope, id);
        let Some(key) = self.keys.get(((fp >> 32) as usize) % self.keys.len().max(1)) else {
            return Outcome::Contended;
        };
        let now_s = now_ms.max(0) as u64 / 1000;
        let expires = (expires_ms.max(0) as u64).div_ceil(1000).min(u32::MAX as u64) as u32;
        for _ in 0..MAX_ATTEMPTS {
            let (old, cas) = store.get(key).unwrap_or_default();
            let mut next = Vec::with_capacity(old.len() + ENTRY);
            next.push(VERSION);
            let mut live = 0usize;
            for e in old.get(1..).unwrap_or_default().chunks_exact(ENTRY) {
                if le_u32(e, 8) as u64 <= now_s {
                    continue; // expired: pruned by this write
                }
                if le_u64(e, 0) == fp {
                    return Outcome::Replayed;
                }
                next.extend_from_slice(e);
                live += 1;
            }
            if live >= self.per_shard {
                return Outcome::Full;
            }
            next.extend_from_slice(&fp.to_le_bytes());
            next.extend_from_slice(&expires.to_le_bytes());
            match store.set(key, &next, cas) {
                Ok(()) => return Outcome::Fresh,
                Err(SetError::CasMismatch) => continue,
                Err(SetError::Failed) => return Outcome::Contended,
            }
        }
        Outcome::Contended
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::MemoryStore;
    use std::sync::Arc;

    fn store(shards: u32, per_shard: u32) -> (NonceStore, MemoryStore) {
        let mem = MemoryStore::new();
        let mut n = NonceStore::new(NonceStoreConfig { shards, per_shard });
        n.ensure(&mem, [7; 16]);
        (n, mem)
    }

    #[test]
    fn fresh_then_replayed_then_expired() {
        let (n, mem) = store(4, 8);
        assert_eq!(n.record(&mem, b"k", b"n1", 1_000_000, 900_000), Outcome::Fresh);
        assert_eq!(n.record(&mem, b"k", b"n1", 1_500_000, 900_000), Outcome::Replayed);
        assert_eq!(n.record(&mem, b"other-app", b"n1", 1_500_000, 900_000), Outcome::Fresh, "nonces are per app");
        assert_eq!(n.record(&mem, b"k", b"n1", 1_900_000, 900_000), Outcome::Fresh, "forgotten after its lifetime");
    }

    #[test]
    fn bounded_keys_and_memory_refuses_when_full() {
        let (n, mem) = store(4, 8);
        let keys_after_init = mem.key_count();
        assert_eq!(keys_after_init, 5, "4 shards and the seed");
        let mut fresh = 0;
        let mut full = 0;
        for i in 0..1000 {
            match n.record(&mem, b"k", format!("nonce-{i}").as_bytes(), 1_000_000, 900_000) {
                Outcome::Fresh => fresh += 1,
                Outcome::Full => full += 1,
                o => panic!("{o:?}"),
            }
        }
        assert_eq!(fresh, 32, "exactly shards x per_shard live nonces");
        assert_eq!(full, 968);
        assert_eq!(mem.key_count(), keys_after_init, "no key per nonce");
        assert!(mem.value_bytes() <= 16 + 4 + 32 * ENTRY);
        // Every recorded nonce is still refused: none was forgotten to make room.
        let replayed = (0..1000).filter(|i| n.record(&mem, b"k", format!("nonce-{i}").as_bytes(), 1_000_001, 900_000) == Outcome::Replayed).count();
        assert_eq!(replayed, 32);
        // Once they expire, room comes back.
        assert_eq!(n.record(&mem, b"k", b"later", 1_000_000 + 900_001, 900_000), Outcome::Fresh);
    }

    #[test]
    fn seed_is_shared_by_every_vm() {
        let mem = MemoryStore::new();
        let cfg = NonceStoreConfig { shards: 16, per_shard: 64 };
        let mut a = NonceStore::new(cfg);
        a.ensure(&mem, [1; 16]);
        let mut b = NonceStore::new(cfg);
        b.ensure(&mem, [2; 16]);
        assert_eq!(a.seed, b.seed);
        assert_eq!(a.record(&mem, b"k", b"x", 0, 1000), Outcome::Fresh);
        assert_eq!(b.record(&mem, b"k", b"x", 0, 1000), Outcome::Replayed);
    }

    #[test]
    fn real_threads_same_nonce_exactly_one_wins() {
        let mem = Arc::new(MemoryStore::new());
        let mut n = NonceStore::new(NonceStoreConfig { shards: 2, per_shard: 100_000 });
        n.ensure(&*mem, [3; 16]);
        let n = Arc::new(n);
        for round in 0..20 {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let (n, mem) = (n.clone(), mem.clone());
                    std::thread::spawn(move || {
                        let mut out = Vec::new();
                        for _ in 0..5 {
                            out.push(n.record(&*mem, b"k", format!("shared-{round}").as_bytes(), 10_000, 900_000));
                        }
                        out
                    })
                })
                .collect();
            let all: Vec<Outcome> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
            assert_eq!(all.iter().filter(|o| **o == Outcome::Fresh).count(), 1, "round {round}: {all:?}");
        }
    }

    #[test]
    fn real_threads_distinct_nonces_none_lost() {
        let mem = Arc::new(MemoryStore::new());
        let mut n = NonceStore::new(NonceStoreConfig { shards: 1, per_shard: 100_000 });
        n.ensure(&*mem, [4; 16]);
        let n = Arc::new(n);
        let threads = 8;
        let per = 300;
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (n, mem) = (n.clone(), mem.clone());
                std::thread::spawn(move || {
                    let mut contended = 0;
                    for i in 0..per {
                        let nonce = format!("t{t}-{i}");
                        loop {
                            match n.record(&*mem, b"k", nonce.as_bytes(), 10_000, 900_000) {
                                Outcome::Fresh => break,
                                Outcome::Contended => contended += 1, // bounded retries ran out: try again
                                o => panic!("{o:?}"),
                            }
                        }
                    }
                    contended
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        // One shard: every nonce must be in it, none overwritten by a racing writer.
        let (v, _) = mem.get("cagate.nonce.0").unwrap();
        assert_eq!((v.len() - 1) / ENTRY, threads * per);
        for t in 0..threads {
            for i in 0..per {
                assert_eq!(n.record(&*mem, b"k", format!("t{t}-{i}").as_bytes(), 10_001, 900_000), Outcome::Replayed);
            }
        }
    }

    /// Fills a store with distinct nonces until the first refusal; returns how many it took.
    fn first_refusal(capacity: u64) -> u64 {
        let mem = MemoryStore::new();
        let mut n = NonceStore::new(NonceStoreConfig::for_capacity(capacity));
        n.ensure(&mem, [11; 16]);
        let mut i = 0u64;
        while n.record(&mem, b"k", &i.to_le_bytes(), 1_000_000, 900_000) == Outcome::Fresh {
            i += 1;
        }
        i
    }

    #[test]
    fn holds_at_least_its_capacity() {
        for capacity in [64, 1024, 16_384, 262_144] {
            let first = first_refusal(capacity);
            let cfg = NonceStoreConfig::for_capacity(capacity);
            let bound = cfg.shards as u64 * cfg.per_shard as u64;
            eprintln!("capacity {capacity}: first refusal after {first} live nonces ({:.2}x), bound {bound}", first as f64 / capacity as f64);
            assert!(first >= capacity, "capacity {capacity}: refused after {first}");
            assert!(first <= bound);
        }
    }
}
