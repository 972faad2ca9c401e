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
# Two more tables, in the same run and interleaved with the above (each repetition runs every
# part once):
#   flows  a bounded burst of new UDP flows (FLOWS flows x 1 packet from FLOW_HOSTS source
#          addresses, examples/flowgen.rs with sendmmsg on raw sockets) through a fresh stateful
#          nat64d (tun nat64f, 2001:db8:67::/96, pool4 192.0.2.6) and, beside it, through the
#          kernel's own IPv4 NAT (two more namespaces, ${NS_PREFIX}nc -> ${NS_PREFIX}nr with
#          nftables masquerade -> the server): flows set up per second, timed on nat64d's UDP
#          session count (control socket) and on the router namespace's nf_conntrack_count, and
#          first-packet delivery (datagrams at the server's UDP layer / sent). The run fails when
#          delivery is below FLOW_MIN_DELIVERY or the table grew by more than were sent, by fewer
#          than were delivered, or by more than FLOW_SLACK x sent beyond those delivered, or when
#          nat64d's sessions plus the datagrams its full TUN queues dropped miss the sent count by
#          more than FLOW_SLACK x sent.
#   cpu    64-byte UDP, one flow, at CPU_RATE pps for DURATION s through each path: utime+stime of
#          the translator's process (/proc/PID/stat) per datagram delivered, and the machine's
#          softirq time (/proc/stat, every CPU, every process: labelled machine-wide) per datagram.
#          The run fails when a path delivers less than CPU_MIN_DELIVERY (0.5) of what the
#          sender put on the client link in the window.
# Arguments choose the parts: throughput, flows, cpu (default: all three).
#
# Env: DURATION (seconds per test, default 5), REPEAT (default 1), NS_PREFIX, NAT64D, QUEUES,
# BENCH_OUT (the record file, default netns-scripts/results/bench-DATE.md), FLOWS (default
# 20000), FLOW_HOSTS (4), FLOW_SENDERS (sender processes at once, 1), FLOW_RATE (offered flows/s, 0 = as fast as the sender goes, default),
# FLOW_MIN_DELIVERY (0.25), FLOW_SLACK (0.02), CPU_RATE (50000), CPU_MIN_DELIVERY (0.5),
# FLOWGEN (the sender binary).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_root
PARTS=("$@")
[ "${#PARTS[@]}" -gt 0 ] || PARTS=(throughput flows cpu)
for a in "${PARTS[@]}"; do
    case "$a" in
    throughput | flows | cpu) ;;
    *)
        echo "usage: $0 [throughput] [flows] [cpu]   (default: all three)" >&2
        exit 2
        ;;
    esac
done
want() { [[ " ${PARTS[*]} " == *" $1 "* ]]; }
ensure_packages tayga:tayga nft:nftables conntrack:conntrack
DURATION="${DURATION:-5}"
REPEAT="${REPEAT:-1}"
QUEUES="${QUEUES:-2}"
FLOWS="${FLOWS:-20000}"
FLOW_HOSTS="${FLOW_HOSTS:-4}"
FLOW_SENDERS="${FLOW_SENDERS:-1}"
FLOW_RATE="${FLOW_RATE:-0}"
# A floor that catches a broken path, not an overrun one: offered more new flows than it sets up,
# nat64d's TUN queues drop the rest (0.49-0.51 delivered at 213-231k offered flows/s here), and
# the sessions + TUN drops = sent check below accounts for every one of them.
FLOW_MIN_DELIVERY="${FLOW_MIN_DELIVERY:-0.25}"
FLOW_SLACK="${FLOW_SLACK:-0.02}"
# 50k, not the issue's 100k: on this shared 2-core machine the sender reached only 44-110k of
# 100k pps and TAYGA and the offload-off nat64d delivered 47-85 % of it (2026-12-05 runs).
CPU_RATE="${CPU_RATE:-50000}"
# A floor that catches a broken path, not a slow one: under load a translator's TUN queue (500
# packets) overflows while it waits for a CPU (TAYGA delivered 70 % of 50k pps at load 8); the
# process figure counts only the datagrams it handled, and the delivery column shows the loss.
CPU_MIN_DELIVERY="${CPU_MIN_DELIVERY:-0.5}"
FLOWGEN="${FLOWGEN:-${CARGO_TARGET_DIR:-$REPO/target}/release/examples/flowgen}"
export BENCH_V6=1 SRV_LINK_MTU=1500 QUEUES
# The kernel-NAT reference of the flows part: an IPv4 client and a router namespace.
NS_NC="${NS_PREFIX}nc"
NS_NR="${NS_PREFIX}nr"
names_free "${NS_ALL[@]}" "$NS_NC" "$NS_NR" || exit 1
if [ "$FLOW_HOSTS" -lt 1 ] || [ "$FLOW_HOSTS" -gt 60 ] || [ "$FLOWS" -lt "$FLOW_HOSTS" ] ||
    [ "$FLOWS" -gt 60000 ] || [ "$FLOW_SENDERS" -lt 1 ] || [ "$FLOW_SENDERS" -gt "$FLOW_HOSTS" ]; then
    # One pool4 address (64,512 UDP ports) and one /64 subscriber (65,536 sessions) take them all.
    echo "FLOWS must be from FLOW_HOSTS to 60000, FLOW_HOSTS from 1 to 60, FLOW_SENDERS from 1 to FLOW_HOSTS" >&2
    exit 2
fi
TMP="$(new_tmp bench)"
LOAD0="$(cut -d' ' -f1-3 /proc/loadavg)"
IPERF_PID=
TAYGA_PID=
PID_PLAIN=
PID_OFF=
PID_STATEFUL=
PID_FLOWS=
SINK_PID=
BG_PID=
SENDER_PIDS=()
FAILED=()

cleanup() {
    local p
    for p in "$PID_PLAIN" "$PID_OFF" "$PID_STATEFUL" "$PID_FLOWS"; do
        NAT64D_PID="$p"
        stop_nat64d >/dev/null 2>&1 || true
    done
    for p in "$TAYGA_PID" "$IPERF_PID" "$SINK_PID" "$BG_PID" "${SENDER_PIDS[@]}"; do
        if [ -n "$p" ]; then
            kill "$p" 2>/dev/null || true
            wait "$p" 2>/dev/null || true
        fi
    done
    "$REPO/netns-scripts/topology.sh" down >/dev/null 2>&1 || true
    ip netns del "$NS_NC" 2>/dev/null || true
    ip netns del "$NS_NR" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ ! -x "$NAT64D" ]; then
    need_rust
    echo "building nat64d (cargo build --release; a few minutes the first time)"
    (cd "$REPO" && cargo build --release --quiet)
fi
if { want flows || want cpu; } && [ ! -x "$FLOWGEN" ]; then
    need_rust
    echo "building the UDP sender (cargo build --release --example flowgen)"
    (cd "$REPO" && cargo build --release --quiet --example flowgen)
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
    # The queue length of nat64d's TUN queues (1000; --mktun leaves 500), so at a fixed rate
    # both translators have the same room while they wait for a CPU.
    in_gw ip link set tayga0 txqueuelen 1000
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

# --- flows and cpu: a UDP sink on the server, more client addresses, the kernel-NAT reference ---
SINK_PORT=9000
if want flows || want cpu; then
    ip netns exec "$NS_SRV" "$FLOWGEN" sink --port "$SINK_PORT" --max-secs 7200 >/dev/null 2>&1 &
    SINK_PID=$!
fi
FLOW6=()
FLOW4=()
if want flows; then
    # The stateful nat64d of the flows part, started fresh for each burst (empty tables).
    cat >"$TMP/flows.toml" <<CFG
mode = "nat64"
pool6 = ["2001:db8:67::/96"]
wkp_strict = false
[tun]
name = "nat64f"
queues = $QUEUES
offload = true
[nat64]
max_sessions = 131072
[nat64.pool4]
addresses = ["192.0.2.6"]
[nat64.control]
socket = "$TMP/flows.sock"
[log]
level = "info"
CFG
    for i in $(seq 1 "$FLOW_HOSTS"); do
        FLOW6+=("2001:db8:1::$((0x30 + i))")
        FLOW4+=("203.0.113.$((1 + i))")
        # Deprecated (preferred_lft 0): the sender binds them, but the kernel never picks them as
        # the source of other traffic (RFC 6724 rule 3), which the stateless paths would drop.
        ip -n "$NS_CLI" addr add "${FLOW6[-1]}/64" dev c0 nodad preferred_lft 0
    done
    # ${NS_PREFIX}nc (IPv4 client) n0 203.0.113.2../26 -- rc 203.0.113.1/26 ${NS_PREFIX}nr (router,
    # masquerade) rs 203.0.113.65/26 -- s1 203.0.113.66/26 on the server. veths are created in the
    # router namespace and their ends moved, so nothing appears in the host namespace.
    ip netns add "$NS_NC"
    ip netns add "$NS_NR"
    ip -n "$NS_NC" link set lo up
    ip -n "$NS_NR" link set lo up
    ip -n "$NS_NR" link add rc type veth peer name n0 netns "$NS_NC"
    ip -n "$NS_NR" link add rs type veth peer name s1 netns "$NS_SRV"
    for i in $(seq 0 $((FLOW_HOSTS - 1))); do
        ip -n "$NS_NC" addr add "${FLOW4[$i]}/26" dev n0
    done
    ip -n "$NS_NR" addr add 203.0.113.1/26 dev rc
    ip -n "$NS_NR" addr add 203.0.113.65/26 dev rs
    ip -n "$NS_SRV" addr add 203.0.113.66/26 dev s1
    ip -n "$NS_NC" link set n0 up
    ip -n "$NS_NR" link set rc up
    ip -n "$NS_NR" link set rs up
    ip -n "$NS_SRV" link set s1 up
    ip -n "$NS_NC" route add default via 203.0.113.1 dev n0
    ip netns exec "$NS_NR" sysctl -qw net.ipv4.ip_forward=1
    pin_neigh "$NS_NC" n0 203.0.113.1 "$NS_NR" rc
    pin_neigh "$NS_NR" rs 203.0.113.66 "$NS_SRV" s1
    pin_neigh "$NS_SRV" s1 203.0.113.65 "$NS_NR" rs
    ip netns exec "$NS_NR" nft -f - <<'NFT'
table ip bench_nat {
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "rs" masquerade
    }
}
NFT
    ip netns exec "$NS_NC" ping -c 1 -W 2 203.0.113.66 >/dev/null ||
        { echo "kernel NAT path does not work" >&2; exit 1; }
fi

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

# Datagrams the server's UDP layer refused for a bad checksum (IPv4 + IPv6): udp_arrivals counts
# them as arrivals, so the flows and cpu parts check that none came (a sender or translator that
# gets the checksum wrong).
udp_csum_errors() {
    in_srv cat /proc/net/snmp /proc/net/snmp6 2>/dev/null | awk '
        $1 == "Udp:" && !h { for (i = 2; i <= NF; i++) col[$i] = i; h = 1; next }
        $1 == "Udp:" && h { n += $col["InCsumErrors"] }
        $1 == "Udp6InCsumErrors" { n += $2 }
        END { print n + 0 }'
}

# kv KEY LINE: the value of KEY=value in a flowgen output line.
kv() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# ct_stat KEY: the sum over CPUs of a `conntrack -S` counter in the router namespace.
ct_stat() { ip netns exec "$NS_NR" conntrack -S | tr ' ' '\n' | sed -n "s/^$1=//p" | awk '{ n += $1 } END { print n + 0 }'; }

# flow_burst PATH (nat64d | kernel): one burst of FLOWS new flows; sets FB_SENT, FB_OFFERED
# (flows/s the sender achieved), FB_CREATED (sessions / conntrack entries the burst added),
# FB_RATE (their set-up rate), FB_DELIVERED (datagrams at the server), FB_CLASH (kernel only:
# new flows that conntrack attached to an entry made at the same moment on another CPU,
# clash_resolve, so they made no entry of their own), FB_VERDICT (ok or why not).
flow_burst() {
    local path="$1" poll_args send_ns dst ppf out pl a0 a1 e0 e1 k0=0 k1=0 i j pk part hosts q r
    ppf=$(((FLOWS + FLOW_HOSTS - 1) / FLOW_HOSTS))
    if [ "$path" = nat64d ]; then
        start_nat64d "$TMP/flows.toml" "$TMP/flows.log"
        PID_FLOWS="$NAT64D_PID"
        NAT64D_PID=
        in_cli ping -6 -c 1 -W 2 "2001:db8:67::$SRV4" >/dev/null ||
            { echo "flows: nat64d path does not work" >&2; exit 1; }
        poll_args=(--socket "$TMP/flows.sock")
        send_ns="$NS_CLI"
        hosts=("${FLOW6[@]}")
        dst="2001:db8:67::$SRV4"
    else
        ip netns exec "$NS_NR" conntrack -F >/dev/null 2>&1 || true
        poll_args=(--file /proc/sys/net/netfilter/nf_conntrack_count)
        send_ns="$NS_NC"
        hosts=("${FLOW4[@]}")
        dst=203.0.113.66
        k0="$(ct_stat clash_resolve)"
    fi
    sleep 0.3
    a0="$(udp_arrivals)" e0="$(udp_csum_errors)"
    if [ "$path" = nat64d ]; then
        "$FLOWGEN" poll "${poll_args[@]}" --max-secs 30 >"$TMP/poll.out" 2>&1 &
    else
        ip netns exec "$NS_NR" "$FLOWGEN" poll "${poll_args[@]}" --max-secs 30 >"$TMP/poll.out" 2>&1 &
    fi
    BG_PID=$!
    sleep 0.2
    # FLOW_SENDERS processes at once, each with every FLOW_SENDERS-th source address and those
    # addresses' share of the flows (the same split as one process would make).
    q=$((FLOWS / FLOW_HOSTS)) r=$((FLOWS % FLOW_HOSTS))
    SENDER_PIDS=()
    for ((i = 0; i < FLOW_SENDERS; i++)); do
        part=() pk=0
        for ((j = i; j < FLOW_HOSTS; j += FLOW_SENDERS)); do
            part+=("${hosts[$j]}")
            pk=$((pk + q + (j < r ? 1 : 0)))
        done
        ip netns exec "$send_ns" "$FLOWGEN" send --src "$(IFS=,; echo "${part[*]}")" --dst "$dst" \
            --dport "$SINK_PORT" --sport 20000 --ports "$ppf" --packets "$pk" \
            --rate $((FLOW_RATE / FLOW_SENDERS)) --max-secs 20 >"$TMP/flowsend$i.out" 2>&1 &
        SENDER_PIDS+=($!)
    done
    for i in "${SENDER_PIDS[@]}"; do
        wait "$i" || { echo "flows $path: a sender failed: $(cat "$TMP"/flowsend*.out)" >&2; exit 1; }
    done
    SENDER_PIDS=()
    # Together: every datagram sent, over the first start to the last end.
    out="$(cat "$TMP"/flowsend*.out | tr ' ' '\n' | awk -F= '
        $1 == "sent" { n += $2 } $1 == "start_ms" && (s == "" || $2 < s) { s = $2 }
        $1 == "end_ms" && $2 > e { e = $2 }
        END { printf "sent=%d rate=%.0f\n", n, (e > s) ? n * 1000 / (e - s) : 0 }')"
    rm -f "$TMP"/flowsend*.out
    pl=
    if wait "$BG_PID"; then
        pl="$(cat "$TMP/poll.out")"
    else
        echo "flows $path: the count did not settle: $(cat "$TMP/poll.out")" >&2
    fi
    BG_PID=
    sleep 0.3
    a1="$(udp_arrivals)" e1="$(udp_csum_errors)"
    FB_TUNDROP=-
    if [ "$path" = nat64d ]; then
        # Datagrams the kernel dropped because nat64d's TUN queues were full (a fresh device).
        FB_TUNDROP="$(in_gw cat /sys/class/net/nat64f/statistics/tx_dropped)"
        NAT64D_PID="$PID_FLOWS"
        stop_nat64d >/dev/null 2>&1 || true
        PID_FLOWS=
    else
        k1="$(ct_stat clash_resolve)"
    fi
    FB_CLASH=$((k1 - k0))
    FB_SENT="$(kv sent "$out")"
    FB_OFFERED="$(kv rate "$out")"
    FB_CREATED=0 FB_RATE=0
    if [ -n "$pl" ]; then
        FB_CREATED=$(($(kv final "$pl") - $(kv initial "$pl")))
        FB_RATE="$(kv rate "$pl")"
    fi
    FB_DELIVERED=$((a1 - a0))
    FB_VERDICT="$(awk -v s="$FB_SENT" -v c="$FB_CREATED" -v d="$FB_DELIVERED" \
        -v floor="$FLOW_MIN_DELIVERY" -v slack="$FLOW_SLACK" -v want="$FLOWS" -v k="$FB_CLASH" \
        -v t="$FB_TUNDROP" -v bad=$((e1 - e0)) -v settled="${pl:+1}" 'BEGIN {
        if (!settled) { print "FAIL: no growth of the table seen"; exit }
        if (s != want) { print "FAIL: sent " s " of " want; exit }
        if (bad > 0) { print "FAIL: " bad " datagrams arrived with a bad UDP checksum"; exit }
        if (d < floor * s) { printf "FAIL: delivery %.3f below %s\n", d / s, floor; exit }
        if (c > s) { print "FAIL: table grew by " c ", more than the " s " sent"; exit }
        if (c + k < d) { print "FAIL: table grew by " c " (+" k " clashes), fewer than the " d " delivered"; exit }
        if (c - d > slack * s) { print "FAIL: " c - d " entries beyond those delivered (over " slack " x sent)"; exit }
        # nat64d: every datagram sent made a session or was dropped at the TUN queue (or was lost
        # on the way, within the slack).
        if (t != "-" && (c + t > s || s - c - t > slack * s)) { print "FAIL: " c " sessions + " t " TUN queue drops against " s " sent"; exit }
        print "ok" }')"
}

# proc_ticks PID: utime + stime of the process (all its threads), in clock ticks.
proc_ticks() {
    [ -n "$1" ] || { echo 0; return; }
    sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}
# softirq_ticks: softirq time of every CPU (machine-wide), in clock ticks.
softirq_ticks() { awk '$1 == "cpu" { print $8 }' /proc/stat; }
HZ="$(getconf CLK_TCK)"

# cpu_run PATH DEST PID: 64-byte UDP at CPU_RATE pps for DURATION s; over the window (after a
# 1 s warm-up) sets CR_OFFERED (pps the sender put on the client link, c0's tx_packets), CR_RATE
# (pps delivered at the server), CR_CPU (ns of the process's CPU per datagram delivered, "-"
# without a process), CR_SIRQ (ns of machine-wide softirq per datagram delivered), CR_VERDICT.
cpu_run() {
    local path="$1" dst="$2" pid="$3" t0 t1 c0 c1 s0 s1 a0 a1 o0 o1 win dt e0 e1
    [ -z "$pid" ] || kill -0 "$pid" 2>/dev/null || { echo "cpu $path: process $pid is gone" >&2; exit 1; }
    ip netns exec "$NS_CLI" "$FLOWGEN" send --src "$CLI6" --dst "$dst" --dport "$SINK_PORT" \
        --sport 10000 --ports 1 --packets $((CPU_RATE * DURATION)) --rate "$CPU_RATE" \
        --max-secs $((DURATION + 5)) >"$TMP/send.out" 2>&1 &
    BG_PID=$!
    e0="$(udp_csum_errors)"
    sleep 1
    win=$((DURATION - 2))
    [ "$win" -ge 1 ] || win=1
    # Sent and delivered read back to back, the CPU counters next, in the same order at both ends.
    t0="$(date +%s.%N)" o0="$(in_cli cat /sys/class/net/c0/statistics/tx_packets)" a0="$(udp_arrivals)"
    c0="$(proc_ticks "$pid")" s0="$(softirq_ticks)"
    sleep "$win"
    t1="$(date +%s.%N)" o1="$(in_cli cat /sys/class/net/c0/statistics/tx_packets)" a1="$(udp_arrivals)"
    c1="$(proc_ticks "$pid")" s1="$(softirq_ticks)"
    wait "$BG_PID" || { BG_PID=; echo "cpu $path: sender failed: $(cat "$TMP/send.out")" >&2; exit 1; }
    BG_PID=
    sleep 0.3
    e1="$(udp_csum_errors)"
    dt="$(awk -v x="$t0" -v y="$t1" 'BEGIN { print y - x }')"
    read -r CR_OFFERED CR_RATE CR_CPU CR_SIRQ CR_VERDICT < <(awk -v a=$((a1 - a0)) -v o=$((o1 - o0)) \
        -v t="$dt" -v c=$((c1 - c0)) -v s=$((s1 - s0)) -v hz="$HZ" -v pid="$pid" \
        -v floor="$CPU_MIN_DELIVERY" -v bad=$((e1 - e0)) 'BEGIN {
        cpu = (pid == "") ? "-" : sprintf("%.0f", (a > 0) ? c * 1e9 / hz / a : 0)
        sirq = (a > 0) ? s * 1e9 / hz / a : 0
        v = (o > 0 && a >= floor * o) ? "ok" : sprintf("FAIL:delivered_%d_of_%d_sent_(floor_%s)", a, o, floor)
        if (bad > 0) v = sprintf("FAIL:%d_datagrams_with_a_bad_UDP_checksum", bad)
        printf "%.0f %.0f %s %.0f %s\n", o / t, a / t, cpu, sirq, v }')
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# median_int V...: the median rounded to a whole number ("-" stays "-").
median_int() { median "$@" | awk '{ if ($1 ~ /^[0-9.]+$/) printf "%.0f\n", $1; else print $1 }'; }

KINDS=()
want throughput && KINDS=(udp64 udp1400 tcp1 tcp4)
FPATHS=(nat64d kernel)
FFIELDS=(sent offered created rate delivered clash tundrop)
# The cpu part: the stateless nat64d with offload (the default) is the reference of its ratios.
CPATHS=(kernel nat64d_off nat64d nat64d_stateful)
[ "$HAVE_TAYGA" = 1 ] && CPATHS+=(tayga)
declare -A PID_OF=([kernel]="" [nat64d]="$PID_PLAIN" [nat64d_off]="$PID_OFF"
    [nat64d_stateful]="$PID_STATEFUL" [tayga]="$TAYGA_PID")
CFIELDS=(offered rate cpu sirq)
declare -A ALL
for rep in $(seq 1 "$REPEAT"); do
    for k in "${KINDS[@]}"; do
        for p in "${PATHS[@]}"; do
            v="$(measure "${DEST[$p]}" "$k")"
            ALL["$p,$k"]="${ALL["$p,$k"]:-} $v"
            echo "  run $rep: $p $k $v" >&2
            # A path that carried nothing is broken (e.g. the client picked a source address the
            # translator does not map), not slow: no rate to print.
            awk -v v="$v" 'BEGIN { exit !(v + 0 > 0) }' || FAILED+=("run $rep $p $k: nothing arrived")
        done
    done
    if want flows; then
        for p in "${FPATHS[@]}"; do
            flow_burst "$p"
            for f in "${FFIELDS[@]}"; do
                v="FB_${f^^}"
                ALL["flows_$p,$f"]="${ALL["flows_$p,$f"]:-} ${!v}"
            done
            echo "  run $rep: flows $p sent $FB_SENT at $FB_OFFERED/s, table +$FB_CREATED at $FB_RATE/s, delivered $FB_DELIVERED, clashes $FB_CLASH, TUN queue drops $FB_TUNDROP: $FB_VERDICT" >&2
            [ "$FB_VERDICT" = ok ] || FAILED+=("run $rep flows $p: $FB_VERDICT")
        done
    fi
    if want cpu; then
        for p in "${CPATHS[@]}"; do
            cpu_run "$p" "${DEST[$p]}" "${PID_OF[$p]}"
            for f in "${CFIELDS[@]}"; do
                v="CR_${f^^}"
                ALL["cpu_$p,$f"]="${ALL["cpu_$p,$f"]:-} ${!v}"
            done
            echo "  run $rep: cpu $p offered $CR_OFFERED pps, delivered $CR_RATE pps, process $CR_CPU ns/pkt, softirq $CR_SIRQ ns/pkt: $CR_VERDICT" >&2
            [ "$CR_VERDICT" = ok ] || FAILED+=("run $rep cpu $p: $CR_VERDICT")
        done
    fi
done
declare -A R
for k in "${KINDS[@]}"; do
    for p in "${PATHS[@]}"; do
        # shellcheck disable=SC2086
        R["$p,$k"]="$(median ${ALL["$p,$k"]})"
    done
done
if want flows; then
    for p in "${FPATHS[@]}"; do
        for f in "${FFIELDS[@]}"; do
            # shellcheck disable=SC2086
            R["flows_$p,$f"]="$(median_int ${ALL["flows_$p,$f"]})"
        done
    done
fi
if want cpu; then
    for p in "${CPATHS[@]}"; do
        for f in "${CFIELDS[@]}"; do
            if [ "$f" = cpu ] && [ -z "${PID_OF[$p]}" ]; then
                R["cpu_$p,$f"]=-
            else
                # shellcheck disable=SC2086
                R["cpu_$p,$f"]="$(median_int ${ALL["cpu_$p,$f"]})"
            fi
        done
    done
fi
# Each nat64d must have stayed up and translated.
for p in "$PID_OFF" "$PID_PLAIN" "$PID_STATEFUL"; do
    kill -USR1 "$p"
done
sleep 0.3

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }
frac() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else printf "-" }'; }
unit() { case "$1" in udp*) echo "pps" ;; *) echo "Gbit/s" ;; esac; }

# The report (tables, raw per-run figures, date, load and command line) also goes to BENCH_OUT;
# the README's Throughput, Speed, flow set-up and CPU tables are copied from such a file.
BENCH_OUT="${BENCH_OUT:-$(dirname "$0")/results/bench-$(date -u +%Y%m%dT%H%M%SZ).md}"
mkdir -p "$(dirname "$BENCH_OUT")"
tname() {
    case "$1" in
    udp64) echo "UDP 64 B" ;; udp1400) echo "UDP 1400 B" ;; tcp1) echo "TCP 1 stream" ;; *) echo "TCP 4 streams" ;;
    esac
}
{
echo
echo "# netns-scripts/bench.sh record"
echo
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); command: DURATION=$DURATION REPEAT=$REPEAT QUEUES=$QUEUES FLOWS=$FLOWS FLOW_HOSTS=$FLOW_HOSTS FLOW_SENDERS=$FLOW_SENDERS FLOW_RATE=$FLOW_RATE CPU_RATE=$CPU_RATE $0 ${PARTS[*]}; commit: $(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo
echo "nat64d bench: $(nproc) cores, load average before: $LOAD0, ${DURATION} s per test, median of $REPEAT, nat64d queues=$QUEUES"
if want throughput; then
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
    name="$(tname "$k")"
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
    o="${R["nat64d_off,$k"]}" s="${R["nat64d_stateful,$k"]}"
    echo "| $(tname "$k") | $(unit "$k") | $o | $s | $(ratio "$s" "$o") |"
done
fi
if want flows; then
    echo
    echo "New UDP flows, one packet each: $FLOWS flows from $FLOW_HOSTS source addresses ($FLOW_SENDERS sender process(es), sendmmsg on raw sockets,"
    echo "offered $([ "$FLOW_RATE" = 0 ] && echo "as fast as the sender goes" || echo "at $FLOW_RATE/s")); set-up rate timed on nat64d's UDP session count (control"
    echo "socket, fresh tables each burst) and on the router namespace's nf_conntrack_count (nftables masquerade,"
    echo "table flushed each burst); delivery = datagrams at the server's UDP layer / sent. \"sender\": the gateway set up"
    echo "flows as fast as they came, so the figure is a lower bound of its rate. On the kernel-NAT path forwarding,"
    echo "conntrack and NAT run in softirq on the sending CPU, mostly inside the sender's own sendmmsg calls, so"
    echo "there the sender's rate includes them; nat64d translates on its own threads."
    echo
    echo "| path | flows sent | offered flows/s | table entries created | set-up flows/s | first-packet delivery | bound by |"
    echo "|---|---|---|---|---|---|---|"
    for p in "${FPATHS[@]}"; do
        case "$p" in nat64d) name="nat64d NAT64 (sessions)" ;; *) name="kernel IPv4 NAT (conntrack)" ;; esac
        # The sender bounds the figure when the gateway took (nearly) every flow as fast as offered.
        bound="$(awk -v d="${R["flows_$p,delivered"]}" -v s="${R["flows_$p,sent"]}" -v r="${R["flows_$p,rate"]}" \
            -v o="${R["flows_$p,offered"]}" 'BEGIN { print (d >= 0.99 * s && r >= 0.9 * o) ? "sender" : "gateway" }')"
        echo "| $name | ${R["flows_$p,sent"]} | ${R["flows_$p,offered"]} | ${R["flows_$p,created"]} | ${R["flows_$p,rate"]} | $(frac "${R["flows_$p,delivered"]}" "${R["flows_$p,sent"]}") | $bound |"
    done
    echo "| nat64d / kernel NAT | | $(ratio "${R["flows_nat64d,offered"]}" "${R["flows_kernel,offered"]}") | | $(ratio "${R["flows_nat64d,rate"]}" "${R["flows_kernel,rate"]}") | $(ratio "$(frac "${R["flows_nat64d,delivered"]}" "${R["flows_nat64d,sent"]}")" "$(frac "${R["flows_kernel,delivered"]}" "${R["flows_kernel,sent"]}")") | |"
    echo
    echo "kernel NAT flows that conntrack attached to another CPU's entry made at the same moment"
    echo "(clash_resolve; they made no entry of their own): ${R["flows_kernel,clash"]}; nat64d flows the kernel"
    echo "dropped at its full TUN queues (never read by nat64d): ${R["flows_nat64d,tundrop"]}"
fi
if want cpu; then
    echo
    echo "CPU per datagram, 64-byte UDP (one flow) offered at $CPU_RATE pps for $DURATION s, counted over the middle $((DURATION > 2 ? DURATION - 2 : 1)) s:"
    echo "process = utime+stime of the translator's process (/proc/PID/stat, every thread) / datagrams delivered;"
    echo "softirq = softirq time of every CPU of the machine (/proc/stat; machine-wide: sender, receiver, veths and"
    echo "anything else running) / datagrams delivered. Kernel forwarding has no process."
    echo
    echo "| path | sent pps | delivered pps | delivery | process ns/pkt | process / nat64d stateless | softirq ns/pkt (machine-wide) |"
    echo "|---|---|---|---|---|---|---|"
    for p in "${CPATHS[@]}"; do
        case "$p" in
        kernel) name="kernel IPv6 forwarding" ;; nat64d_off) name="nat64d stateless (SIIT, offload)" ;;
        nat64d) name="nat64d stateless (SIIT, offload off)" ;; nat64d_stateful) name="nat64d stateful (NAT64, offload)" ;;
        *) name="TAYGA" ;;
        esac
        c="${R["cpu_$p,cpu"]}"
        r="-"
        [ "$c" != - ] && r="$(ratio "$c" "${R["cpu_nat64d_off,cpu"]}")"
        echo "| $name | ${R["cpu_$p,offered"]} | ${R["cpu_$p,rate"]} | $(frac "${R["cpu_$p,rate"]}" "${R["cpu_$p,offered"]}") | $c | $r | ${R["cpu_$p,sirq"]} |"
    done
    low="$(for p in "${CPATHS[@]}"; do echo "${R["cpu_$p,offered"]}"; done | sort -g | head -n 1)"
    if awk -v l="$low" -v r="$CPU_RATE" 'BEGIN { exit !(l < 0.95 * r) }'; then
        echo
        echo "The sender did not hold $CPU_RATE pps on this machine: the sent column is what it achieved (lowest $low pps)."
    fi
fi
echo
echo "nat64d counters: offload: $(grep 'counters:' "$TMP/off.log" | tail -n 1 | sed 's/.*counters: //')"
echo "                 plain:   $(grep 'counters:' "$TMP/plain.log" | tail -n 1 | sed 's/.*counters: //')"
echo "                 stateful: $(grep 'counters:' "$TMP/stateful.log" | tail -n 1 | sed 's/.*counters: //')"
echo
echo "Raw figures (every run, in run order; pps or Gbit/s; flows: sent, offered/s, created, set-up/s,"
echo "delivered, clashes, drops at nat64d's full TUN queues; cpu: sent pps, delivered pps, process ns/pkt, softirq ns/pkt):"
echo
echo '```'
for k in "${KINDS[@]}"; do
    for p in "${PATHS[@]}"; do
        echo "$k $p${ALL["$p,$k"]}"
    done
done
if want flows; then
    for p in "${FPATHS[@]}"; do
        for f in "${FFIELDS[@]}"; do
            echo "flows $p $f${ALL["flows_$p,$f"]}"
        done
    done
fi
if want cpu; then
    for p in "${CPATHS[@]}"; do
        for f in "${CFIELDS[@]}"; do
            echo "cpu $p $f${ALL["cpu_$p,$f"]}"
        done
    done
fi
echo '```'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "${#FAILED[@]}" -gt 0 ]; then
    echo
    echo "VERDICT: FAILED (these figures are not valid):"
    printf -- '- %s\n' "${FAILED[@]}"
fi
} | tee "$BENCH_OUT"
echo "record written to $BENCH_OUT"
if [ "${#FAILED[@]}" -gt 0 ]; then
    echo "bench.sh: FAILED: ${FAILED[*]}" >&2
    exit 1
fi
