"""Each component declares its options' validators; the registries collect them.

A bad value for any option of any registered component (a user's own
included) is mmzoo's `ValueError` naming the option, raised before Keras
builds anything.
"""

import re

import pytest

import keras
import mmzoo
from mmzoo.registry import FUSIONS, IMAGE_BRANCHES, Registry, option_validator, registries
from mmzoo.tasks.options import known_options
from mmzoo.validators import (
    anything,
    at_least,
    choice,
    integer,
    non_negative_int,
    positive_int,
    real_number,
    sequence,
    string,
)

# Two modalities, so that a fusion is used; nothing here is ever built.
SMALL = dict(image_branch="cnn", text_branch="lstm", image_shape=(16, 16, 3),
             vocab_size=20, sequence_length=5, num_classes=3)


class KerasWasCalled(BaseException):
    """Raised by any Keras layer constructor while a test forbids building."""


@pytest.fixture
def no_keras(monkeypatch):
    """Any Keras layer (keras.Input included) constructed in the test raises."""
    def refuse(self, *args, **kwargs):
        raise KerasWasCalled(f"a Keras layer was constructed: {type(self).__name__}")

    monkeypatch.setattr(keras.layers.Layer, "__init__", refuse)


def test_no_keras_fixture_refuses_building(no_keras):
    with pytest.raises(KerasWasCalled):
        mmzoo.build_model("classification", **SMALL)


def _max_units_fusion(features, modality_mask=None, *, max_units=8, name="fusion_max_units"):
    x = keras.layers.Concatenate(name=f"{name}_concat")(list(features.values()))
    return keras.layers.Dense(max_units, activation="relu", name=f"{name}_dense")(x)


@pytest.fixture
def max_units_fusion():
    """A user's fusion with an option that no built-in component has, declared nowhere."""
    FUSIONS.register("test_max_units")(_max_units_fusion)
    yield "test_max_units"
    FUSIONS.unregister("test_max_units")


def _assert_named(error, option):
    message = str(error.value)
    assert type(error.value) is ValueError
    assert f"`{option}`" in message
    assert f"Received: {option}=" in message
    frames = [str(f.path) for f in error.traceback]
    assert not any(re.search(r"site-packages[/\\](keras|tensorflow)", p) for p in frames)


def test_user_fusion_bad_option_is_mmzoos_error_naming_it(max_units_fusion, no_keras):
    with pytest.raises(ValueError) as error:
        mmzoo.build_model("classification", **SMALL, fusion=max_units_fusion,
                          max_units="eight")
    _assert_named(error, "max_units")
    assert str(error.value) == "`max_units` must be an integer. Received: max_units='eight'"
    # A flag is not a number here (True == 1 in Python).
    with pytest.raises(ValueError, match=r"must be an integer\. Received: max_units=True"):
        mmzoo.build_model("classification", **SMALL, fusion=max_units_fusion, max_units=True)


def test_user_fusion_good_option_builds(max_units_fusion):
    import numpy as np

    model = mmzoo.build_model("classification", **SMALL, fusion=max_units_fusion,
                              max_units=np.int64(4), compile=False)
    assert model.get_layer("fusion_max_units_dense").units == 4
    assert model.build_options["max_units"] == 4
    assert type(model.build_options["max_units"]) is int


def test_declared_validator_is_used(no_keras):
    @FUSIONS.register("test_declared", validators={"max_units": positive_int})
    def declared(features, modality_mask=None, *, max_units=8, name="fusion_declared"):
        return _max_units_fusion(features, max_units=max_units, name=name)

    try:
        with pytest.raises(ValueError) as error:
            mmzoo.build_model("classification", **SMALL, fusion="test_declared", max_units=0)
        _assert_named(error, "max_units")
        assert "a positive integer" in str(error.value)
    finally:
        FUSIONS.unregister("test_declared")


def test_undeclared_option_takes_the_validator_declared_for_its_name(no_keras):
    # `fusion_dim` is declared (positive_int) by the built-in fusions.
    @FUSIONS.register("test_shared")
    def shared(features, modality_mask=None, *, fusion_dim=16, name="fusion_shared"):
        return _max_units_fusion(features, max_units=fusion_dim, name=name)

    try:
        assert option_validator("fusion_dim") is positive_int
        with pytest.raises(ValueError, match=r"`fusion_dim` must be a positive integer\. "
                                             r"Received: fusion_dim=0"):
            mmzoo.build_model("classification", **SMALL, fusion="test_shared", fusion_dim=0)
    finally:
        FUSIONS.unregister("test_shared")


@pytest.mark.parametrize("default,kind,good,bad,words", [
    (8, integer, 3, 2.5, "an integer"),
    (0.5, real_number, 2, "0.5", "a number"),
    (False, None, True, 1, "True or False"),
    ("relu", string, "gelu", 3, "a string"),
    ((1, 2), sequence, [3, 4], "12", "a tuple or a list"),
    (None, anything, object(), None, None),
])
def test_validator_inferred_from_the_default(default, kind, good, bad, words):
    toys = Registry("toy component", "toy")

    def toy(*, test_inferred=default, name="toy"):
        return test_inferred

    toys.register("toy")(toy)
    try:
        check = option_validator("test_inferred")
        if kind is not None:
            assert check is kind
        check("test_inferred", good)
        if bad is not None:
            with pytest.raises(ValueError, match=re.escape(
                    f"`test_inferred` must be {words}. Received: test_inferred={bad!r}")):
                check("test_inferred", bad)
    finally:
        toys.unregister("toy")
    assert "toy" not in toys


def test_required_option_without_validator_is_not_checked():
    toys = Registry("toy component", "toy")

    def toy(*, test_required, name="toy"):
        return test_required

    toys.register("toy")(toy)
    try:
        assert option_validator("test_required") is anything
    finally:
        toys.unregister("toy")


def test_options_inferred_differently_accept_either_kind():
    toys = Registry("toy component", "toy")

    def toy_a(*, test_either=1, name="a"):
        return test_either

    def toy_b(*, test_either="one", name="b"):
        return test_either

    toys.register("a")(toy_a)
    toys.register("b")(toy_b)
    try:
        check = option_validator("test_either")
        assert check("test_either", 2) == 2 and check("test_either", "two") == "two"
        with pytest.raises(ValueError, match=r"`test_either` must be an integer or a "
                                             r"string\. Received: test_either=2\.5"):
            check("test_either", 2.5)
    finally:
        toys.unregister("a")
        toys.unregister("b")


def test_conflicting_validators_for_one_option_are_refused_at_registration():
    def mine(features, modality_mask=None, *, fusion_dim=64, name="fusion_mine"):
        return features

    with pytest.raises(ValueError) as error:
        FUSIONS.register("test_conflict", validators={"fusion_dim": non_negative_int})(mine)
    message = str(error.value)
    assert "fusion 'test_conflict' declares `fusion_dim` with the validator non_negative_int" \
        in message
    assert "positive_int" in message and "Received: validators=" in message
    assert "test_conflict" not in FUSIONS

    # build_model's own options count too.
    def dropping(features, modality_mask=None, *, dropout=0.5, name="fusion_dropping"):
        return features

    with pytest.raises(ValueError, match=r"`dropout` .* but build_model declares it with "
                                         r"unit_float"):
        FUSIONS.register("test_conflict", validators={"dropout": positive_int})(dropping)
    assert "test_conflict" not in FUSIONS


def test_an_equal_validator_is_not_a_conflict():
    def mine(features, modality_mask=None, *, pooling="avg", name="fusion_mine"):
        return features

    # A second choice(...) with the same values is the same validator.
    FUSIONS.register("test_equal", validators={
        "pooling": choice("flatten", "avg", "max", None)})(mine)
    FUSIONS.unregister("test_equal")
    assert at_least(2, "why") == at_least(2, "why") != at_least(3, "why")


def test_a_default_that_fails_its_options_validator_is_refused():
    def mine(features, modality_mask=None, *, fusion_dim=None, name="fusion_mine"):
        return features

    with pytest.raises(ValueError, match=r"The default of `fusion_dim` in fusion "
                                         r"'test_default' \(None\) fails the validator"):
        FUSIONS.register("test_default")(mine)
    assert "test_default" not in FUSIONS


def test_validators_must_name_options_and_be_callable():
    def mine(features, modality_mask=None, *, max_units=8, name="fusion_mine"):
        return features

    with pytest.raises(ValueError, match=r"declares a validator for `max_unit`, which is not "
                                         r"one of its options .*max_units"):
        FUSIONS.register("test_bad", validators={"max_unit": positive_int})(mine)
    with pytest.raises(ValueError, match=r"validator for `max_units` that is not callable"):
        FUSIONS.register("test_bad", validators={"max_units": "positive"})(mine)
    assert "test_bad" not in FUSIONS


def test_unregister():
    def tiny(input_shape, *, name="image_test_tiny"):
        return None

    IMAGE_BRANCHES.register("test_tiny")(tiny)
    assert IMAGE_BRANCHES.unregister("test_tiny").builder is tiny
    assert "test_tiny" not in IMAGE_BRANCHES
    with pytest.raises(ValueError, match="Received: image_branch='test_tiny'"):
        IMAGE_BRANCHES.unregister("test_tiny")


# --- Every option of every registered component -------------------------------


def _every_option():
    cases = []
    for registry in registries():
        for name in registry:
            component = registry.get(name)
            for option, default in component.options.items():
                cases.append(pytest.param(registry, name, option, default,
                                          id=f"{registry.option}={name}-{option}"))
    return cases


def _bad_values(default):
    bad = [object()]
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        bad.append("bogus")
    return bad


def test_every_builtin_option_declares_its_validator():
    undeclared = [f"{registry.option}={name}: {option}"
                  for registry in registries() for name in registry
                  for option in registry.get(name).options
                  if registry.get(name).builder.__module__.startswith("mmzoo.")
                  and option not in registry.get(name).validators]
    assert not undeclared


def test_one_validator_per_option_name():
    declared = {}
    for registry in registries():
        for name in registry:
            for option, check in registry.get(name).validators.items():
                declared.setdefault(option, []).append(check)
    for option, checks in declared.items():
        assert all(c == checks[0] for c in checks), option
        assert option_validator(option) == checks[0]


def _check_every_bad_value(registry, name, option, default):
    """Wrong-typed values of `option` get mmzoo's error naming it, through build_model."""
    check = option_validator(option)
    if check is anything:
        # Only a user's component can leave an option unchecked (a `None`
        # default, or a required option, without a declared validator).
        assert not registry.get(name).builder.__module__.startswith("mmzoo.")
        pytest.skip(f"`{option}` of {registry.option}={name!r} is not checked")
    for bad in _bad_values(default):
        if option not in known_options():
            # A registry that build_model does not read yet: its validator alone.
            with pytest.raises(ValueError) as error:
                check(option, bad)
            _assert_named(error, option)
            continue
        task, selection = "classification", {registry.option: name}
        if registry.option == "task":
            task, selection = name, {}
        elif registry.option not in known_options():
            selection = {}
        with pytest.raises(ValueError) as error:
            mmzoo.build_model(task, **selection, **{option: bad})
        _assert_named(error, option)


@pytest.mark.parametrize("registry,name,option,default", _every_option())
def test_every_option_of_every_component_is_validated(registry, name, option, default,
                                                      no_keras):
    _check_every_bad_value(registry, name, option, default)


def test_the_sweep_covers_a_newly_registered_component(max_units_fusion, no_keras):
    (case,) = [p for p in _every_option() if p.id == f"fusion={max_units_fusion}-max_units"]
    _check_every_bad_value(*case.values)
