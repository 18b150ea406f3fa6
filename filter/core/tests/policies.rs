#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! accessControl natively: every request location, rule order, `${var}` substitution.

use cagate_core::compile;
use cagate_core::testkit::{Call, Kit};
use serde_json::json;

fn config(rules: &serde_json::Value, params: &serde_json::Value) -> String {
    json!({
        "apps": [ { "appId": 77, "appKey": "k", "appSecret": "s", "appCodes": ["C"] } ],
        "plugins": [ { "name": "ac", "type": "accessControl", "data": { "parameters": params, "rules": rules } } ],
        "apis": [ { "name": "thing", "method": "POST", "path": "/things/[thingId]", "appCodeAuth": "HEADER_QUERY",
                    "stages": ["RELEASE", "TEST"], "authorizations": [ { "appId": 77 }, { "appId": 77, "stage": "TEST" } ],
                    "plugins": [ { "plugin": "ac" } ] } ]
    })
    .to_string()
}

/// A POST from 192.0.2.4 through the engine; `$REQUEST_ID` in a rule is the id the request gets.
fn decide(
    rules: serde_json::Value,
    params: serde_json::Value,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<(), (String, String)> {
    // Every kit gives its requests the same ids: a first kit tells which one the request will get.
    let request_id = Kit::new(&config(&json!([]), &json!({})), 0).next_request_id();
    let rules: serde_json::Value = serde_json::from_str(&rules.to_string().replace("$REQUEST_ID", &request_id)).unwrap();
    let kit = Kit::new(&config(&rules, &params), 0);
    let o = kit.send(&Call { method: "POST", path, headers, body, peer: Some("192.0.2.4:5555"), ..Call::default() });
    let form = headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
    assert_eq!(o.read_body, body.is_some() && form, "Form: variables make the filter read a form body");
    match o.code() {
        None if o.forwarded() => Ok(()),
        None => panic!("neither forwarded nor refused"),
        Some(code) => Err((code, o.message().unwrap())),
    }
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
               and $key = 'k' and $api = 'thing' and $stage = 'TEST' and $rid = '$REQUEST_ID' and $ip = '192.0.2.4' \
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
fn a_value_a_rule_reads_given_again_with_another_is_refused() {
    let params = json!({ "q": "Query:tenant", "h": "Header:X-Tenant" });
    let rules = json!([ { "name": "acme-only", "condition": "$q = 'acme' and $h = 'acme'", "ifFalse": "DENY" } ]);
    let ok = [("authorization", "APPCODE C"), ("x-tenant", "acme")];
    assert_eq!(decide(rules.clone(), params.clone(), "/things/1?tenant=acme", &ok, None), Ok(()));
    assert_eq!(decide(rules.clone(), params.clone(), "/things/1?tenant=acme&tenant=acme", &ok, None), Ok(()), "the same value twice");
    let (code, message) = decide(rules.clone(), params.clone(), "/things/1?tenant=acme&tenant=victim", &ok, None).unwrap_err();
    assert_eq!((code.as_str(), message.as_str()), ("I400RU", "Invalid Request Uri `parameter `tenant` is repeated`"));
    let two = [("authorization", "APPCODE C"), ("x-tenant", "acme"), ("x_tenant", "evil")];
    assert_eq!(decide(rules, params.clone(), "/things/1?tenant=acme", &two, None).unwrap_err().0, "I400HD");
    // A header is read under any spelling a backend reads as its name.
    let deny = json!([ { "name": "no-blocked", "condition": "$h = 'blocked'", "ifTrue": "DENY" } ]);
    let spelled = [("authorization", "APPCODE C"), ("x_tenant", "blocked")];
    assert_eq!(decide(deny, params, "/things/1", &spelled, None).unwrap_err().0, "A403AC");
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
    let cfg = json!({ "stages": ["RELEASE", "TEST"],
        "apps": [ { "appId": 10001, "appKey": "k", "appSecret": "s", "appCodes": ["C"] } ],
        "plugins": [ { "name": "lim", "type": "trafficControl", "data": { "unit": "MINUTE", "apiDefault": 10 } },
                     { "name": "mask", "type": "logMask", "data": { "maskRules": [
                         { "name": "nonce", "policy": "ALL", "location": "HEADER", "parameters": ["X-Ca-Nonce"] } ] } } ],
        "apis": [ { "name": "thing", "method": "GET", "path": "/t", "appCodeAuth": "HEADER", "stages": ["TEST"],
                    "authorizations": [ { "appId": 10001, "stage": "TEST" } ], "plugins": [ { "plugin": "mask" }, { "plugin": "lim" } ] } ] });
    let kit = Kit::new(&cfg.to_string(), 0);
    let mut o = kit.get("/t", &[("authorization", "APPCODE C"), ("x-ca-stage", "TEST"), ("x-ca-request-mode", "debug")]);
    assert!(o.forwarded(), "{:?}", o.reply());
    kit.respond(&mut o, 200, &[], "via_upstream", b"");
    // The kit's clock stands still: no time passed in the filter.
    let info = o.stream.response_header("x-ca-debug-info");
    assert_eq!(info.as_deref(), Some("api=thing;stage=TEST;app=10001;plugins=trafficControl/lim,logMask/mask;filterMicros=0"));
}
