#!/usr/bin/env bash
# bench.sh: iperf3 through the test topology, four paths set up side by side and measured in
# one run, interleaved (test by test, path by path), REPEAT times; each figure is the median:
#   kernel          plain kernel IPv6 forwarding, client -> 2001:db8:2::2 (the ceiling)
#   nat64d          client -> 2001:db8:65::198.51.100.2, nat64d with tun.offload = false
#   nat64d offload  client -> 64:ff9b::198.51.100.2, nat64d with tun.offload = true (default)
#   TAYGA           client -> 2001:db8:64::198.51.100.2, Debian's tayga (when installed)
#   nat64d stateful client -> 2001:db8:66::198.51.100.2, nat64d mode nat64 (pool4 192.0.2.5),
#                   offload on: printed in its own table beside the stateless offload figures
# Each translator maps the client 2001:db8:1::2 to its own IPv4 address (192.0.2.4, .2, .3, .5),
# so return traffic finds its way back through the same translator.
# Tests: UDP 64-byte and 1400-byte datagrams (packets per second), TCP 1 and 4 streams (Gbit/s).
# Rates are counted past the gateway, not by the iperf3 receiver, which on 2 cores is CPU-bound
# itself: UDP as the datagrams that reach the server's UDP layer (Udp InDatagrams + InErrors of
# both families in the server namespace: every datagram the gateway delivered, also those the
# busy receiver had no buffer for), TCP as the bytes leaving the gateway's far interface (gs).
# Interface packet counters are not used for UDP: with GRO on write, one skb on gs carries many
# datagrams. Counters are sampled after a 1 s warm-up.
#
# Env: DURATION (seconds per test, default 5), REPEAT (default 1), NS_PREFIX, NAT64D, QUEUES,
# BENCH_OUT (the record file, default netns-scripts/results/bench-DATE.md).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_root
ensure_packages tayga:tayga
DURATION="${DURATION:-5}"
REPEAT="${REPEAT:-1}"
QUEUES="${QUEUES:-2}"
export BENCH_V6=1 SRV_LINK_MTU=1500 QUEUES
names_free "${NS_ALL[@]}" || exit 1
TMP="$(new_tmp bench)"
LOAD0="$(cut -d' ' -f1-3 /proc/loadavg)"
IPERF_PID=
TAYGA_PID=
PID_PLAIN=
PID_OFF=
PID_STATEFUL=

cleanup() {
    local p
    for p in "$PID_PLAIN" "$PID_OFF" "$PID_STATEFUL"; do
        NAT64D_PID="$p"
        stop_nat64d >/dev/null 2>&1 || true
    done
    for p in "$TAYGA_PID" "$IPERF_PID"; do
        if [ -n "$p" ]; then
            kill "$p" 2>/dev/null || true
            wait "$p" 2>/dev/null || true
        fi
    done
    "$REPO/netns-scripts/topology.sh" down >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ ! -x "$NAT64D" ]; then
    need_rust
    echo "building nat64d (cargo build --release; a few minutes the first time)"
    (cd "$REPO" && cargo build --release --quiet)
fi
"$REPO/netns-scripts/topology.sh" up
ip netns exec "$NS_SRV" iperf3 -s >/dev/null 2>&1 &
IPERF_PID=$!
for _ in $(seq 1 100); do
    in_srv ss -lnt 2>/dev/null | grep -q ":5201 " && break
    sleep 0.1
done

# nat64d with offload: the test suite's config (tun nat64, 64:ff9b::/96, EAM 192.0.2.2).
OFFLOAD=true write_config "$TMP/off.toml"
start_nat64d "$TMP/off.toml" "$TMP/off.log"
PID_OFF="$NAT64D_PID"
# nat64d without offload: tun nat64p, 2001:db8:65::/96, EAM 192.0.2.4.
OFFLOAD=false write_config "$TMP/plain.toml"
sed -i -e 's/^name = .*/name = "nat64p"/' -e 's#64:ff9b::/96#2001:db8:65::/96#' \
    -e "s/\"$CLI4\"/\"192.0.2.4\"/" "$TMP/plain.toml"
start_nat64d "$TMP/plain.toml" "$TMP/plain.log"
PID_PLAIN="$NAT64D_PID"
# Stateful nat64d (mode nat64, offload): tun nat64s, 2001:db8:66::/96, pool4 192.0.2.5.
cat >"$TMP/stateful.toml" <<CFG
mode = "nat64"
pool6 = ["2001:db8:66::/96"]
wkp_strict = false
[tun]
name = "nat64s"
queues = $QUEUES
offload = true
[nat64.pool4]
addresses = ["192.0.2.5"]
[nat64.control]
socket = "$TMP/stateful.sock"
[log]
level = "info"
CFG
start_nat64d "$TMP/stateful.toml" "$TMP/stateful.log"
PID_STATEFUL="$NAT64D_PID"
NAT64D_PID=

PATHS=(kernel nat64d nat64d_off nat64d_stateful)
declare -A DEST=([kernel]=2001:db8:2::2 [nat64d]="2001:db8:65::$SRV4" [nat64d_off]="$SRV6"
    [nat64d_stateful]="2001:db8:66::$SRV4" [tayga]="2001:db8:64::$SRV4")

HAVE_TAYGA=0
TAYGA="$(command -v tayga || true)"
[ -z "$TAYGA" ] && [ -x /usr/sbin/tayga ] && TAYGA=/usr/sbin/tayga
if [ -n "$TAYGA" ]; then
    # TAYGA 0.9.2 refuses documentation IPv4 addresses behind 64:ff9b::/96: a network-specific
    # prefix instead.
    cat >"$TMP/tayga.conf" <<CONF
tun-device tayga0
ipv4-addr 192.0.2.1
ipv6-addr 2001:db8:1:ffff::1
prefix 2001:db8:64::/96
map 192.0.2.3 $CLI6
data-dir $TMP
CONF
    in_gw "$TAYGA" -c "$TMP/tayga.conf" --mktun >/dev/null
    in_gw ip link set tayga0 up
    in_gw ip route add 192.0.2.1 dev tayga0
    in_gw ip route add 192.0.2.3 dev tayga0
    in_gw ip -6 route add 2001:db8:64::/96 dev tayga0
    ip netns exec "$NS_GW" "$TAYGA" -c "$TMP/tayga.conf" -n >"$TMP/tayga.log" 2>&1 &
    TAYGA_PID=$!
    sleep 0.5
    if in_cli ping -6 -c 1 -W 2 "${DEST[tayga]}" >/dev/null 2>&1; then
        HAVE_TAYGA=1
        PATHS+=(tayga)
    else
        echo "tayga does not forward; left out" >&2
    fi
fi
for p in "${PATHS[@]}"; do
    in_cli ping -6 -c 1 -W 2 "${DEST[$p]}" >/dev/null || { echo "path $p does not work" >&2; exit 1; }
done

counter() { in_gw cat "/sys/class/net/gs/statistics/$1"; }
# Datagrams that reached the server's UDP layer (IPv4 + IPv6), delivered or dropped there.
udp_arrivals() {
    in_srv cat /proc/net/snmp /proc/net/snmp6 2>/dev/null | awk '
        $1 == "Udp:" && !h { for (i = 2; i <= NF; i++) col[$i] = i; h = 1; next }
        $1 == "Udp:" && h { n += $col["InDatagrams"] + $col["InErrors"] }
        $1 == "Udp6InDatagrams" || $1 == "Udp6InErrors" { n += $2 }
        END { print n + 0 }'
}

# measure DEST KIND: prints packets/s (udp*) or Gbit/s (tcp*) past the gateway.
measure() {
    local dst="$1" kind="$2" args p0 p1 b0 b1 win cpid
    case "$kind" in
    udp64) args=(-u -b 0 -l 64) ;;
    udp1400) args=(-u -b 0 -l 1400) ;;
    tcp1) args=(-P 1) ;;
    tcp4) args=(-P 4) ;;
    esac
    ip netns exec "$NS_CLI" timeout $((DURATION + 10)) iperf3 -c "$dst" -t "$DURATION" "${args[@]}" >"$TMP/iperf.out" 2>&1 &
    cpid=$!
    sleep 1
    p0="$(udp_arrivals)"
    b0="$(counter tx_bytes)"
    win=$((DURATION - 2))
    [ "$win" -ge 1 ] || win=1
    sleep "$win"
    p1="$(udp_arrivals)"
    b1="$(counter tx_bytes)"
    wait "$cpid" || true
    sleep 0.3
    case "$kind" in
    udp*) echo $(((p1 - p0) / win)) ;;
    tcp*) awk -v b=$((b1 - b0)) -v w="$win" 'BEGIN { printf "%.2f\n", b * 8 / w / 1e9 }' ;;
    esac
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

KINDS=(udp64 udp1400 tcp1 tcp4)
declare -A ALL
for rep in $(seq 1 "$REPEAT"); do
    for k in "${KINDS[@]}"; do
        for p in "${PATHS[@]}"; do
            v="$(measure "${DEST[$p]}" "$k")"
            ALL["$p,$k"]="${ALL["$p,$k"]:-} $v"
            echo "  run $rep: $p $k $v" >&2
        done
    done
done
declare -A R
for k in "${KINDS[@]}"; do
    for p in "${PATHS[@]}"; do
        # shellcheck disable=SC2086
        R["$p,$k"]="$(median ${ALL["$p,$k"]})"
    done
done
# Each nat64d must have stayed up and translated.
for p in "$PID_OFF" "$PID_PLAIN" "$PID_STATEFUL"; do
    kill -USR1 "$p"
done
sleep 0.3

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }
unit() { case "$1" in udp*) echo "pps" ;; *) echo "Gbit/s" ;; esac; }

# The report (tables, raw per-run figures, date, load and command line) also goes to BENCH_OUT;
# the README's Throughput and Speed tables are copied from such a file.
BENCH_OUT="${BENCH_OUT:-$(dirname "$0")/results/bench-$(date -u +%Y%m%dT%H%M%SZ).md}"
mkdir -p "$(dirname "$BENCH_OUT")"
{
echo
echo "# netns-scripts/bench.sh record"
echo
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); command: DURATION=$DURATION REPEAT=$REPEAT QUEUES=$QUEUES $0 $*; commit: $(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo
echo "nat64d bench: $(nproc) cores, load average before: $LOAD0, ${DURATION} s per test, median of $REPEAT, nat64d queues=$QUEUES"
echo "(UDP counted at the server's UDP layer, TCP as bytes on the gateway's far link)"
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
echo
echo "Stateful (mode nat64) vs stateless (mode siit), both with offload, same run:"
echo
echo "| test | unit | stateless | stateful | stateful/stateless |"
echo "|---|---|---|---|---|"
for k in "${KINDS[@]}"; do
    case "$k" in
    udp64) name="UDP 64 B" ;; udp1400) name="UDP 1400 B" ;; tcp1) name="TCP 1 stream" ;; *) name="TCP 4 streams" ;;
    esac
    o="${R["nat64d_off,$k"]}" s="${R["nat64d_stateful,$k"]}"
    echo "| $name | $(unit "$k") | $o | $s | $(ratio "$s" "$o") |"
done
echo
echo "nat64d counters: offload: $(grep 'counters:' "$TMP/off.log" | tail -n 1 | sed 's/.*counters: //')"
echo "                 plain:   $(grep 'counters:' "$TMP/plain.log" | tail -n 1 | sed 's/.*counters: //')"
echo "                 stateful: $(grep 'counters:' "$TMP/stateful.log" | tail -n 1 | sed 's/.*counters: //')"
echo
echo "Raw figures (every run, in run order; pps or Gbit/s):"
echo
echo '```'
for k in "${KINDS[@]}"; do
    for p in "${PATHS[@]}"; do
        echo "$k $p${ALL["$p,$k"]}"
    done
done
echo '```'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$BENCH_OUT"
echo "record written to $BENCH_OUT"
