#!/usr/bin/env bash
# Serving and ingest benchmark: backpropd's POST /v1/models/{name}/predict
# under 64 concurrent connections (wrk) against a bare net/http handler, and
# the upload of Fashion-MNIST as CSV (MB/s, server peak RSS). The summary
# holds each model's single-row ratio against the 0.7× target. One command
# from a clean clone:
#
#   bash bench/predict_load/run.sh
#
# Environment: DURATION (per load run, default 10s), CONNS (64),
# WRK_THREADS (2), ROUNDS (interleaved load rounds per target, best
# requests/s of each side counts; default 1), FASHION_EPOCHS (1), TAGS (go build tags for the server,
# e.g. TAGS=openblas), DATA (the Fashion-MNIST IDX directory).
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION="${DURATION:-10s}"
CONNS="${CONNS:-64}"
WRK_THREADS="${WRK_THREADS:-2}"
ROUNDS="${ROUNDS:-1}"
FASHION_EPOCHS="${FASHION_EPOCHS:-1}"
TAGS="${TAGS:-}"
DATA="${DATA:-/usr/share/datasets/fashion-mnist}"
out=bench/out/predict_load
mkdir -p "$out"

need=()
command -v wrk >/dev/null || need+=(wrk)
[ -f "$DATA/train-images-idx3-ubyte.gz" ] || need+=(dataset-fashion-mnist)
if [ -n "$TAGS" ]; then ls /usr/lib/*/libopenblas.so >/dev/null 2>&1 || need+=(libopenblas-dev); fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages (run as root to install): ${need[*]}" >&2
    exit 1
  fi
  echo "installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

echo "building server${TAGS:+ (tags $TAGS)}, baseline, driver and CSV generator" >&2
go build ${TAGS:+-tags "$TAGS"} -o "$out/backpropd" ./cmd/server
go build -o "$out/baseline" ./bench/predict_load/baseline
go build -o "$out/driver" ./bench/predict_load/driver
go build -o "$out/fmnistcsv" ./bench/ingest/fmnistcsv
csv="$out/fashion-mnist-train.csv"
if [ ! -s "$csv" ]; then
  "$out/fmnistcsv" -data "$DATA" -split train -o "$csv.tmp"
  mv "$csv.tmp" "$csv"
fi

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; $(go version | cut -d' ' -f3); wrk $(wrk -v 2>&1 | head -1 | cut -d' ' -f2)"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$out/driver" -server "$out/backpropd" -baseline "$out/baseline" -fashion-csv "$csv" \
  -iris-csv examples/iris.csv -duration "$DURATION" -conns "$CONNS" -wrk-threads "$WRK_THREADS" -rounds "$ROUNDS" \
  -fashion-epochs "$FASHION_EPOCHS"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
