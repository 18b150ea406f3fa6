//! The request engine: one place that knows a request end to end. It owns the per-VM state built
//! once per configuration (the compiled gateway, the runtime caches, the nonce store, request ids,
//! cluster-mode leases) and takes the host's events for one HTTP stream (request headers, body,
//! trailers, gRPC answers, response headers and body) through `Exchange`, doing its I/O through the
//! small traits below. An adapter (proxy-wasm, or a native module) only translates its callbacks into
//! these events; native tests drive the same engine with in-memory hosts (`testkit`).

mod batching;
mod caching;
mod cluster_checks;
mod exchange;
mod record;
mod remote_checks;
mod response;
#[cfg(any(test, feature = "test-kit"))]
pub mod testkit;

pub use batching::{BatchCall, Delivery, Flush};
pub use cluster_checks::Answer;
use cluster_checks::LeaseBook;
pub use exchange::Exchange;

use crate::auth::replay::{NonceStore, OneTime, OneTimeKind};
use crate::cluster::etcd::{Lease, LEASE_BUCKET_S};
use crate::config::model::Gateway;
use crate::contract::request_id::RequestIds;
use crate::host::{Clock, SharedStore, Stream};
use crate::plugins::binding::Runtime;
use crate::request::cluster_calls::{lease_call, lease_granted, lease_of, GrpcCall};
use std::cell::RefCell;
use std::rc::Rc;

/// What a host callback does next with the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Let the stream go on to the next filter.
    Continue,
    /// Hold it (buffering what comes): a decision is pending, or the gateway answered itself.
    Pause,
}

/// A counter event, for the adapter's stats (one meaning each: a request is counted once, as allowed
/// or as refused with its code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat<'a> {
    Allowed,
    Refused(&'static str),
    /// trafficControl: one dimension of one plugin admitted or throttled the request.
    Traffic {
        plugin: crate::ids::PluginId,
        name: &'a str,
        dim: &'static str,
        admitted: bool,
    },
    /// Cluster mode: `service` (rls, etcd) and what happened (calls, errors, timeouts, ...).
    ClusterMode(&'static str, &'static str),
    BreakerOpened,
    BreakerRefused,
    NonceStoreFull,
    /// Every request once, when its outcome is known: the API and stage (index, name) when routed,
    /// the app when per-app counting is on (`max_apps` distinct ones at most), and the code the
    /// client got (`OK`: the gateway added none).
    Request {
        api: Option<(crate::ids::ApiId, &'a str)>,
        stage: Option<(crate::ids::StageId, &'a str)>,
        app: Option<(crate::ids::AppId, &'a str)>,
        max_apps: usize,
        code: &'static str,
    },
    /// The filter's own time for a request, from its headers to the decision.
    FilterMicros(u64),
    /// Envoy answered in place of a backend that failed (`D…` codes, `X504TO`, ...).
    BackendFailure(&'static str),
    /// Report-only: the request would have been refused with this code, and went on.
    WouldRefuse(&'static str),
    /// caching: a lookup found a fresh answer (`hit`) or none (`miss`), or an answer was `stored`.
    Caching(&'static str),
}

/// Where stats go.
pub trait Stats {
    fn record(&self, stat: Stat<'_>);
}

/// The host services of a VM: the precise clock, a coarse one (refreshed by the adapter's tick, for
/// checks with tolerances of seconds), shared data and stats.
pub struct Services<'h> {
    pub clock: &'h dyn Clock,
    pub coarse: &'h dyn Clock,
    pub store: &'h dyn SharedStore,
    pub stats: &'h dyn Stats,
}

/// One HTTP stream as the host exposes it: its headers and bodies, local replies, and calls made on
/// its behalf. Every method is one host call in Envoy; a failed call is a no-op or `false`.
pub trait StreamIo: Stream {
    /// The request header map, in the proxy-wasm serialized form (`Headers::from_serialized`).
    fn request_headers(&self) -> Vec<u8>;
    /// The response header map, serialized as `request_headers` (response phase): one host call
    /// where reading the status and the error headers one by one would be three.
    fn response_headers(&self) -> Vec<u8>;
    /// Sets (`Some`) or removes (`None`) one request header; `false` if the host refused.
    fn set_request_header(&self, name: &[u8], value: Option<&[u8]>) -> bool;
    /// Adds a request header the map does not hold (no spelling of it): a host may do that cheaper
    /// than a set, which looks for one to replace first.
    fn add_request_header(&self, name: &[u8], value: &[u8]) -> bool {
        self.set_request_header(name, Some(value))
    }
    /// At most `max` bytes of the buffered request body.
    fn request_body(&self, max: usize) -> Vec<u8>;
    /// Resumes a request the filter held.
    fn resume_request(&self);
    /// Answers in place of the backend (or replaces the response, in the response phase).
    fn send_local_reply(&self, status: u16, headers: &[(&str, &str)], body: &[u8]) -> bool;
    /// Envoy's response code details (`via_upstream` for a backend's own response).
    fn response_details(&self) -> Vec<u8>;
    fn set_response_header(&self, name: &str, value: Option<&[u8]>);
    /// Adds a response header: a value after those the map holds under the name, if any (an append,
    /// cheaper than a set; see `add_request_header`).
    fn add_response_header(&self, name: &str, value: &[u8]) {
        self.set_response_header(name, Some(value))
    }
    /// At most `max` bytes of the buffered response body.
    fn response_body(&self, max: usize) -> Vec<u8>;
    /// Replaces the first `size` bytes of the response body.
    fn set_response_body(&self, size: usize, body: &[u8]);
    /// Sends a gRPC call; its answer comes back as `Exchange::on_grpc_answer` with the token.
    fn send_grpc(&self, call: &GrpcCall) -> Option<u32>;
    /// Sends an HTTP call through an Envoy cluster (remoteAuth); its answer comes back as
    /// `Exchange::on_http_answer` with the token. `None`: not sent (a host without callouts).
    fn send_http(&self, _call: &crate::plugins::remote_auth::HttpCall) -> Option<u32> {
        None
    }
    /// Publishes a value for the access log and later filters (Envoy filter state `wasm.<name>`).
    fn set_filter_state(&self, _name: &str, _value: &[u8]) {}
}

/// Seeds from the host's randomness, taken once per configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct Seeds {
    pub request_ids: u64,
    pub caches: (u64, u64),
    pub nonce_store: [u8; 16],
    pub runtime: [u8; 16],
}

/// The per-VM state of one configuration. Requests keep the engine they started with: a newer
/// configuration or registry document is a new engine around the same runtime pieces.
pub struct Engine {
    pub gateway: Gateway,
    runtime: Rc<RefCell<Runtime>>,
    nonces: NonceStore,
    ids: Rc<RefCell<RequestIds>>,
    /// Cluster mode: the etcd leases this VM knows exist.
    leases: Rc<RefCell<LeaseBook>>,
    /// The caching plugin's answers, this VM's (never shared data: its keys are never freed).
    cache: Rc<RefCell<crate::plugins::caching::ResponseCache>>,
    /// Bytes of responses being copied for that cache, this VM's (bounded: `MAX_IN_FLIGHT`).
    cache_in_flight: Rc<std::cell::Cell<usize>>,
    /// Cluster mode: checks of concurrent requests batched into one call per service.
    batches: Rc<RefCell<batching::Batcher>>,
}

impl Engine {
    /// Builds the state of a configuration: the stores' keys are created in shared data (once, by
    /// whichever VM comes first), caches and ids seeded.
    pub fn new(gateway: Gateway, seeds: Seeds, store: &dyn SharedStore) -> Engine {
        let mut nonces = NonceStore::new(gateway.nonce_store);
        nonces.ensure(store, seeds.nonce_store);
        let mut runtime = Runtime::new(&gateway.plugins, seeds.caches);
        runtime.ensure(store, seeds.runtime);
        // Envoy cannot create a key only if it is absent: two workers creating a counter at the same
        // moment could lose a count, so the API-dimension counters exist before traffic.
        for key in gateway.traffic_keys() {
            if store.get(&key).is_none() {
                let _ = store.set(&key, &[0u8; 16], 0);
            }
        }
        Engine {
            gateway,
            runtime: Rc::new(RefCell::new(runtime)),
            nonces,
            ids: Rc::new(RefCell::new(RequestIds::new(seeds.request_ids))),
            leases: Rc::new(RefCell::new(LeaseBook::default())),
            cache: Rc::new(RefCell::new(crate::plugins::caching::ResponseCache::default())),
            cache_in_flight: Rc::default(),
            batches: Rc::default(),
        }
    }

    /// The same runtime pieces (caches, request ids, leases) around another configuration.
    pub fn with_gateway(&self, gateway: Gateway) -> Engine {
        Engine {
            gateway,
            runtime: self.runtime.clone(),
            nonces: self.nonces.clone(),
            ids: self.ids.clone(),
            leases: self.leases.clone(),
            cache: self.cache.clone(),
            cache_in_flight: self.cache_in_flight.clone(),
            batches: self.batches.clone(),
        }
    }

    pub fn nonce_shards(&self) -> usize {
        self.nonces.shard_count()
    }

    /// The runtime caches (JWKS installed by the adapter's fetches, token caches).
    pub fn runtime(&self) -> &RefCell<Runtime> {
        &self.runtime
    }

    /// A new request's exchange, with its request id.
    pub fn exchange(&self) -> Exchange {
        Exchange::new(self.ids.borrow_mut().next_id())
    }

    /// Cluster mode: the lease grants to send ahead (this minute's and the next), so that a request's
    /// claim is one round trip.
    pub fn leases_to_grant(&self, now_ms: i64) -> Vec<(Lease, GrpcCall)> {
        let gw = &self.gateway;
        if gw.cluster_mode.one_time_keys.is_none() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for ahead_ms in [0, LEASE_BUCKET_S * 1000] {
            let until = now_ms + gw.nonce_ttl_ms as i64 + ahead_ms;
            let key = OneTime { kind: OneTimeKind::Nonce, digest: [0; 16], until_ms: until };
            let Some(lease) = lease_of(gw, &key, now_ms) else { continue };
            if self.leases.borrow().knows(&lease) {
                continue;
            }
            if let Some(call) = lease_call(gw, &lease) {
                out.push((lease, call));
            }
        }
        out
    }

    /// Cluster mode: checks of concurrent requests queue behind a call in flight and go out together.
    /// Only for an adapter that flushes (`take_batches`) from a context that outlives any request,
    /// and delivers each answer to its stream (`Exchange::on_batched_answer`).
    pub fn enable_batching(&self) {
        self.batches.borrow_mut().enable();
    }

    /// Takes over another engine's batches (queued and in flight), for a configuration installed on
    /// the same VM while requests of the previous one wait for their answers.
    pub fn adopt_batches(&mut self, previous: &Engine) {
        self.batches = previous.batches.clone();
    }

    /// Whether checks are queued: the adapter should flush soon (its short tick).
    pub fn batches_pending(&self) -> bool {
        self.batches.borrow().pending()
    }

    /// What to send now: one batch per service with none in flight, the leases queued claims wait
    /// for, and the checks whose time ran out (answered `Timeout`).
    pub fn take_batches(&self, now_ms: i64) -> Flush {
        self.batches.borrow_mut().flush(&self.gateway, &self.leases.borrow(), now_ms)
    }

    /// A batch was sent with `token`, or not (`None`: its checks are answered as failed, to deliver).
    pub fn batch_sent(&self, batch: BatchCall, token: Option<u32>) -> Vec<Delivery> {
        self.batches.borrow_mut().sent(batch, token)
    }

    /// A batch's answer, split per check to deliver; `None` if `token` is not a batch's.
    pub fn batch_answered(&self, token: u32, answer: &Answer) -> Option<Vec<Delivery>> {
        self.batches.borrow_mut().answered(token, answer)
    }

    /// The answer to a grant sent by `leases_to_grant`; `false` if the lease is not usable.
    pub fn lease_answered(&self, lease: &Lease, answer: &Answer, now_ms: i64) -> bool {
        let granted = answer.lease_exists() || answer.body().is_some_and(lease_granted);
        if granted {
            self.leases.borrow_mut().add(lease, now_ms / 1000);
        }
        granted
    }
}
