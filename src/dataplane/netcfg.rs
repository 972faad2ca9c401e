//! Addresses and routes on the TUN device, through rtnetlink, remembered so that stop and reload
//! remove exactly what this process added.
//!
//! The messages are built with `netlink-packet-route` and sent on a blocking `netlink-sys` socket,
//! one request and its acknowledgement at a time: the daemon changes a handful of objects at start
//! and on reload, never per packet, so no async netlink connection (the `rtnetlink` crate) is
//! needed. No external program runs. A refusal names the object, the kernel's errno and, when the
//! kernel gives one, its extended-ack message (`NETLINK_EXT_ACK`).
#![deny(unsafe_code)]

use crate::config::IpPrefix;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED,
    NLM_F_CREATE, NLM_F_DUMP, NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, LinkAttribute, LinkFlags, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::net::{IpAddr, Ipv4Addr};

/// A netlink request failed: what was asked (the object), and why.
#[derive(Debug, thiserror::Error)]
#[error("netlink: cannot {what}: {reason}")]
pub struct NetError {
    /// The operation and its object, e.g. `add route 64:ff9b::/96 dev nat64`.
    pub what: String,
    /// The kernel's errno text and extended-ack message, or the local failure.
    pub reason: String,
}

/// Reads the extended-ack message (`NLMSGERR_ATTR_MSG`) from the payload of an `NLMSG_ERROR`
/// after its error code: the echoed request (only its header when `NLM_F_CAPPED`), then
/// attributes, present when `NLM_F_ACK_TLVS` is set in the error message's flags.
pub fn ext_ack_message(flags: u16, payload: &[u8]) -> Option<String> {
    const NLMSGERR_ATTR_MSG: u16 = 1;
    if flags & NLM_F_ACK_TLVS == 0 {
        return None;
    }
    let echoed = if flags & NLM_F_CAPPED != 0 {
        16
    } else {
        let len = payload.get(..4)?;
        u32::from_ne_bytes([len[0], len[1], len[2], len[3]]) as usize
    };
    let mut rest = payload.get(echoed..)?;
    while rest.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        let kind = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        if len < 4 || len > rest.len() {
            return None;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let text = &rest[4..len];
            let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
            return Some(String::from_utf8_lossy(&text[..end]).into_owned());
        }
        rest = rest.get((len + 3) & !3..).unwrap_or(&[]);
    }
    None
}

/// One blocking rtnetlink socket.
struct Netlink {
    sock: Socket,
    seq: u32,
}

impl Netlink {
    fn open(what: &str) -> Result<Netlink, NetError> {
        let fail = |e: std::io::Error| NetError {
            what: what.to_string(),
            reason: format!("cannot open a NETLINK_ROUTE socket: {e}"),
        };
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(fail)?;
        sock.bind_auto().map_err(fail)?;
        sock.connect(&SocketAddr::new(0, 0)).map_err(fail)?;
        // Older kernels lack extended acks: the errno alone still names the failure.
        let _ = sock.set_ext_ack(true);
        Ok(Netlink { sock, seq: 0 })
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16, what: &str) -> Result<u32, NetError> {
        self.seq = self.seq.wrapping_add(1);
        let mut hdr = NetlinkHeader::default();
        hdr.flags = NLM_F_REQUEST | flags;
        hdr.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(hdr, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.sock.send(&buf, 0).map_err(|e| NetError {
            what: what.to_string(),
            reason: format!("netlink send: {e}"),
        })?;
        Ok(self.seq)
    }

    /// Reads replies to `seq` and hands each inner message to `each`, until the ack (for a
    /// request) or `NLMSG_DONE` (for a dump). A NACK becomes the error.
    fn replies(
        &mut self,
        seq: u32,
        what: &str,
        mut each: impl FnMut(RouteNetlinkMessage),
    ) -> Result<(), NetError> {
        let fail = |reason: String| NetError {
            what: what.to_string(),
            reason,
        };
        loop {
            let (buf, _) = self
                .sock
                .recv_from_full()
                .map_err(|e| fail(format!("netlink receive: {e}")))?;
            let mut off = 0;
            while off < buf.len() {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[off..])
                    .map_err(|e| fail(format!("undecodable netlink reply: {e}")))?;
                let len = msg.header.length as usize;
                if msg.header.sequence_number == seq {
                    match msg.payload {
                        NetlinkPayload::Error(e) => match e.code {
                            None => return Ok(()),
                            Some(_) => {
                                let mut reason = e.to_io().to_string();
                                if let Some(m) = ext_ack_message(msg.header.flags, &e.header) {
                                    reason.push_str(&format!(" (kernel: {m})"));
                                }
                                return Err(fail(reason));
                            }
                        },
                        NetlinkPayload::Done(_) => return Ok(()),
                        NetlinkPayload::InnerMessage(m) => each(m),
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
            }
        }
    }

    /// Sends a change and waits for the kernel's acknowledgement.
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        what: &str,
    ) -> Result<(), NetError> {
        let seq = self.send(msg, flags | NLM_F_ACK, what)?;
        self.replies(seq, what, |_| {})
    }

    fn dump(
        &mut self,
        msg: RouteNetlinkMessage,
        what: &str,
    ) -> Result<Vec<RouteNetlinkMessage>, NetError> {
        let seq = self.send(msg, NLM_F_DUMP, what)?;
        let mut out = Vec::new();
        self.replies(seq, what, |m| out.push(m))?;
        Ok(out)
    }
}

fn family(a: IpAddr) -> AddressFamily {
    match a {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// The IPv4 addresses of this host's interfaces (in this network namespace), with the interface
/// name (an `RTM_GETADDR` dump).
///
/// # Errors
/// The netlink dump failed.
pub fn host_ipv4_addresses() -> Result<Vec<(String, Ipv4Addr)>, NetError> {
    let what = "list the IPv4 addresses of this host";
    let mut nl = Netlink::open(what)?;
    let mut req = AddressMessage::default();
    req.header.family = AddressFamily::Inet;
    let msgs = nl.dump(RouteNetlinkMessage::GetAddress(req), what)?;
    let mut out = Vec::new();
    for m in msgs {
        let RouteNetlinkMessage::NewAddress(a) = m else {
            continue;
        };
        // IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer on point-to-point
        // links); IFA_ADDRESS alone when there is no IFA_LOCAL.
        let mut local = None;
        let mut address = None;
        for attr in &a.attributes {
            match attr {
                AddressAttribute::Local(IpAddr::V4(v)) => local = Some(*v),
                AddressAttribute::Address(IpAddr::V4(v)) => address = Some(*v),
                _ => {}
            }
        }
        if let Some(v) = local.or(address) {
            let name = nix::net::if_::if_indextoname(a.header.index)
                .map(|c| c.to_string_lossy().into_owned())
                .unwrap_or_else(|_| format!("if{}", a.header.index));
            out.push((name, v));
        }
    }
    Ok(out)
}

/// Routes and addresses this process put on one device.
pub struct NetCfg {
    dev: String,
    routes: Vec<IpPrefix>,
    addresses: Vec<IpPrefix>,
    nl: Option<Netlink>,
}

impl std::fmt::Debug for NetCfg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetCfg")
            .field("dev", &self.dev)
            .field("routes", &self.routes)
            .field("addresses", &self.addresses)
            .finish()
    }
}

impl NetCfg {
    /// Nothing added yet on `dev`.
    pub fn new(dev: &str) -> NetCfg {
        NetCfg {
            dev: dev.to_string(),
            routes: Vec::new(),
            addresses: Vec::new(),
            nl: None,
        }
    }

    /// The routes currently added.
    pub fn routes(&self) -> &[IpPrefix] {
        &self.routes
    }

    /// The socket (opened on first use) and the device's index, looked up on every call: a
    /// device re-created under the same name gets a new index.
    fn ctx(&mut self, what: &str) -> Result<(&mut Netlink, u32), NetError> {
        let index = nix::net::if_::if_nametoindex(self.dev.as_str()).map_err(|e| NetError {
            what: what.to_string(),
            reason: format!("no device {}: {e}", self.dev),
        })?;
        let nl = match &mut self.nl {
            Some(nl) => nl,
            slot => slot.insert(Netlink::open(what)?),
        };
        Ok((nl, index))
    }

    /// Brings the device up. With `no_link_local`, first turns off IPv6 address generation on it
    /// (`IN6_ADDR_GEN_MODE_NONE`) and multicast: a translator's TUN needs no fe80:: address, and
    /// without one the kernel sends no router solicitations into it. (Its MLD reports for ff02::2,
    /// sent from :: because the gateway is a router, remain: two at start, counted as
    /// `icmp_untranslatable`.)
    ///
    /// # Errors
    /// Setting the link up failed (a refused address generation mode is not an error: old
    /// kernels lack it).
    pub fn link_up(&mut self, no_link_local: bool) -> Result<(), NetError> {
        if no_link_local {
            let what = format!("set addrgenmode none, multicast off on {}", self.dev);
            let (nl, index) = self.ctx(&what)?;
            let mut m = LinkMessage::default();
            m.header.index = index;
            m.header.change_mask = LinkFlags::Multicast;
            m.attributes
                .push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
                    vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)],
                )]));
            if let Err(e) = nl.request(RouteNetlinkMessage::SetLink(m), 0, &what) {
                tracing::debug!("{e}");
            }
        }
        let what = format!("set link {} up", self.dev);
        let (nl, index) = self.ctx(&what)?;
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        nl.request(RouteNetlinkMessage::SetLink(m), 0, &what)
    }

    /// Caps the segments of a GSO packet the kernel hands the device (`IFLA_GSO_MAX_SEGS`): a
    /// larger one is segmented in software before it reaches the TUN.
    ///
    /// # Errors
    /// The kernel refused the setting (one without a settable `gso_max_segs`).
    pub fn limit_gso_segments(&mut self, n: usize) -> Result<(), NetError> {
        let what = format!("set link {} gso_max_segs {n}", self.dev);
        let (nl, index) = self.ctx(&what)?;
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.attributes.push(LinkAttribute::GsoMaxSegs(
            u32::try_from(n).unwrap_or(u32::MAX),
        ));
        nl.request(RouteNetlinkMessage::SetLink(m), 0, &what)
    }

    fn address_message(a: IpPrefix, index: u32) -> AddressMessage {
        let mut m = AddressMessage::default();
        m.header.family = family(a.addr);
        m.header.prefix_len = a.len;
        m.header.index = index;
        m.attributes.push(AddressAttribute::Local(a.addr));
        m.attributes.push(AddressAttribute::Address(a.addr));
        m
    }

    /// Adds `a` to the device, replacing the same address (IPv6 addresses without duplicate
    /// address detection).
    ///
    /// # Errors
    /// The kernel refused the address.
    pub fn add_address(&mut self, a: IpPrefix) -> Result<(), NetError> {
        let what = format!("add address {a} dev {}", self.dev);
        let (nl, index) = self.ctx(&what)?;
        let mut m = Self::address_message(a, index);
        if a.addr.is_ipv6() {
            m.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        nl.request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_REPLACE,
            &what,
        )?;
        self.addresses.push(a);
        Ok(())
    }

    fn del_address_now(&mut self, a: IpPrefix) -> Result<(), NetError> {
        let what = format!("delete address {a} dev {}", self.dev);
        let (nl, index) = self.ctx(&what)?;
        let m = Self::address_message(a, index);
        nl.request(RouteNetlinkMessage::DelAddress(m), 0, &what)
    }

    fn route_message(p: IpPrefix, index: u32, add: bool) -> RouteMessage {
        let mut m = RouteMessage::default();
        m.header.address_family = family(p.addr);
        m.header.destination_prefix_length = p.len;
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        if add {
            m.header.protocol = RouteProtocol::Boot;
            m.header.kind = RouteType::Unicast;
            // A device route without a gateway: link scope in IPv4 (as iproute2 sets it);
            // IPv6 routes are always universe scope.
            m.header.scope = match p.addr {
                IpAddr::V4(_) => RouteScope::Link,
                IpAddr::V6(_) => RouteScope::Universe,
            };
        } else {
            m.header.scope = RouteScope::NoWhere;
        }
        m.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(p.addr)));
        m.attributes.push(RouteAttribute::Oif(index));
        m
    }

    /// Points `p` into the device (replacing an existing route to the same prefix).
    ///
    /// # Errors
    /// The kernel refused the route.
    pub fn add_route(&mut self, p: IpPrefix) -> Result<(), NetError> {
        let what = format!("add route {p} dev {}", self.dev);
        let (nl, index) = self.ctx(&what)?;
        let m = Self::route_message(p, index, true);
        nl.request(
            RouteNetlinkMessage::NewRoute(m),
            NLM_F_CREATE | NLM_F_REPLACE,
            &what,
        )?;
        if !self.routes.contains(&p) {
            self.routes.push(p);
        }
        Ok(())
    }

    fn del_route_now(&mut self, p: IpPrefix) -> Result<(), NetError> {
        let what = format!("delete route {p} dev {}", self.dev);
        let (nl, index) = self.ctx(&what)?;
        let m = Self::route_message(p, index, false);
        nl.request(RouteNetlinkMessage::DelRoute(m), 0, &what)
    }

    /// Removes a route this process added.
    ///
    /// # Errors
    /// The kernel refused to delete it.
    pub fn del_route(&mut self, p: IpPrefix) -> Result<(), NetError> {
        self.routes.retain(|r| *r != p);
        self.del_route_now(p)
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

    /// Removes every route and address this process added (on stop, or after a failed start).
    /// Errors are returned for logging; removal goes on.
    pub fn remove_all(&mut self) -> Vec<NetError> {
        let mut errs = Vec::new();
        for r in std::mem::take(&mut self.routes) {
            if let Err(e) = self.del_route_now(r) {
                errs.push(e);
            }
        }
        for a in std::mem::take(&mut self.addresses) {
            if let Err(e) = self.del_address_now(a) {
                errs.push(e);
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An NLMSG_ERROR payload after the code: the echoed request header (capped), then
    /// NLMSGERR_ATTR_MSG (type 1) "Nexthop device is not up\0" padded to 4 bytes.
    fn capped_with_msg() -> Vec<u8> {
        let mut p = vec![0u8; 16];
        p[..4].copy_from_slice(&44u32.to_ne_bytes()); // the original length: must be ignored
        let text = b"Nexthop device is not up\0";
        let len = (4 + text.len()) as u16;
        p.extend_from_slice(&len.to_ne_bytes());
        p.extend_from_slice(&1u16.to_ne_bytes());
        p.extend_from_slice(text);
        while !p.len().is_multiple_of(4) {
            p.push(0);
        }
        p
    }

    #[test]
    fn ext_ack_message_read_after_capped_header() {
        let p = capped_with_msg();
        assert_eq!(
            ext_ack_message(NLM_F_CAPPED | NLM_F_ACK_TLVS, &p).as_deref(),
            Some("Nexthop device is not up")
        );
        // Without NLM_F_ACK_TLVS there are no attributes to read.
        assert_eq!(ext_ack_message(NLM_F_CAPPED, &p), None);
    }

    #[test]
    fn ext_ack_message_skips_a_full_echoed_request_and_other_attributes() {
        // Uncapped: the whole 20-byte request is echoed, then an NLMSGERR_ATTR_OFFS (type 2,
        // u32) before the message.
        let mut p = vec![0u8; 20];
        p[..4].copy_from_slice(&20u32.to_ne_bytes());
        p.extend_from_slice(&8u16.to_ne_bytes());
        p.extend_from_slice(&2u16.to_ne_bytes());
        p.extend_from_slice(&16u32.to_ne_bytes());
        p.extend_from_slice(&9u16.to_ne_bytes());
        p.extend_from_slice(&1u16.to_ne_bytes());
        p.extend_from_slice(b"bad\0\0\0\0\0");
        assert_eq!(ext_ack_message(NLM_F_ACK_TLVS, &p).as_deref(), Some("bad"));
        // A truncated attribute is not read past the buffer.
        assert_eq!(ext_ack_message(NLM_F_ACK_TLVS, &p[..30]), None);
    }

    #[test]
    fn host_addresses_include_loopback() {
        // Every network namespace has lo with 127.0.0.1 (a dump needs no privilege).
        let a = host_ipv4_addresses().expect("RTM_GETADDR dump");
        assert!(
            a.contains(&("lo".to_string(), Ipv4Addr::LOCALHOST)),
            "{a:?}"
        );
    }
}
