#![no_main]
//! Fuzzes the stateful translator (RFC 6146) with its tables kept across inputs: one `Nat64`
//! for the whole fuzzing session, each input a sequence of IPv6 / IPv4 packets and clock ticks
//! (see the driver for the format). No panic, every output well-formed, tables consistent with
//! their counters and within their bounds. The same driver runs as a proptest in `cargo test`
//! (`core/tests/nat64_stateful_fuzz.rs`).
use libfuzzer_sys::fuzz_target;
use std::sync::{Mutex, OnceLock};

#[path = "../../core/tests/nat64_driver/mod.rs"]
mod driver;

static NAT: OnceLock<Mutex<(nat64_core::nat64::Nat64, u64)>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let cell = NAT.get_or_init(|| {
        // The filtering mode is fixed per session: FUZZ_NAT64_ADF=1 for address-dependent.
        let adf = std::env::var_os("FUZZ_NAT64_ADF").is_some();
        Mutex::new((driver::nat64(adf), 1_000))
    });
    let mut g = cell.lock().unwrap_or_else(|e| e.into_inner());
    let (n, now) = &mut *g;
    driver::run(n, now, data);
});
