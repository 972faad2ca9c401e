//! Issue 9: non-global IPv6 sources (RFC 6890) never get a NAT64 binding, and stateless mode
//! drops them with the same reason. Packets built by etherparse.

mod common;
use common::*;
use etherparse::PacketBuilder;
use nat64_core::eamt::{Eam, Eamt};
use nat64_core::nat64::{Nat64, Nat64Config};
use nat64_core::pool6::Pool6;
use nat64_core::rfc6052::Prefix6052;
use nat64_core::siit::Siit;
use nat64_core::{Ctx, DropReason, Timestamp, Verdict, AUX_LEN, HEADROOM};

const SOURCES: [&str; 8] = [
    "::",
    "::1",
    "::ffff:192.0.2.77",
    "fe80::1",
    "fe80::aaaa:bbbb:cccc:dddd",
    "fec0::1",
    "100::5",
    "2001:2::9",
];

fn udp_from(src: &str) -> Vec<u8> {
    let mut p = Vec::new();
    PacketBuilder::ipv6(v6(src), wkp("198.51.100.10"), 64)
        .udp(5000, 53)
        .write(&mut p, b"query")
        .unwrap();
    p
}

fn ping_from(src: &str) -> Vec<u8> {
    let mut p = Vec::new();
    PacketBuilder::ipv6(v6(src), wkp("198.51.100.10"), 64)
        .icmpv6_echo_request(7, 1)
        .write(&mut p, b"ping")
        .unwrap();
    p
}

fn nat64_verdict(n: &Nat64, pkt: &[u8]) -> Verdict {
    let mut buf = vec![0xa5u8; HEADROOM + pkt.len()];
    buf[HEADROOM..].copy_from_slice(pkt);
    let mut aux = vec![0xa5u8; AUX_LEN];
    let mut ctx = Ctx::new(Timestamp(0), 1);
    n.translate(&mut ctx, &mut buf, HEADROOM, pkt.len(), &mut aux)
}

#[test]
fn non_global_sources_get_no_binding() {
    let pool6 = Pool6::new(vec![Prefix6052::WKP], false).unwrap();
    let n = Nat64::new(Nat64Config::new(
        pool6,
        vec!["192.0.2.1".parse().unwrap()],
        5,
    ))
    .unwrap();
    for src in SOURCES {
        for pkt in [udp_from(src), ping_from(src)] {
            assert_eq!(
                nat64_verdict(&n, &pkt),
                Verdict::Drop(DropReason::NonGlobalSource),
                "{src}"
            );
        }
    }
    assert_eq!(n.session_count(), 0);
    assert_eq!(n.counts().bib, [0, 0, 0]);
    // A global source (and a unique-local one, which NAT64 is for) still gets its binding.
    for src in ["2001:db8:1::a", "fd00:1::a"] {
        assert!(matches!(
            nat64_verdict(&n, &udp_from(src)),
            Verdict::Forward { .. }
        ));
    }
    assert_eq!(n.session_count(), 2);
}

#[test]
fn stateless_mode_drops_them_with_the_same_reason() {
    // Even when an EAM would map the address, the source rule wins.
    let mut cfg = config(false);
    cfg.eamt = Eamt::new(vec![
        Eam::new(
            "192.0.2.200".parse().unwrap(),
            32,
            "fe80::1".parse().unwrap(),
            128,
        )
        .unwrap(),
        Eam::new(
            "192.0.2.201".parse().unwrap(),
            32,
            "2001:db8:1::1".parse().unwrap(),
            128,
        )
        .unwrap(),
    ])
    .unwrap();
    let s = Siit::new(cfg);
    for src in SOURCES {
        assert_eq!(
            run_with(&s, &udp_from(src)).dropped(),
            DropReason::NonGlobalSource,
            "{src}"
        );
    }
    run_with(&s, &udp_from("2001:db8:1::1")).one();
}
