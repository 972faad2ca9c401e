#!/usr/bin/env bash
# demo.sh: builds nat64d, brings up the three-namespace topology, starts nat64d (translator and
# DNS64) in the gateway namespace and shows the IPv6-only client reaching the IPv4-only server by
# name: DNS64 synthesizes the AAAA record, NAT64 translates the packets. Then tears down.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_root
need_rust
ensure_packages dnsmasq:dnsmasq-base dig:dnsutils
cd "$REPO"
names_free "${NS_ALL[@]}" || exit 1
if [ -e "/etc/netns/$NS_CLI" ]; then
    echo "demo.sh: /etc/netns/$NS_CLI exists (another run with NS_PREFIX=$NS_PREFIX?): choose another NS_PREFIX" >&2
    exit 1
fi
echo "== building nat64d: cargo build --release (about two minutes on a fresh clone, seconds afterwards)"
nice -n 5 cargo build --release 2>&1 | sed -u 's/^ */   /'
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "== demo: FAILED: the build failed (see above)"; exit 1; }
NAT64D="${CARGO_TARGET_DIR:-$REPO/target}/release/nat64d"

TMP="$(new_tmp demo)"
SRV_PID=
DNS_PID=
NAME=ipv4only.example
STEP="setting up"
PROBLEMS=()
DONE=0
teardown() {
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
    echo "== torn down (namespaces ${NS_ALL[*]} deleted)"
}
on_exit() {
    local rc=$?
    [ "$DONE" = 1 ] && return
    teardown
    echo "== demo: FAILED while $STEP (exit $rc)"
}
trap on_exit EXIT
# step DESCRIPTION COMMAND...: runs it, indents its output, remembers a failure.
step() {
    local what="$1" rc=0
    shift
    "$@" >"$TMP/step.out" 2>&1 || rc=$?
    sed 's/^/   /' "$TMP/step.out"
    [ "$rc" -eq 0 ] || PROBLEMS+=("$what")
    return 0
}

echo "== topology: $NS_CLI (IPv6 only, $CLI6) -- $NS_GW (nat64d) -- $NS_SRV (IPv4 only, $SRV4)"
STEP="bringing the topology up"
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
STEP="starting nat64d"
start_nat64d "$TMP/nat64d.toml" "$TMP/nat64d.log"
STEP="running the demo"
echo "== nat64d running (pid $NAT64D_PID); gateway routes into the TUN:"
in_gw ip route show dev "$TUN_NAME" | sed 's/^/   /'
in_gw ip -6 route show dev "$TUN_NAME" | grep -v fe80 | sed 's/^/   /'

echo "hello from the IPv4-only server" >"$TMP/index.html"
ip netns exec "$NS_SRV" python3 -m http.server --bind "$SRV4" --directory "$TMP" 80 >/dev/null 2>&1 &
SRV_PID=$!
for _ in $(seq 1 50); do in_srv ss -ltn | grep -q ":80 " && break; sleep 0.1; done

echo "== the IPv4-only server has no IPv6 at all (ip -6 addr in $NS_SRV):"
v6="$(in_srv ip -6 addr)"
if [ -z "$v6" ]; then
    echo "   (none)"
else
    echo "$v6" | sed 's/^/   /'
    PROBLEMS+=("the IPv4-only server has IPv6 addresses")
fi
for _ in $(seq 1 50); do in_srv dig +time=1 +tries=1 @"$SRV4" "$NAME" A >/dev/null 2>&1 && break; sleep 0.1; done

echo "== client: dig AAAA $NAME  (the name has only an A record: DNS64 synthesizes the AAAA)"
aaaa() {
    local out
    out="$(in_cli dig +time=2 +tries=2 +noall +answer AAAA "$NAME")"
    echo "$out"
    echo "$out" | grep -q "AAAA.*$SRV6_HEX\$" || { echo "(no synthesized AAAA $SRV6_HEX)"; return 1; }
}
step "DNS64 synthesis (dig AAAA $NAME)" aaaa

hello() { # URL
    local out
    out="$(in_cli curl -sS -g --max-time 10 "$1")" || return 1
    echo "$out"
    [ "$out" = "hello from the IPv4-only server" ]
}
echo "== client: curl http://$NAME/  (by name, through DNS64 + NAT64)"
step "HTTP by name (curl http://$NAME/)" hello "http://$NAME/"
echo "== client: ping -6 $SRV6  (= $SRV4 behind pool6 64:ff9b::/96)"
step "ping -6 $SRV6" in_cli ping -6 -c 3 -i 0.3 -W 2 "$SRV6"
echo "== client: curl http://[$SRV6]/"
step "HTTP by address (curl http://[$SRV6]/)" hello "http://[$SRV6]/"
echo "== nat64d sessions  (the client's flows, all behind pool4 $POOL4)"
step "nat64d sessions" "$NAT64D" sessions --socket "$TMP/control.sock"

echo "== nat64d counters (SIGUSR1):"
kill -USR1 "$NAT64D_PID"
for _ in $(seq 1 30); do grep -q "counters:" "$TMP/nat64d.log" && break; sleep 0.1; done
line="$(grep "counters:" "$TMP/nat64d.log" | tail -n 1 | sed 's/^.*counters: //')"
echo "   $line"
# Explain the drops a healthy run shows, so that they do not read as errors.
if [[ "$line" =~ icmp_untranslatable=([0-9]+) ]]; then
    echo "   icmp_untranslatable=${BASH_REMATCH[1]}: not the demo's traffic. When the TUN comes up, the gateway's kernel"
    echo "   sends its own MLD reports (IPv6 multicast membership, RFC 3810) into it; they have no IPv4"
    echo "   meaning, so nat64d drops and counts them (RFC 7915 §5.2: ICMPv6 informational messages other"
    echo "   than echo are silently dropped). Expect about two per start."
fi
other="$(echo "$line" | sed -n 's/.*drops: //p' | tr ' ' '\n' | grep -v '^icmp_untranslatable=' | grep -v '^$' || true)"
if [ -n "$other" ]; then
    echo "   other drops (each a DropReason in core/src/verdict.rs): $(echo "$other" | tr '\n' ' ')"
fi

DONE=1
teardown
if [ "${#PROBLEMS[@]}" -eq 0 ]; then
    echo "== demo: OK: DNS64 synthesized the AAAA, HTTP by name and by address and 3/3 pings went through NAT64"
else
    echo "== demo: FAILED: $(printf '%s; ' "${PROBLEMS[@]}" | sed 's/; $//')"
    exit 1
fi
