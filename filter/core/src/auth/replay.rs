//! Replay protection across all of one Envoy's worker threads.
//!
//! Envoy's shared data never frees a key, so a nonce is never a key: nonces are hashed into a fixed
//! set of shard keys (`cagate.nonce.<n>`), each value a packed list of (fingerprint, expiry) entries
//! tagged with their app. Every write prunes expired entries and goes through compare-and-swap,
//! retried a bounded number of times. A shard full of live nonces refuses the new one rather than
//! forgetting an old one: a forgotten nonce could be replayed. An app that holds its share of a shard
//! is refused there too, so that one app's credentials cannot fill the store every app shares.

use crate::host::{le_u32, le_u64, SetError, SharedStore};
use std::hash::Hasher;

/// Nonce store geometry: `shards` shared-data keys of at most `per_shard` live entries each, at most
/// `per_app` of them one app's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonceStoreConfig {
    pub shards: u32,
    pub per_shard: u32,
    pub per_app: u32,
}

/// Shards of every one-time-key store, whatever its capacity: the shard of a key never depends on
/// the configuration, so a reload that changes a capacity still finds every live key.
pub(crate) const ONE_TIME_KEY_SHARDS: u32 = 4096;

/// Entries a shard needs so that `capacity` live keys fit before the first refusal. Keys fall into
/// shards at random (a binomial count per shard), so each shard gets its mean plus four standard
/// deviations plus a little: the first full shard then comes after the capacity is reached, not at
/// 80-90 % of it.
fn slots(capacity: u64) -> u64 {
    let mean = capacity.div_ceil(ONE_TIME_KEY_SHARDS as u64);
    mean + (4.0 * (mean as f64).sqrt()).ceil() as u64 + 8
}

impl NonceStoreConfig {
    /// Room for at least `capacity` live keys, any share of them one scope's.
    pub fn for_capacity(capacity: u64) -> Self {
        let per_shard = slots(capacity).min(u32::MAX as u64) as u32;
        NonceStoreConfig { shards: ONE_TIME_KEY_SHARDS, per_shard, per_app: per_shard }
    }

    /// Room for at least `capacity` live keys, at most about `per_app` of them one app's; while one
    /// app holds its share, the other apps still have room for `capacity - per_app`.
    pub fn shared(capacity: u64, per_app: u64) -> Self {
        if per_app >= capacity {
            return Self::for_capacity(capacity);
        }
        let mine = slots(per_app);
        let per_shard = (mine + slots(capacity - per_app)).min(u32::MAX as u64) as u32;
        NonceStoreConfig { shards: ONE_TIME_KEY_SHARDS, per_shard, per_app: mine.min(per_shard as u64) as u32 }
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

// A shard's value: a version byte, then 12-byte chunks. An entry is a fingerprint (u64) and an
// expiry in seconds (u32, never 0). A tag chunk, expiry 0, carries the app tags (two u32) of the one
// or two entries written since the previous tag chunk. The tags sit in chunks of their own so that
// an earlier cagate, which read every chunk as an entry and knew no tags, still finds every nonce
// during an upgrade: to it a tag chunk is expired, and its writes keep the entries and drop the tags
// (entries then belong to no app until they expire).
const CHUNK: usize = 12;
/// First byte of every shard value. A shard is never empty, so "absent" and "empty" cannot be
/// confused (Envoy reports an empty value as no data). 1: entries only; 2: with tag chunks.
const VERSION: u8 = 2;
/// CAS attempts before giving up on a contended shard.
pub(crate) const MAX_ATTEMPTS: usize = 16;
const SEED_KEY: &str = "cagate.nonce.seed";
/// The causes of the refusals that `cagate_nonce_store_full` counts (other `X503BZ`s are not a full store).
pub(crate) const NONCES_FULL: &str = "nonce store full";
pub(crate) const JTIS_FULL: &str = "jti store full";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// First use: recorded.
    Fresh,
    /// Seen within its lifetime.
    Replayed,
    /// The shard holds `per_shard` live nonces.
    Full,
    /// The shard holds `per_app` live nonces of this app.
    AppShareFull,
    /// Lost compare-and-swap `MAX_ATTEMPTS` times, or the host failed.
    Contended,
}

/// The nonce store's shape and keys, computed once per configuration.
#[derive(Debug, Clone)]
pub struct NonceStore {
    keys: Vec<String>,
    per_shard: usize,
    per_app: usize,
    seed: (u64, u64),
}

impl NonceStore {
    pub fn new(cfg: NonceStoreConfig) -> Self {
        Self::with_prefix("cagate.nonce", cfg)
    }

    /// A store of its own under `prefix` (the JWT plugin keeps `jti`s this way).
    pub fn with_prefix(prefix: &str, cfg: NonceStoreConfig) -> Self {
        NonceStore {
            keys: (0..cfg.shards).map(|i| format!("{prefix}.{i}")).collect(),
            per_shard: cfg.per_shard as usize,
            per_app: cfg.per_app as usize,
            seed: (0, 0),
        }
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

    fn hasher(&self) -> impl Hasher {
        #[allow(deprecated)]
        std::hash::SipHasher::new_with_keys(self.seed.0, self.seed.1)
    }

    /// Keyed (SipHash) so that a caller cannot choose nonces that all land in one shard.
    fn fingerprint(&self, app_key: &[u8], nonce: &[u8]) -> u64 {
        let mut h = self.hasher();
        h.write(app_key);
        h.write_u8(0xff);
        h.write(nonce);
        h.finish()
    }

    /// The tag of an owner's entries; never 0, which marks entries of no app.
    fn tag(&self, owner: &[u8]) -> u32 {
        let mut h = self.hasher();
        h.write_u8(0xfe);
        h.write(owner);
        (h.finish() as u32).max(1)
    }

    /// Records the nonce of `app_key` (its own owner) if it was not used within its lifetime.
    pub fn record(&self, store: &dyn SharedStore, app_key: &[u8], nonce: &[u8], now_ms: i64, ttl_ms: u64) -> Outcome {
        self.record_until(store, app_key, app_key, nonce, now_ms, now_ms.max(0).saturating_add(ttl_ms as i64))
    }

    /// Records `id` within `scope` until `expires_ms`, if not already recorded and live. `owner` is whose
    /// share it counts against: the app, whichever of its keys the scope is.
    pub fn record_until(&self, store: &dyn SharedStore, scope: &[u8], owner: &[u8], id: &[u8], now_ms: i64, expires_ms: i64) -> Outcome {
        let fp = self.fingerprint(scope, id);
        let Some(key) = self.keys.get(((fp >> 32) as usize) % self.keys.len().max(1)) else {
            return Outcome::Contended;
        };
        let tag = self.tag(owner);
        let now_s = now_ms.max(0) as u64 / 1000;
        // Live while `now_ms <= expires_ms` (a timestamp at exactly its tolerance, a token at exactly
        // `exp` plus the skew, is still accepted): pruned from the second after the one it ends in.
        let expires = (expires_ms.max(0) as u64 / 1000 + 1).min(u32::MAX as u64) as u32;
        for _ in 0..MAX_ATTEMPTS {
            let (old, cas) = store.get(key).unwrap_or_default();
            let mut next = Packer::with_capacity(old.len() + 2 * CHUNK);
            let (mut live, mut mine) = (0usize, 0usize);
            let mut keep = |e: Entry| {
                if e.expires as u64 <= now_s {
                    return Ok(()); // expired: pruned by this write
                }
                if e.fingerprint == fp {
                    return Err(Outcome::Replayed);
                }
                live += 1;
                mine += usize::from(e.tag == tag);
                next.push(e);
                Ok(())
            };
            if let Err(o) = entries(old.get(1..).unwrap_or_default(), &mut keep) {
                return o;
            }
            // An app at its share is refused as such even in a full shard: it is the app's doing, and
            // a store that is full only counts what a share cannot explain.
            if mine >= self.per_app && self.per_app < self.per_shard {
                return Outcome::AppShareFull;
            }
            if live >= self.per_shard {
                return Outcome::Full;
            }
            next.push(Entry { fingerprint: fp, expires, tag });
            match store.set(key, &next.finish(), cas) {
                Ok(()) => return Outcome::Fresh,
                Err(SetError::CasMismatch) => continue,
                Err(SetError::Failed) => return Outcome::Contended,
            }
        }
        Outcome::Contended
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    fingerprint: u64,
    expires: u32,
    tag: u32,
}

/// Calls `each` on every entry of a shard's chunks, in order, with its tag (0 where none was written).
fn entries<E>(chunks: &[u8], each: &mut impl FnMut(Entry) -> Result<(), E>) -> Result<(), E> {
    let mut pending: [Option<Entry>; 2] = [None, None];
    for c in chunks.chunks_exact(CHUNK) {
        let expires = le_u32(c, 8);
        if expires == 0 {
            for (slot, at) in pending.iter_mut().zip([0, 4]) {
                if let Some(mut e) = slot.take() {
                    e.tag = le_u32(c, at);
                    each(e)?;
                }
            }
            continue;
        }
        if pending[1].is_some() {
            // Two entries with no tag chunk after them: written without tags.
            for slot in pending.iter_mut() {
                if let Some(e) = slot.take() {
                    each(e)?;
                }
            }
        }
        let e = Some(Entry { fingerprint: le_u64(c, 0), expires, tag: 0 });
        if pending[0].is_none() {
            pending[0] = e;
        } else {
            pending[1] = e;
        }
    }
    for slot in pending.iter_mut() {
        if let Some(e) = slot.take() {
            each(e)?;
        }
    }
    Ok(())
}

/// Writes entries in the current layout: a tag chunk after every two entries and after the last.
struct Packer {
    out: Vec<u8>,
    tags: [u32; 2],
    waiting: usize,
}

impl Packer {
    fn with_capacity(n: usize) -> Self {
        let mut out = Vec::with_capacity(n);
        out.push(VERSION);
        Packer { out, tags: [0; 2], waiting: 0 }
    }

    fn push(&mut self, e: Entry) {
        self.out.extend_from_slice(&e.fingerprint.to_le_bytes());
        self.out.extend_from_slice(&e.expires.to_le_bytes());
        if let Some(t) = self.tags.get_mut(self.waiting) {
            *t = e.tag;
        }
        self.waiting += 1;
        if self.waiting == 2 {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.waiting > 0 {
            let [a, b] = self.tags;
            self.out.extend_from_slice(&a.to_le_bytes());
            self.out.extend_from_slice(&if self.waiting > 1 { b } else { 0 }.to_le_bytes());
            self.out.extend_from_slice(&0u32.to_le_bytes());
            self.waiting = 0;
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.flush();
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::MemoryStore;
    use std::sync::Arc;

    fn store(shards: u32, per_shard: u32) -> (NonceStore, MemoryStore) {
        let mem = MemoryStore::new();
        let mut n = NonceStore::new(NonceStoreConfig { shards, per_shard, per_app: per_shard });
        n.ensure(&mem, [7; 16]);
        (n, mem)
    }

    #[test]
    fn fresh_then_replayed_then_expired() {
        let (n, mem) = store(4, 8);
        assert_eq!(n.record(&mem, b"k", b"n1", 1_000_000, 900_000), Outcome::Fresh);
        assert_eq!(n.record(&mem, b"k", b"n1", 1_500_000, 900_000), Outcome::Replayed);
        assert_eq!(n.record(&mem, b"other-app", b"n1", 1_500_000, 900_000), Outcome::Fresh, "nonces are per app");
        assert_eq!(n.record(&mem, b"k", b"n1", 1_900_000, 900_000), Outcome::Replayed, "live at the last millisecond of its lifetime");
        assert_eq!(n.record(&mem, b"k", b"n1", 1_901_000, 900_000), Outcome::Fresh, "forgotten after its lifetime");
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
        assert!(mem.value_bytes() <= 16 + 4 + 32 * CHUNK * 3 / 2);
        // Every recorded nonce is still refused: none was forgotten to make room.
        let replayed = (0..1000).filter(|i| n.record(&mem, b"k", format!("nonce-{i}").as_bytes(), 1_000_001, 900_000) == Outcome::Replayed).count();
        assert_eq!(replayed, 32);
        // Once they expire, room comes back.
        assert_eq!(n.record(&mem, b"k", b"later", 1_000_000 + 901_000, 900_000), Outcome::Fresh);
    }

    #[test]
    fn seed_is_shared_by_every_vm() {
        let mem = MemoryStore::new();
        let cfg = NonceStoreConfig { shards: 16, per_shard: 64, per_app: 64 };
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
        let mut n = NonceStore::new(NonceStoreConfig { shards: 2, per_shard: 100_000, per_app: 100_000 });
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
        let mut n = NonceStore::new(NonceStoreConfig { shards: 1, per_shard: 100_000, per_app: 100_000 });
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
        let mut count = 0;
        entries::<()>(&v[1..], &mut |_| {
            count += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(count, threads * per);
        for t in 0..threads {
            for i in 0..per {
                assert_eq!(n.record(&*mem, b"k", format!("t{t}-{i}").as_bytes(), 10_001, 900_000), Outcome::Replayed);
            }
        }
    }

    #[test]
    fn an_app_at_its_share_is_refused_while_the_others_record() {
        let mem = MemoryStore::new();
        let mut n = NonceStore::new(NonceStoreConfig { shards: 1, per_shard: 10, per_app: 4 });
        n.ensure(&mem, [8; 16]);
        for i in 0..4 {
            assert_eq!(n.record(&mem, b"flood", format!("n{i}").as_bytes(), 1_000_000, 900_000), Outcome::Fresh);
        }
        assert_eq!(n.record(&mem, b"flood", b"n4", 1_000_000, 900_000), Outcome::AppShareFull);
        assert_eq!(n.record(&mem, b"flood", b"n0", 1_000_000, 900_000), Outcome::Replayed, "a replay is still a replay");
        for i in 0..6 {
            assert_eq!(n.record(&mem, format!("app{}", i % 2).as_bytes(), format!("n{i}").as_bytes(), 1_000_000, 900_000), Outcome::Fresh);
        }
        assert_eq!(n.record(&mem, b"app9", b"n", 1_000_000, 900_000), Outcome::Full);
        assert_eq!(n.record(&mem, b"flood", b"later", 1_000_000 + 901_000, 900_000), Outcome::Fresh, "room again once they expire");
    }

    #[test]
    fn an_apps_keys_share_its_part() {
        let mem = MemoryStore::new();
        let mut n = NonceStore::new(NonceStoreConfig { shards: 1, per_shard: 10, per_app: 4 });
        n.ensure(&mem, [9; 16]);
        let record = |key: &[u8], nonce: &str| n.record_until(&mem, key, b"app-1", nonce.as_bytes(), 1_000_000, 1_900_000);
        for i in 0..4 {
            assert_eq!(record(if i % 2 == 0 { b"old-key" } else { b"new-key" }, &format!("n{i}")), Outcome::Fresh);
        }
        assert_eq!(record(b"new-key", "n4"), Outcome::AppShareFull, "a second key pair is no second share");
        assert_eq!(record(b"old-key", "n0"), Outcome::Replayed);
        // At its share in a full shard: refused for its share, not as a full store.
        for i in 0..6 {
            assert_eq!(n.record(&mem, format!("other{i}").as_bytes(), b"x", 1_000_000, 900_000), Outcome::Fresh);
        }
        assert_eq!(record(b"old-key", "n5"), Outcome::AppShareFull);
        assert_eq!(n.record(&mem, b"other9", b"x", 1_000_000, 900_000), Outcome::Full);
    }

    #[test]
    fn one_app_flooding_leaves_the_others_their_capacity() {
        let (capacity, per_app) = (16_384u64, 4_096u64);
        let mem = MemoryStore::new();
        let mut n = NonceStore::new(NonceStoreConfig::shared(capacity, per_app));
        n.ensure(&mem, [12; 16]);
        let mut first_refusal = None;
        for i in 0..4 * capacity {
            match n.record(&mem, b"flood", &i.to_le_bytes(), 1_000_000, 900_000) {
                Outcome::Fresh => {}
                Outcome::AppShareFull => {
                    first_refusal.get_or_insert(i);
                }
                o => panic!("nonce {i}: {o:?}"),
            }
        }
        let first_refusal = first_refusal.unwrap();
        assert!(first_refusal >= per_app, "the app was refused after {first_refusal} of its {per_app}");
        // The flood goes on after its first refusals and fills its share of every shard; the others
        // still have their whole room.
        for i in 0..capacity - per_app {
            let app = format!("app{}", i % 50);
            assert_eq!(n.record(&mem, app.as_bytes(), &i.to_le_bytes(), 1_000_000, 900_000), Outcome::Fresh, "nonce {i}");
        }
    }

    /// How cagate before the app tags wrote a nonce: every chunk an entry, the version byte 1.
    fn record_untagged(n: &NonceStore, mem: &MemoryStore, app: &[u8], nonce: &[u8], now_s: u32, expires: u32) -> Outcome {
        let fp = n.fingerprint(app, nonce);
        let key = &n.keys[((fp >> 32) as usize) % n.keys.len()];
        let (old, cas) = mem.get(key).unwrap();
        let mut next = vec![1u8];
        for e in old[1..].chunks_exact(CHUNK) {
            if le_u32(e, 8) <= now_s {
                continue;
            }
            if le_u64(e, 0) == fp {
                return Outcome::Replayed;
            }
            next.extend_from_slice(e);
        }
        next.extend_from_slice(&fp.to_le_bytes());
        next.extend_from_slice(&expires.to_le_bytes());
        mem.set(key, &next, cas).unwrap();
        Outcome::Fresh
    }

    #[test]
    fn an_upgrade_from_untagged_entries_keeps_every_nonce_both_ways() {
        let mem = MemoryStore::new();
        let mut n = NonceStore::new(NonceStoreConfig { shards: 1, per_shard: 100, per_app: 3 });
        n.ensure(&mem, [13; 16]);
        let (now_ms, now_s, expires) = (1_000_000, 1_000, 1_900);
        for i in 0..5 {
            assert_eq!(
                n.record(&mem, b"a", format!("new{i}").as_bytes(), now_ms, 900_000),
                if i < 3 { Outcome::Fresh } else { Outcome::AppShareFull }
            );
        }
        // The earlier module, still serving drained connections, sees what the new one recorded…
        for i in 0..3 {
            assert_eq!(record_untagged(&n, &mem, b"a", format!("new{i}").as_bytes(), now_s, expires), Outcome::Replayed);
        }
        assert_eq!(record_untagged(&n, &mem, b"a", b"old0", now_s, expires), Outcome::Fresh);
        // …and the new one sees every nonce after the earlier one rewrote the shard without tags.
        for nonce in ["new0", "new1", "new2", "old0"] {
            assert_eq!(n.record(&mem, b"a", nonce.as_bytes(), now_ms, 900_000), Outcome::Replayed, "{nonce}");
        }
        // Untagged entries are no app's: the app's share starts again, the shard's bound still holds.
        for i in 0..3 {
            assert_eq!(n.record(&mem, b"a", format!("after{i}").as_bytes(), now_ms, 900_000), Outcome::Fresh);
        }
        assert_eq!(n.record(&mem, b"a", b"after3", now_ms, 900_000), Outcome::AppShareFull);
        assert_eq!(record_untagged(&n, &mem, b"a", b"after0", now_s, expires), Outcome::Replayed);
    }

    #[test]
    fn tags_survive_every_position_in_a_shard() {
        let mem = MemoryStore::new();
        let mut n = NonceStore::new(NonceStoreConfig { shards: 1, per_shard: 100, per_app: 100 });
        n.ensure(&mem, [14; 16]);
        let apps: Vec<String> = (0..7).map(|i| format!("app{i}")).collect();
        for (i, app) in apps.iter().enumerate() {
            assert_eq!(n.record(&mem, app.as_bytes(), b"x", 1_000_000 + i as i64, 900_000), Outcome::Fresh);
        }
        let (v, _) = mem.get("cagate.nonce.0").unwrap();
        let mut seen = Vec::new();
        entries::<()>(&v[1..], &mut |e| {
            seen.push(e.tag);
            Ok(())
        })
        .unwrap();
        let want: Vec<u32> = apps.iter().map(|a| n.tag(a.as_bytes())).collect();
        assert_eq!(seen, want);
        assert_eq!(v.len(), 1 + 7 * CHUNK + 4 * CHUNK, "a tag chunk per two entries and one for the last");
    }

    /// Fills a store with distinct nonces of `apps` apps in turn until the first refusal; returns how
    /// many it took.
    fn first_refusal(cfg: NonceStoreConfig, apps: u64) -> u64 {
        let mem = MemoryStore::new();
        let mut n = NonceStore::new(cfg);
        n.ensure(&mem, [11; 16]);
        let mut i = 0u64;
        while n.record(&mem, &(i % apps).to_le_bytes(), &i.to_le_bytes(), 1_000_000, 900_000) == Outcome::Fresh {
            i += 1;
        }
        i
    }

    #[test]
    fn holds_at_least_its_capacity() {
        for capacity in [64, 1024, 16_384, 262_144] {
            let cfg = NonceStoreConfig::for_capacity(capacity);
            let first = first_refusal(cfg, 1);
            let bound = cfg.shards as u64 * cfg.per_shard as u64;
            eprintln!("capacity {capacity}: first refusal after {first} live nonces ({:.2}x), bound {bound}", first as f64 / capacity as f64);
            assert!(first >= capacity, "capacity {capacity}: refused after {first}");
            assert!(first <= bound);
        }
    }

    #[test]
    fn a_shared_store_holds_its_capacity_and_one_app_its_share() {
        for capacity in [64, 16_384, 262_144] {
            let cfg = NonceStoreConfig::shared(capacity, capacity / 2);
            let (all, one) = (first_refusal(cfg, 64), first_refusal(cfg, 1));
            eprintln!("capacity {capacity}, half per app: first refusal after {all} live nonces of 64 apps, {one} of one app; {cfg:?}");
            assert!(all >= capacity, "capacity {capacity}: refused after {all}");
            assert!(one >= capacity / 2, "capacity {capacity}: one app refused after {one}");
        }
    }
}
