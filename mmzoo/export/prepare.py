"""A copy of the user's model, rebuilt for export (the original is never changed).

Three settings differ from the training graph:

- a mixed-precision model (`keras.mixed_precision.set_global_policy(
  "mixed_float16")` or `"mixed_bfloat16"` when it was built) is rebuilt in
  float32, with the same (float32) weights: the TFLite converter cannot
  convert the float16 casts of a mixed graph, and serving gets float32
  outputs. Its parity is checked against the float32 Keras copy; the export
  report notes it;

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
        A new model with the same weights and outputs, computing in float32
        (see `is_mixed_precision`).

    Raises:
        ValueError: the model cannot be rebuilt from its config.
    """
    previous = keras.config.dtype_policy()
    try:
        # Layers built inside other layers take the global policy; those in the
        # config carry their own, rewritten by `_float32_config`.
        keras.config.set_dtype_policy("float32")
        copy = type(model).from_config(_float32_config(model.get_config()))
    except Exception as e:  # subclassed models without a usable config
        raise ValueError(
            "Export rebuilds the model from its config (to unroll recurrent layers "
            "and avoid cuDNN-only kernels), which failed for this model: "
            f"{type(e).__name__}: {e}. Export supports functional models and models "
            f"built by mmzoo.build_model. Received: model of type {type(model).__name__}"
        ) from e
    finally:
        keras.config.set_dtype_policy(previous)
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


_HALF = ("float16", "bfloat16")


def _is_half_policy_name(name):
    return isinstance(name, str) and (name.startswith("mixed_") or name in _HALF)


def _float32_config(config):
    """`config` with every mixed or half-precision dtype policy replaced by float32."""
    if isinstance(config, dict):
        if (config.get("class_name") in ("DTypePolicy", "FloatDTypePolicy")
                and _is_half_policy_name((config.get("config") or {}).get("name"))):
            return {**config, "config": {**config["config"], "name": "float32"}}
        # "dtype" (a layer's) and "build_dtype_policy" (an mmzoo model's, the
        # policy its layers are built in) name policies as strings.
        return {k: ("float32" if (k == "dtype" or k.endswith("dtype_policy"))
                    and _is_half_policy_name(v) else _float32_config(v))
                for k, v in config.items()}
    if isinstance(config, list):
        return [_float32_config(v) for v in config]
    return config


def half_precision_policy(model):
    """The name of the first float16/bfloat16-computing dtype policy in `model`, or `None`."""
    for layer in [model] + list(walk_layers(model)):
        policy = getattr(layer, "dtype_policy", None)
        if getattr(policy, "compute_dtype", "float32") in _HALF:
            return policy.name
    return None


def is_mixed_precision(model):
    """Whether any layer of `model` computes in float16 or bfloat16 (e.g. `"mixed_float16"`)."""
    return half_precision_policy(model) is not None
