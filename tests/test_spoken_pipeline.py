"""Spoken mmzoo-shapes in the data pipeline and recipes: arrays, streams, per-voice metrics."""

import json
import os

import numpy as np
import pytest

from mmzoo.data import pipeline, problems, shapes, speech
from mmzoo.metrics import task_metrics
from mmzoo.training import Recipe, RecipeError, load_training_data

# Skipped where espeak-ng is missing, except on CI (.ci/run installs it there).
pytestmark = pytest.mark.skipif(
    speech.shutil.which(speech.ESPEAK) is None and not os.environ.get("CI"),
    reason="espeak-ng is not installed (apt-get install espeak-ng)")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "recipes", "tiny_spoken_vqa.toml")
TRAIN_IDS = {speech.VOICE_NAMES.index(v) for v in speech.TRAIN_VOICES}
SPOKEN = {
    "name": "spoken", "task": "classification",
    "dataset": {"source": "memory", "problem": "spoken_vqa", "image_size": 16,
                "num_train": 16, "num_validation": 8, "num_test": 8, "seed": 2},
    "model": {"image_branch": "cnn", "image_filters": 2, "text_branch": "none",
              "audio_branch": "cnn", "audio_filters": 2, "audio_blocks": 1,
              "audio_mel_bins": 8},
    "training": {"epochs": 1, "batch_size": 8},
}


@pytest.fixture(scope="module", autouse=True)
def speech_cache(tmp_path_factory):
    """Speech is cached in a temporary folder, never in the user's home."""
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("speech")
        patch.setenv("MMZOO_SPEECH_CACHE", str(folder))
        patch.delenv("MMZOO_HOME", raising=False)
        yield folder


def recipe(edit=None, **dataset):
    config = json.loads(json.dumps(SPOKEN))
    config["dataset"].update(dataset)
    if edit:
        edit(config)
    return Recipe.from_dict(config)


def test_spoken_arrays_add_deterministic_audio_to_the_vqa_rows(speech_cache):
    x, y, info = pipeline.shapes_arrays("spoken_vqa", 12, image_size=16, seed=1,
                                        split="validation")
    assert set(x) == {"image", "text", "audio"}
    assert x["audio"].dtype == np.float32 and x["audio"].shape == (12, 48000)
    assert np.abs(x["audio"]).max() <= 1.0 and (x["audio"].std(axis=1) > 0).all()
    assert (info.audio_samples, info.audio_sample_rate) == (48000, speech.SAMPLE_RATE)
    # The same rows as written VQA: same images, written question and labels.
    vx, vy, _ = pipeline.shapes_arrays("vqa", 12, image_size=16, seed=1, split="validation")
    np.testing.assert_array_equal(x["image"], vx["image"])
    np.testing.assert_array_equal(x["text"], vx["text"])
    np.testing.assert_array_equal(y, vy)
    # The audio is the scene's question, spoken by the voice its seed draws.
    data = shapes.generate_scenes(12, split="validation", image_size=16, seed=1)
    audio, voice = speech.spoken_questions(data, "validation", 1, voices="all")
    np.testing.assert_array_equal(x["audio"], audio)
    np.testing.assert_array_equal(info.voices, voice)
    again, _, _ = pipeline.shapes_arrays("spoken_vqa", 12, image_size=16, seed=1,
                                         split="validation")
    np.testing.assert_array_equal(again["audio"], x["audio"])
    other, _, _ = pipeline.shapes_arrays("spoken_vqa", 12, image_size=16, seed=2,
                                         split="validation")
    assert not np.array_equal(other["audio"], x["audio"])
    assert any(speech_cache.rglob("*.flac"))  # the cache is where the test put it
    # Shorter waveforms, and the preprocessor an entry of these data gets.
    short, _, short_info = pipeline.shapes_arrays("spoken_vqa", 4, image_size=16, seed=1,
                                                  split="validation", audio_samples=16000)
    assert short["audio"].shape == (4, 16000)
    from mmzoo.data import Preprocessor

    pre = Preprocessor.from_task_info(short_info)
    assert (pre.audio_samples, pre.audio_sample_rate) == (16000, 16000)
    options = short_info.model_options()
    assert options["audio_samples"] == 16000 and options["num_classes"] == 20


def test_spoken_matching_speaks_the_match_caption():
    x, y, info = pipeline.shapes_arrays("spoken_matching", 6, image_size=16, seed=0,
                                        split="test", audio_samples=32000)
    assert x["audio"].shape == (6, 32000) and x["text"].shape == (6, 32)
    _, vy, vinfo = pipeline.shapes_arrays("matching", 6, image_size=16, seed=0, split="test")
    np.testing.assert_array_equal(y, vy)
    np.testing.assert_array_equal(info.perturbations, vinfo.perturbations)
    assert problems.get("spoken_matching").audio_samples == speech.CAPTION_SAMPLES


def test_the_spoken_tfds_config_gives_the_same_rows(tmp_path):
    for problem, length in (("spoken_vqa", 48000), ("spoken_matching", 160000)):
        ds, info = pipeline.shapes_dataset(problem, "test", config="spoken_tiny",
                                           data_dir=tmp_path, batch_size=8, with_info=True)
        x, y = next(iter(ds))
        assert info.audio_samples == length and x["audio"].shape == (8, length)
        ax, ay, _ = pipeline.shapes_arrays(problem, 8, image_size=32, split="test",
                                           audio_samples=length)
        np.testing.assert_allclose(x["audio"].numpy(), ax["audio"], atol=2 / 32767)  # int16
        np.testing.assert_array_equal(x["text"].numpy(), ax["text"])
        np.testing.assert_array_equal(y.numpy(), ay)


def test_training_voices_for_training_every_voice_for_testing():
    _, _, train = pipeline.shapes_arrays("spoken_vqa", 64, image_size=16, split="train")
    assert set(train.voices) <= TRAIN_IDS and len(set(train.voices)) > 4
    _, _, test = pipeline.shapes_arrays("spoken_vqa", 96, image_size=16, split="test")
    assert set(test.voices) == set(range(len(speech.VOICE_NAMES)))
    _, _, held = pipeline.shapes_arrays("spoken_vqa", 8, image_size=16, split="test",
                                        voices="held_out")
    assert not set(held.voices) & TRAIN_IDS


def test_stream_is_spoken_by_training_voices_and_reproducible():
    r = recipe(source="stream", num_train=24)
    data = load_training_data(r)
    # An image + audio model gets no "text": Keras would warn about a key it has no input for.
    assert set(data.train.element_spec[0]) == {"image", "audio"}
    batches = [(x["audio"].numpy(), y.numpy()) for x, y in data.train]
    assert [len(b[1]) for b in batches] == [8, 8, 8]
    again = [(x["audio"].numpy(), y.numpy()) for x, y in data.train_from(1).take(1)]
    np.testing.assert_array_equal(again[0][0], batches[1][0])
    # Batch 0 is the speech of the stream's first scenes, by the training voices.
    scenes = shapes.stream_scenes(8, "train", image_size=16, seed=2)
    audio, voice = speech.spoken_questions(scenes, "train", 2, voices="train")
    np.testing.assert_array_equal(batches[0][0], audio)
    assert set(voice) <= TRAIN_IDS
    x, _ = next(iter(data.validation))
    assert x["audio"].dtype.name == "float32" and x["audio"].shape[1:] == (48000,)


def test_text_is_fed_only_to_models_that_read_it():
    def with_text(config):
        config["model"].update(text_branch="embedding", embedding_dim=4)

    r = recipe(with_text)
    assert r.modalities == ("image", "text", "audio")
    data = load_training_data(r)
    assert set(data.train.element_spec[0]) == {"image", "text", "audio"}
    assert recipe().modalities == ("image", "audio")
    assert "vocab_size" not in recipe().architecture_options()


def test_per_voice_metrics_are_named_and_aggregated():
    names = speech.VOICE_NAMES
    voices = np.array([0, 0, 1, names.index("sc_f5"), names.index("us_croak")])
    y = np.array([1, 2, 3, 4, 5])
    pred = np.eye(20)[[1, 0, 3, 4, 0]]  # wrong on rows 1 and 4
    metrics = task_metrics("classification", pred, y, voices=voices)
    assert metrics["accuracy_voice_us_m1"] == 0.5 and metrics["accuracy_voice_us_f2"] == 1.0
    assert metrics["accuracy_voice_sc_f5"] == 1.0 and metrics["accuracy_voice_us_croak"] == 0.0
    assert "accuracy_voice_gb_m3" not in metrics  # no rows: left out
    assert metrics["accuracy_train_voices"] == pytest.approx(2 / 3)
    assert metrics["accuracy_held_out_voices"] == 0.5
    assert set(problems.PER_VOICE.names) == set(names)
    binary = task_metrics("binary", np.array([[0.9], [0.2]]), np.array([[1.0], [1.0]]),
                          voices=np.array([names.index("wm_f3"), 0]))
    assert binary["accuracy_voice_wm_f3"] == 1.0 and binary["accuracy_held_out_voices"] == 1.0
    # Written VQA reports what it always did.
    plain = task_metrics("classification", pred, y, question_types=np.zeros(5, int))
    assert not any("voice" in k for k in plain)


@pytest.mark.parametrize("edit, expected", [
    (lambda c: c["dataset"].update(problem="spoken_matching"),
     "dataset.problem must be a problem of task='classification' ('vqa', 'spoken_vqa'); "
     "'spoken_matching' feeds task='binary'. Received: problem='spoken_matching'"),
    (lambda c: c["dataset"].update(problem="talk"),
     "Received: problem='talk'"),
    (lambda c: c["dataset"].update(source="tfds"),
     "dataset.source must be one of 'memory', 'stream' for problem='spoken_vqa'"),
    (lambda c: c["dataset"].update(audio_samples=0),
     "dataset.audio_samples must be an integer >= 1. Received: audio_samples=0"),
    (lambda c: c["dataset"].update(problem="vqa", audio_samples=16000),
     "dataset.audio_samples applies to the spoken problems ('spoken_vqa', 'spoken_matching') "
     "only. Received: audio_samples=16000 with problem='vqa'"),
    (lambda c: c["model"].pop("audio_branch"),
     "[model] must set audio_branch for problem='spoken_vqa'"),
    (lambda c: c["dataset"].update(problem="vqa"),
     "[model] audio_branch needs a spoken problem"),
    (lambda c: c["model"].update(audio_samples=100),
     "[model] must not set 'audio_samples': it is fixed by dataset.audio_samples"),
    (lambda c: c.update(evaluation={"metrics": ["per_perturbation"]}),
     "evaluation.metrics must be a non-empty list of 'accuracy', 'per_question_type', "
     "'per_voice', 'loss' for problem='spoken_vqa'"),
    (lambda c: c.update(evaluation={"metrics": ["per_voice"]})
     or c["dataset"].update(problem="vqa") or c["model"].pop("audio_branch")
     or c["model"].update(text_branch="embedding"),
     "'accuracy', 'per_question_type', 'loss' for task='classification'. "
     "Received: metrics=['per_voice']"),
])
@pytest.mark.filterwarnings("ignore:build_model:UserWarning")  # options of a refused model
def test_bad_spoken_recipes_fail_early_and_clearly(edit, expected):
    with pytest.raises(RecipeError) as info:
        recipe(edit)
    assert expected in str(info.value)


def test_bad_arguments_read_like_keras():
    with pytest.raises(ValueError, match=r"Received: audio_samples=16000 with task='vqa'"):
        pipeline.shapes_arrays("vqa", 2, image_size=16, audio_samples=16000)
    with pytest.raises(ValueError, match=r"Received: voices='some'"):
        pipeline.shapes_arrays("spoken_vqa", 2, image_size=16, voices="some")
    data = shapes.generate_scenes(2, image_size=16)
    _, _, info = pipeline.shapes_arrays("spoken_vqa", 0, image_size=16)
    with pytest.raises(ValueError, match=r"Received: split=None, seed=None"):
        pipeline.scene_rows(data, info, np.arange(2))


def test_cli_train_of_the_tiny_spoken_recipe_gives_an_entry_that_hears(tmp_path):
    import soundfile

    from mmzoo import cli, zoo
    from mmzoo.data.render import encode_png

    work = tmp_path / "run"
    assert cli.main(["train", TINY, "--work-dir", str(work), "--quiet"]) == 0
    entry = zoo.load(work / "tiny_spoken_vqa")
    metadata = entry.metadata
    assert set(metadata["inputs"]) == {"image", "audio"}
    assert metadata["dataset"]["problem"] == "spoken_vqa"
    metrics = metadata["metrics"]
    for name in speech.VOICE_NAMES:  # 96 test scenes: every voice speaks
        assert 0.0 <= metrics[f"accuracy_voice_{name}"] <= 1.0
    assert {"accuracy_train_voices", "accuracy_held_out_voices", "accuracy_relational"} <= set(
        metrics)
    card = (work / "tiny_spoken_vqa" / "README.md").read_text()
    for name in speech.HELD_OUT_VOICES:
        assert f"| accuracy_voice_{name} |" in card
    assert "| accuracy_held_out_voices |" in card and 'audio="question.wav"' in card
    # mmzoo evaluate measures the card's numbers again.
    measured = entry.evaluate()
    assert measured["accuracy_held_out_voices"] == pytest.approx(
        metrics["accuracy_held_out_voices"])
    # Raw inputs: a PNG and a WAV file at 22.05 kHz.
    scene = shapes.generate_scenes(1, split="test", image_size=32, seed=4)
    png, wav = tmp_path / "scene.png", tmp_path / "question.wav"
    png.write_bytes(encode_png(scene["image"][0]))
    soundfile.write(wav, speech.synthesize(str(scene["question"][0]), voice="lan_m6",
                                           sample_rate=22050), 22050)
    answers = entry.predict(images=str(png), audio=str(wav))
    assert len(answers) == 1 and answers[0][0][0] in shapes.ANSWERS
    # It hears the question: no tokenizer in the entry, and a written one is refused, not
    # ignored (the answer would come from the audio alone).
    assert entry.tokenizer is None and not (work / "tiny_spoken_vqa" / "tokenizer.json").exists()
    with pytest.raises(ValueError, match=r"'tiny_spoken_vqa' does not read text \(its model "
                                         r"reads image and audio\), so `texts` cannot be used"):
        entry.predict(images=str(png), texts=str(scene["question"][0]), audio=str(wav))
