//! RFC 6147 §5.1 and §5.5 through the real server, against a mock upstream on loopback.

mod dns64_support;

use dns64_support::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{RData, RecordType};
use nat64d::dns64::{Counter, Dns64Config};

type Rt = RecordType;

async fn setup(f: impl FnOnce(&mut Dns64Config)) -> (Mock, nat64d::dns64::Dns64Server) {
    let mock = start_mock().await;
    let mut cfg = config(&mock);
    f(&mut cfg);
    let server = start(cfg).await;
    (mock, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthesizes_from_a_with_ttl_capped_by_soa_minimum() {
    let (_mock, s) = setup(|_| {}).await;
    let r = ask(s.local_addrs()[0], &query("v4only.test.", Rt::AAAA))
        .await
        .unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        aaaas(&r),
        vec![v6("64:ff9b::1.2.3.4"), v6("64:ff9b::5.6.7.8")]
    );
    // §5.1.7: min(A TTL 3600, SOA MINIMUM 300).
    assert!(r.answers.iter().all(|a| a.ttl == 300), "{:?}", r.answers);
    assert!(!r.metadata.authentic_data, "synthesized data is never AD");
    assert_eq!(s.stats().get(Counter::Synthesized), 1);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_rule_variants() {
    let (_mock, s) = setup(|_| {}).await;
    let addr = s.local_addrs()[0];
    // No SOA: min(A TTL 7200, 600).
    let r = ask(addr, &query("nosoa.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(
        r.answers.iter().map(|a| a.ttl).collect::<Vec<_>>(),
        vec![600]
    );
    // A TTL below the SOA's MINIMUM.
    let r = ask(addr, &query("lowttl.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(
        r.answers.iter().map(|a| a.ttl).collect::<Vec<_>>(),
        vec![60]
    );
    // SOA TTL 120 below its MINIMUM 900 (RFC 2308 §5 takes the smaller).
    let r = ask(addr, &query("soattl.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(
        r.answers.iter().map(|a| a.ttl).collect::<Vec<_>>(),
        vec![120]
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_aaaa_passes_and_exclusion_set_applies() {
    let (mock, s) = setup(|_| {}).await;
    let addr = s.local_addrs()[0];
    let r = ask(addr, &query("dual.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(aaaas(&r), vec![v6("2001:db8::1")]);
    assert_eq!(
        mock.count("dual.test.", Rt::A),
        0,
        "no A query when AAAA exists"
    );
    // Only ::ffff:0:0/96 AAAA: treated as empty, synthesized from A.
    let r = ask(addr, &query("mapped6.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(aaaas(&r), vec![v6("64:ff9b::1.2.3.4")]);
    // Mixed: the excluded record is removed, the other passes.
    let r = ask(addr, &query("mixed.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(aaaas(&r), vec![v6("2001:db8::2")]);
    assert!(s.stats().get(Counter::ExcludedAaaa) >= 1);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cname_chain_is_kept_and_synthesis_at_its_end() {
    let (_mock, s) = setup(|_| {}).await;
    let r = ask(s.local_addrs()[0], &query("chain.test.", Rt::AAAA))
        .await
        .unwrap();
    assert_eq!(r.answers.len(), 2, "{:?}", r.answers);
    match &r.answers[0].data {
        RData::CNAME(c) => assert_eq!(c.0.to_ascii(), "target.test."),
        other => panic!("first record should be the CNAME, got {other:?}"),
    }
    assert_eq!(r.answers[1].name.to_ascii(), "target.test.");
    assert_eq!(aaaas(&r), vec![v6("64:ff9b::9.9.9.9")]);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nxdomain_passes_even_through_a_cname() {
    let (mock, s) = setup(|_| {}).await;
    let addr = s.local_addrs()[0];
    let r = ask(addr, &query("nx.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    let r = ask(addr, &query("nxchain.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(r.answers.len(), 1, "the CNAME stays");
    assert_eq!(
        mock.count("nx.test.", Rt::A) + mock.count("nxchain.test.", Rt::A),
        0
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servfail_and_timeout_are_treated_as_empty() {
    let (_mock, s) = setup(|_| {}).await;
    let addr = s.local_addrs()[0];
    let r = ask(addr, &query("servfail.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(aaaas(&r), vec![v6("64:ff9b::1.2.3.4")]);
    let r = ask(addr, &query("silent.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(aaaas(&r), vec![v6("64:ff9b::1.2.3.4")]);
    s.shutdown().await;
    // Switched off: the error passes, a timeout is SERVFAIL.
    let (_mock, s) = setup(|c| {
        c.synthesize_on_error = false;
        c.synthesize_on_timeout = false;
    })
    .await;
    let addr = s.local_addrs()[0];
    let r = ask(addr, &query("servfail.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    let r = ask(addr, &query("silent.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wkp_never_carries_non_global_and_mapped_ranges_limit() {
    let (_mock, s) = setup(|_| {}).await;
    // 10.1.2.3 and 192.0.2.7 are not global: nothing behind 64:ff9b::/96, NODATA.
    let r = ask(s.local_addrs()[0], &query("private.test.", Rt::AAAA))
        .await
        .unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(aaaas(&r).is_empty());
    s.shutdown().await;
    // A network-specific prefix carries them.
    let (_mock, s) = setup(|c| c.prefixes = vec!["2001:db8:64::/96".into()]).await;
    let r = ask(s.local_addrs()[0], &query("private.test.", Rt::AAAA))
        .await
        .unwrap();
    assert_eq!(
        aaaas(&r),
        vec![v6("2001:db8:64::10.1.2.3"), v6("2001:db8:64::192.0.2.7")]
    );
    s.shutdown().await;
    // Mapped ranges.
    let (_mock, s) = setup(|c| c.mapped = vec!["8.8.0.0/16".into()]).await;
    let r = ask(s.local_addrs()[0], &query("ranges.test.", Rt::AAAA))
        .await
        .unwrap();
    assert_eq!(aaaas(&r), vec![v6("64:ff9b::8.8.8.8")]);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_prefixes_like_bind() {
    let (_mock, s) =
        setup(|c| c.prefixes = vec!["64:ff9b::/96".into(), "2001:db8:122::/48".into()]).await;
    let r = ask(s.local_addrs()[0], &query("lowttl.test.", Rt::AAAA))
        .await
        .unwrap();
    assert_eq!(
        aaaas(&r),
        vec![v6("64:ff9b::1.2.3.4"), v6("2001:db8:122:102:3:400::")]
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_and_always_lists() {
    let (mock, s) = setup(|c| {
        c.never_synthesize = vec!["never.test".into()];
        c.always_synthesize = vec!["always.test".into()];
    })
    .await;
    let addr = s.local_addrs()[0];
    let r = ask(addr, &query("never.test.", Rt::AAAA)).await.unwrap();
    assert!(aaaas(&r).is_empty());
    assert_eq!(mock.count("never.test.", Rt::A), 0);
    let r = ask(addr, &query("always.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(aaaas(&r), vec![v6("64:ff9b::1.2.3.4")]);
    // Other names are unaffected (translate-all is off by default).
    let r = ask(addr, &query("dual.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(aaaas(&r), vec![v6("2001:db8::1")]);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnssec_do_synthesizes_cd_passes_through() {
    let (mock, s) = setup(|_| {}).await;
    let addr = s.local_addrs()[0];
    // DO without CD: synthesized, AD clear, DO forwarded.
    let r = ask(addr, &with_edns(query("v4only.test.", Rt::AAAA), true))
        .await
        .unwrap();
    assert_eq!(aaaas(&r).len(), 2);
    assert!(!r.metadata.authentic_data);
    assert!(r.edns.as_ref().unwrap().flags().dnssec_ok);
    assert!(mock
        .all()
        .iter()
        .any(|q| q.name == "v4only.test." && q.dnssec_ok));
    // CD (and DO): the upstream's AAAA answer as it is, CD forwarded, no A query.
    let mut q = with_edns(query("nosoa.test.", Rt::AAAA), true);
    q.metadata.checking_disabled = true;
    let r = ask(addr, &q).await.unwrap();
    assert!(aaaas(&r).is_empty());
    assert!(r.metadata.checking_disabled);
    assert_eq!(mock.count("nosoa.test.", Rt::A), 0);
    assert!(mock.all().iter().any(|q| q.name == "nosoa.test." && q.cd));
    s.shutdown().await;
    // break_dnssec: synthesize even with CD.
    let (_mock, s) = setup(|c| c.break_dnssec = true).await;
    let mut q = with_edns(query("nosoa.test.", Rt::AAAA), true);
    q.metadata.checking_disabled = true;
    let r = ask(s.local_addrs()[0], &q).await.unwrap();
    assert_eq!(aaaas(&r), vec![v6("64:ff9b::1.2.3.4")]);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_dns_error_synthesized() {
    let (_mock, s) = setup(|_| {}).await;
    let addr = s.local_addrs()[0];
    let r = ask(addr, &with_edns(query("lowttl.test.", Rt::AAAA), false))
        .await
        .unwrap();
    let opt = r.edns.as_ref().unwrap().option(EdnsCode::Unknown(15));
    assert_eq!(opt, Some(&EdnsOption::Unknown(15, vec![0, 29])));
    // Without EDNS in the query, no OPT in the answer.
    let r = ask(addr, &query("nosoa.test.", Rt::AAAA)).await.unwrap();
    assert!(r.edns.is_none());
    s.shutdown().await;
    let (_mock, s) = setup(|c| c.edns_ede = false).await;
    let r = ask(
        s.local_addrs()[0],
        &with_edns(query("lowttl.test.", Rt::AAAA), false),
    )
    .await
    .unwrap();
    assert!(r
        .edns
        .as_ref()
        .unwrap()
        .option(EdnsCode::Unknown(15))
        .is_none());
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_answers_second_query_with_its_own_id_and_case() {
    let (mock, s) = setup(|_| {}).await;
    let addr = s.local_addrs()[0];
    let first = ask(addr, &query("v4only.test.", Rt::AAAA)).await.unwrap();
    let q2 = query("V4Only.TEST.", Rt::AAAA);
    let second = ask(addr, &q2).await.unwrap();
    assert_eq!(mock.count("v4only.test.", Rt::AAAA), 1, "served from cache");
    assert_eq!(s.stats().get(Counter::CacheHits), 1);
    assert_eq!(second.queries[0].name().to_ascii(), "V4Only.TEST.");
    assert_eq!(aaaas(&second), aaaas(&first));
    assert!(second.answers.iter().all(|a| a.ttl <= 300));
    // DO is part of the key.
    let _ = ask(addr, &with_edns(query("v4only.test.", Rt::AAAA), true))
        .await
        .unwrap();
    assert_eq!(mock.count("v4only.test.", Rt::AAAA), 2);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_types_are_forwarded() {
    let (_mock, s) = setup(|_| {}).await;
    let addr = s.local_addrs()[0];
    let r = ask(addr, &query("v4only.test.", Rt::A)).await.unwrap();
    assert_eq!(r.answers.len(), 2);
    let r = ask(addr, &query("plain.test.", Rt::TXT)).await.unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(r.authorities.len(), 1, "SOA of the NODATA kept");
    // RD=0 is answered too (hickory's Catalog would refuse it).
    let mut q = query("dual.test.", Rt::AAAA);
    q.metadata.recursion_desired = false;
    let r = ask(addr, &q).await.unwrap();
    assert_eq!(aaaas(&r), vec![v6("2001:db8::1")]);
    assert!(!r.metadata.recursion_desired);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthesis_only_for_synthesize_clients_and_cached_apart() {
    let (_mock, s) = setup(|c| {
        c.listen = vec!["127.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()];
        c.synthesize_clients = vec!["::1/128".into()];
    })
    .await;
    let (v4, v6addr) = (s.local_addrs()[0], s.local_addrs()[1]);
    // ::1 gets synthesis (and the answer is cached)...
    let r = ask(v6addr, &query("lowttl.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(aaaas(&r), vec![v6("64:ff9b::1.2.3.4")]);
    // ...127.0.0.1 is served (it is in `allow`) but not synthesized, cache or not.
    for _ in 0..2 {
        let r = ask(v4, &query("lowttl.test.", Rt::AAAA)).await.unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(aaaas(&r).is_empty());
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_a_and_aaaa_queries_give_the_same_answers() {
    let (mock, s) = setup(|c| c.parallel_queries = true).await;
    let addr = s.local_addrs()[0];
    let r = ask(addr, &query("v4only.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(
        aaaas(&r),
        vec![v6("64:ff9b::1.2.3.4"), v6("64:ff9b::5.6.7.8")]
    );
    assert!(r.answers.iter().all(|a| a.ttl == 300));
    assert_eq!(
        mock.count("v4only.test.", Rt::A),
        1,
        "one A query, sent with the AAAA one"
    );
    let r = ask(addr, &query("dual.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(aaaas(&r), vec![v6("2001:db8::1")]);
    assert_eq!(
        mock.count("dual.test.", Rt::A),
        1,
        "the A query is sent anyway"
    );
    let r = ask(addr, &query("chain.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(aaaas(&r), vec![v6("64:ff9b::9.9.9.9")]);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_datagram_per_syscall_path_serves_the_same() {
    let (mock, s) = setup(|c| c.udp_batch = 1).await;
    let addr = s.local_addrs()[0];
    for _ in 0..2 {
        let r = ask(addr, &query("v4only.test.", Rt::AAAA)).await.unwrap();
        assert_eq!(
            aaaas(&r),
            vec![v6("64:ff9b::1.2.3.4"), v6("64:ff9b::5.6.7.8")]
        );
    }
    assert_eq!(mock.count("v4only.test.", Rt::AAAA), 1);
    assert_eq!(s.stats().get(Counter::CacheHits), 1);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthesized_answer_keeps_authority_and_additional_of_the_a_response() {
    // RFC 6147 §5.4: the authority and additional sections come from the response to the final
    // query (the A query); §5.3.2: the additional section is passed unchanged, never synthesized.
    let (_mock, s) = setup(|_| {}).await;
    let addr = s.local_addrs()[0];
    for _ in 0..2 {
        // Resolved, then from the cache.
        let r = ask(addr, &query("glue.test.", Rt::AAAA)).await.unwrap();
        assert_eq!(aaaas(&r), vec![v6("64:ff9b::1.2.3.4")]);
        // §5.1.6: the A records that formed the basis are removed from the answer.
        assert!(r.answers.iter().all(|a| a.record_type() == Rt::AAAA));
        let auth: Vec<_> = r
            .authorities
            .iter()
            .map(|a| (a.name.to_ascii(), a.record_type()))
            .collect();
        assert_eq!(auth, vec![("test.".to_string(), Rt::NS)], "authority");
        assert_eq!(r.additionals.len(), 1, "{:?}", r.additionals);
        let glue = &r.additionals[0];
        assert_eq!(glue.name.to_ascii(), "ns.test.");
        match &glue.data {
            RData::A(a) => assert_eq!(a.0, std::net::Ipv4Addr::new(192, 0, 2, 53)),
            other => panic!("the glue A passes unchanged, got {other:?}"),
        }
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ad_is_passed_only_to_clients_that_set_do() {
    // The mock sets AD on every answer. RFC 6147 §5.5 item 1 (no CD, no DO): AD MUST NOT be set
    // in any response; a DO client gets the upstream's AD on a relayed answer.
    let (_mock, s) = setup(|_| {}).await;
    let addr = s.local_addrs()[0];
    let r = ask(addr, &query("dual.test.", Rt::AAAA)).await.unwrap();
    assert_eq!(aaaas(&r), vec![v6("2001:db8::1")]);
    assert!(!r.metadata.authentic_data, "no DO: AD clear");
    let r = ask(addr, &with_edns(query("dual.test.", Rt::AAAA), true))
        .await
        .unwrap();
    assert_eq!(aaaas(&r), vec![v6("2001:db8::1")]);
    assert!(r.metadata.authentic_data, "DO: the upstream's AD kept");
    s.shutdown().await;
}
