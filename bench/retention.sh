#!/bin/sh
# Retention under load: many runs of one big DAG against one scheduler with
# --keep-runs, real `weft worker` processes running `true`. Every 10 runs it
# prints the scheduler's RSS, data.mdb's size, the pages LMDB uses (last
# page and free list, from mdb_stat) and the log dir's size: with retention
# they must plateau once KEEP runs exist.
#   bench/retention.sh [RUNS [TASKS [KEEP]]]   (defaults 100 10000 10)
# Env: WEFT (binary, default build/weft), WORKERS (2), SLOTS (1 per worker).
# Real workers spawn every task: a 10,000-task run takes ~30 s on a 2-core
# machine, so 100 of them ~50 min; smaller TASKS show the same shape sooner.
# SIMULATED=1: the workers are build/bench/simworker's (WORKERS x SLOTS,
# default 8 x 64 then), which complete every task at once over the real
# protocol: the scheduler's side of 100 x 10,000 tasks in a few minutes.
set -eu

RUNS=${1:-100}
TASKS=${2:-10000}
KEEP=${3:-10}
WORKERS=${WORKERS:-2}
SLOTS=${SLOTS:-1}
WEFT=${WEFT:-build/weft}
case $WEFT in /*) ;; *) WEFT=$(pwd)/$WEFT ;; esac
command -v mdb_stat >/dev/null || { echo "needs mdb_stat (lmdb-utils)" >&2; exit 2; }

tmp=$(mktemp -d /tmp/weft-retention.XXXXXX)
data=$tmp/data
addr=ipc://$tmp/sched.sock
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# One task expanded TASKS times: independent `true` tasks.
{
	echo "name: retention"
	echo "max_active_runs: 1"
	echo "tasks:"
	echo "  t:"
	echo "    run: \"true\""
	printf '    matrix: {n: ['
	seq -s, 0 $((TASKS - 1)) | tr -d '\n'
	echo ']}'
} >"$tmp/dag.yaml"

WEFT_LOG_LEVEL=warn "$WEFT" scheduler --data "$data" --listen "$addr" \
	--keep-runs "$KEEP" >"$tmp/scheduler.log" 2>&1 &
spid=$!
pids="$spid"
i=0
while [ ! -s "$data/scheduler.addr" ]; do
	i=$((i + 1))
	[ $i -lt 200 ] || { cat "$tmp/scheduler.log" >&2; exit 1; }
	sleep 0.05
done
export WEFT_SCHEDULER=$addr
if [ "${SIMULATED:-0}" = 1 ]; then
	sim=${SIM:-$PWD/build/bench/simworker}
	[ -x "$sim" ] || make -s "$sim" >/dev/null
	"$sim" run --url "$addr" --workers "${SIM_WORKERS:-8}" \
		--slots "${SIM_SLOTS:-64}" --idle-exit 600 >"$tmp/sim.log" 2>&1 &
	pids="$pids $!"
	WORKERS="${SIM_WORKERS:-8} simulated"
	SLOTS=${SIM_SLOTS:-64}
else
	w=1
	while [ $w -le "$WORKERS" ]; do
		mkdir -p "$tmp/w$w"
		WEFT_LOG_LEVEL=warn "$WEFT" worker --connect "$addr" \
			--name "w$w" --slots "$SLOTS" --work-dir "$tmp/w$w" \
			>"$tmp/worker$w.log" 2>&1 &
		pids="$pids $!"
		w=$((w + 1))
	done
fi
"$WEFT" submit "$tmp/dag.yaml" >/dev/null

kib() { awk -v k="$1" '$1 == k ":" { print $2 }' "/proc/$spid/status"; }
stat_of() { mdb_stat -ef "$data" | awk -v k="$1" 'index($0, k) { print $NF; exit }'; }

echo "retention bench: $RUNS runs of $TASKS tasks, --keep-runs $KEEP, $WORKERS workers x $SLOTS slots"
printf '%5s %8s %9s %10s %11s %10s %9s %8s %6s\n' run secs rss_kib hwm_kib data.mdb_kib used_pages free_pages logs_kib kept
start=$(date +%s)
n=1
while [ $n -le "$RUNS" ]; do
	"$WEFT" trigger retention --wait >/dev/null 2>"$tmp/trigger.err" || {
		echo "run $n failed:" >&2
		cat "$tmp/trigger.err" >&2
		exit 1
	}
	if [ $((n % 10)) -eq 0 ] || [ "$n" -eq "$RUNS" ]; then
		# Pruning trails the runs by a few ticks: let it settle.
		sleep 1
		kept=$("$WEFT" runs --dag retention --json | grep -o '"run_id"' | wc -l)
		printf '%5d %8d %9d %10d %11d %10d %9d %8d %6d\n' "$n" \
			$(($(date +%s) - start)) "$(kib VmRSS)" "$(kib VmHWM)" \
			$(($(stat -c %s "$data/data.mdb") / 1024)) \
			"$(stat_of 'Number of pages used')" \
			"$(stat_of 'Free pages')" \
			"$( (du -sk "$data/logs" 2>/dev/null || echo 0) | cut -f1)" "$kept"
	fi
	n=$((n + 1))
done
