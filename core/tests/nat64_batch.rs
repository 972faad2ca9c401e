//! `Nat64::prefetch` (the batch look-ahead) and the session indexes at scale: the look-ahead finds
//! exactly the established flows of a batch, in both directions and for TCP, UDP and ICMP echo,
//! skips what it must not guess at, and never changes a translation; a shard pushed far past its
//! pre-sized share (its index grows) still finds every flow. Inputs are built with etherparse.

use etherparse::PacketBuilder;
use nat64_core::nat64::{Nat64, Nat64Config, PREFETCH_BATCH};
use nat64_core::pool6::Pool6;
use nat64_core::rfc6052::Prefix6052;
use nat64_core::{Ctx, Timestamp, Verdict, AUX_LEN, HEADROOM};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Counts allocations made on a thread while its `COUNTING` flag is set (tests run in parallel
/// threads; each counts only its own).
struct CountingAlloc;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn note_alloc() {
    if COUNTING.with(Cell::get) {
        ALLOCS.with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; only a thread-local count
// is added.
#[allow(unsafe_code)] // a counting allocator must implement the unsafe GlobalAlloc trait
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note_alloc();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note_alloc();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn nat(max: usize, shards: usize) -> Nat64 {
    let pool6 = Pool6::new(vec![Prefix6052::WKP], false).unwrap();
    let pool4 = (1..=4).map(|i| Ipv4Addr::new(192, 0, 2, i)).collect();
    let mut c = Nat64Config::new(pool6, pool4, 0x0ddb_a11c_afe5_eed5);
    c.max_sessions = max;
    c.max_sessions_per_host = u32::MAX;
    c.shards = shards;
    Nat64::new(c).unwrap()
}

/// Y' for Z under 64:ff9b::/96.
fn y6(z: Ipv4Addr) -> [u8; 16] {
    let mut a = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0).octets();
    a[12..].copy_from_slice(&z.octets());
    a
}

fn host(i: usize) -> [u8; 16] {
    Ipv6Addr::new(0x2001, 0xdb8, (i >> 8) as u16, i as u16, 0, 0, 0, 1).octets()
}

const Z: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

/// The IPv6 packet of flow `i`: UDP, TCP SYN or ICMPv6 echo request by `i % 3`.
fn pkt6(i: usize, src: [u8; 16]) -> Vec<u8> {
    let b = PacketBuilder::ipv6(src, y6(Z), 64);
    let port = 1024 + (i as u16);
    let mut v = Vec::new();
    match i % 3 {
        0 => b.udp(port, 53).write(&mut v, &[1, 2, 3, 4]),
        1 => b.tcp(port, 80, 1000, 8192).syn().write(&mut v, &[]),
        _ => b.icmpv6_echo_request(port, 1).write(&mut v, &[9; 8]),
    }
    .unwrap();
    v
}

/// Translates `pkt` and returns the output packet (panics on anything but a forward).
fn xlat(n: &Nat64, now: u64, pkt: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; HEADROOM + pkt.len() + 64];
    buf[HEADROOM..HEADROOM + pkt.len()].copy_from_slice(pkt);
    let mut aux = vec![0u8; AUX_LEN];
    let mut ctx = Ctx::new(Timestamp(now), 1);
    match n.translate(&mut ctx, &mut buf, HEADROOM, pkt.len(), &mut aux) {
        Verdict::Forward { start, len } => buf[start..start + len].to_vec(),
        v => panic!("{v:?}"),
    }
}

/// The IPv4 peer's answer to translated packet `o` (IPv4, no options): UDP, SYN-ACK, echo reply.
fn reply4(o: &[u8]) -> Vec<u8> {
    let src: [u8; 4] = o[12..16].try_into().unwrap();
    let dst: [u8; 4] = o[16..20].try_into().unwrap();
    let (a, b) = (
        u16::from_be_bytes([o[20], o[21]]),
        u16::from_be_bytes([o[22], o[23]]),
    );
    let p = PacketBuilder::ipv4(dst, src, 64);
    let mut v = Vec::new();
    match o[9] {
        17 => p.udp(b, a).write(&mut v, &[5; 6]),
        6 => p.tcp(b, a, 5000, 8192).syn().ack(1001).write(&mut v, &[]),
        1 => {
            let id = u16::from_be_bytes([o[24], o[25]]);
            p.icmpv4_echo_reply(id, 1).write(&mut v, &[9; 8])
        }
        x => panic!("protocol {x}"),
    }
    .unwrap();
    v
}

/// Two tables with the same seed fed the same packets, one with `prefetch` before every batch:
/// byte-equal outputs, equal session counts; `prefetch` counts exactly the batch's established
/// flows.
#[test]
fn prefetch_finds_established_flows_and_changes_no_translation() {
    let (with, without) = (nat(4096, 8), nat(4096, 8));
    let n = 300;
    let v6: Vec<Vec<u8>> = (0..n).map(|i| pkt6(i, host(i % 37))).collect();
    // Before any session exists the look-ahead finds nothing.
    assert_eq!(with.prefetch(v6.iter().map(Vec::as_slice)), 0);
    let mut v4 = Vec::new();
    for p in &v6 {
        let a = xlat(&with, 1000, p);
        assert_eq!(a, xlat(&without, 1000, p));
        v4.push(reply4(&a));
    }
    assert_eq!(with.session_count(), n);
    for pkts in [&v6, &v4] {
        for (c, batch) in pkts.chunks(PREFETCH_BATCH).enumerate() {
            let found = with.prefetch(batch.iter().map(Vec::as_slice));
            assert_eq!(found, batch.len(), "chunk {c}");
            for p in batch {
                assert_eq!(xlat(&with, 2000, p), xlat(&without, 2000, p));
            }
        }
    }
    // It looks at PREFETCH_BATCH packets at most.
    assert_eq!(with.prefetch(v6.iter().map(Vec::as_slice)), PREFETCH_BATCH);
    // Creates nothing, refreshes nothing: the same session list.
    let f = nat64_core::nat64::session::Filter::default();
    let now = Timestamp(3000);
    assert_eq!(
        with.sessions(&f, now, usize::MAX),
        without.sessions(&f, now, usize::MAX)
    );
    assert_eq!(with.session_count(), without.session_count());
}

/// What the look-ahead must not count: unknown flows, another peer or port of a known flow,
/// ICMP messages other than echo, fragments, extension headers, truncated and garbage input.
#[test]
fn prefetch_skips_what_is_not_an_established_flow() {
    let t = nat(1024, 4);
    let p = pkt6(0, host(1)); // UDP 1024 -> 53
    let o = xlat(&t, 1000, &p);
    let r = reply4(&o);
    assert_eq!(t.prefetch([p.as_slice(), r.as_slice()]), 2);
    let mut other_port = Vec::new();
    PacketBuilder::ipv6(host(1), y6(Z), 64)
        .udp(1024, 54)
        .write(&mut other_port, &[1])
        .unwrap();
    let mut other_peer = Vec::new();
    PacketBuilder::ipv6(host(1), y6(Ipv4Addr::new(203, 0, 113, 5)), 64)
        .udp(1024, 53)
        .write(&mut other_peer, &[1])
        .unwrap();
    let mut other_host = Vec::new();
    PacketBuilder::ipv6(host(2), y6(Z), 64)
        .udp(1024, 53)
        .write(&mut other_host, &[1])
        .unwrap();
    // An echo reply from the IPv6 side is not a query of this table.
    let mut echo_reply6 = Vec::new();
    PacketBuilder::ipv6(host(1), y6(Z), 64)
        .icmpv6_echo_reply(1024, 1)
        .write(&mut echo_reply6, &[])
        .unwrap();
    // The same UDP flow behind a Destination Options header.
    let mut ext = p.clone();
    ext[6] = 60;
    // The IPv4 reply as a first fragment (MF set).
    let mut frag = r.clone();
    frag[6] |= 0x20;
    // The IPv4 reply to an address outside pool4.
    let mut off_pool = r.clone();
    off_pool[16..20].copy_from_slice(&[203, 0, 113, 9]);
    let short = &p[..41];
    let garbage = [0x55u8; 60];
    let empty: &[u8] = &[];
    let none = [
        other_port.as_slice(),
        other_peer.as_slice(),
        other_host.as_slice(),
        echo_reply6.as_slice(),
        ext.as_slice(),
        frag.as_slice(),
        off_pool.as_slice(),
        short,
        &garbage,
        empty,
    ];
    assert_eq!(t.prefetch(none), 0);
    // Mixed in a batch, the flows are still counted.
    let mut mixed = none.to_vec();
    mixed.insert(3, p.as_slice());
    mixed.push(r.as_slice());
    assert_eq!(t.prefetch(mixed), 2);
}

/// One host (one shard) with 20 times its shard's pre-sized share: the session index grows
/// several times; every flow is still found, by the look-ahead and by translation, in both
/// directions, and expiry empties the table.
#[test]
fn a_shard_far_past_its_share_finds_every_flow() {
    let t = nat(4096, 16);
    let n = 5000; // the shard is pre-sized for 4096 / 16 * 1.25 = 320
    let v6: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let mut v = Vec::new();
            PacketBuilder::ipv6(host(7), y6(Z), 64)
                .udp(1024 + i as u16, 53)
                .write(&mut v, &[1])
                .unwrap();
            v
        })
        .collect();
    // max_sessions caps the total at 4096.
    let v4: Vec<Vec<u8>> = v6[..4096]
        .iter()
        .map(|p| reply4(&xlat(&t, 1000, p)))
        .collect();
    assert_eq!(t.session_count(), 4096);
    for (a, b) in v6[..4096]
        .chunks(PREFETCH_BATCH)
        .zip(v4.chunks(PREFETCH_BATCH))
    {
        assert_eq!(t.prefetch(a.iter().map(Vec::as_slice)), a.len());
        assert_eq!(t.prefetch(b.iter().map(Vec::as_slice)), b.len());
    }
    for (a, b) in v6[..4096].iter().zip(&v4) {
        let o = xlat(&t, 2000, a);
        assert_eq!(reply4(&o), *b);
        assert_eq!(&xlat(&t, 2000, b)[24..40], &host(7));
    }
    t.expire(Timestamp(2000 + 301_000));
    assert_eq!(t.session_count(), 0);
    assert_eq!(t.prefetch(v6.iter().map(Vec::as_slice)), 0);
    assert_eq!(t.prefetch(v4.iter().map(Vec::as_slice)), 0);
}

/// The look-ahead is on the packet path: it allocates nothing (stack arrays only).
#[test]
fn prefetch_allocates_nothing() {
    let t = nat(4096, 8);
    let v6: Vec<Vec<u8>> = (0..96).map(|i| pkt6(i, host(i % 5))).collect();
    let v4: Vec<Vec<u8>> = v6.iter().map(|p| reply4(&xlat(&t, 1000, p))).collect();
    let mixed: Vec<&[u8]> = v6
        .iter()
        .zip(&v4)
        .flat_map(|(a, b)| [a.as_slice(), b.as_slice()])
        .collect();
    let mut found = 0;
    COUNTING.with(|c| c.set(true));
    for _ in 0..100 {
        for batch in mixed.chunks(PREFETCH_BATCH) {
            found += t.prefetch(batch.iter().copied());
        }
    }
    COUNTING.with(|c| c.set(false));
    assert_eq!(found, 100 * mixed.len());
    assert_eq!(ALLOCS.with(Cell::get), 0);
}

/// Random bytes (version nibble 4 or 6, any length up to 80, destinations in pool4 and Pref64
/// half the time) never panic the look-ahead and never count as a flow of an empty table.
#[test]
fn prefetch_survives_random_headers() {
    let t = nat(1024, 4);
    let mut r = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        r
    };
    let mut pkts = vec![[0u8; 80]; PREFETCH_BATCH];
    let mut lens = [0usize; PREFETCH_BATCH];
    for _ in 0..2000 {
        for (p, l) in pkts.iter_mut().zip(lens.iter_mut()) {
            for b in p.iter_mut() {
                *b = next() as u8;
            }
            let v6 = next() & 1 == 0;
            p[0] = (p[0] & 0x0f) | if v6 { 0x60 } else { 0x40 };
            // Half the time, headers that pass the early checks: a pool4 or Pref64
            // destination, TCP/UDP/ICMP, IPv4 with a 20-byte header and no fragment fields.
            if next() & 1 == 0 {
                let proto = [6, 17, 1, 58][(next() % 4) as usize];
                if v6 {
                    p[6] = proto;
                    p[24..40].copy_from_slice(&y6(Z));
                } else {
                    p[0] = 0x45;
                    p[6] = 0;
                    p[7] = 0;
                    p[9] = proto;
                    p[16..20].copy_from_slice(&[192, 0, 2, 1 + (next() % 4) as u8]);
                }
            }
            *l = (next() % 81) as usize;
        }
        let found = t.prefetch(pkts.iter().zip(&lens).map(|(p, &l)| &p[..l]));
        assert_eq!(found, 0);
    }
}
