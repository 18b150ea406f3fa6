//! P-256's base field in nine 29-bit limbs, for ES256. The generic field code of `ec.rs` keeps
//! 32-bit limbs with a carry per product, a serial chain that V8 cannot overlap; here a product's
//! columns are plain sums (a 29-bit product is below 2^58, a column of nine below 2^62), as in the
//! Wasm build's former RSA engine on 27-bit limbs, and the carries are taken once per column during
//! the reduction. Montgomery form with R = 2^261: p = -1 mod 2^29, so a reduction step's multiplier
//! is the column's low 29 bits, and m·p = m·(p + 1) - m with p + 1 = 2^256 - 2^224 + 2^192 + 2^96 is
//! four shifted additions. Under V8 a multiplication takes 606 instructions against 960 with 32-bit
//! limbs. Results are only partly reduced, below 2p: a product of such values stays below 2p without
//! the final subtraction, and sums and differences are brought back below 2p by one conditional
//! ±2p, as they were below p by ±p. Equality and the zero test compare values, not limbs.

use std::ops::{Add, Mul, Sub};

use crate::ec::{geq, pow2_mod, Field, Modulus, P256Field};

/// Limb width in bits, and the number of limbs (9 · 29 = 261 >= 256 + 2: R > 4p, so a Montgomery
/// product of values below 2p stays below 2p before its final subtraction).
const W: u32 = 29;
const K: usize = 9;
const MASK: u32 = (1 << W) - 1;

/// p as 32-bit limbs, and as 29-bit limbs.
const P32: [u32; 8] = P256Field::M;
const P: [u32; K] = to29(&P32);
/// 2p as 29-bit limbs (2p < 2^257).
const P2: [u32; K] = double(&P);
/// R mod p (one in Montgomery form) and R^2 mod p (into Montgomery form).
const R1: [u32; K] = to29(&pow2_mod(&P32, 29 * K));
const R2: [u32; K] = to29(&pow2_mod(&P32, 2 * 29 * K));

/// 32-bit limbs to 29-bit limbs (the value below 2^256).
const fn to29(a: &[u32; 8]) -> [u32; K] {
    let mut out = [0u32; K];
    let mut i = 0;
    while i < K {
        let (w, s) = (i * 29 / 32, i * 29 % 32);
        let lo = (a[w] >> s) as u64;
        let hi = if w + 1 < 8 { (a[w + 1] as u64) << (32 - s) } else { 0 };
        out[i] = (lo | hi) as u32 & MASK;
        i += 1;
    }
    out
}

/// 2a, 29-bit limbs (a below 2^260).
const fn double(a: &[u32; K]) -> [u32; K] {
    let mut out = [0u32; K];
    let (mut i, mut carry) = (0, 0);
    while i < K {
        let v = 2 * a[i] + carry;
        out[i] = v & MASK;
        carry = v >> W;
        i += 1;
    }
    out
}

/// 29-bit limbs (a value below 2^256) to 32-bit limbs.
const fn to32(a: &[u32; K]) -> [u32; 8] {
    let mut out = [0u32; 8];
    let mut i = 0;
    while i < K {
        let (w, s) = (i * 29 / 32, i * 29 % 32);
        let v = a[i] as u64;
        if w < 8 {
            out[w] |= (v << s) as u32;
        }
        if w + 1 < 8 && s + 29 > 32 {
            out[w + 1] |= (v >> (32 - s)) as u32;
        }
        i += 1;
    }
    out
}

/// a - p if a >= p (a below 2p, limbs below 2^29): the fully reduced value.
#[inline(always)]
fn reduce_once(a: [u32; K]) -> [u32; K] {
    let mut d = [0u32; K];
    let mut borrow = 0i64;
    for j in 0..K {
        let v = a[j] as i64 - P[j] as i64 + borrow;
        d[j] = v as u32 & MASK;
        borrow = v >> W;
    }
    if borrow < 0 {
        a
    } else {
        d
    }
}

/// The Montgomery reduction of the 2K column sums t of a product of values below 2p: t/R mod p,
/// below 2p. t < 4p^2 < p·R (4p < R = 2^261), so (t + m·p)/R < (p·R + R·p)/R = 2p with no final
/// subtraction.
#[inline(always)]
fn redc(t: &mut [i64; 2 * K]) -> [u32; K] {
    for i in 0..K {
        // Column i: m·p clears it (m·p = m·(p + 1) - m), and its quotient carries into column i + 1.
        let m = t[i] & MASK as i64;
        t[i + 1] += (t[i] - m) >> W;
        t[i + 3] += m << 9; // 2^96 = 2^(29·3 + 9)
        t[i + 6] += m << 18; // 2^192 = 2^(29·6 + 18)
        t[i + 7] -= m << 21; // 2^224 = 2^(29·7 + 21)
        t[i + 8] += m << 24; // 2^256 = 2^(29·8 + 24)
    }
    // (t + m·p)/R is in [0, 2p): normalise the columns (signed).
    let mut out = [0u32; K];
    let mut carry = 0i64;
    for (o, &v) in out.iter_mut().zip(&t[K..]) {
        let v = v + carry;
        *o = v as u32 & MASK;
        carry = v >> W;
    }
    out
}

/// An element of P-256's field in Montgomery form (R = 2^261), below 2p: a value has two
/// representations, x and x + p, when x + p < 2p.
#[derive(Clone, Copy)]
pub(crate) struct P256Fe([u32; K]);

impl PartialEq for P256Fe {
    fn eq(&self, other: &Self) -> bool {
        reduce_once(self.0) == reduce_once(other.0)
    }
}

impl Field<8> for P256Fe {
    const ZERO: Self = P256Fe([0; K]);
    const ONE: Self = P256Fe(R1);
    const PRIME: [u32; 8] = P32;

    fn value(self) -> [u32; 8] {
        let mut one = [0u32; K];
        one[0] = 1;
        // a·1/R < 2p/R + p, so p at most (a = p), which the subtraction takes to 0.
        to32(&reduce_once((self * P256Fe(one)).0))
    }

    fn new(a: &[u32; 8]) -> Option<Self> {
        (!geq(a, &P32)).then(|| P256Fe(to29(a)) * P256Fe(R2))
    }

    fn is_zero(self) -> bool {
        self.0 == [0; K] || self.0 == P
    }

    /// Each cross product once.
    fn square(self) -> Self {
        let a = &self.0;
        let mut t = [0i64; 2 * K];
        for i in 0..K {
            for j in i + 1..K {
                t[i + j] += a[i] as i64 * a[j] as i64;
            }
        }
        for (i, pair) in t.chunks_exact_mut(2).enumerate() {
            pair[0] = 2 * pair[0] + a[i] as i64 * a[i] as i64;
            pair[1] *= 2;
        }
        P256Fe(redc(&mut t))
    }
}

impl Mul for P256Fe {
    type Output = Self;
    #[inline(never)]
    fn mul(self, rhs: Self) -> Self {
        let (a, b) = (&self.0, &rhs.0);
        let mut t = [0i64; 2 * K];
        for i in 0..K {
            for j in 0..K {
                t[i + j] += a[i] as i64 * b[j] as i64;
            }
        }
        P256Fe(redc(&mut t))
    }
}

impl Add for P256Fe {
    type Output = Self;
    #[inline(never)]
    fn add(self, rhs: Self) -> Self {
        // a + b and a + b - 2p in one pass (two independent chains); the sum is below 4p < 2^258, so
        // the top limb holds it, and the second is the result unless it went below zero.
        let (mut s, mut d) = ([0u32; K], [0u32; K]);
        let (mut carry, mut borrow) = (0u32, 0i64);
        for j in 0..K {
            let v = self.0[j] + rhs.0[j] + carry;
            s[j] = v & MASK;
            carry = v >> W;
            let w = s[j] as i64 - P2[j] as i64 + borrow;
            d[j] = w as u32 & MASK;
            borrow = w >> W;
        }
        P256Fe(if borrow < 0 { s } else { d })
    }
}

impl Sub for P256Fe {
    type Output = Self;
    #[inline(never)]
    fn sub(self, rhs: Self) -> Self {
        // a - b and a - b + 2p in one pass (two independent chains); the first is the result unless it
        // went below zero (the carry out of the second's top limb drops with the borrow).
        let (mut d, mut e) = ([0u32; K], [0u32; K]);
        let (mut borrow, mut carry) = (0i64, 0u32);
        for j in 0..K {
            let v = self.0[j] as i64 - rhs.0[j] as i64 + borrow;
            d[j] = v as u32 & MASK;
            borrow = v >> W;
            let w = d[j] + P2[j] + carry;
            e[j] = w & MASK;
            carry = w >> W;
        }
        P256Fe(if borrow < 0 { e } else { d })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ec::Fe;

    type Reference = Fe<8, P256Field>;

    struct Rng(u64);
    impl Rng {
        fn below_p(&mut self) -> [u32; 8] {
            let mut a = [0u32; 8];
            for limb in a.iter_mut() {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                *limb = (self.0 >> 16) as u32;
            }
            if geq(&a, &P32) {
                a[7] &= 0x7fff_ffff;
            }
            a
        }
    }

    #[test]
    fn limb_conversions_round_trip() {
        let mut rng = Rng(5);
        for _ in 0..1000 {
            let a = rng.below_p();
            assert_eq!(to32(&to29(&a)), a);
        }
        assert_eq!(to32(&P), P32);
    }

    /// Every operation against the 32-bit field of `ec.rs`, on random values and on the values next
    /// to 0 and p, where the carries and the conditional subtractions turn.
    #[test]
    fn matches_the_32_bit_field() {
        let mut rng = Rng(0x5eed);
        let mut edges: Vec<[u32; 8]> = vec![[0; 8], [1, 0, 0, 0, 0, 0, 0, 0], [2, 0, 0, 0, 0, 0, 0, 0]];
        for d in 1..4u32 {
            let mut a = P32;
            a[0] -= d;
            edges.push(a);
        }
        edges.push([u32::MAX, u32::MAX, u32::MAX, 0, 0, 0, 0, 0]);
        let values: Vec<[u32; 8]> = edges.iter().copied().chain((0..400).map(|_| rng.below_p())).collect();
        // Every result below 2p (its limbs below 2^29), and the value the 32-bit field gives.
        let value = |x: P256Fe| {
            assert!(x.0.iter().all(|&l| l <= MASK) && !geq(&x.0, &P2), "not below 2p: {:?}", x.0);
            x.value()
        };
        for (i, a) in values.iter().enumerate() {
            let (fa, ra) = (P256Fe::new(a).unwrap(), Reference::new(a).unwrap());
            assert_eq!(value(fa), *a, "round trip");
            assert_eq!(value(fa.square()), ref_value(ra.square()), "square");
            for b in values.iter().skip(i % 7).step_by(7) {
                let (fb, rb) = (P256Fe::new(b).unwrap(), Reference::new(b).unwrap());
                assert_eq!(value(fa * fb), ref_value(ra * rb), "product");
                assert_eq!(value(fa + fb), ref_value(ra + rb), "sum");
                assert_eq!(value(fa - fb), ref_value(ra - rb), "difference");
                assert_eq!(fa == fb, a == b);
            }
            if *a != [0; 8] {
                assert_eq!(value(fa.invert().unwrap() * fa), value(P256Fe::ONE), "inverse");
            }
        }
        // The second representation of a value, x + p, compares equal to x and converts back to it.
        let plus_p = |x: P256Fe| {
            let mut out = [0u32; K];
            let mut carry = 0;
            for j in 0..K {
                let v = x.0[j] + P[j] + carry;
                out[j] = v & MASK;
                carry = v >> W;
            }
            P256Fe(out)
        };
        assert!(plus_p(P256Fe::ZERO).is_zero() && plus_p(P256Fe::ZERO) == P256Fe::ZERO);
        assert!(plus_p(P256Fe::ONE) == P256Fe::ONE && !plus_p(P256Fe::ONE).is_zero());
        assert_eq!(plus_p(P256Fe::ONE).value(), P256Fe::ONE.value());
        let two = P256Fe::ONE + P256Fe::ONE;
        assert!(plus_p(P256Fe::ONE) + plus_p(P256Fe::ONE) == two && plus_p(P256Fe::ONE) * plus_p(two) == two);
        assert!(plus_p(P256Fe::ONE) - P256Fe::ONE == P256Fe::ZERO && P256Fe::ONE - plus_p(P256Fe::ONE) == P256Fe::ZERO);
        assert!(P256Fe::new(&P32).is_none(), "p itself");
        assert!(P256Fe::ZERO.is_zero() && !P256Fe::ONE.is_zero());
    }

    fn ref_value(x: Reference) -> [u32; 8] {
        x.value()
    }
}
