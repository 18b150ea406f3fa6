//! Aliyun's circuitBreaker plugin, as cagate reads its fields (Aliyun documents only their names):
//! `timeoutThreshold` backend failures (timeouts, connection failures, 5xx) within `windowInSeconds`
//! open the breaker; while open, requests get `D503CB` without reaching the backend; after
//! `openTimeoutSeconds` one trial request goes through (half-open): its success closes the breaker,
//! its failure opens it again. State per API in Envoy shared data, shared by all workers, by CAS.
//! With a `downgradeBackend` (a backend overlay as the routing plugin's: HTTP, HTTP-VPC or MOCK),
//! requests go there while the breaker is open instead of being refused.

use crate::contract::errors;
use crate::contract::refusal::Refusal;
use crate::host::{le_u32, le_u64, SetError, SharedStore};
use crate::plugins::conditions::{Expr, Operand, Val};
use crate::plugins::definition::{AliyunPlugin, Definition};
use crate::plugins::routing::{overlay, Route};
use crate::schema::validator::{join, Validator};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct BreakerConfig {
    pub plugin: String,
    pub threshold: u32,
    pub window_ms: i64,
    pub open_ms: i64,
    /// `downgradeBackend`, as a route that always holds (its name shows in `I504RB` messages).
    pub downgrade: Option<Route>,
}

/// The name a downgrade's problems are reported under.
pub const DOWNGRADE_NAME: &str = "downgradeBackend";
/// Sent to a downgrade backend (and removed from every client request): the plugin's name.
pub const DOWNGRADE_HEADER: &str = "x-ca-downgrade";

impl AliyunPlugin for BreakerConfig {
    const TYPE: &'static str = "circuitBreaker";

    fn parse(c: &mut Validator, data: &Value, def: &Definition<'_>) -> Option<Self> {
        let (plugin, path) = (def.name, def.path);
        let o = c.object_lenient(
            data,
            path,
            &["timeoutThreshold", "windowInSeconds", "openTimeoutSeconds", "downgradeBackend"],
            &["errorThreshold", "errorRatio"],
        )?;
        let downgrade = o.get("downgradeBackend").and_then(|b| overlay(c, b, &join(path, "downgradeBackend"))).map(|backend| Route {
            name: DOWNGRADE_NAME.to_string(),
            condition: Expr::Truthy(Operand::Lit(Val::Bool(true))),
            backend,
            constants: Vec::new(),
        });
        Some(BreakerConfig {
            downgrade,
            plugin: plugin.to_string(),
            threshold: c.integer(o, path, "timeoutThreshold", 15, 1, 100_000) as u32,
            window_ms: c.integer(o, path, "windowInSeconds", 30, 1, 3600) as i64 * 1000,
            open_ms: c.integer(o, path, "openTimeoutSeconds", 15, 1, 3600) as i64 * 1000,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct State {
    /// 0 closed, 1 open, 2 half-open with a trial in flight
    pub mode: u8,
    pub window_start: i64,
    pub failures: u32,
    pub opened_at: i64,
}

impl State {
    fn decode(v: &[u8]) -> State {
        State { mode: v.first().copied().unwrap_or(0), window_start: le_u64(v, 1) as i64, failures: le_u32(v, 9), opened_at: le_u64(v, 13) as i64 }
    }
    fn encode(&self) -> [u8; 21] {
        let mut out = [0u8; 21];
        out[0] = self.mode;
        out[1..9].copy_from_slice(&self.window_start.to_le_bytes());
        out[9..13].copy_from_slice(&self.failures.to_le_bytes());
        out[13..21].copy_from_slice(&self.opened_at.to_le_bytes());
        out
    }
}

/// One breaker per API and stage: each stage's backend fails on its own (stage variables may point
/// TEST at another host), and a failing TEST backend must not open RELEASE's breaker.
pub fn key(cfg: &BreakerConfig, api: &str, stage: &str) -> String {
    format!("cagate.cb.{}.{api}.{stage}", cfg.plugin)
}

/// What a request may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Closed: go on.
    Closed,
    /// This request is the half-open trial, begun at this time (the state's `opened_at` it wrote).
    Trial(i64),
}

/// Pure transition before a request: `Ok(None)` pass without a write, `Ok(Some(new))` pass as the
/// trial, `Err(remaining_ms)` refused while open (or while another trial is in flight).
pub fn before(cfg: &BreakerConfig, s: State, now: i64) -> Result<Option<State>, i64> {
    match s.mode {
        0 => Ok(None),
        1 if now - s.opened_at >= cfg.open_ms => Ok(Some(State { mode: 2, opened_at: now, ..s })),
        1 => Err(cfg.open_ms - (now - s.opened_at)),
        // a trial that never reported back (the worker went away) is retried after another open period
        _ if now - s.opened_at >= cfg.open_ms => Ok(Some(State { mode: 2, opened_at: now, ..s })),
        _ => Err(cfg.open_ms - (now - s.opened_at)),
    }
}

/// Pure transition after a response.
pub fn after(cfg: &BreakerConfig, s: State, pass: Pass, failed: bool, now: i64) -> State {
    if matches!(pass, Pass::Trial(_)) {
        return if failed { State { mode: 1, opened_at: now, failures: 0, window_start: now } } else { State::default() };
    }
    if s.mode != 0 || !failed {
        return s;
    }
    let (window_start, failures) = if now - s.window_start >= cfg.window_ms { (now, 1) } else { (s.window_start, s.failures + 1) };
    if failures >= cfg.threshold {
        State { mode: 1, opened_at: now, window_start, failures: 0 }
    } else {
        State { window_start, failures, ..s }
    }
}

const ATTEMPTS: usize = 8;

/// Before a request: pass (and as what), or `D503CB`.
pub fn admit(cfg: &BreakerConfig, key: &str, now: i64, store: &dyn SharedStore) -> Result<Pass, Refusal> {
    for _ in 0..ATTEMPTS {
        let (v, cas) = store.get(key).unwrap_or_default();
        match before(cfg, State::decode(&v), now) {
            Ok(None) => return Ok(Pass::Closed),
            Ok(Some(next)) => match store.set(key, &next.encode(), cas) {
                Ok(()) => return Ok(Pass::Trial(next.opened_at)),
                Err(SetError::CasMismatch) => continue,
                Err(SetError::Failed) => break,
            },
            Err(remaining_ms) => {
                let reason = format!("retry in {}s", (remaining_ms.max(0) + 999) / 1000);
                let mut r = Refusal::new(&errors::D503CB, &[&reason], "circuit breaker open");
                r.headers.push(("retry-after".into(), ((remaining_ms.max(0) + 999) / 1000).max(1).to_string()));
                return Err(r);
            }
        }
    }
    // The state could not be read or written: let the request through rather than fail closed on
    // our own contention; the breaker protects the backend, it is not an access policy.
    Ok(Pass::Closed)
}

/// After a response: counts a failure, opens or closes the breaker. Returns true if it opened.
pub fn record(cfg: &BreakerConfig, key: &str, pass: Pass, failed: bool, now: i64, store: &dyn SharedStore) -> bool {
    if !failed && pass == Pass::Closed {
        return false; // the common case writes nothing
    }
    for _ in 0..ATTEMPTS {
        let (v, cas) = store.get(key).unwrap_or_default();
        let old = State::decode(&v);
        let next = after(cfg, old, pass, failed, now);
        if next == old {
            return false;
        }
        match store.set(key, &next.encode(), cas) {
            Ok(()) => return next.mode == 1 && old.mode != 1,
            Err(SetError::CasMismatch) => continue,
            Err(SetError::Failed) => return false,
        }
    }
    false
}

/// A half-open trial (begun at `started`) that never reached the backend (refused by a later check,
/// answered by a mock, abandoned by its client): the breaker goes back to open with its period over,
/// so that the next request is the trial, instead of every request being refused for another
/// `openTimeoutSeconds`. Only this trial's: a newer one in flight is left alone.
pub fn give_back(cfg: &BreakerConfig, key: &str, started: i64, now: i64, store: &dyn SharedStore) {
    for _ in 0..ATTEMPTS {
        let (v, cas) = store.get(key).unwrap_or_default();
        let old = State::decode(&v);
        if old.mode != 2 || old.opened_at != started {
            return;
        }
        let next = State { mode: 1, opened_at: now.saturating_sub(cfg.open_ms), ..old };
        match store.set(key, &next.encode(), cas) {
            Err(SetError::CasMismatch) => continue,
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::MemoryStore;

    fn cfg() -> BreakerConfig {
        BreakerConfig { plugin: "cb".into(), threshold: 3, window_ms: 10_000, open_ms: 5_000, downgrade: None }
    }

    #[test]
    fn transitions_with_a_test_clock() {
        let (c, store, k) = (cfg(), MemoryStore::new(), "cagate.cb.cb.api");
        let t = 1_000_000;
        assert_eq!(admit(&c, k, t, &store), Ok(Pass::Closed));
        assert!(!record(&c, k, Pass::Closed, true, t, &store));
        assert!(!record(&c, k, Pass::Closed, true, t + 1000, &store));
        assert!(!record(&c, k, Pass::Closed, false, t + 1500, &store), "a success does not reset the count");
        assert!(record(&c, k, Pass::Closed, true, t + 2000, &store), "third failure within the window opens it");
        let r = admit(&c, k, t + 3000, &store).unwrap_err();
        assert_eq!((r.error.code, r.message.as_str()), ("D503CB", "Backend circuit breaker open, retry in 4s"));
        // half-open: one trial, the others still refused
        assert!(matches!(admit(&c, k, t + 7000, &store), Ok(Pass::Trial(_))));
        assert_eq!(admit(&c, k, t + 7001, &store).unwrap_err().error.code, "D503CB");
        // the trial fails: open again
        assert!(record(&c, k, Pass::Trial(t + 7000), true, t + 7100, &store));
        assert_eq!(admit(&c, k, t + 8000, &store).unwrap_err().error.code, "D503CB");
        // next trial succeeds: closed
        assert!(matches!(admit(&c, k, t + 12_200, &store), Ok(Pass::Trial(_))));
        assert!(!record(&c, k, Pass::Trial(t + 12_200), false, t + 12_300, &store));
        assert_eq!(admit(&c, k, t + 12_400, &store), Ok(Pass::Closed));
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let c = cfg();
        let mut s = State::default();
        for (i, t) in [0, 9_000, 19_500, 20_000].iter().enumerate() {
            s = after(&c, s, Pass::Closed, true, *t);
            assert_eq!(s.mode, 0, "failure {i}");
        }
        assert_eq!(s.failures, 2, "a new window began at 19.5 s");
        s = after(&c, s, Pass::Closed, true, 21_000);
        assert_eq!(s.mode, 1);
    }

    #[test]
    fn a_lost_trial_is_retried() {
        let c = cfg();
        let s = State { mode: 2, opened_at: 0, ..State::default() };
        assert_eq!(before(&c, s, 4_000), Err(1_000));
        assert!(before(&c, s, 5_000).is_ok());
    }

    #[test]
    fn a_trial_given_back_lets_the_next_request_be_the_trial() {
        let (c, store, k) = (cfg(), MemoryStore::new(), "cagate.cb.cb.api");
        let t = 1_000_000;
        for i in 0..3 {
            record(&c, k, Pass::Closed, true, t + i, &store);
        }
        assert_eq!(admit(&c, k, t + 6000, &store), Ok(Pass::Trial(t + 6000)));
        assert_eq!(admit(&c, k, t + 6001, &store).unwrap_err().error.code, "D503CB", "one trial at a time");
        give_back(&c, k, t + 6000, t + 6100, &store);
        assert_eq!(admit(&c, k, t + 6200, &store), Ok(Pass::Trial(t + 6200)), "the trial never reached the backend: the next one is");
        give_back(&c, k, t + 6000, t + 6300, &store);
        assert_eq!(admit(&c, k, t + 6400, &store).unwrap_err().error.code, "D503CB", "an older trial's give-back leaves a newer trial alone");
        record(&c, k, Pass::Trial(t + 6200), false, t + 6600, &store);
        give_back(&c, k, t + 6200, t + 6700, &store);
        assert_eq!(admit(&c, k, t + 6800, &store), Ok(Pass::Closed), "closed by the trial: nothing to give back");
    }
}
