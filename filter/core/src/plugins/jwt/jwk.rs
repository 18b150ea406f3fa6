//! JSON Web Keys (RFC 7517) to verification keys. The key decides which algorithms it verifies: a
//! token whose `alg` its key does not allow is refused, so `alg: none` and "HS256 with the RSA public
//! key as the secret" never verify.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cagate_pubkey::{Hash, P256Key, P384Key, RsaKey};
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::{Sha256, Sha384, Sha512};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
    HS256,
    HS384,
    HS512,
}

impl Alg {
    pub fn parse(s: &str) -> Option<Alg> {
        Some(match s {
            "RS256" => Alg::RS256,
            "RS384" => Alg::RS384,
            "RS512" => Alg::RS512,
            "PS256" => Alg::PS256,
            "PS384" => Alg::PS384,
            "PS512" => Alg::PS512,
            "ES256" => Alg::ES256,
            "ES384" => Alg::ES384,
            "EdDSA" => Alg::EdDSA,
            "HS256" => Alg::HS256,
            "HS384" => Alg::HS384,
            "HS512" => Alg::HS512,
            _ => return None,
        })
    }
}

#[derive(Clone)]
enum Material {
    Rsa(RsaKey),
    P256(P256Key),
    P384(P384Key),
    Ed25519(ed25519_dalek::VerifyingKey),
    Oct(Vec<u8>),
}

/// A verification key with its `kid` and the algorithm it is pinned to, if any.
#[derive(Clone)]
pub struct Key {
    pub kid: Option<String>,
    pub alg: Option<Alg>,
    material: Material,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kty = match self.material {
            Material::Rsa(_) => "RSA",
            Material::P256(_) => "EC P-256",
            Material::P384(_) => "EC P-384",
            Material::Ed25519(_) => "OKP Ed25519",
            Material::Oct(_) => "oct",
        };
        f.debug_struct("Key").field("kid", &self.kid).field("alg", &self.alg).field("kty", &kty).finish()
    }
}

fn b64(map: &Map<String, Value>, field: &str) -> Result<Vec<u8>, String> {
    let s = map.get(field).and_then(Value::as_str).ok_or_else(|| format!("`{field}` is required (base64url)"))?;
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).map_err(|_| format!("`{field}` is not base64url"))
}

fn exact<const N: usize>(v: Vec<u8>, what: &str) -> Result<[u8; N], String> {
    v.try_into().map_err(|_| format!("{what} must be {N} bytes"))
}

impl Key {
    /// Parses one JWK. Errors are messages for the configuration checker; they never quote key material.
    pub fn from_jwk(v: &Value) -> Result<Key, String> {
        let map = v.as_object().ok_or("a JWK must be an object")?;
        let kid = match map.get("kid") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err("`kid` must be a string".into()),
        };
        let alg = match map.get("alg").and_then(Value::as_str) {
            None => None,
            Some(a) => Some(Alg::parse(a).ok_or_else(|| format!("unsupported alg {a}"))?),
        };
        if let Some(u) = map.get("use").and_then(Value::as_str) {
            if u != "sig" {
                return Err(format!("`use` is {u}, not sig"));
            }
        }
        let kty = map.get("kty").and_then(Value::as_str).ok_or("`kty` is required")?;
        let crv = map.get("crv").and_then(Value::as_str);
        let (material, allowed): (Material, &[Alg]) = match (kty, crv) {
            ("RSA", _) => {
                let key = RsaKey::new(&b64(map, "n")?, &b64(map, "e")?)?;
                (Material::Rsa(key), &[Alg::RS256, Alg::RS384, Alg::RS512, Alg::PS256, Alg::PS384, Alg::PS512])
            }
            ("EC", Some("P-256")) => {
                let (x, y) = (exact::<32>(b64(map, "x")?, "x")?, exact::<32>(b64(map, "y")?, "y")?);
                let key = P256Key::new(&x, &y).ok_or("invalid P-256 point")?;
                (Material::P256(key), &[Alg::ES256])
            }
            ("EC", Some("P-384")) => {
                let (x, y) = (exact::<48>(b64(map, "x")?, "x")?, exact::<48>(b64(map, "y")?, "y")?);
                let key = P384Key::new(&x, &y).ok_or("invalid P-384 point")?;
                (Material::P384(key), &[Alg::ES384])
            }
            ("OKP", Some("Ed25519")) => {
                let x = exact::<32>(b64(map, "x")?, "x")?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|_| "invalid Ed25519 key")?;
                (Material::Ed25519(key), &[Alg::EdDSA])
            }
            ("oct", _) => {
                let k = b64(map, "k")?;
                if k.len() < 16 {
                    return Err("an oct key must have at least 16 bytes".into());
                }
                (Material::Oct(k), &[Alg::HS256, Alg::HS384, Alg::HS512])
            }
            ("EC", c) | ("OKP", c) => return Err(format!("unsupported curve {}", c.unwrap_or("(none)"))),
            (other, _) => return Err(format!("unsupported kty {other}")),
        };
        if let Some(a) = alg {
            if !allowed.contains(&a) {
                return Err(format!("alg {a:?} does not fit kty {kty}"));
            }
        }
        Ok(Key { kid, alg, material })
    }

    /// Whether this key may verify a token signed with `alg`.
    pub fn allows(&self, alg: Alg) -> bool {
        if let Some(pinned) = self.alg {
            return pinned == alg;
        }
        matches!(
            (&self.material, alg),
            (Material::Rsa(_), Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512)
                | (Material::P256(_), Alg::ES256)
                | (Material::P384(_), Alg::ES384)
                | (Material::Ed25519(_), Alg::EdDSA)
                | (Material::Oct(_), Alg::HS256 | Alg::HS384 | Alg::HS512)
        )
    }

    /// Verifies `sig` over `signing_input` (`header.payload`). False on any mismatch or malformed
    /// signature, and for an algorithm this key does not allow.
    pub fn verify(&self, alg: Alg, signing_input: &[u8], sig: &[u8]) -> bool {
        if !self.allows(alg) {
            return false;
        }
        fn hmac<M: Mac + hmac::digest::KeyInit>(k: &[u8], msg: &[u8], sig: &[u8]) -> bool {
            match <M as hmac::digest::KeyInit>::new_from_slice(k) {
                Ok(mut m) => {
                    m.update(msg);
                    m.verify_slice(sig).is_ok()
                }
                Err(_) => false,
            }
        }
        match &self.material {
            Material::Rsa(k) => match alg {
                Alg::RS256 => k.verify_pkcs1(Hash::Sha256, signing_input, sig),
                Alg::RS384 => k.verify_pkcs1(Hash::Sha384, signing_input, sig),
                Alg::RS512 => k.verify_pkcs1(Hash::Sha512, signing_input, sig),
                Alg::PS256 => k.verify_pss(Hash::Sha256, signing_input, sig),
                Alg::PS384 => k.verify_pss(Hash::Sha384, signing_input, sig),
                Alg::PS512 => k.verify_pss(Hash::Sha512, signing_input, sig),
                _ => false,
            },
            Material::P256(k) => k.verify(signing_input, sig),
            Material::P384(k) => k.verify(signing_input, sig),
            Material::Ed25519(k) => {
                <[u8; 64]>::try_from(sig).is_ok_and(|s| k.verify_strict(signing_input, &ed25519_dalek::Signature::from_bytes(&s)).is_ok())
            }
            Material::Oct(k) => match alg {
                Alg::HS256 => hmac::<Hmac<Sha256>>(k, signing_input, sig),
                Alg::HS384 => hmac::<Hmac<Sha384>>(k, signing_input, sig),
                Alg::HS512 => hmac::<Hmac<Sha512>>(k, signing_input, sig),
                _ => false,
            },
        }
    }
}

/// The most keys a key set may hold. Each public key is prepared when it loads, on every worker (an
/// EC key's comb tables take 64-96 KB and about a millisecond in Wasm), so a key set from a remote
/// server is bounded; identity providers publish a handful.
pub const MAX_KEYS_IN_SET: usize = 64;

/// Parses the `jwk` and `jwks` of a plugin: one JWK, an array of JWKs, or a JWK Set (`{"keys": [...]}`).
pub fn parse_key_set(v: &Value) -> Result<Vec<Key>, String> {
    let list: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        Value::Object(m) if m.contains_key("keys") => match m.get("keys") {
            Some(Value::Array(a)) => a.iter().collect(),
            _ => return Err("`keys` must be an array".into()),
        },
        Value::Object(_) => vec![v],
        _ => return Err("must be a JWK, an array of JWKs or a JWK Set".into()),
    };
    if list.len() > MAX_KEYS_IN_SET {
        return Err(format!("{} keys: at most {MAX_KEYS_IN_SET} are accepted", list.len()));
    }
    list.into_iter().enumerate().map(|(i, k)| Key::from_jwk(k).map_err(|e| format!("key {i}: {e}"))).collect()
}
