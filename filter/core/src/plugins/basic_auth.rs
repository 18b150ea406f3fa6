//! Aliyun's basicAuth plugin: `Authorization: Basic …` against the configured users. Credentials are
//! compared as SHA-256 digests in constant time; refusals carry `WWW-Authenticate`.

use crate::plugins::definition::{AliyunPlugin, Definition};
use crate::schema::validator::{join, Validator};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

#[derive(Clone)]
pub struct BasicConfig {
    pub realm: String,
    /// SHA-256 of `username:password`, and the username.
    users: Vec<([u8; 32], String)>,
}

impl std::fmt::Debug for BasicConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicConfig").field("realm", &self.realm).field("users", &self.users.len()).finish()
    }
}

impl AliyunPlugin for BasicConfig {
    const TYPE: &'static str = "basicAuth";

    fn parse(c: &mut Validator, data: &Value, def: &Definition<'_>) -> Option<Self> {
        let path = def.path;
        let o = c.object(data, path, &["users", "realm"])?;
        let realm = c.string(o, path, "realm", false).unwrap_or("cagate").to_string();
        if realm.contains('"') {
            c.err(&join(path, "realm"), "must not contain a double quote");
        }
        let mut users = Vec::new();
        for (i, u) in c.array(o, path, "users").iter().enumerate() {
            let up = format!("{path}.users[{i}]");
            let Some(uo) = c.object(u, &up, &["username", "password"]) else { continue };
            let name = c.string(uo, &up, "username", true);
            let password = match uo.get("password") {
                Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => {
                    c.err(&join(&up, "password"), "is required: a string or a number");
                    None
                }
            };
            if let (Some(name), Some(password)) = (name, password) {
                if name.contains(':') {
                    c.err(&join(&up, "username"), "must not contain ':'");
                }
                if users.iter().any(|(_, n)| n == name) {
                    c.err(&join(&up, "username"), format!("duplicate user {name}"));
                }
                users.push((Sha256::digest(format!("{name}:{password}").as_bytes()).into(), name.to_string()));
            }
        }
        if users.is_empty() && c.problems.is_empty() {
            c.err(&join(path, "users"), "needs at least one user");
        }
        Some(BasicConfig { realm, users })
    }
}

impl BasicConfig {
    /// The user the `Authorization` header authenticates, if any. Every configured user is compared,
    /// in constant time, whatever matched.
    pub fn check(&self, authorization: Option<&[u8]>) -> Option<&str> {
        let v = crate::wire::url::trim(authorization?);
        let b64 = if crate::wire::url::starts_with_ignore_case(v, b"basic ") { crate::wire::url::trim(v.get(6..)?) } else { return None };
        let raw = STANDARD.decode(b64).ok()?;
        let digest: [u8; 32] = Sha256::digest(&raw).into();
        let mut found = None;
        for (d, name) in &self.users {
            if bool::from(d.ct_eq(&digest)) {
                found = Some(name.as_str());
            }
        }
        found
    }

    pub fn challenge(&self) -> String {
        format!("Basic realm=\"{}\"", self.realm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials() {
        let mut c = Validator::default();
        let b = BasicConfig::parse(
            &mut c,
            &serde_json::json!({ "users": [ { "username": "alice", "password": "s3cret" }, { "username": "bob", "password": 1234 } ] }),
            &Definition { name: "t", path: "p", app_ids: &[] },
        )
        .unwrap();
        assert!(c.problems.is_empty());
        let h = |s: &str| format!("Basic {}", STANDARD.encode(s));
        assert_eq!(b.check(Some(h("alice:s3cret").as_bytes())), Some("alice"));
        assert_eq!(b.check(Some(h("bob:1234").as_bytes())), Some("bob"));
        assert_eq!(b.check(Some(format!("basic  {}", STANDARD.encode("bob:1234")).as_bytes())), Some("bob"));
        assert_eq!(b.check(Some(h("alice:wrong").as_bytes())), None);
        assert_eq!(b.check(Some(h("alice").as_bytes())), None);
        assert_eq!(b.check(Some(b"Basic !!!")), None);
        assert_eq!(b.check(Some(b"Bearer x")), None);
        assert_eq!(b.check(None), None);
        assert_eq!(b.challenge(), "Basic realm=\"cagate\"");
        assert!(!format!("{b:?}").contains("s3cret"));
    }
}
