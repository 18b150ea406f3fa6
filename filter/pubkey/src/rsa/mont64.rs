//! The modular exponentiation of `rsa.rs` for native targets, where a 64x64->128 multiply is one
//! instruction and carries are cheap: 64-bit limbs (32 for a 2048-bit modulus, against 76 limbs of 27
//! bits in the Wasm build's former integer engine: about a fifth of the multiplications).
//! Multiplication is CIOS with the product row and the reduction row fused in one pass; squaring
//! computes each cross product once, doubles them and adds the squares, then reduces (separated
//! operand scanning). R = 2^(64·limbs) is only
//! known to exceed n, so each result (below 2n) gets one conditional subtraction. The Montgomery
//! constants are computed once when the key is loaded. On x86-64 processors with BMI2 and ADX the
//! rows run in assembly with two carry chains (`adx.rs`), about 1.75 times as fast.

#[cfg(target_arch = "x86_64")]
use super::adx::Adx;

/// A modulus with its Montgomery constants.
#[derive(Clone)]
pub(super) struct Mont {
    /// Modulus, little-endian 64-bit limbs, the top one nonzero.
    n: Vec<u64>,
    /// -n^-1 mod 2^64.
    n0inv: u64,
    /// R^2 mod n: converts into Montgomery form.
    r2: Vec<u64>,
    /// The processor's BMI2 and ADX, when it has them.
    #[cfg(target_arch = "x86_64")]
    adx: Option<Adx>,
}

/// Big-endian bytes to `k` little-endian 64-bit limbs (the value must fit).
fn limbs_from_be(bytes: &[u8], k: usize) -> Vec<u64> {
    let mut out: Vec<u64> = bytes.rchunks(8).map(|c| c.iter().fold(0u64, |acc, &b| acc << 8 | b as u64)).collect();
    out.resize(k, 0);
    out
}

/// Limbs (a value below 2^(8·len)) to `len` big-endian bytes.
fn limbs_to_be(limbs: &[u64], len: usize) -> Vec<u8> {
    let mut out: Vec<u8> = limbs.iter().rev().flat_map(|l| l.to_be_bytes()).collect();
    out.drain(..out.len().saturating_sub(len));
    out
}

fn geq(a: &[u64], b: &[u64]) -> bool {
    for (x, y) in a.iter().zip(b).rev() {
        if x != y {
            return x > y;
        }
    }
    true
}

/// a -= b (a >= b, or a + 2^(64·len) >= b with the borrow out dropped).
fn sub_in_place(a: &mut [u64], b: &[u64]) {
    let mut borrow = false;
    for (x, &y) in a.iter_mut().zip(b) {
        let (d, b1) = x.overflowing_sub(y);
        let (d, b2) = d.overflowing_sub(borrow as u64);
        *x = d;
        borrow = b1 | b2;
    }
}

/// `t` (the k low limbs, `top` the carry above them) below 2n, to below n in t.
pub(super) fn reduce_once(t: &mut [u64], top: u64, n: &[u64]) {
    if top != 0 || geq(t, n) {
        sub_in_place(t, n);
    }
}

/// t = 2t + the squares a[i]² at t[2i], where t (2k limbs) holds the cross products of a (k limbs).
pub(super) fn double_add_squares(a: &[u64], t: &mut [u64]) {
    let mut c = 0u128;
    let mut shifted_out = 0u64;
    for (&ai, pair) in a.iter().zip(t.chunks_exact_mut(2)) {
        let sq = ai as u128 * ai as u128;
        let lo = pair[0] << 1 | shifted_out;
        let hi = pair[1] << 1 | pair[0] >> 63;
        shifted_out = pair[1] >> 63;
        let s = lo as u128 + (sq as u64) as u128 + c;
        pair[0] = s as u64;
        let s = hi as u128 + (sq >> 64) + (s >> 64);
        pair[1] = s as u64;
        c = s >> 64;
    }
}

impl Mont {
    /// For an odd modulus of `bits` bits, as big-endian bytes without leading zeros.
    pub(super) fn new(n_be: &[u8], bits: usize) -> Mont {
        let k = bits.div_ceil(64);
        let n = limbs_from_be(n_be, k);
        // -n^-1 mod 2^64 by Newton iteration: each step doubles the correct low bits (1 to 64).
        let n0 = n.first().copied().unwrap_or(1);
        let mut inv: u64 = 1;
        for _ in 0..6 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(n0.wrapping_mul(inv)));
        }
        // R^2 mod n: 1 doubled 2·64·k times, reduced as it goes (2x < 2n: one subtraction, the bit
        // shifted out of the top limb included).
        let mut x = vec![0u64; k];
        if let Some(x0) = x.first_mut() {
            *x0 = 1;
        }
        for _ in 0..128 * k {
            let mut carry = 0u64;
            for limb in x.iter_mut() {
                let top = *limb >> 63;
                *limb = *limb << 1 | carry;
                carry = top;
            }
            if carry == 1 || geq(&x, &n) {
                sub_in_place(&mut x, &n);
            }
        }
        Mont {
            n,
            n0inv: inv.wrapping_neg(),
            r2: x,
            #[cfg(target_arch = "x86_64")]
            adx: Adx::detect(),
        }
    }

    /// The same modulus on the portable code only (the tests compare both).
    #[cfg(test)]
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
    pub(super) fn portable(mut self) -> Mont {
        #[cfg(target_arch = "x86_64")]
        {
            self.adx = None;
        }
        self
    }

    /// a·b/R mod n into `out` (a, b < n). Each row adds a·b[i], then m·n with m chosen to clear the
    /// low limb, and shifts down one limb; both products of a limb in one pass, two carry chains.
    fn mul(&self, a: &[u64], b: &[u64], scratch: &mut [u64], out: &mut [u64]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(adx) = self.adx {
            return adx.mul(&self.n, self.n0inv, a, b, scratch, out);
        }
        let _ = scratch;
        let k = self.n.len();
        let (n, a, b, t) = (&self.n[..k], &a[..k], &b[..k], &mut out[..k]);
        let (Some(&a0), Some(&n0)) = (a.first(), n.first()) else { return };
        t.fill(0);
        let mut top = 0u64;
        for &bi in b {
            let bi = bi as u128;
            let s1 = t[0] as u128 + a0 as u128 * bi;
            let m = (s1 as u64).wrapping_mul(self.n0inv) as u128;
            let s2 = (s1 as u64) as u128 + m * n0 as u128;
            let (mut c1, mut c2) = (s1 >> 64, s2 >> 64);
            for j in 1..k {
                let s1 = t[j] as u128 + a[j] as u128 * bi + c1;
                c1 = s1 >> 64;
                let s2 = (s1 as u64) as u128 + m * n[j] as u128 + c2;
                c2 = s2 >> 64;
                t[j - 1] = s2 as u64;
            }
            // The running value stays below 2n < 2R: the top is 0 or 1.
            let s = top as u128 + c1 + c2;
            t[k - 1] = s as u64;
            top = (s >> 64) as u64;
        }
        reduce_once(t, top, n);
    }

    /// a²/R mod n into `out` (a < n); `t` is scratch of 2k limbs.
    fn sqr(&self, a: &[u64], t: &mut [u64], out: &mut [u64]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(adx) = self.adx {
            return adx.sqr(&self.n, self.n0inv, a, t, out);
        }
        let k = self.n.len();
        let (n, a, t) = (&self.n[..k], &a[..k], &mut t[..2 * k]);
        t.fill(0);
        // Cross products a[i]·a[j], i < j, once.
        for i in 0..k {
            let ai = a[i] as u128;
            let mut c = 0u128;
            for j in i + 1..k {
                let s = t[i + j] as u128 + a[j] as u128 * ai + c;
                t[i + j] = s as u64;
                c = s >> 64;
            }
            t[i + k] = c as u64;
        }
        double_add_squares(a, t);
        // Reduction: row i clears limb i; `top` is the carry out of limb i + k into limb i + k + 1.
        let mut top = 0u64;
        for i in 0..k {
            let m = t[i].wrapping_mul(self.n0inv) as u128;
            let mut c = 0u128;
            for (tj, &nj) in t[i..i + k].iter_mut().zip(n) {
                let s = *tj as u128 + m * nj as u128 + c;
                *tj = s as u64;
                c = s >> 64;
            }
            let s = t[i + k] as u128 + c + top as u128;
            t[i + k] = s as u64;
            top = (s >> 64) as u64;
        }
        let out = &mut out[..k];
        out.copy_from_slice(&t[k..]);
        reduce_once(out, top, n);
    }

    /// s^e mod n as `len` big-endian bytes, for s < n given as big-endian bytes and an odd e >= 3.
    pub(super) fn pow(&self, sig: &[u8], e: u64, len: usize) -> Vec<u8> {
        let k = self.n.len();
        let s = limbs_from_be(sig, k);
        let mut scratch = vec![0u64; 2 * k];
        let mut x = vec![0u64; k];
        self.mul(&s, &self.r2, &mut scratch, &mut x);
        limbs_to_be(&super::ladder(self, &x, &s, e, &mut scratch), len)
    }
}

impl super::Montgomery for Mont {
    type Limb = u64;
    type Scratch = Vec<u64>;
    fn product(&self, a: &[u64], b: &[u64], scratch: &mut Vec<u64>, out: &mut [u64]) {
        self.mul(a, b, scratch, out)
    }
    fn square(&self, a: &[u64], scratch: &mut Vec<u64>, out: &mut [u64]) {
        self.sqr(a, scratch, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limb_conversions_round_trip() {
        let mut rng = crate::rsa::tests::Rng(7);
        for len in [1usize, 3, 8, 9, 27, 256, 257] {
            let b = rng.bytes(len);
            assert_eq!(limbs_to_be(&limbs_from_be(&b, len.div_ceil(8)), len), b);
        }
    }
}
