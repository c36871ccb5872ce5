"""FiLM: text conditions the image feature map (Perez et al. 2018)."""

import keras
from keras import ops

from mmzoo.fusion.base import FusionLayer, mask_columns, zero_missing
from mmzoo.registry import FUSIONS

FILM_POOLINGS = ("flatten", "avg", "max")


@keras.saving.register_keras_serializable(package="mmzoo")
class FiLMFusion(FusionLayer):
    """Feature-wise linear modulation of a feature map by the other modalities.

    The first input is a feature map `(batch, h, w, c)`; it is projected per
    position to `fusion_dim` channels (a 1x1 convolution, `z = W x + b`). The
    other inputs (vectors) are concatenated and mapped to `gamma, beta`
    (`fusion_dim` each); the output is `pool(relu((1 + gamma) * z + beta))`.
    `1 + gamma` keeps a zero `gamma` the identity.

    A missing conditioning modality is zeroed (so `gamma = beta = 0` when all
    are missing: the map passes unmodulated); a missing map is zeroed
    (the output then depends on the text only, through `beta`).

    Args:
        fusion_dim: channels of the modulated map.
        pooling: how the modulated map becomes a vector: `"flatten"`, `"avg"`
            or `"max"`.
        modalities: names of the inputs, in order (the map first).
        **kwargs: base layer arguments.

    Example:
    >>> fused = FiLMFusion(32, pooling="avg")([image_map, text_feats])
    """

    input_ranks = (4, 2)

    def __init__(self, fusion_dim=64, pooling="avg", modalities=None, **kwargs):
        super().__init__(fusion_dim=fusion_dim, modalities=modalities, **kwargs)
        if pooling not in FILM_POOLINGS:
            raise ValueError(
                "fusion='film' pools the modulated image feature map: `pooling` must "
                f"be one of {', '.join(map(repr, FILM_POOLINGS))}. Received: pooling={pooling!r}"
            )
        self.pooling = pooling

    def build(self, inputs_shape, modality_mask_shape=None):
        shapes = self.check_shapes(inputs_shape, modality_mask_shape)
        self.project_map = keras.layers.Dense(
            self.fusion_dim, name=f"project_{self.modality_name(0)}", dtype=self.dtype_policy
        )
        self.project_map.build(shapes[0])
        cond_size = sum(shape[-1] for shape in shapes[1:])
        self.film = keras.layers.Dense(
            2 * self.fusion_dim,
            name="gamma_beta",
            dtype=self.dtype_policy,
        )
        self.film.build((None, cond_size))

    def call(self, inputs, modality_mask=None):
        inputs = list(inputs)
        fmap, conds = inputs[0], inputs[1:]
        if modality_mask is not None:
            cols = mask_columns(modality_mask, len(inputs), self.compute_dtype)
            fmap = zero_missing(ops.cast(fmap, self.compute_dtype), cols[0][:, :, None, None])
            conds = [zero_missing(ops.cast(c, self.compute_dtype), m) for c, m in zip(conds, cols[1:])]
        z = self.project_map(fmap)
        cond = conds[0] if len(conds) == 1 else ops.concatenate(conds, axis=-1)
        gamma, beta = ops.split(self.film(cond), 2, axis=-1)
        if modality_mask is not None:
            # A bias alone must not modulate when every condition is missing.
            present = ops.max(ops.stack(cols[1:], axis=0), axis=0)
            gamma, beta = gamma * present, beta * present
        out = ops.relu((1.0 + gamma[:, None, None, :]) * z + beta[:, None, None, :])
        if self.pooling == "avg":
            return ops.mean(out, axis=(1, 2))
        if self.pooling == "max":
            return ops.max(out, axis=(1, 2))
        return ops.reshape(out, (-1, out.shape[1] * out.shape[2] * out.shape[3]))

    def get_config(self):
        config = super().get_config()
        config["pooling"] = self.pooling
        return config


@FUSIONS.register("film", feature_maps=("image",))
def film_fusion(features, modality_mask=None, *, fusion_dim=64, pooling="flatten", name="fusion_film"):
    """FiLM: the text produces a scale and shift for each image channel.

    `build_model` builds the image branch with `pooling=None` for this fusion
    (the `feature_maps` registration info) and the fusion pools the modulated
    map with the model's `pooling` option instead.

    Args:
        features: `{"image": (batch, h, w, c) map, "text": (batch, size), ...}`.
        modality_mask: optional mask (see `FiLMFusion`).
        fusion_dim: channels of the modulated map.
        pooling: `"flatten"`, `"avg"` or `"max"` (the branches' default is
            `"flatten"`; `"avg"` keeps the head small).
        name: the fusion layer's name.

    Returns:
        `(batch, fusion_dim)` for avg/max pooling, `(batch, h * w * fusion_dim)`
        for flatten.
    """
    if "image" not in features:
        raise ValueError(
            "fusion='film' conditions the image feature map on the other modalities, "
            f"so it needs an image branch. Received: modalities={list(features)}"
        )
    order = ["image"] + [m for m in features if m != "image"]
    if modality_mask is not None and list(features) != order:
        raise ValueError("fusion='film' with a modality mask needs the image first.")
    layer = FiLMFusion(fusion_dim, pooling=pooling, modalities=tuple(order), name=name)
    return layer([features[m] for m in order], modality_mask=modality_mask)
