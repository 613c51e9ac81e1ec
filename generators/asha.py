"""Asynchronous successive halving (ASHA, Li et al., MLSys 2020) as a libEnsemble generator.

Every configuration starts with ``min_budget`` epochs. Whenever a worker frees up, the
scheduler promotes, if it can, a configuration in the top 1/eta of its rung (within its group,
by default one architecture on one task, so every task gets its own winners) to eta times the
budget; a promoted training continues from its parent's checkpoint (``resume_from``). Otherwise
it starts the next configuration. Configurations that reach the full budget are trained again
with more replicates (from scratch, as the grid would) so finalists can be compared fairly.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np
from libensemble.message_numbers import EVAL_GEN_TAG, FINISHED_PERSISTENT_GEN_TAG
from libensemble.tools.persistent_support import PersistentSupport

from generators.points import make_point, to_array
from generators.settings import GenSettings
from generators.streaming import STOP_TAGS
from hypers.fields import point_from_row
from simulators.records import Status

DEFAULT_GROUP_BY = ("architecture", "dataset", "permute", "pad", "orientation")
# What the generator needs back of each finished training.
RESULT_INPUTS = ["identifier", "status", "val_accuracy", "val_loss"]


def rung_budgets(min_budget: int, max_budget: int, eta: int) -> list[int]:
    """min, min*eta, min*eta^2, ... and the full budget as the last rung."""
    budgets = [min_budget]
    while budgets[-1] * eta < max_budget:
        budgets.append(budgets[-1] * eta)
    if budgets[-1] != max_budget:
        budgets.append(max_budget)
    return budgets


def score(status: str, val_accuracy: float, val_loss: float) -> float:
    """Higher is better: validation accuracy, or -MSE for regression; failures rank last."""
    if status != Status.OK:
        return -math.inf
    if math.isfinite(val_accuracy):
        return val_accuracy
    return -val_loss if math.isfinite(val_loss) else -math.inf


class AshaScheduler:
    def __init__(
        self,
        configurations: Iterator[dict[str, Any]],
        seed: int,
        budgets: list[int],
        eta: int,
        finalist_replicates: int,
        group_by: tuple[str, ...] = DEFAULT_GROUP_BY,
    ):
        self._configurations = configurations
        self.seed = seed
        self.budgets = budgets
        self.eta = eta
        self.finalist_replicates = finalist_replicates
        self.group_by = group_by
        self.issued: dict[str, dict[str, Any]] = {}  # identifier -> point, running or finished
        self.finished: set[str] = set()
        self._rungs: dict[tuple, list[list[tuple[float, str]]]] = {}  # group -> per rung [(score, id)]
        self._promoted: set[str] = set()  # identifiers whose configuration went up a rung
        self._finalists: deque[dict[str, Any]] = deque()

    @property
    def running(self) -> int:
        return len(self.issued) - len(self.finished)

    def _group(self, point: dict[str, Any]) -> tuple:
        return tuple(point[name] for name in self.group_by)

    def _point(self, configuration: dict[str, Any], rung: int, replicate: int = 0, parent: str = "") -> dict[str, Any]:
        return make_point({**configuration, "epochs": self.budgets[rung]}, replicate, self.seed, parent)

    def record(self, identifier: str, status: str, val_accuracy: float, val_loss: float) -> None:
        """A training came back: file its score under its group and rung."""
        point = self.issued[identifier]
        self.finished.add(identifier)
        if point["replicate"] != 0:
            return  # finalists' extra replicates are results, not search
        rung = self.budgets.index(point["epochs"])
        rungs = self._rungs.setdefault(self._group(point), [[] for _ in self.budgets])
        rungs[rung].append((score(status, val_accuracy, val_loss), identifier))
        if rung == len(self.budgets) - 1:
            self._finalists.extend(
                self._point(point, rung, replicate) for replicate in range(1, self.finalist_replicates)
            )
        if point["resume_from"]:
            self._promoted.add(point["resume_from"])

    def _promotion(self) -> dict[str, Any] | None:
        for rungs in self._rungs.values():
            for rung in range(len(self.budgets) - 2, -1, -1):
                ranked = sorted(rungs[rung], reverse=True)
                for value, identifier in ranked[: len(ranked) // self.eta]:
                    if identifier not in self._promoted and math.isfinite(value):
                        self._promoted.add(identifier)
                        return self._point(self.issued[identifier], rung + 1, parent=identifier)
        return None

    def _closing_promotion(self) -> dict[str, Any] | None:
        """Once a group has nothing left running and no new configuration is left to start, the
        1/eta rule may strand it below the full budget (2 configurations in a rung, eta 3:
        none promoted). Then, like synchronous successive halving, its highest rung with no
        promoted member yet sends its best one up, so every group ends with a finalist."""
        busy = {self._group(self.issued[i]) for i in self.issued.keys() - self.finished}
        for group, rungs in self._rungs.items():
            if group in busy:
                continue
            for rung in range(len(self.budgets) - 2, -1, -1):
                if rungs[rung + 1] or not rungs[rung]:
                    continue  # already reached the next rung, or nothing here
                value, identifier = max(rungs[rung])
                if identifier not in self._promoted and math.isfinite(value):
                    self._promoted.add(identifier)
                    return self._point(self.issued[identifier], rung + 1, parent=identifier)
                break
        return None

    def _next_new(self) -> dict[str, Any] | None:
        for configuration in self._configurations:
            point = self._point(configuration, 0)
            if point["identifier"] not in self.issued:
                return point
        return None

    def next_point(self) -> dict[str, Any] | None:
        """Promote if possible, else a finalist replicate, else a new configuration; None: wait."""
        point = (
            self._promotion()
            or (self._finalists.popleft() if self._finalists else None)
            or self._next_new()
            or self._closing_promotion()
        )
        if point is not None and point["identifier"] in self.issued:
            return self.next_point()  # already trained by an earlier run (resume)
        if point is not None:
            self.issued[point["identifier"]] = point
        return point

    def restore(self, points: list[dict[str, Any]], results: list[tuple[str, float, float]]) -> None:
        """Rebuild the state from trainings finished by earlier runs, in the order they ended."""
        for point, result in zip(points, results):
            self.issued[point["identifier"]] = point
            self.record(point["identifier"], *result)


def scheduler_from(settings: GenSettings) -> AshaScheduler:
    asha = settings.asha
    return AshaScheduler(settings.space.configurations(settings.defaults), settings.seed, list(asha.budgets),
                         asha.eta, settings.replicates, asha.group_by)


def restored_scheduler(settings: GenSettings, H: np.ndarray | None) -> AshaScheduler:
    """The scheduler with the trainings of ``H`` (finished by earlier runs) filed in the order
    they ended, as the search left them."""
    scheduler = scheduler_from(settings)
    previous = H[np.argsort(H["sim_ended_time"], kind="stable")] if H is not None and len(H) else []
    scheduler.restore(
        [point_from_row(row) for row in previous],
        [(row["status"].item(), row["val_accuracy"].item(), row["val_loss"].item()) for row in previous],
    )
    return scheduler


def search_is_over(settings: GenSettings, H: np.ndarray) -> bool:
    """Whether the finished trainings in ``H`` leave nothing to hand out: no promotion, finalist
    replicate or unstarted configuration (``--resume`` of a finished run then changes nothing)."""
    return restored_scheduler(settings, H).next_point() is None


def _issue(scheduler: AshaScheduler, count: int) -> list[dict[str, Any]]:
    points = []
    while len(points) < count and (point := scheduler.next_point()) is not None:
        points.append(point)
    return points


def persistent_asha(H, persis_info, gen_specs, libE_info):
    """libEnsemble generator function (needs the allocator's ``active_recv_gen``: it waits for
    results without always answering them with points)."""
    settings: GenSettings = gen_specs["user"]["settings"]
    scheduler = restored_scheduler(settings, H)
    support = PersistentSupport(libE_info, EVAL_GEN_TAG)
    free = settings.initial_batch
    while True:
        points = _issue(scheduler, free)
        if points:
            support.send(to_array(points, gen_specs["out"]))
        if scheduler.running == 0:
            break  # nothing running and nothing left to issue: the search is over
        tag, _, returned = support.recv()
        if tag in STOP_TAGS:
            break
        for row in returned:
            scheduler.record(row["identifier"].item(), row["status"].item(), row["val_accuracy"].item(),
                             row["val_loss"].item())
        free = len(returned)
    return None, persis_info, FINISHED_PERSISTENT_GEN_TAG
