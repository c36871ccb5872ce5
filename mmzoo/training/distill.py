"""Cross-modal feature distillation: a new branch learns the features a trained branch gives.

A spoken-VQA model need not learn the scenes again: it can take a written-VQA
model's image branch, FiLM blocks and head (warm start, `training.init_from`)
and learn only to *hear* the question. Spoken mmzoo-shapes rows carry the
question both written and spoken, so the trained text branch (the teacher)
gives, for each row, the feature vector its FiLM blocks were trained on, and
the new audio branch (the student) learns to give the same vector from the
waveform. That is a regression from audio to a vector: no image, no fusion,
no answer is computed, so it costs a fraction of a training step of the
whole model. The downstream layers then read the student's features as they
read the teacher's.

This is feature-level distillation ("hints": Romero et al. 2015, "FitNets:
Hints for thin deep nets") across modalities, as in Gupta, Hoffman & Malik
2016, "Cross modal distillation for supervision transfer", where paired
data of two modalities carry a trained network's supervision from one to the
other.

The same stage replaces a branch of one modality by a branch of another
design: `distill_from = distill_to = "text"` teaches a text CNN, which
exports to int8 TFLite as a few convolutions, the features a GRU gives (the
`mobile_vqa` entry: `shapes_vqa` with a phone-sized question encoder).

In a recipe (`mmzoo.training.recipe`):

```toml
[training]
init_from = "shapes_vqa"        # image branch, FiLM blocks and head
freeze = "copied"               # ... and they are not trained further
distill_from = "text"           # shapes_vqa's text branch is the teacher
distill_to = "audio"            # the new audio branch is the student
distill_epochs = 10             # then `epochs` on the task, end to end
```

In Python, on any pair of branches:

```python
import keras, numpy as np
from mmzoo.training.distill import FeatureDistiller

teacher = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="t")])
student = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, name="s")])
distiller = FeatureDistiller(student, teacher, student_input="b", teacher_input="a")
distiller.compile(optimizer="adam")
x = {"a": np.ones((8, 4), "float32"), "b": np.ones((8, 6), "float32")}
distiller.fit(x, epochs=1, verbose=0)   # no labels: the teacher gives the targets
```
"""

import contextlib
import dataclasses
import json
import pathlib
import time

import keras
from keras import ops

#: The run folder's subfolder of the distillation stage.
FOLDER = "distill"


class FeatureDistiller(keras.Model):
    """Trains `student` to give `teacher`'s features of the same example, read in another input.

    The loss is the mean squared error between the student's features of
    `x[student_input]` and the teacher's of `x[teacher_input]` (the teacher
    runs in inference mode, its output held constant); `y` is ignored. Only
    the student's weights train. The metric `cosine` is the mean cosine
    similarity of the two feature vectors (1 when they point the same way).

    Args:
        student: a `keras.Model`, `(batch, ...) -> (batch, features)`.
        teacher: a trained `keras.Model` with the same output shape.
        student_input: the key of the student's input in the batches.
        teacher_input: the key of the teacher's input.

    Raises:
        ValueError: the two output shapes differ (named).

    Call:
        `distiller(x)` is `student(x[student_input])`.
    """

    def __init__(self, student, teacher, student_input, teacher_input, **kwargs):
        super().__init__(**kwargs)
        s, t = _feature_shape(student), _feature_shape(teacher)
        if s != t:
            raise ValueError(f"The student's features must have the teacher's shape to learn "
                             f"them: student {student.name!r} gives {s}, teacher "
                             f"{teacher.name!r} gives {t}.")
        self.student, self.teacher = student, teacher
        self.student_input, self.teacher_input = student_input, teacher_input
        self.teacher.trainable = False
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.cosine_tracker = keras.metrics.Mean(name="cosine")

    @property
    def metrics(self):
        return [self.loss_tracker, self.cosine_tracker]

    def call(self, inputs, training=False):
        return self.student(inputs[self.student_input], training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        target = ops.stop_gradient(self.teacher(x[self.teacher_input], training=False))
        y_pred = ops.cast(y_pred, "float32")
        target = ops.cast(target, "float32")
        loss = ops.mean(ops.square(y_pred - target))
        cosine = ops.sum(y_pred * target, axis=-1) / (
            ops.norm(y_pred, axis=-1) * ops.norm(target, axis=-1) + 1e-8)
        self.loss_tracker.update_state(loss)
        self.cosine_tracker.update_state(ops.mean(cosine))
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return {m.name: m.result() for m in self.metrics}


def _feature_shape(model):
    """A model's output shape without the batch axis."""
    outputs = model.outputs
    if not outputs or len(outputs) != 1:
        raise ValueError(f"Distillation takes models with one output. Received: {model.name!r} "
                         f"with {len(outputs or [])} outputs.")
    return tuple(outputs[0].shape[1:])


@dataclasses.dataclass(frozen=True)
class Distillation:
    """What the distillation stage of a run did (`distill_run`).

    Attributes:
        teacher: `"<init_from>/<branch>"`, the branch whose features were learned.
        student: the new model's branch that learned them.
        epochs: epochs of distillation.
        seconds: its wall time (part of the run's training time).
        history: per epoch: `loss` (mean squared error), `cosine` (mean
            cosine similarity of student and teacher features), and
            `val_loss`, `val_cosine` on the validation split.
        resumed: the stage had finished before and was read back from the
            run folder rather than run again.
    """

    teacher: str
    student: str
    epochs: int
    seconds: float
    history: dict
    resumed: bool = False

    def to_dict(self):
        """The record kept in the run folder and the entry's metadata."""
        return {"teacher": self.teacher, "student": self.student, "epochs": self.epochs,
                "seconds": round(self.seconds, 1), "history": self.history}

    def summary(self):
        """One line, e.g. "distilled shapes_vqa/text_gru into audio_gru: 10 epochs, ..."."""
        last = {k: v[-1] for k, v in self.history.items() if v}
        scores = ", ".join(f"{k} {v:.4g}" for k, v in last.items())
        again = " (read back from the run folder)" if self.resumed else ""
        return (f"distilled {self.teacher} into {self.student}: {self.epochs} epochs in "
                f"{self.seconds:.0f} s, {scores}{again}")


def distill_run(run, out_dir, *, data_dir=None, verbose="auto", strategy=None):
    """The distillation stage of a `TrainingRun` whose recipe sets `training.distill_*`.

    The student is the run model's `distill_to` branch (the layers `init_from`
    did not start); the teacher is the `distill_from` branch of the
    `init_from` model. For `distill_epochs` epochs of the recipe's training
    rows, written and spoken alike (`batch_size`, `optimizer`,
    `lr_schedule`; `distill_learning_rate`, else `learning_rate`), the
    student learns the teacher's features of the same rows
    (`FeatureDistiller`). The student's weights stay in the run model.

    The stage keeps its own files under `<out_dir>/distill/`: a backup at
    each epoch's end (a killed stage continues from its last finished
    epoch), then the student's weights and the record, so that a resumed run
    reads the finished stage back instead of running it again.

    Args:
        run: a `TrainingRun` (`build_run`) of a recipe with distillation.
        out_dir: the run folder.
        data_dir: TFDS folder, as for `build_run`.
        verbose: Keras `fit` verbosity.
        strategy: the `tf.distribute.Strategy` the run model was built under.

    Returns:
        A `Distillation`.

    Raises:
        ValueError: the teacher branch reads inputs of another length than
            the recipe's rows (named).
    """
    from mmzoo.modalities import branch_of
    from mmzoo.training.data import load_training_data
    from mmzoo.training.run import make_optimizer
    from mmzoo.training.warm_start import load_source

    recipe = run.recipe
    tr = recipe.training
    folder = pathlib.Path(out_dir) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    weights, record = folder / "student.weights.h5", folder / "distillation.json"
    student = branch_of(run.model, tr["distill_to"])
    if weights.exists() and record.exists():  # finished before: read back, teacher unneeded
        student.load_weights(weights)
        done = json.loads(record.read_text())
        return Distillation(teacher=done["teacher"], student=done["student"],
                            epochs=done["epochs"], seconds=done["seconds"],
                            history=done["history"], resumed=True)
    source = tr["init_from"]
    teacher = branch_of(load_source(source)[0], tr["distill_from"])
    teacher_name = f"{pathlib.Path(str(source)).name}/{teacher.name}"
    if not student.trainable_weights:
        raise ValueError(
            f"The student branch {student.name!r} has nothing to learn: it is "
            f"{teacher_name!r}'s own, copied by the warm start and frozen. Distil into "
            f"another branch (e.g. another {tr['distill_to']}_branch than the teacher's).")
    staged = dataclasses.replace(
        recipe, training={**tr, "epochs": tr["distill_epochs"],
                          "learning_rate": tr["distill_learning_rate"] or tr["learning_rate"]},
        modalities=tuple(dict.fromkeys((*recipe.modalities, tr["distill_from"]))))
    data = load_training_data(staged, data_dir=data_dir)
    x, _ = next(iter(data.validation.take(1)))
    have, want = tuple(x[tr["distill_from"]].shape[1:]), tuple(teacher.inputs[0].shape[1:])
    if len(have) != len(want) or any(w is not None and h != w for h, w in zip(have, want)):
        raise ValueError(
            f"The teacher {teacher_name!r} reads {tr['distill_from']} inputs of shape "
            f"{want}; the recipe's rows give {have}: set dataset.sequence_length (or the "
            f"input size) to the teacher's.")
    start = time.perf_counter()
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        distiller = FeatureDistiller(student, teacher, student_input=tr["distill_to"],
                                     teacher_input=tr["distill_from"],
                                     name=f"distill_{student.name}")
        distiller(x)  # built before fit: BackupAndRestore needs it
        distiller.compile(optimizer=make_optimizer(staged, data.steps_per_epoch))
    # A killed stage's backup holds its last finished epoch; Keras restores the
    # weights and the optimizer and goes on from that epoch, and the batches
    # must go on from there too (not from the first epoch's again).
    backup = keras.callbacks.BackupAndRestore(str(folder / "backup"))
    done_epochs = _backed_up_epochs(folder / "backup")
    train = (data.train_from(done_epochs * data.steps_per_epoch) if done_epochs
             else data.train)
    fitted = distiller.fit(
        train, epochs=tr["distill_epochs"], steps_per_epoch=data.steps_per_epoch,
        validation_data=data.validation, verbose=verbose, shuffle=False,
        callbacks=[backup])
    seconds = time.perf_counter() - start
    history = {k: [float(v) for v in values] for k, values in fitted.history.items()}
    result = Distillation(teacher=teacher_name, student=student.name,
                          epochs=tr["distill_epochs"], seconds=seconds, history=history)
    student.save_weights(weights)
    record.write_text(json.dumps(result.to_dict(), indent=1))
    return result


def _backed_up_epochs(backup_dir):
    """Epochs a killed stage finished, from Keras's `BackupAndRestore` record (0 if none)."""
    record = pathlib.Path(backup_dir) / "training_metadata.json"
    if not record.exists():
        return 0
    return int(json.loads(record.read_text())["epoch"])
