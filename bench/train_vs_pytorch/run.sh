#!/usr/bin/env bash
# Side-by-side training benchmark: backpropd's engine (the default pure-Go
# build and the -tags openblas build) against PyTorch on Fashion-MNIST, same
# network, optimizer, batch, epochs and precision, in float32 and float64.
# One command from a clean clone:
#
#   bash bench/train_vs_pytorch/run.sh
#
# Environment:
#   EPOCHS      epochs per run (default 3)
#   THREADS     thread counts to try for every contender (default "1 2")
#   PRECISIONS  precisions to run on every side (default "float32 float64")
#   ROUNDS      repeat everything, interleaved, with seed = round; speed is
#               each contender's best run, accuracy its mean (default 1;
#               more on a noisy shared machine)
#   SCHEDULE    learning-rate schedule on both sides, stepped per epoch:
#               cosine (default) or constant
#   TRAIN_ROWS  0 = all 60,000 (default); fewer for a smoke run
#   DATA        the Fashion-MNIST IDX directory
#   PYTHON      default /usr/bin/python3, Debian's, which has python3-torch
#   FMA_UNITS, CLOCK_GHZ  the peak's assumptions, see compare.py
#
# Every round runs, for each thread count and precision, PyTorch, then the
# default build, then the openblas build, so that a change in the machine's
# load hits all contenders alike.
#
# "t threads" means the same for every contender: PyTorch runs with
# torch.set_num_threads(t), OMP_NUM_THREADS=t and OPENBLAS_NUM_THREADS=t
# (Debian's torch sends its products to OpenBLAS, whose own pool would
# otherwise take every core); the engine with Options.Threads=t and, in the
# openblas build, openblas.SetThreads(t).
#
# compare.py prints every run and the four targets (each build in each
# precision against PyTorch in the same precision). Exits non-zero if a
# contender fails, or if a backpropd build's mean test accuracy differs from
# PyTorch's in the same precision by more than half a percentage point.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=bench/train_vs_pytorch
EPOCHS="${EPOCHS:-3}"
THREADS="${THREADS:-1 2}"
PRECISIONS="${PRECISIONS:-float32 float64}"
ROUNDS="${ROUNDS:-1}"
SCHEDULE="${SCHEDULE:-cosine}"
TRAIN_ROWS="${TRAIN_ROWS:-0}"
DATA="${DATA:-/usr/share/datasets/fashion-mnist}"
PYTHON="${PYTHON:-/usr/bin/python3}"
out=bench/out/train_vs_pytorch
mkdir -p "$out"

# Install what is missing (Debian packages; needs root).
need=()
"$PYTHON" -c 'import torch' 2>/dev/null || need+=(python3-torch)
"$PYTHON" -c 'import numpy' 2>/dev/null || need+=(python3-numpy)
[ -f "$DATA/train-images-idx3-ubyte.gz" ] || need+=(dataset-fashion-mnist)
ls /usr/lib/*/libopenblas.so >/dev/null 2>&1 || need+=(libopenblas-dev)
command -v gcc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages (run as root to install): ${need[*]}" >&2
    exit 1
  fi
  echo "installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

for p in $PRECISIONS; do
  case "$p" in
    float32 | float64) ;;
    *) echo "PRECISIONS: $p is not float32 or float64" >&2; exit 2 ;;
  esac
done

echo "building the engine benchmark (default build, and -tags openblas)" >&2
CGO_ENABLED=0 go build -o "$out/engine-default" "./$here"
CGO_ENABLED=1 go build -tags openblas -o "$out/engine-openblas" "./$here"

results="$out/results.jsonl"
: >"$results"
load_start=$(uptime)
for r in $(seq "$ROUNDS"); do
  for t in $THREADS; do
    for p in $PRECISIONS; do
      echo "round $r: pytorch $p, $t thread(s)" >&2
      OMP_NUM_THREADS="$t" OPENBLAS_NUM_THREADS="$t" "$PYTHON" "$here/train_torch.py" --data "$DATA" \
        --epochs "$EPOCHS" --threads "$t" --train-rows "$TRAIN_ROWS" --seed "$r" --schedule "$SCHEDULE" \
        --precision "$p" >>"$results"
      for b in default openblas; do
        echo "round $r: backpropd $b $p, $t thread(s)" >&2
        "$out/engine-$b" -data "$DATA" -epochs "$EPOCHS" -threads "$t" -train-rows "$TRAIN_ROWS" \
          -seed "$r" -schedule "$SCHEDULE" -precision "$p" >>"$results"
      done
    done
  done
done

{
  echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; $(go version | cut -d' ' -f3)"
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "load at start: $load_start"
  echo "load at end:   $(uptime)"
  echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-(unset)}"
} >"$out/machine.txt"
cat "$out/machine.txt"
"$PYTHON" "$here/compare.py" "$results"
