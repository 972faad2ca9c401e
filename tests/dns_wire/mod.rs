//! The DNS64 fast path's wire readers (`nat64_core::dns64::wire`, which read untrusted queries
//! and upstream answers without a full parse) checked against an independent parser,
//! hickory-proto's `Message::from_vec`, on the same bytes. Shared by the proptest
//! `tests/dns_wire_props.rs` (every `cargo test`) and the fuzz target
//! `fuzz/fuzz_targets/dns64_wire.rs`.
//!
//! On any input: no reader panics, everything they return lies inside the message, and an empty
//! reply built from a parsed query is a message hickory reads back with that query's ID and
//! question. Where hickory accepts the message, the readers must too and must agree with it:
//! header fields, the lower-cased question name, type and class, the EDNS payload, DO bit and
//! version, and one TTL offset per record (OPT excluded) holding that record's TTL, with the
//! smallest TTL (SOA: min of TTL and MINIMUM, RFC 2308 §5).
#![allow(dead_code)]

use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::{RData, RecordType};
use nat64_core::dns64::wire::{self, flags, MAX_NAME};

/// What the readers and hickory made of one input (the proptest asserts well-formed messages
/// get through all of them, so the comparison is never skipped wholesale).
#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    pub hickory_parsed: bool,
    pub query_compared: bool,
    pub ttls_compared: bool,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// True if the question name (at offset 12) is written with a compression pointer, which
/// `parse_query` refuses by design (the slow path takes such queries).
fn question_compressed(b: &[u8]) -> bool {
    let mut at = 12;
    while let Some(&len) = b.get(at) {
        if len == 0 {
            return false;
        }
        if len & 0xc0 != 0 {
            return true;
        }
        at += usize::from(len) + 1;
    }
    false
}

/// True unless the message holds an OPT record whose owner is not the root: RFC 6891 §6.1.2
/// requires the root, and `parse_query` takes only such an OPT as EDNS (hickory is laxer and does
/// not keep the owner, so it is read from the wire).
fn opt_owners_are_root(b: &[u8]) -> bool {
    let be16 = |at: usize| b.get(at..at + 2).map(|s| u16::from_be_bytes([s[0], s[1]]));
    let (Some(qd), Some(an), Some(ns), Some(ar)) = (be16(4), be16(6), be16(8), be16(10)) else {
        return true;
    };
    let mut at = 12usize;
    for _ in 0..qd {
        match wire::skip_name(b, at) {
            Ok(e) => at = e + 4,
            Err(_) => return true,
        }
    }
    for _ in 0..u32::from(an) + u32::from(ns) + u32::from(ar) {
        let start = at;
        let Ok(e) = wire::skip_name(b, at) else {
            return true;
        };
        let (Some(t), Some(rdlen)) = (be16(e), be16(e + 8)) else {
            return true;
        };
        if t == wire::rrtype::OPT && b[start] != 0 {
            return false;
        }
        at = e + 10 + usize::from(rdlen);
    }
    true
}

/// Runs every reader on `b` and panics on a property violation.
pub fn check(b: &[u8]) -> Outcome {
    let mut out = Outcome::default();
    let mut key = [0xa5u8; MAX_NAME];
    let q = wire::parse_query(b, &mut key);
    let mut offs = Vec::new();
    let ttls = wire::ttl_offsets(b, &mut offs);
    let _ = wire::is_plain_name(b);
    for at in [0, 12] {
        if let Ok(end) = wire::skip_name(b, at) {
            assert!(end <= b.len(), "skip_name({at}) past the end");
        }
    }
    if let Ok(v) = &q {
        assert!(
            v.question_end <= b.len() && v.qname_len <= MAX_NAME,
            "{v:?}"
        );
        check_empty_replies(b, v);
    }
    if ttls.is_ok() {
        for &o in &offs {
            assert!(o + 4 <= b.len(), "TTL offset {o} past the end");
        }
    }

    let Ok(m) = Message::from_vec(b) else {
        return out;
    };
    out.hickory_parsed = true;

    // The header and question, where parse_query's preconditions hold.
    if m.queries.len() == 1 && !question_compressed(b) {
        let v = match q {
            Ok(v) => v,
            Err(e) => panic!("hickory reads the query, parse_query says {e:?}"),
        };
        let hq = &m.queries[0];
        assert_eq!(v.id, m.metadata.id, "id");
        assert_eq!(
            v.has(flags::QR),
            m.metadata.message_type == MessageType::Response,
            "QR"
        );
        assert_eq!(v.opcode(), u8::from(m.metadata.op_code), "opcode");
        assert_eq!(v.has(flags::RD), m.metadata.recursion_desired, "RD");
        assert_eq!(v.has(flags::CD), m.metadata.checking_disabled, "CD");
        assert_eq!(usize::from(v.ancount), m.answers.len(), "ancount");
        assert_eq!(usize::from(v.nscount), m.authorities.len(), "nscount");
        assert_eq!(v.qtype, u16::from(hq.query_type()), "qtype");
        assert_eq!(v.qclass, u16::from(hq.query_class()), "qclass");
        let mut name = Vec::new();
        for label in hq.name().iter() {
            name.push(label.len() as u8);
            name.extend(label.iter().map(u8::to_ascii_lowercase));
        }
        name.push(0);
        assert_eq!(&key[..v.qname_len], &name[..], "lower-cased question name");
        match (v.edns, m.edns.as_ref()) {
            (Some(ours), Some(h)) => {
                assert_eq!(ours.payload.max(512), h.max_payload().max(512), "payload");
                assert_eq!(ours.dnssec_ok, h.flags().dnssec_ok, "DO");
                assert_eq!(ours.version, h.version(), "EDNS version");
            }
            (None, None) => {}
            (None, Some(_)) if !opt_owners_are_root(b) => {}
            (o, h) => panic!("EDNS: parse_query {o:?}, hickory {h:?}"),
        }
        out.query_compared = true;
    }

    // One TTL offset per record, in wire order, unless hickory moved a TSIG record aside.
    if m.signature.is_none() {
        let min = match ttls {
            Ok(min) => min,
            Err(e) => panic!("hickory reads the message, ttl_offsets says {e:?}"),
        };
        let records: Vec<_> = m
            .answers
            .iter()
            .chain(&m.authorities)
            .chain(&m.additionals)
            .filter(|r| r.record_type() != RecordType::OPT)
            .collect();
        let got: Vec<u32> = offs.iter().map(|&o| u32_at(b, o)).collect();
        let want: Vec<u32> = records.iter().map(|r| r.ttl).collect();
        assert_eq!(got, want, "TTLs at the offsets");
        let want_min = records
            .iter()
            .map(|r| match &r.data {
                RData::SOA(s) => r.ttl.min(s.minimum),
                _ => r.ttl,
            })
            .min();
        assert_eq!(min, want_min, "smallest TTL");
        out.ttls_compared = true;
    }
    out
}

/// `empty_reply` for a parsed query: hickory reads it back with the query's ID, opcode, RD, CD,
/// the rcode and TC asked for, the same question, and an OPT exactly when the query had one.
fn check_empty_replies(b: &[u8], v: &wire::QueryView) {
    let mut buf = [0u8; 12 + MAX_NAME + 4 + 11];
    for (rcode, tc) in [(0u16, false), (2, true), (3, false), (16, false)] {
        let Some(n) = wire::empty_reply(b, Some(v), rcode, tc, &mut buf) else {
            assert!(rcode > 15 && v.edns.is_none(), "no reply for rcode {rcode}");
            continue;
        };
        let r = &buf[..n];
        assert_eq!(&r[..2], &b[..2], "reply ID");
        assert_eq!(&r[12..v.question_end], &b[12..v.question_end], "question");
        let flags_out = u16::from_be_bytes([r[2], r[3]]);
        assert_ne!(flags_out & flags::QR, 0);
        assert_eq!(flags_out & flags::TC != 0, tc);
        assert_eq!(flags_out & 0x7800, v.flags & 0x7800, "opcode");
        assert_eq!(
            flags_out & (flags::RD | flags::CD),
            v.flags & (flags::RD | flags::CD)
        );
        assert_eq!(flags_out & 0xf, rcode & 0xf);
        // hickory reads it whenever it reads the question (it refuses some names we pass on
        // byte for byte, such as labels it does not accept).
        if let Ok(m) = Message::from_vec(r) {
            assert_eq!(m.metadata.id, v.id);
            assert_eq!(m.queries.len(), 1);
            assert_eq!(
                m.answers.len() + m.authorities.len() + m.additionals.len(),
                0
            );
            assert_eq!(m.edns.is_some(), v.edns.is_some(), "OPT mirrored");
            if let Some(e) = &m.edns {
                assert_eq!(e.max_payload(), wire::OUR_UDP_PAYLOAD);
                assert_eq!(e.flags().dnssec_ok, v.edns.is_some_and(|x| x.dnssec_ok));
            }
            let want_rcode = u16::from(m.metadata.response_code);
            assert_eq!(want_rcode, rcode, "rcode (extended via OPT)");
        }
    }
}
