//! Stateless IP/ICMP translation (SIIT, RFC 7915) with RFC 6052 prefixes and the RFC 7757 EAMT.
//!
//! [`Siit`] owns the validated tables and implements [`Mapper`]: an address is looked up in the
//! EAMT first (RFC 7757 §3.3 step 1), then in pool6 (RFC 6052). ICMPv6 errors from IPv6 sources that
//! map to nothing take their IPv4 source from the RFC 6791 pool. Hairpinning of EAM traffic follows
//! RFC 7757 §4.2.2 ("intrinsic"): an IPv6 packet whose translated IPv4 destination is itself covered
//! by an EAM is translated back to IPv6 at once.

use crate::eamt::Eamt;
use crate::pool6::Pool6;
use crate::rfc6791::Rfc6791Pool;
use crate::rfc7915::{self, is_special_v4, XlatConfig};
use crate::tuple::{Ctx, Mapper, Role, Tuple4, Tuple6};
use crate::verdict::{DropReason, Verdict};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Everything stateless translation needs, validated.
#[derive(Debug, Clone)]
pub struct SiitConfig {
    /// RFC 6052 prefixes.
    pub pool6: Pool6,
    /// RFC 7757 explicit address mappings.
    pub eamt: Eamt,
    /// RFC 6791 pool for untranslatable ICMPv6 error sources.
    pub rfc6791: Rfc6791Pool,
    /// Header translation options.
    pub xlat: XlatConfig,
}

/// The stateless translator. Shared read-only by all workers.
#[derive(Debug, Clone)]
pub struct Siit {
    cfg: SiitConfig,
}

/// Which mapping an address came from (RFC 7757 §4.2.2 conditions A2/B2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Eam,
    Pool6,
}

impl Siit {
    /// A translator over `cfg`.
    pub fn new(cfg: SiitConfig) -> Siit {
        Siit { cfg }
    }

    /// The configuration in use.
    pub fn config(&self) -> &SiitConfig {
        &self.cfg
    }

    /// Translates the packet at `buf[start..start + len]` (with [`crate::HEADROOM`] bytes free in
    /// front of it); `aux` receives fragments and ICMP errors. See [`Verdict`].
    pub fn translate(
        &self,
        ctx: &mut Ctx,
        buf: &mut [u8],
        start: usize,
        len: usize,
        aux: &mut [u8],
    ) -> Verdict {
        let Some(&first) = buf.get(start) else {
            return Verdict::Drop(DropReason::Truncated);
        };
        let mut m = SiitMapper::new(self, false);
        match first >> 4 {
            4 => rfc7915::translate_4to6(&self.cfg.xlat, &mut m, ctx, buf, start, len, aux),
            6 => {
                let v = rfc7915::translate_6to4(&self.cfg.xlat, &mut m, ctx, buf, start, len, aux);
                match v {
                    Verdict::Forward { start, len } if m.hairpin => {
                        // RFC 7757 §4.2.2: translate straight back, with the §4.2.1 rules and
                        // without decrementing the hop limit again.
                        let mut back = SiitMapper::new(self, true);
                        let x = XlatConfig {
                            decrement_ttl: false,
                            ..self.cfg.xlat
                        };
                        rfc7915::translate_4to6(&x, &mut back, ctx, buf, start, len, aux)
                    }
                    // The same for a translated ICMP error, which lies in `aux` (RFC 7757 §4.2.2
                    // applies to every output): it is moved back into `buf`, where the packet it
                    // came from was, and translated from there.
                    Verdict::ForwardAux { len: alen } if m.hairpin => {
                        let Some(dst) = buf.get_mut(start..start + alen) else {
                            return Verdict::Drop(DropReason::BufferTooSmall);
                        };
                        dst.copy_from_slice(&aux[..alen]);
                        let mut back = SiitMapper::new(self, true);
                        let x = XlatConfig {
                            decrement_ttl: false,
                            ..self.cfg.xlat
                        };
                        rfc7915::translate_4to6(&x, &mut back, ctx, buf, start, alen, aux)
                    }
                    v => v,
                }
            }
            _ => Verdict::Drop(DropReason::UnknownVersion),
        }
    }

    #[inline(always)]
    fn v4_to_v6(&self, a: Ipv4Addr, use_eam: bool) -> Result<(Ipv6Addr, Via), DropReason> {
        if use_eam {
            if let Some(x) = self.cfg.eamt.to6(a) {
                return Ok((x, Via::Eam));
            }
        }
        self.cfg
            .pool6
            .embed_u128(a)
            .map(|x| (Ipv6Addr::from(x), Via::Pool6))
    }

    /// A refused extraction (RFC 6052 §3.1 behind the WKP) of a special IPv4 address reports
    /// `special_address`, so that one rule names these addresses whatever the prefix.
    #[cold]
    fn special_or<T>(&self, a: &Ipv6Addr, role: Role<'_, T>, e: DropReason) -> DropReason {
        let v4 = self.cfg.pool6.extract_lax_u128(u128::from(*a));
        match (role, v4) {
            (Role::Packet | Role::ErrorOuter(_), Some(v)) if is_special_v4(v) => {
                DropReason::SpecialAddress
            }
            _ => e,
        }
    }

    #[inline(always)]
    fn v6_to_v4(&self, a: &Ipv6Addr) -> Option<Result<(Ipv4Addr, Via), DropReason>> {
        let x = u128::from(*a);
        if let Some(v) = self.cfg.eamt.to4_u128(x) {
            return Some(Ok((v, Via::Eam)));
        }
        self.cfg
            .pool6
            .extract_u128(x)
            .map(|r| r.map(|v| (v, Via::Pool6)))
    }
}

/// The per-packet mapping state: remembers what RFC 7757 §4.2.2 needs to decide on hairpinning.
struct SiitMapper<'a> {
    siit: &'a Siit,
    /// Second pass of a hairpinned packet: apply the §4.2.1 "simple hairpinning" rules.
    second_pass: bool,
    /// Set by `map_6to4` when §4.2.2 condition set A or B holds.
    hairpin: bool,
    /// The untranslated inner tuple of an ICMPv4 error (for §4.2.1 rule 3).
    inner4: Option<Tuple4>,
}

impl<'a> SiitMapper<'a> {
    fn new(siit: &'a Siit, second_pass: bool) -> Self {
        SiitMapper {
            siit,
            second_pass,
            hairpin: false,
            inner4: None,
        }
    }
}

impl Mapper for SiitMapper<'_> {
    fn hairpins(&self) -> bool {
        self.hairpin
    }

    #[inline(always)]
    fn map_4to6(
        &mut self,
        _ctx: &mut Ctx,
        t: &Tuple4,
        role: Role<'_, Tuple6>,
    ) -> Result<Tuple6, DropReason> {
        // §4.1: never for an ordinary packet; inside ICMP errors the quoted packet and the error's
        // source are translated all the same (troubleshooting).
        let special = match role {
            Role::Packet => is_special_v4(t.src) || is_special_v4(t.dst),
            Role::Inner => false,
            Role::ErrorOuter(_) => is_special_v4(t.dst),
        };
        if special {
            return Err(DropReason::SpecialAddress);
        }
        // RFC 7757 §4.2.1 ("simple hairpinning"), applied on the hairpin's second pass only.
        let (eam_src, eam_dst) = match (self.second_pass, role) {
            (false, _) => (true, true),
            // Rule 1.
            (true, Role::Packet) => (false, true),
            // Rule 2.
            (true, Role::Inner) => {
                self.inner4 = Some(*t);
                (true, false)
            }
            // Rule 3.
            (true, Role::ErrorOuter(_)) => (self.inner4.map(|i| i.dst) != Some(t.src), true),
        };
        let src = match (self.siit.v4_to_v6(t.src, eam_src), role) {
            (Ok(x), _) => x.0,
            // RFC 6791's IPv6 counterpart: an ICMPv4 error from an IPv4 router that maps to
            // nothing (no pool6, or RFC 6052 §3.1) takes its source from the IPv6 pool, else
            // from the translator's own `icmp_src6`.
            (Err(e), Role::ErrorOuter(_)) => {
                match (
                    self.siit.cfg.rfc6791.pick6(t.src),
                    self.siit.cfg.xlat.icmp_src6,
                ) {
                    (Some(a), _) | (None, Some(a)) => a,
                    (None, None) => return Err(remap(e, DropReason::UntranslatableSource)),
                }
            }
            (Err(e), _) => return Err(remap(e, DropReason::UntranslatableSource)),
        };
        let dst = self
            .siit
            .v4_to_v6(t.dst, eam_dst)
            .map_err(|e| remap(e, DropReason::UntranslatableDestination))?
            .0;
        Ok(Tuple6 {
            src,
            dst,
            proto: if t.proto == 1 { 58 } else { t.proto },
            l4: t.l4,
            frag: t.frag,
            tcp_flags: t.tcp_flags,
        })
    }

    #[inline(always)]
    fn map_6to4(
        &mut self,
        _ctx: &mut Ctx,
        t: &Tuple6,
        role: Role<'_, Tuple4>,
    ) -> Result<Tuple4, DropReason> {
        if t.src.is_multicast() || t.dst.is_multicast() || t.dst.is_unspecified() {
            return Err(DropReason::SpecialAddress);
        }
        // The one non-global source rule of both modes (the NAT64 mapper applies it too).
        if matches!(role, Role::Packet) && crate::rfc6890::is_non_global_source6(&t.src) {
            return Err(DropReason::NonGlobalSource);
        }
        let (dst, dst_via) = match self.siit.v6_to_v4(&t.dst) {
            Some(Ok(r)) => r,
            Some(Err(e)) => return Err(self.siit.special_or(&t.dst, role, e)),
            None => return Err(DropReason::UntranslatableDestination),
        };
        let (src, src_via) = match (self.siit.v6_to_v4(&t.src), role) {
            (Some(Ok(r)), _) => r,
            (Some(Err(e)), Role::Packet) => return Err(self.siit.special_or(&t.src, role, e)),
            (Some(Err(e)), _) => return Err(e),
            // RFC 6791 §4: errors from IPv6 routers that map to nothing.
            // Without a pool, the translator's own `icmp_src4` (as Jool's pool6791 falls back to
            // the host's address).
            (None, Role::ErrorOuter(_)) => match self.siit.cfg.rfc6791.pick(&t.src) {
                Some(a) => (a, Via::Eam),
                None => match self.siit.cfg.xlat.icmp_src4 {
                    Some(a) => (a, Via::Eam),
                    None => return Err(DropReason::UntranslatableSource),
                },
            },
            (None, _) => return Err(DropReason::UntranslatableSource),
        };
        // §5.1 / RFC 1812 §5.3.7: the same IPv4 rule as the other direction.
        let special = match role {
            Role::Packet => is_special_v4(src) || is_special_v4(dst),
            Role::Inner => false,
            Role::ErrorOuter(_) => is_special_v4(dst),
        };
        if special {
            return Err(DropReason::SpecialAddress);
        }
        let eamt = &self.siit.cfg.eamt;
        match role {
            // RFC 7757 §4.2.2 set A: destination from RFC 6052 and found in the EAMT.
            Role::Packet => self.hairpin = dst_via == Via::Pool6 && eamt.contains4(dst),
            // Set B: the inner source from RFC 6052 and found in the EAMT.
            Role::Inner => self.hairpin = src_via == Via::Pool6 && eamt.contains4(src),
            Role::ErrorOuter(_) => {}
        }
        Ok(Tuple4 {
            src,
            dst,
            proto: if t.proto == 58 { 1 } else { t.proto },
            l4: t.l4,
            frag: t.frag,
            tcp_flags: t.tcp_flags,
        })
    }
}

/// WKP refusals keep their own reason; everything else becomes `other`.
fn remap(e: DropReason, other: DropReason) -> DropReason {
    if e == DropReason::WkpNonGlobal {
        e
    } else {
        other
    }
}
