//! RFC 7915 edge cases (issue 8): special addresses, fragments and MTUs, discard errors, protocol
//! symmetry and ICMP error details, in both modes. Inputs are built with etherparse or written
//! byte by byte from the RFCs; outputs are checked with the independent sums of `common`.

mod common;
use common::*;
use etherparse::PacketBuilder;
use nat64_core::nat64::{Nat64, Nat64Config};
use nat64_core::pool6::Pool6;
use nat64_core::rfc6052::Prefix6052;
use nat64_core::rfc7915::DiscardErrors;
use nat64_core::siit::{Siit, SiitConfig};
use nat64_core::{packets, Ctx, DropReason, Timestamp, Verdict, AUX_LEN, HEADROOM};

const T: &str = "192.0.2.1";
const A: &str = "2001:db8:1::a";

fn nat_with(f: impl FnOnce(&mut Nat64Config)) -> Nat64 {
    let pool6 = Pool6::new(vec![Prefix6052::WKP], false).unwrap();
    let mut c = Nat64Config::new(pool6, vec![T.parse().unwrap()], 99);
    c.max_sessions = 1000;
    c.max_sessions_per_host = 100;
    c.shards = 2;
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

fn siit_with(f: impl FnOnce(&mut SiitConfig)) -> Siit {
    let mut c = config(false);
    f(&mut c);
    Siit::new(c)
}

/// A pool6 of one network-specific prefix 2001:db8:64::/96 (and the test EAMs).
fn nsp(strict: bool) -> Siit {
    siit_with(|c| {
        c.pool6 = Pool6::new(
            vec![Prefix6052::new("2001:db8:64::".parse().unwrap(), 96).unwrap()],
            strict,
        )
        .unwrap()
    })
}

fn nsp6(a: &str) -> [u8; 16] {
    let mut o = v6("2001:db8:64::");
    o[12..].copy_from_slice(&v4(a));
    o
}

const SPECIAL: [&str; 7] = [
    "0.0.0.0",
    "0.1.2.3",
    "127.0.0.1",
    "169.254.169.254",
    "224.0.0.5",
    "239.1.2.3",
    "255.255.255.255",
];

// ------------------------------------------------------------ special addresses (§4.1, §5.1)

#[test]
fn special_ipv4_destinations_are_not_translated_6to4() {
    for strict in [false, true] {
        for a in SPECIAL {
            // WKP (non-strict: the §3.1 check does not apply) and a network-specific prefix.
            let wk = siit_with(|c| c.pool6 = Pool6::new(vec![Prefix6052::WKP], strict).unwrap());
            let p = udp6(v6(V6_CLIENT), wkp(a), 64, b"x");
            assert_eq!(
                run_with(&wk, &p).dropped(),
                DropReason::SpecialAddress,
                "{a}"
            );
            let p = udp6(v6(V6_CLIENT), nsp6(a), 64, b"x");
            assert_eq!(
                run_with(&nsp(strict), &p).dropped(),
                DropReason::SpecialAddress,
                "{a}"
            );
            // The same address as the IPv6 source.
            let p = udp6(nsp6(a), v6(V6_EAM_SERVER), 64, b"x");
            let o = run_with(&nsp(strict), &p);
            assert_eq!(o.dropped(), DropReason::SpecialAddress, "src {a}");
        }
    }
    // An ordinary address behind the same prefix still goes through.
    let p = udp6(v6(V6_CLIENT), nsp6(V4_SERVER), 64, b"x");
    run_with(&nsp(true), &p).one();
}

#[test]
fn special_ipv4_sources_and_destinations_are_not_translated_4to6() {
    for a in SPECIAL {
        let p = udp4(v4(a), v4(T), 64, b"x");
        assert_eq!(run(&p).dropped(), DropReason::SpecialAddress, "src {a}");
        let p = udp4(v4(V4_SERVER), v4(a), 64, b"x");
        assert_eq!(run(&p).dropped(), DropReason::SpecialAddress, "dst {a}");
    }
}

#[test]
fn special_addresses_are_not_translated_in_nat64_mode() {
    let n = nat_with(|_| {});
    for a in SPECIAL {
        let p = udp6(v6(A), wkp(a), 64, b"x");
        assert_eq!(go(&n, &p).dropped(), DropReason::SpecialAddress, "6->4 {a}");
        let p = udp4(v4(a), v4(T), 64, b"x");
        assert_eq!(
            go(&n, &p).dropped(),
            DropReason::SpecialAddress,
            "4->6 src {a}"
        );
    }
    assert_eq!(n.session_count(), 0, "no state for a refused packet");
}

/// An ICMPv4 error (type 3 code 1) from `src` about a UDP packet `inner_src` -> `inner_dst`.
fn icmp4_error(src: &str, dst: &str, inner_src: &str, inner_dst: &str) -> Vec<u8> {
    let inner = udp4(v4(inner_src), v4(inner_dst), 63, b"abcdefgh");
    let mut msg = vec![3u8, 1, 0, 0, 0, 0, 0, 0];
    msg.extend_from_slice(&inner);
    set_icmp4_checksum(&mut msg);
    raw4(v4(src), v4(dst), 1, 64, false, false, 0, 9, &[], &msg)
}

#[test]
fn icmp4_error_from_unspecified_source_is_translated() {
    // §4.1: "when translating ICMPv4 Error Messages into ICMPv6, the 'illegal' source address
    // will be translated for the purpose of trouble shooting".
    let p = icmp4_error("0.0.0.0", "192.0.2.1", "192.0.2.1", V4_SERVER);
    let out = run(&p).one();
    assert_eq!(&out[8..24], &wkp("0.0.0.0"), "outer source embedded as is");
    assert_eq!(&out[24..40], &v6(V6_CLIENT));
    assert_eq!((out[40], out[41]), (1, 0));
    assert!(l4_ok_v6(&out));
    // Special addresses inside the quoted packet are translated too.
    let p = icmp4_error(V4_SERVER, "192.0.2.1", "192.0.2.1", "169.254.169.254");
    let out = run(&p).one();
    assert_eq!(&out[48 + 24..48 + 40], &wkp("169.254.169.254"));
    assert!(l4_ok_v6(&out));
}

// ------------------------------------------------------------------ fragments and MTUs

fn be16(p: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([p[at], p[at + 1]])
}

/// Reassembles IPv6 fragments (no other extension headers): (first offset in bytes, payload).
fn reassemble6(frags: &[Vec<u8>]) -> (usize, Vec<u8>) {
    let mut parts: Vec<(usize, &[u8])> = frags
        .iter()
        .map(|f| {
            assert_eq!(f[6], 44, "every packet carries a Fragment header");
            assert_eq!(usize::from(be16(f, 4)) + 40, f.len());
            (usize::from(be16(f, 42) & !7), &f[48..])
        })
        .collect();
    parts.sort_by_key(|p| p.0);
    let first = parts[0].0;
    let mut out = Vec::new();
    for (off, data) in parts {
        assert_eq!(off, first + out.len(), "contiguous fragments");
        out.extend_from_slice(data);
    }
    (first, out)
}

#[test]
fn v4_fragment_is_refragmented_to_fit_with_its_fragment_header() {
    // A non-first UDP fragment whose IPv4 payload is 1233..1240 bytes: as one IPv6 fragment it
    // would be 1281..1288 bytes (40 + 8 + payload), over the default lowest-ipv6-mtu 1280.
    for n in [1233usize, 1236, 1240] {
        let payload: Vec<u8> = (0..n).map(|i| i as u8).collect();
        let p = raw4(
            v4(V4_SERVER),
            v4(T),
            17,
            64,
            false,
            true,
            100,
            0x4242,
            &[],
            &payload,
        );
        let Out::Packets(frags) = run(&p) else {
            panic!("not forwarded")
        };
        for f in &frags {
            assert!(f.len() <= 1280, "{n}: a {}-byte fragment", f.len());
            assert_eq!(&f[44..48], &[0, 0, 0x42, 0x42], "identification kept");
        }
        let (off, data) = reassemble6(&frags);
        assert_eq!(off, 800, "the original offset");
        assert_eq!(data, payload);
        assert_eq!(
            be16(frags.last().unwrap(), 42) & 1,
            1,
            "M kept on the last piece"
        );
    }
}

#[test]
fn v4_df_clear_is_fragmented_to_the_smaller_of_both_mtus() {
    let s = siit_with(|c| {
        c.xlat.lowest_ipv6_mtu = 1500;
        c.xlat.ipv6_mtu = 1400;
    });
    let seg = udp4(v4(V4_SERVER), v4(T), 64, &[9u8; 1422])[20..].to_vec();
    let p = raw4(v4(V4_SERVER), v4(T), 17, 64, false, false, 0, 3, &[], &seg); // 1450, DF=0
    let Out::Packets(frags) = run_with(&s, &p) else {
        panic!()
    };
    assert!(frags.len() >= 2);
    for f in &frags {
        assert!(f.len() <= 1400, "{}-byte fragment over ipv6_mtu", f.len());
    }
    assert_eq!(reassemble6(&frags).1.len(), 1430);
}

#[test]
fn v4_df_set_fragment_too_big_gets_fragmentation_needed() {
    // First fragment with DF=1 (and MF=1): 20 + 1464 bytes; as IPv6: 40 + 8 + 1464 > 1500.
    let mut seg = udp4(v4(V4_SERVER), v4(T), 64, &[3u8; 1456])[20..].to_vec();
    seg.truncate(1464);
    let p = raw4(v4(V4_SERVER), v4(T), 17, 64, true, true, 0, 77, &[], &seg);
    let (err, reason) = run(&p).error();
    assert_eq!(reason, DropReason::PacketTooBig);
    assert_eq!((err[20], err[21]), (3, 4), "Fragmentation Needed");
    assert_eq!(
        be16(&err, 26),
        1500 - 28,
        "room for the IPv6 and Fragment headers"
    );
    assert_eq!(&err[16..20], &v4(V4_SERVER));
    assert!(l4_ok_v4(&err));
}

#[test]
fn v6_to_v4_enforces_ipv4_mtu() {
    let s = siit_with(|c| c.xlat.ipv4_mtu = 1300);
    // 1400-byte IPv6 packet -> 1380 IPv4 with DF=1: Packet Too Big, MTU 1320.
    let p = udp6(v6(V6_CLIENT), wkp(V4_SERVER), 64, &[5u8; 1352]);
    let (err, reason) = run_with(&s, &p).error();
    assert_eq!(reason, DropReason::PacketTooBig);
    assert_eq!((err[40], err[41]), (2, 0));
    assert_eq!(&err[44..48], &1320u32.to_be_bytes());
    assert_eq!(err.len(), 1280, "RFC 4443 §2.4(c)");
    assert_eq!(&err[48..], &p[..1232], "quotes the packet as received");
    assert!(l4_ok_v6(&err));
    // Below 1280 bytes of IPv6 the IPv4 packet has DF=0: §5.1.1 says fragment it.
    let s = siit_with(|c| c.xlat.ipv4_mtu = 576);
    let payload: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
    let p = udp6(v6(V6_CLIENT), wkp(V4_SERVER), 64, &payload);
    let Out::Packets(frags) = run_with(&s, &p) else {
        panic!()
    };
    assert!(frags.len() >= 2);
    let mut whole = Vec::new();
    for (i, f) in frags.iter().enumerate() {
        assert!(f.len() <= 576);
        assert!(v4_header_ok(f));
        assert_eq!(usize::from(be16(f, 6) & 0x1fff) * 8, whole.len());
        assert_eq!(be16(f, 6) & 0x2000 != 0, i + 1 < frags.len(), "MF");
        assert_eq!(be16(f, 4), be16(&frags[0], 4), "one identification");
        whole.extend_from_slice(&f[20..]);
    }
    // The reassembled datagram verifies against the translated addresses.
    let mut r = frags[0][..20].to_vec();
    r.extend_from_slice(&whole);
    let tl = r.len() as u16;
    r[2..4].copy_from_slice(&tl.to_be_bytes());
    assert!(l4_ok_v4(&r));
    assert_eq!(&whole[8..], &payload[..]);
}

#[test]
fn icmpv6_atomic_fragment_is_translated() {
    // RFC 6946 §4: offset 0 and M=0 is a whole packet. The ICMPv6 message (with its checksum,
    // which covers the upper-layer length, not the Fragment header) comes from etherparse.
    let echo = echo6(v6(V6_CLIENT), wkp(V4_SERVER), b"atomic");
    let p = frag6(
        v6(V6_CLIENT),
        wkp(V4_SERVER),
        58,
        0,
        false,
        0x0001_2345,
        &echo[40..],
    );
    let out = run(&p).one();
    assert_eq!(out[9], 1);
    assert_eq!(out[20], 8, "echo request");
    assert_eq!(
        be16(&out, 4),
        0x2345,
        "§5.1.1: identification from the Fragment header"
    );
    assert_eq!(be16(&out, 6), 0, "§5.1.1: DF cleared, MF 0, offset 0");
    assert!(l4_ok_v4(&out));
    // A real fragment of ICMPv6 is still refused (§1.2).
    let p = frag6(v6(V6_CLIENT), wkp(V4_SERVER), 58, 0, true, 5, &echo[40..]);
    assert!(matches!(
        run(&p),
        Out::Error(_, DropReason::FragmentedIcmp) | Out::Drop(DropReason::FragmentedIcmp)
    ));
}

#[test]
fn extension_header_after_fragment_header_is_answered() {
    // Fragment header (offset 0, M=1) followed by a Destination Options header, then UDP.
    let udp = udp6(v6(V6_CLIENT), wkp(V4_SERVER), 64, &[1u8; 16]);
    let mut rest = vec![17u8, 0, 1, 4, 0, 0, 0, 0]; // dest opts: next UDP, PadN
    rest.extend_from_slice(&udp[40..]);
    let p = frag6(v6(V6_CLIENT), wkp(V4_SERVER), 60, 0, true, 9, &rest);
    let (err, reason) = run(&p).error();
    assert_eq!(reason, DropReason::FragmentExtensionHeader);
    assert_eq!(
        (err[40], err[41]),
        (1, 1),
        "§5.4: Destination Unreachable 1/1"
    );
    assert_eq!(&err[24..40], &v6(V6_CLIENT));
    assert!(l4_ok_v6(&err));
    // A later fragment: dropped (no error about non-first fragments).
    let p = frag6(v6(V6_CLIENT), wkp(V4_SERVER), 60, 4, false, 9, &rest);
    assert_eq!(run(&p).dropped(), DropReason::FragmentExtensionHeader);
}

#[test]
fn ipv6_payload_length_zero_is_translated_unless_jumbogram() {
    // No Next Header (59) with an empty payload.
    let p = raw6(v6(V6_CLIENT), wkp(V4_SERVER), 59, 64, &[]);
    let out = run(&p).one();
    assert_eq!(out.len(), 20);
    assert_eq!((out[9], be16(&out, 2)), (59, 20));
    assert!(v4_header_ok(&out));
    // RFC 2675: payload length 0 with a Hop-by-Hop header carrying a Jumbo Payload option.
    let mut jumbo = raw6(v6(V6_CLIENT), wkp(V4_SERVER), 0, 64, &[]);
    jumbo.extend_from_slice(&[17, 0, 0xc2, 4, 0, 0, 0x01, 0]);
    jumbo.extend_from_slice(&[0u8; 8]);
    assert_eq!(run(&jumbo).dropped(), DropReason::Ipv6BadPayloadLength);
}

#[test]
fn fragmented_zero_checksum_udp_is_answered() {
    // §4.5: a first fragment of UDP with checksum 0 cannot be fixed; §4.4: 3/13.
    let mut seg = udp4(v4(V4_SERVER), v4(T), 64, &[1u8; 32])[20..].to_vec();
    seg[6] = 0;
    seg[7] = 0;
    let p = raw4(v4(V4_SERVER), v4(T), 17, 64, false, true, 0, 5, &[], &seg);
    let (err, reason) = run(&p).error();
    assert_eq!(reason, DropReason::FragmentedZeroChecksumUdp);
    assert_eq!((err[20], err[21]), (3, 13));
    assert_eq!(&err[16..20], &v4(V4_SERVER));
    assert_eq!(&err[28..], &p[..]);
    assert!(l4_ok_v4(&err));
}

// --------------------------------------------------------- RFC 8200 §8.1: UDP checksum 0

#[test]
fn ipv6_udp_with_zero_checksum_is_dropped_in_both_modes() {
    let mut p = udp6(v6(V6_CLIENT), wkp(V4_SERVER), 64, b"zero");
    p[46] = 0;
    p[47] = 0;
    assert_eq!(run(&p).dropped(), DropReason::Ipv6ZeroChecksumUdp);
    let mut p = udp6(v6(A), wkp(V4_SERVER), 64, b"zero");
    p[46] = 0;
    p[47] = 0;
    let n = nat_with(|_| {});
    assert_eq!(go(&n, &p).dropped(), DropReason::Ipv6ZeroChecksumUdp);
}

// ------------------------------------------------------------- §4.4/§5.4 discard errors

#[test]
fn untranslatable_destination_is_answered_per_policy() {
    let p = udp6(v6(V6_CLIENT), v6("2001:db8:99::1"), 64, b"x");
    let (err, reason) = run(&p).error();
    assert_eq!(reason, DropReason::UntranslatableDestination);
    assert_eq!((err[40], err[41]), (1, 1), "§5.4: 1/1");
    assert_eq!(&err[48..], &p[..]);
    assert!(l4_ok_v6(&err));
    // 4->6: WKP strict refuses a non-global source: 3/13.
    let p = udp4(v4("10.1.2.3"), v4(T), 64, b"x");
    let (err, reason) = run_with(&Siit::new(config(true)), &p).error();
    assert_eq!(reason, DropReason::WkpNonGlobal);
    assert_eq!((err[20], err[21]), (3, 13), "§4.4: 3/13");
    assert!(l4_ok_v4(&err));

    // The switch: off, rate-limited (the default), sent.
    let p = udp6(v6(V6_CLIENT), v6("2001:db8:99::1"), 64, b"x");
    let count = |policy: DiscardErrors| {
        let s = siit_with(|c| {
            c.xlat.discard_errors = policy;
            c.xlat.icmp_errors_per_sec = 2;
        });
        let mut ctx = Ctx::new(Timestamp(1_000), 7);
        let mut n = 0;
        for _ in 0..5 {
            let mut buf = vec![0u8; HEADROOM + p.len()];
            buf[HEADROOM..].copy_from_slice(&p);
            let mut aux = vec![0u8; AUX_LEN];
            match s.translate(&mut ctx, &mut buf, HEADROOM, p.len(), &mut aux) {
                Verdict::IcmpError { .. } => n += 1,
                Verdict::Drop(DropReason::UntranslatableDestination) => {}
                v => panic!("{v:?}"),
            }
        }
        n
    };
    assert_eq!(count(DiscardErrors::Off), 0);
    assert_eq!(count(DiscardErrors::RateLimited), 2);
    assert_eq!(count(DiscardErrors::Sent), 5);
}

#[test]
fn illegal_sources_stay_silent() {
    // §4.1/§5.1: "SHOULD silently discard".
    assert!(matches!(
        run(&udp4(v4("127.0.0.1"), v4(T), 64, b"x")),
        Out::Drop(DropReason::SpecialAddress)
    ));
    assert!(matches!(
        run(&udp6(wkp("0.0.0.1"), v6(V6_EAM_SERVER), 64, b"x")),
        Out::Drop(DropReason::SpecialAddress)
    ));
}

// ------------------------------------------------------------- symmetric protocol rules

#[test]
fn protocols_of_the_other_ip_version_are_refused_alike() {
    // ICMPv4 (1) carried by IPv6, ICMPv6 (58) carried by IPv4: both refused with one reason and
    // §4.4/§5.4's error.
    let echo4 = {
        let mut v = Vec::new();
        PacketBuilder::ipv4(v4(V4_SERVER), v4(T), 64)
            .icmpv4_echo_request(1, 1)
            .write(&mut v, b"x")
            .unwrap();
        v
    };
    let p = raw6(v6(V6_CLIENT), wkp(V4_SERVER), 1, 64, &echo4[20..]);
    let (err, r) = run(&p).error();
    assert_eq!((r, err[40], err[41]), (DropReason::ProtocolMismatch, 1, 1));
    let echo = echo6(v6(V6_CLIENT), wkp(V4_SERVER), b"x");
    let p = raw4(
        v4(V4_SERVER),
        v4(T),
        58,
        64,
        false,
        false,
        0,
        1,
        &[],
        &echo[40..],
    );
    let (err, r) = run(&p).error();
    assert_eq!((r, err[20], err[21]), (DropReason::ProtocolMismatch, 3, 13));
    // ICMP errors quoting such a packet follow the same rule (and are never answered).
    let inner = raw4(
        v4(T),
        v4(V4_SERVER),
        58,
        63,
        false,
        false,
        0,
        1,
        &[],
        &echo[40..],
    );
    let mut msg = vec![3u8, 1, 0, 0, 0, 0, 0, 0];
    msg.extend_from_slice(&inner);
    set_icmp4_checksum(&mut msg);
    let p = raw4(v4(V4_SERVER), v4(T), 1, 64, false, false, 0, 2, &[], &msg);
    assert_eq!(run(&p).dropped(), DropReason::ProtocolMismatch);
    let inner6 = raw6(wkp(V4_SERVER), v6(V6_CLIENT), 1, 63, &echo4[20..]);
    let mut err6 = Vec::new();
    PacketBuilder::ipv6(wkp(V4_SERVER), v6(V6_CLIENT), 64)
        .icmpv6(etherparse::Icmpv6Type::DestinationUnreachable(
            etherparse::icmpv6::DestUnreachableCode::Port,
        ))
        .write(&mut err6, &inner6)
        .unwrap();
    // From the IPv6 side: the error quotes a packet the IPv6 host received.
    let mut e = Vec::new();
    PacketBuilder::ipv6(v6(V6_CLIENT), wkp(V4_SERVER), 64)
        .icmpv6(etherparse::Icmpv6Type::DestinationUnreachable(
            etherparse::icmpv6::DestUnreachableCode::Port,
        ))
        .write(
            &mut e,
            &raw6(wkp(V4_SERVER), v6(V6_CLIENT), 1, 63, &echo4[20..]),
        )
        .unwrap();
    assert_eq!(run(&e).dropped(), DropReason::ProtocolMismatch);
    let _ = err6;
}

// ------------------------------------------------------------------------- ICMP errors

#[test]
fn translated_icmp_errors_are_hairpinned_too() {
    // RFC 7757 §4.2.2: the IPv6-only server 2001:db8:e::5 (EAM 192.0.2.133) answers a
    // hairpinned packet from 64:ff9b::192.0.2.1 (the client 2001:db8:1::1 under its EAM) with
    // Port Unreachable. The translated error's quoted source (192.0.2.1) is itself an EAM.
    let quoted = udp6(wkp("192.0.2.1"), v6(V6_EAM_SERVER), 63, b"q");
    let mut e = Vec::new();
    PacketBuilder::ipv6(v6(V6_EAM_SERVER), wkp("192.0.2.1"), 64)
        .icmpv6(etherparse::Icmpv6Type::DestinationUnreachable(
            etherparse::icmpv6::DestUnreachableCode::Port,
        ))
        .write(&mut e, &quoted)
        .unwrap();
    let out = run(&e).one();
    assert_eq!(out[0] >> 4, 6, "back to IPv6, not out of the IPv4 side");
    assert_eq!((out[40], out[41]), (1, 4), "port unreachable");
    // §4.2.1 rule 3: the outer source is the quoted destination, so not through the EAM.
    assert_eq!(&out[8..24], &wkp(V4_EAM_SERVER));
    assert_eq!(&out[24..40], &v6(V6_CLIENT));
    assert_eq!(out[7], 63, "hop limit decremented once");
    // Rule 2: the quoted packet as the client sent it.
    assert_eq!(&out[48 + 8..48 + 24], &v6(V6_CLIENT));
    assert_eq!(&out[48 + 24..48 + 40], &wkp(V4_EAM_SERVER));
    assert!(l4_ok_v6(&out));
}

/// ICMPv4 Time Exceeded about a `n`-byte datagram with an RFC 4884 extension of `x` bytes.
fn te4_with_extension(n: usize, x: usize) -> (Vec<u8>, Vec<u8>) {
    let dgram = udp4(v4("192.0.2.1"), v4(V4_SERVER), 1, &vec![7u8; n - 28]);
    let ext: Vec<u8> = (0..x)
        .map(|i| if i == 0 { 0x20 } else { i as u8 })
        .collect();
    let mut msg = vec![11u8, 0, 0, 0, 0, (n / 4) as u8, 0, 0];
    msg.extend_from_slice(&dgram);
    msg.extend_from_slice(&ext);
    set_icmp4_checksum(&mut msg);
    let p = raw4(
        v4("198.51.100.1"),
        v4("192.0.2.1"),
        1,
        64,
        false,
        false,
        0,
        4,
        &[],
        &msg,
    );
    (p, ext)
}

#[test]
fn rfc4884_quote_is_shortened_to_keep_the_extension() {
    // 1000-byte datagram (1020 once translated) + 300-byte extension > 1232 bytes of room.
    let (p, ext) = te4_with_extension(1000, 300);
    let out = run(&p).one();
    assert!(out.len() <= 1280);
    let words = usize::from(out[44]);
    assert!(
        words * 8 >= 128,
        "RFC 4884: at least 128 bytes of the datagram"
    );
    assert_eq!(
        words * 8,
        (1232 - 300) & !7,
        "the quote shortened to what fits"
    );
    assert_eq!(&out[48 + words * 8..], &ext[..], "extension kept whole");
    assert_eq!(
        &out[48 + 8..48 + 24],
        &v6(V6_CLIENT),
        "quoted header translated"
    );
    assert!(l4_ok_v6(&out));
    // IPv6 -> IPv4: the 576-byte cap of RFC 1812 §4.3.2.3.
    let quoted = udp6(wkp(V4_SERVER), v6(V6_CLIENT), 1, &[3u8; 552]); // 600 bytes
    let ext6: Vec<u8> = (0..200)
        .map(|i| if i == 0 { 0x20 } else { i as u8 })
        .collect();
    let mut body = quoted.clone();
    body.extend_from_slice(&ext6);
    let mut e = Vec::new();
    PacketBuilder::ipv6(v6("2001:db8:1::ff"), wkp(V4_SERVER), 64)
        .icmpv6(etherparse::Icmpv6Type::TimeExceeded(
            etherparse::icmpv6::TimeExceededCode::HopLimitExceeded,
        ))
        .write(&mut e, &body)
        .unwrap();
    // RFC 4884 length (64-bit words) in octet 4 of the ICMPv6 header; fix the checksum.
    e[44] = (600 / 8) as u8;
    e[42] = 0;
    e[43] = 0;
    let plen = e.len() - 40;
    let c = !fold16(sum16(&e[8..40]) + 58 + plen as u32 + sum16(&e[40..]));
    e[42..44].copy_from_slice(&c.to_be_bytes());
    // The router's source comes from the RFC 6791 pool.
    let out = match run(&e) {
        Out::Packets(mut v) => v.remove(0),
        o => panic!("{o:?}"),
    };
    assert!(out.len() <= 576);
    let words = usize::from(out[25]);
    assert!(words * 4 >= 128);
    assert_eq!(&out[28 + words * 4..], &ext6[..]);
    assert!(l4_ok_v4(&out));
}

fn fold16(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

#[test]
fn icmp6_error_from_unmappable_router_falls_back_to_icmp_src4() {
    let quoted = udp6(wkp(V4_SERVER), v6(V6_CLIENT), 1, b"trace");
    let mut e = Vec::new();
    PacketBuilder::ipv6(v6("2001:db8:ffff::1"), wkp(V4_SERVER), 64)
        .icmpv6(etherparse::Icmpv6Type::TimeExceeded(
            etherparse::icmpv6::TimeExceededCode::HopLimitExceeded,
        ))
        .write(&mut e, &quoted)
        .unwrap();
    let no_pool = |src4: Option<&str>| {
        siit_with(|c| {
            c.rfc6791 = Default::default();
            c.xlat.icmp_src4 = src4.map(|a| a.parse().unwrap());
        })
    };
    assert_eq!(
        run_with(&no_pool(None), &e).refused(),
        DropReason::UntranslatableSource
    );
    let out = run_with(&no_pool(Some("203.0.113.77")), &e).one();
    assert_eq!((out[20], out[21]), (11, 0));
    assert_eq!(&out[12..16], &v4("203.0.113.77"));
    assert_eq!(&out[16..20], &v4(V4_SERVER));
    assert!(l4_ok_v4(&out));
}

/// An EAM-only SIIT (RFC 7756 SIIT-DC): no pool6, the test EAMs.
fn eam_only(v6_pool: Option<&str>, icmp_src6: Option<&str>) -> Siit {
    siit_with(|c| {
        c.pool6 = Pool6::none(false);
        if let Some(p) = v6_pool {
            c.rfc6791 = std::mem::take(&mut c.rfc6791)
                .with_v6(p.parse().unwrap(), 96)
                .unwrap();
        }
        c.xlat.icmp_src6 = icmp_src6.map(|a| a.parse().unwrap());
    })
}

#[test]
fn eam_only_siit_and_the_ipv6_pool_for_icmpv4_errors() {
    // Ordinary traffic between EAM-mapped hosts works without pool6.
    let p = udp6(v6(V6_CLIENT), v6(V6_EAM_SERVER), 64, b"dc");
    let out = run_with(&eam_only(None, None), &p).one();
    assert_eq!(&out[12..16], &v4("192.0.2.1"));
    assert_eq!(&out[16..20], &v4(V4_EAM_SERVER));
    // An unmapped IPv4 source has no IPv6 form.
    let p = udp4(v4(V4_SERVER), v4("192.0.2.1"), 64, b"x");
    assert_eq!(
        run_with(&eam_only(None, None), &p).refused(),
        DropReason::UntranslatableSource
    );
    // An ICMPv4 error from an IPv4 router 198.51.100.1 about a packet 192.0.2.1 -> 192.0.2.133.
    let e = icmp4_error("198.51.100.1", "192.0.2.1", "192.0.2.1", V4_EAM_SERVER);
    assert_eq!(
        run_with(&eam_only(None, None), &e).refused(),
        DropReason::UntranslatableSource
    );
    let out = run_with(&eam_only(Some("2001:db8:ffff::"), None), &e).one();
    assert_eq!(
        &out[8..24],
        &v6("2001:db8:ffff::c633:6401"),
        "router in the pool"
    );
    assert_eq!(&out[24..40], &v6(V6_CLIENT));
    assert_eq!(&out[48 + 24..48 + 40], &v6(V6_EAM_SERVER));
    assert!(l4_ok_v6(&out));
    // Without the pool, the translator's own icmp_src6.
    let out = run_with(&eam_only(None, Some("2001:db8:64::1")), &e).one();
    assert_eq!(&out[8..24], &v6("2001:db8:64::1"));
    assert!(l4_ok_v6(&out));
}

#[test]
fn nat64_hairpins_translated_icmp_errors() {
    // RFC 6146 §3.8 for every output: A (2001:db8:1::a) reaches B (2001:db8:1::b, static BIB
    // udp 192.0.2.1:2000) through the pool4 address; B's Port Unreachable must come back to A as
    // ICMPv6, not leave the IPv4 side addressed to the gateway's own pool4.
    let b: std::net::Ipv6Addr = "2001:db8:1::b".parse().unwrap();
    let n = nat_with(|c| {
        c.static_bib.push(nat64_core::nat64::bib::StaticBib {
            proto: nat64_core::nat64::Proto::Udp,
            v6: (b, 53),
            v4: (T.parse().unwrap(), 2000),
        })
    });
    let mut p = Vec::new();
    PacketBuilder::ipv6(v6(A), wkp(T), 64)
        .udp(1000, 2000)
        .write(&mut p, b"hello")
        .unwrap();
    let got = go(&n, &p).one();
    assert_eq!(&got[24..40], &b.octets(), "hairpinned to B");
    assert_eq!(&got[8..24], &wkp(T));
    let mut e = Vec::new();
    PacketBuilder::ipv6(b.octets(), wkp(T), 64)
        .icmpv6(etherparse::Icmpv6Type::DestinationUnreachable(
            etherparse::icmpv6::DestUnreachableCode::Port,
        ))
        .write(&mut e, &got)
        .unwrap();
    let out = go(&n, &e).one();
    assert_eq!(out[0] >> 4, 6, "translated back to IPv6");
    assert_eq!((out[40], out[41]), (1, 4));
    assert_eq!(
        &out[24..40],
        &v6(A),
        "to the host that sent the quoted packet"
    );
    assert_eq!(&out[8..24], &wkp(T));
    assert_eq!(&out[48 + 8..48 + 24], &v6(A), "quoted as A sent it");
    assert_eq!(be16(&out, 48 + 40), 1000);
    assert!(l4_ok_v6(&out));
}
