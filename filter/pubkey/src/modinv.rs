//! a^-1 mod m for an odd modulus, by Bernstein and Yang's divsteps ("Fast constant-time gcd
//! computation and modular inversion", 2019) in its variable-time form: the values inverted here are
//! public (an ECDSA signature's s, the coordinates of a key's table points).
//!
//! Each round runs 30 division steps on the low 30 bits of f and g alone, with small integers,
//! collecting them as a 2x2 matrix (scaled by 2^30); the matrix is then applied to the whole of f
//! and g, and to d and e, which track f = d·a and g = e·a (mod m). When g reaches 0, f is ±1 and
//! ±d is the inverse. Numbers are signed 30-bit limbs in i64, so that a limb times a matrix entry
//! (at most 2^30 each) and the sums stay far below 2^63. Where the binary extended Euclid it
//! replaces shifts and subtracts whole numbers once per one or two bits, a round here touches the
//! whole numbers once per 30 bits.

/// Bits per limb.
const W: u32 = 30;
const MASK: i64 = (1 << W) - 1;
/// Limbs for the largest modulus (384 bits): a value below 2^384 and the sign and factor-of-two
/// headroom d and e need (they stay in (-2m, m)), in 13 × 30 = 390 bits.
const L: usize = 13;
/// Rounds allowed before giving up: a 384-bit inversion needs at most about 30 (the steps bounded
/// by about 2.3 per bit); a modulus that is not odd or an input sharing a factor with it ends
/// earlier, with f not ±1.
const MAX_ROUNDS: usize = 64;

type Limbs = [i64; L];

/// -(2i + 1)^-1 mod 256 for i below 128: the multiple of an odd f that cancels the low 8 bits of g.
const NEG_INV256: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        t[i] = crate::ec::neg_inv32(2 * i as u32 + 1) as u8;
        i += 1;
    }
    t
};

/// 30 division steps on the low bits of f (odd) and g, from eta (minus the paper's delta): the new
/// eta and the matrix [u v; q r] with 2^30·(f', g') = (u·f + v·g, q·f + r·g). Runs of zero bits
/// of g go in one shift, and up to 8 bits of g are cancelled with one multiple of f.
fn divsteps(mut eta: i32, f0: u32, g0: u32) -> (i32, [i64; 4]) {
    let (mut u, mut v, mut q, mut r) = (1u32, 0u32, 0u32, 1u32);
    let (mut f, mut g) = (f0, g0);
    let mut left = W;
    loop {
        // A sentinel bit at `left` stops the count there.
        let zeros = (g | u32::MAX << left).trailing_zeros();
        g >>= zeros;
        u <<= zeros;
        v <<= zeros;
        eta -= zeros as i32;
        left -= zeros;
        if left == 0 {
            break;
        }
        // f and g are odd.
        if eta < 0 {
            eta = -eta;
            (f, g) = (g, f.wrapping_neg());
            (u, q) = (q, u.wrapping_neg());
            (v, r) = (r, v.wrapping_neg());
        }
        // No more bits than remain in the round, nor than eta + 1 (where eta's sign would flip).
        let limit = (eta as u32).saturating_add(1).min(left);
        let mask = (u32::MAX >> (32 - limit)) & 255;
        let w = g.wrapping_mul(NEG_INV256[(f >> 1 & 127) as usize] as u32) & mask;
        g = g.wrapping_add(f.wrapping_mul(w));
        q = q.wrapping_add(u.wrapping_mul(w));
        r = r.wrapping_add(v.wrapping_mul(w));
    }
    // Each entry is at most 2^30 in magnitude: the u32 bits read as i32.
    (eta, [u as i32 as i64, v as i32 as i64, q as i32 as i64, r as i32 as i64])
}

/// (x, y) = (u·x + v·y + mx·m, q·x + r·y + my·m) / 2^30, the matrix and the multiples of m having
/// cleared the low 30 bits (for f and g the matrix alone does, with mx = my = 0).
fn apply(x: &mut Limbs, y: &mut Limbs, t: [i64; 4], m: &Limbs, mx: i64, my: i64, len: usize) {
    let [u, v, q, r] = t;
    let (mut cx, mut cy) = ((u * x[0] + v * y[0] + m[0] * mx) >> W, (q * x[0] + r * y[0] + m[0] * my) >> W);
    for i in 1..len {
        cx += u * x[i] + v * y[i] + m[i] * mx;
        cy += q * x[i] + r * y[i] + m[i] * my;
        x[i - 1] = cx & MASK;
        y[i - 1] = cy & MASK;
        cx >>= W;
        cy >>= W;
    }
    x[len - 1] = cx;
    y[len - 1] = cy;
}

/// (d, e) = (u·d + v·e, q·d + r·e) / 2^30 mod m, kept in (-2m, m): the multiple of m that clears
/// the low 30 bits is added (m_inv = m^-1 mod 2^30), plus m·u (m·q) when d (e) is negative.
fn update_de(d: &mut Limbs, e: &mut Limbs, t: [i64; 4], m: &Limbs, m_inv: u32, len: usize) {
    let [u, v, q, r] = t;
    let (d_neg, e_neg) = (d[len - 1] >> 63, e[len - 1] >> 63);
    let mut md = (u & d_neg) + (v & e_neg);
    let mut me = (q & d_neg) + (r & e_neg);
    let (cd, ce) = (u * d[0] + v * e[0], q * d[0] + r * e[0]);
    md -= (m_inv.wrapping_mul(cd as u32).wrapping_add(md as u32) as i64) & MASK;
    me -= (m_inv.wrapping_mul(ce as u32).wrapping_add(me as u32) as i64) & MASK;
    apply(d, e, t, m, md, me, len);
}

/// x + m, or -x when `negate`, carried back to 30-bit limbs with a signed top limb.
fn add_or_negate(x: &mut Limbs, m: &Limbs, negate: bool, len: usize) {
    let mut c = 0i64;
    for i in 0..len {
        c += if negate { -x[i] } else { x[i] + m[i] };
        x[i] = if i + 1 < len { c & MASK } else { c };
        c >>= W;
    }
}

fn to_limbs<const N: usize>(a: &[u32; N]) -> Limbs {
    let mut out = [0i64; L];
    let (mut acc, mut have, mut i) = (0u64, 0u32, 0usize);
    for &word in a {
        acc |= (word as u64) << have;
        have += 32;
        while have >= W && i < L {
            out[i] = acc as i64 & MASK;
            acc >>= W;
            have -= W;
            i += 1;
        }
    }
    if i < L {
        out[i] = acc as i64;
    }
    out
}

/// Normalised non-negative limbs (below 2^(32·N)) to 32-bit words.
fn from_limbs<const N: usize>(x: &Limbs, len: usize) -> [u32; N] {
    let mut out = [0u32; N];
    let (mut acc, mut have, mut j) = (0u64, 0u32, 0usize);
    for &limb in &x[..len] {
        acc |= (limb as u64) << have;
        have += W;
        while have >= 32 && j < N {
            out[j] = acc as u32;
            acc >>= 32;
            have -= 32;
            j += 1;
        }
    }
    if j < N {
        out[j] = acc as u32;
    }
    out
}

/// a^-1 mod m for an odd m of at most 384 bits and 0 < a < m; None if there is none (a shares a
/// factor with m) or the input is out of range.
pub(crate) fn inv_mod<const N: usize>(a: &[u32; N], m: &[u32; N]) -> Option<[u32; N]> {
    let len = (32 * N + 2).div_ceil(W as usize);
    if len > L || m[0] & 1 == 0 || crate::ec::is_zero(a) || crate::ec::geq(a, m) {
        return None;
    }
    let mm = to_limbs(m);
    let m_inv = crate::ec::neg_inv32(m[0]).wrapping_neg() & MASK as u32;
    let (mut f, mut g) = (mm, to_limbs(a));
    let (mut d, mut e) = ([0i64; L], [0i64; L]);
    e[0] = 1;
    let mut eta = -1;
    for _ in 0..MAX_ROUNDS {
        let (next, t) = divsteps(eta, f[0] as u32, g[0] as u32);
        eta = next;
        update_de(&mut d, &mut e, t, &mm, m_inv, len);
        apply(&mut f, &mut g, t, &mm, 0, 0, len);
        if g[..len].iter().all(|&x| x == 0) {
            let plus_one = f[0] == 1 && f[1..len].iter().all(|&x| x == 0);
            let minus_one = f[..len - 1].iter().all(|&x| x == MASK) && f[len - 1] == -1;
            if !plus_one && !minus_one {
                return None;
            }
            // d·a = f = ±1 (mod m), d in (-2m, m): the inverse is ±d, brought into [0, m).
            if d[len - 1] < 0 {
                add_or_negate(&mut d, &mm, false, len);
            }
            if minus_one {
                add_or_negate(&mut d, &mm, true, len);
            }
            if d[len - 1] < 0 {
                add_or_negate(&mut d, &mm, false, len);
            }
            return Some(from_limbs(&d, len));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limbs_round_trip() {
        let a: [u32; 12] = core::array::from_fn(|i| 0x9e37_79b9u32.wrapping_mul(i as u32 + 1));
        assert_eq!(from_limbs::<12>(&to_limbs(&a), 13), a);
        let b = [u32::MAX; 8];
        assert_eq!(from_limbs::<8>(&to_limbs(&b), 9), b);
    }

    #[test]
    fn negative_inverse_table() {
        for (i, &n) in NEG_INV256.iter().enumerate() {
            let f = 2 * i as u32 + 1;
            assert_eq!(f.wrapping_mul(n as u32) & 255, 255, "f = {f}");
        }
    }

    #[test]
    fn small_moduli_against_brute_force() {
        for m in [3u32, 5, 7, 9, 15, 97, 255, 65_521, 0xffff_fffb] {
            for a in (1..m).step_by((m as usize / 200).max(1)) {
                let got = inv_mod(&[a], &[m]);
                if m < 70_000 {
                    let want = (1..m as u64).find(|&x| a as u64 * x % m as u64 == 1).map(|x| [x as u32]);
                    assert_eq!(got, want, "{a}^-1 mod {m}");
                } else {
                    let [x] = got.unwrap();
                    assert_eq!(a as u64 * x as u64 % m as u64, 1, "{a}^-1 mod {m}");
                }
            }
        }
    }
}
