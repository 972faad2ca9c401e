//! nat64d: the daemon around the sans-IO core (`nat64-core`). Modules are public so that the
//! integration tests in `tests/` can drive them.
//!
//! One module per line (merges stay trivial). The gateway modules (cli, config, daemon,
//! dataplane, logging, netcfg, stats, tun) deny unsafe code: the TUN ioctls live in tun-rs.
pub mod cli;
pub mod config;
pub mod daemon;
pub mod dataplane;
pub mod dns64;
pub mod dns64_service;
pub mod logging;
pub mod metrics;
pub mod nat64_ctl;
pub mod netcfg;
pub mod stats;
pub mod translate;
pub mod tun;
pub mod xlator;
