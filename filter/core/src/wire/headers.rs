//! Request headers as bytes. The adapter fetches the whole header map with one host call, in the
//! proxy-wasm serialized form, and the core reads it in place: no per-header allocation, no UTF-8
//! assumption about values.

/// Header pairs borrowed from one buffer. Names are lower case (Envoy normalises them).
#[derive(Debug, Default, Clone)]
pub struct Headers<'a> {
    pairs: Vec<(&'a [u8], &'a [u8])>,
    /// The lengths of the names, a bit each (`length_bit`): a lookup of a name whose length no
    /// header has (most of them: the gateway asks for many headers a request does not carry)
    /// answers without a scan. Two names that are one (`same_name`) have the same length.
    lengths: u64,
}

fn length_bit(name: &[u8]) -> u64 {
    1 << (name.len() % 64)
}

fn lengths_of(pairs: &[(&[u8], &[u8])]) -> u64 {
    pairs.iter().fold(0, |m, (n, _)| m | length_bit(n))
}

fn read_u32(buf: &[u8], at: usize) -> Option<usize> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

impl<'a> Headers<'a> {
    pub fn from_pairs(pairs: Vec<(&'a [u8], &'a [u8])>) -> Self {
        Headers { lengths: lengths_of(&pairs), pairs }
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
        let mut lengths = 0;
        for n in 0..count {
            let name_len = read_u32(buf, 4 + n * 8)?;
            let value_len = read_u32(buf, 8 + n * 8)?;
            let name = buf.get(data..data.checked_add(name_len)?)?;
            data = data.checked_add(name_len + 1)?;
            let value = buf.get(data..data.checked_add(value_len)?)?;
            data = data.checked_add(value_len + 1)?;
            lengths |= length_bit(name);
            pairs.push((name, value));
        }
        Some(Headers { pairs, lengths })
    }

    /// First value of the header `name` (given in lower case).
    pub fn get(&self, name: &[u8]) -> Option<&'a [u8]> {
        if !self.may_hold(name) {
            return None;
        }
        // Lengths first, inline: the module is optimised for size, and a comparison call per pair
        // was most of a lookup's cost.
        for &(n, v) in &self.pairs {
            if n.len() == name.len() && n == name {
                return Some(v);
            }
        }
        None
    }

    /// False when no header name has the length of `name`: then none is `name` in any spelling.
    pub fn may_hold(&self, name: &[u8]) -> bool {
        self.lengths & length_bit(name) != 0
    }

    /// True if two headers are one name to some backend (`same_name`).
    pub fn any_name_twice(&self) -> bool {
        // Only a name whose length came before can be a name seen before.
        let mut seen = 0u64;
        self.pairs.iter().enumerate().any(|(i, (n, _))| {
            let bit = length_bit(n);
            let again = seen & bit != 0;
            seen |= bit;
            again && self.pairs.iter().take(i).any(|(m, _)| same_name(m, n))
        })
    }

    /// The values of a header under every spelling a backend reads as `name` (see `same_name`): the
    /// values of a declared parameter, checked and forwarded alike.
    pub fn spellings<'s>(&'s self, name: &'s [u8]) -> impl Iterator<Item = &'a [u8]> + 's {
        let pairs = if self.may_hold(name) { &self.pairs[..] } else { &[] };
        pairs.iter().filter(move |(n, _)| same_name(n, name)).map(|&(_, v)| v)
    }

    /// A header holding a whole number (`Content-Length`, the hop counter).
    pub fn number(&self, name: &[u8]) -> Option<u64> {
        std::str::from_utf8(crate::wire::url::trim(self.get(name)?)).ok()?.parse().ok()
    }

    pub fn contains(&self, name: &[u8]) -> bool {
        self.get(name).is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + '_ {
        self.pairs.iter().copied()
    }
}

/// How a backend may read a header name: case ignored, and `_` as `-` (CGI and WSGI turn both into
/// `HTTP_X_CA_APP_ID`). Two names that fold alike are one header to such a backend.
fn fold(b: u8) -> u8 {
    if b == b'_' {
        b'-'
    } else {
        b.to_ascii_lowercase()
    }
}

/// True if a client-sent `name` is, to some backend, the header `owned` (either spelling).
#[inline(always)]
pub fn same_name(name: &[u8], owned: &[u8]) -> bool {
    // The lengths inline (the module is optimised for size, which would make this a call): the
    // gateway compares names often, and most differ in length.
    name.len() == owned.len() && folds_alike(name, owned)
}

fn folds_alike(name: &[u8], owned: &[u8]) -> bool {
    // From the end: the names compared share prefixes (`x-ca-`), rarely suffixes.
    name.iter().rev().zip(owned.iter().rev()).all(|(&a, &b)| fold(a) == fold(b))
}

/// True if a client-sent `name` starts, to some backend, with `prefix` (lower case, `-`).
pub fn starts_with_name(name: &[u8], prefix: &[u8]) -> bool {
    name.get(..prefix.len()).is_some_and(|head| same_name(head, prefix))
}

/// Names the gateway owns by prefix: a client's copy never reaches the backend.
pub const OWNED_PREFIXES: [&[u8]; 1] = [b"x-ca-proxy-"];

/// True if the backend must not receive the client's header `name`: the gateway sets or removes a
/// header of that name (`edits`), or owns its prefix, under any spelling.
pub fn gateway_owned<'e>(name: &[u8], mut edits: impl Iterator<Item = &'e [u8]>) -> bool {
    OWNED_PREFIXES.iter().any(|p| starts_with_name(name, p)) || edits.any(|e| same_name(name, e))
}

/// A header edit of the gateway's: set `name` to the value, or remove it (`None`).
pub type Edit<'a> = (&'a [u8], Option<&'a [u8]>);

/// The gateway's request header edits as it builds them, in order: a name and its value (`None`
/// removes it). Most names are the gateway's own constants: borrowed, not copied for every request.
pub type Edits = Vec<(std::borrow::Cow<'static, str>, Option<Vec<u8>>)>;

/// The client's names to remove before the edits apply, beyond those the edits name exactly: other
/// spellings of owned names, owned prefixes. The backend then receives the client's headers less
/// every one the gateway owns (in any spelling), and the gateway's values.
pub fn owned_spellings<'a>(head: &Headers<'a>, edits: &[Edit<'_>]) -> Vec<&'a [u8]> {
    let mut out: Vec<&[u8]> = Vec::new();
    // A name no edit has the length of is no edit's name in any spelling.
    let edited = edits.iter().fold(0, |m, e| m | length_bit(e.0));
    for (n, _) in head.iter() {
        let named = edited & length_bit(n) != 0;
        if gateway_owned(n, edits.iter().map(|e| e.0).filter(|_| named)) && !edits.iter().any(|e| e.0 == n) && !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

/// Serializes pairs in the proxy-wasm map encoding (as the host hands whole maps to the filter).
pub fn serialize(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let bytes: usize = pairs.iter().map(|(n, v)| n.len() + v.len() + 10).sum();
    let mut out = Vec::with_capacity(4 + bytes);
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
        assert_eq!(h.spellings(b"X_BIN").next(), Some(&b"\x80\xff\x00z"[..]));
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

    #[test]
    fn gateway_owned_names_in_every_spelling() {
        let edits: [&[u8]; 2] = [b"x-ca-app-id", b"x-user"];
        for name in [&b"x-ca-app-id"[..], b"X_Ca_App_Id", b"x-ca_app-id", b"X-CA-APP-ID", b"x_user", b"x-ca-proxy-x", b"X_CA_PROXY_SIGNATURE"] {
            assert!(gateway_owned(name, edits.iter().copied()), "{}", String::from_utf8_lossy(name));
        }
        for name in [&b"x-ca-app-idx"[..], b"x-ca-app", b"x-ca-key", b"x-ca-proxy", b"xuser"] {
            assert!(!gateway_owned(name, edits.iter().copied()), "{}", String::from_utf8_lossy(name));
        }
    }

    #[test]
    fn owned_spellings_cover_what_the_edits_do_not_name() {
        let pairs: Vec<(&[u8], &[u8])> =
            vec![(b":path", b"/a"), (b"x_ca_app_id", b"99999"), (b"x-ca-app-id", b"1"), (b"x-ca-proxy-signature", b"forged"), (b"keep", b"k")];
        let h = Headers::from_pairs(pairs);
        let edits: Vec<Edit<'_>> = vec![(b"x-ca-app-id", Some(b"10001")), (b"x-ca-api-name", None)];
        assert_eq!(owned_spellings(&h, &edits), vec![&b"x_ca_app_id"[..], b"x-ca-proxy-signature"]);
    }

    #[test]
    fn a_name_given_twice_in_any_spelling_is_found_whatever_the_lengths_around_it() {
        let h = |names: &[&'static str]| Headers::from_pairs(names.iter().map(|n| (n.as_bytes(), &b"v"[..])).collect());
        // Same lengths, other names: not twice.
        assert!(!h(&[":path", "x-ab", "x-cd", "accept", "cookie", "host"]).any_name_twice());
        assert!(h(&[":path", "x-ab", "accept", "x_AB"]).any_name_twice());
        assert!(h(&["a", "bb", "ccc", "x-ca-key", "dddd", "X_CA_KEY"]).any_name_twice());
        // 64 apart: the same bit, other lengths.
        let long = "y".repeat(70);
        assert!(!h(&["xxxxxx", Box::leak(long.into_boxed_str())]).any_name_twice());
    }

    #[test]
    fn lookups_of_names_no_header_has_the_length_of_find_nothing() {
        let pairs: Vec<(&[u8], &[u8])> = vec![(b":path", b"/a"), (b"x_ca_key", b"k"), (b"accept", b"*/*")];
        let h = Headers::from_pairs(pairs);
        assert_eq!(h.get(b"accept"), Some(&b"*/*"[..]));
        assert_eq!(h.get(b"accepts"), None);
        assert_eq!(h.get(b"x-ca-key"), None); // same length, another spelling: `get` is exact
        assert_eq!(h.spellings(b"x-ca-key").collect::<Vec<_>>(), vec![&b"k"[..]]);
        assert!(h.contains(b":path") && !h.contains(b":paths") && !h.contains(b"x-ca-nonce"));
        let serialized = serialize(&[(b":path", b"/a"), (b"x-ca-nonce", b"n")]);
        let parsed = Headers::from_serialized(&serialized).unwrap();
        assert_eq!(parsed.get(b"x-ca-nonce"), Some(&b"n"[..]));
        assert_eq!(parsed.get(b"x-ca-stage"), None);
    }
}
