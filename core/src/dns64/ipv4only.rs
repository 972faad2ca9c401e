//! RFC 7050 §2 / RFC 8880 §7: `ipv4only.arpa`, the name hosts query to discover the NAT64 prefix.
//!
//! Its A records are the well-known 192.0.0.170 and 192.0.0.171. A DNS64 answers its AAAA query
//! with those addresses synthesized into each prefix; both are non-global (192.0.0.0/24) and yet
//! are synthesized behind the Well-Known Prefix (RFC 8880 §7.2). We answer locally so the answer
//! does not depend on the upstream resolver.

use super::Dns64Policy;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The special-use name (normalized).
pub const NAME: &str = "ipv4only.arpa.";

/// RFC 7050 §2.2: its two IPv4 addresses.
pub const WELL_KNOWN_V4: [Ipv4Addr; 2] =
    [Ipv4Addr::new(192, 0, 0, 170), Ipv4Addr::new(192, 0, 0, 171)];

/// TTL of the local answers. RFC 8880 §7.2 asks for 86400 s on the records it defines; the
/// synthesized AAAA records use it too, as the prefix changes only with configuration.
pub const TTL: u32 = 86400;

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
}
