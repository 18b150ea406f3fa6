//! Aliyun's basicAuth plugin: `Authorization: Basic …` against the configured users. Credentials are
//! compared as SHA-256 digests in constant time; refusals carry `WWW-Authenticate`. More users may
//! come from a plugin dataset (`usersDatasetId`, entries `username:password`), looked up per request.

use crate::plugins::definition::{AliyunPlugin, Definition};
use crate::schema::validator::{join, Validator};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use cagate_digest::sha256;
use serde_json::Value;
use subtle::ConstantTimeEq;

#[derive(Clone)]
pub struct BasicConfig {
    pub realm: String,
    /// SHA-256 of `username:password`, and the username.
    users: Vec<([u8; 32], String)>,
    /// `usersDatasetId`: (dataset id, field path).
    users_dataset: Option<(String, String)>,
}

impl std::fmt::Debug for BasicConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicConfig")
            .field("realm", &self.realm)
            .field("users", &self.users.len())
            .field("users_dataset", &self.users_dataset)
            .finish()
    }
}

impl AliyunPlugin for BasicConfig {
    const TYPE: &'static str = "basicAuth";

    fn parse(c: &mut Validator, data: &Value, def: &Definition<'_>) -> Option<Self> {
        let path = def.path;
        let o = c.object(data, path, &["users", "realm", "usersDatasetId"])?;
        let users_dataset = c.id(o, path, "usersDatasetId", false).map(|id| (id, join(path, "usersDatasetId")));
        let realm = c.string(o, path, "realm", false).unwrap_or("cagate").to_string();
        if realm.contains('"') {
            c.err(&join(path, "realm"), "must not contain a double quote");
        }
        let mut users = Vec::new();
        for (i, u) in c.array(o, path, "users").iter().enumerate() {
            let up = format!("{path}.users[{i}]");
            let Some(uo) = c.object(u, &up, &["username", "password"]) else { continue };
            let name = c.id(uo, &up, "username", true);
            let password = match uo.get("password") {
                Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                Some(Value::Number(n)) if n.is_u64() || n.is_i64() => Some(n.to_string()),
                // Its text is lost in parsing (YAML's `1.50` is 1.5): the user could never log in.
                Some(Value::Number(_)) => {
                    c.err(&join(&up, "password"), "a number with a fraction or an exponent must be quoted, as a string");
                    None
                }
                _ => {
                    c.err(&join(&up, "password"), "is required: a string or a number");
                    None
                }
            };
            if let (Some(name), Some(password)) = (name.as_deref(), password) {
                if name.contains(':') {
                    c.err(&join(&up, "username"), "must not contain ':'");
                }
                if users.iter().any(|(_, n)| n == name) {
                    c.err(&join(&up, "username"), format!("duplicate user {name}"));
                }
                users.push((sha256(&[name.as_bytes(), b":", password.as_bytes()]), name.to_string()));
            }
        }
        if users.is_empty() && users_dataset.is_none() && c.problems.is_empty() {
            c.err(&join(path, "users"), "needs at least one user (or usersDatasetId)");
        }
        Some(BasicConfig { realm, users, users_dataset })
    }
}

/// SHA-256 of the `username:password` a `Basic` header carries.
fn credentials_digest(authorization: Option<&[u8]>) -> Option<[u8; 32]> {
    let v = crate::wire::url::trim(authorization?);
    let b64 = if crate::wire::url::starts_with_ignore_case(v, b"basic ") { crate::wire::url::trim(v.get(6..)?) } else { return None };
    let raw = STANDARD.decode(b64).ok()?;
    Some(sha256(&[&raw]))
}

impl BasicConfig {
    /// The user the `Authorization` header authenticates, if any. Every configured user is compared,
    /// in constant time, whatever matched.
    pub fn check(&self, authorization: Option<&[u8]>) -> Option<&str> {
        let digest = credentials_digest(authorization)?;
        let mut found = None;
        for (d, name) in &self.users {
            if bool::from(d.ct_eq(&digest)) {
                found = Some(name.as_str());
            }
        }
        found
    }

    /// Whether the `Authorization` header authenticates a configured user or a live user of the
    /// dataset (`in_dataset(id, digest)`, which compares every entry in constant time).
    pub fn admits(&self, authorization: Option<&[u8]>, in_dataset: &dyn Fn(&str, &[u8; 32]) -> bool) -> bool {
        if self.check(authorization).is_some() {
            return true;
        }
        let Some((id, _)) = &self.users_dataset else { return false };
        credentials_digest(authorization).is_some_and(|d| in_dataset(id, &d))
    }

    /// The dataset the users come from, with the path of the field naming it.
    pub(crate) fn dataset_refs(&self) -> Vec<(&str, &str)> {
        self.users_dataset.iter().map(|(id, path)| (id.as_str(), path.as_str())).collect()
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
        assert!(b.admits(Some(h("bob:1234").as_bytes()), &|_, _| true), "own users without a dataset");
        assert!(!b.admits(Some(h("carol:pw").as_bytes()), &|_, _| true), "no usersDatasetId: no dataset lookup");
    }

    #[test]
    fn numbers_as_yaml_reads_them() {
        let def = Definition { name: "t", path: "p", app_ids: &[] };
        let mut c = Validator::default();
        let b = BasicConfig::parse(&mut c, &serde_json::json!({ "users": [ { "username": 1001, "password": 42 } ] }), &def).unwrap();
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert_eq!(b.check(Some(format!("Basic {}", STANDARD.encode("1001:42")).as_bytes())), Some("1001"));
        // `password: 1.50` would be stored as "1.5": refused at load rather than never matching.
        let mut c = Validator::default();
        BasicConfig::parse(&mut c, &serde_json::json!({ "users": [ { "username": "x", "password": 1.5 } ] }), &def);
        assert!(
            c.problems[0].to_string().contains("p.users[0].password: a number with a fraction or an exponent must be quoted"),
            "{:?}",
            c.problems
        );
    }

    #[test]
    fn users_from_a_dataset() {
        let mut c = Validator::default();
        let b = BasicConfig::parse(&mut c, &serde_json::json!({ "usersDatasetId": "staff" }), &Definition { name: "t", path: "p", app_ids: &[] })
            .unwrap();
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert_eq!(b.dataset_refs(), vec![("staff", "p.usersDatasetId")]);
        let h = |s: &str| format!("Basic {}", STANDARD.encode(s));
        let carol: [u8; 32] = sha256(&[b"carol:pw"]);
        let in_ds = |id: &str, d: &[u8; 32]| id == "staff" && *d == carol;
        assert!(b.admits(Some(h("carol:pw").as_bytes()), &in_ds));
        assert!(!b.admits(Some(h("carol:other").as_bytes()), &in_ds));
        assert!(!b.admits(None, &in_ds));
        let mut c = Validator::default();
        let _ = BasicConfig::parse(&mut c, &serde_json::json!({}), &Definition { name: "t", path: "p", app_ids: &[] });
        assert_eq!(c.problems[0].to_string(), "p.users: needs at least one user (or usersDatasetId)");
    }
}
