#!/usr/bin/env python3
"""Train the benchmark network in PyTorch and print one JSON line.

784-256-128-10 relu, softmax cross-entropy, Adam (lr 1e-3, betas 0.9/0.999,
eps 1e-8; --schedule cosine anneals the rate per epoch exactly as the
engine's "cosine" schedule does), Glorot-uniform weights and zero biases (as backpropd's engine
initializes them), batch 64 reshuffled every epoch, the last partial batch
kept. Pixels are scaled to [0, 1] by dividing by 255, exactly as the Go side
does; there is no other standardization on either side.

samples_per_second counts training only: the epochs loop, from the first
batch to the last optimizer step, not loading or the test evaluation.

The JSON line also says which BLAS the process loaded (the shared objects
mapped into it, and for OpenBLAS its kernel set, openblas_get_corename()) and
PyTorch's own view of its build (BLAS_INFO, CPU capability, parallel backend).
"""

import argparse
import ctypes
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import torch


def read_idx(path):
    """Read an IDX array (ubyte only, which is all Fashion-MNIST uses)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, typ, ndims = struct.unpack(">HBB", data[:4])
    if zero != 0 or typ != 0x08:
        raise ValueError(f"{path}: not a ubyte IDX file (magic {data[:4].hex()})")
    dims = struct.unpack(">" + "I" * ndims, data[4 : 4 + 4 * ndims])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndims)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {arr.size} elements, header says {dims}")
    return arr.reshape(dims)


def load(data_dir, prefix, dtype):
    x = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(x.reshape(len(x), -1).astype(np.float64) / 255.0).to(dtype)
    return x, torch.from_numpy(y.astype(np.int64))


def build(dtype):
    layers = [torch.nn.Linear(784, 256), torch.nn.ReLU(),
              torch.nn.Linear(256, 128), torch.nn.ReLU(),
              torch.nn.Linear(128, 10)]
    net = torch.nn.Sequential(*layers).to(dtype)
    for m in net:
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.xavier_uniform_(m.weight)
            torch.nn.init.zeros_(m.bias)
    return net


def blas_info():
    """The BLAS this process runs: (kernel name or "", description)."""
    libs = sorted({line.split()[-1] for line in open("/proc/self/maps")
                   if line.rstrip().endswith(".so") or ".so." in line
                   if any(k in line.lower() for k in ("blas", "mkl", "lapack"))})
    core, desc = "", ", ".join(os.path.basename(l) for l in libs)
    for lib in libs:
        if "openblas" not in lib:
            continue
        try:
            so = ctypes.CDLL(lib)
            so.openblas_get_corename.restype = ctypes.c_char_p
            so.openblas_get_config.restype = ctypes.c_char_p
            core = so.openblas_get_corename().decode()
            desc = f"{so.openblas_get_config().decode()} ({desc})"
        except (OSError, AttributeError):
            pass
        break
    return core, desc


def torch_backend():
    """PyTorch's description of its BLAS, vector level and threading."""
    show = torch.__config__.show()
    parts = []
    for key in ("BLAS_INFO=", "CPU capability usage:"):
        i = show.find(key)
        if i >= 0:
            parts.append(show[i:].split("\n")[0].split(",")[0].strip())
    for line in torch.__config__.parallel_info().splitlines():
        if line.startswith("ATen parallel backend"):
            parts.append(line.strip())
    return "; ".join(parts)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--train-rows", type=int, default=0, help="use only the first N training rows (0: all)")
    p.add_argument("--precision", choices=["float32", "float64"], default="float64")
    p.add_argument("--float32", action="store_true", help="same as --precision float32")
    p.add_argument("--schedule", choices=["constant", "cosine"], default="constant",
                   help="learning-rate schedule, stepped once per epoch (cosine: PyTorch's CosineAnnealingLR, T_max = epochs)")
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    if a.float32:
        a.precision = "float32"
    dtype = torch.float32 if a.precision == "float32" else torch.float64
    xtr, ytr = load(a.data, "train", dtype)
    xte, yte = load(a.data, "t10k", dtype)
    if a.train_rows:
        xtr, ytr = xtr[: a.train_rows], ytr[: a.train_rows]
    n = len(xtr)

    net = build(dtype)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    loss_fn = torch.nn.CrossEntropyLoss()
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=a.epochs) if a.schedule == "cosine" else None

    t0 = time.perf_counter()
    for _ in range(a.epochs):
        perm = torch.randperm(n)
        for i in range(0, n, a.batch):
            idx = perm[i : i + a.batch]
            xb, yb = xtr[idx], ytr[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(xb), yb)
            loss.backward()
            opt.step()
        if sched:
            sched.step()
    secs = time.perf_counter() - t0

    with torch.no_grad():
        acc = (net(xte).argmax(1) == yte).double().mean().item()
    core, blas = blas_info()
    print(json.dumps({
        "impl": "pytorch",
        "build": f"torch {torch.__version__}, {a.threads} thread(s)",
        "threads": a.threads,
        "precision": a.precision,
        "blas_core": core,
        "blas": blas,
        "backend": torch_backend(),
        "epochs": a.epochs,
        "train_rows": n,
        "seconds": secs,
        "samples_per_second": a.epochs * n / secs,
        "final_batch_loss": loss.item(),
        "test_accuracy": acc,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
