"""Registries of named building blocks: branches, fusions and heads.

`build_model` looks every component up by name here, so adding a new image
branch, text branch, fusion or head is one decorated function in its own module,
never an edit of `build_model`. The keyword parameters of a registered function
*are* the options it takes: `build_model` reads them (and their defaults) from the
function's signature, validates the values the user passed and hands them over.

Example:

```python
import keras
from mmzoo.registry import IMAGE_BRANCHES

@IMAGE_BRANCHES.register("tiny")
def tiny_image_branch(input_shape, *, image_filters=8, name="image_tiny"):
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(image_filters, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, x, name=name)

model = mmzoo.build_model("classification", image_branch="tiny", text_branch=None,
                          image_shape=(32, 32, 3), num_classes=3)
```
"""

import difflib
import inspect


class Component:
    """A registered building block: its name, builder function and options.

    Attributes:
        name: the name users pass to `build_model` (e.g. `"vgg16"`).
        builder: the function that builds it.
        options: `{option_name: default}` for every keyword-only parameter of
            `builder` except `name` (`inspect.Parameter.empty` when required).
        info: extra facts declared at registration (e.g. `input_dtype`).
    """

    def __init__(self, name, builder, info):
        self.name = name
        self.builder = builder
        self.info = dict(info)
        params = inspect.signature(builder).parameters.values()
        self.options = {
            p.name: p.default
            for p in params
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "name"
        }

    def __repr__(self):
        return f"<Component {self.name!r} options={sorted(self.options)}>"


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

    def register(self, name, **info):
        """Decorator that registers `builder` under `name`.

        Args:
            name: the public name; must be new in this registry.
            **info: extra facts stored on the component (`Component.info`).

        Returns:
            The decorator; it returns the function unchanged.
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
            self._components[name] = Component(name, builder, info)
            return builder

        return decorator

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


IMAGE_BRANCHES = Registry("image branch", "image_branch")
TEXT_BRANCHES = Registry("text branch", "text_branch")
FUSIONS = Registry("fusion", "fusion")
HEADS = Registry("task", "task")
