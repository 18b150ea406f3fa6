//! Reading a JSON settings document: the `Validator` walks it with typed field access and records
//! every problem with its JSON path (`Problem`) instead of stopping at the first. Below every folder
//! that parses settings (apps, plugins, cluster, config), so each parses its own.

pub(crate) mod validator;
