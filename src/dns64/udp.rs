//! UDP serving: per listen address, `udp_threads` worker threads. By default they share one
//! socket, each blocked in its own `recvmmsg`: the kernel wakes one waiter per arriving datagram
//! and a woken thread takes everything queued, so a query waits only while every thread is busy
//! or descheduled. With `udp_reuseport = true` each thread has its own `SO_REUSEPORT` socket and
//! the kernel hashes each client address and port to one of them: a query then waits whenever
//! its own thread is off the CPU, even with the other idle, which on a loaded machine is what
//! sets the p99 (issue 11: 5x Unbound's at the same load in one run). Each thread runs the fast
//! path on its own buffers and answers a batch as soon as it has handled it (`MSG_WAITFORONE`:
//! never waiting for more datagrams); misses are resolved on the tokio runtime, bounded by
//! `max_inflight`, and answered on the socket they came from.

use super::{hickory_adapter, Admit, Counter, Engine};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const RECV_BUF: usize = 4 << 20;

fn socket(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // `[::]` serves IPv4 clients too (as ::ffff:a.b.c.d, normalized before the ACL).
        s.set_only_v6(false)?;
    }
    s.set_reuse_port(true)?;
    let _ = s.set_recv_buffer_size(RECV_BUF);
    let _ = s.set_send_buffer_size(RECV_BUF);
    s.bind(&addr.into())?;
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    Ok(s.into())
}

/// The sockets of `n` workers on `addr` (the first decides the port when it is 0): one shared
/// by all, or with `reuseport` one `SO_REUSEPORT` socket each.
pub(super) fn bind(
    addr: SocketAddr,
    n: usize,
    reuseport: bool,
) -> anyhow::Result<(SocketAddr, Vec<Arc<UdpSocket>>)> {
    let first = socket(addr).map_err(|e| anyhow::anyhow!("dns64: cannot bind UDP {addr}: {e}"))?;
    let bound = first.local_addr()?;
    let first = Arc::new(first);
    let mut v = vec![first.clone()];
    for _ in 1..n.max(1) {
        v.push(if reuseport {
            Arc::new(
                socket(bound)
                    .map_err(|e| anyhow::anyhow!("dns64: cannot bind UDP {bound}: {e}"))?,
            )
        } else {
            first.clone()
        });
    }
    Ok((bound, v))
}

pub(super) fn spawn_worker(
    sock: Arc<UdpSocket>,
    engine: Arc<Engine>,
    rt: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    Ok(std::thread::Builder::new()
        .name("dns64-udp".into())
        .spawn(move || worker(sock, engine, rt, stop))?)
}

/// Datagrams read (and answers written) per system call on Linux.
#[cfg(target_os = "linux")]
const BATCH: usize = 32;

/// Room for one answer in the batch buffer; a cached answer that is larger takes the slow path.
#[cfg(target_os = "linux")]
const SLOT: usize = 4096;

fn worker(
    sock: Arc<UdpSocket>,
    engine: Arc<Engine>,
    rt: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
) {
    #[cfg(target_os = "linux")]
    if engine.settings.udp_batch > 1 {
        return worker_batched(sock, engine, rt, stop);
    }
    worker_single(sock, engine, rt, stop)
}

fn is_timeout(e: std::io::ErrorKind) -> bool {
    matches!(
        e,
        std::io::ErrorKind::WouldBlock
            | std::io::ErrorKind::TimedOut
            | std::io::ErrorKind::Interrupted
    )
}

/// Hands a query that missed the fast path to the tokio runtime (bounded by `max_inflight`).
fn slow_path(
    engine: &Arc<Engine>,
    rt: &tokio::runtime::Handle,
    sock: &Arc<UdpSocket>,
    pkt: &[u8],
    src: SocketAddr,
    udp_limit: usize,
) {
    let Ok(permit) = engine.inflight.clone().try_acquire_owned() else {
        engine.stats.inc(Counter::Overload);
        return;
    };
    let query = pkt.to_vec();
    let engine = engine.clone();
    let sock = sock.clone();
    rt.spawn(async move {
        let _permit = permit;
        if let Some(ans) = hickory_adapter::resolve_udp(&engine, &query, src, udp_limit).await {
            if sock.send_to(&ans, src).is_err() {
                engine.stats.inc(Counter::SendError);
            }
        }
    });
}

/// Linux: `recvmmsg` / `sendmmsg`, up to [`BATCH`] datagrams per call.
#[cfg(target_os = "linux")]
fn worker_batched(
    sock: Arc<UdpSocket>,
    engine: Arc<Engine>,
    rt: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
) {
    use nix::sys::socket::{recvmmsg, sendmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
    use std::io::{IoSlice, IoSliceMut};
    use std::os::fd::AsRawFd;

    let fd = sock.as_raw_fd();
    let batch = engine.settings.udp_batch.clamp(1, BATCH);
    let mut inb = vec![0u8; BATCH * SLOT];
    let mut outb = vec![0u8; BATCH * SLOT];
    let mut rx: MultiHeaders<SockaddrStorage> = MultiHeaders::preallocate(BATCH, None);
    let mut tx: MultiHeaders<SockaddrStorage> = MultiHeaders::preallocate(BATCH, None);
    let mut got = [(0usize, None::<SockaddrStorage>); BATCH];
    let mut answers = [(0usize, None::<SockaddrStorage>); BATCH];
    while !stop.load(Ordering::Relaxed) {
        let n = {
            let mut chunks = inb.chunks_mut(SLOT);
            let mut slices: [[IoSliceMut<'_>; 1]; BATCH] =
                std::array::from_fn(|_| [IoSliceMut::new(chunks.next().unwrap_or_default())]);
            match recvmmsg(
                fd,
                &mut rx,
                slices.iter_mut().take(batch),
                MsgFlags::MSG_WAITFORONE,
                None,
            ) {
                Ok(res) => {
                    let mut n = 0;
                    for (slot, m) in got.iter_mut().zip(res) {
                        *slot = (m.bytes, m.address);
                        n += 1;
                    }
                    n
                }
                Err(e) if is_timeout(std::io::Error::from(e).kind()) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "dns64 udp recvmmsg");
                    continue;
                }
            }
        };
        let mut k = 0;
        for (i, (len, addr)) in got[..n].iter().enumerate() {
            let Some(src) = addr.as_ref().and_then(to_std) else {
                continue;
            };
            let pkt = &inb[i * SLOT..i * SLOT + (*len).min(SLOT)];
            let out = &mut outb[k * SLOT..(k + 1) * SLOT];
            match engine.admit(pkt, src, out, true) {
                Admit::Answer(len) => {
                    answers[k] = (len, *addr);
                    k += 1;
                }
                Admit::Drop => {}
                Admit::Slow { udp_limit } => slow_path(&engine, &rt, &sock, pkt, src, udp_limit),
            }
        }
        if k == 0 {
            continue;
        }
        let mut chunks = outb.chunks(SLOT);
        let slices: [[IoSlice<'_>; 1]; BATCH] = std::array::from_fn(|j| {
            let c = chunks.next().unwrap_or_default();
            [IoSlice::new(&c[..answers[j].0.min(c.len())])]
        });
        let addrs: [Option<SockaddrStorage>; BATCH] = std::array::from_fn(|j| answers[j].1);
        let mut sent = 0;
        while sent < k {
            match sendmmsg(
                fd,
                &mut tx,
                slices[sent..k].iter(),
                &addrs[sent..k],
                [],
                MsgFlags::empty(),
            ) {
                Ok(r) => {
                    let c = r.count();
                    if c == 0 {
                        break;
                    }
                    sent += c;
                }
                Err(_) => {
                    // Skip the datagram that failed and go on with the rest.
                    engine.stats.inc(Counter::SendError);
                    sent += 1;
                }
            }
        }
    }
}

#[cfg(target_os = "linux")]
fn to_std(a: &nix::sys::socket::SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::from(*v4));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
}

/// One datagram per system call (other systems, or `udp_batch = 1`).
fn worker_single(
    sock: Arc<UdpSocket>,
    engine: Arc<Engine>,
    rt: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
) {
    let mut inb = vec![0u8; 65535];
    let mut out = vec![0u8; 65535];
    while !stop.load(Ordering::Relaxed) {
        let (len, src) = match sock.recv_from(&mut inb) {
            Ok(x) => x,
            Err(e) if is_timeout(e.kind()) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "dns64 udp recv");
                continue;
            }
        };
        let pkt = &inb[..len];
        match engine.admit(pkt, src, &mut out, true) {
            Admit::Answer(n) => {
                if sock.send_to(&out[..n], src).is_err() {
                    engine.stats.inc(Counter::SendError);
                }
            }
            Admit::Drop => {}
            Admit::Slow { udp_limit } => slow_path(&engine, &rt, &sock, pkt, src, udp_limit),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The socket layout, on loopback with a cached answer (no upstream): which worker can
    //! answer which client, and that a batch is answered without waiting for it to fill.
    use super::*;
    use crate::dns64::cache::make_key;
    use crate::dns64::config::Dns64Config;
    use crate::dns64::KEY_LEN;
    use std::time::Instant;

    /// An engine whose cache holds `a.` AAAA 2001:db8:64::102:304 (TTL 300).
    fn engine(udp_batch: usize) -> Arc<Engine> {
        let cfg = Dns64Config {
            upstreams: vec!["127.0.0.1:9".parse().unwrap()],
            allow: vec!["127.0.0.0/8".into()],
            udp_batch,
            ..Dns64Config::default()
        };
        let e = Engine::new(cfg.validate().unwrap(), Vec::new());
        let mut ans = vec![
            0, 0, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 1, b'a', 0, 0, 28, 0, 1,
        ];
        ans.extend_from_slice(&[0xc0, 12, 0, 28, 0, 1, 0, 0, 1, 44, 0, 16]);
        let addr: std::net::Ipv6Addr = "2001:db8:64::102:304".parse().unwrap();
        ans.extend_from_slice(&addr.octets());
        let mut key = [0u8; KEY_LEN];
        let klen = make_key(&mut key, b"\x01a\x00", 28, 1, 0);
        e.cache.put(&key[..klen], &ans);
        Arc::new(e)
    }

    fn query(id: u16) -> Vec<u8> {
        let mut q = id.to_be_bytes().to_vec();
        q.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 0, 0, 28, 0, 1]);
        q
    }

    /// Sends one query from each of `clients` fresh sockets (each its own source port) to
    /// `server`, and counts the clients answered within `wait` (all waits run together).
    fn answered(server: SocketAddr, clients: u16, wait: Duration) -> usize {
        let socks: Vec<UdpSocket> = (0..clients)
            .map(|i| {
                let c = UdpSocket::bind("127.0.0.1:0").unwrap();
                c.send_to(&query(i), server).unwrap();
                c
            })
            .collect();
        let end = Instant::now() + wait;
        let mut buf = [0u8; 512];
        socks
            .iter()
            .enumerate()
            .filter(|(i, c)| {
                let left = end.saturating_duration_since(Instant::now());
                c.set_read_timeout(Some(left.max(Duration::from_millis(1))))
                    .unwrap();
                matches!(c.recv(&mut buf), Ok(n) if n > 12 && buf[..2] == (*i as u16).to_be_bytes())
            })
            .count()
    }

    /// Starts one worker on `sock`; returns a stop function that joins it.
    fn start(
        sock: Arc<UdpSocket>,
        engine: Arc<Engine>,
        rt: &tokio::runtime::Runtime,
    ) -> impl FnOnce() {
        let stop = Arc::new(AtomicBool::new(false));
        let addr = sock.local_addr().unwrap();
        let t = spawn_worker(sock, engine, rt.handle().clone(), stop.clone()).unwrap();
        move || {
            stop.store(true, Ordering::Relaxed);
            // Wake a worker blocked in its receive (its read timeout may be long).
            let _ = UdpSocket::bind("127.0.0.1:0").and_then(|c| c.send_to(&[0; 12], addr));
            t.join().unwrap();
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// The shipped layout: with one of two workers stalled (here: never started), every client
    /// is still answered, whatever port it sends from (issue 11: with a socket per worker the
    /// kernel pins each client to one worker, whose stalls then set the tail latency).
    #[test]
    fn one_running_worker_answers_every_client_when_the_socket_is_shared() {
        let rt = runtime();
        let e = engine(32);
        let (bound, socks) = bind("127.0.0.1:0".parse().unwrap(), 2, false).unwrap();
        assert_eq!(socks.len(), 2);
        let stop = start(socks[0].clone(), e.clone(), &rt);
        let n = answered(bound, 64, Duration::from_secs(10));
        stop();
        assert_eq!(n, 64, "clients answered by the one running worker");
        assert_eq!(e.stats.get(Counter::CacheHits), 64);
    }

    /// The contrast that makes the test above meaningful: with `udp_reuseport`, the clients the
    /// kernel hashes to the stalled worker's socket wait for it (64 clients all hashed to one
    /// socket: odds 2^-63).
    #[test]
    fn with_reuseport_a_stalled_worker_strands_its_clients() {
        let rt = runtime();
        let e = engine(32);
        let (bound, socks) = bind("127.0.0.1:0".parse().unwrap(), 2, true).unwrap();
        let stop = start(socks[0].clone(), e.clone(), &rt);
        let n = answered(bound, 64, Duration::from_secs(2));
        stop();
        assert!(n > 0 && n < 64, "{n} of 64 clients answered");
    }

    /// A single cached query is answered at once, not held until a batch of `udp_batch`
    /// datagrams fills: the worker's receive timeout is set to 60 s, so a worker that waited for
    /// more datagrams would hold the answer well past the client's 10 s.
    #[test]
    fn a_lone_query_is_answered_without_waiting_for_a_batch() {
        let rt = runtime();
        let e = engine(32);
        let (bound, socks) = bind("127.0.0.1:0".parse().unwrap(), 1, false).unwrap();
        socks[0]
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let stop = start(socks[0].clone(), e.clone(), &rt);
        // Let the worker block in its receive first (the query must be the one datagram).
        std::thread::sleep(Duration::from_millis(100));
        let n = answered(bound, 1, Duration::from_secs(10));
        stop();
        assert_eq!(n, 1);
    }
}
