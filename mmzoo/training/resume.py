"""Exact resume: step-level backups of a training run, written atomically.

A backup holds everything the next step depends on: the model's variables
(weights and the random seed generators of its layers), the optimizer's
(slots, iteration count: the learning-rate schedule follows it), the
metrics' running totals, Keras's global seed generator, the data position
(global steps done; the seeded stream is replayed to it) and the per-epoch
state (history, best epoch). A run killed at any moment and resumed from its
work dir ends with the same weights as a run never interrupted.

Files under `work_dir/backup/`:

```
backup.npz       the arrays and a JSON header; replaced atomically (temp + os.replace)
backup.prev.npz  the backup before it (workers of a cluster that were killed one
                 backup apart agree on the older one)
```

A backup is written as `backup.npz.tmp-<pid>` first; one left by a process
that was killed while writing it is unfinished by its name alone, and the
next `save` or `restore` removes it.

Example:

```python
backup = Backup("runs/tiny/backup")
backup.save(model, step=12, meta={...})
meta = backup.restore(model)   # None when there is no backup
```
"""

import io
import json
import os
import pathlib
import re

import numpy as np

FORMAT = 1
_TMP = re.compile(r"^backup\.npz\.tmp-(\d+)$")


def _seed_generator_states(model):
    """The global Keras seed generator's state variable, if it exists yet."""
    try:
        from keras.src.random.seed_generator import global_seed_generator

        generator = global_seed_generator()
    except Exception:  # an older or newer Keras: the model's own generators still count
        return []
    return [generator.state] if generator is not None else []


def _groups(model):
    """The variables a backup holds, by group, in a fixed order."""
    optimizer = model.optimizer
    groups = {
        "model": list(model.variables),
        "optimizer": list(optimizer.variables) if optimizer is not None else [],
        "metrics": list(model.metrics_variables),
        "rng": _seed_generator_states(model),
    }
    return groups


def _read(variable):
    import tensorflow as tf

    value = variable.value if hasattr(variable, "value") else variable
    # A distributed (mirrored) variable reads as its primary copy: all equal.
    return np.asarray(tf.convert_to_tensor(value))


class Backup:
    """The backup file of a run: `save` after a step, `restore` on start.

    Args:
        folder: where `backup.npz` lives (created on the first save).
    """

    def __init__(self, folder):
        self.folder = pathlib.Path(folder)
        self.path = self.folder / "backup.npz"
        self.previous = self.folder / "backup.prev.npz"

    def exists(self):
        """Whether a complete backup is there."""
        return self.path.exists() or self.previous.exists()

    def _files(self):
        return [p for p in (self.path, self.previous) if p.exists()]

    def remove_partial(self):
        """Removes unfinished backup files of processes that are gone; returns them."""
        from mmzoo._folders import pid_alive

        removed = []
        if not self.folder.is_dir():
            return removed
        for path in self.folder.iterdir():
            match = _TMP.match(path.name)
            if match and int(match.group(1)) != os.getpid() and not pid_alive(match.group(1)):
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed

    def steps(self):
        """The steps of the backups kept, latest first."""
        return sorted((_header(p)["step"] for p in self._files()), reverse=True)

    def save(self, model, *, step, meta=None):
        """Writes the model's, optimizer's, metrics' and RNG state after `step` steps.

        The file is written under a temporary name, flushed to disk and moved
        over the previous backup with `os.replace`: a kill at any moment
        leaves either the old backup or the new one, never a torn file.

        Args:
            model: the compiled (and built) model being trained.
            step: global training steps done.
            meta: JSON-able run state to keep with it (epoch, history, ...).
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        self.remove_partial()
        arrays = {}
        counts = {}
        for group, variables in _groups(model).items():
            counts[group] = len(variables)
            for i, variable in enumerate(variables):
                arrays[f"{group}/{i}"] = _read(variable)
        header = {"format": FORMAT, "step": int(step), "counts": counts, "meta": meta or {}}
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        tmp = self.folder / f"backup.npz.tmp-{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())
        if self.path.exists():
            os.replace(self.path, self.previous)
        os.replace(tmp, self.path)

    def header(self):
        """The latest backup's header (`step`, `meta`), or `None` when there is none."""
        files = self._files()
        return _header(files[0]) if files else None

    def restore(self, model, step=None):
        """Loads the backup into `model` (and its optimizer, metrics, RNG).

        The optimizer is built first if it has not been (a fresh process).

        Args:
            model: the same architecture as when saved, compiled.
            step: the backup to load, by its step (default: the latest).

        Returns:
            The header `{"step", "meta", ...}`, or `None` when there is no backup.

        Raises:
            ValueError: the backup does not fit the model.
        """
        self.remove_partial()
        if not self.exists():
            return None
        files = {_header(p)["step"]: p for p in reversed(self._files())}
        if step is None:
            step = max(files)
        if step not in files:
            raise ValueError(
                f"No backup of step {step} in {str(self.folder)!r} (there are steps "
                f"{sorted(files)}). Received: step={step}")
        optimizer = model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(model.trainable_variables)
        with np.load(files[step]) as data:
            header = json.loads(data["header"].tobytes().decode())
            groups = _groups(model)
            for group, variables in groups.items():
                saved = header["counts"].get(group, 0)
                if group == "rng" and saved != len(variables):
                    continue  # the global generator is created lazily
                if saved != len(variables):
                    raise ValueError(
                        f"The backup in {str(self.folder)!r} does not fit this model: "
                        f"{saved} {group} variables saved, the model has {len(variables)}. "
                        f"Remove it to start afresh. Received: folder={str(self.folder)!r}")
                for i, variable in enumerate(variables):
                    value = data[f"{group}/{i}"]
                    if tuple(value.shape) != tuple(variable.shape):
                        raise ValueError(
                            f"The backup in {str(self.folder)!r} does not fit this model: "
                            f"{group} variable {variable.path if hasattr(variable, 'path') else i}"
                            f" has shape {tuple(variable.shape)}, saved {value.shape}. "
                            f"Received: folder={str(self.folder)!r}")
                    variable.assign(value)
        return header

    def remove(self):
        """Deletes the backups (after a run finished)."""
        for path in self._files():
            path.unlink()
        try:
            self.folder.rmdir()  # only when nothing else is there
        except OSError:
            pass


def _header(path):
    with np.load(path) as data:
        return json.loads(data["header"].tobytes().decode())


def truncate_step_log(path, step):
    """Keeps the lines of a per-step JSON-lines log with `"step" <= step`.

    A line written after the last backup belongs to a step that the resumed
    run does again; dropping it keeps every step exactly once.
    """
    path = pathlib.Path(path)
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (ValueError, KeyError):
            break  # a torn last line
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    os.replace(tmp, path)
