//! Property test of the DNS64 wire readers against hickory-proto (`tests/dns_wire/mod.rs`, the
//! same check the fuzz target `dns64_wire` runs on arbitrary bytes). Messages are built with
//! hickory-proto (mixed-case and binary labels, compressed owners, A/AAAA/CNAME/TXT/SOA/NS
//! records with arbitrary TTLs, EDNS with any payload, DO and version), then fed as built and
//! with a few bytes changed or the end cut off.

mod dns_wire;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};

fn label() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => proptest::collection::vec(
            prop_oneof![b'a'..=b'z', b'A'..=b'Z', b'0'..=b'9', Just(b'-')],
            1..12
        ),
        1 => proptest::collection::vec(any::<u8>().prop_filter("no dot", |b| *b != b'.'), 1..8),
    ]
}

fn name() -> impl Strategy<Value = Name> {
    proptest::collection::vec(label(), 0..4).prop_map(|ls| {
        let mut n = Name::from_labels(ls.iter().map(|l| l.as_slice())).expect("labels");
        n.set_fqdn(true);
        n
    })
}

#[derive(Debug, Clone)]
enum Rr {
    A(u32, [u8; 4]),
    Aaaa(u32, u128),
    Cname(u32),
    Txt(u32, String),
    Soa(u32, u32),
    Ns(u32),
}

fn rr() -> impl Strategy<Value = (bool, Rr)> {
    let ttl = any::<u32>();
    (
        any::<bool>(),
        prop_oneof![
            (ttl, any::<[u8; 4]>()).prop_map(|(t, a)| Rr::A(t, a)),
            (ttl, any::<u128>()).prop_map(|(t, a)| Rr::Aaaa(t, a)),
            ttl.prop_map(Rr::Cname),
            (ttl, "[a-z ]{0,20}").prop_map(|(t, s)| Rr::Txt(t, s)),
            (ttl, any::<u32>()).prop_map(|(t, m)| Rr::Soa(t, m)),
            ttl.prop_map(Rr::Ns),
        ],
    )
}

fn record(qname: &Name, (own, r): &(bool, Rr)) -> Record {
    let other = Name::from_ascii("Other.Example.").expect("name");
    let owner = if *own { qname.clone() } else { other.clone() };
    let target = Name::from_ascii("target.example.").expect("name");
    let (ttl, data) = match r {
        Rr::A(t, a) => (*t, RData::A(A(Ipv4Addr::from(*a)))),
        Rr::Aaaa(t, a) => (*t, RData::AAAA(AAAA(Ipv6Addr::from(*a)))),
        Rr::Cname(t) => (*t, RData::CNAME(CNAME(target))),
        Rr::Txt(t, s) => (*t, RData::TXT(TXT::new(vec![s.clone()]))),
        Rr::Soa(t, m) => (
            *t,
            RData::SOA(SOA::new(other, target, 1, 3600, 600, 86400, *m)),
        ),
        Rr::Ns(t) => (*t, RData::NS(NS(target))),
    };
    Record::from_rdata(owner, ttl, data)
}

#[derive(Debug, Clone)]
struct Msg {
    id: u16,
    response: bool,
    rd: bool,
    cd: bool,
    qname: Name,
    qtype: u16,
    answers: Vec<(bool, Rr)>,
    authorities: Vec<(bool, Rr)>,
    additionals: Vec<(bool, Rr)>,
    edns: Option<(u16, bool, u8)>,
}

fn msg() -> impl Strategy<Value = Msg> {
    (
        (any::<u16>(), any::<bool>(), any::<bool>(), any::<bool>()),
        name(),
        prop_oneof![
            Just(1u16),
            Just(28),
            Just(5),
            Just(6),
            Just(12),
            Just(16),
            Just(255),
            any::<u16>()
        ],
        proptest::collection::vec(rr(), 0..4),
        proptest::collection::vec(rr(), 0..3),
        proptest::collection::vec(rr(), 0..3),
        proptest::option::of((any::<u16>(), any::<bool>(), any::<u8>())),
    )
        .prop_map(
            |((id, response, rd, cd), qname, qtype, answers, authorities, additionals, edns)| Msg {
                id,
                response,
                rd,
                cd,
                qname,
                qtype,
                answers,
                authorities,
                additionals,
                edns,
            },
        )
}

fn build(m: &Msg) -> Vec<u8> {
    let t = if m.response {
        MessageType::Response
    } else {
        MessageType::Query
    };
    let mut h = Message::new(m.id, t, OpCode::Query);
    h.metadata.recursion_desired = m.rd;
    h.metadata.checking_disabled = m.cd;
    h.add_query(Query::query(m.qname.clone(), RecordType::from(m.qtype)));
    h.answers = m.answers.iter().map(|r| record(&m.qname, r)).collect();
    h.authorities = m.authorities.iter().map(|r| record(&m.qname, r)).collect();
    h.additionals = m.additionals.iter().map(|r| record(&m.qname, r)).collect();
    if let Some((payload, dnssec_ok, version)) = m.edns {
        let mut e = Edns::new();
        e.set_max_payload(payload);
        e.set_dnssec_ok(dnssec_ok);
        e.set_version(version);
        h.set_edns(e);
    }
    h.to_vec().expect("hickory encodes what it built")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// A well-formed message gets through hickory and both readers, and they agree.
    #[test]
    fn readers_agree_with_hickory_on_well_formed_messages(m in msg()) {
        let b = build(&m);
        let o = dns_wire::check(&b);
        prop_assert!(o.hickory_parsed, "hickory refuses its own message");
        prop_assert!(o.query_compared && o.ttls_compared, "{o:?}");
    }

    /// Changed bytes or a cut: no panic, and wherever hickory still reads the message the
    /// readers agree with it.
    #[test]
    fn readers_agree_with_hickory_on_damaged_messages(
        m in msg(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let mut b = build(&m);
        for (i, v) in edits {
            let at = i.index(b.len());
            b[at] = v;
        }
        if do_cut {
            b.truncate(cut.index(b.len() + 1));
        }
        dns_wire::check(&b);
    }
}
