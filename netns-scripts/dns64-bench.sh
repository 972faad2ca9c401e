#!/usr/bin/env bash
# DNS64 serving benchmark: nat64d's DNS64 vs Unbound's dns64 module, same upstream, same machine,
# one run, numbers printed side by side. Everything runs on the loopback of a private network
# namespace (${NS_PREFIX}dbench, refused if it exists): dnsmasq as the IPv4-only upstream (any *.bench name has A
# 198.51.100.7 and no AAAA), nat64d on port 5353, Unbound on 5354, dnsperf as the client.
#
# Measured per server: cached saturation qps (1000 names, warmed, -c 8 -q 100), latency p50/p99
# at half that rate with at most 20 in flight (-c 8 -q 20 -Q half), and uncached qps (every query
# a new name, so each one costs an AAAA and an A upstream query).
#
# Coalescing (issue 11): a second nat64d with `coalesce = false` runs the uncached test and a
# burst of one uncached name (-c 8 -q 100, every query the same new name), so before/after come
# from the same run; its "upstream queries per client query" is read from nat64d's counters.
#
# Usage (root): netns-scripts/dns64-bench.sh [seconds per saturation run, default 10]
# Env: THREADS (both servers, default 2), UNBOUND_THREADS / NAT64D_THREADS (override one side),
# NAT64D_BATCH (datagrams per recvmmsg, default 32), SERVERS (default "nat64d unbound").
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
for t in dnsperf unbound dnsmasq dig; do
    command -v "$t" >/dev/null || { apt-get update -qq && apt-get install -y -qq dnsperf unbound dnsmasq-base dnsutils >/dev/null; break; }
done

SECS=${1:-10}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
NS="${NS_PREFIX}dbench"
if ip netns list | grep -qw -- "$NS"; then
    echo "dns64-bench: namespace $NS exists: refusing to start" >&2
    exit 1
fi
THREADS=${THREADS:-2}
UNBOUND_THREADS=${UNBOUND_THREADS:-$THREADS}
NAT64D_THREADS=${NAT64D_THREADS:-$THREADS}
TMP=$(mktemp -d "/tmp/$NS.XXXXXX")
MADE_NS=0
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    [ "$MADE_NS" = 1 ] && ip netns del "$NS" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

cargo build --quiet --release --example dns64
BIN=target/release/examples/dns64

ip netns add "$NS"; MADE_NS=1
ip -n "$NS" link set lo up
X="ip netns exec $NS"

$X dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces --listen-address=127.0.0.1 \
    -p 5300 --address=/bench/198.51.100.7 --local=/bench/ --local-ttl=3600 --cache-size=0 \
    --dns-forward-max=1000 --pid-file="$TMP/dnsmasq.pid" --log-facility="$TMP/dnsmasq.log" &
PIDS+=($!)

# For the coalescing rows: a UDP proxy in front of dnsmasq that holds each query 20 ms (an
# upstream as far away as a real recursive resolver; loopback answers before a second identical
# miss arrives). No netem here, so a small asyncio relay, keyed by DNS ID.
cat > "$TMP/delay.py" <<'PY'
import asyncio, sys
DELAY = 0.020
class Relay(asyncio.DatagramProtocol):
    def __init__(self):
        self.pending = {}
    def connection_made(self, t):
        self.t = t
    def datagram_received(self, data, addr):
        if addr == ("127.0.0.1", 5300):
            who = self.pending.pop(data[:2], None)
            if who:
                self.t.sendto(data, who)
        else:
            self.pending[data[:2]] = addr
            asyncio.get_running_loop().call_later(DELAY, self.t.sendto, data, ("127.0.0.1", 5300))
async def main():
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(Relay, local_addr=("127.0.0.1", 5301))
    await asyncio.Event().wait()
asyncio.run(main())
PY
$X python3 "$TMP/delay.py" >"$TMP/delay.log" 2>&1 &
PIDS+=($!)

nat64d_conf() { # port, coalesce, upstream port
    cat <<TOML
[dns64]
listen = ["127.0.0.1:$1"]
upstreams = ["127.0.0.1:${3:-5300}"]
prefixes = ["64:ff9b::/96"]
wkp_strict = false
allow = ["127.0.0.0/8"]
cache_size = 1000000
udp_threads = ${NAT64D_THREADS}
udp_batch = ${NAT64D_BATCH:-32}
max_inflight = 10000
coalesce = $2
[dns64.rate_limit]
qps = 0
TOML
}
nat64d_conf 5353 true > "$TMP/dns64.toml"
nat64d_conf 5355 false 5301 > "$TMP/nocoal.toml"
nat64d_conf 5356 true 5301 > "$TMP/coal.toml"
RUST_LOG=warn,nat64d=info $X "$BIN" "$TMP/dns64.toml" >"$TMP/dns64.out" 2>&1 &
NAT64D_PID=$!
PIDS+=($NAT64D_PID)
RUST_LOG=warn,nat64d=info $X "$BIN" "$TMP/nocoal.toml" >"$TMP/nocoal.out" 2>&1 &
NOCOAL_PID=$!
PIDS+=($NOCOAL_PID)
RUST_LOG=warn,nat64d=info $X "$BIN" "$TMP/coal.toml" >"$TMP/coal.out" 2>&1 &
COAL_PID=$!
PIDS+=($COAL_PID)

cat > "$TMP/unbound.conf" <<CONF
server:
    interface: 127.0.0.1@5354
    port: 5354
    num-threads: ${UNBOUND_THREADS}
    so-reuseport: yes
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    username: ""
    chroot: ""
    directory: "$TMP"
    pidfile: "$TMP/unbound.pid"
    use-syslog: no
    verbosity: 0
    module-config: "dns64 iterator"
    dns64-prefix: 64:ff9b::/96
    msg-cache-size: 64m
    rrset-cache-size: 128m
    qname-minimisation: no
    num-queries-per-thread: 4096
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@5300
CONF
$X unbound -d -c "$TMP/unbound.conf" >"$TMP/unbound.out" 2>&1 &
PIDS+=($!)

for port in 5353 5354 5355 5356; do
    for _ in $(seq 100); do
        $X dig +time=1 +tries=1 @127.0.0.1 -p $port AAAA probe.bench +short 2>/dev/null | grep -q 64:ff9b && break
        sleep 0.1
    done
done

for i in $(seq 0 999); do echo "h$i.bench AAAA"; done > "$TMP/cached.txt"

qps() { awk '/Queries per second/ {print int($4)}'; }
lost() { awk '/Queries lost/ {print $3}'; }
declare -A R
for name in ${SERVERS:-nat64d unbound}; do
    case $name in nat64d) port=5353 ;; unbound) port=5354 ;; *) echo "unknown server $name" >&2; exit 1 ;; esac
    P="$X dnsperf -s 127.0.0.1 -p $port"
    # Check the answers are synthesized.
    R[$name.check]=$($X dig +short @127.0.0.1 -p "$port" AAAA h1.bench)
    $P -d "$TMP/cached.txt" -n 1 -c 8 >/dev/null 2>&1
    out=$($P -d "$TMP/cached.txt" -c 8 -q 100 -l "$SECS" 2>&1)
    R[$name.cached]=$(qps <<<"$out")
    R[$name.cached_lost]=$(lost <<<"$out")
    half=$(( R[$name.cached] / 2 ))
    $P -d "$TMP/cached.txt" -c 8 -q 20 -Q "$half" -l 5 -v 2>/dev/null \
        | awk '/^> NOERROR/ {print $NF}' | sort -g > "$TMP/lat.txt"
    n=$(wc -l < "$TMP/lat.txt")
    R[$name.p50]=$(awk -v n="$n" 'NR==int(n*0.50)+1 {printf "%.3f", $1*1000}' "$TMP/lat.txt")
    R[$name.p99]=$(awk -v n="$n" 'NR==int(n*0.99)+1 {printf "%.3f", $1*1000}' "$TMP/lat.txt")
    R[$name.half]=$half
    for i in $(seq 1 50000); do echo "u$i.$name.bench AAAA"; done > "$TMP/uncached.txt"
    out=$($P -d "$TMP/uncached.txt" -n 1 -c 8 -q 100 2>&1)
    R[$name.uncached]=$(qps <<<"$out")
    R[$name.uncached_lost]=$(lost <<<"$out")
done

# Coalescing, before/after in this run: the same uncached test and a burst of one new name
# (every query asks it) against two fresh nat64d instances whose upstream is 20 ms away, with and without coalescing (the
# probe query of the start-up wait counts too).
coal() { # label, port
    local P="$X dnsperf -s 127.0.0.1 -p $2" out
    for i in $(seq 1 10000); do echo "c$i.$1.bench AAAA"; done > "$TMP/unc.$1.txt"
    out=$($P -d "$TMP/unc.$1.txt" -n 1 -c 8 -q 100 2>&1)
    R[$1.uncached]=$(qps <<<"$out")
    for i in $(seq 1 20000); do echo "burst.$1.bench AAAA"; done > "$TMP/burst.$1.txt"
    out=$($P -d "$TMP/burst.$1.txt" -n 1 -c 8 -q 100 2>&1)
    R[$1.burst]=$(qps <<<"$out")
}
counters() { # log -> "queries upstream_queries coalesced cache_hits" (the example
    # prints one "label value" line per non-zero counter at exit)
    local k
    for k in queries upstream_queries coalesced cache_hits; do
        awk -v k="$k" '$1 == k {v = $2} END {print v + 0}' "$1"
    done | paste -sd' '
}
coal coal 5356
coal nocoal 5355
# Stop both here (a `wait` inside $(...) would not wait: the subshell is not the parent).
for p in "$COAL_PID" "$NOCOAL_PID"; do kill -TERM "$p"; wait "$p" 2>/dev/null || true; done
read -r q_on up_on co_on hit_on <<<"$(counters "$TMP/coal.out")"
read -r q_off up_off co_off hit_off <<<"$(counters "$TMP/nocoal.out")"

printf '\nDNS64 on loopback (%s cores shared by server, dnsperf and dnsmasq)\n' "$(nproc)"
printf 'config: nat64d udp_threads=%s udp_batch=%s; unbound num-threads=%s (THREADS=%s)\n' \
    "$NAT64D_THREADS" "${NAT64D_BATCH:-32}" "$UNBOUND_THREADS" "$THREADS"
printf '%-44s %14s %14s\n' "" "nat64d ${NAT64D_THREADS}t" "unbound ${UNBOUND_THREADS}t"
printf '%-44s %14s %14s\n' "answer for h1.bench AAAA" "${R[nat64d.check]:-}" "${R[unbound.check]:-}"
printf '%-44s %14s %14s\n' "cached qps (-c 8 -q 100, ${SECS}s)" "${R[nat64d.cached]:-}" "${R[unbound.cached]:-}"
printf '%-44s %14s %14s\n' "  lost" "${R[nat64d.cached_lost]:-}" "${R[unbound.cached_lost]:-}"
printf '%-44s %14s %14s\n' "p50 ms at half rate (-c 8 -q 20 -Q half)" "${R[nat64d.p50]:-}" "${R[unbound.p50]:-}"
printf '%-44s %14s %14s\n' "p99 ms at half rate" "${R[nat64d.p99]:-}" "${R[unbound.p99]:-}"
printf '%-44s %14s %14s\n' "  (half rate, qps)" "${R[nat64d.half]:-}" "${R[unbound.half]:-}"
printf '%-44s %14s %14s\n' "uncached qps (50k new names)" "${R[nat64d.uncached]:-}" "${R[unbound.uncached]:-}"
printf '%-44s %14s %14s\n' "  lost" "${R[nat64d.uncached_lost]:-}" "${R[unbound.uncached_lost]:-}"
awk -v a="${R[nat64d.cached]:-}" -v b="${R[unbound.cached]:-}" 'BEGIN { if (a > 0 && b > 0) printf "cached qps ratio nat64d/unbound: %.2f\n", a / b }'
printf '\nCoalescing of identical misses (nat64d, same run)\n'
printf '%-44s %14s %14s\n' "" "coalesce on" "coalesce off"
printf '(upstream 20 ms away: a relay holds each query)\n'
printf '%-44s %14s %14s\n' "uncached qps (10k new names)" "${R[coal.uncached]:-}" "${R[nocoal.uncached]:-}"
printf '%-44s %14s %14s\n' "burst of one uncached name, qps (20k)" "${R[coal.burst]:-}" "${R[nocoal.burst]:-}"
printf '%-44s %14s %14s\n' "upstream queries / client query" \
    "$(awk -v u="$up_on" -v q="$q_on" 'BEGIN{ if (q > 0) printf "%.3f", u / q }')" \
    "$(awk -v u="$up_off" -v q="$q_off" 'BEGIN{ if (q > 0) printf "%.3f", u / q }')"
printf '%-44s %14s %14s\n' "  client queries / upstream queries / coalesced" "$q_on/$up_on/$co_on" "$q_off/$up_off/$co_off"
