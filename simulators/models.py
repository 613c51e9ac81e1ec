"""The Keras model of one point: [embedding] -> recurrent layer -> linear read-out."""

from __future__ import annotations

import keras

from simulators.architectures import architecture_options, recurrent_layer_factory
from simulators.architectures.compute import DEFAULT_COMPUTE, Compute
from simulators.tasks.base import TaskData

EMBEDDING_DIM = 50  # the study's text embeddings (imdb, reuters)


def build_model(architecture: str, hidden_dim: int, seed: int, data: TaskData, options=None,
                compute: Compute = DEFAULT_COMPUTE) -> keras.Model:
    """``options``: the architecture's options model (the study's setup when None); ``compute``:
    the precision, unrolling and rematerialisation of its recurrence."""
    if data.vocabulary:
        inputs = keras.Input(shape=(data.steps,), dtype="int32", name="tokens")
        sequence = keras.layers.Embedding(
            data.vocabulary, EMBEDDING_DIM, embeddings_initializer=keras.initializers.RandomUniform(seed=seed)
        )(inputs)
    else:
        inputs = keras.Input(shape=(data.steps, data.features), name="sequence")
        sequence = inputs
    options = options or architecture_options(architecture)
    recurrent = recurrent_layer_factory(architecture)(hidden_dim, seed, options, return_sequences=data.per_step,
                                                      compute=compute)
    state = recurrent(sequence)
    outputs = keras.layers.Dense(
        (data.n_classes if data.objective == "classification" else 1) * data.target_steps,
        kernel_initializer=keras.initializers.GlorotUniform(seed + 1),
        name="readout",
    )(state)
    if data.target_steps > 1:
        outputs = keras.layers.Reshape((data.target_steps, -1), name="per_step")(outputs)
    return keras.Model(inputs, outputs, name=architecture)


def program_shape(model: keras.Model, loss: keras.losses.Loss) -> tuple:
    """What a compiled program of ``model`` depends on besides its weights' values: on JAX the
    models of one shape share their programs, so a process compiles (or sizes) each shape once."""
    layer = model.get_layer("recurrent")
    return (model.name, type(loss).__name__, str(model.input_shape), str(model.output_shape),
            tuple(tuple(v.shape) for v in model.variables), repr(layer.options), repr(layer.compute))


def update_rules(model: keras.Model) -> dict:
    """The recurrent layer's exceptions to Adam (expRNN's skew parameter), by variable path."""
    layer = model.get_layer("recurrent")
    return layer.update_rules() if hasattr(layer, "update_rules") else {}


def loss_and_metrics(data: TaskData) -> tuple[keras.losses.Loss, list]:
    """Logits out of the model; accuracy for classification, none for regression."""
    if data.objective == "classification":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True), [
            keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        ]
    if data.objective == "binary":
        return keras.losses.BinaryCrossentropy(from_logits=True), [
            keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)
        ]
    return keras.losses.MeanSquaredError(), []
