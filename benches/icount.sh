#!/usr/bin/env bash
# Instructions per translated packet, counted by callgrind: deterministic on a shared machine.
# Each case runs N1 and N2 times; (Ir(N2) - Ir(N1)) / (N2 - N1) removes start-up cost. Prints a
# table and ends with one verdict line:
#   icount: N cases checked against benches/icount-baseline.txt: N passed, N failed (...)
#
#   benches/icount.sh            measure and print (no verdict on the baseline)
#   benches/icount.sh --check    fail on a change of more than ICOUNT_TOLERANCE percent (default
#                                5) either way (a large decrease usually means the case broke
#                                into an early exit), on a case without a baseline entry, on a
#                                baseline entry without a case, on zero cases, on a case whose
#                                verdict or output length is not the expected one (the icount
#                                example checks them and exits non-zero), and when the README's
#                                instruction table is not the one generated from the baseline
#   benches/icount.sh --update   rewrite the baseline with these measurements, and the README table
#
# Every run writes its table and the raw callgrind counts, with the date, load average and command
# line, to ICOUNT_OUT (default target/bench-results/icount.txt); --update also copies that record
# to benches/results/icount.txt, the committed source of the baseline and the README table.
#
# The binary is the icount example in the real target dir (CARGO_TARGET_DIR, else target/).
set -uo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
# shellcheck source=../netns-scripts/lib.sh
. netns-scripts/lib.sh
mode=${1:-}
case "$mode" in
"" | --check | --update) ;;
*)
    echo "usage: $0 [--check | --update]" >&2
    exit 2
    ;;
esac
tol=${ICOUNT_TOLERANCE:-5}
N1=1000
N2=11000
baseline=benches/icount-baseline.txt
readme=README.md
verdict() { # passed failed why
    echo "icount: $(($1 + $2)) cases checked against $baseline: $1 passed, $2 failed${3:+ ($3)}"
}
if ! command -v valgrind >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        apt_install valgrind || true
    fi
    command -v valgrind >/dev/null 2>&1 || {
        verdict 0 1 "valgrind is not installed: apt-get install valgrind"
        exit 1
    }
fi
need_rust
# The target dir cargo really uses (CARGO_TARGET_DIR, build.target-dir in a cargo config, or
# target/), so the binary measured is the one just built.
target=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
target="${target:-${CARGO_TARGET_DIR:-target}}"
bin="$target/release/examples/icount"
nice -n 10 cargo build --release --example icount -q || {
    verdict 0 1 "cargo build --release --example icount failed"
    exit 1
}
[ -x "$bin" ] || {
    verdict 0 1 "$bin missing after the build (CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-unset})"
    exit 1
}

# The README table generated from the baseline (between the two marker lines in README.md).
readme_table() { # baseline file
    echo "| case | instructions per packet |"
    echo "|---|---|"
    awk 'NF == 2 { printf "| `%s` | %s |\n", $1, $2 }' "$1"
}
BEGIN_MARK='<!-- icount table: generated from benches/icount-baseline.txt by benches/icount.sh --update; checked by --check -->'
END_MARK='<!-- end of icount table -->'
readme_current() {
    awk -v b="$BEGIN_MARK" -v e="$END_MARK" '$0 == e { on = 0 } on { print } $0 == b { on = 1 }' "$readme"
}

# Instructions for one run of case $1 repeated $2 times; empty (and the example's complaint on
# stderr) when the run fails, for example because the case's verdict is not the expected one.
ir() {
    local out rc
    out=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1)
    rc=$?
    if [ "$rc" -ne 0 ]; then
        grep -m1 '^icount:' <<<"$out" >&2
        return 0
    fi
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' <<<"$out"
}
record="${ICOUNT_OUT:-$target/bench-results/icount.txt}"
mkdir -p "$(dirname "$record")"
{
    echo "# benches/icount.sh record"
    echo "# date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# command: $0 $*"
    echo "# commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
    echo "# instructions per packet = (Ir(N2) - Ir(N1)) / (N2 - N1), N1=$N1 N2=$N2"
    echo "# case Ir(N1) Ir(N2) per-packet"
} >"$record"
cases=$("$bin" 2>&1 | sed -n "s/^  //p" || true)
passed=0
failed=0
out=""
printf '%-20s %12s %12s\n' case "instr/pkt" baseline
for c in $cases; do
    a=$(ir "$c" $N1)
    b=$(ir "$c" $N2)
    if [ -z "$a" ] || [ -z "$b" ]; then
        printf '%-20s %12s\n' "$c" "NO COUNT (the case failed its verdict check, or valgrind gave none)"
        echo "$c - - FAILED" >>"$record"
        failed=$((failed + 1))
        continue
    fi
    per=$(((b - a) / (N2 - N1)))
    echo "$c $a $b $per" >>"$record"
    base=$(awk -v c="$c" '$1 == c { print $2 }' "$baseline" 2>/dev/null || true)
    note=""
    if [ "$mode" = --check ]; then
        if [ -z "$base" ]; then
            note="  NO BASELINE ENTRY (run --update and commit it)"
            failed=$((failed + 1))
        elif [ "$per" -gt $((base * (100 + tol) / 100)) ]; then
            note="  REGRESSION (> ${tol}%)"
            failed=$((failed + 1))
        elif [ "$per" -lt $((base * (100 - tol) / 100)) ]; then
            note="  DECREASE (> ${tol}% fewer: a broken case? if real, --update)"
            failed=$((failed + 1))
        else
            passed=$((passed + 1))
        fi
    fi
    printf '%-20s %12s %12s%s\n' "$c" "$per" "${base:--}" "$note"
    out+="$c $per"$'\n'
done
ncases=$(wc -w <<<"$cases")
{
    echo "# table"
    readme_table <(printf '%s' "$out")
} >>"$record"
echo "record written to $record"
if [ "$mode" = --update ]; then
    if [ "$ncases" -eq 0 ] || [ "$failed" -gt 0 ]; then
        verdict 0 "$((failed > 0 ? failed : 1))" "zero cases or a failed case; baseline left alone"
        exit 1
    fi
    printf '%s' "$out" >"$baseline"
    mkdir -p benches/results
    cp "$record" benches/results/icount.txt
    tmp="$(mktemp)"
    {
        awk -v b="$BEGIN_MARK" '{ print } $0 == b { exit }' "$readme"
        readme_table "$baseline"
        awk -v e="$END_MARK" '$0 == e { on = 1 } on { print }' "$readme"
    } >"$tmp" && cat "$tmp" >"$readme"
    rm -f "$tmp"
    echo "baseline written to $baseline (record: benches/results/icount.txt), README table regenerated"
    verdict "$ncases" 0 "baseline updated"
    exit 0
fi
if [ "$mode" != --check ]; then
    echo "icount: $ncases cases measured, $failed failed (no baseline check; --check compares with $baseline)"
    [ "$ncases" -gt 0 ] && [ "$failed" -eq 0 ]
    exit
fi
why=()
[ "$ncases" -gt 0 ] || {
    why+=("zero cases checked: the icount example lists none")
    failed=$((failed + 1))
}
# A baseline entry whose case is gone: the count dropped.
while read -r c _; do
    [ -n "$c" ] || continue
    if ! grep -qxF -- "$c" <<<"$(tr ' ' '\n' <<<"$cases")"; then
        why+=("baseline case $c is no longer measured")
        failed=$((failed + 1))
    fi
done <"$baseline"
# The README table is the one generated from the baseline.
if [ "$(readme_current)" = "$(readme_table "$baseline")" ]; then
    passed=$((passed + 1))
else
    why+=("README.md's instruction table differs from $baseline (benches/icount.sh --update, or copy the baseline)")
    failed=$((failed + 1))
fi
verdict "$passed" "$failed" "tolerance ${tol} %, README table included$([ "${#why[@]}" -gt 0 ] && printf '; %s' "${why[@]}")"
[ "$failed" -eq 0 ]
