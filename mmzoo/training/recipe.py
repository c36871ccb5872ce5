"""Training recipes: one TOML (or JSON) file per zoo entry, checked against a schema.

A recipe says everything a training run needs: the entry's name and task, the
mmzoo-shapes data, the `build_model` options, the training settings and what
to measure on the test split. Loading it checks every key and value, and the
model options with `build_model`'s own validation, so a typo fails in
milliseconds with the file and key named, not after an hour of training.

Example recipe (`recipes/tiny_vqa.toml`):

```toml
name = "tiny_vqa"
task = "classification"

[dataset]
source = "memory"
image_size = 32
num_train = 64

[model]
image_branch = "cnn"
text_branch = "embedding"

[training]
epochs = 2
batch_size = 16
```

TOML has no null: write the string `"none"` for a `None` model option
(`image_weights = "none"`).

The task's mmzoo-shapes problem is the data a recipe trains on
(`mmzoo.data.problems`); `dataset.problem` picks another problem of the same
task, such as spoken VQA (`recipes/tiny_spoken_vqa.toml`):

```toml
task = "classification"

[dataset]
problem = "spoken_vqa"     # the question read aloud: an "audio" input
audio_samples = 48000      # default: the problem's (3 s at 16 kHz)

[model]
image_branch = "cnn"
text_branch = "none"       # hear the question, don't read it
audio_branch = "cnn"
```
"""

import dataclasses
import json
import numbers
import os
import pathlib

from mmzoo.data import problems
from mmzoo.data.pipeline import CAPTION_MODES, NEGATIVE_MODES, TASKS, TEXT_FIELDS
from mmzoo.registry import MODALITIES
from mmzoo.registry import TASKS as _TASKS
from mmzoo.shipped import shipped_dir

SOURCES = ("tfds", "memory", "stream")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "nadam")
LR_SCHEDULES = ("constant", "cosine")
# Keras dtype policies a recipe may train in: "mixed_bfloat16" runs the layers'
# maths in bfloat16 with float32 weights (about 2.4x faster for VGG16 on a CPU
# with AVX512-BF16), "mixed_float16" is for GPUs.
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
DECODINGS = ("greedy", "beam")
# What `training.freeze` can hold fixed: nothing, or the layers `init_from` started.
FREEZE = ("none", "copied")
EVAL_SPLITS = ("test", "validation")

# Measurable on the test split, per task (the first ones are the defaults):
# each task's `eval_metrics`.
EVAL_METRICS = _TASKS.table("eval_metrics")
# Metrics Keras tracks during `fit` for each task's head (for `monitor`): each
# task's `fit_metrics`.
FIT_METRICS = _TASKS.table("fit_metrics")
# build_model options the data fix (never written in [model]) and the compile
# options that [training] sets.
DATA_OPTIONS = {"image_shape": "dataset.image_size", "vocab_size": "the tokenizer",
                "sequence_length": "dataset.sequence_length",
                "num_classes": "the task's labels", "audio_samples": "dataset.audio_samples",
                "audio_sample_rate": "the spoken data (16 kHz)"}
# The sources a spoken problem can read (its speech is synthesised as the
# scenes are generated; the TFDS spoken configs are read by
# `mmzoo.data.shapes_dataset`, not by recipes yet).
SPOKEN_SOURCES = ("memory", "stream")
COMPILE_OPTIONS = {"optimizer": "training.optimizer", "learning_rate": "training.learning_rate",
                   "jit_compile": "training.jit_compile", "loss": None, "metrics": None,
                   "compile": None}
REQUIRED = object()


def monitor_mode(monitor):
    """`"min"` for a loss or error (`val_loss`), else `"max"` (`val_accuracy`)."""
    return "min" if monitor.endswith("loss") or "error" in monitor else "max"


class RecipeError(ValueError):
    """A recipe that does not follow the schema; the message names file and key."""


# ----------------------------------------------------------------------------
# Value checks: each returns the normalised value or raises _Bad(allowed).


class _Bad(Exception):
    def __init__(self, allowed):
        super().__init__(allowed)
        self.allowed = allowed


def _int(minimum):
    def check(v):
        if not (isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= minimum):
            raise _Bad(f"an integer >= {minimum}")
        return int(v)
    return check


def _number(minimum, strict=False):
    def check(v):
        ok = isinstance(v, numbers.Real) and not isinstance(v, bool)
        if not ok or (v <= minimum if strict else v < minimum):
            raise _Bad(f"a number {'>' if strict else '>='} {minimum}")
        return float(v)
    return check


def _choice(*allowed):
    def check(v):
        if v not in allowed:
            raise _Bad("one of " + ", ".join(repr(a) for a in allowed))
        return v
    return check


def _string(v):
    if not isinstance(v, str):
        raise _Bad("a string")
    return v


def _optional_source(v):
    if v is not None and not (isinstance(v, str) and v):
        raise _Bad("a zoo entry name, an entry folder or a .keras file")
    return v


def _optional_modality(v):
    names = tuple(m.name for m in MODALITIES.all())
    if v is not None and v not in names:
        raise _Bad("one of " + ", ".join(repr(n) for n in names))
    return v


def _optional_positive(v):
    if v is None:
        return v
    return _number(0, strict=True)(v)


def _rate(v):
    if not (isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 <= v < 1):
        raise _Bad("a number in [0, 1)")
    return float(v)


def _bool(v):
    if not isinstance(v, bool):
        raise _Bad("true or false")
    return v


def _jit(v):
    if v == "auto" or isinstance(v, bool):
        return v
    raise _Bad("'auto', true or false")


def _entry_name(v):
    if not (isinstance(v, str) and v and v.replace("_", "").replace("-", "").isalnum()
            and v == v.lower()):
        raise _Bad("a non-empty lower-case name of letters, digits, '_' and '-'")
    return v


# Sections: key -> (check, default). REQUIRED marks keys without a default;
# None defaults are filled per task in `_fill_task_defaults`.
SCHEMA = {
    "": {
        "name": (_entry_name, REQUIRED),
        "task": (_choice(*TASKS), REQUIRED),
        "description": (_string, ""),
    },
    "dataset": {
        "name": (_choice("mmzoo_shapes"), "mmzoo_shapes"),
        "source": (_choice(*SOURCES), "tfds"),
        "data_dir": (_string, ""),
        "image_size": (_int(16), 64),
        "num_train": (_int(1), 20_000),
        "num_validation": (_int(1), 2_000),
        "num_test": (_int(1), 2_000),
        "seed": (_int(0), 0),
        "problem": (_choice(*problems.PROBLEMS), None),
        "text_field": (_choice(*TEXT_FIELDS), None),
        "sequence_length": (_int(1), None),
        "captions": (_choice(*CAPTION_MODES), None),
        "negatives": (_choice(*NEGATIVE_MODES), None),
        "audio_samples": (_int(1), None),
    },
    "model": None,  # build_model options, checked by build_model's validation
    "training": {
        "epochs": (_int(1), 10),
        "batch_size": (_int(1), 64),
        "optimizer": (_choice(*OPTIMIZERS), "adam"),
        "learning_rate": (_number(0, strict=True), 1e-3),
        "lr_schedule": (_choice(*LR_SCHEDULES), "constant"),
        "seed": (_int(0), 0),
        "shuffle_buffer": (_int(1), 10_000),
        "word_dropout": (_rate, 0.0),
        "word_subsampling": (_rate, 0.0),
        "word_dropout_from_epoch": (_int(1), 1),
        "monitor": (_string, "val_loss"),
        "early_stopping_patience": (_int(0), 0),
        "restore_best": (_bool, True),
        "jit_compile": (_jit, "auto"),
        "deterministic_ops": (_bool, False),
        "precision": (_choice(*PRECISIONS), "float32"),
        "init_from": (_optional_source, None),
        "freeze": (_choice(*FREEZE), "none"),
        "distill_from": (_optional_modality, None),
        "distill_to": (_optional_modality, None),
        "distill_epochs": (_int(0), 0),
        "distill_learning_rate": (_optional_positive, None),
    },
    "evaluation": {
        "split": (_choice(*EVAL_SPLITS), "test"),
        "metrics": (None, None),  # checked per task
        "batch_size": (_int(1), 256),
        "decoding": (_choice(*DECODINGS), None),
        "beam_width": (_int(1), None),
        "length_penalty": (_number(0), None),
    },
}
SECTION_DOCS = {
    "": "top level",
    "dataset": "[dataset]",
    "model": "[model]",
    "training": "[training]",
    "evaluation": "[evaluation]",
}


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A validated training recipe, every default filled in.

    Attributes:
        name: the zoo entry's name.
        task: the `build_model` task.
        description: one line for the model card.
        dataset: mmzoo-shapes settings (`source`, `image_size`, `num_train`,
            `num_validation`, `num_test`, `seed`, `text_field`,
            `sequence_length`, `data_dir`; `captions` for captioning;
            `negatives` for written matching;
            `problem` when it is not the task's own, and `audio_samples` for
            a spoken problem).
        model: `build_model` options (architecture only).
        training: `epochs`, `batch_size`, `optimizer`, `learning_rate`,
            `lr_schedule`, `seed`, `shuffle_buffer`, `word_dropout` (the
            probability that a training text's word is read as unknown:
            `mmzoo.data.augment.word_dropout`), `word_subsampling` (the
            threshold of frequent-word subsampling, Mikolov et al. 2013:
            `mmzoo.data.augment.subsampling_rates`), `word_dropout_from_epoch`
            (the 1-based epoch from which both apply: a curriculum that first
            learns from whole texts; `dataset.source = "stream"` only; a start
            after the last epoch, as in a shorter run, drops no word), `monitor`,
            `early_stopping_patience`, `restore_best`, `jit_compile`,
            `deterministic_ops`, `precision` (the Keras dtype policy the model
            is built in: `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"`),
            `init_from` (a zoo entry, entry folder or `.keras` file whose
            weights start the layers that fit: `mmzoo.training.warm_start`),
            `freeze` (`"copied"`: the layers `init_from` started are not
            trained), `distill_from`, `distill_to`, `distill_epochs`,
            `distill_learning_rate` (first, `distill_epochs` epochs in which
            the new `distill_to` branch learns the features `init_from`'s
            `distill_from` branch gives the same rows:
            `mmzoo.training.distill`).
        evaluation: `split`, `metrics`, `batch_size`, and for captioning
            `decoding`, `beam_width`, `length_penalty`.
        path: the file it was read from (or `None`).
        modalities: the inputs its model reads, in model order (`("image",
            "audio")`), from `build_model`'s resolution of `[model]`.
    """

    name: str
    task: str
    description: str
    dataset: dict
    model: dict
    training: dict
    evaluation: dict
    path: str = None
    # The modalities its model reads, in model order (from build_model's
    # resolved options: `("image", "audio")` for an image + audio model).
    modalities: tuple = dataclasses.field(default=(), compare=False, repr=False)

    @property
    def problem(self):
        """The name of the mmzoo-shapes problem it trains on (`dataset.problem`)."""
        return self.dataset.get("problem") or problems.get(self.task).name

    def to_dict(self):
        """The recipe as plain data (for metadata and `Recipe.from_dict`)."""
        return {"name": self.name, "task": self.task, "description": self.description,
                "dataset": dict(self.dataset), "model": _plain(self.model),
                "training": dict(self.training),
                "evaluation": {**self.evaluation, "metrics": list(self.evaluation["metrics"])}}

    @classmethod
    def from_dict(cls, config, source="<dict>"):
        """Validates a recipe given as a dict (`source` names it in errors)."""
        return _validate(config, source)

    def replace(self, *, epochs=None, seed=None, **dataset):
        """A copy with `training.epochs`, `training.seed` or dataset keys changed (validated)."""
        config = self.to_dict()
        if epochs is not None:
            config["training"]["epochs"] = epochs
        if seed is not None:
            config["training"]["seed"] = seed
        config["dataset"].update(dataset)
        return _validate(config, self.path or "<recipe>")

    def data_options(self):
        """The `build_model` options the data fix (image shape, vocabulary, classes)."""
        from mmzoo.data.pipeline import shapes_tokenizer

        options = {
            "image_shape": (self.dataset["image_size"],) * 2 + (3,),
            "vocab_size": shapes_tokenizer(self.dataset["sequence_length"]).vocab_size,
            "sequence_length": self.dataset["sequence_length"],
        }
        task, problem = _TASKS.get(self.task), problems.get(self.problem)
        if problem.spoken:
            from mmzoo.data import speech

            options.update(audio_samples=self.dataset["audio_samples"],
                           audio_sample_rate=speech.SAMPLE_RATE)
            if "text_branch" in self.model and self.model["text_branch"] is None:
                # Heard, not read: no text options to be warned about.
                del options["vocab_size"], options["sequence_length"]
        # The problem's labels fix the head's size (`num_classes`) where the task has one.
        options.update(task.data_options(task.num_outputs(problem.label_names)))
        return options

    def architecture_options(self):
        """Every architecture option for `build_model(task, ...)` (no compile options)."""
        return {**self.data_options(), **self.model}


def load_recipe(path):
    """Reads and validates a recipe file.

    Args:
        path: a `.toml` or `.json` file; a bare name (`"mobile_vqa"`) is
            looked up as `recipes/<name>.toml` in the working directory, then
            among the shipped recipes (`mmzoo.shipped`).

    Returns:
        A `Recipe`.

    Raises:
        FileNotFoundError: no such file.
        RecipeError: the file does not parse or does not follow the schema.
    """
    path = pathlib.Path(os.fspath(path))
    if not path.exists() and not path.suffix and path.parent == pathlib.Path("."):
        for folder in (pathlib.Path("recipes"), shipped_dir("recipes")):
            candidate = folder / f"{path.name}.toml"
            if candidate.exists():
                path = candidate
                break
    if not path.is_file():
        raise FileNotFoundError(f"No recipe file at {str(path)!r}.")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            config = json.loads(text)
        except json.JSONDecodeError as e:
            raise RecipeError(f"{path}: not valid JSON: {e}") from None
    elif path.suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib
        try:
            config = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise RecipeError(f"{path}: not valid TOML: {e}") from None
    else:
        raise RecipeError(f"A recipe is a .toml or .json file. Received: {str(path)!r}")
    return _validate(config, str(path))


# ----------------------------------------------------------------------------


def _plain(model):
    """Model options as TOML/JSON would write them (tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in model.items()}


def _where(section):
    return SECTION_DOCS[section]


def _check_keys(config, section, source):
    allowed = SCHEMA[section]
    if not isinstance(config, dict):
        raise RecipeError(f"{source}: {_where(section)} must be a table of keys. "
                          f"Received: {section}={config!r}")
    for key in config:
        if key not in allowed:
            raise RecipeError(
                f"{source}: unknown key {key!r} in {_where(section)}. Allowed keys: "
                f"{', '.join(sorted(allowed))}. Received: {key}={config[key]!r}")


def _check_section(config, section, source):
    _check_keys(config, section, source)
    values = {}
    for key, (check, default) in SCHEMA[section].items():
        if key not in config:
            if default is REQUIRED:
                raise RecipeError(f"{source}: missing required key {key!r} in "
                                  f"{_where(section)}. Received: no {key}")
            values[key] = default
            continue
        value = config[key]
        if check is not None:
            try:
                value = check(value)
            except _Bad as bad:
                prefix = f"{section}." if section else ""
                raise RecipeError(
                    f"{source}: {prefix}{key} must be {bad.allowed}. "
                    f"Received: {key}={value!r}") from None
        values[key] = value
    return values


def _validate(config, source):
    if not isinstance(config, dict):
        raise RecipeError(f"{source}: a recipe is a table of keys. Received: {config!r}")
    top_keys = set(SCHEMA[""]) | {s for s in SCHEMA if s}
    for key in config:
        if key not in top_keys:
            raise RecipeError(
                f"{source}: unknown key {key!r} at the top level. Allowed keys: "
                f"{', '.join(sorted(top_keys))}. Received: {key}={config[key]!r}")
    top = _check_section({k: v for k, v in config.items() if k in SCHEMA[""]}, "", source)
    task = top["task"]
    dataset = _check_section(config.get("dataset", {}), "dataset", source)
    training = _check_section(config.get("training", {}), "training", source)
    evaluation = _check_section(config.get("evaluation", {}), "evaluation", source)
    _fill_task_defaults(task, dataset, training, evaluation, source)
    model = _check_model(config.get("model", {}), task, dataset, source)
    recipe = Recipe(name=top["name"], task=task, description=top["description"],
                    dataset=dataset, model=model, training=training, evaluation=evaluation,
                    path=None if source.startswith("<") else source)
    _check_model_options(recipe, source)
    return recipe


def _fill_problem(task, dataset, source):
    """The recipe's problem: `dataset.problem` (checked against the task) or the task's own."""
    name = dataset["problem"]
    if name is None:
        problem = problems.get(task)
    else:
        problem = problems.PROBLEMS[name]
        if problem.task != task:
            feeding = [p.name for p in problems.PROBLEMS.values() if p.task == task]
            raise RecipeError(
                f"{source}: dataset.problem must be a problem of task={task!r} "
                f"({', '.join(map(repr, feeding))}); {name!r} feeds task={problem.task!r}. "
                f"Received: problem={name!r}")
    if problem is problems.get(task):
        # Recorded only when it is not the task's own: a recipe's dict (and an
        # entry's metadata) reads as before, and changing its task still works.
        del dataset["problem"]
    else:
        dataset["problem"] = problem.name
    if problem.spoken:
        if dataset["source"] not in SPOKEN_SOURCES:
            raise RecipeError(
                f"{source}: dataset.source must be one of "
                f"{', '.join(map(repr, SPOKEN_SOURCES))} for problem={problem.name!r} (its "
                f"speech is synthesised as the scenes are generated). "
                f"Received: source={dataset['source']!r}")
        if dataset["audio_samples"] is None:
            dataset["audio_samples"] = problem.audio_samples
    elif dataset["audio_samples"] is not None:
        spoken = [p.name for p in problems.PROBLEMS.values() if p.spoken]
        raise RecipeError(f"{source}: dataset.audio_samples applies to the spoken problems "
                          f"({', '.join(map(repr, spoken))}) only. Received: audio_samples="
                          f"{dataset['audio_samples']!r} with problem={problem.name!r}")
    else:
        del dataset["audio_samples"]
    return problem


def _fill_task_defaults(task, dataset, training, evaluation, source):
    problem = _fill_problem(task, dataset, source)
    # How errors name the data: the task, or the problem when it is not the task's own.
    subject = f"task={task!r}" if problem is problems.get(task) else f"problem={problem.name!r}"
    # Matching and captioning labels are about their own text (the problem says).
    fixed_text = problem.text_field if problem.fixed_text else None
    if dataset["text_field"] is None:
        dataset["text_field"] = problem.text_field
    elif fixed_text and dataset["text_field"] != fixed_text:
        raise RecipeError(f"{source}: dataset.text_field must be {fixed_text!r} for "
                          f"{subject}: its labels are about that text. "
                          f"Received: text_field={dataset['text_field']!r}")
    if dataset["sequence_length"] is None:
        dataset["sequence_length"] = problem.sequence_length
    # Generated captions: how many per scene, and how they are searched.
    if _TASKS.get(task).generative:
        dataset["captions"] = dataset["captions"] or "all"
        evaluation["decoding"] = evaluation["decoding"] or "greedy"
        if evaluation["beam_width"] is None:
            evaluation["beam_width"] = 3
        if evaluation["length_penalty"] is None:
            evaluation["length_penalty"] = 0.0
    else:
        for section, values, key in (("dataset", dataset, "captions"),
                                     ("evaluation", evaluation, "decoding"),
                                     ("evaluation", evaluation, "beam_width"),
                                     ("evaluation", evaluation, "length_penalty")):
            if values[key] is not None:
                raise RecipeError(f"{source}: {section}.{key} applies to task='captioning' "
                                  f"only. Received: {key}={values[key]!r} with task={task!r}")
        del dataset["captions"]
        for key in ("decoding", "beam_width", "length_penalty"):
            del evaluation[key]

    # Matching's training rows: sampled, or minimal pairs (generated sources only).
    if problem.pairs_negatives:
        dataset["negatives"] = dataset["negatives"] or "sampled"
        if dataset["negatives"] == "paired" and dataset["source"] == "tfds":
            raise RecipeError(f"{source}: dataset.negatives='paired' needs the scenes "
                              "generated as training runs: source='stream' or 'memory'. "
                              f"Received: source={dataset['source']!r}")
    elif dataset["negatives"] is not None:
        able = [p.name for p in problems.PROBLEMS.values() if p.pairs_negatives]
        raise RecipeError(f"{source}: dataset.negatives applies to "
                          f"{', '.join(map(repr, able))} only. Received: "
                          f"negatives={dataset['negatives']!r} with {subject}")
    else:
        del dataset["negatives"]

    # A per-group metric is the problem's to report (per voice: spoken only).
    own = {g.metric for g in problem.group_metrics}
    allowed = tuple(m for m in EVAL_METRICS[task]
                    if m not in problems.GROUP_METRICS or m in own)
    metrics = evaluation["metrics"]
    if metrics is None:
        metrics = list(allowed)
    if not (isinstance(metrics, list) and metrics and all(m in allowed for m in metrics)):
        raise RecipeError(
            f"{source}: evaluation.metrics must be a non-empty list of "
            f"{', '.join(map(repr, allowed))} for {subject}. Received: metrics={metrics!r}")
    evaluation["metrics"] = tuple(dict.fromkeys(metrics))

    monitors = FIT_METRICS[task]
    allowed_monitors = [f"val_{m}" for m in monitors] + list(monitors)
    if training["monitor"] not in allowed_monitors:
        raise RecipeError(
            f"{source}: training.monitor must be one of "
            f"{', '.join(map(repr, allowed_monitors))} for task={task!r}. "
            f"Received: monitor={training['monitor']!r}")


def _check_model(model, task, dataset, source):
    if not isinstance(model, dict):
        raise RecipeError(f"{source}: [model] must be a table of build_model options. "
                          f"Received: model={model!r}")
    options = {}
    for key, value in model.items():
        if key in DATA_OPTIONS:
            raise RecipeError(
                f"{source}: [model] must not set {key!r}: it is fixed by "
                f"{DATA_OPTIONS[key]}. Received: {key}={value!r}")
        if key in COMPILE_OPTIONS or key == "task":
            where = COMPILE_OPTIONS.get(key)
            hint = f"set {where} instead" if where else "the head's own is used"
            if key == "task":
                hint = "set the top-level `task` instead"
            raise RecipeError(f"{source}: [model] must not set {key!r}: {hint}. "
                              f"Received: {key}={value!r}")
        # TOML has no null.
        options[key] = None if value == "none" else value
    return options


def _check_word_dropout_start(recipe, source):
    """`training.word_dropout_from_epoch` needs words to drop and a stream.

    A start after the last epoch is allowed (`mmzoo train` says that no epoch drops a
    word): a shorter run of the same recipe (`--epochs`, `mmzoo tune`'s trials) then
    reads whole texts throughout.
    """
    tr = recipe.training
    start = tr["word_dropout_from_epoch"]
    if start == 1:
        return
    if not (tr["word_dropout"] or tr["word_subsampling"]):
        raise RecipeError(f"{source}: training.word_dropout_from_epoch starts word dropout, "
                          f"but word_dropout and word_subsampling are 0. Received: "
                          f"word_dropout_from_epoch={start!r}")
    if recipe.dataset["source"] != "stream":
        raise RecipeError(f"{source}: training.word_dropout_from_epoch needs dataset.source = "
                          f"\"stream\" (each batch knows its step there). Received: "
                          f"source={recipe.dataset['source']!r}")


def _check_transfer(recipe, modalities, source):
    """`freeze` and the distillation keys need `init_from` and inputs the rows carry."""
    tr = recipe.training
    if tr["freeze"] != "none" and not tr["init_from"]:
        raise RecipeError(f"{source}: training.freeze={tr['freeze']!r} freezes the layers "
                          f"`init_from` starts: set training.init_from. Received: init_from=None")
    keys = ("distill_from", "distill_to", "distill_epochs")
    given = [k for k in keys if tr[k]]
    if not given:
        return
    if len(given) < len(keys):
        raise RecipeError(f"{source}: distillation needs training.distill_from, distill_to and "
                          f"distill_epochs (>= 1) together. Received: "
                          + ", ".join(f"{k}={tr[k]!r}" for k in keys))
    if not tr["init_from"]:
        raise RecipeError(f"{source}: training.distill_from names a branch of the "
                          f"`init_from` model (the teacher): set training.init_from. "
                          f"Received: init_from=None")
    if tr["distill_to"] not in modalities:
        raise RecipeError(f"{source}: training.distill_to must be a modality of the model "
                          f"({', '.join(map(repr, modalities))}). Received: "
                          f"distill_to={tr['distill_to']!r}")
    problem = problems.get(recipe.problem)
    carried = ("image", "text") + (("audio",) if problem.spoken else ())
    if tr["distill_from"] not in carried:
        raise RecipeError(f"{source}: the rows of problem={problem.name!r} carry "
                          f"{', '.join(map(repr, carried))}: training.distill_from must be one "
                          f"of them. Received: distill_from={tr['distill_from']!r}")


def _check_model_options(recipe, source):
    """Runs build_model's own option validation (no layers built)."""
    try:
        resolved = _TASKS.get(recipe.task).resolve_options(recipe.architecture_options())
    except (TypeError, ValueError) as e:
        raise RecipeError(f"{source}: [model] {e}") from None
    modalities = tuple(m.name for m in MODALITIES.all() if resolved.get(m.branch_option))
    spoken = problems.get(recipe.problem).spoken
    if spoken and "audio" not in modalities:
        raise RecipeError(f"{source}: [model] must set audio_branch for problem="
                          f"{recipe.problem!r}: its question is spoken. Received: "
                          f"audio_branch={resolved.get('audio_branch')!r}")
    if not spoken and "audio" in modalities:
        raise RecipeError(
            f"{source}: [model] audio_branch needs a spoken problem (dataset.problem "
            f"{', '.join(repr(p.name) for p in problems.PROBLEMS.values() if p.spoken)}): "
            f"problem={recipe.problem!r} has no audio. Received: "
            f"audio_branch={resolved['audio_branch']!r}")
    for key in ("word_dropout", "word_subsampling"):
        rate = recipe.training[key]
        if rate and "text" not in modalities:
            raise RecipeError(f"{source}: training.{key} drops words of the text input: "
                              f"the model reads {', '.join(map(repr, modalities))}. "
                              f"Received: {key}={rate!r}")
    _check_word_dropout_start(recipe, source)
    object.__setattr__(recipe, "modalities", modalities)
    _check_transfer(recipe, modalities, source)
    # Normalised (e.g. hidden_units as a tuple), so to_dict() is stable.
    for key in recipe.model:
        if key in resolved:
            recipe.model[key] = resolved[key]
