"""Measuring an entry's metrics on mmzoo-shapes again, reproducibly.

`ZooEntry.evaluate` (and `mmzoo evaluate NAME`) regenerate the evaluation
scenes from the settings recorded in the entry's `metadata["dataset"]` (image
size, seed, number of examples, text field; the scenes are a pure function
of them) and measure the metrics under the same keys, with the same formulas,
as the training recipes write them (`mmzoo.training.evaluate`), so the card's
numbers and the measured ones line up key for key:

| task | metrics (keys) |
|---|---|
| classification (VQA) | `accuracy`, `accuracy_<question type>`, `loss` |
| binary (matching) | `accuracy`, `auc`, `accuracy_perturbation_<kind>`, `loss` |
| multilabel | `micro_f1`, `binary_accuracy`, `auc`, `loss` |
| regression (count) | `mae`, `count_accuracy`, `loss` (MSE) |
| captioning | `bleu_1` .. `bleu_4`, `cider_d` |

An entry trained on a spoken problem (`metadata["dataset"]["problem"]`,
`"spoken_vqa"`, ...) is measured on the same scenes spoken by the same voices
(`accuracy_voice_<voice>`, `accuracy_train_voices`, `accuracy_held_out_voices`
besides). Every result also has `num_examples`.
"""

import warnings

import numpy as np

from mmzoo.checks import model_input_specs
from mmzoo.metrics import task_metrics
from mmzoo.registry import MODALITIES
from mmzoo.zoo.card import flatten_metrics

DATASET_NAME = "mmzoo_shapes"
SPLITS = ("test", "validation")


def shapes_dataset_metadata(image_size=64, *, seed=0, num_train=20_000, num_validation=2_000,
                            num_test=2_000, text_field=None, sequence_length=None,
                            captions=None, config=None):
    """The `metadata["dataset"]` record of a model trained on mmzoo-shapes.

    The same keys as a training recipe's `[dataset]` section, plus the
    dataset version (a recipe's `recipe.dataset` works as well).

    Args:
        image_size, seed, num_train, num_validation, num_test: the build's
            settings (as in `mmzoo.data.shapes_config`); the metrics are
            measured on the first `num_test` test scenes.
        text_field: the text the model reads (`"question"`, ...); `None` for
            the task's default.
        sequence_length: token ids per text.
        captions: captioning: `"all"` or `"first"` (training rows per scene).
        config: a `mmzoo.data.MmzooShapesConfig` to copy the settings from.

    Returns:
        A JSON-ready dict.

    Example:

    ```python
    dataset = mmzoo.zoo.shapes_dataset_metadata(image_size=32, num_test=512)
    ```
    """
    from mmzoo.data.mmzoo_shapes import MmzooShapes

    if config is not None:
        image_size, seed = config.image_size, config.seed
        num_train, num_validation, num_test = (config.num_train, config.num_validation,
                                               config.num_test)
    for key, value in (("image_size", image_size), ("seed", seed), ("num_train", num_train),
                       ("num_validation", num_validation), ("num_test", num_test)):
        if not _is_int(value, 0):
            raise ValueError(f"`{key}` must be a non-negative integer. Received: "
                             f"{key}={value!r}")
    return {"name": DATASET_NAME, "version": str(MmzooShapes.VERSION),
            "image_size": int(image_size), "seed": int(seed), "num_train": int(num_train),
            "num_validation": int(num_validation), "num_test": int(num_test),
            "text_field": text_field, "sequence_length": sequence_length,
            "captions": captions}


def _is_int(value, minimum):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) \
        and value >= minimum


def _check_dataset(dataset, split, num_examples):
    if not isinstance(dataset, dict) or dataset.get("name", DATASET_NAME) != DATASET_NAME:
        name = dataset.get("name") if isinstance(dataset, dict) else dataset
        raise ValueError(
            "Metrics can be re-measured only for models trained on mmzoo-shapes (the "
            "entry's metadata['dataset'] must be a recipe's dataset section or "
            f"mmzoo.zoo.shapes_dataset_metadata(...)). Received: dataset={name!r}")
    for key in ("image_size", "seed"):
        if not _is_int(dataset.get(key), 0):
            raise ValueError(f"metadata['dataset'] lacks {key!r}, needed to regenerate the "
                             f"evaluation scenes. Received: dataset={dataset!r}")
    from mmzoo.data.mmzoo_shapes import MmzooShapes

    version = dataset.get("version")
    if version is not None and version != str(MmzooShapes.VERSION):
        warnings.warn(f"The entry was measured on mmzoo-shapes {version}; this mmzoo "
                      f"generates {MmzooShapes.VERSION}, whose scenes may differ.", stacklevel=3)
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
    if num_examples is None:
        num_examples = dataset.get("num_test" if split == "test" else "num_validation")
    if not _is_int(num_examples, 1):
        raise ValueError(f"`num_examples` must be a positive integer (default: the dataset's "
                         f"num_{split}). Received: num_examples={num_examples!r}")
    return int(num_examples)


def _inputs_for(model, preprocessor, x):
    """`x` from shapes_arrays, cut and resized to what `model` reads."""
    needed = model_input_specs(model)
    out = {}
    for key in needed:
        if key == "image":
            image = x["image"]
            if image.shape[1:] != tuple(preprocessor.image_size):
                image = preprocessor.preprocess_images(image)
            out[key] = image
        elif key == "modality_mask":
            present = [m for m in MODALITIES if m in needed]
            out[key] = np.ones((len(x["image"]), len(present)), np.float32)
        else:
            out[key] = x[key]
    return out


def example_inputs(model, preprocessor, dataset, *, split="validation", num_examples=None):
    """Model-ready mmzoo-shapes examples of an entry's dataset, regenerated from its metadata.

    Args:
        model: the Keras model (its inputs decide what is returned).
        preprocessor: its `mmzoo.data.Preprocessor`.
        dataset: the `metadata["dataset"]` record (see `measure_metrics`).
        split: `"validation"` (default: what calibration and checks should
            use, leaving the test split for measuring) or `"test"`.
        num_examples: examples (default: the dataset's `num_<split>`).

    Returns:
        `(inputs, labels, info)`: `inputs` a dict keyed by the model's inputs,
        `labels` as `mmzoo.data.shapes_arrays` gives them, `info` its `TaskInfo`.

    Raises:
        ValueError: the dataset is not mmzoo-shapes, or lacks what regenerating
            it needs. Captioning entries have no (image, text) inputs.
    """
    from mmzoo.data import pipeline, problems

    n = _check_dataset(dataset, split, num_examples)
    if preprocessor.task_object.generative:
        raise ValueError("Captioning entries take images only: use "
                         "mmzoo.data.shapes.generate_scenes for their images.")
    text_field = dataset.get("text_field") or preprocessor.text_field
    # The problem the entry was trained on (a recipe's dataset.problem), else the task's.
    problem = dataset.get("problem") or preprocessor.task
    audio = {}
    if problems.get(problem).spoken:
        audio["audio_samples"] = preprocessor.audio_samples or dataset.get("audio_samples")
    x, y, info = pipeline.shapes_arrays(
        problem, n, image_size=int(dataset["image_size"]), seed=int(dataset["seed"]),
        split=split, tokenizer=preprocessor.tokenizer,
        sequence_length=preprocessor.sequence_length, text_field=text_field, **audio)
    return _inputs_for(model, preprocessor, x), y, info


# Near ties: how far apart two answers' scores may be and still come out either way on
# another CPU, by the precision the model computes in. Different CPUs run different
# kernels (AVX2 or AVX-512, native or emulated bfloat16), which round differently: in
# float32 the outputs differ by about 1e-6, in bfloat16 by far more (document_vqa's
# probabilities lie a median 5e-4 from those of the same weights run in float32). One
# colour answer of document_vqa, 2.6e-5 from a tie, came out differently on CI's CPU.
NEAR_TIE = {"float32": 1e-5, "float64": 1e-5, "float16": 1e-4, "bfloat16": 1e-3}


def near_tie(model):
    """The score gap below which `model`'s answers may go either way on another CPU.

    Reads the lowest precision any layer computes in (see `NEAR_TIE`).

    Returns:
        `(gap, compute dtype)`, e.g. `(1e-3, "bfloat16")` for a model built
        with `precision = "mixed_bfloat16"`.
    """
    dtypes = {getattr(layer, "compute_dtype", None) or "float32"
              for layer in model._flatten_layers(include_self=True)}
    dtype = max(dtypes & set(NEAR_TIE), key=NEAR_TIE.get, default="float32")
    return NEAR_TIE[dtype], dtype


def measure_metrics(model, preprocessor, dataset, *, split="test", num_examples=None,
                    batch_size=64, decoding="greedy", beam_width=3, length_penalty=0.0,
                    ranges=False):
    """Measures a model's metrics on an mmzoo-shapes evaluation split.

    Args:
        model: the Keras model.
        preprocessor: its `mmzoo.data.Preprocessor` (task, tokenizer, image size).
        dataset: the `metadata["dataset"]` record: a recipe's dataset
            section or `shapes_dataset_metadata(...)` (`image_size`, `seed`,
            `num_test`, `text_field`).
        split: `"test"` (default) or `"validation"`.
        num_examples: examples (default: the dataset's `num_test` /
            `num_validation`).
        batch_size: examples per model call.
        decoding, beam_width, length_penalty: captioning's search.
        ranges: also return, per metric, the range that the near ties allow
            (`near_tie`): the numbers another CPU, rounding differently, may
            measure on the same examples. A card measured elsewhere is
            reproduced when each of its numbers lies in its range.

    Returns:
        A flat dict of floats (see the module table); with `ranges=True`,
        `(metrics, ranges)`, `ranges` a dict `{metric: (low, high)}` for the
        metrics that can be bounded (not captioning's or retrieval's, which
        are compared as they are) and `ranges["near_ties"]` the number of
        examples whose answer is right or wrong by less than the gap.

    Example:

    ```python
    metrics = mmzoo.zoo.measure_metrics(model, pre, dataset)
    # {"num_examples": 512, "accuracy": 0.61, "accuracy_colour": 0.8, ..., "loss": 1.2}
    ```
    """
    n = _check_dataset(dataset, split, num_examples)
    task = preprocessor.task
    image_size, seed = int(dataset["image_size"]), int(dataset["seed"])
    if preprocessor.task_object.generative:
        metrics = _captioning(model, preprocessor, n, split, image_size, seed, batch_size,
                              decoding, beam_width, length_penalty)
        return (metrics, {}) if ranges else metrics
    inputs, y, info = example_inputs(model, preprocessor, dataset, split=split, num_examples=n)
    outputs = model.predict(inputs, batch_size=batch_size, verbose=0)
    # Each task reads the groups it reports per (question types, perturbations).
    groups = {"question_types": info.question_types, "perturbations": info.perturbations,
              "voices": info.voices}
    metrics = task_metrics(task, outputs, y, **groups)
    if not ranges:
        return metrics
    return metrics, tie_ranges(preprocessor.task_object, outputs, y, near_tie(model)[0],
                               **groups)


def tie_ranges(task, outputs, y, gap, **groups):
    """Each metric's range over all outputs within `gap / 2` of `outputs`.

    Args:
        task: a `mmzoo.tasks` task object.
        outputs: the model's outputs as `predict` returns them.
        y: the labels.
        gap: the near-tie gap (`near_tie(model)[0]`).
        **groups: `question_types`, `perturbations`, `voices`, as
            `mmzoo.metrics.task_metrics` takes them.

    Returns:
        `{metric: (low, high), "near_ties": count}`, or `{}` for a task
        whose metrics `Task.nudge` cannot bound.
    """
    if isinstance(outputs, dict):
        if len(outputs) != 1:
            return {}
        (outputs,) = outputs.values()
    pred = np.asarray(outputs, np.float64)
    up, down = task.nudge(pred, y, gap), task.nudge(pred, y, -gap)
    if up is None:
        return {}
    high = task_metrics(task.name, up, y, **groups)
    low = task_metrics(task.name, down, y, **groups)
    ranges = {key: (min(low[key], high[key]), max(low[key], high[key]))
              for key in high if key != "num_examples"}
    # Near ties: examples whose answer the two nudged outputs decide differently.
    up, down = task.decide(up), task.decide(down)
    ranges["near_ties"] = int(np.sum((up != down).reshape(len(up), -1).any(axis=1)))
    return ranges


def _captioning(model, preprocessor, n, split, image_size, seed, batch_size, decoding,
                beam_width, length_penalty):
    from mmzoo.captioning import CaptionGenerator, caption_metrics
    from mmzoo.data import shapes
    from mmzoo.data.tokenizer import split_words

    data = shapes.generate_scenes(n, split=split, image_size=image_size, seed=seed)
    images = preprocessor.preprocess_images(data["image"])
    kwargs = {"method": decoding or "greedy"}
    if kwargs["method"] == "beam":
        kwargs.update(beam_width=beam_width or 3, length_penalty=length_penalty or 0.0)
    captions = CaptionGenerator(model, preprocessor.tokenizer)(
        images, batch_size=min(batch_size, 64), **kwargs)
    references = [[" ".join(split_words(str(c))) for c in row] for row in data["captions"]]
    scores = caption_metrics(captions.texts, references)
    return {"num_examples": int(n), **{k: float(v) for k, v in scores.items()}}


def evaluation_settings(metadata):
    """The `measure_metrics` keyword arguments an entry's metadata records.

    Reads `metadata["recipe"]["evaluation"]` (split, batch size, decoding)
    when the entry was trained from a recipe.
    """
    recipe = metadata.get("recipe") or {}
    ev = recipe.get("evaluation") or {}
    settings = {}
    for key in ("split", "batch_size", "decoding", "beam_width", "length_penalty"):
        if ev.get(key) is not None:
            settings[key] = ev[key]
    return settings


def card_differences(card, measured, ranges, *, tolerance=2e-4):
    """The metrics a re-measurement does not reproduce: `[(metric, card value, low, high)]`.

    A metric with a near-tie range (`measure_metrics(..., ranges=True)`) is
    reproduced when the card's value lies in it; any other within
    `tolerance` of the value measured now. Metrics on one side only are
    left out (`compare_metrics` lists them).

    Example:

    ```python
    measured, ranges = entry.evaluate(ranges=True)
    assert not mmzoo.zoo.card_differences(entry.metadata["metrics"], measured, ranges)
    ```
    """
    card, measured = flatten_metrics(card), flatten_metrics(measured)
    out = []
    for key, value in card.items():
        if key not in measured or not isinstance(value, (int, float)):
            continue
        now = measured[key]
        low, high = (ranges or {}).get(key, (now - tolerance, now + tolerance))
        # The range's ends are float64 sums, as exact as the card's value.
        if not low - 1e-9 <= value <= high + 1e-9:
            out.append((key, value, low, high))
    return out


def compare_metrics(card, measured):
    """Rows `(metric, card value, measured value)` for every metric in either.

    Nested metrics are flattened to `"group/name"`; a value missing on one
    side is `None`.
    """
    card, measured = flatten_metrics(card), flatten_metrics(measured)
    names = list(card) + [k for k in measured if k not in card]
    return [(k, card.get(k), measured.get(k)) for k in names]
