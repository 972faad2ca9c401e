//! pool6: the RFC 6052 prefixes that represent IPv4 hosts on the IPv6 side (RFC 7915 §6,
//! RFC 6146 §2.2 "Pref64::/n").
//!
//! IPv4→IPv6 uses the first prefix; IPv6→IPv4 accepts any of them. With the Well-Known Prefix,
//! RFC 6052 §3.1 forbids non-global IPv4 addresses: such packets are dropped with
//! [`DropReason::WkpNonGlobal`] unless `wkp_strict` is off (labs that use documentation addresses;
//! TAYGA calls the same switch `wkpf-strict`). The local-use prefix `64:ff9b:1::/48` (RFC 8215) is an
//! ordinary network-specific prefix and has no such restriction.

use crate::rfc6052::{is_non_global_v4, Prefix6052};
use crate::verdict::DropReason;
use std::net::Ipv4Addr;

/// Configuration-time errors of pool6.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Pool6Error {
    /// At least one prefix is needed.
    #[error("pool6 needs at least one prefix")]
    Empty,
    /// Two prefixes overlap, so an IPv6 address could extract to two IPv4 addresses.
    #[error("pool6 prefixes {0} and {1} overlap")]
    Overlap(String, String),
}

/// A validated set of RFC 6052 prefixes.
#[derive(Debug, Clone)]
pub struct Pool6 {
    prefixes: Vec<Prefix6052>,
    wkp_strict: bool,
}

impl Pool6 {
    /// Builds pool6 from `prefixes` (the first is used for IPv4→IPv6).
    ///
    /// # Errors
    /// An empty list or overlapping prefixes.
    pub fn new(prefixes: Vec<Prefix6052>, wkp_strict: bool) -> Result<Pool6, Pool6Error> {
        if prefixes.is_empty() {
            return Err(Pool6Error::Empty);
        }
        for (i, a) in prefixes.iter().enumerate() {
            for b in &prefixes[i + 1..] {
                if a.contains(&b.addr().octets()) || b.contains(&a.addr().octets()) {
                    return Err(Pool6Error::Overlap(a.to_string(), b.to_string()));
                }
            }
        }
        Ok(Pool6 {
            prefixes,
            wkp_strict,
        })
    }

    /// No prefix at all: an EAM-only SIIT (RFC 7756 SIIT-DC), where every address is mapped by
    /// the EAMT and anything else is untranslatable. Not valid for NAT64.
    pub fn none(wkp_strict: bool) -> Pool6 {
        Pool6 {
            prefixes: Vec::new(),
            wkp_strict,
        }
    }

    /// The prefixes, the IPv4→IPv6 one first.
    pub fn prefixes(&self) -> &[Prefix6052] {
        &self.prefixes
    }

    /// True if RFC 6052 §3.1 is enforced for the Well-Known Prefix.
    pub fn wkp_strict(&self) -> bool {
        self.wkp_strict
    }

    /// RFC 6052 §2.3: the IPv4-embedded address of `v4` under the first prefix.
    ///
    /// # Errors
    /// [`DropReason::WkpNonGlobal`] for a non-global address behind the WKP in strict mode.
    #[inline]
    pub fn embed(&self, v4: Ipv4Addr) -> Result<[u8; 16], DropReason> {
        self.embed_u128(v4).map(u128::to_be_bytes)
    }

    /// [`Pool6::embed`] returning the address as an integer.
    ///
    /// # Errors
    /// As [`Pool6::embed`].
    #[inline]
    pub fn embed_u128(&self, v4: Ipv4Addr) -> Result<u128, DropReason> {
        // An EAM-only pool6 maps nothing (the caller names which address failed).
        let Some(p) = self.prefixes.first() else {
            return Err(DropReason::UntranslatableDestination);
        };
        if self.wkp_strict && p.is_well_known() && is_non_global_v4(v4) {
            return Err(DropReason::WkpNonGlobal);
        }
        Ok(p.embed_u128(u32::from(v4)))
    }

    /// True if `v6` lies in one of the prefixes.
    #[inline]
    pub fn contains(&self, v6: &[u8; 16]) -> bool {
        self.prefixes.iter().any(|p| p.contains(v6))
    }

    /// RFC 6052 §2.3: the IPv4 address embedded in `v6`; `None` if `v6` is in no prefix.
    ///
    /// # Errors
    /// `Some(Err(WkpNonGlobal))` for a non-global address behind the WKP in strict mode.
    #[inline]
    pub fn extract(&self, v6: &[u8; 16]) -> Option<Result<Ipv4Addr, DropReason>> {
        self.extract_u128(u128::from_be_bytes(*v6))
    }

    /// [`Pool6::extract`] on an address as an integer.
    ///
    /// # Errors
    /// As [`Pool6::extract`].
    #[inline]
    pub fn extract_u128(&self, v6: u128) -> Option<Result<Ipv4Addr, DropReason>> {
        for p in &self.prefixes {
            if let Some(v4) = p.extract_u128(v6) {
                let v4 = Ipv4Addr::from(v4);
                if self.wkp_strict && p.is_well_known() && is_non_global_v4(v4) {
                    return Some(Err(DropReason::WkpNonGlobal));
                }
                return Some(Ok(v4));
            }
        }
        None
    }
}

impl Pool6 {
    /// The IPv4 address embedded in `v6` under any prefix, without the RFC 6052 §3.1 check
    /// (for naming why a refused address was refused).
    pub fn extract_lax_u128(&self, v6: u128) -> Option<Ipv4Addr> {
        self.prefixes
            .iter()
            .find_map(|p| p.extract_u128(v6))
            .map(Ipv4Addr::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn pf(s: &str, l: u8) -> Prefix6052 {
        Prefix6052::new(s.parse().unwrap(), l).unwrap()
    }

    #[test]
    fn wkp_strict_refuses_non_global() {
        let p = Pool6::new(vec![Prefix6052::WKP], true).unwrap();
        assert_eq!(
            p.embed("192.0.2.1".parse().unwrap()),
            Err(DropReason::WkpNonGlobal)
        );
        let ok = p.embed("8.8.8.8".parse().unwrap()).unwrap();
        assert_eq!(
            Ipv6Addr::from(ok),
            "64:ff9b::808:808".parse::<Ipv6Addr>().unwrap()
        );
        let doc: Ipv6Addr = "64:ff9b::192.0.2.1".parse().unwrap();
        assert_eq!(
            p.extract(&doc.octets()),
            Some(Err(DropReason::WkpNonGlobal))
        );
        let lab = Pool6::new(vec![Prefix6052::WKP], false).unwrap();
        assert_eq!(
            lab.extract(&doc.octets()),
            Some(Ok("192.0.2.1".parse().unwrap()))
        );
    }

    #[test]
    fn local_use_prefix_is_not_restricted() {
        let p = Pool6::new(vec![pf("64:ff9b:1::", 48)], true).unwrap();
        assert!(p.embed("10.0.0.1".parse().unwrap()).is_ok());
    }

    #[test]
    fn several_prefixes_and_overlap() {
        let p = Pool6::new(vec![pf("2001:db8:64::", 96), Prefix6052::WKP], true).unwrap();
        let a: Ipv6Addr = "64:ff9b::808:808".parse().unwrap();
        assert_eq!(p.extract(&a.octets()), Some(Ok("8.8.8.8".parse().unwrap())));
        let e = Pool6::new(vec![pf("2001:db8::", 32), pf("2001:db8:64::", 96)], true);
        assert!(matches!(e, Err(Pool6Error::Overlap(..))));
        assert_eq!(Pool6::new(vec![], true).unwrap_err(), Pool6Error::Empty);
    }
}
