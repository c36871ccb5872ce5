"""`export()`: one call from a Keras model to a checked SavedModel or TFLite file."""

import numbers
import os
import time
import warnings

import keras
import numpy as np

# A '.keras' file to export may hold any of mmzoo's layers: registered first.
from mmzoo import components  # noqa: F401
from mmzoo.audio_io import model_sample_rate
from mmzoo.export import parity as parity_lib
from mmzoo.export import saved_model as sm
from mmzoo.export import tflite as tfl
from mmzoo.export._io import Staging, run_worker
from mmzoo.export.prepare import export_copy, has_rnn, is_mixed_precision
from mmzoo.export.preprocessing import TextEncoder
from mmzoo.export.report import ExportError, ExportReport, folder_size
from mmzoo.registry import TASKS

FORMATS = ("saved_model", "tflite")
QUANTIZATIONS = tfl.QUANTIZATIONS
PARITY_MODES = ("raise", "warn", None)
RAW_SAMPLES = 8
MAX_EXAMPLES = 1000  # read from representative_data / parity_data
TFLITE_DYNAMIC_CHECK_BATCH = 64  # a dynamic-batch TFLite file is checked resized to this
ENTRY_EXAMPLES = 1000  # a zoo entry's default: 500 to calibrate, 500 to check


def export(
    model_or_entry,
    path,
    format="saved_model",
    *,
    quantization=None,
    tokenizer=None,
    batch_size="auto",
    tpu=False,
    representative_data=None,
    parity_data=None,
    parity="raise",
    overwrite=False,
    verbose=True,
):
    """Exports a model as a SavedModel (serving) or a TFLite file (phones), checked.

    The exported artifact is loaded with the runtime a user would use
    (`tf.saved_model.load`, or the `ai_edge_litert` interpreter) in a separate
    process and its outputs are compared with the Keras model's: float32 max
    absolute difference <= 1e-5, float16 <= 1e-2, dynamic-range and int8
    decision agreement >= 99% (int8: >= 97%) on held-back examples. The figures are returned
    and printed. Files are written beside `path` first and moved into place only
    when every check passed.

    Args:
        model_or_entry: a Keras model (e.g. from `mmzoo.build_model`), the path
            of a `.keras` file, or a zoo entry (an object with `.model` and,
            optionally, `.tokenizer`). A captioner (a generative task)
            goes to `mmzoo.export.captioning.export_captioner`: a SavedModel
            from images to caption strings, or (`"tflite"`) a folder with an
            encoder, a one-step decoder and an unrolled greedy decoder;
            float32 only, `tokenizer` required.
        path: destination. A folder for `"saved_model"`; a file ending in
            `.tflite` for `"tflite"` (side files `<stem>.preprocessing.json`
            and `<stem>.vocab.txt` go next to it).
        format: `"saved_model"` or `"tflite"`.
        quantization: TFLite only: `"float32"` (default), `"float16"`,
            `"dynamic_range"` or `"int8"` (needs `representative_data`,
            except for a zoo entry, which brings its own).
        tokenizer: tokenizes raw strings inside the SavedModel's `serve_raw`
            endpoint; its vocabulary is written beside a TFLite file. Any
            object with `tf_tokenize(strings)` (or callable on a `tf.string`
            tensor) returning ids `(batch, sequence_length)`.
        batch_size: the batch of the exported signature. `"auto"` (the
            default): dynamic for a SavedModel, 1 (static) for TFLite.
            `None`: dynamic, in both formats: a SavedModel takes any batch;
            a TFLite file has batch 1 until the interpreter resizes it
            (`interpreter.resize_tensor_input(...)`, or a signature runner
            called with another batch), which the parity check exercises.
            A positive int: static; a SavedModel then refuses another batch
            at its signature, with an error naming the batch it was built
            for (`exported_with_batch_size_<n>`), and a static TFLite file
            cannot be resized (LiteRT's RESHAPE check fails): export with
            `batch_size=None` for that. Static shapes suit phone delegates
            (GPU, NNAPI) best; TPUs need them (`tpu=True`).
        tpu: SavedModel only: static batch (`batch_size` required), numeric
            core checked to compile with XLA and to hold no string op,
            `function_aliases={"tpu_func": ...}` set.
        representative_data: example inputs, `{name: array}` or an iterable of
            such dicts (or `(inputs, labels)` pairs); the first 1000 are
            used. Quantized variants calibrate on every other example and check
            agreement on the others (held back); other formats check parity on
            (up to 200 of) them. For a zoo entry, quantized exports default
            to 1000 examples regenerated from the entry's validation split
            (`ZooEntry.example_inputs`); otherwise random inputs are used
            when omitted (and int8 refuses to guess).
        parity_data: held-back examples for the parity check, in the same
            form; by default taken from `representative_data`.
        parity: `"raise"` (default: a failed check raises `ExportError` and
            writes nothing), `"warn"` (write anyway, warn) or `None` (skip the
            comparison with the Keras model).
        overwrite: replace an existing destination.
        verbose: print the report.

    A model used in parts (a dual encoder: its task's `export_parts`) is
    exported part by part into the folder `path`: `<path>/image_tower/` and
    `<path>/text_tower/` (SavedModels) or `<path>/image_tower.tflite` and
    `<path>/text_tower.tflite`, each checked alone.

    Returns:
        An `ExportReport` with the measured figures (for a model in parts,
        `{part: ExportReport}`).

    Raises:
        ValueError: a bad argument.
        FileExistsError: `path` exists and `overwrite` is False.
        ExportError: conversion crashed or a check failed (nothing is written).

    Example:

    ```python
    model = mmzoo.build_model("classification", image_branch="cnn",
                              text_branch="lstm", image_shape=(32, 32, 3),
                              vocab_size=200, sequence_length=12, num_classes=5)
    mmzoo.export(model, "serving/1")                      # SavedModel
    mmzoo.export(model, "phone/model.tflite", format="tflite",
                 quantization="int8", representative_data=examples)
    ```
    """
    start = time.perf_counter()
    model, entry_tokenizer = _resolve_model(model_or_entry)
    if tokenizer is None and _reads_token_ids(model):
        # An entry's preprocessor may hold a tokenizer its model does not use
        # (a spoken-question entry: its rows had the question written too).
        tokenizer = entry_tokenizer
    # A zoo entry knows what its outputs mean; the client files say it too.
    labels = getattr(getattr(model_or_entry, "preprocessor", None), "label_names", None)
    task = TASKS.of(model)
    if task is not None and task.generative:
        # A sequence writer exports its generation loop (captioning).
        from mmzoo.export.captioning import export_captioner

        return export_captioner(model, path, format, tokenizer=tokenizer,
                                quantization=quantization,
                                batch_size=None if batch_size == "auto" else batch_size,
                                tpu=tpu, overwrite=overwrite, verbose=verbose)
    parts = task.export_parts(model) if task is not None else None
    if parts:
        return _export_parts(parts, path, format, tokenizer=tokenizer,
                             quantization=quantization, batch_size=batch_size, tpu=tpu,
                             parity=parity, overwrite=overwrite, verbose=verbose)
    format, quantization, batch_size = _check_arguments(
        path, format, quantization, batch_size, tpu, parity
    )
    mixed = is_mixed_precision(model)
    if mixed:
        # float16 casts do not convert to TFLite, and serving wants float32
        # outputs: export (and check against) a float32 copy, same weights.
        model = export_copy(model)
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    specs = parity_lib.input_specs(model)
    encoder = _encoder(tokenizer, specs)
    if (quantization in ("int8", "dynamic_range") and representative_data is None
            and parity_data is None and hasattr(model_or_entry, "example_inputs")):
        # A zoo entry knows its data: calibrate and check on its validation
        # scenes (half each), never on the test split it is measured on.
        representative_data, _ = model_or_entry.example_inputs(ENTRY_EXAMPLES, "validation")
        report_note = (f"calibration and parity data: {ENTRY_EXAMPLES} validation examples "
                       "of the entry's dataset (the default for zoo entries)")
    else:
        report_note = None
    if quantization == "int8" and representative_data is None:
        raise ValueError(
            "quantization='int8' calibrates activation ranges on example inputs: pass "
            "`representative_data` (a few hundred real examples, e.g. "
            "{'image': images, 'text': token_ids}). Calibrating on random inputs would "
            "give a model that agrees with itself on noise but not on your data. "
            "Received: representative_data=None"
        )
    quantized = quantization in ("dynamic_range", "int8")
    calibration, held_back = _samples(model, quantized, representative_data, parity_data)

    report = ExportReport(
        path=path, format=format, quantization=quantization, model_name=model.name,
        batch_size=batch_size,
    )
    if report_note:
        report.notes.append(report_note)
    if mixed:
        report.notes.append(
            "mixed-precision model: exported in float32 (same weights), checked against "
            "its float32 Keras copy")
    if format == "tflite":
        destinations = [path] + list(tfl.side_files(path).values())
    else:
        destinations = [path]
    with Staging(destinations, overwrite) as staging:
        if format == "saved_model":
            moves = _saved_model(model, staging, report, encoder, batch_size, tpu,
                                 held_back, parity, labels)
        else:
            moves = _tflite(model, staging, report, encoder, quantization, batch_size,
                            calibration, held_back, parity, labels)
        failed = [c for c in report.checks if not c.passed]
        report.seconds = time.perf_counter() - start
        if failed and parity == "raise":
            raise ExportError(
                f"The exported model does not match the Keras model, so nothing was "
                f"written to {path}:\n"
                + "\n".join(f"  {c.describe()}" for c in failed)
                + "".join(f"\n  warning: {w}" for w in report.warnings)
                + ("" if report.warnings else "\n" + _parity_hint(quantization))
                + "\nPass parity='warn' (mmzoo export --parity warn) to write it anyway.",
                report,
            )
        staging.commit(moves)
    report.seconds = time.perf_counter() - start
    if verbose:
        print(report)
    if failed and parity == "warn":
        warnings.warn(
            "Exported despite failed parity checks: "
            + "; ".join(c.describe() for c in failed),
            stacklevel=2,
        )
    return report


def _export_parts(parts, path, format, *, tokenizer, **settings):
    """Exports each part into the folder `path` (`<part>/` or `<part>.tflite`).

    The tokenizer goes with the parts that read token ids; each part is
    checked alone (its parity, on its own inputs). Returns `{part: ExportReport}`.
    """
    if format not in ("saved_model", "tflite"):
        raise ValueError("`format` must be 'saved_model' or 'tflite'. "
                         f"Received: format={format!r}")
    folder = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if os.path.isfile(folder) or folder.endswith(".tflite"):
        raise ValueError("This model is exported in parts (" + ", ".join(parts) + "): `path` "
                         f"is a folder that will hold one file or folder per part. Received: "
                         f"path={os.fspath(path)!r}")
    os.makedirs(folder, exist_ok=True)
    reports = {}
    for name, part in parts.items():
        destination = os.path.join(folder, name if format == "saved_model" else f"{name}.tflite")
        reads_text = "text" in parity_lib.input_specs(part)
        reports[name] = export(part, destination, format,
                               tokenizer=tokenizer if reads_text else None, **settings)
    return reports


# ------------------------------------------------------------------ arguments


def _check_arguments(path, format, quantization, batch_size, tpu, parity):
    if format not in FORMATS:
        raise ValueError(
            f"`format` must be one of {', '.join(map(repr, FORMATS))}. "
            f"Received: format={format!r}"
        )
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ValueError(f"`path` must be a non-empty path. Received: path={path!r}")
    path = os.fspath(path)
    if format == "tflite":
        if not path.endswith(".tflite"):
            raise ValueError(
                "`path` must end with '.tflite' for format='tflite'. "
                f"Received: path={path!r}"
            )
        quantization = "float32" if quantization is None else quantization
        if quantization not in QUANTIZATIONS:
            raise ValueError(
                f"`quantization` must be one of {', '.join(map(repr, QUANTIZATIONS))} "
                f"(or None for 'float32'). Received: quantization={quantization!r}"
            )
        if tpu:
            raise ValueError(
                "`tpu=True` applies to format='saved_model'. Received: tpu=True, "
                "format='tflite'"
            )
        batch_size = 1 if batch_size == "auto" else batch_size
    else:
        if path.endswith((".tflite", ".keras", ".h5")):
            raise ValueError(
                "A SavedModel is a folder: `path` must not end with "
                f"{os.path.splitext(path)[1]!r} (did you mean format='tflite'?). "
                f"Received: path={path!r}"
            )
        if quantization not in (None, "float32"):
            raise ValueError(
                "`quantization` applies to format='tflite'; a SavedModel keeps the "
                f"model's float32 weights. Received: quantization={quantization!r}"
            )
        quantization = "float32"
        batch_size = None if batch_size == "auto" else batch_size
        if not isinstance(tpu, bool):
            raise ValueError(f"`tpu` must be True or False. Received: tpu={tpu!r}")
        if tpu and batch_size in (None, "auto"):
            raise ValueError(
                "`tpu=True` needs a static batch size: pass batch_size=<int> (the batch "
                "your TPU server pads requests to). Received: batch_size=None"
            )
    if batch_size is not None and not (
        isinstance(batch_size, numbers.Integral) and not isinstance(batch_size, bool)
        and batch_size > 0
    ):
        raise ValueError(
            "`batch_size` must be 'auto' (dynamic for a SavedModel, 1 for TFLite), None "
            f"(dynamic) or a positive integer. Received: batch_size={batch_size!r}"
        )
    if parity not in PARITY_MODES:
        raise ValueError(
            "`parity` must be 'raise', 'warn' or None. "
            f"Received: parity={parity!r}"
        )
    return format, quantization, None if batch_size is None else int(batch_size)


def _resolve_model(model_or_entry):
    """Returns `(keras_model, tokenizer_or_None)`."""
    if isinstance(model_or_entry, keras.Model):
        return model_or_entry, None
    if isinstance(model_or_entry, (str, os.PathLike)):
        path = os.fspath(model_or_entry)
        if path.endswith(".keras"):
            if not os.path.isfile(path):
                raise FileNotFoundError(f"No such model file: {path!r}")
            # mmzoo's layers are registered (mmzoo.components, imported above),
            # so safe_mode loading needs no custom_objects.
            return keras.saving.load_model(path, safe_mode=True), None
        raise ValueError(
            "`model_or_entry` must be a Keras model, the path of a '.keras' file or a "
            "zoo entry (zoo entry names are not supported yet). "
            f"Received: model_or_entry={path!r}"
        )
    model = getattr(model_or_entry, "model", None)
    if isinstance(model, keras.Model):
        tokenizer = getattr(model_or_entry, "tokenizer", None)
        if tokenizer is None:
            tokenizer = getattr(getattr(model_or_entry, "preprocessor", None), "tokenizer", None)
        return model, tokenizer
    raise ValueError(
        "`model_or_entry` must be a Keras model, the path of a '.keras' file or a "
        f"zoo entry. Received: model_or_entry of type {type(model_or_entry).__name__}"
    )


def _reads_token_ids(model):
    """The model has a `"text"` input (the token ids a tokenizer makes)."""
    inputs = model.input if isinstance(model.input, dict) else {}
    return "text" in inputs


def _encoder(tokenizer, specs):
    if tokenizer is None:
        return None
    if "text" not in specs or not specs["text"][1].startswith("int"):
        raise ValueError(
            "`tokenizer` turns strings into token ids, but this model has no token-id "
            f"'text' input (inputs: {', '.join(f'{k} {v[1]}' for k, v in specs.items())}). "
            "Received: a tokenizer"
        )
    return TextEncoder(tokenizer, specs["text"][0][0])


def _samples(model, quantized, representative_data, parity_data):
    """Returns `(calibration_inputs_or_None, held_back_inputs)`."""
    collect = parity_lib.collect_inputs
    if parity_data is not None:
        held_back = collect(parity_data, model, limit=MAX_EXAMPLES)
        calibration = (collect(representative_data, model, limit=MAX_EXAMPLES)
                       if representative_data is not None else None)
    elif representative_data is not None:
        # Calibration gains little beyond a few hundred examples and costs a
        # batch-1 run each: keep at most MAX_EXAMPLES.
        examples = collect(representative_data, model, limit=MAX_EXAMPLES)
        n = parity_lib.num_examples(examples)
        if quantized:
            if n < 10:
                raise ValueError(
                    "`representative_data` needs at least 10 examples (half calibrate, "
                    f"half are held back for the agreement check). Received: {n} examples"
                )
            # Half and half: agreement is judged at 1% steps, which needs a
            # large held-back sample; calibration saturates at a few hundred.
            index = np.arange(n)
            calibration = parity_lib.take(examples, index % 2 == 0)
            held_back = parity_lib.take(examples, index % 2 == 1)
        else:
            calibration, held_back = None, parity_lib.take(
                examples, slice(0, parity_lib.QUANTIZED_SAMPLES))
    else:
        n = parity_lib.QUANTIZED_SAMPLES if quantized else parity_lib.FLOAT_SAMPLES
        calibration, held_back = None, parity_lib.synthetic_inputs(model, n, seed=2)
    return calibration, held_back


def _parity_hint(quantization):
    if quantization in ("int8", "dynamic_range"):
        return ("Quantized models agree best when calibrated and checked on real inputs; "
                "an untrained model's near-equal scores flip under any rounding.")
    return "A float model that differs this much points at an op the runtime computes differently."


# ----------------------------------------------------------------- SavedModel


def _saved_model(model, staging, report, encoder, batch_size, tpu, held_back, parity,
                 labels=None):
    copy = export_copy(model)
    staged = staging.path("saved_model")
    report.notes.extend(sm.write_saved_model(copy, staged, batch_size, encoder, tpu,
                                             label_names=labels))
    raw_names, _ = sm.raw_endpoint_inputs(model, encoder)

    spec = {"action": "saved_model", "dir": staged, "batch_size": batch_size, "xla": tpu,
            "parity_inputs": tfl.save_inputs(staging.path("parity.npz"), held_back),
            "parity_outputs": staging.path("outputs")}
    raw_reference = None
    if raw_names and parity is not None:
        raw_inputs, raw_numeric = _raw_samples(model, held_back, encoder, raw_names)
        spec["raw_inputs"] = tfl.save_inputs(staging.path("raw.npz"), raw_inputs)
        raw_reference = parity_lib.keras_outputs(model, raw_numeric)
    if parity is None and not tpu:
        spec["parity_inputs"] = tfl.save_inputs(
            staging.path("parity.npz"), parity_lib.take(held_back, slice(0, 1)))
    what = "Loading and running the SavedModel" + (" (with XLA)" if tpu else "")
    result = run_worker(spec, staging, what)

    report.endpoints = sm.describe_endpoints(result["signatures"])
    if tpu:
        report.xla_compiled = bool(result.get("xla_compiled"))
        report.function_aliases = result.get("function_aliases", [])
        if result.get("string_ops_in_core"):
            raise ExportError(
                "tpu=True: the numeric core holds string ops, which XLA/TPU cannot run: "
                f"{result['string_ops_in_core']}. Nothing was written."
            )
        if sm.TPU_FUNCTION_ALIAS not in report.function_aliases:
            raise ExportError("tpu=True: the function alias was not saved. Nothing was written.")
    if parity is not None:
        reference = parity_lib.keras_outputs(model, held_back)
        kind = parity_lib.decision_kind(model, reference)
        loader = "tf.saved_model.load"
        report.checks.append(parity_lib.compare(
            "serving_default", loader, reference, _load(staging, "serving_default"), kind,
            "float32"))
        if raw_reference is not None:
            report.checks.append(parity_lib.compare(
                sm.RAW_ENDPOINT, f"{loader} (PNG bytes + strings)", raw_reference,
                _load(staging, "serve_raw"), kind, "float32"))
        if tpu:
            report.checks.append(parity_lib.compare(
                "xla", f"{loader} + tf.function(jit_compile=True)", reference,
                _load(staging, "xla"), kind, "float32"))
    report.size_bytes = folder_size(staged)
    report.files = [os.path.basename(report.path) + os.sep]
    return [(staged, report.path)]


def _load(staging, name):
    with np.load(staging.path(f"outputs.{name}.npz")) as data:
        return {k: data[k] for k in data.files}


def _raw_samples(model, held_back, encoder, raw_names):
    """Raw inputs (PNG bytes, strings, WAV bytes) and the numeric inputs they must become."""
    n = min(RAW_SAMPLES, parity_lib.num_examples(held_back))
    raw, numeric = {}, {}
    if "image" in raw_names:
        pixels = np.clip(np.round(held_back["image"][:n]), 0, 255)
        raw.update(sm.pack_images([sm.encode_png(p) for p in pixels]))
        numeric["image"] = pixels.astype("float32")
    if "audio" in raw_names:
        rate = model_sample_rate(model)
        waves = np.clip(np.asarray(held_back["audio"][:n], np.float64), -1.0, 1.0)
        raw.update(sm.pack_bytes("audio", [sm.encode_wav(w, rate) for w in waves]))
        # What a 16-bit WAV file holds, read back as libsndfile and the endpoint read it.
        numeric["audio"] = (np.round(waves * 32767) / 32768).astype("float32")
    if "text" in raw_names:
        import tensorflow as tf

        sentences = sm.sample_sentences(encoder, n)
        raw["text"] = np.array(sentences)
        # The Python path when the tokenizer has one: then this check also
        # proves that the in-graph tokenizer follows the Python rules.
        ids = encoder.python_encode(sentences)
        numeric["text"] = ids if ids is not None else encoder(tf.constant(sentences)).numpy()
    return raw, numeric


# --------------------------------------------------------------------- TFLite


def _tflite(model, staging, report, encoder, quantization, batch_size, calibration,
            held_back, parity, labels=None):
    copy = export_copy(model, unroll=True)
    source = staging.path("conversion_source")
    tfl.write_conversion_source(copy, source, batch_size)
    staged_model = staging.path(os.path.basename(report.path))
    staged_side = {k: staging.path(os.path.basename(v))
                   for k, v in tfl.side_files(report.path).items()}
    spec = {"action": "tflite", "saved_model": source, "output": staged_model,
            "quantization": quantization, "batch_size": batch_size,
            "dynamic_check_batch": TFLITE_DYNAMIC_CHECK_BATCH,
            "parity_outputs": staging.path("outputs.npz")}
    if calibration is not None and quantization == "int8":
        step = batch_size or 1  # a dynamic batch calibrates example by example
        usable = parity_lib.num_examples(calibration) // step * step
        if not usable:
            raise ValueError(
                f"int8 calibration needs at least batch_size={step} examples. "
                f"Received: {parity_lib.num_examples(calibration)}"
            )
        spec["calibration"] = tfl.save_inputs(staging.path("calibration.npz"), calibration)
    if parity is not None:
        spec["parity_inputs"] = tfl.save_inputs(staging.path("parity.npz"), held_back)
    what = f"TFLite {quantization} conversion"
    result = run_worker(spec, staging, what)

    report.ops = result["ops"]
    report.custom_ops = result["custom_ops"]
    if report.custom_ops:
        raise ExportError(
            f"The {quantization} TFLite file holds non-builtin ops {report.custom_ops}; "
            "only builtin ops run in ai_edge_litert and stock phone runtimes. Nothing "
            "was written.", report)
    if has_rnn(model):
        report.notes.append("recurrent layers unrolled over the fixed sequence length")
    if batch_size is None:
        report.notes.append(
            "dynamic batch: batch 1 until resized; the parity check ran it resized to "
            f"batches of up to {TFLITE_DYNAMIC_CHECK_BATCH}")
    if quantization == "int8":
        report.notes.append(
            f"int8 calibrated on {parity_lib.num_examples(calibration)} examples; tensor "
            f"types: {result['tensor_types']}")
    for bad in result.get("scale_mismatches", []):
        (scale_in, zero_in), (scale_out, zero_out) = bad["input"], bad["output"]
        report.warnings.append(
            f"{bad['op']} at {bad['tensor']!r} copies int8 values but its input and "
            f"output are quantized differently (scale {scale_in[0]:.4g}, zero point "
            f"{zero_in[0]} in; scale {scale_out[0]:.4g}, zero point {zero_out[0]} out): a "
            "TFLite converter bug that shifts every value passing through. "
            "keras.ops.flip becomes REVERSE_V2; keras.ops.take(x, indices, axis) "
            "(GATHER) quantizes correctly.")
    if "signature" in result:
        report.endpoints = sm.describe_endpoints({"serving_default": result["signature"]})
    if parity is not None:
        reference = parity_lib.keras_outputs(model, held_back)
        kind = parity_lib.decision_kind(model, reference)
        with np.load(spec["parity_outputs"]) as data:
            outputs = {k: data[k] for k in data.files}
        report.checks.append(parity_lib.compare(
            "litert", f"ai_edge_litert {_litert_version()} Interpreter", reference, outputs,
            kind, quantization))

    written = tfl.write_side_files(model, staged_side, encoder, quantization, batch_size,
                                   label_names=labels)
    report.size_bytes = os.path.getsize(staged_model)
    side = [(staged_side[k], tfl.side_files(report.path)[k]) for k in written]
    report.files = [os.path.basename(report.path)] + [os.path.basename(f) for _, f in side]
    # Side files first: a reader that sees the model also sees its settings.
    return side + [(staged_model, report.path)]


def _litert_version():
    try:
        from importlib.metadata import version

        return version("ai-edge-litert")
    except Exception:
        return "?"


__all__ = ["export", "FORMATS", "QUANTIZATIONS"]
