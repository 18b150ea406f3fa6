#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The routing plugin natively: the first matching route wins, no match keeps the API's backend, a
//! MOCK route answers, an incomplete overlay is `I504RB`, `X-Ca-Routing-Name` is the gateway's, a
//! refused request is never routed, report-only still routes, and what the configuration refuses.

use cagate_core::compile;
use cagate_core::testkit::{Call, Kit, Outcome};
use serde_json::{json, Value};

const NOW: i64 = 1_700_000_206_000;

fn routing(data: Value) -> Value {
    json!({ "name": "canary", "type": "routing", "data": data })
}

fn routes() -> Value {
    json!({
        "parameters": { "tier": "Header:X-Tier" },
        "routes": [
            { "name": "Vip", "condition": "$CaAppId = 10001 or $tier = 'vip'",
              "backend": { "type": "HTTP-VPC", "vpcAccessName": "orders-vip" },
              "constant-parameters": [ { "name": "x-route", "location": "header", "value": "vip" },
                                       { "name": "lane", "location": "query", "value": "vip" } ] },
            { "name": "Beta", "condition": "$tier = 'beta' or $tier = 'vip'",
              "backend": { "type": "HTTP", "cluster": "orders-beta", "path": "/v2/orders", "timeout": 2000 } },
            { "name": "Old", "condition": "$ClientVersion < '2.0.5'",
              "backend": { "type": "MOCK", "statusCode": 400, "body": "too old", "mockHeaders": [ { "name": "X-Why", "value": "version" } ] } },
            { "name": "Tagged", "condition": "$tier = 'tagged'" },
            { "name": "NoCluster", "condition": "$tier = 'broken'", "backend": { "type": "HTTP-VPC" } }
        ]
    })
}

fn config(extra: Value) -> Value {
    let mut cfg = json!({
        "apps": [ { "appId": 10001, "appKey": "k1", "appSecret": "test-app-secret-1-0123456789abcdef", "appCodes": ["CODE1"] },
                  { "appId": 10002, "appKey": "k2", "appSecret": "test-app-secret-2-0123456789abcdef", "appCodes": ["CODE2"] } ],
        "plugins": [ routing(routes()) ],
        "apis": [
            { "name": "orders", "method": "GET", "path": "/orders/[id]", "authType": "ANONYMOUS",
              "parameters": [ { "name": "ClientVersion", "location": "HEADER" } ],
              "backend": { "type": "HTTP", "cluster": "orders-prod", "path": "/v1/orders/[id]", "timeoutMs": 3000, "host": "orders.internal" },
              "plugins": [ { "plugin": "canary" } ] },
            { "name": "mocked", "method": "GET", "path": "/mocked", "authType": "ANONYMOUS",
              "backend": { "type": "MOCK", "mockResult": "the api's mock" },
              "plugins": [ { "plugin": "canary" } ] },
            { "name": "signed", "method": "GET", "path": "/signed", "appCodeAuth": "HEADER",
              "authorizations": [ { "appId": 10001 }, { "appId": 10002 } ],
              "backend": { "type": "HTTP", "cluster": "signed-prod" },
              "plugins": [ { "plugin": "canary" } ] }
        ]
    });
    if let (Some(o), Some(e)) = (cfg.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    cfg
}

fn send(cfg: &Value, path: &str, headers: &[(&str, &str)]) -> Outcome {
    let kit = Kit::new(&cfg.to_string(), NOW);
    kit.send(&Call { method: "GET", path, headers, ..Call::default() })
}

fn up(o: &Outcome, name: &str) -> Option<String> {
    assert!(o.forwarded(), "not forwarded: {:?} {:?}", o.code(), o.message());
    o.stream.upstream(name)
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string())
}

#[test]
fn the_first_matching_route_wins() {
    let cfg = config(json!({}));
    // "vip" matches Vip and Beta: Vip, first, wins.
    let o = send(&cfg, "/orders/7", &[("x-tier", "vip")]);
    assert_eq!(up(&o, "x-cagate-cluster"), some("orders-vip"));
    assert_eq!(up(&o, "x-ca-routing-name"), some("Vip"));
    assert_eq!(up(&o, "x-route"), some("vip"), "the route's constant header");
    assert_eq!(up(&o, ":path"), some("/v1/orders/7?lane=vip"), "the API's path, the route's constant query");
    assert_eq!(up(&o, ":authority"), None, "the API's host belongs to the API's cluster");
    assert_eq!(up(&o, "x-envoy-upstream-rq-timeout-ms"), some("3000"), "the API's timeout kept");
    let o = send(&cfg, "/orders/7", &[("x-tier", "beta")]);
    assert_eq!(up(&o, "x-cagate-cluster"), some("orders-beta"));
    assert_eq!(up(&o, "x-ca-routing-name"), some("Beta"));
    assert_eq!(up(&o, ":path"), some("/v2/orders"), "the route's path");
    assert_eq!(up(&o, "x-envoy-upstream-rq-timeout-ms"), some("2000"));
    assert_eq!(up(&o, "x-route"), None);
}

#[test]
fn a_route_s_host_goes_with_its_cluster() {
    let mut data = routes();
    data["routes"][1]["backend"]["host"] = json!("beta.internal:8080");
    let cfg = config(json!({ "plugins": [ routing(data.clone()) ] }));
    let o = send(&cfg, "/orders/7", &[("x-tier", "beta"), ("host", "api.example.com")]);
    assert_eq!((up(&o, "x-cagate-cluster"), up(&o, ":authority")), (some("orders-beta"), some("beta.internal:8080")));
    data["routes"][1]["backend"] = json!({ "type": "HTTP", "host": "beta.internal", "path": "/v2" });
    data["routes"][2]["backend"] = json!({ "type": "MOCK", "host": "x" });
    data["routes"][0]["backend"]["host"] = json!("bad host");
    let problems: Vec<String> =
        compile(config(json!({ "plugins": [ routing(data) ] })).to_string().as_bytes()).unwrap_err().iter().map(|p| p.to_string()).collect();
    let has = |s: &str| problems.iter().any(|p| p.contains(s));
    assert!(has("routes[1].backend.host: belongs to the route's own cluster"), "{problems:?}");
    assert!(has("routes[2].backend.host: is not a field of a MOCK backend"), "{problems:?}");
    assert!(has("routes[0].backend.host: must be a host name"), "{problems:?}");
}

#[test]
fn no_match_keeps_the_apis_backend_and_no_routing_name() {
    let o = send(&config(json!({})), "/orders/7", &[("x-ca-routing-name", "Vip"), ("x_ca_routing_name", "Vip")]);
    assert_eq!(up(&o, "x-cagate-cluster"), some("orders-prod"));
    assert_eq!(up(&o, ":authority"), some("orders.internal"));
    assert_eq!(up(&o, ":path"), some("/v1/orders/7"));
    assert_eq!(up(&o, "x-ca-routing-name"), None, "a client's copy never reaches the backend");
    assert_eq!(up(&o, "x_ca_routing_name"), None, "nor under another spelling");
}

#[test]
fn a_clients_routing_name_is_replaced_by_the_gateways() {
    let o = send(&config(json!({})), "/orders/7", &[("x-tier", "beta"), ("x-ca-routing-name", "Vip")]);
    assert_eq!(o.stream.upstream_all("x-ca-routing-name"), vec!["Beta".to_string()]);
}

#[test]
fn a_route_without_backend_keeps_the_apis_and_names_the_route() {
    let o = send(&config(json!({})), "/orders/7", &[("x-tier", "tagged")]);
    assert_eq!(up(&o, "x-cagate-cluster"), some("orders-prod"));
    assert_eq!(up(&o, "x-ca-routing-name"), some("Tagged"));
}

#[test]
fn a_mock_route_answers_and_an_http_route_replaces_the_apis_mock() {
    let o = send(&config(json!({})), "/orders/7", &[("clientversion", "1.9")]);
    let reply = o.reply().expect("the route's mock answers");
    assert_eq!((reply.status, o.code()), (400, None));
    assert_eq!(String::from_utf8_lossy(&reply.body), "too old");
    assert_eq!(o.reply_header("x-why"), some("version"));
    assert_eq!(send(&config(json!({})), "/orders/7", &[("clientversion", "2.1")]).stream.upstream("x-cagate-cluster"), some("orders-prod"));
    // An API whose backend is a mock: a route to a cluster goes there, no route keeps the mock.
    let o = send(&config(json!({})), "/mocked", &[("x-tier", "beta")]);
    assert_eq!(up(&o, "x-cagate-cluster"), some("orders-beta"));
    let o = send(&config(json!({})), "/mocked", &[]);
    assert_eq!(String::from_utf8_lossy(&o.reply().expect("the api's mock").body), "the api's mock");
}

#[test]
fn an_incomplete_overlay_is_i504rb() {
    let o = send(&config(json!({})), "/orders/7", &[("x-tier", "broken")]);
    assert_eq!((o.status(), o.code().as_deref()), (504, Some("I504RB")));
    assert!(!o.forwarded());
    // An HTTP route with no cluster over an API whose backend is a mock has nowhere to go.
    let mut data = routes();
    data["routes"][1]["backend"] = json!({ "type": "HTTP", "path": "/v2" });
    let cfg = config(json!({ "plugins": [ routing(data) ] }));
    let o = send(&cfg, "/mocked", &[("x-tier", "beta")]);
    assert_eq!((o.status(), o.code().as_deref()), (504, Some("I504RB")));
    // Over the API's HTTP backend the same route keeps the API's cluster.
    let o = send(&cfg, "/orders/7", &[("x-tier", "beta")]);
    assert_eq!((up(&o, "x-cagate-cluster"), up(&o, ":path")), (some("orders-prod"), some("/v2")));
}

#[test]
fn system_parameters_route_an_authenticated_app_and_refused_requests_are_not_routed() {
    let cfg = config(json!({}));
    let o = send(&cfg, "/signed", &[("authorization", "APPCODE CODE1")]);
    assert_eq!(up(&o, "x-cagate-cluster"), some("orders-vip"), "$CaAppId = 10001");
    let o = send(&cfg, "/signed", &[("authorization", "APPCODE CODE2")]);
    assert_eq!(up(&o, "x-cagate-cluster"), some("signed-prod"));
    // A refused request goes nowhere, whatever the route says.
    let o = send(&cfg, "/signed", &[("authorization", "APPCODE WRONG"), ("x-tier", "beta")]);
    assert_eq!(o.code().as_deref(), Some("A400AC"));
    assert!(!o.forwarded());
}

#[test]
fn report_only_routes_admitted_requests_only() {
    let cfg = config(json!({ "reportOnly": true }));
    let o = send(&cfg, "/signed", &[("authorization", "APPCODE CODE1")]);
    assert_eq!(up(&o, "x-cagate-cluster"), some("orders-vip"));
    assert_eq!(up(&o, "x-ca-routing-name"), some("Vip"));
    // Would be refused: goes on to the API's own backend, unrouted.
    let o = send(&cfg, "/signed", &[("authorization", "APPCODE WRONG"), ("x-tier", "beta"), ("x-ca-routing-name", "Beta")]);
    assert_eq!(up(&o, "x-cagate-cluster"), some("signed-prod"));
    assert_eq!(up(&o, "x-ca-routing-name"), None);
    // An incomplete route in report-only: recorded, and the API's own backend.
    let o = send(&cfg, "/orders/7", &[("x-tier", "broken")]);
    assert_eq!(up(&o, "x-cagate-cluster"), some("orders-prod"));
}

#[test]
fn random_splits_and_stays_within_the_routes() {
    let data = json!({ "routes": [ { "name": "Half", "condition": "Random() < 0.5", "backend": { "cluster": "blue" } } ] });
    let cfg = config(json!({ "plugins": [ routing(data) ] }));
    let kit = Kit::new(&cfg.to_string(), NOW);
    let blue = (0..200)
        .filter(|_| {
            kit.send(&Call { method: "GET", path: "/orders/1", ..Call::default() }).stream.upstream("x-cagate-cluster").as_deref() == Some("blue")
        })
        .count();
    assert!((60..140).contains(&blue), "{blue} of 200 to blue");
}

fn problems(data: Value) -> Vec<String> {
    match compile(config(json!({ "plugins": [ routing(data) ] })).to_string().as_bytes()) {
        Ok(_) => Vec::new(),
        Err(p) => p.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn the_configuration_names_every_problem() {
    let many: Vec<Value> = (0..17).map(|i| json!({ "name": format!("r{i}"), "condition": "1 = 1" })).collect();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({ "routes": [ { "name": "a", "condition": "1 = 1", "weight": 5 } ] }),
            "plugins[0].data (plugin canary).routes[0].weight: unknown field",
        ),
        (json!({ "routes": [] }), "routes: needs at least one route"),
        (json!({ "routes": many }), "has 17 routes; at most 16"),
        (json!({ "routes": [ { "name": "a-b", "condition": "1 = 1" } ] }), "routes[0].name: must be letters and digits only"),
        (json!({ "routes": [ { "name": "x".repeat(65), "condition": "1 = 1" } ] }), "a route name is at most 64"),
        (json!({ "routes": [ { "name": "a", "condition": "1 = 1" }, { "name": "a", "condition": "1 = 1" } ] }), "duplicate route name a"),
        (json!({ "routes": [ { "name": "a", "condition": "$x = " } ] }), "routes[0] (route a).condition: at column"),
        (json!({ "routes": [ { "name": "a", "condition": "1 = 1", "backend": { "type": "FC" } } ] }), "unsupported backend type FC"),
        (
            json!({ "routes": [ { "name": "a", "condition": "1 = 1", "backend": { "type": "HTTP", "address": "http://x" } } ] }),
            "backend.address: give the Envoy cluster",
        ),
        (
            json!({ "routes": [ { "name": "a", "condition": "1 = 1", "backend": { "type": "MOCK", "cluster": "c" } } ] }),
            "backend.cluster: is not a field of a MOCK backend",
        ),
        (json!({ "routes": [ { "name": "a", "condition": "1 = 1", "backend": { "cluster": "#v#" } } ] }), "takes no #stage variable#"),
        (json!({ "routes": [ { "name": "a", "condition": "1 = 1", "backend": { "path": "/a/[id]" } } ] }), "backend.path: must be a literal path"),
        (json!({ "routes": [ { "name": "a", "condition": "1 = 1", "backend": { "timeout": 40000 } } ] }), "backend.timeout"),
        (
            json!({ "routes": [ { "name": "a", "condition": "1 = 1", "constant-parameters": [ { "name": "x", "location": "body", "value": "v" } ] } ] }),
            "unsupported location body",
        ),
        (
            json!({ "parameters": { "sub": "Token:sub" }, "routes": [ { "name": "a", "condition": "$sub = 1" } ] }),
            "parameters.sub: Token: and Form: locations are not available to routing",
        ),
    ];
    for (data, expected) in cases {
        let found = problems(data.clone());
        assert!(found.iter().any(|p| p.contains(expected)), "{data}: expected {expected:?} in {found:?}");
    }
    // Two problems in one plugin: both named.
    let found = problems(json!({ "routes": [ { "name": "a-", "condition": "1 = 1", "backend": { "type": "MOCK", "statusCode": 700 } } ] }));
    assert!(found.len() >= 2, "{found:?}");
}

#[test]
fn aliyuns_yaml_template_loads() {
    let yaml = "---\nroutes:\n- name: Vip\n  condition: \"$CaAppId = 123456\"\n  backend:\n    type: \"HTTP-VPC\"\n    vpcAccessName: \"slbAccessForVip\"\n- name: MockForOldClient\n  condition: \"$ClientVersion < '2.0.5'\"\n  backend:\n    type: \"MOCK\"\n    statusCode: 400\n    body: \"This version is not supported!!!\"\n- name: BlueGreenPercent05\n  condition: \"Random() < 0.05\"\n  backend:\n    type: \"HTTP\"\n    cluster: beta\n  constant-parameters:\n  - name: x-route-blue-green\n    location: header\n    value: \"route-blue-green\"\n";
    let cfg = config(json!({ "plugins": [ { "name": "canary", "type": "routing", "data": yaml } ] }));
    assert!(compile(cfg.to_string().as_bytes()).is_ok(), "{:?}", compile(cfg.to_string().as_bytes()).err());
}
