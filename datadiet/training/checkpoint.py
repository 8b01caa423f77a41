"""Orbax checkpoints: named items (the train state, a sampler's state, ...) plus a small JSON
of loop metadata (epoch, step, elapsed seconds, ...)."""
import os

import orbax.checkpoint as ocp


class Checkpointer:
    def __init__(self, directory, max_to_keep=2):
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self.manager = ocp.CheckpointManager(os.path.abspath(directory), options=options)

    def save(self, step, items, meta):
        """items: {name: pytree}, e.g. {"state": train_state}."""
        args = {name: ocp.args.StandardSave(tree) for name, tree in items.items()}
        self.manager.save(step, args=ocp.args.Composite(meta=ocp.args.JsonSave(meta), **args))

    def steps(self):
        """The steps of the complete checkpoints, increasing."""
        return sorted(self.manager.all_steps())

    def restore_latest(self, like_items):
        """(items, meta) of the newest complete checkpoint, or None. `like_items` ({name:
        pytree}) gives the structure, dtypes and shardings to restore into."""
        step = self.manager.latest_step()
        if step is None:
            return None
        return self.restore(like_items, step)

    def restore(self, like_items, step):
        """(items, meta) of the checkpoint saved at `step` (one of `steps()`)."""
        args = {name: ocp.args.StandardRestore(tree) for name, tree in like_items.items()}
        restored = self.manager.restore(step, args=ocp.args.Composite(
            meta=ocp.args.JsonRestore(), **args))
        return {name: restored[name] for name in like_items}, restored["meta"]

    def close(self):
        self.manager.wait_until_finished()
        self.manager.close()
