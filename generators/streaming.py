"""Streaming points to libEnsemble's manager as workers free up.

The generator hands out a first batch that fills every worker, then new points as results come
back, so no more of a huge space is materialised than is being trained. With ``group_size`` K
above 1 the points go out in whole groups of up to K same-shape points (see
``generators.grouping``), each group one sim, and K points per worker are kept in flight.
Points that earlier runs finished (``GenSettings.skip_identifiers``, on resume) are not handed out again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from libensemble.message_numbers import EVAL_GEN_TAG, FINISHED_PERSISTENT_GEN_TAG, PERSIS_STOP, STOP_TAG
from libensemble.tools.persistent_support import PersistentSupport

from generators.grouping import group_points, sim_rows
from generators.points import to_array
from generators.settings import GenSettings

STOP_TAGS = (STOP_TAG, PERSIS_STOP)


def stream_points(points: Iterator[dict[str, Any]], settings: GenSettings, dtype: list[tuple], libE_info: dict,
                  persis_info: dict):
    """Run as a persistent generator until the points run out and the manager says stop; the
    points go out as rows of ``dtype``."""
    support = PersistentSupport(libE_info, EVAL_GEN_TAG)
    size = settings.group_size
    groups = group_points((point for point in points if point["identifier"] not in settings.skip_identifiers), size)
    in_flight_target = settings.initial_batch * size
    in_flight, sent, tag = 0, 0, None
    while tag not in STOP_TAGS:
        chunk: list[dict[str, Any]] = []
        while in_flight + len(chunk) < in_flight_target and (group := next(groups, None)) is not None:
            sent += 1
            chunk += sim_rows(group, sent)
        if chunk:
            in_flight += len(chunk)
            tag, _, returned = support.send_recv(to_array(chunk, dtype))
        elif in_flight >= in_flight_target:  # a large group filled the workers: wait for results
            tag, _, returned = support.recv()
        else:
            break  # every point handed out
        in_flight -= len(returned) if returned is not None else 0
    while tag not in STOP_TAGS:  # all points handed out: wait for the manager to finish
        tag, _, _ = support.recv()
    return None, persis_info, FINISHED_PERSISTENT_GEN_TAG
