//! The digest signature's StringToSign and its URL helpers on arbitrary requests, with properties:
//! a request signed over the canonical (or the raw-path) StringToSign verifies; `header_safe` output is
//! printable ASCII; percent-decoding never grows its input, borrows when there is nothing to decode,
//! and undoes percent-encoding; the signed parameter tail is empty or starts with `?`.
//!
//! Input: the request format of `cagate_fuzz`. Control byte: bits 0-1 the header map as in
//! `request_path`; bit 2 HmacSHA1 (else HmacSHA256); bit 3 the body is the signed form; bits 4-7 pick
//! the secret.
#![no_main]

use cagate_core::{
    append_signed_parameters, header_safe, headers, is_form, parse_urlencoded, percent_decode, sign, split_path, trim, Algorithm, Headers, Precedence,
    Signed, StringToSign, UrlParam,
};
use cagate_fuzz::{header_lines, refs, split_request};
use cagate_digest::{HmacSha1, HmacSha256};
use libfuzzer_sys::fuzz_target;

const SECRETS: [&[u8]; 4] = [b"test-app-secret-1-0123456789abcdef", b"s", b"", &[0xff; 80]];

fn percent_encode_all(s: &[u8]) -> Vec<u8> {
    s.iter().flat_map(|b| format!("%{b:02x}").into_bytes()).collect()
}

fn check_decode(s: &[u8]) {
    for plus in [false, true] {
        let d = percent_decode(s, plus);
        assert!(d.len() <= s.len(), "decoding grew the input");
        let nothing = !s.iter().any(|&b| b == b'%' || (plus && b == b'+'));
        if nothing {
            assert_eq!(&*d, s, "nothing to decode, yet changed");
        }
        assert_eq!(&*percent_decode(&percent_encode_all(s), plus), s, "percent-encoding does not round-trip");
    }
    let mut params: Vec<UrlParam<'_>> = Vec::new();
    parse_urlencoded(s, &mut params);
    assert!(params.len() <= s.split(|&b| b == b'&').count());
    for precedence in [Precedence::Form, Precedence::Query] {
        let mut tail = Vec::new();
        append_signed_parameters(s, Some(s), precedence, &mut tail);
        assert!(tail.is_empty() || tail[0] == b'?', "signed parameters do not start with ?");
    }
}

fn check(method: &[u8], path: &[u8], h: &Headers<'_>, body: &[u8], control: u8) {
    let form = (control & 8 != 0 || is_form(h.get(b"content-type"))).then_some(body);
    let sts = StringToSign::build(&Signed { method, path, headers: h, form });
    let canonical = sts.canonical();
    let alg = if control & 4 != 0 { Algorithm::HmacSha1 } else { Algorithm::HmacSha256 };
    let secret = SECRETS[(control >> 4) as usize % SECRETS.len()];
    let (Some(sha256), Some(sha1)) = (HmacSha256::new(secret), HmacSha1::new(secret)) else {
        return;
    };
    let good = sign(alg, secret, &canonical);
    assert!(sts.verify(alg, &sha256, &sha1, good.as_bytes()), "its own signature does not verify");
    assert!(sts.verify(alg, &sha256, &sha1, format!(" {good}\t").as_bytes()), "surrounding white space is not ignored");
    let raw = [&sts.prefix[..], sts.raw_path, &sts.tail].concat();
    assert!(sts.verify(alg, &sha256, &sha1, sign(alg, secret, &raw).as_bytes()), "the raw-path signature does not verify");
    let other = if alg == Algorithm::HmacSha1 { Algorithm::HmacSha256 } else { Algorithm::HmacSha1 };
    assert!(!sts.verify(other, &sha256, &sha1, good.as_bytes()), "a signature verifies under the other algorithm");
    if let Some(given) = h.get(b"x-ca-signature") {
        let _ = sts.verify(alg, &sha256, &sha1, given);
    }
    let _ = Algorithm::from_header(h.get(b"x-ca-signature-method"));
    assert!(sts.tail.is_empty() || sts.tail[0] == b'?');
    assert_eq!(canonical.len(), sts.prefix.len() + sts.decoded_path.len() + sts.tail.len());
    let shown = header_safe(&canonical);
    assert!(shown.bytes().all(|b| (0x20..0x7f).contains(&b)), "header_safe let a byte through: {shown:?}");
    let (p, q) = split_path(path);
    assert_eq!(p.len() + q.len() + usize::from(p.len() < path.len()), path.len());
    check_decode(q);
    check_decode(body);
    let t = trim(body);
    assert!(t.len() <= body.len());
}

fuzz_target!(|data: &[u8]| cagate_fuzz::run(data, one));

fn one(data: &[u8]) {
    let Some(input) = split_request(data) else { return };
    let c = input.control;
    match c & 3 {
        2 => {
            if let Some(h) = Headers::from_serialized(input.head) {
                check(input.method, input.path, &h, input.body, c);
            }
        }
        mode => {
            let pairs = header_lines(input.head);
            let r = refs(&pairs);
            if mode == 1 {
                check(input.method, input.path, &Headers::from_pairs(r), input.body, c);
            } else {
                let buf = headers::serialize(&r);
                if let Some(h) = Headers::from_serialized(&buf) {
                    check(input.method, input.path, &h, input.body, c);
                }
            }
        }
    }
    check_decode(input.path);
}

