#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The request engine natively, through the test kit: what a request's events do (held while the body
//! or the cluster-mode checks are pending, never released by a later callback), the cluster-mode state
//! machine (lease grant, claim, re-grant, unavailability), and the response policy (the gateway's
//! codes on Envoy's answers only, the breaker counting only backends reached).

use cagate_core::testkit::{Call, Kit};
use cagate_core::{sign, Algorithm, Answer, Flow};

const NOW: i64 = 1_800_000_000_000;
const KEY: &str = "k1";
const SECRET: &str = "test-app-secret-1-0123456789abcdef";

fn config(extra: &str) -> String {
    format!(
        r#"{{ "apps": [ {{ "appId": 10001, "appKey": "{KEY}", "appSecret": "{SECRET}" }} ],
        "plugins": [ {{ "name": "breaker", "type": "circuitBreaker", "data": "timeoutThreshold: 3\nwindowInSeconds: 30\nopenTimeoutSeconds: 30\n" }} ],
        "apis": [ {{ "name": "orders", "method": "ANY", "path": "/orders/[id]", "authorizations": [ {{ "appId": 10001 }} ] }},
                  {{ "name": "public", "method": "ANY", "path": "/public/*", "authType": "ANONYMOUS", "plugins": [ {{ "plugin": "breaker" }} ] }} ]
        {extra} }}"#
    )
}

/// Signed headers for a GET with a nonce and a timestamp.
fn signed(path: &str, nonce: &str) -> Vec<(&'static str, String)> {
    let block = format!("x-ca-key:{KEY}\nx-ca-nonce:{nonce}\nx-ca-timestamp:{NOW}\n");
    let sts = format!("GET\n\n\n\n\n{block}{path}");
    vec![
        ("x-ca-key", KEY.to_string()),
        ("x-ca-nonce", nonce.to_string()),
        ("x-ca-timestamp", NOW.to_string()),
        ("x-ca-signature-headers", "x-ca-key,x-ca-nonce,x-ca-timestamp".to_string()),
        ("x-ca-signature", sign(Algorithm::HmacSha256, SECRET.as_bytes(), sts.as_bytes())),
    ]
}

fn refs<'a>(h: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    h.iter().map(|(n, v)| (*n, v.as_str())).collect()
}

#[test]
fn a_signed_request_is_forwarded_with_the_gateways_identity() {
    let kit = Kit::new(&config(""), NOW);
    let mut h = signed("/orders/1", "n-1");
    h.push(("x_ca_app_id", "99999".to_string()));
    let o = kit.get("/orders/1", &refs(&h));
    assert!(o.forwarded(), "{:?}", o.reply());
    assert_eq!(o.stream.upstream("x-ca-app-id").as_deref(), Some("10001"));
    assert_eq!(o.stream.upstream("x_ca_app_id"), None);
    assert_eq!(o.stream.upstream("x-ca-request-id").as_deref(), Some(o.exchange.request_id()));
    assert_eq!(kit.stats.count("allowed"), 1);
    let again = kit.get("/orders/1", &refs(&h));
    assert_eq!((again.status(), again.code().as_deref()), (403, Some("S403NU")));
    assert_eq!(kit.stats.count("refused.S403NU"), 1);
}

#[test]
fn a_client_copy_of_a_gateway_header_that_cannot_be_removed_stops_the_request() {
    use cagate_core::testkit::{Delivery, MemoryStream};
    let kit = Kit::new(&config(""), NOW);
    let run = |forged: bool, no_removal: bool| {
        let mut pairs = vec![(b":method".to_vec(), b"GET".to_vec()), (b":path".to_vec(), b"/orders/1".to_vec())];
        pairs.extend(signed("/orders/1", &format!("n-{forged}-{no_removal}")).into_iter().map(|(n, v)| (n.as_bytes().to_vec(), v.into_bytes())));
        if forged {
            pairs.push((b"x_ca_app_id".to_vec(), b"99999".to_vec()));
        }
        kit.run(MemoryStream { request: std::cell::RefCell::new(pairs), no_removal, ..MemoryStream::default() }, Delivery::default())
    };
    let o = run(true, true);
    assert_eq!((o.status(), o.code().as_deref()), (500, Some("X500ER")), "the backend would trust the client's X_Ca_App_Id");
    assert!(!o.forwarded());
    assert!(run(false, true).forwarded(), "nothing to remove: nothing fails");
    let o = run(true, false);
    assert_eq!((o.stream.upstream_all("x-ca-app-id"), o.stream.upstream_all("x_ca_app_id")), (vec!["10001".to_string()], vec![]));
}

#[test]
fn header_edits_are_host_calls_only_for_real_edits() {
    use cagate_core::testkit::{Delivery, MemoryStream};
    let kit = Kit::new(&config(""), NOW);
    let run = |extra: &[(&str, &str)]| {
        let mut pairs = vec![(b":method".to_vec(), b"GET".to_vec()), (b":path".to_vec(), b"/orders/1".to_vec())];
        let nonce = format!("n-{}", extra.len());
        for (n, v) in signed("/orders/1", &nonce)
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .chain(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())))
        {
            pairs.push((n.into_bytes(), v.into_bytes()));
        }
        let stream = MemoryStream { request: std::cell::RefCell::new(pairs), ..MemoryStream::default() };
        kit.run(stream, Delivery::default())
    };
    let plain = run(&[]);
    assert!(plain.forwarded(), "{:?}", plain.reply());
    assert_eq!(plain.stream.upstream("x-ca-app-id").as_deref(), Some("10001"));
    let calls = plain.stream.header_calls.get();
    // The gateway's own headers a client sent are removed: one call each, and only then.
    let forged = run(&[("x-cagate-cluster", "admin"), ("x-ca-app-id", "99999")]);
    assert!(forged.forwarded());
    assert_eq!(forged.stream.upstream("x-cagate-cluster"), None);
    assert_eq!(forged.stream.upstream_all("x-ca-app-id"), ["10001"]);
    assert_eq!(forged.stream.header_calls.get(), calls + 1, "x-cagate-cluster removed; x-ca-app-id was set anyway");
    assert_eq!(calls, 3, "the app id, the API name and the request id, nothing removed for nothing");
}

#[test]
fn a_held_request_is_never_released_by_a_later_callback() {
    let kit = Kit::new(&config(""), NOW);
    let svc = kit.services();
    // Content-MD5 makes the engine wait for the body; the data frames and trailers that follow keep
    // it held until it is decided, and then it is refused (no credentials).
    let stream = cagate_core::testkit::MemoryStream {
        request: std::cell::RefCell::new(vec![
            (b":method".to_vec(), b"POST".to_vec()),
            (b":path".to_vec(), b"/orders/1".to_vec()),
            (b"content-md5".to_vec(), b"x".to_vec()),
            (b"x-ca-app-id".to_vec(), b"10001".to_vec()),
        ]),
        body: b"{}".to_vec(),
        ..Default::default()
    };
    let mut x = kit.engine.exchange();
    assert_eq!(x.on_request_headers(&kit.engine, &svc, &stream, false), Flow::Pause);
    assert_eq!(x.on_request_body(&kit.engine, &svc, &stream, 2, false), Flow::Pause);
    assert_eq!(x.on_request_trailers(&kit.engine, &svc, &stream), Flow::Pause);
    let reply = stream.reply.borrow().clone().expect("decided at the trailers");
    assert_eq!(reply.status, 400);
    assert!(reply.headers.iter().any(|(n, v)| n == "x-ca-error-code" && v == "A400MA"));
    // After the reply, no callback lets the request continue.
    assert_eq!(x.on_request_body(&kit.engine, &svc, &stream, 2, true), Flow::Pause);
    assert_eq!(x.on_request_trailers(&kit.engine, &svc, &stream), Flow::Pause);
}

const ETCD: &str = r#", "cluster": { "oneTimeKeys": { "etcdCluster": "etcd", "timeoutMs": 500 } }"#;
/// etcd's answers, as protobuf: TxnResponse { succeeded }, the same not succeeded with the key read
/// back (another claim's mark, `x`), and an empty LeaseGrantResponse.
const CLAIMED: &[u8] = &[0x10, 0x01];
const TAKEN: &[u8] = &[0x10, 0x00, 0x1a, 0x07, 0x0a, 0x05, 0x12, 0x03, 0x2a, 0x01, b'x'];
const GRANTED: &[u8] = &[];

fn methods(o: &cagate_core::testkit::Outcome) -> Vec<&'static str> {
    o.stream.calls.borrow().iter().map(|(_, c)| c.method).collect()
}

fn last_token(o: &cagate_core::testkit::Outcome) -> u32 {
    o.stream.calls.borrow().last().map(|(t, _)| *t).unwrap()
}

#[test]
fn cluster_claims_grant_the_lease_first_then_claim_and_resume() {
    let kit = Kit::new(&config(ETCD), NOW);
    let mut o = kit.get("/orders/1", &refs(&signed("/orders/1", "n-1")));
    assert_eq!(o.flow, Flow::Pause, "held for the cluster-mode checks");
    assert_eq!(methods(&o), ["LeaseGrant"], "the lease is not known yet");
    kit.answer(&mut o, 1, &Answer::Ok(GRANTED.to_vec()));
    assert_eq!(methods(&o), ["LeaseGrant", "Txn"]);
    assert!(!o.forwarded());
    kit.answer(&mut o, 2, &Answer::Ok(CLAIMED.to_vec()));
    assert!(o.forwarded() && o.stream.resumed.get());
    assert_eq!(o.stream.upstream("x-ca-app-id").as_deref(), Some("10001"));
    // The lease is known now: the next request claims at once.
    let mut o = kit.get("/orders/1", &refs(&signed("/orders/1", "n-2")));
    assert_eq!(methods(&o), ["Txn"]);
    kit.answer(&mut o, 1, &Answer::Ok(TAKEN.to_vec()));
    assert_eq!((o.status(), o.code().as_deref()), (403, Some("S403NU")), "claimed by another Envoy");
    assert_eq!(kit.stats.count("cluster.etcd.replayed"), 1);
    // An answer that does not read the key back is no evidence of a replay: the claim failed.
    let mut o = kit.get("/orders/1", &refs(&signed("/orders/1", "n-3")));
    kit.answer(&mut o, 1, &Answer::Ok(vec![0x10, 0x00]));
    assert_eq!((o.status(), o.code().as_deref()), (503, Some("X503BZ")), "{:?}", o.reply());
    assert_eq!(kit.stats.count("cluster.etcd.replayed"), 1);
}

#[test]
fn cluster_claims_survive_a_forgotten_lease_and_refuse_while_etcd_is_down() {
    let kit = Kit::new(&config(ETCD), NOW);
    let mut o = kit.get("/orders/1", &refs(&signed("/orders/1", "n-1")));
    kit.answer(&mut o, 1, &Answer::Ok(GRANTED.to_vec()));
    kit.answer(&mut o, 2, &Answer::Ok(CLAIMED.to_vec()));
    // etcd lost the lease (NOT_FOUND): granted again, then claimed.
    let mut o = kit.get("/orders/1", &refs(&signed("/orders/1", "n-2")));
    kit.answer(&mut o, 1, &Answer::Failed(5));
    assert_eq!(methods(&o), ["Txn", "LeaseGrant"]);
    kit.answer(&mut o, 2, &Answer::Ok(GRANTED.to_vec()));
    let t = last_token(&o);
    kit.answer(&mut o, t, &Answer::Ok(CLAIMED.to_vec()));
    assert!(o.forwarded());
    // etcd unavailable: each call is sent again (to the next member) while the chain has calls
    // left; then the nonce cannot be claimed, and the client is told to retry.
    let mut o = kit.get("/orders/1", &refs(&signed("/orders/1", "n-3")));
    for _ in 0..4 {
        assert!(o.reply().is_none());
        let t = last_token(&o);
        kit.answer(&mut o, t, &Answer::Failed(14));
    }
    assert_eq!(methods(&o), ["Txn"; 4]);
    assert_eq!(kit.stats.count("cluster.etcd.retries"), 3);
    let reply = o.reply().unwrap();
    assert_eq!((reply.status, o.code().as_deref()), (503, Some("X503BZ")));
    assert!(reply.headers.iter().any(|(n, v)| n == "retry-after" && v == "1"));
    // A token that is not this request's changes nothing.
    let mut o = kit.get("/orders/1", &refs(&signed("/orders/1", "n-4")));
    kit.answer(&mut o, 99, &Answer::Ok(CLAIMED.to_vec()));
    assert!(!o.forwarded() && o.reply().is_none());
}

/// A TxnResponse that did not put the key and read it back with `value`.
fn read_back(value: &[u8]) -> Vec<u8> {
    let kv = [&[0x2a, value.len() as u8][..], value].concat();
    let range = [&[0x12, kv.len() as u8][..], &kv].concat();
    let op = [&[0x0a, range.len() as u8][..], &range].concat();
    [&[0x1a, op.len() as u8][..], &op].concat()
}

#[test]
fn a_claim_sent_again_after_a_timeout_knows_its_own_earlier_attempt() {
    let kit = Kit::new(&config(ETCD), NOW);
    let mut o = kit.get("/orders/1", &refs(&signed("/orders/1", "n-1")));
    kit.answer(&mut o, 1, &Answer::Ok(GRANTED.to_vec()));
    kit.answer(&mut o, 2, &Answer::Ok(CLAIMED.to_vec()));
    let timeouts: Vec<u64> = o.stream.calls.borrow().iter().map(|(_, c)| c.timeout_ms).collect();
    assert_eq!(timeouts, [250, 250], "each call gets half of timeoutMs");
    // The first claim timed out after etcd committed it: the second finds the key with this
    // request's mark, and admits.
    let mut o = kit.get("/orders/1", &refs(&signed("/orders/1", "n-2")));
    kit.answer(&mut o, 1, &Answer::Timeout);
    assert_eq!(methods(&o), ["Txn", "Txn"], "sent again");
    let mark = o.exchange.request_id().as_bytes().to_vec();
    kit.answer(&mut o, 2, &Answer::Ok(read_back(&mark)));
    assert!(o.forwarded(), "{:?}", o.reply());
    // Another request's mark: a replay, whatever the timeouts before.
    let mut o = kit.get("/orders/1", &refs(&signed("/orders/1", "n-3")));
    kit.answer(&mut o, 1, &Answer::Timeout);
    kit.answer(&mut o, 2, &Answer::Ok(read_back(b"00000000-0000-4000-8000-000000000000")));
    assert_eq!((o.status(), o.code().as_deref()), (403, Some("S403NU")));
    // The same request replayed: etcd holds the first one's mark, which is not the replay's.
    let mut o = kit.get("/orders/1", &refs(&signed("/orders/1", "n-2")));
    kit.answer(&mut o, 1, &Answer::Ok(read_back(&mark)));
    assert_eq!((o.status(), o.code().as_deref()), (403, Some("S403NU")));
}

/// A batch's answer: each claim's TxnResponse nested (ResponseOp.response_txn), in order.
fn batch_answer(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![0x10, 0x01];
    for p in parts {
        let op = [&[0x22, p.len() as u8][..], p].concat();
        out.extend_from_slice(&[0x1a, op.len() as u8]);
        out.extend_from_slice(&op);
    }
    out
}

#[test]
fn concurrent_claims_share_one_etcd_transaction_and_each_gets_its_own_verdict() {
    let kit = Kit::new(&config(ETCD), NOW);
    kit.engine.enable_batching();
    // Alone: the lease is granted and the claim sent at once, from the request itself.
    let mut a = kit.get("/orders/1", &refs(&signed("/orders/1", "n-a")));
    kit.answer(&mut a, 1, &Answer::Ok(GRANTED.to_vec()));
    assert_eq!(methods(&a), ["LeaseGrant", "Txn"]);
    // While a's claim is in flight, the next ones queue: they send nothing themselves.
    let mut b = kit.get("/orders/1", &refs(&signed("/orders/1", "n-b")));
    let mut c = kit.get("/orders/1", &refs(&signed("/orders/1", "n-c")));
    assert!(b.stream.calls.borrow().is_empty() && c.stream.calls.borrow().is_empty());
    assert!(kit.engine.batches_pending());
    // A replay on this Envoy never reaches etcd: the local store refuses it first.
    let c2 = kit.get("/orders/1", &refs(&signed("/orders/1", "n-c")));
    assert_eq!(c2.code().as_deref(), Some("S403NU"));
    // One transaction for b and c.
    let mut batches = kit.flush(&mut [&mut b, &mut c]);
    assert_eq!(batches.len(), 1);
    let (token, batch) = batches.remove(0);
    assert_eq!((batch.service(), batch.size(), batch.call.method), ("etcd", 2, "Txn"));
    assert_eq!(batch.call.timeout_ms, 250, "half of timeoutMs, as a claim sent alone");
    kit.sent(token, batch);
    kit.answer(&mut a, 2, &Answer::Ok(CLAIMED.to_vec()));
    assert!(a.forwarded());
    // b's claim committed; c's key was claimed by another Envoy (read back with its mark).
    kit.answer_batch(
        &mut [&mut b, &mut c],
        token,
        &Answer::Ok(batch_answer(&[CLAIMED.to_vec(), read_back(b"00000000-0000-4000-8000-000000000000")])),
    );
    assert!(b.forwarded() && b.stream.resumed.get(), "{:?}", b.reply());
    assert_eq!(b.stream.upstream("x-ca-app-id").as_deref(), Some("10001"));
    assert_eq!((c.status(), c.code().as_deref()), (403, Some("S403NU")));
    assert_eq!(kit.stats.count("cluster.etcd.replayed"), 1);
    assert!(!kit.engine.batches_pending());
}

#[test]
fn a_failed_batch_fails_or_retries_each_member_and_a_queued_claim_never_waits_past_its_deadline() {
    let kit = Kit::new(&config(ETCD), NOW);
    kit.engine.enable_batching();
    let mut a = kit.get("/orders/1", &refs(&signed("/orders/1", "n-a")));
    kit.answer(&mut a, 1, &Answer::Ok(GRANTED.to_vec()));
    let mut b = kit.get("/orders/1", &refs(&signed("/orders/1", "n-b")));
    let (token, batch) = kit.flush(&mut [&mut b]).remove(0);
    kit.sent(token, batch);
    // The batch timed out: b's claim queues again (its chain has time and sends left) ...
    kit.answer_batch(&mut [&mut b], token, &Answer::Timeout);
    assert!(b.reply().is_none() && kit.engine.batches_pending());
    assert_eq!(kit.stats.count("cluster.etcd.retries"), 1);
    // ... a malformed answer is no verdict: refused as unavailable, never admitted.
    let (token, batch) = kit.flush(&mut [&mut b]).remove(0);
    kit.sent(token, batch);
    kit.answer_batch(&mut [&mut b], token, &Answer::Ok(vec![0x10, 0x01, 0x1a, 0x02, 0x08, 0x01]));
    assert_eq!((b.status(), b.code().as_deref()), (503, Some("X503BZ")));
    // Queued past its deadline (timeoutMs 500): answered as timed out, refused X503BZ.
    let mut c = kit.get("/orders/1", &refs(&signed("/orders/1", "n-c")));
    assert!(c.stream.calls.borrow().is_empty(), "a's claim is still in flight: c queues");
    kit.clock.0.set(NOW + 600);
    assert!(kit.flush(&mut [&mut c]).is_empty());
    assert_eq!((c.status(), c.code().as_deref()), (503, Some("X503BZ")));
    assert!(!kit.engine.batches_pending());
    // What the alert divides: every attempt of a check is one, however it was sent: a's grant, b's two
    // answers, c's expiry in the queue, and c's retry that had no time left to be sent.
    let count = |what: &str| kit.stats.count(&format!("cluster.etcd.{what}"));
    assert_eq!((count("checks"), count("timeouts"), count("errors")), (5, 2, 2));
}

#[test]
fn a_queued_claim_whose_lease_etcd_forgot_waits_for_the_lease_to_be_granted_again() {
    let kit = Kit::new(&config(ETCD), NOW);
    kit.engine.enable_batching();
    let mut a = kit.get("/orders/1", &refs(&signed("/orders/1", "n-a")));
    kit.answer(&mut a, 1, &Answer::Ok(GRANTED.to_vec()));
    let mut b = kit.get("/orders/1", &refs(&signed("/orders/1", "n-b")));
    let (token, batch) = kit.flush(&mut [&mut b]).remove(0);
    kit.sent(token, batch);
    kit.answer_batch(&mut [&mut b], token, &Answer::Failed(5));
    // The lease is unknown now: no batch until it is granted; the flush asks for the grant.
    let flush = kit.engine.take_batches(NOW);
    assert!(flush.calls.is_empty() && flush.expired.is_empty());
    assert_eq!(flush.leases.len(), 1);
    assert_eq!(flush.leases[0].1.method, "LeaseGrant");
    assert!(kit.engine.lease_answered(&flush.leases[0].0, &Answer::Ok(GRANTED.to_vec()), NOW));
    let (token, batch) = kit.flush(&mut [&mut b]).remove(0);
    kit.sent(token, batch);
    kit.answer_batch(&mut [&mut b], token, &Answer::Ok(batch_answer(&[CLAIMED.to_vec()])));
    assert!(b.forwarded(), "{:?}", b.reply());
}

#[test]
fn a_lease_etcd_forgot_does_not_refuse_the_other_members_of_its_batch() {
    let kit = Kit::new(&config(ETCD), NOW);
    kit.engine.enable_batching();
    let mut a = kit.get("/orders/1", &refs(&signed("/orders/1", "n-a")));
    kit.answer(&mut a, 1, &Answer::Ok(GRANTED.to_vec()));
    // b: the known lease; c: a timestamp ten minutes ahead, another lease, which c grants itself.
    let mut b = kit.get("/orders/1", &refs(&signed("/orders/1", "n-b")));
    let ahead = NOW + 600_000;
    let block = format!("x-ca-key:{KEY}\nx-ca-nonce:n-c\nx-ca-timestamp:{ahead}\n");
    let c_headers = [
        ("x-ca-key", KEY.to_string()),
        ("x-ca-nonce", "n-c".to_string()),
        ("x-ca-timestamp", ahead.to_string()),
        ("x-ca-signature-headers", "x-ca-key,x-ca-nonce,x-ca-timestamp".to_string()),
        ("x-ca-signature", sign(Algorithm::HmacSha256, SECRET.as_bytes(), format!("GET\n\n\n\n\n{block}/orders/1").as_bytes())),
    ];
    let mut c = kit.get("/orders/1", &refs(&c_headers));
    assert_eq!(methods(&c), ["LeaseGrant"], "{:?}", c.reply());
    let grant = last_token(&c);
    kit.answer(&mut c, grant, &Answer::Ok(GRANTED.to_vec()));
    let (token, batch) = kit.flush(&mut [&mut b, &mut c]).remove(0);
    assert_eq!(batch.size(), 2);
    kit.sent(token, batch);
    // etcd lost b's lease: the whole transaction is NOT_FOUND. Neither is refused: both ask again.
    kit.answer_batch(&mut [&mut b, &mut c], token, &Answer::Failed(5));
    assert!(b.reply().is_none() && c.reply().is_none(), "b: {:?}, c: {:?}", b.reply(), c.reply());
    let flush = kit.engine.take_batches(NOW);
    assert_eq!(flush.leases.len(), 2, "each lease granted again");
    for (lease, _) in &flush.leases {
        assert!(kit.engine.lease_answered(lease, &Answer::Ok(GRANTED.to_vec()), NOW));
    }
    let (token, batch) = kit.flush(&mut [&mut b, &mut c]).remove(0);
    kit.sent(token, batch);
    kit.answer_batch(&mut [&mut b, &mut c], token, &Answer::Ok(batch_answer(&[CLAIMED.to_vec(), CLAIMED.to_vec()])));
    assert!(b.forwarded() && c.forwarded(), "b: {:?}, c: {:?}", b.reply(), c.reply());
}

#[test]
fn a_half_open_trial_refused_by_a_later_check_is_given_back() {
    let cfg = format!(
        r#"{{ "apps": [ {{ "appId": 10001, "appKey": "{KEY}", "appSecret": "{SECRET}" }} ],
        "plugins": [ {{ "name": "breaker", "type": "circuitBreaker", "data": "timeoutThreshold: 2\nwindowInSeconds: 30\nopenTimeoutSeconds: 10\n" }} ],
        "apis": [ {{ "name": "orders", "method": "ANY", "path": "/orders/[id]", "authorizations": [ {{ "appId": 10001 }} ], "plugins": [ {{ "plugin": "breaker" }} ] }} ]
        {ETCD} }}"#
    );
    let kit = Kit::new(&cfg, NOW);
    let mut nonce = 0;
    let mut claimed = |answer: &[u8]| {
        nonce += 1;
        let mut o = kit.get("/orders/1", &refs(&signed("/orders/1", &format!("n-{nonce}"))));
        if methods(&o).last() == Some(&"LeaseGrant") {
            let t = last_token(&o);
            kit.answer(&mut o, t, &Answer::Ok(GRANTED.to_vec()));
        }
        if o.reply().is_none() {
            let t = last_token(&o);
            kit.answer(&mut o, t, &Answer::Ok(answer.to_vec()));
        }
        o
    };
    for _ in 0..2 {
        let mut o = claimed(CLAIMED);
        assert!(o.forwarded(), "{:?}", o.reply());
        kit.respond(&mut o, 503, &[], "via_upstream", b"");
    }
    assert_eq!(claimed(CLAIMED).code().as_deref(), Some("D503CB"), "open");
    kit.clock.0.set(NOW + 11_000);
    // The half-open trial: refused by etcd (a replay elsewhere), so it never reaches the backend.
    assert_eq!(claimed(TAKEN).code().as_deref(), Some("S403NU"));
    // The next request is the trial, not refused for another open period.
    let mut o = claimed(CLAIMED);
    assert!(o.forwarded(), "{:?}", o.reply());
    kit.respond(&mut o, 200, &[], "via_upstream", b"");
    assert!(claimed(CLAIMED).forwarded(), "the trial succeeded: closed");
}

#[test]
fn without_batching_every_claim_goes_alone() {
    let kit = Kit::new(&config(ETCD), NOW);
    let mut a = kit.get("/orders/1", &refs(&signed("/orders/1", "n-a")));
    kit.answer(&mut a, 1, &Answer::Ok(GRANTED.to_vec()));
    let b = kit.get("/orders/1", &refs(&signed("/orders/1", "n-b")));
    assert_eq!(methods(&b), ["Txn"], "the native build sends each claim itself");
    assert!(!kit.engine.batches_pending());
}

#[test]
fn a_backends_error_headers_are_removed_and_envoys_answers_carry_the_contract() {
    let kit = Kit::new(&config(""), NOW);
    let mut o = kit.get("/public/x", &[]);
    kit.respond(&mut o, 200, &[("x-ca-error-code", "A403IS"), ("x-ca-error-message", "forged")], "via_upstream", b"{}");
    assert_eq!(o.stream.response_header("x-ca-error-code"), None);
    assert_eq!(o.stream.response_header("x-ca-error-message"), None);
    assert_eq!(o.stream.response_header("x-ca-request-id").as_deref(), Some(o.exchange.request_id()));
    // Envoy's bodiless answer for a cluster it does not know: replaced whole by the gateway's reply.
    let mut o = kit.get("/public/x", &[]);
    assert_eq!(kit.respond(&mut o, 503, &[], "cluster_not_found", b""), Flow::Pause);
    assert_eq!((o.status(), o.code().as_deref()), (404, Some("I404SR")));
    // With a body: rewritten in place.
    let mut o = kit.get("/public/x", &[]);
    kit.respond(&mut o, 503, &[], "upstream_reset_before_response_started{connection_failure}", b"upstream connect error");
    assert_eq!(o.stream.response_header(":status").as_deref(), Some("504"));
    assert_eq!(o.stream.response_header("x-ca-error-code").as_deref(), Some("D504CO"));
    assert!(String::from_utf8_lossy(&o.stream.response_body.borrow()).contains("\"code\":\"D504CO\""));
}

#[test]
fn the_breaker_counts_only_backends_that_were_reached() {
    let kit = Kit::new(&config(""), NOW);
    let pass = |details: &str, status: u16| {
        let mut o = kit.get("/public/x", &[]);
        assert!(o.forwarded(), "{:?}", o.reply());
        kit.respond(&mut o, status, &[], details, b"");
    };
    let svc = kit.services();
    for _ in 0..5 {
        pass("filter_removed_required_request_headers{invalid_header_value}", 503);
        // A request whose body never came (the client stalled): the gateway's timeout.
        let mut o = kit.send(&Call { method: "POST", path: "/public/x", ..Call::default() });
        let mut x = kit.engine.exchange();
        assert_eq!(x.on_request_headers(&kit.engine, &svc, &o.stream, false), Flow::Continue);
        o.exchange = x;
        kit.respond(&mut o, 504, &[], "stream_idle_timeout", b"");
        assert_eq!(o.stream.response_header("x-ca-error-code"), None, "bodiless: replaced whole");
        assert_eq!(o.code().as_deref(), Some("X504TO"));
    }
    assert!(kit.get("/public/x", &[]).forwarded(), "still closed");
    for _ in 0..3 {
        pass("via_upstream", 503);
    }
    let o = kit.get("/public/x", &[]);
    assert_eq!((o.status(), o.code().as_deref()), (503, Some("D503CB")));
    assert_eq!(kit.stats.count("breaker_opened"), 1);
}

#[test]
fn a_body_on_an_unconfigured_vm_is_refused() {
    let stream = cagate_core::testkit::MemoryStream::default();
    assert_eq!(cagate_core::Exchange::refuse_unconfigured([b'0'; 36], &stream), Flow::Pause);
    assert_eq!(stream.reply.borrow().as_ref().map(|r| r.status), Some(500));
    let _ = Call::default();
}

#[test]
fn a_grpc_call_made_as_plain_http_answers_as_grpc_would() {
    use cagate_core::grpc_http::frame;
    let ok = frame(CLAIMED);
    assert_eq!(Answer::from_http(Some(200), None, &ok), Answer::Ok(CLAIMED.to_vec()));
    assert_eq!(Answer::from_http(Some(200), Some(b"0"), &ok), Answer::Ok(CLAIMED.to_vec()));
    // Trailers-only failures: etcd's lease errors keep their meaning.
    assert!(Answer::from_http(Some(200), Some(b"9"), b"").lease_exists());
    assert!(Answer::from_http(Some(200), Some(b"5"), b"").lease_missing());
    assert_eq!(Answer::from_http(Some(200), Some(b"x"), b""), Answer::Failed(13));
    assert_eq!(Answer::from_http(Some(200), None, b"\x01\x00\x00\x00\x00"), Answer::Failed(13), "compressed: not ours");
    assert_eq!(Answer::from_http(Some(504), None, b"upstream request timeout"), Answer::Timeout);
    assert_eq!(Answer::from_http(Some(503), None, b"no healthy upstream"), Answer::Failed(14));
    assert_eq!(Answer::from_http(None, None, b""), Answer::Failed(14), "reset");
}
