//! The control side: how operators and monitoring see and steer a running daemon. Nothing here
//! is on the packet path.
//!
//! - [`socket`]: the local control socket behind `nat64d stats|reload|sessions|bib`, its client
//!   side (the CLI subcommands), and the stateful NAT64 tables' timer thread.
//! - [`metrics`]: the Prometheus `GET /metrics` and `GET /healthz` endpoint.
#![deny(unsafe_code)]

pub mod metrics;
pub mod socket;
