//! `nat64d translate`: run captured packets through the translator the daemon would build and
//! show the verdicts.
//!
//! Reads raw IP packets from a classic pcap file (LINKTYPE_RAW and friends; Ethernet and Linux
//! cooked captures have their link header stripped) or as hex on standard input (one packet per
//! line), translates each with the configured mode: stateless SIIT (pool6/EAMT/RFC 6791 tables)
//! or stateful NAT64 (pool4, static BIB, timeouts, filtering; the tables are kept across the
//! packets of one capture and expire on the capture's clock). Prints one line per packet and
//! writes the translated packets (and ICMP errors) to a LINKTYPE_RAW pcap.

use crate::xlator::{Translator, Xlate};
use anyhow::{bail, Context, Result};
use nat64_core::nat64::Nat64;
use nat64_core::siit::Siit;
use nat64_core::{packets, Ctx, DropCounters, Timestamp, Verdict, AUX_LEN, HEADROOM};
use std::fmt::Write as _;
use std::io::{BufRead, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// pcap link types we accept.
const LINKTYPE_ETHERNET: u32 = 1;
const LINKTYPE_RAW: u32 = 101;
const LINKTYPE_LINUX_SLL: u32 = 113;
const LINKTYPE_IPV4: u32 = 228;
const LINKTYPE_IPV6: u32 = 229;
/// DLT_RAW as some BSDs number it.
const DLT_RAW_12: u32 = 12;
const DLT_RAW_14: u32 = 14;

/// One captured packet: time (seconds, microseconds) and the IP bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    pub ts: (u32, u32),
    pub ip: Vec<u8>,
}

/// Reads a classic pcap file (not pcapng) and returns its IP packets.
///
/// # Errors
/// Not a pcap file, an unsupported link type, or a truncated record.
pub fn read_pcap(data: &[u8], name: &str) -> Result<Vec<Captured>> {
    if data.len() < 24 {
        bail!("{name}: too short for a pcap file header");
    }
    let magic = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
    let (le, nanos) = match magic {
        0xa1b2_c3d4 => (true, false),
        0xa1b2_3c4d => (true, true),
        0xd4c3_b2a1 => (false, false),
        0x4d3c_b2a1 => (false, true),
        0x0a0d_0d0a => bail!("{name}: pcapng is not supported; convert it with `editcap -F pcap`"),
        _ => bail!("{name}: not a pcap file (magic {magic:#010x})"),
    };
    let u32_at = |at: usize| -> u32 {
        let b = [data[at], data[at + 1], data[at + 2], data[at + 3]];
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let linktype = u32_at(20) & 0x0fff_ffff;
    let strip = match linktype {
        LINKTYPE_RAW | LINKTYPE_IPV4 | LINKTYPE_IPV6 | DLT_RAW_12 | DLT_RAW_14 => 0,
        LINKTYPE_ETHERNET => 14,
        LINKTYPE_LINUX_SLL => 16,
        other => bail!("{name}: link type {other} is not supported (use raw IP, Ethernet or Linux cooked captures)"),
    };
    let mut out = Vec::new();
    let mut at = 24;
    let mut n = 0;
    while at < data.len() {
        n += 1;
        if at + 16 > data.len() {
            bail!("{name}: record {n} header is truncated");
        }
        let (sec, frac, incl) = (u32_at(at), u32_at(at + 4), u32_at(at + 8) as usize);
        at += 16;
        let Some(rec) = data.get(at..at + incl) else {
            bail!("{name}: record {n} claims {incl} bytes past the end of the file");
        };
        at += incl;
        let usec = if nanos { frac / 1000 } else { frac };
        if rec.len() < strip {
            continue;
        }
        // Ethernet and SLL: keep only IPv4/IPv6 frames.
        if strip > 0 {
            let et = u16::from_be_bytes([rec[strip - 2], rec[strip - 1]]);
            if et != 0x0800 && et != 0x86dd {
                continue;
            }
        }
        out.push(Captured {
            ts: (sec, usec),
            ip: rec[strip..].to_vec(),
        });
    }
    Ok(out)
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
}

/// Translates every packet, printing one line each to `report`, and writes outputs to `pcap`.
///
/// # Errors
/// Errors writing the report or the pcap.
pub fn translate_all<X: Xlate, W: Write, R: Write>(
    xlat: &X,
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
        let mut outs: Vec<&[u8]> = Vec::new();
        let verdict = xlat.translate(&mut ctx, &mut buf, HEADROOM, n, &mut aux);
        let label = match verdict {
            Verdict::Forward { start, len } => {
                sum.forwarded += 1;
                outs.push(&buf[start..start + len]);
                "forward".to_string()
            }
            Verdict::ForwardAux { len } => {
                sum.forwarded += 1;
                outs.extend(packets(&aux[..len]));
                format!("forward {} packets", outs.len())
            }
            Verdict::IcmpError { len, reason } => {
                sum.icmp_errors += 1;
                drops.count(reason);
                outs.push(&aux[..len]);
                format!("icmp-error ({})", reason.as_str())
            }
            Verdict::Drop(reason) => {
                sum.dropped += 1;
                drops.count(reason);
                format!("drop {}", reason.as_str())
            }
        };
        writeln!(report, "#{} {dir} {}  [{}]", i + 1, describe(&c.ip), label)?;
        for o in outs {
            writeln!(report, "    -> {}", describe(o))?;
            if let Some(w) = pcap.as_mut() {
                w.write(c.ts, o).context("writing the output pcap")?;
            }
        }
    }
    writeln!(
        report,
        "{} packets ({mode}): {} forwarded, {} answered with an ICMP error, {} dropped",
        sum.packets, sum.forwarded, sum.icmp_errors, sum.dropped
    )?;
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
    let packets = match input {
        Some(p) if p.as_os_str() != "-" => {
            let data = std::fs::read(p).with_context(|| format!("{}: cannot read", p.display()))?;
            read_pcap(&data, &p.display().to_string())?
        }
        _ => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading standard input")?;
            read_hex(s.as_bytes())?
        }
    };
    let stdout = std::io::stdout();
    let mut report = stdout.lock();
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
        None => translate_all::<_, std::io::Sink, _>(&xlat, mode, &packets, None, &mut report),
    }
}

/// The translator of a replay: in NAT64 mode the tables expire on the capture's clock before
/// each packet, as the daemon's timer would expire them.
struct Replay(Translator);

impl Xlate for Replay {
    fn translate(
        &self,
        ctx: &mut Ctx,
        buf: &mut [u8],
        start: usize,
        len: usize,
        aux: &mut [u8],
    ) -> Verdict {
        if let Translator::Nat64(n) = &self.0 {
            n.expire(ctx.now);
        }
        self.0.translate(ctx, buf, start, len, aux)
    }
}
