#!/usr/bin/env bash
# Ingest benchmark: the upload of Fashion-MNIST's training split as CSV
# (60,000 rows of a class name and 784 pixels, about 133 MB) to POST
# /v1/datasets of the real server on loopback, N times: MB/s end to end
# (bytes of CSV over the wall time of the request), best and median, the
# server's peak RSS against the numeric size, and the verdict against
# TARGET MB/s. Then the parser alone (csvprof). One command from a clean
# clone:
#
#   bash bench/ingest/run.sh
#
# Environment: N (uploads per server, default 5), TARGET (MB/s, 100),
# BASE (a git revision whose server is measured too, its uploads
# interleaved with this tree's, e.g. BASE=main), DATA (the Fashion-MNIST
# IDX directory, Debian package dataset-fashion-mnist), CSV (another CSV
# file to upload instead; QUERY its upload's query, default
# name=bench&target=label).
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${N:-5}"
TARGET="${TARGET:-100}"
BASE="${BASE:-}"
DATA="${DATA:-/usr/share/datasets/fashion-mnist}"
QUERY="${QUERY:-name=bench&target=label}"
out=bench/out/ingest
mkdir -p "$out"

go build -o "$out/backpropd" ./cmd/server
go build -o "$out/e2e" ./bench/ingest/e2e
go build -o "$out/csvprof" ./bench/ingest/csvprof
servers=("this=$out/backpropd")
if [ -n "$BASE" ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  git archive "$BASE" | tar -x -C "$tmp"
  (cd "$tmp" && go build -o server ./cmd/server)
  cp "$tmp/server" "$out/backpropd-base"
  servers+=("$BASE=$out/backpropd-base")
fi
csv="${CSV:-$out/fashion-mnist-train.csv}"
if [ ! -s "$csv" ]; then
  [ -f "$DATA/train-images-idx3-ubyte.gz" ] || { echo "no Fashion-MNIST in $DATA: apt-get install dataset-fashion-mnist, or set DATA" >&2; exit 1; }
  go build -o "$out/fmnistcsv" ./bench/ingest/fmnistcsv
  "$out/fmnistcsv" -data "$DATA" -split train -o "$csv.tmp"
  mv "$csv.tmp" "$csv"
fi

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; $(go version | cut -d' ' -f3)"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
"$out/e2e" -csv "$csv" -n "$N" -query "$QUERY" -target "$TARGET" "${servers[@]}"
target="$(sed -n 's/.*target=\([^&]*\).*/\1/p' <<<"$QUERY")"
echo "parser alone (no HTTP, no store):"
"$out/csvprof" -target "${target:-label}" "$csv"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
