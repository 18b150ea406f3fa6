//! One request's life in the engine, request side: route on the headers, wait for the body when a
//! check needs it (trailers end it too), authenticate and admit, wait for cluster-mode checks, then
//! answer locally (refusal, preflight, mock) or forward with the gateway's header edits.

use super::cluster_checks::{Answer, ClusterChecks};
use super::record::{self, AuthKind, Record};
use super::{Engine, Flow, Services, Stat, StreamIo};
use crate::config::backend::MockBackend;
use crate::config::model::{AuthType, Gateway};
use crate::contract::errors::{self, ErrorCode};
use crate::contract::names::REQUEST_ID_HEADER;
use crate::contract::refusal::Refusal;
use crate::contract::reply::refusal as reply_for;
use crate::plugins::circuit_breaker::Pass;
use crate::plugins::traffic_control::Quota;
use crate::request::admit::{debug_info, identity_headers, run_plugins};
use crate::request::authenticate::{authenticate, claim_nonce, Nonces};
use crate::request::forward;
use crate::request::model::{Admission, Ctx, Identity, Request, Routed};
use crate::request::route::{bounded_form, cors_headers, reachable, route};
use crate::wire::headers::{owned_spellings, Edit, Headers};
use crate::wire::url::trim;

/// The code a request is counted under when no response reached the client through the filter.
pub(crate) const NO_RESPONSE: &str = "NO_RESPONSE";
/// `Record::filter_us` of a request whose stream ended before the gateway decided.
pub(crate) const UNDECIDED: i64 = -1;

/// What the response phase needs to know about an admitted request.
#[derive(Debug)]
pub(super) struct Admitted {
    pub(super) api: crate::ids::ApiId,
    pub(super) stage: crate::ids::StageId,
    pub(super) app: Option<crate::ids::AppId>,
    pub(super) claims: Option<crate::plugins::jwt::Claims>,
    pub(super) breaker: Option<(crate::ids::PluginId, String, crate::plugins::circuit_breaker::Pass)>,
    /// What the bound errorMapping reads of the request itself (`System:CaDomain`, …), kept for the
    /// response phase: empty (no allocation) when none is bound or it reads none.
    pub(super) captured: Vec<(crate::plugins::system::SystemValue, String)>,
}

/// The state of one request (and its response) in the engine.
#[derive(Debug)]
pub struct Exchange {
    pub(super) request_id: [u8; 36],
    /// The request's header map as the host serialized it, kept while the body is awaited.
    head: Vec<u8>,
    /// Routed, waiting for the body.
    pending: Option<Routed>,
    /// Cluster mode: admitted locally, waiting for the cluster-mode checks.
    checks: Option<ClusterChecks>,
    /// remoteAuth: admitted locally, waiting for the authentication service's answer.
    pub(super) remote: Option<super::remote_checks::RemoteWait>,
    /// The gateway answered (a local reply): the stream is the host's.
    pub(super) replied: bool,
    /// The client sent its whole request (headers, body, trailers).
    request_ended: bool,
    /// `RateLimit-*` values for the response, when the traffic plugin asks for them.
    pub(super) quota: Option<Quota>,
    /// CORS headers for the response (an allowed browser origin on an API with a cors plugin).
    pub(super) cors: Vec<(&'static str, String)>,
    pub(super) admitted: Option<Admitted>,
    /// The gateway's own body for a backend failure Envoy answered (replaces Envoy's text).
    pub(super) rewrite_body: Option<String>,
    /// errorMapping waiting for the backend's JSON body: (plugin index, backend status).
    pub(super) error_mapping: Option<(crate::ids::PluginId, u16)>,
    /// caching: the backend's answer being copied for the cache.
    pub(super) fill: Option<Box<super::caching::Fill>>,
    /// Debug mode asked for (`X-Ca-Request-Mode: debug`); then the X-Ca-Debug-Info value.
    debug: bool,
    /// The access record, published once (`conclude`).
    pub(super) record: Record,
    concluded: bool,
    pub(super) debug_info: Option<String>,
    /// Report-only (the gateway's or the API's): a refusal is recorded and counted, and the request
    /// goes on.
    report_only: bool,
    /// The adapter's id of this stream (`set_stream`): batch answers name it.
    stream: u32,
    /// The circuit breaker's half-open trial this request holds until it is forwarded: (plugin, key,
    /// start). Given back if the request ends any other way, so the next request is the trial.
    trial: Option<(crate::ids::PluginId, String, i64)>,
}

fn request<'a>(h: &'a Headers<'a>) -> Request<'a> {
    Request::new(h.get(b":method").unwrap_or_default(), h.get(b":path").unwrap_or_default(), h)
}

impl Exchange {
    pub(super) fn new(request_id: [u8; 36]) -> Exchange {
        Exchange {
            request_id,
            head: Vec::new(),
            pending: None,
            checks: None,
            remote: None,
            replied: false,
            request_ended: false,
            quota: None,
            cors: Vec::new(),
            admitted: None,
            rewrite_body: None,
            error_mapping: None,
            fill: None,
            debug: false,
            record: Record::default(),
            concluded: false,
            debug_info: None,
            report_only: false,
            stream: 0,
            trial: None,
        }
    }

    pub fn request_id(&self) -> &str {
        std::str::from_utf8(&self.request_id).unwrap_or("")
    }

    /// The request was answered by the gateway or sent on to the backend: nothing may answer it again.
    pub fn decided(&self) -> bool {
        self.replied || self.admitted.is_some()
    }

    /// No valid configuration ever loaded: every request is refused rather than let through unchecked.
    pub fn refuse_unconfigured(request_id: [u8; 36], io: &dyn StreamIo) -> Flow {
        let mut x = Exchange::new(request_id);
        let r = Refusal::new(&errors::X500AM, &[], "no configuration");
        let out = reply_for(&r, x.request_id(), errors::ErrorContract::Vpc);
        let headers: Vec<(&str, &str)> = out.headers.iter().map(|(n, v)| (n.as_ref(), v.as_str())).collect();
        x.reply(io, out.status, &headers, out.body.as_bytes())
    }

    /// The request's outcome, once: its access record published as filter state (one host call),
    /// the request counted by API, stage and code (`OK`: no gateway code), the filter's time recorded.
    pub(super) fn conclude(&mut self, gw: &Gateway, svc: &Services<'_>, io: &dyn StreamIo, status: u16) {
        if self.concluded {
            return;
        }
        self.concluded = true;
        if let Some((idx, key, started)) = self.trial.take() {
            if let Some(crate::plugins::binding::PluginKind::Breaker(cfg)) = gw.plugins.get(idx.index()).map(|p| &p.kind) {
                crate::plugins::circuit_breaker::give_back(cfg, &key, started, svc.clock.now_ms(), svc.store);
            }
        }
        self.measure(svc);
        self.record.status = status;
        // The code the client got: none when a report-only refusal let the request go on.
        let code = match &self.record.error {
            Some((c, _)) if !self.record.not_enforced => c,
            _ if status == 0 => NO_RESPONSE,
            _ => "OK",
        };
        let api = self.record.api.and_then(|a| gw.api(a).map(|x| (a, x.name.as_str())));
        let stage = self.record.stage.and_then(|s| gw.stages.get(s.index()).map(|x| (s, x.as_str())));
        let app = if gw.metrics.per_app { self.record.app.and_then(|a| gw.app(a).map(|x| (a, x.id.as_str()))) } else { None };
        svc.stats.record(Stat::Request { api, stage, app, max_apps: gw.metrics.max_apps, code });
        if self.record.filter_us != UNDECIDED {
            svc.stats.record(Stat::FilterMicros(self.record.filter_us.max(0) as u64));
        }
        if gw.access_record {
            self.record.publish(gw, self.request_id(), |json| io.set_filter_state("cagate", json));
        }
    }

    /// The stream ended. A request that got no response through the filter (the client went away
    /// while its request waited on the backend or a check, or the stream was reset) is concluded
    /// here, so that it is counted and recorded too: status 0, as in Envoy's own access log, and the
    /// code `NO_RESPONSE`.
    pub fn on_stream_done(&mut self, engine: &Engine, svc: &Services<'_>, io: &dyn StreamIo) {
        if self.concluded || self.record.started_us == 0 {
            return;
        }
        if self.record.filter_us == 0 {
            // No decision was made (the body, a check or remoteAuth still awaited): the time until
            // the client left is not the gateway's.
            self.record.filter_us = UNDECIDED;
        }
        // Forwarded as the breaker's trial, but no answer will come to report.
        if let Some((idx, key, Pass::Trial(started))) = self.admitted.as_mut().and_then(|a| a.breaker.take()) {
            self.trial = Some((idx, key, started));
        }
        self.conclude(&engine.gateway, svc, io, 0);
    }

    /// The filter's time for the request: from its headers to the decision (measured once).
    fn measure(&mut self, svc: &Services<'_>) {
        if self.record.filter_us == 0 && self.record.started_us != 0 {
            self.record.filter_us = svc.clock.now_us().saturating_sub(self.record.started_us).max(1);
        }
    }

    /// The request is held: its decision is pending (body, cluster-mode checks) or the gateway answered. No
    /// request callback may let it continue then: continuing from a later callback would also release
    /// the headers the filter holds.
    fn holds_request(&self) -> bool {
        self.pending.is_some() || self.checks.is_some() || self.remote.is_some() || self.replied
    }

    /// The whole request went on to the backend: it ended, and the gateway let it through.
    pub(super) fn request_sent(&self) -> bool {
        self.request_ended && self.admitted.is_some()
    }

    pub fn on_request_headers(&mut self, engine: &Engine, svc: &Services<'_>, io: &dyn StreamIo, end_of_stream: bool) -> Flow {
        self.request_ended = end_of_stream;
        self.record.started_us = svc.clock.now_us();
        let gw = &engine.gateway;
        self.report_only = gw.report_only;
        let head = io.request_headers();
        let Some(headers) = Headers::from_serialized(&head) else {
            return self.refuse_code(gw, svc, io, &errors::X500ER, "malformed header map from host");
        };
        let req = request(&headers);
        self.debug = headers.get(b"x-ca-request-mode").map(trim) == Some(b"debug");
        // The path without its query: a query may carry an AppCode or a token.
        if gw.access_record {
            let key = headers.get(b"x-ca-key").map(trim);
            self.record.client(req.method, req.raw_path, headers.get(b"x-request-id"), headers.get(b"x-ca-nonce"), key);
        }
        let routed = match route(gw, &req) {
            Ok(r) => r,
            Err(r) => return self.refuse(gw, svc, io, &r),
        };
        self.record.api = Some(routed.api);
        self.record.stage = Some(routed.stage);
        self.report_only |= gw.api(routed.api).is_some_and(|a| a.report_only);
        self.cors = cors_headers(gw, &routed, &req);
        if routed.preflight {
            return self.preflight(gw, svc, io);
        }
        if routed.needs_body && !end_of_stream {
            drop(headers);
            self.head = head;
            self.pending = Some(routed);
            return Flow::Pause;
        }
        let body: Option<&[u8]> = if routed.needs_body { Some(&[]) } else { None };
        self.decide(engine, svc, io, &req, routed, body)
    }

    pub fn on_request_body(&mut self, engine: &Engine, svc: &Services<'_>, io: &dyn StreamIo, body_size: usize, end_of_stream: bool) -> Flow {
        self.request_ended |= end_of_stream;
        if self.pending.is_none() {
            return if self.holds_request() { Flow::Pause } else { Flow::Continue };
        }
        let gw = &engine.gateway;
        if body_size as u64 > gw.max_body_bytes {
            self.pending = None;
            return self.refuse_code(gw, svc, io, &errors::I413RL, "body over maxBodyBytes");
        }
        if !end_of_stream {
            return Flow::Pause; // keep buffering
        }
        self.decide_with_body(engine, svc, io)
    }

    /// Trailers end the request: a body still awaited is complete now, and is decided on like one
    /// that ended with its last data frame.
    pub fn on_request_trailers(&mut self, engine: &Engine, svc: &Services<'_>, io: &dyn StreamIo) -> Flow {
        self.request_ended = true;
        if self.pending.is_none() {
            return if self.holds_request() { Flow::Pause } else { Flow::Continue };
        }
        self.decide_with_body(engine, svc, io)
    }

    /// Decides a request whose body is complete.
    fn decide_with_body(&mut self, engine: &Engine, svc: &Services<'_>, io: &dyn StreamIo) -> Flow {
        let Some(routed) = self.pending.take() else { return Flow::Continue };
        let gw = &engine.gateway;
        let limit = usize::try_from(gw.max_body_bytes).unwrap_or(usize::MAX);
        let body = io.request_body(limit.saturating_add(1));
        if body.len() > limit {
            return self.refuse_code(gw, svc, io, &errors::I413RL, "body over maxBodyBytes");
        }
        let head = std::mem::take(&mut self.head);
        let Some(headers) = Headers::from_serialized(&head) else {
            return self.refuse_code(gw, svc, io, &errors::X500ER, "malformed header map from host");
        };
        self.decide(engine, svc, io, &request(&headers), routed, Some(&body))
    }

    /// Authenticates with the head and, if needed, the body; then replies, admits, or sends the
    /// cluster-mode checks.
    fn decide(&mut self, engine: &Engine, svc: &Services<'_>, io: &dyn StreamIo, req: &Request<'_>, routed: Routed, body: Option<&[u8]>) -> Flow {
        let gw = &engine.gateway;
        let headers = req.headers;
        let rid = self.request_id;
        let ctx = Ctx { request_id: std::str::from_utf8(&rid).unwrap_or(""), body, stream: io, coarse: svc.coarse };
        self.record.auth = gw.api(routed.api).map(|api| match api.auth {
            AuthType::Anonymous => AuthKind::Anonymous,
            // As authentication tells them apart: a blank X-Ca-Key is no key.
            _ if headers.get(b"x-ca-key").is_some_and(|k| !trim(k).is_empty()) => AuthKind::Signature,
            _ => AuthKind::AppCode,
        });
        // Report-only: a nonce is remembered only by a request every local check admits, so a request
        // that would be refused never burns one.
        let nonces = if self.report_only { Nonces::Later } else { Nonces::Remember(&engine.nonces) };
        let checked = reachable(gw, &routed, io).and_then(|()| bounded_form(headers, body));
        let admitted = match checked.and_then(|()| authenticate(gw, nonces, req, &routed, body, svc.coarse, svc.store)) {
            Ok(id) => run_plugins(gw, &mut engine.runtime.borrow_mut(), req, id, svc.clock, svc.store, &ctx).map_err(|r| (r, Some(id))),
            Err(r) => Err((r, None)),
        };
        let bearer = match &admitted {
            Ok(a) => {
                self.record.app = a.identity.app;
                a.claims.is_some()
            }
            // A token jwtAuth refused still made it a JWT request.
            Err((r, _)) => record::plugin_of(r.error.code) == Some("jwtAuth"),
        };
        if bearer && self.record.auth == Some(AuthKind::Anonymous) {
            self.record.auth = Some(AuthKind::Jwt);
        }
        // A request that carried no credentials used no kind of them.
        if matches!(&admitted, Err((r, _)) if r.error.code == errors::A400MA.code) {
            self.record.auth = None;
        }
        let admitted = match admitted {
            Ok(mut a) if self.report_only && self.record.auth == Some(AuthKind::Signature) => {
                let claimed = a.identity.app.map_or(Ok(None), |app| claim_nonce(gw, &engine.nonces, svc.store, headers, app, svc.coarse));
                match claimed {
                    Ok(one_time) => {
                        a.identity.nonce = one_time;
                        a.one_time.extend(one_time);
                    }
                    Err(r) => self.note_unenforced(svc, &r),
                }
                a
            }
            Ok(a) => a,
            Err((r, identity)) if self.report_only => return self.report(gw, svc, io, headers, &r, identity.as_ref()),
            Err((r, _)) => return self.refuse(gw, svc, io, &r),
        };
        if let Some((idx, key, Pass::Trial(started))) = &admitted.breaker {
            self.trial = Some((*idx, key.clone(), *started));
        }
        let admitted = match self.remote_auth(engine, svc, io, req, admitted) {
            Ok(a) => a,
            Err(flow) => return flow,
        };
        self.proceed(engine, svc, io, headers, admitted)
    }

    /// An admitted request's last steps: the cluster-mode checks, or the mock answer, or the backend.
    pub(super) fn proceed(&mut self, engine: &Engine, svc: &Services<'_>, io: &dyn StreamIo, headers: &Headers<'_>, admitted: Admission) -> Flow {
        let gw = &engine.gateway;
        if admitted.rate_limit.is_some() || !admitted.one_time.is_empty() {
            let checks = ClusterChecks::start(engine, svc, io, admitted, self.request_id, self.stream);
            self.checks = Some(checks);
            return self.finish_cluster_checks(engine, svc, io);
        }
        match forward::mock_reply(gw, &admitted.identity, &admitted.edits) {
            Some(mock) => self.mock(gw, svc, io, mock),
            None => self.admit(engine, svc, io, headers, &admitted),
        }
    }

    /// A cluster-mode answer for this request.
    pub fn on_grpc_answer(&mut self, engine: &Engine, svc: &Services<'_>, io: &dyn StreamIo, token: u32, answer: &Answer) {
        let Some(checks) = self.checks.as_mut() else { return };
        if !checks.awaits(token) {
            return;
        }
        checks.answer(engine, svc, Some(io), token, answer);
        let _ = self.finish_cluster_checks(engine, svc, io);
    }

    /// The answer to one of this request's queued cluster-mode checks, from a batch (`Delivery`).
    /// The adapter runs it in the flushing context with this stream as the effective one: `io` acts on
    /// this stream, and no call is sent from here (a retry queues again).
    pub fn on_batched_answer(&mut self, engine: &Engine, svc: &Services<'_>, io: &dyn StreamIo, ticket: u32, answer: &Answer) {
        let Some(checks) = self.checks.as_mut() else { return };
        if !checks.awaits_queued(ticket) {
            return;
        }
        checks.answer(engine, svc, None, ticket, answer);
        let _ = self.finish_cluster_checks(engine, svc, io);
    }

    /// Whether this request waits for a queued check (the adapter must be able to find it by its
    /// stream id to deliver the answer).
    pub fn awaits_batch(&self) -> bool {
        self.checks.as_ref().is_some_and(ClusterChecks::queued)
    }

    /// The adapter's id of this request's stream, named by its queued checks.
    pub fn set_stream(&mut self, stream: u32) {
        self.stream = stream;
    }

    pub fn stream(&self) -> u32 {
        self.stream
    }

    /// Once every answer is in: refuse, or admit and resume the request.
    fn finish_cluster_checks(&mut self, engine: &Engine, svc: &Services<'_>, io: &dyn StreamIo) -> Flow {
        if !self.checks.as_ref().is_some_and(ClusterChecks::done) {
            return Flow::Pause;
        }
        let Some(checks) = self.checks.take() else { return Flow::Pause };
        let gw = &engine.gateway;
        if let Some(r) = &checks.refusal {
            if !self.report_only {
                return self.refuse(gw, svc, io, r);
            }
            self.note_unenforced(svc, r);
        }
        if let Some(mock) = forward::mock_reply(gw, &checks.admission.identity, &checks.admission.edits) {
            return self.mock(gw, svc, io, mock);
        }
        let head = io.request_headers();
        let Some(headers) = Headers::from_serialized(&head) else {
            // Report-only lets it go on: the held request is resumed.
            if self.refuse_code(gw, svc, io, &errors::X500ER, "malformed header map from host") == Flow::Continue {
                io.resume_request();
            }
            return Flow::Pause;
        };
        if checks.quota.is_some() {
            self.quota = checks.quota; // for a cached answer too
        }
        let _ = self.admit(engine, svc, io, &headers, &checks.admission);
        if checks.quota.is_some() {
            self.quota = checks.quota;
        }
        // Answered from the cache (or I404CH): the request never goes on.
        if !self.replied {
            io.resume_request();
        }
        Flow::Pause
    }

    pub(super) fn refuse(&mut self, gw: &Gateway, svc: &Services<'_>, io: &dyn StreamIo, r: &Refusal) -> Flow {
        if self.report_only {
            let head = io.request_headers();
            let headers = Headers::from_serialized(&head).unwrap_or_default();
            return self.report(gw, svc, io, &headers, r, None);
        }
        let app = r.app.and_then(|a| gw.app(a)).map_or("-", |a| a.id.as_str());
        log::debug!("cagate: refused request_id={} code={} app={} cause={}", self.request_id(), r.error.code, app, r.cause);
        svc.stats.record(Stat::Refused(r.error.code));
        self.record.error = Some((r.error.code, r.message.clone()));
        self.record.app = self.record.app.or(r.app);
        if matches!(r.cause, crate::auth::replay::NONCES_FULL | crate::auth::replay::JTIS_FULL) {
            svc.stats.record(Stat::NonceStoreFull);
        }
        if r.error.code == errors::D503CB.code {
            svc.stats.record(Stat::BreakerRefused);
        }
        if let Some((idx, dim)) = r.throttled {
            let name = gw.plugins.get(idx as usize).map_or("", |p| p.name.as_str());
            svc.stats.record(Stat::Traffic { plugin: crate::ids::PluginId(idx), name, dim: dim.as_str(), admitted: false });
        }
        let out = reply_for(r, self.request_id(), gw.error_contract);
        let cors = std::mem::take(&mut self.cors);
        let headers: Vec<(&str, &str)> =
            out.headers.iter().map(|(n, v)| (n.as_ref(), v.as_str())).chain(cors.iter().map(|(n, v)| (*n, v.as_str()))).collect();
        self.conclude(gw, svc, io, out.status);
        self.reply(io, out.status, &headers, out.body.as_bytes())
    }

    fn refuse_code(&mut self, gw: &Gateway, svc: &Services<'_>, io: &dyn StreamIo, error: &'static ErrorCode, cause: &'static str) -> Flow {
        let r = Refusal::new(error, &[], cause);
        if self.report_only {
            return self.refuse(gw, svc, io, &r);
        }
        log::debug!("cagate: refused request_id={} code={} app=- cause={cause}", self.request_id(), error.code);
        svc.stats.record(Stat::Refused(error.code));
        self.record.error = Some((error.code, r.message.clone()));
        let out = reply_for(&r, self.request_id(), gw.error_contract);
        let headers: Vec<(&str, &str)> = out.headers.iter().map(|(n, v)| (n.as_ref(), v.as_str())).collect();
        self.conclude(gw, svc, io, out.status);
        self.reply(io, out.status, &headers, out.body.as_bytes())
    }

    /// A local reply. After it the stream is the host's: the filter pauses whatever happens.
    pub(super) fn reply(&mut self, io: &dyn StreamIo, status: u16, headers: &[(&str, &str)], body: &[u8]) -> Flow {
        if !io.send_local_reply(status, headers, body) {
            log::warn!("cagate: local reply {status} refused by the host request_id={}", self.request_id());
        }
        self.replied = true;
        Flow::Pause
    }

    /// Report-only: what would have been refused, counted and recorded (`"enforced": false`).
    fn note_unenforced(&mut self, svc: &Services<'_>, r: &Refusal) {
        log::debug!("cagate: report-only request_id={} would refuse code={} cause={}", self.request_id(), r.error.code, r.cause);
        svc.stats.record(Stat::WouldRefuse(r.error.code));
        if self.record.error.is_none() {
            self.record.error = Some((r.error.code, r.message.clone()));
            self.record.not_enforced = true;
        }
        self.record.app = self.record.app.or(r.app);
    }

    /// Report-only: a request a check would have refused goes on as an admitted one would, with the
    /// gateway's own headers: the caller's identity only if authentication succeeded, never a
    /// client's copy of one.
    fn report(&mut self, gw: &Gateway, svc: &Services<'_>, io: &dyn StreamIo, head: &Headers<'_>, r: &Refusal, identity: Option<&Identity>) -> Flow {
        self.note_unenforced(svc, r);
        self.pending = None;
        let (api, stage) = match identity {
            Some(id) => (Some(id.api), Some(id.stage)),
            None => (self.record.api, self.record.stage),
        };
        if let Some(mock) = api.and_then(|a| gw.mock_reply(a)) {
            return self.mock(gw, svc, io, mock);
        }
        let app = identity.and_then(|i| i.app);
        let rid = self.request_id;
        // Routed: the API's own backend, its path and the mapping, as for an admitted request (Envoy's
        // route may pick the backend by the gateway's cluster header); never a routing plugin's route,
        // which only admitted requests take.
        let mut forwarding = crate::request::model::Edits::new();
        if let (Some(api_id), Some(stage), Ok(request_id)) = (api, stage, std::str::from_utf8(&rid)) {
            if let Some(def) = gw.api(api_id) {
                let id = Identity { api: api_id, stage, app, nonce: None };
                let ctx = Ctx { request_id, body: None, stream: io, coarse: svc.coarse };
                let _ = forward::upstream_unrouted(gw, def, &id, &request(head), &ctx, &mut forwarding);
            }
        }
        let edits: Vec<Edit<'_>> = identity_headers(gw, api, app)
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.map(str::as_bytes)))
            .chain([(REQUEST_ID_HEADER.as_bytes(), Some(&rid[..]))])
            .chain(forwarding.iter().map(|(n, v)| (n.as_bytes(), v.as_deref())))
            .collect();
        // Report-only refuses nothing: a copy that could not be removed is only logged.
        let _ = edit_upstream_headers(io, head, &edits);
        svc.stats.record(Stat::Allowed);
        self.measure(svc);
        self.record_backend_path(&forwarding);
        if let (Some(api), Some(stage)) = (api, stage) {
            self.admitted = Some(Admitted { api, stage, app, claims: None, breaker: None, captured: Vec::new() });
        }
        Flow::Continue
    }

    /// What the backend receives, for the record: the gateway's `:path` if it set one, else the
    /// client's (without the query, as `path`).
    fn record_backend_path(&mut self, edits: &crate::request::model::Edits) {
        let forwarded = edits.iter().rev().find(|(n, _)| n == ":path").and_then(|(_, v)| v.as_deref());
        self.record.forwarded(forwarded.map(|p| crate::wire::url::split_path(p).0));
    }

    /// Answers a CORS preflight (no authentication: browsers send none).
    fn preflight(&mut self, gw: &Gateway, svc: &Services<'_>, io: &dyn StreamIo) -> Flow {
        let rid = self.request_id;
        let cors = std::mem::take(&mut self.cors);
        let mut headers: Vec<(&str, &str)> = vec![(REQUEST_ID_HEADER, std::str::from_utf8(&rid).unwrap_or(""))];
        headers.extend(cors.iter().map(|(n, v)| (*n, v.as_str())));
        self.conclude(gw, svc, io, 200);
        self.reply(io, 200, &headers, b"")
    }

    /// An API whose backend is a mock: the gateway answers, as Aliyun's mock does.
    fn mock(&mut self, gw: &Gateway, svc: &Services<'_>, io: &dyn StreamIo, m: &MockBackend) -> Flow {
        svc.stats.record(Stat::Allowed);
        self.conclude(gw, svc, io, m.status);
        let rid = self.request_id;
        let cors = std::mem::take(&mut self.cors);
        let mut headers: Vec<(&str, &str)> = vec![(REQUEST_ID_HEADER, std::str::from_utf8(&rid).unwrap_or(""))];
        headers.extend(m.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        headers.extend(cors.iter().map(|(n, v)| (*n, v.as_str())));
        self.reply(io, m.status, &headers, m.body.as_bytes())
    }

    fn admit(&mut self, engine: &Engine, svc: &Services<'_>, io: &dyn StreamIo, head: &Headers<'_>, a: &Admission) -> Flow {
        if let Some(answered) = self.consult_cache(engine, svc, io, head, a) {
            return answered;
        }
        let gw = &engine.gateway;
        let rid = self.request_id;
        let identity = identity_headers(gw, Some(a.identity.api), a.identity.app);
        let edits: Vec<Edit<'_>> = identity
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.map(str::as_bytes)))
            .chain([(REQUEST_ID_HEADER.as_bytes(), Some(&rid[..]))])
            .chain(a.edits.iter().map(|(n, v)| (n.as_bytes(), v.as_deref())))
            .collect();
        if !edit_upstream_headers(io, head, &edits) {
            return self.refuse_code(gw, svc, io, &errors::X500ER, "client header not removed");
        }
        // Forwarded: the backend's answer reports the trial.
        self.trial = None;
        svc.stats.record(Stat::Allowed);
        self.measure(svc);
        self.record_backend_path(&a.edits);
        if let (true, Some(app)) = (self.debug, a.identity.app.and_then(|i| gw.app(i))) {
            self.debug_info = Some(debug_info(gw, a, &app.id, self.record.filter_us.max(0) as u64));
        }
        self.admitted = Some(Admitted {
            api: a.identity.api,
            stage: a.identity.stage,
            app: a.identity.app,
            claims: a.claims.clone(),
            breaker: a.breaker.clone(),
            captured: crate::request::vars::captured_for_error_mapping(gw, &a.identity, head, svc.coarse),
        });
        self.count_traffic(gw, svc, a);
        Flow::Continue
    }

    /// trafficControl's admitted dimensions counted, and its quota kept for the response headers.
    pub(super) fn count_traffic(&mut self, gw: &Gateway, svc: &Services<'_>, a: &Admission) {
        if let Some((idx, dims, quota)) = &a.traffic {
            let name = gw.plugins.get(idx.index()).map_or("", |p| p.name.as_str());
            for d in dims {
                svc.stats.record(Stat::Traffic { plugin: *idx, name, dim: d.as_str(), admitted: true });
            }
            self.quota = *quota;
        }
    }
}

/// Applies the gateway's request header edits: every client spelling of a gateway-owned header goes,
/// the gateway's values are set. Header by header, a call per real edit: the headers of the gateway's
/// own are added (the client did not send them), which in Envoy costs far less than replacing the
/// whole map (which re-adds every header of the request). `false` when a client's copy of a
/// gateway-owned header could not be removed: the backend would trust it, so the request must not go.
fn edit_upstream_headers(io: &dyn StreamIo, head: &Headers<'_>, edits: &[Edit<'_>]) -> bool {
    let mut removed = true;
    for name in owned_spellings(head, edits) {
        if !io.set_request_header(name, None) {
            log::warn!("cagate: a client's request header {} could not be removed", String::from_utf8_lossy(name));
            removed = false;
        }
    }
    for (i, (name, value)) in edits.iter().enumerate() {
        // Removing a header the client did not send (and no earlier edit set) would be a host call
        // for nothing: the gateway strips its own headers from every request, and most never came.
        let set_before = || edits[..i].iter().any(|(n, v)| n == name && v.is_some());
        // Envoy's names are lower case; an edit's name may not be (a mapped backend name).
        let sent = || head.may_hold(name) && head.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
        let absent = || !sent() && !set_before();
        let done = match value {
            None if absent() => continue,
            // Every spelling the client sent was removed above: a header it never sent is added.
            Some(v) if absent() => io.add_request_header(name, v),
            _ => io.set_request_header(name, *value),
        };
        if !done {
            log::warn!("cagate: request header {} not set", String::from_utf8_lossy(name));
        }
    }
    removed
}
