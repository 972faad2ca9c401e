//! RFC 6147: DNS64, pure functions.
//!
//! A DNS64 answers AAAA queries for IPv4-only names with AAAA records synthesized from their A
//! records (§5.1), so that IPv6-only clients reach them through a NAT64. This module holds every
//! decision of that algorithm, free of sockets and of any DNS library: the daemon's adapter
//! (`src/dns64/hickory_adapter.rs`) converts DNS messages into the small [`Rr`] values used here
//! and applies the returned plans.
//!
//! - [`Dns64Policy::plan_aaaa`] — §5.1.1–§5.1.4, what to do with the upstream AAAA answer.
//! - [`Dns64Policy::synthesize_answer`] — §5.1.6–§5.1.7 (and §5.1.5 CNAME chains), the answer
//!   section built from the A answer, with the §5.1.7 TTL rule ([`synth_ttl`]).
//! - [`Dns64Policy::ptr_target`] — §5.3.1, reverse lookups of synthesized addresses.
//! - [`ipv4only`] — RFC 7050 / RFC 8880 prefix discovery through `ipv4only.arpa`.
//! - [`acl`] — which clients get answers (never an open resolver); [`ratelimit`] — per client
//!   prefix.
//! - [`wire`] — the few DNS wire-format reads the fast path and the cache need.

pub mod acl;
pub mod ipv4only;
pub mod net;
pub mod ratelimit;
pub mod wire;

use crate::rfc6052::{is_non_global_v4, Prefix6052};
use net::{Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};

/// §5.1.7: the TTL used when the AAAA answer carried no SOA record.
pub const NO_SOA_TTL: u32 = 600;

/// Longest CNAME chain followed inside one answer before giving up (loops are cut there too).
pub const MAX_CHAIN: usize = 16;

/// A resource record, reduced to what DNS64 decisions look at. Names are lower-case, absolute
/// (trailing dot), as the adapter produces them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rr {
    /// Owner name.
    pub name: String,
    /// Time to live in seconds.
    pub ttl: u32,
    /// The data that matters here.
    pub data: RrData,
}

/// The record types DNS64 looks into; everything else is [`RrData::Other`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RrData {
    /// An A record.
    A(Ipv4Addr),
    /// An AAAA record.
    Aaaa(Ipv6Addr),
    /// A CNAME record with its target.
    Cname(String),
    /// A DNAME record (RFC 6672) with its target (normalized).
    Dname(String),
    /// Any other type (RRSIG, ...), kept by the adapter as it came.
    Other(u16),
}

/// The outcome of the upstream AAAA query, as far as §5.1 cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    /// A response with this RCODE (0 NOERROR, 3 NXDOMAIN, ...).
    Rcode(u16),
    /// No response from any upstream in time (§5.1.3).
    Timeout,
}

/// What to do with the AAAA query's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AaaaPlan {
    /// Return the AAAA response, minus AAAA records in the exclusion set (§5.1.4 MUST NOT return
    /// them).
    Pass,
    /// Query A for the name and synthesize (§5.1.6). If that yields nothing, fall back to the
    /// AAAA result ([`AaaaPlan::Pass`], or SERVFAIL after a timeout).
    QueryA,
}

/// How a name is treated, from the never/always lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainMode {
    /// RFC 6147 as written.
    Normal,
    /// Plain forwarding: no synthesis for this name.
    Never,
    /// Synthesize from A even when usable AAAA records exist (the real ones are replaced).
    Always,
}

/// The validated DNS64 settings the decisions depend on.
#[derive(Debug, Clone)]
pub struct Dns64Policy {
    /// Pref64::/n prefixes; one synthesized AAAA per A record per prefix (as BIND does).
    pub prefixes: Vec<Prefix6052>,
    /// §5.1.4 exclusion set: AAAA records inside are treated as absent.
    pub exclude: Vec<Ipv6Net>,
    /// §5.1.7 mapped IPv4 ranges: only A records inside are synthesized.
    pub mapped: Vec<Ipv4Net>,
    /// RFC 6052 §3.1: never synthesize non-global IPv4 behind the Well-Known Prefix.
    pub wkp_strict: bool,
    /// §5.1.2: treat an error RCODE (other than NXDOMAIN) on AAAA as an empty answer.
    pub synth_on_error: bool,
    /// §5.1.3: treat an AAAA timeout as an empty answer.
    pub synth_on_timeout: bool,
    /// Synthesize for every name, even when AAAA records exist ("translate all").
    pub synthesize_all: bool,
    /// Names (and their subdomains) never synthesized. Lower-case, absolute.
    pub never: Vec<String>,
    /// Names (and their subdomains) always synthesized. Lower-case, absolute.
    pub always: Vec<String>,
}

impl Default for Dns64Policy {
    /// The RFC defaults: Well-Known Prefix, `::ffff:0:0/96` excluded, all IPv4 mapped.
    fn default() -> Self {
        Dns64Policy {
            prefixes: vec![Prefix6052::WKP],
            exclude: vec![Ipv6Net::new(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96)
                .unwrap_or_else(|_| unreachable!("constant"))],
            mapped: vec![
                Ipv4Net::new(Ipv4Addr::UNSPECIFIED, 0).unwrap_or_else(|_| unreachable!("constant"))
            ],
            wkp_strict: true,
            synth_on_error: true,
            synth_on_timeout: true,
            synthesize_all: false,
            never: Vec::new(),
            always: Vec::new(),
        }
    }
}

/// Lower-cases `name` and makes it absolute (trailing dot).
pub fn normalize_name(name: &str) -> String {
    let mut s = name.trim().to_ascii_lowercase();
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

/// True if `name` equals `domain` or is below it (both normalized).
pub fn in_domain(name: &str, domain: &str) -> bool {
    if domain == "." {
        return true;
    }
    name == domain
        || (name.len() > domain.len()
            && name.ends_with(domain)
            && name.as_bytes()[name.len() - domain.len() - 1] == b'.')
}

/// §5.1.7: TTL of a synthesized AAAA: the A record's TTL, capped by the negative TTL of the AAAA
/// answer's SOA (min(SOA TTL, SOA MINIMUM), RFC 2308 §5) or by 600 s when there was no SOA.
pub fn synth_ttl(a_ttl: u32, soa_negative_ttl: Option<u32>) -> u32 {
    a_ttl.min(soa_negative_ttl.unwrap_or(NO_SOA_TTL))
}

/// RFC 2308 §5: the negative-caching TTL a SOA record implies.
pub fn soa_negative_ttl(soa_ttl: u32, soa_minimum: u32) -> u32 {
    soa_ttl.min(soa_minimum)
}

/// Follows CNAME and DNAME records from `qname` through `answers` (§5.1.5); returns the name at
/// the end of the chain (`qname` itself when there is none). A CNAME of the current name wins;
/// without one, a DNAME owning an ancestor of it rewrites the name (RFC 6672 §2.2; servers send
/// the CNAME synthesized from the DNAME too, but old ones may not). Loops and chains longer than
/// [`MAX_CHAIN`] stop.
pub fn chain_end(qname: &str, answers: &[Rr]) -> String {
    let mut cur = qname.to_string();
    for _ in 0..MAX_CHAIN {
        let cname = answers.iter().find_map(|r| match &r.data {
            RrData::Cname(t) if r.name == cur => Some(t.clone()),
            _ => None,
        });
        let next = cname.or_else(|| {
            answers.iter().find_map(|r| match &r.data {
                RrData::Dname(t) if cur != r.name && in_domain(&cur, &r.name) => {
                    let prefix = &cur[..cur.len() - r.name.len()];
                    let new = if t == "." {
                        prefix.to_string()
                    } else {
                        format!("{prefix}{t}")
                    };
                    // RFC 6672 §2.2: a result longer than a name can be is YXDOMAIN; stop.
                    (new.len() <= 254).then_some(new)
                }
                _ => None,
            })
        });
        match next {
            Some(t) if t != cur => cur = t,
            _ => break,
        }
    }
    cur
}

impl Dns64Policy {
    /// The never/always lists for `qname` (normalized). "Never" wins over "always".
    pub fn domain_mode(&self, qname: &str) -> DomainMode {
        if self.never.iter().any(|d| in_domain(qname, d)) {
            DomainMode::Never
        } else if self.synthesize_all || self.always.iter().any(|d| in_domain(qname, d)) {
            DomainMode::Always
        } else {
            DomainMode::Normal
        }
    }

    /// §5.1.4: true if `a` lies in the exclusion set.
    pub fn excluded(&self, a: Ipv6Addr) -> bool {
        self.exclude.iter().any(|n| n.contains(a))
    }

    /// True if `rr` must be removed from an answer: an AAAA in the exclusion set.
    pub fn is_excluded_rr(&self, rr: &Rr) -> bool {
        matches!(rr.data, RrData::Aaaa(a) if self.excluded(a))
    }

    /// §5.1.1–§5.1.4: what to do with the upstream's answer to the AAAA query for `qname`
    /// (normalized; `mode` from [`Dns64Policy::domain_mode`]).
    pub fn plan_aaaa(
        &self,
        qname: &str,
        mode: DomainMode,
        outcome: Upstream,
        answers: &[Rr],
    ) -> AaaaPlan {
        match (mode, outcome) {
            (DomainMode::Never, _) => AaaaPlan::Pass,
            // §5.1.3: a timeout is an empty answer, if so configured.
            (_, Upstream::Timeout) if self.synth_on_timeout => AaaaPlan::QueryA,
            (_, Upstream::Timeout) => AaaaPlan::Pass,
            // §5.1.2: NXDOMAIN (also at the end of a CNAME chain) is returned as it is.
            (_, Upstream::Rcode(3)) => AaaaPlan::Pass,
            (DomainMode::Always, _) => AaaaPlan::QueryA,
            (_, Upstream::Rcode(0)) => {
                let end = chain_end(qname, answers);
                let usable = answers.iter().any(|r| {
                    r.name == end && matches!(r.data, RrData::Aaaa(a) if !self.excluded(a))
                });
                if usable {
                    AaaaPlan::Pass
                } else {
                    AaaaPlan::QueryA
                }
            }
            // §5.1.2: any other RCODE is treated as an empty answer.
            (_, Upstream::Rcode(_)) if self.synth_on_error => AaaaPlan::QueryA,
            (_, Upstream::Rcode(_)) => AaaaPlan::Pass,
        }
    }

    /// True if `v4` may be synthesized behind `prefix`: inside the mapped ranges, and not a
    /// non-global address behind the Well-Known Prefix (RFC 6052 §3.1), except ipv4only.arpa's
    /// 192.0.0.170/171 (RFC 8880 §7.2).
    pub fn may_synthesize(&self, prefix: &Prefix6052, v4: Ipv4Addr) -> bool {
        if !self.mapped.iter().any(|n| n.contains(v4)) {
            return false;
        }
        if self.wkp_strict
            && prefix.is_well_known()
            && is_non_global_v4(v4)
            && !ipv4only::WELL_KNOWN_V4.contains(&v4)
        {
            return false;
        }
        true
    }

    /// §5.2: the synthesized addresses for `v4`, one per prefix that may carry it.
    pub fn synthesize(&self, v4: Ipv4Addr) -> impl Iterator<Item = Ipv6Addr> + '_ {
        self.prefixes
            .iter()
            .filter(move |p| self.may_synthesize(p, v4))
            .map(move |p| Ipv6Addr::from(p.embed(v4)))
    }

    /// §5.1.6–§5.1.7: the answer section built from the A answer for `qname`: CNAME and DNAME
    /// records of the chain kept in order with their own TTLs (§5.1.5), each A record at the chain's end replaced by its synthesized
    /// AAAA records, TTL per [`synth_ttl`]. Other records (RRSIGs over the A set) are dropped.
    /// `None` if no AAAA could be synthesized (no A, or none in the mapped ranges).
    pub fn synthesize_answer(
        &self,
        qname: &str,
        a_answers: &[Rr],
        soa_negative_ttl: Option<u32>,
    ) -> Option<Vec<Rr>> {
        let end = chain_end(qname, a_answers);
        let mut out = Vec::with_capacity(a_answers.len() * self.prefixes.len());
        let mut synthesized = 0usize;
        for r in a_answers {
            match &r.data {
                RrData::Cname(_) | RrData::Dname(_) => out.push(r.clone()),
                RrData::A(v4) if r.name == end => {
                    let ttl = synth_ttl(r.ttl, soa_negative_ttl);
                    for a6 in self.synthesize(*v4) {
                        synthesized += 1;
                        out.push(Rr {
                            name: r.name.clone(),
                            ttl,
                            data: RrData::Aaaa(a6),
                        });
                    }
                }
                _ => {}
            }
        }
        (synthesized > 0).then_some(out)
    }

    /// §5.3.1: for a PTR query on a full ip6.arpa name inside one of the prefixes, the
    /// in-addr.arpa name that the answer's CNAME points to. `qname` is normalized.
    pub fn ptr_target(&self, qname: &str) -> Option<String> {
        let a6 = parse_ip6_arpa(qname)?;
        let o = a6.octets();
        let p = self.prefixes.iter().find(|p| p.contains(&o))?;
        let v4 = p.extract(&o)?.octets();
        Some(format!(
            "{}.{}.{}.{}.in-addr.arpa.",
            v4[3], v4[2], v4[1], v4[0]
        ))
    }
}

/// Parses a full (32 nibble labels) `ip6.arpa.` name into the address, case-insensitively.
pub fn parse_ip6_arpa(qname: &str) -> Option<Ipv6Addr> {
    let q = qname.to_ascii_lowercase();
    let rest = q.strip_suffix("ip6.arpa.")?;
    let b = rest.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut v: u128 = 0;
    for i in 0..32 {
        if b[2 * i + 1] != b'.' {
            return None;
        }
        let nib = (b[2 * i] as char).to_digit(16)?;
        v |= u128::from(nib) << (4 * i);
    }
    Some(Ipv6Addr::from(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rr(name: &str, ttl: u32, data: RrData) -> Rr {
        Rr {
            name: name.into(),
            ttl,
            data,
        }
    }
    fn a(name: &str, ttl: u32, v4: &str) -> Rr {
        rr(name, ttl, RrData::A(v4.parse().unwrap()))
    }
    fn aaaa(name: &str, v6: &str) -> Rr {
        rr(name, 300, RrData::Aaaa(v6.parse().unwrap()))
    }
    fn cname(name: &str, t: &str) -> Rr {
        rr(name, 100, RrData::Cname(t.into()))
    }
    fn pf(s: &str, len: u8) -> Prefix6052 {
        Prefix6052::new(s.parse().unwrap(), len).unwrap()
    }

    #[test]
    fn ttl_rule_5_1_7() {
        assert_eq!(synth_ttl(3600, Some(300)), 300);
        assert_eq!(synth_ttl(60, Some(300)), 60);
        assert_eq!(synth_ttl(3600, None), 600);
        assert_eq!(synth_ttl(30, None), 30);
        assert_eq!(soa_negative_ttl(3600, 900), 900);
        assert_eq!(soa_negative_ttl(120, 900), 120);
    }

    #[test]
    fn plan_follows_5_1() {
        let p = Dns64Policy::default();
        let n = DomainMode::Normal;
        let q = "www.example.";
        // Real AAAA: pass.
        assert_eq!(
            p.plan_aaaa(q, n, Upstream::Rcode(0), &[aaaa(q, "2001:db8::1")]),
            AaaaPlan::Pass
        );
        // Only excluded AAAA (§5.1.4): as if empty.
        assert_eq!(
            p.plan_aaaa(q, n, Upstream::Rcode(0), &[aaaa(q, "::ffff:192.0.2.1")]),
            AaaaPlan::QueryA
        );
        // NODATA.
        assert_eq!(p.plan_aaaa(q, n, Upstream::Rcode(0), &[]), AaaaPlan::QueryA);
        // CNAME-only answer: no AAAA at the chain's end.
        assert_eq!(
            p.plan_aaaa(q, n, Upstream::Rcode(0), &[cname(q, "b.example.")]),
            AaaaPlan::QueryA
        );
        // AAAA at the chain's end.
        let chain = [cname(q, "b.example."), aaaa("b.example.", "2001:db8::2")];
        assert_eq!(
            p.plan_aaaa(q, n, Upstream::Rcode(0), &chain),
            AaaaPlan::Pass
        );
        // NXDOMAIN passes; SERVFAIL and timeouts are treated as empty.
        assert_eq!(p.plan_aaaa(q, n, Upstream::Rcode(3), &[]), AaaaPlan::Pass);
        assert_eq!(p.plan_aaaa(q, n, Upstream::Rcode(2), &[]), AaaaPlan::QueryA);
        assert_eq!(p.plan_aaaa(q, n, Upstream::Timeout, &[]), AaaaPlan::QueryA);
        let strict = Dns64Policy {
            synth_on_error: false,
            synth_on_timeout: false,
            ..Dns64Policy::default()
        };
        assert_eq!(
            strict.plan_aaaa(q, n, Upstream::Rcode(2), &[]),
            AaaaPlan::Pass
        );
        assert_eq!(
            strict.plan_aaaa(q, n, Upstream::Timeout, &[]),
            AaaaPlan::Pass
        );
        // Lists.
        let real = [aaaa(q, "2001:db8::1")];
        assert_eq!(
            p.plan_aaaa(q, DomainMode::Always, Upstream::Rcode(0), &real),
            AaaaPlan::QueryA
        );
        assert_eq!(
            p.plan_aaaa(q, DomainMode::Never, Upstream::Rcode(0), &[]),
            AaaaPlan::Pass
        );
        assert_eq!(
            p.plan_aaaa(q, DomainMode::Always, Upstream::Rcode(3), &[]),
            AaaaPlan::Pass
        );
    }

    #[test]
    fn domain_lists() {
        let p = Dns64Policy {
            never: vec!["corp.example.".into()],
            always: vec!["example.".into()],
            ..Dns64Policy::default()
        };
        assert_eq!(p.domain_mode("a.corp.example."), DomainMode::Never);
        assert_eq!(p.domain_mode("corp.example."), DomainMode::Never);
        assert_eq!(p.domain_mode("xcorp.example."), DomainMode::Always);
        assert_eq!(p.domain_mode("example.org."), DomainMode::Normal);
        let all = Dns64Policy {
            synthesize_all: true,
            ..Dns64Policy::default()
        };
        assert_eq!(all.domain_mode("x.org."), DomainMode::Always);
        assert!(in_domain("a.b.", "."));
    }

    #[test]
    fn synthesis_with_chain_and_prefixes() {
        let p = Dns64Policy {
            prefixes: vec![pf("64:ff9b::", 96), pf("2001:db8:64::", 48)],
            ..Dns64Policy::default()
        };
        let q = "www.example.";
        let ans = [
            cname(q, "cdn.example."),
            a("cdn.example.", 3600, "8.8.4.4"),
            a("other.example.", 3600, "8.8.8.8"),
            rr("cdn.example.", 3600, RrData::Other(46)),
        ];
        let out = p.synthesize_answer(q, &ans, Some(120)).unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], cname(q, "cdn.example."));
        assert_eq!(out[1], aaaa_ttl("cdn.example.", 120, "64:ff9b::8.8.4.4"));
        assert_eq!(
            out[2],
            aaaa_ttl("cdn.example.", 120, "2001:db8:64:808:4:400::")
        );
    }

    fn aaaa_ttl(name: &str, ttl: u32, v6: &str) -> Rr {
        rr(name, ttl, RrData::Aaaa(v6.parse().unwrap()))
    }

    #[test]
    fn wkp_never_carries_non_global_v4_except_ipv4only() {
        let p = Dns64Policy::default();
        let q = "x.example.";
        assert_eq!(p.synthesize_answer(q, &[a(q, 60, "10.0.0.1")], None), None);
        assert_eq!(p.synthesize_answer(q, &[a(q, 60, "192.0.2.1")], None), None);
        let ok = p
            .synthesize_answer(q, &[a(q, 60, "192.0.0.170")], None)
            .unwrap();
        assert_eq!(ok, vec![aaaa_ttl(q, 60, "64:ff9b::192.0.0.170")]);
        // A network-specific prefix may carry them.
        let nsp = Dns64Policy {
            prefixes: vec![pf("2001:db8:64::", 96)],
            ..Dns64Policy::default()
        };
        assert_eq!(
            nsp.synthesize_answer(q, &[a(q, 60, "10.0.0.1")], None)
                .unwrap(),
            vec![aaaa_ttl(q, 60, "2001:db8:64::10.0.0.1")]
        );
        // Lab switch.
        let lab = Dns64Policy {
            wkp_strict: false,
            ..Dns64Policy::default()
        };
        assert!(lab
            .synthesize_answer(q, &[a(q, 60, "192.0.2.1")], None)
            .is_some());
    }

    #[test]
    fn mapped_ranges_limit_synthesis() {
        let p = Dns64Policy {
            mapped: vec!["8.8.0.0/16".parse().unwrap()],
            ..Dns64Policy::default()
        };
        let q = "x.example.";
        let out = p
            .synthesize_answer(q, &[a(q, 60, "8.8.8.8"), a(q, 60, "1.1.1.1")], None)
            .unwrap();
        assert_eq!(out, vec![aaaa_ttl(q, 60, "64:ff9b::8.8.8.8")]);
        assert_eq!(p.synthesize_answer(q, &[a(q, 60, "1.1.1.1")], None), None);
    }

    #[test]
    fn reverse_5_3_1() {
        let p = Dns64Policy {
            prefixes: vec![pf("64:ff9b::", 96), pf("2001:db8:122::", 48)],
            ..Dns64Policy::default()
        };
        let name = |a: &str| {
            let v: Ipv6Addr = a.parse().unwrap();
            let mut s = String::new();
            for b in v.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            s + "ip6.arpa."
        };
        assert_eq!(
            p.ptr_target(&name("64:ff9b::192.0.2.33")).as_deref(),
            Some("33.2.0.192.in-addr.arpa.")
        );
        assert_eq!(
            p.ptr_target(&name("2001:db8:122:c000:2:2100::")).as_deref(),
            Some("33.2.0.192.in-addr.arpa.")
        );
        assert_eq!(
            p.ptr_target(&name("64:FF9B::8.8.8.8").to_uppercase())
                .as_deref(),
            Some("8.8.8.8.in-addr.arpa.")
        );
        assert_eq!(p.ptr_target(&name("2001:db8::1")), None);
        assert_eq!(p.ptr_target("4.3.2.1.in-addr.arpa."), None);
        assert_eq!(p.ptr_target("b.9.f.f.4.6.0.0.ip6.arpa."), None);
        assert_eq!(parse_ip6_arpa("x.ip6.arpa."), None);
    }

    #[test]
    fn dname_chain_kept_in_order_5_1_5() {
        let p = Dns64Policy::default();
        let q = "www.old.example.";
        let dn = rr("old.example.", 7200, RrData::Dname("new.example.".into()));
        let ans = [
            dn.clone(),
            cname(q, "www.new.example."),
            a("www.new.example.", 3600, "8.8.8.8"),
        ];
        let out = p.synthesize_answer(q, &ans, Some(300)).unwrap();
        assert_eq!(
            out,
            vec![
                dn.clone(),
                cname(q, "www.new.example."),
                aaaa_ttl("www.new.example.", 300, "64:ff9b::8.8.8.8"),
            ]
        );
        // Without the synthesized CNAME the DNAME alone rewrites the name (RFC 6672 §2.2).
        let bare = [dn.clone(), a("www.new.example.", 60, "8.8.8.8")];
        assert_eq!(chain_end(q, &bare), "www.new.example.");
        let out = p.synthesize_answer(q, &bare, None).unwrap();
        assert_eq!(out[0], dn);
        assert_eq!(out[1], aaaa_ttl("www.new.example.", 60, "64:ff9b::8.8.8.8"));
        // The DNAME's owner itself is not rewritten; AAAA at the end of a DNAME chain passes.
        assert_eq!(chain_end("old.example.", &bare), "old.example.");
        let real = [dn, aaaa("www.new.example.", "2001:db8::7")];
        assert_eq!(
            p.plan_aaaa(q, DomainMode::Normal, Upstream::Rcode(0), &real),
            AaaaPlan::Pass
        );
    }

    #[test]
    fn chain_loops_stop() {
        let ans = [cname("a.", "b."), cname("b.", "a.")];
        let end = chain_end("a.", &ans);
        assert!(end == "a." || end == "b.");
        assert_eq!(normalize_name("WWW.Example"), "www.example.");
    }
}
