//! RFC 6146 §3.5.2.2 TCP simultaneous open through `Nat64::translate` and
//! `Nat64::expire_with_errors`: unsolicited IPv4 SYNs are stored (bounded, counted), dropped
//! silently once the matching IPv6 SYN goes out (RFC 5382 REQ-4), or answered with ICMP Port
//! Unreachable after TCP_INCOMING_SYN.
//! Inputs are built by etherparse, outputs parsed by etherparse, checksums verified with the
//! independent RFC 1071 sum of `common`.

mod common;
use common::*;
use etherparse::{Icmpv4Slice, Icmpv4Type, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use nat64_core::nat64::pool4::PortRange;
use nat64_core::nat64::session::Filter;
use nat64_core::nat64::tcp::TcpState;
use nat64_core::nat64::{Filtering, Nat64, Nat64Config};
use nat64_core::pool6::Pool6;
use nat64_core::rfc6052::Prefix6052;
use nat64_core::{packets, Ctx, DropReason, Timestamp, Verdict, AUX_LEN, HEADROOM};
use std::net::{Ipv4Addr, Ipv6Addr};

const T: &str = "192.0.2.1";
const A: &str = "2001:db8:1::a";
const Z: &str = "198.51.100.10";
/// The one TCP port of pool4 in the tests without a BIB entry, so the IPv6 SYN's new binding is
/// the transport address the IPv4 SYN was sent to.
const PORT: u16 = 4000;

fn nat_with(f: impl FnOnce(&mut Nat64Config)) -> Nat64 {
    let pool6 = Pool6::new(vec![Prefix6052::WKP], false).unwrap();
    let mut c = Nat64Config::new(pool6, vec![T.parse().unwrap()], 99);
    c.max_sessions = 1000;
    c.max_sessions_per_host = 100;
    c.shards = 2;
    c.pool4.tcp = PortRange::new(PORT, PORT);
    f(&mut c);
    Nat64::new(c).unwrap()
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

fn all(o: Out) -> Vec<Vec<u8>> {
    match o {
        Out::Packets(p) => p,
        o => panic!("expected packets, got {o:?}"),
    }
}

/// An IPv4 TCP segment from `src`:`sp` to `dst`:`dp` with sequence number `seq`.
fn tcp4seg(
    src: &str,
    sp: u16,
    dst: &str,
    dp: u16,
    seq: u32,
    syn: bool,
    ack: Option<u32>,
) -> Vec<u8> {
    let mut b = PacketBuilder::ipv4(v4(src), v4(dst), 64).tcp(sp, dp, seq, 64000);
    if syn {
        b = b.syn();
    }
    if let Some(a) = ack {
        b = b.ack(a);
    }
    let mut v = Vec::new();
    b.write(&mut v, &[]).unwrap();
    v
}

fn syn4(src: &str, sp: u16, dp: u16, seq: u32) -> Vec<u8> {
    tcp4seg(src, sp, T, dp, seq, true, None)
}

fn syn6(sp: u16, z: &str, dp: u16, seq: u32) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(v6(A), wkp(z), 64)
        .tcp(sp, dp, seq, 64000)
        .syn()
        .write(&mut v, &[])
        .unwrap();
    v
}

/// (src, dst, sport, dport, seq, syn, ack) of a translated TCP segment, checksums verified.
fn tcp_of(p: &[u8]) -> (String, String, u16, u16, u32, bool, bool) {
    let s = SlicedPacket::from_ip(p).unwrap();
    let (src, dst) = match s.net {
        Some(NetSlice::Ipv4(ip)) => {
            assert!(v4_header_ok(p), "IPv4 header checksum");
            assert!(l4_ok_v4(p), "IPv4 TCP checksum");
            (
                ip.header().source_addr().to_string(),
                ip.header().destination_addr().to_string(),
            )
        }
        Some(NetSlice::Ipv6(ip)) => {
            assert!(l4_ok_v6(p), "IPv6 TCP checksum");
            (
                ip.header().source_addr().to_string(),
                ip.header().destination_addr().to_string(),
            )
        }
        o => panic!("{o:?}"),
    };
    let Some(TransportSlice::Tcp(t)) = s.transport else {
        panic!("not TCP")
    };
    (
        src,
        dst,
        t.source_port(),
        t.destination_port(),
        t.sequence_number(),
        t.syn(),
        t.ack(),
    )
}

fn y6(z: &str) -> String {
    Ipv6Addr::from(wkp(z)).to_string()
}

fn state_of(n: &Nat64, now: u64, z_port: u16) -> Option<TcpState> {
    n.sessions(&Filter::default(), Timestamp(now), 100)
        .into_iter()
        .find(|s| s.v4_dst.1 == z_port)
        .and_then(|s| s.tcp_state)
}

fn expire(n: &Nat64, now: u64) -> (usize, Vec<Vec<u8>>) {
    let mut errs = Vec::new();
    let st = n.expire_with_errors(Timestamp(now), &mut errs);
    (st.syn_expired, packets(&errs).map(|p| p.to_vec()).collect())
}

#[test]
fn simultaneous_open_without_a_bib_entry_drops_the_stored_syn() {
    let n = nat_with(|_| {});
    // The IPv4 peer's SYN to T:4000 arrives before any binding exists: stored, not forwarded.
    let s4 = syn4(Z, 5555, PORT, 777_000);
    assert_eq!(go(&n, 1000, &s4).dropped(), DropReason::TcpV4SynStored);
    assert_eq!(n.counts().syn_store.held, 1);
    assert_eq!(
        n.session_count(),
        0,
        "no BIB entry, no session (RFC: IPv6 side unknown)"
    );
    // Its retransmission keeps the first one.
    assert_eq!(go(&n, 2000, &s4).dropped(), DropReason::TcpV4SynHeld);
    assert_eq!(n.counts().syn_store.held, 1);
    // The IPv6 host's own SYN to the peer, 5 s later: it binds to T:4000, completing the
    // simultaneous open. Only the IPv6 SYN comes out; the stored IPv4 SYN is dropped silently
    // (RFC 5382 REQ-4: "the NAT MUST silently drop the original unsolicited inbound SYN").
    let out = all(go(&n, 6000, &syn6(40000, Z, 5555, 123_000)));
    assert_eq!(out.len(), 1, "the IPv6 SYN only");
    assert_eq!(
        tcp_of(&out[0]),
        (T.into(), Z.into(), PORT, 5555, 123_000, true, false)
    );
    let c = n.counts().syn_store;
    assert_eq!((c.held, c.stored, c.completed, c.expired), (0, 1, 1, 0));
    // The IPv4 peer, in SYN-SENT, answers the IPv6 SYN with a SYN-ACK: it reaches the IPv6 host
    // and the connection is open.
    let back = all(go(
        &n,
        6010,
        &tcp4seg(Z, 5555, T, PORT, 777_000, true, Some(123_001)),
    ));
    assert_eq!(back.len(), 1);
    assert_eq!(
        tcp_of(&back[0]),
        (y6(Z), A.into(), 5555, 40000, 777_000, true, true)
    );
    // V6 INIT + V4 SYN: half open until the IPv6 host's ACK (stricter than the RFC's direct
    // ESTABLISHED, see `tcp::next`).
    assert_eq!(state_of(&n, 6010, 5555), Some(TcpState::V4SynRcv));
    let ack6 = {
        let mut v = Vec::new();
        PacketBuilder::ipv6(v6(A), wkp(Z), 64)
            .tcp(40000, 5555, 123_001, 64000)
            .ack(777_001)
            .write(&mut v, &[])
            .unwrap();
        v
    };
    assert_eq!(all(go(&n, 6020, &ack6)).len(), 1);
    assert_eq!(state_of(&n, 6020, 5555), Some(TcpState::Established));
    // Nothing is left to expire, and no error is sent.
    assert_eq!(expire(&n, 20_000), (0, vec![]));
}

#[test]
fn simultaneous_open_through_address_dependent_filtering() {
    let n = nat_with(|c| {
        c.filtering = Filtering::AddressDependent;
        c.pool4.tcp = PortRange::new(1, 65535);
    });
    // The IPv6 host has a binding (T, t) from talking to another peer.
    let first = all(go(&n, 0, &syn6(40000, "203.0.113.9", 80, 1)));
    let t = tcp_of(&first[0]).2;
    // The peer Z was never contacted: the filter refuses its SYN, which is stored (§3.5.2.2:
    // "the NAT64 will not drop the packet based on the filtering").
    let s4 = syn4(Z, 5555, t, 9_000);
    assert_eq!(go(&n, 1000, &s4).dropped(), DropReason::TcpV4SynStored);
    assert_eq!(state_of(&n, 1000, 5555), Some(TcpState::V4Init));
    // Other segments from Z stay filtered.
    assert_eq!(
        go(&n, 1100, &tcp4seg(Z, 5556, T, t, 1, false, Some(1))).dropped(),
        DropReason::Filtered
    );
    // The IPv6 SYN to Z completes the simultaneous open: it alone comes out (the stored SYN is
    // dropped silently, RFC 5382 REQ-4).
    let out = all(go(&n, 3000, &syn6(40000, Z, 5555, 50_000)));
    assert_eq!(out.len(), 1);
    assert_eq!(
        tcp_of(&out[0]),
        (T.into(), Z.into(), t, 5555, 50_000, true, false)
    );
    assert_eq!(n.counts().syn_store.completed, 1);
    assert_eq!(state_of(&n, 3000, 5555), Some(TcpState::V6SynRcv));
    // The IPv4 side's SYN-ACK opens the connection and passes the filter.
    let back = all(go(
        &n,
        3010,
        &tcp4seg(Z, 5555, T, t, 9_000, true, Some(50_001)),
    ));
    assert_eq!(tcp_of(&back[0]).3, 40000);
    assert_eq!(state_of(&n, 3010, 5555), Some(TcpState::Established));
    // A SYN the filter allows (Z is now a peer of the binding) is forwarded, not stored.
    assert!(matches!(
        go(&n, 3020, &syn4(Z, 5600, t, 1)),
        Out::Packets(_)
    ));
    assert_eq!(n.counts().syn_store.stored, 1);
}

#[test]
fn stored_syn_expires_with_icmp_port_unreachable_quoting_it() {
    let n = nat_with(|_| {});
    let s4 = syn4(Z, 5555, PORT, 424_242);
    assert_eq!(go(&n, 1000, &s4).dropped(), DropReason::TcpV4SynStored);
    // TCP_INCOMING_SYN is 6 s: nothing before, one error at the deadline.
    assert_eq!(expire(&n, 6999), (0, vec![]));
    let (n_exp, errs) = expire(&n, 7000);
    assert_eq!((n_exp, errs.len()), (1, 1));
    let e = &errs[0];
    assert!(v4_header_ok(e), "IPv4 header checksum");
    let s = SlicedPacket::from_ip(e).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &s.net else {
        panic!("not IPv4")
    };
    // From T (the address the SYN was sent to) back to the SYN's source.
    assert_eq!(ip.header().source_addr(), T.parse::<Ipv4Addr>().unwrap());
    assert_eq!(
        ip.header().destination_addr(),
        Z.parse::<Ipv4Addr>().unwrap()
    );
    let ihl = usize::from(e[0] & 0x0f) * 4;
    let icmp = Icmpv4Slice::from_slice(&e[ihl..]).unwrap();
    assert_eq!(
        icmp.icmp_type(),
        Icmpv4Type::DestinationUnreachable(etherparse::icmpv4::DestUnreachableHeader::Port)
    );
    assert!(folds_to_ffff(sum16(&e[ihl..])), "ICMP checksum");
    // The quote is the stored SYN, byte for byte.
    assert_eq!(&e[ihl + 8..], &s4[..]);
    let c = n.counts().syn_store;
    assert_eq!((c.held, c.expired, c.icmp_sent), (0, 1, 1));
    // A late IPv6 SYN opens an ordinary V6 INIT session; nothing stored follows it.
    let out = all(go(&n, 8000, &syn6(40000, Z, 5555, 1)));
    assert_eq!(out.len(), 1);
    assert_eq!(state_of(&n, 8000, 5555), Some(TcpState::V6Init));
}

#[test]
fn full_store_refuses_and_counts() {
    let n = nat_with(|c| {
        c.syn_store.max_entries = 4;
        c.syn_store.max_per_source = 4;
        c.pool4.tcp = PortRange::new(4000, 4100);
    });
    let peers = [
        "198.51.100.1",
        "198.51.100.2",
        "198.51.100.3",
        "198.51.100.4",
    ];
    for (i, z) in peers.iter().enumerate() {
        assert_eq!(
            go(&n, 0, &syn4(z, 1000, 4000 + i as u16, 1)).dropped(),
            DropReason::TcpV4SynStored
        );
    }
    assert_eq!(
        go(&n, 0, &syn4("198.51.100.5", 1000, 4010, 1)).dropped(),
        DropReason::SynStoreFull
    );
    assert_eq!(n.counts().syn_store.held, 4);
    // Expiry frees the slots: the next SYN is stored again.
    assert_eq!(expire(&n, 6000).0, 4);
    assert_eq!(
        go(&n, 6001, &syn4("198.51.100.5", 1000, 4010, 1)).dropped(),
        DropReason::TcpV4SynStored
    );
}

#[test]
fn one_source_gets_only_its_share_of_the_store() {
    let n = nat_with(|c| {
        c.syn_store.max_entries = 16;
        c.syn_store.max_per_source = 2;
        c.pool4.tcp = PortRange::new(4000, 4100);
    });
    let flood = "203.0.113.66";
    let mut got = Vec::new();
    for p in 0..5u16 {
        got.push(go(&n, 0, &syn4(flood, 2000 + p, 4000 + p, 1)).dropped());
    }
    assert_eq!(
        got,
        [
            DropReason::TcpV4SynStored,
            DropReason::TcpV4SynStored,
            DropReason::SynStoreSourceLimit,
            DropReason::SynStoreSourceLimit,
            DropReason::SynStoreSourceLimit,
        ]
    );
    // Everyone else still gets in.
    assert_eq!(
        go(&n, 0, &syn4(Z, 5555, 4050, 1)).dropped(),
        DropReason::TcpV4SynStored
    );
}

#[test]
fn only_plain_syns_to_bindable_ports_are_stored_and_off_means_dropped() {
    let n = nat_with(|_| {});
    // A SYN-ACK or a bare ACK without a binding is no simultaneous open.
    assert_eq!(
        go(&n, 0, &tcp4seg(Z, 5555, T, PORT, 1, true, Some(1))).dropped(),
        DropReason::NoBinding
    );
    assert_eq!(
        go(&n, 0, &tcp4seg(Z, 5555, T, PORT, 1, false, Some(1))).dropped(),
        DropReason::NoBinding
    );
    // A port pool4 never hands out cannot be bound by an IPv6 SYN.
    assert_eq!(
        go(&n, 0, &syn4(Z, 5555, PORT + 1, 1)).dropped(),
        DropReason::NoBinding
    );
    assert_eq!(n.counts().syn_store.stored, 0);
    // max_entries = 0: the RFC's "security policy" branch, dropped at once.
    let off = nat_with(|c| c.syn_store.max_entries = 0);
    assert_eq!(
        go(&off, 0, &syn4(Z, 5555, PORT, 1)).dropped(),
        DropReason::NoBinding
    );
    let mut errs = Vec::new();
    assert_eq!(
        off.expire_with_errors(Timestamp(10_000), &mut errs)
            .syn_expired,
        0
    );
    assert!(errs.is_empty());
}

#[test]
fn expiry_errors_are_rate_limited_and_can_be_off() {
    // With ICMP errors off, the SYN still expires, silently.
    let n = nat_with(|c| c.xlat.send_icmp_errors = false);
    assert_eq!(
        go(&n, 0, &syn4(Z, 5555, PORT, 1)).dropped(),
        DropReason::TcpV4SynStored
    );
    let (k, errs) = expire(&n, 6000);
    assert_eq!((k, errs.len()), (1, 0));
    assert_eq!(n.counts().syn_store.icmp_sent, 0);
}
