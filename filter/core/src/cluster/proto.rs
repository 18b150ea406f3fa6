//! The few pieces of the protobuf wire format the cluster messages need: varints and length-delimited
//! fields, written into a buffer and read back without trusting the input.

/// Appends a base-128 varint.
pub(crate) fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A varint field (wire type 0). Zero is written too: a caller that wants proto3's "absent" skips it.
pub(crate) fn uint(out: &mut Vec<u8>, field: u32, v: u64) {
    varint(out, u64::from(field) << 3);
    varint(out, v);
}

/// A length-delimited field (wire type 2): bytes, a string or an embedded message.
pub(crate) fn bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    varint(out, (u64::from(field) << 3) | 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// An embedded message built by `f`.
pub(crate) fn message(out: &mut Vec<u8>, field: u32, f: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    f(&mut inner);
    bytes(out, field, &inner);
}

/// A field's value as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// Fixed 32- or 64-bit values, skipped by every message here.
    Fixed,
}

fn read_varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The fields of a message, in order; `None` if the buffer is malformed anywhere.
pub(crate) fn fields(buf: &[u8]) -> Option<Vec<(u32, Value<'_>)>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let key = read_varint(buf, &mut at)?;
        let field = u32::try_from(key >> 3).ok()?;
        let value = match key & 7 {
            0 => Value::Varint(read_varint(buf, &mut at)?),
            1 => {
                at = at.checked_add(8).filter(|&e| e <= buf.len())?;
                Value::Fixed
            }
            2 => {
                let len = usize::try_from(read_varint(buf, &mut at)?).ok()?;
                let end = at.checked_add(len).filter(|&e| e <= buf.len())?;
                let b = buf.get(at..end)?;
                at = end;
                Value::Bytes(b)
            }
            5 => {
                at = at.checked_add(4).filter(|&e| e <= buf.len())?;
                Value::Fixed
            }
            _ => return None,
        };
        out.push((field, value));
    }
    Some(out)
}

/// The last varint of `field` (proto3: the last one wins), 0 when absent.
pub(crate) fn last_uint(fields: &[(u32, Value<'_>)], field: u32) -> u64 {
    fields
        .iter()
        .rev()
        .find_map(|(f, v)| match v {
            Value::Varint(x) if *f == field => Some(*x),
            _ => None,
        })
        .unwrap_or(0)
}

/// The last length-delimited value of `field`.
pub(crate) fn last_bytes<'a>(fields: &[(u32, Value<'a>)], field: u32) -> Option<&'a [u8]> {
    fields.iter().rev().find_map(|(f, v)| match v {
        Value::Bytes(b) if *f == field => Some(*b),
        _ => None,
    })
}

/// Every length-delimited value of a repeated `field`, in order.
pub(crate) fn all_bytes<'a>(fields: &[(u32, Value<'a>)], field: u32) -> Vec<&'a [u8]> {
    fields
        .iter()
        .filter_map(|(f, v)| match v {
            Value::Bytes(b) if *f == field => Some(*b),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_malformed_input() {
        let mut out = Vec::new();
        uint(&mut out, 1, 300);
        bytes(&mut out, 2, b"abc");
        message(&mut out, 3, |m| uint(m, 1, u64::MAX));
        let f = fields(&out).unwrap();
        assert_eq!(last_uint(&f, 1), 300);
        assert_eq!(last_bytes(&f, 2), Some(&b"abc"[..]));
        assert_eq!(last_uint(&fields(last_bytes(&f, 3).unwrap()).unwrap(), 1), u64::MAX);
        for cut in 1..out.len() {
            let _ = fields(&out[..cut]);
        }
        assert!(fields(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_none(), "a length past the end");
        assert!(fields(&[0x0b]).is_none(), "wire type 3 (groups) is refused");
        assert!(fields(&[0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]).is_none(), "an 11-byte varint");
    }
}
