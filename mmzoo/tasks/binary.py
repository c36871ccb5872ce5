"""The `"binary"` task: yes or no per example (one sigmoid output).

The benchmark's matching problems (does the caption, written or spoken, describe
the image?) feed it.
"""

import numpy as np

from mmzoo.registry import TASKS
from mmzoo.tasks.base import ClassTask, auc, binary_crossentropy, per_group


@TASKS.register
class BinaryTask(ClassTask):
    name = "binary"
    display_name = "binary (sigmoid)"
    loss = "binary_crossentropy"
    metrics = ("accuracy", "auc")
    label_format = "boolean"
    eval_metrics = ("accuracy", "auc", "per_perturbation", "per_voice", "loss")
    fit_metrics = ("loss", "accuracy", "auc")
    decision = "threshold"
    meta_activation = "sigmoid"
    stackable = True
    example_text = 'texts="a red circle to the left of a blue square"'
    result_description = "(probability, bool) per example"

    def decode_scores(self, scores, label_names, *, top_k, threshold):
        return [(float(p), bool(p >= threshold)) for p in scores[:, 0]]

    def describe(self, result):
        probability, decision = result
        return [f"  {'yes' if decision else 'no'}  (probability {probability:.3f})"]

    def compute_metrics(self, pred, y, wanted, groups):
        metrics = {}
        p, t = pred[:, 0], y[:, 0]
        correct = self.decide(pred)[:, 0] == (t >= 0.5)
        if "accuracy" in wanted:
            metrics["accuracy"] = float(correct.mean())
        if "auc" in wanted:
            metrics["auc"] = auc(t, p)
        if "per_perturbation" in wanted and "per_perturbation" in groups:
            metrics.update(per_group(correct, groups["per_perturbation"], "accuracy_perturbation_"))
        if "per_voice" in wanted and "per_voice" in groups:  # spoken matching
            metrics.update(per_group(correct, groups["per_voice"], "accuracy_voice_"))
        if "loss" in wanted:
            metrics["loss"] = binary_crossentropy(t, p)
        return metrics

    def class_votes(self, probabilities):
        return 2, self.decide(probabilities)[:, 0].astype("int64")

    def target_count(self, output):
        return 2

    def predicted_targets(self, output):
        return self.decide(output)[:, 0].astype(int)

    def target_score(self, output, index):
        from keras import ops

        p = output[:, 0]
        sign = ops.convert_to_tensor(np.asarray(index).astype("float32"))
        return sign * p + (1.0 - sign) * (1.0 - p)

    def answer(self, label_names, target):
        if label_names is not None:
            return label_names[target]
        return "true" if target else "false"
