//! Bytes on the wire: header maps, URLs and form bodies, header-safe text, time formats. Leaf modules:
//! they know nothing of the gateway.

pub mod headers;
pub(crate) mod text;
pub(crate) mod time;
pub(crate) mod url;
