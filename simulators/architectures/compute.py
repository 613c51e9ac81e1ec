"""How a recurrent layer computes: precision of its matrix products, scan unrolling,
rematerialisation, and which kernel runs the time loop. The same function of the same weights
either way (to rounding); only speed and memory change. Kept free of Keras so the spec validates
them before any worker starts."""

from __future__ import annotations

from typing import Literal, NamedTuple

Precision = Literal["float32", "bfloat16"]
Kernel = Literal["scan", "fused"]


class FusedShape(NamedTuple):
    """What sizes a cell in the fused kernel: its ``gates`` (one recurrent block each: the products
    of h_{t-1} a step takes; 0 for a cell with no recurrent matrix, which fits at any size),
    whether its backward pass ``recomputes`` the gates (multiplying by U as well as by its
    transpose), and whether its products are ``float32_products`` whatever the precision (expRNN's:
    bf16 would undo B's orthogonality, as its scan step says)."""

    gates: int
    recomputes: bool
    float32_products: bool = False


# The architectures whose time loop the fused kernel runs (simulators/architectures/fused.py);
# the others run the scan whatever ``kernel`` says.
# lipschitz: W_beta h and A_beta h, two blocks, tanh' from the recomputed W gate; exponential: B h,
# modReLU' read off the states (no recomputation), its products float32 whatever the precision;
# unicornn: no recurrent matrix (w y is elementwise), no blocks, so any hidden size fits; its backward
# recomputes tanh(w y + drive) from the drive. Each of its stacked layers is one kernel call.
FUSED_SHAPES = {"rnn": FusedShape(gates=1, recomputes=False), "lstm": FusedShape(gates=4, recomputes=True),
                "antisymmetric": FusedShape(gates=1, recomputes=True),
                "lipschitz": FusedShape(gates=2, recomputes=True),
                "exponential": FusedShape(gates=1, recomputes=False, float32_products=True),
                "unicornn": FusedShape(gates=0, recomputes=True)}
FUSED_ARCHITECTURES = tuple(FUSED_SHAPES)
MIN_FUSED_UNITS = 16  # Triton's smallest product
# A fused program keeps its recurrent blocks in shared memory (227 KiB on an H200). What the H200
# showed: the rnn compiled at hidden 128 in float32 (64 KiB of U) and 256 in bf16 (128 KiB), the
# LSTM at hidden 32; the LSTM at 128 asked for 272 KiB in float32 and 348 KiB in bf16 (more:
# probably the float32 block kept beside its bf16 copy) and did not compile (docs/performance.md). The rule
# below is a conservative reading of that, not a model of Triton's allocator: U's bytes, twice
# for a cell whose backward also multiplies by U, at most the 128 KiB that compiled. Since then the
# AntisymmetricRNN and expRNN at 128 and the Lipschitz RNN at 128 in bf16 compiled and trained there
# (gpu_h200_dynamical_fused_k64.json); the LSTM at 64 and the Lipschitz RNN at 128 in float32
# (256 KiB) have not been tried.
FUSED_RECURRENT_BYTES = 128 * 1024


def fused_units(units: int) -> int:
    """Units as the fused kernel pads them: a power of two (Triton's blocks), at least 16."""
    return max(MIN_FUSED_UNITS, 1 << (units - 1).bit_length())


def fused_kernel_fits(cell: str, units: int, precision: Precision) -> bool:
    """Whether the fused kernel runs ``cell`` (an architecture's name) at ``units``: a cell it
    has, whose blocks (every gate's U, twice where the backward pass recomputes; in float32 where
    the cell's products are, whatever ``precision``) fit ``FUSED_RECURRENT_BYTES``; a cell with
    none (unicornn) at any size."""
    shape = FUSED_SHAPES.get(cell)
    if shape is None:
        return False
    operand_bytes = 2 if precision == "bfloat16" and not shape.float32_products else 4
    copies = 2 if shape.recomputes else 1
    return shape.gates * fused_units(units) ** 2 * operand_bytes * copies <= FUSED_RECURRENT_BYTES


def largest_fused_units(cell: str, precision: Precision) -> int | None:
    """The largest power-of-two hidden size at which ``fused_kernel_fits``; None for a cell
    without recurrent blocks, which fits at any."""
    if FUSED_SHAPES[cell].gates == 0:
        return None
    units = MIN_FUSED_UNITS
    while fused_kernel_fits(cell, units * 2, precision):
        units *= 2
    return units


def fused_limits() -> str:
    """Each fused cell's largest hidden size, in words: what the spec's help and errors say."""
    limits = []
    for cell in FUSED_ARCHITECTURES:
        float32, bfloat16 = largest_fused_units(cell, "float32"), largest_fused_units(cell, "bfloat16")
        if float32 is None:
            limits.append(f"{cell} at any hidden size (no recurrent matrix)")
            continue
        limits.append(f"{cell} to hidden {float32}" + (f" ({bfloat16} in bfloat16)" if bfloat16 != float32 else ""))
    return ", ".join(limits)


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
