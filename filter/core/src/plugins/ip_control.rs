//! Aliyun's ipControl plugin: ALLOW (whitelist) or REFUSE (blacklist) of IPv4/IPv6 addresses and
//! CIDR blocks, per app or for everyone, the client address taken from the connection or from an
//! `X-Forwarded-For` entry.

use crate::plugins::definition::{AliyunPlugin, Definition};
use crate::schema::validator::{join, Validator};
use crate::wire::url::trim;
use serde_json::Value;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// The address as IPv6 (IPv4 mapped), and the prefix length in that space.
    net: u128,
    prefix: u32,
}

impl Block {
    pub fn parse(s: &str) -> Option<Block> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u32>().ok()?)),
            None => (s, None),
        };
        let (net, prefix) = match addr.trim().parse::<IpAddr>().ok()? {
            IpAddr::V4(v4) => {
                let l = len.unwrap_or(32);
                if l > 32 {
                    return None;
                }
                (u128::from(v4.to_ipv6_mapped()), 96 + l)
            }
            IpAddr::V6(v6) => {
                let l = len.unwrap_or(128);
                if l > 128 {
                    return None;
                }
                (u128::from(v6), l)
            }
        };
        Some(Block { net: net & mask(prefix), prefix })
    }

    pub fn contains(&self, ip: u128) -> bool {
        ip & mask(self.prefix) == self.net
    }
}

fn mask(prefix: u32) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    }
}

/// An address as the blocks compare it (IPv4 mapped into IPv6).
pub(crate) fn ip_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(u128::from(v6), |v4| u128::from(v4.to_ipv6_mapped())),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Peer,
    /// `X-Forwarded-For` entry N: 0-based from the start, negative from the end (-1 is the last).
    Xff(i32),
}

#[derive(Debug, Clone)]
pub struct IpConfig {
    pub allow: bool,
    pub source: Source,
    /// (appId the item is restricted to, blocks)
    pub items: Vec<(Option<String>, Vec<Block>)>,
}

impl AliyunPlugin for IpConfig {
    const TYPE: &'static str = "ipControl";

    fn parse(c: &mut Validator, data: &Value, def: &Definition<'_>) -> Option<Self> {
        let (path, app_ids) = (def.path, def.app_ids);
        let o = c.object(data, path, &["type", "resource", "items"])?;
        let allow = match c.string(o, path, "type", true) {
            Some("ALLOW") => true,
            Some("REFUSE") => false,
            Some(other) => {
                c.err(&join(path, "type"), format!("unknown type {other}: ALLOW or REFUSE"));
                true
            }
            None => true,
        };
        let source = match c.string(o, path, "resource", false) {
            None => Source::Peer,
            Some(r) => match r.strip_prefix("XFF:").and_then(|n| n.parse::<i32>().ok()) {
                Some(n) => Source::Xff(n),
                None => {
                    c.err(&join(path, "resource"), "must be XFF:N (N an entry index, negative from the end)");
                    Source::Peer
                }
            },
        };
        let mut items = Vec::new();
        for (i, v) in c.array(o, path, "items").iter().enumerate() {
            let ip = format!("{path}.items[{i}]");
            let Some(io) = c.object(v, &ip, &["blocks", "appId"]) else { continue };
            let app = c.id(io, &ip, "appId", false);
            if let Some(a) = &app {
                if !allow {
                    c.err(&join(&ip, "appId"), "is not allowed with type REFUSE");
                } else if !app_ids.contains(&a.as_str()) {
                    c.err(&join(&ip, "appId"), format!("unknown app {a}"));
                }
            }
            let mut blocks = Vec::new();
            for (j, b) in c.strings(io, &ip, "blocks").unwrap_or_default().iter().enumerate() {
                match Block::parse(b) {
                    Some(block) => blocks.push(block),
                    None => c.err(&format!("{ip}.blocks[{j}]"), format!("{b} is not an IPv4 or IPv6 address or CIDR block")),
                }
            }
            if blocks.is_empty() {
                c.err(&join(&ip, "blocks"), "needs at least one address or block");
            }
            items.push((app, blocks));
        }
        Some(IpConfig { allow, source, items })
    }
}

/// The client address: the peer (`ip:port` or `[v6]:port` as Envoy reports it), or an
/// `X-Forwarded-For` entry. `None` if it cannot be established.
pub(crate) fn client_ip(source: Source, peer: Option<&[u8]>, xff: Option<&[u8]>) -> Option<IpAddr> {
    match source {
        Source::Peer => {
            let s = std::str::from_utf8(peer?).ok()?;
            s.parse::<std::net::SocketAddr>().map(|a| a.ip()).ok().or_else(|| s.parse::<IpAddr>().ok())
        }
        Source::Xff(n) => {
            let entries: Vec<&[u8]> = xff?.split(|&b| b == b',').map(trim).collect();
            let idx = if n >= 0 { n as usize } else { entries.len().checked_sub(n.unsigned_abs() as usize)? };
            std::str::from_utf8(entries.get(idx)?).ok()?.parse::<IpAddr>().ok()
        }
    }
}

/// ALLOW: an app with items of its own is admitted only from its own blocks (Aliyun: the app may call
/// only from the listed addresses); any other caller from a block of an item without `appId`.
/// REFUSE: refused if the address is in any block. An address that cannot be established is refused.
pub(crate) fn allowed(cfg: &IpConfig, ip: Option<IpAddr>, app_id: Option<&str>) -> bool {
    let Some(ip) = ip else { return false };
    let key = ip_key(ip);
    let in_blocks = |blocks: &Vec<Block>| blocks.iter().any(|b| b.contains(key));
    if !cfg.allow {
        return !cfg.items.iter().any(|(_, blocks)| in_blocks(blocks));
    }
    let restricted = app_id.is_some() && cfg.items.iter().any(|(app, _)| app.as_deref() == app_id);
    cfg.items.iter().any(|(app, blocks)| {
        let applies = if restricted { app.as_deref() == app_id } else { app.is_none() };
        applies && in_blocks(blocks)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(allow: bool, items: &[(Option<&str>, &[&str])]) -> IpConfig {
        IpConfig {
            allow,
            source: Source::Peer,
            items: items.iter().map(|(a, bs)| (a.map(str::to_string), bs.iter().map(|b| Block::parse(b).unwrap()).collect())).collect(),
        }
    }

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn cidr_v4_and_v6() {
        let b = Block::parse("61.3.0.0/24").unwrap();
        assert!(b.contains(ip_key(ip("61.3.0.255").unwrap())));
        assert!(!b.contains(ip_key(ip("61.3.1.0").unwrap())));
        assert!(b.contains(ip_key(ip("::ffff:61.3.0.7").unwrap())), "v4-mapped v6 is the same address");
        let b6 = Block::parse("2001:db8::/32").unwrap();
        assert!(b6.contains(ip_key(ip("2001:db8:ffff::1").unwrap())));
        assert!(!b6.contains(ip_key(ip("2001:db9::1").unwrap())));
        assert!(Block::parse("79.11.12.2").unwrap().contains(ip_key(ip("79.11.12.2").unwrap())));
        assert!(!Block::parse("79.11.12.2").unwrap().contains(ip_key(ip("79.11.12.3").unwrap())));
        assert!(Block::parse("0.0.0.0/0").unwrap().contains(ip_key(ip("8.8.8.8").unwrap())));
        assert!(!Block::parse("0.0.0.0/0").unwrap().contains(ip_key(ip("2001:db8::1").unwrap())));
        assert!(Block::parse("::/0").unwrap().contains(ip_key(ip("8.8.8.8").unwrap())));
        for bad in ["61.3.0.0/33", "2001:db8::/129", "61.3.0", "x", "1.2.3.4/-1", ""] {
            assert!(Block::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn xff_selection() {
        let xff = Some(&b"203.0.113.9, 10.0.0.1 ,198.51.100.7"[..]);
        assert_eq!(client_ip(Source::Xff(0), None, xff), ip("203.0.113.9"));
        assert_eq!(client_ip(Source::Xff(1), None, xff), ip("10.0.0.1"));
        assert_eq!(client_ip(Source::Xff(-1), None, xff), ip("198.51.100.7"));
        assert_eq!(client_ip(Source::Xff(-3), None, xff), ip("203.0.113.9"));
        assert_eq!(client_ip(Source::Xff(3), None, xff), None, "short header");
        assert_eq!(client_ip(Source::Xff(-4), None, xff), None);
        assert_eq!(client_ip(Source::Xff(0), None, None), None);
        assert_eq!(client_ip(Source::Xff(0), None, Some(b"not-an-ip, 1.2.3.4")), None, "malformed entry");
        assert_eq!(client_ip(Source::Xff(-1), None, Some(b"\xff\xfe")), None);
        assert_eq!(client_ip(Source::Peer, Some(b"127.0.0.1:5555"), None), ip("127.0.0.1"));
        assert_eq!(client_ip(Source::Peer, Some(b"[::1]:5555"), None), ip("::1"));
        assert_eq!(client_ip(Source::Peer, None, None), None);
    }

    #[test]
    fn allow_and_refuse() {
        let c = cfg(true, &[(None, &["10.0.0.0/8"]), (Some("10001"), &["192.0.2.1"])]);
        assert!(allowed(&c, ip("10.1.2.3"), None));
        assert!(allowed(&c, ip("10.1.2.3"), Some("10002")));
        assert!(allowed(&c, ip("192.0.2.1"), Some("10001")));
        assert!(!allowed(&c, ip("192.0.2.1"), Some("10002")), "another app's block");
        assert!(!allowed(&c, ip("192.0.2.1"), None));
        assert!(!allowed(&c, None, Some("10001")), "unknown address: refused");
        assert!(!allowed(&c, ip("10.1.2.3"), Some("10001")), "a restricted app is not admitted by a general item");
        let r = cfg(false, &[(None, &["2001:db8::/32", "79.11.12.2"])]);
        assert!(!allowed(&r, ip("2001:db8::5"), None));
        assert!(!allowed(&r, ip("79.11.12.2"), Some("x")));
        assert!(allowed(&r, ip("79.11.12.3"), None));
        assert!(!allowed(&r, None, None));
    }
}
