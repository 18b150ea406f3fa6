//! The refusal the client sees: the table's status, `X-Ca-Error-Code`, `X-Ca-Error-Message`,
//! `X-Ca-Request-Id`, and a small JSON body naming the same.

use crate::contract::errors::ErrorContract;
use crate::contract::names::{ERROR_CODE_HEADER, ERROR_MESSAGE_HEADER, REQUEST_ID_HEADER};
use crate::contract::refusal::Refusal;
use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(Cow<'static, str>, String)>,
    pub body: String,
}

fn json_escape(out: &mut String, s: &str) {
    // Runs between the bytes to escape are copied whole: every escaped byte is ASCII, so each run
    // starts and ends on a character boundary.
    let mut from = 0;
    for (i, b) in s.bytes().enumerate() {
        if b != b'"' && b != b'\\' && b >= 0x20 {
            continue;
        }
        out.push_str(s.get(from..i).unwrap_or_default());
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            _ => out.push_str(&format!("\\u{b:04x}")),
        }
        from = i + 1;
    }
    out.push_str(s.get(from..).unwrap_or_default());
}

/// Builds the local reply for a refusal. A plugin's own headers replace the defaults of the same
/// name (accessControl may answer XML with its own Content-Type); its own body replaces the JSON one.
/// Under the classic contract: the classic row's status and message, and no `X-Ca-Error-Code`
/// (classic-network instances never sent one).
pub fn refusal(r: &Refusal, request_id: &str, contract: ErrorContract) -> Reply {
    let (code, status, classic_message) = match contract {
        ErrorContract::Vpc => (Some(r.error.code), r.error.status, None),
        ErrorContract::Classic => {
            let row = r.classic_row();
            (None, row.status, Some(row.render(&r.classic_arg)))
        }
    };
    let message = bounded(classic_message.as_deref().unwrap_or(&r.message));
    let body = match r.own.as_ref().and_then(|o| o.body.as_ref()) {
        Some(b) => b.clone(),
        None => {
            let mut body = String::with_capacity(64 + message.len());
            body.push('{');
            if let Some(code) = code {
                body.push_str("\"code\":\"");
                body.push_str(code);
                body.push_str("\",");
            }
            body.push_str("\"message\":\"");
            json_escape(&mut body, message);
            body.push_str("\",\"requestId\":\"");
            json_escape(&mut body, request_id);
            body.push_str("\"}");
            body
        }
    };
    let mut headers: Vec<(Cow<'static, str>, String)> = Vec::with_capacity(4 + r.headers.len());
    headers.push((REQUEST_ID_HEADER.into(), request_id.to_string()));
    if let Some(code) = code {
        headers.push((ERROR_CODE_HEADER.into(), code.to_string()));
    }
    headers.push((ERROR_MESSAGE_HEADER.into(), crate::wire::text::header_value(message).into_owned()));
    headers.push(("content-type".into(), "application/json; charset=utf-8".to_string()));
    // A plugin's own headers may carry request values (accessControl substitutes `${var}`): never a
    // control character in what Envoy writes to the client.
    for (name, value) in &r.headers {
        headers.retain(|(n, _)| n != name || *n == REQUEST_ID_HEADER || *n == ERROR_CODE_HEADER);
        headers.push((name.clone(), crate::wire::text::header_value(value).into_owned()));
    }
    Reply { status: r.own.as_ref().map_or(status, |o| o.status), headers, body }
}

/// Longest `X-Ca-Error-Message`: a StringToSign that quotes a huge signed header must not make a
/// reply Envoy or the client refuses to carry.
pub(crate) const MAX_MESSAGE_BYTES: usize = 4096;

fn bounded(message: &str) -> &str {
    let mut end = message.len().min(MAX_MESSAGE_BYTES);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::errors;

    #[test]
    fn reply_carries_the_contract() {
        let mut r = Refusal::new(&errors::A403IS, &["GET#\"q\\"], "x");
        r.headers.push(("retry-after".into(), "3".into()));
        let reply = refusal(&r, "7AD052CB-EE8B-4DFD-BBAF-EFB340E0A5AF", ErrorContract::Vpc);
        assert_eq!(reply.status, 403);
        assert!(reply.headers.contains(&("x-ca-error-code".into(), "A403IS".to_string())));
        assert!(reply.headers.contains(&("x-ca-request-id".into(), "7AD052CB-EE8B-4DFD-BBAF-EFB340E0A5AF".to_string())));
        let v: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(v["code"], "A403IS");
        assert_eq!(v["message"], "Invalid Signature, Server StringToSign:`GET#\"q\\`");
        assert_eq!(v["requestId"], "7AD052CB-EE8B-4DFD-BBAF-EFB340E0A5AF");
        assert!(reply.headers.contains(&("retry-after".into(), "3".to_string())));
    }

    #[test]
    fn every_message_survives_the_json_body_and_the_header() {
        for arg in ["GET#\"q\\", "a\nb\tc\u{1}d", "中文 \u{85} é", "", "\\\"", "\u{7f}x"] {
            let r = Refusal::new(&errors::A403IS, &[arg], "x");
            let reply = refusal(&r, "id", ErrorContract::Vpc);
            let v: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
            assert_eq!(v["message"], r.message, "{arg:?}");
            let header = reply.headers.iter().find(|(n, _)| n == "x-ca-error-message").unwrap();
            assert!(!header.1.chars().any(|c| c.is_control() && c != '\t'), "{arg:?}");
            assert_eq!(header.1.chars().count(), r.message.chars().count(), "{arg:?}");
        }
    }

    #[test]
    fn huge_messages_are_cut_on_a_char_boundary() {
        let big = format!("{}é{}", "x".repeat(MAX_MESSAGE_BYTES - 1), "y".repeat(1 << 20));
        let r = Refusal::new(&errors::A403IS, &[&big], "x");
        let reply = refusal(&r, "id", ErrorContract::Vpc);
        let shown = &reply.headers.iter().find(|(n, _)| n == "x-ca-error-message").unwrap().1;
        assert!(shown.len() <= MAX_MESSAGE_BYTES && shown.starts_with("Invalid Signature"));
        let v: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(v["message"].as_str().unwrap(), shown);
    }

    #[test]
    fn classic_contract_has_no_code_and_the_classic_row() {
        let r = Refusal::new(&errors::A403IS, &["GET#/x"], "x");
        let reply = refusal(&r, "id", ErrorContract::Classic);
        assert_eq!(reply.status, 400);
        assert!(!reply.headers.iter().any(|(n, _)| n == "x-ca-error-code"));
        assert!(reply.headers.contains(&("x-ca-error-message".into(), "Invalid Signature, Server StringToSign:GET#/x".to_string())));
        let v: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert!(v.get("code").is_none());
        let r = Refusal::new(&errors::S403NU, &[], "x");
        assert_eq!(refusal(&r, "id", ErrorContract::Classic).status, 400);
        let mut r = Refusal::new(&errors::T429PR, &[], "x");
        r.throttled = Some((0, crate::contract::refusal::Dim::App));
        let reply = refusal(&r, "id", ErrorContract::Classic);
        assert_eq!(reply.status, 403);
        assert!(reply.headers.contains(&("x-ca-error-message".into(), "Throttled by APP Flow Control".to_string())));
        let r = Refusal::new(&errors::A403IS, &[""], "x").classic(&errors::classic::EMPTY_SIGNATURE);
        assert_eq!(refusal(&r, "id", ErrorContract::Classic).status, 401);
    }

    #[test]
    fn every_classic_row_answers_some_refusal_but_two() {
        // Rows chosen at the refusal site rather than by the code.
        let chosen = [
            &errors::classic::THROTTLED_USER,
            &errors::classic::THROTTLED_APP,
            &errors::classic::EMPTY_SIGNATURE,
            &errors::classic::INVALID_TIMESTAMP,
            &errors::classic::UNSUPPORTED_MULTIPART,
        ];
        // Never answered: a wrong secret cannot be told from a wrong signature, and an empty body is
        // not a refusal of its own (a missing parameter is).
        let never = [&errors::classic::INVALID_APP_SECRET, &errors::classic::EMPTY_REQUEST_BODY];
        for row in errors::classic::ALL {
            let by_code = errors::ALL.iter().any(|e| e.classic == *row);
            let at_site = chosen.contains(row);
            let unused = never.contains(row);
            assert!(by_code ^ unused || at_site, "{}", row.message);
        }
    }
}
