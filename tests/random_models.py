"""Models with host-drawn random parameters, shared by the per-example-gradient and NTK tests."""
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


def random_model(make, seed=0):
    """(graphdef, params, batch_stats) of `make()` with host-drawn random values: He-scaled
    kernels, and non-trivial BatchNorm (random running statistics, scales and biases). No eager
    XLA init (each eager op compiles once: seconds per model on these shared cores)."""
    graphdef, params, batch_stats = nnx.split(nnx.eval_shape(make), nnx.Param, nnx.BatchStat)
    rng = np.random.default_rng(seed)

    def draw(keypath, leaf):
        name = [k.key for k in keypath if isinstance(k, jax.tree_util.DictKey)][-1]
        noise = rng.standard_normal(leaf.shape).astype(np.float32)
        if name == "kernel":
            value = noise * np.sqrt(2.0 / max(1, int(np.prod(leaf.shape[:-1]))))
        elif name in ("scale", "var"):
            value = np.exp(0.2 * noise)
        else:  # bias, mean, bare parameters
            value = 0.2 * noise
        return jnp.asarray(value.astype(np.float32))

    params = jax.tree_util.tree_map_with_path(draw, params)
    batch_stats = jax.tree_util.tree_map_with_path(draw, batch_stats)
    return graphdef, params, batch_stats
