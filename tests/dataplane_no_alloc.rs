//! The worker's per-packet step allocates nothing: a counting global allocator watches this
//! thread while `handle_packet` runs over forwarded, fragmented, ICMP-error and dropped packets.

use etherparse::{IpNumber, Ipv4Header, PacketBuilder};
use nat64_core::siit::Siit;
use nat64_core::{Ctx, Timestamp, HEADROOM};
use nat64d::dataplane::{handle_packet, Buffers};
use nat64d::stats::BatchCounts;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static WATCH: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards to the system allocator; only counts.
#[allow(unsafe_code)] // a counting allocator must implement the unsafe GlobalAlloc trait
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if WATCH.with(|w| w.get()) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if WATCH.with(|w| w.get()) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

const CLI6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const SRV6: [u8; 16] = [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 198, 51, 100, 2];
const SRV4: [u8; 4] = [198, 51, 100, 2];
const CLI4: [u8; 4] = [192, 0, 2, 2];

#[test]
fn handle_packet_allocates_nothing() {
    let cfg = nat64d::config::parse(
        Path::new("t.toml"),
        "wkp_strict = false\n[siit]\neamt = [{ ipv4 = \"192.0.2.2\", ipv6 = \"2001:db8:1::2\" }]\n",
    )
    .unwrap();
    let siit = Siit::new(cfg.siit);
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for (hl, len) in [(64u8, 10usize), (64, 1400), (1, 10)] {
        let mut v = Vec::new();
        PacketBuilder::ipv6(CLI6, SRV6, hl)
            .udp(1000, 53)
            .write(&mut v, &vec![7u8; len])
            .unwrap();
        inputs.push(v);
    }
    let mut v = Vec::new();
    PacketBuilder::ipv4(SRV4, CLI4, 64)
        .tcp(80, 1000, 1, 1000)
        .write(&mut v, &[1u8; 500])
        .unwrap();
    inputs.push(v);
    let mut ip = Ipv4Header::new(0, 64, IpNumber::UDP, SRV4, CLI4).unwrap();
    ip.dont_fragment = false;
    let mut v = Vec::new();
    PacketBuilder::ip(etherparse::IpHeaders::Ipv4(ip, Default::default()))
        .udp(53, 1000)
        .write(&mut v, &[9u8; 2000])
        .unwrap();
    inputs.push(v); // fragmented into aux
    inputs.push(vec![0x60, 0, 0]); // truncated

    let mut b = Buffers::default();
    let mut ctx = Ctx::new(Timestamp(0), 1);
    let mut c = BatchCounts::default();
    let mut written = 0usize;
    WATCH.with(|w| w.set(true));
    for i in 0..10_000 {
        let p = &inputs[i % inputs.len()];
        b.buf[HEADROOM..HEADROOM + p.len()].copy_from_slice(p);
        handle_packet(
            &siit,
            &mut ctx,
            &mut b.buf,
            p.len(),
            &mut b.aux,
            &mut c,
            |o| {
                written += o.len();
                Ok(o.len())
            },
        );
    }
    WATCH.with(|w| w.set(false));
    assert_eq!(
        ALLOCS.load(Ordering::Relaxed),
        0,
        "allocations on the packet path"
    );
    assert!(written > 0);
    assert!(c.tx > 6000, "tx {}", c.tx);
    assert!(c.icmp_errors > 0);
}
