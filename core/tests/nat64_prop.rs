//! Property test of the RFC 6146 tables: random mixes of IPv6 and IPv4 packets (TCP with random
//! flags, UDP, ICMP), ICMP errors and expiry ticks on a virtual clock. Invariants: the counters
//! agree with the listed tables, every session has its BIB entry, replies always reach the host
//! that owns the binding, and after everything expires no session, BIB entry or pool4 port is
//! left behind (static entries excepted).

use nat64_core::nat64::bib::StaticBib;
use nat64_core::nat64::session::Filter;
use nat64_core::nat64::{Filtering, Nat64, Nat64Config, Nat64Mapper, Proto};
use nat64_core::pool6::Pool6;
use nat64_core::rfc6052::Prefix6052;
use nat64_core::{Ctx, Mapper, Role, Timestamp, Tuple4, Tuple6, L4};
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone)]
enum Op {
    /// host, src port, peer, dst port, protocol (0 tcp, 1 udp, 2 icmp), tcp flags
    Out6(u8, u16, u8, u16, u8, u8),
    /// peer, src port, pool4 address, dst port, protocol, tcp flags
    In4(u8, u16, u8, u16, u8, u8),
    /// reply to the n-th binding seen so far, with flags
    Reply(usize, u8),
    /// advance the clock by this many seconds and expire
    Tick(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..6u8, 1000..1012u16, 0..4u8, prop_oneof![Just(53u16), Just(80), Just(443)], 0..3u8, any::<u8>())
            .prop_map(|(h, s, z, d, p, f)| Op::Out6(h, s, z, d, p, f)),
        2 => (0..4u8, 1..2000u16, 0..2u8, 0..4096u16, 0..3u8, any::<u8>())
            .prop_map(|(z, s, a, d, p, f)| Op::In4(z, s, a, d, p, f)),
        3 => (0..64usize, any::<u8>()).prop_map(|(i, f)| Op::Reply(i, f)),
        1 => (0..400u32).prop_map(Op::Tick),
    ]
}

fn host(h: u8) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, u16::from(h) + 1)
}
fn peer(z: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100, z + 1)
}
fn pool(a: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, a + 1)
}
fn y6(z: Ipv4Addr) -> Ipv6Addr {
    let o = z.octets();
    Ipv6Addr::new(
        0x64,
        0xff9b,
        0,
        0,
        0,
        0,
        u16::from_be_bytes([o[0], o[1]]),
        u16::from_be_bytes([o[2], o[3]]),
    )
}
const PROTOS: [(u8, u8); 3] = [(6, 6), (17, 17), (58, 1)];

fn check_consistent(n: &Nat64, now: Timestamp) {
    let c = n.counts();
    let sessions = n.sessions(&Filter::default(), now, usize::MAX);
    let bib = n.bib(&Filter::default(), usize::MAX);
    assert_eq!(c.sessions.iter().sum::<usize>(), sessions.len());
    assert_eq!(n.session_count(), sessions.len());
    assert_eq!(c.bib.iter().sum::<usize>(), bib.len());
    for s in &sessions {
        let b = bib
            .iter()
            .find(|b| b.proto == s.proto && b.v6 == s.v6_src && b.v4 == s.v4_src)
            .expect("every session has its BIB entry");
        assert!(b.sessions >= 1);
    }
    for b in &bib {
        let k = sessions
            .iter()
            .filter(|s| s.proto == b.proto && s.v6_src == b.v6)
            .count();
        assert_eq!(k as u32, b.sessions, "{b:?}");
        assert!(
            b.is_static || b.sessions > 0,
            "dynamic BIB entry without session: {b:?}"
        );
    }
    for p in Proto::ALL {
        let used: usize = (0..n.pool4().len()).map(|a| n.pool4().used(a, p)).sum();
        let held = bib
            .iter()
            .filter(|b| b.proto == p && n.pool4().range(p).contains(b.v4.1))
            .count();
        assert_eq!(used, held, "pool4 ports of {p:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    #[test]
    fn tables_stay_consistent(ops in proptest::collection::vec(op(), 1..200), adf in any::<bool>()) {
        let pool6 = Pool6::new(vec![Prefix6052::WKP], false).unwrap();
        let mut c = Nat64Config::new(pool6, vec![pool(0), pool(1)], 7);
        c.enforce_rfc_minimums = false;
        c.timeouts.udp = 120;
        c.timeouts.tcp_est = 600;
        c.timeouts.tcp_trans = 240;
        c.max_sessions = 60;
        c.max_sessions_per_host = 15;
        c.shards = 4;
        c.pool4.udp = nat64_core::nat64::pool4::PortRange::new(1000, 1100);
        c.pool4.tcp = nat64_core::nat64::pool4::PortRange::new(1000, 1100);
        c.pool4.icmp = nat64_core::nat64::pool4::PortRange::new(0, 200);
        c.filtering = if adf { Filtering::AddressDependent } else { Filtering::EndpointIndependent };
        c.static_bib.push(StaticBib { proto: Proto::Tcp, v6: (host(9), 80), v4: (pool(1), 80) });
        let n = Nat64::new(c).unwrap();
        let mut now = 1_000u64;
        // Bindings seen: (IPv6 host, x, proto, outgoing IPv4 tuple).
        let mut seen: Vec<(Ipv6Addr, u16, u8, Tuple4)> = Vec::new();
        for op in ops {
            let mut ctx = Ctx::new(Timestamp(now), 1);
            match op {
                Op::Out6(h, s, z, d, p, f) => {
                    let (p6, _) = PROTOS[usize::from(p)];
                    let t = Tuple6 {
                        src: host(h),
                        dst: y6(peer(z)),
                        proto: p6,
                        l4: if p6 == 58 { L4::IcmpId(s) } else { L4::Ports { src: s, dst: d } },
                        frag: None,
                        tcp_flags: if p6 == 6 { f } else { 0 },
                    };
                    if let Ok(o) = Nat64Mapper::new(&n).map_6to4(&mut ctx, &t, Role::Packet) {
                        prop_assert!(o.src == pool(0) || o.src == pool(1));
                        prop_assert_eq!(o.dst, peer(z));
                        seen.push((host(h), s, p6, o));
                    }
                }
                Op::In4(z, s, a, d, p, f) => {
                    let (_, p4) = PROTOS[usize::from(p)];
                    let t = Tuple4 {
                        src: peer(z),
                        dst: pool(a),
                        proto: p4,
                        l4: if p4 == 1 { L4::IcmpId(d) } else { L4::Ports { src: s, dst: d } },
                        frag: None,
                        tcp_flags: if p4 == 6 { f } else { 0 },
                    };
                    if let Ok(o) = Nat64Mapper::new(&n).map_4to6(&mut ctx, &t, Role::Packet) {
                        // Only bound transport addresses pass: the BIB says who.
                        let b = n.bib(&Filter::default(), usize::MAX);
                        let (dport, _) = match o.l4 { L4::Ports { dst, src } => (dst, src), L4::IcmpId(i) => (i, 0), L4::None => (0, 0) };
                        prop_assert!(b.iter().any(|b| b.v6 == (o.dst, dport) && b.v4.0 == pool(a)), "{:?} {:?}", t, o);
                    }
                }
                Op::Reply(i, f) => {
                    if seen.is_empty() { continue; }
                    let (x6, x, p6, o) = seen[i % seen.len()];
                    let t = Tuple4 {
                        src: o.dst,
                        dst: o.src,
                        proto: o.proto,
                        l4: match o.l4 { L4::Ports { src, dst } => L4::Ports { src: dst, dst: src }, l => l },
                        frag: None,
                        tcp_flags: if p6 == 6 { f } else { 0 },
                    };
                    // The binding may have expired and its port gone to another host since:
                    // the reply must reach whoever holds (T, t) now.
                    let t_port = match o.l4 { L4::Ports { src, .. } => src, L4::IcmpId(i) => i, L4::None => 0 };
                    let owner = n
                        .bib(&Filter::default(), usize::MAX)
                        .into_iter()
                        .find(|b| b.v4 == (o.src, t_port) && b.proto.v4_number() == o.proto)
                        .map(|b| b.v6);
                    if let Ok(r) = Nat64Mapper::new(&n).map_4to6(&mut ctx, &t, Role::Packet) {
                        let rx = match r.l4 { L4::Ports { dst, .. } => dst, L4::IcmpId(i) => i, L4::None => 0 };
                        prop_assert_eq!(Some((r.dst, rx)), owner);
                        if owner == Some((x6, x)) {
                            prop_assert_eq!(r.dst, x6);
                        }
                    }
                }
                Op::Tick(s) => {
                    now += u64::from(s) * 1000;
                    n.expire(Timestamp(now));
                }
            }
            check_consistent(&n, Timestamp(now));
        }
        // Everything idle expires: TCP_EST, then TCP_TRANS, and all the rest.
        for _ in 0..3 {
            now += 10_000_000;
            n.expire(Timestamp(now));
        }
        check_consistent(&n, Timestamp(now));
        prop_assert_eq!(n.session_count(), 0);
        let b = n.bib(&Filter::default(), usize::MAX);
        prop_assert_eq!(b.len(), 1);
        prop_assert!(b[0].is_static);
    }
}
