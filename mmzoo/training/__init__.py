"""Training from recipes: reproducible runs that measure what a model card reports.

A recipe file (`recipes/*.toml`) holds everything a zoo entry's training
needs: data, `build_model` options, training settings and the metrics to
measure. `train` runs it deterministically from its seed and returns the
model, the data facts a preprocessor needs, the history and the measured
test metrics; `mmzoo train RECIPE` also writes the zoo entry.

Example:

```python
from mmzoo import training

recipe = training.load_recipe("recipes/mobile_vqa.toml")
result = training.train(recipe, "mmzoo_runs/mobile_vqa", epochs=2)
result.metrics          # {"accuracy": ..., "accuracy_colour": ..., ...}
result.paths["plot"]    # the training curve
```

The run is three steps (`build_run`, `fit`, then evaluation) so that a
resumed or distributed run can replace one of them.
"""

from mmzoo.training.data import (
    EvaluationData,
    TrainingData,
    load_evaluation_data,
    load_training_data,
)
from mmzoo.training.evaluate import evaluate_model
from mmzoo.training.loop import (
    RunState,
    ScalarLogger,
    TrainingResult,
    TrainingRun,
    build_model_for,
    build_run,
    fit,
    make_optimizer,
    set_seed,
    train,
)
from mmzoo.training.plot import plot_history
from mmzoo.training.recipe import SCHEMA, Recipe, RecipeError, load_recipe

__all__ = [
    "EvaluationData",
    "Recipe",
    "RecipeError",
    "RunState",
    "SCHEMA",
    "ScalarLogger",
    "TrainingData",
    "TrainingResult",
    "TrainingRun",
    "build_model_for",
    "build_run",
    "evaluate_model",
    "fit",
    "load_evaluation_data",
    "load_recipe",
    "load_training_data",
    "make_optimizer",
    "plot_history",
    "set_seed",
    "train",
]
