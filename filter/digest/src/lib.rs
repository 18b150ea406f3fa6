//! The hashes a request runs: the HMAC of the signature's StringToSign (SHA-256 or SHA-1), the
//! SHA-256 digests of AppCodes and one-time keys, and MD5 for `Content-MD5`, as concrete types.
//!
//! Why a crate of its own: the Wasm module optimises the core for size (it must fit a 1 MiB
//! ConfigMap), and with LTO generic code is compiled at the optimisation level of the crate that
//! instantiates it. The digest crates' block buffering and padding are generic, so instantiated in
//! the core they ran at opt-level "z"; instantiated here they run at this crate's opt-level 3.
//! Nothing generic leaves this crate for the same reason.

#![forbid(unsafe_code)]

use hmac::digest::{Digest, FixedOutput, KeyInit, Update};
use subtle::ConstantTimeEq;

/// A keyed MAC state: the key's padded blocks hashed once (per app, when the configuration loads),
/// cloned for every message.
pub trait Mac: Clone {
    fn update(&mut self, data: &[u8]);
    /// Whether the MAC of the message given equals `expected`, compared in constant time.
    fn matches(self, expected: &[u8]) -> bool;
}

/// HMAC-SHA256 keyed with a secret.
#[derive(Clone)]
pub struct HmacSha256(hmac::Hmac<sha2::Sha256>);

/// HMAC-SHA1 keyed with a secret.
#[derive(Clone)]
pub struct HmacSha1(hmac::Hmac<sha1::Sha1>);

impl HmacSha256 {
    /// `None` never happens for HMAC (any key length is valid); kept so no caller unwraps.
    pub fn new(key: &[u8]) -> Option<Self> {
        <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).ok().map(HmacSha256)
    }

    pub fn finalize(self) -> [u8; 32] {
        self.0.finalize_fixed().into()
    }
}

impl HmacSha1 {
    /// `None` never happens for HMAC (any key length is valid); kept so no caller unwraps.
    pub fn new(key: &[u8]) -> Option<Self> {
        <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key).ok().map(HmacSha1)
    }

    pub fn finalize(self) -> [u8; 20] {
        self.0.finalize_fixed().into()
    }
}

impl Mac for HmacSha256 {
    fn update(&mut self, data: &[u8]) {
        Update::update(&mut self.0, data);
    }

    fn matches(self, expected: &[u8]) -> bool {
        bool::from(self.finalize().as_slice().ct_eq(expected))
    }
}

impl Mac for HmacSha1 {
    fn update(&mut self, data: &[u8]) {
        Update::update(&mut self.0, data);
    }

    fn matches(self, expected: &[u8]) -> bool {
        bool::from(self.finalize().as_slice().ct_eq(expected))
    }
}

// The key state is secret-derived: never printed.
impl std::fmt::Debug for HmacSha256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacSha256(..)")
    }
}

impl std::fmt::Debug for HmacSha1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacSha1(..)")
    }
}

/// SHA-256 of the concatenated `parts`.
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = <sha2::Sha256 as Digest>::new();
    for p in parts {
        Update::update(&mut h, p);
    }
    Digest::finalize(h).into()
}

/// MD5 of `data` (`Content-MD5`).
pub fn md5(data: &[u8]) -> [u8; 16] {
    <md5::Md5 as Digest>::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn known_answers() {
        // RFC 4231 test case 2, RFC 2202 test case 2.
        let mut m = HmacSha256::new(b"Jefe").unwrap();
        Mac::update(&mut m, b"what do ya want ");
        let whole = m.clone();
        Mac::update(&mut m, b"for nothing?");
        assert_eq!(hex(&m.finalize()), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        let mut s = HmacSha1::new(b"Jefe").unwrap();
        Mac::update(&mut s, b"what do ya want for nothing?");
        assert_eq!(hex(&s.finalize()), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
        assert!(!whole.matches(&[0; 32]));
        assert_eq!(hex(&sha256(&[b"a", b"bc"])), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(hex(&md5(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn matches_only_the_whole_mac() {
        let mut m = HmacSha256::new(b"k").unwrap();
        Mac::update(&mut m, b"msg");
        let mac = m.clone().finalize();
        assert!(m.clone().matches(&mac));
        assert!(!m.clone().matches(&mac[..31]));
        let mut other = mac;
        other[0] ^= 1;
        assert!(!m.matches(&other));
    }
}
