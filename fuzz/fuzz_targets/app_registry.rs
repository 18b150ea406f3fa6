//! The app registry document (`appRegistry`): an arbitrary document merged into a fixed static
//! configuration, at once (`Gateway::with_registry`) and one entry per step (`Install`), which must
//! agree (same outcome, same problems) with progress that only moves forward; a merged configuration
//! then authenticates requests signed with the document's first key pairs and AppCodes. The
//! shared-data hand-over (`publish`, `load_if_changed`, `etag`) returns the document as published.
#![no_main]

use cagate_core::testkit::Kit;
use cagate_core::{app_registry, sign, Algorithm, Gateway, MemoryStore};
use cagate_fuzz::NOW;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use std::sync::OnceLock;

fn base() -> &'static Gateway {
    static G: OnceLock<Gateway> = OnceLock::new();
    G.get_or_init(|| {
        let cfg = json!({
            "stages": ["RELEASE", "TEST"],
            "appRegistry": { "uri": "http://registry.internal/cagate/apps.json", "cluster": "registry", "refreshSeconds": 10 },
            "apps": [ { "appId": 1, "appKey": "static-key", "appSecret": "static-secret", "appCodes": ["STATIC-CODE"] } ],
            "apis": [ { "name": "getOrder", "method": "GET", "path": "/orders/[id]", "appCodeAuth": "HEADER", "stages": ["RELEASE", "TEST"],
                        "authorizations": [ { "appId": 1 } ] },
                      { "name": "release-only", "method": "ANY", "path": "/r/*", "authorizations": [ { "appId": 1 } ] } ]
        });
        match cagate_core::compile(cfg.to_string().as_bytes()) {
            Ok(gw) => gw,
            Err(p) => panic!("app_registry base configuration refused: {:?}", p.iter().map(ToString::to_string).collect::<Vec<_>>()),
        }
    })
}

/// A GET signed with `key`/`secret` (or carrying an AppCode) through the engine: must not panic, and a
/// refusal is in the contract.
fn call(gw: &Gateway, key: &str, secret: &str, code: Option<&str>) {
    let sts = format!("GET\n\n\n\n\nx-ca-key:{key}\n/orders/1");
    let sig = sign(Algorithm::HmacSha256, secret.as_bytes(), sts.as_bytes());
    let auth = code.map(|c| format!("APPCODE {c}"));
    let headers: Vec<(&str, &str)> = match &auth {
        Some(a) => vec![("authorization", a.as_str())],
        None => vec![("x-ca-key", key), ("x-ca-signature-headers", "x-ca-key"), ("x-ca-signature", sig.as_str())],
    };
    let kit = Kit::from_gateway(gw.clone(), NOW);
    let o = kit.get("/orders/1", &headers);
    if let Some(reply) = o.reply() {
        assert!((100..=599).contains(&reply.status), "reply status {}", reply.status);
        if let Some(code) = o.code() {
            assert!(cagate_core::errors::by_code(&code).is_some(), "code {code} not in the table");
        }
    }
}

fn one(data: &[u8]) {
    let gw = base();
    let at_once = gw.with_registry(data);
    let stepped = match app_registry::Install::start(gw, data.to_vec()) {
        Ok(mut install) => {
            let mut last = install.progress();
            assert!(last.0 <= last.1);
            while !install.step(1) {
                let now = install.progress();
                assert!(now.0 > last.0 && now.0 <= now.1 && now.1 == last.1, "progress {last:?} then {now:?}");
                last = now;
            }
            assert_eq!(install.document(), data);
            install.finish()
        }
        Err(p) => Err(p),
    };
    match (&at_once, &stepped) {
        (Ok(_), Ok(_)) => {}
        (Err(a), Err(b)) => {
            // As sets: the unknown top-level fields come in HashMap order, which differs between runs.
            let sorted = |p: &[cagate_core::Problem]| {
                let mut v: Vec<String> = p.iter().map(ToString::to_string).collect();
                v.sort();
                v
            };
            assert_eq!(sorted(a), sorted(b), "problems differ between at once and step by step");
        }
        _ => panic!("at once {:?}, step by step {:?}", at_once.as_ref().err(), stepped.as_ref().err()),
    }
    if let Ok(merged) = &at_once {
        let doc: Value = serde_json::from_slice(data).unwrap_or(Value::Null);
        let apps = doc.get("apps").and_then(Value::as_array).cloned().unwrap_or_default();
        for app in apps.iter().take(3) {
            let s = |f: &str| app.get(f).and_then(Value::as_str).unwrap_or("").to_string();
            call(merged, &s("appKey"), &s("appSecret"), None);
            if let Some(code) = app.get("appCodes").and_then(|c| c.get(0)).and_then(Value::as_str) {
                call(merged, "", "", Some(code));
            }
        }
        call(merged, "static-key", "static-secret", None);
        let store = MemoryStore::new();
        if app_registry::publish(&store, data, Some("\"v1\""), NOW).is_ok() && !data.is_empty() {
            let (_, back) = app_registry::load_if_changed(&store, 0).unwrap_or_default();
            assert_eq!(back, data, "the shared document differs from the published one");
            assert_eq!(app_registry::etag(&store).as_deref(), Some("\"v1\""));
        }
    }
}

fuzz_target!(|data: &[u8]| cagate_fuzz::run(data, one));
