//! Plugin data on arbitrary input: a valid configuration with one plugin of each type, each bound to
//! an API of its own (`/p/<type>/[userId]`), where the fuzz input replaces one plugin's `data` as a
//! string (the validator reads it as JSON, else YAML). Byte 0 chooses the plugin (`TYPES`); the rest
//! is the data. A configuration that compiles then serves fixed requests on that plugin's API.
#![no_main]

use cagate_fuzz::{exercise, vector};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use std::sync::OnceLock;

const TYPES: [&str; 9] =
    ["jwtAuth", "trafficControl", "ipControl", "accessControl", "cors", "backendSignature", "basicAuth", "circuitBreaker", "errorMapping"];

fn template() -> &'static Value {
    static T: OnceLock<Value> = OnceLock::new();
    T.get_or_init(|| {
        let data = |t: &str| -> Value {
            match t {
                "jwtAuth" => json!({ "parameter": "Authorization", "jwk": vector("HS256")["jwk"] }),
                "trafficControl" => json!({ "unit": "MINUTE", "apiDefault": 100 }),
                "ipControl" => json!({ "type": "REFUSE", "resource": "XFF:0", "items": [ { "blocks": ["10.0.0.0/8"] } ] }),
                "accessControl" => json!({ "parameters": { "q": "Query:q" }, "rules": [ { "name": "r", "condition": "$q = 'x'", "ifTrue": "DENY" } ] }),
                "cors" => json!({ "allowOrigins": "*" }),
                "backendSignature" => json!({ "key": "k", "secret": "s" }),
                "basicAuth" => json!({ "users": [ { "username": "ops", "password": "pa55w0rd" } ] }),
                "circuitBreaker" => json!({ "timeoutThreshold": 3 }),
                _ => json!({ "parameters": { "s": "StatusCode" }, "errorCondition": "$s = 500", "defaultMapping": { "statusCode": 502 } }),
            }
        };
        let plugins: Vec<Value> = TYPES.iter().map(|t| json!({ "name": t, "type": t, "data": data(t) })).collect();
        let apis: Vec<Value> = TYPES
            .iter()
            .map(|t| json!({ "name": t, "method": "ANY", "path": format!("/p/{t}/[userId]"), "authType": "ANONYMOUS",
                              "stages": ["RELEASE", "TEST"], "plugins": [ { "plugin": t } ] }))
            .collect();
        json!({
            "stages": ["RELEASE", "TEST"],
            "apps": [ { "appId": 10001, "appKey": "k1", "appSecret": "s1", "appCodes": ["CODE1"], "ownerId": "owner-a" } ],
            "plugins": plugins,
            "apis": apis
        })
    })
}

fuzz_target!(|data: &[u8]| cagate_fuzz::run(data, one));

fn one(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else { return };
    let i = sel as usize % TYPES.len();
    let mut cfg = template().clone();
    cfg["plugins"][i]["data"] = Value::String(String::from_utf8_lossy(rest).into_owned());
    match cagate_core::compile(cfg.to_string().as_bytes()) {
        Ok(gw) => exercise(&gw, &format!("/p/{}", TYPES[i])),
        Err(problems) => {
            assert!(!problems.is_empty());
            for p in &problems {
                assert!(p.path.starts_with(&format!("plugins[{i}]")), "a problem outside the fuzzed plugin: {p}");
            }
        }
    }
}

