//! The whole request through the engine on fuzzed requests, against a fixed configuration with every
//! plugin type bound (`cagate_fuzz::rich_config`), with the test kit's in-memory hosts and the VM
//! state the adapter keeps. Must never panic; every reply and header edit must be one Envoy can carry.
//!
//! Input: the request format of `cagate_fuzz` (`METHOD PATH\nheaders\n\nbody` after a control byte).
//! `:method` and `:path` headers are added from the first line, before the header lines (the adapter
//! reads both from the header map; a later duplicate does not win). Control byte:
//! - bits 0-1: the header map: 0 and 3 from the header lines, the body in one data frame ending the
//!   request; 1 the same, the body in two data frames then trailers ending the request; 2 the header
//!   section as raw serialized bytes (no `:method`/`:path` added);
//! - bit 2: sign the request as a client would (when `x-ca-key` names an app), so that fuzzed requests
//!   reach the timestamp, nonce, grant and plugin checks;
//! - bit 3: re-sign bearer and `token=` JWTs (HS256 key), so that fuzzed claims reach the claim checks;
//! - bits 4-5: how much later the request is replayed (`cagate_fuzz::LATER_MS`);
//! - bits 6-7: the peer address (`cagate_fuzz::PEERS`).
#![no_main]

use cagate_core::testkit::Kit;
use cagate_core::{backend_failure, Headers};
use cagate_fuzz::{drive, header_lines, rich_config, split_request, with_headers, Env, LATER_MS, NOW, PEERS};
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;

thread_local! {
    static KIT: RefCell<Kit> = RefCell::new(cagate_fuzz::kit(&rich_config()));
}

fuzz_target!(|data: &[u8]| cagate_fuzz::run(data, one));

fn one(data: &[u8]) {
    let Some(input) = split_request(data) else { return };
    let c = input.control;
    KIT.with_borrow_mut(|kit| {
        kit.forget();
        let kit = &*kit;
        let run = |h: &Headers<'_>| {
            for (i, at) in [NOW, NOW + LATER_MS[(c >> 4 & 3) as usize]].into_iter().enumerate() {
                let env = Env { peer: PEERS[(c >> 6) as usize], backend_fails: i == 1, pieces: if c & 3 == 1 { 2 } else { 1 }, trailers: c & 3 == 1 };
                drive(kit, &env, h, input.body, at);
            }
        };
        if c & 3 == 2 {
            if let Some(h) = Headers::from_serialized(input.head) {
                run(&h);
            }
            return;
        }
        let mut pairs = vec![(b":method".to_vec(), input.method.to_vec()), (b":path".to_vec(), input.path.to_vec())];
        pairs.extend(header_lines(input.head));
        if c & 8 != 0 {
            cagate_fuzz::resign_tokens(&mut pairs);
        }
        if c & 4 != 0 {
            let path = pairs[1].1.clone();
            cagate_fuzz::resign_aliyun(&mut pairs, input.method, &path, input.body);
        }
        with_headers(&pairs, true, run);
    });
    // What the response phase maps Envoy's own failure details to.
    if let Some((_, message)) = backend_failure::map_local_reply(input.body) {
        assert!(cagate_fuzz::is_field_value(message.as_bytes()));
    }
}
