//! The fuzz targets' properties (fuzz/fuzz_targets/config_parse.rs, control_request.rs) run as
//! proptests in `cargo test`: the config parser and the control-socket request parser never
//! panic; a refused config names a line inside the file; an accepted request round-trips.
//! fuzz/fuzz_targets/dns64_request.rs: DNS64 request handling on untrusted bytes never panics
//! and answers only with a response that carries the query's ID.
//! fuzz/fuzz_targets/dns64_response.rs: upstream responses (shaped records and raw bytes) never
//! make DNS64 panic, and its answer stays a parseable response to the client's question within
//! the UDP limit, with no AAAA of the exclusion set.

use nat64d::config::{self, ConfigError};
use nat64d::dns64::fuzzing::{RequestFuzzer, ResponseFuzzer};
use nat64d::nat64_ctl::Request;
use proptest::prelude::*;
use std::path::Path;

/// Text shaped like a config: keys, tables, values and the punctuation that breaks them.
fn config_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("mode = \"nat64\"\n".to_string()),
        Just("mode = \"siit\"\n".to_string()),
        Just("pool6 = [\"64:ff9b::/96\"]\n".to_string()),
        Just("[tun]\n".to_string()),
        Just("[siit]\n".to_string()),
        Just("[nat64.pool4]\n".to_string()),
        Just("addresses = [\"192.0.2.1\"]\n".to_string()),
        Just("eamt = [{ ipv4 = \"192.0.2.2\", ipv6 = \"2001:db8::2\" }]\n".to_string()),
        Just("[log]\nlevel = ".to_string()),
        Just("mtu = ".to_string()),
        "[0-9]{1,25}\n",
        "\"[ -~]{0,20}\"\n",
        "[\\[\\]{}=,\"'#\n]{1,4}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_config_parser_never_panics_and_names_a_real_line(text in config_like()) {
        match config::parse(Path::new("f.toml"), &text) {
            Ok(_) => {}
            Err(ConfigError::Invalid { line, key, .. }) => {
                prop_assert!(line >= 1 && line <= text.lines().count().max(1) + 1, "line {line}");
                prop_assert!(!key.is_empty());
            }
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }

    #[test]
    fn the_control_request_parser_never_panics(line in prop_oneof![
        any::<String>(),
        "(sessions|bib|counts)( (proto|v6|v4|limit|x)=[ -~]{0,12}){0,5}",
    ]) {
        if let Ok(r) = Request::parse(&line) {
            prop_assert_eq!(Request::parse(&r.to_line()), Ok(r));
        }
    }
}

/// A DNS query for one of a few names and types, EDNS or not: the shape the fast path parses.
fn query_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u16>(),
        prop_oneof![Just(0x0100u16), Just(0x0000), Just(0x0110), any::<u16>()],
        prop_oneof![
            Just(&b"\x01a\x07example\x00"[..]),
            Just(&b"\x08ipv4only\x04arpa\x00"[..]),
            Just(&b"\x03170\x010\x010\x03192\x07in-addr\x04arpa\x00"[..]),
            Just(&b"\xc0\x0c"[..]),
            Just(&b"\x00"[..]),
        ],
        prop_oneof![Just(28u16), Just(1), Just(12), Just(255), any::<u16>()],
        prop_oneof![Just(1u16), any::<u16>()],
        any::<bool>(),
    )
        .prop_map(|(id, flags, name, qtype, qclass, edns)| {
            let mut q = Vec::new();
            q.extend_from_slice(&id.to_be_bytes());
            q.extend_from_slice(&flags.to_be_bytes());
            q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(edns)]);
            q.extend_from_slice(name);
            q.extend_from_slice(&qtype.to_be_bytes());
            q.extend_from_slice(&qclass.to_be_bytes());
            if edns {
                // OPT: root name, type 41, UDP size 1232, DO set.
                q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
            }
            q
        })
}

/// A query with a few bytes overwritten, cut short or extended.
fn mutated_query() -> impl Strategy<Value = Vec<u8>> {
    (
        query_bytes(),
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        any::<usize>(),
        prop::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|(mut q, edits, cut, tail)| {
            for (at, b) in edits {
                let n = q.len();
                q[at % n] = b;
            }
            q.truncate(12 + cut % (q.len() - 11));
            q.extend_from_slice(&tail);
            q
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn dns64_request_handling_never_panics_and_answers_with_the_query_id(
        pkt in prop_oneof![query_bytes(), mutated_query(), prop::collection::vec(any::<u8>(), 0..64)]
    ) {
        thread_local! {
            static FUZZER: std::cell::RefCell<RequestFuzzer> =
                std::cell::RefCell::new(RequestFuzzer::new());
        }
        FUZZER.with(|f| f.borrow_mut().request(&pkt));
    }
}

/// One resource record an upstream might send, named by a pointer to the question (offset 12).
fn record() -> impl Strategy<Value = Vec<u8>> {
    let rr = |rtype: u16, rdata: Vec<u8>| {
        let mut r = vec![0xc0, 0x0c];
        r.extend_from_slice(&rtype.to_be_bytes());
        r.extend_from_slice(&[0, 1, 0, 0, 0x0e, 0x10]);
        r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        r.extend_from_slice(&rdata);
        r
    };
    prop_oneof![
        // AAAA: in the exclusion set (::ffff:0:0/96), a global one, one under the WKP.
        any::<[u8; 4]>().prop_map(move |v4| {
            let mut a = vec![0u8; 10];
            a.extend_from_slice(&[0xff, 0xff]);
            a.extend_from_slice(&v4);
            rr(28, a)
        }),
        any::<u8>().prop_map(move |x| {
            rr(
                28,
                vec![0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, x],
            )
        }),
        any::<u8>().prop_map(move |x| {
            rr(
                28,
                vec![0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, x],
            )
        }),
        // A: documentation, private, anything.
        any::<u8>().prop_map(move |x| rr(1, vec![192, 0, 2, x])),
        any::<[u8; 4]>().prop_map(move |a| rr(1, a.to_vec())),
        // CNAME x.<qname>, PTR, TXT, SOA (authority-like), and an unknown type with random data.
        Just(rr(5, vec![1, b'x', 0xc0, 0x0c])),
        Just(rr(12, vec![1, b'p', 0xc0, 0x0c])),
        Just(rr(16, b"\x05hello".to_vec())),
        Just(rr(
            6,
            [
                &[0xc0u8, 0x0c, 0xc0, 0x0c][..],
                &[0, 0, 0, 1, 0, 0, 0, 60, 0, 0, 0, 60, 0, 0, 0, 60, 0, 0, 0, 30]
            ]
            .concat()
        )),
        (any::<u16>(), prop::collection::vec(any::<u8>(), 0..20)).prop_map(move |(t, d)| rr(t, d)),
    ]
}

/// An upstream reply as `ResponseFuzzer` takes it: flags, the three counts, records.
fn reply() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just(0u8), Just(2), Just(3), Just(5), any::<u8>()],
        any::<bool>(),
        prop::collection::vec(record(), 0..6),
        0usize..3,
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..3),
        any::<usize>(),
    )
        .prop_map(|(rcode, tc, recs, ns, edits, cut)| {
            let an = recs.len() - ns.min(recs.len());
            let mut r = vec![0x81 | if tc { 2 } else { 0 }, 0x80 | (rcode & 0x8f)];
            for c in [an, recs.len() - an, 0] {
                r.extend_from_slice(&(c as u16).to_be_bytes());
            }
            r.extend(recs.concat());
            // A few replies are damaged: bytes overwritten or cut short.
            if !edits.is_empty() {
                for (at, b) in edits {
                    let n = r.len();
                    r[at % n] = b;
                }
                r.truncate(2 + cut % (r.len() - 1));
            }
            r
        })
}

proptest! {
    // Few cases: some inputs end on the upstream timeout (see ResponseFuzzer), 50-100 ms each.
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn dns64_upstream_responses_never_panic_and_answers_stay_sound(
        ctl in any::<u8>(),
        first in prop_oneof![reply(), prop::collection::vec(any::<u8>(), 0..64)],
        second in prop_oneof![reply(), prop::collection::vec(any::<u8>(), 0..64)],
    ) {
        let mut data = vec![ctl];
        data.extend_from_slice(&(first.len() as u16).to_be_bytes());
        data.extend(first);
        data.extend(second);
        thread_local! {
            static FUZZER: std::cell::RefCell<ResponseFuzzer> =
                std::cell::RefCell::new(ResponseFuzzer::new());
        }
        FUZZER.with(|f| f.borrow_mut().response(&data));
    }
}
