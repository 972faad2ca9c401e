//! RFC 7915 §4.2 and §5.2: the ICMPv4 ↔ ICMPv6 type, code and pointer tables.
//!
//! Pure lookups, kept apart from the packet code so they can be tested row by row against the RFC.

/// What to do with one ICMP type/code, in either direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpMap {
    /// A query (echo) message: new type, same code, identifier kept.
    Query { ty: u8 },
    /// An error with a plain type/code translation.
    Error { ty: u8, code: u8 },
    /// Fragmentation Needed ↔ Packet Too Big: the MTU field is recomputed.
    PacketTooBig { ty: u8, code: u8 },
    /// Parameter Problem with a pointer translated by Figure 3 / Figure 6.
    ParamProblem { ty: u8, code: u8 },
    /// Parameter Problem with a fixed pointer (§4.2: protocol unreachable → pointer to Next Header).
    FixedPointer { ty: u8, code: u8, pointer: u8 },
    /// Silently dropped by the RFC, or unknown.
    Drop,
}

impl IcmpMap {
    /// True for error messages (they carry a quoted packet).
    pub fn is_error(self) -> bool {
        !matches!(self, IcmpMap::Query { .. } | IcmpMap::Drop)
    }
}

/// True if an ICMPv4 type is an error message (RFC 792, RFC 1812 §4.3.2.4), for the rule that no
/// error is ever sent about an error.
pub fn is_icmp4_error(ty: u8) -> bool {
    matches!(ty, 3 | 4 | 5 | 11 | 12)
}

/// True if an ICMPv6 type is an error message (RFC 4443 §2.1: types 0–127).
pub fn is_icmp6_error(ty: u8) -> bool {
    ty < 128
}

/// RFC 7915 §4.2: ICMPv4 → ICMPv6.
pub fn map_4to6(ty: u8, code: u8) -> IcmpMap {
    use IcmpMap::*;
    match (ty, code) {
        (8, _) => Query { ty: 128 },
        (0, _) => Query { ty: 129 },
        // Destination Unreachable.
        (3, 0 | 1 | 5 | 6 | 7 | 8 | 11 | 12) => Error { ty: 1, code: 0 },
        (3, 2) => FixedPointer {
            ty: 4,
            code: 1,
            pointer: 6,
        },
        (3, 3) => Error { ty: 1, code: 4 },
        (3, 4) => PacketTooBig { ty: 2, code: 0 },
        (3, 9 | 10 | 13 | 15) => Error { ty: 1, code: 1 },
        // Time Exceeded: code unchanged (0 or 1).
        (11, c @ (0 | 1)) => Error { ty: 3, code: c },
        // Parameter Problem: pointer indicates the error, or bad length.
        (12, 0 | 2) => ParamProblem { ty: 4, code: 0 },
        // Info request/reply, timestamps, address masks, router adv/sol, redirect, alternate
        // host, source quench, code 14 and every unknown type or code.
        _ => Drop,
    }
}

/// RFC 7915 §5.2: ICMPv6 → ICMPv4.
pub fn map_6to4(ty: u8, code: u8) -> IcmpMap {
    use IcmpMap::*;
    match (ty, code) {
        (128, _) => Query { ty: 8 },
        (129, _) => Query { ty: 0 },
        (1, 0 | 2 | 3) => Error { ty: 3, code: 1 },
        (1, 1) => Error { ty: 3, code: 10 },
        (1, 4) => Error { ty: 3, code: 3 },
        (2, _) => PacketTooBig { ty: 3, code: 4 },
        (3, c @ (0 | 1)) => Error { ty: 11, code: c },
        (4, 0) => ParamProblem { ty: 12, code: 0 },
        (4, 1) => Error { ty: 3, code: 2 },
        // MLD (130–132), ND (133–137), PP code 2, unknown types and codes.
        _ => Drop,
    }
}

/// RFC 7915 Figure 3: an ICMPv4 Parameter Problem pointer as an ICMPv6 one (`None` = n/a).
pub fn pointer_4to6(p: u8) -> Option<u32> {
    match p {
        0 => Some(0),
        1 => Some(1),
        2 | 3 => Some(4),
        8 => Some(7),
        9 => Some(6),
        12..=15 => Some(8),
        16..=19 => Some(24),
        _ => None,
    }
}

/// RFC 7915 Figure 6: an ICMPv6 Parameter Problem pointer as an ICMPv4 one (`None` = n/a).
pub fn pointer_6to4(p: u32) -> Option<u8> {
    match p {
        0 => Some(0),
        1 => Some(1),
        4 | 5 => Some(2),
        6 => Some(9),
        7 => Some(8),
        8..=23 => Some(12),
        24..=39 => Some(16),
        _ => None,
    }
}

/// RFC 1191 §7 plateau table.
const PLATEAUS: [u16; 11] = [
    65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68,
];

/// RFC 7915 §4.2 for a Fragmentation Needed with MTU 0: the greatest RFC 1191 plateau below the
/// quoted packet's Total Length, but not below 1280.
pub fn plateau_mtu(total_len: u16) -> u16 {
    PLATEAUS
        .iter()
        .copied()
        .find(|&p| p < total_len)
        .unwrap_or(1280)
        .max(1280)
}

/// RFC 7915 §4.2: the Packet Too Big MTU for a Fragmentation Needed (`mtu4` already replaced by a
/// plateau if it was zero): `max(1280, min(mtu4 + 20, ipv6_mtu, ipv4_mtu + 20))`.
pub fn ptb_mtu_4to6(mtu4: u16, ipv6_mtu: u16, ipv4_mtu: u16) -> u32 {
    let m = (u32::from(mtu4) + 20)
        .min(u32::from(ipv6_mtu))
        .min(u32::from(ipv4_mtu) + 20);
    m.max(1280)
}

/// RFC 7915 §5.2: the Fragmentation Needed MTU for a Packet Too Big:
/// `min(mtu6 - 20, ipv4_mtu, ipv6_mtu - 20)`, less 8 more when the quoted packet carried a
/// Fragment header (whose 8 bytes disappear in IPv4). Never below 68 (RFC 791 minimum).
pub fn ptb_mtu_6to4(mtu6: u32, ipv4_mtu: u16, ipv6_mtu: u16, inner_had_frag: bool) -> u16 {
    let frag = if inner_had_frag { 8 } else { 0 };
    let m = mtu6
        .saturating_sub(20 + frag)
        .min(u32::from(ipv4_mtu))
        .min(u32::from(ipv6_mtu).saturating_sub(20));
    m.clamp(68, 65535) as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use IcmpMap::*;

    /// RFC 7915 §4.2, every row of the ICMPv4 → ICMPv6 table.
    #[test]
    fn rfc7915_4_2_table() {
        let rows: &[(u8, u8, IcmpMap)] = &[
            (8, 0, Query { ty: 128 }),
            (0, 0, Query { ty: 129 }),
            (15, 0, Drop),
            (16, 0, Drop),
            (13, 0, Drop),
            (14, 0, Drop),
            (17, 0, Drop),
            (18, 0, Drop),
            (9, 0, Drop),
            (10, 0, Drop),
            (3, 0, Error { ty: 1, code: 0 }),
            (3, 1, Error { ty: 1, code: 0 }),
            (
                3,
                2,
                FixedPointer {
                    ty: 4,
                    code: 1,
                    pointer: 6,
                },
            ),
            (3, 3, Error { ty: 1, code: 4 }),
            (3, 4, PacketTooBig { ty: 2, code: 0 }),
            (3, 5, Error { ty: 1, code: 0 }),
            (3, 6, Error { ty: 1, code: 0 }),
            (3, 7, Error { ty: 1, code: 0 }),
            (3, 8, Error { ty: 1, code: 0 }),
            (3, 9, Error { ty: 1, code: 1 }),
            (3, 10, Error { ty: 1, code: 1 }),
            (3, 11, Error { ty: 1, code: 0 }),
            (3, 12, Error { ty: 1, code: 0 }),
            (3, 13, Error { ty: 1, code: 1 }),
            (3, 14, Drop),
            (3, 15, Error { ty: 1, code: 1 }),
            (3, 16, Drop),
            (5, 0, Drop),
            (6, 0, Drop),
            (4, 0, Drop),
            (11, 0, Error { ty: 3, code: 0 }),
            (11, 1, Error { ty: 3, code: 1 }),
            (12, 0, ParamProblem { ty: 4, code: 0 }),
            (12, 1, Drop),
            (12, 2, ParamProblem { ty: 4, code: 0 }),
            (12, 3, Drop),
            (42, 0, Drop),
        ];
        for &(t, c, want) in rows {
            assert_eq!(map_4to6(t, c), want, "ICMPv4 {t}/{c}");
        }
    }

    /// RFC 7915 §5.2, every row of the ICMPv6 → ICMPv4 table.
    #[test]
    fn rfc7915_5_2_table() {
        let rows: &[(u8, u8, IcmpMap)] = &[
            (128, 0, Query { ty: 8 }),
            (129, 0, Query { ty: 0 }),
            (130, 0, Drop),
            (131, 0, Drop),
            (132, 0, Drop),
            (133, 0, Drop),
            (134, 0, Drop),
            (135, 0, Drop),
            (136, 0, Drop),
            (137, 0, Drop),
            (200, 0, Drop),
            (1, 0, Error { ty: 3, code: 1 }),
            (1, 1, Error { ty: 3, code: 10 }),
            (1, 2, Error { ty: 3, code: 1 }),
            (1, 3, Error { ty: 3, code: 1 }),
            (1, 4, Error { ty: 3, code: 3 }),
            (1, 5, Drop),
            (1, 6, Drop),
            (2, 0, PacketTooBig { ty: 3, code: 4 }),
            (3, 0, Error { ty: 11, code: 0 }),
            (3, 1, Error { ty: 11, code: 1 }),
            (4, 0, ParamProblem { ty: 12, code: 0 }),
            (4, 1, Error { ty: 3, code: 2 }),
            (4, 2, Drop),
            (100, 0, Drop),
        ];
        for &(t, c, want) in rows {
            assert_eq!(map_6to4(t, c), want, "ICMPv6 {t}/{c}");
        }
    }

    /// RFC 7915 Figures 3 and 6, every row.
    #[test]
    fn pointer_figures() {
        let fig3: [(u8, Option<u32>); 20] = [
            (0, Some(0)),
            (1, Some(1)),
            (2, Some(4)),
            (3, Some(4)),
            (4, None),
            (5, None),
            (6, None),
            (7, None),
            (8, Some(7)),
            (9, Some(6)),
            (10, None),
            (11, None),
            (12, Some(8)),
            (13, Some(8)),
            (14, Some(8)),
            (15, Some(8)),
            (16, Some(24)),
            (17, Some(24)),
            (18, Some(24)),
            (19, Some(24)),
        ];
        for (p, want) in fig3 {
            assert_eq!(pointer_4to6(p), want, "fig3 {p}");
        }
        assert_eq!(pointer_4to6(20), None);
        let fig6: [(u32, Option<u8>); 10] = [
            (0, Some(0)),
            (1, Some(1)),
            (2, None),
            (3, None),
            (4, Some(2)),
            (5, Some(2)),
            (6, Some(9)),
            (7, Some(8)),
            (8, Some(12)),
            (24, Some(16)),
        ];
        for (p, want) in fig6 {
            assert_eq!(pointer_6to4(p), want, "fig6 {p}");
        }
        assert_eq!(pointer_6to4(23), Some(12));
        assert_eq!(pointer_6to4(39), Some(16));
        assert_eq!(pointer_6to4(40), None);
    }

    #[test]
    fn mtu_rules() {
        // RFC 1191 plateaus, never below 1280.
        assert_eq!(plateau_mtu(1500), 1492);
        assert_eq!(plateau_mtu(1400), 1280);
        assert_eq!(plateau_mtu(9000), 8166);
        assert_eq!(plateau_mtu(65535), 32000);
        // max(1280, min(mtu+20, ipv6_mtu, ipv4_mtu+20)).
        assert_eq!(ptb_mtu_4to6(1400, 1500, 1500), 1420);
        assert_eq!(ptb_mtu_4to6(1492, 1500, 1500), 1500);
        assert_eq!(ptb_mtu_4to6(576, 1500, 1500), 1280);
        // min(mtu-20, ipv4_mtu, ipv6_mtu-20).
        assert_eq!(ptb_mtu_6to4(1400, 1500, 1500, false), 1380);
        assert_eq!(ptb_mtu_6to4(1400, 1500, 1500, true), 1372);
        assert_eq!(ptb_mtu_6to4(9000, 1500, 9000, false), 1500);
        assert_eq!(ptb_mtu_6to4(0, 1500, 1500, false), 68);
    }
}
