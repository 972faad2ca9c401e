#![no_main]
//! Fuzzes RFC 7915 translation of IPv6 input: no panic, no out-of-bounds access, and every
//! output is a well-formed packet.
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| common::run(6, data));
