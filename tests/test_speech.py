"""Spoken mmzoo-shapes (mmzoo.data.speech): espeak-ng synthesis, voices, noise, cache, TFDS."""

import os
import subprocess

import numpy as np
import pytest

from mmzoo.data import shapes, speech

# Skipped where espeak-ng is missing, except on CI (.ci/run installs it there), where
# its absence must fail loudly rather than hide a broken install step.
pytestmark = pytest.mark.skipif(
    speech.shutil.which(speech.ESPEAK) is None and not os.environ.get("CI"),
    reason="espeak-ng is not installed (apt-get install espeak-ng)")


@pytest.fixture()
def cache(tmp_path):
    return speech.SpeechCache(tmp_path / "speech", workers=2)


@pytest.fixture(scope="module")
def scenes():
    return shapes.generate_scenes(12, split="test", image_size=16, seed=3)


@pytest.fixture()
def count_espeak(monkeypatch):
    calls = []
    real = subprocess.run

    def counting(args, *a, **k):
        if speech.ESPEAK in str(args[0]):
            calls.append(args)
        return real(args, *a, **k)

    monkeypatch.setattr(speech.subprocess, "run", counting)
    return calls


def test_synthesize_returns_16khz_float32_speech():
    wave = speech.synthesize("is there a red circle?", voice="us_m1")
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert 0.5 < len(wave) / speech.SAMPLE_RATE < 2.5  # silence trimmed
    assert 0.05 < np.abs(wave).max() <= 1.0
    slow = speech.synthesize("is there a red circle?", voice="us_m1", rate=120)
    assert len(slow) > 1.2 * len(wave)
    eight = speech.synthesize("is there a red circle?", voice="us_m1", sample_rate=8000)
    assert abs(len(eight) - len(wave) / 2) <= 2
    # Any espeak-ng voice string works too.
    assert len(speech.synthesize("yes", voice="en-us+f3", rate=200, pitch=60)) > 0


def test_bad_arguments_read_like_keras():
    with pytest.raises(ValueError, match="Received: voice='nobody'"):
        speech.get_voice("nobody")
    with pytest.raises(ValueError, match="Received: rate=20"):
        speech.synthesize("hello", rate=20)
    with pytest.raises(ValueError, match="Received: voices='some'"):
        speech.voice_names("some")
    with pytest.raises(speech.SpeechSynthesisError, match="Received: voice='xx-zz'"):
        speech.synthesize("hello", voice="xx-zz")
    with pytest.raises(ValueError, match="Received: snr_db="):
        speech.speak(["hi"], [0], "test", snr_db=(30, 10), cache=speech.SpeechCache(False))


def test_missing_espeak_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr(speech, "ESPEAK", "espeak-ng-not-installed")
    with pytest.raises(speech.EspeakNotFoundError, match=r"apt-get install espeak-ng") as e:
        speech.synthesize("is there a red circle?")
    assert "Received: executable='espeak-ng-not-installed'" in str(e.value)
    monkeypatch.setattr(speech, "ESPEAK", "espeak-ng")
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH hides the real one
    with pytest.raises(speech.EspeakNotFoundError, match="Debian/Ubuntu package `espeak-ng`"):
        speech.SpeechCache(False).get("is there a red circle?", "us_m1")


def test_voice_catalogue_and_every_question_fits():
    assert len(speech.TRAIN_VOICES) == 8 and len(speech.HELD_OUT_VOICES) == 4
    assert not set(speech.TRAIN_VOICES) & set(speech.HELD_OUT_VOICES)
    assert speech.VOICE_NAMES == speech.TRAIN_VOICES + speech.HELD_OUT_VOICES
    # Held-out voices are other accents and other variants than any training voice.
    train = [speech.get_voice(v).espeak.split("+") for v in speech.TRAIN_VOICES]
    for name in speech.HELD_OUT_VOICES:
        lang, variant = speech.get_voice(name).espeak.split("+")
        assert (lang, variant) not in {tuple(t) for t in train}
        assert variant not in {t[1] for t in train}
    questions = speech.question_texts()
    assert len(questions) == 3888
    # The slowest voice at its slowest rate still fits the longest question in 3 s.
    longest = max(questions, key=len)
    for name in ("us_f2", "ca_m2", "wm_f3"):
        v = speech.get_voice(name)
        wave = speech.synthesize(longest, name, rate=v.rate[0], pitch=v.pitch[0])
        assert len(wave) < speech.QUESTION_SAMPLES - 0.1 * speech.SAMPLE_RATE


def test_question_texts_cover_the_generator():
    asked = {shapes.sample_scene(5, i).question for i in range(3000)}
    assert asked <= set(speech.question_texts())


def test_renditions_are_bounded_and_spread():
    v = speech.get_voice("gb_f4")
    keys = {speech.rendition("how many squares are there?", "gb_f4", i, 2) for i in range(2)}
    rates = sorted(r for r, _ in keys)
    assert len(keys) == 2 and rates[0] < rates[1]
    mid = (v.rate[0] + v.rate[1]) / 2
    assert rates[0] <= mid + 5 and rates[1] >= mid - 5
    for r, p in keys:
        assert v.rate[0] <= r <= v.rate[1] and v.pitch[0] <= p <= v.pitch[1]
        assert r % 5 == 0 and p % 5 == 0


def test_spoken_questions_are_deterministic_and_shaped(scenes, cache):
    audio, voice = speech.spoken_questions(scenes, "test", seed=3, cache=cache)
    assert audio.shape == (12, speech.QUESTION_SAMPLES) and audio.dtype == np.float32
    assert voice.shape == (12,) and voice.dtype == np.int64
    assert np.abs(audio).max() <= 1.0
    again, voice2 = speech.spoken_questions(scenes, "test", seed=3,
                                            cache=speech.SpeechCache(False))
    np.testing.assert_array_equal(audio, again)  # also without the disk cache
    np.testing.assert_array_equal(voice, voice2)
    other, _ = speech.spoken_questions(scenes, "test", seed=4, cache=cache)
    assert not np.array_equal(audio, other)
    # Scene objects work as well as the dict; other lengths and rates.
    short, _ = speech.spoken_questions(scenes["scenes"][:3], "test", seed=3, samples=16000,
                                       cache=cache)
    assert short.shape == (3, 16000)
    slow, _ = speech.spoken_questions(scenes["scenes"][:2], "test", seed=3, sample_rate=8000,
                                      samples=24000, cache=speech.SpeechCache(False, 8000))
    assert slow.shape == (2, 24000)


def test_voices_differ_and_held_out_voices_stay_out_of_training(cache):
    text = "what colour is the small circle?"
    a = cache.get(text, "us_m1").astype(np.float32)
    b = cache.get(text, "gb_f4").astype(np.float32)
    n = min(len(a), len(b))
    assert not np.array_equal(a[:n], b[:n])
    assert abs(np.corrcoef(a[:n], b[:n])[0, 1]) < 0.5
    ids = np.arange(300)
    _, voice = speech.speak([text] * 300, ids, "train", cache=cache, snr_db=None)
    names = {speech.VOICE_NAMES[i] for i in voice}
    assert names == set(speech.TRAIN_VOICES)  # all of them, and nothing else
    _, voice = speech.speak([text] * 100, ids[:100], "test", voices="held_out", cache=cache)
    assert {speech.VOICE_NAMES[i] for i in voice} <= set(speech.HELD_OUT_VOICES)


def test_noise_is_at_the_requested_snr(cache):
    text = "how many objects are there?"
    clean, _ = speech.speak([text] * 6, range(6), "train", cache=cache, snr_db=None)
    for snr in (10.0, 25.0):
        noisy, _ = speech.speak([text] * 6, range(6), "train", cache=cache, snr_db=(snr, snr))
        for c, x in zip(clean, noisy):
            active = np.flatnonzero(c)
            signal = np.mean(c[active[0]:active[-1] + 1] ** 2)
            noise = np.mean((x - c) ** 2)
            assert abs(10 * np.log10(signal / noise) - snr) < 1.0
    # Level within the requested range: RMS of the speech part.
    for c in clean:
        active = np.flatnonzero(c)
        rms_db = 10 * np.log10(np.mean(c[active[0]:active[-1] + 1] ** 2))
        assert -28.5 < rms_db < -17.5


def test_cache_is_reused_from_memory_and_disk(scenes, cache, count_espeak, tmp_path):
    speech.spoken_questions(scenes, "test", seed=3, cache=cache)
    spawned = len(count_espeak)
    assert spawned == cache.synthesized > 0
    speech.spoken_questions(scenes, "test", seed=3, cache=cache)  # memory
    assert len(count_espeak) == spawned and cache.memory_hits >= 12
    fresh = speech.SpeechCache(tmp_path / "speech")  # same folder, empty memory
    speech.spoken_questions(scenes, "test", seed=3, cache=fresh)
    assert len(count_espeak) == spawned and fresh.synthesized == 0 and fresh.disk_hits > 0
    files, size = fresh.disk_usage()
    assert files == spawned and 0 < size < files * 200_000
    # fill() synthesises only what is missing.
    texts = list(scenes["question"][:2])
    made = cache.fill(texts, voices=["us_m1", "sc_m7"])
    assert made <= 2 * 2 * cache.renditions
    assert cache.fill(texts, voices=["us_m1", "sc_m7"]) == 0


def test_default_cache_lives_under_mmzoo_home(monkeypatch, tmp_path):
    monkeypatch.delenv("MMZOO_SPEECH_CACHE", raising=False)
    monkeypatch.setenv("MMZOO_HOME", str(tmp_path))
    assert speech.default_cache_dir() == tmp_path / "speech"
    monkeypatch.setenv("MMZOO_SPEECH_CACHE", str(tmp_path / "elsewhere"))
    assert speech.default_cache().path.parent == tmp_path / "elsewhere"


def test_spoken_captions(scenes):
    audio, voice = speech.spoken_captions(scenes["scenes"][:2], "test", seed=3,
                                          samples=speech.CAPTION_SAMPLES)
    assert audio.shape == (2, speech.CAPTION_SAMPLES) and voice.shape == (2,)
    assert np.abs(audio).max() > 0.01


def test_tfds_spoken_config_builds(monkeypatch, tmp_path):
    import tensorflow_datasets as tfds

    import mmzoo.data  # noqa: F401  (registers the builder)

    monkeypatch.setenv("MMZOO_SPEECH_CACHE", str(tmp_path / "speech"))
    config = mmzoo.data.shapes_config(image_size=16, num_train=4, num_validation=2, num_test=3,
                                      seed=3, spoken=True, caption_audio_samples=32000)
    assert config.name == "16px_4_2_3_seed3_spoken48000_captions32000"
    builder = tfds.builder("mmzoo_shapes", data_dir=str(tmp_path / "tfds"), config=config)
    builder.download_and_prepare()
    assert "16000 Hz" in builder.info.features["audio"].doc.desc
    assert builder.info.features["voice"].names == list(speech.VOICE_NAMES)
    test = list(tfds.as_numpy(builder.as_dataset(split="test")))
    assert len(test) == 3
    ex = test[0]
    assert ex["audio"].shape == (48000,) and ex["audio"].dtype == np.int16
    assert ex["caption_audio"].shape == (32000,) and ex["caption_audio"].dtype == np.int16
    # The stored PCM is the in-memory stream's, rounded to int16.
    memory = shapes.generate_scenes(3, "test", image_size=16, seed=3)
    audio, voice = speech.spoken_questions(memory, "test", seed=3, voices="all")
    np.testing.assert_array_equal(np.stack([e["audio"] for e in test]), speech.to_pcm16(audio))
    np.testing.assert_array_equal([e["voice"] for e in test], voice)
    train = list(tfds.as_numpy(builder.as_dataset(split="train")))
    assert all(speech.VOICE_NAMES[e["voice"]] in speech.TRAIN_VOICES for e in train)
    assert {c.name for c in tfds.builder_cls("mmzoo_shapes").BUILDER_CONFIGS} >= {
        "spoken_32px", "spoken_tiny"}
    with pytest.raises(ValueError, match="Received: spoken=False, caption_audio_samples=10"):
        mmzoo.data.shapes_config(caption_audio_samples=10)


def test_default_cache_memory_is_set_by_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MMZOO_SPEECH_CACHE", str(tmp_path))
    monkeypatch.delenv("MMZOO_SPEECH_MEMORY_MB", raising=False)
    assert speech.default_cache().memory_bytes == 512 * 2**20
    monkeypatch.setenv("MMZOO_SPEECH_MEMORY_MB", "4096")
    assert speech.default_cache().memory_bytes == 4096 * 2**20
    monkeypatch.setenv("MMZOO_SPEECH_MEMORY_MB", "lots")
    with pytest.raises(ValueError, match=r"Received: MMZOO_SPEECH_MEMORY_MB='lots'"):
        speech.default_cache()
