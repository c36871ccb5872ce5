"""Text branches: token ids (or a fixed-length vector) in, a feature vector out.

Each branch is a functional `keras.Model` named `text_<branch>`. Token id 0 is
padding.

A branch registered with `unpooled={"return_sequences": True}` can also give
one feature vector per token, `(batch, sequence_length, text_units)`, for a
fusion that attends over the tokens (registered with `sequences=("text",)`,
e.g. `"cross_attention"`): `build_model` passes `return_sequences=True`,
which is not a user option.
"""

import keras

from mmzoo.registry import TEXT_BRANCHES
from mmzoo.validators import at_least, choice, positive_int

# The `vocab_size` option, shared with the captioning decoder.
VOCAB_SIZE = at_least(2, "the vocabulary includes padding")
# How a branch that can give per-token features is built that way (registration info).
SEQUENCES = {"return_sequences": True}
# The options of a recurrent text branch.
RECURRENT_VALIDATORS = {
    "vocab_size": VOCAB_SIZE, "embedding_dim": positive_int, "text_units": positive_int}


def _recurrent(layer_class, kind, sequence_length, vocab_size, embedding_dim, text_units, name,
               return_sequences=False):
    """Embedding (padding id 0 masked) + one recurrent layer reading the last state
    (or every state, with the padding mask attached)."""
    inputs = keras.Input(shape=(sequence_length,), dtype="int32", name="text")
    x = keras.layers.Embedding(
        vocab_size, embedding_dim, mask_zero=True, name=f"text_{kind}_embedding"
    )(inputs)
    x = layer_class(text_units, return_sequences=return_sequences, name=f"text_{kind}_{kind}")(x)
    return keras.Model(inputs, x, name=name)


@TEXT_BRANCHES.register("lstm", input_dtype="int32", unpooled=SEQUENCES,
                        validators=RECURRENT_VALIDATORS)
def lstm_branch(
    sequence_length,
    return_sequences=False,
    *,
    vocab_size=10000,
    embedding_dim=64,
    text_units=128,
    name="text_lstm",
):
    """Embedding + LSTM, reading the last state; padding (id 0) is masked.

    Args:
        sequence_length: number of token ids per example.
        return_sequences: give every state (not an option: `build_model`
            sets it for a fusion that attends over tokens).
        vocab_size: size of the token vocabulary, padding included.
        embedding_dim: size of each token embedding.
        text_units: LSTM units (the size of the text feature).
        name: the branch model's name.

    Returns:
        A `keras.Model` from int token ids `(batch, sequence_length)` to
        `(batch, text_units)`, or `(batch, sequence_length, text_units)`
        with `return_sequences` (padding masked: a padded step repeats the
        last state).
    """
    return _recurrent(keras.layers.LSTM, "lstm", sequence_length, vocab_size, embedding_dim,
                      text_units, name, return_sequences)


@TEXT_BRANCHES.register("gru", input_dtype="int32", unpooled=SEQUENCES,
                        validators=RECURRENT_VALIDATORS)
def gru_branch(
    sequence_length,
    return_sequences=False,
    *,
    vocab_size=10000,
    embedding_dim=64,
    text_units=128,
    name="text_gru",
):
    """Embedding + GRU (Cho et al. 2014), reading the last state; padding (id 0) is masked.

    The question encoder of FiLM (Perez et al. 2018): a GRU has a quarter
    fewer weights than an LSTM of the same width and trains as well on short
    questions.

    Args:
        sequence_length: number of token ids per example.
        return_sequences: give every state (not an option: `build_model`
            sets it for a fusion that attends over tokens).
        vocab_size: size of the token vocabulary, padding included.
        embedding_dim: size of each token embedding.
        text_units: GRU units (the size of the text feature).
        name: the branch model's name.

    Returns:
        A `keras.Model` from int token ids `(batch, sequence_length)` to
        `(batch, text_units)`, or `(batch, sequence_length, text_units)`
        with `return_sequences` (padding masked: a padded step repeats the
        last state).
    """
    return _recurrent(keras.layers.GRU, "gru", sequence_length, vocab_size, embedding_dim,
                      text_units, name, return_sequences)


# What the text CNN does after max-pooling: nothing, or Dense(text_units) + tanh / linear.
TEXT_PROJECTIONS = (None, "tanh", "linear")


@TEXT_BRANCHES.register("cnn", input_dtype="int32", unpooled=SEQUENCES, validators={
    "vocab_size": VOCAB_SIZE, "embedding_dim": positive_int, "text_units": positive_int,
    "text_layers": positive_int, "text_kernel_size": positive_int,
    "text_projection": choice(*TEXT_PROJECTIONS)})
def cnn_text_branch(
    sequence_length,
    return_sequences=False,
    *,
    vocab_size=10000,
    embedding_dim=64,
    text_units=128,
    text_layers=2,
    text_kernel_size=3,
    text_projection=None,
    name="text_cnn",
):
    """Embedding + stacked 1-D convolutions + max-over-time pooling (Kim 2014).

    "Convolutional Neural Networks for Sentence Classification" (Kim, EMNLP
    2014), with the convolutions stacked so that the receptive field spans
    `1 + text_layers * (text_kernel_size - 1)` tokens: a phrase such as "the
    red circle to the left" is one window. Every step runs in parallel and no
    state is carried from token to token, so the branch exports to TFLite
    without unrolling a recurrence and quantizes to int8 as one
    convolution per layer: the text branch for phones. A recurrent branch
    (`gru`, `lstm`) reads word order over any distance; this one only within
    its window.

    Padding (id 0) has an embedding of its own, which the convolutions see
    like any token (there is no mask to carry).

    Args:
        sequence_length: number of token ids per example.
        return_sequences: give the last convolution's output at every
            token instead of its maximum over time (not an option:
            `build_model` sets it for a fusion that attends over tokens).
        vocab_size: size of the token vocabulary, padding included.
        embedding_dim: size of each token embedding.
        text_units: filters of every convolution (the size of the text feature).
        text_layers: number of stacked convolutions, >= 1.
        text_kernel_size: width of each convolution, in tokens.
        text_projection: `None` (the max-pooled ReLU features, >= 0), or a
            `Dense(text_units)` after the pooling with `"tanh"` (features in
            (-1, 1), like a recurrent branch's state: a student that learns
            a GRU's features, `mmzoo.training.distill`) or `"linear"`
            activation.
        name: the branch model's name.

    Returns:
        A `keras.Model` from int token ids `(batch, sequence_length)` to
        `(batch, text_units)`, or `(batch, sequence_length, text_units)`
        with `return_sequences` (before the pooling and projection).
    """
    inputs = keras.Input(shape=(sequence_length,), dtype="int32", name="text")
    x = keras.layers.Embedding(vocab_size, embedding_dim, name="text_cnn_embedding")(inputs)
    for i in range(1, text_layers + 1):
        x = keras.layers.Conv1D(text_units, text_kernel_size, padding="same", activation="relu",
                                name=f"text_cnn_conv{i}")(x)
    if not return_sequences:
        x = keras.layers.GlobalMaxPooling1D(name="text_cnn_max_pool")(x)
        if text_projection is not None:
            x = keras.layers.Dense(text_units, activation=text_projection,
                                   name="text_cnn_projection")(x)
    return keras.Model(inputs, x, name=name)


@TEXT_BRANCHES.register("embedding", input_dtype="int32", validators={
    "vocab_size": VOCAB_SIZE, "embedding_dim": positive_int})
def embedding_branch(
    sequence_length, *, vocab_size=10000, embedding_dim=64, name="text_embedding"
):
    """Embedding + Flatten: the seeds' bag-of-positions text branch.

    Args:
        sequence_length: number of token ids per example.
        vocab_size: size of the token vocabulary, padding included.
        embedding_dim: size of each token embedding.
        name: the branch model's name.

    Returns:
        A `keras.Model` from int token ids to `(batch, sequence_length * embedding_dim)`.
    """
    inputs = keras.Input(shape=(sequence_length,), dtype="int32", name="text")
    x = keras.layers.Embedding(vocab_size, embedding_dim, name="text_embedding_embedding")(
        inputs
    )
    x = keras.layers.Flatten(name="text_embedding_flatten")(x)
    return keras.Model(inputs, x, name=name)


@TEXT_BRANCHES.register("dense", input_dtype="float32", validators={
    "text_units": positive_int})
def dense_branch(sequence_length, *, text_units=128, name="text_dense"):
    """Dense(relu) on a fixed-length text vector such as TF-IDF or bag-of-words.

    Args:
        sequence_length: length of the text vector.
        text_units: Dense units (the size of the text feature).
        name: the branch model's name.

    Returns:
        A `keras.Model` from float vectors `(batch, sequence_length)` to
        `(batch, text_units)`.
    """
    inputs = keras.Input(shape=(sequence_length,), dtype="float32", name="text")
    x = keras.layers.Dense(text_units, activation="relu", name="text_dense_dense")(inputs)
    return keras.Model(inputs, x, name=name)
