"""The one training driver, shared by the epoch loop (training/loop.py) and the streaming loop
(sampling/loop.py): restore -> blocks of steps -> metrics -> eval / log / checkpoint cadence ->
on_epoch(epoch, state, metrics) -> close, on every way out.

A trainer supplies what differs between loops:
  items()                      {name: pytree} it checkpoints (at least "state")
  load(items)                  takes the restored items
  fresh()                      called when there is no checkpoint (e.g. a sampler's first pass)
  train_block(epoch, first_step, step, started, tick) -> train metrics (host floats) of
                               steps [first_step, step); `tick(n)` advances the progress bar
  block_diagnostics()          extra train-event fields measured after the block (may be {})
  state                        the train state
  logs_train_time              whether train events carry train_time (seconds of training alone)
"""
import time

from datadiet.training import logging, preemption
from datadiet.training.checkpoint import Checkpointer


def drive(config, run, trainer, duration, lr_at, evaluate, on_epoch=None, stop_epoch=None):
    """Trains `trainer` through `duration` (resuming from run's checkpoint); returns the final
    {"train": event, "test": event}.

    on_epoch(epoch, state, metrics) is called once before training (epoch = the first epoch to
    train, metrics None) and after every epoch, before its checkpoint, with that epoch's
    {"train": event, "test": event or None}; it must be idempotent (a resume repeats a call) and
    may stop training by raising. stop_epoch: end after this many epochs of the schedule (its
    LR schedule unchanged).
    """
    t = config.train
    checkpointer = Checkpointer(run.file("checkpoints"), t.max_checkpoints)
    writer = bar = None
    final = {}
    try:
        # overhead: seconds spent after training each block (diagnostics, evaluation,
        # checkpoints), so that train_time = elapsed - overhead is the training alone.
        meta = {"epoch": -1, "step": 0, "elapsed": 0.0, "overhead": 0.0}
        clock = time.time()
        restored = checkpointer.restore_latest(trainer.items())
        if restored is None:
            trainer.fresh()  # its time counts
        else:
            items, meta = restored
            trainer.load(items)
        started, overhead = clock - meta["elapsed"], meta.get("overhead", 0.0)
        run.truncate_metrics(meta["step"])  # events after the checkpoint will be logged again
        step0 = int(trainer.state.step)
        writer = logging.tensorboard_writer(run, config, step0)
        bar = logging.progress_bar(config, run, duration.total_steps, step0)
        start_epoch = meta["epoch"] + 1
        if on_epoch is not None:
            on_epoch(start_epoch, trainer.state, None)
        end_epoch = duration.num_epochs if stop_epoch is None else min(stop_epoch,
                                                                        duration.num_epochs)
        for epoch in range(start_epoch, end_epoch):
            first_step, step = duration.epoch_starts[epoch], duration.epoch_starts[epoch + 1]
            train = trainer.train_block(epoch, first_step, step, started,
                                        lambda n: bar.update(n * t.batch_size))
            trained = time.time()  # train_block's metrics waited for its steps
            fields = dict(lr=float(lr_at(step - 1)))
            if trainer.logs_train_time:
                fields["train_time"] = round(trained - started - overhead, 3)
            fields.update(train, **trainer.block_diagnostics())
            last = epoch == end_epoch - 1
            test = evaluate(trainer.state) if last or (epoch + 1) % t.eval_every_epochs == 0 \
                else None
            logging.log_epoch(run, writer, final, step, epoch, time.time() - started, fields,
                              test)
            if on_epoch is not None:
                on_epoch(epoch + 1, trainer.state,
                         {"train": final["train"], "test": final["test"] if test else None})
            # A stop asked for during the epoch's evaluation or logging still gets this epoch's
            # checkpoint (a stop during its steps abandons the epoch: the loops raise there).
            if last or (epoch + 1) % t.checkpoint_every_epochs == 0 or preemption.requested():
                saving = time.time()  # elapsed and overhead both up to here: a resume goes on
                checkpointer.save(step, trainer.items(), {
                    "epoch": epoch, "step": step, "elapsed": saving - started,
                    "overhead": overhead + saving - trained})
            if writer is not None:  # every evaluation's points on disk: a kill loses none
                writer.flush()
            overhead += time.time() - trained
            logging.show_progress(bar, train, final)
            preemption.check()
    finally:
        if bar is not None:
            bar.close()
        checkpointer.close()
        if writer is not None:
            writer.close()
    if not final:  # everything was already done before a restart
        final = {e["split"]: e for e in run.metrics() if "kind" not in e}
    return final
