"""Every shipped entry meets the bars its issue set, on its card and in what it measures again."""

import json
import os
import pathlib

import numpy as np
import pytest

import mmzoo
from mmzoo.zoo import entry as entry_lib
from mmzoo.zoo.evaluation import card_differences

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHIPPED = sorted(p.name for p in (ROOT / "saved_models").iterdir()
                 if (p / "metadata.json").is_file())

# name -> (minimum metrics on the card, minimum test examples, training budget in seconds
# on 2 CPU cores). An entry of the zoo that is not listed has no bar of its own.
BARS = {
    "shapes_vqa": ({"accuracy_colour": 0.95, "accuracy_shape": 0.95, "accuracy_count": 0.95,
                    "accuracy_existence": 0.95, "accuracy_relational": 0.90}, 5000, 5400),
    "mobile_vqa": ({"accuracy": 0.85}, 2000, 5400),
    "shapes_matching": ({"accuracy": 0.95}, 2000, 5400),
    "shapes_captioner": ({"bleu_4": 0.70}, 1000, 5400),
    "document_vqa": ({}, 2000, 7200),
    "shapes_retrieval": ({}, 1000, 3600),
    # Issue 16: within 5 points of shapes_vqa per question type (its own test below).
    "shapes_spoken_vqa": ({}, 5000, 5400),
}
# Card numbers other CPUs measured differently: each must lie in its near-tie range here.
MEASURED_ELSEWHERE = {
    # CI's CPU, stop 25 (the card: 0.5425, measured on an AVX-512 machine in bfloat16).
    "document_vqa": {"accuracy_colour": 0.5435435435435435},
}
# Entries kept from before the bars, each for a stated reason.
LEGACY = {}
# Bars a shipped entry does not meet yet: (entry, metric) -> the measured shortfall. The
# bar stays; the test is an expected failure (strict: it fails once the bar is met, so
# the entry is then held to it).
SHORTFALLS = {}


def _metric_bars():
    for name in SHIPPED:
        for key, bar in BARS.get(name, ({}, 0, 0))[0].items():
            reason = SHORTFALLS.get((name, key))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(name, key, bar, marks=marks, id=f"{name}-{key}")


def test_every_shipped_entry_has_a_bar_or_a_reason():
    assert SHIPPED
    for name in SHIPPED:
        assert name in BARS or name in LEGACY, name


@pytest.mark.parametrize("name,key,bar", list(_metric_bars()))
def test_card_meets_the_metric_bar(name, key, bar):
    metrics = mmzoo.load(name).metadata["metrics"]  # sha256-verified
    assert metrics[key] >= bar, f"{name}: {key} {metrics[key]:.4f} < {bar}"


@pytest.mark.parametrize("name", [n for n in SHIPPED if n in BARS])
def test_card_is_measured_within_budget_and_reproduced(name):
    entry = mmzoo.load(name)  # sha256-verified
    minimum, examples, budget = BARS[name]
    metrics = entry.metadata["metrics"]
    assert metrics["num_examples"] >= examples
    training = entry.metadata["training"]
    assert training["seconds"] <= budget
    assert training["machine"]["cpus"] <= 2 and training["machine"]["gpus"] == 0
    assert "training_curve.png" in entry.metadata["files"]
    card = (entry.path / "README.md").read_text()
    assert "![training curve](training_curve.png)" in card
    for key in minimum:
        assert f"| {key} | {metrics[key]:.4f} |" in card
    # `mmzoo evaluate NAME` reproduces the card: the same scenes, the same numbers, up
    # to the answers another CPU may round the other way (tests/test_near_ties.py).
    again, ranges = entry.evaluate(ranges=True)
    assert again.keys() == metrics.keys()
    assert not card_differences(metrics, again, ranges)
    for key, value in MEASURED_ELSEWHERE.get(name, {}).items():
        low, high = ranges[key]
        assert low <= value <= high, (key, value, low, high)


def _warm_started():
    for name in SHIPPED:
        metadata = json.loads((ROOT / "saved_models" / name / "metadata.json").read_text())
        record = metadata["training"].get("warm_start")
        if record and (record.get("frozen") or record.get("source_sha256")):
            yield name


@pytest.mark.parametrize("name", list(_warm_started()))
def test_a_warm_started_entry_still_matches_the_entry_it_started_from(name):
    """Republishing an entry leaves the ones trained from it stale: they must be retrained.

    A frozen copy still holds the source's weights layer by layer; a recorded
    source hash must be the source's weights today.
    """
    from mmzoo.training.warm_start import layers_by_path

    entry = mmzoo.load(name)
    record = entry.metadata["training"]["warm_start"]
    source = mmzoo.load(record["source"])
    retrain = f"{name} was trained from another {record['source']}: retrain it from its recipe"
    if record.get("source_sha256"):
        assert record["source_sha256"] == source.metadata["files"]["model.keras"]["sha256"], retrain
    if record.get("frozen"):
        ours, theirs = dict(layers_by_path(entry.model)), dict(layers_by_path(source.model))
        assert record["copied"]
        for path in record["copied"]:
            for a, b in zip(ours[path].get_weights(), theirs[path].get_weights(), strict=True):
                np.testing.assert_array_equal(a, b, err_msg=f"{retrain} ({path})")


@pytest.fixture(scope="module")
def mobile_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mobile")
    entry = mmzoo.load("mobile_vqa")
    f32, int8 = folder / "f32.tflite", folder / "int8.tflite"
    mmzoo.export(entry, f32, format="tflite", verbose=False)
    # The calibration mmzoo export applies by default to a zoo entry.
    report = mmzoo.export(entry, int8, format="tflite", quantization="int8", verbose=False)
    return entry, f32, int8, report


@pytest.mark.skipif("mobile_vqa" not in SHIPPED, reason="no mobile entry shipped")
def test_mobile_int8_file_is_a_third_of_the_float32_file(mobile_files):
    _, f32, int8, _ = mobile_files
    assert os.path.getsize(int8) <= os.path.getsize(f32) / 3


@pytest.mark.skipif("mobile_vqa" not in SHIPPED, reason="no mobile entry shipped")
def test_mobile_int8_file_keeps_the_answers(mobile_files):
    from mmzoo.export.tflite import run_tflite

    entry, _, int8, report = mobile_files
    assert report.passed
    x, y = entry.example_inputs(2000, split="test")
    keras_top = entry.model.predict(x, batch_size=256, verbose=0)["probabilities"].argmax(-1)
    (int8_probs,) = run_tflite(int8, x).values()
    int8_top = int8_probs.argmax(-1)
    y = np.asarray(y).reshape(-1)
    gap = abs(np.mean(int8_top == y) - np.mean(keras_top == y))
    assert gap <= 0.01, gap
    assert np.mean(int8_top == keras_top) >= 0.97


@pytest.mark.skipif("document_vqa" not in SHIPPED, reason="document_vqa is not shipped")
def test_document_model_beats_the_better_single_modality_baseline_by_15_points():
    """Issue 12: the seeds' document model must use both modalities, on the same test split."""
    import json

    baselines = json.loads((ROOT / "bench" / "results" / "baselines_shapes_vqa.json").read_text())
    single = [r["accuracy"] for r in baselines["rows"]
              if r["model"].startswith(("text only", "image only"))]
    assert len(single) == 2
    entry = mmzoo.load("document_vqa")
    assert entry.metadata["dataset"]["num_test"] == baselines["recipe"]["dataset"]["num_test"]
    assert entry.metadata["metrics"]["accuracy"] >= max(single) + 0.15


@pytest.mark.skipif("shapes_retrieval" not in SHIPPED, reason="no retrieval entry shipped")
def test_retrieval_card_reports_recall_at_1_both_ways_near_the_gallery_ceiling():
    """R@1 both ways on the 1,000-item gallery, within 2 points of what the gallery allows.

    Identical captions of different scenes tie: such an image cannot rank its
    caption strictly first, and identical caption queries share one ranking,
    so only one of their images can come first.
    """
    from collections import Counter

    from mmzoo.data import shapes

    entry = mmzoo.load("shapes_retrieval")
    metrics, dataset = entry.metadata["metrics"], entry.metadata["dataset"]
    assert metrics["num_examples"] == dataset["num_test"] == 1000
    gallery = shapes.generate_scenes(1000, split="test", image_size=dataset["image_size"],
                                     seed=dataset["seed"])
    counts = Counter(refs[0] for refs in gallery["captions"])
    image_ceiling = sum(1 for refs in gallery["captions"] if counts[refs[0]] == 1) / 1000
    text_ceiling = len(counts) / 1000
    for key, ceiling in (("image_to_text_recall_at_1", image_ceiling),
                         ("text_to_image_recall_at_1", text_ceiling)):
        assert ceiling - 0.02 <= metrics[key] <= ceiling, (key, metrics[key], ceiling)


@pytest.mark.skipif("shapes_spoken_vqa" not in SHIPPED, reason="no spoken entry shipped")
def test_spoken_vqa_is_within_5_points_of_shapes_vqa_on_every_question_type():
    """Issue 16: hearing the question costs at most 5 points on each type, on the same scenes."""
    from mmzoo.data import shapes, speech

    spoken, written = mmzoo.load("shapes_spoken_vqa"), mmzoo.load("shapes_vqa")
    heard, read = spoken.metadata["metrics"], written.metadata["metrics"]
    for dataset in (spoken.metadata["dataset"], written.metadata["dataset"]):
        assert dataset["num_test"] == 5000 and dataset["seed"] == 0 and dataset["image_size"] == 32
    for kind in shapes.QUESTION_TYPES:
        key = f"accuracy_{kind}"
        assert heard[key] >= read[key] - 0.05, (key, heard[key], read[key])
    # The card reports every voice, the held-out ones included.
    card = (spoken.path / "README.md").read_text()
    for name in speech.VOICE_NAMES:
        assert f"| accuracy_voice_{name} |" in card
    assert {"accuracy_train_voices", "accuracy_held_out_voices"} <= set(heard)


@pytest.mark.parametrize("name,paraphrase", [
    pytest.param(name, word, id=f"{name}-{word}")
    for name in ("shapes_vqa", "mobile_vqa") for word in ("thing", "one")])
def test_vqa_reads_the_attribute_asked_for_not_the_last_word(name, paraphrase):
    """"what shape is the red thing?": the question word, not "object", says what to report.

    Every shape question of the benchmark ends in "object" and no colour question
    does, so a model can read the question type from that word alone; asked with
    "thing" (a word it never saw) or "one" instead, such a model answers at chance
    (the entry trained on whole questions: 0.037 and 0.074). `shapes_vqa` is trained
    with word dropout and subsampling from epoch 16 (recipes/shapes_vqa.toml);
    `mobile_vqa`'s text CNN is distilled from its GRU.
    """
    from mmzoo.data import shapes

    data = shapes.generate_scenes(1500, split="test", image_size=32, seed=5151)
    keep = data["question_type"] == shapes.QUESTION_TYPES.index("shape")
    questions = [str(q) for q in data["question"][keep]]
    assert len(questions) >= 250 and all(q.endswith(" object?") for q in questions)
    asked = [q.replace(" object?", f" {paraphrase}?") for q in questions]
    predictions = mmzoo.load(name).predict(images=list(data["image"][keep]), texts=asked,
                                           top_k=1, batch_size=256)
    answers = [shapes.ANSWERS[a] for a in data["answer"][keep]]
    accuracy = np.mean([p[0][0] == a for p, a in zip(predictions, answers)])
    assert accuracy >= 0.95, accuracy


@pytest.mark.skipif("shapes_matching" not in SHIPPED, reason="no matching entry shipped")
def test_matching_reads_the_image_not_the_caption_alone():
    """A shortcut probe: given another scene's image, the caption alone must not tell
    true from false (measured: 0.517 with shuffled images, 0.952 with their own)."""
    entry = mmzoo.load("shapes_matching")
    x, y = entry.example_inputs(2000, split="test")
    truth = y[:, 0] >= 0.5

    def accuracy(inputs):
        out = entry.model.predict(inputs, batch_size=256, verbose=0)
        (out,) = out.values() if isinstance(out, dict) else (out,)
        return float(np.mean((np.asarray(out)[:, 0] >= 0.5) == truth))

    own = accuracy(x)
    shuffled = accuracy({**x, "image": x["image"][np.random.default_rng(0).permutation(len(y))]})
    majority = max(truth.mean(), 1 - truth.mean())
    assert own >= 0.95
    assert shuffled <= majority + 0.05, (shuffled, majority)
