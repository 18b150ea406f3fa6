//! cagate-core: Alibaba Cloud API Gateway's request authentication as pure functions and types.
//! No proxy-wasm here: the adapter gathers the request, calls the request decision, and applies it.
//!
//! The folders are layers, from the bottom up (a folder imports only from its own layer or those
//! below; `make lint` checks it with `tests/tools/modgraph.py`):
//! - `ids`: typed indices into the configuration's tables (API, stage, app, plugin);
//! - `wire`: bytes on the wire (header maps, URLs, forms, header-safe text, time formats);
//! - `host`: the host services as traits (clock, shared data, the stream), with in-memory versions
//!   for tests (feature `test-kit`);
//! - `contract`: Aliyun's error table, refusals and their replies, the header names the gateway owns,
//!   who answered a response;
//! - `schema`: the `Validator`, typed walking of a JSON settings document, every problem with its path;
//! - `auth`: the digest signature and replay protection (one-time keys);
//! - `apps`: the app directory (key pairs, AppCodes) and the app registry's settings;
//! - `plugins`: Aliyun's plugins, their binding and the condition language;
//! - `cluster`: cluster mode's RLS v3 and etcd v3 messages and settings;
//! - `config`: compilation of the configuration into lookup tables, the app registry merged into it;
//! - `request`: the request decision (route, authenticate, admit, what the backend receives);
//! - `engine`: one request end to end over the host's events (the adapters translate to it), and
//!   the test kit that drives it natively.
//!
//! Everything other crates use is re-exported here, so they import from one place.
#![forbid(unsafe_code)]

mod apps;
mod auth;
mod cluster;
mod config;
mod contract;
mod engine;
mod host;
mod ids;
mod plugins;
mod request;
mod schema;
mod wire;

pub use apps::directory::{App, Credential, Directory};
pub use apps::settings::RegistrySettings;
pub use auth::replay::{NonceStore, NonceStoreConfig, OneTime, OneTimeKind, Outcome as ReplayOutcome};
pub use auth::signature::{sign, Algorithm, Signed, StringToSign};
pub use cluster::etcd::{Lease, LEASE_BUCKET_S};
pub use cluster::grpc_http;
pub use cluster::settings::ClusterModeSettings;
pub use config::app_registry::{self, Install as RegistryInstall};
pub use config::backend::{system_parameter_names, MockBackend};
pub use config::clusters::ClusterUse;
pub use config::compile::{compile, compile_with_env};
pub use config::model::{Api, Gateway, Grant};
pub use contract::backend_failure;
pub use contract::errors::{self, ErrorCode};
pub use contract::names::{
    API_NAME_HEADER, APP_ID_HEADER, BACKEND_CLUSTER_HEADER, ERROR_CODE_HEADER, ERROR_MESSAGE_HEADER, HOPS_HEADER, REQUEST_ID_HEADER,
    UPSTREAM_TIMEOUT_HEADER,
};
pub use contract::refusal::Refusal;
pub use contract::reply::{refusal as reply_for, Reply};
pub use contract::request_id::RequestIds;
#[cfg(any(test, feature = "test-kit"))]
pub use engine::testkit;
pub use engine::{Answer, BatchCall, Delivery, Engine, Exchange, Flow, Flush, Seeds, Services, Stat, Stats, StreamIo};
pub use host::{Clock, SetError, SharedStore, Stream};
#[cfg(any(test, feature = "test-kit"))]
pub use host::{FixedClock, MemoryStore};
pub use ids::{ApiId, AppId, PluginId, StageId};
pub use plugins::binding::{Plugin, PluginKind, Runtime};
pub use plugins::remote_auth::{HttpAnswer, HttpCall, MAX_ANSWER_BODY as MAX_HTTP_ANSWER_BODY};
pub use plugins::{circuit_breaker, conditions, error_mapping, jwt, system, traffic_control};
pub use request::cluster_calls::GrpcCall;
pub use schema::validator::Problem;
pub use wire::headers::{self, Headers};
pub use wire::text::{header_safe, stat_safe};
pub use wire::url::{
    append_signed_parameters, is_form, parse_urlencoded, percent_decode, split_path, starts_with_ignore_case, trim, Precedence, UrlParam,
};
