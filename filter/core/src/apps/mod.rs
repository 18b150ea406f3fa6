//! Apps: the directory of apps and their credentials (static configuration and registry alike), and
//! the app registry: a document fetched at runtime, validated as a whole, shared by every worker.

pub(crate) mod directory;
pub mod registry;
pub(crate) mod settings;
