//! Memory per session, measured with a counting global allocator: bytes held after creating
//! 1,000,000 UDP sessions (each with its own BIB entry, the worst case: one source port per
//! flow), divided by the session count. Prints numbers; run with
//! `cargo bench -p nat64-core --bench nat64_memory`.

use nat64_core::nat64::{Nat64, Nat64Config, Nat64Mapper};
use nat64_core::pool6::Pool6;
use nat64_core::rfc6052::Prefix6052;
use nat64_core::{Ctx, Mapper, Role, Timestamp, Tuple6, L4};
use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts sizes.
#[allow(unsafe_code)] // a counting allocator must implement the unsafe GlobalAlloc trait
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn main() {
    // Only under `cargo bench` (which passes `--bench`), not as part of `cargo test --all-targets`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n: usize = 1_000_000;
    for (hosts, label) in [
        (4096usize, "4096 hosts"),
        (1_000_000, "one host per session"),
    ] {
        let pool6 = Pool6::new(vec![Prefix6052::WKP], false).unwrap();
        let pool4: Vec<Ipv4Addr> = (0..32)
            .map(|i| Ipv4Addr::new(198, 51, 100, i + 1))
            .collect();
        let mut c = Nat64Config::new(pool6, pool4, 42);
        c.max_sessions = n;
        c.max_sessions_per_host = u32::MAX;
        let before = LIVE.load(Ordering::Relaxed);
        let nat = Nat64::new(c).unwrap();
        let empty = LIVE.load(Ordering::Relaxed) - before;
        let mut ctx = Ctx::new(Timestamp(0), 1);
        for i in 0..n {
            let h = i % hosts;
            let t = Tuple6 {
                // Each host in its own /64 (one subscriber each, the default
                // `subscriber_prefix_len`), so hosts spread over the shards.
                src: Ipv6Addr::new(0x2001, 0xdb8, (h >> 16) as u16, h as u16, 0, 0, 0, 1),
                dst: "64:ff9b::cb00:7107".parse().unwrap(),
                proto: 17,
                l4: L4::Ports {
                    src: 1024 + (i / hosts) as u16,
                    dst: 53,
                },
                frag: None,
                tcp_flags: 0,
            };
            Nat64Mapper::new(&nat)
                .map_6to4(&mut ctx, &t, Role::Packet)
                .unwrap();
        }
        let full = LIVE.load(Ordering::Relaxed) - before;
        let counts = nat.counts();
        let pool4 = counts.pool4_bytes;
        println!(
            "nat64_memory {label}: {} sessions, {} BIB entries: {:.1} MB allocated ({:.1} MB before any session, of it pool4 owner bytes {:.1} MB); {:.1} bytes/session all-in, {:.1} bytes/session for tables alone",
            nat.session_count(),
            counts.bib.iter().sum::<usize>(),
            full as f64 / 1e6,
            empty as f64 / 1e6,
            pool4 as f64 / 1e6,
            full as f64 / n as f64,
            (full - pool4) as f64 / n as f64,
        );
        drop(nat);
    }
}
