//! A new app with credentials from the operating system's random source, ready for `apps[]` of a
//! configuration or a registry document (`cagate apps new`, `cagate apps add`), and new key pairs
//! (`cagate apps rotate`).

use crate::import::value::{map, s};
use serde_yaml::Value;

pub(crate) const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Random bytes from the operating system (getrandom(2) on Linux).
fn random(n: usize) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; n];
    getrandom::getrandom(&mut buf).map_err(|e| format!("no random source: {e}"))?;
    Ok(buf)
}

/// `len` characters of `alphabet`, each uniform (bytes that would bias the choice are drawn again).
pub(crate) fn random_text(alphabet: &[u8], len: usize) -> Result<String, String> {
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in random(len * 2)? {
            if (b as usize) < limit && out.len() < len {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    Ok(out)
}

/// A uniform number from 10000000 to 99999999.
fn random_id() -> Result<u64, String> {
    const SPAN: u64 = 90_000_000;
    let limit = (1u64 << 32) - (1u64 << 32) % SPAN;
    loop {
        let b = random(4)?;
        let n = u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        if n < limit {
            return Ok(10_000_000 + n % SPAN);
        }
    }
}

pub(crate) fn new_app(name: Option<&str>, app_id: Option<&str>) -> Result<Value, String> {
    let id = match app_id {
        Some(id) if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) => {
            return Err(format!("--app-id {id}: letters, digits, '-', '_' or '.'"));
        }
        Some(id) => id.to_string(),
        None => random_id()?.to_string(),
    };
    // Aliyun's app ids are numbers: a numeric id is written as one.
    let id_value = match id.parse::<u64>() {
        Ok(n) if !id.starts_with('0') && id.len() <= 15 => Value::Number(n.into()),
        _ => s(&id),
    };
    let name = name.map_or_else(|| format!("app-{id}"), str::to_string);
    Ok(map([
        ("appId", id_value),
        ("name", s(&name)),
        ("appKey", s(&random_text(BASE62, 24)?)),
        ("appSecret", s(&random_text(BASE62, 32)?)),
        ("appCodes", Value::Sequence(vec![s(&random_text(b"0123456789ABCDEF", 32)?)])),
    ]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use serde_json::{json, Value as Json};

    fn app(name: Option<&str>, id: Option<&str>) -> Json {
        serde_json::from_str(&crate::import::value::to_json(&new_app(name, id).unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn formats_and_fresh_values() {
        let (a, b) = (app(None, None), app(None, None));
        for k in ["appId", "appKey", "appSecret", "appCodes"] {
            assert_ne!(a[k], b[k], "{k}");
        }
        let id = a["appId"].as_u64().unwrap();
        assert!((10_000_000..=99_999_999).contains(&id));
        assert_eq!(a["name"], format!("app-{id}"));
        let key = a["appKey"].as_str().unwrap();
        let secret = a["appSecret"].as_str().unwrap();
        let code = a["appCodes"][0].as_str().unwrap();
        assert!(key.len() == 24 && key.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert!(secret.len() == 32 && secret.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert!(code.len() == 32 && code.bytes().all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c)));
        let keys: Vec<&String> = a.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 5);
        let named = app(Some("billing"), Some("20001"));
        assert_eq!((&named["appId"], &named["name"]), (&json!(20001), &json!("billing")));
        assert_eq!(app(None, Some("ops-1"))["appId"], "ops-1");
        assert!(new_app(None, Some("a b")).is_err());
    }

    #[test]
    fn every_symbol_is_drawn() {
        let text = random_text(BASE62, 4000).unwrap();
        assert!(BASE62.iter().all(|c| text.as_bytes().contains(c)));
    }

    #[test]
    fn the_app_compiles_in_a_configuration() {
        let (a, b) = (app(None, None), app(Some("second"), None));
        let cfg = json!({
            "apps": [a.clone(), b],
            "apis": [ { "name": "x", "method": "GET", "path": "/x", "authorizations": [ { "appId": a["appId"] } ] } ]
        });
        let g = cagate_core::compile(cfg.to_string().as_bytes()).unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(g.app_count(), 2);
    }
}
