//! Shared by the fuzz targets: a fixed SIIT configuration and the output checks.

use nat64_core::eamt::{Eam, Eamt};
use nat64_core::pool6::Pool6;
use nat64_core::rfc6052::Prefix6052;
use nat64_core::rfc6791::Rfc6791Pool;
use nat64_core::rfc7915::XlatConfig;
use nat64_core::siit::{Siit, SiitConfig};
use nat64_core::{packets, Ctx, Timestamp, Verdict, AUX_LEN, HEADROOM};
use std::sync::OnceLock;

fn siit() -> &'static Siit {
    static S: OnceLock<Siit> = OnceLock::new();
    S.get_or_init(|| {
        let eam = |a: &str, l, b: &str, m| Eam::new(a.parse().unwrap(), l, b.parse().unwrap(), m).unwrap();
        Siit::new(SiitConfig {
            pool6: Pool6::new(vec![Prefix6052::WKP], false).unwrap(),
            eamt: Eamt::new(vec![
                eam("192.0.2.128", 25, "2001:db8:e::", 121),
                eam("192.0.2.1", 32, "2001:db8:1::1", 128),
            ])
            .unwrap(),
            rfc6791: Rfc6791Pool::new(&[("203.0.113.0".parse().unwrap(), 28)]).unwrap(),
            xlat: XlatConfig::default(),
        })
    })
}

/// The layers the translator writes are well formed (see core/tests/prop.rs).
fn check(p: &[u8]) {
    match p[0] >> 4 {
        4 => {
            let ihl = usize::from(p[0] & 15) * 4;
            assert!(ihl >= 20 && ihl <= p.len());
            assert_eq!(usize::from(u16::from_be_bytes([p[2], p[3]])), p.len());
            let mut s: u32 = p[..ihl].chunks(2).map(|c| u32::from(c[0]) << 8 | u32::from(c[1])).sum();
            while s > 0xffff {
                s = (s & 0xffff) + (s >> 16);
            }
            assert_eq!(s, 0xffff, "IPv4 header checksum");
        }
        6 => {
            assert!(p.len() >= 40);
            assert_eq!(40 + usize::from(u16::from_be_bytes([p[4], p[5]])), p.len());
            if p[6] == 44 {
                assert!(p.len() >= 48, "fragment header present");
            }
        }
        v => panic!("output version {v}"),
    }
}

/// Translates `data` (first nibble forced to `version`) and checks every output.
pub fn run(version: u8, data: &[u8]) {
    if data.is_empty() || data.len() > 65535 {
        return;
    }
    let mut buf = vec![0u8; HEADROOM + data.len()];
    buf[HEADROOM..].copy_from_slice(data);
    buf[HEADROOM] = (buf[HEADROOM] & 0x0f) | (version << 4);
    // A random IPv4 header almost never checksums; fix it unless the input's last byte is odd,
    // so the fuzzer explores past RFC 1812 header validation.
    let ihl = usize::from(buf[HEADROOM] & 15) * 4;
    if version == 4 && ihl >= 20 && ihl <= data.len() && data[data.len() - 1] & 1 == 0 {
        let h = &mut buf[HEADROOM..HEADROOM + ihl];
        h[10] = 0;
        h[11] = 0;
        let mut s: u32 = h.chunks(2).map(|c| u32::from(c[0]) << 8 | u32::from(c[1])).sum();
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        h[10..12].copy_from_slice(&(!(s as u16)).to_be_bytes());
    }
    let mut aux = vec![0u8; AUX_LEN];
    let mut ctx = Ctx::new(Timestamp(1), 1);
    match siit().translate(&mut ctx, &mut buf, HEADROOM, data.len(), &mut aux) {
        Verdict::Forward { start, len } => check(&buf[start..start + len]),
        Verdict::ForwardAux { len } | Verdict::IcmpError { len, .. } => {
            let mut seen = 0;
            for p in packets(&aux[..len]) {
                check(p);
                seen += p.len();
            }
            assert_eq!(seen, len);
        }
        Verdict::Drop(_) => {}
    }
}
