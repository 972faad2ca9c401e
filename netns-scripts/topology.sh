#!/usr/bin/env bash
# topology.sh up|down: the three-namespace test topology (see README.md in this folder).
#
#   ${NS_PREFIX}cli (IPv6 only)       ${NS_PREFIX}gw                    ${NS_PREFIX}srv (IPv4 only)
#   c0 2001:db8:1::2/64  <-veth->  gc 2001:db8:1::1/64
#                                   gs 198.51.100.1/24  <-veth->  s0 198.51.100.2/24  (MTU 1400)
#
# The client routes everything IPv6 to the gateway; the server routes 192.0.2.0/24 (the EAMT
# addresses of IPv6 hosts) to the gateway. With BENCH_V6=1 the server also gets 2001:db8:2::2/64
# (gateway 2001:db8:2::1) for the kernel-forwarding ceiling in bench.sh.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_root

# Deletes this prefix's namespaces (and with them every veth and TUN inside).
down() {
    local ns
    for ns in "${NS_ALL[@]}"; do
        ip netns del "$ns" 2>/dev/null || true
    done
}

# Refuses when any name exists (another run with this NS_PREFIX); on a failure half-way, deletes
# what it created.
up() {
    names_free "${NS_ALL[@]}" || exit 1
    trap 'echo "topology.sh up failed; deleting what it created" >&2; down' ERR
    ip netns add "$NS_CLI"
    ip netns add "$NS_GW"
    ip netns add "$NS_SRV"
    for ns in "$NS_CLI" "$NS_GW" "$NS_SRV"; do
        ip -n "$ns" link set lo up
    done
    # veth pairs are created inside the gateway namespace and one end moved out, so nothing
    # ever appears in the host namespace.
    ip -n "$NS_GW" link add gc type veth peer name c0 netns "$NS_CLI"
    ip -n "$NS_GW" link add gs type veth peer name s0 netns "$NS_SRV"

    # Client: IPv6 only.
    in_cli sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    in_cli sysctl -qw net.ipv6.conf.c0.accept_dad=0
    ip -n "$NS_CLI" addr add "$CLI6/64" dev c0
    ip -n "$NS_CLI" link set c0 up
    ip -n "$NS_CLI" -6 route add default via "$GW6" dev c0

    # Gateway: forwards both families.
    in_gw sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
    in_gw sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    in_gw sysctl -qw net.ipv6.conf.gc.accept_dad=0 net.ipv6.conf.gs.accept_dad=0
    ip -n "$NS_GW" addr add "$GW6/64" dev gc
    ip -n "$NS_GW" addr add "$GW4/24" dev gs
    ip -n "$NS_GW" link set gs mtu "$SRV_LINK_MTU"
    ip -n "$NS_GW" link set gc up
    ip -n "$NS_GW" link set gs up

    # Server: IPv4 only.
    if [ "${BENCH_V6:-0}" = 1 ]; then
        in_srv sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
        in_srv sysctl -qw net.ipv6.conf.s0.accept_dad=0
        ip -n "$NS_GW" addr add 2001:db8:2::1/64 dev gs
        ip -n "$NS_SRV" addr add 2001:db8:2::2/64 dev s0
    else
        in_srv sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
        in_srv sysctl -qw net.ipv6.conf.s0.disable_ipv6=1
    fi
    ip -n "$NS_SRV" addr add "$SRV4/24" dev s0
    ip -n "$NS_SRV" link set s0 mtu "$SRV_LINK_MTU"
    ip -n "$NS_SRV" link set s0 up
    ip -n "$NS_SRV" route add 192.0.2.0/24 via "$GW4" dev s0
    if [ "${BENCH_V6:-0}" = 1 ]; then
        ip -n "$NS_SRV" -6 route add default via 2001:db8:2::1 dev s0
    fi
    # Every hop's neighbour entry is permanent (pin_neigh in lib.sh): no case depends on neighbour
    # discovery or on room in the host-wide neighbour table, which other runs can fill.
    pin_neigh "$NS_CLI" c0 "$GW6" "$NS_GW" gc
    pin_neigh "$NS_GW" gc "$CLI6" "$NS_CLI" c0
    pin_neigh "$NS_GW" gs "$SRV4" "$NS_SRV" s0
    pin_neigh "$NS_SRV" s0 "$GW4" "$NS_GW" gs
    if [ "${BENCH_V6:-0}" = 1 ]; then
        pin_neigh "$NS_GW" gs 2001:db8:2::2 "$NS_SRV" s0
        pin_neigh "$NS_SRV" s0 2001:db8:2::1 "$NS_GW" gs
    fi
    trap - ERR
}

case "${1:-}" in
up) up ;;
down) down ;;
*)
    echo "usage: $0 up|down   (env: NS_PREFIX=${NS_PREFIX}, SRV_LINK_MTU=${SRV_LINK_MTU}, BENCH_V6=0|1)" >&2
    exit 2
    ;;
esac
