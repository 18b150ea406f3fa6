//! The one test kit: the engine wired with in-memory hosts (Envoy's shared data with its CAS
//! semantics, a settable clock, a stream that records what the engine did to it), so that native
//! tests, the hot-path example and the fuzz driver run a request exactly as the adapter does.
//! Behind the `test-kit` feature: none of it is in a build of the filter.

use super::{Answer, Engine, Exchange, Flow, LeaseBook, Seeds, Services, Stat, Stats, StreamIo};
use crate::config::compile::compile;
use crate::config::model::Gateway;
use crate::host::{Clock, MemoryStore, Stream};
use crate::plugins::binding::Runtime;
use crate::plugins::remote_auth::{HttpAnswer, HttpCall};
use crate::request::cluster_calls::GrpcCall;
use crate::wire::headers::serialize;
use std::cell::{Cell, RefCell};
use std::sync::Arc;

/// A clock the test sets (and moves).
#[derive(Debug, Default)]
pub struct TestClock(pub Cell<i64>);

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.get()
    }
}

/// Stat events as counted names (`allowed`, `refused.A403IS`, `cluster.etcd.calls`, ...).
#[derive(Debug, Default)]
pub struct Tally(pub RefCell<Vec<String>>);

impl Tally {
    pub fn count(&self, name: &str) -> usize {
        self.0.borrow().iter().filter(|n| *n == name).count()
    }
}

impl Stats for Tally {
    fn record(&self, stat: Stat<'_>) {
        let name = match stat {
            Stat::Allowed => "allowed".to_string(),
            Stat::Refused(code) => format!("refused.{code}"),
            Stat::Traffic { name, dim, admitted, .. } => format!("traffic.{name}.{dim}.{}", if admitted { "admitted" } else { "throttled" }),
            Stat::ClusterMode(service, what) => format!("cluster.{service}.{what}"),
            Stat::BreakerOpened => "breaker_opened".to_string(),
            Stat::BreakerRefused => "breaker_refused".to_string(),
            Stat::NonceStoreFull => "nonce_store_full".to_string(),
            Stat::Request { api, stage, code, .. } => {
                format!("requests.{}.{}.{code}", api.map_or("", |(_, n)| n), stage.map_or("", |(_, n)| n))
            }
            Stat::FilterMicros(_) => "filter_us".to_string(),
            Stat::BackendFailure(code) => format!("backend_failures.{code}"),
            Stat::WouldRefuse(code) => format!("report_only_would_refuse.{code}"),
            Stat::Caching(what) => format!("caching.{what}"),
        };
        self.0.borrow_mut().push(name);
    }
}

/// A local reply the engine sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// One stream in memory: the request as the client sent it (edited in place by the engine), the
/// response as the backend (or the test) gives it, and what the engine did.
#[derive(Debug, Default)]
pub struct MemoryStream {
    pub request: RefCell<Vec<(Vec<u8>, Vec<u8>)>>,
    pub body: Vec<u8>,
    pub peer: Option<String>,
    pub reply: RefCell<Option<LocalReply>>,
    pub resumed: Cell<bool>,
    pub response: RefCell<Vec<(String, Vec<u8>)>>,
    pub response_body: RefCell<Vec<u8>>,
    pub details: Vec<u8>,
    pub calls: RefCell<Vec<(u32, GrpcCall)>>,
    /// HTTP calls sent (remoteAuth), with their tokens (from 1001, apart from the gRPC calls').
    pub http_calls: RefCell<Vec<(u32, HttpCall)>>,
    /// A host that cannot send HTTP calls (`send_http` answers `None`).
    pub no_http: bool,
    /// The access record the engine published (filter state `wasm.cagate`).
    pub record: RefCell<Option<String>>,
    /// Single-header edits the engine made (each one a host call).
    pub header_calls: Cell<usize>,
    /// A host that fails every removal of a request header (`set_request_header(name, None)`).
    pub no_removal: bool,
}

impl MemoryStream {
    fn header<'a>(pairs: &'a [(Vec<u8>, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
        pairs.iter().find(|(n, _)| n == name.as_bytes()).map(|(_, v)| v.as_slice())
    }

    /// A request header as the backend would receive it (after the engine's edits).
    pub fn upstream(&self, name: &str) -> Option<String> {
        Self::header(&self.request.borrow(), name).map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// Every value the backend would receive under `name`.
    pub fn upstream_all(&self, name: &str) -> Vec<String> {
        self.request.borrow().iter().filter(|(n, _)| n == name.as_bytes()).map(|(_, v)| String::from_utf8_lossy(v).into_owned()).collect()
    }

    /// The access record, parsed.
    pub fn access_record(&self) -> Option<serde_json::Value> {
        self.record.borrow().as_deref().and_then(|r| serde_json::from_str(r).ok())
    }

    /// A response header as the client would receive it.
    pub fn response_header(&self, name: &str) -> Option<String> {
        self.response.borrow().iter().find(|(n, _)| n == name).map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    /// Every value of a response header, in order.
    pub fn response_header_all(&self, name: &str) -> Vec<String> {
        self.response.borrow().iter().filter(|(n, _)| n == name).map(|(_, v)| String::from_utf8_lossy(v).into_owned()).collect()
    }
}

impl Stream for MemoryStream {
    fn peer_address(&self) -> Option<Vec<u8>> {
        self.peer.as_ref().map(|p| p.as_bytes().to_vec())
    }

    fn response_header(&self, name: &str) -> Option<Vec<u8>> {
        self.response.borrow().iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
    }
}

impl StreamIo for MemoryStream {
    fn set_filter_state(&self, name: &str, value: &[u8]) {
        if name == "cagate" {
            *self.record.borrow_mut() = Some(String::from_utf8_lossy(value).into_owned());
        }
    }

    fn request_headers(&self) -> Vec<u8> {
        let pairs = self.request.borrow();
        let refs: Vec<(&[u8], &[u8])> = pairs.iter().map(|(n, v)| (n.as_slice(), v.as_slice())).collect();
        serialize(&refs)
    }

    fn response_headers(&self) -> Vec<u8> {
        let pairs = self.response.borrow();
        let refs: Vec<(&[u8], &[u8])> = pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_slice())).collect();
        serialize(&refs)
    }

    fn set_request_header(&self, name: &[u8], value: Option<&[u8]>) -> bool {
        self.header_calls.set(self.header_calls.get() + 1);
        if value.is_none() && self.no_removal {
            return false;
        }
        let mut pairs = self.request.borrow_mut();
        pairs.retain(|(n, _)| n != name);
        if let Some(v) = value {
            pairs.push((name.to_vec(), v.to_vec()));
        }
        true
    }

    fn request_body(&self, max: usize) -> Vec<u8> {
        self.body.get(..max.min(self.body.len())).unwrap_or_default().to_vec()
    }

    fn resume_request(&self) {
        self.resumed.set(true);
    }

    fn send_local_reply(&self, status: u16, headers: &[(&str, &str)], body: &[u8]) -> bool {
        let headers = headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        *self.reply.borrow_mut() = Some(LocalReply { status, headers, body: body.to_vec() });
        true
    }

    fn response_details(&self) -> Vec<u8> {
        self.details.clone()
    }

    fn set_response_header(&self, name: &str, value: Option<&[u8]>) {
        let mut pairs = self.response.borrow_mut();
        pairs.retain(|(n, _)| n != name);
        if let Some(v) = value {
            pairs.push((name.to_string(), v.to_vec()));
        }
    }

    fn add_response_header(&self, name: &str, value: &[u8]) {
        self.response.borrow_mut().push((name.to_string(), value.to_vec()));
    }

    fn response_body(&self, max: usize) -> Vec<u8> {
        let b = self.response_body.borrow();
        b.get(..max.min(b.len())).unwrap_or_default().to_vec()
    }

    fn set_response_body(&self, size: usize, body: &[u8]) {
        let mut b = self.response_body.borrow_mut();
        let at = size.min(b.len());
        let keep = b.split_off(at);
        *b = [body, &keep].concat();
    }

    fn send_grpc(&self, call: &GrpcCall) -> Option<u32> {
        let mut calls = self.calls.borrow_mut();
        let token = calls.len() as u32 + 1;
        calls.push((token, call.clone()));
        Some(token)
    }

    fn send_http(&self, call: &HttpCall) -> Option<u32> {
        if self.no_http {
            return None;
        }
        let mut calls = self.http_calls.borrow_mut();
        let token = calls.len() as u32 + 1001;
        calls.push((token, call.clone()));
        Some(token)
    }
}

/// A request to send through the kit.
#[derive(Debug, Clone, Default)]
pub struct Call<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// Header names are lower-cased, as Envoy's codecs hand them to filters.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: Option<&'a [u8]>,
    pub peer: Option<&'a str>,
    /// The body comes in this many data frames (0 and 1: one).
    pub pieces: usize,
    /// Trailers end the request (after the body, if any; then no data frame ends it).
    pub trailers: bool,
}

/// How a request's events come after its headers, as Envoy's callbacks would bring them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// A body follows the headers: the whole of the stream's `body`, empty or not.
    pub body: bool,
    /// In this many data frames (0 and 1: one).
    pub pieces: usize,
    /// Trailers end the request (then no data frame ends it).
    pub trailers: bool,
}

/// What became of a request: the engine's flow on the last request event, its exchange and stream.
#[derive(Debug)]
pub struct Outcome {
    pub flow: Flow,
    pub exchange: Exchange,
    pub stream: MemoryStream,
    /// The engine held the request at its headers to read the body before deciding (the API checks
    /// the body, and one was coming).
    pub read_body: bool,
}

impl Outcome {
    pub fn reply(&self) -> Option<LocalReply> {
        self.stream.reply.borrow().clone()
    }

    /// The status the client gets: the local reply's, else 200 (forwarded).
    pub fn status(&self) -> u16 {
        self.reply().map_or(200, |r| r.status)
    }

    /// A header of the local reply.
    pub fn reply_header(&self, name: &str) -> Option<String> {
        self.reply().and_then(|r| r.headers.into_iter().find(|(n, _)| n == name).map(|(_, v)| v))
    }

    /// `X-Ca-Error-Code` of a local reply.
    pub fn code(&self) -> Option<String> {
        self.reply_header("x-ca-error-code")
    }

    /// `X-Ca-Error-Message` of a local reply.
    pub fn message(&self) -> Option<String> {
        self.reply_header("x-ca-error-message")
    }

    /// Admitted and forwarded (the flow continued, or the request was resumed after its cluster-mode checks).
    pub fn forwarded(&self) -> bool {
        self.reply().is_none() && (self.flow == Flow::Continue || self.stream.resumed.get())
    }
}

/// The engine wired with in-memory hosts.
pub struct Kit {
    pub engine: Engine,
    /// Envoy's shared data; an `Arc` so that kits on several threads (Envoy's workers) share it.
    pub store: Arc<MemoryStore>,
    pub clock: TestClock,
    pub stats: Tally,
    /// The last stream id given (each request's exchange gets the next, as the adapter's context ids).
    streams: Cell<u32>,
}

impl Kit {
    /// A kit around a configuration (JSON); panics on a refused one (tests only).
    #[allow(clippy::panic)]
    pub fn new(config: &str, now_ms: i64) -> Kit {
        let gateway = compile(config.as_bytes()).unwrap_or_else(|p| panic!("configuration refused: {p:?}"));
        Kit::from_gateway(gateway, now_ms)
    }

    /// A kit around a compiled configuration (a registry document merged into it, a fuzzed one).
    pub fn from_gateway(gateway: Gateway, now_ms: i64) -> Kit {
        Kit::sharing(gateway, now_ms, Arc::new(MemoryStore::new()))
    }

    /// Another VM on the same shared data: one kit per thread is one Envoy worker each.
    pub fn sharing(gateway: Gateway, now_ms: i64, store: Arc<MemoryStore>) -> Kit {
        let engine = Engine::new(gateway, Seeds::default(), &*store);
        Kit { engine, store, clock: TestClock(Cell::new(now_ms)), stats: Tally::default(), streams: Cell::new(0) }
    }

    pub fn services(&self) -> Services<'_> {
        Services { clock: &self.clock, coarse: &self.clock, store: &*self.store, stats: &self.stats }
    }

    /// Forgets what earlier requests left: a fresh shared store, the JWT caches, the cluster-mode
    /// leases and the stats counted (the fuzz driver, input after input on one VM).
    pub fn forget(&mut self) {
        self.store = Arc::new(MemoryStore::new());
        for state in self.engine.runtime.borrow_mut().jwt.iter_mut().flatten() {
            state.clear_cache();
        }
        *self.engine.leases.borrow_mut() = LeaseBook::default();
        self.stats.0.borrow_mut().clear();
    }

    /// Another configuration on this kit's VM, without the cost of a new engine (a fuzz target's
    /// configuration per input): the gateway, and a runtime for its plugins, are new; the nonce
    /// store (named for the first configuration) and the request ids are kept, and no key is created
    /// in the shared store (a key read before it exists reads as empty, as in a fresh store).
    pub fn reconfigure(&mut self, gateway: Gateway) {
        *self.engine.runtime.borrow_mut() = Runtime::new(&gateway.plugins, Seeds::default().caches);
        *self.engine.leases.borrow_mut() = LeaseBook::default();
        self.engine.cache.borrow_mut().clear();
        self.engine.gateway = gateway;
    }

    /// The request id the next request gets (ids come from a fixed seed: every kit's requests get
    /// the same ids in the same order).
    pub fn next_request_id(&self) -> String {
        let id = self.engine.ids.borrow().clone().next_id();
        String::from_utf8_lossy(&id).into_owned()
    }

    /// Runs a request's events as the adapter does: headers, then the body (if any, in `pieces`
    /// data frames), then trailers (if `trailers`).
    pub fn send(&self, call: &Call<'_>) -> Outcome {
        let mut pairs: Vec<(Vec<u8>, Vec<u8>)> =
            vec![(b":method".to_vec(), call.method.as_bytes().to_vec()), (b":path".to_vec(), call.path.as_bytes().to_vec())];
        pairs.extend(call.headers.iter().map(|(n, v)| (n.to_ascii_lowercase().into_bytes(), v.as_bytes().to_vec())));
        let stream = MemoryStream {
            request: RefCell::new(pairs),
            body: call.body.unwrap_or_default().to_vec(),
            peer: call.peer.map(str::to_string),
            ..MemoryStream::default()
        };
        self.run(stream, Delivery { body: call.body.is_some(), pieces: call.pieces, trailers: call.trailers })
    }

    /// Runs the request a stream holds (its header map as the host has it, its body, its peer): the
    /// headers event, then what `delivery` says comes after them.
    pub fn run(&self, stream: MemoryStream, delivery: Delivery) -> Outcome {
        let mut exchange = self.engine.exchange();
        self.streams.set(self.streams.get() + 1);
        exchange.set_stream(self.streams.get());
        let svc = self.services();
        let ends_at_headers = !delivery.body && !delivery.trailers;
        let mut flow = exchange.on_request_headers(&self.engine, &svc, &stream, ends_at_headers);
        let read_body = !ends_at_headers
            && flow == Flow::Pause
            && stream.reply.borrow().is_none()
            && stream.calls.borrow().is_empty()
            && stream.http_calls.borrow().is_empty();
        if delivery.body {
            let pieces = delivery.pieces.max(1);
            let len = stream.body.len();
            for i in 1..=pieces {
                let received = if i == pieces { len } else { len / pieces * i };
                let end = i == pieces && !delivery.trailers;
                flow = exchange.on_request_body(&self.engine, &svc, &stream, received, end);
            }
        }
        if delivery.trailers {
            flow = exchange.on_request_trailers(&self.engine, &svc, &stream);
        }
        Outcome { flow, exchange, stream, read_body }
    }

    /// A request with no body.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Outcome {
        self.send(&Call { method: "GET", path, headers, ..Call::default() })
    }

    /// A gRPC answer for one of the outcome's calls.
    pub fn answer(&self, o: &mut Outcome, token: u32, answer: &Answer) {
        o.exchange.on_grpc_answer(&self.engine, &self.services(), &o.stream, token, answer);
    }

    /// Flushes the engine's batches as the adapter's flushing context does: returns the batches (the
    /// caller answers them with `answer_batch`) and delivers the checks whose time ran out.
    pub fn flush(&self, outcomes: &mut [&mut Outcome]) -> Vec<(u32, crate::engine::BatchCall)> {
        let flush = self.engine.take_batches(self.clock.now_ms());
        self.deliver(outcomes, flush.expired);
        let mut out = Vec::new();
        for (i, b) in flush.calls.into_iter().enumerate() {
            let token = 500 + i as u32 + self.streams.get() * 16;
            out.push((token, b));
        }
        out
    }

    /// Marks a flushed batch sent with its token (see `flush`).
    pub fn sent(&self, token: u32, batch: crate::engine::BatchCall) {
        let _ = self.engine.batch_sent(batch, Some(token));
    }

    /// A batch's answer, delivered to the outcomes it names.
    pub fn answer_batch(&self, outcomes: &mut [&mut Outcome], token: u32, answer: &Answer) {
        let deliveries = self.engine.batch_answered(token, answer).unwrap_or_default();
        self.deliver(outcomes, deliveries);
    }

    fn deliver(&self, outcomes: &mut [&mut Outcome], deliveries: Vec<crate::engine::Delivery>) {
        for d in deliveries {
            if let Some(o) = outcomes.iter_mut().find(|o| o.exchange.stream() == d.stream) {
                o.exchange.on_batched_answer(&self.engine, &self.services(), &o.stream, d.ticket, &d.answer);
            }
        }
    }

    /// An HTTP answer (remoteAuth) for one of the outcome's calls: the status (`None`: no response),
    /// the headers and the body.
    pub fn http_answer(&self, o: &mut Outcome, token: u32, status: Option<u16>, headers: &[(&str, &str)], body: &[u8]) {
        let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        if let Some(s) = status {
            pairs.push((b":status".to_vec(), s.to_string().into_bytes()));
            pairs.extend(headers.iter().map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec())));
        }
        let answer = HttpAnswer::from_pairs(pairs, body.to_vec());
        o.exchange.on_http_answer(&self.engine, &self.services(), &o.stream, token, &answer);
    }

    /// The response phase: the backend's (or Envoy's) response headers and body.
    pub fn respond(&self, o: &mut Outcome, status: u16, headers: &[(&str, &str)], details: &str, body: &[u8]) -> Flow {
        let mut response = vec![(":status".to_string(), status.to_string().into_bytes())];
        response.extend(headers.iter().map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())));
        *o.stream.response.borrow_mut() = response;
        *o.stream.response_body.borrow_mut() = body.to_vec();
        o.stream.details = details.as_bytes().to_vec();
        let svc = self.services();
        let flow = o.exchange.on_response_headers(&self.engine, &svc, &o.stream, body.is_empty());
        if !body.is_empty() {
            return o.exchange.on_response_body(&self.engine, &svc, &o.stream, body.len(), true);
        }
        flow
    }

    /// The stream ends (Envoy's log callback), answered or not.
    pub fn end(&self, o: &mut Outcome) {
        o.exchange.on_stream_done(&self.engine, &self.services(), &o.stream);
    }
}
