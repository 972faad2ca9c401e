//! nat64d: userspace NAT64/SIIT gateway daemon.
fn main() {
    println!("nat64d {}", env!("CARGO_PKG_VERSION"));
}
