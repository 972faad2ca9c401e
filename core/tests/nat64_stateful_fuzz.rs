//! Issue 9's hostile-input suite, stateful part, in `cargo test`: the operations of the
//! cargo-fuzz target `nat64_stateful` (same driver, `nat64_driver/mod.rs`) as a proptest, with
//! ONE translator kept across all cases, so state built by one input meets the next (stale
//! sessions, full shares, fragment stores, held SYNs, expiry in between).

mod nat64_driver;

use nat64_core::nat64::Nat64;
use nat64_core::Timestamp;
use proptest::prelude::*;
use std::sync::{Mutex, OnceLock};

fn shared(adf: bool) -> &'static Mutex<(Nat64, u64)> {
    static EIF: OnceLock<Mutex<(Nat64, u64)>> = OnceLock::new();
    static ADF: OnceLock<Mutex<(Nat64, u64)>> = OnceLock::new();
    let cell = if adf { &ADF } else { &EIF };
    cell.get_or_init(|| Mutex::new((nat64_driver::nat64(adf), 1_000)))
}

/// Operations shaped like the driver's input, with plausible packet heads so inputs get past
/// the first checks: IPv6 UDP/TCP/ICMPv6 and IPv4 UDP/TCP/ICMP headers, fragments, then noise.
fn op() -> impl Strategy<Value = Vec<u8>> {
    let v6 = (
        0u8..8,
        prop::sample::select(vec![6u8, 17, 58, 44]),
        prop::collection::vec(any::<u8>(), 40..120),
    )
        .prop_map(|(host, nh, mut b)| {
            b[4] = 0;
            b[5] = (b.len() - 40) as u8;
            b[6] = nh;
            b[7] = 64;
            b[35] = 0;
            b[36..40].copy_from_slice(&[198, 51, 100, 10 + (host & 3)]);
            let mut out = vec![host * 4, b.len() as u8];
            out.extend_from_slice(&b);
            out
        });
    let v4 = (
        prop::sample::select(vec![6u8, 17, 1]),
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 20..120),
    )
        .prop_map(|(proto, frag, mut b)| {
            b[0] = 0x45;
            let len = b.len() as u16;
            b[2..4].copy_from_slice(&len.to_be_bytes());
            b[6] = if frag { 0x20 } else { 0x40 };
            b[7] = 0;
            b[8] = 64;
            b[9] = proto;
            let z = 10 + (b[12] & 3);
            b[12..16].copy_from_slice(&[198, 51, 100, z]);
            let mut out = vec![2, b.len() as u8];
            out.extend_from_slice(&b);
            out
        });
    let tick = any::<u8>().prop_map(|s| vec![3, s]);
    let raw = prop::collection::vec(any::<u8>(), 0..64);
    prop_oneof![4 => v6, 4 => v4, 1 => tick, 1 => raw]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn stateful_tables_survive_hostile_sequences(ops in prop::collection::vec(op(), 1..40), adf in any::<bool>()) {
        let input: Vec<u8> = ops.concat();
        let mut g = shared(adf).lock().unwrap_or_else(|e| e.into_inner());
        let (n, now) = &mut *g;
        nat64_driver::run(n, now, &input);
    }
}

#[test]
fn everything_expires_in_the_end() {
    for adf in [false, true] {
        let n = nat64_driver::nat64(adf);
        let mut now = 0;
        // A short deterministic sequence, then a long quiet time: the tables empty.
        let mut input = Vec::new();
        for host in 0..8u8 {
            let mut p = vec![0x60, 0, 0, 0, 0, 8, 17, 64];
            p.extend_from_slice(&[0u8; 16]);
            p.extend_from_slice(&[0u8; 12]);
            p.extend_from_slice(&[198, 51, 100, 10]);
            p.extend_from_slice(&[0x13, 0x88, 0, 53, 0, 8, 0x12, 0x34]);
            input.push(host * 4);
            input.push(p.len() as u8);
            input.extend_from_slice(&p);
        }
        nat64_driver::run(&n, &mut now, &input);
        assert_eq!(n.session_count(), 8, "one UDP session per host");
        nat64_driver::run(&n, &mut now, &[3, 255, 3, 255]);
        n.expire(Timestamp(now + 1_000_000));
        nat64_driver::consistent(&n);
        assert_eq!(n.session_count(), 0);
        assert_eq!(n.counts().held.held, 0, "held fragments expire too");
    }
}
