//! Keeps onion proxy layers away from the operator's own network (server-side request forgery):
//! a proxied request may only reach public unicast addresses. Host names are resolved by
//! [`PublicResolver`], which refuses the name if *any* address it resolves to is not public, and
//! the connection is made to exactly the addresses it checked, so a name that re-resolves to a
//! private address between check and connect (DNS rebinding) gains nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why a proxy target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("proxy target is not a public address")]
pub struct ForbiddenTarget;

/// Whether `ip` is a public unicast address a proxy layer may reach: not loopback, private
/// (RFC 1918, ULA `fc00::/7`), carrier-grade NAT (`100.64.0.0/10`), link-local, multicast,
/// broadcast, unspecified, "this network" (`0.0.0.0/8`), documentation, benchmarking or
/// reserved (`240.0.0.0/4`). IPv6 addresses that embed an IPv4 address (mapped, compatible,
/// NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by the embedded address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (b & 0xc0) == 64) // CGNAT 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments 192.0.0.0/24
        || (a == 198 && (b & 0xfe) == 18) // benchmarking 198.18.0.0/15
        || a >= 240) // reserved 240.0.0.0/4 (and broadcast)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    let o = ip.octets();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    // IPv4-compatible ::a.b.c.d (deprecated) and NAT64 64:ff9b::a.b.c.d carry an IPv4 address
    // in their last 32 bits, 6to4 2002:aabb:ccdd:: in bits 16..48.
    let last32 = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    if segments[..6] == [0; 6] && !ip.is_unspecified() && !ip.is_loopback() {
        return is_public_v4(last32);
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(last32);
    }
    if segments[0] == 0x2002 {
        return is_public_v4(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (segments[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (segments[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation 2001:db8::/32
        || (segments[0] == 0x0100 && segments[1..4] == [0, 0, 0])) // discard-only 100::/64
}

/// Refuses a URL whose host is an IP address that is not public. Host names are checked when
/// they are resolved, by [`PublicResolver`]. The host is read as the URL parser reads it, so
/// `127.1` or `0x7f000001` are seen as the loopback addresses they are.
pub fn check_url(url: &reqwest::Url) -> Result<(), ForbiddenTarget> {
    let Some(host) = url.host_str() else {
        return Err(ForbiddenTarget);
    };
    let literal = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match literal.parse::<IpAddr>() {
        Ok(ip) if !is_public(ip) => Err(ForbiddenTarget),
        _ => Ok(()),
    }
}

/// A DNS resolver for the proxy client that only hands out public addresses.
#[derive(Clone, Copy, Debug, Default)]
pub struct PublicResolver;

impl Resolve for PublicResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() || addrs.iter().any(|addr| !is_public(addr.ip())) {
                return Err(Box::new(ForbiddenTarget) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Whether `error` (or anything in its source chain) is a [`ForbiddenTarget`].
pub fn is_forbidden(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<ForbiddenTarget>() {
            return true;
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_refused() {
        for bad in [
            "127.0.0.1",
            "127.9.9.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.254",
            "169.254.169.254",
            "224.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "192.0.0.8",
            "198.18.0.1",
            "192.0.2.1",
            "240.0.0.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2001:db8::1",
        ] {
            assert!(!is_public(bad.parse().unwrap()), "{bad}");
        }
        for good in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.0.1",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
            "64:ff9b::101:101",
        ] {
            assert!(is_public(good.parse().unwrap()), "{good}");
        }
    }

    #[test]
    fn url_hosts_are_read_as_the_url_parser_reads_them() {
        for bad in [
            "http://127.0.0.1/oxen/v4/lsrpc",
            "http://127.1/oxen/v4/lsrpc",
            "http://0x7f000001/oxen/v4/lsrpc",
            "http://2130706433/oxen/v4/lsrpc",
            "http://[::1]:8080/oxen/v4/lsrpc",
            "http://[::ffff:7f00:1]/oxen/v4/lsrpc",
            "http://0/oxen/v4/lsrpc",
        ] {
            let url = reqwest::Url::parse(bad).unwrap();
            assert_eq!(check_url(&url), Err(ForbiddenTarget), "{bad}");
        }
        for good in [
            "https://example.org/oxen/v4/lsrpc",
            "http://1.1.1.1:80/loki/v3/lsrpc",
        ] {
            assert_eq!(check_url(&reqwest::Url::parse(good).unwrap()), Ok(()));
        }
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused() {
        let name: Name = "localhost".parse().unwrap();
        let error = PublicResolver.resolve(name).await.err().unwrap();
        assert!(is_forbidden(error.as_ref()), "{error}");
    }
}
