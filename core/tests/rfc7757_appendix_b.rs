//! RFC 7757 Appendix B through whole packets: the translator configured exactly as the appendix
//! assumes (the Figure 1 EAMT, 64:ff9b::/96, an RFC 6791 pool of 198.51.100.1 only), packets built
//! with etherparse, expected addresses copied from Figures 7–11.

mod common;
use common::*;
use etherparse::PacketBuilder;
use nat64_core::eamt::{Eam, Eamt};
use nat64_core::pool6::Pool6;
use nat64_core::rfc6052::Prefix6052;
use nat64_core::rfc6791::Rfc6791Pool;
use nat64_core::rfc7915::XlatConfig;
use nat64_core::siit::{Siit, SiitConfig};

fn eam(a: &str, l: u8, b: &str, m: u8) -> Eam {
    Eam::new(a.parse().unwrap(), l, b.parse().unwrap(), m).unwrap()
}

/// Figure 1 (EAM #1 written without lengths in the RFC: §3.2's defaults /32 and /128).
fn appendix_b() -> Siit {
    Siit::new(SiitConfig {
        // wkp_strict off: the RFC's examples use documentation addresses behind 64:ff9b::/96.
        pool6: Pool6::new(vec![Prefix6052::WKP], false).unwrap(),
        eamt: Eamt::new(vec![
            eam("192.0.2.1", 32, "2001:db8:aaaa::", 128),
            eam("192.0.2.2", 32, "2001:db8:bbbb::b", 128),
            eam("192.0.2.16", 28, "2001:db8:cccc::", 124),
            eam("192.0.2.128", 26, "2001:db8:dddd::", 64),
            eam("192.0.2.192", 29, "2001:db8:eeee:8::", 62),
            eam("192.0.2.224", 31, "64:ff9b::", 127),
        ])
        .unwrap(),
        rfc6791: Rfc6791Pool::new(&[("198.51.100.1".parse().unwrap(), 32)]).unwrap(),
        xlat: XlatConfig::default(),
    })
}

/// A host on the IPv4 Internet, outside every EAM: it reaches the IPv6 side through RFC 6052.
const FAR4: &str = "198.51.100.200";

/// Figure 7, every row, both directions and both address fields. Rows #11 (64:ff9b::1, inside
/// pool6 too, where RFC 6052 would give 0.0.0.1) and #12 (RFC 6052) show that the EAMT is
/// consulted first (§3.3.1/§3.3.2 step 2).
#[test]
fn figure7_every_row_through_packets() {
    let s = appendix_b();
    let rows = [
        ("192.0.2.1", "2001:db8:aaaa::"),
        ("192.0.2.2", "2001:db8:bbbb::b"),
        ("192.0.2.16", "2001:db8:cccc::"),
        ("192.0.2.24", "2001:db8:cccc::8"),
        ("192.0.2.31", "2001:db8:cccc::f"),
        ("192.0.2.128", "2001:db8:dddd::"),
        ("192.0.2.152", "2001:db8:dddd:0:6000::"),
        ("192.0.2.183", "2001:db8:dddd:0:dc00::"),
        ("192.0.2.191", "2001:db8:dddd:0:fc00::"),
        ("192.0.2.195", "2001:db8:eeee:9:8000::"),
        ("192.0.2.225", "64:ff9b::1"),
        ("192.0.2.248", "64:ff9b::c000:2f8"),
    ];
    for (a4, a6) in rows {
        // 4 -> 6, the row's address as destination, then as source.
        let out = run_with(&s, &udp4(v4(FAR4), v4(a4), 64, b"row")).one();
        assert_eq!(&out[24..40], &v6(a6), "{a4} -> {a6} (destination)");
        assert_eq!(&out[8..24], &wkp(FAR4));
        assert!(l4_ok_v6(&out));
        let out = run_with(&s, &udp4(v4(a4), v4(FAR4), 64, b"row")).one();
        assert_eq!(&out[8..24], &v6(a6), "{a4} -> {a6} (source)");
        // 6 -> 4, both fields.
        let out = run_with(&s, &udp6(wkp(FAR4), v6(a6), 64, b"row")).one();
        assert_eq!(
            out[0] >> 4,
            4,
            "{a6}: not hairpinned (destination not from RFC 6052)"
        );
        assert_eq!(&out[16..20], &v4(a4), "{a6} -> {a4} (destination)");
        assert!(l4_ok_v4(&out));
        let out = run_with(&s, &udp6(v6(a6), wkp(FAR4), 64, b"row")).one();
        assert_eq!(&out[12..16], &v4(a4), "{a6} -> {a4} (source)");
    }
}

/// Figure 8 (and §4.2.2 condition set A, §4.2.1 rule 1) and Figure 11, its response.
#[test]
fn figures_8_and_11_normal_packets_are_hairpinned() {
    let s = appendix_b();
    for (src, dst, want_src, want_dst) in [
        // Figure 8.
        (
            v6("2001:db8:aaaa::"),
            wkp("192.0.2.2"),
            wkp("192.0.2.1"),
            v6("2001:db8:bbbb::b"),
        ),
        // Figure 11.
        (
            v6("2001:db8:bbbb::b"),
            wkp("192.0.2.1"),
            wkp("192.0.2.2"),
            v6("2001:db8:aaaa::"),
        ),
    ] {
        let out = run_with(&s, &udp6(src, dst, 64, b"hairpin")).one();
        assert_eq!(out[0] >> 4, 6, "translated back to IPv6");
        assert_eq!(&out[8..24], &want_src, "final source");
        assert_eq!(&out[24..40], &want_dst, "final destination");
        assert_eq!(
            out[7], 63,
            "§4.2.2: the second pass does not decrement again"
        );
        assert!(l4_ok_v6(&out));
    }
}

/// An ICMPv6 Destination Unreachable (address unreachable) from `from` to 64:ff9b::192.0.2.1,
/// quoting Figure 8's final packet (64:ff9b::192.0.2.1 -> 2001:db8:bbbb::b).
fn error_about_figure8(from: [u8; 16]) -> Vec<u8> {
    let mut quoted = Vec::new();
    PacketBuilder::ipv6(wkp("192.0.2.1"), v6("2001:db8:bbbb::b"), 40)
        .udp(40000, 53)
        .write(&mut quoted, b"figure 8")
        .unwrap();
    let mut e = Vec::new();
    PacketBuilder::ipv6(from, wkp("192.0.2.1"), 64)
        .icmpv6_raw(1, 3, [0; 4])
        .write(&mut e, &quoted)
        .unwrap();
    e
}

fn check_final_error(out: &[u8], outer_src: [u8; 16]) {
    assert_eq!(
        out[0] >> 4,
        6,
        "hairpinned back to IPv6 (§4.2.2 condition set B)"
    );
    // RFC 7915 §5.2 maps Address Unreachable (1/3) to Host Unreachable (3/1), and §4.2 maps
    // that to No Route (1/0) on the way back.
    assert_eq!((out[40], out[41]), (1, 0), "1/3 -> 3/1 -> 1/0");
    assert_eq!(&out[8..24], &outer_src, "final outer source");
    assert_eq!(
        &out[24..40],
        &v6("2001:db8:aaaa::"),
        "final outer destination"
    );
    let inner = &out[48..];
    assert_eq!(&inner[8..24], &v6("2001:db8:aaaa::"), "final inner source");
    assert_eq!(
        &inner[24..40],
        &wkp("192.0.2.2"),
        "final inner destination (§4.2.1 rule 2: not through the EAM)"
    );
    assert_eq!(inner[7], 40, "the quoted hop limit is never decremented");
    assert_eq!(out[7], 63, "the outer hop limit is decremented once");
    assert!(l4_ok_v6(out), "ICMPv6 checksum");
    assert!(
        l4_ok_v6(inner),
        "the quoted UDP checksum follows its new addresses"
    );
}

/// Figure 9: a router-originated error; its source maps to nothing and takes the RFC 6791
/// address, and only rule 2 applies on the second pass.
#[test]
fn figure9_router_error_is_hairpinned() {
    let out = run_with(&appendix_b(), &error_about_figure8(v6("2001:db8::1234"))).one();
    check_final_error(&out, wkp("198.51.100.1"));
}

/// Figure 10: the destination host's own error; rules 2 and 3 both apply.
#[test]
fn figure10_host_error_is_hairpinned() {
    let out = run_with(&appendix_b(), &error_about_figure8(v6("2001:db8:bbbb::b"))).one();
    check_final_error(&out, wkp("192.0.2.2"));
}
