//! TCP MSS clamping for translated SYNs (RFC 9293 §3.7.1, RFC 6691, RFC 879).
//!
//! A host advertises in its SYN the largest segment it wants to receive, from its own link MTU.
//! Across the translator the IP header changes size (IPv4 20 bytes, IPv6 40), and the gateway's
//! own links may be smaller than the hosts' links: without clamping, a host on a 1500-byte IPv4
//! link that talks to an IPv6 host through an EAM sends 1500-byte IPv4 packets that become
//! 1520-byte IPv6 packets, and every connection costs a Packet Too Big round trip (or hangs where
//! ICMP is filtered). The translator lowers the MSS option of each SYN and SYN-ACK it translates
//! to what fits, and updates the TCP checksum incrementally (RFC 1624).
//!
//! The limit ([`MssClamp::Auto`]) is `min(ipv6_mtu − 60, ipv4_mtu − 40)` in both directions: the
//! segments an MSS governs travel back through both of the gateway's sides, 40 + 20 header bytes
//! on the IPv6 side and 20 + 20 on the IPv4 side (RFC 6691 §2: options are not counted).
//!
//! Option walk (RFC 9293 §3.1): End of Option List ends it, No-Operation is one byte, every other
//! kind has a length byte of at least 2 and must end within the header (data offset). An option
//! list that breaks these rules, an MSS option whose length is not 4, or a header that does not
//! lie whole in the packet (a short first fragment) leaves the segment untouched: the translator
//! is not the TCP endpoint, and the receiver decides what to do with a malformed header (RFC 9293
//! §3.1 lets it reset the connection). Every MSS option of a well-formed list is clamped (a
//! receiver may use any of them). No allocation, no read past the header.

use super::XlatConfig;

/// TCP option kinds (RFC 9293 §3.1).
const END: u8 = 0;
const NOP: u8 = 1;
const MSS: u8 = 2;
/// TCP flag bits (byte 13 of the header).
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
/// At most 40 bytes of options hold at most 10 four-byte MSS options.
const MAX_MSS_OPTIONS: usize = 10;

/// MSS clamping of one direction (`[xlat] mss_clamp_4to6` / `mss_clamp_6to4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MssClamp {
    /// Leave the MSS option alone (`false`).
    Off,
    /// Clamp to what fits the MTUs the translator knows: `min(ipv6_mtu − 60, ipv4_mtu − 40)`
    /// (`true`, the default).
    Auto,
    /// Clamp to at most this value, whatever the MTUs (a number).
    Max(u16),
}

impl MssClamp {
    /// The largest MSS a translated SYN may carry under `cfg`, or `None` when clamping is off.
    #[inline]
    pub fn limit(self, cfg: &XlatConfig) -> Option<u16> {
        match self {
            MssClamp::Off => None,
            MssClamp::Auto => Some(auto_limit(cfg.ipv6_mtu, cfg.ipv4_mtu)),
            MssClamp::Max(m) => Some(m),
        }
    }
}

/// `min(ipv6_mtu − 60, ipv4_mtu − 40)`: a segment of this size fits both sides of the gateway.
#[inline]
pub const fn auto_limit(ipv6_mtu: u16, ipv4_mtu: u16) -> u16 {
    let a = ipv6_mtu.saturating_sub(60);
    let b = ipv4_mtu.saturating_sub(40);
    if a < b {
        a
    } else {
        b
    }
}

/// Clamps the MSS options of a SYN (SYN set, RST clear; SYN-ACK included) in the TCP header at the
/// start of `seg` to `max`. Returns the partial sums of the old and new 16-bit checksum words
/// covering what changed (to be folded into the caller's RFC 1624 update), or `None` when the
/// segment is left unchanged (not a SYN, no MSS option above `max`, or malformed options).
/// `seg` holds what is present of the segment; nothing outside its TCP header is read.
#[inline]
pub(crate) fn clamp_syn(seg: &mut [u8], max: u16) -> Option<(u32, u32)> {
    if seg.len() < 20 || seg[13] & (SYN | RST) != SYN {
        return None;
    }
    let doff = usize::from(seg[12] >> 4) * 4;
    if doff <= 20 || doff > seg.len() {
        return None; // no options, or a bad data offset or a header cut short
    }
    // First pass: validate the whole list and note the MSS values that need clamping.
    let mut at = [0usize; MAX_MSS_OPTIONS];
    let mut n = 0;
    let opts = &seg[20..doff];
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            END => break,
            NOP => i += 1,
            kind => {
                let len = usize::from(*opts.get(i + 1)?);
                if len < 2 || i + len > opts.len() {
                    return None;
                }
                if kind == MSS {
                    if len != 4 {
                        return None;
                    }
                    let v = u16::from_be_bytes([opts[i + 2], opts[i + 3]]);
                    if v > max && n < MAX_MSS_OPTIONS {
                        at[n] = 20 + i + 2;
                        n += 1;
                    }
                }
                i += len;
            }
        }
    }
    if n == 0 {
        return None;
    }
    // Second pass: rewrite. A value at an odd offset of the header lies across two checksum
    // words, high byte in the low half of one and low byte in the high half of the next: its
    // contribution to the sum is the byte-swapped value.
    let (mut old, mut new) = (0u32, 0u32);
    for &p in &at[..n] {
        let v = u16::from_be_bytes([seg[p], seg[p + 1]]);
        seg[p..p + 2].copy_from_slice(&max.to_be_bytes());
        let (o, w) = if p % 2 == 0 {
            (v, max)
        } else {
            (v.swap_bytes(), max.swap_bytes())
        };
        old += u32::from(o);
        new += u32::from(w);
    }
    Some((old, new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum;

    /// A 20-byte TCP header with `flags` and `opts` (padded to a multiple of 4 with EOL), and its
    /// checksum over a fixed pseudo-header sum, so that the incremental update can be checked.
    fn seg(flags: u8, opts: &[u8]) -> Vec<u8> {
        let olen = opts.len().div_ceil(4) * 4;
        let mut s = vec![0u8; 20 + olen];
        s[0..2].copy_from_slice(&40000u16.to_be_bytes());
        s[2..4].copy_from_slice(&80u16.to_be_bytes());
        s[12] = (((20 + olen) / 4) << 4) as u8;
        s[13] = flags;
        s[20..20 + opts.len()].copy_from_slice(opts);
        s.extend_from_slice(b"payload");
        let c = checksum::finish(0x1234 + checksum::sum(&s));
        s[16..18].copy_from_slice(&c.to_be_bytes());
        s
    }

    fn verifies(s: &[u8]) -> bool {
        checksum::verify(0x1234 + checksum::sum(s))
    }

    fn apply(s: &mut [u8], max: u16) -> bool {
        match clamp_syn(s, max) {
            Some((o, n)) => {
                let c = checksum::update(u16::from_be_bytes([s[16], s[17]]), o, n);
                s[16..18].copy_from_slice(&c.to_be_bytes());
                true
            }
            None => false,
        }
    }

    #[test]
    fn odd_offset_mss_keeps_the_checksum_valid() {
        // NOP, then MSS 1460 at option offset 1: the value starts at header byte 23 (odd).
        let mut s = seg(SYN, &[NOP, MSS, 4, 0x05, 0xb4]);
        assert!(apply(&mut s, 1360));
        assert_eq!(u16::from_be_bytes([s[23], s[24]]), 1360);
        assert!(verifies(&s));
    }

    #[test]
    fn every_mss_option_is_clamped() {
        let mut s = seg(SYN, &[MSS, 4, 0x05, 0xb4, NOP, MSS, 4, 0x23, 0x28]);
        assert!(apply(&mut s, 1000));
        assert_eq!(u16::from_be_bytes([s[22], s[23]]), 1000);
        assert_eq!(u16::from_be_bytes([s[27], s[28]]), 1000);
        assert!(verifies(&s));
    }

    #[test]
    fn rst_and_plain_segments_are_left_alone() {
        for flags in [SYN | RST, 0x10, 0x18] {
            let mut s = seg(flags, &[MSS, 4, 0x05, 0xb4]);
            let before = s.clone();
            assert!(!apply(&mut s, 1000), "flags {flags:#x}");
            assert_eq!(s, before);
        }
    }

    #[test]
    fn a_header_longer_than_the_segment_is_left_alone() {
        let mut s = seg(SYN, &[MSS, 4, 0x05, 0xb4]);
        s[12] = 15 << 4; // claims 60 bytes
        s.truncate(40);
        assert!(!apply(&mut s, 1000));
        // Data offset below 5.
        let mut s = seg(SYN, &[MSS, 4, 0x05, 0xb4]);
        s[12] = 4 << 4;
        assert!(!apply(&mut s, 1000));
    }

    #[test]
    fn auto_limit_is_the_smaller_side() {
        assert_eq!(auto_limit(1500, 1500), 1440);
        assert_eq!(auto_limit(1500, 1400), 1360);
        assert_eq!(auto_limit(1280, 1500), 1220);
        assert_eq!(auto_limit(1280, 20), 0);
    }
}
