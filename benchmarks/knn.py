"""kNN graph speed: datadiet.geometry.knn (jit, chunked matmul + exact top-k) against
scikit-learn's brute-force NearestNeighbors, side by side in one process on the same
embeddings (Gaussian mixture, 10 classes), N = 60,000, k = 10, d = 64 and 128. Repetitions
alternate between the two and the fastest of each counts (the machine is shared); the
neighbour ids are checked equal. Ends with one line of JSON.

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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=60000)
    p.add_argument("--dims", default="64,128")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--chunk", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    out = {"n": a.n, "k": a.k, "chunk": a.chunk}
    for d in map(int, a.dims.split(",")):
        x = embeddings(a.n, d)
        knn(x[:a.chunk * 2], a.k, chunk=a.chunk)  # compile once outside the timing (shape differs,
        knn(x, a.k, chunk=a.chunk)                # so also warm up the real shape)
        ours, ref = [], []
        for _ in range(a.repeats):
            t = time.perf_counter()
            _, ids = knn(x, a.k, chunk=a.chunk)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            _, ref_ids = NearestNeighbors(n_neighbors=a.k + 1, algorithm="brute").fit(x).kneighbors(x)
            ref.append(time.perf_counter() - t)
        # sklearn lists the point itself first (distance 0); drop that column to compare
        same = float(np.mean(ids == ref_ids[:, 1:]))
        print(f"d={d}: device {min(ours):.2f} s, sklearn brute {min(ref):.2f} s, "
              f"ratio sklearn/device {min(ref) / min(ours):.2f}x, ids equal {same:.6f}")
        out[f"d{d}"] = {"device_s": min(ours), "sklearn_s": min(ref),
                        "speedup": min(ref) / min(ours), "ids_equal_fraction": same}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
