//! A refusal: the row of Aliyun's error table, the rendered message, and what logs and stats need.

use crate::contract::errors::ErrorCode;
use std::borrow::Cow;

/// Why a request is refused: its table row, the rendered (header-safe) message, and for logs the app
/// if one was identified and a short cause. Nothing here holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub error: &'static ErrorCode,
    pub message: String,
    pub app: Option<crate::ids::AppId>,
    pub cause: &'static str,
    /// Response headers beyond the error contract (`Retry-After`, `RateLimit-*`, …).
    pub headers: Vec<(Cow<'static, str>, String)>,
    /// The trafficControl plugin and the dimension (`API`, `USER`, `APP`) that throttled the request, for stats.
    pub throttled: Option<(u32, Dim)>,
    /// A status and a body replacing the table's status and the JSON body (accessControl's own).
    pub status: Option<u16>,
    pub body: Option<String>,
}

impl Refusal {
    pub fn new(error: &'static ErrorCode, args: &[&str], cause: &'static str) -> Self {
        Refusal { error, message: error.render(args), app: None, cause, headers: Vec::new(), throttled: None, status: None, body: None }
    }
    pub fn app(mut self, app: crate::ids::AppId) -> Self {
        self.app = Some(app);
        self
    }
}

/// A dimension of a rate limit (trafficControl): the API, the app's owner (user), or the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dim {
    Api,
    User,
    App,
}

impl Dim {
    pub fn as_str(self) -> &'static str {
        match self {
            Dim::Api => "API",
            Dim::User => "USER",
            Dim::App => "APP",
        }
    }
}
