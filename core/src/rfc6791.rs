//! RFC 6791: the IPv4 source for ICMPv6 errors whose IPv6 source cannot be translated.
//!
//! An IPv6 router on the path (say, one answering a traceroute) usually has an address that maps to
//! nothing on the IPv4 side. RFC 6791 §4 lets the translator take the source from a configured IPv4
//! pool. The address is chosen by hashing the IPv6 source, so one router keeps one IPv4 address and a
//! traceroute shows distinct hops as distinct addresses (§4 allows any selection method).

use std::net::{Ipv4Addr, Ipv6Addr};

/// The RFC 6791 pool: a list of IPv4 prefixes, and optionally its IPv6 counterpart (as Jool's
/// `pool6791v6`): an IPv6 prefix for the sources of ICMPv4 errors from IPv4 routers that map to
/// nothing on the IPv6 side (an EAM-only SIIT, RFC 7756 SIIT-DC, has no pool6 to embed them in).
#[derive(Debug, Clone, Default)]
pub struct Rfc6791Pool {
    /// (network, prefix length); host bits zero.
    nets: Vec<(u32, u8)>,
    size: u64,
    /// (network, prefix length) of the IPv6 pool.
    v6: Option<(u128, u8)>,
}

/// Configuration errors of the RFC 6791 pool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rfc6791Error {
    /// Host bits set beyond the prefix length.
    #[error("rfc6791 pool prefix {0}/{1}: address has bits set beyond the prefix length")]
    HostBits(Ipv4Addr, u8),
    /// Length above 32.
    #[error("rfc6791 pool prefix {0}/{1}: length must be at most 32")]
    BadLength(Ipv4Addr, u8),
    /// IPv6 pool: host bits set beyond the prefix length.
    #[error("rfc6791 IPv6 pool prefix {0}/{1}: address has bits set beyond the prefix length")]
    HostBits6(Ipv6Addr, u8),
    /// IPv6 pool: length above 128.
    #[error("rfc6791 IPv6 pool prefix {0}/{1}: length must be at most 128")]
    BadLength6(Ipv6Addr, u8),
}

impl Rfc6791Pool {
    /// Builds the pool from prefixes.
    ///
    /// # Errors
    /// Invalid prefixes.
    pub fn new(prefixes: &[(Ipv4Addr, u8)]) -> Result<Self, Rfc6791Error> {
        let mut nets = Vec::with_capacity(prefixes.len());
        let mut size = 0u64;
        for &(a, l) in prefixes {
            if l > 32 {
                return Err(Rfc6791Error::BadLength(a, l));
            }
            let m = mask32(l);
            if u32::from(a) & !m != 0 {
                return Err(Rfc6791Error::HostBits(a, l));
            }
            nets.push((u32::from(a), l));
            size += 1u64 << (32 - u32::from(l));
        }
        Ok(Rfc6791Pool {
            nets,
            size,
            v6: None,
        })
    }

    /// Adds the IPv6 pool `a/len`.
    ///
    /// # Errors
    /// A length above 128 or host bits set.
    pub fn with_v6(mut self, a: Ipv6Addr, len: u8) -> Result<Self, Rfc6791Error> {
        if len > 128 {
            return Err(Rfc6791Error::BadLength6(a, len));
        }
        let m = crate::rfc6052::mask128(len);
        if u128::from(a) & !m != 0 {
            return Err(Rfc6791Error::HostBits6(a, len));
        }
        self.v6 = Some((u128::from(a), len));
        Ok(self)
    }

    /// The IPv6 source for an ICMPv4 error from the unmappable router `src`: the router's
    /// address in the pool's host bits (its low 32 bits with a /96 or shorter prefix, so every
    /// router stays distinct in a traceroute), or `None` without an IPv6 pool.
    #[inline]
    pub fn pick6(&self, src: Ipv4Addr) -> Option<Ipv6Addr> {
        let (net, len) = self.v6?;
        let host = !crate::rfc6052::mask128(len);
        Some(Ipv6Addr::from(net | (u128::from(u32::from(src)) & host)))
    }

    /// True when no pool is configured.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// The pool address for errors from `src`, or `None` with an empty pool.
    #[inline]
    pub fn pick(&self, src: &Ipv6Addr) -> Option<Ipv4Addr> {
        if self.size == 0 {
            return None;
        }
        // FNV-1a over the address: cheap and stable; the choice needs no secrecy.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in src.octets() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let mut idx = h % self.size;
        for &(net, len) in &self.nets {
            let n = 1u64 << (32 - u32::from(len));
            if idx < n {
                return Some(Ipv4Addr::from(net | idx as u32));
            }
            idx -= n;
        }
        None
    }
}

pub(crate) fn mask32(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_inside_pool_and_is_stable() {
        let p = Rfc6791Pool::new(&[("198.51.100.0".parse().unwrap(), 30)]).unwrap();
        let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let x = p.pick(&a).unwrap();
        assert_eq!(x, p.pick(&a).unwrap());
        assert_eq!(
            u32::from(x) & 0xffff_fffc,
            u32::from("198.51.100.0".parse::<Ipv4Addr>().unwrap())
        );
        assert!(Rfc6791Pool::default().pick(&a).is_none());
        assert!(Rfc6791Pool::new(&[("198.51.100.1".parse().unwrap(), 30)]).is_err());
    }

    #[test]
    fn ipv6_pool_keeps_routers_apart() {
        let p = Rfc6791Pool::default()
            .with_v6("2001:db8:ffff::".parse().unwrap(), 96)
            .unwrap();
        let a = p.pick6("198.51.100.1".parse().unwrap()).unwrap();
        let b = p.pick6("198.51.100.2".parse().unwrap()).unwrap();
        assert_eq!(a, "2001:db8:ffff::c633:6401".parse::<Ipv6Addr>().unwrap());
        assert_ne!(a, b);
        assert!(Rfc6791Pool::default()
            .pick6("192.0.2.1".parse().unwrap())
            .is_none());
        assert!(Rfc6791Pool::default()
            .with_v6("2001:db8::1".parse().unwrap(), 64)
            .is_err());
    }
}
