#!/usr/bin/env bash
# Training benchmark through the real server: the benchmark network of
# bench/train_vs_pytorch (784-256-128-10 relu, Adam lr 1e-3, batch 64) on
# Fashion-MNIST, submitted to POST /v1/jobs of a backpropd binary on
# loopback, samples/s read from GET /v1/jobs/{id}/history; and the same
# training in the engine directly (bench/train_vs_pytorch's binary, same
# flags), so that the job path's overhead is a printed ratio. One command
# from a clean clone:
#
#   bash bench/train_server/run.sh
#
# Environment:
#   EPOCHS      epochs per run (default 3)
#   THREADS     engine threads per job (default "2 1"): 2 is the server with
#               --workers 1, where one job gets both cores; 1 is --workers 2,
#               as a job trains on GOMAXPROCS / workers threads
#   PRECISIONS  training.precision values (default "float32 float64"); a
#               value the server refuses with a 400 runs without the field
#               and its row says "server default"
#   SCHEDULE    learning-rate schedule on both sides (default constant)
#   SEED        random seed (default 1)
#   ROUNDS      repeat every run, interleaved; the summary takes each
#               contender's fastest (default 1; more on a shared machine)
#   TRAIN_ROWS  0 = all 60,000 (default); fewer for a smoke run
#   TAGS        go build tags for the server and the engine-direct binary,
#               e.g. TAGS=openblas
#   DATA        the Fashion-MNIST IDX directory
set -euo pipefail
cd "$(dirname "$0")/../.."
EPOCHS="${EPOCHS:-3}"
THREADS="${THREADS:-2 1}"
PRECISIONS="${PRECISIONS:-float32 float64}"
SCHEDULE="${SCHEDULE:-constant}"
SEED="${SEED:-1}"
ROUNDS="${ROUNDS:-1}"
TRAIN_ROWS="${TRAIN_ROWS:-0}"
TAGS="${TAGS:-}"
DATA="${DATA:-/usr/share/datasets/fashion-mnist}"
out=bench/out/train_server${TAGS:+-$TAGS}
mkdir -p "$out"

need=()
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

echo "building server${TAGS:+ (tags $TAGS)}, engine-direct benchmark, driver and CSV converter" >&2
go build ${TAGS:+-tags "$TAGS"} -o "$out/backpropd" ./cmd/server
go build ${TAGS:+-tags "$TAGS"} -o "$out/engine" ./bench/train_vs_pytorch
go build -o "$out/driver" ./bench/train_server/driver
go build -o "$out/fmnistcsv" ./bench/ingest/fmnistcsv
rowsflag=()
[ "$TRAIN_ROWS" != 0 ] && rowsflag=(-rows "$TRAIN_ROWS")
train_csv="$out/fashion-mnist-train-${TRAIN_ROWS}.csv"
test_csv="$out/fashion-mnist-t10k.csv"
if [ ! -s "$train_csv" ]; then
  "$out/fmnistcsv" -data "$DATA" -split train "${rowsflag[@]}" -o "$train_csv.tmp" && mv "$train_csv.tmp" "$train_csv"
fi
if [ ! -s "$test_csv" ]; then
  "$out/fmnistcsv" -data "$DATA" -split t10k -o "$test_csv.tmp" && mv "$test_csv.tmp" "$test_csv"
fi

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; $(go version | cut -d' ' -f3)"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$out/driver" -server "$out/backpropd" -engine "$out/engine" -train-csv "$train_csv" -test-csv "$test_csv" \
  -data "$DATA" -epochs "$EPOCHS" -threads "$THREADS" -precisions "$PRECISIONS" -schedule "$SCHEDULE" \
  -seed "$SEED" -train-rows "$TRAIN_ROWS" -rounds "$ROUNDS" | tee "$out/results.txt"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
