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

fn worker(
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
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
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
            Admit::Slow { udp_limit } => {
                let Ok(permit) = engine.inflight.clone().try_acquire_owned() else {
                    engine.stats.inc(Counter::Overload);
                    continue;
                };
                let query = pkt.to_vec();
                let engine = engine.clone();
                let sock = sock.clone();
                rt.spawn(async move {
                    let _permit = permit;
                    if let Some(ans) =
                        hickory_adapter::resolve_udp(&engine, &query, src, udp_limit).await
                    {
                        if sock.send_to(&ans, src).is_err() {
                            engine.stats.inc(Counter::SendError);
                        }
                    }
                });
            }
        }
    }
}
