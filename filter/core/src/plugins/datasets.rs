//! Aliyun's plugin datasets: named lists of entries (a value, an optional expiry) that plugins refer
//! to by id instead of carrying the list in their own data: ipControl's `blocksDatasetId`,
//! accessControl's `assertInDataset`, basicAuth's `usersDatasetId`. Declared in the static
//! configuration (`datasets`) and replaced, by id, by the app registry's document; plugins look them up
//! per request, so a registry document changes what they admit without touching the plugins.
//!
//! Every list is bounded (datasets, entries per dataset, entries in all) and checked as a whole at
//! load. An expired entry stays in memory until the next document and is skipped at request time.

use crate::plugins::binding::{Plugin, PluginKind};
use crate::plugins::ip_control::Block;
use crate::schema::validator::{join, Validator};
use crate::wire::time::parse_instant;
use cagate_digest::sha256;
use serde_json::Value;
use std::collections::HashMap;
use subtle::ConstantTimeEq;

/// Most datasets in one document (Aliyun's default quota is 100).
pub(crate) const MAX_DATASETS: usize = 100;
/// Most entries in one dataset (Aliyun's default quota is 200; cagate allows more).
pub(crate) const MAX_ENTRIES: usize = 10_000;
/// Most entries in all datasets of one document together.
pub(crate) const MAX_TOTAL_ENTRIES: usize = 50_000;
/// Longest entry value.
pub(crate) const MAX_VALUE_BYTES: usize = 1024;
/// Longest dataset id.
const MAX_ID: usize = 64;

const DATASET_FIELDS: &[&str] = &["id", "name", "type", "entries", "description"];
const ENTRY_FIELDS: &[&str] = &["value", "expiredTime", "description"];

/// What a dataset holds, and so which plugin field may refer to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetType {
    /// IP addresses and CIDR blocks (ipControl's `blocksDatasetId`).
    IpWhitelistCidr,
    /// Parameter values (accessControl's `assertInDataset`).
    ParameterAccess,
    /// Aliyun's JWT blocklist type: accepted; no plugin of cagate reads it yet.
    JwtBlocking,
    /// cagate's own: `username:password` entries (basicAuth's `usersDatasetId`).
    BasicAuthUsers,
}

const TYPES: &[(&str, DatasetType)] = &[
    ("IP_WHITELIST_CIDR", DatasetType::IpWhitelistCidr),
    ("PARAMETER_ACCESS", DatasetType::ParameterAccess),
    ("JWT_BLOCKING", DatasetType::JwtBlocking),
    ("BASIC_AUTH_USERS", DatasetType::BasicAuthUsers),
];

impl DatasetType {
    pub fn as_str(self) -> &'static str {
        TYPES.iter().find(|(_, t)| *t == self).map_or("", |(n, _)| n)
    }
}

/// An entry's expiry; `None`: never.
type Expiry = Option<i64>;

fn live(expires_ms: Expiry, now_ms: i64) -> bool {
    expires_ms.is_none_or(|e| now_ms < e)
}

/// One dataset, its entries prepared for the lookup its type needs.
#[derive(Clone)]
pub struct Dataset {
    pub id: String,
    pub name: String,
    pub kind: DatasetType,
    /// Entries as given (every type but users).
    values: HashMap<String, Expiry>,
    /// IP_WHITELIST_CIDR: the parsed blocks.
    blocks: Vec<(Block, Expiry)>,
    /// BASIC_AUTH_USERS: SHA-256 of `username:password`; the value itself is not kept.
    users: Vec<([u8; 32], Expiry)>,
    entries: usize,
}

impl std::fmt::Debug for Dataset {
    // Entries may be passwords: only the count is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset").field("id", &self.id).field("kind", &self.kind).field("entries", &self.entries).finish()
    }
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.entries
    }
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }
}

/// The datasets of a configuration, by id.
#[derive(Debug, Clone, Default)]
pub struct Datasets {
    list: Vec<Dataset>,
    by_id: HashMap<String, usize>,
}

impl Datasets {
    pub fn get(&self, id: &str) -> Option<&Dataset> {
        self.by_id.get(id).and_then(|&i| self.list.get(i))
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Every entry of every dataset.
    pub fn entries(&self) -> usize {
        self.list.iter().map(|d| d.entries).sum()
    }

    /// Whether `value` is a live entry of the dataset.
    pub fn contains(&self, id: &str, value: &str, now_ms: i64) -> bool {
        self.get(id).and_then(|d| d.values.get(value)).is_some_and(|e| live(*e, now_ms))
    }

    /// Whether the address (see `ip_control::ip_key`) is in a live block of the dataset.
    pub fn has_ip(&self, id: &str, ip: u128, now_ms: i64) -> bool {
        self.get(id).is_some_and(|d| d.blocks.iter().any(|(b, e)| live(*e, now_ms) && b.contains(ip)))
    }

    /// Whether the SHA-256 of `username:password` is a live user of the dataset. Every entry is
    /// compared, in constant time, whatever matched.
    pub fn has_user(&self, id: &str, digest: &[u8; 32], now_ms: i64) -> bool {
        let Some(d) = self.get(id) else { return false };
        let mut found = false;
        for (u, e) in &d.users {
            let same = bool::from(u.ct_eq(digest));
            found |= same & live(*e, now_ms);
        }
        found
    }

    /// Replaces the dataset of the same id (the registry's document over the static one).
    fn replace(&mut self, d: Dataset) {
        match self.by_id.get(&d.id).and_then(|&i| self.list.get_mut(i)) {
            Some(slot) => *slot = d,
            None => {
                self.by_id.insert(d.id.clone(), self.list.len());
                self.list.push(d);
            }
        }
    }
}

/// A dataset id: letters, digits, `-`, `_`, `.` (Aliyun's are hex strings); never a control character,
/// so that messages may quote it.
pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Parses one entry into `d`; `ep` is its path. Values are never quoted in messages (a user's entry
/// is a password).
fn entry(c: &mut Validator, v: &Value, ep: &str, d: &mut Dataset, seen: &mut HashMap<[u8; 32], usize>, k: usize) {
    let Some(o) = c.object(v, ep, ENTRY_FIELDS) else { return };
    let _ = c.string(o, ep, "description", false);
    let expires = c.string(o, ep, "expiredTime", false).and_then(|t| {
        let parsed = parse_instant(t);
        if parsed.is_none() {
            c.err(&join(ep, "expiredTime"), "must be an RFC 3339 time or an HTTP date in GMT");
        }
        parsed
    });
    let value = match o.get("value") {
        Some(Value::String(s)) if !s.is_empty() => s.as_str(),
        _ => {
            c.err(&join(ep, "value"), "is required: a non-empty string");
            return;
        }
    };
    let vp = join(ep, "value");
    if value.len() > MAX_VALUE_BYTES {
        c.err(&vp, format!("is {} bytes; an entry is at most {MAX_VALUE_BYTES}", value.len()));
        return;
    }
    if !c.text(&vp, value) {
        return;
    }
    let digest: [u8; 32] = sha256(&[value.as_bytes()]);
    if let Some(first) = seen.insert(digest, k) {
        c.err(&vp, format!("duplicate entry (same as entries[{first}])"));
        return;
    }
    match d.kind {
        DatasetType::IpWhitelistCidr => match Block::parse(value) {
            Some(b) => d.blocks.push((b, expires)),
            None => c.err(&vp, "is not an IP address or CIDR block"),
        },
        DatasetType::BasicAuthUsers => match value.split_once(':') {
            Some((user, password)) if !user.is_empty() && !password.is_empty() => d.users.push((digest, expires)),
            _ => c.err(&vp, "must be username:password, both non-empty"),
        },
        DatasetType::ParameterAccess | DatasetType::JwtBlocking => {
            d.values.insert(value.to_string(), expires);
        }
    }
    d.entries += 1;
}

/// Parses one dataset.
fn dataset(c: &mut Validator, v: &Value, p: &str) -> Option<Dataset> {
    let o = c.object(v, p, DATASET_FIELDS)?;
    let _ = c.string(o, p, "description", false);
    let id = c.id(o, p, "id", true);
    if id.as_deref().is_some_and(|id| !valid_id(id)) {
        c.err(&join(p, "id"), format!("must be 1 to {MAX_ID} letters, digits, '-', '_' or '.'"));
    }
    let name = c.string(o, p, "name", false).filter(|n| c.text(&join(p, "name"), n)).unwrap_or_default().to_string();
    let kind = c.choice(o, p, "type", "dataset type", true, TYPES);
    let list = c.array(o, p, "entries");
    if list.len() > MAX_ENTRIES {
        c.err(&join(p, "entries"), format!("has {} entries; a dataset has at most {MAX_ENTRIES}", list.len()));
        return None;
    }
    let (Some(id), Some(kind)) = (id, kind) else { return None };
    let mut d = Dataset { id, name, kind, values: HashMap::new(), blocks: Vec::new(), users: Vec::new(), entries: 0 };
    let mut seen = HashMap::new();
    for (k, e) in list.iter().enumerate() {
        entry(c, e, &format!("{p}.entries[{k}]"), &mut d, &mut seen, k);
    }
    Some(d)
}

/// Parses a `datasets` list (the static configuration's or a registry document's) at `path`.
pub(crate) fn parse(c: &mut Validator, list: &[Value], path: &str) -> Vec<Dataset> {
    if list.len() > MAX_DATASETS {
        c.err(path, format!("has {} datasets; at most {MAX_DATASETS}", list.len()));
        return Vec::new();
    }
    let total: usize = list.iter().filter_map(|d| d.get("entries").and_then(Value::as_array)).map(Vec::len).sum();
    if total > MAX_TOTAL_ENTRIES {
        c.err(path, format!("has {total} entries in all; at most {MAX_TOTAL_ENTRIES}"));
        return Vec::new();
    }
    let mut out: Vec<Dataset> = Vec::new();
    for (i, v) in list.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let Some(d) = dataset(c, v, &p) else { continue };
        if let Some(j) = out.iter().position(|x| x.id == d.id) {
            c.err(&join(&p, "id"), format!("duplicate dataset id {} (also {path}[{j}])", d.id));
            continue;
        }
        out.push(d);
    }
    out
}

/// The static configuration's datasets.
pub(crate) fn declare(list: Vec<Dataset>) -> Datasets {
    let mut sets = Datasets::default();
    for d in list {
        sets.replace(d);
    }
    sets
}

/// A registry document's datasets over the static ones: each replaces the declared dataset of its
/// id, whose type it must keep (plugins were checked against it); an id the static configuration does
/// not declare is refused (no plugin could refer to it).
pub(crate) fn merge(c: &mut Validator, sets: &mut Datasets, list: Vec<Dataset>, path: &str) {
    for (i, d) in list.into_iter().enumerate() {
        let p = format!("{path}[{i}].id");
        match sets.get(&d.id).map(|s| s.kind) {
            None => c.err(&p, format!("unknown dataset {}: declare it in the static configuration's datasets first", d.id)),
            Some(k) if k != d.kind => c.err(&p, format!("dataset {} is declared as {}, not {}", d.id, k.as_str(), d.kind.as_str())),
            Some(_) => sets.replace(d),
        }
    }
}

/// Checks every plugin's references: the dataset exists and is of the type the field reads.
pub(crate) fn check_references(c: &mut Validator, plugins: &[Plugin], sets: &Datasets) {
    for p in plugins {
        let (refs, want) = match &p.kind {
            PluginKind::Ip(cfg) => (cfg.dataset_refs(), DatasetType::IpWhitelistCidr),
            PluginKind::Access(cfg) => (cfg.dataset_refs(), DatasetType::ParameterAccess),
            PluginKind::Basic(cfg) => (cfg.dataset_refs(), DatasetType::BasicAuthUsers),
            _ => continue,
        };
        for (id, path) in refs {
            if !valid_id(id) {
                c.err(path, "is not a dataset id: letters, digits, '-', '_' or '.'");
                continue;
            }
            match sets.get(id).map(|d| d.kind) {
                None => c.err(path, format!("unknown dataset {id}")),
                Some(k) if k != want => c.err(path, format!("dataset {id} is {}; this field reads a {} dataset", k.as_str(), want.as_str())),
                Some(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(v: Value) -> (Datasets, Vec<String>) {
        let mut c = Validator::default();
        let list = parse(&mut c, v.as_array().unwrap(), "datasets");
        (declare(list), c.problems.iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn lookups_and_expiry() {
        let (s, problems) = parsed(json!([
            { "id": "ips", "type": "IP_WHITELIST_CIDR", "entries": [ { "value": "10.0.0.0/8" }, { "value": "192.0.2.1", "expiredTime": "2030-01-01T00:00:00Z" } ] },
            { "id": "vals", "type": "PARAMETER_ACCESS", "entries": [ { "value": "gold" }, { "value": "old", "expiredTime": "2020-01-01T00:00:00Z" } ] },
            { "id": "users", "type": "BASIC_AUTH_USERS", "entries": [ { "value": "alice:s3cret" } ] }
        ]));
        assert!(problems.is_empty(), "{problems:?}");
        let now = 1_800_000_000_000; // 2027
        let key = |s: &str| crate::plugins::ip_control::ip_key(s.parse().unwrap());
        assert!(s.has_ip("ips", key("10.9.9.9"), now));
        assert!(s.has_ip("ips", key("192.0.2.1"), now));
        assert!(!s.has_ip("ips", key("192.0.2.1"), 1_900_000_000_000), "expired in 2030");
        assert!(!s.has_ip("ips", key("192.0.2.2"), now));
        assert!(!s.has_ip("nope", key("10.0.0.1"), now));
        assert!(s.contains("vals", "gold", now));
        assert!(!s.contains("vals", "old", now), "expired");
        assert!(!s.contains("vals", "Gold", now));
        let d = |t: &str| -> [u8; 32] { sha256(&[t.as_bytes()]) };
        assert!(s.has_user("users", &d("alice:s3cret"), now));
        assert!(!s.has_user("users", &d("alice:wrong"), now));
        assert_eq!(s.entries(), 5);
        assert!(!format!("{s:?}").contains("s3cret"), "Debug shows no entry");
    }

    #[test]
    fn problems_name_their_path_and_quote_no_value() {
        let (_, problems) = parsed(json!([
            { "id": "a", "type": "IP_WHITELIST_CIDR", "entries": [ { "value": "10.0.0.300" }, { "value": "1.2.3.4", "expiredTime": "soon" } ] },
            { "id": "a", "type": "PARAMETER_ACCESS" },
            { "id": "b c", "type": "NOPE", "bogus": 1 },
            { "id": "u", "type": "BASIC_AUTH_USERS", "entries": [ { "value": "nopassword-secret" }, { "value": "x:y" }, { "value": "x:y" } ] }
        ]));
        let all = problems.join("\n");
        for expected in [
            "datasets[0].entries[0].value: is not an IP address or CIDR block",
            "datasets[0].entries[1].expiredTime: must be an RFC 3339",
            "datasets[1].id: duplicate dataset id a (also datasets[0])",
            "datasets[2].id: must be 1 to 64 letters",
            "datasets[2].type: unknown dataset type NOPE",
            "datasets[2].bogus: unknown field",
            "datasets[3].entries[0].value: must be username:password",
            "datasets[3].entries[2].value: duplicate entry (same as entries[1])",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in\n{all}");
        }
        assert!(!all.contains("secret"), "{all}");
    }

    #[test]
    fn bounds() {
        let many: Vec<Value> = (0..=MAX_DATASETS).map(|i| json!({ "id": format!("d{i}"), "type": "PARAMETER_ACCESS" })).collect();
        let (_, problems) = parsed(Value::Array(many));
        assert_eq!(problems, vec![format!("datasets: has {} datasets; at most {MAX_DATASETS}", MAX_DATASETS + 1)]);
        let entries: Vec<Value> = (0..=MAX_ENTRIES).map(|i| json!({ "value": i.to_string() })).collect();
        let (_, problems) = parsed(json!([{ "id": "big", "type": "PARAMETER_ACCESS", "entries": entries }]));
        assert_eq!(problems, vec![format!("datasets[0].entries: has {} entries; a dataset has at most {MAX_ENTRIES}", MAX_ENTRIES + 1)]);
        let half: Vec<Value> = (0..MAX_ENTRIES).map(|i| json!({ "value": i.to_string() })).collect();
        let sets: Vec<Value> = (0..6).map(|i| json!({ "id": format!("d{i}"), "type": "PARAMETER_ACCESS", "entries": half })).collect();
        let (_, problems) = parsed(Value::Array(sets));
        assert_eq!(problems, vec![format!("datasets: has {} entries in all; at most {MAX_TOTAL_ENTRIES}", 6 * MAX_ENTRIES)]);
    }

    #[test]
    fn registry_replaces_declared_sets_only() {
        let (mut s, _) = parsed(json!([{ "id": "vals", "type": "PARAMETER_ACCESS", "entries": [ { "value": "gold" } ] }]));
        let mut c = Validator::default();
        let list = parse(
            &mut c,
            json!([
                { "id": "vals", "type": "PARAMETER_ACCESS", "entries": [ { "value": "silver" } ] },
                { "id": "other", "type": "PARAMETER_ACCESS" }
            ])
            .as_array()
            .unwrap(),
            "datasets",
        );
        merge(&mut c, &mut s, list, "datasets");
        let all: Vec<String> = c.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(all, vec!["datasets[1].id: unknown dataset other: declare it in the static configuration's datasets first".to_string()]);
        assert!(s.contains("vals", "silver", 0));
        assert!(!s.contains("vals", "gold", 0), "replaced, not merged");
        let mut c = Validator::default();
        let list = parse(&mut c, json!([{ "id": "vals", "type": "JWT_BLOCKING" }]).as_array().unwrap(), "datasets");
        merge(&mut c, &mut s, list, "datasets");
        assert_eq!(c.problems[0].to_string(), "datasets[0].id: dataset vals is declared as PARAMETER_ACCESS, not JWT_BLOCKING");
    }
}
