//! A refusal: the row of Aliyun's error table, the rendered message, and what logs and stats need.

use crate::contract::errors::{classic, Classic, ErrorCode};
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
    /// A status and a body replacing the table's status and the JSON body (accessControl's own):
    /// rare, so boxed.
    pub own: Option<Box<OwnReply>>,
    /// The classic-network row, where the request says more than the code (an empty signature, a
    /// malformed timestamp); else the code's own.
    pub classic: Option<&'static Classic>,
    /// The one value of a classic message that takes one (`%s`): the first argument of the code's
    /// template (the StringToSign, a JWT's `kid`). Empty (no allocation) otherwise.
    pub classic_arg: Box<str>,
}

/// A plugin's own answer for its refusal: its status, and its body in place of the JSON one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnReply {
    pub status: u16,
    pub body: Option<String>,
}

impl Refusal {
    pub fn new(error: &'static ErrorCode, args: &[&str], cause: &'static str) -> Self {
        let classic_arg = match args.first() {
            Some(a) if error.classic.takes_arg() => Box::from(*a),
            _ => Box::default(),
        };
        Refusal { error, message: error.render(args), app: None, cause, headers: Vec::new(), throttled: None, own: None, classic: None, classic_arg }
    }
    /// The classic-network row this refusal answers with.
    pub fn classic(mut self, row: &'static Classic) -> Self {
        self.classic = Some(row);
        self
    }
    /// The classic row: an explicit one, the throttled dimension's, else the code's.
    pub fn classic_row(&self) -> &'static Classic {
        match (self.classic, self.throttled) {
            (Some(row), _) => row,
            (None, Some((_, Dim::User))) => &classic::THROTTLED_USER,
            (None, Some((_, Dim::App))) => &classic::THROTTLED_APP,
            (None, Some((_, Dim::Api))) => &classic::THROTTLED_API,
            (None, None) => self.error.classic,
        }
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
