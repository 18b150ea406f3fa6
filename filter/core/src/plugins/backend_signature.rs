//! Aliyun's backendSignature plugin: every forwarded request signed for the backend, so the backend
//! can prove it came through the gateway (`X-Ca-Proxy-Signature`, `-Headers`, `-Secret-Key`).
//! StringToSign: `METHOD "\n" Content-MD5 "\n" Headers PathAndParameters`, where Headers are
//! `lowercase(name):value\n` for the signed headers sorted by name, and PathAndParameters is the
//! path, then the query and form parameters as in the client signature (first value, bare name for
//! an empty value).

use crate::auth::signature::{sign, Algorithm};
use crate::plugins::definition::{AliyunPlugin, Definition};
use crate::schema::validator::{join, Validator};
use crate::wire::url::{append_signed_parameters, Precedence};
use serde_json::Value;

pub(crate) const SIGNATURE: &str = "x-ca-proxy-signature";
pub(crate) const SIGNATURE_HEADERS: &str = "x-ca-proxy-signature-headers";
pub(crate) const SECRET_KEY: &str = "x-ca-proxy-signature-secret-key";
pub(crate) const SIGNATURE_METHOD: &str = "x-ca-proxy-signature-method";

/// The headers the gateway signs: both set by the gateway itself, so a client cannot influence them.
pub(crate) const SIGNED: [&str; 2] = [SECRET_KEY, crate::contract::names::REQUEST_ID_HEADER];

#[derive(Clone)]
pub struct BackendConfig {
    pub key: String,
    secret: String,
}

impl std::fmt::Debug for BackendConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendConfig").field("key", &self.key).finish_non_exhaustive()
    }
}

impl AliyunPlugin for BackendConfig {
    const TYPE: &'static str = "backendSignature";

    fn parse(c: &mut Validator, data: &Value, def: &Definition<'_>) -> Option<Self> {
        let path = def.path;
        let o = c.object(data, path, &["type", "key", "secret"])?;
        match c.string(o, path, "type", false) {
            None | Some("APIGW_BACKEND") => {}
            Some(other) => c.err(&join(path, "type"), format!("unsupported type {other}: APIGW_BACKEND")),
        }
        let key = c.string(o, path, "key", true)?.to_string();
        let secret = c.string(o, path, "secret", true)?.to_string();
        Some(BackendConfig { key, secret })
    }
}

/// The request as forwarded, as the backend signature covers it: the path decoded, the query as sent.
pub(crate) struct Target<'a> {
    pub(crate) decoded_path: &'a [u8],
    pub(crate) query: &'a [u8],
}

/// The StringToSign for the backend. `headers` are the values of `SIGNED`, in that order.
pub(crate) fn string_to_sign(
    method: &[u8],
    content_md5: Option<&[u8]>,
    target: &Target<'_>,
    form: Option<&[u8]>,
    headers: &[(&str, &[u8])],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(method);
    out.push(b'\n');
    out.extend_from_slice(content_md5.unwrap_or_default());
    out.push(b'\n');
    let mut sorted: Vec<&(&str, &[u8])> = headers.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    for (n, v) in sorted {
        out.extend_from_slice(n.to_ascii_lowercase().as_bytes());
        out.push(b':');
        out.extend_from_slice(v);
        out.push(b'\n');
    }
    out.extend_from_slice(target.decoded_path);
    append_signed_parameters(target.query, form, Precedence::Query, &mut out);
    out
}

/// The four headers to add to the forwarded request.
pub(crate) fn headers(
    cfg: &BackendConfig,
    method: &[u8],
    content_md5: Option<&[u8]>,
    target: &Target<'_>,
    form: Option<&[u8]>,
    request_id: &[u8],
) -> Vec<(String, Option<Vec<u8>>)> {
    let signed: [(&str, &[u8]); 2] = [(SECRET_KEY, cfg.key.as_bytes()), (crate::contract::names::REQUEST_ID_HEADER, request_id)];
    let sts = string_to_sign(method, content_md5, target, form, &signed);
    vec![
        (SIGNATURE.to_string(), Some(sign(Algorithm::HmacSha256, cfg.secret.as_bytes(), &sts).into_bytes())),
        (SIGNATURE_HEADERS.to_string(), Some(SIGNED.join(",").into_bytes())),
        (SECRET_KEY.to_string(), Some(cfg.key.as_bytes().to_vec())),
        (SIGNATURE_METHOD.to_string(), Some(b"HmacSHA256".to_vec())),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worked example derived from the rules of the Java backend demo (Sign.java): method, Content-MD5,
    /// lower-cased sorted headers, path with sorted first-value parameters.
    #[test]
    fn worked_example() {
        let target = Target { decoded_path: "/orders/中".as_bytes(), query: b"b=2&a=1&a=9&flag" };
        let sts = string_to_sign(
            b"POST",
            Some(b"XUFAKrxLKna5cZ2REBfFkg=="),
            &target,
            Some(b"c=3&a=body"),
            &[("X-Ca-Request-Id", b"7AD052CB-EE8B-4DFD-BBAF-EFB340E0A5AF"), ("X-Ca-Proxy-Signature-Secret-Key", b"backend-key-1")],
        );
        let expected = "POST\nXUFAKrxLKna5cZ2REBfFkg==\nx-ca-proxy-signature-secret-key:backend-key-1\nx-ca-request-id:7AD052CB-EE8B-4DFD-BBAF-EFB340E0A5AF\n/orders/中?a=1&b=2&c=3&flag";
        assert_eq!(String::from_utf8(sts.clone()).unwrap(), expected);
        assert_eq!(sign(Algorithm::HmacSha256, b"backend-secret-123456", &sts), "v3zaEiPw+yFt7DqfPig8T4Ijy0oXnbs76MrjJgUar8M=");
    }
}
