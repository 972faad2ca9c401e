//! `nat64d translate`: run captured packets through the translator the daemon would build and
//! show the verdicts.
//!
//! Reads IP packets from a pcap or pcapng capture (raw IP, Ethernet with VLAN tags, Linux cooked
//! v1/v2 as `tcpdump -i any` writes, BSD loopback; link headers stripped, frames that carry no IP
//! packet named in the report) or as hex on standard input (one packet per line), translates
//! each with the configured mode: stateless SIIT (pool6/EAMT/RFC 6791 tables) or stateful NAT64
//! (pool4, static BIB, timeouts, filtering; the tables are kept across the packets of one
//! capture and expire on the capture's clock). Prints one line per packet and
//! writes the translated packets (and ICMP errors) to a LINKTYPE_RAW pcap. A NAT64 fragment
//! that arrived before its first fragment is reported `drop fragment_held`; the packets it
//! becomes once its first fragment is translated follow that packet's line, tagged `released`
//! (RFC 6146 §3.4), in the order the daemon would send them.

use crate::dataplane::xlator::{Translator, Xlate};
use anyhow::{bail, Context, Result};
use nat64_core::nat64::Nat64;
use nat64_core::siit::Siit;
use nat64_core::{packets, Ctx, DropCounters, Timestamp, Verdict, AUX_LEN, HEADROOM};
use pcap_parser::nom;
use std::fmt::Write as _;
use std::io::{BufRead, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// Link types we read (<https://www.tcpdump.org/linktypes.html>).
const LINKTYPE_NULL: u32 = 0;
const LINKTYPE_ETHERNET: u32 = 1;
const LINKTYPE_RAW: u32 = 101;
const LINKTYPE_LOOP: u32 = 108;
const LINKTYPE_LINUX_SLL: u32 = 113;
const LINKTYPE_IPV4: u32 = 228;
const LINKTYPE_IPV6: u32 = 229;
const LINKTYPE_LINUX_SLL2: u32 = 276;
/// DLT_RAW as some BSDs number it.
const DLT_RAW_12: u32 = 12;
const DLT_RAW_14: u32 = 14;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
/// IEEE 802.1Q C-tag, 802.1ad S-tag, and the pre-standard QinQ tag.
const ETHERTYPE_VLAN: [u16; 3] = [0x8100, 0x88a8, 0x9100];
/// More stacked tags than this is not a frame anyone captured.
const MAX_VLAN_TAGS: usize = 4;

/// One captured packet: time (seconds, microseconds) and the IP bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    pub ts: (u32, u32),
    pub ip: Vec<u8>,
}

/// A capture file's IP packets, and the frames that carried none (record number, why).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Capture {
    pub packets: Vec<Captured>,
    pub skipped: Vec<(usize, String)>,
}

/// Reads a pcap or pcapng file and returns its IP packets (frames that carry none are left out;
/// [`read_capture`] names them).
///
/// # Errors
/// See [`read_capture`].
pub fn read_pcap(data: &[u8], name: &str) -> Result<Vec<Captured>> {
    Ok(read_capture(data, name)?.packets)
}

/// Reads a pcap or pcapng file (parsed by `pcap-parser`) and strips each frame's link header:
/// raw IP (101, 228, 229, and 12/14 as BSDs number DLT_RAW), Ethernet with any 802.1Q/802.1ad
/// tags, Linux cooked v1 (113) and v2 (276, what `tcpdump -i any` writes), BSD loopback (0, 108).
///
/// # Errors
/// Not a capture file, a link type we cannot strip, or a truncated or malformed block, naming
/// the file and the record.
pub fn read_capture(data: &[u8], name: &str) -> Result<Capture> {
    if data.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        read_pcapng(data, name)
    } else {
        read_legacy(data, name)
    }
}

/// Classic pcap. `LegacyPcapSlice` reads every record as little-endian and ignores the
/// nanosecond magic, so records are parsed here with the frame parser the header calls for.
fn read_legacy(data: &[u8], name: &str) -> Result<Capture> {
    use pcap_parser::pcap::{
        parse_pcap_frame, parse_pcap_frame_be, parse_pcap_frame_modified, parse_pcap_header,
    };
    let (mut rest, hdr) = match parse_pcap_header(data) {
        Ok(ok) => ok,
        Err(nom::Err::Incomplete(_)) => bail!("{name}: too short for a pcap file header"),
        Err(_) => {
            let magic = data
                .get(..4)
                .map_or(0, |m| u32::from_le_bytes([m[0], m[1], m[2], m[3]]));
            bail!("{name}: not a pcap or pcapng file (magic {magic:#010x})")
        }
    };
    // The upper bits of the link-type field carry the FCS length (pcap file format §4).
    let linktype = (hdr.network.0 as u32) & 0x0fff_ffff;
    check_linktype(linktype, name)?;
    let parse = if hdr.is_modified_format() {
        parse_pcap_frame_modified
    } else if hdr.is_bigendian() {
        parse_pcap_frame_be
    } else {
        parse_pcap_frame
    };
    let nanos = hdr.is_nanosecond_precision();
    let mut cap = Capture::default();
    let mut n = 0;
    while !rest.is_empty() {
        n += 1;
        let (r, rec) = match parse(rest) {
            Ok(ok) => ok,
            Err(nom::Err::Incomplete(_)) => bail!("{name}: record {n} is truncated"),
            Err(e) => bail!("{name}: record {n} is malformed: {e:?}"),
        };
        rest = r;
        let usec = if nanos {
            rec.ts_usec / 1000
        } else {
            rec.ts_usec
        };
        push_frame(&mut cap, n, linktype, (rec.ts_sec, usec), rec.data);
    }
    Ok(cap)
}

/// One pcapng interface: its link type and clock.
struct Interface {
    linktype: u32,
    /// Timestamp units per second (`if_tsresol`).
    units: u64,
    offset: i64,
}

/// `if_tsresol` (pcapng §4.2): the low 7 bits are a power of ten, or of two when the top bit is
/// set. pcap-parser's own helper refuses every power of two, so it is decoded here.
fn tsresol_units(r: u8) -> Option<u64> {
    let e = u32::from(r & 0x7f);
    if r & 0x80 == 0 {
        10u64.checked_pow(e)
    } else {
        1u64.checked_shl(e).filter(|_| e < 64)
    }
}

/// pcapng: sections, each with its own interfaces; EPB timestamps in the interface's units.
fn read_pcapng(data: &[u8], name: &str) -> Result<Capture> {
    use pcap_parser::pcapng::Block;
    use pcap_parser::traits::PcapNGPacketBlock;
    use pcap_parser::{PcapBlockOwned, PcapNGSlice};
    let blocks = PcapNGSlice::from_slice(data).map_err(|e| {
        anyhow::anyhow!("{name}: pcapng section header block is malformed or truncated: {e:?}")
    })?;
    let mut cap = Capture::default();
    let mut ifaces: Vec<Interface> = Vec::new();
    let mut last_ts = (0, 0);
    let mut n = 0;
    for (i, b) in blocks.enumerate() {
        let b = match b {
            Ok(PcapBlockOwned::NG(b)) => b,
            Ok(_) => continue,
            Err(nom::Err::Incomplete(_)) => bail!("{name}: block {} is truncated", i + 1),
            Err(e) => bail!("{name}: block {} is malformed: {e:?}", i + 1),
        };
        match b {
            // A new section starts with no interfaces (pcapng §4.1).
            Block::SectionHeader(_) => ifaces.clear(),
            Block::InterfaceDescription(idb) => {
                let linktype = (idb.linktype.0 as u32) & 0x0fff_ffff;
                check_linktype(linktype, name)?;
                let Some(units) = tsresol_units(idb.if_tsresol) else {
                    bail!(
                        "{name}: interface {}: if_tsresol {:#04x} is out of range",
                        ifaces.len(),
                        idb.if_tsresol
                    );
                };
                ifaces.push(Interface {
                    linktype,
                    units,
                    offset: idb.if_tsoffset,
                });
            }
            Block::EnhancedPacket(epb) => {
                n += 1;
                let Some(ifc) = ifaces.get(epb.if_id as usize) else {
                    bail!(
                        "{name}: packet {n} names interface {} but the section describes {}",
                        epb.if_id,
                        ifaces.len()
                    );
                };
                let t = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                let secs = i128::from(t / ifc.units) + i128::from(ifc.offset);
                let frac = u128::from(t % ifc.units) * 1_000_000 / u128::from(ifc.units);
                let ts = (
                    u32::try_from(secs).unwrap_or(0),
                    u32::try_from(frac).unwrap_or(0),
                );
                last_ts = ts;
                push_frame(&mut cap, n, ifc.linktype, ts, epb.packet_data());
            }
            // A Simple Packet Block has no time and belongs to the first interface (§4.4).
            Block::SimplePacket(spb) => {
                n += 1;
                let Some(ifc) = ifaces.first() else {
                    bail!("{name}: packet {n} comes before any interface description");
                };
                push_frame(&mut cap, n, ifc.linktype, last_ts, spb.packet_data());
            }
            _ => {}
        }
    }
    Ok(cap)
}

/// Refuses a link type we cannot strip, with the ones we can.
fn check_linktype(linktype: u32, name: &str) -> Result<()> {
    match linktype {
        LINKTYPE_NULL | LINKTYPE_ETHERNET | LINKTYPE_RAW | LINKTYPE_LOOP | LINKTYPE_LINUX_SLL
        | LINKTYPE_IPV4 | LINKTYPE_IPV6 | LINKTYPE_LINUX_SLL2 | DLT_RAW_12 | DLT_RAW_14 => Ok(()),
        other => bail!(
            "{name}: link type {other} is not supported (supported: raw IP 101/228/229, \
             Ethernet 1 with VLAN tags, Linux cooked 113 and 276, loopback 0/108)"
        ),
    }
}

/// Strips the link header of one frame and keeps the IP packet, or records why there is none.
fn push_frame(cap: &mut Capture, record: usize, linktype: u32, ts: (u32, u32), frame: &[u8]) {
    match strip_link(linktype, frame) {
        Ok(ip) => cap.packets.push(Captured {
            ts,
            ip: ip.to_vec(),
        }),
        Err(why) => cap.skipped.push((record, why)),
    }
}

/// The IP packet inside one frame, or why the frame carries none.
fn strip_link(linktype: u32, f: &[u8]) -> std::result::Result<&[u8], String> {
    let be16 = |at: usize| f.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let short = || format!("{}-byte frame is shorter than its link header", f.len());
    match linktype {
        LINKTYPE_RAW | DLT_RAW_12 | DLT_RAW_14 | LINKTYPE_IPV4 | LINKTYPE_IPV6 => {
            match f.first().map(|b| b >> 4) {
                Some(4 | 6) => Ok(f),
                _ => Err("not an IPv4 or IPv6 packet".to_string()),
            }
        }
        // Destination, source, EtherType (IEEE 802.3 §3.1.1), then any VLAN tags.
        LINKTYPE_ETHERNET => ethertype_payload(be16(12).ok_or_else(short)?, &f[14..]),
        // Linux cooked v1: packet type, ARPHRD, address length, 8 address bytes, protocol.
        LINKTYPE_LINUX_SLL => ethertype_payload(be16(14).ok_or_else(short)?, &f[16..]),
        // Linux cooked v2: protocol, reserved, ifindex, ARPHRD, packet type, address length,
        // 8 address bytes.
        LINKTYPE_LINUX_SLL2 => {
            if f.len() < 20 {
                return Err(short());
            }
            ethertype_payload(be16(0).ok_or_else(short)?, &f[20..])
        }
        // BSD loopback: the address family in the capturing host's byte order (NULL) or in
        // network order (LOOP). AF_INET is 2 everywhere, AF_INET6 is 24, 28 or 30.
        LINKTYPE_NULL | LINKTYPE_LOOP => {
            let Some(h) = f.get(..4) else {
                return Err(short());
            };
            let fam = [
                u32::from_be_bytes([h[0], h[1], h[2], h[3]]),
                u32::from_le_bytes([h[0], h[1], h[2], h[3]]),
            ];
            if fam.iter().any(|&a| matches!(a, 2 | 24 | 28 | 30)) {
                Ok(&f[4..])
            } else {
                Err(format!("loopback address family {:#x} is not IP", fam[0]))
            }
        }
        other => Err(format!("link type {other}")),
    }
}

/// Follows 802.1Q/802.1ad tags (each a 2-byte TCI and the next EtherType) to an IP payload.
fn ethertype_payload(mut et: u16, mut p: &[u8]) -> std::result::Result<&[u8], String> {
    let mut tags = 0;
    while ETHERTYPE_VLAN.contains(&et) {
        tags += 1;
        if tags > MAX_VLAN_TAGS {
            return Err(format!("more than {MAX_VLAN_TAGS} VLAN tags"));
        }
        let Some(t) = p.get(..4) else {
            return Err("VLAN tag is truncated".to_string());
        };
        et = u16::from_be_bytes([t[2], t[3]]);
        p = &p[4..];
    }
    match et {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => Ok(p),
        other => Err(format!("EtherType {other:#06x} is not IPv4 or IPv6")),
    }
}

/// The clock step between hex packets (they carry no time): 1 ms, so a stateful table sees
/// them as one burst and nothing expires between them.
pub const HEX_STEP_MS: u64 = 1;

/// Parses hex packets, one per line (spaces and colons allowed, `#` starts a comment).
///
/// # Errors
/// A line with a non-hex character or an odd number of digits, naming the line.
pub fn read_hex(r: impl BufRead) -> Result<Vec<Captured>> {
    let mut out = Vec::new();
    for (i, line) in r.lines().enumerate() {
        let line = line.context("reading standard input")?;
        let line = line.split('#').next().unwrap_or("");
        let digits: String = line
            .chars()
            .filter(|c| !c.is_whitespace() && *c != ':')
            .collect();
        if digits.is_empty() {
            continue;
        }
        if !digits.len().is_multiple_of(2) {
            bail!("stdin:{}: odd number of hex digits", i + 1);
        }
        let mut ip = Vec::with_capacity(digits.len() / 2);
        for pair in digits.as_bytes().chunks(2) {
            let s = std::str::from_utf8(pair).unwrap_or("zz");
            let b = u8::from_str_radix(s, 16)
                .with_context(|| format!("stdin:{}: '{s}' is not a hex byte", i + 1))?;
            ip.push(b);
        }
        // Hex has no timestamps: a fixed step of HEX_STEP_MS per packet.
        let ms = out.len() as u64 * HEX_STEP_MS;
        out.push(Captured {
            ts: ((ms / 1000) as u32, ((ms % 1000) * 1000) as u32),
            ip,
        });
    }
    Ok(out)
}

/// A LINKTYPE_RAW pcap writer.
pub struct PcapWriter<W: Write> {
    w: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header.
    ///
    /// # Errors
    /// I/O errors.
    pub fn new(mut w: W) -> std::io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&65535u32.to_le_bytes());
        h.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
        w.write_all(&h)?;
        Ok(PcapWriter { w })
    }

    /// Appends one packet.
    ///
    /// # Errors
    /// I/O errors.
    pub fn write(&mut self, ts: (u32, u32), pkt: &[u8]) -> std::io::Result<()> {
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&ts.0.to_le_bytes());
        h[4..8].copy_from_slice(&ts.1.to_le_bytes());
        h[8..12].copy_from_slice(&(pkt.len() as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(pkt.len() as u32).to_le_bytes());
        self.w.write_all(&h)?;
        self.w.write_all(pkt)
    }

    /// Flushes and returns the writer.
    ///
    /// # Errors
    /// I/O errors.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

/// A one-line summary of an IP packet: addresses, protocol, ports or ICMP type/code, length.
pub fn describe(p: &[u8]) -> String {
    let mut s = String::new();
    let (src, dst, proto, l4): (String, String, u8, &[u8]) = match p.first().map(|b| b >> 4) {
        Some(4) if p.len() >= 20 => {
            let ihl = usize::from(p[0] & 15) * 4;
            let frag = u16::from_be_bytes([p[6], p[7]]) & 0x1fff != 0;
            let l4 = if frag {
                &[][..]
            } else {
                p.get(ihl..).unwrap_or(&[])
            };
            (
                Ipv4Addr::new(p[12], p[13], p[14], p[15]).to_string(),
                Ipv4Addr::new(p[16], p[17], p[18], p[19]).to_string(),
                p[9],
                l4,
            )
        }
        Some(6) if p.len() >= 40 => {
            let a = |at: usize| {
                let mut o = [0u8; 16];
                o.copy_from_slice(&p[at..at + 16]);
                Ipv6Addr::from(o).to_string()
            };
            // Skip a Fragment header to name the protocol; later fragments have no ports.
            let (proto, l4) = if p[6] == 44 && p.len() >= 48 {
                let off = u16::from_be_bytes([p[42], p[43]]) >> 3;
                (p[40], if off == 0 { &p[48..] } else { &[][..] })
            } else {
                (p[6], &p[40..])
            };
            (a(8), a(24), proto, l4)
        }
        _ => return format!("{} bytes, not IP", p.len()),
    };
    let _ = match proto {
        6 | 17 if l4.len() >= 4 => write!(
            s,
            "{src}.{} > {dst}.{} {}",
            u16::from_be_bytes([l4[0], l4[1]]),
            u16::from_be_bytes([l4[2], l4[3]]),
            if proto == 6 { "TCP" } else { "UDP" }
        ),
        1 | 58 if l4.len() >= 2 => write!(
            s,
            "{src} > {dst} {} type {} code {}",
            if proto == 1 { "ICMP" } else { "ICMPv6" },
            l4[0],
            l4[1]
        ),
        _ => write!(s, "{src} > {dst} proto {proto}"),
    };
    let _ = write!(s, ", {} bytes", p.len());
    s
}

/// What `run` did, for the summary line and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub packets: usize,
    pub forwarded: usize,
    pub icmp_errors: usize,
    pub dropped: usize,
    /// Packets the NAT64 timer produced as the capture's clock advanced: ICMPv4 Port Unreachable
    /// for stored SYNs no IPv6 SYN answered (RFC 6146 §3.5.2.2).
    pub timer_errors: usize,
    /// Held fragments (counted as dropped `fragment_held` when they came) translated and sent
    /// after their first fragment (RFC 6146 §3.4).
    pub released: usize,
    /// Held fragments whose first fragment did not come within the fragment timeout.
    pub held_expired: usize,
}

/// The report label and output packets of one verdict.
fn outcome<'a>(v: Verdict, buf: &'a [u8], aux: &'a [u8]) -> (String, Vec<&'a [u8]>) {
    match v {
        Verdict::Forward { start, len } => ("forward".to_string(), vec![&buf[start..start + len]]),
        Verdict::ForwardAux { len } => {
            let outs: Vec<&[u8]> = packets(&aux[..len]).collect();
            (format!("forward {} packets", outs.len()), outs)
        }
        Verdict::IcmpError { len, reason } => (
            format!("icmp-error ({})", reason.as_str()),
            vec![&aux[..len]],
        ),
        Verdict::Drop(reason) => (format!("drop {}", reason.as_str()), Vec::new()),
    }
}

/// Translates every packet, printing one line each to `report`, and writes outputs to `pcap`.
///
/// # Errors
/// Errors writing the report or the pcap.
pub fn translate_all<W: Write, R: Write>(
    xlat: &Replay,
    mode: &str,
    input: &[Captured],
    mut pcap: Option<&mut PcapWriter<W>>,
    report: &mut R,
) -> Result<Summary> {
    let mut buf = vec![0u8; HEADROOM + 65536];
    let mut aux = vec![0u8; AUX_LEN];
    let mut ctx = Ctx::new(Timestamp(0), 1);
    let mut sum = Summary::default();
    let mut drops = DropCounters::default();
    let mut timer = Vec::new();
    for (i, c) in input.iter().enumerate() {
        sum.packets += 1;
        let n = c.ip.len().min(buf.len() - HEADROOM);
        buf[HEADROOM..HEADROOM + n].copy_from_slice(&c.ip[..n]);
        ctx.now = Timestamp(u64::from(c.ts.0) * 1000 + u64::from(c.ts.1) / 1000);
        let dir = match c.ip.first().map(|b| b >> 4) {
            Some(4) => "4->6",
            Some(6) => "6->4",
            _ => "?",
        };
        // The timer's work up to this packet's time, as the daemon's timer would have done it.
        timer.clear();
        let held_expired = xlat.expire(ctx.now, &mut timer);
        if held_expired > 0 {
            sum.held_expired += held_expired;
            writeln!(
                report,
                "timer: {held_expired} held fragments expired without their first fragment"
            )?;
        }
        for e in packets(&timer) {
            sum.timer_errors += 1;
            writeln!(report, "timer: stored SYN expired  [icmp-error]")?;
            writeln!(report, "    -> {}", describe(e))?;
            if let Some(w) = pcap.as_mut() {
                w.write(c.ts, e).context("writing the output pcap")?;
            }
        }
        let verdict = xlat.translate(&mut ctx, &mut buf, HEADROOM, n, &mut aux);
        match verdict {
            Verdict::Forward { .. } | Verdict::ForwardAux { .. } => sum.forwarded += 1,
            Verdict::IcmpError { reason, .. } => {
                sum.icmp_errors += 1;
                drops.count(reason);
            }
            Verdict::Drop(reason) => {
                sum.dropped += 1;
                drops.count(reason);
            }
        }
        let (label, outs) = outcome(verdict, &buf, &aux);
        writeln!(report, "#{} {dir} {}  [{}]", i + 1, describe(&c.ip), label)?;
        for o in outs {
            writeln!(report, "    -> {}", describe(o))?;
            if let Some(w) = pcap.as_mut() {
                w.write(c.ts, o).context("writing the output pcap")?;
            }
        }
        // RFC 6146 §3.4: fragments held for this packet's datagram, translated now.
        while let Some(v) = xlat.take_released(&mut ctx, &mut buf, HEADROOM, &mut aux) {
            if matches!(v, Verdict::Forward { .. } | Verdict::ForwardAux { .. }) {
                sum.released += 1;
            } else if let Some(r) = v.drop_reason() {
                drops.count(r);
            }
            let (label, outs) = outcome(v, &buf, &aux);
            writeln!(
                report,
                "  released: a held fragment of #{}  [{label}]",
                i + 1
            )?;
            for o in outs {
                writeln!(report, "    -> {}", describe(o))?;
                if let Some(w) = pcap.as_mut() {
                    w.write(c.ts, o).context("writing the output pcap")?;
                }
            }
        }
    }
    writeln!(
        report,
        "{} packets ({mode}): {} forwarded, {} answered with an ICMP error, {} dropped{}",
        sum.packets,
        sum.forwarded,
        sum.icmp_errors,
        sum.dropped,
        if sum.timer_errors > 0 {
            format!("; {} ICMP errors from the NAT64 timer", sum.timer_errors)
        } else {
            String::new()
        }
    )?;
    if sum.released > 0 || sum.held_expired > 0 {
        writeln!(
            report,
            "held fragments (RFC 6146 §3.4): {} released and forwarded after their first \
             fragment, {} expired",
            sum.released, sum.held_expired
        )?;
    }
    Ok(sum)
}

/// The `nat64d translate` command.
///
/// # Errors
/// Config, input or output errors, with the file named.
pub fn run(
    config: &Path,
    input: Option<&Path>,
    output: Option<&Path>,
    seed: u64,
) -> Result<Summary> {
    let cfg = crate::config::load(config)?;
    // The translator `run` would build (see `daemon`), with `seed` for the table hash so that
    // a replay is reproducible.
    let (xlat, mode) = match (&cfg.mode, &cfg.nat64) {
        (crate::config::Mode::Nat64, Some(n)) => {
            let mut c = n.core.clone();
            c.hash_seed = seed;
            let nat =
                Nat64::new(c).map_err(|e| anyhow::anyhow!("{}: nat64: {e}", config.display()))?;
            (Replay(Translator::Nat64(std::sync::Arc::new(nat))), "nat64")
        }
        _ => (Replay(Translator::Siit(Siit::new(cfg.siit))), "siit"),
    };
    let cap = match input {
        Some(p) if p.as_os_str() != "-" => {
            let data = std::fs::read(p).with_context(|| format!("{}: cannot read", p.display()))?;
            read_capture(&data, &p.display().to_string())?
        }
        _ => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading standard input")?;
            Capture {
                packets: read_hex(s.as_bytes())?,
                skipped: Vec::new(),
            }
        }
    };
    let stdout = std::io::stdout();
    let mut report = stdout.lock();
    // Frames without an IP packet (ARP, LLDP, ...) are named, not silently dropped.
    for (record, why) in &cap.skipped {
        writeln!(report, "record {record} skipped: {why}")?;
    }
    let packets = cap.packets;
    match output {
        Some(o) => {
            let f = std::fs::File::create(o)
                .with_context(|| format!("{}: cannot create", o.display()))?;
            let mut w = PcapWriter::new(std::io::BufWriter::new(f))
                .with_context(|| format!("{}: cannot write", o.display()))?;
            let s = translate_all(&xlat, mode, &packets, Some(&mut w), &mut report)?;
            w.finish()
                .with_context(|| format!("{}: cannot write", o.display()))?;
            Ok(s)
        }
        None => translate_all::<std::io::Sink, _>(&xlat, mode, &packets, None, &mut report),
    }
}

/// The translator of a replay: in NAT64 mode the tables expire on the capture's clock before
/// each packet ([`Replay::expire`]), as the daemon's timer would expire them.
pub struct Replay(Translator);

impl Replay {
    /// Expires the NAT64 tables at `now`, appending the packets the timer sends (back to back).
    /// Returns the held fragments that expired.
    pub fn expire(&self, now: Timestamp, out: &mut Vec<u8>) -> usize {
        match &self.0 {
            Translator::Nat64(n) => n.expire_with_errors(now, out).held_expired,
            Translator::Siit(_) => 0,
        }
    }
}

impl Xlate for Replay {
    fn translate(
        &self,
        ctx: &mut Ctx,
        buf: &mut [u8],
        start: usize,
        len: usize,
        aux: &mut [u8],
    ) -> Verdict {
        self.0.translate(ctx, buf, start, len, aux)
    }

    fn take_released(
        &self,
        ctx: &mut Ctx,
        buf: &mut [u8],
        start: usize,
        aux: &mut [u8],
    ) -> Option<Verdict> {
        self.0.take_released(ctx, buf, start, aux)
    }
}
