#!/usr/bin/env bash
# Instructions per translated packet, counted by callgrind: deterministic on a shared machine.
# Each case runs N1 and N2 times; (Ir(N2) - Ir(N1)) / (N2 - N1) removes start-up cost. Prints a
# table; with --check, compares with benches/icount-baseline.txt and fails on a regression of more
# than ICOUNT_TOLERANCE percent (default 20). --update rewrites the baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { apt-get install -y valgrind >/dev/null; }
mode=${1:-}
tol=${ICOUNT_TOLERANCE:-20}
N1=1000
N2=11000
cargo build --release --example icount -q
bin=target/release/examples/icount
ir() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
cases=$("$bin" 2>&1 | sed -n "s/^  //p" || true)
baseline=benches/icount-baseline.txt
fail=0
out=""
printf '%-20s %12s %12s\n' case "instr/pkt" baseline
for c in $cases; do
    a=$(ir "$c" $N1)
    b=$(ir "$c" $N2)
    per=$(( (b - a) / (N2 - N1) ))
    base=$(awk -v c="$c" '$1 == c { print $2 }' "$baseline" 2>/dev/null || true)
    note=""
    if [ -n "$base" ] && [ "$mode" = --check ] && [ "$per" -gt $(( base * (100 + tol) / 100 )) ]; then
        note="  REGRESSION (> ${tol}%)"
        fail=1
    fi
    printf '%-20s %12s %12s%s\n' "$c" "$per" "${base:--}" "$note"
    out+="$c $per"$'\n'
done
if [ "$mode" = --update ]; then
    printf '%s' "$out" > "$baseline"
    echo "baseline written to $baseline"
fi
exit $fail
