"""Registries of named building blocks: branches, fusions and heads; tasks; modalities.

`build_model` looks every component up by name here, so adding a new image
branch, text branch, fusion or head is one decorated function in its own module,
never an edit of `build_model`. The keyword-only parameters of a registered
function *are* the options it takes: `build_model` reads them (and their
defaults) from the function's signature, validates the values the user passed
and hands them over.

A component declares the validators of its options where it is registered
(`validators={option: check}`, with the checks of `mmzoo.validators`), so a bad
value is mmzoo's `ValueError` naming the option, raised before any layer is
built. An option without a declared validator takes the one another component
declares for the same name, or else one inferred from its default's type
(`mmzoo.validators.inferred`); a required option without a declared validator
is not checked.

Example:

```python
import keras
import mmzoo
from mmzoo.registry import IMAGE_BRANCHES
from mmzoo.validators import choice, positive_int

@IMAGE_BRANCHES.register(
    "tiny", validators={"tiny_kernel": positive_int, "tiny_activation": choice("relu", "gelu")})
def tiny_image_branch(input_shape, *, image_filters=8, tiny_kernel=3, tiny_activation="relu",
                      name="image_tiny"):
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(image_filters, tiny_kernel, activation=tiny_activation)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, x, name=name)

model = mmzoo.build_model("classification", image_branch="tiny", text_branch=None,
                          image_shape=(32, 32, 3), num_classes=3)
```

(`image_filters` is declared by the built-in image branches, so `"tiny"` shares
their `positive_int` check.) An option means the same thing in every component
that takes it: declaring a different validator for an option another
component (or `build_model` itself) already declares is an error at
registration.

Modalities (`MODALITIES`, declared in `mmzoo.modalities`) say which branch
registry a `<modality>_branch` option selects from; tasks (`TASKS`) are
objects in `mmzoo.tasks`.
"""

import collections.abc
import difflib
import importlib
import inspect
import itertools
import re
import weakref

from mmzoo.validators import AnyOf, anything, describe, inferred

# Every Registry (weakly: one made in a test goes away with it), so that
# validators are looked up and checked for conflicts across all of them.
_REGISTRIES = weakref.WeakSet()
_CREATED = itertools.count()
# Validators of options that belong to no component (build_model's own),
# declared with `declare_options`: {option: (validator, owner)}.
_RESERVED = {}


class Component:
    """A registered building block: its name, builder function and options.

    Attributes:
        name: the name users pass to `build_model` (e.g. `"vgg16"`).
        builder: the function that builds it.
        options: `{option_name: default}` for every keyword-only parameter of
            `builder` except `name` (`inspect.Parameter.empty` when required).
        validators: `{option_name: check}` declared at registration; see
            `option_validator` for the options it does not declare.
        info: extra facts declared at registration (e.g. `input_dtype`).
        kind: what it is, for messages (its registry's kind, e.g. `"fusion"`).
    """

    def __init__(self, name, builder, info, validators=None, kind="component"):
        self.name = name
        self.builder = builder
        self.info = dict(info)
        self.kind = kind
        params = inspect.signature(builder).parameters.values()
        self.options = {
            p.name: p.default
            for p in params
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "name"
        }
        validators = dict(validators or {})
        for option, check in validators.items():
            if option not in self.options:
                raise ValueError(
                    f"{self} declares a validator for `{option}`, which is not one of its "
                    f"options (the keyword-only parameters of {builder.__qualname__} but "
                    f"`name`: {', '.join(sorted(self.options)) or 'none'}). "
                    f"Received: validators={{{option!r}: {describe(check)}}}")
            if not callable(check):
                raise ValueError(
                    f"{self} declares a validator for `{option}` that is not callable: a "
                    f"validator is `check(name, value) -> value` (see mmzoo.validators). "
                    f"Received: validators={{{option!r}: {check!r}}}")
        self.validators = validators

    def inferred_validator(self, option):
        """The validator inferred from `option`'s default (`mmzoo.validators.inferred`)."""
        default = self.options[option]
        return anything if default is inspect.Parameter.empty else inferred(default)

    def __str__(self):
        return f"{self.kind} {self.name!r}"

    def __repr__(self):
        return f"<Component {self.name!r} options={sorted(self.options)}>"


def registries():
    """Every `Registry` that exists now (the four below and any made since), oldest first."""
    return sorted(_REGISTRIES, key=lambda registry: registry._created)


def _components():
    for registry in registries():
        for component in registry._components.values():
            yield component


def _declared(option, skip=None):
    """`(validator, owner)` declared for `option` by build_model or a component, or None."""
    if option in _RESERVED:
        return _RESERVED[option]
    for component in _components():
        if component is not skip and option in component.validators:
            return component.validators[option], str(component)
    return None


def option_validator(option):
    """The validator of a `build_model` option, whichever component takes it.

    The validator `build_model` itself declares for its own options
    (`declare_options`), else the one a registered component declares (all
    declare the same, see `Registry.register`), else one inferred from the
    defaults of the components that take `option` (several kinds inferred:
    any of them; none, e.g. a `None` default: `mmzoo.validators.anything`).
    """
    declared = _declared(option)
    if declared:
        return declared[0]
    kinds = []
    for component in _components():
        if option in component.options:
            kind = component.inferred_validator(option)
            if kind is anything:
                return anything
            if kind not in kinds:
                kinds.append(kind)
    if not kinds:
        return anything
    return kinds[0] if len(kinds) == 1 else AnyOf(*kinds)


def declare_options(validators, owner):
    """Declares the validators of options that belong to no component.

    `mmzoo.tasks.options` declares build_model's own options (`dropout`,
    `image_shape`, ...) here, so that a component taking an option of the
    same name must validate it the same way.

    Args:
        validators: `{option: check}`.
        owner: who declares them, for messages (e.g. `"build_model"`).
    """
    for option, check in validators.items():
        for component in _components():
            theirs = component.validators.get(option)
            if theirs is not None and theirs != check:
                raise ValueError(_conflict(option, owner, check, str(component), theirs))
    for option, check in validators.items():
        _RESERVED[option] = (check, owner)


def _conflict(option, who, check, owner, theirs):
    return (
        f"{who} declares `{option}` with the validator {describe(check)}, but {owner} "
        f"declares it with {describe(theirs)}. An option means the same thing in every "
        f"component that takes it: declare it with the same validator (import it, see "
        f"mmzoo.validators) or rename the option. "
        f"Received: validators={{{option!r}: {describe(check)}}}")


class Registry:
    """Maps names to components of one kind.

    Args:
        kind: what the components are, for messages (e.g. `"image branch"`).
        option: the `build_model` option that selects one (e.g. `"image_branch"`).
    """

    def __init__(self, kind, option):
        self.kind = kind
        self.option = option
        self._components = {}
        self._created = next(_CREATED)
        _REGISTRIES.add(self)

    def register(self, name, *, validators=None, **info):
        """Decorator that registers `builder` under `name`.

        Args:
            name: the public name; must be new in this registry.
            validators: `{option: check}` for the component's options, each
                `check(name, value) -> value` raising a `ValueError` (see
                `mmzoo.validators`). An option it leaves out takes the
                validator another component (or `build_model`) declares for
                the same name, else one inferred from its default.
            **info: extra facts stored on the component (`Component.info`).

        Returns:
            The decorator; it returns the function unchanged.

        Raises:
            ValueError: the name is taken; a validator is declared for
                something that is not an option, or differs from the one
                declared elsewhere for the same option; or a default fails
                its option's validator.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(
                f"A {self.kind} name must be a non-empty string. Received: name={name!r}"
            )

        def decorator(builder):
            if name in self._components:
                raise ValueError(
                    f"A {self.kind} named {name!r} is already registered "
                    f"(by {self._components[name].builder.__qualname__})."
                )
            component = Component(name, builder, info, validators, kind=self.kind)
            _check_against_others(component)
            self._components[name] = component
            return builder

        return decorator

    def unregister(self, name):
        """Removes the component registered as `name` and returns it.

        For tests and notebooks that register a component of their own for a
        while; built-in components should stay registered.
        """
        component = self.get(name)
        del self._components[name]
        return component

    def get(self, name):
        """Returns the component registered as `name` (a `ValueError` if none)."""
        if isinstance(name, str) and name in self._components:
            return self._components[name]
        allowed = ", ".join(repr(n) for n in self.names())
        hint = ""
        if isinstance(name, str):
            close = difflib.get_close_matches(name, self.names(), n=1)
            if close:
                hint = f" Did you mean {close[0]!r}?"
        raise ValueError(
            f"Unknown {self.kind}: `{self.option}` must be one of {allowed}.{hint} "
            f"Received: {self.option}={name!r}"
        )

    def names(self):
        """The registered names, sorted."""
        return sorted(self._components)

    def __contains__(self, name):
        return name in self._components

    def __iter__(self):
        return iter(self.names())

    def __repr__(self):
        return f"Registry({self.kind!r}, names={self.names()})"


def _check_against_others(component):
    """Refuses validators that differ from those declared elsewhere, and failing defaults."""
    for option, check in component.validators.items():
        declared = _declared(option, skip=component)
        if declared and declared[0] != check:
            raise ValueError(_conflict(option, str(component), check, declared[1], declared[0]))
    for option, default in component.options.items():
        if default is inspect.Parameter.empty:
            continue
        check = component.validators.get(option)
        owner = f"{component} declares"
        if check is None:
            declared = _declared(option, skip=component)
            if not declared:
                continue
            check, owner = declared[0], f"{declared[1]} declares"
        try:
            check(option, default)
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"The default of `{option}` in {component} ({default!r}) fails the validator "
                f"{owner} for it, {describe(check)}: {e} An option means the same thing "
                f"in every component that takes it: change the default or rename the "
                f"option.") from None


IMAGE_BRANCHES = Registry("image branch", "image_branch")
TEXT_BRANCHES = Registry("text branch", "text_branch")
AUDIO_BRANCHES = Registry("audio branch", "audio_branch")
FUSIONS = Registry("fusion", "fusion")
# Heads by name; each task names the head it uses (`Task.head`).
HEADS = Registry("task", "task")


# ----------------------------------------------------------------------------
# Tasks

#: The built-in tasks and the module that defines each. `TASKS` imports a
#: module when its task is first asked for, so any code (the data pipeline,
#: the zoo, export, training) finds every built-in task by name without
#: importing the task modules, and no task module is imported before it is
#: needed (a task module imports no TensorFlow at module level).
BUILTIN_TASKS = {
    "classification": "mmzoo.tasks.classification",
    "binary": "mmzoo.tasks.binary",
    "multilabel": "mmzoo.tasks.multilabel",
    "regression": "mmzoo.tasks.regression",
    "captioning": "mmzoo.tasks.captioning",
    "retrieval": "mmzoo.tasks.retrieval",
}


class TaskRegistry:
    """Maps task names (the first argument of `build_model`) to task objects.

    A task object (a `mmzoo.tasks.base.Task`) owns what a task means: its head,
    loss and metrics, how its outputs are decoded, its labels, its export
    parity rule, how an ensemble combines it and how it is shown. Code outside
    the task modules asks the task object and never compares task names.

    Example:

    ```python
    from mmzoo.registry import TASKS
    task = TASKS.get("binary")
    task.decision          # "threshold": how export parity compares outputs
    ```
    """

    kind = "task"
    option = "task"

    def __init__(self, builtins):
        self._builtins = dict(builtins)
        self._tasks = {}

    def register(self, task):
        """Registers a task object under `task.name` and returns what it was given.

        Also a class decorator: given a `Task` subclass, it registers an
        instance of it and returns the class.
        """
        given = task
        if isinstance(task, type):
            task = task()
        name = getattr(task, "name", None)
        if not isinstance(name, str) or not name:
            raise ValueError(
                f"A task must have a non-empty string `name`. Received: name={name!r}")
        if name in self._tasks:
            raise ValueError(f"A task named {name!r} is already registered "
                             f"(by {type(self._tasks[name]).__qualname__}).")
        self._tasks[name] = task
        return given

    def unregister(self, name):
        """Removes the task registered as `name` and returns it (for tests)."""
        task = self.get(name)
        del self._tasks[name]
        return task

    def _load(self, name):
        if name not in self._tasks and name in self._builtins:
            importlib.import_module(self._builtins[name])

    def get(self, name):
        """The task object registered as `name` (a `ValueError` naming the choices if none).

        A task object is accepted too (returned as it is).
        """
        if not isinstance(name, str) and hasattr(name, "name") and \
                self._tasks.get(name.name) is name:
            return name
        if isinstance(name, str):
            self._load(name)
            if name in self._tasks:
                return self._tasks[name]
        names = self.names()
        allowed = ", ".join(repr(n) for n in names)
        hint = ""
        if isinstance(name, str):
            close = difflib.get_close_matches(name, names, n=1)
            if close:
                hint = f" Did you mean {close[0]!r}?"
        raise ValueError(f"Unknown task: `task` must be one of {allowed}.{hint} "
                         f"Received: task={name!r}")

    def of(self, obj):
        """The task of a model, entry or preprocessor (its `task` name), or None.

        None for an object without a registered task (a model not built by mmzoo).
        """
        name = getattr(obj, "task", None)
        return self.get(name) if isinstance(name, str) and name in self else None

    def names(self):
        """Every task name (the built-in ones and those registered since), sorted."""
        return sorted(set(self._builtins) | set(self._tasks))

    def all(self):
        """Every task object, by sorted name (imports the built-in task modules)."""
        return [self.get(name) for name in self.names()]

    def table(self, attribute):
        """`{task name: getattr(task, attribute)}` over every task, read when used."""
        return _TaskTable(self, attribute)

    def __contains__(self, name):
        return isinstance(name, str) and name in self.names()

    def __iter__(self):
        return iter(self.names())

    def __len__(self):
        return len(self.names())

    def __getitem__(self, index):
        return self.names()[index]

    def __repr__(self):
        return f"TaskRegistry(names={self.names()})"


class _TaskTable(collections.abc.Mapping):
    """A read-only `{task name: attribute}` view of the task registry."""

    def __init__(self, registry, attribute):
        self._registry, self._attribute = registry, attribute

    def __getitem__(self, name):
        if name not in self._registry:
            raise KeyError(name)
        return getattr(self._registry.get(name), self._attribute)

    def __iter__(self):
        return iter(self._registry.names())

    def __len__(self):
        return len(self._registry.names())

    def __repr__(self):
        return repr(dict(self))


TASKS = TaskRegistry(BUILTIN_TASKS)


# ----------------------------------------------------------------------------
# Modalities

#: The module that declares the built-in modalities (image, text, then audio).
#: `MODALITIES` imports it when first asked, so they come first whoever asks
#: (it imports no TensorFlow).
BUILTIN_MODALITIES = "mmzoo.modalities"
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


class ModalityRegistry:
    """The declared modalities (`mmzoo.modalities.Modality`), in declaration order.

    The order is the model's: its inputs and the columns of its
    `"modality_mask"` follow it (image, text, then modalities registered
    since). `build_model` reads one branch per modality whose
    `<name>_branch` option is set; a new modality is one `register` call
    and its branch registry (see `mmzoo.modalities`).

    Example:

    ```python
    from mmzoo.registry import MODALITIES
    MODALITIES.names()                 # ['image', 'text', 'audio']
    MODALITIES.get("text").shape_option  # 'sequence_length'
    ```
    """

    kind = "modality"
    option = "modality"

    def __init__(self, builtins):
        self._builtins = builtins
        self._loaded = False
        self._modalities = {}

    def _load(self):
        if not self._loaded:
            self._loaded = True
            importlib.import_module(self._builtins)

    def register(self, modality):
        """Declares `modality` (a `mmzoo.modalities.Modality`) and returns it.

        Its options (`<name>_branch` and its shape option) become
        `build_model` options, validated by the branch registry and the
        declared shape check.

        Raises:
            ValueError: the name is not a lower-case identifier, is taken or
                is `"modality_mask"`; the branch registry selects with another
                option than `<name>_branch`; an option or raw-input argument
                is another modality's or build_model's own; or the shape
                default fails the shape check.
        """
        self._load()
        name = getattr(modality, "name", None)
        if not isinstance(name, str) or not _NAME.match(name) or name == "modality_mask":
            raise ValueError(
                "A modality name must be a lower-case identifier (it names the model input "
                "and the `<name>_branch` option), other than 'modality_mask'. "
                f"Received: name={name!r}")
        if name in self._modalities:
            raise ValueError(f"A modality named {name!r} is already registered. "
                             f"Received: name={name!r}")
        branches = modality.branches
        if getattr(branches, "option", None) != modality.branch_option:
            raise ValueError(
                f"The branch registry of modality {name!r} must select with the option "
                f"{modality.branch_option!r}: make it Registry({name + ' branch'!r}, "
                f"{modality.branch_option!r}). Received: branches={branches!r} with "
                f"option={getattr(branches, 'option', None)!r}")
        shape_option = modality.shape_option
        if not isinstance(shape_option, str) or not _NAME.match(shape_option):
            raise ValueError(f"The shape option of modality {name!r} must be a lower-case "
                             f"identifier. Received: shape_option={shape_option!r}")
        owner = str(modality)
        for option, what, received in (
                (modality.branch_option, "branch option", f"name={name!r}"),
                (shape_option, "shape option", f"shape_option={shape_option!r}")):
            taken = _RESERVED.get(option)
            users = [str(c) for c in _components() if option in c.options]
            if taken is not None and taken[1] != owner:
                users = [taken[1]]
            if users:
                raise ValueError(
                    f"The {what} of modality {name!r}, `{option}`, is already an option of "
                    f"{users[0]}: choose another name. Received: {received}")
        argument = modality.argument
        others = {m.argument: m.name for m in self._modalities.values()}
        if not isinstance(argument, str) or not argument.isidentifier() or argument in others:
            raise ValueError(
                f"The raw-input argument of modality {name!r} (the keyword a Preprocessor "
                f"and a zoo entry's predict take) must be an identifier no other modality "
                f"uses ({', '.join(map(repr, others))}). Received: argument={argument!r}")
        try:
            modality.shape_validator(shape_option, modality.shape_default)
        except (TypeError, ValueError) as e:
            raise ValueError(f"The shape default of modality {name!r} fails its shape "
                             f"check: {e}") from None
        declare_options({modality.branch_option: _BranchName(branches),
                         shape_option: modality.shape_validator}, owner)
        self._modalities[name] = modality
        return modality

    def unregister(self, name):
        """Removes the modality `name` (and its options) and returns it (for tests)."""
        modality = self.get(name)
        del self._modalities[name]
        for option in (modality.branch_option, modality.shape_option):
            if _RESERVED.get(option, (None, None))[1] == str(modality):
                del _RESERVED[option]
        return modality

    def get(self, name):
        """The modality named `name` (a `ValueError` naming the choices if none)."""
        self._load()
        if isinstance(name, str) and name in self._modalities:
            return self._modalities[name]
        hint = ""
        if isinstance(name, str):
            close = difflib.get_close_matches(name, self.names(), n=1)
            if close:
                hint = f" Did you mean {close[0]!r}?"
        raise ValueError(f"Unknown modality: must be one of "
                         f"{', '.join(map(repr, self.names()))}.{hint} Received: {name!r}")

    def names(self):
        """The modality names in declaration order (the model's input order)."""
        self._load()
        return list(self._modalities)

    def all(self):
        """The `Modality` objects in declaration order."""
        self._load()
        return list(self._modalities.values())

    def __contains__(self, name):
        return isinstance(name, str) and name in self.names()

    def __iter__(self):
        return iter(self.names())

    def __len__(self):
        return len(self.names())

    def __repr__(self):
        return f"ModalityRegistry(names={self.names()})"


class _BranchName:
    """The validator of a `<modality>_branch` option: `None` or a registered branch name."""

    def __init__(self, registry):
        self.registry = registry

    def __call__(self, name, value):
        return value if value is None else self.registry.get(value).name

    def __eq__(self, other):
        return isinstance(other, _BranchName) and other.registry is self.registry

    def __hash__(self):
        return id(self.registry)

    def __repr__(self):
        return f"None or a registered {self.registry.kind}"


MODALITIES = ModalityRegistry(BUILTIN_MODALITIES)
