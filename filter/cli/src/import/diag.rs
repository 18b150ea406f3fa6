//! What the importer has to say, each line with the path in the Swagger document it concerns
//! (`paths./orders/{orderId}.get.x-aliyun-apigateway-backend: …`): errors (nothing is written),
//! warnings (something Aliyun does that cagate will not), and notes (a choice the importer made).

use std::fmt::Display;

#[derive(Debug, Default)]
pub(crate) struct Diags {
    pub(crate) errors: Vec<String>,
    pub(crate) warnings: Vec<String>,
    pub(crate) notes: Vec<String>,
}

fn line(path: &str, msg: impl Display) -> String {
    if path.is_empty() {
        msg.to_string()
    } else {
        format!("{path}: {msg}")
    }
}

impl Diags {
    pub(crate) fn error(&mut self, path: &str, msg: impl Display) {
        self.errors.push(line(path, msg));
    }

    pub(crate) fn warn(&mut self, path: &str, msg: impl Display) {
        self.warnings.push(line(path, msg));
    }

    pub(crate) fn note(&mut self, path: &str, msg: impl Display) {
        self.notes.push(line(path, msg));
    }

    /// Every diagnostic on standard error, errors first.
    pub(crate) fn print(&self) {
        for e in &self.errors {
            eprintln!("error: {e}");
        }
        for w in &self.warnings {
            eprintln!("warning: {w}");
        }
        for n in &self.notes {
            eprintln!("note: {n}");
        }
    }
}

/// `path.key`, or `key` at the top.
pub(crate) fn at(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}
