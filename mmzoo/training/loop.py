"""The training run of a recipe: build, fit, evaluate, record.

Three steps, each usable on its own (a distributed or resumed run replaces
one of them and keeps the others):

- `build_run(recipe)`: seeds everything, loads the data, builds and compiles
  the model -> a `TrainingRun`;
- `fit(run, out_dir)`: trains it with a progress bar, TensorBoard logs, the
  best and the last checkpoint and a per-epoch state file, then restores the
  best weights -> the history;
- `train(recipe, out_dir)`: both, then measures the test metrics and plots
  the training curve -> a `TrainingResult`.

Files under `out_dir`:

```
checkpoints/best.keras   the best epoch by `training.monitor` (model + optimizer)
checkpoints/last.keras   the last finished epoch (model + optimizer)
state.json               epochs done, best epoch and value, history so far
logs/                    TensorBoard (train/ and validation/)
history.json             per-epoch loss and metrics, train and validation
training_curve.png       loss and the main metric, train vs validation
metrics.json             the measured evaluation metrics
recipe.json              the recipe as run (defaults filled in)
.mmzoo-output.json       marks the folder as an mmzoo training run's
```

`out_dir` must be new, empty, or the folder of an earlier run (marked, or
holding a run's `state.json`, `checkpoints/` or `backup/`): a run never
writes its files into a folder of the user's, where they could overwrite
theirs.
"""

import dataclasses
import json
import os
import pathlib
import sys
import time

import keras

from mmzoo.training import distribute
# The run's set-up and callbacks, shared with the distributed loop, live in
# their own modules; their names are importable from here too.
from mmzoo.training.callbacks import AtomicModelCheckpoint, RunState, ScalarLogger
from mmzoo.training.data import load_evaluation_data
from mmzoo.training.evaluate import evaluate_model
from mmzoo.training.plot import plot_history
from mmzoo.training.recipe import FIT_METRICS, Recipe
from mmzoo.training.run import (  # noqa: F401
    COSINE_ALPHA,
    RUN_KIND,
    TrainingRun,
    build_model_for,
    build_run,
    claim_run_folder,
    is_legacy_run_folder,
    make_optimizer,
    set_seed,
)


@dataclasses.dataclass
class TrainingResult:
    """What `train` returns.

    Attributes:
        recipe: the `Recipe` as run.
        model: the trained model (best weights when `training.restore_best`).
        info: the `mmzoo.data.TaskInfo`: `tokenizer`, `label_names`,
            `image_shape`, `sequence_length` (what a preprocessor needs).
        history: `{"loss": [...], "val_loss": [...], ...}` per epoch.
        metrics: the measured evaluation metrics (see `mmzoo.training.evaluate`).
        paths: `{"out_dir", "best_checkpoint", "last_checkpoint", "state",
            "logs", "history", "plot", "metrics", "recipe"}`.
        training_seconds: wall time of the training (distillation and `fit`),
            summed over the processes of a resumed run.
        epochs_run: epochs trained (fewer than asked after early stopping).
        best_epoch: the best epoch (1-based) by `training.monitor`.
        warm_start: the `WarmStart` of `training.init_from` (or `None`).
        distillation: the `mmzoo.training.distill.Distillation` stage of
            `training.distill_*` (or `None`); its time is in `training_seconds`.
    """

    recipe: Recipe
    model: keras.Model
    info: object
    history: dict
    metrics: dict
    paths: dict
    training_seconds: float
    epochs_run: int
    best_epoch: int
    warm_start: object = None
    distillation: object = None

    @property
    def tokenizer(self):
        return self.info.tokenizer

    @property
    def label_names(self):
        return self.info.label_names

    @property
    def image_size(self):
        return self.info.image_shape[0]

    def preprocessor(self):
        """The `mmzoo.data.Preprocessor` of the model's inputs and outputs."""
        from mmzoo.checks import model_input_specs
        from mmzoo.data.preprocessor import Preprocessor

        # Only what the model reads: a model that hears its questions gets no tokenizer.
        return Preprocessor.from_task_info(self.info,
                                           modalities=tuple(model_input_specs(self.model)))

    def entry_metadata(self):
        """The `metadata` of a zoo entry of this run (for `mmzoo.zoo.save_entry`).

        Everything is measured or recorded, nothing typed in: the recipe as
        run, its dataset section with the dataset and TFDS versions, the test
        metrics, and the training's time, epochs, seed, history and machine.
        """
        import platform

        import tensorflow as tf
        import tensorflow_datasets as tfds

        from mmzoo.data.mmzoo_shapes import MmzooShapes

        recipe = self.recipe.to_dict()
        dataset = {**recipe["dataset"], "version": str(MmzooShapes.VERSION),
                   "tfds_version": tfds.__version__}
        training = {
            "seed": self.recipe.training["seed"],
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "seconds": round(self.training_seconds, 1),
            "history": self.history,
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                        "gpus": len(tf.config.list_physical_devices("GPU")),
                        "tensorflow": tf.__version__, "keras": keras.__version__},
        }
        if self.warm_start is not None:
            ws = self.warm_start
            training["warm_start"] = {"source": ws.source, "copied": list(ws.copied),
                                      "fresh": list(ws.skipped),
                                      "copied_weights": ws.copied_weights,
                                      "total_weights": ws.total_weights,
                                      "frozen": ws.frozen,
                                      "source_sha256": ws.source_sha256}
        if self.distillation is not None:
            training["distillation"] = self.distillation.to_dict()
        return {"description": self.recipe.description, "recipe": recipe,
                "dataset": dataset, "metrics": dict(self.metrics), "training": training}


def _verbosity(verbose):
    """Keras's `fit` verbosity for `"auto"`: a progress bar on a terminal; in a log
    file, one line per epoch."""
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return verbose


def fit(run, out_dir, *, verbose="auto", callbacks=()):
    """Trains a `TrainingRun`, with checkpoints, TensorBoard logs and a state file.

    Args:
        run: a `TrainingRun` (from `build_run`).
        out_dir: folder for `checkpoints/`, `logs/` and `state.json`: new,
            empty or an earlier run's (see the module docstring).
        verbose: Keras's `fit` verbosity: `"auto"` (a progress bar on a
            terminal, a line per epoch otherwise), 0, 1 or 2.
        callbacks: more Keras callbacks.

    Returns:
        `(history, state)`: the per-epoch history dict and the `RunState`
        callback (`best_epoch`, `best`, `epochs_done`).
    """
    out = claim_run_folder(out_dir)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    tr = run.recipe.training
    monitor = tr["monitor"]
    state = RunState(out / "state.json", monitor, run.recipe.to_dict(),
                     patience=tr["early_stopping_patience"])
    all_callbacks = [
        AtomicModelCheckpoint(str(out / "checkpoints" / "best.keras"),
                                        monitor=monitor, mode=state.mode, save_best_only=True),
        AtomicModelCheckpoint(str(out / "checkpoints" / "last.keras")),
        ScalarLogger(out / "logs"),
        keras.callbacks.TerminateOnNaN(),
        state,
    ]
    all_callbacks.extend(callbacks)
    verbose = _verbosity(verbose)
    # The streams shuffle themselves (seeded); Keras must not try.
    # A stream holds every epoch's fresh batches in a row: Keras then keeps
    # its iterator across epochs instead of restarting it.
    steps = run.data.steps_per_epoch if run.data.fresh_each_epoch else None
    run.model.fit(run.data.train, validation_data=run.data.validation, epochs=tr["epochs"],
                  shuffle=False, steps_per_epoch=steps,
                  callbacks=all_callbacks, verbose=verbose)
    best = out / "checkpoints" / "best.keras"
    if tr["restore_best"] and best.exists() and state.best_epoch != state.epochs_done:
        run.model.load_weights(best)
    return state.history, state


def train(recipe, out_dir, *, epochs=None, seed=None, data_dir=None, verbose="auto",
          strategy=None, resume=None, backup_every=100):
    """Trains a recipe and measures its model on the evaluation split.

    Deterministic given the recipe and the seed: the same call gives the same
    weights (on the same machine and TensorFlow build).

    Args:
        recipe: a `Recipe` or a recipe file (`.toml` / `.json`).
        out_dir: folder for checkpoints, logs, history, plot and metrics:
            new, empty or an earlier run's (see the module docstring).
        epochs: overrides `training.epochs`.
        seed: overrides `training.seed` (model initialisation and shuffling;
            the data itself follows `dataset.seed`).
        data_dir: TFDS folder, overriding `dataset.data_dir`.
        verbose: `fit` verbosity (`"auto"`, 0, 1, 2); 0 also silences the
            summary lines.
        strategy: `None` (Keras `fit` on one device), or a
            `tf.distribute.Strategy` or its name (`"default"`, `"mirrored"`,
            `"multiworker"`, `"tpu"`, see `mmzoo.training.distribute`): trains
            with the resumable `strategy.run` loop.
        resume: `None` (Keras `fit`, no backups unless `strategy` is set),
            `"auto"` (continue from the backup in `out_dir` if there is one),
            `True` (there must be one) or `False` (start afresh). Anything but
            `None` uses the resumable loop.
        backup_every: steps between backups of the resumable loop (and at
            each epoch's end).

    Returns:
        A `TrainingResult`.

    Example:

    ```python
    result = mmzoo.training.train("recipes/tiny_vqa.toml", "runs/tiny")
    result.metrics["accuracy_colour"], result.paths["best_checkpoint"]
    ```
    """
    # Before anything is built or written: a user's folder is refused untouched.
    out = claim_run_folder(out_dir)
    say = print if verbose else (lambda *a, **k: None)
    stepwise = strategy is not None or resume is not None
    if stepwise:
        if strategy is None or isinstance(strategy, str):
            strategy = distribute.get_strategy(strategy or "default")
        if resume not in (None, "auto", True, False):
            raise ValueError("resume must be None, 'auto', True or False. "
                             f"Received: resume={resume!r}")
        if resume is True and not distribute.has_backup(out):
            raise ValueError(f"There is no backup to resume from in {str(out)!r}. "
                             f"Received: resume=True")
        # Non-chief workers of a cluster write beside the chief, not over it.
        out = claim_run_folder(distribute.worker_dir(out))
        run = distribute.build_distributed_run(recipe, strategy, epochs=epochs, seed=seed,
                                               data_dir=data_dir)
    else:
        run = build_run(recipe, epochs=epochs, seed=seed, data_dir=data_dir)
    recipe = run.recipe
    say(f"mmzoo train: {recipe.name} ({recipe.task}), {run.model.count_params():,} parameters, "
        f"{run.data.num_train_examples} training examples, {recipe.training['epochs']} "
        f"epochs of {run.data.steps_per_epoch} steps, seed {recipe.training['seed']}")
    if run.warm_start is not None:
        say(f"mmzoo train: {run.warm_start.summary()}")
    rates = run.data.word_rates
    if rates:
        if len(set(rates.values())) == 1:
            shown, more = f"every word {next(iter(rates.values())):.2f}", ""
        else:
            shown = ", ".join(f"{w!r} {r:.2f}" for w, r in list(rates.items())[:8])
            more = f" and {len(rates) - 8} more words" if len(rates) > 8 else ""
        first_epoch, epochs = (recipe.training[k] for k in ("word_dropout_from_epoch", "epochs"))
        since = f", from epoch {first_epoch}" if first_epoch > 1 else ""
        say(f"mmzoo train: training text read with words dropped (word_dropout "
            f"{recipe.training['word_dropout']}, word_subsampling "
            f"{recipe.training['word_subsampling']}{since}): {shown}{more}")
        if first_epoch > epochs:
            say(f"mmzoo train: note: word dropout starts at epoch {first_epoch}, after this "
                f"run's {epochs} epoch{'s' if epochs > 1 else ''}: every epoch reads whole texts")
    start = time.perf_counter()
    distillation = None
    if recipe.training["distill_epochs"]:
        from mmzoo.training.distill import distill_run

        say(f"mmzoo train: distilling {recipe.training['init_from']}'s "
            f"{recipe.training['distill_from']} branch into the new "
            f"{recipe.training['distill_to']} branch ({recipe.training['distill_epochs']} epochs)")
        distillation = distill_run(run, out, data_dir=data_dir, verbose=_verbosity(verbose),
                                   strategy=strategy if stepwise else None)
        say(f"mmzoo train: {distillation.summary()}")
    if stepwise:
        history, state = distribute.fit_steps(run, out, strategy=strategy,
                                              resume=resume is not False,
                                              backup_every=backup_every, verbose=verbose)
    else:
        history, state = fit(run, out, verbose=verbose)
    # A resumed run adds the time its earlier processes spent: the fit's, from
    # the backup, and a distillation stage finished before and read back.
    seconds = time.perf_counter() - start + state.earlier_seconds
    if distillation is not None and distillation.resumed:
        seconds += distillation.seconds

    say(f"mmzoo train: evaluating on the {recipe.evaluation['split']} split")
    data = load_evaluation_data(recipe, data_dir=data_dir)
    metrics = evaluate_model(run.model, data, recipe, run.info)

    paths = {
        "out_dir": str(out),
        "best_checkpoint": str(out / "checkpoints" / "best.keras"),
        "last_checkpoint": str(out / "checkpoints" / "last.keras"),
        "state": str(out / "state.json"),
        "logs": str(out / "logs"),
        "history": str(out / "history.json"),
        "plot": str(out / "training_curve.png"),
        "metrics": str(out / "metrics.json"),
        "recipe": str(out / "recipe.json"),
    }
    pathlib.Path(paths["history"]).write_text(json.dumps(history, indent=1))
    pathlib.Path(paths["metrics"]).write_text(json.dumps(metrics, indent=1))
    pathlib.Path(paths["recipe"]).write_text(json.dumps(recipe.to_dict(), indent=1))
    main_metric = next((m for m in FIT_METRICS[recipe.task] if m != "loss"), None)
    plot_history(history, paths["plot"], metric=main_metric,
                 title=f"{recipe.name}: {recipe.task} on mmzoo-shapes",
                 best_epoch=state.best_epoch if recipe.training["restore_best"] else None,
                 distillation=distillation.history if distillation is not None else None)
    say("mmzoo train: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
    return TrainingResult(recipe=recipe, model=run.model, info=run.info, history=history,
                          metrics=metrics, paths=paths, training_seconds=seconds,
                          epochs_run=state.epochs_done, best_epoch=state.best_epoch,
                          warm_start=run.warm_start, distillation=distillation)
