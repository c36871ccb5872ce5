"""Validators of `build_model` options, shared by the components that declare them.

A validator is a callable `check(name, value) -> value` that returns the value
(normalised, e.g. a NumPy integer as an `int`) or raises a `ValueError` in
Keras's style: what is wrong, what is allowed, and what was received:

    ValueError: `fusion_dim` must be a positive integer. Received: fusion_dim=0

A component declares the validators of its own options where it is registered
(`@FUSIONS.register("film", validators={"film_blocks": positive_int})`, see
`mmzoo.registry`); `build_model` runs them before any layer is built. An option
means the same thing in every component that takes it, so it has one
validator: declare a shared option with the same object everywhere (a
function of this module, or a constant exported by the component that owns
the option, e.g. `mmzoo.branches.image.POOLING`). `choice(...)` and
`at_least(...)` compare equal when their arguments are equal.

An option with no declared validator gets one from its default (`inferred`):
an `int` default must stay an integer, a `float` a real number, a `bool` a
bool, a `str` a string, a tuple or list a tuple or list. Ranges are not
inferred (a default of 8 does not say whether 0 is allowed): declare a
validator for that.
"""

import math
import numbers


def fail(name, value, allowed):
    """Raises the standard error: "`name` must be <allowed>. Received: name=<value>"."""
    raise ValueError(f"`{name}` must be {allowed}. Received: {name}={value!r}")


def is_int(value):
    """Whether `value` is an integer (Python or NumPy), and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value):
    """Whether `value` is a real number (Python or NumPy), and not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_positive_int(value):
    """Whether `value` is an integer >= 1 (and not a bool)."""
    return is_int(value) and value > 0


def describe(validator):
    """A validator's name for messages: `positive_int`, `choice('mean', 'product')`."""
    if isinstance(validator, (Choice, AtLeast, AnyOf)):
        return repr(validator)
    return getattr(validator, "__qualname__", None) or repr(validator)


# --- Declared validators ------------------------------------------------------


def positive_int(name, value):
    """An integer >= 1."""
    if not is_positive_int(value):
        fail(name, value, "a positive integer")
    return int(value)


def non_negative_int(name, value):
    """An integer >= 0."""
    if not (is_int(value) and value >= 0):
        fail(name, value, "an integer >= 0")
    return int(value)


def optional_positive_int(name, value):
    """`None` or an integer >= 1."""
    if value is not None and not (is_int(value) and value > 0):
        fail(name, value, "None or a positive integer")
    return None if value is None else int(value)


def boolean(name, value):
    """`True` or `False` (not 0 or 1)."""
    if not isinstance(value, bool):
        fail(name, value, "True or False")
    return value


def optional_bool(name, value):
    """`None`, `True` or `False`."""
    if value is not None and not isinstance(value, bool):
        fail(name, value, "None, True or False")
    return value


def optional_name(name, value):
    """`None` or a non-empty string."""
    if value is not None and not (isinstance(value, str) and value):
        fail(name, value, "None or a non-empty string")
    return value


def unit_float(name, value):
    """A number in [0, 1), such as a dropout rate."""
    if not (is_real(value) and 0 <= value < 1):
        fail(name, value, "a number in [0, 1)")
    return float(value)


def positive_number(name, value):
    """A finite number > 0, such as a learning rate."""
    if not (is_real(value) and value > 0 and math.isfinite(value)):
        fail(name, value, "a positive number")
    return float(value)


class Choice:
    """One of a fixed set of values; made by `choice(*allowed)`."""

    def __init__(self, *allowed):
        self.allowed = tuple(allowed)

    def __call__(self, name, value):
        if not any(_same(value, a) for a in self.allowed):
            fail(name, value, "one of " + ", ".join(repr(a) for a in self.allowed))
        return value

    def __eq__(self, other):
        return type(other) is Choice and self.allowed == other.allowed

    def __hash__(self):
        return hash((Choice, self.allowed))

    def __repr__(self):
        return f"choice({', '.join(map(repr, self.allowed))})"


def _same(value, allowed):
    # True == 1 in Python, but a flag is not a number here; an array does not compare.
    if allowed is None or value is None:
        return value is allowed
    if isinstance(value, bool) != isinstance(allowed, bool):
        return False
    try:
        return bool(value == allowed)
    except Exception:  # noqa: BLE001 - any value that cannot be compared is not allowed
        return False


def choice(*allowed):
    """A validator that accepts exactly one of `allowed` (`None` may be one)."""
    return Choice(*allowed)


class AtLeast:
    """An integer >= a minimum; made by `at_least(minimum, why)`."""

    def __init__(self, minimum, why=""):
        self.minimum = int(minimum)
        self.why = why

    def __call__(self, name, value):
        if not (is_int(value) and value >= self.minimum):
            why = f" ({self.why})" if self.why else ""
            fail(name, value, f"an integer >= {self.minimum}{why}")
        return int(value)

    def __eq__(self, other):
        return type(other) is AtLeast and (self.minimum, self.why) == (other.minimum, other.why)

    def __hash__(self):
        return hash((AtLeast, self.minimum, self.why))

    def __repr__(self):
        return f"at_least({self.minimum}" + (f", {self.why!r})" if self.why else ")")


def at_least(minimum, why=""):
    """A validator that accepts an integer >= `minimum`; `why` explains the bound."""
    return AtLeast(minimum, why)


# --- Inferred from a default ----------------------------------------------------


def anything(name, value):
    """No check: an option whose default is `None`, of another type, or required."""
    return value


def integer(name, value):
    """Any integer (inferred from an `int` default)."""
    if not is_int(value):
        fail(name, value, "an integer")
    return int(value)


def real_number(name, value):
    """Any real number, integers included (inferred from a `float` default)."""
    if not is_real(value):
        fail(name, value, "a number")
    return float(value)


def string(name, value):
    """Any string (inferred from a `str` default)."""
    if not isinstance(value, str):
        fail(name, value, "a string")
    return value


def sequence(name, value):
    """A tuple or a list (inferred from a tuple or list default)."""
    if not isinstance(value, (tuple, list)):
        fail(name, value, "a tuple or a list")
    return value


def inferred(default):
    """The validator of an option that declares none, from its default value.

    `bool` -> `boolean`, `int` -> `integer`, `float` -> `real_number`, `str` ->
    `string`, tuple or list -> `sequence`; `None`, any other type and a
    required option (`inspect.Parameter.empty`) -> `anything` (not checked).
    """
    if isinstance(default, bool):
        return boolean
    if is_int(default):
        return integer
    if is_real(default):
        return real_number
    if isinstance(default, str):
        return string
    if isinstance(default, (tuple, list)):
        return sequence
    return anything


class AnyOf:
    """Accepts a value that any of `validators` accepts (the first one's result).

    Used for an undeclared option that components infer differently (one
    default an `int`, another a `str`): either kind is accepted.
    """

    def __init__(self, *validators):
        self.validators = tuple(validators)

    def __call__(self, name, value):
        messages = []
        for check in self.validators:
            try:
                return check(name, value)
            except ValueError as e:
                messages.append(str(e).split(" must be ", 1)[-1].split(". Received:")[0])
        fail(name, value, " or ".join(messages))

    def __eq__(self, other):
        return type(other) is AnyOf and set(self.validators) == set(other.validators)

    def __hash__(self):
        return hash((AnyOf, frozenset(self.validators)))

    def __repr__(self):
        return f"any_of({', '.join(describe(v) for v in self.validators)})"
