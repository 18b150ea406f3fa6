//! `cagate_core::compile` on arbitrary bytes as the configuration document. A configuration that
//! compiles then serves a few fixed requests (`cagate_fuzz::exercise`): whatever the validator lets
//! through must not make the request path panic. A refused one must say why.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cagate_fuzz::run(data, one));

fn one(data: &[u8]) {
    match cagate_core::compile(data) {
        Ok(gw) => {
            for w in &gw.warnings {
                let _ = w.len();
            }
            cagate_fuzz::exercise(&gw, "");
            cagate_fuzz::exercise(&gw, "/orders");
        }
        Err(problems) => {
            assert!(!problems.is_empty(), "refused without a problem");
            for p in &problems {
                let _ = p.to_string();
            }
        }
    }
}

