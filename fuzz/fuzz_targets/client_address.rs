//! The client's address behind the gateway's proxies (`marquee_parsers::client_address`):
//! any `trusted_proxies` entry parses or is refused without panicking, a range contains its
//! own address, and whatever `X-Forwarded-For` says, the address chosen is the peer or one of
//! the header's entries, and never a trusted one unless it is the peer.
#![no_main]

use std::net::IpAddr;

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use marquee_parsers::client_address::{IpRange, client_ip};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Line 1: trusted ranges (space separated); line 2: the peer; the rest: one
    // X-Forwarded-For header a line.
    let mut lines = text.split('\n');
    let trusted: Vec<IpRange> = lines
        .next()
        .unwrap_or_default()
        .split(' ')
        .filter_map(|r| {
            let range = IpRange::parse(r)?;
            if let Some(addr) = r.split('/').next().and_then(|a| a.parse::<IpAddr>().ok()) {
                assert!(range.contains(addr), "{r} does not contain its own address");
            }
            Some(range)
        })
        .collect();
    let peer: IpAddr = lines
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let mut headers = HeaderMap::new();
    let mut entries: Vec<IpAddr> = Vec::new();
    for line in lines {
        if let Ok(value) = HeaderValue::from_str(line) {
            entries.extend(
                line.split(',')
                    .filter_map(|s| s.trim().parse::<IpAddr>().ok()),
            );
            headers.append("x-forwarded-for", value);
        }
    }
    let client = client_ip(peer, &headers, &trusted);
    let is_trusted = |ip: IpAddr| trusted.iter().any(|r| r.contains(ip));
    if client != peer {
        assert!(is_trusted(peer), "an untrusted peer's header was believed");
        assert!(entries.contains(&client), "{client} is in no header");
        assert!(!is_trusted(client), "{client} is a trusted proxy");
    }
});
