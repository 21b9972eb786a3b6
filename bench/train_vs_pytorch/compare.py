#!/usr/bin/env python3
"""Summarize train_vs_pytorch results (JSON lines) against the targets.

Prints every run, then for each backpropd build its best run against
PyTorch's best (highest samples/s over the thread settings and rounds
tried). Exits 1 when a backpropd build's mean test accuracy over its runs
differs from PyTorch's mean by more than one percentage point, so that a
fast but wrong engine cannot pass. Means, not single runs: one run's
accuracy moves by up to a point with the seed.
"""

import json
import sys

TARGETS = {"openblas": 1.0, "gonum": 0.3}  # target: backpropd/PyTorch samples/s at least this
MAX_ACC_GAP = 0.01


def kind(r):
    if r["impl"] == "pytorch":
        return "pytorch"
    return "openblas" if "OpenBLAS" in r["build"] else "gonum"


def main(path):
    runs = [json.loads(line) for line in open(path) if line.strip()]
    print(f"{'contender':<10} {'threads':>7} {'samples/s':>10} {'test acc':>8} {'secs':>7}  build")
    for r in runs:
        print(f"{kind(r):<10} {r['threads']:>7} {r['samples_per_second']:>10.0f} "
              f"{100 * r['test_accuracy']:>7.2f}% {r['seconds']:>7.2f}  {r['build']}")
    torch = [r for r in runs if kind(r) == "pytorch"]
    if not torch:
        print("no PyTorch run", file=sys.stderr)
        return 1
    best_t = max(torch, key=lambda r: r["samples_per_second"])
    print(f"\nPyTorch best: {best_t['samples_per_second']:.0f} samples/s with {best_t['threads']} thread(s), "
          f"test accuracy {100 * best_t['test_accuracy']:.2f}%")
    failed = False
    for k, bar in TARGETS.items():
        mine = [r for r in runs if kind(r) == k]
        if not mine:
            print(f"backpropd {k}: no run")
            failed = True
            continue
        best = max(mine, key=lambda r: r["samples_per_second"])
        ratio = best["samples_per_second"] / best_t["samples_per_second"]
        verdict = "met" if ratio >= bar else "MISSED"
        print(f"backpropd {k:<8} best {best['samples_per_second']:.0f} samples/s ({best['threads']} thread(s)): "
              f"ratio {ratio:.2f}x PyTorch (target >= {bar}x: {verdict})")

    def mean_acc(rs):
        return sum(r["test_accuracy"] for r in rs) / len(rs)

    torch_acc = mean_acc(torch)
    for k in TARGETS:
        mine = [r for r in runs if kind(r) == k]
        if not mine:
            continue
        acc = mean_acc(mine)
        gap = abs(acc - torch_acc)
        ok = gap <= MAX_ACC_GAP
        print(f"test accuracy: backpropd {k} {100 * acc:.2f}% (mean of {len(mine)}) vs PyTorch "
              f"{100 * torch_acc:.2f}% (mean of {len(torch)}): {100 * gap:.2f} points apart "
              f"(limit {100 * MAX_ACC_GAP:.0f}: {'ok' if ok else 'FAIL'})")
        failed = failed or not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
