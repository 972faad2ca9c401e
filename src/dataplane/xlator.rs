//! The translator a worker calls: stateless SIIT or stateful NAT64, behind one trait so the packet
//! loop is the same for both (a `match` per packet, no allocation, no dynamic dispatch).

use nat64_core::nat64::Nat64;
use nat64_core::siit::Siit;
use nat64_core::{Ctx, Verdict};
use std::sync::Arc;

/// Translates one packet in place (the contract of [`Siit::translate`]).
pub trait Xlate {
    /// The packet is `buf[start..start + len]` with the core's headroom in front; `aux` takes
    /// fragments and ICMP errors.
    fn translate(
        &self,
        ctx: &mut Ctx,
        buf: &mut [u8],
        start: usize,
        len: usize,
        aux: &mut [u8],
    ) -> Verdict;

    /// A packet the translator held and can send now, translated into `buf` at `start` (same
    /// contract as `translate`): NAT64 fragments that arrived before their first fragment (RFC
    /// 6146 §3.4). Call after every packet's verdict until `None`. SIIT holds nothing.
    #[inline]
    fn take_released(
        &self,
        _ctx: &mut Ctx,
        _buf: &mut [u8],
        _start: usize,
        _aux: &mut [u8],
    ) -> Option<Verdict> {
        None
    }

    /// How many packets the worker should read before translating them, so that [`prefetch`]
    /// can look their state up together; 1 (the default) reads and translates one at a time.
    ///
    /// [`prefetch`]: Xlate::prefetch
    #[inline]
    fn prefetch_batch(&self) -> usize {
        1
    }

    /// A hint before translating `pkts` (the packets just read, in order): look up their state
    /// so the cache misses overlap. Results never depend on it. Returns how many were found.
    #[inline]
    fn prefetch<'p, I: IntoIterator<Item = &'p [u8]>>(&self, _pkts: I) -> usize {
        0
    }
}

impl Xlate for Siit {
    #[inline]
    fn translate(
        &self,
        ctx: &mut Ctx,
        buf: &mut [u8],
        start: usize,
        len: usize,
        aux: &mut [u8],
    ) -> Verdict {
        Siit::translate(self, ctx, buf, start, len, aux)
    }
}

impl Xlate for Nat64 {
    #[inline]
    fn translate(
        &self,
        ctx: &mut Ctx,
        buf: &mut [u8],
        start: usize,
        len: usize,
        aux: &mut [u8],
    ) -> Verdict {
        Nat64::translate(self, ctx, buf, start, len, aux)
    }

    #[inline]
    fn take_released(
        &self,
        ctx: &mut Ctx,
        buf: &mut [u8],
        start: usize,
        aux: &mut [u8],
    ) -> Option<Verdict> {
        Nat64::take_released(self, ctx, buf, start, aux)
    }

    #[inline]
    fn prefetch_batch(&self) -> usize {
        nat64_core::nat64::PREFETCH_BATCH
    }

    #[inline]
    fn prefetch<'p, I: IntoIterator<Item = &'p [u8]>>(&self, pkts: I) -> usize {
        Nat64::prefetch(self, pkts)
    }
}

/// What `mode` selects. A reload swaps the whole value; in NAT64 mode the `Arc<Nat64>` (the
/// session state) is kept across reloads.
#[derive(Debug)]
pub enum Translator {
    /// `mode = "siit"`.
    Siit(Siit),
    /// `mode = "nat64"`.
    Nat64(Arc<Nat64>),
}

impl Xlate for Translator {
    #[inline]
    fn translate(
        &self,
        ctx: &mut Ctx,
        buf: &mut [u8],
        start: usize,
        len: usize,
        aux: &mut [u8],
    ) -> Verdict {
        match self {
            Translator::Siit(s) => s.translate(ctx, buf, start, len, aux),
            Translator::Nat64(n) => n.translate(ctx, buf, start, len, aux),
        }
    }

    #[inline]
    fn take_released(
        &self,
        ctx: &mut Ctx,
        buf: &mut [u8],
        start: usize,
        aux: &mut [u8],
    ) -> Option<Verdict> {
        match self {
            Translator::Siit(_) => None,
            Translator::Nat64(n) => n.take_released(ctx, buf, start, aux),
        }
    }

    #[inline]
    fn prefetch_batch(&self) -> usize {
        match self {
            Translator::Siit(s) => s.prefetch_batch(),
            Translator::Nat64(n) => n.prefetch_batch(),
        }
    }

    #[inline]
    fn prefetch<'p, I: IntoIterator<Item = &'p [u8]>>(&self, pkts: I) -> usize {
        match self {
            Translator::Siit(_) => 0,
            Translator::Nat64(n) => n.prefetch(pkts),
        }
    }
}
