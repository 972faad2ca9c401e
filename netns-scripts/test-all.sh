#!/usr/bin/env bash
# The whole test suite: unit, packet, property and integration tests (cargo), then the black-box
# network-namespace cases with real tools (netns-scripts/run.sh, as root). Installs the Debian
# packages it needs when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=/dev/null
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
# shellcheck source=lib.sh
. netns-scripts/lib.sh
if [ "$(id -u)" -eq 0 ]; then
    ensure_packages valgrind:valgrind dnsmasq:dnsmasq-base dig:dnsutils
fi
cargo test --workspace --release
# Instructions per translated packet (callgrind, deterministic): fail on a regression beyond the
# recorded baseline's tolerance.
if command -v valgrind >/dev/null 2>&1; then
    benches/icount.sh --check
fi
if [ "$(id -u)" -eq 0 ]; then
    cargo build --release --quiet
    NAT64D="${CARGO_TARGET_DIR:-$PWD/target}/release/nat64d" netns-scripts/run.sh
else
    echo "netns cases skipped: they need root (network namespaces)" >&2
    exit 1
fi
