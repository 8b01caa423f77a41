"""Examples/s of GraNd (per-example gradient norms over all parameters) against a batch gradient.

  python benchmarks/pergrad.py [--repeats=5] [--models=small_cnn,resnet18] [--all-methods]

For the small CNN (28x28x1, 10 classes, default width) at batch 128 and ResNet-18 (32x32x3)
at batch 32, on the same batch and parameters, BatchNorm in eval mode throughout:
  batch_grad  jax.grad of the mean loss over the batch (the reference throughput);
  grand       `per_example_grad_norms(method="auto")`, the public call (layer-wise norms:
              outer products, ghost norms / per-layer materialisation, BatchNorm sums);
  vmap        `per_example_grad_norms(method="vmap")`: vmap(grad) + per-leaf sums of squares;
  loop        a jitted single-example grad + sum of squares, called once per example.
Every function is compiled and run once before timing; each repeat times every method once in
turn (interleaved, so a change of machine load hits all of them), and the median per method is
reported. The machine's load average is printed beside the figures: the cores are shared.
Prints each ratio to batch_grad and ends with one JSON line of all figures.
"""
import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from datadiet.models import get_model  # noqa: E402
from datadiet.pergrad import per_example_grad_norms  # noqa: E402

SETUPS = {"small_cnn": ((28, 28, 1), 128), "resnet18": ((32, 32, 3), 32)}


def make_methods(graphdef, params, batch_stats, x, y, all_methods):
    def mean_loss(p):
        model = nnx.merge(graphdef, p, batch_stats, copy=True)
        return optax.softmax_cross_entropy_with_integer_labels(model(x, train=False), y).mean()

    batch_grad = jax.jit(jax.grad(mean_loss))

    @jax.jit
    def one_norm(p, x1, y1):
        def loss(p):
            model = nnx.merge(graphdef, p, batch_stats, copy=True)
            return optax.softmax_cross_entropy_with_integer_labels(
                model(x1[None], train=False), y1[None])[0]
        return jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(jax.grad(loss)(p))))

    def norms(method):
        return lambda: per_example_grad_norms(graphdef, params, batch_stats, x, y, method=method,
                                              chunk_size=x.shape[0])

    methods = {
        "batch_grad": lambda: batch_grad(params),
        "grand": norms("auto"),
        "vmap": norms("vmap"),
        "loop": lambda: [one_norm(params, x[i], y[i]) for i in range(x.shape[0])],
    }
    if all_methods:
        methods.update({m: norms(m) for m in ("ghost", "materialize")})
    return methods


def bench_model(name, repeats, all_methods):
    shape, batch = SETUPS[name]
    model = get_model(name, 10, shape, seed=0)
    graphdef, params, batch_stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    x = jax.random.normal(jax.random.key(0), (batch,) + shape)
    y = jax.random.randint(jax.random.key(1), (batch,), 0, 10)
    methods = make_methods(graphdef, params, batch_stats, x, y, all_methods)
    outputs = {k: jax.block_until_ready(f()) for k, f in methods.items()}  # compile + warm up
    ref = np.asarray(outputs["loop"])
    for k in ("grand", "vmap"):
        err = float(np.max(np.abs(np.asarray(outputs[k]) - ref) / ref))
        assert err < 1e-3, f"{name}: {k} differs from the loop by {err:.2e}"
    times = {k: [] for k in methods}
    load_before = os.getloadavg()[0]
    for _ in range(repeats):
        for k, f in methods.items():
            start = time.perf_counter()
            jax.block_until_ready(f())
            times[k].append(time.perf_counter() - start)
    load_after = os.getloadavg()[0]
    rates = {k: batch / float(np.median(v)) for k, v in times.items()}
    result = {"model": name, "batch_size": batch, "load_avg_1min": [load_before, load_after]}
    print(f"{name} batch {batch}  (load average {load_before:.2f} -> {load_after:.2f}, "
          f"{os.cpu_count()} cores, {jax.device_count()} device(s))")
    for k, r in rates.items():
        ratio = r / rates["batch_grad"]
        print(f"  {k:12s} {r:9.1f} examples/s   {ratio:5.2f}x batch_grad")
        result[f"{k}_examples_per_s"] = round(r, 1)
        if k != "batch_grad":
            result[f"{k}_over_batch_grad"] = round(ratio, 3)
    result["grand_over_vmap"] = round(rates["grand"] / rates["vmap"], 3)
    print(f"  grand / vmap: {result['grand_over_vmap']:.2f}x")
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", default="small_cnn,resnet18")
    parser.add_argument("--all-methods", action="store_true",
                        help="also time method='ghost' and method='materialize'")
    args = parser.parse_args()
    results = [bench_model(name, args.repeats, args.all_methods)
               for name in args.models.split(",")]
    print(json.dumps({"benchmark": "pergrad", "repeats": args.repeats, "results": results}))


if __name__ == "__main__":
    main()
