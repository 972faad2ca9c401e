#!/usr/bin/env bash
# demo.sh: builds nat64d, brings up the three-namespace topology, starts nat64d in the gateway
# namespace and shows the IPv6-only client reaching the IPv4-only server, then tears down.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_root
ensure_packages
cd "$REPO"
# shellcheck source=/dev/null
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
echo "== building nat64d (release)"
cargo build --release --quiet
NAT64D="${CARGO_TARGET_DIR:-$REPO/target}/release/nat64d"

TMP="$(mktemp -d /tmp/nat64d-demo.XXXXXX)"
SRV_PID=
cleanup() {
    stop_nat64d >/dev/null 2>&1 || true
    if [ -n "$SRV_PID" ]; then
        kill "$SRV_PID" 2>/dev/null || true
        wait "$SRV_PID" 2>/dev/null || true
    fi
    "$REPO/netns-scripts/topology.sh" down
    rm -rf "$TMP"
    echo "== torn down"
}
trap cleanup EXIT

echo "== topology: $NS_CLI (IPv6 only, $CLI6) -- $NS_GW (nat64d) -- $NS_SRV (IPv4 only, $SRV4)"
"$REPO/netns-scripts/topology.sh" up
write_config "$TMP/nat64d.toml"
echo "== nat64d config:"
sed 's/^/   /' "$TMP/nat64d.toml"
start_nat64d "$TMP/nat64d.toml" "$TMP/nat64d.log"
echo "== nat64d running (pid $NAT64D_PID); gateway routes into the TUN:"
in_gw ip route show dev "$TUN_NAME" | sed 's/^/   /'
in_gw ip -6 route show dev "$TUN_NAME" | grep -v fe80 | sed 's/^/   /'

echo "hello from the IPv4-only server" >"$TMP/index.html"
ip netns exec "$NS_SRV" timeout 60 python3 -m http.server --bind "$SRV4" --directory "$TMP" 80 >/dev/null 2>&1 &
SRV_PID=$!
for _ in $(seq 1 50); do in_srv ss -ltn | grep -q ":80 " && break; sleep 0.1; done

echo "== the IPv4-only server has no IPv6 at all:"
in_srv ip -6 addr | sed 's/^/   /'; echo "   (none)"
echo "== client: ping -6 $SRV6  (= $SRV4 behind pool6 64:ff9b::/96)"
in_cli ping -6 -c 3 -i 0.3 "$SRV6" | sed 's/^/   /'
echo "== client: curl http://[$SRV6]/"
in_cli curl -sS -g --max-time 10 "http://[$SRV6]/" | sed 's/^/   /'
echo "== server: ping $CLI4 (the IPv6-only client through its EAMT entry)"
in_srv ping -4 -c 2 -i 0.3 "$CLI4" | sed 's/^/   /'
echo "== nat64d counters (SIGUSR1):"
kill -USR1 "$NAT64D_PID"; sleep 0.3
grep "counters:" "$TMP/nat64d.log" | tail -n 1 | sed 's/^.*counters: /   /'
