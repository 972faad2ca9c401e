//! RFC 7757: the Explicit Address Mapping Table (EAMT).
//!
//! Each entry maps an IPv4 prefix to an IPv6 prefix (§3.2). The IPv4 prefix may have fewer suffix
//! bits than the IPv6 one (not only equal lengths): the IPv4 suffix is placed right after the IPv6
//! prefix and the rest is zero-padded (§3.3.1); in reverse, the first IPv4-suffix-length bits after
//! the IPv6 prefix are taken and the rest discarded (§3.3.2). Lookups are longest-prefix match in both
//! directions and come before pool6 (§3.3 step 2).
//!
//! Overlap (§5): nested prefixes are resolved by longest match and allowed; two entries with the
//! same IPv4 prefix or the same IPv6 prefix are ambiguous and refused at configuration time.

use crate::rfc6052::mask128;
use crate::rfc6791::mask32;
use std::net::{Ipv4Addr, Ipv6Addr};

/// One explicit address mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eam {
    v4: u32,
    len4: u8,
    v6: u128,
    len6: u8,
    // Precomputed for the per-packet lookups.
    mask4: u32,
    mask6: u128,
    /// IPv6 suffix bits minus IPv4 suffix bits: where the IPv4 suffix sits in the IPv6 address.
    shift: u32,
}

/// Configuration errors of an EAM.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EamError {
    /// Prefix length out of range.
    #[error("EAM {0}/{1} <-> {2}/{3}: prefix length out of range")]
    BadLength(Ipv4Addr, u8, Ipv6Addr, u8),
    /// Host bits set beyond a prefix length.
    #[error("EAM {0}/{1} <-> {2}/{3}: address has bits set beyond the prefix length")]
    HostBits(Ipv4Addr, u8, Ipv6Addr, u8),
    /// §3.2: the IPv4 prefix must have no more suffix bits than the IPv6 prefix.
    #[error("EAM {0}/{1} <-> {2}/{3}: the IPv4 suffix ({4} bits) is longer than the IPv6 suffix ({5} bits), RFC 7757 §3.2")]
    SuffixTooLong(Ipv4Addr, u8, Ipv6Addr, u8, u8, u8),
    /// Two entries share a prefix, so a lookup would be ambiguous (§5).
    #[error("EAM {0} duplicates the prefix of EAM {1}: the mapping would be ambiguous")]
    Ambiguous(String, String),
}

impl Eam {
    /// Validates one mapping `v4/len4 <-> v6/len6`.
    ///
    /// # Errors
    /// See [`EamError`].
    pub fn new(v4: Ipv4Addr, len4: u8, v6: Ipv6Addr, len6: u8) -> Result<Eam, EamError> {
        if len4 > 32 || len6 > 128 {
            return Err(EamError::BadLength(v4, len4, v6, len6));
        }
        if u32::from(v4) & !mask32(len4) != 0 || u128::from(v6) & !mask128(len6) != 0 {
            return Err(EamError::HostBits(v4, len4, v6, len6));
        }
        let (s4, s6) = (32 - len4, 128 - len6);
        if s4 > s6 {
            return Err(EamError::SuffixTooLong(v4, len4, v6, len6, s4, s6));
        }
        Ok(Eam {
            v4: u32::from(v4),
            len4,
            v6: u128::from(v6),
            len6,
            mask4: mask32(len4),
            mask6: mask128(len6),
            shift: u32::from(s6 - s4),
        })
    }

    /// The IPv4 prefix.
    pub fn v4(&self) -> (Ipv4Addr, u8) {
        (Ipv4Addr::from(self.v4), self.len4)
    }

    /// The IPv6 prefix.
    pub fn v6(&self) -> (Ipv6Addr, u8) {
        (Ipv6Addr::from(self.v6), self.len6)
    }

    #[inline]
    fn matches4(&self, a: u32) -> bool {
        (a ^ self.v4) & self.mask4 == 0
    }

    #[inline]
    fn matches6(&self, a: u128) -> bool {
        (a ^ self.v6) & self.mask6 == 0
    }

    /// §3.3.1 steps 3–6: the IPv4 suffix placed right after the IPv6 prefix, zero-padded.
    #[inline]
    fn to6(&self, a: u32) -> u128 {
        self.v6
            | u128::from(a & !self.mask4)
                .checked_shl(self.shift)
                .unwrap_or(0)
    }

    /// §3.3.2 steps 3–6: the first IPv4-suffix-length bits after the IPv6 prefix.
    #[inline]
    fn to4(&self, a: u128) -> u32 {
        self.v4 | ((a & !self.mask6).checked_shr(self.shift).unwrap_or(0) as u32 & !self.mask4)
    }
}

impl std::fmt::Display for Eam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (a, l) = self.v4();
        let (b, m) = self.v6();
        write!(f, "{a}/{l} <-> {b}/{m}")
    }
}

/// The table. Entries are kept sorted by prefix length (longest first) per direction, so the first
/// match is the longest; a linear scan is fastest for the tens to hundreds of entries SIIT-DC
/// deployments use.
#[derive(Debug, Clone, Default)]
pub struct Eamt {
    by4: Vec<Eam>,
    by6: Vec<Eam>,
}

impl Eamt {
    /// Builds the table.
    ///
    /// # Errors
    /// [`EamError::Ambiguous`] when two entries share an IPv4 or an IPv6 prefix.
    pub fn new(entries: Vec<Eam>) -> Result<Eamt, EamError> {
        for (i, a) in entries.iter().enumerate() {
            for b in &entries[i + 1..] {
                if (a.v4 == b.v4 && a.len4 == b.len4) || (a.v6 == b.v6 && a.len6 == b.len6) {
                    return Err(EamError::Ambiguous(b.to_string(), a.to_string()));
                }
            }
        }
        let mut by4 = entries.clone();
        by4.sort_by_key(|e| std::cmp::Reverse(e.len4));
        let mut by6 = entries;
        by6.sort_by_key(|e| std::cmp::Reverse(e.len6));
        Ok(Eamt { by4, by6 })
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.by4.is_empty()
    }

    /// The entries.
    pub fn entries(&self) -> &[Eam] {
        &self.by4
    }

    /// True if `a` is covered by an entry's IPv4 prefix.
    #[inline]
    pub fn contains4(&self, a: Ipv4Addr) -> bool {
        let a = u32::from(a);
        self.by4.iter().any(|e| e.matches4(a))
    }

    /// §3.3.1: IPv4→IPv6 by longest match.
    #[inline]
    pub fn to6(&self, a: Ipv4Addr) -> Option<Ipv6Addr> {
        let a = u32::from(a);
        self.by4
            .iter()
            .find(|e| e.matches4(a))
            .map(|e| Ipv6Addr::from(e.to6(a)))
    }

    /// §3.3.2: IPv6→IPv4 by longest match.
    #[inline]
    pub fn to4(&self, a: &Ipv6Addr) -> Option<Ipv4Addr> {
        self.to4_u128(u128::from(*a))
    }

    /// [`Eamt::to4`] on an address as an integer.
    #[inline]
    pub fn to4_u128(&self, a: u128) -> Option<Ipv4Addr> {
        self.by6
            .iter()
            .find(|e| e.matches6(a))
            .map(|e| Ipv4Addr::from(e.to4(a)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eam(a: &str, l: u8, b: &str, m: u8) -> Eam {
        Eam::new(a.parse().unwrap(), l, b.parse().unwrap(), m).unwrap()
    }

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }
    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// RFC 7757 Figure 1 and the Appendix B examples.
    fn figure1() -> Eamt {
        Eamt::new(vec![
            eam("192.0.2.1", 32, "2001:db8:aaaa::", 128),
            eam("192.0.2.2", 32, "2001:db8:bbbb::b", 128),
            eam("192.0.2.16", 28, "2001:db8:cccc::", 124),
            eam("192.0.2.128", 26, "2001:db8:dddd::", 64),
            eam("192.0.2.192", 29, "2001:db8:eeee:8::", 62),
            eam("192.0.2.224", 31, "64:ff9b::", 127),
        ])
        .unwrap()
    }

    #[test]
    fn rfc7757_figure1_both_ways() {
        let t = figure1();
        let cases = [
            ("192.0.2.1", "2001:db8:aaaa::"),
            ("192.0.2.2", "2001:db8:bbbb::b"),
            ("192.0.2.24", "2001:db8:cccc::8"),
            // IPv4 suffix (6 bits) placed right after the /64, then zero padding.
            ("192.0.2.150", "2001:db8:dddd:0:5800::"),
            // /29 <-> /62: 3 suffix bits straddle the /62 boundary.
            ("192.0.2.197", "2001:db8:eeee:a:8000::"),
            ("192.0.2.225", "64:ff9b::1"),
        ];
        for (a, b) in cases {
            assert_eq!(t.to6(v4(a)), Some(v6(b)), "{a} -> 6");
            assert_eq!(t.to4(&v6(b)), Some(v4(a)), "{b} -> 4");
        }
        // Bits after the IPv4 suffix are discarded on the way to IPv4 (§3.3.2 step 5).
        assert_eq!(
            t.to4(&v6("2001:db8:dddd:0:5800::1")),
            Some(v4("192.0.2.150"))
        );
        assert_eq!(t.to6(v4("198.51.100.1")), None);
        assert_eq!(t.to4(&v6("2001:db8:ffff::1")), None);
    }

    #[test]
    fn longest_match_wins_with_nesting() {
        // RFC 7757 §5 Figure 2.
        let t = Eamt::new(vec![
            eam("0.0.0.0", 0, "2001:db8:ff00::", 40),
            eam("198.51.100.64", 32, "2001:db8::abcd", 128),
        ])
        .unwrap();
        assert_eq!(t.to6(v4("198.51.100.64")), Some(v6("2001:db8::abcd")));
        assert_eq!(
            t.to4(&v6("2001:db8:ffc6:3364:4000::")),
            Some(v4("198.51.100.64"))
        );
        assert_eq!(
            t.to6(v4("198.51.100.65")),
            Some(v6("2001:db8:ffc6:3364:4100::"))
        );
    }

    #[test]
    fn refuses_invalid_and_ambiguous() {
        assert!(matches!(
            Eam::new(v4("192.0.2.0"), 24, v6("2001:db8::"), 124),
            Err(EamError::SuffixTooLong(..))
        ));
        assert!(matches!(
            Eam::new(v4("192.0.2.1"), 24, v6("2001:db8::"), 64),
            Err(EamError::HostBits(..))
        ));
        let dup = Eamt::new(vec![
            eam("192.0.2.0", 24, "2001:db8:1::", 120),
            eam("192.0.2.0", 24, "2001:db8:2::", 120),
        ]);
        assert!(matches!(dup, Err(EamError::Ambiguous(..))));
    }
}
