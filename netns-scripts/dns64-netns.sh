#!/usr/bin/env bash
# DNS64 black-box case with real tools, in network namespaces (documentation addresses only):
#
#   n64dns-cl (IPv6-only client)      n64dns-gw (nat64d dns64)           n64dns-auth (IPv4-only DNS)
#   2001:db8:64::2, ::3 --veth-- 2001:db8:64::1 | 192.0.2.1 --veth-- 192.0.2.53 (dnsmasq, authoritative
#                                                                     for example.: web.example A
#                                                                     198.51.100.10, PTR; dual.example
#                                                                     A + AAAA)
#
# Checks from the IPv6-only client (its resolv.conf points at the DNS64): synthesized AAAA, real AAAA passed, ipv4only.arpa,
# reverse lookup of a synthesized address (CNAME into in-addr.arpa), TCP, NXDOMAIN, and REFUSED
# for a client address outside the ACL.
#
# The DNS64 server is `nat64d dns64 --config FILE` when the binary has that subcommand, else the
# standalone example (`cargo run --example dns64`). The IPv4-only server also serves HTTP on
# 198.51.100.10:80, and the end-to-end step runs `nat64d run` (SIIT, EAMT 2001:db8:64::2 <->
# 203.0.113.2) in the gateway namespace and `curl http://web.example/` from the client.
#
# Usage (root): netns-scripts/dns64-netns.sh      Prints "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

for t in dig dnsmasq ip; do
    command -v "$t" >/dev/null || { apt-get update -qq && apt-get install -y -qq dnsutils dnsmasq-base iproute2 >/dev/null; break; }
done

P=n64dns
CL=$P-cl GW=$P-gw AU=$P-auth
TMP=$(mktemp -d /tmp/$P-netns.XXXXXX)
PIDS=()
MADE_ETC_NETNS=0
[ -d /etc/netns ] || MADE_ETC_NETNS=1
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    for n in $CL $GW $AU; do ip netns del "$n" 2>/dev/null || true; done
    rm -rf "/etc/netns/$CL"
    [ "$MADE_ETC_NETNS" = 1 ] && rmdir /etc/netns 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

cargo build --quiet --example dns64 --bin nat64d
if target/debug/nat64d dns64 --help 2>/dev/null | grep -q -- --config; then
    DNS64=(target/debug/nat64d dns64 --config)
else
    DNS64=(target/debug/examples/dns64)
fi

for n in $CL $GW $AU; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip link add $P-c0 netns $CL type veth peer name $P-g6 netns $GW
ip link add $P-g4 netns $GW type veth peer name $P-a0 netns $AU
ip -n $CL addr add 2001:db8:64::2/64 dev $P-c0 nodad
# ::3 is deprecated so the kernel never picks it as a source; only `dig -b` uses it (ACL check).
ip -n $CL addr add 2001:db8:64::3/64 dev $P-c0 nodad preferred_lft 0
ip -n $GW addr add 2001:db8:64::1/64 dev $P-g6 nodad
ip -n $GW addr add 192.0.2.1/24 dev $P-g4
ip -n $AU addr add 192.0.2.53/24 dev $P-a0
ip -n $AU addr add 198.51.100.10/24 dev $P-a0
for pair in "$CL $P-c0" "$GW $P-g6" "$GW $P-g4" "$AU $P-a0"; do
    set -- $pair; ip -n "$1" link set "$2" up
done
# The client's resolver is the DNS64 (`ip netns exec` bind-mounts this over /etc/resolv.conf).
mkdir -p "/etc/netns/$CL"
echo "nameserver 2001:db8:64::1" > "/etc/netns/$CL/resolv.conf"
# The client is IPv6-only; the NAT64 prefix routes to the gateway.
ip -n $CL -6 route add 64:ff9b::/96 via 2001:db8:64::1

ip netns exec $AU dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces \
    --listen-address=192.0.2.53 --except-interface=lo --local=/example/ --local-ttl=300 \
    --host-record=web.example,198.51.100.10 \
    --host-record=dual.example,198.51.100.11,2001:db8:1::11 \
    --pid-file="$TMP/dnsmasq.pid" --log-facility="$TMP/dnsmasq.log" &
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
PIDS+=($!)

mkdir -p "$TMP/www" && echo "hello from the IPv4-only server" > "$TMP/www/index.html"
ip netns exec $AU python3 -m http.server --bind 198.51.100.10 --directory "$TMP/www" 80 \
    >"$TMP/http.log" 2>&1 &
PIDS+=($!)
ip -n $AU route add 203.0.113.0/24 via 192.0.2.1

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
D="ip netns exec $CL dig +time=2 +tries=1 -b 2001:db8:64::2 @2001:db8:64::1"

check "synthesized AAAA (RFC 6147 §5.1.7)" "64:ff9b::c633:640a" $D +short AAAA web.example
check "real AAAA passes (§5.1.1)" "2001:db8:1::11" $D +short AAAA dual.example
check "TTL = A TTL 300 (below 600, no SOA)" $'300\tIN\tAAAA' $D +noall +answer AAAA web.example
check "ipv4only.arpa (RFC 7050)" "64:ff9b::c000:aa" $D +short AAAA ipv4only.arpa
check "reverse: CNAME into in-addr.arpa (§5.3.1)" "10.100.51.198.in-addr.arpa." $D +short -x 64:ff9b::198.51.100.10
check "reverse: PTR at the end" "web.example." $D +short -x 64:ff9b::198.51.100.10
check "TCP" "64:ff9b::c633:640a" $D +tcp +short AAAA web.example
check "NXDOMAIN passes (§5.1.2)" "status: NXDOMAIN" $D AAAA nope.example
check "A passes untouched" "198.51.100.10" $D +short A web.example
check "client outside the ACL gets REFUSED" "status: REFUSED" \
    ip netns exec $CL dig +time=2 +tries=1 -b 2001:db8:64::3 @2001:db8:64::1 AAAA web.example

# End to end: the translator (`nat64d run`, SIIT with an EAMT entry for the client) in the
# gateway namespace, then curl by name from the IPv6-only client.
if target/debug/nat64d run --help 2>/dev/null | grep -q -- --config; then
    cat > "$TMP/nat64d.toml" <<TOML
mode = "siit"
pool6 = ["64:ff9b::/96"]
wkp_strict = false
[tun]
name = "$P-tun"
mtu = 1500
queues = 1
[siit]
eamt = [ { ipv4 = "203.0.113.2", ipv6 = "2001:db8:64::2" } ]
rfc6791_pool = ["203.0.113.254/32"]
[log]
level = "info"
TOML
    ip netns exec $GW sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv4.ip_forward=1
    ip -n $GW route add 198.51.100.0/24 via 192.0.2.53
    ip netns exec $GW target/debug/nat64d run --config "$TMP/nat64d.toml" >"$TMP/gw.out" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do grep -q ready "$TMP/gw.out" 2>/dev/null && break; sleep 0.05; done
    for _ in $(seq 50); do ip netns exec $AU ss -ltn | grep -q ":80 " && break; sleep 0.1; done
    check "curl http://web.example/ from the IPv6-only client (DNS64 + nat64d)" \
        "hello from the IPv4-only server" \
        ip netns exec $CL curl -sS -m 5 -6 http://web.example/
else
    echo "skip end-to-end curl: this nat64d has no 'run --config' yet"
fi

[ "$FAIL" -gt 0 ] && [ -f "$TMP/gw.out" ] && { echo "nat64d log:"; sed "s/^/    /" "$TMP/gw.out"; }
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
