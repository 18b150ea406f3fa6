//! Signature verification time per JWT algorithm (the PyJWT vectors of `tests/data`), and how long a
//! key takes to load (its precomputation). A measurement aid, not a test.
//!
//! Natively: `cargo run --release -p cagate-core --example jwt_verify [filter]`.
//! In Wasm: build this file for wasm32-wasip1 and run it under a WASI runtime, e.g. node (V8):
//! `node -e "const{WASI}=require('wasi');const w=new WASI({version:'preview1',args:['x']});
//! WebAssembly.instantiate(require('fs').readFileSync(process.argv[1]),w.getImportObject())
//! .then(({instance})=>w.start(instance))" jwt_verify.wasm`. `cargo build --release --target
//! wasm32-wasip1 -p cagate-core --example jwt_verify` also builds the dev-dependencies, and some do not
//! build for wasm32 (envoy-types pulls in tokio): then build it as the main of a scratch crate that
//! depends on cagate-core, base64 and serde_json, with the workspace's release profile.
//! Times are on-CPU time (the fastest of 7 batches), so other load on the machine does not count.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cagate_core::jwt::jwk::{Alg, Key};
use serde_json::Value;
use std::time::Duration;

/// On-CPU time of this thread (natively) or process (Wasm) in ns, so that other work on a shared
/// machine does not count.
#[cfg(target_arch = "wasm32")]
fn cpu_ns() -> u64 {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        fn clock_time_get(id: u32, precision: u64, out: *mut u64) -> u16;
    }
    let mut t = 0u64;
    // SAFETY: WASI's clock_time_get writes one u64 to `out`; clock 2 is the process CPU-time clock.
    unsafe { clock_time_get(2, 1, &mut t) };
    t
}

#[cfg(not(target_arch = "wasm32"))]
fn cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    s.split_whitespace().next().unwrap().parse().unwrap()
}

/// Runs `f` in 7 batches of about budget/7 of CPU time each (after a warm-up) and returns the fastest
/// batch's µs per call.
fn time<F: FnMut() -> bool>(budget: Duration, mut f: F) -> f64 {
    let mut n = 1u32;
    loop {
        let t = cpu_ns();
        for _ in 0..n {
            assert!(f());
        }
        if cpu_ns() - t >= budget.as_nanos() as u64 / 7 {
            break;
        }
        n *= 2;
    }
    (0..7)
        .map(|_| {
            let t = cpu_ns();
            for _ in 0..n {
                assert!(f());
            }
            (cpu_ns() - t) as f64 / 1e3 / n as f64
        })
        .fold(f64::INFINITY, f64::min)
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
