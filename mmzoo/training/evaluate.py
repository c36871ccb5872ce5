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
position. The spoken problems (`dataset.problem = "spoken_vqa"`,
`"spoken_matching"`) add `accuracy_voice_<voice>` for each voice of
`mmzoo.data.speech.VOICE_NAMES` in the split, `accuracy_train_voices` and
`accuracy_held_out_voices` (voices never heard in training). Every result
also has `num_examples`.
"""

from mmzoo.data import problems
from mmzoo.registry import TASKS


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
    task, problem = TASKS.get(recipe.task), problems.get(recipe.problem)
    if task.generative:
        return _captioning(model, data, recipe, info, wanted, batch_size)
    outputs = model.predict(data.inputs, batch_size=batch_size, verbose=0)
    groups = {g.metric: g.groups(data.groups[g.field])
              for g in problem.group_metrics if g.field in data.groups}
    return task.measure_outputs(outputs, data.labels, wanted=wanted, groups=groups)


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
