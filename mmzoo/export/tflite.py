"""TFLite (LiteRT) export for phones: float32, float16, dynamic-range and int8 variants.

Every variant uses TFLite builtin operators only (no Flex ops), so it runs in
`ai_edge_litert` and in the stock LiteRT runtime on Android and iOS. Recurrent
layers are unrolled over the fixed sequence length.

The batch: by default static, 1 (`batch_size=1`): what phone delegates (GPU,
NNAPI) run best. A static file cannot be resized: LiteRT's RESHAPE check
fails on `resize_tensor_input` with another batch. Export with
`batch_size=None` for a file whose batch is dynamic (`shape_signature` -1):
batch 1 until the interpreter resizes it, still builtins only (a few SHAPE,
STRIDED_SLICE, PACK, FILL ops more); the export's parity check runs it
resized. Any other int gives a static file of that batch.

Files written for `path="model.tflite"`:

- `model.tflite`: the model; one signature, `serving_default`, with the same
  input and output names as the Keras model. Inputs and outputs stay float32
  (token ids int32) in every variant, quantized ones included: the int8 model
  quantizes its inputs on entry and dequantizes its outputs.
- `model.preprocessing.json`: image size, pixel range, resize method, text
  length, padding id, tokenizer settings: what a phone app must reproduce.
- `model.vocab.txt`: the tokenizer's vocabulary, one token per line (line
  number = token id), when a tokenizer was given.

Quantization variants (`quantization=`):

| variant         | weights | activations | needs                  |
|-----------------|---------|-------------|------------------------|
| `float32`       | float32 | float32     |                        |
| `float16`       | float16 | float32     |                        |
| `dynamic_range` | int8    | float32 (int8 where kernels allow) |     |
| `int8`          | int8    | int8        | `representative_data`  |
"""

import os

import keras
import numpy as np
import tensorflow as tf

from mmzoo.export.parity import input_specs
from mmzoo.export.preprocessing import preprocessing_config, write_json
from mmzoo.export.saved_model import output_names, write_vocabulary

QUANTIZATIONS = ("float32", "float16", "dynamic_range", "int8")


def side_files(path):
    """`{kind: path}` of the files written next to the `.tflite` file."""
    stem = path[: -len(".tflite")]
    return {"preprocessing": f"{stem}.preprocessing.json", "vocabulary": f"{stem}.vocab.txt"}


def write_conversion_source(model, path, batch_size):
    """The static-shape SavedModel the converter reads (numeric endpoint only)."""
    # The converter reads the endpoint only: no variable collections needed.
    archive = keras.export.ExportArchive()
    signature = {
        name: tf.TensorSpec((batch_size,) + shape, dtype, name=name)
        for name, (shape, dtype) in input_specs(model).items()
    }

    def serve(inputs):
        outputs = model(inputs, training=False)
        return outputs if isinstance(outputs, dict) else {"output_0": outputs}

    archive.add_endpoint("serving_default", serve, input_signature=[signature])
    archive.write_out(path, verbose=False)


def write_side_files(model, staged_paths, encoder, quantization, batch_size,
                     label_names=None):
    """Writes the preprocessing settings (and vocabulary) for a phone app.

    Returns:
        The kinds written (`"preprocessing"`, `"vocabulary"`).
    """
    written = []
    vocabulary_file = None
    vocabulary = encoder.vocabulary() if encoder is not None else None
    if vocabulary is not None:
        write_vocabulary(staged_paths["vocabulary"], vocabulary)
        vocabulary_file = os.path.basename(staged_paths["vocabulary"])
        written.append("vocabulary")
    from mmzoo.audio_io import model_sample_rate

    config = preprocessing_config(
        input_specs(model), output_names(model), encoder, vocabulary_file,
        quantization=quantization, batch_size=batch_size, label_names=label_names,
        audio_sample_rate=model_sample_rate(model),
    )
    write_json(staged_paths["preprocessing"], config)
    written.append("preprocessing")
    return written


def save_inputs(path, inputs):
    np.savez(path, **inputs)
    return path


def run_tflite(path, inputs):
    """Runs an exported `.tflite` file on `{name: array}` inputs with the LiteRT interpreter.

    A file with a static batch is filled batch by batch (the last one padded
    and cut back), exactly as the export's parity check runs it; a file
    exported with `batch_size=None` is resized to batches of up to 256.

    Args:
        path: a `.tflite` file written by `mmzoo.export(..., format="tflite")`.
        inputs: `{input name: array}` with the same leading size.

    Returns:
        `{output name: array}`, one row per input row.
    """
    from ai_edge_litert.interpreter import Interpreter

    from mmzoo.export._worker import _run_tflite

    details = Interpreter(model_path=path).get_signature_runner(
        "serving_default").get_input_details()
    missing = sorted(set(details) - set(inputs))
    if missing:
        raise ValueError(f"{path} needs inputs {sorted(details)}. Missing: {missing}")
    feed = {k: np.asarray(inputs[k], dtype=details[k]["dtype"]) for k in details}
    outputs, _ = _run_tflite(path, feed, None, dynamic_check_batch=256)
    return outputs
