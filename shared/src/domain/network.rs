//! Where an API token may be used from: IPv4 and IPv6 addresses and CIDR ranges.

use std::fmt;
use std::net::IpAddr;

/// At most this many ranges per token.
pub const MAX_ALLOWED_IPS: usize = 20;

/// An address range: a network address and a prefix length (`10.0.0.0/8`, `2001:db8::/32`);
/// a bare address is a range of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// `a.b.c.d[/n]` or an IPv6 address `[/n]`; host bits below the prefix are cleared. An
    /// IPv4-mapped range (`::ffff:a.b.c.d`, `::ffff:0:0/96` or narrower) is the IPv4 range it
    /// names (`::ffff:10.0.0.0/104` is `10.0.0.0/8`), as clients are matched by their IPv4
    /// address: kept as IPv6, it would match no client at all.
    pub fn parse(text: &str) -> Option<Self> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().ok()?;
        let bits = bits_of(address);
        let prefix = match prefix {
            None => bits,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|p| *p <= bits)?
            }
            Some(_) => return None,
        };
        let (address, prefix) = unmapped_range(address, prefix);
        Some(Self {
            network: masked(address, prefix),
            prefix,
        })
    }

    /// Whether `address` is in the range. IPv4 clients (also as a dual-stack socket sees them,
    /// `::ffff:a.b.c.d`) are matched by IPv4 ranges only, and IPv6 clients by IPv6 ranges only:
    /// `0.0.0.0/0` is every IPv4 address and `::/0` every IPv6 address, each none of the other.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = unmapped(address);
        std::mem::discriminant(&address) == std::mem::discriminant(&self.network)
            && masked(address, self.prefix) == self.network
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The ranges a token may be used from; empty: anywhere.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowedIps(Vec<IpRange>);

impl AllowedIps {
    pub fn new(ranges: Vec<IpRange>) -> Self {
        Self(ranges)
    }

    /// A list no address is in: what a stored list none of whose ranges reads any more
    /// becomes (an empty list would let every address in).
    pub fn nowhere() -> Self {
        // The unspecified address, which no client connects from.
        Self(IpRange::parse("0.0.0.0/32").into_iter().collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn ranges(&self) -> &[IpRange] {
        &self.0
    }

    /// As stored and shown: `a.b.c.d/n` and IPv6 ranges.
    pub fn texts(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }

    /// Whether a request from `client` may use the token: always with no list; with one, only
    /// from an address within it (an unknown address never).
    pub fn permits(&self, client: Option<IpAddr>) -> bool {
        self.0.is_empty() || client.is_some_and(|ip| self.0.iter().any(|r| r.contains(ip)))
    }
}

fn bits_of(address: IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, how a dual-stack socket sees IPv4 peers)
/// as the IPv4 address it is.
fn unmapped(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

/// A range within `::ffff:0:0/96` (prefix 96 or more) as the IPv4 range it names; any other
/// range as it is.
fn unmapped_range(address: IpAddr, prefix: u8) -> (IpAddr, u8) {
    match unmapped(address) {
        v4 @ IpAddr::V4(_) if address.is_ipv6() && prefix >= 96 => (v4, prefix - 96),
        _ => (address, prefix),
    }
}

fn masked(address: IpAddr, prefix: u8) -> IpAddr {
    match address {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ranges_hold_their_addresses_and_no_others() {
        let office = IpRange::parse("203.0.113.0/24").unwrap();
        assert!(office.contains(ip("203.0.113.77")));
        assert!(
            office.contains(ip("::ffff:203.0.113.77")),
            "a mapped IPv4 peer"
        );
        assert!(!office.contains(ip("203.0.114.1")));
        assert!(!office.contains(ip("2001:db8::1")));
        let one = IpRange::parse("198.51.100.7").unwrap();
        assert_eq!(one.to_string(), "198.51.100.7/32");
        assert!(one.contains(ip("198.51.100.7")) && !one.contains(ip("198.51.100.8")));
        let v6 = IpRange::parse("2001:db8:abcd::/48").unwrap();
        assert!(v6.contains(ip("2001:db8:abcd:12::1")) && !v6.contains(ip("2001:db8:abce::1")));
        assert_eq!(
            IpRange::parse("10.1.2.3/8").unwrap().to_string(),
            "10.0.0.0/8"
        );
        let everywhere = IpRange::parse("0.0.0.0/0").unwrap();
        assert!(everywhere.contains(ip("192.0.2.1")) && !everywhere.contains(ip("::1")));
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "::/129",
            "a/8",
            " 10.0.0.1",
            "10.0.0.0/8/8",
        ] {
            assert_eq!(IpRange::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_mapped_ipv4_range_is_the_ipv4_range_it_names() {
        for (mapped, ipv4) in [
            ("::ffff:127.0.0.1", "127.0.0.1/32"),
            ("::FFFF:7f00:1", "127.0.0.1/32"),
            ("::ffff:127.0.0.1/128", "127.0.0.1/32"),
            ("::ffff:10.1.2.3/104", "10.0.0.0/8"),
            ("::ffff:0:0/96", "0.0.0.0/0"),
        ] {
            let range = IpRange::parse(mapped).unwrap();
            assert_eq!(range.to_string(), ipv4, "{mapped}");
            assert_eq!(Some(range), IpRange::parse(ipv4), "{mapped}");
        }
        let loopback = IpRange::parse("::ffff:127.0.0.1").unwrap();
        assert!(loopback.contains(ip("127.0.0.1")) && loopback.contains(ip("::ffff:127.0.0.1")));
        let wider = IpRange::parse("::ffff:0:0/95").unwrap();
        assert_eq!(
            wider.to_string(),
            "::fffe:0:0/95",
            "wider than the mapped block: IPv6"
        );
    }

    #[test]
    fn everything_of_one_family_is_none_of_the_other() {
        let every_ipv6 = IpRange::parse("::/0").unwrap();
        assert!(every_ipv6.contains(ip("2001:db8::1")) && every_ipv6.contains(ip("::1")));
        assert!(!every_ipv6.contains(ip("192.0.2.1")));
        assert!(
            !every_ipv6.contains(ip("::ffff:192.0.2.1")),
            "a mapped IPv4 peer"
        );
        let every_ipv4 = IpRange::parse("0.0.0.0/0").unwrap();
        assert!(
            every_ipv4.contains(ip("192.0.2.1")) && every_ipv4.contains(ip("::ffff:192.0.2.1"))
        );
        assert!(!every_ipv4.contains(ip("2001:db8::1")));
    }

    #[test]
    fn no_list_permits_anyone_and_a_list_only_its_addresses() {
        assert!(AllowedIps::default().permits(None));
        let list = AllowedIps::new(vec![IpRange::parse("192.0.2.0/24").unwrap()]);
        assert!(list.permits(Some(ip("192.0.2.9"))));
        assert!(!list.permits(Some(ip("198.51.100.1"))));
        assert!(!list.permits(None), "an unknown address is not in the list");
    }
}
