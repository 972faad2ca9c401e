//! RFC 6146 tables: established-flow lookup (both directions) and new-flow setup, at 1k, 100k and
//! 1M sessions. Run: `cargo bench -p nat64-core --bench nat64_tables`.
//!
//! The lookups visit the flows in a shuffled order, so the larger tables pay their cache misses.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use etherparse::PacketBuilder;
use nat64_core::nat64::{Nat64, Nat64Config, Nat64Mapper, PREFETCH_BATCH};
use nat64_core::pool6::Pool6;
use nat64_core::rfc6052::Prefix6052;
use nat64_core::{Ctx, Mapper, Role, Timestamp, Tuple4, Tuple6, Verdict, AUX_LEN, HEADROOM, L4};
use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};

const SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];
/// New flows created between two (untimed) resets of the new-flow bench.
const BATCH: usize = 50_000;

fn config(max: usize) -> Nat64Config {
    let pool6 = Pool6::new(vec![Prefix6052::WKP], false).unwrap();
    let pool4 = (0..64)
        .map(|i| Ipv4Addr::new(198, 51, 100, i + 1))
        .collect();
    let mut c = Nat64Config::new(pool6, pool4, 0x5eed_1234_abcd_0001);
    c.enforce_rfc_minimums = false;
    c.max_sessions = max;
    c.max_sessions_per_host = u32::MAX;
    c.timeouts.udp = 60;
    c.timeouts.tcp_trans = 10_000_000;
    c
}

fn host(i: usize) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0, (i >> 16) as u16, 0, 0, 0, i as u16)
}

fn flow6(i: usize, proto: u8, salt: u16) -> Tuple6 {
    // 4096 hosts, distinct source ports per host.
    let h = i % 4096;
    let port = 1024 + (i / 4096) as u16 + salt;
    Tuple6 {
        src: host(h),
        dst: "64:ff9b::cb00:7107".parse().unwrap(),
        proto,
        l4: L4::Ports {
            src: port,
            dst: 443,
        },
        frag: None,
        tcp_flags: if proto == 6 { 0x02 } else { 0 },
    }
}

/// A table with `n` UDP sessions; returns it with the IPv6 flows and their IPv4 replies.
fn filled(n: usize, extra: usize) -> (Nat64, Vec<Tuple6>, Vec<Tuple4>) {
    let nat = Nat64::new(config(n + extra)).unwrap();
    let mut ctx = Ctx::new(Timestamp(1_000), 1);
    let mut v6 = Vec::with_capacity(n);
    let mut v4 = Vec::with_capacity(n);
    for i in 0..n {
        let t = flow6(i, 17, 0);
        let o = Nat64Mapper::new(&nat)
            .map_6to4(&mut ctx, &t, Role::Packet)
            .unwrap();
        let L4::Ports { src, dst } = o.l4 else {
            unreachable!()
        };
        v4.push(Tuple4 {
            src: o.dst,
            dst: o.src,
            proto: 17,
            l4: L4::Ports { src: dst, dst: src },
            frag: None,
            tcp_flags: 0,
        });
        v6.push(t);
    }
    // Shuffle (xorshift) so lookups do not walk memory in insertion order.
    let mut r = 0x9e37_79b9_u64;
    for i in (1..n).rev() {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        let j = (r % (i as u64 + 1)) as usize;
        v6.swap(i, j);
        v4.swap(i, j);
    }
    (nat, v6, v4)
}

fn lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("nat64_lookup");
    g.throughput(Throughput::Elements(1));
    for n in SIZES {
        let (nat, v6, v4) = filled(n, 0);
        let mut ctx = Ctx::new(Timestamp(2_000), 1);
        // One pass at the measuring time first, so the timer lists are already in order (a flow
        // is relinked at most once per 100 ms tick, not per packet).
        for (a, b) in v6.iter().zip(&v4) {
            black_box(
                Nat64Mapper::new(&nat)
                    .map_6to4(&mut ctx, a, Role::Packet)
                    .is_ok(),
            );
            black_box(
                Nat64Mapper::new(&nat)
                    .map_4to6(&mut ctx, b, Role::Packet)
                    .is_ok(),
            );
        }
        let mut i = 0usize;
        g.bench_with_input(BenchmarkId::new("v6_to_v4", n), &n, |b, _| {
            b.iter(|| {
                i = if i + 1 == v6.len() { 0 } else { i + 1 };
                let r = Nat64Mapper::new(&nat).map_6to4(&mut ctx, &v6[i], Role::Packet);
                black_box(r)
            })
        });
        g.bench_with_input(BenchmarkId::new("v4_to_v6", n), &n, |b, _| {
            b.iter(|| {
                i = if i + 1 == v4.len() { 0 } else { i + 1 };
                let r = Nat64Mapper::new(&nat).map_4to6(&mut ctx, &v4[i], Role::Packet);
                black_box(r)
            })
        });
    }
    g.finish();
}

/// Established-flow lookup plus RFC 7915 translation of a 64-byte UDP packet, through
/// `Nat64::translate` (what a worker calls per packet).
fn translate(c: &mut Criterion) {
    let mut g = c.benchmark_group("nat64_translate_udp64");
    g.throughput(Throughput::Elements(1));
    for n in SIZES {
        let (nat, v6, v4) = filled(n, 0);
        // Packets for up to 65,536 of the flows, in the shuffled order.
        let k = v6.len().min(65_536);
        let mut p6: Vec<Vec<u8>> = Vec::with_capacity(k);
        let mut p4: Vec<Vec<u8>> = Vec::with_capacity(k);
        for (a, b) in v6.iter().zip(&v4).take(k) {
            let (L4::Ports { src: s6, dst: d6 }, L4::Ports { src: s4, dst: d4 }) = (a.l4, b.l4)
            else {
                unreachable!()
            };
            let mut v = Vec::new();
            PacketBuilder::ipv6(a.src.octets(), a.dst.octets(), 64)
                .udp(s6, d6)
                .write(&mut v, &[0u8; 16])
                .unwrap();
            p6.push(v);
            let mut v = Vec::new();
            PacketBuilder::ipv4(b.src.octets(), b.dst.octets(), 64)
                .udp(s4, d4)
                .write(&mut v, &[0u8; 36])
                .unwrap();
            p4.push(v);
        }
        let mut buf = vec![0u8; HEADROOM + 2048];
        let mut aux = vec![0u8; AUX_LEN];
        let mut ctx = Ctx::new(Timestamp(2_000), 1);
        for (label, pkts) in [("v6_to_v4", &p6), ("v4_to_v6", &p4)] {
            for p in pkts.iter() {
                buf[HEADROOM..HEADROOM + p.len()].copy_from_slice(p);
                let v = nat.translate(&mut ctx, &mut buf, HEADROOM, p.len(), &mut aux);
                assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
            }
            let mut i = 0usize;
            g.bench_with_input(BenchmarkId::new(label, n), &n, |b, _| {
                b.iter(|| {
                    i = if i + 1 == pkts.len() { 0 } else { i + 1 };
                    let p = &pkts[i];
                    buf[HEADROOM..HEADROOM + p.len()].copy_from_slice(p);
                    black_box(nat.translate(&mut ctx, &mut buf, HEADROOM, p.len(), &mut aux))
                })
            });
            // The same packets in batches of PREFETCH_BATCH: `Nat64::prefetch` over the batch,
            // then `translate` per packet. Time per packet.
            let mut i = 0usize;
            let id = BenchmarkId::new(format!("{label}_batch{PREFETCH_BATCH}"), n);
            g.bench_with_input(id, &n, |b, _| {
                b.iter_custom(|iters| {
                    let t0 = std::time::Instant::now();
                    let mut left = iters as usize;
                    while left > 0 {
                        let k = left.min(PREFETCH_BATCH).min(pkts.len() - i);
                        let batch = &pkts[i..i + k];
                        nat.prefetch(batch.iter().map(Vec::as_slice));
                        for p in batch {
                            buf[HEADROOM..HEADROOM + p.len()].copy_from_slice(p);
                            let v = nat.translate(&mut ctx, &mut buf, HEADROOM, p.len(), &mut aux);
                            black_box(v);
                        }
                        i = if i + k == pkts.len() { 0 } else { i + k };
                        left -= k;
                    }
                    t0.elapsed()
                })
            });
        }
    }
    g.finish();
}

fn create(c: &mut Criterion) {
    let mut g = c.benchmark_group("nat64_new_flow");
    g.throughput(Throughput::Elements(1));
    for n in SIZES {
        // The table holds `n` long-lived TCP sessions; new UDP flows (new BIB entry + session)
        // are created on top and removed by an untimed expiry every BATCH flows.
        let nat = Nat64::new(config(n + BATCH)).unwrap();
        let mut ctx = Ctx::new(Timestamp(1_000), 1);
        for i in 0..n {
            Nat64Mapper::new(&nat)
                .map_6to4(&mut ctx, &flow6(i, 6, 0), Role::Packet)
                .unwrap();
        }
        let news: Vec<Tuple6> = (0..BATCH).map(|i| flow6(i, 17, 7)).collect();
        let mut now = 10_000u64;
        g.bench_with_input(BenchmarkId::new("udp", n), &n, |b, _| {
            b.iter_custom(|iters| {
                let mut total = std::time::Duration::ZERO;
                let mut left = iters as usize;
                while left > 0 {
                    let k = left.min(BATCH);
                    let mut ctx = Ctx::new(Timestamp(now), 1);
                    let t0 = std::time::Instant::now();
                    for t in &news[..k] {
                        let r = Nat64Mapper::new(&nat).map_6to4(&mut ctx, t, Role::Packet);
                        black_box(r.is_ok());
                    }
                    total += t0.elapsed();
                    now += 61_000;
                    nat.expire(Timestamp(now));
                    left -= k;
                }
                total
            })
        });
        assert_eq!(nat.session_count(), n);
    }
    g.finish();
}

fn expire_tick(c: &mut Criterion) {
    // An expiry tick when nothing is due: cost must not grow with the table.
    let mut g = c.benchmark_group("nat64_expire_idle_tick");
    for n in SIZES {
        let (nat, _, _) = filled(n, 0);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| black_box(nat.expire(Timestamp(5_000))))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = lookup, translate, create, expire_tick
}
criterion_main!(benches);
