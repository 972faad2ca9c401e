//! Both worker loops (plain and offload) in NAT64 mode read a group of packets, hand the whole
//! group to `Nat64::prefetch`, and then translate each packet from its own buffer: 40 new UDP
//! flows out (IPv6→IPv4) and their 40 replies back (IPv4→IPv6) come out translated, in order,
//! with valid checksums, and every packet went through the prefetch (the replies all found their
//! session there). The loops run as in the daemon, on an in-memory queue.

use arc_swap::ArcSwap;
use etherparse::{NetHeaders, PacketBuilder, PacketHeaders, TransportHeader};
use nat64_core::nat64::{Nat64, Nat64Config};
use nat64_core::pool6::Pool6;
use nat64_core::rfc6052::Prefix6052;
use nat64_core::{Ctx, Verdict};
use nat64d::dataplane::{run_worker, run_worker_offload, Queue};
use nat64d::stats::WorkerStats;
use nat64d::xlator::{Translator, Xlate};
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tun_rs::{ExpandBuffer, GROTable, InterruptEvent};

const FLOWS: usize = 40;
const POOL4: [u8; 4] = [192, 0, 2, 1];
const SERVER4: [u8; 4] = [198, 51, 100, 10];
const SERVER6: [u8; 16] = [
    0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 198, 51, 100, 10,
];

/// The daemon's translator, watched: how many prefetch calls, packets handed to them, and
/// sessions they found.
struct Watched {
    inner: Translator,
    calls: AtomicUsize,
    seen: AtomicUsize,
    found: AtomicUsize,
}

impl Xlate for Watched {
    fn translate(
        &self,
        ctx: &mut Ctx,
        buf: &mut [u8],
        start: usize,
        len: usize,
        aux: &mut [u8],
    ) -> Verdict {
        self.inner.translate(ctx, buf, start, len, aux)
    }
    fn take_released(
        &self,
        ctx: &mut Ctx,
        buf: &mut [u8],
        start: usize,
        aux: &mut [u8],
    ) -> Option<Verdict> {
        self.inner.take_released(ctx, buf, start, aux)
    }
    fn prefetch_batch(&self) -> usize {
        self.inner.prefetch_batch()
    }
    fn prefetch<'p, I: IntoIterator<Item = &'p [u8]>>(&self, pkts: I) -> usize {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let seen = &self.seen;
        let found = self.inner.prefetch(pkts.into_iter().inspect(|_| {
            seen.fetch_add(1, Ordering::Relaxed);
        }));
        self.found.fetch_add(found, Ordering::Relaxed);
        found
    }
}

/// Packets to read, packets written. A multi-segment read returns up to `per_read` packets. Readable until the inputs run out, then it stops the worker.
struct MemQueue {
    input: Mutex<VecDeque<Vec<u8>>>,
    output: Mutex<Vec<Vec<u8>>>,
    per_read: usize,
    stop: Arc<InterruptEvent>,
}

impl Queue for &MemQueue {
    fn set_nonblocking(&self, _on: bool) -> io::Result<()> {
        Ok(())
    }
    fn wait_readable_intr(&self, _stop: &InterruptEvent) -> io::Result<()> {
        if self.input.lock().unwrap().is_empty() {
            self.stop.trigger()?;
            return Err(io::ErrorKind::Interrupted.into());
        }
        Ok(())
    }
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let p = self.input.lock().unwrap().pop_front();
        let p = p.ok_or(io::ErrorKind::WouldBlock)?;
        buf[..p.len()].copy_from_slice(&p);
        Ok(p.len())
    }
    fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.output.lock().unwrap().push(buf.to_vec());
        Ok(buf.len())
    }
    fn recv_multiple<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        _raw: &mut [u8],
        bufs: &mut [B],
        sizes: &mut [usize],
        offset: usize,
    ) -> io::Result<usize> {
        let mut input = self.input.lock().unwrap();
        if input.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut n = 0;
        while n < self.per_read.min(bufs.len()) {
            let Some(p) = input.pop_front() else { break };
            bufs[n].as_mut()[offset..offset + p.len()].copy_from_slice(&p);
            sizes[n] = p.len();
            n += 1;
        }
        Ok(n)
    }
    fn send_multiple<B: ExpandBuffer>(
        &self,
        _gro: &mut GROTable,
        bufs: &mut [B],
        offset: usize,
    ) -> io::Result<usize> {
        let mut o = self.output.lock().unwrap();
        for b in bufs.iter() {
            o.push(b.as_ref()[offset..].to_vec());
        }
        Ok(bufs.len())
    }
}

fn client6(i: usize) -> [u8; 16] {
    let mut a = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    a[15] = 1 + (i % 4) as u8;
    a
}

fn payload(i: usize) -> [u8; 8] {
    [b'f', b'l', b'o', b'w', 0, 0, 0, i as u8]
}

/// FLOWS new UDP flows from four IPv6 hosts to 64:ff9b::198.51.100.10 port 53.
fn requests() -> Vec<Vec<u8>> {
    (0..FLOWS)
        .map(|i| {
            let mut v = Vec::new();
            PacketBuilder::ipv6(client6(i), SERVER6, 64)
                .udp(20000 + i as u16, 53)
                .write(&mut v, &payload(i))
                .expect("build");
            v
        })
        .collect()
}

/// Runs one worker loop over `input`; returns what it wrote.
fn run(t: &Arc<ArcSwap<Watched>>, input: Vec<Vec<u8>>, offload: bool) -> Vec<Vec<u8>> {
    let stop = Arc::new(InterruptEvent::new().expect("eventfd"));
    let q = MemQueue {
        input: Mutex::new(input.into()),
        output: Mutex::new(Vec::new()),
        // One packet per read, as for packets the kernel did not aggregate: the offload loop
        // gathers reads into a group.
        per_read: 1,
        stop: stop.clone(),
    };
    let stats = Arc::new(WorkerStats::default());
    if offload {
        run_worker_offload(0, &q, 1500, t.clone(), stats, stop, Instant::now()).expect("worker");
    } else {
        run_worker(0, &q, t.clone(), stats, stop, Instant::now()).expect("worker");
    }
    let out = q.output.lock().unwrap().clone();
    out
}

/// (source address, source port, destination address, destination port, payload) of a UDP
/// packet whose checksum verifies (etherparse computes it).
type Udp = (Vec<u8>, u16, Vec<u8>, u16, Vec<u8>);

fn udp(p: &[u8]) -> Udp {
    let h = PacketHeaders::from_ip_slice(p).expect("parses");
    let Some(TransportHeader::Udp(u)) = h.transport else {
        panic!("not UDP: {p:02x?}")
    };
    let data = h.payload.slice().to_vec();
    let (src, dst, ck) = match h.net {
        Some(NetHeaders::Ipv4(ip, _)) => {
            assert_eq!(
                ip.header_checksum,
                ip.calc_header_checksum(),
                "IPv4 header checksum"
            );
            (
                ip.source.to_vec(),
                ip.destination.to_vec(),
                u.calc_checksum_ipv4(&ip, &data).expect("checksum"),
            )
        }
        Some(NetHeaders::Ipv6(ip, _)) => (
            ip.source.to_vec(),
            ip.destination.to_vec(),
            u.calc_checksum_ipv6(&ip, &data).expect("checksum"),
        ),
        _ => panic!("not IP"),
    };
    assert_eq!(u.checksum, ck, "UDP checksum of {p:02x?}");
    (src, u.source_port, dst, u.destination_port, data)
}

fn round_trip(offload: bool) {
    let pool6 = Pool6::new(vec![Prefix6052::WKP], false).expect("pool6");
    let mut c = Nat64Config::new(pool6, vec![POOL4.into()], 5);
    c.max_sessions = 1000;
    c.shards = 4;
    let nat = Nat64::new(c).expect("nat64");
    let w = Watched {
        inner: Translator::Nat64(Arc::new(nat)),
        calls: AtomicUsize::new(0),
        seen: AtomicUsize::new(0),
        found: AtomicUsize::new(0),
    };
    let t = Arc::new(ArcSwap::from_pointee(w));

    // Out: every new flow translated, in order, from the pool4 address; no session yet.
    let out = run(&t, requests(), offload);
    assert_eq!(out.len(), FLOWS, "every request translated");
    let mut replies = Vec::new();
    for (i, p) in out.iter().enumerate() {
        let (src, sport, dst, dport, data) = udp(p);
        assert_eq!((src.as_slice(), dst.as_slice()), (&POOL4[..], &SERVER4[..]));
        assert_eq!(
            (dport, data.as_slice()),
            (53, &payload(i)[..]),
            "packet {i}"
        );
        let mut v = Vec::new();
        PacketBuilder::ipv4(SERVER4, POOL4, 64)
            .udp(53, sport)
            .write(&mut v, &data)
            .expect("build");
        replies.push(v);
    }
    let g = t.load();
    assert!(g.calls.load(Ordering::Relaxed) > 1, "prefetched in groups");
    assert_eq!(
        g.seen.load(Ordering::Relaxed),
        FLOWS,
        "every request prefetched"
    );
    assert_eq!(
        g.found.load(Ordering::Relaxed),
        0,
        "no session before the first packet"
    );

    // Back: each reply reaches its own IPv6 host and port, and found its session in prefetch.
    let back = run(&t, replies, offload);
    assert_eq!(back.len(), FLOWS, "every reply translated");
    for (i, p) in back.iter().enumerate() {
        let (src, sport, dst, dport, data) = udp(p);
        assert_eq!((src.as_slice(), sport), (&SERVER6[..], 53), "packet {i}");
        assert_eq!(
            (dst.as_slice(), dport, data.as_slice()),
            (&client6(i)[..], 20000 + i as u16, &payload(i)[..]),
            "packet {i}"
        );
    }
    assert_eq!(
        g.seen.load(Ordering::Relaxed),
        2 * FLOWS,
        "every reply prefetched"
    );
    assert_eq!(
        g.found.load(Ordering::Relaxed),
        FLOWS,
        "every reply's session found"
    );
}

#[test]
fn the_plain_worker_prefetches_and_translates_each_packet_of_a_group() {
    round_trip(false);
}

#[test]
fn the_offload_worker_prefetches_and_translates_each_segment_of_a_group() {
    round_trip(true);
}
