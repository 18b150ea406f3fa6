//! The configuration: validated once (every problem with its JSON path) and compiled into the
//! lookup tables a request uses: apps, APIs, grants, the route trie, plugin bindings.

pub(crate) mod backend;
pub(crate) mod compile;
pub(crate) mod model;
pub(crate) mod parameters;
pub(crate) mod router;
pub(crate) mod validator;
