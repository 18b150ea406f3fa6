//! The refusal the client sees: the table's status, `X-Ca-Error-Code`, `X-Ca-Error-Message`,
//! `X-Ca-Request-Id`, and a small JSON body naming the same.

use crate::gate::Refusal;

pub const ERROR_CODE_HEADER: &str = "x-ca-error-code";
pub const ERROR_MESSAGE_HEADER: &str = "x-ca-error-message";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

fn json_escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
}

/// Builds the local reply for a refusal.
pub fn refusal(r: &Refusal, request_id: &str) -> Reply {
    let mut body = String::with_capacity(64 + r.message.len());
    body.push_str("{\"code\":\"");
    body.push_str(r.error.code);
    body.push_str("\",\"message\":\"");
    json_escape(&mut body, &r.message);
    body.push_str("\",\"requestId\":\"");
    json_escape(&mut body, request_id);
    body.push_str("\"}");
    Reply {
        status: r.error.status,
        headers: vec![
            (crate::gate::REQUEST_ID_HEADER, request_id.to_string()),
            (ERROR_CODE_HEADER, r.error.code.to_string()),
            (ERROR_MESSAGE_HEADER, r.message.clone()),
            ("content-type", "application/json; charset=utf-8".to_string()),
        ]
        .into_iter()
        .chain(r.headers.iter().cloned())
        .collect(),
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors;

    #[test]
    fn reply_carries_the_contract() {
        let mut r = Refusal::new(&errors::A403IS, &["GET#\"q\\"], "x");
        r.headers.push(("retry-after", "3".into()));
        let reply = refusal(&r, "7AD052CB-EE8B-4DFD-BBAF-EFB340E0A5AF");
        assert_eq!(reply.status, 403);
        assert!(reply.headers.contains(&("x-ca-error-code", "A403IS".to_string())));
        assert!(reply.headers.contains(&("x-ca-request-id", "7AD052CB-EE8B-4DFD-BBAF-EFB340E0A5AF".to_string())));
        let v: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(v["code"], "A403IS");
        assert_eq!(v["message"], "Invalid Signature, Server StringToSign:`GET#\"q\\`");
        assert_eq!(v["requestId"], "7AD052CB-EE8B-4DFD-BBAF-EFB340E0A5AF");
        assert!(reply.headers.contains(&("retry-after", "3".to_string())));
    }
}
