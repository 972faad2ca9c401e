//! The fast path's map contents, computed from the core's [`SiitConfig`]: the byte layouts of
//! `struct config`, `struct pool6_val` and `struct eam_val` in `ebpf/siit.bpf.c`. Pure (no
//! kernel), so the layouts are tested without BPF.

use nat64_core::siit::SiitConfig;

/// `sizeof(struct config)`.
pub const CONFIG_LEN: usize = 36;
/// `sizeof(struct eam_val)`.
pub const EAM_LEN: usize = 24;

const FLAG_COPY_TOS: u8 = 1;
const FLAG_GEN_ID: u8 = 2;
const FLAG_WKP_STRICT: u8 = 4;

/// A configuration the program cannot follow exactly (it would differ from the core).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TablesError {
    /// `decrement_ttl = false` outside hairpinning: the program always decrements.
    #[error("the fast path always decrements TTL/hop limit; the translator is configured not to")]
    NoTtlDecrement,
}

/// Everything the maps hold.
#[derive(Debug, Clone)]
pub struct Tables {
    /// `CONFIG[0]`.
    pub config: [u8; CONFIG_LEN],
    /// `POOL6`: each pool6 prefix with (RFC 6052 length, is-WKP).
    pub pool6: Vec<(u32, [u8; 16], [u8; 4])>,
    /// `EAMT6`: EAMs by IPv6 prefix.
    pub eamt6: Vec<(u32, [u8; 16], [u8; EAM_LEN])>,
    /// `EAMT4`: EAMs by IPv4 prefix.
    pub eamt4: Vec<(u32, [u8; 4], [u8; EAM_LEN])>,
}

impl Tables {
    /// The tables for `siit`, with translated IPv4 packets sent out of `ifindex4` and
    /// translated IPv6 packets out of `ifindex6` (0: that direction always punts).
    ///
    /// # Errors
    /// [`TablesError`] when the options ask for something the program does not do.
    pub fn from_siit(
        siit: &SiitConfig,
        ifindex4: u32,
        ifindex6: u32,
    ) -> Result<Tables, TablesError> {
        let x = &siit.xlat;
        if !x.decrement_ttl {
            return Err(TablesError::NoTtlDecrement);
        }
        let mut c = [0u8; CONFIG_LEN];
        c[0..4].copy_from_slice(&ifindex4.to_ne_bytes());
        c[4..8].copy_from_slice(&ifindex6.to_ne_bytes());
        c[8..10].copy_from_slice(&x.ipv4_mtu.to_ne_bytes());
        c[10..12].copy_from_slice(&x.ipv6_mtu.to_ne_bytes());
        c[12..14].copy_from_slice(&x.lowest_ipv6_mtu.to_ne_bytes());
        let mut flags = 0;
        if x.copy_tos {
            flags |= FLAG_COPY_TOS;
        }
        if x.generate_ipv4_id {
            flags |= FLAG_GEN_ID;
        }
        if siit.pool6.wkp_strict() {
            flags |= FLAG_WKP_STRICT;
        }
        c[14] = flags;
        c[15] = x.tos;
        // IPv4 -> IPv6 embeds with the first prefix (nat64_core::pool6::Pool6::embed_u128).
        if let Some(p) = siit.pool6.prefixes().first() {
            c[16] = p.prefix_len();
            c[17] = u8::from(p.is_well_known());
            c[20..36].copy_from_slice(&p.addr().octets());
        }
        let pool6 = siit
            .pool6
            .prefixes()
            .iter()
            .map(|p| {
                (
                    u32::from(p.prefix_len()),
                    p.addr().octets(),
                    [p.prefix_len(), u8::from(p.is_well_known()), 0, 0],
                )
            })
            .collect();
        let mut eamt6 = Vec::new();
        let mut eamt4 = Vec::new();
        for e in siit.eamt.entries() {
            let ((a4, l4), (a6, l6)) = (e.v4(), e.v6());
            let mut v = [0u8; EAM_LEN];
            v[0..16].copy_from_slice(&a6.octets());
            v[16..20].copy_from_slice(&a4.octets());
            v[20] = l6;
            v[21] = l4;
            eamt6.push((u32::from(l6), a6.octets(), v));
            eamt4.push((u32::from(l4), a4.octets(), v));
        }
        Ok(Tables {
            config: c,
            pool6,
            eamt6,
            eamt4,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nat64_core::eamt::{Eam, Eamt};
    use nat64_core::pool6::Pool6;
    use nat64_core::rfc6052::Prefix6052;
    use nat64_core::rfc6791::Rfc6791Pool;
    use nat64_core::rfc7915::XlatConfig;

    #[test]
    fn layout_matches_the_c_structs() {
        let siit = SiitConfig {
            pool6: Pool6::new(vec![Prefix6052::WKP], true).unwrap(),
            eamt: Eamt::new(vec![Eam::new(
                "192.0.2.0".parse().unwrap(),
                24,
                "2001:db8:1::".parse().unwrap(),
                120,
            )
            .unwrap()])
            .unwrap(),
            rfc6791: Rfc6791Pool::default(),
            xlat: XlatConfig {
                ipv4_mtu: 1400,
                tos: 0x2e,
                copy_tos: false,
                ..XlatConfig::default()
            },
        };
        let t = Tables::from_siit(&siit, 7, 9).unwrap();
        assert_eq!(u32::from_ne_bytes(t.config[0..4].try_into().unwrap()), 7);
        assert_eq!(u32::from_ne_bytes(t.config[4..8].try_into().unwrap()), 9);
        assert_eq!(u16::from_ne_bytes([t.config[8], t.config[9]]), 1400);
        assert_eq!(u16::from_ne_bytes([t.config[10], t.config[11]]), 1500);
        assert_eq!(u16::from_ne_bytes([t.config[12], t.config[13]]), 1280);
        assert_eq!(t.config[14], FLAG_GEN_ID | FLAG_WKP_STRICT);
        assert_eq!(t.config[15], 0x2e);
        assert_eq!((t.config[16], t.config[17]), (96, 1));
        assert_eq!(&t.config[20..24], &[0, 0x64, 0xff, 0x9b]);
        assert_eq!(t.pool6.len(), 1);
        assert_eq!(t.pool6[0].2, [96, 1, 0, 0]);
        assert_eq!(t.eamt4[0].2[16..22], [192, 0, 2, 0, 120, 24]);
        assert_eq!(t.eamt6[0].2[0..4], [0x20, 0x01, 0x0d, 0xb8]);
    }
}
