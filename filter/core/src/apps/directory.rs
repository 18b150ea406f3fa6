//! Apps and their credentials, as the static configuration and the app registry define them: an app's
//! key pairs (its own, plus `keys`, each optionally `validUntil`, so a secret is rotated without a
//! failed request), its AppCodes, and the lookup tables a request uses. HMAC key schedules are
//! prepared here, once, not per request.

use crate::schema::validator::{join, Validator};
use crate::wire::time::parse_instant;
use cagate_digest::{sha256, HmacSha1, HmacSha256};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;

/// One key pair of an app. Debug output leaves the secret out.
#[derive(Clone)]
pub struct Credential {
    pub key: String,
    pub(crate) hmac_sha256: HmacSha256,
    pub(crate) hmac_sha1: HmacSha1,
    /// The pair authenticates until then (epoch ms); `None`: no end.
    pub valid_until_ms: Option<i64>,
}

impl Credential {
    pub fn valid_at(&self, now_ms: i64) -> bool {
        self.valid_until_ms.is_none_or(|end| now_ms < end)
    }
}

/// An app: its identity and its key pairs. Debug output leaves the secrets out.
#[derive(Clone)]
pub struct App {
    pub id: String,
    pub name: String,
    /// The app's own `appKey`.
    pub key: String,
    pub owner_id: String,
    pub credentials: Vec<Credential>,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App").field("id", &self.id).field("name", &self.name).field("key", &self.key).finish_non_exhaustive()
    }
}

/// The apps and their lookup tables.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    pub apps: Vec<App>,
    pub(crate) by_key: HashMap<Box<[u8]>, u32>,
    /// AppCodes by their SHA-256 (a lookup's timing then depends on a digest, not on the secret).
    pub(crate) by_code: HashMap<[u8; 32], u32>,
    pub(crate) by_id: HashMap<String, u32>,
    /// Where each AppCode (by digest) was defined, to name it in a duplicate's message.
    code_paths: HashMap<[u8; 32], String>,
}

impl Directory {
    pub fn by_code(&self, code: &[u8]) -> Option<u32> {
        self.by_code.get(&sha256(&[code])).copied()
    }
}

const APP_FIELDS: &[&str] = &["appId", "name", "appKey", "appSecret", "appCodes", "ownerId", "description", "keys"];
const KEY_FIELDS: &[&str] = &["appKey", "appSecret", "validUntil"];

/// Where a secret may come from besides the document: the Wasm VM's environment, for
/// `{"env": "NAME"}` (static configuration only; `None` for the registry).
pub(crate) type Env<'a> = Option<&'a dyn Fn(&str) -> Option<String>>;

/// Adds the apps of `list` (at `path`) to `dir`, reporting every problem: duplicate appIds, an appKey
/// or AppCode of two apps (also against the apps already in `dir`).
pub(crate) fn add_apps(c: &mut Validator, list: &[Value], path: &str, env: Env<'_>, dir: &mut Directory) {
    for (i, v) in list.iter().enumerate() {
        add_app(c, v, &format!("{path}[{i}]"), env, dir);
    }
}

/// Adds one app (at `p`) to `dir`; see `add_apps`.
pub(crate) fn add_app(c: &mut Validator, v: &Value, p: &str, env: Env<'_>, dir: &mut Directory) {
    let Some(o) = c.object(v, p, APP_FIELDS) else { return };
    // What names the app reaches headers, logs and metrics: refused (and left out) with a control
    // character, by the one rule of `Validator::text`.
    let id = c.id(o, p, "appId", true).filter(|s| c.text(&join(p, "appId"), s));
    let name = c.string(o, p, "name", false).filter(|s| c.text(&join(p, "name"), s)).map(str::to_string);
    let owner = c.id(o, p, "ownerId", false).filter(|s| c.text(&join(p, "ownerId"), s));
    let _ = c.string(o, p, "description", false);
    let codes: Vec<(usize, &str)> = c
        .strings(o, p, "appCodes")
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .filter(|(j, code)| c.text(&format!("{p}.appCodes[{j}]"), code))
        .collect();
    let idx = dir.apps.len() as u32;
    let own = credential(c, o, p, env, false);
    // Each pair with the path of its appKey, for a duplicate's message.
    let mut credentials: Vec<(Credential, String)> = own.iter().map(|k| (k.clone(), join(p, "appKey"))).collect();
    for (j, k) in c.array(o, p, "keys").iter().enumerate() {
        let kp = format!("{p}.keys[{j}]");
        if let Some(ko) = c.object(k, &kp, KEY_FIELDS) {
            credentials.extend(credential(c, ko, &kp, env, true).map(|k| (k, join(&kp, "appKey"))));
        }
    }
    if let Some(id) = &id {
        if dir.by_id.insert(id.clone(), idx).is_some() {
            c.err(&join(p, "appId"), format!("duplicate appId {id}"));
        }
    }
    for (cred, at) in &credentials {
        match dir.by_key.get(cred.key.as_bytes()) {
            // The same app may repeat its key with another secret: that is a rotation.
            Some(&other) if other == idx => {}
            Some(_) => c.err(at, format!("duplicate appKey {}", cred.key)),
            None => {
                dir.by_key.insert(cred.key.as_bytes().into(), idx);
            }
        }
    }
    for (j, code) in codes {
        let here = format!("{p}.appCodes[{j}]");
        let digest = sha256(&[code.as_bytes()]);
        if let Some(first) = dir.code_paths.get(&digest) {
            c.err(&here, format!("duplicate AppCode (same as {first})"));
        } else {
            dir.code_paths.insert(digest, here);
            dir.by_code.insert(digest, idx);
        }
    }
    let (Some(id), Some(own)) = (id, own) else { return };
    dir.apps.push(App {
        name: name.unwrap_or_else(|| id.clone()),
        owner_id: owner.unwrap_or_else(|| id.clone()),
        key: own.key,
        id,
        credentials: credentials.into_iter().map(|(k, _)| k).collect(),
    });
}

/// A key pair at `p`: `appKey`, `appSecret` (a string, or `{"env": NAME}` where allowed) and, for the
/// further pairs of `keys`, `validUntil`.
fn credential(c: &mut Validator, o: &Map<String, Value>, p: &str, env: Env<'_>, further: bool) -> Option<Credential> {
    let key = c.string(o, p, "appKey", true).filter(|s| c.text(&join(p, "appKey"), s));
    let secret = secret(c, o, p, env);
    let valid_until_ms = match (further, o.get("validUntil")) {
        (true, Some(_)) => c.string(o, p, "validUntil", false).and_then(|t| {
            let parsed = parse_instant(t);
            if parsed.is_none() {
                c.err(&join(p, "validUntil"), "must be an RFC 3339 time or an HTTP date in GMT");
            }
            parsed
        }),
        _ => None,
    };
    let (key, secret) = (key?, secret?);
    let (Some(hmac_sha256), Some(hmac_sha1)) = (HmacSha256::new(secret.as_bytes()), HmacSha1::new(secret.as_bytes())) else {
        c.err(&join(p, "appSecret"), "cannot be used as an HMAC key");
        return None;
    };
    Some(Credential { key: key.to_string(), hmac_sha256, hmac_sha1, valid_until_ms })
}

fn secret(c: &mut Validator, o: &Map<String, Value>, p: &str, env: Env<'_>) -> Option<String> {
    let here = join(p, "appSecret");
    match o.get("appSecret") {
        Some(Value::Object(e)) => {
            let Some(env) = env else {
                c.err(&here, "must be a string here ({\"env\": …} is for the static configuration)");
                return None;
            };
            let name = match (e.len(), e.get("env").and_then(Value::as_str)) {
                (1, Some(n)) if !n.is_empty() => n,
                _ => {
                    c.err(&here, "must be a string or {\"env\": \"NAME\"}");
                    return None;
                }
            };
            match env(name) {
                Some(v) if !v.is_empty() => Some(v),
                // The variable's name is not a secret; its value never appears in a message.
                _ => {
                    c.err(&here, format!("environment variable {name} is not set in the Wasm VM (vm_config.environment_variables)"));
                    None
                }
            }
        }
        _ => c.string(o, p, "appSecret", true).map(str::to_string),
    }
}
