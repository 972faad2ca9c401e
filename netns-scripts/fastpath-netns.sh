#!/usr/bin/env bash
# fastpath-netns.sh: nat64d with the eBPF fast path on (`[fastpath] enabled = true`, issue 15) in
# the three-namespace topology (topology.sh). Cases (`check` lines, counted by count_cases): the
# program attaches at TC ingress of gc and gs; ping, UDP echo and a TCP download through the
# gateway work, and the program's own counters (logged on SIGUSR1) show that their packets took
# the fast path in both directions (translated_6to4, translated_4to6) while the TCP SYNs were
# punted to the TUN; a DF packet too big for the IPv4 link is punted (bpf_check_mtu) and the
# slow path answers it with a Packet Too Big; after SIGTERM no program is left on either
# interface. If the program cannot load (no clang at build time, no permission) the run FAILS.
# Last line: "N passed, N failed". Env: NS_PREFIX (names), NAT64D (binary).
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
. netns-scripts/lib.sh
need_root
ensure_packages bpftool:bpftool

PASS=0
FAIL=0
EXPECTED="$(count_cases "$0")"
check() { # name, command... (the command's status decides)
    local name="$1"
    shift
    if "$@"; then
        echo "ok   $name"
        PASS=$((PASS + 1))
    else
        echo "FAIL $name"
        FAIL=$((FAIL + 1))
    fi
}

TMP="$(new_tmp fastpath)"
SRV_PIDS=()
cleanup() {
    local p
    for p in "${SRV_PIDS[@]}"; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    stop_nat64d >/dev/null 2>&1
    netns-scripts/topology.sh down >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT
netns-scripts/topology.sh up || { echo "0 passed, 1 failed"; exit 1; }

CFG="$TMP/nat64d.toml"
LOG="$TMP/nat64d.log"
write_config "$CFG"
cat >>"$CFG" <<EOF
[fastpath]
enabled = true
ipv6_interfaces = ["gc"]
ipv4_interfaces = ["gs"]
EOF
start_nat64d "$CFG" "$LOG" || { echo "0 passed, 1 failed"; exit 1; }

# counter NAME: the program's counter NAME from a fresh SIGUSR1 log line (0 when absent: the
# line lists the non-zero ones).
counter() {
    local before
    before="$(grep -c 'fastpath: ' "$LOG")"
    kill -USR1 "$NAT64D_PID"
    local i
    for i in $(seq 1 50); do
        [ "$(grep -c 'fastpath: ' "$LOG")" -gt "$before" ] && break
        sleep 0.05
    done
    grep 'fastpath: ' "$LOG" | tail -n 1 | grep -o "$1=[0-9]*" | cut -d= -f2 | grep . || echo 0
}

# rose NAME BEFORE MIN: counter NAME is now at least BEFORE + MIN.
rose() {
    local now
    now="$(counter "$1")"
    echo "     $1: $2 -> $now"
    [ "$now" -ge $(($2 + $3)) ]
}

attached() { grep -q 'fastpath: attached at TC ingress of \["gc", "gs"\]' "$LOG"; }
check "program attached to gc and gs" attached
if ! attached; then
    echo "nat64d log:" >&2
    cat "$LOG" >&2
fi

# --- ICMP echo both ways ------------------------------------------------------------------------
a="$(counter translated_6to4)"
b="$(counter translated_4to6)"
check "ping through the gateway" in_cli ping -c 5 -i 0.2 -W 2 -q "$SRV6"
check "echo requests took the fast path (6to4)" rose translated_6to4 "$a" 5
check "echo replies took the fast path (4to6)" rose translated_4to6 "$b" 5

# --- UDP echo -----------------------------------------------------------------------------------
in_srv python3 netns-scripts/udp-echo.py "$SRV4" 7007 --lifetime 20 &
SRV_PIDS+=($!)
sleep 0.3
a="$(counter translated_6to4)"
b="$(counter translated_4to6)"
udp_roundtrip() {
    in_cli python3 - "$SRV6" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(2)
ok = 0
for i in range(10):
    m = b"fastpath-%d" % i
    s.sendto(m, (sys.argv[1], 7007))
    try:
        d, _ = s.recvfrom(2048)
        ok += d == m
    except socket.timeout:
        pass
sys.exit(0 if ok == 10 else 1)
PY
}
check "UDP echo (10 datagrams) through the gateway" udp_roundtrip
check "UDP took the fast path (6to4)" rose translated_6to4 "$a" 10
check "UDP took the fast path (4to6)" rose translated_4to6 "$b" 10

# --- TCP ----------------------------------------------------------------------------------------
mkdir -p "$TMP/www"
head -c 2000000 /dev/urandom >"$TMP/www/blob"
(cd "$TMP/www" && exec ip netns exec "$NS_SRV" python3 -m http.server 8080 --bind "$SRV4" >/dev/null 2>&1) &
SRV_PIDS+=($!)
sleep 0.8
a="$(counter translated_6to4)"
b="$(counter translated_4to6)"
s="$(counter punt_tcp_syn)"
tcp_get() {
    in_cli curl -s -g --max-time 10 -o "$TMP/got" "http://[$SRV6]:8080/blob" &&
        cmp -s "$TMP/got" "$TMP/www/blob"
}
check "TCP download (2 MB) through the gateway, bytes intact" tcp_get
# Counted per skb: 2 MB in GSO super-packets of at most 64 KiB is at least 31 of them.
check "TCP data (GSO super-packets) took the fast path (4to6)" rose translated_4to6 "$b" 31
check "TCP ACKs took the fast path (6to4)" rose translated_6to4 "$a" 20
check "TCP SYN and SYN-ACK were punted to the TUN" rose punt_tcp_syn "$s" 2

# --- too big for the IPv4 link: punted, the slow path answers ------------------------------------
m="$(counter punt_egress_mtu)"
ptb() {
    in_cli ping -c 3 -i 0.3 -W 2 -s 1400 -M do "$SRV6" >"$TMP/ptb" 2>&1
    grep -qiE "too big|mtu" "$TMP/ptb" || { cat "$TMP/ptb"; false; }
}
check "DF packet too big for gs: Packet Too Big from the slow path" ptb
check "it was punted by bpf_check_mtu" rose punt_egress_mtu "$m" 1

# --- stop: nothing left behind ------------------------------------------------------------------
stop_nat64d >/dev/null 2>&1
gone() { ! in_gw bpftool net show 2>/dev/null | grep -q nat64d_siit; }
check "after SIGTERM no program is attached" gone
check "nat64d logged the detach" grep -q 'fastpath: detaching' "$LOG"

echo "$PASS passed, $FAIL failed"
if [ "$((PASS + FAIL))" -ne "$EXPECTED" ]; then
    echo "ran $((PASS + FAIL)) cases, expected $EXPECTED" >&2
    exit 1
fi
[ "$FAIL" -eq 0 ]
