//! RFC 6146 §3.4: "NAT64 MUST handle fragments arriving out of order". TCP and UDP datagrams in
//! two and three fragments, built by etherparse, are delivered in every order that puts a
//! non-first fragment before the first one, in both directions; what the translator sends
//! (verdicts plus `Nat64::take_released`) must be exactly the packets it sends for the in-order
//! delivery. Then the bounds: the timeout (FRAGMENT_MIN), the store and per-source limits,
//! duplicates, and that nothing leaks.

mod common;
use common::*;
use etherparse::PacketBuilder;
use nat64_core::nat64::{Nat64, Nat64Config};
use nat64_core::pool6::Pool6;
use nat64_core::rfc6052::Prefix6052;
use nat64_core::{packets, Ctx, DropReason, Timestamp, Verdict, AUX_LEN, HEADROOM};

const T: &str = "192.0.2.1";
const A: &str = "2001:db8:1::a";
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

/// What one packet produced: the verdict's packets, its drop reason, and the packets released
/// after it (drained with `take_released`, as a driver does), in order.
struct Step {
    out: Vec<Vec<u8>>,
    drop: Option<DropReason>,
    released: Vec<Vec<u8>>,
}

fn collect(v: Verdict, buf: &[u8], aux: &[u8], into: &mut Vec<Vec<u8>>) -> Option<DropReason> {
    match v {
        Verdict::Forward { start, len } => into.push(buf[start..start + len].to_vec()),
        Verdict::ForwardAux { len } => into.extend(packets(&aux[..len]).map(<[u8]>::to_vec)),
        Verdict::IcmpError { len, reason } => {
            into.push(aux[..len].to_vec());
            return Some(reason);
        }
        Verdict::Drop(r) => return Some(r),
    }
    None
}

fn go(n: &Nat64, now: u64, pkt: &[u8]) -> Step {
    let mut buf = vec![0xa5u8; HEADROOM + 65536];
    buf[HEADROOM..HEADROOM + pkt.len()].copy_from_slice(pkt);
    let mut aux = vec![0xa5u8; AUX_LEN];
    let mut ctx = Ctx::new(Timestamp(now), 7);
    let mut out = Vec::new();
    let v = n.translate(&mut ctx, &mut buf, HEADROOM, pkt.len(), &mut aux);
    let drop = collect(v, &buf, &aux, &mut out);
    let mut released = Vec::new();
    while let Some(v) = n.take_released(&mut ctx, &mut buf, HEADROOM, &mut aux) {
        let r = collect(v, &buf, &aux, &mut released);
        assert_eq!(r, None, "a released fragment was not forwarded");
    }
    Step {
        out,
        drop,
        released,
    }
}

/// One packet that must come out as exactly one packet, nothing released.
fn one(n: &Nat64, now: u64, pkt: &[u8]) -> Vec<u8> {
    let s = go(n, now, pkt);
    assert_eq!((s.out.len(), s.drop, s.released.len()), (1, None, 0));
    s.out.into_iter().next().unwrap()
}

/// Splits a transport segment at `cuts` (byte offsets, multiples of 8) into
/// (offset in 8-byte units, more fragments, bytes).
fn split(seg: &[u8], cuts: &[usize]) -> Vec<(u16, bool, Vec<u8>)> {
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(seg.len());
    bounds
        .windows(2)
        .map(|w| {
            assert_eq!(w[0] % 8, 0);
            (
                (w[0] / 8) as u16,
                w[1] < seg.len(),
                seg[w[0]..w[1]].to_vec(),
            )
        })
        .collect()
}

/// IPv6 fragments of an IPv6 datagram (whole packet `whole`, no extension headers).
fn frags6(whole: &[u8], id: u32, cuts: &[usize]) -> Vec<Vec<u8>> {
    let src: [u8; 16] = whole[8..24].try_into().unwrap();
    let dst: [u8; 16] = whole[24..40].try_into().unwrap();
    split(&whole[40..], cuts)
        .into_iter()
        .map(|(off, more, b)| frag6(src, dst, whole[6], off, more, id, &b))
        .collect()
}

/// IPv4 fragments of an IPv4 datagram (20-byte header).
fn frags4(whole: &[u8], id: u16, cuts: &[usize]) -> Vec<Vec<u8>> {
    let src: [u8; 4] = whole[12..16].try_into().unwrap();
    let dst: [u8; 4] = whole[16..20].try_into().unwrap();
    split(&whole[20..], cuts)
        .into_iter()
        .map(|(off, more, b)| raw4(src, dst, whole[9], 64, false, more, off, id, &[], &b))
        .collect()
}

/// Delivers `frags` in `order` to a fresh translator prepared by `setup` (same seed, so the
/// same bindings); returns every packet sent for the fragments, in sending order.
fn deliver(setup: &dyn Fn(&Nat64), frags: &[Vec<u8>], order: &[usize]) -> Vec<Vec<u8>> {
    let n = nat();
    setup(&n);
    let first = frags.len() - 1;
    let mut sent = Vec::new();
    let mut seen_first = false;
    for (i, &k) in order.iter().enumerate() {
        let s = go(&n, 100 + i as u64, &frags[k]);
        if k == 0 {
            seen_first = true;
            assert_eq!(s.drop, None, "first fragment");
        } else if seen_first {
            assert_eq!(
                (s.drop, s.released.len()),
                (None, 0),
                "fragment {k} after the first"
            );
        } else {
            // Before its first fragment: held, nothing sent.
            assert_eq!(
                s.drop,
                Some(DropReason::FragmentHeld),
                "fragment {k} of {first}"
            );
            assert!(s.out.is_empty() && s.released.is_empty());
        }
        sent.extend(s.out);
        sent.extend(s.released);
    }
    let c = n.counts().held;
    assert_eq!(c.held, 0, "everything held was sent");
    sent
}

/// Every order of `frags` with a non-first fragment before the first must send the in-order
/// packets, byte for byte (order aside: fragments may be sent in any order).
fn check_orders(name: &str, setup: &dyn Fn(&Nat64), frags: &[Vec<u8>], orders: &[&[usize]]) {
    let in_order: Vec<usize> = (0..frags.len()).collect();
    let mut want = deliver(setup, frags, &in_order);
    assert!(
        want.len() >= frags.len(),
        "{name}: in-order delivery sent {}",
        want.len()
    );
    want.sort();
    for order in orders {
        assert_ne!(order[0], 0, "{name}: not an out-of-order case");
        let mut got = deliver(setup, frags, order);
        got.sort();
        assert_eq!(got, want, "{name}: order {order:?}");
    }
}

/// The client's binding for UDP 5000 -> Z:53 (returns the pool4 port t).
fn udp_binding(n: &Nat64) -> u16 {
    let mut q = Vec::new();
    PacketBuilder::ipv6(v6(A), wkp(Z), 64)
        .udp(5000, 53)
        .write(&mut q, b"q")
        .unwrap();
    let o = one(n, 0, &q);
    u16::from_be_bytes([o[20], o[21]])
}

/// A TCP connection A:40000 <-> Z:80 through the SYN exchange (returns t).
fn tcp_connection(n: &Nat64) -> u16 {
    let mut syn = Vec::new();
    PacketBuilder::ipv6(v6(A), wkp(Z), 64)
        .tcp(40000, 80, 1000, 64000)
        .syn()
        .write(&mut syn, &[])
        .unwrap();
    let o = one(n, 0, &syn);
    let t = u16::from_be_bytes([o[20], o[21]]);
    let mut syn_ack = Vec::new();
    PacketBuilder::ipv4(v4(Z), v4(T), 64)
        .tcp(80, t, 5000, 64000)
        .syn()
        .ack(1001)
        .write(&mut syn_ack, &[])
        .unwrap();
    one(n, 1, &syn_ack);
    t
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

#[test]
fn udp_6to4_in_two_and_three_fragments_out_of_order() {
    let mut whole = Vec::new();
    PacketBuilder::ipv6(v6(A), wkp(Z), 64)
        .udp(5000, 53)
        .write(&mut whole, &payload(2392))
        .unwrap();
    let two = frags6(&whole, 0x1234_5678, &[1232]);
    check_orders("udp 6->4 x2", &|_| {}, &two, &[&[1, 0]]);
    let three = frags6(&whole, 0x1234_5679, &[800, 1600]);
    check_orders(
        "udp 6->4 x3",
        &|_| {},
        &three,
        &[&[2, 1, 0], &[2, 0, 1], &[1, 0, 2], &[1, 2, 0]],
    );
}

#[test]
fn udp_4to6_in_two_and_three_fragments_out_of_order() {
    let setup = |n: &Nat64| {
        udp_binding(n);
    };
    let t = udp_binding(&nat());
    let mut whole = Vec::new();
    PacketBuilder::ipv4(v4(Z), v4(T), 64)
        .udp(53, t)
        .write(&mut whole, &payload(2992))
        .unwrap();
    let two = frags4(&whole, 0x77, &[1480]);
    check_orders("udp 4->6 x2", &setup, &two, &[&[1, 0]]);
    // The first fragment leaves as several IPv6 fragments (1280-byte IPv6 MTU): all outputs of
    // every fragment, whatever order.
    let three = frags4(&whole, 0x78, &[1400, 2000]);
    check_orders(
        "udp 4->6 x3",
        &setup,
        &three,
        &[&[2, 1, 0], &[2, 0, 1], &[1, 0, 2], &[1, 2, 0]],
    );
}

#[test]
fn tcp_6to4_in_two_and_three_fragments_out_of_order() {
    let setup = |n: &Nat64| {
        tcp_connection(n);
    };
    let mut whole = Vec::new();
    PacketBuilder::ipv6(v6(A), wkp(Z), 64)
        .tcp(40000, 80, 1001, 64000)
        .ack(5001)
        .psh()
        .write(&mut whole, &payload(1800))
        .unwrap();
    let two = frags6(&whole, 0xabc, &[1232]);
    check_orders("tcp 6->4 x2", &setup, &two, &[&[1, 0]]);
    let three = frags6(&whole, 0xabd, &[600, 1200]);
    check_orders(
        "tcp 6->4 x3",
        &setup,
        &three,
        &[&[2, 1, 0], &[2, 0, 1], &[1, 0, 2], &[1, 2, 0]],
    );
}

#[test]
fn tcp_4to6_in_two_and_three_fragments_out_of_order() {
    let setup = |n: &Nat64| {
        tcp_connection(n);
    };
    let t = tcp_connection(&nat());
    let mut whole = Vec::new();
    PacketBuilder::ipv4(v4(Z), v4(T), 64)
        .tcp(80, t, 5001, 64000)
        .ack(1001)
        .psh()
        .write(&mut whole, &payload(1800))
        .unwrap();
    let two = frags4(&whole, 0x99, &[1000]);
    check_orders("tcp 4->6 x2", &setup, &two, &[&[1, 0]]);
    let three = frags4(&whole, 0x9a, &[600, 1200]);
    check_orders(
        "tcp 4->6 x3",
        &setup,
        &three,
        &[&[2, 1, 0], &[2, 0, 1], &[1, 0, 2], &[1, 2, 0]],
    );
}

/// The released fragments really are the datagram: reassembled, the translated UDP checksum
/// verifies over the IPv4 pseudo-header (so their payload and the first fragment's rewritten
/// header belong together), and the first fragment leaves first.
#[test]
fn released_fragments_reassemble_to_the_translated_datagram() {
    let n = nat();
    let mut whole = Vec::new();
    PacketBuilder::ipv6(v6(A), wkp(Z), 64)
        .udp(5000, 53)
        .write(&mut whole, &payload(1992))
        .unwrap();
    let f = frags6(&whole, 0x42, &[1000]);
    assert_eq!(go(&n, 0, &f[1]).drop, Some(DropReason::FragmentHeld));
    let s = go(&n, 5, &f[0]);
    assert_eq!((s.out.len(), s.released.len()), (1, 1));
    let (a, b) = (&s.out[0], &s.released[0]);
    // IPv4, from T to Z, the datagram's identification, offsets 0 (MF) and 125.
    for p in [a, b] {
        assert_eq!(p[0] >> 4, 4);
        assert!(v4_header_ok(p));
        assert_eq!((&p[12..16], &p[16..20]), (&v4(T)[..], &v4(Z)[..]));
        assert_eq!(&p[4..6], &[0x00, 0x42]);
    }
    assert_eq!(u16::from_be_bytes([a[6], a[7]]) & 0x3fff, 0x2000);
    assert_eq!(u16::from_be_bytes([b[6], b[7]]) & 0x3fff, 125);
    let mut re = a.clone();
    re.extend_from_slice(&b[20..]);
    let total = re.len() as u16;
    re[2..4].copy_from_slice(&total.to_be_bytes());
    re[6] = 0;
    re[7] = 0;
    assert!(l4_ok_v4(&re), "reassembled UDP checksum");
}

#[test]
fn held_fragments_expire_after_the_fragment_timeout_and_are_counted() {
    let n = nat();
    let t = udp_binding(&n);
    let mut whole = Vec::new();
    PacketBuilder::ipv4(v4(Z), v4(T), 64)
        .udp(53, t)
        .write(&mut whole, &payload(1992))
        .unwrap();
    let f = frags4(&whole, 0x55, &[1000]);
    assert_eq!(go(&n, 1_000, &f[1]).drop, Some(DropReason::FragmentHeld));
    assert_eq!(n.counts().held.held, 1);
    // FRAGMENT_MIN = 2 s (RFC 6146 §4): still held 1 ms before it.
    assert_eq!(n.expire(Timestamp(2_999)).held_expired, 0);
    assert_eq!(n.counts().held.held, 1);
    assert_eq!(n.expire(Timestamp(3_000)).held_expired, 1);
    let c = n.counts().held;
    assert_eq!((c.held, c.bytes, c.expired, c.released), (0, 0, 1, 0));
    // The first fragment after that is translated alone; the expired one is not sent.
    let s = go(&n, 3_001, &f[0]);
    assert_eq!((s.out.len(), s.drop, s.released.len()), (1, None, 0));
    // Expired without an ICMP error (RFC 6146 sends none; Time Exceeded is the reassembler's).
    let mut errors = Vec::new();
    n.expire_with_errors(Timestamp(10_000), &mut errors);
    assert!(errors.is_empty());
}

#[test]
fn a_held_fragment_whose_first_never_comes_does_not_leak() {
    let n = nat_with(|c| {
        c.frag.max_held = 16;
        c.frag.max_held_per_source = 16;
        c.frag.max_held_bytes = 16 * 1024;
    });
    let t = udp_binding(&n);
    let mut now = 10;
    for round in 0..20u16 {
        // Fill the store with fragments of datagrams whose first fragment never comes.
        for i in 0..16u16 {
            let mut whole = Vec::new();
            PacketBuilder::ipv4(v4(Z), v4(T), 64)
                .udp(53, t)
                .write(&mut whole, &payload(1000))
                .unwrap();
            let f = frags4(&whole, round * 100 + i, &[504]);
            assert_eq!(go(&n, now, &f[1]).drop, Some(DropReason::FragmentHeld));
        }
        assert_eq!(n.counts().held.held, 16);
        now += 2_000;
        assert_eq!(n.expire(Timestamp(now)).held_expired, 16);
        let c = n.counts().held;
        assert_eq!((c.held, c.bytes), (0, 0), "round {round}");
    }
    assert_eq!(n.counts().held.expired, 320);
}

#[test]
fn store_full_and_per_source_limits_are_named_drops() {
    let n = nat_with(|c| {
        c.frag.max_held = 4;
        c.frag.max_held_per_source = 2;
        c.max_sessions_per_host = 100;
    });
    // Two IPv6 subscribers (/64s) and a third.
    let hosts = ["2001:db8:1::a", "2001:db8:2::a", "2001:db8:3::a"];
    let frag_of = |h: &str, id: u32| {
        let mut whole = Vec::new();
        PacketBuilder::ipv6(v6(h), wkp(Z), 64)
            .udp(5000, 53)
            .write(&mut whole, &payload(1000))
            .unwrap();
        frags6(&whole, id, &[504]).remove(1)
    };
    assert_eq!(
        go(&n, 0, &frag_of(hosts[0], 1)).drop,
        Some(DropReason::FragmentHeld)
    );
    assert_eq!(
        go(&n, 0, &frag_of(hosts[0], 2)).drop,
        Some(DropReason::FragmentHeld)
    );
    // Its share is used: one source cannot take the whole store.
    assert_eq!(
        go(&n, 0, &frag_of(hosts[0], 3)).drop,
        Some(DropReason::FragmentSourceLimit)
    );
    assert_eq!(
        go(&n, 0, &frag_of(hosts[1], 4)).drop,
        Some(DropReason::FragmentHeld)
    );
    assert_eq!(
        go(&n, 0, &frag_of(hosts[1], 5)).drop,
        Some(DropReason::FragmentHeld)
    );
    // Four records held: the store is full for everyone.
    assert_eq!(
        go(&n, 0, &frag_of(hosts[2], 6)).drop,
        Some(DropReason::FragmentHeldFull)
    );

    // Memory: 4 KiB (16 blocks of 256 bytes) holds two 1560-byte fragments (7 blocks each), not
    // a third.
    let n = nat_with(|c| {
        c.frag.max_held = 100;
        c.frag.max_held_per_source = 100;
        c.frag.max_held_bytes = 4096;
    });
    let big = |id: u32| {
        let mut whole = Vec::new();
        PacketBuilder::ipv6(v6(A), wkp(Z), 64)
            .udp(5000, 53)
            .write(&mut whole, &payload(3000))
            .unwrap();
        frags6(&whole, id, &[1496]).remove(1)
    };
    assert_eq!(go(&n, 0, &big(1)).drop, Some(DropReason::FragmentHeld));
    assert_eq!(go(&n, 0, &big(2)).drop, Some(DropReason::FragmentHeld));
    assert_eq!(go(&n, 0, &big(3)).drop, Some(DropReason::FragmentHeldFull));
}

#[test]
fn a_duplicate_held_fragment_is_dropped_and_sent_once() {
    let n = nat();
    let mut whole = Vec::new();
    PacketBuilder::ipv6(v6(A), wkp(Z), 64)
        .udp(5000, 53)
        .write(&mut whole, &payload(2392))
        .unwrap();
    let f = frags6(&whole, 0x77, &[800, 1600]);
    assert_eq!(go(&n, 0, &f[2]).drop, Some(DropReason::FragmentHeld));
    assert_eq!(
        go(&n, 1, &f[2]).drop,
        Some(DropReason::FragmentHeldDuplicate)
    );
    assert_eq!(go(&n, 2, &f[1]).drop, Some(DropReason::FragmentHeld));
    let s = go(&n, 3, &f[0]);
    assert_eq!((s.out.len(), s.released.len()), (1, 2));
    // The same datagram's fragments after the first are translated as they come, duplicates
    // too (as in order).
    assert_eq!(go(&n, 4, &f[2]).out.len(), 1);
    assert_eq!(n.counts().held.held, 0);
}

#[test]
fn with_holding_off_an_early_fragment_is_dropped_as_before() {
    let n = nat_with(|c| c.frag.max_held = 0);
    let mut whole = Vec::new();
    PacketBuilder::ipv6(v6(A), wkp(Z), 64)
        .udp(5000, 53)
        .write(&mut whole, &payload(1992))
        .unwrap();
    let f = frags6(&whole, 9, &[1000]);
    assert_eq!(
        go(&n, 0, &f[1]).drop,
        Some(DropReason::FragmentFirstMissing)
    );
    let s = go(&n, 1, &f[0]);
    assert_eq!((s.out.len(), s.released.len()), (1, 0));
}

/// Every order of four fragments (24, in-order included as the reference), both directions.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for at in 0..=p.len() {
            let mut q = p.clone();
            q.insert(at, n - 1);
            out.push(q);
        }
    }
    out
}

#[test]
fn every_order_of_four_fragments_sends_the_in_order_packets() {
    let all = permutations(4);
    assert_eq!(all.len(), 24);
    let early: Vec<&[usize]> = all
        .iter()
        .filter(|o| o[0] != 0)
        .map(Vec::as_slice)
        .collect();
    assert_eq!(early.len(), 18);
    let mut whole6 = Vec::new();
    PacketBuilder::ipv6(v6(A), wkp(Z), 64)
        .udp(5000, 53)
        .write(&mut whole6, &payload(3192))
        .unwrap();
    check_orders(
        "udp 6->4 x4",
        &|_| {},
        &frags6(&whole6, 0xf00d, &[800, 1600, 2400]),
        &early,
    );
    let setup = |n: &Nat64| {
        udp_binding(n);
    };
    let t = udp_binding(&nat());
    let mut whole4 = Vec::new();
    PacketBuilder::ipv4(v4(Z), v4(T), 64)
        .udp(53, t)
        .write(&mut whole4, &payload(3192))
        .unwrap();
    check_orders(
        "udp 4->6 x4",
        &setup,
        &frags4(&whole4, 0xf00d, &[1400, 1600, 2400]),
        &early,
    );
}

/// Two workers at once: one gets every datagram's last fragment, the other its first fragment,
/// racing. Whichever comes first, each datagram's fragments must all be sent without waiting
/// for an expiry (a first fragment translated while its early fragment was being held must not
/// leave it behind).
#[test]
fn a_first_fragment_racing_its_early_fragment_on_another_worker_releases_it() {
    let n = std::sync::Arc::new(nat_with(|c| {
        c.frag.max_entries = 1 << 16;
        c.frag.max_entries_per_source = 1 << 16;
        c.frag.max_held = 1 << 16;
        c.frag.max_held_per_source = 1 << 16;
        c.frag.max_held_bytes = 64 << 20;
    }));
    const N: u32 = 20_000;
    let mut whole = Vec::new();
    PacketBuilder::ipv6(v6(A), wkp(Z), 64)
        .udp(5000, 53)
        .write(&mut whole, &payload(200))
        .unwrap();
    one(&n, 0, &whole);
    // Both workers meet at every datagram, so the two fragments of one datagram are translated
    // at about the same time.
    let meet = std::sync::Arc::new(std::sync::Barrier::new(2));
    let work = |which: usize| {
        let n = n.clone();
        let whole = whole.clone();
        let meet = meet.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; HEADROOM + 4096];
            let mut aux = vec![0u8; AUX_LEN];
            let mut ctx = Ctx::new(Timestamp(1), 7);
            let mut sent = 0u32;
            for id in 0..N {
                let f = &frags6(&whole, id, &[104])[which];
                meet.wait();
                buf[HEADROOM..HEADROOM + f.len()].copy_from_slice(f);
                let v = n.translate(&mut ctx, &mut buf, HEADROOM, f.len(), &mut aux);
                if matches!(v, Verdict::Forward { .. }) {
                    sent += 1;
                }
                while let Some(v) = n.take_released(&mut ctx, &mut buf, HEADROOM, &mut aux) {
                    if matches!(v, Verdict::Forward { .. }) {
                        sent += 1;
                    }
                }
            }
            sent
        })
    };
    let (a, b) = (work(1), work(0));
    let sent = a.join().unwrap() + b.join().unwrap();
    let mut buf = vec![0u8; HEADROOM + 4096];
    let mut aux = vec![0u8; AUX_LEN];
    let mut ctx = Ctx::new(Timestamp(1), 7);
    let mut late = 0;
    while let Some(v) = n.take_released(&mut ctx, &mut buf, HEADROOM, &mut aux) {
        assert!(matches!(v, Verdict::Forward { .. }));
        late += 1;
    }
    assert_eq!(n.counts().held.held, 0, "a fragment was left in the hold");
    assert_eq!(sent + late, 2 * N, "every fragment of every datagram sent");
}

/// RFC 6146 §3.8 with §3.4: a datagram from IPv6 host A to host B's pool4 transport address
/// (hairpinned), its two fragments translated at the same time on two workers. The non-first
/// fragment's first pass (IPv6→IPv4) can find its first fragment's entry while that first
/// fragment's second pass (IPv4→IPv6) has not yet stored the entry the non-first fragment's
/// second pass looks up: held there, it must still be sent, once, to B.
#[test]
fn a_hairpinned_fragment_racing_its_first_fragment_is_held_on_its_second_pass() {
    const B: &str = "2001:db8:1::b";
    let n = std::sync::Arc::new(nat_with(|c| {
        c.frag.max_entries = 1 << 16;
        c.frag.max_entries_per_source = 1 << 16;
        c.frag.max_held = 1 << 16;
        c.frag.max_held_per_source = 1 << 16;
        c.frag.max_held_bytes = 64 << 20;
    }));
    // B's binding (T, tb), endpoint-independent: A may send to it.
    let mut q = Vec::new();
    PacketBuilder::ipv6(v6(B), wkp(Z), 64)
        .udp(6000, 3478)
        .write(&mut q, b"stun")
        .unwrap();
    let ob = one(&n, 0, &q);
    let tb = u16::from_be_bytes([ob[20], ob[21]]);
    let mut whole = Vec::new();
    PacketBuilder::ipv6(v6(A), wkp(T), 64)
        .udp(7000, tb)
        .write(&mut whole, &payload(200))
        .unwrap();
    // A's binding exists before the race, so both workers only look up.
    let first = one(&n, 0, &whole);
    assert_eq!(&first[24..40], &v6(B), "hairpinned to B");
    const N: u32 = 20_000;
    let meet = std::sync::Arc::new(std::sync::Barrier::new(2));
    let work = |which: usize| {
        let n = n.clone();
        let whole = whole.clone();
        let meet = meet.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; HEADROOM + 4096];
            let mut aux = vec![0u8; AUX_LEN];
            let mut ctx = Ctx::new(Timestamp(1), 7);
            let mut to_b = 0u32;
            let mut count = |v: Verdict, buf: &[u8]| {
                if let Verdict::Forward { start, len } = v {
                    let p = &buf[start..start + len];
                    assert_eq!(p[0] >> 4, 6);
                    assert_eq!(&p[24..40], &v6(B));
                    // One hop: decremented once, also when held between the passes.
                    assert_eq!(p[7], 63);
                    to_b += 1;
                }
            };
            for id in 0..N {
                let f = &frags6(&whole, id, &[104])[which];
                meet.wait();
                buf[HEADROOM..HEADROOM + f.len()].copy_from_slice(f);
                let v = n.translate(&mut ctx, &mut buf, HEADROOM, f.len(), &mut aux);
                count(v, &buf);
                while let Some(v) = n.take_released(&mut ctx, &mut buf, HEADROOM, &mut aux) {
                    count(v, &buf);
                }
            }
            to_b
        })
    };
    let (a, b) = (work(1), work(0));
    let sent = a.join().unwrap() + b.join().unwrap();
    let mut buf = vec![0u8; HEADROOM + 4096];
    let mut aux = vec![0u8; AUX_LEN];
    let mut ctx = Ctx::new(Timestamp(1), 7);
    let mut late = 0;
    while let Some(v) = n.take_released(&mut ctx, &mut buf, HEADROOM, &mut aux) {
        assert!(matches!(v, Verdict::Forward { .. }));
        late += 1;
    }
    assert_eq!(n.counts().held.held, 0, "a fragment was left in the hold");
    assert_eq!(
        sent + late,
        2 * N,
        "every fragment of every datagram reached B"
    );
}

/// An IPv4 UDP datagram from Z to the client's binding (T, t) whose checksum is zero (RFC 768:
/// none computed), built by etherparse and its checksum field cleared.
fn zero_checksum_udp4(t: u16, len: usize) -> Vec<u8> {
    let mut whole = Vec::new();
    PacketBuilder::ipv4(v4(Z), v4(T), 64)
        .udp(53, t)
        .write(&mut whole, &payload(len))
        .unwrap();
    whole[26] = 0;
    whole[27] = 0;
    whole
}

/// Every packet the translator sends for `frags` delivered in `order` (fresh translator), and
/// the drop reasons of the fragments themselves.
fn deliver_all(
    n: &Nat64,
    frags: &[Vec<u8>],
    order: &[usize],
) -> (Vec<Vec<u8>>, Vec<Option<DropReason>>) {
    let mut sent = Vec::new();
    let mut drops = Vec::new();
    for (i, &k) in order.iter().enumerate() {
        let s = go_any(n, 100 + i as u64, &frags[k]);
        drops.push(s.drop);
        sent.extend(s.out);
        sent.extend(s.released);
    }
    (sent, drops)
}

/// As `go`, but released fragments may be queued for reassembly rather than forwarded.
fn go_any(n: &Nat64, now: u64, pkt: &[u8]) -> Step {
    let mut buf = vec![0xa5u8; HEADROOM + 65536];
    buf[HEADROOM..HEADROOM + pkt.len()].copy_from_slice(pkt);
    let mut aux = vec![0xa5u8; AUX_LEN];
    let mut ctx = Ctx::new(Timestamp(now), 7);
    let mut out = Vec::new();
    let v = n.translate(&mut ctx, &mut buf, HEADROOM, pkt.len(), &mut aux);
    let drop = collect(v, &buf, &aux, &mut out);
    let mut released = Vec::new();
    while let Some(v) = n.take_released(&mut ctx, &mut buf, HEADROOM, &mut aux) {
        if let Some(r) = collect(v, &buf, &aux, &mut released) {
            assert_eq!(r, DropReason::FragmentQueued, "released fragment");
        }
    }
    Step {
        out,
        drop,
        released,
    }
}

/// Reassembles IPv6 packets (fragments of one datagram, or one whole packet) into one IPv6
/// packet without extension headers, by the test's own reading of RFC 8200 §4.5.
fn reassemble6(pkts: &[Vec<u8>]) -> Vec<u8> {
    if pkts.len() == 1 && pkts[0][6] != 44 {
        return pkts[0].clone();
    }
    let mut parts: Vec<(usize, bool, &[u8])> = pkts
        .iter()
        .map(|p| {
            assert_eq!(p[6], 44, "a fragment");
            let fo = u16::from_be_bytes([p[42], p[43]]);
            (usize::from(fo & 0xfff8), fo & 1 == 1, &p[48..])
        })
        .collect();
    parts.sort_by_key(|p| p.0);
    let mut re = pkts[0][..40].to_vec();
    re[6] = pkts[0][40];
    let mut at = 0;
    for (off, _, data) in &parts {
        assert_eq!(*off, at, "contiguous fragments");
        re.extend_from_slice(data);
        at += data.len();
    }
    assert!(!parts.last().unwrap().1, "the last fragment has M = 0");
    let plen = (re.len() - 40) as u16;
    re[4..6].copy_from_slice(&plen.to_be_bytes());
    re
}

/// RFC 6146 §3.4: "For incoming IPv4 packets carrying UDP packets with a zero checksum, if the
/// NAT64 has enough resources, the NAT64 MUST reassemble the packets and MUST calculate the
/// checksum." In two and three fragments, in order and every order with the first fragment
/// not first: one translated datagram reaches the client, to its port, with a checksum that
/// verifies over the IPv6 pseudo-header and the payload intact; 3000 bytes leave as IPv6
/// fragments that fit 1280 bytes.
#[test]
fn zero_checksum_udp_fragments_are_reassembled_and_the_checksum_calculated() {
    for (len, cuts) in [
        (992usize, &[504usize][..]),
        (1192, &[400, 800][..]),
        (2992, &[1480][..]),
    ] {
        for order in &permutations(cuts.len() + 1) {
            let n = nat();
            let t = udp_binding(&n);
            let whole = zero_checksum_udp4(t, len);
            let frags = frags4(&whole, 0x5151, cuts);
            let (sent, drops) = deliver_all(&n, &frags, order);
            // Nothing leaves before the datagram is complete; nothing is answered with an error.
            for (i, d) in drops.iter().enumerate() {
                if i + 1 < order.len() {
                    assert!(
                        matches!(
                            d,
                            Some(DropReason::FragmentQueued | DropReason::FragmentHeld)
                        ),
                        "{len} {order:?}: fragment {i}: {d:?}"
                    );
                }
            }
            assert!(!sent.is_empty(), "{len} {order:?}: nothing sent");
            for p in &sent {
                assert!(p.len() <= 1280, "{len}: a {}-byte IPv6 packet", p.len());
            }
            let re = reassemble6(&sent);
            assert_eq!(&re[8..24], &wkp(Z), "{len} {order:?}");
            assert_eq!(&re[24..40], &v6(A), "{len} {order:?}");
            assert_eq!(re[6], 17);
            assert_eq!(u16::from_be_bytes([re[42], re[43]]), 5000, "client port");
            assert_ne!(&re[46..48], &[0, 0], "{len} {order:?}: checksum calculated");
            assert!(l4_ok_v6(&re), "{len} {order:?}: UDP checksum verifies");
            assert_eq!(&re[48..], &payload(len)[..], "{len} {order:?}: payload");
            let c = n.counts();
            assert_eq!((c.held.held, c.reassembling), (0, 0), "{len} {order:?}");
        }
    }
}

/// "If the NAT64 does not have enough resources, then it MUST silently discard the packets"
/// (§3.4): with one reassembly slot busy, a second zero-checksum datagram is dropped without an
/// ICMP error, and its later fragments with it; the first datagram still completes. With
/// `compute_udp_zero_checksum = false` nothing is reassembled: RFC 7915 §4.5's drop.
#[test]
fn zero_checksum_udp_fragments_without_resources_are_silently_discarded() {
    let n = nat_with(|c| {
        c.frag.max_reassembly = 1;
        c.frag.max_reassembly_per_source = 1;
    });
    let t = udp_binding(&n);
    let a = frags4(&zero_checksum_udp4(t, 992), 1, &[504]);
    let b = frags4(&zero_checksum_udp4(t, 992), 2, &[504]);
    assert_eq!(go_any(&n, 1, &a[0]).drop, Some(DropReason::FragmentQueued));
    let s = go_any(&n, 2, &b[0]);
    assert!(s.out.is_empty() && s.released.is_empty(), "silent");
    assert!(matches!(
        s.drop,
        Some(DropReason::FragmentStoreFull | DropReason::FragmentSourceLimit)
    ));
    // b's second fragment has no translated first fragment: held, then it expires unsent.
    let s = go_any(&n, 3, &b[1]);
    assert!(s.out.is_empty() && s.released.is_empty());
    let s = go_any(&n, 4, &a[1]);
    assert_eq!((s.out.len(), s.drop), (1, None), "a completes");
    assert!(l4_ok_v6(&s.out[0]));
    n.expire(Timestamp(10_000));
    assert_eq!(n.counts().held.held, 0);

    let off = nat_with(|c| c.xlat.compute_udp_zero_checksum = false);
    let t = udp_binding(&off);
    let a = frags4(&zero_checksum_udp4(t, 992), 1, &[504]);
    let s = go_any(&off, 1, &a[0]);
    assert_eq!(s.drop, Some(DropReason::FragmentedZeroChecksumUdp));
    assert_eq!(off.counts().reassembling, 0);
}
