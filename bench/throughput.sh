#!/bin/sh
# Kept for old command lines: bench/throughput does W1-W4 (weft, make -j2,
# Dask); --tasks N and --chain M still size W1 and W2.
#   bench/throughput.sh [--tasks N] [--chain M] [--rounds R]
exec "$(dirname "$0")/throughput" --only w1,w2 "$@"
