//! Address ranges for the DNS64 configuration: the §5.1.4 exclusion set (IPv6), the §5.1.7 mapped
//! IPv4 ranges and the client ACL.
//!
//! Parsing is strict: `addr/len` with host bits clear, so a typo such as RFC 6147's printed
//! `::ffff/96` (which parses as `::/96` once the host bits are checked, and as `::ffff:0:0/96`
//! nowhere) is refused with a message instead of silently excluding the wrong range.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Why a network string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// Not of the form `address/length`.
    #[error("{0:?}: expected address/length, e.g. 2001:db8::/32 or 192.0.2.0/24")]
    Syntax(String),
    /// The length is larger than the address.
    #[error("{0:?}: prefix length too large")]
    Length(String),
    /// Bits beyond the prefix length are set.
    #[error("{0:?}: address has bits set beyond the prefix length (did you mean {1}?)")]
    HostBits(String, String),
    /// An IPv4 network where an IPv6 one is needed, or the reverse.
    #[error("{0:?}: wrong address family")]
    Family(String),
}

fn mask(len: u8, bits: u32) -> u128 {
    if len == 0 {
        0
    } else {
        (u128::MAX << (bits - u32::from(len))) & (u128::MAX >> (128 - bits))
    }
}

/// An IPv6 network.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Net {
    addr: u128,
    len: u8,
}

/// An IPv4 network.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    addr: u32,
    len: u8,
}

impl Ipv6Net {
    /// `addr/len`.
    ///
    /// # Errors
    /// Length above 128 or host bits set.
    pub fn new(addr: Ipv6Addr, len: u8) -> Result<Self, NetError> {
        let s = format!("{addr}/{len}");
        if len > 128 {
            return Err(NetError::Length(s));
        }
        let a = u128::from(addr);
        if a & !mask(len, 128) != 0 {
            let fixed = Ipv6Addr::from(a & mask(len, 128));
            return Err(NetError::HostBits(s, format!("{fixed}/{len}")));
        }
        Ok(Ipv6Net { addr: a, len })
    }

    /// True if `a` is inside.
    pub fn contains(&self, a: Ipv6Addr) -> bool {
        (u128::from(a) ^ self.addr) & mask(self.len, 128) == 0
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// The network address.
    pub fn addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.addr)
    }
}

impl Ipv4Net {
    /// `addr/len`.
    ///
    /// # Errors
    /// Length above 32 or host bits set.
    pub fn new(addr: Ipv4Addr, len: u8) -> Result<Self, NetError> {
        let s = format!("{addr}/{len}");
        if len > 32 {
            return Err(NetError::Length(s));
        }
        let a = u32::from(addr);
        let m = mask(len, 32) as u32;
        if a & !m != 0 {
            let fixed = Ipv4Addr::from(a & m);
            return Err(NetError::HostBits(s, format!("{fixed}/{len}")));
        }
        Ok(Ipv4Net { addr: a, len })
    }

    /// True if `a` is inside.
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        (u32::from(a) ^ self.addr) & (mask(self.len, 32) as u32) == 0
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// The network address.
    pub fn addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.addr)
    }
}

fn split(s: &str) -> Result<(&str, u8), NetError> {
    let (a, l) = s
        .trim()
        .split_once('/')
        .ok_or_else(|| NetError::Syntax(s.to_string()))?;
    let len = l
        .parse::<u8>()
        .map_err(|_| NetError::Syntax(s.to_string()))?;
    Ok((a, len))
}

impl FromStr for Ipv6Net {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, NetError> {
        let (a, len) = split(s)?;
        match a.parse::<IpAddr>() {
            Ok(IpAddr::V6(a)) => Ipv6Net::new(a, len).map_err(|e| relabel(e, s)),
            Ok(IpAddr::V4(_)) => Err(NetError::Family(s.to_string())),
            Err(_) => Err(NetError::Syntax(s.to_string())),
        }
    }
}

impl FromStr for Ipv4Net {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, NetError> {
        let (a, len) = split(s)?;
        match a.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => Ipv4Net::new(a, len).map_err(|e| relabel(e, s)),
            Ok(IpAddr::V6(_)) => Err(NetError::Family(s.to_string())),
            Err(_) => Err(NetError::Syntax(s.to_string())),
        }
    }
}

/// Reports the string the user wrote, not our re-rendering of it.
fn relabel(e: NetError, s: &str) -> NetError {
    match e {
        NetError::HostBits(_, fix) => NetError::HostBits(s.to_string(), fix),
        NetError::Length(_) => NetError::Length(s.to_string()),
        other => other,
    }
}

/// An IPv4 or IPv6 network, as used by the client ACL.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum IpNet {
    /// IPv4.
    V4(Ipv4Net),
    /// IPv6.
    V6(Ipv6Net),
}

impl IpNet {
    /// True if `a` is inside (no normalization: see [`crate::dns64::acl::normalize`]).
    pub fn contains(&self, a: IpAddr) -> bool {
        match (self, a) {
            (IpNet::V4(n), IpAddr::V4(a)) => n.contains(a),
            (IpNet::V6(n), IpAddr::V6(a)) => n.contains(a),
            _ => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, NetError> {
        let (a, _) = split(s)?;
        if a.contains(':') {
            s.parse().map(IpNet::V6)
        } else {
            s.parse().map(IpNet::V4)
        }
    }
}

impl fmt::Display for Ipv6Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len)
    }
}
impl fmt::Debug for Ipv6Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len)
    }
}
impl fmt::Debug for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpNet::V4(n) => n.fmt(f),
            IpNet::V6(n) => n.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6147_default_exclusion_is_the_mapped_range() {
        let n: Ipv6Net = "::ffff:0:0/96".parse().unwrap();
        assert!(n.contains("::ffff:192.0.2.1".parse().unwrap()));
        assert!(!n.contains("2001:db8::1".parse().unwrap()));
        assert!(!n.contains("::1".parse().unwrap()));
        // The RFC's literal text `::ffff/96` is ::0.0.255.255/96: host bits set, refused.
        let e = "::ffff/96".parse::<Ipv6Net>().unwrap_err();
        assert_eq!(e, NetError::HostBits("::ffff/96".into(), "::/96".into()));
    }

    #[test]
    fn v4_nets() {
        let n: Ipv4Net = "192.0.2.0/24".parse().unwrap();
        assert!(n.contains("192.0.2.200".parse().unwrap()));
        assert!(!n.contains("192.0.3.1".parse().unwrap()));
        let all: Ipv4Net = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("255.1.2.3".parse().unwrap()));
        assert!(matches!(
            "192.0.2.1/24".parse::<Ipv4Net>(),
            Err(NetError::HostBits(..))
        ));
        assert!(matches!(
            "192.0.2.0/33".parse::<Ipv4Net>(),
            Err(NetError::Length(..))
        ));
        assert!(matches!(
            "192.0.2.0".parse::<Ipv4Net>(),
            Err(NetError::Syntax(..))
        ));
        assert!(matches!(
            "2001:db8::/32".parse::<Ipv4Net>(),
            Err(NetError::Family(..))
        ));
        let any6: Ipv6Net = "::/0".parse().unwrap();
        assert!(any6.contains("ffff::1".parse().unwrap()));
        let host: Ipv6Net = "::1/128".parse().unwrap();
        assert!(host.contains("::1".parse().unwrap()));
        assert!(!host.contains("::2".parse().unwrap()));
    }

    #[test]
    fn ipnet_families_do_not_mix() {
        let n: IpNet = "127.0.0.0/8".parse().unwrap();
        assert!(n.contains("127.0.0.1".parse().unwrap()));
        assert!(!n.contains("::ffff:127.0.0.1".parse().unwrap()));
        let n6: IpNet = "2001:db8::/32".parse().unwrap();
        assert!(n6.contains("2001:db8::5".parse().unwrap()));
        assert_eq!(n6.to_string(), "2001:db8::/32");
    }
}
