//! Runs the DNS64 server alone: `cargo run --release --example dns64 -- FILE.toml`.
//!
//! FILE holds a `[dns64]` table (the same one `nat64d` will read from its main configuration);
//! see `docs/conformance/rfc6147.md` for the keys. Prints the bound addresses, then serves until
//! SIGINT or SIGTERM. `RUST_LOG` sets the log filter (default `info,hickory_server=warn`:
//! hickory-server logs two INFO lines per TCP query).

use anyhow::Context;
use nat64d::dns64::{Dns64Config, Dns64Server};
use serde::Deserialize;

#[derive(Deserialize)]
struct File {
    dns64: Dns64Config,
}

fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,hickory_server=warn"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let path = std::env::args()
        .nth(1)
        .context("usage: dns64 FILE.toml (a file with a [dns64] table)")?;
    let text = std::fs::read_to_string(&path).with_context(|| format!("{path}: cannot read"))?;
    let file: File = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
    let cfg = file.dns64;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let server = Dns64Server::start(cfg)
            .await
            .map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
        for a in server.local_addrs() {
            println!("dns64 listening on {a}");
        }
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        let stats = server.stats();
        server.shutdown().await;
        for (k, v) in stats.snapshot() {
            if v > 0 {
                println!("{k} {v}");
            }
        }
        Ok(())
    })
}
