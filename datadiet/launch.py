"""Local launcher: N processes of one command on this machine, joined by jax.distributed.

  python -m datadiet.launch -n 2 -- python train.py --config=configs/x.py --workdir=DIR

Each child gets DATADIET_COORDINATOR_ADDRESS (127.0.0.1:<a free port>), DATADIET_NUM_PROCESSES
and DATADIET_PROCESS_ID (read by datadiet.distributed.initialize), and, unless set already,
JAX_PLATFORMS=cpu. Their output lines are prefixed with "[<id>] ". SIGINT and SIGTERM are
forwarded to every child. When a child exits non-zero (or is killed) the others get `--grace`
seconds to exit by themselves (JAX's heartbeat usually stops them), then SIGTERM, then SIGKILL;
the launcher's exit code is the first failing child's (128 + signal for a killed one), else 0.
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from datadiet.distributed import ENV_ADDRESS, ENV_COUNT, ENV_ID


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pipe(child_id, stream, out):
    for line in iter(stream.readline, b""):
        out.write(f"[{child_id}] " + line.decode(errors="replace"))
        out.flush()


def _code(returncode):
    return 128 - returncode if returncode < 0 else returncode


def launch(n, command, grace=10.0, port=None, out=None):
    """Runs `command` (a list) as processes 0..n-1; returns the exit code (see module doc)."""
    if n < 1:
        raise ValueError(f"-n {n}: need at least one process")
    out = out or sys.stdout
    address = f"127.0.0.1:{port or free_port()}"
    children, pipes = [], []
    for i in range(n):
        env = dict(os.environ, **{ENV_ADDRESS: address, ENV_COUNT: str(n), ENV_ID: str(i)})
        env.setdefault("JAX_PLATFORMS", "cpu")
        env.setdefault("PYTHONUNBUFFERED", "1")  # lines appear as they are printed
        child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT)
        children.append(child)
        pipes.append(threading.Thread(target=_pipe, args=(i, child.stdout, out), daemon=True))
        pipes[-1].start()

    def forward(signum, frame):
        for c in children:
            if c.poll() is None:
                c.send_signal(signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        failed, deadline = None, None
        while any(c.poll() is None for c in children):
            if failed is None:
                bad = [c for c in children if c.poll() not in (None, 0)]
                if bad:
                    failed, deadline = bad[0], time.time() + grace
                    out.write(f"[launch] process {children.index(failed)} exited with "
                              f"{failed.returncode}; stopping the others in {grace:g} s\n")
            if deadline is not None and time.time() > deadline:
                for i, c in enumerate(children):
                    if c.poll() is None:
                        out.write(f"[launch] terminating process {i}\n")
                        c.terminate()
                deadline = None
                kill_at = time.time() + 5
                while any(c.poll() is None for c in children) and time.time() < kill_at:
                    time.sleep(0.1)
                for c in children:
                    if c.poll() is None:
                        c.kill()
            time.sleep(0.1)
        for t in pipes:
            t.join(timeout=5)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    codes = [_code(c.returncode) for c in children]
    out.write(f"[launch] exit codes {codes}\n")
    if failed is not None:
        return _code(failed.returncode)
    return next((c for c in codes if c), 0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], usage=(
        "python -m datadiet.launch -n N [--grace S] [--port P] -- command ..."))
    parser.add_argument("-n", "--num_processes", type=int, required=True)
    parser.add_argument("--grace", type=float, default=10.0,
                        help="seconds the others get to exit after one fails")
    parser.add_argument("--port", type=int, default=None, help="coordinator port (default: free)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (put it after --)")
    return launch(args.num_processes, command, args.grace, args.port)


if __name__ == "__main__":
    sys.exit(main())
