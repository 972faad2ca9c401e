//! RFC 7915 placeholder (being written).
use crate::rfc7915::XlatConfig;
use crate::tuple::{Ctx, Mapper};
use crate::verdict::{DropReason, Verdict};

/// Translates one packet in place.
pub fn translate_6to4<M: Mapper>(
    _cfg: &XlatConfig,
    _m: &mut M,
    _ctx: &mut Ctx,
    _buf: &mut [u8],
    _start: usize,
    _len: usize,
    _aux: &mut [u8],
) -> Verdict {
    Verdict::Drop(DropReason::Truncated)
}
