"""`DualEncoderModel`: an image tower and a text tower in one shared space (CLIP-style).

Each modality goes through its registered branch (`IMAGE_BRANCHES`,
`TEXT_BRANCHES`, pooled to a vector), then the retrieval head: a linear
projection to `projection_dim` and L2 normalisation
(`keras.layers.UnitNormalization`). Matching pairs are pulled together and
the other pairs of the batch pushed apart by the symmetric InfoNCE loss with a
learned temperature (`InfoNCELoss`):

    logits = exp(s) * I T^T              (batch, batch), s learned
    loss = (CE(logits, diag) + CE(logits^T, diag)) / 2

as in CLIP (Radford et al., "Learning Transferable Visual Models From Natural
Language Supervision", 2021) after van den Oord et al.'s InfoNCE ("Representation
Learning with Contrastive Predictive Coding", 2018). The loss needs no labels:
pair `i` of a batch is image `i` with text `i`, so `fit` ignores `y`.

Inputs: `"image"` raw pixels 0..255 `(batch, H, W, C)` and `"text"` int token
ids `(batch, sequence_length)`. Outputs: `"image_embeds"` and `"text_embeds"`,
`(batch, projection_dim)` float32 unit vectors. `model.image_tower` and
`model.text_tower` are single-input models sharing the weights: embed a
gallery with one, queries with the other, or export each alone.
"""

import math

import keras
from keras import ops

from mmzoo.registry import HEADS, IMAGE_BRANCHES, TASKS, TEXT_BRANCHES
from mmzoo.tasks.model import OptionsModel
from mmzoo.tasks.options import MODEL_DEFAULTS, check_values, fill_component_options
from mmzoo.validators import fail, positive_int, positive_number

#: The model's outputs, per modality.
OUTPUTS = {"image": "image_embeds", "text": "text_embeds"}

# Model-level options of a dual encoder, with their defaults (branch and head
# options come from the registered components).
MODEL_OPTIONS = {
    "image_branch": "convnet",
    "text_branch": "gru",
    "image_shape": MODEL_DEFAULTS["image_shape"],
    "sequence_length": 32,
    "name": None,
}
# A dual encoder embeds each modality alone: the branches must give vectors.
POOLINGS = ("flatten", "avg", "max")


@keras.saving.register_keras_serializable(package="mmzoo")
class InfoNCELoss(keras.layers.Layer):
    """The symmetric InfoNCE (CLIP) loss of paired embeddings, with a learned temperature.

    Called on `[image_embeds, text_embeds]` (both `(batch, d)`, L2-normalised),
    it adds `(CE(s I T^T, diag) + CE(s T I^T, diag)) / 2` to the model's losses
    (`add_loss`) and returns its inputs unchanged. `s = exp(logit_scale)`, the
    inverse temperature, is learned from `1 / initial_temperature` and capped
    at `max_logit_scale` (CLIP's 100) so training cannot blow it up.

    Args:
        initial_temperature: the starting temperature (CLIP: 0.07), > 0.
        max_logit_scale: the cap of `exp(logit_scale)`.
        **kwargs: base layer arguments.
    """

    def __init__(self, initial_temperature=0.07, max_logit_scale=100.0, **kwargs):
        super().__init__(**kwargs)
        if not (isinstance(initial_temperature, (int, float)) and initial_temperature > 0):
            raise ValueError("`initial_temperature` must be a positive number. Received: "
                             f"initial_temperature={initial_temperature!r}")
        self.initial_temperature = float(initial_temperature)
        self.max_logit_scale = float(max_logit_scale)

    def build(self, input_shape):
        self.logit_scale = self.add_weight(
            shape=(), name="logit_scale", dtype="float32",
            initializer=keras.initializers.Constant(math.log(1.0 / self.initial_temperature)))

    def logits(self, image_embeds, text_embeds):
        """`exp(s) * I T^T`, `(batch, batch)` float32: row `i` scores image `i` against each text."""
        scale = ops.exp(ops.minimum(self.logit_scale, math.log(self.max_logit_scale)))
        image_embeds = ops.cast(image_embeds, "float32")
        text_embeds = ops.cast(text_embeds, "float32")
        return scale * ops.matmul(image_embeds, ops.transpose(text_embeds))

    @property
    def temperature(self):
        """The current temperature `1 / exp(s)` (a Python float)."""
        scale = min(math.exp(float(ops.convert_to_numpy(self.logit_scale))),
                    self.max_logit_scale)
        return 1.0 / scale

    def call(self, inputs):
        image_embeds, text_embeds = inputs
        logits = self.logits(image_embeds, text_embeds)
        labels = ops.arange(ops.shape(logits)[0])
        per_image = keras.losses.sparse_categorical_crossentropy(labels, logits,
                                                                 from_logits=True)
        per_text = keras.losses.sparse_categorical_crossentropy(labels, ops.transpose(logits),
                                                                from_logits=True)
        self.add_loss(0.5 * (ops.mean(per_image) + ops.mean(per_text)))
        return image_embeds, text_embeds

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "initial_temperature": self.initial_temperature,
                "max_logit_scale": self.max_logit_scale}


@HEADS.register("retrieval", output="image_embeds", validators={
    "projection_dim": positive_int, "initial_temperature": positive_number})
def retrieval_head(features, *, projection_dim=64, initial_temperature=0.07,
                   name="retrieval"):
    """Projects each modality into the shared space and adds the InfoNCE loss.

    Args:
        features: `{"image": (batch, a), "text": (batch, b)}` branch vectors.
        projection_dim: size of the shared embedding space.
        initial_temperature: the InfoNCE temperature at the start of
            training (learned; CLIP: 0.07).
        name: prefix of the layer names.

    Returns:
        `{"image": (batch, projection_dim), "text": ...}`, unit vectors
        (after the loss layer, which passes them through).
    """
    embeds = {}
    for modality, x in features.items():
        x = keras.layers.Dense(projection_dim, name=f"{name}_{modality}_projection",
                               dtype="float32")(x)
        embeds[modality] = keras.layers.UnitNormalization(
            name=f"{name}_{modality}_normalize", dtype="float32")(x)
    image, text = InfoNCELoss(initial_temperature, name=f"{name}_infonce")(
        [embeds["image"], embeds["text"]])
    return {"image": image, "text": text}


def resolve_retrieval_options(task, options):
    """Validates the options of a dual encoder and fills in every default.

    Args:
        task: the task name (`"retrieval"`).
        options: the architecture options the user passed.

    Returns:
        A flat dict with `task` and every option the model uses.

    Raises:
        TypeError: an option name that no component knows.
        ValueError: a bad value, or an option a dual encoder does not use.
    """
    values = check_values(options)
    task = TASKS.get(task)
    head = HEADS.get(task.head)
    resolved = {"task": task.name}
    for key, default in MODEL_OPTIONS.items():
        resolved[key] = values.get(key, default)
    components = {"head": head}
    for modality, registry in (("image", IMAGE_BRANCHES), ("text", TEXT_BRANCHES)):
        branch = resolved[f"{modality}_branch"]
        if branch is None:
            fail(f"{modality}_branch", None, f"a {modality} branch name: a dual encoder "
                 "embeds both images and texts")
        components[modality] = registry.get(branch)
    fill_component_options(resolved, values, components)
    if resolved.get("pooling", "flatten") not in POOLINGS:
        fail("pooling", resolved["pooling"],
             "one of 'flatten', 'avg', 'max' for retrieval (each tower gives a vector)")
    for key in sorted(set(values) - set(resolved)):
        raise ValueError(f"`{key}` has no effect on a dual encoder (task={task.name!r}): "
                         "there is no fusion, each modality is embedded alone. "
                         f"Received: {key}={options[key]!r}")
    return resolved


def _kwargs(component, resolved):
    return {key: resolved[key] for key in component.options}


@keras.saving.register_keras_serializable(package="mmzoo")
class DualEncoderModel(OptionsModel):
    """Image and text towers projected into one normalised space (see the module docstring).

    Args:
        task: `"retrieval"`.
        **options: architecture options (`image_branch`, `text_branch` and
            their options, `image_shape`, `sequence_length`,
            `projection_dim`, `initial_temperature`, `name`).

    Example:

    ```python
    model = mmzoo.build_model("retrieval", image_branch="convnet", text_branch="gru",
                              image_shape=(32, 32, 3), vocab_size=61, sequence_length=32)
    model.fit({"image": images, "text": captions}, epochs=1)   # labels unused
    image_embeds = model.image_tower.predict({"image": images})  # (N, 64), unit norm
    ```
    """

    def __init__(self, task, trainable=True, dtype=None, **options):
        resolved = TASKS.get(task).resolve_options(options)
        inputs, features = {}, {}
        for modality, registry, shape_option in (
                ("image", IMAGE_BRANCHES, "image_shape"),
                ("text", TEXT_BRANCHES, "sequence_length")):
            component = registry.get(resolved[f"{modality}_branch"])
            branch = component.builder(resolved[shape_option], **_kwargs(component, resolved))
            inputs[modality] = keras.Input(shape=branch.input.shape[1:],
                                           dtype=branch.input.dtype, name=modality)
            features[modality] = branch(inputs[modality])
        head = HEADS.get(TASKS.get(task).head)
        embeds = head.builder(features, **_kwargs(head, resolved))
        outputs = {OUTPUTS[m]: embeds[m] for m in ("image", "text")}
        name = resolved["name"] or f"mmzoo_{task}"
        super().__init__(inputs=inputs, outputs=outputs, name=name)
        self._set_options(resolved, trainable, dtype)
        # The towers end before the loss layer (its outputs are its inputs).
        loss_layer = self.loss_layer
        self._towers = {}
        for i, modality in enumerate(("image", "text")):
            self._towers[modality] = (inputs[modality], loss_layer.input[i])

    @property
    def loss_layer(self):
        """The `InfoNCELoss` layer (its `temperature` is the learned one)."""
        return next(layer for layer in self.layers if isinstance(layer, InfoNCELoss))

    def tower(self, modality):
        """The single-input model that embeds `modality` (`"image"` or `"text"`)."""
        if modality not in self._towers:
            raise ValueError(f"`modality` must be one of {tuple(self._towers)}. "
                             f"Received: modality={modality!r}")
        # Made once (one predict function each) and kept out of Keras's
        # tracking, so the saved model holds the towers' weights once.
        cache = self.__dict__.setdefault("_tower_models", {})
        if modality not in cache:
            x, y = self._towers[modality]
            cache[modality] = keras.Model({modality: x}, y, name=f"{self.name}_{modality}_tower")
        return cache[modality]

    @property
    def image_tower(self):
        """`keras.Model`: `{"image": raw pixels (batch, H, W, C)}` -> `(batch, projection_dim)` unit vectors."""
        return self.tower("image")

    @property
    def text_tower(self):
        """`keras.Model`: `{"text": token ids (batch, sequence_length)}` -> `(batch, projection_dim)` unit vectors."""
        return self.tower("text")
