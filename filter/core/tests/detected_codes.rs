#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Conditions the gateway can detect, each answered with its own Aliyun code: a form body that does
//! not decode where the API reads it (`I400BD`), a content type the API does not take (`I400CT`), a
//! backend cluster Envoy does not know (`I404SR`), the gateway's own timeout against the backend's
//! (`X504TO` / `D504TO`), and a backend name that did not resolve (`D504RE`).

use cagate_core::testkit::{Call, Kit, Outcome};
use cagate_core::{sign, Algorithm, Flow};

const NOW: i64 = 1_800_000_000_000;
const KEY: &str = "k1";
const SECRET: &str = "test-app-secret-1-0123456789abcdef";
const FORM: &str = "application/x-www-form-urlencoded";

fn config() -> String {
    format!(
        r#"{{ "apps": [ {{ "appId": 10001, "appKey": "{KEY}", "appSecret": "{SECRET}" }} ],
        "plugins": [ {{ "name": "ac", "type": "accessControl", "data": {{ "parameters": {{ "who": "Form:who" }},
                          "rules": [ {{ "name": "no-root", "condition": "$who = 'root'", "ifTrue": "DENY" }} ] }} }},
                     {{ "name": "breaker", "type": "circuitBreaker", "data": "timeoutThreshold: 3\nwindowInSeconds: 30\nopenTimeoutSeconds: 30\n" }} ],
        "apis": [ {{ "name": "form-params", "method": "POST", "path": "/fparams", "authType": "ANONYMOUS",
                     "parameters": [ {{ "name": "role", "location": "FORM", "enumValues": ["user", "50%"] }} ] }},
                  {{ "name": "form-rules", "method": "POST", "path": "/frules", "authType": "ANONYMOUS", "plugins": [ {{ "plugin": "ac" }} ] }},
                  {{ "name": "sets-query", "method": "POST", "path": "/fquery", "authType": "ANONYMOUS",
                     "backend": {{ "type": "HTTP", "cluster": "backend",
                                   "constantParameters": [ {{ "name": "cq", "value": "1", "location": "QUERY" }} ] }} }},
                  {{ "name": "signed-form", "method": "POST", "path": "/sform", "authorizations": [ {{ "appId": 10001 }} ] }},
                  {{ "name": "opaque", "method": "POST", "path": "/opaque", "authType": "ANONYMOUS" }},
                  {{ "name": "public", "method": "ANY", "path": "/public/*", "authType": "ANONYMOUS", "plugins": [ {{ "plugin": "breaker" }} ],
                     "backend": {{ "type": "HTTP", "cluster": "orders-dns", "host": "orders.internal" }} }} ] }}"#
    )
}

fn post(kit: &Kit, path: &str, content_type: &str, body: &str, extra: &[(&str, &str)]) -> Outcome {
    let mut headers = vec![("content-type", content_type)];
    headers.extend_from_slice(extra);
    kit.send(&Call { method: "POST", path, headers: &headers, body: Some(body.as_bytes()), ..Call::default() })
}

fn refused(o: &Outcome, status: u16, code: &str) {
    assert_eq!((o.status(), o.code().as_deref()), (status, Some(code)), "{:?}", o.reply());
    assert!(!o.forwarded());
}

#[test]
fn a_form_that_does_not_decode_is_refused_wherever_the_api_reads_it() {
    let kit = Kit::new(&config(), NOW);
    for path in ["/fparams", "/frules", "/fquery"] {
        for body in ["role=%zz", "role=user&who=%4", "role=a%00b", "x=50%"] {
            let o = post(&kit, path, FORM, body, &[]);
            refused(&o, 400, "I400BD");
            assert!(o.message().unwrap().starts_with("Invalid Body: the form cannot be decoded at byte "), "{:?}", o.message());
        }
    }
    let o = post(&kit, "/fparams", FORM, "role=x%zz", &[]);
    assert_eq!(o.message().as_deref(), Some("Invalid Body: the form cannot be decoded at byte 6"));
    // Well-formed escapes decode and are checked as usual.
    assert!(post(&kit, "/fparams", FORM, "role=50%25", &[]).forwarded());
    assert!(post(&kit, "/fparams", FORM, "role=us%65r", &[]).forwarded());
    refused(&post(&kit, "/fparams", FORM, "role=admin", &[]), 400, "I400IP");
    assert!(post(&kit, "/frules", FORM, "who=al%69ce", &[]).forwarded());
    refused(&post(&kit, "/frules", FORM, "who=ro%6Ft", &[]), 403, "A403AC");
    let o = post(&kit, "/fquery", FORM, "note=ok", &[]);
    assert!(o.forwarded(), "{:?}", o.reply());
    assert_eq!(o.stream.upstream(":path").as_deref(), Some("/fquery?cq=1"));
    // An API that never reads the body passes it on as it came: the backend's to judge.
    assert!(post(&kit, "/opaque", FORM, "x=50%", &[]).forwarded());
}

#[test]
fn a_signed_form_that_does_not_decode_is_refused_even_with_a_good_signature() {
    let kit = Kit::new(&config(), NOW);
    let signed = |nonce: &str, form_tail: &str| {
        let block = format!("x-ca-key:{KEY}\nx-ca-nonce:{nonce}\nx-ca-timestamp:{NOW}\n");
        let sts = format!("POST\n\n\n{FORM}\n\n{block}/sform?{form_tail}");
        sign(Algorithm::HmacSha256, SECRET.as_bytes(), sts.as_bytes())
    };
    let headers = |nonce: &'static str, sig: &str| -> Vec<(&'static str, String)> {
        vec![
            ("x-ca-key", KEY.to_string()),
            ("x-ca-nonce", nonce.to_string()),
            ("x-ca-timestamp", NOW.to_string()),
            ("x-ca-signature-headers", "x-ca-key,x-ca-nonce,x-ca-timestamp".to_string()),
            ("x-ca-signature", sig.to_string()),
        ]
    };
    let good = headers("n-1", &signed("n-1", "amount=1"));
    let refs: Vec<(&str, &str)> = good.iter().map(|(n, v)| (*n, v.as_str())).collect();
    assert!(post(&kit, "/sform", FORM, "amount=1", &refs).forwarded());
    let bad = headers("n-2", &signed("n-2", "amount=%zz"));
    let refs: Vec<(&str, &str)> = bad.iter().map(|(n, v)| (*n, v.as_str())).collect();
    refused(&post(&kit, "/sform", FORM, "amount=%zz", &refs), 400, "I400BD");
}

#[test]
fn a_content_type_the_api_does_not_take_is_refused() {
    let kit = Kit::new(&config(), NOW);
    let multipart = "--XX\r\nContent-Disposition: form-data; name=\"role\"\r\n\r\nadmin\r\n--XX--\r\n";
    let o = post(&kit, "/fparams", "multipart/form-data; boundary=XX", multipart, &[]);
    refused(&o, 400, "I400CT");
    assert_eq!(o.message().as_deref(), Some("Invalid Content-Type: `multipart/form-data; boundary=XX`"));
    refused(&post(&kit, "/fparams", "text/plain", "role=admin", &[]), 400, "I400CT");
    refused(&post(&kit, "/fparams", "application/json", r#"{"role":"admin"}"#, &[]), 400, "I400CT");
    assert!(post(&kit, "/fparams", "application/x-www-form-urlencoded; charset=utf-8", "role=user", &[]).forwarded());
    // An API without FORM parameters takes any content type.
    assert!(post(&kit, "/opaque", "multipart/form-data; boundary=XX", multipart, &[]).forwarded());
}

#[test]
fn a_cluster_envoy_does_not_know_is_stage_route_missing_and_never_the_backends_fault() {
    let kit = Kit::new(&config(), NOW);
    for _ in 0..5 {
        let mut o = kit.get("/public/x", &[]);
        assert!(o.forwarded(), "{:?}", o.reply());
        assert_eq!(o.stream.upstream("x-cagate-cluster").as_deref(), Some("orders-dns"));
        assert_eq!(kit.respond(&mut o, 503, &[], "cluster_not_found", b""), Flow::Pause);
        assert_eq!((o.status(), o.code().as_deref()), (404, Some("I404SR")));
        assert_eq!(o.message().as_deref(), Some("Stage route missing: the API's backend cluster is not known to Envoy"));
    }
    assert!(kit.get("/public/x", &[]).forwarded(), "the breaker did not count them");
}

#[test]
fn the_gateways_own_timeout_is_not_the_backends() {
    let kit = Kit::new(&config(), NOW);
    let svc = kit.services();
    // The client's body never comes: Envoy's stream timeout fires before anything went upstream.
    for details in ["stream_idle_timeout", "request_overall_timeout"] {
        let mut o = kit.send(&Call { method: "POST", path: "/public/x", ..Call::default() });
        let mut x = kit.engine.exchange();
        assert_eq!(x.on_request_headers(&kit.engine, &svc, &o.stream, false), Flow::Continue);
        o.exchange = x;
        kit.respond(&mut o, 504, &[], details, b"");
        assert_eq!((o.status(), o.code().as_deref()), (504, Some("X504TO")), "{details}");
    }
    assert!(kit.get("/public/x", &[]).forwarded(), "the gateway's timeouts do not open the breaker");
    // The whole request went upstream: the same stream timeout, and the route's, are the backend's.
    for details in ["stream_idle_timeout", "upstream_response_timeout", "upstream_per_try_timeout"] {
        let mut o = kit.get("/public/x", &[]);
        assert!(o.forwarded(), "{:?}", o.reply());
        kit.respond(&mut o, 504, &[], details, b"");
        assert_eq!((o.status(), o.code().as_deref()), (504, Some("D504TO")), "{details}");
        assert_eq!(o.message().as_deref(), Some("Backend service request timeout"));
    }
    let o = kit.get("/public/x", &[]);
    assert_eq!((o.status(), o.code().as_deref()), (503, Some("D503CB")), "three backend timeouts open the breaker");
}

#[test]
fn a_backend_name_that_does_not_resolve_is_named_in_d504re() {
    let kit = Kit::new(&config(), NOW);
    // Envoy's dynamic forward proxy: the name of `backend.host` did not resolve.
    for details in ["dns_resolution_failure", "dns_resolution_failure{dns_resolution_failure}"] {
        let mut o = kit.get("/public/x", &[]);
        assert!(o.forwarded(), "{:?}", o.reply());
        assert_eq!(o.stream.upstream(":authority").as_deref(), Some("orders.internal"));
        kit.respond(&mut o, 503, &[], details, b"DNS resolution failure");
        assert_eq!(o.stream.response_header(":status").as_deref(), Some("504"), "{details}");
        assert_eq!(o.stream.response_header("x-ca-error-code").as_deref(), Some("D504RE"));
        assert_eq!(o.stream.response_header("x-ca-error-message").as_deref(), Some("Backend domain `orders.internal` resolve failed"));
    }
    // A DNS cluster whose name never resolved has no host: Envoy reports no_healthy_upstream, as for a
    // cluster whose hosts are all unhealthy; nothing tells the two apart.
    let mut o = kit.get("/public/x", &[]);
    kit.respond(&mut o, 503, &[], "no_healthy_upstream", b"no healthy upstream");
    assert_eq!(o.stream.response_header("x-ca-error-code").as_deref(), Some("D503BB"));
}

#[test]
fn an_api_closed_to_the_internet_answers_a403in_to_a_public_address() {
    let kit = Kit::new(
        r#"{ "disableInternet": true,
             "apis": [ { "name": "internal", "method": "GET", "path": "/internal", "authType": "ANONYMOUS" },
                       { "name": "open", "method": "GET", "path": "/open", "authType": "ANONYMOUS", "disableInternet": false } ] }"#,
        NOW,
    );
    let get = |path: &str, peer: Option<&str>| kit.send(&Call { method: "GET", path, peer, ..Call::default() });
    for inside in ["10.1.2.3:80", "172.16.0.9:1", "192.168.1.1:2", "127.0.0.1:3", "100.100.1.1:4", "[fd00::1]:5", "[::ffff:10.0.0.1]:6", "[::1]:7"] {
        assert!(get("/internal", Some(inside)).forwarded(), "{inside}");
    }
    for outside in [Some("203.0.113.9:443"), Some("[2001:db8::1]:443"), Some("[::ffff:8.8.8.8]:1"), Some("not an address"), None] {
        let o = get("/internal", outside);
        assert_eq!((o.status(), o.code().as_deref()), (403, Some("A403IN")), "{outside:?}");
        assert_eq!(o.message().as_deref(), Some("Access from internet is disabled for api `internal`"));
    }
    assert!(get("/open", Some("203.0.113.9:443")).forwarded(), "an API may open itself again");
    // Whatever the client claims in X-Forwarded-For: only the address Envoy decided counts.
    let o = kit.send(&Call {
        method: "GET",
        path: "/internal",
        headers: &[("x-forwarded-for", "10.0.0.1")],
        peer: Some("203.0.113.9:443"),
        ..Call::default()
    });
    assert_eq!(o.code().as_deref(), Some("A403IN"));
}
