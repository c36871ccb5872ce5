"""Export of a captioner: a SavedModel that captions images, and TFLite models for phones.

`mmzoo.export(captioner, path, format=...)` comes here (`export_captioner`)
for any model of a generative task (captioning); the two writers below are also
public for their extra options (beam search in the SavedModel, no unrolled
decoder, ...).

**SavedModel** (`export_saved_model`): one endpoint, `serving_default`,
`{"image": float32 (batch, H, W, C) raw pixels}` to `{"captions": string
(batch,), "tokens": int32 (batch, max_length), "lengths": int32 (batch,),
"scores": float32 (batch,)}`. The search loop inside is the XLA-compiled one
of `mmzoo.captioning.generate`; the token-to-word lookup runs outside XLA
(string ops cannot run under XLA).

**TFLite** (`export_tflite`), builtins only (no Flex ops: no Python runtime
and no stock phone runtime runs them), static batch size:

- `encoder.tflite`: `image` -> the decoder's initial states (and, for the
  merge architecture, the image `context`);
- `decoder_step.tflite`: `token`, states, `context` -> `logits`, new states
  (one LSTM step; the app runs the loop, greedy or beam);
- optionally `greedy.tflite`: `image` -> `tokens`, a greedy decoder unrolled
  over `max_length` steps (no loop in the app, no early stop);
- `captioner.json` (names, sizes, start/end ids) and `vocabulary.txt` (one
  token per line, line number = id): the tokenizer stays outside the graph.

Conversion runs in the export package's child process, so a converter crash
is an `ExportError`, not a dead Python. `TFLiteCaptioner`
runs the files with the `ai_edge_litert` interpreter, the runtime a phone has.

Example:

```python
mmzoo.export(model, "serving/captioner/1", tokenizer=tokenizer)
mmzoo.export(model, "phone/captioner", format="tflite", tokenizer=tokenizer)
TFLiteCaptioner("phone/captioner")(images).texts
export_saved_model(model, "serving/beam/1", tokenizer, method="beam", beam_width=5)
```
"""

import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from mmzoo.captioning.generate import Captions, _banned_bias, _check_max_length
from mmzoo.data.tokenizer import END, PAD, START
from mmzoo.export._io import Staging, run_worker, write_export_marker
from mmzoo.export.prepare import half_precision_policy
from mmzoo.export.saved_model import check_batch
from mmzoo.export.report import ExportError, ExportReport, folder_size

MANIFEST = "captioner.json"
VOCABULARY = "vocabulary.txt"


def _vocabulary(model, tokenizer, vocabulary):
    if tokenizer is not None:
        vocabulary = tokenizer.vocabulary
    if vocabulary is None:
        raise ValueError("A captioner export needs the words: pass `tokenizer` (or "
                         "`vocabulary`). Received: tokenizer=None, vocabulary=None")
    vocabulary = list(vocabulary)
    if len(vocabulary) != model.vocab_size:
        raise ValueError(f"The vocabulary has {len(vocabulary)} tokens but the model's "
                         f"vocab_size is {model.vocab_size}. Received: a vocabulary of "
                         f"{len(vocabulary)} tokens")
    return vocabulary


def _check_model(model):
    if not (hasattr(model, "encode") and hasattr(model, "decode_step")):
        raise ValueError("`model` must be a captioning model (from build_model('captioning', "
                         f"...)). Received: model of type {type(model).__name__}")
    policy = half_precision_policy(model)
    if policy is not None:
        raise ValueError(
            "A captioner exports in float32 only, and this one computes in float16 (mixed "
            "precision): build it again under keras.mixed_precision.set_global_policy("
            "'float32'), copy the weights over (set_weights(model.get_weights())) and export "
            f"that. Received: a model with dtype_policy={policy!r} layers")


def _check_batch_size(batch_size, allow_none):
    if batch_size is None and allow_none:
        return None
    if not (isinstance(batch_size, (int, np.integer)) and not isinstance(batch_size, bool)
            and batch_size > 0):
        allowed = "None or a positive integer" if allow_none else "a positive integer"
        raise ValueError(f"`batch_size` must be {allowed}. Received: batch_size={batch_size!r}")
    return int(batch_size)


def words_of(tokens, lengths, vocabulary):
    """Captions as a string tensor: the words of `tokens[:, :lengths]`, space-joined.

    TensorFlow string ops (not XLA-compilable); `vocabulary` a string tensor.
    """
    ragged = tf.RaggedTensor.from_tensor(tokens, lengths=lengths)
    return tf.strings.reduce_join(tf.gather(vocabulary, ragged), axis=-1, separator=" ")


def _stage(path, overwrite):
    return Staging([path], overwrite)


def export_captioner(model, path, format="saved_model", *, tokenizer=None, quantization=None,
                     batch_size=None, tpu=False, overwrite=False, verbose=True):
    """What `mmzoo.export` does with a captioner; returns an `ExportReport`.

    `format="saved_model"`: `export_saved_model` with greedy search (batch
    dynamic unless `batch_size`). `format="tflite"`: `export_tflite` into the
    folder `path` (several files, so not a `.tflite` path), batch 1 unless
    `batch_size`. Captioners export in float32 only; the SavedModel's captions
    and `TFLiteCaptioner`'s are checked against `CaptionGenerator` by the tests
    rather than at every export.

    Raises:
        ValueError: a bad argument (quantization, `tpu`, a `.tflite` path, no
            tokenizer).
        ExportError: a conversion failed (nothing is written).
    """
    start = time.perf_counter()
    if format not in ("saved_model", "tflite"):
        raise ValueError(f"`format` must be 'saved_model' or 'tflite'. Received: format={format!r}")
    if quantization not in (None, "float32"):
        raise ValueError(
            "A captioner exports in float32 only (its decoder loop feeds each step's "
            f"output back in, where quantization errors add up). Received: "
            f"quantization={quantization!r}")
    if tpu:
        raise ValueError("`tpu=True` is not supported for captioners (the search loop has "
                         "a data-dependent stop). Received: tpu=True")
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    report = ExportReport(path=path, format=format, quantization="float32",
                          model_name=model.name, batch_size=batch_size)
    if format == "saved_model":
        export_saved_model(model, path, tokenizer, batch_size=batch_size, overwrite=overwrite)
        report.endpoints = {"serving_default": "image float32 -> captions string, tokens "
                                               "int32, lengths int32, scores float32"}
        report.notes.append("greedy search inside (XLA-compiled); for beam search call "
                            "mmzoo.export.captioning.export_saved_model(method='beam')")
    else:
        if path.endswith(".tflite"):
            raise ValueError(
                "A captioner exports to TFLite as a folder (encoder.tflite, "
                "decoder_step.tflite, greedy.tflite, captioner.json, vocabulary.txt): "
                f"`path` must be a folder. Received: path={path!r}")
        report.batch_size = 1 if batch_size is None else batch_size
        written = export_tflite(model, path, tokenizer, batch_size=report.batch_size,
                                overwrite=overwrite)
        report.ops = sorted({op for ops in written["ops"].values() for op in ops})
        report.notes.append("run it with mmzoo.export.captioning.TFLiteCaptioner(path), or "
                            "loop decoder_step.tflite in the app (see captioner.json)")
    report.files = sorted(os.path.relpath(os.path.join(root, f), path)
                          for root, _, files in os.walk(path) for f in files)
    report.size_bytes = folder_size(path)
    report.seconds = time.perf_counter() - start
    if verbose:
        print(report)
    return report


def export_saved_model(model, path, tokenizer=None, *, vocabulary=None, method="greedy",
                       beam_width=3, max_length=None, length_penalty=0.0, batch_size=None,
                       start_id=START, end_id=END, jit_compile=True, overwrite=False):
    """Writes a SavedModel whose `serving_default` endpoint captions raw images.

    Args:
        model: a `CaptioningModel`.
        path: the SavedModel folder to write.
        tokenizer: the model's `mmzoo.data.Tokenizer` (or pass `vocabulary`).
        vocabulary: the tokens by id, instead of a tokenizer.
        method, beam_width, max_length, length_penalty: the search, as in
            `CaptionGenerator.__call__`.
        batch_size: static batch size, or `None` for a dynamic one.
        start_id, end_id: the start and end token ids.
        jit_compile: compile the search loop with XLA inside the SavedModel.
        overwrite: replace an existing `path`.

    Returns:
        `path`.
    """
    from mmzoo.captioning.generate import CaptionGenerator

    _check_model(model)
    vocabulary = _vocabulary(model, tokenizer, vocabulary)
    batch_size = _check_batch_size(batch_size, allow_none=True)
    generator = CaptionGenerator(model, vocabulary=vocabulary, start_id=start_id,
                                 end_id=end_id, jit_compile=jit_compile)
    search = generator.function(method, beam_width, max_length, length_penalty)
    words = tf.constant(vocabulary, tf.string)
    image_shape = tuple(model.input["image"].shape[1:])

    def serve(image):
        image = check_batch(image, batch_size)
        tokens, lengths, scores = search(tf.cast(image, tf.float32))
        return {"captions": words_of(tokens, lengths, words), "tokens": tokens,
                "lengths": lengths, "scores": scores}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default", serve,
        input_signature=[tf.TensorSpec((batch_size,) + image_shape, tf.float32, name="image")])
    with _stage(path, overwrite) as staging:
        staged = staging.path("saved_model")
        archive.write_out(staged, verbose=False)
        write_export_marker(staged, "captioner")  # overwrite=True recognises it
        staging.commit([(staged, os.path.abspath(path))])
    return path


# ------------------------------------------------------------------ TFLite


def state_names(model):
    """Names of the recurrent states the step decoder carries, in order."""
    if model.architecture == "inject":
        return ["h", "c"]
    return ["text_h", "text_c", "h", "c"]


def _encoder_endpoint(model, batch_size):
    names = state_names(model)
    image_shape = tuple(model.input["image"].shape[1:])

    def encode(image):
        states, context = model.encode(image)
        out = dict(zip(names, states))
        if context:
            out["context"] = context[0]
        return out

    return encode, [tf.TensorSpec((batch_size,) + image_shape, tf.float32, name="image")]


def _step_endpoint(model, batch_size):
    names = state_names(model)
    signature = {"token": tf.TensorSpec((batch_size,), tf.int32, name="token")}
    for name, size in zip(names, model.state_sizes()):
        signature[name] = tf.TensorSpec((batch_size, size), tf.float32, name=name)
    if model.context_size():
        signature["context"] = tf.TensorSpec((batch_size, model.context_size()), tf.float32,
                                             name="context")

    def step(inputs):
        context = [inputs["context"]] if "context" in inputs else []
        logits, states = model.decode_step(inputs["token"], [inputs[n] for n in names],
                                           context)
        return {"logits": logits, **dict(zip(names, states))}

    return step, [signature]


def _unrolled_endpoint(model, batch_size, max_length, start_id, end_id):
    image_shape = tuple(model.input["image"].shape[1:])
    bias = _banned_bias(model.vocab_size, start_id)

    def greedy(image):
        # A Python loop: traced once per step, so the graph has no WHILE op.
        states, context = model.encode(image)
        token = tf.fill([batch_size], start_id)
        done = tf.zeros([batch_size], tf.bool)
        tokens = []
        for _ in range(max_length):
            logits, states = model.decode_step(token, states, context)
            token = tf.argmax(logits + bias, axis=-1, output_type=tf.int32)
            token = tf.where(done, tf.zeros_like(token), token)
            done = done | (token == end_id)
            tokens.append(token)
        return {"tokens": tf.stack(tokens, axis=1)}

    return greedy, [tf.TensorSpec((batch_size,) + image_shape, tf.float32, name="image")]


def export_tflite(model, directory, tokenizer=None, *, vocabulary=None, batch_size=1,
                  unrolled=True, max_length=None, start_id=START, end_id=END,
                  overwrite=False, timeout=600):
    """Writes the TFLite captioner: image encoder, one-step decoder (and unrolled greedy).

    Args:
        model: a `CaptioningModel`.
        directory: the folder to write (see the module doc for its files).
        tokenizer: the model's `mmzoo.data.Tokenizer` (or pass `vocabulary`).
        vocabulary: the tokens by id, instead of a tokenizer.
        batch_size: the static batch size of every model.
        unrolled: also write `greedy.tflite`, the unrolled greedy decoder.
        max_length: steps of the unrolled decoder (and the loop's limit in
            `captioner.json`); the model's `sequence_length` by default.
        start_id, end_id: the start and end token ids.
        overwrite: replace an existing `directory`.
        timeout: seconds allowed for each conversion.

    Returns:
        `{"encoder": path, "decoder_step": path, "greedy": path or None,
        "manifest": path, "vocabulary": path, "ops": {model: [builtin ops]}}`.

    Raises:
        mmzoo.export.ExportError: a conversion failed or needed Flex ops.
    """
    _check_model(model)
    vocabulary = _vocabulary(model, tokenizer, vocabulary)
    batch_size = _check_batch_size(batch_size, allow_none=False)
    max_length = _check_max_length(model, max_length)
    endpoints = {"encoder": _encoder_endpoint(model, batch_size),
                 "decoder_step": _step_endpoint(model, batch_size)}
    if unrolled:
        endpoints["greedy"] = _unrolled_endpoint(model, batch_size, max_length, start_id,
                                                 end_id)
    manifest = {
        "format": "mmzoo-tflite-captioner", "version": 1,
        "architecture": model.architecture, "batch_size": batch_size,
        "image_shape": list(model.input["image"].shape[1:]),
        "vocab_size": model.vocab_size, "max_length": max_length,
        "start_id": int(start_id), "end_id": int(end_id), "pad_id": PAD,
        "banned_ids": [PAD, int(start_id)],
        "states": state_names(model), "state_sizes": model.state_sizes(),
        "context_size": model.context_size(),
        "models": {name: f"{name}.tflite" for name in endpoints},
    }
    ops = {}
    with _stage(directory, overwrite) as staging:
        out = staging.path("out")
        os.makedirs(out)
        for name, (fn, signature) in endpoints.items():
            archive = keras.export.ExportArchive()
            archive.track(model)
            archive.add_endpoint("serving_default", fn, input_signature=signature)
            saved = staging.path(f"{name}-saved-model")
            archive.write_out(saved, verbose=False)
            result = run_worker(
                {"action": "tflite", "saved_model": saved, "quantization": "float32",
                 "output": os.path.join(out, f"{name}.tflite"), "batch_size": batch_size},
                staging, f"TFLite conversion of the captioner's {name}", timeout=timeout)
            if result.get("custom_ops"):
                raise ExportError(
                    f"The captioner's {name} converted with non-builtin ops "
                    f"{result['custom_ops']}, which no Python or stock phone runtime runs.")
            ops[name] = result.get("ops", [])
        with open(os.path.join(out, MANIFEST), "w") as f:
            json.dump(manifest, f, indent=2)
        with open(os.path.join(out, VOCABULARY), "w", encoding="utf-8") as f:
            f.writelines(token.replace("\n", " ") + "\n" for token in vocabulary)
        staging.commit([(out, os.path.abspath(directory))])
    paths = {name: os.path.join(directory, f"{name}.tflite") for name in endpoints}
    return {"encoder": paths["encoder"], "decoder_step": paths["decoder_step"],
            "greedy": paths.get("greedy"), "manifest": os.path.join(directory, MANIFEST),
            "vocabulary": os.path.join(directory, VOCABULARY), "ops": ops}


class TFLiteCaptioner:
    """Captions images with the TFLite files of `export_tflite` (LiteRT interpreter).

    Args:
        directory: the folder `export_tflite` wrote.
        num_threads: interpreter threads.

    Example:

    ```python
    captioner = TFLiteCaptioner("phone/captioner")
    captioner(images).texts                  # greedy, step decoder in a loop
    captioner(images, unrolled=True).texts   # greedy.tflite, one call per batch
    ```
    """

    def __init__(self, directory, num_threads=1):
        from ai_edge_litert.interpreter import Interpreter

        with open(os.path.join(directory, MANIFEST)) as f:
            self.manifest = json.load(f)
        with open(os.path.join(directory, VOCABULARY), encoding="utf-8") as f:
            self.vocabulary = [line.rstrip("\n") for line in f]
        self._runners = {}
        for name, file in self.manifest["models"].items():
            interpreter = Interpreter(model_path=os.path.join(directory, file),
                                      num_threads=num_threads)
            self._runners[name] = interpreter.get_signature_runner("serving_default")
        self._bias = np.zeros(self.manifest["vocab_size"], np.float32)
        self._bias[self.manifest["banned_ids"]] = -np.inf

    def __call__(self, images, unrolled=False):
        """Greedy captions for `images` (`(n, H, W, C)` raw pixels), as `Captions`.

        `scores` are not computed by the unrolled decoder (zeros there).
        """
        images = np.asarray(images, np.float32)
        size = self.manifest["batch_size"]
        parts = []
        for start in range(0, len(images), size):
            chunk = images[start:start + size]
            real = len(chunk)
            if real < size:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], size - real, 0)])
            decode = self._unrolled if unrolled else self._loop
            parts.append([x[:real] for x in decode(chunk)])
        tokens, scores = (np.concatenate(p) for p in zip(*parts))
        end = self.manifest["end_id"]
        # After the end token everything is padding.
        ended = np.cumsum(tokens == end, axis=1) > 0
        words = np.where(ended, 0, tokens).astype(np.int32)
        lengths = np.count_nonzero(words, axis=1).astype(np.int32)
        texts = [" ".join(self.vocabulary[i] for i in row if i != PAD) for row in words.tolist()]
        return Captions(words, lengths, scores.astype(np.float32), texts)

    def _loop(self, images):
        m = self.manifest
        out = self._runners["encoder"](image=images)
        states = {n: out[n] for n in m["states"]}
        context = {"context": out["context"]} if "context" in out else {}
        token = np.full(len(images), m["start_id"], np.int32)
        done = np.zeros(len(images), bool)
        tokens = np.zeros((len(images), m["max_length"]), np.int32)
        scores = np.zeros(len(images), np.float64)
        for t in range(m["max_length"]):
            out = self._runners["decoder_step"](token=token, **states, **context)
            logits = out["logits"] + self._bias
            logp = logits - _logsumexp(logits)
            token = np.where(done, 0, logits.argmax(-1)).astype(np.int32)
            scores += np.where(done, 0.0, logp[np.arange(len(token)), token])
            tokens[:, t] = token
            done |= token == m["end_id"]
            states = {n: out[n] for n in m["states"]}
            if done.all():
                break
        return tokens, scores

    def _unrolled(self, images):
        if "greedy" not in self._runners:
            raise ValueError("This export has no unrolled decoder (export_tflite(..., "
                             "unrolled=False)). Received: unrolled=True")
        tokens = self._runners["greedy"](image=images)["tokens"]
        return tokens.astype(np.int32), np.zeros(len(images))


def _logsumexp(x):
    top = x.max(-1, keepdims=True)
    return top + np.log(np.exp(x - top).sum(-1, keepdims=True))
