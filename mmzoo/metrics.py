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

Every result also has `num_examples`. Captioning metrics (BLEU, CIDEr-D) are
in `mmzoo.captioning.metrics`.
"""

import numpy as np

_EPS = 1e-7
ALL_METRICS = {
    "classification": ("accuracy", "per_question_type", "loss"),
    "binary": ("accuracy", "auc", "per_perturbation", "loss"),
    "multilabel": ("micro_f1", "binary_accuracy", "auc", "loss"),
    "regression": ("mae", "count_accuracy", "loss"),
}


def task_metrics(task, pred, y, *, wanted=None, question_types=None, perturbations=None):
    """Measures `task`'s metrics of predictions `pred` against labels `y`.

    Args:
        task: `"classification"`, `"binary"`, `"multilabel"` or `"regression"`.
        pred: the model's output, `(N, outputs)`.
        y: the labels, in the formats of `mmzoo.data.pipeline`.
        wanted: names from `ALL_METRICS[task]` to measure (default: all).
        question_types: per-example question type ids, for
            `"per_question_type"` (names: `mmzoo.data.shapes.QUESTION_TYPES`).
        perturbations: per-example perturbation ids of matching captions,
            for `"per_perturbation"` (names: `mmzoo.data.shapes.PERTURBATIONS`).

    Returns:
        A flat dict of floats (see the module table).
    """
    from mmzoo.data import shapes

    if task not in ALL_METRICS:
        raise ValueError(f"`task` must be one of {', '.join(map(repr, ALL_METRICS))}. "
                         f"Received: task={task!r}")
    wanted = set(ALL_METRICS[task] if wanted is None else wanted)
    pred = np.asarray(pred, np.float64)
    y = np.asarray(y)
    metrics = {"num_examples": int(len(y))}
    if task == "classification":
        correct = pred.argmax(-1) == y
        if "accuracy" in wanted:
            metrics["accuracy"] = float(correct.mean())
        if "per_question_type" in wanted and question_types is not None:
            metrics.update(_per_group(correct, np.asarray(question_types),
                                      shapes.QUESTION_TYPES, "accuracy_"))
        if "loss" in wanted:
            p = pred[np.arange(len(y)), y.astype(int)]
            metrics["loss"] = float(-np.log(np.clip(p, _EPS, 1.0)).mean())
    elif task == "binary":
        p, t = pred[:, 0], y[:, 0]
        correct = (p >= 0.5) == (t >= 0.5)
        if "accuracy" in wanted:
            metrics["accuracy"] = float(correct.mean())
        if "auc" in wanted:
            metrics["auc"] = auc(t, p)
        if "per_perturbation" in wanted and perturbations is not None:
            metrics.update(_per_group(correct, np.asarray(perturbations),
                                      shapes.PERTURBATIONS, "accuracy_perturbation_"))
        if "loss" in wanted:
            metrics["loss"] = _bce(t, p)
    elif task == "multilabel":
        hits, truth = pred >= 0.5, y >= 0.5
        if "micro_f1" in wanted:
            tp = np.sum(hits & truth)
            metrics["micro_f1"] = float(2 * tp / max(hits.sum() + truth.sum(), 1))
        if "binary_accuracy" in wanted:
            metrics["binary_accuracy"] = float((hits == truth).mean())
        if "auc" in wanted:
            # Macro over labels, as keras.metrics.AUC(multi_label=True).
            aucs = [auc(truth[:, j], pred[:, j]) for j in range(y.shape[1])
                    if 0 < truth[:, j].sum() < len(y)]
            metrics["auc"] = float(np.mean(aucs)) if aucs else float("nan")
        if "loss" in wanted:
            metrics["loss"] = _bce(truth, pred)
    else:  # regression
        p, t = pred[:, 0], y[:, 0]
        if "mae" in wanted:
            metrics["mae"] = float(np.abs(p - t).mean())
        if "count_accuracy" in wanted:
            metrics["count_accuracy"] = float((np.round(p) == t).mean())
        if "loss" in wanted:
            metrics["loss"] = float(((p - t) ** 2).mean())
    return metrics


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


def _per_group(correct, groups, names, prefix):
    """Accuracy of each group id (named by `names`); absent groups are left out."""
    out = {}
    for i, name in enumerate(names):
        mask = groups == i
        if mask.any():
            out[prefix + name] = float(correct[mask].mean())
    return out


def _bce(t, p):
    p = np.clip(p, _EPS, 1 - _EPS)
    return float(-(t * np.log(p) + (1 - t) * np.log(1 - p)).mean())
