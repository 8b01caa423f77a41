"""A run's TensorBoard history as TensorBoard shows it, read from a run's tb/ event files with
tensorboardX's own protobufs: scalars by tag and step, where a file's purge marker (a
SessionLog START at step s, written by a resumed run) drops the earlier files' points at
steps >= s."""
import glob
import os
import struct

from tensorboardX.proto import event_pb2


def _records(path):
    with open(path, "rb") as f:
        while True:
            header = f.read(12)  # uint64 length + uint32 crc of the length
            if len(header) < 12:
                return
            (length,) = struct.unpack("<Q", header[:8])
            data = f.read(length)
            f.read(4)  # crc of the data
            if len(data) < length:
                return  # a torn last record
            yield data


def scalars(tb_dir):
    """{tag: {step: value}} over the event files in the order they were written."""
    history = {}
    paths = glob.glob(os.path.join(tb_dir, "events.out.tfevents.*"))
    # events.out.tfevents.<unix seconds>.<host>...: the order the writers were opened in
    for path in sorted(paths, key=lambda p: (int(os.path.basename(p).split(".")[3]), p)):
        for data in _records(path):
            event = event_pb2.Event.FromString(data)
            if event.HasField("session_log") and event.session_log.status == event.session_log.START:
                for points in history.values():
                    for step in [s for s in points if s >= event.step]:
                        del points[step]
            for value in event.summary.value:
                history.setdefault(value.tag, {})[event.step] = value.simple_value
    return history
