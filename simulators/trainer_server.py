"""A worker's trainer process: it answers the training requests its worker writes to its inbox.

    python simulators/trainer_server.py INBOX [--idle-exit SECONDS]

libEnsemble's executor starts it once per worker (on the node of the worker's resource set) and
the worker hands it its trainings one after another (``simulators/trainer_client.py``), so Keras
is imported once per trainer, not once per training; a crash, an out-of-memory kill or a timeout
still takes down this process, not its worker.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from simulators.inbox import STOP, TrainingReply, TrainingRequest, poll_delays, reply_path, request_path
from simulators.records import FINISHED, read_json, write_json
from simulators.training import train_points

IDLE_EXIT_S = 900.0  # a trainer with no request for this long exits


def answer(request: TrainingRequest) -> TrainingReply:
    """Train what ``request`` names, its output in its own files, and say how it went."""
    try:
        with output_to(request.stdout, request.stderr):
            return run_request(request)
    except OSError:  # its output files cannot be written: the training cannot be recorded either
        traceback.print_exc()
        return TrainingReply(code=1)


def run_request(request: TrainingRequest) -> TrainingReply:
    """The request's trainings, one line each on stdout; code 0 when every one finished."""
    try:
        results = train_points(request.units, request.options)
    except Exception:  # noqa: BLE001 - a failure outside any one training's record: said on stderr
        traceback.print_exc()
        return TrainingReply(code=1)
    for result in results:
        print(f"{result['status']}: val_loss={result['val_loss']:.4g} val_accuracy={result['val_accuracy']:.4g} "
              f"epochs={result['epochs_completed']} in {result['train_seconds']:.1f}s -> {result['sim_dir']}")
    return TrainingReply(code=0 if all(result["status"] in FINISHED for result in results) else 1, results=results)


def serve(inbox: Path, idle_seconds: float = IDLE_EXIT_S) -> int:
    """Answer the requests in ``inbox`` in turn until one says stop or none comes for
    ``idle_seconds`` (a worker that died where this process cannot see it sends none; a live
    one starts a fresh trainer)."""
    for number in itertools.count(1):
        message = _next_message(request_path(inbox, number), idle_seconds)
        if message is None or message == STOP:
            return 0
        write_json(reply_path(inbox, number), _reply_to(message).model_dump(mode="json"))
        forget_trainings()


def _reply_to(message: Any) -> TrainingReply:
    try:
        request = TrainingRequest.model_validate(message)
    except ValidationError as error:  # a worker of another version, say: said in the trainer's own stderr
        print(f"trainer: cannot read the request: {error}", file=sys.stderr, flush=True)
        return TrainingReply(code=1)
    return answer(request)


def _next_message(path: Path, idle_seconds: float) -> Any:
    delays, deadline = poll_delays(), time.monotonic() + idle_seconds
    while not path.exists():
        if time.monotonic() > deadline:
            return None
        time.sleep(next(delays))
    message = read_json(path)
    path.unlink()
    return message


@contextlib.contextmanager
def output_to(stdout: Path | None, stderr: Path | None):
    """Send this process's stdout and stderr, the backend's native logging included, to files
    (where given)."""
    targets = {fd: path for fd, path in ((1, stdout), (2, stderr)) if path is not None}
    _flush()
    saved = {fd: os.dup(fd) for fd in targets}
    try:
        for fd, path in targets.items():
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(target, fd)
            os.close(target)
        yield
    finally:
        try:
            _flush()
        finally:
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a full or vanished file system: keep going
            stream.flush()


def forget_trainings() -> None:
    """Drop the last training's models and graphs (Keras' clear_session also collects garbage:
    0.3 s on 2 cores), so the next starts as in a fresh process."""
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()


def exit_with_worker(poll_seconds: float = 2.0) -> None:
    """A trainer orphaned by a killed worker stops instead of running on unrecorded: it exits
    when its parent changes (the worker started it) or, on the worker's node, when the worker's
    process is gone (mpiexec started it, so its parent is a launcher's proxy)."""
    worker = os.environ.get("TASKGEN_WORKER_PID")
    if not worker:
        return
    parent = os.getppid()
    on_workers_node = os.environ.get("TASKGEN_WORKER_HOST") == socket.gethostname()

    def worker_gone() -> bool:
        if os.getppid() != parent:
            return True
        if not on_workers_node:
            return False
        try:
            os.kill(int(worker), 0)
        except (ProcessLookupError, PermissionError):  # gone, or its pid reused by another user
            return True
        return False

    def watch() -> None:
        while not worker_gone():
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-worker").start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="trainer_server.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("inbox", type=Path, help="the directory the worker writes its requests to")
    parser.add_argument("--idle-exit", type=float, default=IDLE_EXIT_S, metavar="SECONDS",
                        help="exit when no request came for this long (default %(default)s)")
    args = parser.parse_args(argv)
    exit_with_worker()
    return serve(args.inbox, args.idle_exit)


if __name__ == "__main__":
    sys.exit(main())
