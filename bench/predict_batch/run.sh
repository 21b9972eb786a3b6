#!/usr/bin/env bash
# Batch prediction benchmark: the 10,000 Fashion-MNIST test rows through
# backpropd's POST /v1/models/{name}/predict (JSON) in batches of 1, 64 and
# 1000 rows, against PyTorch inference of the same model (exported with
# GET /v1/models/{name}/versions/{version}/file, loaded into
# torch.nn.Sequential and checked to agree with the server's probabilities
# to 1e-6 relative, 1e-3 for a float32 model). The model is the benchmark network of
# bench/train_vs_pytorch, trained through the server. One command from a
# clean clone:
#
#   bash bench/predict_batch/run.sh
#
# Environment:
#   BATCHES        rows per request (default "1 64 1000")
#   TORCH_THREADS  torch.set_num_threads values (default "1 2"; also
#                  OMP_NUM_THREADS and OPENBLAS_NUM_THREADS)
#   PRECISIONS     training.precision of the models (default "float32
#                  float64"); one the server refuses trains without the
#                  field, labelled "server default". PyTorch runs float64,
#                  and float32 too when the model file says float32
#   EPOCHS         training epochs of the model (default 1)
#   ROUNDS         timed passes per batch size and side, fastest counts (1)
#   TAGS           go build tags for the server, e.g. TAGS=openblas
#   DATA           the Fashion-MNIST IDX directory
#   PYTHON         default /usr/bin/python3, Debian's, with python3-torch
set -euo pipefail
cd "$(dirname "$0")/../.."
BATCHES="${BATCHES:-1 64 1000}"
TORCH_THREADS="${TORCH_THREADS:-1 2}"
PRECISIONS="${PRECISIONS:-float32 float64}"
EPOCHS="${EPOCHS:-1}"
ROUNDS="${ROUNDS:-1}"
TAGS="${TAGS:-}"
DATA="${DATA:-/usr/share/datasets/fashion-mnist}"
PYTHON="${PYTHON:-/usr/bin/python3}"
out=bench/out/predict_batch${TAGS:+-$TAGS}
mkdir -p "$out"

need=()
"$PYTHON" -c 'import torch' 2>/dev/null || need+=(python3-torch)
"$PYTHON" -c 'import numpy' 2>/dev/null || need+=(python3-numpy)
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

echo "building server${TAGS:+ (tags $TAGS)}, driver and CSV converter" >&2
go build ${TAGS:+-tags "$TAGS"} -o "$out/backpropd" ./cmd/server
go build -o "$out/driver" ./bench/predict_batch/driver
go build -o "$out/fmnistcsv" ./bench/ingest/fmnistcsv
for split in train t10k; do
  csv="$out/fashion-mnist-$split.csv"
  if [ ! -s "$csv" ]; then
    "$out/fmnistcsv" -data "$DATA" -split "$split" -o "$csv.tmp" && mv "$csv.tmp" "$csv"
  fi
done

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; $(go version | cut -d' ' -f3); torch $("$PYTHON" -c 'import torch; print(torch.__version__)')"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$out/driver" -server "$out/backpropd" -train-csv "$out/fashion-mnist-train.csv" -test-csv "$out/fashion-mnist-t10k.csv" \
  -python "$PYTHON" -batches "$BATCHES" -torch-threads "$TORCH_THREADS" -precisions "$PRECISIONS" \
  -epochs "$EPOCHS" -rounds "$ROUNDS" | tee "$out/results.txt"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
