"""Model registry: `MODELS` maps a config's `model.name` to a constructor.

Every constructor has the signature `ctor(num_classes, input_shape, *, dtype, rngs, **options)`
and returns a Flax NNX module with
  * `model(x, train, mask=None) -> float32 logits [B, num_classes]` (x float32 NHWC; `train=True` uses
    batch statistics and updates BatchNorm running averages, `train=False` uses the running
    averages; `mask` bool [B] keeps masked-out examples out of the batch statistics);
  * `model.features(x, train, mask=None) -> [B, F]` and `model.head` (the final `nnx.Linear`),
    `model(x, ...) == model.head(model.features(x, ...))`;
  * only `nnx.Param` and `nnx.BatchStat` variables (no dropout, no rng state at call time).

Mixed precision (`dtype`, from `config.model.dtype`): the layers compute in `dtype` (float32 or
bfloat16; the model casts its input on entry) while parameters and BatchNorm statistics are
float32 (`param_dtype`; BatchNorm reduces its batch statistics in float32). `features` returns
the compute dtype; the head takes it and accumulates and returns float32 logits, so losses,
metrics and scores downstream are float32 whatever the dtype. Why not bf16 logits cast up:
rounding a logit of 10 to bf16 moves it by up to 0.03, which swamps softmax(z) - onehot(y) of
confident examples (trial, small CNN after 2 Fashion-MNIST epochs: GraNd's 90th-percentile
per-example difference to float32 was 26% with bf16 logits, 2.2% with float32 ones).

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

import jax.numpy as jnp
from flax import nnx

from datadiet.models.config import check_dtype
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
            if p.kind == inspect.Parameter.KEYWORD_ONLY and p.name not in ("rngs", "dtype")}


def _constructor(name: str):
    if name not in MODELS:
        raise ValueError(f"model.name={name!r} is not a known model; accepted names: "
                         f"{', '.join(sorted(MODELS))}")
    return MODELS[name]


def get_model(name: str, num_classes: int, input_shape: Sequence[int], seed: int, *,
              dtype: str = "float32", **kwargs):
    """Builds model `name` for `num_classes` classes and per-example HWC `input_shape`.

    `seed` initialises the parameters (`nnx.Rngs(seed)`); `dtype` is the compute dtype
    (`config.model.dtype`, see above); `kwargs` are the model's options (`config.model.kwargs`).
    An unknown name, option or dtype raises ValueError naming the field.
    """
    ctor = _constructor(name)
    check_dtype(dtype)
    accepted = model_options(name)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(
            f"model.kwargs.{unknown[0]}: unknown option(s) {unknown} for model.name={name!r}; "
            f"accepted options: {', '.join(sorted(accepted)) or '(none)'}")
    input_shape = tuple(int(d) for d in input_shape)
    if num_classes < 1:
        raise ValueError(f"num_classes={num_classes} must be >= 1")
    return ctor(int(num_classes), input_shape, dtype=jnp.dtype(dtype), rngs=nnx.Rngs(seed),
                **kwargs)
