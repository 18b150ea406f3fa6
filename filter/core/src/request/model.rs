//! What the request decision works on and produces: the request view, the routed API, the caller's
//! identity, the admission (the backend's header edits), and what the request phase knows beyond the
//! request.

use crate::auth::replay::OneTime;
use crate::cluster::rls::RateLimitCall;
use crate::host::{Clock, Stream};
use crate::ids::{ApiId, AppId, PluginId, StageId};
use crate::wire::headers::Headers;
use crate::wire::url::{percent_decode, split_path};
use std::borrow::Cow;

/// The request as the core sees it: `:path` split and its path percent-decoded once, here.
pub(crate) struct Request<'a> {
    pub method: &'a [u8],
    /// `:path`, with the query.
    pub path: &'a [u8],
    pub headers: &'a Headers<'a>,
    /// The path of `:path` as sent (before any `?`).
    pub raw_path: &'a [u8],
    /// That path percent-decoded (`+` kept): what routing, the signature, `Path` and path
    /// parameters see.
    pub decoded_path: Cow<'a, [u8]>,
    /// The query of `:path` as sent (after the first `?`, empty without one).
    pub query: &'a [u8],
}

impl<'a> Request<'a> {
    /// The request view of a method, a `:path` and the header map.
    pub(crate) fn new(method: &'a [u8], path: &'a [u8], headers: &'a Headers<'a>) -> Request<'a> {
        let (raw_path, query) = split_path(path);
        Request { method, path, headers, raw_path, decoded_path: percent_decode(raw_path, false), query }
    }
}

/// The API a request is for, and whether its body must be read before deciding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Routed {
    pub api: ApiId,
    pub stage: StageId,
    pub needs_body: bool,
    /// The cors plugin of the API, when the request comes from an allowed browser origin.
    pub cors: Option<PluginId>,
    /// A CORS preflight the gateway answers itself.
    pub preflight: bool,
}

/// Who is calling, once authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    pub api: ApiId,
    pub stage: StageId,
    pub app: Option<AppId>,
    /// The nonce admitted here, to be claimed across Envoys (cluster mode only).
    pub nonce: Option<OneTime>,
}

pub(crate) use crate::wire::headers::Edits;

/// What the backend receives beyond the request itself: header edits (`None` removes), and the
/// verified JWT claims for later plugins.
#[derive(Debug, Clone)]
pub(crate) struct Admission {
    pub identity: Identity,
    pub claims: Option<crate::plugins::jwt::Claims>,
    pub edits: Edits,
    /// trafficControl: the plugin, the dimensions counted (for stats) and, when the plugin asks for
    /// `RateLimit-*` headers, the tightest quota.
    pub traffic: Option<(PluginId, Vec<crate::plugins::traffic_control::Dim>, Option<crate::plugins::traffic_control::Quota>)>,
    /// circuitBreaker: the plugin, its state key, and how this request passed (the response reports).
    pub breaker: Option<(PluginId, String, crate::plugins::circuit_breaker::Pass)>,
    /// Cluster mode: the rate-limit call to make, and the one-time keys to claim, before admitting.
    pub rate_limit: Option<RateLimitCall>,
    pub one_time: Vec<OneTime>,
}

/// What the request phase knows beyond the request: its id, its body (if read), the peer address.
pub(crate) struct Ctx<'a> {
    pub request_id: &'a str,
    pub body: Option<&'a [u8]>,
    /// What the host knows of the stream (the peer address).
    pub stream: &'a dyn Stream,
    /// A clock that may lag by a fraction of a second, for checks with tolerances of seconds
    /// (JWT `exp`/`nbf`); rate limits and the breaker use the precise `clock`.
    pub coarse: &'a dyn Clock,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_split_and_decoded_once() {
        let h = Headers::default();
        let r = Request::new(b"GET", b"/a%2Fb/%E4%B8%AD+c?x=1&y=%41?z", &h);
        assert_eq!((r.raw_path, r.query), (&b"/a%2Fb/%E4%B8%AD+c"[..], &b"x=1&y=%41?z"[..]));
        assert_eq!(&*r.decoded_path, "/a/b/中+c".as_bytes(), "`+` is not a space in a path");
        let r = Request::new(b"GET", b"/plain", &h);
        assert!(matches!(r.decoded_path, Cow::Borrowed(_)) && r.query.is_empty(), "nothing to decode: nothing copied");
        let r = Request::new(b"GET", b"/bad%zz%", &h);
        assert_eq!(&*r.decoded_path, b"/bad%zz%", "an invalid escape stays (routing refuses it)");
    }
}
