"""How a recurrent layer computes: precision of its matrix products, scan unrolling,
rematerialisation, and which kernel runs the time loop. The same function of the same weights
either way (to rounding); only speed and memory change. Kept free of Keras so the spec validates
them before any worker starts."""

from __future__ import annotations

from typing import Literal, NamedTuple

Precision = Literal["float32", "bfloat16"]
Kernel = Literal["scan", "fused"]
# The architectures whose time loop the fused kernel runs (simulators/architectures/fused.py);
# the others run the scan whatever ``kernel`` says.
FUSED_ARCHITECTURES = ("rnn", "lstm")


class Compute(NamedTuple):
    """``precision``: bfloat16 multiplies in bf16 (float32 accumulation, weights, states, optimizer
    and loss stay float32); ``unroll``: time steps per iteration of the compiled loop; ``remat``:
    the backward pass recomputes each step from its carried state instead of storing its
    intermediates (less memory, more arithmetic; JAX only); ``kernel``: fused runs the whole time
    loop in one Pallas kernel with its own backward pass (``FUSED_ARCHITECTURES`` on the JAX
    backend; unroll and remat do not apply to it), scan the loop of ``keras.ops.scan``."""

    precision: Precision = "float32"
    unroll: int = 1
    remat: bool = False
    kernel: Kernel = "scan"


DEFAULT_COMPUTE = Compute()
