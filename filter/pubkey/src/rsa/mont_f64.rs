//! The modular exponentiation of `rsa.rs` for Wasm, on the floating-point unit. Wasm has no 128-bit
//! product, and under V8 every integer product goes to the processor's one 64-bit multiplier: a
//! 27-bit-limb engine summing products by column (this crate's previous Wasm engine) was bound by it,
//! one product per cycle. Wasm SIMD's `f64x2.mul` and `f64x2.add` are two products and two sums per
//! instruction, on pipes of their own. A double holds an integer below 2^53 exactly, so with 22-bit
//! limbs (21 past 2,726 bits) a product is below 2^44, and a whole column, product and reduction
//! terms together (at most 2·limbs of them), sums below 2^52 with neither a carry nor a rounding:
//! every value here is an integer, and every operation on it is exact. Under V8 a 2048-bit
//! exponentiation takes about 80% of the 27-bit engine's time, with half again as many products.
//!
//! Montgomery multiplication with the product's columns first (four rows at a time, two columns per
//! vector; a square computes each cross product once), then the reduction four rows at a time: the
//! four multipliers (the one serial chain) on integers, their rows as vectors, and the result
//! normalised to w-bit limbs. R = 2^(w·k) > 4n with k a multiple of four, so results stay below 2n
//! without a subtraction. With the feature `relaxed-simd` (the Wasm filter's default) a product and
//! its sum are one relaxed fused multiply-add, 15% fewer instructions in Envoy; without it, Wasm
//! 2.0's fixed-width SIMD only, for runtimes older than V8 11.4.

/// Zero limbs before and after an operand, so that the shifted windows of `mac4` stay inside it.
const PAD: usize = 4;

/// Four rows at once: t[c] += x[c]·y[0] + x[c-1]·y[1] + x[c-2]·y[2] + x[c-3]·y[3] for every column c
/// of `t` (a multiple of four of them), where x[c] is `xs[c + 3]`; `xs` must be at least
/// `t.len() + 4` long (nothing is done otherwise). In Wasm, two columns per `f64x2` and eight per
/// step (four for a last odd four), whose vectors share the windows of `xs` they overlap on;
/// elsewhere (the native tests) the same sums one by one, which IEEE 754 makes exact on both.
#[cfg(target_arch = "wasm32")]
#[target_feature(enable = "simd128")]
#[cfg_attr(feature = "relaxed-simd", target_feature(enable = "relaxed-simd"))]
#[allow(unsafe_code)]
fn mac4(t: &mut [f64], xs: &[f64], y: [f64; 4]) {
    use core::arch::wasm32::{f64x2_splat, v128, v128_load, v128_store};
    // a·b + c, two columns at once. Relaxed SIMD lets the runtime fuse the product and the sum or
    // not; every value here is an integer below 2^53, exact either way, so both give one result.
    #[cfg(feature = "relaxed-simd")]
    use core::arch::wasm32::f64x2_relaxed_madd as madd;
    #[cfg(not(feature = "relaxed-simd"))]
    #[target_feature(enable = "simd128")]
    fn madd(a: v128, b: v128, c: v128) -> v128 {
        core::arch::wasm32::f64x2_add(core::arch::wasm32::f64x2_mul(a, b), c)
    }
    let cols = t.len() & !3;
    debug_assert!(xs.len() >= cols + 4, "mac4: the windows would run past the operand");
    if xs.len() < cols + 4 {
        return;
    }
    let [y0, y1, y2, y3] = y.map(|v| f64x2_splat(v));
    // Two columns from c + o: the four rows' products on the windows of `xs` ending at x3.
    let sum = |acc: v128, x0, x1, x2, x3| madd(x3, y0, madd(x2, y1, madd(x1, y2, madd(x0, y3, acc))));
    let (tp, xp) = (t.as_mut_ptr(), xs.as_ptr());
    let mut c = 0;
    // Eight columns per step: under V8 this loop is bound by how many instructions it issues, not
    // by the floating-point units, so the loop's own instructions and the shared windows are
    // spread over twice the products (16 columns spill registers). All the loads of `xs` come
    // before the stores to `t`, which LLVM cannot tell apart from them.
    while c + 8 <= cols {
        // SAFETY: c + 7 < cols <= t.len() and c + 10 <= cols + 4 <= xs.len().
        unsafe {
            let x = |o: usize| v128_load(xp.add(c + o).cast::<v128>());
            let (x0, x1, x2, x3, x4, x5, x6, x7, x8, x9) = (x(0), x(1), x(2), x(3), x(4), x(5), x(6), x(7), x(8), x(9));
            let at = |o: usize| tp.add(c + o).cast::<v128>();
            v128_store(at(0), sum(v128_load(at(0)), x0, x1, x2, x3));
            v128_store(at(2), sum(v128_load(at(2)), x2, x3, x4, x5));
            v128_store(at(4), sum(v128_load(at(4)), x4, x5, x6, x7));
            v128_store(at(6), sum(v128_load(at(6)), x6, x7, x8, x9));
        }
        c += 8;
    }
    if c < cols {
        // SAFETY: c + 3 < cols <= t.len() and c + 6 < cols + 4 <= xs.len(): every two doubles read
        // or written are inside their slice; v128_load and v128_store need no alignment.
        unsafe {
            let x = |o: usize| v128_load(xp.add(c + o).cast::<v128>());
            let (x0, x1, x2, x3, x4, x5) = (x(0), x(1), x(2), x(3), x(4), x(5));
            let (lo, hi) = (tp.add(c).cast::<v128>(), tp.add(c + 2).cast::<v128>());
            v128_store(lo, sum(v128_load(lo), x0, x1, x2, x3));
            v128_store(hi, sum(v128_load(hi), x2, x3, x4, x5));
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
#[inline(always)]
fn mac4(t: &mut [f64], xs: &[f64], y: [f64; 4]) {
    let cols = t.len() & !3;
    if xs.len() < cols + 4 {
        return;
    }
    for c in 0..cols {
        t[c] += xs[c + 3] * y[0] + xs[c + 2] * y[1] + (xs[c + 1] * y[2] + xs[c] * y[3]);
    }
}

/// A column sum (an integer below 2^52) as an integer. 2^52 + v is a double whose mantissa is v
/// exactly: an addition and a bit cast, where V8 compiles `as i64` into a checked conversion of
/// eight instructions.
#[inline(always)]
fn int(v: f64) -> i64 {
    const TWO_52: f64 = 4_503_599_627_370_496.0;
    ((v + TWO_52).to_bits() ^ TWO_52.to_bits()) as i64
}

/// The limb width w and the number of limbs k (a multiple of four, R = 2^(w·k) > 4n) for a modulus
/// of `bits` bits. A column sums at most 2k terms below 2^(2w) plus a carry, which must stay below
/// 2^52 (`int`): w = 22 up to k = 124 (2,726 bits), then w = 21 (up to 8,192 bits and beyond).
fn shape(bits: usize) -> (u32, usize) {
    let limbs = |w: usize| (bits + 2).div_ceil(w).next_multiple_of(4);
    if limbs(22) <= 124 {
        (22, limbs(22))
    } else {
        (21, limbs(21))
    }
}

/// A modulus with its Montgomery constants.
#[derive(Clone)]
pub(super) struct Mont {
    /// Limb width in bits.
    w: u32,
    /// Limbs (a multiple of four).
    k: usize,
    /// The modulus: k limbs, then 2·PAD zeros.
    n: Vec<f64>,
    /// The modulus as integers, for the final comparison.
    n_int: Vec<u32>,
    /// -n^-1 mod 2^w.
    n0inv: u32,
    /// R^2 mod n (below 2n), k limbs: converts into Montgomery form.
    r2: Vec<f64>,
}

/// Scratch space of an exponentiation: the column sums of a product, and a padded copy of an operand.
pub(super) struct Scratch {
    t: Vec<f64>,
    xs: Vec<f64>,
}

impl Scratch {
    fn new(k: usize) -> Scratch {
        Scratch { t: vec![0.0; 2 * k + 2 * PAD], xs: vec![0.0; k + 3 * PAD] }
    }
}

/// Big-endian bytes to `k` little-endian `w`-bit limbs (the value must fit).
fn limbs_from_be(bytes: &[u8], w: u32, k: usize) -> Vec<u32> {
    let mask = (1u64 << w) - 1;
    let mut out = vec![0u32; k];
    let (mut acc, mut have, mut i) = (0u64, 0u32, 0usize);
    for &b in bytes.iter().rev() {
        acc |= (b as u64) << have;
        have += 8;
        if have >= w {
            if i < k {
                out[i] = (acc & mask) as u32;
            }
            i += 1;
            acc >>= w;
            have -= w;
        }
    }
    if have > 0 && i < k {
        out[i] = acc as u32;
    }
    out
}

/// `w`-bit limbs (a value below 2^(8·len)) to `len` big-endian bytes.
fn limbs_to_be(limbs: &[u32], w: u32, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let (mut acc, mut have) = (0u64, 0u32);
    let mut limbs = limbs.iter();
    for byte in out.iter_mut().rev() {
        if have < 8 {
            acc |= (limbs.next().copied().unwrap_or(0) as u64) << have;
            have += w;
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

/// a -= b on `w`-bit limbs (a >= b).
fn sub_in_place(a: &mut [u32], b: &[u32], w: u32) {
    let mut borrow = 0u32;
    for (x, &y) in a.iter_mut().zip(b) {
        let d = x.wrapping_sub(y).wrapping_sub(borrow);
        borrow = d >> 31;
        *x = d & ((1 << w) - 1);
    }
}

impl Mont {
    /// For an odd modulus of `bits` bits, as big-endian bytes without leading zeros.
    pub(super) fn new(n_be: &[u8], bits: usize) -> Mont {
        let (w, k) = shape(bits);
        let n_int = limbs_from_be(n_be, w, k);
        let n0inv = crate::ec::neg_inv32(n_int[0]) & ((1 << w) - 1);
        // R^2 mod n is R in Montgomery form. With w·k = j·2^s (j odd), 2^j·R mod n (by doublings)
        // squared s times in Montgomery form is 2^(j·2^s)·R = R^2: w·k + j doublings rather than
        // 2·w·k (2,145 against 4,224 for a 2048-bit key).
        let wk = w as usize * k;
        let (s, j) = (wk.trailing_zeros(), wk >> wk.trailing_zeros());
        let mut x = vec![0u32; k];
        x[0] = 1;
        for _ in 0..wk + j {
            let mut carry = 0u32;
            for limb in x.iter_mut() {
                let v = *limb << 1 | carry;
                carry = v >> w;
                *limb = v & ((1 << w) - 1);
            }
            if carry == 1 || geq(&x, &n_int) {
                sub_in_place(&mut x, &n_int, w);
            }
        }
        let mut n: Vec<f64> = n_int.iter().map(|&l| l as f64).collect();
        n.resize(k + 2 * PAD, 0.0);
        let mut mont = Mont { w, k, n, n_int, n0inv, r2: x.iter().map(|&l| l as f64).collect() };
        let mut scratch = Scratch::new(k);
        let mut sq = vec![0.0; k];
        for _ in 0..s {
            mont.mont_sqr(&mont.r2, &mut scratch, &mut sq);
            std::mem::swap(&mut mont.r2, &mut sq);
        }
        mont
    }

    /// Montgomery reduction of the 2k column sums `t` of a product of values below 2n: writes t/R mod
    /// n (below 2n), normalised to w-bit limbs, to `out`. Like `mont_mul` and `mont_sqr`, built
    /// with Wasm SIMD enabled, which lets `mac4` inline into it: a call per four rows otherwise
    /// (a safe call on Wasm, where a runtime without SIMD refuses the whole module).
    #[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
    #[cfg_attr(all(target_arch = "wasm32", feature = "relaxed-simd"), target_feature(enable = "relaxed-simd"))]
    fn redc(&self, t: &mut [f64], out: &mut [f64]) {
        let (w, k) = (self.w, self.k);
        let mask = (1i64 << w) - 1;
        let ni = |j: usize| self.n_int[j] as i64;
        let (n0, n1, n2, n3) = (ni(0), ni(1), ni(2), ni(3));
        let q = |v: i64| ((v as u32).wrapping_mul(self.n0inv) as i64) & mask;
        let mut carry = 0i64;
        for i in (0..k).step_by(4) {
            // Rows i to i + 3 on integers: each multiplier clears its column given the rows before it.
            let t0 = int(t[i]) + carry;
            let m0 = q(t0);
            let t1 = int(t[i + 1]) + m0 * n1 + ((t0 + m0 * n0) >> w);
            let m1 = q(t1);
            let t2 = int(t[i + 2]) + m0 * n2 + m1 * n1 + ((t1 + m1 * n0) >> w);
            let m2 = q(t2);
            let t3 = int(t[i + 3]) + m0 * n3 + m1 * n2 + m2 * n1 + ((t2 + m2 * n0) >> w);
            let m3 = q(t3);
            carry = (t3 + m3 * n0) >> w;
            // The rest of the four rows from column i + 4: row i + r adds m_r·n[j] at column i + r + j.
            let m = [m0 as f64, m1 as f64, m2 as f64, m3 as f64];
            mac4(&mut t[i + 4..i + 4 + k], &self.n[1..], m);
        }
        for (o, &v) in out[..k].iter_mut().zip(&t[k..2 * k]) {
            let v = int(v) + carry;
            *o = (v & mask) as f64;
            carry = v >> w;
        }
    }

    /// a·b/R mod n (below 2n for inputs below 2n), into `out`.
    #[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
    #[cfg_attr(all(target_arch = "wasm32", feature = "relaxed-simd"), target_feature(enable = "relaxed-simd"))]
    fn mont_mul(&self, a: &[f64], b: &[f64], s: &mut Scratch, out: &mut [f64]) {
        let k = self.k;
        s.xs[PAD..PAD + k].copy_from_slice(&a[..k]);
        s.t.fill(0.0);
        for i in (0..k).step_by(4) {
            mac4(&mut s.t[i..i + k + 4], &s.xs[1..], [b[i], b[i + 1], b[i + 2], b[i + 3]]);
        }
        self.redc(&mut s.t, out);
    }

    /// a²/R mod n, each cross product once.
    #[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
    #[cfg_attr(all(target_arch = "wasm32", feature = "relaxed-simd"), target_feature(enable = "relaxed-simd"))]
    fn mont_sqr(&self, a: &[f64], s: &mut Scratch, out: &mut [f64]) {
        let k = self.k;
        let a = &a[..k];
        s.xs[PAD..PAD + k].copy_from_slice(a);
        s.t.fill(0.0);
        let t = &mut s.t;
        for i in (0..k).step_by(4) {
            // Rows i to i + 3: the cross products inside the group, then a[i + r]·a[j] for j >= i + 4
            // four rows at a time, with the three limbs before a[i + 4] zeroed in the copy (they are
            // this group's own, and no later group reads them).
            let (a0, a1, a2, a3) = (a[i], a[i + 1], a[i + 2], a[i + 3]);
            t[2 * i + 1] += a0 * a1;
            t[2 * i + 2] += a0 * a2;
            t[2 * i + 3] += a0 * a3 + a1 * a2;
            t[2 * i + 4] += a1 * a3;
            t[2 * i + 5] += a2 * a3;
            s.xs[PAD + i + 1..PAD + i + 4].fill(0.0);
            mac4(&mut t[2 * i + 4..i + k + 4], &s.xs[PAD + i + 1..], [a0, a1, a2, a3]);
        }
        for (pair, &ai) in t.chunks_exact_mut(2).zip(a) {
            pair[0] = 2.0 * pair[0] + ai * ai;
            pair[1] *= 2.0;
        }
        self.redc(t, out);
    }

    /// s^e mod n as `len` big-endian bytes, for s < n given as big-endian bytes and an odd e >= 3.
    pub(super) fn pow(&self, sig: &[u8], e: u64, len: usize) -> Vec<u8> {
        let k = self.k;
        let s: Vec<f64> = limbs_from_be(sig, self.w, k).iter().map(|&l| l as f64).collect();
        let mut m = Scratch::new(k);
        let mut x = vec![0.0; k];
        self.mont_mul(&s, &self.r2, &mut m, &mut x);
        let y = super::ladder(self, &x, &s, e, &mut m);
        // Below 2n: one subtraction at most.
        let mut r: Vec<u32> = y.iter().map(|&l| l as u32).collect();
        if geq(&r, &self.n_int) {
            sub_in_place(&mut r, &self.n_int, self.w);
        }
        limbs_to_be(&r, self.w, len)
    }
}

impl super::Montgomery for Mont {
    type Limb = f64;
    type Scratch = Scratch;
    fn product(&self, a: &[f64], b: &[f64], scratch: &mut Scratch, out: &mut [f64]) {
        self.mont_mul(a, b, scratch, out)
    }
    fn square(&self, a: &[f64], scratch: &mut Scratch, out: &mut [f64]) {
        self.mont_sqr(a, scratch, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key size keeps every column sum exact and within `int`'s range, whatever the limbs.
    #[test]
    fn columns_stay_below_2_to_the_52() {
        for bits in 2048..=8192 {
            let (w, k) = shape(bits);
            assert!(k % 4 == 0 && w as usize * k >= bits + 2, "{bits} bits: R > 4n");
            let term = ((1u64 << w) - 1).pow(2);
            let worst = 2 * k as u64 * term;
            assert!(worst < 1 << 52, "{bits} bits: a column can reach {worst}");
        }
    }

    #[test]
    fn limb_conversions_round_trip() {
        let mut rng = crate::rsa::tests::Rng(7);
        for w in [21, 22] {
            for len in [1usize, 3, 4, 22, 256, 257, 1024] {
                let b = rng.bytes(len);
                let k = (8 * len).div_ceil(w as usize);
                assert_eq!(limbs_to_be(&limbs_from_be(&b, w, k), w, len), b);
            }
        }
    }
}
