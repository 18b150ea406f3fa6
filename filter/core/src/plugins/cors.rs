//! Aliyun's cors plugin: preflight answered by the gateway (before authentication), CORS headers on
//! actual responses, refusals included, so that a browser can read `X-Ca-Error-Code`.

use crate::plugins::definition::{AliyunPlugin, Definition};
use crate::schema::validator::{join, Validator};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct CorsConfig {
    /// Exact origins, hosts (an entry without a scheme, as Aliyun's template writes them), `*.domain`
    /// suffixes (stored as `.domain`), or any (`*`).
    pub any_origin: bool,
    pub origins: Vec<String>,
    pub hosts: Vec<String>,
    pub suffixes: Vec<String>,
    pub allow_methods: String,
    pub allow_headers: String,
    pub expose_headers: String,
    pub allow_credentials: bool,
    pub max_age: u64,
}

const FIELDS: &[&str] = &["allowOrigins", "allowMethods", "allowHeaders", "exposeHeaders", "allowCredentials", "maxAge"];
pub(crate) const DEFAULT_EXPOSE: &str = "X-Ca-Request-Id,X-Ca-Error-Code,X-Ca-Error-Message";

fn list(c: &mut Validator, o: &serde_json::Map<String, Value>, path: &str, key: &str, default: &str) -> String {
    let v = c.string(o, path, key, false).unwrap_or(default);
    if !c.header_value(&join(path, key), v) {
        return String::new();
    }
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(",")
}

impl AliyunPlugin for CorsConfig {
    const TYPE: &'static str = "cors";

    fn parse(c: &mut Validator, data: &Value, def: &Definition<'_>) -> Option<Self> {
        let path = def.path;
        let o = c.object(data, path, FIELDS)?;
        let origins_text = list(c, o, path, "allowOrigins", "*");
        let mut cfg = CorsConfig {
            any_origin: false,
            origins: Vec::new(),
            hosts: Vec::new(),
            suffixes: Vec::new(),
            allow_methods: list(c, o, path, "allowMethods", "GET,POST,PUT,DELETE,HEAD,OPTIONS,PATCH"),
            allow_headers: list(c, o, path, "allowHeaders", "*"),
            expose_headers: list(c, o, path, "exposeHeaders", DEFAULT_EXPOSE),
            allow_credentials: c.boolean(o, path, "allowCredentials", false),
            max_age: c.integer(o, path, "maxAge", 172_800, 0, 31_536_000),
        };
        for origin in origins_text.split(',') {
            if origin == "*" {
                cfg.any_origin = true;
            } else if let Some(domain) = origin.strip_prefix("*.") {
                cfg.suffixes.push(format!(".{}", domain.to_ascii_lowercase()));
            } else if origin.contains('*') {
                c.err(&join(path, "allowOrigins"), format!("{origin}: a wildcard only as `*` or a leading `*.`"));
            } else if origin.contains("://") {
                cfg.origins.push(origin.trim_end_matches('/').to_ascii_lowercase());
            } else {
                cfg.hosts.push(origin.trim_end_matches('/').to_ascii_lowercase());
            }
        }
        if cfg.allow_credentials && !cfg.hosts.is_empty() {
            let first = cfg.hosts.first().map(String::as_str).unwrap_or_default();
            c.warn(
                &join(path, "allowOrigins"),
                format!("{first} (no scheme) lets http:// pages read credentialed answers too: write https://{first} to allow only HTTPS"),
            );
        }
        Some(cfg)
    }
}

pub(crate) const VARY: &str = "vary";

/// Whether a backend's `Vary` values already cover the origin (`Origin`, or `*`: everything).
pub(crate) fn varies_on_origin<'v>(values: impl Iterator<Item = &'v [u8]>) -> bool {
    values.flat_map(|v| v.split(|&b| b == b',')).map(crate::wire::url::trim).any(|f| f.eq_ignore_ascii_case(b"origin") || f == b"*")
}

impl CorsConfig {
    /// Whether a browser origin (`https://a.example.com`) may call.
    pub fn allows(&self, origin: &[u8]) -> bool {
        let Ok(origin) = std::str::from_utf8(origin) else { return false };
        let origin = origin.trim().to_ascii_lowercase();
        if self.any_origin {
            return true;
        }
        if self.origins.contains(&origin) {
            return true;
        }
        // A host entry matches whatever the scheme, and whatever the port unless it names one;
        // `*.example.org` any sub-domain of example.org, whatever the scheme and port.
        let authority = origin.split_once("://").map_or(origin.as_str(), |(_, h)| h);
        let host = authority.rsplit_once(':').filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit())).map_or(authority, |(h, _)| h);
        self.hosts.iter().any(|h| h == host || h == authority) || self.suffixes.iter().any(|s| host.ends_with(s.as_str()) && host.len() > s.len())
    }

    fn origin_headers(&self, origin: &[u8], out: &mut Vec<(&'static str, String)>) {
        if self.any_origin && !self.allow_credentials {
            out.push(("access-control-allow-origin", "*".to_string()));
        } else {
            // never `*` together with credentials: echo the origin, and caches must key on it
            out.push(("access-control-allow-origin", String::from_utf8_lossy(origin).into_owned()));
            out.push((VARY, "Origin".to_string()));
        }
        if self.allow_credentials {
            out.push(("access-control-allow-credentials", "true".to_string()));
        }
    }

    /// Headers for an actual (non-preflight) response to an allowed origin.
    pub fn response_headers(&self, origin: &[u8]) -> Vec<(&'static str, String)> {
        let mut out = Vec::with_capacity(4);
        self.origin_headers(origin, &mut out);
        if !self.expose_headers.is_empty() {
            out.push(("access-control-expose-headers", self.expose_headers.clone()));
        }
        out
    }

    /// Headers of the preflight answer. `requested_headers` is Access-Control-Request-Headers.
    pub fn preflight_headers(&self, origin: &[u8], requested_headers: Option<&[u8]>) -> Vec<(&'static str, String)> {
        let mut out = Vec::with_capacity(6);
        self.origin_headers(origin, &mut out);
        out.push(("access-control-allow-methods", self.allow_methods.clone()));
        let allow_headers = if self.allow_headers == "*" {
            // `*` is not a wildcard with credentials: reflect what the browser asked for
            requested_headers.map(|h| String::from_utf8_lossy(h).into_owned()).unwrap_or_default()
        } else {
            self.allow_headers.clone()
        };
        if !allow_headers.is_empty() {
            out.push(("access-control-allow-headers", allow_headers));
        }
        out.push(("access-control-max-age", self.max_age.to_string()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(origins: &str, creds: bool) -> CorsConfig {
        let mut c = Validator::default();
        let v = serde_json::json!({ "allowOrigins": origins, "allowCredentials": creds });
        let out = CorsConfig::parse(&mut c, &v, &Definition { name: "t", path: "cors", app_ids: &[] }).unwrap();
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        out
    }

    #[test]
    fn origin_matching() {
        let c = cfg("https://a.example.com, *.example.org", true);
        assert!(c.allows(b"https://a.example.com"));
        assert!(c.allows(b"HTTPS://A.EXAMPLE.COM"));
        assert!(!c.allows(b"http://a.example.com"), "scheme matters for an exact origin");
        assert!(c.allows(b"https://x.example.org"));
        assert!(c.allows(b"http://deep.x.example.org:8443"));
        assert!(!c.allows(b"https://example.org"), "the bare domain is not a sub-domain");
        assert!(!c.allows(b"https://evilexample.org"));
        assert!(!c.allows(b"https://x.example.org.evil.com"));
        assert!(!c.allows(b"\xff"));
        assert!(cfg("*", false).allows(b"https://anything"));
    }

    #[test]
    fn a_host_entry_with_credentials_is_warned_about() {
        let mut c = Validator::default();
        let v = serde_json::json!({ "allowOrigins": "api.foo.com", "allowCredentials": true });
        CorsConfig::parse(&mut c, &v, &Definition { name: "t", path: "cors", app_ids: &[] });
        assert!(c.warnings.iter().any(|w| w.contains("write https://api.foo.com to allow only HTTPS")), "{:?}", c.warnings);
        let mut c = Validator::default();
        let v = serde_json::json!({ "allowOrigins": "https://api.foo.com", "allowCredentials": true });
        CorsConfig::parse(&mut c, &v, &Definition { name: "t", path: "cors", app_ids: &[] });
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn host_entries_as_aliyun_s_template_writes_them() {
        let c = cfg("api.foo.com,api2.foo.com:8443,*.bar.com", false);
        assert!(c.allows(b"https://api.foo.com"));
        assert!(c.allows(b"http://api.foo.com:8080"), "no port named: any port");
        assert!(c.allows(b"https://api2.foo.com:8443"));
        assert!(!c.allows(b"https://api2.foo.com"), "a port named must be the origin's");
        assert!(!c.allows(b"https://x.api.foo.com"), "a host entry is not a suffix");
        assert!(!c.allows(b"https://evilapi.foo.com"));
        assert!(c.allows(b"https://a.bar.com"));
    }

    #[test]
    fn never_star_with_credentials() {
        let h = cfg("*", true).response_headers(b"https://a.b");
        assert!(h.contains(&("access-control-allow-origin", "https://a.b".to_string())));
        assert!(h.contains(&("vary", "Origin".to_string())));
        assert!(h.contains(&("access-control-allow-credentials", "true".to_string())));
        let h = cfg("*", false).response_headers(b"https://a.b");
        assert!(h.contains(&("access-control-allow-origin", "*".to_string())));
        assert!(h.contains(&("access-control-expose-headers", DEFAULT_EXPOSE.to_string())));
        let p = cfg("*", true).preflight_headers(b"https://a.b", Some(b"x-ca-key,content-type"));
        assert!(p.contains(&("access-control-allow-headers", "x-ca-key,content-type".to_string())));
        assert!(p.contains(&("access-control-max-age", "172800".to_string())));
    }

    #[test]
    fn a_backend_s_vary_may_already_cover_the_origin() {
        let covers = |values: &[&[u8]]| varies_on_origin(values.iter().copied());
        assert!(!covers(&[]));
        assert!(!covers(&[b"Accept-Encoding", b"Cookie"]));
        assert!(covers(&[b"accept-encoding, ORIGIN"]));
        assert!(covers(&[b"Cookie", b" Origin "]));
        assert!(covers(&[b"*"]));
        assert!(!covers(&[b"X-L\xe9, Originals"]));
    }

    #[test]
    fn bad_wildcard() {
        let mut c = Validator::default();
        CorsConfig::parse(&mut c, &serde_json::json!({ "allowOrigins": "https://*.x.com" }), &Definition { name: "t", path: "cors", app_ids: &[] });
        assert!(c.problems[0].message.contains("a wildcard only as"));
    }
}
