//! Addresses and routes on the TUN device, through iproute2 (`ip`), remembered so that stop and
//! reload remove exactly what this process added.
//!
//! `ip` is used rather than a netlink crate: the daemon changes a handful of routes at start and on
//! reload, never per packet, and `ip`'s error text is what an operator would see anyway.
#![deny(unsafe_code)]

use crate::config::IpPrefix;
use std::net::IpAddr;
use std::process::Command;

/// An `ip` command failed.
#[derive(Debug, thiserror::Error)]
#[error("`ip {args}` failed: {reason}")]
pub struct NetError {
    /// The arguments, space-separated.
    pub args: String,
    /// stderr, or why it could not run.
    pub reason: String,
}

fn ip(args: &[&str]) -> Result<(), NetError> {
    let fail = |reason: String| NetError {
        args: args.join(" "),
        reason,
    };
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| fail(format!("cannot run ip (iproute2): {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(fail(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

/// The IPv4 addresses of this host's interfaces (in this network namespace), with the interface
/// name: `ip -o -4 addr show`.
///
/// # Errors
/// `ip` cannot run or fails.
pub fn host_ipv4_addresses() -> Result<Vec<(String, std::net::Ipv4Addr)>, NetError> {
    let args = ["-o", "-4", "addr", "show"];
    let fail = |reason: String| NetError {
        args: args.join(" "),
        reason,
    };
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| fail(format!("cannot run ip (iproute2): {e}")))?;
    if !out.status.success() {
        return Err(fail(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(parse_addr_show(&String::from_utf8_lossy(&out.stdout)))
}

/// Parses `ip -o -4 addr show` lines: `2: eth0    inet 192.0.2.1/24 brd ... scope global eth0`.
pub fn parse_addr_show(text: &str) -> Vec<(String, std::net::Ipv4Addr)> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let dev = w.nth(1)?;
            let (kw, addr) = (w.next()?, w.next()?);
            if kw != "inet" {
                return None;
            }
            let a = addr.split('/').next()?.parse().ok()?;
            Some((dev.trim_end_matches(':').to_string(), a))
        })
        .collect()
}

fn family(p: &IpPrefix) -> &'static str {
    match p.addr {
        IpAddr::V4(_) => "-4",
        IpAddr::V6(_) => "-6",
    }
}

/// Routes and addresses this process put on one device.
#[derive(Debug)]
pub struct NetCfg {
    dev: String,
    routes: Vec<IpPrefix>,
    addresses: Vec<IpPrefix>,
}

impl NetCfg {
    /// Nothing added yet on `dev`.
    pub fn new(dev: &str) -> NetCfg {
        NetCfg {
            dev: dev.to_string(),
            routes: Vec::new(),
            addresses: Vec::new(),
        }
    }

    /// The routes currently added.
    pub fn routes(&self) -> &[IpPrefix] {
        &self.routes
    }

    /// Brings the device up. With `no_link_local`, first turns off IPv6 address generation on it
    /// (`addrgenmode none`): a translator's TUN needs no fe80:: address, and without one the
    /// kernel sends no router solicitations into it. (Its MLD reports for ff02::2, sent from ::
    /// because the gateway is a router, remain: two at start, counted as `icmp_untranslatable`.)
    ///
    /// # Errors
    /// `ip link set up` failed (a failing `addrgenmode` is not an error: old kernels lack it).
    pub fn link_up(&self, no_link_local: bool) -> Result<(), NetError> {
        if no_link_local {
            let quiet = [
                "link",
                "set",
                "dev",
                &self.dev,
                "addrgenmode",
                "none",
                "multicast",
                "off",
            ];
            if let Err(e) = ip(&quiet) {
                tracing::debug!("{e}");
            }
        }
        ip(&["link", "set", "dev", &self.dev, "up"])
    }

    /// Caps the segments of a GSO packet the kernel hands the device (`gso_max_segs`): a larger
    /// one is segmented in software before it reaches the TUN.
    ///
    /// # Errors
    /// `ip link set gso_max_segs` failed (a kernel or iproute2 without the setting).
    pub fn limit_gso_segments(&self, n: usize) -> Result<(), NetError> {
        let n = n.to_string();
        ip(&["link", "set", "dev", &self.dev, "gso_max_segs", &n])
    }

    /// Adds `a` to the device (IPv6 addresses without duplicate address detection).
    ///
    /// # Errors
    /// `ip addr add` failed.
    pub fn add_address(&mut self, a: IpPrefix) -> Result<(), NetError> {
        let s = a.to_string();
        let mut args = vec![family(&a), "addr", "replace", &s, "dev", &self.dev];
        if a.addr.is_ipv6() {
            args.push("nodad");
        }
        ip(&args)?;
        self.addresses.push(a);
        Ok(())
    }

    /// Points `p` into the device (replacing an existing route to the same prefix).
    ///
    /// # Errors
    /// `ip route replace` failed.
    pub fn add_route(&mut self, p: IpPrefix) -> Result<(), NetError> {
        let s = p.to_string();
        ip(&[family(&p), "route", "replace", &s, "dev", &self.dev])?;
        if !self.routes.contains(&p) {
            self.routes.push(p);
        }
        Ok(())
    }

    /// Removes a route this process added.
    ///
    /// # Errors
    /// `ip route del` failed.
    pub fn del_route(&mut self, p: IpPrefix) -> Result<(), NetError> {
        self.routes.retain(|r| *r != p);
        let s = p.to_string();
        ip(&[family(&p), "route", "del", &s, "dev", &self.dev])
    }

    /// Makes the routes equal to `want`: adds the missing ones, removes the ones no longer wanted.
    /// Returns the errors (the rest is still applied).
    pub fn sync_routes(&mut self, want: &[IpPrefix]) -> Vec<NetError> {
        let mut errs = Vec::new();
        let stale: Vec<IpPrefix> = self
            .routes
            .iter()
            .filter(|r| !want.contains(r))
            .copied()
            .collect();
        for r in stale {
            if let Err(e) = self.del_route(r) {
                errs.push(e);
            }
        }
        for r in want {
            if !self.routes.contains(r) {
                if let Err(e) = self.add_route(*r) {
                    errs.push(e);
                }
            }
        }
        errs
    }

    /// Removes every route and address this process added (on stop). Errors are returned for
    /// logging; removal goes on.
    pub fn remove_all(&mut self) -> Vec<NetError> {
        let mut errs = Vec::new();
        for r in std::mem::take(&mut self.routes) {
            let s = r.to_string();
            if let Err(e) = ip(&[family(&r), "route", "del", &s, "dev", &self.dev]) {
                errs.push(e);
            }
        }
        for a in std::mem::take(&mut self.addresses) {
            let s = a.to_string();
            if let Err(e) = ip(&[family(&a), "addr", "del", &s, "dev", &self.dev]) {
                errs.push(e);
            }
        }
        errs
    }
}
