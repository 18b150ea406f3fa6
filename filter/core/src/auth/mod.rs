//! Authentication steps of Aliyun's gateway: the digest signature, and replay protection with
//! one-time keys (nonces, and JWT `jti`s).

pub(crate) mod replay;
pub(crate) mod signature;
