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
