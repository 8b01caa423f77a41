"""kNN graph speed: datadiet.geometry.knn (jit, chunked float32 matmul + top-(k + extra) on the
device, exact float64 re-ranking on the host) against scikit-learn's brute-force
NearestNeighbors, side by side in one process on the same embeddings (Gaussian mixture,
10 classes), N = 60,000, k = 10, d = 64 and 128. Repetitions alternate between the two and the
fastest of each counts (the machine is shared). Both time the whole kNN graph (self excluded).

Ids are compared with two references: scikit-learn's (it upcasts float32 to float64 and uses the
matmul form in float64) and the exact float64 brute force (difference form, ties to the lower
id) on a random sample of rows plus every row where the device and scikit-learn disagree, so a
disagreement is attributed to the side that is wrong. Ends with one line of JSON.

    python benchmarks/knn.py                 # ~2-4 min on 2 CPU cores
    python benchmarks/knn.py --n 5000 --repeats 1
"""
import argparse
import json
import time

import numpy as np
from sklearn.neighbors import NearestNeighbors

from datadiet.geometry import knn


def embeddings(n, d, seed=0):
    rng = np.random.default_rng(seed)
    means = 3 * rng.standard_normal((10, d)).astype(np.float32)
    return means[rng.integers(0, 10, n)] + rng.standard_normal((n, d), dtype=np.float32)


def exact_ids(x, rows, k):
    """Each row's k nearest ids by float64 difference-form distances, self excluded, ties to the
    lower id: the exact answer for float32 inputs."""
    out = []
    for i in rows:
        diff = np.subtract(x, x[i], dtype=np.float64)
        e = np.einsum("ij,ij->i", diff, diff)
        e[i] = np.inf
        out.append(np.lexsort((np.arange(len(x)), e))[:k])
    return np.array(out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=60000)
    p.add_argument("--dims", default="64,128")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--chunk", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--exact-rows", type=int, default=500, help="rows sampled for the exact check")
    a = p.parse_args()
    out = {"n": a.n, "k": a.k, "chunk": a.chunk}
    for d in map(int, a.dims.split(",")):
        x = embeddings(a.n, d)
        knn(x, a.k, chunk=a.chunk)  # compile outside the timing (jit is keyed on the shape)
        ours, ref = [], []
        for _ in range(a.repeats):
            t = time.perf_counter()
            _, ids = knn(x, a.k, chunk=a.chunk)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            # kneighbors() without X: scikit-learn's own kNN graph (it drops each point itself)
            _, ref_ids = NearestNeighbors(n_neighbors=a.k, algorithm="brute").fit(x).kneighbors()
            ref.append(time.perf_counter() - t)
        same = float(np.mean(ids == ref_ids))
        rows = np.union1d(np.random.default_rng(1).choice(a.n, a.exact_rows, replace=False),
                          np.flatnonzero((ids != ref_ids).any(1)))
        exact = exact_ids(x, rows, a.k)
        ours_exact, sk_exact = float(np.mean(ids[rows] == exact)), float(np.mean(ref_ids[rows] == exact))
        print(f"d={d}: device {min(ours):.2f} s, sklearn brute {min(ref):.2f} s, "
              f"ratio sklearn/device {min(ref) / min(ours):.2f}x, ids equal to sklearn {same:.6f}; "
              f"on {len(rows)} rows checked by exact float64 brute force: device {ours_exact:.6f}, "
              f"sklearn {sk_exact:.6f}")
        out[f"d{d}"] = {"device_s": min(ours), "sklearn_s": min(ref), "speedup": min(ref) / min(ours),
                        "ids_equal_fraction": same, "exact_rows": len(rows),
                        "device_equal_exact": ours_exact, "sklearn_equal_exact": sk_exact}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
