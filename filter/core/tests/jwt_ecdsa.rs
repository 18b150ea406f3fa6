#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! cagate's own ECDSA verification (ES256, ES384) against the RustCrypto `p256`/`p384` crates (a
//! dev-dependency only): many keys and messages, high `s`, tampered and out-of-range signatures, and
//! keys that are not points on the curve. The verdict must be the crates' in every case.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cagate_core::jwt::jwk::{Alg, Key};
use serde_json::json;
use sha2::{Digest, Sha256, Sha384};

/// Big-endian n - 1 and n for P-256 and P-384.
const N256: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
const N384: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// (r, s) variants that must be refused: zero, n, all ones, and each with the other half valid.
fn out_of_range(sig: &[u8], n: &[u8]) -> Vec<Vec<u8>> {
    let half = sig.len() / 2;
    let mut out = Vec::new();
    for bad in [vec![0u8; half], n.to_vec(), vec![0xff; half]] {
        out.push([bad.as_slice(), &sig[half..]].concat());
        out.push([&sig[..half], bad.as_slice()].concat());
    }
    out.push(sig[..sig.len() - 1].to_vec());
    out.push([sig, &[0u8][..]].concat());
    out.push(Vec::new());
    out
}

macro_rules! differential {
    ($name:ident, $curve:ident, $alg:expr, $crv:expr, $hash:ident, $n:expr, $len:expr) => {
        #[test]
        fn $name() {
            use $curve::ecdsa::signature::{Signer, Verifier};
            use $curve::ecdsa::{Signature, SigningKey, VerifyingKey};
            let n = unhex($n);
            let mut high_s_seen = 0;
            // Unoptimized (the default test build), the reference crates are slow: fewer cases.
            let (keys, step) = if cfg!(debug_assertions) { (8u32, 29) } else { (48, 5) };
            for i in 0..keys {
                let Ok(sk) = SigningKey::from_slice(&$hash::digest(format!("key {i}"))[..$len]) else { continue };
                let vk = VerifyingKey::from(&sk);
                let point = vk.to_encoded_point(false);
                let jwk = json!({"kty": "EC", "crv": $crv,
                    "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()), "y": URL_SAFE_NO_PAD.encode(point.y().unwrap())});
                let key = Key::from_jwk(&jwk).unwrap();
                let msg = format!("eyJhbGciOiJFUzI1NiJ9.payload-{i}-{}", "x".repeat(i as usize * 7));
                let sig: Signature = sk.sign(msg.as_bytes());
                let bytes = sig.to_bytes().to_vec();
                assert!(key.verify($alg, msg.as_bytes(), &bytes), "key {i}: a valid signature is refused");
                assert!(!key.verify($alg, format!("{msg}.").as_bytes(), &bytes), "key {i}: another message verifies");
                // High s (n - s): whatever the crate decides.
                let (r, s) = sig.split_scalars();
                let high = Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
                let expected = vk.verify(msg.as_bytes(), &high).is_ok();
                high_s_seen += expected as u32;
                assert_eq!(key.verify($alg, msg.as_bytes(), &high.to_bytes()), expected, "key {i}: high s");
                // Every single-bit flip of the signature: the crate's verdict.
                for bit in (0..bytes.len() * 8).step_by(step) {
                    let mut t = bytes.clone();
                    t[bit / 8] ^= 1 << (bit % 8);
                    let expected = Signature::from_slice(&t).is_ok_and(|s| vk.verify(msg.as_bytes(), &s).is_ok());
                    assert_eq!(key.verify($alg, msg.as_bytes(), &t), expected, "key {i}: bit {bit}");
                }
                for t in out_of_range(&bytes, &n) {
                    assert!(!key.verify($alg, msg.as_bytes(), &t), "key {i}: out-of-range signature verifies");
                }
                // Another key's signature, and a point off the curve.
                let other = SigningKey::from_slice(&$hash::digest(format!("other {i}"))[..$len]).unwrap();
                let s2: Signature = other.sign(msg.as_bytes());
                assert!(!key.verify($alg, msg.as_bytes(), &s2.to_bytes()));
                let mut y = point.y().unwrap().to_vec();
                y[0] ^= 0x80;
                let bad = json!({"kty": "EC", "crv": $crv,
                    "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()), "y": URL_SAFE_NO_PAD.encode(&y)});
                assert!(Key::from_jwk(&bad).is_err(), "key {i}: a point off the curve is accepted");
            }
            assert!(high_s_seen >= keys - 2, "high s is accepted, as before");
        }
    };
}

differential!(es256_matches_p256, p256, Alg::ES256, "P-256", Sha256, N256, 32);
differential!(es384_matches_p384, p384, Alg::ES384, "P-384", Sha384, N384, 48);

#[test]
fn curve_mismatch_and_malformed_keys() {
    let v: Vec<serde_json::Value> = serde_json::from_str(include_str!("data/jwt_vectors.json")).unwrap();
    let es256 = v.iter().find(|v| v["alg"] == "ES256").unwrap();
    let es384 = v.iter().find(|v| v["alg"] == "ES384").unwrap();
    // The P-256 coordinates declared as P-384 (and the reverse) are refused: wrong lengths.
    let mut j = es256["jwk"].clone();
    j["crv"] = json!("P-384");
    assert!(Key::from_jwk(&j).is_err());
    let mut j = es384["jwk"].clone();
    j["crv"] = json!("P-256");
    assert!(Key::from_jwk(&j).is_err());
    // x = p (not a canonical coordinate), x = 0 and y = 0.
    let p = unhex("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff");
    for (x, y) in [(p.clone(), vec![1u8; 32]), (vec![0u8; 32], vec![0u8; 32])] {
        let j = json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(&x), "y": URL_SAFE_NO_PAD.encode(&y)});
        assert!(Key::from_jwk(&j).is_err());
    }
    // An ES256 signature is never checked by a P-384 key, nor ES384 by a P-256 key.
    let k256 = Key::from_jwk(&es256["jwk"]).unwrap();
    let k384 = Key::from_jwk(&es384["jwk"]).unwrap();
    let (input, sig) = es384["token"].as_str().unwrap().rsplit_once('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    assert!(k384.verify(Alg::ES384, input.as_bytes(), &sig));
    assert!(!k256.verify(Alg::ES384, input.as_bytes(), &sig));
    assert!(!k384.verify(Alg::ES256, input.as_bytes(), &sig));
}
