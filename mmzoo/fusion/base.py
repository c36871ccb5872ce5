"""Shared pieces of the fusion layers: the common embedding space, weights, masks.

Every fusion layer takes a list of modality features (in modality order: image,
text, ...) and, optionally, `modality_mask`: a `(batch, num_modalities)` tensor,
1.0 where the modality is present and 0.0 where it is missing. Each layer
documents exactly what a missing modality does to its output; a mask of all
ones gives the same output as no mask.

One rule reads a mask in every fusion (`binary_mask`): a value > 0 means
present, anything else (0, negative, NaN) missing; a mask never scales
features. `mmzoo.checks` refuses values other than 0 and 1 where user arrays
enter (`fit`, `evaluate`, `predict`), so the rule only matters inside graphs
fed another way (a `tf.data` pipeline, an export).
"""

import numbers

import keras
from keras import ops

from mmzoo.validators import fail

EPSILON = 1e-7


def fixed_weights(name, value):
    """Validator of `fusion_weights`: `None` (learned) or non-negative numbers, not all 0.

    How many numbers (one per modality) is checked when the fusion is built,
    by `check_weights`.
    """
    ok = value is None or (
        isinstance(value, (tuple, list))
        and len(value) > 0
        and all(isinstance(v, numbers.Real) and not isinstance(v, bool) and v >= 0
                for v in value)
        and sum(value) > 0
    )
    if not ok:
        fail(name, value, "None (learned) or a tuple of non-negative numbers, not all zero")
    return None if value is None else tuple(float(v) for v in value)


def check_weights(weights, count, option="fusion_weights", what="modalities"):
    """Validates fixed fusion weights and normalises them to sum to 1.

    Args:
        weights: `None` (the weights are learned) or one non-negative number per
            input, not all zero.
        count: how many inputs the weights are for.
        option: the option name, for messages.
        what: what the inputs are, for messages.

    Returns:
        `None`, or a tuple of floats that sums to 1.
    """
    if weights is None:
        return None
    try:
        values = tuple(float(w) for w in weights)
    except (TypeError, ValueError):
        values = None
    if (
        values is None
        or isinstance(weights, (str, bytes))
        or len(values) != count
        or any(not w >= 0 for w in values)  # `not >=` also rejects NaN
        or sum(values) <= 0
    ):
        raise ValueError(
            f"`{option}` must be None (learned) or {count} non-negative numbers, "
            f"one per {what}, not all zero. Received: {option}={weights!r}"
        )
    total = sum(values)
    return tuple(w / total for w in values)


def binary_mask(modality_mask, dtype):
    """The mask as exactly 1.0 (value > 0: present) or 0.0 (anything else: missing).

    The one reading of a mask shared by every fusion and by modality dropout:
    a fusion that multiplies by a mask column and one that tests it agree
    for any value (0.5, 2, -1, NaN).
    """
    return ops.cast(ops.greater(ops.cast(modality_mask, "float32"), 0.0), dtype)


def mask_columns(modality_mask, count, dtype):
    """Splits a `(batch, count)` mask into `count` binary columns of shape `(batch, 1)`.

    The columns are `binary_mask`'s 1.0 / 0.0, whatever the values given.
    """
    mask = binary_mask(modality_mask, dtype)
    return [mask[:, i : i + 1] for i in range(count)]


def zero_missing(x, m):
    """`x` where the mask column `m` (broadcastable to `x`) is > 0, else 0.

    `where`, not `x * m`: a NaN or inf placeholder in a missing modality must
    not leak into the output (0 * NaN is NaN).
    """
    return ops.where(m > 0, x, ops.zeros_like(x))


def map_first(features, modality_mask, fusion, why):
    """The modality order of a fusion over the image feature map: the image first.

    Args:
        features: `{modality: tensor}` in model order.
        modality_mask: the mask tensor or `None`.
        fusion: the fusion's name, for messages.
        why: what the fusion does with the map, for the message when there is none.

    Returns:
        The list of modality names, `"image"` first.

    Raises:
        ValueError: no image branch, or a mask whose columns are not image-first.
    """
    if "image" not in features:
        raise ValueError(f"fusion={fusion!r} {why}, so it needs an image branch. "
                         f"Received: modalities={list(features)}")
    order = ["image"] + [m for m in features if m != "image"]
    if modality_mask is not None and list(features) != order:
        raise ValueError(f"fusion={fusion!r} with a modality mask needs the image first.")
    return order


def _shape_list(inputs_shape):
    if isinstance(inputs_shape, dict):
        return list(inputs_shape.values())
    if isinstance(inputs_shape, (list, tuple)) and inputs_shape and isinstance(
        inputs_shape[0], (list, tuple)
    ):
        return list(inputs_shape)
    return [inputs_shape]


class FusionLayer(keras.layers.Layer):
    """Base class: projects each modality into a common embedding space.

    `z_i = W_i x_i + b_i` with one `Dense(fusion_dim)` per modality, so that
    modalities of different sizes can be added, multiplied or attended over.

    Args:
        fusion_dim: size of the common embedding space, or `None` for no
            projection (the inputs must then have equal sizes).
        modalities: names of the inputs, in order (used in messages and by
            `mmzoo.fusion.modality_weights`). Defaults to `input_0, input_1, ...`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).
    """

    #: Rank of each input this layer accepts (2: feature vectors).
    input_ranks = None

    def __init__(self, fusion_dim=None, modalities=None, **kwargs):
        super().__init__(**kwargs)
        if fusion_dim is not None and not (
            isinstance(fusion_dim, int) and not isinstance(fusion_dim, bool) and fusion_dim > 0
        ):
            raise ValueError(
                f"`fusion_dim` must be a positive integer or None. Received: fusion_dim={fusion_dim!r}"
            )
        self.fusion_dim = fusion_dim
        self.modalities = tuple(modalities) if modalities is not None else None
        self.projections = []

    def modality_name(self, i):
        return self.modalities[i] if self.modalities else f"input_{i}"

    def check_shapes(self, inputs_shape, modality_mask_shape=None):
        """Checks the input list (and mask) and returns the list of shapes."""
        shapes = _shape_list(inputs_shape)
        if len(shapes) < 2:
            raise ValueError(
                f"{type(self).__name__} fuses two or more modalities: call it on a "
                f"list of tensors. Received: {len(shapes)} input(s) of shape {inputs_shape}"
            )
        if self.modalities is not None and len(self.modalities) != len(shapes):
            raise ValueError(
                f"{type(self).__name__} was given modalities={self.modalities} but "
                f"called on {len(shapes)} inputs."
            )
        for i, shape in enumerate(shapes):
            expected = 2 if self.input_ranks is None else self.input_ranks[min(i, len(self.input_ranks) - 1)]
            if len(shape) != expected:
                raise ValueError(
                    f"{type(self).__name__} expects the {self.modality_name(i)!r} input to "
                    f"have rank {expected} ({'feature vectors' if expected == 2 else 'a feature map'}; "
                    "with build_model, pooling=None is for fusion='film' or 'relation' only). "
                    f"Received: {self.modality_name(i)} shape={tuple(shape)}"
                )
        if modality_mask_shape is not None:
            if len(modality_mask_shape) != 2 or modality_mask_shape[-1] not in (None, len(shapes)):
                raise ValueError(
                    f"`modality_mask` must have shape (batch, {len(shapes)}): one column "
                    f"per modality. Received: modality_mask shape={tuple(modality_mask_shape)}"
                )
        return shapes

    def build_projections(self, shapes, units=None):
        """Creates one `Dense(units or fusion_dim)` per modality (the common space)."""
        units = units or self.fusion_dim
        self.projections = []
        for i, shape in enumerate(shapes):
            dense = keras.layers.Dense(
                units, name=f"project_{self.modality_name(i)}", dtype=self.dtype_policy
            )
            dense.build(shape)
            self.projections.append(dense)

    def build(self, inputs_shape, modality_mask_shape=None):
        shapes = self.check_shapes(inputs_shape, modality_mask_shape)
        if self.fusion_dim is not None:
            self.build_projections(shapes)
        else:
            sizes = {shape[-1] for shape in shapes}
            if len(sizes) > 1:
                raise ValueError(
                    f"{type(self).__name__} without a projection needs inputs of equal "
                    "size: pass `fusion_dim` to project them into a common space. "
                    f"Received: sizes={[s[-1] for s in shapes]}"
                )

    def project(self, inputs):
        """Returns `[W_i x_i + b_i]`, or the inputs when `fusion_dim` is None."""
        inputs = list(inputs.values()) if isinstance(inputs, dict) else list(inputs)
        if not self.projections:
            return [ops.cast(x, self.compute_dtype) for x in inputs]
        return [proj(x) for proj, x in zip(self.projections, inputs)]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "fusion_dim": self.fusion_dim,
                "modalities": list(self.modalities) if self.modalities is not None else None,
            }
        )
        return config


class WeightsMixin:
    """Per-modality scalar weights: fixed (normalised) or learned (softmax)."""

    def build_weights(self, count):
        if self.fixed_weights is None:
            # Zero logits: every modality starts with the same weight.
            self.weight_logits = self.add_weight(
                name="weight_logits", shape=(count,), initializer="zeros"
            )
        elif len(self.fixed_weights) != count:
            raise ValueError(
                f"{type(self).__name__} has {len(self.fixed_weights)} weights but "
                f"{count} inputs. Received: input_weights={self.fixed_weights}"
            )

    def normalized_weights(self):
        """The weights actually used, summing to 1: a `(num_inputs,)` tensor."""
        if self.fixed_weights is None:
            return ops.softmax(ops.cast(self.weight_logits, self.compute_dtype))
        return ops.convert_to_tensor(self.fixed_weights, dtype=self.compute_dtype)
