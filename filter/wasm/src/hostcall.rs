//! Every host call the adapter makes, as a raw ABI call whose status comes back as a value.
//!
//! proxy-wasm 0.2.5's wrappers (`hostcalls::*` and the `Context`/`HttpContext` methods built on them)
//! `panic!` on any status they do not expect, and a panic kills the worker's VM: every request on
//! that worker then fails. The host may answer an unexpected status (a header map too large, a
//! stream already reset, shared data refused), so the adapter never calls those wrappers: it calls
//! the ABI here, and each caller decides what a failure means. The SDK is still used for its
//! dispatcher (context creation and callbacks), its memory allocator, which the host uses to hand
//! buffers back (see `take`), and `dispatch_http_call`, which must register the call's token with
//! that dispatcher: it panics only on a status other than Ok, BadArgument and InternalFailure, and
//! Envoy's `Context::httpCall` returns no other (memory errors aside, impossible with our slices).

/// The ABI's status codes (proxy-wasm ABI 0.2.1).
pub(crate) const OK: u32 = 0;
pub(crate) const CAS_MISMATCH: u32 = 8;

/// Header maps.
#[derive(Clone, Copy)]
#[repr(u32)]
pub(crate) enum Map {
    Request = 0,
    Response = 2,
    HttpCallResponse = 6,
}

/// Buffers.
#[derive(Clone, Copy)]
#[repr(u32)]
pub(crate) enum Buffer {
    RequestBody = 0,
    ResponseBody = 1,
    HttpCallResponseBody = 4,
    GrpcReceive = 5,
    PluginConfiguration = 7,
}

pub(crate) type Status = u32;

#[cfg(target_arch = "wasm32")]
mod abi {
    #[link(wasm_import_module = "env")]
    extern "C" {
        pub(super) fn proxy_log(level: u32, data: *const u8, size: usize) -> u32;
        pub(super) fn proxy_get_current_time_nanoseconds(out: *mut u64) -> u32;
        pub(super) fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
        pub(super) fn proxy_get_buffer_bytes(kind: u32, start: usize, max: usize, out: *mut *mut u8, out_size: *mut usize) -> u32;
        pub(super) fn proxy_set_buffer_bytes(kind: u32, start: usize, size: usize, data: *const u8, data_size: usize) -> u32;
        pub(super) fn proxy_get_header_map_pairs(map: u32, out: *mut *mut u8, out_size: *mut usize) -> u32;
        pub(super) fn proxy_get_header_map_value(map: u32, key: *const u8, key_size: usize, out: *mut *mut u8, out_size: *mut usize) -> u32;
        pub(super) fn proxy_replace_header_map_value(map: u32, key: *const u8, key_size: usize, value: *const u8, value_size: usize) -> u32;
        pub(super) fn proxy_remove_header_map_value(map: u32, key: *const u8, key_size: usize) -> u32;
        pub(super) fn proxy_add_header_map_value(map: u32, key: *const u8, key_size: usize, value: *const u8, value_size: usize) -> u32;
        pub(super) fn proxy_get_property(path: *const u8, path_size: usize, out: *mut *mut u8, out_size: *mut usize) -> u32;
        pub(super) fn proxy_set_property(path: *const u8, path_size: usize, value: *const u8, value_size: usize) -> u32;
        pub(super) fn proxy_get_shared_data(key: *const u8, key_size: usize, out: *mut *mut u8, out_size: *mut usize, cas: *mut u32) -> u32;
        pub(super) fn proxy_set_shared_data(key: *const u8, key_size: usize, value: *const u8, value_size: usize, cas: u32) -> u32;
        pub(super) fn proxy_define_metric(kind: u32, name: *const u8, name_size: usize, out: *mut u32) -> u32;
        pub(super) fn proxy_increment_metric(id: u32, offset: i64) -> u32;
        pub(super) fn proxy_record_metric(id: u32, value: u64) -> u32;
        pub(super) fn proxy_continue_stream(stream: u32) -> u32;
        pub(super) fn proxy_set_effective_context(context_id: u32) -> u32;
        pub(super) fn proxy_register_shared_queue(name: *const u8, name_size: usize, token: *mut u32) -> u32;
        pub(super) fn proxy_enqueue_shared_queue(token: u32, data: *const u8, size: usize) -> u32;
        pub(super) fn proxy_dequeue_shared_queue(token: u32, out: *mut *mut u8, out_size: *mut usize) -> u32;
        pub(super) fn proxy_get_status(code: *mut u32, out: *mut *mut u8, out_size: *mut usize) -> u32;
        #[allow(clippy::too_many_arguments)]
        pub(super) fn proxy_send_local_response(
            status: u32,
            details: *const u8,
            details_size: usize,
            body: *const u8,
            body_size: usize,
            headers: *const u8,
            headers_size: usize,
            grpc_status: i32,
        ) -> u32;
    }
}

/// Native builds (clippy, `cargo test --workspace`) link no host: every call fails cleanly.
#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::too_many_arguments)]
mod abi {
    const NO_HOST: u32 = 10;
    pub(super) unsafe fn proxy_log(_: u32, _: *const u8, _: usize) -> u32 {
        NO_HOST
    }
    pub(super) unsafe fn proxy_get_current_time_nanoseconds(_: *mut u64) -> u32 {
        NO_HOST
    }
    pub(super) unsafe fn proxy_set_tick_period_milliseconds(_: u32) -> u32 {
        NO_HOST
    }
    pub(super) unsafe fn proxy_get_buffer_bytes(_: u32, _: usize, _: usize, _: *mut *mut u8, _: *mut usize) -> u32 {
        NO_HOST
    }
    pub(super) unsafe fn proxy_set_buffer_bytes(_: u32, _: usize, _: usize, _: *const u8, _: usize) -> u32 {
        NO_HOST
    }
    pub(super) unsafe fn proxy_get_header_map_pairs(_: u32, _: *mut *mut u8, _: *mut usize) -> u32 {
        NO_HOST
    }
    pub(super) unsafe fn proxy_get_header_map_value(_: u32, _: *const u8, _: usize, _: *mut *mut u8, _: *mut usize) -> u32 {
        NO_HOST
    }
    pub(super) unsafe fn proxy_replace_header_map_value(_: u32, _: *const u8, _: usize, _: *const u8, _: usize) -> u32 {
        NO_HOST
    }
    pub(super) unsafe fn proxy_add_header_map_value(_: u32, _: *const u8, _: usize, _: *const u8, _: usize) -> u32 {
        NO_HOST
    }
    pub(super) unsafe fn proxy_remove_header_map_value(_: u32, _: *const u8, _: usize) -> u32 {
        NO_HOST
    }
    pub(super) unsafe fn proxy_get_property(_: *const u8, _: usize, _: *mut *mut u8, _: *mut usize) -> u32 {
        NO_HOST
    }
    pub(super) unsafe fn proxy_set_property(_: *const u8, _: usize, _: *const u8, _: usize) -> u32 {
        NO_HOST
    }
    pub(super) unsafe fn proxy_get_shared_data(_: *const u8, _: usize, _: *mut *mut u8, _: *mut usize, _: *mut u32) -> u32 {
        NO_HOST
    }
    pub(super) unsafe fn proxy_set_shared_data(_: *const u8, _: usize, _: *const u8, _: usize, _: u32) -> u32 {
        NO_HOST
    }
    pub(super) unsafe fn proxy_define_metric(_: u32, _: *const u8, _: usize, _: *mut u32) -> u32 {
        NO_HOST
    }
    pub(super) unsafe fn proxy_increment_metric(_: u32, _: i64) -> u32 {
        NO_HOST
    }
    pub(super) unsafe fn proxy_record_metric(_: u32, _: u64) -> u32 {
        NO_HOST
    }
    pub(super) unsafe fn proxy_continue_stream(_: u32) -> u32 {
        NO_HOST
    }
    pub(super) unsafe fn proxy_set_effective_context(_: u32) -> u32 {
        NO_HOST
    }
    pub(super) unsafe fn proxy_register_shared_queue(_: *const u8, _: usize, _: *mut u32) -> u32 {
        NO_HOST
    }
    pub(super) unsafe fn proxy_enqueue_shared_queue(_: u32, _: *const u8, _: usize) -> u32 {
        NO_HOST
    }
    pub(super) unsafe fn proxy_dequeue_shared_queue(_: u32, _: *mut *mut u8, _: *mut usize) -> u32 {
        NO_HOST
    }
    pub(super) unsafe fn proxy_get_status(_: *mut u32, _: *mut *mut u8, _: *mut usize) -> u32 {
        NO_HOST
    }
    pub(super) unsafe fn proxy_send_local_response(_: u32, _: *const u8, _: usize, _: *const u8, _: usize, _: *const u8, _: usize, _: i32) -> u32 {
        NO_HOST
    }
}

/// Host calls made, for `bench.py --host-calls` (a build with the `host-call-count` feature); a
/// counter in the module, so counting is no host call itself.
#[cfg(feature = "host-call-count")]
static HOST_CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[inline(always)]
fn count() {
    #[cfg(feature = "host-call-count")]
    HOST_CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Adds the host calls made since the last tick to counter `cagate.host_calls` (`host-call-count`
/// builds only: the root context's tick calls it).
#[cfg(feature = "host-call-count")]
pub(crate) fn publish_host_calls() {
    thread_local! {
        static ID: std::cell::Cell<Option<u32>> = const { std::cell::Cell::new(None) };
    }
    let calls = HOST_CALLS.swap(0, std::sync::atomic::Ordering::Relaxed);
    let id = ID.with(|c| {
        if c.get().is_none() {
            c.set(define_counter("cagate.host_calls"));
        }
        c.get()
    });
    if let Some(id) = id {
        let _ = increment(id, i64::try_from(calls).unwrap_or(i64::MAX));
    }
}

/// Takes ownership of a buffer the host returned. The host allocates it through the SDK's exported
/// `proxy_on_memory_allocate`, which hands out a `Vec<u8>` of exactly `size` bytes; it is taken once.
fn take(ptr: *mut u8, size: usize) -> Vec<u8> {
    if ptr.is_null() || size == 0 {
        return Vec::new();
    }
    // SAFETY: see above; a non-null pointer with its size, owned by no one else.
    unsafe { Vec::from_raw_parts(ptr, size, size) }
}

fn status(s: u32) -> Result<(), Status> {
    if s == OK {
        Ok(())
    } else {
        Err(s)
    }
}

/// Writes one log line; a failure to log is not worth failing a request for.
pub(crate) fn log(level: u32, message: &str) {
    count();
    // SAFETY: a valid slice for the duration of the call.
    let _ = unsafe { abi::proxy_log(level, message.as_ptr(), message.len()) };
}

pub(crate) fn now_nanos() -> u64 {
    count();
    let mut t = 0u64;
    // SAFETY: `t` outlives the call.
    match unsafe { abi::proxy_get_current_time_nanoseconds(&mut t) } {
        OK => t,
        _ => 0,
    }
}

pub(crate) fn set_tick_period(period: std::time::Duration) -> Result<(), Status> {
    count();
    // SAFETY: plain values.
    status(unsafe { abi::proxy_set_tick_period_milliseconds(period.as_millis().min(u32::MAX as u128) as u32) })
}

/// Up to `max` bytes of a buffer from `start`; empty if the host has none.
pub(crate) fn buffer(kind: Buffer, start: usize, max: usize) -> Vec<u8> {
    count();
    let (mut ptr, mut size) = (std::ptr::null_mut(), 0usize);
    // SAFETY: out-pointers outlive the call; the returned buffer is taken once.
    match unsafe { abi::proxy_get_buffer_bytes(kind as u32, start, max, &mut ptr, &mut size) } {
        OK => take(ptr, size),
        _ => Vec::new(),
    }
}

/// Replaces `size` bytes from `start` of a buffer with `data`.
pub(crate) fn set_buffer(kind: Buffer, start: usize, size: usize, data: &[u8]) -> Result<(), Status> {
    count();
    // SAFETY: a valid slice for the duration of the call.
    status(unsafe { abi::proxy_set_buffer_bytes(kind as u32, start, size, data.as_ptr(), data.len()) })
}

/// A whole header map in the proxy-wasm serialized form (see `cagate_core::headers`).
pub(crate) fn header_map(map: Map) -> Vec<u8> {
    count();
    let (mut ptr, mut size) = (std::ptr::null_mut(), 0usize);
    // SAFETY: out-pointers outlive the call; the returned buffer is taken once.
    match unsafe { abi::proxy_get_header_map_pairs(map as u32, &mut ptr, &mut size) } {
        OK => take(ptr, size),
        _ => Vec::new(),
    }
}

pub(crate) fn header(map: Map, name: &str) -> Option<Vec<u8>> {
    count();
    let (mut ptr, mut size) = (std::ptr::null_mut(), 0usize);
    // SAFETY: out-pointers outlive the call; the returned buffer is taken once.
    match unsafe { abi::proxy_get_header_map_value(map as u32, name.as_ptr(), name.len(), &mut ptr, &mut size) } {
        OK => Some(take(ptr, size)),
        _ => None,
    }
}

/// Sets (replacing every value of that name) or, with `None`, removes a header.
pub(crate) fn set_header(map: Map, name: &[u8], value: Option<&[u8]>) -> Result<(), Status> {
    count();
    // SAFETY: valid slices for the duration of the call.
    status(unsafe {
        match value {
            Some(v) => abi::proxy_replace_header_map_value(map as u32, name.as_ptr(), name.len(), v.as_ptr(), v.len()),
            None => abi::proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()),
        }
    })
}

/// Adds a value to a header map, after any the name already has: for a header the map does not
/// hold, cheaper in Envoy than a replace, which looks for one to remove first.
pub(crate) fn add_header(map: Map, name: &[u8], value: &[u8]) -> Result<(), Status> {
    count();
    // SAFETY: valid slices for the duration of the call.
    status(unsafe { abi::proxy_add_header_map_value(map as u32, name.as_ptr(), name.len(), value.as_ptr(), value.len()) })
}

/// A property (`["source", "address"]`, `["response", "code_details"]`, …).
pub(crate) fn property(path: &[&str]) -> Option<Vec<u8>> {
    count();
    let joined = path.join("\0");
    let (mut ptr, mut size) = (std::ptr::null_mut(), 0usize);
    // SAFETY: out-pointers outlive the call; the returned buffer is taken once.
    match unsafe { abi::proxy_get_property(joined.as_ptr(), joined.len(), &mut ptr, &mut size) } {
        OK => Some(take(ptr, size)),
        _ => None,
    }
}

/// Sets a property; Envoy keeps a top-level one as filter state named `wasm.<name>`, which the access
/// log reads (`%FILTER_STATE(wasm.<name>:PLAIN)%`) and later filters see.
pub(crate) fn set_property(path: &[&str], value: &[u8]) -> Result<(), Status> {
    count();
    // One segment (the access record's) is passed as is: no joined copy per request.
    let joined = match path {
        [one] => std::borrow::Cow::Borrowed(*one),
        _ => std::borrow::Cow::Owned(path.join("\0")),
    };
    // SAFETY: valid slices for the duration of the call.
    status(unsafe { abi::proxy_set_property(joined.as_ptr(), joined.len(), value.as_ptr(), value.len()) })
}

/// A shared-data value and its CAS; `None` if absent or on failure. An existing empty value comes
/// back as an empty vector.
pub(crate) fn shared(key: &str) -> Option<(Vec<u8>, u32)> {
    count();
    let (mut ptr, mut size, mut cas) = (std::ptr::null_mut(), 0usize, 0u32);
    // SAFETY: out-pointers outlive the call; the returned buffer is taken once.
    match unsafe { abi::proxy_get_shared_data(key.as_ptr(), key.len(), &mut ptr, &mut size, &mut cas) } {
        OK => Some((take(ptr, size), cas)),
        _ => None,
    }
}

/// Sets a shared-data value if its CAS is still `cas` (0: unconditionally).
pub(crate) fn set_shared(key: &str, value: &[u8], cas: u32) -> Result<(), Status> {
    count();
    // SAFETY: valid slices for the duration of the call.
    status(unsafe { abi::proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas) })
}

/// A counter's id.
pub(crate) fn define_counter(name: &str) -> Option<u32> {
    count();
    let mut id = 0u32;
    // SAFETY: valid slice and out-pointer for the duration of the call.
    match unsafe { abi::proxy_define_metric(0, name.as_ptr(), name.len(), &mut id) } {
        OK => Some(id),
        _ => None,
    }
}

/// A histogram's id.
pub(crate) fn define_histogram(name: &str) -> Option<u32> {
    count();
    let mut id = 0u32;
    // SAFETY: valid slice and out-pointer for the duration of the call.
    match unsafe { abi::proxy_define_metric(2, name.as_ptr(), name.len(), &mut id) } {
        OK => Some(id),
        _ => None,
    }
}

/// A gauge's id.
pub(crate) fn define_gauge(name: &str) -> Option<u32> {
    count();
    let mut id = 0u32;
    // SAFETY: valid slice and out-pointer for the duration of the call.
    match unsafe { abi::proxy_define_metric(1, name.as_ptr(), name.len(), &mut id) } {
        OK => Some(id),
        _ => None,
    }
}

pub(crate) fn record(id: u32, value: u64) -> Result<(), Status> {
    count();
    // SAFETY: plain values.
    status(unsafe { abi::proxy_record_metric(id, value) })
}

pub(crate) fn increment(id: u32, by: i64) -> Result<(), Status> {
    count();
    // SAFETY: plain values.
    status(unsafe { abi::proxy_increment_metric(id, by) })
}

/// Resumes a request the filter paused (after its cluster-mode checks).
pub(crate) fn resume_request() -> Result<(), Status> {
    count();
    // SAFETY: a plain value (0: the HTTP request stream).
    status(unsafe { abi::proxy_continue_stream(0) })
}

/// Makes `context_id` the context later host calls of this callback act on (a stream's, from the
/// root context: a batch's answer delivered to the requests it was for).
pub(crate) fn set_effective_context(context_id: u32) -> Result<(), Status> {
    count();
    // SAFETY: a plain value.
    status(unsafe { abi::proxy_set_effective_context(context_id) })
}

/// Registers a shared queue for the current root context: Envoy calls its `on_queue_ready` on this
/// worker's event loop after something is enqueued.
pub(crate) fn register_shared_queue(name: &str) -> Option<u32> {
    count();
    let mut token = 0u32;
    // SAFETY: a valid slice and an out-value that outlive the call.
    match unsafe { abi::proxy_register_shared_queue(name.as_ptr(), name.len(), &mut token) } {
        OK => Some(token),
        _ => None,
    }
}

pub(crate) fn enqueue_shared_queue(token: u32, data: &[u8]) -> Result<(), Status> {
    count();
    // SAFETY: a valid slice for the duration of the call.
    status(unsafe { abi::proxy_enqueue_shared_queue(token, data.as_ptr(), data.len()) })
}

/// Takes one item from a shared queue; `None` when it is empty (or gone).
pub(crate) fn dequeue_shared_queue(token: u32) -> Option<Vec<u8>> {
    count();
    let (mut ptr, mut size) = (std::ptr::null_mut(), 0usize);
    // SAFETY: out-values that outlive the call; the buffer is the host's, handed over (`take`).
    match unsafe { abi::proxy_dequeue_shared_queue(token, &mut ptr, &mut size) } {
        OK => Some(take(ptr, size)),
        _ => None,
    }
}

/// The message of the last gRPC status (read only after a call failed).
pub(crate) fn grpc_status_message() -> String {
    count();
    let (mut code, mut ptr, mut size) = (0u32, std::ptr::null_mut(), 0usize);
    // SAFETY: out-pointers outlive the call; the returned buffer is taken once.
    match unsafe { abi::proxy_get_status(&mut code, &mut ptr, &mut size) } {
        OK => String::from_utf8_lossy(&take(ptr, size)).into_owned(),
        _ => String::new(),
    }
}

/// Serializes a header map (a local reply's headers).
pub(crate) fn serialize_map(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    cagate_core::headers::serialize(pairs)
}

/// Answers the request locally. The caller returns `Action::Pause` whatever this returns.
pub(crate) fn send_local_response(status_code: u32, headers: &[(&str, &str)], body: &[u8]) -> Result<(), Status> {
    count();
    let pairs: Vec<(&[u8], &[u8])> = headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())).collect();
    let map = serialize_map(&pairs);
    // SAFETY: valid slices for the duration of the call.
    status(unsafe { abi::proxy_send_local_response(status_code, std::ptr::null(), 0, body.as_ptr(), body.len(), map.as_ptr(), map.len(), -1) })
}

/// The `log` crate's messages to Envoy's log, through `log` above (the SDK's logger unwraps the
/// host's answer).
pub(crate) struct HostLogger;

impl log::Log for HostLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        // proxy-wasm levels: trace 0, debug 1, info 2, warn 3, error 4.
        let level = match record.level() {
            log::Level::Trace => 0,
            log::Level::Debug => 1,
            log::Level::Info => 2,
            log::Level::Warn => 3,
            log::Level::Error => 4,
        };
        log(level, &record.args().to_string());
    }

    fn flush(&self) {}
}
