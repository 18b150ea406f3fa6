#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Backends natively: stage variables, the backend path, parameter mapping per request mode, constant
//! and system parameters, the routing headers, mocks, and what the configuration refuses.

use cagate_core::compile;
use cagate_core::testkit::{Call, Kit, Outcome};
use serde_json::{json, Value};

fn config(api: Value) -> Value {
    json!({
        "stageVariables": { "RELEASE": { "orders": "orders-prod" }, "TEST": { "orders": "orders-test" } },
        "apis": [ api ]
    })
}

fn orders(mode: &str) -> Value {
    json!({
        "name": "getOrder", "method": "GET", "path": "/orders/[orderId]", "authType": "ANONYMOUS",
        "stages": ["RELEASE", "TEST"], "requestMode": mode,
        "parameters": [ { "name": "fields", "location": "QUERY", "backendName": "select", "backendLocation": "QUERY" },
                        { "name": "X-Tenant", "location": "HEADER", "backendName": "tenant", "backendLocation": "QUERY" } ],
        "backend": {
            "type": "HTTP", "cluster": "#orders#", "path": "/v1/orders/[orderId]", "method": "GET", "timeoutMs": 3000,
            "host": "orders.internal",
            "constantParameters": [ { "name": "X-Source", "value": "gateway", "location": "HEADER" } ],
            "systemParameters": [ { "name": "CaClientIp", "backendName": "X-Client-Ip", "location": "HEADER" },
                                  { "name": "CaStage", "backendName": "stage", "location": "QUERY" } ]
        }
    })
}

/// The request as the backend receives it (a GET from 192.0.2.7), or the refusal's code.
fn outcome(cfg: &Value, path: &str, headers: &[(&str, &str)]) -> Result<Outcome, String> {
    let kit = Kit::new(&cfg.to_string(), 0);
    let o = kit.send(&Call { method: "GET", path, headers, peer: Some("192.0.2.7:4000"), ..Call::default() });
    match o.code() {
        Some(code) => Err(code),
        None => {
            assert!(o.forwarded(), "neither forwarded nor refused");
            Ok(o)
        }
    }
}

/// A header as the backend receives it (`None`: removed, or never there).
fn upstream(o: &Outcome, name: &str) -> Option<String> {
    o.stream.upstream(name)
}

/// The admitted request as the backend receives it.
fn edits(cfg: &Value, path: &str, headers: &[(&str, &str)]) -> Outcome {
    outcome(cfg, path, headers).unwrap_or_else(|code| panic!("refused {code}"))
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string())
}

#[test]
fn mapping_reaches_the_stage_backend_with_mapped_parameters() {
    let e = edits(&config(orders("MAPPING")), "/orders/42?fields=a,b&junk=1", &[("x-tenant", "t1"), ("x-cagate-cluster", "evil")]);
    assert_eq!(upstream(&e, "x-cagate-cluster"), some("orders-prod"));
    assert_eq!(upstream(&e, "x-envoy-upstream-rq-timeout-ms"), some("3000"));
    assert_eq!(upstream(&e, ":authority"), some("orders.internal"));
    assert_eq!(upstream(&e, ":method"), some("GET"));
    assert_eq!(upstream(&e, "x-source"), some("gateway"));
    assert_eq!(upstream(&e, "x-client-ip"), some("192.0.2.7"));
    assert_eq!(upstream(&e, "x-tenant"), None, "a mapped header leaves under its backend name only");
    assert_eq!(upstream(&e, ":path"), some("/v1/orders/42?select=a,b&stage=RELEASE&tenant=t1"), "undeclared `junk` dropped");
    let e = edits(&config(orders("MAPPING")), "/orders/42", &[("x-ca-stage", "TEST")]);
    assert_eq!(upstream(&e, "x-cagate-cluster"), some("orders-test"));
    assert_eq!(upstream(&e, ":path"), some("/v1/orders/42?stage=TEST"));
}

#[test]
fn a_host_with_stage_variables_is_each_stage_s_own() {
    let mut cfg = config(orders("PASSTHROUGH"));
    cfg["stageVariables"]["RELEASE"]["ordersHost"] = json!("orders.prod.internal:8080");
    cfg["stageVariables"]["TEST"]["ordersHost"] = json!("orders.test.internal");
    cfg["apis"][0]["backend"]["host"] = json!("#ordersHost#");
    let e = edits(&cfg, "/orders/1", &[("host", "api.example.com")]);
    assert_eq!(upstream(&e, ":authority"), some("orders.prod.internal:8080"));
    let e = edits(&cfg, "/orders/1", &[("host", "api.example.com"), ("x-ca-stage", "TEST")]);
    assert_eq!(upstream(&e, ":authority"), some("orders.test.internal"));
    assert_eq!(upstream(&e, "x-cagate-cluster"), some("orders-test"));

    cfg["stageVariables"]["TEST"]["ordersHost"] = json!("bad host/");
    cfg["stageVariables"]["RELEASE"].as_object_mut().unwrap().remove("ordersHost");
    let problems: Vec<String> = compile(cfg.to_string().as_bytes()).unwrap_err().iter().map(|p| p.to_string()).collect();
    assert!(problems.contains(&"apis[0].backend.host: stage variable #ordersHost# is not defined for stage RELEASE".to_string()), "{problems:?}");
    assert!(
        problems.contains(&"apis[0].backend.host: \"bad host/\" is not a host name, optionally with a port (stage TEST)".to_string()),
        "{problems:?}"
    );
    // A plain host is checked as written, whatever the stages; every problem of the backend is listed.
    let mut api = orders("PASSTHROUGH");
    api["stages"] = json!(["RELEASE"]);
    api["backend"]["host"] = json!("bad host/");
    api["backend"]["cluster"] = json!("bad cluster");
    let problems: Vec<String> = compile(config(api).to_string().as_bytes()).unwrap_err().iter().map(|p| p.to_string()).collect();
    assert!(problems.contains(&"apis[0].backend.host: \"bad host/\" is not a host name, optionally with a port".to_string()), "{problems:?}");
    assert!(problems.iter().any(|p| p.starts_with("apis[0].backend.cluster: \"bad cluster\" is not an Envoy cluster name")), "{problems:?}");
}

#[test]
fn passthrough_keeps_the_query_and_maps_only_the_path() {
    let e = edits(&config(orders("PASSTHROUGH")), "/orders/%E4%B8%AD?fields=a&junk=1", &[("x-tenant", "t1")]);
    assert_eq!(upstream(&e, ":path"), some("/v1/orders/%E4%B8%AD?fields=a&junk=1&stage=RELEASE"));
    assert_eq!(upstream(&e, "x-tenant"), some("t1"), "headers pass untouched");
    let e = edits(&config(orders("MAPPING_PASSTHROUGH")), "/orders/1?fields=a&junk=1", &[]);
    assert_eq!(upstream(&e, ":path"), some("/v1/orders/1?select=a&junk=1&stage=RELEASE"));
}

#[test]
fn an_api_without_backend_still_drops_client_routing_headers() {
    let cfg = json!({ "apis": [ { "name": "p", "method": "ANY", "path": "/p/*", "authType": "ANONYMOUS" } ] });
    let e = edits(&cfg, "/p/x?a=1", &[("x-cagate-cluster", "evil"), ("x-envoy-upstream-rq-timeout-ms", "1")]);
    assert_eq!(upstream(&e, "x-cagate-cluster"), None);
    assert_eq!(upstream(&e, "x-envoy-upstream-rq-timeout-ms"), None);
    assert_eq!(upstream(&e, ":path"), some("/p/x?a=1"), "the path is the client's");
}

#[test]
fn mock_answers() {
    let cfg = json!({ "apis": [ { "name": "m", "method": "GET", "path": "/m", "authType": "ANONYMOUS",
        "backend": { "type": "MOCK", "mockStatusCode": 201, "mockResult": "{\"ok\":true}", "mockHeaders": [ { "name": "X-Mock", "value": "1" } ] } } ] });
    let gw = compile(cfg.to_string().as_bytes()).unwrap();
    let m = gw.mock_reply(cagate_core::ApiId(0)).unwrap();
    assert_eq!((m.status, m.body.as_str()), (201, "{\"ok\":true}"));
    assert_eq!(m.headers, vec![("x-mock".to_string(), "1".to_string())]);
    assert!(gw.warnings.is_empty(), "{:?}", gw.warnings);
    // A field of the other backend type is never read: a warning says so.
    let mut cfg = cfg;
    cfg["apis"][0]["backend"]["timeoutMs"] = json!(99_999_999);
    cfg["apis"][0]["backend"]["cluster"] = json!("c");
    let gw = compile(cfg.to_string().as_bytes()).unwrap();
    for f in ["timeoutMs", "cluster"] {
        assert!(
            gw.warnings.iter().any(|w| w.contains(&format!("apis[0].backend.{f}")) && w.contains("applies to HTTP backends only")),
            "{:?}",
            gw.warnings
        );
    }
}

#[test]
fn backend_configuration_errors() {
    let mut api = orders("MAPPING");
    api["stages"] = json!(["RELEASE", "PRE"]);
    api["backend"]["path"] = json!("/v1/[nope]");
    api["backend"]["timeoutMs"] = json!(30001);
    let problems: Vec<String> = compile(config(api).to_string().as_bytes()).unwrap_err().iter().map(|p| p.to_string()).collect();
    assert!(problems.contains(&"apis[0].backend.cluster: stage variable #orders# is not defined for stage PRE".to_string()), "{problems:?}");
    assert!(problems.contains(&"apis[0].backend.path: [nope] is not a path parameter of the API".to_string()), "{problems:?}");
    assert!(problems.iter().any(|p| p.starts_with("apis[0].backend.timeoutMs")), "{problems:?}");
    let mut api = orders("SOMETIMES");
    api["backend"]["type"] = json!("FC");
    let problems: Vec<String> = compile(config(api).to_string().as_bytes()).unwrap_err().iter().map(|p| p.to_string()).collect();
    assert!(problems.iter().any(|p| p.starts_with("apis[0].requestMode: unknown requestMode SOMETIMES")), "{problems:?}");
    assert!(problems.iter().any(|p| p.starts_with("apis[0].backend.type: unknown backend type FC")), "{problems:?}");
}

fn mapped_api() -> Value {
    json!({ "apis": [ {
        "name": "m", "method": "GET", "path": "/m/[id]/*", "authType": "ANONYMOUS", "requestMode": "MAPPING_PASSTHROUGH",
        "parameters": [
            { "name": "id", "location": "PATH", "regularExpression": "^[a-z]+$" },
            { "name": "h", "location": "QUERY", "type": "LONG", "backendLocation": "HEADER", "backendName": "x-h" },
            { "name": "n", "location": "QUERY", "type": "INT", "backendName": "num" },
            { "name": "X-Tenant", "location": "HEADER", "enumValues": ["a", "b"], "backendName": "tenant-id" }
        ],
        "backend": { "type": "HTTP", "cluster": "c", "path": "/store/[id]",
                     "systemParameters": [ { "name": "CaAppId", "backendName": "X-App", "location": "HEADER" },
                                           { "name": "CaAppKey", "backendName": "appkey", "location": "QUERY" } ] }
    } ] })
}

#[test]
fn the_backend_receives_only_what_the_gateway_validated_or_set() {
    let cfg = mapped_api();
    // Targets of mapping and system parameters with no value: the client's copies are removed.
    let e = outcome(&cfg, "/m/abc/x?num=999&appkey=forged", &[("x-h", "1 OR 1=1"), ("tenant-id", "admin"), ("x-app", "10001")]).unwrap();
    assert_eq!(upstream(&e, "x-h"), None);
    assert_eq!(upstream(&e, "tenant-id"), None);
    assert_eq!(upstream(&e, "x-app"), None);
    assert_eq!(upstream(&e, ":path"), some("/store/abc"));
    // Mapped from validated sources.
    let e = outcome(&cfg, "/m/abc/x?h=7&n=5", &[("X_Tenant", "b")]).unwrap();
    assert_eq!(upstream(&e, "x-h"), some("7"));
    assert_eq!(upstream(&e, "tenant-id"), some("b"));
    assert_eq!(upstream(&e, ":path"), some("/store/abc?num=5"));
}

#[test]
fn a_declared_parameter_is_given_once_and_fit_for_where_it_goes() {
    let cfg = mapped_api();
    assert_eq!(outcome(&cfg, "/m/abc/x?h=1&h=1%20OR%201%3D1", &[]).unwrap_err(), "I400IP");
    assert_eq!(outcome(&cfg, "/m/abc/x?n=1&n=abc", &[]).unwrap_err(), "I400IP");
    assert_eq!(outcome(&cfg, "/m/abc/x", &[("x-tenant", "a"), ("x_tenant", "admin")]).unwrap_err(), "I400IP");
    assert_eq!(outcome(&cfg, "/m/abc/x", &[("x_tenant", "admin")]).unwrap_err(), "I400IP", "read under any spelling");
    let mut text = mapped_api();
    text["apis"][0]["parameters"][1]["type"] = json!("STRING");
    assert_eq!(outcome(&text, "/m/abc/x?h=a%0d%0aX-Evil:%201", &[]).unwrap_err(), "I400IP", "CR/LF never goes into a header");
}

#[test]
fn path_parameters_go_on_as_validated() {
    let cfg = mapped_api();
    assert_eq!(upstream(&outcome(&cfg, "/m/abc%2F%27%20OR%201=1/rest", &[]).unwrap(), ":path"), some("/store/abc"));
    assert_eq!(upstream(&outcome(&cfg, "/m/ab%63/rest", &[]).unwrap(), ":path"), some("/store/abc"));
    assert_eq!(outcome(&cfg, "/m/ABC/rest", &[]).unwrap_err(), "I400IP");
    // Without a backend path, a path with escapes goes on as the gateway decoded and routed it.
    let plain = json!({ "apis": [ { "name": "p", "method": "ANY", "path": "/p/*", "authType": "ANONYMOUS" } ] });
    assert_eq!(upstream(&outcome(&plain, "/p/a%2Fb/%41?q=1", &[]).unwrap(), ":path"), some("/p/a/b/A?q=1"));
    assert_eq!(upstream(&outcome(&plain, "/p/%E4%B8%AD", &[]).unwrap(), ":path"), some("/p/%E4%B8%AD"), "already canonical: no edit");
    for dots in ["/p/%2e%2e;/x", "/p/..;jsessionid=1/x", "/p/.;x/y", "/p/%2E%2E%3B/x", "/p/a/..%5Cx"] {
        assert_eq!(outcome(&plain, dots, &[]).unwrap_err(), "I400PA", "{dots}");
    }
}

#[test]
fn a_backend_path_has_no_query_of_its_own() {
    let mut cfg = mapped_api();
    cfg["apis"][0]["backend"]["path"] = json!("/v1/search?id=[id]&role=user");
    let problems = compile(cfg.to_string().as_bytes()).err().unwrap();
    assert!(problems.iter().any(|p| p.to_string().contains("apis[0].backend.path: must be a path only")), "{problems:?}");
}

#[test]
fn form_parameters_map_to_the_query_and_headers_from_the_form_read() {
    let api = json!({
        "name": "createOrder", "method": "POST", "path": "/orders", "authType": "ANONYMOUS", "requestMode": "MAPPING",
        "parameters": [ { "name": "sku", "location": "FORM", "required": true, "backendLocation": "QUERY" },
                        { "name": "note", "location": "FORM", "backendName": "X-Note", "backendLocation": "HEADER" },
                        { "name": "qty", "location": "FORM", "type": "LONG" } ],
        "backend": { "type": "HTTP", "cluster": "orders", "path": "/v1/orders", "method": "POST" }
    });
    let kit = Kit::new(&config(api).to_string(), 0);
    let form = [("content-type", "application/x-www-form-urlencoded"), ("x-note", "forged")];
    let send = |body: &[u8], path: &str| kit.send(&Call { method: "POST", path, headers: &form, body: Some(body), ..Call::default() });
    let o = send(b"sku=A%201&note=gift&qty=2", "/orders");
    assert!(o.forwarded(), "{:?}", o.reply());
    assert_eq!(upstream(&o, ":path"), some("/v1/orders?sku=A%201"));
    assert_eq!(upstream(&o, "x-note"), some("gift"), "the form's value, never the client's header");
    let o = send(b"sku=A", "/orders");
    assert_eq!(upstream(&o, "x-note"), None, "no field: the client's copy is removed");
    // A client's query copy of the target never reaches the backend, nor a header spelled otherwise.
    let o = kit.send(&Call {
        method: "POST",
        path: "/orders?sku=evil",
        headers: &[("content-type", "application/x-www-form-urlencoded"), ("x_note", "forged"), ("X-NOTE", "forged")],
        body: Some(b"sku=A&note=gift"),
        ..Call::default()
    });
    assert_eq!(upstream(&o, ":path"), some("/v1/orders?sku=A"));
    assert_eq!((upstream(&o, "x-note"), upstream(&o, "x_note")), (some("gift"), None));
    assert_eq!(send(b"qty=2", "/orders").code().as_deref(), Some("I400MP"));
    // An undeclared field named like a query parameter the gateway sets is still refused.
    let api = json!({
        "name": "c", "method": "POST", "path": "/c", "authType": "ANONYMOUS", "requestMode": "MAPPING",
        "parameters": [ { "name": "sku", "location": "FORM", "backendName": "item", "backendLocation": "QUERY" } ],
        "backend": { "type": "HTTP", "cluster": "orders", "path": "/v1/c" }
    });
    let kit = Kit::new(&config(api).to_string(), 0);
    let o = kit.send(&Call { method: "POST", path: "/c", headers: &form, body: Some(b"sku=A&item=B"), ..Call::default() });
    assert_eq!(o.code().as_deref(), Some("I400BD"));
}

#[test]
fn nothing_is_moved_into_the_body_or_renamed_in_it() {
    for (location, extra) in [("QUERY", json!({ "backendLocation": "FORM" })), ("FORM", json!({ "backendName": "quantity" }))] {
        let mut p = json!({ "name": "qty", "location": location });
        p.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let api = json!({ "name": "c", "method": "POST", "path": "/c", "authType": "ANONYMOUS", "requestMode": "MAPPING", "parameters": [ p ] });
        let all: Vec<String> = compile(config(api).to_string().as_bytes()).unwrap_err().iter().map(|p| p.to_string()).collect();
        assert!(all.iter().any(|p| p.contains("the body is forwarded as sent")), "{all:?}");
    }
}

#[test]
fn a_parameter_the_client_leaves_out_reaches_the_backend_with_its_default() {
    let api = json!({
        "name": "list", "method": "POST", "path": "/list", "authType": "ANONYMOUS", "requestMode": "MAPPING",
        "parameters": [ { "name": "page", "location": "QUERY", "type": "INT", "defaultValue": "1" },
                        { "name": "lang", "location": "QUERY", "backendName": "X-Lang", "backendLocation": "HEADER", "defaultValue": "zh" },
                        { "name": "X-Region", "location": "HEADER", "defaultValue": "cn-hangzhou" },
                        { "name": "size", "location": "FORM", "backendLocation": "QUERY", "defaultValue": "20" },
                        { "name": "sort", "location": "QUERY" } ],
        "backend": { "type": "HTTP", "cluster": "orders", "path": "/v1/list" }
    });
    let kit = Kit::new(&config(api.clone()).to_string(), 0);
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let o = kit.send(&Call { method: "POST", path: "/list", headers: &form, body: Some(b""), ..Call::default() });
    assert!(o.forwarded(), "{:?}", o.reply());
    assert_eq!(upstream(&o, ":path"), some("/v1/list?page=1&size=20"), "defaults; `sort` has none");
    assert_eq!((upstream(&o, "x-lang"), upstream(&o, "x-region")), (some("zh"), some("cn-hangzhou")));
    let sent = [("content-type", "application/x-www-form-urlencoded"), ("x-region", "eu")];
    let o = kit.send(&Call { method: "POST", path: "/list?page=3&lang=en", headers: &sent, body: Some(b"size=5"), ..Call::default() });
    assert_eq!(upstream(&o, ":path"), some("/v1/list?page=3&size=5"));
    assert_eq!((upstream(&o, "x-lang"), upstream(&o, "x-region")), (some("en"), some("eu")), "what the client sent wins");
    // PASSTHROUGH checks and maps nothing: no default either.
    let mut passthrough = api;
    passthrough["requestMode"] = json!("PASSTHROUGH");
    let kit = Kit::new(&config(passthrough).to_string(), 0);
    let o = kit.send(&Call { method: "POST", path: "/list", headers: &form, body: Some(b""), ..Call::default() });
    assert_eq!(upstream(&o, ":path"), some("/v1/list"));
}

#[test]
fn a_gateway_value_is_never_replaced_by_a_form_field_or_a_default() {
    let api = json!({
        "name": "c", "method": "POST", "path": "/c", "authType": "ANONYMOUS", "requestMode": "MAPPING",
        "parameters": [ { "name": "userId", "location": "FORM", "backendLocation": "QUERY" },
                        { "name": "page", "location": "QUERY", "defaultValue": "1" },
                        { "name": "X-Region", "location": "HEADER", "defaultValue": "cn-hangzhou" },
                        { "name": "u", "location": "FORM", "backendName": "X-Team", "backendLocation": "HEADER" } ],
        "backend": { "type": "HTTP", "cluster": "orders", "path": "/v1/c",
                     "constantParameters": [ { "name": "userId", "value": "gw", "location": "QUERY" },
                                             { "name": "page", "value": "50", "location": "QUERY" },
                                             { "name": "X-Region", "value": "eu", "location": "HEADER" },
                                             { "name": "X-Team", "value": "core", "location": "HEADER" } ] }
    });
    let kit = Kit::new(&config(api).to_string(), 0);
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let send = |body: &[u8]| kit.send(&Call { method: "POST", path: "/c", headers: &form, body: Some(body), ..Call::default() });
    assert_eq!(send(b"userId=victim").code().as_deref(), Some("I400BD"), "a constant sets userId: the field is a client's copy");
    let o = send(b"u=mine");
    assert!(o.forwarded(), "{:?}", o.reply());
    assert_eq!(upstream(&o, ":path"), some("/v1/c?userId=gw&page=50"), "no default beside the constant");
    assert_eq!((upstream(&o, "x-region"), upstream(&o, "x-team")), (some("eu"), None), "the constant header stays; a form field never replaces one");
}

#[test]
fn a_query_name_the_gateway_sets_may_not_follow_a_semicolon() {
    let api = |mode: &str| {
        json!({
            "name": "p", "method": "ANY", "path": "/p", "authType": "ANONYMOUS", "requestMode": mode,
            "parameters": [ { "name": "a", "location": "QUERY" } ],
            "backend": { "type": "HTTP", "cluster": "orders", "path": "/v1/p",
                         "constantParameters": [ { "name": "userId", "value": "gw", "location": "QUERY" } ] }
        })
    };
    let kit = Kit::new(&config(api("PASSTHROUGH")).to_string(), 0);
    // A backend that splits on `;` would read userId=victim before the gateway's.
    for path in ["/p?a=1;userId=victim", "/p?a=1;user%49d=victim", "/p?a=1;x=2;userId"] {
        let o = kit.get(path, &[]);
        assert_eq!((o.status(), o.code().as_deref()), (400, Some("I400IP")), "{path}");
        assert!(o.message().unwrap().contains("`userId` is set by the gateway"), "{:?}", o.message());
    }
    // A `;` elsewhere, or a name the gateway does not set, goes on as it came.
    let o = kit.get("/p?a=1;b=2&c=x;y", &[]);
    assert!(o.forwarded(), "{:?}", o.reply());
    assert_eq!(upstream(&o, ":path"), some("/v1/p?a=1;b=2&c=x;y&userId=gw"));
    // A urlencoded body is split on `;` by the same backends.
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let post = kit.send(&Call { method: "POST", path: "/p", headers: &form, body: Some(b"other=1;userId=9"), ..Call::default() });
    assert_eq!(post.code().as_deref(), Some("I400BD"));
    // MAPPING drops an undeclared parameter, `;` and all: nothing of it reaches the backend.
    let kit = Kit::new(&config(api("MAPPING")).to_string(), 0);
    let o = kit.get("/p?a=1&utm=x;userId=1", &[]);
    assert!(o.forwarded(), "{:?}", o.reply());
    assert_eq!(upstream(&o, ":path"), some("/v1/p?a=1&userId=gw"));
    assert_eq!(kit.get("/p?a=1;userId=1", &[]).code().as_deref(), Some("I400IP"), "a declared parameter's value goes on");
}

#[test]
fn report_only_forwards_a_semicolon_shadow_with_the_gateways_query() {
    let mut cfg = config(json!({
        "name": "p", "method": "GET", "path": "/p", "authType": "ANONYMOUS", "requestMode": "PASSTHROUGH",
        "backend": { "type": "HTTP", "cluster": "orders", "path": "/v1/p",
                     "constantParameters": [ { "name": "userId", "value": "gw", "location": "QUERY" } ] }
    }));
    cfg["reportOnly"] = json!(true);
    let kit = Kit::new(&cfg.to_string(), 0);
    let o = kit.get("/p?userId=victim&a=1;userId=x", &[]);
    assert!(o.forwarded(), "{:?}", o.reply());
    assert_eq!(upstream(&o, ":path"), some("/v1/p?a=1;userId=x&userId=gw"), "the client's userId is still replaced");
    assert_eq!(kit.stats.count("report_only_would_refuse.I400IP"), 1);
}
