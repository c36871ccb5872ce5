"""`Preprocessor`: raw inputs (image files, arrays, strings, audio) to model inputs and back.

A preprocessor holds everything a model's inputs and outputs depend on besides
the weights: the task, the tokenizer and text length, the image size, the
audio length and sample rate, and the label names. It is saved as JSON beside
the tokenizer's own file (no pickle), so a zoo entry can turn `"scene.png"`
and `"what colour is the circle?"` into the `{"image": ..., "text": ...}` dict
a model takes, and its output probabilities back into `[("red", 0.91), ...]`.

Images are brought to the model's size the way the exported SavedModel's raw
endpoint does it (`mmzoo.export.preprocessing`): decoded with
`tf.io.decode_image`, converted to the model's channels, resized bilinearly
with antialiasing unless the size already matches, kept as raw 0..255 pixels.

Example:

```python
pre = Preprocessor("classification", tokenizer, image_size=(32, 32, 3),
                   label_names=mmzoo.data.ANSWERS)
inputs = pre(images=["scene.png", pil_image, array], texts="what colour is the circle?")
probabilities = model.predict(inputs)
pre.decode(probabilities, top_k=3)   # [[("red", 0.91), ("blue", 0.05), ...], ...]
pre.save("entry/")  ;  Preprocessor.load("entry/")
```
"""

import json
import numbers
import os
import re
import warnings

import numpy as np

from mmzoo.audio_io import SAMPLE_RATE, AudioReadError, load_audio
from mmzoo.data.tokenizer import FILE_NAME as TOKENIZER_FILE
from mmzoo.data.tokenizer import Tokenizer
from mmzoo.registry import MODALITIES
from mmzoo.registry import TASKS as _TASKS

FILE_NAME = "preprocessor.json"
#: The task names a preprocessor accepts: every registered task (a live view).
TASKS = _TASKS
IMAGE_RESIZE = "bilinear"  # as mmzoo.export.preprocessing, so predict == serve_raw
IMAGE_ANTIALIAS = True
_FORMAT = "mmzoo-preprocessor"
_FORMAT_VERSION = 1
# What each input form means, for error messages.
_IMAGE_FORMS = ("a file path, encoded image bytes, a PIL image, or an array "
                "(H, W), (H, W, C) with C in 1..4, or a batch (N, H, W, C); "
                "or a list of these")
_AUDIO_FORMS = ("a WAV (or FLAC, OGG) file path or its bytes, an array (samples,) or "
                "(samples, channels) at the model's sample rate, a pair (array, sample_rate), "
                "or a batch (N, samples); or a list of these")
#: A 2-D audio array with at most this many columns is one clip (samples,
#: channels), as soundfile reads it; with more, a batch of mono clips (N, samples).
MAX_AUDIO_CHANNELS = 8


class Preprocessor:
    """Turns raw images and strings into model inputs, and outputs into results.

    Args:
        task: a registered task name (`"classification"`, `"binary"`,
            `"multilabel"`, `"regression"`, `"captioning"`, or your own); the
            task object says what its labels need and decodes outputs.
        tokenizer: a `mmzoo.data.Tokenizer`, or `None` for a model without
            text input.
        sequence_length: token ids per text; default the tokenizer's.
        image_size: the model's image shape `(height, width, channels)` (an
            int means a square RGB image, `(height, width)` RGB), or `None`
            for a model without image input.
        label_names: names of the output ids (answers for classification,
            attributes for multilabel, `("false", "true")` for binary).
        text_field: which text the model reads (e.g. `"question"`), for
            people reading the entry.
        audio_samples: samples per waveform the model reads, or `None` for
            a model without audio input.
        audio_sample_rate: the model's sample rate in Hz (default 16000
            when `audio_samples` is set); audio is resampled to it.

    Example:

    ```python
    x, y, info = mmzoo.data.shapes_arrays("classification", 64, image_size=32)
    pre = Preprocessor.from_task_info(info)
    pre(images="scene.png", texts="is there a red circle?")["text"].shape  # (1, 16)
    ```
    """

    def __init__(self, task, tokenizer=None, *, sequence_length=None, image_size=None,
                 label_names=None, text_field=None, audio_samples=None, audio_sample_rate=None):
        task_object = _TASKS.get(task)
        if tokenizer is not None and not isinstance(tokenizer, Tokenizer):
            raise TypeError("`tokenizer` must be a mmzoo.data.Tokenizer or None. Received: "
                            f"tokenizer of type {type(tokenizer).__name__}")
        if sequence_length is None and tokenizer is not None:
            sequence_length = tokenizer.sequence_length
        if sequence_length is not None and not _is_positive_int(sequence_length):
            raise ValueError("`sequence_length` must be a positive integer or None. "
                             f"Received: sequence_length={sequence_length!r}")
        if audio_samples is not None and not _is_positive_int(audio_samples):
            raise ValueError("`audio_samples` must be a positive integer or None. "
                             f"Received: audio_samples={audio_samples!r}")
        if audio_sample_rate is not None and (audio_samples is None
                                              or not _is_positive_int(audio_sample_rate)):
            raise ValueError("`audio_sample_rate` must be a positive integer (Hz), given with "
                             "`audio_samples`. Received: audio_sample_rate="
                             f"{audio_sample_rate!r}, audio_samples={audio_samples!r}")
        if image_size is None and tokenizer is None and audio_samples is None:
            raise ValueError("A preprocessor needs a `tokenizer`, an `image_size`, "
                             "`audio_samples` or several. Received: tokenizer=None, "
                             "image_size=None, audio_samples=None")
        if label_names is not None:
            if isinstance(label_names, str) or not all(
                    isinstance(n, str) for n in label_names):
                raise ValueError("`label_names` must be a sequence of strings or None. "
                                 f"Received: label_names={label_names!r}")
            label_names = tuple(label_names)
        if task_object.label_names_required and not label_names:
            raise ValueError(f"task={task!r} needs `label_names` (one per model output), "
                             "to say what the predictions mean. Received: label_names="
                             f"{label_names!r}")
        self.task = task_object.name
        self.tokenizer = tokenizer
        self.sequence_length = None if sequence_length is None else int(sequence_length)
        self.image_size = None if image_size is None else _image_size(image_size)
        self.label_names = label_names
        self.text_field = text_field
        self.audio_samples = None if audio_samples is None else int(audio_samples)
        self.audio_sample_rate = None if audio_samples is None else int(
            SAMPLE_RATE if audio_sample_rate is None else audio_sample_rate)

    @classmethod
    def from_task_info(cls, info, modalities=None):
        """The preprocessor of data made by `shapes_arrays` / `shapes_dataset`.

        Args:
            info: a `mmzoo.data.TaskInfo`.
            modalities: the inputs the model reads (e.g. `("image", "audio")`,
                the names of its inputs); the preprocessor then keeps only
                their settings, so a model that hears its questions carries
                no tokenizer. Default: every input the data has.

        Returns:
            A `Preprocessor`.
        """
        def kept(modality, value):
            return value if modalities is None or modality in modalities else None

        tokenizer = kept("text", info.tokenizer)
        return cls(info.task, tokenizer,
                   sequence_length=info.sequence_length if tokenizer is not None else None,
                   image_size=kept("image", info.image_shape), label_names=info.label_names,
                   text_field=info.text_field,
                   audio_samples=kept("audio", getattr(info, "audio_samples", None)),
                   audio_sample_rate=kept("audio", getattr(info, "audio_sample_rate", None)))

    def __repr__(self):
        audio = "" if self.audio_samples is None else (
            f"audio_samples={self.audio_samples}, audio_sample_rate={self.audio_sample_rate}, ")
        return (f"Preprocessor(task={self.task!r}, image_size={self.image_size}, "
                f"sequence_length={self.sequence_length}, {audio}"
                f"labels={None if self.label_names is None else len(self.label_names)})")

    def __eq__(self, other):
        return isinstance(other, Preprocessor) and self.get_config() == other.get_config() \
            and self.tokenizer == other.tokenizer

    # -- raw inputs to model inputs -----------------------------------------

    def __call__(self, images=None, texts=None, **raw):
        """Model inputs from raw images and/or texts (and other declared modalities).

        Args:
            images: one image or a list of images, each a file path, encoded
                image bytes, a PIL image or an array of any size and dtype
                (grayscale, RGB or RGBA; uint8/uint16/bool/int/float pixels,
                floats as 0..255); or a batch array `(N, H, W, C)`.
            texts: one string or a non-empty list of strings (empty strings
                allowed). Text is Unicode: `str`, or `bytes` in valid UTF-8;
                anything else (Latin-1 bytes, lone surrogates) is a
                `ValueError` naming the text, never silently altered. (The
                `Tokenizer` and the exported string endpoint, which must
                agree, replace each invalid sequence with U+FFFD instead.)
            **raw: the raw inputs of other declared modalities
                (`mmzoo.registry.MODALITIES`), by their `argument` keyword,
                each turned into arrays by the modality's `preprocess` hook.

        When one input has a single item and another several, the single
        one is repeated (one question about many images, or the reverse).

        Returns:
            A dict keyed by modality, in model order: `"image"` float32
            `(N, H, W, C)` raw pixels 0..255 and/or `"text"` int32
            `(N, sequence_length)` (and the arrays of other modalities, in
            their declared dtype).

        Raises:
            TypeError: a keyword no declared modality takes.
            ValueError: no input at all, a modality without preprocessing,
                or inputs with different numbers of items.
        """
        modalities = MODALITIES.all()
        arguments = [m.argument for m in modalities]
        unknown = sorted(set(raw) - set(arguments))
        if unknown:
            raise TypeError(f"Preprocessor() got unexpected argument(s) "
                            f"{', '.join(map(repr, unknown))}: the raw inputs are "
                            f"{', '.join(arguments)}. Received: "
                            + ", ".join(f"{k}=..." for k in unknown))
        given = {"images": images, "texts": texts, **raw}
        if all(given.get(a) is None for a in arguments):
            takes = [m.argument for m in modalities if self._takes(m.name)]
            raise ValueError(f"Pass {_either(takes)}. Received: "
                             + ", ".join(f"{a}=None" for a in takes))
        inputs, counts = {}, {}
        for modality in modalities:
            value = given.get(modality.argument)
            if value is None:
                continue
            if modality.preprocess is None:
                raise ValueError(f"The {modality.name} modality declares no preprocessing: "
                                 f"pass its arrays to the model directly. Received: "
                                 f"{modality.argument}")
            array = np.asarray(modality.preprocess(self, value))
            if modality.dtype not in ("string", "bfloat16"):  # not NumPy dtypes
                array = array.astype(modality.dtype, copy=False)
            inputs[modality.name] = array
            counts[modality.argument] = len(array)
        n = max(counts.values())
        if any(count not in (1, n) for count in counts.values()):
            received = [f"{count} {argument}" for argument, count in counts.items()]
            raise ValueError(
                f"{_joined([f'`{a}`' for a in counts])} must have the same number of items "
                f"(or {'one' if len(counts) == 2 else 'some'} of them a single item). "
                f"Received: {_joined(received)}")
        for name, array in inputs.items():
            if len(array) == 1 and n > 1:
                inputs[name] = np.repeat(array, n, axis=0)
        return inputs

    def _takes(self, modality):
        """Whether this preprocessor makes `modality`'s arrays (others' it cannot know)."""
        settings = {"image": self.image_size, "text": self.tokenizer,
                    "audio": self.audio_samples}
        return settings.get(modality, True) is not None

    def preprocess_audio(self, audio):
        """Waveforms `(N, audio_samples)` float32 at the model's rate, from raw audio.

        Args:
            audio: one clip or a list of clips, each a WAV (FLAC, OGG) file
                path or the file's bytes (at any sample rate: resampled), an
                array `(samples,)` or `(samples, channels)` at the model's
                rate (`audio_sample_rate`), or a pair `(array, sample_rate)`
                for an array at another rate; or a batch array `(N,
                samples)` of mono clips at the model's rate. A 2-D array
                with at most 8 columns is one clip, channels last (as
                soundfile reads it): transpose a channels-first array.
                Integer arrays are PCM (int16: divided by 32767), floats in
                [-1, 1]; channels are averaged to mono.

        Every clip is resampled (band-limited, `mmzoo.audio_io.resample`),
        then zero-padded at the end or trimmed to `audio_samples`.

        Raises:
            AudioReadError: a file or byte string that is not audio (the
                message names it); a ValueError too.
            ValueError: a model without audio input, an empty list, an array
                of another shape, or non-finite samples.
            TypeError: an item of another type.
        """
        if self.audio_samples is None:
            raise ValueError("This model has no audio input, so `audio` cannot be used. "
                             "Received: audio")
        items = _audio_items(audio)
        out = np.empty((len(items), self.audio_samples), np.float32)
        for i, (where, item) in enumerate(items):
            out[i] = _waveform(item, where, self.audio_sample_rate, self.audio_samples)
        return out

    def preprocess_texts(self, texts):
        """Token ids `(N, sequence_length)` int32 of one string or a list of strings."""
        if self.tokenizer is None:
            raise ValueError("This model has no text input, so `texts` cannot be used. "
                             "Received: texts")
        if isinstance(texts, (str, bytes, np.str_, np.bytes_)):
            items = [texts]
        elif isinstance(texts, (list, tuple, np.ndarray)):
            items = list(np.asarray(texts, dtype=object).reshape(-1)) \
                if isinstance(texts, np.ndarray) else list(texts)
        else:
            raise TypeError("`texts` must be a string or a list of strings. Received: "
                            f"texts={texts!r} of type {type(texts).__name__}")
        single = isinstance(texts, (str, bytes, np.str_, np.bytes_))
        for i, text in enumerate(items):
            where = "texts" if single else f"texts[{i}]"
            if not isinstance(text, (str, bytes, np.str_, np.bytes_)):
                raise TypeError("Every text must be a string (str or UTF-8 bytes). "
                                f"Received: {where}={text!r} of type "
                                f"{type(text).__name__}")
            _check_utf8(text, where)
        if not items:
            raise ValueError("`texts` is empty: pass a string or a non-empty list of strings. "
                             f"Received: texts={texts!r}")
        return np.asarray(self.tokenizer.encode(items, sequence_length=self.sequence_length),
                          np.int32)

    def preprocess_images(self, images):
        """Raw pixels `(N, H, W, C)` float32 in 0..255 at the model's size."""
        if self.image_size is None:
            raise ValueError("This model has no image input, so `images` cannot be used. "
                             "Received: images")
        items = _image_items(images)
        if not items:
            raise ValueError(f"`images` holds no image. Expected {_IMAGE_FORMS}. Received: "
                             f"images with shape {np.shape(images)}")
        height, width, channels = self.image_size
        out = np.empty((len(items), height, width, channels), np.float32)
        for i, (where, item) in enumerate(items):
            pixels = _to_pixels(item, where, channels)
            out[i] = _resize(pixels, height, width)
        return out

    # -- model outputs to readable results ------------------------------------

    def decode(self, outputs, top_k=3, threshold=0.5):
        """Readable results from model outputs, one per example.

        Args:
            outputs: what the model returned (its output dict or the array);
                for captioning, generated token ids `(N, L)` or a
                `mmzoo.captioning.Captions`.
            top_k: classification: how many labels to list per example.
            threshold: binary and multilabel: the probability from which a
                label counts as predicted.

        Returns:
            A list with one item per example: classification
            `[(label, score), ...]` (best first, `top_k` of them); binary
            `(probability, bool)`; multilabel `[(label, score), ...]` for the
            labels at or above `threshold`, best first; regression a float (a
            list of floats for several outputs); captioning a string.
        """
        if not _is_positive_int(top_k):
            raise ValueError(f"`top_k` must be a positive integer. Received: top_k={top_k!r}")
        if not (isinstance(threshold, numbers.Real) and 0 <= threshold <= 1):
            raise ValueError("`threshold` must be a number in [0, 1]. Received: "
                             f"threshold={threshold!r}")
        return self.task_object.decode(outputs, self, top_k=top_k, threshold=threshold)

    @property
    def task_object(self):
        """The registered task (`mmzoo.registry.TASKS`) named by `task`."""
        return _TASKS.get(self.task)

    # -- saving ---------------------------------------------------------------

    def get_config(self):
        """The JSON-ready settings (the tokenizer is saved in its own file).

        `audio_samples` and `audio_sample_rate` only for a model with audio
        input, so the files of image and text entries stay as they were.
        """
        config = {
            "task": self.task,
            "sequence_length": self.sequence_length,
            "image_size": None if self.image_size is None else list(self.image_size),
            "label_names": None if self.label_names is None else list(self.label_names),
            "text_field": self.text_field,
        }
        if self.audio_samples is not None:
            config.update({"audio_samples": self.audio_samples,
                           "audio_sample_rate": self.audio_sample_rate})
        return config

    def save(self, folder):
        """Writes `preprocessor.json` (and `tokenizer.json`) into `folder`.

        Returns:
            The paths written, as a list.
        """
        folder = os.fspath(folder)
        os.makedirs(folder, exist_ok=True)
        data = {"format": _FORMAT, "version": _FORMAT_VERSION, **self.get_config(),
                "tokenizer_file": None if self.tokenizer is None else TOKENIZER_FILE,
                "image_resize": {"method": IMAGE_RESIZE, "antialias": IMAGE_ANTIALIAS},
                "pixel_range": [0, 255]}
        path = os.path.join(folder, FILE_NAME)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=2)
            f.write("\n")
        paths = [path]
        if self.tokenizer is not None:
            paths.append(self.tokenizer.save(os.path.join(folder, TOKENIZER_FILE)))
        return paths

    @classmethod
    def load(cls, folder):
        """Reads a preprocessor written by `save` from `folder`."""
        folder = os.fspath(folder)
        path = os.path.join(folder, FILE_NAME)
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(f"No preprocessor file at {path!r}.") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{path!r} is not a preprocessor file: {e}") from None
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"{path!r} is not a preprocessor file (no "
                             f"\"format\": \"{_FORMAT}\").")
        if data.get("version") != _FORMAT_VERSION:
            raise ValueError(f"{path!r} has preprocessor format version "
                             f"{data.get('version')!r}; this mmzoo reads version "
                             f"{_FORMAT_VERSION}.")
        tokenizer = None
        if data.get("tokenizer_file"):
            name = data["tokenizer_file"]
            if os.path.basename(name) != name:  # the file must sit in the folder
                raise ValueError(f"{path!r}: `tokenizer_file` must be a file name in the "
                                 f"same folder. Received: tokenizer_file={name!r}")
            tokenizer = Tokenizer.load(os.path.join(folder, name))
        try:
            return cls(data["task"], tokenizer, sequence_length=data.get("sequence_length"),
                       image_size=data.get("image_size"),
                       label_names=data.get("label_names"),
                       text_field=data.get("text_field"),
                       audio_samples=data.get("audio_samples"),
                       audio_sample_rate=data.get("audio_sample_rate"))
        except KeyError as e:
            raise ValueError(f"{path!r} lacks the key {e}.") from None
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path!r} is not a valid preprocessor file: {e}") from None


# ----------------------------------------------------------------------------
# Audio


def _is_rate_pair(item):
    return (isinstance(item, tuple) and len(item) == 2 and _is_positive_int(item[1])
            and not isinstance(item[0], (str, bytes, os.PathLike)))


def _audio_items(audio):
    """`[(where, item), ...]`: one entry per clip; `where` names it in errors."""
    if isinstance(audio, (str, os.PathLike, bytes, bytearray, memoryview)) or \
            _is_rate_pair(audio):
        return [("audio", audio)]
    if isinstance(audio, (list, tuple)):
        if not audio:
            raise ValueError(f"`audio` is an empty list. Expected {_AUDIO_FORMS}. "
                             f"Received: audio={audio!r}")
        return [(f"audio[{i}]", item) for i, item in enumerate(audio)]
    if hasattr(audio, "__array__"):
        array = np.asarray(audio)
        if array.ndim == 1 or (array.ndim == 2 and array.shape[1] <= MAX_AUDIO_CHANNELS):
            return [("audio", array)]
        if array.ndim in (2, 3):
            return [(f"audio[{i}]", a) for i, a in enumerate(array)]
        raise ValueError(f"`audio` must be {_AUDIO_FORMS}. Received: an array of shape "
                         f"{array.shape}")
    raise TypeError(f"`audio` must be {_AUDIO_FORMS}. Received: audio of type "
                    f"{type(audio).__name__}")


def _waveform(item, where, sample_rate, samples):
    """One clip as float32 `(samples,)` at `sample_rate`."""
    if isinstance(item, (str, os.PathLike, bytes, bytearray, memoryview)):
        try:
            return load_audio(item, sample_rate=sample_rate, samples=samples)
        except AudioReadError as e:
            raise AudioReadError(f"{e} ({where})") from None
    source_rate = None
    if _is_rate_pair(item):
        item, source_rate = item[0], int(item[1])
    if not hasattr(item, "__array__"):
        raise TypeError(f"Every clip must be {_AUDIO_FORMS.rsplit('; ', 1)[0]}. Received: "
                        f"{where} of type {type(item).__name__}")
    array = np.asarray(item)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise TypeError(f"Audio samples must be numbers (integer PCM or floats in [-1, 1]). "
                        f"Received: {where} with dtype {array.dtype}")
    if array.ndim not in (1, 2) or array.size == 0 or (
            array.ndim == 2 and array.shape[1] > MAX_AUDIO_CHANNELS):
        raise ValueError(f"An audio array must be (samples,) or (samples, channels) with at "
                         f"most {MAX_AUDIO_CHANNELS} channels, not empty. Received: {where} "
                         f"with shape {array.shape}")
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        raise ValueError(f"Audio samples must be finite numbers. Received: {where} with NaN "
                         "or infinite values")
    return load_audio(array, sample_rate=sample_rate, samples=samples, source_rate=source_rate)


# ----------------------------------------------------------------------------
# Images


def _joined(items):
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _either(arguments):
    named = ", ".join(f"`{a}`" for a in arguments)
    return f"{named} or {'both' if len(arguments) == 2 else 'several'}"


def _is_positive_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0


def _image_size(value):
    if _is_positive_int(value):
        return (int(value), int(value), 3)
    if isinstance(value, (list, tuple)) and len(value) in (2, 3) and all(
            _is_positive_int(v) for v in value):
        size = tuple(int(v) for v in value)
        if len(size) == 2:
            size += (3,)
        if size[2] in (1, 3):
            return size
    raise ValueError("`image_size` must be (height, width, channels) with 1 or 3 channels, "
                     f"(height, width) or one int. Received: image_size={value!r}")


def _is_pil(obj):
    return type(obj).__module__.startswith("PIL.") and hasattr(obj, "mode")


def _image_items(images):
    """`[(where, item), ...]`: one entry per image; `where` names it in errors."""
    if isinstance(images, (str, os.PathLike, bytes, bytearray)) or _is_pil(images):
        return [("images", images)]
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError(f"`images` is an empty list. Expected {_IMAGE_FORMS}. "
                             f"Received: images={images!r}")
        items = []
        for i, item in enumerate(images):
            if isinstance(item, (list, tuple)):
                raise TypeError(f"Every image must be {_IMAGE_FORMS.rsplit('; ', 1)[0]}. "
                                f"Received: images[{i}] of type {type(item).__name__}")
            items.append((f"images[{i}]", item))
        return items
    if hasattr(images, "__array__") or isinstance(images, np.ndarray):
        array = np.asarray(images)
        if array.ndim == 4:
            return [(f"images[{i}]", a) for i, a in enumerate(array)]
        return [("images", array)]
    raise TypeError(f"`images` must be {_IMAGE_FORMS}. Received: images of type "
                    f"{type(images).__name__}")


def _check_utf8(text, where):
    """Texts are UTF-8: bytes must decode, a str must encode (no lone surrogates)."""
    try:
        if isinstance(text, (bytes, np.bytes_)):
            bytes(text).decode("utf-8")
        else:
            str(text).encode("utf-8")
    except UnicodeError as e:
        raise ValueError(
            "Texts must be valid UTF-8 (bytes) or Unicode (str); decode other encodings "
            f"first, e.g. data.decode('latin-1'). Received: {where} with an invalid sequence "
            f"at position {e.start}: {text[max(0, e.start - 8):e.start + 8]!r}") from None


class ImageFileNotFoundError(FileNotFoundError, ValueError):
    """An image path that names no file: a bad argument value and a missing file."""


def _to_pixels(item, where, channels):
    """One image as float32 `(h, w, channels)` in 0..255."""
    if isinstance(item, (str, os.PathLike)):
        path = os.fspath(item)
        item = _read_file(item, where)
        # A file that does not decode is named by its path, not its position.
        where = f"the image file {path!r} ({where})"
    if isinstance(item, (bytes, bytearray)):
        return _decode_bytes(bytes(item), where, channels)
    if _is_pil(item):
        item = _from_pil(item)
    if not (isinstance(item, np.ndarray) or hasattr(item, "__array__")):
        raise TypeError(f"Every image must be {_IMAGE_FORMS.rsplit('; ', 1)[0]}. "
                        f"Received: {where} of type {type(item).__name__}")
    array = np.asarray(item)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or not 1 <= array.shape[-1] <= 4:
        raise ValueError(f"An image array must be (H, W) or (H, W, C) with C in 1..4 "
                         f"(grayscale, grayscale+alpha, RGB, RGBA). Received: {where} with "
                         f"shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"An image needs at least one pixel. Received: {where} with shape "
                         f"{array.shape}")
    return _convert_channels(_to_0_255(array, where), channels)


def _read_file(path, where):
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not path or "\x00" in path or not os.path.isfile(path):
        raise ImageFileNotFoundError(f"No such image file: {path!r} ({where}). Received: "
                                     f"{where}={path!r}")
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ValueError(f"Could not read the image file {path!r} ({where}): "
                         f"{e.strerror or e}. Received: {where}={path!r}") from None


def _decode_bytes(data, where, channels):
    import tensorflow as tf

    try:
        # The SavedModel's raw endpoint decodes with this op: same pixels.
        image = tf.io.decode_image(data, channels=channels, expand_animations=False)
        return image.numpy().astype(np.float32)
    except (tf.errors.InvalidArgumentError, ValueError):
        pass
    try:  # formats TensorFlow does not decode (TIFF, WebP, ...)
        import io

        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            image.load()
            array = _from_pil(image)
    except Exception as e:
        # Pillow names the in-memory buffer ("<_io.BytesIO object at 0x...>").
        reason = re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "", str(e)).strip()
        raise ValueError(f"Could not decode {where} as an image (JPEG, PNG, GIF, BMP or a "
                         f"format Pillow reads): {reason or type(e).__name__}.") from None
    return _convert_channels(_to_0_255(np.asarray(array), where), channels)


def _from_pil(image):
    # Palette, CMYK, 1-bit, YCbCr...: let Pillow turn them into RGB(A) or L;
    # 16/32-bit and float modes keep their values (scaled by dtype below).
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        array = np.asarray(image)
        return array.astype(np.uint16) if image.mode.startswith("I;16") else array
    if image.mode not in ("L", "LA", "RGB", "RGBA"):
        has_alpha = image.mode in ("PA", "La") or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
    return np.asarray(image)


def _to_0_255(array, where):
    """Pixel values as float32 0..255, from any numeric dtype."""
    dtype = array.dtype
    if dtype == np.bool_:
        return array.astype(np.float32) * 255.0
    if dtype == np.uint8:
        return array.astype(np.float32)
    if dtype == np.uint16:
        return array.astype(np.float32) * (255.0 / 65535.0)
    if np.issubdtype(dtype, np.integer):
        lo, hi = int(array.min()), int(array.max())
        if lo < 0 or hi > 255:
            raise ValueError(f"Integer pixels must be in [0, 255] (uint16 images are scaled "
                             f"from [0, 65535]). Received: {where} with values in "
                             f"[{lo}, {hi}] and dtype {dtype}")
        return array.astype(np.float32)
    if np.issubdtype(dtype, np.floating):
        array = array.astype(np.float32)
        if not np.all(np.isfinite(array)):
            raise ValueError(f"Image pixels must be finite numbers. Received: {where} with "
                             "NaN or infinite values")
        lo, hi = float(array.min()), float(array.max())
        if lo < -0.5 or hi > 255.5:
            raise ValueError(f"Float pixels must be raw values in [0, 255] (the model "
                             f"normalises inside its graph); this image looks normalised "
                             f"already. Received: {where} with values in [{lo:.3g}, "
                             f"{hi:.3g}]")
        if hi <= 1.0 and hi > lo:
            warnings.warn(f"{where} has float pixels in [{lo:.3g}, {hi:.3g}]: mmzoo models "
                          "take raw 0..255 values, so it will look almost black. Multiply "
                          "by 255 if it is a [0, 1] image.", stacklevel=4)
        return np.clip(array, 0.0, 255.0)
    raise TypeError(f"Image pixels must be numbers (bool, integer or float). Received: "
                    f"{where} with dtype {dtype}")


def _convert_channels(array, channels):
    """`(h, w, c)` to `(h, w, channels)`: alpha dropped, grey and RGB converted."""
    have = array.shape[-1]
    if have in (2, 4):  # drop alpha, as decode_image(channels=...) does
        array = array[..., : have - 1]
        have -= 1
    if have == channels:
        return array
    if channels == 3:  # grey to RGB
        return np.repeat(array, 3, axis=-1)
    # RGB to grey with the weights of tf.image.rgb_to_grayscale (ITU-R 601).
    weights = np.asarray([0.2989, 0.5870, 0.1140], np.float32)
    return (array @ weights)[..., None].astype(np.float32)


def _resize(pixels, height, width):
    if pixels.shape[:2] == (height, width):
        return pixels  # bit-exact when the size already matches, as in export
    import tensorflow as tf

    resized = tf.image.resize(pixels, (height, width), method=IMAGE_RESIZE,
                              antialias=IMAGE_ANTIALIAS)
    return np.clip(resized.numpy(), 0.0, 255.0)
