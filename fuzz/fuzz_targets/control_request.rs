//! Control-socket request lines on arbitrary bytes: never a panic; an accepted request
//! round-trips through its own line (tests/fuzz_props.rs runs the same property in `cargo test`).
#![no_main]
use libfuzzer_sys::fuzz_target;
use nat64d::nat64_ctl::Request;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    if let Ok(r) = Request::parse(&line) {
        assert_eq!(Request::parse(&r.to_line()), Ok(r));
    }
});
