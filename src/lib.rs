//! nat64d: the daemon around the sans-IO core (`nat64-core`). Modules are public so that the
//! integration tests in `tests/` can drive them.
//!
//! `src/` is arranged by role:
//! - [`dataplane`]: TUN device, routes, packet workers, translator seam, counters.
//! - [`control`]: control socket and CLI client side, Prometheus metrics.
//! - [`dns64`]: the DNS64 server and the service that runs it beside the dataplane.
//! - [`tools`]: offline subcommands (`translate`).
//! - [`config`] (file loading and validation), [`daemon`] (lifecycle), [`cli`], [`logging`],
//!   [`host`] (group lookup shared by config and the control socket).
//!
//! One module per line (merges stay trivial). The gateway modules deny unsafe code: the TUN
//! ioctls live in tun-rs.
pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dataplane;
pub mod dns64;
pub mod fastpath;
pub mod host;
pub mod logging;
pub mod tools;

// The flat paths from before the rooms (`nat64d::stats`, `nat64d::nat64_ctl`, ...), kept so
// that tests, fuzz targets and branches written against them still build. New code uses the
// paths above.
#[doc(hidden)]
pub use control::metrics;
#[doc(hidden)]
pub use control::socket as nat64_ctl;
#[doc(hidden)]
pub use dataplane::{netcfg, stats, tun, xlator};
#[doc(hidden)]
pub use dns64::service as dns64_service;
#[doc(hidden)]
pub use tools::translate;
