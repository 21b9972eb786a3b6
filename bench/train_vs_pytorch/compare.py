#!/usr/bin/env python3
"""Summarize train_vs_pytorch results (JSON lines) against the targets.

Prints every run, then one row per target: a backpropd build in one
precision against PyTorch in the same precision, each side's best samples/s
(over the thread counts and rounds tried), the ratio, whether the target is
met and by how much it is missed, and each side's GFLOP/s as a fraction of
the machine's peak.

Exits 1 when a backpropd build's mean test accuracy over its runs differs
from PyTorch's mean in the same precision by more than half a percentage
point, or when a contender of the matrix has no run, so that a fast but
wrong engine cannot pass. Means, not single runs: one run's accuracy moves
by a few tenths of a point with the seed. A missed speed target is printed,
not an error: the machine is shared and its load moves the numbers.

Environment:
  FMA_UNITS  FMA units per core for the peak (default 2: two 512-bit FMA
             pipes on AVX-512 server cores, two 256-bit ones on AVX2 cores)
  CLOCK_GHZ  the clock for the peak (default: "cpu MHz" of /proc/cpuinfo)
"""

import json
import os
import sys

# backpropd build, precision -> target ratio of samples/s over PyTorch's.
TARGETS = [
    ("default", "float32", 1.5),
    ("openblas", "float32", 2.0),
    ("default", "float64", 1.5),
    ("openblas", "float64", 2.0),
]
MAX_ACC_GAP = 0.005

# 784-256-128-10: the (in, out) of each dense layer.
LAYERS = [(784, 256), (256, 128), (128, 10)]


def flop_per_sample():
    """Multiply-adds of the three products per layer, 2 FLOP each.

    Forward x·W: 2·in·out. Backward: the weight gradient xᵀ·dz, 2·in·out,
    and the input gradient dz·Wᵀ, 2·in·out, except for the first layer, whose
    input is the data: the engine (network.backward) skips that product and
    PyTorch's autograd does too, since the input does not require a gradient.
    Bias, activation, loss and optimizer work are not counted (under 1%).
    """
    fwd = sum(2 * i * o for i, o in LAYERS)
    wgrad = sum(2 * i * o for i, o in LAYERS)
    igrad = sum(2 * i * o for i, o in LAYERS[1:])
    return fwd + wgrad + igrad, fwd, wgrad, igrad


def cpu():
    """(model, cores, GHz, vector bits, FMA units) of this machine."""
    model, mhz, flags, cores = "unknown CPU", 0.0, set(), 0
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, val = line.partition(":")
            key, val = key.strip(), val.strip()
            if key == "processor":
                cores += 1
            elif key == "model name":
                model = val
            elif key == "cpu MHz" and not mhz:
                mhz = float(val)
            elif key == "flags" and not flags:
                flags = set(val.split())
    ghz = float(os.environ.get("CLOCK_GHZ") or mhz / 1000)
    if "avx512f" in flags:
        bits = 512
    elif "avx2" in flags and "fma" in flags:
        bits = 256
    else:
        bits = 128
    fma = int(os.environ.get("FMA_UNITS", "2"))
    return model, cores, ghz, bits, fma


# Vector width of OpenBLAS's kernel sets (openblas_get_corename()) on x86-64:
# a 256-bit kernel on an AVX-512 machine can reach at most half its peak.
KERNEL_BITS = {"haswell": 256, "zen": 256, "skylakex": 512, "cooperlake": 512, "sapphirerapids": 512}


def kind(r):
    if r["impl"] == "pytorch":
        return "pytorch"
    return "openblas" if "OpenBLAS" in r["build"] else "default"


def main(path):
    runs = [json.loads(line) for line in open(path) if line.strip()]
    for r in runs:
        r.setdefault("precision", "float64")
    flop, fwd, wgrad, igrad = flop_per_sample()
    model, cores, ghz, bits, fma = cpu()

    def peak(precision, ncores):
        lanes = bits // (32 if precision == "float32" else 64)
        return ncores * ghz * fma * 2 * lanes  # GFLOP/s

    def gflops(r):
        return r["samples_per_second"] * flop / 1e9

    print(f"{'contender':<9} {'prec':<7} {'thr':>3} {'samples/s':>10} {'GFLOP/s':>8} {'test acc':>8} "
          f"{'secs':>7}  {'kernel':<9} build")
    for r in runs:
        core = r.get("blas_core") or r.get("kernels") or "-"
        extra = f"; {r['backend']}" if r.get("backend") else ""
        print(f"{kind(r):<9} {r['precision']:<7} {r['threads']:>3} {r['samples_per_second']:>10.0f} "
              f"{gflops(r):>8.2f} {100 * r['test_accuracy']:>7.2f}% {r['seconds']:>7.2f}  {core:<9} "
              f"{r['build']}{extra}")

    print(f"\nFLOP per training sample: {flop:,} = forward {fwd:,} + weight gradients {wgrad:,} "
          f"+ input gradients of layers 2-3 {igrad:,} (the first layer's input gradient is not computed; "
          f"bias, activation, loss and Adam not counted)")
    lanes64, lanes32 = bits // 64, bits // 32
    print(f"peak: {model}, {cores} cores x {ghz:.3f} GHz x {fma} FMA units x 2 FLOP x {bits}-bit vectors "
          f"({lanes32} float32 / {lanes64} float64 lanes) = {peak('float32', cores):.1f} GFLOP/s float32, "
          f"{peak('float64', cores):.1f} GFLOP/s float64")
    print(f"  assumption: {fma} {bits}-bit FMA units per core (FMA_UNITS), at the clock /proc/cpuinfo reports "
          f"(CLOCK_GHZ); a higher turbo clock would lower every fraction below")

    def best(k, prec):
        rs = [r for r in runs if kind(r) == k and r["precision"] == prec]
        return (max(rs, key=lambda r: r["samples_per_second"]) if rs else None), rs

    def mean_acc(rs):
        return sum(r["test_accuracy"] for r in rs) / len(rs)

    def share(r):
        used = min(r["threads"], cores)
        text = (f"{gflops(r):.1f} GFLOP/s = {100 * gflops(r) / peak(r['precision'], cores):.1f}% of machine peak, "
                f"{100 * gflops(r) / peak(r['precision'], used):.1f}% of its {used} core(s)")
        kbits = KERNEL_BITS.get((r.get("blas_core") or "").lower())
        if kbits and kbits < bits:
            text += f" [{r['blas_core']} kernels are {kbits}-bit: at most {100 * kbits / bits:.0f}% of this peak]"
        return text

    failed = False
    print("\ntargets (best samples/s over thread counts and rounds, same precision on both sides):")
    for k, prec, bar in TARGETS:
        label = f"{k} {prec}"
        mine_best, mine = best(k, prec)
        torch_best, torch = best("pytorch", prec)
        if not mine and not torch:
            print(f"  {label:<17} not run (no {prec} run on either side)")
            continue
        if not mine or not torch:
            print(f"  {label:<17} no run of {'backpropd ' + k if not mine else 'PyTorch'} in {prec}")
            failed = True
            continue
        ratio = mine_best["samples_per_second"] / torch_best["samples_per_second"]
        if ratio >= bar:
            verdict = "met"
        else:
            need = bar * torch_best["samples_per_second"] - mine_best["samples_per_second"]
            verdict = f"missed by {100 * (1 - ratio / bar):.1f}% (needs {need:.0f} samples/s more)"
        gap = abs(mean_acc(mine) - mean_acc(torch))
        ok = gap <= MAX_ACC_GAP
        failed = failed or not ok
        print(f"  {label:<17} {mine_best['samples_per_second']:>8.0f} samples/s ({mine_best['threads']} thr) vs "
              f"PyTorch {torch_best['samples_per_second']:.0f} ({torch_best['threads']} thr): "
              f"ratio {ratio:.2f}x, target >= {bar}x: {verdict}")
        print(f"  {'':<17} backpropd: {share(mine_best)}")
        print(f"  {'':<17} PyTorch:   {share(torch_best)}")
        print(f"  {'':<17} test accuracy {100 * mean_acc(mine):.2f}% (mean of {len(mine)}) vs PyTorch "
              f"{100 * mean_acc(torch):.2f}% (mean of {len(torch)}): {100 * gap:.2f} points apart "
              f"(limit {100 * MAX_ACC_GAP:.1f}: {'ok' if ok else 'FAIL'})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
