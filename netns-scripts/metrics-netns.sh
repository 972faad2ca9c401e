#!/usr/bin/env bash
# metrics-netns.sh: nat64d's Prometheus endpoint and control commands, with a REAL Prometheus
# (Debian `prometheus`, installed when missing) on loopback inside the gateway namespace, with its
# own data dir under a prefix-named temp dir. Cases (`check` lines, counted by count_cases):
# the endpoint and promtool, Prometheus's HTTP API showing the translated-packets counter and a
# deliberately dropped packet's drop counter rising by exactly the packets sent, the format
# negotiation (classic text 0.0.4 for promtool and curl, OpenMetrics for Prometheus), 404/405
# for everything else with no state changed, a bounded scrape storm (2,000 scrapes paced over
# 10 s during traffic: RSS before/after, the throughput ratio printed), and
# `nat64d stats --json`, `reload` (applied and refused), then in mode nat64 `sessions --json`,
# `bib --json`. If Prometheus cannot start, the run FAILS (never skips).
# Last line: "N passed, N failed". Env: NS_PREFIX (names), NAT64D (binary).
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
. netns-scripts/lib.sh
need_root
ensure_packages jq:jq
command -v prometheus >/dev/null 2>&1 || apt_install prometheus || true

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

TMP="$(new_tmp metrics)"
PROM_PID=
cleanup() {
    [ -n "$PROM_PID" ] && kill "$PROM_PID" 2>/dev/null && wait "$PROM_PID" 2>/dev/null
    stop_nat64d >/dev/null 2>&1
    netns-scripts/topology.sh down >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT
netns-scripts/topology.sh up || { echo "0 passed, 1 failed"; exit 1; }

M="[::1]:9164"
PROM=127.0.0.1:9090
CTL="$TMP/control.sock"
CFG="$TMP/nat64d.toml"
write_config "$CFG"
cat >>"$CFG" <<EOF
[metrics]
listen = "$M"
[control]
socket = "$CTL"
EOF
start_nat64d "$CFG" "$TMP/nat64d.log" || { echo "0 passed, 1 failed"; exit 1; }

# --- Prometheus in the gateway namespace, scraping every second ---------------------------------
cat >"$TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $REPO/deploy/prometheus/nat64d-rules.yml
scrape_configs:
  - job_name: nat64d
    static_configs:
      - targets: ["$M"]
EOF
prom_ready=false
if command -v prometheus >/dev/null 2>&1; then
    in_gw prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/prom-data" \
        --web.listen-address="$PROM" >"$TMP/prometheus.log" 2>&1 &
    PROM_PID=$!
    for _ in $(seq 1 100); do
        in_gw curl -sf "http://$PROM/-/ready" >/dev/null 2>&1 && { prom_ready=true; break; }
        sleep 0.2
    done
fi
$prom_ready || { echo "Prometheus did not start (installed: $(command -v prometheus || echo no)):"; tail -5 "$TMP/prometheus.log" 2>/dev/null; }
check "a real Prometheus started on $PROM in $NS_GW" $prom_ready

# q EXPR: the scalar value of an instant query (empty when none).
q() {
    in_gw curl -s "http://$PROM/api/v1/query" --data-urlencode "query=$1" |
        jq -r '.data.result[0].value[1] // empty'
}
# scraped_after T: waits (bounded, 10 s) until Prometheus scraped nat64d after unix time T.
scraped_after() {
    local t
    for _ in $(seq 1 50); do
        t="$(q "timestamp(nat64d_received_packets_total)")"
        [ -n "$t" ] && awk -v a="$t" -v b="$1" 'BEGIN { exit !(a > b) }' && return 0
        sleep 0.2
    done
    return 1
}

check "Prometheus scrapes nat64d (up == 1)" test "$(scraped_after "$(date +%s.%N)"; q 'up{job="nat64d"}')" = 1

# --- the endpoint ---------------------------------------------------------------------------------
# Without an Accept header asking for OpenMetrics (curl sends */*), /metrics serves the classic
# text format 0.0.4, which promtool checks; Prometheus asks for OpenMetrics and gets it.
OM_ACCEPT='application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'
ctype() { in_gw curl -s -o /dev/null -w '%{content_type}' "$@"; }
in_gw curl -sf "http://$M/metrics" >"$TMP/scrape.txt"
in_gw curl -sf -H "Accept: $OM_ACCEPT" "http://$M/metrics" >"$TMP/scrape.om"
check "GET /metrics serves the exposition with build info" grep -q '^nat64d_build_info{version=' "$TMP/scrape.txt"
check "every DropReason is a label value" test "$(grep -c '^nat64d_dropped_packets_total{reason=' "$TMP/scrape.txt")" -ge 40
check "a plain scrape is text/plain version 0.0.4 (counters typed under _total, no # EOF)" \
    sh -c "[ \"\$1\" = 'text/plain; version=0.0.4; charset=utf-8' ] && grep -qx '# TYPE nat64d_dropped_packets_total counter' '$TMP/scrape.txt' && ! grep -q '^# EOF' '$TMP/scrape.txt'" _ "$(ctype "http://$M/metrics")"
check "promtool check metrics passes on the plain scrape" sh -c "promtool check metrics <'$TMP/scrape.txt'"
check "Prometheus's Accept header gets OpenMetrics 1.0.0 ending in # EOF" \
    sh -c "[ \"\$1\" = 'application/openmetrics-text; version=1.0.0; charset=utf-8' ] && [ \"\$(tail -n 1 '$TMP/scrape.om')\" = '# EOF' ]" _ "$(ctype -H "Accept: $OM_ACCEPT" "http://$M/metrics")"
check "promtool check rules passes on deploy/prometheus/nat64d-rules.yml" promtool check rules "$REPO/deploy/prometheus/nat64d-rules.yml"
code() { in_gw curl -s -o /dev/null -w '%{http_code}' "$@"; }
check "GET /healthz is 200 while the workers run" test "$(code "http://$M/healthz")" = 200
check "POST /metrics is 405" test "$(code -X POST "http://$M/metrics")" = 405
check "DELETE /healthz is 405" test "$(code -X DELETE "http://$M/healthz")" = 405
check "GET /reload is 404 (nothing else is served)" test "$(code "http://$M/reload")" = 404
check "a request head over 8 KiB is refused (431)" test "$(code -H "X-Big: $(head -c 9000 /dev/zero | tr '\0' a)" "http://$M/metrics")" = 431
# Every other method on the two paths is 405, every other path 404 whatever the method, and none
# of them changes anything: the daemon runs on, reloads and health stay as they were.
in_gw "$NAT64D" stats --socket "$CTL" --json >"$TMP/before.json"
volley="$(ip netns exec "$NS_GW" python3 - <<'PY'
import socket
def ask(req):
    s = socket.create_connection(("::1", 9164), timeout=5)
    s.sendall(req)
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b" ")[1:2], body
bad = []
n = 0
for path in ["/metrics", "/healthz"]:
    for m in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "PROPFIND", "get"]:
        n += 1
        code, body = ask(f"{m} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nreload".encode())
        if code != [b"405"] or not body.startswith(b"method not allowed"):
            bad.append(f"{m} {path} -> {code} {body[:30]!r}")
for path in ["/", "/metrics/", "/healthz/", "/metrics/../healthz", "/reload", "/quit", "/stats",
             "/sessions", "/bib", "/debug/pprof", "/api/v1/admin", "/../../etc/passwd", "*"]:
    for m in ["GET", "HEAD", "POST", "PUT", "DELETE"]:
        n += 1
        code, body = ask(f"{m} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        if code != [b"404"] or body not in (b"", b"not found\n"):
            bad.append(f"{m} {path} -> {code} {body[:30]!r}")
print(n, len(bad), "; ".join(bad[:5]))
PY
)"
in_gw "$NAT64D" stats --socket "$CTL" --json >"$TMP/after.json"
echo "   other requests: $volley (sent, wrong answers, first wrong ones)"
check "other methods on /metrics and /healthz get 405, other paths 404 (and say nothing more)" \
    test "$(echo "$volley" | awk '{print ($1 >= 80), $2}')" = "1 0"
check "those requests changed nothing: the daemon runs, reloads and health as before" \
    sh -c "kill -0 $NAT64D_PID && [ \"\$(jq -c '[.reloads, .healthy, .nat64]' '$TMP/before.json')\" = \"\$(jq -c '[.reloads, .healthy, .nat64]' '$TMP/after.json')\" ]"

# --- counters through Prometheus's HTTP API -------------------------------------------------------
T6='sum(nat64d_translated_packets_total{direction="ipv6_to_ipv4",protocol="icmp"})'
T4='sum(nat64d_translated_packets_total{direction="ipv4_to_ipv6",protocol="icmp"})'
HL='sum(nat64d_dropped_packets_total{reason="hop_limit_exceeded"})'
scraped_after "$(date +%s.%N)"
a6="$(q "$T6")" a4="$(q "$T4")" ah="$(q "$HL")"
in_cli ping -6 -c 40 -i 0.02 -W 1 "$SRV6" >/dev/null 2>&1
# Hop limit 2: the gateway's kernel forwards it into the TUN with hop limit 1, where nat64d must
# drop it (RFC 7915 §5.1) and count it as hop_limit_exceeded.
in_cli ping -6 -c 7 -i 0.05 -W 1 -t 2 "$SRV6" >/dev/null 2>&1
scraped_after "$(date +%s.%N)"
b6="$(q "$T6")" b4="$(q "$T4")" bh="$(q "$HL")"
echo "   translated icmp 6->4 $a6 -> $b6, 4->6 $a4 -> $b4; hop_limit_exceeded $ah -> $bh"
check "Prometheus: translated ICMP 6->4 rose by exactly the 40 echo requests" test "$((b6 - a6))" = 40
check "Prometheus: translated ICMP 4->6 rose by exactly the 40 echo replies" test "$((b4 - a4))" = 40
check "Prometheus: hop_limit_exceeded drops rose by exactly the 7 hop-limit-2 probes" test "$((bh - ah))" = 7

# --- a bounded scrape storm -----------------------------------------------------------------------
# 2,000 scrapes paced over 10 s (4 clients, 50 a second each: the issue's bound), half asking
# for OpenMetrics, while a flood ping crosses the gateway. Measured side by side: the flood
# alone before and after, and during the storm (printed as a ratio, no timing asserted); RSS
# before and after (RSS read before the last flood).
rss() { awk '/^VmRSS/ {print $2}' "/proc/$NAT64D_PID/status"; }
flood() { # packets the client's flood ping got answered in 3 s
    in_cli ping -6 -f -w 3 -q "$SRV6" 2>/dev/null | sed -n 's/.* \([0-9]*\) received.*/\1/p'
}
storm() { # PER-CLIENT SECONDS: 4 clients; prints "sent complete"; exit 0 when all were complete
    timeout 40 ip netns exec "$NS_GW" python3 - "$@" <<'PY'
import socket, sys, threading, time
per, pace = int(sys.argv[1]), float(sys.argv[2])
OM = b"Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n"
ok = [0] * 4
def client(k):
    t0 = time.monotonic()
    for i in range(per):
        delay = t0 + i * pace / per - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        om = (i + k) % 2 == 0
        try:
            s = socket.create_connection(("::1", 9164), timeout=5)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + (OM if om else b"") + b"\r\n")
            data = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
            s.close()
        except OSError:
            continue
        head, _, body = data.partition(b"\r\n\r\n")
        fields = dict(l.split(b": ", 1) for l in head.split(b"\r\n")[1:] if b": " in l)
        # Complete: 200, the whole Content-Length, the negotiated format's own ending.
        complete = (head.startswith(b"HTTP/1.1 200")
                    and fields.get(b"Content-Length") == str(len(body)).encode()
                    and (body.endswith(b"# EOF\n") if om else
                         b"# EOF" not in body and b"\nnat64d_reloads_total{" in body))
        ok[k] += complete
ts = [threading.Thread(target=client, args=(k,)) for k in range(4)]
[t.start() for t in ts]
[t.join() for t in ts]
print(4 * per, sum(ok))
sys.exit(0 if sum(ok) == 4 * per else 1)
PY
}
# Warm-up at the storm's concurrency, so the allocator holds its working set before measuring.
storm 50 1 >/dev/null
r0="$(rss)"
base="$(flood)"
t0="$(date +%s.%N)"
storm 500 10 >"$TMP/storm.out" &
storm_pid=$!
sleep 1
during="$(flood)"
wait "$storm_pid"
storm_rc=$?
t1="$(date +%s.%N)"
r1="$(rss)"
after="$(flood)"
secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')"
one="$(in_gw curl -s -o /dev/null -w '%{time_total}' "http://$M/metrics")"
# The storm's run against the mean of the runs before and after it (the machine is shared).
ratio="$(awk -v a="$base" -v c="$after" -v b="$during" 'BEGIN { if (a + c > 0) printf "%.2f", 2 * b / (a + c); else print "n/a" }')"
echo "   storm: $(cat "$TMP/storm.out") (sent, complete) in ${secs} s; one scrape ${one} s; RSS ${r0} kB -> ${r1} kB"
echo "   flood ping answered in 3 s: ${base} before, ${during} during, ${after} after the storm: throughput ratio during/alone ${ratio}"
check "2,000 paced scrapes during traffic: every answer complete (200, full length, its format)" test "$storm_rc" = 0
# The bound: 1 MiB over 2,000 scrapes is 512 B a scrape. Each scrape allocates an 8 KiB request
# buffer and a body of more than 10 KiB, so keeping any of them (or any per-scrape state of
# 512 B or more) crosses it; the warm-up at the same concurrency has already sized the
# allocator's arenas, so a flat daemon stays well inside it.
check "RSS flat across the storm (growth under 1 MiB = 512 B per scrape)" test "$((r1 - r0))" -lt 1024
check "the flood ping crossed the gateway during the storm" test "${during:-0}" -gt 0

# --- the control socket: stats, reload ------------------------------------------------------------
in_gw "$NAT64D" stats --socket "$CTL" --json >"$TMP/stats.json"
check "nat64d stats --json (siit): mode and translated counts" \
    test "$(jq -r '.mode + " " + ([.translated[] | select(.protocol == "icmp") | .packets] | add | tostring)' "$TMP/stats.json" | awk '{print $1, ($2 > 0)}')" = "siit 1"
check "nat64d stats (table) lists drops by reason" sh -c "ip netns exec '$NS_GW' '$NAT64D' stats --socket '$CTL' | grep -q hop_limit_exceeded"
check "nat64d reload: applied" sh -c "ip netns exec '$NS_GW' '$NAT64D' reload --socket '$CTL' | grep -qx 'result: applied'"
cp "$CFG" "$TMP/good.toml"
sed -i 's/^mtu = 1500/mtu = 1400/' "$CFG"
check "nat64d reload: a changed tun.mtu is reported as needing a restart" sh -c "ip netns exec '$NS_GW' '$NAT64D' reload --socket '$CTL' | grep -qx 'needs restart: tun.mtu'"
echo 'bogus_key = 1' >>"$CFG"
out="$(in_gw "$NAT64D" reload --socket "$CTL")"
rc=$?
echo "   $(echo "$out" | tail -n 1)"
check "nat64d reload: a bad file is refused with file:line: key: reason, exit 1" \
    sh -c "[ $rc = 1 ] && echo \"\$1\" | grep -q \"^refused: $CFG:[0-9]*: \"" _ "$out"
scraped_after "$(date +%s.%N)"
reloads="$(q 'sum(nat64d_reloads_total{result="applied"})') $(q 'sum(nat64d_reloads_total{result="partial"})') $(q 'sum(nat64d_reloads_total{result="refused"})')"
echo "   Prometheus: reloads applied, partial, refused: $reloads"
check "Prometheus: reloads by result (1 applied, 1 partial, 1 refused)" test "$reloads" = "1 1 1"
stop_nat64d

# --- mode nat64: sessions --json, bib --json, table gauges -----------------------------------------
MAPLOG="$TMP/map.jsonl" CTL_SOCK="$CTL" write_nat64_config "$CFG"
cat >>"$CFG" <<EOF
[metrics]
listen = "$M"
EOF
start_nat64d "$CFG" "$TMP/nat64d.log" || { echo "nat64d (nat64) did not start"; }
in_cli ping -6 -c 3 -i 0.1 -W 1 "$SRV6" >/dev/null 2>&1
in_gw "$NAT64D" sessions --socket "$CTL" --json >"$TMP/sessions.json"
check "nat64d sessions --json lists the ICMP session" \
    test "$(jq -r '[.sessions[] | select(.proto == "icmp" and .v6_src.addr == "'"$CLI6"'")] | length' "$TMP/sessions.json")" = 1
in_gw "$NAT64D" bib --socket "$CTL" --json >"$TMP/bib.json"
check "nat64d bib --json lists the static entry and the ICMP binding" \
    test "$(jq -r '[.bib[] | select(.static)] | length' "$TMP/bib.json") $(jq -r '.totals.icmp' "$TMP/bib.json")" = "1 1"
in_gw "$NAT64D" stats --socket "$CTL" --json >"$TMP/stats.json"
check "nat64d stats --json (nat64): sessions and pool4 port use" \
    test "$(jq -r '(.nat64.sessions[] | select(.[0] == "icmp") | .[1] | tostring) + " " + ([.nat64.pool4[] | select(.protocol == "icmp") | .in_use] | add | tostring)' "$TMP/stats.json")" = "1 1"
scraped_after "$(date +%s.%N)"
check "Prometheus: sessions and pool4 ports in use (icmp) are 1" \
    test "$(q 'sum(nat64d_sessions{protocol="icmp"})') $(q 'sum(nat64d_pool4_ports_in_use{protocol="icmp"})')" = "1 1"
stop_nat64d

echo "cases: $((PASS + FAIL)) ran of $EXPECTED"
[ $((PASS + FAIL)) -ne "$EXPECTED" ] && FAIL=$((FAIL + EXPECTED - PASS - FAIL))
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
