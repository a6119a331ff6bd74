//! Who the client is: the socket's peer address, or, when the peer is one of the configured
//! `web.trusted_proxies` (a load balancer, a reverse proxy), the address that proxy reports in
//! `X-Forwarded-For` or `Forwarded` (RFC 7239), whichever `web.client_ip_header` names.
//!
//! The header is read from the right: each trusted proxy appends the address it received the
//! request from, so the rightmost address that is not a trusted proxy is the client. Anything
//! to the left of it was written by the client and is ignored (prepending fake addresses does
//! not change the answer). A peer that is not a trusted proxy is the client, whatever headers
//! it sends. Only one header is believed: a proxy that maintains one of them passes the other
//! through from the client untouched.

use std::net::{IpAddr, Ipv6Addr};

use axum::http::HeaderMap;
use serde::Deserialize;

/// An address block (`10.0.0.0/8`, `2001:db8::/32`, or one address), for configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl TryFrom<String> for Cidr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not an address block like 10.0.0.0/8 or 2001:db8::/32");
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let net: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        let canon = canonical(net);
        // An IPv4-mapped IPv6 block (::ffff:a.b.c.d/n) is the IPv4 block it maps.
        let prefix = if net.is_ipv6() && canon.is_ipv4() {
            prefix.checked_sub(96).ok_or_else(bad)?
        } else {
            prefix
        };
        Ok(Cidr { net: canon, prefix })
    }
}

impl Cidr {
    /// Whether `ip` is in this block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a dual-stack socket reports) as the
/// IPv4 address it is.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// Say once per process, as a warning, that a request carried a forwarding header from a peer
/// that is not a trusted proxy (the header is ignored, as it must be): behind a load balancer
/// or proxy that `web.trusted_proxies` does not name, every client is that one address, and
/// the per-client limits (the app API's, the customer login's) hold them all back together.
/// A client may send the header itself, so this is a hint, said once; the header's content is
/// not logged.
pub fn note_untrusted_forwarding(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) {
    static SAID: std::sync::Once = std::sync::Once::new();
    if SAID.is_completed()
        || trusted.iter().any(|c| c.contains(peer))
        || !(headers.contains_key("x-forwarded-for") || headers.contains_key("forwarded"))
    {
        return;
    }
    SAID.call_once(|| {
        tracing::warn!(
            peer = %canonical(peer),
            "a request carried X-Forwarded-For or Forwarded from a peer that is not in web.trusted_proxies, so the header was ignored; if this server is behind a load balancer or proxy, name it in web.trusted_proxies, or every client behind it counts as one for the per-client limits"
        );
    });
}

/// Which forwarding header the trusted proxies write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`.
    #[default]
    XForwardedFor,
    /// `Forwarded: for=client, for="[2001:db8::1]:4711"` (RFC 7239).
    Forwarded,
}

/// The client's address for a request from `peer` with `headers`.
pub fn resolve(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[Cidr],
    which: ForwardedHeader,
) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let name = match which {
        ForwardedHeader::XForwardedFor => "x-forwarded-for",
        ForwardedHeader::Forwarded => "forwarded",
    };
    // Every line of the header, in order, as one list of hops (RFC 7230 §3.2.2).
    let hops: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let parsed = match which {
            ForwardedHeader::XForwardedFor => parse_node(hop),
            ForwardedHeader::Forwarded => forwarded_for(hop).and_then(parse_node),
        };
        // An unreadable hop (`unknown`, an obfuscated name, garbage): nothing to its left can
        // be believed, so the last address a trusted proxy vouched for stands.
        let Some(ip) = parsed.map(canonical) else {
            return client;
        };
        client = ip;
        if !is_trusted(ip) {
            return ip;
        }
    }
    client
}

/// The `for=` value of one `Forwarded` element.
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("for")
            .then(|| v.trim().trim_matches('"'))
    })
}

/// An address with an optional port: `192.0.2.1`, `192.0.2.1:80`, `2001:db8::1`,
/// `[2001:db8::1]:4711`.
fn parse_node(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest
            .split_once(']')?
            .0
            .parse::<Ipv6Addr>()
            .ok()
            .map(IpAddr::V6);
    }
    let (host, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The key a per-address rate limit counts under: the client's network
/// ([`crate::domain::throttle::client_network`]: an IPv4 address, or an IPv6 /64).
pub fn limit_key(ip: IpAddr) -> String {
    format!("ip:{}", crate::domain::throttle::client_network(ip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(name: &'static str, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(name, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn blocks_parse_and_match() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains(ip("10.200.1.1")) && !c.contains(ip("11.0.0.1")));
        assert!(
            c.contains(ip("::ffff:10.1.2.3")),
            "a mapped address is IPv4"
        );
        let one: Cidr = "192.0.2.7".parse().unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.1")) && !all.contains(ip("::1")));
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0.0/x", "::/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad} is refused");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let h = headers("x-forwarded-for", &["198.51.100.1"]);
        assert_eq!(
            resolve(
                ip("203.0.113.9"),
                &h,
                &cidrs(&["10.0.0.0/8"]),
                ForwardedHeader::XForwardedFor
            ),
            ip("203.0.113.9")
        );
        assert_eq!(
            resolve(ip("10.0.0.1"), &h, &[], ForwardedHeader::XForwardedFor),
            ip("10.0.0.1"),
            "no trusted proxies: headers are never believed"
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = cidrs(&["10.0.0.0/8"]);
        // The client prepended a fake address; two proxies appended theirs.
        let h = headers("x-forwarded-for", &["1.2.3.4, 203.0.113.5", "10.0.0.2"]);
        assert_eq!(
            resolve(ip("10.0.0.3"), &h, &trusted, ForwardedHeader::XForwardedFor),
            ip("203.0.113.5")
        );
        // Only proxies: the leftmost one.
        let h = headers("x-forwarded-for", &["10.0.0.9"]);
        assert_eq!(
            resolve(ip("10.0.0.3"), &h, &trusted, ForwardedHeader::XForwardedFor),
            ip("10.0.0.9")
        );
        // No header: the proxy itself.
        assert_eq!(
            resolve(
                ip("10.0.0.3"),
                &HeaderMap::new(),
                &trusted,
                ForwardedHeader::XForwardedFor
            ),
            ip("10.0.0.3")
        );
        // Garbage stops the walk at the last vouched-for address.
        let h = headers("x-forwarded-for", &["203.0.113.5, unknown"]);
        assert_eq!(
            resolve(ip("10.0.0.3"), &h, &trusted, ForwardedHeader::XForwardedFor),
            ip("10.0.0.3")
        );
        // With ports and IPv6.
        let h = headers("x-forwarded-for", &["[2001:db8::7]:4711"]);
        assert_eq!(
            resolve(ip("10.0.0.3"), &h, &trusted, ForwardedHeader::XForwardedFor),
            ip("2001:db8::7")
        );
    }

    #[test]
    fn forwarded_is_read_only_when_chosen() {
        let trusted = cidrs(&["10.0.0.0/8"]);
        let mut h = headers(
            "forwarded",
            &[r#"for=198.51.100.1, for="[2001:db8::1]:4711";proto=https, For=10.0.0.4"#],
        );
        h.append("x-forwarded-for", HeaderValue::from_static("192.0.2.200"));
        assert_eq!(
            resolve(ip("10.0.0.3"), &h, &trusted, ForwardedHeader::Forwarded),
            ip("2001:db8::1")
        );
        assert_eq!(
            resolve(ip("10.0.0.3"), &h, &trusted, ForwardedHeader::XForwardedFor),
            ip("192.0.2.200"),
            "the other header is the configured one here"
        );
    }

    #[test]
    fn ipv6_is_limited_per_64() {
        assert_eq!(
            limit_key(ip("2001:db8:1:2:aaaa::1")),
            limit_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        );
        assert_ne!(
            limit_key(ip("2001:db8:1:2::1")),
            limit_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(limit_key(ip("::ffff:192.0.2.1")), "ip:192.0.2.1");
        assert_eq!(limit_key(ip("2001:db8:1:2::9")), "ip:2001:db8:1:2::/64");
    }
}
