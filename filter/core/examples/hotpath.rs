//! Native timing of the request path (route + authenticate) for a signed request, an AppCode request
//! and config compilation. `cargo run --release -p cagate-core --example hotpath [large-config.json]`.
//! A measurement aid for `make bench`, not a test.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use cagate_core::compile;
use cagate_core::Headers;
use cagate_core::NonceStore;
use cagate_core::{authenticate, route, Request};
use cagate_core::{sign, Algorithm};
use cagate_core::{FixedClock, MemoryStore};
use std::time::Instant;

fn main() {
    let cfg = br#"{"apps":[{"appId":1,"appKey":"k","appSecret":"bench-secret-1-0123456789abcdef","appCodes":["C0DE"]}],
      "apis":[{"name":"orders","method":"GET","path":"/orders/[id]","appCodeAuth":"HEADER","authorizations":[{"appId":1}]}]}"#;
    let gw = compile(cfg).unwrap_or_else(|p| panic!("{p:?}"));
    let store = MemoryStore::new();
    let mut nonces = NonceStore::new(gw.nonce_store);
    nonces.ensure(&store, [0; 16]);
    let now = 1_700_000_000_000i64;
    let ts = now.to_string();
    let sts = format!("GET\napplication/json\n\napplication/json\n\nx-ca-key:k\nx-ca-signature-method:HmacSHA256\nx-ca-timestamp:{ts}\n/orders/12345?expand=items&page=2");
    let sig = sign(Algorithm::HmacSha256, b"bench-secret-1-0123456789abcdef", sts.as_bytes());
    let signed: Vec<(&[u8], &[u8])> = vec![
        (b":method", b"GET"),
        (b":path", b"/orders/12345?expand=items&page=2"),
        (b":authority", b"localhost"),
        (b"accept", b"application/json"),
        (b"content-type", b"application/json"),
        (b"user-agent", b"bench"),
        (b"x-ca-key", b"k"),
        (b"x-ca-signature-method", b"HmacSHA256"),
        (b"x-ca-timestamp", ts.as_bytes()),
        (b"x-ca-signature-headers", b"x-ca-key,x-ca-timestamp,x-ca-signature-method"),
        (b"x-ca-signature", sig.as_bytes()),
    ];
    let appcode: Vec<(&[u8], &[u8])> = vec![
        (b":method", b"GET"),
        (b":path", b"/orders/12345?expand=items&page=2"),
        (b":authority", b"localhost"),
        (b"accept", b"application/json"),
        (b"authorization", b"APPCODE C0DE"),
    ];
    for (name, pairs) in [("signed", &signed), ("appcode", &appcode)] {
        let buf = cagate_core::headers::serialize(pairs);
        let n = 200_000;
        let t = Instant::now();
        for _ in 0..n {
            let h = Headers::from_serialized(&buf).unwrap_or_default();
            let req = Request { method: h.get(b":method").unwrap_or_default(), path: h.get(b":path").unwrap_or_default(), headers: &h };
            let routed = route(&gw, &req).unwrap_or_else(|r| panic!("{r:?}"));
            let id = authenticate(&gw, &nonces, &req, &routed, None, &FixedClock(now), &store);
            assert!(id.is_ok(), "{id:?}");
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
