//! The request decision: route, authenticate, run the plugins, admit (with the backend's header
//! edits) or refuse. Pure functions over the request view and the host services.

pub(crate) mod admit;
pub(crate) mod authenticate;
pub(crate) mod cluster_calls;
pub(crate) mod forward;
pub(crate) mod model;
pub(crate) mod route;
pub(crate) mod vars;
