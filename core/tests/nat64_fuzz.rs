//! Random and mutated packets through the stateful translator, `Nat64::translate`: it never
//! panics, everything it emits re-parses as well-formed IP, and the tables stay consistent.
//! Inputs: valid NAT64 traffic (built with etherparse, including fragments and ICMP errors that
//! quote live sessions), then byte flips, truncations and random bytes.

mod common;
use common::*;
use etherparse::PacketBuilder;
use nat64_core::nat64::session::Filter;
use nat64_core::nat64::{Filtering, Nat64, Nat64Config};
use nat64_core::pool6::Pool6;
use nat64_core::rfc6052::Prefix6052;
use nat64_core::{packets, Ctx, Timestamp, Verdict, AUX_LEN, HEADROOM};
use proptest::prelude::*;

const T: &str = "192.0.2.1";
const Z: &str = "198.51.100.10";

fn nat(adf: bool) -> Nat64 {
    let pool6 = Pool6::new(vec![Prefix6052::WKP], false).unwrap();
    let mut c = Nat64Config::new(pool6, vec![T.parse().unwrap()], 11);
    c.max_sessions = 64;
    c.max_sessions_per_host = 16;
    c.shards = 2;
    c.frag.max_reassembly = 2;
    if adf {
        c.filtering = Filtering::AddressDependent;
    }
    Nat64::new(c).unwrap()
}

fn check_output(p: &[u8]) {
    match p.first().map(|b| b >> 4) {
        Some(4) => {
            let (h, _) = etherparse::Ipv4Header::from_slice(p).expect("IPv4 header");
            assert_eq!(usize::from(h.total_len), p.len());
            assert!(v4_header_ok(p));
        }
        Some(6) => {
            let (h, _) = etherparse::Ipv6Header::from_slice(p).expect("IPv6 header");
            assert_eq!(40 + usize::from(h.payload_length), p.len());
        }
        _ => panic!("output is not IP: {p:02x?}"),
    }
}

fn run(n: &Nat64, now: u64, input: &[u8]) -> Option<Vec<u8>> {
    let mut buf = vec![0xa5u8; HEADROOM + input.len()];
    buf[HEADROOM..].copy_from_slice(input);
    let mut aux = vec![0xa5u8; AUX_LEN];
    let mut ctx = Ctx::new(Timestamp(now), 3);
    match n.translate(&mut ctx, &mut buf, HEADROOM, input.len(), &mut aux) {
        Verdict::Forward { start, len } => {
            check_output(&buf[start..start + len]);
            Some(buf[start..start + len].to_vec())
        }
        Verdict::ForwardAux { len } | Verdict::IcmpError { len, .. } => {
            let mut seen = 0;
            for p in packets(&aux[..len]) {
                check_output(p);
                seen += p.len();
            }
            assert_eq!(seen, len);
            None
        }
        Verdict::Drop(_) => None,
    }
}

/// Valid traffic: flows from two hosts, replies, hairpin, fragments, ICMP errors.
fn seeds(n: &Nat64) -> Vec<Vec<u8>> {
    let a = v6("2001:db8:1::a");
    let mut s = Vec::new();
    let mut u6 = Vec::new();
    PacketBuilder::ipv6(a, wkp(Z), 64)
        .udp(5000, 53)
        .write(&mut u6, b"query")
        .unwrap();
    s.push(u6.clone());
    let o = run(n, 0, &u6).expect("translated");
    let t = u16::from_be_bytes([o[20], o[21]]);
    let mut u4 = Vec::new();
    PacketBuilder::ipv4(v4(Z), v4(T), 64)
        .udp(53, t)
        .write(&mut u4, b"answer")
        .unwrap();
    s.push(u4);
    let mut tcp = Vec::new();
    PacketBuilder::ipv6(a, wkp(Z), 64)
        .tcp(40000, 80, 1, 1000)
        .syn()
        .write(&mut tcp, b"")
        .unwrap();
    s.push(tcp);
    let mut hp = Vec::new();
    PacketBuilder::ipv6(v6("2001:db8:1::b"), wkp(T), 64)
        .udp(7000, t)
        .write(&mut hp, b"hairpin")
        .unwrap();
    s.push(hp);
    let mut echo = Vec::new();
    PacketBuilder::ipv6(a, wkp(Z), 64)
        .icmpv6_echo_request(9, 1)
        .write(&mut echo, &[1u8; 2000])
        .unwrap();
    let pl = &echo[40..];
    s.push(frag6(a, wkp(Z), 58, 0, true, 77, &pl[..1232]));
    s.push(frag6(a, wkp(Z), 58, 154, false, 77, &pl[1232..]));
    let mut big = Vec::new();
    PacketBuilder::ipv6(a, wkp(Z), 64)
        .udp(5000, 53)
        .write(&mut big, &[2u8; 1600])
        .unwrap();
    let pl = &big[40..];
    s.push(frag6(a, wkp(Z), 17, 0, true, 78, &pl[..1232]));
    s.push(frag6(a, wkp(Z), 17, 154, false, 78, &pl[1232..]));
    let mut err = vec![11u8, 0, 0, 0, 0, 0, 0, 0];
    err.extend_from_slice(&o);
    s.push(raw4(
        v4("203.0.113.1"),
        v4(T),
        1,
        64,
        false,
        false,
        0,
        5,
        &[],
        &err,
    ));
    s
}

fn consistent(n: &Nat64) {
    let c = n.counts();
    let listed = n
        .sessions(&Filter::default(), Timestamp(0), usize::MAX)
        .len();
    assert_eq!(c.sessions.iter().sum::<usize>(), listed);
    assert_eq!(n.session_count(), listed);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn mutated_traffic(
        edits in proptest::collection::vec((any::<usize>(), any::<usize>(), any::<u8>(), 0..3u8), 1..40),
        adf in any::<bool>(),
    ) {
        let n = nat(adf);
        let seeds = seeds(&n);
        for (i, (which, at, byte, kind)) in edits.into_iter().enumerate() {
            let mut p = seeds[which % seeds.len()].clone();
            match kind {
                0 => {
                    let k = at % p.len();
                    p[k] ^= byte | 1;
                }
                1 => p.truncate(at % (p.len() + 1)),
                _ => {
                    let k = at % p.len();
                    p[k] = byte;
                    // Keep an IPv4 header checksum valid so mutations reach deeper code.
                    if p[0] >> 4 == 4 && p.len() >= 20 {
                        p[10] = 0;
                        p[11] = 0;
                        let ihl = usize::from(p[0] & 15) * 4;
                        if ihl >= 20 && ihl <= p.len() {
                            let mut s = sum16(&p[..ihl]);
                            while s > 0xffff {
                                s = (s & 0xffff) + (s >> 16);
                            }
                            let c = !(s as u16);
                            p[10..12].copy_from_slice(&c.to_be_bytes());
                        }
                    }
                }
            }
            run(&n, (i as u64) * 700, &p);
            // Every seed again, so state keeps moving.
            run(&n, (i as u64) * 700 + 1, &seeds[i % seeds.len()]);
        }
        consistent(&n);
        n.expire(Timestamp(100_000_000));
        n.expire(Timestamp(200_000_000));
        consistent(&n);
        prop_assert_eq!(n.session_count(), 0);
    }

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200), v in 4..7u8) {
        let n = nat(false);
        let mut p = bytes;
        if let Some(b) = p.first_mut() {
            *b = (v << 4) | (*b & 15);
        }
        run(&n, 0, &p);
        consistent(&n);
    }
}
