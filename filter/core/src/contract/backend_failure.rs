//! When Envoy answers in place of a failed backend, the client gets the gateway's contract instead of
//! Envoy's plain local reply: one table from Envoy's response code details to Aliyun's D-codes.
//! Genuine backend responses (`via_upstream`) are never touched.

use crate::contract::errors::{self, ErrorCode};

/// (substring of Envoy's response code details, the code). First match wins, so the specific
/// entries (TLS, timeouts) come before the general ones (connection failures).
pub const TABLE: &[(&str, &ErrorCode)] = &[
    ("via_upstream", &errors::X500ER), // sentinel: never mapped, see `map_local_reply`
    // Envoy's own answers to the request itself, not to a backend failure.
    ("route_not_found", &errors::I404NF),
    ("cluster_not_found", &errors::I404SR),
    ("request_payload_too_large", &errors::I413RL),
    ("tls_error", &errors::D504CS),
    ("tls", &errors::D504CS),
    ("ssl", &errors::D504CS),
    ("certificate", &errors::D504CS),
    ("upstream_response_timeout", &errors::D504TO),
    ("upstream_per_try_timeout", &errors::D504TO),
    ("upstream_per_try_idle_timeout", &errors::D504TO),
    // Envoy's own timeouts of the stream (stream_idle_timeout, request_timeout, ...): the gateway's,
    // unless the whole request had gone to the backend (see `answered_by`).
    ("timeout", &errors::X504TO),
    ("dns_resolution_failure", &errors::D504RE),
    ("dns", &errors::D504RE),
    ("no_healthy_upstream", &errors::D503BB),
    ("overflow", &errors::D503BB),
    ("maintenance_mode", &errors::D503BB),
    ("connection_failure", &errors::D504CO),
    ("connection_termination", &errors::D504CO),
    ("remote_reset", &errors::D504CO),
    ("upstream_reset", &errors::D504CO),
];

/// The gateway code for a response Envoy produced itself, from its response code details; `None`
/// for a backend's own response or a detail the table does not know.
pub fn map_local_reply(details: &[u8]) -> Option<(&'static ErrorCode, String)> {
    let d = String::from_utf8_lossy(details).to_ascii_lowercase();
    if d.is_empty() || d == "via_upstream" {
        return None;
    }
    let (_, code) = TABLE.iter().skip(1).find(|(needle, _)| d.contains(needle))?;
    Some((code, crate::wire::text::header_safe(d.as_bytes())))
}

/// Who answered a response cagate did not make itself, and what the gateway does with it.
#[derive(Debug, PartialEq, Eq)]
pub enum Answered {
    /// The backend's own response (its copies of the gateway's error headers are removed): `failed`
    /// when it is a 5xx, which the circuit breaker counts.
    Backend { failed: bool },
    /// Envoy answered, in place of a failed backend or for a reason of its own: the gateway's code
    /// for it, and whether a backend was reached and failed (only those count for the breaker; a
    /// request Envoy could not even send, a cluster it does not know, are not the backend's fault).
    Envoy { code: Option<(&'static ErrorCode, String)>, backend_failed: bool },
}

/// Classifies a response from Envoy's response code details and its status. Envoy's local answers
/// the table does not know get `X500ER` when they are server errors: every 5xx the gateway makes
/// carries a code. `request_sent`: the whole request had gone to the backend; a stream timeout is then
/// the backend's slowness (`D504TO`), otherwise the client's stalled request (`X504TO`, never the
/// backend's fault).
pub fn answered_by(details: &[u8], status: u16, request_sent: bool) -> Answered {
    if details.is_empty() || details == b"via_upstream" {
        return Answered::Backend { failed: status >= 500 };
    }
    let code = map_local_reply(details)
        .map(|(c, reason)| if request_sent && c.code == errors::X504TO.code { (&errors::D504TO, reason) } else { (c, reason) })
        .or_else(|| (status >= 500).then(|| (&errors::X500ER, crate::wire::text::header_safe(details))));
    // Aliyun's D-codes are the backend's failures: connection, TLS, timeout, reset, overflow.
    let backend_failed = code.as_ref().is_some_and(|(c, _)| c.code.starts_with('D'));
    Answered::Envoy { code, backend_failed }
}

/// The message for a mapped failure: the table's template with Envoy's detail as the reason, and for a
/// name that did not resolve the backend's host (its `host`, else its Envoy cluster) when known.
pub fn message(code: &ErrorCode, reason: &str, host: Option<&str>) -> String {
    match code.code {
        "D504RE" => code.render(&[&crate::wire::text::header_safe(host.unwrap_or("backend").as_bytes())]),
        "I404NF" => code.render(&["(no Envoy route for the request)"]),
        "I404SR" => code.render(&["the API's backend cluster is not known to Envoy"]),
        _ => code.render(&[reason]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_to_code_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("via_upstream", None),
            ("", None),
            ("upstream_reset_before_response_started{connection_failure}", Some("D504CO")),
            ("upstream_reset_before_response_started{connection_failure,delayed_connect_error:_Connection_refused}", Some("D504CO")),
            ("upstream_reset_before_response_started{connection_failure,TLS_error:_268435581:SSL_routines}", Some("D504CS")),
            ("upstream_response_timeout", Some("D504TO")),
            ("upstream_per_try_timeout", Some("D504TO")),
            ("no_healthy_upstream", Some("D503BB")),
            ("upstream_reset_before_response_started{overflow}", Some("D503BB")),
            ("dns_resolution_failure", Some("D504RE")),
            ("upstream_reset_after_response_started{remote_reset}", Some("D504CO")),
            ("request_payload_too_large", Some("I413RL")),
        ];
        for (details, code) in cases {
            assert_eq!(map_local_reply(details.as_bytes()).map(|(c, _)| c.code), *code, "{details}");
        }
        let (c, reason) = map_local_reply(b"upstream_reset_before_response_started{connection_failure}").unwrap();
        assert_eq!(message(c, &reason, None), "Backend service connect failed `upstream_reset_before_response_started{connection_failure}`");
        let (c, reason) = map_local_reply(b"upstream_response_timeout").unwrap();
        assert_eq!((c.status, message(c, &reason, None).as_str()), (504, "Backend service request timeout"));
    }

    #[test]
    fn unresolved_names_and_envoys_own_answers() {
        let (c, reason) = map_local_reply(b"dns_resolution_failure").unwrap();
        assert_eq!(message(c, &reason, Some("orders.internal")), "Backend domain `orders.internal` resolve failed");
        assert_eq!(message(c, &reason, None), "Backend domain `backend` resolve failed");
        assert_eq!(map_local_reply(b"route_not_found").unwrap().0.code, "I404NF");
        assert_eq!(map_local_reply(b"request_payload_too_large").unwrap().0.code, "I413RL");
        assert_eq!(map_local_reply(b"cluster_not_found").unwrap().0.code, "I404SR");
    }

    #[test]
    fn only_backend_failures_count_for_the_breaker() {
        assert_eq!(answered_by(b"via_upstream", 503, true), Answered::Backend { failed: true });
        assert_eq!(answered_by(b"via_upstream", 404, true), Answered::Backend { failed: false });
        let failed = |d: &[u8], s| match answered_by(d, s, false) {
            Answered::Envoy { code, backend_failed } => (code.map(|(c, _)| c.code), backend_failed),
            Answered::Backend { .. } => panic!("not a local answer"),
        };
        assert_eq!(failed(b"upstream_reset_before_response_started{connection_failure}", 503), (Some("D504CO"), true));
        assert_eq!(failed(b"upstream_response_timeout", 504), (Some("D504TO"), true));
        // The request could not be encoded (a header value Envoy refuses): Envoy's 503, not the backend's.
        assert_eq!(failed(b"filter_removed_required_request_headers{invalid_header_value}", 503), (Some("X500ER"), false));
        assert_eq!(failed(b"cluster_not_found", 503), (Some("I404SR"), false));
        assert_eq!(failed(b"direct_response", 200), (None, false));
        assert_eq!(failed(b"rbac_access_denied_matched_policy[none]", 403), (None, false));
        // A client that stalls its own request: the gateway's timeout, never the backend's.
        assert_eq!(failed(b"stream_idle_timeout", 504), (Some("X504TO"), false));
        assert_eq!(failed(b"request_overall_timeout", 408), (Some("X504TO"), false));
        // The same timeout once the whole request reached the backend: the backend is slow.
        match answered_by(b"stream_idle_timeout", 504, true) {
            Answered::Envoy { code, backend_failed } => assert_eq!((code.map(|(c, _)| c.code), backend_failed), (Some("D504TO"), true)),
            Answered::Backend { .. } => panic!("not a local answer"),
        }
    }
}
