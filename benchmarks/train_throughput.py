"""Examples/s of the bare jitted train step against the whole training loop (on-device batch
gathering and augmentation, train metrics, evaluation, logging, checkpoint cadence), on
Fashion-MNIST with the small CNN, side by side in one process.

  python benchmarks/train_throughput.py [--data=../shared/data/fashion_mnist.npz] [--epochs=3]

The loop's rate is measured between the end of its first epoch and the end of its last (from
the `time` field of metrics.jsonl), so the one-off compilation is excluded from both figures.
Ends with one JSON line of the figures.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs import fashion_mnist_cnn  # noqa: E402
from datadiet.data import Subset, load_dataset  # noqa: E402
from datadiet.training import optim  # noqa: E402
from datadiet.training.loop import build_model, train  # noqa: E402
from datadiet.training.rundir import RunDir  # noqa: E402
from datadiet.training.state import create_state  # noqa: E402
from datadiet.training.step import make_batch_fn, make_train_step  # noqa: E402


def bare_step_rate(config, dataset, steps):
    tx = optim.make_optimizer(config.optim, 469, 469 * 15)
    graphdef, state = create_state(build_model(config, dataset), tx)
    train_step = make_train_step(graphdef, tx)
    b = config.train.batch_size
    batch, weights = make_batch_fn(dataset)(
        jnp.asarray(dataset.x_train), jnp.asarray(dataset.y_train), jnp.arange(b)[None],
        jnp.ones((1, b)), 0, jax.random.key(0), 0)
    state, out = train_step(state, batch, weights)  # compile
    jax.block_until_ready(out)
    start = time.perf_counter()
    for _ in range(steps):
        state, out = train_step(state, batch, weights)
    jax.block_until_ready((state, out))
    return steps * b / (time.perf_counter() - start)


def loop_rate(config, dataset, epochs):
    config.train.epochs = float(epochs)
    config.log.progress = False
    with tempfile.TemporaryDirectory() as workdir:
        run = RunDir(workdir, config)
        train(config, dataset, Subset.full(dataset.n_train), run)
        events = [e for e in run.metrics() if e["split"] == "train"]
    first, last = events[0], events[-1]
    return (last["step"] - first["step"]) * config.train.batch_size / (last["time"] - first["time"])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="../shared/data/fashion_mnist.npz")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    if not os.path.exists(args.data):
        sys.exit(f"{args.data} not found: pass --data=/path/to/fashion_mnist.npz")
    config = fashion_mnist_cnn.get_config()
    config.data.path = args.data
    dataset = load_dataset(config.data, config.seed)
    steps_per_epoch = -(-dataset.n_train // config.train.batch_size)
    step = bare_step_rate(config, dataset, steps_per_epoch)
    loop = loop_rate(config, dataset, args.epochs)
    print(f"bare jitted train step: {step:9.0f} examples/s")
    print(f"whole training loop:    {loop:9.0f} examples/s  (eval every epoch, checkpoint every "
          f"epoch, logging)")
    print(f"loop / step: {loop / step:.3f}")
    print(json.dumps({"benchmark": "train_throughput", "model": "small_cnn",
                      "batch_size": config.train.batch_size, "step_examples_per_s": round(step, 1),
                      "loop_examples_per_s": round(loop, 1), "loop_over_step": round(loop / step, 3),
                      "devices": jax.device_count()}))


if __name__ == "__main__":
    main()
