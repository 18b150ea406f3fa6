//! Client bytes made fit for a header value or a message.

/// Makes a StringToSign fit a header value: `\n` becomes `#` (as Aliyun reports it), other control
/// bytes, `%` and non-ASCII bytes are percent-encoded.
pub fn header_safe(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s {
        match b {
            b'\n' => out.push('#'),
            b'%' => out.push_str("%25"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 15) as usize] as char);
            }
        }
    }
    out
}

/// A configured name (API, stage, app, plugin) as one segment of a stat name, the same in both
/// builds: dots and anything outside `[A-Za-z0-9_-]` become `_`, so a name cannot add segments or
/// break the stats tags that split them.
pub fn stat_safe(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect()
}

/// A value for a header the gateway sends: control characters (CR and LF would split the message)
/// become spaces; everything else is kept, UTF-8 included.
pub(crate) fn header_value(s: &str) -> std::borrow::Cow<'_, str> {
    // Most values are printable ASCII: settled by bytes, without decoding characters.
    if s.bytes().all(|b| (0x20..0x7f).contains(&b) || b == b'\t') || !s.chars().any(|c| c.is_control() && c != '\t') {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(s.chars().map(|c| if c.is_control() && c != '\t' { ' ' } else { c }).collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn stat_safe_names_are_one_segment() {
        assert_eq!(super::stat_safe("orders.v2/用户"), "orders_v2___");
        assert_eq!(super::stat_safe("per-app_1"), "per-app_1");
    }
}
