//! The configuration: validated once (every problem with its JSON path) and compiled into the
//! lookup tables a request uses: apps, APIs, grants, the route trie, plugin bindings; and the app
//! registry, a document of apps and grants fetched at runtime and merged into a compiled configuration.

pub mod app_registry;
pub(crate) mod backend;
pub(crate) mod clusters;
pub(crate) mod compile;
pub(crate) mod model;
pub(crate) mod parameters;
pub(crate) mod router;
