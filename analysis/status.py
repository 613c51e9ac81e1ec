"""``python -m analysis RUN_DIR --status``: how far a (running) ensemble is, read-only.

It reads what the ensemble already writes by rename (the history and the sim records), so it
never sees a half-written file and never changes anything in the run directory.
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path

import pandas as pd

from analysis.loading import UNFINISHED, load_run, read_spec
from analysis.loading import expected_trainings as spec_trainings
from ensembles.ownership import holder_summary
from simulators.records import Status
from simulators.run_dir import RunDir


def _duration(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(max(seconds, 0))))


def status_report(run_dir: Path, now: float | None = None) -> str:
    run_dir = Path(run_dir)
    run = RunDir(run_dir)
    now = time.time() if now is None else now
    frame, notes = load_run(run_dir, allow_empty=True)
    _, spec = read_spec(run_dir)
    expected = spec_trainings(spec)
    adaptive = bool(spec and (spec.get("generator") or {}).get("kind") == "asha")
    finished = frame[frame["finished"]]
    counts = {status.value: int((finished["status"] == status).sum()) for status in Status}
    unfinished = frame[frame["status"] == UNFINISHED]
    started = _started_without_result(run, unfinished)

    total = f"/{expected}" if expected is not None else ""
    lines = [f"{run_dir}: [{len(finished)}{total} trainings finished] "
             + ", ".join(f"{count} {status}" for status, count in counts.items())]
    lines.append(f"  {started} started without a result yet (running, or cut off if the run stopped); "
                 f"{len(unfinished) - started} queued")
    if expected is None:
        why = "asha decides promotions as results come in" if adaptive else "no readable spec.yaml"
        lines.append(f"  total unknown: {why}")
    lines.append(f"  {holder_summary(run)}")  # who runs it: the lock's holder and heartbeat

    begun = run.spec.stat().st_mtime if run.spec.exists() else None
    elapsed = now - begun if begun else None
    if elapsed is not None:
        line = f"  elapsed {_duration(elapsed)} since the run directory was made"
        remaining = (expected - len(finished)) if expected is not None else None
        if remaining and len(finished) and elapsed > 0:
            line += f", ETA {_duration(remaining * elapsed / len(finished))} at the rate so far"
        lines.append(line)
    for path, what in ((run.history, "last saved"), (run.log, "last written")):
        if path.exists():
            lines.append(f"  {path.name} {what} {_duration(now - path.stat().st_mtime)} ago")
    lines += [f"  note: {note}" for note in notes]
    if not finished.empty:
        lines.append("")
        lines.append(_per_task(frame).to_string(index=False))
    if counts["failed"] or counts["timeout"]:
        lines.append("")
        lines.append("Latest errors:")
        failures = finished[finished["status"].isin([Status.FAILED, Status.TIMEOUT])].tail(5)
        for row in failures.itertuples(index=False):
            lines.append(f"  {row.identifier} {row.architecture} {row.task}: {row.status} {row.error}")
    return "\n".join(lines)


def _started_without_result(run: RunDir, unfinished: pd.DataFrame) -> int:
    return sum(1 for identifier in unfinished["identifier"] if run.sim(identifier).point.exists())


def _per_task(frame: pd.DataFrame, most: int = 40) -> pd.DataFrame:
    """Trainings per status for each (task, architecture); per architecture when that is too long."""
    keys = [frame["task"], frame["architecture"]]
    if frame.groupby(["task", "architecture"]).ngroups > most:
        keys = [frame["architecture"]]
    table = pd.crosstab(keys, frame["status"]).reset_index()
    table.columns.name = None
    return table
