//! The differential test of issue 15: packets run through the eBPF fast path (`ebpf/siit.bpf.c`,
//! with `BPF_PROG_TEST_RUN`, no network) and through the core's SIIT translator with the same
//! tables. The program must either punt (`TC_ACT_OK`, the packet untouched) or produce exactly
//! the core's bytes (`TC_ACT_REDIRECT`). Never a different packet.
//!
//! Inputs: packets built with etherparse (UDP, TCP, ICMP echo, both directions) over addresses
//! that map through pool6, the EAMT, and nothing; random TTL/hop limit, TOS, DF, sizes, TCP flags;
//! then bounded random mutations of each. Two configurations (WKP lab pool6 with IDs generated; a
//! /64 + /40 pool6 with WKP strict, fixed TOS, ID 0 and a small IPv4 MTU).
//!
//! Needs root or CAP_BPF + CAP_NET_ADMIN and a nat64d built with clang: otherwise it fails and
//! says why (it never skips).

use aya::programs::{TestRun, TestRunOptions};
use etherparse::PacketBuilder;
use nat64_core::eamt::{Eam, Eamt};
use nat64_core::pool6::Pool6;
use nat64_core::rfc6052::Prefix6052;
use nat64_core::rfc6791::Rfc6791Pool;
use nat64_core::rfc7915::XlatConfig;
use nat64_core::siit::{Siit, SiitConfig};
use nat64_core::{Ctx, Timestamp, Verdict, HEADROOM};
use nat64d::fastpath::{FastPath, Tables, COUNTER_NAMES};
use std::net::{Ipv4Addr, Ipv6Addr};

const TC_ACT_OK: u32 = 0;
const TC_ACT_REDIRECT: u32 = 7;
/// The loopback device's index: `bpf_check_mtu` and `bpf_redirect_neigh` need a device, and
/// loopback's MTU (65536) leaves the MTU decisions to the configured ones under test.
const LO: u32 = 1;

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

fn eam(a: &str, l: u8, b: &str, m: u8) -> Eam {
    Eam::new(a.parse().unwrap(), l, b.parse().unwrap(), m).unwrap()
}

fn config_a() -> SiitConfig {
    SiitConfig {
        pool6: Pool6::new(vec![Prefix6052::WKP], false).unwrap(),
        eamt: Eamt::new(vec![
            eam("192.0.2.0", 24, "2001:db8:1::", 120),
            eam("198.51.100.7", 32, "2001:db8:2::7", 128),
            eam("203.0.113.0", 28, "2001:db8:3::", 64),
        ])
        .unwrap(),
        rfc6791: Rfc6791Pool::default(),
        xlat: XlatConfig::default(),
    }
}

fn config_b() -> SiitConfig {
    SiitConfig {
        pool6: Pool6::new(
            vec![
                Prefix6052::new("2001:db8:64:1::".parse().unwrap(), 64).unwrap(),
                Prefix6052::new("2001:db8:4000::".parse().unwrap(), 40).unwrap(),
                Prefix6052::WKP,
            ],
            true,
        )
        .unwrap(),
        eamt: Eamt::new(vec![eam("198.51.100.0", 24, "2001:db8:aaaa::", 104)]).unwrap(),
        rfc6791: Rfc6791Pool::default(),
        xlat: XlatConfig {
            ipv4_mtu: 1300,
            ipv6_mtu: 1400,
            copy_tos: false,
            tos: 0x28,
            generate_ipv4_id: false,
            ..XlatConfig::default()
        },
    }
}

/// IPv6 addresses worth sending from/to: mapped by every route, unmapped, special.
fn v6_candidates(siit: &SiitConfig, rng: &mut Rng) -> Ipv6Addr {
    let v4 = v4_candidate(rng);
    match rng.below(6) {
        0 | 1 => {
            let p = rng.pick(siit.pool6.prefixes());
            Ipv6Addr::from(p.embed(v4))
        }
        2 | 3 => {
            let e = rng.pick(siit.eamt.entries());
            let (a, l) = e.v6();
            let host = if l >= 128 {
                0
            } else {
                u128::from(rng.next()) >> l.max(64)
            };
            Ipv6Addr::from(u128::from(a) | host)
        }
        4 => rng.pick(&[
            "2001:db8:ffff::1".parse().unwrap(),
            "fe80::1".parse().unwrap(),
            "ff02::1".parse().unwrap(),
            "::1".parse().unwrap(),
            "::".parse().unwrap(),
        ]),
        _ => Ipv6Addr::from(u128::from(rng.next()) << 64 | u128::from(rng.next())),
    }
}

fn v4_candidate(rng: &mut Rng) -> Ipv4Addr {
    let low = rng.below(256) as u8;
    match rng.below(8) {
        0 => Ipv4Addr::new(192, 0, 2, low),
        1 => Ipv4Addr::new(198, 51, 100, low),
        2 => Ipv4Addr::new(203, 0, 113, low),
        3 => Ipv4Addr::new(8, 8, 4, low),
        4 => rng.pick(&[
            Ipv4Addr::new(127, 0, 0, 1),
            Ipv4Addr::new(10, 1, 2, 3),
            Ipv4Addr::new(224, 0, 0, 1),
            Ipv4Addr::new(169, 254, 1, 1),
            Ipv4Addr::new(0, 0, 0, 0),
            Ipv4Addr::BROADCAST,
        ]),
        _ => Ipv4Addr::from(rng.next() as u32),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Udp,
    Tcp,
    Echo,
}

fn payload(rng: &mut Rng) -> Vec<u8> {
    let len = match rng.below(4) {
        0 => rng.below(16),
        1 => rng.below(200),
        2 => 1200 + rng.below(300),
        _ => rng.below(1500),
    } as usize;
    (0..len).map(|_| rng.next() as u8).collect()
}

const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];

/// An Ethernet frame with an IPv6 packet.
fn build6(siit: &SiitConfig, rng: &mut Rng, kind: Kind) -> Vec<u8> {
    let (src, dst) = (v6_candidates(siit, rng), v6_candidates(siit, rng));
    let hl = rng.pick(&[0u8, 1, 2, 64, 255]);
    let b = PacketBuilder::ethernet2(MAC, MAC).ipv6(src.octets(), dst.octets(), hl);
    let data = payload(rng);
    let mut out = Vec::new();
    match kind {
        Kind::Udp => b
            .udp(rng.next() as u16, rng.next() as u16)
            .write(&mut out, &data),
        Kind::Tcp => {
            tcp(b.tcp(rng.next() as u16, 443, rng.next() as u32, 1000), rng).write(&mut out, &data)
        }
        Kind::Echo if rng.below(2) == 0 => b
            .icmpv6_echo_request(rng.next() as u16, rng.next() as u16)
            .write(&mut out, &data),
        Kind::Echo => b
            .icmpv6_echo_reply(rng.next() as u16, rng.next() as u16)
            .write(&mut out, &data),
    }
    .unwrap();
    // Traffic class (etherparse writes 0).
    let tc = rng.next() as u8;
    out[14] = 0x60 | (tc >> 4);
    out[15] = (tc << 4) | (out[15] & 0x0f);
    out
}

fn tcp(
    b: etherparse::PacketBuilderStep<etherparse::TcpHeader>,
    rng: &mut Rng,
) -> etherparse::PacketBuilderStep<etherparse::TcpHeader> {
    match rng.below(5) {
        0 => b.syn(),
        1 => b.ack(rng.next() as u32).fin(),
        2 => b.rst(),
        _ => b.ack(rng.next() as u32).psh(),
    }
}

/// An Ethernet frame with an IPv4 packet.
fn build4(rng: &mut Rng, kind: Kind) -> Vec<u8> {
    let (src, dst) = (v4_candidate(rng), v4_candidate(rng));
    let ttl = rng.pick(&[0u8, 1, 2, 64, 255]);
    let b = PacketBuilder::ethernet2(MAC, MAC).ipv4(src.octets(), dst.octets(), ttl);
    let data = payload(rng);
    let mut out = Vec::new();
    match kind {
        Kind::Udp => b
            .udp(rng.next() as u16, rng.next() as u16)
            .write(&mut out, &data),
        Kind::Tcp => {
            tcp(b.tcp(rng.next() as u16, 443, rng.next() as u32, 1000), rng).write(&mut out, &data)
        }
        Kind::Echo if rng.below(2) == 0 => b
            .icmpv4_echo_request(rng.next() as u16, rng.next() as u16)
            .write(&mut out, &data),
        Kind::Echo => b
            .icmpv4_echo_reply(rng.next() as u16, rng.next() as u16)
            .write(&mut out, &data),
    }
    .unwrap();
    // TOS, identification and DF, then the header checksum again.
    out[15] = rng.next() as u8;
    out[18] = rng.next() as u8;
    out[19] = rng.next() as u8;
    out[20] = if rng.below(2) == 0 { 0x40 } else { 0 };
    out[21] = 0;
    fix_ip4_checksum(&mut out[14..34]);
    out
}

fn fix_ip4_checksum(h: &mut [u8]) {
    h[10] = 0;
    h[11] = 0;
    let mut s: u32 = h
        .chunks_exact(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    h[10..12].copy_from_slice(&(!(s as u16)).to_be_bytes());
}

/// Flips, sets or truncates a few bytes after the Ethernet header; sometimes repairs the IPv4
/// header checksum so the mutation gets past it.
fn mutate(rng: &mut Rng, p: &mut Vec<u8>) {
    for _ in 0..=rng.below(3) {
        match rng.below(6) {
            0 if p.len() > 15 => {
                let n = 14 + rng.below((p.len() - 14) as u64) as usize;
                p.truncate(n.max(15));
            }
            1 => p.extend((0..rng.below(8)).map(|_| rng.next() as u8)),
            _ => {
                // Mostly the headers: the first 60 bytes after Ethernet.
                let span = (p.len() - 14).min(60) as u64;
                let at = 14 + rng.below(span) as usize;
                p[at] = if rng.below(2) == 0 {
                    rng.next() as u8
                } else {
                    p[at] ^ (1 << rng.below(8))
                };
            }
        }
    }
    if p.len() >= 34 && p[14] >> 4 == 4 && rng.below(2) == 0 {
        let ihl = usize::from(p[14] & 0xf) * 4;
        if ihl >= 20 && p.len() >= 14 + ihl {
            fix_ip4_checksum(&mut p[14..14 + ihl]);
        }
    }
}

#[derive(Default, Debug)]
struct Tally {
    translated: [[u64; 3]; 2],
    punted: u64,
    refused: u64,
}

/// The length below which the kernel's test run refuses a frame: Ethernet plus the minimal IP
/// header of the ethertype.
fn short_for(frame: &[u8]) -> usize {
    match frame.get(12..14) {
        Some([0x86, 0xdd]) => 14 + 40,
        Some([0x08, 0x00]) => 14 + 20,
        _ => 14,
    }
}

fn kind_index(k: Kind) -> usize {
    match k {
        Kind::Udp => 0,
        Kind::Tcp => 1,
        Kind::Echo => 2,
    }
}

/// Runs one frame through both; panics on any difference.
fn check(
    fp: &mut FastPath,
    siit: &Siit,
    frame: &[u8],
    id_state: u16,
    tally: &mut Tally,
    kind: Option<Kind>,
) {
    // The core, with its identification generator where the program's is.
    let l3 = &frame[14..];
    let mut buf = vec![0u8; HEADROOM + l3.len() + 64];
    buf[HEADROOM..HEADROOM + l3.len()].copy_from_slice(l3);
    let mut aux = vec![0u8; 4096];
    let mut ctx = Ctx::new(Timestamp(0), 0);
    ctx.next_ip_id = id_state;
    let verdict = siit.translate(&mut ctx, &mut buf, HEADROOM, l3.len(), &mut aux);

    fp.set_ip_id_state(id_state).expect("IP_ID map");
    let mut out = vec![0u8; frame.len() + 64];
    let res = fp.program().expect("program").test_run(TestRunOptions {
        data_in: Some(frame),
        data_out: Some(&mut out),
        ..Default::default()
    });
    let res = match res {
        Ok(r) => r,
        // BPF_PROG_TEST_RUN itself refuses a frame shorter than the IP header its ethertype
        // announces (net/bpf/test_run.c pulls it first); only those may fail to run.
        Err(e) if frame.len() < short_for(frame) => {
            let _ = e;
            tally.refused += 1;
            return;
        }
        Err(e) => panic!(
            "BPF_PROG_TEST_RUN failed: {e} ({e:?}) on {} bytes {}",
            frame.len(),
            hex(frame)
        ),
    };
    let out = &out[..res.data_size_out as usize];
    match res.return_value {
        TC_ACT_OK => {
            assert_eq!(out, frame, "punted packet was modified\nin  {}", hex(frame));
            tally.punted += 1;
        }
        TC_ACT_REDIRECT => {
            let Verdict::Forward { start, len } = verdict else {
                panic!(
                    "the program translated what the core did not ({verdict:?})\nin  {}\nout {}",
                    hex(frame),
                    hex(out)
                );
            };
            let want = &buf[start..start + len];
            assert_eq!(
                hex(&out[14..]),
                hex(want),
                "different translation (core {verdict:?})\nin  {}",
                hex(frame)
            );
            let et = if want[0] >> 4 == 4 {
                [8, 0]
            } else {
                [0x86, 0xdd]
            };
            assert_eq!(out[12..14], et, "ethertype");
            if let Some(k) = kind {
                let dir = usize::from(frame[14] >> 4 == 4);
                tally.translated[dir][kind_index(k)] += 1;
            }
        }
        r => panic!("unexpected return {r}\nin  {}", hex(frame)),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join("")
}

fn load(siit: &SiitConfig) -> FastPath {
    let t = Tables::from_siit(siit, LO, LO).expect("tables");
    match FastPath::load(&t) {
        Ok(fp) => fp,
        Err(e) => panic!(
            "cannot load the eBPF fast path, so the differential test cannot run: {e}. \
             It needs a nat64d built with clang + libbpf-dev (apt-get install clang libbpf-dev) \
             and root (CAP_BPF, CAP_NET_ADMIN)."
        ),
    }
}

fn run(cfg: SiitConfig, seed: u64, base: usize, mutations: usize) -> Tally {
    let mut fp = load(&cfg);
    let siit = Siit::new(cfg.clone());
    let mut rng = Rng(seed);
    let mut tally = Tally::default();
    for i in 0..base {
        let kind = [Kind::Udp, Kind::Tcp, Kind::Echo][i % 3];
        let frame = if i % 2 == 0 {
            build6(&cfg, &mut rng, kind)
        } else {
            build4(&mut rng, kind)
        };
        let id = rng.next() as u16;
        check(&mut fp, &siit, &frame, id, &mut tally, Some(kind));
        for _ in 0..mutations {
            let mut m = frame.clone();
            mutate(&mut rng, &mut m);
            check(&mut fp, &siit, &m, id, &mut tally, None);
        }
    }
    let counters = fp.counters().expect("counters");
    eprintln!("tally {tally:?}");
    for (n, c) in COUNTER_NAMES.iter().zip(counters) {
        eprintln!("  {n:32} {c}");
    }
    // The program's own counters agree with what the test saw it do.
    let translated: u64 = counters[0] + counters[1];
    let punted: u64 = counters[2..16].iter().sum();
    assert_eq!(punted, tally.punted, "punt counters");
    assert!(translated >= tally.translated.iter().flatten().sum::<u64>());
    assert_eq!(counters[16], 0, "helper failures");
    tally
}

/// Every protocol is translated in both directions (a program that punts everything fails).
fn assert_coverage(t: &Tally) {
    for (dir, name) in [(0, "6to4"), (1, "4to6")] {
        for (k, kn) in ["udp", "tcp", "echo"].iter().enumerate() {
            assert!(
                t.translated[dir][k] >= 100,
                "only {} {kn} packets translated {name}: {t:?}",
                t.translated[dir][k]
            );
        }
    }
}

#[test]
fn fast_path_matches_the_core_wkp_lab() {
    let t = run(config_a(), 0x5eed_0001, 10_000, 3);
    assert_coverage(&t);
}

#[test]
fn fast_path_matches_the_core_several_prefixes_strict() {
    let t = run(config_b(), 0x5eed_0002, 10_000, 3);
    assert_coverage(&t);
}

/// Every value of the transport checksum field, for each protocol and direction: the places
/// where ones' complement arithmetic has two zeros (RFC 1624 §3) and where UDP sends a computed
/// zero as all ones (RFC 768) are hit, which random packets almost never do.
#[test]
fn every_checksum_value_matches_the_core() {
    let cfg = config_a();
    let mut fp = load(&cfg);
    let siit = Siit::new(cfg.clone());
    let mut tally = Tally::default();
    let (a6, b6): (Ipv6Addr, Ipv6Addr) = (
        "2001:db8:1::17".parse().unwrap(),
        "64:ff9b::8.8.4.4".parse().unwrap(),
    );
    let (a4, b4) = (Ipv4Addr::new(8, 8, 4, 4), Ipv4Addr::new(192, 0, 2, 17));
    let data = [0x5au8; 37];
    let mut frames = Vec::new();
    for kind in [Kind::Udp, Kind::Tcp, Kind::Echo] {
        let b6b = PacketBuilder::ethernet2(MAC, MAC).ipv6(a6.octets(), b6.octets(), 64);
        let b4b = PacketBuilder::ethernet2(MAC, MAC).ipv4(a4.octets(), b4.octets(), 64);
        let (mut f6, mut f4) = (Vec::new(), Vec::new());
        match kind {
            Kind::Udp => {
                b6b.udp(5353, 53).write(&mut f6, &data).unwrap();
                b4b.udp(53, 5353).write(&mut f4, &data).unwrap();
            }
            Kind::Tcp => {
                b6b.tcp(40000, 443, 7, 1000)
                    .ack(9)
                    .write(&mut f6, &data)
                    .unwrap();
                b4b.tcp(443, 40000, 9, 1000)
                    .ack(7)
                    .write(&mut f4, &data)
                    .unwrap();
            }
            Kind::Echo => {
                b6b.icmpv6_echo_request(1, 2).write(&mut f6, &data).unwrap();
                b4b.icmpv4_echo_reply(1, 2).write(&mut f4, &data).unwrap();
            }
        }
        let at = match kind {
            Kind::Udp => 6,
            Kind::Tcp => 16,
            Kind::Echo => 2,
        };
        frames.push((kind, f6, 14 + 40 + at));
        frames.push((kind, f4, 14 + 20 + at));
    }
    for (kind, frame, at) in frames {
        let mut f = frame.clone();
        for c in 0..=u16::MAX {
            f[at..at + 2].copy_from_slice(&c.to_be_bytes());
            check(&mut fp, &siit, &f, 0x1234, &mut tally, Some(kind));
        }
    }
    eprintln!("tally {tally:?}");
    // Only UDP with checksum zero is punted (the core computes a checksum for it).
    assert_eq!(tally.punted, 2, "{tally:?}");
}
