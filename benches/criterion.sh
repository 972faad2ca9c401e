#!/usr/bin/env bash
# Per-packet translation time: runs the criterion bench `benches/translate.rs` (each case's verdict
# and output length are checked before and after timing; a case that takes another path panics)
# and writes the README's "Median time per packet" table plus every raw median, with the date,
# load average, command line and commit, to CRITERION_OUT (default benches/results/translate.md).
# The README table is copied from that file.
#
#   benches/criterion.sh [criterion options, e.g. --measurement-time 3]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${CRITERION_OUT:-benches/results/translate.md}"
target=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
target="${target:-${CARGO_TARGET_DIR:-target}}"
load=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
rm -rf "$target/criterion/translate" "$target/criterion/reference"
nice -n 10 cargo bench --bench translate -- "$@"

# full_id -> "median lower upper" (ns), read from criterion's JSON output.
declare -A M
while IFS= read -r bj; do
    id=$(sed -n 's/.*"full_id":"\([^"]*\)".*/\1/p' "$bj")
    est="$(dirname "$bj")/estimates.json"
    med=$(sed -n 's/.*"median":{"confidence_interval":{[^}]*"lower_bound":\([^,]*\),"upper_bound":\([^}]*\)},"point_estimate":\([^,]*\),.*/\3 \1 \2/p' "$est")
    [ -n "$id" ] && [ -n "$med" ] && M[$id]="$med"
done < <(find "$target/criterion/translate" "$target/criterion/reference" -path '*/new/benchmark.json' 2>/dev/null)
[ "${#M[@]}" -gt 0 ] || {
    echo "criterion.sh: no results under $target/criterion" >&2
    exit 1
}

ns() { # full_id -> "12.3 ns"
    local v="${M[$1]:-}"
    [ -n "$v" ] || {
        echo "criterion.sh: no result for $1" >&2
        exit 1
    }
    awk -v v="${v%% *}" 'BEGIN { printf "%.1f ns", v }'
}
times() { # full_id, reference full_id -> "(2.7×)"
    awk -v a="${M[$1]%% *}" -v b="${M[$2]%% *}" 'BEGIN { printf "(%.1f×)", a / b }'
}
row_sizes() { # label, id with SIZE, sizes...
    local label="$1" pat="$2"
    shift 2
    printf '| %s |' "$label"
    for s in "$@"; do printf ' %s |' "$(ns "${pat//SIZE/$s}")"; done
    echo
}
{
    echo "# benches/criterion.sh record"
    echo
    echo "- date: $started"
    echo "- load average before: $load"
    echo "- command: $0 $*"
    echo "- commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' (with local changes)')"
    echo "- machine: $(nproc) cores"
    echo
    echo "## Table (README \"Per-packet cost of the core\")"
    echo
    echo "| case | 64 B | 576 B | 1500 B (4to6: 1480 B) |"
    echo "|---|---|---|---|"
    row_sizes "IPv6→IPv4 UDP" "translate/6to4/udp/SIZE" 64 576 1500
    row_sizes "IPv4→IPv6 UDP" "translate/4to6/udp/SIZE" 64 576 1480
    printf '| etherparse parse + rebuild, IPv6→IPv4 UDP |'
    for s in 64 576 1500; do
        printf ' %s %s |' "$(ns "reference/etherparse-rebuild/6to4/udp/$s")" \
            "$(times "reference/etherparse-rebuild/6to4/udp/$s" "translate/6to4/udp/$s")"
    done
    echo
    row_sizes "copy of the packet (memcpy)" "reference/memcpy/6to4/udp/SIZE" 64 576 1500
    echo "| IPv6→IPv4 TCP 1460 B / IPv4→IPv6 TCP 1440 B | | | $(ns translate/6to4/tcp/1460) / $(ns translate/4to6/tcp/1440) |"
    echo "| ICMP echo 6→4 / 4→6 (84 B) | $(ns translate/6to4/icmp-echo) / $(ns translate/4to6/icmp-echo) | | |"
    echo "| ICMPv4 error → ICMPv6 (quotes 548 B) | | $(ns translate/4to6/icmp-error) | |"
    echo "| IPv4 DF=0 1500 B → two IPv6 fragments | | | $(ns translate/4to6/udp-frag/1500) |"
    echo
    echo "## Raw medians (ns; median, 95 % interval of the median)"
    echo
    echo '```'
    for id in $(printf '%s\n' "${!M[@]}" | sort); do
        read -r med lo hi <<<"${M[$id]}"
        printf '%-45s %10.2f  [%.2f, %.2f]\n' "$id" "$med" "$lo" "$hi"
    done
    echo '```'
} >"$out"
echo "record written to $out"
cat "$out"
