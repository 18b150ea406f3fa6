//! The gateway's error contract, held as data in one place: every code of the reference table (VPC
//! instances) with its HTTP status and message template, and the classic-network instances' table
//! (a message and a status, no code) each VPC code answers with under `"errorContract": "CLASSIC"`.
//! Features look codes up here; nothing else in the crate spells a status or a message.

/// One row of the error table. `message` is Aliyun's template: `${Name}` marks a value filled per
/// refusal, in order of appearance. `classic` is the row of the classic-network table that answers
/// the same refusal.
#[derive(Debug, PartialEq, Eq)]
pub struct ErrorCode {
    pub code: &'static str,
    pub status: u16,
    pub message: &'static str,
    pub classic: &'static Classic,
}

/// One row of the classic-network instances' table: no code, a status and a message; `%s` marks the
/// one value some messages carry (the StringToSign, a JWT's `kid`).
#[derive(Debug, PartialEq, Eq)]
pub struct Classic {
    pub status: u16,
    pub message: &'static str,
}

/// Which table refusals answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorContract {
    #[default]
    Vpc,
    Classic,
}

macro_rules! classic {
    ($($ident:ident $status:literal $msg:literal;)*) => {
        /// The classic-network table.
        pub mod classic {
            use super::Classic;
            $(pub const $ident: Classic = Classic { status: $status, message: $msg };)*
            /// Every row, in the reference's order.
            pub static ALL: &[&Classic] = &[$(&$ident),*];
        }
    };
}

// The classic table of the reference, in its order ("Api Prov", a cut-off duplicate of the user
// flow-control row, left out).
classic! {
    INTERNAL_ERROR 500 "Internal Error";
    FAILED_TO_INVOKE_BACKEND 500 "Failed To Invoke Backend Service";
    SERVICE_UNAVAILABLE 503 "Service Unavailable";
    ASYNC_SERVICE 504 "Async Service";
    THROTTLED_USER 403 "Throttled by USER Flow Control";
    THROTTLED_APP 403 "Throttled by APP Flow Control";
    THROTTLED_API 403 "Throttled by API Flow Control";
    THROTTLED_DOMAIN 403 "Throttled by DOMAIN Flow Control";
    QUOTA_EXHAUSTED 403 "Quota Exhausted";
    EXPIRY_OF_AUTHORIZATION 403 "Expiry of Authorization";
    QUOTA_EXPIRED 403 "Quota Expired";
    USER_ARREARS 403 "User Arrears";
    EMPTY_REQUEST_BODY 400 "Empty Request Body";
    INVALID_REQUEST_BODY 400 "Invalid Request Body";
    INVALID_PARAM_LOCATION 400 "Invalid Param Location";
    UNSUPPORTED_MULTIPART 400 "Unsupported Multipart";
    INVALID_URL 400 "Invalid Url";
    INVALID_DOMAIN 400 "Invalid Domain";
    INVALID_HTTP_METHOD 400 "Invalid HttpMethod";
    INVALID_APP_KEY 400 "Invalid AppKey";
    INVALID_APP_SECRET 400 "Invalid AppSecret";
    TIMESTAMP_EXPIRED 400 "Timestamp Expired";
    INVALID_TIMESTAMP 400 "Invalid Timestamp";
    EMPTY_SIGNATURE 401 "Empty Signature";
    INVALID_SIGNATURE 400 "Invalid Signature, Server StringToSign:%s";
    INVALID_CONTENT_MD5 400 "Invalid Content-MD5";
    UNAUTHORIZED 403 "Unauthorized";
    NONCE_USED 400 "Nonce Used";
    API_NOT_FOUND 400 "API Not Found";
    OPENID_KEY_NOT_FOUND 401 "OpenID Connect Verify Fail: 243, Not found by keyId:%s";
}

impl Classic {
    /// The message with its `%s` filled (`arg` empty: the value is left out).
    pub fn render(&self, arg: &str) -> String {
        self.message.replacen("%s", arg, 1)
    }

    /// Whether the message carries a value.
    pub fn takes_arg(&self) -> bool {
        self.message.contains("%s")
    }
}

macro_rules! table {
    ($($ident:ident $status:literal $msg:literal => $classic:ident;)*) => {
        $(pub const $ident: ErrorCode = ErrorCode { code: stringify!($ident), status: $status, message: $msg, classic: &classic::$classic };)*
        /// Every code, in the reference's order.
        pub static ALL: &[&ErrorCode] = &[$(&$ident),*];
    };
}

table! {
    I400HD 400 "Invalid Header `${HeaderName}` ${Reason}" => INVALID_PARAM_LOCATION;
    I400MH 400 "Header `${HeaderName}` is Required" => INVALID_PARAM_LOCATION;
    I400BD 400 "Invalid Body: ${Reason}" => INVALID_REQUEST_BODY;
    I400PA 400 "Invalid Request Path `${Reason}`" => INVALID_URL;
    I405UM 405 "Unsupported Method `${Reason}`" => INVALID_HTTP_METHOD;
    I400RU 400 "Invalid Request Uri `${Reason}`" => INVALID_URL;
    I403PT 403 "Invalid protocol ${Protocol} unsupported" => INVALID_URL;
    I413RL 413 "Request body too Large" => INVALID_REQUEST_BODY;
    I413UL 413 "Request URL too Large" => INVALID_URL;
    I400CT 400 "Invalid Content-Type: `${Reason}`" => INVALID_REQUEST_BODY;
    I404DO 404 "Invalid Domain `${DomainName}`" => INVALID_DOMAIN;
    I410GG 410 "Group's instance invalid" => INVALID_DOMAIN;
    I400SG 400 "Invalid Stage" => INVALID_URL;
    I404NF 404 "API not found ${Reason}" => INVALID_URL;
    X400PM 400 "Invalid plugin meta ${PluginName} ${Reason}" => INTERNAL_ERROR;
    X500ED 500 "Expired api definition" => INTERNAL_ERROR;
    X500AM 500 "Invalid Api Meta, try deploy again or contact us via ticket" => INTERNAL_ERROR;
    X403DG 403 "Bad Domain or Group: ${Reason}" => INVALID_DOMAIN;
    B451DO 451 "Unavailable Domain for Legal Reasons" => INVALID_DOMAIN;
    B451GO 451 "Unavailable Group for Legal Reasons" => INVALID_DOMAIN;
    B403OD 403 "Provider Account Overdue" => USER_ARREARS;
    A400AC 400 "Invalid AppCode ${Reason}" => INVALID_APP_KEY;
    A400IK 400 "Invalid AppKey" => INVALID_APP_KEY;
    A403IS 403 "Invalid Signature, Server StringToSign:`${StringToSign}`" => INVALID_SIGNATURE;
    A403EP 403 "App authorization expired" => EXPIRY_OF_AUTHORIZATION;
    A403PR 403 "Plugin Authorization Needed" => UNAUTHORIZED;
    A400MA 400 "Need authorization, `X-Ca-Key` or `Authorization: APPCODE ...` is required" => INVALID_APP_KEY;
    I400I5 400 "Invalid Content-MD5 ${Reason}" => INVALID_CONTENT_MD5;
    I400NC 400 "X-Ca-Nonce is required" => INVALID_PARAM_LOCATION;
    S403NU 403 "Nonce Used" => NONCE_USED;
    S403TE 403 "X-Ca-Timestamp is expired" => TIMESTAMP_EXPIRED;
    I400MP 400 "Parameter `${ParameterName}` is required" => INVALID_PARAM_LOCATION;
    I400IP 400 "Invalid parameter `${ParameterName}` ${Reason}" => INVALID_PARAM_LOCATION;
    I400JR 400 "JWT required" => UNAUTHORIZED;
    S403JI 403 "Claim `jti` is required when `preventJtiReplay:true`" => UNAUTHORIZED;
    A403SV 403 "Claim `jti` in JWT is used" => UNAUTHORIZED;
    I400JD 400 "JWT Deserialize Failed: `${Token}`" => UNAUTHORIZED;
    A403JT 403 "Invalid JWT: ${Reason}" => UNAUTHORIZED;
    A403JK 403 "No matching JWK, `${kid}` not found" => OPENID_KEY_NOT_FOUND;
    A403JE 403 "JWT is expired at `${Date}`" => UNAUTHORIZED;
    I400JP 400 "Invalid JWT plugin config: ${JWT}" => INTERNAL_ERROR;
    A403OL 403 "OAuth2 Login failed: ${Reason}" => UNAUTHORIZED;
    A403OU 403 "OAuth2 Get User Info failed: ${Reason}" => UNAUTHORIZED;
    A401OT 401 "Invalid OAuth2 Access Token" => UNAUTHORIZED;
    A401OM 401 "OAuth2 Access Token is required" => UNAUTHORIZED;
    T429ID 429 "Throttled by INNER DOMAIN Flow Control, ${Domain} is a test domain, only 1000 requests per day" => THROTTLED_DOMAIN;
    T429IN 429 "Throttled by INSTANCE Flow Control" => THROTTLED_DOMAIN;
    T429GR 429 "Throttled by GROUP Flow Control" => THROTTLED_DOMAIN;
    T429PA 429 "Throttled by API Flow Control" => THROTTLED_API;
    T429PR 429 "Throttled by PLUGIN Flow Control" => THROTTLED_API;
    T429UP 429 "Throttled by Usage Plan Flow Control" => QUOTA_EXHAUSTED;
    T429SR 429 "Throttled by SERVER Flow Control" => THROTTLED_API;
    T429MR 429 "Too Many Requests, throttle by `${Description}`" => THROTTLED_API;
    A403IP 403 "Access denied by IP Control Policy" => UNAUTHORIZED;
    A403IN 403 "Access from internet is disabled ${Reason}" => UNAUTHORIZED;
    A403VN 403 "Access from invalid VPC is disabled" => UNAUTHORIZED;
    A403AC 403 "Access Control Forbidden by ${RuleName}" => UNAUTHORIZED;
    A403CO 403 "Cross origin resource forbidden ${Domain}" => UNAUTHORIZED;
    I404CO 404 "Cross origin resource not found ${Method} - ${Path}" => INVALID_URL;
    I404CH 404 "Content not cached, with `Cache-Control:only-if-cached`" => API_NOT_FOUND;
    I404NR 404 "${Resource} not found" => API_NOT_FOUND;
    I404SR 404 "Stage route missing: ${Reason}" => FAILED_TO_INVOKE_BACKEND;
    // Not in the FAQ's table: Aliyun's routing plugin page names it for a route whose backend overlay
    // is incomplete; the message is cagate's.
    I504RB 504 "Backend routing failed ${Reason}" => FAILED_TO_INVOKE_BACKEND;
    B403MO 403 "Api Market Subscription overdue" => USER_ARREARS;
    B403MQ 403 "Api Market Subscription quota exhausted" => QUOTA_EXHAUSTED;
    B403ME 403 "Api Market Subscription expired" => QUOTA_EXPIRED;
    B403MI 403 "Api Market Subscription invalid" => UNAUTHORIZED;
    D504RE 504 "Backend domain `${Domain}` resolve failed" => FAILED_TO_INVOKE_BACKEND;
    D504IL 504 "Backend domain `${Domain}` resolve to illegal address `${Address}`" => FAILED_TO_INVOKE_BACKEND;
    D504CO 504 "Backend service connect failed `${Reason}`" => FAILED_TO_INVOKE_BACKEND;
    D504CS 504 "Backend http ssl connect failed `${Reason}`" => FAILED_TO_INVOKE_BACKEND;
    D504TO 504 "Backend service request timeout" => ASYNC_SERVICE;
    X504VE 504 "Backend service vpc mapped failed" => FAILED_TO_INVOKE_BACKEND;
    D503BB 503 "Backend circuit breaker busy" => SERVICE_UNAVAILABLE;
    D503CB 503 "Backend circuit breaker open, ${Reason}" => SERVICE_UNAVAILABLE;
    I508LD 508 "Loop Detected" => INTERNAL_ERROR;
    I404DD 404 "Device id ${DeviceId} not found" => API_NOT_FOUND;
    A403FC 403 "Function Compute AssumeRole failed ${RequestId}:${Reason}" => FAILED_TO_INVOKE_BACKEND;
    D502FC 502 "Function Compute response invalid: ${Reason}" => FAILED_TO_INVOKE_BACKEND;
    N502RE 502 "Send Response IO Exception: ${Reason}" => FAILED_TO_INVOKE_BACKEND;
    X500ER 500 "Service Internal Error" => INTERNAL_ERROR;
    X503BZ 503 "Service Busy" => SERVICE_UNAVAILABLE;
    X504TO 504 "Service timeout" => ASYNC_SERVICE;
    // Not in the reference: a valid app with no grant for the API and stage. The classic-network table
    // answers this case with "Unauthorized" (403); the VPC table has no code for it, so cagate uses
    // A403UA (documented in docs/errors.md).
    A403UA 403 "Unauthorized" => UNAUTHORIZED;
    // Not in the reference: the basicAuth plugin's refusal (missing or wrong credentials).
    A401BA 401 "Basic Authorization Required" => UNAUTHORIZED;
    // Not in the reference: the remoteAuth plugin's refusals. Aliyun's third-party authentication
    // page names no code; A403RA is the service's "no" (its status replaceable by errorStatusCode,
    // its message by errorMessage), X503RA the service failing to answer (fail-closed).
    A403RA 403 "Remote Authentication Failed" => UNAUTHORIZED;
    X503RA 503 "Remote Authentication Service Unavailable: ${Reason}" => SERVICE_UNAVAILABLE;
}

/// Looks a code up by its six characters.
pub fn by_code(code: &str) -> Option<&'static ErrorCode> {
    ALL.iter().copied().find(|e| e.code == code)
}

impl ErrorCode {
    /// Fills the template's `${…}` slots with `args` in order. A slot with no argument (or an empty
    /// one) disappears together with the space before it, so `API not found ${Reason}` without a
    /// reason reads `API not found`.
    pub fn render(&self, args: &[&str]) -> String {
        let mut out = String::with_capacity(self.message.len() + args.iter().map(|a| a.len()).sum::<usize>());
        let mut rest = self.message;
        let mut next = args.iter();
        while let Some(start) = rest.find("${") {
            let Some(len) = rest[start..].find('}') else { break };
            let arg = next.next().copied().unwrap_or("");
            let before = &rest[..start];
            if arg.is_empty() {
                out.push_str(before.strip_suffix(' ').unwrap_or(before));
            } else {
                out.push_str(before);
                out.push_str(arg);
            }
            rest = &rest[start + len + 1..];
        }
        out.push_str(rest);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_six_chars_and_status_matches_class() {
        let mut seen = std::collections::HashSet::new();
        for e in ALL {
            assert_eq!(e.code.len(), 6, "{}", e.code);
            assert!(seen.insert(e.code), "duplicate {}", e.code);
            // the code spells its own status in characters 2..5
            assert_eq!(&e.code[1..4], e.status.to_string(), "{}", e.code);
        }
        assert!(ALL.len() >= 80);
    }

    #[test]
    fn render_fills_and_drops_slots() {
        assert_eq!(I404NF.render(&[]), "API not found");
        assert_eq!(I404NF.render(&["GET /x"]), "API not found GET /x");
        assert_eq!(A403IS.render(&["GET#"]), "Invalid Signature, Server StringToSign:`GET#`");
        assert_eq!(I404CO.render(&["GET", "/a"]), "Cross origin resource not found GET - /a");
        assert_eq!(S403NU.render(&["ignored"]), "Nonce Used");
        assert_eq!(by_code("S403TE").map(|e| e.status), Some(403));
        assert!(by_code("ZZZZZZ").is_none());
    }
}
