"""One conformance harness that every registered fusion, branch and task passes.

The cases are read from the registries when this module is collected
(`cases()`): one per fusion (`FUSIONS`, between the small default branches),
one per branch of every declared modality (`MODALITIES`: `IMAGE_BRANCHES`,
`TEXT_BRANCHES` and those of modalities declared since, beside the default
branch of the other modalities and the default fusion) and one per task
(`TASKS`, with the default branches). Registering a component (importing its
module) is enough to have it checked; no list here names one.

Each case's model is built once (tiny sizes) and shared by its checks:

- build, `fit` one step on the task's own example labels
  (`Task.example_labels`), `predict`;
- save to `.keras` and load with `safe_mode=True`: identical outputs (a
  component that declares `loads_in_safe_mode=False` at registration, the
  `"tfhub"` branch, must be refused there and reload with `safe_mode=False`);
- missing modalities (`modality_mask=True`), where the model takes the option
  and its fusion takes a `modality_mask` argument: an all-ones mask is the
  model without one, a missing modality's content (NaN included) never
  reaches the output, and masking one changes it (as
  `tests/test_missing_modality.py` defines it);
- SavedModel and TFLite float32 export with `mmzoo.export`'s own parity check
  (max |diff| <= `mmzoo.export.parity.THRESHOLDS["float32"]`); a generative
  task's export (a caption generator) generates the same tokens as Keras.

The options come from the task object: `Task.resolve_options` says which
options its model takes (so a captioner gets no text branch), `num_outputs`
and `data_options` the size of its head, and `SIZES` shrinks every size
option a component has. A required option without a default gets an example
from `REQUIRED_OPTIONS` (the hub branch's `image_handle`: a tiny SavedModel).
"""

import dataclasses
import inspect
import itertools
import types

import numpy as np
import pytest
import tensorflow as tf

import keras
import mmzoo
import mmzoo.export
from mmzoo.data import Tokenizer
from mmzoo.export.parity import THRESHOLDS, synthetic_inputs
from mmzoo.fusion import MaskModalities
from mmzoo.registry import FUSIONS, IMAGE_BRANCHES, MODALITIES, TASKS, TEXT_BRANCHES
from mmzoo.validators import positive_int

#: The task of the fusion and branch cases.
HOST_TASK = "classification"
#: The components a case does not test: the smallest built-in ones.
DEFAULTS = {"image_branch": "cnn", "text_branch": "embedding", "fusion": "concat"}
#: Size options, whichever component takes them.
SIZES = {"image_shape": (16, 16, 3), "sequence_length": 8, "vocab_size": 20,
         "embedding_dim": 4, "text_units": 8, "image_filters": 4, "image_blocks": 2,
         "pooling": "avg", "fusion_dim": 8, "projection_dim": 8}
#: A branch case's own modality at the smallest size every built-in branch of
#: it takes (VGG16 needs 32 px), by branch option.
BRANCH_SIZES = {"image_branch": {"image_shape": (32, 32, 3)}}
LABEL_NAMES = ("a", "b", "c")
EXAMPLES = 8
FLOAT32_BOUND = THRESHOLDS["float32"][1]


# ----------------------------------------------------------------------------
# Cases, from the registries as they are now


@dataclasses.dataclass(frozen=True)
class Case:
    """One registered component to check: `kind` is its registry's option."""

    kind: str  # "fusion", "image_branch", ..., or "task"
    name: str
    task: str
    choice: tuple = ()  # (option, value) pairs the case sets

    @property
    def id(self):
        return f"{self.kind}-{self.name}"


def branch_registries():
    """The branch registry of every declared modality (`<modality>_branch`), in model order."""
    return [modality.branches for modality in MODALITIES.all()]


def component_registries():
    """`{option: registry}` of the fusions and every modality's branches."""
    return {r.option: r for r in (FUSIONS, *branch_registries())}


def cases():
    """Every fusion, branch and task registered now, as `Case`s."""
    found = []
    for option, registry in component_registries().items():
        found += [Case(option, name, HOST_TASK, ((option, name),)) for name in registry.names()]
    found += [Case("task", name, name) for name in TASKS.names()]
    return found


CASES = cases()


# ----------------------------------------------------------------------------
# Options: what the task's model takes, shrunk


class _HubModule(tf.Module):
    """A TF-Hub style feature-vector module: per-channel means and maxima, scaled."""

    def __init__(self):
        super().__init__()
        self.scale = tf.Variable(tf.ones(6), name="scale")

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def __call__(self, images):
        stats = tf.concat([tf.reduce_mean(images, [1, 2]), tf.reduce_max(images, [1, 2])], 1)
        return stats * self.scale


def _hub_handle(folder):
    tf.saved_model.save(_HubModule(), str(folder / "hub_module"))
    return str(folder / "hub_module")


#: Examples of required options (no default), by option name:
#: `make(folder) -> value`.
REQUIRED_OPTIONS = {"image_handle": _hub_handle}


def _required(component, given, folder):
    """Examples of `component`'s required options that `given` lacks."""
    options = {}
    for option, default in component.options.items():
        if default is not inspect.Parameter.empty or option in given:
            continue
        if option not in REQUIRED_OPTIONS:
            pytest.fail(f"{component} requires `{option}` (no default) and the harness has "
                        f"no example of it: give it a default or add a maker to "
                        f"REQUIRED_OPTIONS in tests/test_conformance.py")
        options[option] = REQUIRED_OPTIONS[option](folder)
    return options


def components_of(task, resolved):
    """The registered components a model with the `resolved` options is built from."""
    used = [task.head_component()]
    for option, registry in component_registries().items():
        name = resolved.get(option)
        if isinstance(name, str) and name in registry:
            used.append(registry.get(name))
    return used


def case_options(case, folder):
    """`(build options, number of outputs)` of `case`'s tiny model."""
    task = TASKS.get(case.task)
    task.register_components()
    num_outputs = task.num_outputs(LABEL_NAMES, vocab_size=SIZES["vocab_size"])
    given = {**task.data_options(num_outputs), **dict(case.choice)}
    if case.kind == "task":
        component = task.head_component()
    else:
        component = component_registries()[case.kind].get(case.name)
    given.update(_required(component, given, folder))
    # The components first (they decide which size options exist), then the sizes.
    takes = task.resolve_options(given)
    given.update({k: v for k, v in DEFAULTS.items() if k in takes and k not in given})
    takes = task.resolve_options(given)
    sizes = {**SIZES, **BRANCH_SIZES.get(case.kind, {})}
    given.update({k: v for k, v in sizes.items() if k in takes and k not in given})
    return given, num_outputs


# ----------------------------------------------------------------------------
# One model per case, shared by its checks


def build_case(case, folder):
    """Builds `case`'s model, fits it one step and predicts: a namespace for the checks."""
    task = TASKS.get(case.task)
    options, num_outputs = case_options(case, folder)
    keras.utils.set_random_seed(0)
    model = mmzoo.build_model(case.task, **options)
    x = synthetic_inputs(model, EXAMPLES, seed=0)
    y = task.example_labels(x, num_outputs, seed=0)
    history = model.fit(x, y, epochs=1, batch_size=EXAMPLES, verbose=0)
    resolved = model.build_options
    return types.SimpleNamespace(
        case=case, task=task, options=options, model=model, x=x, y=y, history=history,
        outputs=model.predict(x, verbose=0), components=components_of(task, resolved),
        resolved=resolved)


@pytest.fixture(scope="module", params=CASES, ids=[c.id for c in CASES])
def built(request, tmp_path_factory):
    return build_case(request.param, tmp_path_factory.mktemp(request.param.id))


def _numpy(outputs):
    if not isinstance(outputs, dict):
        outputs = {"output_0": outputs}
    return {k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}


# ----------------------------------------------------------------------------
# The checks (plain functions: the toy component below runs them too)


def check_fit_and_predict(built):
    loss = built.history.history["loss"]
    assert len(loss) == 1 and np.isfinite(loss[0]), loss
    outputs = _numpy(built.outputs)
    assert outputs, "predict returned nothing"
    for key, value in outputs.items():
        assert value.shape[0] == EXAMPLES and np.isfinite(value).all(), key
    assert mmzoo.build_model(**built.model.build_options, compile=False).count_params() == \
        built.model.count_params()


def check_save_and_load(built, folder):
    model, x = built.model, built.x
    path = folder / "model.keras"
    model.save(path)
    if all(c.info.get("loads_in_safe_mode", True) for c in built.components):
        loaded = keras.saving.load_model(path, safe_mode=True)
    else:
        # Declared at registration: refused in safe mode, loaded outside it.
        with pytest.raises(ValueError, match="safe_mode"):
            keras.saving.load_model(path, safe_mode=True)
        loaded = keras.saving.load_model(path, safe_mode=False)
    assert type(loaded) is type(model)
    assert loaded.build_options == model.build_options
    want, got = _numpy(model.predict(x, verbose=0)), _numpy(loaded.predict(x, verbose=0))
    assert sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def masking_support(built):
    """None when the model takes a modality mask, else why not."""
    if "modality_mask" not in built.resolved:
        return (f"{built.case.id}: this model takes no `modality_mask` option (one "
                "modality, or a task whose model has no fusion)")
    fusion = FUSIONS.get(built.resolved["fusion"])
    if "modality_mask" not in inspect.signature(fusion.builder).parameters:
        return f"{fusion} declares no `modality_mask` argument"
    return None


def _randomize(model, seed=0):
    """Non-default trainable weights, so that a leak shows (zero biases would hide one).

    Kernels at the scale of their fan-in (so deep branches such as VGG16 do
    not saturate the head), vectors at 0.3; moving statistics stay valid.
    """
    rng = np.random.default_rng(seed)
    for v in model.trainable_weights:
        shape = tuple(v.shape)
        scale = 0.3 if len(shape) <= 1 else 1.0 / np.sqrt(np.prod(shape[:-1]))
        v.assign(rng.normal(0, scale, shape).astype(v.dtype))


def check_masking(built):
    reason = masking_support(built)
    if reason:
        pytest.skip(reason)
    options = {**built.options, "compile": False}
    keras.utils.set_random_seed(0)
    masked = mmzoo.build_model(built.case.task, **options, modality_mask=True)
    plain = mmzoo.build_model(built.case.task, **options)
    names = list(plain.input)
    assert list(masked.input) == names + ["modality_mask"]
    _randomize(masked)
    plain.set_weights(masked.get_weights())  # the mask adds no weights

    def run(model, x, mask=None):
        x = dict(x) if mask is None else {**x, "modality_mask": np.asarray(mask, "float32")}
        return _numpy(model(x, training=False))

    # Every pattern of present / missing modalities, one per example.
    patterns = np.array(list(itertools.product([1, 0], repeat=len(names))), "float32")
    n = len(patterns)
    x = synthetic_inputs(plain, n, seed=0)
    everything = run(masked, x, np.ones((n, len(names))))

    # All ones: exactly the model without a mask.
    for key, value in run(plain, x).items():
        np.testing.assert_allclose(everything[key], value, rtol=1e-5, atol=1e-6, err_msg=key)

    # NaN placeholders for missing float inputs (pixels, vectors): finite outputs.
    x_nan = {k: v.copy() for k, v in x.items()}
    for i, name in enumerate(names):
        if np.issubdtype(x_nan[name].dtype, np.floating):
            x_nan[name][patterns[:, i] == 0] = np.nan
    y = run(masked, x_nan, patterns)
    for key, value in y.items():
        assert np.isfinite(value).all(), f"{key}: a NaN placeholder reached the output"

    # A missing modality's content does not matter.
    other = synthetic_inputs(plain, n, seed=1)
    for i, name in enumerate(names):
        present = patterns[:, i] == 1
        other[name][present] = x[name][present]
    for key, value in run(masked, other, patterns).items():
        np.testing.assert_allclose(value, y[key], rtol=1e-5, atol=1e-6, err_msg=key)

    # Masking a modality that is there changes the output (some present, some missing).
    partial = [i for i, p in enumerate(patterns) if 0 < p.sum() < len(names)]
    for key in y:
        for i in partial:
            assert not np.allclose(y[key][i], everything[key][i], atol=1e-4), (
                f"{key}: masking {patterns[i]} changed nothing")


def _tokenizer(built):
    vocab = built.resolved.get("vocab_size", SIZES["vocab_size"])
    tokenizer = Tokenizer([f"w{i}" for i in range(vocab - 4)],
                          sequence_length=built.resolved.get("sequence_length"))
    assert tokenizer.vocab_size == vocab
    return tokenizer


def _reports(result):
    """`mmzoo.export`'s report, or one per part, as a list."""
    return list(result.values()) if isinstance(result, dict) else [result]


def check_saved_model(built, folder):
    model = built.model
    if built.task.generative:
        # A generator: export writes its generation loop (and checks no parity).
        tokenizer = _tokenizer(built)
        images = built.x["image"]
        want = built.task.generate(model, images, tokenizer)
        mmzoo.export(model, folder / "saved_model", tokenizer=tokenizer, verbose=False)
        got = tf.saved_model.load(str(folder / "saved_model")).signatures["serving_default"](
            image=tf.constant(images))
        np.testing.assert_array_equal(got["tokens"].numpy(), want.tokens)
        return
    for report in _reports(mmzoo.export(model, folder / "saved_model", verbose=False)):
        check = report.check("serving_default")
        assert report.passed and check.max_abs_diff <= FLOAT32_BOUND, report


def check_tflite(built, folder):
    model = built.model
    if built.task.generative:
        from mmzoo.export.captioning import TFLiteCaptioner

        tokenizer = _tokenizer(built)
        images = built.x["image"]
        want = built.task.generate(model, images, tokenizer)
        mmzoo.export(model, folder / "tflite", format="tflite", tokenizer=tokenizer,
                     verbose=False)
        got = TFLiteCaptioner(folder / "tflite")(images)
        np.testing.assert_array_equal(got.tokens, want.tokens)
        return
    # A model exported in parts (a dual encoder's towers) goes to a folder.
    path = folder / ("tflite" if built.task.export_parts(model) else "model.tflite")
    for report in _reports(mmzoo.export(model, path, format="tflite", quantization="float32",
                                        verbose=False)):
        check = report.check("litert")
        assert report.passed and check.max_abs_diff <= FLOAT32_BOUND, report
        assert report.custom_ops == []


# ----------------------------------------------------------------------------
# Every registered component


def test_build_fit_predict(built):
    check_fit_and_predict(built)


def test_save_and_load_with_safe_mode(built, tmp_path):
    check_save_and_load(built, tmp_path)


def test_missing_modality_masking(built):
    check_masking(built)


def test_saved_model_float32_parity(built, tmp_path):
    check_saved_model(built, tmp_path)


def test_tflite_float32_parity(built, tmp_path):
    check_tflite(built, tmp_path)


# ----------------------------------------------------------------------------
# The harness itself


def test_every_registered_component_has_a_case():
    ids = {c.id for c in CASES}
    assert len(ids) == len(CASES)
    for registry in (FUSIONS, IMAGE_BRANCHES, TEXT_BRANCHES, *branch_registries()):
        assert {f"{registry.option}-{name}" for name in registry.names()} <= ids
    assert {f"task-{name}" for name in TASKS.names()} <= ids


def test_a_registered_fusion_is_checked_with_no_list_edited(tmp_path):
    name = "toy_conformance"

    @FUSIONS.register(name, validators={"toy_units": positive_int})
    def toy_fusion(features, modality_mask=None, *, toy_units=4, name="fusion_toy"):
        x = MaskModalities(name=f"{name}_mask")(list(features.values()),
                                                modality_mask=modality_mask)
        x = keras.layers.Concatenate(name=f"{name}_concat")(x)
        return keras.layers.Dense(toy_units, activation="relu", name=name)(x)

    try:
        found = [c for c in cases() if c.name == name]
        assert [c.id for c in found] == [f"fusion-{name}"]
        built = build_case(found[0], tmp_path)
        assert built.model.get_layer("fusion_toy").units == 4
        check_fit_and_predict(built)
        check_save_and_load(built, tmp_path)
        assert masking_support(built) is None
        check_masking(built)
        check_saved_model(built, tmp_path)
        check_tflite(built, tmp_path)
    finally:
        FUSIONS.unregister(name)
    assert name not in {c.name for c in cases()}


def test_example_labels_give_one_label_per_example_or_none():
    from mmzoo.tasks.base import Task

    x = {"image": np.zeros((5, 4, 4, 3), "float32"),
         "text": np.random.default_rng(0).integers(1, 9, (5, 6)).astype("int32")}
    for task in TASKS.all():
        y = task.example_labels(x, 3)
        assert y is None or len(y) == 5, task

    class OddTask(Task):
        name = "toy_odd"
        loss = "mean_squared_error"
        label_format = "odd"

    with pytest.raises(NotImplementedError, match="override `example_labels`"):
        OddTask().example_labels(x, 3)
