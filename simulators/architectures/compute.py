"""How a recurrent layer computes: precision of its matrix products, scan unrolling,
rematerialisation, and which kernel runs the time loop. The same function of the same weights
either way (to rounding); only speed and memory change. Kept free of Keras so the spec validates
them before any worker starts."""

from __future__ import annotations

from typing import Literal, NamedTuple

Precision = Literal["float32", "bfloat16"]
Kernel = Literal["scan", "fused"]


class FusedShape(NamedTuple):
    """What sizes a cell in the fused kernel: its ``gates`` (one recurrent block each), and whether
    its backward pass ``recomputes`` the gates (multiplying by U as well as by its transpose)."""

    gates: int
    recomputes: bool


# The architectures whose time loop the fused kernel runs (simulators/architectures/fused.py);
# the others run the scan whatever ``kernel`` says.
FUSED_SHAPES = {"rnn": FusedShape(gates=1, recomputes=False), "lstm": FusedShape(gates=4, recomputes=True),
                "antisymmetric": FusedShape(gates=1, recomputes=True)}
FUSED_ARCHITECTURES = tuple(FUSED_SHAPES)
MIN_FUSED_UNITS = 16  # Triton's smallest product
# A fused program keeps its recurrent blocks in shared memory (227 KiB on an H200). The largest
# measured to compile there: one 256 x 256 bf16 block (rnn, hidden 256). An LSTM at hidden 128
# asked for 272 KiB (float32) and 348 KiB (bf16) and did not compile (docs/performance.md).
FUSED_RECURRENT_BYTES = 128 * 1024


def fused_units(units: int) -> int:
    """Units as the fused kernel pads them: a power of two (Triton's blocks), at least 16."""
    return max(MIN_FUSED_UNITS, 1 << (units - 1).bit_length())


def fused_kernel_fits(architecture: str, units: int, precision: Precision) -> bool:
    """Whether the fused kernel runs ``architecture`` at ``units``: a cell it has, whose blocks
    (every gate's U, twice where the backward pass recomputes) fit ``FUSED_RECURRENT_BYTES``."""
    shape = FUSED_SHAPES.get(architecture)
    if shape is None:
        return False
    operand_bytes = 2 if precision == "bfloat16" else 4
    copies = 2 if shape.recomputes else 1
    return shape.gates * fused_units(units) ** 2 * operand_bytes * copies <= FUSED_RECURRENT_BYTES


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
