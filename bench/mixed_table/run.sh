#!/usr/bin/env bash
# Mixed-table benchmark: the upload of a generated table of 20 columns
# (13 numbers, 4 text features, 2 dates and a text class, 5% of the
# feature cells blank) through the real server (MB/s end to end, server
# peak RSS) against pandas' read_csv on the same file, and predict
# throughput for raw object rows of that table against array rows of an
# all-numeric model of the same width. One command from a clean clone:
#
#   bash bench/mixed_table/run.sh
#
# Environment: ROWS (default 100000; the full benchmark is ROWS=1000000),
# BATCH (rows per predict request, 500), DURATION (per predict run, 5s),
# PYTHON (a python3 with pandas; Debian's python3-pandas:
# apt-get install python3-pandas).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS="${ROWS:-100000}"
BATCH="${BATCH:-500}"
DURATION="${DURATION:-5s}"
PYTHON="${PYTHON:-/usr/bin/python3}"
out=bench/out/mixed_table
mkdir -p "$out"
"$PYTHON" -c 'import pandas' 2>/dev/null || { echo "$PYTHON has no pandas: apt-get install python3-pandas, or set PYTHON" >&2; exit 1; }

go build -o "$out/backpropd" ./cmd/server
go build -o "$out/gen" ./bench/mixed_table/gen
go build -o "$out/driver" ./bench/mixed_table/driver
mixed="$out/mixed-$ROWS.csv"
numeric="$out/numeric-$ROWS.csv"
[ -s "$mixed" ] || "$out/gen" -rows "$ROWS" -o "$mixed"
[ -s "$numeric" ] || "$out/gen" -rows "$ROWS" -numeric -o "$numeric"

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; $(go version | cut -d' ' -f3); pandas $("$PYTHON" -c 'import pandas; print(pandas.__version__)')"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
res="$out/result-$ROWS.txt"
{
  "$out/driver" -server "$out/backpropd" -mixed-csv "$mixed" -numeric-csv "$numeric" -batch "$BATCH" -duration "$DURATION"
  "$PYTHON" bench/mixed_table/pandas_read.py "$mixed" d1,d2
} | tee "$res"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
awk '
  { v[$1] = $2 }
  END {
    printf "upload: backpropd %.1f MB/s, pandas read_csv %.1f MB/s (ratio %.2f)\n", v["upload_mb_per_s"], v["pandas_mb_per_s"], v["upload_mb_per_s"] / v["pandas_mb_per_s"]
    printf "peak RSS: backpropd %.0f MB (file %.0f MB), pandas %.0f MB (ratio %.2f)\n", v["upload_peak_rss_kb"] / 1024, v["upload_bytes"] / 1e6, v["pandas_peak_rss_kb"] / 1024, v["upload_peak_rss_kb"] / v["pandas_peak_rss_kb"]
    printf "predict: raw object rows %.0f rows/s, numeric array rows %.0f rows/s (ratio %.2f)\n", v["predict_object_rows_per_s"], v["predict_array_rows_per_s"], v["predict_object_rows_per_s"] / v["predict_array_rows_per_s"]
  }' "$res"
