"""Which programs a script compiles, for the tests that count them, by the program's name. A
program JAX's persistent cache holds (the warm process keeps one on disk once a training configured
it) reports the same event when it is loaded instead, so a count does not depend on what earlier
runs left there. The listener goes when the block ends: the warm process serves other scripts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import jax

COMPILED = "/jax/core/compile/backend_compile_duration"  # around XLA's compile or the cache's load


@contextmanager
def counted_compiles(names: tuple[str, ...]) -> Iterator[list[str]]:
    """The programs among ``names`` compiled in the block, in order."""
    compiled = []

    def on_duration(event, seconds, fun_name="", **_):
        if event == COMPILED and fun_name in names:
            compiled.append(fun_name)

    jax.monitoring.register_event_duration_secs_listener(on_duration)
    try:
        yield compiled
    finally:
        jax.monitoring.unregister_event_duration_listener(on_duration)
