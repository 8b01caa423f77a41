"""The host input pipeline (data.pipeline = "host") against the train step, side by side in one
process, and the device memory the training set occupies under each pipeline.

  python benchmarks/input_pipeline.py [--data=../shared/data/fashion_mnist.npz] [--steps=200]
      [--sizes=60000,1000000]

1. Examples/s of the host pipeline alone (Grain reading an epoch's batches by id from the
   host arrays and putting them on the devices) against the bare jitted train step (small CNN,
   Fashion-MNIST, batch 128), and of whole training steps fed by either pipeline.
   Target: host pipeline >= 1.5x the train step's examples/s (it then keeps the step busy).
2. Device bytes held while training (the trainer and the test-set evaluator built, a few steps
   run; sampled by jax.live_arrays() after every step, minus those held before) for a synthetic
   memory-mapped npy set of N = 60,000 and N = 1,000,000 28x28 images, under each pipeline.
   Target: under "host", the figure at N = 1M within 1.1x of that at N = 60k.
3. bf16 vs float32 train-step time (model.dtype; benchmarks/mixed_precision.py, interleaved
   repetitions). CPU figures are only informative: most CPUs lack fast bf16 arithmetic.

Ends with one JSON line of the figures.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.mixed_precision import measure_step_times  # noqa: E402
from configs import fashion_mnist_cnn  # noqa: E402
from datadiet import parallel  # noqa: E402
from datadiet.data import Subset, load_dataset, pipeline  # noqa: E402
from datadiet.training import optim  # noqa: E402
from datadiet.training.evaluate import make_evaluator  # noqa: E402
from datadiet.training.loop import EpochTrainer, FixedSelector, build_model  # noqa: E402
from datadiet.training.rundir import RunDir  # noqa: E402
from datadiet.training.state import create_state  # noqa: E402
from datadiet.training.step import make_batch_fn, make_gathered_batch_fn, make_train_step  # noqa: E402


def setup(config, dataset):
    tx = optim.make_optimizer(config.optim, 469, 469 * 15)
    graphdef, state = create_state(build_model(config, dataset), tx)
    return graphdef, tx, parallel.replicate(state, parallel.data_mesh())


def rate(fn, steps, batch_size):
    """examples/s of `steps` calls of fn(s) (the first call, compiling, untimed)."""
    jax.block_until_ready(fn(0))
    start = time.perf_counter()
    out = None
    for s in range(1, steps + 1):
        out = fn(s)
    jax.block_until_ready(out)
    return steps * batch_size / (time.perf_counter() - start)


def throughput(config, dataset, steps):
    """{name: examples/s}: host pipeline alone, bare train step, steps fed by either path."""
    mesh, b = parallel.data_mesh(), config.train.batch_size
    ids, w = Subset.full(dataset.n_train).epoch_batches(b, config.seed, 0)
    ids, w = ids[:steps + 1], w[:steps + 1]
    graphdef, tx, state = setup(config, dataset)
    train_step, key = make_train_step(graphdef, tx), jax.random.key(0)
    out = {}

    batches = pipeline.epoch_batches(dataset.x_train, dataset.y_train, ids, w, mesh)
    out["host_pipeline"] = rate(lambda s: next(batches), steps, b)

    gathered = make_gathered_batch_fn(dataset)
    first = next(pipeline.epoch_batches(dataset.x_train, dataset.y_train, ids, w, mesh))
    batch, weights = gathered(first["x"], first["y"], first["w"], key, 0)
    holder = {"state": state}

    def bare(s):
        holder["state"], o = train_step(holder["state"], batch, weights)
        return o["loss"]
    out["train_step"] = rate(bare, steps, b)

    def host_step(s, it=pipeline.epoch_batches(dataset.x_train, dataset.y_train, ids, w, mesh)):
        nb = next(it)
        holder["state"], o = train_step(holder["state"], *gathered(nb["x"], nb["y"], nb["w"],
                                                                   key, s))
        return o["loss"]
    out["host_fed_step"] = rate(host_step, steps, b)

    images, labels = parallel.put_global(dataset.x_train, mesh), parallel.put_global(
        dataset.y_train, mesh)
    ids_dev = parallel.put_global(ids, mesh, batch_axis=1)
    w_dev = parallel.put_global(w, mesh, batch_axis=1)
    make_batch = make_batch_fn(dataset)

    def device_step(s):
        holder["state"], o = train_step(holder["state"], *make_batch(images, labels, ids_dev,
                                                                     w_dev, s, key, s))
        return o["loss"]
    out["device_fed_step"] = rate(device_step, steps, b)
    return out


def synthetic_npy_dir(path, n, seed=0):
    """x_train [n, 28, 28] uint8 written block by block into a memory map (no n-sized copy)."""
    os.makedirs(path, exist_ok=True)
    rng = np.random.default_rng(seed)
    x = np.lib.format.open_memmap(os.path.join(path, "x_train.npy"), "w+", np.uint8, (n, 28, 28))
    for start in range(0, n, 100_000):
        stop = min(start + 100_000, n)
        x[start:stop] = rng.integers(0, 256, (stop - start, 28, 28), np.uint8)
    x.flush()
    del x
    np.save(os.path.join(path, "y_train.npy"), rng.integers(0, 10, n))
    np.save(os.path.join(path, "x_test.npy"), rng.integers(0, 256, (10_000, 28, 28), np.uint8))
    np.save(os.path.join(path, "y_test.npy"), rng.integers(0, 10, 10_000))


def live_bytes():
    return sum(a.nbytes for a in jax.live_arrays())


def device_bytes(config, path, pipe, steps=8):
    """Peak device bytes beyond the model state while the trainer trains a few steps (and the
    evaluator is built): the dataset's footprint."""
    config = config.copy_and_resolve_references()
    config.data.source, config.data.path, config.data.pipeline = "npy_dir", path, pipe
    dataset = load_dataset(config.data, config.seed)
    graphdef, tx, state = setup(config, dataset)
    mesh = parallel.data_mesh()
    jax.block_until_ready(state)
    base, peak = live_bytes(), [0]

    def on_step(*args):
        jax.block_until_ready(args[-1])
        peak[0] = max(peak[0], live_bytes())
    with tempfile.TemporaryDirectory() as workdir:
        trainer = EpochTrainer(config, dataset, FixedSelector(Subset.full(dataset.n_train)),
                               graphdef, tx, state, mesh, RunDir(workdir, config), on_step)
        evaluate = make_evaluator(graphdef, dataset, config.train.eval_batch_size, mesh)
        peak[0] = max(peak[0], live_bytes())
        trainer.train_block(0, 0, steps, time.time(), lambda n: None)
        evaluate(trainer.state)
        del trainer, evaluate
    return peak[0] - base


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="../shared/data/fashion_mnist.npz")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--sizes", default="60000,1000000")
    args = parser.parse_args()
    if not os.path.exists(args.data):
        sys.exit(f"{args.data} not found: pass --data=/path/to/fashion_mnist.npz")
    config = fashion_mnist_cnn.get_config()
    config.data.path, config.data.pipeline = args.data, "host"
    dataset = load_dataset(config.data, config.seed)
    rates = throughput(config, dataset, args.steps)
    for name, value in rates.items():
        print(f"{name:16s} {value:9.0f} examples/s")
    ratio = rates["host_pipeline"] / rates["train_step"]
    print(f"host pipeline / train step: {ratio:.2f} (target >= 1.5)")

    memory = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            path = os.path.join(tmp, f"n{n}")
            synthetic_npy_dir(path, n)
            for pipe in ("device", "host"):
                memory[f"{pipe}_{n}"] = device_bytes(config, path, pipe)
                print(f"N={n:8d} {pipe:6s}: {memory[f'{pipe}_{n}'] / 2**20:9.2f} MiB on device")
    sizes = sorted(int(s) for s in args.sizes.split(","))
    growth = memory[f"host_{sizes[-1]}"] / memory[f"host_{sizes[0]}"]
    print(f"host path device bytes N={sizes[-1]} / N={sizes[0]}: {growth:.3f} (target <= 1.1)")
    figures = {"benchmark": "input_pipeline", "model": "small_cnn",
               "batch_size": config.train.batch_size, "devices": jax.device_count(),
               **{f"{k}_examples_per_s": round(v, 1) for k, v in rates.items()},
               "pipeline_over_step": round(ratio, 3),
               **{f"device_bytes_{k}": v for k, v in memory.items()},
               "host_device_bytes_growth": round(growth, 4)}
    times = measure_step_times(("float32", "bfloat16"), model_kwargs=dict(config.model.kwargs),
                               batch_size=config.train.batch_size)
    f32, bf16 = (statistics.median(times[d]) for d in ("float32", "bfloat16"))
    print(f"train step: float32 {1e3 * f32:.1f} ms, bfloat16 {1e3 * bf16:.1f} ms, bf16 speed-up "
          f"{f32 / bf16:.3f}x (CPU: only informative)")
    figures.update(float32_step_ms=round(1e3 * f32, 3), bfloat16_step_ms=round(1e3 * bf16, 3),
                   bf16_speedup=round(f32 / bf16, 3))
    print(json.dumps(figures))


if __name__ == "__main__":
    jnp.zeros(())  # backend up before timing
    main()
