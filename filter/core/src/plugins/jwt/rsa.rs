//! RSA signature verification (RS256/384/512: PKCS #1 v1.5; PS256/384/512: PSS with MGF1), public-key
//! operations only. Written for Wasm: 32-bit limbs (Wasm multiplies 32x32->64 natively, while 64x64->128
//! is emulated) and Montgomery constants computed once when the key is loaded, not per signature.
//! Nothing here touches a secret, so variable time is fine.

use sha2::digest::{Digest, FixedOutputReset};

/// A public key prepared for repeated verification.
#[derive(Clone)]
pub(super) struct RsaKey {
    /// Modulus, little-endian 32-bit limbs.
    n: Vec<u32>,
    /// -n^-1 mod 2^32.
    n0inv: u32,
    /// R^2 mod n, R = 2^(32 * limbs): converts into Montgomery form.
    r2: Vec<u32>,
    e: u64,
    bits: usize,
}

fn limbs_from_be(bytes: &[u8]) -> Vec<u32> {
    let bytes = &bytes[bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len())..];
    let mut out = vec![0u32; bytes.len().div_ceil(4)];
    for (i, &b) in bytes.iter().rev().enumerate() {
        out[i / 4] |= (b as u32) << (8 * (i % 4));
    }
    out
}

fn geq(a: &[u32], b: &[u32]) -> bool {
    for i in (0..a.len()).rev() {
        if a[i] != b[i] {
            return a[i] > b[i];
        }
    }
    true
}

fn sub_in_place(a: &mut [u32], b: &[u32]) {
    let mut borrow = 0i64;
    for i in 0..a.len() {
        let d = a[i] as i64 - b[i] as i64 + borrow;
        a[i] = d as u32;
        borrow = d >> 32;
    }
}

impl RsaKey {
    pub(super) fn new(n_be: &[u8], e_be: &[u8]) -> Result<RsaKey, String> {
        let n = limbs_from_be(n_be);
        let bits = n.last().map_or(0, |top| (n.len() - 1) * 32 + (32 - top.leading_zeros() as usize));
        if bits < 2048 {
            return Err("RSA keys shorter than 2048 bits are refused".into());
        }
        if bits > 8192 {
            return Err("RSA keys longer than 8192 bits are refused".into());
        }
        if n[0] & 1 == 0 {
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
        // -n^-1 mod 2^32 by Newton iteration: each step doubles the correct low bits.
        let mut inv: u32 = 1;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u32.wrapping_sub(n[0].wrapping_mul(inv)));
        }
        // R^2 mod n: 1 doubled 2 * 32 * limbs times, reduced as it goes.
        let k = n.len();
        let mut x = vec![0u32; k];
        x[0] = 1;
        for _ in 0..64 * k {
            let mut carry = 0u32;
            for limb in x.iter_mut() {
                let top = *limb >> 31;
                *limb = *limb << 1 | carry;
                carry = top;
            }
            if carry == 1 || geq(&x, &n) {
                sub_in_place(&mut x, &n);
            }
        }
        Ok(RsaKey { n0inv: inv.wrapping_neg(), r2: x, n, e, bits })
    }

    /// Montgomery product a * b / R mod n (CIOS), into `out`. `t` is scratch space.
    fn mont_mul(&self, a: &[u32], b: &[u32], t: &mut [u32], out: &mut [u32]) {
        let k = self.n.len();
        let (n, a, b) = (&self.n[..k], &a[..k], &b[..k]);
        let t = &mut t[..k + 2];
        t.fill(0);
        for &bi in b {
            let bi = bi as u64;
            let mut c = 0u64;
            for (tj, &aj) in t[..k].iter_mut().zip(a) {
                let s = *tj as u64 + aj as u64 * bi + c;
                *tj = s as u32;
                c = s >> 32;
            }
            let s = t[k] as u64 + c;
            t[k] = s as u32;
            t[k + 1] = (s >> 32) as u32;
            let m = t[0].wrapping_mul(self.n0inv) as u64;
            let mut c = (t[0] as u64 + m * n[0] as u64) >> 32;
            for j in 1..k {
                let s = t[j] as u64 + m * n[j] as u64 + c;
                t[j - 1] = s as u32;
                c = s >> 32;
            }
            let s = t[k] as u64 + c;
            t[k - 1] = s as u32;
            t[k] = t[k + 1] + (s >> 32) as u32;
        }
        let out = &mut out[..k];
        out.copy_from_slice(&t[..k]);
        if t[k] != 0 || geq(out, n) {
            sub_in_place(out, n);
        }
    }

    /// s^e mod n as big-endian bytes of the modulus' length; `None` if s >= n.
    fn public_op(&self, sig: &[u8]) -> Option<Vec<u8>> {
        let k = self.n.len();
        let len = self.bits.div_ceil(8);
        if sig.len() != len {
            return None;
        }
        let mut s = limbs_from_be(sig);
        s.resize(k, 0);
        if geq(&s, &self.n) {
            return None;
        }
        let mut t = vec![0u32; k + 2];
        let mut x = vec![0u32; k];
        self.mont_mul(&s, &self.r2, &mut t, &mut x);
        let mut acc = x.clone();
        let mut tmp = vec![0u32; k];
        for i in (0..63 - self.e.leading_zeros()).rev() {
            self.mont_mul(&acc, &acc, &mut t, &mut tmp);
            std::mem::swap(&mut acc, &mut tmp);
            if self.e >> i & 1 == 1 {
                self.mont_mul(&acc, &x, &mut t, &mut tmp);
                std::mem::swap(&mut acc, &mut tmp);
            }
        }
        let mut one = vec![0u32; k];
        one[0] = 1;
        let mut m = vec![0u32; k];
        self.mont_mul(&acc, &one, &mut t, &mut m);
        let mut out = vec![0u8; len];
        for (i, byte) in out.iter_mut().rev().enumerate() {
            *byte = (m[i / 4] >> (8 * (i % 4))) as u8;
        }
        Some(out)
    }

    /// RSASSA-PKCS1-v1_5 verification (RFC 8017 8.2.2).
    pub(super) fn verify_pkcs1<D: Digest>(&self, prefix: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        let Some(em) = self.public_op(sig) else { return false };
        let hash = D::digest(msg);
        let t_len = prefix.len() + hash.len();
        if em.len() < t_len + 11 {
            return false;
        }
        let ps_end = em.len() - t_len - 1;
        em[0] == 0
            && em[1] == 1
            && em[2..ps_end].iter().all(|&b| b == 0xff)
            && em[ps_end] == 0
            && &em[ps_end + 1..ps_end + 1 + prefix.len()] == prefix
            && em[ps_end + 1 + prefix.len()..] == hash[..]
    }

    /// RSASSA-PSS verification (RFC 8017 8.1.2, EMSA-PSS-VERIFY 9.1.2) with MGF1 over the same hash;
    /// the salt length is recovered from the encoding.
    pub(super) fn verify_pss<D: Digest + FixedOutputReset>(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Some(full) = self.public_op(sig) else { return false };
        let em_bits = self.bits - 1;
        let em_len = em_bits.div_ceil(8);
        // The modulus-length output has one extra leading byte when emBits is a multiple of 8.
        let (lead, em) = full.split_at(full.len() - em_len);
        let h_len = <D as Digest>::output_size();
        if lead.iter().any(|&b| b != 0) || em_len < h_len + 2 || em.last() != Some(&0xbc) {
            return false;
        }
        let (masked_db, rest) = em.split_at(em_len - h_len - 1);
        let h = &rest[..h_len];
        let zero_bits = 8 * em_len - em_bits;
        let top_mask = (0xffu16 >> zero_bits) as u8;
        if masked_db[0] & !top_mask != 0 {
            return false;
        }
        let mut db = masked_db.to_vec();
        let mut counter = 0u32;
        let mut filled = 0;
        while filled < db.len() {
            let mut d = D::new();
            Digest::update(&mut d, h);
            Digest::update(&mut d, counter.to_be_bytes());
            for (x, m) in db[filled..].iter_mut().zip(d.finalize().iter()) {
                *x ^= m;
            }
            filled += h_len;
            counter += 1;
        }
        db[0] &= top_mask;
        let Some(one) = db.iter().position(|&b| b != 0) else { return false };
        if db[one] != 1 {
            return false;
        }
        let salt = &db[one + 1..];
        let m_hash = D::digest(msg);
        let mut d = D::new();
        Digest::update(&mut d, [0u8; 8]);
        Digest::update(&mut d, &m_hash);
        Digest::update(&mut d, salt);
        d.finalize()[..] == *h
    }
}

pub(super) const SHA256_PREFIX: &[u8] = &[0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];
pub(super) const SHA384_PREFIX: &[u8] = &[0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30];
pub(super) const SHA512_PREFIX: &[u8] = &[0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40];
