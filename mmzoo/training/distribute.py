"""Training beyond one device: tf.distribute strategies and a resumable step loop.

`get_strategy(name)` makes the strategy (`"default"`, `"mirrored"`,
`"multiworker"`, `"tpu"`); `build_distributed_run` builds the recipe's
model, optimizer and metrics under its scope; `fit_steps` trains with a loop
of `strategy.run` steps (Keras 3 `model.fit` fails under
`MultiWorkerMirroredStrategy`, keras-team/keras#20585), with the same
callbacks, progress bar, TensorBoard logs, checkpoints and `state.json` as
`mmzoo.training.fit`, plus exact resume (`mmzoo.training.resume`).

The recipe's `training.batch_size` is the **global** batch: each of the N
replicas gets `batch_size / N` rows of every global batch, so one worker and
two workers see the same batches and follow the same loss curve.

Example:

```python
strategy = get_strategy("mirrored")
run = build_distributed_run("recipes/tiny_vqa.toml", strategy)
history, state = fit_steps(run, "runs/tiny", strategy=strategy)
```
"""

import json
import os
import pathlib
import sys
import time

import keras

from mmzoo.training.callbacks import AtomicModelCheckpoint, RunState, ScalarLogger
from mmzoo.training.resume import Backup, truncate_step_log
from mmzoo.training.run import build_run, claim_run_folder

STRATEGIES = ("default", "mirrored", "multiworker", "tpu")


def get_strategy(name="default", *, tpu=None, devices=None):
    """A `tf.distribute.Strategy` by name.

    Args:
        name: `"default"` (one device), `"mirrored"` (all local GPUs, or all
            logical CPUs when there is no GPU), `"multiworker"` (synchronous
            data parallelism over the workers of `TF_CONFIG`), `"tpu"`.
        tpu: the TPU's name or `grpc://` address (`"tpu"` only; default:
            `TPU_NAME`, or the local TPU VM).
        devices: `"mirrored"` only: the devices to mirror over.

    Returns:
        The strategy. Create it before any other TensorFlow work in the
        process (`"multiworker"` and `"tpu"` require it).

    Raises:
        ValueError: an unknown name, or no TPU to connect to.
    """
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if devices is None:
            gpus = tf.config.list_logical_devices("GPU")
            devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        tpu = tpu if tpu is not None else os.environ.get("TPU_NAME", "local")
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except Exception as e:  # resolver errors are ValueError, NotFoundError, ...
            raise ValueError(
                f"Could not connect to a TPU ({type(e).__name__}: {str(e).splitlines()[0]}). "
                "On a Cloud TPU VM use tpu='local'; elsewhere pass the TPU's name or its "
                f"grpc:// address, or set TPU_NAME. Received: tpu={tpu!r}") from None
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"Unknown strategy. Expected one of {', '.join(STRATEGIES)}. "
                     f"Received: strategy={name!r}")


def is_chief():
    """Whether this process is the chief (or only) worker of `TF_CONFIG`."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task") or {}
    kind, index = task.get("type", "worker"), task.get("index", 0)
    if "chief" in config.get("cluster", {}):
        return kind == "chief"
    return kind == "worker" and index == 0


def worker_dir(out_dir):
    """The folder this worker writes to: `out_dir` on the chief, a sub-folder elsewhere.

    Every worker must save (saving has collective steps) but only the chief's
    files are the run's.
    """
    out_dir = pathlib.Path(out_dir)
    if is_chief():
        return out_dir
    config = json.loads(os.environ["TF_CONFIG"])
    name = f"worker-{config['task']['index']}"
    return out_dir if out_dir.name == name else out_dir / name


def has_backup(out_dir):
    """Whether `out_dir` (this worker's part of it) holds a backup to resume from."""
    return Backup(worker_dir(out_dir) / "backup").exists()


def build_distributed_run(recipe, strategy, **kwargs):
    """`build_run` with the model, optimizer and metrics made under `strategy.scope()`.

    Args:
        recipe: a `Recipe` or a recipe file.
        strategy: a `tf.distribute.Strategy` (see `get_strategy`).
        **kwargs: `epochs`, `seed`, `data_dir` as for `build_run`.

    Returns:
        A `TrainingRun`.

    Raises:
        ValueError: the global batch size does not divide among the replicas.
    """
    with strategy.scope():
        run = build_run(recipe, **kwargs)
    replicas = strategy.num_replicas_in_sync
    batch = run.recipe.training["batch_size"]
    if batch % replicas:
        raise ValueError(
            f"training.batch_size is the global batch and must divide among the "
            f"{replicas} replicas. Received: batch_size={batch}")
    return run


def _distribute(dataset, strategy, global_batch):
    """Each replica's share of every global batch, in order.

    Worker (input pipeline) `i` of `P` takes rows `[i*B/P, (i+1)*B/P)` of each
    global batch `B` and hands its local replicas consecutive `B/N` slices.
    Global batches smaller than `B` (an epoch's remainder) cannot be split
    evenly and are dropped when there is more than one replica.
    """
    import tensorflow as tf

    replicas = strategy.num_replicas_in_sync
    if replicas == 1:
        return strategy.experimental_distribute_dataset(dataset) \
            if strategy is not tf.distribute.get_strategy() else dataset
    per_replica = global_batch // replicas

    def dataset_fn(context):
        pipelines, index = context.num_input_pipelines, context.input_pipeline_id
        per_worker = global_batch // pipelines
        local = replicas // pipelines

        def full(inputs, labels):
            return tf.shape(labels)[0] == global_batch

        def split(inputs, labels):
            def part(t):
                t = t[index * per_worker:(index + 1) * per_worker]
                rest = t.shape[1:]
                # Static shapes where known: a TPU compiles for fixed shapes.
                rest = rest.as_list() if rest.is_fully_defined() else tf.shape(t)[1:]
                return tf.reshape(t, tf.concat([[local, per_replica], rest], 0)
                                  if not isinstance(rest, list) else [local, per_replica, *rest])
            return tf.data.Dataset.from_tensor_slices(tf.nest.map_structure(part,
                                                                            (inputs, labels)))

        return dataset.filter(full).flat_map(split).prefetch(tf.data.AUTOTUNE)

    options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
    return strategy.distribute_datasets_from_function(dataset_fn, options)


def _num_workers():
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    cluster = config.get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def _min_over_workers(strategy, value):
    """The smallest of every worker's `value` (a collective: all workers call it)."""
    import tensorflow as tf

    values = strategy.experimental_distribute_values_from_function(
        lambda context: tf.constant([value], tf.int64))
    return int(tf.reduce_min(strategy.gather(values, axis=0)))


def make_step_functions(model, strategy, *, jit_compile=False):
    """The distributed train and test steps: `strategy.run` of Keras's own steps.

    Args:
        model: a compiled model made under `strategy.scope()`.
        strategy: the strategy.
        jit_compile: compile the steps with XLA (always so on a TPU).

    Returns:
        `(train_step, test_step)`: each takes a distributed batch and returns
        the logs, averaged over all replicas of all workers.
    """
    import tensorflow as tf

    def reduce(logs):
        return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                for k, v in logs.items()}

    @tf.function(jit_compile=False)
    def train_step(batch):
        return reduce(strategy.run(_maybe_jit(model.train_step, jit_compile), args=(batch,)))

    @tf.function(jit_compile=False)
    def test_step(batch):
        return reduce(strategy.run(_maybe_jit(model.test_step, jit_compile), args=(batch,)))

    return train_step, test_step


def _maybe_jit(step, jit_compile):
    import tensorflow as tf

    return tf.function(step, jit_compile=True) if jit_compile else step


def _float_logs(logs):
    return {k: float(v) for k, v in logs.items()}


def fit_steps(run, out_dir, *, strategy=None, resume=True, backup_every=1, verbose="auto",
              callbacks=(), jit_compile=False):
    """Trains a `TrainingRun` step by step under a strategy, resumable exactly.

    The same files as `mmzoo.training.fit` (`checkpoints/best.keras`,
    `checkpoints/last.keras`, `state.json`, `logs/`), plus `steps.jsonl`
    (one line per global step: step, epoch, loss and metrics) and
    `backup/backup.npz` (see `mmzoo.training.resume`), which is removed when
    the run finishes.

    Args:
        run: a `TrainingRun`, built under `strategy.scope()`
            (`build_distributed_run`).
        out_dir: the work folder.
        strategy: the strategy (default: the default strategy).
        resume: continue from `out_dir/backup` when there is one.
        backup_every: global steps between backups (and always at an epoch's end).
        verbose: `"auto"`, 0, 1 or 2, as for `fit`.
        callbacks: more Keras callbacks.
        jit_compile: XLA-compile each replica's step (on a TPU every step
            is compiled with XLA anyway).

    Returns:
        `(history, state)` as `fit`.
    """
    import tensorflow as tf

    strategy = strategy or tf.distribute.get_strategy()
    model, tr = run.model, run.recipe.training
    out = pathlib.Path(out_dir)
    mine = claim_run_folder(worker_dir(out))
    (mine / "checkpoints").mkdir(parents=True, exist_ok=True)
    chief = is_chief()
    monitor = tr["monitor"]
    epochs, global_batch = tr["epochs"], tr["batch_size"]
    replicas = strategy.num_replicas_in_sync
    num_train = run.data.num_train_examples
    steps_per_epoch = num_train // global_batch if replicas > 1 else run.data.steps_per_epoch
    if steps_per_epoch < 1:
        raise ValueError(f"Fewer training rows ({num_train}) than one global batch. "
                         f"Received: batch_size={global_batch}")

    # Early stopping is RunState's: it counts from the best epoch, which the
    # backup restores, so a resumed run stops where an uninterrupted one would.
    state = RunState(mine / "state.json", monitor, run.recipe.to_dict(),
                     patience=tr["early_stopping_patience"])
    best_checkpoint = AtomicModelCheckpoint(
        str(mine / "checkpoints" / "best.keras"), monitor=monitor, mode=state.mode,
        save_best_only=True)
    all_callbacks = [best_checkpoint,
                     AtomicModelCheckpoint(str(mine / "checkpoints" / "last.keras")),
                     keras.callbacks.TerminateOnNaN(), state]
    if chief:
        all_callbacks.append(ScalarLogger(mine / "logs"))
    all_callbacks.extend(callbacks)
    if verbose == "auto":
        verbose = 1 if sys.stdout.isatty() else 2
    if not chief:
        verbose = 0
    callback_list = keras.callbacks.CallbackList(
        all_callbacks, add_history=False, add_progbar=bool(verbose), model=model,
        verbose=verbose, epochs=epochs, steps=steps_per_epoch)

    with strategy.scope():
        # Metric and optimizer variables exist before a backup is restored
        # into them, and are never created inside a replica's step.
        model._symbolic_build(data_batch=run.data.train.element_spec)
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    backup = Backup(mine / "backup")
    step_log = mine / "steps.jsonl"
    header = None
    if resume:
        steps = backup.steps()
        step = steps[0] if steps else 0
        if _num_workers() > 1:
            # Workers killed between their saves of one step are one backup
            # apart: all take the oldest latest one (each keeps the previous).
            step = _min_over_workers(strategy, step)
            if step and step not in steps:
                raise ValueError(
                    f"The workers' backups do not meet: this worker has steps {steps}, "
                    f"another is at step {step}. Start afresh with resume=False. "
                    f"Received: out_dir={str(out)!r}")
        if step:
            with strategy.scope():
                header = backup.restore(model, step=step)
    if header:
        step, meta = header["step"], header["meta"]
        state.history = meta["history"]
        state.best, state.best_epoch = meta["best"], meta["best_epoch"]
        state.epochs_done = meta["epochs_done"]
        # Backups written before the field existed count from this process on.
        state.earlier_seconds = float(meta.get("seconds", 0.0))
        if meta["best"] is not None:
            best_checkpoint.best = meta["best"]
        truncate_step_log(step_log, step)
    else:
        step = 0
        step_log.unlink(missing_ok=True)
        backup.remove()

    # The batches from the step reached on: the same batches in the same
    # order as a run never interrupted (a seeded shuffle replayed from its
    # start, or a stream of fresh scenes generated from that batch).
    train = _distribute(run.data.train_from(step), strategy, global_batch)
    train_step, test_step = make_step_functions(model, strategy, jit_compile=jit_compile)

    started = time.perf_counter()

    def save_backup():
        # The fit's seconds so far, this process and the ones before: a resumed
        # run's card reports all its training time, not the last part.
        backup.save(model, step=step, meta={
            "epochs_done": state.epochs_done, "history": state.history, "best": state.best,
            "best_epoch": state.best_epoch,
            "seconds": state.earlier_seconds + time.perf_counter() - started})

    model.stop_training = False
    callback_list.on_train_begin()
    iterator = iter(train)
    epoch = step // steps_per_epoch
    logs = {}
    with open(step_log, "a") as log_file:
        while epoch < epochs and not model.stop_training:
            first = step - epoch * steps_per_epoch
            callback_list.on_epoch_begin(epoch)
            if first == 0:
                model.reset_metrics()  # mid-epoch, the backup restored the running totals
            for batch_index in range(first, steps_per_epoch):
                callback_list.on_train_batch_begin(batch_index)
                logs = _float_logs(train_step(next(iterator)))
                step += 1
                log_file.write(json.dumps({"step": step, "epoch": epoch + 1, **logs}) + "\n")
                log_file.flush()
                end_of_epoch = batch_index == steps_per_epoch - 1
                if not end_of_epoch and step % backup_every == 0:
                    save_backup()
                callback_list.on_train_batch_end(batch_index, logs)
                if model.stop_training:
                    break
            epoch_logs = dict(logs)
            if run.data.validation is not None:
                model.reset_metrics()
                for batch in _distribute(run.data.validation, strategy, global_batch):
                    val_logs = test_step(batch)
                epoch_logs.update({f"val_{k}": v for k, v in _float_logs(val_logs).items()})
            callback_list.on_epoch_end(epoch, epoch_logs)
            epoch += 1
            save_backup()
    callback_list.on_train_end(epoch_logs if epochs else {})
    backup.remove()
    best = mine / "checkpoints" / "best.keras"
    if tr["restore_best"] and best.exists() and state.best_epoch != state.epochs_done:
        model.load_weights(best)
    return state.history, state
