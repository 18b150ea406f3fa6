#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Every refusal code of the gate, natively: the engine decides from the request, the clock and the
//! in-memory shared store, with no Envoy (through the test kit).

use cagate_core::errors;
use cagate_core::testkit::{Call, Kit, Outcome};
use cagate_core::MemoryStore;
use cagate_core::NonceStore;
use cagate_core::{sign, Algorithm};

const NOW: i64 = 1_700_000_206_000;
const SECRET: &str = "test-app-secret-1-0123456789abcdef";

const CONFIG: &str = r#"{
      "maxBodyBytes": 64,
      "apps": [ { "appId": 10001, "appKey": "k1", "appSecret": "test-app-secret-1-0123456789abcdef", "appCodes": ["CODE1"] },
                { "appId": 10002, "appKey": "k2", "appSecret": "s2" },
                { "appId": 10003, "appKey": "k3", "appSecret": "s3" } ],
      "apis": [
        { "name": "orders", "method": "GET", "path": "/orders/[id]", "appCodeAuth": "HEADER", "stages": ["RELEASE", "TEST"],
          "authorizations": [ { "appId": 10001 }, { "appId": 10001, "stage": "TEST" },
                              { "appId": 10003, "authValidTime": "2023-11-14T22:16:00Z" } ] },
        { "name": "strict", "method": "GET", "path": "/strict", "forceNonceCheck": true, "authorizations": [ { "appId": 10001 } ] },
        { "name": "form", "method": "POST", "path": "/form", "appCodeAuth": "HEADER_QUERY", "authorizations": [ { "appId": 10001 } ] },
        { "name": "open", "method": "ANY", "path": "/open/*", "authType": "ANONYMOUS" }
      ] }"#;

struct World {
    kit: Kit,
}

impl World {
    fn new() -> Self {
        World { kit: Kit::new(CONFIG, NOW) }
    }

    fn run(&self, method: &str, path: &str, headers: &[(&str, String)], body: Option<&[u8]>) -> Outcome {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let o = self.kit.send(&Call { method, path, headers: &headers, body, ..Call::default() });
        // A body the API checks is read before deciding (unless refused on the headers: I413RL by Content-Length).
        assert!(body.is_none() || o.read_body || o.code().as_deref() == Some("I413RL"), "body need for {method} {path}");
        o
    }
}

/// Signed headers for a GET without body or parameters; the StringToSign is written out by hand.
fn signed(path: &str, key: &str, secret: &str, nonce: Option<&str>, ts: Option<i64>) -> Vec<(&'static str, String)> {
    let mut h = vec![("x-ca-key", key.to_string())];
    let mut block = format!("x-ca-key:{key}\n");
    let mut listed = vec!["x-ca-key"];
    if let Some(n) = nonce {
        h.push(("x-ca-nonce", n.to_string()));
        block += &format!("x-ca-nonce:{n}\n");
        listed.push("x-ca-nonce");
    }
    if let Some(t) = ts {
        h.push(("x-ca-timestamp", t.to_string()));
        block += &format!("x-ca-timestamp:{t}\n");
        listed.push("x-ca-timestamp");
    }
    h.push(("x-ca-signature-headers", listed.join(",")));
    let sts = format!("GET\n\n\n\n\n{block}{path}");
    h.push(("x-ca-signature", sign(Algorithm::HmacSha256, secret.as_bytes(), sts.as_bytes())));
    h
}

/// "OK" for a forwarded request, else the refusal's code.
fn code(o: Outcome) -> String {
    if o.forwarded() {
        return "OK".into();
    }
    o.code().unwrap_or_else(|| panic!("neither forwarded nor refused: {:?}", o.reply()))
}

#[test]
fn valid_signature_admits_with_identity() {
    let w = World::new();
    let o = w.run("GET", "/orders/1", &signed("/orders/1", "k1", SECRET, Some("n-1"), Some(NOW)), None);
    assert!(o.forwarded(), "{:?}", o.reply());
    let identity = (o.stream.upstream("x-ca-app-id"), o.stream.upstream("x-ca-api-name"));
    assert_eq!(identity, (Some("10001".to_string()), Some("orders".to_string())));
}

#[test]
fn a_listed_host_signs_with_the_authority_envoy_forwards() {
    let w = World::new();
    let sts = format!("GET\n\n\n\n\nhost:api.example.com\nx-ca-key:k1\nx-ca-timestamp:{NOW}\n/orders/1");
    let mut h = vec![
        (":authority", "api.example.com".to_string()),
        ("x-ca-key", "k1".to_string()),
        ("x-ca-timestamp", NOW.to_string()),
        ("x-ca-signature-headers", "x-ca-key,x-ca-timestamp,Host".to_string()),
    ];
    h.push(("x-ca-signature", sign(Algorithm::HmacSha256, SECRET.as_bytes(), sts.replace("host:", "Host:").as_bytes())));
    assert_eq!(code(w.run("GET", "/orders/1", &h, None)), "OK");
    let elsewhere: Vec<_> = h.iter().map(|(n, v)| (*n, if *n == ":authority" { "other.example.com".to_string() } else { v.clone() })).collect();
    assert_eq!(code(w.run("GET", "/orders/1", &elsewhere, None)), "A403IS", "the signature covers the host");
}

#[test]
fn routing_codes() {
    let w = World::new();
    let h = signed("/orders/1", "k1", SECRET, None, Some(NOW));
    assert_eq!(code(w.run("GET", "/missing", &h, None)), "I404NF");
    let mut staged = h.clone();
    staged.push(("x-ca-stage", "DEV".into()));
    assert_eq!(code(w.run("GET", "/orders/1", &staged, None)), "I400SG");
    let mut pre = h.clone();
    pre.push(("x-ca-stage", "PRE".into()));
    assert_eq!(code(w.run("GET", "/orders/1", &pre, None)), "I404NF");
    let mut test = h;
    test.push(("x-ca-stage", "TEST".into()));
    assert_eq!(code(w.run("GET", "/orders/1", &test, None)), "OK");
}

#[test]
fn credential_codes() {
    let w = World::new();
    assert_eq!(code(w.run("GET", "/orders/1", &[], None)), "A400MA");
    assert_eq!(code(w.run("GET", "/orders/1", &signed("/orders/1", "nobody", SECRET, None, None), None)), "A400IK");
    assert_eq!(code(w.run("GET", "/orders/1", &signed("/orders/1", "k1", "wrong", None, None), None)), "A403IS");
    let mut alg = signed("/orders/1", "k1", SECRET, None, None);
    alg.push(("x-ca-signature-method", "HmacSHA512".into()));
    assert_eq!(code(w.run("GET", "/orders/1", &alg, None)), "A403IS", "an unsupported signature method verifies nothing");
    let unsigned: Vec<_> = signed("/orders/1", "k1", SECRET, None, None).into_iter().filter(|(n, _)| *n != "x-ca-signature").collect();
    assert_eq!(code(w.run("GET", "/orders/1", &unsigned, None)), "A403IS");
}

#[test]
fn signature_mismatch_reports_the_server_string_to_sign() {
    let w = World::new();
    let o = w.run("GET", "/orders/%E4%B8%AD?b=2&a", &signed("/x", "k1", SECRET, None, None), None);
    assert_eq!((o.status(), o.code().as_deref()), (errors::A403IS.status, Some(errors::A403IS.code)));
    assert_eq!(o.message().unwrap(), "Invalid Signature, Server StringToSign:`GET#####x-ca-key:k1#/orders/%E4%B8%AD?a&b=2`");
}

#[test]
fn timestamp_and_nonce_codes() {
    let w = World::new();
    let too_old = NOW - 900_001;
    assert_eq!(code(w.run("GET", "/orders/1", &signed("/orders/1", "k1", SECRET, None, Some(too_old)), None)), "S403TE");
    assert_eq!(code(w.run("GET", "/orders/1", &signed("/orders/1", "k1", SECRET, None, Some(NOW - 900_000)), None)), "OK");
    assert_eq!(code(w.run("GET", "/orders/1", &signed("/orders/1", "k1", SECRET, None, Some(NOW + 900_001)), None)), "S403TE");
    let mut bad = signed("/orders/1", "k1", SECRET, None, None);
    bad.push(("x-ca-timestamp", "17e11".into()));
    assert_eq!(code(w.run("GET", "/orders/1", &bad, None)), "S403TE", "a malformed timestamp, as an expired one");
    assert_eq!(code(w.run("GET", "/orders/1", &signed("/orders/1", "k1", SECRET, Some("n"), None), None)), "S403TE", "a nonce needs a timestamp");
    assert_eq!(code(w.run("GET", "/strict", &signed("/strict", "k1", SECRET, None, Some(NOW)), None)), "I400NC");
    let once = signed("/strict", "k1", SECRET, Some("once"), Some(NOW));
    assert_eq!(code(w.run("GET", "/strict", &once, None)), "OK");
    assert_eq!(code(w.run("GET", "/strict", &once, None)), "S403NU");
}

#[test]
fn refused_requests_do_not_burn_nonces() {
    let w = World::new();
    assert_eq!(code(w.run("GET", "/orders/1", &signed("/orders/1", "k1", "wrong", Some("n7"), Some(NOW)), None)), "A403IS");
    assert_eq!(code(w.run("GET", "/orders/1", &signed("/orders/1", "k2", "s2", Some("n7"), Some(NOW)), None)), "A403UA");
    assert_eq!(code(w.run("GET", "/orders/1", &signed("/orders/1", "k1", SECRET, Some("n7"), Some(NOW)), None)), "OK");
}

#[test]
fn authorization_codes() {
    let w = World::new();
    assert_eq!(code(w.run("GET", "/orders/1", &signed("/orders/1", "k2", "s2", None, None), None)), "A403UA");
    let o = w.run("GET", "/orders/1", &signed("/orders/1", "k3", "s3", None, None), None);
    assert_eq!((o.code().unwrap().as_str(), o.status(), o.message().unwrap().as_str()), ("A403EP", 403, "App authorization expired"));
}

#[test]
fn appcode_codes() {
    let w = World::new();
    let hdr = |v: &str| vec![("authorization", v.to_string())];
    assert_eq!(w.run("GET", "/orders/1", &hdr("APPCODE CODE1"), None).stream.upstream("x-ca-app-id").as_deref(), Some("10001"));
    assert_eq!(code(w.run("GET", "/orders/1", &hdr("appcode  CODE1 "), None)), "OK");
    assert_eq!(code(w.run("GET", "/orders/1", &hdr("APPCODE CODE2"), None)), "A400AC");
    assert_eq!(code(w.run("GET", "/orders/1?AppCode=CODE1", &[], None)), "A400AC", "query where only the header is allowed");
    assert_eq!(code(w.run("GET", "/orders/1", &hdr("Bearer x"), None)), "A400MA");
    assert_eq!(code(w.run("GET", "/strict", &hdr("APPCODE CODE1"), None)), "A400AC", "AppCode disabled on the API");
    for q in ["AppCode", "appcode", "appCode", "APPCODE", "APPCode"] {
        assert_eq!(code(w.run("POST", &format!("/form?{q}=CODE1"), &[], None)), "OK", "{q}");
    }
    assert_eq!(code(w.run("POST", "/form?appcode=nope", &[], None)), "A400AC");
}

#[test]
fn body_codes() {
    let w = World::new();
    let form = b"b=2&a=%E4%B8%AD";
    let sts = "POST\n\n\napplication/x-www-form-urlencoded\n\nx-ca-key:k1\n/form?a=中&b=2&q=1";
    let mut h = vec![
        ("content-type", "application/x-www-form-urlencoded".to_string()),
        ("x-ca-key", "k1".to_string()),
        ("x-ca-signature-headers", "x-ca-key".to_string()),
        ("x-ca-signature", sign(Algorithm::HmacSha256, SECRET.as_bytes(), sts.as_bytes())),
    ];
    assert_eq!(code(w.run("POST", "/form?q=1", &h, Some(form))), "OK");
    assert_eq!(code(w.run("POST", "/form?q=1", &h, Some(b"b=3&a=%E4%B8%AD"))), "A403IS");
    h.push(("content-md5", "XUFAKrxLKna5cZ2REBfFkg==".to_string())); // md5("hello")
    assert_eq!(code(w.run("POST", "/form?q=1", &h, Some(form))), "I400I5");
    h.push(("content-length", "65".to_string()));
    assert_eq!(code(w.run("POST", "/form?q=1", &h, Some(form))), "I413RL");
}

#[test]
fn anonymous_needs_nothing() {
    let w = World::new();
    let o = w.run("DELETE", "/open/a/b", &[("x-ca-app-id", "10001".to_string())], None);
    assert!(o.forwarded(), "{:?}", o.reply());
    assert_eq!(o.stream.upstream("x-ca-app-id"), None, "no app: the client's copy is removed");
    // A Content-MD5, when sent, must still be the body's.
    let md5 = |v: &str| vec![("content-md5", v.to_string())];
    assert_eq!(code(w.run("POST", "/open/a", &md5("XUFAKrxLKna5cZ2REBfFkg=="), Some(b"hello"))), "OK"); // md5("hello")
    assert_eq!(code(w.run("POST", "/open/a", &md5("XUFAKrxLKna5cZ2REBfFkg=="), Some(b"other"))), "I400I5");
    // The empty body's digest matches it; an empty value claims nothing, whatever the body.
    assert_eq!(code(w.run("GET", "/open/a", &md5("1B2M2Y8AsgTpgAmY7PhCfg=="), None)), "OK");
    assert_eq!(code(w.run("GET", "/open/a", &md5("XUFAKrxLKna5cZ2REBfFkg=="), None)), "I400I5");
    assert_eq!(code(w.run("GET", "/open/a", &md5(""), None)), "OK");
    // Every digest sent, under any spelling, is checked: an empty one first hides nothing.
    let two = [("content-md5", ""), ("content-md5", "bogus==")];
    let o = w.kit.send(&Call { method: "POST", path: "/open/a", headers: &two, body: Some(b"hello"), ..Call::default() });
    assert_eq!(o.code().as_deref(), Some("I400I5"));
    let spelled = [("content-md5", "XUFAKrxLKna5cZ2REBfFkg=="), ("content_md5", "bogus==")];
    let o = w.kit.send(&Call { method: "POST", path: "/open/a", headers: &spelled, body: Some(b"hello"), ..Call::default() });
    assert_eq!(o.code().as_deref(), Some("I400I5"));
    let blank = [("content-md5", " ")];
    let o = w.kit.send(&Call { method: "POST", path: "/open/a", headers: &blank, body: Some(b"hello"), ..Call::default() });
    assert!(o.forwarded() && !o.read_body, "no digest, no body to read");
    // Trailers end the request: the check is made then, never skipped.
    let headers = [("content-md5", "XUFAKrxLKna5cZ2REBfFkg==")];
    let o = w.kit.send(&Call { method: "POST", path: "/open/a", headers: &headers, body: Some(b"other"), trailers: true, ..Call::default() });
    assert_eq!(o.code().as_deref(), Some("I400I5"));
}

#[test]
fn statuses_follow_the_table() {
    for (c, s) in [
        ("A400MA", 400),
        ("A400IK", 400),
        ("A400AC", 400),
        ("A403IS", 403),
        ("S403TE", 403),
        ("I400NC", 400),
        ("S403NU", 403),
        ("I400I5", 400),
        ("I404NF", 404),
        ("I400SG", 400),
        ("A403EP", 403),
        ("I413RL", 413),
    ] {
        assert_eq!(errors::by_code(c).map(|e| e.status), Some(s), "{c}");
    }
}

/// Signed like `signed`, but with the nonce and timestamp headers left out of the signed list.
fn signed_without(path: &str, nonce: &str, ts: i64, unsigned: &str) -> Vec<(&'static str, String)> {
    let mut h = vec![("x-ca-key", "k1".to_string()), ("x-ca-nonce", nonce.to_string()), ("x-ca-timestamp", ts.to_string())];
    let mut block = "x-ca-key:k1\n".to_string();
    let mut listed = vec!["x-ca-key"];
    for (name, value) in [("x-ca-nonce", nonce.to_string()), ("x-ca-timestamp", ts.to_string())] {
        if name != unsigned {
            block += &format!("{name}:{value}\n");
            listed.push(name);
        }
    }
    h.push(("x-ca-signature-headers", listed.join(",")));
    let sts = format!("GET\n\n\n\n\n{block}{path}");
    h.push(("x-ca-signature", sign(Algorithm::HmacSha256, SECRET.as_bytes(), sts.as_bytes())));
    h
}

#[test]
fn nonce_and_timestamp_unsigned_as_aliyun_admits_them_or_refused_when_strict() {
    // Aliyun's Java and PHP demos send both without listing them when the caller names no headers.
    let w = World::new();
    for (i, unsigned) in ["x-ca-nonce", "x-ca-timestamp"].into_iter().enumerate() {
        let o = w.run("GET", "/orders/1", &signed_without("/orders/1", &format!("u0{i}"), NOW, unsigned), None);
        assert_eq!(code(o), "OK", "{unsigned}");
    }
    let strict = World { kit: Kit::new(&CONFIG.replacen("{", r#"{ "signature": { "strict": true },"#, 1), NOW) };
    for unsigned in ["x-ca-nonce", "x-ca-timestamp"] {
        let o = strict.run("GET", "/orders/1", &signed_without("/orders/1", "u1", NOW, unsigned), None);
        assert_eq!(o.code().as_deref(), Some(errors::I400HD.code), "{unsigned}");
        let message = o.message().unwrap();
        assert!(message.to_ascii_lowercase().contains(unsigned), "{message}");
    }
    // Listed in another case: still signed.
    let mut h = signed("/orders/1", "k1", SECRET, Some("u2"), Some(NOW));
    assert_eq!(code(w.run("GET", "/orders/1", &h, None)), "OK");
    h.retain(|(n, _)| *n != "x-ca-nonce");
    h.push(("x-ca-nonce", "u3".into()));
    assert_eq!(code(w.run("GET", "/orders/1", &h, None)), "A403IS", "a changed signed nonce breaks the signature");
}

#[test]
fn a_future_timestamp_keeps_its_nonce_until_it_expires() {
    let kit = Kit::new(
        r#"{ "signature": { "timestampToleranceSeconds": 10, "nonceTtlSeconds": 10 },
              "apps": [ { "appId": 1, "appKey": "k1", "appSecret": "test-app-secret-1-0123456789abcdef" } ],
              "apis": [ { "name": "o", "method": "GET", "path": "/o", "authorizations": [ { "appId": 1 } ] } ] }"#,
        NOW,
    );
    let h = signed("/o", "k1", SECRET, Some("ahead"), Some(NOW + 8_000));
    let h: Vec<(&str, &str)> = h.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let run = |at: i64| {
        kit.clock.0.set(at);
        code(kit.get("/o", &h))
    };
    assert_eq!(run(NOW), "OK");
    assert_eq!(run(NOW + 10_500), "S403NU", "still within timestamp + tolerance");
    assert_eq!(run(NOW + 17_900), "S403NU");
    assert_eq!(run(NOW + 18_000), "S403NU", "at exactly timestamp + tolerance: the timestamp passes, the nonce is still known");
    assert_eq!(run(NOW + 18_001), "S403TE", "the timestamp itself has expired by then");
}

#[test]
fn dot_segments_are_refused_before_routing() {
    let w = World::new();
    for path in ["/open/../orders/1", "/open/%2e%2e/orders/1", "/open/%2E%2E%2Forders%2F1", "/open/./x", "/open/..%5corders/1", "/open/.."] {
        assert_eq!(code(w.run("GET", path, &[], None)), errors::I400PA.code, "{path}");
    }
    for path in ["/open/file.txt", "/open/..hidden", "/open/a.b/c", "/open/.well-known"] {
        assert_eq!(code(w.run("GET", path, &[], None)), "OK", "{path}");
    }
}

#[test]
fn a_path_a_lenient_backend_reads_as_another_apis_is_refused() {
    // A protected API beside looser ones: a spelling of its path that the gateway routes to a looser
    // API, and a backend (Tomcat, Spring, Express, ASP.NET) serves from the protected one, is refused.
    let cfg = r#"{
      "apps": [ { "appId": 10001, "appKey": "k1", "appSecret": "s1" } ],
      "apis": [
        { "name": "admin", "method": "GET", "path": "/api/admin", "authorizations": [ { "appId": 10001 } ] },
        { "name": "item", "method": "GET", "path": "/api/[id]", "authType": "ANONYMOUS" },
        { "name": "Report", "method": "GET", "path": "/Reports/Daily", "authType": "ANONYMOUS" },
        { "name": "report", "method": "GET", "path": "/reports/daily", "authType": "ANONYMOUS" },
        { "name": "docs-dir", "method": "GET", "path": "/docs/", "authType": "ANONYMOUS" },
        { "name": "docs", "method": "GET", "path": "/docs", "authType": "ANONYMOUS" },
        { "name": "head", "method": "HEAD", "path": "/status", "authType": "ANONYMOUS" },
        { "name": "status", "method": "GET", "path": "/status", "authType": "ANONYMOUS" },
        { "name": "any", "method": "ANY", "path": "/*", "authType": "ANONYMOUS" }
      ] }"#;
    let kit = Kit::new(cfg, NOW);
    let run = |method: &str, path: &str| kit.send(&Call { method, path, ..Call::default() });
    for (method, path) in [
        ("GET", "/api/admin;x"),
        ("GET", "/api/admin%3Bjsessionid=1"),
        ("GET", "/api/admin/"),
        ("GET", "/api//admin"),
        ("GET", "/api/ADMIN"),
        ("GET", "/API/Admin;a=b/"),
        ("HEAD", "/api/admin"),
    ] {
        let o = run(method, path);
        assert_eq!((o.status(), o.code().as_deref()), (400, Some(errors::I400PA.code)), "{method} {path}");
    }
    assert!(run("GET", "/api/admin;x").message().unwrap().contains("a backend may read it as another API's path"));
    // The protected API itself still asks for its credentials; spellings that reach the API they
    // were routed to, and APIs whose paths differ only in case or a trailing `/`, go on.
    assert_eq!(code(run("GET", "/api/admin")), errors::A400MA.code);
    for (method, path, api) in [
        ("GET", "/api/Item-7", "item"),
        ("GET", "/api/a;b", "item"),
        ("GET", "/Other/Path/", "any"),
        ("HEAD", "/other", "any"),
        ("GET", "/Reports/Daily", "Report"),
        ("GET", "/reports/daily", "report"),
        ("GET", "/docs/", "docs-dir"),
        ("GET", "/docs", "docs"),
        ("HEAD", "/status", "head"),
        ("GET", "/status", "status"),
    ] {
        let o = run(method, path);
        assert!(o.forwarded(), "{method} {path}: {:?}", o.reply());
        assert_eq!(o.stream.upstream("x-ca-api-name").as_deref(), Some(api), "{method} {path}");
    }
}

#[test]
fn a_template_with_a_capital_letter_has_every_path_read_leniently() {
    // `/v1/users` is the protected `/v1/Users` to Express, though no capital letter is in the request.
    let camel = r#"{
      "apps": [ { "appId": 10001, "appKey": "k1", "appSecret": "s1" } ],
      "apis": [
        { "name": "users", "method": "GET", "path": "/v1/Users", "authorizations": [ { "appId": 10001 } ] },
        { "name": "v1", "method": "ANY", "path": "/v1/*", "authType": "ANONYMOUS" },
        { "name": "Items", "method": "ANY", "path": "/Items", "authType": "ANONYMOUS" },
        { "name": "items", "method": "GET", "path": "/items", "authType": "ANONYMOUS" },
        { "name": "x-any", "method": "ANY", "path": "/x", "authType": "ANONYMOUS" },
        { "name": "x-get", "method": "GET", "path": "/x", "authType": "ANONYMOUS" }
      ] }"#;
    let camel = Kit::new(camel, NOW);
    let send = |method: &str, path: &str| camel.send(&Call { method, path, ..Call::default() });
    assert_eq!(send("GET", "/v1/users").code().as_deref(), Some(errors::I400PA.code), "the lower-case spelling of /v1/Users");
    assert_eq!(send("GET", "/v1/orders").stream.upstream("x-ca-api-name").as_deref(), Some("v1"));
    // Spelled exactly as its own template, a request goes to its API even where another reads alike.
    for (method, path, api) in [("GET", "/Items", "Items"), ("GET", "/items", "items"), ("HEAD", "/x", "x-any"), ("GET", "/x", "x-get")] {
        let o = send(method, path);
        assert_eq!(o.stream.upstream("x-ca-api-name").as_deref(), Some(api), "{method} {path}: {:?}", o.reply());
    }
}

#[test]
fn an_escaped_equals_or_ampersand_cannot_make_a_captured_query_sign_as_another() {
    // Signed over `?dryRun=true&to=bob`: the same StringToSign as a parameter named `dryRun=true`.
    let signed_over = |path: &str| signed(path, "k1", SECRET, Some("n-amb"), Some(NOW));
    let w = World::new();
    let h = signed_over("/orders/1?dryRun=true&to=bob");
    assert_eq!(code(w.run("GET", "/orders/1?dryRun=true&to=bob", &h, None)), "OK");
    for path in ["/orders/1?dryRun%3Dtrue&to=bob", "/orders/1?dryRun%3dtrue&to=bob", "/orders/1?dryRun=true&to%26x=bob"] {
        let w = World::new();
        let h = signed_over(&path.replace("%3D", "=").replace("%3d", "=").replace("%26", "&"));
        let o = w.run("GET", path, &h, None);
        assert_eq!((o.status(), o.code().as_deref()), (400, Some(errors::I400RU.code)), "{path}");
        assert!(o.message().unwrap().contains("signs as two parameters"), "{path}");
    }
    // A value with an escaped `&` (a search for `a&b`) is admitted, unless `signature.strict`.
    let w = World::new();
    let h = signed_over("/orders/1?q=a&b");
    assert_eq!(code(w.run("GET", "/orders/1?q=a%26b", &h, None)), "OK");
    let strict = CONFIG.replacen("\"maxBodyBytes\": 64,", "\"maxBodyBytes\": 64, \"signature\": { \"strict\": true },", 1);
    let kit = Kit::new(&strict, NOW);
    let headers: Vec<(&str, &str)> = h.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let o = kit.send(&Call { method: "GET", path: "/orders/1?q=a%26b", headers: &headers, ..Call::default() });
    assert_eq!(o.code().as_deref(), Some(errors::I400RU.code));
}

#[test]
fn a_compressed_form_the_gateway_would_check_is_refused() {
    let w = World::new();
    let form = |coding: Option<&str>| {
        let mut h = vec![("content-type", "application/x-www-form-urlencoded".to_string()), ("x-ca-key", "k1".to_string())];
        h.extend(coding.map(|c| ("content-encoding", c.to_string())));
        let h: Vec<(&str, &str)> = h.iter().map(|(n, v)| (*n, v.as_str())).collect();
        w.kit.send(&Call { method: "POST", path: "/form", headers: &h, body: Some(b"a=1"), ..Call::default() })
    };
    let o = form(Some("gzip"));
    assert_eq!((o.status(), o.code().as_deref()), (400, Some(errors::I400BD.code)));
    assert!(o.message().unwrap().contains("a form with Content-Encoding `gzip` cannot be checked"));
    assert!(!o.read_body, "refused on the headers");
    // Uncompressed (or `identity`) it goes on to the signature check; a body the gateway does not read
    // (an anonymous API without form parameters) may be compressed.
    assert_eq!(form(Some("identity")).code().as_deref(), Some(errors::A403IS.code));
    assert_eq!(form(None).code().as_deref(), Some(errors::A403IS.code));
    let h = [("content-type", "application/x-www-form-urlencoded".to_string()), ("content-encoding", "gzip".to_string())];
    assert_eq!(
        code(w.kit.send(&Call {
            method: "POST",
            path: "/open/upload",
            headers: &h.iter().map(|(n, v)| (*n, v.as_str())).collect::<Vec<_>>(),
            body: Some(b"\x1f\x8b"),
            ..Call::default()
        })),
        "OK"
    );
}

#[test]
fn a_capacity_change_keeps_every_live_nonce() {
    use cagate_core::NonceStoreConfig;
    let store = MemoryStore::new();
    let mut small = NonceStore::new(NonceStoreConfig::for_capacity(1024));
    small.ensure(&store, [5; 16]);
    for i in 0..500 {
        assert_eq!(small.record(&store, b"k", format!("n{i}").as_bytes(), NOW, 900_000), cagate_core::ReplayOutcome::Fresh);
    }
    let mut large = NonceStore::new(NonceStoreConfig::for_capacity(1 << 20));
    large.ensure(&store, [6; 16]);
    for i in 0..500 {
        assert_eq!(large.record(&store, b"k", format!("n{i}").as_bytes(), NOW + 1, 900_000), cagate_core::ReplayOutcome::Replayed);
    }
}

#[test]
fn an_app_over_its_share_of_the_nonce_store_is_throttled_and_the_others_are_not() {
    let kit = Kit::new(
        r#"{ "signature": { "nonceCapacity": 64, "nonceCapacityPerApp": 1 },
              "apps": [ { "appId": 1, "appKey": "k1", "appSecret": "test-app-secret-1-0123456789abcdef" },
                        { "appId": 2, "appKey": "k2", "appSecret": "s2" } ],
              "apis": [ { "name": "o", "method": "GET", "path": "/o", "authorizations": [ { "appId": 1 }, { "appId": 2 } ] } ] }"#,
        NOW,
    );
    let send = |key: &str, secret: &str, nonce: &str| {
        let h = signed("/o", key, secret, Some(nonce), Some(NOW));
        let h: Vec<(&str, &str)> = h.iter().map(|(n, v)| (*n, v.as_str())).collect();
        kit.get("/o", &h)
    };
    // Nonces spread over 4,096 shards: the flood is refused once one shard holds its share of them.
    let refused = (0..200_000).map(|i| send("k1", SECRET, &format!("flood-{i}"))).find(|o| !o.forwarded()).expect("the flood is refused");
    assert_eq!((refused.status(), refused.code().as_deref()), (429, Some("T429IN")));
    let record = refused.stream.access_record().unwrap();
    assert_eq!(record["appId"], "1", "{record}");
    // The flood goes on, and the other app's nonces are still recorded.
    for i in 0..2_000 {
        send("k1", SECRET, &format!("more-{i}"));
    }
    for i in 0..64 {
        assert_eq!(code(send("k2", "s2", &format!("n-{i}"))), "OK", "nonce {i} of the other app");
    }
    assert_eq!(kit.stats.count("nonce_store_full"), 0, "the store itself is not full");
}

#[test]
fn reference_codes_the_gateway_can_detect() {
    let kit = Kit::new(
        r#"{ "domains": ["api.example.org", "*.example.com"],
              "apis": [ { "name": "open", "method": "ANY", "path": "/open/*", "authType": "ANONYMOUS" },
                        { "name": "tls", "method": "GET", "path": "/tls", "authType": "ANONYMOUS", "protocol": "HTTPS" } ] }"#,
        NOW,
    );
    let run = |method: &str, path: &str, headers: &[(&str, &str)]| {
        let o = kit.send(&Call { method, path, headers, ..Call::default() });
        if o.forwarded() {
            return Ok("OK");
        }
        Err((errors::by_code(&o.code().unwrap()).unwrap().code, o.message().unwrap()))
    };
    let host = |h: &'static str| vec![(":authority", h)];
    assert_eq!(run("GET", "/open/x", &host("api.example.org:8443")), Ok("OK"));
    assert_eq!(run("GET", "/open/x", &host("a.b.example.com")), Ok("OK"));
    assert_eq!(run("GET", "/open/x", &host("example.com")).unwrap_err().0, "I404DO", "the wildcard needs a subdomain");
    for other in ["evil.org,a.example.com", "evil.org a.example.com", "evil.org/a.example.com"] {
        assert_eq!(run("GET", "/open/x", &host(other)).unwrap_err().0, "I404DO", "{other}: not a subdomain");
    }
    assert_eq!(run("GET", "/open/x", &host("evil.org")).unwrap_err(), ("I404DO", "Invalid Domain `evil.org`".to_string()));
    assert_eq!(run("TRACE", "/open/x", &host("api.example.org")).unwrap_err(), ("I405UM", "Unsupported Method `TRACE`".to_string()));
    assert_eq!(run("GET", "/open/%zz", &host("api.example.org")).unwrap_err().0, "I400PA");
    assert_eq!(run("GET", "/open/a%00b", &host("api.example.org")).unwrap_err().0, "I400PA");
    assert_eq!(run("GET", "/open/a?q=%4", &host("api.example.org")).unwrap_err().0, "I400RU");
    let tls = |proto: &'static str| vec![(":authority", "api.example.org"), (":scheme", "http"), ("x-forwarded-proto", proto)];
    assert_eq!(run("GET", "/tls", &tls("https")), Ok("OK"));
    assert_eq!(run("GET", "/tls", &tls("http")).unwrap_err(), ("I403PT", "Invalid protocol HTTP unsupported".to_string()));
}

#[test]
fn a_query_or_form_of_too_many_parameters_is_refused_before_it_is_parsed() {
    let kit = Kit::new(
        r#"{ "maxBodyBytes": 1048576,
              "apis": [ { "name": "f", "method": "ANY", "path": "/f", "authType": "ANONYMOUS",
                          "parameters": [ { "name": "a", "location": "FORM" } ] } ] }"#,
        NOW,
    );
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let send = |path: &str, body: &[u8]| kit.send(&Call { method: "POST", path, headers: &form, body: Some(body), ..Call::default() });
    let many = |n: usize| std::iter::once("a=1".to_string()).chain((1..n).map(|i| format!("x{i}"))).collect::<Vec<_>>().join("&");
    assert!(send("/f", many(1000).as_bytes()).forwarded(), "1000 parameters are parsed");
    let o = send("/f", many(1001).as_bytes());
    assert_eq!(o.code().as_deref(), Some("I400BD"));
    assert!(o.message().unwrap().contains("more than 1000 form parameters"));
    let o = send(&format!("/f?{}", many(1001)), b"a=1");
    assert_eq!(o.code().as_deref(), Some("I400RU"));
    assert_eq!(o.message().as_deref(), Some("Invalid Request Uri `/f?…: more than 1000 query parameters`"));
    // The query is never shown: it may hold an AppCode.
    let o = send("/f?AppCode=SECRET-CODE&x=%zz", b"a=1");
    assert_eq!(o.message().as_deref(), Some("Invalid Request Uri `/f?…: the query cannot be decoded`"));
}

#[test]
fn a_client_s_hop_count_is_removed_without_loop_detection() {
    let w = World::new();
    let o = w.run("GET", "/open/a", &[("x-ca-hops", "99".to_string())], None);
    assert!(o.forwarded());
    assert_eq!(o.stream.upstream("x-ca-hops"), None);
}
