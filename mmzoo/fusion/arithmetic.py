"""Element-wise fusions in a common embedding space: sum, product, weighted sum.

The seeds' "parallel" fusion is `sum` (f1 + f2), "serial" fusion is `product`
(f1 * f2), and the weighted form F = a*f1 + b*f2 + ... is `weighted`. Each
first projects every modality to `fusion_dim` (z = W x + b) so the sizes match.
"""

import keras
from keras import ops

from mmzoo.fusion.base import (
    EPSILON,
    FusionLayer,
    WeightsMixin,
    check_weights,
    fixed_weights,
    mask_columns,
    zero_missing,
)
from mmzoo.registry import FUSIONS
from mmzoo.validators import positive_int


@keras.saving.register_keras_serializable(package="mmzoo")
class SumFusion(FusionLayer):
    """Parallel fusion: `F = z_1 + z_2 + ...` with `z_i = W_i x_i + b_i`.

    A missing modality contributes zero (it drops out of the sum).

    Args:
        fusion_dim: size of the common embedding space.
        modalities: names of the inputs, in order.
        **kwargs: base layer arguments.

    Example:
    >>> fused = SumFusion(64)([image_feats, text_feats])  # (batch, 64)
    """

    def __init__(self, fusion_dim=64, modalities=None, **kwargs):
        super().__init__(fusion_dim=fusion_dim, modalities=modalities, **kwargs)

    def call(self, inputs, modality_mask=None):
        z = self.project(inputs)
        if modality_mask is not None:
            cols = mask_columns(modality_mask, len(z), z[0].dtype)
            z = [zero_missing(zi, m) for zi, m in zip(z, cols)]
        return ops.sum(ops.stack(z, axis=0), axis=0)


@keras.saving.register_keras_serializable(package="mmzoo")
class ProductFusion(FusionLayer):
    """Serial fusion: `F = z_1 * z_2 * ...` (element-wise), `z_i = W_i x_i + b_i`.

    A missing modality contributes ones (the identity of the product), so the
    output is the product of the present modalities' projections.

    Args:
        fusion_dim: size of the common embedding space.
        modalities: names of the inputs, in order.
        **kwargs: base layer arguments.
    """

    def __init__(self, fusion_dim=64, modalities=None, **kwargs):
        super().__init__(fusion_dim=fusion_dim, modalities=modalities, **kwargs)

    def call(self, inputs, modality_mask=None):
        z = self.project(inputs)
        if modality_mask is not None:
            cols = mask_columns(modality_mask, len(z), z[0].dtype)
            z = [ops.where(m > 0, zi, ops.ones_like(zi)) for zi, m in zip(z, cols)]
        out = z[0]
        for zi in z[1:]:
            out = out * zi
        return out


@keras.saving.register_keras_serializable(package="mmzoo")
class WeightedFusion(WeightsMixin, FusionLayer):
    """Weighted sum `F = a*z_1 + b*z_2 + ...`, the weights normalised to sum to 1.

    With `input_weights=None` the weights are learned (softmax of one trainable logit
    per input, starting equal); otherwise they are fixed and normalised. With a
    mask, the weights are renormalised over the present inputs:
    `F = sum(m_i w_i z_i) / sum(m_i w_i)`; all missing gives zeros. With
    `fusion_dim=None` the inputs are averaged as they are (late fusion of
    predictions, bagging).

    Args:
        fusion_dim: size of the common space, or `None` for no projection.
        input_weights: `None` (learned) or one non-negative number per input.
        always_present: the first `always_present` inputs have no mask column
            (they are never missing; hybrid fusion's early-fused prediction).
        modalities: names of the inputs, in order.
        **kwargs: base layer arguments.

    Example:
    >>> fused = WeightedFusion(64, input_weights=(0.7, 0.3))([image_feats, text_feats])
    """

    def __init__(
        self, fusion_dim=64, input_weights=None, always_present=0, modalities=None, **kwargs
    ):
        super().__init__(fusion_dim=fusion_dim, modalities=modalities, **kwargs)
        self.fixed_weights = (
            None
            if input_weights is None
            else check_weights(input_weights, len(tuple(input_weights)), "input_weights", "input")
        )
        self.always_present = int(always_present)

    def build(self, inputs_shape, modality_mask_shape=None):
        shapes = self.check_shapes(inputs_shape, None)
        if modality_mask_shape is not None and modality_mask_shape[-1] not in (
            None,
            len(shapes) - self.always_present,
        ):
            raise ValueError(
                f"`modality_mask` must have one column per masked input "
                f"({len(shapes) - self.always_present}). Received: modality_mask "
                f"shape={tuple(modality_mask_shape)}"
            )
        super().build(inputs_shape)
        self.build_weights(len(shapes))

    def call(self, inputs, modality_mask=None):
        z = self.project(inputs)
        w = self.normalized_weights()
        if modality_mask is None:
            return sum(w[i] * zi for i, zi in enumerate(z))
        cols = mask_columns(modality_mask, len(z) - self.always_present, z[0].dtype)
        cols = [ops.ones_like(cols[0])] * self.always_present + cols
        scaled = [w[i] * cols[i] for i in range(len(z))]
        total = sum(scaled)
        weighted = sum(zero_missing(s * zi, s) for s, zi in zip(scaled, z))
        return weighted / ops.maximum(total, EPSILON)

    def get_config(self):
        config = super().get_config()
        config.update({"input_weights": self.fixed_weights, "always_present": self.always_present})
        return config


@FUSIONS.register("sum", validators={"fusion_dim": positive_int})
def sum_fusion(features, modality_mask=None, *, fusion_dim=64, name="fusion_sum"):
    """Parallel fusion: projects each modality to `fusion_dim` and adds them.

    Args:
        features: `{modality: (batch, size) tensor}`.
        modality_mask: optional `(batch, num_modalities)` mask; a missing
            modality adds nothing.
        fusion_dim: size of the common embedding space.
        name: the fusion layer's name.

    Returns:
        `(batch, fusion_dim)`.
    """
    layer = SumFusion(fusion_dim, modalities=tuple(features), name=name)
    return layer(list(features.values()), modality_mask=modality_mask)


@FUSIONS.register("product", validators={"fusion_dim": positive_int})
def product_fusion(features, modality_mask=None, *, fusion_dim=64, name="fusion_product"):
    """Serial fusion: projects each modality to `fusion_dim` and multiplies them.

    Args:
        features: `{modality: (batch, size) tensor}`.
        modality_mask: optional mask; a missing modality multiplies by one.
        fusion_dim: size of the common embedding space.
        name: the fusion layer's name.

    Returns:
        `(batch, fusion_dim)`.
    """
    layer = ProductFusion(fusion_dim, modalities=tuple(features), name=name)
    return layer(list(features.values()), modality_mask=modality_mask)


@FUSIONS.register("weighted", validators={
    "fusion_dim": positive_int, "fusion_weights": fixed_weights})
def weighted_fusion(
    features, modality_mask=None, *, fusion_dim=64, fusion_weights=None, name="fusion_weighted"
):
    """Weighted sum of the projected modalities, `F = a*z_image + b*z_text`.

    Args:
        features: `{modality: (batch, size) tensor}`.
        modality_mask: optional mask; weights are renormalised over the present
            modalities.
        fusion_dim: size of the common embedding space.
        fusion_weights: `None` to learn the weights, or one non-negative
            number per modality (normalised to sum to 1), e.g. `(0.7, 0.3)`.
        name: the fusion layer's name.

    Returns:
        `(batch, fusion_dim)`.
    """
    weights = check_weights(fusion_weights, len(features))
    layer = WeightedFusion(fusion_dim, input_weights=weights, modalities=tuple(features), name=name)
    return layer(list(features.values()), modality_mask=modality_mask)
