//! RFC 7915 rules checked on packets built independently of the translator (etherparse or raw
//! bytes): every transport protocol is forwarded (§4.1/§5.1 "Protocol", §5.5), the packet quoted
//! in an ICMP error keeps its TTL / Hop Limit (§4.3/§5.3), and an error quoting an error is not
//! translated (§4.3/§5.3: "stop at the first embedded header").

mod common;
use common::*;
use etherparse::PacketBuilder;
use nat64_core::DropReason;

const CLIENT4: &str = "192.0.2.1"; // the EAM of V6_CLIENT in `common::config`

/// §5.1/§4.1 "Protocol": an unknown protocol (253, experimental) and protocols the translator
/// does not checksum (SCTP 132, DCCP 33) are forwarded with the protocol number copied and the
/// payload untouched, both ways.
#[test]
fn every_transport_protocol_is_forwarded_payload_opaque() {
    let payload: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
    for proto in [253u8, 132, 33] {
        // 6 -> 4
        let p = raw6(v6(V6_CLIENT), wkp(V4_SERVER), proto, 64, &payload);
        let out = run(&p).one();
        assert_eq!(out[0] >> 4, 4, "proto {proto}");
        assert_eq!(out[9], proto, "§5.1: protocol copied");
        assert_eq!(out[8], 63, "TTL from the hop limit, decremented");
        assert_eq!(&out[12..16], &v4(CLIENT4));
        assert_eq!(&out[16..20], &v4(V4_SERVER));
        assert!(v4_header_ok(&out));
        assert_eq!(&out[20..], &payload[..], "proto {proto}: payload untouched");
        // 4 -> 6
        let p = raw4(
            v4(V4_SERVER),
            v4(CLIENT4),
            proto,
            64,
            true,
            false,
            0,
            0,
            &[],
            &payload,
        );
        let out = run(&p).one();
        assert_eq!(out[0] >> 4, 6, "proto {proto}");
        assert_eq!(out[6], proto, "§4.1: next header copied");
        assert_eq!(out[7], 63);
        assert_eq!(&out[8..24], &wkp(V4_SERVER));
        assert_eq!(&out[24..40], &v6(V6_CLIENT));
        assert_eq!(&out[40..], &payload[..], "proto {proto}: payload untouched");
    }
}

/// An ICMPv6 Port Unreachable from the IPv6 client about a UDP datagram the IPv4 server sent it
/// (hop limit 5 on arrival): §5.3 translates the quoted packet without decrementing its TTL.
#[test]
fn icmpv6_error_inner_hop_limit_is_not_decremented() {
    let mut quoted_back = Vec::new();
    PacketBuilder::ipv6(wkp(V4_SERVER), v6(V6_CLIENT), 5)
        .udp(53, 40000)
        .write(&mut quoted_back, b"quoted")
        .unwrap();
    let mut pkt = Vec::new();
    PacketBuilder::ipv6(v6(V6_CLIENT), wkp(V4_SERVER), 64)
        .icmpv6_raw(1, 4, [0; 4])
        .write(&mut pkt, &quoted_back)
        .unwrap();
    let out = run(&pkt).one();
    assert_eq!((out[20], out[21]), (3, 3), "§5.2: 1/4 -> 3/3");
    assert_eq!(out[8], 63, "the outer TTL is decremented");
    assert!(v4_header_ok(&out));
    let inner = &out[28..];
    assert_eq!(inner[0], 0x45);
    assert_eq!(
        inner[8], 5,
        "§5.3: the inner TTL keeps the quoted hop limit"
    );
    assert_eq!(inner[9], 17);
    assert_eq!(&inner[12..16], &v4(V4_SERVER));
    assert_eq!(&inner[16..20], &v4(CLIENT4));
    assert!(
        v4_header_ok(inner),
        "the inner header checksum is recomputed"
    );
    assert!(l4_ok_v4(&out), "the ICMPv4 checksum covers the new message");
}

/// An ICMPv4 Port Unreachable from the IPv4 server about a UDP datagram the client sent (TTL 7 on
/// arrival): §4.3 translates the quoted packet without decrementing its hop limit.
#[test]
fn icmpv4_error_inner_ttl_is_not_decremented() {
    let mut quoted = Vec::new();
    PacketBuilder::ipv4(v4(CLIENT4), v4(V4_SERVER), 7)
        .udp(40000, 53)
        .write(&mut quoted, b"quoted")
        .unwrap();
    let mut pkt = Vec::new();
    PacketBuilder::ipv4(v4(V4_SERVER), v4(CLIENT4), 64)
        .icmpv4_raw(3, 3, [0; 4])
        .write(&mut pkt, &quoted)
        .unwrap();
    let out = run(&pkt).one();
    assert_eq!((out[40], out[41]), (1, 4), "§4.2: 3/3 -> 1/4");
    assert_eq!(out[7], 63, "the outer hop limit is decremented");
    let inner = &out[48..];
    assert_eq!(inner[0] >> 4, 6);
    assert_eq!(
        inner[7], 7,
        "§4.3: the inner hop limit keeps the quoted TTL"
    );
    assert_eq!(inner[6], 17);
    assert_eq!(&inner[8..24], &v6(V6_CLIENT));
    assert_eq!(&inner[24..40], &wkp(V4_SERVER));
    assert!(l4_ok_v6(&out), "the ICMPv6 checksum covers the new message");
}

/// §5.3/§4.3: an ICMP error that quotes another ICMP error is not translated (the translator
/// stops at the first embedded header), both ways; the quoted errors are built with etherparse.
#[test]
fn nested_icmp_errors_are_dropped_both_ways() {
    // 6 -> 4: the client reports an error about an ICMPv6 Time Exceeded it received.
    let mut inner_udp = Vec::new();
    PacketBuilder::ipv6(v6(V6_CLIENT), wkp(V4_SERVER), 1)
        .udp(40000, 53)
        .write(&mut inner_udp, b"x")
        .unwrap();
    let mut inner_err = Vec::new();
    PacketBuilder::ipv6(wkp(V4_SERVER), v6(V6_CLIENT), 30)
        .icmpv6_raw(3, 0, [0; 4])
        .write(&mut inner_err, &inner_udp)
        .unwrap();
    let mut pkt = Vec::new();
    PacketBuilder::ipv6(v6(V6_CLIENT), wkp(V4_SERVER), 64)
        .icmpv6_raw(1, 4, [0; 4])
        .write(&mut pkt, &inner_err)
        .unwrap();
    assert_eq!(run(&pkt).dropped(), DropReason::IcmpNestedError);
    // 4 -> 6: the server reports an error about an ICMPv4 Time Exceeded it received.
    let mut inner_udp = Vec::new();
    PacketBuilder::ipv4(v4(V4_SERVER), v4(CLIENT4), 1)
        .udp(53, 40000)
        .write(&mut inner_udp, b"x")
        .unwrap();
    let mut inner_err = Vec::new();
    PacketBuilder::ipv4(v4(CLIENT4), v4(V4_SERVER), 30)
        .icmpv4_raw(11, 0, [0; 4])
        .write(&mut inner_err, &inner_udp)
        .unwrap();
    let mut pkt = Vec::new();
    PacketBuilder::ipv4(v4(V4_SERVER), v4(CLIENT4), 64)
        .icmpv4_raw(3, 3, [0; 4])
        .write(&mut pkt, &inner_err)
        .unwrap();
    assert_eq!(run(&pkt).dropped(), DropReason::IcmpNestedError);
}
