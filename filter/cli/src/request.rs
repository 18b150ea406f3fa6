//! `cagate sign` and `cagate string-to-sign`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use cagate_core::is_form;
use cagate_core::Headers;
use cagate_core::{header_safe, sign as hmac_sign, Algorithm, Signed, StringToSign};
use clap::Args;
use md5::{Digest, Md5};
use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Args)]
pub(crate) struct Common {
    /// HTTP method
    #[arg(short = 'X', long = "request", default_value = "GET")]
    method: String,
    /// A request header, 'Name: value' (repeatable)
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// The request body (a form body is signed field by field when Content-Type says so)
    #[arg(short = 'd', long = "data")]
    body: Option<String>,
    /// http://host[:port]/path[?query]
    url: String,
}

#[derive(Args)]
pub(crate) struct SignArgs {
    /// The AppKey
    #[arg(long, env = "CA_APP_KEY")]
    key: String,
    /// The AppSecret
    #[arg(long, env = "CA_APP_SECRET", hide_env_values = true)]
    secret: String,
    /// Sign with HmacSHA1 instead of HmacSHA256
    #[arg(long)]
    sha1: bool,
    /// Print a ready curl command
    #[arg(long, conflicts_with = "send")]
    curl: bool,
    /// Send the request and print the response status, headers and body
    #[arg(long)]
    send: bool,
    #[command(flatten)]
    req: Common,
}

#[derive(Args)]
pub(crate) struct StsArgs {
    /// What the server said, to compare with: its X-Ca-Error-Message (value or whole header line), its
    /// JSON error body, an SDK's log line holding either, or just the StringToSign in the `#` form
    #[arg(long)]
    server: Option<String>,
    #[command(flatten)]
    req: Common,
}

struct Url {
    host: String,
    port: u16,
    target: String,
}

fn parse_url(url: &str) -> Result<Url, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        if url.starts_with("https://") {
            "https is not supported by --send here; use --curl".to_string()
        } else {
            format!("not an http:// URL: {url}")
        }
    })?;
    let (authority, target) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, p.parse().map_err(|_| format!("bad port in {url}"))?),
        _ => (authority, 80),
    };
    Ok(Url { host: host.to_string(), port, target: target.to_string() })
}

fn parse_headers(list: &[String]) -> Result<Vec<(String, String)>, String> {
    list.iter()
        .map(|h| {
            let (n, v) = h.split_once(':').ok_or_else(|| format!("a header is 'Name: value', not {h:?}"))?;
            Ok((n.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

fn uuid() -> String {
    let mut b = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    for (i, x) in nanos.to_le_bytes().iter().enumerate() {
        b[i] ^= x;
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// The StringToSign of a request as the gateway computes it (the core's own code).
fn compute(method: &str, target: &str, headers: &[(String, String)], body: Option<&str>) -> Vec<u8> {
    let lower: Vec<(Vec<u8>, Vec<u8>)> = headers.iter().map(|(n, v)| (n.to_ascii_lowercase().into_bytes(), v.clone().into_bytes())).collect();
    let h = Headers::from_pairs(lower.iter().map(|(n, v)| (n.as_slice(), v.as_slice())).collect());
    let form = body.filter(|_| is_form(h.get(b"content-type"))).map(str::as_bytes);
    StringToSign::build(&Signed { method: method.as_bytes(), path: target.as_bytes(), headers: &h, form }).canonical()
}

fn set(headers: &mut Vec<(String, String)>, name: &str, value: String) {
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
        headers.push((name.to_string(), value));
    }
}

pub(crate) fn sign(a: SignArgs) -> Result<ExitCode, String> {
    let url = parse_url(&a.req.url).or_else(|e| if a.send { Err(e) } else { raw_url(&a.req.url) })?;
    let mut headers = parse_headers(&a.req.headers)?;
    let alg = if a.sha1 { Algorithm::HmacSha1 } else { Algorithm::HmacSha256 };
    // curl would add its own Accept (and a form Content-Type for a body): name them, so that what is
    // signed is what is sent whichever way the request leaves.
    set(&mut headers, "Accept", "*/*".to_string());
    if a.req.body.is_some() {
        set(&mut headers, "Content-Type", "application/octet-stream".to_string());
    }
    set(&mut headers, "x-ca-key", a.key.clone());
    set(&mut headers, "x-ca-timestamp", SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis()).to_string());
    set(&mut headers, "x-ca-nonce", uuid());
    set(&mut headers, "x-ca-signature-method", if a.sha1 { "HmacSHA1" } else { "HmacSHA256" }.to_string());
    let ct = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-type")).map(|(_, v)| v.clone());
    if let Some(body) = &a.req.body {
        if !is_form(ct.as_deref().map(str::as_bytes)) && !body.is_empty() {
            set(&mut headers, "content-md5", STANDARD.encode(Md5::digest(body.as_bytes())));
        }
    }
    // The X-Ca-* headers, and any other the caller asked to sign with its own X-Ca-Signature-Headers.
    let asked: Vec<String> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("x-ca-signature-headers"))
        .flat_map(|(_, v)| v.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect::<Vec<_>>())
        .collect();
    let mut signed: Vec<String> = headers
        .iter()
        .map(|(n, _)| n.clone())
        .filter(|n| {
            let l = n.to_ascii_lowercase();
            l.starts_with("x-ca-") && l != "x-ca-signature" && l != "x-ca-signature-headers"
        })
        .collect();
    for name in asked {
        if !signed.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
            signed.push(name);
        }
    }
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case("x-ca-signature-headers") && !n.eq_ignore_ascii_case("x-ca-signature"));
    headers.push(("x-ca-signature-headers".to_string(), signed.join(",")));
    let sts = compute(&a.req.method, &url.target, &headers, a.req.body.as_deref());
    headers.push(("x-ca-signature".to_string(), hmac_sign(alg, a.secret.as_bytes(), &sts)));

    if a.send {
        return send(&a.req.method, &url, &headers, a.req.body.as_deref());
    }
    if a.curl {
        let q = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
        let mut cmd = format!("curl -i -X {}", a.req.method);
        for (n, v) in &headers {
            cmd.push_str(&format!(" -H {}", q(&format!("{n}: {v}"))));
        }
        if let Some(b) = &a.req.body {
            cmd.push_str(&format!(" --data-binary {}", q(b)));
        }
        cmd.push_str(&format!(" {}", q(&a.req.url)));
        println!("{cmd}");
    } else {
        for (n, v) in &headers {
            println!("{n}: {v}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// For printing only: any scheme, path from the first single '/' after the authority.
fn raw_url(url: &str) -> Result<Url, String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let target = rest.find('/').map_or("/", |i| &rest[i..]);
    Ok(Url { host: String::new(), port: 0, target: target.to_string() })
}

fn send(method: &str, url: &Url, headers: &[(String, String)], body: Option<&str>) -> Result<ExitCode, String> {
    let mut stream = std::net::TcpStream::connect((url.host.as_str(), url.port)).map_err(|e| format!("connect {}:{}: {e}", url.host, url.port))?;
    let mut req = format!("{method} {} HTTP/1.1\r\nConnection: close\r\n", url.target);
    // The caller's Host (which it may have signed), else the URL's.
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {}:{}\r\n", url.host, url.port));
    }
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).map_err(|e| format!("send: {e}"))?;
    let mut resp = Vec::new();
    stream.read_to_end(&mut resp).map_err(|e| format!("receive: {e}"))?;
    let text = String::from_utf8_lossy(&resp);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    println!("{}", lines.next().unwrap_or(""));
    for l in lines {
        println!("{l}");
    }
    println!();
    println!("{body}");
    let ok = head.split(' ').nth(1).and_then(|s| s.parse::<u16>().ok()).is_some_and(|s| s < 400);
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub(crate) fn string_to_sign(a: StsArgs) -> Result<ExitCode, String> {
    let url = raw_url(&a.req.url)?;
    let headers = parse_headers(&a.req.headers)?;
    let sts = compute(&a.req.method, &url.target, &headers, a.req.body.as_deref());
    let text = String::from_utf8_lossy(&sts);
    println!("StringToSign ({} lines):", text.lines().count());
    for line in text.split('\n') {
        println!("  {line}");
    }
    let ours = header_safe(&sts);
    println!("\nAs in X-Ca-Error-Message:\n  {ours}");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("x-ca-signature-headers")) {
        eprintln!(
            "warning: the request has no X-Ca-Signature-Headers, so no X-Ca-* header is signed (the SDK did not sign them);\n         \
             the gateway then signs only the method, the standard headers and the path, and an X-Ca-Key or X-Ca-Timestamp changed in transit goes unnoticed"
        );
    }
    let Some(server) = a.server else { return Ok(ExitCode::SUCCESS) };
    let theirs = server_string_to_sign(&server);
    match first_difference(&ours, &theirs) {
        None => {
            println!("\nThe server's StringToSign is the same: check the AppKey and AppSecret (stray spaces?).");
            Ok(ExitCode::SUCCESS)
        }
        Some(at) => {
            let line = ours[..at.min(ours.len())].matches('#').count() + 1;
            println!("\nFirst difference at character {at} (line {line}):");
            println!("  yours:  {}", excerpt(&ours, at));
            println!("  server: {}", excerpt(&theirs, at));
            Ok(ExitCode::from(1))
        }
    }
}

/// The server's StringToSign in the `#` form, from what a client has: the `X-Ca-Error-Message`
/// value (or the whole header line), the gateway's JSON error body (`message`), a line of an SDK's
/// log holding either, or the `#` form itself.
pub(crate) fn server_string_to_sign(given: &str) -> String {
    let given = given.trim();
    let from_json = serde_json::from_str::<serde_json::Value>(given).ok().and_then(|v| {
        ["message", "Message", "errorMessage", "ErrorMessage"].iter().find_map(|k| v.get(k).and_then(|m| m.as_str()).map(str::to_string))
    });
    let text = from_json.as_deref().unwrap_or(given);
    let Some((_, rest)) = text.split_once("StringToSign:") else { return text.to_string() };
    let rest = rest.trim_start();
    match rest.strip_prefix('`') {
        Some(quoted) => quoted.split('`').next().unwrap_or_default().to_string(),
        None => rest.split(|c: char| c.is_whitespace() || c == '"' || c == '\'').next().unwrap_or_default().to_string(),
    }
}

/// Byte offset of the first difference, `None` if equal.
pub(crate) fn first_difference(a: &str, b: &str) -> Option<usize> {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => Some(i),
        None if a.len() == b.len() => None,
        None => Some(a.len().min(b.len())),
    }
}

fn excerpt(s: &str, at: usize) -> String {
    let b = s.as_bytes();
    let start = at.saturating_sub(20);
    let end = (at + 20).min(b.len());
    let before = String::from_utf8_lossy(b.get(start..at.min(b.len())).unwrap_or_default());
    let after = String::from_utf8_lossy(b.get(at.min(b.len())..end).unwrap_or_default());
    format!("{}{before}>>>{after}{}", if start > 0 { "…" } else { "" }, if end < b.len() { "…" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difference() {
        assert_eq!(first_difference("GET#a", "GET#a"), None);
        assert_eq!(first_difference("GET#a", "GET#b"), Some(4));
        assert_eq!(first_difference("GET#", "GET#x"), Some(4));
    }

    #[test]
    fn the_server_string_to_sign_in_its_many_wrappings() {
        let sts = "GET#####x-ca-key:k#/orders/8";
        for given in [
            "Invalid Signature, Server StringToSign:`GET#####x-ca-key:k#/orders/8`",
            "X-Ca-Error-Message: Invalid Signature, Server StringToSign:`GET#####x-ca-key:k#/orders/8`",
            r#"{"code":"A403IS","message":"Invalid Signature, Server StringToSign:`GET#####x-ca-key:k#/orders/8`","requestId":"x"}"#,
            "('X-Ca-Error-Message', 'Invalid Signature, Server StringToSign:`GET#####x-ca-key:k#/orders/8`')",
            "GET#####x-ca-key:k#/orders/8",
        ] {
            assert_eq!(server_string_to_sign(given), sts, "{given}");
        }
    }

    #[test]
    fn urls() {
        let u = parse_url("http://127.0.0.1:10000/orders/7?x=1").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.target.as_str()), ("127.0.0.1", 10000, "/orders/7?x=1"));
        let u = parse_url("http://example.com").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.target.as_str()), ("example.com", 80, "/"));
        assert!(parse_url("https://x/").is_err());
    }

    #[test]
    fn worked_example_of_the_spec() {
        let headers: Vec<(String, String)> = [
            ("accept", "application/json; charset=utf-8"),
            ("content-type", "application/x-www-form-urlencoded; charset=utf-8"),
            ("date", "Tue, 14 Nov 2023 22:16:46 GMT"),
            ("x-ca-key", "test-app-key-1"),
            ("x-ca-nonce", "00000000-0000-4000-a000-000000000006"),
            ("x-ca-timestamp", "1700000206000"),
            ("x-ca-signature-method", "HmacSHA256"),
            ("x-ca-signature-headers", "x-ca-nonce,x-ca-timestamp,x-ca-key,x-ca-signature-method"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let sts = compute("POST", "/http2test/test?param1=test", &headers, Some("nick=%E5%B0%8F+%E6%98%8E&password=123456789&username=xiaoming"));
        assert_eq!(hmac_sign(Algorithm::HmacSha256, b"test-app-secret-1-0123456789abcdef", &sts), "2IyXawoHcwHjLAdh3mvkadikiXtQTKw1dkz26Evm0ns=");
    }
}
