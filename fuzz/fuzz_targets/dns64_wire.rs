//! The DNS64 fast path's wire readers (`nat64_core::dns64::wire`: header, question, EDNS, TTL
//! offsets, empty replies) on arbitrary bytes, checked against hickory-proto's parser of the
//! same bytes: no panic, everything in bounds, and wherever hickory reads the message the readers
//! agree with it. The check is `tests/dns_wire/mod.rs`, which `tests/dns_wire_props.rs` runs on
//! hickory-built messages in every `cargo test`.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/dns_wire/mod.rs"]
mod dns_wire;

fuzz_target!(|data: &[u8]| {
    dns_wire::check(data);
});
