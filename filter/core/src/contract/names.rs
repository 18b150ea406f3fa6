//! The header names the gateway owns. A client's copy of the first group never reaches the backend
//! (see `wire::headers::gateway_owned`); the second group are the refusal's own.

/// Headers the backend can trust: set by the gateway, any client-sent copy removed.
pub const APP_ID_HEADER: &str = "x-ca-app-id";
pub const API_NAME_HEADER: &str = "x-ca-api-name";
pub const REQUEST_ID_HEADER: &str = "x-ca-request-id";

/// The hop counter for loop detection (`maxHops`).
pub const HOPS_HEADER: &[u8] = b"x-ca-hops";

/// The refusal's code and message.
pub const ERROR_CODE_HEADER: &str = "x-ca-error-code";
pub const ERROR_MESSAGE_HEADER: &str = "x-ca-error-message";

/// The Envoy cluster of an API's backend, for a route with `cluster_header: x-cagate-cluster`.
pub const BACKEND_CLUSTER_HEADER: &str = "x-cagate-cluster";
/// The backend timeout of an API, honoured by Envoy's router.
pub const UPSTREAM_TIMEOUT_HEADER: &str = "x-envoy-upstream-rq-timeout-ms";

/// The header that tells the backend which route sent the request (Aliyun's name). The gateway owns
/// it: a client's copy never reaches the backend.
pub(crate) const ROUTING_NAME_HEADER: &str = "x-ca-routing-name";
