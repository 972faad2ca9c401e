#!/usr/bin/env bash
# hostile.sh [--full]: the hostile-input probes, in network namespaces of their own
# (${NS_PREFIX}h*: the run.sh topology under NS_PREFIX + "h", plus a second client ${NS_PREFIX}hcl2).
#
# Short form (test-all.sh runs it; under two minutes):
#   malformed   packets of every kind hostile-gen.py knows (about 100: bad checksums and lengths,
#               truncated headers, odd ICMP types and quoted packets, fragments that overlap or
#               never complete, extension-header chains, unknown protocols, non-global
#               destinations...) in both directions, in mode siit and mode nat64, while a
#               legitimate ping and a 10 MB transfer run (0 loss expected)
#   sessions    one host rotating source addresses inside its /64 floods the session table; a
#               second host must still get its new flows (needs the per-prefix session limit)
#   fragments   one host sends first fragments that never complete, from rotating sources; a second
#               host's 3000-byte UDP datagrams and ping -s 3000 must still be answered (needs per-host
#               fragment shares)
#   reload      50 SIGHUPs in 10 s while a ping and a transfer run
#   kill -9     the daemon is killed and restarted: it comes back, and a clean stop leaves nothing
#   bad configs every tests/bad-configs/*.toml given to `nat64d run -c FILE`: exit 1 with
#               FILE:LINE, never a panic (101) or an abort (134); no file at all is a failure
# Full form (--full, or HOSTILE=full in test-all.sh) adds:
#   soak        SOAK_SECONDS (default 600) of mixed flows (ping, UDP, HTTP, DNS64 queries) with a
#               reload a minute: RSS start/end, sessions back to zero after expiry
#
# Each probe is one case (PASS/FAIL) followed by a report line: offered rate, legitimate traffic
# success, nat64d RSS start/peak/end, and the counter deltas that account for the drops. The last
# line is "N passed, N failed"; the number of cases run is compared with the number expected.
# Env: NS_PREFIX (default n64-), NAT64D, RATE (malformed packets per second and direction, default
# 2000), SOAK_SECONDS, KEEP_LOGS=1.
set -uo pipefail
FULL=0
case "${1:-}" in
--full) FULL=1 ;;
"") ;;
*)
    echo "usage: $0 [--full]" >&2
    exit 2
    ;;
esac
NS_PREFIX="${NS_PREFIX:-n64-}h"
export NS_PREFIX
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_root
ensure_packages dnsmasq:dnsmasq-base dig:dnsutils
names_free "${NS_ALL[@]}" || { echo "0 passed, 1 failed"; exit 1; }
HERE="$REPO/netns-scripts"
PY="$(command -v python3)"
RATE="${RATE:-2000}"
SOAK_SECONDS="${SOAK_SECONDS:-600}"
TMP="$(new_tmp hostile)"
chmod 755 "$TMP"
BG_PIDS=()
PASSED=0
FAILED=0
RAN=0
REPORTS=()
TOPO_UP=0
T0=$SECONDS

cleanup() {
    stop_nat64d >/dev/null 2>&1 || true
    local p
    for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    [ "$TOPO_UP" = 1 ] && "$HERE/topology.sh" down >/dev/null 2>&1
    if [ "${KEEP_LOGS:-0}" = 1 ]; then echo "logs kept in $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bg() {
    "$@" >>"$TMP/bg.log" 2>&1 &
    BG_PIDS+=($!)
}
# check NAME COMMAND...: one probe. Its report (REPORT, set by the probe) follows the verdict.
check() {
    local name="$1" rc=0
    shift
    REPORT=""
    RAN=$((RAN + 1))
    "$@" >"$TMP/case.out" 2>&1 || rc=$?
    if [ "$rc" -eq 0 ]; then
        echo "PASS  $name"
        PASSED=$((PASSED + 1))
    else
        echo "FAIL  $name -- $(tail -n 3 "$TMP/case.out" | tr '\n' ' ')"
        FAILED=$((FAILED + 1))
        sed 's/^/      | /' "$TMP/case.out" | tail -n 25
        if [ -f "$TMP/nat64d.log" ]; then
            echo "      | --- its nat64d log (tail) ---"
            tail -n 15 "$TMP/nat64d.log" | sed 's/^/      | /'
        fi
    fi
    if [ -n "$REPORT" ]; then
        echo "$REPORT" | sed 's/^/      /'
        REPORTS+=("$name: $(echo "$REPORT" | tr '\n' ';' | sed 's/;$//')")
    fi
    return "$rc"
}

# --- topology: run.sh's three namespaces plus a second client on its own link ------------------
TOPO_UP=1
"$HERE/topology.sh" up || { echo "0 passed, 1 failed"; exit 1; }
ip netns add "$NS_CLI2"
ip -n "$NS_CLI2" link set lo up
ip -n "$NS_GW" link add gc2 type veth peer name c2 netns "$NS_CLI2"
in_cli2 sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
in_gw sysctl -qw net.ipv6.conf.gc2.accept_dad=0
ip -n "$NS_GW" addr add 2001:db8:3::1/64 dev gc2
ip -n "$NS_GW" link set gc2 up
ip -n "$NS_CLI2" addr add "$CLI2_6/64" dev c2 nodad
ip -n "$NS_CLI2" link set c2 up
ip -n "$NS_CLI2" -6 route add default via 2001:db8:3::1 dev c2
pin_neigh "$NS_GW" gc2 "$CLI2_6" "$NS_CLI2" c2
pin_neigh "$NS_CLI2" c2 2001:db8:3::1 "$NS_GW" gc2
# The floods' rotating sources: a /64 routed to the first client (a subscriber's delegated prefix),
# so that what nat64d sends back to them (ICMPv6 errors for refused flows) needs one neighbour entry,
# not one per address: on the client link itself, one run took the host-wide neighbour table
# (shared by every namespace, 1024 entries) to 981, and two runs at once overflowed it.
FLOOD6=2001:db8:4::/64
ip -n "$NS_GW" -6 route add "$FLOOD6" via "$CLI6" dev gc
GC_MAC="$(ip -n "$NS_GW" -o link show gc | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')"
GS_MAC="$(ip -n "$NS_GW" -o link show gs | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')"

# --- servers (bounded lifetimes) --------------------------------------------------------------
LIFE=$((FULL ? SOAK_SECONDS + 400 : 400))
head -c 10000000 /dev/urandom >"$TMP/blob"
SUM="$(sha256sum <"$TMP/blob" | cut -d' ' -f1)"
mkdir -p "$TMP/www"
cp "$TMP/blob" "$TMP/www/blob"
echo small >"$TMP/www/small"
bg ip netns exec "$NS_SRV" timeout "$LIFE" "$PY" -m http.server --bind "$SRV4" --directory "$TMP/www" 8000
bg ip netns exec "$NS_SRV" timeout "$LIFE" "$PY" "$HERE/udp-echo.py" "$SRV4" 9200 --lifetime "$LIFE"
# The flood's target port: a sink that reads and answers nothing (no ICMP either).
bg ip netns exec "$NS_SRV" timeout "$LIFE" socat -u UDP4-RECV:9,bind="$SRV4" OPEN:/dev/null
bg ip netns exec "$NS_SRV" dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces \
    --listen-address="$SRV4" --except-interface=lo --local=/example/ --local-ttl=5 \
    --host-record="web.example,$SRV4" --pid-file="$TMP/dnsmasq.pid" --log-facility="$TMP/dnsmasq.log"
for _ in $(seq 1 100); do
    in_srv ss -ltn 2>/dev/null | grep -q ":8000 " && in_srv ss -lun 2>/dev/null | grep -q ":9200 " &&
        in_srv ss -lun 2>/dev/null | grep -q "$SRV4:53 " && break
    sleep 0.1
done

CTL="$TMP/control.sock"
export CTL_SOCK="$CTL" MAPLOG="$TMP/mappings.jsonl" MAPLOG_ON=false
sessions_total() { # prints the number of sessions (tcp+udp+icmp) the control socket reports
    in_gw "$NAT64D" sessions --socket "$CTL" 2>/dev/null |
        sed -n 's/.*sessions tcp=\([0-9]*\) udp=\([0-9]*\) icmp=\([0-9]*\).*/\1 \2 \3/p' |
        awk '{ print $1 + $2 + $3 }'
}

# start MODE [EXTRA_TOML]: nat64d in MODE (siit | nat64 | nat64+dns64) with the test configs.
start() {
    stop_nat64d >/dev/null 2>&1 || true
    case "$1" in
    siit) write_config "$TMP/nat64d.toml" ;;
    nat64*) write_nat64_config "$TMP/nat64d.toml" ;;
    esac
    if [ "$1" = nat64+dns64 ]; then
        cat >>"$TMP/nat64d.toml" <<CFG
[dns64]
listen = ["[$GW6]:53"]
upstreams = ["$SRV4:53"]
prefixes = ["${POOL6}/96"]
wkp_strict = false
allow = ["2001:db8::/32"]
CFG
    fi
    if [ -n "${2:-}" ]; then
        # Extra keys for the [nat64] table: inserted right after its header.
        awk -v x="$2" '{ print } $0 == "[nat64]" { print x }' "$TMP/nat64d.toml" >"$TMP/n.toml" &&
            mv "$TMP/n.toml" "$TMP/nat64d.toml"
    fi
    start_nat64d "$TMP/nat64d.toml" "$TMP/nat64d.log"
}

# RSS sampling of nat64d (kB): rss_begin, then rss_end prints "start/peak/end kB".
rss_now() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$NAT64D_PID/status" 2>/dev/null; }
rss_begin() {
    RSS_START="$(rss_now)"
    (
        while kill -0 "$NAT64D_PID" 2>/dev/null; do
            rss_now
            sleep 0.2
        done
    ) >"$TMP/rss" 2>/dev/null &
    RSS_PID=$!
}
rss_end() {
    local end peak
    end="$(rss_now)"
    kill "$RSS_PID" 2>/dev/null
    wait "$RSS_PID" 2>/dev/null
    peak="$( (cat "$TMP/rss"; echo "${RSS_START:-0}"; echo "${end:-0}") | sort -n | tail -n 1)"
    RSS_LINE="RSS ${RSS_START:-?}/${peak:-?}/${end:-?} kB (start/peak/end)"
}

# counters: SIGUSR1, then the new "counters:" line of the log (waits up to 5 s).
counters() {
    local before i
    before="$(grep -c "counters:" "$TMP/nat64d.log" 2>/dev/null || true)"
    kill -USR1 "$NAT64D_PID" 2>/dev/null || return 1
    for i in $(seq 1 50); do
        if [ "$(grep -c "counters:" "$TMP/nat64d.log")" -gt "${before:-0}" ]; then
            grep "counters:" "$TMP/nat64d.log" | tail -n 1 | sed 's/.*counters: //'
            return 0
        fi
        sleep 0.1
    done
    return 1
}
# delta BEFORE AFTER: the counters that moved, "key+N" each.
delta() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        n = split(a, x, " "); for (i = 1; i <= n; i++) if (split(x[i], kv, "=") == 2) A[kv[1]] = kv[2]
        n = split(b, y, " "); out = ""
        for (i = 1; i <= n; i++) if (split(y[i], kv, "=") == 2 && kv[2] - A[kv[1]] != 0) out = out " " kv[1] "+" (kv[2] - A[kv[1]])
        print substr(out, 2)
    }'
}
# no_rx_errors BEFORE AFTER: fails when rx_errors rose. It rose by about 160 in the session flood
# and the reload storm: "too many GSO segments", 64 KiB TCP super-packets of 130 segments of
# 552 bytes that the offload worker's 128 segment buffers cannot take, lost whole. nat64d now sets
# the device's gso_max_segs to 128 (issue 9 leftover).
no_rx_errors() {
    local a b
    a="$(counter_of "$1" rx_errors)" b="$(counter_of "$2" rx_errors)"
    [ "${b:-0}" -eq "${a:-0}" ] || { echo "rx_errors rose by $((${b:-0} - ${a:-0})) (failed TUN reads)"; return 1; }
}
counter_of() { # LINE KEY
    echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# Legitimate traffic for the duration of a probe: a ping (every 0.05 s) from the first client and
# a 10 MB download; legit_end checks them and sets LEGIT_LINE.
legit_begin() { # SECONDS
    local n=$(($1 * 20))
    in_cli ping -6 -c "$n" -i 0.05 -W 2 "$SRV6" >"$TMP/legit-ping" 2>&1 &
    LEGIT_PING=$!
    in_cli timeout 120 curl -sS -g --max-time 110 -o "$TMP/legit-got" "http://[$SRV6]:8000/blob" >"$TMP/legit-curl" 2>&1 &
    LEGIT_CURL=$!
}
legit_end() {
    local ok=0 loss got
    wait "$LEGIT_PING" || ok=1
    wait "$LEGIT_CURL" || ok=1
    loss="$(grep -o '[0-9.]*% packet loss' "$TMP/legit-ping" || echo "no ping summary")"
    got="$(sha256sum <"$TMP/legit-got" 2>/dev/null | cut -d' ' -f1)"
    if [ "$got" = "$SUM" ]; then got="10 MB transfer intact"; else got="10 MB transfer FAILED ($(tail -n 1 "$TMP/legit-curl"))"; ok=1; fi
    LEGIT_LINE="legitimate: ping $(grep -o '[0-9]* packets transmitted, [0-9]* received' "$TMP/legit-ping") ($loss), $got"
    rm -f "$TMP/legit-got"
    echo "$LEGIT_LINE"
    [ "$ok" = 0 ] && [ "$loss" = "0% packet loss" ]
}

gen() { # NS IFACE MAC ARGS...: hostile-gen.py in a namespace; prints its summary line
    local ns="$1" ifc="$2" mac="$3"
    shift 3
    ip netns exec "$ns" timeout 60 "$PY" "$HERE/hostile-gen.py" --iface "$ifc" --dst-mac "$mac" "$@"
}

alive() { kill -0 "$NAT64D_PID" 2>/dev/null || { echo "nat64d died"; return 1; }; }

# --- the probes ---------------------------------------------------------------------------------
malformed() { # MODE
    local secs=6 c0 c1 d out6 out4 rc=0 dst4 port4 ie
    start "$1" || return 1
    if [ "$1" = siit ]; then dst4="$CLI4" port4=9; else dst4="$POOL4" port4=8080; fi
    rss_begin
    c0="$(counters)"
    legit_begin $((secs + 2))
    sleep 0.5
    gen "$NS_CLI" c0 "$GC_MAC" --mode malformed6 --src "$CLI6" --dst "$SRV6" --port 9 \
        --rate "$RATE" --count $((RATE * secs)) --seconds "$secs" >"$TMP/gen6" 2>&1 &
    local g6=$!
    gen "$NS_SRV" s0 "$GS_MAC" --mode malformed4 --src "$SRV4" --dst "$dst4" --port "$port4" \
        --rate "$RATE" --count $((RATE * secs)) --seconds "$secs" >"$TMP/gen4" 2>&1 &
    local g4=$!
    wait "$g6" || rc=1
    wait "$g4" || rc=1
    legit_end || rc=1
    alive || rc=1
    c1="$(counters)"
    rss_end
    d="$(delta "$c0" "$c1")"
    ie="$(counter_of "$c1" internal_errors)"
    [ "${ie:-0}" = 0 ] || { echo "internal_errors=$ie (a panic was contained)"; rc=1; }
    out6="$(tail -n 1 "$TMP/gen6")" out4="$(tail -n 1 "$TMP/gen4")"
    REPORT="offered: IPv6 side $out6; IPv4 side $out4
$LEGIT_LINE
$RSS_LINE
counters: $d"
    cat "$TMP/gen6" "$TMP/gen4"
    return "$rc"
}

session_flood() {
    local rc=0 c0 c1 out got
    MAX_SESSIONS=2000 start nat64 "max_sessions_per_host = 200" || return 1
    rss_begin
    c0="$(counters)"
    legit_begin 6
    sleep 0.5
    # One host, a new source address inside its /64 (FLOOD6) for every packet: 5000 new flows,
    # more than the whole table (2000). A limit per /128 does not stop it; one per /64 does.
    out="$(gen "$NS_CLI" c0 "$GC_MAC" --mode sessions6 --src "$FLOOD6" --dst "$SRV6" --port 9 \
        --rate 2500 --count 5000 --seconds 4)" || rc=1
    # The second host (another /64) opens 12 new UDP flows: each must be answered.
    got="$(in_cli2 timeout 20 "$PY" -c "
import socket, select, time
socks = []
for i in range(12):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.sendto(b'flow %d' % i, ('$SRV6', 9200))
    socks.append(s)
ok, end = set(), time.monotonic() + 3
while len(ok) < 12 and time.monotonic() < end:
    r, _, _ = select.select([s for s in socks if s not in ok], [], [], 0.2)
    for s in r:
        s.recv(100); ok.add(s)
print(len(ok))
")"
    legit_end || rc=1
    alive || rc=1
    c1="$(counters)"
    rss_end
    echo "second host: ${got:-0}/12 new flows answered"
    [ "${got:-0}" = 12 ] || rc=1
    no_rx_errors "$c0" "$c1" || rc=1
    REPORT="offered: $out (max_sessions 2000, max_sessions_per_host 200)
second host (2001:db8:3::2): ${got:-0}/12 new flows answered; $LEGIT_LINE
sessions now: $(sessions_total)
$RSS_LINE
counters: $(delta "$c0" "$c1")"
    return "$rc"
}

fragment_flood() {
    local rc=0 c0 c1 out ok
    start nat64 || return 1
    rss_begin
    c0="$(counters)"
    # The flood's destination is blackholed by the gateway after translation, so what is measured
    # is nat64d's fragment handling, not the server kernel's reassembly memory.
    in_gw ip route replace blackhole 203.0.113.99/32
    gen "$NS_CLI" c0 "$GC_MAC" --mode frags6 --src "$FLOOD6" --dst "${POOL6}203.0.113.99" --port 9 \
        --rate 3600 --count 30000 --seconds 8 >"$TMP/genf" 2>&1 &
    local g=$!
    sleep 2
    # The second host's fragmented traffic: 3000-byte UDP datagrams (three fragments each way,
    # the fragment store) and a 3000-byte ping (reassembled: the ICMP reassembly slots).
    in_cli2 timeout 40 "$PY" "$HERE/udp-check.py" "$SRV6" 9200 --size 3000 --count 6 --timeout 0.5 >"$TMP/fragok" 2>&1 || rc=1
    in_cli2 ping -6 -c 5 -i 0.2 -W 1 -s 3000 "$SRV6" >"$TMP/fragping" 2>&1 || rc=1
    wait "$g" || rc=1
    alive || rc=1
    c1="$(counters)"
    rss_end
    out="$(tail -n 1 "$TMP/genf")"
    ok="$(cat "$TMP/fragok"); ping -s 3000: $(grep -o '[0-9]* received, [0-9.]*% packet loss' "$TMP/fragping")"
    echo "$ok"
    REPORT="offered: first fragments that never complete (UDP, ICMPv6 echo), rotating sources in $FLOOD6: $out
second host: $ok
$RSS_LINE
counters: $(delta "$c0" "$c1")"
    return "$rc"
}

reload_storm() {
    local rc=0 c0 c1 n i t0
    start nat64 || return 1
    rss_begin
    c0="$(counters)"
    n="$(grep -c "SIGHUP: reloading" "$TMP/nat64d.log")"
    legit_begin 12
    sleep 0.5
    # Paced by the clock: signal i at t0 + i * 0.2 s, so 50 take 10 s however slow the machine.
    t0=$EPOCHREALTIME
    for i in $(seq 1 50); do
        kill -HUP "$NAT64D_PID" || break
        sleep "$(awk -v t="$t0" -v i="$i" -v n="$EPOCHREALTIME" 'BEGIN { d = t + i * 0.2 - n; printf "%.3f", (d > 0 ? d : 0) }')"
    done
    t0="$(awk -v t="$t0" -v n="$EPOCHREALTIME" 'BEGIN { printf "%.1f", n - t }')"
    legit_end || rc=1
    alive || rc=1
    # The last reloads finish (bounded wait), then count them.
    for _ in $(seq 1 50); do
        [ "$(grep -c "SIGHUP: reloading" "$TMP/nat64d.log")" -ge $((n + 50)) ] && break
        sleep 0.1
    done
    n=$(($(grep -c "SIGHUP: reloading" "$TMP/nat64d.log") - n))
    c1="$(counters)"
    rss_end
    echo "$n reloads logged"
    [ "$n" -ge 50 ] || rc=1
    no_rx_errors "$c0" "$c1" || rc=1
    REPORT="offered: 50 SIGHUPs in $t0 s; $n reloads logged
$LEGIT_LINE
$RSS_LINE
counters: $(delta "$c0" "$c1")"
    return "$rc"
}

kill9() {
    local rc=0 t0 why=""
    start nat64 || return 1
    in_cli ping -6 -c 2 -i 0.2 -W 2 "$SRV6" >/dev/null || why="no traffic before the kill"
    kill -KILL "$NAT64D_PID"
    wait "$NAT64D_PID" 2>/dev/null
    NAT64D_PID=
    # What a crash leaves: the TUN (not persistent) and its routes vanish with the process.
    in_gw ip link show "$TUN_NAME" >/dev/null 2>&1 && why="${why:+$why; }TUN left after kill -9"
    local stale="no"
    [ -S "$CTL" ] && stale="yes"
    t0=$(date +%s%N)
    start_nat64d "$TMP/nat64d.toml" "$TMP/nat64d.log" || why="${why:+$why; }restart failed"
    local back=$((($(date +%s%N) - t0) / 1000000))
    if [ -z "$why" ]; then
        in_cli ping -6 -c 3 -i 0.2 -W 2 "$SRV6" >/dev/null || why="no traffic after the restart"
        [ -n "$(sessions_total)" ] || why="${why:+$why; }control socket does not answer after the restart"
    fi
    stop_nat64d || why="${why:+$why; }stop: exit status $?"
    in_gw ip link show "$TUN_NAME" >/dev/null 2>&1 && why="${why:+$why; }TUN left after stop"
    [ -e "$CTL" ] && why="${why:+$why; }control socket left after stop"
    in_gw ip -6 route | grep -q "64:ff9b::/96" && why="${why:+$why; }pool6 route left"
    in_gw ip -4 route | grep -q "^$POOL4 " && why="${why:+$why; }pool4 route left"
    REPORT="after kill -9: stale control socket left: $stale; back (ready) in $back ms; after SIGTERM: ${why:-nothing left}"
    [ -z "$why" ] || { echo "$why"; rc=1; }
    return "$rc"
}

bad_configs() {
    local f rc out n=0 bad=0 worst=""
    for f in "$REPO"/tests/bad-configs/*.toml; do
        [ -f "$f" ] || continue
        n=$((n + 1))
        rc=0
        out="$(in_gw timeout 10 "$NAT64D" run -c "$f" 2>&1)" || rc=$?
        if [ "$rc" -ne 1 ]; then
            bad=$((bad + 1))
            echo "$(basename "$f"): exit $rc$([ "$rc" = 124 ] && echo " (it started: the file was accepted)"): $(echo "$out" | tail -n 1)"
        elif ! echo "$out" | grep -qE "$(basename "$f"):[0-9]+:"; then
            bad=$((bad + 1))
            echo "$(basename "$f"): no file:line in: $(echo "$out" | tail -n 1)"
        fi
        [ "$rc" = 101 ] || [ "$rc" = 134 ] && worst="a crash (exit $rc)"
        in_gw ip link show "$TUN_NAME" >/dev/null 2>&1 && { echo "$(basename "$f"): a TUN was left"; in_gw ip link del "$TUN_NAME"; bad=$((bad + 1)); }
    done
    REPORT="$n files in tests/bad-configs: $((n - bad)) refused with exit 1 and file:line, $bad not${worst:+; $worst}"
    [ "$n" -gt 0 ] || { echo "no tests/bad-configs/*.toml: nothing was checked"; return 1; }
    [ "$bad" -eq 0 ]
}

soak() {
    local rc=0 end c0 c1 i=0 curls=0 curl_ok=0 digs=0 dig_ok=0 udps=0 udp_ok=0 reloads=0 left
    start nat64+dns64 || return 1
    rss_begin
    c0="$(counters)"
    in_cli ping -6 -c $((SOAK_SECONDS * 5)) -i 0.2 -W 2 "$SRV6" >"$TMP/soak-ping" 2>&1 &
    local pp=$!
    end=$((SECONDS + SOAK_SECONDS))
    local next_reload=$((SECONDS + 60))
    while [ "$SECONDS" -lt "$end" ]; do
        i=$((i + 1))
        if [ $((i % 2)) = 0 ]; then
            udps=$((udps + 1))
            in_cli2 timeout 10 "$PY" "$HERE/udp-check.py" "$SRV6" 9200 --size 1200 --count 3 >/dev/null 2>&1 && udp_ok=$((udp_ok + 1))
        fi
        digs=$((digs + 1))
        in_cli timeout 5 dig +time=2 +tries=1 +short @"$GW6" AAAA web.example 2>/dev/null | grep -q "^$SRV6_HEX$" && dig_ok=$((dig_ok + 1))
        if [ $((i % 5)) = 0 ]; then
            curls=$((curls + 1))
            [ "$(in_cli2 timeout 30 curl -sS -g --max-time 25 "http://[$SRV6]:8000/small" 2>/dev/null)" = small ] && curl_ok=$((curl_ok + 1))
        fi
        if [ "$SECONDS" -ge "$next_reload" ]; then
            kill -HUP "$NAT64D_PID" && reloads=$((reloads + 1))
            next_reload=$((next_reload + 60))
        fi
        sleep 1
    done
    wait "$pp" || rc=1
    grep -q " 0% packet loss" "$TMP/soak-ping" || rc=1
    # Expiry: UDP and ICMP 3 s, TCP transitory 2 s, established 30 s (short lab timeouts).
    for _ in $(seq 1 90); do
        left="$(sessions_total)"
        [ "${left:-x}" = 0 ] && break
        sleep 0.5
    done
    alive || rc=1
    c1="$(counters)"
    rss_end
    [ "$udp_ok" = "$udps" ] && [ "$dig_ok" = "$digs" ] && [ "$curl_ok" = "$curls" ] || rc=1
    [ "${left:-x}" = 0 ] || { echo "sessions after expiry: ${left:-?}"; rc=1; }
    [ "$reloads" -ge $((SOAK_SECONDS / 60 - 1)) ] || { echo "only $reloads reloads"; rc=1; }
    grep -q "reload refused" "$TMP/nat64d.log" && { echo "a reload was refused"; rc=1; }
    REPORT="offered: ${SOAK_SECONDS} s of ping (5/s), UDP echo $udp_ok/$udps, HTTP $curl_ok/$curls, DNS64 AAAA $dig_ok/$digs, $reloads reloads
legitimate: ping $(grep -o '[0-9]* packets transmitted, [0-9]* received' "$TMP/soak-ping") ($(grep -o '[0-9.]*% packet loss' "$TMP/soak-ping"))
sessions after expiry: ${left:-?}
$RSS_LINE
counters: $(delta "$c0" "$c1")"
    return "$rc"
}

# The short probes (test-all.sh) and the long one (--full). Each `check` line is one case.
short_probes() {
    check "malformed: ~100 kinds both directions, mode siit, during ping + transfer (0 loss)" malformed siit
    check "malformed: ~100 kinds both directions, mode nat64, during ping + transfer (0 loss)" malformed nat64
    check "session flood: a host rotating addresses in its /64; a second host still gets 12/12 new flows" session_flood
    check "fragment flood: never-completed fragments from rotating sources; a second host's 3000-byte UDP and ping -s 3000 all answered" fragment_flood
    check "reload storm: 50 SIGHUPs in 10 s during ping + transfer (0 loss)" reload_storm
    check "kill -9 and restart: back, and a clean stop leaves no TUN, route or socket" kill9
    check "bad configs: nat64d run -c FILE exits 1 with file:line for each tests/bad-configs/*.toml" bad_configs
}
full_probes() {
    check "soak: mixed flows, DNS64, a reload a minute; sessions back to zero after expiry" soak
}

short_probes
EXPECTED=$(count_cases "$0" short_probes)
if [ "$FULL" = 1 ]; then
    full_probes
    EXPECTED=$((EXPECTED + $(count_cases "$0" full_probes)))
fi
stop_nat64d >/dev/null 2>&1 || true
if [ "$RAN" -ne "$EXPECTED" ]; then
    echo "FAIL  hostile: $RAN of $EXPECTED probes ran"
    FAILED=$((FAILED + 1))
fi
echo "== hostile probes ($([ "$FULL" = 1 ] && echo full || echo short) form, $((SECONDS - T0)) s):"
printf '   %s\n' "${REPORTS[@]}"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
