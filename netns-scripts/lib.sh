# shellcheck shell=bash
# Shared settings and helpers for the netns scripts. Source it; do not run it.
#
# Every name a run uses is derived from NS_PREFIX (default "n64-"): namespaces, temporary
# directories (new_tmp), sockets and files inside them, /etc/netns entries. A script refuses to
# start when a namespace it needs exists (names_free) and deletes only what it made, so two runs
# with different prefixes never meet. Only documentation addresses (RFC 3849, RFC 5737) and
# 64:ff9b::/96 are used.

NS_PREFIX="${NS_PREFIX:-n64-}"
case "$NS_PREFIX" in
*[!A-Za-z0-9_.-]* | "")
    echo "NS_PREFIX '$NS_PREFIX': use letters, digits, '-', '_' or '.' only" >&2
    exit 2
    ;;
esac
NS_CLI="${NS_PREFIX}cli"     # IPv6-only client (also the IPv6-only server of the EAMT case)
NS_GW="${NS_PREFIX}gw"       # the gateway: nat64d (or the kernel / TAYGA in bench.sh)
NS_SRV="${NS_PREFIX}srv"     # IPv4-only server (also the IPv4-only client of the EAMT case)

# Addresses
CLI6=2001:db8:1::2           # client, on the client link
GW6=2001:db8:1::1            # gateway, on the client link
GW4=198.51.100.1             # gateway, on the server link
SRV4=198.51.100.2            # server, on the server link
CLI4=192.0.2.2               # the client's IPv4 address (EAMT 192.0.2.2 <-> 2001:db8:1::2)
POOL6=64:ff9b::              # pool6 prefix /96
SRV6="${POOL6}${SRV4}"       # the server as the client sees it (64:ff9b::c633:6402)
GW4_AS6="${POOL6}${GW4}"     # the gateway's IPv4 address as the client sees it
SRV6_HEX=64:ff9b::c633:6402  # the same two, as ping/traceroute print them
GW4_AS6_HEX=64:ff9b::c633:6401
SRV_LINK_MTU="${SRV_LINK_MTU:-1400}"   # the reduced-MTU IPv4 link
TUN_NAME="${TUN_NAME:-nat64}"

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NAT64D="${NAT64D:-${CARGO_TARGET_DIR:-$REPO/target}/release/nat64d}"

# --- the Rust toolchain --------------------------------------------------------------------------
# The minimum comes from Cargo.toml (rust-version), the one place it is written.
RUST_MIN="$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' "$REPO/Cargo.toml" | head -n 1)"
RUST_HINT="nat64d needs Rust ${RUST_MIN} or newer (rust-version in Cargo.toml; Debian's rustc package is older). Install it with rustup: curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal && . \"\$HOME/.cargo/env\" (or, with rustup already there: rustup update stable)"

# Stops the script early, with RUST_HINT, when cargo/rustc are missing or older than RUST_MIN.
need_rust() {
    # shellcheck source=/dev/null
    [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
    local have
    if ! command -v cargo >/dev/null 2>&1 || ! command -v rustc >/dev/null 2>&1; then
        echo "$(basename "$0"): cargo/rustc not found. $RUST_HINT" >&2
        exit 1
    fi
    have="$(rustc --version 2>/dev/null | awk '{print $2}')"
    if ! version_ge "${have%%-*}" "$RUST_MIN"; then
        echo "$(basename "$0"): rustc ${have:-?} is too old. $RUST_HINT" >&2
        exit 1
    fi
}

# version_ge A B: A >= B for dotted numeric versions (1.88 = 1.88.0).
version_ge() {
    local a b i x y
    IFS=. read -r -a a <<<"$1"
    IFS=. read -r -a b <<<"$2"
    for i in 0 1 2; do
        x="${a[$i]:-0}" y="${b[$i]:-0}"
        [[ "$x" =~ ^[0-9]+$ && "$y" =~ ^[0-9]+$ ]] || return 1
        [ "$x" -gt "$y" ] && return 0
        [ "$x" -lt "$y" ] && return 1
    done
    return 0
}

# apt_install PKG...: waits (up to 5 min) for another apt/dpkg to release its lock instead of
# failing at once with "Could not get lock /var/lib/dpkg/lock-frontend".
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq &&
        apt-get -o DPkg::Lock::Timeout=300 install -y -qq "$@" >/dev/null
}

# --- names derived from NS_PREFIX ----------------------------------------------------------------
# new_tmp WHAT: a fresh directory /tmp/nat64d-${NS_PREFIX}WHAT.XXXXXX.
new_tmp() {
    mktemp -d "/tmp/nat64d-${NS_PREFIX}$1.XXXXXX"
}

# names_free NS...: fails, naming them, when any of these namespaces exists (another run with
# this NS_PREFIX, or one that was killed: delete its namespaces with `NS_PREFIX=... topology.sh down`).
names_free() {
    local ns taken=()
    for ns in "$@"; do
        [ -e "/run/netns/$ns" ] && taken+=("$ns")
    done
    if [ "${#taken[@]}" -gt 0 ]; then
        echo "$(basename "$0"): namespace(s) ${taken[*]} exist: another run uses NS_PREFIX=$NS_PREFIX (or a killed run left them: NS_PREFIX=$NS_PREFIX $REPO/netns-scripts/topology.sh down). Choose another NS_PREFIX." >&2
        return 1
    fi
}

# pin_neigh NS DEV ADDR PEER_NS PEER_DEV: a permanent neighbour entry in NS on DEV for ADDR (the
# address of PEER_DEV in PEER_NS, whose MAC it reads). The kernel's neighbour tables are shared by
# every namespace of the host (gc_thresh3, 1024 entries by default, counts them all): another run's
# flood of unresolved addresses fills it, its forced garbage collection evicts our entries and new
# ones cannot be made ("neighbor table overflow"), so a case loses every packet for seconds. Two
# hostile.sh runs at once did exactly that (2,646 failed allocations; each run's legitimate ping
# lost 15 %). Permanent entries are neither evicted nor counted against the limit (issue 10).
pin_neigh() {
    local mac
    mac="$(ip -n "$4" -o link show "$5" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')"
    [ -n "$mac" ] || { echo "pin_neigh: no MAC address for $5 in $4" >&2; return 1; }
    ip -n "$1" neigh replace "$3" lladdr "$mac" dev "$2" nud permanent
}

in_cli() { ip netns exec "$NS_CLI" "$@"; }
in_gw() { ip netns exec "$NS_GW" "$@"; }
in_srv() { ip netns exec "$NS_SRV" "$@"; }

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "$(basename "$0"): needs root (network namespaces)" >&2
        exit 1
    fi
}

# Installs the Debian packages the scripts need, only when a tool is missing.
ensure_packages() {
    local missing=() pair tool pkg
    for pair in ip:iproute2 ping:iputils-ping curl:curl socat:socat traceroute:traceroute \
        tracepath:iputils-tracepath iperf3:iperf3 python3:python3 "$@"; do
        tool="${pair%%:*}"
        pkg="${pair#*:}"
        command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "installing: ${missing[*]}"
        apt_install "${missing[@]}"
    fi
}

# Writes the nat64d config used by the tests to $1.
write_config() {
    cat >"$1" <<CFG
mode = "siit"
pool6 = ["${POOL6}/96"]
# Documentation addresses behind the Well-Known Prefix: a lab, so RFC 6052 §3.1 is relaxed.
wkp_strict = false
[tun]
name = "${TUN_NAME}"
mtu = 1500
queues = ${QUEUES:-2}
offload = ${OFFLOAD:-true}
[siit]
eamt = [
    { ipv4 = "${CLI4}", ipv6 = "${CLI6}" },
${EXTRA_EAM:-}
]
rfc6791_pool = ["192.0.2.254/32"]
[log]
level = "${LOG_LEVEL:-info}"
CFG
}

# Starts nat64d in the gateway namespace with config $1, logging to $2; sets NAT64D_PID and
# waits until the routes are in place (bounded).
start_nat64d() {
    # Truncate here, not in the child: the child's redirection may run after the first grep
    # below, which would then find the previous run's "ready".
    : >"$2"
    # A simple command (not a shell function) so that $! is nat64d's own PID.
    ip netns exec "$NS_GW" "$NAT64D" run --config "$1" >>"$2" 2>&1 &
    NAT64D_PID=$!
    local i
    for i in $(seq 1 200); do
        if grep -qE ' ready$|"ready"' "$2" 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$NAT64D_PID" 2>/dev/null; then
            echo "nat64d exited at start:" >&2
            cat "$2" >&2
            return 1
        fi
        sleep 0.05
    done
    echo "nat64d did not become ready in 10 s" >&2
    return 1
}

# Stops nat64d (SIGTERM), waiting up to 5 s; returns its exit status.
stop_nat64d() {
    [ -n "${NAT64D_PID:-}" ] || return 0
    kill -TERM "$NAT64D_PID" 2>/dev/null || true
    local i rc=0
    for i in $(seq 1 50); do
        kill -0 "$NAT64D_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$NAT64D_PID" 2>/dev/null; then
        kill -KILL "$NAT64D_PID" 2>/dev/null || true
        rc=99
    fi
    wait "$NAT64D_PID" 2>/dev/null || rc=$?
    NAT64D_PID=
    return "$rc"
}

# --- stateful NAT64 (nat64-cases.sh, bench.sh nat64 rows) ------------------------------------
NS_CLI2="${NS_PREFIX}cl2"    # a second IPv6-only client namespace (nat64-cases.sh adds it)
CLI2_6=2001:db8:3::2         # its address; its gateway is 2001:db8:3::1
CLI6B=2001:db8:1::21         # a second IPv6-only host address in the client namespace
POOL4=192.0.2.1              # the one IPv4 address the IPv6 clients share
POOL4_AS6=64:ff9b::c000:201  # pool4 as the IPv6 clients see it (hairpinning)
in_cli2() { ip netns exec "$NS_CLI2" "$@"; }
# Every namespace of the topology (topology.sh down deletes these and only these).
NS_ALL=("$NS_CLI" "$NS_GW" "$NS_SRV" "$NS_CLI2")

# Writes a mode = "nat64" config to $1. Env: MAX_SESSIONS, CTL_SOCK, MAPLOG, OFFLOAD, QUEUES,
# EXTRA_STATIC (more [[nat64.static_bib]] tables). Short timeouts (a lab: RFC minimums off).
write_nat64_config() {
    cat >"$1" <<CFG
mode = "nat64"
pool6 = ["${POOL6}/96"]
wkp_strict = false
[tun]
name = "${TUN_NAME}"
mtu = 1500
queues = ${QUEUES:-2}
offload = ${OFFLOAD:-true}
[nat64]
enforce_rfc_minimums = false
max_sessions = ${MAX_SESSIONS:-65536}
filtering = "endpoint-independent"
[nat64.pool4]
addresses = ["${POOL4}"]
tcp = "1024-65535"
udp = "1024-65535"
[nat64.timeouts]
udp = ${UDP_TIMEOUT:-3}
icmp = 3
tcp_est = 30
tcp_trans = 2
[[nat64.static_bib]]
proto = "tcp"
ipv6 = "[${CLI6}]:8101"
ipv4 = "${POOL4}:8080"
${EXTRA_STATIC:-}
[nat64.mapping_log]
enabled = ${MAPLOG_ON:-true}
path = "${MAPLOG:-/tmp/nat64d-${NS_PREFIX}mappings.jsonl}"
[nat64.control]
socket = "${CTL_SOCK:-/tmp/nat64d-${NS_PREFIX}control.sock}"
group = "${CTL_GROUP:-root}"
[log]
level = "${LOG_LEVEL:-info}"
CFG
}

# --- counting cases --------------------------------------------------------------------------------
# count_cases FILE [FUNC | - FUNC]: the cases FILE holds (all; only those in function FUNC; all but
# those in FUNC). A case is a line that starts with `check ` or `pass ` (the `fail` in the else
# branch of a `pass` is the same case). A script may instead declare `EXPECTED_CASES=N` at the start
# of a line, which wins. run.sh and hostile.sh compare these with the cases that ran.
count_cases() {
    local file="$1" sel="${2:-}" func="${3:-${2:-}}" declared
    if [ -z "$sel" ]; then
        declared="$(sed -n 's/^EXPECTED_CASES=\([0-9][0-9]*\).*/\1/p' "$file" | head -n 1)"
        if [ -n "$declared" ]; then
            echo "$declared"
            return
        fi
    fi
    awk -v sel="$sel" -v fn="$func" '
        $0 ~ "^" fn "\\(\\) *\\{" { infunc = 1 }
        infunc && /^\}/ { infunc = 0; next }
        /^[[:space:]]*(check|pass)[[:space:]]/ {
            if (sel == "" || (sel == "-" && !infunc) || (sel != "-" && infunc)) n++
        }
        END { print n + 0 }' "$file"
}
