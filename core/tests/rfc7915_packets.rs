//! Packet tests for RFC 7915 through `Siit::translate`, inputs built with etherparse.

mod common;
use common::*;
use etherparse::{NetHeaders, PacketBuilder, PacketHeaders, TransportHeader};
use nat64_core::rfc7915::XlatConfig;
use nat64_core::siit::Siit;
use nat64_core::DropReason;

fn parse(p: &[u8]) -> PacketHeaders<'_> {
    PacketHeaders::from_ip_slice(p).expect("output re-parses")
}

// ---------------------------------------------------------------- §5: IPv6 → IPv4

#[test]
fn v6_udp_to_v4_header_fields_and_checksum() {
    let pkt = udp6(v6(V6_CLIENT), wkp(V4_SERVER), 64, b"hello world");
    let out = run(&pkt).one();
    let h = parse(&out);
    let Some(NetHeaders::Ipv4(ip, _)) = h.net else {
        panic!("not IPv4")
    };
    assert_eq!(
        ip.source,
        v4("192.0.2.1"),
        "source via the EAM 192.0.2.1 <-> 2001:db8:1::1"
    );
    assert_eq!(ip.destination, v4(V4_SERVER));
    assert_eq!(
        ip.time_to_live, 63,
        "§5.1: the translator decrements like a router"
    );
    assert!(!ip.dont_fragment, "§5.1: DF=0 at or below 1260 bytes");
    assert_ne!(
        ip.identification, 0,
        "§5.1: identification from a generator"
    );
    assert_eq!(usize::from(ip.total_len), 20 + 8 + 11);
    assert!(v4_header_ok(&out));
    assert!(
        l4_ok_v4(&out),
        "UDP checksum updated for the new pseudo-header"
    );
    let Some(TransportHeader::Udp(u)) = h.transport else {
        panic!()
    };
    assert_eq!((u.source_port, u.destination_port), (40000, 53));
    assert_eq!(h.payload.slice(), b"hello world");
}

#[test]
fn v6_large_packet_gets_df() {
    let pkt = udp6(v6(V6_CLIENT), wkp(V4_SERVER), 64, &[7u8; 1300]);
    let out = run(&pkt).one();
    let Some(NetHeaders::Ipv4(ip, _)) = parse(&out).net else {
        panic!()
    };
    assert!(ip.dont_fragment, "§5.1: DF=1 above 1260 bytes");
    assert!(l4_ok_v4(&out));
    // Exactly at the boundary: 1260 bytes is DF=0.
    let pkt = udp6(v6(V6_CLIENT), wkp(V4_SERVER), 64, &[7u8; 1260 - 28]);
    let Some(NetHeaders::Ipv4(ip, _)) = parse(&run(&pkt).one()).net else {
        panic!()
    };
    assert!(!ip.dont_fragment);
}

#[test]
fn v6_tcp_and_echo_to_v4() {
    let out = run(&tcp6(v6(V6_CLIENT), wkp(V4_SERVER), b"GET /")).one();
    assert!(l4_ok_v4(&out));
    let Some(TransportHeader::Tcp(t)) = parse(&out).transport else {
        panic!()
    };
    assert!(t.syn);
    let out = run(&echo6(v6(V6_CLIENT), wkp(V4_SERVER), b"ping payload")).one();
    assert_eq!(out[9], 1, "§5.1: ICMPv6 becomes ICMP");
    assert_eq!(out[20], 8, "§5.2: echo request 128 -> 8");
    assert_eq!(&out[24..26], &[0x12, 0x34], "identifier kept");
    assert!(l4_ok_v4(&out), "ICMP checksum without the pseudo-header");
}

#[test]
fn bad_checksum_stays_bad() {
    let mut pkt = udp6(v6(V6_CLIENT), wkp(V4_SERVER), 64, b"payload!");
    pkt[40 + 6] ^= 0x55; // corrupt the UDP checksum
    let out = run(&pkt).one();
    assert!(
        !l4_ok_v4(&out),
        "RFC 1624 update keeps the error for the end host"
    );
    let mut pkt = tcp4(v4(V4_SERVER), v4("192.0.2.1"), b"data");
    let n = pkt.len();
    pkt[n - 1] ^= 1; // corrupt the payload
    let out = run(&pkt).one();
    assert!(!l4_ok_v6(&out));
}

#[test]
fn v6_hop_limit_expiring_gets_time_exceeded() {
    let pkt = udp6(v6(V6_CLIENT), wkp(V4_SERVER), 1, b"x");
    let (err, reason) = run(&pkt).error();
    assert_eq!(reason, DropReason::HopLimitExceeded);
    assert_eq!(err[0] >> 4, 6);
    assert_eq!(&err[24..40], &v6(V6_CLIENT), "sent back to the sender");
    assert_eq!(
        (err[40], err[41]),
        (3, 0),
        "ICMPv6 Time Exceeded, hop limit"
    );
    assert_eq!(&err[48..], &pkt[..], "quotes the packet");
    assert!(l4_ok_v6(&err));
}

#[test]
fn v6_fragment_header_becomes_ipv4_fragment_fields() {
    // First fragment of a UDP datagram (UDP header + 16 bytes), id 0xabcd1234, offset 0, M=1.
    let udp = udp6(v6(V6_CLIENT), wkp(V4_SERVER), 64, &[1u8; 40]);
    let seg = &udp[40..40 + 24];
    let pkt = frag6(v6(V6_CLIENT), wkp(V4_SERVER), 17, 0, true, 0xabcd_1234, seg);
    let out = run(&pkt).one();
    let Some(NetHeaders::Ipv4(ip, _)) = parse(&out).net else {
        panic!()
    };
    assert!(ip.more_fragments);
    assert!(!ip.dont_fragment, "§5.1.1: DF cleared");
    assert_eq!(ip.identification, 0x1234, "§5.1.1: low-order 16 bits");
    assert_eq!(ip.fragment_offset.value(), 0);
    assert_eq!(
        usize::from(ip.total_len),
        20 + 24,
        "fragment header removed"
    );
    // A later fragment (offset 3 = 24 bytes) keeps its payload untouched.
    let pkt = frag6(
        v6(V6_CLIENT),
        wkp(V4_SERVER),
        17,
        3,
        false,
        0xabcd_1234,
        &udp[64..],
    );
    let out = run(&pkt).one();
    assert_eq!(u16::from_be_bytes([out[6], out[7]]) & 0x1fff, 3);
    assert_eq!(&out[20..], &udp[64..]);
}

#[test]
fn v6_routing_header_with_segments_left_is_refused() {
    // Routing header type 0... any type: nh=17, hdr ext len 0, type 4, segments left 1.
    let mut rest = vec![17u8, 0, 4, 1, 0, 0, 0, 0];
    rest.extend_from_slice(&udp6(v6(V6_CLIENT), wkp(V4_SERVER), 64, b"x")[40..]);
    let pkt = raw6(v6(V6_CLIENT), wkp(V4_SERVER), 43, 64, &rest);
    let (err, reason) = run(&pkt).error();
    assert_eq!(reason, DropReason::RoutingHeader);
    assert_eq!(
        (err[40], err[41]),
        (4, 0),
        "Parameter Problem, erroneous header field"
    );
    assert_eq!(
        u32::from_be_bytes([err[44], err[45], err[46], err[47]]),
        43,
        "points at Segments Left"
    );
    // Segments Left 0 is skipped and the packet translated.
    let mut rest = vec![17u8, 0, 4, 0, 0, 0, 0, 0];
    rest.extend_from_slice(&udp6(v6(V6_CLIENT), wkp(V4_SERVER), 64, b"x")[40..]);
    let out = run(&raw6(v6(V6_CLIENT), wkp(V4_SERVER), 43, 64, &rest)).one();
    assert_eq!(out[9], 17);
    assert!(l4_ok_v4(&out));
}

#[test]
fn v6_hop_by_hop_and_dest_opts_are_skipped() {
    let udp = udp6(v6(V6_CLIENT), wkp(V4_SERVER), 64, b"abc");
    let mut rest = vec![60u8, 0, 1, 4, 0, 0, 0, 0]; // HBH: PadN
    rest.extend_from_slice(&[17u8, 0, 1, 4, 0, 0, 0, 0]); // DestOpts: PadN
    rest.extend_from_slice(&udp[40..]);
    let out = run(&raw6(v6(V6_CLIENT), wkp(V4_SERVER), 0, 64, &rest)).one();
    assert_eq!(out[9], 17);
    assert_eq!(usize::from(u16::from_be_bytes([out[2], out[3]])), 20 + 11);
    assert!(l4_ok_v4(&out));
}

// ---------------------------------------------------------------- §4: IPv4 → IPv6

#[test]
fn v4_udp_to_v6_header_fields_and_checksum() {
    let mut pkt = udp4(v4(V4_SERVER), v4("192.0.2.1"), 64, b"reply!");
    pkt[1] = 0xb8; // DSCP EF
    pkt[10] = 0;
    pkt[11] = 0;
    let c = !fold(sum16(&pkt[..20]));
    pkt[10..12].copy_from_slice(&c.to_be_bytes());
    let out = run(&pkt).one();
    let Some(NetHeaders::Ipv6(ip, _)) = parse(&out).net else {
        panic!()
    };
    assert_eq!(ip.source, wkp(V4_SERVER));
    assert_eq!(
        ip.destination,
        v6("2001:db8:1::1"),
        "EAM 192.0.2.1 <-> 2001:db8:1::1"
    );
    assert_eq!(ip.hop_limit, 63);
    assert_eq!(
        ip.traffic_class, 0xb8,
        "§4.1: traffic class copied from TOS"
    );
    assert_eq!(ip.flow_label.value(), 0);
    assert!(l4_ok_v6(&out));
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

#[test]
fn v4_tcp_and_echo_reply_to_v6() {
    let out = run(&tcp4(v4(V4_SERVER), v4("192.0.2.1"), b"HTTP/1.1 200")).one();
    assert!(l4_ok_v6(&out));
    let out = run(&echo4_reply(v4(V4_SERVER), v4("192.0.2.1"), b"pong")).one();
    assert_eq!(out[6], 58);
    assert_eq!(out[40], 129, "§4.2: echo reply 0 -> 129");
    assert!(l4_ok_v6(&out), "ICMPv6 checksum includes the pseudo-header");
}

#[test]
fn v4_udp_zero_checksum() {
    let mut pkt = udp4(v4(V4_SERVER), v4("192.0.2.1"), 64, b"no checksum");
    pkt[26] = 0;
    pkt[27] = 0;
    let out = run(&pkt).one();
    assert!(l4_ok_v6(&out), "§4.5: checksum computed");
    let mut cfg = config(false);
    cfg.xlat.compute_udp_zero_checksum = false;
    assert_eq!(
        run_with(&Siit::new(cfg), &pkt).refused(),
        DropReason::ZeroChecksumUdp
    );
    // First fragment of a zero-checksum datagram: cannot be computed statelessly.
    let seg = {
        let mut s = pkt[20..].to_vec();
        s.truncate(16);
        s
    };
    let f = raw4(
        v4(V4_SERVER),
        v4("192.0.2.1"),
        17,
        64,
        false,
        true,
        0,
        99,
        &[],
        &seg,
    );
    // §4.4: answered with 3/13 (see rfc7915_edges.rs).
    assert_eq!(run(&f).refused(), DropReason::FragmentedZeroChecksumUdp);
}

#[test]
fn v4_ttl_expiring_gets_time_exceeded() {
    let pkt = udp4(v4(V4_SERVER), v4("192.0.2.1"), 1, b"x");
    let (err, reason) = run(&pkt).error();
    assert_eq!(reason, DropReason::HopLimitExceeded);
    assert_eq!(err[0] >> 4, 4);
    assert_eq!(&err[16..20], &v4(V4_SERVER));
    assert_eq!((err[20], err[21]), (11, 0));
    assert_eq!(&err[28..], &pkt[..]);
    assert!(v4_header_ok(&err) && l4_ok_v4(&err));
}

#[test]
fn v4_df_too_big_gets_fragmentation_needed() {
    let pkt = raw4(
        v4(V4_SERVER),
        v4("192.0.2.1"),
        17,
        64,
        true,
        false,
        0,
        5,
        &[],
        &udp4(v4(V4_SERVER), v4("192.0.2.1"), 64, &[0u8; 1472])[20..],
    );
    assert_eq!(pkt.len(), 1500);
    let (err, reason) = run(&pkt).error();
    assert_eq!(reason, DropReason::PacketTooBig);
    assert_eq!((err[20], err[21]), (3, 4));
    assert_eq!(
        u16::from_be_bytes([err[26], err[27]]),
        1480,
        "IPv6 MTU 1500 - 20"
    );
    assert_eq!(err.len(), 576, "RFC 1812: errors capped at 576 bytes");
    assert!(l4_ok_v4(&err));
}

#[test]
fn v4_df_clear_too_big_is_fragmented() {
    let udp = udp4(
        v4(V4_SERVER),
        v4("192.0.2.1"),
        64,
        &(0..2972).map(|i| i as u8).collect::<Vec<_>>(),
    );
    let pkt = raw4(
        v4(V4_SERVER),
        v4("192.0.2.1"),
        17,
        64,
        false,
        false,
        0,
        0x4242,
        &[],
        &udp[20..],
    );
    let frags = match run(&pkt) {
        Out::Packets(v) => v,
        o => panic!("{o:?}"),
    };
    assert_eq!(frags.len(), 3, "2980 bytes in 1232-byte pieces");
    let mut payload = Vec::new();
    for (i, f) in frags.iter().enumerate() {
        assert!(f.len() <= 1280, "§4.1: at most lowest-ipv6-mtu");
        assert_eq!(f[6], 44);
        let fo = u16::from_be_bytes([f[42], f[43]]);
        assert_eq!(usize::from(fo >> 3) * 8, payload.len(), "offsets continue");
        assert_eq!(fo & 1 == 1, i < 2, "M on all but the last");
        assert_eq!(
            &f[44..48],
            &[0, 0, 0x42, 0x42],
            "§4.1: id from IPv4, high bits zero"
        );
        assert_eq!(f[40], 17);
        payload.extend_from_slice(&f[48..]);
    }
    // Reassembled, the datagram checks out against the IPv6 pseudo-header.
    let mut whole = frags[0][..40].to_vec();
    whole[6] = 17;
    whole[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    whole.extend_from_slice(&payload);
    assert!(l4_ok_v6(&whole));
}

#[test]
fn v4_fragment_gets_fragment_header() {
    let udp = udp4(v4(V4_SERVER), v4("192.0.2.1"), 64, &[3u8; 100]);
    let f = raw4(
        v4(V4_SERVER),
        v4("192.0.2.1"),
        17,
        64,
        false,
        true,
        0,
        0x777,
        &[],
        &udp[20..20 + 48],
    );
    let out = run(&f).one();
    assert_eq!(out[6], 44);
    assert_eq!(out[40], 17);
    assert_eq!(u16::from_be_bytes([out[42], out[43]]), 1, "offset 0, M=1");
    assert_eq!(&out[44..48], &[0, 0, 7, 0x77]);
    assert_eq!(u16::from_be_bytes([out[4], out[5]]), 48 + 8);
    let g = raw4(
        v4(V4_SERVER),
        v4("192.0.2.1"),
        17,
        64,
        false,
        false,
        6,
        0x777,
        &[],
        &udp[68..],
    );
    let out = run(&g).one();
    assert_eq!(u16::from_be_bytes([out[42], out[43]]), 6 << 3);
    assert_eq!(&out[48..], &udp[68..]);
}

#[test]
fn v4_options_ignored_but_source_route_refused() {
    let seg = udp4(v4(V4_SERVER), v4("192.0.2.1"), 64, b"opts")[20..].to_vec();
    // Record Route (7), length 7, pointer 4, then an end-of-list byte.
    let rr = [7u8, 7, 4, 0, 0, 0, 0, 0];
    let out = run(&raw4(
        v4(V4_SERVER),
        v4("192.0.2.1"),
        17,
        64,
        false,
        false,
        0,
        1,
        &rr,
        &seg,
    ))
    .one();
    assert_eq!(out[6], 17, "options dropped, packet translated");
    assert!(l4_ok_v6(&out));
    // Loose Source Route (131), unexpired (pointer 4 <= length 7).
    let lsrr = [131u8, 7, 4, 198, 51, 100, 1, 0];
    let pkt = raw4(
        v4(V4_SERVER),
        v4("192.0.2.1"),
        17,
        64,
        false,
        false,
        0,
        1,
        &lsrr,
        &seg,
    );
    let (err, reason) = run(&pkt).error();
    assert_eq!(reason, DropReason::SourceRoute);
    assert_eq!((err[20], err[21]), (3, 5), "Source Route Failed");
    // Expired (pointer 8 > length 7): translated.
    let done = [131u8, 7, 8, 198, 51, 100, 1, 0];
    assert!(matches!(
        run(&raw4(
            v4(V4_SERVER),
            v4("192.0.2.1"),
            17,
            64,
            false,
            false,
            0,
            1,
            &done,
            &seg
        )),
        Out::Packets(_)
    ));
}

// ---------------------------------------------------------------- ICMP errors (§4.3, §5.3)

#[test]
fn icmp4_port_unreachable_to_icmp6_with_inner_translated() {
    // The IPv6 client's UDP datagram as it left the translator towards IPv4 (built with
    // etherparse, not by the translator).
    let quoted = udp4(v4("192.0.2.1"), v4(V4_SERVER), 63, b"query");
    let mut msg = vec![3u8, 3, 0, 0, 0, 0, 0, 0];
    msg.extend_from_slice(&quoted);
    set_icmp4_checksum(&mut msg);
    let pkt = raw4(
        v4(V4_SERVER),
        quoted[12..16].try_into().unwrap(),
        1,
        64,
        false,
        false,
        0,
        9,
        &[],
        &msg,
    );
    let out = run(&pkt).one();
    assert_eq!(out[6], 58);
    assert_eq!((out[40], out[41]), (1, 4), "port unreachable");
    assert_eq!(
        &out[24..40],
        &v6(V6_CLIENT),
        "to the client, through its EAM"
    );
    let inner = &out[48..];
    assert_eq!(inner[0] >> 4, 6);
    assert_eq!(&inner[8..24], &v6(V6_CLIENT), "inner source mapped back");
    assert_eq!(&inner[24..40], &wkp(V4_SERVER));
    assert!(l4_ok_v6(inner), "inner UDP checksum updated");
    assert!(l4_ok_v6(&out), "outer ICMPv6 checksum");
}

#[test]
fn icmp4_frag_needed_becomes_packet_too_big() {
    // The quoted datagram as it left the translator, built with etherparse.
    let quoted = udp4(v4("192.0.2.1"), v4(V4_SERVER), 63, &[0u8; 1400]);
    // MTU 1400: 1400 + 20. MTU 0: the quoted total length is 1428, the greatest RFC 1191 plateau
    // below it is 1006, raised to 1280; then + 20.
    for (mtu4, want) in [(1400u16, 1420u32), (0, 1300)] {
        let mut msg = vec![3u8, 4, 0, 0, 0, 0, 0, 0];
        msg[6..8].copy_from_slice(&mtu4.to_be_bytes());
        msg.extend_from_slice(&quoted[..28]);
        set_icmp4_checksum(&mut msg);
        let pkt = raw4(
            v4("198.51.100.1"),
            quoted[12..16].try_into().unwrap(),
            1,
            64,
            false,
            false,
            0,
            9,
            &[],
            &msg,
        );
        let out = run(&pkt).one();
        assert_eq!((out[40], out[41]), (2, 0));
        let mtu = u32::from_be_bytes([out[44], out[45], out[46], out[47]]);
        assert_eq!(mtu, want, "MTU {mtu4}");
        assert!(l4_ok_v6(&out));
    }
}

#[test]
fn icmp6_packet_too_big_becomes_frag_needed() {
    // IPv4 client -> EAM IPv6 server; the IPv6 side answers Packet Too Big.
    // The quoted datagram as it left the translator, built with etherparse.
    let quoted = udp6(wkp(V4_CLIENT), v6(V6_EAM_SERVER), 63, &[0u8; 1400]);
    let mut msg = vec![2u8, 0, 0, 0, 0, 0, 0x05, 0x00]; // MTU 1280
    msg.extend_from_slice(&quoted[..1232]);
    let mut pkt = raw6(
        v6("2001:db8:e::1"),
        quoted[8..24].try_into().unwrap(),
        58,
        64,
        &msg,
    );
    let ph = sum16(&pkt[8..40]) + 58 + msg.len() as u32;
    let c = !fold(ph + sum16(&msg));
    pkt[42..44].copy_from_slice(&c.to_be_bytes());
    let out = run(&pkt).one();
    assert_eq!(out[0] >> 4, 4);
    assert_eq!((out[20], out[21]), (3, 4));
    assert_eq!(u16::from_be_bytes([out[26], out[27]]), 1260, "1280 - 20");
    assert_eq!(
        &out[12..16],
        &v4("192.0.2.129"),
        "EAM source 2001:db8:e::1 -> 192.0.2.129"
    );
    assert_eq!(&out[16..20], &v4(V4_CLIENT));
    assert_eq!(out.len(), 576);
    let inner = &out[28..];
    assert_eq!(&inner[12..16], &v4(V4_CLIENT));
    assert_eq!(&inner[16..20], &v4(V4_EAM_SERVER));
    assert!(v4_header_ok(inner));
    assert!(l4_ok_v4(&out));
}

#[test]
fn icmp6_error_from_unmappable_router_uses_rfc6791_pool() {
    // The quoted datagram as it left the translator, built with etherparse.
    let quoted = udp6(wkp(V4_CLIENT), v6(V6_EAM_SERVER), 63, b"trace");
    let mut msg = vec![3u8, 0, 0, 0, 0, 0, 0, 0];
    msg.extend_from_slice(&quoted);
    let mut pkt = raw6(
        v6("2001:db8:ffff::1"),
        quoted[8..24].try_into().unwrap(),
        58,
        64,
        &msg,
    );
    let c = !fold(sum16(&pkt[8..40]) + 58 + msg.len() as u32 + sum16(&msg));
    pkt[42..44].copy_from_slice(&c.to_be_bytes());
    let out = run(&pkt).one();
    assert_eq!((out[20], out[21]), (11, 0));
    assert_eq!(
        &out[12..15],
        &v4("203.0.113.0")[..3],
        "source from the RFC 6791 pool"
    );
    assert!(out[15] < 16);
    assert!(l4_ok_v4(&out));
}

#[test]
fn parameter_problem_pointers_are_mapped() {
    // The quoted datagram as it left the translator, built with etherparse.
    let quoted = udp4(v4("192.0.2.1"), v4(V4_SERVER), 63, b"q");
    for (p4, p6) in [(8u8, Some(7u32)), (12, Some(8)), (4, None)] {
        let mut msg = vec![12u8, 0, 0, 0, p4, 0, 0, 0];
        msg.extend_from_slice(&quoted);
        set_icmp4_checksum(&mut msg);
        let pkt = raw4(
            v4(V4_SERVER),
            quoted[12..16].try_into().unwrap(),
            1,
            64,
            false,
            false,
            0,
            9,
            &[],
            &msg,
        );
        match (run(&pkt), p6) {
            (Out::Packets(mut v), Some(want)) => {
                let out = v.remove(0);
                assert_eq!((out[40], out[41]), (4, 0));
                assert_eq!(
                    u32::from_be_bytes([out[44], out[45], out[46], out[47]]),
                    want
                );
            }
            (Out::Drop(r), None) => assert_eq!(r, DropReason::IcmpBadPointer),
            (o, _) => panic!("pointer {p4}: {o:?}"),
        }
    }
}

#[test]
fn nested_icmp_errors_are_dropped() {
    let inner_err = udp4(v4(V4_SERVER), v4("192.0.2.1"), 1, b"x");
    // The ICMPv4 Time Exceeded a router sends about it, built with etherparse.
    let mut quoted_err = Vec::new();
    PacketBuilder::ipv4(v4("192.0.2.1"), v4(V4_SERVER), 64)
        .icmpv4_raw(11, 0, [0; 4])
        .write(&mut quoted_err, &inner_err)
        .unwrap();
    let mut msg = vec![3u8, 1, 0, 0, 0, 0, 0, 0];
    msg.extend_from_slice(&quoted_err);
    set_icmp4_checksum(&mut msg);
    let pkt = raw4(
        v4(V4_SERVER),
        v4("192.0.2.1"),
        1,
        64,
        false,
        false,
        0,
        9,
        &[],
        &msg,
    );
    assert_eq!(run(&pkt).dropped(), DropReason::IcmpNestedError);
}

#[test]
fn no_icmp_error_about_an_icmp_error() {
    // An ICMPv4 error whose TTL runs out is dropped without an error of its own.
    // The quoted datagram as it left the translator, built with etherparse.
    let quoted = udp4(v4("192.0.2.1"), v4(V4_SERVER), 63, b"q");
    let mut msg = vec![3u8, 3, 0, 0, 0, 0, 0, 0];
    msg.extend_from_slice(&quoted);
    set_icmp4_checksum(&mut msg);
    let pkt = raw4(
        v4(V4_SERVER),
        quoted[12..16].try_into().unwrap(),
        1,
        1,
        false,
        false,
        0,
        9,
        &[],
        &msg,
    );
    assert_eq!(run(&pkt).dropped(), DropReason::HopLimitExceeded);
}

#[test]
fn rfc4884_extension_is_carried() {
    // The quoted datagram as it left the translator, built with etherparse.
    let quoted = udp4(v4("192.0.2.1"), v4(V4_SERVER), 63, &[9u8; 100]);
    // Time Exceeded with a 128-byte original datagram (length 32 words) and a 12-byte extension.
    let mut dgram = quoted.clone();
    dgram.resize(128, 0);
    let ext = [0x20u8, 0, 0, 0, 0, 8, 1, 1, 0xde, 0xad, 0xbe, 0xef];
    let mut msg = vec![11u8, 0, 0, 0, 0, 32, 0, 0];
    msg.extend_from_slice(&dgram);
    msg.extend_from_slice(&ext);
    set_icmp4_checksum(&mut msg);
    let pkt = raw4(
        v4("198.51.100.1"),
        quoted[12..16].try_into().unwrap(),
        1,
        64,
        false,
        false,
        0,
        9,
        &[],
        &msg,
    );
    let out = run(&pkt).one();
    assert_eq!((out[40], out[41]), (3, 0));
    let words = usize::from(out[44]);
    assert_eq!(words * 8, 152, "148-byte translated datagram padded to 152");
    assert_eq!(&out[48 + words * 8..], &ext);
    assert!(l4_ok_v6(&out));
}

// ---------------------------------------------------------------- addresses, EAMT, pool6

#[test]
fn wkp_strict_drops_documentation_addresses() {
    let strict = Siit::new(config(true));
    let pkt = udp6(v6(V6_CLIENT), wkp(V4_SERVER), 64, b"x");
    assert_eq!(run_with(&strict, &pkt).refused(), DropReason::WkpNonGlobal);
    let ok = udp6(v6(V6_CLIENT), wkp("8.8.8.8"), 64, b"x");
    assert!(matches!(run_with(&strict, &ok), Out::Packets(_)));
}

#[test]
fn untranslatable_addresses_are_dropped() {
    let pkt = udp6(v6(V6_CLIENT), v6("2001:db8:99::1"), 64, b"x");
    // §5.4: discards are answered (1/1) unless switched off; see rfc7915_edges.rs.
    assert_eq!(run(&pkt).refused(), DropReason::UntranslatableDestination);
    // (A global source without a mapping; fe80::1 is now `non_global_source`, see
    // core/tests/nat64_non_global.rs.)
    let pkt = udp6(v6("2001:db8:77::1"), wkp(V4_SERVER), 64, b"x");
    assert_eq!(run(&pkt).refused(), DropReason::UntranslatableSource);
    let pkt = udp4(v4(V4_SERVER), v4("224.0.0.5"), 64, b"x");
    assert_eq!(run(&pkt).dropped(), DropReason::SpecialAddress);
}

#[test]
fn ipv4_client_reaches_ipv6_server_through_eam() {
    let pkt = udp4(v4(V4_CLIENT), v4(V4_EAM_SERVER), 64, b"to v6");
    let out = run(&pkt).one();
    assert_eq!(&out[8..24], &wkp(V4_CLIENT));
    assert_eq!(&out[24..40], &v6(V6_EAM_SERVER), "RFC 7757 §3.3.1");
    assert!(l4_ok_v6(&out));
    let back = run(&udp6(v6(V6_EAM_SERVER), wkp(V4_CLIENT), 64, b"back")).one();
    assert_eq!(&back[12..16], &v4(V4_EAM_SERVER));
    assert_eq!(&back[16..20], &v4(V4_CLIENT));
}

#[test]
fn eam_traffic_is_hairpinned() {
    // RFC 7757 §4.1: 2001:db8:1::1 (EAM 192.0.2.1) sends to 64:ff9b::192.0.2.133 (EAM server).
    let pkt = udp6(v6("2001:db8:1::1"), wkp(V4_EAM_SERVER), 64, b"hairpin");
    let out = run(&pkt).one();
    assert_eq!(out[0] >> 4, 6, "translated back to IPv6");
    assert_eq!(
        &out[8..24],
        &wkp("192.0.2.1"),
        "§4.2.1 rule 1: source not through the EAM"
    );
    assert_eq!(&out[24..40], &v6(V6_EAM_SERVER));
    assert_eq!(out[7], 63, "hop limit decremented once");
    assert!(l4_ok_v6(&out));
}

// ---------------------------------------------------------------- ICMP tables through packets

#[test]
fn untranslatable_icmp_types_are_dropped() {
    for ty in [13u8, 15, 17, 9, 10, 5, 4, 42] {
        let mut msg = vec![ty, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
        set_icmp4_checksum(&mut msg);
        let pkt = raw4(
            v4(V4_SERVER),
            v4("192.0.2.1"),
            1,
            64,
            false,
            false,
            0,
            1,
            &[],
            &msg,
        );
        assert_eq!(
            run(&pkt).dropped(),
            DropReason::IcmpUntranslatable,
            "type {ty}"
        );
    }
    for ty in [130u8, 133, 135, 137, 200] {
        let pkt = raw6(
            v6(V6_CLIENT),
            wkp(V4_SERVER),
            58,
            64,
            &[ty, 0, 0, 0, 0, 0, 0, 0],
        );
        assert_eq!(
            run(&pkt).dropped(),
            DropReason::IcmpUntranslatable,
            "type {ty}"
        );
    }
}

#[test]
fn fragmented_icmp_is_not_translated() {
    let f = raw4(
        v4(V4_SERVER),
        v4("192.0.2.1"),
        1,
        64,
        false,
        true,
        0,
        3,
        &[],
        &[0u8, 0, 0, 0, 0, 0, 0, 0],
    );
    assert_eq!(run(&f).refused(), DropReason::FragmentedIcmp);
    let g = frag6(
        v6(V6_CLIENT),
        wkp(V4_SERVER),
        58,
        0,
        true,
        3,
        &[128u8, 0, 0, 0, 0, 0, 0, 0],
    );
    assert_eq!(run(&g).refused(), DropReason::FragmentedIcmp);
}

// ---------------------------------------------------------------- malformed input

#[test]
fn malformed_packets_are_counted_drops() {
    let good4 = udp4(v4(V4_SERVER), v4("192.0.2.1"), 64, b"x");
    let cases: Vec<(Vec<u8>, DropReason)> = vec![
        (vec![], DropReason::Truncated),
        (good4[..19].to_vec(), DropReason::Truncated),
        (
            {
                let mut p = good4.clone();
                p[0] = 0x44;
                p
            },
            DropReason::Ipv4BadIhl,
        ),
        (
            {
                let mut p = good4.clone();
                p[0] = 0x4f;
                p
            },
            DropReason::Ipv4BadIhl,
        ),
        (
            {
                let mut p = good4.clone();
                p[3] = 200;
                p
            },
            DropReason::Ipv4BadTotalLength,
        ),
        (
            {
                let mut p = good4.clone();
                p[10] ^= 1;
                p
            },
            DropReason::Ipv4BadHeaderChecksum,
        ),
        (
            {
                let mut p = good4.clone();
                p[0] = 0x55;
                p
            },
            DropReason::UnknownVersion,
        ),
        (
            raw4(
                v4(V4_SERVER),
                v4("192.0.2.1"),
                17,
                64,
                false,
                false,
                0,
                1,
                &[],
                &[1, 2, 3],
            ),
            DropReason::TransportTruncated,
        ),
        (
            raw4(
                v4(V4_SERVER),
                v4("192.0.2.1"),
                6,
                64,
                false,
                false,
                0,
                1,
                &[],
                &[0; 12],
            ),
            DropReason::TransportTruncated,
        ),
    ];
    for (p, want) in cases {
        assert_eq!(run(&p).dropped(), want, "{p:02x?}");
    }
    let good6 = udp6(v6(V6_CLIENT), wkp(V4_SERVER), 64, b"x");
    let cases6: Vec<(Vec<u8>, DropReason)> = vec![
        (good6[..39].to_vec(), DropReason::Truncated),
        (
            {
                let mut p = good6.clone();
                p[5] = 200;
                p
            },
            DropReason::Ipv6BadPayloadLength,
        ),
        (
            {
                let mut p = good6.clone();
                p[4] = 0;
                p[5] = 0;
                p
            },
            // Payload length 0 without a Jumbo option is an empty payload (RFC 2675 applies
            // only with a Hop-by-Hop header): a UDP packet without its header.
            DropReason::TransportTruncated,
        ),
        (
            raw6(
                v6(V6_CLIENT),
                wkp(V4_SERVER),
                0,
                64,
                &[17, 3, 0, 0, 0, 0, 0, 0],
            ),
            DropReason::Ipv6BadExtensionHeader,
        ),
        (
            raw6(
                v6(V6_CLIENT),
                wkp(V4_SERVER),
                60,
                64,
                &[60, 0, 1, 4, 0, 0, 0, 0].repeat(10),
            ),
            DropReason::Ipv6BadExtensionHeader,
        ),
        (
            frag6(
                v6(V6_CLIENT),
                wkp(V4_SERVER),
                60,
                0,
                true,
                1,
                &[17, 0, 1, 4, 0, 0, 0, 0],
            ),
            // §5.1.1 + §5.4: an extension header after the Fragment header is answered.
            DropReason::FragmentExtensionHeader,
        ),
    ];
    for (p, want) in cases6 {
        assert_eq!(run(&p).refused(), want, "{p:02x?}");
    }
}

#[test]
fn icmp_error_quoting_garbage_is_dropped() {
    let mut msg = vec![3u8, 1, 0, 0, 0, 0, 0, 0, 0x45, 0, 0];
    set_icmp4_checksum(&mut msg);
    let pkt = raw4(
        v4(V4_SERVER),
        v4("192.0.2.1"),
        1,
        64,
        false,
        false,
        0,
        9,
        &[],
        &msg,
    );
    assert_eq!(run(&pkt).dropped(), DropReason::IcmpBadInnerPacket);
}

#[test]
fn tos_can_be_overridden() {
    let mut cfg = config(false);
    cfg.xlat = XlatConfig {
        copy_tos: false,
        tos: 0,
        ..cfg.xlat
    };
    let mut pkt = udp6(v6(V6_CLIENT), wkp(V4_SERVER), 64, b"x");
    pkt[0] = 0x6b;
    pkt[1] = 0x80; // traffic class 0xb8
    let out = run_with(&Siit::new(cfg), &pkt).one();
    assert_eq!(out[1], 0);
    let out = run(&pkt).one();
    assert_eq!(out[1], 0xb8);
}

#[test]
fn rfc4884_extension_is_carried_6to4() {
    // An IPv4 client's datagram, translated to IPv6, quoted by an IPv6 router's Time Exceeded
    // with a 128-byte original datagram field (16 64-bit words) and a 12-byte extension.
    // The quoted datagram as it left the translator, built with etherparse.
    let quoted = udp6(wkp(V4_CLIENT), v6(V6_EAM_SERVER), 63, &[9u8; 100]);
    let mut dgram = quoted.clone();
    dgram.resize(128, 0);
    let ext = [0x20u8, 0, 0, 0, 0, 8, 1, 1, 0xde, 0xad, 0xbe, 0xef];
    let mut msg = vec![3u8, 0, 0, 0, 16, 0, 0, 0];
    msg.extend_from_slice(&dgram);
    msg.extend_from_slice(&ext);
    let mut pkt = raw6(
        v6("2001:db8:e::1"),
        quoted[8..24].try_into().unwrap(),
        58,
        64,
        &msg,
    );
    let c = !fold(sum16(&pkt[8..40]) + 58 + msg.len() as u32 + sum16(&msg));
    pkt[42..44].copy_from_slice(&c.to_be_bytes());
    let out = run(&pkt).one();
    assert_eq!((out[20], out[21]), (11, 0));
    // 128 bytes of IPv6 datagram become 108 bytes of IPv4 datagram, padded to 128 (the RFC 4884
    // minimum), i.e. 32 words.
    let words = usize::from(out[25]);
    assert_eq!(words * 4, 128);
    assert_eq!(&out[28 + words * 4..], &ext);
    assert!(l4_ok_v4(&out));
}
