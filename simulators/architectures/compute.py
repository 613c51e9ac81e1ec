"""How a recurrent layer computes: precision of its matrix products, scan unrolling, and
rematerialisation. The same function of the same weights either way (to rounding); only speed
and memory change. Kept free of Keras so the spec validates them before any worker starts."""

from __future__ import annotations

from typing import Literal, NamedTuple

Precision = Literal["float32", "bfloat16"]


class Compute(NamedTuple):
    """``precision``: bfloat16 multiplies in bf16 (float32 accumulation, weights, states, optimizer
    and loss stay float32); ``unroll``: time steps per iteration of the compiled loop; ``remat``:
    the backward pass recomputes each step from its carried state instead of storing its
    intermediates (less memory, more arithmetic; JAX only)."""

    precision: Precision = "float32"
    unroll: int = 1
    remat: bool = False


DEFAULT_COMPUTE = Compute()
