//! Request ids: UUID v4 text from a per-VM xoshiro256** generator seeded once from the host's
//! randomness. Unique, cheap (no host call per request), not a secret.

#[derive(Debug, Clone)]
pub struct RequestIds {
    s: [u64; 4],
}

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl RequestIds {
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        RequestIds { s: [splitmix(&mut x), splitmix(&mut x), splitmix(&mut x), splitmix(&mut x)] }
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// The next id, upper-case like Aliyun's (`7AD052CB-EE8B-4DFD-BBAF-EFB340E0A5AF`).
    pub fn next_id(&mut self) -> [u8; 36] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        b[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        let mut out = [b'-'; 36];
        let mut o = 0;
        for (i, byte) in b.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                o += 1;
            }
            out[o] = HEX[(byte >> 4) as usize];
            out[o + 1] = HEX[(byte & 15) as usize];
            o += 2;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v4_shape_and_uniqueness() {
        let mut g = RequestIds::new(42);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let id = g.next_id();
            let s = std::str::from_utf8(&id).unwrap().to_string();
            let parts: Vec<&str> = s.split('-').collect();
            assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12], "{s}");
            assert!(parts[2].starts_with('4'));
            assert!("89AB".contains(&parts[3][..1]));
            assert!(seen.insert(s));
        }
        assert_ne!(RequestIds::new(1).next_id(), RequestIds::new(2).next_id());
    }
}
