//! Property tests over random and mutated inputs (the stable-toolchain twin of `fuzz/`): the
//! translator never panics, never reads or writes out of bounds, and everything it emits
//! re-parses as a well-formed IP packet whose lengths match.

mod common;
use common::*;
use nat64_core::{packets, Ctx, Timestamp, Verdict, AUX_LEN, HEADROOM};
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

fn exercise(input: &[u8]) {
    let s = siit();
    let mut buf = vec![0xa5u8; HEADROOM + input.len()];
    buf[HEADROOM..].copy_from_slice(input);
    let mut aux = vec![0xa5u8; AUX_LEN];
    let mut ctx = Ctx::new(Timestamp(5), 3);
    match s.translate(&mut ctx, &mut buf, HEADROOM, input.len(), &mut aux) {
        Verdict::Forward { start, len } => check_output(&buf[start..start + len]),
        Verdict::ForwardAux { len } | Verdict::IcmpError { len, .. } => {
            let mut seen = 0;
            for p in packets(&aux[..len]) {
                check_output(p);
                seen += p.len();
            }
            assert_eq!(seen, len, "aux holds whole packets");
        }
        Verdict::Drop(_) => {}
    }
}

/// Valid packets of every kind the translator handles, as seeds for mutation.
fn seeds() -> Vec<Vec<u8>> {
    let quoted = match run(&udp6(v6(V6_CLIENT), wkp(V4_SERVER), 64, b"q")) {
        Out::Packets(mut v) => v.remove(0),
        o => panic!("{o:?}"),
    };
    let mut icmp4 = vec![3u8, 3, 0, 0, 0, 0, 0, 0];
    icmp4.extend_from_slice(&quoted);
    let q6 = match run(&udp4(v4(V4_CLIENT), v4(V4_EAM_SERVER), 64, b"q")) {
        Out::Packets(mut v) => v.remove(0),
        o => panic!("{o:?}"),
    };
    let mut icmp6 = vec![1u8, 4, 0, 0, 0, 0, 0, 0];
    icmp6.extend_from_slice(&q6);
    vec![
        udp6(v6(V6_CLIENT), wkp(V4_SERVER), 64, &[1u8; 100]),
        udp4(v4(V4_SERVER), v4("192.0.2.1"), 64, &[2u8; 100]),
        tcp6(v6(V6_CLIENT), wkp(V4_SERVER), b"GET /"),
        tcp4(v4(V4_SERVER), v4("192.0.2.1"), b"200 OK"),
        echo6(v6(V6_CLIENT), wkp(V4_SERVER), b"ping"),
        echo4_reply(v4(V4_SERVER), v4("192.0.2.1"), b"pong"),
        raw4(
            v4(V4_SERVER),
            quoted[12..16].try_into().unwrap(),
            1,
            64,
            false,
            false,
            0,
            9,
            &[],
            &icmp4,
        ),
        raw6(
            v6("2001:db8:e::1"),
            q6[8..24].try_into().unwrap(),
            58,
            64,
            &icmp6,
        ),
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
        frag6(v6(V6_CLIENT), wkp(V4_SERVER), 17, 0, true, 77, &[0u8; 64]),
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
    for p in seeds() {
        exercise(&p);
    }
}
