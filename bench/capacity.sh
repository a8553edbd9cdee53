#!/usr/bin/env bash
# Scheduler capacity without processes: a real `weft scheduler` (its own
# data dir, real LMDB with full durability) drives a simulated worker pool
# (build/bench/simworker: K workers x S slots that complete every attempt
# at once, over the real worker protocol) through a DAG of C chains of L
# tasks, C = K x S so that no ready task waits for a slot. Prints
# completions/s (whole run, and between 10% and 90% of it) and the p50/p99
# latency from the SYNC carrying a completion leaving the worker to the
# arrival of the child it released (one hop: the scheduler's round trip,
# its commit included).
#   bench/capacity.sh [--quick] [--tasks N] [--pool KxS]...
# Default pools: 8x256, 32x32, 100x8 (the hundred-machine case), N 100,000.
# PERF_OUT=FILE profiles the scheduler of each pool with perf record -g
# (FILE.KxS); FSYNCS=1 counts its commits (fdatasync) with perf stat.
set -euo pipefail
cd "$(dirname "$0")/.."
tasks=100000
pools=()
while [ $# -gt 0 ]; do
	case $1 in
	--quick) tasks=20000; shift ;;
	--tasks) tasks=$2; shift 2 ;;
	--pool) pools+=("$2"); shift 2 ;;
	*) echo "usage: $0 [--quick] [--tasks N] [--pool KxS]..." >&2; exit 2 ;;
	esac
done
[ ${#pools[@]} -eq 0 ] && pools=(8x256 32x32 100x8)
WEFT=${WEFT:-$PWD/build/weft}
SIM=${SIM:-$PWD/build/bench/simworker}
[ -n "${SIM_NO_MAKE:-}" ] || make -s "$SIM" >/dev/null
tmp=$(mktemp -d)
sched=
cleanup() {
	if [ -n "$sched" ]; then kill "$sched" 2>/dev/null; wait "$sched" 2>/dev/null; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# one K S: one scheduler, one pool, one run; prints a line of the table.
one() {
	local k=$1 s=$2 c l dir url perf=
	c=$((k * s))
	l=$(((tasks + c - 1) / c))
	dir="$tmp/$k-$s"
	mkdir -p "$dir"
	url="ipc://$dir/sched.ipc"
	"$SIM" chains "$c" "$l" >"$dir/dag.yaml"
	"$WEFT" scheduler --data "$dir/data" --listen "$url" --http none \
		>"$dir/sched.log" 2>&1 &
	sched=$!
	for _ in $(seq 200); do [ -S "$dir/sched.ipc" ] && break; sleep 0.05; done
	"$WEFT" submit "$dir/dag.yaml" --scheduler "$url" >/dev/null
	/usr/bin/time -f "%U %S" -o "$dir/sim.cpu" "$SIM" run --url "$url" \
		--workers "$k" --slots "$s" --expect $((c * l)) --chains "$c" \
		>"$dir/sim.out" 2>&1 &
	local simpid=$!
	if [ -n "${PERF_OUT:-}" ]; then
		perf record -q -g -p "$sched" -o "$PERF_OUT.${k}x$s" 2>/dev/null &
		perf=$!
	elif [ -n "${FSYNCS:-}" ]; then
		perf stat -e syscalls:sys_enter_fdatasync -p "$sched" \
			-o "$dir/fsyncs" 2>/dev/null &
		perf=$!
	fi
	local cpu0
	cpu0=$(awk '{print $14 + $15}' /proc/$sched/stat)
	sleep 0.3
	"$WEFT" trigger "chains-${c}x$l" --scheduler "$url" >/dev/null
	if ! wait "$simpid"; then
		echo "simworker failed (${k}x$s):"; cat "$dir/sim.out"; tail "$dir/sched.log"
		exit 1
	fi
	if [ -n "$perf" ]; then kill -INT "$perf"; wait "$perf" || true; fi
	local rss cpu
	rss=$(awk '/VmHWM/ {print $2}' /proc/$sched/status)
	# CPU seconds the scheduler used during the run (user + system).
	cpu=$(awk -v a="$cpu0" -v hz="$(getconf CLK_TCK)" \
		'{printf "%.2f", ($14 + $15 - a) / hz}' /proc/$sched/stat)
	kill "$sched"; wait "$sched" 2>/dev/null || true
	sched=
	get() { awk -v k="$1" '$1 == k {print $2}' "$dir/sim.out"; }
	local commits=-
	[ -f "$dir/fsyncs" ] && commits=$(awk '/fdatasync/ {print $1}' "$dir/fsyncs")
	# The simulated pool shares the machine with the scheduler: its CPU
	# says how much of the machine the scheduler could have had.
	local simcpu
	simcpu=$(awk '{printf "%.2f", $1 + $2}' "$dir/sim.cpu" 2>/dev/null || echo -)
	printf '%-8s %8s %9s %9s %7.1fms %7.1fms %8s %7s %7s %6sMB %6s\n' \
		"${k}x$s" "$(get completions)" "$(get rate)" "$(get rate_10_90)" \
		"$(awk -v u="$(get hop_p50_us)" 'BEGIN {print u / 1000}')" \
		"$(awk -v u="$(get hop_p99_us)" 'BEGIN {print u / 1000}')" \
		"$(get per_sync)" "$commits" "$cpu" "$((rss / 1024))" "$simcpu"
}

echo "chains of 'true' tasks, one chain per slot; load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %8s %9s %9s %9s %9s %8s %7s %7s %8s %6s\n' pool tasks compl/s 10-90%/s \
	hop-p50 hop-p99 per-SYNC commits sched-s sched-rss sim-s
for p in "${pools[@]}"; do
	one "${p%x*}" "${p#*x}"
done
