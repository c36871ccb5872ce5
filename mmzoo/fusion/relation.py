"""Relation network fusion: reasoning over pairs of image cells (Santoro et al. 2017)."""

import keras
from keras import ops

from mmzoo.coordconv import coordinate_grid
from mmzoo.fusion.base import FusionLayer, map_first, mask_columns, zero_missing
from mmzoo.registry import FUSIONS
from mmzoo.validators import positive_int


@keras.saving.register_keras_serializable(package="mmzoo")
class RelationFusion(FusionLayer):
    """A relation network conditioned on the other modalities.

    The first input is a feature map `(batch, h, w, c)`: each of its `n = h *
    w` cells is an "object" `o_i`, tagged with its coordinates (row, column
    in [-1, 1]). The other inputs (vectors) are concatenated into the
    question `q`. Then

        RN(O, q) = f( mean_{i, j} g([o_i, o_j, q]) )

    where `g` is an MLP of `relation_layers` ReLU layers of `fusion_dim`
    units applied to every ordered pair of cells, and `f` one ReLU layer of
    `fusion_dim` units ("A simple neural network module for relational
    reasoning", Santoro et al., NeurIPS 2017). The paper sums over pairs;
    the mean only rescales that sum and keeps activations independent of
    the map size.

    `g`'s first layer is linear in its concatenated input, so it is computed
    as `W_a o_i + W_b o_j + W_q q` from per-cell projections and broadcast
    to the `n^2` pairs: the pair cost is `relation_layers - 1` dense layers
    on `(batch, n, n, fusion_dim)`. Keep maps small (4x4 or 8x8 cells).

    A missing map is zeroed (the cells then differ only by their
    coordinates); a missing question is zeroed.

    Args:
        fusion_dim: units of every layer of `g` and of `f`.
        relation_layers: layers of `g`, >= 1.
        modalities: names of the inputs, in order (the map first).
        **kwargs: base layer arguments.

    Output: `(batch, fusion_dim)`.

    Example:
    >>> fused = RelationFusion(64)([image_map, question_feats])   # (batch, 64)
    """

    input_ranks = (4, 2)

    def __init__(self, fusion_dim=64, relation_layers=2, modalities=None, **kwargs):
        if fusion_dim is None:
            raise ValueError("RelationFusion needs `fusion_dim`: the width of g and f. "
                             "Received: fusion_dim=None")
        super().__init__(fusion_dim=fusion_dim, modalities=modalities, **kwargs)
        if not (isinstance(relation_layers, int) and not isinstance(relation_layers, bool)
                and relation_layers >= 1):
            raise ValueError("`relation_layers` must be a positive integer. "
                             f"Received: relation_layers={relation_layers!r}")
        self.relation_layers = relation_layers

    def _dense(self, name, in_size, use_bias=True):
        layer = keras.layers.Dense(self.fusion_dim, name=name, use_bias=use_bias,
                                   dtype=self.dtype_policy)
        layer.build((None, in_size))
        return layer

    def build(self, inputs_shape, modality_mask_shape=None):
        shapes = self.check_shapes(inputs_shape, modality_mask_shape)
        _, height, width, channels = shapes[0]
        if height is None or width is None:
            raise ValueError("RelationFusion needs a feature map with a static height and "
                             f"width. Received: {self.modality_name(0)} shape={shapes[0]}")
        cell = channels + 2  # + coordinates
        question = sum(shape[-1] for shape in shapes[1:])
        self.g_first = self._dense("g_object_i", cell)
        self.g_second = self._dense("g_object_j", cell, use_bias=False)
        self.g_question = self._dense("g_question", question, use_bias=False)
        self.g_layers = [self._dense(f"g_{i}", self.fusion_dim)
                         for i in range(2, self.relation_layers + 1)]
        self.f = self._dense("f", self.fusion_dim)

    def call(self, inputs, modality_mask=None):
        inputs = [ops.cast(x, self.compute_dtype) for x in inputs]
        fmap, conds = inputs[0], inputs[1:]
        if modality_mask is not None:
            cols = mask_columns(modality_mask, len(inputs), self.compute_dtype)
            fmap = zero_missing(fmap, cols[0][:, :, None, None])
            conds = [zero_missing(c, m) for c, m in zip(conds, cols[1:])]
        question = conds[0] if len(conds) == 1 else ops.concatenate(conds, axis=-1)
        _, height, width, channels = fmap.shape
        grid = coordinate_grid(height, width, self.compute_dtype)
        grid = ops.broadcast_to(grid[None], (ops.shape(fmap)[0], height, width, 2))
        objects = ops.reshape(ops.concatenate([fmap, grid], axis=-1),
                              (-1, height * width, channels + 2))
        a = self.g_first(objects)                       # (batch, n, d), W_a o_i + b
        b = self.g_second(objects)                      # (batch, n, d), W_b o_j
        q = self.g_question(question)                   # (batch, d),    W_q q
        pairs = ops.relu(a[:, :, None, :] + b[:, None, :, :] + q[:, None, None, :])
        for layer in self.g_layers:
            pairs = ops.relu(layer(pairs))
        relations = ops.mean(pairs, axis=(1, 2))
        return ops.relu(self.f(relations))

    def get_config(self):
        config = super().get_config()
        config["relation_layers"] = self.relation_layers
        return config


@FUSIONS.register("relation", feature_maps=("image",), validators={
    "fusion_dim": positive_int, "relation_layers": positive_int})
def relation_fusion(features, modality_mask=None, *, fusion_dim=64, relation_layers=2,
                    name="fusion_relation"):
    """Relation network: g over all pairs of image cells and the text, then f.

    `build_model` builds the image branch with `pooling=None` (the
    `feature_maps` registration info): the cells of its last feature map are
    the objects. See `RelationFusion`.

    Args:
        features: `{"image": (batch, h, w, c) map, "text": (batch, size), ...}`.
        modality_mask: optional mask (see `RelationFusion`).
        fusion_dim: units of g and f.
        relation_layers: layers of g.
        name: the fusion layer's name.

    Returns:
        `(batch, fusion_dim)`.
    """
    order = map_first(features, modality_mask, "relation",
                      "relates the cells of the image feature map")
    layer = RelationFusion(fusion_dim, relation_layers=relation_layers,
                           modalities=tuple(order), name=name)
    return layer([features[m] for m in order], modality_mask=modality_mask)
