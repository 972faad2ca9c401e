#!/usr/bin/env bash
# demo.sh: builds nat64d, brings up the three-namespace topology, starts nat64d (translator and
# DNS64) in the gateway namespace and shows the IPv6-only client reaching the IPv4-only server by
# name: DNS64 synthesizes the AAAA record, NAT64 translates the packets. Then tears down.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_root
ensure_packages dnsmasq:dnsmasq-base dig:dnsutils
cd "$REPO"
# shellcheck source=/dev/null
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
echo "== building nat64d (release)"
cargo build --release --quiet
NAT64D="${CARGO_TARGET_DIR:-$REPO/target}/release/nat64d"

TMP="$(mktemp -d /tmp/nat64d-demo.XXXXXX)"
SRV_PID=
DNS_PID=
NAME=ipv4only.example
cleanup() {
    stop_nat64d >/dev/null 2>&1 || true
    # `|| true`: under set -e a killed job's non-zero wait status would end the trap early
    # and leave the namespaces behind.
    if [ -n "$SRV_PID" ]; then
        kill "$SRV_PID" 2>/dev/null || true
        wait "$SRV_PID" 2>/dev/null || true
    fi
    if [ -n "$DNS_PID" ]; then
        kill "$DNS_PID" 2>/dev/null || true
        for _ in $(seq 1 20); do kill -0 "$DNS_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$DNS_PID" 2>/dev/null || true
        wait "$DNS_PID" 2>/dev/null || true
    fi
    rm -rf "/etc/netns/$NS_CLI"
    "$REPO/netns-scripts/topology.sh" down
    rm -rf "$TMP"
    echo "== torn down"
}
trap cleanup EXIT

echo "== topology: $NS_CLI (IPv6 only, $CLI6) -- $NS_GW (nat64d) -- $NS_SRV (IPv4 only, $SRV4)"
"$REPO/netns-scripts/topology.sh" up
# The IPv4-only side's authoritative DNS: $NAME has only an A record.
# A simple command (not the in_srv function) so that $! is dnsmasq's own PID.
ip netns exec "$NS_SRV" dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces \
    --listen-address="$SRV4" --except-interface=lo --local=/example/ --local-ttl=300 \
    --host-record="$NAME,$SRV4" --pid-file="$TMP/dnsmasq.pid" --log-facility="$TMP/dnsmasq.log" &
DNS_PID=$!
# The client resolves through the gateway's DNS64 (ip netns exec reads /etc/netns/NS/resolv.conf).
mkdir -p "/etc/netns/$NS_CLI"
echo "nameserver $GW6" >"/etc/netns/$NS_CLI/resolv.conf"
# Stateful NAT64 (RFC 6146): IPv6-only hosts share the pool4 address $POOL4.
cat >"$TMP/nat64d.toml" <<CFG
mode = "nat64"
pool6 = ["${POOL6}/96"]
# Documentation addresses behind the Well-Known Prefix: a lab, so RFC 6052 §3.1 is relaxed.
wkp_strict = false
[tun]
name = "${TUN_NAME}"
[nat64.pool4]
addresses = ["$POOL4"]
[nat64.control]
socket = "$TMP/control.sock"
[dns64]
listen = ["[$GW6]:53"]
upstreams = ["$SRV4:53"]
prefixes = ["${POOL6}/96"]
wkp_strict = false
allow = ["2001:db8:1::/64", "::1/128"]
CFG
echo "== nat64d config:"
sed 's/^/   /' "$TMP/nat64d.toml"
start_nat64d "$TMP/nat64d.toml" "$TMP/nat64d.log"
echo "== nat64d running (pid $NAT64D_PID); gateway routes into the TUN:"
in_gw ip route show dev "$TUN_NAME" | sed 's/^/   /'
in_gw ip -6 route show dev "$TUN_NAME" | grep -v fe80 | sed 's/^/   /'

echo "hello from the IPv4-only server" >"$TMP/index.html"
ip netns exec "$NS_SRV" python3 -m http.server --bind "$SRV4" --directory "$TMP" 80 >/dev/null 2>&1 &
SRV_PID=$!
for _ in $(seq 1 50); do in_srv ss -ltn | grep -q ":80 " && break; sleep 0.1; done

echo "== the IPv4-only server has no IPv6 at all:"
in_srv ip -6 addr | sed 's/^/   /'; echo "   (none)"
for _ in $(seq 1 50); do in_srv dig +time=1 +tries=1 @"$SRV4" "$NAME" A >/dev/null 2>&1 && break; sleep 0.1; done
echo "== client: dig AAAA $NAME  (the name has only an A record: DNS64 synthesizes the AAAA)"
in_cli dig +time=2 +tries=2 +noall +answer AAAA "$NAME" | sed 's/^/   /'
echo "== client: curl http://$NAME/  (by name, through DNS64 + NAT64)"
in_cli curl -sS --max-time 10 "http://$NAME/" | sed 's/^/   /'
echo "== client: ping -6 $SRV6  (= $SRV4 behind pool6 64:ff9b::/96)"
in_cli ping -6 -c 3 -i 0.3 "$SRV6" | sed 's/^/   /'
echo "== client: curl http://[$SRV6]/"
in_cli curl -sS -g --max-time 10 "http://[$SRV6]/" | sed 's/^/   /'
echo "== nat64d sessions  (the client's flows, all behind pool4 $POOL4)"
"$NAT64D" sessions --socket "$TMP/control.sock" | sed 's/^/   /'
echo "== nat64d counters (SIGUSR1):"
kill -USR1 "$NAT64D_PID"; sleep 0.3
grep "counters:" "$TMP/nat64d.log" | tail -n 1 | sed 's/^.*counters: /   /'
