//! The whole request decision on fuzzed requests, against a fixed configuration with every plugin
//! type bound (`cagate_fuzz::rich_config`), the in-memory store, and the VM state the adapter keeps.
//! Must never panic; every reply and header edit must be one Envoy can carry.
//!
//! Input: the request format of `cagate_fuzz` (`METHOD PATH\nheaders\n\nbody` after a control byte).
//! `:method` and `:path` headers are added from the first line, before the header lines (the adapter
//! reads both from the header map; a later duplicate does not win). Control byte:
//! - bits 0-1: the header map: 0 and 3 through `headers::serialize` and `Headers::from_serialized`,
//!   1 `Headers::from_pairs`, 2 the header section as raw serialized bytes (no `:method`/`:path` added);
//! - bit 2: sign the request as a client would (when `x-ca-key` names an app), so that fuzzed requests
//!   reach the timestamp, nonce, grant and plugin checks;
//! - bit 3: re-sign bearer and `token=` JWTs (HS256 key), so that fuzzed claims reach the claim checks;
//! - bits 4-5: how much later the request is replayed (`cagate_fuzz::LATER_MS`);
//! - bits 6-7: the peer address (`cagate_fuzz::PEERS`).
#![no_main]

use cagate_core::{backend_failure, Headers, MemoryStore};
use cagate_fuzz::{drive, header_lines, rich_config, split_request, with_headers, Env, Fixture, LATER_MS, NOW, PEERS};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| Fixture::new(&rich_config()))
}

fuzz_target!(|data: &[u8]| cagate_fuzz::run(data, one));

fn one(data: &[u8]) {
    let Some(input) = split_request(data) else { return };
    let fx = fixture();
    let mut rt = fx.rt.lock().unwrap_or_else(|e| e.into_inner());
    cagate_fuzz::reset(&mut rt);
    let store = MemoryStore::new();
    let c = input.control;
    let run = |rt: &mut cagate_core::Runtime, h: &Headers<'_>| {
        for (i, at) in [NOW, NOW + LATER_MS[(c >> 4 & 3) as usize]].into_iter().enumerate() {
            let mut env = Env { gw: &fx.gw, nonces: &fx.nonces, rt: &mut *rt, store: &store, peer: PEERS[(c >> 6) as usize], backend_fails: i == 1 };
            drive(&mut env, h, input.body, at);
        }
    };
    match c & 3 {
        2 => {
            if let Some(h) = Headers::from_serialized(input.head) {
                run(&mut rt, &h);
            }
        }
        mode => {
            let mut pairs = vec![(b":method".to_vec(), input.method.to_vec()), (b":path".to_vec(), input.path.to_vec())];
            pairs.extend(header_lines(input.head));
            if c & 8 != 0 {
                cagate_fuzz::resign_tokens(&mut pairs);
            }
            if c & 4 != 0 {
                let path = pairs[1].1.clone();
                cagate_fuzz::resign_aliyun(&mut pairs, input.method, &path, input.body);
            }
            with_headers(&pairs, mode != 1, |h| run(&mut rt, h));
        }
    }
    // What the response phase maps Envoy's own failure details to.
    if let Some((_, message)) = backend_failure::map_local_reply(input.body) {
        assert!(cagate_fuzz::is_field_value(message.as_bytes()));
    }
}

