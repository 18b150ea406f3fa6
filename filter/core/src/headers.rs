//! Request headers as bytes. The adapter fetches the whole header map with one host call, in the
//! proxy-wasm serialized form, and the core reads it in place: no per-header allocation, no UTF-8
//! assumption about values.

/// Header pairs borrowed from one buffer. Names are lower case (Envoy normalises them).
#[derive(Debug, Default, Clone)]
pub struct Headers<'a> {
    pairs: Vec<(&'a [u8], &'a [u8])>,
}

fn read_u32(buf: &[u8], at: usize) -> Option<usize> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

impl<'a> Headers<'a> {
    pub fn from_pairs(pairs: Vec<(&'a [u8], &'a [u8])>) -> Self {
        Headers { pairs }
    }

    /// Parses the proxy-wasm map encoding: `count`, then `count` pairs of (name length, value
    /// length), then each name and value followed by a NUL. `None` if the buffer is malformed.
    pub fn from_serialized(buf: &'a [u8]) -> Option<Self> {
        if buf.is_empty() {
            return Some(Headers::default());
        }
        let count = read_u32(buf, 0)?;
        let mut data = count.checked_mul(8)?.checked_add(4)?;
        if data > buf.len() {
            return None;
        }
        let mut pairs = Vec::with_capacity(count);
        for n in 0..count {
            let name_len = read_u32(buf, 4 + n * 8)?;
            let value_len = read_u32(buf, 8 + n * 8)?;
            let name = buf.get(data..data.checked_add(name_len)?)?;
            data = data.checked_add(name_len + 1)?;
            let value = buf.get(data..data.checked_add(value_len)?)?;
            data = data.checked_add(value_len + 1)?;
            pairs.push((name, value));
        }
        Some(Headers { pairs })
    }

    /// First value of the header `name` (given in lower case).
    pub fn get(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.pairs.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
    }

    /// First value, with the name compared case-insensitively (names a client listed itself).
    pub fn get_ignore_case(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.pairs.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|&(_, v)| v)
    }

    pub fn contains(&self, name: &[u8]) -> bool {
        self.pairs.iter().any(|(n, _)| *n == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + '_ {
        self.pairs.iter().copied()
    }
}

/// Serializes pairs in the proxy-wasm map encoding (the adapter's tests and the host mock use it).
pub fn serialize(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (n, v) in pairs {
        out.extend_from_slice(&(n.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (n, v) in pairs {
        out.extend_from_slice(n);
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_binary_values() {
        let pairs: Vec<(&[u8], &[u8])> = vec![(b":path", b"/a"), (b"x-bin", b"\x80\xff\x00z"), (b"x-bin", b"second")];
        let buf = serialize(&pairs);
        let h = Headers::from_serialized(&buf).unwrap();
        assert_eq!(h.get(b"x-bin"), Some(&b"\x80\xff\x00z"[..]));
        assert_eq!(h.get_ignore_case(b"X-BIN"), Some(&b"\x80\xff\x00z"[..]));
        assert_eq!(h.get(b"absent"), None);
        assert_eq!(h.iter().count(), 3);
    }

    #[test]
    fn rejects_truncated_or_lying_buffers() {
        let buf = serialize(&[(b"a", b"bb")]);
        for cut in 1..buf.len() - 1 {
            assert!(Headers::from_serialized(&buf[..cut]).is_none(), "cut {cut}");
        }
        let mut lying = buf.clone();
        lying[0] = 0xff; // claims 255 pairs
        assert!(Headers::from_serialized(&lying).is_none());
        let mut huge = buf;
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Headers::from_serialized(&huge).is_none());
        assert_eq!(Headers::from_serialized(&[]).unwrap().iter().count(), 0);
    }
}
