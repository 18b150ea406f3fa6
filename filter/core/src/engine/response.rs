//! One request's life in the engine, response side: who answered (the backend, or Envoy in its place),
//! the gateway's contract on Envoy's answers and never on the backend's, the circuit breaker's count,
//! errorMapping (holding the body when it must read it), and the headers every response carries.

use super::exchange::Exchange;
use super::{Engine, Flow, Services, Stat, StreamIo};
use crate::config::model::Gateway;
use crate::contract::backend_failure::{self, Answered};
use crate::contract::errors::ErrorCode;
use crate::contract::names::{ERROR_CODE_HEADER, ERROR_MESSAGE_HEADER, REQUEST_ID_HEADER};
use crate::contract::refusal::Refusal;
use crate::contract::reply::refusal as reply_for;
use crate::plugins::binding::PluginKind;
use crate::plugins::circuit_breaker;
use crate::plugins::error_mapping::{self, MappingConfig};
use crate::plugins::transformer;
use crate::wire::headers::Headers;

impl Exchange {
    pub fn on_response_headers(&mut self, engine: &Engine, svc: &Services<'_>, io: &dyn StreamIo, end_of_stream: bool) -> Flow {
        if self.replied {
            return Flow::Continue; // our own local reply carries everything already
        }
        let gw = &engine.gateway;
        let map = io.response_headers();
        let head = Headers::from_serialized(&map);
        let header = |name: &str| head.as_ref().and_then(|h| h.get(name.as_bytes()));
        let status: u16 = header(":status").and_then(|s| std::str::from_utf8(s).ok()?.parse().ok()).unwrap_or(0);
        // Only the gateway says X-Ca-Error-*: a backend's own copies never reach the client. Removed
        // when there (a map that did not parse: removed blindly).
        let forged = head.is_none() || header(ERROR_CODE_HEADER).is_some() || header(ERROR_MESSAGE_HEADER).is_some();
        let id_sent = head.is_none() || header(REQUEST_ID_HEADER).is_some();
        let mut gateway_code: Option<&'static ErrorCode> = None;
        let backend_failed = if status < 400 {
            if forged {
                strip_error_headers(io);
            }
            false
        } else {
            match backend_failure::answered_by(&io.response_details(), status, self.request_sent()) {
                Answered::Backend { failed } => {
                    if forged {
                        strip_error_headers(io);
                    }
                    failed
                }
                Answered::Envoy { code, backend_failed } => {
                    // A code already there was set by the Envoy configuration (cagate import's routes).
                    if let (Some((code, reason)), None) = (code, header(ERROR_CODE_HEADER)) {
                        gateway_code = Some(code);
                        self.answer_backend_failure(engine, svc, io, code, &reason, end_of_stream);
                    }
                    backend_failed
                }
            }
        };
        self.report_to_breaker(engine, svc, backend_failed);
        if self.replied {
            return Flow::Pause; // replaced whole by the gateway's reply (concluded then)
        }
        let mapping = self.admitted.as_ref().and_then(|a| gw.bound(a.api, a.stage).error_mapping);
        let mut flow = Flow::Continue;
        // The status errorMapping set, when it ran here.
        let mut mapped_status = None;
        if let (Some(idx), None) = (mapping, gateway_code) {
            if let Some(PluginKind::ErrorMapping(cfg)) = gw.plugins.get(idx.index()).map(|p| &p.kind) {
                let json = crate::wire::url::is_json(header("content-type"));
                let fits =
                    header("content-length").and_then(|l| std::str::from_utf8(l).ok()?.parse::<usize>().ok()).is_none_or(|l| l <= cfg.max_body);
                if cfg.reads_body() && !end_of_stream && json && fits {
                    // Held until the body is in: the status may still change.
                    self.error_mapping = Some((idx, status));
                    flow = Flow::Pause;
                } else {
                    mapped_status = self.apply_mapping(engine, io, cfg, status, None);
                    if mapped_status.is_some() {
                        self.fill = None; // the client gets another answer than the backend's
                    }
                }
            }
        }
        if flow == Flow::Continue {
            let status = match gateway_code {
                Some(c) => c.status,
                None => self.transform_response(gw, io, head.as_ref(), mapped_status.unwrap_or(status)),
            };
            self.conclude(gw, svc, io, status);
        }
        if self.fill.is_some() {
            self.cache_response_head(engine, svc, io, head.as_ref().filter(|_| gateway_code.is_none()), end_of_stream);
        }
        self.add_response_headers(io, id_sent, head.as_ref());
        flow
    }

    pub fn on_response_body(&mut self, engine: &Engine, svc: &Services<'_>, io: &dyn StreamIo, body_size: usize, end_of_stream: bool) -> Flow {
        let held = self.error_mapping.is_some();
        let flow = self.response_body_event(engine, svc, io, body_size, end_of_stream);
        // Frames errorMapping holds are read for the cache when it releases them, all at once.
        if self.fill.is_some() && !(held && flow == Flow::Pause) {
            self.cache_response_body(engine, svc, io, body_size, end_of_stream);
        }
        flow
    }

    fn response_body_event(&mut self, engine: &Engine, svc: &Services<'_>, io: &dyn StreamIo, body_size: usize, end_of_stream: bool) -> Flow {
        if self.rewrite_body.is_some() {
            if !end_of_stream {
                return Flow::Pause;
            }
            let body = self.rewrite_body.take().unwrap_or_default();
            io.set_response_body(body_size, body.as_bytes());
            return Flow::Continue;
        }
        let Some((idx, status)) = self.error_mapping else { return Flow::Continue };
        let Some(PluginKind::ErrorMapping(cfg)) = engine.gateway.plugins.get(idx.index()).map(|p| &p.kind) else {
            return Flow::Continue;
        };
        if body_size > cfg.max_body {
            self.error_mapping = None; // larger than announced: stream it through untouched
            let status = self.transform_held(&engine.gateway, io, status);
            self.conclude(&engine.gateway, svc, io, status);
            return Flow::Continue;
        }
        if !end_of_stream {
            return Flow::Pause;
        }
        self.error_mapping = None;
        let body = io.response_body(body_size);
        let doc: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
        let mapped = self.apply_mapping(engine, io, cfg, status, doc.as_ref());
        if mapped.is_some() {
            self.fill = None;
        }
        let status = self.transform_held(&engine.gateway, io, mapped.unwrap_or(status));
        self.conclude(&engine.gateway, svc, io, status);
        Flow::Continue
    }

    /// The gateway's response headers; its request id replaces one the backend sent (`id_sent`), and
    /// CORS's `Vary: Origin` goes after the backend's `Vary` values (`head`: the backend's headers).
    fn add_response_headers(&mut self, io: &dyn StreamIo, id_sent: bool, head: Option<&Headers<'_>>) {
        let rid = self.request_id;
        if id_sent {
            io.set_response_header(REQUEST_ID_HEADER, Some(&rid));
        } else {
            io.add_response_header(REQUEST_ID_HEADER, &rid);
        }
        if let Some(q) = self.quota {
            for (name, value) in q.headers() {
                io.set_response_header(name, Some(value.as_bytes()));
            }
        }
        for (name, value) in std::mem::take(&mut self.cors) {
            if name == crate::plugins::cors::VARY {
                let vary = head.map(|h| h.spellings(crate::plugins::cors::VARY.as_bytes()));
                if !crate::plugins::cors::varies_on_origin(vary.into_iter().flatten()) {
                    io.add_response_header(name, value.as_bytes());
                }
            } else {
                io.set_response_header(name, Some(value.as_bytes()));
            }
        }
        if let Some(info) = self.debug_info.take() {
            io.set_response_header("x-ca-debug-info", Some(info.as_bytes()));
        }
    }

    /// The transformer bound to the admitted request's API in its stage.
    fn transformer<'g>(&self, gw: &'g Gateway) -> Option<&'g transformer::TransformerConfig> {
        let idx = self.admitted.as_ref().and_then(|a| gw.bound(a.api, a.stage).transformer)?;
        match gw.plugins.get(idx.index()).map(|p| &p.kind) {
            Some(PluginKind::Transformer(cfg)) => Some(cfg),
            _ => None,
        }
    }

    /// The transformer's response edits on the backend's answer (after errorMapping, as Aliyun orders
    /// them; never on an answer the gateway made); the status the client gets.
    fn transform_response(&self, gw: &Gateway, io: &dyn StreamIo, head: Option<&Headers<'_>>, status: u16) -> u16 {
        let Some(cfg) = self.transformer(gw) else { return status };
        let (edits, new_status) = transformer::response(cfg, head);
        for (name, value) in &edits {
            io.set_response_header(name, value.as_deref());
        }
        match new_status {
            Some(s) if s != status => {
                io.set_response_header(":status", Some(s.to_string().as_bytes()));
                s
            }
            _ => status,
        }
    }

    /// `transform_response` for a response held for errorMapping: its headers read again (the held
    /// headers are still the host's to edit).
    fn transform_held(&self, gw: &Gateway, io: &dyn StreamIo, status: u16) -> u16 {
        if self.transformer(gw).is_none() {
            return status;
        }
        let map = io.response_headers();
        self.transform_response(gw, io, Headers::from_serialized(&map).as_ref(), status)
    }

    /// Envoy answered because the backend failed (or for a reason of its own): the client gets the
    /// gateway contract.
    fn answer_backend_failure(
        &mut self,
        engine: &Engine,
        svc: &Services<'_>,
        io: &dyn StreamIo,
        code: &'static ErrorCode,
        reason: &str,
        end_of_stream: bool,
    ) {
        let host = self.admitted.as_ref().and_then(|a| engine.gateway.backend_host(a.api, a.stage));
        let r = Refusal { message: backend_failure::message(code, reason, host), ..Refusal::new(code, &[], "backend failure") };
        log::debug!("cagate: backend failure request_id={} code={} detail={reason}", self.request_id(), code.code);
        svc.stats.record(Stat::BackendFailure(code.code));
        self.record.error = Some((code.code, r.message.clone()));
        let out = reply_for(&r, self.request_id(), engine.gateway.error_contract);
        self.record.not_enforced = false; // the error recorded is the one the client got
        if end_of_stream {
            // A reply with no body (Envoy's own, say cluster_not_found) cannot be given one from
            // here: it is replaced whole, before anything of it went downstream.
            let headers: Vec<(&str, &str)> = out.headers.iter().map(|(n, v)| (n.as_ref(), v.as_str())).collect();
            self.conclude(&engine.gateway, svc, io, out.status);
            let _ = self.reply(io, out.status, &headers, out.body.as_bytes());
            return;
        }
        io.set_response_header(":status", Some(out.status.to_string().as_bytes()));
        io.set_response_header("content-length", None);
        for (name, value) in &out.headers {
            if name != REQUEST_ID_HEADER {
                io.set_response_header(name, Some(value.as_bytes()));
            }
        }
        self.rewrite_body = Some(out.body);
    }

    /// `failed`: the backend was reached and failed (its 5xx, or a connection, TLS, timeout or reset
    /// failure); answers Envoy made without reaching it never count.
    fn report_to_breaker(&mut self, engine: &Engine, svc: &Services<'_>, failed: bool) {
        let Some((idx, key, pass)) = self.admitted.as_mut().and_then(|a| a.breaker.take()) else { return };
        let Some(PluginKind::Breaker(cfg)) = engine.gateway.plugins.get(idx.index()).map(|p| &p.kind) else { return };
        if circuit_breaker::record(cfg, &key, pass, failed, svc.clock.now_ms(), svc.store) {
            log::warn!("cagate: circuit breaker {} opened for {key}", cfg.plugin);
            svc.stats.record(Stat::BreakerOpened);
        }
    }

    /// errorMapping on a backend response; the new status, if it mapped it.
    fn apply_mapping(
        &mut self,
        engine: &Engine,
        io: &dyn StreamIo,
        cfg: &MappingConfig,
        status: u16,
        body: Option<&serde_json::Value>,
    ) -> Option<u16> {
        // A condition on the body says nothing of a body that was not read as JSON (another type, too
        // large, none, not JSON): its fields would all be null, and `null <> 'OK'` holds.
        if cfg.condition_reads_body && body.is_none() {
            return None;
        }
        let adm = self.admitted.as_ref()?;
        let seen = crate::plugins::system::Seen::Captured(&adm.captured);
        let system = crate::request::vars::known(&engine.gateway, (adm.api, adm.stage, adm.app), seen, io, self.request_id());
        let response = error_mapping::Response { status, stream: io, body, claims: adm.claims.as_deref(), system: &system };
        let (new_status, message) = error_mapping::apply(cfg, &response)?;
        io.set_response_header(":status", Some(new_status.to_string().as_bytes()));
        if let Some(m) = message {
            io.set_response_header(ERROR_MESSAGE_HEADER, Some(m.as_bytes()));
        }
        Some(new_status)
    }
}

/// Removes a backend's `X-Ca-Error-Code` and `X-Ca-Error-Message`.
fn strip_error_headers(io: &dyn StreamIo) {
    io.set_response_header(ERROR_CODE_HEADER, None);
    io.set_response_header(ERROR_MESSAGE_HEADER, None);
}
