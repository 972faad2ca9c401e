//! RFC 7050 §2 / RFC 8880 §7: `ipv4only.arpa`, the name hosts query to discover the NAT64 prefix,
//! and the reverse names of its two addresses.
//!
//! Its A records are the well-known 192.0.0.170 and 192.0.0.171. A DNS64 answers its AAAA query
//! with those addresses synthesized into each prefix; both are non-global (192.0.0.0/24) and yet
//! are synthesized behind the Well-Known Prefix (RFC 8880 §7.2). Everything here is answered
//! locally, never asked upstream ([`local_answer`]):
//!
//! | name | query type | answer | RFC 8880 |
//! |---|---|---|---|
//! | `ipv4only.arpa.` | A | 192.0.0.170, 192.0.0.171 | §7.1 item 4 |
//! | `ipv4only.arpa.` | AAAA | both, synthesized into every prefix | §7.1 item 4 |
//! | `ipv4only.arpa.` | DS | resolved as usual (upstream) | §7.1 item 4 |
//! | `ipv4only.arpa.` | any other | NODATA | §7.1 item 4 |
//! | below `ipv4only.arpa.` | any | NXDOMAIN | §7.1 item 4 |
//! | `170.0.0.192.in-addr.arpa.`, `171...` | PTR | `ipv4only.arpa.` | §7.2 item 3 |
//! | the same | any other | NODATA | §7.2 item 3 |
//! | below them | any | NXDOMAIN | §7.2 item 3 |
//!
//! Local answers are authoritative (AA) and negative ones carry the SOA of [`soa`].
//!
//! DEVIATION(RFC 8880 §7.2 item 4): recursive resolvers SHOULD NOT treat the two in-addr.arpa
//! names specially by default; a DNS64 does (as BIND does), since §7.2.1 makes it answer the
//! reverse names of the ipv4only.arpa addresses it synthesizes.

use super::{in_domain, Dns64Policy};
use std::net::{Ipv4Addr, Ipv6Addr};

/// The special-use name (normalized).
pub const NAME: &str = "ipv4only.arpa.";

/// RFC 7050 §2.2: its two IPv4 addresses.
pub const WELL_KNOWN_V4: [Ipv4Addr; 2] =
    [Ipv4Addr::new(192, 0, 0, 170), Ipv4Addr::new(192, 0, 0, 171)];

/// RFC 8880 §7.2 (IANA registry): the reverse names of [`WELL_KNOWN_V4`] (normalized).
pub const REVERSE_NAMES: [&str; 2] = ["170.0.0.192.in-addr.arpa.", "171.0.0.192.in-addr.arpa."];

/// TTL of the local answers. RFC 8880 §7.2 asks for 86400 s on the records it defines; the
/// synthesized AAAA records use it too, as the prefix changes only with configuration.
pub const TTL: u32 = 86400;

/// DNS type codes used here (RFC 1035 §3.2.2, RFC 3596, RFC 4034).
const T_A: u16 = 1;
const T_PTR: u16 = 12;
const T_AAAA: u16 = 28;
const T_DS: u16 = 43;

/// What to answer, locally, for a query on one of the special names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalAnswer {
    /// NOERROR with the two A records.
    A,
    /// NOERROR with the AAAA records of [`aaaa_records`].
    Aaaa,
    /// NOERROR with one PTR record pointing at `ipv4only.arpa.`.
    Ptr,
    /// NOERROR, no records (the SOA of [`soa`] in the authority section).
    NoData,
    /// NXDOMAIN (the SOA of [`soa`] in the authority section).
    NxDomain,
}

/// The zone a local answer comes from, for the SOA of negative answers (`ipv4only.arpa.` or
/// one of the two reverse names).
pub fn zone_of(qname: &str) -> Option<&'static str> {
    if in_domain(qname, NAME) {
        return Some(NAME);
    }
    REVERSE_NAMES.iter().copied().find(|z| in_domain(qname, z))
}

/// The local answer for `qname` (normalized) and `qtype`, or `None` if the query is not about
/// a special name (or is the DS query that RFC 8880 §7.1 leaves to the usual resolution).
pub fn local_answer(qname: &str, qtype: u16) -> Option<LocalAnswer> {
    let zone = zone_of(qname)?;
    if qname != zone {
        return Some(LocalAnswer::NxDomain);
    }
    Some(match (zone == NAME, qtype) {
        (true, T_DS) => return None,
        (true, T_A) => LocalAnswer::A,
        (true, T_AAAA) => LocalAnswer::Aaaa,
        (false, T_PTR) => LocalAnswer::Ptr,
        _ => LocalAnswer::NoData,
    })
}

/// The SOA fields of a local zone's negative answers: (MNAME, RNAME, serial, refresh, retry,
/// expire, minimum). The names are this implementation's choice (the RFC defines no SOA); the
/// negative TTL is [`TTL`], like the records.
pub fn soa(zone: &str) -> (String, &'static str, u32, u32, u32, u32, u32) {
    (
        zone.to_string(),
        "nobody.invalid.",
        1,
        3600,
        1200,
        604_800,
        TTL,
    )
}

/// True if `qname` (normalized) is `ipv4only.arpa.`.
pub fn is_ipv4only(qname: &str) -> bool {
    qname == NAME
}

/// The AAAA answers: 192.0.0.170 then 192.0.0.171, embedded in every prefix.
pub fn aaaa_records(policy: &Dns64Policy) -> Vec<Ipv6Addr> {
    let mut out = Vec::with_capacity(2 * policy.prefixes.len());
    for p in &policy.prefixes {
        for v4 in WELL_KNOWN_V4 {
            out.push(Ipv6Addr::from(p.embed(v4)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rfc6052::Prefix6052;

    #[test]
    fn every_prefix_both_addresses() {
        let p = Dns64Policy {
            prefixes: vec![
                Prefix6052::WKP,
                Prefix6052::new("2001:db8:64::".parse().unwrap(), 64).unwrap(),
            ],
            ..Dns64Policy::default()
        };
        let want: Vec<Ipv6Addr> = [
            "64:ff9b::192.0.0.170",
            "64:ff9b::192.0.0.171",
            "2001:db8:64:0:c0:0:aa00:0",
            "2001:db8:64:0:c0:0:ab00:0",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        assert_eq!(aaaa_records(&p), want);
        assert!(is_ipv4only("ipv4only.arpa."));
        assert!(!is_ipv4only("x.ipv4only.arpa."));
    }

    #[test]
    fn rfc8880_section_7_table() {
        use LocalAnswer::*;
        let cases: [(&str, u16, Option<LocalAnswer>); 14] = [
            ("ipv4only.arpa.", T_A, Some(A)),
            ("ipv4only.arpa.", T_AAAA, Some(Aaaa)),
            ("ipv4only.arpa.", 16, Some(NoData)),
            ("ipv4only.arpa.", T_PTR, Some(NoData)),
            ("ipv4only.arpa.", T_DS, None),
            ("x.ipv4only.arpa.", T_AAAA, Some(NxDomain)),
            ("a.b.ipv4only.arpa.", T_DS, Some(NxDomain)),
            ("170.0.0.192.in-addr.arpa.", T_PTR, Some(Ptr)),
            ("171.0.0.192.in-addr.arpa.", T_PTR, Some(Ptr)),
            ("171.0.0.192.in-addr.arpa.", T_A, Some(NoData)),
            ("1.170.0.0.192.in-addr.arpa.", T_PTR, Some(NxDomain)),
            ("172.0.0.192.in-addr.arpa.", T_PTR, None),
            ("xipv4only.arpa.", T_A, None),
            ("0.0.192.in-addr.arpa.", T_PTR, None),
        ];
        for (name, t, want) in cases {
            assert_eq!(local_answer(name, t), want, "{name} {t}");
        }
        assert_eq!(
            zone_of("1.171.0.0.192.in-addr.arpa."),
            Some(REVERSE_NAMES[1])
        );
        assert_eq!(soa(NAME).6, TTL);
    }
}
