#!/usr/bin/env bash
# Scale: a DAG of about 1,000,000 tasks and 2,000,000 edges, submitted to a
# real `weft scheduler` (own data dir, LMDB with full durability), run to
# completion on simulated workers (build/bench/simworker), then the
# scheduler is stopped and started again on the same data dir. Prints
# submit seconds, run seconds, the scheduler's peak RSS (VmHWM), and restart
# seconds (start until it answers a call; recovery happens before it
# listens). With --kill-midway, also kills it (SIGKILL) halfway through a
# second run and times that restart, which must load the live run.
#
# The DAG is layered: B blocks, each a matrix task of W instances (a wide
# layer) and a join task after it (a narrow layer), every instance needing
# the previous join: B*(W+1) tasks and about 2*B*W edges. A matrix keeps the
# file at 5 MB: a million tasks written one by one would not fit in one
# message (WF_MSG_MAX, 16 MiB).
#   bench/scale.sh [--quick] [--blocks B] [--width W] [--workers K]
#                  [--slots S] [--kill-midway] [--save-data DIR]
# --quick: 100 blocks of 99 + 1 (10,000 tasks), a smoke run.
# --save-data DIR (with --kill-midway): copies the data dir as the kill left
# it to DIR, to replay (and profile) that restart on its own:
#   cp -r DIR /tmp/d && weft scheduler --data /tmp/d --listen ... --http none
set -euo pipefail
cd "$(dirname "$0")/.."
blocks=1000
width=999
workers=4
slots=256
midway=0
save=
while [ $# -gt 0 ]; do
	case $1 in
	--blocks) blocks=$2; shift 2 ;;
	--width) width=$2; shift 2 ;;
	--workers) workers=$2; shift 2 ;;
	--slots) slots=$2; shift 2 ;;
	--kill-midway) midway=1; shift ;;
	--save-data) save=$2; shift 2 ;;
	--quick) blocks=100; width=99; shift ;;
	*) echo "usage: $0 [--quick] [--blocks B] [--width W] [--workers K] [--slots S] [--kill-midway] [--save-data DIR]" >&2; exit 2 ;;
	esac
done
WEFT=${WEFT:-$PWD/build/weft}
SIM=${SIM:-$PWD/build/bench/simworker}
make -s "$SIM" >/dev/null
tmp=$(mktemp -d)
sched=
simpid=
cleanup() {
	[ -n "$simpid" ] && kill "$simpid" 2>/dev/null
	[ -n "$sched" ] && kill "$sched" 2>/dev/null && wait "$sched" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
url="ipc://$tmp/sched.ipc"
dag="scale-${blocks}x$width"
python3 - "$blocks" "$width" >"$tmp/dag.yaml" <<'PY'
import sys
b_n, w = int(sys.argv[1]), int(sys.argv[2])
o = sys.stdout.write
o("name: scale-%dx%d\ntasks:\n" % (b_n, w))
idx = "[" + ", ".join(str(i) for i in range(w)) + "]"
for b in range(b_n):
    needs = ", needs: [j%d]" % (b - 1) if b > 0 else ""
    o("  w%d: {matrix: {i: %s}%s, run: 'true'}\n" % (b, idx, needs))
    o("  j%d: {needs: [w%d], run: 'true'}\n" % (b, b))
PY
ntasks=$((blocks * (width + 1)))
nedges=$(((blocks - 1) * width + blocks * width))

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

start_sched() { # -> $sched; waits for nothing
	"$WEFT" scheduler --data "$tmp/data" --listen "$url" --http none \
		>>"$tmp/sched.log" 2>&1 &
	sched=$!
}
# answered: seconds from $1 until the scheduler answers a call.
answered() {
	until "$WEFT" workers --scheduler "$url" >/dev/null 2>&1; do
		kill -0 "$sched" 2>/dev/null || { echo "scheduler died"; tail "$tmp/sched.log"; exit 1; }
		sleep 0.01
	done
	since "$1"
}
run_sim() { # EXPECT -> starts the simulated pool in the background
	"$SIM" run --url "$url" --workers "$workers" --slots "$slots" \
		--expect "$1" --idle-exit 30 >"$tmp/sim.out" 2>&1 &
	simpid=$!
}

start_sched
answered "$(now)" >/dev/null
t0=$(now)
# The CLI gives up after 5 s; the scheduler finishes a submit anyway, so a
# slow one is timed until `weft dags` lists the DAG.
if ! "$WEFT" submit "$tmp/dag.yaml" --scheduler "$url" >/dev/null 2>"$tmp/submit.err"; then
	grep -q "timed out" "$tmp/submit.err" || { cat "$tmp/submit.err"; exit 1; }
	echo "(weft submit timed out after 5 s; waiting for the scheduler)"
	until "$WEFT" dags --scheduler "$url" 2>/dev/null | grep -q "^$dag "; do sleep 0.05; done
fi
submit_s=$(since "$t0")
run_sim "$ntasks"
sleep 0.3
t0=$(now)
run=$("$WEFT" trigger "$dag" --scheduler "$url" 2>/dev/null) || run="$dag.1"
wait "$simpid" || { echo "simworker failed:"; cat "$tmp/sim.out"; tail "$tmp/sched.log"; exit 1; }
simpid=
run_s=$(since "$t0")
state=$("$WEFT" runs --scheduler "$url" --json --limit 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"])')
rss=$(awk '/VmHWM/ {print $2}' /proc/$sched/status)
kill -TERM "$sched"; wait "$sched" || true
t0=$(now)
start_sched
restart_s=$(answered "$t0")
rss2=$(awk '/VmHWM/ {print $2}' /proc/$sched/status)
rate=$(awk -v n="$ntasks" -v t="$run_s" 'BEGIN { printf "%.0f", n / t }')
echo "DAG: $ntasks tasks, $nedges edges ($blocks blocks of $width + 1), $(du -k "$tmp/dag.yaml" | cut -f1) KB of YAML; ${workers}x$slots simulated slots"
printf '%-24s %10s  %s\n' "submit" "${submit_s}s" "(bar: < 10 s)"
printf '%-24s %10s  %s\n' "run to completion" "${run_s}s" "($rate tasks/s, run $state)"
printf '%-24s %10s  %s\n' "scheduler peak RSS" "$((rss / 1024))MB" "(bar: < 1024 MB; $((rss * 1024 / ntasks)) bytes/task)"
printf '%-24s %10s  %s\n' "restart (run finished)" "${restart_s}s" "(bar: < 2 s; peak RSS after $((rss2 / 1024))MB)"
if [ "$midway" = 1 ]; then
	run_sim $((ntasks / 2))
	sleep 0.3
	"$WEFT" trigger "$dag" --scheduler "$url" >/dev/null 2>&1 || true
	wait "$simpid" || true
	simpid=
	kill -KILL "$sched"; wait "$sched" 2>/dev/null || true
	if [ -n "$save" ]; then
		rm -rf "$save"
		cp -r "$tmp/data" "$save"
	fi
	t0=$(now)
	start_sched
	restart_s=$(answered "$t0")
	rss2=$(awk '/VmHWM/ {print $2}' /proc/$sched/status)
	printf '%-24s %10s  %s\n' "restart (killed midway)" "${restart_s}s" "(peak RSS after $((rss2 / 1024))MB)"
fi
