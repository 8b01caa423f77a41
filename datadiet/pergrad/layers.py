"""Per-example gradients and their squared norms, one layer at a time, from the layer's input `a`
and output gradient `d` (see `taps.py`); row i of every result is example i's.

Linear on [B, F] inputs: grad W_i = a_i d_i^T, so ||grad W_i||^2 = ||a_i||^2 ||d_i||^2 and
grad b_i = d_i (Goodfellow 2015): nothing of size F_in x F_out per example.

Conv: with U_i [T, K] the input patches of example i (T output positions, K = prod(kernel) * C_in)
and D_i [T, C_out] its output gradients, grad W_i = U_i^T D_i. Two ways to get its norm:
  * "materialize": form U_i^T D_i ([B, K, C_out], a batched GEMM with the FLOPs of the layer's
    batch weight gradient) and sum its squares;
  * "ghost": ||U_i^T D_i||_F^2 = <U_i U_i^T, D_i D_i^T>_F (two [B, T, T] Gram matrices), cheap
    where the feature map is small.
  "auto" picks, per layer, the one with fewer FLOPs: ghost when T (K + C_out) < K C_out (in a
  CIFAR ResNet-18 the 32x32 and 16x16 stages materialise, the 8x8 and 4x4 stages use ghost norms).
  A Linear applied to [B, ..., F] inputs is the same problem with 1x1 "patches".
BatchNorm (eval mode, y = xhat * scale + bias per channel): grad scale_i = sum over positions of
d_i * xhat_i and grad bias_i = sum of d_i; `taps.py` records xhat as the layer's input.

Mixed precision: `a` and `d` arrive in the model's compute dtype (bfloat16 activations and
output gradients under `model.dtype="bfloat16"`); every product here accumulates in float32
(`preferred_element_type`) and every sum of squares is taken in float32, so the results are
float32 whatever the compute dtype (with float32 inputs these are the plain float32 ops).
"""
from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp

CONV_STRATEGIES = ("auto", "ghost", "materialize")


def _padded(layer, a, channels_first):
    """`a` padded as the conv pads it, [B, *spatial, C_in] ([B, C_in, *spatial] with
    `channels_first`)."""
    dilated = [(k - 1) * r + 1 for k, r in zip(layer.kernel_size, layer.kernel_dilation)]
    if isinstance(layer.padding, str):
        pads = jax.lax.padtype_to_pads(a.shape[1:-1], dilated, layer.strides, layer.padding)
    else:
        pads = layer.padding
    pads = tuple(tuple(p) for p in pads)
    if channels_first:
        a = jnp.moveaxis(a, -1, 1)
        pads = ((0, 0), (0, 0)) + pads
    else:
        pads = ((0, 0),) + pads + ((0, 0),)
    return jnp.pad(a, pads) if any(p != (0, 0) for p in pads) else a


def _offsets(layer):
    """Kernel offsets in row-major kernel order."""
    return list(itertools.product(*(range(k) for k in layer.kernel_size)))


def _spans(layer):
    """Per spatial axis, the input extent one output window covers (before striding)."""
    return tuple(s * (m - 1) + 1 for s, m in zip(layer.strides, layer.out_shape[1:-1]))


def shifted_inputs(layer, a, channels_first=False):
    """One strided window of the (padded) input per kernel offset, each [B, *out_spatial, C_in]
    ([B, C_in, *out_spatial] with `channels_first`: `a` is transposed once, before slicing).

    Offsets are in row-major kernel order, so stacking them on the channel axis gives patches
    ordered (*kernel, C_in), the nnx.Conv kernel layout [*kernel, C_in, C_out] flattened.
    Pure slicing: cheaper on CPU than `lax.conv_general_dilated_patches` (a grouped conv).
    """
    a = _padded(layer, a, channels_first)
    lead, trail = (2, 0) if channels_first else (1, 1)
    windows = []
    for offset in _offsets(layer):
        index = [slice(None)] * lead
        for o, r, s, n in zip(offset, layer.kernel_dilation, layer.strides, _spans(layer)):
            index.append(slice(o * r, o * r + n, s))
        windows.append(a[tuple(index)])
    assert all(w.shape[lead:w.ndim - trail] == tuple(layer.out_shape[1:-1])
               for w in windows), layer
    return windows


def _conv_kernel_sq_norm(layer, a, d):
    """[B] ||U_i^T D_i||_F^2 of a conv as a sum over kernel offsets, in a loop.

    Each offset's product is a plain row-major GEMM per example: its input window
    channels-first [C_in, T] times the output gradient as the backward pass leaves it,
    channels-last [T, C_out] (`_conv_grad_block`). Only the input is transposed, once (it is
    smaller than `d` wherever C_in <= C_out); transposing `d` instead cost the small CNN 3 ms of
    its 40 ms GraNd program (32x32x3, batch 128, one thread). The offsets are a `fori_loop`:
    unrolled, XLA fuses the input's transpose and padding into each offset's window copy (9
    strided gathers); a loop operand is materialised once, and each iteration slices it.
    """
    padded = _padded(layer, a, channels_first=True)
    dd = _positions(d)
    starts = jnp.asarray([[o * r for o, r in zip(offset, layer.kernel_dilation)]
                          for offset in _offsets(layer)], jnp.int32)
    window_shape = padded.shape[:2] + _spans(layer)
    strided = (slice(None), slice(None)) + tuple(slice(None, None, s) for s in layer.strides)

    def add_offset(i, total):
        start = (0, 0) + tuple(starts[i, j] for j in range(len(layer.kernel_size)))
        window = jax.lax.dynamic_slice(padded, start, window_shape)[strided]
        return total + _sum_sq(_conv_grad_block(window, dd))

    return jax.lax.fori_loop(0, len(starts), add_offset, jnp.zeros(a.shape[0], F32))


def _conv_grad_block(window, dd):
    """[B, C_in, C_out]: one kernel offset's block of U_i^T D_i, from the channels-first input
    window [B, C_in, *out_spatial] and the output gradient [B, T, C_out]."""
    return _bmm("bkt,btc->bkc", window.reshape(window.shape[:2] + (-1,)), dd)


def patches(layer, a):
    """[B, T, K] input patches of a conv layer, K ordered (*kernel, C_in)."""
    windows = shifted_inputs(layer, a)
    u = windows[0] if len(windows) == 1 else jnp.concatenate(windows, axis=-1)
    return u.reshape(u.shape[0], math.prod(layer.out_shape[1:-1]), u.shape[-1])


def _positions(x):
    """[B, ..., F] -> [B, T, F]."""
    return x.reshape(x.shape[0], -1, x.shape[-1])


F32 = jnp.float32


def _sum_sq(g):
    g = g.astype(F32)
    return jnp.sum(jnp.square(g).reshape(g.shape[0], -1), axis=1)


def _position_sum(d):
    """[B, C]: d summed over positions, in float32 (a bias's or BatchNorm's gradient)."""
    return jnp.sum(_positions(d), axis=1, dtype=F32)


def _bmm(spec, u, v):
    """Batched product accumulated and returned in float32 (bfloat16 operands stay bfloat16)."""
    return jnp.einsum(spec, u, v, preferred_element_type=F32)


def choose_ghost(t, k, c):
    """True when the ghost norm costs fewer FLOPs than materialising U^T D for this layer."""
    return t * (k + c) < k * c


def _kernel_grad_blocks(layer, a, d):
    """Example i's kernel gradient U_i^T D_i as blocks [B, K_block, C_out] (one per kernel
    offset for convs: a batched GEMM per shifted input window, no [B, T, K] patch matrix)."""
    dd = _positions(d)
    if layer.kind != "conv":
        return [_bmm("btk,btc->bkc", _positions(a), dd)]
    return [_conv_grad_block(w, dd) for w in shifted_inputs(layer, a, channels_first=True)]


def layer_strategy(layer, strategy="auto"):
    """How `sq_norm` treats `layer`: "batchnorm", "outer" (one position: ||u_i|| ||d_i||),
    "ghost" or "materialize" (`strategy`, or under "auto" whichever costs fewer FLOPs)."""
    if layer.kind == "batchnorm":
        return "batchnorm"
    t, c = math.prod(layer.out_shape[1:-1]), layer.out_shape[-1]
    k = layer.in_shape[-1] * (math.prod(layer.kernel_size) if layer.kind == "conv" else 1)
    if t == 1:
        return "outer"
    if strategy == "auto":
        return "ghost" if choose_ghost(t, k, c) else "materialize"
    return strategy


def _kernel_sq_norm(layer, a, d, strategy):
    """[B] ||U_i^T D_i||_F^2, by the ghost identity or by materialising per layer."""
    how = layer_strategy(layer, strategy)
    if how == "materialize":
        if layer.kind == "conv":
            return _conv_kernel_sq_norm(layer, a, d)
        return sum(_sum_sq(g) for g in _kernel_grad_blocks(layer, a, d))
    u = patches(layer, a) if layer.kind == "conv" else _positions(a)
    dd = _positions(d)
    if how == "outer":
        return _sum_sq(u) * _sum_sq(dd)
    uu = _bmm("btk,bsk->bts", u, u)
    ddt = _bmm("btc,bsc->bts", dd, dd)
    return jnp.sum((uu * ddt).reshape(u.shape[0], -1), axis=1)


def sq_norm(layer, a, d, strategy="auto"):
    """[B] squared norm of example i's gradient with respect to all of `layer`'s parameters.

    `strategy` ("auto" | "ghost" | "materialize") applies to kernels with several positions
    (convs; Linear on [B, ..., F] inputs); Linear on [B, F] always uses ||a_i|| ||d_i||.
    """
    if layer.kind == "batchnorm":
        total = 0.0
        if "scale" in layer.params:
            total += _sum_sq(_position_sum(d * a))
        if "bias" in layer.params:
            total += _sum_sq(_position_sum(d))
        return total
    total = _kernel_sq_norm(layer, a, d, strategy)
    if "bias" in layer.params:
        total += _sum_sq(_position_sum(d))
    return total


def grads(layer, a, d):
    """{param name: [B, *param shape]}: example i's gradients of `layer`'s parameters."""
    if layer.kind == "batchnorm":
        out = {}
        if "scale" in layer.params:
            out["scale"] = _position_sum(d * a)
        if "bias" in layer.params:
            out["bias"] = _position_sum(d)
        return out
    blocks = _kernel_grad_blocks(layer, a, d)
    kernel = blocks[0] if len(blocks) == 1 else jnp.concatenate(blocks, axis=1)
    b, c = kernel.shape[0], layer.out_shape[-1]
    if layer.kind == "conv":  # rows ordered (*kernel, C_in): the nnx.Conv kernel layout
        kernel = kernel.reshape((b,) + layer.kernel_size + (layer.in_shape[-1], c))
    out = {"kernel": kernel}
    if "bias" in layer.params:
        out["bias"] = _position_sum(d)
    return out
