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
#[inline(always)]
fn fold64(acc: u64) -> u32 {
    // Adding the value to itself rotated by half its width puts the end-around-carry sum of the
    // two halves in the upper half (the carry out of the lower half is the end-around carry):
    // 64 -> 32 bits, then the same at 32 -> 16 in `fold`.
    let s = (acc.wrapping_add(acc.rotate_right(32)) >> 32) as u32;
    u32::from(fold(s))
}

/// Folds a partial sum to 16 bits (0 only for a zero sum).
#[inline(always)]
pub fn fold(s: u32) -> u16 {
    (s.wrapping_add(s.rotate_right(16)) >> 16) as u16
}

/// Adds two partial sums.
#[inline(always)]
pub fn add(a: u32, b: u32) -> u32 {
    u32::from(fold(a)) + u32::from(fold(b))
}

/// The checksum field value for a complete partial sum.
#[inline(always)]
pub fn finish(s: u32) -> u16 {
    !fold(s)
}

/// RFC 1624 eqn. 3: `HC' = ~(~HC + ~m + m')`, where `m` is the ones' complement sum of the old
/// covered words and `m'` that of the new ones.
#[inline(always)]
pub fn update(checksum: u16, old: u32, new: u32) -> u16 {
    let s = u32::from(!checksum) + u32::from(!fold(old)) + u32::from(fold(new));
    !fold(s)
}

/// Partial sum of the IPv4 pseudo-header addresses (RFC 768/793).
#[inline(always)]
pub fn v4_addrs(src: &[u8; 4], dst: &[u8; 4]) -> u32 {
    u32::from(u16::from_be_bytes([src[0], src[1]]))
        + u32::from(u16::from_be_bytes([src[2], src[3]]))
        + u32::from(u16::from_be_bytes([dst[0], dst[1]]))
        + u32::from(u16::from_be_bytes([dst[2], dst[3]]))
}

/// Partial sum of the IPv6 pseudo-header addresses (RFC 8200 §8.1).
#[inline(always)]
pub fn v6_addrs(src: &[u8; 16], dst: &[u8; 16]) -> u32 {
    // Four 64-bit words added in 128 bits (an add-with-carry chain); a carry out of 64 bits is
    // worth 2^64, which is 1 modulo 0xffff like every power of 2^16, so the high part is added
    // back in (end-around) and the 64-bit result folds down to the same 16-bit sum.
    let w = |a: &[u8; 16], i: usize| {
        u128::from(u64::from_be_bytes([
            a[i],
            a[i + 1],
            a[i + 2],
            a[i + 3],
            a[i + 4],
            a[i + 5],
            a[i + 6],
            a[i + 7],
        ]))
    };
    let acc = w(src, 0) + w(src, 8) + w(dst, 0) + w(dst, 8);
    let (lo, carry) = (acc as u64).overflowing_add((acc >> 64) as u64);
    fold64(lo + u64::from(carry))
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

    /// The reference fold: add the halves with end-around carry until 16 bits remain.
    fn fold_ref(mut s: u64) -> u16 {
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    #[test]
    fn folds_match_the_reference_on_edges_and_a_sweep() {
        let mut xs: Vec<u64> = vec![0, 1, 0xfffe, 0xffff, 0x1_0000, 0x1_fffe, 0x1_ffff];
        xs.extend([
            0xffff_0000,
            0xffff_ffff,
            0x1_0000_0000,
            u64::from(u32::MAX) * 7,
        ]);
        xs.extend([
            u64::MAX,
            u64::MAX - 1,
            0x8000_0000_8000_0000,
            0xffff_ffff_0000_0001,
        ]);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            xs.push(x);
            xs.push(x >> 20);
            xs.push(x >> 40);
        }
        for &v in &xs {
            assert_eq!(fold64(v), u32::from(fold_ref(v)), "fold64({v:#x})");
            if let Ok(w) = u32::try_from(v) {
                assert_eq!(fold(w), fold_ref(v), "fold({w:#x})");
            }
        }
    }

    #[test]
    fn v6_addr_sum_matches_bytes() {
        let s: [u8; 16] = core::array::from_fn(|i| (i as u8).wrapping_mul(91).wrapping_add(3));
        let d: [u8; 16] = core::array::from_fn(|i| 255 - i as u8);
        assert_eq!(fold(v6_addrs(&s, &d)), fold(add(sum(&s), sum(&d))));
        // All ones (every 64-bit add carries) and all zeros, against the byte-pair sum.
        for (a, b) in [
            ([0xff; 16], [0xff; 16]),
            ([0; 16], [0; 16]),
            ([0xff; 16], [0; 16]),
        ] {
            assert_eq!(
                fold(v6_addrs(&a, &b)),
                fold(add(sum(&a), sum(&b))),
                "{a:?} {b:?}"
            );
        }
        let mut x: u64 = 0x0123_4567_89ab_cdef;
        for _ in 0..20_000 {
            let mut bytes = [0u8; 32];
            for c in bytes.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Mostly ones, so the 64-bit adds carry often.
                c.copy_from_slice(&(x | 0xfff0_fff0_fff0_fff0).to_be_bytes());
            }
            let (a, b) = bytes.split_at(16);
            let (a, b): ([u8; 16], [u8; 16]) = (a.try_into().unwrap(), b.try_into().unwrap());
            assert_eq!(
                fold(v6_addrs(&a, &b)),
                fold(add(sum(&a), sum(&b))),
                "{a:?} {b:?}"
            );
        }
    }
}
