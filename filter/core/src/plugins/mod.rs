//! Aliyun's plugins, one module each, with the binding that parses their definitions and binds them
//! to APIs and stages, the condition language accessControl and errorMapping share, and Aliyun's system parameters.

pub(crate) mod access_control;
pub(crate) mod backend_signature;
pub(crate) mod basic_auth;
pub(crate) mod binding;
pub(crate) mod caching;
pub mod circuit_breaker;
pub mod conditions;
pub(crate) mod cors;
pub(crate) mod datasets;
pub(crate) mod definition;
pub mod error_mapping;
pub(crate) mod ip_control;
pub mod jwt;
pub(crate) mod log_mask;
pub(crate) mod remote_auth;
pub(crate) mod routing;
pub mod system;
pub mod traffic_control;
pub(crate) mod transformer;
