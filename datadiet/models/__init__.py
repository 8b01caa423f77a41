"""Model registry: `MODELS` maps a config's `model.name` to a constructor.

Every constructor has the signature `ctor(num_classes, input_shape, *, rngs, **options)` and
returns a Flax NNX module with
  * `model(x, train, mask=None) -> logits [B, num_classes]` (x float32 NHWC; `train=True` uses
    batch statistics and updates BatchNorm running averages, `train=False` uses the running
    averages; `mask` bool [B] keeps masked-out examples out of the batch statistics);
  * `model.features(x, train, mask=None) -> [B, F]` and `model.head` (the final `nnx.Linear`),
    `model(x, ...) == model.head(model.features(x, ...))`;
  * only `nnx.Param` and `nnx.BatchStat` variables (no dropout, no rng state at call time).

Inside a transform, rebuild the module with `nnx.merge(graphdef, params, batch_stats,
copy=True)` when `batch_stats` was not itself passed through that transform (e.g. it is a
non-differentiated argument of `jax.grad`): BatchNorm writes its running averages in place and
NNX refuses to mutate a Variable created at an outer trace level.

Options (`get_model(..., **options)`, from `config.model.kwargs`):
  resnet18, resnet50: width=64 (stem / first-stage channels)
  small_cnn: width=16 (first conv's channels; the second has 2*width), hidden=128
  mlp: hidden=(256, 256), batch_norm=False (also the tabular model)
  embedding_bag: vocab_size=2**14, dim=64, hidden=0 (text: token ids [L]; see text.py)
"""

from __future__ import annotations

import inspect
from typing import Sequence

from flax import nnx

from datadiet.models.resnet import resnet18, resnet50
from datadiet.models.small import mlp, small_cnn
from datadiet.models.text import embedding_bag

MODELS = {
    "resnet18": resnet18,
    "resnet50": resnet50,
    "small_cnn": small_cnn,
    "mlp": mlp,
    "embedding_bag": embedding_bag,
}


def model_options(name: str) -> dict:
    """The options `name` accepts and their defaults."""
    params = inspect.signature(_constructor(name)).parameters.values()
    return {p.name: p.default for p in params
            if p.kind == inspect.Parameter.KEYWORD_ONLY and p.name != "rngs"}


def _constructor(name: str):
    if name not in MODELS:
        raise ValueError(f"model.name={name!r} is not a known model; accepted names: "
                         f"{', '.join(sorted(MODELS))}")
    return MODELS[name]


def get_model(name: str, num_classes: int, input_shape: Sequence[int], seed: int, **kwargs):
    """Builds model `name` for `num_classes` classes and per-example HWC `input_shape`.

    `seed` initialises the parameters (`nnx.Rngs(seed)`); `kwargs` are the model's options
    (`config.model.kwargs`). An unknown name or option raises ValueError naming the field.
    """
    ctor = _constructor(name)
    accepted = model_options(name)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(
            f"model.kwargs.{unknown[0]}: unknown option(s) {unknown} for model.name={name!r}; "
            f"accepted options: {', '.join(sorted(accepted)) or '(none)'}")
    input_shape = tuple(int(d) for d in input_shape)
    if num_classes < 1:
        raise ValueError(f"num_classes={num_classes} must be >= 1")
    return ctor(int(num_classes), input_shape, rngs=nnx.Rngs(seed), **kwargs)
