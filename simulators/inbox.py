"""What a worker and its warm trainer process say to each other, and the files they say it through.

The worker writes ``request-<n>.json``: a ``TrainingRequest`` (the sim dirs to train, each with
its point.json, and the training options), or ``{"stop": true}``. The trainer trains them and
writes ``reply-<n>.json``: a ``TrainingReply`` with an exit code and the results. Files rather
than pipes: under libEnsemble's MPIExecutor the trainer runs on the node of the worker's resource
set, which the worker reaches only through the shared file system.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from simulators.options import TrainingOptions
from simulators.run_dir import SimDir

FIRST_POLL_S = 0.01
LONGEST_POLL_S = 0.5
POLL_SHARE = 0.02  # of the time waited so far: a reply is seen at most 2% late
STOP = {"stop": True}


class TrainingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sim_dirs: list[Path] = Field(description="Each holds its point.json; several: one vectorised group of one shape.")
    options: TrainingOptions = Field(description="How to train them.")
    stdout: Path | None = Field(None, description="Where the training's output goes; None: the trainer's own.")
    stderr: Path | None = Field(None, description="Where its errors go; None: the trainer's own.")

    @property
    def units(self) -> list[SimDir]:
        return [SimDir(path) for path in self.sim_dirs]


class TrainingReply(BaseModel):
    # results hold NaN for metrics a training never reached: JSON's NaN, as the result records have
    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="constants")

    code: int = Field(description="0 when every training finished (ok or diverged), else 1.")
    results: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Each sim dir's result, as recorded; none when the request failed as a whole.")


def trainer_output(inbox: Path) -> tuple[Path, Path]:
    """The trainer's own stdout and stderr: what it says outside any request (a failed start)."""
    return inbox / "trainer.out", inbox / "trainer.err"


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
