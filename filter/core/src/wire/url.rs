//! URL pieces as the signature sees them: percent-decoding, query and form parameters.

use std::borrow::Cow;

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `s`; with `plus_is_space`, `+` becomes a space (form and query encoding). A `%`
/// not followed by two hex digits stays as it is, as Java's and Python's lenient decoders leave it.
/// Borrows when there is nothing to decode.
pub fn percent_decode(s: &[u8], plus_is_space: bool) -> Cow<'_, [u8]> {
    if !s.iter().any(|&b| b == b'%' || (plus_is_space && b == b'+')) {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        match b {
            b'%' => match (s.get(i + 1).copied().and_then(hex), s.get(i + 2).copied().and_then(hex)) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            _ => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(out)
}

/// One decoded parameter: `value` is `None` for a bare `name` (or `name=`), which signs as the bare name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlParam<'a> {
    pub name: Cow<'a, [u8]>,
    pub value: Option<Cow<'a, [u8]>>,
}

/// The most parameters a query or a form body may hold: each parsed one costs memory the Wasm VM never
/// gives back, and a body of `a&a&…` holds one per two bytes.
pub(crate) const MAX_PARAMETERS: usize = 1000;

/// Whether a query or form body holds more than `MAX_PARAMETERS` parameters (refused before parsing).
pub(crate) fn too_many_parameters(s: &[u8]) -> bool {
    s.iter().filter(|&&b| b == b'&').count() >= MAX_PARAMETERS && s.split(|&b| b == b'&').filter(|p| !p.is_empty()).nth(MAX_PARAMETERS).is_some()
}

/// Appends the parameters of an `application/x-www-form-urlencoded` string (a query or a form body),
/// at most `MAX_PARAMETERS` of them (requests with more are refused before they are parsed).
pub fn parse_urlencoded<'a>(s: &'a [u8], out: &mut Vec<UrlParam<'a>>) {
    for piece in s.split(|&b| b == b'&').filter(|p| !p.is_empty()).take(MAX_PARAMETERS) {
        let (name, value) = match piece.iter().position(|&b| b == b'=') {
            Some(eq) => (&piece[..eq], Some(&piece[eq + 1..])),
            None => (piece, None),
        };
        let value = value.filter(|v| !v.is_empty()).map(|v| percent_decode(v, true));
        out.push(UrlParam { name: percent_decode(name, true), value });
    }
}

/// Splits a `:path` into the path and the query (without `?`). A fragment, which clients should not
/// send, is left in the query as received.
pub fn split_path(full: &[u8]) -> (&[u8], &[u8]) {
    match full.iter().position(|&b| b == b'?') {
        Some(q) => (&full[..q], &full[q + 1..]),
        None => (full, &[]),
    }
}

/// Sorts by name (byte order) and keeps only the first value of each name. The sort is stable, so
/// "first" is the order parameters were appended.
pub(crate) fn canonical(params: &mut Vec<UrlParam<'_>>) {
    params.sort_by(|a, b| a.name.cmp(&b.name));
    params.dedup_by(|later, first| later.name == first.name);
}

/// Which value a name given in both the query and the form is signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precedence {
    /// The form's: Alibaba's client SDKs put the form parameters over the query's.
    Form,
    /// The query's: a servlet lists the query's values first, and Aliyun's backend demo signs the first.
    Query,
}

/// Appends the signed form of the parameters: `?` then the query and form parameters, decoded,
/// sorted by name, first value of each (of the query and the form, the one `precedence` names), a
/// bare name for an empty value, joined with `&`. Nothing when there are none. (The client
/// signature and the backend signature share this.)
pub fn append_signed_parameters(query: &[u8], form: Option<&[u8]>, precedence: Precedence, out: &mut Vec<u8>) {
    let mut params: Vec<UrlParam<'_>> = Vec::new();
    match (precedence, form) {
        (Precedence::Form, Some(f)) => {
            parse_urlencoded(f, &mut params);
            parse_urlencoded(query, &mut params);
        }
        (Precedence::Query, Some(f)) => {
            parse_urlencoded(query, &mut params);
            parse_urlencoded(f, &mut params);
        }
        (_, None) => parse_urlencoded(query, &mut params),
    }
    canonical(&mut params);
    for (i, p) in params.iter().enumerate() {
        out.push(if i == 0 { b'?' } else { b'&' });
        out.extend_from_slice(&p.name);
        if let Some(v) = &p.value {
            out.push(b'=');
            out.extend_from_slice(v);
        }
    }
}

/// Case-insensitive ASCII prefix test.
pub fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// True when the content type announces a urlencoded form body.
pub fn is_form(content_type: Option<&[u8]>) -> bool {
    content_type.is_some_and(|ct| starts_with_ignore_case(trim(ct), b"application/x-www-form-urlencoded"))
}

/// True when the content type announces JSON: `application/json`, `text/json`, or a structured
/// `+json` type (`application/problem+json`, `application/vnd.api+json`), parameters ignored.
pub(crate) fn is_json(content_type: Option<&[u8]>) -> bool {
    let Some(ct) = content_type else { return false };
    let media = trim(ct.split(|&b| b == b';').next().unwrap_or_default());
    media.eq_ignore_ascii_case(b"application/json")
        || media.eq_ignore_ascii_case(b"text/json")
        || (starts_with_ignore_case(media, b"application/")
            && media.len() > 17
            && media.get(media.len() - 5..).is_some_and(|t| t.eq_ignore_ascii_case(b"+json")))
}

/// Trims ASCII white space at both ends.
pub fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    s.get(start..end).unwrap_or(&[])
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An `http://` or `https://` URL as an Envoy HTTP call needs it: its authority and its path (`/` when
/// absent). `Err` says what is wrong.
pub(crate) fn http_target(uri: &str) -> Result<(&str, &str), &'static str> {
    let rest = uri.strip_prefix("http://").or_else(|| uri.strip_prefix("https://")).ok_or("must be an http:// or https:// URL")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err("has no host");
    }
    Ok((authority, path))
}

/// A `Host` value a configuration may set: a host name or address, optionally with a port.
pub(crate) fn is_host(h: &str) -> bool {
    !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(ps: &[UrlParam<'_>]) -> Vec<String> {
        ps.iter()
            .map(|p| match &p.value {
                Some(v) => format!("{}={}", String::from_utf8_lossy(&p.name), String::from_utf8_lossy(v)),
                None => String::from_utf8_lossy(&p.name).into_owned(),
            })
            .collect()
    }

    #[test]
    fn json_media_types() {
        for ct in ["application/json", "Application/JSON; charset=utf-8", "text/json", "application/problem+json", "application/vnd.api+json;v=1"] {
            assert!(is_json(Some(ct.as_bytes())), "{ct}");
        }
        for ct in ["text/plain", "application/jsonx", "application/+json", "text/html+json", "application/x-www-form-urlencoded"] {
            assert!(!is_json(Some(ct.as_bytes())), "{ct}");
        }
        assert!(!is_json(None));
    }

    #[test]
    fn decodes_percent_and_plus() {
        assert_eq!(&*percent_decode(b"%E5%B0%8F+%E6%98%8E", true), "小 明".as_bytes());
        assert_eq!(&*percent_decode(b"a+b", false), b"a+b");
        assert_eq!(&*percent_decode(b"100%", true), b"100%");
        assert_eq!(&*percent_decode(b"%zz%4", true), b"%zz%4");
        assert!(matches!(percent_decode(b"plain", true), Cow::Borrowed(_)));
    }

    #[test]
    fn parses_sorts_and_keeps_first_value() {
        let mut ps = Vec::new();
        parse_urlencoded(b"b=2&a=1&empty=&bare&&expr=1%2B1%3D2&a=9", &mut ps);
        parse_urlencoded(b"a=body&c=3", &mut ps);
        canonical(&mut ps);
        assert_eq!(names(&ps), ["a=1", "b=2", "bare", "c=3", "empty", "expr=1+1=2"]);
    }

    #[test]
    fn a_name_in_the_form_signs_the_form_s_value() {
        let mut out = Vec::new();
        append_signed_parameters(b"item=pen&q=1&tag=x&tag=y", Some(b"item=book&item=cup"), Precedence::Form, &mut out);
        assert_eq!(out, b"?item=book&q=1&tag=x");
        out.clear();
        append_signed_parameters(b"item=pen&q=1", Some(b"item=book"), Precedence::Query, &mut out);
        assert_eq!(out, b"?item=pen&q=1");
    }

    #[test]
    fn sorts_upper_case_first() {
        let mut ps = Vec::new();
        parse_urlencoded(b"b=1&B=2&_=3", &mut ps);
        canonical(&mut ps);
        assert_eq!(names(&ps), ["B=2", "_=3", "b=1"]);
    }

    #[test]
    fn form_detection_and_split() {
        assert!(is_form(Some(b"Application/X-WWW-Form-Urlencoded; charset=UTF-8")));
        assert!(!is_form(Some(b"application/json")));
        assert!(!is_form(None));
        assert_eq!(split_path(b"/a?b=1?c"), (&b"/a"[..], &b"b=1?c"[..]));
        assert_eq!(split_path(b"/a"), (&b"/a"[..], &b""[..]));
        assert_eq!(trim(b"  x y\n"), b"x y");
        assert_eq!(trim(b"   "), b"");
    }
}
