//! Does nothing on every request: the cost of hosting any proxy-wasm HTTP filter, for `make bench`.
//!
//! With a plugin configuration, it makes the host calls that configuration names (comma-separated,
//! see `Call`) on every request and nothing else: `bench.py --host-calls` measures what each one costs
//! in Envoy, over this filter with none.

// A benchmark probe, never deployed: the SDK's wrappers (which panic on an unexpected host status)
// make the same ABI calls as the cagate adapter's own.
#![allow(clippy::disallowed_methods)]

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, MetricType};
use std::rc::Rc;

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

/// One host call, as the cagate filter makes it on a request.
#[derive(Clone, Copy)]
enum Call {
    /// The whole request header map (`proxy_get_header_map_pairs`).
    RequestMap,
    /// One request header (`proxy_get_header_map_value`, `:path`).
    RequestHeader,
    /// Adds a request header the client did not send (`proxy_add_header_map_value`).
    AddRequestHeader,
    /// Sets a request header the client did not send (`proxy_replace_header_map_value`).
    SetRequestHeader,
    /// Removes a request header the client did not send (`proxy_remove_header_map_value`).
    RemoveRequestHeader,
    ResponseMap,
    /// One response header (`:status`).
    ResponseHeader,
    AddResponseHeader,
    /// The clock (`proxy_get_current_time_nanoseconds`).
    Time,
    /// A 300-byte filter state value (`proxy_set_property`).
    SetProperty,
    /// A histogram sample (`proxy_record_metric`).
    Histogram,
    /// A counter increment (`proxy_increment_metric`).
    Counter,
    /// A shared data read of a key that exists (`proxy_get_shared_data`).
    SharedGet,
}

impl Call {
    fn parse(name: &str) -> Option<Call> {
        Some(match name {
            "request_map" => Call::RequestMap,
            "request_header" => Call::RequestHeader,
            "add_request_header" => Call::AddRequestHeader,
            "set_request_header" => Call::SetRequestHeader,
            "remove_request_header" => Call::RemoveRequestHeader,
            "response_map" => Call::ResponseMap,
            "response_header" => Call::ResponseHeader,
            "add_response_header" => Call::AddResponseHeader,
            "time" => Call::Time,
            "set_property" => Call::SetProperty,
            "histogram" => Call::Histogram,
            "counter" => Call::Counter,
            "shared_get" => Call::SharedGet,
            _ => return None,
        })
    }

    fn response_phase(self) -> bool {
        matches!(self, Call::ResponseMap | Call::ResponseHeader | Call::AddResponseHeader)
    }
}

#[derive(Default)]
struct Probe {
    calls: Vec<Call>,
    histogram: u32,
    counter: u32,
}

#[derive(Default)]
struct Root {
    probe: Rc<Probe>,
}

impl Context for Root {}
impl RootContext for Root {
    fn on_configure(&mut self, size: usize) -> bool {
        let config = self.get_plugin_configuration().filter(|_| size > 0).unwrap_or_default();
        let mut probe = Probe::default();
        for name in String::from_utf8_lossy(&config).split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match Call::parse(name) {
                Some(c) => probe.calls.push(c),
                None => return false,
            }
        }
        if !probe.calls.is_empty() {
            probe.histogram = hostcalls::define_metric(MetricType::Histogram, "probe_us").unwrap_or(0);
            probe.counter = hostcalls::define_metric(MetricType::Counter, "probe_total").unwrap_or(0);
            let _ = hostcalls::set_shared_data("probe", Some(&[0u8; 16]), None);
        }
        self.probe = Rc::new(probe);
        true
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Pass { probe: self.probe.clone() }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Pass {
    probe: Rc<Probe>,
}

impl Pass {
    fn run(&self, response: bool) {
        for &call in self.probe.calls.iter().filter(|c| c.response_phase() == response) {
            match call {
                Call::RequestMap => drop(self.get_http_request_headers_bytes()),
                Call::RequestHeader => drop(self.get_http_request_header_bytes(":path")),
                Call::AddRequestHeader => self.add_http_request_header_bytes("x-probe-added", b"1"),
                Call::SetRequestHeader => self.set_http_request_header_bytes("x-probe-set", Some(b"1")),
                Call::RemoveRequestHeader => self.set_http_request_header_bytes("x-probe-absent", None),
                Call::ResponseMap => drop(self.get_http_response_headers_bytes()),
                Call::ResponseHeader => drop(self.get_http_response_header_bytes(":status")),
                Call::AddResponseHeader => self.add_http_response_header_bytes("x-probe-added", b"1"),
                Call::Time => drop(self.get_current_time()),
                Call::SetProperty => self.set_property(vec!["probe"], Some(&[b'x'; 300])),
                Call::Histogram => drop(hostcalls::record_metric(self.probe.histogram, 42)),
                Call::Counter => drop(hostcalls::increment_metric(self.probe.counter, 1)),
                Call::SharedGet => drop(self.get_shared_data("probe")),
            }
        }
    }
}

impl Context for Pass {}
impl HttpContext for Pass {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        self.run(false);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        self.run(true);
        Action::Continue
    }
}
