"""Tasks are objects in one registry: nothing outside mmzoo/tasks switches on a task name,
every task has every hook, and a task registered here works end to end without
editing any list. The benchmark's problems are a table of their own."""

import ast
import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

import mmzoo
from mmzoo.data import problems
from mmzoo.data.preprocessor import Preprocessor
from mmzoo.data.tokenizer import Tokenizer
from mmzoo.metrics import task_metrics
from mmzoo.registry import BUILTIN_TASKS, HEADS, TASKS
from mmzoo.tasks.base import ClassTask, Task
from mmzoo.validators import positive_int

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mmzoo"
BUILTIN = ("binary", "captioning", "classification", "multilabel", "regression", "retrieval")


# ----------------------------------------------------------------------------
# No task-name switches outside mmzoo/tasks


def _names_in(node):
    """Task-name string constants directly in `node` (a constant, tuple, list or set)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [e.value for e in node.elts
                if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []


def task_name_switches(names, root=PACKAGE):
    """`[(file, line, what)]`: comparisons with a task-name literal, and dicts keyed by one."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if (root / "tasks") in path.parents:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        exempt = set()
        for node in ast.walk(tree):
            # The registry's one table of built-in task modules.
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "BUILTIN_TASKS" for t in node.targets):
                exempt.add(id(node.value))
        for node in ast.walk(tree):
            where = (str(path.relative_to(root)), getattr(node, "lineno", 0))
            if isinstance(node, ast.Compare):
                for side in [node.left, *node.comparators]:
                    hits = [n for n in _names_in(side) if n in names]
                    if hits:
                        found.append((*where, f"compares with {hits[0]!r}"))
            elif isinstance(node, ast.Dict) and id(node) not in exempt:
                hits = [k.value for k in node.keys
                        if isinstance(k, ast.Constant) and k.value in names]
                if hits:
                    found.append((*where, f"a dict keyed by {hits[0]!r}"))
            elif isinstance(node, ast.match_case):
                hits = [n.value.value for n in ast.walk(node.pattern)
                        if isinstance(n, ast.MatchValue) and isinstance(n.value, ast.Constant)
                        and n.value.value in names]
                if hits:
                    found.append((*where, f"matches {hits[0]!r}"))
    return found


def test_no_task_name_switches_outside_the_task_modules():
    found = task_name_switches(set(TASKS.names()))
    assert not found, ("Code outside mmzoo/tasks switches on a task name; ask the task object "
                       "(mmzoo.registry.TASKS.get(name)) instead:\n"
                       + "\n".join(f"  {f}:{line}: {what}" for f, line, what in found))


def test_the_search_finds_switches(tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "mine.py").write_text('ok = task == "binary"\n')
    (tmp_path / "a.py").write_text(
        'if task == "binary":\n    pass\n'
        'x = task in ("regression", "other")\n'
        'y = {"captioning": 1}.get(task)\n'
        'z = "classification" != task\n'
        'fine = f(task="binary")\n')
    found = task_name_switches(set(BUILTIN), root=tmp_path)
    assert sorted(line for _, line, _ in found) == [1, 3, 4, 5]


def test_the_task_list_is_typed_once():
    # The built-in tasks are named once, in the registry's table of modules.
    assert sorted(BUILTIN_TASKS) == list(BUILTIN)
    assert set(BUILTIN) <= set(TASKS.names())
    for name, module in BUILTIN_TASKS.items():
        assert module == f"mmzoo.tasks.{name}"
        assert (PACKAGE / "tasks" / f"{name}.py").is_file()


def test_no_logic_copied_between_task_modules():
    # Each hook is written once per behaviour: no two task modules define a
    # function with the same body.
    bodies = {}
    for name in BUILTIN:
        tree = ast.parse((PACKAGE / "tasks" / f"{name}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                body = ast.dump(ast.Module(body=node.body, type_ignores=[]))
                bodies.setdefault(body, []).append(f"{name}.{node.name}")
    copied = [where for where in bodies.values() if len(where) > 1]
    assert not copied, f"Logic copied between task modules (move it to tasks/base.py): {copied}"


# ----------------------------------------------------------------------------
# Every task has every hook

ATTRIBUTES = ("name", "display_name", "head", "label_format", "label_names_required",
              "classes_option", "reads_text", "generative", "eval_metrics", "fit_metrics",
              "decision", "meta_activation", "stackable", "votes", "explainable",
              "example_text", "result_description", "loss_in_model")
HOOKS = ("register_components", "head_component", "output_name", "model_class",
         "resolve_options", "check_options", "compile_loss", "compile_metrics",
         "num_outputs", "data_options", "scores", "decode", "decode_scores", "describe",
         "generate", "measure", "compute_metrics", "explain_targets", "target_count",
         "predicted_targets", "target_score", "answer", "class_votes", "example_labels",
         "measure_outputs", "nudge", "decide", "predict_entry", "export_parts")


@pytest.mark.parametrize("name", TASKS.names())
def test_every_task_has_every_hook(name):
    task = TASKS.get(name)
    assert isinstance(task, Task) and task.name == name and TASKS.get(task) is task
    for attribute in ATTRIBUTES:
        assert hasattr(task, attribute), attribute
    for hook in HOOKS:
        assert callable(getattr(task, hook)), hook
    assert task.label_format in problems.LABEL_FORMATS
    assert task.decision in ("argmax", "threshold", None)
    assert "loss" in task.fit_metrics and task.eval_metrics
    assert isinstance(task.display_name, str) and task.display_name
    head = task.head_component()
    assert head.name == task.head and task.output_name() == head.info["output"]
    assert issubclass(task.model_class(), keras.Model)
    # A loss to compile, or one the model adds itself (a dual encoder's InfoNCE).
    assert (task.compile_loss() is not None) != task.loss_in_model
    assert task.compile_metrics() or task.loss_in_model, "a task declares default metrics"
    assert task.votes == (type(task).class_votes is not Task.class_votes)


@pytest.mark.parametrize("name", [n for n in BUILTIN if TASKS.get(n).explainable
                                  and not TASKS.get(n).generative])  # one score per example
def test_every_scoring_task_decodes_measures_and_explains(name):
    task = TASKS.get(name)
    rng = np.random.default_rng(0)
    labels = tuple(f"l{i}" for i in range(4))
    k = task.num_outputs(labels)
    scores = rng.uniform(0.05, 0.95, (6, k)).astype("float32")
    if task.meta_activation == "softmax":
        scores /= scores.sum(1, keepdims=True)
    pre = Preprocessor(name, image_size=8, label_names=labels if task.label_names_required
                       else None)
    results = pre.decode({"out": scores})
    assert len(results) == 6
    for line in task.describe(results[0]):
        assert isinstance(line, str)
    y = {"index": rng.integers(0, k, 6), "multi_hot": rng.integers(0, 2, (6, k)),
         "boolean": rng.integers(0, 2, (6, 1)), "number": rng.integers(0, 5, (6, 1))}[
        task.label_format]
    metrics = task.measure(scores, y)
    assert metrics["num_examples"] == 6 and len(metrics) > 1
    np.testing.assert_equal(task_metrics(name, scores, y), metrics)
    targets = task.explain_targets(scores, None)
    assert targets.shape == (6,)
    score = task.target_score(keras.ops.convert_to_tensor(scores), targets)
    assert tuple(score.shape) == (6,)
    assert isinstance(task.answer(None, targets[0]), str)


def test_unknown_task_names_the_choices():
    pattern = (r"Unknown task: `task` must be one of .*'binary'.*"
               r"Did you mean 'regression'\?.*Received: task='regresion'")
    with pytest.raises(ValueError, match=pattern):
        TASKS.get("regresion")
    with pytest.raises(ValueError, match="already registered"):
        TASKS.register(type(TASKS.get("binary")))


# ----------------------------------------------------------------------------
# A task registered here: no list edited anywhere


@pytest.fixture
def rating_task():
    """A toy task "toy_rating": a softmax over `num_levels` rating levels, decoded
    to the best level's name."""

    @HEADS.register("toy_rating", output="rating", validators={"num_levels": positive_int})
    def rating_head(features, *, num_levels=3, name="head_rating"):
        return keras.layers.Dense(num_levels, activation="softmax", name=name,
                                  dtype="float32")(features)

    class RatingTask(ClassTask):
        name = "toy_rating"
        display_name = "rating (toy)"
        loss = "sparse_categorical_crossentropy"
        metrics = ("accuracy",)
        label_format = "index"
        label_names_required = True
        classes_option = "num_levels"
        eval_metrics = ("accuracy",)
        fit_metrics = ("loss", "accuracy")
        decision = "argmax"
        meta_activation = "softmax"
        stackable = True
        example_text = 'texts="how good is it?"'
        result_description = "the best level's name per example"

        def decode_scores(self, scores, label_names, *, top_k, threshold):
            return [label_names[i] for i in scores.argmax(1)]

        def compute_metrics(self, pred, y, wanted, groups):
            return {"accuracy": float((pred.argmax(-1) == y).mean())}

    assert TASKS.register(RatingTask) is RatingTask
    yield TASKS.get("toy_rating")
    TASKS.unregister("toy_rating")
    HEADS.unregister("toy_rating")


def test_a_registered_task_works_end_to_end(rating_task, tmp_path):
    from mmzoo.export.parity import decision_kind
    from mmzoo.zoo.card import model_card
    from mmzoo.zoo.cli import _describe

    assert "toy_rating" in TASKS.names() and "toy_rating" in mmzoo.data.preprocessor.TASKS
    options = dict(image_branch="cnn", image_shape=(16, 16, 3), image_filters=4,
                   pooling="max", text_branch="embedding", vocab_size=12, sequence_length=4,
                   embedding_dim=4)
    model = mmzoo.build_model("toy_rating", **options, num_levels=3)
    assert model.task == "toy_rating" and model.get_layer("head_rating").units == 3
    assert model.loss == "sparse_categorical_crossentropy"

    rng = np.random.default_rng(0)
    x = {"image": rng.uniform(0, 255, (8, 16, 16, 3)).astype("float32"),
         "text": rng.integers(1, 12, (8, 4)).astype("int32")}
    y = rng.integers(0, 3, 8)
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][0]) and "accuracy" in history.history
    outputs = model.predict(x, verbose=0)
    assert set(outputs) == {"rating"} and outputs["rating"].shape == (8, 3)

    # The preprocessor takes the new task, checks its labels, decodes with it,
    # and saves and loads it.
    tokenizer = Tokenizer([f"w{i}" for i in range(8)], sequence_length=4)
    with pytest.raises(ValueError, match="needs `label_names`"):
        Preprocessor("toy_rating", tokenizer, image_size=(16, 16, 3))
    pre = Preprocessor("toy_rating", tokenizer, image_size=(16, 16, 3),
                       label_names=("low", "mid", "high"))
    decoded = pre.decode(outputs)
    assert decoded == [("low", "mid", "high")[i] for i in outputs["rating"].argmax(1)]
    pre.save(tmp_path)
    assert Preprocessor.load(tmp_path).decode(outputs) == decoded

    # Metrics, export parity, the CLI and the card ask the task.
    assert task_metrics("toy_rating", outputs["rating"], y)["accuracy"] == pytest.approx(
        float((outputs["rating"].argmax(1) == y).mean()))
    assert decision_kind(model, outputs) == "argmax"
    assert _describe(decoded[0], "toy_rating") == [f"  {decoded[0]}"]
    card = model_card({"name": "toy", "task": "toy_rating", "files": {}})
    assert 'texts="how good is it?"' in card and "the best level's name" in card

    # Ensembles: stacking combines the new task's outputs with its meta activation.
    from mmzoo.tasks import ensembles

    build = dict(task="toy_rating", **options, num_levels=3)
    stacked = ensembles.stacking([build], x, y, n_folds=2, epochs=1, batch_size=8,
                                 meta_epochs=2)
    assert stacked.get_layer("stacking_meta").activation.__name__ == "softmax"
    assert set(stacked.predict(x, verbose=0)) == {"rating"}


def test_a_head_alone_is_not_a_task():
    @HEADS.register("toy_headonly", output="y")
    def head(features, *, name="head_only"):
        return keras.layers.Dense(1, name=name)(features)

    try:
        with pytest.raises(ValueError, match="Unknown task"):
            mmzoo.build_model("toy_headonly", image_branch="cnn", text_branch=None,
                              image_shape=(16, 16, 3))
    finally:
        HEADS.unregister("toy_headonly")


def test_captioning_builds_in_a_fresh_process():
    # The task module is found by name: no `import mmzoo.captioning` needed first.
    code = ("from mmzoo.tasks import build_model\n"
            "m = build_model('captioning', image_branch='cnn', image_shape=(16, 16, 3), "
            "image_filters=4, pooling='max', vocab_size=12, sequence_length=4, "
            "embedding_dim=4, text_units=4)\n"
            "print(type(m).__name__, m.task)\n")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "CaptioningModel captioning"


def test_task_names_and_display_need_no_tensorflow():
    code = ("import sys\nfrom mmzoo.registry import TASKS\n"
            "print([t.display_name for t in TASKS.all()])\n"
            "print('tensorflow' in sys.modules or 'keras' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "False"


# ----------------------------------------------------------------------------
# The benchmark's problems


def test_every_problem_feeds_a_registered_task():
    assert set(problems.PROBLEMS) == {"vqa", "matching", "attributes", "count", "captions",
                                      "retrieval_pairs", "spoken_vqa", "spoken_matching"}
    for problem in problems.PROBLEMS.values():
        task = TASKS.get(problem.task)
        assert problem.label_format == task.label_format, problem.name
        assert problem.text_field in problems.TEXT_FIELDS
        if task.label_names_required:
            assert problem.label_names
    problems.RESERVED["future"] = "a problem not built yet"
    try:
        with pytest.raises(ValueError, match="reserved: a problem not built yet"):
            problems.get("future")
    finally:
        del problems.RESERVED["future"]


# Each task's own problem (the first that feeds it); the spoken problems feed
# classification and binary too and are tested in test_spoken_pipeline.py.
@pytest.mark.parametrize("problem", sorted(problems.get(t).name for t in problems.TASKS))
def test_a_problem_name_and_its_task_name_give_the_same_data(problem):
    task = problems.PROBLEMS[problem].task
    x1, y1, info1 = mmzoo.data.shapes_arrays(problem, 6, image_size=32)
    x2, y2, info2 = mmzoo.data.shapes_arrays(task, 6, image_size=32)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(x1["text"], x2["text"])
    assert info1.task == info2.task == task and info1.problem == info2.problem == problem
    assert json.dumps(info1.model_options(), default=list) == json.dumps(
        info2.model_options(), default=list)


def test_a_probability_of_one_half_is_a_yes_wherever_a_decision_is_made():
    """One decision rule (`Task.decide`): metrics, votes, explanations and export
    parity all read 0.5 as yes (parity and the votes read it as no before)."""
    from mmzoo.export.parity import _agreement
    from mmzoo.fusion.decision import VoteFusion

    binary, multilabel = TASKS.get("binary"), TASKS.get("multilabel")
    p = np.array([[0.5], [0.4999]])
    y = np.array([[1.0], [0.0]])
    assert binary.decide(p)[:, 0].tolist() == [True, False]
    assert binary.measure(p, y, wanted=["accuracy"])["accuracy"] == 1.0
    assert binary.class_votes(p)[1].tolist() == [1, 0]
    assert binary.predicted_targets(p).tolist() == [1, 0]
    votes = VoteFusion([1.0])([keras.ops.convert_to_tensor(p, "float32")])
    assert keras.ops.convert_to_numpy(votes)[:, 0].tolist() == [1.0, 0.0]
    assert _agreement("threshold", p, p + 5e-5) == 1.0
    assert multilabel.measure(np.array([[0.5, 0.2]]), np.array([[1.0, 0.0]]),
                              wanted=["micro_f1"])["micro_f1"] == 1.0
    # Counts are answered by rounding; classes by the top one.
    regression = TASKS.get("regression")
    assert regression.decide(np.array([[2.4], [2.6]]))[:, 0].tolist() == [2.0, 3.0]
    assert TASKS.get("classification").decide(np.array([[0.2, 0.8]])).tolist() == [1]
