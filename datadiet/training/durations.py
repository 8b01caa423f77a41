"""Durations: epochs or steps, converted to steps in this one place."""
import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class Duration:
    epoch_starts: tuple  # the global step at which each epoch starts, then the total step count
    schedule_steps_per_epoch: int  # what an "epoch" means to the LR schedule

    @property
    def total_steps(self):
        return self.epoch_starts[-1]

    @property
    def num_epochs(self):
        return len(self.epoch_starts) - 1


def resolve_duration(train_cfg, n_examples, n_full, epoch_sizes=None):
    """Steps of each epoch from `train.epochs` or `train.steps` (exactly one is set).

    A fixed training set of `n_examples` (of `n_full`): with `train.iteration_matched`, a subset
    run takes as many steps as the full-data run would (Data Diet's protocol) and its LR schedule
    counts epochs of the full data. A selector whose subset changes size between epochs (warm
    start, then coresets) passes `epoch_sizes(num_epochs)`; its epochs are passes over those.
    """
    has_epochs, has_steps = train_cfg.epochs > 0, train_cfg.steps > 0
    if has_epochs == has_steps:
        raise ValueError(f"set exactly one of train.epochs={train_cfg.epochs} and "
                         f"train.steps={train_cfg.steps} (the other stays -1)")
    b = train_cfg.batch_size
    if epoch_sizes is not None:
        if not has_epochs or train_cfg.epochs != int(train_cfg.epochs):
            raise ValueError(f"train.epochs={train_cfg.epochs} must be a whole number of epochs "
                             "(and train.steps unset) when the training subset is reselected")
        sizes = epoch_sizes(int(train_cfg.epochs))
        starts = [0]
        for size in sizes:
            starts.append(starts[-1] + math.ceil(size / b))
        return Duration(tuple(starts), math.ceil(sizes[-1] / b))
    steps_per_epoch = math.ceil(n_examples / b)
    schedule_spe = math.ceil(n_full / b) if train_cfg.iteration_matched else steps_per_epoch
    if has_steps:
        total = int(train_cfg.steps)
    else:
        total = max(1, round(train_cfg.epochs * schedule_spe))
    num_epochs = math.ceil(total / steps_per_epoch)
    return Duration(tuple(min(e * steps_per_epoch, total) for e in range(num_epochs + 1)),
                    schedule_spe)
