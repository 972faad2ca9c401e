//! The dataplane: everything between the TUN device and the translator.
//!
//! - [`tun`]: opens the TUN device and its queues (the only place that talks to /dev/net/tun).
//! - [`netcfg`]: addresses and routes on that device (rtnetlink), removed again at stop.
//! - [`worker`]: the packet loop, one thread per queue; its items are re-exported here.
//! - [`xlator`]: the one trait the loop calls, over stateless SIIT or stateful NAT64.
//! - [`stats`]: per-worker counters and heartbeats, published once per batch.
#![deny(unsafe_code)]

pub mod netcfg;
pub mod stats;
pub mod tun;
pub mod worker;
pub mod xlator;

pub use worker::*;
