#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! trafficControl and ipControl natively: windows at their edges, the token bucket, specials,
//! validation messages, and real threads hammering the in-memory CAS store.

use cagate_core::errors;
use cagate_core::testkit::{Call, Kit, Outcome};
use cagate_core::traffic_control::{admit, step, TrafficConfig, Unit};
use cagate_core::PluginKind;
use cagate_core::{compile, Gateway};
use cagate_core::{MemoryStore, SharedStore};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const T0: i64 = 1_800_000_000_000; // a whole minute

fn gateway(traffic: Value, extra_plugins: Value, api_plugins: Value) -> Gateway {
    let mut plugins = vec![json!({ "name": "limits", "type": "trafficControl", "data": traffic })];
    plugins.extend(extra_plugins.as_array().cloned().unwrap_or_default());
    let cfg = json!({
        "apps": [ { "appId": 10001, "appKey": "k1", "appSecret": "s1", "appCodes": ["C1"], "ownerId": "owner-a" },
                  { "appId": 10002, "appKey": "k2", "appSecret": "s2", "appCodes": ["C2"], "ownerId": "owner-a" },
                  { "appId": 10003, "appKey": "k3", "appSecret": "s3", "appCodes": ["C3"] } ],
        "plugins": plugins,
        "groupPlugins": [ { "plugin": "limits" } ],
        "apis": [ { "name": "orders", "method": "GET", "path": "/orders", "appCodeAuth": "HEADER",
                    "authorizations": [ { "appId": 10001 }, { "appId": 10002 }, { "appId": 10003 } ], "plugins": api_plugins },
                  { "name": "open", "method": "GET", "path": "/open", "authType": "ANONYMOUS" } ]
    });
    compile(cfg.to_string().as_bytes()).unwrap_or_else(|p| panic!("{p:?}"))
}

fn traffic_cfg(gw: &Gateway) -> &TrafficConfig {
    match &gw.plugins[0].kind {
        PluginKind::Traffic(t) => t,
        _ => panic!(),
    }
}

/// A GET from 192.0.2.10 at `now`, through the engine.
fn call(kit: &Kit, path: &str, headers: &[(&str, &str)], now: i64) -> Outcome {
    kit.clock.0.set(now);
    kit.send(&Call { method: "GET", path, headers, peer: Some("192.0.2.10:40000"), ..Call::default() })
}

/// "OK" for a forwarded request, else the refusal's code.
fn code(o: &Outcome) -> String {
    if o.forwarded() {
        return "OK".into();
    }
    o.code().unwrap_or_else(|| panic!("neither forwarded nor refused: {:?}", o.reply()))
}

/// The client's refusal: its code, status and message.
fn refusal(o: &Outcome) -> (String, u16, String) {
    (code(o), o.status(), o.message().unwrap_or_default())
}

#[test]
fn fixed_window_edges() {
    // the last millisecond of a window and the first of the next
    let end = T0 + 59_999;
    let (v, rem, reset) = step(Unit::Minute, 2, None, end).unwrap();
    assert_eq!((rem, reset), (1, 1));
    let (v, rem, _) = step(Unit::Minute, 2, Some(&v), end).unwrap();
    assert_eq!(rem, 0);
    assert_eq!(step(Unit::Minute, 2, Some(&v), end), Err(1), "full, 1 ms to go");
    let (_, rem, reset) = step(Unit::Minute, 2, Some(&v), T0 + 60_000).unwrap();
    assert_eq!((rem, reset), (1, 60_000), "new window, same key");
    assert_eq!(step(Unit::Hour, 0, None, T0), Err(3_600_000 - (T0 % 3_600_000)), "0: no calls at all");
    let (_, _, reset) = step(Unit::Day, 5, None, T0).unwrap();
    assert_eq!(reset, 86_400_000 - T0 % 86_400_000);
}

#[test]
fn token_bucket_refill() {
    let mut v = None;
    for i in 0..5 {
        let (nv, rem, _) = step(Unit::Second, 5, v.as_ref().map(|x: &[u8; 16]| &x[..]), T0).unwrap();
        assert_eq!(rem, 4 - i);
        v = Some(nv);
    }
    let full = v.unwrap();
    assert_eq!(step(Unit::Second, 5, Some(&full), T0), Err(200), "one token every 200 ms");
    assert_eq!(step(Unit::Second, 5, Some(&full), T0 + 199), Err(1));
    assert!(step(Unit::Second, 5, Some(&full), T0 + 200).is_ok());
    let (_, rem, _) = step(Unit::Second, 5, Some(&full), T0 + 10_000).unwrap();
    assert_eq!(rem, 4, "the bucket holds at most the limit");
}

#[test]
fn token_bucket_at_the_largest_limit_from_a_zeroed_counter() {
    // The engine creates each counter holding zeros (refilled at time 0): the refill since then, at
    // the largest limit a configuration allows, is beyond u64 and must saturate to a full bucket.
    let zeroed = [0u8; 16];
    let (_, rem, _) = step(Unit::Second, 100_000_000, Some(&zeroed), T0).unwrap();
    assert_eq!(rem, 99_999_999);
}

#[test]
fn validation_messages() {
    let bad = json!({
        "apps": [ { "appId": 1, "appKey": "k", "appSecret": "s" } ],
        "plugins": [
            { "name": "a", "type": "trafficControl", "data": "unit: MINUTE\napiDefault: 100\nuserDefault: 10\nappDefault: 50\n" },
            { "name": "b", "type": "trafficControl", "data": { "unit": "WEEK", "apiDefault": 100000001, "blockingMode": "QUICK_RETURN",
                "specials": [ { "type": "APP", "policies": [ { "key": 1, "value": 100000002 } ] }, { "type": "TEAM", "policies": [] } ] } },
            { "name": "c", "type": "trafficControl", "data": { "unit": "SECOND", "apiDefault": 10, "userDefault": 20 } },
            { "name": "d", "type": "ipControl", "data": { "type": "REFUSE", "resource": "XFF:last", "items": [ { "appId": 1, "blocks": ["1.2.3.4/40"] } ] } },
            { "name": "e", "type": "ipControl", "data": { "type": "ALLOW", "items": [ { "appId": 99, "blocks": [] } ] } }
        ],
        "apis": []
    });
    let text: Vec<String> = compile(bad.to_string().as_bytes()).unwrap_err().iter().map(|p| p.to_string()).collect();
    let text = text.join("\n");
    for expected in [
        "plugins[0].data (plugin a).userDefault: InvalidUserDefault: The UserDefault value must bigger than the AppDefault and smaller than the ApiDefault.",
        "plugins[0].data (plugin a).appDefault: InvalidAppDefault: The AppDefault value must smaller than the UserDefault and ApiDefault.",
        "plugins[1].data (plugin b).unit: unknown unit WEEK",
        "plugins[1].data (plugin b).apiDefault: InvalidApiDefault: The ApiDefault value exceeds limit.",
        "plugins[1].data (plugin b).specials[0].policies[0].value: a special (100000002) must not exceed apiDefault",
        "plugins[1].data (plugin b).specials[1].type: unknown special type TEAM",
        "plugins[2].data (plugin c).userDefault: InvalidUserDefault",
        "plugins[3].data (plugin d).resource: must be XFF:N",
        "plugins[3].data (plugin d).items[0].appId: is not allowed with type REFUSE",
        "plugins[3].data (plugin d).items[0].blocks[0]: 1.2.3.4/40 is not an IPv4 or IPv6 address or CIDR block",
        "plugins[4].data (plugin e).items[0].appId: unknown app 99",
        "plugins[4].data (plugin e).items[0].blocks: needs at least one address or block",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    let ok = json!({ "plugins": [ { "name": "t", "type": "trafficControl", "data": { "unit": "DAY", "apiDefault": 5, "controlMode": "x" } } ], "apis": [] });
    let gw = compile(ok.to_string().as_bytes()).unwrap();
    assert!(gw.warnings.iter().any(|w| w.contains("controlMode: accepted but not implemented")), "{:?}", gw.warnings);
}

#[test]
fn specials_replace_defaults_and_dimensions_are_independent() {
    let gw = gateway(
        json!({ "unit": "MINUTE", "apiDefault": 100, "userDefault": 4, "appDefault": 2,
                "specials": [ { "type": "APP", "policies": [ { "key": 10003, "value": 3 } ] },
                              { "type": "USER", "policies": [ { "key": "10003", "value": 50 } ] } ] }),
        json!([]),
        json!([]),
    );
    let kit = Kit::from_gateway(gw, T0);
    let run = |c: &str| call(&kit, "/orders", &[("authorization", &format!("APPCODE {c}"))], T0 + 1000);
    assert_eq!(code(&run("C1")), "OK");
    assert_eq!(code(&run("C1")), "OK");
    let r = run("C1");
    assert_eq!((code(&r).as_str(), r.status()), ("T429PA", 429));
    assert_eq!(r.message().unwrap(), "Throttled by API Flow Control: APP limit 2 per MINUTE");
    assert_eq!(kit.stats.count("traffic.limits.APP.throttled"), 1, "throttled on the APP dimension");
    assert_eq!(r.reply_header("retry-after").as_deref(), Some("59"), "{:?}", r.reply());
    // same owner: the user limit (4) is shared by 10001 and 10002
    assert_eq!(code(&run("C2")), "OK");
    assert_eq!(code(&run("C2")), "OK");
    let r = run("C2");
    assert_eq!(r.message().unwrap(), "Throttled by API Flow Control: APP limit 2 per MINUTE");
    // 10003: its own special (3), its own user
    for _ in 0..3 {
        assert_eq!(code(&run("C3")), "OK");
    }
    let r = refusal(&run("C3"));
    assert_eq!((r.0.as_str(), r.2.as_str()), ("T429PR", "Throttled by PLUGIN Flow Control: APP limit 3 per MINUTE"));
    // refusals took nothing: the API counter saw exactly the 7 admitted requests
    let (v, _) = kit.store.get("cagate.rl.limits.orders.RELEASE.API.-").unwrap();
    assert_eq!(u64::from_le_bytes(v[8..16].try_into().unwrap()), 7);
}

#[test]
fn user_limit_refusal_gives_the_app_count_back() {
    let gw = gateway(json!({ "unit": "HOUR", "apiDefault": 100, "userDefault": 1, "appDefault": 1 }), json!([]), json!([]));
    let kit = Kit::from_gateway(gw, T0);
    assert_eq!(code(&call(&kit, "/orders", &[("authorization", "APPCODE C1")], T0)), "OK");
    let r = call(&kit, "/orders", &[("authorization", "APPCODE C2")], T0);
    assert_eq!(r.message().unwrap(), "Throttled by API Flow Control: USER limit 1 per HOUR");
    let (v, _) = kit.store.get("cagate.rl.limits.orders.RELEASE.APP.10002").unwrap();
    assert_eq!(u64::from_le_bytes(v[8..16].try_into().unwrap()), 0, "the app's count was given back");
}

#[test]
fn refused_earlier_consumes_no_quota_and_anonymous_counts_the_api_only() {
    let gw = gateway(
        json!({ "unit": "MINUTE", "apiDefault": 1, "rateLimitHeaders": true }),
        json!([ { "name": "ips", "type": "ipControl", "data": { "type": "ALLOW", "resource": "XFF:-1", "items": [ { "blocks": ["203.0.113.0/24"] } ] } } ]),
        json!([ { "plugin": "ips" } ]),
    );
    let kit = Kit::from_gateway(gw, T0);
    let r = call(&kit, "/orders", &[("authorization", "APPCODE C1"), ("x-forwarded-for", "203.0.113.5, 198.51.100.1")], T0);
    assert_eq!(code(&r), "A403IP");
    let r = call(&kit, "/orders", &[("authorization", "APPCODE nope")], T0);
    assert_eq!(code(&r), "A400AC");
    let mut a = call(&kit, "/orders", &[("authorization", "APPCODE C1"), ("x-forwarded-for", "198.51.100.1, 203.0.113.5")], T0);
    assert!(a.forwarded(), "{:?}", a.reply());
    let counted: Vec<usize> = ["API", "USER", "APP"].iter().map(|d| kit.stats.count(&format!("traffic.limits.{d}.admitted"))).collect();
    assert_eq!(counted, [1, 0, 0], "only the API dimension has a limit");
    kit.respond(&mut a, 200, &[], "via_upstream", b"");
    assert_eq!(a.stream.response_header("ratelimit-remaining").as_deref(), Some("0"));
    let r = call(&kit, "/orders", &[("authorization", "APPCODE C2"), ("x-forwarded-for", "203.0.113.5")], T0);
    assert_eq!(r.reply_header("ratelimit-limit").as_deref(), Some("1"));
    assert_eq!(code(&r), errors::T429PA.code);
}

#[test]
fn real_threads_admit_exactly_the_limit() {
    let gw = gateway(json!({ "unit": "DAY", "apiDefault": 1000, "appDefault": 1000 }), json!([]), json!([]));
    let cfg = Arc::new(traffic_cfg(&gw).clone());
    let store = Arc::new(MemoryStore::new());
    let admitted = Arc::new(AtomicUsize::new(0));
    let contended = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (cfg, store, admitted, contended) = (cfg.clone(), store.clone(), admitted.clone(), contended.clone());
            std::thread::spawn(move || {
                for _ in 0..400 {
                    loop {
                        match admit(&cfg, 0, "orders", "RELEASE", Some(("10001", "owner-a")), T0, &*store) {
                            Ok(_) => {
                                admitted.fetch_add(1, Ordering::SeqCst);
                                break;
                            }
                            Err(r) if r.error.code == "T429MR" => {
                                contended.fetch_add(1, Ordering::SeqCst); // bounded retries ran out: the client retries
                            }
                            Err(r) => {
                                assert_eq!(r.error.code, "T429PA");
                                break;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(admitted.load(Ordering::SeqCst), 1000, "contended: {}", contended.load(Ordering::SeqCst));
    assert_eq!(store.key_count(), 2, "one key per dimension, whatever the number of requests");
}

#[test]
fn fail_open_admits_when_the_counter_stays_contended() {
    use cagate_core::SetError;
    struct Always;
    impl SharedStore for Always {
        fn get(&self, _: &str) -> Option<(Vec<u8>, u32)> {
            Some((vec![0; 16], 1))
        }
        fn set(&self, _: &str, _: &[u8], _: u32) -> Result<(), SetError> {
            Err(SetError::CasMismatch)
        }
    }
    let mut cfg = traffic_cfg(&gateway(json!({ "unit": "MINUTE", "apiDefault": 10 }), json!([]), json!([]))).clone();
    let r = admit(&cfg, 0, "orders", "RELEASE", None, T0, &Always).unwrap_err();
    assert_eq!((r.error.code, r.message.as_str()), ("T429MR", "Too Many Requests, throttle by `counter contention`"));
    cfg.fail_open = true;
    assert!(admit(&cfg, 0, "orders", "RELEASE", None, T0, &Always).is_ok());
}

#[test]
fn each_stage_an_api_is_published_in_counts_on_its_own() {
    let cfg = json!({
        "stages": ["RELEASE", "TEST"],
        "apps": [ { "appId": 10001, "appKey": "k1", "appSecret": "s1", "appCodes": ["C1"] } ],
        "plugins": [ { "name": "limits", "type": "trafficControl", "data": { "unit": "MINUTE", "apiDefault": 2, "appDefault": 1 } } ],
        "groupPlugins": [ { "plugin": "limits" } ],
        "apis": [ { "name": "orders", "method": "GET", "path": "/orders", "appCodeAuth": "HEADER", "stages": ["RELEASE", "TEST"],
                    "authorizations": [ { "appId": 10001 }, { "appId": 10001, "stage": "TEST" } ] } ]
    });
    let kit = Kit::new(&cfg.to_string(), T0);
    let test = [("authorization", "APPCODE C1"), ("x-ca-stage", "TEST")];
    assert_eq!(code(&call(&kit, "/orders", &test, T0)), "OK");
    assert_eq!(refusal(&call(&kit, "/orders", &test, T0)).0, "T429PA", "TEST's app limit is used up");
    // RELEASE's counters are its own: TEST's traffic took none of its quota.
    assert_eq!(code(&call(&kit, "/orders", &[("authorization", "APPCODE C1")], T0)), "OK");
    assert_eq!(refusal(&call(&kit, "/orders", &[("authorization", "APPCODE C1")], T0)).0, "T429PA");
}
