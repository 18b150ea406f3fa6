//! RSA signature verification (RS256/384/512: PKCS #1 v1.5; PS256/384/512: PSS with MGF1 and a salt
//! as long as the hash, RFC 7518 3.5), public-key operations only. The modular exponentiation is
//! Montgomery multiplication on limbs sized for the target: 22-bit limbs held in doubles, two columns
//! per SIMD vector, in Wasm (`rsa/mont_f64.rs`: Wasm has no 128-bit product, and V8 sends every
//! integer product to one multiplier), 64-bit limbs with 128-bit products natively (`rsa/mont64.rs`). Nothing here touches a secret, so variable time is fine (the padding
//! checks are still made without an early exit).

use sha2::digest::Digest;
use subtle::ConstantTimeEq;

// The modular exponentiation: doubles in Wasm, 64-bit limbs natively (chosen at compile time;
// the tests run both, and the feature `rsa-f64` puts the Wasm engine into a native build, so that
// the core's RSA vectors run on it too).
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[cfg_attr(feature = "rsa-f64", allow(dead_code))]
mod adx;
#[cfg(any(not(target_arch = "wasm32"), test))]
#[cfg_attr(feature = "rsa-f64", allow(dead_code))]
mod mont64;
#[cfg(any(target_arch = "wasm32", test, feature = "rsa-f64"))]
mod mont_f64;
#[cfg(not(any(target_arch = "wasm32", feature = "rsa-f64")))]
use mont64::Mont;
#[cfg(any(target_arch = "wasm32", feature = "rsa-f64"))]
use mont_f64::Mont;

/// The Montgomery multiplication and squaring of an exponentiation engine (operands below 2n, in
/// the engine's limbs), so that the exponentiation itself is written once, in `ladder`.
trait Montgomery {
    type Limb: Copy;
    type Scratch;
    /// a·b/R mod n into `out`.
    fn product(&self, a: &[Self::Limb], b: &[Self::Limb], scratch: &mut Self::Scratch, out: &mut [Self::Limb]);
    /// a²/R mod n into `out`.
    fn square(&self, a: &[Self::Limb], scratch: &mut Self::Scratch, out: &mut [Self::Limb]);
}

/// s^e mod n (below 2n, in the engine's limbs) for an odd e >= 3 (what `RsaKey::new` accepts; e = 1
/// would come out as s^2), given s and x = s·R: left to right, a square per bit of e and a
/// multiplication by x per set bit. The last multiplication, for e's lowest bit, is by s itself,
/// which also leaves the Montgomery form: s^(e-1)·R · s / R = s^e.
fn ladder<M: Montgomery>(m: &M, x: &[M::Limb], s: &[M::Limb], e: u64, scratch: &mut M::Scratch) -> Vec<M::Limb> {
    debug_assert!(e >= 3 && e & 1 == 1, "ladder: the exponent must be odd and at least 3");
    let (mut acc, mut tmp) = (x.to_vec(), x.to_vec());
    for i in (1..63 - e.leading_zeros()).rev() {
        m.square(&acc, scratch, &mut tmp);
        std::mem::swap(&mut acc, &mut tmp);
        if e >> i & 1 == 1 {
            m.product(&acc, x, scratch, &mut tmp);
            std::mem::swap(&mut acc, &mut tmp);
        }
    }
    m.square(&acc, scratch, &mut tmp);
    m.product(&tmp, s, scratch, &mut acc);
    acc
}

/// A public key prepared for repeated verification.
#[derive(Clone)]
pub(crate) struct RsaKey {
    /// The modulus with its Montgomery constants.
    mont: Mont,
    /// Modulus, big-endian bytes without leading zeros (to check s < n).
    n_be: Vec<u8>,
    e: u64,
    bits: usize,
}

/// Big-endian byte strings without leading zeros, compared as numbers.
fn be_less(a: &[u8], b: &[u8]) -> bool {
    let a = &a[a.iter().position(|&x| x != 0).unwrap_or(a.len())..];
    a.len() < b.len() || (a.len() == b.len() && a < b)
}

impl RsaKey {
    pub(crate) fn new(n_be: &[u8], e_be: &[u8]) -> Result<RsaKey, String> {
        let n_be = &n_be[n_be.iter().position(|&b| b != 0).unwrap_or(n_be.len())..];
        let bits = n_be.first().map_or(0, |top| n_be.len() * 8 - top.leading_zeros() as usize);
        if bits < 2048 {
            return Err("RSA keys shorter than 2048 bits are refused".into());
        }
        if bits > 8192 {
            return Err("RSA keys longer than 8192 bits are refused".into());
        }
        if n_be.last().is_some_and(|b| b & 1 == 0) {
            return Err("invalid RSA key: even modulus".into());
        }
        let e_bytes = &e_be[e_be.iter().position(|&b| b != 0).unwrap_or(e_be.len())..];
        if e_bytes.is_empty() || e_bytes.len() > 8 {
            return Err("invalid RSA key: unsupported exponent".into());
        }
        let e = e_bytes.iter().fold(0u64, |acc, &b| acc << 8 | b as u64);
        if e < 3 || e & 1 == 0 {
            return Err("invalid RSA key: unsupported exponent".into());
        }
        Ok(RsaKey { mont: Mont::new(n_be, bits), n_be: n_be.to_vec(), e, bits })
    }

    /// s^e mod n as big-endian bytes of the modulus' length; `None` if s >= n.
    fn public_op(&self, sig: &[u8]) -> Option<Vec<u8>> {
        let len = self.bits.div_ceil(8);
        if sig.len() != len || !be_less(sig, &self.n_be) {
            return None;
        }
        Some(self.mont.pow(sig, self.e, len))
    }

    /// RSASSA-PKCS1-v1_5 verification (RFC 8017 8.2.2): the expected encoding
    /// `00 01 FF..FF 00 DigestInfo(prefix || H(msg))` is built (EMSA-PKCS1-v1_5-ENCODE, at least 8
    /// bytes of FF) and compared with the recovered one as a whole, so no parsing of the recovered
    /// encoding can be fooled (BER lengths, a missing NULL, garbage after the hash are all refused).
    pub(crate) fn verify_pkcs1<D: Digest>(&self, prefix: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        let Some(em) = self.public_op(sig) else { return false };
        let hash = D::digest(msg);
        let t_len = prefix.len() + hash.len();
        let Some(ps_len) = em.len().checked_sub(t_len + 3).filter(|&ps| ps >= 8) else { return false };
        let mut expected = Vec::with_capacity(em.len());
        expected.extend_from_slice(&[0x00, 0x01]);
        expected.resize(2 + ps_len, 0xff);
        expected.push(0x00);
        expected.extend_from_slice(prefix);
        expected.extend_from_slice(&hash);
        em.ct_eq(&expected).into()
    }

    /// RSASSA-PSS verification (RFC 8017 8.1.2) with MGF1 over the same hash and the salt length fixed
    /// at the hash length (RFC 7518 3.5: 32, 48 and 64 bytes for PS256, PS384 and PS512), as Envoy's
    /// jwt_authn requires: a signature made with any other salt length is refused.
    pub(crate) fn verify_pss<D: Digest>(&self, msg: &[u8], sig: &[u8]) -> bool {
        self.public_op(sig).is_some_and(|em| emsa_pss_verify::<D>(&em, self.bits, msg))
    }
}

/// EMSA-PSS-VERIFY (RFC 8017 9.1.2) with MGF1 over `D` and sLen = hLen, on the recovered block `full`
/// (s^e mod n as big-endian bytes of the modulus' length) of a `mod_bits`-bit modulus. Every check is
/// made (none returns early once the lengths are known to fit), and the verdict is their conjunction.
fn emsa_pss_verify<D: Digest>(full: &[u8], mod_bits: usize, msg: &[u8]) -> bool {
    let h_len = <D as Digest>::output_size();
    let s_len = h_len;
    // emBits = modBits - 1; the modulus-length block has one extra leading byte (which must be zero)
    // when emBits is a multiple of 8.
    let em_bits = mod_bits.saturating_sub(1);
    let em_len = em_bits.div_ceil(8);
    if full.len() != mod_bits.div_ceil(8) {
        return false;
    }
    let Some((lead, em)) = full.len().checked_sub(em_len).and_then(|l| full.split_at_checked(l)) else {
        return false;
    };
    // Step 3: emLen >= hLen + sLen + 2. EM = maskedDB (emLen - hLen - 1) || H (hLen) || 0xbc, and
    // DB = PS (emLen - hLen - sLen - 2 zero bytes) || 0x01 || salt (sLen).
    let Some(db_len) = em_len.checked_sub(h_len + 1) else { return false };
    let Some(ps_len) = db_len.checked_sub(s_len + 1) else { return false };
    let Some((masked_db, rest)) = em.split_at_checked(db_len) else { return false };
    let Some((h, trailer)) = rest.split_at_checked(h_len) else { return false };
    // The 8·emLen - emBits leftmost bits of EM (0 to 7 of them) must be zero.
    let top_mask = 0xffu8.checked_shr((8 * em_len - em_bits) as u32).unwrap_or(0);
    let mut bad = lead.iter().fold(0u8, |acc, &b| acc | b);
    // Step 4: the trailer field is exactly one byte, 0xbc.
    bad |= match trailer {
        [t] => t ^ 0xbc,
        _ => 0xff,
    };
    // Step 6.
    bad |= masked_db.first().map_or(0xff, |&b| b & !top_mask);
    // Steps 7-9: DB = maskedDB xor MGF1(H, emLen - hLen - 1), its leftmost bits cleared.
    let mut db = masked_db.to_vec();
    for (counter, chunk) in (0u32..).zip(db.chunks_mut(h_len)) {
        let mask = D::new().chain_update(h).chain_update(counter.to_be_bytes()).finalize();
        for (x, m) in chunk.iter_mut().zip(mask.iter()) {
            *x ^= m;
        }
    }
    if let Some(first) = db.first_mut() {
        *first &= top_mask;
    }
    // Step 10: PS is exactly emLen - hLen - sLen - 2 zero bytes, then 0x01; the salt is the last sLen
    // bytes (step 11).
    let Some((ps, rest)) = db.split_at_checked(ps_len) else { return false };
    let Some((one, salt)) = rest.split_first() else { return false };
    bad |= ps.iter().fold(0u8, |acc, &b| acc | b);
    bad |= one ^ 0x01;
    bad |= u8::from(salt.len() != s_len);
    // Steps 12-14: H' = Hash(0x00 * 8 || mHash || salt) must equal H.
    let m_hash = D::digest(msg);
    let h2 = D::new().chain_update([0u8; 8]).chain_update(&m_hash).chain_update(salt).finalize();
    let same: bool = h2.as_slice().ct_eq(h).into();
    same & (bad == 0)
}

pub(crate) const SHA256_PREFIX: &[u8] =
    &[0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];
pub(crate) const SHA384_PREFIX: &[u8] =
    &[0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30];
pub(crate) const SHA512_PREFIX: &[u8] =
    &[0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Little-endian 32-bit limbs; a deliberately naive reference (schoolbook product, bit-by-bit
    /// reduction).
    fn to_u32(be: &[u8]) -> Vec<u32> {
        let mut v: Vec<u32> = be.rchunks(4).map(|c| c.iter().fold(0u32, |a, &b| a << 8 | b as u32)).collect();
        v.push(0);
        v
    }

    fn mulmod(a: &[u32], b: &[u32], n: &[u32]) -> Vec<u32> {
        let mut p = vec![0u32; a.len() + b.len()];
        for (i, &x) in a.iter().enumerate() {
            let mut c = 0u64;
            for (j, &y) in b.iter().enumerate() {
                let s = p[i + j] as u64 + x as u64 * y as u64 + c;
                p[i + j] = s as u32;
                c = s >> 32;
            }
            p[i + b.len()] = c as u32;
        }
        let mut r = vec![0u32; n.len()];
        for bit in (0..p.len() * 32).rev() {
            let mut carry = p[bit / 32] >> (bit % 32) & 1;
            for limb in r.iter_mut() {
                let top = *limb >> 31;
                *limb = *limb << 1 | carry;
                carry = top;
            }
            if ge(&r, n) {
                let mut borrow = 0i64;
                for (x, &y) in r.iter_mut().zip(n) {
                    let d = *x as i64 - y as i64 + borrow;
                    *x = d as u32;
                    borrow = d >> 32;
                }
            }
        }
        r
    }

    fn ge(a: &[u32], b: &[u32]) -> bool {
        for i in (0..a.len()).rev() {
            if a[i] != b[i] {
                return a[i] > b[i];
            }
        }
        true
    }

    fn powmod(s: &[u32], e: u64, n: &[u32]) -> Vec<u32> {
        let mut acc = s.to_vec();
        for i in (0..63 - e.leading_zeros()).rev() {
            acc = mulmod(&acc, &acc, n);
            if e >> i & 1 == 1 {
                acc = mulmod(&acc, s, n);
            }
        }
        acc
    }

    fn be_of(v: &[u32], len: usize) -> Vec<u8> {
        let mut out: Vec<u8> = v.iter().rev().flat_map(|x| x.to_be_bytes()).collect();
        out.drain(..out.len() - len);
        out
    }

    /// The random bytes of the RSA tests, the engines' included.
    pub(super) struct Rng(pub(super) u64);
    impl Rng {
        pub(super) fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len)
                .map(|_| {
                    self.0 ^= self.0 << 13;
                    self.0 ^= self.0 >> 7;
                    self.0 ^= self.0 << 17;
                    (self.0 >> 24) as u8
                })
                .collect()
        }

        /// A random odd modulus of exactly `bits` bits, big-endian.
        fn odd_modulus(&mut self, bits: usize) -> Vec<u8> {
            let len = bits.div_ceil(8);
            let mut n_be = self.bytes(len);
            let top_bits = bits - 8 * (len - 1);
            n_be[0] = (n_be[0] & ((1u16 << top_bits) - 1) as u8) | 1 << (top_bits - 1);
            if let Some(last) = n_be.last_mut() {
                *last |= 1;
            }
            n_be
        }
    }

    #[test]
    fn public_op_matches_a_naive_reference() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        // Bit lengths around limb and byte boundaries (Wasm: 22 * 96 = 2112 bits hold 2110-bit keys,
        // and 2,727-bit ones go to 21-bit limbs; native: 64 * 33 = 2112),
        // with a random modulus or (`true`) one just below 2^bits, its top 64 bits all ones, where a
        // Montgomery result below 2n overflows the top limb most often.
        for (bits, e, top_ones) in [
            (2048usize, 65537u64, false),
            (2048, 65537, true),
            (2049, 3, false),
            (2050, 65537, false),
            (2051, 17, false),
            (2053, 65537, false),
            (2078, 65537, false),
            (2079, 0x1_0000_0001, false),
            (2111, 65537, false),
            (2112, 3, true),
            (2113, 65537, false),
            (3072, 65537, false),
            (3072, 65537, true),
            (4096, 65537, false),
            (2726, 3, true),
            (2727, 65537, true),
            (8192, 65537, false),
        ] {
            let len = bits.div_ceil(8);
            let top_bits = bits - 8 * (len - 1);
            let mut n_be = rng.odd_modulus(bits);
            if top_ones {
                n_be[0] = ((1u16 << top_bits) - 1) as u8;
                n_be[1..8].fill(0xff);
            }
            let key = RsaKey::new(&n_be, &e.to_be_bytes()).unwrap();
            assert_eq!(key.bits, bits);
            let n = to_u32(&n_be);
            let mut n_minus_1 = n_be.clone();
            *n_minus_1.last_mut().unwrap() -= 1;
            let mut one = vec![0u8; len];
            one[len - 1] = 1;
            // The naive reference is slow: fewer cases for the large keys.
            let mut cases = if bits > 4000 { vec![n_minus_1] } else { vec![one, n_minus_1, vec![0u8; len]] };
            for _ in 0..if bits > 4000 { 1 } else { 3 } {
                let mut s = rng.bytes(len);
                s[0] &= n_be[0] >> 1;
                cases.push(s);
            }
            for s in cases {
                let expected = be_of(&powmod(&to_u32(&s), e, &n), len);
                assert_eq!(key.public_op(&s).unwrap(), expected, "{bits} bits, e = {e}");
                // Both engines, whichever the target uses.
                assert_eq!(mont_f64::Mont::new(&n_be, bits).pow(&s, e, len), expected, "doubles");
                assert_eq!(mont64::Mont::new(&n_be, bits).pow(&s, e, len), expected, "64-bit limbs");
                assert_eq!(mont64::Mont::new(&n_be, bits).portable().pow(&s, e, len), expected, "64-bit, portable");
            }
            assert!(key.public_op(&n_be).is_none(), "s = n");
            assert!(key.public_op(&vec![0xff; len]).is_none(), "s > n");
            assert!(key.public_op(&n_be[1..]).is_none(), "short");
        }
    }

    /// The three engines (doubles, 64-bit portable, 64-bit in assembly where the processor has
    /// it) agree on many random keys and signatures: wider than the naive reference can afford.
    #[test]
    fn the_engines_agree_on_random_keys() {
        let mut rng = Rng(0x0dd_ba11);
        for case in 0..240usize {
            let bits: usize = [2048, 2049, 2056, 2111, 2112, 2113, 2176, 3072, 4096][case % 9];
            let len = bits.div_ceil(8);
            let mut n_be = rng.odd_modulus(bits);
            if case % 5 == 0 {
                // Long runs of ones in the modulus and the signature: every carry chain runs full.
                n_be[1..len / 2].fill(0xff);
            }
            let mut s = rng.bytes(len);
            s[0] &= n_be[0] >> 1;
            if case % 7 == 0 {
                s[1..].fill(0xff);
            }
            let e = [3u64, 17, 65537, 0x1_0000_0001][case % 4] | 1;
            let fast = mont64::Mont::new(&n_be, bits).pow(&s, e, len);
            assert_eq!(fast, mont64::Mont::new(&n_be, bits).portable().pow(&s, e, len), "case {case}");
            assert_eq!(fast, mont_f64::Mont::new(&n_be, bits).pow(&s, e, len), "case {case}");
        }
    }

    /// EMSA-PSS-ENCODE (RFC 8017 9.1.1) with any salt, as the modulus-length block a signer's
    /// private operation inverts.
    fn pss_encode<D: Digest>(msg: &[u8], salt: &[u8], mod_bits: usize) -> Vec<u8> {
        let (em_bits, h_len) = (mod_bits - 1, <D as Digest>::output_size());
        let em_len = em_bits.div_ceil(8);
        let h = D::new().chain_update([0u8; 8]).chain_update(D::digest(msg)).chain_update(salt).finalize();
        let mut db = vec![0u8; em_len - salt.len() - h_len - 2];
        db.push(1);
        db.extend_from_slice(salt);
        for (counter, chunk) in (0u32..).zip(db.chunks_mut(h_len)) {
            let mask = D::new().chain_update(&h).chain_update(counter.to_be_bytes()).finalize();
            chunk.iter_mut().zip(mask.iter()).for_each(|(x, m)| *x ^= m);
        }
        db[0] &= 0xff >> (8 * em_len - em_bits);
        let mut full = vec![0u8; mod_bits.div_ceil(8) - em_len];
        full.extend(db);
        full.extend_from_slice(&h);
        full.push(0xbc);
        full
    }

    fn pss_salt_lengths<D: Digest>() {
        let h_len = <D as Digest>::output_size();
        let mut rng = Rng(0x5eed ^ h_len as u64);
        // Around byte boundaries of emBits = modBits - 1 (2049: emBits a multiple of 8, one extra
        // leading byte), and the key sizes in use.
        for mod_bits in [2048usize, 2049, 2050, 2055, 2056, 2057, 3072, 4096, 8192] {
            let em_len = (mod_bits - 1).div_ceil(8);
            let max = em_len - h_len - 2;
            for s_len in [0, 1, 20, h_len - 1, h_len, h_len + 1, 2 * h_len, max] {
                let salt = rng.bytes(s_len);
                let full = pss_encode::<D>(b"header.payload", &salt, mod_bits);
                assert_eq!(full.len(), mod_bits.div_ceil(8));
                let ok = emsa_pss_verify::<D>(&full, mod_bits, b"header.payload");
                assert_eq!(ok, s_len == h_len, "{mod_bits} bits, hLen {h_len}, sLen {s_len}");
            }
            let good = pss_encode::<D>(b"m", &rng.bytes(h_len), mod_bits);
            assert!(emsa_pss_verify::<D>(&good, mod_bits, b"m"));
            assert!(!emsa_pss_verify::<D>(&good, mod_bits, b"n"), "another message");
            assert!(!emsa_pss_verify::<D>(&good, mod_bits + 8, b"m"), "another modulus length");
            assert!(!emsa_pss_verify::<D>(&good[1..], mod_bits, b"m"), "short block");
            // Every bit of the block matters.
            for bit in (0..good.len() * 8).step_by(7) {
                let mut t = good.clone();
                t[bit / 8] ^= 0x80 >> (bit % 8);
                assert!(!emsa_pss_verify::<D>(&t, mod_bits, b"m"), "{mod_bits} bits: bit {bit} flipped");
            }
        }
    }

    #[test]
    fn pss_requires_the_salt_as_long_as_the_hash() {
        pss_salt_lengths::<sha2::Sha256>();
        pss_salt_lengths::<sha2::Sha384>();
        pss_salt_lengths::<sha2::Sha512>();
    }

    #[test]
    fn pss_never_panics_on_garbage() {
        let mut rng = Rng(99);
        for mod_bits in [0usize, 1, 2, 8, 9, 63, 64, 65, 520, 2048, 2049, 4096] {
            for len in (0..=mod_bits.div_ceil(8) + 2).step_by(5).chain([mod_bits.div_ceil(8)]) {
                for block in [vec![0u8; len], vec![0xff; len], rng.bytes(len)] {
                    let mut bc = block.clone();
                    if let Some(last) = bc.last_mut() {
                        *last = 0xbc;
                    }
                    for b in [&block, &bc] {
                        assert!(!emsa_pss_verify::<sha2::Sha256>(b, mod_bits, b"m"));
                        assert!(!emsa_pss_verify::<sha2::Sha512>(b, mod_bits, b"m"));
                    }
                }
            }
        }
    }
}
