#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! accessControl natively: every request location, rule order, `${var}` substitution.

use cagate_core::compile;
use cagate_core::Headers;
use cagate_core::NonceStore;
use cagate_core::Runtime;
use cagate_core::{authenticate, route, run_plugins, Ctx, Request};
use cagate_core::{FixedClock, MemoryStore};
use serde_json::json;

fn decide(
    rules: serde_json::Value,
    params: serde_json::Value,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<(), (String, String)> {
    let cfg = json!({
        "apps": [ { "appId": 77, "appKey": "k", "appSecret": "s", "appCodes": ["C"] } ],
        "plugins": [ { "name": "ac", "type": "accessControl", "data": { "parameters": params, "rules": rules } } ],
        "apis": [ { "name": "thing", "method": "POST", "path": "/things/[thingId]", "appCodeAuth": "HEADER_QUERY",
                    "stages": ["RELEASE", "TEST"], "authorizations": [ { "appId": 77 }, { "appId": 77, "stage": "TEST" } ],
                    "plugins": [ { "plugin": "ac" } ] } ]
    });
    let gw = compile(cfg.to_string().as_bytes()).unwrap_or_else(|p| panic!("{p:?}"));
    let store = MemoryStore::new();
    let mut rt = Runtime::new(&gw.plugins, (0, 0));
    let h = Headers::from_pairs(headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())).collect());
    let req = Request { method: b"POST", path: path.as_bytes(), headers: &h };
    let routed = route(&gw, &req).map_err(|r| (r.error.code.to_string(), r.message.clone()))?;
    assert_eq!(routed.needs_body, body.is_some() && h.get(b"content-type").is_some(), "Form: variables make the filter read a form body");
    let id = authenticate(&gw, &NonceStore::new(gw.nonce_store), &req, &routed, body, &FixedClock(0), &store).unwrap();
    let peer = cagate_core::FixedPeer("192.0.2.4:5555");
    let ctx = Ctx { request_id: "REQ-1", body, stream: &peer, coarse: &FixedClock(0) };
    run_plugins(&gw, &mut rt, &req, id, &FixedClock(0), &store, &ctx).map(|_| ()).map_err(|r| (r.error.code.to_string(), r.message.clone()))
}

#[test]
fn every_request_location() {
    let params = json!({
        "m": "Method", "p": "Path", "h": "Header:X-Kind", "q": "Query:q", "f": "Form:f", "id": "Parameter:thingId",
        "app": "System:CaAppId", "key": "System:CaAppKey", "api": "System:CaApiName", "stage": "System:CaStage",
        "rid": "System:CaRequestId", "ip": "System:CaClientIp", "dom": "System:CaDomain", "ua": "System:CaClientUa",
        "x0": "XFF:0", "xl": "XFF:-1"
    });
    let all = "$m = 'POST' and $p = '/things/中' and $h = 'k' and $q = 'a b' and $f = 'v' and $id = '中' and $app = 77 \
               and $key = 'k' and $api = 'thing' and $stage = 'TEST' and $rid = 'REQ-1' and $ip = '192.0.2.4' \
               and $dom = 'example.com' and $ua = 'ua/1' and $x0 = '203.0.113.1' and $xl = '198.51.100.2'";
    let rules = json!([ { "name": "everything", "condition": all, "ifFalse": "DENY" } ]);
    let headers = [
        ("authorization", "APPCODE C"),
        ("x-kind", "k"),
        ("x-ca-stage", "TEST"),
        (":authority", "example.com"),
        ("user-agent", "ua/1"),
        ("x-forwarded-for", "203.0.113.1, 198.51.100.2"),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    assert_eq!(decide(rules.clone(), params.clone(), "/things/%E4%B8%AD?q=a+b", &headers, Some(b"f=v")), Ok(()));
    assert_eq!(
        decide(rules, params, "/things/%E4%B8%AD?q=a+c", &headers, Some(b"f=v")).unwrap_err(),
        ("A403AC".to_string(), "Access Control Forbidden by everything".to_string())
    );
}

#[test]
fn rules_run_in_order_and_the_first_decision_wins() {
    let params = json!({ "q": "Query:q", "missing": "Header:X-None" });
    let rules = json!([
        { "name": "allow-a", "condition": "$q = 'a'", "ifTrue": "ALLOW" },
        { "name": "deny-a-or-b", "condition": "$q = 'a' or $q = 'b'", "ifTrue": "DENY", "statusCode": 451, "errorMessage": "no ${q}${missing}!" },
        { "name": "needs-null", "condition": "$missing = null", "ifFalse": "DENY" }
    ]);
    let h = [("authorization", "APPCODE C")];
    assert_eq!(decide(rules.clone(), params.clone(), "/things/1?q=a", &h, None), Ok(()));
    assert_eq!(decide(rules.clone(), params.clone(), "/things/1?q=b", &h, None).unwrap_err().1, "no b!");
    assert_eq!(decide(rules.clone(), params.clone(), "/things/1?q=c", &h, None), Ok(()), "no rule decides: admitted");
    let h = [("authorization", "APPCODE C"), ("x-none", "x")];
    assert_eq!(decide(rules, params, "/things/1?q=c", &h, None).unwrap_err().0, "A403AC");
}

#[test]
fn bad_conditions_refuse_the_configuration_with_plugin_rule_and_position() {
    let cfg = json!({ "plugins": [ { "name": "ac", "type": "accessControl", "data": {
        "parameters": { "a": "Header:A", "s": "StatusCode" },
        "rules": [ { "name": "r1", "condition": "$a = 'x' and ($a <> ", "ifTrue": "DENY" },
                   { "name": "r2", "condition": "$b = 1", "ifTrue": "MAYBE" } ] } } ], "apis": [] });
    let text: Vec<String> = compile(cfg.to_string().as_bytes()).unwrap_err().iter().map(|p| p.to_string()).collect();
    let text = text.join("\n");
    for expected in [
        "plugins[0].data (plugin ac).parameters.s: StatusCode is only available in the response phase",
        "plugins[0].data (plugin ac).rules[0] (rule r1).condition: at column 21: expected a value",
        "plugins[0].data (plugin ac).rules[1] (rule r2).condition: at column 1: unknown variable $b",
        "plugins[0].data (plugin ac).rules[1].ifTrue: MAYBE: ALLOW or DENY",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}

#[test]
fn debug_info_names_the_api_stage_app_and_plugins() {
    use cagate_core::{debug_info, Admission, Identity};
    let cfg = json!({ "stages": ["RELEASE", "TEST"],
        "plugins": [ { "name": "lim", "type": "trafficControl", "data": { "unit": "MINUTE", "apiDefault": 10 } } ],
        "apis": [ { "name": "thing", "method": "GET", "path": "/t", "authType": "ANONYMOUS", "stages": ["TEST"], "plugins": [ { "plugin": "lim" } ] } ] });
    let gw = compile(cfg.to_string().as_bytes()).unwrap();
    let a = Admission {
        identity: Identity { api: 0, stage: 1, app: None, nonce: None },
        claims: None,
        edits: vec![],
        traffic: None,
        breaker: None,
        rate_limit: None,
        one_time: vec![],
    };
    assert_eq!(debug_info(&gw, &a, "10001", 57), "api=thing;stage=TEST;app=10001;plugins=trafficControl/lim;filterMicros=57");
}
