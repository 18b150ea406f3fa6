#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The transformer plugin natively: request headers and query parameters added if absent, put and
//! removed after every check (the signature is verified on what the client sent) and after parameter
//! mapping; the response's status and headers on the backend's answer only; and what the
//! configuration refuses (form bodies, the gateway's own headers, two edits of one name, unknown fields).

use cagate_core::testkit::{Call, Kit, Outcome};
use cagate_core::{compile, sign, Algorithm};
use serde_json::{json, Value};

const NOW: i64 = 1_800_000_000_000;
const KEY: &str = "k1";
const SECRET: &str = "test-app-secret-1-0123456789abcdef";

fn data() -> Value {
    json!({
        "addRequestParameterIfAbsent": [ { "name": "X-Default", "value": "dflt", "location": "header" },
                                         { "name": "lang", "value": "zh", "location": "query" } ],
        "putRequestParameter": [ { "name": "X-Tag", "value": "gateway", "location": "header" },
                                 { "name": "tier", "value": 3, "location": "query" } ],
        "removeRequestParameter": [ { "name": "X-Secret", "location": "header" },
                                    { "name": "debug", "location": "query" } ],
        "setResponseStatusCode": 202,
        "addResponseHeaderIfAbsent": [ { "name": "X-Served-By", "value": "cagate" } ],
        "putResponseHeader": [ { "name": "Cache-Control", "value": "no-store" } ],
        "removeResponseHeader": [ { "name": "Server" } ]
    })
}

fn config(data: Value) -> Value {
    json!({
        "apps": [ { "appId": 10001, "appKey": KEY, "appSecret": SECRET } ],
        "plugins": [ { "name": "rewrite", "type": "transformer", "data": data } ],
        "apis": [
            { "name": "orders", "method": "GET", "path": "/orders/[id]", "authorizations": [ { "appId": 10001 } ],
              "plugins": [ { "plugin": "rewrite" } ] },
            { "name": "public", "method": "GET", "path": "/public", "authType": "ANONYMOUS",
              "requestMode": "MAPPING",
              "parameters": [ { "name": "q", "location": "QUERY", "backendName": "query" },
                              { "name": "X-Tag", "location": "HEADER" } ],
              "backend": { "type": "HTTP", "cluster": "public", "path": "/v1/search" },
              "plugins": [ { "plugin": "rewrite" } ] },
            { "name": "plain", "method": "GET", "path": "/plain", "authType": "ANONYMOUS" }
        ]
    })
}

/// Signed headers for a GET of `path` (with its query) that also signs `x-tag`.
fn signed(path: &str, nonce: &str, tag: &str) -> Vec<(&'static str, String)> {
    let block = format!("x-ca-key:{KEY}\nx-ca-nonce:{nonce}\nx-ca-timestamp:{NOW}\nx-tag:{tag}\n");
    let sts = format!("GET\n\n\n\n\n{block}{path}");
    vec![
        ("x-ca-key", KEY.to_string()),
        ("x-ca-nonce", nonce.to_string()),
        ("x-ca-timestamp", NOW.to_string()),
        ("x-tag", tag.to_string()),
        ("x-ca-signature-headers", "x-ca-key,x-ca-nonce,x-ca-timestamp,x-tag".to_string()),
        ("x-ca-signature", sign(Algorithm::HmacSha256, SECRET.as_bytes(), sts.as_bytes())),
    ]
}

fn refs<'a>(h: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    h.iter().map(|(n, v)| (*n, v.as_str())).collect()
}

fn get(kit: &Kit, path: &str, headers: &[(&str, &str)]) -> Outcome {
    kit.send(&Call { method: "GET", path, headers, ..Call::default() })
}

fn forwarded(o: &Outcome) {
    assert!(o.forwarded(), "not forwarded: {:?} {:?}", o.code(), o.message());
}

#[test]
fn a_signed_request_is_checked_as_sent_and_forwarded_as_transformed() {
    let kit = Kit::new(&config(data()).to_string(), NOW);
    let h = signed("/orders/1?debug=1&tier=1", "n-1", "client");
    let mut headers = refs(&h);
    headers.push(("x-secret", "s3cret"));
    headers.push(("x_secret", "other spelling"));
    let o = get(&kit, "/orders/1?tier=1&debug=1", &headers);
    forwarded(&o);
    // Header edits: put replaces the client's signed value, remove takes every spelling, add fills in.
    assert_eq!(o.stream.upstream_all("x-tag"), vec!["gateway"]);
    assert_eq!(o.stream.upstream("x-secret"), None);
    assert_eq!(o.stream.upstream("x_secret"), None);
    assert_eq!(o.stream.upstream("x-default").as_deref(), Some("dflt"));
    // The gateway's identity is untouched.
    assert_eq!(o.stream.upstream("x-ca-app-id").as_deref(), Some("10001"));
    // Query edits: `debug` removed, `tier` put (a number in the data), `lang` added.
    assert_eq!(o.stream.upstream(":path").as_deref(), Some("/orders/1?lang=zh&tier=3"));
}

#[test]
fn add_if_absent_keeps_what_the_client_sent() {
    let kit = Kit::new(&config(data()).to_string(), NOW);
    let h = signed("/orders/1?lang=en", "n-2", "client");
    let mut headers = refs(&h);
    headers.push(("x-default", "mine"));
    let o = get(&kit, "/orders/1?lang=en", &headers);
    forwarded(&o);
    assert_eq!(o.stream.upstream_all("x-default"), vec!["mine"]);
    assert_eq!(o.stream.upstream(":path").as_deref(), Some("/orders/1?lang=en&tier=3"));
}

#[test]
fn a_refused_request_is_not_transformed_and_a_bad_signature_is_still_refused() {
    let kit = Kit::new(&config(data()).to_string(), NOW);
    // Signed over `x-tag: client`, sent with `x-tag: forged`: the transformer would replace it, but the
    // signature is checked on what the client sent.
    let mut h = signed("/orders/1", "n-3", "client");
    h.retain(|(n, _)| *n != "x-tag");
    h.push(("x-tag", "forged".to_string()));
    let o = get(&kit, "/orders/1", &refs(&h));
    assert_eq!(o.code().as_deref(), Some("A403IS"));
    assert!(!o.forwarded());
}

#[test]
fn edits_apply_after_parameter_mapping() {
    let kit = Kit::new(&config(data()).to_string(), NOW);
    // `q` is mapped to `query`; MAPPING drops undeclared `debug`; then the transformer's query edits.
    let o = get(&kit, "/public?q=shoes&debug=1&lang=fr", &[("x-tag", "client")]);
    forwarded(&o);
    assert_eq!(o.stream.upstream(":path").as_deref(), Some("/v1/search?query=shoes&lang=zh&tier=3"));
    assert_eq!(o.stream.upstream_all("x-tag"), vec!["gateway"]);
}

#[test]
fn an_api_without_the_plugin_is_untouched() {
    let kit = Kit::new(&config(data()).to_string(), NOW);
    let o = get(&kit, "/plain?debug=1", &[("x-secret", "kept"), ("x-tag", "client")]);
    forwarded(&o);
    assert_eq!(o.stream.upstream("x-secret").as_deref(), Some("kept"));
    assert_eq!(o.stream.upstream("x-tag").as_deref(), Some("client"));
    assert_eq!(o.stream.upstream("x-default"), None);
    assert_eq!(o.stream.upstream(":path").as_deref(), Some("/plain?debug=1"));
    let mut o = o;
    kit.respond(&mut o, 200, &[("server", "echo")], "via_upstream", b"");
    assert_eq!(o.stream.response_header(":status").as_deref(), Some("200"));
    assert_eq!(o.stream.response_header("server").as_deref(), Some("echo"));
}

#[test]
fn the_backends_answer_gets_the_status_and_header_edits() {
    let kit = Kit::new(&config(data()).to_string(), NOW);
    let mut o = get(&kit, "/public?q=a", &[]);
    forwarded(&o);
    kit.respond(&mut o, 200, &[("server", "echo"), ("cache-control", "max-age=60"), ("x-served-by", "backend")], "via_upstream", b"{}");
    assert_eq!(o.stream.response_header(":status").as_deref(), Some("202"));
    assert_eq!(o.stream.response_header("server"), None);
    assert_eq!(o.stream.response_header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(o.stream.response_header("x-served-by").as_deref(), Some("backend"), "present: left as the backend sent it");
    assert_eq!(o.stream.access_record().unwrap()["statusCode"], 202, "the record has the status the client got");

    let mut o = get(&kit, "/public?q=b", &[]);
    kit.respond(&mut o, 500, &[], "via_upstream", b"");
    assert_eq!(o.stream.response_header(":status").as_deref(), Some("202"), "the backend's error status is overridden too");
    assert_eq!(o.stream.response_header("x-served-by").as_deref(), Some("cagate"));
}

#[test]
fn an_answer_the_gateway_made_keeps_its_code_and_status() {
    let kit = Kit::new(&config(data()).to_string(), NOW);
    let mut o = get(&kit, "/public?q=a", &[]);
    kit.respond(&mut o, 504, &[], "upstream_response_timeout", b"upstream request timeout");
    assert_eq!(o.stream.response_header(":status").as_deref(), Some("504"));
    assert!(o.stream.response_header("x-ca-error-code").is_some());
    assert_eq!(o.stream.response_header("x-served-by"), None);
}

#[test]
fn response_edits_follow_error_mapping() {
    let mut cfg = config(json!({ "setResponseStatusCode": 299 }));
    cfg["plugins"].as_array_mut().unwrap().push(json!({ "name": "map", "type": "errorMapping",
        "data": "parameters:\n  code: \"BodyJsonField:$.code\"\nerrorCondition: \"$code <> null\"\nerrorCode: \"code\"\nmappings:\n  - code: \"E1\"\n    statusCode: 404\n    errorMessage: \"gone\"\n" }));
    cfg["apis"][1]["plugins"].as_array_mut().unwrap().push(json!({ "plugin": "map" }));
    let kit = Kit::new(&cfg.to_string(), NOW);
    let mut o = get(&kit, "/public?q=a", &[]);
    kit.respond(&mut o, 200, &[("content-type", "application/json")], "via_upstream", br#"{"code":"E1","msg":"x"}"#);
    assert_eq!(o.stream.response_header(":status").as_deref(), Some("299"), "mapped to 404, then set by the transformer");
    assert_eq!(o.stream.response_header("x-ca-error-message").as_deref(), Some("gone"));
}

#[test]
fn error_mapping_reads_every_json_media_type() {
    let mut cfg = config(json!({}));
    cfg["plugins"].as_array_mut().unwrap().push(json!({ "name": "map", "type": "errorMapping",
        "data": "parameters:\n  code: \"BodyJsonField:$.code\"\nerrorCondition: \"$code <> null\"\nerrorCode: \"code\"\nmappings:\n  - code: \"E1\"\n    statusCode: 404\n" }));
    cfg["apis"][1]["plugins"].as_array_mut().unwrap().push(json!({ "plugin": "map" }));
    let kit = Kit::new(&cfg.to_string(), NOW);
    for (ct, status) in [("application/problem+json", "404"), ("text/json; charset=utf-8", "404"), ("text/plain", "200")] {
        let mut o = get(&kit, "/public?q=a", &[]);
        kit.respond(&mut o, 200, &[("content-type", ct)], "via_upstream", br#"{"code":"E1"}"#);
        assert_eq!(o.stream.response_header(":status").as_deref(), Some(status), "{ct}");
    }
}

fn problems(data: Value) -> Vec<String> {
    match compile(config(data).to_string().as_bytes()) {
        Ok(_) => vec![],
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

fn has(found: &[String], needle: &str) {
    assert!(found.iter().any(|p| p.contains(needle)), "{needle:?} not in {found:#?}");
}

#[test]
fn the_configuration_names_every_problem() {
    let p = "plugins[0].data (plugin rewrite)";
    let found = problems(json!({
        "addRequestParameterIfAbsent": [ { "name": "address", "value": "x", "location": "form" } ],
        "putRequestParameter": [ { "name": "X-Ca-App-Id", "value": "1", "location": "header" },
                                 { "name": "x_envoy_retry_on", "value": "5xx", "location": "HEADER" },
                                 { "name": "a", "value": "1", "location": "path" },
                                 { "name": "b", "location": "query" },
                                 { "name": "X-One", "value": "1", "location": "header", "condition": "$a = 1" } ],
        "removeRequestParameter": [ { "name": "x_one", "location": "header" } ],
        "setResponseStatusCode": 700,
        "putResponseHeader": [ { "name": "X-Ca-Error-Code", "value": "X" }, { "name": "X-Bad", "value": "a\r\nb" } ],
        "removeResponseHeader": [ { "name": "x-a", "location": "header" } ],
        "parameters": { "a": "Query:a" }
    }));
    has(&found, &format!("{p}.addRequestParameterIfAbsent[0].location: location form is not supported by cagate"));
    has(&found, &format!("{p}.putRequestParameter[0].name: header X-Ca-App-Id is the gateway's own"));
    has(&found, &format!("{p}.putRequestParameter[1].name: header x_envoy_retry_on is the gateway's own"));
    has(&found, &format!("{p}.putRequestParameter[2].location: unknown location path"));
    has(&found, &format!("{p}.putRequestParameter[3].value: is required"));
    has(&found, &format!("{p}.putRequestParameter[4].condition: unknown field"));
    has(&found, &format!("{p}.setResponseStatusCode: must be a whole number from 200 to 599"));
    has(&found, &format!("{p}.putResponseHeader[0].name: header X-Ca-Error-Code is the gateway's own"));
    has(&found, &format!("{p}.putResponseHeader[1].value: must not contain control characters"));
    has(&found, &format!("{p}.removeResponseHeader[0].location: unknown field"));
    has(&found, &format!("{p}.parameters: unknown field"));
}

#[test]
fn one_name_in_two_edits_is_refused() {
    let found = problems(json!({
        "putRequestParameter": [ { "name": "X-One", "value": "1", "location": "header" } ],
        "removeRequestParameter": [ { "name": "x_one", "location": "header" }, { "name": "X-One", "location": "query" } ]
    }));
    has(&found, "removeRequestParameter[0].name: x_one is already edited by plugins[0].data (plugin rewrite).putRequestParameter[0]");
    assert_eq!(found.len(), 1, "a query parameter of the same name is another thing: {found:#?}");
}

#[test]
fn aliyuns_yaml_template_loads_without_its_form_edit() {
    let yaml = "---\naddRequestParameterIfAbsent:\n- name: userId\n  value: 123456\n  location: query\nputRequestParameter:\n- name: name\n  value: Jack\n  location: header\nremoveRequestParameter:\n- name: address\n  location: form\nsetResponseStatusCode: 200\naddResponseHeaderIfAbsent:\n- name: age\n  value: 18\nputResponseHeader:\n- name: name\n  value: Alice\nremoveResponseHeader:\n- name: phone\n";
    has(&problems(Value::String(yaml.to_string())), "removeRequestParameter[0].location: location form is not supported");
    let without_form = yaml.replace("  location: form", "  location: query");
    assert_eq!(problems(Value::String(without_form)), Vec::<String>::new());
}

#[test]
fn a_query_name_the_transformer_puts_or_removes_may_not_follow_a_semicolon() {
    let kit = Kit::new(&config(data()).to_string(), NOW);
    // `q` is declared (MAPPING keeps it, as `query`): its value goes on with the `;`.
    for (query, name) in [("q=x;tier=9", "tier"), ("q=x;debug=1", "debug")] {
        let o = kit.get(&format!("/public?{query}"), &[]);
        assert_eq!((o.status(), o.code().as_deref()), (400, Some("I400IP")), "{query}");
        assert!(o.message().unwrap().contains(&format!("`{name}` is set by the gateway")), "{:?}", o.message());
    }
    // An add-if-absent name is the client's to give.
    let o = kit.get("/public?q=x;lang=en", &[]);
    assert!(o.forwarded(), "{:?}", o.reply());
}
