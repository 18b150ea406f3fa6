//! ECDSA verification over P-256 and P-384 (ES256, ES384), public-key operations only. Written for
//! Wasm, like `rsa.rs`: field elements are 32-bit limbs in Montgomery form (Wasm multiplies 32x32->64
//! natively, while 64x64->128 is emulated); both primes are -1 mod 2^32 with p + 1 a sum of four
//! signed powers of 2^32, so a Montgomery reduction step is four additions instead of a row of
//! multiplications, and squarings compute each cross product once. The expensive part of a
//! verification, u1·G + u2·Q, is a fixed-base comb over tables computed once: the generator's table
//! once per process, the key's when the key is loaded (kept with the key, shared by its clones). With
//! four combs per table, a verification is bits/32 doublings and at most 2·bits/8 mixed additions,
//! one scalar inversion (Bernstein-Yang divsteps, `modinv.rs`) and no field inversion (x is compared in Jacobian
//! coordinates).
//!
//! Everything here handles public data only (the key, the message, the signature), so variable time is
//! fine. What a verification checks: the key is a point on the curve with coordinates below p (the
//! cofactor is 1, so it is in the group); 0 < r, s < n; u1·G + u2·Q is not the point at infinity; its x
//! coordinate is r mod n. A high `s` is accepted (as the p256/p384 crates did, and as JWS allows).

use crate::modinv::inv_mod;
use std::marker::PhantomData;
use std::ops::{Add, Mul, Sub};
use std::sync::{Arc, OnceLock};

/// P-256's field: 29-bit limbs in Wasm (`p256_field.rs`), 32-bit limbs with the prime's sparse form
/// natively, where the carry chain is cheap (ES256 36 µs there against 45 with 29-bit limbs). The
/// tests run the curve on both (`P256Limbs29`), and `make unit` the core's ECDSA and Wycheproof
/// tests with the feature `p256-limbs29`, which makes a native build use the 29-bit field.
#[cfg(any(target_arch = "wasm32", feature = "p256-limbs29"))]
type P256Base = crate::p256_field::P256Fe;
#[cfg(not(any(target_arch = "wasm32", feature = "p256-limbs29")))]
type P256Base = Fe<8, P256Field>;

// ---------------------------------------------------------------------------------------------------
// Multi-limb integers: little-endian 32-bit limbs.

const fn hex<const N: usize>(s: &str) -> [u32; N] {
    let b = s.as_bytes();
    let mut out = [0u32; N];
    let mut i = 0;
    while i < b.len() {
        let c = b[b.len() - 1 - i];
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => c - b'A' + 10,
        } as u32;
        out[i / 8] |= v << (4 * (i % 8));
        i += 1;
    }
    out
}

pub(crate) const fn geq<const N: usize>(a: &[u32; N], b: &[u32; N]) -> bool {
    let mut i = N;
    while i > 0 {
        i -= 1;
        if a[i] != b[i] {
            return a[i] > b[i];
        }
    }
    true
}

/// a - b and the borrow (0 or 1).
const fn sub_limbs<const N: usize>(a: &[u32; N], b: &[u32; N]) -> ([u32; N], u32) {
    let mut out = [0u32; N];
    let mut borrow = 0u64;
    let mut i = 0;
    while i < N {
        let d = (a[i] as u64).wrapping_sub(b[i] as u64).wrapping_sub(borrow);
        out[i] = d as u32;
        borrow = d >> 63;
        i += 1;
    }
    (out, borrow as u32)
}

/// a + b and the carry (0 or 1).
const fn add_limbs<const N: usize>(a: &[u32; N], b: &[u32; N]) -> ([u32; N], u32) {
    let mut out = [0u32; N];
    let mut carry = 0u64;
    let mut i = 0;
    while i < N {
        let s = a[i] as u64 + b[i] as u64 + carry;
        out[i] = s as u32;
        carry = s >> 32;
        i += 1;
    }
    (out, carry as u32)
}

pub(crate) fn is_zero<const N: usize>(a: &[u32; N]) -> bool {
    a.iter().all(|&x| x == 0)
}

/// Big-endian bytes (exactly 4·N of them) to limbs.
fn from_be<const N: usize>(bytes: &[u8]) -> Option<[u32; N]> {
    if bytes.len() != 4 * N {
        return None;
    }
    let mut out = [0u32; N];
    for (i, chunk) in bytes.rchunks_exact(4).enumerate() {
        out[i] = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    Some(out)
}

/// -m^-1 mod 2^32 (m odd), by Newton iteration: each step doubles the correct low bits.
pub(crate) const fn neg_inv32(m0: u32) -> u32 {
    let mut inv: u32 = 1;
    let mut i = 0;
    while i < 5 {
        inv = inv.wrapping_mul(2u32.wrapping_sub(m0.wrapping_mul(inv)));
        i += 1;
    }
    inv.wrapping_neg()
}

/// 2^k mod m, by doubling.
pub(crate) const fn pow2_mod<const N: usize>(m: &[u32; N], k: usize) -> [u32; N] {
    let mut x = [0u32; N];
    x[0] = 1;
    let mut i = 0;
    while i < k {
        let mut carry = 0;
        let mut j = 0;
        while j < N {
            let top = x[j] >> 31;
            x[j] = x[j] << 1 | carry;
            carry = top;
            j += 1;
        }
        if carry == 1 || geq(&x, m) {
            x = sub_limbs(&x, m).0;
        }
        i += 1;
    }
    x
}

/// a - b mod m (a, b < m).
#[inline]
fn sub_mod<const N: usize>(a: &[u32; N], b: &[u32; N], m: &[u32; N]) -> [u32; N] {
    let (d, borrow) = sub_limbs(a, b);
    if borrow == 1 {
        add_limbs(&d, m).0
    } else {
        d
    }
}

// ---------------------------------------------------------------------------------------------------
// Montgomery arithmetic modulo an odd M < 2^(32·N), R = 2^(32·N).

/// An odd modulus; its Montgomery constants are computed at compile time.
pub(crate) trait Modulus<const N: usize>: 'static {
    const M: [u32; N];
    const M0INV: u32 = neg_inv32(Self::M[0]);
    /// R mod M: one, in Montgomery form.
    const R1: [u32; N] = pow2_mod(&Self::M, 32 * N);
    /// R^2 mod M: converts into Montgomery form.
    const R2: [u32; N] = pow2_mod(&Self::M, 64 * N);
    /// For a prime with M + 1 = sum of sign·2^(32·offset) (P-256's and P-384's p): those terms.
    /// Empty: the general method.
    const SPARSE: &'static [(usize, i64)] = &[];
}

/// a·b/R mod M, fully reduced (a, b < M). CIOS, with the modulus' limbs known at compile time (for
/// P-256's p, several are 0 or 1 and -p^-1 mod 2^32 is 1, which the compiler folds). Not inlined: one
/// copy per modulus keeps the point formulas small, at the cost of a call per multiplication.
#[inline(never)]
fn mont_mul<const N: usize, M: Modulus<N>>(a: &[u32; N], b: &[u32; N]) -> [u32; N] {
    if M::SPARSE.is_empty() {
        mont_mul_cios::<N, M>(a, b)
    } else {
        mont_mul_sparse::<N, M>(a, b)
    }
}

/// Montgomery multiplication for M = -1 mod 2^32 with M + 1 a few signed powers of 2^32: the full
/// product, then per limb i, m = t[i] mod 2^32 and t += m·M·2^(32i) as a handful of signed additions
/// (m·M = m·(M + 1) - m, and the -m clears t[i]) instead of a row of N multiplications.
#[inline(always)]
fn mont_mul_sparse<const N: usize, M: Modulus<N>>(a: &[u32; N], b: &[u32; N]) -> [u32; N] {
    let mut buf = [[0i64; N]; 3];
    let t = buf.as_flattened_mut();
    for i in 0..N {
        let bi = b[i] as u64;
        let mut c = 0u64;
        for j in 0..N {
            let s = t[i + j] as u64 + a[j] as u64 * bi + c;
            t[i + j] = s as u32 as i64;
            c = s >> 32;
        }
        t[i + N] = c as i64;
    }
    sparse_redc::<N, M>(t)
}

/// a²/R mod M for a sparse M (see `mont_mul_sparse`), each cross product once.
#[inline(never)]
fn mont_sqr_sparse<const N: usize, M: Modulus<N>>(a: &[u32; N]) -> [u32; N] {
    let mut buf = [[0i64; N]; 3];
    let t = buf.as_flattened_mut();
    for i in 0..N {
        let ai = a[i] as u64;
        let mut c = 0u64;
        for j in i + 1..N {
            let s = t[i + j] as u64 + a[j] as u64 * ai + c;
            t[i + j] = s as u32 as i64;
            c = s >> 32;
        }
        t[i + N] = c as i64;
    }
    let mut c = 0u64;
    for i in 0..N {
        let sq = a[i] as u64 * a[i] as u64;
        let lo = ((t[2 * i] as u64) << 1) + (sq & 0xffff_ffff) + c;
        t[2 * i] = lo as u32 as i64;
        let hi = ((t[2 * i + 1] as u64) << 1) + (sq >> 32) + (lo >> 32);
        t[2 * i + 1] = hi as u32 as i64;
        c = hi >> 32;
    }
    sparse_redc::<N, M>(t)
}

/// The reduction of `mont_mul_sparse`, on the 2N limbs of a product (3N long, the rest zero).
#[inline(always)]
fn sparse_redc<const N: usize, M: Modulus<N>>(t: &mut [i64]) -> [u32; N] {
    // Limbs are now signed and lazy (|t[j]| < 2^36): each gets a few ±m and a carry.
    for i in 0..N {
        let m = t[i] as u32 as i64;
        t[i + 1] += (t[i] - m) >> 32;
        for &(offset, sign) in M::SPARSE {
            t[i + offset] += sign * m;
        }
    }
    // The value (a·b + m·M)/R is in [0, 2M): normalize, then one subtraction at most.
    let mut out = [0u32; N];
    let mut carry = 0i64;
    for j in 0..N {
        let v = t[N + j] + carry;
        out[j] = v as u32;
        carry = (v - (v as u32 as i64)) >> 32;
    }
    if carry != 0 || geq(&out, &M::M) {
        out = sub_limbs(&out, &M::M).0;
    }
    out
}

#[inline(always)]
fn mont_mul_cios<const N: usize, M: Modulus<N>>(a: &[u32; N], b: &[u32; N]) -> [u32; N] {
    let mut t = [0u32; N];
    let mut hi = 0u32;
    for &bi in b {
        let bi = bi as u64;
        let mut c = 0u64;
        for j in 0..N {
            let s = t[j] as u64 + a[j] as u64 * bi + c;
            t[j] = s as u32;
            c = s >> 32;
        }
        let s = hi as u64 + c;
        let (tn, tn1) = (s as u32, (s >> 32) as u32);
        let m = t[0].wrapping_mul(M::M0INV) as u64;
        let mut c = (t[0] as u64 + m * M::M[0] as u64) >> 32;
        for j in 1..N {
            let s = t[j] as u64 + m * M::M[j] as u64 + c;
            t[j - 1] = s as u32;
            c = s >> 32;
        }
        let s = tn as u64 + c;
        t[N - 1] = s as u32;
        hi = tn1 + (s >> 32) as u32;
    }
    if hi != 0 || geq(&t, &M::M) {
        t = sub_limbs(&t, &M::M).0;
    }
    t
}

/// What the curve code needs of the elements of its base field. Equality and `is_zero` are of values:
/// an element may have more than one representation (`p256_field` keeps them below 2p).
pub(crate) trait Field<const N: usize>: Copy + PartialEq + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + 'static {
    const ZERO: Self;
    const ONE: Self;
    /// From an integer (32-bit limbs); None unless below the prime.
    fn new(a: &[u32; N]) -> Option<Self>;
    fn is_zero(self) -> bool;
    fn square(self) -> Self;
    fn double(self) -> Self {
        self + self
    }
    /// The prime, as 32-bit limbs.
    const PRIME: [u32; N];
    /// Back to an integer below the prime (32-bit limbs).
    fn value(self) -> [u32; N];
    fn invert(self) -> Option<Self> {
        Self::new(&inv_mod(&self.value(), &Self::PRIME)?)
    }
}

/// An element of Z/M in Montgomery form, always fully reduced (so equal values have equal limbs).
pub(crate) struct Fe<const N: usize, M>([u32; N], PhantomData<fn() -> M>);

impl<const N: usize, M> Clone for Fe<N, M> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<const N: usize, M> Copy for Fe<N, M> {}
impl<const N: usize, M> PartialEq for Fe<N, M> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<const N: usize, M: Modulus<N>> Field<N> for Fe<N, M> {
    const ZERO: Self = Fe([0; N], PhantomData);
    const ONE: Self = Fe(M::R1, PhantomData);
    const PRIME: [u32; N] = M::M;

    fn value(self) -> [u32; N] {
        let mut one = [0u32; N];
        one[0] = 1;
        mont_mul::<N, M>(&self.0, &one)
    }

    fn new(a: &[u32; N]) -> Option<Self> {
        (!geq(a, &M::M)).then(|| Fe(mont_mul::<N, M>(a, &M::R2), PhantomData))
    }

    fn is_zero(self) -> bool {
        is_zero(&self.0)
    }

    fn square(self) -> Self {
        if M::SPARSE.is_empty() {
            self * self
        } else {
            Fe(mont_sqr_sparse::<N, M>(&self.0), PhantomData)
        }
    }
}

impl<const N: usize, M: Modulus<N>> Mul for Fe<N, M> {
    type Output = Self;
    #[inline]
    fn mul(self, rhs: Self) -> Self {
        Fe(mont_mul::<N, M>(&self.0, &rhs.0), PhantomData)
    }
}

impl<const N: usize, M: Modulus<N>> Add for Fe<N, M> {
    type Output = Self;
    #[inline(never)]
    fn add(self, rhs: Self) -> Self {
        let (s, carry) = add_limbs(&self.0, &rhs.0);
        Fe(if carry == 1 || geq(&s, &M::M) { sub_limbs(&s, &M::M).0 } else { s }, PhantomData)
    }
}

impl<const N: usize, M: Modulus<N>> Sub for Fe<N, M> {
    type Output = Self;
    #[inline(never)]
    fn sub(self, rhs: Self) -> Self {
        Fe(sub_mod(&self.0, &rhs.0, &M::M), PhantomData)
    }
}

// ---------------------------------------------------------------------------------------------------
// Curves y^2 = x^3 - 3x + b over F_p, of prime order n (cofactor 1).

/// The shape of a point's comb tables: `combs` combs of `teeth` teeth, a block of 2^teeth entries
/// each. A multiplication adds one entry per comb and column (bits / teeth of them, rounded up) and
/// doubles once per column a comb scans (its span: the columns / combs).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Comb {
    teeth: usize,
    combs: usize,
}

impl Comb {
    /// A public key's: four combs of eight teeth, 8 doublings and 64 additions for P-256 (64 KB).
    const KEY: Comb = Comb { teeth: 8, combs: 4 };

    /// Bits between two teeth.
    const fn cols(self, bits: usize) -> usize {
        bits.div_ceil(self.teeth)
    }

    /// Columns each comb scans.
    const fn span(self, bits: usize) -> usize {
        self.cols(bits) / self.combs
    }

    /// Whether the combs split the columns evenly (else a scalar's top bits would be skipped) and
    /// scan a key's span (a verification scans both tables' columns together).
    const fn fits(self, bits: usize) -> bool {
        self.cols(bits) % self.combs == 0 && self.span(bits) == Comb::KEY.span(bits)
    }
}

pub(crate) trait Curve<const N: usize>: 'static + Sized {
    /// The base field F_p.
    type Base: Field<N>;
    /// The group order n.
    type Order: Modulus<N>;
    const B: [u32; N];
    const GX: [u32; N];
    const GY: [u32; N];
    /// The generator's comb shape: its span must be a key's (`Comb::KEY`), since a verification
    /// scans both tables' columns together.
    const G_COMB: Comb = Comb::KEY;
    /// The generator's comb table, computed on first use.
    fn g_table() -> &'static Table<N, Self>;
}

type F<const N: usize, C> = <C as Curve<N>>::Base;

/// An affine point (never the point at infinity).
pub(crate) struct Affine<const N: usize, C: Curve<N>> {
    x: F<N, C>,
    y: F<N, C>,
}

impl<const N: usize, C: Curve<N>> Clone for Affine<N, C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<const N: usize, C: Curve<N>> Copy for Affine<N, C> {}

/// Jacobian coordinates: (X/Z^2, Y/Z^3); Z = 0 is the point at infinity.
struct Jacobian<const N: usize, C: Curve<N>> {
    x: F<N, C>,
    y: F<N, C>,
    z: F<N, C>,
}

impl<const N: usize, C: Curve<N>> Clone for Jacobian<N, C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<const N: usize, C: Curve<N>> Copy for Jacobian<N, C> {}

impl<const N: usize, C: Curve<N>> Affine<N, C> {
    /// A point from big-endian coordinates: each below p, and on the curve.
    fn from_be(x: &[u8], y: &[u8]) -> Option<Self> {
        let (x, y) = (F::<N, C>::new(&from_be(x)?)?, F::<N, C>::new(&from_be(y)?)?);
        let p = Affine { x, y };
        p.on_curve().then_some(p)
    }

    fn on_curve(&self) -> bool {
        let b = F::<N, C>::new(&C::B);
        let x3 = self.x.square() * self.x;
        let three_x = self.x.double() + self.x;
        b.is_some_and(|b| self.y.square() == x3 - three_x + b)
    }

    fn jacobian(self) -> Jacobian<N, C> {
        Jacobian { x: self.x, y: self.y, z: F::<N, C>::ONE }
    }
}

impl<const N: usize, C: Curve<N>> Jacobian<N, C> {
    const INFINITY: Self = Jacobian { x: F::<N, C>::ONE, y: F::<N, C>::ONE, z: F::<N, C>::ZERO };

    /// 2P, a = -3 (dbl-2001-b: 3M + 5S). The point at infinity doubles to itself.
    fn double(self) -> Self {
        let delta = self.z.square();
        let gamma = self.y.square();
        let beta = self.x * gamma;
        let t = (self.x - delta) * (self.x + delta);
        let alpha = t.double() + t;
        let beta4 = beta.double().double();
        let x3 = alpha.square() - beta4.double();
        let z3 = (self.y + self.z).square() - gamma - delta;
        let gamma2 = gamma.square();
        let y3 = alpha * (beta4 - x3) - gamma2.double().double().double();
        Jacobian { x: x3, y: y3, z: z3 }
    }

    /// P + Q for an affine Q (madd-2007-bl: 7M + 4S), with the exceptional cases handled.
    fn add_affine(self, q: &Affine<N, C>) -> Self {
        if self.z.is_zero() {
            return q.jacobian();
        }
        let z1z1 = self.z.square();
        let u2 = q.x * z1z1;
        let s2 = q.y * self.z * z1z1;
        let h = u2 - self.x;
        let r = (s2 - self.y).double();
        if h.is_zero() {
            return if r.is_zero() { q.jacobian().double() } else { Self::INFINITY };
        }
        let hh = h.square();
        let i = hh.double().double();
        let j = h * i;
        let v = self.x * i;
        let x3 = r.square() - j - v.double();
        let y3 = r * (v - x3) - (self.y * j).double();
        let z3 = (self.z + h).square() - z1z1 - hh;
        Jacobian { x: x3, y: y3, z: z3 }
    }
}

/// Jacobian points to affine with one inversion (Montgomery's trick); None if one is at infinity.
fn batch_affine<const N: usize, C: Curve<N>>(points: &[Jacobian<N, C>]) -> Option<Vec<Affine<N, C>>> {
    let mut prefix = Vec::with_capacity(points.len());
    let mut acc = F::<N, C>::ONE;
    for p in points {
        if p.z.is_zero() {
            return None;
        }
        prefix.push(acc);
        acc = acc * p.z;
    }
    let mut inv = acc.invert()?;
    let mut out = vec![Affine { x: F::<N, C>::ZERO, y: F::<N, C>::ZERO }; points.len()];
    for (i, p) in points.iter().enumerate().rev() {
        let zinv = inv * prefix[i];
        inv = inv * p.z;
        let zinv2 = zinv.square();
        out[i] = Affine { x: p.x * zinv2, y: p.y * zinv2 * zinv };
    }
    Some(out)
}

/// The comb tables of a point P. In comb v, entry m (1 <= m < 2^teeth) is the sum over the bits j of
/// m of 2^(j·cols + v·span)·P; entry 0 is unused (a copy of entry 1). Combs offset by a fraction of
/// the tooth spacing make a multiplication `span` doublings instead of `cols`, for that many times
/// the table.
pub(crate) struct Table<const N: usize, C: Curve<N>> {
    points: Vec<Affine<N, C>>,
    comb: Comb,
    cols: usize,
    span: usize,
}

impl<const N: usize, C: Curve<N>> Table<N, C> {
    const BITS: usize = 32 * N;

    /// An empty table (adds nothing: only if the curve's constants were wrong).
    const EMPTY: Self = Table { points: Vec::new(), comb: Comb::KEY, cols: 0, span: 0 };

    fn new(p: Affine<N, C>, comb: Comb) -> Option<Self> {
        let (cols, span) = (comb.cols(Self::BITS), comb.span(Self::BITS));
        // 2^(k·span)·P for k < teeth·combs: tooth j of comb v is k = j·combs + v.
        let mut bases = Vec::with_capacity(comb.teeth * comb.combs);
        let mut b = p.jacobian();
        for k in 0..comb.teeth * comb.combs {
            if k > 0 {
                for _ in 0..span {
                    b = b.double();
                }
            }
            bases.push(b);
        }
        let bases = batch_affine(&bases)?;
        let mut jac = vec![Jacobian::<N, C>::INFINITY; comb.combs << comb.teeth];
        for (v, block) in jac.chunks_exact_mut(1 << comb.teeth).enumerate() {
            for m in 1..1usize << comb.teeth {
                let j = usize::BITS as usize - 1 - m.leading_zeros() as usize;
                let rest = m ^ 1 << j;
                let base = bases.get(j * comb.combs + v)?;
                block[m] = if rest == 0 { base.jacobian() } else { block[rest].add_affine(base) };
            }
            block[0] = block[1];
        }
        Some(Table { points: batch_affine(&jac)?, comb, cols, span })
    }

    /// Comb v's digit of scalar k at column c: bit j is bit j·cols + v·span + c of k (0 past the top).
    #[inline]
    fn digit(&self, k: &[u32; N], v: usize, c: usize) -> usize {
        let mut d = 0;
        for j in 0..self.comb.teeth {
            let i = j * self.cols + v * self.span + c;
            if let Some(limb) = k.get(i / 32) {
                d |= (((limb >> (i % 32)) & 1) as usize) << j;
            }
        }
        d
    }

    /// Entry `d` of comb `v`.
    #[inline]
    fn entry(&self, v: usize, d: usize) -> Option<&Affine<N, C>> {
        self.points.get(v << self.comb.teeth | d)
    }
}

/// u1·G + u2·Q, both scalars below n, sharing the doublings (both tables scan columns of the same
/// span: `Comb::fits`). An incomplete table (only if the curve's constants were wrong) gives a wrong
/// point, which no signature matches.
fn mul2<const N: usize, C: Curve<N>>(u1: &[u32; N], u2: &[u32; N], q: &Table<N, C>) -> Jacobian<N, C> {
    let g = C::g_table();
    let mut acc = Jacobian::<N, C>::INFINITY;
    for c in (0..q.span).rev() {
        acc = acc.double();
        for (k, table) in [(u1, g), (u2, q)] {
            for v in 0..table.comb.combs {
                let d = table.digit(k, v, c);
                if let Some(point) = (d != 0).then(|| table.entry(v, d)).flatten() {
                    acc = acc.add_affine(point);
                }
            }
        }
    }
    acc
}

/// A public key with its comb table, shared by the clones of the key.
pub(crate) struct PublicKey<const N: usize, C: Curve<N>>(Arc<Table<N, C>>);

impl<const N: usize, C: Curve<N>> Clone for PublicKey<N, C> {
    fn clone(&self) -> Self {
        PublicKey(Arc::clone(&self.0))
    }
}

impl<const N: usize, C: Curve<N>> PublicKey<N, C> {
    /// From the JWK's `x` and `y` (big-endian, 4·N bytes each); None unless a point on the curve.
    pub(crate) fn new(x: &[u8], y: &[u8]) -> Option<Self> {
        let point = Affine::<N, C>::from_be(x, y)?;
        C::g_table();
        Some(PublicKey(Arc::new(Table::new(point, Comb::KEY)?)))
    }

    /// Verifies a JWS signature (r || s, 4·N bytes each, big-endian) over a message whose hash (of
    /// 4·N bytes: SHA-256 for P-256, SHA-384 for P-384) is `hash`.
    pub(crate) fn verify(&self, hash: &[u8], sig: &[u8]) -> bool {
        self.verify_inner(hash, sig).unwrap_or(false)
    }

    fn verify_inner(&self, hash: &[u8], sig: &[u8]) -> Option<bool> {
        let n = &<C::Order as Modulus<N>>::M;
        if sig.len() != 8 * N {
            return None;
        }
        let (r, s) = (from_be::<N>(&sig[..4 * N])?, from_be::<N>(&sig[4 * N..])?);
        if is_zero(&r) || is_zero(&s) || geq(&r, n) || geq(&s, n) {
            return None;
        }
        let mut e = from_be::<N>(hash)?;
        if geq(&e, n) {
            e = sub_limbs(&e, n).0;
        }
        let w = inv_mod(&s, n)?;
        // (a·w/R)·R^2/R = a·w mod n.
        let r2 = &<C::Order as Modulus<N>>::R2;
        let u1 = mont_mul::<N, C::Order>(&mont_mul::<N, C::Order>(&e, &w), r2);
        let u2 = mont_mul::<N, C::Order>(&mont_mul::<N, C::Order>(&r, &w), r2);
        let point = mul2(&u1, &u2, &self.0);
        if point.z.is_zero() {
            return None;
        }
        // x = X/Z^2; x mod n == r iff X == r·Z^2 or (when r + n < p) X == (r + n)·Z^2.
        let z2 = point.z.square();
        if F::<N, C>::new(&r)? * z2 == point.x {
            return Some(true);
        }
        let (rn, carry) = add_limbs(&r, n);
        Some(carry == 0 && F::<N, C>::new(&rn).is_some_and(|rn| rn * z2 == point.x))
    }
}

// ---------------------------------------------------------------------------------------------------
// The curves (SEC 2 / FIPS 186-4 parameters).

pub(crate) struct P256;
pub(crate) struct P256Field;
pub(crate) struct P256Order;

impl Modulus<8> for P256Field {
    const M: [u32; 8] = hex("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff");
    // p + 1 = 2^256 - 2^224 + 2^192 + 2^96.
    const SPARSE: &'static [(usize, i64)] = &[(3, 1), (6, 1), (7, -1), (8, 1)];
}
impl Modulus<8> for P256Order {
    const M: [u32; 8] = hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
}

impl Curve<8> for P256 {
    type Base = P256Base;
    type Order = P256Order;
    const B: [u32; 8] = hex("5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b");
    const GX: [u32; 8] = hex("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296");
    const GY: [u32; 8] = hex("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5");
    /// Three combs of eleven teeth: 24 columns of span 8 like a key's, so u1·G takes 24 additions
    /// instead of 32 (ES256 verification is mostly additions). One table per process (per VM in
    /// Wasm): 6,144 points, 442 KB in Wasm, built once, against 74 KB for four combs of eight.
    const G_COMB: Comb = Comb { teeth: 11, combs: 3 };
    fn g_table() -> &'static Table<8, Self> {
        static T: OnceLock<Table<8, P256>> = OnceLock::new();
        T.get_or_init(generator_table)
    }
}

pub(crate) struct P384;
pub(crate) struct P384Field;
pub(crate) struct P384Order;

impl Modulus<12> for P384Field {
    const M: [u32; 12] = hex("fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff");
    // p + 1 = 2^384 - 2^128 - 2^96 + 2^32.
    const SPARSE: &'static [(usize, i64)] = &[(1, 1), (3, -1), (4, -1), (12, 1)];
}
impl Modulus<12> for P384Order {
    const M: [u32; 12] = hex("ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973");
}

impl Curve<12> for P384 {
    type Base = Fe<12, P384Field>;
    type Order = P384Order;
    const B: [u32; 12] = hex("b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef");
    const GX: [u32; 12] = hex("aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7");
    const GY: [u32; 12] = hex("3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f");
    fn g_table() -> &'static Table<12, Self> {
        static T: OnceLock<Table<12, P384>> = OnceLock::new();
        T.get_or_init(generator_table)
    }
}

/// The generator's table. The generator is a constant on the curve, so this cannot fail; were the
/// constants wrong, the table would be empty and every signature would be refused (tested).
fn generator_table<const N: usize, C: Curve<N>>() -> Table<N, C> {
    // Both shapes a curve uses, checked when it is compiled.
    const { assert!(Comb::KEY.fits(32 * N) && C::G_COMB.fits(32 * N), "a comb shape does not fit the curve") };
    let g = F::<N, C>::new(&C::GX).zip(F::<N, C>::new(&C::GY)).map(|(x, y)| Affine { x, y });
    g.filter(Affine::on_curve).and_then(|g| Table::new(g, C::G_COMB)).unwrap_or(Table::EMPTY)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn be<const N: usize>(a: &[u32; N]) -> Vec<u8> {
        a.iter().rev().flat_map(|l| l.to_be_bytes()).collect()
    }

    fn generator_ok<const N: usize, C: Curve<N>>() {
        assert_eq!(C::g_table().points.len(), C::G_COMB.combs << C::G_COMB.teeth);
        assert_eq!(C::g_table().span, Comb::KEY.span(32 * N), "the generator's combs must scan a key's span");
        let g = Affine::<N, C>::from_be(&be(&C::GX), &be(&C::GY)).unwrap();
        // n·G = infinity, (n-1)·G = -G.
        let n = <C::Order as Modulus<N>>::M;
        let zero = [0u32; N];
        assert!(mul2::<N, C>(&n, &zero, C::g_table()).z.is_zero());
        let mut one = [0u32; N];
        one[0] = 1;
        let n1 = sub_limbs(&n, &one).0;
        let p = mul2::<N, C>(&n1, &zero, C::g_table());
        let a = batch_affine(&[p]).unwrap()[0];
        assert!(a.x == g.x && a.y == F::<N, C>::ZERO - g.y);
        // 1·G + 1·G = 2G (the doubling case of the addition).
        let t = Table::new(g, Comb::KEY).unwrap();
        let two = batch_affine(&[mul2::<N, C>(&one, &one, &t)]).unwrap()[0];
        let dbl = batch_affine(&[g.jacobian().double()]).unwrap()[0];
        assert!(two.x == dbl.x && two.y == dbl.y);
        // 1·G + (n-1)·G = infinity.
        assert!(mul2::<N, C>(&one, &n1, &t).z.is_zero());
    }

    /// P-256 on the 29-bit field, whichever field the target uses.
    struct P256Limbs29;
    impl Curve<8> for P256Limbs29 {
        type Base = crate::p256_field::P256Fe;
        type Order = P256Order;
        const B: [u32; 8] = P256::B;
        const GX: [u32; 8] = P256::GX;
        const GY: [u32; 8] = P256::GY;
        const G_COMB: Comb = P256::G_COMB;
        fn g_table() -> &'static Table<8, Self> {
            static T: OnceLock<Table<8, P256Limbs29>> = OnceLock::new();
            T.get_or_init(generator_table)
        }
    }

    /// A signature made here (k·G for R, s = k^-1·(e + r·d) mod n), big-endian r || s.
    fn sign<C: Curve<8>>(d: &[u32; 8], k: &[u32; 8], e: &[u32; 8]) -> Option<Vec<u8>> {
        let zero = [0u32; 8];
        let r_point = batch_affine(&[mul2::<8, C>(k, &zero, C::g_table())])?[0];
        let n = &<P256Order as Modulus<8>>::M;
        let mut r = r_point.x.value();
        if geq(&r, n) {
            r = sub_limbs(&r, n).0;
        }
        let to_n = |a: &[u32; 8]| Fe::<8, P256Order>::new(a);
        let s = (to_n(e)? + to_n(&r)? * to_n(d)?) * to_n(k)?.invert()?;
        let s = s.value();
        Some([be(&r), be(&s)].concat())
    }

    /// Both fields verify the same signatures and refuse the same forgeries.
    #[test]
    fn both_p256_fields_verify_alike() {
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut scalar = || {
            let mut a = [0u32; 8];
            for limb in a.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *limb = (x >> 16) as u32;
            }
            a[7] &= 0x7fff_ffff;
            a
        };
        for case in 0..40 {
            let (d, k, e) = (scalar(), scalar(), scalar());
            let zero = [0u32; 8];
            let q = batch_affine(&[mul2::<8, P256>(&d, &zero, P256::g_table())]).unwrap()[0];
            let (qx, qy) = (be(&q.x.value()), be(&q.y.value()));
            let ours = PublicKey::<8, P256>::new(&qx, &qy).unwrap();
            let other = PublicKey::<8, P256Limbs29>::new(&qx, &qy).unwrap();
            let sig = sign::<P256Limbs29>(&d, &k, &e).unwrap();
            assert_eq!(sig, sign::<P256>(&d, &k, &e).unwrap(), "case {case}: R differs between the fields");
            let hash = be(&e);
            assert!(ours.verify(&hash, &sig) && other.verify(&hash, &sig), "case {case}");
            for bit in (0..512).step_by(37 + case) {
                let mut bad = sig.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                assert!(!ours.verify(&hash, &bad) && !other.verify(&hash, &bad), "case {case}, bit {bit}");
            }
            let mut other_hash = hash.clone();
            other_hash[31] ^= 1;
            assert!(!ours.verify(&other_hash, &sig) && !other.verify(&other_hash, &sig));
        }
    }

    #[test]
    fn generators() {
        generator_ok::<8, P256>();
        generator_ok::<8, P256Limbs29>();
        generator_ok::<12, P384>();
    }

    fn sparse_matches_cios<const N: usize, M: Modulus<N>>() {
        // The terms describe the modulus: sum of sign·2^(32·offset) - 1 == M.
        let mut v = vec![0i128; N + 2];
        for &(offset, sign) in M::SPARSE {
            v[offset] += sign as i128;
        }
        v[0] -= 1;
        let mut limbs = [0u32; N];
        let mut carry = 0i128;
        for (j, x) in v.iter().enumerate() {
            let t = x + carry;
            if j < N {
                limbs[j] = t.rem_euclid(1 << 32) as u32;
            } else {
                assert_eq!(t - t.rem_euclid(1 << 32), 0);
            }
            carry = (t - t.rem_euclid(1 << 32)) >> 32;
        }
        assert_eq!(limbs, M::M);
        let mut x = 0x0123_4567_89ab_cdefu64;
        let mut next = || {
            let mut a = [0u32; N];
            for l in a.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *l = (x >> 16) as u32;
            }
            if geq(&a, &M::M) {
                sub_limbs(&a, &M::M).0
            } else {
                a
            }
        };
        let mut one = [0u32; N];
        one[0] = 1;
        let mut edge = sub_limbs(&M::M, &one).0;
        for i in 0..2000 {
            let (a, b) = match i {
                0 => (edge, edge),
                1 => ([0u32; N], edge),
                _ => (next(), next()),
            };
            assert_eq!(mont_mul_sparse::<N, M>(&a, &b), mont_mul_cios::<N, M>(&a, &b), "case {i}");
            assert_eq!(mont_sqr_sparse::<N, M>(&a), mont_mul_cios::<N, M>(&a, &a), "square {i}");
            edge = mont_mul_cios::<N, M>(&edge, &edge);
        }
    }

    #[test]
    fn sparse_reduction() {
        sparse_matches_cios::<8, P256Field>();
        sparse_matches_cios::<12, P384Field>();
    }

    #[test]
    fn inversion() {
        let n = P256Order::M;
        let mut a = [0u32; 8];
        for k in 1..200u32 {
            a[0] = k;
            a[5] = k.wrapping_mul(0x9e37_79b9);
            let inv = inv_mod(&a, &n).unwrap();
            let prod = mont_mul::<8, P256Order>(&mont_mul::<8, P256Order>(&a, &inv), &P256Order::R2);
            let mut one = [0u32; 8];
            one[0] = 1;
            assert_eq!(prod, one);
        }
        // Random values, some with long runs of zero bits at the bottom, modulo n and p of both curves.
        let mut x = 0x0bad_cafe_u64;
        for case in 0..300 {
            let mut a = [0u32; 12];
            for limb in a.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *limb = (x >> 16) as u32;
            }
            for limb in a.iter_mut().take(case % 5) {
                *limb = 0;
            }
            a[0] &= !((1u32 << (case % 31)) - 1);
            let mut a8 = [0u32; 8];
            a8.copy_from_slice(&a[..8]);
            a8[7] &= 0x7fff_ffff;
            a[11] &= 0x7fff_ffff;
            if a8 != [0; 8] {
                let inv = inv_mod(&a8, &n).unwrap();
                let prod = mont_mul::<8, P256Order>(&mont_mul::<8, P256Order>(&a8, &inv), &P256Order::R2);
                assert_eq!(prod[0], 1, "case {case}");
                assert!(prod[1..].iter().all(|&l| l == 0), "case {case}");
                let p = P256Field::M;
                let inv = inv_mod(&a8, &p).unwrap();
                let prod = mont_mul::<8, P256Field>(&mont_mul::<8, P256Field>(&a8, &inv), &P256Field::R2);
                assert!(prod[0] == 1 && prod[1..].iter().all(|&l| l == 0), "case {case} mod p");
            }
            if a != [0; 12] {
                let n384 = P384Order::M;
                let inv = inv_mod(&a, &n384).unwrap();
                let prod = mont_mul::<12, P384Order>(&mont_mul::<12, P384Order>(&a, &inv), &P384Order::R2);
                assert!(prod[0] == 1 && prod[1..].iter().all(|&l| l == 0), "case {case} mod n (P-384)");
            }
        }
        assert!(inv_mod(&[0u32; 8], &n).is_none());
        assert!(inv_mod(&n, &n).is_none());
    }

    #[test]
    fn points_off_the_curve_or_out_of_range_are_refused() {
        let (gx, gy) = (be(&P256::GX), be(&P256::GY));
        assert!(PublicKey::<8, P256>::new(&gx, &gy).is_some());
        let mut y = gy.clone();
        y[31] ^= 1;
        assert!(PublicKey::<8, P256>::new(&gx, &y).is_none());
        // Coordinates must be below p.
        assert!(PublicKey::<8, P256>::new(&be(&P256Field::M), &gy).is_none());
        assert!(PublicKey::<8, P256>::new(&gx, &be(&P256Field::M)).is_none());
        assert!(PublicKey::<8, P256>::new(&gx[1..], &gy).is_none());
        assert!(PublicKey::<8, P256>::new(&[0; 32], &[0; 32]).is_none());
    }
}
