"""Export to SavedModel and TFLite, checked with the runtimes users run.

Every model kind (classification, binary, multilabel, regression) goes to every
format; each artifact is then loaded again here, independently of the report
export returned, with `tf.saved_model.load` / `tensorflow_hub.load` /
`saved_model_cli` or the `ai_edge_litert` interpreter and its analyzer.

The models are tiny and trained for a few seconds on a task they learn well,
so that their decisions are clear-cut: a quantized model is judged on whether it
makes the same decisions, which only means something for a model that decides.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import keras
import mmzoo
import mmzoo.export
from mmzoo.data import Tokenizer
from mmzoo.export import ExportError, ExportReport

IMAGE_SHAPE = (16, 16, 3)
SEQUENCE_LENGTH = 8
COLOURS = ("red", "green", "blue")
WORDS = COLOURS + ("a", "the", "big", "small", "circle", "square", "above", "left", "of")

# Each kind with different branches, to cover the recurrent, the embedding and
# the image-only paths.
KINDS = {
    "classification": dict(text_branch="lstm", num_classes=3),
    "binary": dict(text_branch=None),
    "multilabel": dict(text_branch="lstm", num_classes=3),
    "regression": dict(text_branch="embedding"),
}
QUANTIZATIONS = ("float32", "float16", "dynamic_range", "int8")


# ------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer(list(WORDS), sequence_length=SEQUENCE_LENGTH)


def _data(tokenizer, n, seed):
    """Images with one dominant colour channel and sentences naming colours.

    Labels: classification = the dominant channel; binary = whether the image
    is bright; multilabel = which colours the sentence names; regression = the
    image's brightness plus the number of words.
    """
    rng = np.random.default_rng(seed)
    channel = rng.integers(0, 3, n)
    bright = rng.integers(0, 2, n)
    images = rng.uniform(0, 90, (n,) + IMAGE_SHAPE)
    images[np.arange(n), :, :, channel] += 120
    images += 40 * bright[:, None, None, None]
    named = rng.integers(0, 2, (n, 3))
    sentences = []
    for i in range(n):
        words = [w for w, on in zip(COLOURS, named[i]) if on] or ["a"]
        filler = list(rng.choice(WORDS[3:], size=rng.integers(0, 4)))
        sentences.append(" ".join(filler + words))
    x = {"image": np.clip(images, 0, 255).astype("float32"),
         "text": tokenizer.encode(sentences)}
    length = (x["text"] > 0).sum(1)
    y = {"classification": channel, "binary": bright, "multilabel": named,
         "regression": (images.mean((1, 2, 3)) / 100 + length / 4)[:, None]}
    return x, y, sentences


def _build(task, tokenizer):
    options = dict(image_branch="cnn", image_shape=IMAGE_SHAPE, image_filters=4,
                   learning_rate=1e-2, name=f"tiny_{task}", **KINDS[task])
    if options["text_branch"]:
        options.update(vocab_size=tokenizer.vocab_size, sequence_length=SEQUENCE_LENGTH,
                       embedding_dim=8)
    if options["text_branch"] == "lstm":
        options["text_units"] = 8
    return mmzoo.build_model(task, **options)


@pytest.fixture(scope="module")
def trained(tokenizer):
    """`{task: model}`, each trained on `_data` until its decisions are clear."""
    x, y, _ = _data(tokenizer, 400, seed=0)
    models = {}
    for task in KINDS:
        keras.utils.set_random_seed(0)
        model = _build(task, tokenizer)
        inputs = {k: v for k, v in x.items() if k in model.input}
        model.fit(inputs, y[task], epochs=25, batch_size=32, verbose=0)
        models[task] = model
    return models


@pytest.fixture(scope="module")
def examples(tokenizer):
    """Real-looking examples: calibration / held-back data for the exports."""
    x, _, _ = _data(tokenizer, 250, seed=1)
    return x


def _inputs_for(model, x):
    return {k: v for k, v in x.items() if k in model.input}


def _keras(model, x):
    return {k: np.asarray(v) for k, v in model.predict(_inputs_for(model, x), verbose=0).items()}


def _litert_run(path, x):
    """Runs a .tflite file example by example with the ai_edge_litert interpreter."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path)).get_signature_runner("serving_default")
    n = len(next(iter(x.values())))
    outputs = [runner(**{k: v[i:i + 1] for k, v in x.items()}) for i in range(n)]
    return {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]}


def _analyzer_ops(path):
    """Operator names in a .tflite file, as the LiteRT analyzer lists them."""
    from ai_edge_litert import _pywrap_analyzer_wrapper

    text = _pywrap_analyzer_wrapper.ModelAnalyzer(str(path), True, False)
    return set(re.findall(r"Op#\d+ (\S+?)\(", text))


def _decisions(task, values):
    return values.argmax(-1) if task == "classification" else values > 0.5


def _no_partial_files(folder):
    return [p for p in os.listdir(folder) if ".partial-" in p]


# ---------------------------------------------------------------- SavedModel


@pytest.fixture(scope="module")
def saved_models(trained, tokenizer, examples, tmp_path_factory):
    """`{task: (path, report)}`: every kind exported as a SavedModel."""
    out = {}
    for task, model in trained.items():
        path = tmp_path_factory.mktemp("sm") / task
        uses_tokens = model.build_options["text_branch"] is not None
        report = mmzoo.export.export(
            model, path, tokenizer=tokenizer if uses_tokens else None,
            representative_data=_inputs_for(model, examples), verbose=False)
        out[task] = (path, report)
    return out


@pytest.mark.parametrize("task", list(KINDS))
def test_saved_model_matches_keras(task, saved_models, trained, tokenizer, examples):
    path, report = saved_models[task]
    model = trained[task]
    assert isinstance(report, ExportReport) and report.passed
    check = report.check("serving_default")
    assert check.runtime == "tf.saved_model.load" and check.max_abs_diff <= 1e-5
    int64 = ["serve_int64"] if "text" in model.input else []
    assert sorted(report.endpoints) == sorted(int64 + ["serve_raw", "serving_default"])

    # Independently of the report: load it as a server would and compare.
    loaded = tf.saved_model.load(str(path))
    x = _inputs_for(model, examples)
    got = loaded.signatures["serving_default"](**{k: tf.constant(v[:16]) for k, v in x.items()})
    want = _keras(model, {k: v[:16] for k, v in x.items()})
    (key,) = want
    assert list(got) == [key] == [{"classification": "probabilities", "binary": "probability",
                                   "multilabel": "probabilities", "regression": "value"}[task]]
    np.testing.assert_allclose(got[key].numpy(), want[key], atol=1e-5, rtol=0)
    if int64:  # int64 ids, as NumPy and gRPC clients send them
        wide = loaded.signatures["serve_int64"](**{
            k: tf.constant(v[:16].astype(np.int64) if k == "text" else v[:16])
            for k, v in x.items()})
        np.testing.assert_array_equal(wide[key].numpy(), got[key].numpy())

    # The client files: preprocessing settings and the vocabulary.
    extra = path / "assets.extra"
    config = json.loads((extra / "preprocessing.json").read_text())
    assert config["inputs"]["image"]["shape"] == [None, *IMAGE_SHAPE]
    assert config["inputs"]["image"]["value_range"] == [0, 255]
    if "text" in model.input:
        assert config["inputs"]["text"]["sequence_length"] == SEQUENCE_LENGTH
        assert (extra / "vocabulary.txt").read_text().splitlines() == tokenizer.vocabulary


@pytest.mark.parametrize("task", ["classification", "binary"])
def test_raw_endpoint_decodes_images_and_tokenizes_strings(task, saved_models, trained,
                                                           tokenizer, examples):
    path, report = saved_models[task]
    model = trained[task]
    assert report.check("serve_raw").passed
    raw = tf.saved_model.load(str(path)).signatures["serve_raw"]
    x, _, sentences = _data(tokenizer, 4, seed=7)
    pixels = np.round(x["image"]).astype(np.uint8)
    png = [tf.io.encode_png(p).numpy() for p in pixels]
    feed = {"image": tf.constant(png)}
    numeric = {"image": pixels.astype("float32")}
    if "text" in model.input:
        # Capitals and punctuation: the in-graph tokenizer must follow the
        # Python tokenizer's rules.
        shouted = [s.upper() + "!!" for s in sentences]
        feed["text"] = tf.constant(shouted)
        numeric["text"] = tokenizer.encode(shouted)
    got = raw(**feed)
    want = _keras(model, numeric)
    for key in want:
        np.testing.assert_allclose(got[key].numpy(), want[key], atol=1e-5, rtol=0)

    # Any size and format: a JPEG of another size is decoded and resized inside.
    big = tf.image.resize(pixels[:2].astype("float32"), (40, 30)).numpy().astype(np.uint8)
    jpeg = tf.constant([tf.io.encode_jpeg(b).numpy() for b in big])
    feed = {"image": jpeg, **({"text": tf.constant(sentences[:2])} if "text" in feed else {})}
    (values,) = raw(**feed).values()
    assert values.shape[0] == 2 and np.all(np.isfinite(values.numpy()))


def test_raw_endpoint_sees_the_pixels_and_ids_of_the_python_preprocessor(
        saved_models, trained, tokenizer):
    """serve_raw and mmzoo.data.Preprocessor (a zoo entry's predict) agree."""
    path, _ = saved_models["classification"]
    raw = tf.saved_model.load(str(path)).signatures["serve_raw"]
    x, _, sentences = _data(tokenizer, 3, seed=11)
    wide = tf.image.resize(x["image"], (24, 40)).numpy().round().astype(np.uint8)
    files = [tf.io.encode_png(wide[0]).numpy(), tf.io.encode_jpeg(wide[1]).numpy(),
             tf.io.encode_png(wide[2]).numpy()]
    texts = ["Red, GREEN and blue!", "ÀÉ small… square", sentences[2]]
    pre = mmzoo.data.Preprocessor("classification", tokenizer, image_size=IMAGE_SHAPE,
                                  label_names=COLOURS)
    want = _keras(trained["classification"], pre(images=files, texts=texts))
    got = raw(image=tf.constant(files), text=tf.constant(texts))
    np.testing.assert_allclose(got["probabilities"].numpy(), want["probabilities"],
                               atol=1e-5, rtol=0)


def test_zoo_entry_brings_its_tokenizer_and_a_bare_model_gets_no_raw_text(trained, tokenizer,
                                                                         tmp_path):
    import types

    entry = types.SimpleNamespace(model=trained["classification"], tokenizer=tokenizer,
                                  preprocessor=types.SimpleNamespace(label_names=COLOURS))
    report = mmzoo.export(entry, tmp_path / "entry", verbose=False)
    assert report.check("serve_raw").passed
    # The client files say what each output column means.
    config = json.loads((tmp_path / "entry" / "assets.extra" / "preprocessing.json").read_text())
    assert config["label_names"] == list(COLOURS)
    mmzoo.export(entry, tmp_path / "phone.tflite", format="tflite", verbose=False)
    config = json.loads((tmp_path / "phone.preprocessing.json").read_text())
    assert config["label_names"] == list(COLOURS)

    report = mmzoo.export.export(trained["classification"], tmp_path / "sm", verbose=False)
    assert sorted(report.endpoints) == ["serve_int64", "serving_default"]
    assert any("no `tokenizer` was given" in n for n in report.notes)
    assert "serve_raw" not in tf.saved_model.load(str(tmp_path / "sm")).signatures


def test_saved_model_loads_with_hub_tfsmlayer_and_saved_model_cli(saved_models, trained,
                                                                  examples):
    import tensorflow_hub as hub

    path, _ = saved_models["classification"]
    x = {k: v[:3] for k, v in examples.items()}
    hub_model = hub.load(str(path))
    got = hub_model.signatures["serving_default"](**{k: tf.constant(v) for k, v in x.items()})
    want = _keras(trained["classification"], x)["probabilities"]
    np.testing.assert_allclose(got["probabilities"].numpy(), want, atol=1e-5)
    # And back into a Keras 3 graph, the way DESIGN.md says to wrap a SavedModel.
    layer = keras.layers.TFSMLayer(str(path), call_endpoint="serving_default")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)["probabilities"]), want,
                               atol=1e-5)

    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run([cli, "show", "--all", "--dir", str(path)], capture_output=True,
                           text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr[-2000:]
    out = shown.stdout
    default = out[out.index("signature_def['serving_default']"):]
    default = default[: default.index("Method name is")]

    def entry(kind, name, dtype, shape):
        return (f"{kind}['{name}'] tensor_info:\n        dtype: {dtype}\n"
                f"        shape: {shape}")

    assert entry("inputs", "image", "DT_FLOAT", "(-1, 16, 16, 3)") in default
    assert entry("inputs", "text", "DT_INT32", "(-1, 8)") in default
    assert entry("outputs", "probabilities", "DT_FLOAT", "(-1, 3)") in default
    raw = out[out.index("signature_def['serve_raw']"):]
    raw = raw[: raw.index("Method name is")]
    assert entry("inputs", "image", "DT_STRING", "(-1)") in raw
    assert entry("inputs", "text", "DT_STRING", "(-1)") in raw


def test_tpu_variant_is_static_and_compiles_with_xla(trained, tokenizer, examples, tmp_path):
    model = trained["classification"]
    report = mmzoo.export(model, tmp_path / "tpu", tpu=True, batch_size=4, tokenizer=tokenizer,
                          representative_data=examples, verbose=False)
    assert report.xla_compiled is True and report.function_aliases == ["tpu_func"]
    assert report.check("xla").max_abs_diff <= 1e-5
    assert report.check("serve_raw").passed

    loaded = tf.saved_model.load(
        str(tmp_path / "tpu"),
        options=tf.saved_model.LoadOptions(experimental_load_function_aliases=True))
    assert "tpu_func" in loaded.function_aliases
    core = loaded.signatures["serving_default"]
    _, specs = core.structured_input_signature
    assert specs["image"].shape == (4, *IMAGE_SHAPE) and specs["text"].shape == (4, 8)
    # Compile the numeric core with XLA here too, and check it holds no string op.
    x = {k: tf.constant(v[:4]) for k, v in examples.items()}
    compiled = tf.function(lambda batch: core(**batch), jit_compile=True)
    hlo = compiled.experimental_get_compiler_ir(x)(stage="hlo")
    assert "HloModule" in hlo
    np.testing.assert_allclose(compiled(x)["probabilities"].numpy(),
                               _keras(model, {k: v[:4] for k, v in examples.items()})
                               ["probabilities"], atol=1e-5)
    graph = core.graph.as_graph_def()
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    string_nodes = [n.op for n in nodes for a in n.attr.values()
                    if a.type == tf.string.as_datatype_enum
                    or tf.string.as_datatype_enum in a.list.type]
    assert string_nodes == []


# -------------------------------------------------------------------- TFLite


@pytest.mark.parametrize("quantization", QUANTIZATIONS)
@pytest.mark.parametrize("task", list(KINDS))
def test_tflite_variant(task, quantization, trained, tokenizer, examples, tmp_path):
    model = trained[task]
    path = tmp_path / f"{task}.tflite"
    uses_tokens = "text" in model.input
    report = mmzoo.export(model, path, format="tflite", quantization=quantization,
                          tokenizer=tokenizer if uses_tokens else None,
                          representative_data=_inputs_for(model, examples), verbose=False)
    assert report.passed and report.custom_ops == []
    check = report.check("litert")
    assert check.runtime.startswith("ai_edge_litert")
    if quantization == "float32":
        assert check.max_abs_diff <= 1e-5
    elif quantization == "float16":
        assert check.max_abs_diff <= 1e-3
    elif task != "regression":
        assert check.agreement >= 0.99 and check.samples == 125  # held back: every other
    else:
        # No decision to agree on: max |diff| within 10% of the outputs' spread.
        assert check.metric == "max_abs_diff" and check.max_abs_diff <= check.threshold

    # Builtin ops only, per the LiteRT analyzer; no Flex op and no loop.
    ops = _analyzer_ops(path)
    assert ops and not [op for op in ops if op.startswith("Flex")]
    assert set(report.ops) == ops and "WHILE" not in ops
    if quantization == "int8":
        assert {"QUANTIZE", "DEQUANTIZE"} <= ops

    # Run it here with the interpreter a phone app's Python twin would use.
    x, y, _ = _data(tokenizer, 40, seed=3)
    x = _inputs_for(model, x)
    got, want = _litert_run(path, x), _keras(model, x)
    (key,) = want
    if quantization == "float32":
        np.testing.assert_allclose(got[key], want[key], atol=1e-5, rtol=0)
    elif quantization == "float16":
        np.testing.assert_allclose(got[key], want[key], atol=1e-3, rtol=0)
    elif task != "regression":
        agree = np.mean(_decisions(task, got[key]) == _decisions(task, want[key]))
        assert agree >= 0.95, agree  # 40 fresh examples: allow one or two near-ties
    else:
        assert np.abs(got[key] - want[key]).mean() <= 0.05 * want[key].std()

    # Side files a phone app needs.
    config = json.loads(path.with_suffix(".preprocessing.json").read_text())
    assert config["quantization"] == quantization
    assert config["inputs"]["image"]["shape"] == [1, *IMAGE_SHAPE]
    assert config["inputs"]["image"]["resize"]["method"] == "bilinear"
    vocab = path.with_suffix(".vocab.txt")
    if uses_tokens:
        assert vocab.read_text().splitlines() == tokenizer.vocabulary
        text = config["inputs"]["text"]
        assert text["sequence_length"] == SEQUENCE_LENGTH and text["padding_id"] == 0
        assert text["vocabulary_file"] == vocab.name
        assert text["tokenizer"]["reserved_ids"] == {"<pad>": 0, "<oov>": 1, "<start>": 2,
                                                     "<end>": 3}
    else:
        assert not vocab.exists()
    assert sorted(os.listdir(tmp_path)) == sorted(report.files)


def test_tflite_tokenizer_rules_reproduce_the_python_tokenizer(tokenizer):
    """The rules written for phone apps, applied by hand, give the tokenizer's ids."""
    from mmzoo.export.preprocessing import TextEncoder

    rules = TextEncoder(tokenizer, SEQUENCE_LENGTH).config()
    lower = {}
    for first, last, step, delta in rules["lowercase_map"]:
        for cp in range(first, last + 1, step):
            lower[cp] = cp + delta
    separators = [(lo, hi) for lo, hi in rules["separator_ranges"]]
    ids = {w: i for i, w in enumerate(tokenizer.vocabulary)}

    def encode(text):
        cps = [lower.get(ord(c), ord(c)) for c in text]
        cps = [32 if any(lo <= c <= hi for lo, hi in separators) else c for c in cps]
        words = [w for w in "".join(map(chr, cps)).split(" ") if w]
        out = [ids.get(w, rules["out_of_vocabulary_id"]) for w in words][:SEQUENCE_LENGTH]
        return out + [0] * (SEQUENCE_LENGTH - len(out))

    for text in ["A RED Circle, above—the Blue square!", "ÀÉÎ small…big", "  of\tleft\n"]:
        assert encode(text) == tokenizer.encode(text).tolist()


# ------------------------------------------------------------ failure safety


def test_converter_crash_becomes_a_clear_error_and_writes_nothing(trained, examples, tmp_path,
                                                                  monkeypatch):
    """int8 calibration of a WHILE-loop LSTM segfaults the converter (DESIGN.md).

    Export unrolls recurrent layers to avoid that; undo the unrolling to make the
    converter crash for real.
    """
    import mmzoo.export.api as api
    from mmzoo.export.prepare import export_copy

    monkeypatch.setattr(api, "export_copy", lambda model, unroll=False: export_copy(model))
    path = tmp_path / "out" / "model.tflite"
    with pytest.raises(ExportError, match="crashed with SIGSEGV") as info:
        mmzoo.export(trained["classification"], path, format="tflite", quantization="int8",
                     representative_data=examples, verbose=False)
    assert "nothing was written" in str(info.value)
    assert os.listdir(tmp_path / "out") == []  # no model, no side files, no staging folder


def test_failed_parity_check_writes_nothing_unless_told(trained, tmp_path, monkeypatch):
    import mmzoo.export.parity as parity

    monkeypatch.setitem(parity.THRESHOLDS, "float32", ("max_abs_diff", -1.0))
    path = tmp_path / "m.tflite"
    with pytest.raises(ExportError, match="does not match the Keras model") as info:
        mmzoo.export(trained["regression"], path, format="tflite", verbose=False)
    assert info.value.report.check("litert").passed is False
    assert os.listdir(tmp_path) == []
    with pytest.warns(UserWarning, match="failed parity checks"):
        report = mmzoo.export(trained["regression"], path, format="tflite", parity="warn",
                              verbose=False)
    assert not report.passed and path.exists()


def test_existing_destination_is_kept_without_overwrite(trained, tokenizer, tmp_path):
    model = trained["classification"]
    path = tmp_path / "model.tflite"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        mmzoo.export(model, path, format="tflite", verbose=False)
    assert path.read_bytes() == b"precious"
    # overwrite=True replaces only mmzoo's own files: not a file that is no TFLite model.
    with pytest.raises(FileExistsError, match="is not an mmzoo export"):
        mmzoo.export(model, path, format="tflite", overwrite=True, verbose=False)
    assert path.read_bytes() == b"precious"
    # A side file of an earlier export counts as existing too.
    path.unlink()
    mmzoo.export(model, path, format="tflite", tokenizer=tokenizer, verbose=False)
    stale = tmp_path / "model.vocab.txt"
    assert stale.exists()
    path.unlink()
    with pytest.raises(FileExistsError):
        mmzoo.export(model, path, format="tflite", verbose=False)
    assert not path.exists()

    report = mmzoo.export(model, path, format="tflite", overwrite=True, verbose=False)
    assert report.passed and path.read_bytes()[4:8] == b"TFL3"
    assert not stale.exists()  # this export has no vocabulary: the old one would mislead
    assert sorted(os.listdir(tmp_path)) == ["model.preprocessing.json", "model.tflite"]

    folder = tmp_path / "serving"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        mmzoo.export(model, folder, verbose=False)
    with pytest.raises(FileExistsError, match="is not an mmzoo export"):
        mmzoo.export(model, folder, overwrite=True, verbose=False)
    assert os.listdir(folder) == ["keep.txt"]
    assert _no_partial_files(tmp_path) == []


@pytest.mark.parametrize("kwargs,message", [
    (dict(format="onnx"), "Received: format='onnx'"),
    (dict(format="tflite", path="m.bin"), "must end with '.tflite'"),
    (dict(quantization="int8"), "`quantization` applies to format='tflite'"),
    (dict(path="m.tflite"), "did you mean format='tflite'"),
    (dict(format="tflite", quantization="int4"), "Received: quantization='int4'"),
    (dict(format="tflite", quantization="int8"), "Received: representative_data=None"),
    (dict(tpu=True), "Received: batch_size=None"),
    (dict(format="tflite", path="m.tflite", tpu=True), "`tpu=True` applies to"),
    (dict(batch_size=0), "Received: batch_size=0"),
    (dict(parity="maybe"), "Received: parity='maybe'"),
])
def test_bad_arguments_are_clear(kwargs, message, trained, tmp_path):
    kwargs = dict(kwargs)
    path = tmp_path / kwargs.pop("path", "out.tflite" if kwargs.get("format") == "tflite"
                                 else "out")
    with pytest.raises(ValueError, match=re.escape(message)):
        mmzoo.export(trained["classification"], path, verbose=False, **kwargs)
    assert os.listdir(tmp_path) == []


@keras.saving.register_keras_serializable(package="mmzoo_tests")
class _ChannelFlip(keras.layers.Layer):
    """RGB -> BGR with keras.ops.flip, minus a mean: caffe-style preprocessing."""

    def call(self, inputs):
        mean = keras.ops.convert_to_tensor([100.0, 110.0, 120.0])
        return keras.ops.flip(inputs, axis=-1) - mean


def test_misquantized_op_is_named_in_the_error(examples, tmp_path):
    """TF 2.21 quantizes REVERSE_V2 with different input and output scales."""
    image = keras.Input(IMAGE_SHAPE, name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu")(_ChannelFlip()(image))
    output = keras.layers.Dense(1)(keras.layers.Flatten()(x))
    model = keras.Model({"image": image}, output, name="flipper")
    with pytest.raises(ExportError, match=r"warning: REVERSE_V2 .* converter bug") as info:
        mmzoo.export(model, tmp_path / "m.tflite", format="tflite", quantization="int8",
                     representative_data={"image": examples["image"]}, verbose=False)
    assert "keras.ops.take" in str(info.value)
    assert os.listdir(tmp_path) == []


def test_tokenizer_for_a_model_without_token_ids_is_refused(trained, tokenizer, tmp_path):
    with pytest.raises(ValueError, match="no token-id 'text' input"):
        mmzoo.export(trained["binary"], tmp_path / "sm", tokenizer=tokenizer, verbose=False)


# ----------------------------------------------------- API, CLI, big models


def test_package_is_callable_and_submodules_import():
    import mmzoo.export.tflite as tflite_module
    from mmzoo.export import saved_model

    assert callable(mmzoo.export) and mmzoo.export.export is not mmzoo.export
    assert tflite_module.QUANTIZATIONS == mmzoo.export.QUANTIZATIONS
    assert saved_model.TPU_FUNCTION_ALIAS == "tpu_func"


def _cli_parser():
    """The `mmzoo` parser with the export command (wired into mmzoo.cli or not)."""
    import argparse

    try:
        from mmzoo.cli import COMMANDS, make_parser

        if "export" in COMMANDS:
            return make_parser()
    except ImportError:
        pass
    from mmzoo.export import cli

    parser = argparse.ArgumentParser(prog="mmzoo")
    cli.add_parser(parser.add_subparsers())
    return parser


def test_cli_exports_a_keras_file(trained, tmp_path, capsys):
    model_file = tmp_path / "model.keras"
    trained["multilabel"].save(model_file)
    out = tmp_path / "phone" / "model.tflite"
    args = _cli_parser().parse_args(["export", str(model_file), str(out),
                                     "--quantization", "float16"])
    args.run(args)
    printed = capsys.readouterr().out
    assert f"Exported 'tiny_multilabel' to {out}" in printed
    assert "format       tflite (float16)" in printed
    assert re.search(r"parity +litert +max \|diff\| \S+ \(<= 1e-02\).* ok", printed)
    assert sorted(os.listdir(out.parent)) == ["model.preprocessing.json", "model.tflite"]

    # As a user runs it: a mistake is one line on stderr, status 1, no traceback.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(),
                                                       os.environ.get("PYTHONPATH")]))}
    from mmzoo.cli import COMMANDS

    script = ("import sys; from tests.test_export import _cli_parser; "
              "a = _cli_parser().parse_args(sys.argv[1:]); a.run(a)")
    command = ["-m", "mmzoo"] if "export" in COMMANDS else ["-c", script]
    again = subprocess.run([sys.executable, *command, "export", str(model_file), str(out)],
                           capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert "mmzoo export: error:" in again.stderr
    assert "already exists; pass overwrite=True" in again.stderr


def test_document_model_vgg16_lstm_int8(tmp_path):
    """The seeds' document model (VGG16 + LSTM) as a full-integer TFLite file.

    VGG16 is random and frozen here (no download); the label is read from the
    text, which the LSTM learns in seconds, so that the decisions are clear-cut
    while every VGG16 layer still runs in int8.
    """
    keras.utils.set_random_seed(0)
    tok = Tokenizer(list(WORDS), sequence_length=SEQUENCE_LENGTH)
    x, y, _ = _data(tok, 80, seed=0)
    x["image"] = np.repeat(np.repeat(x["image"], 2, 1), 2, 2)  # 32x32, VGG16's minimum
    model = mmzoo.build_model("binary", image_branch="vgg16", text_branch="lstm",
                              image_shape=(32, 32, 3), pooling="avg",
                              vocab_size=tok.vocab_size, sequence_length=SEQUENCE_LENGTH,
                              embedding_dim=8, text_units=8, image_trainable=False,
                              learning_rate=1e-2)
    says_red = y["multilabel"][:, 0]
    model.fit(x, says_red, epochs=8, batch_size=40, verbose=0)
    report = mmzoo.export(model, tmp_path / "doc.tflite", format="tflite", quantization="int8",
                          tokenizer=tok, representative_data=x, verbose=False)
    assert report.passed and report.custom_ops == []
    assert report.check("litert").agreement >= 0.99
    assert {"CONV_2D", "MAX_POOL_2D", "QUANTIZE"} <= set(report.ops)
    assert "WHILE" not in report.ops
    assert report.size_bytes < 0.27 * 4 * model.count_params()  # float32 is 4 bytes a weight
