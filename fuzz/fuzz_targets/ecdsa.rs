//! The core's ECDSA verification (ES256, ES384) against a reference, the RustCrypto p256/p384
//! verifiers (`Key::from_jwk` and `Key::verify` are the core's side):
//! - the same EC public keys are accepted: the x and y of any input that is a JWK or a JWK Set;
//! - the same (key, message, signature) verify: for the input as the message, a valid signature of
//!   it by the harness' key (which the core must accept), its high-S twin, the signature segment of
//!   the input read as a token, and a signature cut from the input; with one of four fixed keys per
//!   input (the harness' and the vectors' P-256 and P-384 keys; the first byte picks) and any key the
//!   input holds. At load, every vector signature against every fixed key.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cagate_core::jwt::jwk::{Alg, Key};
use cagate_fuzz::jwt_vectors;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use std::sync::OnceLock;

/// Signing input and signature of every vector token.
fn fixed_signatures() -> &'static [(Vec<u8>, Vec<u8>)] {
    static S: OnceLock<Vec<(Vec<u8>, Vec<u8>)>> = OnceLock::new();
    S.get_or_init(|| {
        jwt_vectors()
            .iter()
            .filter_map(|v| v["token"].as_str())
            .filter_map(|t| t.rsplit_once('.'))
            .map(|(input, sig)| (input.as_bytes().to_vec(), URL_SAFE_NO_PAD.decode(sig).unwrap_or_default()))
            .collect()
    })
}

/// The reference ECDSA verifiers.
enum Reference {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
}

impl Reference {
    fn from_xy(crv: &str, x: &[u8], y: &[u8]) -> Option<Reference> {
        match (crv, x.len(), y.len()) {
            ("P-256", 32, 32) => {
                let p = p256::EncodedPoint::from_affine_coordinates(p256::FieldBytes::from_slice(x), p256::FieldBytes::from_slice(y), false);
                p256::ecdsa::VerifyingKey::from_encoded_point(&p).ok().map(Reference::P256)
            }
            ("P-384", 48, 48) => {
                let p = p384::EncodedPoint::from_affine_coordinates(p384::FieldBytes::from_slice(x), p384::FieldBytes::from_slice(y), false);
                p384::ecdsa::VerifyingKey::from_encoded_point(&p).ok().map(Reference::P384)
            }
            _ => None,
        }
    }

    fn alg(&self) -> Alg {
        match self {
            Reference::P256(_) => Alg::ES256,
            Reference::P384(_) => Alg::ES384,
        }
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match self {
            Reference::P256(k) => {
                use p256::ecdsa::signature::Verifier;
                p256::ecdsa::Signature::from_slice(sig).is_ok_and(|s| k.verify(msg, &s).is_ok())
            }
            Reference::P384(k) => {
                use p384::ecdsa::signature::Verifier;
                p384::ecdsa::Signature::from_slice(sig).is_ok_and(|s| k.verify(msg, &s).is_ok())
            }
        }
    }

    /// The same signature with s replaced by n - s.
    fn high_s_twin(&self, sig: &[u8]) -> Option<Vec<u8>> {
        match self {
            Reference::P256(_) => {
                let s = p256::ecdsa::Signature::from_slice(sig).ok()?;
                let (r, s) = s.split_scalars();
                p256::ecdsa::Signature::from_scalars(r, -s).ok().map(|t| t.to_bytes().to_vec())
            }
            Reference::P384(_) => {
                let s = p384::ecdsa::Signature::from_slice(sig).ok()?;
                let (r, s) = s.split_scalars();
                p384::ecdsa::Signature::from_scalars(r, -s).ok().map(|t| t.to_bytes().to_vec())
            }
        }
    }
}

fn b64_field(v: &Value, field: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(v.get(field)?.as_str()?.trim_end_matches('=')).ok()
}

/// The core's key and the reference for an EC JWK, if the reference accepts it; asserts that the core
/// accepts exactly the points the reference does.
fn ec_pair(jwk: &Value) -> Option<(Key, Reference)> {
    let crv = jwk.get("crv")?.as_str()?;
    let (x, y) = (b64_field(jwk, "x")?, b64_field(jwk, "y")?);
    let minimal = json!({ "kty": "EC", "crv": crv, "x": jwk["x"], "y": jwk["y"] });
    let core = Key::from_jwk(&minimal);
    let reference = Reference::from_xy(crv, &x, &y);
    if crv == "P-256" || crv == "P-384" {
        assert_eq!(core.is_ok(), reference.is_some(), "EC key acceptance differs from p256/p384 for {minimal}: {:?}", core.as_ref().err());
    }
    Some((core.ok()?, reference?))
}

fn same_verdict(core: &Key, reference: &Reference, msg: &[u8], sig: &[u8]) {
    let alg = reference.alg();
    assert_eq!(core.verify(alg, msg, sig), reference.verify(msg, sig), "{alg:?} verdicts differ from p256/p384: message {msg:?}, signature {sig:?}");
}

type Pair = (Key, Reference, Option<fn(&[u8]) -> Vec<u8>>);

/// The harness' and the vectors' EC keys, loaded once (a key load builds the core's comb tables).
fn fixed_pairs() -> &'static [Pair] {
    static P: OnceLock<Vec<Pair>> = OnceLock::new();
    P.get_or_init(|| {
        let jwks = cagate_fuzz::harness_jwks();
        [
            (jwks[0].clone(), Some(cagate_fuzz::es256_sign as fn(&[u8]) -> Vec<u8>)),
            (jwks[1].clone(), Some(cagate_fuzz::es384_sign as fn(&[u8]) -> Vec<u8>)),
            (cagate_fuzz::vector("ES256")["jwk"].clone(), None),
            (cagate_fuzz::vector("ES384")["jwk"].clone(), None),
        ]
        .into_iter()
        .filter_map(|(jwk, signer)| ec_pair(&jwk).map(|(k, r)| (k, r, signer)))
        .inspect(|(core, reference, _)| {
            for (input, sig) in fixed_signatures() {
                same_verdict(core, reference, input, sig);
            }
        })
        .collect()
    })
}

fn ecdsa_differential(data: &[u8]) {
    let mut fuzzed: Vec<Pair> = Vec::new();
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        for jwk in v.get("keys").and_then(Value::as_array).map_or_else(|| vec![v.clone()], Clone::clone) {
            if let Some((k, r)) = ec_pair(&jwk) {
                fuzzed.push((k, r, None));
            }
        }
    }
    let token_sig = data.rsplit(|&b| b == b'.').next().and_then(|s| URL_SAFE_NO_PAD.decode(s).ok());
    // One of the fixed keys per input (the first byte picks it: verifications are not cheap), and the input's own.
    let fixed = fixed_pairs();
    let picked = fixed.get(data.first().map_or(0, |&b| b as usize) % fixed.len().max(1));
    for (i, (core, reference, signer)) in picked.into_iter().chain(&fuzzed).enumerate() {
        let len = if reference.alg() == Alg::ES256 { 64 } else { 96 };
        let mut sigs: Vec<Vec<u8>> = Vec::new();
        if let Some(sign) = signer {
            let good = sign(data);
            assert!(core.verify(reference.alg(), data, &good), "a valid {:?} signature is refused", reference.alg());
            sigs.extend(reference.high_s_twin(&good));
            sigs.push(good);
        }
        sigs.extend(token_sig.clone());
        sigs.push(data.iter().copied().cycle().take(len).collect());
        if i > 0 {
            for (input, sig) in fixed_signatures() {
                same_verdict(core, reference, input, sig);
            }
        }
        for sig in &sigs {
            same_verdict(core, reference, data, sig);
        }
    }
}

fuzz_target!(|data: &[u8]| cagate_fuzz::run(data, ecdsa_differential));
