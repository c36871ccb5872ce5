"""Zoo entries: a folder with the model, its preprocessor, metadata and a card.

Layout (like a KerasHub preset):

```
<name>/
  model.keras          the inference model (Keras native; no optimizer state)
  preprocessor.json    task, image size, text length, label names
  tokenizer.json       the vocabulary (when the model reads text)
  README.md            the model card, generated from metadata.json
  metadata.json        task, architecture, recipe, dataset, metrics, sizes and
                       sha256 of every other file, versions, date
```

`save_entry` writes all of it into a temporary folder beside the destination
and renames it into place, so a failed save leaves nothing behind. Opening an
entry checks every file against `metadata.json` (a changed, truncated,
missing or extra file is refused, naming the file) and loads the model with
`safe_mode=True`: nothing in an entry can run Python code.
"""

import datetime
import json
import math
import numbers
import os
import platform
import shutil
from pathlib import Path

import keras
from keras.layers import Lambda as LambdaLayer  # refused in entries (runs Python code)
import numpy as np

# Every layer an entry may hold is registered before a model is loaded.
from mmzoo import components  # noqa: F401
from mmzoo._version import __version__
from mmzoo.checks import check_batch_size, is_int, model_input_specs
from mmzoo.data.preprocessor import Preprocessor
from mmzoo.registry import MODALITIES, TASKS
from mmzoo.zoo.card import model_card
from mmzoo.zoo.evaluation import evaluation_settings, example_inputs, measure_metrics
from mmzoo.zoo.familiarity import check_inputs
# The entry folder's names and checks (no TensorFlow) live in mmzoo.zoo.folder;
# they are importable from here too.
from mmzoo.zoo.folder import (  # noqa: F401
    CARD_FILE,
    FORMAT,
    FORMAT_VERSION,
    METADATA_FILE,
    MODEL_FILE,
    NAME_PATTERN,
    EntryVerificationError,
    _file_table,
    check_destination,
    check_name,
    format_size,
    read_card,
    read_metadata,
    replace_folder,
    sha256_file,
    staging_folder,
    verify_entry,
)

# Keyword arguments of ZooEntry.predict for captioning entries.
GENERATION_SETTINGS = ("method", "beam_width", "max_length", "length_penalty")
# Keys a caller may put in `metadata`; the others are measured by save_entry.
USER_KEYS = ("description", "recipe", "dataset", "metrics", "training", "license", "notes")


# ----------------------------------------------------------------------------
# Saving


def save_entry(path, model, preprocessor, *, metadata, overwrite=False, extra_files=None):
    """Saves a zoo entry: model, preprocessor, `metadata.json` and model card.

    The model is saved without its optimizer (an entry is for inference and
    fine-tuning starts a new optimizer), reloaded with `safe_mode=True` and
    checked to predict exactly like `model` before anything is published.

    Args:
        path: the entry folder to create; its name is the entry's name (put
            it in the repo's `saved_models/` to ship it).
        model: the trained Keras model (a `MultimodalModel`, a
            `CaptioningModel`, an ensemble ...). Every layer must load with
            `safe_mode=True` (no `Lambda`, no TF-Hub module).
        preprocessor: the `mmzoo.data.Preprocessor` of its inputs.
        metadata: a JSON-ready dict with any of `description` (str),
            `recipe` (dict or None: the training recipe, `Recipe.to_dict()`),
            `dataset` (dict: the recipe's dataset section or
            `mmzoo.zoo.shapes_dataset_metadata(...)`, which
            `ZooEntry.evaluate` reads to re-measure), `metrics` (numbers by
            name, may nest; NaN is stored as null; keys as
            `mmzoo.zoo.measure_metrics` writes them, e.g. `{"accuracy": 0.8,
            "accuracy_colour": 0.9, ...}`), `training` (dict: steps, time,
            hardware...), `license`, `notes`.
            Task, architecture, parameter count, file sizes and hashes,
            versions and date are added here.
        overwrite: replace an existing entry at `path`.
        extra_files: `{name: source file}` copied into the entry beside the
            model (e.g. `{"training_curve.png": ...}`, which the card
            shows); hashed and verified like every file of the entry.

    Returns:
        The entry folder, a `pathlib.Path`.

    Raises:
        FileExistsError: `path` exists and `overwrite` is False (or it is a
            folder that is not a zoo entry).
        ValueError: a model that would not load safely, a preprocessor that
            does not fit the model, or bad metadata.

    Example:

    ```python
    x, y, info = mmzoo.data.shapes_arrays("classification", 2048, image_size=32)
    model = mmzoo.build_model("classification", image_branch="cnn",
                              **info.model_options())
    model.fit(x, y, epochs=5)
    dataset = mmzoo.zoo.shapes_dataset_metadata(image_size=32, num_test=512)
    pre = mmzoo.data.Preprocessor.from_task_info(info)
    metrics = mmzoo.zoo.measure_metrics(model, pre, dataset)
    mmzoo.zoo.save_entry("saved_models/vqa_cnn_lstm_32px", model, pre,
                         metadata={"dataset": dataset, "metrics": metrics,
                                   "description": "A small VQA model."})
    ```
    """
    path = Path(os.fspath(path)).expanduser().absolute()
    name = check_name(path.name)
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: model of type "
                        f"{type(model).__name__}")
    if not isinstance(preprocessor, Preprocessor):
        raise TypeError("`preprocessor` must be a mmzoo.data.Preprocessor. Received: "
                        f"preprocessor of type {type(preprocessor).__name__}")
    check_destination(path, overwrite)
    extras = _check_extra_files(extra_files)
    user = _check_metadata(metadata)
    _check_safe_layers(model)
    task = _check_fits(model, preprocessor)

    staging = staging_folder(path.parent, name)
    try:
        inference = _without_optimizer(model)
        inference.save(staging / MODEL_FILE)
        _check_reload(staging / MODEL_FILE, model, preprocessor)
        preprocessor.save(staging)
        for rel, source in extras.items():
            shutil.copyfile(source, staging / rel)
        record = _metadata(name, task, model, user)
        record["files"] = _file_table(staging)
        card = model_card(record)
        (staging / CARD_FILE).write_text(card, encoding="utf-8")
        record["files"] = _file_table(staging)
        with open(staging / METADATA_FILE, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2, ensure_ascii=False, allow_nan=False)
            f.write("\n")
        verify_entry(staging)  # what we publish is what load accepts
        replace_folder(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def _check_extra_files(extra_files):
    if extra_files is None:
        return {}
    if not isinstance(extra_files, dict):
        raise TypeError("`extra_files` must be a dict {name: source file} or None. "
                        f"Received: extra_files of type {type(extra_files).__name__}")
    reserved = {MODEL_FILE, METADATA_FILE, CARD_FILE, "preprocessor.json", "tokenizer.json"}
    checked = {}
    for rel, source in extra_files.items():
        if (not isinstance(rel, str) or not rel or "/" in rel or "\\" in rel
                or rel.startswith(".") or rel in reserved):
            raise ValueError("`extra_files` names must be plain file names (no folders, no "
                             f"leading dot, not one of {sorted(reserved)}). Received: {rel!r}")
        if not Path(os.fspath(source)).is_file():
            raise FileNotFoundError(f"`extra_files[{rel!r}]` is not a file. "
                                    f"Received: {str(source)!r}")
        checked[rel] = Path(os.fspath(source))
    return checked


def _check_metadata(metadata):
    if not isinstance(metadata, dict):
        raise TypeError("`metadata` must be a dict (e.g. {'metrics': {...}, 'dataset': {...}}). "
                        f"Received: metadata of type {type(metadata).__name__}")
    for key in metadata:
        if key not in USER_KEYS:
            import difflib

            close = difflib.get_close_matches(str(key), USER_KEYS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"Unknown metadata key: keys must be among {', '.join(map(repr, USER_KEYS))} "
                f"(task, architecture, sizes, hashes and versions are filled in by "
                f"save_entry).{hint} Received: metadata key {key!r}")
    user = {k: _jsonable(v, f"metadata[{k!r}]") for k, v in metadata.items()}
    if user.get("description") is not None and not isinstance(user["description"], str):
        raise ValueError("metadata['description'] must be a string. Received: "
                         f"{user['description']!r}")
    for key in ("recipe", "dataset", "training"):
        if user.get(key) is not None and not isinstance(user[key], dict):
            raise ValueError(f"metadata[{key!r}] must be a dict or None. Received: "
                             f"{key}={user[key]!r}")
    _check_metrics(user.get("metrics", {}), "metadata['metrics']")
    return user


def _check_metrics(metrics, where):
    if not isinstance(metrics, dict):
        raise ValueError(f"{where} must be a dict of numbers (which may nest). Received: "
                         f"{metrics!r}")
    for key, value in metrics.items():
        if isinstance(value, dict):
            _check_metrics(value, f"{where}[{key!r}]")
        elif value is not None and not (isinstance(value, numbers.Real)
                                        and not isinstance(value, bool)):
            raise ValueError(f"{where}[{key!r}] must be a number or a dict of numbers. "
                             f"Received: {value!r}")


def _jsonable(value, where):
    """`value` as plain JSON data (tuples to lists, NumPy scalars to numbers)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where} must have string keys. Received: key {k!r}")
            out[k] = _jsonable(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray) and value.ndim <= 1 and value.size <= 1000:
        return _jsonable(value.tolist(), where)
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        # JSON has no NaN: an undefined metric (e.g. AUC with one class) is null.
        return value if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{where} must be JSON data (dicts, lists, strings, numbers, booleans, "
                    f"None). Received: {value!r} of type {type(value).__name__}")


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _check_safe_layers(model):
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.TFSMLayer):
            raise ValueError(
                f"The model has a TF-Hub / SavedModel layer ({layer.name!r}); zoo entries load "
                "with safe_mode=True, which refuses to load SavedModels (they may run "
                "arbitrary TensorFlow ops). Save it with model.save(...) and load it "
                "yourself with safe_mode=False if you trust the module. Received: a model "
                f"with layer {layer.name!r} of type {type(layer).__name__}")
        if isinstance(layer, LambdaLayer):
            raise ValueError(
                f"The model has a Lambda layer ({layer.name!r}); Lambda layers hold Python "
                "code and do not load with safe_mode=True. Write a registered layer "
                "(@keras.saving.register_keras_serializable) instead. Received: a model "
                f"with layer {layer.name!r} of type Lambda")


def _check_fits(model, preprocessor):
    """The task, after checking the preprocessor produces what the model reads."""
    task = getattr(model, "task", None) or preprocessor.task
    if task != preprocessor.task:
        raise ValueError(f"The preprocessor is for task={preprocessor.task!r} but the model "
                         f"is for task={task!r}. Received: preprocessor.task="
                         f"{preprocessor.task!r}")
    inputs = model_input_specs(model)
    unknown = sorted(set(inputs) - set(MODALITIES) - {"modality_mask"})
    if unknown:
        raise ValueError(f"A zoo entry's model reads {' and/or '.join(map(repr, MODALITIES))} "
                         f"(and optionally 'modality_mask'). Received: a model with inputs "
                         f"{sorted(inputs)}")
    if "image" in inputs:
        shape = tuple(inputs["image"].shape[1:])
        if preprocessor.image_size != shape:
            raise ValueError(f"The model reads images of shape {shape} but the preprocessor "
                             f"makes {preprocessor.image_size}. Received: "
                             f"preprocessor.image_size={preprocessor.image_size}")
    if "text" in inputs:
        if preprocessor.tokenizer is None:
            raise ValueError("The model reads text but the preprocessor has no tokenizer. "
                             "Received: preprocessor.tokenizer=None")
        length = inputs["text"].shape[-1]
        if preprocessor.sequence_length != length:
            raise ValueError(f"The model reads {length} token ids per text but the "
                             f"preprocessor makes {preprocessor.sequence_length}. Received: "
                             f"preprocessor.sequence_length={preprocessor.sequence_length}")
        vocab = (getattr(model, "build_options", None) or {}).get("vocab_size")
        if vocab is not None and vocab < preprocessor.tokenizer.vocab_size:
            raise ValueError(f"The tokenizer has {preprocessor.tokenizer.vocab_size} ids but the "
                             f"model's vocab_size is {vocab}. Received: a tokenizer with "
                             f"vocab_size={preprocessor.tokenizer.vocab_size}")
    if "audio" in inputs:
        samples = inputs["audio"].shape[-1]
        if preprocessor.audio_samples != samples:
            raise ValueError(f"The model reads waveforms of {samples} samples but the "
                             f"preprocessor makes {preprocessor.audio_samples}. Received: "
                             f"preprocessor.audio_samples={preprocessor.audio_samples}")
        rate = (getattr(model, "build_options", None) or {}).get("audio_sample_rate")
        if rate is not None and rate != preprocessor.audio_sample_rate:
            raise ValueError(f"The model reads audio at {rate} Hz but the preprocessor "
                             f"resamples to {preprocessor.audio_sample_rate} Hz. Received: "
                             f"preprocessor.audio_sample_rate={preprocessor.audio_sample_rate}")
    if task in TASKS and TASKS.get(task).label_names_required:
        (output,) = keras.tree.flatten(model.output)
        if output.shape[-1] != len(preprocessor.label_names):
            raise ValueError(f"The model has {output.shape[-1]} outputs but the preprocessor "
                             f"names {len(preprocessor.label_names)} labels. Received: "
                             f"{len(preprocessor.label_names)} label_names")
    return task


def _without_optimizer(model):
    """A copy of `model` with the same weights and no optimizer or compile state."""
    copy = type(model).from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


def _sample_inputs(model, preprocessor, n=2):
    rng = np.random.default_rng(0)
    inputs = {}
    for key, tensor in model_input_specs(model).items():
        shape = (n,) + tuple(tensor.shape[1:])
        if key == "image":
            inputs[key] = rng.uniform(0, 255, shape).astype(np.float32)
        elif key == "modality_mask":
            inputs[key] = np.ones(shape, np.float32)
        elif "int" in str(tensor.dtype):
            high = preprocessor.tokenizer.vocab_size if preprocessor.tokenizer else 2
            inputs[key] = rng.integers(0, high, shape).astype(np.int32)
        else:
            inputs[key] = rng.uniform(0, 1, shape).astype(np.float32)
    return inputs


def _check_reload(model_path, model, preprocessor):
    try:
        reloaded = keras.saving.load_model(model_path, safe_mode=True, compile=False)
    except Exception as e:
        raise ValueError(f"The model does not load back with safe_mode=True, so it cannot be "
                         f"a zoo entry: {e}") from e
    x = _sample_inputs(model, preprocessor)
    expected = keras.tree.flatten(model(x, training=False))
    got = keras.tree.flatten(reloaded(x, training=False))
    for a, b in zip(expected, got):
        if not np.allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6):
            raise ValueError("The saved model does not predict like the model given (max "
                             f"difference {np.max(np.abs(np.asarray(a) - np.asarray(b))):.3g})"
                             "; a layer's get_config() probably misses a setting.")


def _versions():
    import tensorflow as tf

    return {"mmzoo": __version__, "keras": keras.__version__,
            "tensorflow": tf.__version__, "python": platform.python_version()}


def _metadata(name, task, model, user):
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    total = int(model.count_params())
    architecture = getattr(model, "build_options", None)
    inputs = {k: {"shape": [None] + list(t.shape[1:]), "dtype": str(t.dtype)}
              for k, t in model_input_specs(model).items()}
    outputs = sorted(model.output) if isinstance(model.output, dict) else None
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "description": user.get("description", ""),
        "task": task,
        "model_class": keras.saving.get_registered_name(type(model)),
        "architecture": None if architecture is None else _jsonable(architecture,
                                                                     "architecture"),
        "inputs": inputs,
        "outputs": outputs,
        "recipe": user.get("recipe"),
        "dataset": user.get("dataset"),
        "metrics": user.get("metrics", {}),
        "training": user.get("training"),
        "license": user.get("license"),
        "notes": user.get("notes"),
        "parameters": {"total": total, "trainable": trainable,
                       "non_trainable": total - trainable},
        "versions": _versions(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


# ----------------------------------------------------------------------------
# Verification


# Keras's own special objects in a config ("__lambda__", Python code, is not one).
_KERAS_SPECIAL = {"__tensor__", "__numpy__", "__bytes__", "__typespec__", "__ellipsis__",
                  "__slice__", "__dtype__"}
# Architecture options that would make loading read a file or a URL outside the entry.
# ("imagenet" weights are Keras's own download, overwritten by the entry's weights.)
_OUTSIDE_OPTIONS = ("image_handle", "image_weights")


def check_model_config(config, entry="?"):
    """Refuses a model config that could run code or reach outside the entry.

    Every object in it must be a Keras built-in (module `keras...`) or a
    layer registered by mmzoo (`"mmzoo>..."`); no `Lambda` layer, no Python
    function, no TF-Hub / SavedModel layer, no option that reads a weights
    file or a URL.

    Raises:
        EntryVerificationError: naming the object.
    """
    def refuse(what):
        raise EntryVerificationError(
            f"Entry {entry!r}: {MODEL_FILE!r} holds {what}; a zoo entry may use only Keras "
            "built-ins and mmzoo's registered layers and must not read files or URLs "
            "outside the entry. Refusing to load it.", MODEL_FILE)

    def walk(node, where):
        if isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{where}[{i}]")
            return
        if not isinstance(node, dict):
            return
        if "class_name" in node:
            class_name = node.get("class_name")
            module = node.get("module")
            registered = node.get("registered_name")
            if not isinstance(class_name, str):
                refuse(f"an object without a class name at {where}")
            if class_name in ("Lambda", "TFSMLayer", "__lambda__"):
                refuse(f"a {class_name!r} object at {where} (it runs Python code or a "
                       "SavedModel)")
            if class_name in _KERAS_SPECIAL:
                pass
            elif isinstance(registered, str) and registered.startswith("mmzoo>"):
                if keras.saving.get_registered_object(registered) is None:
                    refuse(f"an object mmzoo does not register, {registered!r}, at {where}")
            elif not (isinstance(module, str) and (module == "keras"
                                                   or module.startswith("keras."))):
                refuse(f"the object {class_name!r} from module {module!r} at {where}")
        for key, value in node.items():
            if key in _OUTSIDE_OPTIONS and value not in (None, "imagenet"):
                refuse(f"the option {key}={value!r} at {where}")
            walk(value, f"{where}.{key}")

    walk(config, "config")


def load_entry_model(path, preprocessor, entry="?"):
    """Loads an entry's `model.keras` after checking its config; errors in mmzoo's words."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json").decode("utf-8"))
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, ValueError, OSError) as e:
        raise EntryVerificationError(
            f"Entry {entry!r}: {MODEL_FILE!r} is not a Keras model file (a zip with "
            f"config.json): {e}. Refusing to load it.", MODEL_FILE) from None
    # The task's own layers and model class (a dual encoder's, a decoder's)
    # register on import: the check below must know them.
    preprocessor.task_object.register_components()
    check_model_config(config, entry)
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EntryVerificationError(
            f"Entry {entry!r}: {MODEL_FILE!r} does not load as a safe Keras model "
            f"({type(e).__name__}: {first[:300]}). Refusing to load it.", MODEL_FILE) from None
    try:
        _check_fits(model, preprocessor)
    except ValueError as e:
        raise EntryVerificationError(
            f"Entry {entry!r}: its model and preprocessor do not fit together ({e}). "
            "Refusing to load it.", MODEL_FILE) from None
    return model


# ----------------------------------------------------------------------------
# Loaded entries


class ZooEntry:
    """A verified zoo entry: model, preprocessor, metadata and card.

    Get one with `mmzoo.load(name_or_path_or_url)`. The model is loaded
    (with `safe_mode=True`, its file hashed once more) on first use.

    Attributes:
        name: the entry's name.
        path: its folder (`pathlib.Path`).
        metadata: the parsed `metadata.json`.
        card: the model card (`README.md`) text.
        preprocessor: the `mmzoo.data.Preprocessor`.
        task: the task name.

    Example:

    ```python
    entry = mmzoo.load("vqa_cnn_lstm_32px")
    entry.predict(images="scene.png", texts="what colour is the circle?")
    # [[('red', 0.83), ('blue', 0.07), ('green', 0.04)]]
    entry.evaluate()   # re-measures the card's metrics on the test split
    ```
    """

    def __init__(self, path, metadata=None):
        self.path = Path(path)
        self.metadata = verify_entry(self.path) if metadata is None else metadata
        self.name = self.metadata.get("name") or self.path.name
        self.task = self.metadata.get("task")
        if self.task not in TASKS:
            raise EntryVerificationError(
                f"Entry {self.name!r}: {METADATA_FILE!r} names an unknown task; it must be one "
                f"of {', '.join(map(repr, TASKS))}. Received: task={self.task!r}", METADATA_FILE)
        try:
            self.preprocessor = Preprocessor.load(self.path)
        except (ValueError, TypeError, OSError) as e:
            raise EntryVerificationError(
                f"Entry {self.name!r}: its preprocessor cannot be read ({e}). Refusing to load "
                "it.", "preprocessor.json") from None
        self.card = read_card(self.path, self.name)
        # Verified in full now, not at the first use of `model`: a tampered
        # or malicious entry is refused by mmzoo.load, in mmzoo's words.
        self.model = self._load_model()
        if self.preprocessor.task != self.task:
            raise EntryVerificationError(
                f"Entry {self.name!r}: its preprocessor is for task="
                f"{self.preprocessor.task!r} but {METADATA_FILE!r} says task={self.task!r}. "
                "Refusing to load it.", "preprocessor.json")

    def __repr__(self):
        return (f"<ZooEntry {self.name!r} task={self.task!r} "
                f"size={format_size(self.size)} path={str(self.path)!r}>")

    @property
    def size(self):
        """Total bytes of the entry's files."""
        return sum(f["size"] for f in self.metadata["files"].values())

    @property
    def tokenizer(self):
        """The preprocessor's tokenizer (or `None`)."""
        return self.preprocessor.tokenizer

    def _load_model(self):
        """The Keras model, checked and loaded with `safe_mode=True` (uncompiled).

        `entry.model` holds it. To fine-tune, compile it first, e.g.
        `mmzoo.tasks.compile_model(entry.model, learning_rate=1e-4)`.
        """
        path = self.path / MODEL_FILE
        # Hashed again right before loading: the folder may have changed
        # since its files were verified.
        if sha256_file(path) != self.metadata["files"][MODEL_FILE]["sha256"]:
            raise EntryVerificationError(
                f"Entry {self.name!r}: {MODEL_FILE!r} changed after the entry was opened. "
                "Refusing to load it.", MODEL_FILE)
        return load_entry_model(path, self.preprocessor, entry=self.name)

    def model_inputs(self, images=None, texts=None, **raw):
        """The model's input dict from raw images and texts (and other modalities' `raw`).

        A missing modality is filled in (zeros, flagged in `modality_mask`,
        whose columns follow `MODALITIES`) only for models trained for it
        (`modality_mask=True`).

        Raises:
            ValueError: a modality the model needs is missing (and the model
                has no modality mask), or raw inputs are given for a modality
                the model does not read (e.g. `texts` for `shapes_spoken_vqa`,
                which hears the question): they would be ignored.
        """
        needed = model_input_specs(self.model)
        present = [m for m in MODALITIES if m in needed]
        given = {"images": images, "texts": texts, **raw}
        for m in MODALITIES.all():
            if m.name not in needed and given.get(m.argument) is not None:
                raise ValueError(
                    f"Entry {self.name!r} does not read {m.name} (its model reads "
                    f"{' and '.join(present)}), so `{m.argument}` cannot be used: it would "
                    f"be ignored. Received: {m.argument}")
        inputs = self.preprocessor(images=images, texts=texts, **raw)
        n = len(next(iter(inputs.values())))
        missing = [m for m in present if m not in inputs]
        if missing and "modality_mask" not in needed:
            what = MODALITIES.get(missing[0]).argument
            raise ValueError(f"Entry {self.name!r} needs {what} (its model reads "
                             f"{' and '.join(present)}). Received: {what}=None")
        for m in missing:
            tensor = needed[m]
            inputs[m] = np.zeros((n,) + tuple(tensor.shape[1:]),
                                 np.int32 if "int" in str(tensor.dtype) else np.float32)
        if "modality_mask" in needed:
            inputs["modality_mask"] = np.asarray(
                [[0.0 if m in missing else 1.0 for m in present]] * n, np.float32)
        return {k: inputs[k] for k in needed}

    def predict(self, images=None, texts=None, top_k=3, batch_size=32, **generation):
        """Predictions on raw inputs, as readable results.

        Args:
            images: image file paths, PIL images or arrays (any size, dtype,
                grayscale/RGB/RGBA), one or a list; see
                `mmzoo.data.Preprocessor`.
            texts: a string or a list of strings (one text for several images
                is repeated).
            audio (and the arguments of other declared modalities): WAV file
                paths, WAV bytes or arrays, one or a list; see
                `Preprocessor.preprocess_audio`.
            top_k: classification: labels per example.
            batch_size: examples per model call.
            **generation: captioning: `method` (`"greedy"` or `"beam"`),
                `beam_width`, `max_length`, `length_penalty`. Retrieval:
                `query` (`"images"`, the default, or `"texts"`): which side
                queries the other when both are given.

        Returns:
            One result per example: classification `[(label, score), ...]`;
            binary `(probability, bool)`; multilabel `[(label, score), ...]`
            above 0.5; regression a float; captioning the caption string.
            Retrieval: with images or texts alone, their embeddings
            `(N, D)` (unit vectors); with both, for each query its `top_k`
            best matches `[(text or image index, cosine similarity), ...]`.
        """
        batch_size = check_batch_size(batch_size)
        if not (is_int(top_k) and top_k > 0):
            raise ValueError(f"`top_k` must be a positive integer. Received: top_k={top_k!r}")
        task = TASKS.get(self.task)
        own = task.predict_entry(self, images, texts, top_k=top_k, batch_size=batch_size,
                                 **generation)
        if own is not NotImplemented:
            return own
        # Raw inputs of the modalities declared besides image and text (`audio=`).
        arguments = {m.argument for m in MODALITIES.all()} - {"images", "texts"}
        raw = {k: generation.pop(k) for k in sorted(set(generation) & arguments)}
        if task.generative:
            if raw:
                raise ValueError(f"Entry {self.name!r} writes captions from images only, so "
                                 f"`{next(iter(raw))}` cannot be used. Received: "
                                 f"{next(iter(raw))}")
            if texts is not None:
                raise ValueError(f"Entry {self.name!r} writes captions from images only, so "
                                 "`texts` cannot be used. Received: texts")
            if images is None:
                raise ValueError(f"Entry {self.name!r} writes captions of images: pass "
                                 "`images`. Received: images=None")
            unknown = sorted(set(generation) - set(GENERATION_SETTINGS))
            if unknown:
                raise TypeError(f"Unexpected argument(s) {unknown}: the generation settings "
                                f"are {', '.join(GENERATION_SETTINGS)}. Received: {unknown[0]}")
            images = self.preprocessor.preprocess_images(images)
            captions = task.generate(self.model, images, self.tokenizer,
                                     batch_size=min(batch_size, len(images)), **generation)
            return self.preprocessor.decode(captions)
        if generation:
            raise TypeError(f"Unexpected argument(s) {sorted(generation)}: generation settings "
                            f"apply to captioning entries only (this is {self.task!r}). "
                            f"Received: {sorted(generation)[0]}")
        inputs = self.model_inputs(images, texts, **raw)
        check_inputs(self, inputs, texts)  # warns about photos and unknown words
        outputs = self.model.predict(inputs, batch_size=batch_size, verbose=0)
        return self.preprocessor.decode(outputs, top_k=top_k)

    def example_inputs(self, num_examples=None, split="validation"):
        """Model-ready examples regenerated from the entry's recorded dataset.

        The default calibration and parity data of `mmzoo.export(entry, ...)`
        (validation split: the test split stays for measuring).

        Args:
            num_examples: examples (default: the dataset's `num_<split>`).
            split: `"validation"` or `"test"`.

        Returns:
            `(inputs, labels)`: a dict keyed by the model's inputs, and labels.
        """
        inputs, labels, _ = example_inputs(self.model, self.preprocessor,
                                           self.metadata.get("dataset"), split=split,
                                           num_examples=num_examples)
        return inputs, labels

    def evaluate(self, num_examples=None, batch_size=None, *, ranges=False):
        """Re-measures the card's metrics on the mmzoo-shapes test split.

        Uses the settings recorded in the metadata (`dataset`: image size,
        seed, number of test examples, text field; the recipe's `evaluation`
        section: split, decoding), so the numbers line up key for key with
        `metadata["metrics"]` (see `mmzoo.zoo.compare_metrics`).

        Args:
            num_examples: examples to use (default: the number recorded).
            batch_size: examples per model call (default: the recipe's, or 64).
            ranges: also return the range of each metric that near ties allow:
                what another CPU, rounding differently, may measure
                (`mmzoo.zoo.measure_metrics`). The card is reproduced when
                each of its numbers lies in its range.

        Returns:
            The measured metrics, a flat dict of floats; with `ranges=True`,
            `(metrics, {metric: (low, high), "near_ties": count})`.
        """
        batch_size = check_batch_size(batch_size, allow_none=True)
        if num_examples is not None and not (is_int(num_examples) and num_examples > 0):
            raise ValueError("`num_examples` must be a positive integer or None (the number "
                             f"recorded). Received: num_examples={num_examples!r}")
        settings = evaluation_settings(self.metadata)
        if batch_size is not None:
            settings["batch_size"] = batch_size
        return measure_metrics(self.model, self.preprocessor, self.metadata.get("dataset"),
                               num_examples=num_examples, ranges=ranges, **settings)


