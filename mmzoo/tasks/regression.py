"""The `"regression"` task: real numbers per example (a linear output).

The benchmark's count problem (how many shapes?) feeds it.
"""

import numpy as np

from mmzoo.registry import TASKS
from mmzoo.tasks.base import Task


@TASKS.register
class RegressionTask(Task):
    name = "regression"
    display_name = "regression (linear)"
    loss = "mean_squared_error"
    metrics = ("mean_absolute_error",)
    label_format = "number"
    eval_metrics = ("mae", "count_accuracy", "loss")
    fit_metrics = ("loss", "mean_absolute_error")
    decision = None
    meta_activation = None
    stackable = True
    example_text = 'texts="how many shapes are there?"'
    result_description = "a number per example"

    def describe(self, result):
        values = result if isinstance(result, list) else [result]
        return ["  " + ", ".join(f"{v:.3f}" for v in values)]

    def decide(self, pred):
        # A count is answered by rounding the regressed number.
        return np.round(np.asarray(pred))

    def nudge(self, pred, y, amount):
        # Rounding moves a count in proportion to its size; never past the label.
        gap = np.asarray(y, np.float64).reshape(pred.shape) - pred
        step = abs(amount) * np.maximum(1.0, np.abs(pred))
        if amount >= 0:
            return pred + np.sign(gap) * np.minimum(step, np.abs(gap))
        return pred - np.where(gap >= 0, 1.0, -1.0) * step

    def compute_metrics(self, pred, y, wanted, groups):
        metrics = {}
        p, t = pred[:, 0], y[:, 0]
        if "mae" in wanted:
            metrics["mae"] = float(np.abs(p - t).mean())
        if "count_accuracy" in wanted:
            metrics["count_accuracy"] = float((self.decide(pred)[:, 0] == t).mean())
        if "loss" in wanted:
            metrics["loss"] = float(((p - t) ** 2).mean())
        return metrics

    def predicted_targets(self, output):
        return np.zeros(len(output), int)

    def target_score(self, output, index):
        return output[:, 0]

    def answer(self, label_names, target):
        return str(int(target))
