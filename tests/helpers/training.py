"""Training points directly, as a worker's trainer does: the point's record first, then the sim dirs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulators.options import TrainingOptions
from simulators.records import write_json
from simulators.run_dir import SimDir
from simulators.training import train_points


def record_points(points: list[dict[str, Any]], paths: list[Path]) -> list[SimDir]:
    """Sim dirs holding the points' records, as the sim function writes them."""
    sim_dirs = [SimDir(Path(path)).make() for path in paths]
    for point, sim_dir in zip(points, sim_dirs, strict=True):
        write_json(sim_dir.point, point)
    return sim_dirs


def train_point(point: dict[str, Any], options: TrainingOptions, path: Path) -> dict[str, Any]:
    return train_points(record_points([point], [path]), options)[0]


def train_together(points: list[dict[str, Any]], options: TrainingOptions, paths: list[Path]) -> list[dict[str, Any]]:
    """One vectorised group (JAX engine)."""
    return train_points(record_points(points, paths), options)
