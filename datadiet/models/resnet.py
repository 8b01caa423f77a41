"""CIFAR ResNet-18 / ResNet-50 (kuangliu/pytorch-cifar layout) in Flax NNX.

Layout: 3x3 stride-1 conv stem (64 channels) + BN + ReLU, no max-pool; four stages of
BasicBlock [2, 2, 2, 2] (ResNet-18) or Bottleneck [3, 4, 6, 3] with expansion 4 (ResNet-50),
widths 64/128/256/512, strides 1/2/2/2; projection shortcut (1x1 conv + BN) whenever the shape
changes; global average pool; linear head. Convolutions have no bias.

Parameter counts with 10 classes (BN scale and bias counted, running statistics not):
ResNet-18 11,173,962 and ResNet-50 23,520,842, the numbers the PyTorch reference reports.

Conventions shared by every model in `datadiet.models` (the helpers live here and `small.py`
imports them):
  * `model(x, train, mask=None) -> float32 logits [B, num_classes]`, x float32 NHWC;
  * `model.features(x, train, mask=None) -> [B, F]` (compute dtype) and `model.head` (an
    `nnx.Linear`, float32 output) with `model(x, ...) == model.head(model.features(x, ...))`;
  * `dtype`: the compute dtype of every layer (the input is cast to it on entry); parameters and
    BatchNorm statistics are float32 (`param_dtype`);
  * only `nnx.Param` and `nnx.BatchStat` variables, no rng state at call time, so
    `nnx.split(model, nnx.Param, nnx.BatchStat)` / `nnx.merge` work inside `jax.jit`.

Initialisation (PyTorch-like): convolutions use Kaiming-normal with fan_out (torchvision's
ResNet init, variance 2 / (k*k*out)); Linear layers use PyTorch's default, weight and bias
uniform in +-1/sqrt(fan_in); BatchNorm scale 1, bias 0. BatchNorm uses PyTorch's defaults:
momentum 0.1 (Flax `momentum=0.9`, the weight kept on the old running value) and eps 1e-5.
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

# Kaiming-normal, fan_out, ReLU gain (torchvision ResNet init). Untruncated normal.
conv_init = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")
# PyTorch nn.Linear default: kaiming_uniform(a=sqrt(5)) == U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
linear_kernel_init = nnx.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def _uniform_bias_init(fan_in: int):
    bound = 1.0 / math.sqrt(fan_in)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class BatchNorm(nnx.BatchNorm):
    """`nnx.BatchNorm` called as `bn(x, train, mask)`, with PyTorch's momentum and epsilon.

    `train=True` normalises with batch statistics and updates the running averages;
    `train=False` uses the running averages. `mask` (bool [B], optional) excludes examples from
    the batch statistics: an example with mask False has no influence on the others' outputs or
    gradients. It is broadcast to x's shape (the form `nnx.BatchNorm(mask=...)` documents). At
    least one example per batch must be masked in, otherwise the statistics are NaN.
    """

    def __init__(self, num_features: int, *, dtype=jnp.float32, rngs: nnx.Rngs):
        # Flax reduces the batch statistics in float32 whatever `dtype` (the output's dtype).
        super().__init__(num_features, momentum=0.9, epsilon=1e-5, dtype=dtype,
                         param_dtype=jnp.float32, rngs=rngs)

    def __call__(self, x, train: bool, mask=None):
        if mask is not None and train:
            mask = jnp.asarray(mask).astype(bool)
            mask = jnp.broadcast_to(mask.reshape(mask.shape + (1,) * (x.ndim - 1)), x.shape)
        else:
            mask = None
        return super().__call__(x, use_running_average=not train, mask=mask)


def conv(in_features: int, out_features: int, kernel: int, stride: int, *, dtype=jnp.float32,
         rngs: nnx.Rngs):
    """Bias-free conv with PyTorch's symmetric padding (kernel // 2 on each side)."""
    pad = kernel // 2
    return nnx.Conv(
        in_features,
        out_features,
        kernel_size=(kernel, kernel),
        strides=(stride, stride),
        padding=((pad, pad), (pad, pad)),
        use_bias=False,
        kernel_init=conv_init,
        dtype=dtype,
        param_dtype=jnp.float32,
        rngs=rngs,
    )


def linear(in_features: int, out_features: int, *, use_bias: bool = True, dtype=jnp.float32,
           preferred_element_type=None, rngs: nnx.Rngs):
    """nn.Linear with PyTorch's default initialisation."""
    return nnx.Linear(
        in_features,
        out_features,
        use_bias=use_bias,
        kernel_init=linear_kernel_init,
        bias_init=_uniform_bias_init(in_features),
        dtype=dtype,
        param_dtype=jnp.float32,
        preferred_element_type=preferred_element_type,
        rngs=rngs,
    )


def head(in_features: int, num_classes: int, *, dtype=jnp.float32, rngs: nnx.Rngs):
    """The classifier: a `linear` computing in `dtype` that accumulates and returns float32
    logits (float32 models: the same computation as `linear`)."""
    return linear(in_features, num_classes, dtype=dtype, preferred_element_type=jnp.float32,
                  rngs=rngs)


class BasicBlock(nnx.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int, *, dtype=jnp.float32,
                 rngs: nnx.Rngs):
        out = planes * self.expansion
        self.conv1 = conv(in_planes, planes, 3, stride, dtype=dtype, rngs=rngs)
        self.bn1 = BatchNorm(planes, dtype=dtype, rngs=rngs)
        self.conv2 = conv(planes, out, 3, 1, dtype=dtype, rngs=rngs)
        self.bn2 = BatchNorm(out, dtype=dtype, rngs=rngs)
        if stride != 1 or in_planes != out:
            self.shortcut_conv = conv(in_planes, out, 1, stride, dtype=dtype, rngs=rngs)
            self.shortcut_bn = BatchNorm(out, dtype=dtype, rngs=rngs)
        else:
            self.shortcut_conv = None
            self.shortcut_bn = None

    def _shortcut(self, x, train, mask):
        if self.shortcut_conv is None:
            return x
        return self.shortcut_bn(self.shortcut_conv(x), train, mask)

    def __call__(self, x, train: bool, mask=None):
        y = jax.nn.relu(self.bn1(self.conv1(x), train, mask))
        y = self.bn2(self.conv2(y), train, mask)
        return jax.nn.relu(y + self._shortcut(x, train, mask))


class Bottleneck(BasicBlock):
    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int, *, dtype=jnp.float32,
                 rngs: nnx.Rngs):
        out = planes * self.expansion
        self.conv1 = conv(in_planes, planes, 1, 1, dtype=dtype, rngs=rngs)
        self.bn1 = BatchNorm(planes, dtype=dtype, rngs=rngs)
        # stride on the 3x3, as kuangliu
        self.conv2 = conv(planes, planes, 3, stride, dtype=dtype, rngs=rngs)
        self.bn2 = BatchNorm(planes, dtype=dtype, rngs=rngs)
        self.conv3 = conv(planes, out, 1, 1, dtype=dtype, rngs=rngs)
        self.bn3 = BatchNorm(out, dtype=dtype, rngs=rngs)
        if stride != 1 or in_planes != out:
            self.shortcut_conv = conv(in_planes, out, 1, stride, dtype=dtype, rngs=rngs)
            self.shortcut_bn = BatchNorm(out, dtype=dtype, rngs=rngs)
        else:
            self.shortcut_conv = None
            self.shortcut_bn = None

    def __call__(self, x, train: bool, mask=None):
        y = jax.nn.relu(self.bn1(self.conv1(x), train, mask))
        y = jax.nn.relu(self.bn2(self.conv2(y), train, mask))
        y = self.bn3(self.conv3(y), train, mask)
        return jax.nn.relu(y + self._shortcut(x, train, mask))


class ResNet(nnx.Module):
    """CIFAR ResNet. `width` is the stem / first-stage width (64 in the standard model)."""

    def __init__(
        self,
        block: type[BasicBlock],
        num_blocks: Sequence[int],
        num_classes: int,
        in_channels: int,
        *,
        width: int = 64,
        dtype=jnp.float32,
        rngs: nnx.Rngs,
    ):
        self.dtype = dtype
        self.stem_conv = conv(in_channels, width, 3, 1, dtype=dtype, rngs=rngs)
        self.stem_bn = BatchNorm(width, dtype=dtype, rngs=rngs)
        blocks = []
        in_planes = width
        for stage, n in enumerate(num_blocks):
            planes = width * 2**stage
            for i in range(n):
                stride = 2 if (stage > 0 and i == 0) else 1
                blocks.append(block(in_planes, planes, stride, dtype=dtype, rngs=rngs))
                in_planes = planes * block.expansion
        self.blocks = nnx.List(blocks)
        self.num_features = in_planes
        self.head = head(in_planes, num_classes, dtype=dtype, rngs=rngs)

    def features(self, x, train: bool, mask=None):
        x = x.astype(self.dtype)
        x = jax.nn.relu(self.stem_bn(self.stem_conv(x), train, mask))
        for blk in self.blocks:
            x = blk(x, train, mask)
        return jnp.mean(x, axis=(1, 2))

    def __call__(self, x, train: bool, mask=None):
        return self.head(self.features(x, train, mask))


def resnet18(num_classes: int, input_shape: Sequence[int], *, width: int = 64, dtype=jnp.float32,
             rngs: nnx.Rngs):
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes, input_shape[-1], width=width,
                  dtype=dtype, rngs=rngs)


def resnet50(num_classes: int, input_shape: Sequence[int], *, width: int = 64, dtype=jnp.float32,
             rngs: nnx.Rngs):
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes, input_shape[-1], width=width,
                  dtype=dtype, rngs=rngs)
