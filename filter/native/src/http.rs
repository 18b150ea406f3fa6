//! One HTTP stream: Envoy's filter hooks as the core engine's events, and the engine's I/O as ABI
//! callbacks. No policy lives here.

use crate::config::{CoarseClock, Config, SystemClock};
use crate::ffi::CalloutAnswer;
use crate::ffi::{Attribute, FilterHandle, HeaderMap};
use crate::metrics::Sink;
use crate::store;
use crate::worker::{self, Worker};
use cagate_core::{grpc_http, Answer, Engine, Exchange, Flow, GrpcCall, HttpAnswer, HttpCall, Services, Stream, StreamIo};
use std::cell::Cell;
use std::rc::Rc;

pub(crate) struct Filter {
    worker: Rc<Worker>,
    /// The engine the request started with.
    engine: Rc<Engine>,
    /// The registry version `engine` was built from.
    generation: u32,
    exchange: Exchange,
}

impl Filter {
    pub(crate) fn new(config: &Config, _stream: FilterHandle) -> Filter {
        let worker = worker::of(config);
        let (engine, generation) = worker.engine();
        let exchange = engine.exchange();
        Filter { worker, engine, generation, exchange }
    }

    /// Runs one engine event with this worker's services and the stream's I/O.
    fn with(&mut self, stream: FilterHandle, f: impl FnOnce(&mut Exchange, &Engine, &Services<'_>, &Io) -> Flow) -> Flow {
        let sink = Sink {
            metrics: &self.worker.shared.metrics,
            pending: &self.worker.pending,
            generation: self.generation,
            stream,
            apps: &self.worker.apps,
        };
        let svc = Services { clock: &SystemClock, coarse: &CoarseClock, store: store::global(), stats: &sink };
        let io = Io { stream, edited: Cell::new(false) };
        let flow = f(&mut self.exchange, &self.engine, &svc, &io);
        // Edited request headers are routed on (the stage's backend, a rewritten path): Envoy
        // routes again once, after every edit of the event.
        if io.edited.get() {
            stream.clear_route_cache();
        }
        flow
    }

    /// The request's id (what a reply after a panic names).
    pub(crate) fn request_id(&self) -> &str {
        self.exchange.request_id()
    }

    /// Answered or sent on already: a reply after a panic would be a second answer.
    pub(crate) fn decided(&self) -> bool {
        self.exchange.decided()
    }

    pub(crate) fn on_request_headers(&mut self, s: FilterHandle, end_of_stream: bool) -> Flow {
        self.with(s, |x, e, svc, io| x.on_request_headers(e, svc, io, end_of_stream))
    }

    pub(crate) fn on_request_body(&mut self, s: FilterHandle, end_of_stream: bool) -> Flow {
        // The core counts the body held so far, as proxy-wasm reports it.
        let size = s.request_body_size();
        self.with(s, |x, e, svc, io| x.on_request_body(e, svc, io, size, end_of_stream))
    }

    pub(crate) fn on_request_trailers(&mut self, s: FilterHandle) -> Flow {
        self.with(s, |x, e, svc, io| x.on_request_trailers(e, svc, io))
    }

    pub(crate) fn on_response_headers(&mut self, s: FilterHandle, end_of_stream: bool) -> Flow {
        self.with(s, |x, e, svc, io| x.on_response_headers(e, svc, io, end_of_stream))
    }

    /// A callout's answer: remoteAuth's HTTP call, or a cluster-mode call (etcd, the rate limit
    /// service) made as plain HTTP/2.
    pub(crate) fn on_callout_done(&mut self, s: FilterHandle, id: u64, callout: &CalloutAnswer) {
        let Ok(token) = u32::try_from(id) else { return };
        if self.exchange.awaits_http(token) {
            let answer = HttpAnswer::from_pairs(callout.headers.clone().unwrap_or_default(), callout.body.clone());
            self.with(s, |x, e, svc, io| {
                x.on_http_answer(e, svc, io, token, &answer);
                Flow::Continue
            });
            return;
        }
        let status = callout.header(":status").and_then(|v| std::str::from_utf8(v).ok()?.parse::<u16>().ok());
        let status = if callout.headers.is_some() { status.or(Some(0)) } else { None };
        let answer = Answer::from_http(status, callout.header("grpc-status"), &callout.body);
        self.with(s, |x, e, svc, io| {
            x.on_grpc_answer(e, svc, io, token, &answer);
            Flow::Continue
        });
    }

    /// The stream ended: a request that got no response is counted and recorded now.
    pub(crate) fn on_stream_complete(&mut self, s: FilterHandle) -> Flow {
        self.with(s, |x, e, svc, io| {
            x.on_stream_done(e, svc, io);
            Flow::Continue
        })
    }

    pub(crate) fn on_response_body(&mut self, s: FilterHandle, end_of_stream: bool) -> Flow {
        let size = s.response_body_size();
        self.with(s, |x, e, svc, io| x.on_response_body(e, svc, io, size, end_of_stream))
    }
}

/// The stream's I/O as ABI callbacks.
struct Io {
    stream: FilterHandle,
    /// A request header was set or removed.
    edited: Cell<bool>,
}

impl Stream for Io {
    fn peer_address(&self) -> Option<Vec<u8>> {
        self.stream.attribute(Attribute::SourceAddress)
    }

    fn response_header(&self, name: &str) -> Option<Vec<u8>> {
        self.stream.header(HeaderMap::Response, name.as_bytes())
    }
}

impl StreamIo for Io {
    fn request_headers(&self) -> Vec<u8> {
        self.stream.serialized_headers(HeaderMap::Request)
    }

    fn response_headers(&self) -> Vec<u8> {
        self.stream.serialized_headers(HeaderMap::Response)
    }

    fn set_request_header(&self, name: &[u8], value: Option<&[u8]>) -> bool {
        self.edited.set(true);
        self.stream.set_header(HeaderMap::Request, name, value)
    }

    fn add_request_header(&self, name: &[u8], value: &[u8]) -> bool {
        self.edited.set(true);
        self.stream.add_header(HeaderMap::Request, name, value) || self.stream.set_header(HeaderMap::Request, name, Some(value))
    }

    fn request_body(&self, max: usize) -> Vec<u8> {
        self.stream.request_body(max)
    }

    fn resume_request(&self) {
        // Envoy routes inside `continue_decoding`, before this event returns: the edits made while
        // the request was held (its backend, its path) must be routed on now, not after.
        if self.edited.replace(false) {
            self.stream.clear_route_cache();
        }
        self.stream.continue_decoding();
    }

    fn send_local_reply(&self, status: u16, headers: &[(&str, &str)], body: &[u8]) -> bool {
        self.stream.send_response(status, headers, body);
        true
    }

    fn response_details(&self) -> Vec<u8> {
        self.stream.attribute(Attribute::ResponseCodeDetails).unwrap_or_default()
    }

    fn set_response_header(&self, name: &str, value: Option<&[u8]>) {
        let _ = self.stream.set_header(HeaderMap::Response, name.as_bytes(), value);
    }

    fn add_response_header(&self, name: &str, value: &[u8]) {
        if !self.stream.add_header(HeaderMap::Response, name.as_bytes(), value) {
            let _ = self.stream.set_header(HeaderMap::Response, name.as_bytes(), Some(value));
        }
    }

    fn response_body(&self, max: usize) -> Vec<u8> {
        self.stream.response_body(max)
    }

    fn set_response_body(&self, _size: usize, body: &[u8]) {
        self.stream.replace_response_body(body);
    }

    /// A unary gRPC call as a plain HTTP/2 callout (the ABI has no gRPC client); the callout id is
    /// the token its answer comes back with.
    fn send_grpc(&self, call: &GrpcCall) -> Option<u32> {
        let path = format!("/{}/{}", call.service, call.method);
        let headers = grpc_http::request_headers(&path, &call.cluster);
        let id = self.stream.callout(&call.cluster, &headers, &grpc_http::frame(&call.message), call.timeout_ms)?;
        u32::try_from(id).ok()
    }

    /// remoteAuth's call, a callout of this stream (Envoy cancels it if the stream ends first).
    fn send_http(&self, call: &HttpCall) -> Option<u32> {
        let headers: Vec<(&str, &str)> = call.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let id = self.stream.callout(&call.cluster, &headers, &call.body, call.timeout_ms)?;
        u32::try_from(id).ok()
    }

    /// Named as the Wasm build's filter state (`wasm.cagate`), so one access-log format
    /// (`%FILTER_STATE(wasm.cagate:PLAIN)%`) serves both builds.
    fn set_filter_state(&self, name: &str, value: &[u8]) {
        if name == "cagate" {
            self.stream.set_filter_state("wasm.cagate", value);
        } else {
            self.stream.set_filter_state(&format!("wasm.{name}"), value);
        }
    }
}
