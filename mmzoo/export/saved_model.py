"""SavedModel export for serving (TF Serving, GPU, TPU), via `keras.export.ExportArchive`.

Endpoints of the exported SavedModel:

- `serving_default`: the numeric model. Inputs keyed by modality (`"image"`:
  float32 raw pixels 0..255, `"text"`: int32 token ids), outputs named by the
  head (e.g. `"probabilities"`).
- `serve_int64`: the same with int64 token ids (what NumPy and gRPC clients
  send by default), narrowed to int32 inside; present when an input is int32.
- `serve_raw`: raw inputs. `"image"`: encoded image files (JPEG, PNG, ...;
  `tf.string`), decoded and resized inside; `"text"`: strings, tokenized inside
  by the tokenizer's TensorFlow function; `"audio"`: WAV files (16-bit PCM at the
  model's rate), decoded, mixed to mono and padded or trimmed inside. It calls
  `serving_default`, and it is present when every input can be given raw (a
  text model needs a tokenizer).

The batch is dynamic unless `batch_size` is given. A static-batch SavedModel
checks the batch at its signature (`check_batch`): any other batch is refused
there, by an op named `exported_with_batch_size_<n>_<input>`, not deep inside
the model.

With `tpu=True` the batch size is static, the numeric core is checked to
compile with XLA (`jit_compile=True`) and to hold no string op, and it is
registered under the function alias `"tpu_func"` so TPU converters find it.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from mmzoo.audio_io import model_sample_rate
from mmzoo.export.parity import input_specs
from mmzoo.export.preprocessing import (decode_images, decode_wavs, preprocessing_config,
                                        write_json)

TPU_FUNCTION_ALIAS = "tpu_func"
RAW_ENDPOINT = "serve_raw"
INT64_ENDPOINT = "serve_int64"
# Where the SavedModel keeps files for clients; TF Serving ignores this folder.
EXTRA_DIR = "assets.extra"


def raw_endpoint_inputs(model, encoder):
    """The raw endpoint's inputs, or `(None, why)` when there can be none.

    Returns:
        `(names, None)` or `(None, reason)`.
    """
    names = []
    for name, (_, dtype) in input_specs(model).items():
        if name in ("image", "audio"):
            names.append(name)
        elif name == "text" and dtype.startswith("int") and encoder is not None:
            names.append(name)
        elif name == "text" and dtype.startswith("int"):
            return None, ("no raw-input endpoint: the model reads token ids and no "
                          "`tokenizer` was given")
        else:
            return None, (f"no raw-input endpoint: input {name!r} ({dtype}) has no "
                          "raw form")
    return names, None


def build_archive(model, batch_size=None, encoder=None, tpu=False):
    """An `ExportArchive` with the numeric endpoint and, where possible, the raw one.

    Args:
        model: the (export copy of the) Keras model.
        batch_size: static batch size, or `None` for a dynamic batch.
        encoder: a `TextEncoder` for the raw text input, or `None`.
        tpu: register the numeric core as the TPU function alias.

    Returns:
        `(archive, save_options, notes)`.
    """
    specs = input_specs(model)
    archive = keras.export.ExportArchive()
    _add_variable_collections(archive, model)
    signature = {
        name: tf.TensorSpec((batch_size,) + shape, dtype, name=name)
        for name, (shape, dtype) in specs.items()
    }

    def serve(inputs):
        outputs = model(check_batch(inputs, batch_size), training=False)
        return outputs if isinstance(outputs, dict) else {"output_0": outputs}

    core = archive.add_endpoint("serving_default", serve, input_signature=[signature])

    notes = []
    wide = {name for name, spec in signature.items() if spec.dtype == tf.int32}
    if wide:
        # NumPy and gRPC clients send integer ids as int64 by default; a signature
        # is typed, so they get an endpoint of their own that narrows the ids.
        wide_signature = {name: tf.TensorSpec(spec.shape, tf.int64, name=name)
                          if name in wide else spec for name, spec in signature.items()}

        def serve_int64(inputs):
            return core({name: tf.cast(x, tf.int32) if name in wide else x
                         for name, x in inputs.items()})

        archive.add_endpoint(INT64_ENDPOINT, serve_int64, input_signature=[wide_signature])
    raw_names, why_not = raw_endpoint_inputs(model, encoder)
    if raw_names:
        if encoder is not None:
            for trackable in encoder.trackables():
                archive.track(trackable)
        raw_signature = {n: tf.TensorSpec((batch_size,), tf.string, name=n) for n in raw_names}

        def serve_raw(inputs):
            numeric = {}
            if "image" in inputs:
                height, width, channels = specs["image"][0]
                numeric["image"] = decode_images(inputs["image"], height, width, channels)
            if "text" in inputs:
                numeric["text"] = encoder(inputs["text"])
            if "audio" in inputs:
                numeric["audio"] = decode_wavs(inputs["audio"], specs["audio"][0][0],
                                               model_sample_rate(model))
            return core(numeric)

        archive.add_endpoint(RAW_ENDPOINT, serve_raw, input_signature=[raw_signature])
    else:
        notes.append(why_not)

    options = None
    if tpu:
        options = tf.saved_model.SaveOptions(function_aliases={TPU_FUNCTION_ALIAS: core})
    return archive, options, notes


def check_batch(inputs, batch_size):
    """Checks, at the signature, that every input has the static batch it was exported with.

    Python clients are refused by TensorFlow's own signature check, but a
    runtime that feeds tensors unchecked (TF Serving, the C API) would
    otherwise fail deep inside the model (e.g. in an LSTM's TensorList). The
    check's op is named after the batch, so the error reads e.g. "Detected
    at node exported_with_batch_size_2_text ... Shape of tensor text [5,8]
    is not compatible with expected shape [2,8]". XLA compiles it.

    Args:
        inputs: `{name: tensor}` or one tensor.
        batch_size: the static batch, or `None` (dynamic: nothing to check).
    """
    if batch_size is None:
        return inputs
    if not isinstance(inputs, dict):
        return tf.ensure_shape(inputs, (batch_size,) + tuple(inputs.shape[1:]),
                               name=f"exported_with_batch_size_{batch_size}")
    return {name: tf.ensure_shape(x, (batch_size,) + tuple(x.shape[1:]),
                                  name=f"exported_with_batch_size_{batch_size}_{name}")
            for name, x in inputs.items()}


def _add_variable_collections(archive, model):
    """Exposes the model's variables on the loaded object (`loaded.variables`).

    `archive.track(model)` would do this too, but it saves every weight twice
    (once as the Keras variable, once as the TF variable the endpoints capture),
    doubling the SavedModel; listing the TF variables themselves saves them once.
    """
    for name in ("variables", "trainable_variables", "non_trainable_variables"):
        archive.add_variable_collection(name, [v.value for v in getattr(model, name)])


def write_saved_model(model, path, batch_size=None, encoder=None, tpu=False,
                      label_names=None):
    """Writes the SavedModel and its client files (preprocessing, vocabulary).

    Args:
        model: the export copy of the Keras model.
        path: the folder to write (must not exist).
        label_names: the output columns' names for `preprocessing.json`.
        batch_size, encoder, tpu: see `build_archive`.

    Returns:
        The notes from `build_archive`.
    """
    archive, options, notes = build_archive(model, batch_size, encoder, tpu)
    archive.write_out(path, options=options, verbose=False)
    extra = os.path.join(path, EXTRA_DIR)
    os.makedirs(extra, exist_ok=True)
    vocabulary_file = None
    vocabulary = encoder.vocabulary() if encoder is not None else None
    if vocabulary is not None:
        vocabulary_file = "vocabulary.txt"
        write_vocabulary(os.path.join(extra, vocabulary_file), vocabulary)
    config = preprocessing_config(
        input_specs(model), output_names(model), encoder, vocabulary_file,
        batch_size=batch_size, label_names=label_names,
        audio_sample_rate=model_sample_rate(model),
    )
    config["raw_endpoint"] = RAW_ENDPOINT if not notes else None
    write_json(os.path.join(extra, "preprocessing.json"), config)
    return notes


def write_vocabulary(path, vocabulary):
    """One token per line; the line number is the token id."""
    with open(path, "w", encoding="utf-8") as f:
        for token in vocabulary:
            f.write(token.replace("\n", " ") + "\n")


def output_names(model):
    """The names of the exported outputs (the model's output dict keys)."""
    structure = model.output
    return list(structure) if isinstance(structure, dict) else ["output_0"]


def encode_png(image):
    """PNG bytes of a `(H, W, C)` array of 0..255 pixels (lossless)."""
    return tf.io.encode_png(np.clip(np.round(image), 0, 255).astype(np.uint8)).numpy()


def pack_bytes(name, encoded):
    """Packs byte strings (encoded images, WAV files) into arrays an `.npz` holds without pickling.

    Returns:
        `{f"{name}_data": uint8 bytes, f"{name}_offsets": int64 (n + 1,)}`.
    """
    offsets = np.cumsum([0] + [len(b) for b in encoded]).astype(np.int64)
    data = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    return {f"{name}_data": data, f"{name}_offsets": offsets}


def pack_images(encoded):
    """Packs encoded images (`pack_bytes("image", ...)`)."""
    return pack_bytes("image", encoded)


def encode_wav(wave, sample_rate):
    """16-bit PCM WAV bytes of a float waveform in [-1, 1] (rounded to 1/32767 steps)."""
    import io

    import soundfile

    pcm = np.clip(np.round(np.asarray(wave, np.float64) * 32767), -32768, 32767).astype(np.int16)
    buffer = io.BytesIO()
    soundfile.write(buffer, pcm, int(sample_rate), format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def sample_sentences(encoder, n, seed=0):
    """`n` strings of vocabulary words with capitals, punctuation and an unknown word.

    Mixed case and punctuation exercise the tokenizer's normalisation, so the
    raw endpoint's check covers it.
    """
    rng = np.random.default_rng(seed)
    vocabulary = encoder.vocabulary() or []
    words = [w for w in vocabulary if w and w.isprintable() and not w.startswith("<")
             and " " not in w]
    if not words:
        words = "a red circle above the large blue square left of two small crosses".split()
    sentences = []
    for i in range(n):
        chosen = [str(w) for w in rng.choice(words, size=int(rng.integers(1, 12)))]
        if i % 2:
            chosen[0] = chosen[0].capitalize()
            chosen.insert(len(chosen) // 2, "Zyzzyva,")  # out of vocabulary
        sentences.append(" ".join(chosen) + ("!" if i % 3 == 0 else ""))
    return sentences


def describe_endpoints(signatures):
    """`{name: "inputs -> outputs"}` from the worker's signature listing."""
    def fmt(specs):
        return ", ".join(
            f"{k} {v['dtype']}{tuple(-1 if d is None else d for d in v['shape'])}"
            for k, v in sorted(specs.items())
        )

    return {name: f"{fmt(s['inputs'])} -> {fmt(s['outputs'])}"
            for name, s in sorted(signatures.items())}


__all__ = ["build_archive", "write_saved_model", "TPU_FUNCTION_ALIAS", "RAW_ENDPOINT"]
