"""Hyperparameters of each architecture. The defaults are the published study's setup (its
reference code); where that code departs from the architecture's original paper, the paper's
form is an option, named in the field's description. docs/fidelity.md lists both, side by side.

Kept free of Keras so a spec's ``simulator.architectures`` section is validated before any
worker starts.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

InputInit = Literal["normal_inverse_width", "glorot_uniform", "he_uniform"]
InitialState = Literal["trainable", "zeros"]
INPUT_INIT_HELP = (
    "Initial input kernel V (inputs x units): normal_inverse_width = N(0, (1/d)^2) with d the input width; "
    "glorot_uniform; he_uniform."
)
INITIAL_STATE_HELP = "h_0: trainable = a learned vector (starts at 0), the study's; zeros = fixed at 0, the paper's."


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoOptions(_Options):
    """rnn, lstm and gru: Keras' own layers, as the study's code used them; nothing to set."""


class AntisymmetricOptions(_Options):
    """AntisymmetricRNN, Chang et al., ICLR 2019."""

    eps: float = Field(0.01, gt=0, description="Step size of the forward-Euler discretisation.")
    gamma: float = Field(0.01, ge=0, description="Diffusion: W - W^T - gamma I.")
    sigma: float = Field(0.01, gt=0, description="Scale of the initial recurrent weights W.")
    recurrent_std: Literal["sigma_over_units", "sigma_over_sqrt_units"] = Field(
        "sigma_over_units", description="W ~ N(0, std^2): sigma/n (the study's code) or sigma/sqrt(n) (the paper's "
        "N(0, sigma^2/n)), n = units.")
    input_init: InputInit = Field("normal_inverse_width", description=INPUT_INIT_HELP + " Study: normal_inverse_width.")
    initial_state: InitialState = Field("trainable", description=INITIAL_STATE_HELP)


class LipschitzOptions(_Options):
    """Lipschitz RNN, Erichson et al., ICLR 2021."""

    beta: float = Field(0.75, ge=0, le=1, description="Mix of symmetric (1-beta) and skew (beta) parts.")
    gamma_A: float = Field(0.001, ge=0)
    gamma_W: float = Field(0.001, ge=0)
    eps: float = Field(0.03, gt=0, description="Step size.")
    sigma: float = Field(0.1 / 128, gt=0, description="Std of the initial M_A and M_W.")
    tied_init: bool = Field(
        True, description="M_A and M_W start as the same draw (the study's code: one unseeded initializer called "
        "twice); false draws them independently (the paper's).")
    input_init: InputInit = Field("glorot_uniform", description=INPUT_INIT_HELP + " Study: glorot_uniform.")
    initial_state: InitialState = Field("trainable", description=INITIAL_STATE_HELP)


class ExponentialOptions(_Options):
    """expRNN, Lezcano-Casado & Martinez-Rubio, ICML 2019."""

    init: Literal["cayley", "henaff"] = Field(
        "cayley",
        description="Initial skew-symmetric A: cayley (blocks in [-1, 0], expRNN's choice for pixel-by-pixel "
        "MNIST) or henaff (blocks in [-pi, pi], its choice for the copying problem).",
    )
    skew_optimizer: Literal["sgd", "adam"] = Field(
        "sgd", description="How A (B = expm(A)) trains: sgd = a plain gradient step on A after each Adam step of the "
        "other weights (the study's code); adam = by Adam like the other weights, at its own learning rate (the "
        "paper's form: its code trains A with the same adaptive optimizer as the rest, RMSprop there).")
    skew_learning_rate_scale: float = Field(
        0.1, gt=0, description="A's learning rate as a multiple of the point's: 0.1 in the study's code, as in the "
        "paper's MNIST script (7e-5 against 7e-4).")
    input_init: InputInit = Field("normal_inverse_width", description=INPUT_INIT_HELP + " Study: normal_inverse_width.")
    initial_state: InitialState = Field("trainable", description=INITIAL_STATE_HELP)


class UnicornnOptions(_Options):
    """UnICORNN, Rusch & Mishra, ICML 2021: stacked layers of diagonal coupled oscillators."""

    eps: float = Field(0.03, gt=0, description="Time step dt, scaled per unit by sigmoid(c).")
    alpha: float = Field(0.9, ge=0, description="Restoring force.")
    layers: int = Field(2, ge=1)
    readout: Literal["all_states", "top"] = Field(
        "all_states", description="What the classifier reads: all_states = every layer's (y, z), concatenated, "
        "layers * 2 * units wide (the study's code); top = the top layer's y, units wide (the paper's).")
    tied_init: bool = Field(
        True, description="w and c start equal across layers (the study's code: one unseeded initializer per "
        "weight kind); false draws each layer's own.")
    input_init: InputInit = Field("he_uniform", description=INPUT_INIT_HELP + " Study: he_uniform, every layer.")


OPTIONS = {
    "rnn": NoOptions,
    "lstm": NoOptions,
    "gru": NoOptions,
    "antisymmetric": AntisymmetricOptions,
    "lipschitz": LipschitzOptions,
    "exponential": ExponentialOptions,
    "unicornn": UnicornnOptions,
}
