"""A copy of the user's model, rebuilt for export (the original is never changed).

Two settings differ from the training graph:

- recurrent layers do not use cuDNN kernels (`use_cudnn=False`), so a
  SavedModel written on a GPU machine still runs on CPU serving and compiles
  with XLA;
- for TFLite, recurrent layers are unrolled (`unroll=True`): a Keras 3 LSTM is
  never fused to a TFLite LSTM op, and its WHILE loop needs Flex ops
  (`TensorList*`) that no Python or stock phone runtime has, and segfaults in
  int8 calibration. Unrolled over the fixed sequence length it is plain
  builtins (FULLY_CONNECTED, LOGISTIC, TANH, MUL, ADD, SELECT_V2).
"""

import keras


def export_copy(model, unroll=False):
    """Rebuilds `model` from its config, copies its weights and adapts RNNs.

    Args:
        model: a functional Keras model with a `get_config()` (every model
            `mmzoo.build_model` returns has one).
        unroll: unroll recurrent layers over their fixed sequence length.

    Returns:
        A new model with the same weights and outputs.

    Raises:
        ValueError: the model cannot be rebuilt from its config.
    """
    try:
        copy = type(model).from_config(model.get_config())
    except Exception as e:  # subclassed models without a usable config
        raise ValueError(
            "Export rebuilds the model from its config (to unroll recurrent layers "
            "and avoid cuDNN-only kernels), which failed for this model: "
            f"{type(e).__name__}: {e}. Export supports functional models and models "
            f"built by mmzoo.build_model. Received: model of type {type(model).__name__}"
        ) from e
    weights = model.get_weights()
    if len(copy.weights) != len(weights):
        raise ValueError(
            f"The rebuilt model has {len(copy.weights)} weights but the model has "
            f"{len(weights)}: its config does not describe its architecture. "
            f"Received: model {model.name!r}"
        )
    copy.set_weights(weights)
    for layer in walk_layers(copy):
        if isinstance(layer, keras.layers.RNN):
            if unroll:
                layer.unroll = True
            if hasattr(layer, "use_cudnn"):
                layer.use_cudnn = False
    return copy


def walk_layers(model):
    """Yields every layer of `model`, descending into nested models."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from walk_layers(layer)


def has_rnn(model):
    """Whether `model` contains a recurrent layer."""
    return any(isinstance(layer, keras.layers.RNN) for layer in walk_layers(model))
