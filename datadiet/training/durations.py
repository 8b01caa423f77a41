"""Durations: epochs or steps, converted to steps in this one place."""
import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class Duration:
    steps_per_epoch: int  # steps in one pass over the training (sub)set
    total_steps: int
    schedule_steps_per_epoch: int  # what an "epoch" means to the LR schedule
    num_epochs: int  # passes needed to run total_steps


def resolve_duration(train_cfg, n_examples, n_full):
    """`train.epochs` or `train.steps` (exactly one set); iteration matching for subsets.

    With `train.iteration_matched`, a subset run takes as many steps as the full-data run
    would (Data Diet's protocol), and its LR schedule counts epochs of the full data.
    """
    has_epochs, has_steps = train_cfg.epochs > 0, train_cfg.steps > 0
    if has_epochs == has_steps:
        raise ValueError(f"set exactly one of train.epochs={train_cfg.epochs} and "
                         f"train.steps={train_cfg.steps} (the other stays -1)")
    steps_per_epoch = math.ceil(n_examples / train_cfg.batch_size)
    full_steps_per_epoch = math.ceil(n_full / train_cfg.batch_size)
    schedule_spe = full_steps_per_epoch if train_cfg.iteration_matched else steps_per_epoch
    if has_steps:
        total = int(train_cfg.steps)
    else:
        total = max(1, round(train_cfg.epochs * schedule_spe))
    return Duration(steps_per_epoch, total, schedule_spe, math.ceil(total / steps_per_epoch))
