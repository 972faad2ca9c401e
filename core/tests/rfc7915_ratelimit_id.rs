//! Translator settings that change what leaves the box: the ICMP error rate limit and switch
//! (RFC 7915 §4.4/§5.4), and IPv4 Identification generation (RFC 7915 §5.1). Inputs are built with
//! etherparse (`common`), outputs read with etherparse.

mod common;
use common::*;
use etherparse::{NetHeaders, PacketHeaders};
use nat64_core::siit::Siit;
use nat64_core::{Ctx, DropReason, Timestamp, Verdict, AUX_LEN, HEADROOM};

fn siit_xlat(f: impl FnOnce(&mut nat64_core::rfc7915::XlatConfig)) -> Siit {
    let mut c = config(false);
    f(&mut c.xlat);
    Siit::new(c)
}

fn translate(s: &Siit, ctx: &mut Ctx, pkt: &[u8]) -> (Verdict, Vec<u8>) {
    let mut buf = vec![0xa5u8; HEADROOM + pkt.len()];
    buf[HEADROOM..].copy_from_slice(pkt);
    let mut aux = vec![0xa5u8; AUX_LEN];
    let v = s.translate(ctx, &mut buf, HEADROOM, pkt.len(), &mut aux);
    let out = match v {
        Verdict::Forward { start, len } => buf[start..start + len].to_vec(),
        Verdict::IcmpError { len, .. } | Verdict::ForwardAux { len } => aux[..len].to_vec(),
        Verdict::Drop(_) => Vec::new(),
    };
    (v, out)
}

/// How many of `n` hop-limit-expiring packets are answered with Time Exceeded at time `now_ms`;
/// every other one must be a silent drop with the same reason.
fn errors_sent(s: &Siit, ctx: &mut Ctx, now_ms: u64, n: usize) -> usize {
    ctx.now = Timestamp(now_ms);
    let p = udp6(v6(V6_CLIENT), wkp(V4_SERVER), 1, b"ttl");
    let mut sent = 0;
    for _ in 0..n {
        match translate(s, ctx, &p).0 {
            Verdict::IcmpError {
                reason: DropReason::HopLimitExceeded,
                ..
            } => sent += 1,
            Verdict::Drop(DropReason::HopLimitExceeded) => {}
            v => panic!("{v:?}"),
        }
    }
    sent
}

/// §4.4/§5.4 "rate-limited": the first burst is the configured rate (one second's worth), then
/// the bucket refills at that rate.
#[test]
fn icmp_error_burst_and_refill_follow_the_configured_rate() {
    for rate in [1u32, 10, 1000] {
        let s = siit_xlat(|x| x.icmp_errors_per_sec = rate);
        let mut ctx = Ctx::new(Timestamp(5_000), 3);
        let r = rate as usize;
        assert_eq!(
            errors_sent(&s, &mut ctx, 5_000, r + 50),
            r,
            "rate {rate}: the first burst"
        );
        // No time passed: nothing more.
        assert_eq!(errors_sent(&s, &mut ctx, 5_000, 5), 0, "rate {rate}: empty");
        // A tenth of a second refills a tenth of the rate (none at rate 1).
        assert_eq!(
            errors_sent(&s, &mut ctx, 5_100, r + 5),
            r / 10,
            "rate {rate}: 100 ms refill"
        );
        // A long pause refills one second's worth, never more.
        assert_eq!(
            errors_sent(&s, &mut ctx, 60_000, r + 50),
            r,
            "rate {rate}: refill capped at the rate"
        );
    }
    // 0 = unlimited.
    let s = siit_xlat(|x| x.icmp_errors_per_sec = 0);
    let mut ctx = Ctx::new(Timestamp(5_000), 3);
    assert_eq!(errors_sent(&s, &mut ctx, 5_000, 3000), 3000);
}

/// `send_icmp_errors = false`: the same packets are dropped for the same reason, silently, for
/// the translator's own errors and its §5.4 discard errors alike.
#[test]
fn send_icmp_errors_false_sends_none() {
    let s = siit_xlat(|x| {
        x.send_icmp_errors = false;
        x.icmp_errors_per_sec = 0;
        x.discard_errors = nat64_core::rfc7915::DiscardErrors::Sent;
    });
    let mut ctx = Ctx::new(Timestamp(5_000), 3);
    assert_eq!(errors_sent(&s, &mut ctx, 5_000, 200), 0);
    let p = udp6(v6(V6_CLIENT), v6("2001:db8:99::1"), 64, b"x");
    assert_eq!(
        translate(&s, &mut ctx, &p).0,
        Verdict::Drop(DropReason::UntranslatableDestination)
    );
    // The same packets with errors on.
    let s = siit_xlat(|x| x.icmp_errors_per_sec = 0);
    assert_eq!(errors_sent(&s, &mut ctx, 5_000, 200), 200);
}

fn ipv4_id_df(out: &[u8]) -> (u16, bool) {
    let h = PacketHeaders::from_ip_slice(out).expect("IPv4 output");
    let Some(NetHeaders::Ipv4(ip, _)) = h.net else {
        panic!("not IPv4")
    };
    (ip.identification, ip.dont_fragment)
}

/// §5.1: an IPv6 packet without a Fragment header gets its Identification from a generator
/// (whatever its size: DF=0 at or below 1260 bytes, DF=1 above); `generate_ipv4_id = false`
/// sends 0 and leaves DF as §5.1 sets it.
#[test]
fn ipv4_identification_generator_on_and_off() {
    let small = udp6(v6(V6_CLIENT), wkp(V4_SERVER), 64, &[1; 100]);
    let large = udp6(v6(V6_CLIENT), wkp(V4_SERVER), 64, &[2; 1300]);
    for generate in [true, false] {
        let s = siit_xlat(|x| x.generate_ipv4_id = generate);
        let mut ctx = Ctx::new(Timestamp(5_000), 3);
        let mut ids = Vec::new();
        for (p, want_df) in [
            (&small, false),
            (&large, true),
            (&small, false),
            (&small, false),
        ] {
            let (v, out) = translate(&s, &mut ctx, p);
            assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
            let (id, df) = ipv4_id_df(&out);
            assert_eq!(df, want_df, "§5.1 DF for {} bytes", out.len());
            assert!(v4_header_ok(&out));
            ids.push(id);
        }
        if generate {
            let mut uniq = ids.clone();
            uniq.sort_unstable();
            uniq.dedup();
            assert_eq!(uniq.len(), ids.len(), "IDs differ between packets: {ids:?}");
            assert!(!ids.contains(&0), "{ids:?}");
        } else {
            assert_eq!(ids, [0, 0, 0, 0]);
        }
    }
}
