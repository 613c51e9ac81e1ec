"""One training as an engine sees it: its model, plan and per-epoch callback."""

from __future__ import annotations

from dataclasses import dataclass

import keras

from simulators.engines import EpochCallback, Plan


@dataclass
class Member:
    model: keras.Model
    plan: Plan
    on_epoch: EpochCallback
