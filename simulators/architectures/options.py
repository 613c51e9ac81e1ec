"""Hyperparameters of each architecture, with the published defaults.

Kept free of Keras so a spec's ``simulator.architectures`` section is validated before any
worker starts.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoOptions(_Options):
    """rnn, lstm and gru: Keras' own layers, nothing to set."""


class AntisymmetricOptions(_Options):
    """AntisymmetricRNN, Chang et al., ICLR 2019."""

    eps: float = Field(0.01, gt=0, description="Step size of the forward-Euler discretisation.")
    gamma: float = Field(0.01, ge=0, description="Diffusion: W - W^T - gamma I.")
    sigma: float = Field(0.01, gt=0, description="Recurrent weights drawn from N(0, sigma^2 / units).")


class LipschitzOptions(_Options):
    """Lipschitz RNN, Erichson et al., ICLR 2021."""

    beta: float = Field(0.75, ge=0, le=1, description="Mix of symmetric (1-beta) and skew (beta) parts.")
    gamma_A: float = Field(0.001, ge=0)
    gamma_W: float = Field(0.001, ge=0)
    eps: float = Field(0.03, gt=0, description="Step size.")
    sigma: float = Field(0.1 / 128, gt=0, description="Std of the initial M_A and M_W.")


class ExponentialOptions(_Options):
    """expRNN, Lezcano-Casado & Martinez-Rubio, ICML 2019."""

    init: str = Field(
        "cayley", pattern="^(henaff|cayley)$",
        description="Initial skew-symmetric A: cayley (blocks in [-1, 0], expRNN's choice for pixel-by-pixel "
        "MNIST) or henaff (blocks in [-pi, pi], its choice for the copying problem).",
    )


class UnicornnOptions(_Options):
    """UnICORNN, Rusch & Mishra, ICML 2021 (two stacked layers)."""

    eps: float = Field(0.03, gt=0, description="Time step dt, scaled per unit by sigmoid(c).")
    alpha: float = Field(0.9, ge=0, description="Restoring force.")
    layers: int = Field(2, ge=1)


OPTIONS = {
    "rnn": NoOptions,
    "lstm": NoOptions,
    "gru": NoOptions,
    "antisymmetric": AntisymmetricOptions,
    "lipschitz": LipschitzOptions,
    "exponential": ExponentialOptions,
    "unicornn": UnicornnOptions,
}
