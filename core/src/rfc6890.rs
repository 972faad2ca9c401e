//! RFC 6890 (with RFC 4291 and RFC 3879): IPv6 source addresses a translator never translates.
//!
//! One rule for both modes ([`crate::siit`] and [`crate::nat64`]): a packet whose IPv6 source is
//! one of these is dropped as [`crate::DropReason::NonGlobalSource`] (silently: RFC 7915 §5.1
//! "illegal source address") and, in NAT64 mode, never gets a binding. Only packets are checked;
//! the outer source of an ICMPv6 error (a router's address) is still translated through RFC 6791.
//!
//! | prefix | what (RFC) |
//! |---|---|
//! | `::/128` | unspecified (RFC 4291 §2.5.2: never a source of a forwarded packet) |
//! | `::1/128` | loopback (RFC 4291 §2.5.3: never leaves a node) |
//! | `::ffff:0:0/96` | IPv4-mapped (RFC 4291 §2.5.5.2: not on the wire) |
//! | `100::/64` | discard-only (RFC 6666) |
//! | `2001:2::/48` | benchmarking (RFC 5180, RFC 6890: not forwardable beyond the lab) |
//! | `fe80::/10` | link-local (RFC 4291 §2.5.6: routers must not forward) |
//! | `fec0::/10` | site-local, deprecated (RFC 3879) |
//!
//! Not listed, on purpose, although RFC 6890 marks them "Global: False": `fc00::/7` (unique
//! local) is what private networks behind a NAT64 use (the NAT64 is what makes their traffic
//! global, as NAT44 does for RFC 1918), and `2001:db8::/32` (documentation) is what labs and
//! examples use. Multicast is [`crate::DropReason::SpecialAddress`] already.

use std::net::Ipv6Addr;

/// (value, prefix length) of every non-global source prefix.
const NON_GLOBAL: [(u128, u32); 7] = [
    (0, 128),
    (1, 128),
    (0xffff_0000_0000, 96),
    (0x0100_0000_0000_0000 << 64, 64),
    (0x2001_0002_0000 << 80, 48),
    (0xfe80 << 112, 10),
    (0xfec0 << 112, 10),
];

/// True if `a` must never be the source of a translated packet (see the module table).
#[inline]
pub fn is_non_global_source6(a: &Ipv6Addr) -> bool {
    let v = u128::from(*a);
    // Dispatch on the first 16 bits, so a global source (nearly every packet) costs a compare
    // or two; each arm is one row of `NON_GLOBAL` written out (the table test checks both agree).
    match (v >> 112) as u16 {
        0 => v <= 1 || v >> 32 == 0xffff,
        0x0100 => v >> 64 == NON_GLOBAL[3].0 >> 64,
        0x2001 => v >> 80 == NON_GLOBAL[4].0 >> 80,
        0xfe80..=0xfeff => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table, applied row by row: the reference the fast dispatch is checked against.
    fn by_table(a: &Ipv6Addr) -> bool {
        let v = u128::from(*a);
        NON_GLOBAL
            .iter()
            .any(|&(p, len)| v & (u128::MAX << (128 - len)) == p)
    }

    #[test]
    fn dispatch_agrees_with_the_table() {
        // Every row's first and last address, one past each end, and some globals.
        let mut probes: Vec<u128> = vec![2, 0x2001_0db8 << 96, 0x2a00 << 112, u128::MAX];
        for &(p, len) in &NON_GLOBAL {
            let last = p | u128::MAX.checked_shr(len).unwrap_or(0);
            probes.extend([p, last, p.wrapping_sub(1), last.wrapping_add(1)]);
        }
        for v in probes {
            let a = Ipv6Addr::from(v);
            assert_eq!(is_non_global_source6(&a), by_table(&a), "{a}");
        }
    }

    #[test]
    fn the_table() {
        for a in [
            "::",
            "::1",
            "::ffff:192.0.2.1",
            "::ffff:0:0",
            "100::1",
            "2001:2::1",
            "2001:2:0:ffff::1",
            "fe80::1",
            "febf:ffff::1",
            "fec0::1",
            "feff::1",
        ] {
            assert!(is_non_global_source6(&a.parse().unwrap()), "{a}");
        }
        for a in [
            "::2",
            "::192.0.2.1",
            "2001:db8::1",
            "2001:3::1",
            "fd00::1",
            "fc00::1",
            "2a00::1",
            "100:0:0:1::1",
            "fe7f::1",
            "ff02::1",
            "64:ff9b::c000:201",
        ] {
            assert!(!is_non_global_source6(&a.parse().unwrap()), "{a}");
        }
    }
}
