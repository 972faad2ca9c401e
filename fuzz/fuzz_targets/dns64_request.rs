//! DNS64 request handling on arbitrary bytes: the fast path (header, ACL, rate limit, cache) and,
//! where it hands on, the slow path's full parser and local answers, with the engine kept across
//! inputs. Never a panic; every answer is a response carrying the query's ID within its size limit
//! (tests/fuzz_props.rs runs the same property in `cargo test`).
#![no_main]
use libfuzzer_sys::fuzz_target;
use nat64d::dns64::fuzzing::RequestFuzzer;
use std::sync::{Mutex, OnceLock};

static FUZZER: OnceLock<Mutex<RequestFuzzer>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let f = FUZZER.get_or_init(|| Mutex::new(RequestFuzzer::new()));
    if let Ok(mut f) = f.lock() {
        f.request(data);
    }
});
