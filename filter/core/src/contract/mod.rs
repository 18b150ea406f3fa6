//! What a client and a backend see of the gateway: Aliyun's error table, a refusal and its local reply,
//! the header names the gateway owns, request ids, backend failures in the gateway's codes.

pub mod backend_failure;
pub mod errors;
pub(crate) mod names;
pub(crate) mod refusal;
pub(crate) mod reply;
pub(crate) mod request_id;
