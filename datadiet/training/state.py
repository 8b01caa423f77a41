"""Train state as a plain pytree; the model graph and optimiser stay outside (static)."""
from typing import Any

import flax
import jax.numpy as jnp
from flax import nnx


@flax.struct.dataclass
class TrainState:
    step: Any
    params: Any
    batch_stats: Any
    opt_state: Any


def split_model(model):
    """(graphdef, params, batch_stats): the functional view used at every transform boundary."""
    return nnx.split(model, nnx.Param, nnx.BatchStat)


def create_state(model, tx):
    graphdef, params, batch_stats = split_model(model)
    state = TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats=batch_stats,
                       opt_state=tx.init(params))
    return graphdef, state


def apply_model(graphdef, params, batch_stats, x, train, mask=None):
    """Logits and the (possibly updated) BatchNorm statistics."""
    # copy=True: fresh Variables owned by the current trace, so BatchNorm may update them under
    # jax.grad/vmap (flax >= 0.11.2 defaults to copy=False, which raises TraceContextError).
    model = nnx.merge(graphdef, params, batch_stats, copy=True)
    logits = model(x, train=train, mask=mask)
    return logits, nnx.state(model, nnx.BatchStat)
