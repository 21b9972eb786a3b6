#!/usr/bin/env bash
# backpropd against scikit-learn on the same tables and the same split:
# the Palmer penguins tables (clean and raw) and the generated mixed
# table (bench/mixed_table/gen). Prints the held-out accuracy of each and
# the gap per table. One command from a clean clone:
#
#   bash bench/sklearn_compare/run.sh
#
# Needs Debian's python3-pandas and python3-sklearn (apt-get install
# python3-pandas python3-sklearn) and the penguins tables
# (bash .ci/steps/02-penguins.sh). Environment: MIXED_ROWS (rows of the
# mixed table, default 20000), PYTHON (/usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
MIXED_ROWS="${MIXED_ROWS:-20000}"
PYTHON="${PYTHON:-/usr/bin/python3}"
pdir="${BACKPROPD_PENGUINS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/backpropd/penguins}/usr/lib/R/site-library/palmerpenguins/extdata"
out=bench/out/sklearn_compare
mkdir -p "$out"
"$PYTHON" -c 'import pandas, sklearn' 2>/dev/null || { echo "$PYTHON lacks pandas or sklearn: apt-get install python3-pandas python3-sklearn" >&2; exit 1; }
[ -f "$pdir/penguins.csv" ] || { echo "no penguins tables in $pdir: bash .ci/steps/02-penguins.sh" >&2; exit 1; }

go build -o "$out/backpropd" ./cmd/server
go build -o "$out/gen" ./bench/mixed_table/gen
mixed="$out/mixed-$MIXED_ROWS.csv"
[ -s "$mixed" ] || "$out/gen" -rows "$MIXED_ROWS" -seed 3 -o "$mixed"

data=$(mktemp -d)
log="$data/server.log"
"$out/backpropd" --addr 127.0.0.1:0 --data-dir "$data/d" --log-format json 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do
  addr=$(sed -n 's/.*"msg":"backpropd listening".*"addr":"\([^"]*\)".*/\1/p' "$log")
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { cat "$log" >&2; exit 1; }

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; scikit-learn $("$PYTHON" -c 'import sklearn; print(sklearn.__version__)')"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$PYTHON" bench/sklearn_compare/compare.py --url "http://$addr" \
  --table "penguins=$pdir/penguins.csv:species" \
  --table "penguins-raw=$pdir/penguins_raw.csv:Species" \
  --table "mixed=$mixed:label:32:10:64:0.005"
