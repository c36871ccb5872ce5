"""Model-ready mmzoo-shapes data: `(inputs, labels)` per task.

Inputs are a dict keyed by modality, as `mmzoo.build_model` models take them:
`"image"` float32 raw pixels 0..255 `(H, W, 3)` and `"text"` int32 token ids
`(sequence_length,)`. What text and labels a problem reads is in its row of
`mmzoo.data.problems` (`"vqa"`, `"matching"`, `"attributes"`, `"count"`,
`"captions"`); a task name stands for the problem that feeds it:

| task (problem) | text | labels |
|---|---|---|
| `"classification"` (vqa) | the question | int32 answer id (sparse), see `shapes.ANSWERS` |
| `"binary"` (matching) | the matching caption | float32 `(1,)`: 1.0 true, 0.0 false |
| `"multilabel"` (attributes) | the question | float32 multi-hot `(43,)`, see `shapes.ATTRIBUTES` |
| `"regression"` (count) | the question | float32 `(1,)`: the object count |
| `"captioning"` (captions) | `[start, w1..wn]` | int32 `[w1..wn, end]`, padded with 0 |

The spoken problems (`"spoken_vqa"`, `"spoken_matching"`) add `"audio"`:
float32 `(audio_samples,)` waveforms at 16 kHz, the question (or matching
caption) read aloud by `mmzoo.data.speech`, deterministic from `(split, seed,
scene)`. The training split is spoken by `speech.TRAIN_VOICES` only,
validation and test by every voice (held-out ones included). Their rows keep
`"text"` too, the same words written, so that a model reading image, text and
audio trains on them; a model reading image and audio only should get the dict
without it (`mmzoo.training` drops it): a Keras functional model warns about
dict keys it has no input for.

`shapes_arrays` generates in memory (fast, no TFDS); `shapes_dataset` reads the
TFDS build (generating it on first use) as a batched, cached, prefetched
`tf.data.Dataset`. Both tokenize with the same `Tokenizer`, so they agree.
"""

import dataclasses
import os

import numpy as np

from mmzoo.data import problems, shapes, speech
from mmzoo.data.tokenizer import END, PAD, Tokenizer
from mmzoo.registry import TASKS as _TASKS

#: The tasks the benchmark's problems feed.
TASKS = problems.TASKS
TEXT_FIELDS = problems.TEXT_FIELDS
#: `{task: default token ids per text}` of the problem that feeds each task.
DEFAULT_SEQUENCE_LENGTH = {t: problems.get(t).sequence_length for t in TASKS}
CAPTION_MODES = ("all", "first")
# Matching rows: one caption per scene, true or false at random ("sampled"), or
# both sides of its pair, next to each other ("paired": minimal pairs).
NEGATIVE_MODES = ("sampled", "paired")
SPLITS = ("train", "validation", "test")


@dataclasses.dataclass
class TaskInfo:
    """What a model needs to know about a task's data.

    Attributes:
        task: the task name.
        tokenizer: the `Tokenizer` that made `inputs["text"]`.
        label_names: names of the label ids (answers for classification,
            attributes for multilabel, `("false", "true")` for binary);
            `None` for regression and captioning (labels are token ids).
        num_classes: outputs of the head: classes / labels, 1 for binary and
            regression, the vocabulary size for captioning.
        vocab_size: `tokenizer.vocab_size`.
        sequence_length: token ids per text.
        image_shape: `(H, W, 3)`.
        text_field: which text was tokenized.
        question_types: per-example question type ids of the scenes'
            questions (`shapes_arrays` only), for VQA accuracy per type; names
            in `question_type_names`.
        question_type_names: `shapes.QUESTION_TYPES`.
        perturbations: per-example ids of the edit that made a matching
            caption false (0 = `"none"`: a true caption; `shapes_arrays`
            only), for matching accuracy per kind; names in
            `perturbation_names`.
        perturbation_names: `shapes.PERTURBATIONS`.
        problem: the benchmark problem (`mmzoo.data.problems`) the data
            come from, or None (a user's own data).
        audio_samples: samples per waveform of `inputs["audio"]` (spoken
            problems), else None.
        audio_sample_rate: their rate in Hz (`speech.SAMPLE_RATE`), else None.
        voices: spoken problems (`shapes_arrays` only): per-example voice
            ids, indices into `voice_names`, for accuracy per voice.
        voice_names: `speech.VOICE_NAMES`.
    """

    task: str
    tokenizer: Tokenizer
    label_names: tuple
    num_classes: int
    vocab_size: int
    sequence_length: int
    image_shape: tuple
    text_field: str
    question_types: np.ndarray = None
    question_type_names: tuple = shapes.QUESTION_TYPES
    perturbations: np.ndarray = None
    perturbation_names: tuple = shapes.PERTURBATIONS
    problem: str = None
    audio_samples: int = None
    audio_sample_rate: int = None
    voices: np.ndarray = None
    voice_names: tuple = speech.VOICE_NAMES

    def row_groups(self):
        """`{group field: per-row ids}` of the last rows made (`shapes_arrays`)."""
        groups = {"question_type": self.question_types,
                  "match_perturbation": self.perturbations, "voice": self.voices}
        return {k: v for k, v in groups.items() if v is not None}

    def model_options(self):
        """The `mmzoo.build_model` options these data fix.

        Example:

        ```python
        x, y, info = shapes_arrays("classification", 256)
        model = mmzoo.build_model("classification", **info.model_options())
        ```
        """
        options = {"image_shape": self.image_shape, "vocab_size": self.vocab_size,
                   "sequence_length": self.sequence_length}
        if self.audio_samples is not None:  # give `audio_branch=` too
            options.update(audio_samples=self.audio_samples,
                           audio_sample_rate=self.audio_sample_rate)
        options.update(_TASKS.get(self.task).data_options(self.num_classes))
        return options


def shapes_tokenizer(sequence_length=16):
    """The tokenizer of mmzoo-shapes: every word the generator writes, in a
    fixed (alphabetical) order, so ids never depend on the data drawn."""
    return Tokenizer(shapes.vocabulary(), sequence_length=sequence_length)


def _resolve(task, tokenizer, sequence_length, text_field, image_size, audio_samples=None):
    problem = problems.get(task)
    task = problem.task
    if text_field is None:
        text_field = problem.text_field
    if text_field not in TEXT_FIELDS:
        raise ValueError(f"`text_field` must be one of {TEXT_FIELDS}. Received: "
                         f"text_field={text_field!r}")
    if problem.fixed_text and text_field != problem.text_field:
        raise ValueError(f"task={task!r} reads the {problem.text_field!r} text: its "
                         f"labels are about that text. Received: text_field={text_field!r}")
    if tokenizer is None:
        tokenizer = shapes_tokenizer(sequence_length or problem.sequence_length)
    elif not isinstance(tokenizer, Tokenizer):
        raise TypeError("`tokenizer` must be a mmzoo.data.Tokenizer or None. Received: "
                        f"tokenizer of type {type(tokenizer).__name__}")
    length = sequence_length or tokenizer.sequence_length
    num_classes = _TASKS.get(task).num_outputs(problem.label_names, tokenizer.vocab_size)
    if audio_samples is not None and not problem.spoken:
        raise ValueError(f"`audio_samples` applies to the spoken problems "
                         f"{tuple(p.name for p in problems.PROBLEMS.values() if p.spoken)} "
                         f"only. Received: audio_samples={audio_samples!r} with "
                         f"task={problem.name!r}")
    if problem.spoken:
        if audio_samples is None:
            audio_samples = problem.audio_samples
        if (not isinstance(audio_samples, (int, np.integer)) or isinstance(audio_samples, bool)
                or audio_samples < 1):
            raise ValueError(f"`audio_samples` must be a positive integer. Received: "
                             f"audio_samples={audio_samples!r}")
    info = TaskInfo(task=task, tokenizer=tokenizer, label_names=problem.label_names,
                    num_classes=num_classes, vocab_size=tokenizer.vocab_size,
                    sequence_length=int(length), image_shape=(image_size, image_size, 3),
                    text_field=text_field, problem=problem.name)
    if problem.spoken:
        info.audio_samples = int(audio_samples)
        info.audio_sample_rate = speech.SAMPLE_RATE
    return info


def _check_captions(captions):
    if captions not in CAPTION_MODES:
        raise ValueError(f"`captions` must be one of {CAPTION_MODES}. Received: "
                         f"captions={captions!r}")


def _check_negatives(negatives, problem):
    if negatives not in NEGATIVE_MODES:
        raise ValueError(f"`negatives` must be one of {NEGATIVE_MODES}. Received: "
                         f"negatives={negatives!r}")
    if negatives == "paired" and not problem.pairs_negatives:
        able = [p.name for p in problems.PROBLEMS.values() if p.pairs_negatives]
        raise ValueError(f"negatives='paired' gives both sides of a matching pair: for "
                         f"{', '.join(map(repr, able))} only. Received: "
                         f"negatives='paired' with task={problem.name!r}")


def split_voices(split):
    """The voices a split is spoken by: `"train"` for training, `"all"` otherwise."""
    return "train" if split == "train" else "all"


def _check_voices(voices, problem):
    if voices is None:
        return
    if not problem.spoken:
        raise ValueError(f"`voices` applies to the spoken problems only. Received: "
                         f"voices={voices!r} with task={problem.name!r}")
    speech.voice_names(voices)  # raises with the allowed values


# ----------------------------------------------------------------------------
# In memory


def shapes_arrays(task, num_examples=256, image_size=64, seed=0, tokenizer=None, *,
                  split="train", sequence_length=None, text_field=None, captions="all",
                  audio_samples=None, voices=None, negatives="sampled"):
    """mmzoo-shapes examples for `task` as NumPy arrays, generated in memory.

    Fast (no TFDS, no files): 256 examples at 64x64 take about 0.1 s. The
    scenes are exactly those of the TFDS build with the same seed and split.
    Everything is in memory (float32 images: 48 KB each at 64 px); for tens
    of thousands of examples prefer `shapes_dataset`.

    Args:
        task: a problem of `mmzoo.data.problems` (`"vqa"`, ...) or a task
            of `TASKS` (the problem that feeds it).
        num_examples: number of examples (rows).
        image_size: image side in pixels.
        seed: dataset seed.
        tokenizer: a `Tokenizer`; default `shapes_tokenizer()`.
        split: `"train"`, `"validation"` or `"test"`.
        sequence_length: token ids per text; default the tokenizer's (or
            the problem's `sequence_length` for the default tokenizer).
        text_field: text for the non-matching tasks: `"question"` (default),
            `"match_caption"` or `"caption"` (the first reference caption).
        captions: captioning only: `"all"` (each scene once per reference
            caption) or `"first"`.
        negatives: matching only: `"sampled"` (each scene once, with its
            true or its false caption at random) or `"paired"` (each scene
            twice, rows `2k` and `2k + 1`: its true caption, then its
            one-edit false version: minimal pairs).
        audio_samples: spoken problems only: samples per waveform (default
            the problem's: 48000 = 3 s for questions, 160000 for captions).
        voices: spoken problems only: who speaks (`"train"`, `"held_out"`,
            `"all"` or voice names); default `"train"` for the train split,
            `"all"` for validation and test. Speech comes from the
            `speech.default_cache()` (`$MMZOO_SPEECH_CACHE`), synthesised by
            espeak-ng when missing.

    Returns:
        `(inputs, labels, info)`: `inputs` a dict with `"image"` float32
        `(N, S, S, 3)` and `"text"` int32 `(N, L)` (and for a spoken problem
        `"audio"` float32 `(N, audio_samples)`), `labels` as in the module
        table, `info` a `TaskInfo` (tokenizer, label names, sizes, and the
        question type, perturbation and voice of each example).

    Example:

    ```python
    x, y, info = mmzoo.data.shapes_arrays("classification", 256, image_size=32)
    model = mmzoo.build_model("classification", image_branch="cnn",
                              **info.model_options())
    model.fit(x, y, epochs=1)
    ```
    """
    if (not isinstance(num_examples, (int, np.integer)) or isinstance(num_examples, bool)
            or num_examples < 0):
        raise ValueError(f"`num_examples` must be a non-negative integer. Received: "
                         f"num_examples={num_examples!r}")
    info = _resolve(task, tokenizer, sequence_length, text_field, image_size, audio_samples)
    _check_captions(captions)
    _check_voices(voices, problems.get(info.problem))
    _check_negatives(negatives, problems.get(info.problem))
    per_scene = rows_per_scene(info.problem, captions, negatives)
    data = shapes.generate_scenes(-(-num_examples // per_scene), split=split,
                                  image_size=image_size, seed=seed)
    inputs, labels = scene_rows(data, info, np.arange(num_examples), captions=captions,
                                split=split, seed=seed, voices=voices, negatives=negatives)
    inputs["image"] = inputs["image"].astype(np.float32)
    return inputs, labels, info


def rows_per_scene(task, captions="all", negatives="sampled"):
    """Rows one scene gives: 5 for captions with `captions="all"`, 2 for matching
    with `negatives="paired"`, else 1.

    `task`: a problem or task name (see `mmzoo.data.problems.get`).
    """
    return problems.get(task).rows_per_scene(captions, negatives)


def scene_rows(data, info, rows, captions="all", *, split=None, seed=None, voices=None,
               negatives="sampled"):
    """Model-ready rows from generated scenes.

    Args:
        data: a `generate_scenes`-style dict of scenes.
        info: the `TaskInfo` (task, tokenizer, sequence length, text field).
        rows: row numbers relative to `data`'s first scene; row `r` is scene
            `r // rows_per_scene` (and, for captioning with `captions="all"`,
            its caption `r % 5`).
        captions: captioning only: `"all"` or `"first"`.
        negatives: matching only: `"sampled"` or `"paired"` (row `r` is
            scene `r // 2`'s true caption when `r` is even, its false one
            when odd).
        split, seed: spoken problems: the split and dataset seed of the
            scenes (the speech is drawn from them and the scene ids; the
            stream's scenes are `"train"`).
        voices: spoken problems: who speaks (default `split_voices(split)`).

    Returns:
        `(inputs, labels)`, images in `data`'s dtype (uint8 from the
        generator); spoken problems add `"audio"` float32 `(N,
        info.audio_samples)`. Also sets `info.question_types`,
        `info.perturbations` (and `info.voices`) to the rows' values.
    """
    problem = problems.get(info.problem or info.task)
    per_scene = problem.rows_per_scene(captions, negatives)
    rows = np.asarray(rows)
    scenes, which = rows // per_scene, rows % per_scene
    paired = problem.pairs_negatives and negatives == "paired"
    images = data["image"][scenes]
    tok, length = info.tokenizer, info.sequence_length
    if problem.generates_text:
        texts = data["captions"][scenes, which]
        full = tok.encode(list(texts), sequence_length=length + 1, add_start=True,
                          add_end=True)
        text = np.where(full[:, :-1] == END, PAD, full[:, :-1]).astype(np.int32)
        labels = full[:, 1:].astype(np.int32)
    elif paired:
        true = which == 0
        texts = np.where(true, data["match_true"][scenes], data["match_false"][scenes])
        text = tok.encode(list(texts), sequence_length=length)
        labels = true.astype(np.float32)[:, None]
    else:
        field = info.text_field
        texts = (data["captions"][scenes, 0] if field == "caption" else data[field][scenes])
        text = tok.encode(list(texts), sequence_length=length)
        labels = problem.labels_from_scenes(data, scenes)
    info.question_types = data["question_type"][scenes]
    info.perturbations = (np.where(which == 0, 0, data["match_false_perturbation"][scenes])
                          if paired else data["match_perturbation"][scenes])
    inputs = {"image": images, "text": text}
    if problem.spoken:
        inputs["audio"], info.voices = _spoken_rows(data, scenes, problem, info, split, seed,
                                                   voices)
    return inputs, labels


def _spoken_rows(data, scenes, problem, info, split, seed, voices=None):
    """`(audio, voice)` of `scenes`: the problem's `audio_field`, spoken (see `scene_rows`)."""
    if split not in SPLITS or seed is None:
        raise ValueError(f"The speech of task={problem.name!r} is drawn from the scenes' split "
                         f"and seed: pass split= (one of {SPLITS}) and seed=. Received: "
                         f"split={split!r}, seed={seed!r}")
    voices = split_voices(split) if voices is None else voices
    rows = {problem.audio_field: data[problem.audio_field][scenes],
            "scene_id": data["scene_id"][scenes]}
    speak = (speech.spoken_questions if problem.audio_field == "question"
             else speech.spoken_captions)
    return speak(rows, split, seed, sample_rate=info.audio_sample_rate,
                 samples=info.audio_samples, voices=voices)


# ----------------------------------------------------------------------------
# tf.data


def config_name(image_size):
    """The predefined TFDS config for an image size (`"64px"` for 64)."""
    if image_size not in shapes.IMAGE_SIZES:
        raise ValueError(f"Predefined mmzoo_shapes configs have image sizes "
                         f"{shapes.IMAGE_SIZES}; for another size pass "
                         f"config=mmzoo.data.shapes_config(image_size=...). Received: "
                         f"image_size={image_size!r}")
    return f"{image_size}px"


def prepare_examples(ds, task, tokenizer=None, *, sequence_length=None, text_field=None,
                     captions="all", image_size=None):
    """Maps raw mmzoo_shapes TFDS examples to unbatched `(inputs, labels)`.

    Images stay uint8 here (4x less memory in a cache); `shapes_dataset` casts
    them to float32 after batching.

    Args:
        ds: a `tf.data.Dataset` of mmzoo_shapes feature dicts.
        task, tokenizer, sequence_length, text_field, captions: as in
            `shapes_dataset`.
        image_size: used for `info.image_shape` only (default: from `ds`).

    Returns:
        `(dataset, info)`.
    """
    import tensorflow as tf

    if image_size is None:
        image_size = int(ds.element_spec["image"].shape[0])
    info = _resolve(task, tokenizer, sequence_length, text_field, image_size)
    _check_captions(captions)
    problem = problems.get(info.problem)
    tok, length = info.tokenizer, info.sequence_length

    if problem.generates_text:
        def split_captions(ex):
            texts = ex["captions"] if captions == "all" else ex["captions"][:1]
            n = tf.shape(texts)[0]
            return tf.data.Dataset.from_tensor_slices(
                {"image": tf.repeat(ex["image"][None], n, axis=0), "caption": texts})

        def to_task(ex):
            full = tok.tf_encode(ex["caption"], sequence_length=length + 1,
                                 add_start=True, add_end=True)
            text = tf.where(full[:-1] == END, PAD, full[:-1])
            return {"image": ex["image"], "text": text}, full[1:]

        return ds.flat_map(split_captions).map(to_task, num_parallel_calls=tf.data.AUTOTUNE), info

    audio_key = _audio_feature(ds, problem, info)

    def to_task(ex):
        field = info.text_field
        text = ex["captions"][0] if field == "caption" else ex[field]
        inputs = {"image": ex["image"], "text": tok.tf_encode(text, sequence_length=length)}
        if audio_key:  # int16 PCM in the build
            inputs["audio"] = tf.cast(ex[audio_key], tf.float32) / 32767.0
        return inputs, problem.tf_label(ex)

    return ds.map(to_task, num_parallel_calls=tf.data.AUTOTUNE), info


def _audio_feature(ds, problem, info):
    """The TFDS feature of a spoken problem's audio (sets `info.audio_samples`), or None."""
    if not problem.spoken:
        return None
    key = "audio" if problem.audio_field == "question" else "caption_audio"
    spec = ds.element_spec
    if key not in spec:
        raise ValueError(
            f"task={problem.name!r} reads the spoken {problem.audio_field!r} ({key!r}), which "
            "this mmzoo_shapes config lacks: use a spoken config (config='spoken_32px', or "
            "mmzoo.data.shapes_config(..., spoken=True"
            + (", caption_audio_samples=160000" if key == "caption_audio" else "")
            + f")). Received: features {sorted(spec)}")
    info.audio_samples = int(spec[key].shape[0])
    return key


def shapes_dataset(task, split="train", *, data_dir=None, image_size=64, config=None,
                   batch_size=32, tokenizer=None, sequence_length=None, text_field=None,
                   captions="all", shuffle=None, shuffle_buffer=10_000, seed=0, cache=True,
                   drop_remainder=False, repeat=False, prefetch=True, download=True,
                   with_info=False):
    """A batched `tf.data.Dataset` of `(inputs, labels)` from the TFDS build.

    The first call generates the data into `data_dir` (see `MmzooShapes`);
    later calls read it.

    Args:
        task: a problem of `mmzoo.data.problems` or a task of `TASKS`.
        split: a TFDS split (`"train"`, `"test[:10%]"`, ...).
        data_dir: TFDS data folder (default `~/tensorflow_datasets`).
        image_size: 32, 64 or 128, to pick the predefined config.
        config: a config name or a `MmzooShapesConfig` (`shapes_config(...)`);
            overrides `image_size`.
        batch_size: examples per batch.
        tokenizer, sequence_length, text_field, captions: as in
            `shapes_arrays`.
        shuffle: shuffle examples (default: only for splits starting with
            "train"); reshuffled every epoch, seeded by `seed`.
        shuffle_buffer: shuffle buffer size.
        seed: shuffle seed.
        cache: `True` caches the tokenized examples in memory (images as
            uint8: ~12 KB each at 64 px), a path caches them in that file,
            `False` reads the records every epoch.
        drop_remainder: drop the last partial batch, giving static batch
            shapes (for TPUs and `jit_compile`).
        repeat: repeat forever (then pass `steps_per_epoch` to `fit`).
        prefetch: prefetch batches (`tf.data.AUTOTUNE`).
        download: build the data if it is missing (all local; no network).
        with_info: also return the `TaskInfo`.

    Returns:
        The dataset, or `(dataset, info)` with `with_info=True`.

    Example:

    ```python
    train, info = mmzoo.data.shapes_dataset("classification", "train",
                                            image_size=32, with_info=True)
    model = mmzoo.build_model("classification", **info.model_options())
    model.fit(train, validation_data=mmzoo.data.shapes_dataset(
        "classification", "validation", image_size=32), epochs=5)
    ```
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    problems.get(task)  # fail before any generation
    if config is None:
        name = f"mmzoo_shapes/{config_name(image_size)}"
        builder_kwargs = {}
    elif isinstance(config, str):
        name, builder_kwargs = f"mmzoo_shapes/{config}", {}
    else:
        name, builder_kwargs = "mmzoo_shapes", {"config": config}
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer. Received: "
                         f"batch_size={batch_size!r}")
    if data_dir is not None:
        data_dir = os.path.expanduser(os.fspath(data_dir))  # "~/..." is the home folder
    ds = tfds.load(name, split=split, data_dir=data_dir, download=download,
                   shuffle_files=False, builder_kwargs=builder_kwargs)
    ds, info = prepare_examples(ds, task, tokenizer, sequence_length=sequence_length,
                                text_field=text_field, captions=captions)
    if cache:
        ds = ds.cache(os.fspath(cache)) if not isinstance(cache, bool) else ds.cache()
    if shuffle is None:
        shuffle = str(split).startswith("train")
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)

    def to_float(inputs, labels):
        return {**inputs, "image": tf.cast(inputs["image"], tf.float32)}, labels

    ds = ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    if prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    return (ds, info) if with_info else ds
