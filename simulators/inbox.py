"""The files through which a worker hands trainings to its warm trainer process.

The worker writes ``request-<n>.json`` (the trainer's command line and the files its output goes
to); the trainer runs it and writes ``reply-<n>.json`` with the exit code the command would have
had. Files rather than pipes: under libEnsemble's MPIExecutor the trainer runs on the node of the
worker's resource set, which the worker reaches only through the shared file system.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

FIRST_POLL_S = 0.01
LONGEST_POLL_S = 0.5
POLL_SHARE = 0.02  # of the time waited so far: a reply is seen at most 2% late


def request_path(inbox: Path, number: int) -> Path:
    return inbox / f"request-{number}.json"


def reply_path(inbox: Path, number: int) -> Path:
    return inbox / f"reply-{number}.json"


def poll_delays() -> Iterator[float]:
    """Waits between looks for a file: a fixed share of the time waited so far, so a quick reply
    is seen at once and a long one little later, and an idle trainer or a long training costs the
    (parallel) file system a stat every ``LONGEST_POLL_S``."""
    started = time.monotonic()
    while True:
        yield min(LONGEST_POLL_S, max(FIRST_POLL_S, POLL_SHARE * (time.monotonic() - started)))
