//! The packet loop: one worker thread per TUN queue.
//!
//! Each worker owns its queue's file descriptor, one packet buffer with [`HEADROOM`] in front
//! (IPv4→IPv6 grows the header in place) and one [`AUX_LEN`] buffer for fragments and ICMP errors,
//! all allocated once at start. A wake-up reads up to [`BATCH`] packets (the fd is non-blocking; the
//! worker sleeps in `poll` on the fd and a stop event), loads the current translator once per batch
//! (an `arc-swap` guard: a SIGHUP reload is seen atomically from the next batch on), and writes what
//! each [`Verdict`] says. Nothing on this path allocates or logs above `debug`.
#![deny(unsafe_code)]

use crate::dataplane::stats::{BatchCounts, WorkerStats};
use crate::dataplane::xlator::{Translator, Xlate};
use arc_swap::ArcSwap;
use nat64_core::{Ctx, Timestamp, Verdict, AUX_LEN, HEADROOM};
use std::io;
use std::sync::Arc;
use std::time::Instant;
use tun_rs::{GROTable, InterruptEvent, SyncDevice, IDEAL_BATCH_SIZE, VIRTIO_NET_HDR_LEN};

/// Packets handled per wake-up at most, before stats are published and the translator reloaded.
pub const BATCH: usize = 64;

/// Largest packet read from the TUN (an IPv6 jumbogram is not translated anyway).
pub const MAX_PACKET: usize = 65535;

/// The translator every worker uses, swapped atomically on reload.
pub type SharedTranslator = Arc<ArcSwap<Translator>>;

/// Handles one packet read into `buf[HEADROOM..HEADROOM + n]`: translates it and hands each
/// output packet to `write`, then the packets the translator releases after it (NAT64
/// fragments that arrived before their first fragment, RFC 6146 §3.4: translated into the same
/// buffers once their first fragment was). Counts into `c`.
pub fn handle_packet<T, W>(
    siit: &T,
    ctx: &mut Ctx,
    buf: &mut [u8],
    n: usize,
    aux: &mut [u8],
    c: &mut BatchCounts,
    mut write: W,
) where
    T: Xlate + ?Sized,
    W: FnMut(&[u8]) -> io::Result<usize>,
{
    c.rx += 1;
    // `translated`: a translated packet (counted by direction and protocol once written), not
    // an ICMP error of our own.
    let mut out = |p: &[u8], c: &mut BatchCounts, translated: bool| match write(p) {
        Ok(_) => {
            c.tx += 1;
            if translated {
                let (d, q) = crate::dataplane::stats::classify(p);
                c.fwd_packets[d][q] += 1;
                c.fwd_bytes[d][q] += p.len() as u64;
            }
        }
        Err(e) => {
            c.tx_errors += 1;
            tracing::debug!("tun write of {} bytes failed: {e}", p.len());
        }
    };
    let v = siit.translate(ctx, buf, HEADROOM, n, aux);
    emit(v, buf, aux, c, &mut out);
    while let Some(v) = siit.take_released(ctx, buf, HEADROOM, aux) {
        emit(v, buf, aux, c, &mut out);
    }
    // Clamped SYNs the core counted (rare: a test and two adds on the common path).
    if ctx.mss_clamped != [0; 2] {
        for d in 0..2 {
            c.mss_clamped[d] += std::mem::take(&mut ctx.mss_clamped[d]);
        }
    }
}

/// Writes what one verdict says (through `out`) and counts it.
#[inline]
fn emit<O>(v: Verdict, buf: &[u8], aux: &[u8], c: &mut BatchCounts, out: &mut O)
where
    O: FnMut(&[u8], &mut BatchCounts, bool),
{
    match v {
        Verdict::Forward { start, len } => match buf.get(start..start + len) {
            Some(p) => out(p, c, true),
            None => c.drops.count(nat64_core::DropReason::BufferTooSmall),
        },
        Verdict::ForwardAux { len } => {
            for p in nat64_core::packets(aux.get(..len).unwrap_or(&[])) {
                out(p, c, true);
            }
        }
        Verdict::IcmpError { len, reason } => {
            c.drops.count(reason);
            c.icmp_errors += 1;
            if let Some(p) = aux.get(..len) {
                out(p, c, false);
            }
        }
        Verdict::Drop(reason) => {
            c.drops.count(reason);
            tracing::trace!("drop: {}", reason.as_str());
        }
    }
}

/// Runs `f` (one packet), containing a panic: the core is written and fuzzed never to panic on
/// input, but if it ever did, the packet is lost and counted (`internal_errors`) and the worker
/// goes on; a gateway never exits because of a packet.
#[inline]
fn guarded<F: FnOnce(&mut BatchCounts)>(c: &mut BatchCounts, f: F) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut *c)));
    if r.is_err() {
        c.internal_errors += 1;
    }
}

/// The buffers one worker owns.
pub struct Buffers {
    /// Packet buffer: `HEADROOM` bytes, then room for one packet.
    pub buf: Vec<u8>,
    /// More buffers like `buf`, for the packets read after it ahead of translation
    /// ([`READ_AHEAD`] in all; unused when the translator does not prefetch). Pages a packet never
    /// reaches are never touched, so only what packets use is resident.
    pub ahead: Vec<Vec<u8>>,
    /// The size of the packet in `buf` (index 0) and in each of `ahead`.
    pub sizes: [usize; READ_AHEAD],
    /// Auxiliary output.
    pub aux: Vec<u8>,
}

/// Packets read before translating them when the translator looks their state up ahead
/// ([`Xlate::prefetch`]): NAT64's batch.
pub const READ_AHEAD: usize = nat64_core::nat64::PREFETCH_BATCH;

impl Buffers {
    /// Packet buffer `i` of the read-ahead group: `buf`, then `ahead`.
    #[inline]
    fn slot(&mut self, i: usize) -> &mut Vec<u8> {
        match i {
            0 => &mut self.buf,
            _ => &mut self.ahead[i - 1],
        }
    }
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers {
            buf: vec![0; HEADROOM + MAX_PACKET],
            ahead: (1..READ_AHEAD)
                .map(|_| vec![0; HEADROOM + MAX_PACKET])
                .collect(),
            sizes: [0; READ_AHEAD],
            aux: vec![0; AUX_LEN],
        }
    }
}

/// Milliseconds since `epoch` (the core's clock).
pub fn now_ms(epoch: Instant) -> Timestamp {
    Timestamp(u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX))
}

/// What a worker needs of its TUN queue: the tun-rs calls it makes, so that a test can run the
/// real worker loops on an in-memory queue (monomorphized: no dynamic dispatch on the packet path).
pub trait Queue {
    /// Sets O_NONBLOCK.
    ///
    /// # Errors
    /// The fcntl failed.
    fn set_nonblocking(&self, on: bool) -> io::Result<()>;
    /// Sleeps until readable or `stop` (then `Interrupted`).
    ///
    /// # Errors
    /// `Interrupted` on stop; poll errors.
    fn wait_readable_intr(&self, stop: &InterruptEvent) -> io::Result<()>;
    /// Reads one packet.
    ///
    /// # Errors
    /// `WouldBlock` when empty; read errors.
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes one packet.
    ///
    /// # Errors
    /// Write errors.
    fn send(&self, buf: &[u8]) -> io::Result<usize>;
    /// Reads one (offload) super-packet, split into `bufs` at `offset`; returns the count.
    ///
    /// # Errors
    /// `WouldBlock` when empty; read errors.
    fn recv_multiple<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        raw: &mut [u8],
        bufs: &mut [B],
        sizes: &mut [usize],
        offset: usize,
    ) -> io::Result<usize>;
    /// Writes `bufs` (each at `offset`), coalesced by `gro`.
    ///
    /// # Errors
    /// Write errors.
    fn send_multiple<B: tun_rs::ExpandBuffer>(
        &self,
        gro: &mut GROTable,
        bufs: &mut [B],
        offset: usize,
    ) -> io::Result<usize>;
}

impl Queue for SyncDevice {
    #[inline]
    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        SyncDevice::set_nonblocking(self, on)
    }
    #[inline]
    fn wait_readable_intr(&self, stop: &InterruptEvent) -> io::Result<()> {
        SyncDevice::wait_readable_intr(self, stop)
    }
    #[inline]
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        SyncDevice::recv(self, buf)
    }
    #[inline]
    fn send(&self, buf: &[u8]) -> io::Result<usize> {
        SyncDevice::send(self, buf)
    }
    #[inline]
    fn recv_multiple<B: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        raw: &mut [u8],
        bufs: &mut [B],
        sizes: &mut [usize],
        offset: usize,
    ) -> io::Result<usize> {
        (**self).recv_multiple(raw, bufs, sizes, offset)
    }
    #[inline]
    fn send_multiple<B: tun_rs::ExpandBuffer>(
        &self,
        gro: &mut GROTable,
        bufs: &mut [B],
        offset: usize,
    ) -> io::Result<usize> {
        (**self).send_multiple(gro, bufs, offset)
    }
}

/// Waits until the queue is readable. `Ok(false)`: stop was triggered.
fn wait<D: Queue>(id: usize, dev: &D, stop: &InterruptEvent, c: &mut BatchCounts) -> bool {
    loop {
        match dev.wait_readable_intr(stop) {
            Ok(()) => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                if stop.is_trigger() {
                    return false;
                }
            }
            Err(e) => {
                // poll() itself failed: count it and back off briefly instead of spinning.
                c.rx_errors += 1;
                tracing::debug!("worker {id}: poll failed: {e}");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
}

/// Runs one worker until `stop` is triggered.
///
/// # Errors
/// Setting the queue non-blocking failed.
pub fn run_worker<D: Queue, X: Xlate>(
    id: usize,
    dev: D,
    translator: Arc<ArcSwap<X>>,
    stats: Arc<WorkerStats>,
    stop: Arc<InterruptEvent>,
    epoch: Instant,
) -> io::Result<()> {
    dev.set_nonblocking(true)?;
    let mut b = Buffers::default();
    let seed = u16::try_from((id * 7919 + std::process::id() as usize) & 0xffff).unwrap_or(0);
    let mut ctx = Ctx::new(now_ms(epoch), seed);
    let mut c = BatchCounts::default();
    tracing::debug!("worker {id} started");
    loop {
        stats.set_idle(true, 0);
        if !wait(id, &dev, &stop, &mut c) {
            break;
        }
        let siit = translator.load();
        ctx.now = now_ms(epoch);
        stats.set_idle(false, ctx.now.0);
        // Up to BATCH packets, read in groups of `group` (the translator's prefetch batch):
        // a group is read, its state looked up at once (the misses overlap), then translated.
        let group = siit.prefetch_batch().clamp(1, READ_AHEAD);
        let mut handled = 0;
        while handled < BATCH {
            let (mut k, mut tries) = (0, 0);
            let mut ended = false;
            while k < group && handled + tries < BATCH {
                tries += 1;
                match dev.recv(&mut b.slot(k)[HEADROOM..]) {
                    Ok(0) => ended = true,
                    Ok(n) => {
                        b.sizes[k] = n;
                        k += 1;
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => ended = true,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        c.rx_errors += 1;
                        tracing::debug!("worker {id}: tun read failed: {e} ({e:?})");
                        ended = true;
                    }
                }
                break;
            }
            if k > 1 {
                let (first, ahead, sizes) = (&b.buf, &b.ahead, &b.sizes);
                guarded(&mut c, |_| {
                    siit.prefetch(
                        std::iter::once(first)
                            .chain(ahead)
                            .zip(&sizes[..k])
                            .map(|(p, &n)| &p[HEADROOM..HEADROOM + n]),
                    );
                });
            }
            for i in 0..k {
                let n = b.sizes[i];
                let (p, aux) = match i {
                    0 => (&mut b.buf, &mut b.aux),
                    _ => (&mut b.ahead[i - 1], &mut b.aux),
                };
                guarded(&mut c, |c| {
                    handle_packet(&**siit, &mut ctx, p, n, aux, c, |p| dev.send(p))
                });
            }
            handled += tries;
            if ended {
                break;
            }
        }
        stats.publish(&mut c);
    }
    tracing::debug!("worker {id} stopped");
    Ok(())
}

/// Offset of a packet in the offload input buffers: room for the core's headroom.
const OFF_IN: usize = HEADROOM;
/// Offset of a packet in the offload output buffers: room for the virtio-net header.
const OFF_OUT: usize = VIRTIO_NET_HDR_LEN;
/// Reads (each possibly a GSO super-packet) per wake-up.
const OFFLOAD_READS: usize = 16;
/// Segments one offload read can be split into: the segment buffers of [`OffloadBuffers`]. A GSO
/// super-packet with more segments (64 KiB of TCP at a gso_size under 512) cannot be split into
/// them and would be lost whole (tun-rs: "too many GSO segments"); the daemon sets the device's
/// `gso_max_segs` to this, so the kernel segments such packets in software before the TUN.
pub const OFFLOAD_MAX_SEGMENTS: usize = IDEAL_BATCH_SIZE;
/// Segments gathered ahead of translation when the translator prefetches ([`READ_AHEAD`]).
const OFFLOAD_AHEAD: usize = READ_AHEAD;

/// The buffers of an offload worker, allocated once.
pub struct OffloadBuffers {
    /// One raw read: virtio-net header + up to 64 KiB super-packet.
    pub raw: Vec<u8>,
    /// Segments of the reads gathered for one prefetch batch, each at [`OFF_IN`]: room for one
    /// whole super-packet after [`OFFLOAD_AHEAD`] segments.
    pub seg: Vec<Vec<u8>>,
    /// Their sizes.
    pub sizes: Vec<usize>,
    /// Output packets, each at [`OFF_OUT`], coalesced by GRO on write (capacity 64 KiB each so
    /// coalescing never reallocates).
    pub out: Vec<Vec<u8>>,
    /// Auxiliary output of the core.
    pub aux: Vec<u8>,
}

impl OffloadBuffers {
    /// Buffers for packets of up to `mtu` bytes.
    pub fn new(mtu: usize) -> Self {
        let seg_len = OFF_IN + mtu.max(1500) + 64;
        OffloadBuffers {
            raw: vec![0; VIRTIO_NET_HDR_LEN + MAX_PACKET],
            seg: (0..OFFLOAD_MAX_SEGMENTS + OFFLOAD_AHEAD)
                .map(|_| vec![0; seg_len])
                .collect(),
            sizes: vec![0; OFFLOAD_MAX_SEGMENTS + OFFLOAD_AHEAD],
            out: (0..IDEAL_BATCH_SIZE)
                .map(|_| Vec::with_capacity(OFF_OUT + MAX_PACKET))
                .collect(),
            aux: vec![0; AUX_LEN],
        }
    }
}

/// Writes `out[..*k]` in one GRO pass and empties the list.
fn flush<D: Queue>(
    dev: &D,
    gro: &mut GROTable,
    out: &mut [Vec<u8>],
    k: &mut usize,
    c: &mut BatchCounts,
) {
    if *k == 0 {
        return;
    }
    if let Err(e) = dev.send_multiple(gro, &mut out[..*k], OFF_OUT) {
        c.tx_errors += 1;
        tracing::debug!("tun write (offload) failed: {e}");
    }
    *k = 0;
}

/// Runs one worker on a queue opened with offload (IFF_VNET_HDR) until `stop` is triggered: a
/// read may return a TCP/UDP GSO super-packet, which tun-rs splits into segments (with their
/// checksums); translated packets are written back in one batch, coalesced by GRO.
///
/// # Errors
/// Setting the queue non-blocking failed.
pub fn run_worker_offload<D: Queue, X: Xlate>(
    id: usize,
    dev: D,
    mtu: usize,
    translator: Arc<ArcSwap<X>>,
    stats: Arc<WorkerStats>,
    stop: Arc<InterruptEvent>,
    epoch: Instant,
) -> io::Result<()> {
    dev.set_nonblocking(true)?;
    let mut b = OffloadBuffers::new(mtu);
    let mut gro = GROTable::new();
    let seed = u16::try_from((id * 7919 + std::process::id() as usize) & 0xffff).unwrap_or(0);
    let mut ctx = Ctx::new(now_ms(epoch), seed);
    let mut c = BatchCounts::default();
    let mut k = 0usize;
    // Write errors of flushes that happen in the middle of a read (the output list was full).
    let mut mid = BatchCounts::default();
    tracing::debug!("worker {id} started (offload)");
    loop {
        stats.set_idle(true, 0);
        if !wait(id, &dev, &stop, &mut c) {
            break;
        }
        let siit = translator.load();
        ctx.now = now_ms(epoch);
        stats.set_idle(false, ctx.now.0);
        // Reads are gathered until `group` segments are in hand (the translator's prefetch
        // batch; one read when it does not prefetch), whose state is then looked up at once.
        // Each read goes to the segment buffers after those already filled; fewer than `group`
        // are, so at least OFFLOAD_MAX_SEGMENTS are left and a whole super-packet always fits.
        // The segments of one read are one flow (a GSO super-packet), so only the first
        // segment of each read is looked up.
        let group = siit.prefetch_batch().clamp(1, OFFLOAD_AHEAD);
        let mut reads = 0;
        while reads < OFFLOAD_READS {
            let mut n = 0;
            let mut ended = false;
            let mut firsts = [0usize; OFFLOAD_READS];
            let mut r = 0;
            while n < group && reads < OFFLOAD_READS {
                reads += 1;
                match dev.recv_multiple(&mut b.raw, &mut b.seg[n..], &mut b.sizes[n..], OFF_IN) {
                    Ok(0) => {}
                    Ok(got) => {
                        firsts[r] = n;
                        r += 1;
                        n += got;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        ended = true;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        c.rx_errors += 1;
                        tracing::debug!("worker {id}: tun read failed: {e} ({e:?})");
                    }
                }
            }
            if r > 1 {
                let (seg, sizes) = (&b.seg, &b.sizes);
                guarded(&mut c, |_| {
                    siit.prefetch(
                        firsts[..r]
                            .iter()
                            .map(|&i| &seg[i][OFF_IN..OFF_IN + sizes[i]]),
                    );
                });
            }
            for i in 0..n {
                let len = b.sizes[i];
                let (out, seg, aux) = (&mut b.out, &mut b.seg[i], &mut b.aux);
                let (k, gro, mid, ctx) = (&mut k, &mut gro, &mut mid, &mut ctx);
                // Contained like the plain worker's packets: a panic loses this segment only
                // (an output already queued stays queued; `k` counts only complete copies).
                guarded(&mut c, |c| {
                    handle_packet(&**siit, ctx, seg, len, aux, c, |p| {
                        if *k == out.len() {
                            flush(&dev, gro, out, k, mid);
                        }
                        let o = &mut out[*k];
                        o.clear();
                        o.resize(OFF_OUT, 0);
                        o.extend_from_slice(p);
                        *k += 1;
                        Ok(p.len())
                    })
                });
            }
            if ended {
                break;
            }
        }
        flush(&dev, &mut gro, &mut b.out, &mut k, &mut c);
        c.tx_errors += std::mem::take(&mut mid.tx_errors);
        stats.publish(&mut c);
    }
    tracing::debug!("worker {id} stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{IpFragOffset, IpNumber, Ipv6FragmentHeader, Ipv6Header, PacketBuilder};
    use nat64_core::nat64::{Nat64, Nat64Config};
    use nat64_core::pool6::Pool6;
    use nat64_core::rfc6052::Prefix6052;
    use nat64_core::DropReason;

    /// IPv6 fragment `body` at byte offset `off` of a datagram A -> 64:ff9b::198.51.100.10.
    fn frag(off: usize, more: bool, body: &[u8]) -> Vec<u8> {
        let mut dst = [0u8; 16];
        dst[..4].copy_from_slice(&[0, 0x64, 0xff, 0x9b]);
        dst[12..].copy_from_slice(&[198, 51, 100, 10]);
        let src: std::net::Ipv6Addr = "2001:db8:1::a"
            .parse()
            .unwrap_or(std::net::Ipv6Addr::LOCALHOST);
        let h = Ipv6Header {
            traffic_class: 0,
            flow_label: Default::default(),
            payload_length: (8 + body.len()) as u16,
            next_header: IpNumber(44),
            hop_limit: 64,
            source: src.octets(),
            destination: dst,
        };
        let f = Ipv6FragmentHeader::new(
            IpNumber(17),
            IpFragOffset::try_new((off / 8) as u16).expect("offset"),
            more,
            0xfeed,
        );
        let mut v = Vec::new();
        h.write(&mut v).expect("header");
        f.write(&mut v).expect("fragment header");
        v.extend_from_slice(body);
        v
    }

    /// The worker's packet handler sends the fragments the NAT64 held (RFC 6146 §3.4) right
    /// after the first fragment that releases them, through the same writer, counted as sent.
    #[test]
    fn released_fragments_are_written_after_the_first_fragment() {
        let pool6 = Pool6::new(vec![Prefix6052::WKP], false).expect("pool6");
        let mut c = Nat64Config::new(pool6, vec!["192.0.2.1".parse().expect("v4")], 5);
        c.max_sessions = 100;
        c.shards = 1;
        let nat = Nat64::new(c).expect("nat64");
        let mut whole = Vec::new();
        PacketBuilder::ipv6([0; 16], [0; 16], 64)
            .udp(5000, 53)
            .write(&mut whole, &[3u8; 1592])
            .expect("udp");
        let seg = &whole[40..];
        let f = [
            frag(0, true, &seg[..800]),
            frag(800, true, &seg[800..1200]),
            frag(1200, false, &seg[1200..]),
        ];
        let mut b = Buffers::default();
        let mut ctx = Ctx::new(Timestamp(0), 1);
        let mut c = BatchCounts::default();
        let mut written: Vec<Vec<u8>> = Vec::new();
        for p in [&f[2], &f[1], &f[0]] {
            b.buf[HEADROOM..HEADROOM + p.len()].copy_from_slice(p);
            handle_packet(
                &nat,
                &mut ctx,
                &mut b.buf,
                p.len(),
                &mut b.aux,
                &mut c,
                |o| {
                    written.push(o.to_vec());
                    Ok(o.len())
                },
            );
        }
        assert_eq!((c.rx, c.tx), (3, 3));
        assert_eq!(c.drops.get(DropReason::FragmentHeld), 2);
        // IPv4: the first fragment, then the last and the middle one, as they arrived.
        let offsets: Vec<u16> = written
            .iter()
            .map(|p| u16::from_be_bytes([p[6], p[7]]) & 0x1fff)
            .collect();
        assert_eq!(offsets, [0, 150, 100]);
        assert!(written
            .iter()
            .all(|p| p[0] >> 4 == 4 && p[16..20] == [198, 51, 100, 10]));
    }

    #[test]
    fn a_panicking_packet_is_counted_and_contained() {
        let mut c = BatchCounts::default();
        guarded(&mut c, |c| c.rx += 1);
        assert_eq!((c.rx, c.internal_errors), (1, 0));
        guarded(&mut c, |c| {
            c.rx += 1;
            let v: Vec<u8> = Vec::new();
            // An out-of-bounds index, as a bug in packet code would do.
            let i = c.rx as usize;
            std::hint::black_box(v[i]);
        });
        assert_eq!((c.rx, c.internal_errors), (2, 1));
    }
}
