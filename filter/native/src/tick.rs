//! The configuration's tick: a module thread that asks Envoy's main thread, every period, to run the
//! configuration's tick (the ABI has schedulers, not timers).

use crate::ffi::Scheduler;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub(crate) struct Ticker {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<Arc<Scheduler>>>,
}

impl Ticker {
    pub(crate) fn start(scheduler: Scheduler, period: Duration) -> Ticker {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = stop.clone();
        let scheduler = Arc::new(scheduler);
        let thread = std::thread::Builder::new()
            .name("cagate-tick".into())
            .spawn(move || {
                let (lock, cv) = &*flag;
                loop {
                    let Ok(guard) = lock.lock() else { break };
                    let Ok((stopped, _)) = cv.wait_timeout_while(guard, period, |s| !*s) else { break };
                    if *stopped {
                        break;
                    }
                    drop(stopped);
                    scheduler.commit(0);
                }
                scheduler
            })
            .ok();
        Ticker { stop, thread }
    }

    /// Stops the thread, then deletes the scheduler (no commit can race the delete).
    pub(crate) fn stop(mut self) {
        if let Ok(mut s) = self.stop.0.lock() {
            *s = true;
        }
        self.stop.1.notify_all();
        if let Some(Ok(scheduler)) = self.thread.take().map(JoinHandle::join) {
            if let Ok(s) = Arc::try_unwrap(scheduler) {
                s.delete();
            }
        }
    }
}
