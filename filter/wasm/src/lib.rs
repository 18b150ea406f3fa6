//! The proxy-wasm adapter: gathers the request through host calls, runs cagate-core, and applies the
//! decision (local reply, or identity headers for the backend). No policy lives here.

mod host;

use cagate_core::config::{compile, Gateway};
use cagate_core::errors::{self, ErrorCode};
use cagate_core::gate::{self, Admission, Refusal, Request, Routed, REQUEST_ID_HEADER};
use cagate_core::jwt::remote;
use cagate_core::upstream;
use cagate_core::plugins::{PluginKind, Runtime};
use cagate_core::headers::Headers;
use cagate_core::nonce::NonceStore;
use cagate_core::reply;
use cagate_core::reqid::RequestIds;
use cagate_core::store::{Clock, SharedStore};
use host::{CoarseClock, HostClock, HostStore, Metrics};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::cell::RefCell;
use std::rc::Rc;

/// How often each VM hands its counters to Envoy, refreshes its coarse clock and checks remote JWKS.
const TICK: std::time::Duration = std::time::Duration::from_millis(500);

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { state: None, fetches: Vec::new() }) });
}}

/// Everything a request needs, built once per configuration.
struct State {
    gateway: Gateway,
    runtime: RefCell<Runtime>,
    nonces: NonceStore,
    metrics: RefCell<Metrics>,
    ids: RefCell<RequestIds>,
}

struct Root {
    state: Option<Rc<State>>,
    /// Remote JWKS fetches in flight: call token -> plugin index.
    fetches: Vec<(u32, u32)>,
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _trailers: usize) {
        let Some(pos) = self.fetches.iter().position(|(t, _)| *t == token) else { return };
        let (_, idx) = self.fetches.swap_remove(pos);
        let Some(state) = self.state.clone() else { return };
        let Some(cagate_core::plugins::Plugin { name, .. }) = state.gateway.plugins.get(idx as usize) else { return };
        let status = self.get_http_call_response_header_bytes(":status");
        let body = self.get_http_call_response_body(0, body_size).unwrap_or_default();
        if status.as_deref() != Some(b"200") {
            let shown = status.map(|s| String::from_utf8_lossy(&s).into_owned()).unwrap_or_else(|| "no response".into());
            log::warn!("cagate: plugin {name}: JWKS fetch failed ({shown}); keeping the last good keys");
            return;
        }
        match remote::publish(&HostStore, name, HostClock.now_ms(), &body) {
            Ok(keys) => {
                log::info!("cagate: plugin {name}: JWKS loaded, {} key(s)", keys.len());
                if let Some(Some(js)) = state.runtime.borrow_mut().jwt.get_mut(idx as usize) {
                    js.remote_keys = Some(keys);
                    js.clear_cache();
                }
            }
            Err(e) => log::warn!("cagate: plugin {name}: JWKS refused ({e}); keeping the last good keys"),
        }
    }

    fn on_done(&mut self) -> bool {
        if let Some(state) = &self.state {
            state.metrics.borrow_mut().flush();
        }
        true
    }
}

impl Root {
    /// Installs a newer shared JWKS in this VM, and starts a fetch when one is due and this VM wins
    /// the lease.
    fn refresh_remote_keys(&mut self, state: &State) {
        for (idx, plugin) in state.gateway.plugins.iter().enumerate() {
            let PluginKind::Jwt(cfg) = &plugin.kind else { continue };
            let Some(r) = &cfg.remote else { continue };
            if let Some(Some(js)) = state.runtime.borrow_mut().jwt.get_mut(idx) {
                if let Some((cas, keys)) = remote::load_if_changed(&HostStore, &plugin.name, js.remote_cas) {
                    js.remote_cas = cas;
                    js.remote_keys = Some(keys);
                    js.clear_cache();
                }
            }
            if self.fetches.iter().any(|(_, i)| *i == idx as u32) || !remote::should_fetch(&HostStore, &plugin.name, r, HostClock.now_ms()) {
                continue;
            }
            let headers = vec![(":method", "GET"), (":path", r.path.as_str()), (":authority", r.authority.as_str()), ("accept", "application/json")];
            match self.dispatch_http_call(&r.cluster, headers, None, vec![], std::time::Duration::from_millis(r.timeout_ms)) {
                Ok(token) => self.fetches.push((token, idx as u32)),
                Err(e) => log::warn!("cagate: plugin {}: cannot fetch JWKS through cluster {} ({e:?})", plugin.name, r.cluster),
            }
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        if let Some(old) = &self.state {
            old.metrics.borrow_mut().flush();
        }
        let doc = self.get_plugin_configuration().unwrap_or_default();
        let gateway = match compile(&doc) {
            Ok(g) => g,
            Err(problems) => {
                log::error!("cagate: configuration refused, {} problem(s)", problems.len());
                for p in &problems {
                    log::error!("cagate: config: {p}");
                }
                return false;
            }
        };
        for w in &gateway.warnings {
            log::warn!("cagate: config: {w}");
        }
        let mut nonces = NonceStore::new(gateway.nonce_store);
        nonces.ensure(&HostStore, host::random_bytes());
        log::info!(
            "cagate: configured {} apps, {} apis, {} stages; nonce store {} shards",
            gateway.apps.len(),
            gateway.apis.len(),
            gateway.stages.len(),
            nonces.shard_count()
        );
        let seed = u64::from_le_bytes(host::random_bytes()[..8].try_into().unwrap_or([0; 8]));
        let cache_seed = host::random_bytes();
        let mut runtime = Runtime::new(
            &gateway.plugins,
            (
                u64::from_le_bytes(cache_seed[..8].try_into().unwrap_or([0; 8])),
                u64::from_le_bytes(cache_seed[8..].try_into().unwrap_or([0; 8])),
            ),
        );
        runtime.ensure(&HostStore, host::random_bytes());
        ensure_traffic_keys(&gateway);
        self.state = Some(Rc::new(State {
            runtime: RefCell::new(runtime),
            gateway,
            nonces,
            metrics: RefCell::new(Metrics::define()),
            ids: RefCell::new(RequestIds::new(seed)),
        }));
        host::refresh_coarse_clock();
        self.set_tick_period(TICK);
        true
    }

    fn on_tick(&mut self) {
        host::refresh_coarse_clock();
        let Some(state) = self.state.clone() else { return };
        state.metrics.borrow_mut().flush();
        self.refresh_remote_keys(&state);
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http {
            state: self.state.clone(),
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
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Http {
    state: Option<Rc<State>>,
    request_id: [u8; 36],
    /// The request's header map as the host serialized it, kept while the body is buffered.
    head: Vec<u8>,
    /// Routed, waiting for the body.
    pending: Option<Routed>,
    replied: bool,
    /// `RateLimit-*` values for the response, when the traffic plugin asks for them.
    quota: Option<cagate_core::traffic::Quota>,
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
}

struct Admitted {
    api: u32,
    stage: u32,
    app: Option<u32>,
    claims: Option<cagate_core::jwt::Claims>,
    breaker: Option<(u32, String, cagate_core::breaker::Pass)>,
}

impl Context for Http {}

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
        let out = reply::refusal(r, self.id());
        let headers: Vec<(&str, &str)> =
            out.headers.iter().map(|(n, v)| (n.as_ref(), v.as_str())).chain(self.cors.iter().map(|(n, v)| (*n, v.as_str()))).collect();
        self.send_http_response(out.status as u32, headers, Some(out.body.as_bytes()));
        self.replied = true;
        Action::Pause
    }

    /// Answers a CORS preflight (no authentication: browsers send none).
    fn preflight(&mut self) -> Action {
        let rid = self.request_id;
        let mut headers: Vec<(&str, &str)> = vec![(REQUEST_ID_HEADER, std::str::from_utf8(&rid).unwrap_or(""))];
        headers.extend(self.cors.iter().map(|(n, v)| (*n, v.as_str())));
        self.send_http_response(200, headers, None);
        self.replied = true;
        Action::Pause
    }

    fn refuse_code(&mut self, state: &State, error: &'static ErrorCode, cause: &'static str) -> Action {
        let r = Refusal::new(error, &[], cause);
        self.refuse(state, &r)
    }

    fn admit(&mut self, state: &State, head: &Headers<'_>, a: &Admission) -> Action {
        let rid = self.request_id;
        let identity = gate::identity_headers(&state.gateway, &a.identity);
        let edits: Vec<(&str, Option<&[u8]>)> = identity
            .iter()
            .map(|(n, v)| (*n, v.map(str::as_bytes)))
            .chain([(REQUEST_ID_HEADER, Some(&rid[..]))])
            .chain(a.edits.iter().map(|(n, v)| (n.as_str(), v.as_deref())))
            .collect();
        // One host call for all edits: the whole map, as received less what the gateway sets, plus
        // the gateway's headers. Measured cheaper than a call per header (each also clears Envoy's
        // route cache). Header names are tokens, so always UTF-8; the fallback is for form's sake.
        let kept: Option<Vec<(&str, &[u8])>> = head
            .iter()
            .filter(|(n, _)| !edits.iter().any(|(e, _)| e.as_bytes() == *n))
            .map(|(n, v)| std::str::from_utf8(n).ok().map(|n| (n, v)))
            .collect();
        match kept {
            Some(mut pairs) => {
                pairs.extend(edits.iter().filter_map(|(n, v)| v.map(|v| (*n, v))));
                self.set_http_request_headers_bytes(pairs);
            }
            None => {
                for (name, value) in edits {
                    self.set_http_request_header_bytes(name, value);
                }
            }
        }
        state.metrics.borrow_mut().allowed();
        if let (Some(start), Some(app)) = (self.debug_start, a.identity.app.and_then(|i| state.gateway.app(i))) {
            self.debug_info = Some(debug_info(&state.gateway, a, &app.id, host::now_nanos().saturating_sub(start)));
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
    fn decide(&mut self, state: &State, routed: Routed, body: Option<&[u8]>) -> Action {
        let head_buf = std::mem::take(&mut self.head);
        let Some(headers) = Headers::from_serialized(&head_buf) else {
            return self.refuse_code(state, &errors::X500ER, "malformed header map from host");
        };
        let req = request(&headers);
        let rid = self.request_id;
        let peer = || proxy_wasm::hostcalls::get_property(vec!["source", "address"]).ok().flatten();
        let ctx = gate::Ctx { request_id: std::str::from_utf8(&rid).unwrap_or(""), body, peer: &peer, coarse: &CoarseClock };
        let admitted = gate::authenticate(&state.gateway, &state.nonces, &req, &routed, body, &CoarseClock, &HostStore)
            .and_then(|id| gate::run_plugins(&state.gateway, &mut state.runtime.borrow_mut(), &req, id, &HostClock, &HostStore, &ctx));
        match admitted {
            Ok(a) => self.admit(state, &headers, &a),
            Err(r) => self.refuse(state, &r),
        }
    }
}

/// Creates the API-dimension counters of trafficControl before traffic arrives: Envoy cannot create a
/// key only if it is absent, so two workers creating one at the same moment could lose a count.
fn ensure_traffic_keys(gw: &Gateway) {
    for api in &gw.apis {
        for (_, bound) in &api.plugins {
            if let Some(PluginKind::Traffic(cfg)) = bound.traffic.and_then(|i| gw.plugins.get(i as usize)).map(|p| &p.kind) {
                let key = cagate_core::traffic::api_key(cfg, &api.name);
                if HostStore.get(&key).is_none() {
                    let _ = HostStore.set(&key, &[0u8; 16], 0);
                }
            }
        }
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
            let out = reply::refusal(&r, self.id());
            let headers: Vec<(&str, &str)> = out.headers.iter().map(|(n, v)| (n.as_ref(), v.as_str())).collect();
            self.send_http_response(out.status as u32, headers, Some(out.body.as_bytes()));
            self.replied = true;
            return Action::Pause;
        };
        self.request_id = state.ids.borrow_mut().next_id();
        self.head = host::request_header_map();
        let routed = {
            let Some(headers) = Headers::from_serialized(&self.head) else {
                return self.refuse_code(&state, &errors::X500ER, "malformed header map from host");
            };
            let req = request(&headers);
            if headers.get(b"x-ca-request-mode").map(cagate_core::params::trim) == Some(b"debug") {
                self.debug_start = Some(host::now_nanos());
            }
            let routed = gate::route(&state.gateway, &req);
            if let Ok(r) = &routed {
                self.cors = gate::cors_headers(&state.gateway, r, &req);
            }
            routed
        };
        match routed {
            Err(r) => self.refuse(&state, &r),
            Ok(routed) if routed.preflight => self.preflight(),
            Ok(routed) if routed.needs_body && !end_of_stream => {
                self.pending = Some(routed);
                Action::Pause
            }
            Ok(routed) => {
                let body: Option<&[u8]> = if routed.needs_body { Some(&[]) } else { None };
                self.decide(&state, routed, body)
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let (Some(state), Some(routed)) = (self.state.clone(), self.pending) else {
            return Action::Continue;
        };
        if body_size as u64 > state.gateway.max_body_bytes {
            self.pending = None;
            return self.refuse_code(&state, &errors::I413RL, "body over maxBodyBytes");
        }
        if !end_of_stream {
            return Action::Pause; // keep buffering
        }
        self.pending = None;
        let body = self.get_http_request_body(0, body_size).unwrap_or_default();
        self.decide(&state, routed, Some(&body))
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if self.replied {
            return Action::Continue; // our own local reply carries everything already
        }
        let Some(state) = self.state.clone() else { return Action::Continue };
        let status: u16 = self
            .get_http_response_header_bytes(":status")
            .and_then(|s| std::str::from_utf8(&s).ok()?.parse().ok())
            .unwrap_or(0);
        let mut gateway_code: Option<&'static ErrorCode> = None;
        if self.pending.is_some() && status == 413 {
            // Envoy's own buffer limit fired while we waited for the body: answer in our contract.
            gateway_code = Some(&errors::I413RL);
            self.set_http_response_header_bytes(reply::ERROR_CODE_HEADER, Some(errors::I413RL.code.as_bytes()));
            self.set_http_response_header_bytes(reply::ERROR_MESSAGE_HEADER, Some(errors::I413RL.message.as_bytes()));
        } else if status >= 500 && self.get_http_response_header_bytes(reply::ERROR_CODE_HEADER).is_none() {
            let details = self.get_property(vec!["response", "code_details"]).unwrap_or_default();
            if let Some((code, reason)) = upstream::map_local_reply(&details) {
                gateway_code = Some(code);
                self.answer_backend_failure(&state, code, &reason, end_of_stream);
            }
        }
        self.report_to_breaker(&state, status);
        let mapping = self.admitted.as_ref().and_then(|a| state.gateway.bound(a.api, a.stage).mapping);
        let mut action = Action::Continue;
        if let (Some(idx), None) = (mapping, gateway_code) {
            if let Some(PluginKind::Mapping(cfg)) = state.gateway.plugins.get(idx as usize).map(|p| &p.kind) {
                let json = self
                    .get_http_response_header_bytes("content-type")
                    .is_some_and(|ct| cagate_core::params::starts_with_ignore_case(cagate_core::params::trim(&ct), b"application/json"));
                let fits = self
                    .get_http_response_header_bytes("content-length")
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
            self.set_http_response_body(0, body_size, body.as_bytes());
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
        let body = self.get_http_response_body(0, body_size).unwrap_or_default();
        let doc: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
        self.apply_mapping(&state, cfg, status, doc.as_ref());
        Action::Continue
    }
}

fn debug_info(gw: &Gateway, a: &Admission, app_id: &str, elapsed_ns: u64) -> String {
    let b = gw.bound(a.identity.api, a.identity.stage);
    let plugins: Vec<String> = [b.ip, b.basic, b.jwt, b.access, b.traffic, b.breaker, b.backend, b.mapping, b.cors]
        .iter()
        .flatten()
        .filter_map(|i| gw.plugins.get(*i as usize))
        .map(|p| format!("{}/{}", p.type_name, p.name))
        .collect();
    let api = gw.api(a.identity.api).map_or("", |x| x.name.as_str());
    let stage = gw.stages.get(a.identity.stage as usize).map_or("", String::as_str);
    let text = format!("api={api};stage={stage};app={app_id};plugins={};filterMicros={}", plugins.join(","), elapsed_ns / 1000);
    cagate_core::sign::header_safe(text.as_bytes())
}

impl Http {
    fn add_response_headers(&mut self) {
        let rid = self.request_id;
        self.set_http_response_header_bytes(REQUEST_ID_HEADER, Some(&rid));
        if let Some(q) = self.quota {
            for (name, value) in q.headers() {
                self.set_http_response_header_bytes(name, Some(value.as_bytes()));
            }
        }
        for (name, value) in std::mem::take(&mut self.cors) {
            self.set_http_response_header_bytes(name, Some(value.as_bytes()));
        }
        if let Some(info) = self.debug_info.take() {
            self.set_http_response_header_bytes("x-ca-debug-info", Some(info.as_bytes()));
        }
    }

    /// Envoy answered because the backend failed: the client gets the gateway contract.
    fn answer_backend_failure(&mut self, state: &State, code: &'static ErrorCode, reason: &str, end_of_stream: bool) {
        let r = Refusal { message: upstream::message(code, reason), ..Refusal::new(code, &[], "backend failure") };
        log::debug!("cagate: backend failure request_id={} code={} detail={reason}", self.id(), code.code);
        state.metrics.borrow_mut().refused(code.code);
        let out = reply::refusal(&r, self.id());
        self.set_http_response_header_bytes(":status", Some(out.status.to_string().as_bytes()));
        self.set_http_response_header_bytes("content-length", None);
        for (name, value) in &out.headers {
            if name != REQUEST_ID_HEADER {
                self.set_http_response_header_bytes(name, Some(value.as_bytes()));
            }
        }
        if !end_of_stream {
            self.rewrite_body = Some(out.body);
        }
    }

    fn report_to_breaker(&mut self, state: &State, status: u16) {
        let Some((idx, key, pass)) = self.admitted.as_mut().and_then(|a| a.breaker.take()) else { return };
        let Some(PluginKind::Breaker(cfg)) = state.gateway.plugins.get(idx as usize).map(|p| &p.kind) else { return };
        if cagate_core::breaker::record(cfg, &key, pass, status >= 500, HostClock.now_ms(), &HostStore) {
            log::warn!("cagate: circuit breaker {} opened for {key}", cfg.plugin);
            state.metrics.borrow_mut().breaker_opened();
        }
    }

    fn apply_mapping(&mut self, state: &State, cfg: &cagate_core::mapping::MappingConfig, status: u16, body: Option<&serde_json::Value>) {
        let Some(adm) = &self.admitted else { return };
        let headers = |name: &str| {
            proxy_wasm::hostcalls::get_map_value_bytes(proxy_wasm::types::MapType::HttpResponseHeaders, name)
                .ok()
                .flatten()
                .map(|v| String::from_utf8_lossy(&v).into_owned())
        };
        let gw = &state.gateway;
        let rid = self.id().to_string();
        let system = |name: &str| match name {
            "CaAppId" => adm.app.and_then(|a| gw.app(a)).map(|a| a.id.clone()),
            "CaApiName" => gw.api(adm.api).map(|a| a.name.clone()),
            "CaStage" => gw.stages.get(adm.stage as usize).cloned(),
            "CaRequestId" => Some(rid.clone()),
            _ => None,
        };
        let response = cagate_core::mapping::Response {
            status,
            headers: &headers,
            error_code: None,
            body,
            claims: adm.claims.as_deref(),
            system: &system,
        };
        if let Some((new_status, message)) = cagate_core::mapping::apply(cfg, &response) {
            self.set_http_response_header_bytes(":status", Some(new_status.to_string().as_bytes()));
            if let Some(m) = message {
                self.set_http_response_header_bytes(reply::ERROR_MESSAGE_HEADER, Some(m.as_bytes()));
            }
        }
    }
}
