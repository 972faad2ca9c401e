//! The stateful hot path allocates nothing: after the flows exist, 10,000 translations of
//! established UDP/TCP/ICMP flows in both directions, hairpinned packets, ICMP errors and
//! fragments run under a counting allocator.

mod common;
use common::*;
use etherparse::PacketBuilder;
use nat64_core::nat64::{Nat64, Nat64Config};
use nat64_core::pool6::Pool6;
use nat64_core::rfc6052::Prefix6052;
use nat64_core::{Ctx, Timestamp, Verdict, AUX_LEN, HEADROOM};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts calls made on the measuring thread.
#[allow(unsafe_code)] // a counting allocator must implement the unsafe GlobalAlloc trait
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if ON.with(|o| o.get()) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if ON.with(|o| o.get()) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

const T: &str = "192.0.2.1";
const Z: &str = "198.51.100.10";

fn run(n: &Nat64, buf: &mut [u8], aux: &mut [u8], now: u64, pkt: &[u8]) -> Verdict {
    buf[HEADROOM..HEADROOM + pkt.len()].copy_from_slice(pkt);
    let mut ctx = Ctx::new(Timestamp(now), 3);
    n.translate(&mut ctx, buf, HEADROOM, pkt.len(), aux)
}

fn out(v: Verdict, buf: &[u8]) -> Vec<u8> {
    match v {
        Verdict::Forward { start, len } => buf[start..start + len].to_vec(),
        o => panic!("{o:?}"),
    }
}

#[test]
fn established_flows_allocate_nothing() {
    let pool6 = Pool6::new(vec![Prefix6052::WKP], false).unwrap();
    let mut c = Nat64Config::new(pool6, vec![T.parse().unwrap()], 5);
    c.max_sessions = 4096;
    c.shards = 4;
    let n = Nat64::new(c).unwrap();
    let mut buf = vec![0u8; HEADROOM + 4096];
    let mut aux = vec![0u8; AUX_LEN];

    let a = v6("2001:db8:1::a");
    let b = v6("2001:db8:1::b");
    let mut udp_a = Vec::new();
    PacketBuilder::ipv6(a, wkp(Z), 64)
        .udp(5000, 53)
        .write(&mut udp_a, &[1; 100])
        .unwrap();
    let o = out(run(&n, &mut buf, &mut aux, 0, &udp_a), &buf);
    let t_a = u16::from_be_bytes([o[20], o[21]]);
    let mut udp_z = Vec::new();
    PacketBuilder::ipv4(v4(Z), v4(T), 64)
        .udp(53, t_a)
        .write(&mut udp_z, &[2; 1000])
        .unwrap();
    let mut udp_b = Vec::new();
    PacketBuilder::ipv6(b, wkp(Z), 64)
        .udp(6000, 53)
        .write(&mut udp_b, &[3; 10])
        .unwrap();
    let o = out(run(&n, &mut buf, &mut aux, 0, &udp_b), &buf);
    let t_b = u16::from_be_bytes([o[20], o[21]]);
    let mut hairpin = Vec::new();
    PacketBuilder::ipv6(a, wkp(T), 64)
        .udp(5000, t_b)
        .write(&mut hairpin, &[4; 10])
        .unwrap();
    let mut tcp_a = Vec::new();
    PacketBuilder::ipv6(a, wkp(Z), 64)
        .tcp(40000, 80, 1, 1000)
        .syn()
        .write(&mut tcp_a, &[])
        .unwrap();
    run(&n, &mut buf, &mut aux, 0, &tcp_a);
    let mut echo = Vec::new();
    PacketBuilder::ipv6(a, wkp(Z), 64)
        .icmpv6_echo_request(9, 1)
        .write(&mut echo, b"ping")
        .unwrap();
    let quoted = out(run(&n, &mut buf, &mut aux, 0, &udp_a), &buf);
    let mut err = Vec::new();
    PacketBuilder::ipv4(v4("203.0.113.254"), v4(T), 64)
        .icmpv4(etherparse::Icmpv4Type::TimeExceeded(
            etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit,
        ))
        .write(&mut err, &quoted)
        .unwrap();
    let mut whole = Vec::new();
    PacketBuilder::ipv6(a, wkp(Z), 64)
        .udp(5000, 53)
        .write(&mut whole, &[9u8; 1992])
        .unwrap();
    let seg = whole[40..].to_vec();
    let inputs = [udp_a, udp_z, udp_b, hairpin, tcp_a, echo, err];
    // Create every session once (allowed to allocate), then measure.
    for p in &inputs {
        run(&n, &mut buf, &mut aux, 0, p);
    }
    ON.with(|o| o.set(true));
    let mut forwarded = 0;
    for i in 0..10_000u32 {
        let now = u64::from(i) * 10;
        for p in &inputs {
            if !matches!(
                run(&n, &mut buf, &mut aux, now, p),
                Verdict::Drop(_) | Verdict::IcmpError { .. }
            ) {
                forwarded += 1;
            }
        }
        if i % 100 == 0 {
            ON.with(|o| o.set(false));
            let f1 = frag6(a, wkp(Z), 17, 0, true, i, &seg[..1232]);
            let f2 = frag6(a, wkp(Z), 17, 154, false, i, &seg[1232..]);
            ON.with(|o| o.set(true));
            for f in [&f1, &f2] {
                assert!(matches!(
                    run(&n, &mut buf, &mut aux, now, f),
                    Verdict::Forward { .. }
                ));
            }
            ON.with(|o| o.set(false));
            drop((f1, f2));
            ON.with(|o| o.set(true));
            n.expire(Timestamp(now));
        }
    }
    ON.with(|o| o.set(false));
    assert_eq!(forwarded, 70_000, "every input translated");
    assert_eq!(COUNT.with(|c| c.get()), 0, "allocations on the hot path");
}

/// RFC 6146 §3.4 out-of-order fragments allocate nothing either: holding a fragment that came
/// before its first fragment, releasing it, translating it through `take_released`, and expiring
/// the held fragments whose first fragment never comes all use the preallocated store.
#[test]
fn held_fragments_allocate_nothing() {
    let pool6 = Pool6::new(vec![Prefix6052::WKP], false).unwrap();
    let mut c = Nat64Config::new(pool6, vec![T.parse().unwrap()], 5);
    c.max_sessions = 64;
    c.shards = 2;
    let n = Nat64::new(c).unwrap();
    let mut buf = vec![0u8; HEADROOM + 4096];
    let mut aux = vec![0u8; AUX_LEN];
    let a = v6("2001:db8:1::a");
    let mut whole = Vec::new();
    PacketBuilder::ipv6(a, wkp(Z), 64)
        .udp(5000, 53)
        .write(&mut whole, &[9u8; 1992])
        .unwrap();
    let seg = whole[40..].to_vec();
    let frags: Vec<[Vec<u8>; 3]> = (0..3000u32)
        .map(|i| {
            [
                frag6(a, wkp(Z), 17, 0, true, i, &seg[..1232]),
                frag6(a, wkp(Z), 17, 154, false, i, &seg[1232..]),
                // A fragment of another datagram whose first fragment never comes.
                frag6(a, wkp(Z), 17, 154, false, 1_000_000 + i, &seg[1232..]),
            ]
        })
        .collect();
    let mut sent = 0;
    let mut step = |i: usize, n: &Nat64, buf: &mut Vec<u8>, aux: &mut Vec<u8>| {
        let now = i as u64 * 10;
        let [first, last, stray] = &frags[i];
        assert_eq!(
            run(n, buf, aux, now, last),
            Verdict::Drop(nat64_core::DropReason::FragmentHeld)
        );
        if i.is_multiple_of(10) {
            run(n, buf, aux, now, stray);
        }
        assert!(matches!(
            run(n, buf, aux, now, first),
            Verdict::Forward { .. }
        ));
        let mut ctx = Ctx::new(Timestamp(now), 3);
        while let Some(v) = n.take_released(&mut ctx, buf, HEADROOM, aux) {
            assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
            sent += 1;
        }
        n.expire(Timestamp(now));
    };
    // Warm up (the session is created here), then measure.
    for i in 0..500 {
        step(i, &n, &mut buf, &mut aux);
    }
    ON.with(|o| o.set(true));
    for i in 500..3000 {
        step(i, &n, &mut buf, &mut aux);
    }
    ON.with(|o| o.set(false));
    assert_eq!(sent, 3000, "every held fragment released and translated");
    assert!(n.counts().held.expired > 0, "stray fragments expired");
    assert_eq!(
        COUNT.with(|c| c.get()),
        0,
        "allocations on the held-fragment path"
    );
}
