//! DNS64 on arbitrary upstream responses: a loopback resolver answers the engine's upstream
//! queries with the input's bytes (shaped to match the question, and raw), so they go through
//! our ID/question match, hickory's `Message::from_vec`, the RFC 6147 steps and the re-encoding.
//! Never a panic; the client's answer parses, carries its ID and question, fits its UDP limit and
//! holds no AAAA of the exclusion set (tests/fuzz_props.rs runs the same property in
//! `cargo test`). Input layout: see `nat64d::dns64::fuzzing::ResponseFuzzer`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nat64d::dns64::fuzzing::ResponseFuzzer;
use std::sync::{Mutex, OnceLock};

static FUZZER: OnceLock<Mutex<ResponseFuzzer>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let f = FUZZER.get_or_init(|| Mutex::new(ResponseFuzzer::new()));
    if let Ok(mut f) = f.lock() {
        f.response(data);
    }
});
