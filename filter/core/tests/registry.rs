#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Apps at scale, natively: key pairs with `validUntil` (rotation), `{"env": …}` secrets, a registry
//! document merged with the static apps (conflicts refuse it as a whole), its authorizations, the
//! refusal before a first document, and the shared-data protocol between VMs.

use cagate_core::testkit::Kit;
use cagate_core::{app_registry, compile, compile_with_env, sign, Algorithm, Gateway, MemoryStore};
use serde_json::json;
use std::time::Instant;

const NOW: i64 = 1_800_000_000_000;

fn static_config() -> serde_json::Value {
    json!({
        "appRegistry": { "uri": "http://registry.internal/cagate/apps.json", "cluster": "registry", "refreshSeconds": 10 },
        "apps": [ { "appId": 1, "appKey": "static-key", "appSecret": "static-secret", "appCodes": ["STATIC-CODE"] } ],
        "apis": [ { "name": "getOrder", "method": "GET", "path": "/orders/[id]", "appCodeAuth": "HEADER",
                    "authorizations": [ { "appId": 1 } ] } ]
    })
}

/// Signs GET /orders/1 with a key pair; the code the gateway answers ("OK" when admitted).
fn call(gw: &Gateway, key: &str, secret: &str) -> String {
    let sts = format!("GET\n\n\n\n\nx-ca-key:{key}\n/orders/1");
    let sig = sign(Algorithm::HmacSha256, secret.as_bytes(), sts.as_bytes());
    let kit = Kit::from_gateway(gw.clone(), NOW);
    let o = kit.get("/orders/1", &[("x-ca-key", key), ("x-ca-signature-headers", "x-ca-key"), ("x-ca-signature", &sig)]);
    match o.code() {
        _ if o.forwarded() => "OK".into(),
        Some(code) => code,
        None => panic!("neither forwarded nor refused: {:?}", o.reply()),
    }
}

fn doc(apps: serde_json::Value, grants: serde_json::Value) -> Vec<u8> {
    json!({ "apps": apps, "authorizations": grants }).to_string().into_bytes()
}

#[test]
fn before_a_first_document_registry_apps_are_told_to_retry() {
    let gw = compile(static_config().to_string().as_bytes()).unwrap();
    assert_eq!(call(&gw, "static-key", "static-secret"), "OK", "static apps work at once");
    assert_eq!(call(&gw, "new-key", "s"), "X503BZ");
    let loaded = gw.with_registry(&doc(json!([]), json!([]))).unwrap();
    assert_eq!(call(&loaded, "new-key", "s"), "A400IK", "after a document, an unknown key is A400IK");
}

#[test]
fn registry_apps_and_grants_join_the_static_ones() {
    let gw = compile(static_config().to_string().as_bytes()).unwrap();
    let d = doc(json!([ { "appId": 10002, "appKey": "k2", "appSecret": "s2", "ownerId": "o-1" } ]), json!([]));
    let g = gw.with_registry(&d).unwrap();
    assert_eq!(call(&g, "k2", "s2"), "A403UA", "known, but not authorized yet");
    let d =
        doc(json!([ { "appId": 10002, "appKey": "k2", "appSecret": "s2" } ]), json!([ { "appId": 10002, "api": "getOrder", "stage": "RELEASE" } ]));
    let g = gw.with_registry(&d).unwrap();
    assert_eq!(call(&g, "k2", "s2"), "OK");
    assert_eq!(call(&g, "static-key", "static-secret"), "OK");
    let d = doc(json!([]), json!([ { "appId": 1, "api": "getOrder", "stage": "RELEASE", "authValidTime": "2020-01-01T00:00:00Z" } ]));
    assert_eq!(call(&gw.with_registry(&d).unwrap(), "static-key", "static-secret"), "A403EP", "a registry grant can replace a static app's");
}

#[test]
fn rotation_without_a_failed_request() {
    let gw = compile(static_config().to_string().as_bytes()).unwrap();
    let grant = json!([ { "appId": 7, "api": "getOrder" } ]);
    let old = json!([ { "appId": 7, "appKey": "k7", "appSecret": "old-secret" } ]);
    let both = json!([ { "appId": 7, "appKey": "k7", "appSecret": "old-secret", "keys": [ { "appKey": "k7", "appSecret": "new-secret" } ] } ]);
    let new = json!([ { "appId": 7, "appKey": "k7", "appSecret": "new-secret" } ]);
    let g = gw.with_registry(&doc(old, grant.clone())).unwrap();
    assert_eq!((call(&g, "k7", "old-secret"), call(&g, "k7", "new-secret")), ("OK".into(), "A403IS".into()));
    let g = gw.with_registry(&doc(both, grant.clone())).unwrap();
    assert_eq!((call(&g, "k7", "old-secret"), call(&g, "k7", "new-secret")), ("OK".into(), "OK".into()), "during: both");
    let g = gw.with_registry(&doc(new, grant.clone())).unwrap();
    assert_eq!((call(&g, "k7", "old-secret"), call(&g, "k7", "new-secret")), ("A403IS".into(), "OK".into()), "after: the new one");
    let expired = json!([ { "appId": 7, "appKey": "k7", "appSecret": "s", "keys": [
        { "appKey": "k7-old", "appSecret": "x", "validUntil": "2020-01-01T00:00:00Z" },
        { "appKey": "k7-next", "appSecret": "y", "validUntil": "2099-01-01T00:00:00Z" } ] } ]);
    let g = gw.with_registry(&doc(expired, grant)).unwrap();
    assert_eq!(call(&g, "k7-old", "x"), "A400IK", "an expired pair is refused");
    assert_eq!(call(&g, "k7-next", "y"), "OK");
}

#[test]
fn a_document_with_a_conflict_is_refused_whole() {
    let gw = compile(static_config().to_string().as_bytes()).unwrap();
    let cases = [
        (json!([ { "appId": 1, "appKey": "other", "appSecret": "s" } ]), "apps[0].appId: duplicate appId 1"),
        (json!([ { "appId": 2, "appKey": "static-key", "appSecret": "s" } ]), "apps[0].appKey: duplicate appKey static-key"),
        (
            json!([ { "appId": 2, "appKey": "k", "appSecret": "s", "appCodes": ["STATIC-CODE"] } ]),
            "apps[0].appCodes[0]: duplicate AppCode (same as apps[0].appCodes[0])",
        ),
        (json!([ { "appId": 2, "appKey": "k", "appSecret": { "env": "X" } } ]), "apps[0].appSecret: must be a string here"),
    ];
    for (apps, expected) in cases {
        let problems: Vec<String> = gw.with_registry(&doc(apps, json!([]))).unwrap_err().iter().map(|p| p.to_string()).collect();
        assert!(problems.iter().any(|p| p.starts_with(expected)), "{expected}: {problems:?}");
        assert!(!problems.iter().any(|p| p.contains("static-secret")), "no secret in a message");
    }
    let problems =
        gw.with_registry(&doc(json!([]), json!([ { "appId": 1, "api": "nope" }, { "appId": 9, "api": "getOrder", "stage": "TEST" } ]))).unwrap_err();
    let shown: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert!(shown.contains(&"authorizations[0].api: unknown API nope".to_string()), "{shown:?}");
    assert!(shown.contains(&"authorizations[1].appId: unknown app 9".to_string()), "{shown:?}");
    assert!(shown.contains(&"authorizations[1].stage: the API is not published in stage TEST".to_string()), "{shown:?}");
    assert!(gw.with_registry(b"{not json").is_err());
    // A grant given twice in a document, as in the static configuration.
    let twice = json!([ { "appId": 1, "api": "getOrder" }, { "appId": 1, "api": "getOrder", "authValidTime": "2030-01-01T00:00:00Z" } ]);
    let shown: Vec<String> = gw.with_registry(&doc(json!([]), twice)).unwrap_err().iter().map(|p| p.to_string()).collect();
    assert_eq!(shown, ["authorizations[1]: app 1 is already authorized in stage RELEASE"]);
    // A document that is not an object is refused by position, never quoting what it holds.
    for bad in [&b"\"super-secret-value\""[..], b"[\"super-secret-value\"]", b"{\"apps\": "] {
        let shown: Vec<String> = gw.with_registry(bad).unwrap_err().iter().map(|p| p.to_string()).collect();
        assert!(shown.len() == 1 && shown[0].starts_with("the registry document is not"), "{shown:?}");
        assert!(!shown[0].contains("super-secret"), "{shown:?}");
    }
}

#[test]
fn a_document_larger_than_the_limit_is_refused_unparsed() {
    let gw = compile(static_config().to_string().as_bytes()).unwrap();
    let good = doc(json!([ { "appId": 2, "appKey": "k2", "appSecret": "s2" } ]), json!([]));
    // Whitespace keeps it valid JSON: only its size refuses it.
    let padded = |len: usize| {
        let mut d = good.clone();
        d.resize(len, b' ');
        d
    };
    assert!(gw.with_registry(&padded(app_registry::MAX_DOCUMENT_BYTES)).is_ok(), "at the limit");
    let problems: Vec<String> = gw.with_registry(&padded(app_registry::MAX_DOCUMENT_BYTES + 1)).unwrap_err().iter().map(|p| p.to_string()).collect();
    assert_eq!(problems, ["the registry document is larger than 67108864 bytes"]);
}

/// A control character (C0 with TAB, DEL, C1) in any field that names an app in a header, a log or a
/// metric refuses the registry document whole, with the path of the field and without quoting it.
#[test]
fn a_document_with_control_characters_is_refused_whole() {
    let gw = compile(static_config().to_string().as_bytes()).unwrap();
    let good = json!({ "appId": 20, "appKey": "good-key", "appSecret": "s" });
    // The issue's own document, as the registry serves it (JSON escapes).
    let raw = br#"{"apps": [ {"appId": 20, "appKey": "good-key", "appSecret": "s"}, {"appId": 21, "appKey": "k\u0001x", "appSecret": "s"} ],
                  "authorizations": [ {"appId": 20, "api": "getOrder"} ]}"#;
    let problems: Vec<String> = gw.with_registry(raw).unwrap_err().iter().map(|p| p.to_string()).collect();
    assert_eq!(problems, ["apps[1].appKey: must not contain control characters (CR, LF, TAB, NUL, ESC, DEL, …)"]);
    let app = |field: &str, value: serde_json::Value| {
        let mut a = json!({ "appId": 21, "name": "订单 app", "ownerId": "o-1", "appKey": "k21", "appSecret": "s", "appCodes": ["CODE-21"] });
        a[field] = value;
        a
    };
    let cases = [
        (app("appKey", json!("k\u{1}x")), "apps[1].appKey"),
        (app("name", json!("line\nforged: log line")), "apps[1].name"),
        (app("name", json!("\u{1b}[31mred")), "apps[1].name"),
        (app("name", json!("csi\u{9b}31m")), "apps[1].name"),
        (app("appId", json!("a\r\nb")), "apps[1].appId"),
        (app("ownerId", json!("tab\there")), "apps[1].ownerId"),
        (app("appCodes", json!(["CODE-OK", "CODE\u{7f}"])), "apps[1].appCodes[1]"),
        (app("keys", json!([ { "appKey": "k\u{0}next", "appSecret": "s2" } ])), "apps[1].keys[0].appKey"),
    ];
    for (bad, path) in cases {
        let d = doc(json!([good.clone(), bad]), json!([ { "appId": 20, "api": "getOrder" }, { "appId": 21, "api": "getOrder" } ]));
        let problems: Vec<String> = gw.with_registry(&d).unwrap_err().iter().map(|p| p.to_string()).collect();
        assert!(problems.contains(&format!("{path}: must not contain control characters (CR, LF, TAB, NUL, ESC, DEL, …)")), "{path}: {problems:?}");
        assert!(!problems.iter().any(|p| p.chars().any(char::is_control)), "no message quotes a control character: {problems:?}");
    }
    // An authorization naming an app with a control character is refused before any lookup (no
    // "unknown app" quoting the value into the log).
    for (field, value) in [("appId", json!("9\nforged")), ("api", json!("getOrder\r")), ("stage", json!("RELEASE\u{1}"))] {
        let mut g = json!({ "appId": 20, "api": "getOrder", "stage": "RELEASE" });
        g[field] = value;
        let problems: Vec<String> = gw.with_registry(&doc(json!([good.clone()]), json!([g]))).unwrap_err().iter().map(|p| p.to_string()).collect();
        assert_eq!(problems, [format!("authorizations[0].{field}: must not contain control characters (CR, LF, TAB, NUL, ESC, DEL, …)")]);
    }
    // Printable text of any script is kept.
    let d = doc(json!([app("name", json!("订单应用 (orders) — v2"))]), json!([ { "appId": 21, "api": "getOrder" } ]));
    assert_eq!(call(&gw.with_registry(&d).unwrap(), "k21", "s"), "OK");
}

/// The static configuration's apps follow the same rule, with the same message.
#[test]
fn static_apps_with_control_characters_are_refused() {
    for (field, value, path) in [
        ("appKey", json!("k\u{1}x"), "apps[0].appKey"),
        ("name", json!("line\nforged"), "apps[0].name"),
        ("appId", json!("1\u{7f}"), "apps[0].appId"),
        ("ownerId", json!("o\u{85}"), "apps[0].ownerId"),
        ("appCodes", json!(["STATIC\u{1b}CODE"]), "apps[0].appCodes[0]"),
    ] {
        let mut cfg = static_config();
        cfg["apps"][0][field] = value;
        let problems: Vec<String> = compile(cfg.to_string().as_bytes()).unwrap_err().iter().map(|p| p.to_string()).collect();
        assert!(problems.contains(&format!("{path}: must not contain control characters (CR, LF, TAB, NUL, ESC, DEL, …)")), "{path}: {problems:?}");
        assert!(!problems.iter().any(|p| p.chars().any(char::is_control)), "{problems:?}");
    }
    let raw = br#"{"apps": [ {"appId": 1, "name": "line\nforged", "appKey": "k", "appSecret": "s"} ],
                  "apis": [ {"name": "a", "method": "GET", "path": "/a", "authorizations": [ {"appId": "1\n"} ]} ]}"#;
    let problems: Vec<String> = compile(raw).unwrap_err().iter().map(|p| p.to_string()).collect();
    assert_eq!(
        problems,
        [
            "apps[0].name: must not contain control characters (CR, LF, TAB, NUL, ESC, DEL, …)",
            "apis[0].authorizations[0].appId: must not contain control characters (CR, LF, TAB, NUL, ESC, DEL, …)"
        ]
    );
}

#[test]
fn secrets_from_the_environment() {
    let mut cfg = static_config();
    cfg["apps"][0]["appSecret"] = json!({ "env": "CAGATE_TEST_SECRET" });
    let env = |name: &str| (name == "CAGATE_TEST_SECRET").then(|| "from-env".to_string());
    let gw = compile_with_env(cfg.to_string().as_bytes(), &env).unwrap();
    assert_eq!(call(&gw, "static-key", "from-env"), "OK");
    let problems = compile_with_env(cfg.to_string().as_bytes(), &|_| None).unwrap_err();
    assert_eq!(
        problems[0].to_string(),
        "apps[0].appSecret: environment variable CAGATE_TEST_SECRET is not set in the Wasm VM (vm_config.environment_variables)"
    );
}

#[test]
fn shared_data_protocol() {
    let gw = compile(static_config().to_string().as_bytes()).unwrap();
    let settings = gw.registry.clone().unwrap();
    let store = MemoryStore::new();
    assert!(app_registry::should_fetch(&store, &settings, NOW), "first VM takes the lease");
    assert!(!app_registry::should_fetch(&store, &settings, NOW + 1), "the others wait");
    let body = doc(json!([ { "appId": 5, "appKey": "k5", "appSecret": "s5" } ]), json!([]));
    app_registry::publish(&store, &body, Some("\"v1\""), NOW).unwrap();
    assert_eq!(app_registry::etag(&store).as_deref(), Some("\"v1\""));
    assert!(!app_registry::should_fetch(&store, &settings, NOW + 9_000), "fresh for refreshSeconds");
    app_registry::release(&store);
    assert!(app_registry::should_fetch(&store, &settings, NOW + 10_000), "due again after refreshSeconds");
    let (version, shared) = app_registry::load_if_changed(&store, 0).unwrap();
    assert_eq!(shared, body);
    assert!(app_registry::load_if_changed(&store, version).is_none(), "installed: nothing new");
    app_registry::touch(&store, NOW + 20_000);
    assert!(app_registry::load_if_changed(&store, version).is_none(), "a 304 is no new version");
    assert_eq!(app_registry::etag(&store).as_deref(), Some("\"v1\""));
}

/// A large document (20,000 apps by default; `CAGATE_REGISTRY_APPS=100000 cargo test --release` for the
/// scale docs/operations.md quotes).
#[test]
fn a_large_document() {
    let n: usize = std::env::var("CAGATE_REGISTRY_APPS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let gw = compile(static_config().to_string().as_bytes()).unwrap();
    let apps: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            json!({ "appId": 100_000 + i, "appKey": format!("key-{i:06}"), "appSecret": format!("secret-{i:06}-0123456789abcdef"),
                         "appCodes": [format!("CODE{i:028}")] })
        })
        .collect();
    let grants: Vec<serde_json::Value> = (0..n).map(|i| json!({ "appId": 100_000 + i, "api": "getOrder", "stage": "RELEASE" })).collect();
    let body = doc(json!(apps), json!(grants));
    let start = Instant::now();
    let g = gw.with_registry(&body).unwrap();
    let took = start.elapsed();
    eprintln!("{n} apps, {} bytes: merged in {:.0} ms (native)", body.len(), took.as_secs_f64() * 1e3);
    assert_eq!(g.app_count(), n + 1);
    let last = n - 1;
    assert_eq!(call(&g, &format!("key-{last:06}"), &format!("secret-{last:06}-0123456789abcdef")), "OK");
}

#[test]
fn the_documents_own_version_is_what_the_gauge_shows() {
    let gw = compile(static_config().to_string().as_bytes()).unwrap();
    let with = |version: serde_json::Value| {
        let mut d: serde_json::Value = serde_json::from_slice(&doc(json!([]), json!([]))).unwrap();
        d["version"] = version;
        gw.with_registry(d.to_string().as_bytes()).unwrap().registry_version
    };
    assert_eq!(with(json!(42)), Some(42));
    assert_eq!(with(json!("2026120401")), Some(2_026_120_401), "a string of digits");
    assert_eq!(with(json!("v1")), None, "anything else is accepted and not shown");
    assert_eq!(with(json!(1.5)), None);
    assert_eq!(gw.with_registry(&doc(json!([]), json!([]))).unwrap().registry_version, None, "no version");
}
