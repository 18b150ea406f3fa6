//! Aliyun's plugins: named definitions with typed data (an object, or pasted JSON/YAML text), bound
//! to the group and to APIs per stage. Everything is resolved at configuration time into, per API and
//! stage, the one plugin of each type that applies; a request only looks its set up.

use crate::ids::PluginId;
use crate::plugins::access_control::AccessConfig;
use crate::plugins::backend_signature::BackendConfig;
use crate::plugins::basic_auth::BasicConfig;
use crate::plugins::caching::CachingConfig;
use crate::plugins::circuit_breaker::BreakerConfig;
use crate::plugins::cors::CorsConfig;
use crate::plugins::definition::{AliyunPlugin, Definition};
use crate::plugins::error_mapping::MappingConfig;
use crate::plugins::ip_control::IpConfig;
use crate::plugins::jwt::{JwtConfig, JwtState};
use crate::plugins::log_mask::LogMaskConfig;
use crate::plugins::remote_auth::{AuthCache, RemoteAuthConfig};
use crate::plugins::routing::RoutingConfig;
use crate::plugins::traffic_control::TrafficConfig;
use crate::plugins::transformer::TransformerConfig;
use crate::schema::validator::{join, kind, Validator};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Plugin data as a string may be at most this long (Aliyun's limit).
pub(crate) const MAX_DATA_BYTES: usize = 50 * 1024;

/// Every plugin type Aliyun defines; the ones cagate implements have a slot in `Bound`.
pub(crate) const KNOWN_TYPES: &[&str] = &[
    "jwtAuth",
    "trafficControl",
    "ipControl",
    "accessControl",
    "cors",
    "backendSignature",
    "basicAuth",
    "errorMapping",
    "circuitBreaker",
    "caching",
    "routing",
    "logMask",
    "parameterAccessControl",
    "transformer",
    "remoteAuth",
];

#[derive(Debug, Clone)]
pub enum PluginKind {
    Jwt(Box<JwtConfig>),
    Traffic(Box<TrafficConfig>),
    Ip(Box<IpConfig>),
    Access(Box<AccessConfig>),
    Cors(Box<CorsConfig>),
    Basic(Box<BasicConfig>),
    BackendSignature(Box<BackendConfig>),
    Breaker(Box<BreakerConfig>),
    ErrorMapping(Box<MappingConfig>),
    Routing(Box<RoutingConfig>),
    LogMask(Box<LogMaskConfig>),
    RemoteAuth(Box<RemoteAuthConfig>),
    Caching(Box<CachingConfig>),
    Transformer(Box<TransformerConfig>),
}

#[derive(Debug, Clone)]
pub struct Plugin {
    pub name: String,
    pub type_name: String,
    pub kind: PluginKind,
}

/// The plugins that apply to one API in one stage, by type (plugin indices).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bound {
    pub jwt: Option<PluginId>,
    pub traffic: Option<PluginId>,
    pub ip: Option<PluginId>,
    pub access: Option<PluginId>,
    pub cors: Option<PluginId>,
    pub basic: Option<PluginId>,
    pub backend_signature: Option<PluginId>,
    pub breaker: Option<PluginId>,
    pub error_mapping: Option<PluginId>,
    pub routing: Option<PluginId>,
    pub log_mask: Option<PluginId>,
    pub remote_auth: Option<PluginId>,
    pub caching: Option<PluginId>,
    pub transformer: Option<PluginId>,
}

impl Bound {
    /// Every slot, bound or not, in the order the request meets them.
    pub fn all(&self) -> [Option<PluginId>; 14] {
        [
            self.ip,
            self.basic,
            self.jwt,
            self.access,
            self.traffic,
            self.remote_auth,
            self.caching,
            self.breaker,
            self.routing,
            self.transformer,
            self.backend_signature,
            self.error_mapping,
            self.cors,
            self.log_mask,
        ]
    }

    fn slot(&mut self, type_name: &str) -> Option<&mut Option<PluginId>> {
        match type_name {
            JwtConfig::TYPE => Some(&mut self.jwt),
            TrafficConfig::TYPE => Some(&mut self.traffic),
            IpConfig::TYPE => Some(&mut self.ip),
            AccessConfig::TYPE => Some(&mut self.access),
            CorsConfig::TYPE => Some(&mut self.cors),
            BasicConfig::TYPE => Some(&mut self.basic),
            BackendConfig::TYPE => Some(&mut self.backend_signature),
            BreakerConfig::TYPE => Some(&mut self.breaker),
            MappingConfig::TYPE => Some(&mut self.error_mapping),
            RoutingConfig::TYPE => Some(&mut self.routing),
            LogMaskConfig::TYPE => Some(&mut self.log_mask),
            RemoteAuthConfig::TYPE => Some(&mut self.remote_auth),
            CachingConfig::TYPE => Some(&mut self.caching),
            TransformerConfig::TYPE => Some(&mut self.transformer),
            _ => None,
        }
    }
}

/// Turns plugin data into a JSON value: an object as is; a string as JSON if it parses, else YAML.
fn data_value(c: &mut Validator, v: Option<&Value>, path: &str) -> Option<Value> {
    match v {
        Some(Value::Object(_)) => {
            // The same bound as pasted text, on the object's JSON text.
            let len = v.map_or(0, |o| o.to_string().len());
            if len > MAX_DATA_BYTES {
                c.err(path, format!("is {len} bytes as JSON; plugin data is at most {MAX_DATA_BYTES}"));
                return None;
            }
            v.cloned()
        }
        Some(Value::String(s)) => {
            if s.len() > MAX_DATA_BYTES {
                c.err(path, format!("is {} bytes; plugin data is at most {MAX_DATA_BYTES}", s.len()));
                return None;
            }
            if let Ok(v) = serde_json::from_str::<Value>(s) {
                return Some(v);
            }
            match serde_yaml::from_str::<Value>(s) {
                Ok(v) => Some(v),
                Err(e) => {
                    // The location only: YAML errors can quote the input, and data may hold secrets.
                    let at = e.location().map_or(String::new(), |l| format!(" at line {}, column {}", l.line(), l.column()));
                    c.err(path, format!("is neither JSON nor YAML{at}"));
                    None
                }
            }
        }
        Some(other) => {
            c.err(path, format!("must be an object or a JSON/YAML string, not {}", kind(other)));
            None
        }
        None => {
            c.err(path, "is required");
            None
        }
    }
}

fn parse_as<T: AliyunPlugin>(c: &mut Validator, data: &Value, def: &Definition<'_>, wrap: fn(Box<T>) -> PluginKind) -> Option<PluginKind> {
    T::parse(c, data, def).map(|t| wrap(Box::new(t)))
}

/// Parses `plugins[]`.
pub(crate) fn parse_plugins(c: &mut Validator, top: &Map<String, Value>, app_ids: &[&str]) -> (Vec<Plugin>, HashMap<String, u32>) {
    let mut plugins = Vec::new();
    let mut by_name = HashMap::new();
    // Every name given, whether its plugin parsed or not: a duplicate is a problem of its own.
    let mut names = std::collections::HashSet::new();
    for (i, v) in c.array(top, "", "plugins").iter().enumerate() {
        let path = format!("plugins[{i}]");
        let Some(o) = c.object(v, &path, &["name", "type", "data", "description"]) else { continue };
        let name = c.string(o, &path, "name", true);
        let type_name = c.string(o, &path, "type", true);
        let _ = c.string(o, &path, "description", false);
        let data = data_value(c, o.get("data"), &join(&path, "data"));
        let (Some(name), Some(type_name)) = (name, type_name) else { continue };
        if !names.insert(name) {
            c.err(&join(&path, "name"), format!("duplicate plugin name {name}"));
            continue;
        }
        let dpath = format!("{path}.data (plugin {name})");
        let def = Definition { name, path: &dpath, app_ids };
        let kind = match (type_name, data) {
            (_, None) => None,
            (JwtConfig::TYPE, Some(d)) => parse_as(c, &d, &def, PluginKind::Jwt),
            (TrafficConfig::TYPE, Some(d)) => parse_as(c, &d, &def, PluginKind::Traffic),
            (IpConfig::TYPE, Some(d)) => parse_as(c, &d, &def, PluginKind::Ip),
            (AccessConfig::TYPE, Some(d)) => parse_as(c, &d, &def, PluginKind::Access),
            (CorsConfig::TYPE, Some(d)) => parse_as(c, &d, &def, PluginKind::Cors),
            (BasicConfig::TYPE, Some(d)) => parse_as(c, &d, &def, PluginKind::Basic),
            (BackendConfig::TYPE, Some(d)) => parse_as(c, &d, &def, PluginKind::BackendSignature),
            (BreakerConfig::TYPE, Some(d)) => parse_as(c, &d, &def, PluginKind::Breaker),
            (MappingConfig::TYPE, Some(d)) => parse_as(c, &d, &def, PluginKind::ErrorMapping),
            (RoutingConfig::TYPE, Some(d)) => parse_as(c, &d, &def, PluginKind::Routing),
            (LogMaskConfig::TYPE, Some(d)) => parse_as(c, &d, &def, PluginKind::LogMask),
            (RemoteAuthConfig::TYPE, Some(d)) => parse_as(c, &d, &def, PluginKind::RemoteAuth),
            (CachingConfig::TYPE, Some(d)) => parse_as(c, &d, &def, PluginKind::Caching),
            (TransformerConfig::TYPE, Some(d)) => parse_as(c, &d, &def, PluginKind::Transformer),
            (t, Some(_)) if KNOWN_TYPES.contains(&t) => {
                c.err(&join(&path, "type"), format!("plugin type {t} is not supported by this version of cagate"));
                None
            }
            (t, Some(_)) => {
                c.err(&join(&path, "type"), format!("unknown plugin type {t}"));
                None
            }
        };
        if let Some(kind) = kind {
            by_name.insert(name.to_string(), plugins.len() as u32);
            plugins.push(Plugin { name: name.to_string(), type_name: type_name.to_string(), kind });
        }
    }
    (plugins, by_name)
}

/// A binding of a plugin, `stages` as stage bits (`None`: every stage of the API).
#[derive(Debug, Clone)]
pub(crate) struct Binding {
    plugin: u32,
    stages: Option<u64>,
    path: String,
}

/// Parses a list of bindings (`groupPlugins` or `apis[].plugins`). Bindings naming plugins that failed
/// validation are skipped silently: that plugin's own problems are already reported.
pub(crate) fn parse_bindings(
    c: &mut Validator,
    list: &[Value],
    path: &str,
    names: &HashMap<String, u32>,
    all_names: &[String],
    stages: &[String],
) -> Vec<Binding> {
    let mut out = Vec::new();
    for (i, v) in list.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let Some(o) = c.object(v, &p, &["plugin", "stages"]) else { continue };
        let Some(name) = c.string(o, &p, "plugin", true) else { continue };
        let mut bits = None;
        if let Some(list) = c.strings(o, &p, "stages") {
            let mut b = 0u64;
            for (j, s) in list.iter().enumerate() {
                match stages.iter().position(|x| x == s) {
                    Some(k) if k < 64 => b |= 1 << k,
                    _ => c.err(&format!("{p}.stages[{j}]"), format!("unknown stage {s}")),
                }
            }
            bits = Some(b);
        }
        match names.get(name) {
            Some(&idx) => out.push(Binding { plugin: idx, stages: bits, path: p }),
            None if all_names.iter().any(|n| n == name) => {}
            None => c.err(&join(&p, "plugin"), format!("unknown plugin {name}")),
        }
    }
    out
}

/// Resolves the plugins of one API: per stage it is published in, group bindings overridden by API
/// bindings of the same type. Two bindings of one type on one level and stage are an error.
pub(crate) fn resolve(
    c: &mut Validator,
    api_path: &str,
    api_stages: u64,
    group: &[Binding],
    api: &[Binding],
    plugins: &[Plugin],
    stage_names: &[String],
) -> Vec<(u32, Bound)> {
    let mut out = Vec::new();
    for b in api {
        if let Some(bits) = b.stages {
            if bits & !api_stages != 0 {
                c.err(&b.path, "binds the plugin in a stage the API is not published in");
            }
        }
    }
    for stage in 0..stage_names.len().min(64) as u32 {
        if api_stages & (1 << stage) == 0 {
            continue;
        }
        let mut bound = Bound::default();
        for (level, bindings) in [("group", group), ("api", api)] {
            let mut seen: HashMap<&str, &str> = HashMap::new();
            for b in bindings {
                if b.stages.is_some_and(|bits| bits & (1 << stage) == 0) {
                    continue;
                }
                let Some(p) = plugins.get(b.plugin as usize) else { continue };
                if let Some(first) = seen.insert(p.type_name.as_str(), b.path.as_str()) {
                    let stage_name = stage_names.get(stage as usize).map_or("", String::as_str);
                    c.err(&b.path, format!("a second {} plugin on {api_path} in stage {stage_name} at {level} level (also {first})", p.type_name));
                    continue;
                }
                if let Some(slot) = bound.slot(&p.type_name) {
                    *slot = Some(PluginId(b.plugin));
                }
            }
        }
        if bound != Bound::default() {
            out.push((stage, bound));
        }
    }
    out
}

/// Per-VM mutable state of the plugins (caches, remote keys), indexed like `Gateway::plugins`.
pub struct Runtime {
    pub jwt: Vec<Option<JwtState>>,
    /// remoteAuth's remembered successes, every plugin's in one bounded cache.
    pub remote_auth: AuthCache,
}

impl Runtime {
    pub fn new(plugins: &[Plugin], seed: (u64, u64)) -> Self {
        Runtime {
            jwt: plugins
                .iter()
                .map(|p| match &p.kind {
                    PluginKind::Jwt(cfg) => Some(JwtState::new(cfg, seed)),
                    _ => None,
                })
                .collect(),
            remote_auth: AuthCache::new(seed),
        }
    }

    /// Creates the shared-data keys of the replay stores (see `NonceStore::ensure`).
    pub fn ensure(&mut self, store: &dyn crate::host::SharedStore, seed: [u8; 16]) {
        for state in self.jwt.iter_mut().flatten() {
            state.jti.ensure(store, seed);
        }
    }
}
