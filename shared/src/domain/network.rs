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
    /// `a.b.c.d[/n]` or an IPv6 address `[/n]`; host bits below the prefix are cleared.
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
        Some(Self {
            network: masked(address, prefix),
            prefix,
        })
    }

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
    fn no_list_permits_anyone_and_a_list_only_its_addresses() {
        assert!(AllowedIps::default().permits(None));
        let list = AllowedIps::new(vec![IpRange::parse("192.0.2.0/24").unwrap()]);
        assert!(list.permits(Some(ip("192.0.2.9"))));
        assert!(!list.permits(Some(ip("198.51.100.1"))));
        assert!(!list.permits(None), "an unknown address is not in the list");
    }
}
