"""Tests for datadiet.models: parameter counts, shapes, BatchNorm modes, masks, the features/head
split, split/merge under jit, and registry errors."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from datadiet.models import MODELS, get_model, model_options

SHAPES = [(32, 32, 3), (28, 28, 1), (8, 8, 1)]


def n_params(model):
    return sum(math.prod(x.shape) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def abstract(name, num_classes, shape, **kwargs):
    """The model with shapes only (no init compute): parameter counts cost nothing."""
    return nnx.eval_shape(lambda: MODELS[name](num_classes, shape, rngs=nnx.Rngs(0), **kwargs))


@functools.lru_cache(maxsize=None)
def _cached(name, shape, kwargs):
    return get_model(name, 10, shape, seed=0, **dict(kwargs))


def fresh(name, shape=(8, 8, 1), **kwargs):
    """A freshly initialised model (a clone of a cached one: eager init compiles per shape)."""
    return nnx.clone(_cached(name, tuple(shape), tuple(sorted(kwargs.items()))))


def batch_stats(model):
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(model, nnx.BatchStat))]


def images(shape, batch, seed=0):
    return jax.random.normal(jax.random.key(seed), (batch,) + tuple(shape), jnp.float32)


CNN = {"width": 4, "hidden": 8}  # tiny small_cnn for behaviour tests


@pytest.fixture
def resnet18():
    return fresh("resnet18", (32, 32, 3))


# --- parameter counts ------------------------------------------------------------------------

def test_resnet18_param_count(resnet18):
    # The PyTorch reference (kuangliu/pytorch-cifar ResNet18, 10 classes): 11,173,962.
    assert n_params(resnet18) == 11_173_962
    # Running mean and variance of every BN layer: 2 * (channels summed over BN layers).
    bn_channels = 64 + 64 * 4 + 128 * 5 + 256 * 5 + 512 * 5  # stem, stages (incl. shortcuts)
    assert sum(x.size for x in batch_stats(resnet18)) == 2 * bn_channels


def test_resnet50_param_count():
    model = abstract("resnet50", 10, (32, 32, 3))

    def bottleneck(cin, p, projection):
        n = cin * p + 9 * p * p + p * 4 * p + 2 * (p + p + 4 * p)  # three convs + three BNs
        return n + (cin * 4 * p + 2 * 4 * p if projection else 0)

    expected, cin = 3 * 9 * 64 + 2 * 64, 64  # stem conv + BN
    for p, blocks in zip((64, 128, 256, 512), (3, 4, 6, 3)):
        for i in range(blocks):
            expected += bottleneck(cin, p, projection=(i == 0))
            cin = 4 * p
    expected += 2048 * 10 + 10
    assert expected == 23_520_842  # the PyTorch reference number, derived by hand above
    assert n_params(model) == expected


def test_resnet50_eval_forward():
    model = get_model("resnet50", 10, (32, 32, 3), seed=0)
    out = model(images((32, 32, 3), 1), train=False)
    assert out.shape == (1, 10) and bool(jnp.all(jnp.isfinite(out)))
    assert model.head.in_features == 2048


def small_cnn_count(shape, k, width=16, hidden=128):
    h, w, c = shape
    for _ in range(2):
        if min(h, w) >= 2:
            h, w = h // 2, w // 2
    convs = 9 * c * width + 9 * width * 2 * width  # no bias
    bns = 2 * (width + 2 * width + hidden)  # scale + bias
    return convs + bns + h * w * 2 * width * hidden + hidden * k + k


@pytest.mark.parametrize("shape", SHAPES + [(1, 1, 2), (5, 9, 1)])
@pytest.mark.parametrize("kwargs", [{}, {"width": 8, "hidden": 16}])
def test_small_cnn_param_count(shape, kwargs):
    model = abstract("small_cnn", 7, shape, **kwargs)
    assert n_params(model) == small_cnn_count(shape, 7, **kwargs)
    if shape == (28, 28, 1) and not kwargs:
        assert small_cnn_count(shape, 10) == 207_098


@pytest.mark.parametrize("batch_norm", [False, True])
def test_mlp_param_count(batch_norm):
    model = abstract("mlp", 10, (28, 28, 1), hidden=(100, 50), batch_norm=batch_norm)
    if batch_norm:  # dense without bias + BN scale and bias
        expected = 784 * 100 + 2 * 100 + 100 * 50 + 2 * 50 + 50 * 10 + 10
    else:
        expected = 784 * 100 + 100 + 100 * 50 + 50 + 50 * 10 + 10
    assert n_params(model) == expected
    assert n_params(abstract("mlp", 3, (8, 8, 1), hidden=())) == 64 * 3 + 3
    assert n_params(abstract("mlp", 10, (32, 32, 3))) == (3072 * 256 + 256 + 256 * 256 + 256
                                                          + 256 * 10 + 10)


# --- output shapes ---------------------------------------------------------------------------

@pytest.mark.parametrize("name,kwargs", [("small_cnn", CNN), ("mlp", {"batch_norm": True})])
@pytest.mark.parametrize("shape", SHAPES)
def test_output_shapes_small_models(name, kwargs, shape):
    model = fresh(name, shape, **kwargs)
    x = images(shape, 3)
    for train in (True, False):
        out = model(x, train=train)
        assert out.shape == (3, 10) and out.dtype == jnp.float32
        assert model.features(x, train=train).shape == (3, model.head.in_features)


def test_small_cnn_default_feature_size():
    model = abstract("small_cnn", 10, (28, 28, 1))
    assert model.head.in_features == 128 and model.dense.in_features == 7 * 7 * 32


def test_resnet18_output_shape(resnet18):
    model = resnet18
    x = images((32, 32, 3), 2)
    assert model(x, train=True).shape == (2, 10)
    assert model.features(x, train=False).shape == (2, 512)


# --- BatchNorm modes -------------------------------------------------------------------------

@pytest.mark.parametrize("name,kwargs", [("small_cnn", CNN), ("mlp", {"batch_norm": True})])
def test_train_updates_running_stats_eval_does_not(name, kwargs):
    model = fresh(name, **kwargs)
    x = images((8, 8, 1), 6) * 3.0 + 1.0
    before = batch_stats(model)
    model(x, train=False)
    for a, b in zip(before, batch_stats(model)):
        np.testing.assert_array_equal(a, b)
    model(x, train=True)
    after = batch_stats(model)
    assert all(not np.array_equal(a, b) for a, b in zip(before, after))


def test_eval_uses_running_averages():
    # With running mean 0 / var 1 (fresh init) eval BN is the identity times scale + bias, so
    # the eval output of an MLP with BN equals the same MLP without BN given the same weights.
    bn = get_model("mlp", 4, (2, 2, 1), seed=3, hidden=(5,), batch_norm=True)
    x = images((2, 2, 1), 3)
    h = x.reshape(3, -1) @ bn.layers[0].kernel[...]
    expected = bn.head(jax.nn.relu(h / jnp.sqrt(1.0 + 1e-5)))
    np.testing.assert_allclose(bn(x, train=False), expected, rtol=1e-6, atol=1e-6)
    # Train mode normalises with the batch: every hidden unit has mean 0 over the batch.
    pre = bn.norms[0](h, train=True)
    np.testing.assert_allclose(jnp.mean(pre, axis=0), 0.0, atol=1e-5)


# --- mask --------------------------------------------------------------------------------------

MASK = jnp.array([True, False, True, True, False])


def _masked_outputs_do_not_depend_on_masked_out(model, shape):
    x = images(shape, 5, seed=1)
    x2 = jnp.where(MASK[:, None, None, None], x, 10.0 * images(shape, 5, seed=2) - 3.0)
    m1, m2 = nnx.clone(model), nnx.clone(model)
    out1 = m1(x, train=True, mask=MASK)
    out2 = m2(x2, train=True, mask=MASK)
    np.testing.assert_allclose(out1[MASK], out2[MASK], rtol=1e-6, atol=1e-6)
    for a, b in zip(batch_stats(m1), batch_stats(m2)):  # running stats see masked-in only
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    # Without the mask the masked-out inputs do matter (so the test above is not vacuous).
    assert not np.allclose(nnx.clone(model)(x, train=True)[MASK],
                           nnx.clone(model)(x2, train=True)[MASK], atol=1e-4)
    return x, x2


def test_mask_small_cnn_outputs_gradients_and_subset_equivalence():
    model = fresh("small_cnn", **CNN)
    x, x2 = _masked_outputs_do_not_depend_on_masked_out(model, (8, 8, 1))

    graphdef, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    weights = MASK.astype(jnp.float32)

    def loss(p, xb):
        logits = nnx.merge(graphdef, p, stats, copy=True)(xb, train=True, mask=MASK)
        return jnp.sum(weights * jax.nn.logsumexp(logits, axis=-1))

    grad = jax.jit(jax.grad(loss))
    g1, g2 = grad(params, x), grad(params, x2)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # A masked batch behaves like the batch of its masked-in examples alone.
    sub = nnx.clone(model)(x[MASK], train=True)
    np.testing.assert_allclose(nnx.clone(model)(x, train=True, mask=MASK)[MASK], sub,
                               rtol=1e-5, atol=1e-6)


def test_mask_resnet18(resnet18):
    _masked_outputs_do_not_depend_on_masked_out(resnet18, (32, 32, 3))


def test_mask_mlp():
    model = fresh("mlp", batch_norm=True)
    _masked_outputs_do_not_depend_on_masked_out(model, (8, 8, 1))


# --- features / head -------------------------------------------------------------------------

@pytest.mark.parametrize("name,kwargs", [("small_cnn", CNN), ("mlp", {"batch_norm": True}),
                                         ("mlp", {})])
def test_head_of_features_is_model(name, kwargs):
    model = fresh(name, **kwargs)
    assert isinstance(model.head, nnx.Linear)
    x = images((8, 8, 1), 4)
    for train in (False, True):
        np.testing.assert_array_equal(model(x, train=train),
                                      model.head(model.features(x, train=train)))


def test_head_of_features_is_model_resnet18(resnet18):
    model = resnet18
    x = images((32, 32, 3), 2)
    assert isinstance(model.head, nnx.Linear) and model.head.in_features == 512
    np.testing.assert_array_equal(model(x, train=False),
                                  model.head(model.features(x, train=False)))


# --- functional use: split / merge inside jit ------------------------------------------------

@pytest.mark.parametrize("name,kwargs", [("small_cnn", CNN), ("mlp", {"batch_norm": True})])
def test_split_merge_round_trip_in_jit(name, kwargs):
    model = fresh(name, **kwargs)
    graphdef, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)  # nothing else left
    x = images((8, 8, 1), 4)

    @jax.jit
    def apply(params, stats, x, mask):
        m = nnx.merge(graphdef, params, stats)
        eval_out = m(x, train=False)  # before the train call updates the running averages
        return m(x, train=True, mask=mask), eval_out, nnx.state(m, nnx.BatchStat)

    mask = jnp.array([True, True, False, True])
    train_out, eval_out, new_stats = apply(params, stats, x, mask)
    np.testing.assert_allclose(eval_out, nnx.clone(model)(x, train=False), rtol=1e-5, atol=1e-6)
    # Train mode divides by batch standard deviations of 3 examples: XLA's jit fusion and the
    # eager op-by-op path round differently, hence the looser tolerance.
    eager = nnx.clone(model)
    np.testing.assert_allclose(train_out, eager(x, train=True, mask=mask), rtol=1e-4, atol=1e-4)
    for a, b in zip(jax.tree.leaves(new_stats), batch_stats(eager)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for a, b in zip(jax.tree.leaves(stats), batch_stats(model)):  # inputs untouched
        np.testing.assert_array_equal(a, b)


def test_seed_controls_init():
    a = jax.tree.leaves(nnx.state(get_model("small_cnn", 10, (8, 8, 1), 0, **CNN), nnx.Param))
    b = jax.tree.leaves(nnx.state(get_model("small_cnn", 10, (8, 8, 1), 0, **CNN), nnx.Param))
    c = jax.tree.leaves(nnx.state(get_model("small_cnn", 10, (8, 8, 1), 1, **CNN), nnx.Param))
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not all(np.array_equal(u, v) for u, v in zip(a, c))


def test_pytorch_like_init(resnet18):
    # Convs: Kaiming normal, fan_out; head: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    k = np.asarray(resnet18.blocks[7].conv2.kernel[...])  # 3x3x512x512
    np.testing.assert_allclose(k.std(), math.sqrt(2.0 / (9 * 512)), rtol=0.02)
    w = np.asarray(resnet18.head.kernel[...])
    assert np.abs(w).max() <= 1 / math.sqrt(512) and np.abs(w).max() > 0.9 / math.sqrt(512)


# --- registry errors -------------------------------------------------------------------------

def test_unknown_model_name():
    with pytest.raises(ValueError, match=r"model\.name") as e:
        get_model("resnet19", 10, (32, 32, 3), seed=0)
    for name in MODELS:
        assert name in str(e.value)


def test_unknown_model_option():
    with pytest.raises(ValueError, match=r"model\.kwargs\.widht") as e:
        get_model("small_cnn", 10, (28, 28, 1), seed=0, widht=16)
    assert "width" in str(e.value) and "hidden" in str(e.value)
    assert model_options("mlp") == {"hidden": (256, 256), "batch_norm": False}


def test_small_cnn_pool_equals_reduce_window_max_pool():
    import numpy as np
    from flax import nnx
    from datadiet.models.small import _max_pool_2x2
    x = np.random.default_rng(0).normal(size=(3, 7, 6, 4)).astype(np.float32)
    expected = nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2), padding="VALID")
    np.testing.assert_array_equal(_max_pool_2x2(x), expected)
