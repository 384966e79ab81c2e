//! The client's address: `trusted_proxies` entries (an address or CIDR block) and the
//! address a request comes from behind them (`X-Forwarded-For`), which the gateway's limits
//! key on. Anyone may send any `X-Forwarded-For`: only the entries our own proxies added count.

use std::net::IpAddr;

use http::HeaderMap;

/// An address or CIDR block, for `trusted_proxies`.
#[derive(Debug, Clone, Copy)]
pub struct IpRange {
    net: IpAddr,
    prefix: u8,
}

impl IpRange {
    pub fn parse(s: &str) -> Option<Self> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { net: addr, prefix })
    }

    /// Whether `ip` is in the range. An IPv4 address and its IPv4-mapped IPv6 form
    /// (`::ffff:a.b.c.d`) are one address: a v4 range holds the mapped form, a v6 range
    /// written over mapped addresses (`::ffff:10.0.0.0/104`) holds the v4 one.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), a) => {
                let a = match a {
                    IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                    IpAddr::V6(v6) => v6,
                };
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            (IpAddr::V4(_), IpAddr::V6(_)) => false,
        }
    }
}

/// The client's address: the right-most `X-Forwarded-For` entry that is not itself a trusted
/// proxy, when the direct peer is trusted; otherwise the peer.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpRange]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|r| r.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    // Right to left: the last header's last entry first (read in place; this runs on every
    // request the edge guards).
    headers
        .get_all("x-forwarded-for")
        .iter()
        .rev()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.rsplit(','))
        .filter_map(|s| s.trim().parse().ok())
        .find(|ip| !is_trusted(*ip))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_most_untrusted_forwarded_entry_wins() {
        let trusted = vec![
            IpRange::parse("127.0.0.0/8").unwrap(),
            IpRange::parse("10.0.0.0/8").unwrap(),
        ];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "6.6.6.6, 1.2.3.4, 10.1.1.1".parse().unwrap(),
        );
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(
            client_ip(peer, &h, &trusted),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        // Several headers read as one list, in order; entries that are not addresses are
        // skipped; all trusted means the peer.
        let mut several = HeaderMap::new();
        several.append("x-forwarded-for", "6.6.6.6, 5.5.5.5".parse().unwrap());
        several.append("x-forwarded-for", "junk, 10.2.2.2".parse().unwrap());
        assert_eq!(
            client_ip(peer, &several, &trusted),
            "5.5.5.5".parse::<IpAddr>().unwrap()
        );
        let mut inside = HeaderMap::new();
        inside.insert("x-forwarded-for", "10.3.3.3".parse().unwrap());
        assert_eq!(client_ip(peer, &inside, &trusted), peer);
        let stranger: IpAddr = "8.8.8.8".parse().unwrap();
        assert_eq!(client_ip(stranger, &h, &trusted), stranger);
    }

    #[test]
    fn parses_ranges() {
        assert!(
            IpRange::parse("::1")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert!(
            !IpRange::parse("10.0.0.0/8")
                .unwrap()
                .contains("11.0.0.1".parse().unwrap())
        );
        assert!(IpRange::parse("10.0.0.0/33").is_none());
        // Found by the fuzz target: a range of IPv4-mapped addresses held nothing (every
        // address is compared in its v4 form), so a proxy listed that way was never trusted.
        let mapped = IpRange::parse("::ffff:10.0.0.0/104").unwrap();
        assert!(mapped.contains("10.1.2.3".parse().unwrap()));
        assert!(mapped.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!mapped.contains("11.0.0.1".parse().unwrap()));
        assert!(
            IpRange::parse("10.0.0.0/8")
                .unwrap()
                .contains("::ffff:10.9.9.9".parse().unwrap())
        );
        assert!(
            IpRange::parse("::/0")
                .unwrap()
                .contains("10.0.0.1".parse().unwrap())
        );
        assert!(IpRange::parse("nope").is_none());
    }
}
