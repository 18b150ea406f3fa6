#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Nothing the gateway writes into a header can split the message: configured names and values are
//! checked at load (found by fuzzing: fuzz/regressions/config_compile/header-*), and request values a
//! plugin substitutes into a reply header lose their control characters.

use cagate_core::compile;
use cagate_core::testkit::Kit;
use serde_json::json;

#[test]
fn configured_header_names_and_values_are_checked_at_load() {
    let backend = |b: serde_json::Value| json!({ "apis": [ { "name": "a", "method": "GET", "path": "/*", "authType": "ANONYMOUS", "backend": b } ] });
    let cases = [
        (backend(json!({ "cluster": "c\nx-evil: 1" })), "apis[0].backend.cluster"),
        (backend(json!({ "cluster": "c", "path": "/x\ny" })), "apis[0].backend.path"),
        (
            backend(json!({ "cluster": "c", "constantParameters": [ { "name": "X Bad:", "value": "a", "location": "HEADER" } ] })),
            "apis[0].backend.constantParameters[0].name",
        ),
        (
            backend(json!({ "cluster": "c", "constantParameters": [ { "name": "X-Source", "value": "a\r\nb", "location": "HEADER" } ] })),
            "apis[0].backend.constantParameters[0].value",
        ),
        (backend(json!({ "type": "MOCK", "mockHeaders": [ { "name": "X-Mock", "value": "1\n2" } ] })), "apis[0].backend.mockHeaders[0].value"),
        (
            json!({ "stageVariables": { "RELEASE": { "c": "up\nstream" } }, "apis": [ { "name": "a", "method": "GET", "path": "/*", "authType": "ANONYMOUS", "backend": { "cluster": "#c#" } } ] }),
            "apis[0].backend.cluster",
        ),
        (
            json!({ "plugins": [ { "name": "c", "type": "cors", "data": { "allowOrigins": "*", "allowHeaders": "a\nb" } } ],
                 "apis": [ { "name": "a", "method": "GET", "path": "/*", "authType": "ANONYMOUS", "plugins": [ { "plugin": "c" } ] } ] }),
            "allowHeaders",
        ),
        (
            json!({ "plugins": [ { "name": "ac", "type": "accessControl", "data": { "parameters": { "q": "Query:q" },
                   "rules": [ { "name": "r", "condition": "$q <> 'z'", "ifTrue": "DENY", "responseHeaders": { "X-A": "1\r\n2" } } ] } } ],
                 "apis": [ { "name": "a", "method": "GET", "path": "/*", "authType": "ANONYMOUS", "plugins": [ { "plugin": "ac" } ] } ] }),
            "responseHeaders",
        ),
    ];
    for (cfg, path) in cases {
        let problems = compile(cfg.to_string().as_bytes()).err().unwrap_or_else(|| panic!("{cfg} compiled"));
        assert!(problems.iter().any(|p| p.to_string().contains(path)), "{path}: {problems:?}");
    }
}

#[test]
fn request_values_in_reply_headers_lose_control_characters() {
    let cfg = json!({ "plugins": [ { "name": "ac", "type": "accessControl", "data": { "parameters": { "q": "Query:q" },
        "rules": [ { "name": "r", "condition": "$q <> 'ok'", "ifTrue": "DENY", "errorMessage": "no ${q}", "responseHeaders": { "X-Why": "q=${q}" } } ] } } ],
        "apis": [ { "name": "a", "method": "GET", "path": "/*", "authType": "ANONYMOUS", "plugins": [ { "plugin": "ac" } ] } ] });
    let kit = Kit::new(&cfg.to_string(), 0);
    let o = kit.get("/x?q=%0d%0aX-Evil:%201", &[]);
    let reply = o.reply().expect("refused");
    assert_eq!(o.code().as_deref(), Some("A403AC"));
    for (name, value) in &reply.headers {
        assert!(!value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0), "{name}: {value:?}");
    }
    assert!(reply.headers.iter().any(|(n, v)| n == "x-why" && v.contains("X-Evil")), "the value is kept, made safe: {:?}", reply.headers);
}
