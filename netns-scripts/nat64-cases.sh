# shellcheck shell=bash
# nat64-cases.sh: stateful NAT64 (mode = "nat64") cases, sourced by run.sh after the SIIT cases
# (it uses run.sh's check/pass/fail, bg, counters, TMP and its topology). Not run on its own.
#
# Three IPv6-only hosts share the one pool4 address 192.0.2.1:
#   A  2001:db8:1::2   (namespace ${NS_PREFIX}cli)
#   B  2001:db8:1::21  (namespace ${NS_PREFIX}cli, second address)
#   C  2001:db8:3::2   (namespace ${NS_PREFIX}cl2, added here on its own link to the gateway)
# The IPv4-only server 198.51.100.2 routes 192.0.2.0/24 to the gateway. Short timeouts (UDP 3 s,
# ICMP 3 s, TCP transitory 2 s) so expiry is seen within the run; every wait is bounded.

N64="[nat64]"
stop_nat64d >/dev/null 2>&1 || true

# --- the second client namespace and address --------------------------------------------------
ip netns add "$NS_CLI2"
ip -n "$NS_CLI2" link set lo up
ip -n "$NS_GW" link add gc2 type veth peer name c2 netns "$NS_CLI2"
in_cli2 sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
in_cli2 sysctl -qw net.ipv6.conf.c2.accept_dad=0
in_gw sysctl -qw net.ipv6.conf.gc2.accept_dad=0
ip -n "$NS_GW" addr add 2001:db8:3::1/64 dev gc2
ip -n "$NS_GW" link set gc2 up
ip -n "$NS_CLI2" addr add "$CLI2_6/64" dev c2
ip -n "$NS_CLI2" link set c2 up
ip -n "$NS_CLI2" -6 route add default via 2001:db8:3::1 dev c2
# B: deprecated at once, so it is used only when asked for (-I, --interface).
in_cli ip addr add "$CLI6B/64" dev c0 nodad preferred_lft 0 2>/dev/null || true
# Permanent neighbour entries for the new hops (see pin_neigh in lib.sh).
pin_neigh "$NS_GW" gc "$CLI6B" "$NS_CLI" c0
pin_neigh "$NS_GW" gc2 "$CLI2_6" "$NS_CLI2" c2
pin_neigh "$NS_CLI2" c2 2001:db8:3::1 "$NS_GW" gc2

# --- servers ----------------------------------------------------------------------------------
bg ip netns exec "$NS_SRV" timeout 240 "$PY" -m http.server --bind "$SRV4" --directory "$TMP/www4" 8200
bg ip netns exec "$NS_CLI" timeout 240 "$PY" -m http.server --bind "$CLI6" --directory "$TMP/www6" 8101
bg ip netns exec "$NS_SRV" timeout 240 "$PY" "$HERE/udp-echo.py" "$SRV4" 9200 --lifetime 240
bg ip netns exec "$NS_SRV" timeout 240 "$PY" "$HERE/udp-echo.py" "$SRV4" 9202 --lifetime 240 --no-checksum
bg ip netns exec "$NS_SRV" timeout 240 iperf3 -s -p 5301
bg ip netns exec "$NS_SRV" timeout 240 iperf3 -s -p 5302
for _ in $(seq 1 50); do
    in_srv ss -ltn 2>/dev/null | grep -q ":8200 " && in_srv ss -ltn | grep -q ":5302 " &&
        in_cli ss -ltn 2>/dev/null | grep -q ":8101 " && break
    sleep 0.1
done

CTL="$TMP/nat64-control.sock"
export CTL_SOCK="$CTL" MAPLOG="$TMP/mappings.jsonl"
sessions() { in_gw "$NAT64D" sessions --socket "$CTL" "$@"; }
bib() { in_gw "$NAT64D" bib --socket "$CTL" "$@"; }
# Waits (at most $1 tenths of a second) until "$2..." succeeds.
wait_for() {
    local n="$1" i
    shift
    for i in $(seq 1 "$n"); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    "$@"
}

write_nat64_config "$TMP/nat64.toml"
check "$N64 check-config accepts the test config" in_gw "$NAT64D" check-config "$TMP/nat64.toml"
if start_nat64d "$TMP/nat64.toml" "$TMP/nat64d.log"; then
    pass "$N64 nat64d starts in mode nat64"
else
    fail "$N64 nat64d starts in mode nat64"
fi

routes_and_socket() {
    in_gw ip -4 route show "$POOL4" | grep -q "dev $TUN_NAME" || { echo "no pool4 route"; return 1; }
    in_gw ip -6 route show 64:ff9b::/96 | grep -q "dev $TUN_NAME" || { echo "no pool6 route"; return 1; }
    [ "$(stat -c %a "$CTL")" = 660 ] || { echo "socket mode $(stat -c %a "$CTL")"; return 1; }
    [ "$(stat -c %u:%g "$CTL")" = 0:0 ] || { echo "socket owner $(stat -c %u:%g "$CTL")"; return 1; }
}
check "$N64 routes: pool6 and pool4 ($POOL4) into the TUN; control socket mode 0660, owner root, group from nat64.control.group" routes_and_socket

# --- several IPv6-only clients, one IPv4 address ------------------------------------------------
three_pings() {
    local pa pb pc rc=0
    in_cli ping -6 -c 5 -i 0.2 -W 2 "$SRV6" >"$TMP/pa" 2>&1 &
    pa=$!
    in_cli ping -6 -I "$CLI6B" -c 5 -i 0.2 -W 2 "$SRV6" >"$TMP/pb" 2>&1 &
    pb=$!
    in_cli2 ping -6 -c 5 -i 0.2 -W 2 "$SRV6" >"$TMP/pc" 2>&1 &
    pc=$!
    wait "$pa" || rc=1
    wait "$pb" || rc=1
    wait "$pc" || rc=1
    tail -n 2 "$TMP/pa" "$TMP/pb" "$TMP/pc"
    return "$rc"
}
check "$N64 ping: three IPv6-only hosts (A, B, C) at once to the IPv4 server" three_pings

# Right after the pings (ICMP timeout 3 s): three hosts, one IPv4 address.
shared_address() {
    local out hosts
    out="$(sessions --proto icmp --v4 "$POOL4")" || return 1
    echo "$out"
    hosts="$(echo "$out" | grep '^icmp ' | awk '{print $2}' | sed 's/\]:.*//; s/\[//' | sort -u)"
    for h in "$CLI6" "$CLI6B" "$CLI2_6"; do
        echo "$hosts" | grep -qx "$h" || { echo "no session of $h"; return 1; }
    done
    echo "$out" | grep '^icmp ' | grep -v " <-> $POOL4:" && { echo "a session not on $POOL4"; return 1; }
    return 0
}
check "$N64 nat64d sessions: the three hosts' ICMP sessions all map to $POOL4" shared_address

three_curls() {
    local pa pb pc rc=0 f
    in_cli timeout 60 curl -sS -g --max-time 50 -o "$TMP/ga" "http://[$SRV6]:8200/blob" &
    pa=$!
    in_cli timeout 60 curl -sS -g --max-time 50 --interface "$CLI6B" -o "$TMP/gb" "http://[$SRV6]:8200/blob" &
    pb=$!
    in_cli2 timeout 60 curl -sS -g --max-time 50 -o "$TMP/gc" "http://[$SRV6]:8200/blob" &
    pc=$!
    wait "$pa" || rc=1
    wait "$pb" || rc=1
    wait "$pc" || rc=1
    for f in ga gb gc; do
        [ "$(sha256sum <"$TMP/$f" | cut -d' ' -f1)" = "$SUM" ] || { echo "$f: checksum mismatch"; rc=1; }
    done
    return "$rc"
}
check "$N64 http: three 10 MB downloads at once (A, B, C) through one IPv4 address, sha256 equal" three_curls

two_iperfs() {
    local pa pc rc=0
    in_cli timeout 20 iperf3 -6 -c "$SRV6" -p 5301 -t 3 >"$TMP/ia" 2>&1 &
    pa=$!
    in_cli2 timeout 20 iperf3 -6 -c "$SRV6" -p 5302 -t 3 >"$TMP/ic" 2>&1 &
    pc=$!
    wait "$pa" || rc=1
    wait "$pc" || rc=1
    grep -E "receiver" "$TMP/ia" "$TMP/ic"
    [ "$(grep -c receiver "$TMP/ia" "$TMP/ic" | grep -c ':1$')" = 2 ] || rc=1
    return "$rc"
}
check "$N64 iperf3: two IPv6-only clients (A, C) at once, TCP 3 s each" two_iperfs

# --- expiry -----------------------------------------------------------------------------------
udp_expiry() {
    in_cli timeout 10 "$PY" "$HERE/udp-check.py" "$SRV6" 9200 --size 100 --count 1 || return 1
    sessions --proto udp --v6 "$CLI6" | grep -q "^udp \[$CLI6\]:.* $SRV4:9200 " || { echo "no UDP session"; return 1; }
    bib --proto udp --v6 "$CLI6" | grep -q "^udp \[$CLI6\]" || { echo "no UDP binding"; return 1; }
    # UDP timeout 3 s: gone within 6 s, its binding with it.
    no_udp() { ! sessions --proto udp --v6 "$CLI6" | grep -q "^udp " && ! bib --proto udp --v6 "$CLI6" | grep -q "^udp "; }
    wait_for 60 no_udp || { echo "UDP session still there"; sessions --proto udp; return 1; }
}
check "$N64 udp: session and binding listed, then expire (timeout 3 s)" udp_expiry

tcp_expiry() {
    local p
    rm -f "$TMP/te-open" "$TMP/te-close"
    # The client holds its connection until told to close (bounded by the timeout), so a slow
    # start under load cannot make the ESTABLISHED check race the close.
    in_cli timeout 20 "$PY" -c "
import os, socket, time
s = socket.create_connection(('$SRV6', 8200), timeout=10)
open('$TMP/te-open', 'w').close()
t = time.monotonic() + 15
while not os.path.exists('$TMP/te-close') and time.monotonic() < t:
    time.sleep(0.05)
s.close()
time.sleep(0.5)
" &
    p=$!
    te_open() { [ -e "$TMP/te-open" ]; }
    te_est() { sessions --proto tcp --v6 "$CLI6" | grep "$SRV4:8200 " | grep -q ESTABLISHED; }
    wait_for 10 te_open || { echo "client did not connect"; touch "$TMP/te-close"; wait "$p"; return 1; }
    wait_for 5 te_est || { echo "no established TCP session"; sessions --proto tcp; touch "$TMP/te-close"; wait "$p"; return 1; }
    touch "$TMP/te-close"
    wait "$p" || return 1
    # Both FINs seen: transitory (2 s), then gone.
    no_tcp() { ! sessions --proto tcp --v6 "$CLI6" | grep -q "$SRV4:8200 "; }
    wait_for 60 no_tcp || { echo "TCP session still there"; return 1; }
}
check "$N64 tcp: established session listed, closed, then expires (transitory 2 s)" tcp_expiry

# --- static BIB and hairpinning ---------------------------------------------------------------
port_forward() {
    bib --proto tcp | grep -q "^tcp \[$CLI6\]:8101 <-> $POOL4:8080 static" || { bib; return 1; }
    local got
    in_srv timeout 60 curl -sS --max-time 50 -o "$TMP/gf" "http://$POOL4:8080/blob" || return 1
    got="$(sha256sum <"$TMP/gf" | cut -d' ' -f1)"
    [ "$got" = "$SUM" ] || { echo "checksum mismatch"; return 1; }
}
check "$N64 static BIB: IPv4 client -> $POOL4:8080 reaches [$CLI6]:8101 (10 MB, sha256 equal)" port_forward

hairpin() {
    local got
    in_cli2 timeout 60 curl -sS -g --max-time 50 -o "$TMP/gh" "http://[$POOL4_AS6]:8080/blob" || return 1
    got="$(sha256sum <"$TMP/gh" | cut -d' ' -f1)"
    [ "$got" = "$SUM" ] || { echo "checksum mismatch"; return 1; }
    # C appears to A as an address under pool6 (its pool4 binding), not as itself.
    sessions --proto tcp --v6 "$CLI2_6" | grep -q "\[$CLI2_6\]:[0-9]* \[$POOL4_AS6\]:8080 " || { sessions --proto tcp; return 1; }
}
check "$N64 hairpinning: C -> [$POOL4_AS6]:8080 -> A through the pool4 address (10 MB)" hairpin

# --- fragments --------------------------------------------------------------------------------
check "$N64 udp: 3000-byte datagrams (fragments) A -> IPv4 server and back" \
    in_cli timeout 20 "$PY" "$HERE/udp-check.py" "$SRV6" 9200 --size 3000 --count 5
check "$N64 udp: 3000-byte datagrams (fragments) C -> IPv4 server and back" \
    in_cli2 timeout 20 "$PY" "$HERE/udp-check.py" "$SRV6" 9200 --size 3000 --count 5
# RFC 6146 §3.4: the server's echoes carry UDP checksum 0 and leave it as IPv4 fragments; the
# gateway MUST reassemble them and calculate the checksum (the IPv6 client's kernel drops UDP
# with checksum 0, and no fragment alone can be given one).
check "$N64 udp: 3000-byte echoes with UDP checksum 0, fragmented by the IPv4 server, reassembled with the checksum calculated" \
    in_cli timeout 20 "$PY" "$HERE/udp-check.py" "$SRV6" 9202 --size 3000 --count 5
check "$N64 ping -s 3000: fragmented ICMP echo reassembled and translated both ways" \
    in_cli ping -6 -c 3 -i 0.3 -W 2 -s 3000 "$SRV6"
# RFC 6146 §3.4: fragments arriving out of order. Linux sends its fragments in order, so a raw
# socket writes each datagram's three fragments last-first (then middle-first); the gateway holds
# the early ones until the first fragment is translated, the IPv4 server reassembles the datagram
# and its echo comes back whole. The gateway's counters show the fragments were held.
frag_order() {
    local out rc=0
    in_cli timeout 20 "$PY" "$HERE/frag-order.py" "$CLI6" "$SRV6" 9200 --size 2400 --count 3 \
        --order last-first || rc=1
    in_cli timeout 20 "$PY" "$HERE/frag-order.py" "$CLI6" "$SRV6" 9200 --size 2400 --count 3 \
        --order middle-first || rc=1
    out="$(counters)"
    echo "$out" | grep -Eq "fragment_held=([6-9]|[1-9][0-9])" || {
        echo "early fragments not counted as fragment_held (expected >= 6): $out"
        return 1
    }
    return "$rc"
}
check "$N64 udp: datagrams sent as 3 fragments last-first and middle-first are held, translated and echoed whole (RFC 6146 §3.4)" frag_order

# --- ICMP errors from the IPv4 side -----------------------------------------------------------
two_traces() {
    local pa pc rc=0 f
    in_cli timeout 40 traceroute -6 -n -q 1 -w 2 -m 6 "$SRV6" >"$TMP/ta" 2>&1 &
    pa=$!
    in_cli2 timeout 40 traceroute -6 -n -q 1 -w 2 -m 6 "$SRV6" >"$TMP/tc" 2>&1 &
    pc=$!
    wait "$pa" || rc=1
    wait "$pc" || rc=1
    for f in ta tc; do
        cat "$TMP/$f"
        grep -q " $GW4_AS6_HEX " "$TMP/$f" || { echo "$f: no translated Time Exceeded"; rc=1; }
        tail -n 1 "$TMP/$f" | grep -q " $SRV6_HEX " || { echo "$f: destination not reached"; rc=1; }
    done
    return "$rc"
}
check "$N64 traceroute -6 from A and C at once: each gets its Time Exceeded / Port Unreachable" two_traces

pmtu() {
    local out want=$((SRV_LINK_MTU + 20))
    in_cli2 ip -6 route flush cache >/dev/null 2>&1 || true
    out="$(in_cli2 timeout 30 tracepath -6 -n -m 6 "$SRV6" 2>&1)"
    echo "$out"
    echo "$out" | grep -q "pmtu $want" || { echo "expected pmtu $want"; return 1; }
}
check "$N64 tracepath -6 from C: Fragmentation Needed -> Packet Too Big (pmtu $((SRV_LINK_MTU + 20)))" pmtu

# --- mapping log and reload -------------------------------------------------------------------
mapping_log() {
    wait_for 30 grep -q "\"bib_removed\".*\"v6_addr\":\"$CLI6\"" "$MAPLOG" || { head -n 3 "$MAPLOG"; return 1; }
    grep -q "\"event\":\"bib_created\",\"proto\":\"udp\",\"v6_addr\":\"$CLI2_6\"" "$MAPLOG" || return 1
    head -n 1 "$MAPLOG"
    "$PY" -c "
import json, sys
for l in open('$MAPLOG'):
    e = json.loads(l)
    assert e['v4_addr'] == '$POOL4' and e['unix_ms'] > 0, e
"
}
check "$N64 mapping log: JSON lines for bindings created and removed, all on $POOL4" mapping_log

reload_keeps_state() {
    local p c tb ta ib ia lport
    # An idle TCP connection (nothing is sent across the reload, so nothing could recreate its
    # session) and a running ping. A reload that wiped the tables would lose the TCP session (its
    # next segment, not a SYN, is then dropped: RFC 6146 §3.5.2.2) and the ping would recreate its
    # ICMP session, maybe on another pool4 identifier; both are compared across the reload.
    rm -f "$TMP/reload-go"
    in_cli timeout 30 "$PY" -c "
import os, socket, sys, time
s = socket.create_connection(('$SRV6', 8200))
print(s.getsockname()[1], flush=True)
end = time.time() + 25
while not os.path.exists('$TMP/reload-go') and time.time() < end:
    time.sleep(0.05)
s.settimeout(5)
s.sendall(b'GET /blob HTTP/1.0\\r\\n\\r\\n')
got = s.recv(100)
print(got.split(b'\\r\\n')[0].decode(errors='replace'))
sys.exit(0 if got.startswith(b'HTTP/1.0 200') else 1)
" >"$TMP/idle-tcp" 2>&1 &
    c=$!
    in_cli ping -6 -c 30 -i 0.1 -W 2 "$SRV6" >"$TMP/ping-r" 2>&1 &
    p=$!
    # The pool4 port of the idle connection's session, and the ping's pool4 identifier.
    pool4_of() { # PROTO V6_PORT (empty: any)
        sessions --proto "$1" --v6 "$CLI6" | awk -v p="${2:-}" -v d="$SRV4" '
            $1 != "" && (p == "" || $2 ~ "]:" p "$") && $6 ~ "^" d ":" { sub(/.*:/, "", $5); print $5; exit }'
    }
    icmp_listed() { [ -n "$(pool4_of icmp)" ]; }
    wait_for 30 grep -q '^[0-9]' "$TMP/idle-tcp" || { echo "the idle connection did not open"; return 1; }
    lport="$(head -n 1 "$TMP/idle-tcp")"
    wait_for 30 icmp_listed
    tb="$(pool4_of tcp "$lport")" ib="$(pool4_of icmp)"
    EXTRA_STATIC="[[nat64.static_bib]]
proto = \"udp\"
ipv6 = \"[$CLI6]:9101\"
ipv4 = \"$POOL4:9080\"" write_nat64_config "$TMP/nat64.toml"
    kill -HUP "$NAT64D_PID"
    # Applied when the new static entry is listed (bounded wait).
    static_listed() { bib --proto udp | grep -q "^udp \[$CLI6\]:9101 <-> $POOL4:9080 static"; }
    wait_for 50 static_listed || { echo "new static entry missing"; bib; return 1; }
    ta="$(pool4_of tcp "$lport")" ia="$(pool4_of icmp)"
    touch "$TMP/reload-go"
    wait "$p"
    wait "$c" || { echo "the idle TCP connection did not survive the reload:"; cat "$TMP/idle-tcp"; return 1; }
    echo "idle TCP session: pool4 port ${tb:-none} -> ${ta:-none}; ping: pool4 id ${ib:-none} -> ${ia:-none}"
    grep -q " 0% packet loss" "$TMP/ping-r" || { tail -n 2 "$TMP/ping-r"; return 1; }
    [ -n "$tb" ] && [ "$tb" = "$ta" ] || { echo "the idle TCP session was not kept"; return 1; }
    [ -n "$ib" ] && [ "$ib" = "$ia" ] || { echo "the ping's ICMP session was not kept"; return 1; }
    # A table setting changed: refused with a warning, the running tables stay.
    MAX_SESSIONS=100 write_nat64_config "$TMP/nat64.toml"
    kill -HUP "$NAT64D_PID"
    wait_for 20 grep -q "reload: nat64.max_sessions changed; this takes effect only after a restart" "$TMP/nat64d.log"
}
check "$N64 SIGHUP: static BIB entry added in place; an idle TCP session and a running ping's ICMP session keep their pool4 ports, the idle connection still works, the ping loses nothing; a table change needs a restart" reload_keeps_state

# --- a full table -----------------------------------------------------------------------------
stop_nat64d >/dev/null 2>&1 || true
MAX_SESSIONS=8 UDP_TIMEOUT=30 write_nat64_config "$TMP/nat64.toml"
if start_nat64d "$TMP/nat64.toml" "$TMP/nat64d.log"; then
    table_full() {
        local p out n
        in_cli ping -6 -c 40 -i 0.1 -W 2 "$SRV6" >"$TMP/ping-f" 2>&1 &
        p=$!
        sleep 0.5
        # 30 new UDP flows from C: 7 fit next to the ping's session, the rest are refused.
        in_cli2 "$PY" -c "
import socket
for i in range(30):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.sendto(b'x', ('$SRV6', 9200))
    s.close()
"
        wait "$p"
        grep -q " 0% packet loss" "$TMP/ping-f" || { tail -n 2 "$TMP/ping-f"; return 1; }
        n="$(sessions | grep -c -E '^(udp|tcp|icmp) ')"
        [ "$n" -le 8 ] || { echo "$n sessions with max_sessions = 8"; return 1; }
        out="$(counters)"
        echo "$out"
        echo "$out" | grep -q "table_full=2[0-9]" || { echo "refusals not counted as table_full (expected 22-23)"; return 1; }
    }
    check "$N64 table full (max_sessions = 8): new flows refused and counted, the running ping loses nothing" table_full
else
    fail "$N64 table full: nat64d restarts with max_sessions = 8"
fi

# --- fair shares (issue 9) --------------------------------------------------------------------
stop_nat64d >/dev/null 2>&1 || true
MAX_SESSIONS=40 UDP_TIMEOUT=30 write_nat64_config "$TMP/nat64.toml"
bg ip netns exec "$NS_SRV" timeout 90 "$PY" "$HERE/udp-echo.py" "$SRV4" 9201 --lifetime 90
sed -i '/^max_sessions = /a max_sessions_per_host = 10\nsubscriber_prefix_len = 64' "$TMP/nat64.toml"
if start_nat64d "$TMP/nat64.toml" "$TMP/nat64d.log"; then
    prefix_flood() {
        local out n i
        # A: 30 more addresses in its /64 (a host rotating privacy addresses), one flow from
        # each, 3 rounds: at most 10 sessions for the whole /64.
        for i in $(seq 1 30); do
            in_cli ip addr add "2001:db8:1::f$i/64" dev c0 nodad preferred_lft 0 2>/dev/null || true
        done
        in_cli timeout 20 "$PY" -c "
import socket
for r in range(3):
    for i in range(1, 31):
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind(('2001:db8:1::f%d' % i, 0))
        s.sendto(b'x', ('$SRV6', 9200))
        s.close()
"
        # C (another /64) still gets every one of its 10 new flows, answered.
        in_cli2 timeout 20 "$PY" -c "
import socket, sys
ok = 0
for i in range(10):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(b'ping%d' % i, ('$SRV6', 9201))
    try:
        s.recvfrom(100); ok += 1
    except OSError:
        pass
    s.close()
print('C got', ok, 'of 10 answers')
sys.exit(0 if ok == 10 else 1)
" || return 1
        n="$(sessions --proto udp | grep -c '2001:db8:1::f' || true)"
        [ "$n" -le 10 ] || { echo "$n sessions for A's /64 with max_sessions_per_host = 10"; return 1; }
        out="$(counters)"
        echo "$out"
        echo "$out" | grep -q "subscriber_session_limit=[1-9]" || { echo "refusals not counted as subscriber_session_limit"; return 1; }
        for i in $(seq 1 30); do in_cli ip addr del "2001:db8:1::f$i/64" dev c0 2>/dev/null || true; done
    }
    check "$N64 one host rotating 30 addresses of its /64 floods: its /64 holds at most 10 sessions, a second host gets 10/10 new flows" prefix_flood
else
    fail "$N64 fair shares: nat64d restarts with max_sessions_per_host = 10"
fi

# A fresh table (the flood above left A's /64 at its share until UDP expiry).
stop_nat64d >/dev/null 2>&1 || true
write_nat64_config "$TMP/nat64.toml"
if start_nat64d "$TMP/nat64.toml" "$TMP/nat64d.log"; then

    absent_client() {
        local st i
        # A SYN from an address no host answers for (an absent client): the client namespace
        # binds it without owning it (ip_nonlocal_bind), so the server's SYN-ACKs find nobody.
        # The session must not become ESTABLISHED (tcp_est 30 s in this lab; 7200 s by default)
        # and must end with TCP_TRANS (2 s here).
        in_cli sysctl -qw net.ipv6.ip_nonlocal_bind=1
        in_cli timeout 5 "$PY" -c "
import socket, time
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.bind(('2001:db8:1::ab', 0))
s.setblocking(False)
s.connect_ex(('$SRV6', 8200))
time.sleep(0.3)
s.close()  # in SYN-SENT: no more SYNs
"
        in_cli sysctl -qw net.ipv6.ip_nonlocal_bind=0
        # Looked for at once (bounded polling), not after a fixed sleep: the session lives only
        # TCP_TRANS (2 s) from the SYN, and under load a sleep of 1 s plus the query missed it
        # (seen once with another suite running). A session that became ESTABLISHED instead
        # never shows V4_SYN_RCV, or stays past the wait below.
        half_open() { sessions --v6 2001:db8:1::ab --proto tcp | grep -q "V4_SYN_RCV"; }
        wait_for 20 half_open || { echo "expected V4_SYN_RCV"; return 1; }
        sessions --v6 2001:db8:1::ab --proto tcp
        # Gone after TCP_TRANS, although the server retransmits its SYN-ACK (bounded: 10 s).
        for i in $(seq 1 100); do
            [ -z "$(sessions --v6 2001:db8:1::ab --proto tcp | grep '^tcp ')" ] && return 0
            sleep 0.1
        done
        echo "half-open session still there after 10 s:"
        sessions --v6 2001:db8:1::ab --proto tcp
        return 1
    }
    check "$N64 SYN from an absent client: half open (V4_SYN_RCV), gone after TCP_TRANS, not ESTABLISHED" absent_client

    frag_flood() {
        local f rc=0 out
        # A floods first fragments that never complete (UDP and ICMPv6, random identifications,
        # bounded: 12 s and 150,000 packets) while C's fragmented traffic must still pass.
        in_cli timeout 15 "$PY" -c "
import random, socket, struct, time
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 44)  # the kernel writes next header = 44
s.bind(('$CLI6', 0))
udp = struct.pack('!HHHH', 40000, 9300, 1208, 0x1234) + b'x' * 1200
icmp = struct.pack('!BBHHH', 128, 0, 0x1234, 7, 1) + b'x' * 1200
end, n = time.time() + 12, 0
while time.time() < end and n < 150000:
    for nh, body in ((17, udp), (58, icmp)):
        s.sendto(struct.pack('!BBHI', nh, 0, 1, random.getrandbits(32)) + body, ('$SRV6', 0))
        n += 1
    if n % 400 == 0:
        time.sleep(0.005)
print('flood: sent', n, 'incomplete first fragments')
" >"$TMP/flood.out" 2>&1 &
        f=$!
        sleep 2
        in_cli2 timeout 20 "$PY" "$HERE/udp-check.py" "$SRV6" 9201 --size 3000 --count 5 || rc=1
        in_cli2 ping -6 -c 3 -i 0.3 -W 2 -s 3000 "$SRV6" || rc=1
        wait "$f"
        cat "$TMP/flood.out"
        out="$(counters)"
        echo "$out"
        echo "$out" | grep -q "fragment_source_limit=[1-9]" || { echo "flood not limited as fragment_source_limit"; rc=1; }
        return "$rc"
    }
    check "$N64 fragment flood from A (incomplete first fragments): C's 3000-byte UDP and ping -s 3000 still pass" frag_flood
else
    fail "$N64 absent client: nat64d restarts"
fi

stop_clean() {
    stop_nat64d || { echo "exit status $?"; return 1; }
    [ ! -e "$CTL" ] || { echo "control socket left behind"; return 1; }
    local out
    out="$(in_gw "$NAT64D" sessions --socket "$CTL" 2>&1)" && { echo "sessions succeeded without a daemon"; return 1; }
    echo "$out"
    echo "$out" | grep -q "is nat64d running" || return 1
}
check "$N64 SIGTERM: exit 0, control socket removed; nat64d sessions then says the daemon is not running" stop_clean
