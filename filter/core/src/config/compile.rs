//! The configuration contract (docs: docs/configuration.md): parsed and validated once, compiled into the
//! lookup structures the request path uses. Every problem is collected (not just the first) with the
//! JSON path it concerns; no message ever quotes a secret. One section a function: stages, signature
//! settings, apps, plugins, then each API with its grants.

use crate::apps::directory::{add_apps, App, Directory};
use crate::auth::replay::NonceStoreConfig;
use crate::config::backend;
use crate::config::model::{Api, AppCodeAuth, AuthType, Gateway, Grant, MetricsSettings, Protocols};
use crate::config::parameters::{self, ParamLocation};
use crate::config::router::{parse_template, Method, Router, Segment};
use crate::contract::errors::ErrorContract;
use crate::plugins::binding::{parse_bindings, parse_plugins, resolve, Binding, Bound, Plugin, PluginKind};
use crate::plugins::conditions::VarSource;
use crate::schema::validator::{join, Problem, Validator};
use crate::wire::time::parse_instant;
use serde_json::{Map, Value};
use std::collections::HashMap;

pub(crate) const DEFAULT_STAGES: [&str; 3] = ["RELEASE", "PRE", "TEST"];
pub(crate) const DEFAULT_TOLERANCE_S: u64 = 900;
pub(crate) const DEFAULT_MAX_BODY: u64 = 8 * 1024 * 1024;
pub(crate) const DEFAULT_MAX_URL: u64 = 8192;
pub(crate) const DEFAULT_NONCE_CAPACITY: u64 = 262_144;

const TOP_FIELDS: &[&str] = &[
    "stages",
    "signature",
    "maxBodyBytes",
    "maxUrlBytes",
    "maxHops",
    "apps",
    "apis",
    "plugins",
    "groupPlugins",
    "stageVariables",
    "cluster",
    "domains",
    "appRegistry",
    "metrics",
    "reportOnly",
    "accessRecord",
    "errorContract",
    "disableInternet",
    "datasets",
    "groupQpsLimit",
    "instanceQpsLimit",
];
const SIGNATURE_FIELDS: &[&str] =
    &["timestampToleranceSeconds", "nonceTtlSeconds", "nonceCapacity", "nonceCapacityPerApp", "requireTimestamp", "strict"];
const API_FIELDS: &[&str] = &[
    "name",
    "method",
    "path",
    "authType",
    "appCodeAuth",
    "forceNonceCheck",
    "stages",
    "authorizations",
    "description",
    "plugins",
    "parameters",
    "requestMode",
    "backend",
    "protocol",
    "reportOnly",
    "disableInternet",
];
const GRANT_FIELDS: &[&str] = &["appId", "stage", "authValidTime"];

/// Parses, validates and compiles a configuration document. On failure, every problem found. An
/// `appSecret` of `{"env": NAME}` is read from the process environment (in Envoy, the Wasm VM's
/// `vm_config.environment_variables`).
pub fn compile(doc: &[u8]) -> Result<Gateway, Vec<Problem>> {
    compile_with_env(doc, &|name| std::env::var(name).ok())
}

/// `compile`, with the environment given.
pub fn compile_with_env(doc: &[u8], env: &dyn Fn(&str) -> Option<String>) -> Result<Gateway, Vec<Problem>> {
    let root: Value = match serde_json::from_slice(doc) {
        Ok(v) => v,
        Err(e) => {
            // serde's message quotes no input, only a position: safe to log even if a secret is near.
            return Err(vec![Problem { path: String::new(), message: format!("not valid JSON: {e}") }]);
        }
    };
    let mut c = Validator::default();
    let Some(top) = c.object(&root, "", TOP_FIELDS) else { return Err(c.problems) };

    let (stages, release_stage) = stages(&mut c, top);
    let sig = signature(&mut c, top);
    let max_body_bytes = c.integer(top, "", "maxBodyBytes", DEFAULT_MAX_BODY, 0, 1 << 30);
    let max_url_bytes = c.integer(top, "", "maxUrlBytes", DEFAULT_MAX_URL, 16, 1 << 20);
    let max_hops = top.get("maxHops").map(|_| c.integer(top, "", "maxHops", 1, 1, 100));
    let mut apps = Directory::default();
    let app_list = c.array(top, "", "apps");
    add_apps(&mut c, app_list, "apps", Some(env), &mut apps);
    let registry = crate::apps::settings::parse_settings(&mut c, top);
    let cluster_mode = crate::cluster::settings::parse(&mut c, top);
    let domains = domains(&mut c, top);
    let metrics = metrics(&mut c, top);
    let report_only = c.boolean(top, "", "reportOnly", false);
    let access_record = c.boolean(top, "", "accessRecord", true);
    let error_contract = c
        .choice(top, "", "errorContract", "errorContract", false, &[("VPC", ErrorContract::Vpc), ("CLASSIC", ErrorContract::Classic)])
        .unwrap_or_default();

    let app_ids: Vec<&str> = apps.apps.iter().map(|a: &App| a.id.as_str()).collect();
    let (plugins, plugin_by_name) = parse_plugins(&mut c, top, &app_ids);
    let limit = |c: &mut Validator, key: &str| top.get(key).map(|_| c.integer(top, "", key, 1, 1, crate::plugins::traffic_control::MAX_LIMIT));
    let limits =
        crate::plugins::traffic_control::GatewayLimits { group_qps: limit(&mut c, "groupQpsLimit"), instance_qps: limit(&mut c, "instanceQpsLimit") };
    let dataset_list = c.array(top, "", "datasets");
    let datasets = crate::plugins::datasets::declare(crate::plugins::datasets::parse(&mut c, dataset_list, "datasets"));
    crate::plugins::datasets::check_references(&mut c, &plugins, &datasets);
    let all_plugin_names: Vec<String> =
        c.array(top, "", "plugins").iter().filter_map(|p| p.get("name").and_then(Value::as_str).map(str::to_string)).collect();
    let group_list = c.array(top, "", "groupPlugins");
    let group = parse_bindings(&mut c, group_list, "groupPlugins", &plugin_by_name, &all_plugin_names, &stages);
    let variables = backend::parse_stage_variables(&mut c, top, &stages);
    let scope = Scope {
        stages: &stages,
        app_by_id: &apps.by_id,
        plugins: &plugins,
        plugin_by_name: &plugin_by_name,
        plugin_names: &all_plugin_names,
        group: &group,
        variables: &variables,
        disable_internet: c.boolean(top, "", "disableInternet", false),
    };

    let mut compiled = ApiTables::default();
    for (i, v) in c.array(top, "", "apis").iter().enumerate() {
        api(&mut c, &scope, i, v, &mut compiled);
    }

    if !c.problems.is_empty() {
        return Err(c.problems);
    }
    Ok(Gateway {
        stages,
        domains,
        cluster_mode,
        release_stage: crate::ids::StageId(release_stage),
        tolerance_ms: sig.tolerance_s * 1000,
        nonce_ttl_ms: sig.nonce_ttl_s * 1000,
        require_timestamp: sig.require_timestamp,
        strict_signature: sig.strict,
        nonce_store: sig.nonce_store,
        max_body_bytes,
        max_url_bytes,
        max_hops,
        metrics,
        report_only,
        access_record,
        error_contract,
        has_cors: plugins.iter().any(|p| matches!(p.kind, PluginKind::Cors(_))),
        registry_loaded: false,
        registry_version: None,
        registry,
        apps,
        apis: compiled.apis,
        plugins,
        datasets,
        limits,
        warnings: c.warnings,
        grants: compiled.grants,
        router: compiled.router,
    })
}

/// `stages`, and the index of RELEASE (the stage of a request without `X-Ca-Stage`).
fn stages(c: &mut Validator, top: &Map<String, Value>) -> (Vec<String>, u32) {
    let stages: Vec<String> = match c.strings(top, "", "stages") {
        Some(list) => list.into_iter().map(str::to_string).collect(),
        None => DEFAULT_STAGES.iter().map(|s| s.to_string()).collect(),
    };
    if stages.len() > 64 {
        c.err("stages", "at most 64 stages");
    }
    for (i, s) in stages.iter().enumerate() {
        if stages[..i].contains(s) {
            c.err(&format!("stages[{i}]"), format!("duplicate stage {s}"));
        }
    }
    let release = match stages.iter().position(|s| s == "RELEASE") {
        Some(i) => i as u32,
        None => {
            c.err("stages", "must include RELEASE, the stage of a request without X-Ca-Stage");
            0
        }
    };
    (stages, release)
}

struct SignatureSettings {
    tolerance_s: u64,
    nonce_ttl_s: u64,
    require_timestamp: bool,
    strict: bool,
    nonce_store: NonceStoreConfig,
}

fn signature(c: &mut Validator, top: &Map<String, Value>) -> SignatureSettings {
    let empty = Map::new();
    let sig = match top.get("signature") {
        Some(v) => c.object(v, "signature", SIGNATURE_FIELDS).unwrap_or(&empty),
        None => &empty,
    };
    let tolerance_s = c.integer(sig, "signature", "timestampToleranceSeconds", DEFAULT_TOLERANCE_S, 1, 86_400);
    let nonce_ttl_s = c.integer(sig, "signature", "nonceTtlSeconds", tolerance_s.max(DEFAULT_TOLERANCE_S), 1, 86_400);
    if nonce_ttl_s < tolerance_s {
        c.err(
            "signature.nonceTtlSeconds",
            format!("must be at least timestampToleranceSeconds ({tolerance_s}): a nonce forgotten earlier can be replayed"),
        );
    }
    let capacity = c.integer(sig, "signature", "nonceCapacity", DEFAULT_NONCE_CAPACITY, 64, 1 << 24);
    let per_app = c.integer(sig, "signature", "nonceCapacityPerApp", capacity / 2, 1, 1 << 24);
    if per_app > capacity {
        c.err("signature.nonceCapacityPerApp", format!("must be at most nonceCapacity ({capacity})"));
    }
    let require_timestamp = c.boolean(sig, "signature", "requireTimestamp", false);
    let strict = c.boolean(sig, "signature", "strict", false);
    SignatureSettings { tolerance_s, nonce_ttl_s, require_timestamp, strict, nonce_store: NonceStoreConfig::shared(capacity, per_app) }
}

/// What every API is compiled against.
struct Scope<'a> {
    stages: &'a [String],
    app_by_id: &'a HashMap<String, u32>,
    plugins: &'a [Plugin],
    plugin_by_name: &'a HashMap<String, u32>,
    plugin_names: &'a [String],
    group: &'a [Binding],
    variables: &'a backend::StageVariables,
    /// The top-level `disableInternet`: every API's default.
    disable_internet: bool,
}

/// The APIs compiled so far, and what is needed to find conflicts between them.
#[derive(Default)]
struct ApiTables {
    apis: Vec<Api>,
    router: Router,
    grants: HashMap<(crate::ids::ApiId, crate::ids::AppId, crate::ids::StageId), Grant>,
    names: HashMap<String, usize>,
    /// (method, shape of the template, stage) -> document index: two APIs that would match the same
    /// requests.
    shapes: HashMap<(Method, String, u32), usize>,
}

/// Compiles `apis[i]` into `t`. An API with a problem adds nothing (its grants neither), so one
/// mistake is reported once, not again as a conflict of the next API.
fn api(c: &mut Validator, scope: &Scope<'_>, i: usize, v: &Value, t: &mut ApiTables) {
    let path = format!("apis[{i}]");
    let Some(o) = c.object(v, &path, API_FIELDS) else { return };
    let name = c.string(o, &path, "name", true);
    let _ = c.string(o, &path, "description", false);
    if let Some(n) = name {
        if let Some(first) = t.names.insert(n.to_string(), i) {
            c.err(&join(&path, "name"), format!("duplicate API name {n} (also apis[{first}])"));
        }
    }
    let method = c.string(o, &path, "method", true).and_then(|m| {
        let parsed = Method::parse(m);
        if parsed.is_none() {
            c.err(&join(&path, "method"), format!("unknown method {m}: GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS or ANY"));
        }
        parsed
    });
    let api_path = c.string(o, &path, "path", true);
    let template = api_path.and_then(|p| match parse_template(p) {
        Ok(t) => Some(t),
        Err(e) => {
            c.err(&join(&path, "path"), e);
            None
        }
    });
    let (auth, app_code) = auth_types(c, o, &path);
    let force_nonce = c.boolean(o, &path, "forceNonceCheck", false);
    let report_only = c.boolean(o, &path, "reportOnly", false);
    let disable_internet = c.boolean(o, &path, "disableInternet", scope.disable_internet);
    let protocols = protocols(c, o, &path);
    let stage_bits = api_stages(c, o, &path, scope.stages);
    let grants = grants(c, o, &path, scope, stage_bits);
    // Every part is checked even when another is bad (every problem is reported), except what needs
    // the part that is bad: parameters and the backend name the path's `[params]`.
    if let (Some(method), Some(api_path), Some(template)) = (method, api_path, &template) {
        check_overlap(c, &path, i, method, api_path, template, stage_bits, scope.stages, &mut t.shapes);
    }
    let api_list = c.array(o, &path, "plugins");
    let api_bindings = parse_bindings(c, api_list, &join(&path, "plugins"), scope.plugin_by_name, scope.plugin_names, scope.stages);
    let bound = resolve(c, &path, stage_bits, scope.group, &api_bindings, scope.plugins, scope.stages);
    let request_mode = backend::parse_request_mode(c, o, &path);
    let Some(template) = template else { return };
    let path_params: Vec<&str> = template
        .iter()
        .filter_map(|s| match s {
            Segment::Param(n) => Some(n.as_ref()),
            _ => None,
        })
        .collect();
    let param_list = c.array(o, &path, "parameters");
    let params = parameters::parse(c, param_list, &join(&path, "parameters"), &path_params);
    let path_aliases: Vec<String> = params.iter().filter(|p| p.location == ParamLocation::Path).filter_map(|p| p.backend_name.clone()).collect();
    let backend = o.get("backend").and_then(|b| {
        let bscope =
            backend::BackendScope { stages: scope.stages, stage_bits, variables: scope.variables, template: &template, path_aliases: &path_aliases };
        backend::parse(c, b, &join(&path, "backend"), &bscope)
    });
    let (Some(name), Some(method), Some(api_path)) = (name, method, api_path) else { return };
    let reads_form = params.iter().any(|p| p.location == ParamLocation::Form) || bound.iter().any(|(_, b)| reads_form(b, scope.plugins));
    let api_idx = t.apis.len() as u32;
    for ((app, stage), grant) in grants {
        t.grants.insert((crate::ids::ApiId(api_idx), crate::ids::AppId(app), crate::ids::StageId(stage)), grant);
    }
    t.router.insert(&template, api_idx, method, stage_bits);
    t.apis.push(Api {
        name: name.to_string(),
        method,
        path: api_path.to_string(),
        template,
        auth,
        app_code,
        force_nonce,
        report_only,
        disable_internet,
        stages: stage_bits,
        plugins: bound.into_iter().map(|(s, b)| (crate::ids::StageId(s), b)).collect(),
        params,
        protocols,
        request_mode,
        backend,
        reads_form,
    });
}

/// `metrics`: per-app request counters (off by default: apps can be 100,000), capped at `maxApps`
/// distinct apps per VM.
fn metrics(c: &mut Validator, top: &Map<String, Value>) -> MetricsSettings {
    let Some(o) = top.get("metrics").and_then(|v| c.object(v, "metrics", &["perApp", "maxApps"])) else { return MetricsSettings::default() };
    MetricsSettings { per_app: c.boolean(o, "metrics", "perApp", false), max_apps: c.integer(o, "metrics", "maxApps", 1000, 1, 100_000) as usize }
}

/// `domains`: the hosts the group answers (`I404DO` for any other); absent or empty: any host.
fn domains(c: &mut Validator, top: &Map<String, Value>) -> Vec<String> {
    let list = c.strings(top, "", "domains").unwrap_or_default();
    let mut out = Vec::new();
    for (i, d) in list.iter().enumerate() {
        let name = d.strip_prefix("*.").unwrap_or(d);
        let ok = !name.is_empty() && name.split('.').all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        if !ok {
            c.err(&format!("domains[{i}]"), format!("{d} is not a host name or *.wildcard"));
        }
        out.push(d.to_ascii_lowercase());
    }
    out
}

/// `protocol`: Aliyun's RequestProtocol, `HTTP`, `HTTPS` or `HTTP,HTTPS` (default both).
fn protocols(c: &mut Validator, o: &Map<String, Value>, path: &str) -> Protocols {
    let Some(v) = c.string(o, path, "protocol", false) else { return Protocols { http: true, https: true } };
    let mut p = Protocols { http: false, https: false };
    for part in v.split(',').map(str::trim) {
        match part.to_ascii_uppercase().as_str() {
            "HTTP" => p.http = true,
            "HTTPS" => p.https = true,
            _ => c.err(&join(path, "protocol"), format!("unknown protocol {part}: HTTP, HTTPS or HTTP,HTTPS")),
        }
    }
    p
}

fn auth_types(c: &mut Validator, o: &Map<String, Value>, path: &str) -> (AuthType, AppCodeAuth) {
    let auth = c.choice(o, path, "authType", "authType", false, &[("APP", AuthType::App), ("ANONYMOUS", AuthType::Anonymous)]);
    let app_code = c.choice(
        o,
        path,
        "appCodeAuth",
        "appCodeAuth",
        false,
        &[("DISABLE", AppCodeAuth::Disable), ("HEADER", AppCodeAuth::Header), ("HEADER_QUERY", AppCodeAuth::HeaderQuery)],
    );
    (auth.unwrap_or(AuthType::App), app_code.unwrap_or(AppCodeAuth::Disable))
}

/// The stages an API is published in, as bits (bit i: stage i).
fn api_stages(c: &mut Validator, o: &Map<String, Value>, path: &str, stages: &[String]) -> u64 {
    let mut bits = 0u64;
    for (j, s) in c.strings(o, path, "stages").unwrap_or_else(|| vec!["RELEASE"]).iter().enumerate() {
        match stages.iter().position(|x| x == s) {
            Some(k) if k < 64 => bits |= 1 << k,
            _ => c.err(&format!("{path}.stages[{j}]"), format!("unknown stage {s}")),
        }
    }
    bits
}

/// `authorizations`: (app, stage) -> grant.
fn grants(c: &mut Validator, o: &Map<String, Value>, path: &str, scope: &Scope<'_>, stage_bits: u64) -> HashMap<(u32, u32), Grant> {
    let mut out = HashMap::new();
    for (j, g) in c.array(o, path, "authorizations").iter().enumerate() {
        let gpath = format!("{path}.authorizations[{j}]");
        let Some(go) = c.object(g, &gpath, GRANT_FIELDS) else { continue };
        let app = c.id(go, &gpath, "appId", true).filter(|s| c.text(&join(&gpath, "appId"), s));
        let stage = c.string(go, &gpath, "stage", false).unwrap_or("RELEASE");
        let expires_ms = c.string(go, &gpath, "authValidTime", false).and_then(|t| {
            let parsed = parse_instant(t);
            if parsed.is_none() {
                c.err(&join(&gpath, "authValidTime"), "must be an RFC 3339 time or an HTTP date in GMT");
            }
            parsed
        });
        let app_idx = app.as_ref().and_then(|a| {
            let found = scope.app_by_id.get(a).copied();
            if found.is_none() {
                c.err(&join(&gpath, "appId"), format!("unknown app {a}"));
            }
            found
        });
        let stage_idx = match scope.stages.iter().position(|x| x == stage) {
            Some(k) if stage_bits & (1u64 << (k as u32 % 64)) != 0 => Some(k as u32),
            Some(_) => {
                c.err(&join(&gpath, "stage"), format!("the API is not published in stage {stage}"));
                None
            }
            None => {
                c.err(&join(&gpath, "stage"), format!("unknown stage {stage}"));
                None
            }
        };
        if let (Some(a), Some(s)) = (app_idx, stage_idx) {
            if out.insert((a, s), Grant { expires_ms }).is_some() {
                c.err(&gpath, format!("app {} is already authorized in stage {stage}", app.unwrap_or_default()));
            }
        }
    }
    out
}

/// Two APIs that would serve the same requests (same method, same template shape, same stage) are
/// a configuration error.
#[allow(clippy::too_many_arguments)]
fn check_overlap(
    c: &mut Validator,
    path: &str,
    i: usize,
    method: Method,
    api_path: &str,
    template: &[Segment],
    stage_bits: u64,
    stages: &[String],
    shapes: &mut HashMap<(Method, String, u32), usize>,
) {
    let shape: String = template
        .iter()
        .map(|s| match s {
            Segment::Literal(l) => format!("/{}", String::from_utf8_lossy(l)),
            Segment::Param(_) => "/[]".to_string(),
            Segment::Rest => "/*".to_string(),
        })
        .collect();
    for k in 0..stages.len().min(64) as u32 {
        if stage_bits & (1 << k) != 0 {
            if let Some(first) = shapes.insert((method, shape.clone(), k), i) {
                c.err(path, format!("{} {api_path} in stage {} is already served by apis[{first}]", method.as_str(), stages[k as usize]));
            }
        }
    }
}

/// Whether deciding on a request of an API may need its urlencoded form body: a backend signature
/// over form fields, or accessControl reading `Form:` variables.
fn reads_form(b: &Bound, plugins: &[Plugin]) -> bool {
    b.backend_signature.is_some()
        || b.access.and_then(|i| plugins.get(i.index())).is_some_and(|p| match &p.kind {
            PluginKind::Access(a) => a.params.locations.iter().any(|l| matches!(l, VarSource::Form(_))),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::*;

    const SAMPLE: &str = r#"{
      "stages": ["RELEASE", "PRE", "TEST"],
      "signature": { "timestampToleranceSeconds": 900, "nonceTtlSeconds": 900 },
      "maxBodyBytes": 8388608,
      "apps": [ { "appId": 10001, "name": "demo", "appKey": "test-app-key-1",
                  "appSecret": "test-app-secret-1-0123456789abcdef", "appCodes": ["3F2504E04F8911D39A0C0305E82C3301"] } ],
      "apis": [ { "name": "orders", "method": "GET", "path": "/orders/[orderId]", "authType": "APP",
                  "appCodeAuth": "HEADER", "forceNonceCheck": false, "stages": ["RELEASE", "TEST"],
                  "authorizations": [ { "appId": "10001", "stage": "RELEASE", "authValidTime": "2027-01-01T00:00:00Z" },
                                      { "appId": "10001", "stage": "TEST" } ] } ]
    }"#;

    #[test]
    fn sample_compiles() {
        let g = compile(SAMPLE.as_bytes()).unwrap();
        assert_eq!(g.apps.apps[0].id, "10001");
        assert_eq!(g.app_by_key(b"test-app-key-1"), Some(crate::ids::AppId(0)));
        assert_eq!(g.app_by_code(b"3F2504E04F8911D39A0C0305E82C3301"), Some(crate::ids::AppId(0)));
        assert_eq!(g.app_by_code(b"3F2504E04F8911D39A0C0305E82C3302"), None);
        assert_eq!(g.route(b"GET", b"/orders/7", crate::ids::StageId(0)), Some(crate::ids::ApiId(0)));
        assert_eq!(g.route(b"GET", b"/orders/7", crate::ids::StageId(1)), None, "not published in PRE");
        assert_eq!(g.grant(crate::ids::ApiId(0), crate::ids::AppId(0), crate::ids::StageId(0)), Some(Grant { expires_ms: Some(1_798_761_600_000) }));
        assert_eq!(g.grant(crate::ids::ApiId(0), crate::ids::AppId(0), crate::ids::StageId(2)), Some(Grant { expires_ms: None }));
        assert_eq!(g.grant(crate::ids::ApiId(0), crate::ids::AppId(0), crate::ids::StageId(1)), None);
        assert_eq!(g.tolerance_ms, 900_000);
        let dbg = format!("{:?}", g);
        assert!(!dbg.contains("test-app-secret"), "Debug must not print secrets");
    }

    #[test]
    fn defaults() {
        let g = compile(br#"{"apis":[{"name":"a","method":"ANY","path":"/*","authType":"ANONYMOUS"}]}"#).unwrap();
        assert_eq!(g.stages, DEFAULT_STAGES);
        assert_eq!(g.max_body_bytes, DEFAULT_MAX_BODY);
        assert_eq!(g.tolerance_ms, 900_000);
        assert_eq!(g.nonce_ttl_ms, 900_000);
        assert_eq!(g.apis[0].stages, 1);
        assert!(g.nonce_store.shards as u64 * g.nonce_store.per_shard as u64 >= DEFAULT_NONCE_CAPACITY);
        assert!(g.nonce_store.per_app < g.nonce_store.per_shard, "no app holds the whole store: {:?}", g.nonce_store);
        let one_app = compile(br#"{"signature":{"nonceCapacityPerApp":262144},"apis":[]}"#).unwrap();
        assert_eq!(one_app.nonce_store.per_app, one_app.nonce_store.per_shard);
    }

    #[test]
    fn every_problem_is_reported_and_no_secret_leaks() {
        let bad = r#"{
          "stages": ["RELEASE", "RELEASE"],
          "signature": { "timestampToleranceSeconds": 900, "nonceTtlSeconds": 60, "bogus": 1, "nonceCapacity": 1000, "nonceCapacityPerApp": 1001 },
          "maxBodyBytes": "big",
          "apps": [ { "appId": 1, "appKey": "k", "appSecret": "SECRET-ONE", "appCodes": ["CODE-SECRET"] },
                    { "appId": 1, "appKey": "k", "appSecret": "SECRET-TWO", "appCodes": ["CODE-SECRET"] },
                    { "appId": 1.5, "appSecret": 7 } ],
          "apis": [ { "name": "x", "method": "FETCH", "path": "nope", "authType": "MAYBE", "appCodeAuth": "SOMETIMES",
                      "stages": ["PROD"], "authorizations": [ { "appId": "404", "stage": "DEV", "authValidTime": "soon" } ] },
                    { "name": "x", "method": "GET", "path": "/a/[id]", "extra": true },
                    { "name": "y", "method": "GET", "path": "/a/[other]" } ],
          "unknownTop": 1
        }"#;
        let problems = compile(bad.as_bytes()).unwrap_err();
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        let all = text.join("\n");
        for expected in [
            "unknownTop: unknown field",
            "stages[1]: duplicate stage RELEASE",
            "signature.bogus: unknown field",
            "signature.nonceTtlSeconds: must be at least",
            "signature.nonceCapacityPerApp: must be at most nonceCapacity (1000)",
            "maxBodyBytes: must be a number",
            "apps[1].appId: duplicate appId 1",
            "apps[1].appKey: duplicate appKey k",
            "apps[1].appCodes[0]: duplicate AppCode (same as apps[0].appCodes[0])",
            "apps[2].appId: must be a string or a whole number",
            "apps[2].appKey: is required",
            "apps[2].appSecret: must be a string",
            "apis[0].method: unknown method FETCH",
            "apis[0].path: must start with '/'",
            "apis[0].authType: unknown authType MAYBE",
            "apis[0].appCodeAuth: unknown appCodeAuth SOMETIMES",
            "apis[0].stages[0]: unknown stage PROD",
            "apis[0].authorizations[0].appId: unknown app 404",
            "apis[0].authorizations[0].stage: unknown stage DEV",
            "apis[0].authorizations[0].authValidTime: must be an RFC 3339",
            "apis[1].extra: unknown field",
            "apis[1].name: duplicate API name x",
            "apis[2]: GET /a/[other] in stage RELEASE is already served by apis[1]",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in\n{all}");
        }
        assert!(!all.contains("SECRET"), "a secret leaked:\n{all}");
    }

    #[test]
    fn grant_rules() {
        let doc = r#"{"apps":[{"appId":"a","appKey":"k","appSecret":"s"}],
          "apis":[{"name":"x","method":"GET","path":"/x","stages":["RELEASE"],
                   "authorizations":[{"appId":"a","stage":"TEST"},{"appId":"a"},{"appId":"a","stage":"RELEASE"}]}]}"#;
        let all: Vec<String> = compile(doc.as_bytes()).unwrap_err().iter().map(|p| p.to_string()).collect();
        assert!(all.iter().any(|p| p.contains("authorizations[0].stage: the API is not published in stage TEST")), "{all:?}");
        assert!(all.iter().any(|p| p.contains("authorizations[2]: app a is already authorized in stage RELEASE")), "{all:?}");
    }

    #[test]
    fn not_json() {
        let p = compile(b"{\"apps\": [").unwrap_err();
        assert!(p[0].message.starts_with("not valid JSON"));
        let p = compile(b"[]").unwrap_err();
        assert_eq!(p[0].message, "must be an object, not an array");
    }

    #[test]
    fn one_problem_one_message() {
        let doc = br#"{ "apps": [ { "appId": 1, "appKey": "k", "appSecret": "s" } ],
          "apis": [ { "name": "a", "method": "FETCH", "path": "/a", "authorizations": [ { "appId": 1 } ] },
                    { "name": "b", "method": "GET", "path": "/b", "authorizations": [ { "appId": 1 } ] } ] }"#;
        let problems = compile(doc).unwrap_err();
        let shown: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(shown, vec!["apis[0].method: unknown method FETCH: GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS or ANY"]);
    }

    #[test]
    fn a_bad_method_does_not_hide_the_apis_other_problems() {
        let doc = br#"{ "apis": [ { "name": "a", "method": "FETCH", "path": "/a", "requestMode": "BOGUS", "authType": "ANONYMOUS",
                                   "backend": { "type": "FC" }, "plugins": [ { "plugin": "nope" } ],
                                   "parameters": [ { "name": "x", "location": "COOKIE" } ] } ] }"#;
        let shown: Vec<String> = compile(doc).unwrap_err().iter().map(|p| p.to_string()).collect();
        for part in ["apis[0].method", "apis[0].requestMode", "apis[0].backend.type", "apis[0].plugins[0]", "apis[0].parameters[0].location"] {
            assert!(shown.iter().any(|p| p.starts_with(part)), "{part}: {shown:#?}");
        }
        // Within a backend and a parameter too.
        let doc = br#"{ "apis": [ { "name": "a", "method": "GET", "path": "/a", "authType": "ANONYMOUS",
                                   "backend": { "cluster": "c", "path": "nope", "timeoutMs": 99999999, "method": "ANY" },
                                   "parameters": [ { "location": "QUERY", "type": "NUMBER", "regularExpression": "([" } ] } ] }"#;
        let shown: Vec<String> = compile(doc).unwrap_err().iter().map(|p| p.to_string()).collect();
        for part in [
            "apis[0].backend.path",
            "apis[0].backend.timeoutMs",
            "apis[0].backend.method",
            "apis[0].parameters[0].name",
            "apis[0].parameters[0].type",
            "apis[0].parameters[0].regularExpression",
        ] {
            assert!(shown.iter().any(|p| p.starts_with(part)), "{part}: {shown:#?}");
        }
    }

    #[test]
    fn plugin_data_as_an_object_is_bounded_as_text_is() {
        let big = "x".repeat(60 * 1024);
        let doc = serde_json::json!({ "plugins": [ { "name": "p", "type": "cors", "data": { "allowOrigins": big } } ] }).to_string();
        let shown: Vec<String> = compile(doc.as_bytes()).unwrap_err().iter().map(|p| p.to_string()).collect();
        assert!(shown.iter().any(|p| p.contains("bytes as JSON; plugin data is at most")), "{shown:#?}");
        // A second plugin of a name is reported even when the first did not parse.
        let doc = br#"{ "plugins": [ { "name": "p", "type": "bogus", "data": {} }, { "name": "p", "type": "cors", "data": {} } ] }"#;
        let shown: Vec<String> = compile(doc).unwrap_err().iter().map(|p| p.to_string()).collect();
        assert!(shown.contains(&"plugins[1].name: duplicate plugin name p".to_string()), "{shown:#?}");
    }
}
