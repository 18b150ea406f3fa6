//! Cluster-mode batching in the native build: the checks of concurrent requests on a worker share one
//! call to etcd or to the rate limit service, as in the Wasm build (`cagate_core`'s batching decides
//! what goes together and splits the answer).
//!
//! A stream's callout is cancelled when its stream ends, so a batch, which answers several streams,
//! cannot ride on one of them: a client that goes away would fail the others' checks. The batch goes
//! out as a callout of the configuration instead, which only the main thread may make. So the worker
//! hands the call to the main thread (the outbox, and the configuration's scheduler), the main thread
//! sends it and posts the answer to the worker's mailbox (`Link`), and wakes the worker through the
//! schedulers of the streams the batch answers. Whichever of them runs first on the worker empties the
//! mailbox; every stream event on the worker checks it too, so an answer whose streams have all ended
//! still frees its batch's place.

use crate::ffi::{CalloutAnswer, FilterScheduler};
use cagate_core::{Answer, GrpcCall};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The configuration scheduler's event that sends the outbox (the tick is event 0).
pub(crate) const SEND_BATCHES: u64 = 1;

/// A worker's end of the hand-over, shared with the main thread.
#[derive(Default)]
pub(crate) struct Link {
    /// Answers the main thread received for this worker: the worker's call token and the answer.
    mail: Mutex<Vec<(u32, Answer)>>,
    has_mail: AtomicBool,
    /// The schedulers of this worker's streams that wait for a batch, by stream id. A stream deletes
    /// its own under this lock, so the main thread never commits a deleted one.
    wakers: Mutex<Vec<(u32, FilterScheduler)>>,
}

impl Link {
    /// Posts an answer (main thread) and wakes the worker through the streams it answers, or any
    /// stream that waits when none of them does.
    pub(crate) fn post(&self, token: u32, answer: Answer, streams: &[u32]) {
        if let Ok(mut mail) = self.mail.lock() {
            mail.push((token, answer));
        }
        self.has_mail.store(true, Ordering::Release);
        let Ok(wakers) = self.wakers.lock() else { return };
        let mut woken = false;
        for (_, s) in wakers.iter().filter(|(id, _)| streams.contains(id)) {
            s.commit(0);
            woken = true;
        }
        if !woken {
            if let Some((_, s)) = wakers.first() {
                s.commit(0);
            }
        }
    }

    /// The answers posted since the last call (worker).
    pub(crate) fn take_mail(&self) -> Vec<(u32, Answer)> {
        if !self.has_mail.swap(false, Ordering::Acquire) {
            return Vec::new();
        }
        self.mail.lock().map(|mut m| std::mem::take(&mut *m)).unwrap_or_default()
    }

    pub(crate) fn add_waker(&self, stream: u32, scheduler: FilterScheduler) {
        if let Ok(mut w) = self.wakers.lock() {
            w.push((stream, scheduler));
        }
    }

    /// Commits a waiting stream's scheduler from its worker (an answer the worker itself decided:
    /// a check out of time).
    pub(crate) fn wake(&self, stream: u32) {
        if let Ok(w) = self.wakers.lock() {
            if let Some((_, s)) = w.iter().find(|(id, _)| *id == stream) {
                s.commit(0);
            }
        }
    }

    /// A stream that ends deletes its scheduler.
    pub(crate) fn remove_waker(&self, stream: u32) {
        let Ok(mut w) = self.wakers.lock() else { return };
        if let Some(pos) = w.iter().position(|(id, _)| *id == stream) {
            let (_, s) = w.swap_remove(pos);
            s.delete();
        }
    }
}

/// A call a worker asks the main thread to make.
pub(crate) struct Outgoing {
    pub(crate) link: Arc<Link>,
    pub(crate) token: u32,
    pub(crate) call: GrpcCall,
    /// The streams the answer is for (to wake them).
    pub(crate) streams: Vec<u32>,
}

/// A call the main thread made, until its answer.
pub(crate) struct InFlight {
    pub(crate) link: Arc<Link>,
    pub(crate) token: u32,
    pub(crate) streams: Vec<u32>,
}

/// A gRPC call made as an HTTP/2 callout, as the core reads its answer: the `:status` (0 when the
/// answer has none, `None` when the call failed), `grpc-status` and the body.
pub(crate) fn grpc_answer(callout: &CalloutAnswer) -> Answer {
    let status = callout.header(":status").and_then(|v| std::str::from_utf8(v).ok()?.parse::<u16>().ok());
    let status = if callout.headers.is_some() { status.or(Some(0)) } else { None };
    Answer::from_http(status, callout.header("grpc-status"), &callout.body)
}
