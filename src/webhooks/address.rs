//! Which addresses a webhook may be sent to, and a resolver that hands the HTTP client only
//! those: the client connects to exactly the addresses checked here, so a second DNS answer
//! (DNS rebinding) has nothing to change.
//!
//! Refused unless `WEBHOOK_ALLOW_PRIVATE=true`: loopback, private (RFC 1918, IPv6 ULA), shared
//! (CGNAT 100.64/10), link-local (169.254/16, where cloud metadata services answer; fe80::/10),
//! multicast, unspecified, broadcast, documentation and benchmarking ranges, and anything
//! reserved; IPv6 forms that embed an IPv4 address (mapped, NAT64, 6to4) are judged by it.
//!
//! Names are resolved by the system resolver (`getaddrinfo`) on tokio's blocking pool, as
//! tokio does for any lookup: not in the image worker's slots, at most one per delivery in
//! flight, and a lookup the delivery's timeout gave up on ends with the resolver's own timeout.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether `ip` is an ordinary public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    const REFUSED: &[([u8; 4], u32)] = &[
        ([0, 0, 0, 0], 8),       // "this network", unspecified
        ([10, 0, 0, 0], 8),      // private
        ([100, 64, 0, 0], 10),   // shared address space (CGNAT)
        ([127, 0, 0, 0], 8),     // loopback
        ([169, 254, 0, 0], 16),  // link-local (cloud metadata)
        ([172, 16, 0, 0], 12),   // private
        ([192, 0, 0, 0], 24),    // IETF protocol assignments
        ([192, 0, 2, 0], 24),    // documentation (TEST-NET-1)
        ([192, 88, 99, 0], 24),  // 6to4 relay anycast
        ([192, 168, 0, 0], 16),  // private
        ([198, 18, 0, 0], 15),   // benchmarking
        ([198, 51, 100, 0], 24), // documentation (TEST-NET-2)
        ([203, 0, 113, 0], 24),  // documentation (TEST-NET-3)
        ([224, 0, 0, 0], 4),     // multicast
        ([240, 0, 0, 0], 4),     // reserved, and 255.255.255.255 broadcast
    ];
    !REFUSED.iter().any(|(net, prefix)| in_v4(ip, *net, *prefix))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let bits = u128::from(ip);
    let in_net = |net: u128, prefix: u32| {
        let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
        bits & mask == net & mask
    };
    let low_v4 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    // IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) reach that IPv4 address.
    if in_net(0xffff_0000_0000, 96) || in_net(0x0064_ff9b << 96, 96) {
        return is_public_v4(low_v4);
    }
    // 6to4 (2002:aabb:ccdd::/48) routes to the IPv4 address in bits 16..48.
    if in_net(0x2002 << 112, 16) {
        return is_public_v4(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    // Only global unicast (2000::/3) is public; that excludes ::, ::1, IPv4-compatible,
    // discard-only (100::/64), NAT64 local use (64:ff9b:1::/48), ULA (fc00::/7), link-local
    // (fe80::/10), site-local and multicast (ff00::/8). Within it, refuse the special blocks.
    in_net(0x2000 << 112, 3)
        && !in_net(0x2001 << 112, 23) // IETF protocol assignments (Teredo, ORCHID, ...)
        && !in_net(0x2001_0db8 << 96, 32) // documentation
        && !in_net(0x3fff << 112, 20) // documentation (RFC 9637)
}

/// Why a destination was refused: carried through the HTTP client's error so the delivery
/// loop can tell a refusal (permanent) from a network failure (retried).
#[derive(Debug, thiserror::Error)]
#[error(
    "{host} resolves only to addresses webhooks may not reach ({addresses}); \
     set WEBHOOK_ALLOW_PRIVATE=true to allow them"
)]
pub struct Refused {
    pub host: String,
    pub addresses: String,
}

impl Refused {
    pub fn new(host: &str, addrs: &[IpAddr]) -> Refused {
        let addresses = addrs.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(", ");
        Refused {
            host: host.to_owned(),
            addresses,
        }
    }
}

/// The HTTP client's resolver: the system's answer, less every address that is not public.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    /// `WEBHOOK_ALLOW_PRIVATE`: pass every address.
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: the client puts the URL's port (or the scheme's) in each address.
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if allowed.is_empty() {
                let ips: Vec<IpAddr> = resolved.iter().map(SocketAddr::ip).collect();
                return Err(Box::new(Refused::new(&host, &ips)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(s: &str) -> bool {
        is_public(s.parse().unwrap_or_else(|e| panic!("{s}: {e}")))
    }

    #[test]
    fn ordinary_public_addresses_pass() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80e::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(public(ip), "{ip} should be public");
        }
    }

    #[test]
    fn special_addresses_are_refused() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "100::1",
            "2001:db8::1",
            "2001::1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
            "3fff::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(!public(ip), "{ip} should be refused");
        }
    }

    #[tokio::test]
    async fn the_resolver_refuses_a_name_with_only_loopback_addresses() {
        let resolver = GuardedResolver { allow_private: false };
        let name: Name = "localhost".parse().expect("name");
        let err = match resolver.resolve(name).await {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e,
        };
        assert!(err.downcast_ref::<Refused>().is_some(), "{err}");
        let allowing = GuardedResolver { allow_private: true };
        let addrs: Vec<SocketAddr> = allowing
            .resolve("localhost".parse().expect("name"))
            .await
            .expect("allowed")
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }
}
