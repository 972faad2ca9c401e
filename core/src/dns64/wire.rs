//! The few reads of the DNS wire format (RFC 1035 §4.1) that the fast path and the answer cache
//! need without a full parse: the header, the single question (its name lower-cased into a cache
//! key), the EDNS OPT record of a query (RFC 6891 §6.1), and the byte offsets of every TTL in a
//! response so cached answers can be aged in place.
//!
//! Everything is bounds-checked; malformed input is a [`WireError`], never a panic.

/// Header flag bits (RFC 1035 §4.1.1, RFC 4035 §3.2).
pub mod flags {
    /// Response.
    pub const QR: u16 = 0x8000;
    /// Authoritative answer.
    pub const AA: u16 = 0x0400;
    /// Truncated.
    pub const TC: u16 = 0x0200;
    /// Recursion desired.
    pub const RD: u16 = 0x0100;
    /// Recursion available.
    pub const RA: u16 = 0x0080;
    /// Authentic data.
    pub const AD: u16 = 0x0020;
    /// Checking disabled.
    pub const CD: u16 = 0x0010;
}

/// Record type numbers used here.
pub mod rrtype {
    /// A.
    pub const A: u16 = 1;
    /// CNAME.
    pub const CNAME: u16 = 5;
    /// SOA.
    pub const SOA: u16 = 6;
    /// PTR.
    pub const PTR: u16 = 12;
    /// AAAA.
    pub const AAAA: u16 = 28;
    /// OPT.
    pub const OPT: u16 = 41;
}

/// Longest wire-format name (RFC 1035 §2.3.4).
pub const MAX_NAME: usize = 255;

/// Why a message could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Shorter than its header or than a field it announces.
    #[error("message truncated")]
    Truncated,
    /// A name longer than 255 bytes, a label type we do not know, or a compression loop.
    #[error("bad domain name")]
    BadName,
    /// The question section does not hold exactly one question.
    #[error("question count is not 1")]
    QdCount,
    /// A compression pointer inside a query's question (legal but never sent; the slow path
    /// handles it).
    #[error("compressed question name")]
    Compressed,
}

/// EDNS information of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    /// Requestor's UDP payload size.
    pub payload: u16,
    /// DNSSEC OK bit.
    pub dnssec_ok: bool,
    /// EDNS version.
    pub version: u8,
}

/// The header and question of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryView {
    /// Message ID.
    pub id: u16,
    /// Header flags (second 16-bit word).
    pub flags: u16,
    /// Answer count.
    pub ancount: u16,
    /// Authority count.
    pub nscount: u16,
    /// Additional count.
    pub arcount: u16,
    /// Byte offset just past the question.
    pub question_end: usize,
    /// Question type.
    pub qtype: u16,
    /// Question class.
    pub qclass: u16,
    /// Length of the lower-cased wire name written into the caller's key buffer.
    pub qname_len: usize,
    /// The OPT record, if any.
    pub edns: Option<Edns>,
}

impl QueryView {
    /// The OPCODE.
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xf) as u8
    }

    /// True if `bit` (from [`flags`]) is set.
    pub fn has(&self, bit: u16) -> bool {
        self.flags & bit != 0
    }
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, WireError> {
    match b.get(at..at + 2) {
        Some(s) => Ok(u16::from_be_bytes([s[0], s[1]])),
        None => Err(WireError::Truncated),
    }
}

/// Skips a (possibly compressed) name starting at `at`; returns the offset after it.
pub fn skip_name(b: &[u8], mut at: usize) -> Result<usize, WireError> {
    let mut total = 0usize;
    loop {
        let len = *b.get(at).ok_or(WireError::Truncated)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Ok(at + 1),
            0x00 => {
                total += usize::from(len) + 1;
                if total > MAX_NAME {
                    return Err(WireError::BadName);
                }
                at += usize::from(len) + 1;
            }
            0xc0 => {
                if at + 2 > b.len() {
                    return Err(WireError::Truncated);
                }
                return Ok(at + 2);
            }
            _ => return Err(WireError::BadName),
        }
    }
}

/// True if `b` is exactly one uncompressed wire-format name (labels, then the root), as the
/// RDATA of a DNAME must be sent (RFC 6672 §2.5): such bytes can be copied into another message.
pub fn is_plain_name(b: &[u8]) -> bool {
    let mut at = 0usize;
    while let Some(&len) = b.get(at) {
        if len == 0 {
            return at + 1 == b.len() && at < MAX_NAME;
        }
        if len & 0xc0 != 0 {
            return false;
        }
        at += usize::from(len) + 1;
    }
    false
}

/// Reads a query's header and its single question, writing the lower-cased wire-format question
/// name into `key` (which must hold [`MAX_NAME`] bytes), and finds the OPT record.
///
/// # Errors
/// Truncated input, a bad or compressed question name, or a question count other than 1.
pub fn parse_query(b: &[u8], key: &mut [u8]) -> Result<QueryView, WireError> {
    if b.len() < 12 {
        return Err(WireError::Truncated);
    }
    let id = u16_at(b, 0)?;
    let flags = u16_at(b, 2)?;
    let qdcount = u16_at(b, 4)?;
    let ancount = u16_at(b, 6)?;
    let nscount = u16_at(b, 8)?;
    let arcount = u16_at(b, 10)?;
    if qdcount != 1 {
        return Err(WireError::QdCount);
    }
    let mut at = 12;
    let mut k = 0;
    loop {
        let len = usize::from(*b.get(at).ok_or(WireError::Truncated)?);
        if len & 0xc0 == 0xc0 {
            return Err(WireError::Compressed);
        }
        if len & 0xc0 != 0 {
            return Err(WireError::BadName);
        }
        if k + len + 1 > MAX_NAME || k + len + 1 > key.len() {
            return Err(WireError::BadName);
        }
        let label = b.get(at..at + len + 1).ok_or(WireError::Truncated)?;
        for (d, s) in key[k..k + len + 1].iter_mut().zip(label) {
            *d = s.to_ascii_lowercase();
        }
        k += len + 1;
        at += len + 1;
        if len == 0 {
            break;
        }
    }
    let qtype = u16_at(b, at)?;
    let qclass = u16_at(b, at + 2)?;
    let question_end = at + 4;
    let mut view = QueryView {
        id,
        flags,
        ancount,
        nscount,
        arcount,
        question_end,
        qtype,
        qclass,
        qname_len: k,
        edns: None,
    };
    // Walk the other sections to find the OPT record in the additional section.
    let mut at = question_end;
    let total = u32::from(ancount) + u32::from(nscount) + u32::from(arcount);
    for i in 0..total {
        let name_start = at;
        at = skip_name(b, at)?;
        let t = u16_at(b, at)?;
        let class = u16_at(b, at + 2)?;
        let ttl = b.get(at + 4..at + 8).ok_or(WireError::Truncated)?;
        let rdlen = usize::from(u16_at(b, at + 8)?);
        let end = at + 10 + rdlen;
        if end > b.len() {
            return Err(WireError::Truncated);
        }
        if t == rrtype::OPT && i >= u32::from(ancount) + u32::from(nscount) && b[name_start] == 0 {
            view.edns = Some(Edns {
                payload: class,
                dnssec_ok: ttl[2] & 0x80 != 0,
                version: ttl[1],
            });
        }
        at = end;
    }
    Ok(view)
}

/// Offsets of the TTL field of every record in a message (OPT excluded), and the smallest TTL
/// (for a SOA record, the smaller of its TTL and its MINIMUM field, RFC 2308 §5).
///
/// # Errors
/// Truncated or malformed input.
pub fn ttl_offsets(b: &[u8], out: &mut Vec<usize>) -> Result<Option<u32>, WireError> {
    if b.len() < 12 {
        return Err(WireError::Truncated);
    }
    let qd = u16_at(b, 4)?;
    let total = u32::from(u16_at(b, 6)?) + u32::from(u16_at(b, 8)?) + u32::from(u16_at(b, 10)?);
    let mut at = 12;
    for _ in 0..qd {
        at = skip_name(b, at)? + 4;
    }
    let mut min: Option<u32> = None;
    for _ in 0..total {
        at = skip_name(b, at)?;
        let t = u16_at(b, at)?;
        let ttl_b = b.get(at + 4..at + 8).ok_or(WireError::Truncated)?;
        let rdlen = usize::from(u16_at(b, at + 8)?);
        if at + 10 + rdlen > b.len() {
            return Err(WireError::Truncated);
        }
        if t != rrtype::OPT {
            out.push(at + 4);
            let mut ttl = u32::from_be_bytes([ttl_b[0], ttl_b[1], ttl_b[2], ttl_b[3]]);
            if t == rrtype::SOA {
                // RFC 2308 §5: a negative answer lives min(SOA TTL, SOA MINIMUM).
                let names_end = skip_name(b, skip_name(b, at + 10)?)?;
                let m = b
                    .get(names_end + 16..names_end + 20)
                    .ok_or(WireError::Truncated)?;
                ttl = ttl.min(u32::from_be_bytes([m[0], m[1], m[2], m[3]]));
            }
            min = Some(min.map_or(ttl, |m| m.min(ttl)));
        }
        at += 10 + rdlen;
    }
    if at > b.len() {
        return Err(WireError::Truncated);
    }
    Ok(min)
}

/// UDP payload size we advertise and answer up to (the DNS Flag Day 2020 value).
pub const OUR_UDP_PAYLOAD: u16 = 1232;

/// Largest UDP answer for this query: 512 without EDNS (RFC 1035 §4.2.1), else the requestor's
/// size, at least 512 and at most [`OUR_UDP_PAYLOAD`].
pub fn udp_limit(q: &QueryView) -> usize {
    match q.edns {
        None => 512,
        Some(e) => usize::from(e.payload.clamp(512, OUR_UDP_PAYLOAD)),
    }
}

/// Writes an answer without records to `query` into `out`: the query's ID, opcode, RD and CD,
/// QR and RA set, `rcode`, TC if `truncated`; the question when `q` is given, and an OPT record
/// (our payload size, DO mirrored) when the query had one. An `rcode` above 15 (BADVERS = 16,
/// RFC 6891 §6.1.3) puts its upper 8 bits in the OPT record. Returns the length, or `None` if
/// `out` is too small, the query is shorter than a header, or an extended RCODE has no OPT.
pub fn empty_reply(
    query: &[u8],
    q: Option<&QueryView>,
    rcode: u16,
    truncated: bool,
    out: &mut [u8],
) -> Option<usize> {
    let hdr = query.get(..12)?;
    let qflags = u16::from_be_bytes([hdr[2], hdr[3]]);
    let mut f = flags::QR | flags::RA | (qflags & (0x7800 | flags::RD | flags::CD)) | (rcode & 0xf);
    if truncated {
        f |= flags::TC;
    }
    let qlen = q.map_or(0, |v| v.question_end - 12);
    let opt = q.and_then(|v| v.edns);
    if rcode > 15 && opt.is_none() {
        return None;
    }
    let len = 12 + qlen + if opt.is_some() { 11 } else { 0 };
    let o = out.get_mut(..len)?;
    o[..2].copy_from_slice(&hdr[..2]);
    o[2..4].copy_from_slice(&f.to_be_bytes());
    o[4..6].copy_from_slice(&u16::from(q.is_some()).to_be_bytes());
    o[6..10].fill(0);
    o[10..12].copy_from_slice(&u16::from(opt.is_some()).to_be_bytes());
    o[12..12 + qlen].copy_from_slice(query.get(12..12 + qlen)?);
    if let Some(e) = opt {
        let p = OUR_UDP_PAYLOAD.to_be_bytes();
        let d = if e.dnssec_ok { 0x80 } else { 0 };
        let ext = (rcode >> 4) as u8;
        o[12 + qlen..].copy_from_slice(&[0, 0, 41, p[0], p[1], ext, 0, d, 0, 0, 0]);
    }
    Some(len)
}

#[cfg(test)]
mod tests {
    #[test]
    fn plain_names_only() {
        assert!(is_plain_name(b"\x03new\x04test\x00"));
        assert!(is_plain_name(b"\x00"));
        assert!(!is_plain_name(b"\x03new\xc0\x0c"), "compressed");
        assert!(!is_plain_name(b"\x03new\x04test"), "no root");
        assert!(!is_plain_name(b"\x03new\x00\x00"), "trailing bytes");
        assert!(!is_plain_name(b"\x05ne"), "truncated");
        assert!(!is_plain_name(b""));
    }

    use super::*;

    /// A query for WWW.Example.COM AAAA with an OPT record (payload 1232, DO set).
    fn query() -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x10, 0, 1, 0, 0, 0, 0, 0, 1];
        for l in ["WWW", "Example", "COM"] {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 28, 0, 1]);
        q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
        q
    }

    #[test]
    fn reads_query() {
        let q = query();
        let mut key = [0xa5u8; MAX_NAME];
        let v = parse_query(&q, &mut key).unwrap();
        assert_eq!(v.id, 0x1234);
        assert!(v.has(flags::RD) && v.has(flags::CD) && !v.has(flags::QR));
        assert_eq!(v.opcode(), 0);
        assert_eq!((v.qtype, v.qclass), (28, 1));
        assert_eq!(&key[..v.qname_len], b"\x03www\x07example\x03com\x00");
        assert_eq!(
            v.edns,
            Some(Edns {
                payload: 1232,
                dnssec_ok: true,
                version: 0
            })
        );
        assert_eq!(v.question_end, 12 + 17 + 4);
    }

    #[test]
    fn rejects_bad_queries_without_panicking() {
        let q = query();
        let mut key = [0u8; MAX_NAME];
        for cut in 0..q.len() {
            assert!(parse_query(&q[..cut], &mut key).is_err(), "cut at {cut}");
        }
        let mut two = q.clone();
        two[5] = 2;
        assert_eq!(parse_query(&two, &mut key), Err(WireError::QdCount));
        let mut comp = q.clone();
        comp[12] = 0xc0;
        assert_eq!(parse_query(&comp, &mut key), Err(WireError::Compressed));
        let mut bad = q;
        bad[12] = 0x40;
        assert_eq!(parse_query(&bad, &mut key), Err(WireError::BadName));
        // A name of 300 bytes.
        let mut long = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(parse_query(&long, &mut key), Err(WireError::BadName));
    }

    #[test]
    fn ttl_offsets_skip_opt() {
        // Response: question a. A, answer a. (pointer) A TTL 300, OPT.
        let mut m = vec![0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 1];
        m.extend_from_slice(&[1, b'a', 0, 0, 1, 0, 1]);
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 192, 0, 2, 1]);
        m.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
        let mut offs = Vec::new();
        assert_eq!(ttl_offsets(&m, &mut offs), Ok(Some(300)));
        assert_eq!(offs, vec![12 + 7 + 6]);
        for cut in 12..m.len() {
            let mut o = Vec::new();
            assert!(ttl_offsets(&m[..cut], &mut o).is_err(), "cut at {cut}");
        }
        // NXDOMAIN with a SOA of TTL 3600 and MINIMUM 300: 300.
        let mut nx = vec![0, 1, 0x81, 0x83, 0, 1, 0, 0, 0, 1, 0, 0];
        nx.extend_from_slice(&[1, b'a', 0, 0, 28, 0, 1]);
        nx.extend_from_slice(&[0, 0, 6, 0, 1, 0, 0, 0x0e, 0x10, 0, 26]);
        nx.extend_from_slice(&[2, b'n', b's', 0, 0xc0, 12]);
        for v in [1u32, 3600, 600, 86400, 300] {
            nx.extend_from_slice(&v.to_be_bytes());
        }
        let mut offs = Vec::new();
        assert_eq!(ttl_offsets(&nx, &mut offs), Ok(Some(300)));
        assert_eq!(offs, vec![12 + 7 + 5]);
    }

    #[test]
    fn empty_reply_mirrors_the_query() {
        let q = query();
        let mut key = [0u8; MAX_NAME];
        let v = parse_query(&q, &mut key).unwrap();
        let mut out = [0xa5u8; 512];
        let n = empty_reply(&q, Some(&v), 5, false, &mut out).unwrap();
        assert_eq!(n, q.len());
        assert_eq!(&out[..2], &[0x12, 0x34]);
        // QR, RD, RA, CD, REFUSED.
        assert_eq!(&out[2..4], &[0x81, 0x95]);
        assert_eq!(&out[4..12], &[0, 1, 0, 0, 0, 0, 0, 1]);
        assert_eq!(&out[12..v.question_end], &q[12..v.question_end]);
        assert_eq!(
            &out[v.question_end..n],
            &[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]
        );
        let n = empty_reply(&q, None, 1, false, &mut out).unwrap();
        assert_eq!(n, 12);
        assert_eq!(&out[2..12], &[0x81, 0x91, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(empty_reply(&q[..5], None, 1, false, &mut out), None);
        assert_eq!(udp_limit(&v), 1232);
        // BADVERS (16): low bits 0 in the header, 1 in the OPT's extended RCODE.
        let n = empty_reply(&q, Some(&v), 16, false, &mut out).unwrap();
        assert_eq!(out[3] & 0xf, 0);
        assert_eq!(out[v.question_end + 5], 1);
        assert_eq!(n, q.len());
        assert_eq!(empty_reply(&q, None, 16, false, &mut out), None);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary bytes never panic any reader, and what parses stays in bounds.
        #[test]
        fn readers_never_panic(b in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut key = [0u8; MAX_NAME];
            if let Ok(v) = parse_query(&b, &mut key) {
                prop_assert!(v.question_end <= b.len());
                prop_assert!(v.qname_len <= MAX_NAME);
                let mut out = [0u8; 700];
                let n = empty_reply(&b, Some(&v), 2, false, &mut out);
                prop_assert!(n.is_some_and(|n| n <= v.question_end + 11));
            }
            let mut offs = Vec::new();
            if ttl_offsets(&b, &mut offs).is_ok() {
                prop_assert!(offs.iter().all(|&o| o + 4 <= b.len()));
            }
        }

        /// A valid query with bytes changed and cut: still no panic.
        #[test]
        fn mutated_queries_never_panic(
            edits in proptest::collection::vec((0usize..60, any::<u8>()), 1..6),
            cut in 0usize..60,
        ) {
            let mut q = vec![0x12, 0x34, 0x01, 0x10, 0, 1, 0, 0, 0, 0, 0, 1];
            q.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x1c\x00\x01");
            q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
            for (at, v) in edits {
                if at < q.len() {
                    q[at] = v;
                }
            }
            q.truncate(cut.max(1).min(q.len()));
            let mut key = [0u8; MAX_NAME];
            if let Ok(v) = parse_query(&q, &mut key) {
                prop_assert!(v.question_end <= q.len());
            }
            let mut offs = Vec::new();
            let _ = ttl_offsets(&q, &mut offs);
        }
    }
}
