"""Metrics measured on the evaluation split, per task.

| task | metrics (keys) |
|---|---|
| classification (VQA) | `accuracy`, `accuracy_<question type>`, `loss` |
| binary (matching) | `accuracy`, `auc`, `accuracy_perturbation_<kind>`, `loss` |
| multilabel | `micro_f1`, `binary_accuracy`, `auc`, `loss` |
| regression (count) | `mae`, `count_accuracy` (rounded prediction right), `loss` (MSE) |
| captioning | `bleu_1` .. `bleu_4`, `cider_d` (greedy or beam search) |

Question types: colour, shape, count, existence, relational. Perturbation
kinds: none (the true captions), colour, shape, size, count, relation,
position. Every result also has `num_examples`.
"""

import numpy as np

from mmzoo.data import shapes

_EPS = 1e-7


def evaluate_model(model, data, recipe, info=None):
    """Measures the recipe's `evaluation.metrics` of `model` on `data`.

    Args:
        model: the trained model.
        data: an `EvaluationData` (see `load_evaluation_data`).
        recipe: the `Recipe` (task and evaluation settings).
        info: the `TaskInfo` (captioning: its tokenizer writes the captions).

    Returns:
        A flat dict of floats (see the module table).
    """
    wanted = set(recipe.evaluation["metrics"])
    batch_size = recipe.evaluation["batch_size"]
    if recipe.task == "captioning":
        return _captioning(model, data, recipe, info, wanted, batch_size)
    outputs = model.predict(data.inputs, batch_size=batch_size, verbose=0)
    pred = np.asarray(next(iter(outputs.values())), np.float64)
    y = data.labels
    metrics = {"num_examples": int(len(y))}
    if recipe.task == "classification":
        correct = pred.argmax(-1) == y
        if "accuracy" in wanted:
            metrics["accuracy"] = float(correct.mean())
        if "per_question_type" in wanted:
            metrics.update(_per_group(correct, data.groups["question_type"],
                                      shapes.QUESTION_TYPES, "accuracy_"))
        if "loss" in wanted:
            p = pred[np.arange(len(y)), y.astype(int)]
            metrics["loss"] = float(-np.log(np.clip(p, _EPS, 1.0)).mean())
    elif recipe.task == "binary":
        p, t = pred[:, 0], y[:, 0]
        correct = (p >= 0.5) == (t >= 0.5)
        if "accuracy" in wanted:
            metrics["accuracy"] = float(correct.mean())
        if "auc" in wanted:
            metrics["auc"] = _auc(t, p)
        if "per_perturbation" in wanted:
            metrics.update(_per_group(correct, data.groups["perturbation"],
                                      shapes.PERTURBATIONS, "accuracy_perturbation_"))
        if "loss" in wanted:
            metrics["loss"] = _bce(t, p)
    elif recipe.task == "multilabel":
        hits = pred >= 0.5
        truth = y >= 0.5
        if "micro_f1" in wanted:
            tp = np.sum(hits & truth)
            metrics["micro_f1"] = float(2 * tp / max(hits.sum() + truth.sum(), 1))
        if "binary_accuracy" in wanted:
            metrics["binary_accuracy"] = float((hits == truth).mean())
        if "auc" in wanted:
            # Macro over labels, as keras.metrics.AUC(multi_label=True).
            aucs = [_auc(truth[:, j], pred[:, j]) for j in range(y.shape[1])
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


def _per_group(correct, groups, names, prefix):
    """Accuracy of each group id (named by `names`); groups absent from the data are left out."""
    out = {}
    for i, name in enumerate(names):
        mask = groups == i
        if mask.any():
            out[prefix + name] = float(correct[mask].mean())
    return out


def _bce(t, p):
    p = np.clip(p, _EPS, 1 - _EPS)
    return float(-(t * np.log(p) + (1 - t) * np.log(1 - p)).mean())


def _auc(t, p):
    """ROC AUC by the rank statistic (ties count half)."""
    t = np.asarray(t) >= 0.5
    pos, neg = t.sum(), (~t).sum()
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(len(p))
    sorted_p = np.asarray(p)[order]
    # Average ranks over ties.
    _, first, counts = np.unique(sorted_p, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[t].sum() - pos * (pos + 1) / 2) / (pos * neg))


def _captioning(model, data, recipe, info, wanted, batch_size):
    from mmzoo.captioning import CaptionGenerator, caption_metrics

    ev = recipe.evaluation
    generator = CaptionGenerator(model, info.tokenizer)
    kwargs = {"method": ev["decoding"]}
    if ev["decoding"] == "beam":
        kwargs.update(beam_width=ev["beam_width"], length_penalty=ev["length_penalty"])
    captions = generator(data.images, batch_size=min(batch_size, 64), **kwargs)
    scores = caption_metrics(captions.texts, data.references)
    metrics = {"num_examples": len(data.images)}
    if "bleu" in wanted:
        metrics.update({f"bleu_{n}": float(scores[f"bleu_{n}"]) for n in range(1, 5)})
    if "cider_d" in wanted:
        metrics["cider_d"] = float(scores["cider_d"])
    return metrics
