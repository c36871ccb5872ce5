"""Low-rank bilinear pooling (MFB, Yu et al. 2017)."""

import keras
from keras import ops

from mmzoo.fusion.base import EPSILON, FusionLayer, mask_columns
from mmzoo.registry import FUSIONS
from mmzoo.validators import positive_int


@keras.saving.register_keras_serializable(package="mmzoo")
class BilinearFusion(FusionLayer):
    """Multi-modal factorized bilinear pooling (MFB).

    Each modality is projected to `fusion_dim * factors` (`U_i x_i + b_i`), the
    projections are multiplied element-wise, sum-pooled over windows of
    `factors` (a rank-`factors` bilinear form per output unit), then
    power-normalised (signed square root) and L2-normalised.

    A missing modality's projection is replaced by ones, so the output is the
    (pooled, normalised) projection of the present modality; with every
    modality missing the output is the normalised pooled ones vector.

    Args:
        fusion_dim: output size `o`.
        factors: rank `k` of the factorisation (MFB uses 5).
        modalities: names of the inputs, in order.
        **kwargs: base layer arguments.

    Example:
    >>> fused = BilinearFusion(32, factors=4)([img, txt])  # (batch, 32)
    """

    def __init__(self, fusion_dim=64, factors=4, modalities=None, **kwargs):
        super().__init__(fusion_dim=fusion_dim, modalities=modalities, **kwargs)
        if not (isinstance(factors, int) and not isinstance(factors, bool) and factors > 0):
            raise ValueError(
                f"`bilinear_factors` must be a positive integer. Received: bilinear_factors={factors!r}"
            )
        self.factors = factors

    def build(self, inputs_shape, modality_mask_shape=None):
        shapes = self.check_shapes(inputs_shape, modality_mask_shape)
        self.build_projections(shapes, units=self.fusion_dim * self.factors)

    def call(self, inputs, modality_mask=None):
        z = self.project(inputs)
        if modality_mask is not None:
            cols = mask_columns(modality_mask, len(z), z[0].dtype)
            z = [ops.where(m > 0, zi, ops.ones_like(zi)) for zi, m in zip(z, cols)]
        joint = z[0]
        for zi in z[1:]:
            joint = joint * zi
        pooled = ops.sum(ops.reshape(joint, (-1, self.fusion_dim, self.factors)), axis=-1)
        # sqrt(|x| + eps) - sqrt(eps): the signed square root with a finite
        # gradient at 0 (the plain one is infinite there and NaNs the weights).
        eps = ops.cast(EPSILON, pooled.dtype)
        root = ops.sign(pooled) * (ops.sqrt(ops.abs(pooled) + eps) - ops.sqrt(eps))
        norm = ops.sqrt(ops.sum(ops.square(root), axis=-1, keepdims=True))
        return root / ops.maximum(norm, EPSILON)

    def get_config(self):
        config = super().get_config()
        config["factors"] = self.factors
        return config


@FUSIONS.register("bilinear", validators={
    "fusion_dim": positive_int, "bilinear_factors": positive_int})
def bilinear_fusion(
    features, modality_mask=None, *, fusion_dim=64, bilinear_factors=4, name="fusion_bilinear"
):
    """Low-rank bilinear pooling of the modalities (MFB).

    Args:
        features: `{modality: (batch, size) tensor}`.
        modality_mask: optional mask; a missing modality multiplies by ones.
        fusion_dim: output size.
        bilinear_factors: rank of each output unit's bilinear form.
        name: the fusion layer's name.

    Returns:
        `(batch, fusion_dim)`, L2-normalised.
    """
    layer = BilinearFusion(
        fusion_dim, factors=bilinear_factors, modalities=tuple(features), name=name
    )
    return layer(list(features.values()), modality_mask=modality_mask)
