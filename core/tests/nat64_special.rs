//! Issue 8, "Addresses that must never be translated", in stateful NAT64 mode: IPv4 special
//! addresses (0/8, 127/8, 169.254/16, 224/4, 255.255.255.255) are dropped as `special_address`
//! in both directions, for UDP, TCP and ICMP, behind the Well-Known Prefix (strict or not) and
//! behind network-specific prefixes of /96 and /64 — the rule and reason SIIT applies
//! (`rfc7915_edges.rs`). Inside ICMPv4 errors the "illegal" source is still translated (RFC 7915
//! §4.1, troubleshooting). Inputs are built with etherparse (`common`), /64 addresses by hand
//! from RFC 6052 §2.2.

mod common;
use common::*;
use nat64_core::nat64::bib::StaticBib;
use nat64_core::nat64::{Nat64, Nat64Config, Proto};
use nat64_core::pool6::Pool6;
use nat64_core::rfc6052::Prefix6052;
use nat64_core::{packets, Ctx, DropReason, Timestamp, Verdict, AUX_LEN, HEADROOM};

const T: &str = "192.0.2.1";
const A: &str = "2001:db8:1::a";

const SPECIAL: [&str; 10] = [
    "0.0.0.0",
    "0.1.2.3",
    "127.0.0.1",
    "127.255.255.254",
    "169.254.0.1",
    "169.254.169.254",
    "224.0.0.5",
    "232.1.1.1",
    "239.255.255.255",
    "255.255.255.255",
];

/// The prefixes a stateful gateway may run with; each knows how to write Pref64(v4).
#[derive(Debug, Clone, Copy)]
enum Pref {
    Wkp { strict: bool },
    Nsp96,
    Nsp64,
}

const PREFS: [Pref; 4] = [
    Pref::Wkp { strict: false },
    Pref::Wkp { strict: true },
    Pref::Nsp96,
    Pref::Nsp64,
];

impl Pref {
    fn pool6(self) -> Pool6 {
        match self {
            Pref::Wkp { strict } => Pool6::new(vec![Prefix6052::WKP], strict).unwrap(),
            Pref::Nsp96 => Pool6::new(
                vec![Prefix6052::new("2001:db8:64::".parse().unwrap(), 96).unwrap()],
                true,
            )
            .unwrap(),
            Pref::Nsp64 => Pool6::new(
                vec![Prefix6052::new("2001:db8:64:1::".parse().unwrap(), 64).unwrap()],
                true,
            )
            .unwrap(),
        }
    }

    /// RFC 6052 §2.2, written out: /96 puts the IPv4 address in the last 32 bits; /64 skips the
    /// u octet (bits 64-71) and puts it in bits 72-103.
    fn addr(self, a: &str) -> [u8; 16] {
        let v = v4(a);
        match self {
            Pref::Wkp { .. } => wkp(a),
            Pref::Nsp96 => {
                let mut o = v6("2001:db8:64::");
                o[12..].copy_from_slice(&v);
                o
            }
            Pref::Nsp64 => {
                let mut o = v6("2001:db8:64:1::");
                o[9..13].copy_from_slice(&v);
                o
            }
        }
    }
}

fn nat(p: Pref, f: impl FnOnce(&mut Nat64Config)) -> Nat64 {
    let mut c = Nat64Config::new(p.pool6(), vec![T.parse().unwrap()], 99);
    c.max_sessions = 1000;
    c.max_sessions_per_host = 100;
    c.shards = 2;
    // A port forward, so an IPv4 packet to T:80 has a BIB entry to match.
    c.static_bib = vec![StaticBib {
        proto: Proto::Tcp,
        v6: (A.parse().unwrap(), 80),
        v4: (T.parse().unwrap(), 80),
    }];
    f(&mut c);
    Nat64::new(c).unwrap()
}

fn go(n: &Nat64, pkt: &[u8]) -> Out {
    let mut buf = vec![0xa5u8; HEADROOM + pkt.len()];
    buf[HEADROOM..].copy_from_slice(pkt);
    let mut aux = vec![0xa5u8; AUX_LEN];
    let mut ctx = Ctx::new(Timestamp(1_000), 7);
    match n.translate(&mut ctx, &mut buf, HEADROOM, pkt.len(), &mut aux) {
        Verdict::Forward { start, len } => Out::Packets(vec![buf[start..start + len].to_vec()]),
        Verdict::ForwardAux { len } => {
            Out::Packets(packets(&aux[..len]).map(|p| p.to_vec()).collect())
        }
        Verdict::IcmpError { len, reason } => Out::Error(aux[..len].to_vec(), reason),
        Verdict::Drop(r) => Out::Drop(r),
    }
}

/// A TCP SYN (etherparse) from port 40000 to port 80.
fn syn4(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let mut v = Vec::new();
    etherparse::PacketBuilder::ipv4(src, dst, 64)
        .tcp(40000, 80, 1, 8192)
        .syn()
        .write(&mut v, &[])
        .unwrap();
    v
}

fn syn6(src: [u8; 16], dst: [u8; 16]) -> Vec<u8> {
    let mut v = Vec::new();
    etherparse::PacketBuilder::ipv6(src, dst, 64)
        .tcp(40000, 80, 1, 8192)
        .syn()
        .write(&mut v, &[])
        .unwrap();
    v
}

#[test]
fn special_ipv4_destinations_embedded_in_ipv6_are_dropped_whatever_the_prefix() {
    for p in PREFS {
        let n = nat(p, |_| {});
        for a in SPECIAL {
            let d = p.addr(a);
            for (what, pkt) in [
                ("udp", udp6(v6(A), d, 64, b"x")),
                ("tcp syn", syn6(v6(A), d)),
                ("echo", echo6(v6(A), d, b"ping")),
            ] {
                assert_eq!(
                    go(&n, &pkt).dropped(),
                    DropReason::SpecialAddress,
                    "{p:?} {what} to {a}"
                );
            }
        }
        assert_eq!(n.session_count(), 0, "{p:?}: no state for a refused packet");
        // An ordinary global address behind the same prefix is translated, to exactly it.
        let out = go(&n, &udp6(v6(A), p.addr("8.8.8.8"), 64, b"x")).one();
        assert_eq!(out[0] >> 4, 4, "{p:?}");
        assert_eq!(&out[12..16], &v4(T), "{p:?}: source T");
        assert_eq!(&out[16..20], &v4("8.8.8.8"), "{p:?}: destination Z");
        assert!(l4_ok_v4(&out), "{p:?}");
    }
}

#[test]
fn non_global_but_not_special_destinations_keep_the_wkp_reason() {
    // RFC 6052 §3.1 (wkp_strict) refuses 10/8 and the documentation ranges behind the WKP with
    // its own reason; the special rule does not swallow it.
    let n = nat(Pref::Wkp { strict: true }, |_| {});
    for a in ["10.1.2.3", "198.51.100.10", "100.64.0.1"] {
        let (_, r) = go(&n, &udp6(v6(A), wkp(a), 64, b"x")).error();
        assert_eq!(r, DropReason::WkpNonGlobal, "{a}");
    }
}

#[test]
fn special_ipv6_sources_under_pref64_are_refused_as_pref64_sources() {
    // NAT64 replaces the IPv6 source with T, so a Pref64 source is never translated: RFC 6146
    // §3.5 refuses it (hairpinning loops) before any IPv4 rule applies.
    for p in PREFS {
        let n = nat(p, |_| {});
        for a in SPECIAL {
            let pkt = udp6(p.addr(a), p.addr("8.8.8.8"), 64, b"x");
            assert_eq!(
                go(&n, &pkt).dropped(),
                DropReason::Pref64Source,
                "{p:?} {a}"
            );
        }
    }
}

#[test]
fn special_ipv4_sources_and_destinations_are_dropped_4to6() {
    for p in PREFS {
        let n = nat(p, |_| {});
        // A live UDP session A:40000 -> 8.8.8.8:53, so the IPv4 side has a binding to hit.
        let out = go(&n, &udp6(v6(A), p.addr("8.8.8.8"), 64, b"q")).one();
        let t = u16::from_be_bytes([out[20], out[21]]);
        let sessions = n.session_count();
        for a in SPECIAL {
            // From a special source to the bound port and to the port forward.
            let mut reply = udp4(v4(a), v4(T), 64, b"r");
            reply[20..22].copy_from_slice(&53u16.to_be_bytes());
            reply[22..24].copy_from_slice(&t.to_be_bytes());
            fix_udp4(&mut reply);
            assert_eq!(
                go(&n, &reply).dropped(),
                DropReason::SpecialAddress,
                "{p:?} udp from {a}"
            );
            assert_eq!(
                go(&n, &syn4(v4(a), v4(T))).dropped(),
                DropReason::SpecialAddress,
                "{p:?} syn from {a} to the port forward"
            );
            assert_eq!(
                go(&n, &echo4_reply(v4(a), v4(T), b"x")).dropped(),
                DropReason::SpecialAddress,
                "{p:?} echo reply from {a}"
            );
            // To a special destination (never pool4, but the reason names the address).
            assert_eq!(
                go(&n, &udp4(v4("8.8.8.8"), v4(a), 64, b"x")).dropped(),
                DropReason::SpecialAddress,
                "{p:?} udp to {a}"
            );
        }
        assert_eq!(n.session_count(), sessions, "{p:?}: no new state");
        // The genuine reply still passes.
        let mut reply = udp4(v4("8.8.8.8"), v4(T), 64, b"r");
        reply[20..22].copy_from_slice(&53u16.to_be_bytes());
        reply[22..24].copy_from_slice(&t.to_be_bytes());
        fix_udp4(&mut reply);
        let back = go(&n, &reply).one();
        assert_eq!(&back[8..24], &p.addr("8.8.8.8"), "{p:?}");
        assert_eq!(&back[24..40], &v6(A), "{p:?}");
    }
}

/// Recomputes the UDP checksum of an IPv4 packet (20-byte header) after ports were edited.
fn fix_udp4(p: &mut [u8]) {
    p[26] = 0;
    p[27] = 0;
    let len = p.len() - 20;
    let mut s = sum16(&p[12..20]) + 17 + len as u32 + sum16(&p[20..]);
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    let c = !(s as u16);
    let c = if c == 0 { 0xffff } else { c };
    p[26..28].copy_from_slice(&c.to_be_bytes());
}

/// An ICMPv4 Destination Unreachable (3/1) from `src` to `dst` quoting the UDP packet `inner`.
fn icmp4_error(src: &str, dst: &str, inner: &[u8]) -> Vec<u8> {
    let mut msg = vec![3u8, 1, 0, 0, 0, 0, 0, 0];
    msg.extend_from_slice(inner);
    set_icmp4_checksum(&mut msg);
    raw4(v4(src), v4(dst), 1, 64, false, false, 0, 9, &[], &msg)
}

#[test]
fn icmp4_errors_from_special_routers_are_still_translated() {
    // RFC 7915 §4.1: "when translating ICMPv4 Error Messages into ICMPv6, the 'illegal' source
    // address will be translated for the purpose of trouble shooting". Behind the WKP in strict
    // mode RFC 6052 §3.1 forbids writing it; there the error takes `xlat.icmp_src6`.
    let own: std::net::Ipv6Addr = "2001:db8:ffff::1".parse().unwrap();
    for p in PREFS {
        let n = nat(p, |c| c.xlat.icmp_src6 = Some(own));
        let out = go(&n, &udp6(v6(A), p.addr("8.8.8.8"), 64, b"q")).one();
        for a in ["0.0.0.0", "127.0.0.1", "169.254.1.1", "0.1.2.3"] {
            let e = icmp4_error(a, T, &out);
            let got = go(&n, &e).one();
            let want = match p {
                Pref::Wkp { strict: true } => own.octets(),
                _ => p.addr(a),
            };
            assert_eq!(&got[8..24], &want, "{p:?} outer source {a}");
            assert_eq!(&got[24..40], &v6(A), "{p:?} to the host");
            assert_eq!((got[40], got[41]), (1, 0), "{p:?} ICMPv6 1/0");
            // The quoted packet is the IPv6 original.
            assert_eq!(&got[48 + 8..48 + 24], &v6(A), "{p:?}");
            assert_eq!(&got[48 + 24..48 + 40], &p.addr("8.8.8.8"), "{p:?}");
            assert!(l4_ok_v6(&got), "{p:?} {a}");
        }
        // An error addressed to a special destination is not translated.
        let e = icmp4_error("8.8.8.8", "127.0.0.1", &out);
        assert_eq!(go(&n, &e).dropped(), DropReason::SpecialAddress, "{p:?}");
    }
}

#[test]
fn strict_wkp_error_from_a_special_router_without_icmp_src6_is_dropped() {
    // Nothing may represent 127.0.0.1 behind the WKP in strict mode and no own address is set:
    // the error is dropped with the RFC 6052 §3.1 reason, never written under the WKP.
    let n = nat(Pref::Wkp { strict: true }, |_| {});
    let out = go(&n, &udp6(v6(A), wkp("8.8.8.8"), 64, b"q")).one();
    let e = icmp4_error("127.0.0.1", T, &out);
    assert_eq!(go(&n, &e).dropped(), DropReason::WkpNonGlobal);
}

/// An ICMPv4 error of `type_`/`code` (rest of header `rest`) quoting `inner`.
fn icmp4_err(src: &str, dst: &str, type_: u8, code: u8, rest: [u8; 4], inner: &[u8]) -> Vec<u8> {
    let mut msg = vec![type_, code, 0, 0];
    msg.extend_from_slice(&rest);
    msg.extend_from_slice(inner);
    set_icmp4_checksum(&mut msg);
    raw4(v4(src), v4(dst), 1, 64, false, false, 0, 9, &[], &msg)
}

/// With the strict Well-Known Prefix, RFC 6052 §3.1 forbids writing a private or special
/// router address as 64:ff9b::R. Without `icmp_src6`, the error takes the pool4 address it was
/// sent to (the translator's own, global here) under the prefix, so a Fragmentation Needed
/// from a private router still becomes a Packet Too Big for the host (PMTUD works) and a
/// traceroute hop still answers; a configured `icmp_src6` comes first. The translation itself
/// follows RFC 7915 §4.2: 11/0 → 3/0, 3/4 → 2/0 with MTU + 20.
#[test]
fn strict_wkp_error_from_a_private_router_comes_from_the_pool4_address() {
    const G: &str = "9.9.9.1"; // a global pool4 address (bytes only: no traffic leaves)
    let mk = |src6: Option<&str>| {
        let mut c = Nat64Config::new(
            Pool6::new(vec![Prefix6052::WKP], true).unwrap(),
            vec![G.parse().unwrap()],
            99,
        );
        c.max_sessions = 1000;
        c.max_sessions_per_host = 100;
        c.shards = 2;
        c.xlat.ipv6_mtu = 1500;
        c.xlat.icmp_src6 = src6.map(|a| a.parse().unwrap());
        Nat64::new(c).unwrap()
    };
    for own in [None, Some("2001:db8:ffff::1")] {
        let n = mk(own);
        let out = go(&n, &udp6(v6(A), wkp("8.8.8.8"), 64, &[0x55; 1400])).one();
        assert_eq!(&out[12..16], &v4(G));
        let want_src = match own {
            None => wkp(G),
            Some(a) => v6(a),
        };
        for r in [
            "10.1.2.3",
            "172.16.5.5",
            "192.168.0.1",
            "100.64.0.1",
            "127.0.0.1",
            "0.0.0.0",
        ] {
            // Time Exceeded in transit.
            let got = go(&n, &icmp4_err(r, G, 11, 0, [0; 4], &out)).one();
            assert_eq!(&got[8..24], &want_src, "{own:?} {r}: source");
            assert_eq!(&got[24..40], &v6(A), "{r}: to the host");
            assert_eq!((got[6], got[40], got[41]), (58, 3, 0), "{r}: 11/0 -> 3/0");
            assert_eq!(&got[48 + 8..48 + 24], &v6(A), "{r}: quotes the original");
            assert!(l4_ok_v6(&got), "{r}: ICMPv6 checksum");
            // Fragmentation Needed, next-hop MTU 1400 (RFC 1191 field in bytes 6..8).
            let got = go(&n, &icmp4_err(r, G, 3, 4, [0, 0, 0x05, 0x78], &out)).one();
            assert_eq!(&got[8..24], &want_src, "{own:?} {r}: source");
            assert_eq!((got[40], got[41]), (2, 0), "{r}: 3/4 -> Packet Too Big");
            let mtu = u32::from_be_bytes([got[44], got[45], got[46], got[47]]);
            assert_eq!(mtu, 1420, "{r}: MTU + 20");
            assert!(l4_ok_v6(&got), "{r}: ICMPv6 checksum");
        }
        // A global router keeps its own address.
        let got = go(&n, &icmp4_err("8.8.4.4", G, 11, 0, [0; 4], &out)).one();
        assert_eq!(&got[8..24], &wkp("8.8.4.4"));
    }
}
