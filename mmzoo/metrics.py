"""Task metrics on NumPy predictions: the numbers a model card reports.

One implementation, used by training (`mmzoo.training`) to measure a run and by
the zoo (`mmzoo.zoo`) to re-measure an entry, so card and re-measurement agree
key for key.

| task | metrics (keys) |
|---|---|
| classification (VQA) | `accuracy`, `accuracy_<question type>`, `loss` |
| binary (matching) | `accuracy`, `auc`, `accuracy_perturbation_<kind>`, `loss` |
| multilabel | `micro_f1`, `binary_accuracy`, `auc`, `loss` |
| regression (count) | `mae`, `count_accuracy` (rounded prediction right), `loss` (MSE) |

Spoken VQA and matching add `accuracy_voice_<voice>` per voice and
`accuracy_train_voices`, `accuracy_held_out_voices` (`voices=`).
Every result also has `num_examples`. Captioning metrics (BLEU, CIDEr-D) are
in `mmzoo.captioning.metrics`.
"""

from mmzoo.registry import TASKS
from mmzoo.tasks.base import auc  # noqa: F401  (public here since before tasks owned metrics)

#: `{task: metric names}` that `task_metrics` measures, read from the tasks
#: (`Task.eval_metrics`; captioning's are measured by `mmzoo.captioning.metrics`).
ALL_METRICS = TASKS.table("eval_metrics")


def task_metrics(task, pred, y, *, wanted=None, question_types=None, perturbations=None,
                 voices=None):
    """Measures `task`'s metrics of predictions `pred` against labels `y`.

    Args:
        task: a registered task name (`"classification"`, `"binary"`,
            `"multilabel"`, `"regression"`, ...); its `Task.measure` measures.
        pred: the model's output, `(N, outputs)`, or its outputs as
            `predict` returns them (a dict; a dual encoder has two).
        y: the labels, in the formats of `mmzoo.data.pipeline`.
        wanted: names from `ALL_METRICS[task]` to measure (default: all).
        question_types: per-example question type ids, for
            `"per_question_type"` (names: `mmzoo.data.shapes.QUESTION_TYPES`).
        perturbations: per-example perturbation ids of matching captions,
            for `"per_perturbation"` (names: `mmzoo.data.shapes.PERTURBATIONS`).
        voices: per-example voice ids of spoken inputs, for `"per_voice"`
            (names: `mmzoo.data.speech.VOICE_NAMES`).

    Returns:
        A flat dict of floats (see the module table).
    """
    from mmzoo.data import problems, shapes

    task = TASKS.get(task)
    groups = {}
    if question_types is not None:
        groups["per_question_type"] = (question_types, shapes.QUESTION_TYPES)
    if perturbations is not None:
        groups["per_perturbation"] = (perturbations, shapes.PERTURBATIONS)
    if voices is not None:
        groups["per_voice"] = problems.PER_VOICE.groups(voices)
    return task.measure_outputs(pred, y, wanted=wanted, groups=groups)
