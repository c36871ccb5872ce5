"""The `"classification"` task: one class per example (a softmax over `num_classes`).

The benchmark's VQA problems feed it (`mmzoo.data.problems`: written and
spoken questions), and so does any data set with one named label per example.
"""

import numpy as np

from mmzoo.registry import TASKS
from mmzoo.tasks.base import _EPS, ClassTask, NamedLabelsTask, per_group


@TASKS.register
class ClassificationTask(NamedLabelsTask, ClassTask):
    name = "classification"
    display_name = "classification (softmax)"
    loss = "sparse_categorical_crossentropy"
    metrics = ("accuracy",)
    label_format = "index"
    eval_metrics = ("accuracy", "per_question_type", "per_voice", "loss")
    fit_metrics = ("loss", "accuracy")
    decision = "argmax"
    meta_activation = "softmax"
    stackable = True
    example_text = 'texts="what colour is the circle?"'
    result_description = "[(label, score), ...] per example, best first"

    def check_options(self, resolved):
        if resolved.get("num_classes") == 1:
            raise ValueError(
                "task='classification' is a softmax over `num_classes`: with one class it "
                "always outputs 1.0. Use task='binary' (a sigmoid) for yes/no, or "
                "num_classes >= 2. Received: num_classes=1")

    def decode_scores(self, scores, label_names, *, top_k, threshold):
        k = min(int(top_k), scores.shape[1])
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return [[(label_names[j], float(row[j])) for j in idx]
                for row, idx in zip(scores, order)]

    def nudge(self, pred, y, amount):
        moved = np.array(pred, np.float64)
        moved[np.arange(len(moved)), np.asarray(y).reshape(-1).astype(int)] += amount
        return moved

    def compute_metrics(self, pred, y, wanted, groups):
        metrics = {}
        correct = self.decide(pred) == y
        if "accuracy" in wanted:
            metrics["accuracy"] = float(correct.mean())
        if "per_question_type" in wanted and "per_question_type" in groups:
            metrics.update(per_group(correct, groups["per_question_type"], "accuracy_"))
        if "per_voice" in wanted and "per_voice" in groups:  # spoken VQA
            metrics.update(per_group(correct, groups["per_voice"], "accuracy_voice_"))
        if "loss" in wanted:
            p = pred[np.arange(len(y)), y.astype(int)]
            metrics["loss"] = float(-np.log(np.clip(p, _EPS, 1.0)).mean())
        return metrics
