"""The mmzoo-shapes benchmark's problems: which text and labels each reads, which task each feeds.

A *problem* is a question asked of the benchmark's scenes (answer a question,
does a caption match, which attributes, how many objects, write a caption); a
*task* (`mmzoo.registry.TASKS`) is what a model does with its output (softmax,
sigmoid, ...). Several problems could feed one task, and one task serves users'
own data too, so the data pipeline asks the problem, never the task name.

| problem | task | text | labels |
|---|---|---|---|
| `"vqa"` | classification | the question | int32 answer id, `shapes.ANSWERS` |
| `"matching"` | binary | the matching caption | float32 `(1,)`: 1.0 true, 0.0 false |
| `"attributes"` | multilabel | the question | float32 multi-hot `(43,)`, `shapes.ATTRIBUTES` |
| `"count"` | regression | the question | float32 `(1,)`: the object count |
| `"captions"` | captioning | `[start, w1..wn]` | int32 `[w1..wn, end]`, padded with 0 |
| `"retrieval_pairs"` | retrieval | the first reference caption | float32 `(1,)`: the scene id (unused: pair `i` of a batch is image `i` and text `i`) |
| `"spoken_vqa"` | classification | the question, written and spoken | as `"vqa"` |
| `"spoken_matching"` | binary | the matching caption, written and spoken | as `"matching"` |

The spoken problems (`Problem.spoken`) add an `"audio"` input: the problem's
`audio_field` read aloud by espeak-ng (`mmzoo.data.speech`), float32 16 kHz
waveforms of `audio_samples` samples; the training split is spoken by
`speech.TRAIN_VOICES` only, validation and test by every voice. Besides their
text problem's per-group metric they report accuracy per voice
(`"per_voice"`: `accuracy_voice_<name>`, and `accuracy_train_voices`,
`accuracy_held_out_voices` over the voices kept out of training).

`get(name)` takes a problem name, or a task name for the problem that feeds
it (so `shapes_arrays("classification")` is the VQA problem, as it always was).
"""

import dataclasses

from mmzoo.data import shapes, speech

#: Label formats (what a label array is); `mmzoo.tasks.base.Task.label_format`.
LABEL_FORMATS = ("index", "boolean", "multi_hot", "number", "next_tokens", "pair")


@dataclasses.dataclass(frozen=True)
class GroupMetric:
    """A per-group metric: the task's accuracy over the rows of each group.

    Attributes:
        metric: its name in `eval_metrics` (`"per_question_type"`).
        field: the per-row field of the groups' ids (`"question_type"`; a
            scene field, or `"voice"`, which the spoken rows carry).
        names: the groups' names, indexed by id; the keys are
            `<task prefix><name>` (`accuracy_colour`, `accuracy_voice_us_m1`).
        aggregates: `((suffix, member names), ...)`: an accuracy over the
            rows of several groups each, keyed `accuracy_<suffix>`
            (`accuracy_held_out_voices`).
    """

    metric: str
    field: str
    names: tuple
    aggregates: tuple = ()

    def groups(self, ids):
        """`(ids, names, aggregates)` as a task's `measure(groups=...)` takes them."""
        return (ids, self.names, self.aggregates)


#: Accuracy per voice of the spoken problems, with the voices of training and
#: the held-out ones (never heard in training) together.
PER_VOICE = GroupMetric("per_voice", "voice", speech.VOICE_NAMES, aggregates=(
    ("train_voices", speech.TRAIN_VOICES), ("held_out_voices", speech.HELD_OUT_VOICES)))
PER_QUESTION_TYPE = GroupMetric("per_question_type", "question_type", shapes.QUESTION_TYPES)
PER_PERTURBATION = GroupMetric("per_perturbation", "match_perturbation", shapes.PERTURBATIONS)


@dataclasses.dataclass(frozen=True)
class Problem:
    """One problem of the benchmark.

    Attributes:
        name: the problem's name.
        task: the task it feeds (a `mmzoo.registry.TASKS` name).
        description: one line, for people.
        text_field: the scene text the model reads by default (`"question"`,
            `"match_caption"` or `"caption"`).
        fixed_text: the labels are about that text, so no other may be read.
        label_field: the scene field the labels come from.
        label_format: one of `LABEL_FORMATS`.
        label_names: names of the label ids (or `None`).
        sequence_length: default token ids per text.
        group_metrics: the `GroupMetric`s it reports (per question type,
            per voice, ...); `group_metric`, `group_field` and `group_names`
            are the first one's.
        audio_field: the scene text spoken into the `"audio"` input
            (`"question"`, `"match_caption"`), or None: no audio.
        audio_samples: default samples per waveform (at
            `speech.SAMPLE_RATE`) of a spoken problem.
    """

    name: str
    task: str
    description: str
    text_field: str
    fixed_text: bool
    label_field: str
    label_format: str
    label_names: tuple = None
    sequence_length: int = 16
    group_metrics: tuple = ()
    audio_field: str = None
    audio_samples: int = None

    @property
    def group_metric(self):
        """The first per-group metric's name (e.g. `"per_question_type"`), or None."""
        return self.group_metrics[0].metric if self.group_metrics else None

    @property
    def group_field(self):
        """The first per-group metric's field (e.g. `"question_type"`), or None."""
        return self.group_metrics[0].field if self.group_metrics else None

    @property
    def group_names(self):
        """The first per-group metric's group names, or None."""
        return self.group_metrics[0].names if self.group_metrics else None

    @property
    def spoken(self):
        """Its rows have an `"audio"` input (`audio_field` spoken)."""
        return self.audio_field is not None

    @property
    def generates_text(self):
        """The labels are the text itself, shifted by one token (captions)."""
        return self.label_format == "next_tokens"

    @property
    def pairs_negatives(self):
        """Its rows can come as minimal pairs: a scene's true caption and its one-edit
        false version (`negatives="paired"`; written matching only)."""
        return self.label_field == "match_label" and not self.spoken

    def rows_per_scene(self, captions="all", negatives="sampled"):
        """Rows one scene gives: every reference caption with `captions="all"`,
        both sides of the matching pair with `negatives="paired"`, else 1."""
        if self.generates_text and captions == "all":
            return shapes.NUM_CAPTIONS
        return 2 if (self.pairs_negatives and negatives == "paired") else 1

    def labels_from_scenes(self, data, scenes):
        """NumPy labels of `scenes` (indices into a `generate_scenes` dict)."""
        import numpy as np

        values = data[self.label_field][scenes]
        if self.label_format == "index":
            return values.astype(np.int32)
        if self.label_format == "multi_hot":
            return values.astype(np.float32)
        return values.astype(np.float32)[:, None]  # boolean, number: (N, 1)

    def tf_label(self, example):
        """The label of one TFDS example (a feature dict), as a tensor."""
        import tensorflow as tf

        value = example[self.label_field]
        if self.label_format == "index":
            return tf.cast(value, tf.int32)
        if self.label_format == "multi_hot":
            return tf.reduce_max(tf.one_hot(value, len(self.label_names)), axis=0)
        return tf.cast(value, tf.float32)[None]  # boolean, number: (1,)

    def groups(self, data, scenes):
        """`{group metric: (ids, names, aggregates)}` of `scenes`, for per-group metrics.

        Reads each group metric's field from `data` (a `generate_scenes`
        dict, with `"voice"` added for spoken rows); fields it lacks are left out.
        """
        return {g.metric: g.groups(data[g.field][scenes])
                for g in self.group_metrics if g.field in data}


PROBLEMS = {problem.name: problem for problem in (
    Problem("vqa", "classification", "answer a question about the scene (one of 20 answers)",
            text_field="question", fixed_text=False, label_field="answer",
            label_format="index", label_names=shapes.ANSWERS, sequence_length=16,
            group_metrics=(PER_QUESTION_TYPE,)),
    Problem("matching", "binary", "does the caption describe the scene?",
            text_field="match_caption", fixed_text=True, label_field="match_label",
            label_format="boolean", label_names=("false", "true"), sequence_length=32,
            group_metrics=(PER_PERTURBATION,)),
    Problem("attributes", "multilabel", "which colours, shapes and sizes are in the scene?",
            text_field="question", fixed_text=False, label_field="attributes",
            label_format="multi_hot", label_names=shapes.ATTRIBUTES, sequence_length=16),
    Problem("count", "regression", "how many objects are in the scene?",
            text_field="question", fixed_text=False, label_field="count",
            label_format="number", sequence_length=16),
    Problem("captions", "captioning", "describe the scene in a sentence",
            text_field="caption", fixed_text=True, label_field="captions",
            label_format="next_tokens", sequence_length=32),
    # The first reference caption lists every object with its size, colour and
    # shape (left to right), the most specific of the five: the gallery's pairs.
    Problem("retrieval_pairs", "retrieval", "find the caption of an image, or the image "
            "of a caption, in a gallery", text_field="caption", fixed_text=True,
            label_field="scene_id", label_format="pair", sequence_length=32),
    # Spoken: the same labels, the text also read aloud. Questions fit 3 s at
    # every voice's slowest rate; 99% of match captions fit 10 s.
    Problem("spoken_vqa", "classification", "answer a spoken question about the scene "
            "(one of 20 answers)", text_field="question", fixed_text=True,
            label_field="answer", label_format="index", label_names=shapes.ANSWERS,
            sequence_length=16, group_metrics=(PER_QUESTION_TYPE, PER_VOICE),
            audio_field="question", audio_samples=speech.QUESTION_SAMPLES),
    Problem("spoken_matching", "binary", "does the spoken caption describe the scene?",
            text_field="match_caption", fixed_text=True, label_field="match_label",
            label_format="boolean", label_names=("false", "true"), sequence_length=32,
            group_metrics=(PER_PERTURBATION, PER_VOICE), audio_field="match_caption",
            audio_samples=speech.CAPTION_SAMPLES),
)}

#: Problems with a name but no data yet: `{name: what it will be}`.
RESERVED = {}

#: The tasks the benchmark feeds (each by its first problem; the spoken ones
#: feed classification and binary too).
TASKS = tuple(dict.fromkeys(problem.task for problem in PROBLEMS.values()))
#: Every per-group metric of a problem (a recipe may measure those of its own).
GROUP_METRICS = tuple(dict.fromkeys(g.metric for p in PROBLEMS.values()
                                    for g in p.group_metrics))
TEXT_FIELDS = ("question", "match_caption", "caption")


def get(name):
    """The problem named `name`, or the one that feeds the task named `name`.

    Raises:
        ValueError: neither a problem nor a task the benchmark feeds.
    """
    if isinstance(name, Problem):
        return name
    if isinstance(name, str):
        if name in PROBLEMS:
            return PROBLEMS[name]
        for problem in PROBLEMS.values():
            if problem.task == name:
                return problem
        if name in RESERVED:
            raise ValueError(f"The problem {name!r} is reserved: {RESERVED[name]}. "
                             f"Received: task={name!r}")
    raise ValueError(f"Unknown task. Expected one of {TASKS} (or a problem of "
                     f"{tuple(PROBLEMS)}). Received: task={name!r}")
