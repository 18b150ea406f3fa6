//! The HTTP context: gathers the request through host calls, runs the core, applies its decision
//! (a local reply, or the upstream header edits), and handles the response phase.

use crate::cluster::{self, Answer, Waiting};
use crate::host::{self, CoarseClock, HostClock, HostStore, HostStream};
use crate::hostcall::{self, Buffer, Map};
use crate::State;
use cagate_core::errors::{self, ErrorCode};
use cagate_core::headers::{self, Edit, Headers};
use cagate_core::{backend_failure, Admission, Clock, PluginKind, Refusal, Request, RequestIds, Routed, REQUEST_ID_HEADER};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::rc::Rc;

pub(crate) struct Http {
    state: Option<Rc<State>>,
    request_id: [u8; 36],
    /// The request's header map as the host serialized it, kept while the body is buffered.
    head: Vec<u8>,
    /// Routed, waiting for the body.
    pending: Option<Routed>,
    replied: bool,
    /// `RateLimit-*` values for the response, when the traffic plugin asks for them.
    quota: Option<cagate_core::traffic_control::Quota>,
    /// CORS headers for the response (an allowed browser origin on an API with a cors plugin).
    cors: Vec<(&'static str, String)>,
    /// What the response phase needs to know about an admitted request.
    admitted: Option<Admitted>,
    /// The gateway's own body for a backend failure Envoy answered (replaces Envoy's text).
    rewrite_body: Option<String>,
    /// errorMapping waiting for the backend's JSON body: (plugin index, backend status).
    mapping: Option<(u32, u16)>,
    /// Debug mode: when the request started (ns), then the X-Ca-Debug-Info value.
    debug_start: Option<u64>,
    debug_info: Option<String>,
    /// Cluster mode: an admitted request waiting for its remote checks.
    remote: Option<Remote>,
}

/// The remote checks of a request in flight, and what they said so far.
struct Remote {
    admission: Admission,
    waiting: Vec<(u32, Waiting)>,
    refusal: Option<Refusal>,
    quota: Option<cagate_core::traffic_control::Quota>,
}

struct Admitted {
    api: u32,
    stage: u32,
    app: Option<u32>,
    claims: Option<cagate_core::jwt::Claims>,
    breaker: Option<(u32, String, cagate_core::circuit_breaker::Pass)>,
}

impl Context for Http {
    fn on_grpc_call_response(&mut self, token: u32, status: u32, size: usize) {
        let Some(state) = self.state.clone() else { return };
        let answer = Answer::read(status, size);
        self.remote_answer(&state, token, answer);
    }
}

impl Http {
    pub(crate) fn new(state: Option<Rc<State>>) -> Self {
        Http {
            state,
            request_id: [b'0'; 36],
            head: Vec::new(),
            pending: None,
            replied: false,
            quota: None,
            cors: Vec::new(),
            admitted: None,
            rewrite_body: None,
            mapping: None,
            debug_start: None,
            debug_info: None,
            remote: None,
        }
    }
}

impl Http {
    fn id(&self) -> &str {
        std::str::from_utf8(&self.request_id).unwrap_or("")
    }

    fn refuse(&mut self, state: &State, r: &Refusal) -> Action {
        let app = r.app.and_then(|a| state.gateway.app(a)).map_or("-", |a| a.id.as_str());
        log::debug!("cagate: refused request_id={} code={} app={} cause={}", self.id(), r.error.code, app, r.cause);
        state.metrics.borrow_mut().refused(r.error.code);
        if r.error.code == errors::X503BZ.code {
            state.metrics.borrow_mut().nonce_store_full();
        }
        if r.error.code == errors::D503CB.code {
            state.metrics.borrow_mut().breaker_refused();
        }
        if let Some((idx, dim)) = r.throttled {
            let name = state.gateway.plugins.get(idx as usize).map_or("", |p| p.name.as_str());
            state.metrics.borrow_mut().traffic(idx, name, dim.as_str(), false);
        }
        let out = cagate_core::reply_for(r, self.id());
        let cors = std::mem::take(&mut self.cors);
        let headers: Vec<(&str, &str)> =
            out.headers.iter().map(|(n, v)| (n.as_ref(), v.as_str())).chain(cors.iter().map(|(n, v)| (*n, v.as_str()))).collect();
        self.reply(out.status, &headers, out.body.as_bytes())
    }

    /// A local reply. After it the stream is the host's: the filter pauses whatever happens.
    fn reply(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) -> Action {
        if let Err(e) = hostcall::send_local_response(status as u32, headers, body) {
            log::warn!("cagate: local reply {status} refused by the host (status {e}) request_id={}", self.id());
        }
        self.replied = true;
        Action::Pause
    }

    /// Answers a CORS preflight (no authentication: browsers send none).
    fn preflight(&mut self) -> Action {
        let rid = self.request_id;
        let cors = std::mem::take(&mut self.cors);
        let mut headers: Vec<(&str, &str)> = vec![(REQUEST_ID_HEADER, std::str::from_utf8(&rid).unwrap_or(""))];
        headers.extend(cors.iter().map(|(n, v)| (*n, v.as_str())));
        self.reply(200, &headers, b"")
    }

    fn refuse_code(&mut self, state: &State, error: &'static ErrorCode, cause: &'static str) -> Action {
        let r = Refusal::new(error, &[], cause);
        self.refuse(state, &r)
    }

    fn admit(&mut self, state: &State, head: &Headers<'_>, a: &Admission) -> Action {
        let rid = self.request_id;
        let identity = cagate_core::identity_headers(&state.gateway, &a.identity);
        let edits: Vec<Edit<'_>> = identity
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.map(str::as_bytes)))
            .chain([(REQUEST_ID_HEADER.as_bytes(), Some(&rid[..]))])
            .chain(a.edits.iter().map(|(n, v)| (n.as_bytes(), v.as_deref())))
            .collect();
        edit_upstream_headers(head, &edits);
        state.metrics.borrow_mut().allowed();
        if let (Some(start), Some(app)) = (self.debug_start, a.identity.app.and_then(|i| state.gateway.app(i))) {
            self.debug_info = Some(cagate_core::debug_info(&state.gateway, a, &app.id, host::now_nanos().saturating_sub(start) / 1000));
        }
        self.admitted = Some(Admitted {
            api: a.identity.api,
            stage: a.identity.stage,
            app: a.identity.app,
            claims: a.claims.clone(),
            breaker: a.breaker.clone(),
        });
        if let Some((idx, dims, quota)) = &a.traffic {
            let name = state.gateway.plugins.get(*idx as usize).map_or("", |p| p.name.as_str());
            for d in dims {
                state.metrics.borrow_mut().traffic(*idx, name, d.as_str(), true);
            }
            self.quota = *quota;
        }
        Action::Continue
    }

    /// Authenticates with the buffered head and, if needed, the body; then replies or admits.
    fn decide(&mut self, state: &State, headers: &Headers<'_>, routed: Routed, body: Option<&[u8]>) -> Action {
        let req = request(headers);
        let rid = self.request_id;
        let ctx = cagate_core::Ctx { request_id: std::str::from_utf8(&rid).unwrap_or(""), body, stream: &HostStream, coarse: &CoarseClock };
        let admitted = cagate_core::authenticate(&state.gateway, &state.nonces, &req, &routed, body, &CoarseClock, &HostStore)
            .and_then(|id| cagate_core::run_plugins(&state.gateway, &mut state.runtime.borrow_mut(), &req, id, &HostClock, &HostStore, &ctx));
        match admitted {
            Ok(a) if a.rate_limit.is_some() || !a.one_time.is_empty() => self.start_remote(state, a),
            Ok(a) => match state.gateway.mock_reply(a.identity.api) {
                Some(mock) => self.mock(state, mock),
                None => self.admit(state, headers, &a),
            },
            Err(r) => self.refuse(state, &r),
        }
    }

    /// An API whose backend is a mock: the gateway answers, as Aliyun's mock does.
    fn mock(&mut self, state: &State, m: &cagate_core::MockBackend) -> Action {
        state.metrics.borrow_mut().allowed();
        let rid = self.request_id;
        let cors = std::mem::take(&mut self.cors);
        let mut headers: Vec<(&str, &str)> = vec![(REQUEST_ID_HEADER, std::str::from_utf8(&rid).unwrap_or(""))];
        headers.extend(m.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        headers.extend(cors.iter().map(|(n, v)| (*n, v.as_str())));
        self.reply(m.status, &headers, m.body.as_bytes())
    }
}

impl Http {
    /// The request is held by the filter: its decision is pending (body, remote checks) or it was
    /// answered locally. No request callback may let it continue then.
    fn holds_request(&self) -> bool {
        self.pending.is_some() || self.remote.is_some() || self.replied
    }

    /// Decides a request whose body is complete (at most `max` bytes of it are read).
    fn decide_with_body(&mut self, state: &State, max: usize) -> Action {
        let Some(routed) = self.pending.take() else { return Action::Continue };
        let body = hostcall::buffer(Buffer::RequestBody, 0, max);
        if body.len() as u64 > state.gateway.max_body_bytes {
            return self.refuse_code(state, &errors::I413RL, "body over maxBodyBytes");
        }
        let head = std::mem::take(&mut self.head);
        let Some(headers) = Headers::from_serialized(&head) else {
            return self.refuse_code(state, &errors::X500ER, "malformed header map from host");
        };
        self.decide(state, &headers, routed, Some(&body))
    }
}

fn request<'a>(h: &'a Headers<'a>) -> Request<'a> {
    Request { method: h.get(b":method").unwrap_or_default(), path: h.get(b":path").unwrap_or_default(), headers: h }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(state) = self.state.clone() else {
            // No valid configuration ever loaded: refuse rather than let traffic through unchecked.
            self.request_id = RequestIds::new(host::now_nanos()).next_id();
            let r = Refusal::new(&errors::X500AM, &[], "no configuration");
            let out = cagate_core::reply_for(&r, self.id());
            let headers: Vec<(&str, &str)> = out.headers.iter().map(|(n, v)| (n.as_ref(), v.as_str())).collect();
            return self.reply(out.status, &headers, out.body.as_bytes());
        };
        self.request_id = state.ids.borrow_mut().next_id();
        // The header map is fetched and parsed once; it is kept only while a body is awaited.
        let head = host::request_header_map();
        let Some(headers) = Headers::from_serialized(&head) else {
            return self.refuse_code(&state, &errors::X500ER, "malformed header map from host");
        };
        let req = request(&headers);
        if headers.get(b"x-ca-request-mode").map(cagate_core::trim) == Some(b"debug") {
            self.debug_start = Some(host::now_nanos());
        }
        let routed = match cagate_core::route(&state.gateway, &req) {
            Ok(r) => r,
            Err(r) => return self.refuse(&state, &r),
        };
        self.cors = cagate_core::cors_headers(&state.gateway, &routed, &req);
        if routed.preflight {
            return self.preflight();
        }
        if routed.needs_body && !end_of_stream {
            drop(headers);
            self.head = head;
            self.pending = Some(routed);
            return Action::Pause;
        }
        let body: Option<&[u8]> = if routed.needs_body { Some(&[]) } else { None };
        self.decide(&state, &headers, routed, body)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let (Some(state), Some(_)) = (self.state.clone(), self.pending) else {
            // Continuing here would also release headers the filter still holds: a request waiting
            // for its remote checks, or already answered, stays where it is.
            return if self.holds_request() { Action::Pause } else { Action::Continue };
        };
        if body_size as u64 > state.gateway.max_body_bytes {
            self.pending = None;
            return self.refuse_code(&state, &errors::I413RL, "body over maxBodyBytes");
        }
        if !end_of_stream {
            return Action::Pause; // keep buffering
        }
        self.decide_with_body(&state, body_size)
    }

    /// Trailers end the request: a body still awaited is complete now, and is decided on like one
    /// that ended with its last data frame.
    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        let (Some(state), Some(_)) = (self.state.clone(), self.pending) else {
            return if self.holds_request() { Action::Pause } else { Action::Continue };
        };
        let limit = usize::try_from(state.gateway.max_body_bytes).unwrap_or(usize::MAX);
        self.decide_with_body(&state, limit.saturating_add(1))
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if self.replied {
            return Action::Continue; // our own local reply carries everything already
        }
        let Some(state) = self.state.clone() else { return Action::Continue };
        let status: u16 = response_header(":status").and_then(|s| std::str::from_utf8(&s).ok()?.parse().ok()).unwrap_or(0);
        let mut gateway_code: Option<&'static ErrorCode> = None;
        let mut backend_failed = status >= 500;
        if self.pending.is_some() && status == 413 {
            // Envoy's own buffer limit fired while we waited for the body: answer in our contract.
            gateway_code = Some(&errors::I413RL);
            backend_failed = false;
            set_response_header(cagate_core::ERROR_CODE_HEADER, Some(errors::I413RL.code.as_bytes()));
            set_response_header(cagate_core::ERROR_MESSAGE_HEADER, Some(errors::I413RL.message.as_bytes()));
        } else if status < 400 {
            // Only the gateway says X-Ca-Error-*: a backend's own copies never reach the client.
            strip_error_headers();
        } else {
            let details = hostcall::property(&["response", "code_details"]).unwrap_or_default();
            match backend_failure::answered_by(&details, status) {
                backend_failure::Answered::Backend { failed } => {
                    backend_failed = failed;
                    strip_error_headers();
                }
                backend_failure::Answered::Envoy { code, backend_failed: failed } => {
                    backend_failed = failed;
                    // A code already there was set by the Envoy configuration (cagate import's routes).
                    if let (Some((code, reason)), None) = (code, response_header(cagate_core::ERROR_CODE_HEADER)) {
                        gateway_code = Some(code);
                        self.answer_backend_failure(&state, code, &reason, end_of_stream);
                    }
                }
            }
        }
        self.report_to_breaker(&state, backend_failed);
        if self.replied {
            return Action::Pause; // replaced whole by the gateway's reply
        }
        let mapping = self.admitted.as_ref().and_then(|a| state.gateway.bound(a.api, a.stage).mapping);
        let mut action = Action::Continue;
        if let (Some(idx), None) = (mapping, gateway_code) {
            if let Some(PluginKind::Mapping(cfg)) = state.gateway.plugins.get(idx as usize).map(|p| &p.kind) {
                let json = response_header("content-type")
                    .is_some_and(|ct| cagate_core::starts_with_ignore_case(cagate_core::trim(&ct), b"application/json"));
                let fits = response_header("content-length")
                    .and_then(|l| std::str::from_utf8(&l).ok()?.parse::<usize>().ok())
                    .is_none_or(|l| l <= cfg.max_body);
                if cfg.reads_body() && !end_of_stream && json && fits {
                    // Held until the body is in: the status may still change.
                    self.mapping = Some((idx, status));
                    action = Action::Pause;
                } else {
                    self.apply_mapping(&state, cfg, status, None);
                }
            }
        }
        self.add_response_headers();
        action
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.rewrite_body.is_some() {
            if !end_of_stream {
                return Action::Pause;
            }
            let body = self.rewrite_body.take().unwrap_or_default();
            let _ = hostcall::set_buffer(Buffer::ResponseBody, 0, body_size, body.as_bytes());
            return Action::Continue;
        }
        let Some((idx, status)) = self.mapping else { return Action::Continue };
        let Some(state) = self.state.clone() else { return Action::Continue };
        let Some(PluginKind::Mapping(cfg)) = state.gateway.plugins.get(idx as usize).map(|p| &p.kind) else {
            return Action::Continue;
        };
        if body_size > cfg.max_body {
            self.mapping = None; // larger than announced: stream it through untouched
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        self.mapping = None;
        let body = hostcall::buffer(Buffer::ResponseBody, 0, body_size);
        let doc: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
        self.apply_mapping(&state, cfg, status, doc.as_ref());
        Action::Continue
    }
}

impl Http {
    fn add_response_headers(&mut self) {
        let rid = self.request_id;
        set_response_header(REQUEST_ID_HEADER, Some(&rid));
        if let Some(q) = self.quota {
            for (name, value) in q.headers() {
                set_response_header(name, Some(value.as_bytes()));
            }
        }
        for (name, value) in std::mem::take(&mut self.cors) {
            set_response_header(name, Some(value.as_bytes()));
        }
        if let Some(info) = self.debug_info.take() {
            set_response_header("x-ca-debug-info", Some(info.as_bytes()));
        }
    }

    /// Envoy answered because the backend failed: the client gets the gateway contract.
    fn answer_backend_failure(&mut self, state: &State, code: &'static ErrorCode, reason: &str, end_of_stream: bool) {
        let host = self.admitted.as_ref().and_then(|a| state.gateway.backend_host(a.api, a.stage));
        let r = Refusal { message: backend_failure::message(code, reason, host), ..Refusal::new(code, &[], "backend failure") };
        log::debug!("cagate: backend failure request_id={} code={} detail={reason}", self.id(), code.code);
        state.metrics.borrow_mut().refused(code.code);
        let out = cagate_core::reply_for(&r, self.id());
        if end_of_stream {
            // A reply with no body (Envoy's own, say cluster_not_found) cannot be given one from
            // here: it is replaced whole, before anything of it went downstream.
            let headers: Vec<(&str, &str)> = out.headers.iter().map(|(n, v)| (n.as_ref(), v.as_str())).collect();
            let _ = self.reply(out.status, &headers, out.body.as_bytes());
            return;
        }
        set_response_header(":status", Some(out.status.to_string().as_bytes()));
        set_response_header("content-length", None);
        for (name, value) in &out.headers {
            if name != REQUEST_ID_HEADER {
                set_response_header(name, Some(value.as_bytes()));
            }
        }
        self.rewrite_body = Some(out.body);
    }

    /// `failed`: the backend was reached and failed (its 5xx, or a connection, TLS, timeout or reset
    /// failure); answers Envoy made without reaching it never count.
    fn report_to_breaker(&mut self, state: &State, failed: bool) {
        let Some((idx, key, pass)) = self.admitted.as_mut().and_then(|a| a.breaker.take()) else { return };
        let Some(PluginKind::Breaker(cfg)) = state.gateway.plugins.get(idx as usize).map(|p| &p.kind) else { return };
        if cagate_core::circuit_breaker::record(cfg, &key, pass, failed, HostClock.now_ms(), &HostStore) {
            log::warn!("cagate: circuit breaker {} opened for {key}", cfg.plugin);
            state.metrics.borrow_mut().breaker_opened();
        }
    }

    fn apply_mapping(&mut self, state: &State, cfg: &cagate_core::error_mapping::MappingConfig, status: u16, body: Option<&serde_json::Value>) {
        let Some(adm) = &self.admitted else { return };
        let gw = &state.gateway;
        let rid = self.id().to_string();
        let system = |name: &str| match name {
            "CaAppId" => adm.app.and_then(|a| gw.app(a)).map(|a| a.id.clone()),
            "CaApiName" => gw.api(adm.api).map(|a| a.name.clone()),
            "CaStage" => gw.stages.get(adm.stage as usize).cloned(),
            "CaRequestId" => Some(rid.clone()),
            _ => None,
        };
        let response = cagate_core::error_mapping::Response {
            status,
            stream: &HostStream,
            error_code: None,
            body,
            claims: adm.claims.as_deref(),
            system: &system,
        };
        if let Some((new_status, message)) = cagate_core::error_mapping::apply(cfg, &response) {
            set_response_header(":status", Some(new_status.to_string().as_bytes()));
            if let Some(m) = message {
                set_response_header(cagate_core::ERROR_MESSAGE_HEADER, Some(m.as_bytes()));
            }
        }
    }
}

/// Removes a backend's `X-Ca-Error-Code` and `X-Ca-Error-Message`.
fn strip_error_headers() {
    set_response_header(cagate_core::ERROR_CODE_HEADER, None);
    set_response_header(cagate_core::ERROR_MESSAGE_HEADER, None);
}

fn response_header(name: &str) -> Option<Vec<u8>> {
    hostcall::header(Map::Response, name)
}

/// A response header edit; a host that refuses one leaves the backend's response as it was.
fn set_response_header(name: &str, value: Option<&[u8]>) {
    let _ = hostcall::set_header(Map::Response, name.as_bytes(), value);
}

/// Maps at most this large are replaced whole: one host call, measured cheaper than a call per
/// header (each of which also clears Envoy's route cache). The proxy-wasm host deserializes at most
/// 1024 pairs and 1 MiB (proxy-wasm-cpp-host `limits.h`); past that it hands Envoy an empty list and
/// Envoy installs an empty map, `:path` included, and answers Ok. Well below those limits, or the
/// map is edited header by header.
const WHOLE_MAP_MAX_PAIRS: usize = 512;
const WHOLE_MAP_MAX_BYTES: usize = 512 * 1024;

/// Applies the gateway's request header edits: every client spelling of a gateway-owned header goes,
/// the gateway's values are set.
fn edit_upstream_headers(head: &Headers<'_>, edits: &[Edit<'_>]) {
    let pairs = headers::upstream_pairs(head, edits);
    let bytes: usize = pairs.iter().map(|(n, v)| n.len() + v.len() + 10).sum();
    if pairs.len() <= WHOLE_MAP_MAX_PAIRS && bytes <= WHOLE_MAP_MAX_BYTES {
        let serialized = hostcall::serialize_map(&pairs);
        if hostcall::set_header_map(Map::Request, &serialized).is_ok() {
            return;
        }
    }
    for name in headers::owned_spellings(head, edits) {
        let _ = hostcall::set_header(Map::Request, name, None);
    }
    for (name, value) in edits {
        if let Err(e) = hostcall::set_header(Map::Request, name, *value) {
            log::warn!("cagate: request header {} not set (host status {e})", String::from_utf8_lossy(name));
        }
    }
}

impl Http {
    /// Sends the remote checks of an admitted request, in parallel, and pauses it until they answer.
    fn start_remote(&mut self, state: &State, admission: Admission) -> Action {
        let gw = &state.gateway;
        let mut remote = Remote { admission, waiting: Vec::new(), refusal: None, quota: None };
        if let Some(call) = cagate_core::rate_limit_call(gw, &remote.admission) {
            state.metrics.borrow_mut().cluster("rls", "calls");
            match cluster::send(self, &call) {
                Some(token) => remote.waiting.push((token, Waiting::RateLimit)),
                None => {
                    state.metrics.borrow_mut().cluster("rls", "errors");
                    self.rate_limit_answer(state, &mut remote, None);
                }
            }
        }
        let now = CoarseClock.now_ms();
        for key in remote.admission.one_time.clone() {
            let Some(lease) = cagate_core::lease_of(gw, &key, now) else { continue };
            let known = state.leases.borrow().knows(&lease);
            let waiting = if known { Waiting::Claim { key, lease, retried: false } } else { Waiting::Grant { key, lease } };
            self.send_one_time(state, &mut remote, waiting);
        }
        self.remote = Some(remote);
        self.finish_remote(state)
    }

    /// Sends a lease grant or a claim; a call that cannot be sent is a failed claim.
    fn send_one_time(&mut self, state: &State, remote: &mut Remote, waiting: Waiting) {
        let gw = &state.gateway;
        let call = match &waiting {
            Waiting::Grant { lease, .. } => cagate_core::lease_call(gw, lease),
            Waiting::Claim { key, lease, .. } => cagate_core::claim_call(gw, key, lease),
            Waiting::RateLimit => None,
        };
        state.metrics.borrow_mut().cluster("etcd", "calls");
        match call.and_then(|c| cluster::send(self, &c)) {
            Some(token) => remote.waiting.push((token, waiting)),
            None => {
                state.metrics.borrow_mut().cluster("etcd", "errors");
                if let Waiting::Claim { key, .. } | Waiting::Grant { key, .. } = waiting {
                    record(remote, cagate_core::claim_verdict(&key, None).err());
                }
            }
        }
    }

    fn rate_limit_answer(&mut self, state: &State, remote: &mut Remote, answer: Option<&[u8]>) {
        match cagate_core::rate_limit_verdict(&state.gateway, &remote.admission, answer) {
            Ok(q) => {
                if answer.is_none() {
                    state.metrics.borrow_mut().cluster("rls", "fail_open");
                    log::warn!("cagate: cluster: rate limit service unavailable, admitted (failOpen) request_id={}", self.id());
                }
                remote.quota = q;
            }
            Err(r) => {
                let over = r.error.code != errors::X503BZ.code;
                state.metrics.borrow_mut().cluster("rls", if over { "over_limit" } else { "refused_unavailable" });
                record(remote, Some(r));
            }
        }
    }

    /// One answer of a remote check.
    fn remote_answer(&mut self, state: &State, token: u32, answer: Answer) {
        let Some(mut remote) = self.remote.take() else { return };
        let Some(pos) = remote.waiting.iter().position(|(t, _)| *t == token) else {
            self.remote = Some(remote);
            return;
        };
        let (_, waiting) = remote.waiting.swap_remove(pos);
        let service = if matches!(waiting, Waiting::RateLimit) { "rls" } else { "etcd" };
        match &answer {
            Answer::Timeout => state.metrics.borrow_mut().cluster(service, "timeouts"),
            Answer::Failed(_) if !answer.lease_exists() && !answer.lease_missing() => state.metrics.borrow_mut().cluster(service, "errors"),
            _ => {}
        }
        let now_s = CoarseClock.now_ms() / 1000;
        match waiting {
            Waiting::RateLimit => self.rate_limit_answer(state, &mut remote, answer.body()),
            Waiting::Grant { key, lease } => {
                if answer.lease_exists() || answer.body().is_some_and(cagate_core::lease_granted) {
                    state.leases.borrow_mut().add(&lease, now_s);
                    self.send_one_time(state, &mut remote, Waiting::Claim { key, lease, retried: true });
                } else {
                    log::warn!("cagate: cluster: etcd lease grant failed request_id={}", self.id());
                    record(&mut remote, cagate_core::claim_verdict(&key, None).err());
                }
            }
            Waiting::Claim { key, lease, retried } => {
                if answer.lease_missing() && !retried {
                    state.leases.borrow_mut().forget(&lease);
                    self.send_one_time(state, &mut remote, Waiting::Grant { key, lease });
                } else {
                    let verdict = cagate_core::claim_verdict(&key, answer.body());
                    if let Err(r) = &verdict {
                        let what = if r.error.code == errors::X503BZ.code { "refused_unavailable" } else { "replayed" };
                        state.metrics.borrow_mut().cluster("etcd", what);
                    }
                    record(&mut remote, verdict.err());
                }
            }
        }
        self.remote = Some(remote);
        let _ = self.finish_remote(state);
    }

    /// Once every answer is in: refuse, or admit and resume the request.
    fn finish_remote(&mut self, state: &State) -> Action {
        let Some(remote) = self.remote.take() else { return Action::Pause };
        if !remote.waiting.is_empty() {
            self.remote = Some(remote);
            return Action::Pause;
        }
        if let Some(r) = &remote.refusal {
            return self.refuse(state, r);
        }
        if let Some(mock) = state.gateway.mock_reply(remote.admission.identity.api) {
            return self.mock(state, mock);
        }
        let head = host::request_header_map();
        let Some(headers) = Headers::from_serialized(&head) else {
            return self.refuse_code(state, &errors::X500ER, "malformed header map from host");
        };
        let _ = self.admit(state, &headers, &remote.admission);
        if remote.quota.is_some() {
            self.quota = remote.quota;
        }
        if let Err(e) = hostcall::resume_request() {
            log::warn!("cagate: cannot resume request_id={} (host status {e})", self.id());
        }
        Action::Pause
    }
}

/// Keeps the first refusal: the request is refused once.
fn record(remote: &mut Remote, refusal: Option<Refusal>) {
    if remote.refusal.is_none() {
        remote.refusal = refusal;
    }
}
