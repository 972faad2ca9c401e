//! Mapper-level tests of the RFC 6146 steps on a virtual clock (packet tests through
//! `Nat64::translate` live in `tests/nat64_packets.rs` of the core crate).

use super::bib::StaticBib;
use super::log::EventKind;
use super::pool4::PortRange;
use super::session::Filter;
use super::tcp::{flags::*, Lifetime, TcpState};
use super::*;
use crate::rfc6052::Prefix6052;
use crate::tuple::{Frag, Mapper, Role, Tuple4, Tuple6, L4};

const T1: &str = "192.0.2.1";
const A: &str = "2001:db8:1::a";
const B: &str = "2001:db8:1::b";

fn cfg() -> Nat64Config {
    let pool6 = Pool6::new(vec![Prefix6052::WKP], false).unwrap();
    let mut c = Nat64Config::new(pool6, vec![T1.parse().unwrap()], 0x1234_5678_9abc_def0);
    c.enforce_rfc_minimums = false;
    c.max_sessions = 10_000;
    c.max_sessions_per_host = 1000;
    c.shards = 4;
    c
}

fn nat(c: Nat64Config) -> Nat64 {
    Nat64::new(c).unwrap()
}

fn y6(z: &str) -> Ipv6Addr {
    let z: Ipv4Addr = z.parse().unwrap();
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

fn p6(src: &str, sport: u16, z: &str, dport: u16, proto: u8, fl: u8) -> Tuple6 {
    Tuple6 {
        src: src.parse().unwrap(),
        dst: y6(z),
        proto,
        l4: if proto == 58 {
            L4::IcmpId(sport)
        } else {
            L4::Ports {
                src: sport,
                dst: dport,
            }
        },
        frag: None,
        tcp_flags: fl,
    }
}

fn p4(z: &str, sport: u16, t: Ipv4Addr, dport: u16, proto: u8, fl: u8) -> Tuple4 {
    Tuple4 {
        src: z.parse().unwrap(),
        dst: t,
        proto,
        l4: if proto == 1 {
            L4::IcmpId(dport)
        } else {
            L4::Ports {
                src: sport,
                dst: dport,
            }
        },
        frag: None,
        tcp_flags: fl,
    }
}

fn ctx(ms: u64) -> Ctx {
    Ctx::new(Timestamp(ms), 1)
}

fn out6to4(n: &Nat64, now: u64, t: &Tuple6) -> Result<Tuple4, DropReason> {
    Nat64Mapper::new(n).map_6to4(&mut ctx(now), t, Role::Packet)
}

fn out4to6(n: &Nat64, now: u64, t: &Tuple4) -> Result<Tuple6, DropReason> {
    Nat64Mapper::new(n).map_4to6(&mut ctx(now), t, Role::Packet)
}

fn ports(l4: L4) -> (u16, u16) {
    match l4 {
        L4::Ports { src, dst } => (src, dst),
        other => panic!("expected ports, got {other:?}"),
    }
}

#[test]
fn udp_endpoint_independent_mapping_and_filtering() {
    let n = nat(cfg());
    let o1 = out6to4(&n, 0, &p6(A, 5000, "198.51.100.1", 53, 17, 0)).unwrap();
    assert_eq!(o1.src, T1.parse::<Ipv4Addr>().unwrap());
    assert_eq!(o1.dst, "198.51.100.1".parse::<Ipv4Addr>().unwrap());
    assert_eq!(o1.proto, 17);
    let (t, z) = ports(o1.l4);
    assert_eq!(z, 53);
    // RFC 4787 REQ-1: same (X',x) to another destination keeps (T,t).
    let o2 = out6to4(&n, 10, &p6(A, 5000, "203.0.113.7", 123, 17, 0)).unwrap();
    assert_eq!((o2.src, ports(o2.l4).0), (o1.src, t));
    // Reply from the peer reaches X':x from Y'(Z):z.
    let back = out4to6(&n, 20, &p4("198.51.100.1", 53, o1.src, t, 17, 0)).unwrap();
    assert_eq!(back.src, y6("198.51.100.1"));
    assert_eq!(back.dst, A.parse::<Ipv6Addr>().unwrap());
    assert_eq!(back.proto, 17);
    assert_eq!(ports(back.l4), (53, 5000));
    // Endpoint-independent filtering: a new peer may use the binding, and gets a session.
    let other = out4to6(&n, 30, &p4("198.51.100.99", 4444, o1.src, t, 17, 0)).unwrap();
    assert_eq!(other.dst, A.parse::<Ipv6Addr>().unwrap());
    assert_eq!(n.counts().sessions[Proto::Udp as usize], 3);
    assert_eq!(n.counts().bib[Proto::Udp as usize], 1);
    // No binding: no open relay.
    let stray = p4("198.51.100.1", 53, o1.src, t.wrapping_add(1), 17, 0);
    assert_eq!(out4to6(&n, 40, &stray), Err(DropReason::NoBinding));
    // Same port number, other protocol: separate BIB.
    let tcp_stray = p4("198.51.100.1", 53, o1.src, t, 6, SYN);
    assert_eq!(out4to6(&n, 40, &tcp_stray), Err(DropReason::NoBinding));
}

#[test]
fn address_dependent_filtering() {
    let mut c = cfg();
    c.filtering = Filtering::AddressDependent;
    let n = nat(c);
    let o = out6to4(&n, 0, &p6(A, 5000, "198.51.100.1", 53, 17, 0)).unwrap();
    let t = ports(o.l4).0;
    // Another port of the same peer address passes (address-dependent, not port-dependent).
    assert!(out4to6(&n, 1, &p4("198.51.100.1", 5353, o.src, t, 17, 0)).is_ok());
    assert_eq!(
        out4to6(&n, 2, &p4("198.51.100.2", 53, o.src, t, 17, 0)),
        Err(DropReason::Filtered)
    );
    // ICMP query: same rule on the identifier binding.
    let e = out6to4(&n, 3, &p6(A, 77, "198.51.100.1", 0, 58, 0)).unwrap();
    let L4::IcmpId(i2) = e.l4 else { panic!() };
    assert!(out4to6(&n, 4, &p4("198.51.100.1", 0, e.src, i2, 1, 0)).is_ok());
    assert_eq!(
        out4to6(&n, 5, &p4("198.51.100.3", 0, e.src, i2, 1, 0)),
        Err(DropReason::Filtered)
    );
}

#[test]
fn icmp_query_identifiers() {
    let n = nat(cfg());
    let o = out6to4(&n, 0, &p6(A, 0x0bad, "198.51.100.1", 0, 58, 0)).unwrap();
    assert_eq!(o.proto, 1);
    let L4::IcmpId(i2) = o.l4 else {
        panic!("{o:?}")
    };
    let back = out4to6(&n, 1, &p4("198.51.100.1", 0, o.src, i2, 1, 0)).unwrap();
    assert_eq!(back.proto, 58);
    assert_eq!(back.l4, L4::IcmpId(0x0bad));
    assert_eq!(back.dst, A.parse::<Ipv6Addr>().unwrap());
    // Same host and identifier towards another peer: same (T, i2) (EIM for ICMP, RFC 5508).
    let o2 = out6to4(&n, 2, &p6(A, 0x0bad, "203.0.113.9", 0, 58, 0)).unwrap();
    assert_eq!(o2.l4, L4::IcmpId(i2));
    // Two hosts with the same identifier get different i2.
    let ob = out6to4(&n, 3, &p6(B, 0x0bad, "198.51.100.1", 0, 58, 0)).unwrap();
    assert_ne!((ob.src, ob.l4), (o.src, o.l4));
}

#[test]
fn paired_pooling_and_port_class() {
    let mut c = cfg();
    c.pool4.addrs = (1..=8).map(|i| Ipv4Addr::new(192, 0, 2, i)).collect();
    let n = nat(c);
    let mut addrs = std::collections::HashSet::new();
    for h in 0..32u16 {
        let host = format!("2001:db8:2::{h:x}");
        let mut t_of_host = None;
        for (k, sport) in [22u16, 1023, 40000, 40001, 61000].iter().enumerate() {
            let proto = if k % 2 == 0 { 17 } else { 6 };
            let o = out6to4(&n, 0, &p6(&host, *sport, "198.51.100.1", 80, proto, SYN)).unwrap();
            // RFC 4787 REQ-2 paired: all bindings of a host, any protocol, use one address.
            assert_eq!(*t_of_host.get_or_insert(o.src), o.src);
            let t = ports(o.l4).0;
            // RFC 6146 §3.5.1.1: range class and parity kept.
            assert_eq!(t < 1024, *sport < 1024, "{sport} -> {t}");
            assert_eq!(t & 1, sport & 1, "{sport} -> {t}");
        }
        addrs.insert(t_of_host.unwrap());
    }
    // Hosts spread over the pool.
    assert!(addrs.len() >= 4, "{addrs:?}");
}

#[test]
fn ports_are_not_sequential() {
    let n = nat(cfg());
    let ts: Vec<u16> = (0..16u16)
        .map(|i| {
            ports(
                out6to4(&n, 0, &p6(A, 30000 + 2 * i, "198.51.100.1", 53, 17, 0))
                    .unwrap()
                    .l4,
            )
            .0
        })
        .collect();
    let steps = ts.windows(2).filter(|w| w[1].abs_diff(w[0]) <= 2).count();
    assert!(steps < 4, "allocation looks sequential: {ts:?}");
}

#[test]
fn pool_exhaustion_refuses_new_bindings_only() {
    let mut c = cfg();
    c.pool4.udp = PortRange::new(2000, 2003);
    let n = nat(c);
    let mut outs = Vec::new();
    for i in 0..4 {
        outs.push(out6to4(&n, 0, &p6(A, 3000 + i, "198.51.100.1", 53, 17, 0)).unwrap());
    }
    assert_eq!(
        out6to4(&n, 0, &p6(A, 4000, "198.51.100.1", 53, 17, 0)),
        Err(DropReason::PoolExhausted)
    );
    assert_eq!(n.session_count(), 4);
    // Existing bindings still work, also towards new peers.
    assert!(out6to4(&n, 1, &p6(A, 3000, "203.0.113.1", 53, 17, 0)).is_ok());
    assert_eq!(n.session_count(), 5);
}

#[test]
fn udp_expiry_on_virtual_clock_releases_binding() {
    let mut c = cfg();
    c.timeouts.udp = 120;
    let n = nat(c);
    let o = out6to4(&n, 1_000, &p6(A, 5000, "198.51.100.1", 53, 17, 0)).unwrap();
    let t = ports(o.l4).0;
    assert_eq!(n.pool4().used(0, Proto::Udp), 1);
    // Refreshed by the reply at 61 s.
    out4to6(&n, 61_000, &p4("198.51.100.1", 53, o.src, t, 17, 0)).unwrap();
    assert_eq!(n.expire(Timestamp(1_000 + 120_000)).sessions_removed, 0);
    assert_eq!(n.expire(Timestamp(61_000 + 119_999)).sessions_removed, 0);
    assert_eq!(n.session_count(), 1);
    let s = n.expire(Timestamp(61_000 + 121_000));
    assert_eq!(s.sessions_removed, 1);
    assert_eq!(n.session_count(), 0);
    assert_eq!(n.counts().bib, [0, 0, 0]);
    assert_eq!(n.pool4().used(0, Proto::Udp), 0);
    assert_eq!(
        out4to6(&n, 190_000, &p4("198.51.100.1", 53, o.src, t, 17, 0)),
        Err(DropReason::NoBinding)
    );
}

fn tcp_state(n: &Nat64) -> Option<TcpState> {
    let s = n.sessions(
        &Filter {
            proto: Some(Proto::Tcp),
            ..Filter::default()
        },
        Timestamp(0),
        10,
    );
    s.first().and_then(|s| s.tcp_state)
}

#[test]
fn tcp_v6_open_close_and_timers() {
    let n = nat(cfg()); // default TCP timers: est 7200 s, trans 240 s
    let z = "198.51.100.1";
    let o = out6to4(&n, 0, &p6(A, 40000, z, 80, 6, SYN)).unwrap();
    let t = ports(o.l4).0;
    assert_eq!(tcp_state(&n), Some(TcpState::V6Init));
    // V6 INIT lives TCP_TRANS only; the SYN-ACK keeps it transitory until the client's ACK.
    out4to6(&n, 1000, &p4(z, 80, o.src, t, 6, SYN | ACK)).unwrap();
    assert_eq!(tcp_state(&n), Some(TcpState::V4SynRcv));
    out6to4(&n, 2000, &p6(A, 40000, z, 80, 6, ACK)).unwrap();
    assert_eq!(tcp_state(&n), Some(TcpState::Established));
    // Established survives 2 h idle, then TCP_EST expiry moves it to TRANS (no removal).
    assert_eq!(n.expire(Timestamp(2000 + 7_199_000)).sessions_removed, 0);
    assert_eq!(tcp_state(&n), Some(TcpState::Established));
    assert_eq!(n.expire(Timestamp(2000 + 7_201_000)).sessions_removed, 0);
    assert_eq!(tcp_state(&n), Some(TcpState::Trans));
    // A segment revives it.
    let now = 2000 + 7_210_000;
    out6to4(&n, now, &p6(A, 40000, z, 80, 6, ACK)).unwrap();
    assert_eq!(tcp_state(&n), Some(TcpState::Established));
    // Close: V6 FIN, V4 FIN, then TCP_TRANS.
    out6to4(&n, now + 1, &p6(A, 40000, z, 80, 6, FIN | ACK)).unwrap();
    assert_eq!(tcp_state(&n), Some(TcpState::V6FinRcv));
    out4to6(&n, now + 2, &p4(z, 80, o.src, t, 6, FIN | ACK)).unwrap();
    assert_eq!(tcp_state(&n), Some(TcpState::V4FinV6FinRcv));
    out6to4(&n, now + 3, &p6(A, 40000, z, 80, 6, ACK)).unwrap();
    assert_eq!(n.expire(Timestamp(now + 239_000)).sessions_removed, 0);
    assert_eq!(n.expire(Timestamp(now + 241_000)).sessions_removed, 1);
    assert_eq!(n.counts().bib, [0, 0, 0]);
}

#[test]
fn half_open_tcp_from_an_absent_client_is_not_pinned() {
    // Issue 9: SYNs from IPv6 addresses that never answer; each server answers with a SYN-ACK
    // and retransmits it as Linux does (1, 3, 7, 15, 31, 63 s later). RFC 6146 would make every
    // session ESTABLISHED (7200 s); here they end after TCP_TRANS, counted from the SYN.
    let n = nat(cfg()); // tcp_trans 240 s, tcp_est 7200 s
    let z = "198.51.100.1";
    let mut outs = Vec::new();
    for i in 0..50u16 {
        let src = format!("2001:db8:7:{i:x}::1");
        outs.push(out6to4(&n, 0, &p6(&src, 40000, z, 443, 6, SYN)).unwrap());
    }
    for delay in [1_000u64, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000] {
        for o in &outs {
            out4to6(&n, delay, &p4(z, 443, o.src, ports(o.l4).0, 6, SYN | ACK)).unwrap();
        }
    }
    assert!(n
        .sessions(&Filter::default(), Timestamp(64_000), 100)
        .iter()
        .all(|s| s.tcp_state == Some(TcpState::V4SynRcv) && s.lifetime == Lifetime::TcpTrans));
    assert_eq!(n.expire(Timestamp(239_000)).sessions_removed, 0);
    assert_eq!(n.expire(Timestamp(241_000)).sessions_removed, 50);
    assert_eq!(n.counts().bib, [0, 0, 0], "pool4 ports released");
    assert_eq!(n.pool4().used(0, Proto::Tcp), 0);

    // The same from the IPv4 side: a spoofed SYN to a port forward, the IPv6 server's SYN-ACKs,
    // no ACK from the IPv4 "client".
    let mut c = cfg();
    c.static_bib.push(StaticBib {
        proto: Proto::Tcp,
        v6: (B.parse().unwrap(), 80),
        v4: (T1.parse().unwrap(), 8080),
    });
    let n = nat(c);
    let t1: Ipv4Addr = T1.parse().unwrap();
    out4to6(&n, 0, &p4("203.0.113.9", 5000, t1, 8080, 6, SYN)).unwrap();
    for delay in [1_000u64, 3_000, 7_000, 15_000] {
        out6to4(&n, delay, &p6(B, 80, "203.0.113.9", 5000, 6, SYN | ACK)).unwrap();
    }
    assert_eq!(tcp_state(&n), Some(TcpState::V6SynRcv));
    assert_eq!(n.expire(Timestamp(1_000 + 241_000)).sessions_removed, 1);

    // A live client's ACK opens the connection as before.
    let n = nat(cfg());
    let o = out6to4(&n, 0, &p6(A, 40000, z, 443, 6, SYN)).unwrap();
    out4to6(&n, 10, &p4(z, 443, o.src, ports(o.l4).0, 6, SYN | ACK)).unwrap();
    out6to4(&n, 20, &p6(A, 40000, z, 443, 6, ACK)).unwrap();
    assert_eq!(tcp_state(&n), Some(TcpState::Established));
    assert_eq!(n.expire(Timestamp(241_000)).sessions_removed, 0);
}

#[test]
fn tcp_v6_init_expires_after_trans() {
    let n = nat(cfg());
    out6to4(&n, 0, &p6(A, 40000, "198.51.100.1", 80, 6, SYN)).unwrap();
    assert_eq!(n.expire(Timestamp(239_000)).sessions_removed, 0);
    assert_eq!(n.expire(Timestamp(241_000)).sessions_removed, 1);
}

#[test]
fn tcp_rst_moves_to_trans() {
    let n = nat(cfg());
    let z = "198.51.100.1";
    let o = out6to4(&n, 0, &p6(A, 40000, z, 80, 6, SYN)).unwrap();
    let t = ports(o.l4).0;
    out4to6(&n, 1, &p4(z, 80, o.src, t, 6, SYN | ACK)).unwrap();
    out4to6(&n, 2, &p4(z, 80, o.src, t, 6, RST)).unwrap();
    assert_eq!(tcp_state(&n), Some(TcpState::Trans));
    assert_eq!(n.expire(Timestamp(2 + 241_000)).sessions_removed, 1);
}

#[test]
fn tcp_non_syn_without_binding_is_rejected() {
    let n = nat(cfg());
    assert_eq!(
        out6to4(&n, 0, &p6(A, 40000, "198.51.100.1", 80, 6, ACK)),
        Err(DropReason::TcpStateReject)
    );
    assert_eq!(n.session_count(), 0);
    assert_eq!(n.counts().bib, [0, 0, 0]);
}

#[test]
fn unsolicited_v4_syn() {
    let n = nat(cfg());
    let t1: Ipv4Addr = T1.parse().unwrap();
    // No BIB entry: dropped, no state (no open relay).
    assert_eq!(
        out4to6(&n, 0, &p4("203.0.113.5", 1234, t1, 8080, 6, SYN)),
        Err(DropReason::NoBinding)
    );
    assert_eq!(n.session_count(), 0);
    // With a BIB entry and endpoint-independent filtering: V4 INIT, forwarded.
    let o = out6to4(&n, 0, &p6(A, 40000, "198.51.100.1", 80, 6, SYN)).unwrap();
    let t = ports(o.l4).0;
    let r = out4to6(&n, 1, &p4("203.0.113.5", 1234, o.src, t, 6, SYN)).unwrap();
    assert_eq!(r.dst, A.parse::<Ipv6Addr>().unwrap());
    let v4init = n
        .sessions(&Filter::default(), Timestamp(1), 10)
        .into_iter()
        .find(|s| s.v4_dst.0 == "203.0.113.5".parse::<Ipv4Addr>().unwrap())
        .unwrap();
    assert_eq!(v4init.tcp_state, Some(TcpState::V4Init));
    assert_eq!(v4init.lifetime, Lifetime::TcpTrans);
}

#[test]
fn v4_syn_held_six_seconds_for_simultaneous_open() {
    let mut c = cfg();
    c.filtering = Filtering::AddressDependent;
    let n = nat(c);
    let z = "203.0.113.5";
    // The IPv6 host has a binding (x = 40000) from talking to someone else.
    let o = out6to4(&n, 0, &p6(A, 40000, "198.51.100.1", 80, 6, SYN)).unwrap();
    let t = ports(o.l4).0;
    // The IPv4 peer's SYN arrives first: held, not forwarded.
    let syn4 = p4(z, 5555, o.src, t, 6, SYN);
    assert_eq!(out4to6(&n, 1000, &syn4), Err(DropReason::TcpV4SynHeld));
    // Its retransmission is held as well, and does not open the filter for other ports.
    assert_eq!(out4to6(&n, 2000, &syn4), Err(DropReason::TcpV4SynHeld));
    assert_eq!(
        out4to6(&n, 2000, &p4(z, 5556, o.src, t, 6, ACK)),
        Err(DropReason::Filtered)
    );
    // The IPv6 side's SYN within 6 s: ESTABLISHED, and the peer's next SYN passes.
    out6to4(&n, 3000, &p6(A, 40000, z, 5555, 6, SYN)).unwrap();
    let st = n
        .sessions(&Filter::default(), Timestamp(3000), 10)
        .into_iter()
        .find(|s| s.v4_dst.1 == 5555)
        .unwrap();
    assert_eq!(st.tcp_state, Some(TcpState::V6SynRcv));
    assert!(out4to6(&n, 3500, &syn4).is_ok());
    // The IPv4 peer's ACK completes the open.
    assert!(out4to6(&n, 3550, &p4(z, 5555, o.src, t, 6, SYN | ACK)).is_ok());
    let st = n
        .sessions(&Filter::default(), Timestamp(3550), 10)
        .into_iter()
        .find(|s| s.v4_dst.1 == 5555)
        .unwrap();
    assert_eq!(st.tcp_state, Some(TcpState::Established));
    // Now the peer's address is one the host talks to: other ports of it pass the filter.
    assert!(out4to6(&n, 3600, &p4(z, 5556, o.src, t, 6, ACK)).is_ok());
    // Once that session is gone, the filter closes again.
    n.expire(Timestamp(3600 + 7_300_000));
    n.expire(Timestamp(3600 + 7_300_000 + 250_000));
    let o2 = out6to4(&n, 8_000_000, &p6(A, 40000, "198.51.100.1", 80, 6, SYN)).unwrap();
    let t2 = ports(o2.l4).0;
    assert_eq!(
        out4to6(&n, 8_000_001, &p4(z, 5557, o2.src, t2, 6, ACK)),
        Err(DropReason::Filtered)
    );
}

#[test]
fn held_v4_syn_expires_after_six_seconds() {
    let mut c = cfg();
    c.filtering = Filtering::AddressDependent;
    let n = nat(c);
    let o = out6to4(&n, 0, &p6(A, 40000, "198.51.100.1", 80, 6, SYN)).unwrap();
    let t = ports(o.l4).0;
    let syn4 = p4("203.0.113.5", 5555, o.src, t, 6, SYN);
    assert_eq!(out4to6(&n, 1000, &syn4), Err(DropReason::TcpV4SynHeld));
    assert_eq!(n.session_count(), 2);
    assert_eq!(n.expire(Timestamp(1000 + 5_900)).sessions_removed, 0);
    assert_eq!(n.expire(Timestamp(1000 + 6_100)).sessions_removed, 1);
    // The IPv6 SYN now opens a new V6 INIT session instead.
    out6to4(&n, 8000, &p6(A, 40000, "203.0.113.5", 5555, 6, SYN)).unwrap();
    assert_eq!(n.session_count(), 2);
}

#[test]
fn per_host_and_total_limits() {
    let mut c = cfg();
    c.max_sessions_per_host = 10;
    c.max_sessions = 25;
    let n = nat(c);
    // A SYN flood from one host fills its share only.
    let mut refused = 0;
    for i in 0..1000u16 {
        match out6to4(&n, 0, &p6(A, 10000 + i, "198.51.100.1", 80, 6, SYN)) {
            Ok(_) => {}
            Err(DropReason::SubscriberSessionLimit) => refused += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(refused, 990);
    assert_eq!(n.session_count(), 10);
    // Host A's existing flows continue.
    assert!(out6to4(&n, 1, &p6(A, 10000, "198.51.100.1", 80, 6, ACK)).is_ok());
    // Other hosts still get in, up to the total.
    // (Each in its own /64: one subscriber each.)
    let h = |i: u16| format!("2001:db8:9:{i}::1");
    for i in 0..10u16 {
        out6to4(&n, 2, &p6(&h(0), 2000 + i, "198.51.100.1", 53, 17, 0)).unwrap();
    }
    for i in 0..5u16 {
        out6to4(&n, 2, &p6(&h(1), 2000 + i, "198.51.100.1", 53, 17, 0)).unwrap();
    }
    assert_eq!(n.session_count(), 25);
    for host in [h(1), h(2)] {
        assert_eq!(
            out6to4(&n, 3, &p6(&host, 3000, "198.51.100.1", 53, 17, 0)),
            Err(DropReason::TableFull)
        );
    }
    // Existing flows continue when the table is full, also towards new peers of an
    // existing binding (which need a new session: refused, counted).
    // (h(1), below its own share: the total refuses; h(0) is at its share.)
    assert!(out6to4(&n, 4, &p6(&h(0), 2000, "198.51.100.1", 53, 17, 0)).is_ok());
    assert_eq!(
        out6to4(&n, 4, &p6(&h(1), 2000, "198.51.100.2", 53, 17, 0)),
        Err(DropReason::TableFull)
    );
    assert_eq!(
        out6to4(&n, 4, &p6(&h(0), 2000, "198.51.100.2", 53, 17, 0)),
        Err(DropReason::SubscriberSessionLimit)
    );
    // Nothing leaked: no BIB entry without a session, ports released.
    let bibs: usize = n.counts().bib.iter().sum();
    assert_eq!(bibs, 25);
}

#[test]
fn one_subscriber_rotating_addresses_gets_one_share() {
    // Issue 9: a host rotating source addresses inside its /64 (SLAAC privacy addresses, or on
    // purpose) is one subscriber: it cannot take more than max_sessions_per_host, so other
    // subscribers still get new flows.
    let mut c = cfg();
    c.max_sessions_per_host = 10;
    c.max_sessions = 25;
    let n = nat(c);
    let mut refused = 0;
    for i in 0..1000u16 {
        let src = format!("2001:db8:1:0:{i:x}::{i:x}");
        match out6to4(&n, 0, &p6(&src, 10000 + i, "198.51.100.1", 80, 6, SYN)) {
            Ok(_) => {}
            Err(DropReason::SubscriberSessionLimit) => refused += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(refused, 990);
    assert_eq!(n.session_count(), 10);
    // A second subscriber (another /64) gets all of its new flows.
    for i in 0..10u16 {
        let src = format!("2001:db8:2::{i:x}");
        out6to4(&n, 1, &p6(&src, 2000 + i, "198.51.100.1", 53, 17, 0)).unwrap();
    }
    // The prefix length is configurable: /128 counts each address on its own.
    let mut c = cfg();
    c.max_sessions_per_host = 1;
    c.subscriber_prefix_len = 128;
    let n = nat(c);
    for i in 0..20u16 {
        let src = format!("2001:db8:1::{i:x}");
        out6to4(&n, 0, &p6(&src, 1000, "198.51.100.1", 53, 17, 0)).unwrap();
    }
    let mut c = cfg();
    c.subscriber_prefix_len = 0;
    assert_eq!(
        Nat64::new(c).err(),
        Some(Nat64ConfigError::SubscriberPrefixLen(0))
    );
}

#[test]
fn v4_port_scan_creates_nothing() {
    let n = nat(cfg());
    let o = out6to4(&n, 0, &p6(A, 5000, "198.51.100.1", 53, 17, 0)).unwrap();
    let t = ports(o.l4).0;
    let mut nobind = 0;
    for port in 1..=65535u16 {
        if port == t {
            continue;
        }
        let r = out4to6(&n, 1, &p4("203.0.113.66", 40000, o.src, port, 17, 0));
        assert_eq!(r, Err(DropReason::NoBinding));
        nobind += 1;
        let r = out4to6(&n, 1, &p4("203.0.113.66", 40000, o.src, port, 6, SYN));
        assert_eq!(r, Err(DropReason::NoBinding));
    }
    assert_eq!(nobind, 65534);
    assert_eq!(n.session_count(), 1);
}

#[test]
fn static_bib_port_forward() {
    let mut c = cfg();
    c.pool4.tcp = PortRange::new(1024, 65535);
    let server: Ipv6Addr = "2001:db8:5::80".parse().unwrap();
    let t1: Ipv4Addr = T1.parse().unwrap();
    c.static_bib = vec![
        StaticBib {
            proto: Proto::Tcp,
            v6: (server, 80),
            v4: (t1, 80), // outside the dynamic range
        },
        StaticBib {
            proto: Proto::Udp,
            v6: (server, 53),
            v4: (t1, 5353),
        },
    ];
    let n = nat(c);
    assert_eq!(n.counts().static_bib, 2);
    let r = out4to6(&n, 0, &p4("203.0.113.5", 33333, t1, 80, 6, SYN)).unwrap();
    assert_eq!(r.dst, server);
    assert_eq!(ports(r.l4), (33333, 80));
    // The server's answer leaves through the static binding.
    let a = out6to4(
        &n,
        1,
        &p6("2001:db8:5::80", 80, "203.0.113.5", 33333, 6, SYN | ACK),
    )
    .unwrap();
    assert_eq!((a.src, ports(a.l4)), (t1, (80, 33333)));
    // The client's ACK opens the connection (until then it is half open, TCP_TRANS).
    out4to6(&n, 1, &p4("203.0.113.5", 33333, t1, 80, 6, ACK)).unwrap();
    let u = out4to6(&n, 2, &p4("203.0.113.5", 1111, t1, 5353, 17, 0)).unwrap();
    assert_eq!(ports(u.l4), (1111, 53));
    // Static entries outlive their sessions.
    // ESTABLISHED moves to TRANS at TCP_EST, then goes at TCP_TRANS.
    n.expire(Timestamp(100_000_000));
    assert_eq!(n.session_count(), 1);
    n.expire(Timestamp(100_000_000 + 241_000));
    assert_eq!(n.session_count(), 0);
    assert_eq!(n.counts().bib, [1, 1, 0]);
    assert_eq!(n.bib(&Filter::default(), 10).len(), 2);
    // Dynamic allocation never hands out a static port.
    assert!(n.pool4().owner(0, Proto::Udp, 5353).is_some());
}

#[test]
fn static_bib_validation() {
    let mut c = cfg();
    c.static_bib = vec![StaticBib {
        proto: Proto::Tcp,
        v6: ("2001:db8::1".parse().unwrap(), 80),
        v4: ("203.0.113.1".parse().unwrap(), 80),
    }];
    assert!(matches!(
        Nat64::new(c.clone()),
        Err(Nat64ConfigError::StaticBib { index: 0, .. })
    ));
    c.static_bib[0].v4.0 = T1.parse().unwrap();
    c.static_bib.push(StaticBib {
        proto: Proto::Tcp,
        v6: ("2001:db8::2".parse().unwrap(), 80),
        v4: (T1.parse().unwrap(), 80),
    });
    assert!(matches!(
        Nat64::new(c),
        Err(Nat64ConfigError::StaticBib { index: 1, .. })
    ));
}

#[test]
fn config_validation() {
    let mut c = cfg();
    c.enforce_rfc_minimums = true;
    c.timeouts.udp = 60;
    assert!(matches!(
        Nat64::new(c.clone()),
        Err(Nat64ConfigError::Timeout { name: "udp", .. })
    ));
    c.timeouts.udp = 300;
    assert!(Nat64::new(c.clone()).is_ok());
    c.shards = 3;
    assert_eq!(
        Nat64::new(c.clone()).unwrap_err(),
        Nat64ConfigError::Shards(3)
    );
    c.shards = 1;
    c.max_sessions = 0;
    assert!(matches!(Nat64::new(c), Err(Nat64ConfigError::ZeroLimit(_))));
}

#[test]
fn address_rules_of_section_3_5() {
    let n = nat(cfg());
    // Source in Pref64: dropped (RFC 6146 §5.4 loop prevention).
    let mut t = p6(A, 1, "198.51.100.1", 53, 17, 0);
    t.src = y6("192.0.2.55");
    assert_eq!(out6to4(&n, 0, &t), Err(DropReason::Pref64Source));
    // Destination outside Pref64.
    let mut t = p6(A, 1, "198.51.100.1", 53, 17, 0);
    t.dst = B.parse().unwrap();
    assert_eq!(
        out6to4(&n, 0, &t),
        Err(DropReason::UntranslatableDestination)
    );
    // IPv4 destination outside pool4.
    let t4 = p4("198.51.100.1", 53, "192.0.2.200".parse().unwrap(), 1, 17, 0);
    assert_eq!(
        out4to6(&n, 0, &t4),
        Err(DropReason::UntranslatableDestination)
    );
    // Other protocols (SCTP).
    let mut t = p6(A, 1, "198.51.100.1", 53, 132, 0);
    t.l4 = L4::None;
    assert_eq!(out6to4(&n, 0, &t), Err(DropReason::UnsupportedProtocol));
    // Broadcast peer.
    let t4 = p4("255.255.255.255", 53, T1.parse().unwrap(), 1, 17, 0);
    assert_eq!(out4to6(&n, 0, &t4), Err(DropReason::SpecialAddress));
    assert_eq!(n.session_count(), 0);
}

#[test]
fn hairpinning_between_two_ipv6_hosts() {
    let n = nat(cfg());
    // B has a binding (e.g. it talked to a STUN server), A reaches it through pool4.
    let ob = out6to4(&n, 0, &p6(B, 6000, "198.51.100.1", 3478, 17, 0)).unwrap();
    let tb = ports(ob.l4).0;
    let mut m = Nat64Mapper::new(&n);
    let a_out = m
        .map_6to4(&mut ctx(1), &p6(A, 7000, T1, tb, 17, 0), Role::Packet)
        .unwrap();
    assert!(m.hairpin(), "§3.8: destination is a pool4 address");
    // Second pass: the IPv4 packet is an incoming packet again.
    let to_b = out4to6(&n, 1, &a_out).unwrap();
    assert_eq!(to_b.dst, B.parse::<Ipv6Addr>().unwrap());
    let ta = ports(a_out.l4).0;
    assert_eq!(to_b.src, y6(T1));
    assert_eq!(ports(to_b.l4), (ta, 6000));
    // B answers to Y'(T):ta, which hairpins back to A.
    let mut m = Nat64Mapper::new(&n);
    let b_out = m
        .map_6to4(&mut ctx(2), &p6(B, 6000, T1, ta, 17, 0), Role::Packet)
        .unwrap();
    assert!(m.hairpin());
    let to_a = out4to6(&n, 2, &b_out).unwrap();
    assert_eq!(to_a.dst, A.parse::<Ipv6Addr>().unwrap());
    assert_eq!(ports(to_a.l4), (tb, 7000));
    // Ordinary traffic does not hairpin.
    let mut m = Nat64Mapper::new(&n);
    m.map_6to4(
        &mut ctx(3),
        &p6(A, 7000, "198.51.100.1", 53, 17, 0),
        Role::Packet,
    )
    .unwrap();
    assert!(!m.hairpin());
}

#[test]
fn icmpv4_error_reaches_the_right_ipv6_host() {
    let n = nat(cfg());
    let z = "198.51.100.1";
    let oa = out6to4(&n, 0, &p6(A, 5000, z, 33434, 17, 0)).unwrap();
    let ob = out6to4(&n, 0, &p6(B, 5000, z, 33434, 17, 0)).unwrap();
    assert_ne!(ports(oa.l4).0, ports(ob.l4).0);
    for (o, host) in [(oa, A), (ob, B)] {
        let mut m = Nat64Mapper::new(&n);
        // The quoted packet is what the NAT64 sent: (T,t) -> (Z,z).
        let inner = m.map_4to6(&mut ctx(1), &o, Role::Inner).unwrap();
        assert_eq!(inner.src, host.parse::<Ipv6Addr>().unwrap());
        assert_eq!(inner.dst, y6(z));
        assert_eq!(ports(inner.l4), (5000, 33434));
        // The outer header comes from a router on the path.
        let outer4 = Tuple4 {
            src: "203.0.113.254".parse().unwrap(),
            dst: o.src,
            proto: 1,
            l4: L4::None,
            frag: None,
            tcp_flags: 0,
        };
        let outer = m
            .map_4to6(&mut ctx(1), &outer4, Role::ErrorOuter(&inner))
            .unwrap();
        assert_eq!(outer.dst, host.parse::<Ipv6Addr>().unwrap());
        assert_eq!(outer.src, y6("203.0.113.254"));
        assert_eq!(outer.proto, 58);
    }
    // An error quoting a packet without a session.
    let mut bogus = oa;
    bogus.l4 = L4::Ports {
        src: ports(oa.l4).0 ^ 0x100,
        dst: 33434,
    };
    let mut m = Nat64Mapper::new(&n);
    assert_eq!(
        m.map_4to6(&mut ctx(1), &bogus, Role::Inner),
        Err(DropReason::NoSessionForIcmpError)
    );
    // Errors neither create nor refresh sessions.
    assert_eq!(n.session_count(), 2);
}

/// An ICMPv4 error about a session, as the mapper sees it: the quoted packet (Role::Inner),
/// then the outer header from a router on the path.
fn icmp4_error_about(n: &Nat64, now: u64, quoted: &Tuple4) -> Result<Tuple6, DropReason> {
    let mut m = Nat64Mapper::new(n);
    let inner = m.map_4to6(&mut ctx(now), quoted, Role::Inner)?;
    let outer4 = Tuple4 {
        src: "203.0.113.254".parse().unwrap(),
        dst: quoted.src,
        proto: 1,
        l4: L4::None,
        frag: None,
        tcp_flags: 0,
    };
    m.map_4to6(&mut ctx(now), &outer4, Role::ErrorOuter(&inner))
}

/// RFC 6146 §3.5.3 / §3.6: ICMP errors are translated through a session but do not refresh it.
/// On the injected clock: an error just before the timeout leaves the session to expire on time,
/// while a data packet at the same moment keeps it.
#[test]
fn icmp_errors_do_not_refresh_sessions_data_does() {
    let z = "198.51.100.1";
    for refresh_with_data in [false, true] {
        // TCP: ESTABLISHED moves to TRANS at TCP_EST (7200 s here) after the last segment.
        let n = nat(cfg());
        let o = out6to4(&n, 0, &p6(A, 40000, z, 80, 6, SYN)).unwrap();
        let t = ports(o.l4).0;
        out4to6(&n, 1000, &p4(z, 80, o.src, t, 6, SYN | ACK)).unwrap();
        out6to4(&n, 2000, &p6(A, 40000, z, 80, 6, ACK)).unwrap();
        assert_eq!(tcp_state(&n), Some(TcpState::Established));
        let late = 2000 + 7_000_000;
        if refresh_with_data {
            out4to6(&n, late, &p4(z, 80, o.src, t, 6, ACK)).unwrap();
        } else {
            // The error quotes what the NAT64 sent: (T,t) -> (Z,80).
            let quoted = p4(&o.src.to_string(), t, z.parse().unwrap(), 80, 6, ACK);
            let to = icmp4_error_about(&n, late, &quoted).unwrap();
            assert_eq!(
                to.dst,
                A.parse::<Ipv6Addr>().unwrap(),
                "the error is translated"
            );
        }
        n.expire(Timestamp(2000 + 7_201_000));
        let want = if refresh_with_data {
            TcpState::Established
        } else {
            TcpState::Trans
        };
        assert_eq!(
            tcp_state(&n),
            Some(want),
            "data refreshes: {refresh_with_data}"
        );

        // UDP: 120 s after the last packet.
        let mut c = cfg();
        c.timeouts.udp = 120;
        let n = nat(c);
        let o = out6to4(&n, 1_000, &p6(A, 5000, z, 53, 17, 0)).unwrap();
        let t = ports(o.l4).0;
        if refresh_with_data {
            out4to6(&n, 100_000, &p4(z, 53, o.src, t, 17, 0)).unwrap();
        } else {
            let quoted = p4(&o.src.to_string(), t, z.parse().unwrap(), 53, 17, 0);
            icmp4_error_about(&n, 100_000, &quoted).unwrap();
        }
        let removed = n.expire(Timestamp(1_000 + 121_000)).sessions_removed;
        assert_eq!(removed, usize::from(!refresh_with_data));
        assert_eq!(n.session_count(), usize::from(refresh_with_data));
    }
}

#[test]
fn icmpv6_error_goes_to_the_ipv4_peer_from_t() {
    let n = nat(cfg());
    let z = "198.51.100.1";
    // The IPv4 peer reached A through a static-less EIF binding.
    let o = out6to4(&n, 0, &p6(A, 5000, z, 53, 17, 0)).unwrap();
    let t = ports(o.l4).0;
    let to_a = out4to6(&n, 1, &p4(z, 53, o.src, t, 17, 0)).unwrap();
    // A's router answers with an ICMPv6 error quoting to_a.
    let mut m = Nat64Mapper::new(&n);
    let inner = m.map_6to4(&mut ctx(2), &to_a, Role::Inner).unwrap();
    assert_eq!((inner.src, inner.dst), (z.parse().unwrap(), o.src));
    assert_eq!(ports(inner.l4), (53, t));
    let outer6 = Tuple6 {
        src: "2001:db8:1::1".parse().unwrap(),
        dst: y6(z),
        proto: 58,
        l4: L4::None,
        frag: None,
        tcp_flags: 0,
    };
    let outer = m
        .map_6to4(&mut ctx(2), &outer6, Role::ErrorOuter(&inner))
        .unwrap();
    assert_eq!((outer.src, outer.dst), (o.src, z.parse().unwrap()));
    assert_eq!(outer.proto, 1);
    assert!(!m.hairpin());
    // ICMP query quoted: the echo request A sent, coming back in an IPv4 error.
    let e = out6to4(&n, 3, &p6(A, 99, z, 0, 58, 0)).unwrap();
    let mut m = Nat64Mapper::new(&n);
    let inner = m.map_4to6(&mut ctx(4), &e, Role::Inner).unwrap();
    assert_eq!(inner.l4, L4::IcmpId(99));
    assert_eq!(inner.src, A.parse::<Ipv6Addr>().unwrap());
}

#[test]
fn fragments_take_the_first_fragments_tuple() {
    let n = nat(cfg());
    let z = "198.51.100.1";
    let mut first = p6(A, 5000, z, 53, 17, 0);
    first.frag = Some(Frag {
        id: 0xdead_beef,
        offset: 0,
        more: true,
    });
    let o = out6to4(&n, 0, &first).unwrap();
    let mut rest = first;
    rest.l4 = L4::None;
    rest.frag = Some(Frag {
        id: 0xdead_beef,
        offset: 185,
        more: false,
    });
    let r = out6to4(&n, 10, &rest).unwrap();
    assert_eq!((r.src, r.dst, r.proto, r.l4), (o.src, o.dst, 17, L4::None));
    assert_eq!(r.frag, rest.frag);
    // Unknown datagram, and after the fragment timeout.
    let mut other = rest;
    other.frag = Some(Frag {
        id: 1,
        offset: 185,
        more: false,
    });
    assert_eq!(
        out6to4(&n, 10, &other),
        Err(DropReason::FragmentFirstMissing)
    );
    assert_eq!(
        out6to4(&n, 2_500, &rest),
        Err(DropReason::FragmentFirstMissing)
    );
    // The IPv4 direction: the reply fragmented by the peer.
    let t = ports(o.l4).0;
    let mut f4 = p4(z, 53, o.src, t, 17, 0);
    f4.frag = Some(Frag {
        id: 77,
        offset: 0,
        more: true,
    });
    let o6 = out4to6(&n, 3_000, &f4).unwrap();
    let mut r4 = f4;
    r4.l4 = L4::None;
    r4.frag = Some(Frag {
        id: 77,
        offset: 1480 / 8,
        more: false,
    });
    let r6 = out4to6(&n, 3_001, &r4).unwrap();
    assert_eq!((r6.src, r6.dst, r6.proto), (o6.src, o6.dst, 17));
}

#[test]
fn fragment_store_full_refuses_first_fragments() {
    let mut c = cfg();
    c.frag.max_entries = 2;
    let n = nat(c);
    let mk = |id| {
        let mut f = p6(A, 5000, "198.51.100.1", 53, 17, 0);
        f.frag = Some(Frag {
            id,
            offset: 0,
            more: true,
        });
        f
    };
    out6to4(&n, 0, &mk(1)).unwrap();
    out6to4(&n, 0, &mk(2)).unwrap();
    assert_eq!(out6to4(&n, 0, &mk(3)), Err(DropReason::FragmentStoreFull));
    assert_eq!(n.counts().fragments, 2);
    n.expire(Timestamp(5_000));
    assert_eq!(n.counts().fragments, 0);
    out6to4(&n, 5_000, &mk(3)).unwrap();
}

#[test]
fn mapping_log_events() {
    let mut c = cfg();
    c.mapping_log = true;
    c.mapping_log_capacity = 2;
    let n = nat(c);
    let o = out6to4(&n, 1_000, &p6(A, 5000, "198.51.100.1", 53, 17, 0)).unwrap();
    let mut ev = Vec::new();
    n.drain_events(&mut ev);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].kind, EventKind::Created);
    assert_eq!(ev[0].v6, (A.parse().unwrap(), 5000));
    assert_eq!(ev[0].v4, (o.src, ports(o.l4).0));
    assert_eq!(ev[0].created, Timestamp(1_000));
    n.expire(Timestamp(1_000_000));
    ev.clear();
    n.drain_events(&mut ev);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].kind, EventKind::Removed);
    assert_eq!(ev[0].created, Timestamp(1_000));
    assert_eq!(ev[0].at, Timestamp(1_000_000));
    // A full queue drops and counts, never blocks.
    for i in 0..10 {
        out6to4(&n, 2_000_000, &p6(A, 6000 + i, "198.51.100.1", 53, 17, 0)).unwrap();
    }
    assert_eq!(n.counts().events_dropped, 8);
    // Off: nothing queued.
    let n = nat(cfg());
    out6to4(&n, 0, &p6(A, 5000, "198.51.100.1", 53, 17, 0)).unwrap();
    ev.clear();
    n.drain_events(&mut ev);
    assert!(ev.is_empty());
}

#[test]
fn snapshots_filter() {
    let n = nat(cfg());
    out6to4(&n, 0, &p6(A, 5000, "198.51.100.1", 53, 17, 0)).unwrap();
    out6to4(&n, 0, &p6(A, 5001, "198.51.100.2", 80, 6, SYN)).unwrap();
    out6to4(&n, 0, &p6(B, 9, "198.51.100.1", 0, 58, 0)).unwrap();
    let all = n.sessions(&Filter::default(), Timestamp(0), 100);
    assert_eq!(all.len(), 3);
    let f = |proto, v6: Option<&str>, v4: Option<&str>| Filter {
        proto,
        v6: v6.map(|a| a.parse().unwrap()),
        v4: v4.map(|a| a.parse().unwrap()),
    };
    assert_eq!(
        n.sessions(&f(Some(Proto::Tcp), None, None), Timestamp(0), 100)
            .len(),
        1
    );
    assert_eq!(
        n.sessions(&f(None, Some(A), None), Timestamp(0), 100).len(),
        2
    );
    assert_eq!(
        n.sessions(&f(None, None, Some("198.51.100.1")), Timestamp(0), 100)
            .len(),
        2
    );
    assert_eq!(
        n.sessions(&f(None, None, Some(T1)), Timestamp(0), 100)
            .len(),
        3
    );
    assert_eq!(n.sessions(&Filter::default(), Timestamp(0), 2).len(), 2);
    let icmp = n.sessions(&f(Some(Proto::Icmp), None, None), Timestamp(1000), 100)[0];
    assert_eq!(icmp.v6_src.1, 9);
    assert_eq!(icmp.v6_dst.0, y6("198.51.100.1"));
    assert_eq!(icmp.expires_in_ms, 60_000 - 1000 + 100);
    assert_eq!(n.bib(&f(None, Some(B), None), 100).len(), 1);
    let line = icmp.to_string();
    assert!(
        line.starts_with("icmp [2001:db8:1::b]:9 [64:ff9b::c633:6401]:9 <-> 192.0.2.1:"),
        "{line}"
    );
    assert!(line.ends_with(" - 59.1s"), "{line}");
    let b = n.bib(&f(Some(Proto::Tcp), None, None), 100)[0].to_string();
    assert!(
        b.starts_with("tcp [2001:db8:1::a]:5001 <-> 192.0.2.1:")
            && b.ends_with(" dynamic 1 sessions"),
        "{b}"
    );
    assert_eq!(n.bib(&f(Some(Proto::Udp), None, None), 100)[0].sessions, 1);
}

#[test]
fn shared_by_threads() {
    let n = nat(cfg());
    std::thread::scope(|s| {
        for w in 0..4u16 {
            let n = &n;
            s.spawn(move || {
                for i in 0..200u16 {
                    let host = format!("2001:db8:7::{:x}", i % 17);
                    let o = out6to4(
                        n,
                        0,
                        &p6(&host, 1000 + w * 1000 + i, "198.51.100.1", 53, 17, 0),
                    )
                    .unwrap();
                    let (t, _) = ports(o.l4);
                    let back = out4to6(n, 1, &p4("198.51.100.1", 53, o.src, t, 17, 0)).unwrap();
                    assert_eq!(back.dst, host.parse::<Ipv6Addr>().unwrap());
                }
            });
        }
    });
    assert_eq!(n.session_count(), 800);
    assert_eq!(n.counts().sessions[Proto::Udp as usize], 800);
    n.expire(Timestamp(10_000_000));
    assert_eq!(n.session_count(), 0);
    assert_eq!(n.pool4().used(0, Proto::Udp), 0);
}

#[test]
fn nat64_is_send_and_sync() {
    fn ok<T: Send + Sync>() {}
    ok::<Nat64>();
}

#[test]
fn pref64_match_agrees_with_pool6() {
    let pf = |s: &str, l| Prefix6052::new(s.parse().unwrap(), l).unwrap();
    for (prefixes, strict) in [
        (vec![Prefix6052::WKP], true),
        (vec![Prefix6052::WKP], false),
        (vec![pf("2001:db8:64::", 48), pf("2001:db8:ff::", 96)], true),
        (vec![pf("2001:db8::", 32), pf("64:ff9b:1::", 56)], false),
    ] {
        let pool6 = Pool6::new(prefixes, strict).unwrap();
        let m = super::Pref64Match::new(&pool6);
        for v4 in ["8.8.8.8", "192.0.2.1", "10.1.2.3", "203.0.113.255"] {
            let v4: Ipv4Addr = v4.parse().unwrap();
            let e = m.embed(v4);
            assert_eq!(e.map(|a| a.octets()), pool6.embed(v4), "{v4}");
            let a = Ipv6Addr::from(pool6.prefixes()[0].embed(v4));
            assert!(m.contains(&a));
            assert_eq!(m.extract(&a), pool6.extract(&a.octets()), "{a}");
        }
        for other in ["2001:db9::1", "::1", "64:ff9c::1"] {
            let a: Ipv6Addr = other.parse().unwrap();
            assert_eq!(m.contains(&a), pool6.contains(&a.octets()));
            assert_eq!(m.extract(&a), pool6.extract(&a.octets()));
        }
    }
}

#[test]
fn static_bib_added_and_removed_at_run_time() {
    let mut c = cfg();
    c.pool4.tcp = PortRange::new(1024, 65535);
    let n = nat(c);
    let t1: Ipv4Addr = T1.parse().unwrap();
    let server: Ipv6Addr = "2001:db8:5::80".parse().unwrap();
    for port in [8080u16, 80] {
        // 8080 lies in the dynamic range (owner byte), 80 outside it (separate map).
        let e = StaticBib {
            proto: Proto::Tcp,
            v6: (server, 80),
            v4: (t1, port),
        };
        let syn = p4("203.0.113.5", 33333, t1, port, 6, SYN);
        assert_eq!(out4to6(&n, 0, &syn), Err(DropReason::NoBinding));
        n.add_static_bib(&e, Timestamp(0)).unwrap();
        assert_eq!(
            n.add_static_bib(&e, Timestamp(0)),
            Err(super::StaticBibError(
                "the IPv6 transport address already has a BIB entry"
            ))
        );
        assert_eq!(out4to6(&n, 1, &syn).unwrap().dst, server);
        out4to6(&n, 1, &p4("203.0.113.6", 4444, t1, port, 6, SYN)).unwrap();
        assert_eq!(n.session_count(), 2);
        assert_eq!(n.counts().static_bib, 1);
        assert!(n.remove_static_bib(&e, Timestamp(2)));
        assert!(!n.remove_static_bib(&e, Timestamp(2)));
        assert_eq!(n.session_count(), 0);
        assert_eq!(n.counts().bib, [0, 0, 0]);
        assert_eq!(n.counts().static_bib, 0);
        assert_eq!(n.pool4().used(0, Proto::Tcp), 0);
        assert_eq!(out4to6(&n, 3, &syn), Err(DropReason::NoBinding));
    }
}

#[test]
fn mass_expiry_in_chunks_removes_everything() {
    let mut c = cfg();
    c.max_sessions = 5000;
    c.max_sessions_per_host = 5000;
    c.shards = 1;
    let n = nat(c);
    for i in 0..4000u16 {
        out6to4(&n, 0, &p6(A, 1024 + i, "198.51.100.1", 53, 17, 0)).unwrap();
    }
    // One shard, 4000 due sessions: several 1024-session chunks in one call.
    assert_eq!(n.expire(Timestamp(1_000_000)).sessions_removed, 4000);
    assert_eq!(n.session_count(), 0);
    assert_eq!(n.pool4().used(0, Proto::Udp), 0);
}

/// RFC 6146 §4: the constants, as the defaults (FRAGMENT_MIN 2 s, UDP_DEFAULT 5 min, TCP_TRANS
/// 4 min, TCP_EST 2 h, TCP_INCOMING_SYN 6 s, ICMP_DEFAULT 60 s).
#[test]
fn rfc6146_section_4_constants_are_the_defaults() {
    let t = Timeouts::default();
    assert_eq!(
        (t.udp, t.tcp_trans, t.tcp_est, t.tcp_incoming_syn, t.icmp),
        (300, 240, 7200, 6, 60)
    );
    assert_eq!(super::frag::FragConfig::default().timeout_ms, 2000);
}

/// §3.5.3: an ICMPv4 query to pool4 with no BIB entry for its identifier is dropped and creates
/// nothing; the identifier a host was given passes.
#[test]
fn icmpv4_query_without_binding_is_dropped() {
    let n = nat(cfg());
    let o = out6to4(&n, 0, &p6(A, 7, "198.51.100.1", 0, 58, 0)).unwrap();
    let L4::IcmpId(i2) = o.l4 else {
        panic!("no identifier")
    };
    for id in [i2.wrapping_add(1), i2.wrapping_sub(1), 0, 65535] {
        if id == i2 {
            continue;
        }
        assert_eq!(
            out4to6(&n, 1, &p4("198.51.100.1", 0, o.src, id, 1, 0)),
            Err(DropReason::NoBinding),
            "id {id}"
        );
    }
    assert_eq!(n.session_count(), 1);
    let back = out4to6(&n, 1, &p4("198.51.100.1", 0, o.src, i2, 1, 0)).unwrap();
    assert_eq!(back.l4, L4::IcmpId(7));
}

/// Packet helpers for the hairpin test below (etherparse builds every input).
mod hairpin_fragments {
    use super::*;
    use crate::{AUX_LEN, HEADROOM};
    use etherparse::{IpFragOffset, IpNumber, Ipv6FragmentHeader, Ipv6Header, PacketBuilder};

    fn v6(s: &str) -> [u8; 16] {
        s.parse::<Ipv6Addr>().unwrap().octets()
    }

    /// One IPv6 fragment of `seg` (a UDP segment): bytes `from..to`, fragment id `id`.
    fn frag6(src: &str, dst: Ipv6Addr, seg: &[u8], from: usize, to: usize, id: u32) -> Vec<u8> {
        let h = Ipv6Header {
            traffic_class: 0,
            flow_label: Default::default(),
            payload_length: (8 + to - from) as u16,
            next_header: IpNumber(44),
            hop_limit: 64,
            source: v6(src),
            destination: dst.octets(),
        };
        let f = Ipv6FragmentHeader::new(
            IpNumber(17),
            IpFragOffset::try_new((from / 8) as u16).unwrap(),
            to < seg.len(),
            id,
        );
        let mut v = Vec::new();
        h.write(&mut v).unwrap();
        f.write(&mut v).unwrap();
        v.extend_from_slice(&seg[from..to]);
        v
    }

    /// RFC 1071 sum over `d` (the test's own, not the crate's).
    fn sum(d: &[u8]) -> u32 {
        d.chunks(2)
            .map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0)))
            .sum()
    }

    fn fold(mut s: u32) -> u32 {
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s
    }

    /// §3.8 with §3.4: A's datagram to B's pool4 transport address is hairpinned. Its non-first
    /// fragment is translated while its first fragment is between its two passes (on another
    /// worker): the first pass (IPv6→IPv4) finds the first fragment's addresses, the second
    /// (IPv4→IPv6) does not yet. It is held there and sent to B when the first fragment's
    /// second pass comes, with the hop limit decremented once.
    #[test]
    fn hairpinned_fragment_between_its_first_fragments_two_passes_is_held() {
        let n = nat(cfg());
        let mut buf = vec![0xa5u8; HEADROOM + 4096];
        let mut aux = vec![0xa5u8; AUX_LEN];
        let mut c = ctx(1);
        // B's binding (T, tb).
        let mut q = Vec::new();
        PacketBuilder::ipv6(v6(B), y6("198.51.100.1").octets(), 64)
            .udp(6000, 3478)
            .write(&mut q, b"stun")
            .unwrap();
        buf[HEADROOM..HEADROOM + q.len()].copy_from_slice(&q);
        let Verdict::Forward { start, .. } =
            n.translate(&mut c, &mut buf, HEADROOM, q.len(), &mut aux)
        else {
            panic!("B's packet")
        };
        let tb = u16::from_be_bytes([buf[start + 20], buf[start + 21]]);
        // A -> Y'(T):tb, 200 bytes of payload in two fragments.
        let mut whole = Vec::new();
        PacketBuilder::ipv6(v6(A), y6(T1).octets(), 64)
            .udp(7000, tb)
            .write(&mut whole, &[0x3c; 200])
            .unwrap();
        let seg = &whole[40..];
        let f0 = frag6(A, y6(T1), seg, 0, 104, 0x77);
        let f1 = frag6(A, y6(T1), seg, 104, seg.len(), 0x77);

        // The first fragment's first pass only (the other worker stops between its passes).
        let mut b0 = vec![0xa5u8; HEADROOM + 4096];
        b0[HEADROOM..HEADROOM + f0.len()].copy_from_slice(&f0);
        let mut m = Nat64Mapper::new(&n);
        let Verdict::Forward { start: s0, len: l0 } = rfc7915::translate_6to4(
            &n.xlat,
            &mut m,
            &mut c,
            &mut b0,
            HEADROOM,
            f0.len(),
            &mut aux,
        ) else {
            panic!("first pass")
        };
        assert!(m.hairpin());

        // The non-first fragment now: held on its second pass, nothing sent.
        buf[HEADROOM..HEADROOM + f1.len()].copy_from_slice(&f1);
        let v = n.translate(&mut c, &mut buf, HEADROOM, f1.len(), &mut aux);
        assert_eq!(v, Verdict::Drop(DropReason::FragmentHeld));
        assert!(n
            .take_released(&mut c, &mut buf, HEADROOM, &mut aux)
            .is_none());

        // The first fragment's second pass: to B; then the held fragment is released.
        let Verdict::Forward { start, len } = n.hairpin_pass(&mut c, &mut b0, s0, l0, &mut aux)
        else {
            panic!("second pass")
        };
        let first = b0[start..start + len].to_vec();
        let Some(Verdict::Forward { start, len }) =
            n.take_released(&mut c, &mut buf, HEADROOM, &mut aux)
        else {
            panic!("the held fragment is released")
        };
        let second = buf[start..start + len].to_vec();
        assert!(n
            .take_released(&mut c, &mut buf, HEADROOM, &mut aux)
            .is_none());
        for p in [&first, &second] {
            assert_eq!(&p[8..24], &y6(T1).octets(), "from Y'(T)");
            assert_eq!(&p[24..40], &v6(B), "to B");
            assert_eq!(p[7], 63, "one hop");
            assert_eq!((p[6], p[40]), (44, 17));
        }
        // Together they are A's datagram with ports (ta, 6000) and a valid UDP checksum.
        let mut udp = first[48..].to_vec();
        udp.extend_from_slice(&second[48..]);
        assert_eq!(u16::from_be_bytes([udp[2], udp[3]]), 6000);
        assert_eq!(&udp[8..], &[0x3c; 200][..]);
        let ph = sum(&first[8..40]) + 17 + udp.len() as u32;
        assert_eq!(fold(ph + sum(&udp)), 0xffff, "UDP checksum");
        assert_eq!(n.counts().held.held, 0);
    }
}
