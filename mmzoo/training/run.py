"""A training run's set-up: its folder, its seed, its model and its data.

`build_run(recipe)` is the first of a run's three steps (see
`mmzoo.training.loop`): it seeds everything, builds and compiles the recipe's
model, then loads its data -> a `TrainingRun`. `claim_run_folder` makes sure
a run writes only into a folder of its own. Keras `fit`
(`mmzoo.training.loop`) and the distributed step loop
(`mmzoo.training.distribute`) both start from here.
"""

import dataclasses
import pathlib
import re

import keras

from mmzoo._folders import claim_folder
from mmzoo.training.data import load_training_data, rows_per_scene
from mmzoo.training.recipe import Recipe, RecipeError, load_recipe

# The cosine schedule's final learning rate, as a fraction of the first.
COSINE_ALPHA = 0.05
RUN_KIND = "training run"
# What a run folder of an earlier mmzoo (without the marker) holds.
_RUN_FILES = ("state.json", "checkpoints", "backup", "steps.jsonl", "recipe.json", "history.json")


def is_legacy_run_folder(path):
    """Whether an unmarked folder holds what an mmzoo training run writes.

    That includes a chief's folder that so far holds only the `worker-<i>`
    folders of a cluster's other workers (they may start writing first).
    """
    path = pathlib.Path(path)
    if any((path / name).exists() for name in _RUN_FILES):
        return True
    children = list(path.iterdir())
    return bool(children) and all(
        p.is_dir() and re.fullmatch(r"worker-\d+", p.name) for p in children)


def claim_run_folder(out_dir, argument="out_dir"):
    """Creates (or accepts) a run folder and marks it as mmzoo's; returns its `Path`.

    Raises:
        FileExistsError: `out_dir` is a file, or a folder holding files that
            are not an mmzoo run's (nothing is written into it).
    """
    out = claim_folder(out_dir, RUN_KIND, legacy=is_legacy_run_folder, argument=argument,
                       what="a training run")
    # A kill between writing and renaming the state leaves this behind.
    (out / "state.tmp").unlink(missing_ok=True)
    return out


@dataclasses.dataclass
class TrainingRun:
    """A model and its data, ready to fit.

    Attributes:
        recipe: the `Recipe`.
        model: the compiled model.
        data: the `TrainingData` (streams, `info`, steps per epoch).
        data_dir: the TFDS folder in use (or `None`: the default).
        warm_start: the `WarmStart` of `training.init_from` (or `None`).
    """

    recipe: Recipe
    model: keras.Model
    data: object
    data_dir: str = None
    warm_start: object = None

    @property
    def info(self):
        """The `mmzoo.data.TaskInfo`: tokenizer, label names, image shape."""
        return self.data.info


def _as_recipe(recipe):
    return recipe if isinstance(recipe, Recipe) else load_recipe(recipe)


def set_seed(recipe):
    """Seeds Python, NumPy, Keras and TF from `training.seed` (and op determinism if asked)."""
    import tensorflow as tf

    keras.utils.set_random_seed(recipe.training["seed"])
    if recipe.training["deterministic_ops"]:
        tf.config.experimental.enable_op_determinism()


def make_optimizer(recipe, steps_per_epoch):
    """The recipe's optimizer, with its learning-rate schedule."""
    tr = recipe.training
    learning_rate = tr["learning_rate"]
    if tr["lr_schedule"] == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=max(tr["epochs"] * steps_per_epoch, 1),
            alpha=COSINE_ALPHA)
    optimizer_class = type(keras.optimizers.get(tr["optimizer"]))
    return optimizer_class(learning_rate=learning_rate)


def build_model_for(recipe, steps_per_epoch=1):
    """Builds and compiles the recipe's model (`build_model` with data and training options)."""
    from mmzoo.tasks import build_model

    # Layers take the global dtype policy when they are made: set it for the
    # build only, so the caller's own policy is left as it was.
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(recipe.training["precision"])
    try:
        return build_model(recipe.task, **recipe.architecture_options(),
                           optimizer=make_optimizer(recipe, steps_per_epoch),
                           jit_compile=recipe.training["jit_compile"])
    finally:
        keras.config.set_dtype_policy(previous)


def build_run(recipe, *, epochs=None, seed=None, data_dir=None):
    """Seeds, loads the data and builds the model of a recipe.

    Args:
        recipe: a `Recipe` or a recipe file.
        epochs: overrides `training.epochs`.
        seed: overrides `training.seed`.
        data_dir: TFDS folder, overriding `dataset.data_dir`.

    Returns:
        A `TrainingRun`.
    """
    recipe = _as_recipe(recipe).replace(epochs=epochs, seed=seed)
    set_seed(recipe)
    # The model first: a build-time error (e.g. VGG16 on 16 px images) comes
    # before any data is generated.
    steps = -(-recipe.dataset["num_train"] * rows_per_scene(recipe)
              // recipe.training["batch_size"])
    try:
        model = build_model_for(recipe, steps)
    except (TypeError, ValueError) as e:
        raise RecipeError(f"{recipe.path or '<recipe>'}: [model] {e}") from e
    start = None
    if recipe.training["init_from"]:
        from mmzoo.training.warm_start import warm_start

        try:
            start = warm_start(model, recipe.training["init_from"],
                               freeze=recipe.training["freeze"] == "copied")
        except ValueError as e:
            raise RecipeError(f"{recipe.path or '<recipe>'}: [training] {e}") from e
    data = load_training_data(recipe, data_dir=data_dir)
    return TrainingRun(recipe=recipe, model=model, data=data, data_dir=data_dir,
                       warm_start=start)
