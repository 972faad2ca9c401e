#!/usr/bin/env bash
# Instructions per translated packet, counted by callgrind: deterministic on a shared machine.
# Each case runs N1 and N2 times; (Ir(N2) - Ir(N1)) / (N2 - N1) removes start-up cost. Prints a
# table and ends with one verdict line:
#   icount: N cases checked against benches/icount-baseline.txt: N passed, N failed (...)
#
#   benches/icount.sh            measure and print (no verdict on the baseline)
#   benches/icount.sh --check    fail on a regression of more than ICOUNT_TOLERANCE percent
#                                (default 20), on a case without a baseline entry, on a baseline
#                                entry without a case, on zero cases, and when the README's
#                                instruction table is not the one generated from the baseline
#   benches/icount.sh --update   rewrite the baseline with these measurements, and the README table
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
tol=${ICOUNT_TOLERANCE:-20}
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
target="${CARGO_TARGET_DIR:-target}"
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

ir() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
cases=$("$bin" 2>&1 | sed -n "s/^  //p" || true)
passed=0
failed=0
out=""
printf '%-20s %12s %12s\n' case "instr/pkt" baseline
for c in $cases; do
    a=$(ir "$c" $N1)
    b=$(ir "$c" $N2)
    if [ -z "$a" ] || [ -z "$b" ]; then
        printf '%-20s %12s\n' "$c" "valgrind gave no count"
        failed=$((failed + 1))
        continue
    fi
    per=$(((b - a) / (N2 - N1)))
    base=$(awk -v c="$c" '$1 == c { print $2 }' "$baseline" 2>/dev/null || true)
    note=""
    if [ "$mode" = --check ]; then
        if [ -z "$base" ]; then
            note="  NO BASELINE ENTRY (run --update and commit it)"
            failed=$((failed + 1))
        elif [ "$per" -gt $((base * (100 + tol) / 100)) ]; then
            note="  REGRESSION (> ${tol}%)"
            failed=$((failed + 1))
        else
            passed=$((passed + 1))
        fi
    fi
    printf '%-20s %12s %12s%s\n' "$c" "$per" "${base:--}" "$note"
    out+="$c $per"$'\n'
done
ncases=$(wc -w <<<"$cases")
if [ "$mode" = --update ]; then
    if [ "$ncases" -eq 0 ]; then
        verdict 0 1 "the icount example lists no cases; baseline left alone"
        exit 1
    fi
    printf '%s' "$out" >"$baseline"
    tmp="$(mktemp)"
    {
        awk -v b="$BEGIN_MARK" '{ print } $0 == b { exit }' "$readme"
        readme_table "$baseline"
        awk -v e="$END_MARK" '$0 == e { on = 1 } on { print }' "$readme"
    } >"$tmp" && cat "$tmp" >"$readme"
    rm -f "$tmp"
    echo "baseline written to $baseline, README table regenerated"
    verdict "$ncases" 0 "baseline updated"
    exit 0
fi
if [ "$mode" != --check ]; then
    echo "icount: $ncases cases measured (no check; --check compares with $baseline)"
    [ "$ncases" -gt 0 ]
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
