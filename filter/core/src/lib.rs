//! cagate-core: Alibaba Cloud API Gateway's request authentication as pure functions and types.
//! No proxy-wasm here: the adapter gathers the request, calls the request decision, and applies it.
//!
//! The modules, from the bottom up (a module imports only from its own layer or those below):
//! - `wire`: bytes on the wire (header maps, URLs, forms, header-safe text, time formats);
//! - `host`: the host services as traits (clock, shared data, the stream), with in-memory versions;
//! - `contract`: Aliyun's error table, refusals and their replies, the header names the gateway owns;
//! - `auth`: the digest signature and replay protection (one-time keys);
//! - `plugins`: Aliyun's plugins, their registry and the condition language;
//! - `config`: validation and compilation of the configuration into lookup tables;
//! - `request`: the request decision (route, authenticate, admit).
//!
//! Everything other crates use is re-exported here, so they import from one place.

mod apps;
mod auth;
mod cluster;
mod config;
mod contract;
mod host;
mod plugins;
mod request;
mod wire;

pub use apps::directory::{App, Credential, Directory};
pub use apps::registry::{self as app_registry, Install as RegistryInstall};
pub use apps::settings::RegistrySettings;
pub use auth::replay::{NonceStore, NonceStoreConfig, OneTime, OneTimeKind, Outcome as ReplayOutcome};
pub use auth::signature::{sign, Algorithm, Signed, StringToSign};
pub use cluster::etcd::{Lease, LEASE_BUCKET_S};
pub use cluster::settings::ClusterSettings;
pub use config::backend::{system_parameter_names, MockBackend};
pub use config::compile::{compile, compile_with_env};
pub use config::model::{Api, Gateway, Grant};
pub use config::validator::Problem;
pub use contract::backend_failure;
pub use contract::errors::{self, ErrorCode};
pub use contract::names::{
    API_NAME_HEADER, APP_ID_HEADER, BACKEND_CLUSTER_HEADER, ERROR_CODE_HEADER, ERROR_MESSAGE_HEADER, HOPS_HEADER, REQUEST_ID_HEADER,
    UPSTREAM_TIMEOUT_HEADER,
};
pub use contract::refusal::Refusal;
pub use contract::reply::{refusal as reply_for, Reply};
pub use contract::request_id::RequestIds;
pub use host::{Clock, FixedClock, FixedPeer, MemoryStore, NoStream, SetError, SharedStore, Stream};
pub use plugins::registry::{Plugin, PluginKind, Runtime};
pub use plugins::{circuit_breaker, conditions, error_mapping, jwt, traffic_control};
pub use request::admit::{debug_info, identity_headers, run_plugins};
pub use request::authenticate::authenticate;
pub use request::model::{Admission, Ctx, Identity, Request, Routed};
pub use request::remote::{claim_call, claim_verdict, lease_call, lease_granted, lease_of, rate_limit_call, rate_limit_verdict, GrpcCall};
pub use request::route::{cors_headers, route};
pub use wire::headers::{self, Edit, Headers};
pub use wire::text::header_safe;
pub use wire::url::{append_signed_parameters, is_form, parse_urlencoded, percent_decode, split_path, starts_with_ignore_case, trim, UrlParam};
