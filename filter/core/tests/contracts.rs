#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The two ways a refusal reaches a client besides Aliyun's VPC table: report-only (nothing refused,
//! everything counted and recorded) and the classic-network contract (the classic table's statuses
//! and messages, no `X-Ca-Error-Code`).

use cagate_core::testkit::{Kit, Outcome};
use cagate_core::{sign, Algorithm};

const NOW: i64 = 1_800_000_000_000;
const KEY: &str = "k1";
const SECRET: &str = "test-app-secret-1-0123456789abcdef";

fn config(top: &str, orders_extra: &str) -> String {
    format!(
        r#"{{ "apps": [ {{ "appId": 10001, "appKey": "{KEY}", "appSecret": "{SECRET}" }} ],
        "plugins": [ {{ "name": "ip", "type": "ipControl", "data": {{ "type": "REFUSE", "resource": "XFF:0", "items": [ {{ "blocks": ["10.0.0.0/8"] }} ] }} }},
                     {{ "name": "tc", "type": "trafficControl", "data": {{ "unit": "MINUTE", "apiDefault": 2, "appDefault": 1 }} }} ],
        "apis": [ {{ "name": "orders", "method": "ANY", "path": "/orders/[id]", "authorizations": [ {{ "appId": 10001 }} ],
                     "plugins": [ {{ "plugin": "ip" }} ] {orders_extra} }},
                  {{ "name": "limited", "method": "ANY", "path": "/limited", "authorizations": [ {{ "appId": 10001 }} ],
                     "plugins": [ {{ "plugin": "tc" }} ] }},
                  {{ "name": "other", "method": "ANY", "path": "/other", "authorizations": [ {{ "appId": 10001 }} ] }} ]
        {top} }}"#
    )
}

fn signed(path: &str, nonce: &str, secret: &str) -> Vec<(&'static str, String)> {
    let block = format!("x-ca-key:{KEY}\nx-ca-nonce:{nonce}\nx-ca-timestamp:{NOW}\n");
    let sts = format!("GET\n\n\n\n\n{block}{path}");
    vec![
        ("x-ca-key", KEY.to_string()),
        ("x-ca-nonce", nonce.to_string()),
        ("x-ca-timestamp", NOW.to_string()),
        ("x-ca-signature-headers", "x-ca-key,x-ca-nonce,x-ca-timestamp".to_string()),
        ("x-ca-signature", sign(Algorithm::HmacSha256, secret.as_bytes(), sts.as_bytes())),
    ]
}

/// A request, and (when it was forwarded) the backend's 200: the record is published then.
fn through(kit: &Kit, path: &str, headers: &[(&str, &str)]) -> Outcome {
    let mut o = kit.get(path, headers);
    if o.forwarded() {
        kit.respond(&mut o, 200, &[], "via_upstream", b"");
    }
    o
}

fn refs<'a>(h: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    h.iter().map(|(n, v)| (*n, v.as_str())).collect()
}

#[test]
fn report_only_lets_a_bad_signature_through_without_an_identity_and_records_it() {
    let kit = Kit::new(&config(r#", "reportOnly": true"#, ""), NOW);
    let mut h = signed("/orders/1", "n-1", "wrong-secret");
    h.push(("x-ca-app-id", "99999".to_string()));
    let o = through(&kit, "/orders/1", &refs(&h));
    assert!(o.forwarded(), "{:?}", o.reply());
    assert_eq!(o.stream.upstream("x-ca-app-id"), None, "a client's identity header never reaches the backend");
    assert_eq!(o.stream.upstream("x-ca-api-name").as_deref(), Some("orders"));
    assert_eq!(o.stream.upstream("x-ca-request-id").as_deref(), Some(o.exchange.request_id()));
    assert_eq!(kit.stats.count("report_only_would_refuse.A403IS"), 1);
    assert_eq!(kit.stats.count("refused.A403IS"), 0);
    assert_eq!(kit.stats.count("allowed"), 1);
    assert_eq!(kit.stats.count("requests.orders.RELEASE.OK"), 1, "the client got no gateway code");
    let record = o.stream.access_record().unwrap();
    assert_eq!(record["errorCode"], "A403IS");
    assert_eq!(record["enforced"], false);
}

#[test]
fn report_only_keeps_the_identity_of_an_authenticated_request_a_plugin_would_refuse() {
    let kit = Kit::new(&config(r#", "reportOnly": true"#, ""), NOW);
    let mut h = signed("/orders/1", "n-2", SECRET);
    h.push(("x-forwarded-for", "10.1.2.3".to_string()));
    let o = through(&kit, "/orders/1", &refs(&h));
    assert!(o.forwarded());
    assert_eq!(o.stream.upstream("x-ca-app-id").as_deref(), Some("10001"));
    assert_eq!(o.stream.access_record().unwrap()["errorCode"], "A403IP");
    // Its nonce was not burned: the same request is refused by the plugin again, not as a replay.
    let again = through(&kit, "/orders/1", &refs(&h));
    assert!(again.forwarded());
    assert_eq!(again.stream.access_record().unwrap()["errorCode"], "A403IP");
    assert_eq!(kit.stats.count("report_only_would_refuse.A403IP"), 2);
    assert_eq!(kit.stats.count("report_only_would_refuse.S403NU"), 0);
}

#[test]
fn report_only_still_remembers_the_nonce_of_an_admitted_request() {
    let kit = Kit::new(&config(r#", "reportOnly": true"#, ""), NOW);
    let h = signed("/other", "n-3", SECRET);
    let first = through(&kit, "/other", &refs(&h));
    assert!(first.forwarded());
    assert_eq!(first.stream.access_record().unwrap()["enforced"], true);
    assert!(first.stream.access_record().unwrap().get("errorCode").is_none());
    let replay = through(&kit, "/other", &refs(&h));
    assert!(replay.forwarded());
    assert_eq!(replay.stream.access_record().unwrap()["errorCode"], "S403NU");
    assert_eq!(replay.stream.upstream("x-ca-app-id").as_deref(), Some("10001"), "authenticated: identity kept");
}

#[test]
fn report_only_counts_throttling_and_unknown_apis() {
    let kit = Kit::new(&config(r#", "reportOnly": true"#, ""), NOW);
    for i in 0..3 {
        let h = signed("/limited", &format!("t-{i}"), SECRET);
        assert!(through(&kit, "/limited", &refs(&h)).forwarded());
    }
    assert_eq!(kit.stats.count("report_only_would_refuse.T429PA"), 2, "the app's one request a minute, then two over it");
    let o = through(&kit, "/nowhere", &[]);
    assert!(o.forwarded());
    assert_eq!(o.stream.access_record().unwrap()["errorCode"], "I404NF");
}

#[test]
fn report_only_on_one_api_leaves_the_others_enforced() {
    let kit = Kit::new(&config("", r#", "reportOnly": true"#), NOW);
    let bad = signed("/orders/1", "n-4", "wrong-secret");
    assert!(through(&kit, "/orders/1", &refs(&bad)).forwarded());
    let bad = signed("/other", "n-5", "wrong-secret");
    let o = through(&kit, "/other", &refs(&bad));
    assert_eq!((o.status(), o.code().as_deref()), (403, Some("A403IS")));
    let o = through(&kit, "/nowhere", &[]);
    assert_eq!(o.code().as_deref(), Some("I404NF"), "no API: the gateway-wide setting decides");
}

fn classic_kit() -> Kit {
    Kit::new(&config(r#", "errorContract": "CLASSIC""#, ""), NOW)
}

#[test]
fn classic_contract_answers_with_the_classic_table_and_no_code() {
    let kit = classic_kit();
    let bad = signed("/other", "c-1", "wrong-secret");
    let o = kit.get("/other", &refs(&bad));
    assert_eq!(o.status(), 400);
    assert_eq!(o.code(), None);
    let message = o.message().unwrap();
    assert!(
        message.starts_with("Invalid Signature, Server StringToSign:GET\n") || message.starts_with("Invalid Signature, Server StringToSign:GET"),
        "{message}"
    );
    assert!(!message.contains('`'));
    assert!(o.reply_header("x-ca-request-id").is_some());

    let good = signed("/other", "c-2", SECRET);
    assert!(kit.get("/other", &refs(&good)).forwarded());
    let o = kit.get("/other", &refs(&good));
    assert_eq!((o.status(), o.message().as_deref()), (400, Some("Nonce Used")));

    // Aliyun's classic gateway answers a method, path or stage that matches no API with "Invalid Url".
    let o = kit.get("/nowhere", &[]);
    assert_eq!((o.status(), o.message().as_deref()), (400, Some("Invalid Url")));

    let mut unsigned = signed("/other", "c-3", SECRET);
    unsigned.retain(|(n, _)| *n != "x-ca-signature");
    let o = kit.get("/other", &refs(&unsigned));
    assert_eq!((o.status(), o.message().as_deref()), (401, Some("Empty Signature")));

    let o = kit.get("/other", &[("x-ca-key", "nobody")]);
    assert_eq!((o.status(), o.message().as_deref()), (400, Some("Invalid AppKey")));
}

#[test]
fn classic_contract_refuses_a_digest_of_an_empty_body() {
    // The classic table: "the body is empty but an MD5 was sent, or the MD5 is wrong".
    let kit = classic_kit();
    let mut h = signed("/other", "m-1", SECRET);
    h.push(("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==".to_string())); // md5("")
    let o = kit.get("/other", &refs(&h));
    assert_eq!((o.status(), o.message().as_deref()), (400, Some("Invalid Content-MD5")));
    let vpc = Kit::new(&config("", ""), NOW);
    let block = format!("x-ca-key:{KEY}\nx-ca-nonce:m-2\nx-ca-timestamp:{NOW}\n");
    let sts = format!("GET\n\n1B2M2Y8AsgTpgAmY7PhCfg==\n\n\n{block}/other");
    let mut h = signed("/other", "m-2", SECRET);
    h.retain(|(n, _)| *n != "x-ca-signature");
    h.push(("x-ca-signature", sign(Algorithm::HmacSha256, SECRET.as_bytes(), sts.as_bytes())));
    h.push(("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==".to_string()));
    assert!(vpc.get("/other", &refs(&h)).forwarded(), "the VPC table refuses only a digest that does not match");
    let mut h = signed("/other", "m-3", SECRET);
    h.push(("content-md5", String::new()));
    assert!(kit.get("/other", &refs(&h)).forwarded(), "an empty value is no digest");
}

#[test]
fn classic_contract_names_the_throttled_dimension() {
    let kit = classic_kit();
    let first = signed("/limited", "d-1", SECRET);
    assert!(kit.get("/limited", &refs(&first)).forwarded());
    let second = signed("/limited", "d-2", SECRET);
    let o = kit.get("/limited", &refs(&second));
    assert_eq!((o.status(), o.message().as_deref()), (403, Some("Throttled by APP Flow Control")));
    assert_eq!(o.code(), None);
}

#[test]
fn an_unknown_contract_is_refused_with_its_path() {
    let err = cagate_core::compile(config(r#", "errorContract": "INTRANET""#, "").as_bytes()).unwrap_err();
    assert!(err.iter().any(|p| p.path == "errorContract" && p.message.contains("VPC or CLASSIC")), "{err:?}");
    let err = cagate_core::compile(config(r#", "reportOnly": "yes""#, "").as_bytes()).unwrap_err();
    assert!(err.iter().any(|p| p.path == "reportOnly"), "{err:?}");
}

#[test]
fn report_only_routes_a_request_it_would_refuse_to_the_apis_backend() {
    // Found trying the migration guide: without the gateway's backend routing, Envoy's route for an
    // imported API (by the gateway's cluster header) had no backend for it.
    let cfg = format!(
        r#"{{ "reportOnly": true, "apps": [ {{ "appId": 10001, "appKey": "{KEY}", "appSecret": "{SECRET}" }} ],
        "apis": [ {{ "name": "getOrder", "method": "GET", "path": "/orders/[orderId]", "authorizations": [ {{ "appId": 10001 }} ],
                    "backend": {{ "type": "HTTP", "cluster": "orders-prod", "path": "/v1/orders/[orderId]" }} }} ] }}"#
    );
    let kit = Kit::new(&cfg, NOW);
    let bad = signed("/orders/42", "r-1", "wrong-secret");
    let mut h = refs(&bad);
    h.push(("x-cagate-cluster", "evil"));
    let o = through(&kit, "/orders/42", &h);
    assert!(o.forwarded());
    assert_eq!(o.stream.upstream("x-cagate-cluster").as_deref(), Some("orders-prod"));
    assert_eq!(o.stream.upstream(":path").as_deref(), Some("/v1/orders/42"));
    let record = o.stream.access_record().unwrap();
    assert_eq!((record["errorCode"].as_str(), record["backendPath"].as_str()), (Some("A403IS"), Some("/v1/orders/42")));
}
