//! The access record: one JSON object per request, admitted or refused, published once as Envoy filter
//! state (`wasm.cagate`) for the access log and later filters. Field names follow Aliyun's request
//! log where it has one (requestId, apiName, stage, appId, appKey, errorCode, errorMessage,
//! clientNonce, httpMethod, path, statusCode). The client's address is Envoy's own access-log field
//! (`%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%`): reading it here would cost every request a host call.
//! Never a secret: no signature, AppCode, token or app secret is ever put in it.

use crate::config::model::Gateway;
use std::fmt::Write;

/// How a request was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthKind {
    Signature,
    AppCode,
    Jwt,
    Anonymous,
}

impl AuthKind {
    fn as_str(self) -> &'static str {
        match self {
            AuthKind::Signature => "SIGNATURE",
            AuthKind::AppCode => "APPCODE",
            AuthKind::Jwt => "JWT",
            AuthKind::Anonymous => "ANONYMOUS",
        }
    }
}

/// At most this much of a client value goes into the record.
const MAX_VALUE: usize = 1024;

/// What the gateway learnt of one request, filled as the request goes.
#[derive(Debug, Default)]
pub(crate) struct Record {
    pub(crate) started_us: i64,
    pub(crate) filter_us: i64,
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) envoy_request_id: Option<String>,
    pub(crate) client_nonce: Option<String>,
    pub(crate) api: Option<crate::ids::ApiId>,
    pub(crate) stage: Option<crate::ids::StageId>,
    pub(crate) app: Option<crate::ids::AppId>,
    pub(crate) auth: Option<AuthKind>,
    pub(crate) error: Option<(&'static str, String)>,
    pub(crate) backend_path: Option<String>,
    pub(crate) status: u16,
    /// `false` in report-only mode: the error was recorded, the request went on.
    pub(crate) not_enforced: bool,
}

/// A client value for the record: lossy UTF-8, cut at `MAX_VALUE` bytes.
pub(crate) fn text(v: &[u8]) -> String {
    let v = v.get(..MAX_VALUE).unwrap_or(v);
    String::from_utf8_lossy(v).into_owned()
}

/// The plugin a refusal code comes from, if a plugin refused.
fn plugin_of(code: &str) -> Option<&'static str> {
    Some(match code {
        "A403IP" => "ipControl",
        "A401BA" => "basicAuth",
        "A403AC" => "accessControl",
        "A403CO" | "I404CO" => "cors",
        "D503CB" => "circuitBreaker",
        "I400JR" | "S403JI" | "A403SV" | "I400JD" | "A403JT" | "A403JK" | "A403JE" | "I400JP" => "jwtAuth",
        c if c.starts_with("T429") => "trafficControl",
        _ => return None,
    })
}

fn push_str(out: &mut String, key: &str, value: &str) {
    let _ = write!(out, ",\"{key}\":\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl Record {
    /// The record as one JSON object (`request_id` is the gateway's X-Ca-Request-Id).
    pub(crate) fn to_json(&self, gw: &Gateway, request_id: &str) -> String {
        let mut out = String::with_capacity(256);
        let _ = write!(out, "{{\"requestId\":\"{request_id}\"");
        if let Some(id) = &self.envoy_request_id {
            push_str(&mut out, "envoyRequestId", id);
        }
        if let Some(api) = self.api.and_then(|a| gw.api(a)) {
            push_str(&mut out, "apiName", &api.name);
        }
        if let Some(stage) = self.stage.and_then(|s| gw.stages.get(s.index())) {
            push_str(&mut out, "stage", stage);
        }
        if let Some(app) = self.app.and_then(|a| gw.app(a)) {
            push_str(&mut out, "appId", &app.id);
            push_str(&mut out, "appKey", &app.key);
        }
        if let Some(auth) = self.auth {
            push_str(&mut out, "authType", auth.as_str());
        }
        if let Some((code, message)) = &self.error {
            push_str(&mut out, "errorCode", code);
            push_str(&mut out, "errorMessage", message.get(..MAX_VALUE).unwrap_or(message));
            if let Some(p) = plugin_of(code) {
                push_str(&mut out, "plugin", p);
            }
        }
        if let Some(n) = &self.client_nonce {
            push_str(&mut out, "clientNonce", n);
        }
        push_str(&mut out, "httpMethod", &self.method);
        push_str(&mut out, "path", &self.path);
        if let Some(p) = &self.backend_path {
            push_str(&mut out, "backendPath", p);
        }
        let _ = write!(out, ",\"statusCode\":{},\"gatewayMicros\":{}", self.status, self.filter_us.max(0));
        let _ = write!(out, ",\"enforced\":{}", !self.not_enforced);
        out.push('}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_is_json_with_escaped_client_values() {
        let gw = crate::config::compile::compile(br#"{"apis":[{"name":"p","method":"ANY","path":"/p/*","authType":"ANONYMOUS"}]}"#).unwrap();
        let r = Record {
            method: "GET".into(),
            path: text(b"/p/\"x\"\\\n\xff"),
            api: Some(crate::ids::ApiId(0)),
            stage: Some(crate::ids::StageId(0)),
            error: Some(("A403AC", "Access Control Forbidden by r1".into())),
            status: 403,
            filter_us: 12,
            ..Record::default()
        };
        let v: serde_json::Value = serde_json::from_str(&r.to_json(&gw, "RID")).unwrap();
        assert_eq!(v["requestId"], "RID");
        assert_eq!(v["apiName"], "p");
        assert_eq!(v["stage"], "RELEASE");
        assert_eq!(v["path"], "/p/\"x\"\\\n\u{fffd}");
        assert_eq!(v["plugin"], "accessControl");
        assert_eq!(v["statusCode"], 403);
        assert_eq!(v["gatewayMicros"], 12);
        assert_eq!(v["enforced"], true);
    }
}
