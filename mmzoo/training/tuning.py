"""Hyperparameter search over a recipe's `build_model` options, with KerasTuner.

`tune(recipe, search_space, out_dir)` trains many variants of one recipe on
the recipe's own data, each scored by the recipe's `training.monitor` on its
validation split, and writes what it found:

- `trials.csv` and `trials.md`: one row per trial (its values, score, epochs,
  seconds, status), best first;
- `tuning.png`: the score of each trial in order with the best so far, and the
  best score for each value of the first categorical option;
- `best_recipe.toml`: the recipe with the best trial's values, which
  `mmzoo train` accepts as it is (named `<name>_tuned`, the recipe's epochs);
- `keras_tuner/`: KerasTuner's own state. Calling `tune` again on the same
  folder continues the search where it stopped (a killed search loses at most
  the trial it was running), unless `overwrite=True`.

The search itself is KerasTuner's (O'Malley et al. 2019): Hyperband (Li et al.
2018, the default: many short trials, the promising ones trained longer),
Bayesian optimisation with a Gaussian process, or random search. mmzoo only
turns a recipe and a search space into KerasTuner's `HyperModel`.

A search space maps option names to values to try (TOML file or dict):

```toml
fusion = ["concat", "film", "relation"]            # a choice
fusion_dim = [32, 64, 128]
film_blocks = {min = 1, max = 4}                    # integers 1..4
learning_rate = {min = 1e-4, max = 3e-3, sampling = "log"}
dropout = {min = 0.0, max = 0.3, step = 0.1}       # 0.0, 0.1, 0.2, 0.3
text_units = 128                                    # fixed
```

Keys are `build_model` options of the recipe's task (any registered branch,
fusion or head option) or the training keys in `TRAINING_KEYS`. An option
that only some fusions (or branches) take, such as `film_blocks`, is searched
only in trials that choose one of those (a KerasTuner conditional scope), and
the recipe's own options that the chosen components do not take are dropped
for that trial.
"""

import csv
import dataclasses
import math
import numbers
import pathlib
import time

from mmzoo.registry import FUSIONS, MODALITIES, TASKS
from mmzoo.tasks.options import MODEL_DEFAULTS
from mmzoo.training.recipe import Recipe, RecipeError, load_recipe, monitor_mode

TUNERS = ("hyperband", "bayesian", "random")
# [training] keys a search may change (batch size and epochs set the data
# stream and the schedule, so they stay the recipe's).
TRAINING_KEYS = ("learning_rate", "optimizer", "lr_schedule")
SAMPLINGS = ("linear", "log", "reverse_log")
STATE_FOLDER = "keras_tuner"


def _selectable():
    """Registries whose selector option decides which of their options a trial uses.

    `fusion` and every declared modality's `<name>_branch` (`image_branch`,
    `text_branch`, ...), read when called so a modality declared later counts.
    """
    return (FUSIONS, *(modality.branches for modality in MODALITIES.all()))


class SearchSpaceError(ValueError):
    """A search space that cannot be searched; the message names the option."""


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One searched option: `kind` is "choice", "int", "float" or "fixed"."""

    name: str
    kind: str
    values: tuple = ()
    low: float = None
    high: float = None
    step: float = None
    sampling: str = "linear"

    def candidates(self):
        """Values that must all be valid options (for checks before the search)."""
        if self.kind in ("choice", "fixed"):
            return self.values
        return (self.low, self.high)


@dataclasses.dataclass
class TuneResult:
    """What `tune` found.

    Attributes:
        trials: one dict per trial, best first: `trial_id`, `score`, `status`,
            `epochs`, `seconds` and the searched values.
        best_values: the best trial's searched values.
        best_recipe: the recipe with those values, as written to
            `best_recipe.toml` (a `Recipe`, named `<name>_tuned`).
        objective: the score's name (the recipe's `training.monitor`) and
            direction, e.g. `("val_accuracy", "max")`.
        paths: `{"table", "markdown", "plot", "recipe", "state"}` file paths.
    """

    trials: list
    best_values: dict
    best_recipe: Recipe
    objective: tuple
    paths: dict

    def table(self):
        """The trials as a Markdown table (best first)."""
        return (pathlib.Path(self.paths["markdown"]).read_text()
                if self.paths.get("markdown") else "")


# ----------------------------------------------------------------------------
# The search space


def load_search_space(space):
    """Reads a search space: a TOML file (path) or a dict.

    Args:
        space: `{option: values}`; values are a list (a choice), a table with
            `min` and `max` (and optional `step`, `sampling`), or one value
            (fixed).

    Returns:
        A list of `Dimension`s, in the given order.

    Raises:
        SearchSpaceError: an empty space or a malformed value, naming the option.
    """
    source = "search space"
    if isinstance(space, (str, pathlib.Path)):
        source = str(space)
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib
        try:
            space = tomllib.loads(pathlib.Path(space).read_text())
        except FileNotFoundError:
            raise SearchSpaceError(f"No search space file. Received: space={source!r}") from None
        except tomllib.TOMLDecodeError as e:
            raise SearchSpaceError(f"{source}: not valid TOML: {e}") from None
    if not isinstance(space, dict) or not space:
        raise SearchSpaceError(f"{source}: a search space maps option names to values to "
                               f"try, and must not be empty. Received: {space!r}")
    return [_dimension(name, value, source) for name, value in space.items()]


def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _dimension(name, value, source):
    def bad(why):
        return SearchSpaceError(f"{source}: `{name}` {why}. Received: {name}={value!r}")

    if isinstance(value, (list, tuple)):
        values = tuple(value)
        if not values:
            raise bad("lists no values to try")
        if len(set(map(repr, values))) != len(values):
            raise bad("lists a value twice")
        if not all(isinstance(v, (str, bool, numbers.Real)) for v in values) or \
                len({type(v) for v in values} - {int, float}) > 1 or \
                ({type(v) for v in values} & {str, bool} and len({type(v) for v in values}) > 1):
            raise bad("must list values of one kind (strings, booleans or numbers)")
        return Dimension(name, "choice", values=values)
    if isinstance(value, dict):
        unknown = set(value) - {"min", "max", "step", "sampling"}
        if unknown or "min" not in value or "max" not in value:
            raise bad("must be a table with `min` and `max` (and optionally `step`, "
                      "`sampling`)")
        low, high, step = value["min"], value["max"], value.get("step")
        sampling = value.get("sampling", "linear")
        if not (_is_number(low) and _is_number(high)) or low >= high:
            raise bad("needs numbers `min` < `max`")
        if step is not None and not (_is_number(step) and step > 0):
            raise bad("needs a positive `step`")
        if sampling not in SAMPLINGS:
            raise bad("has an unknown `sampling`; it must be one of "
                      + ", ".join(repr(s) for s in SAMPLINGS))
        if sampling != "linear" and low <= 0:
            raise bad("needs `min` > 0 for log sampling")
        integer = all(isinstance(v, numbers.Integral) for v in (low, high)) and \
            (step is None or isinstance(step, numbers.Integral))
        return Dimension(name, "int" if integer else "float", low=low, high=high, step=step,
                         sampling=sampling)
    if isinstance(value, (str, bool, numbers.Real)):
        return Dimension(name, "fixed", values=(value,))
    raise bad("must be a list, a table with `min` and `max`, or one value")


def _owners(option):
    """`{registry: names of its components that take option}` for the selectable registries."""
    owners = {}
    for registry in _selectable():
        names = [n for n in registry.names() if option in registry.get(n).options]
        if names:
            owners[registry] = names
    return owners


def _chosen(model):
    """`{registry: the component name}` that model options select (defaults filled)."""
    chosen = {registry: model.get(registry.option, MODEL_DEFAULTS.get(registry.option))
              for registry in _selectable()}
    if chosen[FUSIONS] is None:  # build_model's default with two modalities
        chosen[FUSIONS] = "concat"
    return chosen


def _apply(recipe, values):
    """The recipe with the trial's values: model options, then training keys.

    Options the trial's chosen fusion/branches do not take are dropped, unless
    another chosen component takes them.
    """
    config = recipe.to_dict()
    model, training = dict(config["model"]), dict(config["training"])
    for key, value in values.items():
        (training if key in TRAINING_KEYS else model)[key] = value
    chosen = _chosen(model)
    used = set()
    for registry, name in chosen.items():
        if isinstance(name, str) and name in registry:
            used |= set(registry.get(name).options)
    for key in list(model):
        owners = _owners(key)
        if owners and key not in used:
            del model[key]
    config.update(model=model, training=training)
    return Recipe.from_dict(config, recipe.path or "<recipe>")


def check_search_space(recipe, dimensions):
    """Checks every value of every dimension with `build_model`'s own validation.

    Raises:
        SearchSpaceError: an option the task does not take, a bad value, or an
            option no chosen component uses; the message names the option.
    """
    names = {d.name for d in dimensions}
    for d in dimensions:
        if d.name in ("batch_size", "epochs") or d.name in recipe.dataset:
            raise SearchSpaceError(
                f"`{d.name}` cannot be searched: it sets the data and the schedule. "
                f"Searchable: build_model options and {', '.join(TRAINING_KEYS)}. "
                f"Received: {d.name}")
        owners = _owners(d.name)
        fixed = _chosen(recipe.model)
        for registry, takers in owners.items():
            selector = next((x for x in dimensions if x.name == registry.option), None)
            candidates = list(selector.candidates()) if selector else [fixed[registry]]
            if not set(takers) & set(candidates):
                where = "searched" if selector else "the recipe's"
                raise SearchSpaceError(
                    f"`{d.name}` is taken by no {registry.kind} of {registry.option}="
                    f"{candidates if selector else candidates[0]!r} ({where}); it is taken "
                    f"by {', '.join(takers)}. Received: {d.name}")
        for value in d.candidates():
            values = {d.name: value}
            # Try the value with a component that takes it, when one is searched.
            for registry, takers in owners.items():
                if registry.option in names:
                    values[registry.option] = takers[0]
            try:
                _apply(recipe, values)
            except RecipeError as e:
                raise SearchSpaceError(f"search space: {e}") from None


# ----------------------------------------------------------------------------
# KerasTuner glue


def _declare(hp, d, dimensions):
    import keras_tuner as kt  # noqa: F401

    parents = []
    for registry, takers in _owners(d.name).items():
        selector = next((x for x in dimensions if x.name == registry.option), None)
        if selector is not None and selector.kind == "choice":
            parents.append((registry.option, [t for t in takers if t in selector.values]))
    if parents:
        name, values = parents[0]
        with hp.conditional_scope(name, values):
            return _declare_plain(hp, d)
    return _declare_plain(hp, d)


def _declare_plain(hp, d):
    if d.kind == "fixed":
        return hp.Fixed(d.name, d.values[0])
    if d.kind == "choice":
        return hp.Choice(d.name, list(d.values))
    if d.kind == "int":
        return hp.Int(d.name, int(d.low), int(d.high), step=d.step, sampling=d.sampling)
    return hp.Float(d.name, float(d.low), float(d.high), step=d.step, sampling=d.sampling)


def _searched_values(hp, dimensions):
    return {d.name: hp.values[d.name] for d in dimensions
            if d.name in hp.values and hp.is_active(d.name)}


def _make_hypermodel(recipe, dimensions, data, verbose):
    import keras_tuner as kt

    from mmzoo.training.run import build_model_for, set_seed

    class RecipeHyperModel(kt.HyperModel):
        """Builds the recipe's model with a trial's values; fits it on the recipe's data."""

        def build(self, hp):
            for d in dimensions:  # declared in order: selectors before their options
                _declare(hp, d, dimensions)
            trial_recipe = _apply(recipe, _searched_values(hp, dimensions))
            set_seed(trial_recipe)
            return build_model_for(trial_recipe, data.steps_per_epoch)

        def fit(self, hp, model, *args, epochs=None, initial_epoch=0, callbacks=(), **kwargs):
            epochs = epochs or recipe.training["epochs"]  # Hyperband sets its own
            # A stream holds every epoch's fresh batches in a row: a trial that
            # continues another (Hyperband) starts where that one stopped.
            train = data.train_from(initial_epoch * data.steps_per_epoch) \
                if data.fresh_each_epoch else data.train
            steps = data.steps_per_epoch if data.fresh_each_epoch else None
            return model.fit(train, validation_data=data.validation, epochs=epochs,
                             initial_epoch=initial_epoch, steps_per_epoch=steps,
                             shuffle=False, callbacks=list(callbacks), verbose=verbose)

    return RecipeHyperModel()


def _make_tuner(kind, hypermodel, objective, *, max_trials, max_epochs, seed, directory,
                project_name, overwrite, deadline):
    import keras_tuner as kt

    base = {"hyperband": kt.Hyperband, "bayesian": kt.BayesianOptimization,
            "random": kt.RandomSearch}[kind]

    class Tuner(base):
        """KerasTuner's tuner, plus a wall-clock budget and trial timings."""

        def __init__(self, *args, **kwargs):
            self.seconds = {}
            super().__init__(*args, **kwargs)

        def pre_create_trial(self):
            super().pre_create_trial()
            # No new trial after the deadline (at least one runs): KerasTuner
            # stops a search when the trial count reaches max_trials.
            if deadline is not None and time.monotonic() > deadline and self.oracle.trials:
                self.oracle.max_trials = len(self.oracle.trials)

        def on_trial_begin(self, trial):
            self._started = time.monotonic()
            super().on_trial_begin(trial)

        def on_trial_end(self, trial):
            self.seconds[trial.trial_id] = time.monotonic() - self._started
            super().on_trial_end(trial)

    common = dict(hypermodel=hypermodel, objective=objective, seed=seed, directory=directory,
                  project_name=project_name, overwrite=overwrite)
    if kind == "hyperband":
        tuner = Tuner(max_epochs=max_epochs, factor=3, **common)
        if max_trials:
            tuner.oracle.max_trials = max_trials
    else:
        tuner = Tuner(max_trials=max_trials or 10, **common)
    return tuner


# ----------------------------------------------------------------------------
# The search


def tune(recipe, search_space, out_dir, *, tuner="hyperband", max_trials=None,
         max_minutes=None, max_epochs=None, num_train=None, overwrite=False, verbose="auto"):
    """Searches `build_model` options of a recipe with KerasTuner.

    Args:
        recipe: a `Recipe`, a recipe file, a shipped recipe's name, or a recipe
            dict (as in a recipe file).
        search_space: a TOML file or dict of options to search (see the module
            docstring).
        out_dir: folder for the results and KerasTuner's state; a folder with
            an earlier search of the same recipe continues it.
        tuner: `"hyperband"` (default), `"bayesian"` or `"random"`.
        max_trials: at most this many trials (default: Hyperband's own
            schedule; 10 for the others).
        max_minutes: no new trial starts after this many minutes of wall-clock
            time (the trial running then finishes; at least one trial runs).
        max_epochs: epochs of the longest trial (default: the recipe's
            `training.epochs`); the learning-rate schedule spans this.
        num_train: scenes per epoch in the trials (default: the recipe's
            `dataset.num_train`); smaller makes trials shorter.
        overwrite: start afresh, discarding an earlier search in `out_dir`.
        verbose: Keras `fit` verbosity in the trials (`"auto"`, 0, 1, 2).

    Returns:
        A `TuneResult`.

    Raises:
        SearchSpaceError: a malformed space, or an option or value the recipe's
            model does not take (before anything is trained).
        ValueError: a bad argument (named).

    Example:

    ```python
    result = mmzoo.tune("tiny_vqa", {"fusion": ["concat", "film"],
                                     "learning_rate": {"min": 1e-4, "max": 1e-2,
                                                       "sampling": "log"}},
                        "runs/tune_tiny", tuner="random", max_trials=2, max_epochs=1)
    print(result.table())
    ```
    """
    if tuner not in TUNERS:
        raise ValueError(f"`tuner` must be one of {', '.join(map(repr, TUNERS))}. "
                         f"Received: tuner={tuner!r}")
    for name, value, low in (("max_trials", max_trials, 1), ("max_epochs", max_epochs, 1),
                             ("num_train", num_train, 1)):
        if value is not None and not (isinstance(value, numbers.Integral)
                                      and not isinstance(value, bool) and value >= low):
            raise ValueError(f"`{name}` must be None or a positive integer. "
                             f"Received: {name}={value!r}")
    if max_minutes is not None and not (_is_number(max_minutes) and max_minutes > 0):
        raise ValueError(f"`max_minutes` must be None or a positive number. "
                         f"Received: max_minutes={max_minutes!r}")
    recipe = Recipe.from_dict(recipe) if isinstance(recipe, dict) else \
        recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    if TASKS.get(recipe.task).generative:
        raise ValueError("mmzoo tune searches models scored by a Keras metric during fit; "
                         "captioning is scored by beam-search BLEU after training. "
                         f"Received: task={recipe.task!r}")
    dimensions = load_search_space(search_space)
    # Selectors first, so that conditional options can refer to them.
    selectors = {r.option for r in _selectable()}
    dimensions.sort(key=lambda d: d.name not in selectors)
    check_search_space(recipe, dimensions)

    max_epochs = max_epochs or recipe.training["epochs"]
    recipe_for_trials = recipe.replace(epochs=max_epochs,
                                       **({"num_train": num_train} if num_train else {}))
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    deadline = None if max_minutes is None else time.monotonic() + 60 * max_minutes

    import keras_tuner as kt

    from mmzoo.training.data import load_training_data
    from mmzoo.training.run import set_seed

    set_seed(recipe_for_trials)
    data = load_training_data(recipe_for_trials)
    monitor = recipe.training["monitor"]
    objective = kt.Objective(monitor, direction=monitor_mode(monitor))
    if verbose == "auto":
        import sys
        verbose = 1 if sys.stdout.isatty() else 2
    search = _make_tuner(
        tuner, _make_hypermodel(recipe_for_trials, dimensions, data, verbose), objective,
        max_trials=max_trials, max_epochs=max_epochs, seed=recipe.training["seed"],
        directory=str(out), project_name=STATE_FOLDER, overwrite=overwrite, deadline=deadline)
    times_path = out / "trial_seconds.csv"
    times = {} if overwrite else _read_times(times_path)
    try:
        search.search(verbose=verbose)
    finally:
        times.update(search.seconds)
        _write_times(times_path, times)
    return _report(search, recipe, dimensions, times, out, objective=(monitor,
                                                                      monitor_mode(monitor)))


def _read_times(path):
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        return {row["trial_id"]: float(row["seconds"]) for row in csv.DictReader(f)}


def _write_times(path, times):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["trial_id", "seconds"])
        for trial_id in sorted(times):
            writer.writerow([trial_id, f"{times[trial_id]:.1f}"])


def _report(search, recipe, dimensions, times, out, objective):
    monitor, mode = objective
    rows = []
    for trial_id, trial in search.oracle.trials.items():
        values = {d.name: trial.hyperparameters.values.get(d.name) for d in dimensions}
        values = {k: v for k, v in values.items()
                  if k in trial.hyperparameters.values and trial.hyperparameters.is_active(k)}
        epochs = trial.hyperparameters.values.get("tuner/epochs")
        if epochs is None and trial.metrics.exists(monitor):
            epochs = len(trial.metrics.get_history(monitor))
        rows.append({"trial_id": trial_id, "score": trial.score, "status": str(trial.status),
                     "epochs": epochs, "seconds": times.get(trial_id), **values})
    sign = -1 if mode == "max" else 1
    rows.sort(key=lambda r: (r["score"] is None or not math.isfinite(r["score"]),
                             sign * (r["score"] or 0)))
    if not rows or rows[0]["score"] is None:
        raise RuntimeError(f"No trial finished with a {monitor} score; see {out}.")
    columns = ["trial_id", "score", "epochs", "seconds", "status"] + [d.name for d in dimensions]
    paths = {"table": out / "trials.csv", "markdown": out / "trials.md",
             "plot": out / "tuning.png", "recipe": out / "best_recipe.toml",
             "state": out / STATE_FOLDER}
    with open(paths["table"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    paths["markdown"].write_text(_markdown(rows, columns, monitor))
    best = {k: rows[0][k] for k in (d.name for d in dimensions) if k in rows[0]}
    best_recipe = _apply(recipe, best)
    chosen = ", ".join(f"{k}={_cell(v)}" for k, v in best.items())
    best_recipe = write_recipe(best_recipe, paths["recipe"], name=f"{recipe.name}_tuned",
                 # Not the base recipe's description: it names the base's design
                 # ("four FiLM blocks"), which the search may have changed.
                 description=f"The best trial of mmzoo tune on {recipe.name}: {chosen}; "
                             f"every other setting as in {recipe.name}.",
                 note=f"{monitor} {rows[0]['score']:.4f} in trial {rows[0]['trial_id']} of "
                      f"mmzoo tune; searched: {', '.join(d.name for d in dimensions)}")
    from mmzoo.training.plot import plot_tuning

    plot_tuning(rows, dimensions, monitor, mode, paths["plot"])
    return TuneResult(trials=rows, best_values=best, best_recipe=best_recipe,
                      objective=objective, paths={k: str(v) for k, v in paths.items()})


def _cell(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _markdown(rows, columns, monitor):
    header = ["trial", monitor] + columns[2:]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def write_recipe(recipe, path, *, name=None, description=None, note=None):
    """Writes a recipe as a TOML file that `load_recipe` reads back to the same recipe.

    Args:
        recipe: a `Recipe`.
        path: the `.toml` file to write.
        name: a new entry name (default: the recipe's).
        description: a new description (default: the recipe's).
        note: a comment line for the top of the file.

    Returns:
        The written `Recipe`.
    """
    import tomli_w

    config = recipe.to_dict()
    if name:
        config["name"] = name
    if description:
        config["description"] = description
    # TOML has no null: a None model option is the string "none"; other
    # sections' None values are their defaults and are left out.
    config["model"] = {k: "none" if v is None else v for k, v in config["model"].items()}
    for section in ("dataset", "training", "evaluation"):
        config[section] = {k: v for k, v in config[section].items() if v is not None}
    text = tomli_w.dumps(config)
    if note:
        text = f"# {note}\n" + text
    written = Recipe.from_dict(config, str(path))  # what is written must load
    pathlib.Path(path).write_text(text)
    return dataclasses.replace(written, path=str(path))
