//! Routing: method + path + stage to an API. A segment trie, so that a lookup walks the request's
//! segments and never the list of APIs: its cost does not grow with the configuration.

use std::collections::HashMap;

/// An API path template compiled into segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(Box<[u8]>),
    Param(Box<str>),
    /// A final `*`: any rest, including none.
    Rest,
}

/// Parses an Aliyun path template (`/orders/[orderId]/*`). Errors are messages for the config checker.
pub(crate) fn parse_template(path: &str) -> Result<Vec<Segment>, String> {
    let Some(body) = path.strip_prefix('/') else {
        return Err("must start with '/'".into());
    };
    if path.contains(['?', '#']) {
        return Err("must not contain '?' or '#'".into());
    }
    let raw: Vec<&str> = body.split('/').collect();
    let mut out = Vec::with_capacity(raw.len());
    let mut names: Vec<&str> = Vec::new();
    for (i, seg) in raw.iter().enumerate() {
        if *seg == "*" {
            if i + 1 != raw.len() {
                return Err("'*' is allowed only as the last segment ('/*')".into());
            }
            out.push(Segment::Rest);
        } else if let Some(name) = seg.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)) {
                return Err(format!("bad path parameter '[{name}]': a name of letters, digits, '_', '-' or '.'"));
            }
            if names.contains(&name) {
                return Err(format!("path parameter '[{name}]' appears twice"));
            }
            names.push(name);
            out.push(Segment::Param(name.into()));
        } else if seg.contains(['[', ']', '*']) {
            return Err(format!("segment '{seg}': '[', ']' and '*' only as a whole '[param]' or a final '*'"));
        } else {
            out.push(Segment::Literal(seg.as_bytes().into()));
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
    Patch,
    Head,
    Options,
    Any,
}

impl Method {
    pub fn parse(s: &str) -> Option<Method> {
        Some(match s {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            "HEAD" => Method::Head,
            "OPTIONS" => Method::Options,
            "ANY" => Method::Any,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
            Method::Any => "ANY",
        }
    }

    fn matches(self, request: &[u8]) -> bool {
        self == Method::Any || self.as_str().as_bytes() == request
    }
}

#[derive(Debug, Clone, Copy)]
struct Route {
    api: u32,
    method: Method,
    /// Bit i set: published in stage i.
    stages: u64,
}

#[derive(Debug, Default, Clone)]
struct Node {
    literal: HashMap<Box<[u8]>, Node>,
    param: Option<Box<Node>>,
    end: Vec<Route>,
    rest: Vec<Route>,
}

/// The compiled routing table: the templates as written, and the same with their literal segments in
/// lower case, which is how a lenient backend (Express, ASP.NET) reads a path.
#[derive(Debug, Default, Clone)]
pub(crate) struct Router {
    root: Node,
    folded: Node,
    /// A template has a capital letter: any request may then be a lenient spelling of it.
    capitals: bool,
}

/// Ranks candidates: more literal segments, then a complete match over a `/*` rest, then the preferred
/// API (among equals the API routed is as good a reading as any), then an exact method over `ANY`,
/// then the earlier API.
type Score = (u32, bool, bool, bool, std::cmp::Reverse<u32>);

/// What a lookup matches: the request's method and API ranking, and, for the backend's reading, GET's
/// routes for a HEAD (frameworks answer HEAD with the GET handler) and an API to prefer among equals.
#[derive(Clone, Copy)]
struct Query<'m> {
    method: &'m [u8],
    head_as_get: bool,
    bit: u64,
    prefer: Option<u32>,
}

impl Router {
    pub(crate) fn insert(&mut self, template: &[Segment], api: u32, method: Method, stages: u64) {
        let route = Route { api, method, stages };
        self.capitals |= template.iter().any(|s| matches!(s, Segment::Literal(l) if l.iter().any(u8::is_ascii_uppercase)));
        insert(&mut self.root, template, route, false);
        insert(&mut self.folded, template, route, true);
    }

    /// The API for a method, a (percent-decoded) path and a stage index, if any.
    pub(crate) fn lookup(&self, method: &[u8], path: &[u8], stage: u32) -> Option<u32> {
        let bit = 1u64.checked_shl(stage)?;
        best(&self.root, Some(path.strip_prefix(b"/")?), Query { method, head_as_get: false, bit, prefer: None })
    }

    /// The API a lenient backend would serve for a path the gateway routed to `routed`: literal
    /// segments compared without case, `;` path parameters dropped, empty segments (`//`, a trailing
    /// `/`) ignored, HEAD served by GET. `None` when the path needs no such reading (no capital letter,
    /// `;` or empty segment in it, none in a template, not HEAD) or no API fits it.
    pub(crate) fn lookup_as_backend(&self, method: &[u8], path: &[u8], stage: u32, routed: u32) -> Option<u32> {
        let head = method == b"HEAD";
        if !head && !self.capitals && !needs_lenient_reading(path) {
            return None;
        }
        let bit = 1u64.checked_shl(stage)?;
        let mut canonical = Vec::with_capacity(path.len());
        for seg in path.split(|&b| b == b'/') {
            let seg = seg.split(|&b| b == b';').next().unwrap_or_default();
            if !seg.is_empty() {
                canonical.push(b'/');
                canonical.extend(seg.iter().map(u8::to_ascii_lowercase));
            }
        }
        // The folded templates have no empty segments either: `/` is the root's own routes.
        best(&self.folded, canonical.get(1..).filter(|r| !r.is_empty()), Query { method, head_as_get: head, bit, prefer: Some(routed) })
    }
}

/// A capital letter, a `;`, or an empty segment (`//`, a trailing `/`): spellings backends differ on.
fn needs_lenient_reading(path: &[u8]) -> bool {
    let mut after_slash = false;
    for &b in path {
        if b.is_ascii_uppercase() || b == b';' || (b == b'/' && after_slash) {
            return true;
        }
        after_slash = b == b'/';
    }
    after_slash && path.len() > 1
}

fn insert(mut node: &mut Node, template: &[Segment], route: Route, fold: bool) {
    for seg in template {
        match seg {
            Segment::Literal(l) if fold && l.is_empty() => {}
            Segment::Literal(l) if fold => node = node.literal.entry(l.to_ascii_lowercase().into()).or_default(),
            Segment::Literal(l) => node = node.literal.entry(l.clone()).or_default(),
            Segment::Param(_) => node = node.param.get_or_insert_with(Default::default),
            Segment::Rest => {
                node.rest.push(route);
                return;
            }
        }
    }
    node.end.push(route);
}

/// The best API for the path after its leading `/` (`None`: nothing after it, in the folded tree).
fn best(root: &Node, rest: Option<&[u8]>, q: Query<'_>) -> Option<u32> {
    let mut best: Option<Score> = None;
    walk(root, rest, 0, q, &mut best);
    best.map(|s| s.4 .0)
}

fn consider(routes: &[Route], literals: u32, complete: bool, q: Query<'_>, best: &mut Option<Score>) {
    for r in routes {
        if r.stages & q.bit == 0 || !(r.method.matches(q.method) || (q.head_as_get && r.method == Method::Get)) {
            continue;
        }
        let score = (literals, complete, q.prefer == Some(r.api), r.method != Method::Any, std::cmp::Reverse(r.api));
        if best.is_none_or(|b| score > b) {
            *best = Some(score);
        }
    }
}

fn walk(node: &Node, rest: Option<&[u8]>, literals: u32, q: Query<'_>, best: &mut Option<Score>) {
    consider(&node.rest, literals, false, q, best);
    let Some(rest) = rest else {
        consider(&node.end, literals, true, q, best);
        return;
    };
    let (seg, next) = match rest.iter().position(|&b| b == b'/') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    if let Some(child) = node.literal.get(seg) {
        walk(child, next, literals + 1, q, best);
    }
    if let Some(child) = &node.param {
        if !seg.is_empty() {
            walk(child, next, literals, q, best);
        }
    }
}

/// Path parameters of a matched template: (name, value) pairs, values borrowed from the path.
pub(crate) fn path_params<'p, 't>(template: &'t [Segment], path: &'p [u8]) -> Vec<(&'t str, &'p [u8])> {
    let mut out = Vec::new();
    let Some(rest) = path.strip_prefix(b"/") else { return out };
    for (seg, value) in template.iter().zip(rest.split(|&b| b == b'/')) {
        if let Segment::Param(name) = seg {
            out.push((&**name, value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(defs: &[(&str, &str, u64)]) -> Router {
        let mut r = Router::default();
        for (i, (m, p, st)) in defs.iter().enumerate() {
            r.insert(&parse_template(p).unwrap(), i as u32, Method::parse(m).unwrap(), *st);
        }
        r
    }

    #[test]
    fn templates_validate() {
        assert!(parse_template("/a/[id]/*").is_ok());
        assert!(parse_template("/*").is_ok());
        assert!(parse_template("/").is_ok());
        for bad in ["a", "/a/*/b", "/a/[]", "/a/[x]/[x]", "/a/b*", "/a?x", "/[a b]"] {
            assert!(parse_template(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn most_literal_segments_win_then_method() {
        let r = router(&[
            ("ANY", "/*", 1),
            ("GET", "/orders/[id]", 1),
            ("GET", "/orders/latest", 1),
            ("ANY", "/orders/latest", 1),
            ("POST", "/orders/*", 1),
            ("GET", "/", 1),
        ]);
        assert_eq!(r.lookup(b"GET", b"/orders/latest", 0), Some(2));
        assert_eq!(r.lookup(b"PUT", b"/orders/latest", 0), Some(3));
        assert_eq!(r.lookup(b"GET", b"/orders/17", 0), Some(1));
        assert_eq!(r.lookup(b"POST", b"/orders/17/x", 0), Some(4));
        assert_eq!(r.lookup(b"POST", b"/orders", 0), Some(4));
        assert_eq!(r.lookup(b"GET", b"/", 0), Some(5));
        assert_eq!(r.lookup(b"DELETE", b"/anything/else", 0), Some(0));
        assert_eq!(r.lookup(b"GET", b"no-slash", 0), None);
    }

    #[test]
    fn stage_and_method_filter() {
        let r = router(&[("GET", "/a", 0b10), ("POST", "/b/[x]", 0b01)]);
        assert_eq!(r.lookup(b"GET", b"/a", 0), None);
        assert_eq!(r.lookup(b"GET", b"/a", 1), Some(0));
        assert_eq!(r.lookup(b"GET", b"/b/1", 0), None);
        assert_eq!(r.lookup(b"POST", b"/b/1", 0), Some(1));
        assert_eq!(r.lookup(b"POST", b"/b/", 0), None, "a parameter needs a non-empty segment");
        assert_eq!(r.lookup(b"POST", b"/b/1", 64), None);
    }

    #[test]
    fn which_paths_need_the_lenient_reading() {
        for p in ["/a/B", "/a;x", "/a//b", "/a/", "//"] {
            assert!(needs_lenient_reading(p.as_bytes()), "{p}");
        }
        for p in ["/", "/a/b", "/a-b/c.d", "/%41"] {
            assert!(!needs_lenient_reading(p.as_bytes()), "{p}");
        }
    }

    #[test]
    fn extracts_params() {
        let t = parse_template("/u/[user]/o/[order]").unwrap();
        assert_eq!(path_params(&t, b"/u/7/o/x9"), vec![("user", &b"7"[..]), ("order", &b"x9"[..])]);
    }
}
