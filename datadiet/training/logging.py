"""What a run reports as it trains: events in metrics.jsonl, TensorBoard scalars, a progress bar."""
import tqdm

TB_SCALARS = ("loss", "accuracy", "lr")


def tensorboard_writer(run, config, step):
    """A TensorBoard writer for run's tb/ (None when log.tensorboard is off), resuming at
    global `step`: TensorBoard drops the earlier files' points at steps >= purge_step, i.e.
    those logged after the checkpoint, which this run writes again; the point at `step` itself
    was logged before the checkpoint and stays."""
    if not config.log.tensorboard or not run.primary:
        return None
    from tensorboardX import SummaryWriter  # optional: only runs that log TensorBoard need it
    return SummaryWriter(run.file("tb"), purge_step=step + 1)


def progress_bar(config, run, total_steps, step):
    bs = config.train.batch_size
    return tqdm.tqdm(total=total_steps * bs, unit="ex", unit_scale=True, initial=step * bs,
                     disable=not (config.log.progress and run.primary),
                     desc=run.path.split("/")[-1])


def show_progress(bar, train_metrics, final):
    shown = {"loss": f"{train_metrics['loss']:.3f}"}
    if "test" in final:  # nothing to show before the first evaluation
        shown["test_acc"] = f"{final['test']['accuracy']:.3f}"
    bar.set_postfix(**shown)


def log_epoch(run, writer, final, step, epoch, now, train, test=None):
    """Logs the epoch's train event (and test metrics, when evaluated) with its step, epoch and
    time, to metrics.jsonl and TensorBoard; `final` keeps the latest event of each split."""
    events = [dict(split="train", **train)] + ([] if test is None else [dict(split="test", **test)])
    for event in events:
        event.update(step=step, epoch=epoch + 1, time=round(now, 3))
        run.log(**event)
        write_scalars(writer, event)
        final[event["split"]] = event
    return events


def write_scalars(writer, event):
    if writer is None:
        return
    for name in TB_SCALARS:
        if name in event:
            writer.add_scalar(f"{event['split']}/{name}", event[name], event["step"])
