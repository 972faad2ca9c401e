//! Established-flow hot path in a plain loop, for `perf stat` (instructions per packet do not
//! depend on machine load the way criterion's times do):
//!
//! `cargo build --release -p nat64-core --example nat64_hotpath`
//! `perf stat -e instructions:u,cycles:u target/release/examples/nat64_hotpath 1000 10000000`
//!
//! Sets up N UDP sessions, then translates K 64-byte IPv6→IPv4 packets (or, with a third
//! argument `4to6`, the IPv4→IPv6 replies) of those flows in a shuffled order through
//! `Nat64::translate`, and prints ns per packet. Instructions per packet, deterministic:
//! `valgrind --tool=callgrind` at two values of K, as in `benches/icount.sh`.

use etherparse::PacketBuilder;
use nat64_core::nat64::{Nat64, Nat64Config};
use nat64_core::pool6::Pool6;
use nat64_core::rfc6052::Prefix6052;
use nat64_core::{Ctx, Timestamp, Verdict, AUX_LEN, HEADROOM};
use std::net::{Ipv4Addr, Ipv6Addr};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let k: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let pool6 = Pool6::new(vec![Prefix6052::WKP], false).expect("pool6");
    let pool4 = (0..64)
        .map(|i| Ipv4Addr::new(198, 51, 100, i + 1))
        .collect();
    let mut c = Nat64Config::new(pool6, pool4, 0x1234);
    c.max_sessions = n;
    c.max_sessions_per_host = u32::MAX;
    let nat = Nat64::new(c).expect("config");
    let back = args.next().is_some_and(|a| a == "4to6");
    let dst: Ipv6Addr = "64:ff9b::cb00:7107".parse().expect("addr");
    let mut pkts: Vec<Vec<u8>> = (0..n.min(65_536))
        .map(|i| {
            let h = i % 4096;
            let src = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, h as u16);
            let mut v = Vec::new();
            PacketBuilder::ipv6(src.octets(), dst.octets(), 64)
                .udp(1024 + (i / 4096) as u16, 443)
                .write(&mut v, &[0u8; 16])
                .expect("build");
            v
        })
        .collect();
    let mut r = 0x9e37_79b9_u64;
    for i in (1..pkts.len()).rev() {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        pkts.swap(i, (r % (i as u64 + 1)) as usize);
    }
    let mut buf = vec![0u8; HEADROOM + 2048];
    let mut aux = vec![0u8; AUX_LEN];
    let mut ctx = Ctx::new(Timestamp(1_000), 1);
    for p in &pkts {
        buf[HEADROOM..HEADROOM + p.len()].copy_from_slice(p);
        nat.translate(&mut ctx, &mut buf, HEADROOM, p.len(), &mut aux);
    }
    if back {
        // The IPv4 peer's answers: swap the translated packets' addresses and ports.
        let mut replies = Vec::with_capacity(pkts.len());
        for p in &pkts {
            buf[HEADROOM..HEADROOM + p.len()].copy_from_slice(p);
            if let Verdict::Forward { start, .. } =
                nat.translate(&mut ctx, &mut buf, HEADROOM, p.len(), &mut aux)
            {
                let o = &buf[start..];
                let (src, dst): ([u8; 4], [u8; 4]) = (
                    o[12..16].try_into().expect("4"),
                    o[16..20].try_into().expect("4"),
                );
                let (sp, dp) = (
                    u16::from_be_bytes([o[20], o[21]]),
                    u16::from_be_bytes([o[22], o[23]]),
                );
                let mut v = Vec::new();
                PacketBuilder::ipv4(dst, src, 64)
                    .udp(dp, sp)
                    .write(&mut v, &[0u8; 36])
                    .expect("build");
                replies.push(v);
            }
        }
        pkts = replies;
    }
    let t0 = std::time::Instant::now();
    let mut fwd = 0usize;
    for j in 0..k {
        let p = &pkts[j % pkts.len()];
        buf[HEADROOM..HEADROOM + p.len()].copy_from_slice(p);
        if let Verdict::Forward { .. } =
            nat.translate(&mut ctx, &mut buf, HEADROOM, p.len(), &mut aux)
        {
            fwd += 1;
        }
    }
    let dt = t0.elapsed();
    println!(
        "{n} sessions, {k} packets ({fwd} forwarded): {:.1} ns/packet",
        dt.as_nanos() as f64 / k as f64
    );
}
