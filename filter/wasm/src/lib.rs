//! The proxy-wasm adapter: gathers the request through host calls, runs cagate-core, and applies the
//! decision (local reply, or identity headers for the backend). No policy lives here.

mod app_registry;
mod grpc;
mod host;
mod hostcall;
mod http;
mod root;

use cagate_core::{Engine, Gateway};
use host::Metrics;
use proxy_wasm::traits::RootContext;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};

proxy_wasm::main! {{
    // Our logger and panic hook, not the SDK's: those unwrap the host's answer to a log call.
    if log::set_logger(&hostcall::HostLogger).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
    std::panic::set_hook(Box::new(|info| hostcall::log(5, &info.to_string())));
    proxy_wasm::set_root_context(|id| -> Box<dyn RootContext> { Box::new(root::Root::new(id)) });
}}

/// The core's engine of a configuration, and this VM's stats. A request keeps the state it started
/// with; a newer app registry document is a new state around the same runtime pieces.
pub(crate) struct State {
    engine: Engine,
    metrics: Rc<RefCell<Metrics>>,
    /// Cluster mode: the requests waiting for a batch's answer, by context id, where the root context
    /// finds them to deliver it.
    parked: Rc<RefCell<HashMap<u32, Weak<http::Parked>>>>,
    /// The tick period set now (ms): a request that queues a check asks for the short one.
    tick_ms: Rc<Cell<u64>>,
    /// This VM's wake-up queue (a shared queue only its root context reads), and whether a wake-up is
    /// already on its way: a request that queues a check wakes the root on the next turn of the
    /// worker's event loop, so a queued check waits for no tick.
    wake: Rc<Cell<Option<u32>>>,
    wake_pending: Rc<Cell<bool>>,
}

impl State {
    /// The state of a configuration; `previous` (this root context's earlier one) hands over the
    /// requests waiting for batches, which the root context goes on serving.
    pub(crate) fn new(mut engine: Engine, metrics: Rc<RefCell<Metrics>>, previous: Option<&State>) -> State {
        let Some(p) = previous else {
            // The root context flushes batches and delivers their answers (`root::Root::flush_batches`).
            engine.enable_batching();
            return State { engine, metrics, parked: Rc::default(), tick_ms: Rc::default(), wake: Rc::default(), wake_pending: Rc::default() };
        };
        engine.adopt_batches(&p.engine);
        State { engine, metrics, parked: p.parked.clone(), tick_ms: p.tick_ms.clone(), wake: p.wake.clone(), wake_pending: p.wake_pending.clone() }
    }

    /// Asks the root context to flush the batches on the next turn of the event loop (once while a
    /// wake-up is on its way).
    pub(crate) fn wake_root(&self) {
        if let (Some(token), false) = (self.wake.get(), self.wake_pending.get()) {
            self.wake_pending.set(hostcall::enqueue_shared_queue(token, b"").is_ok());
        }
    }

    pub(crate) fn with_gateway(&self, gateway: Gateway) -> State {
        State {
            engine: self.engine.with_gateway(gateway),
            metrics: self.metrics.clone(),
            parked: self.parked.clone(),
            tick_ms: self.tick_ms.clone(),
            wake: self.wake.clone(),
            wake_pending: self.wake_pending.clone(),
        }
    }
}
