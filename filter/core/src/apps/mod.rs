//! Apps: the directory of apps and their credentials (static configuration and registry alike), and
//! the app registry's settings. The registry document itself is merged into a compiled configuration
//! by `config::app_registry`, above this folder.

pub(crate) mod directory;
pub(crate) mod settings;
