"""Per-step time of each streaming sampler's jitted step (draw + gather + train + update)
against the uniform sampler's step, in one process, at N = 60,000 and N = 1,000,000 base values
(small CNN, batch 128, synthetic 28x28 images: the step's cost does not depend on pixel values).
Also times drawing alone: the two-level inverse CDF used by the samplers against
jax.random.choice(p=...) (one cumsum over N).

  python benchmarks/sampling.py [--n=60000,1000000] [--steps=20] [--repeats=3] [--width=8]

Target: every sampler's step <= 1.2x the uniform step at N = 60,000. Selective-Backprop also
forwards (1 + sb_beta) * B candidates per step, so it costs more by design. A second baseline,
uniform+weights_as_data, is the uniform step with its weights as data (as InfoBatch's and
Selective-Backprop's are, and the epoch loop's): XLA folds the uniform step's constant weights.
Methods are timed round-robin (`--repeats` rounds, median kept) so load changes hit all alike.
Ends with one JSON line of the figures.
"""
import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs import fashion_mnist_cnn  # noqa: E402
from datadiet.data.dataset import Dataset  # noqa: E402
from datadiet.sampling import samplers  # noqa: E402
from datadiet.sampling.config import METHODS  # noqa: E402
from datadiet.sampling.loop import make_stream_step  # noqa: E402
from datadiet.sampling.methods import make_sampler  # noqa: E402
from datadiet.training import optim  # noqa: E402
from datadiet.training.loop import build_model  # noqa: E402
from datadiet.training.state import create_state  # noqa: E402


def synthetic(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)
    y = rng.integers(0, 10, n).astype(np.int32)
    return Dataset("synthetic", x, y, x[:100], y[:100], 10, np.array([127.5], np.float32),
                   np.array([73.6], np.float32), "none", 0)


def timed(fn, steps):
    start = time.perf_counter()
    out = None
    for s in range(steps):
        out = fn(s)
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / steps


WEIGHTS_AS_DATA = "+weights_as_data"


def weights_as_data(sampler):
    """The uniform sampler's constant all-ones weights let XLA drop the weighted loss and the
    BatchNorm masking from its step; samplers whose weights depend on their state (InfoBatch,
    Selective-Backprop) and the epoch loop pay for them. This variant makes the weights data."""
    def draw(state, key, step):
        ids, weights, state = sampler.draw(state, key, step)
        return ids, weights * (step >= 0).astype(weights.dtype), state
    return sampler._replace(draw=draw)


def step_times(config, dataset, methods, steps, repeats):
    b = config.train.batch_size
    images, labels = jnp.asarray(dataset.x_train), jnp.asarray(dataset.y_train)
    runners = {}
    for method in methods:
        config.sampling.method = method.removesuffix(WEIGHTS_AS_DATA)
        tx = optim.make_optimizer(config.optim, 469, 469 * 15)
        graphdef, state = create_state(build_model(config, dataset), tx)
        sampler = make_sampler(config.sampling, dataset.n_train, b, 10, 100_000)
        if method.endswith(WEIGHTS_AS_DATA):
            sampler = weights_as_data(sampler)
        step = make_stream_step(graphdef, tx, dataset, sampler, 0)
        carry = [state, sampler.init(None)]

        def run(s, step=step, carry=carry):
            carry[0], carry[1], out = step(carry[0], carry[1], images, labels, np.int32(s))
            return out["loss"]

        jax.block_until_ready(run(0))  # compile
        runners[method] = run
    times = {m: [] for m in methods}
    for _ in range(repeats):
        for method in methods:
            times[method].append(timed(runners[method], steps))
    return {m: float(np.median(t)) for m, t in times.items()}


def draw_times(n, b, calls=50):
    base = jnp.asarray(np.random.default_rng(0).uniform(0.1, 3.0, n), jnp.float32)
    two_level = jax.jit(lambda k, base: samplers.draw(k, base, b))
    choice = jax.jit(lambda k, base: jax.random.choice(k, n, (b,), p=base / jnp.sum(base)))
    out = {}
    for name, fn in (("two_level", two_level), ("jax_random_choice", choice)):
        jax.block_until_ready(fn(jax.random.key(0), base))
        out[name] = timed(lambda s, fn=fn: fn(jax.random.key(s), base), calls)
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", default="60000,1000000")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--width", type=int, default=0,
                        help="small CNN width (0: the config's; 8 = the streaming experiment's)")
    args = parser.parse_args()
    config = fashion_mnist_cnn.get_config()
    if args.width:
        config.model.kwargs = {"width": args.width, "hidden": 64}
    methods = [m for m in METHODS if m != "none"] + ["uniform" + WEIGHTS_AS_DATA]
    results = {}
    for n in map(int, args.n.split(",")):
        dataset = synthetic(n)
        times = step_times(config, dataset, methods, args.steps, args.repeats)
        draws = draw_times(n, config.train.batch_size)
        base = times["uniform"]
        print(f"N = {n:,}: uniform step {base * 1e3:.1f} ms")
        for m in methods:
            print(f"  {m:26s} {times[m] * 1e3:7.1f} ms   x{times[m] / base:.3f}   "
                  f"x{times[m] / times['uniform' + WEIGHTS_AS_DATA]:.3f} of uniform{WEIGHTS_AS_DATA}")
        print(f"  draw {config.train.batch_size} ids: two-level {draws['two_level'] * 1e3:.2f} ms,"
              f" jax.random.choice {draws['jax_random_choice'] * 1e3:.2f} ms")
        results[str(n)] = {"step_ms": {m: round(t * 1e3, 2) for m, t in times.items()},
                           "ratio_to_uniform": {m: round(t / base, 3) for m, t in times.items()},
                           "ratio_to_uniform_weights_as_data": {
                               m: round(t / times["uniform" + WEIGHTS_AS_DATA], 3)
                               for m, t in times.items()},
                           "draw_ms": {k: round(v * 1e3, 3) for k, v in draws.items()}}
    print(json.dumps({"benchmark": "sampling", "model": "small_cnn",
                      "model_kwargs": dict(config.model.kwargs),
                      "batch_size": config.train.batch_size, "devices": jax.device_count(),
                      "results": results}))


if __name__ == "__main__":
    main()
