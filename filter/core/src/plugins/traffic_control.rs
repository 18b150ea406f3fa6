//! Aliyun's trafficControl plugin (basic template): per-API, per-user (app owner) and per-app limits,
//! exact across all of one Envoy's workers. Counters live in Envoy shared data and change only by
//! compare-and-swap. MINUTE, HOUR and DAY are fixed wall-clock windows; SECOND is a token bucket.
//! One key per (plugin, API, dimension, app or user): a new window reuses the key (its start is in
//! the value), so the store does not grow with time.

use crate::contract::errors::{self, ErrorCode};
use crate::contract::refusal::Refusal;
use crate::host::{le_u64, SetError, SharedStore};
use crate::plugins::definition::{AliyunPlugin, Definition};
use crate::schema::validator::{join, Validator};
use serde_json::Value;
use std::collections::HashMap;

/// Aliyun's ceiling for any threshold.
pub const MAX_LIMIT: u64 = 100_000_000;
/// CAS attempts per counter before `failOpen` decides.
pub const MAX_ATTEMPTS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Second,
    Minute,
    Hour,
    Day,
}

impl Unit {
    fn window_ms(self) -> i64 {
        match self {
            Unit::Second => 1_000,
            Unit::Minute => 60_000,
            Unit::Hour => 3_600_000,
            Unit::Day => 86_400_000,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Second => "SECOND",
            Unit::Minute => "MINUTE",
            Unit::Hour => "HOUR",
            Unit::Day => "DAY",
        }
    }
}

pub use crate::contract::refusal::Dim;

#[derive(Debug, Clone)]
pub struct TrafficConfig {
    pub plugin: String,
    pub unit: Unit,
    pub api_default: u64,
    pub user_default: Option<u64>,
    pub app_default: Option<u64>,
    pub app_specials: HashMap<String, u64>,
    pub user_specials: HashMap<String, u64>,
    pub rate_limit_headers: bool,
    pub fail_open: bool,
}

const FIELDS: &[&str] = &["unit", "apiDefault", "userDefault", "appDefault", "specials", "rateLimitHeaders", "failOpen"];
const TOLERATED: &[&str] = &["controlMode", "blockingMode", "globalDefault"];

impl AliyunPlugin for TrafficConfig {
    const TYPE: &'static str = "trafficControl";

    fn parse(c: &mut Validator, data: &Value, def: &Definition<'_>) -> Option<Self> {
        let (plugin, path) = (def.name, def.path);
        let o = c.object_lenient(data, path, FIELDS, TOLERATED)?;
        let unit = match c.string(o, path, "unit", true) {
            Some("SECOND") => Unit::Second,
            Some("MINUTE") => Unit::Minute,
            Some("HOUR") => Unit::Hour,
            Some("DAY") => Unit::Day,
            Some(other) => {
                c.err(&join(path, "unit"), format!("unknown unit {other}: SECOND, MINUTE, HOUR or DAY"));
                Unit::Minute
            }
            None => Unit::Minute,
        };
        let limit = |c: &mut Validator, key: &str| -> Option<u64> {
            match o.get(key) {
                None | Some(Value::Null) => None,
                Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
                Some(_) => {
                    c.err(&join(path, key), "must be a whole number from 0");
                    None
                }
            }
        };
        let api_default = limit(c, "apiDefault");
        if o.get("apiDefault").is_none() {
            c.err(&join(path, "apiDefault"), "is required");
        }
        let user_default = limit(c, "userDefault");
        let app_default = limit(c, "appDefault");
        let api = api_default.unwrap_or(MAX_LIMIT);
        // The management API's own messages for these rules (reference, "InvalidApiDefault" etc.).
        if api > MAX_LIMIT {
            c.err(&join(path, "apiDefault"), "InvalidApiDefault: The ApiDefault value exceeds limit.");
        }
        if let Some(user) = user_default {
            if user > api || app_default.is_some_and(|app| app > user) || user > MAX_LIMIT {
                c.err(
                    &join(path, "userDefault"),
                    "InvalidUserDefault: The UserDefault value must bigger than the AppDefault and smaller than the ApiDefault.",
                );
            }
        }
        if let Some(app) = app_default {
            if app > api || user_default.is_some_and(|user| app > user) || app > MAX_LIMIT {
                c.err(&join(path, "appDefault"), "InvalidAppDefault: The AppDefault value must smaller than the UserDefault and ApiDefault.");
            }
        }
        let mut app_specials = HashMap::new();
        let mut user_specials = HashMap::new();
        for (i, s) in c.array(o, path, "specials").iter().enumerate() {
            let sp = format!("{path}.specials[{i}]");
            let Some(so) = c.object(s, &sp, &["type", "policies"]) else { continue };
            let target = match c.string(so, &sp, "type", true) {
                Some("APP") => &mut app_specials,
                Some("USER") => &mut user_specials,
                Some(other) => {
                    c.err(&join(&sp, "type"), format!("unknown special type {other}: APP or USER"));
                    continue;
                }
                None => continue,
            };
            for (j, p) in c.array(so, &sp, "policies").iter().enumerate() {
                let pp = format!("{sp}.policies[{j}]");
                let Some(po) = c.object(p, &pp, &["key", "value"]) else { continue };
                let key = c.id(po, &pp, "key", true);
                let value = match po.get("value") {
                    Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
                    _ => {
                        c.err(&join(&pp, "value"), "must be a whole number from 0");
                        None
                    }
                };
                if let (Some(key), Some(value)) = (key, value) {
                    if value > api || value > MAX_LIMIT {
                        c.err(&join(&pp, "value"), format!("a special ({value}) must not exceed apiDefault ({api})"));
                    }
                    if target.insert(key.clone(), value).is_some() {
                        c.err(&join(&pp, "key"), format!("{key} has two specials of this type"));
                    }
                }
            }
        }
        Some(TrafficConfig {
            plugin: plugin.to_string(),
            unit,
            api_default: api,
            user_default,
            app_default,
            app_specials,
            user_specials,
            rate_limit_headers: c.boolean(o, path, "rateLimitHeaders", false),
            fail_open: c.boolean(o, path, "failOpen", false),
        })
    }
}

/// One counter a request must pass.
#[derive(Debug, Clone)]
pub struct Counter {
    pub dim: Dim,
    pub key: String,
    pub limit: u64,
    pub special: bool,
}

/// The counters for a request: the app's, its owner's, the API's (most specific first, so a request
/// refused by a narrow limit never touches the wide one). Each stage an API is published in counts on
/// its own, as each of Aliyun's bindings does: TEST traffic never takes RELEASE's quota.
pub fn counters(cfg: &TrafficConfig, api: &str, stage: &str, app: Option<(&str, &str)>) -> Vec<Counter> {
    let mut out = Vec::with_capacity(3);
    let key = |dim: Dim, id: &str| counter_key(cfg, api, stage, dim, id);
    if let Some((app_id, owner)) = app {
        let special = cfg.app_specials.get(app_id).copied();
        if let Some(limit) = special.or(cfg.app_default) {
            out.push(Counter { dim: Dim::App, key: key(Dim::App, app_id), limit, special: special.is_some() });
        }
        let special = cfg.user_specials.get(owner).copied();
        if let Some(limit) = special.or(cfg.user_default) {
            out.push(Counter { dim: Dim::User, key: key(Dim::User, owner), limit, special: special.is_some() });
        }
    }
    out.push(Counter { dim: Dim::Api, key: api_key(cfg, api, stage), limit: cfg.api_default, special: false });
    out
}

/// The key of the API dimension, which the adapter creates up front (Envoy has no create-if-absent).
pub fn api_key(cfg: &TrafficConfig, api: &str, stage: &str) -> String {
    counter_key(cfg, api, stage, Dim::Api, "-")
}

/// The shared-data key of one counter: the plugin's, for an API in a stage, of a dimension's member.
fn counter_key(cfg: &TrafficConfig, api: &str, stage: &str, dim: Dim, id: &str) -> String {
    format!("cagate.rl.{}.{}.{}.{}.{}", cfg.plugin, api, stage, dim.as_str(), id)
}

/// What a counter said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Taken; `remaining` after this request, `reset_ms` until the window ends (or the bucket is full).
    Taken { remaining: u64, reset_ms: i64 },
    /// No room; a request could pass in `retry_ms`.
    Full { retry_ms: i64 },
    /// CAS lost `MAX_ATTEMPTS` times.
    Contended,
}

fn read(v: &[u8]) -> (i64, u64) {
    (le_u64(v, 0) as i64, le_u64(v, 8))
}

fn write(a: i64, b: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&a.to_le_bytes());
    out[8..].copy_from_slice(&b.to_le_bytes());
    out
}

/// The value after taking one request, or why not. Fixed windows store (window start, count); the
/// SECOND bucket stores (last refill time, milli-tokens) and holds at most `limit` tokens.
pub fn step(unit: Unit, limit: u64, old: Option<&[u8]>, now_ms: i64) -> Result<([u8; 16], u64, i64), i64> {
    if unit == Unit::Second {
        let cap = limit.saturating_mul(1000);
        let tokens = match old.filter(|v| v.len() >= 16).map(read) {
            Some((last, milli)) => milli.saturating_add((now_ms.saturating_sub(last).max(0) as u64).saturating_mul(limit)).min(cap),
            None => cap,
        };
        if tokens < 1000 {
            // time until one whole token is back
            let retry = if limit == 0 { 1000 } else { ((1000 - tokens) as i64 + limit as i64 - 1) / limit as i64 };
            return Err(retry);
        }
        let left = tokens - 1000;
        let refill_ms = if limit == 0 { 1000 } else { ((cap - left) as i64 + limit as i64 - 1) / limit as i64 };
        return Ok((write(now_ms, left), left / 1000, refill_ms));
    }
    let win = unit.window_ms();
    let start = now_ms - now_ms.rem_euclid(win);
    let count = match old.filter(|v| v.len() >= 16).map(read) {
        Some((s, n)) if s == start => n,
        _ => 0,
    };
    if count >= limit {
        return Err(start + win - now_ms);
    }
    Ok((write(start, count + 1), limit - count - 1, start + win - now_ms))
}

/// Takes one request from a counter, by compare-and-swap.
pub fn take(store: &dyn SharedStore, unit: Unit, c: &Counter, now_ms: i64) -> Take {
    for _ in 0..MAX_ATTEMPTS {
        let (old, cas) = match store.get(&c.key) {
            Some((v, cas)) => (Some(v), cas),
            None => (None, 0),
        };
        match step(unit, c.limit, old.as_deref(), now_ms) {
            Err(retry_ms) => return Take::Full { retry_ms },
            Ok((value, remaining, reset_ms)) => match store.set(&c.key, &value, cas) {
                Ok(()) => return Take::Taken { remaining, reset_ms },
                Err(SetError::CasMismatch) => continue,
                Err(SetError::Failed) => return Take::Contended,
            },
        }
    }
    Take::Contended
}

/// Gives back a request taken from a counter (a later dimension refused it), by compare-and-swap.
fn give_back(store: &dyn SharedStore, unit: Unit, c: &Counter, now_ms: i64) {
    for _ in 0..MAX_ATTEMPTS {
        let Some((v, cas)) = store.get(&c.key) else { return };
        let (a, b) = read(&v);
        let value = if unit == Unit::Second {
            write(a, b.saturating_add(1000).min(c.limit.saturating_mul(1000)))
        } else {
            let win = unit.window_ms();
            if a != now_ms - now_ms.rem_euclid(win) {
                return; // the window moved on: nothing to give back
            }
            write(a, b.saturating_sub(1))
        };
        if !matches!(store.set(&c.key, &value, cas), Err(SetError::CasMismatch)) {
            return;
        }
    }
}

/// The quota a request passed, for the `RateLimit-*` headers: the tightest dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u64,
    pub remaining: u64,
    pub reset_s: i64,
}

impl Quota {
    pub fn headers(&self) -> [(&'static str, String); 3] {
        [
            ("ratelimit-limit", self.limit.to_string()),
            ("ratelimit-remaining", self.remaining.to_string()),
            ("ratelimit-reset", self.reset_s.to_string()),
        ]
    }
}

fn ceil_s(ms: i64) -> i64 {
    (ms.max(0) + 999) / 1000
}

/// The configuration's own QPS limits (`groupQpsLimit`, `instanceQpsLimit`), Aliyun's group and
/// instance flow control: one cagate configuration is one group; the instance is the Envoy process,
/// whatever configurations it runs. Token buckets of one second, like trafficControl's SECOND.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GatewayLimits {
    pub group_qps: Option<u64>,
    pub instance_qps: Option<u64>,
}

/// The limits' counters: one fixed key each, created with the configuration, never per request.
pub const GROUP_KEY: &str = "cagate.limit.group";
pub const INSTANCE_KEY: &str = "cagate.limit.instance";

impl GatewayLimits {
    /// The counters, narrowest first (a request the group refuses never takes from the instance).
    fn counters(&self) -> Vec<(Counter, &'static ErrorCode)> {
        let counter = |key: &str, limit: u64| Counter { dim: Dim::Api, key: key.to_string(), limit, special: false };
        let group = self.group_qps.map(|l| (counter(GROUP_KEY, l), &errors::T429GR));
        let instance = self.instance_qps.map(|l| (counter(INSTANCE_KEY, l), &errors::T429IN));
        group.into_iter().chain(instance).collect()
    }

    /// The keys to create before traffic.
    pub fn keys(&self) -> Vec<&'static str> {
        let group = self.group_qps.map(|_| GROUP_KEY);
        let instance = self.instance_qps.map(|_| INSTANCE_KEY);
        group.into_iter().chain(instance).collect()
    }
}

/// Takes one request from the group's and the instance's buckets, or refuses it (`T429GR`,
/// `T429IN`) without taking from either. A counter whose compare-and-swap keeps losing lets the
/// request pass: these limits protect the gateway, they are no client's quota.
pub fn admit_limits(limits: &GatewayLimits, now_ms: i64, store: &dyn SharedStore) -> Result<(), Refusal> {
    let counters = limits.counters();
    for (i, (c, code)) in counters.iter().enumerate() {
        if let Take::Full { retry_ms } = take(store, Unit::Second, c, now_ms) {
            for (t, _) in counters.iter().take(i) {
                give_back(store, Unit::Second, t, now_ms);
            }
            let mut r = Refusal::new(code, &[], "throttled by the gateway's own limit");
            r.message = format!("{}: {} per SECOND", code.message, c.limit);
            r.headers.push(("retry-after".into(), ceil_s(retry_ms).max(1).to_string()));
            return Err(r);
        }
    }
    Ok(())
}

/// Counts an admitted request against every dimension that applies, or refuses it without counting.
/// Returns the dimensions counted (for stats) and the tightest quota.
pub fn admit(
    cfg: &TrafficConfig,
    plugin_idx: u32,
    api: &str,
    stage: &str,
    app: Option<(&str, &str)>,
    now_ms: i64,
    store: &dyn SharedStore,
) -> Result<(Vec<Dim>, Quota), Refusal> {
    let counters = counters(cfg, api, stage, app);
    let mut taken: Vec<&Counter> = Vec::with_capacity(counters.len());
    let mut quota: Option<Quota> = None;
    for c in &counters {
        match take(store, cfg.unit, c, now_ms) {
            Take::Taken { remaining, reset_ms } => {
                taken.push(c);
                if quota.is_none_or(|q| remaining < q.remaining) {
                    quota = Some(Quota { limit: c.limit, remaining, reset_s: ceil_s(reset_ms) });
                }
            }
            Take::Contended if cfg.fail_open => {}
            outcome => {
                for t in &taken {
                    give_back(store, cfg.unit, t, now_ms);
                }
                let mut r = match outcome {
                    Take::Full { retry_ms } => {
                        let e: &'static ErrorCode = if c.special { &errors::T429PR } else { &errors::T429PA };
                        let mut r = Refusal::new(e, &[], "throttled");
                        r.message = format!("{}: {} limit {} per {}", e.message, c.dim.as_str(), c.limit, cfg.unit.as_str());
                        r.headers.push(("retry-after".into(), ceil_s(retry_ms).max(1).to_string()));
                        if cfg.rate_limit_headers {
                            let q = Quota { limit: c.limit, remaining: 0, reset_s: ceil_s(retry_ms).max(1) };
                            r.headers.extend(q.headers().map(|(n, v)| (n.into(), v)));
                        }
                        r
                    }
                    _ => {
                        let mut r = Refusal::new(&errors::T429MR, &["counter contention"], "rate-limit counter contended");
                        r.headers.push(("retry-after".into(), "1".to_string()));
                        r
                    }
                };
                r.throttled = Some((plugin_idx, c.dim));
                return Err(r);
            }
        }
    }
    let dims = taken.iter().map(|c| c.dim).collect();
    Ok((dims, quota.unwrap_or(Quota { limit: cfg.api_default, remaining: cfg.api_default, reset_s: 0 })))
}
