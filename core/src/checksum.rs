//! Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Translation changes a few header words (addresses in the pseudo-header, ICMP type, ports), so
//! the transport checksum is updated from the difference instead of being recomputed over the
//! payload: the cost does not grow with packet size, and a packet that arrived with a bad checksum
//! leaves with a bad checksum (the end host still detects the corruption).

/// Ones' complement partial sum of `data` as big-endian 16-bit words (odd trailing byte padded
/// with zero). Combine partial sums with [`add`]; finish with [`finish`].
#[inline]
pub fn sum(data: &[u8]) -> u32 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        acc += (w >> 32) + (w & 0xffff_ffff);
    }
    let mut rest = chunks.remainder().chunks_exact(2);
    for c in &mut rest {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = rest.remainder() {
        acc += u64::from(*b) << 8;
    }
    fold64(acc)
}

/// [`sum`] for data whose length is a multiple of four (IPv4 headers): 32-bit words, no tail.
#[inline]
pub fn sum32(data: &[u8]) -> u32 {
    let mut acc: u64 = 0;
    for c in data.chunks_exact(4) {
        acc += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
    }
    fold64(acc)
}

/// Folds a 64-bit accumulator into a 16-bit ones' complement sum (kept in a u32).
#[inline]
fn fold64(acc: u64) -> u32 {
    // Branch-free: 64 -> 33 -> 17 -> 16 bits (plus one carry step).
    let acc = (acc & 0xffff_ffff) + (acc >> 32);
    let acc = (acc & 0xffff) + (acc >> 16);
    let acc = (acc & 0xffff) + (acc >> 16);
    ((acc & 0xffff) + (acc >> 16)) as u32
}

/// Folds a partial sum to 16 bits.
#[inline]
pub fn fold(s: u32) -> u16 {
    let s = (s & 0xffff) + (s >> 16);
    let s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// Adds two partial sums.
#[inline]
pub fn add(a: u32, b: u32) -> u32 {
    u32::from(fold(a)) + u32::from(fold(b))
}

/// The checksum field value for a complete partial sum.
#[inline]
pub fn finish(s: u32) -> u16 {
    !fold(s)
}

/// RFC 1624 eqn. 3: `HC' = ~(~HC + ~m + m')`, where `m` is the ones' complement sum of the old
/// covered words and `m'` that of the new ones.
#[inline]
pub fn update(checksum: u16, old: u32, new: u32) -> u16 {
    let s = u32::from(!checksum) + u32::from(!fold(old)) + u32::from(fold(new));
    !fold(s)
}

/// Partial sum of the IPv4 pseudo-header addresses (RFC 768/793).
#[inline]
pub fn v4_addrs(src: &[u8; 4], dst: &[u8; 4]) -> u32 {
    u32::from(u16::from_be_bytes([src[0], src[1]]))
        + u32::from(u16::from_be_bytes([src[2], src[3]]))
        + u32::from(u16::from_be_bytes([dst[0], dst[1]]))
        + u32::from(u16::from_be_bytes([dst[2], dst[3]]))
}

/// Partial sum of the IPv6 pseudo-header addresses (RFC 8200 §8.1).
#[inline(always)]
pub fn v6_addrs(src: &[u8; 16], dst: &[u8; 16]) -> u32 {
    // Four 64-bit words; each adds its two 32-bit halves (ones' complement sums are
    // associative, so wider words fold down to the same 16-bit sum).
    let w = |a: &[u8; 16], i: usize| {
        let v = u64::from_be_bytes([
            a[i],
            a[i + 1],
            a[i + 2],
            a[i + 3],
            a[i + 4],
            a[i + 5],
            a[i + 6],
            a[i + 7],
        ]);
        (v >> 32) + (v & 0xffff_ffff)
    };
    fold64(w(src, 0) + w(src, 8) + w(dst, 0) + w(dst, 8))
}

/// Partial sum of a pseudo-header's length and protocol words.
#[inline]
pub fn len_proto(len: u32, proto: u8) -> u32 {
    (len >> 16) + (len & 0xffff) + u32::from(proto)
}

/// Verifies a block whose checksum field is included (the sum folds to 0xffff).
#[inline]
pub fn verify(partial: u32) -> bool {
    fold(partial) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2.
        assert_eq!(
            fold(sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7])),
            0xddf2
        );
        assert_eq!(fold(sum(&[0xab])), 0xab00);
    }

    #[test]
    fn incremental_matches_full_recompute() {
        let mut data: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37)).collect();
        data[10] = 0;
        data[11] = 0;
        let c = finish(sum(&data));
        data[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(verify(sum(&data)));
        let old = sum(&data[20..28]);
        data[20..28].copy_from_slice(&[0xff, 0xfe, 1, 2, 3, 4, 0, 0]);
        let new = sum(&data[20..28]);
        let c2 = update(c, old, new);
        data[10..12].copy_from_slice(&c2.to_be_bytes());
        assert!(verify(sum(&data)));
    }

    #[test]
    fn v6_addr_sum_matches_bytes() {
        let s: [u8; 16] = core::array::from_fn(|i| (i as u8).wrapping_mul(91).wrapping_add(3));
        let d: [u8; 16] = core::array::from_fn(|i| 255 - i as u8);
        assert_eq!(fold(v6_addrs(&s, &d)), fold(add(sum(&s), sum(&d))));
    }
}
