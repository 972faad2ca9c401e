#!/usr/bin/env bash
# The whole test suite, in stages: unit, packet, property and integration tests (cargo test), the
# instruction-count checks (benches/icount.sh --check), the black-box network-namespace cases with
# real tools (netns-scripts/run.sh, as root) and the hostile-input probes (netns-scripts/hostile.sh,
# short form; HOSTILE=full for the full form with the 10-minute soak, HOSTILE=0 to skip it), the
# Prometheus metrics with a real Prometheus (netns-scripts/metrics-netns.sh), a fleet of two
# gateways behind a BIRD router with failover (netns-scripts/fleet.sh), the container image
# (netns-scripts/image-netns.sh) and the Debian package (netns-scripts/package-test.sh: build and
# dpkg-deb checks; HEAVY=full adds the install into a clean mmdebstrap root) and the Kubernetes
# manifests (netns-scripts/k8s-validate.sh: kubernetes-validate --strict, offline).
# Installs the Debian packages it needs when they are missing.
#
# Every stage runs even when an earlier one failed. The last line sums every stage:
#   N passed, N failed
# (cargo: its `test result:` lines; icount: one per case plus the README table; docs: the README's
# translate example run as pasted; netns, hostile, metrics, fleet, image, package, k8s: one per
# case). A stage that stops without its counts adds one failure.
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
. netns-scripts/lib.sh
need_rust
if [ "$(id -u)" -eq 0 ]; then
    ensure_packages valgrind:valgrind dnsmasq:dnsmasq-base dig:dnsutils podman:podman buildah:buildah \
        runc:runc mmdebstrap:mmdebstrap prometheus:prometheus jq:jq bird:bird2 clang:clang
    # The eBPF fast path's build (build.rs) needs libbpf's headers beside clang.
    [ -e /usr/include/bpf/bpf_helpers.h ] || apt_install libbpf-dev
fi
LOGS="$(new_tmp test-all)"
trap 'rm -rf "$LOGS"' EXIT
TOTAL_P=0
TOTAL_F=0
LINES=()
# tally STAGE PASSED FAILED [NOTE]
tally() {
    TOTAL_P=$((TOTAL_P + $2))
    TOTAL_F=$((TOTAL_F + $3))
    LINES+=("$(printf '  %-8s %5s passed, %3s failed%s' "$1" "$2" "$3" "${4:+  ($4)}")")
}
# last_count FILE: "P F" from the last "N passed, N failed" line of FILE (empty when none).
last_count() {
    sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1 \2/p' "$1" | tail -n 1
}

# --- 1. cargo tests ------------------------------------------------------------------------------
# --no-fail-fast: one failing test binary must not hide the counts of the binaries after it.
echo "== cargo test --workspace --release --no-fail-fast"
nice -n 10 cargo test --workspace --release --no-fail-fast 2>&1 | tee "$LOGS/cargo.out"
rc=${PIPESTATUS[0]}
read -r p f < <(awk '/^test result: / {
        for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i }
    } END { print p + 0, f + 0 }' "$LOGS/cargo.out")
if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    tally cargo "$p" 1 "cargo test exited $rc without a failed test: build error or a crashed test binary"
else
    tally cargo "$p" "$f"
fi

# --- 2. instructions per packet ------------------------------------------------------------------
# Callgrind counts (deterministic): a case that grows more than the tolerance over the recorded
# baseline fails, and so does a README table that is not the baseline's.
echo "== benches/icount.sh --check"
benches/icount.sh --check 2>&1 | tee "$LOGS/icount.out"
rc=${PIPESTATUS[0]}
c="$(sed -n 's/^icount: .*: \([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed.*/\1 \2/p' "$LOGS/icount.out" | tail -n 1)"
if [ -z "$c" ]; then
    tally icount 0 1 "no verdict line (exit $rc)"
else
    read -r p f <<<"$c"
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
    tally icount "$p" "$f"
fi

# --- 3. the README's examples that run offline -----------------------------------------------
echo "== building nat64d (cargo build --release)"
BUILT=0
nice -n 10 cargo build --release --quiet && BUILT=1
export NAT64D="${CARGO_TARGET_DIR:-$PWD/target}/release/nat64d"
# readme_block BEGIN END: the lines between two marker lines of README.md.
readme_block() {
    awk -v b="$1" -v e="$2" 'index($0, e) == 1 { on = 0 } on { print } index($0, b) == 1 { on = 1 }' README.md
}
readme_translate() {
    local block cmd want got
    block="$(readme_block "<!-- translate example" "<!-- end of translate example")"
    # The first fenced block is the command (with its here-document), the second the output.
    cmd="$(echo "$block" | awk '/^```/ { n++; next } n == 1')"
    want="$(echo "$block" | awk '/^```/ { n++; next } n == 3')"
    [ -n "$cmd" ] && [ -n "$want" ] || { echo "README: translate example not found between its markers"; return 1; }
    got="$(cd "$REPO" && bash -c "nat64d() { \"$NAT64D\" \"\$@\"; }; $cmd" 2>&1)"
    if [ "$got" != "$want" ]; then
        echo "README translate example: the output differs"
        diff <(echo "$want") <(echo "$got")
        return 1
    fi
}
echo "== README examples"
if [ "$BUILT" = 1 ] && readme_translate; then
    echo "README translate example: output as documented"
    tally docs 1 0
else
    tally docs 0 1 "README translate example$([ "$BUILT" = 1 ] || echo ": build failed")"
fi

# --- 4. network namespaces: run.sh, hostile.sh --------------------------------------------------
if [ "$(id -u)" -eq 0 ]; then
    if [ "$BUILT" = 1 ]; then
        for stage in netns hostile metrics fleet image package k8s; do
            case "$stage" in
            netns) cmd=(netns-scripts/run.sh) ;;
            # Prometheus scraping nat64d during traffic, promtool, the CLI, a scrape storm
            # (about 40 s).
            metrics) cmd=(netns-scripts/metrics-netns.sh) ;;
            # deploy/kubernetes/ against the API schemas, the kustomize output and planted
            # errors (seconds; fails, never skips, when kubernetes-validate cannot be installed).
            k8s) cmd=(netns-scripts/k8s-validate.sh) ;;
            # Two NAT64 gateways behind a BIRD router (BGP, ECMP): both carry flows, SIGTERM
            # and SIGKILL failover and restart, a silent gateway, times printed (about 40 s).
            fleet) cmd=(netns-scripts/fleet.sh) ;;
            # The container image, built and run in a test namespace (seconds, always full).
            image) cmd=(netns-scripts/image-netns.sh) ;;
            # The Debian package: build + dpkg-deb checks; HEAVY=full also installs it into a
            # clean mmdebstrap root (downloads a Debian root: minutes).
            package)
                cmd=(netns-scripts/package-test.sh)
                [ "${HEAVY:-}" = full ] && cmd+=(--full)
                ;;
            hostile)
                [ "${HOSTILE:-short}" = 0 ] && { tally hostile 0 0 "skipped: HOSTILE=0"; continue; }
                cmd=(netns-scripts/hostile.sh)
                [ "${HOSTILE:-short}" = full ] && cmd+=(--full)
                ;;
            esac
            echo "== ${cmd[*]}"
            "${cmd[@]}" 2>&1 | tee "$LOGS/$stage.out"
            rc=${PIPESTATUS[0]}
            c="$(last_count "$LOGS/$stage.out")"
            if [ -z "$c" ]; then
                tally "$stage" 0 1 "no closing count line (exit $rc)"
            else
                read -r p f <<<"$c"
                [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
                tally "$stage" "$p" "$f"
            fi
        done
    else
        tally netns 0 1 "cargo build --release failed"
    fi
else
    echo "netns and hostile cases not run: they need root (network namespaces)" >&2
    tally netns 0 1 "not run: needs root"
fi

echo "== all stages"
printf '%s\n' "${LINES[@]}"
echo "$TOTAL_P passed, $TOTAL_F failed"
[ "$TOTAL_F" -eq 0 ]
