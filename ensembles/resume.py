"""Continuing a study: what earlier runs finished, handed to libEnsemble as its H0.

Finished rows are kept exactly as they were, libEnsemble's own fields (when they started and
ended, on which worker) included; rows that were running or never started are left out, so the
generator (which skips finished identifiers) hands them out again under the same identifiers,
and the trainer picks up their checkpoints.
"""

from __future__ import annotations

import numpy as np
from libensemble.tools.fields_keys import libE_fields
from numpy.lib import recfunctions

from hypers.fields import neutral_values, point_dtype
from simulators.records import RESULT_DTYPE
from simulators.run_dir import RunDir


class ResumeError(ValueError):
    pass


def history_dtype() -> list[tuple]:
    """The fields every taskgen history has: the point's and the result's."""
    return point_dtype() + RESULT_DTYPE


def finished_rows(run_dir: RunDir) -> np.ndarray:
    """The finished trainings recorded in the run's history (none if it was never saved)."""
    path = run_dir.history
    if not path.exists():
        return np.zeros(0, dtype=history_dtype())
    try:
        H = np.load(path)
    except (ValueError, OSError) as error:
        raise ResumeError(f"{path} cannot be read ({error}); it is not a taskgen history") from None
    H = with_later_fields(H)
    missing = {name for name, _ in history_dtype()} - set(H.dtype.names or ())
    if missing:
        raise ResumeError(f"{path} lacks the fields {sorted(missing)}: it is not a taskgen history")
    return H[H["sim_ended"] & (H["status"] != "")]


def with_later_fields(H: np.ndarray) -> np.ndarray:
    """A history saved before the neutral point fields existed, with them at their neutral values
    (which is what its trainings were: uncorrupted)."""
    neutral = neutral_values()
    absent = [name for name in neutral if H.dtype.names is not None and name not in H.dtype.names]
    if not absent:
        return H
    kinds = dict(point_dtype())
    values = [np.full(len(H), neutral[name], dtype=kinds[name]) for name in absent]
    return recfunctions.append_fields(H, absent, values, usemask=False)


def as_initial_history(rows: np.ndarray) -> np.ndarray:
    """Rows in the shape libEnsemble takes as H0, every field of ``rows`` kept as it was, so a
    finished training's row is the same after a resume. What must change: ``sim_id`` is the
    row's index in H (libEnsemble looks rows up by it), and ``gen_informed`` is True because the
    new run's generator gets these rows when it starts (told again, ASHA would rank them twice);
    libEnsemble stamps that moment in ``gen_informed_time``."""
    own = [(name, rows.dtype[name]) for name in rows.dtype.names]
    missing = [field for field in history_dtype() + libE_fields if field[0] not in rows.dtype.names]
    H0 = np.zeros(len(rows), dtype=own + missing)
    for name in rows.dtype.names:
        H0[name] = rows[name]
    H0["sim_id"] = np.arange(len(rows))
    H0["sim_started"] = H0["sim_ended"] = H0["gen_informed"] = True
    return H0
