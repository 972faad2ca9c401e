//! nat64d as a library: the daemon's I/O drivers, so integration tests and the binary share them.
pub mod dns64;
