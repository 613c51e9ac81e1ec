"""Elman RNN, LSTM and GRU: Keras' own layers, which use cuDNN on a GPU where they can."""

from __future__ import annotations

import functools

import keras


def _keras_layer(layer_class: type, hidden_dim: int, seed: int, options=None,
                 return_sequences=False) -> keras.layers.Layer:
    return layer_class(
        hidden_dim,
        return_sequences=return_sequences,
        kernel_initializer=keras.initializers.GlorotUniform(seed),
        recurrent_initializer=keras.initializers.Orthogonal(seed=seed),
        name="recurrent",
    )


simple_rnn = functools.partial(_keras_layer, keras.layers.SimpleRNN)
lstm = functools.partial(_keras_layer, keras.layers.LSTM)
gru = functools.partial(_keras_layer, keras.layers.GRU)
