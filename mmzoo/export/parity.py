"""Parity of an exported model with its Keras original: samples, metrics, gates.

The gates (per quantization):

| quantization    | gated metric                       | bound   |
|-----------------|------------------------------------|---------|
| `float32`       | max absolute difference            | 1e-5    |
| `float16`       | max absolute difference            | 1e-2    |
| `dynamic_range` | decision agreement (held-back)     | >= 99%  |
| `int8`          | decision agreement (held-back)     | >= 97%  |

float16 rounds every weight to 11 significant bits (relative error up to
4.9e-4); through a wide layer that moves probabilities by a few 1e-3 (2.2e-3
for the shipped `mobile_vqa`, whose answers agree 99.7%), so the bound is
1e-2: loose enough for correct conversions, far below what a mis-converted op
gives (0.1 and more).

Full int8 also rounds every activation to 256 levels, so answers the float
model gives by a few hundredths can flip even in a correct conversion (the
shipped `mobile_vqa`: 98.0% agreement on held-back validation examples,
98.55% on 2,000 test questions, test accuracy 0.3 points lower); the gate is
the zoo's int8 bar, 97% (a mis-scaled op drops agreement far below it).
Dynamic-range quantization keeps activations in float and stays at 99%.

A decision is what the model's task says (`Task.decision`): the top-1 class
(`"argmax"`: classification), the probability thresholded at 0.5
(`"threshold"`: binary, and per label for multilabel). Numbers (regression)
have no decision: a quantized regression model is gated on its max absolute
difference relative to the spread (standard deviation) of the Keras outputs:
<= 10%, an order of magnitude below the outputs' own variation (int8 output
rounding alone costs about 1%).
"""

import keras
import numpy as np

from mmzoo.export.prepare import walk_layers
from mmzoo.export.report import Check
from mmzoo.registry import TASKS
from mmzoo.tasks.base import decide

THRESHOLDS = {
    "float32": ("max_abs_diff", 1e-5),
    "float16": ("max_abs_diff", 1e-2),
    "dynamic_range": ("agreement", 0.99),
    "int8": ("agreement", 0.97),
}
# Quantized regression: max |diff| / (std of the Keras outputs) must stay below this.
REGRESSION_RELATIVE_BOUND = 0.1

# Sample sizes when the caller gives no data. Quantized variants are judged on
# 1% granularity, so they get more held-back samples than the float checks.
FLOAT_SAMPLES = 32
QUANTIZED_SAMPLES = 200
CALIBRATION_SAMPLES = 100


def input_specs(model):
    """`{input_name: (shape_without_batch, dtype)}` of a dict-input Keras model.

    Raises:
        ValueError: the model's inputs are not a dict keyed by name, or a
            non-batch dimension is unknown.
    """
    structure = model.input
    if not isinstance(structure, dict):
        names = [t.name for t in model.inputs]
        structure = dict(zip(names, model.inputs))
    specs = {}
    for name, tensor in structure.items():
        shape = tuple(tensor.shape[1:])
        if any(d is None for d in shape):
            raise ValueError(
                "Export needs every input dimension except the batch to be known "
                f"(fixed image size and sequence length). Received: input {name!r} "
                f"with shape {tuple(tensor.shape)}"
            )
        specs[name] = (shape, str(tensor.dtype))
    return specs


def _vocab_size(model):
    options = getattr(model, "build_options", None) or {}
    if "vocab_size" in options:
        return int(options["vocab_size"])
    for layer in walk_layers(model):
        if isinstance(layer, keras.layers.Embedding):
            return int(layer.input_dim)
    return 2


def synthetic_inputs(model, n, seed=0):
    """Random inputs in each modality's valid range, for parity and calibration.

    Images are uniform raw pixels in [0, 255]; token ids are a random-length
    run of non-padding ids followed by padding (id 0), as a tokenizer emits them;
    float text vectors are uniform in [0, 1].

    Args:
        model: the Keras model (its input specs and vocabulary size are used).
        n: number of examples.
        seed: random seed.

    Returns:
        `{input_name: np.ndarray}` with `n` examples each.
    """
    rng = np.random.default_rng(seed)
    vocab = _vocab_size(model)
    out = {}
    for name, (shape, dtype) in input_specs(model).items():
        if dtype.startswith("int"):
            ids = rng.integers(1, max(vocab, 2), size=(n,) + shape)
            if len(shape) == 1:
                lengths = rng.integers(1, shape[0] + 1, size=n)
                ids[np.arange(shape[0])[None, :] >= lengths[:, None]] = 0
            out[name] = ids.astype(dtype)
        elif name == "image" or len(shape) == 3:
            out[name] = rng.uniform(0.0, 255.0, size=(n,) + shape).astype(dtype)
        else:
            out[name] = rng.uniform(0.0, 1.0, size=(n,) + shape).astype(dtype)
    return out


def collect_inputs(data, model, limit=None):
    """Turns user data into `{input_name: np.ndarray}` of at most `limit` examples.

    Args:
        data: a dict of arrays keyed by input name, or an iterable (e.g. a
            `tf.data.Dataset`) of such dicts or of `(inputs, labels)` pairs,
            batched or not.
        model: the Keras model, whose inputs must all be present.
        limit: keep at most this many examples.

    Returns:
        `{input_name: np.ndarray}` cast to the model's input dtypes.
    """
    specs = input_specs(model)
    if isinstance(data, dict):
        arrays = {k: np.asarray(v) for k, v in data.items()}
    else:
        parts = {name: [] for name in specs}
        count = 0
        for element in data:
            if isinstance(element, (tuple, list)):
                element = element[0]
            if not isinstance(element, dict):
                raise ValueError(
                    "`representative_data` must yield dicts keyed by input name "
                    f"({', '.join(specs)}) or (inputs, labels) pairs. "
                    f"Received an element of type {type(element).__name__}"
                )
            for name in specs:
                value = np.asarray(element[name])
                if value.ndim == len(specs[name][0]):
                    value = value[None]
                parts[name].append(value)
            count += len(parts[next(iter(specs))][-1])
            if limit is not None and count >= limit:
                break
        if not count:
            raise ValueError("`representative_data` is empty. Received: no examples")
        arrays = {k: np.concatenate(v) for k, v in parts.items()}
    missing = sorted(set(specs) - set(arrays))
    if missing:
        raise ValueError(
            f"`representative_data` lacks model input(s) {missing}; the model takes "
            f"{sorted(specs)}. Received keys: {sorted(arrays)}"
        )
    lengths = {len(arrays[k]) for k in specs}
    if len(lengths) != 1:
        raise ValueError(
            "Every input in `representative_data` needs the same number of examples. "
            f"Received: { {k: len(arrays[k]) for k in specs} }"
        )
    out = {}
    for name, (shape, dtype) in specs.items():
        value = arrays[name]
        if tuple(value.shape[1:]) != shape:
            raise ValueError(
                f"`representative_data[{name!r}]` must have shape (n, "
                f"{', '.join(map(str, shape))}). Received: shape {value.shape}"
            )
        out[name] = value[:limit].astype(dtype)
    return out


def take(inputs, index):
    return {k: v[index] for k, v in inputs.items()}


def num_examples(inputs):
    return len(next(iter(inputs.values())))


def decision_kind(model, reference):
    """How outputs turn into decisions: `"argmax"`, `"threshold"` or `None`."""
    task = TASKS.of(model)
    if task is not None:
        return task.decision
    # A model not built by mmzoo: judge from the values.
    values = np.concatenate([np.asarray(v).reshape(len(v), -1) for v in reference.values()], 1)
    if values.shape[1] > 1 and np.allclose(values.sum(1), 1.0, atol=1e-3):
        return "argmax"
    if values.min() >= 0.0 and values.max() <= 1.0:
        return "threshold"
    return None


def _agreement(kind, ref, got):
    ref, got = decide(kind, ref), decide(kind, got)
    return None if ref is None else float(np.mean(ref == got))


def compare(name, runtime, reference, outputs, kind, quantization):
    """Measures `outputs` against the Keras `reference` and applies the gate.

    Args:
        name: the check's name (endpoint or runtime).
        runtime: which runtime produced `outputs`.
        reference: `{output_name: np.ndarray}` from the Keras model.
        outputs: the same structure from the exported model.
        kind: `decision_kind(...)`.
        quantization: selects the gate from `THRESHOLDS`.

    Returns:
        A `Check`.
    """
    missing = sorted(set(reference) - set(outputs))
    if missing:
        raise ValueError(
            f"The exported model's outputs {sorted(outputs)} lack {missing} "
            f"(the Keras model's outputs are {sorted(reference)})."
        )
    diffs, agreements, spreads = [], [], []
    for key, ref in reference.items():
        ref = np.asarray(ref, np.float64)
        got = np.asarray(outputs[key], np.float64).reshape(ref.shape)
        diffs.append(np.abs(ref - got).ravel())
        agreements.append(_agreement(kind, ref, got))
        spreads.append(float(ref.std()))
    diff = np.concatenate(diffs)
    agreement = None if kind is None else float(np.mean(agreements))
    metric, threshold = THRESHOLDS[quantization]
    max_abs = float(diff.max()) if diff.size else 0.0
    if metric == "agreement" and agreement is None:
        # Regression: no decision to agree on; bound the error by the spread.
        metric = "max_abs_diff"
        threshold = REGRESSION_RELATIVE_BOUND * max(max(spreads), 1e-6)
    measured = max_abs if metric == "max_abs_diff" else agreement
    passed = measured <= threshold if metric == "max_abs_diff" else measured >= threshold
    return Check(
        name=name,
        runtime=runtime,
        samples=len(next(iter(reference.values()))),
        max_abs_diff=max_abs,
        mean_abs_diff=float(diff.mean()) if diff.size else 0.0,
        agreement=agreement,
        metric=metric,
        threshold=float(threshold),
        passed=bool(passed),
    )


def keras_outputs(model, inputs, batch_size=32):
    """The Keras model's outputs as `{output_name: np.ndarray}`.

    Calls the model eagerly batch by batch: `model.predict` would retrace (and
    warn) for every new sample size and input set an export brings.
    """
    parts = {}
    for start in range(0, num_examples(inputs), batch_size):
        outputs = model(take(inputs, slice(start, start + batch_size)), training=False)
        if not isinstance(outputs, dict):
            outputs = {"output_0": outputs}
        for k, v in outputs.items():
            parts.setdefault(k, []).append(keras.ops.convert_to_numpy(v))
    return {k: np.concatenate(v) for k, v in parts.items()}
