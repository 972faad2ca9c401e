//! The one file that knows hickory (`~0.26.3`, lock file exact): DNS messages in and out and the
//! resolution steps of RFC 6147 §5 around the core's pure decisions. TCP framing is our own loop
//! in `tcp.rs`, which calls into the same slow path.
//!
//! The decisions themselves (what to synthesize, the TTL, the exclusion set, the PTR mapping) are
//! in `nat64_core::dns64`; here we only convert records to and from its [`Rr`] values.

use super::stats::QueryResult;
use super::upstream::UpstreamError;
use super::{Counter, Engine};
use hickory_server::proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_server::proto::rr::rdata::opt::EdnsOption;
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, NULL, PTR, SOA};
use hickory_server::proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_server::proto::serialize::binary::{BinDecodable, BinEncodable};
use nat64_core::dns64::ipv4only::{self, LocalAnswer};
use nat64_core::dns64::wire::{self, OUR_UDP_PAYLOAD};
use nat64_core::dns64::{
    normalize_name, soa_negative_ttl, AaaaPlan, DomainMode, Rr, RrData, Upstream, NO_SOA_TTL,
};
use std::net::SocketAddr;
use std::sync::Arc;

/// RFC 8914 §4.30: Extended DNS Error code "Synthesized".
const EDE_SYNTHESIZED: u16 = 29;
/// RFC 8914: the EDNS option code of Extended DNS Errors.
const EDNS_EDE: u16 = 15;

/// The client query's bits that shape the answer.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    /// The client is inside `synthesize_clients`.
    synthesize: bool,
    rd: bool,
    cd: bool,
    dnssec_ok: bool,
    edns: bool,
    /// The client query's one deadline, shared by every upstream step (AAAA, A, failover).
    deadline: tokio::time::Instant,
}

/// Resolves a query that missed the fast path and returns the encoded answer, truncated to
/// `udp_limit` bytes (TC set) when it does not fit.
pub(super) async fn resolve_udp(
    engine: &Engine,
    query: &[u8],
    src: SocketAddr,
    udp_limit: usize,
) -> Option<Vec<u8>> {
    let full = resolve(engine, query, src).await?;
    if full.len() <= udp_limit {
        return Some(full);
    }
    engine.stats.inc(Counter::Truncated);
    let m = Message::from_vec(&full).ok()?;
    m.truncate().to_vec().ok()
}

/// The slow path: parses `query` fully and answers it (ACL and rate limit were checked by
/// [`Engine::admit`]). The answer is cached when cacheable. Identical misses in flight (same
/// name, type, class and cache-key bits: EDNS, DO, CD, synthesis) wait for the first one's
/// answer instead of asking the upstream again; each gets it with its own ID, RD bit and name
/// case.
pub(super) async fn resolve(engine: &Engine, query: &[u8], src: SocketAddr) -> Option<Vec<u8>> {
    let t0 = std::time::Instant::now();
    let ans = resolve_shared(engine, query, src).await;
    if let Some(a) = &ans {
        let rcode = a.get(3).map_or(0xf, |b| b & 0xf);
        let synthesized = rcode == 0 && holds_synthesized(engine, a);
        engine
            .stats
            .resolved
            .observe(QueryResult::of(rcode, synthesized), t0.elapsed());
    }
    ans
}

/// The answer holds an AAAA record inside one of the Pref64::/n (a synthesized one).
fn holds_synthesized(engine: &Engine, ans: &[u8]) -> bool {
    let Ok(m) = Message::from_vec(ans) else {
        return false;
    };
    m.answers.iter().any(|r| match &r.data {
        RData::AAAA(a) => {
            let o = a.0.octets();
            engine
                .settings
                .policy
                .prefixes
                .iter()
                .any(|p| p.contains(&o))
        }
        _ => false,
    })
}

async fn resolve_shared(engine: &Engine, query: &[u8], src: SocketAddr) -> Option<Vec<u8>> {
    let mut qname = [0u8; wire::MAX_NAME];
    let Ok(q) = wire::parse_query(query, &mut qname) else {
        return resolve_one(engine, query, src).await;
    };
    if !engine.settings.coalesce {
        return resolve_one(engine, query, src).await;
    }
    let mut key = [0u8; super::cache::KEY_LEN];
    let klen = super::cache::make_key(
        &mut key,
        &qname[..q.qname_len],
        q.qtype,
        q.qclass,
        super::cache_bits(&q, engine.settings.synth_acl.allows(src.ip())),
    );
    let key = &key[..klen];
    // Decide under the lock, await after it (the guard never crosses an await).
    let role = match engine.pending.lock() {
        Ok(mut pending) => match pending.get(key) {
            Some(rx) => Ok(rx.clone()),
            None => {
                let (tx, rx) = tokio::sync::watch::channel(None);
                pending.insert(key.into(), rx);
                Err(Some(tx))
            }
        },
        Err(_) => Err(None),
    };
    let waiting = match role {
        Ok(rx) => Some(rx),
        Err(None) => return resolve_one(engine, query, src).await,
        Err(Some(tx)) => {
            let _guard = Pending { engine, key };
            let ans = resolve_one(engine, query, src).await;
            let _ = tx.send(ans.as_ref().map(|a| Arc::<[u8]>::from(a.as_slice())));
            return ans;
        }
    };
    let mut rx = waiting?;
    engine.stats.inc(Counter::Coalesced);
    let shared = rx.wait_for(Option::is_some).await.ok()?.clone()?;
    let mut out = shared.to_vec();
    // The shared answer was for another query: take this one's ID, RD bit and name case.
    if out.len() >= q.question_end && query.len() >= q.question_end {
        out[..2].copy_from_slice(&query[..2]);
        out[2] = (out[2] & !0x01) | (query[2] & 0x01);
        out[12..q.question_end].copy_from_slice(&query[12..q.question_end]);
    }
    Some(out)
}

/// Removes a leader's entry from the in-flight table when it finishes (or is cancelled).
struct Pending<'a> {
    engine: &'a Engine,
    key: &'a [u8],
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if let Ok(mut p) = self.engine.pending.lock() {
            p.remove(self.key);
        }
    }
}

async fn resolve_one(engine: &Engine, query: &[u8], src: SocketAddr) -> Option<Vec<u8>> {
    let req = match Message::from_vec(query) {
        Ok(m) => m,
        Err(_) => {
            engine.stats.inc(Counter::Malformed);
            if query.len() < 12 || query[2] & 0x80 != 0 {
                return None;
            }
            let mut out = [0u8; 12];
            let n = wire::empty_reply(query, None, 1, false, &mut out)?;
            return Some(out[..n].to_vec());
        }
    };
    if req.metadata.message_type != MessageType::Query {
        engine.stats.inc(Counter::NotQuery);
        return None;
    }
    let ctx = Ctx {
        synthesize: engine.settings.synth_acl.allows(src.ip()),
        rd: req.metadata.recursion_desired,
        cd: req.metadata.checking_disabled,
        dnssec_ok: req.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok),
        edns: req.edns.is_some(),
        deadline: tokio::time::Instant::now() + engine.settings.query_timeout,
    };
    let answer = if req.queries.len() != 1 {
        engine.stats.inc(Counter::Malformed);
        empty(&req, ctx, ResponseCode::FormErr)
    } else if req.metadata.op_code != OpCode::Query {
        engine.stats.inc(Counter::NotQuery);
        empty(&req, ctx, ResponseCode::NotImp)
    } else if req.queries[0].query_class() != DNSClass::IN {
        engine.stats.inc(Counter::BadClass);
        empty(&req, ctx, ResponseCode::Refused)
    } else {
        // One overall deadline per client query: SERVFAIL when it passes, so the client hears
        // from us before its own (typically 5 s) timeout.
        match tokio::time::timeout_at(ctx.deadline, answer(engine, &req, ctx)).await {
            Ok(m) => m,
            Err(_) => servfail(engine, &req, ctx),
        }
    };
    let bytes = match answer.to_vec() {
        Ok(b) => b,
        Err(_) => empty(&req, ctx, ResponseCode::ServFail).to_vec().ok()?,
    };
    let mut qname = [0u8; wire::MAX_NAME];
    if let Ok(q) = wire::parse_query(query, &mut qname) {
        let mut key = [0u8; super::cache::KEY_LEN];
        let klen = super::cache::make_key(
            &mut key,
            &qname[..q.qname_len],
            q.qtype,
            q.qclass,
            super::cache_bits(&q, ctx.synthesize),
        );
        engine.cache.put(&key[..klen], &bytes);
    }
    Some(bytes)
}

/// A response skeleton for `req`: ID, RD and CD mirrored, RA set, the question, and an OPT
/// record (our payload size, DO mirrored) if the query had one (RFC 6891 §6.1.1).
fn skeleton(req: &Message, ctx: Ctx, rcode: ResponseCode) -> Message {
    let mut m = Message::response(req.metadata.id, req.metadata.op_code);
    m.metadata.recursion_desired = ctx.rd;
    m.metadata.recursion_available = true;
    m.metadata.checking_disabled = ctx.cd;
    m.metadata.response_code = rcode;
    m.add_queries(req.queries.iter().cloned());
    if ctx.edns {
        let mut e = Edns::new();
        e.set_max_payload(OUR_UDP_PAYLOAD);
        e.set_dnssec_ok(ctx.dnssec_ok);
        m.set_edns(e);
    }
    m
}

fn empty(req: &Message, ctx: Ctx, rcode: ResponseCode) -> Message {
    skeleton(req, ctx, rcode)
}

/// Copies the upstream answer `up` into a response to `req` (sections, RCODE; AD only for
/// clients that asked for DNSSEC).
fn relay(req: &Message, ctx: Ctx, up: Message) -> Message {
    let mut m = skeleton(req, ctx, up.metadata.response_code);
    m.metadata.authentic_data =
        up.metadata.authentic_data && (ctx.dnssec_ok || req.metadata.authentic_data);
    m.answers = up.answers;
    m.authorities = up.authorities;
    m.additionals = up.additionals;
    m
}

/// Sends one upstream query (bounded by the client query's deadline) and parses the answer.
async fn ask(
    engine: &Engine,
    name: &Name,
    qtype: RecordType,
    ctx: Ctx,
) -> Result<Message, UpstreamError> {
    let mut q = Message::query();
    q.metadata.recursion_desired = true;
    q.metadata.checking_disabled = ctx.cd;
    q.add_query(Query::query(name.clone(), qtype));
    let mut e = Edns::new();
    e.set_max_payload(OUR_UDP_PAYLOAD);
    e.set_dnssec_ok(ctx.dnssec_ok);
    q.set_edns(e);
    let bytes = q.to_vec().map_err(|_| UpstreamError::Failed)?;
    let ans = engine.upstream.query(&bytes, ctx.deadline).await?;
    match Message::from_vec(&ans) {
        Ok(m) => Ok(m),
        Err(_) => {
            engine.stats.inc(Counter::UpstreamGarbage);
            Err(UpstreamError::Failed)
        }
    }
}

fn servfail(engine: &Engine, req: &Message, ctx: Ctx) -> Message {
    engine.stats.inc(Counter::ServFail);
    if tokio::time::Instant::now() >= ctx.deadline {
        engine.stats.inc(Counter::DeadlineExceeded);
    }
    empty(req, ctx, ResponseCode::ServFail)
}

fn to_core(records: &[Record]) -> Vec<Rr> {
    records
        .iter()
        .map(|r| Rr {
            name: normalize_name(&r.name.to_ascii()),
            ttl: r.ttl,
            data: match &r.data {
                RData::A(a) => RrData::A(a.0),
                RData::AAAA(a) => RrData::Aaaa(a.0),
                RData::CNAME(c) => RrData::Cname(normalize_name(&c.0.to_ascii())),
                // hickory 0.26 reads DNAME as unknown data: its RDATA is the target name, never
                // compressed (RFC 6672 §2.5), so it can be read on its own.
                RData::Unknown { code, rdata }
                    if *code == RecordType::DNAME && wire::is_plain_name(&rdata.anything) =>
                {
                    match Name::from_bytes(&rdata.anything) {
                        Ok(t) => RrData::Dname(normalize_name(&t.to_ascii())),
                        Err(_) => RrData::Other(u16::from(RecordType::DNAME)),
                    }
                }
                other => RrData::Other(u16::from(other.record_type())),
            },
        })
        .collect()
}

fn from_core(rr: &Rr) -> Option<Record> {
    let name = Name::from_ascii(&rr.name).ok()?;
    let data = match &rr.data {
        RrData::A(a) => RData::A(A(*a)),
        RrData::Aaaa(a) => RData::AAAA(AAAA(*a)),
        RrData::Cname(t) => RData::CNAME(CNAME(Name::from_ascii(t).ok()?)),
        RrData::Dname(t) => RData::Unknown {
            code: RecordType::DNAME,
            // A fresh encoder: the name is written whole, uncompressed (RFC 6672 §2.5).
            rdata: NULL::with(Name::from_ascii(t).ok()?.to_bytes().ok()?),
        },
        RrData::Other(_) => return None,
    };
    Some(Record::from_rdata(name, rr.ttl, data))
}

/// RFC 2308 §5: the negative TTL from the SOA in a negative answer's authority section.
fn negative_ttl(m: &Message) -> Option<u32> {
    m.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(soa_negative_ttl(r.ttl, soa.minimum)),
        _ => None,
    })
}

/// RFC 8880 §7: the local answer for the special names (`ipv4only.arpa.` and the reverse names
/// of its addresses), authoritative, with a SOA in negative answers.
fn local(engine: &Engine, req: &Message, ctx: Ctx, qn: &str, how: LocalAnswer) -> Message {
    engine.stats.inc(Counter::Ipv4Only);
    let q = &req.queries[0];
    let rcode = if how == LocalAnswer::NxDomain {
        ResponseCode::NXDomain
    } else {
        ResponseCode::NoError
    };
    let mut m = skeleton(req, ctx, rcode);
    m.metadata.authoritative = true;
    let rec = |data| Record::from_rdata(q.name().clone(), ipv4only::TTL, data);
    match how {
        LocalAnswer::Aaaa => {
            for a in ipv4only::aaaa_records(&engine.settings.policy) {
                m.add_answer(rec(RData::AAAA(AAAA(a))));
            }
        }
        LocalAnswer::A => {
            for a in ipv4only::WELL_KNOWN_V4 {
                m.add_answer(rec(RData::A(A(a))));
            }
        }
        LocalAnswer::Ptr => {
            if let Ok(target) = Name::from_ascii(ipv4only::NAME) {
                m.add_answer(rec(RData::PTR(PTR(target))));
            }
        }
        LocalAnswer::NoData | LocalAnswer::NxDomain => {
            if let Some(soa) = ipv4only::zone_of(qn).and_then(local_soa) {
                m.add_authority(soa);
            }
        }
    }
    m
}

/// The SOA record of a local zone (see [`ipv4only::soa`]).
fn local_soa(zone: &str) -> Option<Record> {
    let (mname, rname, serial, refresh, retry, expire, minimum) = ipv4only::soa(zone);
    let zname = Name::from_ascii(zone).ok()?;
    let soa = SOA::new(
        Name::from_ascii(&mname).ok()?,
        Name::from_ascii(rname).ok()?,
        serial,
        i32::try_from(refresh).ok()?,
        i32::try_from(retry).ok()?,
        i32::try_from(expire).ok()?,
        minimum,
    );
    Some(Record::from_rdata(zname, minimum, RData::SOA(soa)))
}

/// True if `m` is a negative answer for `qtype` (RFC 2308 §1: NXDOMAIN, or NOERROR without a
/// record of the type asked for).
fn is_negative(m: &Message, qtype: RecordType) -> bool {
    m.metadata.response_code == ResponseCode::NXDomain
        || (m.metadata.response_code == ResponseCode::NoError
            && qtype != RecordType::ANY
            && !m.answers.iter().any(|r| r.record_type() == qtype))
}

/// RFC 2308 §3/§5 for a negative answer: a SOA in the authority section (taken from `other`,
/// the other upstream response, when `m` has none), its TTL lowered to the negative TTL
/// min(SOA TTL, MINIMUM). Positive answers are left alone.
fn negative_soa(m: &mut Message, qtype: RecordType, other: Option<&Message>) {
    if !is_negative(m, qtype) {
        return;
    }
    let has_soa = m
        .authorities
        .iter()
        .any(|r| r.record_type() == RecordType::SOA);
    if !has_soa {
        if let Some(soa) = other.and_then(|o| {
            o.authorities
                .iter()
                .find(|r| r.record_type() == RecordType::SOA)
        }) {
            m.authorities.push(soa.clone());
        }
    }
    for r in &mut m.authorities {
        if let RData::SOA(soa) = &r.data {
            r.ttl = soa_negative_ttl(r.ttl, soa.minimum);
        }
    }
}

/// The upstream's answer relayed (negative answers with their SOA, RFC 2308), or SERVFAIL when
/// no upstream gave a usable one.
fn relay_or_servfail(
    engine: &Engine,
    req: &Message,
    ctx: Ctx,
    up: Result<Message, UpstreamError>,
) -> Message {
    match up {
        Ok(up) => {
            let mut m = relay(req, ctx, up);
            negative_soa(&mut m, req.queries[0].query_type(), None);
            m
        }
        Err(_) => servfail(engine, req, ctx),
    }
}

async fn answer(engine: &Engine, req: &Message, ctx: Ctx) -> Message {
    let policy = &engine.settings.policy;
    let q = &req.queries[0];
    let qn = normalize_name(&q.name().to_ascii());
    let qtype = q.query_type();

    // RFC 8880 §7: ipv4only.arpa and the reverse names of its addresses are answered here,
    // whatever the upstream thinks.
    if let Some(how) = ipv4only::local_answer(&qn, u16::from(qtype)) {
        return local(engine, req, ctx, &qn, how);
    }

    // RFC 6147 §5.3.1: reverse lookups of synthesized addresses become a CNAME into in-addr.arpa.
    if qtype == RecordType::PTR {
        if let Some(target) = policy.ptr_target(&qn) {
            engine.stats.inc(Counter::PtrCname);
            let Ok(tname) = Name::from_ascii(&target) else {
                return servfail(engine, req, ctx);
            };
            let cname = Record::from_rdata(
                q.name().clone(),
                NO_SOA_TTL,
                RData::CNAME(CNAME(tname.clone())),
            );
            // RFC 8880 §7.2.1: the synthesized ipv4only.arpa addresses end at the local PTR.
            if let Some(how) = ipv4only::local_answer(&target, u16::from(RecordType::PTR)) {
                let mut m = local(engine, req, ctx, &target, how);
                if let Some(r) = m.answers.first_mut() {
                    r.name = tname;
                }
                m.answers.insert(0, cname);
                return m;
            }
            return match ask(engine, &tname, RecordType::PTR, ctx).await {
                Ok(up) => {
                    let mut m = relay(req, ctx, up);
                    m.answers.insert(0, cname);
                    negative_soa(&mut m, qtype, None);
                    m
                }
                Err(_) => servfail(engine, req, ctx),
            };
        }
    }

    if qtype != RecordType::AAAA {
        let up = ask(engine, q.name(), qtype, ctx).await;
        return relay_or_servfail(engine, req, ctx, up);
    }

    // RFC 6147 §5.5: a client that sets CD validates itself; synthesis would fail its validation.
    // DEVIATION(RFC 6147 §5.5): the RFC forbids synthesis only for CD with DO; we also pass
    // through for CD without DO (the client asked for unchecked upstream data), unless
    // `break_dnssec` is set.
    let mode = if ctx.synthesize {
        policy.domain_mode(&qn)
    } else {
        DomainMode::Never
    };
    if mode == DomainMode::Never || (ctx.cd && !engine.settings.break_dnssec) {
        let up = ask(engine, q.name(), qtype, ctx).await;
        return relay_or_servfail(engine, req, ctx, up);
    }

    // RFC 6147 §5.1.8: optionally ask A at the same time (one round trip instead of two for
    // IPv4-only names, one extra A query for the others).
    let (aaaa, early_a) = if engine.settings.parallel_queries {
        let (x, y) = tokio::join!(
            ask(engine, q.name(), RecordType::AAAA, ctx),
            ask(engine, q.name(), RecordType::A, ctx)
        );
        (x, Some(y))
    } else {
        (ask(engine, q.name(), RecordType::AAAA, ctx).await, None)
    };
    let outcome = match &aaaa {
        Ok(m) => Upstream::Rcode(u16::from(m.metadata.response_code)),
        Err(UpstreamError::Timeout) => Upstream::Timeout,
        // Every upstream refused or failed: an error RCODE for §5.1.2.
        Err(UpstreamError::Failed) => Upstream::Rcode(u16::from(ResponseCode::ServFail)),
    };
    let core_aaaa = aaaa
        .as_ref()
        .map(|m| to_core(&m.answers))
        .unwrap_or_default();
    let plan = policy.plan_aaaa(&qn, mode, outcome, &core_aaaa);
    if plan == AaaaPlan::QueryA {
        let neg = aaaa.as_ref().ok().and_then(negative_ttl);
        let a = match early_a {
            Some(a) => a,
            None => ask(engine, q.name(), RecordType::A, ctx).await,
        };
        if let Ok(am) = &a {
            if am.metadata.response_code == ResponseCode::NoError {
                if let Some(rrs) = policy.synthesize_answer(&qn, &to_core(&am.answers), neg) {
                    engine.stats.inc(Counter::Synthesized);
                    let mut m = skeleton(req, ctx, ResponseCode::NoError);
                    // §5.5: we did not validate the synthesized data.
                    m.metadata.authentic_data = false;
                    m.answers = rrs.iter().filter_map(from_core).collect();
                    // §5.4: authority and additional from the response to the final query (the
                    // A query); §5.3.2: the additional section unchanged, never synthesized.
                    m.authorities.clone_from(&am.authorities);
                    m.additionals.clone_from(&am.additionals);
                    if engine.settings.edns_ede {
                        if let Some(e) = m.edns.as_mut() {
                            e.options_mut().insert(EdnsOption::Unknown(
                                EDNS_EDE,
                                EDE_SYNTHESIZED.to_be_bytes().to_vec(),
                            ));
                        }
                    }
                    return m;
                }
            }
        }
        // Nothing to synthesize. §5.1.6: the empty result or error is the basis of the answer;
        // RFC 2308: a negative answer carries the SOA the upstream gave (AAAA or A response).
        let a = a.ok();
        return match aaaa {
            Ok(m) if m.metadata.response_code == ResponseCode::NoError => {
                let mut out = filtered(engine, req, ctx, m);
                negative_soa(&mut out, qtype, a.as_ref());
                out
            }
            aaaa => match a {
                Some(am)
                    if matches!(
                        am.metadata.response_code,
                        ResponseCode::NoError | ResponseCode::NXDomain
                    ) =>
                {
                    let mut m = relay(req, ctx, am);
                    // §5.1.4 holds here too: an A response may carry AAAA records.
                    m.answers.retain(|r| match &r.data {
                        RData::A(_) => false,
                        RData::AAAA(a) => !policy.excluded(a.0),
                        _ => true,
                    });
                    m.metadata.authentic_data = false;
                    negative_soa(&mut m, qtype, aaaa.as_ref().ok());
                    m
                }
                _ => match aaaa {
                    Ok(m) => {
                        let mut out = filtered(engine, req, ctx, m);
                        negative_soa(&mut out, qtype, None);
                        out
                    }
                    Err(_) => servfail(engine, req, ctx),
                },
            },
        };
    }
    match aaaa {
        Ok(m) => {
            let mut out = filtered(engine, req, ctx, m);
            negative_soa(&mut out, qtype, None);
            out
        }
        Err(_) => servfail(engine, req, ctx),
    }
}

/// §5.1.4: the AAAA answer without records in the exclusion set (which MUST NOT be returned).
fn filtered(engine: &Engine, req: &Message, ctx: Ctx, up: Message) -> Message {
    let mut m = relay(req, ctx, up);
    let before = m.answers.len();
    let policy = &engine.settings.policy;
    m.answers.retain(|r| match &r.data {
        RData::AAAA(a) => !policy.excluded(a.0),
        _ => true,
    });
    if m.answers.len() != before {
        engine.stats.inc(Counter::ExcludedAaaa);
    }
    m
}
