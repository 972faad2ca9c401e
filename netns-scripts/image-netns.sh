#!/usr/bin/env bash
# image-netns.sh: builds the nat64d container image (deploy/container/build.sh, FROM scratch) with
# podman and runs it as the DaemonSet does -- read-only root, every capability dropped but
# NET_ADMIN and NET_BIND_SERVICE, /dev/net/tun -- inside the gateway namespace of the test
# topology (podman run --network ns:/run/netns/${NS_PREFIX}gw). A ping and a curl from the
# IPv6-only client cross it, `podman exec ... nat64d sessions` lists them, and podman stop leaves
# no TUN device behind.
#
# Each case is a `check` line; the last line is "N passed, N failed". A missing prerequisite
# (root, podman/runc, the binary) is a failed case with the reason, never a silent skip.
# Podman's storage, run state and containers.conf live in a temporary directory named after
# NS_PREFIX, deleted on exit; nothing under /etc or /var/lib/containers is used.
#
# Env: NS_PREFIX (default n64-), NAT64D (default target/release/nat64d), KEEP_LOGS=1.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=lib.sh
. "$HERE/lib.sh"
PASSED=0
FAILED=0
TMP="$(new_tmp image)"
CTR="${NS_PREFIX}nat64d"
IMAGE="localhost/nat64d-${NS_PREFIX%-}:test"
TOPO_UP=0
HTTP_PID=

check() {
    local name="$1" rc=0
    shift
    "$@" >"$TMP/case.out" 2>&1 || rc=$?
    if [ "$rc" -eq 0 ]; then
        echo "PASS  $name"
        PASSED=$((PASSED + 1))
    else
        echo "FAIL  $name"
        sed 's/^/      /' "$TMP/case.out" | tail -n 20
        FAILED=$((FAILED + 1))
    fi
    return "$rc"
}
pod() { podman --root "$TMP/storage" --runroot "$TMP/runroot" --storage-driver vfs --tmpdir "$TMP/ptmp" "$@"; }
export CONTAINERS_CONF="$TMP/containers.conf"

cleanup() {
    if [ -d "$TMP/storage" ] && command -v podman >/dev/null; then
        pod rm -f -t 5 "$CTR" >/dev/null 2>&1 || true
        pod rmi -f "$IMAGE" >/dev/null 2>&1 || true
    fi
    [ -n "$HTTP_PID" ] && { kill "$HTTP_PID" 2>/dev/null; wait "$HTTP_PID" 2>/dev/null; }
    [ "$TOPO_UP" = 1 ] && "$HERE/topology.sh" down >/dev/null 2>&1
    if [ "${KEEP_LOGS:-0}" = 1 ]; then echo "logs kept in $TMP"; else
        # vfs layers may hold read-only directories.
        chmod -R u+w "$TMP" 2>/dev/null
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

prereqs() {
    local miss=()
    [ "$(id -u)" -eq 0 ] || miss+=("root (network namespaces)")
    command -v podman >/dev/null || miss+=("podman (apt-get install podman buildah runc)")
    command -v runc >/dev/null || miss+=("runc (apt-get install runc)")
    command -v curl >/dev/null || miss+=("curl")
    [ -x "$NAT64D" ] || miss+=("the binary $NAT64D (cargo build --release)")
    [ -c /dev/net/tun ] || miss+=("/dev/net/tun")
    [ "${#miss[@]}" -eq 0 ] || { echo "missing: ${miss[*]}"; return 1; }
}
if ! check "prerequisites: root, podman, runc, curl, the release binary, /dev/net/tun" prereqs; then
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi

mkdir -p "$TMP/storage" "$TMP/runroot" "$TMP/ptmp"
# podman's default crun cannot run here and raising rlimits is refused: runc, explicit ulimits,
# cgroupfs and file events (no systemd in these sessions).
cat >"$CONTAINERS_CONF" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$TMP/events.log"
CONF

build_image() {
    local t0 t1 out
    t0=$(date +%s.%N)
    out="$(PODMAN="podman --root $TMP/storage --runroot $TMP/runroot --storage-driver vfs --tmpdir $TMP/ptmp" \
        NAT64D="$NAT64D" "$REPO/deploy/container/build.sh" "$IMAGE")" || { echo "$out"; return 1; }
    t1=$(date +%s.%N)
    echo "$out"
    IMAGE_SIZE="$(echo "$out" | sed -n 's/^image .*: \([0-9]*\) bytes$/\1/p')"
    printf 'image: %s bytes (%.1f MB), built in %.1f s\n' "$IMAGE_SIZE" "$(echo "$IMAGE_SIZE / 1000000" | bc -l)" "$(echo "$t1 - $t0" | bc -l)" >"$TMP/size"
    # FROM scratch: one layer, only our files.
    pod image inspect --format '{{len .RootFS.Layers}}' "$IMAGE" | grep -qx 1 || { echo "not a single layer"; return 1; }
}
check "image builds FROM scratch from the release binary (deploy/container/build.sh, podman)" build_image && cat "$TMP/size"

"$HERE/topology.sh" up >/dev/null && TOPO_UP=1
mkdir -p "$TMP/www"
head -c 100000 /dev/urandom >"$TMP/www/blob"
ip netns exec "$NS_SRV" timeout 120 python3 -m http.server --bind "$SRV4" --directory "$TMP/www" 8200 >/dev/null 2>&1 &
HTTP_PID=$!

# The test topology's NAT64 config, mounted over the image's example as the DaemonSet mounts its
# ConfigMap; the control socket on the container's /run tmpfs.
# A scratch image has no /etc/group: the control socket group is given by number.
CTL_GROUP=0 MAPLOG=/run/nat64d/mappings.jsonl CTL_SOCK=/run/nat64d/control.sock write_nat64_config "$TMP/nat64.toml"

run_image() {
    local i
    [ "$TOPO_UP" = 1 ] || { echo "topology.sh up failed"; return 1; }
    pod run -d --name "$CTR" --network "ns:/run/netns/$NS_GW" \
        --read-only --cap-drop all --cap-add NET_ADMIN --cap-add NET_BIND_SERVICE \
        --device /dev/net/tun -v "$TMP/nat64.toml:/etc/nat64d/nat64d.toml:ro" "$IMAGE" || return 1
    for i in $(seq 1 100); do
        pod logs "$CTR" 2>&1 | grep -qE ' ready$|"ready"' && break
        [ "$(pod inspect --format '{{.State.Running}}' "$CTR")" = true ] || { pod logs "$CTR"; return 1; }
        sleep 0.1
    done
    pod logs "$CTR" 2>&1 | grep -qE ' ready$|"ready"' || { echo "not ready in 10 s"; pod logs "$CTR"; return 1; }
    # What the container holds: read-only root and exactly the two capabilities.
    pod inspect --format '{{.HostConfig.ReadonlyRootfs}} {{.EffectiveCaps}}' "$CTR" | tee "$TMP/inspect"
    grep -q '^true ' "$TMP/inspect" || { echo "root not read-only"; return 1; }
    grep -q 'CAP_NET_ADMIN' "$TMP/inspect" && grep -q 'CAP_NET_BIND_SERVICE' "$TMP/inspect" || return 1
    [ "$(grep -o 'CAP_[A-Z_]*' "$TMP/inspect" | sort -u | wc -l)" -eq 2 ] || { echo "more capabilities than two"; return 1; }
    in_gw ip -6 route show "${POOL6}/96" | grep -q "dev $TUN_NAME" || { echo "no pool6 route in $NS_GW"; return 1; }
}
check "podman run --network ns:/run/netns/$NS_GW --read-only --cap-drop all (+NET_ADMIN, NET_BIND_SERVICE) --device /dev/net/tun: ready, routes set" run_image

ping_through() { in_cli ping -6 -c 3 -i 0.2 -W 2 "$SRV6"; }
check "ping: IPv6-only client -> $SRV6 through the container" ping_through

curl_through() {
    local i
    for i in $(seq 1 30); do in_srv ss -ltn | grep -q ":8200 " && break; sleep 0.1; done
    in_cli curl -sS -g --max-time 10 -o "$TMP/got" "http://[$SRV6]:8200/blob" || return 1
    cmp "$TMP/got" "$TMP/www/blob"
}
check "curl: IPv6-only client downloads 100 kB from the IPv4 server through the container, bytes equal" curl_through

sessions_listed() {
    pod exec "$CTR" /usr/bin/nat64d sessions --socket /run/nat64d/control.sock | tee "$TMP/sessions"
    grep -qi icmp "$TMP/sessions" || { echo "no ICMP session"; return 1; }
    grep -qi tcp "$TMP/sessions" || { echo "no TCP session"; return 1; }
    grep -q "$POOL4" "$TMP/sessions" || { echo "pool4 $POOL4 not in the list"; return 1; }
}
check "podman exec $CTR nat64d sessions: lists the ping's ICMP and the curl's TCP session" sessions_listed

stop_image() {
    pod stop -t 10 "$CTR" >/dev/null || return 1
    local code
    code="$(pod inspect --format '{{.State.ExitCode}}' "$CTR")"
    [ "$code" = 0 ] || { echo "exit code $code"; pod logs "$CTR" | tail -5; return 1; }
    in_gw ip link show "$TUN_NAME" >/dev/null 2>&1 && { echo "TUN left behind"; return 1; }
    in_gw ip -6 route | grep -q "${POOL6}/96" && { echo "pool6 route left behind"; return 1; }
    return 0
}
check "podman stop: exit 0, TUN device and routes removed" stop_image

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
