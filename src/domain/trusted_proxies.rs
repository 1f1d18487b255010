//! The reverse proxies whose `X-Forwarded-For` is believed (`[web]
//! trusted_proxies`), and the client address a request is recorded and
//! rate-limited under. Only the pure rule lives here; reading the header
//! and the TCP peer is the web layer's.
//!
//! The rule is the usual one: a request from a trusted proxy is attributed to
//! the right-most address of its `X-Forwarded-For` that is not itself a
//! trusted proxy. Everything left of that is whatever the client chose to
//! send and is never believed — otherwise anyone could pick the address the
//! `/links` limits count.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// Networks of trusted reverse proxies; empty (the default) trusts none,
/// and every request is its TCP peer's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is neither an IP address nor a network such as 10.0.0.0/8 or fd00::/8")]
pub struct InvalidProxy(String);

impl TrustedProxies {
    /// Each entry an address (`127.0.0.1`, `::1`) or a network in CIDR
    /// notation (`10.0.0.0/8`).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, InvalidProxy> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.as_ref().trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| InvalidProxy(entry.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request whose TCP peer is `peer` and whose
    /// `X-Forwarded-For` headers are `forwarded_for` (in the order they
    /// came; each a comma-separated list, the nearest hop last).
    pub fn client_of<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> IpAddr {
        // A dual-stack listener shows IPv4 peers as ::ffff:a.b.c.d.
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        let hops: Vec<&str> = forwarded_for
            .into_iter()
            .flat_map(|header| header.split(','))
            .map(str::trim)
            .filter(|hop| !hop.is_empty())
            .collect();
        for hop in hops.iter().rev() {
            match parse_hop(hop) {
                Some(ip) if self.trusts(ip) => client = ip,
                Some(ip) => return ip,
                // A hop that is no address ("unknown", garbage): nothing
                // left of it can be attributed, so the request stays with
                // the trusted proxy that passed it on.
                None => return client,
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, with or without a port
/// (`192.0.2.1`, `192.0.2.1:5000`, `2001:db8::1`, `[2001:db8::1]:5000`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(entries).unwrap()
    }

    #[test]
    fn addresses_and_networks_parse_and_anything_else_is_named() {
        let p = proxies(&["127.0.0.1", " 10.0.0.0/8 ", "fd00::/8", "::1"]);
        assert_eq!(p.0.len(), 4);
        assert!(p.trusts(ip("10.200.3.4")));
        assert!(p.trusts(ip("fd12::7")));
        assert!(!p.trusts(ip("11.0.0.1")));
        // Host bits set: the network they belong to.
        assert!(proxies(&["192.168.1.77/24"]).trusts(ip("192.168.1.3")));
        for bad in ["localhost", "10.0.0.0/33", "", "1.2.3.4/8/8"] {
            assert_eq!(
                TrustedProxies::parse(&[bad]),
                Err(InvalidProxy(bad.to_string())),
                "{bad}"
            );
        }
        assert!(TrustedProxies::parse::<&str>(&[]).unwrap().is_empty());
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_of(ip("127.0.0.1"), ["203.0.113.9"]),
            ip("127.0.0.1")
        );
        let p = proxies(&["127.0.0.1"]);
        // A peer that is not a trusted proxy cannot forward for anyone.
        assert_eq!(
            p.client_of(ip("198.51.100.4"), ["203.0.113.9"]),
            ip("198.51.100.4")
        );
    }

    #[test]
    fn a_trusted_proxy_forwards_for_the_nearest_untrusted_hop() {
        let p = proxies(&["127.0.0.1", "10.0.0.0/8"]);
        assert_eq!(
            p.client_of(ip("127.0.0.1"), ["203.0.113.9"]),
            ip("203.0.113.9")
        );
        // A chain of trusted proxies is walked back; what the client put
        // left of its own address is not believed.
        assert_eq!(
            p.client_of(
                ip("127.0.0.1"),
                ["1.1.1.1, 203.0.113.9, 10.1.2.3", "10.0.0.5"]
            ),
            ip("203.0.113.9")
        );
        // Ports and brackets, IPv6, and the IPv4-mapped peer of a dual-stack
        // listener.
        assert_eq!(
            p.client_of(ip("::ffff:127.0.0.1"), ["[2001:db8::7]:443"]),
            ip("2001:db8::7")
        );
        assert_eq!(
            p.client_of(ip("127.0.0.1"), ["203.0.113.9:5123"]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn a_request_stays_with_the_proxy_when_the_header_says_nothing_usable() {
        let p = proxies(&["127.0.0.1", "10.0.0.0/8"]);
        let none: [&str; 0] = [];
        assert_eq!(p.client_of(ip("127.0.0.1"), none), ip("127.0.0.1"));
        assert_eq!(p.client_of(ip("127.0.0.1"), [" , "]), ip("127.0.0.1"));
        assert_eq!(
            p.client_of(ip("127.0.0.1"), ["203.0.113.9, unknown, 10.0.0.9"]),
            ip("10.0.0.9")
        );
        // Only trusted hops: the farthest of them.
        assert_eq!(
            p.client_of(ip("127.0.0.1"), ["10.0.0.1, 10.0.0.2"]),
            ip("10.0.0.1")
        );
    }
}
