#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The remoteAuth plugin natively: the call built from the request, the request held until the
//! answer, the answer's headers reaching the backend (never a gateway header), the refusals (the
//! service's "no", its failure, a call not sent), the cache of successes only, local checks first,
//! and what the configuration refuses.

use cagate_core::compile;
use cagate_core::testkit::{Call, Kit, Outcome};
use cagate_core::Flow;
use serde_json::{json, Value};

const NOW: i64 = 1_700_000_206_000;

fn plugin(data: Value) -> Value {
    json!({ "name": "ext", "type": "remoteAuth", "data": data })
}

fn data() -> Value {
    json!({
        "cluster": "auth_service",
        "authUriType": "HTTP",
        "authUri": { "address": "http://auth.internal:8080", "path": "/check", "timeout": 800, "method": "GET" },
        "trimAuthorizationHeaderPrefix": true,
        "passThroughPath": true,
        "authParameters": [
            { "targetParameterName": "x-token", "sourceParameterName": "Authorization", "targetLocation": "header", "sourceLocation": "header" },
            { "targetParameterName": "uid", "sourceParameterName": "userId", "targetLocation": "query", "sourceLocation": "query" }
        ],
        "successCondition": "${statusCode} = 200",
        "successPassThroughHeaderList": ["X-User-Id"],
        "errorPassThroughHeaderList": "WWW-Authenticate"
    })
}

fn config(data: Value) -> Value {
    json!({
        "apps": [ { "appId": 10001, "appKey": "k1", "appSecret": "test-app-secret-1-0123456789abcdef", "appCodes": ["CODE1"] } ],
        "plugins": [ plugin(data) ],
        "apis": [
            { "name": "orders", "method": "GET", "path": "/orders", "authType": "ANONYMOUS",
              "backend": { "type": "HTTP", "cluster": "orders" }, "plugins": [ { "plugin": "ext" } ] },
            { "name": "signed", "method": "GET", "path": "/signed", "appCodeAuth": "HEADER",
              "authorizations": [ { "appId": 10001 } ],
              "backend": { "type": "HTTP", "cluster": "orders" }, "plugins": [ { "plugin": "ext" } ] },
            { "name": "open", "method": "GET", "path": "/open", "authType": "ANONYMOUS",
              "backend": { "type": "HTTP", "cluster": "orders" } }
        ]
    })
}

fn kit(data: Value) -> Kit {
    Kit::new(&config(data).to_string(), NOW)
}

fn get(kit: &Kit, path: &str, headers: &[(&str, &str)]) -> Outcome {
    kit.send(&Call { method: "GET", path, headers, ..Call::default() })
}

/// The one HTTP call the request made: its token, and its headers by name.
fn only_call(o: &Outcome) -> (u32, Vec<(String, String)>, String) {
    let calls = o.stream.http_calls.borrow();
    assert_eq!(calls.len(), 1, "one call: {calls:?}");
    let (token, call) = &calls[0];
    (*token, call.headers.clone(), call.cluster.clone())
}

fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
}

#[test]
fn an_allowed_request_waits_for_the_answer_and_carries_its_headers() {
    let kit = kit(data());
    let mut o = get(&kit, "/orders?userId=u%201&x=1", &[("authorization", "Bearer tok-1"), ("x-user-id", "forged")]);
    assert_eq!(o.flow, Flow::Pause, "held for the answer");
    assert!(!o.forwarded() && o.reply().is_none());
    let (token, headers, cluster) = only_call(&o);
    assert_eq!(cluster, "auth_service");
    assert_eq!(header(&headers, ":authority").as_deref(), Some("auth.internal:8080"));
    assert_eq!(header(&headers, ":path").as_deref(), Some("/check?uid=u%201"));
    assert_eq!(header(&headers, ":method").as_deref(), Some("GET"));
    assert_eq!(header(&headers, "x-token").as_deref(), Some("tok-1"), "the Bearer prefix trimmed");
    assert_eq!(header(&headers, "x-ca-remote-auth-raw-path").as_deref(), Some("/orders"));
    kit.http_answer(&mut o, token, Some(200), &[("x-user-id", "u-1"), ("x-ca-app-id", "evil"), ("x-other", "no")], b"");
    assert!(o.forwarded(), "{:?} {:?}", o.code(), o.message());
    assert!(o.stream.resumed.get());
    assert_eq!(o.stream.upstream_all("x-user-id"), vec!["u-1".to_string()], "the answer's value replaces the client's");
    assert_eq!(o.stream.upstream("x-other"), None, "only the listed headers pass");
    assert_eq!(o.stream.upstream("x-ca-app-id"), None, "never a gateway header from the answer");
}

#[test]
fn a_denied_request_gets_the_refusal() {
    let kit = kit(data());
    let mut o = get(&kit, "/orders", &[("authorization", "Bearer bad")]);
    let (token, ..) = only_call(&o);
    kit.http_answer(&mut o, token, Some(401), &[("www-authenticate", "Bearer realm=x"), ("x-user-id", "u")], b"");
    assert_eq!((o.status(), o.code().as_deref()), (403, Some("A403RA")));
    assert_eq!(o.message().as_deref(), Some("Remote Authentication Failed"));
    assert_eq!(o.reply_header("www-authenticate").as_deref(), Some("Bearer realm=x"), "errorPassThroughHeaderList");
    assert!(!o.stream.resumed.get());

    let mut d = data();
    d["errorStatusCode"] = json!(401);
    d["errorMessage"] = json!("token rejected");
    let kit = self::kit(d);
    let mut o = get(&kit, "/orders", &[]);
    let (token, ..) = only_call(&o);
    kit.http_answer(&mut o, token, Some(403), &[], b"");
    assert_eq!((o.status(), o.code().as_deref(), o.message().as_deref()), (401, Some("A403RA"), Some("token rejected")));
}

#[test]
fn the_service_failing_refuses_the_request() {
    let kit = kit(data());
    for (status, why) in [(None, "no answer"), (Some(500), "status 500"), (Some(503), "status 503"), (Some(504), "status 504")] {
        let mut o = get(&kit, "/orders", &[("authorization", "Bearer t")]);
        let (token, ..) = only_call(&o);
        kit.http_answer(&mut o, token, status, &[], b"");
        assert_eq!((o.status(), o.code().as_deref()), (503, Some("X503RA")), "{status:?}");
        assert!(o.message().unwrap().contains(why), "{:?}", o.message());
        assert!(!o.stream.resumed.get());
    }
    // A host that cannot send the call: refused, not let through.
    let stream = cagate_core::testkit::MemoryStream {
        request: std::cell::RefCell::new(vec![(b":method".to_vec(), b"GET".to_vec()), (b":path".to_vec(), b"/orders".to_vec())]),
        no_http: true,
        ..Default::default()
    };
    let o = kit.run(stream, cagate_core::testkit::Delivery::default());
    assert_eq!((o.status(), o.code().as_deref()), (503, Some("X503RA")));
}

#[test]
fn an_answer_for_another_token_changes_nothing() {
    let kit = kit(data());
    let mut o = get(&kit, "/orders", &[]);
    let (token, ..) = only_call(&o);
    kit.http_answer(&mut o, token + 7, Some(200), &[], b"");
    assert!(o.reply().is_none() && !o.stream.resumed.get());
    kit.http_answer(&mut o, token, Some(200), &[], b"");
    assert!(o.forwarded());
}

#[test]
fn successes_are_cached_per_values_and_failures_never() {
    let mut d = data();
    d["cachedTimeBySecond"] = json!(10);
    let kit = kit(d);
    let mut o = get(&kit, "/orders", &[("authorization", "Bearer a")]);
    let (token, ..) = only_call(&o);
    kit.http_answer(&mut o, token, Some(200), &[("x-user-id", "ua")], b"");
    assert!(o.forwarded());
    // The same values: admitted from the cache, with the remembered headers, no call.
    let o = get(&kit, "/orders", &[("authorization", "Bearer a")]);
    assert!(o.stream.http_calls.borrow().is_empty());
    assert_eq!((o.flow, o.stream.upstream("x-user-id").as_deref()), (Flow::Continue, Some("ua")));
    // Other values: asked again; a refusal is not remembered.
    for _ in 0..2 {
        let mut o = get(&kit, "/orders", &[("authorization", "Bearer b")]);
        let (token, ..) = only_call(&o);
        kit.http_answer(&mut o, token, Some(401), &[], b"");
        assert_eq!(o.code().as_deref(), Some("A403RA"));
    }
    // A failure is not remembered either, and a success expires.
    let mut o = get(&kit, "/orders", &[("authorization", "Bearer c")]);
    let (token, ..) = only_call(&o);
    kit.http_answer(&mut o, token, None, &[], b"");
    assert_eq!(o.code().as_deref(), Some("X503RA"));
    assert_eq!(get(&kit, "/orders", &[("authorization", "Bearer c")]).stream.http_calls.borrow().len(), 1);
    kit.clock.0.set(NOW + 10_000);
    assert_eq!(get(&kit, "/orders", &[("authorization", "Bearer a")]).stream.http_calls.borrow().len(), 1, "expired");
}

#[test]
fn local_checks_come_first_and_apis_without_the_plugin_are_not_asked() {
    let kit = kit(data());
    let o = get(&kit, "/signed", &[("authorization", "APPCODE WRONG")]);
    assert_eq!(o.code().as_deref(), Some("A400AC"));
    assert!(o.stream.http_calls.borrow().is_empty(), "a request refused locally never reaches the service");
    let o = get(&kit, "/signed", &[("authorization", "APPCODE CODE1")]);
    let (_, headers, _) = only_call(&o);
    assert_eq!(header(&headers, "x-token").as_deref(), Some("CODE1"), "the prefix up to the first space trimmed");
    let o = get(&kit, "/open", &[]);
    assert!(o.forwarded() && o.stream.http_calls.borrow().is_empty());
}

#[test]
fn the_condition_may_read_the_answers_headers_and_body() {
    let mut d = data();
    d["parameters"] = json!({ "status": "StatusCode", "verdict": "Header:X-Verdict", "ok": "BodyJsonField:$.allowed" });
    d["successCondition"] = json!("$status = 200 and ($verdict = 'allow' or $ok = true)");
    let kit = kit(d);
    for (headers, body, admitted) in [
        (vec![("x-verdict", "allow")], &b""[..], true),
        (vec![], &b"{\"allowed\":true}"[..], true),
        (vec![("x-verdict", "deny")], &b"{\"allowed\":false}"[..], false),
    ] {
        let mut o = get(&kit, "/orders", &[]);
        let (token, ..) = only_call(&o);
        kit.http_answer(&mut o, token, Some(200), &headers, body);
        assert_eq!(o.forwarded(), admitted, "{headers:?}");
    }
}

fn problems(data: Value) -> Vec<String> {
    match compile(config(data).to_string().as_bytes()) {
        Ok(_) => Vec::new(),
        Err(p) => p.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn bad_configurations_are_refused_with_their_paths() {
    assert!(problems(data()).is_empty(), "{:?}", problems(data()));
    let at = "plugins[0].data (plugin ext)";
    let cases = [
        (json!({ "authUri": { "path": "/x" } }), format!("{at}.cluster: is required")),
        (json!({ "cluster": "a", "authUri": { "path": "/x" }, "remoteUrl": "x" }), format!("{at}.remoteUrl")),
        (json!({ "cluster": "a", "authUri": { "path": "/x", "address": "ftp://x" } }), format!("{at}.authUri.address: must be an http")),
        (
            json!({ "cluster": "a", "authUri": { "path": "/x", "timeout": 20000 } }),
            format!("{at}.authUri.timeout: must be a whole number from 1 to 10000"),
        ),
        (json!({ "cluster": "a", "authUri": { "path": "/x" }, "cachedTimeBySecond": 601 }), format!("{at}.cachedTimeBySecond")),
        (json!({ "cluster": "a", "authUri": { "path": "/x" }, "passThroughBody": true }), format!("{at}.passThroughBody: true is not supported")),
        (json!({ "cluster": "a", "authUri": { "path": "/x" }, "successCondition": "${statusCode} = " }), format!("{at}.successCondition")),
        (
            json!({ "cluster": "a", "authUri": { "path": "/x" }, "successPassThroughHeaderList": "X-Ca-App-Id" }),
            format!("{at}.successPassThroughHeaderList: X-Ca-App-Id is a header"),
        ),
        (json!({ "cluster": "a", "authUri": { "path": "/x" }, "parameters": { "q": "Query:x" } }), format!("{at}.parameters.q")),
        (
            json!({ "cluster": "a", "authUri": { "path": "/x" }, "authParameters": [ { "targetParameterName": "a", "sourceParameterName": "b", "targetLocation": "body", "sourceLocation": "header" } ] }),
            format!("{at}.authParameters[0].targetLocation: unknown location body"),
        ),
    ];
    for (data, want) in cases {
        let got = problems(data.clone());
        assert!(got.iter().any(|p| p.contains(&want)), "{want} in {got:?} for {data}");
    }
}

#[test]
fn a_pass_through_header_the_answer_lacks_never_comes_from_the_client() {
    let kit = kit(data());
    let mut o = get(&kit, "/orders", &[("authorization", "Bearer tok-1"), ("x-user-id", "admin"), ("x_user_id", "admin")]);
    let (token, ..) = only_call(&o);
    kit.http_answer(&mut o, token, Some(200), &[], b"");
    assert!(o.forwarded(), "{:?} {:?}", o.code(), o.message());
    assert_eq!(o.stream.upstream("x-user-id"), None, "the client's copy is removed");
    assert_eq!(o.stream.upstream("x_user_id"), None, "in every spelling");
}

#[test]
fn a_source_given_twice_is_refused_before_the_service_is_asked() {
    let kit = kit(data());
    let o = get(&kit, "/orders?userId=me&userId=victim", &[("authorization", "Bearer tok-1")]);
    assert_eq!((o.status(), o.code().as_deref()), (400, Some("I400IP")));
    assert!(o.stream.http_calls.borrow().is_empty(), "no call made");
    let o = get(&kit, "/orders?userId=me", &[("authorization", "Bearer tok-1"), ("authorization", "Bearer other")]);
    assert_eq!((o.status(), o.code().as_deref()), (400, Some("I400IP")));
}
