#!/usr/bin/env bash
# DNS64 black-box cases with real tools, in network namespaces (documentation addresses only):
#
#   ${NS_PREFIX}dcl (IPv6-only client)   ${NS_PREFIX}dgw (nat64d dns64)      ${NS_PREFIX}dau (IPv4-only DNS)
#   2001:db8:64::2, ::3 --veth-- 2001:db8:64::1 | 192.0.2.1 --veth-- 192.0.2.53 (nsd, authoritative
#                                                                     for example. and
#                                                                     100.51.198.in-addr.arpa.)
#
# Checks from the IPv6-only client (its resolv.conf points at the DNS64): synthesized AAAA, real
# AAAA passed, the §5.1.7 TTL, ipv4only.arpa and its reverse names (RFC 8880 §7), reverse lookup
# of a synthesized address (CNAME into in-addr.arpa), a DNAME chain kept (§5.1.5), a negative
# answer with its SOA (RFC 2308), TCP (and a garbage TCP message closing the connection),
# NXDOMAIN, upstream REFUSED turned into SERVFAIL, SERVFAIL within the deadline when every
# upstream is silent, and REFUSED for a client address outside the ACL. Then `nat64d run` (SIIT,
# EAMT 2001:db8:64::2 <-> 203.0.113.2, and the same [dns64] table) in the gateway namespace and
# `curl http://web.example/` from the client.
#
# Every name (namespaces, links, the TUN, temp dir, /etc/netns entry) comes from NS_PREFIX
# (lib.sh); the script refuses to start when one exists and deletes only what it made.
#
# Usage (root): NS_PREFIX=xx- netns-scripts/dns64-netns.sh      Prints "N passed, M failed".
# The script fails unless exactly EXPECTED_CASES cases ran; run.sh reads the same line
# (count_cases in lib.sh) and fails its dns64 block on any other count.
EXPECTED_CASES=21
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

for t in dig nsd ip python3 curl; do
    command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] || {
        apt-get -o DPkg::Lock::Timeout=300 update -qq &&
            apt-get -o DPkg::Lock::Timeout=300 install -y -qq dnsutils nsd iproute2 python3 curl >/dev/null
        break
    }
done

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
P="${NS_PREFIX}d"
CL=${P}cl GW=${P}gw AU=${P}au
for n in $CL $GW $AU; do
    if ip netns list | grep -qw -- "$n"; then
        echo "dns64-netns: namespace $n exists (another run with NS_PREFIX=$NS_PREFIX?): refusing to start" >&2
        exit 1
    fi
done
if [ -e "/etc/netns/$CL" ]; then
    echo "dns64-netns: /etc/netns/$CL exists: refusing to start" >&2
    exit 1
fi
TMP=$(mktemp -d "/tmp/${P}netns.XXXXXX")
PIDS=()
MADE_NS=()
MADE_ETC_NETNS=0 MADE_ETC_CL=0
[ -d /etc/netns ] || MADE_ETC_NETNS=1
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    for n in "${MADE_NS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
    [ "$MADE_ETC_CL" = 1 ] && rm -rf "/etc/netns/$CL"
    [ "$MADE_ETC_NETNS" = 1 ] && rmdir /etc/netns 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

# NAT64D: the release nat64d (lib.sh's default; run.sh passes it).
[ -x "$NAT64D" ] || { echo "dns64-netns: $NAT64D not built (cargo build --release)" >&2; exit 1; }
DNS64=("$NAT64D" dns64 --config)

for n in $CL $GW $AU; do ip netns add "$n"; MADE_NS+=("$n"); ip -n "$n" link set lo up; done
ip link add ${P}c0 netns $CL type veth peer name ${P}g6 netns $GW
ip link add ${P}g4 netns $GW type veth peer name ${P}a0 netns $AU
ip -n $CL addr add 2001:db8:64::2/64 dev ${P}c0 nodad
# ::3 is deprecated so the kernel never picks it as a source; only `dig -b` uses it (ACL check).
ip -n $CL addr add 2001:db8:64::3/64 dev ${P}c0 nodad preferred_lft 0
ip -n $GW addr add 2001:db8:64::1/64 dev ${P}g6 nodad
ip -n $GW addr add 192.0.2.1/24 dev ${P}g4
ip -n $AU addr add 192.0.2.53/24 dev ${P}a0
ip -n $AU addr add 198.51.100.10/24 dev ${P}a0
for pair in "$CL ${P}c0" "$GW ${P}g6" "$GW ${P}g4" "$AU ${P}a0"; do
    set -- $pair; ip -n "$1" link set "$2" up
done
# The client's resolver is the DNS64 (`ip netns exec` bind-mounts this over /etc/resolv.conf).
mkdir -p "/etc/netns/$CL"; MADE_ETC_CL=1
echo "nameserver 2001:db8:64::1" > "/etc/netns/$CL/resolv.conf"
# The client is IPv6-only; the NAT64 prefix routes to the gateway.
ip -n $CL -6 route add 64:ff9b::/96 via 2001:db8:64::1

# nsd, authoritative: SOA MINIMUM 120 (negative TTL min(300, 120) = 120), a DNAME, a name with
# no address; names outside its zones are REFUSED.
cat > "$TMP/example.zone" <<'ZONE'
$ORIGIN example.
$TTL 300
@        IN SOA ns.example. admin.example. 1 3600 600 86400 120
@        IN NS  ns
ns       IN A   192.0.2.53
web      IN A   198.51.100.10
dual     IN A   198.51.100.11
dual     IN AAAA 2001:db8:1::11
old      IN DNAME new.example.
www.new  IN A   198.51.100.10
noaddr   IN TXT "no address here"
ZONE
cat > "$TMP/rev.zone" <<'ZONE'
$ORIGIN 100.51.198.in-addr.arpa.
$TTL 300
@        IN SOA ns.example. admin.example. 1 3600 600 86400 120
@        IN NS  ns.example.
10       IN PTR web.example.
ZONE
cat > "$TMP/nsd.conf" <<CONF
server:
    ip-address: 192.0.2.53
    port: 53
    username: ""
    chroot: ""
    zonesdir: "$TMP"
    pidfile: "$TMP/nsd.pid"
    database: ""
    zonelistfile: "$TMP/zone.list"
    xfrdfile: "$TMP/xfrd.state"
    xfrdir: "$TMP"
    logfile: "$TMP/nsd.log"
    server-count: 1
    verbosity: 1
remote-control:
    control-enable: no
zone:
    name: example
    zonefile: example.zone
zone:
    name: 100.51.198.in-addr.arpa
    zonefile: rev.zone
CONF
ip netns exec $AU nsd -d -c "$TMP/nsd.conf" >"$TMP/nsd.out" 2>&1 &
PIDS+=($!)

cat > "$TMP/dns64.toml" <<TOML
[dns64]
listen = ["[2001:db8:64::1]:53"]
upstreams = ["192.0.2.53:53"]
prefixes = ["64:ff9b::/96"]
# Lab: the IPv4 side uses documentation addresses, which RFC 6052 §3.1 keeps out of the WKP.
wkp_strict = false
allow = ["2001:db8:64::2/128", "::1/128"]
TOML
ip netns exec $GW "${DNS64[@]}" "$TMP/dns64.toml" >"$TMP/dns64.out" 2>&1 &
DNS64_PID=$!
PIDS+=($DNS64_PID)

mkdir -p "$TMP/www" && echo "hello from the IPv4-only server" > "$TMP/www/index.html"
ip netns exec $AU python3 -m http.server --bind 198.51.100.10 --directory "$TMP/www" 80 \
    >"$TMP/http.log" 2>&1 &
PIDS+=($!)
ip -n $AU route add 203.0.113.0/24 via 192.0.2.1

# A second DNS64 whose upstreams never answer (nobody has those addresses): SERVFAIL within
# the overall deadline (query_timeout_ms, default 2.5 s), before the client's own timeout.
cat > "$TMP/silent.toml" <<TOML
[dns64]
listen = ["[2001:db8:64::1]:5353"]
upstreams = ["192.0.2.98:53", "192.0.2.99:53"]
allow = ["2001:db8:64::2/128"]
TOML
ip netns exec $GW "$NAT64D" dns64 --config "$TMP/silent.toml" >"$TMP/silent.out" 2>&1 &
PIDS+=($!)

# Wait (bounded) for both servers.
for _ in $(seq 50); do
    grep -q "listening" "$TMP/dns64.out" 2>/dev/null && \
        ip netns exec $AU dig +time=1 +tries=1 @192.0.2.53 web.example A >/dev/null 2>&1 && break
    sleep 0.1
done

PASS=0 FAIL=0
check() { # name, expected substring, command...
    local name=$1 want=$2; shift 2
    local got
    got=$("$@" 2>&1 || true)
    if grep -qF -- "$want" <<<"$got"; then
        echo "ok   $name"; PASS=$((PASS + 1))
    else
        echo "FAIL $name: want '$want', got:"; sed 's/^/    /' <<<"$got"; FAIL=$((FAIL + 1))
    fi
}
check_eq() { # name, expected output (exactly, lines sorted), command...
    local name=$1 want=$2; shift 2
    local got
    got=$("$@" 2>&1 | sort || true)
    if [ "$got" = "$want" ]; then
        echo "ok   $name"; PASS=$((PASS + 1))
    else
        echo "FAIL $name: want exactly '$want', got:"; sed 's/^/    /' <<<"$got"; FAIL=$((FAIL + 1))
    fi
}
D="ip netns exec $CL dig +time=2 +tries=1 -b 2001:db8:64::2 @2001:db8:64::1"

check "synthesized AAAA (RFC 6147 §5.1.7)" "64:ff9b::c633:640a" $D +short AAAA web.example
# Exactly the real AAAA: a synthesized record added beside it (64:ff9b::c633:640b) fails.
check_eq "real AAAA passes, nothing synthesized beside it (§5.1.1)" "2001:db8:1::11" $D +short AAAA dual.example
check "TTL = min(A TTL 300, negative TTL 120) (§5.1.7)" $'120\tIN\tAAAA' $D +noall +answer AAAA web.example
check "ipv4only.arpa (RFC 7050)" "64:ff9b::c000:aa" $D +short AAAA ipv4only.arpa
check "reverse: CNAME into in-addr.arpa (§5.3.1)" "10.100.51.198.in-addr.arpa." $D +short -x 64:ff9b::198.51.100.10
check "reverse: PTR at the end" "web.example." $D +short -x 64:ff9b::198.51.100.10
check "TCP" "64:ff9b::c633:640a" $D +tcp +short AAAA web.example
check "NXDOMAIN passes (§5.1.2)" "status: NXDOMAIN" $D AAAA nope.example
check "DNAME kept in the synthesized answer (§5.1.5)" "DNAME" $D +noall +answer AAAA www.old.example
check "AAAA synthesized at the end of the DNAME chain" "64:ff9b::c633:640a" $D +short AAAA www.old.example
check "ipv4only.arpa reverse name answered locally (RFC 8880 §7.2)" "ipv4only.arpa." $D +short -x 192.0.0.170
check "ip6.arpa of a synthesized ipv4only.arpa address (RFC 8880 §7.2.1)" "ipv4only.arpa." $D +short -x 64:ff9b::192.0.0.171
check "negative answer carries the SOA, TTL min(TTL, MINIMUM) (RFC 2308)" $'120\tIN\tSOA' $D +noall +authority AAAA noaddr.example
check "upstream REFUSED becomes SERVFAIL" "status: SERVFAIL" $D A www.other.invalid
check "silent upstreams: SERVFAIL within the deadline" "status: SERVFAIL" \
    ip netns exec $CL dig +time=4 +tries=1 -b 2001:db8:64::2 @2001:db8:64::1 -p 5353 AAAA web.example
tcp_garbage() {
    ip netns exec $CL python3 - <<'PY'
import socket, struct
s = socket.create_connection(("2001:db8:64::1", 53), timeout=4)
bad = bytes([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7, ord("x")])
s.sendall(struct.pack("!H", len(bad)) + bad)
n = struct.unpack("!H", s.recv(2))[0]
ans = s.recv(n)
rest = s.recv(1)
print("rcode", ans[3] & 15, "then", "closed" if rest == b"" else "open")
PY
}
check "TCP: unparseable message gets FORMERR, then the connection closes" "rcode 1 then closed" tcp_garbage
check "A passes untouched" "198.51.100.10" $D +short A web.example
check "client outside the ACL gets REFUSED" "status: REFUSED" \
    ip netns exec $CL dig +time=2 +tries=1 -b 2001:db8:64::3 @2001:db8:64::1 AAAA web.example

# End to end: the translator (`nat64d run`, SIIT with an EAMT entry for the client) in the
# gateway namespace, then curl by name from the IPv6-only client. When `nat64d run` takes the
# [dns64] table too, the standalone DNS64 is stopped and the same process serves both.
{
    cat > "$TMP/nat64d.toml" <<TOML
mode = "siit"
pool6 = ["64:ff9b::/96"]
wkp_strict = false
[tun]
name = "${P}tun"
mtu = 1500
queues = 1
[siit]
eamt = [ { ipv4 = "203.0.113.2", ipv6 = "2001:db8:64::2" } ]
rfc6791_pool = ["203.0.113.254/32"]
[log]
level = "info"
TOML
    cat "$TMP/nat64d.toml" "$TMP/dns64.toml" > "$TMP/both.toml"
    # A refusal here is a FAIL (the same-process case below then fails too), never a fallback.
    check "check-config accepts the translator and [dns64] in one file" ": OK" \
        "$NAT64D" check-config "$TMP/both.toml"
    kill "$DNS64_PID" && wait "$DNS64_PID" 2>/dev/null || true
    cp "$TMP/both.toml" "$TMP/nat64d.toml"
    ip netns exec $GW sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv4.ip_forward=1
    ip -n $GW route add 198.51.100.0/24 via 192.0.2.53
    ip netns exec $GW "$NAT64D" run --config "$TMP/nat64d.toml" >"$TMP/gw.out" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do grep -q ready "$TMP/gw.out" 2>/dev/null && break; sleep 0.05; done
    for _ in $(seq 50); do ip netns exec $AU ss -ltn | grep -q ":80 " && break; sleep 0.1; done
    check "nat64d run serves DNS64 in the same process" "64:ff9b::c633:640a" $D +short AAAA web.example
    check "curl http://web.example/ from the IPv6-only client (DNS64 + nat64d)" \
        "hello from the IPv4-only server" \
        ip netns exec $CL curl -sS -m 5 -6 http://web.example/
}

[ "$FAIL" -gt 0 ] && [ -f "$TMP/gw.out" ] && { echo "nat64d log:"; sed "s/^/    /" "$TMP/gw.out"; }
echo "$PASS passed, $FAIL failed"
if [ $((PASS + FAIL)) -ne "$EXPECTED_CASES" ]; then
    echo "dns64-netns: ran $((PASS + FAIL)) cases, expected $EXPECTED_CASES" >&2
    exit 1
fi
[ "$FAIL" -eq 0 ]
