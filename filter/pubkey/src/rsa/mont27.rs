//! The modular exponentiation of `rsa.rs` for Wasm, where a 32x32->64 multiply is native but
//! 64x64->128 is emulated and there is no add-with-carry: numbers are 27-bit limbs, so a product is
//! below 2^54 and a whole column of products (up to 608 of them, enough for 8192-bit keys) sums in a
//! u64 without a carry per product. Montgomery multiplication then scans the product column by column
//! (the multiplications of a column are independent: no serial carry chain), squaring computes each
//! cross product once, and R = 2^(27·limbs) > 4n, so intermediate results stay below 2n without a
//! subtraction. Rows go four at a time (`mac4`): one pass over the column sums adds four products to
//! each, with the limbs unrolled by four so that none is loaded twice; against two rows at a time, a
//! 2048-bit exponentiation under V8 went from 68 to 56 µs. The Montgomery constants are computed
//! once when the key is loaded.

/// Limb width in bits.
const W: u32 = 27;
const MASK: u64 = (1 << W) - 1;

/// Two rows at once: t[j] += x[j]·y0 + x[j-1]·y1 (x[-1] = `x_before`), and t[len] += x[len-1]·y1;
/// `t` is one longer than `x`.
#[inline(always)]
fn mac2(t: &mut [u64], x: &[u32], y0: u64, y1: u64, x_before: u64) {
    let Some((last, t)) = t.split_last_mut() else { return };
    let mut prev = x_before;
    for (tj, &xj) in t.iter_mut().zip(x) {
        let xj = xj as u64;
        *tj += xj * y0 + prev * y1;
        prev = xj;
    }
    *last += prev * y1;
}

/// Four rows at once: t[j] += x[j]·y[0] + x[j-1]·y[1] + x[j-2]·y[2] + x[j-3]·y[3], with
/// x[-1], x[-2], x[-3] = `before` and x[j] = 0 past its end; `t` is three longer than `x`.
#[inline(always)]
fn mac4(t: &mut [u64], x: &[u32], y: [u64; 4], before: [u64; 3]) {
    debug_assert_eq!(t.len(), x.len() + 3, "mac4: the tail columns would be skipped");
    let [mut p1, mut p2, mut p3] = before;
    let (body, tail) = t.split_at_mut(x.len().min(t.len()));
    let mut tc = body.chunks_exact_mut(4);
    let mut xc = x.chunks_exact(4);
    for (tq, xq) in (&mut tc).zip(&mut xc) {
        let (x0, x1, x2, x3) = (xq[0] as u64, xq[1] as u64, xq[2] as u64, xq[3] as u64);
        tq[0] += x0 * y[0] + p1 * y[1] + p2 * y[2] + p3 * y[3];
        tq[1] += x1 * y[0] + x0 * y[1] + p1 * y[2] + p2 * y[3];
        tq[2] += x2 * y[0] + x1 * y[1] + x0 * y[2] + p1 * y[3];
        tq[3] += x3 * y[0] + x2 * y[1] + x1 * y[2] + x0 * y[3];
        p3 = x1;
        p2 = x2;
        p1 = x3;
    }
    for (tj, &xj) in tc.into_remainder().iter_mut().zip(xc.remainder()) {
        let xj = xj as u64;
        *tj += xj * y[0] + p1 * y[1] + p2 * y[2] + p3 * y[3];
        p3 = p2;
        p2 = p1;
        p1 = xj;
    }
    if let [t0, t1, t2] = tail {
        *t0 += p1 * y[1] + p2 * y[2] + p3 * y[3];
        *t1 += p1 * y[2] + p2 * y[3];
        *t2 += p1 * y[3];
    }
}

/// Scratch space of a modular exponentiation: the 2k column sums of a product.
struct Scratch {
    t: Vec<u64>,
}

/// Big-endian bytes to `k` little-endian 27-bit limbs (the value must fit).
fn limbs_from_be(bytes: &[u8], k: usize) -> Vec<u32> {
    let mut out = vec![0u32; k];
    let (mut acc, mut have, mut i) = (0u64, 0u32, 0usize);
    for &b in bytes.iter().rev() {
        acc |= (b as u64) << have;
        have += 8;
        if have >= W {
            if i < k {
                out[i] = (acc & MASK) as u32;
            }
            i += 1;
            acc >>= W;
            have -= W;
        }
    }
    if have > 0 && i < k {
        out[i] = acc as u32;
    }
    out
}

/// 27-bit limbs (a value below 2^(8·len)) to `len` big-endian bytes.
fn limbs_to_be(limbs: &[u32], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let (mut acc, mut have) = (0u64, 0u32);
    let mut limbs = limbs.iter();
    for byte in out.iter_mut().rev() {
        if have < 8 {
            acc |= (limbs.next().copied().unwrap_or(0) as u64) << have;
            have += W;
        }
        *byte = acc as u8;
        acc >>= 8;
        have -= 8;
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

/// a -= b on 27-bit limbs (a >= b).
fn sub_in_place(a: &mut [u32], b: &[u32]) {
    let mut borrow = 0u32;
    for (x, &y) in a.iter_mut().zip(b) {
        let d = x.wrapping_sub(y).wrapping_sub(borrow);
        borrow = d >> 31;
        *x = d & MASK as u32;
    }
}

/// A modulus with its Montgomery constants.
#[derive(Clone)]
pub(super) struct Mont {
    /// Modulus, little-endian 27-bit limbs, with R = 2^(27 * limbs) > 4n.
    n: Vec<u32>,
    /// -n^-1 mod 2^27.
    n0inv: u32,
    /// R^2 mod n: converts into Montgomery form.
    r2: Vec<u32>,
}

impl Mont {
    /// For an odd modulus of `bits` bits, as big-endian bytes without leading zeros.
    pub(super) fn new(n_be: &[u8], bits: usize) -> Mont {
        // R = 2^(27k) > 4n.
        let k = (bits + 2).div_ceil(W as usize);
        let n = limbs_from_be(n_be, k);
        // -n^-1 mod 2^32 by Newton iteration (each step doubles the correct low bits), then mod 2^27.
        let mut inv: u32 = 1;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u32.wrapping_sub(n[0].wrapping_mul(inv)));
        }
        let n0inv = inv.wrapping_neg() & MASK as u32;
        // R^2 mod n: 1 doubled 2 * 27 * k times, reduced as it goes.
        let mut x = vec![0u32; k];
        x[0] = 1;
        for _ in 0..2 * W as usize * k {
            let mut carry = 0u32;
            for limb in x.iter_mut() {
                let v = *limb << 1 | carry;
                carry = v >> W;
                *limb = v & MASK as u32;
            }
            if carry == 1 || geq(&x, &n) {
                sub_in_place(&mut x, &n);
            }
        }
        Mont { n, n0inv, r2: x }
    }

    /// Montgomery reduction of the 2k column sums `t` of a product below 4n^2: writes t/R mod n (below
    /// 2n) to `out`. Row i adds m_i·n at column i, m_i chosen so that column i becomes a multiple of
    /// 2^27, whose quotient carries into column i + 1; rows go in pairs (one pass over `t` for two).
    fn redc(&self, t: &mut [u64], out: &mut [u32]) {
        let k = self.n.len();
        let n = &self.n[..k];
        let (n0, n1) = (n[0] as u64, n[1] as u64);
        let q = |v: u64| ((v as u32).wrapping_mul(self.n0inv) & MASK as u32) as u64;
        let mut carry = 0u64;
        let mut i = 0;
        if k >= 5 {
            let (n2, n3) = (n[2] as u64, n[3] as u64);
            while i + 3 < k {
                // Rows i to i + 3: each m clears its column, given the rows before it in the group.
                let t0 = t[i] + carry;
                let m0 = q(t0);
                let t1 = t[i + 1] + m0 * n1 + ((t0 + m0 * n0) >> W);
                let m1 = q(t1);
                let t2 = t[i + 2] + m0 * n2 + m1 * n1 + ((t1 + m1 * n0) >> W);
                let m2 = q(t2);
                let t3 = t[i + 3] + m0 * n3 + m1 * n2 + m2 * n1 + ((t2 + m2 * n0) >> W);
                let m3 = q(t3);
                carry = (t3 + m3 * n0) >> W;
                mac4(&mut t[i + 4..=i + k + 2], &n[4..], [m0, m1, m2, m3], [n3, n2, n1]);
                i += 4;
            }
        }
        while i + 1 < k {
            let ti = t[i] + carry;
            let m0 = q(ti);
            let ti1 = t[i + 1] + m0 * n1 + ((ti + m0 * n0) >> W);
            let m1 = q(ti1);
            carry = (ti1 + m1 * n0) >> W;
            // Columns i and i + 1 are spent (their values are in `carry`); the rest of both rows:
            // t[i + j] += m0·n[j] for j >= 2, t[i + 1 + j] += m1·n[j] for j >= 1.
            mac2(&mut t[i + 2..=i + k], &n[2..], m0, m1, n1);
            i += 2;
        }
        if i < k {
            let ti = t[i] + carry;
            let m = q(ti);
            carry = (ti + m * n0) >> W;
            for (tj, &nj) in t[i + 1..i + k].iter_mut().zip(&n[1..]) {
                *tj += m * nj as u64;
            }
        }
        for (o, &tj) in out[..k].iter_mut().zip(&t[k..2 * k]) {
            let v = tj + carry;
            *o = (v & MASK) as u32;
            carry = v >> W;
        }
    }

    /// a·b/R mod n (below 2n for inputs below 2n), into `out`.
    fn mont_mul(&self, a: &[u32], b: &[u32], scratch: &mut Scratch, out: &mut [u32]) {
        let k = self.n.len();
        let (a, b, t) = (&a[..k], &b[..k], &mut scratch.t[..2 * k]);
        t.fill(0);
        let mut i = 0;
        while i + 3 < k {
            let y = [b[i] as u64, b[i + 1] as u64, b[i + 2] as u64, b[i + 3] as u64];
            mac4(&mut t[i..i + k + 3], a, y, [0, 0, 0]);
            i += 4;
        }
        while i + 1 < k {
            // t[i + j] += a[j]·b[i], t[i + 1 + j] += a[j]·b[i + 1].
            let (b0, b1) = (b[i] as u64, b[i + 1] as u64);
            t[i] += a[0] as u64 * b0;
            mac2(&mut t[i + 1..=i + k], &a[1..], b0, b1, a[0] as u64);
            i += 2;
        }
        if i < k {
            let bi = b[i] as u64;
            for (tj, &aj) in t[i..i + k].iter_mut().zip(a) {
                *tj += aj as u64 * bi;
            }
        }
        self.redc(t, out);
    }

    /// a²/R mod n, each cross product once.
    fn mont_sqr(&self, a: &[u32], scratch: &mut Scratch, out: &mut [u32]) {
        let k = self.n.len();
        let (a, t) = (&a[..k], &mut scratch.t[..2 * k]);
        t.fill(0);
        let mut i = 0;
        while i + 8 <= k {
            // Rows i to i + 3: the cross products a[i + d]·a[m], m > i + d, up to m = i + 6 - d here,
            // the rest four rows at a time from m = i + 7 - d.
            for d in 0..3 {
                let ad = a[i + d] as u64;
                for m in i + d + 1..i + 7 - d {
                    t[i + d + m] += ad * a[m] as u64;
                }
            }
            let y = [a[i] as u64, a[i + 1] as u64, a[i + 2] as u64, a[i + 3] as u64];
            let before = [a[i + 6] as u64, a[i + 5] as u64, a[i + 4] as u64];
            mac4(&mut t[2 * i + 7..i + k + 3], &a[i + 7..], y, before);
            i += 4;
        }
        while i + 2 < k {
            // Cross products of rows i and i + 1: t[i + j] += a[i]·a[j] for j > i, and
            // t[i + 1 + j] += a[i + 1]·a[j] for j > i + 1.
            let (a0, a1) = (a[i] as u64, a[i + 1] as u64);
            t[2 * i + 1] += a0 * a1;
            mac2(&mut t[2 * i + 2..=i + k], &a[i + 2..], a0, a1, 0);
            i += 2;
        }
        if i + 1 < k {
            t[2 * i + 1] += a[i] as u64 * a[i + 1] as u64;
        }
        for (i, pair) in t.chunks_exact_mut(2).enumerate() {
            let sq = a[i] as u64 * a[i] as u64;
            pair[0] = 2 * pair[0] + sq;
            pair[1] *= 2;
        }
        self.redc(t, out);
    }

    /// s^e mod n as `len` big-endian bytes, for s < n given as big-endian bytes and an odd e.
    pub(super) fn pow(&self, sig: &[u8], e: u64, len: usize) -> Vec<u8> {
        let k = self.n.len();
        let s = limbs_from_be(sig, k);
        let mut m = Scratch { t: vec![0u64; 2 * k] };
        let mut acc = vec![0u32; k];
        let mut tmp = vec![0u32; k];
        // x = s·R; acc runs over x^(leading bits of e)·R.
        let mut x = vec![0u32; k];
        self.mont_mul(&s, &self.r2, &mut m, &mut x);
        acc.copy_from_slice(&x);
        for i in (1..63 - e.leading_zeros()).rev() {
            self.mont_sqr(&acc, &mut m, &mut tmp);
            std::mem::swap(&mut acc, &mut tmp);
            if e >> i & 1 == 1 {
                self.mont_mul(&acc, &x, &mut m, &mut tmp);
                std::mem::swap(&mut acc, &mut tmp);
            }
        }
        // e is odd: the last step is a square and a multiplication by s; multiplying by s itself
        // rather than s·R also leaves the Montgomery form: s^(e-1)·R · s / R = s^e.
        if e > 1 {
            self.mont_sqr(&acc, &mut m, &mut tmp);
            std::mem::swap(&mut acc, &mut tmp);
        }
        self.mont_mul(&acc, &s, &mut m, &mut tmp);
        if geq(&tmp, &self.n) {
            sub_in_place(&mut tmp, &self.n);
        }
        limbs_to_be(&tmp, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limb_conversions_round_trip() {
        let mut x = 7u64;
        for len in [1usize, 3, 4, 27, 256, 257] {
            let b: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 24) as u8
                })
                .collect();
            let k = (8 * len).div_ceil(W as usize);
            assert_eq!(limbs_to_be(&limbs_from_be(&b, k), len), b);
        }
    }
}
