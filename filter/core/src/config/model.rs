//! The compiled configuration: apps with their prepared keys, APIs, grants, the route trie and the
//! plugins bound per API and stage, with the lookups a request makes.

use crate::apps::directory::{App, Directory};
use crate::auth::replay::NonceStoreConfig;
use crate::config::router::{Method, Router, Segment};
use crate::ids::{ApiId, AppId, StageId};
use crate::plugins::binding::{Bound, Plugin, PluginKind};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    App,
    Anonymous,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppCodeAuth {
    Disable,
    Header,
    HeaderQuery,
}

#[derive(Debug, Clone)]
pub struct Api {
    pub name: String,
    pub method: Method,
    pub path: String,
    pub template: Vec<Segment>,
    pub auth: AuthType,
    pub app_code: AppCodeAuth,
    pub force_nonce: bool,
    /// Report-only: this API's refusals are recorded and counted, and the request goes on.
    pub report_only: bool,
    /// Aliyun's `DisableInternet`: only clients at internal addresses may call it (`A403IN`).
    pub disable_internet: bool,
    /// Bit i: published in stage i.
    pub stages: u64,
    /// The plugins that apply, per stage (only stages with any).
    pub plugins: Vec<(StageId, Bound)>,
    /// Parameter definitions checked per request.
    pub params: Vec<crate::config::parameters::ApiParameter>,
    /// `protocol`: the schemes the API is served over.
    pub protocols: Protocols,
    /// Aliyun's parameter mapping rule, and the backend (`None`: Envoy's route decides).
    pub request_mode: crate::config::backend::RequestMode,
    pub backend: Option<crate::config::backend::Backend>,
    /// Whether deciding on a request may need its urlencoded form body (FORM parameters, Form:
    /// variables, a backend signature over form fields).
    pub reads_form: bool,
}

/// Aliyun's RequestProtocol: `HTTP`, `HTTPS` or `HTTP,HTTPS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocols {
    pub http: bool,
    pub https: bool,
}

impl Protocols {
    pub fn allows(&self, https: bool) -> bool {
        if https {
            self.https
        } else {
            self.http
        }
    }
}

/// A grant of an app on an API in a stage; `expires_ms` absent means no end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub expires_ms: Option<i64>,
}

/// What the gateway counts beyond per-API counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsSettings {
    /// Requests by app and code (`cagate.app_requests.<appId>.<code>`).
    pub per_app: bool,
    /// At most this many distinct apps per VM get counters.
    pub max_apps: usize,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings { per_app: false, max_apps: 1000 }
    }
}

/// A compiled, valid configuration.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub stages: Vec<String>,
    /// The group's bound domains (exact, or `*.example.org`); empty: any host.
    pub domains: Vec<String>,
    /// Cluster mode: the rate limit service and etcd (both optional).
    pub cluster_mode: crate::cluster::settings::ClusterModeSettings,
    pub release_stage: StageId,
    pub tolerance_ms: u64,
    pub nonce_ttl_ms: u64,
    pub require_timestamp: bool,
    /// `signature.strict`: refuse what Aliyun admits but a captured request could be changed by: an
    /// unsigned `X-Ca-Nonce` or `X-Ca-Timestamp`, a signed parameter given again with another value.
    pub strict_signature: bool,
    pub nonce_store: NonceStoreConfig,
    pub max_body_bytes: u64,
    pub max_url_bytes: u64,
    /// Loop detection: refuse a request that already passed this many gateways (`None`: off).
    pub max_hops: Option<u64>,
    pub metrics: MetricsSettings,
    /// Report-only for every request (a cut-over): refusals are recorded and counted, requests go on.
    pub report_only: bool,
    /// Whether each request's access record is written and published (Envoy's filter state
    /// `wasm.cagate`); off, the filter skips that work when no access log reads it.
    pub access_record: bool,
    /// The table refusals answer with (VPC: codes; CLASSIC: the classic-network statuses and messages).
    pub error_contract: crate::contract::errors::ErrorContract,
    /// Some cors plugin exists: preflights for unknown APIs answer `I404CO`.
    pub has_cors: bool,
    /// The apps: the static configuration's, and the registry's once a document has loaded.
    pub apps: Directory,
    /// The app registry (`appRegistry`), and whether a document of it is in `apps`.
    pub registry: Option<crate::apps::settings::RegistrySettings>,
    pub registry_loaded: bool,
    /// The installed registry document's own `version`, when it is a whole number (or a string of
    /// digits): what `cagate_registry_version` shows, the same on every Envoy that installed it.
    pub registry_version: Option<u64>,
    pub apis: Vec<Api>,
    pub plugins: Vec<Plugin>,
    /// Plugin datasets (`datasets`), the registry's replacing the static ones of the same id.
    pub datasets: crate::plugins::datasets::Datasets,
    /// `groupQpsLimit`, `instanceQpsLimit` (`T429GR`, `T429IN`).
    pub limits: crate::plugins::traffic_control::GatewayLimits,
    pub warnings: Vec<String>,
    pub(crate) grants: HashMap<(ApiId, AppId, StageId), Grant>,
    pub(crate) router: Router,
}

impl Gateway {
    /// Every API-dimension counter key of trafficControl, to be created before traffic arrives
    /// (Envoy cannot create a shared-data key only if it is absent).
    pub fn traffic_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.limits.keys().into_iter().map(str::to_string).collect();
        for api in &self.apis {
            for (stage, bound) in &api.plugins {
                if let Some(PluginKind::Traffic(cfg)) = bound.traffic.and_then(|i| self.plugins.get(i.index())).map(|p| &p.kind) {
                    let key = crate::plugins::traffic_control::api_key(cfg, &api.name, self.stage_name(*stage));
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                }
            }
        }
        keys
    }

    /// A stage's name ("" for an id no stage has).
    pub fn stage_name(&self, stage: StageId) -> &str {
        self.stages.get(stage.index()).map_or("", String::as_str)
    }
    pub fn stage_index(&self, name: &[u8]) -> Option<StageId> {
        self.stages.iter().position(|s| s.as_bytes() == name).map(|i| StageId(i as u32))
    }
    pub fn app_by_key(&self, key: &[u8]) -> Option<AppId> {
        self.apps.by_key.get(key).copied().map(AppId)
    }
    /// AppCodes are secrets: they are looked up by their SHA-256, so the table lookup's timing depends
    /// on a digest an attacker cannot steer, not on the code.
    pub fn app_by_code(&self, code: &[u8]) -> Option<AppId> {
        self.apps.by_code(code).map(AppId)
    }
    pub fn grant(&self, api: ApiId, app: AppId, stage: StageId) -> Option<Grant> {
        self.grants.get(&(api, app, stage)).copied()
    }
    pub fn route(&self, method: &[u8], decoded_path: &[u8], stage: StageId) -> Option<ApiId> {
        self.router.lookup(method, decoded_path, stage.0).map(ApiId)
    }
    /// Another API than `routed` that a lenient backend would serve this request from (its path read
    /// without case, `;` parameters or empty segments; HEAD as GET), if any.
    pub fn shadowed(&self, method: &[u8], decoded_path: &[u8], stage: StageId, routed: ApiId) -> Option<ApiId> {
        self.router.lookup_as_backend(method, decoded_path, stage.0, routed.0).map(ApiId).filter(|a| *a != routed)
    }
    /// The plugins bound to an API in a stage.
    pub fn bound(&self, api: ApiId, stage: StageId) -> Bound {
        self.api(api).and_then(|a| a.plugins.iter().find(|(s, _)| *s == stage)).map(|(_, b)| *b).unwrap_or_default()
    }
    /// The host an API's backend is reached at in a stage: its `host`, else its Envoy cluster.
    pub fn backend_host(&self, api: ApiId, stage: StageId) -> Option<&str> {
        match &self.api(api)?.backend {
            Some(crate::config::backend::Backend::Http(h)) => h.host(stage).or_else(|| h.cluster(stage)),
            _ => None,
        }
    }

    /// The answer of an API whose backend is a mock.
    pub fn mock_reply(&self, api: ApiId) -> Option<&crate::config::backend::MockBackend> {
        match &self.api(api)?.backend {
            Some(crate::config::backend::Backend::Mock(m)) => Some(m),
            _ => None,
        }
    }

    pub fn app(&self, i: AppId) -> Option<&App> {
        self.apps.apps.get(i.index())
    }

    pub fn app_count(&self) -> usize {
        self.apps.apps.len()
    }
    pub fn api(&self, i: ApiId) -> Option<&Api> {
        self.apis.get(i.index())
    }
}
