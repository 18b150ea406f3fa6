//! Public-key signature verification for the JWT plugin: RSA (PKCS #1 v1.5 and PSS) and ECDSA over
//! P-256 and P-384, public-key operations only (`rsa.rs` and `ec.rs` say how).
//!
//! A crate of its own for one reason: the Wasm module is built with the core optimised for size (the
//! module must fit a Kubernetes ConfigMap), while this arithmetic is the JWT plugin's hot path and
//! keeps full optimisation. With LTO, generic code is compiled at the optimisation level of the crate
//! that instantiates it, so everything exported here is concrete: the core never instantiates the
//! generic field and curve code itself.

// Unsafe code only where a module allows it: the RSA rows in x86-64 assembly (`rsa/adx.rs`) and the
// Wasm row loop's SIMD loads and stores (`rsa/mont_f64.rs`).
#![deny(unsafe_code)]

mod ec;
mod modinv;
// P-256's field on 29-bit limbs: the Wasm build's (the tests run it on every target).
#[cfg(any(target_arch = "wasm32", test, feature = "p256-limbs29"))]
mod p256_field;
mod rsa;

use sha2::{Sha256, Sha384, Sha512};

/// The hash a signature is made over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

/// An RSA public key prepared for repeated verification.
#[derive(Clone)]
pub struct RsaKey(rsa::RsaKey);

impl RsaKey {
    /// From the big-endian modulus and exponent; the error says what is wrong with the key.
    pub fn new(n_be: &[u8], e_be: &[u8]) -> Result<RsaKey, String> {
        rsa::RsaKey::new(n_be, e_be).map(RsaKey)
    }

    /// RSASSA-PKCS1-v1_5 (RS256, RS384, RS512).
    pub fn verify_pkcs1(&self, hash: Hash, msg: &[u8], sig: &[u8]) -> bool {
        match hash {
            Hash::Sha256 => self.0.verify_pkcs1::<Sha256>(rsa::SHA256_PREFIX, msg, sig),
            Hash::Sha384 => self.0.verify_pkcs1::<Sha384>(rsa::SHA384_PREFIX, msg, sig),
            Hash::Sha512 => self.0.verify_pkcs1::<Sha512>(rsa::SHA512_PREFIX, msg, sig),
        }
    }

    /// RSASSA-PSS with MGF1 of the same hash and a salt as long as the hash (PS256, PS384, PS512).
    pub fn verify_pss(&self, hash: Hash, msg: &[u8], sig: &[u8]) -> bool {
        match hash {
            Hash::Sha256 => self.0.verify_pss::<Sha256>(msg, sig),
            Hash::Sha384 => self.0.verify_pss::<Sha384>(msg, sig),
            Hash::Sha512 => self.0.verify_pss::<Sha512>(msg, sig),
        }
    }
}

/// A P-256 public key with its precomputed table (ES256).
#[derive(Clone)]
pub struct P256Key(ec::PublicKey<8, ec::P256>);

impl P256Key {
    /// From the big-endian affine coordinates; `None` unless the point is on the curve.
    pub fn new(x: &[u8], y: &[u8]) -> Option<P256Key> {
        ec::PublicKey::new(x, y).map(P256Key)
    }

    /// Verifies `sig` (r ‖ s, 64 bytes) over the SHA-256 digest of the message.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        use sha2::Digest;
        self.0.verify(&Sha256::digest(msg), sig)
    }
}

/// A P-384 public key with its precomputed table (ES384).
#[derive(Clone)]
pub struct P384Key(ec::PublicKey<12, ec::P384>);

impl P384Key {
    /// From the big-endian affine coordinates; `None` unless the point is on the curve.
    pub fn new(x: &[u8], y: &[u8]) -> Option<P384Key> {
        ec::PublicKey::new(x, y).map(P384Key)
    }

    /// Verifies `sig` (r ‖ s, 96 bytes) over the SHA-384 digest of the message.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        use sha2::Digest;
        self.0.verify(&Sha384::digest(msg), sig)
    }
}
