"""Lloyd's k-means on the device (jit, static shapes): k-means++ seeding (greedy, with
2 + log k candidates per centre as scikit-learn does), then a fixed number of Lloyd iterations
that stops early (by masking, shapes stay static) once the centres move less than `tol`."""
import functools

import jax
import jax.numpy as jnp
import numpy as np


def _sqdist(x, c):
    return jnp.maximum(jnp.sum(x * x, 1)[:, None] - 2.0 * x @ c.T + jnp.sum(c * c, 1)[None], 0.0)


def _plus_plus(key, x, k):
    n = x.shape[0]
    trials = 2 + int(np.log(k))
    key, sub = jax.random.split(key)
    first = x[jax.random.randint(sub, (), 0, n)]
    centres = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(first)
    closest = _sqdist(x, first[None])[:, 0]

    def body(i, carry):
        centres, closest, key = carry
        key, sub = jax.random.split(key)
        cand = jax.random.choice(sub, n, (trials,), p=closest / jnp.sum(closest))
        new = jnp.minimum(closest[None], _sqdist(x, x[cand]).T)  # [trials, n]
        best = jnp.argmin(jnp.sum(new, 1))  # the candidate lowering the potential most
        return centres.at[i].set(x[cand[best]]), new[best], key

    centres, _, _ = jax.lax.fori_loop(1, k, body, (centres, closest, key))
    return centres


@functools.partial(jax.jit, static_argnames=("k", "iters"))
def _kmeans(key, x, k, iters, tol):
    centres = _plus_plus(key, x, k)
    tol = tol * jnp.mean(jnp.var(x, 0))  # scikit-learn's relative tolerance

    def step(_, carry):
        centres, done = carry
        assign = jnp.argmin(_sqdist(x, centres), 1)
        onehot = jax.nn.one_hot(assign, k, dtype=x.dtype)
        counts = onehot.sum(0)
        new = jnp.where(counts[:, None] > 0, (onehot.T @ x) / jnp.maximum(counts, 1)[:, None],
                        centres)  # an empty cluster keeps its centre
        moved = jnp.sum((new - centres) ** 2)
        return jnp.where(done, centres, new), done | (moved <= tol)

    centres, _ = jax.lax.fori_loop(0, iters, step, (centres, jnp.array(False)))
    d = _sqdist(x, centres)
    return centres, jnp.argmin(d, 1), jnp.sum(jnp.min(d, 1))


def kmeans(x, k, *, seed=0, iters=100, tol=1e-4):
    """(centres [k, D], assignment [N], inertia) of Lloyd's k-means on the rows of x."""
    x = jnp.asarray(x, jnp.float32)
    if not 1 <= k <= x.shape[0]:
        raise ValueError(f"k={k} clusters must be in [1, N={x.shape[0]}]")
    c, a, inertia = _kmeans(jax.random.key(seed), x, k, iters, tol)
    return np.asarray(c), np.asarray(a), float(inertia)
