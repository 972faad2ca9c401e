//! UDP serving: per listen address, one `SO_REUSEPORT` socket per worker thread (the kernel
//! spreads clients across them). Each thread runs the fast path on its own buffers; misses are
//! resolved on the tokio runtime, bounded by `max_inflight`, and answered on the same socket.

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

/// Binds `n` sockets to `addr` (the first decides the port when it is 0).
pub(super) fn bind(addr: SocketAddr, n: usize) -> anyhow::Result<(SocketAddr, Vec<UdpSocket>)> {
    let first = socket(addr).map_err(|e| anyhow::anyhow!("dns64: cannot bind UDP {addr}: {e}"))?;
    let bound = first.local_addr()?;
    let mut v = vec![first];
    for _ in 1..n.max(1) {
        v.push(socket(bound).map_err(|e| anyhow::anyhow!("dns64: cannot bind UDP {bound}: {e}"))?);
    }
    Ok((bound, v))
}

pub(super) fn spawn_worker(
    sock: UdpSocket,
    engine: Arc<Engine>,
    rt: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let sock = Arc::new(sock);
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
