//! Property tests over random and mutated inputs (the stable-toolchain twin of `fuzz/`): the
//! translator never panics, never reads or writes out of bounds, and everything it emits
//! re-parses as a well-formed IP packet whose lengths match.

mod common;
use common::*;
use nat64_core::{packets, Ctx, DropReason, Timestamp, Verdict, AUX_LEN, HEADROOM};
use proptest::prelude::*;

/// The layers the translator writes must be well formed: the IP header, lengths that cover the
/// packet exactly, the IPv4 header checksum, and a Fragment header when it adds one. What lies
/// beyond (a transport or an AH header) is payload it forwards as received (RFC 7915 §4.5, §5.5).
fn check_output(p: &[u8]) {
    match p.first().map(|b| b >> 4) {
        Some(4) => {
            let (h, _) = etherparse::Ipv4Header::from_slice(p)
                .unwrap_or_else(|e| panic!("IPv4 header does not parse: {e:?}\n{p:02x?}"));
            assert_eq!(usize::from(h.total_len), p.len());
            assert!(v4_header_ok(p), "IPv4 header checksum");
        }
        Some(6) => {
            let (h, rest) = etherparse::Ipv6Header::from_slice(p)
                .unwrap_or_else(|e| panic!("IPv6 header does not parse: {e:?}\n{p:02x?}"));
            assert_eq!(40 + usize::from(h.payload_length), p.len());
            if h.next_header.0 == 44 {
                etherparse::Ipv6FragmentHeader::from_slice(rest)
                    .unwrap_or_else(|e| panic!("Fragment header does not parse: {e:?}"));
            }
        }
        _ => panic!("output is not IP: {p:02x?}"),
    }
}

/// The transport checksum of a whole (unfragmented, extension-free) TCP/UDP/ICMP packet, checked
/// with `common`'s own RFC 1071 sum: `Some(valid)`, or `None` when the packet is not such a
/// packet. An IPv4 UDP datagram without a checksum (0) counts as valid (RFC 768).
fn transport_ok(p: &[u8]) -> Option<bool> {
    match p.first()? >> 4 {
        4 if p.len() >= 20 => {
            let ihl = usize::from(p[0] & 15) * 4;
            let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
            let fragmented = u16::from_be_bytes([p[6], p[7]]) & 0x3fff != 0;
            let min = match p[9] {
                6 => 20,
                17 => 8,
                1 => 8,
                _ => return None,
            };
            if fragmented || ihl < 20 || total != p.len() || total < ihl + min {
                return None;
            }
            if p[9] == 17 && p[ihl + 6..ihl + 8] == [0, 0] {
                return Some(true);
            }
            Some(l4_ok_v4(p))
        }
        6 if p.len() >= 40 => {
            let min = match p[6] {
                6 => 20,
                17 => 8,
                58 => 8,
                _ => return None,
            };
            if 40 + usize::from(u16::from_be_bytes([p[4], p[5]])) != p.len() || p.len() < 40 + min {
                return None;
            }
            Some(l4_ok_v6(p))
        }
        _ => None,
    }
}

/// Translates `input`, checks every packet that comes out, and returns the verdict. Transport
/// checksums are verified independently: a packet the translator built itself (an ICMP error)
/// must carry a valid one, and a translated packet keeps a valid checksum valid (a bad one stays
/// bad, RFC 7915 §4.5/§5.5 incremental update).
fn exercise(input: &[u8]) -> Verdict {
    let s = siit();
    let mut buf = vec![0xa5u8; HEADROOM + input.len()];
    buf[HEADROOM..].copy_from_slice(input);
    let mut aux = vec![0xa5u8; AUX_LEN];
    let mut ctx = Ctx::new(Timestamp(5), 3);
    let input_ok = transport_ok(input);
    let v = s.translate(&mut ctx, &mut buf, HEADROOM, input.len(), &mut aux);
    match v {
        Verdict::Forward { start, len } => {
            let out = &buf[start..start + len];
            check_output(out);
            if let (Some(before), Some(after)) = (input_ok, transport_ok(out)) {
                assert_eq!(
                    before, after,
                    "transport checksum valid before {before}, after {after}\nin  {input:02x?}\nout {out:02x?}"
                );
            }
        }
        Verdict::ForwardAux { len } | Verdict::IcmpError { len, .. } => {
            let mut seen = 0;
            for p in packets(&aux[..len]) {
                check_output(p);
                if matches!(v, Verdict::IcmpError { .. }) {
                    assert_eq!(
                        transport_ok(p),
                        Some(true),
                        "own ICMP error checksum: {p:02x?}"
                    );
                }
                seen += p.len();
            }
            assert_eq!(seen, len, "aux holds whole packets");
        }
        Verdict::Drop(_) => {}
    }
    v
}

/// Valid packets of every kind the translator handles, as seeds for mutation. Every one is built
/// with etherparse or raw bytes (never with the translator) and carries a valid transport
/// checksum, so `seeds_translate_cleanly` can demand that each one forwards with a valid output.
fn seeds() -> Vec<Vec<u8>> {
    // What the IPv6 client's datagram looks like once translated towards IPv4, quoted by an IPv4
    // router's Port Unreachable.
    let quoted = udp4(v4("192.0.2.1"), v4(V4_SERVER), 63, b"q");
    let mut icmp4 = vec![3u8, 3, 0, 0, 0, 0, 0, 0];
    icmp4.extend_from_slice(&quoted);
    set_icmp4_checksum(&mut icmp4);
    // An IPv4 client's datagram translated towards the EAM IPv6 server, quoted by an IPv6
    // router's Port Unreachable.
    let q6 = udp6(wkp(V4_CLIENT), v6(V6_EAM_SERVER), 63, b"q");
    let mut icmp6 = vec![1u8, 4, 0, 0, 0, 0, 0, 0];
    icmp6.extend_from_slice(&q6);
    let router6 = v6("2001:db8:e::1");
    set_icmp6_checksum(&router6, &wkp(V4_CLIENT), &mut icmp6);
    // The first 64 bytes of a UDP datagram's transport part (its header carries the checksum of
    // the whole datagram; an all-zero header would be a zero-checksum IPv6 UDP datagram, which
    // RFC 8200 §8.1 has the translator discard).
    let whole = udp6(v6(V6_CLIENT), wkp(V4_SERVER), 64, &[7u8; 200]);
    let udp_first_fragment = whole[40..].to_vec();
    vec![
        udp6(v6(V6_CLIENT), wkp(V4_SERVER), 64, &[1u8; 100]),
        udp4(v4(V4_SERVER), v4("192.0.2.1"), 64, &[2u8; 100]),
        tcp6(v6(V6_CLIENT), wkp(V4_SERVER), b"GET /"),
        tcp4(v4(V4_SERVER), v4("192.0.2.1"), b"200 OK"),
        echo6(v6(V6_CLIENT), wkp(V4_SERVER), b"ping"),
        echo4_reply(v4(V4_SERVER), v4("192.0.2.1"), b"pong"),
        raw4(
            v4(V4_SERVER),
            v4("192.0.2.1"),
            1,
            64,
            false,
            false,
            0,
            9,
            &[],
            &icmp4,
        ),
        raw6(router6, wkp(V4_CLIENT), 58, 64, &icmp6),
        raw4(
            v4(V4_SERVER),
            v4("192.0.2.1"),
            17,
            64,
            false,
            false,
            0,
            7,
            &[],
            &[0u8; 3000],
        ),
        frag6(
            v6(V6_CLIENT),
            wkp(V4_SERVER),
            17,
            0,
            true,
            77,
            &udp_first_fragment[..64],
        ),
        raw4(
            v4(V4_SERVER),
            v4("192.0.2.1"),
            17,
            64,
            false,
            true,
            0,
            7,
            &[131, 7, 4, 1, 2, 3, 4, 0],
            &[0u8; 32],
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..1600), v6 in any::<bool>()) {
        if let Some(b) = bytes.first_mut() {
            *b = (*b & 0x0f) | if v6 { 0x60 } else { 0x40 };
        }
        exercise(&bytes);
    }

    #[test]
    fn mutated_packets_never_panic(
        which in 0usize..11,
        flips in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..6),
        cut in any::<u16>(),
        truncate in any::<bool>(),
        fix_header_checksum in any::<bool>(),
    ) {
        let mut p = seeds()[which].clone();
        for (at, x) in flips {
            let n = p.len();
            p[usize::from(at) % n] ^= x;
        }
        if truncate {
            let n = p.len();
            p.truncate(usize::from(cut) % (n + 1));
        }
        // Let mutations get past the IPv4 header checksum half of the time.
        let ihl = p.first().map_or(0, |b| usize::from(b & 15) * 4);
        if fix_header_checksum && p.first().is_some_and(|b| b >> 4 == 4) && ihl >= 20 && ihl <= p.len() {
            p[10] = 0;
            p[11] = 0;
            let mut s = sum16(&p[..ihl]);
            while s > 0xffff {
                s = (s & 0xffff) + (s >> 16);
            }
            let c = !(s as u16);
            p[10..12].copy_from_slice(&c.to_be_bytes());
        }
        exercise(&p);
    }
}

#[test]
fn seeds_translate_cleanly() {
    // Every seed is a packet the translator must forward (or answer, for the source-routed one);
    // a seed that is dropped would make the mutation test above exercise nothing but drops.
    for (i, p) in seeds().iter().enumerate() {
        match exercise(p) {
            Verdict::Forward { .. } | Verdict::ForwardAux { .. } => {}
            Verdict::IcmpError {
                reason: DropReason::SourceRoute,
                ..
            } => {}
            v => panic!("seed {i} not translated: {v:?}"),
        }
        if let Some(ok) = transport_ok(p) {
            assert!(ok, "seed {i} carries a valid transport checksum");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Header-valid packets (built with etherparse from random fields, both directions): every one
    /// forwards, and its transport checksum verifies after translation.
    #[test]
    fn header_valid_packets_forward_with_valid_checksums(
        from_v6 in any::<bool>(),
        kind in 0u8..3,
        sport in 1u16..,
        dport in 1u16..,
        hop in 2u8..,
        payload in proptest::collection::vec(any::<u8>(), 0..1200),
    ) {
        use etherparse::PacketBuilder;
        let mut p = Vec::new();
        if from_v6 {
            let b = PacketBuilder::ipv6(v6(V6_CLIENT), wkp(V4_SERVER), hop);
            match kind {
                0 => b.udp(sport, dport).write(&mut p, &payload),
                1 => b.tcp(sport, dport, 1, 1000).ack(1).write(&mut p, &payload),
                _ => b.icmpv6_echo_request(sport, dport).write(&mut p, &payload),
            }
        } else {
            let b = PacketBuilder::ipv4(v4(V4_SERVER), v4("192.0.2.1"), hop);
            match kind {
                0 => b.udp(sport, dport).write(&mut p, &payload),
                1 => b.tcp(sport, dport, 1, 1000).ack(1).write(&mut p, &payload),
                _ => b.icmpv4_echo_reply(sport, dport).write(&mut p, &payload),
            }
        }
        .unwrap();
        let v = exercise(&p);
        prop_assert!(matches!(v, Verdict::Forward { .. }), "{:?}", v);
        // `exercise` compared the checksums; here the output's must be valid outright.
        let s = siit();
        let mut buf = vec![0u8; HEADROOM + p.len()];
        buf[HEADROOM..].copy_from_slice(&p);
        let mut aux = vec![0u8; AUX_LEN];
        let Verdict::Forward { start, len } =
            s.translate(&mut Ctx::new(Timestamp(5), 3), &mut buf, HEADROOM, p.len(), &mut aux)
        else {
            unreachable!()
        };
        prop_assert_eq!(transport_ok(&buf[start..start + len]), Some(true));
    }
}
