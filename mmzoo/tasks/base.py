"""`Task`: what a task means, in one object (its head, loss, metrics, labels,
decoding, export parity rule, ensemble combination and display).

A task is registered in `mmzoo.registry.TASKS` under its name, the first
argument of `build_model` (and the `task` string that entries' metadata and
preprocessors store). Code outside the task modules asks the task object
(`TASKS.get(name).decision`, `.decode(...)`, `.measure(...)`) and never
compares task names, so a new task is one module (a `Task` subclass,
registered) and a head, with nothing else to edit. As KerasHub's `Task`
classes, a task owns its compile defaults (`loss`, `metrics`) and states its
preprocessing (`label_format`, `label_names_required`, `reads_text`).

The shared behaviour lives here; a task module sets class attributes and
overrides the hooks where its task differs. Nothing here imports TensorFlow
at module level: the CLI's `list` and `info` read task names and display
strings without it.

Example (a task of your own, with its head):

```python
import keras
from mmzoo.registry import HEADS, TASKS
from mmzoo.tasks.base import Task

@HEADS.register("score", output="score")
def score_head(features, *, name="head_score"):
    return keras.layers.Dense(1, activation="sigmoid", name=name)(features)

@TASKS.register
class ScoreTask(Task):
    name = "score"
    loss = "mean_squared_error"
    metrics = ("mean_absolute_error",)
    label_format = "number"

model = mmzoo.build_model("score", image_branch="cnn", text_branch=None,
                          image_shape=(32, 32, 3))
```
"""

import numpy as np

_EPS = 1e-7


class Task:
    """A task: subclass it, set the attributes, register it with `TASKS.register`.

    Attributes:
        name: the task name (`build_model`'s first argument, stored in entries).
        display_name: how cards and the CLI name it (default: `name`).
        head: the `HEADS` entry that builds the last layer (default: `name`).
        loss: the default loss (`build_model(loss=...)` overrides it).
        metrics: the default Keras metrics (names, objects or metric classes,
            a class being instantiated per model).
        label_format: what a label is, see `mmzoo.data.labels`: `"index"`
            (a class id), `"boolean"` (0/1), `"multi_hot"`, `"number"` or
            `"next_tokens"` (the text itself, shifted: captioning).
        label_names_required: a preprocessor needs one name per output.
        classes_option: the `build_model` option the labels fix (the number
            of label names or, for `"next_tokens"`, the vocabulary), or None.
        reads_text: the model reads a text input besides the image (an entry
            predicts from images and texts); False: from images only.
        generative: the model writes a sequence; `predict` generates it
            (and export writes a generator).
        eval_metrics: metrics a recipe may measure on the test split (the
            keys of `measure`; the first ones are the defaults).
        fit_metrics: what Keras tracks during `fit` (for a recipe's `monitor`).
        decision: how export parity compares outputs: `"argmax"` (top-1
            class), `"threshold"` (probability at 0.5) or None (numbers,
            bounded by their spread).
        meta_activation: the activation of a stacking meta-learner over the
            members' outputs (`"softmax"`, `"sigmoid"` or None for linear).
        stackable: whether `mmzoo.tasks.ensembles.stacking` supports it.
        votes: whether each output is a class to vote on (SAMME boosting,
            `class_votes`).
        explainable: whether `mmzoo.explain` covers it (a score per example, or
            per generated word for a generative task).
        example_text: the `texts=` of the card's usage example (None: the
            model reads images only).
        loss_in_model: the model adds its own loss (`add_loss`, e.g. the
            InfoNCE layer of a dual encoder, which needs no labels), so
            `compile` gets none.
        result_description: what `entry.predict` returns, for the card.
    """

    name = None
    display_name = None
    head = None
    loss = None
    metrics = ()
    label_format = "index"
    label_names_required = False
    classes_option = None
    reads_text = True
    generative = False
    eval_metrics = ("loss",)
    fit_metrics = ("loss",)
    decision = None
    meta_activation = None
    stackable = False
    votes = False
    explainable = True
    example_text = "texts=..."
    result_description = ""
    loss_in_model = False

    def __init__(self):
        if self.display_name is None:
            self.display_name = self.name
        if self.head is None:
            self.head = self.name

    def __repr__(self):
        return f"<Task {self.name!r}>"

    # -- model -----------------------------------------------------------------

    def register_components(self):
        """Imports the modules that register this task's head and layers."""
        from mmzoo import heads  # noqa: F401  (the built-in heads)

    def head_component(self):
        """The registered head (`mmzoo.registry.HEADS`) this task builds on."""
        from mmzoo.registry import HEADS

        self.register_components()
        return HEADS.get(self.head)

    def output_name(self):
        """The name of the model's output (the head's `output`)."""
        return self.head_component().info["output"]

    def model_class(self):
        """The model class `build_model` instantiates: `cls(task_name, **options)`."""
        from mmzoo.tasks.model import MultimodalModel

        return MultimodalModel

    def resolve_options(self, options):
        """Validates `build_model`'s architecture options and fills their defaults."""
        from mmzoo.tasks.options import resolve_options

        return resolve_options(self.name, options)

    def check_options(self, resolved):
        """Refuses option values that are valid alone but not for this task."""

    def compile_loss(self):
        """The default loss: the task's, else the head's registration's."""
        return self.loss if self.loss is not None else self.head_component().info.get("loss")

    def compile_metrics(self, metrics=None):
        """Metric objects for `compile` from names, objects or metric classes.

        `None` means the task's own. A class is instantiated (metrics hold
        state); `"auc"` becomes a `keras.metrics.AUC` (multi-label aware when
        the labels are multi-hot).
        """
        import keras

        if metrics is None:
            metrics = self.metrics or self.head_component().info.get("metrics", ())
        built = []
        for m in metrics:
            if isinstance(m, type):
                m = m()
            if m == "auc":
                m = keras.metrics.AUC(name="auc", multi_label=self.label_format == "multi_hot")
            built.append(m)
        return built

    # -- data --------------------------------------------------------------------

    def num_outputs(self, label_names=None, vocab_size=None):
        """How many outputs the head has for these labels (1 unless labels are named)."""
        if self.label_format == "next_tokens":
            return vocab_size
        if self.classes_option is not None:
            return len(label_names or ())
        return 1

    def data_options(self, num_outputs):
        """The `build_model` options the labels fix (`{"num_classes": ...}` or none)."""
        return {} if self.classes_option is None else {self.classes_option: num_outputs}

    def example_labels(self, inputs, num_outputs, seed=0):
        """Random labels in this task's `label_format` for `inputs`, or None when it takes none.

        What a freshly built model can be fitted on for a smoke test
        (`tests/test_conformance.py` fits every task's model one step on
        them). A task whose model adds its own loss (`loss_in_model`, as
        InfoNCE does) takes no labels; a task with another label format
        overrides this.

        Args:
            inputs: the model's inputs, `{name: array}` (next-token labels
                are the `"text"` input shifted by one token).
            num_outputs: the head's outputs (`num_outputs(...)`).
            seed: random seed.

        Returns:
            An array with one label per example, or None.
        """
        if self.loss_in_model:
            return None
        rng = np.random.default_rng(seed)
        n = len(next(iter(inputs.values())))
        if self.label_format == "index":
            return rng.integers(0, num_outputs, n).astype("int32")
        if self.label_format in ("boolean", "multi_hot"):
            return rng.integers(0, 2, (n, num_outputs)).astype("float32")
        if self.label_format == "number":
            return rng.normal(size=(n, num_outputs)).astype("float32")
        if self.label_format == "next_tokens":
            text = np.asarray(inputs["text"])
            return np.concatenate([text[:, 1:], np.zeros_like(text[:, :1])], axis=1)
        raise NotImplementedError(
            f"task={self.name!r} has label_format={self.label_format!r}: override "
            "`example_labels` to say what its labels look like.")

    # -- predictions -------------------------------------------------------------

    def scores(self, outputs):
        """The model's output (one array, or a dict with one entry) as float64 `(N, K)`."""
        if isinstance(outputs, dict):
            if len(outputs) != 1:
                raise ValueError("`outputs` must be the model's output (one array, or a dict "
                                 f"with one entry). Received: a dict with keys "
                                 f"{sorted(outputs)}")
            (outputs,) = outputs.values()
        scores = np.asarray(outputs, dtype=np.float64)
        if scores.ndim == 1:
            scores = scores[:, None]
        if scores.ndim != 2:
            raise ValueError("`outputs` must have shape (batch, outputs). Received: outputs "
                             f"with shape {scores.shape}")
        return scores

    def decode(self, outputs, preprocessor, *, top_k=3, threshold=0.5):
        """Readable results, one per example (what `entry.predict` returns)."""
        scores = self.scores(outputs)
        names = preprocessor.label_names
        if self.label_names_required and scores.shape[1] != len(names):
            raise ValueError(f"`outputs` has {scores.shape[1]} scores per example but there "
                             f"are {len(names)} label names. Received: outputs "
                             f"with shape {scores.shape}")
        return self.decode_scores(scores, names, top_k=top_k, threshold=threshold)

    def decode_scores(self, scores, label_names, *, top_k, threshold):
        """Results from `(N, K)` scores: by default the numbers (a float per example
        for one output, else a list)."""
        if scores.shape[1] == 1:
            return [float(v) for v in scores[:, 0]]
        return [[float(v) for v in row] for row in scores]

    def describe(self, result):
        """Lines the CLI prints for one decoded result."""
        return [f"  {result}"]

    def predict_entry(self, entry, images=None, texts=None, **settings):
        """`entry.predict` for a task whose entries predict in their own way.

        Returns `NotImplemented` (the default): `ZooEntry.predict` then
        preprocesses, runs the model and decodes (or generates). A task
        whose model is not run as one call (a dual encoder embeds each
        modality with its own tower) overrides it.
        """
        return NotImplemented

    def export_parts(self, model):
        """`{part name: keras.Model}` that `mmzoo.export` writes one by one, or None.

        None (the default): the model is exported whole. A task whose model
        is used in parts (a dual encoder's two towers) returns them; each is
        exported and checked alone, into one folder.
        """
        return None

    def generate(self, model, images, tokenizer, **settings):
        """What a generative task's `entry.predict` returns before decoding."""
        raise ValueError(f"task={self.name!r} does not generate: its model's outputs are "
                         "decoded directly. Received: generation settings")

    # -- explanations ------------------------------------------------------------

    def explain_targets(self, output, target):
        """The output each example's explanation is about: `target`, else the prediction."""
        n = len(output)
        if target is None:
            return self.predicted_targets(output)
        target = np.broadcast_to(np.asarray(target), (n,)).astype(int)
        limit = self.target_count(output)
        if np.any(target < 0) or np.any(target >= limit):
            raise ValueError(f"`target` must be class indices in [0, {limit}). "
                             f"Received: target={target.tolist()}")
        return target

    def target_count(self, output):
        return output.shape[-1]

    def predicted_targets(self, output):
        return output.argmax(-1)

    def target_score(self, output, index):
        """The explained score `(batch,)` of `output` (a tensor) for targets `index`."""
        from keras import ops

        onehot = ops.one_hot(ops.convert_to_tensor(index), output.shape[-1])
        return ops.sum(output * ops.cast(onehot, output.dtype), axis=-1)

    def answer(self, label_names, target):
        """The answer an explanation names for `target`."""
        return label_names[target] if label_names is not None else str(int(target))

    # -- evaluation --------------------------------------------------------------

    def measure(self, pred, y, *, wanted=None, groups=None):
        """This task's `eval_metrics` of predictions `pred` against labels `y` (NumPy).

        Args:
            pred: the model's output, `(N, outputs)`.
            y: the labels, in the formats of `mmzoo.data.pipeline`.
            wanted: names from `eval_metrics` (default: all).
            groups: `{per-group metric: (ids, names)}`: a group id per
                example and the groups' names, for a per-group metric of
                `eval_metrics` (e.g. `"per_question_type"`).

        Returns:
            A flat dict of floats with `num_examples`.
        """
        wanted = set(self.eval_metrics if wanted is None else wanted)
        pred = np.asarray(pred, np.float64)
        y = np.asarray(y)
        metrics = {"num_examples": int(len(y))}
        metrics.update(self.compute_metrics(pred, y, wanted, groups or {}))
        return metrics

    def measure_outputs(self, outputs, y, *, wanted=None, groups=None):
        """`measure` of a model's outputs as `predict` returns them (a dict).

        The default reads the model's one output; a task whose model has
        several (a dual encoder's two embeddings) overrides it.
        """
        if isinstance(outputs, dict):
            if len(outputs) != 1:
                raise ValueError(f"task={self.name!r} measures one model output. Received: "
                                 f"outputs with keys {sorted(outputs)}")
            (outputs,) = outputs.values()
        return self.measure(outputs, y, wanted=wanted, groups=groups)

    def decide(self, pred):
        """The answers the task's metrics score, one per output of each example.

        The one place a task's decision rule is written: `compute_metrics`
        scores these, and `mmzoo.zoo.tie_ranges` counts the examples whose
        answers two nearby outputs decide differently (the near ties).

        Args:
            pred: the model's output, `(N, outputs)`, NumPy.

        Returns:
            An array whose first axis is the examples: the top class
            `(N,)` for `decision="argmax"`, a boolean `(N, outputs)` (at 0.5)
            for `"threshold"`; `None` where the task answers with no decision
            (generated captions, retrieval rankings).
        """
        return decide(self.decision, pred)

    def nudge(self, pred, y, amount):
        """`pred` moved by `amount` towards the labels `y` (away from them if negative).

        Each of the task's metrics is monotone under the move, so the metrics
        of `nudge(pred, y, eps)` and `nudge(pred, y, -eps)` bound those of any
        outputs within `eps / 2` of `pred`: what another machine's float
        rounding can make of the same examples (`mmzoo.zoo.measure_metrics`,
        `ranges=True`).

        Args:
            pred: the model's output, `(N, outputs)`, float64.
            y: the labels, in the formats of `mmzoo.data.pipeline`.
            amount: in the output's units (probabilities; counts scale it by
                their size).

        Returns:
            The moved copy, or `None` where the metrics cannot be bounded
            this way (generated captions, retrieval rankings).
        """
        if self.decision == "threshold":  # sigmoid outputs, each decided at 0.5
            return nudge_sigmoids(pred, y, amount)
        return None

    def compute_metrics(self, pred, y, wanted, groups):
        """`{name: float}` for the `wanted` metrics; see `measure`."""
        raise ValueError(
            f"task={self.name!r} has no metrics measured on model outputs"
            + (" (it is measured on what it generates)" if self.generative else "")
            + f". Received: task={self.name!r}")

    # -- export and ensembles ----------------------------------------------------

    def class_votes(self, probabilities):
        """`(number of classes, predicted class per example)`, for SAMME boosting
        (tasks with `votes = True`)."""
        raise NotImplementedError(f"task={self.name!r} has no class labels to vote on.")


class ClassTask(Task):
    """Shared by the tasks whose outputs are probabilities of named or yes/no labels."""

    votes = True

    def class_votes(self, probabilities):
        probabilities = np.asarray(probabilities)
        return probabilities.shape[-1], probabilities.argmax(-1)


class NamedLabelsTask(Task):
    """Shared by the tasks with one output per named label (classes, attributes)."""

    label_names_required = True
    classes_option = "num_classes"

    def describe(self, result):
        if not result:
            return ["  (no label at or above 0.5)"]
        width = max(len(label) for label, _ in result)
        return [f"  {label:<{width}}  {score:.3f}" for label, score in result]


def decide(decision, pred):
    """The answers of outputs `pred` under a `Task.decision` rule.

    `"argmax"`: the top class, `(N,)`; `"threshold"`: each output at 0.5,
    boolean, the shape of `pred`; `None` (or any other rule): `None`. Export
    parity (`mmzoo.export.parity`) compares runtimes with the same rules.
    """
    if decision == "argmax":
        return np.asarray(pred).argmax(-1)
    if decision == "threshold":
        return np.asarray(pred) >= 0.5
    return None


def nudge_sigmoids(pred, y, amount):
    """Sigmoid outputs `pred` moved by `amount` towards their 0/1 labels `y`, within [0, 1]."""
    sign = np.where(np.asarray(y).reshape(pred.shape) >= 0.5, 1.0, -1.0)
    return np.clip(pred + amount * sign, 0.0, 1.0)


def per_group(correct, groups, prefix, aggregate_prefix="accuracy_"):
    """Accuracy per group; absent groups are left out.

    Args:
        correct: bool per example.
        groups: `(ids, names)` or `(ids, names, aggregates)`: a group id per
            example, the groups' names, and `((suffix, member names), ...)`
            for accuracies over several groups together.
        prefix: of the per-group keys (`prefix + name`).
        aggregate_prefix: of the aggregates' keys (`aggregate_prefix + suffix`).
    """
    ids, names, *rest = groups
    ids = np.asarray(ids)
    out = {}
    for i, name in enumerate(names):
        mask = ids == i
        if mask.any():
            out[prefix + name] = float(correct[mask].mean())
    for suffix, members in (rest[0] if rest else ()):
        mask = np.isin(ids, [names.index(m) for m in members])
        if mask.any():
            out[aggregate_prefix + suffix] = float(correct[mask].mean())
    return out


def binary_crossentropy(t, p):
    p = np.clip(p, _EPS, 1 - _EPS)
    return float(-(t * np.log(p) + (1 - t) * np.log(1 - p)).mean())


def auc(t, p):
    """ROC AUC by the rank statistic (ties count half); NaN with one class only."""
    t = np.asarray(t) >= 0.5
    pos, neg = t.sum(), (~t).sum()
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(p, kind="mergesort")
    sorted_p = np.asarray(p)[order]
    _, first, counts = np.unique(sorted_p, return_index=True, return_counts=True)
    ranks = np.empty(len(p))
    ranks[order] = np.repeat(first + (counts - 1) / 2.0 + 1, counts)
    return float((ranks[t].sum() - pos * (pos + 1) / 2) / (pos * neg))
