"""Reading runs into one pandas DataFrame: one row per training, point and result fields.

Sources, merged in this order:

* ``RUN_DIR/history.npy``: libEnsemble's history, saved atomically at the end of a run, every
  ``allocator.save_every`` finished trainings and when a run is stopped; rows not finished yet
  have ``sim_ended == False`` and ``status == ""``.
* ``RUN_DIR/sims/<identifier>/result.json`` (and ``point.json``): a training that finished after
  the last save of a killed or still running ensemble is picked up from its own record.
* ``--csv FILE``: any table with the history's column names (architecture, dataset, ...).

Nothing here writes into a run directory: reading a running ensemble is safe, because every file
read is written by rename (never seen half-written).
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from hypers.fields import POINT_DTYPE
from simulators.records import ADJOINT_FIELDS, RESULT_DTYPE, STATUSES
from simulators.tasks.corruptions import NONE

HISTORY_FILE = "history.npy"
SPEC_FILE = "spec.yaml"
SIMS_DIR = "sims"

POINT_COLUMNS = tuple(name for name, _ in POINT_DTYPE)
RESULT_COLUMNS = tuple(name for name, _ in RESULT_DTYPE)
# Adjoint norms: optional everywhere (older runs and CSVs may lack them).
ADJOINT_COLUMNS = ADJOINT_FIELDS
# libEnsemble's bookkeeping kept in the frame (the rest is dropped).
LIBE_COLUMNS = ("sim_id", "sim_started", "sim_ended", "sim_started_time", "sim_ended_time", "sim_worker")
# The fields that make a task: a dataset and its variation.
TASK_FIELDS = ("dataset", "orientation", "permute", "corruption", "val_corruption")
# Point fields a CSV (or a history from before corruptions) may leave out, with the value that means
# "not varied"; a missing val_corruption is the row's corruption.
CSV_DEFAULTS = {"permute": False, "pad": 0, "orientation": "none", "corruption": NONE, "status": "ok", "replicate": 0,
                "resume_from": ""}
# Status of a row that has no result (yet): running, queued or cut off by a kill.
UNFINISHED = "unfinished"


class AnalysisError(Exception):
    """A problem with the input that the user can fix; the command prints it without a traceback."""


@dataclass
class Runs:
    """Every training of the runs read, plus what the report needs to say about where they came from."""

    frame: pd.DataFrame
    sources: list[Path]
    specs: dict[str, str] = field(default_factory=dict)  # source name -> spec.yaml text
    expected: int | None = None  # trainings the specs describe (grid / random); None when unknown
    adaptive: bool = False  # an asha run: several rows per configuration, one per rung
    notes: list[str] = field(default_factory=list)


def task_name(dataset: str, orientation: str, permute: bool, corruption: str = NONE, val_corruption: str = NONE) -> str:
    """``digits-none-False``; corrupted: ``digits-none-False-rotate`` (validated on the corruption it
    trained on) or ``digits-none-False-rotate@translate`` (trained on rotate, validated on held-out translate)."""
    base = f"{dataset}-{orientation}-{bool(permute)}"
    if corruption == NONE and val_corruption == NONE:
        return base
    return f"{base}-{corruption}" + ("" if val_corruption == corruption else f"@{val_corruption}")


def read_history(path: Path) -> np.ndarray:
    """``history.npy`` as a structured array, or AnalysisError saying what is wrong with the file."""
    if not path.exists():
        raise AnalysisError(f"{path} does not exist")
    if path.stat().st_size == 0:
        raise AnalysisError(f"{path} is empty (0 bytes): not a saved history")
    try:
        H = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise AnalysisError(f"{path} cannot be read as a NumPy history ({type(error).__name__}: {error})") from None
    if isinstance(H, np.lib.npyio.NpzFile) or H.dtype.names is None:
        raise AnalysisError(f"{path} is not a structured history array (no named fields)")
    missing = [name for name in ("architecture", "dataset", "status") if name not in H.dtype.names]
    if missing:
        raise AnalysisError(f"{path} lacks the fields {missing}: it is not a taskgen history")
    return H


def history_frame(H: np.ndarray) -> pd.DataFrame:
    """The history's point, result, adjoint and libEnsemble fields as columns."""
    keep = [name for name in dict.fromkeys(POINT_COLUMNS + RESULT_COLUMNS + LIBE_COLUMNS) if name in H.dtype.names]
    frame = pd.DataFrame({name: H[name].tolist() if H.dtype[name].kind == "U" else H[name] for name in keep})
    if "sim_ended" not in frame:
        frame["sim_ended"] = frame["status"] != ""
    return frame


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # a record being replaced right now, or damaged: treated as absent


def _sim_records(run_dir: Path, skip: set[str]) -> dict[str, tuple[dict | None, dict | None]]:
    """identifier -> (point.json, result.json) of every sim directory not in ``skip`` (trainings the
    saved history already has finished: their records are not read again)."""
    records: dict[str, tuple[dict | None, dict | None]] = {}
    sims = run_dir / SIMS_DIR
    if not sims.is_dir():
        return records
    with os.scandir(sims) as entries:
        for entry in entries:
            if entry.name in skip or not entry.is_dir():
                continue
            sim_dir = Path(entry.path)
            point, result = _read_json(sim_dir / "point.json"), _read_json(sim_dir / "result.json")
            if point is not None or result is not None:
                records[entry.name] = (point, result)
    return records


def _complete(result: dict | None) -> bool:
    return isinstance(result, dict) and result.get("status") in STATUSES


def load_run(run_dir: Path, allow_empty: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """One run directory as a frame (finished and unfinished rows) and notes on what was merged.
    ``allow_empty``: a run directory with a spec.yaml but nothing recorded yet is an empty frame."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise AnalysisError(f"{run_dir} does not exist")
    if run_dir.is_file():
        if run_dir.suffix == ".npy":
            return _finish(history_frame(read_history(run_dir)), run_dir.parent, run_dir.name), []
        raise AnalysisError(f"{run_dir} is a file; give a run directory (with history.npy), a history .npy or --csv FILE")
    notes = []
    history_path = run_dir / HISTORY_FILE
    if history_path.exists():
        frame = history_frame(read_history(history_path))
        done = set(frame.loc[frame["sim_ended"] & frame["status"].isin(STATUSES), "identifier"])
    else:
        frame, done = pd.DataFrame(columns=[*POINT_COLUMNS, *RESULT_COLUMNS, "sim_ended"]), set()
    records = _sim_records(run_dir, done)
    if not history_path.exists():
        if records:
            notes.append(f"{run_dir}: no {HISTORY_FILE} yet (killed before its first save?): read the sims/ records only")
        elif not (allow_empty and (run_dir / SPEC_FILE).exists()):
            raise AnalysisError(
                f"{run_dir} has no {HISTORY_FILE} and no sims/*/result.json: not a taskgen run directory "
                "(or nothing was saved yet)"
            )
    frame, picked_up = _merge_records(frame, records)
    if picked_up:
        notes.append(
            f"{run_dir}: {picked_up} trainings finished after the last save of {HISTORY_FILE}: read from their result.json"
        )
    return _finish(frame, run_dir, run_dir.name), notes


def _merge_records(frame: pd.DataFrame, records: dict) -> tuple[pd.DataFrame, int]:
    """Fill unfinished history rows from result.json; add sims the saved history does not know."""
    picked_up = 0
    rows = frame.to_dict("records")
    known = {row["identifier"]: row for row in rows}
    for identifier, (point, result) in records.items():
        row = known.get(identifier)
        if row is None:
            if point is None:
                continue
            row = {**point, "status": "", "sim_ended": False}
            rows.append(row)
            known[identifier] = row
        finished = row.get("sim_ended") and row.get("status") in STATUSES
        if not finished and _complete(result):
            row.update({name: value for name, value in result.items() if name != "sim_dir"})
            row["sim_ended"] = True
            picked_up += 1
    merged = pd.DataFrame(rows) if rows else frame
    return merged, picked_up


def _finish(frame: pd.DataFrame, run_dir: Path, source: str) -> pd.DataFrame:
    """Types, derived columns and the row's sim directory."""
    frame = frame.copy()
    for name, default in CSV_DEFAULTS.items():
        if name not in frame:
            frame[name] = default
    if "val_corruption" not in frame:
        frame["val_corruption"] = ""
    for name in ("architecture", "dataset", "orientation", "corruption", "val_corruption", "status", "identifier",
                 "resume_from", "error"):
        if name in frame:
            column = frame[name].astype(object)
            frame[name] = column.where(column.notna(), "").astype(str)
    frame["corruption"] = frame["corruption"].replace("", NONE)
    frame["val_corruption"] = frame["val_corruption"].where(frame["val_corruption"] != "", frame["corruption"])
    frame["permute"] = frame["permute"].map(_boolean)
    if "sim_ended" not in frame:
        frame["sim_ended"] = frame["status"].isin(STATUSES)
    frame["sim_ended"] = frame["sim_ended"].fillna(False).astype(bool)
    frame["finished"] = frame["sim_ended"] & frame["status"].isin(STATUSES)
    frame.loc[~frame["finished"], "status"] = UNFINISHED
    for name in dict.fromkeys(("loss", "accuracy", "val_loss", "val_accuracy", "best_val_accuracy", "learning_rate",
                               "train_seconds") + ADJOINT_COLUMNS):
        if name in frame:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    for name in ("pad", "hidden_dim", "epochs", "batch_size", "seed", "replicate", "epochs_completed", "n_params"):
        if name in frame:
            column = pd.to_numeric(frame[name], errors="coerce")
            frame[name] = column.astype("int64") if column.notna().all() else column.astype(float)
    frame["task"] = [task_name(*values) for values in zip(*(frame[name] for name in TASK_FIELDS))]
    frame["source"] = source
    frame["run_dir"] = str(run_dir)
    if "identifier" not in frame:
        frame["identifier"] = [f"row-{number}" for number in range(len(frame))]
    return frame.reset_index(drop=True)


def _boolean(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "t")
    return bool(value) if not (isinstance(value, float) and math.isnan(value)) else False


def read_spec(run_dir: Path) -> tuple[str | None, dict | None]:
    path = Path(run_dir) / SPEC_FILE
    if not path.exists():
        return None, None
    text = path.read_text()
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError:
        return text, None
    return text, spec if isinstance(spec, dict) else None


def expected_trainings(spec: dict | None) -> int | None:
    """Trainings a grid or random spec describes; None for asha (it depends on results) or unknown."""
    if not spec or not isinstance(spec.get("space"), dict):
        return None
    generator = spec.get("generator") or {}
    kind = generator.get("kind", "grid")
    try:
        from hypers.space import SearchSpace

        space = SearchSpace.model_validate(spec["space"])
    except Exception:  # noqa: BLE001 - a spec this version cannot read: the count is unknown, not fatal
        return None
    replicates = generator.get("replicates") or space.replicates
    if kind == "random":
        return int(generator["samples"]) * replicates if generator.get("samples") else None
    if kind == "grid":
        total = space.count_points(replicates)
        sim_max = (spec.get("exit_criteria") or {}).get("sim_max")
        return min(total, sim_max) if sim_max else total
    return None


def load_runs(paths: list[Path]) -> Runs:
    """Several run directories as one frame; a training present in several (same identifier) counts once."""
    if not paths:
        raise AnalysisError("give at least one RUN_DIR, or --csv FILE")
    frames, notes, specs = [], [], {}
    expected: int | None = 0
    adaptive = False
    specs_seen: set[str | None] = set()
    for path in paths:
        frame, run_notes = load_run(Path(path))
        frames.append(frame)
        notes.extend(run_notes)
        text, spec = read_spec(Path(path) if Path(path).is_dir() else Path(path).parent)
        if text is not None:
            specs[str(path)] = text
        adaptive |= bool(spec and (spec.get("generator") or {}).get("kind") == "asha")
        count = expected_trainings(spec)
        if text is not None and text in specs_seen:
            continue  # parts of one study (the same spec): its trainings counted once
        specs_seen.add(text)
        expected = None if count is None or expected is None else expected + count
    frame = pd.concat(frames, ignore_index=True)
    frame, duplicates = _drop_duplicates(frame)
    if duplicates:
        notes.append(f"{duplicates} trainings appear in more than one run (same identifier): counted once")
    adaptive |= bool((frame["resume_from"] != "").any())
    if frame.empty:
        raise AnalysisError(f"{', '.join(map(str, paths))}: no trainings recorded yet")
    return Runs(frame, [Path(p) for p in paths], specs, expected, adaptive, notes)


def _drop_duplicates(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    if frame.empty:
        return frame, 0
    ordered = frame.sort_values("finished", ascending=False, kind="stable")
    kept = ordered.drop_duplicates("identifier", keep="first").sort_index()
    return kept.reset_index(drop=True), len(frame) - len(kept)


def load_csv(path: Path) -> Runs:
    """A table with the history's column names; ``architecture`` and ``dataset`` are required."""
    path = Path(path)
    if not path.exists():
        raise AnalysisError(f"{path} does not exist")
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise AnalysisError(f"{path} is empty: no header and no rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        raise AnalysisError(f"{path} cannot be read as CSV ({type(error).__name__}: {error})") from None
    missing = [name for name in ("architecture", "dataset") if name not in frame]
    if missing:
        raise AnalysisError(f"{path} lacks the columns {missing}; it has {list(frame.columns)}")
    if frame.empty:
        raise AnalysisError(f"{path} has a header but no rows")
    frame["sim_ended"] = True
    notes = [f"read {len(frame)} rows from {path}"]
    absent = [name for name in ("learning_rate", "hidden_dim", "epochs") if name not in frame]
    if absent:
        notes.append(f"{path.name} has no {', '.join(absent)} column: best hyperparameters are chosen without them")
    return Runs(_finish(frame, path.parent, path.name), [path], notes=notes)


def resolve_chains(frame: pd.DataFrame) -> pd.Series:
    """For every row the identifier of the first training of its chain (asha: rung 0; ``resume_from``
    names the parent a promoted training continued). Rows of a grid are their own chain."""
    parent = dict(zip(frame["identifier"], frame["resume_from"]))
    roots = []
    for identifier in frame["identifier"]:
        seen, current = set(), identifier
        while parent.get(current) and current not in seen:
            seen.add(current)
            current = parent[current]
        roots.append(current)
    return pd.Series(roots, index=frame.index, name="chain")


def final_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per chain: the one with the most epochs (asha: the highest rung a configuration
    reached; its epochs include its parents', since a promotion continues from the checkpoint).
    Grid rows are unchanged. Only finished rows take part."""
    finished = frame[frame["finished"]].copy()
    finished["chain"] = resolve_chains(frame).loc[finished.index]
    finished = finished.sort_values(["chain", "epochs"] if "epochs" in finished else ["chain"], kind="stable")
    return finished.drop_duplicates("chain", keep="last").sort_index()


def epoch_records(frame: pd.DataFrame) -> pd.DataFrame:
    """The per-epoch records (``sims/<identifier>/history.json``) of the rows given, one row per
    (training, epoch), with the training's architecture and task."""
    records = []
    for row in frame.itertuples(index=False):
        run_dir = Path(row.run_dir)
        epochs = _read_json(run_dir / SIMS_DIR / row.identifier / "history.json")
        if not isinstance(epochs, list):
            continue
        for epoch in epochs:
            if isinstance(epoch, dict) and "epoch" in epoch:
                records.append({"identifier": row.identifier, "architecture": row.architecture, "task": row.task, **epoch})
    if not records:
        return pd.DataFrame(columns=["identifier", "architecture", "task", "epoch"])
    table = pd.DataFrame(records)
    for name in table.columns:
        if name not in ("identifier", "architecture", "task"):
            table[name] = pd.to_numeric(table[name], errors="coerce")
    return table


def status_counts(runs: Runs) -> dict[str, int]:
    """Trainings finished (ok / diverged / failed / timeout), unfinished (in the history, no result)
    and not started (the spec's count minus the rows present; grid and random runs only)."""
    status = runs.frame["status"]
    counts = {name: int((status == name).sum()) for name in STATUSES}
    counts["finished"] = int(runs.frame["finished"].sum())
    counts[UNFINISHED] = int((status == UNFINISHED).sum())
    counts["not_started"] = max(runs.expected - len(runs.frame), 0) if runs.expected is not None else 0
    counts["missing"] = counts[UNFINISHED] + counts["not_started"]
    counts["rows"] = len(runs.frame)
    return counts
