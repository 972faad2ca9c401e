//! UDP traffic for `netns-scripts/bench.sh`: bursts of new flows and fixed-rate streams, a sink,
//! and a poller that times how fast a gateway's flow table grows.
//!
//! - `send`: UDP datagrams from raw sockets (one per source address, bound to it and connected to
//!   the destination), so one process can use thousands of source ports without a socket each.
//!   Packets go out in batches of `--batch` with `sendmmsg`, to one source address per batch, the
//!   addresses in turn, each sending an equal share of `--packets`; within an address the source
//!   port steps through `--ports` ports from `--sport`. `--ports N --packets N*hosts` is a burst of new flows, one packet each;
//!   `--ports 1 --rate R` a single flow at a fixed rate. Bounded by `--packets` and `--max-secs`.
//!   Prints `sent= elapsed_s= rate= start_ms= end_ms=` (wall-clock milliseconds).
//! - `sink`: a dual-stack UDP socket on `--port` that reads and discards until `--max-secs`.
//! - `poll`: samples a count every `--interval-ms` (nat64d's UDP sessions from `stats format=json`
//!   on its control socket, or a file such as the namespace's `nf_conntrack_count`) until it has not moved for
//!   `--settle-ms` after moving, and prints `initial= final= first_ms= last_ms= rate=`: the count's
//!   rise over the time between the last sample at the initial value and the first sample at the
//!   final one.
//!
//! Linux only (raw sockets need CAP_NET_RAW); run inside the bench's namespaces.

use clap::{Parser, Subcommand};
use nix::sys::socket::{sendmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::{IoSlice, Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Send UDP datagrams from raw sockets.
    Send {
        /// Source addresses, comma-separated (all of one family, the destination's).
        #[arg(long, value_delimiter = ',', required = true)]
        src: Vec<IpAddr>,
        /// Destination address.
        #[arg(long)]
        dst: IpAddr,
        /// Destination port.
        #[arg(long, default_value_t = 9000)]
        dport: u16,
        /// First source port.
        #[arg(long, default_value_t = 10000)]
        sport: u16,
        /// Source ports per address (the flows of one address).
        #[arg(long, default_value_t = 1)]
        ports: u16,
        /// Packets in all.
        #[arg(long)]
        packets: u64,
        /// UDP payload bytes.
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Packets per second (0: as fast as the sockets take them).
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// Packets per sendmmsg call.
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// Stop after this many seconds whatever was sent.
        #[arg(long, default_value_t = 30.0)]
        max_secs: f64,
    },
    /// Read and discard UDP datagrams (both families) on a port.
    Sink {
        #[arg(long, default_value_t = 9000)]
        port: u16,
        #[arg(long, default_value_t = 3600.0)]
        max_secs: f64,
    },
    /// Time the growth of a count.
    Poll {
        /// nat64d's control socket: the count is its UDP sessions.
        #[arg(long, conflicts_with = "file")]
        socket: Option<PathBuf>,
        /// A file holding one number (e.g. /proc/sys/net/netfilter/nf_conntrack_count).
        #[arg(long)]
        file: Option<PathBuf>,
        #[arg(long, default_value_t = 2)]
        interval_ms: u64,
        /// Done once the count has moved and then stayed for this long.
        #[arg(long, default_value_t = 1000)]
        settle_ms: u64,
        /// Give up (and say so) after this many seconds.
        #[arg(long, default_value_t = 30.0)]
        max_secs: f64,
    },
}

fn main() {
    let res = match Cli::parse().cmd {
        Cmd::Send {
            src,
            dst,
            dport,
            sport,
            ports,
            packets,
            size,
            rate,
            batch,
            max_secs,
        } => send(&Send {
            src,
            dst,
            dport,
            sport,
            ports,
            packets,
            size,
            rate,
            batch,
            max_secs,
        }),
        Cmd::Sink { port, max_secs } => sink(port, max_secs),
        Cmd::Poll {
            socket,
            file,
            interval_ms,
            settle_ms,
            max_secs,
        } => poll(socket, file, interval_ms, settle_ms, max_secs),
    };
    if let Err(e) = res {
        eprintln!("flowgen: {e}");
        std::process::exit(1);
    }
}

fn unix_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1e3)
        .unwrap_or(0.0)
}

struct Send {
    src: Vec<IpAddr>,
    dst: IpAddr,
    dport: u16,
    sport: u16,
    ports: u16,
    packets: u64,
    size: usize,
    rate: u64,
    batch: usize,
    max_secs: f64,
}

/// One's-complement sum of `data` as 16-bit big-endian words, added to `acc`.
fn sum16(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        acc += u32::from(*b) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The UDP checksum's pseudo-header sum (RFC 768, RFC 8200 §8.1) for `len` bytes of UDP.
fn pseudo_sum(src: IpAddr, dst: IpAddr, len: usize) -> Result<u32, String> {
    let acc = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => sum16(sum16(0, &s.octets()), &d.octets()),
        (IpAddr::V6(s), IpAddr::V6(d)) => sum16(sum16(0, &s.octets()), &d.octets()),
        _ => return Err(format!("{src} and {dst} are not of one family")),
    };
    Ok(acc + 17 + len as u32)
}

/// Writes a UDP header and payload for `sport` into `buf` (its length is the datagram's).
fn write_udp(buf: &mut [u8], pseudo: u32, sport: u16, dport: u16) {
    let len = buf.len() as u16;
    buf[0..2].copy_from_slice(&sport.to_be_bytes());
    buf[2..4].copy_from_slice(&dport.to_be_bytes());
    buf[4..6].copy_from_slice(&len.to_be_bytes());
    buf[6..8].copy_from_slice(&[0, 0]);
    let c = !fold(sum16(pseudo, buf));
    // A computed 0 is sent as all ones (0 means "no checksum" in IPv4 and is invalid in IPv6).
    let c = if c == 0 { 0xffff } else { c };
    buf[6..8].copy_from_slice(&c.to_be_bytes());
}

fn raw_socket(src: IpAddr, dst: IpAddr) -> Result<Socket, String> {
    let dom = if src.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let s = Socket::new(dom, Type::RAW, Some(Protocol::UDP))
        .map_err(|e| format!("raw socket (needs CAP_NET_RAW): {e}"))?;
    // Raw UDP sockets also get a copy of every UDP datagram arriving here: keep that queue small.
    let _ = s.set_recv_buffer_size(4096);
    let _ = s.set_send_buffer_size(4 << 20);
    s.bind(&SockAddr::from(SocketAddr::new(src, 0)))
        .map_err(|e| format!("bind {src}: {e}"))?;
    s.connect(&SockAddr::from(SocketAddr::new(dst, 0)))
        .map_err(|e| format!("connect {dst}: {e}"))?;
    Ok(s)
}

fn send(a: &Send) -> Result<(), String> {
    if a.src.is_empty() || a.ports == 0 || a.batch == 0 {
        return Err("need at least one source address, port and packet per batch".into());
    }
    if u32::from(a.sport) + u32::from(a.ports) > 65536 {
        return Err("--sport + --ports passes 65535".into());
    }
    let len = 8 + a.size;
    if len > 1400 {
        return Err("--size above 1392 bytes".into());
    }
    let socks = a
        .src
        .iter()
        .map(|&s| raw_socket(s, a.dst))
        .collect::<Result<Vec<_>, _>>()?;
    let pseudo = a
        .src
        .iter()
        .map(|&s| pseudo_sum(s, a.dst, len))
        .collect::<Result<Vec<_>, _>>()?;
    // The next port index of each source address, and the packets each has still to send: an
    // equal share (the first `packets % hosts` send one more), so a burst of hosts x ports
    // packets is exactly one packet per flow whatever the batch size.
    let hosts = socks.len() as u64;
    let mut next = vec![0u16; socks.len()];
    let mut left: Vec<u64> = (0..hosts)
        .map(|h| a.packets / hosts + u64::from(h < a.packets % hosts))
        .collect();
    let mut bufs = vec![vec![0u8; len]; a.batch];
    for (i, b) in bufs.iter_mut().enumerate() {
        // Payload: a recognisable pattern (not zeros, so a translator that loses bytes shows).
        for (j, x) in b[8..].iter_mut().enumerate() {
            *x = (i + j) as u8 | 0x40;
        }
    }
    let mut hdrs = MultiHeaders::<SockaddrStorage>::preallocate(a.batch, None);
    let addrs: Vec<Option<SockaddrStorage>> = vec![None; a.batch];
    let deadline = Duration::from_secs_f64(a.max_secs);
    let start_ms = unix_ms();
    let t0 = Instant::now();
    let mut sent: u64 = 0;
    let mut turn = 0usize;
    while sent < a.packets {
        let el = t0.elapsed();
        if el >= deadline {
            break;
        }
        let mut n = (a.packets - sent).min(a.batch as u64) as usize;
        if a.rate > 0 {
            // Paced: send what is due by now (at most a batch), else wait a little.
            let due = (el.as_secs_f64() * a.rate as f64) as u64;
            if due <= sent {
                let ahead = (sent + 1) as f64 / a.rate as f64 - el.as_secs_f64();
                std::thread::sleep(Duration::from_secs_f64(ahead.clamp(0.000_02, 0.001)));
                continue;
            }
            n = n.min((due - sent) as usize);
        }
        let h = (0..socks.len())
            .map(|i| (turn + i) % socks.len())
            .find(|&h| left[h] > 0)
            .ok_or("no packets left to send")?;
        turn = h + 1;
        n = n.min(left[h] as usize);
        left[h] -= n as u64;
        for b in bufs.iter_mut().take(n) {
            let port = a.sport + next[h];
            next[h] = (next[h] + 1) % a.ports;
            write_udp(b, pseudo[h], port, a.dport);
        }
        let slices: Vec<[IoSlice<'_>; 1]> = bufs[..n].iter().map(|b| [IoSlice::new(b)]).collect();
        let mut off = 0;
        while off < n {
            let done = sendmmsg(
                socks[h].as_raw_fd(),
                &mut hdrs,
                &slices[off..n],
                &addrs[off..n],
                [],
                MsgFlags::empty(),
            )
            .map_err(|e| format!("sendmmsg: {e}"))?
            .count();
            if done == 0 {
                return Err("sendmmsg sent nothing".into());
            }
            off += done;
        }
        sent += n as u64;
    }
    let el = t0.elapsed().as_secs_f64();
    let end_ms = unix_ms();
    println!(
        "sent={sent} elapsed_s={el:.4} rate={:.0} start_ms={start_ms:.1} end_ms={end_ms:.1}",
        sent as f64 / el.max(1e-9)
    );
    Ok(())
}

fn sink(port: u16, max_secs: f64) -> Result<(), String> {
    let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| format!("udp socket: {e}"))?;
    s.set_only_v6(false)
        .map_err(|e| format!("IPV6_V6ONLY: {e}"))?;
    let _ = s.set_recv_buffer_size(8 << 20);
    s.bind(&SockAddr::from(SocketAddr::new(
        IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        port,
    )))
    .map_err(|e| format!("bind [::]:{port}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| format!("SO_RCVTIMEO: {e}"))?;
    let sock: std::net::UdpSocket = s.into();
    let mut buf = [0u8; 2048];
    let t0 = Instant::now();
    let mut got: u64 = 0;
    while t0.elapsed().as_secs_f64() < max_secs {
        if sock.recv(&mut buf).is_ok() {
            got += 1;
        }
    }
    println!("received={got}");
    Ok(())
}

/// nat64d's UDP sessions, from `stats format=json` on its control socket.
fn nat64d_udp_sessions(path: &PathBuf) -> Result<u64, String> {
    let mut s = std::os::unix::net::UnixStream::connect(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    s.write_all(b"stats format=json\n")
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = String::new();
    s.read_to_string(&mut out)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&out).map_err(|e| format!("stats answer {out:?}: {e}"))?;
    // "nat64": {"sessions": [["tcp", N], ["udp", N], ["icmp", N]], ...}
    v["nat64"]["sessions"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p[0] == "udp"))
        .and_then(|p| p[1].as_u64())
        .ok_or_else(|| format!("no nat64.sessions udp in {out:?}"))
}

fn poll(
    socket: Option<PathBuf>,
    file: Option<PathBuf>,
    interval_ms: u64,
    settle_ms: u64,
    max_secs: f64,
) -> Result<(), String> {
    let read = || -> Result<u64, String> {
        match (&socket, &file) {
            (Some(p), _) => nat64d_udp_sessions(p),
            (None, Some(f)) => std::fs::read_to_string(f)
                .map_err(|e| format!("{}: {e}", f.display()))?
                .trim()
                .parse()
                .map_err(|e| format!("{}: {e}", f.display())),
            (None, None) => Err("poll needs --socket or --file".into()),
        }
    };
    let initial = read()?;
    let mut last_initial_ms = unix_ms();
    let (mut cur, mut cur_since_ms) = (initial, last_initial_ms);
    let t0 = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(interval_ms));
        let v = read()?;
        let now = unix_ms();
        if v == initial {
            last_initial_ms = now;
        }
        if v != cur {
            (cur, cur_since_ms) = (v, now);
        } else if cur != initial && now - cur_since_ms >= settle_ms as f64 {
            break;
        }
        if t0.elapsed().as_secs_f64() >= max_secs {
            return Err(format!(
                "count did not settle in {max_secs} s (initial {initial}, now {cur})"
            ));
        }
    }
    let win_s = (cur_since_ms - last_initial_ms) / 1e3;
    let grew = cur.saturating_sub(initial);
    println!(
        "initial={initial} final={cur} first_ms={last_initial_ms:.1} last_ms={cur_since_ms:.1} rate={:.0}",
        grew as f64 / win_s.max(1e-9)
    );
    Ok(())
}
