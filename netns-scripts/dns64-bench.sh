#!/usr/bin/env bash
# DNS64 serving benchmark: `nat64d dns64` (the binary and the shipped configuration users run) vs
# Unbound's dns64 module, same upstream, same machine, same thread count, one run, numbers side
# by side. Everything runs on the loopback of a private network namespace (${NS_PREFIX}dbench,
# refused if it exists): dnsmasq as the IPv4-only upstream (any *.bench name has A 198.51.100.7
# and no AAAA), nat64d on port 5353, Unbound on 5354, dnsperf as the client.
#
# nat64d runs `systemd/nat64d-dns64.toml` with only these lines changed (the diff is printed and
# written to the result file): listen (127.0.0.1:5353), upstreams (the local dnsmasq), prefixes
# (2001:db8:64::/96, a documentation NSP, so the shipped wkp_strict = true still synthesizes the
# documentation address 198.51.100.7; Unbound uses the same prefix), udp_threads (THREADS) and
# rate_limit.qps = 0 (the single bench client sends hundreds of thousands of queries per second
# from one address; the shipped 1000 qps per prefix would drop nearly all of them).
#
# Measured per server, ROUNDS times alternating nat64d / Unbound so slow drifts in the machine's
# load hit both: cached saturation qps (1000 names, warmed, -c 8 -q 100), then latency at half
# the lower of the two medians (the same offered load for both) and at half each one's own
# median, with at most 20 in flight (-c 8 -q 20 -Q rate), and uncached qps (every query a new
# name, so each one costs an AAAA and an A upstream query). Latency on a shared 2-core machine
# swings by 10x from one 5 s run to the next, so it is LAT_ROUNDS (default 8) runs of 2 s per
# server, interleaved, with p50/p99 over every answer of all rounds (each round's p99 is listed
# too). A third `nat64d dns64` with `udp_reuseport = true` (a socket per thread, the kernel
# hashing each client to one: the layout before issue 11's fix) runs the same-load latency rows
# beside them, so the table shows what the shared socket changes. While the saturation runs go, a
# checker asks sample names (cached and new) with dig and compares each AAAA with the expected
# synthesized address; any wrong or missing answer makes the script FAIL.
#
# Coalescing (issue 11): two more `nat64d dns64` (coalesce = true / false) behind a relay that
# holds each upstream query 20 ms run the uncached test and a burst of one uncached name (-c 8
# -q 100, every query the same new name); "upstream queries per client query" is read from
# nat64d's counters (logged at exit).
#
# Output: the table on stdout and, with the raw dnsperf output, the date, load average, command
# line and git revision, in RESULT (default docs/bench/dns64.md), which the README copies.
#
# Usage (root): netns-scripts/dns64-bench.sh [seconds per saturation run, default 10]
# Env: THREADS (both servers, default 2), UNBOUND_THREADS / NAT64D_THREADS (override one side),
# ROUNDS (default 3), RESULT (output file), SERVERS (default "nat64d unbound").
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
for t in dnsperf unbound dnsmasq dig; do
    command -v "$t" >/dev/null || { apt-get update -qq && apt-get install -y -qq dnsperf unbound dnsmasq-base dnsutils >/dev/null; break; }
done

CMDLINE="$0 $*"
LOAD0=$(cut -d" " -f1-3 /proc/loadavg)
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
ROUNDS=${ROUNDS:-3}
RESULT=${RESULT:-docs/bench/dns64.md}
SHIPPED=systemd/nat64d-dns64.toml
NSP=2001:db8:64::
WANT="${NSP}c633:6407"          # 198.51.100.7 under 2001:db8:64::/96
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

cargo build --quiet --release --bin nat64d
BIN=$NAT64D

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

# The shipped file with the bench's lines replaced; a key the file lacks is an error (the
# shipped file changed: fix this script rather than bench something else).
nat64d_conf() { # port, upstream port, coalesce, udp_reuseport
    local k
    for k in '^listen = ' '^upstreams = ' '^prefixes = ' '^udp_threads = ' '^coalesce = ' '^qps = '; do
        grep -q "$k" "$SHIPPED" || { echo "dns64-bench: $SHIPPED has no line $k" >&2; exit 1; }
    done
    sed -e "s|^listen = .*|listen = [\"127.0.0.1:$1\"]|" \
        -e "s|^upstreams = .*|upstreams = [\"127.0.0.1:$2\"]|" \
        -e "s|^prefixes = .*|prefixes = [\"$NSP/96\"]|" \
        -e "s|^udp_threads = .*|udp_threads = $NAT64D_THREADS\nudp_reuseport = $4|" \
        -e "s|^coalesce = .*|coalesce = $3|" \
        -e "s|^qps = .*|qps = 0|" \
        -e "s|^level = .*|level = \"warn,nat64d::dns64::service=info\"|" "$SHIPPED"
}
nat64d_conf 5353 5300 true false > "$TMP/dns64.toml"
nat64d_conf 5355 5301 false false > "$TMP/nocoal.toml"
nat64d_conf 5356 5301 true false > "$TMP/coal.toml"
nat64d_conf 5357 5300 true true > "$TMP/reuseport.toml"
"$BIN" check-config "$TMP/dns64.toml" >/dev/null
CONF_DIFF=$(diff "$SHIPPED" "$TMP/dns64.toml" || true)
start_nat64d() { # name
    $X "$BIN" dns64 --config "$TMP/$1.toml" >"$TMP/$1.out" 2>&1 &
}
start_nat64d dns64; PIDS+=($!)
start_nat64d nocoal; NOCOAL_PID=$!; PIDS+=($!)
start_nat64d coal; COAL_PID=$!; PIDS+=($!)
start_nat64d reuseport; PIDS+=($!)

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
    dns64-prefix: $NSP/96
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

for port in 5353 5354 5355 5356 5357; do
    ok=0
    for _ in $(seq 100); do
        if $X dig +time=1 +tries=1 @127.0.0.1 -p $port AAAA probe.bench +short 2>/dev/null | grep -qx "$WANT"; then
            ok=1; break
        fi
        sleep 0.1
    done
    [ "$ok" = 1 ] || { echo "dns64-bench: FAIL: port $port never answered probe.bench with $WANT" >&2; exit 1; }
done

for i in $(seq 0 999); do echo "h$i.bench AAAA"; done > "$TMP/cached.txt"

# Samples during a saturation run: cached names and new ones; every answer must be exactly $WANT.
checker() { # port, label -> appends "ok" / "BAD name: answer" lines to $TMP/check.$2
    local i n ans
    for i in $(seq 1 20); do
        for n in "h$((i * 37 % 1000)).bench" "chk$i.$2.$RANDOM.bench"; do
            ans=$($X dig +time=2 +tries=2 +short @127.0.0.1 -p "$1" AAAA "$n" 2>&1 | paste -sd, -)
            if [ "$ans" = "$WANT" ]; then echo ok; else echo "BAD $n: '$ans'"; fi
        done
        sleep 0.2
    done >> "$TMP/check.$2"
}

qps() { awk '/Queries per second/ {print int($4)}'; }
lost() { awk '/Queries lost/ {print $3}'; }
median() { sort -n | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]}'; }
RAW="$TMP/raw.txt"
raw() { printf '\n### %s\n' "$1" >> "$RAW"; cat >> "$RAW"; }
declare -A R
SERVER_LIST=${SERVERS:-nat64d unbound}
port_of() { case $1 in nat64d) echo 5353 ;; unbound) echo 5354 ;; nat64d-rp) echo 5357 ;; *) echo "unknown server $1" >&2; exit 1 ;; esac; }
LAT_LIST="$SERVER_LIST"
case " $SERVER_LIST " in *" nat64d "*) LAT_LIST="$SERVER_LIST nat64d-rp" ;; esac
for name in $LAT_LIST; do
    $X dnsperf -s 127.0.0.1 -p "$(port_of "$name")" -d "$TMP/cached.txt" -n 1 -c 8 >/dev/null 2>&1
done
for r in $(seq 1 "$ROUNDS"); do
    for name in $SERVER_LIST; do
        port=$(port_of "$name")
        checker "$port" "$name" & CHK=$!
        out=$($X dnsperf -s 127.0.0.1 -p "$port" -d "$TMP/cached.txt" -c 8 -q 100 -l "$SECS" 2>&1)
        wait "$CHK"
        raw "cached saturation, $name, round $r" <<<"$out"
        R[$name.cached.$r]=$(qps <<<"$out")
        R[$name.cached_lost.$r]=$(lost <<<"$out")
    done
done
for name in $SERVER_LIST; do
    port=$(port_of "$name")
    R[$name.cached]=$(for r in $(seq 1 "$ROUNDS"); do echo "${R[$name.cached.$r]}"; done | median)
    R[$name.cached_all]=$(for r in $(seq 1 "$ROUNDS"); do echo "${R[$name.cached.$r]}"; done | paste -sd/ -)
done
# Latency: every server at the same rate, half the lower median (so the rows compare like for
# like), and nat64d and Unbound also each at half its own saturation; LAT_ROUNDS interleaved
# rounds of 2 s, every answer's latency pooled.
low=$(for name in $SERVER_LIST; do echo "${R[$name.cached]}"; done | sort -n | head -1)
LAT_ROUNDS=${LAT_ROUNDS:-8}
pct() { awk -v q="$1" '{v[NR] = $1} END {if (NR) printf "%.3f", v[int(NR * q) + 1] * 1000}' "$2"; }
for r in $(seq 1 "$LAT_ROUNDS"); do
    for name in $LAT_LIST; do
        port=$(port_of "$name")
        for kind in common own; do
            if [ "$kind" = common ]; then half=$((low / 2)); else half=$(( ${R[$name.cached]:-0} / 2 )); fi
            [ "$kind" = own ] && [ "$name" = nat64d-rp ] && continue
            R[$name.$kind.half]=$half
            $X dnsperf -s 127.0.0.1 -p "$port" -d "$TMP/cached.txt" -c 8 -q 20 -Q "$half" -l 2 -v 2>/dev/null \
                > "$TMP/lat.out" || true
            awk '/^> NOERROR/ {print $NF}' "$TMP/lat.out" | sort -g > "$TMP/lat.$name.$kind.$r"
            grep -v '^> ' "$TMP/lat.out" | raw "latency, $name, $half qps ($kind), round $r"
            R[$name.$kind.p99s]="${R[$name.$kind.p99s]:+${R[$name.$kind.p99s]}/}$(pct 0.99 "$TMP/lat.$name.$kind.$r")"
        done
    done
done
for name in $LAT_LIST; do
    for kind in common own; do
        [ -e "$TMP/lat.$name.$kind.1" ] || continue
        sort -g "$TMP/lat.$name.$kind."* > "$TMP/lat.all"
        R[$name.$kind.n]=$(wc -l < "$TMP/lat.all")
        R[$name.$kind.p50]=$(pct 0.50 "$TMP/lat.all")
        R[$name.$kind.p99]=$(pct 0.99 "$TMP/lat.all")
        R[$name.$kind.p999]=$(pct 0.999 "$TMP/lat.all")
    done
done
for name in $SERVER_LIST; do
    port=$(port_of "$name")
    for i in $(seq 1 50000); do echo "u$i.$name.bench AAAA"; done > "$TMP/uncached.txt"
    checker "$port" "$name-unc" & CHK=$!
    out=$($X dnsperf -s 127.0.0.1 -p "$port" -d "$TMP/uncached.txt" -n 1 -c 8 -q 100 2>&1)
    wait "$CHK"
    raw "uncached, $name" <<<"$out"
    R[$name.uncached]=$(qps <<<"$out")
    R[$name.uncached_lost]=$(lost <<<"$out")
done

# Coalescing, before/after in this run: the same uncached test and a burst of one new name
# (every query asks it) against two fresh nat64d whose upstream is 20 ms away, with and without
# coalescing (the probe query of the start-up wait counts too).
coal() { # label, port
    local P="$X dnsperf -s 127.0.0.1 -p $2" out
    for i in $(seq 1 10000); do echo "c$i.$1.bench AAAA"; done > "$TMP/unc.$1.txt"
    out=$($P -d "$TMP/unc.$1.txt" -n 1 -c 8 -q 100 2>&1)
    raw "coalescing uncached, $1" <<<"$out"
    R[$1.uncached]=$(qps <<<"$out")
    for i in $(seq 1 20000); do echo "burst.$1.bench AAAA"; done > "$TMP/burst.$1.txt"
    out=$($P -d "$TMP/burst.$1.txt" -n 1 -c 8 -q 100 2>&1)
    raw "coalescing burst, $1" <<<"$out"
    R[$1.burst]=$(qps <<<"$out")
}
# "queries upstream_queries coalesced cache_hits" from the counters nat64d logs at exit
# ("dns64 stopped; counters: k=v k=v ...").
counters() {
    local k
    for k in queries upstream_queries coalesced cache_hits; do
        grep -o "[[:space:]]$k=[0-9]*" "$1" | tail -1 | cut -d= -f2 | awk '{v = $1} END {print v + 0}'
    done | paste -sd' '
}
coal coal 5356
coal nocoal 5355
# Stop both here (a `wait` inside $(...) would not wait: the subshell is not the parent).
for p in "$COAL_PID" "$NOCOAL_PID"; do kill -TERM "$p"; wait "$p" 2>/dev/null || true; done
read -r q_on up_on co_on hit_on <<<"$(counters "$TMP/coal.out")"
read -r q_off up_off co_off hit_off <<<"$(counters "$TMP/nocoal.out")"
[ "$q_on" -gt 0 ] && [ "$q_off" -gt 0 ] || { echo "dns64-bench: FAIL: no counters in the nat64d logs" >&2; exit 1; }

checks=$(cat "$TMP"/check.* | grep -c '^ok' || true)
bad=$(cat "$TMP"/check.* | grep '^BAD' || true)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b }'; }
table() {
    printf '| | nat64d dns64, %s threads | Unbound %s, %s threads | ratio |\n' "$NAT64D_THREADS" \
        "$(unbound -V 2>/dev/null | awk '/^Version/ {print $2}')" "$UNBOUND_THREADS"
    printf '|---|---|---|---|\n'
    printf '| cached qps, median of %s (`-c 8 -q 100`, %s s each) | %s | %s | %s |\n' "$ROUNDS" "$SECS" \
        "${R[nat64d.cached]:-}" "${R[unbound.cached]:-}" "$(ratio "${R[nat64d.cached]:-0}" "${R[unbound.cached]:-0}")"
    printf '| &nbsp;&nbsp;each round | %s | %s | |\n' "${R[nat64d.cached_all]:-}" "${R[unbound.cached_all]:-}"
    printf '| p50 / p99 / p99.9 ms at %s qps, both (`-c 8 -q 20`, %s rounds of 2 s pooled) | %s / %s / %s | %s / %s / %s | p99 %s |\n' \
        "$((low / 2))" "$LAT_ROUNDS" \
        "${R[nat64d.common.p50]:-}" "${R[nat64d.common.p99]:-}" "${R[nat64d.common.p999]:-}" \
        "${R[unbound.common.p50]:-}" "${R[unbound.common.p99]:-}" "${R[unbound.common.p999]:-}" \
        "$(ratio "${R[nat64d.common.p99]:-0}" "${R[unbound.common.p99]:-0}")"
    printf '| &nbsp;&nbsp;p99 ms of each round | %s | %s | |\n' "${R[nat64d.common.p99s]:-}" "${R[unbound.common.p99s]:-}"
    printf '| p50 / p99 / p99.9 ms at half its own rate (%s / %s qps) | %s / %s / %s | %s / %s / %s | p99 %s |\n' \
        "${R[nat64d.own.half]:-}" "${R[unbound.own.half]:-}" \
        "${R[nat64d.own.p50]:-}" "${R[nat64d.own.p99]:-}" "${R[nat64d.own.p999]:-}" \
        "${R[unbound.own.p50]:-}" "${R[unbound.own.p99]:-}" "${R[unbound.own.p999]:-}" \
        "$(ratio "${R[nat64d.own.p99]:-0}" "${R[unbound.own.p99]:-0}")"
    printf '| uncached qps (50k new names, upstream on loopback) | %s | %s | %s |\n' \
        "${R[nat64d.uncached]:-}" "${R[unbound.uncached]:-}" "$(ratio "${R[nat64d.uncached]:-0}" "${R[unbound.uncached]:-0}")"
    printf '\nThe UDP socket layout (issue 11), same run, same rate as above (%s qps), rounds interleaved with the rows above:\n\n' "$((low / 2))"
    printf '| | nat64d, threads share one socket (shipped) | nat64d, `udp_reuseport = true` | Unbound, `so-reuseport: yes` |\n|---|---|---|---|\n'
    printf '| p50 / p99 / p99.9 ms | %s / %s / %s | %s / %s / %s | %s / %s / %s |\n' \
        "${R[nat64d.common.p50]:-}" "${R[nat64d.common.p99]:-}" "${R[nat64d.common.p999]:-}" \
        "${R[nat64d-rp.common.p50]:-}" "${R[nat64d-rp.common.p99]:-}" "${R[nat64d-rp.common.p999]:-}" \
        "${R[unbound.common.p50]:-}" "${R[unbound.common.p99]:-}" "${R[unbound.common.p999]:-}"
    printf '| p99 ms of each round | %s | %s | %s |\n' "${R[nat64d.common.p99s]:-}" "${R[nat64d-rp.common.p99s]:-}" "${R[unbound.common.p99s]:-}"
    printf '| p99 / p99 of the shipped layout | 1.00 | %s | %s |\n' \
        "$(ratio "${R[nat64d-rp.common.p99]:-0}" "${R[nat64d.common.p99]:-0}")" "$(ratio "${R[unbound.common.p99]:-0}" "${R[nat64d.common.p99]:-0}")"
    printf '\nCoalescing of identical misses (two more `nat64d dns64`, upstream 20 ms away, same run):\n\n'
    printf '| | coalesce = true (shipped) | coalesce = false | ratio |\n|---|---|---|---|\n'
    printf '| uncached qps (10k new names) | %s | %s | %s |\n' "${R[coal.uncached]}" "${R[nocoal.uncached]}" \
        "$(ratio "${R[coal.uncached]}" "${R[nocoal.uncached]}")"
    printf '| burst of one uncached name, qps (20k queries) | %s | %s | %s |\n' "${R[coal.burst]}" "${R[nocoal.burst]}" \
        "$(ratio "${R[coal.burst]}" "${R[nocoal.burst]}")"
    printf '| upstream queries per client query | %s | %s | |\n' \
        "$(awk -v u="$up_on" -v q="$q_on" 'BEGIN{ printf "%.3f", u / q }')" \
        "$(awk -v u="$up_off" -v q="$q_off" 'BEGIN{ printf "%.3f", u / q }')"
    printf '| client queries / upstream queries / coalesced | %s / %s / %s | %s / %s / %s | |\n' \
        "$q_on" "$up_on" "$co_on" "$q_off" "$up_off" "$co_off"
    printf '\nAnswers checked during the runs (dig, cached and new names, expected %s): %s right, %s wrong.\n' \
        "$WANT" "$checks" "$(grep -c . <<<"$bad" || true)"
}
{
    printf '# DNS64 bench: nat64d dns64 vs Unbound (written by netns-scripts/dns64-bench.sh)\n\n'
    printf -- '- date: %s\n- command: `%s` (THREADS=%s ROUNDS=%s)\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" "$CMDLINE" "$THREADS" "$ROUNDS"
    printf -- '- load average before / after: %s / %s\n' "$LOAD0" "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf -- '- machine: %s cores shared by the servers, dnsperf and dnsmasq; git %s\n' "$(nproc)" "$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    printf -- '- nat64d: `nat64d dns64 --config` %s with these changes:\n\n```diff\n%s\n```\n\n' "$SHIPPED" "$CONF_DIFF"
    printf -- '- Unbound: `unbound -d -c` this file:\n\n```\n%s\n```\n\n' "$(sed "s|$TMP|TMPDIR|g" "$TMP/unbound.conf")"
    table
    printf '\n<details><summary>raw dnsperf output</summary>\n\n```\n'
    cat "$RAW"
    printf '```\n</details>\n'
} > "$TMP/result.md"
mkdir -p "$(dirname "$RESULT")"
cp "$TMP/result.md" "$RESULT"
echo
table
echo
echo "written: $RESULT"
if [ -n "$bad" ]; then
    echo "dns64-bench: FAIL: wrong answers during the run:" >&2
    echo "$bad" >&2
    exit 1
fi
