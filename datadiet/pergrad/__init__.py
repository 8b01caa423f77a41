"""Per-example gradients and their norms: full, last layer only, or randomly projected.

    per_example_grad_norms(graphdef, params, batch_stats, x, y, *, method="auto", chunk_size=64)
        -> [B] float32
    per_example_grads(graphdef, params, batch_stats, x, y, *, mode="full"|"last_layer"|"projection",
                      proj_dim=None, seed=0, chunk_size=32, method="auto")
        -> pytree of [B, ...] leaves (full) | [B, F*C + C] (last_layer) | [B, proj_dim] (projection)

Cross-entropy with integer labels, BatchNorm in eval mode; `(graphdef, params, batch_stats) =
nnx.split(model, nnx.Param, nnx.BatchStat)`. Work is jitted per fixed-size chunk, the chunk's
batch axis split over all devices. Modules, one job each:
  taps.py        layer inputs and output gradients from the model's own forward (probes)
  layers.py      per-layer per-example gradients / squared norms (outer product, ghost norm,
                 per-layer materialisation, BatchNorm sums)
  norms.py       per_example_grad_norms (methods layerwise / ghost / materialize / vmap / auto)
  full.py        per-example gradient pytrees (layerwise or vmap), iter_per_example_grads
  projection.py  seeded Gaussian projection, generated per leaf and row block
  last_layer.py  closed-form final-layer gradients
  chunks.py      fixed-size chunks, padding, sharding over the "data" mesh
  grads.py       per_example_grads (mode dispatch)
"""
from datadiet.pergrad.full import GRAD_METHODS, iter_per_example_grads
from datadiet.pergrad.grads import MODES, per_example_grads
from datadiet.pergrad.last_layer import last_layer_grads
from datadiet.pergrad.norms import NORM_METHODS, layer_strategies, per_example_grad_norms
from datadiet.pergrad.projection import projection_matrix

__all__ = [
    "GRAD_METHODS",
    "MODES",
    "NORM_METHODS",
    "iter_per_example_grads",
    "last_layer_grads",
    "layer_strategies",
    "per_example_grad_norms",
    "per_example_grads",
    "projection_matrix",
]
