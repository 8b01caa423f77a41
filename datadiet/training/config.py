"""The `train` and `log` config sections and their validation (the optimiser's section is
training/optim.py's)."""
import ml_collections

TRAIN_FIELDS_POSITIVE = ("eval_every_epochs", "checkpoint_every_epochs", "eval_batch_size",
                         "max_checkpoints")


def default_train_config():
    c = ml_collections.ConfigDict()
    c.batch_size = 128
    c.epochs = -1.0  # set exactly one of epochs / steps
    c.steps = -1
    c.iteration_matched = True  # subsets train as many steps as the full data would
    c.eval_every_epochs = 1
    c.checkpoint_every_epochs = 1
    c.eval_batch_size = 1000
    c.max_checkpoints = 2
    return c


def default_log_config():
    # Neither field changes a result: a run directory accepts a rerun that changes them.
    return ml_collections.ConfigDict({"progress": True, "tensorboard": True})


def validate_train_config(t):
    if t.batch_size <= 0:
        raise ValueError(f"train.batch_size={t.batch_size} must be > 0")
    if (t.epochs > 0) == (t.steps > 0):
        raise ValueError(f"set exactly one of train.epochs={t.epochs} and train.steps={t.steps} "
                         "(the other stays -1)")
    for field in TRAIN_FIELDS_POSITIVE:
        if t[field] <= 0:
            raise ValueError(f"train.{field}={t[field]} must be > 0")
