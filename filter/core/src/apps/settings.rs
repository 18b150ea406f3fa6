//! `appRegistry`: where the app registry document is fetched from, and how often.

use crate::schema::validator::{join, Validator};
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
    let (authority, path) = match crate::wire::url::http_target(uri) {
        Ok(t) => t,
        Err(e) => {
            c.err(&join(p, "uri"), e);
            return None;
        }
    };
    Some(RegistrySettings {
        cluster: cluster.to_string(),
        authority: authority.to_string(),
        path: path.to_string(),
        refresh_ms: refresh_s as i64 * 1000,
        timeout_ms,
    })
}
