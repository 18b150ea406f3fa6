#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! circuitBreaker's `downgradeBackend` natively (an open breaker sends requests to an HTTP downgrade
//! or answers with a MOCK one instead of `D503CB`), and the configuration's group and instance QPS
//! limits (`T429GR`, `T429IN`).

use cagate_core::compile;
use cagate_core::testkit::{Kit, Outcome};
use serde_json::{json, Value};

const NOW: i64 = 1_700_000_206_000;

fn config(downgrade: Value) -> Value {
    let mut data = json!({ "timeoutThreshold": 2, "windowInSeconds": 30, "openTimeoutSeconds": 30 });
    if !downgrade.is_null() {
        data["downgradeBackend"] = downgrade;
    }
    json!({
        "plugins": [ { "name": "breaker", "type": "circuitBreaker", "data": data } ],
        "apis": [ { "name": "orders", "method": "GET", "path": "/orders", "authType": "ANONYMOUS",
                    "backend": { "type": "HTTP", "cluster": "orders-prod", "path": "/v1/orders" },
                    "plugins": [ { "plugin": "breaker" } ] } ]
    })
}

/// Two backend failures open the breaker.
fn opened(kit: &Kit) {
    for _ in 0..2 {
        let mut o = kit.get("/orders", &[]);
        assert!(o.forwarded());
        kit.respond(&mut o, 503, &[], "via_upstream", b"");
    }
}

fn refused(o: &Outcome) -> Option<(u16, String)> {
    (!o.forwarded()).then(|| (o.status(), o.code().unwrap_or_default()))
}

#[test]
fn without_a_downgrade_an_open_breaker_refuses() {
    let kit = Kit::new(&config(Value::Null).to_string(), NOW);
    opened(&kit);
    assert_eq!(refused(&kit.get("/orders", &[])), Some((503, "D503CB".into())));
}

#[test]
fn an_open_breaker_sends_requests_to_an_http_downgrade() {
    let kit = Kit::new(&config(json!({ "type": "HTTP", "cluster": "orders-fallback", "path": "/static/orders", "timeout": 1500 })).to_string(), NOW);
    let o = kit.get("/orders", &[("x-ca-downgrade", "forged")]);
    assert_eq!(o.stream.upstream("x-cagate-cluster").as_deref(), Some("orders-prod"), "closed: the API's backend");
    assert_eq!(o.stream.upstream("x-ca-downgrade"), None, "a client's copy is removed");
    opened(&kit);
    for _ in 0..3 {
        let mut o = kit.get("/orders", &[]);
        assert!(o.forwarded(), "{:?}", o.reply());
        assert_eq!(o.stream.upstream("x-cagate-cluster").as_deref(), Some("orders-fallback"));
        assert_eq!(o.stream.upstream(":path").as_deref(), Some("/static/orders"));
        assert_eq!(o.stream.upstream("x-ca-downgrade").as_deref(), Some("breaker"));
        assert_eq!(o.stream.upstream("x-ca-routing-name"), None);
        // The downgrade's failures are not the backend's: they do not keep the breaker open.
        kit.respond(&mut o, 503, &[], "via_upstream", b"");
    }
    // After the open period, one trial goes to the API's own backend again.
    kit.clock.0.set(NOW + 31_000);
    let o = kit.get("/orders", &[]);
    assert_eq!(o.stream.upstream("x-cagate-cluster").as_deref(), Some("orders-prod"));
}

#[test]
fn an_open_breaker_answers_with_a_mock_downgrade() {
    let kit = Kit::new(
        &config(json!({ "type": "MOCK", "statusCode": 200, "body": "cached orders", "mockHeaders": [ { "name": "X-Degraded", "value": "yes" } ] }))
            .to_string(),
        NOW,
    );
    opened(&kit);
    let o = kit.get("/orders", &[]);
    assert!(!o.forwarded());
    let reply = o.reply().unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(String::from_utf8_lossy(&reply.body), "cached orders");
    assert_eq!(o.reply_header("x-degraded").as_deref(), Some("yes"));
}

#[test]
fn a_downgrade_is_checked_like_a_route() {
    let cfg = config(json!({ "type": "SOAP" }));
    let all: Vec<String> = compile(cfg.to_string().as_bytes()).unwrap_err().iter().map(|p| p.to_string()).collect();
    assert!(all.iter().any(|p| p.ends_with("downgradeBackend.type: unsupported backend type SOAP: HTTP, HTTP-VPC or MOCK")), "{all:?}");
    let cfg = config(json!({ "type": "MOCK", "cluster": "x" }));
    let all: Vec<String> = compile(cfg.to_string().as_bytes()).unwrap_err().iter().map(|p| p.to_string()).collect();
    assert!(all.iter().any(|p| p.ends_with("downgradeBackend.cluster: is not a field of a MOCK backend")), "{all:?}");
}

fn limited(extra: Value) -> Value {
    let mut cfg = json!({ "apis": [ { "name": "a", "method": "ANY", "path": "/*", "authType": "ANONYMOUS" } ] });
    cfg.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    cfg
}

#[test]
fn the_group_limit_is_t429gr_and_refills_each_second() {
    let kit = Kit::new(&limited(json!({ "groupQpsLimit": 3 })).to_string(), NOW);
    let outcomes: Vec<Option<(u16, String)>> = (0..10).map(|_| refused(&kit.get("/x", &[]))).collect();
    assert_eq!(outcomes.iter().filter(|o| o.is_none()).count(), 3, "{outcomes:?}");
    assert_eq!(outcomes[3], Some((429, "T429GR".into())));
    let o = kit.get("/x", &[]);
    assert_eq!(o.message().as_deref(), Some("Throttled by GROUP Flow Control: 3 per SECOND"));
    assert_eq!(o.reply_header("retry-after").as_deref(), Some("1"));
    kit.clock.0.set(NOW + 1000);
    assert_eq!(refused(&kit.get("/x", &[])), None, "a second later the bucket has refilled");
}

#[test]
fn the_instance_limit_is_t429in_and_shared_by_configurations() {
    let a = compile(limited(json!({ "instanceQpsLimit": 4, "groupQpsLimit": 100 })).to_string().as_bytes()).unwrap();
    let b = compile(limited(json!({ "instanceQpsLimit": 4 })).to_string().as_bytes()).unwrap();
    let kit_a = Kit::from_gateway(a, NOW);
    let kit_b = Kit::sharing(b, NOW, kit_a.store.clone());
    let passed =
        (0..3).filter(|_| refused(&kit_a.get("/x", &[])).is_none()).count() + (0..3).filter(|_| refused(&kit_b.get("/x", &[])).is_none()).count();
    assert_eq!(passed, 4, "one instance bucket for both configurations");
    assert_eq!(refused(&kit_b.get("/x", &[])), Some((429, "T429IN".into())));
}

#[test]
fn limits_are_checked_at_load() {
    let all: Vec<String> = compile(limited(json!({ "groupQpsLimit": 0, "instanceQpsLimit": "many" })).to_string().as_bytes())
        .unwrap_err()
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert!(all.contains(&"groupQpsLimit: must be a whole number from 1 to 100000000".to_string()), "{all:?}");
    assert!(all.contains(&"instanceQpsLimit: must be a number, not a string".to_string()), "{all:?}");
}

#[test]
fn a_failing_test_backend_does_not_open_the_release_breaker() {
    let mut cfg = config(Value::Null);
    cfg["stages"] = json!(["RELEASE", "TEST"]);
    cfg["apis"][0]["stages"] = json!(["RELEASE", "TEST"]);
    let kit = Kit::new(&cfg.to_string(), NOW);
    for _ in 0..2 {
        let mut o = kit.get("/orders", &[("x-ca-stage", "TEST")]);
        assert!(o.forwarded());
        kit.respond(&mut o, 503, &[], "via_upstream", b"");
    }
    assert_eq!(refused(&kit.get("/orders", &[("x-ca-stage", "TEST")])), Some((503, "D503CB".into())), "TEST's breaker opened");
    assert_eq!(refused(&kit.get("/orders", &[])), None, "RELEASE's backend did not fail: its breaker stays closed");
}

#[test]
fn a_half_open_trial_that_never_reaches_the_backend_is_given_back() {
    let mut cfg = config(Value::Null);
    cfg["apis"][0]["backend"]["constantParameters"] = json!([ { "name": "userId", "value": "gw", "location": "QUERY" } ]);
    let kit = Kit::new(&cfg.to_string(), NOW);
    opened(&kit);
    assert_eq!(refused(&kit.get("/orders", &[])), Some((503, "D503CB".into())));
    kit.clock.0.set(NOW + 31_000);
    // The trial refused after the breaker admitted it (a gateway-set query name after a `;`).
    assert_eq!(refused(&kit.get("/orders?a=1;userId=x", &[])), Some((400, "I400IP".into())));
    // The next one is the trial: forwarded, and its client leaves before the answer.
    let mut o = kit.get("/orders", &[]);
    assert!(o.forwarded(), "{:?}", o.reply());
    kit.end(&mut o);
    // Again the next one is the trial; its success closes the breaker.
    let mut o = kit.get("/orders", &[]);
    assert!(o.forwarded(), "{:?}", o.reply());
    assert_eq!(refused(&kit.get("/orders", &[])), Some((503, "D503CB".into())), "one trial at a time");
    kit.respond(&mut o, 200, &[], "via_upstream", b"");
    assert!(kit.get("/orders", &[]).forwarded(), "closed");
}
