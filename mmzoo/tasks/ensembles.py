"""Ensembles from the seeds: bagging, boosting (SAMME) and stacking.

Each function trains its members with `mmzoo.build_model` and returns **one**
functional `keras.Model`: the same input dict as a member, the same named
output (`"probabilities"`, ...), members nested as layers `<name>_member_<i>`
(frozen) and a combining layer. So an ensemble saves, loads with
`safe_mode=True` (after `import mmzoo`) and exports like any model.

| function | members | combination |
|---|---|---|
| `bagging` | one build, each on a bootstrap replica | average, `H = 1/T sum h_t` |
| `boosting` | one build, reweighted data (SAMME) | weighted vote, `alpha_t` from each member's error |
| `stacking` | several builds | a meta-learner on out-of-fold predictions |

Example:

```python
from mmzoo.tasks import ensembles
build = dict(task="classification", image_branch="cnn", text_branch="embedding",
             image_shape=(64, 64, 3), vocab_size=100, sequence_length=8, num_classes=4)
model = ensembles.bagging(build, x, y, n_members=3, epochs=2)
model.evaluate(x_test, y_test)
model.save("bagging.keras")
```
"""

import numbers

import keras
import numpy as np

from mmzoo.fusion.arithmetic import WeightedFusion
from mmzoo.fusion.decision import VoteFusion
from mmzoo.registry import TASKS
from mmzoo.tasks.build import build_model
from mmzoo.tasks.options import split_compile_options


def _check_build(build, option="build"):
    if not isinstance(build, dict) or not isinstance(build.get("task"), str):
        raise ValueError(
            f"`{option}` must be a dict of `mmzoo.build_model` arguments with a `task` "
            f"key, e.g. dict(task='classification', num_classes=3, ...). "
            f"Received: {option}={build!r}"
        )
    options = {k: v for k, v in build.items() if k not in ("task", "name")}
    if options.get("compile") is False:
        raise ValueError(
            f"Ensemble members are trained, so they must be compiled. "
            f"Received: {option}['compile']=False"
        )
    return build["task"], options


def _check_int(name, value, minimum):
    if not (isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum):
        raise ValueError(f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r}")
    return int(value)


def _check_name(name):
    if not (isinstance(name, str) and name):
        raise ValueError(f"`name` must be a non-empty string. Received: name={name!r}")
    return name


def _check_data(x, y):
    if not isinstance(x, dict) or not x:
        raise ValueError(
            "`x` must be the model's input dict, e.g. {'image': images, 'text': token_ids}. "
            f"Received: x of type {type(x).__name__}"
        )
    x = {k: np.asarray(v) for k, v in x.items()}
    y = np.asarray(y)
    sizes = {k: len(v) for k, v in x.items()}
    if len(set(sizes.values())) != 1 or len(y) != next(iter(sizes.values())):
        raise ValueError(
            f"Every input and `y` need the same number of examples. "
            f"Received: sizes={sizes}, len(y)={len(y)}"
        )
    return x, y


def _take(x, idx):
    return {k: v[idx] for k, v in x.items()}


def _member(task, options, name, seed):
    # Seeded per member: reproducible, and members differ in initialisation.
    keras.utils.set_random_seed(seed)
    return build_model(task, **options, name=name)


def _own_inputs(model, x):
    # Stacked members may use a subset of the inputs (a single-modality baseline).
    missing = sorted(set(model.input) - set(x))
    if missing:
        raise ValueError(f"`x` lacks the input(s) {missing} of member {model.name!r}.")
    return {k: x[k] for k in model.input}


def _fit(model, x, y, epochs, batch_size, verbose, sample_weight=None):
    model.fit(_own_inputs(model, x), y, epochs=epochs, batch_size=batch_size,
              verbose=verbose, sample_weight=sample_weight)
    return model


def _predict(model, x, batch_size):
    (out,) = model.predict(_own_inputs(model, x), batch_size=batch_size, verbose=0).values()
    return np.asarray(out)


def _frozen_copy(member):
    """The trained member without its optimizer (the ensemble is not trained)."""
    arch, _ = split_compile_options(member.build_options)
    copy = build_model(arch.pop("task"), **arch, compile=False)
    copy.set_weights(member.get_weights())
    copy.trainable = False
    return copy


def _assemble(members, combine, task, name):
    """One functional model: shared inputs -> frozen members -> `combine`."""
    inputs = {}
    for member in members:
        for key, tensor in member.input.items():
            if key in inputs:
                seen = inputs[key]
                if tuple(seen.shape[1:]) != tuple(tensor.shape[1:]) or seen.dtype != tensor.dtype:
                    raise ValueError(
                        f"Ensemble members disagree on input {key!r}: "
                        f"{tuple(seen.shape)} {seen.dtype} vs {tuple(tensor.shape)} {tensor.dtype}."
                    )
            else:
                inputs[key] = keras.Input(shape=tensor.shape[1:], dtype=tensor.dtype, name=key)
    members = [_frozen_copy(member) for member in members]
    predictions = []
    for member in members:
        (out,) = member({k: inputs[k] for k in member.input}).values()
        predictions.append(out)
    task = TASKS.get(task)
    model = keras.Model(inputs, {task.output_name(): combine(predictions)}, name=name)
    model.compile(optimizer="adam", loss=task.compile_loss(), metrics=task.compile_metrics())
    # Built now, so the saved optimizer matches the one rebuilt on load.
    model.optimizer.build(model.trainable_variables)
    return model


def bagging(build, x, y, *, n_members=5, sample_fraction=1.0, epochs=1, batch_size=32,
            seed=0, verbose=0, name="bagging"):
    """Bagging: members trained on bootstrap replicas, predictions averaged.

    Args:
        build: `mmzoo.build_model` arguments as a dict, with `task`.
        x: input dict of NumPy arrays; y: targets.
        n_members: number of bootstrap replicas (members).
        sample_fraction: size of each replica, as a fraction of `len(y)`
            (drawn with replacement).
        epochs, batch_size, verbose: passed to each member's `fit`.
        seed: seeds the replicas and the members' initialisation.
        name: the ensemble model's name (members are `<name>_member_<i>`).

    Returns:
        A compiled `keras.Model` whose output is `1/T sum_t h_t(x)`, combined
        by a `WeightedFusion` layer named `<name>_average`.

    Example:
    >>> model = bagging(dict(task="binary", image_branch="cnn", ...), x, y, n_members=3)
    """
    task, options = _check_build(build)
    x, y = _check_data(x, y)
    n_members = _check_int("n_members", n_members, 1)
    name = _check_name(name)
    if not (isinstance(sample_fraction, numbers.Real) and 0 < sample_fraction <= 1):
        raise ValueError(
            f"`sample_fraction` must be a number in (0, 1]. Received: sample_fraction={sample_fraction!r}"
        )
    rng = np.random.default_rng(seed)
    size = max(1, int(round(sample_fraction * len(y))))
    members = []
    for t in range(n_members):
        idx = rng.integers(0, len(y), size=size)
        member = _member(task, options, f"{name}_member_{t + 1}", seed + t)
        members.append(_fit(member, _take(x, idx), y[idx], epochs, batch_size, verbose))

    def average(predictions):
        if len(predictions) == 1:
            return predictions[0]
        return WeightedFusion(None, input_weights=(1.0,) * len(predictions),
                              name=f"{name}_average")(predictions)

    return _assemble(members, average, task, name)


def boosting(build, x, y, *, n_members=5, learning_rate=1.0, epochs=1, batch_size=32,
             seed=0, verbose=0, name="boosting"):
    """AdaBoost-style boosting with the SAMME rule (Zhu et al. 2009) over Keras models.

    Member `t` trains with sample weights `w`; its weighted error
    `err_t = sum w [h_t(x) != y] / sum w` gives it the weight
    `alpha_t = learning_rate * (log((1 - err_t) / err_t) + log(K - 1))`, and
    the examples it gets wrong are up-weighted by `exp(alpha_t)`. Boosting
    stops early when a member is perfect (it is kept) or no better than
    chance (`err_t >= 1 - 1/K`; it is dropped).

    Args:
        build: `mmzoo.build_model` arguments as a dict; `task` must be
            `"classification"` (K = num_classes) or `"binary"` (K = 2).
        x: input dict of NumPy arrays; y: integer class labels (or 0/1).
        n_members: the most members to train.
        learning_rate: shrinks each `alpha_t`.
        epochs, batch_size, verbose: passed to each member's `fit`.
        seed: seeds the members' initialisation.
        name: the ensemble model's name.

    Returns:
        A compiled `keras.Model` whose output is each class's share of the
        `alpha`-weighted vote (a `VoteFusion` layer named `<name>_vote`, whose
        `input_weights` are the normalised alphas).

    Raises:
        ValueError: another task, or a first member no better than chance.
    """
    task, options = _check_build(build)
    if not TASKS.get(task).votes:
        voting = [t.name for t in TASKS.all() if t.votes]
        raise ValueError(
            "SAMME boosting needs class labels: the task must be one of "
            f"{', '.join(map(repr, voting))}. Received: task={task!r}"
        )
    x, y = _check_data(x, y)
    n_members = _check_int("n_members", n_members, 1)
    name = _check_name(name)
    if not (isinstance(learning_rate, numbers.Real) and learning_rate > 0):
        raise ValueError(f"`learning_rate` must be a positive number. Received: learning_rate={learning_rate!r}")
    labels = y.reshape(len(y), -1)[:, 0].astype("int64")
    weights = np.full(len(y), 1.0 / len(y))
    members, alphas = [], []
    for t in range(n_members):
        member = _member(task, options, f"{name}_member_{t + 1}", seed + t)
        # Mean 1, so the loss scale (and the learning rate) stays as without weights.
        _fit(member, x, y, epochs, batch_size, verbose, sample_weight=weights * len(y))
        probs = _predict(member, x, batch_size)
        k, predicted = TASKS.get(task).class_votes(probs)
        wrong = predicted != labels
        error = float(np.sum(weights * wrong) / np.sum(weights))
        if error >= 1.0 - 1.0 / k:
            if not members:
                raise ValueError(
                    f"Boosting's first member is no better than chance (weighted error "
                    f"{error:.3f} >= {1 - 1 / k:.3f}): train it longer (`epochs`) or "
                    f"change the build. Received: epochs={epochs}"
                )
            break
        if error <= 0:
            members.append(member)
            alphas.append(1.0)  # perfect: nothing left to boost
            break
        alpha = learning_rate * (np.log((1 - error) / error) + np.log(k - 1))
        members.append(member)
        alphas.append(float(alpha))
        weights = weights * np.exp(alpha * wrong)
        weights = weights / weights.sum()

    def vote(predictions):
        return VoteFusion(tuple(alphas), name=f"{name}_vote")(predictions)

    return _assemble(members, vote, task, name)


def stacking(builds, x, y, *, n_folds=3, epochs=1, batch_size=32, meta_epochs=100,
             meta_learning_rate=0.05, seed=0, verbose=0, name="stacking"):
    """Stacking: a meta-learner trained on the members' out-of-fold predictions.

    For each of `n_folds` folds every member is trained on the other folds and
    predicts the held-out one; the meta-learner (one Dense layer with the
    task's activation, e.g. a softmax regression) learns to combine these
    out-of-fold predictions. The members are then trained again on all the
    data and joined with the meta-learner into one model.

    Args:
        builds: a list of `mmzoo.build_model` argument dicts (e.g. different
            fusions, or single-modality baselines), all with the same `task`.
        x: input dict of NumPy arrays (the union of the members' inputs);
            y: targets.
        n_folds: folds for the out-of-fold predictions (at least 2).
        epochs, batch_size, verbose: passed to each member's `fit`.
        meta_epochs, meta_learning_rate: the meta-learner's training (Adam,
            full batch up to 256 examples).
        seed: seeds the folds and the members' initialisation.
        name: the ensemble model's name (the meta layer is `<name>_meta`).

    Returns:
        A compiled `keras.Model`: members -> `Concatenate` (`<name>_features`)
        -> `Dense` (`<name>_meta`).
    """
    if not isinstance(builds, (list, tuple)) or not builds:
        raise ValueError(
            f"`builds` must be a non-empty list of build_model argument dicts. Received: builds={builds!r}"
        )
    parsed = [_check_build(b, f"builds[{i}]") for i, b in enumerate(builds)]
    tasks = {task for task, _ in parsed}
    if len(tasks) > 1:
        raise ValueError(f"Stacked members must share one task. Received: tasks={sorted(tasks)}")
    task = parsed[0][0]
    if not TASKS.get(task).stackable:
        supported = sorted(t.name for t in TASKS.all() if t.stackable)
        raise ValueError(
            f"stacking supports the tasks {supported}. Received: task={task!r}"
        )
    activation = TASKS.get(task).meta_activation
    x, y = _check_data(x, y)
    n_folds = _check_int("n_folds", n_folds, 2)
    name = _check_name(name)
    if n_folds > len(y):
        raise ValueError(f"`n_folds` must be <= the number of examples ({len(y)}). Received: n_folds={n_folds}")
    folds = np.array_split(np.random.default_rng(seed).permutation(len(y)), n_folds)

    out_of_fold = [None] * len(parsed)
    for j, (_, options) in enumerate(parsed):
        for k, held_out in enumerate(folds):
            train = np.concatenate([f for i, f in enumerate(folds) if i != k])
            member = _member(task, options, f"{name}_fold_{k + 1}_member_{j + 1}", seed + j)
            _fit(member, _take(x, train), y[train], epochs, batch_size, verbose)
            pred = _predict(member, _take(x, held_out), batch_size)
            if out_of_fold[j] is None:
                out_of_fold[j] = np.zeros((len(y),) + pred.shape[1:], "float32")
            out_of_fold[j][held_out] = pred
    meta_x = np.concatenate(out_of_fold, axis=-1)

    out_dim = out_of_fold[0].shape[-1]
    keras.utils.set_random_seed(seed)
    meta = keras.Sequential(
        [keras.Input((meta_x.shape[-1],)),
         keras.layers.Dense(out_dim, activation=activation)]
    )
    meta.compile(optimizer=keras.optimizers.Adam(meta_learning_rate),
                 loss=TASKS.get(task).compile_loss())
    meta.fit(meta_x, y, epochs=meta_epochs, batch_size=min(len(y), 256), verbose=0)

    members = [
        _fit(_member(task, options, f"{name}_member_{j + 1}", seed + j), x, y, epochs,
             batch_size, verbose)
        for j, (_, options) in enumerate(parsed)
    ]

    def combine(predictions):
        features = keras.layers.Concatenate(name=f"{name}_features")(predictions)
        layer = keras.layers.Dense(out_dim, activation=activation, name=f"{name}_meta")
        out = layer(features)
        layer.set_weights(meta.layers[-1].get_weights())
        return out

    return _assemble(members, combine, task, name)
