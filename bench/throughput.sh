#!/usr/bin/env bash
# Tasks per second of `weft run --workers 2` against GNU make -j2 on the same
# machine in the same invocation, interleaved: W1 = N independent `true`
# tasks (default 10,000), W2 = a chain of M `true` tasks (default 1,000).
# Prints one line per workload: weft tasks/s, make tasks/s, ratio, weft peak
# RSS. WEFT (default build/weft) picks the binary.
#   bench/throughput.sh [--tasks N] [--chain M] [--rounds R]
set -euo pipefail
cd "$(dirname "$0")/.."
tasks=10000
chain=1000
rounds=1
while [ $# -gt 0 ]; do
	case $1 in
	--tasks) tasks=$2; shift 2 ;;
	--chain) chain=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	*) echo "usage: $0 [--tasks N] [--chain M] [--rounds R]" >&2; exit 2 ;;
	esac
done
WEFT=${WEFT:-$PWD/build/weft}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# W1: independent tasks, as a DAG and as a Makefile.
{
	echo "name: w1"; echo "tasks:"
	for ((i = 0; i < tasks; i++)); do echo "  t$i: {run: 'true'}"; done
} >"$tmp/w1.yaml"
{
	printf 'all:'; for ((i = 0; i < tasks; i++)); do printf ' t%d' "$i"; done; echo
	for ((i = 0; i < tasks; i++)); do printf 't%d:\n\t@true\n.PHONY: t%d\n' "$i" "$i"; done
} >"$tmp/w1.mk"
# W2: a chain.
{
	echo "name: w2"; echo "tasks:"; echo "  t0: {run: 'true'}"
	for ((i = 1; i < chain; i++)); do echo "  t$i: {run: 'true', needs: t$((i - 1))}"; done
} >"$tmp/w2.yaml"
{
	echo "all: t$((chain - 1))"; printf 't0:\n\t@true\n.PHONY: t0\n'
	for ((i = 1; i < chain; i++)); do printf 't%d: t%d\n\t@true\n.PHONY: t%d\n' "$i" "$((i - 1))" "$i"; done
} >"$tmp/w2.mk"

now() { date +%s.%N; }
rate() { awk -v n="$1" -v t="$2" 'BEGIN { printf "%.0f", n / t }'; }

run_weft() { # FILE -> seconds, and peak RSS (KiB) in $tmp/rss
	rm -rf "$tmp/data"
	local t0 t1
	t0=$(now)
	/usr/bin/time -f %M -o "$tmp/rss" "$WEFT" run "$1" --workers 2 --data "$tmp/data" >/dev/null 2>&1
	t1=$(now)
	awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'
}
run_make() {
	local t0 t1
	t0=$(now)
	make -s -j2 -f "$1" >/dev/null
	t1=$(now)
	awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'
}

printf '%-22s %10s %10s %7s %10s\n' workload weft/s make/s ratio weft-rss
for w in w1 w2; do
	n=$tasks; [ $w = w2 ] && n=$chain
	for ((r = 0; r < rounds; r++)); do
		tw=$(run_weft "$tmp/$w.yaml")
		tm=$(run_make "$tmp/$w.mk")
		rw=$(rate "$n" "$tw"); rm_=$(rate "$n" "$tm")
		printf '%-22s %10s %10s %7s %8sMB\n' "$w ($n tasks)" "$rw" "$rm_" \
			"$(awk -v a="$rw" -v b="$rm_" 'BEGIN { printf "%.2f", a / b }')" \
			"$(( $(cat "$tmp/rss") / 1024 ))"
	done
done
