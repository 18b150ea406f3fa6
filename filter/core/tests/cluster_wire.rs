#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Cluster mode's messages against Envoy's generated protobuf types (crates.io `envoy-types`): the RLS
//! request cagate writes decodes as Envoy's `RateLimitRequest`, and Envoy's `RateLimitResponse` reads
//! back as the verdict it means.

use cagate_core::testkit::{Kit, Outcome};
use cagate_core::{Answer, GrpcCall, SharedStore};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{Code, DescriptorStatus, RateLimit};
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use envoy_types::pb::google::protobuf::Duration;
use prost::Message;
use serde_json::json;

fn kit(rate_limit_headers: bool) -> Kit {
    let cfg = json!({
        "cluster": { "rateLimitService": { "grpcCluster": "ratelimit", "domain": "cagate", "timeoutMs": 50 } },
        "apps": [ { "appId": 10001, "appKey": "k", "appSecret": "s", "appCodes": ["C"], "ownerId": "o-1" } ],
        "plugins": [ { "name": "lim", "type": "trafficControl", "data": {
            "unit": "MINUTE", "apiDefault": 100, "userDefault": 50, "appDefault": 20, "rateLimitHeaders": rate_limit_headers } } ],
        "apis": [ { "name": "orders", "method": "GET", "path": "/orders", "appCodeAuth": "HEADER",
                    "authorizations": [ { "appId": 10001 } ], "plugins": [ { "plugin": "lim" } ] } ]
    });
    Kit::new(&cfg.to_string(), 0)
}

/// An admitted request held for the rate limit service's answer, and the call the engine sent it.
fn admitted(kit: &Kit) -> (Outcome, u32, GrpcCall) {
    let counter = |dim: &str| kit.store.get(&format!("cagate.rl.lim.orders.RELEASE.{dim}")).map(|(v, _)| v);
    let before = (kit.store.key_count(), counter("API.-"));
    let o = kit.get("/orders", &[("authorization", "APPCODE C")]);
    assert!(!o.forwarded() && o.reply().is_none(), "held for the rate limit service: {:?}", o.reply());
    assert_eq!((kit.store.key_count(), counter("API.-")), before, "the rate limit service counts, not the local store");
    let (token, call) = o.stream.calls.borrow().first().cloned().expect("a rate limit call");
    (o, token, call)
}

#[test]
fn request_decodes_as_envoys_rate_limit_request() {
    let (_, _, call) = admitted(&kit(false));
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
            (e(&[("cagate_plugin", "lim"), ("cagate_api", "orders"), ("cagate_stage", "RELEASE"), ("cagate_app", "10001")]), 20, 2),
            (e(&[("cagate_plugin", "lim"), ("cagate_api", "orders"), ("cagate_stage", "RELEASE"), ("cagate_user", "o-1")]), 50, 2),
            (e(&[("cagate_plugin", "lim"), ("cagate_api", "orders"), ("cagate_stage", "RELEASE")]), 100, 2),
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
    let kit = kit(true);
    let ok = RateLimitResponse {
        overall_code: Code::Ok as i32,
        statuses: vec![status(Code::Ok, 20, 7, 31), status(Code::Ok, 50, 3, 31), status(Code::Ok, 100, 60, 31)],
        ..Default::default()
    };
    let (mut o, token, _) = admitted(&kit);
    kit.answer(&mut o, token, &Answer::Ok(ok.encode_to_vec()));
    assert!(o.forwarded(), "{:?}", o.reply());
    kit.respond(&mut o, 200, &[], "via_upstream", b"");
    let q: Vec<Option<String>> = ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"].iter().map(|h| o.stream.response_header(h)).collect();
    assert_eq!(q, [Some("50".to_string()), Some("3".to_string()), Some("31".to_string())], "the tightest dimension");
    let over = RateLimitResponse {
        overall_code: Code::OverLimit as i32,
        statuses: vec![status(Code::Ok, 20, 7, 31), status(Code::OverLimit, 50, 0, 12), status(Code::Ok, 100, 60, 31)],
        ..Default::default()
    };
    let verdict = |answer: Answer| {
        let (mut o, token, _) = admitted(&kit);
        kit.answer(&mut o, token, &answer);
        o
    };
    let r = verdict(Answer::Ok(over.encode_to_vec()));
    assert_eq!(r.code().as_deref(), Some("T429PA"));
    assert_eq!(r.message().unwrap(), "Throttled by API Flow Control: USER limit 50 per MINUTE");
    assert_eq!(r.reply_header("retry-after").as_deref(), Some("12"));
    let r = verdict(Answer::Timeout);
    assert_eq!(r.code().as_deref(), Some("X503BZ"), "no answer and failOpen false");
    let unknown = RateLimitResponse { overall_code: Code::Unknown as i32, ..Default::default() };
    assert_eq!(verdict(Answer::Ok(unknown.encode_to_vec())).code().as_deref(), Some("X503BZ"));
}
