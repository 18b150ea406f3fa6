//! Aliyun's ipControl plugin: ALLOW (whitelist) or REFUSE (blacklist) of IPv4/IPv6 addresses and
//! CIDR blocks, per app or for everyone, the client address taken from the connection or from an
//! `X-Forwarded-For` entry. An item's blocks may come from a plugin dataset (`blocksDatasetId`,
//! looked up per request, so the app registry can change them).

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
    pub items: Vec<Item>,
}

/// One item: the app it is restricted to, its own blocks, and a dataset of more (id, field path).
#[derive(Debug, Clone)]
pub struct Item {
    pub app: Option<String>,
    pub blocks: Vec<Block>,
    pub dataset: Option<(String, String)>,
}

impl IpConfig {
    /// The datasets the items read, with the path of the field naming each.
    pub(crate) fn dataset_refs(&self) -> Vec<(&str, &str)> {
        self.items.iter().filter_map(|i| i.dataset.as_ref()).map(|(id, path)| (id.as_str(), path.as_str())).collect()
    }
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
            let Some(io) = c.object(v, &ip, &["blocks", "appId", "blocksDatasetId"]) else { continue };
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
            let dataset = c.id(io, &ip, "blocksDatasetId", false).map(|id| (id, join(&ip, "blocksDatasetId")));
            if blocks.is_empty() && dataset.is_none() {
                c.err(&join(&ip, "blocks"), "needs at least one address or block (or blocksDatasetId)");
            }
            items.push(Item { app, blocks, dataset });
        }
        Some(IpConfig { allow, source, items })
    }
}

/// The client address: the peer (`ip:port` or `[v6]:port` as Envoy reports it), or an
/// `X-Forwarded-For` entry. `None` if it cannot be established.
pub(crate) fn client_ip(source: Source, peer: Option<&[u8]>, xff: Option<&[u8]>) -> Option<IpAddr> {
    match source {
        Source::Peer => address(peer?),
        Source::Xff(n) => {
            let entries: Vec<&[u8]> = xff?.split(|&b| b == b',').map(trim).collect();
            let idx = if n >= 0 { n as usize } else { entries.len().checked_sub(n.unsigned_abs() as usize)? };
            address(entries.get(idx)?)
        }
    }
}

/// An address as proxies write it: `192.0.2.1`, `2001:db8::1`, with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`), or an IPv6 address in brackets alone (`[2001:db8::1]`).
fn address(text: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(text).ok()?;
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<std::net::SocketAddr>().map(|a| a.ip()).ok())
        .or_else(|| s.strip_prefix('[')?.strip_suffix(']')?.parse::<IpAddr>().ok())
}

/// ALLOW: an app with items of its own is admitted only from its own blocks (Aliyun: the app may call
/// only from the listed addresses); any other caller from a block of an item without `appId`.
/// REFUSE: refused if the address is in any block. An address that cannot be established is refused.
/// `in_dataset(id, key)`: whether the address is in a live entry of dataset `id`.
pub(crate) fn allowed(cfg: &IpConfig, ip: Option<IpAddr>, app_id: Option<&str>, in_dataset: &dyn Fn(&str, u128) -> bool) -> bool {
    let Some(ip) = ip else { return false };
    let key = ip_key(ip);
    let hit = |item: &Item| item.blocks.iter().any(|b| b.contains(key)) || item.dataset.as_ref().is_some_and(|(id, _)| in_dataset(id, key));
    if !cfg.allow {
        return !cfg.items.iter().any(hit);
    }
    let restricted = app_id.is_some() && cfg.items.iter().any(|i| i.app.as_deref() == app_id);
    cfg.items.iter().any(|i| {
        let applies = if restricted { i.app.as_deref() == app_id } else { i.app.is_none() };
        applies && hit(i)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(allow: bool, items: &[(Option<&str>, &[&str])]) -> IpConfig {
        IpConfig {
            allow,
            source: Source::Peer,
            items: items
                .iter()
                .map(|(a, bs)| Item { app: a.map(str::to_string), blocks: bs.iter().map(|b| Block::parse(b).unwrap()).collect(), dataset: None })
                .collect(),
        }
    }

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    /// Without datasets.
    fn allowed(cfg: &IpConfig, ip: Option<IpAddr>, app_id: Option<&str>) -> bool {
        super::allowed(cfg, ip, app_id, &|_, _| false)
    }

    #[test]
    fn dataset_items() {
        let mut c = cfg(true, &[(Some("10001"), &[])]);
        c.items[0].dataset = Some(("ds".into(), "p".into()));
        let in_ds = |id: &str, key: u128| id == "ds" && Block::parse("198.51.100.0/24").unwrap().contains(key);
        assert!(super::allowed(&c, ip("198.51.100.7"), Some("10001"), &in_ds));
        assert!(!super::allowed(&c, ip("198.51.100.7"), Some("10001"), &|_, _| false), "entry gone (expired, replaced)");
        assert!(!super::allowed(&c, ip("203.0.113.1"), Some("10001"), &in_ds));
        c.allow = false;
        c.items[0].app = None;
        assert!(!super::allowed(&c, ip("198.51.100.7"), None, &in_ds), "REFUSE reads the dataset too");
        assert!(super::allowed(&c, ip("203.0.113.1"), None, &in_ds));
        assert_eq!(c.dataset_refs(), vec![("ds", "p")]);
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
        // Entries as some proxies write them: with a port, an IPv6 address in brackets.
        let xff = Some(&b"198.51.100.7:1234, [2001:db8::1], [2001:db8::2]:443, ::ffff:10.1.2.3"[..]);
        assert_eq!(client_ip(Source::Xff(0), None, xff), ip("198.51.100.7"));
        assert_eq!(client_ip(Source::Xff(1), None, xff), ip("2001:db8::1"));
        assert_eq!(client_ip(Source::Xff(2), None, xff), ip("2001:db8::2"));
        assert_eq!(client_ip(Source::Xff(3), None, xff), ip("::ffff:10.1.2.3"));
        assert_eq!(client_ip(Source::Xff(0), None, Some(b"[198.51.100.7]x")), None);
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
