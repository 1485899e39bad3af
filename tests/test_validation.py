"""Tests for specgenre._validation: constraints, messages, estimators and functions."""

import numbers
import re

import numpy as np
import pytest
import sklearn
from sklearn.base import BaseEstimator

from specgenre._validation import (
    HasMethods,
    Interval,
    InvalidParameterError,
    StrOptions,
    check_params,
    validate_call,
    validate_params,
)


def _ok(value, specs):
    try:
        check_params({"x": value}, {"x": specs}, caller="f")
    except InvalidParameterError:
        return False
    return True


@pytest.mark.parametrize("closed, accepted, refused", [
    ("left", [0, 0.5], [1, -0.1]),
    ("right", [1, 0.5], [0, 1.1]),
    ("both", [0, 1, 0.5], [-1e-9, 1 + 1e-9]),
    ("neither", [0.5, 1e-12], [0, 1]),
])
def test_real_interval_ends(closed, accepted, refused):
    spec = [Interval(numbers.Real, 0, 1, closed=closed)]
    assert all(_ok(v, spec) for v in accepted)
    assert not any(_ok(v, spec) for v in refused)


def test_integral_interval_refuses_floats_bools_and_accepts_numpy_ints():
    spec = [Interval(numbers.Integral, 1, None, closed="left")]
    assert _ok(1, spec) and _ok(np.int64(10**12), spec) and _ok(np.uint8(3), spec)
    for bad in (0, 1.0, 2.5, True, np.bool_(True), "3", None):
        assert not _ok(bad, spec), bad


def test_real_interval_refuses_nan_and_bools_accepts_numpy_floats():
    spec = [Interval(numbers.Real, None, None, closed="neither")]
    assert _ok(-1e300, spec) and _ok(np.float32(2.0), spec) and _ok(3, spec)
    assert not _ok(float("nan"), spec)
    assert not _ok(np.float64("nan"), spec)
    assert not _ok(True, spec)
    assert not _ok(float("inf"), [Interval(numbers.Real, 0, 10, closed="both")])


def test_options_methods_none_types_and_named_constraints():
    assert _ok("a", [StrOptions({"a", "b"})]) and not _ok("c", [StrOptions({"a", "b"})])
    assert not _ok(1, [StrOptions({"1"})])
    assert _ok(BaseEstimator(), [HasMethods(["get_params", "set_params"])])
    assert not _ok(object(), [HasMethods("fit")])
    assert not _ok(type("NoCall", (), {"fit": 3})(), [HasMethods("fit")])
    assert _ok(None, [None]) and not _ok(0, [None])
    assert _ok({}, [dict]) and not _ok([], [dict])
    assert _ok(np.int32(2), [numbers.Integral]) and not _ok(2.0, [numbers.Integral])
    assert _ok(np.bool_(False), ["boolean"]) and not _ok(0, ["boolean"])
    assert _ok(2, ["verbose"]) and _ok(True, ["verbose"]) and not _ok(-1, ["verbose"])
    for rs in (None, 0, 2**32 - 1, np.random.RandomState(0)):
        assert _ok(rs, ["random_state"])
    for rs in (-1, 2**32, 1.0, np.random.default_rng(0)):
        assert not _ok(rs, ["random_state"])
    for arr in ([1, 2], (1.0,), np.zeros(3), np.zeros((0, 2))):
        assert _ok(arr, ["array-like"])
    for not_arr in ("abc", 3, np.float64(1.0), np.array(1.0), None):
        assert not _ok(not_arr, ["array-like"])
    assert _ok(len, ["callable"]) and not _ok("len", ["callable"])
    assert _ok(object(), "no_validation")


def test_message_has_scikit_learn_shape():
    constraints = {
        "sr": [Interval(numbers.Integral, 1, None, closed="left")],
        "ratio": [Interval(numbers.Real, 0, 1, closed="right"), None],
        "mode": [StrOptions({"soft", "hard"})],
        "est": [HasMethods(["fit", "predict"]), StrOptions({"precomputed"}), None],
        "opts": [dict, None],
    }
    expected = {
        "sr": (0, "The 'sr' parameter of Foo must be an int in the range [1, inf). "
                  "Got 0 instead."),
        "ratio": (2, "The 'ratio' parameter of Foo must be a float in the range (0.0, 1.0] "
                     "or None. Got 2 instead."),
        "mode": ("x", "The 'mode' parameter of Foo must be a str among {'hard', 'soft'}. "
                      "Got 'x' instead."),
        "est": (3, "The 'est' parameter of Foo must be an object implementing 'fit' and "
                   "'predict', a str among {'precomputed'} or None. Got 3 instead."),
        "opts": ([], "The 'opts' parameter of Foo must be an instance of 'dict' or None. "
                     "Got [] instead."),
    }
    for name, (value, message) in expected.items():
        with pytest.raises(InvalidParameterError) as info:
            check_params({name: value}, constraints, caller="Foo")
        assert str(info.value) == message
        # scikit-learn's error is both; callers may catch either
        assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)


def test_unchecked_names_pass_and_bad_constraints_are_type_errors():
    check_params({"free": object()}, {}, caller="f")
    with pytest.raises(TypeError, match="unknown constraint 'boolen'"):
        check_params({"x": True}, {"x": ["boolen"]}, caller="f")
    with pytest.raises(TypeError, match="unknown constraint 3"):
        check_params({"x": True}, {"x": [3]}, caller="f")


@pytest.mark.parametrize("args, error, match", [
    ((float, 0, 1), TypeError, "numbers.Integral or numbers.Real"),
    ((numbers.Integral, 0.5, 2), TypeError, "left bound must be an int"),
    ((numbers.Real, 0, "1"), TypeError, "right bound must be a real number"),
    ((numbers.Real, 1, 1), ValueError, "must exceed left bound"),
])
def test_interval_refuses_bad_definitions(args, error, match):
    with pytest.raises(error, match=match):
        Interval(*args, closed="both")
    with pytest.raises(ValueError, match="closed must be one of"):
        Interval(numbers.Real, 0, 1, closed="open")


def test_options_and_methods_refuse_bad_definitions():
    with pytest.raises(TypeError):
        StrOptions(set())
    with pytest.raises(TypeError):
        StrOptions({1, 2})
    with pytest.raises(TypeError):
        HasMethods([])


class _Smoother(BaseEstimator):
    _constraints = {
        "width": [Interval(numbers.Integral, 1, None, closed="left")],
        "mode": [StrOptions({"mean", "median"})],
    }

    def __init__(self, width=3, mode="mean"):
        self.width = width
        self.mode = mode

    def fit(self, X, y=None):
        validate_params(self)
        self.fitted_ = True
        return self


def test_validate_params_checks_an_estimator():
    _Smoother().fit(None)
    with pytest.raises(InvalidParameterError,
                       match=re.escape("The 'width' parameter of _Smoother must be an int "
                                       "in the range [1, inf). Got 0 instead.")):
        _Smoother(width=0).fit(None)
    with pytest.raises(ValueError, match="'mode' parameter of _Smoother"):
        _Smoother(mode="max").fit(None)


def test_validate_params_honours_scikit_learn_skip_config():
    with sklearn.config_context(skip_parameter_validation=True):
        _Smoother(width=0).fit(None)
    with pytest.raises(InvalidParameterError):
        _Smoother(width=0).fit(None)


def test_validate_params_needs_one_entry_per_parameter():
    class Missing(_Smoother):
        _constraints = {"width": _Smoother._constraints["width"]}

    class Extra(_Smoother):
        _constraints = {**_Smoother._constraints, "depth": [None]}

    class Undeclared(BaseEstimator):
        def __init__(self, a=1):
            self.a = a

    with pytest.raises(TypeError, match=r"missing \['mode'\], not parameters \[\]"):
        validate_params(Missing())
    with pytest.raises(TypeError, match=r"missing \[\], not parameters \['depth'\]"):
        validate_params(Extra())
    with pytest.raises(TypeError, match="Undeclared declares no _constraints"):
        validate_params(Undeclared())


def test_validate_call_checks_arguments_and_defaults():
    calls = []

    @validate_call({"paths": "no_validation",
                    "sr": [Interval(numbers.Integral, 1, None, closed="left")],
                    "how": [StrOptions({"raise", "skip"})]})
    def load(paths, *, sr=22050, how="raise", extra=None):
        """Load."""
        calls.append((paths, sr, how, extra))
        return len(calls)

    assert load(["a"], sr=8000, extra=object()) == 1
    assert load.__doc__ == "Load." and load.__name__ == "load"
    with pytest.raises(InvalidParameterError,
                       match=re.escape("The 'sr' parameter of "
                                       "test_validate_call_checks_arguments_and_defaults."
                                       "<locals>.load must be an int in the range [1, inf). "
                                       "Got 0 instead.")):
        load([], sr=0)
    with pytest.raises(InvalidParameterError, match="'how' parameter"):
        load([], how="ignore")
    assert len(calls) == 1  # the function never ran on invalid arguments
    with pytest.raises(TypeError, match="name no parameter: \\['rate'\\]"):
        validate_call({"rate": [None]})(lambda sr=1: sr)


def test_validate_call_checks_defaults_too():
    @validate_call({"n": [Interval(numbers.Integral, 0, None, closed="left")]})
    def f(n=-1):
        return n

    with pytest.raises(InvalidParameterError, match="Got -1 instead"):
        f()
    assert f(2) == 2
