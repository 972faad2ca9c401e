//! Per-packet translation cost (criterion). Each iteration restores only the headers the
//! translation rewrites; the payload stays in place, as in the daemon.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use nat64_core::{Ctx, Timestamp, AUX_LEN, HEADROOM};
use std::hint::black_box;

#[path = "cases.rs"]
mod cases;

fn translate(c: &mut Criterion) {
    let s = cases::siit();
    let mut g = c.benchmark_group("translate");
    for case in cases::cases() {
        let mut template = vec![0u8; HEADROOM + case.pkt.len()];
        template[HEADROOM..].copy_from_slice(&case.pkt);
        let mut buf = template.clone();
        let mut aux = vec![0u8; AUX_LEN];
        let mut ctx = Ctx::new(Timestamp(0), 1);
        let restore = cases::restore_len(&case.pkt);
        let len = case.pkt.len();
        // The verdict and output length are checked before timing and again after (the context
        // carries state such as the ICMP error bucket), so a case that falls into a drop fails.
        let run_checked = |ctx: &mut Ctx, buf: &mut Vec<u8>, aux: &mut Vec<u8>| {
            buf[..restore].copy_from_slice(&template[..restore]);
            let v = s.translate(ctx, buf, HEADROOM, len, aux);
            if let Err(e) = cases::check(&case, v, buf, aux) {
                panic!("{e}");
            }
        };
        run_checked(&mut ctx, &mut buf, &mut aux);
        g.throughput(Throughput::Elements(1));
        g.bench_function(&case.name, |b| {
            b.iter(|| {
                buf[..restore].copy_from_slice(&template[..restore]);
                black_box(s.translate(&mut ctx, &mut buf, HEADROOM, len, &mut aux))
            })
        });
        run_checked(&mut ctx, &mut buf, &mut aux);
    }
    g.finish();
}

/// References measured in the same run, so results read as ratios on a noisy shared machine:
/// the same 6→4 UDP translation done by parsing with etherparse and rebuilding with its
/// PacketBuilder (the straightforward way, which copies the payload), and a plain copy of the
/// packet (what one TUN read costs in memory traffic alone).
fn reference(c: &mut Criterion) {
    let mut g = c.benchmark_group("reference");
    for case in cases::cases()
        .into_iter()
        .filter(|c| c.name.starts_with("6to4/udp/"))
    {
        let pkt = case.pkt.clone();
        let mut out = Vec::with_capacity(2048);
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("etherparse-rebuild/{}", case.name), |b| {
            b.iter(|| {
                out.clear();
                let p = etherparse::SlicedPacket::from_ip(black_box(&pkt)).expect("parse");
                let Some(etherparse::NetSlice::Ipv6(ip)) = p.net else {
                    unreachable!()
                };
                let Some(etherparse::TransportSlice::Udp(u)) = p.transport else {
                    unreachable!()
                };
                let src = [192, 0, 2, 1];
                let dst: [u8; 4] = ip.header().destination()[12..].try_into().expect("4 bytes");
                etherparse::PacketBuilder::ipv4(src, dst, ip.header().hop_limit() - 1)
                    .udp(u.source_port(), u.destination_port())
                    .write(&mut out, u.payload())
                    .expect("write");
                black_box(&out);
            })
        });
        let mut copy = vec![0u8; pkt.len()];
        g.bench_function(format!("memcpy/{}", case.name), |b| {
            b.iter(|| {
                copy.copy_from_slice(black_box(&pkt));
                black_box(&copy);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, translate, reference);
criterion_main!(benches);
