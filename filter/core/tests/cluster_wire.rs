#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Cluster mode's messages against Envoy's generated protobuf types (crates.io `envoy-types`): the RLS
//! request cagate writes decodes as Envoy's `RateLimitRequest`, and Envoy's `RateLimitResponse` reads
//! back as the verdict it means.

use cagate_core::{authenticate, compile, rate_limit_call, rate_limit_verdict, route, run_plugins, Admission, Ctx};
use cagate_core::{FixedClock, Gateway, Headers, MemoryStore, NoStream, NonceStore, Request, Runtime};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{Code, DescriptorStatus, RateLimit};
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use envoy_types::pb::google::protobuf::Duration;
use prost::Message;
use serde_json::json;

fn admitted(rate_limit_headers: bool) -> (Gateway, Admission) {
    let cfg = json!({
        "cluster": { "rateLimitService": { "grpcCluster": "ratelimit", "domain": "cagate", "timeoutMs": 50 } },
        "apps": [ { "appId": 10001, "appKey": "k", "appSecret": "s", "appCodes": ["C"], "ownerId": "o-1" } ],
        "plugins": [ { "name": "lim", "type": "trafficControl", "data": {
            "unit": "MINUTE", "apiDefault": 100, "userDefault": 50, "appDefault": 20, "rateLimitHeaders": rate_limit_headers } } ],
        "apis": [ { "name": "orders", "method": "GET", "path": "/orders", "appCodeAuth": "HEADER",
                    "authorizations": [ { "appId": 10001 } ], "plugins": [ { "plugin": "lim" } ] } ]
    });
    let gw = compile(cfg.to_string().as_bytes()).unwrap();
    let store = MemoryStore::new();
    let h = Headers::from_pairs(vec![(b"authorization", b"APPCODE C")]);
    let req = Request { method: b"GET", path: b"/orders", headers: &h };
    let routed = route(&gw, &req).unwrap();
    let id = authenticate(&gw, &NonceStore::new(gw.nonce_store), &req, &routed, None, &FixedClock(0), &store).unwrap();
    let mut rt = Runtime::new(&gw.plugins, (0, 0));
    let ctx = Ctx { request_id: "R", body: None, stream: &NoStream, coarse: &FixedClock(0) };
    let a = run_plugins(&gw, &mut rt, &req, id, &FixedClock(0), &store, &ctx).unwrap();
    assert_eq!(store.key_count(), 0, "the rate limit service counts, not the local store");
    (gw, a)
}

#[test]
fn request_decodes_as_envoys_rate_limit_request() {
    let (gw, a) = admitted(false);
    let call = rate_limit_call(&gw, &a).unwrap();
    assert_eq!((call.service, call.method), ("envoy.service.ratelimit.v3.RateLimitService", "ShouldRateLimit"));
    assert_eq!(call.upstream, b"\x0a\x0b\x0a\x09ratelimit", "a serialized GrpcService naming the cluster");
    let req = RateLimitRequest::decode(call.message.as_slice()).unwrap();
    assert_eq!(req.domain, "cagate");
    type Shown = (Vec<(String, String)>, u32, i32);
    let shown: Vec<Shown> = req
        .descriptors
        .iter()
        .map(|d| {
            let l = d.limit.unwrap();
            (d.entries.iter().map(|e| (e.key.clone(), e.value.clone())).collect(), l.requests_per_unit, l.unit)
        })
        .collect();
    let e = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
    assert_eq!(
        shown,
        vec![
            (e(&[("cagate_plugin", "lim"), ("cagate_api", "orders"), ("cagate_app", "10001")]), 20, 2),
            (e(&[("cagate_plugin", "lim"), ("cagate_api", "orders"), ("cagate_user", "o-1")]), 50, 2),
            (e(&[("cagate_plugin", "lim"), ("cagate_api", "orders")]), 100, 2),
        ],
        "one descriptor per dimension, most specific first, each with the plugin's limit (MINUTE = 2)"
    );
}

fn status(code: Code, limit: u32, remaining: u32, reset_s: i64) -> DescriptorStatus {
    DescriptorStatus {
        code: code as i32,
        current_limit: Some(RateLimit { requests_per_unit: limit, unit: 2, ..Default::default() }),
        limit_remaining: remaining,
        duration_until_reset: Some(Duration { seconds: reset_s, nanos: 0 }),
        ..Default::default()
    }
}

#[test]
fn envoys_response_reads_back_as_the_verdict() {
    let (gw, a) = admitted(true);
    let ok = RateLimitResponse {
        overall_code: Code::Ok as i32,
        statuses: vec![status(Code::Ok, 20, 7, 31), status(Code::Ok, 50, 3, 31), status(Code::Ok, 100, 60, 31)],
        ..Default::default()
    };
    let q = rate_limit_verdict(&gw, &a, Some(&ok.encode_to_vec())).unwrap().unwrap();
    assert_eq!((q.limit, q.remaining, q.reset_s), (50, 3, 31), "the tightest dimension");
    let over = RateLimitResponse {
        overall_code: Code::OverLimit as i32,
        statuses: vec![status(Code::Ok, 20, 7, 31), status(Code::OverLimit, 50, 0, 12), status(Code::Ok, 100, 60, 31)],
        ..Default::default()
    };
    let r = rate_limit_verdict(&gw, &a, Some(&over.encode_to_vec())).unwrap_err();
    assert_eq!(r.error.code, "T429PA");
    assert_eq!(r.message, "Throttled by API Flow Control: USER limit 50 per MINUTE");
    assert!(r.headers.contains(&("retry-after".into(), "12".to_string())));
    let r = rate_limit_verdict(&gw, &a, None).unwrap_err();
    assert_eq!(r.error.code, "X503BZ", "no answer and failOpen false");
    let unknown = RateLimitResponse { overall_code: Code::Unknown as i32, ..Default::default() };
    assert_eq!(rate_limit_verdict(&gw, &a, Some(&unknown.encode_to_vec())).unwrap_err().error.code, "X503BZ");
}
