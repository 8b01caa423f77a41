"""Orbax checkpoints of the train state plus a small JSON of loop metadata (epoch, ...)."""
import os

import orbax.checkpoint as ocp


class Checkpointer:
    def __init__(self, directory, max_to_keep=2):
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self.manager = ocp.CheckpointManager(os.path.abspath(directory), options=options)

    def save(self, step, state, meta):
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        self.manager.save(step, args=args)

    def steps(self):
        """The steps of the complete checkpoints, increasing."""
        return sorted(self.manager.all_steps())

    def restore_latest(self, like_state):
        """(state, meta) of the newest complete checkpoint, or None. `like_state` gives the
        structure, dtypes and shardings to restore into."""
        step = self.manager.latest_step()
        if step is None:
            return None
        return self.restore(like_state, step)

    def restore(self, like_state, step):
        """(state, meta) of the checkpoint saved at `step` (one of `steps()`)."""
        args = ocp.args.Composite(state=ocp.args.StandardRestore(like_state),
                                  meta=ocp.args.JsonRestore())
        restored = self.manager.restore(step, args=args)
        return restored.state, restored.meta

    def close(self):
        self.manager.wait_until_finished()
        self.manager.close()
