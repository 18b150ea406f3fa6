//! Group commit for cluster mode: the etcd claims, and the rate-limit descriptors, of concurrent
//! requests go out as one call per service.
//!
//! A check goes out on its own at once when nothing of its service is in flight or queued, so a lone
//! request waits for nothing. Otherwise it queues, and the adapter flushes the queue (from a context
//! that outlives any one request) on its next short tick or when the batch in flight answers: the
//! requests that arrived meanwhile share one call. At most one batch per service is in flight, a
//! batch holds at most `MAX_MEMBERS`, and a queued check waits at most until its own deadline, after
//! which it is answered as timed out.
//!
//! Nothing is traded for it: each claim is a nested transaction of its own (`etcd::claims`) and each
//! descriptor is counted once with its own status (`rls::split`), so every member gets the answer it
//! would have had alone. Two claims of one key never share a batch (etcd refuses that): the second
//! waits for the next one, where it reads the first one's mark back.

use super::cluster_checks::{Answer, LeaseBook};
use crate::cluster::etcd::Lease;
use crate::cluster::{etcd, rls};
use crate::config::model::Gateway;
use crate::request::cluster_calls::GrpcCall;
use std::cell::Cell;
use std::rc::Rc;

/// The services whose checks are batched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Etcd,
    RateLimit,
}

impl Service {
    const ALL: [Service; 2] = [Service::Etcd, Service::RateLimit];

    fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Service::Etcd => "etcd",
            Service::RateLimit => "rls",
        }
    }
}

/// Members of one batch at most: etcd's default `--max-txn-ops` is 128, and a nested claim counts
/// for itself and its operation.
pub(crate) const MAX_MEMBERS: usize = 50;
/// Calls per service in flight at most (a check sent alone counts): etcd commits several at once, so
/// a queued check need not wait for the call before it to commit; more would only make batches smaller.
pub(crate) const MAX_CALLS_IN_FLIGHT: usize = 2;
/// Queued checks per service at most; beyond, a check goes out on its own.
const MAX_QUEUED: usize = 4096;
/// A call is not sent with less time than this left.
pub(crate) const MIN_CALL_MS: i64 = 5;

/// A queued check: whose it is, and what it sends.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The adapter's id of the request's stream, and the check's ticket: its answer comes back with them.
    pub(crate) stream: u32,
    pub(crate) ticket: u32,
    /// etcd: the claim (a `TxnRequest`); rate limit: the request's descriptors.
    pub(crate) payload: Vec<u8>,
    /// etcd: the key the claim puts.
    pub(crate) key: Vec<u8>,
    /// etcd: the claim's lease; the check waits until this VM knows the lease exists.
    pub(crate) lease: Option<Lease>,
    /// Rate limit: how many descriptors are the request's.
    pub(crate) parts: usize,
    /// When the check must be answered (precise clock, ms).
    pub(crate) deadline_ms: i64,
}

/// Who a batch's answer goes to.
#[derive(Debug, Clone, Copy)]
struct Member {
    stream: u32,
    ticket: u32,
    parts: usize,
}

/// An answer for one queued check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub stream: u32,
    pub ticket: u32,
    pub answer: Answer,
}

/// A batch to send: the call, and who it is for (kept by the engine until `Engine::batch_sent`).
#[derive(Debug)]
pub struct BatchCall {
    pub call: GrpcCall,
    service: Service,
    members: Vec<Member>,
}

impl BatchCall {
    pub fn service(&self) -> &'static str {
        self.service.name()
    }

    pub fn size(&self) -> usize {
        self.members.len()
    }
}

/// What a flush found to do: batches to send, checks whose time ran out, leases to grant (queued
/// claims wait for them).
#[derive(Debug, Default)]
pub struct Flush {
    pub calls: Vec<BatchCall>,
    pub expired: Vec<Delivery>,
    pub leases: Vec<(Lease, GrpcCall)>,
}

/// Held by a check sent on its own while it is in flight: concurrent checks of its service queue.
#[derive(Debug)]
pub(crate) struct Solo(Rc<Cell<u32>>);

impl Drop for Solo {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// The per-VM batching state. Off unless the adapter can flush (`Engine::enable_batching`).
#[derive(Debug, Default)]
pub(crate) struct Batcher {
    enabled: bool,
    queues: [Vec<Entry>; 2],
    in_flight: Vec<(u32, Service, Vec<Member>)>,
    solo: [Rc<Cell<u32>>; 2],
    next_ticket: u32,
}

impl Batcher {
    pub(crate) fn enable(&mut self) {
        self.enabled = true;
    }

    /// `Some` when a check of `service` goes out on its own now: batching is off, or nothing of the
    /// service is in flight or queued (or the queue is full).
    pub(crate) fn solo(&self, service: Service) -> Option<Solo> {
        let i = service.index();
        let idle = self.solo[i].get() == 0 && self.queues[i].is_empty() && !self.in_flight.iter().any(|(_, s, _)| *s == service);
        if !self.enabled || idle || self.queues[i].len() >= MAX_QUEUED {
            let n = &self.solo[i];
            n.set(n.get().saturating_add(1));
            return Some(Solo(n.clone()));
        }
        None
    }

    /// Queues a check; its ticket comes back with its answer.
    pub(crate) fn enqueue(&mut self, service: Service, mut entry: Entry) -> u32 {
        self.next_ticket = self.next_ticket.wrapping_add(1);
        entry.ticket = self.next_ticket;
        self.queues[service.index()].push(entry);
        self.next_ticket
    }

    pub(crate) fn pending(&self) -> bool {
        self.queues.iter().any(|q| !q.is_empty())
    }

    /// Takes what can go now: for each service with fewer than `MAX_CALLS_IN_FLIGHT` in flight, one
    /// batch of the checks whose lease is known (a key once per batch); checks out of time are
    /// answered `Timeout`.
    pub(crate) fn flush(&mut self, gw: &Gateway, leases: &LeaseBook, now_ms: i64) -> Flush {
        let mut out = Flush::default();
        for service in Service::ALL {
            let queue = &mut self.queues[service.index()];
            let mut i = 0;
            while i < queue.len() {
                if queue[i].deadline_ms - now_ms < MIN_CALL_MS {
                    let e = queue.remove(i);
                    out.expired.push(Delivery { stream: e.stream, ticket: e.ticket, answer: Answer::Timeout });
                } else {
                    i += 1;
                }
            }
            let busy = self.in_flight.iter().filter(|(_, s, _)| *s == service).count() + self.solo[service.index()].get() as usize;
            if queue.is_empty() || busy >= MAX_CALLS_IN_FLIGHT {
                continue;
            }
            let mut taken: Vec<Entry> = Vec::new();
            let mut kept = Vec::with_capacity(queue.len());
            for e in queue.drain(..) {
                let lease_known = e.lease.as_ref().is_none_or(|l| leases.knows(l));
                if !lease_known {
                    if let Some(l) = e.lease {
                        if !out.leases.iter().any(|(g, _)| g.id == l.id) {
                            if let Some(call) = crate::request::cluster_calls::lease_call(gw, &l) {
                                out.leases.push((l, call));
                            }
                        }
                    }
                }
                let fits = taken.len() < MAX_MEMBERS && lease_known && (e.key.is_empty() || !taken.iter().any(|t| t.key == e.key));
                if fits {
                    taken.push(e);
                } else {
                    kept.push(e);
                }
            }
            *queue = kept;
            if taken.is_empty() {
                continue;
            }
            let left = taken.iter().map(|e| e.deadline_ms).min().unwrap_or(now_ms) - now_ms;
            let call = match service {
                Service::Etcd => crate::request::cluster_calls::claims_call(gw, etcd::claims(taken.iter().map(|e| e.payload.as_slice())), left),
                Service::RateLimit => {
                    crate::request::cluster_calls::rate_limit_batch(gw, |domain| rls::batch(domain, taken.iter().map(|e| e.payload.as_slice())), left)
                }
            };
            let members: Vec<Member> = taken.iter().map(|e| Member { stream: e.stream, ticket: e.ticket, parts: e.parts }).collect();
            match call {
                Some(call) => out.calls.push(BatchCall { call, service, members }),
                // Cluster mode switched off by a newer configuration: the checks fail as unsent.
                None => out.expired.extend(members.iter().map(|m| Delivery { stream: m.stream, ticket: m.ticket, answer: Answer::unsent() })),
            }
        }
        out
    }

    /// A batch was sent (`Some(token)`), or could not be (its members are answered as failed).
    pub(crate) fn sent(&mut self, batch: BatchCall, token: Option<u32>) -> Vec<Delivery> {
        match token {
            Some(token) => {
                self.in_flight.push((token, batch.service, batch.members));
                Vec::new()
            }
            None => batch.members.iter().map(|m| Delivery { stream: m.stream, ticket: m.ticket, answer: Answer::unsent() }).collect(),
        }
    }

    /// A batch's answer, split per member; `None` if `token` is not a batch's.
    pub(crate) fn answered(&mut self, token: u32, answer: &Answer) -> Option<Vec<Delivery>> {
        let pos = self.in_flight.iter().position(|(t, _, _)| *t == token)?;
        let (_, service, members) = self.in_flight.swap_remove(pos);
        let parts: Option<Vec<Vec<u8>>> = answer.body().and_then(|body| match service {
            Service::Etcd => etcd::claim_answers(body).filter(|p| p.len() == members.len()).map(|p| p.into_iter().map(<[u8]>::to_vec).collect()),
            Service::RateLimit => rls::split(body, &members.iter().map(|m| m.parts).collect::<Vec<_>>()),
        });
        let answers: Vec<Answer> = match (answer, parts) {
            (Answer::Ok(_), Some(parts)) => parts.into_iter().map(Answer::Ok).collect(),
            (Answer::Ok(_), None) => members.iter().map(|_| Answer::malformed()).collect(),
            (failed, _) => members.iter().map(|_| failed.clone()).collect(),
        };
        Some(members.iter().zip(answers).map(|(m, answer)| Delivery { stream: m.stream, ticket: m.ticket, answer }).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_goes_alone_when_idle_and_queues_behind_one_in_flight() {
        let mut b = Batcher::default();
        b.enable();
        let first = b.solo(Service::Etcd).expect("idle: alone");
        assert!(b.solo(Service::Etcd).is_none(), "one in flight: the next queues");
        assert!(b.solo(Service::RateLimit).is_some(), "per service");
        // A check alone counts as a call in flight: one batch may go beside it, not more.
        let e = |stream| Entry { stream, ticket: 0, payload: vec![], key: vec![], lease: None, parts: 0, deadline_ms: 1_000 };
        let gw = crate::config::compile::compile(br#"{ "cluster": { "oneTimeKeys": { "etcdCluster": "etcd", "timeoutMs": 100 } } }"#).unwrap();
        b.enqueue(Service::Etcd, e(2));
        let batch = b.flush(&gw, &LeaseBook::default(), 0).calls.into_iter().next().expect("beside the one alone");
        assert!(b.sent(batch, Some(1)).is_empty());
        b.enqueue(Service::Etcd, e(3));
        assert!(b.flush(&gw, &LeaseBook::default(), 0).calls.is_empty(), "two in flight");
        drop(first);
        let batch = b.flush(&gw, &LeaseBook::default(), 0).calls.into_iter().next().expect("the one alone answered: the queue goes");
        assert!(b.sent(batch, Some(2)).is_empty());
        assert!(b.solo(Service::Etcd).is_none(), "a batch in flight: the next queues");
        assert_eq!(b.answered(1, &Answer::Timeout).map(|d| d.len()), Some(1));
        assert_eq!(b.answered(2, &Answer::Timeout).map(|d| d.len()), Some(1));
        assert!(b.solo(Service::Etcd).is_some(), "answered: idle again");
        let mut off = Batcher::default();
        let _a = off.solo(Service::Etcd).unwrap();
        assert!(off.solo(Service::Etcd).is_some(), "batching off: every check alone");
        off.enqueue(Service::Etcd, Entry { stream: 1, ticket: 0, payload: vec![], key: vec![], lease: None, parts: 0, deadline_ms: 0 });
        assert!(off.pending());
    }

    #[test]
    fn a_key_goes_once_per_batch_and_a_batch_holds_at_most_max_members() {
        let gw = crate::config::compile::compile(br#"{ "cluster": { "oneTimeKeys": { "etcdCluster": "etcd", "timeoutMs": 100 } } }"#).unwrap();
        let mut b = Batcher::default();
        b.enable();
        let entry = |stream: u32, key: &[u8]| Entry {
            stream,
            ticket: 0,
            payload: vec![0x0a, 0x00],
            key: key.to_vec(),
            lease: None,
            parts: 0,
            deadline_ms: 1_000,
        };
        b.enqueue(Service::Etcd, entry(1, b"k1"));
        b.enqueue(Service::Etcd, entry(2, b"k1"));
        for i in 0..MAX_MEMBERS as u32 {
            b.enqueue(Service::Etcd, entry(10 + i, format!("x{i}").as_bytes()));
        }
        let f = b.flush(&gw, &LeaseBook::default(), 0);
        assert_eq!(f.calls.len(), 1);
        assert_eq!(f.calls[0].size(), MAX_MEMBERS);
        assert!(f.calls[0].members.iter().filter(|m| m.stream <= 2).count() == 1, "k1 once");
        assert_eq!(f.calls[0].call.timeout_ms, 50, "half of timeoutMs");
        let token = 7;
        let call = f.calls.into_iter().next().unwrap();
        assert!(b.sent(call, Some(token)).is_empty());
        // The second k1 (and what did not fit) goes in the next batch, while the first is in flight.
        let next = b.flush(&gw, &LeaseBook::default(), 0).calls.into_iter().next().unwrap();
        assert_eq!(next.size(), 2, "the second k1 and the one left over");
        assert!(b.sent(next, Some(8)).is_empty());
        for t in 2..MAX_CALLS_IN_FLIGHT as u32 {
            b.enqueue(Service::Etcd, entry(1000 + t, format!("y{t}").as_bytes()));
            let more = b.flush(&gw, &LeaseBook::default(), 0).calls.into_iter().next().unwrap();
            assert!(b.sent(more, Some(100 + t)).is_empty());
        }
        b.enqueue(Service::Etcd, entry(2000, b"z"));
        assert!(b.flush(&gw, &LeaseBook::default(), 0).calls.is_empty(), "at most MAX_CALLS_IN_FLIGHT in flight");
        // An answer, malformed: every member is told so (never admitted); then the queued one goes.
        let d = b.answered(token, &Answer::Ok(vec![])).unwrap();
        assert_eq!(d.len(), MAX_MEMBERS);
        assert!(d.iter().all(|d| d.answer == Answer::malformed()));
        assert_eq!(b.flush(&gw, &LeaseBook::default(), 0).calls[0].size(), 1);
        // Past their deadline, queued checks are answered as timed out.
        b.enqueue(Service::Etcd, entry(99, b"late"));
        let late = b.flush(&gw, &LeaseBook::default(), 996);
        assert_eq!(late.expired.len(), 1);
        assert_eq!(late.expired[0].answer, Answer::Timeout);
    }
}
