//! The rows of `mont64.rs` on x86-64 processors with BMI2 and ADX (Intel since Broadwell, AMD since
//! Zen): `mulx` multiplies without touching the flags, and `adcx`/`adox` add with two independent
//! carry flags, so the low halves of a row's products and the high halves carried into the next limb
//! run as two carry chains in one pass. Compiled code keeps one chain (`add`/`adc`), which makes each
//! product wait for the previous one's carry; this is what OpenSSL and BoringSSL do in assembly, and
//! it takes a 2048-bit exponentiation from about 30 to 17 µs here. Used only after the processor is
//! seen to have both extensions (`Adx::detect`); otherwise `mont64.rs` runs its portable code.
//! Nothing here touches a secret (public-key operations only).

use super::mont64::{double_add_squares, reduce_once};

/// Proof that the processor has BMI2 and ADX: the only way to reach the assembly.
#[derive(Clone, Copy)]
pub(super) struct Adx(());

impl Adx {
    pub(super) fn detect() -> Option<Adx> {
        (std::is_x86_feature_detected!("bmi2") && std::is_x86_feature_detected!("adx")).then_some(Adx(()))
    }

    /// t[..len] += a[..len]·b with len = min(t.len(), a.len()); returns the carry limb.
    fn mul_add(self, t: &mut [u64], a: &[u64], b: u64) -> u64 {
        let len = t.len().min(a.len());
        // SAFETY: `self` exists only if the processor has BMI2 and ADX (`detect`), and the assembly
        // reads `len` limbs of `a` and reads and writes `len` limbs of `t`, both at least that long.
        unsafe { mul_add(t.as_mut_ptr(), a.as_ptr(), b, len) }
    }

    /// a·b/R mod n into `out` (a, b < n; all k limbs long, `t` 2k limbs of scratch). Row i adds
    /// a·b[i] to the window t[i..i + k], then m·n with m chosen to clear t[i]; the window slides up
    /// one limb instead of the limbs moving down, and `hi` is the limb above it.
    pub(super) fn mul(self, n: &[u64], n0inv: u64, a: &[u64], b: &[u64], t: &mut [u64], out: &mut [u64]) {
        let k = n.len();
        let t = &mut t[..2 * k];
        t.fill(0);
        let mut hi = 0u64;
        for (i, &bi) in b[..k].iter().enumerate() {
            let window = &mut t[i..i + k];
            let c1 = self.mul_add(window, a, bi);
            let m = window[0].wrapping_mul(n0inv);
            let c2 = self.mul_add(window, n, m);
            // The running value stays below 2n < 2R: `hi` is 0 or 1.
            let s = hi as u128 + c1 as u128 + c2 as u128;
            t[i + k] = s as u64;
            hi = (s >> 64) as u64;
        }
        let out = &mut out[..k];
        out.copy_from_slice(&t[k..]);
        reduce_once(out, hi, n);
    }

    /// a²/R mod n into `out` (a < n; `t` 2k limbs of scratch): each cross product once, doubled, the
    /// squares added, then reduced row by row.
    pub(super) fn sqr(self, n: &[u64], n0inv: u64, a: &[u64], t: &mut [u64], out: &mut [u64]) {
        let k = n.len();
        let (a, t) = (&a[..k], &mut t[..2 * k]);
        t.fill(0);
        for i in 0..k.saturating_sub(1) {
            // Row i: a[i]·a[j] for j > i, at t[i + j]; its carry lands on t[i + k], not yet written.
            t[i + k] = self.mul_add(&mut t[2 * i + 1..], &a[i + 1..], a[i]);
        }
        double_add_squares(a, t);
        let mut top = 0u64;
        for i in 0..k {
            let m = t[i].wrapping_mul(n0inv);
            let c = self.mul_add(&mut t[i..i + k], n, m);
            let s = t[i + k] as u128 + c as u128 + top as u128;
            t[i + k] = s as u64;
            top = (s >> 64) as u64;
        }
        let out = &mut out[..k];
        out.copy_from_slice(&t[k..]);
        reduce_once(out, top, n);
    }
}

/// t[..len] += a[..len]·b; returns the carry limb (t + a·b < 2^(64·(len + 1)), so it fits).
/// Unrolled by four, then one limb at a time; the loop counts with `lea` and `jrcxz`, which leave
/// both carry flags alone.
///
/// # Safety
/// The processor must have BMI2 and ADX; `t` and `a` must be valid for `len` limbs (`t` writable).
#[target_feature(enable = "bmi2,adx")]
unsafe fn mul_add(t: *mut u64, a: *const u64, b: u64, len: usize) -> u64 {
    let hi: u64;
    // SAFETY: the caller's contract; the assembly touches only a[..len] and t[..len], and no stack.
    unsafe {
        core::arch::asm!(
            // hi = 0, and both carry flags cleared.
            "xor {hi:e}, {hi:e}",
            "jrcxz 4f",
            "2:",
            "mulx {h0}, {lo}, qword ptr [{a}]",
            "adcx {lo}, qword ptr [{t}]",
            "adox {lo}, {hi}",
            "mov qword ptr [{t}], {lo}",
            "mulx {hi}, {lo}, qword ptr [{a} + 8]",
            "adcx {lo}, qword ptr [{t} + 8]",
            "adox {lo}, {h0}",
            "mov qword ptr [{t} + 8], {lo}",
            "mulx {h0}, {lo}, qword ptr [{a} + 16]",
            "adcx {lo}, qword ptr [{t} + 16]",
            "adox {lo}, {hi}",
            "mov qword ptr [{t} + 16], {lo}",
            "mulx {hi}, {lo}, qword ptr [{a} + 24]",
            "adcx {lo}, qword ptr [{t} + 24]",
            "adox {lo}, {h0}",
            "mov qword ptr [{t} + 24], {lo}",
            "lea {a}, [{a} + 32]",
            "lea {t}, [{t} + 32]",
            "lea rcx, [rcx - 1]",
            "jrcxz 4f",
            "jmp 2b",
            // The len % 4 limbs left.
            "4:",
            "mov rcx, {rest}",
            "jrcxz 6f",
            "5:",
            "mulx {h0}, {lo}, qword ptr [{a}]",
            "adcx {lo}, qword ptr [{t}]",
            "adox {lo}, {hi}",
            "mov qword ptr [{t}], {lo}",
            "mov {hi}, {h0}",
            "lea {a}, [{a} + 8]",
            "lea {t}, [{t} + 8]",
            "lea rcx, [rcx - 1]",
            "jrcxz 6f",
            "jmp 5b",
            // Both chains' last carries into the carry limb.
            "6:",
            "mov {lo:e}, 0",
            "adcx {hi}, {lo}",
            "adox {hi}, {lo}",
            a = inout(reg) a => _,
            t = inout(reg) t => _,
            rest = in(reg) len % 4,
            inout("rcx") len / 4 => _,
            in("rdx") b,
            hi = out(reg) hi,
            h0 = out(reg) _,
            lo = out(reg) _,
            options(nostack),
        );
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;

    /// t += a·b the slow way.
    fn mul_add_reference(t: &mut [u64], a: &[u64], b: u64) -> u64 {
        let mut c = 0u128;
        for (x, &y) in t.iter_mut().zip(a) {
            let s = *x as u128 + y as u128 * b as u128 + c;
            *x = s as u64;
            c = s >> 64;
        }
        c as u64
    }

    #[test]
    fn rows_match_the_reference_at_every_length_and_at_the_carry_limits() {
        let Some(adx) = Adx::detect() else {
            eprintln!("this processor has no BMI2/ADX: the assembly rows are not tested here");
            return;
        };
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // Lengths around the unrolling by four; all-ones limbs make every carry chain run full.
        for len in 0..=13 {
            for fill in [None, Some(u64::MAX), Some(0)] {
                let mut gen = |_| fill.unwrap_or_else(&mut next);
                let a: Vec<u64> = (0..len).map(&mut gen).collect();
                let t: Vec<u64> = (0..len).map(&mut gen).collect();
                for b in [0, 1, u64::MAX, gen(0)] {
                    let (mut got, mut want) = (t.clone(), t.clone());
                    let c = adx.mul_add(&mut got, &a, b);
                    assert_eq!(c, mul_add_reference(&mut want, &a, b), "len {len}, b {b:#x}");
                    assert_eq!(got, want, "len {len}, b {b:#x}");
                }
            }
        }
    }
}
