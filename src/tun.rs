//! The TUN device: created (or attached to, when a persistent device of that name exists) with
//! IFF_NO_PI and IFF_MULTI_QUEUE, one file descriptor per queue.
//!
//! tun-rs does the ioctls; this module only decides the flags and explains failures in words an
//! operator can act on.

use crate::config::TunConfig;
use std::path::Path;
use tun_rs::{DeviceBuilder, SyncDevice};

/// The device could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TunError {
    /// Opening /dev/net/tun or TUNSETIFF failed.
    #[error("cannot create TUN device {name}: {source}{hint}")]
    Create {
        /// Device name.
        name: String,
        /// The OS error.
        source: std::io::Error,
        /// What to check.
        hint: &'static str,
    },
    /// Opening an additional queue failed.
    #[error("cannot open queue {queue} of TUN device {name}: {source}")]
    Queue {
        /// Device name.
        name: String,
        /// Queue index.
        queue: usize,
        /// The OS error.
        source: std::io::Error,
    },
}

/// An open multi-queue TUN device.
pub struct Tun {
    /// Device name.
    pub name: String,
    /// One descriptor per queue.
    pub queues: Vec<SyncDevice>,
    /// True if the device existed before (a persistent device this process attached to).
    pub attached: bool,
}

fn hint(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(1) => " (needs CAP_NET_ADMIN: run as root or with AmbientCapabilities=CAP_NET_ADMIN)",
        Some(16) => " (the device exists with other flags, for example without IFF_MULTI_QUEUE, or is in use)",
        Some(2) | Some(19) => " (/dev/net/tun is missing: load the tun module)",
        Some(22) => " (invalid name or flags)",
        _ => "",
    }
}

/// Opens `cfg.queues` queues of the device `cfg.name`, sets MTU and txqueuelen.
///
/// # Errors
/// [`TunError`] with the OS error and a hint.
pub fn open(cfg: &TunConfig) -> Result<Tun, TunError> {
    let attached = Path::new("/sys/class/net").join(&cfg.name).exists();
    let create = |source: std::io::Error| TunError::Create {
        name: cfg.name.clone(),
        hint: hint(&source),
        source,
    };
    let first = DeviceBuilder::new()
        .name(&cfg.name)
        .packet_information(false)
        .multi_queue(true)
        .mtu(cfg.mtu)
        .tx_queue_len(cfg.txqueuelen)
        .build_sync()
        .map_err(create)?;
    let mut queues = Vec::with_capacity(cfg.queues);
    for q in 1..cfg.queues.max(1) {
        let d = first.try_clone().map_err(|source| TunError::Queue {
            name: cfg.name.clone(),
            queue: q,
            source,
        })?;
        queues.push(d);
    }
    queues.insert(0, first);
    Ok(Tun {
        name: cfg.name.clone(),
        queues,
        attached,
    })
}
