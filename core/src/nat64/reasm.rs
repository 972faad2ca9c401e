//! RFC 6146 §3.4: reassembly of fragmented ICMP messages (`ping -s 3000` through NAT64).
//!
//! RFC 7915 cannot translate an ICMP message fragment by fragment: the ICMPv6 checksum covers a
//! pseudo-header with the length of the whole message, which no single fragment carries (RFC
//! 7915 §1.2), so the stateless translator drops such fragments. A NAT64 "MAY elect to queue the
//! fragments as they arrive and translate all fragments at the same time" (§3.4): fragments of an
//! ICMP or ICMPv6 message are copied into one of a fixed set of preallocated 64 KiB slots, in any
//! order, and the whole message is translated when complete (then refragmented by RFC 7915 if
//! it exceeds the IPv6 minimum MTU). Resources are bounded (`FragConfig::max_reassembly` slots,
//! `FragConfig::timeout_ms` per datagram); a full store refuses new datagrams with
//! [`DropReason::FragmentStoreFull`]. Fragments held for later are reported as
//! [`DropReason::FragmentQueued`] (counted, not lost).
//!
//! The same store reassembles fragmented IPv4 UDP datagrams whose checksum is zero: "if the
//! NAT64 has enough resources, the NAT64 MUST reassemble the packets and MUST calculate the
//! checksum. If the NAT64 does not have enough resources, then it MUST silently discard the
//! packets" (§3.4). Only the first fragment shows the zero checksum, so it opens the slot
//! ([`Reassembly::is_zero_checksum_udp4`]); the datagram's other fragments join it when one is
//! open ([`Reassembly::has`]), and those that came before it are moved in from the hold.

use super::frag::FragKey;
use crate::checksum;
use crate::rfc7915::v4_to_v6::V4Header;
use crate::rfc7915::v6_to_v4::V6Header;
use crate::verdict::{DropReason, Verdict};
use crate::{Timestamp, HEADROOM};
use std::sync::Mutex;

/// 8-byte fragment units in 64 KiB.
const UNITS: usize = 65536 / 8;

struct Slot {
    key: Option<FragKey>,
    deadline: u64,
    have_first: bool,
    /// Payload bytes of the whole datagram, known once the last fragment arrived.
    total: Option<usize>,
    /// Received 8-byte units.
    blocks: Box<[u64]>,
    /// The datagram being rebuilt at `HEADROOM`: IP header, then payload.
    buf: Box<[u8]>,
}

/// The bounded reassembly store.
pub(crate) struct Reassembly {
    slots: Mutex<Vec<Slot>>,
    /// Slots one source (IPv6 subscriber prefix, IPv4 address) may hold at once.
    per_source: usize,
    mask: u128,
    timeout_ms: u64,
}

/// One incoming fragment, protocol-independent.
struct Piece<'a> {
    key: FragKey,
    /// 20 or 40.
    hdr: usize,
    /// The fixed header of the packet, used when `off == 0`.
    header: &'a [u8],
    off: usize,
    more: bool,
    payload: &'a [u8],
}

impl Reassembly {
    pub fn new(slots: usize, per_source: usize, mask: u128, timeout_ms: u64) -> Reassembly {
        let slots = (0..slots)
            .map(|_| Slot {
                key: None,
                deadline: 0,
                have_first: false,
                total: None,
                blocks: vec![0u64; UNITS / 64].into_boxed_slice(),
                buf: vec![0u8; HEADROOM + 40 + 65535].into_boxed_slice(),
            })
            .collect();
        Reassembly {
            slots: Mutex::new(slots),
            per_source,
            mask,
            timeout_ms,
        }
    }

    /// Cheap test on the raw packet: an IPv4 fragment of an ICMP message.
    #[inline]
    pub fn is_candidate4(p: &[u8]) -> bool {
        p.len() >= 20 && p[9] == 1 && u16::from_be_bytes([p[6], p[7]]) & 0x3fff != 0
    }

    /// An IPv4 first fragment (offset 0, MF set) of a UDP datagram whose checksum is zero (RFC
    /// 6146 §3.4: reassembled so the checksum can be calculated). A header check, no lookup.
    #[inline]
    pub fn is_zero_checksum_udp4(p: &[u8]) -> bool {
        if p.len() < 20 || p[9] != 17 || u16::from_be_bytes([p[6], p[7]]) & 0x3fff != 0x2000 {
            return false;
        }
        let ihl = usize::from(p[0] & 0x0f) * 4;
        matches!(p.get(ihl + 6..ihl + 8), Some([0, 0]))
    }

    /// The datagram key of an IPv4 non-first UDP fragment (offset ≠ 0), else `None`.
    #[inline]
    pub fn non_first_udp4_key(p: &[u8]) -> Option<FragKey> {
        if p.len() < 20 || u16::from_be_bytes([p[6], p[7]]) & 0x1fff == 0 {
            return None;
        }
        Self::udp4_key(p)
    }

    /// The datagram key of an IPv4 UDP packet (as [`Reassembly::feed4`] forms it).
    #[inline]
    pub fn udp4_key(p: &[u8]) -> Option<FragKey> {
        if p.len() < 20 || p[9] != 17 {
            return None;
        }
        let mut key = FragKey {
            src: [0; 16],
            dst: [0; 16],
            id: u32::from(u16::from_be_bytes([p[4], p[5]])),
            proto: 17,
            v6: false,
        };
        key.src[..4].copy_from_slice(&p[12..16]);
        key.dst[..4].copy_from_slice(&p[16..20]);
        Some(key)
    }

    /// True if datagram `key` is being reassembled (a slot is open and not timed out).
    pub fn has(&self, key: &FragKey, now: Timestamp) -> bool {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots
            .iter()
            .any(|s| s.key.as_ref() == Some(key) && s.deadline > now.0)
    }

    /// An IPv6 packet whose first extension header is a Fragment header of an ICMPv6 message
    /// that is a real fragment (not an atomic one).
    #[inline]
    pub fn is_candidate6(p: &[u8]) -> bool {
        p.len() >= 48
            && p[6] == 44
            && p[40] == 58
            && u16::from_be_bytes([p[42], p[43]]) & 0xfff9 != 0
    }

    /// Adds an IPv4 fragment. When it completes its datagram, `done` translates the whole
    /// packet (`buf`, start, len) and its verdict is returned.
    pub fn feed4(
        &self,
        pkt: &[u8],
        now: Timestamp,
        done: impl FnOnce(&mut [u8], usize, usize) -> Verdict,
    ) -> Verdict {
        let h = match V4Header::parse(pkt, true) {
            Ok(h) => h,
            Err(r) => return Verdict::Drop(r),
        };
        let mut key = FragKey {
            src: [0; 16],
            dst: [0; 16],
            id: u32::from(h.id),
            proto: h.proto,
            v6: false,
        };
        key.src[..4].copy_from_slice(&h.src);
        key.dst[..4].copy_from_slice(&h.dst);
        let piece = Piece {
            key,
            hdr: 20,
            header: &pkt[..20],
            off: usize::from(h.offset) * 8,
            more: h.mf,
            payload: &pkt[h.ihl..h.total],
        };
        self.add(piece, now, done)
    }

    /// Adds an IPv6 fragment (Fragment header right after the IPv6 header).
    pub fn feed6(
        &self,
        pkt: &[u8],
        now: Timestamp,
        done: impl FnOnce(&mut [u8], usize, usize) -> Verdict,
    ) -> Verdict {
        let h = match V6Header::parse(pkt, true) {
            Ok(h) => h,
            Err(r) => return Verdict::Drop(r),
        };
        let Some((off, more, id)) = h.frag else {
            return Verdict::Drop(DropReason::BadFragment);
        };
        if h.l4_off != 48 {
            return Verdict::Drop(DropReason::BadFragment);
        }
        let piece = Piece {
            key: FragKey {
                src: h.src,
                dst: h.dst,
                id,
                proto: h.proto,
                v6: true,
            },
            hdr: 40,
            header: &pkt[..40],
            off: usize::from(off) * 8,
            more,
            payload: &pkt[48..40 + h.plen],
        };
        self.add(piece, now, done)
    }

    fn add(
        &self,
        p: Piece<'_>,
        now: Timestamp,
        done: impl FnOnce(&mut [u8], usize, usize) -> Verdict,
    ) -> Verdict {
        let max_payload = if p.hdr == 20 { 65535 - 20 } else { 65535 };
        let end = p.off + p.payload.len();
        if (p.more && !p.payload.len().is_multiple_of(8))
            || end > max_payload
            || p.payload.is_empty()
        {
            return Verdict::Drop(DropReason::BadFragment);
        }
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let i = match slots
            .iter()
            .position(|s| s.key == Some(p.key) && s.deadline > now.0)
        {
            Some(i) => i,
            None => {
                // The source's share of the slots (of reassembly memory).
                let src = p.key.source(self.mask);
                let held = slots
                    .iter()
                    .filter(|s| {
                        s.deadline > now.0 && s.key.is_some_and(|k| k.source(self.mask) == src)
                    })
                    .count();
                if held >= self.per_source {
                    return Verdict::Drop(DropReason::FragmentSourceLimit);
                }
                let Some(i) = slots
                    .iter()
                    .position(|s| s.key.is_none() || s.deadline <= now.0)
                else {
                    return Verdict::Drop(DropReason::FragmentStoreFull);
                };
                let s = &mut slots[i];
                s.key = Some(p.key);
                s.deadline = now.0.saturating_add(self.timeout_ms);
                s.have_first = false;
                s.total = None;
                s.blocks.fill(0);
                i
            }
        };
        let s = &mut slots[i];
        let base = HEADROOM + p.hdr;
        s.buf[base + p.off..base + end].copy_from_slice(p.payload);
        set_units(&mut s.blocks, p.off / 8, end.div_ceil(8));
        if !p.more {
            if s.total.is_some_and(|t| t != end) {
                s.key = None;
                return Verdict::Drop(DropReason::BadFragment);
            }
            s.total = Some(end);
        }
        if p.off == 0 {
            s.buf[HEADROOM..HEADROOM + p.hdr].copy_from_slice(p.header);
            s.have_first = true;
        }
        let Some(total) = s.total else {
            return Verdict::Drop(DropReason::FragmentQueued);
        };
        if !s.have_first || !all_units(&s.blocks, total.div_ceil(8)) {
            return Verdict::Drop(DropReason::FragmentQueued);
        }
        // Complete: turn the first fragment's header into the whole datagram's.
        let h = &mut s.buf[HEADROOM..HEADROOM + p.hdr];
        if p.hdr == 20 {
            h[0] = 0x45; // options, if any, are not kept
            h[2..4].copy_from_slice(&((20 + total) as u16).to_be_bytes());
            h[6] &= 0x40; // keep DF, clear MF and the offset
            h[7] = 0;
            h[10] = 0;
            h[11] = 0;
            let c = checksum::finish(checksum::sum(h));
            h[10..12].copy_from_slice(&c.to_be_bytes());
        } else {
            h[4..6].copy_from_slice(&(total as u16).to_be_bytes());
            h[6] = p.key.proto;
        }
        s.key = None;
        done(&mut s.buf, HEADROOM, p.hdr + total)
    }

    /// Frees the slots of datagrams that timed out.
    pub fn expire(&self, now: Timestamp) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        for s in slots.iter_mut() {
            if s.key.is_some() && s.deadline <= now.0 {
                s.key = None;
            }
        }
    }

    /// Datagrams being reassembled (timed-out ones count until the next `expire`).
    pub fn len(&self) -> usize {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.iter().filter(|s| s.key.is_some()).count()
    }
}

fn set_units(b: &mut [u64], from: usize, to: usize) {
    for u in from..to {
        b[u / 64] |= 1 << (u % 64);
    }
}

fn all_units(b: &[u64], n: usize) -> bool {
    let full = n / 64;
    if b[..full].iter().any(|&w| w != u64::MAX) {
        return false;
    }
    let rest = n % 64;
    rest == 0 || b[full] & ((1u64 << rest) - 1) == (1u64 << rest) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_bitmap() {
        let mut b = vec![0u64; UNITS / 64];
        set_units(&mut b, 0, 70);
        assert!(all_units(&b, 70));
        assert!(!all_units(&b, 71));
        set_units(&mut b, 128, 130);
        assert!(!all_units(&b, 130));
        set_units(&mut b, 70, 128);
        assert!(all_units(&b, 130));
        assert!(all_units(&b, 128));
    }
}
