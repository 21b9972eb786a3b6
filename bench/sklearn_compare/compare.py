"""Trains the same tables through backpropd and through scikit-learn and
prints the held-out accuracy of each and the gap.

Each table is split once (numpy PCG64 seed 20200716, a fifth held out);
the training rows go to backpropd as CSV exactly as they are in the file,
and to a scikit-learn Pipeline of a ColumnTransformer (numbers:
SimpleImputer(median, with missing indicators) + StandardScaler;
categories: SimpleImputer(constant) + OneHotEncoder(ignore unknown);
datetimes: year, month, day, weekday and hour, then as numbers) and an
MLPClassifier of the same size, optimizer, learning rate, batch size and
epochs. Both see the columns the server's inference made features, so
the gap measures the preprocessing and training, not the column choice.
backpropd predicts the held-out rows raw, as objects keyed by column.

    python3 bench/sklearn_compare/compare.py --url http://127.0.0.1:8080 \
        --table penguins=path/penguins.csv:species ...
"""
import argparse
import csv
import io
import json
import time
import urllib.parse
import urllib.request
import warnings

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

SEED = 20200716

# Both sides run a fixed number of epochs, so that scikit-learn stops
# short of convergence is the comparison, not news.
warnings.filterwarnings("ignore", category=ConvergenceWarning)


def http(url, method="GET", body=None, ctype="application/json"):
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req) as res:
            return json.load(res)
    except urllib.error.HTTPError as e:
        raise SystemExit(f"{method} {url}: {e.code} {e.read().decode()[:500]}")


def split(rows):
    idx = np.random.Generator(np.random.PCG64(SEED)).permutation(len(rows))
    n = len(rows) // 5
    return [rows[i] for i in idx[n:]], [rows[i] for i in idx[:n]]


def to_csv(header, rows):
    b = io.StringIO()
    w = csv.writer(b, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return b.getvalue()


def backpropd(url, name, header, train, held, target, net):
    q = urllib.parse.urlencode({"name": name, "target": target})
    ds = http(f"{url}/v1/datasets?{q}", "POST", to_csv(header, train).encode(), "text/csv")
    spec = {"model_name": name, "dataset_id": ds["id"],
            "network": {"hidden": [{"units": net["units"], "activation": "tanh"}]},
            "training": {"epochs": net["epochs"], "batch_size": net["batch"], "seed": 1,
                         "optimizer": {"name": "adam", "learning_rate": net["lr"]}}}
    job = http(f"{url}/v1/jobs", "POST", json.dumps(spec).encode())
    start = time.perf_counter()
    while job["status"] not in ("succeeded", "failed", "cancelled"):
        time.sleep(0.1)
        job = http(f"{url}/v1/jobs/{job['id']}")
    if job["status"] != "succeeded":
        raise SystemExit(f"job {name} {job['status']}: {job.get('error')}")
    secs = time.perf_counter() - start
    inputs = http(f"{url}/v1/models/{name}")["inputs"]
    col = {h: i for i, h in enumerate(header)}
    missing = {"", "NA"}
    preds = []
    for lo in range(0, len(held), 1000):
        rows = []
        for rec in held[lo:lo + 1000]:
            row = {}
            for inp in inputs:
                cell = rec[col[inp["name"]]]
                if cell in missing:
                    continue
                row[inp["name"]] = float(cell) if inp["type"] == "number" else cell
            rows.append(row)
        preds += http(f"{url}/v1/models/{name}/predict", "POST", json.dumps({"inputs": rows}).encode())["predictions"]
    truth = [rec[col[target]] for rec in held]
    return ds, np.mean([p == t for p, t in zip(preds, truth)]), secs


def date_parts(df, cols):
    out = pd.DataFrame(index=df.index)
    for c in cols:
        d = pd.to_datetime(df[c], errors="coerce")
        for part in ("year", "month", "day", "weekday", "hour"):
            out[f"{c}.{part}"] = getattr(d.dt, part)
    return out


def sklearn(header, train, held, target, ds, net):
    kinds = {c["name"]: c["type"] for c in ds["columns"] if c["role"] == "feature"}
    nums = [c for c, k in kinds.items() if k == "number"]
    cats = [c for c, k in kinds.items() if k == "category"]
    dates = [c for c, k in kinds.items() if k == "datetime"]
    frames = []
    for rows in (train, held):
        df = pd.read_csv(io.StringIO(to_csv(header, rows)), dtype={c: str for c in cats})
        x = pd.concat([df[nums], date_parts(df, dates), df[cats].astype(object).where(df[cats].notna(), None)], axis=1)
        frames.append((x, df[target].astype(str)))
    numeric = nums + [c for c in frames[0][0].columns if "." in c and c.split(".")[0] in dates]
    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="(missing)"),
                              OneHotEncoder(handle_unknown="ignore")), cats),
    ])
    mlp = MLPClassifier(hidden_layer_sizes=(net["units"],), activation="tanh", solver="adam",
                        learning_rate_init=net["lr"], batch_size=net["batch"], max_iter=net["epochs"],
                        n_iter_no_change=net["epochs"], random_state=1)
    model = Pipeline([("pre", pre), ("mlp", mlp)])
    start = time.perf_counter()
    model.fit(*frames[0])
    secs = time.perf_counter() - start
    return float(np.mean(model.predict(frames[1][0]) == frames[1][1].to_numpy())), secs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--table", action="append", required=True,
                    help="name=path:target[:units:epochs:batch:lr]")
    a = ap.parse_args()
    print(f"{'table':<14}{'train':>7}{'held':>6}{'backpropd':>11}{'sklearn':>9}{'gap':>8}{'bpd s':>7}{'skl s':>7}")
    for spec in a.table:
        name, rest = spec.split("=", 1)
        path, target, *hp = rest.split(":")
        net = dict(zip(("units", "epochs", "batch", "lr"), [int(v) for v in hp[:3]] + [float(v) for v in hp[3:]]))
        net = {"units": 16, "epochs": 60, "batch": 16, "lr": 0.01, **net}
        with open(path, newline="") as f:
            recs = list(csv.reader(f))
        header, rows = recs[0], recs[1:]
        train, held = split(rows)
        ds, bacc, bsecs = backpropd(a.url, name, header, train, held, target, net)
        sacc, ssecs = sklearn(header, train, held, target, ds, net)
        print(f"{name:<14}{len(train):>7}{len(held):>6}{bacc:>11.4f}{sacc:>9.4f}{bacc - sacc:>+8.4f}{bsecs:>7.1f}{ssecs:>7.1f}", flush=True)


if __name__ == "__main__":
    main()
