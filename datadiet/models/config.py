"""The model section's leaf config: which model (`name`), its constructor options (`kwargs`)
and the compute dtype (`dtype`). Name and options are checked against `datadiet.models.MODELS`
by `datadiet/config.py`; this module only knows the dtypes, so the models can import it."""
import ml_collections

# Compute dtypes. Parameters, optimiser state, BatchNorm statistics, logits, losses, metrics
# and per-example gradient norms stay float32 under either.
DTYPES = ("float32", "bfloat16")


def default_model_config():
    c = ml_collections.ConfigDict()
    c.name = "small_cnn"  # one of datadiet.models.MODELS
    c.kwargs = {}  # the model's constructor options (datadiet.models.model_options(name))
    c.dtype = "float32"  # compute dtype of activations: one of DTYPES (bfloat16: mixed precision)
    return c


def check_dtype(dtype, field="model.dtype"):
    if dtype not in DTYPES:
        raise ValueError(f"{field}={dtype!r} is not one of {list(DTYPES)}")
    return dtype


def validate_model_config(cfg):
    check_dtype(cfg.dtype)
