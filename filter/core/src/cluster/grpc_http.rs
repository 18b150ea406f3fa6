//! A unary gRPC call carried as a plain HTTP/2 request, for a host that can make HTTP calls but has no
//! gRPC client (Envoy's dynamic modules): the request's headers and length-prefixed body, and the
//! answer read back from the response's headers and body. A unary call that fails answers
//! "trailers-only": its `grpc-status` is in the headers, which is all such a host returns.

/// The request headers of `/<service>/<method>` (`host` names the cluster, as Envoy wants one).
pub fn request_headers<'a>(path: &'a str, cluster: &'a str) -> [(&'static str, &'a str); 5] {
    [(":method", "POST"), (":path", path), ("host", cluster), ("content-type", "application/grpc"), ("te", "trailers")]
}

/// The request body: one uncompressed message, prefixed by its flag byte and big-endian length.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(0);
    out.extend_from_slice(&u32::try_from(message.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// The one uncompressed message of a response body; `None` if the body is anything else.
pub fn unframe(body: &[u8]) -> Option<&[u8]> {
    let (&flag, rest) = body.split_first()?;
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let message = rest.get(4..)?;
    (flag == 0 && message.len() == len).then_some(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_round_trip_and_malformed_bodies() {
        let body = frame(b"\x10\x01");
        assert_eq!(body, [0, 0, 0, 0, 2, 0x10, 0x01]);
        assert_eq!(unframe(&body), Some(&b"\x10\x01"[..]));
        assert_eq!(unframe(&frame(b"")), Some(&b""[..]), "an empty message is a message");
        assert_eq!(unframe(&[]), None);
        assert_eq!(unframe(&[1, 0, 0, 0, 2, 0x10, 0x01]), None, "compressed");
        assert_eq!(unframe(&[0, 0, 0, 0, 3, 0x10, 0x01]), None, "cut short");
        assert_eq!(unframe(&[0, 0, 0, 0, 1, 0x10, 0x01]), None, "two messages or trailing bytes");
        assert_eq!(request_headers("/etcdserverpb.KV/Txn", "etcd")[1], (":path", "/etcdserverpb.KV/Txn"));
    }
}
