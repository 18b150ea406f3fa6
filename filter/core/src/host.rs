//! Host services the core needs, as small traits: the clock, Envoy's shared data, and what the host
//! knows of a stream. The adapter implements them with host calls; `MemoryStore` mimics Envoy's
//! semantics (compare-and-swap included) for native tests.

#[cfg(any(test, feature = "test-kit"))]
use std::collections::HashMap;
#[cfg(any(test, feature = "test-kit"))]
use std::sync::Mutex;

/// Little-endian fields of a shared-data value: 0 where the value is too short (a key created empty
/// or by an older layout reads as zero).
pub(crate) fn le_u64(v: &[u8], at: usize) -> u64 {
    v.get(at..at + 8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map_or(0, u64::from_le_bytes)
}

pub(crate) fn le_u32(v: &[u8], at: usize) -> u32 {
    v.get(at..at + 4).and_then(|b| <[u8; 4]>::try_from(b).ok()).map_or(0, u32::from_le_bytes)
}

/// One document fetched by one VM at a time for every VM (a remote JWKS, the app registry): due
/// when the stamp (fetched-at ms, the first 8 bytes of `stamp_key`'s value) is older than `refresh_ms`,
/// and then only for the VM that wins the lease (`lease_key`, taken by compare-and-swap and held for
/// the fetch's timeout plus a margin; a failed fetch is retried once it lapses).
pub(crate) fn fetch_due(store: &dyn SharedStore, stamp_key: &str, lease_key: &str, refresh_ms: i64, timeout_ms: u64, now_ms: i64) -> bool {
    if let Some((v, _)) = store.get(stamp_key) {
        if v.len() >= 8 && now_ms - (le_u64(&v, 0) as i64) < refresh_ms {
            return false;
        }
    }
    let (lease, cas) = store.get(lease_key).unwrap_or_default();
    if lease.len() >= 8 && le_u64(&lease, 0) as i64 > now_ms {
        return false;
    }
    let until = now_ms + timeout_ms as i64 + 5_000;
    store.set(lease_key, &until.to_le_bytes(), cas).is_ok()
}

/// Wall-clock time in milliseconds since the Unix epoch.
pub trait Clock {
    fn now_ms(&self) -> i64;
    /// Microseconds, for the filter's own timings (debug mode); the millisecond clock by default.
    fn now_us(&self) -> i64 {
        self.now_ms().saturating_mul(1000)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetError {
    /// The value changed since it was read (compare-and-swap lost).
    CasMismatch,
    /// Anything else the host reported.
    Failed,
}

/// Envoy's shared data: a key-value map shared by every VM with the same vm_id, each value carrying a
/// CAS token. `get` returns the value and its token; `set` with a non-zero token fails with
/// `CasMismatch` if the value changed since. A token of 0 writes unconditionally, and a key that does
/// not exist yet is written whatever the token (Envoy has no create-if-absent), which is why keys
/// are created up front, once, by `ensure`.
pub trait SharedStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), SetError>;
}

/// An in-memory `SharedStore` with Envoy's CAS semantics, safe to share between real threads.
/// Values with their CAS tokens, and the last token handed out.
#[cfg(any(test, feature = "test-kit"))]
type Entries = (HashMap<String, (Vec<u8>, u32)>, u32);

/// What the host knows of the stream a request or a response belongs to, read only when a check needs
/// it (each answer is a host call in Envoy).
pub trait Stream {
    /// The connected peer's address, as Envoy reports it (`ip:port`, `[v6]:port`).
    fn peer_address(&self) -> Option<Vec<u8>> {
        None
    }
    /// A header of the backend's response (response phase).
    fn response_header(&self, _name: &str) -> Option<Vec<u8>> {
        None
    }
}

#[cfg(test)]
/// A stream the host tells nothing about (the core's unit tests).
pub(crate) struct NoStream;

#[cfg(test)]
impl Stream for NoStream {}

#[cfg(test)]
/// A stream whose peer is fixed (the core's unit tests).
pub(crate) struct FixedPeer(pub(crate) &'static str);

#[cfg(test)]
impl Stream for FixedPeer {
    fn peer_address(&self) -> Option<Vec<u8>> {
        Some(self.0.as_bytes().to_vec())
    }
}

#[cfg(any(test, feature = "test-kit"))]
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Entries>,
}

#[cfg(any(test, feature = "test-kit"))]
impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
    /// Number of keys: shared data never frees one, so tests check it stays bounded.
    pub fn key_count(&self) -> usize {
        self.inner.lock().map(|g| g.0.len()).unwrap_or(0)
    }
    /// Total bytes held in values.
    pub fn value_bytes(&self) -> usize {
        self.inner.lock().map(|g| g.0.values().map(|(v, _)| v.len()).sum()).unwrap_or(0)
    }
}

#[cfg(any(test, feature = "test-kit"))]
impl SharedStore for MemoryStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        let guard = self.inner.lock().ok()?;
        guard.0.get(key).cloned()
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), SetError> {
        let mut guard = self.inner.lock().map_err(|_| SetError::Failed)?;
        let (map, next) = &mut *guard;
        *next = next.wrapping_add(1).max(1);
        let token = *next;
        match map.get_mut(key) {
            Some(entry) => {
                if cas != 0 && cas != entry.1 {
                    return Err(SetError::CasMismatch);
                }
                *entry = (value.to_vec(), token);
            }
            None => {
                map.insert(key.to_string(), (value.to_vec(), token));
            }
        }
        Ok(())
    }
}

#[cfg(any(test, feature = "test-kit"))]
/// A clock fixed by the test.
#[derive(Debug)]
pub struct FixedClock(pub i64);

#[cfg(any(test, feature = "test-kit"))]
impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_semantics_like_envoy() {
        let s = MemoryStore::new();
        assert_eq!(s.get("k"), None);
        s.set("k", b"a", 12345).unwrap(); // absent key: written whatever the token
        let (v, cas) = s.get("k").unwrap();
        assert_eq!(v, b"a");
        s.set("k", b"b", cas).unwrap();
        assert_eq!(s.set("k", b"c", cas), Err(SetError::CasMismatch));
        s.set("k", b"d", 0).unwrap(); // token 0: unconditional
        assert_eq!(s.get("k").unwrap().0, b"d");
        assert_eq!(s.key_count(), 1);
    }
}
