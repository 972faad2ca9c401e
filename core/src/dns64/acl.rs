//! Which clients the DNS64 answers (RFC 6147 §7: a DNS64 is a recursive resolver and must not be
//! open to the Internet). Clients outside the ACL get REFUSED.
//!
//! On a dual-stack `[::]` socket IPv4 clients appear as `::ffff:a.b.c.d`; [`normalize`] maps them
//! back to IPv4 before any check, so an IPv4 ACL entry matches and an IPv6 entry such as `::/0`
//! does not silently admit every IPv4 client.

use super::net::IpNet;
use std::net::IpAddr;

/// `::ffff:a.b.c.d` → `a.b.c.d`; anything else unchanged.
pub fn normalize(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// The allowed client networks.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    nets: Vec<IpNet>,
}

impl Acl {
    /// An ACL admitting `nets` (empty admits nobody).
    pub fn new(nets: Vec<IpNet>) -> Self {
        Acl { nets }
    }

    /// True if `client` (normalized first) is inside one of the networks.
    pub fn allows(&self, client: IpAddr) -> bool {
        let c = normalize(client);
        self.nets.iter().any(|n| n.contains(c))
    }

    /// The networks.
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(list: &[&str]) -> Acl {
        Acl::new(list.iter().map(|s| s.parse().unwrap()).collect())
    }

    #[test]
    fn mapped_clients_are_checked_as_ipv4() {
        let a = acl(&["127.0.0.0/8", "2001:db8::/32"]);
        assert!(a.allows("127.0.0.1".parse().unwrap()));
        assert!(a.allows("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!a.allows("::ffff:192.0.2.1".parse().unwrap()));
        assert!(a.allows("2001:db8::9".parse().unwrap()));
        assert!(!a.allows("2001:db9::9".parse().unwrap()));
        // ::/0 is about IPv6 clients only.
        let v6all = acl(&["::/0"]);
        assert!(!v6all.allows("::ffff:198.51.100.1".parse().unwrap()));
        assert!(!Acl::default().allows("::1".parse().unwrap()));
    }
}
