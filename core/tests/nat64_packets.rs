//! RFC 6146 packet tests through `Nat64::translate`: inputs built by etherparse, outputs parsed
//! by etherparse, checksums verified with the independent RFC 1071 sum of `common`.

mod common;
use common::*;
use etherparse::{Icmpv4Type, Icmpv6Type, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use nat64_core::nat64::session::Filter;
use nat64_core::nat64::tcp::TcpState;
use nat64_core::nat64::{Filtering, Nat64, Nat64Config, Proto};
use nat64_core::pool6::Pool6;
use nat64_core::rfc6052::Prefix6052;
use nat64_core::{packets, Ctx, DropReason, Timestamp, Verdict, AUX_LEN, HEADROOM};
use std::net::{Ipv4Addr, Ipv6Addr};

const T: &str = "192.0.2.1";
const A: &str = "2001:db8:1::a";
const B: &str = "2001:db8:1::b";
const Z: &str = "198.51.100.10";

fn nat_with(f: impl FnOnce(&mut Nat64Config)) -> Nat64 {
    let pool6 = Pool6::new(vec![Prefix6052::WKP], false).unwrap();
    let mut c = Nat64Config::new(pool6, vec![T.parse().unwrap()], 99);
    c.max_sessions = 1000;
    c.max_sessions_per_host = 100;
    c.shards = 2;
    f(&mut c);
    Nat64::new(c).unwrap()
}

fn nat() -> Nat64 {
    nat_with(|_| {})
}

fn go(n: &Nat64, now: u64, pkt: &[u8]) -> Out {
    let mut buf = vec![0xa5u8; HEADROOM + pkt.len()];
    buf[HEADROOM..].copy_from_slice(pkt);
    let mut aux = vec![0xa5u8; AUX_LEN];
    let mut ctx = Ctx::new(Timestamp(now), 7);
    match n.translate(&mut ctx, &mut buf, HEADROOM, pkt.len(), &mut aux) {
        Verdict::Forward { start, len } => Out::Packets(vec![buf[start..start + len].to_vec()]),
        Verdict::ForwardAux { len } => {
            Out::Packets(packets(&aux[..len]).map(|p| p.to_vec()).collect())
        }
        Verdict::IcmpError { len, reason } => Out::Error(aux[..len].to_vec(), reason),
        Verdict::Drop(r) => Out::Drop(r),
    }
}

fn udp6p(src: &str, sport: u16, dst: [u8; 16], dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(v6(src), dst, 64)
        .udp(sport, dport)
        .write(&mut v, payload)
        .unwrap();
    v
}

fn udp4p(src: &str, sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(v4(src), dst, 64)
        .udp(sport, dport)
        .write(&mut v, payload)
        .unwrap();
    v
}

/// (src, dst, src port, dst port) of an IPv4 UDP/TCP packet, after checking its checksums.
fn ports4(p: &[u8]) -> (Ipv4Addr, Ipv4Addr, u16, u16) {
    assert!(v4_header_ok(p), "IPv4 header checksum");
    assert!(l4_ok_v4(p), "IPv4 transport checksum");
    let s = SlicedPacket::from_ip(p).unwrap();
    let Some(NetSlice::Ipv4(ip)) = s.net else {
        panic!("not IPv4")
    };
    let (sp, dp) = match s.transport {
        Some(TransportSlice::Udp(u)) => (u.source_port(), u.destination_port()),
        Some(TransportSlice::Tcp(t)) => (t.source_port(), t.destination_port()),
        o => panic!("{o:?}"),
    };
    (
        ip.header().source_addr(),
        ip.header().destination_addr(),
        sp,
        dp,
    )
}

fn ports6(p: &[u8]) -> (Ipv6Addr, Ipv6Addr, u16, u16) {
    assert!(l4_ok_v6(p), "IPv6 transport checksum");
    let s = SlicedPacket::from_ip(p).unwrap();
    let Some(NetSlice::Ipv6(ip)) = s.net else {
        panic!("not IPv6")
    };
    let (sp, dp) = match s.transport {
        Some(TransportSlice::Udp(u)) => (u.source_port(), u.destination_port()),
        Some(TransportSlice::Tcp(t)) => (t.source_port(), t.destination_port()),
        o => panic!("{o:?}"),
    };
    (
        ip.header().source_addr(),
        ip.header().destination_addr(),
        sp,
        dp,
    )
}

fn ip4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}
fn ip6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

#[test]
fn udp_round_trip_through_pool4() {
    let n = nat();
    let out = go(&n, 1000, &udp6p(A, 5353, wkp(Z), 53, b"query")).one();
    let (src, dst, t, dp) = ports4(&out);
    assert_eq!((src, dst, dp), (ip4(T), ip4(Z), 53));
    assert_eq!(&out[28..], b"query");
    let back = go(&n, 1001, &udp4p(Z, 53, v4(T), t, b"answer")).one();
    let (s6, d6, sp, dp) = ports6(&back);
    assert_eq!((s6, d6, sp, dp), (Ipv6Addr::from(wkp(Z)), ip6(A), 53, 5353));
    assert_eq!(&back[48..], b"answer");
    // Unsolicited traffic to another port: dropped.
    assert_eq!(
        go(&n, 1002, &udp4p(Z, 53, v4(T), t ^ 1, b"x")).dropped(),
        DropReason::NoBinding
    );
}

#[test]
fn several_clients_share_one_address() {
    let n = nat();
    let mut seen = Vec::new();
    for c in [A, B, "2001:db8:1::c"] {
        let out = go(&n, 0, &udp6p(c, 40000, wkp(Z), 53, b"q")).one();
        let (src, _, t, _) = ports4(&out);
        assert_eq!(src, ip4(T));
        seen.push((c, t));
    }
    let mut ports: Vec<u16> = seen.iter().map(|s| s.1).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 3, "each client its own port");
    for (c, t) in seen {
        let back = go(&n, 1, &udp4p(Z, 53, v4(T), t, b"a")).one();
        assert_eq!(ports6(&back).1, ip6(c));
    }
}

#[test]
fn tcp_handshake_through_nat64() {
    let n = nat();
    let mut syn = Vec::new();
    PacketBuilder::ipv6(v6(A), wkp(Z), 64)
        .tcp(40000, 80, 1000, 64000)
        .syn()
        .write(&mut syn, &[])
        .unwrap();
    let out = go(&n, 0, &syn).one();
    let (_, _, t, _) = ports4(&out);
    let mut synack = Vec::new();
    PacketBuilder::ipv4(v4(Z), v4(T), 64)
        .tcp(80, t, 5000, 64000)
        .syn()
        .ack(1001)
        .write(&mut synack, &[])
        .unwrap();
    let back = go(&n, 10, &synack).one();
    assert_eq!(ports6(&back), (Ipv6Addr::from(wkp(Z)), ip6(A), 80, 40000));
    // Half open until the client's final ACK (stricter than RFC 6146, see `tcp::next`).
    let s = n.sessions(&Filter::default(), Timestamp(10), 10);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].tcp_state, Some(TcpState::V4SynRcv));
    let mut ack = Vec::new();
    PacketBuilder::ipv6(v6(A), wkp(Z), 64)
        .tcp(40000, 80, 1001, 64000)
        .ack(5001)
        .write(&mut ack, &[])
        .unwrap();
    go(&n, 20, &ack).one();
    let s = n.sessions(&Filter::default(), Timestamp(20), 10);
    assert_eq!(s[0].tcp_state, Some(TcpState::Established));
    assert_eq!(s[0].v4_src, (ip4(T), t));
    // A non-SYN from an unknown client: no binding, refused.
    let mut ack = Vec::new();
    PacketBuilder::ipv6(v6(B), wkp(Z), 64)
        .tcp(40001, 80, 1000, 64000)
        .ack(1)
        .write(&mut ack, &[])
        .unwrap();
    assert_eq!(go(&n, 11, &ack).dropped(), DropReason::TcpStateReject);
}

#[test]
fn ping_through_nat64() {
    let n = nat();
    let mut req = Vec::new();
    PacketBuilder::ipv6(v6(A), wkp(Z), 64)
        .icmpv6_echo_request(0x4242, 1)
        .write(&mut req, b"ping")
        .unwrap();
    let out = go(&n, 0, &req).one();
    assert!(l4_ok_v4(&out));
    let s = SlicedPacket::from_ip(&out).unwrap();
    let Some(TransportSlice::Icmpv4(ic)) = s.transport else {
        panic!()
    };
    let Icmpv4Type::EchoRequest(e) = ic.icmp_type() else {
        panic!()
    };
    let mut rep = Vec::new();
    PacketBuilder::ipv4(v4(Z), v4(T), 64)
        .icmpv4_echo_reply(e.id, e.seq)
        .write(&mut rep, b"ping")
        .unwrap();
    let back = go(&n, 1, &rep).one();
    assert!(l4_ok_v6(&back));
    let s = SlicedPacket::from_ip(&back).unwrap();
    let Some(TransportSlice::Icmpv6(ic)) = s.transport else {
        panic!()
    };
    let Icmpv6Type::EchoReply(r) = ic.icmp_type() else {
        panic!()
    };
    assert_eq!((r.id, r.seq), (0x4242, 1));
    let Some(NetSlice::Ipv6(ip)) = s.net else {
        panic!()
    };
    assert_eq!(ip.header().destination_addr(), ip6(A));
}

#[test]
fn icmpv4_error_reaches_the_client_of_the_quoted_packet() {
    let n = nat();
    let mut clients = Vec::new();
    for c in [A, B] {
        let out = go(&n, 0, &udp6p(c, 33434, wkp(Z), 33435, b"probe")).one();
        clients.push((c, out));
    }
    for (c, quoted) in clients {
        let mut err = Vec::new();
        PacketBuilder::ipv4(v4("203.0.113.254"), v4(T), 64)
            .icmpv4(Icmpv4Type::TimeExceeded(
                etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit,
            ))
            .write(&mut err, &quoted)
            .unwrap();
        let back = go(&n, 1, &err).one();
        assert!(l4_ok_v6(&back));
        let s = SlicedPacket::from_ip(&back).unwrap();
        let Some(NetSlice::Ipv6(ip)) = &s.net else {
            panic!()
        };
        assert_eq!(ip.header().destination_addr(), ip6(c));
        assert_eq!(
            ip.header().source_addr(),
            Ipv6Addr::from(wkp("203.0.113.254"))
        );
        let Some(TransportSlice::Icmpv6(ic)) = s.transport else {
            panic!()
        };
        assert!(matches!(ic.icmp_type(), Icmpv6Type::TimeExceeded(_)));
        // The quoted packet is the client's own, as it sent it.
        let inner = &back[48..];
        assert_eq!(&inner[8..24], &v6(c));
        assert_eq!(&inner[24..40], &wkp(Z));
        assert_eq!(u16::from_be_bytes([inner[40], inner[41]]), 33434);
    }
    // An error about a flow the NAT64 never saw.
    let forged = udp4p(T, 40000, v4(Z), 53, b"x");
    let mut err = Vec::new();
    PacketBuilder::ipv4(v4("203.0.113.254"), v4(T), 64)
        .icmpv4(Icmpv4Type::TimeExceeded(
            etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit,
        ))
        .write(&mut err, &forged)
        .unwrap();
    assert_eq!(go(&n, 2, &err).dropped(), DropReason::NoSessionForIcmpError);
}

#[test]
fn icmpv6_error_goes_back_to_the_ipv4_peer() {
    let n = nat();
    let out = go(&n, 0, &udp6p(A, 5000, wkp(Z), 53, b"q")).one();
    let t = ports4(&out).2;
    let to_a = go(&n, 1, &udp4p(Z, 53, v4(T), t, b"reply")).one();
    // A's port is closed: ICMPv6 Port Unreachable quoting the reply.
    let mut err = Vec::new();
    PacketBuilder::ipv6(v6(A), wkp(Z), 64)
        .icmpv6(Icmpv6Type::DestinationUnreachable(
            etherparse::icmpv6::DestUnreachableCode::Port,
        ))
        .write(&mut err, &to_a)
        .unwrap();
    let back = go(&n, 2, &err).one();
    assert!(v4_header_ok(&back) && l4_ok_v4(&back));
    let s = SlicedPacket::from_ip(&back).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &s.net else {
        panic!()
    };
    assert_eq!(ip.header().source_addr(), ip4(T));
    assert_eq!(ip.header().destination_addr(), ip4(Z));
    let inner = &back[28..];
    // Quoted: Z:53 -> T:t, as the peer sent it.
    assert_eq!(&inner[12..16], &v4(Z));
    assert_eq!(&inner[16..20], &v4(T));
    assert_eq!(u16::from_be_bytes([inner[22], inner[23]]), t);
}

#[test]
fn hairpinning_between_two_clients() {
    let n = nat();
    // B opens a binding (to anyone), A sends to B's pool4 transport address.
    let ob = go(&n, 0, &udp6p(B, 6000, wkp(Z), 3478, b"stun")).one();
    let tb = ports4(&ob).2;
    let to_b = go(&n, 1, &udp6p(A, 7000, wkp(T), tb, b"hello B")).one();
    let (src, dst, ta, dp) = ports6(&to_b);
    assert_eq!((src, dst, dp), (Ipv6Addr::from(wkp(T)), ip6(B), 6000));
    assert_eq!(&to_b[48..], b"hello B");
    // One hop: the hop limit was decremented once, not twice.
    assert_eq!(to_b[7], 63);
    let to_a = go(&n, 2, &udp6p(B, 6000, wkp(T), ta, b"hello A")).one();
    assert_eq!(ports6(&to_a), (Ipv6Addr::from(wkp(T)), ip6(A), tb, 7000));
}

#[test]
fn fragmented_udp_from_the_ipv4_side() {
    let n = nat();
    let out = go(&n, 0, &udp6p(A, 5000, wkp(Z), 53, b"q")).one();
    let t = ports4(&out).2;
    // A 1200-byte answer in two IPv4 fragments (UDP header in the first).
    let mut whole = Vec::new();
    PacketBuilder::ipv4(v4(Z), v4(T), 64)
        .udp(53, t)
        .write(&mut whole, &[7u8; 1192])
        .unwrap();
    let seg = &whole[20..];
    let f1 = raw4(v4(Z), v4(T), 17, 64, false, true, 0, 0x77, &[], &seg[..800]);
    let f2 = raw4(
        v4(Z),
        v4(T),
        17,
        64,
        false,
        false,
        100,
        0x77,
        &[],
        &seg[800..],
    );
    let o1 = go(&n, 1, &f1).one();
    let o2 = go(&n, 2, &f2).one();
    for o in [&o1, &o2] {
        let s = SlicedPacket::from_ip(o).unwrap();
        let Some(NetSlice::Ipv6(ip)) = &s.net else {
            panic!()
        };
        assert_eq!(ip.header().destination_addr(), ip6(A));
        assert_eq!(ip.header().source_addr(), Ipv6Addr::from(wkp(Z)));
        assert_eq!(o[6], 44, "Fragment header");
    }
    // The first fragment's ports were rewritten to the client's.
    assert_eq!(u16::from_be_bytes([o1[50], o1[51]]), 5000);
    // Reassembled, the UDP checksum verifies over the new pseudo-header.
    let mut re = o1[..40].to_vec();
    re.extend_from_slice(&o1[48..]);
    re.extend_from_slice(&o2[48..]);
    re[6] = 17;
    let plen = (re.len() - 40) as u16;
    re[4..6].copy_from_slice(&plen.to_be_bytes());
    assert!(l4_ok_v6(&re));
    // A fragment of an unknown datagram.
    let f3 = raw4(
        v4(Z),
        v4(T),
        17,
        64,
        false,
        false,
        100,
        0x99,
        &[],
        &seg[800..],
    );
    // A fragment of an unknown datagram: held until its first fragment comes (RFC 6146 §3.4,
    // see nat64_frag_order.rs).
    assert_eq!(go(&n, 3, &f3).dropped(), DropReason::FragmentHeld);
}

#[test]
fn fragmented_udp_from_the_ipv6_side() {
    let n = nat();
    let mut whole = Vec::new();
    PacketBuilder::ipv6(v6(A), wkp(Z), 64)
        .udp(5000, 53)
        .write(&mut whole, &[9u8; 1992])
        .unwrap();
    let seg = &whole[40..];
    let f1 = frag6(v6(A), wkp(Z), 17, 0, true, 0xabcd, &seg[..1232]);
    let f2 = frag6(v6(A), wkp(Z), 17, 154, false, 0xabcd, &seg[1232..]);
    let o1 = go(&n, 0, &f1).one();
    let o2 = go(&n, 1, &f2).one();
    for o in [&o1, &o2] {
        assert!(v4_header_ok(o));
        assert_eq!(&o[12..16], &v4(T));
        assert_eq!(&o[16..20], &v4(Z));
    }
    let t = u16::from_be_bytes([o1[20], o1[21]]);
    let s = n.sessions(&Filter::default(), Timestamp(1), 10);
    assert_eq!(s[0].v4_src, (ip4(T), t));
    let mut re = o1[..20].to_vec();
    re.extend_from_slice(&o1[20..]);
    re.extend_from_slice(&o2[20..]);
    let tl = re.len() as u16;
    re[2..4].copy_from_slice(&tl.to_be_bytes());
    assert!(l4_ok_v4(&re));
}

#[test]
fn static_port_forward_from_an_ipv4_client() {
    let server = ip6("2001:db8:5::80");
    let n = nat_with(|c| {
        c.static_bib.push(nat64_core::nat64::bib::StaticBib {
            proto: Proto::Tcp,
            v6: (server, 80),
            v4: (ip4(T), 8080),
        })
    });
    let mut syn = Vec::new();
    PacketBuilder::ipv4(v4("203.0.113.5"), v4(T), 64)
        .tcp(33333, 8080, 1, 64000)
        .syn()
        .write(&mut syn, &[])
        .unwrap();
    let out = go(&n, 0, &syn).one();
    assert_eq!(
        ports6(&out),
        (Ipv6Addr::from(wkp("203.0.113.5")), server, 33333, 80)
    );
}

#[test]
fn address_dependent_filtering_on_packets() {
    let n = nat_with(|c| c.filtering = Filtering::AddressDependent);
    let out = go(&n, 0, &udp6p(A, 5000, wkp(Z), 53, b"q")).one();
    let t = ports4(&out).2;
    assert!(matches!(
        go(&n, 1, &udp4p(Z, 5353, v4(T), t, b"ok")),
        Out::Packets(_)
    ));
    assert_eq!(
        go(&n, 1, &udp4p("198.51.100.11", 53, v4(T), t, b"no")).dropped(),
        DropReason::Filtered
    );
}

#[test]
fn pref64_source_is_dropped() {
    let n = nat();
    let mut p = Vec::new();
    PacketBuilder::ipv6(wkp("192.0.2.1"), wkp(Z), 64)
        .udp(500, 53)
        .write(&mut p, b"loop")
        .unwrap();
    assert_eq!(go(&n, 0, &p).dropped(), DropReason::Pref64Source);
}

#[test]
fn refused_new_flows_get_icmpv6_address_unreachable() {
    let n = nat_with(|c| c.max_sessions_per_host = 1);
    go(&n, 0, &udp6p(A, 5000, wkp(Z), 53, b"first")).one();
    let (err, reason) = go(&n, 1, &udp6p(A, 5001, wkp(Z), 53, b"second")).error();
    assert_eq!(reason, DropReason::SubscriberSessionLimit);
    assert!(l4_ok_v6(&err));
    let s = SlicedPacket::from_ip(&err).unwrap();
    let Some(NetSlice::Ipv6(ip)) = &s.net else {
        panic!()
    };
    assert_eq!(ip.header().destination_addr(), ip6(A));
    let Some(TransportSlice::Icmpv6(ic)) = s.transport else {
        panic!()
    };
    assert_eq!(
        ic.icmp_type(),
        Icmpv6Type::DestinationUnreachable(etherparse::icmpv6::DestUnreachableCode::Address)
    );
    // Another protocol (SCTP, 132): Port Unreachable.
    let sctp = raw6(v6(A), wkp(Z), 132, 64, &[0u8; 16]);
    let (err, reason) = go(&n, 2, &sctp).error();
    assert_eq!(reason, DropReason::UnsupportedProtocol);
    assert_eq!((err[40], err[41]), (1, 4));
    // From the IPv4 side: Protocol Unreachable.
    let gre = raw4(v4(Z), v4(T), 47, 64, false, false, 0, 1, &[], &[0u8; 8]);
    let (err, reason) = go(&n, 3, &gre).error();
    assert_eq!(reason, DropReason::UnsupportedProtocol);
    assert!(v4_header_ok(&err));
    assert_eq!((err[20], err[21]), (3, 2));
}

/// RFC 6146 §3.5.1.1: when no pool4 port is left the packet is discarded and the sender gets an
/// ICMPv6 Destination Unreachable / Address Unreachable (1/3), rate-limited like other errors.
#[test]
fn pool_exhaustion_gets_icmpv6_address_unreachable() {
    let n = nat_with(|c| c.pool4.udp = nat64_core::nat64::pool4::PortRange::new(2000, 2001));
    for (i, sport) in [3000u16, 3001].into_iter().enumerate() {
        go(&n, i as u64, &udp6p(A, sport, wkp(Z), 53, b"ok")).one();
    }
    let p = udp6p(A, 3002, wkp(Z), 53, b"no port");
    let (err, reason) = go(&n, 5, &p).error();
    assert_eq!(reason, DropReason::PoolExhausted);
    assert_eq!((err[40], err[41]), (1, 3), "Address Unreachable");
    assert_eq!(&err[24..40], &v6(A), "to the sender");
    assert!(l4_ok_v6(&err));
    assert_eq!(&err[48..], &p[..], "quotes the refused packet");
}

/// Splits the payload after a 40-byte IPv6 header into IPv6 fragments of `chunk` bytes.
fn fragment6(whole: &[u8], chunk: usize, id: u32) -> Vec<Vec<u8>> {
    let src: [u8; 16] = whole[8..24].try_into().unwrap();
    let dst: [u8; 16] = whole[24..40].try_into().unwrap();
    let nh = whole[6];
    let pl = &whole[40..];
    pl.chunks(chunk)
        .enumerate()
        .map(|(i, c)| {
            let off = i * chunk;
            frag6(
                src,
                dst,
                nh,
                (off / 8) as u16,
                off + c.len() < pl.len(),
                id,
                c,
            )
        })
        .collect()
}

/// Splits an IPv4 packet (20-byte header) into fragments of `chunk` payload bytes.
fn fragment4(whole: &[u8], chunk: usize, id: u16) -> Vec<Vec<u8>> {
    let src: [u8; 4] = whole[12..16].try_into().unwrap();
    let dst: [u8; 4] = whole[16..20].try_into().unwrap();
    let pl = &whole[20..];
    pl.chunks(chunk)
        .enumerate()
        .map(|(i, c)| {
            let off = i * chunk;
            raw4(
                src,
                dst,
                whole[9],
                whole[8],
                false,
                off + c.len() < pl.len(),
                (off / 8) as u16,
                id,
                &[],
                c,
            )
        })
        .collect()
}

/// Reassembles IPv6 fragments (each with a Fragment header right after the IPv6 header) into one
/// unfragmented packet, independently of the core.
fn reassemble6(frags: &[Vec<u8>]) -> Vec<u8> {
    let mut parts: Vec<(usize, &[u8])> = frags
        .iter()
        .map(|f| {
            assert_eq!(f[6], 44);
            let off = usize::from(u16::from_be_bytes([f[42], f[43]]) & 0xfff8);
            (off, &f[48..])
        })
        .collect();
    parts.sort_by_key(|p| p.0);
    let mut out = frags[0][..40].to_vec();
    out[6] = frags[0][40];
    for (off, p) in parts {
        assert_eq!(out.len() - 40, off, "contiguous fragments");
        out.extend_from_slice(p);
    }
    let plen = (out.len() - 40) as u16;
    out[4..6].copy_from_slice(&plen.to_be_bytes());
    out
}

fn all_packets(o: Out) -> Vec<Vec<u8>> {
    match o {
        Out::Packets(v) => v,
        o => panic!("expected packets, got {o:?}"),
    }
}

#[test]
fn ping_s_3000_through_nat64() {
    let n = nat();
    let payload: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    let mut req = Vec::new();
    PacketBuilder::ipv6(v6(A), wkp(Z), 64)
        .icmpv6_echo_request(0x77, 5)
        .write(&mut req, &payload)
        .unwrap();
    let frags = fragment6(&req, 1232, 0xfeed);
    assert_eq!(frags.len(), 3);
    // Out of order: the last fragment first.
    assert_eq!(go(&n, 0, &frags[2]).dropped(), DropReason::FragmentQueued);
    assert_eq!(go(&n, 1, &frags[0]).dropped(), DropReason::FragmentQueued);
    assert_eq!(n.counts().reassembling, 1);
    let out = all_packets(go(&n, 2, &frags[1]));
    assert_eq!(out.len(), 1);
    let o = &out[0];
    assert!(
        v4_header_ok(o) && l4_ok_v4(o),
        "whole ICMPv4 message, valid checksum"
    );
    assert_eq!(o.len(), 20 + 8 + 3000);
    assert_eq!(
        o[6] & 0x40,
        0,
        "DF clear: the IPv6 sender fragmented the message (RFC 7915 §5.1.1), so an IPv4 link \
         with a smaller MTU may fragment it again"
    );
    assert_eq!(&o[12..16], &v4(T));
    assert_eq!(&o[16..20], &v4(Z));
    assert_eq!(o[20], 8, "echo request");
    assert_eq!(&o[28..], &payload[..]);
    let i2 = u16::from_be_bytes([o[24], o[25]]);
    assert_eq!(n.counts().reassembling, 0);
    // The 3000-byte reply comes back fragmented by the IPv4 peer.
    let mut rep = Vec::new();
    PacketBuilder::ipv4(v4(Z), v4(T), 64)
        .icmpv4_echo_reply(i2, 5)
        .write(&mut rep, &payload)
        .unwrap();
    let f4 = fragment4(&rep, 1480, 0x1234);
    assert_eq!(f4.len(), 3);
    assert_eq!(go(&n, 3, &f4[0]).dropped(), DropReason::FragmentQueued);
    assert_eq!(go(&n, 3, &f4[1]).dropped(), DropReason::FragmentQueued);
    let back = all_packets(go(&n, 4, &f4[2]));
    // Refragmented for the IPv6 minimum MTU (RFC 7915 §4), reassembled here independently.
    assert!(back.len() >= 3);
    let whole = reassemble6(&back);
    assert!(l4_ok_v6(&whole), "ICMPv6 checksum over the whole message");
    assert_eq!(&whole[24..40], &v6(A));
    assert_eq!(whole[40], 129, "echo reply");
    assert_eq!(u16::from_be_bytes([whole[44], whole[45]]), 0x77);
    assert_eq!(&whole[48..], &payload[..]);
}

#[test]
fn icmp_reassembly_is_bounded_and_time_limited() {
    let n = nat_with(|c| c.frag.max_reassembly = 2);
    let mut req = Vec::new();
    PacketBuilder::ipv6(v6(A), wkp(Z), 64)
        .icmpv6_echo_request(1, 1)
        .write(&mut req, &[0u8; 2000])
        .unwrap();
    for id in 1..=2 {
        let f = fragment6(&req, 1232, id);
        assert_eq!(go(&n, 0, &f[0]).dropped(), DropReason::FragmentQueued);
    }
    let f3 = fragment6(&req, 1232, 3);
    assert_eq!(go(&n, 0, &f3[0]).dropped(), DropReason::FragmentStoreFull);
    // After the fragment timeout the slots are reused.
    assert_eq!(go(&n, 2_500, &f3[0]).dropped(), DropReason::FragmentQueued);
    assert!(matches!(go(&n, 2_600, &f3[1]), Out::Packets(_)));
    // A stale datagram's late fragment starts over and does not complete anything.
    let f1 = fragment6(&req, 1232, 1);
    assert_eq!(go(&n, 2_700, &f1[1]).dropped(), DropReason::FragmentQueued);
    n.expire(Timestamp(10_000));
    assert_eq!(n.counts().reassembling, 0);
}

#[test]
fn one_source_cannot_take_every_reassembly_slot() {
    // Issue 9: one host's incomplete fragmented pings (from rotating addresses of its /64)
    // hold at most its share of the reassembly slots; another host's `ping -s 2000` completes.
    let n = nat_with(|c| {
        c.frag.max_reassembly = 8;
        c.frag.max_reassembly_per_source = 2;
    });
    let req = |src: &str| {
        let mut p = Vec::new();
        PacketBuilder::ipv6(v6(src), wkp(Z), 64)
            .icmpv6_echo_request(1, 1)
            .write(&mut p, &[0u8; 2000])
            .unwrap();
        p
    };
    let mut refused = 0;
    for id in 1..=40u32 {
        let f = fragment6(&req(&format!("2001:db8:1::{id:x}")), 1232, id);
        match go(&n, 0, &f[0]).dropped() {
            DropReason::FragmentQueued => {}
            DropReason::FragmentSourceLimit => refused += 1,
            r => panic!("{r:?}"),
        }
    }
    assert_eq!(refused, 38);
    let f = fragment6(&req("2001:db8:2::c"), 1232, 99);
    assert_eq!(go(&n, 1, &f[0]).dropped(), DropReason::FragmentQueued);
    assert!(matches!(go(&n, 2, &f[1]), Out::Packets(_)));
}

/// RFC 5382 REQ-5 / RFC 6146 §4 on the injected clock, through packets: an idle ESTABLISHED
/// session lives TCP_EST (2 h) and then TCP_TRANS (4 min), 2 h 4 min in all, and a packet from
/// the IPv4 peer still reaches the client just before the end; after it, the binding is gone.
/// RFC 5508 REQ-1: an idle ICMP query session lives ICMP_DEFAULT (60 s).
#[test]
fn idle_established_tcp_lives_2h4m_and_icmp_query_60s() {
    let syn = |seq| {
        let mut v = Vec::new();
        PacketBuilder::ipv6(v6(A), wkp(Z), 64)
            .tcp(40000, 80, seq, 64000)
            .syn()
            .write(&mut v, &[])
            .unwrap();
        v
    };
    let from_z = |t: u16, syn_flag: bool| {
        let mut v = Vec::new();
        let b = PacketBuilder::ipv4(v4(Z), v4(T), 64).tcp(80, t, 5000, 64000);
        let b = if syn_flag { b.syn() } else { b };
        b.ack(1001).write(&mut v, b"data").unwrap();
        v
    };
    let mut ack = Vec::new();
    PacketBuilder::ipv6(v6(A), wkp(Z), 64)
        .tcp(40000, 80, 1001, 64000)
        .ack(5001)
        .write(&mut ack, &[])
        .unwrap();
    // Expiry runs as the daemon's timer does (every 200 ms would be the same; each second here).
    let tick_until = |n: &Nat64, from_s: u64, to_s: u64| {
        for s in from_s..=to_s {
            n.expire(Timestamp(s * 1000));
        }
    };

    let n = nat();
    let (_, _, t, _) = ports4(&go(&n, 0, &syn(1000)).one());
    go(&n, 0, &from_z(t, true)).one();
    go(&n, 1000, &ack).one(); // ESTABLISHED, last packet at 1 s
    let state = |n: &Nat64, now: u64| {
        n.sessions(&Filter::default(), Timestamp(now), 10)
            .first()
            .and_then(|s| s.tcp_state)
    };
    assert_eq!(state(&n, 1000), Some(TcpState::Established));
    tick_until(&n, 2, 7200);
    assert_eq!(state(&n, 7_200_000), Some(TcpState::Established), "2 h");
    tick_until(&n, 7201, 7440); // last packet at 1 s: 2 h 4 min = 7441 s
    assert_eq!(n.session_count(), 1, "2 h 4 min less a second: still there");
    // The client's peer can still reach it (this packet refreshes the session; use a twin).
    let twin = nat();
    let (_, _, t2, _) = ports4(&go(&twin, 0, &syn(1000)).one());
    go(&twin, 0, &from_z(t2, true)).one();
    go(&twin, 1000, &ack).one();
    tick_until(&twin, 2, 7440);
    assert_eq!(
        ports6(&go(&twin, 7_440_000, &from_z(t2, false)).one()),
        (Ipv6Addr::from(wkp(Z)), ip6(A), 80, 40000)
    );
    // Deadlines are strict and the EST→TRANS move happens at a tick, so on this 1 s tick the
    // session ends within 2 s after 2 h 4 min (never before: the REQ is a minimum).
    tick_until(&n, 7441, 7443);
    assert_eq!(n.session_count(), 0, "gone 2 h 4 min + 2 s idle");
    assert!(matches!(go(&n, 7_443_000, &from_z(t, false)), Out::Drop(_)));

    // ICMP echo: 60 s after the last request.
    let n = nat();
    let req = echo6(v6(A), wkp(Z), b"ping");
    go(&n, 1000, &req).one();
    tick_until(&n, 2, 60);
    assert_eq!(n.session_count(), 1, "59 s idle");
    tick_until(&n, 61, 62);
    assert_eq!(n.session_count(), 0, "61 s idle");
}
