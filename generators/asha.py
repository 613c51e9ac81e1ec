"""Asynchronous successive halving (ASHA, Li et al., MLSys 2020) as a libEnsemble generator.

Every configuration starts with ``min_budget`` epochs. Whenever a worker frees up, the
scheduler promotes, if it can, a configuration in the top 1/eta of its rung (within its group,
by default one architecture on one task, so every task gets its own winners) to eta times the
budget; a promoted training continues from its parent's checkpoint (``resume_from``). Otherwise
it starts the next configuration. Configurations that go to the full budget are trained again
with more replicates (from scratch, as the grid would) so finalists can be compared fairly. A
finalist's own chain is its replicate 0: a chain keeps its first rung's seed and, the learning rate
held constant (asha takes no schedule), ends as a full-budget training of that seed would.
``replicate_finalists: all`` starts the replicates as soon as their configuration is sent to the
full budget, alongside it, so the search's chain of trainings is no longer than that
configuration's own; ``leader`` waits until a group's chains have ended, then replicates only its
leader by mean full-budget score, and in turn any finalist that overtakes it (racing, as SMAC's
intensification): the configuration a group ends with has every replicate, the others one.
A configuration any of whose trainings diverged ranks last in every rung, as the grid's mean of its
replicates would rank it: the place it held in a rung's top 1/eta goes to the next configuration,
so a finalist whose replicate diverges is replaced, not chosen.
"""

from __future__ import annotations

import math
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, get_args

import numpy as np
from libensemble.message_numbers import EVAL_GEN_TAG, FINISHED_PERSISTENT_GEN_TAG
from libensemble.tools.persistent_support import PersistentSupport

from generators.grouping import SimsInFlight
from generators.points import identify, make_point, to_array
from generators.settings import GenSettings, ReplicateFinalists
from generators.streaming import STOP_TAGS
from hypers.fields import point_from_row
from simulators.records import Status
from simulators.training import shape_of

DEFAULT_GROUP_BY = ("architecture", "dataset", "permute", "pad", "orientation", "corruption", "val_corruption")
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


Accept = Callable[[dict[str, Any]], bool]
LOOKAHEAD = 64  # new configurations pulled ahead, at most, to fill a group of one shape


def _any(point: dict[str, Any]) -> bool:
    return True


class AshaScheduler:
    """ASHA's bookkeeping: points issued and finished, each competition group's rungs per
    bracket, promotions made, finalists' replicates waiting. Hyperband's brackets (``brackets``
    > 1) start each configuration in the bracket a hash of its identity picks (about 1/brackets
    of them each), whose first rung is the bracket's budget: later first rungs see late learners
    before any is pruned. ``replicate_finalists``: which finalists get their further replicates
    (``ReplicateFinalists``)."""

    def __init__(self, configurations: Iterator[dict[str, Any]], seed: int, budgets: list[int], eta: int,
                 finalist_replicates: int, group_by: tuple[str, ...] = DEFAULT_GROUP_BY, brackets: int = 1,
                 replicate_finalists: ReplicateFinalists = "all"):
        if replicate_finalists not in get_args(ReplicateFinalists):
            raise ValueError(f"replicate_finalists: {replicate_finalists!r}; allowed: "
                             f"{', '.join(get_args(ReplicateFinalists))}")
        self._configurations = configurations
        self.seed = seed
        self.budgets = budgets
        self.eta = eta
        self.finalist_replicates = finalist_replicates
        self.group_by = group_by
        self.brackets = brackets
        self.replicate_finalists = replicate_finalists
        self.issued: dict[str, dict[str, Any]] = {}  # identifier -> point, running or finished
        self.finished: set[str] = set()
        self._unfinished: set[str] = set()  # issued, not finished: kept, as read at every point handed out
        self._rungs: dict[tuple, list[list[tuple[float, str]]]] = {}  # (group, bracket) -> per rung [(score, id)]
        self._promoted: set[str] = set()  # identifiers whose configuration went up a rung
        self._configuration_of: dict[str, str] = {}  # identifier -> its configuration's (any rung, replicate)
        self._diverged: set[str] = set()  # configurations one of whose trainings diverged
        self._finalists: deque[dict[str, Any]] = deque()
        self._ahead: deque[dict[str, Any]] = deque()  # new points pulled ahead while filling a group
        self._exhausted = False  # every configuration of the space has been pulled
        # replicate_finalists leader: per group, each finalist's full-budget point and scores so far
        self._full: dict[tuple, dict[str, tuple[dict[str, Any], list[float]]]] = {}

    @property
    def running(self) -> int:
        return len(self._unfinished)

    def _competition(self, point: dict[str, Any]) -> tuple:
        """(competition group, bracket): a bracket is the rung its configuration started at."""
        root = point
        while root["resume_from"]:
            root = self.issued[root["resume_from"]]
        return tuple(point[name] for name in self.group_by), self.budgets.index(root["epochs"])

    def _point(self, configuration: dict[str, Any], rung: int, replicate: int = 0, parent: str = "") -> dict[str, Any]:
        return make_point({**configuration, "epochs": self.budgets[rung]}, replicate, self.seed, parent)

    def record(self, identifier: str, status: str, val_accuracy: float, val_loss: float) -> None:
        """A training came back: file its score under its competition and rung."""
        point = self.issued[identifier]
        self.finished.add(identifier)
        self._unfinished.discard(identifier)
        if status == Status.DIVERGED:
            self._rule_out(self._configuration_of[identifier])
        if self.replicate_finalists == "leader" and point["epochs"] == self.budgets[-1]:
            self._race(point, score(status, val_accuracy, val_loss))
        if point["replicate"] != 0:
            return  # finalists' extra replicates are results, not search
        rung = self.budgets.index(point["epochs"])
        rungs = self._rungs.setdefault(self._competition(point), [[] for _ in self.budgets])
        rungs[rung].append((score(status, val_accuracy, val_loss), identifier))
        if point["resume_from"]:
            self._promoted.add(point["resume_from"])

    def _issue(self, point: dict[str, Any]) -> None:
        """File ``point`` as handed out; with ``replicate_finalists: all``, a configuration's first
        point at the full budget queues its finalist replicates."""
        self.issued[point["identifier"]] = point
        self._unfinished.add(point["identifier"])
        self._configuration_of[point["identifier"]] = self._configuration(point)
        if self.replicate_finalists == "all" and point["replicate"] == 0 and point["epochs"] == self.budgets[-1]:
            self._queue_replicates(point)

    def _queue_replicates(self, point: dict[str, Any]) -> None:
        """Queue the further replicates of ``point``'s configuration at the full budget (those not
        handed out or queued yet; none for a configuration ruled out, as on resume a replicate's
        divergence can be replayed before its chain is)."""
        if self._configuration_of[point["identifier"]] in self._diverged:
            return
        top = len(self.budgets) - 1
        queued = {queued["identifier"] for queued in self._finalists}
        for replicate in range(1, self.finalist_replicates):
            extra = self._point(point, top, replicate)
            if extra["identifier"] not in queued and extra["identifier"] not in self.issued:
                self._finalists.append(extra)

    def _configuration(self, point: dict[str, Any]) -> str:
        """The key of ``point``'s configuration, the same at every rung and replicate."""
        return identify({**point, "epochs": self.budgets[-1]}, 0, self.seed)[0]

    def _ranked(self, entries: list[tuple[float, str]]) -> list[tuple[float, str]]:
        """A rung's (score, identifier) entries best first; a configuration that diverged in any of
        its trainings scores -inf, as the grid's mean over its replicates would."""
        return sorted(((-math.inf if self._configuration_of[identifier] in self._diverged else value, identifier)
                       for value, identifier in entries), reverse=True)

    def _race(self, point: dict[str, Any], value: float) -> None:
        """``replicate_finalists: leader``: file a full-budget result under its group and configuration."""
        group = tuple(point[name] for name in self.group_by)
        configuration = self._configuration_of[point["identifier"]]
        self._full.setdefault(group, {}).setdefault(configuration, (point, []))[1].append(value)

    def _rule_out(self, configuration: str) -> None:
        """A training of ``configuration`` diverged: it ranks last from now on (``_ranked``), and
        its finalist replicates still queued are dropped."""
        self._diverged.add(configuration)
        self._finalists = deque(point for point in self._finalists
                                if self._configuration(point) != configuration)

    def _leader_replicate(self, accept: Accept) -> dict[str, Any] | None:
        """``replicate_finalists: leader``: a further replicate of the leader of a group whose search
        is settled (every configuration started, none of its chains running). The leader is the
        finalist with the best mean full-budget score so far; one that overtakes it on its own
        chain is replicated in turn (racing), so the group's choice has every replicate."""
        if self.replicate_finalists != "leader" or not self._exhausted:
            return None
        unsettled = {tuple(point[name] for name in self.group_by) for point in self._ahead}
        unsettled |= {tuple(point[name] for name in self.group_by) for point in
                      (self.issued[i] for i in self._unfinished) if point["replicate"] == 0}
        for group, finalists in self._full.items():
            if group in unsettled:
                continue
            standing = [entry for configuration, entry in finalists.items() if configuration not in self._diverged]
            if not standing:
                continue
            leader, _ = max(standing, key=lambda entry: sum(entry[1]) / len(entry[1]))
            for replicate in range(1, self.finalist_replicates):
                point = self._point(leader, len(self.budgets) - 1, replicate)
                if point["identifier"] not in self.issued and accept(point):
                    return point
        return None

    def _promote(self, identifier: str, rung: int, accept: Accept) -> dict[str, Any] | None:
        """``identifier``'s configuration at the next rung, continued from it with its seed: a chain
        is one training with one seed (on the fit and jax engines, a chain 1 -> 3 -> 9 ends as a
        9-epoch training of that seed from scratch, tests/integration/test_asha_ensemble.py), so a
        finalist's chain is its replicate 0."""
        parent = self.issued[identifier]
        point = {**self._point(parent, rung + 1, parent=identifier), "seed": parent["seed"]}
        if not accept(point):
            return None
        self._promoted.add(identifier)
        return point

    def _promotion(self, accept: Accept) -> dict[str, Any] | None:
        for rungs in self._rungs.values():
            for rung in range(len(self.budgets) - 2, -1, -1):
                ranked = self._ranked(rungs[rung])
                for value, identifier in ranked[: len(ranked) // self.eta]:
                    if identifier not in self._promoted and math.isfinite(value):
                        if point := self._promote(identifier, rung, accept):
                            return point
        return None

    def _closing_promotion(self, accept: Accept) -> dict[str, Any] | None:
        """Once a competition has nothing left running and no new configuration is left to start,
        the 1/eta rule may strand it below the full budget (2 configurations in a rung, eta 3:
        none promoted). Then, like synchronous successive halving, its highest rung that no
        standing configuration (one that has not diverged) has left sends its best standing one
        up, so every competition ends with a finalist that did not diverge, where one is left."""
        if not self._exhausted:
            return None
        busy = {self._competition(self.issued[i]) for i in self._unfinished}
        busy |= {self._competition(point) for point in self._ahead}  # still to start, another shape
        for competition, rungs in self._rungs.items():
            if competition in busy:
                continue
            for rung in range(len(self.budgets) - 2, -1, -1):
                if self._standing(rungs[rung + 1]) or not self._standing(rungs[rung]):
                    continue  # a standing configuration already went up from here, or none stands here
                value, identifier = self._ranked(rungs[rung])[0]
                if identifier not in self._promoted and math.isfinite(value):
                    return self._promote(identifier, rung, accept)
                break
        return None

    def _standing(self, entries: list[tuple[float, str]]) -> bool:
        """Whether a rung holds a configuration that has not diverged."""
        return any(self._configuration_of[identifier] not in self._diverged for _, identifier in entries)

    def _finalist(self, accept: Accept) -> dict[str, Any] | None:
        for point in list(self._finalists):
            if point["identifier"] in self.issued:  # trained by an earlier run (resume)
                self._finalists.remove(point)
            elif accept(point):
                self._finalists.remove(point)
                return point
        return None

    def _next_new(self, accept: Accept) -> dict[str, Any] | None:
        """The next configuration's first point that ``accept`` takes: from those pulled ahead,
        else from the space (the ones it does not take are kept for later, up to LOOKAHEAD)."""
        for point in self._ahead:
            if accept(point):
                self._ahead.remove(point)
                return point
        for configuration in self._configurations:
            point = self._point(configuration, self._bracket(configuration))
            if point["identifier"] in self.issued:
                continue
            if accept(point):
                return point
            self._ahead.append(point)
            if len(self._ahead) >= LOOKAHEAD:
                return None
        self._exhausted = True
        return None

    def _bracket(self, configuration: dict[str, Any]) -> int:
        """The configuration's bracket: a hash of its identity, so brackets do not follow the order
        the space lists its values in, and a resumed search puts it where it was."""
        identifier, _ = identify(configuration, 0, self.seed)
        return uuid.UUID(identifier).int % self.brackets

    def next_point(self, accept: Accept = _any) -> dict[str, Any] | None:
        """Promote if possible, else a finalist replicate, else a new configuration, else a closing
        promotion or a settled group's leader's replicate, the first that ``accept`` takes; None:
        nothing to hand out now."""
        while (point := self._promotion(accept) or self._finalist(accept) or self._next_new(accept)
               or self._closing_promotion(accept) or self._leader_replicate(accept)) is not None:
            if point["identifier"] not in self.issued:  # else trained by an earlier run (resume)
                self._issue(point)
                return point
        return None

    def next_group(self, size: int) -> list[dict[str, Any]]:
        """Up to ``size`` points of one shape for one vectorised sim: the next point as ASHA orders
        them, then whatever else ASHA would hand out now with the same shape. Never waits to fill."""
        first = self.next_point()
        if first is None:
            return []
        group, shape = [first], shape_of(first)
        while len(group) < size and (point := self.next_point(lambda p: shape_of(p) == shape)) is not None:
            group.append(point)
        return group

    def restore(self, points: list[dict[str, Any]], results: list[tuple[str, float, float]]) -> None:
        """Rebuild the state from trainings finished by earlier runs, in the order they ended."""
        for point, result in zip(points, results):
            self._issue(point)
            self.record(point["identifier"], *result)


def scheduler_from(settings: GenSettings) -> AshaScheduler:
    asha = settings.asha
    return AshaScheduler(settings.space.configurations(settings.defaults), settings.seed, list(asha.budgets),
                         asha.eta, settings.replicates, asha.group_by, asha.brackets, asha.replicate_finalists)


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


def _issue(scheduler: AshaScheduler, sims: int, size: int) -> list[list[dict[str, Any]]]:
    """Up to ``sims`` groups (one sim each) of up to ``size`` same-shape points."""
    groups = []
    while len(groups) < sims and (group := scheduler.next_group(size)):
        groups.append(group)
    return groups


def persistent_asha(H, persis_info, gen_specs, libE_info):
    """libEnsemble generator function (needs the allocator's ``active_recv_gen``: it waits for
    results without always answering them with points). Each free worker gets one sim: a point, or
    with ``group_size`` K a vectorised group of up to K same-shape points."""
    settings: GenSettings = gen_specs["user"]["settings"]
    scheduler = restored_scheduler(settings, H)
    support = PersistentSupport(libE_info, EVAL_GEN_TAG)
    sims = SimsInFlight()
    free = settings.initial_batch  # workers without a sim
    while True:
        groups = _issue(scheduler, free, settings.group_size)
        free -= len(groups)
        if groups:
            support.send(to_array(sims.rows(groups), gen_specs["out"]))
        if scheduler.running == 0:
            break  # nothing running and nothing left to issue: the search is over
        tag, _, returned = support.recv()
        if tag in STOP_TAGS:
            break
        for row in returned:
            scheduler.record(row["identifier"].item(), row["status"].item(), row["val_accuracy"].item(),
                             row["val_loss"].item())
        free += sims.ended(row["identifier"].item() for row in returned)
    return None, persis_info, FINISHED_PERSISTENT_GEN_TAG
