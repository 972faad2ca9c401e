//! What the daemon asks of this host rather than of the network: a group id through the system's
//! group database.
//!
//! Neutral ground between the configuration (which checks `control.group` at check-config time,
//! so the error names the file and line) and the control socket (which sets the group on the
//! socket it creates): neither calls into the other.
#![deny(unsafe_code)]

use std::io;

/// The group id of `name`: a number, or a name looked up through the system's group database
/// (`getgrnam_r`, so NSS sources count: systemd `DynamicUser=` groups, LDAP, not only
/// /etc/group).
///
/// # Errors
/// `NotFound` naming the group when no source knows it; the lookup's own error otherwise.
pub fn group_id(name: &str) -> io::Result<u32> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(n);
    }
    match nix::unistd::Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no such group \"{name}\" (looked up through NSS)"),
        )),
        Err(e) => Err(io::Error::other(format!(
            "looking up group \"{name}\": {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_by_number_and_name() {
        assert_eq!(group_id("0").unwrap(), 0);
        assert_eq!(group_id("root").unwrap(), 0);
        // A group of this process, by the name the system gives it (whatever source holds it).
        let me = nix::unistd::getegid();
        if let Ok(Some(g)) = nix::unistd::Group::from_gid(me) {
            assert_eq!(group_id(&g.name).unwrap(), me.as_raw());
        }
        let e = group_id("no-such-group-nat64d").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("\"no-such-group-nat64d\""), "{e}");
    }
}
