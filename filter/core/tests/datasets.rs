#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Plugin datasets natively: ipControl, accessControl and basicAuth reading a dataset, expired
//! entries skipped, the app registry's document replacing a dataset, and what the configuration refuses.

use base64::Engine as _;
use cagate_core::compile;
use cagate_core::testkit::Kit;
use serde_json::{json, Value};

const NOW: i64 = 1_700_000_206_000; // 2023-11-14
const LATER: i64 = 1_800_000_000_000; // 2027

fn config() -> Value {
    json!({
        "datasets": [
            { "id": "office", "name": "office networks", "type": "IP_WHITELIST_CIDR",
              "entries": [ { "value": "203.0.113.0/24" }, { "value": "198.51.100.9", "expiredTime": "2025-01-01T00:00:00Z" } ] },
            { "id": "tiers", "type": "PARAMETER_ACCESS", "entries": [ { "value": "gold" }, { "value": "silver", "expiredTime": "2025-01-01T00:00:00Z" } ] },
            { "id": "staff", "type": "BASIC_AUTH_USERS", "entries": [ { "value": "carol:pa55word" } ] }
        ],
        "plugins": [
            { "name": "ips", "type": "ipControl", "data": { "type": "ALLOW", "resource": "XFF:-1", "items": [ { "blocksDatasetId": "office" } ] } },
            { "name": "tiered", "type": "accessControl", "data": {
                "parameters": { "tier": "Header:X-Tier" },
                "rules": [ { "name": "known", "assertParameterName": "tier", "assertInDataset": "tiers", "ifFalse": "DENY" } ] } },
            { "name": "basic", "type": "basicAuth", "data": { "users": [ { "username": "alice", "password": "own" } ], "usersDatasetId": "staff" } }
        ],
        "apis": [
            { "name": "ip", "method": "GET", "path": "/ip", "authType": "ANONYMOUS", "plugins": [ { "plugin": "ips" } ] },
            { "name": "tier", "method": "GET", "path": "/tier", "authType": "ANONYMOUS", "plugins": [ { "plugin": "tiered" } ] },
            { "name": "basic", "method": "GET", "path": "/basic", "authType": "ANONYMOUS", "plugins": [ { "plugin": "basic" } ] }
        ]
    })
}

fn kit_at(cfg: &Value, now: i64) -> Kit {
    Kit::new(&cfg.to_string(), now)
}

fn code(o: &cagate_core::testkit::Outcome) -> Option<String> {
    if o.forwarded() {
        None
    } else {
        o.code()
    }
}

fn basic(user_pass: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_pass))
}

#[test]
fn ip_control_reads_a_dataset_and_skips_expired_entries() {
    let kit = kit_at(&config(), NOW);
    assert_eq!(code(&kit.get("/ip", &[("x-forwarded-for", "203.0.113.77")])), None);
    assert_eq!(code(&kit.get("/ip", &[("x-forwarded-for", "198.51.100.9")])), None, "not expired yet");
    assert_eq!(code(&kit.get("/ip", &[("x-forwarded-for", "192.0.2.1")])).as_deref(), Some("A403IP"));
    let kit = kit_at(&config(), LATER);
    assert_eq!(code(&kit.get("/ip", &[("x-forwarded-for", "198.51.100.9")])).as_deref(), Some("A403IP"), "expired");
    assert_eq!(code(&kit.get("/ip", &[("x-forwarded-for", "203.0.113.77")])), None);
}

#[test]
fn access_control_asserts_a_parameter_is_in_a_dataset() {
    let kit = kit_at(&config(), NOW);
    assert_eq!(code(&kit.get("/tier", &[("x-tier", "gold")])), None);
    assert_eq!(code(&kit.get("/tier", &[("x-tier", "silver")])), None);
    assert_eq!(code(&kit.get("/tier", &[("x-tier", "bronze")])).as_deref(), Some("A403AC"));
    assert_eq!(code(&kit.get("/tier", &[])).as_deref(), Some("A403AC"), "an absent parameter is in no dataset");
    let kit = kit_at(&config(), LATER);
    assert_eq!(code(&kit.get("/tier", &[("x-tier", "silver")])).as_deref(), Some("A403AC"), "expired");
}

#[test]
fn basic_auth_users_come_from_a_dataset_too() {
    let kit = kit_at(&config(), NOW);
    assert_eq!(code(&kit.get("/basic", &[("authorization", &basic("alice:own"))])), None);
    assert_eq!(code(&kit.get("/basic", &[("authorization", &basic("carol:pa55word"))])), None);
    let o = kit.get("/basic", &[("authorization", &basic("carol:wrong"))]);
    assert_eq!(code(&o).as_deref(), Some("A401BA"));
    assert!(o.reply_header("www-authenticate").is_some());
}

#[test]
fn the_registry_replaces_a_dataset() {
    let gw = compile(config().to_string().as_bytes()).unwrap();
    let doc = json!({ "datasets": [ { "id": "tiers", "type": "PARAMETER_ACCESS", "entries": [ { "value": "platinum" } ] } ] });
    let merged = gw.with_registry(doc.to_string().as_bytes()).unwrap();
    let kit = Kit::from_gateway(merged, NOW);
    assert_eq!(code(&kit.get("/tier", &[("x-tier", "platinum")])), None);
    assert_eq!(code(&kit.get("/tier", &[("x-tier", "gold")])).as_deref(), Some("A403AC"), "the static entries are gone");
    // A document that changes a dataset's type, or names one the configuration does not declare, is refused whole.
    for (doc, expected) in [
        (
            json!({ "datasets": [ { "id": "tiers", "type": "JWT_BLOCKING" } ] }),
            "datasets[0].id: dataset tiers is declared as PARAMETER_ACCESS, not JWT_BLOCKING",
        ),
        (json!({ "datasets": [ { "id": "new", "type": "PARAMETER_ACCESS" } ] }), "datasets[0].id: unknown dataset new"),
        (
            json!({ "datasets": [ { "id": "office", "type": "IP_WHITELIST_CIDR", "entries": [ { "value": "not-an-ip" } ] } ] }),
            "datasets[0].entries[0].value: is not an IP address",
        ),
        (json!({ "datasets": {} }), "datasets: must be an array"),
    ] {
        let problems: Vec<String> = gw.with_registry(doc.to_string().as_bytes()).unwrap_err().iter().map(|p| p.to_string()).collect();
        assert!(problems.iter().any(|p| p.contains(expected)), "{expected:?} not in {problems:?}");
    }
}

#[test]
fn references_are_checked_at_load() {
    let mut cfg = config();
    cfg["plugins"][0]["data"]["items"][0]["blocksDatasetId"] = json!("nope");
    cfg["plugins"][1]["data"]["rules"][0]["assertInDataset"] = json!("office");
    cfg["plugins"][2]["data"]["usersDatasetId"] = json!("bad id\n");
    cfg["datasets"][2]["entries"][0]["value"] = json!("no-colon-secret");
    let problems: Vec<String> = compile(cfg.to_string().as_bytes()).unwrap_err().iter().map(|p| p.to_string()).collect();
    let all = problems.join("\n");
    for expected in [
        "plugins[0].data (plugin ips).items[0].blocksDatasetId: unknown dataset nope",
        "plugins[1].data (plugin tiered).rules[0].assertInDataset: dataset office is IP_WHITELIST_CIDR; this field reads a PARAMETER_ACCESS dataset",
        "plugins[2].data (plugin basic).usersDatasetId: is not a dataset id",
        "datasets[2].entries[0].value: must be username:password",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in\n{all}");
    }
    assert!(!all.contains("secret"), "{all}");
    let mut cfg = config();
    cfg["plugins"][1]["data"]["rules"][0]["assertParameterName"] = json!("missing");
    cfg["datasets"][0]["bogus"] = json!(1);
    let all: Vec<String> = compile(cfg.to_string().as_bytes()).unwrap_err().iter().map(|p| p.to_string()).collect();
    assert!(all.iter().any(|p| p.ends_with("rules[0].assertParameterName: unknown parameter missing: not in parameters")), "{all:?}");
    assert!(all.iter().any(|p| p == "datasets[0].bogus: unknown field"), "{all:?}");
}
