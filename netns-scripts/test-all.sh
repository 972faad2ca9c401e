#!/usr/bin/env bash
# The whole test suite: unit, packet, property and integration tests (cargo), then the black-box
# network-namespace cases with real tools (when run as root). Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=/dev/null
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo test --workspace --release
if [ -x netns-scripts/run.sh ]; then
    if [ "$(id -u)" -eq 0 ]; then
        netns-scripts/run.sh
    else
        echo "netns cases skipped: they need root (network namespaces)" >&2
        exit 1
    fi
fi
