//! Aliyun's system parameters (`CaClientIp`, `CaRequestId`, …), defined once: the names, parsed at
//! configuration time (a backend's `systemParameters`, the `System:` variables of accessControl and
//! errorMapping), and the one evaluator, over what is known of a request when one is read.

use crate::apps::directory::App;
use crate::host::{Clock, Stream};
use crate::plugins::ip_control::{client_ip, Source};
use crate::wire::headers::Headers;

/// A system parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemValue {
    ClientIp,
    RequestId,
    AppId,
    AppKey,
    ApiName,
    Stage,
    Domain,
    HttpSchema,
    ClientUa,
    RequestHandleTime,
}

/// Aliyun's names of the system parameters: the only list.
const NAMES: [(&str, SystemValue); 10] = [
    ("CaClientIp", SystemValue::ClientIp),
    ("CaRequestId", SystemValue::RequestId),
    ("CaAppId", SystemValue::AppId),
    ("CaAppKey", SystemValue::AppKey),
    ("CaApiName", SystemValue::ApiName),
    ("CaStage", SystemValue::Stage),
    ("CaDomain", SystemValue::Domain),
    ("CaHttpSchema", SystemValue::HttpSchema),
    ("CaClientUa", SystemValue::ClientUa),
    ("CaRequestHandleTime", SystemValue::RequestHandleTime),
];

impl SystemValue {
    /// The parameter Aliyun names `name` (exact spelling).
    pub fn parse(name: &str) -> Option<SystemValue> {
        NAMES.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    /// Aliyun's name of the parameter.
    pub fn name(self) -> &'static str {
        NAMES.iter().find(|(_, v)| *v == self).map_or("", |(n, _)| n)
    }

    /// Every name, in one line, for a message.
    pub fn known() -> String {
        names().collect::<Vec<_>>().join(", ")
    }

    /// Read from the request itself (its headers, the time it is handled): gone by the response
    /// phase, so errorMapping has these captured at admission (`capture`).
    pub fn of_request(self) -> bool {
        matches!(self, SystemValue::Domain | SystemValue::HttpSchema | SystemValue::ClientUa | SystemValue::RequestHandleTime)
    }

    /// New on every request (its id, the time it is handled).
    pub fn per_request(self) -> bool {
        matches!(self, SystemValue::RequestId | SystemValue::RequestHandleTime)
    }
}

/// The names of the system parameters cagate supplies (for tools that write configurations).
pub fn names() -> impl Iterator<Item = &'static str> {
    NAMES.iter().map(|(n, _)| *n)
}

/// Where the parameters read from the request itself come from.
#[derive(Clone, Copy)]
pub enum Seen<'a> {
    /// The request phase: the request's headers, and the (coarse) clock for `CaRequestHandleTime`.
    Request { headers: &'a Headers<'a>, clock: &'a dyn Clock },
    /// The response phase: what `capture` kept of the request when it was admitted.
    Captured(&'a [(SystemValue, String)]),
}

/// What is known of a request when a system parameter is read.
pub struct Known<'a> {
    pub seen: Seen<'a>,
    /// The request's stream: its peer is `CaClientIp`.
    pub stream: &'a dyn Stream,
    pub app: Option<&'a App>,
    pub api: Option<&'a str>,
    pub stage: Option<&'a str>,
    pub request_id: &'a str,
}

/// A system parameter's value for a request; `None` when the request has none (no app, no
/// `User-Agent`, a peer address that is not an IP address, …).
pub fn value(which: SystemValue, k: &Known<'_>) -> Option<String> {
    if which.of_request() {
        return match k.seen {
            Seen::Request { headers, clock } => of_request(which, headers, clock),
            Seen::Captured(kept) => kept.iter().find(|(s, _)| *s == which).map(|(_, v)| v.clone()),
        };
    }
    match which {
        SystemValue::ClientIp => {
            let peer = k.stream.peer_address()?;
            Some(client_ip(Source::Peer, Some(&peer), None)?.to_string())
        }
        SystemValue::RequestId => Some(k.request_id.to_string()),
        SystemValue::AppId => k.app.map(|a| a.id.clone()),
        SystemValue::AppKey => k.app.map(|a| a.key.clone()),
        SystemValue::ApiName => k.api.map(str::to_string),
        SystemValue::Stage => k.stage.map(str::to_string),
        SystemValue::Domain | SystemValue::HttpSchema | SystemValue::ClientUa | SystemValue::RequestHandleTime => None,
    }
}

/// The parameters read from the request itself.
fn of_request(which: SystemValue, headers: &Headers<'_>, clock: &dyn Clock) -> Option<String> {
    let header = |name: &[u8]| headers.get(name).map(|v| String::from_utf8_lossy(v).into_owned());
    match which {
        SystemValue::Domain => header(b":authority").or_else(|| header(b"host")),
        SystemValue::HttpSchema => header(b"x-forwarded-proto").or_else(|| header(b":scheme")),
        SystemValue::ClientUa => header(b"user-agent"),
        SystemValue::RequestHandleTime => Some(crate::wire::time::format_rfc3339(clock.now_ms())),
        _ => None,
    }
}

/// The values of `wanted` (parameters `of_request`) for the response phase, kept at admission while
/// the request is there; a parameter the request has no value for is not kept (and reads as `None`).
pub fn capture(wanted: &[SystemValue], headers: &Headers<'_>, clock: &dyn Clock) -> Vec<(SystemValue, String)> {
    wanted.iter().filter_map(|&w| Some((w, of_request(w, headers, clock)?))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{FixedClock, FixedPeer};

    fn app() -> App {
        App { id: "77".into(), name: "n".into(), key: "k77".into(), owner_id: String::new(), credentials: Vec::new() }
    }

    #[test]
    fn one_list_parsed_once() {
        for n in names() {
            let v = SystemValue::parse(n).unwrap_or_else(|| panic!("{n}"));
            assert_eq!(v.name(), n);
        }
        assert_eq!(names().count(), 10);
        assert_eq!(SystemValue::parse("cadomain"), None, "names are exact");
        assert_eq!(SystemValue::parse("CaProxy"), None);
        assert!(SystemValue::known().starts_with("CaClientIp, CaRequestId, "));
    }

    /// The request phase and the response phase (what was captured at admission) give the same values.
    #[test]
    fn request_and_response_phase_agree() {
        let pairs: Vec<(&[u8], &[u8])> =
            vec![(b"host", b"api.example.com"), (b":scheme", b"http"), (b"x-forwarded-proto", b"https"), (b"user-agent", b"ua/1")];
        let buf = crate::wire::headers::serialize(&pairs);
        let headers = Headers::from_serialized(&buf).unwrap_or_default();
        let clock = FixedClock(1_700_000_000_000);
        let a = app();
        let known =
            |seen| Known { seen, stream: &FixedPeer("192.0.2.4:5555"), app: Some(&a), api: Some("thing"), stage: Some("TEST"), request_id: "r-1" };
        let all: Vec<SystemValue> = names().filter_map(SystemValue::parse).collect();
        let wanted: Vec<SystemValue> = all.iter().copied().filter(|v| v.of_request()).collect();
        let kept = capture(&wanted, &headers, &clock);
        let (req, resp) = (known(Seen::Request { headers: &headers, clock: &clock }), known(Seen::Captured(&kept)));
        for v in all {
            assert_eq!(value(v, &req), value(v, &resp), "{}", v.name());
        }
        let get = |v| value(v, &req);
        assert_eq!(get(SystemValue::Domain).as_deref(), Some("api.example.com"), "CaDomain falls back to Host");
        assert_eq!(get(SystemValue::HttpSchema).as_deref(), Some("https"));
        assert_eq!(get(SystemValue::ClientIp).as_deref(), Some("192.0.2.4"));
        assert_eq!(get(SystemValue::AppKey).as_deref(), Some("k77"));
        assert_eq!(get(SystemValue::RequestHandleTime).as_deref(), Some(crate::wire::time::format_rfc3339(1_700_000_000_000).as_str()));
        // Nothing captured: nothing read from the request in the response phase.
        let bare = known(Seen::Captured(&[]));
        assert_eq!(value(SystemValue::ClientUa, &bare), None);
        assert_eq!(value(SystemValue::RequestId, &bare).as_deref(), Some("r-1"));
    }
}
