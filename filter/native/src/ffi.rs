//! Envoy's dynamic-module C ABI (Envoy 1.40, `source/extensions/dynamic_modules/abi/abi.h`): the
//! callbacks this module calls, declared by hand for just those it uses, and the event hooks it
//! exports. Every `unsafe` of the crate is here; the rest sees safe handles (`FilterHandle`,
//! `ConfigHandle`) and plain Rust values. Each hook catches a panic at the boundary: unwinding into
//! Envoy's C++ frames is undefined behaviour, so a panic becomes a logged error and a safe answer.

// The hooks' one safety contract is stated once, above them, rather than on each.
#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The ABI version this module was written against; Envoy logs whether it matches its own.
const ABI_VERSION: &[u8] = b"v0.2.0\0";

/// `envoy_dynamic_module_type_envoy_buffer`: bytes Envoy owns.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyBuffer {
    ptr: *const u8,
    length: usize,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct ModuleBuffer {
    ptr: *const u8,
    length: usize,
}

/// `envoy_dynamic_module_type_envoy_http_header`: a header Envoy owns.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyHeader {
    key_ptr: *const u8,
    key_length: usize,
    value_ptr: *const u8,
    value_length: usize,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct ModuleHeader {
    key_ptr: *const u8,
    key_length: usize,
    value_ptr: *const u8,
    value_length: usize,
}

impl ModuleBuffer {
    fn of(bytes: &[u8]) -> Self {
        ModuleBuffer { ptr: bytes.as_ptr(), length: bytes.len() }
    }

    const NULL: ModuleBuffer = ModuleBuffer { ptr: std::ptr::null(), length: 0 };
}

impl ModuleHeader {
    fn of(name: &[u8], value: &[u8]) -> Self {
        ModuleHeader { key_ptr: name.as_ptr(), key_length: name.len(), value_ptr: value.as_ptr(), value_length: value.len() }
    }
}

const NULL_BUFFER: EnvoyBuffer = EnvoyBuffer { ptr: std::ptr::null(), length: 0 };

/// `envoy_dynamic_module_type_http_header_type`.
#[derive(Clone, Copy)]
#[repr(u32)]
pub(crate) enum HeaderMap {
    Request = 0,
    Response = 2,
}

/// `envoy_dynamic_module_type_http_body_type`.
#[derive(Clone, Copy)]
#[repr(u32)]
enum Body {
    ReceivedRequest = 0,
    BufferedRequest = 1,
    ReceivedResponse = 2,
    BufferedResponse = 3,
}

/// `envoy_dynamic_module_type_attribute_id` (the two this module reads).
#[derive(Clone, Copy)]
#[repr(u32)]
pub(crate) enum Attribute {
    ResponseCodeDetails = 16,
    SourceAddress = 24,
}

/// `envoy_dynamic_module_type_log_level`.
#[derive(Clone, Copy)]
#[repr(u32)]
pub(crate) enum Level {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
}

const METRICS_OK: u32 = 0;
const CALLOUT_INIT_OK: u32 = 0;
const CALLOUT_OK: u32 = 0;

/// glibc's `struct timespec` on 64-bit Linux.
#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

/// Linux's `CLOCK_REALTIME_COARSE`.
const CLOCK_REALTIME_COARSE: i32 = 5;

extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;

    fn envoy_dynamic_module_callback_log(level: u32, message: ModuleBuffer);
    fn envoy_dynamic_module_callback_log_enabled(level: u32) -> bool;

    fn envoy_dynamic_module_callback_http_filter_config_define_counter(
        config: *mut c_void,
        name: ModuleBuffer,
        labels: *const ModuleBuffer,
        labels_len: usize,
        id: *mut usize,
    ) -> u32;
    fn envoy_dynamic_module_callback_http_filter_config_define_gauge(
        config: *mut c_void,
        name: ModuleBuffer,
        labels: *const ModuleBuffer,
        labels_len: usize,
        id: *mut usize,
    ) -> u32;
    fn envoy_dynamic_module_callback_http_filter_config_define_histogram(
        config: *mut c_void,
        name: ModuleBuffer,
        labels: *const ModuleBuffer,
        labels_len: usize,
        id: *mut usize,
    ) -> u32;
    fn envoy_dynamic_module_callback_http_filter_record_histogram_value(
        filter: *mut c_void,
        id: usize,
        labels: *const ModuleBuffer,
        labels_len: usize,
        value: u64,
    ) -> u32;
    fn envoy_dynamic_module_callback_http_filter_config_increment_counter(
        config: *mut c_void,
        id: usize,
        labels: *const ModuleBuffer,
        labels_len: usize,
        value: u64,
    ) -> u32;
    fn envoy_dynamic_module_callback_http_filter_config_set_gauge(
        config: *mut c_void,
        id: usize,
        labels: *const ModuleBuffer,
        labels_len: usize,
        value: u64,
    ) -> u32;

    fn envoy_dynamic_module_callback_http_get_header(
        filter: *mut c_void,
        map: u32,
        key: ModuleBuffer,
        result: *mut EnvoyBuffer,
        index: usize,
        count: *mut usize,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_get_headers_size(filter: *mut c_void, map: u32) -> usize;
    fn envoy_dynamic_module_callback_http_get_headers(filter: *mut c_void, map: u32, result: *mut EnvoyHeader) -> bool;
    fn envoy_dynamic_module_callback_http_set_header(filter: *mut c_void, map: u32, key: ModuleBuffer, value: ModuleBuffer) -> bool;
    fn envoy_dynamic_module_callback_http_add_header(filter: *mut c_void, map: u32, key: ModuleBuffer, value: ModuleBuffer) -> bool;

    fn envoy_dynamic_module_callback_http_send_response(
        filter: *mut c_void,
        status: u32,
        headers: *const ModuleHeader,
        headers_len: usize,
        body: ModuleBuffer,
        details: ModuleBuffer,
    );

    fn envoy_dynamic_module_callback_http_get_body_chunks_size(filter: *mut c_void, body: u32) -> usize;
    fn envoy_dynamic_module_callback_http_get_body_chunks(filter: *mut c_void, body: u32, result: *mut EnvoyBuffer) -> bool;
    fn envoy_dynamic_module_callback_http_get_body_size(filter: *mut c_void, body: u32) -> usize;
    fn envoy_dynamic_module_callback_http_append_body(filter: *mut c_void, body: u32, data: ModuleBuffer) -> bool;
    fn envoy_dynamic_module_callback_http_drain_body(filter: *mut c_void, body: u32, bytes: usize) -> bool;
    fn envoy_dynamic_module_callback_http_received_buffered_request_body(filter: *mut c_void) -> bool;
    fn envoy_dynamic_module_callback_http_received_buffered_response_body(filter: *mut c_void) -> bool;

    fn envoy_dynamic_module_callback_http_set_filter_state_bytes(filter: *mut c_void, key: ModuleBuffer, value: ModuleBuffer) -> bool;
    fn envoy_dynamic_module_callback_http_filter_get_attribute_string(filter: *mut c_void, id: u32, result: *mut EnvoyBuffer) -> bool;
    fn envoy_dynamic_module_callback_http_filter_continue_decoding(filter: *mut c_void);
    fn envoy_dynamic_module_callback_http_clear_route_cache(filter: *mut c_void);

    fn envoy_dynamic_module_callback_http_filter_http_callout(
        filter: *mut c_void,
        callout_id: *mut u64,
        cluster: ModuleBuffer,
        headers: *const ModuleHeader,
        headers_len: usize,
        body: ModuleBuffer,
        timeout_ms: u64,
    ) -> u32;
    fn envoy_dynamic_module_callback_http_filter_config_scheduler_new(config: *mut c_void) -> *mut c_void;
    fn envoy_dynamic_module_callback_http_filter_config_scheduler_commit(scheduler: *mut c_void, event_id: u64);
    fn envoy_dynamic_module_callback_http_filter_config_scheduler_delete(scheduler: *mut c_void);
    fn envoy_dynamic_module_callback_http_filter_config_http_callout(
        config: *mut c_void,
        callout_id: *mut u64,
        cluster: ModuleBuffer,
        headers: *const ModuleHeader,
        headers_len: usize,
        body: ModuleBuffer,
        timeout_ms: u64,
    ) -> u32;
}

// ------------------------------------------------------------------------------------------------
// Safe wrappers.

/// Writes one line to Envoy's log (`dynamic_modules` logger); formatting is skipped when the level is
/// off.
pub(crate) fn log(level: Level, message: &str) {
    // SAFETY: plain values; the message slice outlives the call, Envoy copies it.
    unsafe {
        if envoy_dynamic_module_callback_log_enabled(level as u32) {
            envoy_dynamic_module_callback_log(level as u32, ModuleBuffer::of(message.as_bytes()));
        }
    }
}

/// The kernel's coarse wall clock in milliseconds (`None` if unavailable).
pub(crate) fn coarse_now_ms() -> Option<i64> {
    let mut ts = Timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer of the layout glibc writes.
    let ok = unsafe { clock_gettime(CLOCK_REALTIME_COARSE, &mut ts) } == 0;
    ok.then(|| ts.tv_sec.saturating_mul(1000).saturating_add(ts.tv_nsec / 1_000_000))
}

/// Whether a level is on (to skip formatting a message nobody reads).
pub(crate) fn log_enabled(level: Level) -> bool {
    // SAFETY: a plain value.
    unsafe { envoy_dynamic_module_callback_log_enabled(level as u32) }
}

fn labels_of(values: &[&str]) -> Vec<ModuleBuffer> {
    values.iter().map(|v| ModuleBuffer::of(v.as_bytes())).collect()
}

/// One HTTP filter configuration in Envoy (`DynamicModuleHttpFilterConfig`): metric definitions, config
/// callouts and its main-thread scheduler. Valid from `on_http_filter_config_new` until the config's
/// destroy hook; the module keeps it only inside the config object Envoy destroys then.
#[derive(Clone, Copy)]
pub(crate) struct ConfigHandle(*mut c_void);

// SAFETY: the handle is an address Envoy hands to callbacks documented as callable from the config's
// context; the metrics callbacks on it lock nothing of the module's and Envoy's stats are thread-safe.
// The module calls the scheduler- and callout-related ones only on the main thread.
unsafe impl Send for ConfigHandle {}
// SAFETY: see `Send`.
unsafe impl Sync for ConfigHandle {}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

impl ConfigHandle {
    /// Defines a metric (only while the configuration is being created: Envoy freezes definitions
    /// after). `None` when Envoy refused.
    pub(crate) fn define(&self, kind: MetricKind, name: &str, labels: &[&str]) -> Option<usize> {
        let names = labels_of(labels);
        let mut id = 0usize;
        let name = ModuleBuffer::of(name.as_bytes());
        // SAFETY: the label array and the name outlive the call; `id` is a valid out-pointer.
        let result = unsafe {
            match kind {
                MetricKind::Counter => {
                    envoy_dynamic_module_callback_http_filter_config_define_counter(self.0, name, names.as_ptr(), names.len(), &mut id)
                }
                MetricKind::Gauge => {
                    envoy_dynamic_module_callback_http_filter_config_define_gauge(self.0, name, names.as_ptr(), names.len(), &mut id)
                }
                MetricKind::Histogram => {
                    envoy_dynamic_module_callback_http_filter_config_define_histogram(self.0, name, names.as_ptr(), names.len(), &mut id)
                }
            }
        };
        (result == METRICS_OK).then_some(id)
    }

    pub(crate) fn increment(&self, id: usize, labels: &[&str], by: u64) {
        let values = labels_of(labels);
        // SAFETY: the label array outlives the call.
        let _ = unsafe { envoy_dynamic_module_callback_http_filter_config_increment_counter(self.0, id, values.as_ptr(), values.len(), by) };
    }

    pub(crate) fn set_gauge(&self, id: usize, value: u64) {
        // SAFETY: no labels (a null array of length 0, as the ABI allows).
        let _ = unsafe { envoy_dynamic_module_callback_http_filter_config_set_gauge(self.0, id, std::ptr::null(), 0, value) };
    }

    /// A main-thread scheduler: `commit` from any thread runs `on_http_filter_config_scheduled` on the
    /// main thread.
    pub(crate) fn scheduler(&self) -> Option<Scheduler> {
        // SAFETY: the config handle is valid (see the type's comment).
        let ptr = unsafe { envoy_dynamic_module_callback_http_filter_config_scheduler_new(self.0) };
        (!ptr.is_null()).then_some(Scheduler(ptr))
    }

    /// An HTTP call through a cluster on the configuration's behalf (main thread); its answer comes
    /// to `on_http_filter_config_http_callout_done` with the returned id.
    pub(crate) fn callout(&self, cluster: &str, headers: &[(&str, &str)], timeout_ms: u64) -> Option<u64> {
        callout(envoy_dynamic_module_callback_http_filter_config_http_callout, self.0, cluster, headers, &[], timeout_ms)
    }
}

/// The ABI's two HTTP callouts (a configuration's, a stream's) share one signature.
type CalloutFn = unsafe extern "C" fn(*mut c_void, *mut u64, ModuleBuffer, *const ModuleHeader, usize, ModuleBuffer, u64) -> u32;

/// Makes an HTTP callout through `f` on `owner`'s behalf; the callout id, or `None` if Envoy refused.
fn callout(f: CalloutFn, owner: *mut c_void, cluster: &str, headers: &[(&str, &str)], body: &[u8], timeout_ms: u64) -> Option<u64> {
    let pairs: Vec<ModuleHeader> = headers.iter().map(|(n, v)| ModuleHeader::of(n.as_bytes(), v.as_bytes())).collect();
    let body = if body.is_empty() { ModuleBuffer::NULL } else { ModuleBuffer::of(body) };
    let mut id = 0u64;
    // SAFETY: `owner` is the live handle `f` takes; every buffer outlives the call (Envoy copies the
    // request); `id` is a valid out-pointer.
    let result = unsafe { f(owner, &mut id, ModuleBuffer::of(cluster.as_bytes()), pairs.as_ptr(), pairs.len(), body, timeout_ms) };
    (result == CALLOUT_INIT_OK).then_some(id)
}

/// A main-thread scheduler of a configuration (deleted once, by `delete`).
pub(crate) struct Scheduler(*mut c_void);

// SAFETY: Envoy documents `scheduler_commit` as callable from any thread; the module deletes the
// scheduler only after the thread that commits has stopped (see `tick::Ticker`).
unsafe impl Send for Scheduler {}
// SAFETY: see `Send`.
unsafe impl Sync for Scheduler {}

impl Scheduler {
    pub(crate) fn commit(&self, event_id: u64) {
        // SAFETY: the scheduler is alive until `delete`, which needs ownership.
        unsafe { envoy_dynamic_module_callback_http_filter_config_scheduler_commit(self.0, event_id) }
    }

    pub(crate) fn delete(self) {
        // SAFETY: deleted once (this consumes the only owner).
        unsafe { envoy_dynamic_module_callback_http_filter_config_scheduler_delete(self.0) }
    }
}

/// One HTTP stream's filter in Envoy (`DynamicModuleHttpFilter`), valid for the duration of the hook
/// that handed it over. Not `Send`: a stream lives on one worker thread.
#[derive(Clone, Copy)]
pub(crate) struct FilterHandle(*mut c_void);

impl FilterHandle {
    /// One header's first value.
    pub(crate) fn header(&self, map: HeaderMap, name: &[u8]) -> Option<Vec<u8>> {
        let mut out = NULL_BUFFER;
        // SAFETY: the key outlives the call; `out` is a valid out-pointer; the value Envoy points at
        // is copied before the next callback.
        unsafe {
            if !envoy_dynamic_module_callback_http_get_header(self.0, map as u32, ModuleBuffer::of(name), &mut out, 0, std::ptr::null_mut()) {
                return None;
            }
            envoy_bytes(out)
        }
    }

    /// Every header of a map in the proxy-wasm serialized form the core parses (a count, the
    /// lengths, then each name and value NUL-terminated), written straight from Envoy's views: one
    /// allocation, sized exactly, per request.
    pub(crate) fn serialized_headers(&self, map: HeaderMap) -> Vec<u8> {
        thread_local! {
            // Envoy's views of the current map, reused across requests.
            static VIEWS: std::cell::RefCell<Vec<EnvoyHeader>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        const EMPTY: EnvoyHeader = EnvoyHeader { key_ptr: std::ptr::null(), key_length: 0, value_ptr: std::ptr::null(), value_length: 0 };
        VIEWS.with(|views| {
            let Ok(mut raw) = views.try_borrow_mut() else { return 0u32.to_le_bytes().to_vec() };
            // SAFETY: the array is sized from Envoy's own count; the views are read before any other
            // callback can change the map, and not kept (the slots are stale once this returns).
            unsafe {
                let n = envoy_dynamic_module_callback_http_get_headers_size(self.0, map as u32);
                raw.clear();
                raw.resize(n, EMPTY);
                if n == 0 || !envoy_dynamic_module_callback_http_get_headers(self.0, map as u32, raw.as_mut_ptr()) {
                    return 0u32.to_le_bytes().to_vec();
                }
                let bytes: usize = raw.iter().map(|h| h.key_length + h.value_length + 10).sum();
                let mut out = Vec::with_capacity(4 + bytes);
                out.extend_from_slice(&(n as u32).to_le_bytes());
                for h in raw.iter() {
                    out.extend_from_slice(&(h.key_length as u32).to_le_bytes());
                    out.extend_from_slice(&(h.value_length as u32).to_le_bytes());
                }
                for h in raw.iter() {
                    out.extend_from_slice(slice(h.key_ptr, h.key_length));
                    out.push(0);
                    out.extend_from_slice(slice(h.value_ptr, h.value_length));
                    out.push(0);
                }
                out
            }
        })
    }

    /// Sets (replacing every value of that name) or, with `None`, removes a header.
    pub(crate) fn set_header(&self, map: HeaderMap, name: &[u8], value: Option<&[u8]>) -> bool {
        let value = value.map_or(ModuleBuffer::NULL, ModuleBuffer::of);
        // SAFETY: the buffers outlive the call; Envoy copies them.
        unsafe { envoy_dynamic_module_callback_http_set_header(self.0, map as u32, ModuleBuffer::of(name), value) }
    }

    /// Appends a header without looking for an existing one: a set first removes, which scans the map
    /// (measured: about half of a set's cost). Envoy refuses an empty value here (`false`).
    pub(crate) fn add_header(&self, map: HeaderMap, name: &[u8], value: &[u8]) -> bool {
        // SAFETY: the buffers outlive the call; Envoy copies them.
        unsafe { envoy_dynamic_module_callback_http_add_header(self.0, map as u32, ModuleBuffer::of(name), ModuleBuffer::of(value)) }
    }

    /// Answers the stream locally (Envoy's `sendLocalReply`).
    pub(crate) fn send_response(&self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        let pairs: Vec<ModuleHeader> = headers.iter().map(|(n, v)| ModuleHeader::of(n.as_bytes(), v.as_bytes())).collect();
        // SAFETY: every buffer outlives the call; Envoy copies them.
        unsafe {
            envoy_dynamic_module_callback_http_send_response(
                self.0,
                u32::from(status),
                pairs.as_ptr(),
                pairs.len(),
                ModuleBuffer::of(body),
                ModuleBuffer::of(b"cagate"),
            )
        }
    }

    /// The request body so far (at most `max` bytes): what Envoy buffered while the filter held the
    /// request, then the frame of this callback.
    pub(crate) fn request_body(&self, max: usize) -> Vec<u8> {
        self.body(Body::BufferedRequest, Body::ReceivedRequest, max)
    }

    pub(crate) fn response_body(&self, max: usize) -> Vec<u8> {
        self.body(Body::BufferedResponse, Body::ReceivedResponse, max)
    }

    /// Size of the body so far (buffered and this callback's frame).
    pub(crate) fn request_body_size(&self) -> usize {
        self.body_size(Body::BufferedRequest, Body::ReceivedRequest)
    }

    pub(crate) fn response_body_size(&self) -> usize {
        self.body_size(Body::BufferedResponse, Body::ReceivedResponse)
    }

    fn received_is_buffered(&self, received: Body) -> bool {
        // SAFETY: plain values.
        unsafe {
            match received {
                Body::ReceivedRequest => envoy_dynamic_module_callback_http_received_buffered_request_body(self.0),
                _ => envoy_dynamic_module_callback_http_received_buffered_response_body(self.0),
            }
        }
    }

    fn body_size(&self, buffered: Body, received: Body) -> usize {
        // SAFETY: plain values.
        unsafe {
            let b = envoy_dynamic_module_callback_http_get_body_size(self.0, buffered as u32);
            if self.received_is_buffered(received) {
                return b;
            }
            b + envoy_dynamic_module_callback_http_get_body_size(self.0, received as u32)
        }
    }

    fn body(&self, buffered: Body, received: Body, max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let kinds: &[Body] = if self.received_is_buffered(received) { &[buffered] } else { &[buffered, received] };
        for kind in kinds {
            // SAFETY: the array is sized from Envoy's own count; each chunk is copied at once.
            unsafe {
                let n = envoy_dynamic_module_callback_http_get_body_chunks_size(self.0, *kind as u32);
                if n == 0 {
                    continue;
                }
                let mut chunks = vec![NULL_BUFFER; n];
                if !envoy_dynamic_module_callback_http_get_body_chunks(self.0, *kind as u32, chunks.as_mut_ptr()) {
                    continue;
                }
                for c in &chunks {
                    let room = max.saturating_sub(out.len());
                    out.extend_from_slice(&slice(c.ptr, c.length)[..c.length.min(room)]);
                }
            }
        }
        out
    }

    /// Replaces the whole response body so far with `body`.
    pub(crate) fn replace_response_body(&self, body: &[u8]) {
        let same = self.received_is_buffered(Body::ReceivedResponse);
        // SAFETY: plain values and a slice that outlives the call (Envoy copies it).
        unsafe {
            let buffered = envoy_dynamic_module_callback_http_get_body_size(self.0, Body::BufferedResponse as u32);
            let _ = envoy_dynamic_module_callback_http_drain_body(self.0, Body::BufferedResponse as u32, buffered);
            // The frame of this callback joins the buffered body when the filter continues: the new
            // body goes there.
            let target = if same { Body::BufferedResponse } else { Body::ReceivedResponse };
            if !same {
                let received = envoy_dynamic_module_callback_http_get_body_size(self.0, Body::ReceivedResponse as u32);
                let _ = envoy_dynamic_module_callback_http_drain_body(self.0, Body::ReceivedResponse as u32, received);
            }
            let _ = envoy_dynamic_module_callback_http_append_body(self.0, target as u32, ModuleBuffer::of(body));
        }
    }

    pub(crate) fn attribute(&self, id: Attribute) -> Option<Vec<u8>> {
        let mut out = NULL_BUFFER;
        // SAFETY: `out` is a valid out-pointer; the value is copied at once.
        unsafe {
            if !envoy_dynamic_module_callback_http_filter_get_attribute_string(self.0, id as u32, &mut out) {
                return None;
            }
            envoy_bytes(out)
        }
    }

    pub(crate) fn set_filter_state(&self, key: &str, value: &[u8]) {
        // SAFETY: the buffers outlive the call; Envoy copies them.
        let _ =
            unsafe { envoy_dynamic_module_callback_http_set_filter_state_bytes(self.0, ModuleBuffer::of(key.as_bytes()), ModuleBuffer::of(value)) };
    }

    /// Has Envoy route the request again (its headers changed: `:path`, the stage's cluster header).
    pub(crate) fn clear_route_cache(&self) {
        // SAFETY: a valid filter handle.
        unsafe { envoy_dynamic_module_callback_http_clear_route_cache(self.0) }
    }

    /// An HTTP call through a cluster on this stream's behalf (its worker thread); the answer comes
    /// to `on_http_filter_http_callout_done` with the returned id. Envoy cancels it if the stream ends
    /// first.
    pub(crate) fn callout(&self, cluster: &str, headers: &[(&str, &str)], body: &[u8], timeout_ms: u64) -> Option<u64> {
        callout(envoy_dynamic_module_callback_http_filter_http_callout, self.0, cluster, headers, body, timeout_ms)
    }

    pub(crate) fn continue_decoding(&self) {
        // SAFETY: a valid filter handle.
        unsafe { envoy_dynamic_module_callback_http_filter_continue_decoding(self.0) }
    }

    pub(crate) fn record(&self, id: usize, value: u64) {
        // SAFETY: no labels (a null array of length 0).
        let _ = unsafe { envoy_dynamic_module_callback_http_filter_record_histogram_value(self.0, id, std::ptr::null(), 0, value) };
    }
}

/// A copy of bytes Envoy points at (`None` for a null pointer).
///
/// # Safety
/// `b` must point at `b.length` readable bytes (or be null).
unsafe fn envoy_bytes(b: EnvoyBuffer) -> Option<Vec<u8>> {
    if b.ptr.is_null() {
        return None;
    }
    // SAFETY: the caller's contract.
    Some(unsafe { slice(b.ptr, b.length) }.to_vec())
}

/// # Safety
/// `ptr` must point at `len` readable bytes for the returned lifetime, or `len` be 0.
unsafe fn slice<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

// ------------------------------------------------------------------------------------------------
// Event hooks. Each is `unsafe`: Envoy, the caller, guarantees the pointers it passes (a module
// pointer is one this module returned and Envoy has not destroyed; buffers and arrays are valid for
// the hook's duration).

/// Runs a hook body; a panic is logged and turned into `fallback`.
fn guard<R>(fallback: R, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => {
            log(Level::Error, "cagate: internal error in a hook (panic caught at the module boundary)");
            fallback
        }
    }
}

/// A filter's status for Envoy: `Continue` (0) or stop (1: `StopIteration` for headers and trailers,
/// `StopIterationAndBuffer` for bodies).
fn status(flow: cagate_core::Flow) -> u32 {
    match flow {
        cagate_core::Flow::Continue => 0,
        cagate_core::Flow::Pause => 1,
    }
}

/// # Safety
/// `p` must be null or a pointer `on_http_filter_new` returned and `destroy` has not freed.
unsafe fn filter_of<'a>(p: *const c_void) -> Option<&'a mut crate::http::Filter> {
    // SAFETY: the caller's contract; Envoy calls a stream's hooks one at a time, on its worker.
    unsafe { (p as *mut crate::http::Filter).as_mut() }
}

/// # Safety
/// `p` must be null or a pointer `on_http_filter_config_new` returned and not yet destroyed.
unsafe fn config_of<'a>(p: *const c_void) -> Option<&'a crate::config::Config> {
    // SAFETY: the caller's contract.
    unsafe { (p as *const crate::config::Config).as_ref() }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const c_char {
    guard(std::ptr::null(), || {
        crate::logger::install();
        ABI_VERSION.as_ptr().cast()
    })
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_new(config: *mut c_void, name: EnvoyBuffer, doc: EnvoyBuffer) -> *const c_void {
    guard(std::ptr::null(), || {
        // SAFETY: Envoy's buffers are valid for this hook; both are copied by the callee if kept.
        let (name, doc) = unsafe { (slice(name.ptr, name.length), slice(doc.ptr, doc.length)) };
        match crate::config::Config::new(ConfigHandle(config), name, doc) {
            Some(c) => Box::into_raw(Box::new(c)) as *const c_void,
            None => std::ptr::null(),
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(config: *const c_void) {
    guard((), || {
        if !config.is_null() {
            // SAFETY: the pointer `config_new` returned, destroyed once by Envoy.
            let c = unsafe { Box::from_raw(config as *mut crate::config::Config) };
            c.shutdown();
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_scheduled(_envoy: *mut c_void, config: *const c_void, _event_id: u64) {
    // SAFETY: a live config pointer (Envoy stops scheduling once it destroys the config).
    guard((), || {
        if let Some(c) = unsafe { config_of(config) } {
            c.tick();
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_http_callout_done(
    _envoy: *mut c_void,
    config: *const c_void,
    callout_id: u64,
    result: u32,
    headers: *const EnvoyHeader,
    headers_len: usize,
    chunks: *const EnvoyBuffer,
    chunks_len: usize,
) {
    guard((), || {
        // SAFETY: a live config pointer; the arrays are valid for this hook (null when empty), and
        // are copied into the answer at once.
        let Some(c) = (unsafe { config_of(config) }) else { return };
        // One byte past the largest document a config callout fetches (the app registry's; a JWKS
        // is smaller): enough for the reader to refuse a larger one.
        let max_body = cagate_core::app_registry::MAX_DOCUMENT_BYTES + 1;
        let answer = unsafe { callout_answer(result, headers, headers_len, chunks, chunks_len, max_body) };
        c.callout_done(callout_id, answer);
    })
}

/// A config callout's answer: its `:status` and headers (None when the call failed) and the body.
pub(crate) struct CalloutAnswer {
    pub(crate) headers: Option<Vec<(Vec<u8>, Vec<u8>)>>,
    pub(crate) body: Vec<u8>,
}

impl CalloutAnswer {
    pub(crate) fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.as_ref()?.iter().find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v.as_slice())
    }
}

/// The answer with at most `max_body` bytes of its body.
///
/// # Safety
/// Each array must be null or hold its length of valid entries for this hook.
unsafe fn callout_answer(
    result: u32,
    headers: *const EnvoyHeader,
    headers_len: usize,
    chunks: *const EnvoyBuffer,
    chunks_len: usize,
    max_body: usize,
) -> CalloutAnswer {
    if result != CALLOUT_OK {
        return CalloutAnswer { headers: None, body: Vec::new() };
    }
    // SAFETY: the caller's contract.
    unsafe {
        let hs: &[EnvoyHeader] = if headers.is_null() { &[] } else { std::slice::from_raw_parts(headers, headers_len) };
        let cs: &[EnvoyBuffer] = if chunks.is_null() { &[] } else { std::slice::from_raw_parts(chunks, chunks_len) };
        let headers = hs.iter().map(|h| (slice(h.key_ptr, h.key_length).to_vec(), slice(h.value_ptr, h.value_length).to_vec())).collect();
        let mut body = Vec::new();
        for c in cs {
            let chunk = slice(c.ptr, c.length);
            let room = max_body.saturating_sub(body.len());
            body.extend_from_slice(chunk.get(..room).unwrap_or(chunk));
        }
        CalloutAnswer { headers: Some(headers), body }
    }
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_new(config: *const c_void, envoy: *mut c_void) -> *const c_void {
    guard(std::ptr::null(), || {
        // SAFETY: a live config pointer (Envoy keeps it while streams use it).
        let Some(c) = (unsafe { config_of(config) }) else { return std::ptr::null() };
        Box::into_raw(Box::new(crate::http::Filter::new(c, FilterHandle(envoy)))) as *const c_void
    })
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_destroy(filter: *const c_void) {
    guard((), || {
        if !filter.is_null() {
            // SAFETY: the pointer `on_http_filter_new` returned, destroyed once by Envoy.
            drop(unsafe { Box::from_raw(filter as *mut crate::http::Filter) });
        }
    })
}

/// Which half of the stream an event belongs to: what a panic in it must leave behind.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The request may be held: a panic answers it (`X500ER`), or it would wait for Envoy's idle timeout.
    Request,
    /// The response goes on as it is.
    Response,
}

/// Runs one stream event on its filter.
fn on_filter(
    envoy: *mut c_void,
    filter: *const c_void,
    phase: Phase,
    f: impl FnOnce(&mut crate::http::Filter, FilterHandle) -> cagate_core::Flow,
) -> u32 {
    // The benchmark's floor: Envoy running a dynamic-module filter that does nothing (never shipped).
    if cfg!(feature = "bench-empty") {
        return 0;
    }
    let run = || {
        // SAFETY: a pointer `on_http_filter_new` returned for this stream, alive until destroy.
        match unsafe { filter_of(filter) } {
            Some(x) => status(f(x, FilterHandle(envoy))),
            None => 0,
        }
    };
    match phase {
        Phase::Request => guard(None, || Some(run())).unwrap_or_else(|| {
            refuse_after_panic(envoy, filter);
            1
        }),
        Phase::Response => guard(0, run),
    }
}

/// Answers a request whose hook panicked with `X500ER` (and its request id), so that it is not left
/// held with nothing to resume it; unless it was answered or sent on before the panic.
fn refuse_after_panic(envoy: *mut c_void, filter: *const c_void) {
    guard((), || {
        // SAFETY: as in `on_filter`; only the request's id and whether it was decided are read.
        let x = unsafe { filter_of(filter) };
        if x.as_ref().is_some_and(|x| x.decided()) {
            return;
        }
        let id = x.map(|x| x.request_id().to_string()).unwrap_or_default();
        let refusal = cagate_core::Refusal::new(&cagate_core::errors::X500ER, &[], "internal error");
        let out = cagate_core::reply_for(&refusal, &id, cagate_core::errors::ErrorContract::Vpc);
        let headers: Vec<(&str, &str)> = out.headers.iter().map(|(n, v)| (n.as_ref(), v.as_str())).collect();
        FilterHandle(envoy).send_response(out.status, &headers, out.body.as_bytes());
    })
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(envoy: *mut c_void, filter: *const c_void, end_of_stream: bool) -> u32 {
    on_filter(envoy, filter, Phase::Request, |x, h| x.on_request_headers(h, end_of_stream))
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_body(envoy: *mut c_void, filter: *const c_void, end_of_stream: bool) -> u32 {
    on_filter(envoy, filter, Phase::Request, |x, h| x.on_request_body(h, end_of_stream))
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(envoy: *mut c_void, filter: *const c_void) -> u32 {
    on_filter(envoy, filter, Phase::Request, |x, h| x.on_request_trailers(h))
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(envoy: *mut c_void, filter: *const c_void, end_of_stream: bool) -> u32 {
    on_filter(envoy, filter, Phase::Response, |x, h| x.on_response_headers(h, end_of_stream))
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_response_body(envoy: *mut c_void, filter: *const c_void, end_of_stream: bool) -> u32 {
    on_filter(envoy, filter, Phase::Response, |x, h| x.on_response_body(h, end_of_stream))
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(_envoy: *mut c_void, _filter: *const c_void) -> u32 {
    0
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(envoy: *mut c_void, filter: *const c_void) {
    on_filter(envoy, filter, Phase::Response, |x, h| x.on_stream_complete(h));
}

// Hooks Envoy requires a module to export, for features this module does not use.

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_new(_name: EnvoyBuffer, _config: EnvoyBuffer) -> *const c_void {
    std::ptr::null()
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_destroy(_config: *const c_void) {}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_http_callout_done(
    envoy: *mut c_void,
    filter: *const c_void,
    callout_id: u64,
    result: u32,
    headers: *const EnvoyHeader,
    headers_len: usize,
    chunks: *const EnvoyBuffer,
    chunks_len: usize,
) {
    guard(None, || {
        // SAFETY: the arrays are valid for this hook (null when empty) and copied into the answer at
        // once; the filter pointer is this stream's, alive until its destroy hook.
        let answer = unsafe { callout_answer(result, headers, headers_len, chunks, chunks_len, cagate_core::MAX_HTTP_ANSWER_BODY) };
        if let Some(x) = unsafe { filter_of(filter) } {
            x.on_callout_done(FilterHandle(envoy), callout_id, &answer);
        }
        Some(())
    })
    .unwrap_or_else(|| refuse_after_panic(envoy, filter))
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_headers(
    _envoy: *mut c_void,
    _filter: *const c_void,
    _stream: u64,
    _headers: *const EnvoyHeader,
    _len: usize,
    _end: bool,
) {
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_data(
    _envoy: *mut c_void,
    _filter: *const c_void,
    _stream: u64,
    _data: *const EnvoyBuffer,
    _len: usize,
    _end: bool,
) {
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_trailers(
    _envoy: *mut c_void,
    _filter: *const c_void,
    _stream: u64,
    _trailers: *const EnvoyHeader,
    _len: usize,
) {
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_complete(_envoy: *mut c_void, _filter: *const c_void, _stream: u64) {}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_reset(
    _envoy: *mut c_void,
    _filter: *const c_void,
    _stream: u64,
    _reason: u32,
) {
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_headers(
    _envoy: *mut c_void,
    _config: *const c_void,
    _stream: u64,
    _headers: *const EnvoyHeader,
    _len: usize,
    _end: bool,
) {
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_data(
    _envoy: *mut c_void,
    _config: *const c_void,
    _stream: u64,
    _data: *const EnvoyBuffer,
    _len: usize,
    _end: bool,
) {
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_trailers(
    _envoy: *mut c_void,
    _config: *const c_void,
    _stream: u64,
    _trailers: *const EnvoyHeader,
    _len: usize,
) {
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_complete(_envoy: *mut c_void, _config: *const c_void, _stream: u64) {}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_config_http_stream_reset(
    _envoy: *mut c_void,
    _config: *const c_void,
    _stream: u64,
    _reason: u32,
) {
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(_envoy: *mut c_void, _filter: *const c_void, _event_id: u64) {}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
    _envoy: *mut c_void,
    _filter: *const c_void,
) {
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
    _envoy: *mut c_void,
    _filter: *const c_void,
) {
}

#[no_mangle]
pub unsafe extern "C" fn envoy_dynamic_module_on_http_filter_local_reply(
    _envoy: *mut c_void,
    _filter: *const c_void,
    _status: u32,
    _details: EnvoyBuffer,
    _reset_imminent: bool,
) -> u32 {
    0
}
