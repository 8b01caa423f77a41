"""parallel.replicate / put_global: every kind of leaf reaches the mesh with its values unchanged.
(Across processes they are exercised by tests/distributed.)"""
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from datadiet import parallel


def test_replicate_keeps_every_leaf_and_replicates_it():
    mesh = parallel.data_mesh()
    tree = {"host": np.arange(6.0).reshape(2, 3), "device": jnp.ones((4,), jnp.int32) * 7,
            "scalar": np.float32(2.5)}
    tree["global"] = parallel.put_global(np.arange(4), mesh, batch_axis=0)  # already on the mesh
    out = parallel.replicate(tree, mesh)
    for name, leaf in tree.items():
        assert out[name].sharding.is_equivalent_to(NamedSharding(mesh, P()), np.ndim(leaf)), name
        np.testing.assert_array_equal(np.asarray(out[name]), np.asarray(leaf), err_msg=name)
        assert out[name].dtype == jnp.asarray(leaf).dtype, name


def test_put_global_splits_the_batch_axis_and_works_inside_jit():
    mesh = parallel.data_mesh()
    x = np.arange(24.0).reshape(2, 4, 3)
    out = parallel.put_global(x, mesh, batch_axis=1)
    assert out.sharding.spec == P(None, "data", None)
    np.testing.assert_array_equal(np.asarray(out), x)
    doubled = jax.jit(lambda a: parallel.put_global(a, mesh, batch_axis=1) * 2)(jnp.asarray(x))
    np.testing.assert_array_equal(np.asarray(doubled), 2 * x)


def test_put_global_reuses_placed_arrays_only_when_asked_and_places_the_rest():
    mesh = parallel.data_mesh()
    placed = parallel.put_global(np.arange(8.0), mesh, batch_axis=0)
    assert parallel.put_global(placed, mesh, batch_axis=0, reuse_placed=True) is placed
    assert parallel.replicate({"a": placed}, mesh)["a"] is not placed
    host = parallel.put_global(np.arange(8.0), mesh, batch_axis=0, reuse_placed=True)
    assert isinstance(host, jax.Array)
    assert host.sharding.is_equivalent_to(NamedSharding(mesh, P("data")), 1)
    np.testing.assert_array_equal(np.asarray(host), np.arange(8.0))
