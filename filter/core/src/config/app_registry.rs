//! The app registry (`appRegistry`): a document of apps and authorizations fetched through an Envoy
//! cluster, so apps are created, authorized and rotated without touching Envoy's configuration.
//!
//! One VM at a time fetches (a lease in shared data), with `If-None-Match`; a document is validated as
//! a whole against the static configuration (same rules and messages) and, if good, published in
//! shared data with a version; every VM installs a newer version on its tick, outside any request. A
//! failed fetch or an invalid document keeps the last good one. The keys are fixed
//! (`cagate.registry.doc`, `.meta`, `.lease`): the store stays bounded.

use crate::apps::directory::add_app;
use crate::apps::settings::RegistrySettings;
use crate::config::model::{Gateway, Grant};
use crate::host::SharedStore;
use crate::schema::validator::{join, Problem, Validator};
use crate::wire::time::parse_instant;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::HashMap;

/// The largest registry document accepted, about 2.5 times one of 100,000 apps and 200,000 grants. A
/// larger answer is refused, and the adapters read no more than one byte past this, so a misbehaving
/// registry server cannot exhaust a VM's memory.
pub const MAX_DOCUMENT_BYTES: usize = 64 << 20;

const DOC_FIELDS: &[&str] = &["apps", "authorizations", "version", "description", "datasets"];
const GRANT_FIELDS: &[&str] = &["appId", "api", "stage", "authValidTime"];

impl Gateway {
    /// This configuration with a registry document's apps and authorizations added, all at once (see
    /// `Install` for the same in steps).
    pub fn with_registry(&self, doc: &[u8]) -> Result<Gateway, Vec<Problem>> {
        let mut install = Install::start(self, doc.to_vec())?;
        while !install.step(usize::MAX) {}
        install.finish()
    }
}

/// A registry document being merged into a configuration, a few entries at a time, so that a VM
/// never stops serving requests for long: the document is split once into its entries (spans of the
/// bytes, no JSON tree of the whole), then each step parses and checks a batch. The document is
/// refused as a whole (every problem reported, paths into the document) when anything is wrong,
/// including an appId defined twice or an appKey or AppCode of two apps, static ones included.
pub struct Install {
    gw: Gateway,
    doc: Vec<u8>,
    apps: Vec<(usize, usize)>,
    grants: Vec<(usize, usize)>,
    done: usize,
    c: Validator,
    api_by_name: HashMap<String, u32>,
    /// The grants the document made so far: a second of the same app, API and stage is an error, as
    /// in the static configuration (a document's grant may replace a static one: to extend it).
    granted: std::collections::HashSet<(u32, u32, u32)>,
}

/// The byte span of a raw JSON value inside `doc`.
fn span(doc: &str, raw: &RawValue) -> (usize, usize) {
    let start = (raw.get().as_ptr() as usize).saturating_sub(doc.as_ptr() as usize);
    (start, start + raw.get().len())
}

/// The document's plugin datasets, each replacing the static configuration's of the same id (parsed
/// at once: their number and size are bounded like the static ones').
fn datasets(c: &mut Validator, raw: &RawValue, gw: &mut Gateway) {
    match serde_json::from_str::<Value>(raw.get()) {
        Ok(Value::Array(list)) => {
            let parsed = crate::plugins::datasets::parse(c, &list, "datasets");
            crate::plugins::datasets::merge(c, &mut gw.datasets, parsed, "datasets");
        }
        _ => c.err("datasets", "must be an array"),
    }
}

impl Install {
    /// Splits the document into its entries; a document that is not a JSON object of the known fields
    /// is refused at once.
    pub fn start(base: &Gateway, doc: Vec<u8>) -> Result<Install, Vec<Problem>> {
        let refuse = |message: String| vec![Problem { path: String::new(), message }];
        if doc.len() > MAX_DOCUMENT_BYTES {
            return Err(refuse(format!("the registry document is larger than {MAX_DOCUMENT_BYTES} bytes")));
        }
        let text = std::str::from_utf8(&doc).map_err(|_| refuse("the registry document is not UTF-8 JSON".into()))?;
        // serde's text of a type error quotes the value it met, which may be a secret: the position only.
        let top: HashMap<&str, &RawValue> = serde_json::from_str(text).map_err(|e| {
            let what = if e.is_data() { "is not a JSON object" } else { "is not valid JSON" };
            refuse(format!("the registry document {what} (line {}, column {})", e.line(), e.column()))
        })?;
        let mut c = Validator::default();
        let mut unknown: Vec<&&str> = top.keys().filter(|k| !DOC_FIELDS.contains(k)).collect();
        unknown.sort();
        for k in unknown {
            c.err(k, "unknown field");
        }
        let mut list = |name: &str| -> Vec<(usize, usize)> {
            let Some(raw) = top.get(name) else { return Vec::new() };
            match serde_json::from_str::<Vec<&RawValue>>(raw.get()) {
                Ok(items) => items.iter().map(|r| span(text, r)).collect(),
                Err(_) => {
                    c.err(name, "must be an array");
                    Vec::new()
                }
            }
        };
        let (apps, grants) = (list("apps"), list("authorizations"));
        let api_by_name = base.apis.iter().enumerate().map(|(i, a)| (a.name.clone(), i as u32)).collect();
        let mut gw = base.clone();
        if let Some(raw) = top.get("datasets") {
            datasets(&mut c, raw, &mut gw);
        }
        gw.registry_version = top.get("version").and_then(|raw| match serde_json::from_str::<Value>(raw.get()) {
            Ok(Value::Number(n)) => n.as_u64(),
            Ok(Value::String(s)) => s.parse().ok(),
            _ => None,
        });
        Ok(Install { gw, doc, apps, grants, done: 0, c, api_by_name, granted: Default::default() })
    }

    /// Entries in the document (apps, then authorizations), and how many are merged so far.
    pub fn progress(&self) -> (usize, usize) {
        (self.done, self.apps.len() + self.grants.len())
    }

    /// Merges up to `budget` more entries; true when every entry is merged.
    pub fn step(&mut self, budget: usize) -> bool {
        let total = self.apps.len() + self.grants.len();
        let end = self.done.saturating_add(budget).min(total);
        while self.done < end {
            let i = self.done;
            self.done += 1;
            let (is_app, k) = if i < self.apps.len() { (true, i) } else { (false, i - self.apps.len()) };
            let (a, b) = if is_app { self.apps[k] } else { self.grants[k] };
            let path = format!("{}[{k}]", if is_app { "apps" } else { "authorizations" });
            let Ok(value) = serde_json::from_slice::<Value>(self.doc.get(a..b).unwrap_or_default()) else {
                self.c.err(&path, "is not valid JSON");
                continue;
            };
            if is_app {
                add_app(&mut self.c, &value, &path, None, &mut self.gw.apps);
            } else {
                self.grant(&value, &path);
            }
        }
        self.done >= total
    }

    fn grant(&mut self, g: &Value, gp: &str) {
        let c = &mut self.c;
        let Some(go) = c.object(g, gp, GRANT_FIELDS) else { return };
        // Checked like an app's own fields before any lookup, so that "unknown app X" never quotes a
        // control character into the log.
        let app = c.id(go, gp, "appId", true).filter(|s| c.text(&join(gp, "appId"), s));
        let api = c.string(go, gp, "api", true).filter(|s| c.text(&join(gp, "api"), s));
        let given_stage = c.string(go, gp, "stage", false);
        let stage_ok = given_stage.is_none_or(|s| c.text(&join(gp, "stage"), s));
        let stage = given_stage.unwrap_or("RELEASE");
        let expires_ms = c.string(go, gp, "authValidTime", false).and_then(|t| {
            let parsed = parse_instant(t);
            if parsed.is_none() {
                c.err(&join(gp, "authValidTime"), "must be an RFC 3339 time or an HTTP date in GMT");
            }
            parsed
        });
        let app_idx = app.as_deref().and_then(|a| {
            let found = self.gw.apps.by_id.get(a).copied();
            if found.is_none() {
                c.err(&join(gp, "appId"), format!("unknown app {a}"));
            }
            found
        });
        let api_idx = api.and_then(|a| {
            let found = self.api_by_name.get(a).copied();
            if found.is_none() {
                c.err(&join(gp, "api"), format!("unknown API {a}"));
            }
            found
        });
        let stage_idx = match (self.gw.stages.iter().position(|s| s == stage), api_idx.and_then(|i| self.gw.api(crate::ids::ApiId(i)))) {
            _ if !stage_ok => None,
            (Some(k), Some(a)) if a.stages & (1u64 << (k as u32 % 64)) != 0 => Some(k as u32),
            (Some(_), Some(_)) => {
                c.err(&join(gp, "stage"), format!("the API is not published in stage {stage}"));
                None
            }
            (None, _) => {
                c.err(&join(gp, "stage"), format!("unknown stage {stage}"));
                None
            }
            _ => None,
        };
        if let (Some(a), Some(api), Some(s)) = (app_idx, api_idx, stage_idx) {
            if !self.granted.insert((api, a, s)) {
                c.err(gp, format!("app {} is already authorized in stage {stage}", app.as_deref().unwrap_or_default()));
                return;
            }
            self.gw.grants.insert((crate::ids::ApiId(api), crate::ids::AppId(a), crate::ids::StageId(s)), Grant { expires_ms });
        }
    }

    /// The merged configuration, or every problem found.
    pub fn finish(mut self) -> Result<Gateway, Vec<Problem>> {
        while !self.step(usize::MAX) {}
        if !self.c.problems.is_empty() {
            return Err(self.c.problems);
        }
        self.gw.registry_loaded = true;
        Ok(self.gw)
    }

    /// The document, to share once it is known to be good.
    pub fn document(&self) -> &[u8] {
        &self.doc
    }
}

const DOC_KEY: &str = "cagate.registry.doc";
/// fetched-at ms (8 bytes LE) then the ETag of the document in `DOC_KEY`.
const META_KEY: &str = "cagate.registry.meta";
const LEASE_KEY: &str = "cagate.registry.lease";

/// True if this VM should fetch now: the last fetch is older than the refresh period, and it won the
/// fetch lease.
pub fn should_fetch(store: &dyn SharedStore, settings: &RegistrySettings, now_ms: i64) -> bool {
    crate::host::fetch_due(store, META_KEY, LEASE_KEY, settings.refresh_ms, settings.timeout_ms, now_ms)
}

/// Ends this VM's fetch (answered or failed): the next one is due after the refresh period, not after
/// the lease would have lapsed.
pub fn release(store: &dyn SharedStore) {
    let _ = store.set(LEASE_KEY, &0i64.to_le_bytes(), 0);
}

/// The ETag of the shared document, for `If-None-Match`.
pub fn etag(store: &dyn SharedStore) -> Option<String> {
    let (meta, _) = store.get(META_KEY)?;
    let tag = meta.get(8..)?;
    (!tag.is_empty()).then(|| String::from_utf8_lossy(tag).into_owned())
}

/// Records a fetch that changed nothing (304, or a failure): the next one waits a refresh period.
pub fn touch(store: &dyn SharedStore, now_ms: i64) {
    let tag = etag(store).unwrap_or_default();
    let mut meta = now_ms.to_le_bytes().to_vec();
    meta.extend_from_slice(tag.as_bytes());
    let _ = store.set(META_KEY, &meta, 0);
}

/// Shares a document this VM validated (`base.with_registry(body)` succeeded).
pub fn publish(store: &dyn SharedStore, body: &[u8], etag: Option<&str>, now_ms: i64) -> Result<(), String> {
    store.set(DOC_KEY, body, 0).map_err(|_| "shared data refused the registry document".to_string())?;
    let mut meta = now_ms.to_le_bytes().to_vec();
    meta.extend_from_slice(etag.unwrap_or_default().as_bytes());
    let _ = store.set(META_KEY, &meta, 0);
    Ok(())
}

/// The shared document if its version (the shared-data CAS) differs from `last`.
pub fn load_if_changed(store: &dyn SharedStore, last: u32) -> Option<(u32, Vec<u8>)> {
    let (doc, cas) = store.get(DOC_KEY)?;
    (cas != last && !doc.is_empty()).then_some((cas, doc))
}
