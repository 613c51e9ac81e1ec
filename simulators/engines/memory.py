"""How many members of a vectorised group fit on the device at once.

A group's program holds, per member, its weights, optimizer state and the activations of one
batch; the training data once for all. The group's compiled program says how much that is
(XLA's memory analysis, per member: a part smaller than the group is sized as if the program's
fixed working memory grew with it, inside the margin), the device's allocator how much it may
take: the worker caps it at
this training's share of the GPU (``sims_per_gpu`` trainings share one; ``placement.py``). A
group larger than what fits trains in consecutive parts as even as they can be (``even_parts``),
instead of failing out of memory.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GroupSize:
    """Members trained in one program, and the device memory one member needs (None where the
    device says nothing of its memory, as a CPU)."""

    members: int
    member_mb: float | None = None

    def as_record(self) -> dict:
        return {"group_members": self.members, "member_memory_mb": self.member_mb}


def members_that_fit(budget_bytes: int, member_bytes: int, shared_bytes: int, wanted: int) -> int:
    """The most members, 1 to ``wanted``, whose ``member_bytes`` each and ``shared_bytes`` once fit
    in ``budget_bytes`` (one member at least: it alone either fits or fails as it would alone)."""
    if member_bytes <= 0:
        return wanted
    return max(1, min(wanted, (budget_bytes - shared_bytes) // member_bytes))


def even_parts(count: int, fitting: int) -> list[range]:
    """``count`` members in the fewest parts of at most ``fitting``, as even as can be: 20 where 19
    fit train as 10 and 10, one program compiled for both, not 19 and a lone member with a program
    of its own, which a GPU bound by its time loop's latency trains at a small share of its rate."""
    if count == 0:
        return []
    parts = -(-count // max(1, fitting))
    size, larger = divmod(count, parts)  # the first ``larger`` parts take one more
    bounds = [index * size + min(index, larger) for index in range(parts + 1)]
    return [range(start, stop) for start, stop in zip(bounds, bounds[1:])]


def device_budget(margin: float) -> int | None:
    """Bytes this training may use on its device: what the device's allocator may hand out (the
    worker capped it at the training's share of the GPU), less ``margin`` of it; None where the
    device reports no memory (a CPU)."""
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    limit = stats.get("bytes_limit")
    if not limit:
        return None
    return int(limit * (1 - margin))


def program_bytes(compiled) -> tuple[int, int] | None:
    """(bytes the compiled program needs beyond its arguments, bytes of its arguments); None
    where the device's compiler gives no memory analysis."""
    analysis = compiled.memory_analysis()
    if analysis is None:
        return None
    return analysis.temp_size_in_bytes + analysis.output_size_in_bytes, analysis.argument_size_in_bytes
