//! nat64-core: the sans-IO heart of nat64d.
//!
//! Pure functions over byte buffers, with time passed in: no sockets, no TUN, no async runtime.
//! The daemon (`nat64d`) reads packets, calls [`siit::Siit::translate`], and writes what the
//! [`Verdict`] says.
//!
//! Buffer contract: the caller puts an input packet at `buf[start..start + len]` with at least
//! [`HEADROOM`] bytes before `start`, so IPv4→IPv6 header growth is written in place; an `aux`
//! buffer of [`AUX_LEN`] bytes receives fragments and ICMP errors.
#![deny(unsafe_code)]

pub mod checksum;
pub mod dns64;
pub mod eamt;
pub mod nat64;
pub mod pool6;
pub mod rfc6052;
pub mod rfc6791;
pub mod rfc6890;
pub mod rfc7915;
pub mod siit;
pub mod tuple;
pub mod verdict;

pub use tuple::{Ctx, Frag, Mapper, Role, Timestamp, Tuple4, Tuple6, L4};
pub use verdict::{DropCounters, DropReason, Verdict};

/// Bytes the caller leaves in front of an input packet. IPv4→IPv6 grows the header by 20 bytes,
/// plus 8 for a Fragment header; an ICMP error grows its quoted header as well.
pub const HEADROOM: usize = 64;

/// Size of the auxiliary output buffer: room for the largest IPv4 packet split into IPv6 fragments.
pub const AUX_LEN: usize = 65535 + 64 * 56;

/// Iterates over IP packets lying back to back in `buf` (as in [`Verdict::ForwardAux`]).
pub fn packets(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        let len = match rest.first()? >> 4 {
            4 if rest.len() >= 20 => usize::from(u16::from_be_bytes([rest[2], rest[3]])),
            6 if rest.len() >= 40 => 40 + usize::from(u16::from_be_bytes([rest[4], rest[5]])),
            _ => return None,
        };
        if len == 0 || len > rest.len() {
            return None;
        }
        let (pkt, tail) = rest.split_at(len);
        rest = tail;
        Some(pkt)
    })
}
