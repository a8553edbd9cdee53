#!/usr/bin/env bash
# Times `weft validate` on a generated layered DAG (default 100,000 tasks,
# 200,000 edges) and reports wall time, CPU time and peak RSS, the best of
# a few runs. The bar: well under 1 s and under 200 MB. On a busy machine
# wall time waits for a CPU; the CPU time is then the better measure.
#   bench/validate.sh [--tasks N] [--edges-per-task E] [--runs R] [--check]
# --check exits 1 when the best run misses the bar. WEFT (default
# build/weft) picks the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
tasks=100000
epn=2
runs=3
check=0
while [ $# -gt 0 ]; do
	case $1 in
	--tasks) tasks=$2; shift 2 ;;
	--edges-per-task) epn=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--check) check=1; shift ;;
	*) echo "usage: $0 [--tasks N] [--edges-per-task E] [--runs R] [--check]" >&2
	   exit 2 ;;
	esac
done
WEFT=${WEFT:-build/weft}
[ -x "$WEFT" ] || { echo "$WEFT not built (make)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (GNU time)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 bench/gen-dag --tasks "$tasks" --edges-per-task "$epn" \
	--seed 1 >"$tmp/dag.yaml"
bytes=$(wc -c <"$tmp/dag.yaml")
echo "validate: $tasks tasks, ~$((tasks * epn)) edges, $((bytes / 1024)) KiB of YAML"
"$WEFT" validate "$tmp/dag.yaml" # must be valid; also warms the page cache
best_wall=
best_line=
for i in $(seq "$runs"); do
	/usr/bin/time -v "$WEFT" validate "$tmp/dag.yaml" 2>"$tmp/time.$i"
	wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' \
		"$tmp/time.$i" | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
	user=$(sed -n 's/.*User time (seconds): //p' "$tmp/time.$i")
	sys=$(sed -n 's/.*System time (seconds): //p' "$tmp/time.$i")
	rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$tmp/time.$i")
	line=$(printf 'wall %.2f s  cpu %.2f s (user %.2f, sys %.2f)  peak RSS %d MB' \
		"$wall" "$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')" \
		"$user" "$sys" $((rss / 1024)))
	echo "run $i: $line"
	if [ -z "$best_wall" ] ||
		awk -v a="$wall" -v b="$best_wall" 'BEGIN { exit !(a < b) }'; then
		best_wall=$wall
		best_rss=$rss
		best_line=$line
	fi
done
echo "best: $best_line"
if [ "$check" = 1 ]; then
	if awk -v w="$best_wall" 'BEGIN { exit !(w >= 1) }' ||
		[ "$best_rss" -ge $((200 * 1024)) ]; then
		echo "FAIL: over the bar (1 s, 200 MB)" >&2
		exit 1
	fi
fi
