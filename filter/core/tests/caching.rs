#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The caching plugin natively: a miss then a hit (a local reply with the kept headers, the body,
//! `X-Ca-Caching: true` and the request's own id), the key's vary parts (app, query parameters,
//! headers, the path), a refused request never answered from the cache, `only-if-cached` and
//! `I404CH`, the backend's and the client's `Cache-Control`, expiry, only the backend's own 200s
//! stored, a body copied frame by frame and the per-entry bound, and what the configuration refuses.

use cagate_core::compile;
use cagate_core::testkit::{Call, Kit, Outcome};
use cagate_core::Flow;
use serde_json::{json, Value};

const NOW: i64 = 1_700_000_306_000;

fn config(caching: Value, traffic: Option<Value>) -> Value {
    let mut plugins = vec![json!({ "name": "cache", "type": "caching", "data": caching })];
    let mut bound = vec![json!({ "plugin": "cache" })];
    if let Some(t) = traffic {
        plugins.push(json!({ "name": "limits", "type": "trafficControl", "data": t }));
        bound.push(json!({ "plugin": "limits" }));
    }
    json!({
        "apps": [ { "appId": 10001, "appKey": "k1", "appSecret": "test-app-secret-1-0123456789abcdef", "appCodes": ["CODE1"] },
                  { "appId": 10002, "appKey": "k2", "appSecret": "test-app-secret-2-0123456789abcdef", "appCodes": ["CODE2"] } ],
        "plugins": plugins,
        "apis": [
            { "name": "items", "method": "ANY", "path": "/items/[id]", "appCodeAuth": "HEADER",
              "authorizations": [ { "appId": 10001 }, { "appId": 10002 } ],
              "plugins": bound },
            { "name": "plain", "method": "GET", "path": "/plain", "authType": "ANONYMOUS" }
        ]
    })
}

fn kit(caching: Value) -> Kit {
    Kit::new(&config(caching, None).to_string(), NOW)
}

fn get(kit: &Kit, path: &str, code: &str, extra: &[(&str, &str)]) -> Outcome {
    let auth = format!("APPCODE {code}");
    let mut headers: Vec<(&str, &str)> = vec![("authorization", auth.as_str())];
    headers.extend_from_slice(extra);
    kit.send(&Call { method: "GET", path, headers: &headers, ..Call::default() })
}

/// A request that reaches the backend, and the backend's 200 with `body` and `headers`.
fn miss(kit: &Kit, path: &str, code: &str, extra: &[(&str, &str)], headers: &[(&str, &str)], body: &str) -> Outcome {
    let mut o = get(kit, path, code, extra);
    assert!(o.forwarded(), "expected a miss that reaches the backend: {:?}", o.reply());
    kit.respond(&mut o, 200, headers, "via_upstream", body.as_bytes());
    o
}

fn hit_body(o: &Outcome) -> String {
    let r = o.reply().unwrap_or_else(|| panic!("expected an answer from the cache, the request was forwarded"));
    assert_eq!(r.status, 200);
    assert_eq!(o.reply_header("x-ca-caching").as_deref(), Some("true"));
    String::from_utf8(r.body).unwrap()
}

const JSON: &[(&str, &str)] = &[("content-type", "application/json"), ("x-backend-secret", "s3"), ("content-language", "en")];

#[test]
fn a_miss_is_stored_and_the_next_request_is_answered_from_the_cache() {
    let kit = kit(json!({ "duration": 60 }));
    let first = miss(&kit, "/items/7", "CODE1", &[], JSON, r#"{"n":1}"#);
    assert_eq!(first.stream.response_header("x-ca-caching"), None, "a miss carries no marker");
    let rid = kit.next_request_id();
    let o = get(&kit, "/items/7", "CODE1", &[]);
    assert_eq!(hit_body(&o), r#"{"n":1}"#);
    assert_eq!(o.reply_header("content-type").as_deref(), Some("application/json"), "a default cacheable header");
    assert_eq!(o.reply_header("content-language").as_deref(), Some("en"));
    assert_eq!(o.reply_header("x-backend-secret"), None, "not listed in cacheableHeaders: dropped");
    assert_eq!(o.reply_header("x-ca-request-id"), Some(rid), "the hit's own request id");
    assert_eq!(o.code(), None);
    assert_eq!((kit.stats.count("caching.miss"), kit.stats.count("caching.stored"), kit.stats.count("caching.hit")), (1, 1, 1));
    assert_eq!(kit.stats.count("requests.items.RELEASE.OK"), 2, "the hit is counted as an allowed request");
    // Another resource of the same API is another entry.
    assert!(get(&kit, "/items/8", "CODE1", &[]).forwarded());
}

#[test]
fn cacheable_headers_are_kept_and_the_gateways_own_are_refused() {
    let kit = kit(json!({ "cacheableHeaders": ["X-Backend-Secret"] }));
    miss(&kit, "/items/7", "CODE1", &[], JSON, "b");
    let o = get(&kit, "/items/7", "CODE1", &[]);
    assert_eq!(hit_body(&o), "b");
    assert_eq!(o.reply_header("x-backend-secret").as_deref(), Some("s3"));
}

#[test]
fn vary_by_app_separates_apps_and_without_it_apps_share() {
    let kit = kit(json!({ "varyByApp": true }));
    miss(&kit, "/items/7", "CODE1", &[], JSON, "for app 1");
    assert!(get(&kit, "/items/7", "CODE2", &[]).forwarded(), "another app: its own entry");
    assert_eq!(hit_body(&get(&kit, "/items/7", "CODE1", &[])), "for app 1");

    let shared = self::kit(json!({}));
    miss(&shared, "/items/7", "CODE1", &[], JSON, "shared");
    assert_eq!(hit_body(&get(&shared, "/items/7", "CODE2", &[])), "shared");
}

#[test]
fn vary_by_parameters_and_headers() {
    let kit = kit(json!({ "varyByParameters": ["page"], "varyByHeaders": ["Accept"] }));
    miss(&kit, "/items/7?page=1&junk=1", "CODE1", &[("accept", "text/plain")], JSON, "page 1 text");
    assert_eq!(
        hit_body(&get(&kit, "/items/7?junk=2&page=1", "CODE1", &[("accept", "text/plain")])),
        "page 1 text",
        "an unlisted parameter is not in the key"
    );
    assert!(get(&kit, "/items/7?page=2", "CODE1", &[("accept", "text/plain")]).forwarded(), "another page");
    assert!(get(&kit, "/items/7?page=1", "CODE1", &[("accept", "application/json")]).forwarded(), "another Accept");
    assert!(get(&kit, "/items/7?page=1", "CODE1", &[]).forwarded(), "no Accept is not an empty one");
    assert!(get(&kit, "/items/7", "CODE1", &[("accept", "text/plain")]).forwarded(), "no page");
}

#[test]
fn a_request_the_gateway_refuses_never_gets_the_cached_answer() {
    let kit = Kit::new(&config(json!({}), Some(json!({ "unit": "MINUTE", "apiDefault": 3 }))).to_string(), NOW);
    miss(&kit, "/items/7", "CODE1", &[], JSON, "cached");
    let wrong = get(&kit, "/items/7", "WRONG", &[]);
    assert_eq!(wrong.code().as_deref(), Some("A400AC"), "{:?}", wrong.reply());
    assert!(!String::from_utf8_lossy(&wrong.reply().unwrap().body).contains("cached"));
    let anonymous = kit.get("/items/7", &[]);
    assert!(anonymous.reply().is_some_and(|r| r.status >= 400 && !String::from_utf8_lossy(&r.body).contains("cached")));
    assert_eq!(hit_body(&get(&kit, "/items/7", "CODE1", &[])), "cached");
    assert_eq!(hit_body(&get(&kit, "/items/7", "CODE1", &[])), "cached");
    // The fourth admitted request of the minute is throttled, cached answer or not.
    let throttled = get(&kit, "/items/7", "CODE1", &[]);
    assert_eq!(throttled.code().as_deref(), Some("T429PA"));
    assert_eq!(kit.stats.count("caching.hit"), 2);
}

#[test]
fn rate_limit_headers_are_the_hits_own() {
    let kit = Kit::new(&config(json!({}), Some(json!({ "unit": "MINUTE", "apiDefault": 5, "rateLimitHeaders": true }))).to_string(), NOW);
    miss(&kit, "/items/7", "CODE1", &[], JSON, "cached");
    let o = get(&kit, "/items/7", "CODE1", &[]);
    assert_eq!(hit_body(&o), "cached");
    assert_eq!(o.reply_header("ratelimit-remaining").as_deref(), Some("3"));
}

#[test]
fn only_if_cached_with_nothing_cached_is_i404ch() {
    let kit = kit(json!({ "clientCacheControl": { "mode": "all" } }));
    let o = get(&kit, "/items/7", "CODE1", &[("cache-control", "only-if-cached")]);
    assert_eq!(o.status(), 404);
    assert_eq!(o.code().as_deref(), Some("I404CH"));
    assert_eq!(kit.stats.count("refused.I404CH"), 1);
    miss(&kit, "/items/7", "CODE1", &[], JSON, "now cached");
    assert_eq!(hit_body(&get(&kit, "/items/7", "CODE1", &[("cache-control", "only-if-cached")])), "now cached");
}

#[test]
fn client_cache_control_is_honoured_only_for_the_apps_listed() {
    let kit = kit(json!({ "clientCacheControl": { "mode": "app", "apps": [10001] } }));
    // App 10002 is not listed: its only-if-cached is ignored, its request goes on.
    assert!(get(&kit, "/items/7", "CODE2", &[("cache-control", "only-if-cached")]).forwarded());
    assert_eq!(get(&kit, "/items/7", "CODE1", &[("cache-control", "only-if-cached")]).code().as_deref(), Some("I404CH"));
    miss(&kit, "/items/7", "CODE1", &[], JSON, "old");
    // no-cache from a listed app: a fresh answer, which replaces the cached one.
    miss(&kit, "/items/7", "CODE1", &[("cache-control", "no-cache")], JSON, "new");
    assert_eq!(hit_body(&get(&kit, "/items/7", "CODE2", &[("cache-control", "no-cache")])), "new", "not listed: no-cache ignored");
    // no-store: fresh, and not stored.
    miss(&kit, "/items/7", "CODE1", &[("cache-control", "no-store")], JSON, "private");
    assert_eq!(hit_body(&get(&kit, "/items/7", "CODE1", &[])), "new");

    let off = self::kit(json!({}));
    assert!(get(&off, "/items/7", "CODE1", &[("cache-control", "only-if-cached")]).forwarded(), "mode off by default");
}

#[test]
fn the_backends_cache_control_is_obeyed() {
    for cc in ["no-store", "private", "no-cache", "max-age=0"] {
        let kit = kit(json!({ "duration": 60 }));
        miss(&kit, "/items/7", "CODE1", &[], &[("cache-control", cc)], "x");
        assert!(get(&kit, "/items/7", "CODE1", &[]).forwarded(), "{cc}: not stored");
    }
    let kit = kit(json!({ "duration": 60 }));
    miss(&kit, "/items/7", "CODE1", &[], &[("cache-control", "public, max-age=5")], "short");
    kit.clock.0.set(NOW + 4_000);
    assert_eq!(hit_body(&get(&kit, "/items/7", "CODE1", &[])), "short");
    kit.clock.0.set(NOW + 5_000);
    assert!(get(&kit, "/items/7", "CODE1", &[]).forwarded(), "max-age shortened the plugin's 60 s");
}

#[test]
fn an_entry_expires_after_duration() {
    let kit = kit(json!({ "duration": 1 }));
    miss(&kit, "/items/7", "CODE1", &[], JSON, "one");
    kit.clock.0.set(NOW + 999);
    assert_eq!(hit_body(&get(&kit, "/items/7", "CODE1", &[])), "one");
    kit.clock.0.set(NOW + 1_000);
    miss(&kit, "/items/7", "CODE1", &[], JSON, "two");
    assert_eq!(hit_body(&get(&kit, "/items/7", "CODE1", &[])), "two");
}

#[test]
fn only_the_backends_own_200s_are_stored() {
    let kit = kit(json!({}));
    for (status, details) in [(500, "via_upstream"), (404, "via_upstream"), (201, "via_upstream"), (200, "direct_response")] {
        let mut o = get(&kit, "/items/7", "CODE1", &[]);
        kit.respond(&mut o, status, JSON, details, b"not kept");
        assert!(get(&kit, "/items/7", "CODE1", &[]).forwarded(), "{status} {details} was stored");
    }
    // Envoy's own answer for a failed backend (the gateway's D5xx) is never stored.
    let mut o = get(&kit, "/items/7", "CODE1", &[]);
    kit.respond(&mut o, 503, &[("content-type", "text/plain")], "upstream_reset_before_response_started{connection_failure}", b"no healthy upstream");
    assert!(get(&kit, "/items/7", "CODE1", &[]).forwarded());
    assert_eq!(kit.stats.count("caching.stored"), 0);
}

#[test]
fn only_get_is_cached() {
    let kit = kit(json!({}));
    for method in ["POST", "HEAD", "DELETE"] {
        let mut o = kit.send(&Call { method, path: "/items/7", headers: &[("authorization", "APPCODE CODE1")], ..Call::default() });
        assert!(o.forwarded());
        kit.respond(&mut o, 200, JSON, "via_upstream", b"x");
    }
    assert!(get(&kit, "/items/7", "CODE1", &[]).forwarded());
    assert_eq!(kit.stats.count("caching.stored"), 0);
}

#[test]
fn a_body_is_copied_frame_by_frame_and_never_held() {
    let kit = kit(json!({}));
    let mut o = get(&kit, "/items/7", "CODE1", &[]);
    let svc = kit.services();
    *o.stream.response.borrow_mut() = vec![(":status".into(), b"200".to_vec()), ("content-type".into(), b"text/plain".to_vec())];
    o.stream.details = b"via_upstream".to_vec();
    assert_eq!(o.exchange.on_response_headers(&kit.engine, &svc, &o.stream, false), Flow::Continue);
    for (frame, last) in [("hello ", false), ("cached ", false), ("world", true)] {
        // The host's buffer is this frame alone: the filter lets each one go on.
        *o.stream.response_body.borrow_mut() = frame.as_bytes().to_vec();
        assert_eq!(o.exchange.on_response_body(&kit.engine, &svc, &o.stream, frame.len(), last), Flow::Continue);
    }
    assert_eq!(hit_body(&get(&kit, "/items/7", "CODE1", &[])), "hello cached world");
}

#[test]
fn a_body_over_the_entry_bound_streams_through_and_is_not_stored() {
    let kit = kit(json!({}));
    let big = "a".repeat(1024 * 1024 + 1);
    let mut o = get(&kit, "/items/7", "CODE1", &[]);
    let len = big.len().to_string();
    assert_eq!(kit.respond(&mut o, 200, &[("content-length", len.as_str())], "via_upstream", big.as_bytes()), Flow::Continue);
    assert!(get(&kit, "/items/7", "CODE1", &[]).forwarded(), "announced over the bound");
    // Unannounced (chunked): the copy stops at the bound.
    let mut o = get(&kit, "/items/7", "CODE1", &[]);
    assert_eq!(kit.respond(&mut o, 200, &[], "via_upstream", big.as_bytes()), Flow::Continue);
    assert!(get(&kit, "/items/7", "CODE1", &[]).forwarded());
    let small = "a".repeat(1024 * 1024);
    let mut o = get(&kit, "/items/7", "CODE1", &[]);
    kit.respond(&mut o, 200, &[], "via_upstream", small.as_bytes());
    assert_eq!(hit_body(&get(&kit, "/items/7", "CODE1", &[])).len(), small.len(), "exactly the bound is kept");
}

#[test]
fn an_unbound_api_is_untouched() {
    let kit = kit(json!({}));
    let mut o = kit.get("/plain", &[]);
    kit.respond(&mut o, 200, JSON, "via_upstream", b"x");
    assert!(kit.get("/plain", &[]).forwarded());
    assert_eq!(kit.stats.count("caching.miss") + kit.stats.count("caching.stored"), 0);
}

fn problems(caching: Value) -> Vec<String> {
    let cfg = config(caching, None);
    match compile(cfg.to_string().as_bytes()) {
        Ok(_) => vec![],
        Err(p) => p.iter().map(|p| p.to_string()).collect(),
    }
}

#[test]
fn the_configuration_is_validated_with_paths() {
    let at = "plugins[0].data (plugin cache)";
    let p = problems(json!({ "duration": 172_801 }));
    assert!(p.iter().any(|m| m.contains(&format!("{at}.duration")) && m.contains("from 1 to 172800")), "{p:?}");
    assert!(problems(json!({ "duration": 172_800 })).is_empty());
    let p = problems(json!({ "varyByCookie": true }));
    assert!(p.iter().any(|m| m.contains(at) && m.contains("varyByCookie")), "{p:?}");
    let p = problems(json!({ "clientCacheControl": { "mode": "some", "extra": 1 } }));
    assert!(p.iter().any(|m| m.contains(&format!("{at}.clientCacheControl.mode")) && m.contains("off, all, app or apps")), "{p:?}");
    assert!(p.iter().any(|m| m.contains("extra")), "{p:?}");
    let p = problems(json!({ "clientCacheControl": { "mode": "apps" } }));
    assert!(p.iter().any(|m| m.contains(&format!("{at}.clientCacheControl.apps")) && m.contains("at least one")), "{p:?}");
    let p = problems(json!({ "cacheableHeaders": ["Content-Type", "X-Ca-Request-Id", "Transfer-Encoding", "bad header"] }));
    assert!(p.iter().any(|m| m.contains(&format!("{at}.cacheableHeaders[1]")) && m.contains("never kept")), "{p:?}");
    assert!(p.iter().any(|m| m.contains(&format!("{at}.cacheableHeaders[2]"))), "{p:?}");
    assert!(p.iter().any(|m| m.contains(&format!("{at}.cacheableHeaders[3]")) && m.contains("not a header name")), "{p:?}");
    let p = problems(json!({ "cacheableHeaders": ["Set-Cookie"] }));
    assert!(p.iter().any(|m| m.contains(&format!("{at}.cacheableHeaders[0]")) && m.contains("never kept")), "{p:?}");
    let p = problems(json!({ "varyByApp": "yes", "varyByHeaders": "Accept" }));
    assert!(p.iter().any(|m| m.contains(&format!("{at}.varyByApp"))), "{p:?}");
    assert!(p.iter().any(|m| m.contains(&format!("{at}.varyByHeaders")) && m.contains("array")), "{p:?}");
    // Aliyun's own template, as YAML text.
    let aliyun = "varyByApp: false\nvaryByParameters:\n- userId\nvaryByHeaders:\n- Accept\nclientCacheControl:\n  mode: \"app\"\n  apps:\n  - 10001\ncacheableHeaders:\n- X-Customer-Token\nduration: 3600\n";
    assert!(problems(Value::String(aliyun.into())).is_empty());
}

/// errorMapping reads the body (it holds it until the end): an answer it maps is not stored, one it
/// leaves alone is, read whole when released.
#[test]
fn an_answer_error_mapping_changed_is_not_stored() {
    let cfg = json!({
        "apps": [ { "appId": 10001, "appKey": "k1", "appSecret": "test-app-secret-1-0123456789abcdef", "appCodes": ["CODE1"] } ],
        "plugins": [ { "name": "cache", "type": "caching", "data": {} },
                     { "name": "map", "type": "errorMapping", "data": {
                         "parameters": { "st": "StatusCode", "rc": "BodyJsonField:$.result_code" },
                         "errorCondition": "$st = 200 and $rc <> 'OK'", "defaultMapping": { "statusCode": 502 } } } ],
        "apis": [ { "name": "items", "method": "GET", "path": "/items/[id]", "appCodeAuth": "HEADER",
                    "authorizations": [ { "appId": 10001 } ], "plugins": [ { "plugin": "cache" }, { "plugin": "map" } ] } ]
    });
    let kit = Kit::new(&cfg.to_string(), NOW);
    let json_ct: &[(&str, &str)] = &[("content-type", "application/json")];
    miss(&kit, "/items/1", "CODE1", &[], json_ct, r#"{"result_code":"BAD"}"#);
    assert!(get(&kit, "/items/1", "CODE1", &[]).forwarded(), "mapped to 502: not stored");
    miss(&kit, "/items/2", "CODE1", &[], json_ct, r#"{"result_code":"OK"}"#);
    assert_eq!(hit_body(&get(&kit, "/items/2", "CODE1", &[])), r#"{"result_code":"OK"}"#);
}

/// A token for `sub`, HS256 with the test key.
fn token(sub: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#), URL_SAFE_NO_PAD.encode(json!({ "sub": sub }).to_string()));
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(b"caching-test-jwt-key-0123456789abcdef").unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

#[test]
fn an_answer_is_cached_for_the_identity_the_gateway_forwards() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let jwk = json!({ "kty": "oct", "alg": "HS256", "k": URL_SAFE_NO_PAD.encode(b"caching-test-jwt-key-0123456789abcdef") });
    let cfg = json!({
        "plugins": [ { "name": "cache", "type": "caching", "data": { "duration": 60, "varyByHeaders": ["X-User-Id"] } },
                     { "name": "jwt", "type": "jwtAuth", "data": { "parameter": "Authorization", "jwks": [ jwk ],
                       "claimParameters": [ { "claimName": "sub", "parameterName": "X-User-Id", "location": "header" } ] } } ],
        "apis": [ { "name": "me", "method": "GET", "path": "/me", "authType": "ANONYMOUS", "plugins": [ { "plugin": "cache" }, { "plugin": "jwt" } ] } ]
    });
    let kit = Kit::new(&cfg.to_string(), NOW);
    let bearer = |sub: &str| format!("Bearer {}", token(sub));
    let (alice, bob) = (bearer("alice"), bearer("bob"));
    let send = |headers: &[(&str, &str)]| kit.send(&Call { method: "GET", path: "/me", headers, ..Call::default() });
    let mut o = send(&[("authorization", &alice)]);
    assert_eq!(o.stream.upstream("x-user-id").as_deref(), Some("alice"));
    kit.respond(&mut o, 200, &[], "via_upstream", b"alice's");
    assert_eq!(hit_body(&send(&[("authorization", &alice)])), "alice's");
    // Bob, honest or claiming to be alice in the header the gateway sets, reaches the backend as bob.
    for extra in [None, Some("alice")] {
        let mut headers = vec![("authorization", bob.as_str())];
        headers.extend(extra.map(|v| ("x-user-id", v)));
        let o = send(&headers);
        assert!(o.forwarded(), "bob is never answered with alice's entry ({extra:?})");
        assert_eq!(o.stream.upstream("x-user-id").as_deref(), Some("bob"));
    }
}

#[test]
fn a_system_parameter_new_on_every_request_is_not_in_the_key() {
    let cfg = json!({
        "plugins": [ { "name": "cache", "type": "caching", "data": { "duration": 60 } } ],
        "apis": [ { "name": "s", "method": "GET", "path": "/s", "authType": "ANONYMOUS", "plugins": [ { "plugin": "cache" } ],
                    "backend": { "type": "HTTP", "cluster": "c",
                                 "systemParameters": [ { "name": "CaRequestId", "backendName": "X-Sys", "location": "HEADER" },
                                                       { "name": "CaApiName", "backendName": "X-Api", "location": "HEADER" } ] } } ]
    });
    let kit = Kit::new(&cfg.to_string(), NOW);
    let send = || kit.send(&Call { method: "GET", path: "/s", ..Call::default() });
    let mut o = send();
    assert!(o.stream.upstream("x-sys").is_some());
    kit.respond(&mut o, 200, &[], "via_upstream", b"once");
    assert_eq!(hit_body(&send()), "once");
}
