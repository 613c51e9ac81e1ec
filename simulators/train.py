"""The trainer as a command: one point in, its records in a directory out.

    python -m simulators.train --architecture lstm --dataset digits --epochs 2 --out DIR
    python -m simulators.train --point point.json --options options.json --out DIR
    python -m simulators.train --group group.json --options options.json   # vectorised, JAX engine
    python -m simulators.train --serve INBOX   # a warm trainer: runs such commands from INBOX

Under ``isolation: process`` libEnsemble's executor starts it once per worker with ``--serve``
and the worker hands it its trainings one after another (``simulators/inbox.py``), so Keras is
imported once per trainer, not once per training; a crash, an out-of-memory kill or a timeout
still takes down that trainer, not its worker.
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

from hypers.fields import DEFAULTS, validate_choice_value, with_seen_validation
from simulators.inbox import poll_delays, reply_path, request_path
from simulators.options import TrainingOptions
from simulators.records import read_json, write_json

IDLE_EXIT_S = 900.0  # a warm trainer with no request for this long exits


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m simulators.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--point", type=Path, help="JSON file with the point's fields")
    parser.add_argument("--options", type=Path, help="JSON file with the training options")
    parser.add_argument("--group", type=Path,
                        help="JSON list of sim dirs, each with its point.json: one shape, trained together")
    parser.add_argument("--out", type=Path, help="directory for point/history/result JSON (not with --group)")
    parser.add_argument("--serve", type=Path, metavar="INBOX",
                        help="stay up and run the commands a worker writes to INBOX, one after another")
    parser.add_argument("--idle-exit", type=float, default=IDLE_EXIT_S, metavar="SECONDS",
                        help="with --serve: exit when no command came for this long")
    parser.add_argument("--seed", type=int, default=0)
    for name, default in DEFAULTS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None, help=f"default {default}")
    parser.add_argument("--architecture")
    parser.add_argument("--dataset")
    return parser.parse_args(argv)


def _point_from_flags(args: argparse.Namespace) -> dict:
    if not args.architecture or not args.dataset:
        raise SystemExit("error: give --point FILE, or both --architecture and --dataset")
    point = {"seed": args.seed, "replicate": 0, "identifier": "standalone"}
    for name in ("architecture", "dataset", *DEFAULTS):
        raw = getattr(args, name)
        value = DEFAULTS[name] if raw is None else _typed(name, raw)
        try:
            point[name] = validate_choice_value(name, value)
        except ValueError as error:
            raise SystemExit(f"error: --{name.replace('_', '-')}: {error}") from None
    return with_seen_validation(point, {name: value for name, value in vars(args).items() if value is not None})


def _typed(name: str, raw: str):
    if name == "permute":
        return raw.lower() in ("1", "true", "yes")
    if name in ("pad", "hidden_dim", "epochs", "batch_size"):
        return int(raw)
    return raw


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


def train(args: argparse.Namespace) -> int:
    """Train what the command line names; the exit code says whether every training finished."""
    if bool(args.group) == bool(args.out):
        raise SystemExit("error: give --out DIR for one training, or --group FILE for a group")
    options = TrainingOptions.model_validate(read_json(args.options) if args.options else {})

    from simulators.training import run_training, run_training_group

    if args.group:
        sim_dirs = [Path(sim_dir) for sim_dir in read_json(args.group)]
        results = run_training_group([read_json(sim_dir / "point.json") for sim_dir in sim_dirs], options, sim_dirs)
    else:
        sim_dirs = [args.out]
        results = [run_training(read_json(args.point) if args.point else _point_from_flags(args), options, args.out)]
    for result, sim_dir in zip(results, sim_dirs):
        print(f"{result['status']}: val_loss={result['val_loss']:.4g} val_accuracy={result['val_accuracy']:.4g} "
              f"epochs={result['epochs_completed']} in {result['train_seconds']:.1f}s -> {sim_dir}")
    return 0 if all(result["status"] in ("ok", "diverged") for result in results) else 1


def serve(inbox: Path, idle_seconds: float = IDLE_EXIT_S) -> int:
    """Run the commands a worker writes to ``inbox`` in turn, each with its own stdout and stderr
    files, until a request says stop or none comes for ``idle_seconds`` (a worker that died
    where this process cannot see it sends none; a live one starts a fresh trainer)."""
    for number in itertools.count(1):
        request = _next_request(request_path(inbox, number), idle_seconds)
        if request is None or request.get("stop"):
            return 0
        try:
            with output_to(Path(request["stdout"]), Path(request["stderr"])):
                code = _exit_code(request["argv"])
        except OSError:  # its output files cannot be written: the training cannot be recorded either
            traceback.print_exc()
            code = 1
        write_json(reply_path(inbox, number), {"code": code})
        forget_trainings()


def _next_request(path: Path, idle_seconds: float) -> dict | None:
    delays, deadline = poll_delays(), time.monotonic() + idle_seconds
    while not path.exists():
        if time.monotonic() > deadline:
            return None
        time.sleep(next(delays))
    request = read_json(path)
    path.unlink()
    return request


def _exit_code(argv: list[str]) -> int:
    """What ``python -m simulators.train ARGV`` would have exited with."""
    try:
        return train(_parse(argv))
    except SystemExit as stop:
        if isinstance(stop.code, str):
            print(stop.code, file=sys.stderr)
            return 1
        return int(stop.code or 0) & 0xFF
    except Exception:
        traceback.print_exc()
        return 1


@contextlib.contextmanager
def output_to(stdout: Path, stderr: Path):
    """Send this process's stdout and stderr, the backend's native logging included, to files."""
    _flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    try:
        for fd, path in ((1, stdout), (2, stderr)):
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


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    exit_with_worker()
    return serve(args.serve, args.idle_exit) if args.serve else train(args)


if __name__ == "__main__":
    sys.exit(main())
