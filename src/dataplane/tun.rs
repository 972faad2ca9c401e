//! The TUN device: created (or attached to, when a persistent device of that name exists) with
//! IFF_NO_PI and IFF_MULTI_QUEUE, one file descriptor per queue.
//!
//! tun-rs does the ioctls; this module only decides the flags and explains failures in words an
//! operator can act on.
#![deny(unsafe_code)]

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
    /// A device of that name exists but cannot be shared.
    #[error("TUN device {name}: {why}")]
    InUse {
        /// Device name.
        name: String,
        /// Why it is refused, and what to do.
        why: String,
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

/// `IFF_PERSIST` in /sys/class/net/NAME/tun_flags.
const IFF_PERSIST: u32 = 0x0800;

/// An open multi-queue TUN device.
pub struct Tun {
    /// Device name.
    pub name: String,
    /// One descriptor per queue.
    pub queues: Vec<SyncDevice>,
    /// True if the device existed before (a persistent device this process attached to).
    pub attached: bool,
    /// True if the queues were opened with offload (IFF_VNET_HDR).
    pub offload: bool,
    /// Why offload was asked for but is off.
    pub offload_error: Option<String>,
}

fn hint(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(1) => " (needs CAP_NET_ADMIN: run as root or with AmbientCapabilities=CAP_NET_ADMIN)",
        Some(13) => " (cannot open /dev/net/tun: it must be readable and writable by this user, mode 0666 as Debian sets it, or run as root)",
        Some(16) => " (the device exists with other flags, for example without IFF_MULTI_QUEUE, or is in use)",
        Some(2) | Some(19) => " (/dev/net/tun is missing: load the tun module)",
        Some(22) => " (invalid name or flags)",
        _ => "",
    }
}

const IFF_TUN: u32 = 0x0001;
const IFF_TAP: u32 = 0x0002;
const IFF_MULTI_QUEUE: u32 = 0x0100;

/// Why an existing interface `name` (its `tun_flags`, `None`: not a TUN/TAP) cannot be attached
/// to, in words that say what it is and what to do; `None` if it can (a persistent multi-queue
/// TUN). The kernel itself answers only EINVAL for a TAP or a single-queue TUN.
pub fn refuse_existing(name: &str, flags: Option<u32>) -> Option<String> {
    let other = format!("delete it (`ip link del {name}`) or set another tun.name");
    let Some(f) = flags else {
        return Some(format!(
            "an interface of that name exists and is not a TUN device: {other}"
        ));
    };
    if f & IFF_TAP != 0 || f & IFF_TUN == 0 {
        return Some(format!(
            "is a TAP device (Ethernet frames); nat64d needs a TUN device (IP packets): {other}"
        ));
    }
    if f & IFF_PERSIST == 0 {
        return Some(
            "exists and is not persistent: another process (another nat64d?) is using it".into(),
        );
    }
    if f & IFF_MULTI_QUEUE == 0 {
        return Some(format!(
            "is a single-queue TUN device; nat64d opens one queue per worker: recreate it with \
             `ip link del {name} && ip tuntap add dev {name} mode tun multi_queue` (add \
             `user USER` for an unprivileged daemon), or {other}"
        ));
    }
    None
}

/// Opens `cfg.queues` queues of the device `cfg.name`, sets MTU and txqueuelen.
///
/// # Errors
/// [`TunError`] with the OS error and a hint.
pub fn open(cfg: &TunConfig) -> Result<Tun, TunError> {
    let sys = Path::new("/sys/class/net").join(&cfg.name);
    let attached = sys.exists();
    if attached {
        // Attaching is for persistent devices prepared by an operator (`ip tuntap add ... mode
        // tun multi_queue`); a live non-persistent device belongs to another process, and
        // adding our queues to it would split its traffic between two programs.
        let flags = std::fs::read_to_string(sys.join("tun_flags"))
            .ok()
            .and_then(|s| u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok());
        if let Some(why) = refuse_existing(&cfg.name, flags) {
            return Err(TunError::InUse {
                name: cfg.name.clone(),
                why,
            });
        }
    }
    let create = |source: std::io::Error| TunError::Create {
        name: cfg.name.clone(),
        hint: hint(&source),
        source,
    };
    let build = |offload: bool| {
        DeviceBuilder::new()
            // Leave the link state alone (a new device stays down): the daemon brings it up
            // itself, after turning off IPv6 address generation on it.
            .inherit_enable_state()
            .name(&cfg.name)
            .packet_information(false)
            .multi_queue(true)
            .offload(offload)
            .mtu(cfg.mtu)
            .tx_queue_len(cfg.txqueuelen)
            .build_sync()
    };
    let (first, offload, offload_error) = match build(cfg.offload) {
        Ok(d) => (d, cfg.offload, None),
        // A kernel without TUN offload support (IFF_VNET_HDR / TUNSETOFFLOAD): run without it.
        Err(e) if cfg.offload && !matches!(e.raw_os_error(), Some(1 | 13 | 16)) => {
            let d = build(false).map_err(create)?;
            (d, false, Some(e.to_string()))
        }
        Err(e) => return Err(create(e)),
    };
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
        offload,
        offload_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_device_is_explained() {
        // Flags as /sys/class/net/NAME/tun_flags shows them (IFF_NO_PI = 0x1000 included).
        let tap = refuse_existing("n64", Some(0x1802)).unwrap();
        assert!(tap.starts_with("is a TAP device"), "{tap}");
        let single = refuse_existing("n64", Some(0x1801)).unwrap();
        assert!(
            single.starts_with("is a single-queue TUN device"),
            "{single}"
        );
        assert!(single.contains("ip tuntap add dev n64 mode tun multi_queue"));
        let live = refuse_existing("n64", Some(0x1101)).unwrap();
        assert!(live.contains("not persistent"), "{live}");
        assert!(refuse_existing("n64", None)
            .unwrap()
            .contains("not a TUN device"));
        assert_eq!(refuse_existing("n64", Some(0x1901)), None);
    }
}
