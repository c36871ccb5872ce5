"""Layer-level fusion: the depth at which the modality stacks meet is a parameter."""

import keras
from keras import ops

from mmzoo.fusion.base import FusionLayer, mask_columns, zero_missing
from mmzoo.registry import FUSIONS
from mmzoo.validators import non_negative_int, positive_int


@keras.saving.register_keras_serializable(package="mmzoo")
class LayerFusion(FusionLayer):
    """A stack of `num_layers` Dense(fusion_dim, relu) layers; the modalities meet at `depth`.

    Each modality first runs through its own `depth` layers, then the results
    are concatenated and run through the remaining `num_layers - depth`
    shared layers. `depth=0` is early fusion (concatenate, then shared
    layers); `depth=num_layers` keeps the modalities apart until the end. The
    total depth stays the same, so depths compare fairly.

    A missing modality's private output (or, at `depth=0`, its input) is
    zeroed before the stacks meet.

    Args:
        fusion_dim: units of every layer.
        depth: how many private layers each modality has, `0..num_layers`.
        num_layers: total layers (private + shared), at least 1.
        modalities: names of the inputs, in order.
        **kwargs: base layer arguments.

    Example:
    >>> fused = LayerFusion(32, depth=1, num_layers=2)([img, txt])  # (batch, 32 or 64)
    """

    def __init__(self, fusion_dim=64, depth=1, num_layers=2, modalities=None, **kwargs):
        super().__init__(fusion_dim=fusion_dim, modalities=modalities, **kwargs)
        if not (isinstance(num_layers, int) and num_layers >= 1):
            raise ValueError(
                f"`fusion_layers` must be a positive integer. Received: fusion_layers={num_layers!r}"
            )
        if not (isinstance(depth, int) and 0 <= depth <= num_layers):
            raise ValueError(
                f"`fusion_depth` must be an integer in [0, fusion_layers={num_layers}]: the "
                f"number of private layers per modality before they meet. "
                f"Received: fusion_depth={depth!r}"
            )
        self.depth = depth
        self.num_layers = num_layers

    def _dense(self, name, input_size):
        layer = keras.layers.Dense(
            self.fusion_dim, activation="relu", name=name, dtype=self.dtype_policy
        )
        layer.build((None, input_size))
        return layer

    def build(self, inputs_shape, modality_mask_shape=None):
        shapes = self.check_shapes(inputs_shape, modality_mask_shape)
        # A flat list (modality-major): nested lists of layers are not tracked.
        self.private = []
        for i, shape in enumerate(shapes):
            size = shape[-1]
            for j in range(self.depth):
                self.private.append(self._dense(f"{self.modality_name(i)}_{j + 1}", size))
                size = self.fusion_dim
        size = sum(shape[-1] for shape in shapes) if self.depth == 0 else self.fusion_dim * len(shapes)
        self.shared = []
        for j in range(self.num_layers - self.depth):
            self.shared.append(self._dense(f"shared_{j + 1}", size))
            size = self.fusion_dim

    def call(self, inputs, modality_mask=None):
        xs = [ops.cast(x, self.compute_dtype) for x in inputs]
        cols = None
        if modality_mask is not None:
            # Zeroed before the private layers too: a NaN placeholder must not
            # pass through them.
            cols = mask_columns(modality_mask, len(xs), self.compute_dtype)
            xs = [zero_missing(x, m) for x, m in zip(xs, cols)]
        out = []
        for i, x in enumerate(xs):
            for layer in self.private[i * self.depth : (i + 1) * self.depth]:
                x = layer(x)
            out.append(x)
        if cols is not None:
            out = [zero_missing(x, m) for x, m in zip(out, cols)]
        x = ops.concatenate(out, axis=-1)
        for layer in self.shared:
            x = layer(x)
        return x

    def get_config(self):
        config = super().get_config()
        config.update({"depth": self.depth, "num_layers": self.num_layers})
        return config


@FUSIONS.register("layer", validators={
    "fusion_dim": positive_int, "fusion_depth": non_negative_int, "fusion_layers": positive_int})
def layer_fusion(
    features,
    modality_mask=None,
    *,
    fusion_dim=64,
    fusion_depth=1,
    fusion_layers=2,
    name="fusion_layer",
):
    """Layer-level fusion: the modalities meet after `fusion_depth` private layers.

    Args:
        features: `{modality: (batch, size) tensor}`.
        modality_mask: optional mask; a missing modality is zeroed where the
            stacks meet.
        fusion_dim: units of each fusion layer.
        fusion_depth: private layers per modality before they meet (0 = early).
        fusion_layers: total fusion layers, private plus shared.
        name: the fusion layer's name.

    Returns:
        `(batch, fusion_dim)`, or `(batch, num_modalities * fusion_dim)` when
        `fusion_depth == fusion_layers`.
    """
    layer = LayerFusion(
        fusion_dim,
        depth=fusion_depth,
        num_layers=fusion_layers,
        modalities=tuple(features),
        name=name,
    )
    return layer(list(features.values()), modality_mask=modality_mask)
