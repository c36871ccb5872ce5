"""TFDS builder for mmzoo-shapes, a synthetic multimodal benchmark.

Importing this module registers `mmzoo_shapes` with TFDS; the data is
generated locally from a seed (nothing is downloaded).

Example:

```python
import mmzoo.data  # registers the builder
import tensorflow_datasets as tfds

ds = tfds.load("mmzoo_shapes", split="train", data_dir="~/tensorflow_datasets")
ds = tfds.load("mmzoo_shapes/32px", split="test")
# A custom size (the name encodes the settings, so builds never collide):
config = mmzoo.data.shapes_config(image_size=32, num_train=500, num_validation=50,
                                  num_test=50)
ds = tfds.load("mmzoo_shapes", split="train", builder_kwargs={"config": config})
# Spoken questions (needs espeak-ng: `apt-get install espeak-ng`), see mmzoo.data.speech:
ds = tfds.load("mmzoo_shapes/spoken_32px", split="test")  # + "audio" (int16, 16 kHz), "voice"
```
"""

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from mmzoo.data import render, shapes, speech

_DESCRIPTION = """\
mmzoo-shapes: synthetic scenes of 1-6 coloured geometric objects (5 shapes,
6 colours, 2 sizes) on a noisy grey background with clutter strokes. Each scene
has 5 reference captions; a question with its answer from a fixed vocabulary
of 20 and its type (colour, shape, count, existence, relational), answers
balanced per type so that the question alone does not give the answer; a
caption/is-true pair whose false captions change exactly one attribute or
relation (hard negatives); the attributes present (multilabel), the object
count and the scene graph (objects with bounding boxes). Splits never share a
scene layout. Generated locally and deterministically from a seed.
"""

_CITATION = """\
@misc{mmzoo_shapes,
  title = {mmzoo-shapes: a synthetic multimodal benchmark},
  note = {Part of the mmzoo model zoo},
}
"""


@dataclasses.dataclass(eq=False)
class MmzooShapesConfig(tfds.core.BuilderConfig):
    """Settings of one mmzoo-shapes build.

    Attributes:
        image_size: image side in pixels (32, 64, 128, or any >= 16).
        num_train, num_validation, num_test: examples per split.
        seed: the generator seed; same settings, same bytes.
        spoken: add the question spoken by espeak-ng (`audio`, int16 PCM at
            16 kHz, `audio_samples` long) and its speaker (`voice`, a name from
            `speech.VOICE_NAMES`). The train split is spoken by the training
            voices only; validation and test by all voices, the held-out ones
            included (see `mmzoo.data.speech`).
        audio_samples: length of `audio` (default 3 s; every question fits).
        caption_audio_samples: if > 0 (and `spoken`), add the matching
            pair's caption spoken (`caption_audio`, this long; 160000 = 10 s)
            and its speaker (`caption_voice`).
    """

    image_size: int = 64
    num_train: int = 20_000
    num_validation: int = 2_000
    num_test: int = 2_000
    seed: int = 0
    spoken: bool = False
    audio_samples: int = speech.QUESTION_SAMPLES
    caption_audio_samples: int = 0


def shapes_config(image_size=64, num_train=20_000, num_validation=2_000, num_test=2_000,
                  seed=0, name=None, spoken=False, audio_samples=speech.QUESTION_SAMPLES,
                  caption_audio_samples=0):
    """A `MmzooShapesConfig` whose name encodes its settings.

    Pass it as `builder_kwargs={"config": config}` to `tfds.load`. The name
    decides where TFDS caches the data, so different settings never collide.
    `spoken=True` adds spoken questions (and captions with
    `caption_audio_samples > 0`); see `MmzooShapesConfig`.
    """
    shapes._check_image_size(image_size)
    for key, value in (("num_train", num_train), ("num_validation", num_validation),
                       ("num_test", num_test), ("seed", seed)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
            raise ValueError(f"`{key}` must be a non-negative integer. Received: "
                             f"{key}={value!r}")
    if not isinstance(spoken, bool):
        raise ValueError(f"`spoken` must be True or False. Received: spoken={spoken!r}")
    for key, value, low in (("audio_samples", audio_samples, 1),
                            ("caption_audio_samples", caption_audio_samples, 0)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ValueError(f"`{key}` must be an integer >= {low}. Received: {key}={value!r}")
    if caption_audio_samples and not spoken:
        raise ValueError("`caption_audio_samples` needs `spoken=True`. Received: "
                         f"spoken=False, caption_audio_samples={caption_audio_samples!r}")
    description = (f"{image_size}x{image_size} images, {num_train}/{num_validation}/"
                   f"{num_test} train/validation/test scenes, seed {seed}.")
    if spoken:
        description += (f" Spoken questions ({audio_samples} samples at {speech.SAMPLE_RATE} "
                        "Hz, int16)" + (f" and captions ({caption_audio_samples} samples)"
                                        if caption_audio_samples else "") + ".")
    if name is None:
        name = f"{image_size}px_{num_train}_{num_validation}_{num_test}_seed{seed}"
        if spoken:
            name += f"_spoken{audio_samples}" + (f"_captions{caption_audio_samples}"
                                                 if caption_audio_samples else "")
    return MmzooShapesConfig(
        name=name, image_size=int(image_size), num_train=int(num_train),
        num_validation=int(num_validation), num_test=int(num_test), seed=int(seed),
        spoken=spoken, audio_samples=int(audio_samples),
        caption_audio_samples=int(caption_audio_samples), description=description)


class MmzooShapes(tfds.core.GeneratorBasedBuilder):
    """mmzoo-shapes: captions, VQA, image-text matching, attributes, counts."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        shapes_config(64, name="64px"),
        shapes_config(32, name="32px"),
        shapes_config(128, name="128px"),
        shapes_config(32, num_train=48, num_validation=16, num_test=16, name="tiny"),
        # Spoken questions; needs espeak-ng to build (see mmzoo.data.speech).
        shapes_config(32, spoken=True, name="spoken_32px"),
        shapes_config(32, num_train=24, num_validation=8, num_test=8, spoken=True,
                      caption_audio_samples=speech.CAPTION_SAMPLES, name="spoken_tiny"),
    ]
    DEFAULT_CONFIG_NAME = "64px"

    def _info(self):
        cfg = self.builder_config
        size = cfg.image_size
        spoken = {}
        if cfg.spoken:
            # int16 PCM (all espeak-ng writes) stored as raw bytes: 2 bytes a sample,
            # half of float32 (an int64 list in a tf.train.Example takes ~6). A
            # Tensor, not tfds.features.Audio, which ignores `encoding` for arrays.
            spoken["audio"] = _pcm_feature(cfg.audio_samples, "the question")
            spoken["voice"] = tfds.features.ClassLabel(names=speech.VOICE_NAMES)
            if cfg.caption_audio_samples:
                spoken["caption_audio"] = _pcm_feature(cfg.caption_audio_samples,
                                                       "the match caption")
                spoken["caption_voice"] = tfds.features.ClassLabel(names=speech.VOICE_NAMES)
        return self.dataset_info_from_configs(
            description=_DESCRIPTION,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(size, size, 3), encoding_format="png"),
                "scene_id": np.int64,
                "captions": tfds.features.Sequence(tfds.features.Text(),
                                                   length=shapes.NUM_CAPTIONS),
                "question": tfds.features.Text(),
                "answer": tfds.features.ClassLabel(names=shapes.ANSWERS),
                "question_type": tfds.features.ClassLabel(names=shapes.QUESTION_TYPES),
                "match_caption": tfds.features.Text(),
                "match_label": tfds.features.ClassLabel(names=["false", "true"]),
                "match_perturbation": tfds.features.ClassLabel(names=shapes.PERTURBATIONS),
                "attributes": tfds.features.Sequence(
                    tfds.features.ClassLabel(names=shapes.ATTRIBUTES)),
                "count": np.int64,
                "objects": tfds.features.Sequence({
                    "shape": tfds.features.ClassLabel(names=shapes.SHAPES),
                    "colour": tfds.features.ClassLabel(names=shapes.COLOURS),
                    "size": tfds.features.ClassLabel(names=shapes.SIZES),
                    "bbox": tfds.features.BBoxFeature(),
                }),
                **spoken,
            }),
            homepage="https://github.com/mmzoo/mmzoo",
            # Scenes are i.i.d. already; unshuffled, the files keep stream order
            # (the order of `generate_scenes`), and the build skips a pass.
            disable_shuffling=True,
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # everything is generated locally
        cfg = self.builder_config
        return {
            "train": self._generate_examples("train", cfg.num_train),
            "validation": self._generate_examples("validation", cfg.num_validation),
            "test": self._generate_examples("test", cfg.num_test),
        }

    def _generate_examples(self, split, num_examples):
        cfg = self.builder_config
        for batch in shapes.iter_scene_batches(num_examples, split, cfg.image_size, cfg.seed):
            extra = _spoken(cfg, split, batch) if cfg.spoken else None
            for i, scene in enumerate(batch["scenes"]):
                example = _example(scene, batch["image"][i])
                if extra is not None:
                    example.update({k: v[i] for k, v in extra.items()})
                yield int(scene.scene_id), example


def _pcm_feature(samples, what):
    return tfds.features.Tensor(
        shape=(samples,), dtype=np.int16, encoding=tfds.features.Encoding.BYTES,
        doc=f"{what}, spoken: int16 PCM, {speech.SAMPLE_RATE} Hz mono, divide by 32767 "
            "for [-1, 1]")


def _spoken(cfg, split, batch):
    # Training voices for training; every voice (held-out ones too) to evaluate on.
    voices = "train" if split == "train" else "all"
    audio, voice = speech.spoken_questions(batch, split, cfg.seed, samples=cfg.audio_samples,
                                           voices=voices)
    out = {"audio": speech.to_pcm16(audio), "voice": voice}
    if cfg.caption_audio_samples:
        audio, voice = speech.spoken_captions(batch, split, cfg.seed,
                                              samples=cfg.caption_audio_samples, voices=voices)
        out.update(caption_audio=speech.to_pcm16(audio), caption_voice=voice)
    return out


def _example(scene, image):
    objects = {"shape": [], "colour": [], "size": [], "bbox": []}
    for o in scene.objects:
        objects["shape"].append(o.shape)
        objects["colour"].append(o.colour)
        objects["size"].append(o.size)
        e = o.radius * shapes._EXTENT
        objects["bbox"].append(tfds.features.BBox(
            ymin=max(o.y - e, 0.0), xmin=max(o.x - e, 0.0),
            ymax=min(o.y + e, 1.0), xmax=min(o.x + e, 1.0)))
    return {
        # Pre-encoded: our PNG writer is ~3x faster than TFDS's (TF) encoder.
        "image": render.encode_png(image),
        "scene_id": scene.scene_id,
        "captions": list(scene.captions),
        "question": scene.question,
        "answer": scene.answer,
        "question_type": scene.question_type,
        "match_caption": scene.match_caption,
        "match_label": scene.match_label,
        "match_perturbation": scene.match_perturbation,
        "attributes": np.flatnonzero(scene.attributes()).tolist(),
        "count": scene.count,
        "objects": objects,
    }
