//! Cluster mode in the engine: the cluster-mode checks of an admitted request (the rate limit call and the
//! claims of its one-time keys) sent in parallel, the lease state machine (grant when unknown, claim,
//! grant again when etcd forgot the lease), and the meaning of the services' gRPC statuses.
//!
//! `timeoutMs` bounds a key's whole chain. Each etcd call gets half of it at most, and a call that times
//! out or finds its member unavailable is sent again within what is left: Envoy's balancer picks the
//! next member, so one hung or dead member of a cluster that has a quorum costs a delay, not a refusal.
//! Sending again is safe because a grant names its lease and a claim reads back its own mark.

use super::batching::{Entry, Service, Solo, MIN_CALL_MS};
use super::{Engine, Services, Stat, StreamIo};
use crate::auth::replay::OneTime;
use crate::cluster::etcd::Lease;
use crate::contract::errors;
use crate::contract::refusal::Refusal;
use crate::plugins::traffic_control::Quota;
use crate::request::cluster_calls::{
    claim_call, claim_member, claim_verdict, lease_call, lease_granted, lease_of, rate_limit_call, rate_limit_member, rate_limit_verdict,
};
use crate::request::model::Admission;

/// gRPC status codes the engine tells apart.
const GRPC_DEADLINE_EXCEEDED: u32 = 4;
const GRPC_NOT_FOUND: u32 = 5;
const GRPC_FAILED_PRECONDITION: u32 = 9;
const GRPC_INTERNAL: u32 = 13;
const GRPC_UNAVAILABLE: u32 = 14;

/// How a gRPC answer came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Ok(Vec<u8>),
    Timeout,
    Failed(u32),
}

impl Answer {
    /// From the host's gRPC status; the body and the status message are read only when needed.
    pub fn from_grpc(status: u32, body: impl FnOnce() -> Vec<u8>, message: impl FnOnce() -> String) -> Answer {
        if status == 0 {
            return Answer::Ok(body());
        }
        if status == GRPC_UNAVAILABLE && message().contains("timeout") {
            Answer::Timeout
        } else {
            Answer::Failed(status)
        }
    }

    /// From a unary gRPC call made as a plain HTTP call (`grpc_http`): `status` is the HTTP status,
    /// `None` when the call failed without a response (reset, connection failure). Envoy answers a
    /// call that ran out of time with 504; other statuses without `grpc-status` are gRPC's
    /// UNAVAILABLE, as gRPC maps them.
    pub fn from_http(status: Option<u16>, grpc_status: Option<&[u8]>, body: &[u8]) -> Answer {
        match (status, grpc_status.map(|s| std::str::from_utf8(s).ok().and_then(|s| s.trim().parse::<u32>().ok()))) {
            (None, _) => Answer::Failed(GRPC_UNAVAILABLE),
            (Some(_), Some(Some(code))) if code != 0 => Answer::Failed(code),
            (Some(_), Some(None)) => Answer::Failed(GRPC_INTERNAL),
            (Some(200), _) => match crate::cluster::grpc_http::unframe(body) {
                Some(message) => Answer::Ok(message.to_vec()),
                None => Answer::Failed(GRPC_INTERNAL),
            },
            (Some(504), _) => Answer::Timeout,
            (Some(_), _) => Answer::Failed(GRPC_UNAVAILABLE),
        }
    }

    pub fn body(&self) -> Option<&[u8]> {
        match self {
            Answer::Ok(b) => Some(b),
            _ => None,
        }
    }

    /// etcd says the lease exists already (another Envoy or worker granted it first).
    pub fn lease_exists(&self) -> bool {
        matches!(self, Answer::Failed(GRPC_FAILED_PRECONDITION))
    }

    /// etcd says the lease a claim named does not exist (expired, or never granted).
    pub fn lease_missing(&self) -> bool {
        matches!(self, Answer::Failed(GRPC_NOT_FOUND))
    }

    /// A call the host would not send.
    pub(crate) fn unsent() -> Answer {
        Answer::Failed(GRPC_UNAVAILABLE)
    }

    /// An answer that does not parse as what was asked.
    pub(crate) fn malformed() -> Answer {
        Answer::Failed(GRPC_INTERNAL)
    }

    /// The call may not have reached a member that can answer: worth sending again.
    fn retryable(&self) -> bool {
        matches!(self, Answer::Timeout | Answer::Failed(GRPC_UNAVAILABLE | GRPC_DEADLINE_EXCEEDED))
    }
}

/// etcd calls one key's chain may make (grant, claim, again after a timeout or a forgotten lease).
const MAX_SENDS: u8 = 4;

/// Leases this VM knows exist: (id, end of its bucket in epoch seconds). A handful at a time.
#[derive(Debug, Default)]
pub(crate) struct LeaseBook {
    known: Vec<(i64, i64)>,
}

impl LeaseBook {
    pub(crate) fn knows(&self, lease: &Lease) -> bool {
        self.known.iter().any(|(id, _)| *id == lease.id)
    }

    pub(crate) fn add(&mut self, lease: &Lease, now_s: i64) {
        self.known.retain(|(_, end)| *end >= now_s);
        if !self.knows(lease) {
            if self.known.len() >= 32 {
                self.known.remove(0);
            }
            self.known.push((lease.id, lease.bucket_end_s));
        }
    }

    pub(crate) fn forget(&mut self, lease: &Lease) {
        self.known.retain(|(id, _)| *id != lease.id);
    }
}

/// What a request waits for: the answer to a call of its own (by the host's token) or to a queued
/// check (by its ticket, answered through a batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Call(u32),
    Queued(u32),
}

/// One check of a request waiting for its answer; `sends` counts the etcd calls of the key's chain.
/// A check sent alone holds its service's `Solo` until answered (dropped with it).
#[derive(Debug)]
#[allow(dead_code)] // the `Solo`s are held, never read
enum Waiting {
    RateLimit(Option<Solo>),
    Grant { key: OneTime, lease: Lease, sends: u8 },
    Claim { key: OneTime, lease: Lease, regranted: bool, sends: u8, solo: Option<Solo> },
}

/// The cluster-mode checks of a request in flight, and what they said so far.
#[derive(Debug)]
pub(super) struct ClusterChecks {
    pub(super) admission: Admission,
    waiting: Vec<(Slot, Waiting)>,
    pub(super) refusal: Option<Refusal>,
    pub(super) quota: Option<Quota>,
    /// What this request's claims put (its request id), to recognise an earlier attempt's.
    mark: [u8; 36],
    /// When the one-time keys' chains must end (precise clock, ms).
    deadline_ms: i64,
    /// The adapter's id of this request's stream (answers to queued checks name it).
    stream: u32,
}

impl ClusterChecks {
    /// Sends the cluster-mode checks of an admitted request, in parallel (or queues them behind a
    /// batch in flight).
    pub(super) fn start(engine: &Engine, svc: &Services<'_>, io: &dyn StreamIo, admission: Admission, mark: [u8; 36], stream: u32) -> ClusterChecks {
        let gw = &engine.gateway;
        let deadline_ms = match (&gw.cluster_mode.one_time_keys, admission.one_time.is_empty()) {
            (Some(s), false) => svc.clock.now_ms().saturating_add(s.timeout_ms as i64),
            _ => 0,
        };
        let mut checks = ClusterChecks { admission, waiting: Vec::new(), refusal: None, quota: None, mark, deadline_ms, stream };
        if let Some(call) = rate_limit_call(gw, &checks.admission) {
            let solo = engine.batches.borrow().solo(Service::RateLimit);
            let member = if solo.is_some() { None } else { rate_limit_member(gw, &checks.admission) };
            match member {
                Some((descriptors, parts)) => {
                    let deadline_ms = svc.clock.now_ms().saturating_add(call.timeout_ms as i64);
                    let entry = Entry { stream, ticket: 0, payload: descriptors.to_vec(), key: Vec::new(), lease: None, parts, deadline_ms };
                    let ticket = engine.batches.borrow_mut().enqueue(Service::RateLimit, entry);
                    checks.waiting.push((Slot::Queued(ticket), Waiting::RateLimit(None)));
                }
                None => {
                    svc.stats.record(Stat::ClusterMode("rls", "calls"));
                    match io.send_grpc(&call) {
                        Some(token) => checks.waiting.push((Slot::Call(token), Waiting::RateLimit(solo))),
                        None => {
                            unsent(svc, "rls");
                            checks.rate_limit_answer(engine, svc, None);
                        }
                    }
                }
            }
        }
        let now = svc.coarse.now_ms();
        for key in checks.admission.one_time.clone() {
            let Some(lease) = lease_of(gw, &key, now) else { continue };
            let known = engine.leases.borrow().knows(&lease);
            let waiting =
                if known { Waiting::Claim { key, lease, regranted: false, sends: 0, solo: None } } else { Waiting::Grant { key, lease, sends: 0 } };
            checks.send_one_time(engine, svc, Some(io), waiting);
        }
        checks
    }

    pub(super) fn done(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Whether `token` is one of this request's calls.
    pub(super) fn awaits(&self, token: u32) -> bool {
        self.waiting.iter().any(|(s, _)| *s == Slot::Call(token))
    }

    /// Whether a check waits in (or is answered through) a batch.
    pub(super) fn queued(&self) -> bool {
        self.waiting.iter().any(|(s, _)| matches!(s, Slot::Queued(_)))
    }

    /// Whether `ticket` is one of this request's queued checks.
    pub(super) fn awaits_queued(&self, ticket: u32) -> bool {
        self.waiting.iter().any(|(s, _)| *s == Slot::Queued(ticket))
    }

    /// A lease grant or a claim, within what is left of the chain's time; a call that cannot be sent
    /// (or has no time left) is a failed claim. A claim queues behind a batch in flight; so does
    /// every call of a chain answered through a batch (`io` is `None`: the answer came to the
    /// adapter's flushing context, which sends only batches).
    fn send_one_time(&mut self, engine: &Engine, svc: &Services<'_>, io: Option<&dyn StreamIo>, mut waiting: Waiting) {
        let gw = &engine.gateway;
        if let Waiting::Claim { key, lease, sends, solo, .. } = &mut waiting {
            *solo = match io {
                Some(_) => engine.batches.borrow().solo(Service::Etcd),
                None => None,
            };
            if solo.is_none() {
                *sends += 1;
                let now = svc.clock.now_ms();
                let member = claim_member(gw, key, lease, &self.mark).filter(|_| self.deadline_ms - now >= MIN_CALL_MS);
                let Some((etcd_key, payload)) = member else {
                    unsent(svc, "etcd");
                    let key = *key;
                    self.record(claim_verdict(&key, None, &self.mark).err());
                    return;
                };
                let entry =
                    Entry { stream: self.stream, ticket: 0, payload, key: etcd_key, lease: Some(*lease), parts: 0, deadline_ms: self.deadline_ms };
                let ticket = engine.batches.borrow_mut().enqueue(Service::Etcd, entry);
                self.waiting.push((Slot::Queued(ticket), waiting));
                return;
            }
        }
        let Some(io) = io else {
            // A grant asked for from the flushing context: the claim queues instead, and waits there
            // for the adapter to grant its lease.
            if let Waiting::Grant { key, lease, sends } = waiting {
                engine.leases.borrow_mut().forget(&lease);
                self.send_one_time(engine, svc, None, Waiting::Claim { key, lease, regranted: true, sends, solo: None });
            }
            return;
        };
        let (call, sends) = match &mut waiting {
            Waiting::Grant { lease, sends, .. } => (lease_call(gw, lease), sends),
            Waiting::Claim { key, lease, sends, .. } => (claim_call(gw, key, lease, &self.mark), sends),
            Waiting::RateLimit(_) => return,
        };
        *sends += 1;
        let first = *sends == 1;
        // The first call needs no clock reading: the deadline was set just now.
        let left = if first { call.as_ref().map_or(0, |c| c.timeout_ms as i64) } else { self.deadline_ms - svc.clock.now_ms() };
        let call = call.filter(|_| left >= MIN_CALL_MS).map(|mut c| {
            c.timeout_ms = (c.timeout_ms / 2).max(MIN_CALL_MS as u64).min(left as u64);
            c
        });
        svc.stats.record(Stat::ClusterMode("etcd", "calls"));
        match call.and_then(|c| io.send_grpc(&c)) {
            Some(token) => self.waiting.push((Slot::Call(token), waiting)),
            None => {
                unsent(svc, "etcd");
                if let Waiting::Claim { key, .. } | Waiting::Grant { key, .. } = waiting {
                    self.record(claim_verdict(&key, None, &self.mark).err());
                }
            }
        }
    }

    fn rate_limit_answer(&mut self, engine: &Engine, svc: &Services<'_>, answer: Option<&[u8]>) {
        match rate_limit_verdict(&engine.gateway, &self.admission, answer) {
            Ok(q) => {
                if answer.is_none() {
                    svc.stats.record(Stat::ClusterMode("rls", "fail_open"));
                    log::warn!("cagate: cluster: rate limit service unavailable, admitted (failOpen)");
                }
                self.quota = q;
            }
            Err(r) => {
                let over = r.error.code != errors::X503BZ.code;
                svc.stats.record(Stat::ClusterMode("rls", if over { "over_limit" } else { "refused_unavailable" }));
                self.record(Some(r));
            }
        }
    }

    /// One answer (to a call of this request's, or to a queued check: `io` is `None` then): its
    /// verdict, or the next call of the lease state machine.
    pub(super) fn answer(&mut self, engine: &Engine, svc: &Services<'_>, io: Option<&dyn StreamIo>, slot_id: u32, answer: &Answer) {
        let slot = if io.is_some() { Slot::Call(slot_id) } else { Slot::Queued(slot_id) };
        let Some(pos) = self.waiting.iter().position(|(s, _)| *s == slot) else { return };
        let (_, waiting) = self.waiting.swap_remove(pos);
        let service = if matches!(waiting, Waiting::RateLimit(_)) { "rls" } else { "etcd" };
        // Every check ends here or where it could not be sent: `errors` and `timeouts` are shares of
        // `checks`, whether a check went alone or in a batch.
        svc.stats.record(Stat::ClusterMode(service, "checks"));
        match answer {
            Answer::Timeout => svc.stats.record(Stat::ClusterMode(service, "timeouts")),
            Answer::Failed(_) if !answer.lease_exists() && !answer.lease_missing() => svc.stats.record(Stat::ClusterMode(service, "errors")),
            _ => {}
        }
        let now_s = svc.coarse.now_ms() / 1000;
        match waiting {
            Waiting::RateLimit(_) => self.rate_limit_answer(engine, svc, answer.body()),
            Waiting::Grant { key, lease, sends } => {
                if answer.lease_exists() || answer.body().is_some_and(lease_granted) {
                    engine.leases.borrow_mut().add(&lease, now_s);
                    self.send_one_time(engine, svc, io, Waiting::Claim { key, lease, regranted: true, sends, solo: None });
                } else if answer.retryable() && sends < MAX_SENDS {
                    svc.stats.record(Stat::ClusterMode("etcd", "retries"));
                    self.send_one_time(engine, svc, io, Waiting::Grant { key, lease, sends });
                } else {
                    log::warn!("cagate: cluster: etcd lease grant failed");
                    self.record(claim_verdict(&key, None, &self.mark).err());
                }
            }
            Waiting::Claim { key, lease, regranted, sends, solo } => {
                // Answered: a retry of this chain may go alone again.
                drop(solo);
                // A batch's transaction fails as a whole when any member's lease is gone: a claim
                // whose own lease was just granted asks for it again too (bounded by the chain's sends).
                if answer.lease_missing() && (!regranted || sends < MAX_SENDS) {
                    engine.leases.borrow_mut().forget(&lease);
                    self.send_one_time(engine, svc, io, Waiting::Grant { key, lease, sends });
                } else if answer.retryable() && sends < MAX_SENDS {
                    svc.stats.record(Stat::ClusterMode("etcd", "retries"));
                    self.send_one_time(engine, svc, io, Waiting::Claim { key, lease, regranted, sends, solo: None });
                } else {
                    let verdict = claim_verdict(&key, answer.body(), &self.mark);
                    if let Err(r) = &verdict {
                        let what = if r.error.code == errors::X503BZ.code { "refused_unavailable" } else { "replayed" };
                        svc.stats.record(Stat::ClusterMode("etcd", what));
                    }
                    self.record(verdict.err());
                }
            }
        }
    }

    /// Keeps the first refusal: the request is refused once.
    fn record(&mut self, refusal: Option<Refusal>) {
        if self.refusal.is_none() {
            self.refusal = refusal;
        }
    }
}

/// A check that could not be sent: a check, and an error (`errors` stay a share of `checks`).
fn unsent(svc: &Services<'_>, service: &'static str) {
    svc.stats.record(Stat::ClusterMode(service, "checks"));
    svc.stats.record(Stat::ClusterMode(service, "errors"));
}
