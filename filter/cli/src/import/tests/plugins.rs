//! `--plugins` and `--plugin-apis`: Aliyun's DescribePlugins and DescribePluginApis answers as plugin
//! definitions and bindings, and what is refused.

use super::*;
use crate::import::plugins::{Definitions, PluginApis};

const PLUGINS: &str = include_str!("../../../../../tests/import/aliyun-plugins.json");
const PLUGIN_APIS: &str = include_str!("../../../../../tests/import/aliyun-plugin-apis.json");

fn with_plugins(defs: &[&str], bindings: &[(&str, &str)]) -> (Option<Output>, Diags) {
    let definitions: Vec<Definitions<'_>> = defs.iter().map(|t| Definitions { file: "plugins.json", text: t }).collect();
    let apis: Vec<(PluginApis, String)> =
        bindings.iter().map(|(p, t)| (format!("{p}=apis.json").parse::<PluginApis>().unwrap(), t.to_string())).collect();
    let settings = Settings { stage_vars: &[], stages: &[], merge: None, envoy: None, plugins: &definitions, plugin_apis: &apis };
    let mut d = Diags::default();
    let out = import(SAMPLE, &settings, &mut d);
    (out, d)
}

fn api<'a>(c: &'a Json, name: &str) -> &'a Json {
    c["apis"].as_array().unwrap().iter().find(|a| a["name"] == name).unwrap()
}

#[test]
fn definitions_and_bindings_by_plugin_id_and_name() {
    let (out, d) = with_plugins(&[PLUGINS], &[("9a3f0c6e2b7d4e1f8a5c3b2d1e0f9a8b", PLUGIN_APIS), ("rewrite", PLUGIN_APIS)]);
    let out = out.unwrap_or_else(|| panic!("{:?}", d.errors));
    let c: Json = serde_json::from_str(&out.config).unwrap();
    assert_eq!(
        c["plugins"],
        json!([
            { "name": "order-limits", "type": "trafficControl", "data": "unit: MINUTE\napiDefault: 100\n", "description": "per-API limit" },
            { "name": "rewrite", "type": "transformer",
              "data": "{\"putRequestParameter\": [{\"name\": \"X-Source\", \"value\": \"aliyun\", \"location\": \"header\"}]}" }
        ])
    );
    let bound = json!([ { "plugin": "order-limits", "stages": ["RELEASE"] }, { "plugin": "rewrite", "stages": ["RELEASE"] } ]);
    assert_eq!(api(&c, "getOrder")["plugins"], bound);
    assert_eq!(api(&c, "createOrder")["plugins"], bound);
    assert!(api(&c, "health").get("plugins").is_none());
    assert!(has(&d.warnings, "apis.json: ApiSummarys.ApiPluginSummary[2]: no imported API is named listInvoices"), "{:?}", d.warnings);
}

#[test]
fn a_type_cagate_does_not_support_is_an_error() {
    let answer = r#"{"Plugins": {"PluginAttribute": [{"PluginId": "x", "PluginName": "params", "PluginType": "parameterAccessControl", "PluginData": "{}"}]}}"#;
    let (out, d) = with_plugins(&[answer], &[]);
    assert!(out.is_none());
    assert!(
        has(
            &d.errors,
            "plugins.json: Plugins.PluginAttribute[0].PluginType: plugin params: plugin type parameterAccessControl is not supported by this version of cagate"
        ),
        "{:?}",
        d.errors
    );
}

#[test]
fn bad_data_is_reported_by_the_filters_compiler() {
    let answer = r#"{"Plugins": {"PluginAttribute": [{"PluginName": "rw", "PluginType": "transformer", "PluginData": "putRequestParameter:\n- name: a\n  value: b\n  location: form\n"}]}}"#;
    let (out, d) = with_plugins(&[answer], &[]);
    assert!(out.is_none());
    assert!(has(&d.errors, "plugins[0].data (plugin rw).putRequestParameter[0].location: location form is not supported"), "{:?}", d.errors);
}

#[test]
fn bindings_need_a_known_plugin_and_a_published_stage() {
    let apis = r#"[{"ApiName": "getOrder", "StageName": "TEST"}]"#;
    let (out, d) = with_plugins(&[PLUGINS], &[("order-limits", apis)]);
    let c: Json = serde_json::from_str(&out.unwrap().config).unwrap();
    assert!(api(&c, "getOrder").get("plugins").is_none());
    assert!(has(&d.warnings, "StageName: API getOrder is not published in TEST here"), "{:?}", d.warnings);
    let (out, d) = with_plugins(&[PLUGINS], &[("nope", apis)]);
    assert!(out.is_none());
    assert!(has(&d.errors, "--plugin-apis nope: no imported or configured plugin"), "{:?}", d.errors);
    assert!("no-equals-sign".parse::<PluginApis>().is_err());
}

#[test]
fn not_an_aliyun_answer() {
    let (out, d) = with_plugins(&[r#"{"Plugins": []}"#], &[]);
    assert!(out.is_none());
    assert!(has(&d.errors, "plugins.json: not a DescribePlugins answer"), "{:?}", d.errors);
}

#[test]
fn missing_pages_of_a_paged_answer_are_warned() {
    let mut defs: Json = serde_json::from_str(PLUGINS).unwrap();
    let held = defs["Plugins"]["PluginAttribute"].as_array().unwrap().len();
    defs["TotalCount"] = json!(held + 50);
    let mut apis: Json = serde_json::from_str(PLUGIN_APIS).unwrap();
    apis["TotalCount"] = json!("57");
    let (out, d) = with_plugins(&[&defs.to_string()], &[("rewrite", &apis.to_string())]);
    assert!(out.is_some(), "{:?}", d.errors);
    let pages: Vec<&String> = d.warnings.iter().filter(|w| w.contains("pages are missing")).collect();
    assert_eq!(pages.len(), 2, "{:?}", d.warnings);
    assert!(pages[0].contains(&format!("TotalCount {}, {held} items in all", held + 50)), "{pages:?}");
    // Every page passed: nothing to say.
    let mut page: Json = serde_json::from_str(PLUGIN_APIS).unwrap();
    let items = page["ApiSummarys"]["ApiPluginSummary"].as_array().unwrap().len();
    page["TotalCount"] = json!(2 * items);
    let (_, d) = with_plugins(&[PLUGINS], &[("rewrite", &page.to_string()), ("rewrite", &page.to_string())]);
    assert!(!has(&d.warnings, "pages are missing"), "{:?}", d.warnings);
    let (_, d) = with_plugins(&[PLUGINS], &[("rewrite", &page.to_string())]);
    assert!(has(&d.warnings, "pages are missing"), "{:?}", d.warnings);
}

#[test]
fn a_routing_route_s_address_becomes_a_cluster_and_its_host() {
    let data = "routes:\n  - name: Beta\n    condition: \"$CaAppId = 1\"\n    backend:\n      type: HTTP\n      address: 'http://Beta.Internal:8080/base'\n      path: /v2/orders\n  - name: Stay\n    condition: \"$CaAppId = 2\"\n";
    let answer =
        json!({ "Plugins": { "PluginAttribute": [ { "PluginId": "r", "PluginName": "canary", "PluginType": "routing", "PluginData": data } ] } });
    let (out, d) = with_plugins(&[&answer.to_string()], &[]);
    let out = out.unwrap_or_else(|| panic!("{:?}", d.errors));
    let c: Json = serde_json::from_str(&out.config).unwrap();
    let backend = &c["plugins"][0]["data"]["routes"][0]["backend"];
    assert_eq!(backend, &json!({ "type": "HTTP", "path": "/base/v2/orders", "cluster": "backend_beta_internal_8080", "host": "beta.internal:8080" }));
    assert!(out.clusters.contains_key("backend_beta_internal_8080"), "the cluster goes into the Envoy configuration");
    assert!(has(&d.notes, "the address http://Beta.Internal:8080/base becomes the cluster backend_beta_internal_8080"), "{:?}", d.notes);
    // A stage variable has no value here: a route is the same in every stage.
    let stage_var = data.replace("http://Beta.Internal:8080/base", "http://#beta#");
    let answer = json!({ "Plugins": { "PluginAttribute": [ { "PluginId": "r", "PluginName": "canary", "PluginType": "routing", "PluginData": stage_var } ] } });
    let (out, d) = with_plugins(&[&answer.to_string()], &[]);
    assert!(out.is_none());
    assert!(has(&d.errors, "routes[0].backend.address: takes no #stage variable#"), "{:?}", d.errors);
    // A circuit breaker's downgrade backend likewise.
    let breaker = "downgradeBackend:\n  type: HTTP\n  address: 'http://fallback:80'\n";
    let answer = json!({ "Plugins": { "PluginAttribute": [ { "PluginId": "b", "PluginName": "cb", "PluginType": "circuitBreaker", "PluginData": breaker } ] } });
    let (out, d) = with_plugins(&[&answer.to_string()], &[]);
    let c: Json = serde_json::from_str(&out.unwrap_or_else(|| panic!("{:?}", d.errors)).config).unwrap();
    assert_eq!(c["plugins"][0]["data"]["downgradeBackend"], json!({ "type": "HTTP", "cluster": "backend_fallback_80", "host": "fallback:80" }));
}
