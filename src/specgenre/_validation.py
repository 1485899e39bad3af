"""Declarative checks of parameter types and values, on public Python and NumPy only.

scikit-learn validates its estimators' parameters with a private module
(``sklearn.utils._param_validation``: ``Interval``, ``StrOptions``, the
``_parameter_constraints`` dict, ``@_fit_context``) that may change without
notice between releases. This module is the small replacement specgenre
uses instead. Its error messages have scikit-learn's shape, e.g.::

    The 'sr' parameter of ClipSegmenter must be an int in the range [1, inf). Got 0 instead.

and its error class, :class:`InvalidParameterError`, is both a
``ValueError`` and a ``TypeError`` (as scikit-learn's is), so code and
estimator checks that expect either keep working.

Usage
-----
**An estimator** declares one list of accepted constraints per ``__init__``
parameter in a class attribute ``_constraints`` and calls
:func:`validate_params` first thing in ``fit`` (and in any other method that
uses the parameters without fitting)::

    import numbers
    from specgenre._validation import Interval, StrOptions, validate_params

    class Smoother(BaseEstimator):
        _constraints = {
            "width": [Interval(numbers.Integral, 1, None, closed="left")],
            "mode": [StrOptions({"mean", "median"})],
            "alpha": [Interval(numbers.Real, 0, 1, closed="right"), None],
            "random_state": ["random_state"],
        }

        def fit(self, X, y=None):
            validate_params(self)
            ...

A value is valid when it satisfies **any** constraint of its list. Every
parameter of ``get_params(deep=False)`` must have an entry, and every entry
must name a parameter: a missing or misspelt entry is a ``TypeError`` at the
first ``fit`` (a programming error, not a user error). Subclasses extend the
dict: ``_constraints = {**Base._constraints, "depth": [...]}``.

**A function** is checked with the :func:`validate_call` decorator, whose
dict covers (some of) the function's parameters, defaults included::

    @validate_call({"paths": "no_validation", "sr": [Interval(numbers.Integral, 1, None,
                                                             closed="left")]})
    def load(paths, *, sr=22050): ...

**Anything else** (a method's own arguments, a dict of options) goes
through :func:`check_params` ``(params, constraints, caller=...)``.

Constraints
-----------
``Interval(numbers.Integral | numbers.Real, left, right, *, closed)``
    A number in a range; ``left``/``right`` may be None (unbounded);
    ``closed`` is ``"left"``, ``"right"``, ``"both"`` or ``"neither"``.
    ``Integral`` accepts ints and NumPy integers; ``Real`` accepts those
    and floats. Booleans and NaN are never in an interval (scikit-learn's
    ``Interval`` lets ``True`` through as the integer 1).
``StrOptions({"a", "b"})``
    One of the given strings.
``HasMethods(["fit", "predict"])``
    An object with these callable attributes (e.g. an estimator).
``None``
    The value None.
a type, e.g. ``dict``, ``str``, ``numbers.Integral``
    An instance of that type (``isinstance``).
``"boolean"``
    ``bool`` or ``numpy.bool_`` (not 0/1).
``"verbose"``
    A non-negative int, or a boolean.
``"random_state"``
    None, an int in ``[0, 2**32 - 1]`` or a ``numpy.random.RandomState``
    (what :func:`sklearn.utils.check_random_state` accepts).
``"array-like"``
    A non-scalar with a length, a shape or ``__array__`` (list, tuple,
    array, DataFrame...), not a string.
``"callable"``
    Any callable.
``"no_validation"`` (instead of a list)
    The parameter is not checked.

Relation to scikit-learn
------------------------
``@_fit_context`` did two things: it validated the parameters at the start
of ``fit`` (unless the user turned validation off with scikit-learn's public
``sklearn.set_config(skip_parameter_validation=True)``, which
:func:`validate_params` and :func:`validate_call` honour too), and it ran
``fit`` in a ``config_context`` that skipped the validation of *nested*
scikit-learn calls (a speed-up of microseconds per call). Only the first is
kept: nested estimators validate their own parameters as usual.

The constraints live in ``_constraints``, not in scikit-learn's private
``_parameter_constraints``, so that scikit-learn's own machinery (for
example ``BaseEstimator._validate_params``) never meets objects it does not
know.
"""

import inspect
import numbers
from functools import wraps

import numpy as np

__all__ = [
    "HasMethods",
    "Interval",
    "InvalidParameterError",
    "StrOptions",
    "check_params",
    "validate_call",
    "validate_params",
]

_CLOSED = ("left", "right", "both", "neither")


class InvalidParameterError(ValueError, TypeError):
    """A parameter has a type or value that its constraints do not allow.

    Both a ``ValueError`` and a ``TypeError``, like scikit-learn's error of
    the same name, so that ``except ValueError`` and ``except TypeError``
    both catch it.
    """


class _Constraint:
    """A set of accepted values: ``satisfied_by(value)`` and a readable ``str``."""

    def satisfied_by(self, value):  # pragma: no cover - overridden
        raise NotImplementedError

    def __repr__(self):
        return f"<{type(self).__name__}: {self}>"


def _is_bool(value):
    return isinstance(value, (bool, np.bool_))


class Interval(_Constraint):
    """Numbers of one kind in a range.

    Parameters
    ----------
    type : {numbers.Integral, numbers.Real}
        ``Integral``: ints and NumPy integers. ``Real``: those and floats.
        Booleans are refused by both.
    left, right : number or None
        Bounds of the range; None means unbounded on that side.
    closed : {"left", "right", "both", "neither"}
        Which bounds belong to the range.
    """

    def __init__(self, type, left, right, *, closed):
        if type not in (numbers.Integral, numbers.Real):
            raise TypeError(f"Interval type must be numbers.Integral or numbers.Real; got {type}.")
        if closed not in _CLOSED:
            raise ValueError(f"Interval closed must be one of {_CLOSED}; got {closed!r}.")
        for name, bound in (("left", left), ("right", right)):
            if bound is not None and (not isinstance(bound, type) or _is_bool(bound)):
                kind = "an int" if type is numbers.Integral else "a real number"
                raise TypeError(f"Interval {name} bound must be {kind} or None; got {bound!r}.")
        if left is not None and right is not None and right <= left:
            raise ValueError(f"Interval right bound {right} must exceed left bound {left}.")
        self.type = type
        self.left = left
        self.right = right
        self.closed = closed

    def satisfied_by(self, value):
        if not isinstance(value, self.type) or _is_bool(value):
            return False
        if not isinstance(value, numbers.Integral) and np.isnan(value):
            return False
        if self.left is not None:
            if value < self.left or (value == self.left and self.closed in ("right", "neither")):
                return False
        if self.right is not None:
            if value > self.right or (value == self.right and self.closed in ("left", "neither")):
                return False
        return True

    def __str__(self):
        integral = self.type is numbers.Integral
        left = "-inf" if self.left is None else (self.left if integral else float(self.left))
        right = "inf" if self.right is None else (self.right if integral else float(self.right))
        open_ = "[" if self.closed in ("left", "both") else "("
        close = "]" if self.closed in ("right", "both") else ")"
        kind = "an int" if integral else "a float"
        return f"{kind} in the range {open_}{left}, {right}{close}"


class StrOptions(_Constraint):
    """One of a fixed set of strings.

    Parameters
    ----------
    options : set of str
        The accepted strings.
    """

    def __init__(self, options):
        options = set(options)
        if not options or not all(isinstance(o, str) for o in options):
            raise TypeError(f"StrOptions needs a non-empty set of strings; got {options!r}.")
        self.options = options

    def satisfied_by(self, value):
        return isinstance(value, str) and value in self.options

    def __str__(self):
        return f"a str among {{{', '.join(repr(o) for o in sorted(self.options))}}}"


class HasMethods(_Constraint):
    """Objects with the given callable attributes (duck typing, e.g. estimators).

    Parameters
    ----------
    methods : str or list of str
        Names of the methods the object must have.
    """

    def __init__(self, methods):
        methods = [methods] if isinstance(methods, str) else list(methods)
        if not methods or not all(isinstance(m, str) for m in methods):
            raise TypeError(f"HasMethods needs method names; got {methods!r}.")
        self.methods = methods

    def satisfied_by(self, value):
        return all(callable(getattr(value, m, None)) for m in self.methods)

    def __str__(self):
        names = [repr(m) for m in self.methods]
        joined = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        return f"an object implementing {joined}"


class _InstanceOf(_Constraint):
    def __init__(self, type):
        self.type = type

    def satisfied_by(self, value):
        return isinstance(value, self.type)

    def __str__(self):
        t = self.type
        if t is numbers.Integral:
            name = "int"
        elif t is numbers.Real:
            name = "float"
        elif t.__module__ == "builtins":
            name = t.__qualname__
        else:
            name = f"{t.__module__}.{t.__qualname__}"
        return f"an instance of {name!r}"


class _Predicate(_Constraint):
    """A named constraint given by a test function and its description."""

    def __init__(self, test, text):
        self._test = test
        self._text = text

    def satisfied_by(self, value):
        return bool(self._test(value))

    def __str__(self):
        return self._text


def _is_array_like(value):
    if isinstance(value, (str, bytes)) or np.isscalar(value):
        return False
    shape = getattr(value, "shape", None)
    if shape is not None:
        return len(shape) > 0
    return hasattr(value, "__len__") or hasattr(value, "__array__")


def _is_random_state(value):
    if value is None or isinstance(value, np.random.RandomState):
        return True
    return Interval(numbers.Integral, 0, 2**32 - 1, closed="both").satisfied_by(value)


def _is_verbose(value):
    return _is_bool(value) or Interval(numbers.Integral, 0, None, closed="left").satisfied_by(
        value)


_NAMED = {
    "boolean": _Predicate(_is_bool, "an instance of 'bool' or an instance of 'numpy.bool'"),
    "verbose": _Predicate(
        _is_verbose, "an int in the range [0, inf), an instance of 'bool' or an instance of "
        "'numpy.bool'"),
    "random_state": _Predicate(
        _is_random_state, "an int in the range [0, 4294967295], an instance of "
        "'numpy.random.RandomState' or None"),
    "array-like": _Predicate(_is_array_like, "an array-like"),
    "callable": _Predicate(callable, "a callable"),
}
_NONE = _Predicate(lambda value: value is None, "None")


def _make_constraint(spec):
    """The constraint object for one entry of a constraint list."""
    if isinstance(spec, _Constraint):
        return spec
    if spec is None:
        return _NONE
    if isinstance(spec, str):
        try:
            return _NAMED[spec]
        except KeyError:
            raise TypeError(
                f"unknown constraint {spec!r}; named constraints are {sorted(_NAMED)}."
            ) from None
    if isinstance(spec, type):
        return _InstanceOf(spec)
    raise TypeError(f"unknown constraint {spec!r} (of type {type(spec).__name__}).")


def _describe(constraints):
    texts = [str(c) for c in constraints]
    return texts[0] if len(texts) == 1 else f"{', '.join(texts[:-1])} or {texts[-1]}"


def _validation_skipped():
    """Whether the user turned parameter validation off in scikit-learn's (public) config."""
    try:
        from sklearn import get_config
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        return False
    return bool(get_config().get("skip_parameter_validation", False))


def check_params(params, constraints, *, caller):
    """Check values against their constraints; raise on the first invalid one.

    Parameters
    ----------
    params : mapping of str to object
        Parameter names and values. Names without an entry in
        ``constraints`` are not checked.
    constraints : mapping of str to list or "no_validation"
        Accepted constraints of each parameter (see the module docstring).
    caller : str
        Name of the estimator or function, used in the message.

    Raises
    ------
    InvalidParameterError
        ``"The 'x' parameter of Caller must be ... Got ... instead."``
    TypeError
        If a constraint itself is not understood.
    """
    for name, value in params.items():
        specs = constraints.get(name, "no_validation")
        if isinstance(specs, str) and specs == "no_validation":
            continue
        accepted = [_make_constraint(spec) for spec in specs]
        if not any(c.satisfied_by(value) for c in accepted):
            raise InvalidParameterError(
                f"The {name!r} parameter of {caller} must be {_describe(accepted)}. "
                f"Got {value!r} instead."
            )


def validate_params(estimator):
    """Check an estimator's parameters against its class's ``_constraints``.

    Call it at the start of ``fit``. Does nothing under scikit-learn's
    ``set_config(skip_parameter_validation=True)``.

    Parameters
    ----------
    estimator : object
        An estimator with ``get_params`` and a ``_constraints`` dict with one
        entry per parameter of ``get_params(deep=False)``.

    Raises
    ------
    InvalidParameterError
        If a parameter's value satisfies none of its constraints.
    TypeError
        If ``_constraints`` is missing, lacks a parameter or names one the
        estimator does not have.
    """
    cls = type(estimator).__name__
    constraints = getattr(estimator, "_constraints", None)
    if not isinstance(constraints, dict):
        raise TypeError(f"{cls} declares no _constraints dict of parameter constraints.")
    params = estimator.get_params(deep=False)
    missing = sorted(set(params) - set(constraints))
    unknown = sorted(set(constraints) - set(params))
    if missing or unknown:
        raise TypeError(
            f"{cls}._constraints must have one entry per parameter: "
            f"missing {missing}, not parameters {unknown}."
        )
    if _validation_skipped():
        return
    check_params(params, constraints, caller=cls)


def validate_call(constraints):
    """Decorator: check a function's arguments (defaults included) at every call.

    Parameters
    ----------
    constraints : dict of str to list or "no_validation"
        Constraints of the function's parameters (see the module docstring);
        every key must name a parameter of the function.

    Returns
    -------
    decorator : callable
        Wraps the function; the wrapper raises :class:`InvalidParameterError`
        naming the function and the parameter before the function runs.
    """

    def decorator(func):
        signature = inspect.signature(func)
        unknown = sorted(set(constraints) - set(signature.parameters))
        if unknown:
            raise TypeError(f"constraints for {func.__qualname__} name no parameter: {unknown}.")

        @wraps(func)
        def wrapper(*args, **kwargs):
            if not _validation_skipped():
                bound = signature.bind(*args, **kwargs)
                bound.apply_defaults()
                check_params(bound.arguments, constraints, caller=func.__qualname__)
            return func(*args, **kwargs)

        return wrapper

    return decorator
