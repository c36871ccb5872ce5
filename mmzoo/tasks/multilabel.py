"""The `"multilabel"` task: any number of named labels per example (a sigmoid each).

The benchmark's attributes problem (which colours and shapes are in the
scene?) feeds it.
"""

import numpy as np

from mmzoo.registry import TASKS
from mmzoo.tasks.base import NamedLabelsTask, auc, binary_crossentropy


@TASKS.register
class MultilabelTask(NamedLabelsTask):
    name = "multilabel"
    display_name = "multi-label (sigmoid per label)"
    loss = "binary_crossentropy"
    metrics = ("binary_accuracy", "auc")
    label_format = "multi_hot"
    eval_metrics = ("micro_f1", "binary_accuracy", "auc", "loss")
    fit_metrics = ("loss", "binary_accuracy", "auc")
    decision = "threshold"
    meta_activation = "sigmoid"
    stackable = True
    example_text = 'texts="what is in the picture?"'
    result_description = "[(label, score), ...] above 0.5 per example"

    def decode_scores(self, scores, label_names, *, top_k, threshold):
        results = []
        for row in scores:
            idx = [j for j in np.argsort(-row, kind="stable") if row[j] >= threshold]
            results.append([(label_names[j], float(row[j])) for j in idx])
        return results

    def compute_metrics(self, pred, y, wanted, groups):
        metrics = {}
        hits, truth = self.decide(pred), y >= 0.5
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
            metrics["loss"] = binary_crossentropy(truth, pred)
        return metrics
