#!/usr/bin/env bash
# DNS64 serving benchmark: nat64d's DNS64 vs Unbound's dns64 module, same upstream, same machine,
# one run, numbers printed side by side. Everything runs on the loopback of a private network
# namespace (n64dns-bench): dnsmasq as the IPv4-only upstream (any *.bench name has A
# 198.51.100.7 and no AAAA), nat64d on port 5353, Unbound on 5354, dnsperf as the client.
#
# Measured per server: cached saturation qps (1000 names, warmed, -c 8 -q 100), latency p50/p99
# at half that rate with at most 20 in flight (-c 8 -q 20 -Q half), and uncached qps (every query
# a new name, so each one costs an AAAA and an A upstream query).
#
# Usage (root): netns-scripts/dns64-bench.sh [seconds per saturation run, default 10]
# Env: UNBOUND_THREADS (default 1), NAT64D_THREADS (UDP threads, default 2), NAT64D_BATCH
# (datagrams per recvmmsg, default 32), SERVERS (default "nat64d unbound").
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
for t in dnsperf unbound dnsmasq dig; do
    command -v "$t" >/dev/null || { apt-get update -qq && apt-get install -y -qq dnsperf unbound dnsmasq-base dnsutils >/dev/null; break; }
done

SECS=${1:-10}
NS=n64dns-bench
TMP=$(mktemp -d /tmp/$NS.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    ip netns del $NS 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

cargo build --quiet --release --example dns64
BIN=target/release/examples/dns64

ip netns add $NS
ip -n $NS link set lo up
X="ip netns exec $NS"

$X dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces --listen-address=127.0.0.1 \
    -p 5300 --address=/bench/198.51.100.7 --local=/bench/ --local-ttl=3600 --cache-size=0 \
    --dns-forward-max=1000 --pid-file="$TMP/dnsmasq.pid" --log-facility="$TMP/dnsmasq.log" &
PIDS+=($!)

cat > "$TMP/dns64.toml" <<TOML
[dns64]
listen = ["127.0.0.1:5353"]
upstreams = ["127.0.0.1:5300"]
prefixes = ["64:ff9b::/96"]
wkp_strict = false
allow = ["127.0.0.0/8"]
cache_size = 1000000
udp_threads = ${NAT64D_THREADS:-2}
udp_batch = ${NAT64D_BATCH:-32}
max_inflight = 10000
[dns64.rate_limit]
qps = 0
TOML
RUST_LOG=warn $X "$BIN" "$TMP/dns64.toml" >"$TMP/dns64.out" 2>&1 &
PIDS+=($!)

cat > "$TMP/unbound.conf" <<CONF
server:
    interface: 127.0.0.1@5354
    port: 5354
    num-threads: ${UNBOUND_THREADS:-1}
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

for port in 5353 5354; do
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

printf '\nDNS64 on loopback (%s cores shared by server, dnsperf and dnsmasq)\n' "$(nproc)"
printf '%-44s %14s %14s\n' "" "nat64d" "unbound ${UNBOUND_THREADS:-1}t"
printf '%-44s %14s %14s\n' "answer for h1.bench AAAA" "${R[nat64d.check]:-}" "${R[unbound.check]:-}"
printf '%-44s %14s %14s\n' "cached qps (-c 8 -q 100, ${SECS}s)" "${R[nat64d.cached]:-}" "${R[unbound.cached]:-}"
printf '%-44s %14s %14s\n' "  lost" "${R[nat64d.cached_lost]:-}" "${R[unbound.cached_lost]:-}"
printf '%-44s %14s %14s\n' "p50 ms at half rate (-c 8 -q 20 -Q half)" "${R[nat64d.p50]:-}" "${R[unbound.p50]:-}"
printf '%-44s %14s %14s\n' "p99 ms at half rate" "${R[nat64d.p99]:-}" "${R[unbound.p99]:-}"
printf '%-44s %14s %14s\n' "  (half rate, qps)" "${R[nat64d.half]:-}" "${R[unbound.half]:-}"
printf '%-44s %14s %14s\n' "uncached qps (50k new names)" "${R[nat64d.uncached]:-}" "${R[unbound.uncached]:-}"
printf '%-44s %14s %14s\n' "  lost" "${R[nat64d.uncached_lost]:-}" "${R[unbound.uncached_lost]:-}"
awk -v a="${R[nat64d.cached]:-}" -v b="${R[unbound.cached]:-}" 'BEGIN { if (b > 0) printf "cached qps ratio nat64d/unbound: %.2f\n", a / b }'
echo "nat64d counters:"; kill -TERM "${PIDS[1]}"; wait "${PIDS[1]}" 2>/dev/null || true; sed 's/^/    /' "$TMP/dns64.out"
