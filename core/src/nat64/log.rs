//! The mapping log: one structured event per BIB entry created and removed.
//!
//! Operators answer abuse reports ("who was 192.0.2.1:40123 at 14:02?") from these events. The
//! core only queues them: each table shard keeps a bounded ring that the daemon drains with
//! [`super::Nat64::drain_events`] off the packet path and writes as JSON lines
//! ([`MappingEvent::write_json`]). When a ring is full, new events are counted as dropped, never
//! blocking translation. Off by default (`mapping_log = false` queues nothing).

use super::Proto;
use crate::Timestamp;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// What happened to a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A BIB entry was created (first packet of an IPv6 host's transport address).
    Created,
    /// A BIB entry was removed (its last session expired).
    Removed,
}

/// One binding event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MappingEvent {
    /// Created or removed.
    pub kind: EventKind,
    /// Protocol of the BIB.
    pub proto: Proto,
    /// IPv6 transport address (X', x).
    pub v6: (Ipv6Addr, u16),
    /// IPv4 transport address (T, t).
    pub v4: (Ipv4Addr, u16),
    /// When the binding was created.
    pub created: Timestamp,
    /// When this event happened (equal to `created` for [`EventKind::Created`]).
    pub at: Timestamp,
}

impl MappingEvent {
    /// Writes the event as one JSON object (no trailing newline). Timestamps are the core's
    /// milliseconds; the daemon adds wall-clock time if its clock epoch differs.
    ///
    /// # Errors
    /// Whatever `w` returns.
    pub fn write_json(&self, w: &mut impl fmt::Write) -> fmt::Result {
        let ev = match self.kind {
            EventKind::Created => "bib_created",
            EventKind::Removed => "bib_removed",
        };
        write!(
            w,
            r#"{{"event":"{ev}","proto":"{}","v6_addr":"{}","v6_port":{},"v4_addr":"{}","v4_port":{},"created_ms":{},"at_ms":{}}}"#,
            self.proto.as_str(),
            self.v6.0,
            self.v6.1,
            self.v4.0,
            self.v4.1,
            self.created.0,
            self.at.0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line() {
        let e = MappingEvent {
            kind: EventKind::Removed,
            proto: Proto::Udp,
            v6: ("2001:db8::1".parse().unwrap(), 5353),
            v4: ("192.0.2.1".parse().unwrap(), 40000),
            created: Timestamp(1000),
            at: Timestamp(301_000),
        };
        let mut s = String::new();
        e.write_json(&mut s).unwrap();
        assert_eq!(
            s,
            r#"{"event":"bib_removed","proto":"udp","v6_addr":"2001:db8::1","v6_port":5353,"v4_addr":"192.0.2.1","v4_port":40000,"created_ms":1000,"at_ms":301000}"#
        );
    }
}
