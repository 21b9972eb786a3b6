#!/usr/bin/env python3
"""PyTorch inference of a backpropd model file, timed in batches.

Reads the model file that GET /v1/models/{name}/versions/{version}/file
exports (the container layout of internal/engine/container.go: magic,
format, JSON header, float64 values, CRC-32C), builds the same network as a
torch.nn.Sequential (the input scaling (x - shift) * (1 / scale) the server
applies, then the layers, softmax last), and checks that its probabilities
on the test rows agree with the server's to 1e-6 relative: that proves it
is the same model. Then it times inference (no_grad) over all rows in
batches of each --batches size and prints one JSON line per dtype and
batch size.

Threads: torch.set_num_threads(--threads); the caller also sets
OMP_NUM_THREADS and OPENBLAS_NUM_THREADS, because Debian's torch sends
float64 products to OpenBLAS, whose own pool would otherwise take every
core.
"""

import argparse
import json
import struct
import sys
import time

import numpy as np
import torch

MAGIC = b"BPDMODEL"
# Relative agreement that proves the two sides run the same model: both
# compute in float64, so the only differences are summation order (about
# 1e-13 relative on these probabilities).
RTOL = 1e-6


def crc32c(data):
    """CRC-32C (Castagnoli), as the model file's trailer holds it."""
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    crc = 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def read_model(path):
    with open(path, "rb") as f:
        b = f.read()
    if b[:8] != MAGIC:
        raise ValueError(f"{path}: not a backpropd model file (magic {b[:8]!r})")
    if crc32c(b[:-4]) != struct.unpack("<I", b[-4:])[0]:
        raise ValueError(f"{path}: checksum mismatch")
    version, hdr_len = struct.unpack("<II", b[8:16])
    header = json.loads(b[16 : 16 + hdr_len])
    (count,) = struct.unpack("<Q", b[16 + hdr_len : 24 + hdr_len])
    off = 24 + hdr_len
    # A float32 model (format 3) stores its weights and biases as float32
    # and the scaling after them as float64; they are widened exactly.
    n32 = header["params"] if header["config"]["training"].get("precision") == "float32" else 0
    w32 = np.frombuffer(b, dtype="<f4", count=n32, offset=off).astype(np.float64)
    rest = np.frombuffer(b, dtype="<f8", count=count - n32, offset=off + 4 * n32)
    return version, header, np.concatenate([w32, rest])


def build(header, values, dtype):
    """The model as (shift, inv_scale, torch.nn.Sequential) in dtype."""
    if header.get("inputs"):
        raise ValueError("typed-column models are not supported here; train on numeric columns")
    pos = 0
    layers = []
    for spec in header["layers"]:
        n_in, n_out, act = spec["in"], spec["out"], spec["activation"]
        w = values[pos : pos + n_in * n_out].reshape(n_in, n_out)  # row-major in x out
        pos += n_in * n_out
        bias = values[pos : pos + n_out]
        pos += n_out
        # Built in float64, so that copying the weights in loses nothing;
        # .to(dtype) below rounds them once for a float32 run.
        lin = torch.nn.Linear(n_in, n_out, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.T.copy()))
            lin.bias.copy_(torch.from_numpy(bias.copy()))
        layers.append(lin)
        if act == "relu":
            layers.append(torch.nn.ReLU())
        elif act == "softmax":
            layers.append(torch.nn.Softmax(dim=1))
        elif act == "sigmoid":
            layers.append(torch.nn.Sigmoid())
        elif act == "tanh":
            layers.append(torch.nn.Tanh())
        elif act != "identity":
            raise ValueError(f"activation {act!r} is not supported here")
    if pos != header["params"]:
        raise ValueError(f"layers use {pos} parameters, the header says {header['params']}")
    shift = inv = None
    if header["standardized"]:
        width = header["features"]
        shift = values[pos : pos + width]
        scale = values[pos + width : pos + 2 * width]
        pos += 2 * width
        # The server multiplies by 1/scale rather than dividing.
        inv = 1.0 / scale
        shift, inv = torch.from_numpy(shift.copy()).to(dtype), torch.from_numpy(inv.copy()).to(dtype)
    if pos != len(values):
        raise ValueError(f"{len(values) - pos} values left over after the model")
    return shift, inv, torch.nn.Sequential(*layers).to(dtype).eval()


def predictor(shift, inv, net):
    if shift is None:
        return net
    return lambda x: net((x - shift) * inv)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True, help="model file from GET /v1/models/{name}/versions/{v}/file")
    p.add_argument("--x", required=True, help="test rows, raw little-endian float64, row-major")
    p.add_argument("--probs", required=True, help="the server's probabilities for those rows, raw float64")
    p.add_argument("--batches", default="1,64,1000")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=1, help="timed passes per batch size; the fastest counts")
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    version, header, values = read_model(a.model)
    features, outputs = header["features"], header["outputs"]
    x = np.fromfile(a.x, dtype="<f8").reshape(-1, features)
    want = np.fromfile(a.probs, dtype="<f8").reshape(-1, outputs)
    precision = header["config"]["training"].get("precision") or "float64"
    dtypes = [torch.float64] + ([torch.float32] if precision == "float32" else [])
    batches = [int(s) for s in a.batches.split(",")]
    ok = True
    for dtype in dtypes:
        shift, inv, net = build(header, values, dtype)
        f = predictor(shift, inv, net)
        xt = torch.from_numpy(x).to(dtype)
        with torch.no_grad():
            got = f(xt).to(torch.float64).numpy()
        # A float32 model's predictions are computed in float32 on the
        # server, so either side agrees with them only to float32's
        # precision (another model would differ by far more).
        rtol = RTOL if dtype == torch.float64 and precision == "float64" else 1e-3
        rel = np.abs(got - want) / np.maximum(np.abs(want), 1e-300)
        agree = bool(np.all(np.abs(got - want) <= rtol * np.abs(want)))
        ok = ok and agree
        for b in batches:
            chunks = [xt[i : i + b] for i in range(0, len(xt), b)]
            best = float("inf")
            with torch.no_grad():
                for c in chunks[: min(len(chunks), 16)]:  # warm-up
                    f(c)
                for _ in range(a.rounds):
                    t0 = time.perf_counter()
                    for c in chunks:
                        f(c)
                    best = min(best, time.perf_counter() - t0)
            print(json.dumps({
                "impl": "pytorch", "torch": torch.__version__, "threads": a.threads,
                "dtype": str(dtype).removeprefix("torch."), "model_precision": precision, "model_format": version,
                "batch": b, "rows": len(xt), "seconds": best, "rows_per_second": len(xt) / best,
                "max_rel_diff": float(rel.max()), "agrees": agree, "rtol": rtol,
            }), flush=True)
    if not ok:
        print("torch_infer: the PyTorch model's probabilities differ from the server's beyond the tolerance", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
