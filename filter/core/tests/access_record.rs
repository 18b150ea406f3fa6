#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The access record is published for every request unless the configuration switches it off
//! (`accessRecord: false`), which leaves the decision, the headers and the counters as they were.

use cagate_core::testkit::{Kit, Outcome};
use serde_json::json;

const NOW: i64 = 1_800_000_000_000;

fn kit(top: serde_json::Value) -> Kit {
    let mut cfg = json!({ "apis": [ { "name": "open", "method": "GET", "path": "/open", "authType": "ANONYMOUS" } ] });
    if let (Some(c), Some(t)) = (cfg.as_object_mut(), top.as_object()) {
        c.extend(t.clone());
    }
    Kit::new(&cfg.to_string(), NOW)
}

fn answered(kit: &Kit, path: &str) -> Outcome {
    let mut o = kit.get(path, &[("x-ca-nonce", "n-1")]);
    if o.forwarded() {
        kit.respond(&mut o, 200, &[], "via_upstream", b"");
    }
    o
}

#[test]
fn every_request_is_recorded_by_default() {
    let kit = kit(json!({}));
    let o = answered(&kit, "/open");
    let record = o.stream.access_record().expect("a record");
    assert_eq!(record["apiName"], "open");
    assert_eq!(record["clientNonce"], "n-1");
    assert_eq!(record["statusCode"], 200);
    let refused = answered(&kit, "/nowhere");
    assert_eq!(refused.stream.access_record().expect("a refusal's record")["statusCode"], 404);
}

#[test]
fn switched_off_no_record_is_published_and_nothing_else_changes() {
    let kit = kit(json!({ "accessRecord": false }));
    let o = answered(&kit, "/open");
    assert!(o.forwarded());
    assert!(o.stream.access_record().is_none());
    assert_eq!(o.stream.upstream("x-ca-api-name").as_deref(), Some("open"));
    assert_eq!(o.stream.response_header("x-ca-request-id").as_deref(), Some(o.exchange.request_id()));
    assert_eq!(kit.stats.count("requests.open.RELEASE.OK"), 1);
    let refused = answered(&kit, "/nowhere");
    assert!(refused.stream.access_record().is_none());
    assert_eq!(refused.reply().map(|r| r.status), Some(404));
}

#[test]
fn the_switch_must_be_a_boolean() {
    let problems = cagate_core::compile(json!({ "accessRecord": "no", "apis": [] }).to_string().as_bytes()).unwrap_err();
    assert!(problems.iter().any(|p| p.to_string().contains("accessRecord")), "{problems:?}");
}

#[test]
fn a_token_jwt_auth_refuses_is_recorded_as_a_jwt_request_of_that_plugin() {
    let jwk = json!({ "kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ", "alg": "HS256", "kid": "k" });
    let kit = kit(json!({
        "plugins": [ { "name": "jwt", "type": "jwtAuth", "data": { "parameter": "Authorization", "jwk": jwk } } ],
        "apis": [ { "name": "open", "method": "GET", "path": "/open", "authType": "ANONYMOUS", "plugins": [ { "plugin": "jwt" } ] } ]
    }));
    let o = kit.get("/open", &[("authorization", "Bearer not.a.token")]);
    assert_eq!(o.code().as_deref(), Some("I400JD"), "a token that does not decode");
    let record = o.stream.access_record().expect("a refusal's record");
    assert_eq!((&record["authType"], &record["plugin"]), (&json!("JWT"), &json!("jwtAuth")));
}

#[test]
fn the_group_limit_is_no_plugin_refusal() {
    let kit = kit(json!({ "groupQpsLimit": 1 }));
    assert!(answered(&kit, "/open").forwarded());
    let o = answered(&kit, "/open");
    assert_eq!(o.code().as_deref(), Some("T429GR"));
    let record = o.stream.access_record().expect("a refusal's record");
    assert_eq!(record["errorCode"], "T429GR");
    assert!(record.get("plugin").is_none(), "{record}");
}

#[test]
fn a_request_without_credentials_is_recorded_with_no_kind_of_them() {
    let kit = kit(json!({
        "apps": [ { "appId": 10001, "appKey": "k1", "appSecret": "test-app-secret-1-0123456789abcdef", "appCodes": ["CODE1"] } ],
        "apis": [ { "name": "orders", "method": "GET", "path": "/orders", "authorizations": [ { "appId": 10001 } ] } ]
    }));
    let o = kit.get("/orders", &[]);
    assert_eq!(o.code().as_deref(), Some("A400MA"));
    let record = o.stream.access_record().expect("a refusal's record");
    assert!(record.get("authType").is_none(), "{record}");
    let o = kit.get("/orders", &[("authorization", "APPCODE nope")]);
    assert_eq!(o.code().as_deref(), Some("A400AC"));
    assert_eq!(o.stream.access_record().expect("a record")["authType"], "APPCODE");
}

#[test]
fn a_signed_request_is_recorded_under_the_key_it_was_signed_with() {
    let kit = kit(json!({
        "apps": [ { "appId": 10001, "appKey": "k-new", "appSecret": "secret-new", "appCodes": ["CODE1"],
                    "keys": [ { "appKey": "k-old", "appSecret": "secret-old", "validUntil": "2030-01-01T00:00:00Z" } ] } ],
        "apis": [ { "name": "orders", "method": "GET", "path": "/orders", "appCodeAuth": "HEADER", "authorizations": [ { "appId": 10001 } ] } ]
    }));
    let signed = |key: &str, secret: &str| {
        let sts = format!("GET\n\n\n\n\nx-ca-key:{key}\n/orders");
        let signature = cagate_core::sign(cagate_core::Algorithm::HmacSha256, secret.as_bytes(), sts.as_bytes());
        vec![("x-ca-key", key.to_string()), ("x-ca-signature-headers", "x-ca-key".to_string()), ("x-ca-signature", signature)]
    };
    let app_key = |headers: &[(&str, String)]| {
        let h: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let mut o = kit.get("/orders", &h);
        assert!(o.forwarded(), "{:?}", o.reply());
        kit.respond(&mut o, 200, &[], "via_upstream", b"");
        o.stream.access_record().expect("a record")["appKey"].clone()
    };
    assert_eq!(app_key(&signed("k-old", "secret-old")), "k-old", "the client still on the old key shows in the logs");
    assert_eq!(app_key(&signed("k-new", "secret-new")), "k-new");
    assert_eq!(app_key(&[("authorization", "APPCODE CODE1".to_string())]), "k-new", "AppCode: the app's own key");
}

#[test]
fn a_request_whose_client_left_before_any_response_is_counted_and_recorded_once() {
    let kit = kit(json!({}));
    // Forwarded, then the client went away while the backend was still working.
    let mut gone = kit.get("/open", &[]);
    assert!(gone.forwarded());
    assert!(gone.stream.access_record().is_none(), "nothing recorded before the stream ends");
    kit.end(&mut gone);
    let record = gone.stream.access_record().expect("a record when the stream ends");
    assert_eq!(record["statusCode"], 0, "{record}");
    assert!(record.get("errorCode").is_none(), "{record}");
    assert_eq!(kit.stats.count("requests.open.RELEASE.NO_RESPONSE"), 1);
    // An answered request is concluded once, by its response: the end of its stream adds nothing.
    let mut answered = answered(&kit, "/open");
    kit.end(&mut answered);
    kit.end(&mut gone);
    assert_eq!(kit.stats.count("requests.open.RELEASE.OK"), 1);
    assert_eq!(kit.stats.count("requests.open.RELEASE.NO_RESPONSE"), 1);
}

#[test]
fn a_request_left_before_the_gateway_decided_has_no_gateway_time() {
    use cagate_core::testkit::MemoryStream;
    use std::cell::RefCell;
    let kit = kit(json!({}));
    // A Content-MD5 to check: the gateway holds the request for its body, which never comes.
    let pairs = [(":method", "GET"), (":path", "/open"), ("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==")];
    let stream = MemoryStream {
        request: RefCell::new(pairs.iter().map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec())).collect()),
        ..MemoryStream::default()
    };
    let mut exchange = kit.engine.exchange();
    let flow = exchange.on_request_headers(&kit.engine, &kit.services(), &stream, false);
    let mut o = Outcome { flow, exchange, stream, read_body: true };
    assert!(o.reply().is_none() && !o.forwarded(), "held for the body");
    kit.clock.0.set(NOW + 300_000); // the client gives up five minutes later
    kit.end(&mut o);
    let record = o.stream.access_record().expect("a record");
    assert_eq!(record["statusCode"], 0, "{record}");
    assert!(record.get("gatewayMicros").is_none(), "{record}");
    assert_eq!(kit.stats.count("filter_us"), 0, "no gateway time sample");
    assert_eq!(kit.stats.count("requests.open.RELEASE.NO_RESPONSE"), 1);
}

#[test]
fn a_blank_appkey_beside_an_appcode_is_an_appcode_request() {
    let kit = kit(json!({
        "apps": [ { "appId": 10001, "appKey": "k1", "appSecret": "test-app-secret-1-0123456789abcdef", "appCodes": ["CODE1"] } ],
        "apis": [ { "name": "orders", "method": "GET", "path": "/orders", "appCodeAuth": "HEADER", "authorizations": [ { "appId": 10001 } ] } ]
    }));
    let mut o = kit.get("/orders", &[("x-ca-key", " "), ("authorization", "APPCODE CODE1")]);
    assert!(o.forwarded(), "{:?}", o.reply());
    kit.respond(&mut o, 200, &[], "via_upstream", b"");
    let record = o.stream.access_record().expect("a record");
    assert_eq!((record["authType"].as_str(), record["appKey"].as_str()), (Some("APPCODE"), Some("k1")), "{record}");
}
