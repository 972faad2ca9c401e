//! DNS over TCP (RFC 1035 §4.2.2, RFC 7766): two-byte length framing, queries answered one after
//! the other on each connection through the same fast path and slow path as UDP.
//!
//! Hygiene (issue 11, as BIND and Unbound behave): a connection is closed after an unparseable
//! message has been answered with FORMERR, after `tcp_timeout_ms` idle, and connections are
//! bounded in total (`tcp_max_connections`) and per client address
//! (`tcp_max_connections_per_client`); a connection over either bound is closed at once and
//! counted (`tcp_refused`).

use super::{hickory_adapter, Admit, Counter, Engine};
use nat64_core::dns64::acl::normalize;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// RFC 1035 §4.1.1: RCODE 1, format error.
const FORMERR: u8 = 1;

/// The TCP side of a server: one accept loop per listener.
pub(super) struct TcpServer {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Open connections, in total and per client address.
#[derive(Default)]
struct Conns {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// Gives a connection's slot back when it ends.
struct Slot {
    conns: Arc<Mutex<Conns>>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut c) = self.conns.lock() {
            c.total = c.total.saturating_sub(1);
            if let Some(n) = c.per_client.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    c.per_client.remove(&self.ip);
                }
            }
        }
    }
}

impl TcpServer {
    pub(super) fn start(engine: Arc<Engine>, listeners: Vec<TcpListener>) -> TcpServer {
        let (stop, _) = watch::channel(false);
        let conns = Arc::new(Mutex::new(Conns::default()));
        let tasks = listeners
            .into_iter()
            .map(|l| {
                let engine = engine.clone();
                let conns = conns.clone();
                let mut stop_rx = stop.subscribe();
                tokio::spawn(async move {
                    loop {
                        let (st, src) = tokio::select! {
                            _ = stop_rx.changed() => return,
                            r = l.accept() => match r {
                                Ok(x) => x,
                                Err(e) => {
                                    tracing::debug!(error = %e, "dns64 tcp accept");
                                    continue;
                                }
                            },
                        };
                        let Some(slot) = admit_conn(&engine, &conns, src.ip()) else {
                            engine.stats.inc(Counter::TcpRefused);
                            drop(st);
                            continue;
                        };
                        let engine = engine.clone();
                        let stop_rx = stop_rx.clone();
                        tokio::spawn(async move {
                            serve_conn(&engine, st, src, stop_rx).await;
                            drop(slot);
                        });
                    }
                })
            })
            .collect();
        TcpServer { stop, tasks }
    }

    pub(super) async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

fn admit_conn(engine: &Engine, conns: &Arc<Mutex<Conns>>, ip: IpAddr) -> Option<Slot> {
    let ip = normalize(ip);
    let mut c = conns.lock().ok()?;
    let mine = c.per_client.get(&ip).copied().unwrap_or(0);
    if c.total >= engine.settings.tcp_max_connections || mine >= engine.settings.tcp_max_per_client
    {
        return None;
    }
    c.total += 1;
    c.per_client.insert(ip, mine + 1);
    Some(Slot {
        conns: conns.clone(),
        ip,
    })
}

/// Reads one framed message; `None` at EOF, on an error, after the idle timeout or at stop.
async fn read_msg(
    engine: &Engine,
    st: &mut TcpStream,
    stop: &mut watch::Receiver<bool>,
) -> Option<Vec<u8>> {
    let read = async {
        let mut lb = [0u8; 2];
        st.read_exact(&mut lb).await.ok()?;
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(lb))];
        st.read_exact(&mut msg).await.ok()?;
        Some(msg)
    };
    tokio::select! {
        _ = stop.changed() => None,
        r = tokio::time::timeout(engine.settings.tcp_timeout, read) => r.ok().flatten(),
    }
}

async fn serve_conn(
    engine: &Arc<Engine>,
    mut st: TcpStream,
    src: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    let mut out = vec![0u8; 65535];
    while let Some(msg) = read_msg(engine, &mut st, &mut stop).await {
        let answer = match engine.admit(&msg, src, &mut out, false) {
            Admit::Answer(n) => Some(out[..n].to_vec()),
            Admit::Drop => None,
            Admit::Slow { .. } => match engine.inflight.clone().try_acquire_owned() {
                Ok(_permit) => hickory_adapter::resolve(engine, &msg, src).await,
                Err(_) => {
                    engine.stats.inc(Counter::Overload);
                    None
                }
            },
        };
        // Shorter than a header: nothing to answer, nothing more to expect from this peer.
        if msg.len() < 12 {
            break;
        }
        let Some(ans) = answer else { continue };
        let Ok(len) = u16::try_from(ans.len()) else {
            break;
        };
        let mut framed = Vec::with_capacity(ans.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&ans);
        if st.write_all(&framed).await.is_err() {
            engine.stats.inc(Counter::SendError);
            break;
        }
        // A message we could not parse: FORMERR was sent, the stream is no longer trusted.
        if ans.get(3).is_some_and(|b| b & 0x0f == FORMERR) {
            break;
        }
    }
    let _ = st.shutdown().await;
}
