//! The HTTP context: translates proxy-wasm's stream callbacks into the core engine's events, and the
//! engine's I/O into host calls. No policy lives here.

use crate::host::{CoarseClock, HostClock, HostStore, HostStream, StatsSink};
use crate::hostcall::{self, Buffer, Map};
use crate::State;
use cagate_core::{Answer, Exchange, Flow, GrpcCall, HttpAnswer, HttpCall, RequestIds, Services, Stream, StreamIo, MAX_HTTP_ANSWER_BODY};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::cell::RefCell;
use std::rc::Rc;

pub(crate) struct Http {
    id: u32,
    state: Option<Rc<State>>,
    exchange: Slot,
}

/// Where a request's exchange lives: in its context, or shared with the root context while it waits
/// for a batch's answer (the root delivers it there).
#[allow(clippy::large_enum_variant)] // the exchange stays in place: no allocation for most requests
enum Slot {
    None,
    Own(Exchange),
    Parked(Rc<Parked>),
}

/// A request waiting for a batch: its exchange and the state it started with.
pub(crate) struct Parked {
    state: Rc<State>,
    exchange: RefCell<Exchange>,
}

impl Parked {
    /// Runs a batch's answer for this request (the root context made its stream the effective one).
    pub(crate) fn deliver(&self, d: &cagate_core::Delivery) {
        let stats = StatsSink(&self.state.metrics);
        let svc = Services { clock: &HostClock, coarse: &CoarseClock, store: &HostStore, stats: &stats };
        if let Ok(mut x) = self.exchange.try_borrow_mut() {
            x.on_batched_answer(&self.state.engine, &svc, &Io { ctx: &DispatchOnly }, d.ticket, &d.answer);
        }
    }
}

impl Http {
    pub(crate) fn new(state: Option<Rc<State>>, id: u32) -> Self {
        let exchange = match &state {
            Some(s) => {
                let mut x = s.engine.exchange();
                x.set_stream(id);
                Slot::Own(x)
            }
            None => Slot::None,
        };
        Http { id, state, exchange }
    }

    /// Runs one engine event with the host's services and this stream's I/O.
    fn with<R>(&mut self, default: R, f: impl FnOnce(&mut Exchange, &State, &Services<'_>, &Io<'_>) -> R) -> R {
        let Some(state) = self.state.clone() else { return default };
        let stats = StatsSink(&state.metrics);
        let svc = Services { clock: &HostClock, coarse: &CoarseClock, store: &HostStore, stats: &stats };
        // The context is needed to dispatch gRPC calls (the SDK registers their tokens).
        let io = Io { ctx: &DispatchOnly };
        let out = match &mut self.exchange {
            Slot::None => return default,
            Slot::Own(x) => f(x, &state, &svc, &io),
            Slot::Parked(p) => match p.exchange.try_borrow_mut() {
                Ok(mut x) => f(&mut x, &state, &svc, &io),
                Err(_) => return default,
            },
        };
        self.park_if_queued(&state);
        out
    }

    /// A request that queued a cluster-mode check is put where the root context can deliver the
    /// batch's answer, and the root is asked for its short tick.
    fn park_if_queued(&mut self, state: &Rc<State>) {
        let Slot::Own(x) = &self.exchange else { return };
        if !x.awaits_batch() {
            return;
        }
        let Slot::Own(x) = std::mem::replace(&mut self.exchange, Slot::None) else { return };
        let parked = Rc::new(Parked { state: state.clone(), exchange: RefCell::new(x) });
        state.parked.borrow_mut().insert(self.id, Rc::downgrade(&parked));
        self.exchange = Slot::Parked(parked);
        state.wake_root();
        // The short tick too: it flushes if the wake-up is lost, and ends checks that ran out of time.
        if state.tick_ms.get() != crate::root::FLUSH_TICK_MS
            && hostcall::set_tick_period(std::time::Duration::from_millis(crate::root::FLUSH_TICK_MS)).is_ok()
        {
            state.tick_ms.set(crate::root::FLUSH_TICK_MS);
        }
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        if let (Slot::Parked(_), Some(state)) = (&self.exchange, &self.state) {
            if let Ok(mut parked) = state.parked.try_borrow_mut() {
                parked.remove(&self.id);
            }
        }
    }
}

/// Only the SDK's call dispatcher is used through a `Context` (see `crate::grpc::send`); the
/// dispatcher registers tokens for whichever context is current, so this stand-in is enough.
struct DispatchOnly;

impl Context for DispatchOnly {}

fn action(flow: Flow) -> Action {
    match flow {
        Flow::Continue => Action::Continue,
        Flow::Pause => Action::Pause,
    }
}

impl Context for Http {
    fn on_grpc_call_response(&mut self, token: u32, status: u32, size: usize) {
        let answer = Answer::from_grpc(status, || hostcall::buffer(Buffer::GrpcReceive, 0, size), hostcall::grpc_status_message);
        self.with((), |x, s, svc, io| x.on_grpc_answer(&s.engine, svc, io, token, &answer));
        // A check sent alone was answered: what queued behind it may go now.
        if let Some(state) = self.state.as_ref().filter(|s| s.engine.batches_pending()) {
            state.wake_root();
        }
    }

    /// remoteAuth's answer: its headers (none when the call failed or timed out) and its body.
    fn on_http_call_response(&mut self, token: u32, num_headers: usize, body_size: usize, _num_trailers: usize) {
        let pairs = if num_headers == 0 { Vec::new() } else { http_pairs(&hostcall::header_map(Map::HttpCallResponse)) };
        let body = if body_size == 0 { Vec::new() } else { hostcall::buffer(Buffer::HttpCallResponseBody, 0, body_size.min(MAX_HTTP_ANSWER_BODY)) };
        let answer = HttpAnswer::from_pairs(pairs, body);
        self.with((), |x, s, svc, io| x.on_http_answer(&s.engine, svc, io, token, &answer));
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if self.state.is_none() {
            let id = RequestIds::new(crate::host::now_nanos()).next_id();
            return action(Exchange::refuse_unconfigured(id, &Io { ctx: &DispatchOnly }));
        }
        action(self.with(Flow::Continue, |x, s, svc, io| x.on_request_headers(&s.engine, svc, io, end_of_stream)))
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        action(self.with(Flow::Continue, |x, s, svc, io| x.on_request_body(&s.engine, svc, io, body_size, end_of_stream)))
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        action(self.with(Flow::Continue, |x, s, svc, io| x.on_request_trailers(&s.engine, svc, io)))
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        action(self.with(Flow::Continue, |x, s, svc, io| x.on_response_headers(&s.engine, svc, io, end_of_stream)))
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        action(self.with(Flow::Continue, |x, s, svc, io| x.on_response_body(&s.engine, svc, io, body_size, end_of_stream)))
    }

    fn on_log(&mut self) {
        self.with((), |x, s, svc, io| x.on_stream_done(&s.engine, svc, io));
    }
}

/// A serialized header map as owned pairs (empty if malformed).
fn http_pairs(serialized: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    cagate_core::Headers::from_serialized(serialized).map(|h| h.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect()).unwrap_or_default()
}

/// This stream's I/O as host calls.
struct Io<'c> {
    ctx: &'c dyn Context,
}

impl Stream for Io<'_> {
    fn peer_address(&self) -> Option<Vec<u8>> {
        HostStream.peer_address()
    }

    fn response_header(&self, name: &str) -> Option<Vec<u8>> {
        hostcall::header(Map::Response, name)
    }
}

impl StreamIo for Io<'_> {
    fn request_headers(&self) -> Vec<u8> {
        hostcall::header_map(Map::Request)
    }

    fn response_headers(&self) -> Vec<u8> {
        hostcall::header_map(Map::Response)
    }

    fn set_request_header(&self, name: &[u8], value: Option<&[u8]>) -> bool {
        hostcall::set_header(Map::Request, name, value).is_ok()
    }

    fn add_request_header(&self, name: &[u8], value: &[u8]) -> bool {
        hostcall::add_header(Map::Request, name, value).is_ok() || self.set_request_header(name, Some(value))
    }

    fn request_body(&self, max: usize) -> Vec<u8> {
        hostcall::buffer(Buffer::RequestBody, 0, max)
    }

    fn resume_request(&self) {
        if let Err(e) = hostcall::resume_request() {
            log::warn!("cagate: cannot resume a request (host status {e})");
        }
    }

    fn send_local_reply(&self, status: u16, headers: &[(&str, &str)], body: &[u8]) -> bool {
        hostcall::send_local_response(u32::from(status), headers, body).is_ok()
    }

    fn response_details(&self) -> Vec<u8> {
        hostcall::property(&["response", "code_details"]).unwrap_or_default()
    }

    fn set_response_header(&self, name: &str, value: Option<&[u8]>) {
        // A host that refuses an edit leaves the response as it was.
        let _ = hostcall::set_header(Map::Response, name.as_bytes(), value);
    }

    fn add_response_header(&self, name: &str, value: &[u8]) {
        if hostcall::add_header(Map::Response, name.as_bytes(), value).is_err() {
            self.set_response_header(name, Some(value));
        }
    }

    fn response_body(&self, max: usize) -> Vec<u8> {
        hostcall::buffer(Buffer::ResponseBody, 0, max)
    }

    fn set_response_body(&self, size: usize, body: &[u8]) {
        let _ = hostcall::set_buffer(Buffer::ResponseBody, 0, size, body);
    }

    fn send_grpc(&self, call: &GrpcCall) -> Option<u32> {
        crate::grpc::send(self.ctx, call)
    }

    /// The SDK's wrapper registers the token with its dispatcher, for this stream's context (the
    /// current one); it panics only on a status other than Ok, BadArgument and InternalFailure,
    /// which Envoy's httpCall never returns.
    fn send_http(&self, call: &HttpCall) -> Option<u32> {
        let headers: Vec<(&str, &str)> = call.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let body = (!call.body.is_empty()).then_some(call.body.as_slice());
        match self.ctx.dispatch_http_call(&call.cluster, headers, body, vec![], std::time::Duration::from_millis(call.timeout_ms)) {
            Ok(token) => Some(token),
            Err(e) => {
                log::warn!("cagate: remoteAuth: cannot call cluster {} ({e:?})", call.cluster);
                None
            }
        }
    }

    fn set_filter_state(&self, name: &str, value: &[u8]) {
        let _ = hostcall::set_property(&[name], value);
    }
}
