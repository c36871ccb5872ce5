"""Raw-input preprocessing for exported models: image and WAV decoding, tokenization.

The SavedModel's raw endpoint runs these in TensorFlow; a TFLite file gets them
written out (`preprocessing_config`, the vocabulary file) so that a phone app
reproduces them exactly.
"""

import json
import re

import tensorflow as tf

IMAGE_RESIZE = "bilinear"
IMAGE_ANTIALIAS = True


def decode_images(encoded, height, width, channels):
    """Decodes a batch of encoded images (JPEG, PNG, GIF, BMP) to raw pixels.

    Each image is decoded with `channels` channels and, when its size differs
    from `(height, width)`, resized (bilinear, antialiased, clipped to 0..255)
    to it: the same steps as `mmzoo.data.Preprocessor`, so a zoo entry's
    `predict` and the raw endpoint see the same pixels. Pixels stay in 0..255:
    the model's own preprocessing is inside its graph.

    Args:
        encoded: `tf.string` tensor `(batch,)` of encoded image files.
        height, width, channels: the model's image shape.

    Returns:
        float32 tensor `(batch, height, width, channels)`.
    """

    def decode_one(data):
        image = tf.io.decode_image(data, channels=channels, expand_animations=False)
        image = tf.cast(image, tf.float32)
        size = tf.shape(image)[:2]
        same = tf.reduce_all(tf.equal(size, [height, width]))
        # Skip the resize when the size already matches, so that pixels arrive
        # bit-exact (a same-size resize is not guaranteed to be an identity).
        image = tf.cond(
            same,
            lambda: image,
            lambda: tf.clip_by_value(
                tf.image.resize(
                    image, (height, width), method=IMAGE_RESIZE, antialias=IMAGE_ANTIALIAS
                ),
                0.0,
                255.0,
            ),
        )
        return tf.ensure_shape(image, (height, width, channels))

    return tf.map_fn(
        decode_one,
        encoded,
        fn_output_signature=tf.TensorSpec((height, width, channels), tf.float32),
    )


def decode_wavs(encoded, samples, sample_rate):
    """Decodes a batch of WAV files to fixed-length mono waveforms, in TensorFlow.

    The same steps as `mmzoo.data.Preprocessor` for a WAV file already at the
    model's rate: 16-bit PCM to float32 (`pcm / 32768`, as libsndfile reads
    it), channels averaged to mono, then trimmed or zero-padded at the end to
    `samples`. Resampling is not done in the graph: a file at another rate is
    refused (`tf.errors.InvalidArgumentError` naming both rates); resample it
    on the client, as `mmzoo.audio_io.load_audio` does.

    Args:
        encoded: `tf.string` tensor `(batch,)` of WAV files (16-bit PCM,
            what `tf.audio.decode_wav` reads).
        samples: the model's waveform length.
        sample_rate: the model's rate in Hz.

    Returns:
        float32 tensor `(batch, samples)` in [-1, 1).
    """

    def decode_one(data):
        audio, rate = tf.audio.decode_wav(data)
        check = tf.debugging.assert_equal(
            rate, tf.constant(sample_rate, tf.int32),
            message=f"serve_raw reads WAV files at the model's {sample_rate} Hz; resample "
                    "other rates on the client (mmzoo.audio_io.load_audio). Received a WAV "
                    "file at another rate (Hz)")
        with tf.control_dependencies([check]):
            wave = tf.reduce_mean(audio, axis=1)[:samples]
        wave = tf.pad(wave, [[0, samples - tf.shape(wave)[0]]])
        return tf.ensure_shape(wave, (samples,))

    return tf.map_fn(decode_one, encoded,
                     fn_output_signature=tf.TensorSpec((samples,), tf.float32))


class TextEncoder:
    """Adapts a tokenizer to export: its TF function, resources and vocabulary.

    A tokenizer is any object with a TensorFlow path from strings to ids:
    `tokenizer.tf_encode(strings)` (`mmzoo.data.Tokenizer`) or
    `tokenizer.tf_tokenize(strings)` when it has one, else `tokenizer(strings)`
    for a Keras layer such as `TextVectorization` or a plain callable. It maps a
    `tf.string` tensor `(batch,)` to integer ids `(batch, sequence_length)`.
    Lookup tables it uses are listed by `tf_resources` (or found by tracking a
    trackable tokenizer). Its vocabulary (`vocabulary` or `get_vocabulary()`)
    is written beside exported models.

    Args:
        tokenizer: the tokenizer object.
        sequence_length: the model's text length; the ids must have it.
    """

    def __init__(self, tokenizer, sequence_length):
        import keras

        self.tokenizer = tokenizer
        self.sequence_length = int(sequence_length)
        fn = getattr(tokenizer, "tf_encode", None) or getattr(tokenizer, "tf_tokenize", None)
        if fn is None and (isinstance(tokenizer, keras.layers.Layer)
                           or (callable(tokenizer) and not hasattr(tokenizer, "encode"))):
            fn = tokenizer
        if fn is None:
            raise ValueError(
                "`tokenizer` must have a TensorFlow path from strings to ids: a "
                "`tf_encode(strings)` or `tf_tokenize(strings)` method (e.g. "
                "mmzoo.data.Tokenizer), or be a Keras layer such as TextVectorization. "
                f"Received: tokenizer of type {type(tokenizer).__name__}"
            )
        length = getattr(tokenizer, "sequence_length", None)
        if isinstance(length, int) and length != self.sequence_length:
            raise ValueError(
                f"The tokenizer emits {length} ids per text but the model reads "
                f"{self.sequence_length}: they must agree. Received: tokenizer with "
                f"sequence_length={length}"
            )
        self._fn = fn

    def __call__(self, strings):
        """TF path: `tf.string` `(batch,)` to int32 ids `(batch, sequence_length)`."""
        ids = tf.cast(self._fn(strings), tf.int32)
        return tf.ensure_shape(ids, (strings.shape[0], self.sequence_length))

    def python_encode(self, strings):
        """The tokenizer's Python path (`encode`), or `None` if it has none."""
        encode = getattr(self.tokenizer, "encode", None)
        if encode is None:
            return None
        import numpy as np

        return np.asarray(encode(list(strings)), dtype=np.int32)

    def trackables(self):
        """Objects the SavedModel must track (lookup tables, Keras layers)."""
        found = list(getattr(self.tokenizer, "tf_resources", None) or [])
        for candidate in (self.tokenizer, getattr(self._fn, "__self__", None)):
            if isinstance(candidate, tf.__internal__.tracking.Trackable):
                found.append(candidate)
        return found

    def vocabulary(self):
        """The token list (index = id), or `None` when the tokenizer has none."""
        vocabulary = getattr(self.tokenizer, "vocabulary", None)
        if vocabulary is None and hasattr(self.tokenizer, "get_vocabulary"):
            vocabulary = self.tokenizer.get_vocabulary()
        if vocabulary is None or callable(vocabulary):
            return None
        return [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in vocabulary]

    def config(self):
        """Settings a client needs to tokenize like the model's tokenizer."""
        get = getattr(self.tokenizer, "get_config", None)
        config = dict(get()) if get is not None else {}
        config.pop("vocabulary", None)  # written to its own file
        cls = type(self.tokenizer)
        config = {"class": f"{cls.__module__}.{cls.__qualname__}", **_jsonable(config)}
        if cls.__module__ == "mmzoo.data.tokenizer":
            config.update(_mmzoo_tokenizer_rules())
        return config


def _mmzoo_tokenizer_rules():
    """mmzoo.data.Tokenizer's normalisation, spelled out for other languages."""
    from mmzoo.data import tokenizer as tok

    table = tok.code_point_table()
    separators = set()
    for lo, hi in tok.SEPARATOR_RANGES:
        separators.update(range(lo, hi + 1))
    return {
        "reserved_ids": {name: i for i, name in enumerate(tok.RESERVED_TOKENS)},
        "out_of_vocabulary_id": tok.OOV,
        "steps": [
            "decode UTF-8, each invalid sequence becomes U+FFFD",
            "map each code point through lowercase_map (others unchanged)",
            "code points in separator_ranges become a space",
            "split on spaces, drop empty words",
            "look each word up in the vocabulary file (line number = id); unknown "
            "words get out_of_vocabulary_id",
            "keep the first sequence_length ids, pad with 0 at the end",
        ],
        "separator_ranges": [list(r) for r in tok.SEPARATOR_RANGES],
        "lowercase_map": _runs([(k, v) for k, v in sorted(table.items())
                                if k not in separators]),
        "lowercase_map_format": "[first, last, step, delta]: code points first, "
                                "first+step, ..., last map to code point + delta",
    }


def _runs(pairs):
    """Compresses `(code point, mapped)` pairs into `[first, last, step, delta]` runs."""
    runs = []
    for k, v in pairs:
        if runs:
            first, last, step, delta = runs[-1]
            gap = k - last
            if v - k == delta and (gap == step or (first == last and gap in (1, 2))):
                runs[-1] = [first, k, gap, delta]
                continue
        runs.append([k, k, 1, v - k])
    return runs


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def preprocessing_config(specs, outputs, encoder=None, vocabulary_file=None,
                         quantization=None, batch_size=None, label_names=None,
                         audio_sample_rate=16000):
    """The settings a client needs to feed the exported model (JSON-ready dict).

    Args:
        specs: `{input_name: (shape_without_batch, dtype)}`.
        outputs: the output names.
        encoder: the `TextEncoder`, or `None`.
        vocabulary_file: the vocabulary's file name, or `None`.
        quantization: the TFLite variant, or `None` for a SavedModel.
        batch_size: the static batch size, or `None`.
        label_names: what each output column means (answers, attributes),
            from a zoo entry's preprocessor; `None` leaves them out.
        audio_sample_rate: the rate (Hz) of an `"audio"` input.

    Returns:
        A dict with one entry per input (shape, dtype, value range and how raw
        data becomes that input), the outputs and, when given, the label names.
    """
    inputs = {}
    for name, (shape, dtype) in specs.items():
        entry = {"shape": [batch_size] + list(shape), "dtype": dtype}
        if name == "image":
            entry.update({
                "layout": "NHWC",
                "value_range": [0, 255],
                "color": {1: "grayscale", 3: "RGB", 4: "RGBA"}.get(shape[-1], "other"),
                "resize": {"method": IMAGE_RESIZE, "antialias": IMAGE_ANTIALIAS,
                           "to": [shape[0], shape[1]]},
                "normalization": "none: the model normalises inside its graph",
            })
        elif name == "audio":
            entry.update({
                "samples": shape[0],
                "sample_rate": audio_sample_rate,
                "value_range": [-1, 1],
                "channels": "mono: average the channels",
                "length": "trim the end, or zero-pad at the end, to `samples`",
                "normalization": "none: the model's log-mel front end is inside its graph",
            })
        elif name == "text" and dtype.startswith("int"):
            entry.update({
                "sequence_length": shape[0],
                "padding_id": 0,
                "padding": "ids first, then padding id 0 up to sequence_length",
            })
            if encoder is not None:
                entry["tokenizer"] = encoder.config()
            if vocabulary_file:
                entry["vocabulary_file"] = vocabulary_file
        inputs[name] = entry
    config = {
        "inputs": inputs,
        "outputs": list(outputs),
        "signature": "serving_default",
        "quantization": quantization,
        "batch_size": batch_size,
    }
    if label_names is not None:
        config["label_names"] = [str(name) for name in label_names]
    return config


def write_json(path, data):
    """Indented JSON with arrays of numbers kept on one line (for people to read)."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    text = re.sub(
        r"\[\s*([-0-9.eE]+(?:,\s*[-0-9.eE]+)*)\s*\]",
        lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]",
        text,
    )
    with open(path, "w", encoding="utf-8") as f:
        f.write(text + "\n")
