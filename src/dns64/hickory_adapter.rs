//! The one file that knows hickory (pinned `=0.26.3`): DNS messages in and out, the resolution
//! steps of RFC 6147 §5 around the core's pure decisions, and TCP serving through hickory-server's
//! `Server` with our own `RequestHandler` (hickory's `Catalog`/forwarder refuses RD=0 queries and
//! hides sections that DNS64 needs).
//!
//! The decisions themselves (what to synthesize, the TTL, the exclusion set, the PTR mapping) are
//! in `nat64_core::dns64`; here we only convert records to and from its [`Rr`] values.

use super::{Admit, Counter, Engine};
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{
    Edns, Header, HeaderCounts, Message, MessageType, Metadata, OpCode, Query, ResponseCode,
};
use hickory_server::proto::rr::rdata::opt::EdnsOption;
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME};
use hickory_server::proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use hickory_server::Server;
use nat64_core::dns64::wire::{self, OUR_UDP_PAYLOAD};
use nat64_core::dns64::{
    ipv4only, normalize_name, soa_negative_ttl, AaaaPlan, DomainMode, Rr, RrData, Upstream,
    NO_SOA_TTL,
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
/// [`Engine::admit`]). The answer is cached when cacheable.
pub(super) async fn resolve(engine: &Engine, query: &[u8], src: SocketAddr) -> Option<Vec<u8>> {
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
        answer(engine, &req, ctx).await
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

/// Sends one upstream query and parses the answer; `None` on timeout or garbage.
async fn ask(engine: &Engine, name: &Name, qtype: RecordType, ctx: Ctx) -> Option<Message> {
    let mut q = Message::query();
    q.metadata.recursion_desired = true;
    q.metadata.checking_disabled = ctx.cd;
    q.add_query(Query::query(name.clone(), qtype));
    let mut e = Edns::new();
    e.set_max_payload(OUR_UDP_PAYLOAD);
    e.set_dnssec_ok(ctx.dnssec_ok);
    q.set_edns(e);
    let bytes = q.to_vec().ok()?;
    let ans = engine.upstream.query(&bytes).await.ok()?;
    match Message::from_vec(&ans) {
        Ok(m) => Some(m),
        Err(_) => {
            engine.stats.inc(Counter::UpstreamGarbage);
            None
        }
    }
}

fn servfail(engine: &Engine, req: &Message, ctx: Ctx) -> Message {
    engine.stats.inc(Counter::ServFail);
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

async fn answer(engine: &Engine, req: &Message, ctx: Ctx) -> Message {
    let policy = &engine.settings.policy;
    let q = &req.queries[0];
    let qn = normalize_name(&q.name().to_ascii());
    let qtype = q.query_type();

    // RFC 8880 §7: ipv4only.arpa is answered here, whatever the upstream thinks.
    if ipv4only::is_ipv4only(&qn) {
        engine.stats.inc(Counter::Ipv4Only);
        let mut m = skeleton(req, ctx, ResponseCode::NoError);
        m.metadata.authoritative = true;
        match qtype {
            RecordType::AAAA => {
                for a in ipv4only::aaaa_records(policy) {
                    m.add_answer(Record::from_rdata(
                        q.name().clone(),
                        ipv4only::TTL,
                        RData::AAAA(AAAA(a)),
                    ));
                }
            }
            RecordType::A => {
                for a in ipv4only::WELL_KNOWN_V4 {
                    m.add_answer(Record::from_rdata(
                        q.name().clone(),
                        ipv4only::TTL,
                        RData::A(A(a)),
                    ));
                }
            }
            _ => {}
        }
        return m;
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
            return match ask(engine, &tname, RecordType::PTR, ctx).await {
                Some(up) => {
                    let mut m = relay(req, ctx, up);
                    m.answers.insert(0, cname);
                    m
                }
                None => servfail(engine, req, ctx),
            };
        }
    }

    if qtype != RecordType::AAAA {
        return match ask(engine, q.name(), qtype, ctx).await {
            Some(up) => relay(req, ctx, up),
            None => servfail(engine, req, ctx),
        };
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
        return match ask(engine, q.name(), qtype, ctx).await {
            Some(up) => relay(req, ctx, up),
            None => servfail(engine, req, ctx),
        };
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
        Some(m) => Upstream::Rcode(u16::from(m.metadata.response_code)),
        None => Upstream::Timeout,
    };
    let core_aaaa = aaaa
        .as_ref()
        .map(|m| to_core(&m.answers))
        .unwrap_or_default();
    let plan = policy.plan_aaaa(&qn, mode, outcome, &core_aaaa);
    if plan == AaaaPlan::QueryA {
        let neg = aaaa.as_ref().and_then(negative_ttl);
        let a = match early_a {
            Some(a) => a,
            None => ask(engine, q.name(), RecordType::A, ctx).await,
        };
        if let Some(am) = &a {
            if am.metadata.response_code == ResponseCode::NoError {
                if let Some(rrs) = policy.synthesize_answer(&qn, &to_core(&am.answers), neg) {
                    engine.stats.inc(Counter::Synthesized);
                    let mut m = skeleton(req, ctx, ResponseCode::NoError);
                    // §5.5: we did not validate the synthesized data.
                    m.metadata.authentic_data = false;
                    m.answers = rrs.iter().filter_map(from_core).collect();
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
        // Nothing to synthesize. §5.1.6: the empty result or error is the basis of the answer.
        return match (aaaa, a) {
            (Some(m), _) if m.metadata.response_code == ResponseCode::NoError => {
                filtered(engine, req, ctx, m)
            }
            (_, Some(am))
                if matches!(
                    am.metadata.response_code,
                    ResponseCode::NoError | ResponseCode::NXDomain
                ) =>
            {
                let mut m = relay(req, ctx, am);
                m.answers.retain(|r| r.record_type() != RecordType::A);
                m.metadata.authentic_data = false;
                m
            }
            (Some(m), _) => filtered(engine, req, ctx, m),
            (None, _) => servfail(engine, req, ctx),
        };
    }
    match aaaa {
        Some(m) => filtered(engine, req, ctx, m),
        None => servfail(engine, req, ctx),
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

/// TCP through hickory-server.
pub(super) struct TcpServer {
    server: Server<TcpHandler>,
}

struct TcpHandler {
    engine: Arc<Engine>,
}

impl TcpServer {
    pub(super) fn start(engine: Arc<Engine>, listeners: Vec<tokio::net::TcpListener>) -> TcpServer {
        let timeout = engine.settings.tcp_timeout;
        let mut server = Server::new(TcpHandler { engine });
        for l in listeners {
            server.register_listener(l, timeout, 65535);
        }
        TcpServer { server }
    }

    pub(super) async fn shutdown(mut self) {
        let _ = self.server.shutdown_gracefully().await;
    }
}

fn info_of(m: &Message) -> ResponseInfo {
    ResponseInfo::from(Header {
        metadata: m.metadata,
        counts: HeaderCounts {
            queries: u16::try_from(m.queries.len()).unwrap_or(u16::MAX),
            answers: u16::try_from(m.answers.len()).unwrap_or(u16::MAX),
            authorities: u16::try_from(m.authorities.len()).unwrap_or(u16::MAX),
            additionals: u16::try_from(m.additionals.len()).unwrap_or(u16::MAX),
        },
    })
}

#[async_trait::async_trait]
impl RequestHandler for TcpHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let raw = request.as_slice();
        let src = request.src();
        let mut out = vec![0u8; 65535];
        let bytes = match self.engine.admit(raw, src, &mut out, false) {
            Admit::Answer(n) => {
                out.truncate(n);
                Some(out)
            }
            Admit::Drop => None,
            Admit::Slow { .. } => match self.engine.inflight.clone().try_acquire_owned() {
                Ok(_permit) => resolve(&self.engine, raw, src).await,
                Err(_) => {
                    self.engine.stats.inc(Counter::Overload);
                    None
                }
            },
        };
        let mut failed = Metadata::new(
            request.metadata.id,
            MessageType::Response,
            request.metadata.op_code,
        );
        failed.response_code = ResponseCode::ServFail;
        let fallback = ResponseInfo::from(Header {
            metadata: failed,
            counts: HeaderCounts::default(),
        });
        let Some(msg) = bytes.and_then(|b| Message::from_vec(&b).ok()) else {
            return fallback;
        };
        let info = info_of(&msg);
        let builder = MessageResponseBuilder::new(&request.queries, msg.edns.as_ref());
        let response = builder.build(
            msg.metadata,
            msg.answers.iter(),
            msg.authorities.iter(),
            std::iter::empty(),
            msg.additionals.iter(),
        );
        match response_handle.send_response(response).await {
            Ok(i) => i,
            Err(_) => {
                self.engine.stats.inc(Counter::SendError);
                info
            }
        }
    }
}
