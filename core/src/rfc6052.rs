//! RFC 6052 §2: IPv4-embedded IPv6 addresses.
//!
//! An IPv4 address is carried inside an IPv6 prefix of length 32, 40, 48, 56, 64 or 96. Bits 64–71
//! (the "u" octet) are reserved and always zero, so for prefixes shorter than /64 the IPv4 address is
//! split around that octet (§2.2, Figure 1). The suffix after the IPv4 address is zero on output and
//! ignored on input (§2.2: "the suffix bits ... are reserved for future extensions and SHOULD be set
//! to zero").

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The Well-Known Prefix `64:ff9b::/96` (RFC 6052 §2.1).
pub const WELL_KNOWN_PREFIX: Ipv6Addr = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0);

/// The local-use prefix `64:ff9b:1::/48` (RFC 8215).
pub const LOCAL_USE_PREFIX: Ipv6Addr = Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0);

/// Why a prefix cannot be used for RFC 6052 address translation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// §2.2 allows only these lengths.
    #[error("{0}/{1}: length must be 32, 40, 48, 56, 64 or 96")]
    BadLength(Ipv6Addr, u8),
    /// §2.2: bits 64 to 71 of the address are reserved and MUST be zero.
    #[error("{0}/{1}: bits 64-71 (the u-octet) must be zero")]
    NonZeroUOctet(Ipv6Addr, u8),
    /// Bits beyond the prefix length are set: almost always a typo in the configuration.
    #[error("{0}/{1}: address has bits set beyond the prefix length")]
    HostBits(Ipv6Addr, u8),
}

/// A validated RFC 6052 translation prefix.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix6052 {
    bytes: [u8; 16],
    len: u8,
    /// The prefix and its mask as integers: one XOR and AND per membership test.
    net: u128,
    mask: u128,
}

impl Prefix6052 {
    /// The Well-Known Prefix `64:ff9b::/96`.
    pub const WKP: Prefix6052 = Prefix6052 {
        bytes: WELL_KNOWN_PREFIX.octets(),
        len: 96,
        net: u128::from_be_bytes(WELL_KNOWN_PREFIX.octets()),
        mask: u128::MAX << 32,
    };

    /// Validates `addr/len` as an RFC 6052 prefix.
    ///
    /// # Errors
    /// A length other than 32, 40, 48, 56, 64 or 96, a non-zero u-octet, or host bits set.
    pub fn new(addr: Ipv6Addr, len: u8) -> Result<Self, PrefixError> {
        if !matches!(len, 32 | 40 | 48 | 56 | 64 | 96) {
            return Err(PrefixError::BadLength(addr, len));
        }
        let bytes = addr.octets();
        if bytes[8] != 0 {
            return Err(PrefixError::NonZeroUOctet(addr, len));
        }
        if u128::from(addr) & !mask128(len) != 0 {
            return Err(PrefixError::HostBits(addr, len));
        }
        Ok(Prefix6052 {
            bytes,
            len,
            net: u128::from(addr),
            mask: mask128(len),
        })
    }

    /// The prefix address.
    pub fn addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.bytes)
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// True for `64:ff9b::/96`, the prefix that RFC 6052 §3.1 forbids for non-global IPv4.
    pub fn is_well_known(&self) -> bool {
        *self == Self::WKP
    }

    /// True if `addr` lies inside this prefix.
    #[inline]
    pub fn contains(&self, addr: &[u8; 16]) -> bool {
        (u128::from_be_bytes(*addr) ^ self.net) & self.mask == 0
    }

    /// §2.2: builds the IPv4-embedded IPv6 address (suffix and u-octet zero).
    #[inline]
    pub fn embed(&self, v4: Ipv4Addr) -> [u8; 16] {
        self.embed_u128(u32::from(v4)).to_be_bytes()
    }

    /// [`Prefix6052::embed`] on integers (the packet path's form): the IPv4 bits are placed with
    /// shifts around the u-octet (bits 64–71).
    #[inline]
    pub fn embed_u128(&self, v4: u32) -> u128 {
        let v = u128::from(v4);
        // `before` IPv4 bits end at bit 64 (from the top); the rest start at bit 72.
        let split = |before: u32| -> u128 {
            let after = 32 - before;
            ((v >> after) << 64) | ((v & ((1u128 << after) - 1)) << (56 - after))
        };
        self.net
            | match self.len {
                32 => v << 64,
                40 => split(24),
                48 => split(16),
                56 => split(8),
                64 => v << 24,
                _ => v,
            }
    }

    /// §2.3: extracts the IPv4 address, or `None` if `addr` is outside this prefix.
    #[inline]
    pub fn extract(&self, addr: &[u8; 16]) -> Option<Ipv4Addr> {
        self.extract_u128(u128::from_be_bytes(*addr))
            .map(Ipv4Addr::from)
    }

    /// [`Prefix6052::extract`] on an address as an integer.
    #[inline]
    pub fn extract_u128(&self, a: u128) -> Option<u32> {
        if (a ^ self.net) & self.mask != 0 {
            return None;
        }
        let split = |before: u32| -> u32 {
            let after = 32 - before;
            let hi = ((a >> 64) as u32) & ((1u32 << before) - 1);
            let lo = ((a >> (56 - after)) as u32) & ((1u32 << after) - 1);
            (hi << after) | lo
        };
        Some(match self.len {
            32 => (a >> 64) as u32,
            40 => split(24),
            48 => split(16),
            56 => split(8),
            64 => (a >> 24) as u32,
            _ => a as u32,
        })
    }
}

impl fmt::Display for Prefix6052 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len)
    }
}

impl fmt::Debug for Prefix6052 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The high `len` bits set.
pub(crate) fn mask128(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len.min(128)))
    }
}

/// RFC 6052 §3.1 with the IANA special-purpose registry: IPv4 addresses that are not global and so
/// must not appear behind the Well-Known Prefix.
pub fn is_non_global_v4(a: Ipv4Addr) -> bool {
    let o = a.octets();
    let u = u32::from(a);
    let within = |net: u32, len: u32| (u ^ net) >> (32 - len) == 0;
    o[0] == 0
        || o[0] == 10
        || o[0] == 127
        || within(0x6440_0000, 10) // 100.64.0.0/10 shared address space
        || within(0xa9fe_0000, 16) // 169.254.0.0/16 link local
        || within(0xac10_0000, 12) // 172.16.0.0/12
        || within(0xc000_0000, 24) // 192.0.0.0/24 IETF protocol assignments
        || within(0xc000_0200, 24) // 192.0.2.0/24 TEST-NET-1
        || within(0xc0a8_0000, 16) // 192.168.0.0/16
        || within(0xc612_0000, 15) // 198.18.0.0/15 benchmarking
        || within(0xc633_6400, 24) // 198.51.100.0/24 TEST-NET-2
        || within(0xcb00_7100, 24) // 203.0.113.0/24 TEST-NET-3
        || o[0] >= 240 // 240.0.0.0/4 reserved and 255.255.255.255
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str, len: u8) -> Prefix6052 {
        Prefix6052::new(s.parse().unwrap(), len).unwrap()
    }

    /// RFC 6052 §2.4, Table 1: every row, compared as addresses (not strings).
    #[test]
    fn rfc6052_section_2_4_table() {
        let v4: Ipv4Addr = "192.0.2.33".parse().unwrap();
        let rows: [(&str, u8, &str); 7] = [
            ("2001:db8::", 32, "2001:db8:c000:221::"),
            ("2001:db8:100::", 40, "2001:db8:1c0:2:21::"),
            ("2001:db8:122::", 48, "2001:db8:122:c000:2:2100::"),
            ("2001:db8:122:300::", 56, "2001:db8:122:3c0:0:221::"),
            ("2001:db8:122:344::", 64, "2001:db8:122:344:c0:2:2100:0"),
            ("2001:db8:122:344::", 96, "2001:db8:122:344::192.0.2.33"),
            ("64:ff9b::", 96, "64:ff9b::192.0.2.33"),
        ];
        for (prefix, len, expect) in rows {
            let pf = p(prefix, len);
            let want: Ipv6Addr = expect.parse().unwrap();
            assert_eq!(Ipv6Addr::from(pf.embed(v4)), want, "embed {prefix}/{len}");
            assert_eq!(
                pf.extract(&want.octets()),
                Some(v4),
                "extract {prefix}/{len}"
            );
        }
    }

    /// §2.2's bullet list, written as bit positions (an independent reading of Figure 1): for each
    /// length, which IPv6 bit (0 = most significant) carries IPv4 bit `i`. Checked for addresses
    /// whose four octets all differ and are non-zero, so a misplaced or dropped octet shows (the
    /// §2.4 table's 192.0.2.33 has a zero octet).
    #[test]
    fn figure1_bit_positions_for_every_length() {
        fn position(len: u8, i: u32) -> u32 {
            let before = match len {
                32 | 64 | 96 => 32, // no split: contiguous
                40 => 24,
                48 => 16,
                _ => 8, // 56
            };
            match len {
                32 => 32 + i,
                64 => 72 + i,
                96 => 96 + i,
                _ if i < before => u32::from(len) + i,
                _ => 72 + (i - before),
            }
        }
        let prefixes = [
            ("2001:db8::", 32),
            ("2001:db8:100::", 40),
            ("2001:db8:122::", 48),
            ("2001:db8:122:300::", 56),
            ("2001:db8:122:344::", 64),
            ("2001:db8:122:344::", 96),
        ];
        for (prefix, len) in prefixes {
            let pf = p(prefix, len);
            for a in [
                0x01_02_03_04u32,
                0xc0_00_02_21,
                0xfe_dc_ba_98,
                0x80_7f_01_ff,
                u32::MAX,
            ] {
                let mut want = pf.addr().octets();
                for i in 0..32 {
                    if a & (1 << (31 - i)) != 0 {
                        let b = position(len, i);
                        want[(b / 8) as usize] |= 0x80 >> (b % 8);
                    }
                }
                let got = pf.embed(Ipv4Addr::from(a));
                assert_eq!(
                    Ipv6Addr::from(got),
                    Ipv6Addr::from(want),
                    "embed {a:#010x} in {prefix}/{len}"
                );
                assert_eq!(got[8], 0, "u-octet zero, {prefix}/{len}");
                assert_eq!(pf.extract(&want), Some(Ipv4Addr::from(a)));
            }
        }
    }

    /// §2.2: "Address translators who receive IPv4-embedded IPv6 addresses where these bits [the
    /// suffix] are not zero SHOULD ignore the bits' value"; §2.3 extraction removes the u-octet.
    #[test]
    fn suffix_and_u_octet_ignored_on_input() {
        let v4: Ipv4Addr = "192.0.2.33".parse().unwrap();
        for (prefix, len) in [
            ("2001:db8::", 32u8),
            ("2001:db8:100::", 40),
            ("2001:db8:122::", 48),
            ("2001:db8:122:300::", 56),
            ("2001:db8:122:344::", 64),
        ] {
            let pf = p(prefix, len);
            let clean = pf.embed(v4);
            // Every bit that is neither prefix nor IPv4 address set: the u-octet and the suffix.
            let end_of_v4 = match len {
                32 => 72, // 32..63 then the u-octet; the suffix starts at bit 72
                64 => 104,
                _ => 104 - u32::from(64 - len), // 72 + the bits after the u-octet
            };
            let mut dirty = clean;
            for b in 64..128u32 {
                if (64..72).contains(&b) || b >= end_of_v4 {
                    dirty[(b / 8) as usize] |= 0x80 >> (b % 8);
                }
            }
            assert_ne!(dirty, clean);
            assert_eq!(pf.extract(&dirty), Some(v4), "{prefix}/{len}");
        }
    }

    #[test]
    fn refuses_bad_prefixes() {
        let a: Ipv6Addr = "2001:db8::".parse().unwrap();
        assert_eq!(Prefix6052::new(a, 33), Err(PrefixError::BadLength(a, 33)));
        assert_eq!(Prefix6052::new(a, 128), Err(PrefixError::BadLength(a, 128)));
        let u: Ipv6Addr = "2001:db8:0:0:100::".parse().unwrap();
        assert_eq!(
            Prefix6052::new(u, 96),
            Err(PrefixError::NonZeroUOctet(u, 96))
        );
        let h: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(Prefix6052::new(h, 96), Err(PrefixError::HostBits(h, 96)));
        assert_eq!(
            PrefixError::BadLength(a, 33).to_string(),
            "2001:db8::/33: length must be 32, 40, 48, 56, 64 or 96"
        );
    }

    #[test]
    fn extract_outside_prefix_is_none() {
        let pf = p("64:ff9b::", 96);
        assert_eq!(
            pf.extract(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets()),
            None
        );
        assert!(pf.is_well_known());
        assert!(!p("64:ff9b:1::", 48).is_well_known());
    }

    #[test]
    fn non_global_ranges() {
        for a in [
            "10.1.2.3",
            "192.168.1.1",
            "192.0.2.1",
            "198.51.100.10",
            "203.0.113.5",
            "127.0.0.1",
            "100.64.0.1",
            "172.31.255.255",
            "0.1.2.3",
            "255.255.255.255",
        ] {
            assert!(is_non_global_v4(a.parse().unwrap()), "{a}");
        }
        for a in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "198.20.0.1",
            "192.0.3.1",
        ] {
            assert!(!is_non_global_v4(a.parse().unwrap()), "{a}");
        }
    }
}
