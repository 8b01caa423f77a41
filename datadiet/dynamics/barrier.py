"""Linear mode connectivity: the error barrier between two networks (the children themselves
are spawned by datadiet/jobs/lmc.py).

    interpolate(tree1, tree2, a)                     a * tree1 + (1 - a) * tree2, leaf by leaf
    recompute_batch_stats(graphdef, params, batch_stats, dataset, ids) -> batch_stats
    error_on_subset(graphdef, params, batch_stats, dataset, ids) -> error in [0, 1]
    error_barrier(errors, alphas) -> (barrier, argmax alpha)
    barrier_between(child1, child2, graphdef, dataset, subset_ids, alphas=None, *,
                    recompute_bn=True) -> {"alphas", "errors", "barrier", "argmax_alpha"}

The barrier (DESIGN.md §2) is max_a [R_S(a w1 + (1-a) w2) - a R_S(w1) - (1-a) R_S(w2)] on a grid
of a that includes 0 and 1, R_S the error on the training examples S (eval mode, no
augmentation). BatchNorm running statistics of an interpolated network match neither child, so
by default they are recomputed on S at every a (`recompute_bn=False`: interpolate them too).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from datadiet.data import augment
from datadiet.data.pipeline import host_values
from datadiet.pergrad.chunks import check_chunk_size, iter_chunks
from datadiet.pergrad.full import param_path


def default_alphas(points=11):
    """`points` evenly spaced values of a in [0, 1], both endpoints included (exactly 0 and 1)."""
    if isinstance(points, bool) or not isinstance(points, (int, np.integer)) or points < 2:
        raise ValueError(f"points={points!r} must be an integer >= 2 (the endpoints)")
    return np.linspace(0.0, 1.0, points)


# ---------------------------------------------------------------------------- interpolation

@jax.jit
def _interpolate(tree1, tree2, a):
    # a * w1 + (1 - a) * w2 rather than w2 + a (w1 - w2): at a = 1 and a = 0 both products are
    # exact (x * 1, y * 0), so the endpoints are each child's own weights bit for bit.
    return jax.tree.map(lambda u, v: a.astype(u.dtype) * u + (1 - a).astype(u.dtype) * v,
                        tree1, tree2)


def interpolate(tree1, tree2, a):
    """a * tree1 + (1 - a) * tree2 leaf by leaf (a = 1: tree1, a = 0: tree2, exactly)."""
    if jax.tree.structure(tree1) != jax.tree.structure(tree2):
        raise ValueError("the two trees to interpolate have different structures")
    for u, v in zip(jax.tree.leaves(tree1), jax.tree.leaves(tree2)):
        if np.shape(u) != np.shape(v):
            raise ValueError(f"leaf shapes differ: {np.shape(u)} and {np.shape(v)}")
    if not np.isfinite(a):
        raise ValueError(f"a={a!r} must be a finite number")
    return _interpolate(tree1, tree2, jnp.float32(a))


# ----------------------------------------------------------------- BatchNorm recomputation

class _MomentRecorder:
    """On a private model copy: each BatchNorm call records, per example, the sums of (x - s)
    and (x - s)^2 over all axes but the feature axis (s = the layer's current running mean, a
    shift against cancellation; the host adds the sums up in float64) and how many positions
    they cover (H*W for a conv feature map, 1 for a dense layer)."""

    def __init__(self, model):
        self.sums, self.paths = {}, {}
        for path, module in list(nnx.iter_modules(model)):
            if isinstance(module, nnx.BatchNorm):
                self.paths[id(module)] = "/".join(map(str, path))
                module.__class__ = _recording_class(type(module))
                object.__setattr__(module, "_datadiet_moments", self)  # the copy only

    def record(self, module, x):
        key = self.paths[id(module)]
        if key in self.sums:
            raise ValueError(f"BatchNorm {key} is called more than once per forward: its "
                             "statistics cannot be recomputed layer by layer")
        if module.axis not in (-1, x.ndim - 1):
            raise ValueError(f"BatchNorm {key} normalises axis {module.axis}, not the last")
        d = x.astype(jnp.float32) - module.mean[...]
        axes = tuple(range(1, x.ndim - 1))
        positions = jnp.full(x.shape[:1], np.prod(x.shape[1:-1]), jnp.float32)
        self.sums[key] = (d.sum(axes), (d * d).sum(axes), positions)


@functools.cache
def _recording_class(base):
    class Recording(base):
        def __call__(self, x, *args, **kwargs):
            self._datadiet_moments.record(self, x)
            return super().__call__(x, *args, **kwargs)

    Recording.__name__ = Recording.__qualname__ = f"Recording{base.__name__}"
    return Recording


@functools.partial(jax.jit, static_argnums=0)
def _bn_input_sums(graphdef, mean, std, params, batch_stats, images, labels):
    """{layer: ([B, F], [B, F], [B])}: every BatchNorm input's per-example shifted sums and
    positions, the model in eval mode (`labels` unused: `iter_chunks` passes them)."""
    del labels
    model = nnx.merge(graphdef, params, batch_stats, copy=True)
    recorder = _MomentRecorder(model)
    model(augment.normalize(images, mean, std), train=False)
    return recorder.sums


def recompute_batch_stats(graphdef, params, batch_stats, dataset, ids, *, chunk_size=256):
    """BatchNorm running statistics set to the exact mean and (biased) variance of each layer's
    input over the training examples `ids` (normalised, no augmentation).

    Exact, in chunks: layer k's input depends on the statistics of the BatchNorm layers before
    it, so a chunked train-mode forward (each chunk normalised by its own batch statistics)
    would not give the subset's statistics. Instead each pass runs the model in eval mode over
    all of `ids` and sets every layer's statistics from its input moments under the previous
    pass's statistics. After pass p every layer with fewer than p BatchNorm layers upstream is
    exact, so as many passes as there are BatchNorm layers make all of them exact. These are the
    statistics one train-mode forward of the whole subset as a single batch normalises with, so
    eval mode afterwards reproduces that full-batch forward, at bounded memory. Cost: that many
    eval-mode passes over `ids` (3 for small_cnn).
    """
    ids = _check_ids(ids, dataset.n_train)
    check_chunk_size(chunk_size)
    x, y = dataset.x_train[ids], dataset.y_train[ids]
    fn = functools.partial(_bn_input_sums, graphdef, *_norm_stats(dataset))
    layers = sorted({key.rsplit("/", 1)[0] for key in _flat(batch_stats)})
    for _ in range(len(layers)):
        totals = {}
        for _, _, sums in iter_chunks(fn, (params, batch_stats), x, y, chunk_size):
            for key, arrays in sums.items():
                new = [host_values(a).astype(np.float64).sum(0) for a in arrays]
                totals[key] = [t + a for t, a in zip(totals.get(key, (0.0,) * 3), new)]
        if sorted(totals) != layers:
            raise ValueError(f"the BatchNorm layers called, {sorted(totals)}, are not those "
                             f"with statistics in batch_stats, {layers}")
        flat, stats = _flat(batch_stats), {}
        for key, (s1, s2, count) in totals.items():
            d_mean = s1 / count
            stats[key + "/mean"] = np.asarray(flat[key + "/mean"], np.float64) + d_mean
            stats[key + "/var"] = np.maximum(s2 / count - d_mean ** 2, 0.0)
        batch_stats = jax.tree_util.tree_map_with_path(
            lambda kp, leaf: jnp.asarray(stats[_key(kp)], leaf.dtype), batch_stats)
    return batch_stats


def _key(keypath):
    return "/".join(map(str, param_path(keypath)))


def _flat(tree):
    """{"module/path/name": leaf} of an nnx.State."""
    return {_key(kp): leaf for kp, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _norm_stats(dataset):
    return jnp.asarray(dataset.mean, jnp.float32), jnp.asarray(dataset.std, jnp.float32)


def _check_ids(ids, n_train, name="ids"):
    ids = np.asarray(ids)
    if ids.ndim != 1 or len(ids) == 0 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{name} must be a non-empty 1-D integer array of training example ids")
    if ids.min() < 0 or ids.max() >= n_train:
        raise ValueError(f"{name} must lie in [0, {n_train}), got {ids.min()}..{ids.max()}")
    return ids


# ---------------------------------------------------------------------------------- errors

@functools.partial(jax.jit, static_argnums=0)
def _correct(graphdef, mean, std, params, batch_stats, images, labels):
    model = nnx.merge(graphdef, params, batch_stats, copy=True)
    logits = model(augment.normalize(images, mean, std), train=False)
    return jnp.argmax(logits, -1) == labels


def error_on_subset(graphdef, params, batch_stats, dataset, ids, *, chunk_size=256):
    """Fraction of the training examples `ids` misclassified (eval mode, no augmentation)."""
    ids = _check_ids(ids, dataset.n_train)
    check_chunk_size(chunk_size)
    fn = functools.partial(_correct, graphdef, *_norm_stats(dataset))
    correct = sum(int(np.sum(host_values(c))) for _, _, c in iter_chunks(
        fn, (params, batch_stats), dataset.x_train[ids], dataset.y_train[ids], chunk_size))
    return 1.0 - correct / len(ids)


def error_barrier(errors, alphas):
    """(barrier, argmax alpha) of max_a [R(a) - a R(1) - (1 - a) R(0)], errors[i] = R(alphas[i]).

    R(1) is the error of w1 and R(0) that of w2; `alphas` must include both endpoints, so the
    barrier is >= 0 (0 at the endpoints). The first maximiser is returned on ties.
    """
    errors, alphas = np.asarray(errors, np.float64), np.asarray(alphas, np.float64)
    if errors.ndim != 1 or errors.shape != alphas.shape:
        raise ValueError(f"errors {errors.shape} and alphas {alphas.shape} must be 1-D arrays "
                         "of one length")
    _check_alphas(alphas)
    r1, r0 = errors[alphas == 1.0][0], errors[alphas == 0.0][0]
    # r0 + a (r1 - r0) is exactly r0 when the two endpoint errors are equal.
    gaps = errors - (r0 + alphas * (r1 - r0))
    i = int(np.argmax(gaps))
    return float(gaps[i]), float(alphas[i])


def _check_alphas(alphas):
    alphas = np.asarray(alphas, np.float64)
    if (alphas.ndim != 1 or not np.all(np.isfinite(alphas)) or not np.any(alphas == 0.0)
            or not np.any(alphas == 1.0) or alphas.min() < 0 or alphas.max() > 1):
        raise ValueError(f"alphas={alphas.tolist()} must be a 1-D grid in [0, 1] including "
                         "both endpoints 0.0 and 1.0 (e.g. default_alphas(11))")
    return alphas


def barrier_between(child1, child2, graphdef, dataset, subset_ids, alphas=None, *,
                    recompute_bn=True, chunk_size=256):
    """Errors on the training examples `subset_ids` along a w1 + (1 - a) w2, and the barrier.

    child1, child2: states with `.params` and `.batch_stats` (e.g. TrainState; w1, w2).
    alphas: the grid (default `default_alphas(11)`), endpoints included.
    recompute_bn: recompute the BatchNorm statistics on `subset_ids` at every a (also at the
    endpoints, so all points are treated alike); False: interpolate the statistics too.
    Returns {"alphas", "errors" (lists), "barrier", "argmax_alpha"}.
    """
    alphas = _check_alphas(default_alphas() if alphas is None else alphas)
    subset_ids = _check_ids(subset_ids, dataset.n_train, "subset_ids")
    if not isinstance(recompute_bn, bool):
        raise ValueError(f"recompute_bn={recompute_bn!r} must be True or False")
    errors = []
    for a in alphas:
        params = interpolate(child1.params, child2.params, a)
        stats = interpolate(child1.batch_stats, child2.batch_stats, a)
        if recompute_bn:
            stats = recompute_batch_stats(graphdef, params, stats, dataset, subset_ids,
                                          chunk_size=chunk_size)
        errors.append(error_on_subset(graphdef, params, stats, dataset, subset_ids,
                                      chunk_size=chunk_size))
    barrier, argmax = error_barrier(errors, alphas)
    return {"alphas": alphas.tolist(), "errors": errors, "barrier": barrier,
            "argmax_alpha": argmax}


# ------------------------------------------------------------------------- spawning children
