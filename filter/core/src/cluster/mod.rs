//! Cluster mode: one gateway across many Envoys. trafficControl counted by an Envoy rate limit service
//! (RLS v3), and one-time keys (`X-Ca-Nonce`, JWT `jti`) claimed once in etcd v3. The messages are
//! encoded and decoded here by hand (no protoc); the adapter only carries them over gRPC.

pub(crate) mod etcd;
pub mod grpc_http;
pub(crate) mod proto;
pub(crate) mod rls;
pub(crate) mod settings;
