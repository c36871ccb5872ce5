"""`build_model`'s options: the model's own, their checks, and resolution.

`resolve_options` turns what the user passed into the complete, validated option
set of one model, before any layer is built, so that a bad option is a clear
`TypeError` / `ValueError` and never a stack trace from inside TensorFlow.

The options of the model as a whole (`hidden_units`, `dropout`, the compile
settings, ...) are validated here (`MODEL_VALIDATORS`); each modality's
`<name>_branch` and shape option (`image_shape`, `sequence_length`) by its
declaration (`mmzoo.modalities`); branch, fusion and head options by the
validators their components declare where they are registered
(`mmzoo.registry.option_validator`).
"""

import collections.abc
import inspect
import os
import warnings

# The building blocks whose options are checked here register on import.
from mmzoo import branches, fusion, heads  # noqa: F401
from mmzoo.registry import (
    FUSIONS,
    HEADS,
    MODALITIES,
    TASKS,
    declare_options,
    option_validator,
)
from mmzoo.validators import (
    boolean,
    fail,
    is_int,
    is_positive_int,
    optional_name,
    positive_number,
    unit_float,
)



class _BranchRegistries(collections.abc.Mapping):
    """`{modality name: its branch registry}` over the declared modalities, read when used."""

    def __getitem__(self, name):
        if name not in MODALITIES:
            raise KeyError(name)
        return MODALITIES.get(name).branches

    def __iter__(self):
        return iter(MODALITIES.names())

    def __len__(self):
        return len(MODALITIES)


BRANCH_REGISTRIES = _BranchRegistries()


class _ModelDefaults(collections.abc.Mapping):
    """`MODEL_DEFAULTS`: every modality's branch and shape option, then `_OWN_DEFAULTS`.

    Read when used, so a modality registered later is in it: `<name>_branch`
    (the declared `default_branch`), `fusion`, the shape options, then the
    model's own options.
    """

    def _items(self):
        modalities = MODALITIES.all()
        items = {m.branch_option: m.default_branch for m in modalities}
        items["fusion"] = _OWN_DEFAULTS["fusion"]
        items.update({m.shape_option: m.shape_default for m in modalities})
        items.update(_OWN_DEFAULTS)
        return items

    def __getitem__(self, key):
        return self._items()[key]

    def __iter__(self):
        return iter(self._items())

    def __len__(self):
        return len(self._items())

    def __repr__(self):
        return repr(self._items())


# Options of the model as a whole (branch, fusion and head options come from the
# signatures of the registered components, their validators from their
# registrations; each modality's branch and shape option from its declaration).
_OWN_DEFAULTS = {
    "fusion": None,  # "concat" when there are two or more modalities
    "hidden_units": (),
    "dropout": 0.0,
    "name": None,
    # Missing modalities (models with two or more modalities only): an extra
    # "modality_mask" input, and modalities dropped at random in training.
    "modality_mask": False,
    "modality_dropout": 0.0,
}
MODEL_DEFAULTS = _ModelDefaults()
COMPILE_DEFAULTS = {
    "compile": True,
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "loss": None,  # the head's own
    "metrics": None,  # the head's own
    "jit_compile": "auto",
}


def _units_tuple(name, value):
    if is_positive_int(value):
        return (int(value),)
    if not (isinstance(value, (tuple, list)) and all(is_positive_int(v) for v in value)):
        fail(name, value, "a positive integer or a tuple of positive integers")
    return tuple(int(v) for v in value)


def _optimizer(name, value):
    import keras

    if isinstance(value, keras.optimizers.Optimizer):
        return value
    if isinstance(value, str):
        try:
            keras.optimizers.get(value)
        except ValueError:
            pass
        else:
            return value
    fail(name, value, "an optimizer name such as 'adam' or a keras.optimizers.Optimizer")


def _loss(name, value):
    import keras

    if value is None or callable(value):
        return value
    if isinstance(value, str):
        try:
            keras.losses.get(value)
        except ValueError:
            pass
        else:
            return value
        fail(name, value, "None (the head's loss), a Keras loss name such as "
                           "'sparse_categorical_crossentropy', or a callable")
    fail(name, value, "None (the head's loss), a loss name or a callable")


# Names Keras's compile() resolves itself, besides keras.metrics.get's.
_COMPILE_METRIC_NAMES = ("acc", "accuracy", "ce", "crossentropy", "auc")


def _metrics(name, value):
    import keras

    if value is None:
        return value
    if not isinstance(value, (list, tuple)):
        fail(name, value, "None (the head's metrics) or a list of metrics")
    for i, metric in enumerate(value):
        if isinstance(metric, str):
            if metric in _COMPILE_METRIC_NAMES:
                continue
            try:
                keras.metrics.get(metric)
            except ValueError:
                raise ValueError(
                    f"`{name}` must hold Keras metric names (such as 'accuracy', 'auc', "
                    f"'mean_absolute_error'), keras.metrics.Metric objects or callables. "
                    f"Received: {name}[{i}]={metric!r}") from None
        elif not (callable(metric) or isinstance(metric, keras.metrics.Metric)):
            raise ValueError(
                f"`{name}` must hold metric names, keras.metrics.Metric objects or "
                f"callables. Received: {name}[{i}]={metric!r}")
    return value


def _jit_compile(name, value):
    if value == "auto" or isinstance(value, bool):
        return value
    fail(name, value, "'auto', True or False")


def _optional_registered(registry):
    def check(name, value):
        return value if value is None else registry.get(value).name

    return check


# The modalities' `<name>_branch` and shape options are declared with them
# (mmzoo.modalities).
MODEL_VALIDATORS = {
    "fusion": _optional_registered(FUSIONS),
    "hidden_units": _units_tuple,
    "dropout": unit_float,
    "name": optional_name,
    "modality_mask": boolean,
    "modality_dropout": unit_float,
}
COMPILE_VALIDATORS = {
    "compile": boolean,
    "optimizer": _optimizer,
    "learning_rate": positive_number,
    "loss": _loss,
    "metrics": _metrics,
    "jit_compile": _jit_compile,
}
# A component option of the same name (the captioning decoder's `dropout`)
# must be validated the same way; the registry refuses one that is not.
declare_options({**MODEL_VALIDATORS, **COMPILE_VALIDATORS}, "build_model")


def known_options():
    """Every option name `build_model` accepts, with the components registered now.

    Every registered task's own components (a captioner's decoder head, a dual
    encoder's projection head) are registered first, so an option's status
    does not depend on which task was built before.
    """
    for name in TASKS.names():
        TASKS.get(name).register_components()
    names = set(MODEL_DEFAULTS) | set(COMPILE_DEFAULTS)
    for registry in _component_registries():
        for component_name in registry:
            names |= set(registry.get(component_name).options)
    return names


def split_compile_options(options):
    """Splits user options into (architecture options, compile options)."""
    arch = {k: v for k, v in options.items() if k not in COMPILE_DEFAULTS}
    comp = {k: v for k, v in options.items() if k in COMPILE_DEFAULTS}
    return arch, comp


def check_values(options):
    """Refuses unknown option names and validates every value.

    Returns:
        `{option: normalised value}`. A component option is checked by the
        validator its component declares, or one inferred from its default
        (`mmzoo.registry.option_validator`).

    Raises:
        TypeError: an option name that no component knows.
        ValueError: a bad value.
    """
    unknown = sorted(set(options) - known_options())
    if unknown:
        raise TypeError(
            f"build_model() got unexpected option(s) {', '.join(map(repr, unknown))}. "
            f"Allowed options: {', '.join(sorted(known_options()))}."
        )
    values = {}
    for key, value in options.items():
        # The model's own validators (declared above) come first.
        values[key] = option_validator(key)(key, value)
    return values


def resolve_options(task, options):
    """Validates architecture options and fills in every default.

    Args:
        task: a registered task name (`"classification"`, `"binary"`, ...).
        options: the architecture options the user passed.

    Returns:
        A flat dict with `task` and every option the chosen components use, with
        values normalised (e.g. `image_shape` a tuple). Passing it back to
        `build_model(**resolved)` builds the same architecture.

    Raises:
        TypeError: an option name that no component knows.
        ValueError: a bad value, a missing required option, or an option the
            chosen components do not use.
    """
    task = TASKS.get(task)
    head = task.head_component()
    values = check_values(options)
    resolved = {"task": task.name}
    model_keys = dict(MODEL_DEFAULTS)
    components = {"head": head}
    declared = MODALITIES.all()
    for modality in declared:
        option = modality.branch_option
        branch = values.get(option, modality.default_branch)
        # A modality without a default branch is in the config only when used,
        # so the configs of models without it load whether or not it is declared.
        if branch is not None or modality.default_branch is not None:
            resolved[option] = branch
        if branch is not None:
            components[modality.name] = modality.branches.get(branch)
    modalities = [m.name for m in declared if m.name in components]
    if not modalities:
        branch_options = [f"`{m.branch_option}`" for m in declared]
        raise ValueError(
            f"A model needs at least one modality: "
            f"{', '.join(branch_options[:-1])} and {branch_options[-1]} cannot "
            f"{'both' if len(declared) == 2 else 'all'} be None. Received: "
            + ", ".join(f"{m.branch_option}=None" for m in declared)
        )
    used = {m.branch_option for m in declared} | {"hidden_units", "dropout", "name"}
    shape_options = [m.shape_option for m in declared if m.name in components]
    used.update(shape_options)
    if len(modalities) > 1:
        used |= {"fusion", "modality_mask", "modality_dropout"}
        fusion = values.get("fusion") or "concat"
        components["fusion"] = FUSIONS.get(fusion)
        resolved["fusion"] = fusion
        # A fusion that works on feature maps (FiLM) gets that branch with
        # pooling=None, so the branch must have a `pooling` option.
        for modality in components["fusion"].info.get("feature_maps", ()):
            if modality not in components or "pooling" not in components[modality].options:
                raise ValueError(
                    f"fusion={fusion!r} needs the {modality} feature map, from a "
                    f"{modality} branch with a `pooling` option. Received: "
                    f"{modality}_branch={resolved.get(f'{modality}_branch')!r}"
                )
    for key in (*shape_options, "hidden_units", "dropout", "name",
                "modality_mask", "modality_dropout"):
        if key in used:
            resolved[key] = values.get(key, model_keys[key])

    fill_component_options(resolved, values, components)
    for component in components.values():
        used |= set(component.options)

    # Options of an absent modality (or of fusion, in a one-modality model) are
    # ignored, so that a single-modality baseline can be built from the same
    # options as the fused model: build_model(**options, text_branch=None).
    ignorable = set()
    for modality in declared:
        if modality.name not in components:
            ignorable.add(modality.shape_option)
            ignorable |= _options_of(modality.branches)
    if len(modalities) == 1:
        ignorable |= {"fusion", "modality_mask", "modality_dropout"} | _options_of(FUSIONS)
    ignorable -= set().union(*(c.options for c in components.values()))

    task.check_options(resolved)
    dropped = sorted(key for key in set(values) & ignorable if key not in used
                     and not _is_default(key, values[key]))
    if dropped:
        # Allowed (a single-modality baseline reuses the fused model's
        # options), but never silently.
        warnings.warn(
            f"build_model: {', '.join(f'{k}={options[k]!r}' for k in dropped)} "
            f"{'has' if len(dropped) == 1 else 'have'} no effect on this model "
            f"({_describe_model(resolved)}), which reads "
            f"{'one modality' if len(modalities) == 1 else ' and '.join(modalities) + ' only'}: "
            f"{'it is' if len(dropped) == 1 else 'they are'} ignored (fusion and "
            "modality-mask options need two modalities, branch options their branch).",
            UserWarning, stacklevel=5)

    for key in sorted(set(values) - used - ignorable):
        users = _components_using(key)
        where = f"; it is used by {users}" if users else ""
        raise ValueError(
            f"`{key}` has no effect on this model ({_describe_model(resolved)}){where}. "
            f"Received: {key}={options[key]!r}"
        )
    check_memory(resolved)
    return resolved


def _memory_bytes():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(resolved, memory=None):
    """Refuses sizes whose weights alone cannot fit in this machine's memory.

    A lower bound from the options (the embedding table, dense and recurrent
    kernels), so that an absurd size is a clear error at once instead of a
    TensorFlow out-of-memory error that names no option. Sizes that pass can
    still be too large; `build_model` names the options then too.
    """
    memory = memory or _memory_bytes()
    if not memory:
        return
    terms = []
    if "vocab_size" in resolved and "embedding_dim" in resolved:
        terms.append((resolved["vocab_size"] * resolved["embedding_dim"],
                      ("vocab_size", "embedding_dim")))
    hidden = list(resolved.get("hidden_units") or ())
    for units in hidden:
        terms.append((units, ("hidden_units",)))
    for a, b in zip(hidden, hidden[1:]):
        terms.append((a * b, ("hidden_units",)))
    for key in ("text_units", "fusion_dim", "num_classes", "num_outputs", "image_filters"):
        if is_int(resolved.get(key)):
            # A recurrent kernel is units x units; every layer has at least `units` weights.
            power = 2 if key in ("text_units", "fusion_dim") else 1
            terms.append((resolved[key] ** power, (key,)))
    if "image_shape" in resolved:
        h, w, c = resolved["image_shape"]
        terms.append((h * w * c, ("image_shape",)))
    count, keys = max(terms, default=(0, ()))
    if 4 * count > memory:
        received = ", ".join(f"{k}={resolved[k]!r}" for k in keys)
        what = "one input image" if keys == ("image_shape",) else \
            f"{' * '.join(keys)} float32 weights"
        raise ValueError(
            f"The model is too large for this machine: {what} alone would need "
            f"{4 * count / 1e9:,.0f} GB, more than its {memory / 1e9:,.0f} GB of memory. Lower "
            f"{' or '.join(f'`{k}`' for k in keys)}. Received: {received}")



def validate_compile_options(options):
    """Validates compile options and fills in their defaults."""
    resolved = dict(COMPILE_DEFAULTS)
    for key, value in options.items():
        resolved[key] = COMPILE_VALIDATORS[key](key, value)
    if "learning_rate" in options and not isinstance(resolved["optimizer"], str):
        raise ValueError(
            "`learning_rate` has no effect when `optimizer` is an optimizer object: set it "
            "there, e.g. optimizer=keras.optimizers.Adam(learning_rate=1e-4), or pass the "
            "optimizer by name. Received: optimizer="
            f"{type(resolved['optimizer']).__name__}(...), "
            f"learning_rate={options['learning_rate']!r}")
    if not resolved["compile"]:
        ignored = sorted(k for k in options if k != "compile")
        if ignored:
            raise ValueError(
                f"`{ignored[0]}` has no effect with compile=False. "
                f"Received: {ignored[0]}={options[ignored[0]]!r}"
            )
    return resolved


def _is_default(key, value):
    """Whether `value` is what leaving `key` out gives (nothing is lost by ignoring it)."""
    if key in MODEL_DEFAULTS:
        return value == MODEL_DEFAULTS[key]
    return False


def _options_of(registry):
    return set().union(*(registry.get(name).options for name in registry))


def fill_component_options(resolved, values, components):
    """Sets each component's options in `resolved`: the value given, else its default.

    Shared by every model's option resolution (`resolve_options`, the
    captioner's and the dual encoder's).

    Args:
        resolved: the option dict being filled (changed in place).
        values: the checked options the user passed (`check_values`).
        components: `{role: Component}`, the role being `"head"`, `"fusion"`
            or a modality name (for messages).

    Raises:
        ValueError: an option without a default that was not given, naming
            the component that requires it.
    """
    for role, component in components.items():
        for key, default in component.options.items():
            if key in values:
                resolved[key] = values[key]
            elif default is inspect.Parameter.empty:
                raise ValueError(
                    f"`{key}` is required for {_describe(role, component)}. "
                    f"Received: {key} not given"
                )
            else:
                resolved[key] = default


def _describe(role, component):
    if role == "head":
        return f"task={component.name!r}"
    if role == "fusion":
        return f"fusion={component.name!r}"
    return f"{role}_branch={component.name!r}"


def _describe_model(resolved):
    parts = [f"task={resolved['task']!r}"]
    for key in (*(m.branch_option for m in MODALITIES.all()), "fusion"):
        if resolved.get(key) is not None:
            parts.append(f"{key}={resolved[key]!r}")
    return ", ".join(parts)


def _components_using(key):
    users = []
    for registry in _component_registries():
        for name in registry:
            if key in registry.get(name).options:
                users.append(f"{registry.option}={name!r}")
    for modality in MODALITIES.all():
        if key == modality.shape_option:
            users.append(f"any {modality.name} branch")
    if key in ("fusion", "modality_mask", "modality_dropout"):
        users.append("models with two or more modalities")
    return ", ".join(users)


def _component_registries():
    """The registries whose components' options are `build_model` options."""
    return (*(m.branches for m in MODALITIES.all()), FUSIONS, HEADS)
