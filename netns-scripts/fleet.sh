#!/usr/bin/env bash
# fleet.sh: a fleet of two stateful NAT64 gateways behind a BIRD 2 router (BGP, ECMP), and what
# happens when one of them stops or dies (issue 13). Namespaces, all named from NS_PREFIX:
#
#   ${NS_PREFIX}fcli (IPv6 only)    ${NS_PREFIX}frtr (BIRD: ECMP, merge paths)    ${NS_PREFIX}fsrv (IPv4 only)
#   c0 2001:db8:10::2/64 +64 addrs  rc 2001:db8:10::1/64        rs 198.51.100.1/24   s0 198.51.100.2/24
#                                   r1 2001:db8:21::1/64 192.0.2.1/30  --  ${NS_PREFIX}fgw1: nat64d + BIRD
#                                   r2 2001:db8:22::1/64 192.0.2.5/30  --  ${NS_PREFIX}fgw2: nat64d + BIRD
#
# Both gateways run `nat64d run` (mode nat64) with the shared pool6 64:ff9b::/96 and disjoint pool4
# (203.0.113.16/28 and 203.0.113.32/28), each with its own config file. Each gateway's BIRD
# (deploy/bird/gateway.conf, rendered here) learns only the routes nat64d installs into its TUN
# device and announces them to the router (deploy/bird/router.conf), so an announcement lives
# exactly as long as the device. The client opens many TCP flows from 64 source addresses to a
# line-echo server that answers with the address and port it sees (hence the pool4 address,
# hence the gateway, of each flow).
#
# Cases (`check` lines, counted by count_cases): the rendered BIRD configs parse and BIRD starts
# in the three namespaces; the router has two next hops for pool6 and one route per pool4; 48 flows
# all complete and both gateways carry some (their session tables, through the control socket,
# agree with what the server saw); then for SIGTERM of gateway 1 and SIGKILL of gateway 2: the
# router keeps one next hop within a bound (time printed), new flows all succeed through the
# survivor, the flows on the stopped gateway fail (reset or timeout) and never reach the server
# through the survivor's pool4, the survivor's own flows go on; the gateway restarts, is
# re-announced (time printed) and takes new flows again; last, gateway 1 goes silent (nftables
# drops all its packets): the router drops it when the BGP hold timer runs out (time printed), new
# flows go through gateway 2, and it comes back once heard again. BIRD missing or not starting
# FAILS the run (never skips). Last line: "N passed, N failed". Env: NS_PREFIX (names), NAT64D
# (binary, built when missing), FLOWS (per batch, default 48), KEEP_LOGS=1 (keep the temp dir).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=lib.sh
. netns-scripts/lib.sh
need_root
ensure_packages bird:bird2 jq:jq

PASS=0
FAIL=0
# failover() runs twice (SIGTERM, SIGKILL): its cases count twice.
EXPECTED=$(($(count_cases "$0" - failover) + 2 * $(count_cases "$0" failover)))
WHY=
# check NAME COMMAND...: the command's status decides; on failure the line gives $WHY (set just
# before the check with what was measured).
check() {
    local name="$1"
    shift
    if "$@"; then
        echo "PASS $name"
        PASS=$((PASS + 1))
    else
        echo "FAIL $name: ${WHY:-"$*" failed}"
        FAIL=$((FAIL + 1))
    fi
    WHY=
}
# finish: the closing lines; a run that stopped early counts the cases it did not reach as failed.
finish() {
    echo "cases: $((PASS + FAIL)) ran of $EXPECTED"
    [ $((PASS + FAIL)) -lt "$EXPECTED" ] && FAIL=$((FAIL + EXPECTED - PASS - FAIL))
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
    exit $?
}

NS_FCLI="${NS_PREFIX}fcli"
NS_RTR="${NS_PREFIX}frtr"
NS_GW1="${NS_PREFIX}fgw1"
NS_GW2="${NS_PREFIX}fgw2"
NS_FSRV="${NS_PREFIX}fsrv"
FLEET_NS=("$NS_FCLI" "$NS_RTR" "$NS_GW1" "$NS_GW2" "$NS_FSRV")
FLOWS="${FLOWS:-48}"
case "$FLOWS" in '' | *[!0-9]*) echo "FLOWS=$FLOWS: a number from 10 to 500" >&2; exit 2 ;; esac
[ "$FLOWS" -ge 10 ] && [ "$FLOWS" -le 500 ] || { echo "FLOWS=$FLOWS: a number from 10 to 500" >&2; exit 2; }
MIN_SHARE=$(((FLOWS + 5) / 10)) # the fewest flows each gateway must carry: a tenth, rounded

CLI_NET=2001:db8:10:: # client link /64; the router is ::1, the client ::2 and ::100..::13f
RTR_C6=2001:db8:10::1
CLI_MAIN=2001:db8:10::2
SRV_ADDR=198.51.100.2
RTR_S4=198.51.100.1
SRV_PORT=7000
SRV_AS6="${POOL6}${SRV_ADDR}"
ROUTER_AS=65000
GW_AS=65064
# Per gateway: router side v6/v4, gateway side v6/v4, pool4.
R_V6=(- 2001:db8:21::1 2001:db8:22::1)
R_V4=(- 192.0.2.1 192.0.2.5)
G_V6=(- 2001:db8:21::2 2001:db8:22::2)
G_V4=(- 192.0.2.2 192.0.2.6)
G_POOL4=(- 203.0.113.16/28 203.0.113.32/28)
G_NS=(- "$NS_GW1" "$NS_GW2")
NAT64_PID=(- "" "")
BIRD_PID=(- "" "")
RTR_BIRD_PID=
SRV_PID=
CLIENT_PID=

TMP="$(new_tmp fleet)"
cleanup() {
    local p
    exec 7>&- 2>/dev/null
    for p in "$CLIENT_PID" "$SRV_PID" "${NAT64_PID[1]}" "${NAT64_PID[2]}" "${BIRD_PID[1]}" \
        "${BIRD_PID[2]}" "$RTR_BIRD_PID"; do
        [ -n "$p" ] && kill -KILL "$p" 2>/dev/null
    done
    for p in "$CLIENT_PID" "$SRV_PID" "${NAT64_PID[1]}" "${NAT64_PID[2]}" "${BIRD_PID[1]}" \
        "${BIRD_PID[2]}" "$RTR_BIRD_PID"; do
        [ -n "$p" ] && wait "$p" 2>/dev/null
    done
    for p in "${FLEET_NS[@]}"; do
        [ -n "${MADE[$p]:-}" ] && ip netns del "$p" 2>/dev/null
    done
    if [ "${KEEP_LOGS:-0}" = 1 ]; then echo "logs kept in $TMP"; else rm -rf "$TMP"; fi
}
declare -A MADE=()
trap cleanup EXIT
trap 'exit 130' INT TERM

names_free "${FLEET_NS[@]}" || { echo "0 passed, 1 failed"; exit 1; }
if [ ! -x "$NAT64D" ]; then
    need_rust
    echo "building nat64d (cargo build --release; a few minutes the first time)"
    (cd "$REPO" && nice -n 10 cargo build --release --quiet) || {
        echo "build failed"
        echo "0 passed, 1 failed"
        exit 1
    }
fi

# --- the namespaces ------------------------------------------------------------------------------
mk_ns() {
    ip netns add "$1" || return 1
    MADE[$1]=1
    ip -n "$1" link set lo up
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
}
topology() {
    local i ns
    for ns in "${FLEET_NS[@]}"; do mk_ns "$ns" || return 1; done
    # Every veth is made in the router's namespace and one end moved: nothing touches the host.
    ip -n "$NS_RTR" link add rc type veth peer name c0 netns "$NS_FCLI" || return 1
    ip -n "$NS_RTR" link add rs type veth peer name s0 netns "$NS_FSRV" || return 1
    for i in 1 2; do
        ip -n "$NS_RTR" link add "r$i" type veth peer name u0 netns "${G_NS[$i]}" || return 1
    done
    # The router forwards both families; L4 hashing spreads flows of one host pair over the
    # next hops (the default hashes addresses only).
    ip netns exec "$NS_RTR" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
        net.ipv6.fib_multipath_hash_policy=1 net.ipv4.fib_multipath_hash_policy=1 || return 1
    ip -n "$NS_RTR" addr add "$RTR_C6/64" dev rc
    ip -n "$NS_RTR" addr add "$RTR_S4/24" dev rs
    for i in 1 2; do
        ip -n "$NS_RTR" addr add "${R_V6[$i]}/64" dev "r$i"
        ip -n "$NS_RTR" addr add "${R_V4[$i]}/30" dev "r$i"
    done
    for ns in rc rs r1 r2; do ip -n "$NS_RTR" link set "$ns" up; done

    # Client: IPv6 only, many source addresses. The router's ECMP hash is the skb hash the
    # client's socket set (a veth keeps it, and Linux uses it when present instead of hashing the
    # headers); by default TCP picks a new one at each retransmission timeout, so a flow lost on a
    # dead next hop hops to another one on its next retry, which a router hashing headers would
    # not do. Keep it fixed per flow, as a real router's header hash is.
    ip netns exec "$NS_FCLI" sysctl -qw net.core.txrehash=0 || return 1
    ip -n "$NS_FCLI" addr add "$CLI_MAIN/64" dev c0 nodad
    for i in $(seq 256 319); do
        ip -n "$NS_FCLI" addr add "$(printf '%s%x/64' "$CLI_NET" "$i")" dev c0 nodad || return 1
    done
    ip -n "$NS_FCLI" link set c0 up
    ip -n "$NS_FCLI" -6 route add default via "$RTR_C6" dev c0

    # Gateways: forward both families, defaults to the router. nat64d adds pool6 and pool4 into
    # its TUN device itself.
    for i in 1 2; do
        ns="${G_NS[$i]}"
        ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
        ip -n "$ns" addr add "${G_V6[$i]}/64" dev u0 nodad
        ip -n "$ns" addr add "${G_V4[$i]}/30" dev u0
        ip -n "$ns" link set u0 up
        ip -n "$ns" -6 route add default via "${R_V6[$i]}" dev u0
        ip -n "$ns" -4 route add default via "${R_V4[$i]}" dev u0
    done

    # Server: IPv4 only; a fixed hash per flow, as for the client.
    ip netns exec "$NS_FSRV" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip netns exec "$NS_FSRV" sysctl -qw net.core.txrehash=0 || return 1
    ip -n "$NS_FSRV" addr add "$SRV_ADDR/24" dev s0
    ip -n "$NS_FSRV" link set s0 up
    ip -n "$NS_FSRV" route add default via "$RTR_S4" dev s0

    # Permanent neighbour entries on every hop (lib.sh pin_neigh: no case depends on neighbour
    # discovery or on room in the host-wide neighbour table).
    pin_neigh "$NS_FCLI" c0 "$RTR_C6" "$NS_RTR" rc || return 1
    for i in $(seq 256 319); do
        pin_neigh "$NS_RTR" rc "$(printf '%s%x' "$CLI_NET" "$i")" "$NS_FCLI" c0 || return 1
    done
    pin_neigh "$NS_RTR" rc "$CLI_MAIN" "$NS_FCLI" c0
    pin_neigh "$NS_RTR" rs "$SRV_ADDR" "$NS_FSRV" s0
    pin_neigh "$NS_FSRV" s0 "$RTR_S4" "$NS_RTR" rs
    for i in 1 2; do
        pin_neigh "$NS_RTR" "r$i" "${G_V6[$i]}" "${G_NS[$i]}" u0
        pin_neigh "$NS_RTR" "r$i" "${G_V4[$i]}" "${G_NS[$i]}" u0
        pin_neigh "${G_NS[$i]}" u0 "${R_V6[$i]}" "$NS_RTR" "r$i"
        pin_neigh "${G_NS[$i]}" u0 "${R_V4[$i]}" "$NS_RTR" "r$i" || return 1
    done
}
if ! topology; then
    echo "FAIL topology: the namespaces could not be set up"
    FAIL=$((FAIL + 1))
    finish
fi

# --- nat64d on each gateway, its own config file -------------------------------------------------
gw_config() { # I
    cat >"$TMP/gw$1.toml" <<CFG
mode = "nat64"
pool6 = ["${POOL6}/96"]
# Documentation addresses behind the Well-Known Prefix: a lab, so RFC 6052 §3.1 is relaxed.
wkp_strict = false
[tun]
name = "${TUN_NAME}"
mtu = 1500
queues = 1
[nat64]
enforce_rfc_minimums = false
filtering = "endpoint-independent"
[nat64.pool4]
# This gateway's own addresses: no other gateway of the fleet may use them.
addresses = ["${G_POOL4[$1]}"]
tcp = "1024-65535"
udp = "1024-65535"
[nat64.timeouts]
tcp_est = 600
tcp_trans = 4
[nat64.control]
socket = "$TMP/gw$1.sock"
[log]
level = "info"
CFG
}
# start_gw I: starts nat64d in gateway I's namespace (lib.sh start_nat64d, bounded wait for ready).
start_gw() {
    NS_GW="${G_NS[$1]}" start_nat64d "$TMP/gw$1.toml" "$TMP/nat64d-gw$1.log" || return 1
    NAT64_PID[$1]=$NAT64D_PID
    NAT64D_PID=
}
# reap_gw I T0: waits (bounded, about 10 s; SIGKILL after that) until gateway I's nat64d is gone
# and reaps it; sets REAPED_MS to the milliseconds since T0 (the signal's time, nanoseconds).
# Not in a command substitution: only this shell can wait for its child.
reap_gw() {
    local pid="${NAT64_PID[$1]}" t0="$2"
    REAPED_MS=
    for _ in $(seq 1 1000); do
        kill -0 "$pid" 2>/dev/null || { REAPED_MS=$((($(date +%s%N) - t0) / 1000000)); break; }
        sleep 0.01
    done
    if [ -z "$REAPED_MS" ]; then
        kill -KILL "$pid" 2>/dev/null
        REAPED_MS="never (ignored the signal for 10 s: killed)"
    fi
    wait "$pid" 2>/dev/null
    NAT64_PID[$1]=
}
for i in 1 2; do
    gw_config "$i"
    if ! start_gw "$i"; then
        echo "FAIL nat64d starts on gw$i: see above"
        FAIL=$((FAIL + 1))
        finish
    fi
done

# --- BIRD: the router and one speaker per gateway ----------------------------------------------
render() { # TEMPLATE OUT NAME=VALUE...
    local tpl="$1" out="$2" args=() kv
    shift 2
    for kv in "$@"; do args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
    sed "${args[@]}" "$tpl" >"$out"
    ! grep -v '^[[:space:]]*#' "$out" | grep -q '@[A-Z0-9_]*@'
}
render deploy/bird/router.conf "$TMP/bird-rtr.conf" ROUTER_ID="${R_V4[1]}" LOCAL_AS=$ROUTER_AS GW_AS=$GW_AS \
    POOL6="${POOL6}/96" GW1_V6="${G_V6[1]}" GW1_V4="${G_V4[1]}" GW1_POOL4="${G_POOL4[1]}" \
    GW2_V6="${G_V6[2]}" GW2_V4="${G_V4[2]}" GW2_POOL4="${G_POOL4[2]}"
rendered=$?
for i in 1 2; do
    render deploy/bird/gateway.conf "$TMP/bird-gw$i.conf" ROUTER_ID="${G_V4[$i]}" LOCAL_AS=$GW_AS \
        PEER_AS=$ROUTER_AS PEER_V6="${R_V6[$i]}" PEER_V4="${R_V4[$i]}" TUN="$TUN_NAME" \
        POOL6="${POOL6}/96" POOL4="${G_POOL4[$i]}" || rendered=1
done
parse_all() {
    local f
    command -v bird >/dev/null 2>&1 || { WHY="bird is not installed (Debian package bird2)"; return 1; }
    for f in "$TMP/bird-rtr.conf" "$TMP/bird-gw1.conf" "$TMP/bird-gw2.conf"; do
        bird -p -c "$f" >"$TMP/parse.out" 2>&1 || { WHY="$(basename "$f"): $(head -n 1 "$TMP/parse.out")"; return 1; }
    done
}
parsed=0
if [ "$rendered" != 0 ]; then
    WHY="a @PLACEHOLDER@ left in a rendered file"
elif parse_all; then
    parsed=1
fi
check "deploy/bird templates render and parse (bird -p)" test "$parsed" = 1
# start_bird NS NAME: bird in the foreground (so that $! is its PID) with its own socket and log.
start_bird() {
    : >"$TMP/bird-$2.log"
    ip netns exec "$1" bird -f -c "$TMP/bird-$2.conf" -s "$TMP/bird-$2.ctl" -P "$TMP/bird-$2.pid" \
        >>"$TMP/bird-$2.log" 2>&1 &
    LAST_PID=$!
}
birdc_in() { # NAME COMMAND...
    local name="$1"
    shift
    birdc -s "$TMP/bird-$name.ctl" "$@"
}
bird_up() { # NAME: bounded wait (5 s) for its control socket to answer
    for _ in $(seq 1 50); do
        birdc_in "$1" show status 2>/dev/null | grep -q 'Daemon is up and running' && return 0
        sleep 0.1
    done
    return 1
}
bird_ok=0
WHY="not started: its configs did not render or parse"
if [ "$parsed" = 1 ]; then
    start_bird "$NS_RTR" rtr
    RTR_BIRD_PID=$LAST_PID
    for i in 1 2; do
        start_bird "${G_NS[$i]}" "gw$i"
        BIRD_PID[i]=$LAST_PID
    done
    bird_ok=1
    for n in rtr gw1 gw2; do
        bird_up "$n" || { bird_ok=0; WHY="bird ($n) did not start: $(tail -n 2 "$TMP/bird-$n.log" | tr '\n' ' ')"; }
    done
fi
check "BIRD runs in the router and both gateway namespaces" test "$bird_ok" = 1
if [ "$bird_ok" != 1 ]; then
    echo "   BIRD is required for this test: it does not skip"
    finish
fi

# --- what the router sees ------------------------------------------------------------------------
hops6() { # the router's next hops for pool6 (0 when no route)
    ip -n "$NS_RTR" -6 route show "${POOL6}/96" 2>/dev/null | grep -c ' via '
}
has4() { # I: 1 when the router has gateway I's pool4 route through it
    ip -n "$NS_RTR" -4 route show "${G_POOL4[$1]}" 2>/dev/null | grep -c " via ${G_V4[$1]} "
}
# wait_until SECONDS COMMAND...: polls every 20 ms; prints the milliseconds it took; fails at the bound.
wait_until() {
    local bound="$1" t0 now
    shift
    t0="$(date +%s%N)"
    while :; do
        if "$@"; then
            now="$(date +%s%N)"
            echo $(((now - t0) / 1000000))
            return 0
        fi
        now="$(date +%s%N)"
        [ $(((now - t0) / 1000000000)) -ge "$bound" ] && { echo ">$((bound * 1000))"; return 1; }
        sleep 0.02
    done
}
routes_are() { # HOPS6 HAS4_GW1 HAS4_GW2
    [ "$(hops6)" = "$1" ] && [ "$(has4 1)" = "$2" ] && [ "$(has4 2)" = "$3" ]
}
ms="$(wait_until 30 routes_are 2 1 1)"
WHY="after $ms ms: $(hops6) next hop(s) for pool6, pool4 routes gw1 $(has4 1) gw2 $(has4 2); $(birdc_in rtr show protocols 2>/dev/null | grep -E 'gw[12]_' | tr -s ' ' | tr '\n' ';')"
check "router: two next hops for pool6 and one route per pool4 (BGP up in ${ms} ms)" routes_are 2 1 1
ip -n "$NS_RTR" -6 route show "${POOL6}/96" | sed 's/^/   /'
ip -n "$NS_RTR" -4 route show proto bird | sed 's/^/   /'

# --- the server and the client ---------------------------------------------------------------------
cat >"$TMP/server.py" <<'PY'
# Line echo: answers each line with the address and port it came from; logs "peer line".
import socketserver, sys, threading
lock = threading.Lock()
log = open(sys.argv[2], "a", buffering=1)
class H(socketserver.StreamRequestHandler):
    def handle(self):
        peer = "%s:%d" % self.client_address[:2]
        for line in self.rfile:
            with lock:
                log.write(peer + " " + line.decode(errors="replace").strip() + "\n")
            self.wfile.write((peer + "\n").encode())
class S(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
S(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
PY
cat >"$TMP/client.py" <<'PY'
# Reads commands on stdin, answers each with one JSON line on stdout:
#   open TAG N   N new TCP flows (source addresses round-robin over 64), each sends "TAG i" and
#                expects the server's "addr:port" line; the answered ones are kept
#   probe TAG    every kept flow of TAG sends "again TAG i": answered (and via which gateway's
#                pool4), reset, timeout or error; a flow that failed is closed and dropped
# A flow belongs to the gateway whose pool4 the server saw in its first answer.
import concurrent.futures as cf, ipaddress, json, socket, sys
srv, port, net, wait = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
pools = {kv.split("=")[0]: ipaddress.ip_network(kv.split("=")[1]) for kv in sys.argv[5:]}
flows = {}
def gw_of(reply):
    try:
        a = ipaddress.ip_address(reply.rsplit(":", 1)[0])
    except ValueError:
        return "other"
    return next((g for g, p in pools.items() if a in p), "other")
def ask(s, msg):
    s.settimeout(wait)
    try:
        s.sendall(msg.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            b = s.recv(256)
            if not b:
                return "reset", None
            data += b
        return "answered", data.decode(errors="replace").strip()
    except socket.timeout:
        return "timeout", None
    except ConnectionResetError:
        return "reset", None
    except OSError:
        return "error", None
def one_open(tag, i):
    src = str(ipaddress.ip_address(net) + 0x100 + i % 64)
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.settimeout(wait)
    try:
        s.bind((src, 0))
        s.connect((srv, port))
    except socket.timeout:
        s.close()
        return i, None, "timeout", None
    except OSError as e:
        s.close()
        return i, None, "connect: " + (e.strerror or str(e)), None
    how, reply = ask(s, "%s %d" % (tag, i))
    if how != "answered":
        s.close()
        return i, None, how, None
    return i, s, how, reply
pool = cf.ThreadPoolExecutor(max_workers=64)
for line in sys.stdin:
    cmd = line.split()
    out = {"cmd": cmd}
    if cmd[0] == "open":
        tag, n = cmd[1], int(cmd[2])
        kept, gws, why, detail = [], {}, {}, []
        for i, s, how, reply in pool.map(lambda i: one_open(tag, i), range(n)):
            if s is None:
                why[how] = why.get(how, 0) + 1
                continue
            g = gw_of(reply)
            gws[g] = gws.get(g, 0) + 1
            kept.append((i, s, g, reply))
            local = s.getsockname()
            detail.append({"i": i, "gw": g, "v4": reply, "v6": "%s %d" % (local[0], local[1])})
        flows[tag] = kept
        out.update(n=n, ok=len(kept), by_gw=gws, failed=why, flows=detail)
    elif cmd[0] == "probe":
        tag = cmd[1]
        res = {}
        def one(f):
            how, reply = ask(f[1], "again %s %d" % (tag, f[0]))
            return f, how, reply
        keep = []
        for f, how, reply in pool.map(one, flows.get(tag, [])):
            r = res.setdefault(f[2], {})
            k = how if how != "answered" else "answered_via_" + gw_of(reply)
            r[k] = r.get(k, 0) + 1
            if how == "answered" and reply == f[3]:
                keep.append(f)
            else:
                f[1].close()
        flows[tag] = keep
        out.update(by_gw=res, still_open=len(keep))
    elif cmd[0] == "quit":
        break
    print(json.dumps(out), flush=True)
PY
ip netns exec "$NS_FSRV" python3 "$TMP/server.py" "$SRV_PORT" "$TMP/server.log" >"$TMP/server.out" 2>&1 &
SRV_PID=$!
mkfifo "$TMP/client.in"
ip netns exec "$NS_FCLI" python3 "$TMP/client.py" "$SRV_AS6" "$SRV_PORT" "$CLI_NET" 3 \
    "gw1=${G_POOL4[1]}" "gw2=${G_POOL4[2]}" <"$TMP/client.in" >"$TMP/client.out" 2>"$TMP/client.err" &
CLIENT_PID=$!
exec 7>"$TMP/client.in"
# client CMD...: sends one command, waits (bounded, 60 s) for its JSON answer and prints it.
client() {
    local have
    have="$(wc -l <"$TMP/client.out")"
    echo "$*" >&7
    for _ in $(seq 1 600); do
        if [ "$(wc -l <"$TMP/client.out")" -gt "$have" ]; then
            tail -n 1 "$TMP/client.out"
            return 0
        fi
        kill -0 "$CLIENT_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo '{"error": "the client did not answer"}'
    tail -n 3 "$TMP/client.err" >&2
    return 1
}
for _ in $(seq 1 50); do
    ip netns exec "$NS_FSRV" python3 -c "import socket; socket.create_connection(('127.0.0.1', $SRV_PORT), 1).close()" 2>/dev/null && break
    sleep 0.1
done
jqr() { echo "$1" | jq -r "$2"; }
# sessions I: gateway I's TCP sessions to the server (its control socket), one "v6addr port
# v4addr:port" line each, sorted.
sessions() {
    ip netns exec "${G_NS[$1]}" "$NAT64D" sessions --socket "$TMP/gw$1.sock" --proto tcp --json 2>/dev/null |
        jq -r ".sessions[] | select(.v4_dst.addr == \"$SRV_ADDR\" and .v4_dst.port == $SRV_PORT) | \"\(.v6_src.addr) \(.v6_src.port) \(.v4_src.addr):\(.v4_src.port)\"" | sort
}
# misrouted TAG OPEN_JSON: server log lines of TAG's flows that came from another address:port
# than the flow's first answer (a packet of the flow translated by another gateway).
misrouted() {
    echo "$2" | jq -r '.flows[] | "\(.i) \(.v4)"' >"$TMP/first.$1"
    awk -v tag="$1" 'NR == FNR { v4[$1] = $2; next }
        ($2 == tag || ($2 == "again" && $3 == tag)) {
            i = ($2 == tag) ? $3 : $4
            if (!(i in v4) && $2 == tag) next
            if (v4[i] != $1) print
        }' "$TMP/first.$1" "$TMP/server.log" | wc -l
}

# --- many flows over both gateways -----------------------------------------------------------------
A="$(client open A "$FLOWS")"
a1="$(jqr "$A" '.by_gw.gw1 // 0')" a2="$(jqr "$A" '.by_gw.gw2 // 0')" aok="$(jqr "$A" '.ok')"
echo "   batch A: $aok of $FLOWS flows answered; via gw1 $a1, via gw2 $a2; failed $(jqr "$A" '.failed | tostring')"
WHY="$aok of $FLOWS answered, $(jqr "$A" '.failed | tostring')"
check "all $FLOWS flows complete (each answered by the server)" test "$aok" = "$FLOWS"
# A gateway with fewer than 5 of 48 flows (MIN_SHARE): about 1.5e-9 with a fair hash.
WHY="gw1 $a1 flows, gw2 $a2 flows (each needs at least $MIN_SHARE)"
check "ECMP spreads the flows: both gateways carry at least $MIN_SHARE" test "$a1" -ge "$MIN_SHARE" -a "$a2" -ge "$MIN_SHARE"
sessions 1 >"$TMP/sess1" && sessions 2 >"$TMP/sess2"
jqr "$A" '.flows[] | select(.gw == "gw1") | "\(.v6) \(.v4)"' | sort >"$TMP/want1"
jqr "$A" '.flows[] | select(.gw == "gw2") | "\(.v6) \(.v4)"' | sort >"$TMP/want2"
echo "   sessions to the server (nat64d sessions): gw1 $(wc -l <"$TMP/sess1"), gw2 $(wc -l <"$TMP/sess2")"
WHY="session tables differ from the flows: $(diff "$TMP/want1" "$TMP/sess1" | grep -c '^[<>]') lines on gw1, $(diff "$TMP/want2" "$TMP/sess2" | grep -c '^[<>]') on gw2"
check "each gateway's session table holds exactly its flows (client address:port, pool4 address:port)" \
    sh -c "cmp -s '$TMP/want1' '$TMP/sess1' && cmp -s '$TMP/want2' '$TMP/sess2' && [ -s '$TMP/want1' ]"

# --- failover: one gateway stops (SIGTERM), then the other dies (SIGKILL) ------------------------
TIMES=()
# failover I SIGNAL TAG OPEN_JSON: stops gateway I (J survives) while TAG's flows are open.
failover() {
    local i="$1" sig="$2" tag="$3" opened="$4" j=$((3 - $1)) r ms t0 pinned surv
    local w1=1 w2=1
    eval "w$i=0"
    echo "-- gw$i: SIG$sig"
    r="$(client probe "$tag")"
    pinned="$(jqr "$r" ".by_gw.gw$i.answered_via_gw$i // 0")"
    surv="$(jqr "$r" ".by_gw.gw$j.answered_via_gw$j // 0")"
    echo "   before: $pinned live flows on gw$i, $surv on gw$j ($(jqr "$r" '.by_gw | tostring'))"
    # Timed from the signal: the route watch starts at once, the exit is reaped after it. The
    # shell's own stderr is closed meanwhile: bash reports a SIGKILLed child ("Killed") there.
    exec 3>&2 2>/dev/null
    t0="$(date +%s%N)"
    kill "-$sig" "${NAT64_PID[$i]}"
    ms="$(wait_until 15 routes_are 1 "$w1" "$w2")"
    reap_gw "$i" "$t0"
    exec 2>&3 3>&-
    TIMES+=("SIG$sig gw$i: the router has one next hop and no route to its pool4 ${ms} ms after the signal")
    echo "   router: one next hop and gw$i's pool4 withdrawn: ${ms} ms after the signal; nat64d reaped at ${REAPED_MS} ms"
    ip -n "$NS_RTR" -6 route show "${POOL6}/96" | sed 's/^/   /'
    WHY="$(hops6) next hop(s), gw$i pool4 route $(has4 "$i"), after $ms ms"
    check "SIG$sig gw$i: within 15 s the router has one next hop (gw$j) and no route to gw$i's pool4" \
        sh -c "[ \"\$(ip -n $NS_RTR -6 route show ${POOL6}/96 | grep -c ' via ${G_V6[$j]} ')\" = 1 ] && [ $(hops6) = 1 ] && [ $(has4 "$i") = 0 ]"
    # The flows of the stopped gateway now reach the survivor, which has no session for them; the
    # server's answers to the gone pool4 have no route.
    r="$(client probe "$tag")"
    local fails own other
    own="$(jqr "$r" ".by_gw.gw$i.answered_via_gw$i // 0")"
    other="$(jqr "$r" ".by_gw.gw$i.answered_via_gw$j // 0")"
    fails="$(jqr "$r" "[.by_gw.gw$i.reset // 0, .by_gw.gw$i.timeout // 0, .by_gw.gw$i.error // 0] | add")"
    echo "   flows of gw$i: $(jqr "$r" ".by_gw.gw$i | tostring"); flows of gw$j: $(jqr "$r" ".by_gw.gw$j | tostring")"
    WHY="of $pinned: $fails failed, $own answered via gw$i's pool4, $other via gw$j's"
    check "SIG$sig gw$i: its $pinned flows fail cleanly (reset or timeout), none is answered" \
        test "$fails" = "$pinned" -a "$pinned" -gt 0
    # Neither at the survivor (no session made from them) nor at the server (no line arrived from
    # another address:port than the flow's own).
    sessions "$j" | awk '{print $1, $2}' >"$TMP/now$j"
    jqr "$opened" ".flows[] | select(.gw == \"gw$i\") | .v6" | sort >"$TMP/pinned$i"
    local at_survivor at_server
    at_survivor="$(comm -12 "$TMP/now$j" "$TMP/pinned$i" | wc -l)"
    at_server="$(misrouted "$tag" "$opened")"
    WHY="$at_survivor of them have a session on gw$j; the server got $at_server lines from a foreign address:port"
    check "SIG$sig gw$i: none of its flows is translated by gw$j or reaches the server through another pool4" \
        test "$at_survivor" = 0 -a "$at_server" = 0 -a -s "$TMP/pinned$i"
    WHY="$(jqr "$r" ".by_gw.gw$j | tostring") of $surv"
    check "SIG$sig gw$i: the survivor's $surv flows go on" \
        test "$(jqr "$r" ".by_gw.gw$j.answered_via_gw$j // 0")" = "$surv" -a "$surv" -gt 0
    r="$(client open "N$tag" "$FLOWS")"
    WHY="$(jqr "$r" '.ok') of $FLOWS answered: $(jqr "$r" '.by_gw | tostring') failed $(jqr "$r" '.failed | tostring')"
    check "SIG$sig gw$i: $FLOWS new flows all succeed, all through gw$j" \
        test "$(jqr "$r" '.ok')" = "$FLOWS" -a "$(jqr "$r" ".by_gw.gw$j // 0")" = "$FLOWS"
    # Back: nat64d starts, its routes come back into the new TUN device, BIRD announces them.
    t0="$(date +%s%N)"
    if start_gw "$i"; then
        local up=$((($(date +%s%N) - t0) / 1000000))
        ms="$(wait_until 30 routes_are 2 1 1)"
        TIMES+=("SIG$sig gw$i: restarted; two next hops again ${ms} ms after nat64d was ready (start took ${up} ms)")
        echo "   gw$i restarted: nat64d ready in ${up} ms, re-announced (two next hops) ${ms} ms later"
    else
        TIMES+=("SIG$sig gw$i: nat64d did not restart")
    fi
    WHY="$(hops6) next hop(s), pool4 routes gw1 $(has4 1) gw2 $(has4 2)"
    check "SIG$sig gw$i: restarted, re-announced within 30 s (two next hops, both pool4 routes)" routes_are 2 1 1
    RESTARTED="$(client open "R$tag" "$FLOWS")"
    WHY="$(jqr "$RESTARTED" '.ok') of $FLOWS answered: $(jqr "$RESTARTED" '.by_gw | tostring')"
    check "SIG$sig gw$i: after the restart $FLOWS new flows all succeed and gw$i carries at least $MIN_SHARE" \
        test "$(jqr "$RESTARTED" '.ok')" = "$FLOWS" -a "$(jqr "$RESTARTED" ".by_gw.gw$i // 0")" -ge "$MIN_SHARE"
    # Not a case: a next hop coming back rehashes ECMP, so some flows that were on the survivor
    # alone move to the restarted gateway, which has no session for them (docs/scaling.md).
    r="$(client probe "N$tag")"
    echo "   after gw$i came back (ECMP rehash, docs/scaling.md), the flows opened through gw$j alone: $(jqr "$r" '.by_gw.gw'"$j"' | tostring')"
}
failover 1 TERM A "$A"
failover 2 KILL RA "$RESTARTED"

# --- a gateway that goes silent: the machine froze or was cut off, BIRD cannot withdraw anything --
# Every packet in gw1's namespace is dropped (nftables, input/forward/output); nat64d and BIRD keep
# running. The router drops gw1 when its BGP hold timer (6 s in deploy/bird) runs out.
echo "-- gw1: silent (nftables drops every packet in its namespace)"
t0="$(date +%s%N)"
ip netns exec "$NS_GW1" nft -f - <<'NFT'
table inet fleet_silent {
    chain drop_input { type filter hook input priority -300; policy drop; }
    chain drop_forward { type filter hook forward priority -300; policy drop; }
    chain drop_output { type filter hook output priority -300; policy drop; }
}
NFT
silenced=$?
withdrawn=0
ms="$(wait_until 15 routes_are 1 0 1)" && withdrawn=1
TIMES+=("silent gw1: the router has one next hop ${ms} ms after the drop rules (BGP hold time 6 s)")
echo "   router: one next hop and gw1's pool4 withdrawn ${ms} ms after the drop rules went in"
WHY="nft exit $silenced; $(hops6) next hop(s), gw1 pool4 route $(has4 1) after ${ms} ms"
check "silent gw1: within 15 s (the 6 s BGP hold time) the router has one next hop and no route to gw1's pool4" \
    sh -c "[ $silenced = 0 ] && [ $(hops6) = 1 ] && [ $(has4 1) = 0 ] && [ $(has4 2) = 1 ]"
r="$(client open S "$FLOWS")"
WHY="$(jqr "$r" '.ok') of $FLOWS answered: $(jqr "$r" '.by_gw | tostring') failed $(jqr "$r" '.failed | tostring')"
check "silent gw1: $FLOWS new flows all succeed, all through gw2" \
    test "$(jqr "$r" '.ok')" = "$FLOWS" -a "$(jqr "$r" '.by_gw.gw2 // 0')" = "$FLOWS"
t0="$(date +%s%N)"
ip netns exec "$NS_GW1" nft delete table inet fleet_silent
ms="$(wait_until 30 routes_are 2 1 1)"
TIMES+=("silent gw1: heard again; two next hops ${ms} ms after the drop rules went (BGP reconnects)")
echo "   gw1 heard again: BGP re-established and re-announced ${ms} ms after the drop rules went"
WHY="withdrawn before: $withdrawn; $(hops6) next hop(s), pool4 routes gw1 $(has4 1) gw2 $(has4 2) after ${ms} ms"
check "silent gw1: heard again, re-announced within 30 s" sh -c "[ $withdrawn = 1 ] && [ $(hops6) = 2 ] && [ $(has4 1) = 1 ] && [ $(has4 2) = 1 ]"

echo "-- measured"
printf '   %s\n' "${TIMES[@]}"
client quit >/dev/null 2>&1
finish
