"""The `coreset` config section (GRAD-MATCH and its baselines) and its validation."""
import ml_collections

from datadiet.renamed import add_placeholders, check_placeholders

MODES = ("whole", "per_class", "per_batch")  # GRAD-MATCH over all candidates, per class, per batch
GRAD_MODES = ("last_layer", "full", "projection")  # the per-example gradient features
RENAMED = {"every": ("every_epochs", int)}
METHODS = ("none", "full", "random", "random_online", "gradmatch")
TARGETS = ("train", "val")


def default_coreset_config():
    c = ml_collections.ConfigDict()
    c.method = "none"  # none: plain training on all data (no selector at all)
    c.fraction = 0.1  # k = fraction * number of candidates
    c.mode = "per_class"  # gradmatch: whole, per_class or per_batch
    c.every_epochs = 5  # R: reselect every R epochs
    c.warm_start = 0.0  # fraction of the epochs trained on all candidates first
    # AUTOMATA's warm start instead: kappa * epochs * fraction full-data epochs first
    c.warm_start_kappa = 0.0
    c.lam = 0.5  # ridge lambda of OMP (CORDS' default)
    c.eps = 1e-10  # OMP stops once the relative matching error is below this
    c.target = "train"  # match the training gradient, or that of a held-out validation split
    c.val_fraction = 0.1  # target=val: share of the training set held out (not trained on)
    c.grads = "last_layer"  # per-example gradients: last_layer, full or projection
    c.proj_dim = 1024  # grads=projection: dimension
    c.chunk_size = 1024  # examples per jitted gradient chunk
    # Each selection looks at a fresh random share of the candidates (of the batches, per_batch;
    # stratified by class otherwise), as stochastic greedy does: 1.0 is the exact selection.
    c.candidate_fraction = 1.0
    add_placeholders(c, RENAMED)
    return c


def validate_coreset_config(c):
    check_placeholders("coreset", c, RENAMED)
    for field, value, accepted in (("method", c.method, METHODS), ("mode", c.mode, MODES),
                                   ("target", c.target, TARGETS), ("grads", c.grads, GRAD_MODES)):
        if value not in accepted:
            raise ValueError(f"coreset.{field}={value!r} is not one of {list(accepted)}")
    validate_subset_fields("coreset", c, selects=c.method == "gradmatch")
    if c.every_epochs < 1:
        raise ValueError(f"coreset.every_epochs={c.every_epochs} must be >= 1")
    if not 0 <= c.val_fraction < 1 or (c.target == "val" and c.val_fraction == 0):
        raise ValueError(f"coreset.val_fraction={c.val_fraction} must be in (0, 1) with "
                         f"coreset.target='val' ([0, 1) otherwise)")
    if c.lam < 0 or c.eps < 0:
        raise ValueError(f"coreset.lam={c.lam} and coreset.eps={c.eps} must be >= 0")


def validate_subset_fields(prefix, c, selects):
    """The subset schedule's fields, shared by the `coreset` section and the `hpo` section
    (which sets them on each trial's coreset): fraction, warm_start, warm_start_kappa,
    candidate_fraction (`selects`: GRAD-MATCH selections will use it)."""
    if not 0 < c.fraction <= 1:
        raise ValueError(f"{prefix}.fraction={c.fraction} must be in (0, 1]")
    if not 0 <= c.warm_start < 1:
        raise ValueError(f"{prefix}.warm_start={c.warm_start} must be in [0, 1)")
    if c.warm_start_kappa < 0 or (c.warm_start_kappa > 0 and c.warm_start > 0):
        raise ValueError(f"{prefix}.warm_start_kappa={c.warm_start_kappa} must be >= 0, and "
                         f"0 when {prefix}.warm_start={c.warm_start} is set (one or the other)")
    if not 0 < c.candidate_fraction <= 1:
        raise ValueError(f"{prefix}.candidate_fraction={c.candidate_fraction} must be in (0, 1]")
    if selects and c.candidate_fraction < 1 and c.candidate_fraction <= c.fraction:
        # A pool holds at least the budget; one no larger than it is chosen whole: a random
        # subset with OMP weights, not a selection.
        raise ValueError(f"{prefix}.candidate_fraction={c.candidate_fraction} must exceed "
                         f"{prefix}.fraction={c.fraction} (or be 1, every candidate): a pool no "
                         "larger than the budget is chosen whole")
