//! The one shape every Aliyun plugin's configuration parser has.

use crate::schema::validator::Validator;
use serde_json::Value;

/// What a plugin's parser knows besides its data: the plugin's name, the JSON path of its data (for
/// problems), and the apps of the configuration (ipControl's items name apps).
pub(crate) struct Definition<'a> {
    pub(crate) name: &'a str,
    pub(crate) path: &'a str,
    pub(crate) app_ids: &'a [&'a str],
}

/// An Aliyun plugin type: its type name and its validated configuration, parsed once at load time.
pub(crate) trait AliyunPlugin: Sized {
    /// Aliyun's name of the type (`jwtAuth`, `trafficControl`, …).
    const TYPE: &'static str;
    /// Parses and validates the plugin's data, reporting every problem to `c` with its path.
    fn parse(c: &mut Validator, data: &Value, def: &Definition<'_>) -> Option<Self>;
}
