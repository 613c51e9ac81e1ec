"""Streaming points to libEnsemble's manager as workers free up.

The generator hands out a first batch that fills every worker, then one new point for each
result that comes back, so no more of a huge space is materialised than is being trained.
Points that earlier runs finished (``skip_identifiers``, on resume) are not handed out again.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from libensemble.message_numbers import EVAL_GEN_TAG, FINISHED_PERSISTENT_GEN_TAG, PERSIS_STOP, STOP_TAG
from libensemble.tools.persistent_support import PersistentSupport

from generators.points import to_array

STOP_TAGS = (STOP_TAG, PERSIS_STOP)


def stream_points(points: Iterator[dict[str, Any]], gen_specs: dict, libE_info: dict, persis_info: dict):
    """Run as a persistent generator until the points run out and the manager says stop."""
    support = PersistentSupport(libE_info, EVAL_GEN_TAG)
    done = set(gen_specs["user"].get("skip_identifiers", ()))
    points = (point for point in points if point["identifier"] not in done)
    batch = gen_specs["user"]["initial_batch"]
    tag = None
    while tag not in STOP_TAGS:
        chunk = list(itertools.islice(points, batch))
        if not chunk:
            break
        tag, _, returned = support.send_recv(to_array(chunk, gen_specs["out"]))
        if returned is not None and len(returned):
            batch = len(returned)
    while tag not in STOP_TAGS:  # all points handed out: wait for the manager to finish
        tag, _, _ = support.recv()
    return None, persis_info, FINISHED_PERSISTENT_GEN_TAG
