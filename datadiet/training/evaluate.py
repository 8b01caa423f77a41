"""Evaluation over fixed-size padded chunks: the one chunking helper, and the test-set evaluator.

Every chunk has one shape (the last one padded with zeros, its padding masked or trimmed), so
each jitted function compiles once per (model, chunk size); the chunk length is a multiple of
the device count so its rows split evenly over the "data" mesh.
"""
import jax.numpy as jnp
import numpy as np

from datadiet import parallel
from datadiet.data import pipeline
from datadiet.training.step import make_eval_step


def chunk_length(n, chunk_size, multiple=1):
    """min(chunk_size, n) (at least 1) rounded up to a multiple of `multiple`."""
    size = max(1, min(int(chunk_size), int(n)))
    return -(-size // multiple) * multiple


def pad_rows(a, length):
    """`a` with zero rows appended up to `length` rows (numpy stays numpy, jax stays jax)."""
    extra = length - a.shape[0]
    if extra == 0:
        return a
    xp = np if isinstance(a, np.ndarray) else jnp
    return xp.concatenate([a, xp.zeros((extra,) + a.shape[1:], a.dtype)])


def make_evaluator(graphdef, dataset, eval_batch_size, mesh):
    """evaluate(state) -> test {"loss", "accuracy"} over the whole test set (one compile)."""
    eval_step = make_eval_step(graphdef, dataset)
    n = len(dataset.y_test)
    eb = chunk_length(n, eval_batch_size, mesh.size)
    chunks = -(-n // eb)
    if dataset.pipeline == "host":  # streamed from the host, one chunk at a time
        def evaluate_streamed(state):
            sums = [eval_step(state.params, state.batch_stats, b["x"], b["y"], b["valid"])
                    for _, _, b in pipeline.source_chunks(dataset.x_test, dataset.y_test, eb, mesh)]
            loss, correct = (float(sum(s[j] for s in sums)) for j in range(2))
            return {"loss": loss / n, "accuracy": correct / n}

        return evaluate_streamed
    x, y = pad_rows(dataset.x_test, chunks * eb), pad_rows(dataset.y_test, chunks * eb)
    valid = pad_rows(np.ones(n, np.float32), chunks * eb)
    x, y, valid = (parallel.put_global(a.reshape((chunks, eb) + a.shape[1:]), mesh, batch_axis=1)
                   for a in (x, y, valid))

    def evaluate(state):
        sums = [eval_step(state.params, state.batch_stats, x[i], y[i], valid[i])
                for i in range(chunks)]
        loss, correct = (float(sum(s[j] for s in sums)) for j in range(2))
        return {"loss": loss / n, "accuracy": correct / n}

    return evaluate
