//! The stateful translator under hostile input, with tables kept across inputs: one `Nat64`
//! lives for the whole run (a fuzzing session or a proptest run) and every input is a sequence
//! of operations on it. Shared by the cargo-fuzz target `fuzz/fuzz_targets/nat64_stateful.rs`
//! (included with `#[path]`) and the proptest `core/tests/nat64_stateful_fuzz.rs`, so both run
//! the same code. Only `nat64_core` and `std` are used here (the fuzz crate has no other deps).
//!
//! Input: a sequence of operations, each `op` byte then its arguments:
//! - `op % 4 == 0 | 1`: an IPv6 packet: `len: u8`, then `len` bytes; the version nibble is set,
//!   the destination is put under 64:ff9b::/96 and the source into 2001:db8:0:{op}::/64 (unless
//!   `op & 0x80`, which keeps the bytes as they are, `::1`, `fe80::` and all);
//! - `op % 4 == 2`: an IPv4 packet: `len: u8`, then `len` bytes; the destination is put into pool4
//!   and the header checksum fixed (unless `op & 0x80`);
//! - `op % 4 == 3`: the clock moves by `next byte * 100` ms and the timer runs `expire`.
//!
//! After every operation each output must be well-formed IP, the fragments it released from the
//! hold (RFC 6146 §3.4, `Nat64::take_released`) included; after every input the tables must
//! agree with their counters and stay within their limits.

#![allow(dead_code)]

use nat64_core::nat64::bib::StaticBib;
use nat64_core::nat64::session::Filter;
use nat64_core::nat64::{Filtering, Nat64, Nat64Config, Proto};
use nat64_core::pool6::Pool6;
use nat64_core::rfc6052::Prefix6052;
use nat64_core::{packets, Ctx, Timestamp, Verdict, AUX_LEN, HEADROOM};

/// pool4 of the test translator.
pub const POOL4: [u8; 4] = [192, 0, 2, 1];

/// A translator with small limits, so tables, shares and stores fill up and expire quickly.
pub fn nat64(adf: bool) -> Nat64 {
    let pool6 = Pool6::new(vec![Prefix6052::WKP], false).expect("pool6");
    let mut c = Nat64Config::new(pool6, vec![POOL4.into()], 0x5eed);
    c.enforce_rfc_minimums = false;
    c.timeouts.udp = 3;
    c.timeouts.icmp = 2;
    c.timeouts.tcp_est = 20;
    c.timeouts.tcp_trans = 4;
    c.timeouts.tcp_incoming_syn = 1;
    c.max_sessions = 512;
    c.max_sessions_per_host = 64;
    c.shards = 4;
    c.frag.max_entries = 64;
    c.frag.max_entries_per_source = 16;
    c.frag.max_reassembly = 4;
    c.frag.max_reassembly_per_source = 2;
    c.frag.max_held = 32;
    c.frag.max_held_bytes = 16 * 1024;
    c.frag.max_held_per_source = 8;
    c.mapping_log = true;
    c.mapping_log_capacity = 64;
    if adf {
        c.filtering = Filtering::AddressDependent;
    }
    c.static_bib.push(StaticBib {
        proto: Proto::Tcp,
        v6: ("2001:db8:0:80::80".parse().expect("v6"), 80),
        v4: (POOL4.into(), 80),
    });
    Nat64::new(c).expect("nat64")
}

fn check(p: &[u8]) {
    match p.first().map(|b| b >> 4) {
        Some(4) => {
            assert!(p.len() >= 20, "IPv4 header");
            let ihl = usize::from(p[0] & 15) * 4;
            assert!(ihl >= 20 && ihl <= p.len());
            assert_eq!(usize::from(u16::from_be_bytes([p[2], p[3]])), p.len());
            let mut s: u32 = p[..ihl]
                .chunks(2)
                .map(|c| (u32::from(c[0]) << 8) | u32::from(c[1]))
                .sum();
            while s > 0xffff {
                s = (s & 0xffff) + (s >> 16);
            }
            assert_eq!(s, 0xffff, "IPv4 header checksum");
        }
        Some(6) => {
            assert!(p.len() >= 40, "IPv6 header");
            assert_eq!(40 + usize::from(u16::from_be_bytes([p[4], p[5]])), p.len());
        }
        v => panic!("output is not IP: {v:?}"),
    }
}

fn fix_v4_checksum(p: &mut [u8]) {
    let ihl = usize::from(p[0] & 15) * 4;
    if ihl < 20 || ihl > p.len() {
        return;
    }
    p[10] = 0;
    p[11] = 0;
    let mut s: u32 = p[..ihl]
        .chunks(2)
        .map(|c| (u32::from(c[0]) << 8) | u32::from(c[1]))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    p[10..12].copy_from_slice(&(!(s as u16)).to_be_bytes());
}

fn translate(n: &Nat64, now: u64, pkt: &[u8]) {
    // Room for any held fragment (at most 255 bytes here) released after this packet.
    let mut buf = vec![0xa5u8; HEADROOM + pkt.len().max(256)];
    buf[HEADROOM..HEADROOM + pkt.len()].copy_from_slice(pkt);
    let mut aux = vec![0xa5u8; AUX_LEN];
    let mut ctx = Ctx::new(Timestamp(now), 1);
    let v = n.translate(&mut ctx, &mut buf, HEADROOM, pkt.len(), &mut aux);
    check_verdict(v, &buf, &aux);
    let mut released = 0;
    while let Some(v) = n.take_released(&mut ctx, &mut buf, HEADROOM, &mut aux) {
        check_verdict(v, &buf, &aux);
        released += 1;
        assert!(
            released <= 32,
            "take_released ends (at most max_held fragments)"
        );
    }
}

fn check_verdict(v: Verdict, buf: &[u8], aux: &[u8]) {
    match v {
        Verdict::Forward { start, len } => check(&buf[start..start + len]),
        Verdict::ForwardAux { len } | Verdict::IcmpError { len, .. } => {
            let mut seen = 0;
            for p in packets(&aux[..len]) {
                check(p);
                seen += p.len();
            }
            assert_eq!(seen, len, "aux holds whole packets");
        }
        Verdict::Drop(_) => {}
    }
}

/// Runs one input against `n`, with the clock at `*now` (moved forward by the input).
pub fn run(n: &Nat64, now: &mut u64, input: &[u8]) {
    let mut i = 0;
    while i < input.len() {
        let op = input[i];
        i += 1;
        if op % 4 == 3 {
            let step = input.get(i).copied().unwrap_or(1);
            i += 1;
            *now += u64::from(step) * 100;
            n.expire(Timestamp(*now));
            continue;
        }
        let Some(&len) = input.get(i) else { break };
        i += 1;
        let end = (i + usize::from(len)).min(input.len());
        let mut p = input[i..end].to_vec();
        i = end;
        if p.is_empty() {
            continue;
        }
        let keep = op & 0x80 != 0;
        if op % 4 == 2 {
            p[0] = 0x40 | (p[0] & 15);
            if !keep && p.len() >= 20 {
                p[16..20].copy_from_slice(&POOL4);
                fix_v4_checksum(&mut p);
            }
        } else {
            p[0] = 0x60 | (p[0] & 15);
            if !keep && p.len() >= 40 {
                p[8..16].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, op & 0x7f]);
                p[24..36].copy_from_slice(&[0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0]);
            }
        }
        translate(n, *now, &p);
        let mut ev = Vec::new();
        n.drain_events(&mut ev);
    }
    consistent(n);
}

/// The tables agree with their counters.
pub fn consistent(n: &Nat64) {
    let c = n.counts();
    let listed = n
        .sessions(&Filter::default(), Timestamp(0), usize::MAX)
        .len();
    assert_eq!(c.sessions.iter().sum::<usize>(), listed);
    assert_eq!(n.session_count(), listed);
    assert!(listed <= 512, "max_sessions holds");
    let bibs = n.bib(&Filter::default(), usize::MAX);
    assert_eq!(bibs.len(), c.bib.iter().sum::<usize>());
    assert!(c.fragments <= 64, "fragment store bound holds");
    assert!(c.held.held <= 32, "held-fragment bound holds");
    assert!(
        c.held.bytes <= 16 * 1024,
        "held-fragment memory bound holds"
    );
}
