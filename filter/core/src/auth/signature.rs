//! Aliyun's digest signature, as Alibaba's SDKs compute it: the server-side StringToSign and its HMAC check.

use crate::wire::headers::Headers;
use crate::wire::url::{append_signed_parameters, is_form, percent_decode, split_path, trim, Precedence};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use cagate_digest::{HmacSha1, HmacSha256, Mac};
use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    HmacSha256,
    HmacSha1,
}

impl Algorithm {
    /// From `X-Ca-Signature-Method`; absent means HmacSHA256. Any other value is refused.
    pub fn from_header(v: Option<&[u8]>) -> Option<Algorithm> {
        match v.map(trim) {
            None | Some(b"HmacSHA256") => Some(Algorithm::HmacSha256),
            Some(b"HmacSHA1") => Some(Algorithm::HmacSha1),
            Some(_) => None,
        }
    }
}

/// Headers that never enter the header block, even when listed.
const NEVER_SIGNED: [&[u8]; 6] = [b"x-ca-signature", b"x-ca-signature-headers", b"accept", b"content-md5", b"content-type", b"date"];

/// The request pieces the signature covers.
pub struct Signed<'a> {
    pub method: &'a [u8],
    /// `:path` as received, with its query.
    pub path: &'a [u8],
    pub headers: &'a Headers<'a>,
    /// The body, when it is a urlencoded form whose parameters are signed.
    pub form: Option<&'a [u8]>,
}

/// The StringToSign in three parts: what precedes the path, the path, and the `?params` tail.
/// Verification MACs the prefix once and tries the decoded and the raw path against it.
pub struct StringToSign<'a> {
    pub prefix: Vec<u8>,
    pub decoded_path: Cow<'a, [u8]>,
    pub raw_path: &'a [u8],
    pub tail: Vec<u8>,
}

impl<'a> StringToSign<'a> {
    pub fn build(req: &Signed<'a>) -> Self {
        let (raw_path, query) = split_path(req.path);
        StringToSign::build_split(req, raw_path, percent_decode(raw_path, false), query)
    }

    /// `build` over `req.path` already split into its raw path and query, the path decoded (the
    /// gateway's request view does that once per request).
    pub(crate) fn build_split(req: &Signed<'a>, raw_path: &'a [u8], decoded_path: Cow<'a, [u8]>, query: &[u8]) -> Self {
        let h = req.headers;
        let mut prefix = Vec::with_capacity(256);
        prefix.extend_from_slice(req.method);
        for name in [&b"accept"[..], b"content-md5", b"content-type", b"date"] {
            prefix.push(b'\n');
            prefix.extend_from_slice(h.get(name).unwrap_or_default());
        }
        prefix.push(b'\n');

        // Header block: names exactly as listed, sorted byte-wise, each once.
        let mut listed: Vec<&[u8]> = Vec::new();
        if let Some(list) = h.get(b"x-ca-signature-headers") {
            for name in list.split(|&b| b == b',').map(trim) {
                if !name.is_empty() && !NEVER_SIGNED.iter().any(|n| name.eq_ignore_ascii_case(n)) {
                    listed.push(name);
                }
            }
        }
        listed.sort_unstable();
        listed.dedup();
        for name in listed {
            prefix.extend_from_slice(name);
            prefix.push(b':');
            prefix.extend_from_slice(listed_value(h, name));
            prefix.push(b'\n');
        }

        let mut tail = Vec::new();
        append_signed_parameters(query, req.form, Precedence::Form, &mut tail);
        StringToSign { prefix, decoded_path, raw_path, tail }
    }

    /// The canonical (decoded-path) StringToSign, as reported to the client.
    pub fn canonical(&self) -> Vec<u8> {
        [&self.prefix[..], &self.decoded_path, &self.tail].concat()
    }

    /// True when `signature` (Base64, surrounding white space ignored) is the HMAC of either path form.
    pub fn verify(&self, alg: Algorithm, sha256: &HmacSha256, sha1: &HmacSha1, signature: &[u8]) -> bool {
        // On the stack: no digest is longer than 64 bytes, and a longer value is no signature.
        let mut buf = [0u8; 64];
        let Ok(n) = STANDARD.decode_slice(trim(signature), &mut buf) else { return false };
        let given = buf.get(..n).unwrap_or_default();
        match alg {
            Algorithm::HmacSha256 => self.verify_with(sha256, given),
            Algorithm::HmacSha1 => self.verify_with(sha1, given),
        }
    }

    fn verify_with<M: Mac>(&self, keyed: &M, given: &[u8]) -> bool {
        let mut base = keyed.clone();
        base.update(&self.prefix);
        let matches = |path: &[u8]| {
            let mut m = base.clone();
            m.update(path);
            m.update(&self.tail);
            m.matches(given)
        };
        matches(&self.decoded_path) || (*self.decoded_path != *self.raw_path && matches(self.raw_path))
    }
}

/// A value the signature covers that the request gives again with another value: the signature
/// covers the first, a backend may read the last or all of them. (The same value twice is harmless,
/// and Alibaba's Python SDK sends query parameters again in a form body.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Repeated {
    /// A header (as the client listed it, or the fixed name) under any spelling a backend reads as
    /// the same name.
    Header(Vec<u8>),
    /// A query parameter.
    Query(Vec<u8>),
    /// A form parameter, or a query parameter given again in the form.
    Form(Vec<u8>),
}

/// The value a header listed in `X-Ca-Signature-Headers` signs with: under any spelling a backend
/// reads as the listed name (case, `_` for `-`). Envoy hands filters the Host header as `:authority`
/// (HTTP/1.1 and HTTP/2 alike), the value it forwards as Host, so a listed `host` signs with that.
fn listed_value<'a>(h: &Headers<'a>, name: &[u8]) -> &'a [u8] {
    if name.eq_ignore_ascii_case(b"host") {
        if let Some(authority) = h.get(b":authority") {
            return authority;
        }
    }
    h.spellings(name).next().unwrap_or_default()
}

/// The headers every signature covers, besides those `X-Ca-Signature-Headers` lists: the fixed lines
/// of the StringToSign and the ones authentication itself reads.
const ALWAYS_SIGNED: [&[u8]; 10] = [
    b"accept",
    b"content-md5",
    b"content-type",
    b"date",
    b"x-ca-key",
    b"x-ca-signature",
    b"x-ca-signature-headers",
    b"x-ca-signature-method",
    b"x-ca-timestamp",
    b"x-ca-nonce",
];

/// The first signed value the request gives again differently, if any; `query` is that of `req.path`.
/// A signed header given again with another value; a signed parameter given again with another
/// value, which `strict` refuses within the query or the form (Aliyun admits arrays there) and which
/// is refused always between the two (the form's value is signed, and a backend may read the query's).
pub(crate) fn repeated(req: &Signed<'_>, query: &[u8], strict: bool) -> Option<Repeated> {
    repeated_header(req.headers).or_else(|| repeated_parameter(query, req.form, strict))
}

fn repeated_header(h: &Headers<'_>) -> Option<Repeated> {
    // Most requests give no header name twice (in any spelling): one pass settles it.
    if !h.any_name_twice() {
        return None;
    }
    let differs = |name: &[u8]| {
        let mut values = h.spellings(name).map(trim);
        let first = values.next();
        values.any(|v| Some(v) != first)
    };
    if let Some(name) = ALWAYS_SIGNED.iter().find(|n| differs(n)) {
        return Some(Repeated::Header(name.to_vec()));
    }
    let list = h.get(b"x-ca-signature-headers")?;
    list.split(|&b| b == b',').map(trim).find(|n| !n.is_empty() && differs(n)).map(|name| Repeated::Header(name.to_vec()))
}

/// Whether the names of a urlencoded string may hold a repeat: some name is given twice as sent, or a
/// name is encoded (and two spellings could decode alike).
fn may_repeat(src: &[u8]) -> bool {
    let names = || src.split(|&b| b == b'&').filter(|p| !p.is_empty()).map(|p| p.split(|&b| b == b'=').next().unwrap_or(p));
    names().any(|n| n.contains(&b'%') || n.contains(&b'+')) || names().enumerate().any(|(i, n)| names().skip(i + 1).any(|m| m == n))
}

fn repeated_parameter(query: &[u8], form: Option<&[u8]>, strict: bool) -> Option<Repeated> {
    if form.is_none() && (!strict || !may_repeat(query)) {
        return None;
    }
    let mut params = Vec::new();
    crate::wire::url::parse_urlencoded(query, &mut params);
    let in_query = params.len();
    if let Some(form) = form {
        crate::wire::url::parse_urlencoded(form, &mut params);
    }
    let mut order: Vec<usize> = (0..params.len()).collect();
    // Stable: of equal names, the query's come first, in the order given.
    order.sort_by(|&a, &b| params.get(a).map(|p| &p.name).cmp(&params.get(b).map(|p| &p.name)));
    // Per name: its first entry (the query's when it has one), and whether the form's first was seen.
    let (mut first, mut form_seen, mut found) = (None::<usize>, false, None);
    for &i in &order {
        let in_form = i >= in_query;
        let (Some(p), Some(f)) = (params.get(i), first.and_then(|f| params.get(f))) else {
            (first, form_seen) = (Some(i), in_form);
            continue;
        };
        if p.name != f.name {
            (first, form_seen) = (Some(i), in_form);
            continue;
        }
        // The form's first value against the query's: the form's is signed, a backend may read the
        // query's. Repeats within the query or the form are arrays unless `strict`.
        let across = in_form && !form_seen && first.is_some_and(|f| f < in_query);
        form_seen |= in_form;
        if p.value == f.value || !(strict || across) {
            continue;
        }
        // Alibaba's Python SDK copies the query's text, still encoded, into the form it signs: the same
        // value, decoded once fewer times.
        if across && raw_first_value(query, &p.name) == p.value.as_deref() {
            continue;
        }
        found = Some((p.name.to_vec(), in_form));
        break;
    }
    found.map(|(name, from_form)| if from_form { Repeated::Form(name) } else { Repeated::Query(name) })
}

/// The first value of `name` in a urlencoded string, as sent (not decoded); `None` if absent or empty.
fn raw_first_value<'q>(src: &'q [u8], name: &[u8]) -> Option<&'q [u8]> {
    let value = src.split(|&b| b == b'&').filter(|p| !p.is_empty()).find_map(|piece| {
        let (n, v) = match piece.iter().position(|&b| b == b'=') {
            Some(eq) => (piece.get(..eq)?, piece.get(eq + 1..)?),
            None => (piece, &[][..]),
        };
        (&*crate::wire::url::percent_decode(n, true) == name).then_some(v)
    })?;
    (!value.is_empty()).then_some(value)
}

/// A signed parameter whose decoded name holds `=` or `&` (or, under `strict`, whose decoded value
/// holds `&`), with whether it is the form's. The StringToSign joins decoded names and values with
/// `=` and `&` unescaped, so such a parameter signs exactly as other parameters do: a captured
/// `?dryRun=true&to=bob` would verify as `?dryRun%3Dtrue&to=bob`, where a backend reads no `dryRun`.
/// No SDK sends such a name; values with `&` are common (a search for `a&b`), so only `strict` refuses them.
pub(crate) fn ambiguous_parameter(query: &[u8], form: Option<&[u8]>, strict: bool) -> Option<(Vec<u8>, bool)> {
    // Only an escape puts `=` or `&` inside a decoded name or value: read off the raw text, without
    // parsing (most requests have no such escape at all).
    let escapes = |s: &[u8], what: &[&[u8]]| s.windows(3).any(|w| w[0] == b'%' && what.iter().any(|e| w[1..].eq_ignore_ascii_case(e)));
    let find = |src: &[u8], from_form: bool| {
        src.split(|&b| b == b'&').find_map(|piece| {
            let (name, value) = match piece.iter().position(|&b| b == b'=') {
                Some(eq) => (piece.get(..eq)?, piece.get(eq + 1..)?),
                None => (piece, &[][..]),
            };
            let odd = escapes(name, &[b"3d", b"26"]) || (strict && escapes(value, &[b"26"]));
            odd.then(|| (crate::wire::url::percent_decode(name, true).into_owned(), from_form))
        })
    };
    find(query, false).or_else(|| form.and_then(|f| find(f, true)))
}

/// Base64 HMAC of a whole StringToSign (client side: the CLI and the tests' known answers).
pub fn sign(alg: Algorithm, secret: &[u8], string_to_sign: &[u8]) -> String {
    let raw = match alg {
        Algorithm::HmacSha256 => HmacSha256::new(secret).map(|mut m| {
            m.update(string_to_sign);
            m.finalize().to_vec()
        }),
        Algorithm::HmacSha1 => HmacSha1::new(secret).map(|mut m| {
            m.update(string_to_sign);
            m.finalize().to_vec()
        }),
    };
    STANDARD.encode(raw.unwrap_or_default())
}

/// `Content-MD5` check: Base64(MD5(body)) must equal the header (white space around it ignored).
pub(crate) fn content_md5_matches(header: &[u8], body: &[u8]) -> bool {
    STANDARD.encode(cagate_digest::md5(body)).as_bytes() == trim(header)
}

/// The form body to sign, if the content type says the body is a urlencoded form.
pub(crate) fn form_body<'a>(headers: &Headers<'_>, body: Option<&'a [u8]>) -> Option<&'a [u8]> {
    if is_form(headers.get(b"content-type")) {
        body
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::headers::Headers;
    use crate::wire::text::header_safe;

    fn headers<'a>(pairs: &[(&'a str, &'a str)]) -> Headers<'a> {
        Headers::from_pairs(pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())).collect())
    }

    fn sts(method: &str, path: &str, h: &Headers<'_>, body: Option<&[u8]>) -> String {
        let form = form_body(h, body);
        let s = StringToSign::build(&Signed { method: method.as_bytes(), path: path.as_bytes(), headers: h, form });
        String::from_utf8(s.canonical()).unwrap()
    }

    fn keyed(secret: &str) -> (HmacSha256, HmacSha1) {
        (HmacSha256::new(secret.as_bytes()).unwrap(), HmacSha1::new(secret.as_bytes()).unwrap())
    }

    #[test]
    fn worked_example_of_the_spec() {
        let h = headers(&[
            ("accept", "application/json; charset=utf-8"),
            ("content-type", "application/x-www-form-urlencoded; charset=utf-8"),
            ("date", "Tue, 14 Nov 2023 22:16:46 GMT"),
            ("x-ca-key", "test-app-key-1"),
            ("x-ca-nonce", "00000000-0000-4000-a000-000000000006"),
            ("x-ca-timestamp", "1700000206000"),
            ("x-ca-signature-method", "HmacSHA256"),
            ("x-ca-signature-headers", "x-ca-nonce,x-ca-timestamp,x-ca-key,x-ca-signature-method"),
        ]);
        let body = b"nick=%E5%B0%8F+%E6%98%8E&password=123456789&username=xiaoming";
        let expected = "POST\napplication/json; charset=utf-8\n\napplication/x-www-form-urlencoded; charset=utf-8\nTue, 14 Nov 2023 22:16:46 GMT\nx-ca-key:test-app-key-1\nx-ca-nonce:00000000-0000-4000-a000-000000000006\nx-ca-signature-method:HmacSHA256\nx-ca-timestamp:1700000206000\n/http2test/test?nick=小 明&param1=test&password=123456789&username=xiaoming";
        assert_eq!(sts("POST", "/http2test/test?param1=test", &h, Some(body)), expected);
        let secret = "test-app-secret-1-0123456789abcdef";
        assert_eq!(sign(Algorithm::HmacSha256, secret.as_bytes(), expected.as_bytes()), "2IyXawoHcwHjLAdh3mvkadikiXtQTKw1dkz26Evm0ns=");
        let s = StringToSign::build(&Signed { method: b"POST", path: b"/http2test/test?param1=test", headers: &h, form: Some(body) });
        let (a, b) = keyed(secret);
        assert!(s.verify(Algorithm::HmacSha256, &a, &b, b"2IyXawoHcwHjLAdh3mvkadikiXtQTKw1dkz26Evm0ns=\n"));
        assert!(!s.verify(Algorithm::HmacSha256, &a, &b, b"3IyXawoHcwHjLAdh3mvkadikiXtQTKw1dkz26Evm0ns="));
        assert!(!s.verify(Algorithm::HmacSha1, &a, &b, b"2IyXawoHcwHjLAdh3mvkadikiXtQTKw1dkz26Evm0ns="));
        assert!(!s.verify(Algorithm::HmacSha256, &a, &b, b"not base64!"));
    }

    #[test]
    fn higress_known_answers() {
        let h = headers(&[
            ("accept", "application/json"),
            ("content-type", "application/json"),
            ("x-ca-timestamp", "1646365291734"),
            ("x-ca-nonce", "787dd0c2-7bd8-41cd-9c19-62c05ea524a2"),
            ("x-ca-key", "appKey"),
            ("x-ca-signature-headers", "x-ca-key,x-ca-nonce,x-ca-timestamp"),
        ]);
        let s = sts("GET", "/Third/Tools/checkSign", &h, None);
        assert_eq!(sign(Algorithm::HmacSha256, b"appSecret", s.as_bytes()), "EdJSFAMOWyXZOpXhevZnjuS0ZafnwnCqaSk5hz+tXo8=");

        let h = headers(&[
            ("accept", "application/json"),
            ("content-type", "application/x-www-form-urlencoded"),
            ("x-ca-timestamp", "1646646682418"),
            ("x-ca-nonce", "ca5a6753-b76c-4fff-a9d9-e5bb643e8cdf"),
            ("x-ca-key", "appKey"),
            ("x-ca-signature-headers", "x-ca-key,x-ca-nonce,x-ca-timestamp"),
        ]);
        let s = sts("POST", "/Third/User/getNyAccessToken", &h, Some(b"nickname=nickname&room_id=6893&uuid=uuid&photo=photo"));
        assert_eq!(sign(Algorithm::HmacSha256, b"appSecret", s.as_bytes()), "gmf9xq0hc95Hmt+7G+OocS009ka3v1v0rvfshKzYc3w=");
    }

    #[test]
    fn header_block_rules() {
        // Listed names kept as listed, sorted byte-wise (upper case first), excluded names dropped,
        // absent headers signed empty, duplicates and blanks ignored.
        let h = headers(&[
            ("x-ca-key", "k"),
            ("x-ca-nonce", "n"),
            ("accept", "a"),
            ("x-ca-signature-headers", " X-Ca-Nonce , x-ca-key,,Accept,Content-Type,X-CA-SIGNATURE,x-absent,X-Ca-Nonce"),
        ]);
        assert_eq!(sts("GET", "/p", &h, None), "GET\na\n\n\n\nX-Ca-Nonce:n\nx-absent:\nx-ca-key:k\n/p");
        // No list: no block and no extra newline.
        let h = headers(&[("x-ca-key", "k")]);
        assert_eq!(sts("GET", "/p", &h, None), "GET\n\n\n\n\n/p");
    }

    #[test]
    fn parameters_rules() {
        let h = headers(&[("content-type", "application/json")]);
        // A JSON body is not form: its content does not sign.
        assert_eq!(sts("POST", "/p?b=2&a=1&a=3&e=&f", &h, Some(b"x=1")), "POST\n\n\napplication/json\n\n/p?a=1&b=2&e&f");
        let h = headers(&[("content-type", "APPLICATION/X-WWW-FORM-URLENCODED;charset=GBK")]);
        assert_eq!(
            sts("POST", "/p?a=q&expr=1%2B1%3D2", &h, Some(b"a=body&z=%E4%B8%AD")),
            "POST\n\n\nAPPLICATION/X-WWW-FORM-URLENCODED;charset=GBK\n\n/p?a=body&expr=1+1=2&z=中",
            "a name in both: the form's value, as the SDKs sign it"
        );
    }

    #[test]
    fn decoded_or_raw_path() {
        let h = headers(&[]);
        let path = "/api/%E7%94%A8%E6%88%B7?q=1";
        let s = StringToSign::build(&Signed { method: b"GET", path: path.as_bytes(), headers: &h, form: None });
        assert_eq!(String::from_utf8(s.canonical()).unwrap(), "GET\n\n\n\n\n/api/用户?q=1");
        let (a, b) = keyed("s");
        let java_python = sign(Algorithm::HmacSha256, b"s", "GET\n\n\n\n\n/api/用户?q=1".as_bytes());
        let node = sign(Algorithm::HmacSha256, b"s", b"GET\n\n\n\n\n/api/%E7%94%A8%E6%88%B7?q=1");
        let other = sign(Algorithm::HmacSha256, b"s", b"GET\n\n\n\n\n/api/x?q=1");
        assert!(s.verify(Algorithm::HmacSha256, &a, &b, java_python.as_bytes()));
        assert!(s.verify(Algorithm::HmacSha256, &a, &b, node.as_bytes()));
        assert!(!s.verify(Algorithm::HmacSha256, &a, &b, other.as_bytes()));
        let sha1 = sign(Algorithm::HmacSha1, b"s", "GET\n\n\n\n\n/api/用户?q=1".as_bytes());
        assert!(s.verify(Algorithm::HmacSha1, &a, &b, sha1.as_bytes()));
    }

    #[test]
    fn client_quirks_fail_verification() {
        let (a, b) = keyed("s");
        let h = headers(&[]);
        // Node signs a repeated parameter as tag=x,y; the gateway signs tag=x.
        let s = StringToSign::build(&Signed { method: b"GET", path: b"/p?tag=x&tag=y", headers: &h, form: None });
        assert!(!s.verify(Algorithm::HmacSha256, &a, &b, sign(Algorithm::HmacSha256, b"s", b"GET\n\n\n\n\n/p?tag=x,y").as_bytes()));
        assert!(s.verify(Algorithm::HmacSha256, &a, &b, sign(Algorithm::HmacSha256, b"s", b"GET\n\n\n\n\n/p?tag=x").as_bytes()));
        // Python signs a pre-encoded query as written.
        let s = StringToSign::build(&Signed { method: b"GET", path: b"/p?q=a%20b", headers: &h, form: None });
        assert!(!s.verify(Algorithm::HmacSha256, &a, &b, sign(Algorithm::HmacSha256, b"s", b"GET\n\n\n\n\n/p?q=a%20b").as_bytes()));
        // Java's corrupted non-ASCII header value: bytes, not UTF-8; it must not panic, and fails.
        let bin = Headers::from_pairs(vec![(&b"x-ca-signature-headers"[..], &b"x-name"[..]), (b"x-name", b"\xe4\xb8?\x80\xff")]);
        let s = StringToSign::build(&Signed { method: b"GET", path: b"/p", headers: &bin, form: None });
        assert_eq!(s.canonical(), b"GET\n\n\n\n\nx-name:\xe4\xb8?\x80\xff\n/p");
        assert!(!s.verify(Algorithm::HmacSha256, &a, &b, sign(Algorithm::HmacSha256, b"s", "GET\n\n\n\n\nx-name:中\n/p".as_bytes()).as_bytes()));
    }

    #[test]
    fn algorithm_header() {
        assert_eq!(Algorithm::from_header(None), Some(Algorithm::HmacSha256));
        assert_eq!(Algorithm::from_header(Some(b"HmacSHA1")), Some(Algorithm::HmacSha1));
        assert_eq!(Algorithm::from_header(Some(b"HmacMD5")), None);
        assert_eq!(Algorithm::from_header(Some(b"hmacsha256")), None);
    }

    #[test]
    fn md5_and_header_safety() {
        assert!(content_md5_matches(b"XUFAKrxLKna5cZ2REBfFkg==", b"hello"));
        assert!(!content_md5_matches(b"XUFAKrxLKna5cZ2REBfFkg==", b"hello!"));
        assert_eq!(header_safe("GET\n/a b?x=中%\x01".as_bytes()), "GET#/a b?x=%E4%B8%AD%25%01");
    }

    #[test]
    fn a_query_name_in_the_form_is_the_same_value_or_refused() {
        let form = |q: &str, f: &str, strict: bool| repeated_parameter(q.as_bytes(), Some(f.as_bytes()), strict);
        assert_eq!(form("q=1", "q=2", false), Some(Repeated::Form(b"q".to_vec())), "the form's value is signed, the query's read");
        assert_eq!(form("q=1", "x=0&q=1", false), None, "the same value: Python's SDK repeats the query in the form");
        // Python's SDK copies the query's text, still encoded, into the form: decoded once fewer times.
        assert_eq!(form("q=a%20b", "x=1&q=a%2520b", false), None);
        assert_eq!(form("q=a+b", "q=a%2Bb", false), None);
        assert_eq!(form("q=a%20b", "q=a%2520c", false), Some(Repeated::Form(b"q".to_vec())));
        // A repeat within the form is an array (refused only under strict), even when the query has the name.
        assert_eq!(form("a=1", "a=1&a=2", false), None);
        assert_eq!(form("a=1", "a=1&a=2", true), Some(Repeated::Form(b"a".to_vec())));
    }
}
