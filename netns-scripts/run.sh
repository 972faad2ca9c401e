#!/usr/bin/env bash
# run.sh: black-box cases with real tools through nat64d in the three-namespace topology.
# Each case prints PASS/FAIL; the last line is "N passed, N failed"; exit status 1 on any failure.
# Everything it starts is stopped and the namespaces it made are deleted on any exit.
#
# Cases are counted per block (siit: this file; nat64: nat64-cases.sh; dns64: dns64-netns.sh),
# and a block that runs fewer (or more) cases than it holds fails the run: a case that silently
# vanishes is a failure. The expected count of a block is read from its source (count_cases in
# lib.sh): one case per line that starts with `check ` or `pass ` (the else-branch `fail` of a
# pass is the same case), unless the script declares `EXPECTED_CASES=N`. The cases of
# mode_cases() run once per mode in MODES.
#
# Env: NS_PREFIX (default n64-), NAT64D (default target/release/nat64d, built when missing),
#      KEEP_LOGS=1 keeps the temporary directory, MODES (see below), NAT64_CASES=0 skips the
#      stateful NAT64 cases (nat64-cases.sh), DNS64_CASES=0 the DNS64 ones (a skipped block is
#      reported as skipped, not counted).
set -uo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_root
names_free "${NS_ALL[@]}" || { echo "0 passed, 1 failed"; exit 1; }

TMP="$(new_tmp netns)"
BG_PIDS=()
PASSED=0
FAILED=0
FAILED_NAMES=()
BLOCK=siit
declare -A BLOCK_RAN=()
CASE_NO=0
TOPO_UP=0

cleanup() {
    stop_nat64d >/dev/null 2>&1 || true
    local p
    for p in "${BG_PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${BG_PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    if [ "$TOPO_UP" = 1 ]; then
        "$REPO/netns-scripts/topology.sh" down >/dev/null 2>&1 || true
    fi
    if [ "${KEEP_LOGS:-0}" = 1 ]; then
        echo "logs kept in $TMP"
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() {
    echo "PASS  $1"
    PASSED=$((PASSED + 1))
    BLOCK_RAN[$BLOCK]=$((${BLOCK_RAN[$BLOCK]:-0} + 1))
}
fail() {
    echo "FAIL  $1${2:+ -- $2}"
    FAILED=$((FAILED + 1))
    FAILED_NAMES+=("$1")
    BLOCK_RAN[$BLOCK]=$((${BLOCK_RAN[$BLOCK]:-0} + 1))
}
# The nat64d log a case's daemon writes to; a case that starts its own instance elsewhere sets
# CASE_LOG to that file (reset after each case).
NAT64D_LOG="$TMP/nat64d.log"
CASE_LOG=
# check NAME COMMAND...: PASS if the command succeeds; returns its status.
# The command runs in this shell (not a subshell), so it can stop nat64d and wait for it.
# On failure the case's own output and the part of its nat64d log written during the case are
# kept in $TMP/failed/ and printed at the end.
check() {
    local name="$1" rc=0 at=0 log
    shift
    CASE_NO=$((CASE_NO + 1))
    CASE_LOG=
    at="$(stat -c %s "$NAT64D_LOG" 2>/dev/null || echo 0)"
    "$@" >"$TMP/case.out" 2>&1 || rc=$?
    # (Not a line starting with `pass`: count_cases would take this helper for a case.)
    [ "$rc" -ne 0 ] || { pass "$name"; return 0; }
    if [ "$rc" -ne 0 ]; then
        fail "$name" "$(tail -n 3 "$TMP/case.out" | tr '\n' ' ')"
        mkdir -p "$TMP/failed"
        log="${CASE_LOG:-$NAT64D_LOG}"
        {
            echo "=== FAIL #$CASE_NO: $name"
            echo "--- case output ---"
            tail -n 80 "$TMP/case.out"
            echo "--- its nat64d log ($(basename "$log")) ---"
            if [ -z "$CASE_LOG" ] && [ "$(stat -c %s "$log" 2>/dev/null || echo 0)" -ge "$at" ]; then
                tail -c "+$((at + 1))" "$log" 2>/dev/null | tail -n 40
            else
                # Its own file, or the shared one restarted (truncated) during the case.
                tail -n 40 "$log" 2>/dev/null
            fi
        } >"$TMP/failed/$(printf %03d "$CASE_NO").log"
    fi
    CASE_LOG=
    return "$rc"
}
# fail_run NAME [WHY]: a failure of the run itself (not one of a block's cases).
fail_run() {
    local b="$BLOCK"
    BLOCK=_run
    fail "$@"
    BLOCK="$b"
}
# block_end NAME EXPECTED: one more failure when the block ran another number of cases.
block_end() {
    local ran="${BLOCK_RAN[$1]:-0}"
    if [ "$ran" -ne "$2" ]; then
        fail_run "$1 block: $ran of $2 cases ran (a case vanished, or one was added outside the counting rule in netns-scripts/README.md)"
    else
        echo "      ($1 block: $ran of $2 cases ran)"
    fi
}
# Starts a background command (simple command so that $! is its PID).
bg() {
    "$@" >>"$TMP/bg.log" 2>&1 &
    BG_PIDS+=($!)
}
# Asks nat64d for its counters (SIGUSR1) and prints the new log line (waits up to 5 s for it).
counters() {
    local before i
    before="$(grep -c "counters:" "$TMP/nat64d.log" 2>/dev/null || true)"
    kill -USR1 "$NAT64D_PID" 2>/dev/null || return 1
    for i in $(seq 1 50); do
        if [ "$(grep -c "counters:" "$TMP/nat64d.log")" -gt "${before:-0}" ]; then
            grep "counters:" "$TMP/nat64d.log" | tail -n 1
            return 0
        fi
        sleep 0.1
    done
    return 1
}

if [ ! -x "$NAT64D" ]; then
    need_rust
    echo "building nat64d (cargo build --release; a few minutes the first time)"
    (cd "$REPO" && cargo build --release --quiet) || {
        echo "build failed"
        echo "0 passed, 1 failed"
        exit 1
    }
fi

TOPO_UP=1
"$REPO/netns-scripts/topology.sh" up || { echo "0 passed, 1 failed"; exit 1; }

PY="$(command -v python3)"
HERE="$REPO/netns-scripts"

# --- servers --------------------------------------------------------------------------------
head -c 10000000 /dev/urandom >"$TMP/blob"
SUM="$(sha256sum <"$TMP/blob" | cut -d' ' -f1)"
mkdir -p "$TMP/www4" "$TMP/www6"
cp "$TMP/blob" "$TMP/www4/blob"
cp "$TMP/blob" "$TMP/www6/blob"
bg ip netns exec "$NS_SRV" timeout 300 "$PY" -m http.server --bind "$SRV4" --directory "$TMP/www4" 8000
bg ip netns exec "$NS_CLI" timeout 300 "$PY" -m http.server --bind "$CLI6" --directory "$TMP/www6" 8001
bg ip netns exec "$NS_SRV" timeout 300 "$PY" "$HERE/udp-echo.py" "$SRV4" 9000 --lifetime 300
bg ip netns exec "$NS_CLI" timeout 300 "$PY" "$HERE/udp-echo.py" "$CLI6" 9000 --lifetime 300
bg ip netns exec "$NS_SRV" timeout 300 socat UDP4-RECVFROM:9001,fork SYSTEM:cat
bg ip netns exec "$NS_CLI" timeout 300 socat UDP6-RECVFROM:9001,fork SYSTEM:cat
# Wait (bounded, 10 s) until every server listens.
listening() { # ns proto port
    ip netns exec "$1" ss -ln"$2" 2>/dev/null | grep -q ":$3 "
}
for _ in $(seq 1 100); do
    listening "$NS_SRV" t 8000 && listening "$NS_CLI" t 8001 &&
        listening "$NS_SRV" u 9000 && listening "$NS_CLI" u 9000 &&
        listening "$NS_SRV" u 9001 && listening "$NS_CLI" u 9001 && break
    sleep 0.1
done

# --- traffic cases, once per dataplane mode -------------------------------------------------
# MODES: the tun.offload values to run the traffic cases with; the last one stays running for
# the reload and stop cases.
MODES="${MODES:-false true}"
LAST_MODE="${MODES##* }"
start_mode() {
    local started=0
    stop_nat64d >/dev/null 2>&1 || true
    OFFLOAD="$mode" write_config "$TMP/nat64d.toml"
    if [ "$mode" = "$LAST_MODE" ]; then
        # The instance that stays: a stand-in for systemd's notify socket, with a 1 s watchdog.
        bg socat -u UNIX-RECV:"$TMP/notify.sock" OPEN:"$TMP/notify.log",creat,append
        for _ in $(seq 1 20); do [ -S "$TMP/notify.sock" ] && break; sleep 0.05; done
        export NOTIFY_SOCKET="$TMP/notify.sock" WATCHDOG_USEC=1000000
    fi
    start_nat64d "$TMP/nat64d.toml" "$TMP/nat64d.log" && started=1
    unset NOTIFY_SOCKET WATCHDOG_USEC
    [ "$started" = 1 ] || return 1
    # What the case's name claims (it passed on "ready" alone): the device and both routes.
    in_gw ip link show "$TUN_NAME" >/dev/null || { echo "no TUN device $TUN_NAME"; return 1; }
    in_gw ip -6 route show "${POOL6}/96" | grep -q "dev $TUN_NAME" || { echo "no pool6 route into $TUN_NAME"; return 1; }
    in_gw ip -4 route show "$CLI4" | grep -q "dev $TUN_NAME" || { echo "no EAMT route ($CLI4) into $TUN_NAME"; return 1; }
}
# The cases of one mode (counted once per mode).
mode_cases() {
    check "[$M] nat64d starts: TUN $TUN_NAME, routes for pool6 and the EAMT" start_mode || return 1

    check "[$M] ping: IPv6-only client -> IPv4 server via pool6 ($SRV6)" \
        in_cli ping -6 -c 3 -i 0.2 -W 2 "$SRV6"

    check "[$M] ping: IPv4-only client -> IPv6-only host via EAMT ($CLI4 = $CLI6)" \
        in_srv ping -4 -c 3 -i 0.2 -W 2 "$CLI4"

    udp_small() {
        local out
        out="$(echo "hello-$1" | "${@:2}")"
        [ "$out" = "hello-$1" ] || { echo "got '$out'"; return 1; }
    }
    check "[$M] udp (socat): IPv6 client -> IPv4 server and back" \
        udp_small 6to4 in_cli timeout 5 socat -T 2 - "UDP6:[$SRV6]:9001"
    check "[$M] udp (socat): IPv4 client -> IPv6 server (EAMT) and back" \
        udp_small 4to6 in_srv timeout 5 socat -T 2 - "UDP4:$CLI4:9001"

    check "[$M] udp: 3000-byte datagrams IPv6 -> IPv4 -> IPv6 (fragments translated both ways)" \
        in_cli timeout 20 "$PY" "$HERE/udp-check.py" "$SRV6" 9000 --size 3000 --count 5
    check "[$M] udp: 3000-byte datagrams IPv4 -> IPv6 -> IPv4 via EAMT (fragments translated both ways)" \
        in_srv timeout 20 "$PY" "$HERE/udp-check.py" "$CLI4" 9000 --size 3000 --count 5

    frag_icmp() {
        local before after
        before="$(counters | grep -o 'fragmented_icmp=[0-9]*' | cut -d= -f2)"
        if in_cli ping -6 -c 2 -i 0.2 -W 1 -s 3000 "$SRV6" >/dev/null 2>&1; then
            echo "a fragmented echo request got an answer"
            return 1
        fi
        after="$(counters | grep -o 'fragmented_icmp=[0-9]*' | cut -d= -f2)"
        [ "${after:-0}" -gt "${before:-0}" ] || { echo "fragmented_icmp counter did not move (${before:-0} -> ${after:-0})"; return 1; }
    }
    check "[$M] icmp: fragmented echo is not translated statelessly (RFC 7915 §1.2), counted as fragmented_icmp" \
        frag_icmp

    http_get() { # ns url
        local got
        ip netns exec "$1" timeout 60 curl -sS -g --max-time 50 -o "$TMP/got" "$2" || return 1
        got="$(sha256sum <"$TMP/got" | cut -d' ' -f1)"
        [ "$got" = "$SUM" ] || { echo "checksum mismatch: $got"; return 1; }
    }
    check "[$M] http: 10 MB download, IPv6 client <- IPv4 server, sha256 equal" \
        http_get "$NS_CLI" "http://[$SRV6]:8000/blob"
    check "[$M] http: 10 MB download, IPv4 client <- IPv6 server via EAMT, sha256 equal" \
        http_get "$NS_SRV" "http://$CLI4:8001/blob"

    trace6() {
        local out
        out="$(in_cli timeout 30 traceroute -6 -n -q 2 -w 3 -m 6 "$SRV6" 2>&1)" || { echo "$out"; return 1; }
        echo "$out"
        # Hop of the IPv4 router (the gateway's IPv4 side): an ICMPv4 Time Exceeded, translated.
        echo "$out" | grep -q " $GW4_AS6_HEX " || { echo "no translated Time Exceeded from $GW4_AS6_HEX"; return 1; }
        # The destination answers (ICMPv4 Port Unreachable, translated).
        echo "$out" | tail -n 1 | grep -q " $SRV6_HEX " || { echo "destination not reached"; return 1; }
    }
    check "[$M] traceroute -6: Time Exceeded and Port Unreachable translated IPv4 -> IPv6" trace6

    trace4() {
        local out
        out="$(in_srv timeout 30 traceroute -4 -n -q 2 -w 3 -m 6 "$CLI4" 2>&1)" || { echo "$out"; return 1; }
        echo "$out"
        echo "$out" | tail -n 1 | grep -q " $CLI4 " || { echo "destination not reached"; return 1; }
    }
    check "[$M] traceroute -4 via EAMT: the IPv6 host's Port Unreachable translated IPv6 -> IPv4" trace4

    pmtu6() {
        local out want=$((SRV_LINK_MTU + 20))
        in_cli ip -6 route flush cache >/dev/null 2>&1 || true
        out="$(in_cli timeout 30 tracepath -6 -n -m 6 "$SRV6" 2>&1)"
        echo "$out"
        echo "$out" | grep -q "pmtu $want" || { echo "expected pmtu $want"; return 1; }
    }
    check "[$M] tracepath -6: Fragmentation Needed (IPv4 link MTU $SRV_LINK_MTU) -> Packet Too Big (pmtu $((SRV_LINK_MTU + 20)))" pmtu6

}

# The end of the run: per-block counts, the failing cases' own output and logs, the final line.
finish() {
    local f
    if [ "${SIIT_DONE:-0}" != 1 ]; then
        block_end siit "$SIIT_EXPECTED"
    fi
    if [ "$FAILED" -gt 0 ]; then
        echo "failed: ${FAILED_NAMES[*]}"
        for f in "$TMP"/failed/*.log; do
            [ -f "$f" ] && cat "$f"
        done
    fi
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit
}

NMODES="$(wc -w <<<"$MODES")"
SIIT_EXPECTED=$((NMODES * $(count_cases "$0" mode_cases) + $(count_cases "$0" - mode_cases)))
for mode in $MODES; do
    if [ "$mode" = true ]; then M="offload"; else M="no offload"; fi
    # Without a running nat64d the rest cannot run: the block count reports what is missing.
    mode_cases || finish
done

# --- reload while traffic flows -------------------------------------------------------------
reload_under_traffic() {
    local ping_out
    # Deprecated at once (preferred_lft 0): never picked as a source unless asked for with -I.
    in_cli ip addr add 2001:db8:1::3/64 dev c0 nodad preferred_lft 0
    pin_neigh "$NS_GW" gc 2001:db8:1::3 "$NS_CLI" c0
    in_cli ping -6 -I "$CLI6" -c 60 -i 0.05 -W 2 "$SRV6" >"$TMP/ping-reload" 2>&1 &
    local ping_pid=$!
    sleep 0.5
    # 1. A new EAMT entry, 192.0.2.3 <-> 2001:db8:1::3.
    OFFLOAD="$mode" EXTRA_EAM='    { ipv4 = "192.0.2.3", ipv6 = "2001:db8:1::3" },' write_config "$TMP/nat64d.toml"
    kill -HUP "$NAT64D_PID"
    sleep 0.5
    # 2. An invalid file: refused, the running config stays.
    printf 'pool6 = ["2001:db8::/33"]\n' >"$TMP/nat64d.toml"
    kill -HUP "$NAT64D_PID"
    sleep 0.5
    # 3. Back to the valid file with the new entry.
    OFFLOAD="$mode" EXTRA_EAM='    { ipv4 = "192.0.2.3", ipv6 = "2001:db8:1::3" },' write_config "$TMP/nat64d.toml"
    kill -HUP "$NAT64D_PID"
    wait "$ping_pid"
    ping_out="$(cat "$TMP/ping-reload")"
    kill -0 "$NAT64D_PID" || { echo "nat64d died"; return 1; }
    echo "$ping_out" | grep -q " 0% packet loss" || { echo "$ping_out" | tail -n 2; return 1; }
}
check "reload: three SIGHUPs (new EAM, invalid file, valid file) while ping runs: no loss, no crash" \
    reload_under_traffic

check "reload: invalid file refused with a log line naming file, line and key" \
    grep -q "reload refused, keeping the running configuration: .*nat64d.toml:1: pool6: prefix 2001:db8::/33: length must be" "$TMP/nat64d.log"

new_eam() {
    in_gw ip route show 192.0.2.3 | grep -q "dev $TUN_NAME" || { echo "no route for the new EAM"; return 1; }
    in_srv ping -4 -c 2 -i 0.2 -W 2 192.0.2.3 >/dev/null || { echo "192.0.2.3 unreachable"; return 1; }
    in_cli ping -6 -I 2001:db8:1::3 -c 2 -i 0.2 -W 2 "$SRV6" >/dev/null || { echo "2001:db8:1::3 cannot reach the server"; return 1; }
}
check "reload: the new EAMT entry and its route are live (192.0.2.3 <-> 2001:db8:1::3)" new_eam

# --- stop -----------------------------------------------------------------------------------
graceful_stop() {
    counters >/dev/null
    stop_nat64d || { echo "exit status $?"; return 1; }
    grep -q "stopped; counters: rx=" "$TMP/nat64d.log" || { echo "no exit counters"; return 1; }
    if in_gw ip link show "$TUN_NAME" >/dev/null 2>&1; then
        echo "TUN device still there"
        return 1
    fi
    if in_gw ip -6 route | grep -q "64:ff9b::/96"; then
        echo "pool6 route still there"
        return 1
    fi
}
check "SIGTERM: exit 0, counters logged, TUN device and routes removed" graceful_stop

sd_notify() {
    local f="$TMP/notify.log" s
    [ -f "$f" ] || { echo "nothing received on NOTIFY_SOCKET"; return 1; }
    for s in READY=1 RELOADING=1 MONOTONIC_USEC= WATCHDOG=1 STOPPING=1; do
        grep -q "^$s" "$f" || { echo "no $s in: $(tr '\n' ' ' <"$f")"; return 1; }
    done
    # Order: READY before the first RELOADING, STOPPING last.
    [ "$(grep -m1 -n '^READY=1' "$f" | cut -d: -f1)" -lt "$(grep -m1 -n '^RELOADING=1' "$f" | cut -d: -f1)" ] || { echo "RELOADING before READY"; return 1; }
    [ "$(tail -n 1 "$f")" = "STOPPING=1" ] || { echo "last message: $(tail -n 1 "$f")"; return 1; }
}
check "sd_notify: READY, RELOADING (with MONOTONIC_USEC) then READY on each SIGHUP, WATCHDOG pings, STOPPING" sd_notify

persistent_attach() {
    local why=""
    in_gw ip tuntap add dev "$TUN_NAME" mode tun multi_queue vnet_hdr || { echo "ip tuntap add failed"; return 1; }
    write_config "$TMP/nat64d.toml"
    if ! start_nat64d "$TMP/nat64d.toml" "$TMP/nat64d.log"; then
        in_gw ip tuntap del dev "$TUN_NAME" mode tun multi_queue vnet_hdr
        return 1
    fi
    grep -q "tun $TUN_NAME attached" "$TMP/nat64d.log" || why="not reported as attached"
    if [ -z "$why" ]; then
        why="no traffic through the attached device"
        for _ in 1 2 3; do
            if in_cli ping -6 -c 1 -W 2 "$SRV6" >/dev/null; then
                why=""
                break
            fi
        done
    fi
    # Always stop (one failure must not cascade into the next cases).
    stop_nat64d || why="${why:-exit status $?}"
    if [ -z "$why" ]; then
        in_gw ip link show "$TUN_NAME" >/dev/null 2>&1 || why="the persistent device was deleted"
    fi
    if [ -z "$why" ] && in_gw ip -6 route | grep -q "64:ff9b::/96"; then
        why="our pool6 route is still there"
    fi
    if [ -z "$why" ] && in_gw ip route | grep -q "^$CLI4 "; then
        why="our EAMT route is still there"
    fi
    in_gw ip tuntap del dev "$TUN_NAME" mode tun multi_queue vnet_hdr 2>/dev/null || true
    [ -z "$why" ] || { echo "$why"; return 1; }
}
check "persistent TUN (ip tuntap add ... multi_queue): attached, and on stop left in place without our routes" persistent_attach

# The systemd unit's privilege model: an unprivileged user holding only CAP_NET_ADMIN (ambient)
# creates the TUN, adds its routes over netlink, translates, reloads and stops. /dev/net/tun may be
# 0600 here, so a 0666 node is bind-mounted over it in a private mount namespace of this case.
unprivileged() {
    command -v setpriv >/dev/null 2>&1 && command -v unshare >/dev/null 2>&1 || { echo "util-linux missing"; return 1; }
    chmod 755 "$TMP"
    mknod -m 0666 "$TMP/tun-node" c 10 200
    write_config "$TMP/nobody.toml"
    chmod 644 "$TMP/nobody.toml"
    : >"$TMP/nobody.log"
    CASE_LOG="$TMP/nobody.log"
    ip netns exec "$NS_GW" unshare -m sh -c "mount --bind '$TMP/tun-node' /dev/net/tun && exec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all,+net_admin --ambient-caps=+net_admin --bounding-set=-all,+net_admin '$NAT64D' run --config '$TMP/nobody.toml'" >>"$TMP/nobody.log" 2>&1 &
    NAT64D_PID=$!
    local why="" i
    for i in $(seq 1 200); do
        grep -q " ready$" "$TMP/nobody.log" && break
        kill -0 "$NAT64D_PID" 2>/dev/null || break
        sleep 0.05
    done
    grep -q " ready$" "$TMP/nobody.log" || why="did not start: $(tail -n 1 "$TMP/nobody.log")"
    if [ -z "$why" ]; then
        [ "$(ps -o user= -p "$NAT64D_PID")" = nobody ] || why="not running as nobody"
    fi
    if [ -z "$why" ]; then
        why="no traffic"
        for _ in 1 2 3; do
            in_cli ping -6 -c 1 -W 2 "$SRV6" >"$TMP/nobody-ping" 2>&1 && { why=""; break; }
        done
    fi
    if [ "$why" = "no traffic" ]; then
        # What the next occurrence needs to be understood (this failed once in 56 runs and was
        # not reproduced in 100 more): what ping saw, whether the packets reached nat64d (its
        # counters), and the device, routes and neighbours at that moment.
        echo "--- ping"; cat "$TMP/nobody-ping"
        kill -USR1 "$NAT64D_PID" 2>/dev/null; sleep 0.3
        echo "--- nat64d counters"; grep "counters:" "$TMP/nobody.log" | tail -n 1
        echo "--- gateway"; in_gw ip -d link show "$TUN_NAME"; in_gw ip -6 route; in_gw ip -4 route
        in_gw ip -6 neigh; in_gw ip -4 neigh; in_gw nstat -az 2>/dev/null | grep -iE "drop|discard|noroute|fail" | grep -v " 0 "
        echo "--- client, server"; in_cli ip -6 neigh; in_srv ip -4 neigh
        echo "--- neighbour tables (system-wide)"; head -2 /proc/net/stat/ndisc_cache /proc/net/stat/arp_cache
    fi
    stop_nat64d || why="${why:-exit status $?}"
    [ -z "$why" ] || { echo "$why"; return 1; }
}
check "unprivileged: user nobody with only CAP_NET_ADMIN creates the TUN and routes, translates, stops" unprivileged

bad_start() {
    printf 'pool6 = ["64:ff9b::/96"]\n[tun]\nmtu = 9000000\n' >"$TMP/bad.toml"
    local out rc=0
    out="$(in_gw timeout 10 "$NAT64D" run --config "$TMP/bad.toml" 2>&1)" || rc=$?
    [ "$rc" -ne 0 ] || { echo "exit status 0"; return 1; }
    echo "$out" | grep -q "bad.toml:3: tun.mtu:" || { echo "$out"; return 1; }
    in_gw ip link show "$TUN_NAME" >/dev/null 2>&1 && { echo "a device was left behind"; return 1; }
    return 0
}
check "bad config at start: one message naming file:line: key, non-zero exit, nothing created" bad_start

tun_refused() {
    local out rc=0
    # The name of an existing veth: not a TUN device.
    TUN_NAME=gs write_config "$TMP/clash.toml"
    out="$(in_gw timeout 10 "$NAT64D" run --config "$TMP/clash.toml" 2>&1)" || rc=$?
    [ "$rc" -ne 0 ] || { echo "exit status 0"; return 1; }
    echo "$out" | grep -q "TUN device gs: an interface of that name exists and is not a TUN device" || { echo "$out"; return 1; }
    # Without CAP_NET_ADMIN (where /dev/net/tun is 0600, the open itself is refused first).
    if command -v setpriv >/dev/null 2>&1; then
        write_config "$TMP/nocap.toml"
        chmod 755 "$TMP" && chmod 644 "$TMP/nocap.toml"
        rc=0
        out="$(in_gw timeout 10 setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all "$NAT64D" run --config "$TMP/nocap.toml" 2>&1)" || rc=$?
        [ "$rc" -ne 0 ] || { echo "exit status 0 without CAP_NET_ADMIN"; return 1; }
        echo "$out" | grep -qE "cannot create TUN device $TUN_NAME: .*(needs CAP_NET_ADMIN|cannot open /dev/net/tun)" || { echo "$out"; return 1; }
    fi
    in_gw ip link show "$TUN_NAME" >/dev/null 2>&1 && { echo "a device was left behind"; return 1; }
    return 0
}
check "TUN cannot be created (name taken by a veth; no CAP_NET_ADMIN): one clear message, non-zero exit" tun_refused

# A netlink refusal at start: on a persistent TUN with IPv6 disabled the kernel refuses first an
# IPv6 address (after the IPv4 one was added), then, without addresses, the pool6 route (after
# the IPv4 EAMT route was added). Each time: one message naming the object and the kernel's
# reason, exit status 1, and what was added before is removed again.
netlink_refused() {
    local out rc why=""
    in_gw ip tuntap add dev "$TUN_NAME" mode tun multi_queue vnet_hdr || { echo "ip tuntap add failed"; return 1; }
    in_gw sysctl -qw "net.ipv6.conf.$TUN_NAME.disable_ipv6=1" || why="cannot disable IPv6 on $TUN_NAME"
    write_config "$TMP/nl-addr.toml"
    sed -i 's|^mtu = 1500$|&\naddresses = ["192.0.2.253/32", "2001:db8:ff::1/128"]|' "$TMP/nl-addr.toml"
    write_config "$TMP/nl-route.toml"
    sed -i 's|^mtu = 1500$|&\naddresses = ["192.0.2.253/32"]|' "$TMP/nl-route.toml"
    for f in addr route; do
        [ -z "$why" ] || break
        rc=0
        out="$(in_gw timeout 10 "$NAT64D" run --config "$TMP/nl-$f.toml" 2>&1)" || rc=$?
        echo "$out"
        [ "$rc" -eq 1 ] || { why="$f: exit status $rc, not 1"; break; }
        case "$f" in
            addr) echo "$out" | grep -qE "netlink: cannot add address 2001:db8:ff::1/128 dev $TUN_NAME: Permission denied.*IPv6 is disabled" || why="addr: no message naming the address and the kernel's reason" ;;
            route) echo "$out" | grep -qE "netlink: cannot add route ${POOL6}/96 dev $TUN_NAME: Permission denied.*IPv6 is disabled" || why="route: no message naming the route and the kernel's reason" ;;
        esac
        [ -z "$why" ] || break
        in_gw ip -4 addr show dev "$TUN_NAME" | grep -q 192.0.2.253 && why="$f: the IPv4 address was left on $TUN_NAME"
        in_gw ip -4 route | grep -q "dev $TUN_NAME" && why="$f: an IPv4 route was left: $(in_gw ip -4 route | grep "dev $TUN_NAME")"
    done
    in_gw ip tuntap del dev "$TUN_NAME" mode tun multi_queue vnet_hdr 2>/dev/null || true
    [ -z "$why" ] || { echo "$why"; return 1; }
}
check "netlink refusal at start (IPv6 disabled on a persistent TUN): names the address / route and the kernel's reason, exit 1, earlier address and routes removed" netlink_refused

# --- TCP MSS clamping (issue 14) -------------------------------------------------------------
# The IPv4 client (server namespace) reaches the IPv6 host through the EAMT and downloads 10 MB
# from it. Its route advertises MSS 1460 (advmss: a host whose own link is 1500 bytes, behind the
# gateway's 1400-byte IPv4 link, which nat64d is told about: xlat.ipv4_mtu = 1400). Clamping on,
# the SYN leaves with min(1500 - 60, 1400 - 40) = 1360 and the IPv6 host never needs a Packet Too
# Big; clamping off, its 1440-byte segments do not fit and it gets one (the case can fail).
# PTBs are counted twice: received by the IPv6 host (Icmp6InPktTooBigs of its namespace) and built
# by nat64d (drop reason packet_too_big).
mss_download() { # on|off
    local clamp=true ptb0 ptb1 line got ptbs made clamped
    [ "$1" = off ] && clamp=false
    write_config "$TMP/mss.toml"
    printf '[xlat]\nipv4_mtu = %s\nmss_clamp_4to6 = %s\n' "$SRV_LINK_MTU" "$clamp" >>"$TMP/mss.toml"
    start_nat64d "$TMP/mss.toml" "$TMP/nat64d.log" || return 1
    in_srv ip route replace 192.0.2.0/24 via "$GW4" dev s0 advmss 1460
    in_cli ip -6 route flush cache >/dev/null 2>&1 || true
    in_srv ip -4 route flush cache >/dev/null 2>&1 || true
    ptb0="$(in_cli awk '$1 == "Icmp6InPktTooBigs" {print $2}' /proc/net/snmp6)"
    in_srv timeout 60 curl -sS --max-time 50 -o "$TMP/mss-got" "http://$CLI4:8001/blob" || { stop_nat64d; return 1; }
    ptb1="$(in_cli awk '$1 == "Icmp6InPktTooBigs" {print $2}' /proc/net/snmp6)"
    line="$(counters)"
    stop_nat64d >/dev/null 2>&1 || true
    in_srv ip route replace 192.0.2.0/24 via "$GW4" dev s0
    got="$(sha256sum <"$TMP/mss-got" | cut -d' ' -f1)"
    [ "$got" = "$SUM" ] || { echo "checksum mismatch: $got"; return 1; }
    ptbs=$((ptb1 - ptb0))
    made="$(grep -o 'packet_too_big=[0-9]*' <<<"$line" | cut -d= -f2)"
    clamped="$(grep -o 'mss_clamped_4to6=[0-9]*' <<<"$line" | cut -d= -f2)"
    echo "clamping $1: PTBs received by the IPv6 host $ptbs, built by nat64d ${made:-0}, SYNs clamped 4to6 ${clamped:-?}"
    if [ "$1" = on ]; then
        [ "$ptbs" -eq 0 ] && [ "${made:-0}" -eq 0 ] || { echo "a Packet Too Big was needed"; return 1; }
        [ "${clamped:-0}" -ge 1 ] || { echo "no SYN counted as clamped"; return 1; }
    else
        [ "$ptbs" -ge 1 ] && [ "${made:-0}" -ge 1 ] || { echo "no Packet Too Big without clamping: the case cannot tell"; return 1; }
        [ "${clamped:-0}" -eq 0 ] || { echo "clamped although off"; return 1; }
    fi
}
check "mss: IPv4 client (MSS 1460) <- IPv6 server via EAMT over the $SRV_LINK_MTU-byte link, clamping on: 10 MB, zero Packet Too Big" mss_download on
check "mss: the same with xlat.mss_clamp_4to6 = false: the IPv6 server needs a Packet Too Big" mss_download off

# --- stateful NAT64 (mode = "nat64") ---------------------------------------------------------
block_end siit "$SIIT_EXPECTED"
SIIT_DONE=1
if [ "${NAT64_CASES:-1}" = 1 ]; then
    BLOCK=nat64
    # shellcheck source=nat64-cases.sh
    . "$HERE/nat64-cases.sh"
    block_end nat64 "$(count_cases "$HERE/nat64-cases.sh")"
else
    echo "      (nat64 block skipped: NAT64_CASES=0)"
fi

# --- DNS64 (RFC 6147) with a real authoritative server (nsd) on the IPv4 side -----------------
# Its own namespaces; each of its "ok"/"FAIL" lines counts here, its exit status and its own
# closing line must agree with them.
if [ "${DNS64_CASES:-1}" = 1 ]; then
    BLOCK=dns64
    dns_rc=0
    dns_failed_before="$FAILED"
    NAT64D="$NAT64D" "$HERE/dns64-netns.sh" >"$TMP/dns64.out" 2>&1 || dns_rc=$?
    dns_summary=
    while IFS= read -r line; do
        case "$line" in
            "ok   "*) pass "dns64: ${line#ok   }" ;;
            "FAIL "*) fail "dns64: ${line#FAIL }" ;;
            [0-9]*" passed, "*" failed") dns_summary="$line" ;;
            *) echo "      $line" ;;
        esac
    done <"$TMP/dns64.out"
    # No closing line, or a non-zero exit without a failed case: it stopped part-way.
    if [ -z "$dns_summary" ] || { [ "$dns_rc" -ne 0 ] && [ "$FAILED" -eq "$dns_failed_before" ]; }; then
        fail_run "dns64: dns64-netns.sh exited $dns_rc${dns_summary:+ after '$dns_summary'}${dns_summary:- without its closing line}" \
            "$(tail -n 2 "$TMP/dns64.out" | tr '\n' ' ')"
    fi
    block_end dns64 "$(count_cases "$HERE/dns64-netns.sh")"
else
    echo "      (dns64 block skipped: DNS64_CASES=0)"
fi

finish
