"""mmzoo.metrics: the numbers model cards report."""

import numpy as np
import pytest

from mmzoo import metrics


def test_auc_by_rank_statistic_with_ties():
    t = np.array([0, 0, 1, 1])
    assert metrics.auc(t, np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert metrics.auc(t, np.array([0.5, 0.5, 0.5, 0.5])) == pytest.approx(0.5)
    assert np.isnan(metrics.auc(np.ones(3), np.array([0.1, 0.2, 0.3])))


def test_classification_accuracy_per_question_type_and_loss():
    pred = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    y = np.array([0, 1, 1, 1])
    out = metrics.task_metrics("classification", pred, y, question_types=np.array([0, 0, 4, 4]))
    assert out["accuracy"] == 0.75
    assert out["accuracy_colour"] == 1.0 and out["accuracy_relational"] == 0.5
    assert "accuracy_shape" not in out  # no examples of that type: no key
    assert out["loss"] == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.4, 0.7])))
    assert out["num_examples"] == 4


def test_binary_multilabel_regression_and_wanted():
    out = metrics.task_metrics("binary", np.array([[0.9], [0.2], [0.6]]),
                               np.array([[1.0], [0.0], [0.0]]), wanted=["accuracy"])
    assert out == {"num_examples": 3, "accuracy": pytest.approx(2 / 3)}
    ml = metrics.task_metrics("multilabel", np.array([[0.9, 0.1], [0.8, 0.7]]),
                              np.array([[1.0, 0.0], [1.0, 0.0]]))
    assert ml["micro_f1"] == pytest.approx(2 * 2 / (3 + 2))
    assert ml["binary_accuracy"] == 0.75
    reg = metrics.task_metrics("regression", np.array([[2.2], [3.6]]), np.array([[2.0], [3.0]]))
    assert reg["mae"] == pytest.approx(0.4) and reg["count_accuracy"] == 0.5
    with pytest.raises(ValueError, match="Received: task='captioning'"):
        metrics.task_metrics("captioning", np.zeros((1, 1)), np.zeros((1, 1)))
