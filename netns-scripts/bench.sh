#!/usr/bin/env bash
# bench.sh: iperf3 through the test topology, three paths measured in one run:
#   kernel  plain kernel IPv6 forwarding (client -> 2001:db8:2::2), the ceiling
#   nat64d  client -> 64:ff9b::198.51.100.2 through nat64d
#   tayga   client -> 2001:db8:64::198.51.100.2 through TAYGA (Debian package), when installed
# For each: UDP 64-byte and 1400-byte datagrams (packets per second), TCP 1 and 4 streams (Gbps).
# Rates are counted past the gateway, not by the iperf3 receiver, which on 2 cores is CPU-bound
# itself: UDP as the datagrams that reach the server's UDP layer (Udp InDatagrams + InErrors of
# both families in the server namespace: every datagram the gateway delivered, also those the
# busy receiver had no buffer for), TCP as the bytes leaving the gateway's far interface (gs).
# Interface packet counters are not used for UDP: with GRO on write, one skb on gs carries many
# datagrams. Counters are sampled after a 1 s warm-up.
#
# `bench.sh nat64` instead measures nat64d stateless (mode siit) and stateful (mode nat64) side by
# side, nothing else.
#
# Env: DURATION (seconds per test, default 5), NS_PREFIX, NAT64D, QUEUES (nat64d queues).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_root
ensure_packages
DURATION="${DURATION:-5}"
export BENCH_V6=1 SRV_LINK_MTU=1500
TMP="$(mktemp -d /tmp/nat64d-bench.XXXXXX)"
IPERF_PID=
TAYGA_PID=

cleanup() {
    stop_nat64d >/dev/null 2>&1 || true
    [ -n "$TAYGA_PID" ] && kill "$TAYGA_PID" 2>/dev/null && wait "$TAYGA_PID" 2>/dev/null
    [ -n "$IPERF_PID" ] && kill "$IPERF_PID" 2>/dev/null && wait "$IPERF_PID" 2>/dev/null
    "$REPO/netns-scripts/topology.sh" down >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ ! -x "$NAT64D" ]; then
    (cd "$REPO" && cargo build --release --quiet)
fi
"$REPO/netns-scripts/topology.sh" up
ip netns exec "$NS_SRV" iperf3 -s >/dev/null 2>&1 &
IPERF_PID=$!
sleep 0.5

counter() { in_gw cat "/sys/class/net/gs/statistics/$1"; }
# Datagrams that reached the server's UDP layer (IPv4 + IPv6), delivered or dropped there.
udp_arrivals() {
    in_srv cat /proc/net/snmp /proc/net/snmp6 2>/dev/null | awk '
        $1 == "Udp:" && !h { for (i = 2; i <= NF; i++) col[$i] = i; h = 1; next }
        $1 == "Udp:" && h { n += $col["InDatagrams"] + $col["InErrors"] }
        $1 == "Udp6InDatagrams" || $1 == "Udp6InErrors" { n += $2 }
        END { print n + 0 }'
}

# measure DEST KIND: prints packets/s (udp*) or Gbit/s (tcp*) seen leaving gs.
measure() {
    local dst="$1" kind="$2" args p0 p1 b0 b1 win
    case "$kind" in
    udp64) args=(-u -b 0 -l 64) ;;
    udp1400) args=(-u -b 0 -l 1400) ;;
    tcp1) args=(-P 1) ;;
    tcp4) args=(-P 4) ;;
    esac
    ip netns exec "$NS_CLI" timeout $((DURATION + 10)) iperf3 -c "$dst" -t "$DURATION" "${args[@]}" >"$TMP/iperf.out" 2>&1 &
    local cpid=$!
    sleep 1
    p0="$(udp_arrivals)"
    b0="$(counter tx_bytes)"
    win=$((DURATION - 2))
    sleep "$win"
    p1="$(udp_arrivals)"
    b1="$(counter tx_bytes)"
    wait "$cpid" || true
    case "$kind" in
    udp*) echo $(((p1 - p0) / win)) ;;
    tcp*) awk -v b=$((b1 - b0)) -v w="$win" 'BEGIN { printf "%.2f\n", b * 8 / w / 1e9 }' ;;
    esac
}

KINDS=(udp64 udp1400 tcp1 tcp4)
declare -A R

run_path() { # name dest
    local k
    for k in "${KINDS[@]}"; do
        R["$1,$k"]="$(measure "$2" "$k")"
        echo "  $1 $k: ${R["$1,$k"]}" >&2
    done
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }
unit() { case "$1" in udp*) echo "pps" ;; *) echo "Gbit/s" ;; esac; }
kind_name() {
    case "$1" in
    udp64) echo "UDP 64 B" ;; udp1400) echo "UDP 1400 B" ;; tcp1) echo "TCP 1 stream" ;; *) echo "TCP 4 streams" ;;
    esac
}

# bench.sh nat64: stateless (mode siit) and stateful (mode nat64) side by side, both with offload,
# same traffic (the client to 64:ff9b::198.51.100.2); the stateful run shares pool4 192.0.2.1.
if [ "${1:-}" = nat64 ]; then
    echo "== nat64d mode siit (stateless)" >&2
    OFFLOAD=true QUEUES="${QUEUES:-2}" write_config "$TMP/nat64d.toml"
    start_nat64d "$TMP/nat64d.toml" "$TMP/nat64d.log"
    run_path siit "$SRV6"
    stop_nat64d
    echo "== nat64d mode nat64 (stateful)" >&2
    OFFLOAD=true QUEUES="${QUEUES:-2}" UDP_TIMEOUT=60 MAPLOG_ON=false MAPLOG="$TMP/map.jsonl" \
        CTL_SOCK="$TMP/ctl.sock" write_nat64_config "$TMP/nat64d.toml"
    start_nat64d "$TMP/nat64d.toml" "$TMP/nat64d.log"
    run_path nat64 "$SRV6"
    stop_nat64d
    echo
    echo "nat64d stateful vs stateless: $(nproc) cores, ${DURATION} s per test, queues=${QUEUES:-2}, offload on, UDP counted at the server's UDP layer, TCP as bytes on the gateway's far link"
    echo
    echo "| test | unit | siit (stateless) | nat64 (stateful) | nat64/siit |"
    echo "|---|---|---|---|---|"
    for k in "${KINDS[@]}"; do
        echo "| $(kind_name "$k") | $(unit "$k") | ${R["siit,$k"]} | ${R["nat64,$k"]} | $(ratio "${R["nat64,$k"]}" "${R["siit,$k"]}") |"
    done
    exit 0
fi

echo "== kernel IPv6 forwarding (ceiling)" >&2
run_path kernel 2001:db8:2::2

echo "== nat64d" >&2
QUEUES="${QUEUES:-2}" write_config "$TMP/nat64d.toml"
start_nat64d "$TMP/nat64d.toml" "$TMP/nat64d.log"
run_path nat64d "$SRV6"
stop_nat64d

echo "== nat64d with offload (tun.offload = true: GSO split on read, GRO on write)" >&2
OFFLOAD=true QUEUES="${QUEUES:-2}" write_config "$TMP/nat64d.toml"
start_nat64d "$TMP/nat64d.toml" "$TMP/nat64d.log"
run_path nat64d_off "$SRV6"
stop_nat64d

HAVE_TAYGA=0
if command -v tayga >/dev/null 2>&1 || [ -x /usr/sbin/tayga ]; then
    echo "== tayga" >&2
    TAYGA="$(command -v tayga || echo /usr/sbin/tayga)"
    # TAYGA 0.9.2 refuses documentation IPv4 addresses behind 64:ff9b::/96: a network-specific
    # prefix instead.
    cat >"$TMP/tayga.conf" <<CONF
tun-device tayga0
ipv4-addr 192.0.2.1
ipv6-addr 2001:db8:1:ffff::1
prefix 2001:db8:64::/96
map $CLI4 $CLI6
data-dir $TMP
CONF
    in_gw "$TAYGA" -c "$TMP/tayga.conf" --mktun >/dev/null
    in_gw ip link set tayga0 up
    in_gw ip route add 192.0.2.0/24 dev tayga0
    in_gw ip -6 route add 2001:db8:64::/96 dev tayga0
    ip netns exec "$NS_GW" "$TAYGA" -c "$TMP/tayga.conf" -n >"$TMP/tayga.log" 2>&1 &
    TAYGA_PID=$!
    sleep 0.5
    if in_cli ping -6 -c 1 -W 2 "2001:db8:64::$SRV4" >/dev/null 2>&1; then
        HAVE_TAYGA=1
        run_path tayga "2001:db8:64::$SRV4"
    else
        echo "  tayga does not forward; skipped" >&2
    fi
fi

echo
echo "nat64d bench: $(nproc) cores, ${DURATION} s per test, nat64d queues=${QUEUES:-2}, UDP counted at the server's UDP layer, TCP as bytes on the gateway's far link"
echo
if [ "$HAVE_TAYGA" = 1 ]; then
    echo "| test | unit | kernel IPv6 fwd | nat64d | nat64d offload | TAYGA | nat64d/kernel | nat64d/TAYGA | offload/kernel | offload/TAYGA |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
else
    echo "| test | unit | kernel IPv6 fwd | nat64d | nat64d offload | nat64d/kernel | offload/kernel |"
    echo "|---|---|---|---|---|---|---|"
fi
for k in "${KINDS[@]}"; do
    case "$k" in
    udp64) name="UDP 64 B" ;; udp1400) name="UDP 1400 B" ;; tcp1) name="TCP 1 stream" ;; *) name="TCP 4 streams" ;;
    esac
    kn="${R["kernel,$k"]}" n="${R["nat64d,$k"]}" o="${R["nat64d_off,$k"]}"
    if [ "$HAVE_TAYGA" = 1 ]; then
        t="${R["tayga,$k"]}"
        echo "| $name | $(unit "$k") | $kn | $n | $o | $t | $(ratio "$n" "$kn") | $(ratio "$n" "$t") | $(ratio "$o" "$kn") | $(ratio "$o" "$t") |"
    else
        echo "| $name | $(unit "$k") | $kn | $n | $o | $(ratio "$n" "$kn") | $(ratio "$o" "$kn") |"
    fi
done
