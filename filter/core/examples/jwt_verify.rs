//! Signature verification time per JWT algorithm (the PyJWT vectors of `tests/data`), and how long a
//! key takes to load (its precomputation). A measurement aid, not a test.
//!
//! Natively: `cargo run --release -p cagate-core --example jwt_verify [filter]`.
//! In Wasm: `cargo build --release --target wasm32-wasip1 -p cagate-core --example jwt_verify`, then run
//! `target/wasm32-wasip1/release/examples/jwt_verify.wasm` under a WASI runtime, e.g. node (V8):
//! `node --no-warnings -e "const{WASI}=require('wasi');const w=new WASI({version:'preview1',args:['x']});
//! WebAssembly.instantiate(require('fs').readFileSync(process.argv[1]),w.getImportObject())
//! .then(({instance})=>w.start(instance))" target/wasm32-wasip1/release/examples/jwt_verify.wasm`.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cagate_core::jwt::jwk::{Alg, Key};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Runs `f` for at least `budget` (after a warm-up), returns the median of 5 batches in µs per call.
fn time<F: FnMut() -> bool>(budget: Duration, mut f: F) -> f64 {
    let mut n = 1u32;
    loop {
        let t = Instant::now();
        for _ in 0..n {
            assert!(f());
        }
        if t.elapsed() >= budget / 5 {
            break;
        }
        n *= 2;
    }
    let mut batches: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                assert!(f());
            }
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        })
        .collect();
    batches.sort_by(|a, b| a.partial_cmp(b).unwrap());
    batches[2]
}

fn main() {
    let filter = std::env::args().nth(1).unwrap_or_default();
    let vectors: Vec<Value> = serde_json::from_str(include_str!("../tests/data/jwt_vectors.json")).unwrap();
    let budget = Duration::from_millis(if cfg!(target_arch = "wasm32") { 1000 } else { 500 });
    println!("{:<6} {:>12} {:>12}", "alg", "verify µs", "key load µs");
    for v in &vectors {
        let name = v["alg"].as_str().unwrap();
        if !name.contains(filter.as_str()) {
            continue;
        }
        let alg = Alg::parse(name).unwrap();
        let key = Key::from_jwk(&v["jwk"]).unwrap();
        let token = v["token"].as_str().unwrap();
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        let mut bad = sig.clone();
        bad[sig.len() / 2] ^= 1;
        assert!(key.verify(alg, input.as_bytes(), &sig), "{name}: the vector does not verify");
        assert!(!key.verify(alg, input.as_bytes(), &bad), "{name}: a tampered signature verifies");
        let verify = time(budget, || key.verify(alg, input.as_bytes(), &sig));
        let load = time(budget / 4, || Key::from_jwk(&v["jwk"]).is_ok());
        println!("{name:<6} {verify:>12.1} {load:>12.1}");
    }
}
