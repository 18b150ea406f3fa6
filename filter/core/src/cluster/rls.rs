//! Envoy's rate limit service (RLS v3, `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`):
//! one call per request carries every dimension of trafficControl that applies, each as its own
//! descriptor with the plugin's numbers as its `limit` override, so the plugin data stays the single
//! source of the limits and the server needs only the domain.
//!
//! Field numbers (envoyproxy/data-plane-api, envoy/service/ratelimit/v3/rls.proto and
//! envoy/extensions/common/ratelimit/v3/ratelimit.proto):
//! RateLimitRequest { domain = 1; descriptors = 2 } · RateLimitDescriptor { entries = 1; limit = 2 } ·
//! Entry { key = 1; value = 2 } · RateLimitOverride { requests_per_unit = 1; unit = 2 } ·
//! RateLimitResponse { overall_code = 1; statuses = 2 } · DescriptorStatus { code = 1;
//! current_limit = 2; limit_remaining = 3; duration_until_reset = 4 } · Duration { seconds = 1 }.

use crate::cluster::proto::{self, Value};
use crate::contract::errors::{self, ErrorCode};
use crate::contract::refusal::{Dim, Refusal};
use crate::plugins::traffic_control::{counters, Quota, TrafficConfig, Unit};

pub(crate) const SERVICE: &str = "envoy.service.ratelimit.v3.RateLimitService";
pub(crate) const METHOD: &str = "ShouldRateLimit";

const OK: u64 = 1;
const OVER_LIMIT: u64 = 2;

/// `type.v3.RateLimitUnit`.
fn unit_number(u: Unit) -> u64 {
    match u {
        Unit::Second => 1,
        Unit::Minute => 2,
        Unit::Hour => 3,
        Unit::Day => 4,
    }
}

/// One dimension of the call: what the answer's status at the same index refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dimension {
    pub dim: Dim,
    pub limit: u64,
    pub special: bool,
}

/// A rate-limit call ready to send: the message and the dimensions, in order.
#[derive(Debug, Clone)]
pub(crate) struct RateLimitCall {
    pub plugin: u32,
    pub message: Vec<u8>,
    pub dimensions: Vec<Dimension>,
}

/// The call for a request: descriptors `cagate_plugin`, `cagate_api`, `cagate_stage` and, for the USER
/// and APP dimensions, `cagate_user` / `cagate_app`, each with the plugin's limit.
pub(crate) fn call(domain: &str, cfg: &TrafficConfig, plugin: u32, api: &str, stage: &str, app: Option<(&str, &str)>) -> RateLimitCall {
    let mut message = Vec::with_capacity(128);
    proto::bytes(&mut message, 1, domain.as_bytes());
    let mut dimensions = Vec::with_capacity(3);
    for c in counters(cfg, api, stage, app) {
        let who = match c.dim {
            Dim::App => app.map(|(id, _)| ("cagate_app", id)),
            Dim::User => app.map(|(_, owner)| ("cagate_user", owner)),
            Dim::Api => None,
        };
        proto::message(&mut message, 2, |d| {
            for (k, v) in [("cagate_plugin", cfg.plugin.as_str()), ("cagate_api", api), ("cagate_stage", stage)].into_iter().chain(who) {
                proto::message(d, 1, |e| {
                    proto::bytes(e, 1, k.as_bytes());
                    proto::bytes(e, 2, v.as_bytes());
                });
            }
            proto::message(d, 2, |l| {
                proto::uint(l, 1, c.limit.min(u64::from(u32::MAX)));
                proto::uint(l, 2, unit_number(cfg.unit));
            });
        });
        dimensions.push(Dimension { dim: c.dim, limit: c.limit, special: c.special });
    }
    RateLimitCall { plugin, message, dimensions }
}

/// A request's descriptors: its call's message without the domain, to go in a batch (`batch`).
pub(crate) fn descriptors<'a>(domain: &str, message: &'a [u8]) -> Option<&'a [u8]> {
    let mut prefix = Vec::with_capacity(domain.len() + 3);
    proto::bytes(&mut prefix, 1, domain.as_bytes());
    message.strip_prefix(prefix.as_slice())
}

/// The descriptors of several requests as one call: each descriptor is counted once, as in a call of
/// its own, and gets its own status, in order.
pub(crate) fn batch<'a>(domain: &str, members: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    proto::bytes(&mut out, 1, domain.as_bytes());
    for d in members {
        out.extend_from_slice(d);
    }
    out
}

/// A batch's answer split into the answers its members (`counts`: each one's descriptors) would have
/// had alone: their statuses, and OVER_LIMIT when one of them is over. An answer the service could not
/// decide goes to every member as it is. A service that sends no statuses (only an overall code) gives
/// every member that code. `None` if malformed, or if the statuses do not match the descriptors.
pub(crate) fn split(buf: &[u8], counts: &[usize]) -> Option<Vec<Vec<u8>>> {
    let f = proto::fields(buf)?;
    let overall = proto::last_uint(&f, 1);
    let statuses = proto::all_bytes(&f, 2);
    if (overall != OK && overall != OVER_LIMIT) || statuses.is_empty() {
        return Some(counts.iter().map(|_| buf.to_vec()).collect());
    }
    if statuses.len() != counts.iter().sum::<usize>() {
        return None;
    }
    let mut out = Vec::with_capacity(counts.len());
    let mut at = 0;
    for &n in counts {
        let mine = statuses.get(at..at + n)?;
        at += n;
        let over = mine.iter().any(|s| proto::fields(s).is_some_and(|sf| proto::last_uint(&sf, 1) == OVER_LIMIT));
        let mut answer = Vec::with_capacity(mine.iter().map(|s| s.len() + 2).sum::<usize>() + 2);
        proto::uint(&mut answer, 1, if over { OVER_LIMIT } else { OK });
        for s in mine {
            proto::bytes(&mut answer, 2, s);
        }
        out.push(answer);
    }
    Some(out)
}

/// One descriptor's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Status {
    over: bool,
    remaining: u64,
    reset_s: i64,
}

/// The statuses of a `RateLimitResponse`, or `None` if it is malformed or its overall code is
/// neither OK nor OVER_LIMIT (the service could not decide).
fn statuses(buf: &[u8]) -> Option<(bool, Vec<Status>)> {
    let f = proto::fields(buf)?;
    let overall = proto::last_uint(&f, 1);
    if overall != OK && overall != OVER_LIMIT {
        return None;
    }
    let mut out = Vec::new();
    for s in proto::all_bytes(&f, 2) {
        let sf = proto::fields(s)?;
        let reset_s = match proto::last_bytes(&sf, 4) {
            Some(d) => proto::last_uint(&proto::fields(d)?, 1) as i64,
            None => 0,
        };
        let has_limit = sf.iter().any(|(n, v)| *n == 2 && matches!(v, Value::Bytes(_)));
        out.push(Status {
            over: proto::last_uint(&sf, 1) == OVER_LIMIT,
            remaining: if has_limit { proto::last_uint(&sf, 3) } else { u64::MAX },
            reset_s,
        });
    }
    Some((overall == OVER_LIMIT, out))
}

/// What the service's answer means for the request. `answer` is `None` when the call failed or timed
/// out; `fail_open` admits then.
pub(crate) fn verdict(cfg: &TrafficConfig, call: &RateLimitCall, answer: Option<&[u8]>, fail_open: bool) -> Result<Option<Quota>, Refusal> {
    let Some((over, statuses)) = answer.and_then(statuses) else {
        if fail_open {
            return Ok(None);
        }
        let mut r = Refusal::new(&errors::X503BZ, &[], "rate limit service unavailable");
        r.headers.push(("retry-after".into(), "1".to_string()));
        return Err(r);
    };
    let mut quota: Option<Quota> = None;
    for (i, d) in call.dimensions.iter().enumerate() {
        let s = statuses.get(i).copied().unwrap_or(Status { over: false, remaining: u64::MAX, reset_s: 0 });
        if s.over {
            return Err(throttled(cfg, call.plugin, d, s.reset_s));
        }
        if s.remaining != u64::MAX && quota.is_none_or(|q| s.remaining < q.remaining) {
            quota = Some(Quota { limit: d.limit, remaining: s.remaining, reset_s: s.reset_s });
        }
    }
    if over {
        // OVER_LIMIT overall with no descriptor saying which: the widest dimension is named.
        if let Some(d) = call.dimensions.last() {
            return Err(throttled(cfg, call.plugin, d, 1));
        }
    }
    Ok(quota)
}

fn throttled(cfg: &TrafficConfig, plugin: u32, d: &Dimension, reset_s: i64) -> Refusal {
    let e: &'static ErrorCode = if d.special { &errors::T429PR } else { &errors::T429PA };
    let mut r = Refusal::new(e, &[], "throttled");
    r.message = format!("{}: {} limit {} per {}", e.message, d.dim.as_str(), d.limit, cfg.unit.as_str());
    let retry = reset_s.max(1);
    r.headers.push(("retry-after".into(), retry.to_string()));
    if cfg.rate_limit_headers {
        let q = Quota { limit: d.limit, remaining: 0, reset_s: retry };
        r.headers.extend(q.headers().map(|(n, v)| (n.into(), v)));
    }
    r.throttled = Some((plugin, d.dim));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u64, remaining: u64) -> Vec<u8> {
        let mut s = Vec::new();
        proto::uint(&mut s, 1, code);
        proto::message(&mut s, 2, |l| proto::uint(l, 1, 10));
        proto::uint(&mut s, 3, remaining);
        s
    }

    #[test]
    fn a_batch_is_split_back_per_member() {
        let mut one = Vec::new();
        proto::bytes(&mut one, 1, b"cagate");
        proto::message(&mut one, 2, |d| proto::message(d, 1, |e| proto::bytes(e, 1, b"k")));
        let d = descriptors("cagate", &one).unwrap();
        assert!(descriptors("other", &one).is_none());
        let b = batch("cagate", [d, d].into_iter());
        assert_eq!(proto::all_bytes(&proto::fields(&b).unwrap(), 2).len(), 2);

        let mut answer = Vec::new();
        proto::uint(&mut answer, 1, OVER_LIMIT);
        for s in [status(OK, 3), status(OVER_LIMIT, 0), status(OK, 2)] {
            proto::bytes(&mut answer, 2, &s);
        }
        let parts = split(&answer, &[1, 2]).unwrap();
        let (over0, s0) = statuses(&parts[0]).unwrap();
        assert!(!over0 && s0.len() == 1 && s0[0].remaining == 3, "the first member is under its limit");
        let (over1, s1) = statuses(&parts[1]).unwrap();
        assert!(over1 && s1.len() == 2 && s1[0].over && !s1[1].over);
        assert!(split(&answer, &[1, 1]).is_none(), "statuses that do not match the descriptors");
        let mut bare = Vec::new();
        proto::uint(&mut bare, 1, OK);
        assert_eq!(split(&bare, &[1, 2]).unwrap(), vec![bare.clone(), bare.clone()], "no statuses: the overall code for all");
    }
}
