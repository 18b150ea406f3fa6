#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The importer on the sample Aliyun export and on documents made to fail, merging, stage variables,
//! the Envoy bootstrap, and the system parameter names against the core.

use super::*;
use serde_json::{json, Value as Json};

const SAMPLE: &str = include_str!("../../../../../tests/import/aliyun-orders.yaml");
const BAD_OPENAPI: &str = include_str!("../../../../../tests/import/bad-openapi3.yaml");
const BAD_PATH_PARAM: &str = include_str!("../../../../../tests/import/bad-path-param.yaml");
const BAD_BACKEND: &str = include_str!("../../../../../tests/import/bad-backend.yaml");

fn listen() -> envoy::SocketAddr {
    "127.0.0.1:10000".parse().unwrap()
}

fn admin() -> envoy::SocketAddr {
    "127.0.0.1:9901".parse().unwrap()
}

fn run_with(swagger: &str, vars: &[&str], stages: &[&str], merge: Option<&str>, with_envoy: bool) -> (Option<Output>, Diags) {
    let vars: Vec<StageVar> = vars.iter().map(|v| v.parse().unwrap()).collect();
    let stages: Vec<String> = stages.iter().map(|s| s.to_string()).collect();
    let (l, a) = (listen(), admin());
    let settings = Settings {
        stage_vars: &vars,
        stages: &stages,
        merge: merge.map(|m| ("old.json", m)),
        envoy: with_envoy.then_some((&l, &a, "cagate.wasm")),
        plugins: &[],
        plugin_apis: &[],
    };
    let mut d = Diags::default();
    let out = import(swagger, &settings, &mut d);
    (out, d)
}

fn ok(swagger: &str) -> (Json, Diags) {
    let (out, d) = run_with(swagger, &[], &[], None, false);
    let out = out.unwrap_or_else(|| panic!("{:?}", d.errors));
    (serde_json::from_str(&out.config).unwrap(), d)
}

fn errors(swagger: &str) -> Vec<String> {
    let (out, d) = run_with(swagger, &[], &[], None, false);
    assert!(out.is_none(), "expected errors: {:?}", d.warnings);
    d.errors
}

fn has(list: &[String], needle: &str) -> bool {
    list.iter().any(|l| l.contains(needle))
}

/// A one-operation document.
fn doc(op: &str) -> String {
    format!("swagger: '2.0'\ninfo: {{title: t, version: '1'}}\npaths:\n  '/orders/{{orderId}}':\n    get:\n{op}")
}

#[test]
fn the_sample_export() {
    let (out, d) = run_with(SAMPLE, &[], &[], None, true);
    let out = out.unwrap_or_else(|| panic!("{:?}", d.errors));
    assert_eq!((out.apis, out.skipped), (3, 1));
    assert!(has(&d.warnings, "paths./orders/{orderId}/invoice.get.x-aliyun-apigateway-backend: type FC is not supported"), "{:?}", d.warnings);
    assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
    let c: Json = serde_json::from_str(&out.config).unwrap();
    let names: Vec<&str> = c["apis"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["getOrder", "createOrder", "health"]);
    let get = &c["apis"][0];
    assert_eq!(get["path"], "/orders/[orderId]");
    assert_eq!(
        (&get["authType"], &get["appCodeAuth"], &get["forceNonceCheck"], &get["requestMode"]),
        (&json!("APP"), &json!("HEADER"), &json!(false), &json!("MAPPING"))
    );
    assert_eq!(get["stages"], json!(["RELEASE"]));
    assert_eq!(
        get["parameters"],
        json!([
            { "name": "orderId", "location": "PATH", "type": "LONG", "required": true, "description": "The order number" },
            { "name": "fields", "location": "QUERY", "maxLength": 64, "description": "Which fields to return, comma-separated", "backendName": "select", "backendLocation": "QUERY" },
            { "name": "X-Tenant", "location": "HEADER", "maxLength": 32 }
        ])
    );
    assert_eq!(
        get["backend"],
        json!({
            "type": "HTTP", "cluster": "backend_orders_internal_8080", "path": "/v1/orders/[orderId]", "method": "GET", "timeoutMs": 3000,
            "host": "orders.internal:8080",
            "systemParameters": [ { "name": "CaClientIp", "backendName": "X-Client-Ip", "location": "HEADER" },
                                  { "name": "CaAppId", "backendName": "X-App-Id", "location": "HEADER" } ]
        })
    );
    let post = &c["apis"][1];
    assert_eq!((&post["method"], &post["forceNonceCheck"], &post["requestMode"]), (&json!("POST"), &json!(true), &json!("MAPPING")));
    assert_eq!(post["parameters"][1], json!({ "name": "quantity", "location": "FORM", "type": "INT", "required": true }));
    assert_eq!(post["backend"]["timeoutMs"], 5000);
    let health = &c["apis"][2];
    assert_eq!(health["authType"], "ANONYMOUS");
    assert_eq!(health["backend"], json!({ "type": "MOCK", "mockStatusCode": 200, "mockResult": "{\"status\":\"ok\"}" }));
    assert_eq!(out.clusters.keys().collect::<Vec<_>>(), ["backend_orders_internal_8080"]);
    // The configuration is the filter's: it compiles.
    cagate_core::compile(out.config.as_bytes()).unwrap();
}

#[test]
fn json_and_yaml_give_the_same() {
    let as_json = serde_json::to_string(&serde_yaml::from_str::<Json>(SAMPLE).unwrap()).unwrap();
    let by_name = |c: Json| {
        let mut apis = c["apis"].as_array().unwrap().clone();
        apis.sort_by_key(|a| a["name"].to_string());
        apis
    };
    // (serde_json sorted the paths of the JSON text: the same APIs, in another order)
    assert_eq!(by_name(ok(SAMPLE).0), by_name(ok(&as_json).0));
}

#[test]
fn documents_that_fail() {
    let e = errors(BAD_OPENAPI);
    assert!(has(&e, "openapi: an OpenAPI 3.0.3 document: only Swagger 2.0"), "{e:?}");
    let e = errors(BAD_PATH_PARAM);
    assert!(has(&e, "paths./orders/{orderId}.get: the path parameter {orderId} has no `in: path` parameter"), "{e:?}");
    assert!(has(&e, "paths./orders/{orderId}.get.parameters[0].name: no {id} segment in the path"), "{e:?}");
    let e = errors(BAD_BACKEND);
    for expected in [
        "paths./a.get.x-aliyun-apigateway-backend.type: missing",
        "paths./b.get.x-aliyun-apigateway-backend.type: unknown backend type GRPC",
        "paths./c.get.x-aliyun-apigateway-backend.address: missing",
        "paths./d.get.x-aliyun-apigateway-backend: must be an object",
    ] {
        assert!(has(&e, expected), "{expected}: {e:?}");
    }
    assert!(has(&errors("swagger: '3.0'\npaths: {}\n"), "swagger: version 3.0"));
    assert!(has(&errors("- a\n- b\n"), "the top level must be an object"));
    assert!(has(&errors("swagger: '2.0'\npaths: {}\n"), "paths: no operation to import"));
    assert!(has(&errors("swagger: '2.0'\npaths: { '/a/{b}.json': { get: {} } }\n"), "a path parameter must be a whole segment"));
    assert!(has(&errors("{ not json or yaml"), "neither JSON nor YAML"));
}

#[test]
fn both_spellings_of_parameter_handling() {
    let param = "      parameters: [{name: orderId, in: path, required: true, type: string}, {name: q, in: query, type: string, x-aliyun-apigateway-backend-name: query2}]\n      responses: {}\n";
    for key in ["x-aliyun-apigateway-parameter-handling", "x-aliyun-apigateway-paramater-handling"] {
        let (c, _) = ok(&doc(&format!("{param}      {key}: MAPPING\n")));
        assert_eq!(c["apis"][0]["requestMode"], "MAPPING");
        assert_eq!(c["apis"][0]["parameters"][1]["backendName"], "query2");
    }
    let e = errors(&doc(&format!(
        "{param}      x-aliyun-apigateway-parameter-handling: MAPPING\n      x-aliyun-apigateway-paramater-handling: PASSTHROUGH\n"
    )));
    assert!(has(&e, "disagree"), "{e:?}");
    // Aliyun refuses backend names in PASSTHROUGH (the default).
    let e = errors(&doc(param));
    assert!(
        has(&e, "paths./orders/{orderId}.get.parameters[1]: x-aliyun-apigateway-backend-name and x-aliyun-apigateway-backend-location need MAPPING"),
        "{e:?}"
    );
    let e = errors(&doc(&format!("{param}      x-aliyun-apigateway-parameter-handling: MAP\n")));
    assert!(has(&e, "x-aliyun-apigateway-parameter-handling: unknown parameter handling MAP"), "{e:?}");
}

#[test]
fn passthrough_keeps_only_path_parameters() {
    let (c, d) = ok(&doc("      parameters:\n        - {name: orderId, in: path, required: true, type: string}\n        - {name: q, in: query, required: true, type: string}\n        - {name: X-A, in: header, type: string}\n      responses: {}\n"));
    assert_eq!(c["apis"][0]["requestMode"], "PASSTHROUGH");
    assert_eq!(c["apis"][0]["parameters"], json!([{ "name": "orderId", "location": "PATH", "required": true }]));
    assert!(has(&d.notes, "not imported: q, X-A"), "{:?}", d.notes);
    assert!(has(&d.warnings, "no x-aliyun-apigateway-backend"), "{:?}", d.warnings);
}

#[test]
fn operation_extensions() {
    let pp = "      parameters: [{name: orderId, in: path, required: true, type: string}]\n      responses: {}\n";
    let (c, d) = ok(&doc(&format!(
        "{pp}      x-aliyun-apigateway-auth-type: APPOPENID\n      x-aliyun-apigateway-api-market-enable: true\n      x-aliyun-apigateway-visibility: PUBLIC\n      x-aliyun-apigateway-any-method: true\n      x-aliyun-apigateway-force-nonce-check: 'true'\n      x-aliyun-apigateway-app-code-auth-type: DEFAULT\n"
    )));
    let api = &c["apis"][0];
    assert_eq!(
        (&api["method"], &api["authType"], &api["forceNonceCheck"], &api["name"]),
        (&json!("ANY"), &json!("APP"), &json!(true), &json!("ANY_orders_orderId"))
    );
    assert!(api.get("appCodeAuth").is_none());
    for w in [
        "auth-type: APPOPENID",
        "api-market-enable: publishing to Alibaba Cloud Marketplace is not supported",
        "x-aliyun-apigateway-visibility: not supported by cagate",
    ] {
        assert!(has(&d.warnings, w), "{w}: {:?}", d.warnings);
    }
    assert!(has(&d.notes, "DEFAULT follows the API group's setting"));
    // The path item form of any-method; names stay unique.
    let text = "swagger: '2.0'\nbasePath: /v2/\npaths:\n  /a:\n    x-aliyun-apigateway-any-method: { operationId: a, responses: {} }\n    get: { operationId: a, responses: {} }\n";
    let (c, d) = ok(text);
    assert_eq!(c["apis"][0]["method"], "ANY");
    assert_eq!(c["apis"][0]["path"], "/v2/a");
    assert_eq!(c["apis"][1]["name"], "a_2");
    assert!(has(&d.warnings, "the API name a is taken"));
    let e = errors(&doc(&format!("{pp}      x-aliyun-apigateway-auth-type: app\n")));
    assert!(has(&e, "unknown auth type app: APP or ANONYMOUS"), "{e:?}");
}

#[test]
fn parameters_in_detail() {
    let text = "swagger: '2.0'\nparameters:\n  tenant: {name: X-Tenant, in: header, required: true, type: string, pattern: '^[a-z]+$'}\npaths:\n  '/u/{id}':\n    parameters:\n      - {name: id, in: path, required: true, type: integer, format: int32, x-aliyun-apigateway-backend-name: uid}\n      - {name: shared, in: query, type: string}\n    post:\n      x-aliyun-apigateway-parameter-handling: MAPPING\n      consumes: [multipart/form-data]\n      parameters:\n        - {$ref: '#/parameters/tenant'}\n        - {name: shared, in: query, type: number, enum: [1, 2.5], default: 1, minimum: 1}\n        - {name: file, in: formData, type: file}\n        - {name: b, in: body, schema: {type: object}}\n      responses: {}\n      x-aliyun-apigateway-backend: {type: HTTP, address: 'https://api.example.com', path: '/users/[uid]', method: POST}\n";
    let (c, d) = ok(text);
    let api = &c["apis"][0];
    assert_eq!(api["name"], "POST_u_id");
    assert_eq!(
        api["parameters"],
        json!([
            { "name": "id", "location": "PATH", "type": "INT", "required": true, "backendName": "uid" },
            { "name": "X-Tenant", "location": "HEADER", "required": true, "regularExpression": "^[a-z]+$" },
            { "name": "shared", "location": "QUERY", "type": "DOUBLE", "enumValues": ["1", "2.5"], "defaultValue": "1" }
        ])
    );
    assert_eq!(api["backend"]["cluster"], "backend_api_example_com_443_tls");
    assert_eq!(api["backend"]["path"], "/users/[uid]");
    assert!(has(&d.warnings, "minimum not checked by cagate"), "{:?}", d.warnings);
    assert!(has(&d.warnings, "parameters[2]: a multipart/form-data field"), "{:?}", d.warnings);
    let e = errors(&doc("      parameters: [{name: orderId, in: path, required: true, type: string, pattern: '(['}]\n"));
    assert!(has(&e, "parameters[0].pattern: not a valid regular expression"), "{e:?}");
    let e = errors(&doc("      x-aliyun-apigateway-parameter-handling: MAPPING\n      parameters: [{name: orderId, in: path, required: true, type: string, x-aliyun-apigateway-backend-location: query}]\n"));
    assert!(has(&e, "x-aliyun-apigateway-backend-location: a path parameter stays a path parameter"), "{e:?}");
}

#[test]
fn defaults_that_say_nothing_are_left_out() {
    let (c, d) = ok(&doc("      x-aliyun-apigateway-parameter-handling: MAPPING\n      parameters:\n        - {name: orderId, in: path, required: true, type: string}\n        - {name: a, in: query, type: string, default: ''}\n        - {name: b, in: query, type: string, default: \"x\\ny\"}\n        - {name: c, in: query, type: integer, default: 5}\n"));
    let params = &c["apis"][0]["parameters"];
    assert_eq!((params[1].get("defaultValue"), params[2].get("defaultValue")), (None, None), "{params}");
    assert_eq!(params[3]["defaultValue"], "5");
    assert!(has(&d.warnings, "default: holds a control character"), "{:?}", d.warnings);
}

#[test]
fn nothing_is_moved_into_the_body_or_renamed_in_it() {
    let text = "swagger: '2.0'\npaths:\n  /orders:\n    post:\n      x-aliyun-apigateway-parameter-handling: MAPPING\n      consumes: [application/x-www-form-urlencoded]\n      parameters:\n        - {name: sku, in: formData, type: string, x-aliyun-apigateway-backend-location: query}\n        - {name: qty, in: formData, type: integer, x-aliyun-apigateway-backend-name: quantity}\n        - {name: tag, in: query, type: string, x-aliyun-apigateway-backend-location: formData}\n      responses: {}\n      x-aliyun-apigateway-backend: {type: HTTP, address: 'http://orders:8080', path: /v1/orders, method: POST}\n";
    let (c, d) = ok(text);
    assert_eq!(
        c["apis"][0]["parameters"],
        json!([
            { "name": "sku", "location": "FORM", "backendLocation": "QUERY" },
            { "name": "qty", "location": "FORM", "type": "LONG" },
            { "name": "tag", "location": "QUERY" }
        ])
    );
    let moved = d.warnings.iter().filter(|w| w.contains("cagate forwards the body as sent")).count();
    assert_eq!(moved, 2, "{:?}", d.warnings);
}

#[test]
fn backends_in_detail() {
    let pp = "      parameters: [{name: orderId, in: path, required: true, type: string}]\n      responses: {}\n";
    let (c, d) = ok(&doc(&format!(
        "{pp}      x-aliyun-apigateway-backend: '{{\"type\":\"HTTP\",\"address\":\"http://10.0.0.5:8080/api\",\"path\":\"/o/{{orderId}}\",\"timeout\":60000,\"method\":\"header\"}}'\n      x-aliyun-apigateway-constant-parameters: [{{backendName: X-Source, value: gateway, location: header}}, {{backendName: p, value: 1, location: path}}]\n      x-aliyun-apigateway-system-parameters: [{{systemName: CaDomain, backendName: X-Host, location: header}}, {{systemName: CaDomain, backendName: x-host, location: header}}, {{systemName: CaProxy, backendName: X-Proxy, location: header}}]\n"
    )));
    let b = &c["apis"][0]["backend"];
    assert_eq!(b["cluster"], "backend_10_0_0_5_8080");
    assert_eq!((&b["path"], &b["timeoutMs"], &b["method"]), (&json!("/api/o/[orderId]"), &json!(30000), &json!("HEAD")));
    assert_eq!(b["constantParameters"], json!([{ "name": "X-Source", "value": "gateway", "location": "HEADER" }]));
    assert_eq!(b["systemParameters"], json!([{ "name": "CaDomain", "backendName": "X-Host", "location": "HEADER" }]));
    for w in [
        "timeout: 60000 ms is longer",
        "location: path: cagate sends constant and system parameters as a header or in the query only",
        "CaProxy is not supported",
    ] {
        assert!(has(&d.warnings, w), "{w}: {:?}", d.warnings);
    }
    assert!(has(&d.notes, "system-parameters[1]: the same as an earlier item"));
    let (c, d) = ok(&doc(&format!("{pp}      x-aliyun-apigateway-backend: {{type: HTTP-VPC, vpcAccessName: v}}\n      x-aliyun-apigateway-constant-parameters: [{{backendName: Host, value: www.example.com, location: HEAD}}]\n")));
    assert_eq!(c["apis"][0]["backend"], json!({ "type": "HTTP", "cluster": "v", "host": "www.example.com" }));
    assert!(has(&d.notes, "the constant header host is the backend's Host"));
    let (c, _) = ok(&doc(&format!("{pp}      x-aliyun-apigateway-backend: {{type: MOCK, mockResult: {{a: 1}}, mockStatusCode: '404', mockHeaders: [{{headerName: X-Mock, headerValue: yes}}]}}\n")));
    assert_eq!(
        c["apis"][0]["backend"],
        json!({ "type": "MOCK", "mockStatusCode": 404, "mockResult": "{\"a\":1}", "mockHeaders": [{ "name": "X-Mock", "value": "yes" }] })
    );
    let e = errors(&doc(&format!("{pp}      x-aliyun-apigateway-backend: {{type: HTTP, address: 'http://h', path: '/x/[nope]'}}\n")));
    assert!(has(&e, "x-aliyun-apigateway-backend.path: [nope] is not a path parameter"), "{e:?}");
    let e = errors(&doc(&format!("{pp}      x-aliyun-apigateway-backend: {{type: MOCK, mockStatusCode: 700}}\n")));
    assert!(has(&e, "mockStatusCode: must be an HTTP status"), "{e:?}");
}

const VPC: &str = "      parameters: [{name: orderId, in: path, required: true, type: string}]\n      responses: {}\n      x-aliyun-apigateway-backend: {type: HTTP-VPC, vpcAccessName: '#orders#', path: '/v1/orders/[orderId]', timeout: 3000}\n";

#[test]
fn stage_variables_name_clusters_per_stage() {
    let (out, d) = run_with(&doc(VPC), &["RELEASE:orders=orders-prod", "TEST:orders=http://orders-test:8080"], &[], None, true);
    let out = out.unwrap_or_else(|| panic!("{:?}", d.errors));
    let c: Json = serde_json::from_str(&out.config).unwrap();
    assert_eq!(
        c["stageVariables"],
        json!({ "RELEASE": { "orders": "orders-prod" }, "TEST": { "orders": "backend_orders_test_8080", "orders.host": "orders-test:8080" } })
    );
    assert_eq!(c["apis"][0]["stages"], json!(["RELEASE", "TEST"]));
    assert_eq!(c["apis"][0]["backend"]["cluster"], "#orders#");
    assert_eq!(c["apis"][0]["backend"].get("host"), None, "RELEASE names a cluster: its Host is unknown");
    assert!(
        has(&d.warnings, "#orders# names a cluster, not a URL, in RELEASE: every stage of this API forwards the client's Host"),
        "{:?}",
        d.warnings
    );
    assert!(out.clusters.contains_key("backend_orders_test_8080"));
    assert!(has(&d.warnings, "the cluster orders-prod (API GET_orders_orderId, stage RELEASE)"), "{:?}", d.warnings);
    let (_, d) = run_with(SAMPLE, &["TEST:orders=o"], &[], None, false);
    assert!(has(&d.warnings, "--stage-var TEST:orders: no backend address uses #orders#"), "{:?}", d.warnings);
    // A stage without a value for the variable.
    let (out, d) = run_with(&doc(VPC), &["RELEASE:orders=orders-prod"], &["RELEASE", "PRE"], None, false);
    assert!(out.is_none());
    assert!(has(&d.errors, "paths./orders/{orderId}.get.x-aliyun-apigateway-backend: the stage variable #orders# has no value in stage PRE: add --stage-var PRE:orders=CLUSTER"), "{:?}", d.errors);
    // A stage cagate's defaults do not have is added to `stages`.
    let (out, d) = run_with(&doc(VPC), &["DEV:orders=o-dev", "RELEASE:orders=o"], &[], None, false);
    let c: Json = serde_json::from_str(&out.unwrap_or_else(|| panic!("{:?}", d.errors)).config).unwrap();
    assert_eq!(c["stages"], json!(["RELEASE", "PRE", "TEST", "DEV"]));
    // A plain VPC access name is a cluster the user defines.
    let (out, d) = run_with(&doc(&VPC.replace("'#orders#'", "orders-vpc")), &[], &[], None, true);
    assert!(out.unwrap().clusters["orders-vpc"].placeholder);
    assert!(has(&d.warnings, "the VPC access orders-vpc becomes the Envoy cluster orders-vpc"), "{:?}", d.warnings);
    // Every stage a URL: each stage's backend gets its own Host, and a re-import keeps them.
    let (urls, d) = run_with(&doc(VPC), &["RELEASE:orders=http://orders.prod:80", "TEST:orders=http://orders-test:8080"], &[], None, false);
    let urls = urls.unwrap_or_else(|| panic!("{:?}", d.errors));
    let u: Json = serde_json::from_str(&urls.config).unwrap();
    assert_eq!(u["apis"][0]["backend"]["host"], "#orders.host#");
    assert_eq!(u["stageVariables"]["RELEASE"]["orders.host"], "orders.prod:80");
    let (again, d) = run_with(&doc(VPC), &[], &[], Some(&urls.config), false);
    let again: Json = serde_json::from_str(&again.unwrap_or_else(|| panic!("{:?}", d.errors)).config).unwrap();
    assert_eq!((&again["apis"][0]["backend"]["host"], &again["stageVariables"]), (&u["apis"][0]["backend"]["host"], &u["stageVariables"]));
    let (mixed, d) = run_with(&doc(VPC), &["RELEASE:orders=orders-prod"], &[], Some(&urls.config), false);
    let m: Json = serde_json::from_str(&mixed.unwrap_or_else(|| panic!("{:?}", d.errors)).config).unwrap();
    assert_eq!(m["apis"][0]["backend"].get("host"), None, "RELEASE now names a cluster");
    assert_eq!(m["stageVariables"]["RELEASE"], json!({ "orders": "orders-prod" }));
    // A host variable given by hand is kept, in either order, and counts as used.
    for vars in
        [["RELEASE:orders.host=orders.internal", "RELEASE:orders=orders-prod"], ["RELEASE:orders=orders-prod", "RELEASE:orders.host=orders.internal"]]
    {
        let (out, d) = run_with(&doc(VPC), &vars, &[], None, false);
        let c: Json = serde_json::from_str(&out.unwrap_or_else(|| panic!("{:?}", d.errors)).config).unwrap();
        assert_eq!(c["stageVariables"]["RELEASE"], json!({ "orders": "orders-prod", "orders.host": "orders.internal" }), "{vars:?}");
        assert_eq!(c["apis"][0]["backend"]["host"], "#orders.host#", "{vars:?}");
        assert!(!has(&d.warnings, "no backend address uses #orders.host#"), "{:?}", d.warnings);
    }
}

#[test]
fn merge_keeps_apps_plugins_and_grants() {
    let existing = json!({
        "stages": ["RELEASE", "TEST"],
        "signature": { "timestampToleranceSeconds": 300, "nonceTtlSeconds": 300 },
        "apps": [ { "appId": 10001, "appKey": "k1", "appSecret": "s1-0123456789abcdef" } ],
        "stageVariables": { "TEST": { "x": "y" } },
        "apis": [
            { "name": "getOrder", "method": "GET", "path": "/old", "appCodeAuth": "HEADER_QUERY", "stages": ["RELEASE", "TEST"],
              "authorizations": [ { "appId": 10001, "stage": "TEST" } ] },
            { "name": "createOrder", "method": "POST", "path": "/old2", "authorizations": [ { "appId": 10001 } ],
              "reportOnly": true, "disableInternet": true, "protocol": "HTTPS" },
            { "name": "gone", "method": "GET", "path": "/gone" }
        ]
    })
    .to_string();
    let (out, d) = run_with(SAMPLE, &[], &[], Some(&existing), false);
    let c: Json = serde_json::from_str(&out.unwrap_or_else(|| panic!("{:?}", d.errors)).config).unwrap();
    assert_eq!(c["apps"][0]["appKey"], "k1");
    assert_eq!(c["signature"]["timestampToleranceSeconds"], 300);
    assert_eq!(c["stageVariables"], json!({ "TEST": { "x": "y" } }));
    assert_eq!(c["apis"].as_array().unwrap().len(), 3);
    let get = &c["apis"][0];
    assert_eq!((&get["path"], &get["appCodeAuth"], &get["stages"]), (&json!("/orders/[orderId]"), &json!("HEADER"), &json!(["RELEASE", "TEST"])));
    assert_eq!(get["authorizations"], json!([{ "appId": 10001, "stage": "TEST" }]));
    assert_eq!(c["apis"][1]["authorizations"], json!([{ "appId": 10001 }]));
    let create = &c["apis"][1];
    assert_eq!((&create["reportOnly"], &create["disableInternet"], &create["protocol"]), (&json!(true), &json!(true), &json!("HTTPS")));
    assert!(has(&d.notes, "old.json: the API gone is not in the Swagger document: removed"), "{:?}", d.notes);
    // --stage wins over the kept stages; a grant in a stage the API left is then the core's error.
    let (out, d) = run_with(SAMPLE, &[], &["RELEASE"], Some(&existing), false);
    assert!(out.is_none());
    assert!(has(&d.errors, "cagate check: apis[0].authorizations[0].stage"), "{:?}", d.errors);
    assert!(has(&d.errors, "(from paths./orders/{orderId}.get)"), "{:?}", d.errors);
}

#[test]
fn merge_reads_the_configuration_an_envoy_file_embeds() {
    let envoy = include_str!("../../../../../envoy/envoy.yaml");
    let (out, d) = run_with(SAMPLE, &[], &[], Some(envoy), false);
    let c: Json = serde_json::from_str(&out.unwrap_or_else(|| panic!("{:?}", d.errors)).config).unwrap();
    assert_eq!(c["apps"][0]["appKey"], "test-app-key-1", "the apps `cagate apps` added there");
}

#[test]
fn merge_reads_a_manifest_of_several_documents() {
    let plugin = include_str!("../../../../../envoy/istio/wasmplugin.yaml");
    let manifest = format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: gw}}\n---\n{plugin}");
    let (out, d) = run_with(SAMPLE, &[], &[], Some(&manifest), false);
    let c: Json = serde_json::from_str(&out.unwrap_or_else(|| panic!("{:?}", d.errors)).config).unwrap();
    assert!(c["apps"].as_array().is_some_and(|a| !a.is_empty()), "{c}");
}

#[test]
fn merge_needs_the_cagate_document() {
    let (out, d) = run_with(SAMPLE, &[], &[], Some("static_resources: {}\n"), false);
    assert!(out.is_none());
    assert!(has(&d.errors, "old.json: an Envoy or Istio configuration with no cagate configuration in it"), "{:?}", d.errors);
    let (out, d) = run_with(SAMPLE, &[], &[], Some("[1, 2]"), false);
    assert!(out.is_none() && has(&d.errors, "old.json: not a cagate configuration"), "{:?}", d.errors);
}

#[test]
fn merged_key_order_is_the_files() {
    let existing = r#"{"apps": [], "signature": {"nonceTtlSeconds": 900}, "apis": []}"#;
    let (out, _) = run_with(SAMPLE, &[], &[], Some(existing), false);
    let config = out.unwrap().config;
    let (a, s, p) = (config.find("\"apps\"").unwrap(), config.find("\"signature\"").unwrap(), config.find("\"apis\"").unwrap());
    assert!(a < s && s < p, "{config}");
}

#[test]
fn the_envoy_bootstrap() {
    let (out, d) = run_with(SAMPLE, &[], &[], None, true);
    let out = out.unwrap_or_else(|| panic!("{:?}", d.errors));
    let text = out.envoy.unwrap();
    assert!(text.starts_with("# Written by `cagate import"));
    let y: Json = serde_yaml::from_str(&text).unwrap();
    let listener = &y["static_resources"]["listeners"][0];
    assert_eq!(listener["address"]["socket_address"], json!({ "address": "127.0.0.1", "port_value": 10000 }));
    let hcm = &listener["filter_chains"][0]["filters"][0]["typed_config"];
    assert_eq!(hcm["normalize_path"], true);
    let routes = &hcm["route_config"]["virtual_hosts"][0]["routes"];
    assert_eq!(routes[0]["route"], json!({ "cluster_header": "x-cagate-cluster", "timeout": "30s" }));
    assert_eq!(routes[1]["direct_response"]["status"], 404);
    assert_eq!(routes[1]["response_headers_to_add"][0]["header"], json!({ "key": "x-ca-error-code", "value": "I404SR" }));
    let wasm = &hcm["http_filters"][1]["typed_config"]["config"];
    assert_eq!(wasm["vm_config"]["code"]["local"]["filename"], "cagate.wasm");
    assert_eq!(wasm["configuration"]["value"].as_str().unwrap(), out.config);
    let cluster = &y["static_resources"]["clusters"][0];
    assert_eq!((&cluster["name"], &cluster["type"]), (&json!("backend_orders_internal_8080"), &json!("STRICT_DNS")));
    assert_eq!(
        cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"],
        json!({ "address": "orders.internal", "port_value": 8080 })
    );
    assert_eq!(y["admin"]["address"]["socket_address"]["port_value"], 9901);
}

/// `cagate import … --envoy FILE` without `--admin`: the bootstrap's admin is on loopback (it can
/// drain, stop and dump the configuration with its secrets), and a non-loopback one is flagged.
#[test]
fn the_envoy_admin_is_on_loopback_by_default() {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        import: ImportArgs,
    }
    let a = <Cli as clap::Parser>::try_parse_from(["cagate-import", "export.yaml", "--envoy", "envoy.yaml"]).unwrap().import;
    assert!(a.admin.is_loopback(), "{:?}", a.admin);
    let settings = Settings {
        stage_vars: &[],
        stages: &[],
        merge: None,
        envoy: Some((&a.listen, &a.admin, a.wasm.as_deref().unwrap_or("cagate.wasm"))),
        plugins: &[],
        plugin_apis: &[],
    };
    let mut d = Diags::default();
    let text = import(SAMPLE, &settings, &mut d).unwrap_or_else(|| panic!("{:?}", d.errors)).envoy.unwrap();
    let y: Json = serde_yaml::from_str(&text).unwrap();
    assert_eq!(y["admin"]["address"]["socket_address"], json!({ "address": "127.0.0.1", "port_value": 9901 }));
    assert!(!text.contains("WARNING"), "{text}");

    for (given, loopback) in [
        ("127.0.0.1:9901", true),
        ("[::1]:9901", true),
        ("localhost:9901", true),
        ("127.0.0.2:1", true),
        ("0.0.0.0:9901", false),
        ("[::]:9901", false),
        ("10.0.0.5:9901", false),
        ("envoy.internal:9901", false),
    ] {
        let admin: envoy::SocketAddr = given.parse().unwrap();
        assert_eq!(admin.is_loopback(), loopback, "{given}");
        let settings =
            Settings { stage_vars: &[], stages: &[], merge: None, envoy: Some((&a.listen, &admin, "cagate.wasm")), plugins: &[], plugin_apis: &[] };
        let text = import(SAMPLE, &settings, &mut Diags::default()).unwrap().envoy.unwrap();
        assert_eq!(text.contains("# WARNING: Envoy's admin listens on"), !loopback, "{given}");
    }
}

/// The system parameters the importer accepts are exactly those the core accepts.
#[test]
fn system_names_match_the_core() {
    let probe = |name: &str| {
        let cfg = json!({ "apis": [ { "name": "a", "method": "GET", "path": "/a", "authType": "ANONYMOUS",
            "backend": { "type": "HTTP", "cluster": "c", "systemParameters": [ { "name": name, "backendName": "x-v", "location": "HEADER" } ] } } ] });
        cagate_core::compile(cfg.to_string().as_bytes()).is_ok()
    };
    for n in cagate_core::system_parameter_names() {
        assert!(probe(n), "the core refuses {n}");
    }
    for n in backend::ALIYUN_ONLY_SYSTEM {
        assert!(!probe(n), "the core accepts {n}: move it to SYSTEM_PARAMETERS");
    }
}

mod plugins;

#[test]
fn schemes_string_booleans_and_arrays() {
    let pp = "      parameters:\n        - {name: orderId, in: path, required: true, type: string}\n        - {name: X-Tenant, in: header, required: 'true', type: string}\n        - {name: ids, in: query, type: array, items: {type: integer}, collectionFormat: multi}\n      responses: {}\n      x-aliyun-apigateway-parameter-handling: MAPPING\n";
    // An HTTPS-only operation stays HTTPS-only; the document's schemes apply to operations without their own.
    let (c, d) = ok(&doc(&format!("{pp}      schemes: [https]\n")));
    let api = &c["apis"][0];
    assert_eq!(api["protocol"], "HTTPS");
    assert!(api["parameters"].as_array().unwrap().iter().any(|p| p["name"] == "X-Tenant" && p["required"] == true), "{api}");
    assert!(has(&d.warnings, "an array: checked as one string"), "{:?}", d.warnings);
    let text = format!("swagger: '2.0'\nschemes: [http]\ninfo: {{title: t, version: '1'}}\npaths:\n  '/orders/{{orderId}}':\n    get:\n{pp}");
    assert_eq!(ok(&text).0["apis"][0]["protocol"], "HTTP");
    let (c, _) = ok(&doc(&format!("{pp}      schemes: [http, https]\n")));
    assert!(c["apis"][0].get("protocol").is_none(), "both: the default");
}
