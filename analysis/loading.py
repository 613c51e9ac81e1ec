"""Reading runs into one pandas DataFrame: one row per training, point and result fields.

Sources, merged in this order:

* ``RUN_DIR/history.npy``: libEnsemble's history, saved atomically at the end of a run, every
  ``allocator.save_every`` finished trainings and when a run is stopped; rows not finished yet
  have ``sim_ended == False`` and ``status == ""``.
* the sim records (``sims/<identifier>/``, see ``simulators.run_dir``): a training that finished
  after the last save of a killed or still running ensemble is picked up from its own result.
* ``--csv FILE``: any table with the history's column names (architecture, dataset, ...).

Nothing here writes into a run directory: reading a running ensemble is safe, because every file
read is written by rename (never seen half-written).
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from hypers.fields import point_dtype, point_field
from simulators.records import ADJOINT_FIELDS, RESULT_DTYPE, Status
from simulators.run_dir import RunDir
from simulators.tasks.corruptions import NONE

# Adjoint norms: optional everywhere (older runs and CSVs may lack them).
ADJOINT_COLUMNS = ADJOINT_FIELDS
# libEnsemble's bookkeeping kept in the frame (the rest is dropped).
LIBE_COLUMNS = ("sim_id", "sim_started", "sim_ended", "sim_started_time", "sim_ended_time", "sim_worker")
# The fields that make a task: a dataset and its variation.
TASK_FIELDS = ("dataset", "orientation", "permute", "corruption", "val_corruption")
# Point fields a CSV (or a history from before corruptions) may leave out, with the value that
# means "not varied" (the table's default); a missing val_corruption is the row's corruption.
CSV_DEFAULTS = {name: point_field(name).default
                for name in ("permute", "pad", "orientation", "corruption", "replicate", "resume_from")}
CSV_DEFAULTS["status"] = Status.OK.value
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


def column_kinds() -> dict[str, str]:
    """NumPy kind of every point and result column (U text, b bool, i int, f float): the
    point-field table's and the result record's dtypes, whatever the source (history, JSON, CSV)."""
    return {name: np.dtype(dtype).kind for name, dtype in point_dtype() + RESULT_DTYPE}


def history_frame(H: np.ndarray) -> pd.DataFrame:
    """The history's point, result, adjoint and libEnsemble fields as columns."""
    keep = [name for name in [*column_kinds(), *LIBE_COLUMNS] if name in H.dtype.names]
    frame = pd.DataFrame({name: H[name].tolist() if H.dtype[name].kind == "U" else H[name] for name in keep})
    if "sim_ended" not in frame:
        frame["sim_ended"] = frame["status"] != ""
    return frame


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # a record being replaced right now, or damaged: treated as absent


def _sim_records(run_dir: RunDir, skip: set[str]) -> dict[str, tuple[dict | None, dict | None]]:
    """identifier -> (point, result) records of every sim directory not in ``skip`` (trainings the
    saved history already has finished: their records are not read again)."""
    records: dict[str, tuple[dict | None, dict | None]] = {}
    for sim_dir in run_dir.sim_dirs():
        if sim_dir.name in skip:
            continue
        point, result = _read_json(sim_dir.point), _read_json(sim_dir.result)
        if point is not None or result is not None:
            records[sim_dir.name] = (point, result)
    return records


def _complete(result: dict | None) -> bool:
    return isinstance(result, dict) and result.get("status") in list(Status)


def load_run(run_dir: Path, allow_empty: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """One run directory as a frame (finished and unfinished rows) and notes on what was merged.
    ``allow_empty``: a run directory with a spec.yaml but nothing recorded yet is an empty frame."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise AnalysisError(f"{run_dir} does not exist")
    if run_dir.is_file():
        if run_dir.suffix == ".npy":
            return _finish(history_frame(read_history(run_dir)), run_dir.parent, run_dir.name), []
        raise AnalysisError(f"{run_dir} is a file; give a run directory (with its history), a history .npy "
                            "or --csv FILE")
    notes, run = [], RunDir(run_dir)
    saved = run.history.name
    if run.history.exists():
        frame = history_frame(read_history(run.history))
        done = set(frame.loc[frame["sim_ended"] & frame["status"].isin(list(Status)), "identifier"])
    else:
        frame, done = pd.DataFrame(columns=[*column_kinds(), "sim_ended"]), set()
    records = _sim_records(run, done)
    if not run.history.exists():
        if records:
            notes.append(f"{run_dir}: no {saved} yet (killed before its first save?): "
                         f"read the {run.sims.name}/ records only")
        elif not (allow_empty and run.spec.exists()):
            raise AnalysisError(
                f"{run_dir} has no {saved} and no {run.sims.name}/ records with a result: not a taskgen run directory "
                "(or nothing was saved yet)"
            )
    frame, picked_up = _merge_records(frame, records)
    if picked_up:
        notes.append(f"{run_dir}: {picked_up} trainings finished after the last save of {saved}: read from their "
                     "own result records")
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
        finished = row.get("sim_ended") and row.get("status") in list(Status)
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
    for name, kind in column_kinds().items():
        if name in frame:
            frame[name] = _typed(frame[name], kind)
    _validated_as_seen(frame)
    if "sim_ended" not in frame:
        frame["sim_ended"] = frame["status"].isin(list(Status))
    frame["sim_ended"] = frame["sim_ended"].fillna(False).astype(bool)
    frame["finished"] = frame["sim_ended"] & frame["status"].isin(list(Status))
    frame.loc[~frame["finished"], "status"] = UNFINISHED
    frame["task"] = [task_name(*values) for values in zip(*(frame[name] for name in TASK_FIELDS))]
    frame["source"] = source
    frame["run_dir"] = str(run_dir)
    if "identifier" not in frame:
        frame["identifier"] = [f"row-{number}" for number in range(len(frame))]
    return frame.reset_index(drop=True)


def _validated_as_seen(frame: pd.DataFrame) -> None:
    """Rows without a corruption (a point record from before corruptions) are uncorrupted, and rows
    without a val_corruption were validated on their own corruption."""
    frame["corruption"] = frame["corruption"].replace("", NONE)
    given = frame["val_corruption"] if "val_corruption" in frame else pd.Series("", index=frame.index)
    frame["val_corruption"] = given.where(given != "", frame["corruption"])


def _typed(column: pd.Series, kind: str) -> pd.Series:
    """A column as its field's type: text with "" for missing, booleans read from text, floats,
    and whole numbers (floats while any is missing)."""
    if kind == "U":
        column = column.astype(object)
        return column.where(column.notna(), "").astype(str)
    if kind == "b":
        return column.map(_boolean)
    numbers = pd.to_numeric(column, errors="coerce")
    if kind == "i" and numbers.notna().all():
        return numbers.astype("int64")
    return numbers.astype(float)


def _boolean(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "t")
    return bool(value) if not (isinstance(value, float) and math.isnan(value)) else False


def read_spec(run_dir: Path) -> tuple[str | None, dict | None]:
    path = RunDir(Path(run_dir)).spec
    if not path.exists():
        return None, None
    text = path.read_text(errors="replace")
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError:
        return text, None
    return text, spec if isinstance(spec, dict) else None


def expected_trainings(spec: dict | None) -> int | None:
    """The trainings a run's spec.yaml describes, counted as the run counts them; None for asha
    (it depends on the results) or a spec this version cannot read."""
    from ensembles.schema import EnsembleSpec  # here: reading runs must not wait for the spec's imports

    try:
        study = EnsembleSpec.model_validate(spec)
    except ValueError:  # pydantic's ValidationError: a spec of another version, or no spec
        return None
    return None if study.adaptive else study.trainings_to_run()


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
        epochs = _read_json(RunDir(Path(row.run_dir)).sim(row.identifier).history)
        if not isinstance(epochs, list):
            continue
        for epoch in epochs:
            if isinstance(epoch, dict) and "epoch" in epoch:
                records.append({"identifier": row.identifier, "architecture": row.architecture, "task": row.task,
                                **epoch})
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
    counts = {name.value: int((status == name).sum()) for name in Status}
    counts["finished"] = int(runs.frame["finished"].sum())
    counts[UNFINISHED] = int((status == UNFINISHED).sum())
    counts["not_started"] = max(runs.expected - len(runs.frame), 0) if runs.expected is not None else 0
    counts["missing"] = counts[UNFINISHED] + counts["not_started"]
    counts["rows"] = len(runs.frame)
    return counts
