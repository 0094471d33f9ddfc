//! Which IP addresses a job's outbound request may connect to: only globally routable unicast
//! ones. Everything a job could use to reach the runner's own machine, its network or the
//! cloud's metadata service is refused, in every spelling (IPv4-mapped, IPv4-compatible, NAT64
//! and 6to4 forms carry an IPv4 address that is checked as IPv4).
//!
//! Hand-written because `Ipv4Addr::is_global` is not stable; the table in the tests is the
//! specification.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused, for the log line of a denied request.
pub(crate) fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

/// True for loopback addresses in any spelling (what `--allow-loopback-outbound` lets through).
pub(crate) fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || embedded_v4(v6).is_some_and(|v4| v4.is_loopback()),
    }
}

/// A network the operator refuses on top of the built-in ranges (`--outbound-blocked-networks`):
/// `10.20.0.0/16`, `2001:db8:1::/48`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockedNetwork {
    addr: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for BlockedNetwork {
    type Err = String;

    fn from_str(text: &str) -> Result<BlockedNetwork, String> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text.trim(), None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(BlockedNetwork { addr, prefix })
    }
}

impl BlockedNetwork {
    /// Whether `ip` is in this network (an IPv4 network also holds the IPv6 spellings of its
    /// addresses).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => in_v4(ip, net.octets(), u32::from(self.prefix)),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix))
                };
                (u128::from(ip) & mask) == (u128::from(net) & mask)
            }
            _ => false,
        }
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    const RANGES: &[([u8; 4], u32, &str)] = &[
        ([0, 0, 0, 0], 8, "\"this network\" (0.0.0.0/8)"),
        ([10, 0, 0, 0], 8, "private (10.0.0.0/8)"),
        ([100, 64, 0, 0], 10, "carrier-grade NAT (100.64.0.0/10)"),
        ([127, 0, 0, 0], 8, "loopback (127.0.0.0/8)"),
        (
            [169, 254, 0, 0],
            16,
            "link-local, where cloud metadata services live (169.254.0.0/16)",
        ),
        ([172, 16, 0, 0], 12, "private (172.16.0.0/12)"),
        (
            [192, 0, 0, 0],
            24,
            "IETF protocol assignments (192.0.0.0/24)",
        ),
        ([192, 0, 2, 0], 24, "documentation (192.0.2.0/24)"),
        ([192, 88, 99, 0], 24, "6to4 relay anycast (192.88.99.0/24)"),
        ([192, 168, 0, 0], 16, "private (192.168.0.0/16)"),
        ([198, 18, 0, 0], 15, "benchmarking (198.18.0.0/15)"),
        ([198, 51, 100, 0], 24, "documentation (198.51.100.0/24)"),
        ([203, 0, 113, 0], 24, "documentation (203.0.113.0/24)"),
        ([224, 0, 0, 0], 4, "multicast (224.0.0.0/4)"),
        ([240, 0, 0, 0], 4, "reserved (240.0.0.0/4)"),
    ];
    RANGES
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map(|(_, _, why)| *why)
}

/// The IPv4 address an IPv6 address stands for, in the forms that route to it: IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`, `64:ff9b:1::/48`)
/// and 6to4 (`2002:AABB:CCDD::/48`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    // SIIT's IPv4-translated form, `::ffff:0:a.b.c.d`.
    if s[..4] == [0, 0, 0, 0] && s[4] == 0xffff && s[5] == 0 {
        return Some(low);
    }
    if s[..5] == [0, 0, 0, 0, 0] && (s[5] == 0xffff || s[5] == 0) {
        // `::` and `::1` are IPv6's own unspecified and loopback, classified as IPv6.
        if s[5] == 0 && s[6] == 0 && s[7] <= 1 {
            return None;
        }
        return Some(low);
    }
    if s[0] == 0x64 && s[1] == 0xff9b && (s[2..6] == [0, 0, 0, 0] || s[2] == 1) {
        return Some(low);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = embedded_v4(ip) {
        // Any address of these forms that is not a forbidden IPv4 one is still refused:
        // there is no reason for a job to use them, and translators differ.
        return Some(
            v4_reason(v4).unwrap_or("an IPv4 address in IPv6 form (mapped, NAT64 or 6to4)"),
        );
    }
    let s = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified (::)");
    }
    if ip.is_loopback() {
        return Some("loopback (::1)");
    }
    if s[0] & 0xfe00 == 0xfc00 {
        return Some("unique local (fc00::/7)");
    }
    if s[0] & 0xffc0 == 0xfe80 {
        return Some("link-local (fe80::/10)");
    }
    if s[0] & 0xffc0 == 0xfec0 {
        return Some("site-local (fec0::/10)");
    }
    if s[0] & 0xff00 == 0xff00 {
        return Some("multicast (ff00::/8)");
    }
    if s[0] == 0x2001 && s[1] == 0x0db8 {
        return Some("documentation (2001:db8::/32)");
    }
    if s[..4] == [0x0100, 0, 0, 0] {
        return Some("discard-only (100::/64)");
    }
    if s[0] == 0x2001 && s[1] < 0x0200 {
        return Some("IETF protocol assignments (2001::/23)");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_every_local_private_and_metadata_spelling() {
        let refused = [
            "127.0.0.1",
            "127.1.2.3",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:8.8.8.8",
            "::127.0.0.1",
            "::ffff:0:127.0.0.1",
            "::ffff:0:a9fe:a9fe",
            "fd00::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2001:db8::1",
            "100::1",
        ];
        for ip in refused {
            let parsed: IpAddr = ip.parse().unwrap();
            assert!(forbidden_reason(parsed).is_some(), "{ip} must be refused");
        }
    }

    #[test]
    fn allows_global_unicast() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
        ] {
            let parsed: IpAddr = ip.parse().unwrap();
            assert_eq!(forbidden_reason(parsed), None, "{ip} must be allowed");
        }
    }

    #[test]
    fn loopback_in_any_spelling_is_loopback() {
        for ip in ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["10.0.0.1", "169.254.169.254", "::ffff:10.0.0.1", "fe80::1"] {
            assert!(!is_loopback(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn operator_networks_hold_their_addresses_in_every_spelling() {
        let net: BlockedNetwork = "203.0.114.0/24".parse().unwrap();
        assert!(net.contains("203.0.114.9".parse().unwrap()));
        assert!(net.contains("::ffff:203.0.114.9".parse().unwrap()));
        assert!(!net.contains("203.0.115.9".parse().unwrap()));
        let v6: BlockedNetwork = "2a05:d014::/32".parse().unwrap();
        assert!(v6.contains("2a05:d014:1::5".parse().unwrap()));
        assert!(!v6.contains("2a05:d015::5".parse().unwrap()));
        let one: BlockedNetwork = "8.8.8.8".parse().unwrap();
        assert!(
            one.contains("8.8.8.8".parse().unwrap()) && !one.contains("8.8.8.9".parse().unwrap())
        );
        for bad in ["10.0.0.0/33", "nope", "::/129", "1.2.3.4/x"] {
            assert!(bad.parse::<BlockedNetwork>().is_err(), "{bad}");
        }
    }

    #[test]
    fn reasons_name_the_range() {
        let why = forbidden_reason("169.254.169.254".parse().unwrap()).unwrap();
        assert!(why.contains("metadata"), "{why}");
        let why = forbidden_reason("::ffff:10.0.0.1".parse().unwrap()).unwrap();
        assert!(why.contains("10.0.0.0/8"), "{why}");
    }
}
