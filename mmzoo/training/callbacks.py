"""The Keras callbacks of a training run: TensorBoard scalars, the state file, checkpoints.

Both loops use them: Keras `fit` (`mmzoo.training.loop`) and the distributed
step loop (`mmzoo.training.distribute`).
"""

import json
import math
import os
import pathlib

import keras

from mmzoo.training.recipe import monitor_mode


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """`keras.callbacks.ModelCheckpoint` that never leaves a torn checkpoint.

    Keras writes the `.keras` file in place: a run killed while it saves
    (a preempted machine, Ctrl-C) leaves a truncated `best.keras` that no
    longer loads, and the best epoch is lost. This writes
    `<name>.partial.keras` beside it and renames it over the checkpoint
    (`os.replace`, atomic on one file system), so the checkpoint is always
    the last complete one. Same arguments as `ModelCheckpoint`.
    """

    def _get_file_path(self, epoch, batch, logs):
        self._final_path = super()._get_file_path(epoch, batch, logs)
        return partial_path(self._final_path)

    def _save_model(self, epoch, batch, logs):
        self._final_path = None
        super()._save_model(epoch, batch, logs)
        if self._final_path is not None:
            partial = partial_path(self._final_path)
            if os.path.exists(partial):
                os.replace(partial, self._final_path)


def partial_path(path):
    """Where `AtomicModelCheckpoint` writes `path` first: `<stem>.partial<suffix>`."""
    path = pathlib.Path(path)
    return str(path.with_name(f"{path.stem}.partial{path.suffix}"))


class ScalarLogger(keras.callbacks.Callback):
    """TensorBoard scalars per epoch, in `log_dir/train` and `log_dir/validation`.

    Keras's `TensorBoard` callback needs the `tensorboard` package for its
    summaries; this one writes the same event files (tags `epoch_loss`,
    `epoch_accuracy`, ..., and `epoch_learning_rate`) with TensorFlow alone,
    so the logs exist wherever training runs and TensorBoard reads them.

    Args:
        log_dir: the folder to point TensorBoard at.
    """

    def __init__(self, log_dir):
        super().__init__()
        self.log_dir = pathlib.Path(log_dir)
        self._writers = {}

    def _writer(self, split):
        import tensorflow as tf

        if split not in self._writers:
            self._writers[split] = tf.summary.create_file_writer(str(self.log_dir / split))
        return self._writers[split]

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
        values = {"train": {}, "validation": {}}
        for key, value in (logs or {}).items():
            split = "validation" if key.startswith("val_") else "train"
            values[split][key.removeprefix("val_")] = value
        values["train"]["learning_rate"] = self.model.optimizer.learning_rate
        for split, scalars in values.items():
            if not scalars:
                continue
            with self._writer(split).as_default():
                for key, value in scalars.items():
                    tf.summary.write(f"epoch_{key}", tf.cast(value, tf.float32), step=epoch,
                                     metadata=metadata)
            self._writer(split).flush()

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


class RunState(keras.callbacks.Callback):
    """Writes `state.json` after every epoch: what a resumed run needs to continue.

    It also stops the run early: after `patience` epochs without a better
    `monitor` value, as `keras.callbacks.EarlyStopping` would. Counting from
    `best_epoch` rather than keeping a counter of its own means a resumed run
    (which restores `best_epoch` from its backup) stops exactly where the
    uninterrupted run would have.

    Args:
        path: the state file.
        monitor: the quantity that picks the best epoch.
        recipe: the recipe dict, recorded with the state.
        patience: epochs without improvement before stopping; 0 = never.
    """

    def __init__(self, path, monitor, recipe, patience=0):
        super().__init__()
        self.path = pathlib.Path(path)
        self.monitor = monitor
        self.recipe = recipe
        self.patience = int(patience)
        self.stopped_early = False
        self.mode = monitor_mode(monitor)
        self.history = {}
        self.best = None
        self.best_epoch = None
        self.epochs_done = 0
        # Seconds the fit spent in earlier processes of a resumed run (their backup's).
        self.earlier_seconds = 0.0

    def _better(self, value):
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        value = logs.get(self.monitor)
        if value is not None and not math.isnan(value) and self._better(value):
            self.best, self.best_epoch = float(value), epoch + 1
        self.epochs_done = epoch + 1
        if (self.patience and self.best_epoch is not None
                and self.epochs_done - self.best_epoch >= self.patience):
            self.model.stop_training = self.stopped_early = True
        state = {"epochs_done": self.epochs_done, "monitor": self.monitor,
                 "mode": self.mode, "best": self.best, "best_epoch": self.best_epoch,
                 "history": self.history, "recipe": self.recipe}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, self.path)  # never a half-written state
