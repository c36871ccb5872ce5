"""`CaptioningModel`: an image encoder and an LSTM caption decoder, trained with teacher forcing.

Two ways for the image to condition the decoder (Tanti et al., "Where to put
the image in an image caption generator", 2018):

- `architecture="merge"` (the seeds' layout, seed 004): the caption prefix
  goes through an LSTM text encoder; its output at every step is concatenated
  with the projected image features, and an LSTM decoder reads the result.
- `architecture="inject"` (Show and Tell): the image features, projected by
  two Dense layers, are the initial `(h, c)` state of the LSTM decoder, which
  reads the caption prefix.

Inputs: `"image"` (raw pixels 0..255) and `"text"`, the caption prefix
`[start, w1, ..., wn, 0, ...]` (int token ids, 0 = padding, length
`sequence_length`). Output: `"logits"`, `(batch, sequence_length, vocab_size)`,
the next-token logits at every position; the training labels are the next
tokens `[w1, ..., wn, end, 0, ...]`. Padding is masked in the loss
(`ignore_class=0`) and in the accuracy (`MaskedAccuracy`).

The model also exposes its two halves for generation and mobile export:
`encode(images) -> (states, context)` and `decode_step(tokens, states,
context) -> (logits, states)`; see `mmzoo.captioning.generate`.
"""


import keras

from mmzoo.branches.text import VOCAB_SIZE
from mmzoo.registry import HEADS, IMAGE_BRANCHES, TASKS
from mmzoo.tasks.model import OptionsModel
from mmzoo.tasks.options import MODEL_DEFAULTS, check_values, fill_component_options
from mmzoo.validators import choice, fail, positive_int, unit_float

DECODERS = ("lstm",)
ARCHITECTURES = ("merge", "inject")
DECODER = choice(*DECODERS)
ARCHITECTURE = choice(*ARCHITECTURES)
POOLINGS = ("flatten", "avg", "max")

# Model-level options of a captioning model, with their defaults. Captions are
# short, so `sequence_length` defaults to 20 tokens rather than 100.
MODEL_OPTIONS = {
    "image_branch": "vgg16",
    "image_shape": MODEL_DEFAULTS["image_shape"],
    "sequence_length": 20,
    "dropout": 0.0,
    "name": None,
}

# Shared by every captioning model: Loss objects hold no state. `ignore_class=0`
# drops padding from the mean, explicitly: Keras does not carry the output
# mask of a dict-output model into compiled metrics.
CAPTION_LOSS = keras.losses.SparseCategoricalCrossentropy(
    from_logits=True, ignore_class=0, name="caption_crossentropy"
)


@keras.saving.register_keras_serializable(package="mmzoo")
class MaskedAccuracy(keras.metrics.Mean):
    """Next-token accuracy over real tokens: labels equal to `ignore_class` are skipped.

    Args:
        ignore_class: the padding label (0).
        name: the metric's name.
        dtype: the metric's dtype.
    """

    def __init__(self, ignore_class=0, name="accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.ignore_class = ignore_class

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = keras.ops.cast(y_true, "int32")
        y_pred = keras.ops.cast(keras.ops.argmax(y_pred, axis=-1), "int32")
        weight = keras.ops.cast(keras.ops.not_equal(y_true, self.ignore_class), self.dtype)
        if sample_weight is not None:
            sample_weight = keras.ops.cast(sample_weight, self.dtype)
            while len(sample_weight.shape) < len(weight.shape):
                sample_weight = keras.ops.expand_dims(sample_weight, -1)
            weight = weight * sample_weight
        correct = keras.ops.cast(keras.ops.equal(y_true, y_pred), self.dtype)
        return super().update_state(correct, sample_weight=weight)

    def get_config(self):
        return {**super().get_config(), "ignore_class": self.ignore_class}


def resolve_captioning_options(task, options):
    """Validates the options of a captioning model and fills in every default.

    Args:
        task: the task name (`"captioning"`).
        options: the architecture options the user passed.

    Returns:
        A flat dict with `task` and every option the model uses.

    Raises:
        TypeError: an option name that no component knows.
        ValueError: a bad value, or an option a captioning model does not use.
    """
    values = check_values(options)

    task = TASKS.get(task)
    head = HEADS.get(task.head)
    image_branch = values.get("image_branch", MODEL_OPTIONS["image_branch"])
    if image_branch is None:
        fail("image_branch", None, "an image branch name: a caption describes an image")
    branch = IMAGE_BRANCHES.get(image_branch)

    resolved = {"task": task.name}
    for key, default in MODEL_OPTIONS.items():
        resolved[key] = values.get(key, default)
    fill_component_options(resolved, values, {"image": branch, "head": head})
    if resolved.get("pooling", "flatten") not in POOLINGS:
        fail("pooling", resolved["pooling"],
              "one of 'flatten', 'avg', 'max' for captioning (the decoder reads a "
              "feature vector, not a map)")

    for key in sorted(set(values) - set(resolved)):
        why = ""
        if key == "text_branch":
            why = (": the caption decoder reads the text itself (choose it with "
                   "`decoder` and `architecture`)")
        raise ValueError(
            f"`{key}` has no effect on this model (task={task.name!r}, "
            f"image_branch={image_branch!r}){why}. Received: {key}={options[key]!r}"
        )
    return resolved


def _check_decoder(decoder, architecture):
    DECODER("decoder", decoder)
    ARCHITECTURE("architecture", architecture)


def lstm_decoder(image_features, text, *, decoder="lstm", architecture="merge",
                 vocab_size=10000, embedding_dim=64, text_units=256, dropout=0.0,
                 name="decoder"):
    """The LSTM caption decoder on image features and a caption prefix.

    Registered as the `"captioning"` task; its keyword options are
    `build_model` options.

    Args:
        image_features: `(batch, features)` from the image branch.
        text: `(batch, sequence_length)` int token ids, the caption prefix.
        decoder: the recurrent cell, `"lstm"`.
        architecture: `"merge"` (text LSTM and image concatenated, then the
            decoder LSTM; the seeds' layout) or `"inject"` (the image sets
            the decoder's initial state).
        vocab_size: token vocabulary size, padding included.
        embedding_dim: token embedding size.
        text_units: units of every LSTM (and of the image projection).
        dropout: dropout on the image projection and on the decoder outputs.
        name: prefix of the layer names.

    Returns:
        Next-token logits, `(batch, sequence_length, vocab_size)`, masked
        where `text` is padding.
    """
    _check_decoder(decoder, architecture)
    sequence_length = text.shape[1]
    x = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True,
                               name=f"{name}_embedding")(text)
    if architecture == "inject":
        h0 = keras.layers.Dense(text_units, activation="tanh", name=f"{name}_init_h")(
            image_features)
        c0 = keras.layers.Dense(text_units, name=f"{name}_init_c")(image_features)
        if dropout:
            h0 = keras.layers.Dropout(dropout, name=f"{name}_image_dropout")(h0)
        x = keras.layers.LSTM(text_units, return_sequences=True, name=f"{name}_lstm")(
            x, initial_state=[h0, c0])
    else:
        image = keras.layers.Dense(text_units, activation="relu",
                                   name=f"{name}_image_projection")(image_features)
        if dropout:
            image = keras.layers.Dropout(dropout, name=f"{name}_image_dropout")(image)
        image = keras.layers.RepeatVector(sequence_length, name=f"{name}_image_repeat")(image)
        words = keras.layers.LSTM(text_units, return_sequences=True, name="text_lstm")(x)
        # Per time step, so a plain Concatenate (the "concat" fusion joins
        # feature vectors only); the text mask passes through it.
        x = keras.layers.Concatenate(name="fusion_concat")([image, words])
        x = keras.layers.LSTM(text_units, return_sequences=True, name=f"{name}_lstm")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return keras.layers.Dense(vocab_size, name=f"{name}_logits")(x)


@keras.saving.register_keras_serializable(package="mmzoo")
class CaptioningModel(OptionsModel):
    """An image captioner: image branch + LSTM decoder, trained with teacher forcing.

    Its config is its option set, so it saves and loads with `safe_mode=True`
    (after `import mmzoo`). Build it with `mmzoo.build_model("captioning",
    ...)`, which also compiles it with the padding-masked loss.

    Args:
        task: `"captioning"`.
        **options: see `mmzoo.build_model`; the captioning ones are
            `image_branch` (default `"vgg16"`), `image_shape`,
            `sequence_length` (default 20), `decoder` (`"lstm"`),
            `architecture` (`"merge"` or `"inject"`), `vocab_size`,
            `embedding_dim`, `text_units` (LSTM units, default 256),
            `dropout`, the image branch's options (`pooling`, `image_weights`,
            `image_trainable`, `image_filters`) and `name`.

    Example:

    ```python
    model = mmzoo.build_model("captioning", image_branch="cnn",
                              image_shape=(32, 32, 3), vocab_size=60,
                              sequence_length=16, architecture="inject")
    model.fit({"image": images, "text": prefixes}, next_tokens)
    ```
    """

    def __init__(self, task="captioning", trainable=True, dtype=None, **options):
        resolved = resolve_captioning_options(task, options)
        branch = IMAGE_BRANCHES.get(resolved["image_branch"])
        image_model = branch.builder(
            resolved["image_shape"], **{k: resolved[k] for k in branch.options})
        inputs = {
            "image": keras.Input(shape=image_model.input.shape[1:],
                                 dtype=image_model.input.dtype, name="image"),
            "text": keras.Input(shape=(resolved["sequence_length"],), dtype="int32",
                                name="text"),
        }
        head = HEADS.get(TASKS.get(task).head)
        logits = head.builder(
            image_model(inputs["image"]), inputs["text"],
            **{k: resolved[k] for k in head.options})
        name = resolved["name"] or f"mmzoo_{task}"
        super().__init__(inputs=inputs, outputs={head.info["output"]: logits}, name=name)
        self._set_options(resolved, trainable, dtype)

    @property
    def architecture(self):
        """`"merge"` or `"inject"`."""
        return self._options["architecture"]

    @property
    def sequence_length(self):
        """Tokens per caption prefix (and the longest caption it generates)."""
        return self._options["sequence_length"]

    @property
    def vocab_size(self):
        """Size of the token vocabulary, padding included."""
        return self._options["vocab_size"]

    @property
    def image_encoder(self):
        """The image branch (a functional `keras.Model`: raw pixels to features)."""
        return self.get_layer(f"image_{self._options['image_branch']}")

    def _layer(self, suffix):
        return self.get_layer(f"decoder_{suffix}")

    def state_sizes(self):
        """Sizes of the recurrent states that `decode_step` carries, in order."""
        units = self._options["text_units"]
        return [units] * (2 if self.architecture == "inject" else 4)

    def context_size(self):
        """Size of the per-image context `decode_step` reads (0 for inject)."""
        return 0 if self.architecture == "inject" else self._options["text_units"]

    def encode(self, images):
        """Runs the image half once per image.

        Args:
            images: `(batch, height, width, channels)`, raw pixels 0..255.

        Returns:
            `(states, context)`: the decoder's initial recurrent states (a
            list of `(batch, text_units)` tensors) and the image context the
            decoder reads at every step (a list: empty for inject, the
            projected image features for merge).
        """
        features = self.image_encoder(images, training=False)
        if self.architecture == "inject":
            return [self._layer("init_h")(features), self._layer("init_c")(features)], []
        context = self._layer("image_projection")(features)
        zeros = keras.ops.zeros_like(context)
        return [zeros, zeros, zeros, zeros], [context]

    def decode_step(self, tokens, states, context):
        """One decoder step: the next-token logits after `tokens`.

        Runs the same layers (and cells) as the teacher-forced model, so the
        logits equal its output at the same position.

        Args:
            tokens: `(batch,)` int token ids, the last token of each prefix.
            states: the recurrent states from `encode` or the previous step.
            context: the image context from `encode`.

        Returns:
            `(logits, states)`: `(batch, vocab_size)` logits and the new states.
        """
        # The embedding table read directly: the layer would attach a padding
        # mask that the cells below cannot take (and tokens here are never 0).
        embedding = self._layer("embedding")
        x = keras.ops.cast(keras.ops.take(embedding.embeddings, tokens, axis=0),
                           embedding.compute_dtype)
        if self.architecture == "inject":
            x, states = self._layer("lstm").cell(x, list(states), training=False)
            new_states = list(states)
        else:
            words, text_states = self.get_layer("text_lstm").cell(
                x, list(states[:2]), training=False)
            fused = keras.ops.concatenate([context[0], words], axis=-1)
            x, dec_states = self._layer("lstm").cell(fused, list(states[2:]), training=False)
            new_states = list(text_states) + list(dec_states)
        return self._layer("logits")(x), new_states


HEADS.register(
    "captioning",
    output="logits",
    loss=CAPTION_LOSS,
    metrics=(MaskedAccuracy,),
    # vocab_size, embedding_dim and text_units mean what they mean in the text
    # branches, dropout what it means for any model.
    validators={"decoder": DECODER, "architecture": ARCHITECTURE, "vocab_size": VOCAB_SIZE,
                "embedding_dim": positive_int, "text_units": positive_int,
                "dropout": unit_float},
)(lstm_decoder)
