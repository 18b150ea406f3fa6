//! Native timing of the request path for a signed request and an AppCode request, each run as the
//! adapter runs it (the engine, through the test kit's in-memory hosts: the header map serialized,
//! routed, authenticated, admitted, the backend's header edits applied), and of config compilation.
//! `cargo run --release -p cagate-core --example hotpath [large-config.json]`; `HOTPATH_N` sets the
//! requests per scenario (200,000), fewer for a run under callgrind.
//! A measurement aid for `make bench`, not a test.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use cagate_core::compile;
use cagate_core::testkit::{Call, Kit};
use cagate_core::{sign, Algorithm};
use std::time::Instant;

fn main() {
    let cfg = r#"{"apps":[{"appId":1,"appKey":"k","appSecret":"bench-secret-1-0123456789abcdef","appCodes":["C0DE"]}],
      "apis":[{"name":"orders","method":"GET","path":"/orders/[id]","appCodeAuth":"HEADER","authorizations":[{"appId":1}]}]}"#;
    let now = 1_700_000_000_000i64;
    let kit = Kit::new(cfg, now);
    let ts = now.to_string();
    let sts = format!("GET\napplication/json\n\napplication/json\n\nx-ca-key:k\nx-ca-signature-method:HmacSHA256\nx-ca-timestamp:{ts}\n/orders/12345?expand=items&page=2");
    let sig = sign(Algorithm::HmacSha256, b"bench-secret-1-0123456789abcdef", sts.as_bytes());
    // `:method` and `:path` come first in the map, from the call.
    let signed: Vec<(&str, &str)> = vec![
        (":authority", "localhost"),
        ("accept", "application/json"),
        ("content-type", "application/json"),
        ("user-agent", "bench"),
        ("x-ca-key", "k"),
        ("x-ca-signature-method", "HmacSHA256"),
        ("x-ca-timestamp", &ts),
        ("x-ca-signature-headers", "x-ca-key,x-ca-timestamp,x-ca-signature-method"),
        ("x-ca-signature", &sig),
    ];
    let appcode: Vec<(&str, &str)> = vec![(":authority", "localhost"), ("accept", "application/json"), ("authorization", "APPCODE C0DE")];
    for (name, headers) in [("signed", &signed), ("appcode", &appcode)] {
        let call = Call { method: "GET", path: "/orders/12345?expand=items&page=2", headers, ..Call::default() };
        let n: u32 = std::env::var("HOTPATH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
        let t = Instant::now();
        for i in 0..n {
            let o = kit.send(&call);
            assert!(o.forwarded(), "{:?}", o.reply());
            if i % 4096 == 0 {
                kit.stats.0.borrow_mut().clear(); // the kit counts every request: keep that bounded
            }
        }
        println!("{name:8} {:6.2} us/request (native)", t.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
    // JWT signature verification alone, per algorithm, with the committed PyJWT vectors.
    let vectors: serde_json::Value = serde_json::from_str(include_str!("../tests/data/jwt_vectors.json")).unwrap();
    for v in vectors.as_array().unwrap() {
        let key = cagate_core::jwt::jwk::Key::from_jwk(&v["jwk"]).unwrap();
        let alg = cagate_core::jwt::jwk::Alg::parse(v["alg"].as_str().unwrap()).unwrap();
        let token = v["token"].as_str().unwrap();
        let (input, sig) = token.rsplit_once('.').unwrap();
        use base64::Engine;
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sig).unwrap();
        let n = 200;
        let t = Instant::now();
        for _ in 0..n {
            assert!(key.verify(alg, input.as_bytes(), &sig));
        }
        println!("verify {:6} {:8.1} us (native)", v["alg"].as_str().unwrap(), t.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
    if let Some(path) = std::env::args().nth(1) {
        let doc = std::fs::read(path).unwrap_or_default();
        let t = Instant::now();
        let g = compile(&doc).unwrap_or_else(|p| panic!("{:?}", &p[..p.len().min(5)]));
        println!("compile  {:6.1} ms for {} apps, {} apis (native)", t.elapsed().as_secs_f64() * 1e3, g.app_count(), g.apis.len());
    }
}
