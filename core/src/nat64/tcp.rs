//! RFC 6146 §3.5.2.2: the TCP session state machine.
//!
//! One state machine per TCP session. It decides, for each segment of a known session, the next
//! state and which lifetime the session gets: the idle timeouts are RFC 5382's TCP_EST (2 h, with
//! TCP_TRANS added on expiry: 2 h 4 min in total), TCP_TRANS (4 min) and TCP_INCOMING_SYN (6 s,
//! the hold of an unsolicited IPv4 SYN waiting for a simultaneous open from the IPv6 side).
//! CLOSED is fictional (no session); creating a session from CLOSED is decided in
//! [`super::Nat64`]'s filtering step, which uses [`initial`].
//!
//! The machine is a pure function of (state, side, flags): it is tested on its own, and the
//! timers are driven by the session table with time passed in.

/// TCP flag bits (RFC 9293 §3.1), as in [`crate::Tuple4::tcp_flags`].
pub mod flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// The side a packet arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Received on the IPv6 interface ("V6 SYN", "V6 FIN", ...).
    V6,
    /// Received on the IPv4 interface.
    V4,
}

/// RFC 6146 §3.5.2.1 states (CLOSED is the absence of a session).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TcpState {
    /// An IPv4 SYN was received; waiting for the IPv6 SYN.
    V4Init = 0,
    /// An IPv6 SYN was translated; waiting for the IPv4 SYN.
    V6Init = 1,
    /// Open connection.
    Established = 2,
    /// An IPv4 FIN was received.
    V4FinRcv = 3,
    /// An IPv6 FIN was received.
    V6FinRcv = 4,
    /// FINs from both sides were received.
    V4FinV6FinRcv = 5,
    /// A RST was seen, or the established lifetime ran out: TCP_TRANS left.
    Trans = 6,
    /// Not in the RFC (see [`next`]): V6 INIT, then the IPv4 side's SYN (the server's SYN-ACK);
    /// waiting for the IPv6 side to send again (its ACK) before the session counts as open.
    V4SynRcv = 7,
    /// Not in the RFC: V4 INIT, then the IPv6 side's SYN; waiting for the IPv4 side's ACK.
    V6SynRcv = 8,
}

impl TcpState {
    /// The name used in `nat64d sessions` output.
    pub const fn as_str(self) -> &'static str {
        match self {
            TcpState::V4Init => "V4_INIT",
            TcpState::V6Init => "V6_INIT",
            TcpState::Established => "ESTABLISHED",
            TcpState::V4FinRcv => "V4_FIN_RCV",
            TcpState::V6FinRcv => "V6_FIN_RCV",
            TcpState::V4FinV6FinRcv => "V4_FIN_V6_FIN_RCV",
            TcpState::Trans => "TRANS",
            TcpState::V4SynRcv => "V4_SYN_RCV",
            TcpState::V6SynRcv => "V6_SYN_RCV",
        }
    }

    /// Decodes the `repr(u8)` value stored in a session.
    pub(crate) const fn from_u8(v: u8) -> TcpState {
        match v {
            0 => TcpState::V4Init,
            1 => TcpState::V6Init,
            2 => TcpState::Established,
            3 => TcpState::V4FinRcv,
            4 => TcpState::V6FinRcv,
            5 => TcpState::V4FinV6FinRcv,
            7 => TcpState::V4SynRcv,
            8 => TcpState::V6SynRcv,
            _ => TcpState::Trans,
        }
    }
}

/// Which idle timeout applies to a session (also the timer queue it sits in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Lifetime {
    /// UDP_DEFAULT (RFC 6146 §4, RFC 4787 REQ-5).
    Udp = 0,
    /// ICMP_DEFAULT (RFC 5508 REQ-1).
    Icmp = 1,
    /// TCP_EST (RFC 5382 REQ-5).
    TcpEst = 2,
    /// TCP_TRANS.
    TcpTrans = 3,
    /// TCP_INCOMING_SYN.
    TcpIncomingSyn = 4,
}

impl Lifetime {
    /// Number of lifetime classes (timer queues).
    pub const COUNT: usize = 5;
    /// All classes, in index order.
    pub const ALL: [Lifetime; 5] = [
        Lifetime::Udp,
        Lifetime::Icmp,
        Lifetime::TcpEst,
        Lifetime::TcpTrans,
        Lifetime::TcpIncomingSyn,
    ];
}

/// What a segment does to a session's timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// Set (or reset) the lifetime to this class, counting from now.
    Set(Lifetime),
    /// Leave the lifetime as it is.
    Keep,
}

/// The state for a session created from CLOSED by a SYN from `side` (§3.5.2.2 "CLOSED").
///
/// A V6 SYN gives V6 INIT with TCP_TRANS. A V4 SYN gives V4 INIT, with TCP_INCOMING_SYN when the
/// packet is held (address-dependent filtering refused it) and TCP_TRANS when it is forwarded.
pub fn initial(side: Side, held: bool) -> (TcpState, Lifetime) {
    match side {
        Side::V6 => (TcpState::V6Init, Lifetime::TcpTrans),
        Side::V4 if held => (TcpState::V4Init, Lifetime::TcpIncomingSyn),
        Side::V4 => (TcpState::V4Init, Lifetime::TcpTrans),
    }
}

/// RFC 6146 §3.5.2.2: the next state and timer action for a segment of an existing session.
/// Every segment of an existing session is translated and forwarded.
///
/// DEVIATION(RFC 6146 §3.5.2.2): stricter than the RFC about half-open connections, as Linux
/// conntrack is (SYN_RECV until the final ACK). The RFC moves V6 INIT to ESTABLISHED (TCP_EST,
/// 2 h) on the IPv4 side's SYN, and V4 INIT on the IPv6 side's SYN; then a SYN from an IPv6
/// address that will never answer (a host gone, a spoofed or scanning source) pins a session
/// and a pool4 port for two hours as soon as the server's SYN-ACK passes, and the server's
/// SYN-ACK retransmissions keep refreshing it. Here the answering SYN leads to V4 SYN RCV (V6
/// SYN RCV), which keeps the transitory lifetime already running (TCP_TRANS, not refreshed by
/// the answering side's retransmissions); the connection is ESTABLISHED only when the side that
/// sent the first SYN sends a segment with ACK after it. A live client does that within one
/// round trip, so nothing changes for it; a half-open session ends after TCP_TRANS (4 min),
/// which is the RFC's own lifetime for V6 INIT. Both SYN RCV states count as transitory states
/// in the RFC's sense (their timer is TCP_TRANS).
pub fn next(state: TcpState, side: Side, tcp_flags: u8) -> (TcpState, Timer) {
    use TcpState::*;
    let syn = tcp_flags & flags::SYN != 0;
    let fin = tcp_flags & flags::FIN != 0;
    let rst = tcp_flags & flags::RST != 0;
    let ack = tcp_flags & flags::ACK != 0;
    match (state, side) {
        // *** V4 INIT ***: the V6 SYN of a simultaneous open (or of the IPv6 server's answer).
        (V4Init, Side::V6) if syn => (V6SynRcv, Timer::Set(Lifetime::TcpTrans)),
        (V4Init, _) => (V4Init, Timer::Keep),
        // *** V6 INIT ***: the V4 SYN (with or without ACK) answers the IPv6 SYN.
        (V6Init, Side::V4) if syn => (V4SynRcv, Timer::Keep),
        (V6Init, Side::V6) if syn => (V6Init, Timer::Set(Lifetime::TcpTrans)),
        (V6Init, _) => (V6Init, Timer::Keep),
        // *** V4 SYN RCV / V6 SYN RCV *** (see the DEVIATION above): the side that opened must
        // speak again. Its RST closes, its ACK opens, its SYN retransmission (it did not get the
        // answer) restarts TCP_TRANS; the other side changes nothing but a RST.
        (V4SynRcv, Side::V6) | (V6SynRcv, Side::V4) if rst => {
            (Trans, Timer::Set(Lifetime::TcpTrans))
        }
        (V4SynRcv, Side::V6) | (V6SynRcv, Side::V4) if ack => {
            (Established, Timer::Set(Lifetime::TcpEst))
        }
        (V4SynRcv, Side::V6) | (V6SynRcv, Side::V4) => (state, Timer::Set(Lifetime::TcpTrans)),
        (V4SynRcv | V6SynRcv, _) if rst => (Trans, Timer::Keep),
        (V4SynRcv | V6SynRcv, _) => (state, Timer::Keep),
        // *** ESTABLISHED ***
        (Established, _) if rst => (Trans, Timer::Set(Lifetime::TcpTrans)),
        (Established, Side::V4) if fin => (V4FinRcv, Timer::Set(Lifetime::TcpEst)),
        (Established, Side::V6) if fin => (V6FinRcv, Timer::Set(Lifetime::TcpEst)),
        (Established, _) => (Established, Timer::Set(Lifetime::TcpEst)),
        // DEVIATION(RFC 6146 §3.5.2.2): a RST in a FIN RCV state moves to TRANS (as in
        // ESTABLISHED); the RFC would keep the state for the full TCP_EST after a reset.
        (V4FinRcv | V6FinRcv, _) if rst => (Trans, Timer::Set(Lifetime::TcpTrans)),
        // *** V4 FIN RCV ***
        (V4FinRcv, Side::V6) if fin => (V4FinV6FinRcv, Timer::Set(Lifetime::TcpTrans)),
        (V4FinRcv, _) => (V4FinRcv, Timer::Set(Lifetime::TcpEst)),
        // *** V6 FIN RCV ***
        (V6FinRcv, Side::V4) if fin => (V4FinV6FinRcv, Timer::Set(Lifetime::TcpTrans)),
        (V6FinRcv, _) => (V6FinRcv, Timer::Set(Lifetime::TcpEst)),
        // *** V6 FIN + V4 FIN RCV ***: all packets forwarded, the lifetime runs out.
        (V4FinV6FinRcv, _) => (V4FinV6FinRcv, Timer::Keep),
        // *** TRANS ***: anything but a RST revives the connection.
        (Trans, _) if rst => (Trans, Timer::Keep),
        (Trans, _) => (Established, Timer::Set(Lifetime::TcpEst)),
    }
}

/// What happens when a session's lifetime runs out in `state` (§3.5.2.2). `Some` keeps the
/// session in a new state and timer class; `None` deletes it.
///
/// DEVIATION(RFC 6146 §3.5.2.2): on TCP_EST expiry the RFC sends a probe (an empty ACK) to one
/// endpoint before moving to TRANS; the core has no packet output on the timer path, so the
/// session moves to TRANS without a probe. The session still lives TCP_EST + TCP_TRANS idle, the
/// RFC 5382 minimum; a live connection's next segment brings it back to ESTABLISHED.
/// A held V4 SYN's V4 INIT session is deleted here; the ICMP Port Unreachable the RFC sends then
/// comes from the SYN store's own expiry of the same TCP_INCOMING_SYN ([`super::synstore`]).
pub fn on_expiry(state: TcpState) -> Option<(TcpState, Lifetime)> {
    match state {
        TcpState::Established => Some((TcpState::Trans, Lifetime::TcpTrans)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::flags::*;
    use super::TcpState::*;
    use super::*;

    #[test]
    fn v6_initiated_handshake_and_close() {
        let (s, l) = initial(Side::V6, false);
        assert_eq!((s, l), (V6Init, Lifetime::TcpTrans));
        // SYN retransmitted from the IPv6 side resets TCP_TRANS.
        assert_eq!(
            next(s, Side::V6, SYN),
            (V6Init, Timer::Set(Lifetime::TcpTrans))
        );
        // A stray ACK from the IPv4 side does not open the connection.
        assert_eq!(next(s, Side::V4, ACK), (V6Init, Timer::Keep));
        // The server's SYN-ACK: V4 SYN RCV, the transitory timer keeps running (stricter than
        // the RFC, see `next`), and its retransmissions do not refresh it.
        let (s, t) = next(s, Side::V4, SYN | ACK);
        assert_eq!((s, t), (V4SynRcv, Timer::Keep));
        assert_eq!(next(s, Side::V4, SYN | ACK), (V4SynRcv, Timer::Keep));
        assert_eq!(next(s, Side::V4, ACK), (V4SynRcv, Timer::Keep));
        // The client's final ACK opens the connection.
        let (s, t) = next(s, Side::V6, ACK);
        assert_eq!((s, t), (Established, Timer::Set(Lifetime::TcpEst)));
        assert_eq!(next(s, Side::V6, ACK).0, Established);
        let (s, _) = next(s, Side::V6, FIN | ACK);
        assert_eq!(s, V6FinRcv);
        // The IPv6 side's own data does not complete the close.
        assert_eq!(next(s, Side::V6, FIN | ACK).0, V6FinRcv);
        let (s, t) = next(s, Side::V4, FIN | ACK);
        assert_eq!((s, t), (V4FinV6FinRcv, Timer::Set(Lifetime::TcpTrans)));
        assert_eq!(next(s, Side::V6, ACK), (V4FinV6FinRcv, Timer::Keep));
        assert_eq!(on_expiry(s), None);
    }

    #[test]
    fn v4_fin_first() {
        let (s, _) = next(Established, Side::V4, FIN | ACK);
        assert_eq!(s, V4FinRcv);
        assert_eq!(
            next(s, Side::V4, ACK),
            (V4FinRcv, Timer::Set(Lifetime::TcpEst))
        );
        assert_eq!(next(s, Side::V6, FIN).0, V4FinV6FinRcv);
    }

    #[test]
    fn simultaneous_open_from_v4_init() {
        let (s, l) = initial(Side::V4, true);
        assert_eq!((s, l), (V4Init, Lifetime::TcpIncomingSyn));
        assert_eq!(next(s, Side::V4, SYN), (V4Init, Timer::Keep));
        assert_eq!(next(s, Side::V6, ACK), (V4Init, Timer::Keep));
        let (s, t) = next(s, Side::V6, SYN);
        assert_eq!((s, t), (V6SynRcv, Timer::Set(Lifetime::TcpTrans)));
        // The IPv6 side's SYN-ACK retransmissions do not refresh; the IPv4 side's SYN-ACK (the
        // simultaneous open) or ACK opens the connection.
        assert_eq!(next(s, Side::V6, SYN | ACK), (V6SynRcv, Timer::Keep));
        assert_eq!(
            next(s, Side::V4, SYN),
            (V6SynRcv, Timer::Set(Lifetime::TcpTrans))
        );
        assert_eq!(
            next(s, Side::V4, SYN | ACK),
            (Established, Timer::Set(Lifetime::TcpEst))
        );
        assert_eq!(initial(Side::V4, false), (V4Init, Lifetime::TcpTrans));
        assert_eq!(on_expiry(V4Init), None);
    }

    #[test]
    fn half_open_sessions_stay_transitory() {
        for (st, opener, answerer) in [
            (V4SynRcv, Side::V6, Side::V4),
            (V6SynRcv, Side::V4, Side::V6),
        ] {
            assert_eq!(on_expiry(st), None, "{st:?} ends with its TCP_TRANS");
            assert_eq!(next(st, answerer, SYN | ACK), (st, Timer::Keep));
            assert_eq!(next(st, answerer, ACK), (st, Timer::Keep));
            assert_eq!(next(st, answerer, RST), (Trans, Timer::Keep));
            assert_eq!(
                next(st, opener, RST),
                (Trans, Timer::Set(Lifetime::TcpTrans))
            );
            assert_eq!(next(st, opener, SYN), (st, Timer::Set(Lifetime::TcpTrans)));
            assert_eq!(
                next(st, opener, ACK),
                (Established, Timer::Set(Lifetime::TcpEst))
            );
        }
    }

    #[test]
    fn rst_and_trans() {
        for side in [Side::V4, Side::V6] {
            let (s, t) = next(Established, side, RST);
            assert_eq!((s, t), (Trans, Timer::Set(Lifetime::TcpTrans)));
            // Another RST leaves the short timer running.
            assert_eq!(next(s, side, RST | ACK), (Trans, Timer::Keep));
            // Data means the peer did not accept the RST: back to ESTABLISHED.
            assert_eq!(
                next(s, side, ACK),
                (Established, Timer::Set(Lifetime::TcpEst))
            );
            assert_eq!(next(V4FinRcv, side, RST).0, Trans);
            assert_eq!(next(V6FinRcv, side, RST).0, Trans);
        }
        assert_eq!(on_expiry(Established), Some((Trans, Lifetime::TcpTrans)));
        assert_eq!(on_expiry(Trans), None);
    }

    #[test]
    fn state_codes_round_trip() {
        for s in [
            V4Init,
            V6Init,
            Established,
            V4FinRcv,
            V6FinRcv,
            V4FinV6FinRcv,
            Trans,
            V4SynRcv,
            V6SynRcv,
        ] {
            assert_eq!(TcpState::from_u8(s as u8), s);
            assert!(!s.as_str().is_empty());
        }
    }
}
