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
        g.throughput(Throughput::Elements(1));
        g.bench_function(&case.name, |b| {
            b.iter(|| {
                buf[..restore].copy_from_slice(&template[..restore]);
                black_box(s.translate(&mut ctx, &mut buf, HEADROOM, len, &mut aux))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, translate);
criterion_main!(benches);
