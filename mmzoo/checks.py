"""Checks of arguments and arrays where user data enters mmzoo.

Shared by `build_model`'s models (`fit` / `evaluate` / `predict`), zoo
entries and the loaders, so every entry point refuses bad input with the same
Keras-style message (what is wrong, what is allowed, `Received: ...`) before
TensorFlow sees it.

What the graph itself does with ids it is not given through these checks (a
`tf.data` pipeline, a SavedModel, an exported TFLite file): ids are read as
int32; a negative id is read from the end of the vocabulary (`-1` is the last
row, NumPy-style); an id >= `vocab_size` fails inside the embedding lookup on
CPU (`InvalidArgumentError: indices[...] = ... is not in [0, vocab_size)`)
and gives a zero embedding on GPU. A modality mask is read as present where
its value is > 0 and missing otherwise (0, negative or NaN), by every fusion.
"""

import numbers

import numpy as np

MASK_INPUT = "modality_mask"


def is_int(value):
    """A Python or NumPy integer, not a bool."""
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(
        value, (bool, np.bool_))


def check_batch_size(batch_size, name="batch_size", allow_none=False):
    """Returns `batch_size` as an int, or raises a Keras-style error.

    Args:
        batch_size: the value to check.
        name: the argument's name, for the message.
        allow_none: whether `None` ("the default") is allowed.
    """
    if batch_size is None and allow_none:
        return None
    if not (is_int(batch_size) and batch_size > 0):
        allowed = "a positive integer" + (" or None" if allow_none else "")
        raise ValueError(f"`{name}` must be {allowed}. Received: {name}={batch_size!r}")
    return int(batch_size)


def _is_tensor_like(value):
    """An array, a list of numbers or an eager tensor (not a dataset or generator)."""
    if isinstance(value, (np.ndarray, list, tuple, numbers.Number)):
        return True
    return hasattr(value, "__array__") and hasattr(value, "shape") and hasattr(value, "dtype")


def model_input_specs(model):
    """`{input name: keras tensor}` of a (functional) model."""
    import keras

    inputs = model.input
    if isinstance(inputs, dict):
        return dict(inputs)
    names = getattr(model, "input_names", None) or [t.name for t in keras.tree.flatten(inputs)]
    return dict(zip(names, keras.tree.flatten(inputs)))


def vocab_limit(model):
    """The number of token ids the model's text input can take, or `None`.

    The model's `vocab_size` (attribute or build option), else the smallest
    `input_dim` of its `Embedding` layers.
    """
    import keras

    vocab = getattr(model, "vocab_size", None)
    if not is_int(vocab):
        vocab = (getattr(model, "build_options", None) or {}).get("vocab_size")
    if is_int(vocab):
        return int(vocab)
    sizes = [layer.input_dim for layer in model._flatten_layers(include_self=False)
             if isinstance(layer, keras.layers.Embedding)]
    return min(sizes) if sizes else None


def check_token_ids(ids, vocab_size, where="text"):
    """Checks an array of token ids; returns it as int32.

    Ids must be integers in `[0, vocab_size)`. Floats are accepted only when
    every value is a whole number (they are never truncated); NaN, infinities,
    negative ids and ids >= `vocab_size` are refused.
    """
    array = np.asarray(ids)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.integer)
                                     or np.issubdtype(array.dtype, np.floating)
                                     or array.dtype == np.bool_):
        raise TypeError(f"Token ids must be integers in [0, {vocab_size}). Received: {where} "
                        f"with dtype {array.dtype}")
    if array.size == 0:
        return array.astype(np.int32)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise ValueError(f"Token ids must be integers in [0, {vocab_size}); NaN and "
                             f"infinite values are not ids. Received: {where} with NaN or "
                             "infinite values")
        if not np.all(array == np.round(array)):
            bad = array[array != np.round(array)].flat[0].item()
            raise ValueError(f"Token ids must be integers in [0, {vocab_size}); float ids are "
                             f"not truncated. Received: {where} with the value {bad!r} (dtype "
                             f"{array.dtype})")
    lo, hi = array.min(), array.max()
    if vocab_size is not None and (lo < 0 or hi >= vocab_size):
        bad = lo if lo < 0 else hi
        raise ValueError(f"Token ids must be integers in [0, {vocab_size}) (the model's "
                         f"vocab_size; 0 is padding). Received: {where} with the id "
                         f"{int(bad)}")
    if lo < -(2**31) or hi >= 2**31:
        raise ValueError(f"Token ids must fit in int32. Received: {where} with values in "
                         f"[{lo}, {hi}]")
    return array.astype(np.int32)


def check_modality_mask(mask, columns, where=MASK_INPUT):
    """Checks a modality mask: `(batch, columns)`, every value 0 or 1."""
    array = np.asarray(mask)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number)
                                     or array.dtype == np.bool_):
        raise TypeError(f"`{MASK_INPUT}` must be numbers, 1 (present) or 0 (missing). "
                        f"Received: {where} with dtype {array.dtype}")
    if array.ndim != 2 or array.shape[1] != columns:
        raise ValueError(f"`{MASK_INPUT}` must have shape (batch, {columns}): one column per "
                         f"modality. Received: {where} with shape {array.shape}")
    if array.size and not np.all((array == 0) | (array == 1)):
        bad = array[(array != 0) & (array != 1)].flat[0].item()
        raise ValueError(f"`{MASK_INPUT}` values must be 1 (present) or 0 (missing). "
                         f"Received: {where} with the value {bad!r}")
    return array.astype(np.float32)


def check_model_arrays(model, x, what="x"):
    """Checks a dict of arrays given to `model` (`fit`, `evaluate`, `predict`).

    Refuses keys the model has no input for (in particular a
    `"modality_mask"` for a model built without `modality_mask=True`), token
    ids out of the vocabulary or not whole numbers, and mask values other
    than 0 and 1. Anything that is not a dict of arrays (a `tf.data.Dataset`,
    a generator) passes unchecked.

    Returns:
        Nothing; raises `ValueError` / `TypeError` naming the input.
    """
    if not isinstance(x, dict):
        return
    specs = model_input_specs(model)
    if MASK_INPUT in x and MASK_INPUT not in specs:
        raise ValueError(
            f"This model was built without modality_mask=True, so it has no "
            f"`{MASK_INPUT}` input and cannot use one (it would be ignored). Build it with "
            f"modality_mask=True to predict with missing modalities, or leave the key out. "
            f"Received: {what} with keys {sorted(x)}")
    for key, spec in specs.items():
        value = x.get(key)
        if value is None or not _is_tensor_like(value):
            continue
        shape = np.shape(value)
        if shape and shape[0] == 0:
            raise ValueError(f"`{what}` holds no examples: every input needs at least one. "
                             f"Received: {what}[{key!r}] with shape {tuple(shape)}")
        dtype = str(spec.dtype)
        if key == MASK_INPUT:
            check_modality_mask(value, spec.shape[-1], f"{what}[{key!r}]")
        elif "int" in dtype:
            check_token_ids(value, vocab_limit(model), f"{what}[{key!r}]")
