"""FiLM: text conditions the image feature map (Perez et al. 2018)."""

import keras
from keras import ops

from mmzoo.coordconv import coordinate_grid
from mmzoo.fusion.base import FusionLayer, map_first, mask_columns, zero_missing
from mmzoo.fusion.relation import RelationFusion
from mmzoo.branches.image import POOLING
from mmzoo.registry import FUSIONS
from mmzoo.validators import boolean, choice, optional_positive_int, positive_int

FILM_POOLINGS = ("flatten", "avg", "max")
FILM_READOUTS = ("pool", "relation", "spatial_softmax")


@keras.saving.register_keras_serializable(package="mmzoo")
class FiLMFusion(FusionLayer):
    """Feature-wise linear modulation of a feature map by the other modalities.

    The first input is a feature map `(batch, h, w, c)`, the others vectors,
    concatenated into the condition `q`. One `Dense` maps `q` to a scale and
    shift `(gamma_i, beta_i)` (`fusion_dim` each) for every block `i`;
    `1 + gamma` keeps a zero `gamma` the identity.

    - Block 1 projects the map per position to `fusion_dim` channels (a 1x1
      convolution, `z = W x + b`) and modulates it:
      `z = relu((1 + gamma_1) * z + beta_1)`. With `film_blocks=1` this is the
      whole layer.
    - Blocks 2..`film_blocks` are the residual blocks of FiLM (Perez et al.
      2018): `h = relu(conv1x1(z))`, `y = BN(conv3x3(h))` (batch norm without
      its own scale and shift), `y = relu((1 + gamma_i) * y + beta_i)`,
      `z = h + y`. Conditioning at several depths lets the question steer
      each stage of the visual reasoning.
    - With `film_output_dim`, a last 1x1 convolution + ReLU maps the result
      to that many channels before pooling (Perez et al.'s classifier conv).
    - With `coord_channels`, every 1x1 convolution also sees two coordinate
      channels (CoordConv, `mmzoo.coordconv`), so positions survive pooling.
    - The readout turns the modulated map into a vector. `"pool"` pools it
      (`pooling`). `"relation"` runs a relation network (`RelationFusion`,
      Santoro et al. 2017) over all pairs of its cells, tagged with their
      coordinates and conditioned on `q`: FiLM picks out the objects the
      question names, the relation network compares where they are (the
      FiLM + RN combination of Santoro et al.'s CLEVR model family). Its
      width is `film_output_dim or fusion_dim`, its depth `relation_layers`.
      `"spatial_softmax"` pools the map (`pooling`, avg or max) and also
      reads, for every channel, where it fires: a softmax over the cells
      turns the channel into a distribution whose expected row and column
      (in [-1, 1]) are appended ("spatial soft-argmax", Levine et al. 2016,
      "End-to-End Training of Deep Visuomotor Policies"; Finn et al. 2016).
      When FiLM makes one channel find the first object a question names
      and another the second, "is A left of B?" becomes a comparison of two
      numbers of the output, where max-pooling alone leaves it to be
      discovered through the ReLUs.

    A missing conditioning modality is zeroed (so `gamma = beta = 0` when all
    are missing: the map passes unmodulated); a missing map is zeroed
    (the output then depends on the text only, through `beta`).

    Args:
        fusion_dim: channels of the modulated map.
        pooling: how the modulated map becomes a vector: `"flatten"`, `"avg"`
            or `"max"` (global max-pooling keeps the strongest response
            wherever it is).
        modalities: names of the inputs, in order (the map first).
        film_blocks: number of FiLM blocks, >= 1.
        coord_channels: append coordinate channels before each 1x1 convolution.
        film_output_dim: channels of the final 1x1 convolution, or `None`
            for none; with the relation readout, the relation network's width
            instead (no 1x1 convolution).
        film_readout: `"pool"`, `"relation"` or `"spatial_softmax"` (see
            above).
        relation_layers: layers of the relation readout's `g`, >= 1.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: `[image_map (batch, h, w, c), condition (batch, size), ...]`.
        modality_mask: optional `(batch, len(inputs))` mask, 1.0 = present.
        return_map: also return the last modulated map `(batch, h, w,
            channels)`, the one the readout reads (for Grad-CAM: the
            network's last convolutional feature map, `mmzoo.explain`).

    Output: `(batch, channels)` for avg/max pooling and the relation readout,
    `(batch, 3 * channels)` for the spatial-softmax readout (pooled values,
    then the expected rows, then the expected columns), `(batch, h * w *
    channels)` for flatten, where `channels` is `film_output_dim or fusion_dim`.

    Example:
    >>> fused = FiLMFusion(32, pooling="max", film_blocks=4)([image_map, text_feats])
    """

    input_ranks = (4, 2)

    def __init__(self, fusion_dim=64, pooling="avg", modalities=None, film_blocks=1,
                 coord_channels=False, film_output_dim=None, film_readout="pool",
                 relation_layers=2, **kwargs):
        super().__init__(fusion_dim=fusion_dim, modalities=modalities, **kwargs)
        if pooling not in FILM_POOLINGS:
            raise ValueError(
                "fusion='film' pools the modulated image feature map: `pooling` must "
                f"be one of {', '.join(map(repr, FILM_POOLINGS))}. Received: pooling={pooling!r}"
            )
        if not (isinstance(film_blocks, int) and not isinstance(film_blocks, bool)
                and film_blocks >= 1):
            raise ValueError("`film_blocks` must be a positive integer. "
                             f"Received: film_blocks={film_blocks!r}")
        if film_output_dim is not None and not (
                isinstance(film_output_dim, int) and not isinstance(film_output_dim, bool)
                and film_output_dim > 0):
            raise ValueError("`film_output_dim` must be None or a positive integer. "
                             f"Received: film_output_dim={film_output_dim!r}")
        if film_readout not in FILM_READOUTS:
            raise ValueError("`film_readout` must be one of "
                             f"{', '.join(map(repr, FILM_READOUTS))}. "
                             f"Received: film_readout={film_readout!r}")
        if film_readout == "spatial_softmax" and pooling == "flatten":
            raise ValueError("film_readout='spatial_softmax' pools the map beside the "
                             "keypoints: `pooling` must be 'avg' or 'max'. "
                             f"Received: pooling={pooling!r}")
        self.pooling = pooling
        self.film_readout = film_readout
        self.relation_layers = relation_layers
        self.film_blocks = film_blocks
        self.coord_channels = bool(coord_channels)
        self.film_output_dim = film_output_dim

    def _dense(self, units, name, in_channels):
        layer = keras.layers.Dense(units, name=name, dtype=self.dtype_policy)
        layer.build((None, None, None, in_channels))
        return layer

    def build(self, inputs_shape, modality_mask_shape=None):
        shapes = self.check_shapes(inputs_shape, modality_mask_shape)
        extra = 2 if self.coord_channels else 0
        dim = self.fusion_dim
        self.project_map = self._dense(dim, f"project_{self.modality_name(0)}",
                                       shapes[0][-1] + extra)
        cond_size = sum(shape[-1] for shape in shapes[1:])
        self.film = keras.layers.Dense(
            2 * dim * self.film_blocks,
            name="gamma_beta",
            dtype=self.dtype_policy,
        )
        self.film.build((None, cond_size))
        self.blocks = []
        for i in range(2, self.film_blocks + 1):
            entry = self._dense(dim, f"block{i}_conv1x1", dim + extra)
            conv = keras.layers.Conv2D(dim, 3, padding="same", name=f"block{i}_conv3x3",
                                       dtype=self.dtype_policy)
            conv.build((None, None, None, dim))
            norm = keras.layers.BatchNormalization(center=False, scale=False,
                                                   name=f"block{i}_bn", dtype=self.dtype_policy)
            norm.build((None, None, None, dim))
            self.blocks.append((entry, conv, norm))
        self.output_conv = self.readout = None
        if self.film_readout == "relation":
            # The condition is already zeroed where missing: no mask inside.
            self.readout = RelationFusion(self.film_output_dim or dim,
                                          relation_layers=self.relation_layers,
                                          modalities=("map", "condition"),
                                          name="relation_readout", dtype=self.dtype_policy)
            self.readout.build([(None,) + tuple(shapes[0][1:-1]) + (dim,), (None, cond_size)])
        elif self.film_output_dim:
            self.output_conv = self._dense(self.film_output_dim, "output_conv1x1", dim + extra)

    def _coords(self, x):
        if not self.coord_channels:
            return x
        _, height, width, _ = x.shape
        grid = coordinate_grid(height, width, self.compute_dtype)
        grid = ops.broadcast_to(grid[None], (ops.shape(x)[0], height, width, 2))
        return ops.concatenate([x, grid], axis=-1)

    def call(self, inputs, modality_mask=None, training=None, return_map=False):
        inputs = list(inputs)
        fmap, conds = inputs[0], inputs[1:]
        fmap = ops.cast(fmap, self.compute_dtype)
        if modality_mask is not None:
            cols = mask_columns(modality_mask, len(inputs), self.compute_dtype)
            fmap = zero_missing(fmap, cols[0][:, :, None, None])
            conds = [zero_missing(ops.cast(c, self.compute_dtype), m) for c, m in zip(conds, cols[1:])]
        cond = conds[0] if len(conds) == 1 else ops.concatenate(conds, axis=-1)
        # Laid out [gamma_1, beta_1, gamma_2, beta_2, ...]; 2-D column slices
        # (no higher-rank strided slices: TFLite supports 1-5 dimensions).
        gamma_beta = self.film(cond)
        if modality_mask is not None:
            # A bias alone must not modulate when every condition is missing.
            present = ops.max(ops.stack(cols[1:], axis=0), axis=0)
            gamma_beta = gamma_beta * present
        dim = self.fusion_dim

        def modulate(x, i):
            gamma = ops.reshape(gamma_beta[:, 2 * i * dim:(2 * i + 1) * dim], (-1, 1, 1, dim))
            beta = ops.reshape(gamma_beta[:, (2 * i + 1) * dim:(2 * i + 2) * dim], (-1, 1, 1, dim))
            return ops.relu((1.0 + gamma) * x + beta)

        z = modulate(self.project_map(self._coords(fmap)), 0)
        for i, (entry, conv, norm) in enumerate(self.blocks, start=1):
            h = ops.relu(entry(self._coords(z)))
            z = h + modulate(norm(conv(h), training=training), i)
        if self.readout is not None:
            out = self.readout([z, cond])
        else:
            if self.output_conv is not None:
                z = ops.relu(self.output_conv(self._coords(z)))
            if self.pooling == "flatten":
                out = ops.reshape(z, (-1, z.shape[1] * z.shape[2] * z.shape[3]))
            else:
                out = (ops.mean(z, axis=(1, 2)) if self.pooling == "avg"
                       else ops.max(z, axis=(1, 2)))
                if self.film_readout == "spatial_softmax":
                    out = ops.concatenate([out, self._expected_coordinates(z)], axis=-1)
        return (out, z) if return_map else out

    def _expected_coordinates(self, z):
        """`(batch, 2 * channels)`: each channel's softmax-weighted mean row, then column."""
        _, height, width, channels = z.shape
        weights = ops.softmax(ops.reshape(z, (-1, height * width, channels)), axis=1)
        grid = ops.reshape(coordinate_grid(height, width, self.compute_dtype),
                           (height * width, 2))
        # (batch, channels, cells) @ (cells, 2) -> (batch, channels, 2)
        coords = ops.matmul(ops.transpose(weights, (0, 2, 1)), grid)
        return ops.concatenate([coords[:, :, 0], coords[:, :, 1]], axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update({"pooling": self.pooling, "film_blocks": self.film_blocks,
                       "coord_channels": self.coord_channels,
                       "film_output_dim": self.film_output_dim})
        if self.film_readout != "pool":  # configs of pooled models stay as they were
            config.update({"film_readout": self.film_readout,
                           "relation_layers": self.relation_layers})
        return config


@FUSIONS.register("film", feature_maps=("image",), validators={
    "fusion_dim": positive_int, "pooling": POOLING, "film_blocks": positive_int,
    "coord_channels": boolean, "film_output_dim": optional_positive_int,
    "film_readout": choice(*FILM_READOUTS), "relation_layers": positive_int})
def film_fusion(features, modality_mask=None, *, fusion_dim=64, pooling="flatten", film_blocks=1,
                coord_channels=False, film_output_dim=None, film_readout="pool",
                relation_layers=2, name="fusion_film"):
    """FiLM: the text produces a scale and shift for each image channel.

    `build_model` builds the image branch with `pooling=None` for this fusion
    (the `feature_maps` registration info) and the fusion pools the modulated
    map with the model's `pooling` option instead.

    Args:
        features: `{"image": (batch, h, w, c) map, "text": (batch, size), ...}`.
        modality_mask: optional mask (see `FiLMFusion`).
        fusion_dim: channels of the modulated map.
        pooling: `"flatten"`, `"avg"` or `"max"` (the branches' default is
            `"flatten"`; `"avg"` and `"max"` keep the head small).
        film_blocks: FiLM blocks: 1 modulates the projected map once; each
            further block is a residual block of Perez et al. (2018).
        coord_channels: coordinate channels before each 1x1 convolution
            (shared with the image branch's option of the same name).
        film_output_dim: channels of a last 1x1 convolution before pooling,
            or `None`; with `film_readout="relation"`, the relation network's
            width.
        film_readout: `"pool"` (pool the modulated map with `pooling`),
            `"relation"` (a relation network over pairs of its cells,
            Santoro et al. 2017; costs `(h * w)^2` pairs: keep maps small) or
            `"spatial_softmax"` (pooled values plus each channel's expected
            row and column under a softmax over the cells; Levine et al. 2016).
        relation_layers: layers of the relation readout's `g`.
        name: the fusion layer's name.

    Returns:
        `(batch, channels)` for avg/max pooling and the relation readout,
        `(batch, 3 * channels)` for the spatial-softmax readout,
        `(batch, h * w * channels)` for flatten (`channels`:
        `film_output_dim or fusion_dim`).
    """
    order = map_first(features, modality_mask, "film",
                      "conditions the image feature map on the other modalities")
    layer = FiLMFusion(fusion_dim, pooling=pooling, modalities=tuple(order),
                       film_blocks=film_blocks, coord_channels=coord_channels,
                       film_output_dim=film_output_dim, film_readout=film_readout,
                       relation_layers=relation_layers, name=name)
    return layer([features[m] for m in order], modality_mask=modality_mask)
