"""Modalities, each declared once: input name, dtype, branch registry, shape, preprocessing.

A `Modality` says everything mmzoo needs to know about one kind of input:
the model input it names (`"image"`), the dtype of its arrays, the registry
its branches come from (`IMAGE_BRANCHES`, selected with `image_branch=`), the
`build_model` option that gives its shape (`image_shape`) and that option's
default and check, and the hooks that turn a user's raw inputs into arrays
(image files to pixels, strings to token ids) and remove it for
explanations. `build_model`, the modality mask, `mmzoo.explain`, the
`Preprocessor` and zoo entries read the declarations in `MODALITIES`
(`mmzoo.registry`), so a model over image + text + a third modality is the
same code path as image + text.

The order of declaration is the model's: its inputs, the fused features and
the columns of the `"modality_mask"` input follow it (image, text, audio,
then the modalities registered since). Audio has no default branch: it is in
a model only when `audio_branch` is given (`"cnn"`, `"gru"` or `"crnn"`).

Adding a modality is one declaration and its branch registry:

```python
import keras
import numpy as np
import mmzoo
from mmzoo.modalities import Modality
from mmzoo.registry import MODALITIES, Registry
from mmzoo.validators import positive_int

TABULAR_BRANCHES = Registry("tabular branch", "tabular_branch")

@TABULAR_BRANCHES.register("dense", validators={"tabular_units": positive_int})
def tabular_dense(tabular_size, *, tabular_units=16, name="tabular_dense"):
    inputs = keras.Input((tabular_size,), dtype="float32", name="tabular")
    x = keras.layers.Dense(tabular_units, activation="relu", name=f"{name}_dense")(inputs)
    return keras.Model(inputs, x, name=name)

MODALITIES.register(Modality(
    "tabular", dtype="float32", branches=TABULAR_BRANCHES, shape_option="tabular_size",
    shape_default=8, shape_validator=positive_int, argument="rows",
    preprocess=lambda preprocessor, rows: np.asarray(rows, np.float32).reshape(-1, 5)))

model = mmzoo.build_model("classification", image_branch="cnn", image_shape=(32, 32, 3),
                          text_branch="lstm", vocab_size=100, sequence_length=8,
                          tabular_branch="dense", tabular_size=5, num_classes=3)
model.input  # {'image': (None, 32, 32, 3), 'text': (None, 8), 'tabular': (None, 5)}
```
"""

import dataclasses
from typing import Any, Callable, Optional

import numpy as np

from mmzoo.registry import AUDIO_BRANCHES, IMAGE_BRANCHES, MODALITIES, TEXT_BRANCHES, Registry
from mmzoo.validators import fail, is_positive_int, positive_int

#: The dtypes a modality's arrays may have.
DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16",
          "float32", "float64", "string")


@dataclasses.dataclass(frozen=True)
class Modality:
    """One kind of model input, declared once (register it in `MODALITIES`).

    Attributes:
        name: the model input's name and the key of the input dict
            (`"image"`); also names the option `<name>_branch`.
        dtype: the dtype of the arrays its preprocessing makes (`"float32"`
            for image pixels, `"int32"` for token ids). A branch may read
            another (text's `dense` branch reads float vectors); the model
            input takes the branch's dtype.
        branches: the `mmzoo.registry.Registry` of its branches; it must
            select with the option `<name>_branch`.
        shape_option: the `build_model` option holding the input's shape,
            the first argument of every branch builder (`"image_shape"`:
            `(height, width, channels)`; `"sequence_length"`: ids per text).
        shape_default: that option's default.
        shape_validator: its check, `check(option, value) -> value` raising
            mmzoo's `ValueError` (see `mmzoo.validators`).
        default_branch: the branch `build_model` uses when `<name>_branch`
            is not given (`"vgg16"`, `"lstm"`), or `None`: the modality is
            in a model only when its branch is named.
        argument: the keyword of its raw inputs in `Preprocessor(...)` and a
            zoo entry's `predict` (`"images"`); default `name + "s"`.
        preprocess: `preprocess(preprocessor, raw) -> array (N, ...)`, raw
            user inputs to the model's arrays, or `None` (the user passes
            arrays).
        occlude: `occlude(array) -> array` of the same shape, the inputs with
            the modality's information removed (explanations of a model
            without a modality mask); `None`: zeros.

    Raises:
        ValueError: a `dtype` not in `DTYPES`, or a hook that is not callable
            (the registry checks the names when the modality is registered).
    """

    name: str
    dtype: str
    branches: Registry
    shape_option: str
    shape_default: Any
    shape_validator: Callable
    default_branch: Optional[str] = None
    argument: Optional[str] = None
    preprocess: Optional[Callable] = None
    occlude: Optional[Callable] = None

    def __post_init__(self):
        if self.argument is None and isinstance(self.name, str):
            object.__setattr__(self, "argument", f"{self.name}s")
        if self.dtype not in DTYPES:
            raise ValueError(f"The dtype of modality {self.name!r} must be one of "
                             f"{', '.join(DTYPES)}. Received: dtype={self.dtype!r}")
        for hook in ("shape_validator", "preprocess", "occlude"):
            value = getattr(self, hook)
            if not callable(value) and not (value is None and hook != "shape_validator"):
                raise ValueError(f"`{hook}` of modality {self.name!r} must be callable. "
                                 f"Received: {hook}={value!r}")

    @property
    def branch_option(self):
        """The `build_model` option naming its branch: `<name>_branch`."""
        return f"{self.name}_branch"

    def remove(self, array):
        """`array` with this modality's information removed (`occlude`, else zeros)."""
        array = np.asarray(array)
        return self.occlude(array) if self.occlude is not None else np.zeros_like(array)

    def __str__(self):
        return f"modality {self.name!r}"


def branch_of(model, modality):
    """The branch of `model` that reads `modality`: its nested model named `<modality>_...`.

    `build_model` names each branch after its modality and kind (`"text_gru"`,
    `"audio_cnn"`), so a model has at most one per modality.

    Raises:
        ValueError: the model has no such branch (named).
    """
    import keras

    for layer in model.layers:
        if layer.name.startswith(f"{modality}_") and isinstance(layer, keras.Model):
            return layer
    raise ValueError(f"Found no {modality} branch (a nested model named '{modality}_...') "
                     f"in model {model.name!r}.")


def image_shape(name, value):
    """`(height, width, channels)`, three positive integers, as a tuple."""
    if not (
        isinstance(value, (tuple, list))
        and len(value) == 3
        and all(is_positive_int(v) for v in value)
    ):
        fail(name, value, "a tuple of three positive integers (height, width, channels)")
    return tuple(int(v) for v in value)


def _preprocess_images(preprocessor, images):
    return preprocessor.preprocess_images(images)


def _preprocess_texts(preprocessor, texts):
    return preprocessor.preprocess_texts(texts)


def _preprocess_audio(preprocessor, audio):
    return preprocessor.preprocess_audio(audio)


def _mean_colour(images):
    # Each image replaced by its mean colour: no shape or position left.
    return np.broadcast_to(images.mean(axis=(1, 2), keepdims=True),
                           images.shape).astype(images.dtype)


def _padding(ids):
    return np.zeros_like(ids)


def _silence(waves):
    return np.zeros_like(waves)


# The declaration order is the model input and modality-mask column order.
IMAGE = MODALITIES.register(Modality(
    "image", dtype="float32", branches=IMAGE_BRANCHES, default_branch="vgg16",
    shape_option="image_shape", shape_default=(224, 224, 3), shape_validator=image_shape,
    argument="images", preprocess=_preprocess_images, occlude=_mean_colour))
TEXT = MODALITIES.register(Modality(
    "text", dtype="int32", branches=TEXT_BRANCHES, default_branch="lstm",
    shape_option="sequence_length", shape_default=100, shape_validator=positive_int,
    argument="texts", preprocess=_preprocess_texts, occlude=_padding))
# Raw float32 waveforms, mono, `audio_samples` per example (48000: 3 s at 16 kHz);
# the branches compute log-mel features in the graph (`mmzoo.branches.audio`).
# Raw inputs: WAV paths, WAV bytes or arrays, at any rate and length
# (`Preprocessor.preprocess_audio`). In a model only when `audio_branch` is given.
AUDIO = MODALITIES.register(Modality(
    "audio", dtype="float32", branches=AUDIO_BRANCHES, default_branch=None,
    shape_option="audio_samples", shape_default=48000, shape_validator=positive_int,
    argument="audio", preprocess=_preprocess_audio, occlude=_silence))

__all__ = ["Modality", "MODALITIES", "IMAGE", "TEXT", "AUDIO", "DTYPES", "image_shape"]
