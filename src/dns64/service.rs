//! Runs the DNS64 server beside the dataplane: one thread owning a small tokio runtime, started
//! before the TUN (so a port that cannot be bound stops the daemon before it changes anything)
//! and stopped after the workers. `nat64d dns64 --config FILE` runs it alone.

use crate::dns64::stats::Stats;
use crate::dns64::{Dns64Config, Dns64Server};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

/// A DNS64 server running on its own thread.
pub struct Dns64Service {
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    addrs: Vec<SocketAddr>,
    stats: Arc<Stats>,
}

impl Dns64Service {
    /// Starts the server and waits until every listen address is bound.
    ///
    /// # Errors
    /// The `[dns64]` table is invalid or an address cannot be bound (message says which).
    pub fn start(cfg: Dns64Config) -> Result<Dns64Service, String> {
        let (stop, mut stop_rx) = tokio::sync::watch::channel(false);
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(Vec<SocketAddr>, Arc<Stats>), String>>();
        let thread = std::thread::Builder::new()
            .name("dns64".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("dns64: cannot start its runtime: {e}")));
                        return;
                    }
                };
                rt.block_on(async move {
                    let server = match Dns64Server::start(cfg).await {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("dns64: {e:#}")));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok((server.local_addrs().to_vec(), server.stats())));
                    while !*stop_rx.borrow_and_update() {
                        if stop_rx.changed().await.is_err() {
                            break;
                        }
                    }
                    let stats = server.stats();
                    server.shutdown().await;
                    let counters: Vec<String> = stats
                        .snapshot()
                        .into_iter()
                        .filter(|(_, v)| *v > 0)
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    tracing::info!("dns64 stopped; counters: {}", counters.join(" "));
                });
            })
            .map_err(|e| format!("dns64: cannot start its thread: {e}"))?;
        match ready_rx.recv() {
            Ok(Ok((addrs, stats))) => {
                for a in &addrs {
                    tracing::info!("dns64 listening on {a} (udp, tcp)");
                }
                Ok(Dns64Service {
                    stop,
                    thread: Some(thread),
                    addrs,
                    stats,
                })
            }
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err("dns64: the server thread ended before it was ready".into())
            }
        }
    }

    /// The bound addresses.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The server's counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Stops the server and waits for its thread (dropping it does the same).
    pub fn stop(self) {}
}

impl Drop for Dns64Service {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `nat64d dns64 --config FILE`: only the DNS64 server of FILE's `[dns64]` table, until
/// SIGTERM/SIGINT.
///
/// # Errors
/// The file is invalid, has no `[dns64]` table, or the server cannot start.
pub fn run_standalone(path: &std::path::Path) -> anyhow::Result<()> {
    let cfg = crate::config::load(path)?;
    if let Err(e) = crate::logging::init(&cfg.log) {
        eprintln!("nat64d: logging: {e}");
    }
    let Some(d) = cfg.dns64 else {
        anyhow::bail!("{}: no [dns64] table", path.display());
    };
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])?;
    let svc = Dns64Service::start(d).map_err(anyhow::Error::msg)?;
    for a in svc.local_addrs() {
        println!("dns64 listening on {a}");
    }
    let _ = signals.forever().next();
    svc.stop();
    Ok(())
}
