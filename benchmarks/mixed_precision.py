"""Train-step time under model.dtype="bfloat16" against "float32", side by side in one process:
the small CNN on Fashion-MNIST-shaped inputs (28x28x1, 10 classes), batch 128, the project's
jitted weighted train step (SGD with momentum), repetitions interleaved between the dtypes.

  taskset -c 1 python benchmarks/mixed_precision.py [--repeats=7] [--steps=20] [--batch=128]

CPU figures are only informative: most CPUs have no fast bfloat16 arithmetic (XLA:CPU may
convert to float32 and back), so bf16 can be slower there; the speed-up mixed precision is for
comes from GPUs/TPUs. Ends with one JSON line of the figures.

`measure_step_times(...)` is the reusable part (benchmarks/input_pipeline.py calls it).
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from datadiet.models import get_model  # noqa: E402
from datadiet.training.state import create_state  # noqa: E402
from datadiet.training.step import make_train_step  # noqa: E402


def measure_step_times(dtypes=("float32", "bfloat16"), *, model="small_cnn", model_kwargs=None,
                       input_shape=(28, 28, 1), num_classes=10, batch_size=128, steps=20,
                       repeats=7, seed=0):
    """{dtype: [seconds per train step, one figure per repeat]}.

    One model and train step per dtype (same initial parameters), compiled before timing; then
    `repeats` rounds, each timing `steps` consecutive steps of every dtype in turn (interleaved,
    so load changes hit all dtypes alike). Inputs are a fixed random batch already on device:
    this is the step alone, no input pipeline.
    """
    rng = np.random.default_rng(seed)
    batch = {"x": jnp.asarray(rng.standard_normal((batch_size,) + tuple(input_shape)), jnp.float32),
             "y": jnp.asarray(rng.integers(0, num_classes, batch_size), jnp.int32)}
    weights = jnp.ones(batch_size, jnp.float32)
    tx = optax.sgd(0.05, momentum=0.9, nesterov=True)
    runs = {}
    for dtype in dtypes:
        net = get_model(model, num_classes, input_shape, seed, dtype=dtype, **(model_kwargs or {}))
        graphdef, state = create_state(net, tx)
        step = make_train_step(graphdef, tx)
        state, out = step(state, batch, weights)  # compile
        jax.block_until_ready((state, out))
        runs[dtype] = [step, state]
    times = {dtype: [] for dtype in dtypes}
    for _ in range(repeats):
        for dtype in dtypes:
            step, state = runs[dtype]
            start = time.perf_counter()
            for _ in range(steps):
                state, out = step(state, batch, weights)
            jax.block_until_ready((state, out))
            times[dtype].append((time.perf_counter() - start) / steps)
            runs[dtype][1] = state
    return times


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    times = measure_step_times(batch_size=args.batch, steps=args.steps, repeats=args.repeats)
    med = {d: statistics.median(t) for d, t in times.items()}
    ratio = med["float32"] / med["bfloat16"]
    for d, t in times.items():
        print(f"{d:9s} train step: {1e3 * med[d]:8.2f} ms median ({1e3 * min(t):.2f}-"
              f"{1e3 * max(t):.2f}), {args.batch / med[d]:7.0f} examples/s")
    print(f"bfloat16 speed-up (float32 time / bfloat16 time): {ratio:.3f}x on "
          f"{jax.devices()[0].platform}")
    if jax.devices()[0].platform == "cpu":
        print("CPU figures are only informative: most CPUs lack fast bfloat16 arithmetic; "
              "mixed precision pays on GPUs/TPUs.")
    print(json.dumps({"benchmark": "mixed_precision", "model": "small_cnn",
                      "input_shape": [28, 28, 1], "batch_size": args.batch,
                      "steps": args.steps, "repeats": args.repeats,
                      "platform": jax.devices()[0].platform, "devices": jax.device_count(),
                      "float32_ms": round(1e3 * med["float32"], 3),
                      "bfloat16_ms": round(1e3 * med["bfloat16"], 3),
                      "bf16_speedup": round(ratio, 3),
                      "load_avg_1min": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
