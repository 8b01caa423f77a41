"""Divergence: a non-finite train loss or parameter norm stops the run at the end of the block
it happened in, naming its first step, before anything of it is logged or checkpointed.

Each step returns two flags (loss finite, parameter norm finite) beside its metrics; the loops
fetch them with the block's metrics, which they fetch anyway: no host round trip per step.
"""
import jax.numpy as jnp
import numpy as np
import optax

QUANTITIES = ("train loss", "parameter norm")


class Diverged(FloatingPointError):
    pass


def finite_flags(loss, params):
    """[2] bool on device: the step's loss and its updated parameters' global norm are finite."""
    return jnp.stack([jnp.isfinite(loss), jnp.isfinite(optax.tree.norm(params))])


def check_block(flags, first_step, epoch):
    """flags: [steps, 2] of the block's steps (finite_flags). Raises Diverged naming the first
    step (counted as metrics.jsonl counts them: the number of steps done after it) and the
    first non-finite quantity."""
    flags = np.asarray(flags)
    bad = ~flags.all(axis=1)
    if not bad.any():
        return
    i = int(np.argmax(bad))
    quantity = QUANTITIES[int(np.argmin(flags[i]))]
    raise Diverged(f"training diverged at step {first_step + i + 1} (epoch {epoch + 1}): the "
                   f"{quantity} is not finite; nothing of this epoch was logged or checkpointed. "
                   "Lower optim.lr, or check the inputs")
