"""The data of a recipe: seeded training streams and the evaluation split.

Three sources (`dataset.source`):

- `"tfds"` reads (and on first use builds) the TFDS dataset, streaming with
  bounded memory;
- `"memory"` generates the same scenes in the process, with no files (small
  runs, tests). Both reuse `num_train` scenes on every epoch, reshuffled.
- `"stream"`: training data that never runs out. Every epoch draws
  `num_train` *fresh* scenes from the endless stream of the seed
  (`shapes.stream_scene`): epoch `e` is stream positions `[e * num_train,
  (e + 1) * num_train)`, generated batch by batch while the model trains
  (about 5,000 scenes/s at 32 px). Batch `b` of the run is a pure function
  of the recipe, so a resumed run regenerates exactly its remaining batches
  without replaying the others. Validation and test are the fixed splits,
  as with `"memory"`; their layouts never occur in the stream.

A spoken problem (`dataset.problem = "spoken_vqa"` or `"spoken_matching"`,
sources `"memory"` and `"stream"`) adds the `"audio"` input: the scene's
question (or matching caption) spoken by `mmzoo.data.speech`, a pure function
of `(dataset.seed, split, scene)`, so the stream stays reproducible from the
recipe. Training scenes are spoken by `speech.TRAIN_VOICES` only; validation
and test by every voice, the held-out ones included. Utterances come from the
speech cache (`$MMZOO_SPEECH_CACHE`, see `speech.SpeechCache`) and are
synthesised by espeak-ng the first time. `"text"` (the same words, written) is
fed only to a model that reads text: an image + audio model gets
`{"image", "audio"}`. In memory the waveforms are int16 PCM (as in the TFDS
build), float32 per batch.
"""

import dataclasses
import itertools
import os

import numpy as np

from mmzoo.data import problems, shapes, speech
from mmzoo.data.augment import dropout_rates, word_dropout
from mmzoo.data.mmzoo_shapes import MmzooShapesConfig, shapes_config
from mmzoo.data.pipeline import (
    prepare_examples,
    scene_rows,
    shapes_arrays,
    shapes_dataset,
    shapes_tokenizer,
)
from mmzoo.data.tokenizer import END, split_words

# Settings of the predefined TFDS configs: a recipe that matches one reuses its
# build instead of generating the same scenes again under another name.
_PREDEFINED = {"num_train": 20_000, "num_validation": 2_000, "num_test": 2_000, "seed": 0}


@dataclasses.dataclass
class TrainingData:
    """Batched training and validation streams of a recipe.

    Attributes:
        train: `(inputs, labels)` batches, reshuffled each epoch (seeded).
        validation: `(inputs, labels)` batches in a fixed order.
        info: the `mmzoo.data.TaskInfo` (tokenizer, label names, sizes).
        num_train_examples: training rows per epoch (scenes x captions for
            captioning).
        steps_per_epoch: training batches per epoch.
        fresh_each_epoch: whether `train` holds every epoch's batches one
            after the other (source `"stream"`: fit with `steps_per_epoch`)
            rather than one epoch to repeat.
        word_rates: `{word: probability}` of the words that
            `training.word_dropout` and `word_subsampling` drop from the
            training text, most dropped first (empty without them).
    """

    train: object
    validation: object
    info: object
    num_train_examples: int
    steps_per_epoch: int
    fresh_each_epoch: bool = False
    _train_from: object = None
    word_rates: dict = dataclasses.field(default_factory=dict)

    def train_from(self, step):
        """The training batches from global step `step` on, endlessly or to the run's end.

        A resumed run starts here: the batches an uninterrupted run would
        have trained on next, in the same order.
        """
        if self._train_from is not None:
            return self._train_from(step)
        return self.train.repeat().skip(step)


@dataclasses.dataclass
class EvaluationData:
    """The evaluation split, in memory.

    Attributes:
        inputs: `{"image", "text"}` arrays (not for captioning; spoken
            problems: `"audio"` too, `"text"` only if the model reads it).
        labels: the labels (not for captioning).
        groups: `{group field: ids}` of the problem's per-group metrics
            (`mmzoo.data.problems`: `"question_type"` for VQA,
            `"match_perturbation"` for matching, and `"voice"` for the
            spoken ones), one id per row.
        images: captioning: one image per scene.
        references: captioning: the reference captions of each scene,
            normalised the way the tokenizer splits words.
    """

    inputs: dict = None
    labels: np.ndarray = None
    groups: dict = dataclasses.field(default_factory=dict)
    images: np.ndarray = None
    references: list = None

    def __len__(self):
        return len(self.images if self.images is not None else self.labels)


def rows_per_scene(recipe, split="train"):
    """Rows one scene of `split` gives (5 for captioning with `captions="all"`; 2 for
    training matching on `negatives="paired"`: validation and test stay one per scene)."""
    negatives = recipe.dataset.get("negatives") if split == "train" else None
    return problems.get(recipe.problem).rows_per_scene(recipe.dataset.get("captions"),
                                                       negatives or "sampled")


def tfds_config(recipe):
    """The TFDS config of a recipe: a predefined name (`"64px"`) or a `MmzooShapesConfig`."""
    ds = recipe.dataset
    if ds["image_size"] in shapes.IMAGE_SIZES and all(
            ds[k] == v for k, v in _PREDEFINED.items()):
        return f"{ds['image_size']}px"
    return shapes_config(image_size=ds["image_size"], num_train=ds["num_train"],
                         num_validation=ds["num_validation"], num_test=ds["num_test"],
                         seed=ds["seed"])


def _data_dir(recipe, data_dir):
    folder = data_dir or recipe.dataset["data_dir"] or None
    return None if folder is None else os.path.expanduser(os.fspath(folder))


def _text_kwargs(recipe, split=None):
    ds = recipe.dataset
    kwargs = {"sequence_length": ds["sequence_length"], "text_field": ds["text_field"]}
    if "captions" in ds:  # only problems that generate captions have the setting
        kwargs["captions"] = ds["captions"]
    if split == "train" and ds.get("negatives"):  # matching's training rows only
        kwargs["negatives"] = ds["negatives"]
    if ds.get("audio_samples"):  # only spoken problems have the setting
        kwargs["audio_samples"] = ds["audio_samples"]
    return kwargs


def _dropped_inputs(recipe):
    """Inputs the data have and the recipe's model does not read.

    Spoken rows carry the written question besides the spoken one; a model
    of image and audio only must not get it (Keras warns on every call).
    """
    if (problems.get(recipe.problem).spoken and recipe.modalities
            and "text" not in recipe.modalities):
        return ("text",)
    return ()


def _model_inputs(recipe, inputs):
    dropped = _dropped_inputs(recipe)
    return {k: v for k, v in inputs.items() if k not in dropped}


def load_training_data(recipe, data_dir=None):
    """The training and validation streams of `recipe`.

    Shuffling is seeded by `training.seed`; call `keras.utils.set_random_seed`
    first for a fully reproducible order.

    Args:
        recipe: a `Recipe`.
        data_dir: TFDS folder, overriding `dataset.data_dir`.

    Returns:
        A `TrainingData`.
    """
    ds, tr = recipe.dataset, recipe.training
    tokenizer = shapes_tokenizer(ds["sequence_length"])
    batch = tr["batch_size"]
    num_train = ds["num_train"] * rows_per_scene(recipe)
    if ds["source"] == "tfds":
        common = dict(data_dir=_data_dir(recipe, data_dir), config=tfds_config(recipe),
                      batch_size=batch, tokenizer=tokenizer, **_text_kwargs(recipe))
        train, info = shapes_dataset(recipe.problem, "train", shuffle=True,
                                     shuffle_buffer=tr["shuffle_buffer"], seed=tr["seed"],
                                     with_info=True, **common)
        validation = shapes_dataset(recipe.problem, "validation", shuffle=False, **common)
    elif ds["source"] == "stream":
        return _stream_training_data(recipe, tokenizer)
    else:
        train, info = _memory_split(recipe, tokenizer, "train", ds["num_train"])
        validation, _ = _memory_split(recipe, tokenizer, "validation", ds["num_validation"])
    train, rates = _with_word_dropout(train, recipe, tokenizer)
    info.question_types = info.voices = None  # per-row groups belong to the evaluation split
    return TrainingData(train=train, validation=validation, info=info,
                        num_train_examples=num_train, steps_per_epoch=-(-num_train // batch),
                        word_rates=_named_rates(rates, tokenizer))


def load_evaluation_data(recipe, data_dir=None):
    """The evaluation split of `recipe` (`evaluation.split`), in memory.

    Args:
        recipe: a `Recipe`.
        data_dir: TFDS folder, overriding `dataset.data_dir`.

    Returns:
        An `EvaluationData`.
    """
    ds = recipe.dataset
    split = recipe.evaluation["split"]
    n = ds["num_test"] if split == "test" else ds["num_validation"]
    tokenizer = shapes_tokenizer(ds["sequence_length"])
    problem = problems.get(recipe.problem)
    if ds["source"] in ("memory", "stream"):
        if problem.generates_text:
            data = shapes.generate_scenes(n, split=split, image_size=ds["image_size"],
                                          seed=ds["seed"])
            return EvaluationData(images=data["image"].astype(np.float32),
                                  references=_references(data["captions"]))
        x, y, info = shapes_arrays(recipe.problem, n, image_size=ds["image_size"],
                                   seed=ds["seed"], tokenizer=tokenizer, split=split,
                                   **_text_kwargs(recipe))
        groups = {}
        if problem.group_field:
            # Scene graphs only (no rendering): cheap.
            scenes = itertools.islice(shapes.iter_scenes(split, ds["seed"]), n)
            groups[problem.group_field] = np.array(
                [getattr(s, problem.group_field) for s in scenes])
        for group in problem.group_metrics[1:]:  # e.g. the voice of each spoken row
            groups[group.field] = info.row_groups()[group.field]
        return EvaluationData(inputs=_model_inputs(recipe, x), labels=y, groups=groups)
    return _tfds_evaluation_data(recipe, split, tokenizer, data_dir)


def _stream_training_data(recipe, tokenizer):
    import tensorflow as tf

    ds, tr = recipe.dataset, recipe.training
    batch, epochs = tr["batch_size"], tr["epochs"]
    per_scene = rows_per_scene(recipe)
    captions = ds.get("captions") or "all"
    negatives = ds.get("negatives") or "sampled"
    rows = ds["num_train"] * per_scene
    steps = -(-rows // batch)
    seed, size = ds["seed"], ds["image_size"]
    _, _, info = shapes_arrays(recipe.problem, 0, image_size=size, seed=seed,
                               tokenizer=tokenizer, **_text_kwargs(recipe))
    dropped = _dropped_inputs(recipe)
    # The stream's scenes are training scenes: spoken by the training voices.
    keys = [k for k in ("image", "text", "audio") if k not in dropped
            and (k != "audio" or info.audio_samples)]

    def make_batch(step):
        epoch, index = divmod(int(step), steps)
        first, last = index * batch, min((index + 1) * batch, rows)
        first_scene = first // per_scene
        count = (last - 1) // per_scene - first_scene + 1
        data = shapes.stream_scenes(count, "train", image_size=size, seed=seed,
                                    start=epoch * ds["num_train"] + first_scene)
        inputs, labels = scene_rows(data, info, np.arange(first, last) - first_scene * per_scene,
                                    captions=captions, split="train", seed=seed,
                                    negatives=negatives)
        return (*(inputs[k] for k in keys), labels)

    # The first batch gives the dtypes and shapes (its speech stays in the cache).
    first = make_batch(0)
    rates = 0.0
    if "text" in keys:
        rates = _word_rates(recipe, tokenizer, (
            (first if step == 0 else make_batch(step))[keys.index("text")]
            for step in range(min(steps, _SAMPLE_BATCHES))))
    dtypes = [a.dtype for a in first]
    shapes_ = [(None, *a.shape[1:]) for a in first]

    first_dropped = (tr["word_dropout_from_epoch"] - 1) * steps

    def load(step):
        outputs = tf.numpy_function(make_batch, [step], dtypes, stateful=False)
        for tensor, shape in zip(outputs, shapes_):
            tensor.set_shape(shape)
        inputs = dict(zip(keys, outputs[:-1]))
        inputs["image"] = tf.cast(inputs["image"], tf.float32)
        if np.any(rates):  # batch `step`'s own draw, from `word_dropout_from_epoch` on
            text = inputs["text"]
            inputs["text"] = tf.cond(
                step >= first_dropped,
                lambda: word_dropout(text, rates,
                                     tf.stack([tf.constant(tr["seed"], tf.int64), step])),
                lambda: text)
        return inputs, outputs[-1]

    def train_from(step):
        return (tf.data.Dataset.range(step, epochs * steps)
                .map(load, num_parallel_calls=2, deterministic=True)
                .prefetch(4))

    validation, _ = _memory_split(recipe, tokenizer, "validation", ds["num_validation"])
    info.question_types = None
    return TrainingData(train=train_from(0), validation=validation, info=info,
                        num_train_examples=rows, steps_per_epoch=steps,
                        fresh_each_epoch=True, _train_from=train_from,
                        word_rates=_named_rates(rates, tokenizer))


# Batches of training text whose words give the frequencies of
# `training.word_subsampling` (2,048 rows at the default batch size).
_SAMPLE_BATCHES = 32


def _word_rates(recipe, tokenizer, text_batches):
    """Each word id's drop probability under `training.word_dropout` and `word_subsampling`.

    A number when no subsampling is asked for (`text_batches` is then not
    read); otherwise one rate per id, the frequencies counted on
    `text_batches` (the run's first `_SAMPLE_BATCHES` training batches, so a
    resumed run counts the same).
    """
    tr = recipe.training
    if not tr["word_subsampling"]:
        return tr["word_dropout"]
    ids = np.concatenate([np.asarray(t).ravel() for t in text_batches])
    return dropout_rates(tr["word_dropout"], tr["word_subsampling"], ids,
                         tokenizer.vocab_size)


def _named_rates(rates, tokenizer):
    """`{word: rate}` of the dropped words, most dropped first (all of them at one rate)."""
    words = tokenizer.vocabulary[END + 1:]
    rates = np.broadcast_to(np.asarray(rates, dtype=float), (tokenizer.vocab_size,))[END + 1:]
    order = sorted((i for i in range(len(words)) if rates[i] > 0), key=lambda i: -rates[i])
    return {words[i]: round(float(rates[i]), 3) for i in order}


def _with_word_dropout(train, recipe, tokenizer):
    """`train` with `training.word_dropout` (and subsampling) applied to its text.

    A fresh draw every epoch: each batch's seed comes from
    `tf.data.Dataset.random`, re-drawn on every pass as the seeded shuffle
    is, so `train.repeat()` (a resumed run) replays the same draws.
    """
    import tensorflow as tf

    tr = recipe.training
    if not (tr["word_dropout"] or tr["word_subsampling"]) or "text" not in train.element_spec[0]:
        return train, 0.0
    rate = _word_rates(recipe, tokenizer, (x["text"].numpy()
                                           for x, _ in train.take(_SAMPLE_BATCHES)))
    seeds = tf.data.Dataset.random(seed=recipe.training["seed"],
                                   rerandomize_each_iteration=True).batch(2)

    def drop(batch, seed):
        inputs, labels = batch
        return {**inputs, "text": word_dropout(inputs["text"], rate, seed)}, labels

    return (tf.data.Dataset.zip(train, seeds).map(drop, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE)), rate


def _memory_split(recipe, tokenizer, split, scenes):
    """`(batched dataset, info)` of a split generated in memory."""
    import tensorflow as tf

    ds = recipe.dataset
    x, y, info = shapes_arrays(
        recipe.problem, scenes * rows_per_scene(recipe, split), image_size=ds["image_size"],
        seed=ds["seed"], tokenizer=tokenizer, split=split, **_text_kwargs(recipe, split))
    x = _model_inputs(recipe, x)
    # uint8 in the dataset (4x less memory), float32 per batch; audio as int16 PCM.
    x["image"] = x["image"].astype(np.uint8)
    if "audio" in x:
        x["audio"] = speech.to_pcm16(x["audio"])

    def to_float(inputs, labels):
        inputs = {**inputs, "image": tf.cast(inputs["image"], tf.float32)}
        if "audio" in inputs:
            inputs["audio"] = tf.cast(inputs["audio"], tf.float32) / 32767.0
        return inputs, labels

    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if split == "train":
        tr = recipe.training
        dataset = dataset.shuffle(min(tr["shuffle_buffer"], len(y)), seed=tr["seed"],
                                  reshuffle_each_iteration=True)
    dataset = (dataset.batch(recipe.training["batch_size"])
               .map(to_float, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))
    return dataset, info


def _references(captions):
    return [[" ".join(split_words(str(c))) for c in row] for row in captions]


def _tfds_evaluation_data(recipe, split, tokenizer, data_dir):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    config = tfds_config(recipe)
    if isinstance(config, MmzooShapesConfig):
        name, builder_kwargs = "mmzoo_shapes", {"config": config}
    else:
        name, builder_kwargs = f"mmzoo_shapes/{config}", {}
    raw = tfds.load(name, split=split, data_dir=_data_dir(recipe, data_dir),
                    shuffle_files=False, builder_kwargs=builder_kwargs)
    problem = problems.get(recipe.problem)
    if problem.generates_text:
        images, captions = [], []
        for image, caps in tfds.as_numpy(raw.map(lambda e: (e["image"], e["captions"]))
                                         .batch(256)):
            images.append(image)
            captions.extend([[c.decode("utf-8") for c in row] for row in caps])
        return EvaluationData(images=np.concatenate(images).astype(np.float32),
                              references=_references(captions))
    examples, _ = prepare_examples(raw, recipe.problem, tokenizer, **_text_kwargs(recipe))
    # The file order is fixed (no shuffling), so zipping the raw split's fields
    # with the prepared examples pairs every row with its own group.
    group_key = problem.group_field
    extra = raw.map(lambda e: e[group_key] if group_key else tf.constant(0, tf.int64))
    parts = list(tfds.as_numpy(tf.data.Dataset.zip((examples, extra)).batch(256)))
    inputs = {k: np.concatenate([p[0][0][k] for p in parts]) for k in parts[0][0][0]}
    inputs["image"] = inputs["image"].astype(np.float32)
    labels = np.concatenate([p[0][1] for p in parts])
    groups = {}
    if group_key:
        groups[group_key] = np.concatenate([p[1] for p in parts])
    return EvaluationData(inputs=inputs, labels=labels, groups=groups)
