//! The hot path allocates nothing: 10,000 translations of every kind under a counting allocator.

mod common;
use common::*;
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

#[test]
fn ten_thousand_packets_allocate_nothing() {
    let s = siit();
    let quoted = match run(&udp6(v6(V6_CLIENT), wkp(V4_SERVER), 64, b"q")) {
        Out::Packets(mut v) => v.remove(0),
        o => panic!("{o:?}"),
    };
    let mut icmp = vec![3u8, 3, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&quoted);
    let inputs: Vec<Vec<u8>> = vec![
        udp6(v6(V6_CLIENT), wkp(V4_SERVER), 64, &[1u8; 64]),
        udp4(v4(V4_SERVER), v4("192.0.2.1"), 64, &[2u8; 1400]),
        tcp6(v6(V6_CLIENT), wkp(V4_SERVER), b"GET / HTTP/1.1"),
        echo6(v6(V6_CLIENT), wkp(V4_SERVER), b"ping"),
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
            &icmp,
        ),
        udp4(v4(V4_SERVER), v4("192.0.2.1"), 1, b"ttl expires"),
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
            &[0u8; 2000],
        ),
        vec![0x45, 0, 0, 1],
        syn_with_mss(),
    ];
    let mut buf = vec![0u8; HEADROOM + 4096];
    let mut aux = vec![0u8; AUX_LEN];
    let mut ctx = Ctx::new(Timestamp(0), 1);
    let mut forwarded = 0u32;
    ON.with(|o| o.set(true));
    for i in 0..10_000 {
        let p = &inputs[i % inputs.len()];
        buf[HEADROOM..HEADROOM + p.len()].copy_from_slice(p);
        ctx.now = Timestamp(i as u64);
        if !matches!(
            s.translate(&mut ctx, &mut buf, HEADROOM, p.len(), &mut aux),
            Verdict::Drop(_)
        ) {
            forwarded += 1;
        }
    }
    ON.with(|o| o.set(false));
    assert_eq!(COUNT.with(|c| c.get()), 0, "allocations on the packet path");
    assert!(ctx.mss_clamped[0] > 0, "the MSS clamping path ran");
    assert!(
        forwarded > 8_000,
        "the loop translated packets ({forwarded})"
    );
}

/// A SYN whose MSS (after SACK-permitted and timestamps) is clamped on the way out.
fn syn_with_mss() -> Vec<u8> {
    use etherparse::TcpOptionElement as O;
    let mut v = Vec::new();
    etherparse::PacketBuilder::ipv6(v6(V6_CLIENT), wkp(V4_SERVER), 64)
        .tcp(40001, 80, 1, 64240)
        .syn()
        .options(&[
            O::SelectiveAcknowledgementPermitted,
            O::Timestamp(1, 0),
            O::MaximumSegmentSize(8960),
        ])
        .unwrap()
        .write(&mut v, b"")
        .unwrap();
    v
}
