//! `appRegistry`: where the app registry document is fetched from, and how often.

use crate::config::validator::{join, Validator};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySettings {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub refresh_ms: i64,
    pub timeout_ms: u64,
}

pub(crate) fn parse_settings(c: &mut Validator, top: &Map<String, Value>) -> Option<RegistrySettings> {
    let v = top.get("appRegistry")?;
    let p = "appRegistry";
    let o = c.object(v, p, &["uri", "cluster", "refreshSeconds", "timeoutMs"])?;
    let uri = c.string(o, p, "uri", true);
    let cluster = c.string(o, p, "cluster", true);
    let refresh_s = c.integer(o, p, "refreshSeconds", 10, 1, 86_400);
    let timeout_ms = c.integer(o, p, "timeoutMs", 2000, 100, 60_000);
    let (uri, cluster) = (uri?, cluster?);
    let Some(rest) = uri.strip_prefix("http://").or_else(|| uri.strip_prefix("https://")) else {
        c.err(&join(p, "uri"), "must be an http:// or https:// URL");
        return None;
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        c.err(&join(p, "uri"), "has no host");
        return None;
    }
    Some(RegistrySettings {
        cluster: cluster.to_string(),
        authority: authority.to_string(),
        path: path.to_string(),
        refresh_ms: refresh_s as i64 * 1000,
        timeout_ms,
    })
}
