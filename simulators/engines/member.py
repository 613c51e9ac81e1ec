"""One training as an engine sees it: its model, plan and per-epoch callback, and whether its
epochs' records carry the adjoint norms (an engine that probes a whole group at once adds them)."""

from __future__ import annotations

from dataclasses import dataclass

import keras

from simulators.engines import EpochCallback, Plan


@dataclass(eq=False)  # a member is itself: engines keep and look them up by identity
class Member:
    model: keras.Model
    plan: Plan
    on_epoch: EpochCallback
    adjoints: bool = False
