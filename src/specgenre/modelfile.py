"""Model files that cannot run code: fitted estimators as tensors and a JSON description.

:func:`save_model` writes a fitted estimator (a row of :func:`~specgenre.make_row`,
or any composition of the types listed in :func:`allowed_types`) to one
`safetensors <https://huggingface.co/docs/safetensors>`__ file: the numeric
arrays and network weights are its tensors, and the file's ``__metadata__``
holds, under the key ``"specgenre"``, a JSON document with the format
version, the versions that saved it, the caller's metadata and the estimator
tree. :func:`load_model` reads such a file back without running anything
stored in it.

**The estimator tree.** Each object is a node ``{"class": "<module>:<qualname>", "id": n, "state":
{...}}`` whose class must be in an explicit allowlist of types that were
imported by this module (the file names a type; it never makes Python import
or call an arbitrary name). Values are JSON primitives or tagged values:
``{"$tuple": [...]}``, ``{"$dict": {...}}``, ``{"$items": [[key, value],
...]}`` (a dict with keys that are not strings), ``{"$odict": [...]}``,
``{"$set": [...]}``, ``{"$float": "nan"}``, ``{"$array": "<tensor key>"}`` (a
numeric NumPy array stored as a tensor), ``{"$strarray": ...}`` and
``{"$objarray": ...}`` (arrays of strings, in the JSON), ``{"$scalar": [dtype,
value]}`` (a NumPy scalar), ``{"$dtype": ...}``, ``{"$type": "<module>:<qualname>"}``
(an allowlisted class or function used as a value, e.g. ``torch.optim.AdamW``),
``{"$tensor": key}`` and ``{"$parameter": key}`` (torch tensors) and
``{"$same": n}`` (an object met before). A plain node is rebuilt with
``cls.__new__(cls)`` and its ``__dict__`` set from the decoded state: no
``__setstate__``, ``__reduce__``, ``eval`` or pickle is involved.

**Types with their own node:**

- torch modules: their attributes, their sub-modules, and their parameters
  and buffers as tensors of the file (what ``state_dict()`` holds, plus the
  buffers that are not persistent); rebuilt on a module initialised by
  ``torch.nn.Module.__init__``;
- skorch nets: the module, the net's parameters (``get_params``) and
  history; rebuilt as ``type(net)(**params)`` then ``initialize()``, so the
  optimizer, criterion and callbacks are fresh: the net predicts exactly as
  the saved one, but training does not continue where it stopped;
- skorch callbacks: their parameters (``get_params``), rebuilt by the class;
- XGBoost boosters: XGBoost's own UBJSON model (``save_raw("ubj")``) as a
  ``uint8`` tensor, read back with ``Booster.load_model``;
- ``numpy.random.RandomState``: its ``get_state()``.

Everything is checked before any object is built: the header, the format,
every class name against the allowlist and the tensor keys against those the
tree uses. Files of the earlier format (``"specgenre-model-1"``, a joblib
pickle) are refused unless ``trusted=True``.
"""

import base64
import json
import math
import os
import re
import struct
import sys
import types
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = ["MODEL_FORMAT", "ModelFileError", "allowed_types", "load_model",
           "save_model"]

#: Format of the files :func:`save_model` writes.
MODEL_FORMAT = "specgenre-model-2"
#: The earlier format: a joblib pickle of a dict (loaded only with ``trusted=True``).
LEGACY_FORMAT = "specgenre-model-1"
#: Key of the safetensors ``__metadata__`` entry holding the JSON document.
HEADER_KEY = "specgenre"

# A safetensors header larger than this is refused before it is parsed.
_MAX_HEADER_BYTES = 256 * 2**20


class ModelFileError(ValueError):
    """A file that is not a model file :func:`load_model` may load.

    The message is one line naming the file and saying what is wrong with it.
    """


class SavedModel(NamedTuple):
    """An estimator and its metadata as read from a file (:func:`load_model` wraps it
    in a :class:`~specgenre.TrainedModel`).

    Attributes
    ----------
    estimator : object
        The fitted estimator.
    metadata : dict
        The ``metadata`` given to :func:`save_model` (as JSON gives it back:
        tuples are lists). For a file of the earlier format, the entries of its
        dict other than the estimator.
    """

    estimator: object
    metadata: dict


# --------------------------------------------------------------------------
# the allowlist
# --------------------------------------------------------------------------
#
# Groups of allowed objects, by the top-level package of the module that defines
# them, built (and their packages imported) only when a file or a model needs
# them. Each group lists (object, instantiable): a class that is instantiable may be
# built from a file; every listed object may be referred to as a value (a class or
# function used as a parameter).


def _builtins_group():
    # print: the default ``sink`` of skorch's callbacks
    return [(float, False), (int, False), (bool, False), (str, False), (print, False)]


def _numpy_group():
    scalars = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
               np.uint32, np.uint64, np.float16, np.float32, np.float64]
    return [(t, False) for t in scalars] + [(np.random.RandomState, True)]


def _sklearn_group():
    from sklearn.calibration import (
        CalibratedClassifierCV,
        _CalibratedClassifier,
        _SigmoidCalibration,
    )
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import LabelEncoder, StandardScaler
    from sklearn.svm import SVC

    instances = [Pipeline, StandardScaler, LabelEncoder, PCA, LogisticRegression, SVC,
                 CalibratedClassifierCV, _CalibratedClassifier, _SigmoidCalibration]
    try:
        from sklearn.frozen import FrozenEstimator
    except ImportError:  # scikit-learn < 1.6
        pass
    else:
        instances.append(FrozenEstimator)
    return [(t, True) for t in instances]


def _xgboost_group():
    from xgboost import Booster, XGBClassifier

    return [(Booster, True), (XGBClassifier, True)]


def _torch_group():
    import torch
    from torch import nn
    from torch.utils.data import DataLoader

    layers = [nn.Sequential, nn.ModuleList, nn.ModuleDict, nn.Identity, nn.Flatten,
              nn.Conv1d, nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU,
              nn.MaxPool1d, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.Dropout]
    refs = [nn.CrossEntropyLoss, torch.optim.AdamW, torch.optim.Adam, torch.optim.SGD,
            DataLoader]
    return [(t, True) for t in layers] + [(t, False) for t in refs]


def _torchvision_group():
    from torchvision.models.resnet import BasicBlock, ResNet

    return [(ResNet, True), (BasicBlock, True)]


def _skorch_group():
    from skorch import NeuralNetClassifier
    from skorch.callbacks import EarlyStopping, EpochTimer, LRScheduler, PrintLog, ProgressBar
    from skorch.dataset import Dataset, ValidSplit

    instances = [NeuralNetClassifier, ValidSplit, EarlyStopping, LRScheduler, EpochTimer,
                 PrintLog, ProgressBar]
    return [(t, True) for t in instances] + [(Dataset, False)]


def _specgenre_group():
    # the estimators that do not need torch (importing them does not import it)
    import specgenre

    from ._capped_pca import CappedPCA

    return [(getattr(specgenre, name), True) for name in (
        "TrackAggregator", "ClipSegmenter", "SpectrogramTransformer", "BandStatistics",
        "FeatureExtractor", "XGBoostClassifier")] + [(CappedPCA, True)]


def _specgenre_torch_group():
    import specgenre

    from . import _augment, _torchbase
    from .musicnn import MusicnnModule, MusicnnNet, VggNet, _finetune, _models
    from .networks import _modules

    instances = [
        specgenre.CNNClassifier, specgenre.ResNet18Classifier, specgenre.MusicnnEmbedding,
        specgenre.MusicnnClassifier, specgenre.MusicnnPatches,
        # networks and their parts
        _modules.SpectrogramCNN, _modules.ResNet18Module, _modules.GrayscaleConv2d,
        _modules._ConvBlock, MusicnnModule, MusicnnNet, VggNet, _models._MusicnnBody,
        _models._TimbralBlock, _models._TemporalBlock, _models._MidendConv, _models._VggBody,
        _finetune._FrozenBatchNorm,
        # training machinery kept by a fitted classifier
        _torchbase._SpectrogramNet, _torchbase._BatchNormBeforeValidation,
        _augment.BatchAugmenter,
    ]
    return [(t, True) for t in instances] + [(_torchbase._collate, False)]


_GROUPS = {
    "builtins": [_builtins_group],
    "numpy": [_numpy_group],
    "sklearn": [_sklearn_group],
    "xgboost": [_xgboost_group],
    "torch": [_torch_group],
    "torchvision": [_torchvision_group],
    "skorch": [_skorch_group],
    "specgenre": [_specgenre_group, _specgenre_torch_group],
}
_allowed = {}  # name -> (object, instantiable), filled group by group
_built = set()


def _name(obj):
    return f"{obj.__module__}:{obj.__qualname__}"


def _lookup(name):
    """``(object, instantiable)`` for an allowlisted name, or None."""
    if name in _allowed:
        return _allowed[name]
    if not isinstance(name, str) or ":" not in name:
        return None
    package = name.split(":", 1)[0].split(".", 1)[0]
    for build in _GROUPS.get(package, ()):
        if build not in _built:
            for obj, instantiable in build():
                _allowed[_name(obj)] = (obj, instantiable)
            _built.add(build)
        if name in _allowed:
            return _allowed[name]
    return None


def _allowed_name(obj):
    """The allowlist name of ``obj`` (a class or function), or None."""
    try:
        name = _name(obj)
    except AttributeError:
        return None
    entry = _lookup(name)
    return name if entry is not None and entry[0] is obj else None


def allowed_types():
    """The classes and functions a model file may name, by name.

    Returns
    -------
    types : dict
        ``"<module>:<qualname>" -> (object, instantiable)``: instantiable
        classes may be built from a file; the others (e.g.
        ``torch.optim.AdamW``, ``numpy.float32``) may only appear as values.
    """
    for builders in _GROUPS.values():
        for build in builders:
            if build not in _built:
                for obj, instantiable in build():
                    _allowed[_name(obj)] = (obj, instantiable)
                _built.add(build)
    return dict(_allowed)


# --------------------------------------------------------------------------
# kinds of nodes
# --------------------------------------------------------------------------

def _is_subclass(cls, module, attr_path):
    """``issubclass(cls, module.attr)`` without importing ``module``."""
    mod = sys.modules.get(module)
    if mod is None:
        return False
    base = mod
    for attr in attr_path.split("."):
        base = getattr(base, attr, None)
        if base is None:
            return False
    return isinstance(cls, type) and issubclass(cls, base)


def _kind(cls):
    if _is_subclass(cls, "torch", "nn.Module"):
        return "module"
    if _is_subclass(cls, "skorch", "NeuralNet"):
        return "net"
    if _is_subclass(cls, "skorch.callbacks", "Callback"):
        return "callback"
    if _is_subclass(cls, "xgboost", "Booster"):
        return "booster"
    if cls is np.random.RandomState:
        return "random_state"
    return "object"


def _module_internals():
    from torch import nn

    return frozenset(vars(nn.Module()))


# attributes of a skorch net that initialize() rebuilds
_NET_REBUILT = frozenset({
    "module_", "criterion_", "optimizer_", "callbacks_", "history_", "initialized_",
    "virtual_params_", "init_context_", "prefixes_", "cuda_dependent_attributes_",
})

_TORCH_DTYPES = ("float32", "float64", "float16", "bfloat16", "int8", "int16", "int32",
                 "int64", "uint8", "bool")
_NUMERIC_KINDS = "biuf"
_DTYPE_RE = re.compile(r"^[<>|=]?(b1|[iuf][1248]|U\d{1,6}|O)$")


# --------------------------------------------------------------------------
# encoding
# --------------------------------------------------------------------------

class _Encoder:
    """Turns an object tree into JSON-able values and a dict of arrays."""

    def __init__(self):
        self.arrays = {}        # tensor key -> C-contiguous little-endian ndarray
        self.array_keys = {}    # id(array or tensor) -> key
        self.object_ids = {}    # id(object) -> node id
        self.keep = []          # keeps memoised objects alive (ids stay unique)
        self.packages = set()   # top-level packages of the types used

    # ------------------------------------------------------------- helpers
    def _unsupported(self, value, path, why=""):
        t = type(value)
        raise TypeError(
            f"cannot save the model: {path} is a {t.__module__}.{t.__qualname__}, a type model "
            f"files cannot hold{why} (see specgenre.modelfile.allowed_types())")

    def _key(self, path):
        key = path if path not in self.arrays else None
        n = 1
        while key is None:
            n += 1
            key = f"{path}#{n}" if f"{path}#{n}" not in self.arrays else None
        return key

    def _store(self, original, array, path):
        key = self.array_keys.get(id(original))
        if key is None:
            key = self._key(path)
            self.arrays[key] = array
            self.array_keys[id(original)] = key
            self.keep.append(original)
        return key

    def _used(self, name):
        self.packages.add(name.split(":", 1)[0].split(".", 1)[0])

    # --------------------------------------------------------------- values
    def value(self, v, path):
        t = type(v)
        if v is None or t is bool or t is int or t is str:
            return v
        if t is float:
            return v if math.isfinite(v) else {"$float": repr(v)}
        if t is list:
            return [self.value(x, f"{path}[{i}]") for i, x in enumerate(v)]
        if t is tuple:
            return {"$tuple": [self.value(x, f"{path}[{i}]") for i, x in enumerate(v)]}
        if t is dict:
            if all(type(k) is str for k in v):
                return {"$dict": {k: self.value(x, f"{path}[{k!r}]") for k, x in v.items()}}
            return {"$items": [[self.value(k, f"{path} key"), self.value(x, f"{path}[{k!r}]")]
                               for k, x in v.items()]}
        if t is OrderedDict:
            return {"$odict": [[self.value(k, f"{path} key"), self.value(x, f"{path}[{k!r}]")]
                               for k, x in v.items()]}
        if t is set or t is frozenset:
            items = sorted(v, key=repr)
            return {"$" + t.__name__: [self.value(x, f"{path} item") for x in items]}
        if t is bytes:
            return {"$bytes": base64.b64encode(v).decode("ascii")}
        if isinstance(v, np.ndarray):
            return self.ndarray(v, path)
        if isinstance(v, np.generic):
            return self.scalar(v, path)
        if t is np.dtype or isinstance(v, np.dtype):
            if not _DTYPE_RE.match(v.str):
                self._unsupported(v, path, f" (dtype {v})")
            return {"$dtype": v.str}
        torch = sys.modules.get("torch")
        if torch is not None:
            if isinstance(v, torch.Tensor):
                return self.tensor(v, path)
            if t is torch.device:
                return {"$device": str(v)}
            if t is torch.dtype:
                name = str(v).replace("torch.", "")
                if name not in _TORCH_DTYPES:
                    self._unsupported(v, path, f" ({v})")
                return {"$torch_dtype": name}
        if isinstance(v, (type, types.FunctionType, types.BuiltinFunctionType)):
            name = _allowed_name(v)
            if name is None:
                raise TypeError(
                    f"cannot save the model: {path} is {_name_or_repr(v)}, which model files "
                    "cannot refer to (see specgenre.modelfile.allowed_types())")
            self._used(name)
            return {"$type": name}
        return self.obj(v, path)

    def ndarray(self, a, path):
        if a.dtype.kind in _NUMERIC_KINDS and a.dtype.itemsize <= 8:
            node = {}
            if a.ndim > 1 and a.flags.f_contiguous and not a.flags.c_contiguous:
                stored, node["order"] = a.T, "F"
            else:
                stored = a
            stored = _c_array(stored, a.dtype.newbyteorder("<"))
            return {"$array": self._store(a, stored, path), **node}
        if a.dtype.kind == "U":
            return {"$strarray": {"dtype": a.dtype.newbyteorder("<").str,
                                  "shape": list(a.shape), "data": a.ravel().tolist()}}
        if a.dtype.kind == "O":
            data = []
            for x in a.ravel():
                if isinstance(x, np.generic):
                    x = x.item()
                if not (x is None or type(x) in (bool, int, float, str)):
                    raise TypeError(
                        f"cannot save the model: {path} is an array of objects holding a "
                        f"{type(x).__name__}; model files hold object arrays of strings and "
                        "numbers only")
                data.append(self.value(x, path))
            return {"$objarray": {"shape": list(a.shape), "data": data}}
        raise TypeError(f"cannot save the model: {path} is an array of {a.dtype}, which model "
                        "files cannot hold")

    def scalar(self, s, path):
        dt = s.dtype
        if dt.kind not in _NUMERIC_KINDS + "U" or dt.itemsize > 8 and dt.kind != "U":
            self._unsupported(s, path)
        item = s.item()
        return {"$scalar": [dt.newbyteorder("<").str if dt.kind != "b" else "|b1",
                            self.value(item, path)]}

    def tensor(self, t, path):
        import torch

        if t.is_sparse or t.layout != torch.strided or t.is_complex() or t.is_quantized:
            self._unsupported(t, path, " (only dense real tensors)")
        dtype = str(t.dtype).replace("torch.", "")
        if dtype not in _TORCH_DTYPES:
            self._unsupported(t, path, f" ({t.dtype})")
        key = self.array_keys.get(id(t))
        if key is None:
            data = t.detach().cpu().contiguous()
            if data.dtype == torch.bfloat16:
                data = data.view(torch.int16)
            key = self._store(t, _c_array(data.numpy(), None), path)
        if isinstance(t, torch.nn.Parameter):
            return {"$parameter": key, "dtype": dtype, "requires_grad": bool(t.requires_grad)}
        node = {"$tensor": key, "dtype": dtype}
        if t.requires_grad:
            node["requires_grad"] = True
        return node

    # -------------------------------------------------------------- objects
    def obj(self, v, path):
        if id(v) in self.object_ids:
            return {"$same": self.object_ids[id(v)]}
        cls = type(v)
        name = _allowed_name(cls)
        if name is None or not _lookup(name)[1]:
            self._unsupported(v, path)
        self._used(name)
        n = len(self.object_ids)
        self.object_ids[id(v)] = n
        self.keep.append(v)
        node = {"class": name, "id": n}
        kind = _kind(cls)
        if kind == "module":
            node.update(self.module(v, path))
        elif kind == "net":
            node.update(self.net(v, path))
        elif kind == "callback":
            node["params"] = {k: self.value(x, f"{path}.{k}")
                              for k, x in v.get_params(deep=False).items()}
        elif kind == "booster":
            raw = np.frombuffer(bytes(v.save_raw("ubj")), dtype=np.uint8).copy()
            node["ubj"] = {"$array": self._store(raw, raw, f"{path}.ubj")}
            node["state"] = self.attributes(v, path, skip=("handle",))
        elif kind == "random_state":
            node["state"] = self.value(v.get_state(), f"{path}.state")
        else:
            if not hasattr(v, "__dict__"):
                self._unsupported(v, path, " (no attributes to save)")
            node["state"] = self.attributes(v, path)
        return node

    def attributes(self, v, path, skip=()):
        return {k: self.value(x, f"{path}.{k}") for k, x in vars(v).items() if k not in skip}

    def module(self, m, path):
        internals = _module_internals()
        d = vars(m)
        hooks = [k for k in internals - {"training", "_parameters", "_buffers", "_modules",
                                         "_non_persistent_buffers_set"} if d.get(k)]
        if hooks:
            raise TypeError(f"cannot save the model: the torch module at {path} has hooks "
                            f"({', '.join(sorted(hooks))}), which model files cannot hold")
        return {
            "training": bool(m.training),
            "parameters": {k: self.value(p, f"{path}.{k}") for k, p in m._parameters.items()},
            "buffers": {k: self.value(b, f"{path}.{k}") for k, b in m._buffers.items()},
            "non_persistent": sorted(m._non_persistent_buffers_set),
            "modules": {k: self.value(c, f"{path}.{k}") for k, c in m._modules.items()},
            "state": {k: self.value(x, f"{path}.{k}") for k, x in d.items()
                      if k not in internals},
        }

    def net(self, net, path):
        if not getattr(net, "initialized_", False):
            raise TypeError(f"cannot save the model: the skorch net at {path} is not "
                            "initialized (fit it first)")
        torch = sys.modules["torch"]
        extra = [k for k, x in vars(net).items()
                 if k.endswith("_") and k not in ("module_", "criterion_")
                 and isinstance(x, torch.nn.Module)]
        if extra:
            raise TypeError(f"cannot save the model: the skorch net at {path} has modules "
                            f"besides module_ ({', '.join(extra)}), which model files do not "
                            "support")
        module = self.value(net.module_, f"{path}.module_")
        params = {k: x for k, x in net.get_params(deep=False).items() if not k.startswith("_")}
        attributes = {k: x for k, x in vars(net).items()
                      if k.endswith("_") and not k.startswith("_") and k not in _NET_REBUILT}
        return {
            "module": module,
            "params": {k: self.value(x, f"{path}.{k}") for k, x in params.items()},
            "history": self.value(list(net.history_), f"{path}.history_"),
            "attributes": {k: self.value(x, f"{path}.{k}") for k, x in attributes.items()},
        }


def _c_array(a, dtype):
    """``a`` as a C-contiguous array (of ``dtype``), 0-d arrays kept 0-d."""
    a = np.asarray(a, dtype=dtype)
    return a if a.flags.c_contiguous else a.copy(order="C")


def _name_or_repr(v):
    try:
        return _name(v)
    except AttributeError:
        return repr(v)


# --------------------------------------------------------------------------
# checking and decoding
# --------------------------------------------------------------------------

class _Invalid(Exception):
    """A problem with a file's content (the message completes '<file> ...')."""


# entries of an object node that map attribute names (not tagged values) to values
_NAME_MAPS = frozenset({"state", "parameters", "buffers", "modules", "attributes", "params"})
_ARRAY_TAGS = ("$array", "$tensor", "$parameter")


def _check_tree(doc, tensor_keys):
    """Refuse unknown class names and wrong tensor keys before anything is built."""
    names, keys = set(), []
    stack = [doc]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(v)
        elif not isinstance(v, dict):
            continue
        elif "class" in v:  # an object node
            names.add(v["class"])
            for k, x in v.items():
                if k in _NAME_MAPS and isinstance(x, dict):
                    stack.extend(x.values())
                elif k != "class":
                    stack.append(x)
        elif len(v) >= 1:
            tag, body = next(iter(v.items()))
            if tag in _ARRAY_TAGS:
                keys.append(body)
            elif tag == "$type":
                names.add(body)
            elif tag == "$dict" and isinstance(body, dict):
                stack.extend(body.values())
            else:
                stack.append(body)
    for name in sorted(names, key=str):
        if not isinstance(name, str) or _lookup(name) is None:
            raise _Invalid(f"names a type that model files may not hold ({str(name)[:80]!r}); "
                           "it was not written by specgenre or has been altered")
    if not all(isinstance(k, str) for k in keys):
        raise _Invalid("is damaged: a tensor reference is not a name")
    missing = set(keys) - set(tensor_keys)
    if missing:
        raise _Invalid(f"is damaged: it lacks {len(missing)} of the tensors its description "
                       "uses")
    unused = set(tensor_keys) - set(keys)
    if unused:
        raise _Invalid(f"is damaged: it holds {len(unused)} tensor(s) its description does "
                       "not use")


class _Decoder:
    def __init__(self, arrays):
        self.arrays = arrays
        self.cache = {}      # (key, kind) -> decoded array / tensor
        self.objects = {}    # node id -> object

    # --------------------------------------------------------------- values
    def value(self, v):
        if v is None or isinstance(v, (bool, int, str)):
            return v
        if isinstance(v, float):
            return v
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if not isinstance(v, dict):
            raise _Invalid("is damaged: its description holds an unexpected value")
        if "class" in v:
            return self.obj(v)
        if len(v) == 0:
            raise _Invalid("is damaged: its description holds an empty tag")
        tag = next(iter(v))
        body = v[tag]
        if len(v) != 1 and tag not in _ARRAY_TAGS:
            raise _Invalid("is damaged: its description holds a malformed value")
        if tag == "$tuple":
            return tuple(self.value(x) for x in _list(body))
        if tag == "$dict":
            if not isinstance(body, dict):
                raise _Invalid("is damaged: a dictionary is malformed")
            return {k: self.value(x) for k, x in body.items()}
        if tag in ("$items", "$odict"):
            pairs = [(self.value(p[0]), self.value(p[1])) for p in _pairs(body)]
            try:
                return OrderedDict(pairs) if tag == "$odict" else dict(pairs)
            except TypeError:
                raise _Invalid("is damaged: a dictionary has a key that cannot be one") from None
        if tag in ("$set", "$frozenset"):
            try:
                items = [self.value(x) for x in _list(body)]
                return set(items) if tag == "$set" else frozenset(items)
            except TypeError:
                raise _Invalid("is damaged: a set holds an item that cannot be in one") from None
        if tag == "$float":
            if body not in ("nan", "inf", "-inf"):
                raise _Invalid("is damaged: a number is malformed")
            return float(body)
        if tag == "$bytes":
            try:
                return base64.b64decode(_str(body), validate=True)
            except ValueError:
                raise _Invalid("is damaged: bytes are malformed") from None
        if tag == "$array":
            return self.ndarray(v)
        if tag == "$strarray":
            return self.strarray(body)
        if tag == "$objarray":
            return self.objarray(body)
        if tag == "$scalar":
            return self.scalar(body)
        if tag == "$dtype":
            return _dtype(body)
        if tag in ("$tensor", "$parameter"):
            return self.tensor(v, parameter=tag == "$parameter")
        if tag == "$device":
            import torch

            try:
                return torch.device(_str(body))
            except (RuntimeError, ValueError):
                raise _Invalid("is damaged: a torch device is malformed") from None
        if tag == "$torch_dtype":
            import torch

            if body not in _TORCH_DTYPES:
                raise _Invalid("is damaged: a torch dtype is malformed")
            return getattr(torch, body)
        if tag == "$type":
            entry = _lookup(body) if isinstance(body, str) else None
            if entry is None:  # refused by _check_tree already
                raise _Invalid("names a type that model files may not hold")
            return entry[0]
        if tag == "$same":
            if not isinstance(body, int) or body not in self.objects:
                raise _Invalid("is damaged: it refers to an object it does not define first")
            return self.objects[body]
        raise _Invalid(f"is damaged: its description holds an unknown tag ({tag[:40]!r})")

    def ndarray(self, v):
        key = v["$array"]
        order = v.get("order", "C")
        if order not in ("C", "F") or set(v) - {"$array", "order"}:
            raise _Invalid("is damaged: an array reference is malformed")
        cached = self.cache.get((key, "array"))
        if cached is None:
            a = np.array(self.arrays[key], copy=True)
            if a.dtype.kind not in _NUMERIC_KINDS:
                raise _Invalid("is damaged: an array has an unexpected type")
            cached = a.T if order == "F" else a
            self.cache[(key, "array")] = cached
        return cached

    def strarray(self, body):
        if not isinstance(body, dict) or set(body) != {"dtype", "shape", "data"}:
            raise _Invalid("is damaged: an array of strings is malformed")
        dt = _dtype(body["dtype"])
        shape = _shape(body["shape"])
        data = _list(body["data"])
        if dt.kind != "U" or not all(isinstance(x, str) for x in data) \
                or len(data) != math.prod(shape):
            raise _Invalid("is damaged: an array of strings is malformed")
        return np.array(data, dtype=dt).reshape(shape)

    def objarray(self, body):
        if not isinstance(body, dict) or set(body) != {"shape", "data"}:
            raise _Invalid("is damaged: an array of objects is malformed")
        shape = _shape(body["shape"])
        data = [self.value(x) for x in _list(body["data"])]
        if len(data) != math.prod(shape) or not all(
                x is None or isinstance(x, (bool, int, float, str)) for x in data):
            raise _Invalid("is damaged: an array of objects is malformed")
        a = np.empty(len(data), dtype=object)
        a[:] = data
        return a.reshape(shape)

    def scalar(self, body):
        pair = _list(body)
        if len(pair) != 2:
            raise _Invalid("is damaged: a number is malformed")
        dt = _dtype(pair[0])
        value = self.value(pair[1])
        if dt.kind == "O" or not isinstance(value, (bool, int, float, str)):
            raise _Invalid("is damaged: a number is malformed")
        try:
            return np.array(value, dtype=dt)[()]
        except (TypeError, ValueError, OverflowError):
            raise _Invalid("is damaged: a number is malformed") from None

    def tensor(self, v, *, parameter):
        import torch

        tag = "$parameter" if parameter else "$tensor"
        key, dtype = v[tag], v.get("dtype")
        requires_grad = v.get("requires_grad", False)
        if dtype not in _TORCH_DTYPES or not isinstance(requires_grad, bool) \
                or set(v) - {tag, "dtype", "requires_grad"}:
            raise _Invalid("is damaged: a tensor reference is malformed")
        cached = self.cache.get((key, tag))
        if cached is None:
            a = self.arrays[key]
            stored = "int16" if dtype == "bfloat16" else dtype
            if a.dtype != np.dtype(stored):
                raise _Invalid("is damaged: a tensor's stored type does not match its "
                               "description")
            t = torch.from_numpy(np.array(a, copy=True))
            if dtype == "bfloat16":
                t = t.view(torch.bfloat16)
            cached = torch.nn.Parameter(t, requires_grad=requires_grad) if parameter \
                else t.requires_grad_(requires_grad)
            self.cache[(key, tag)] = cached
        return cached

    # -------------------------------------------------------------- objects
    def obj(self, node):
        name, n = node.get("class"), node.get("id")
        entry = _lookup(name) if isinstance(name, str) else None
        if entry is None:  # refused by _check_tree already
            raise _Invalid("names a type that model files may not hold")
        cls, instantiable = entry
        if not instantiable:
            raise _Invalid(f"asks to build a {name}, which model files may only refer to")
        if not isinstance(n, int) or isinstance(n, bool) or n in self.objects:
            raise _Invalid("is damaged: an object has a missing or repeated number")
        kind = _kind(cls)
        expected = {
            "module": {"training", "parameters", "buffers", "non_persistent", "modules",
                       "state"},
            "net": {"module", "params", "history", "attributes"},
            "callback": {"params"},
            "booster": {"ubj", "state"},
        }.get(kind, {"state"}) | {"class", "id"}
        if set(node) != expected:
            raise _Invalid(f"is damaged: the entry of a {cls.__qualname__} is malformed")
        if kind == "module":
            return self.module(cls, n, node)
        if kind == "net":
            obj = self.net(cls, node)
        elif kind == "callback":
            obj = cls(**self.attributes(node["params"]))
        elif kind == "booster":
            obj = self.booster(cls, node)
        elif kind == "random_state":
            obj = cls()
            try:
                obj.set_state(self.value(node["state"]))
            except (TypeError, ValueError):
                raise _Invalid("is damaged: a random state is malformed") from None
        else:
            obj = cls.__new__(cls)
            self.objects[n] = obj
            obj.__dict__.update(self.attributes(node["state"]))
            return obj
        self.objects[n] = obj
        return obj

    def attributes(self, state):
        """A map of attribute (or parameter) names to values."""
        if not isinstance(state, dict):
            raise _Invalid("is damaged: an object's attributes are malformed")
        return {k: self.value(x) for k, x in state.items()}

    def module(self, cls, n, node):
        import torch

        obj = cls.__new__(cls)
        torch.nn.Module.__init__(obj)
        self.objects[n] = obj
        state = self.attributes(node["state"])
        internals = _module_internals()
        if set(state) & internals or not isinstance(node["training"], bool):
            raise _Invalid("is damaged: a torch module's attributes are malformed")
        parameters = self.attributes(node["parameters"])
        buffers = self.attributes(node["buffers"])
        modules = self.attributes(node["modules"])
        non_persistent = _list(node["non_persistent"])
        if not all(p is None or isinstance(p, torch.nn.Parameter) for p in parameters.values()) \
                or not all(b is None or isinstance(b, torch.Tensor) for b in buffers.values()) \
                or not all(m is None or isinstance(m, torch.nn.Module)
                           for m in modules.values()) \
                or not set(non_persistent) <= set(buffers):
            raise _Invalid("is damaged: a torch module's parts are malformed")
        obj.__dict__.update(state)
        obj.training = node["training"]
        obj._parameters.update(parameters)
        obj._buffers.update(buffers)
        obj._non_persistent_buffers_set.update(non_persistent)
        obj._modules.update(modules)
        return obj

    def net(self, cls, node):
        import torch
        from skorch.history import History

        module = self.value(node["module"])
        if not isinstance(module, torch.nn.Module):
            raise _Invalid("is damaged: a network has no torch module")
        params = self.attributes(node["params"])
        history = self.value(node["history"])
        attributes = self.attributes(node["attributes"])
        if not isinstance(history, list) or not all(
                isinstance(k, str) and k.endswith("_") and k not in _NET_REBUILT
                for k in attributes):
            raise _Invalid("is damaged: a network's attributes are malformed")
        device = params.get("device")
        if isinstance(device, str) and device.startswith("cuda") \
                and not torch.cuda.is_available():
            warnings.warn(f"a network of this model was trained on {device!r}, which is not "
                          "available here: it runs on the CPU", UserWarning, stacklevel=2)
            params["device"] = "cpu"
        net = cls(**params)
        net.initialize()
        if net.module_ is not module:  # built by the net from a class: load the weights
            net.module_.load_state_dict(module.state_dict())
        net.history_ = History(history)
        vars(net).update(attributes)
        return net

    def booster(self, cls, node):
        raw = self.value(node["ubj"])
        if not isinstance(raw, np.ndarray) or raw.dtype != np.uint8 or raw.ndim != 1:
            raise _Invalid("is damaged: XGBoost trees are malformed")
        booster = cls()
        try:
            booster.load_model(bytearray(raw.tobytes()))
        except Exception:  # xgboost.core.XGBoostError
            raise _Invalid("is damaged: its XGBoost trees cannot be read") from None
        vars(booster).update(self.attributes(node["state"]))
        return booster


def _list(v):
    if not isinstance(v, list):
        raise _Invalid("is damaged: a list is malformed")
    return v


def _str(v):
    if not isinstance(v, str):
        raise _Invalid("is damaged: a text is malformed")
    return v


def _pairs(v):
    if not isinstance(v, list) or not all(isinstance(p, list) and len(p) == 2 for p in v):
        raise _Invalid("is damaged: a dictionary is malformed")
    return v


def _shape(v):
    if not isinstance(v, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in v):
        raise _Invalid("is damaged: an array shape is malformed")
    return tuple(v)


def _dtype(v):
    if not isinstance(v, str) or not _DTYPE_RE.match(v):
        raise _Invalid("is damaged: an array type is malformed")
    return np.dtype(v)


# --------------------------------------------------------------------------
# metadata
# --------------------------------------------------------------------------

def _json_metadata(value, where="metadata"):
    """``value`` as plain JSON values (NumPy scalars as numbers, tuples as lists)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value}; model metadata must be finite numbers")
        return value
    if isinstance(value, (list, tuple)):
        return [_json_metadata(x, f"{where}[{i}]") for i, x in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, x in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where} has the key {k!r}; metadata keys must be strings")
            out[k] = _json_metadata(x, f"{where}[{k!r}]")
        return out
    raise TypeError(f"{where} is a {type(value).__name__}; metadata must be JSON values "
                    "(dicts, lists, strings, numbers, booleans, None)")


def _versions(packages):
    from . import __version__

    out = {"specgenre": __version__, "numpy": np.__version__}
    names = {"sklearn": "scikit-learn", "torch": "torch", "torchvision": "torchvision",
             "skorch": "skorch", "xgboost": "xgboost"}
    for package, label in names.items():
        if package in packages:
            out[label] = sys.modules[package].__version__
    return out


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------

def save_model(model, path, *, metadata=None):
    """Write a trained model to a model file that cannot run code when loaded.

    The file is one safetensors file: arrays and network weights are its
    tensors, and a JSON description of the estimator (every class in it from
    an explicit allowlist, :func:`allowed_types`) with ``metadata`` is its
    header. It is written to a temporary file next to ``path`` that replaces
    ``path`` only once complete, so a crash never leaves a half-written file.

    Parameters
    ----------
    model : TrainedModel or estimator
        A :class:`~specgenre.TrainedModel` (from :func:`~specgenre.train_row`),
        whose facts (:meth:`~specgenre.TrainedModel.metadata`) are saved with
        it, or a fitted estimator built from allowlisted types: every row of
        :data:`~specgenre.ALL_ROWS`, and pipelines of the library's
        transformers with scikit-learn's ``StandardScaler``, ``PCA``,
        ``LogisticRegression``, ``SVC`` or ``CalibratedClassifierCV``.
    path : str or path-like
        The file to write (any name; its folder must exist). Replaced if it
        exists.
    metadata : dict or None, default=None
        More JSON values to keep with the model; :func:`load_model` gives them
        back (in :attr:`TrainedModel.extra <specgenre.TrainedModel.extra>`
        unless they are the model's own facts). NumPy scalars are stored as
        numbers and tuples as lists.

    Raises
    ------
    TypeError
        The estimator holds a type model files cannot hold (the message names
        it and where it is), or ``metadata`` is not JSON values.
    FileNotFoundError
        The folder of ``path`` does not exist.

    See Also
    --------
    load_model : Read it back.

    Notes
    -----
    A skorch net is saved with its module's weights, its parameters and its
    history, not its optimizer's state: the loaded model predicts exactly as
    the saved one, but training it further starts a new optimizer.
    :class:`~specgenre.MusicnnEmbedding` keeps no weights (it reads the
    official musicnn weights when it first embeds), so neither does its file.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.linear_model import LogisticRegression
    >>> from specgenre.modelfile import load_model, save_model
    >>> clf = LogisticRegression().fit([[0.0], [1.0]], ["jazz", "rock"])
    >>> path = os.path.join(tempfile.mkdtemp(), "model.specgenre")
    >>> save_model(clf, path, metadata={"note": "toy"})
    >>> model = load_model(path)
    >>> model.estimator.predict([[0.9]]), model.extra
    (array(['rock'], dtype='<U4'), {'note': 'toy'})
    """
    from safetensors.numpy import save as save_safetensors

    from ._files import atomic_write
    from .training import TrainedModel

    if isinstance(model, TrainedModel):
        estimator, metadata = model.estimator, {**model.metadata(), **(metadata or {})}
    else:
        estimator = model
    path = Path(os.fspath(path))
    meta = _json_metadata({} if metadata is None else metadata)
    if not isinstance(meta, dict):
        raise TypeError(f"metadata must be a dict or None; got a {type(metadata).__name__}")
    encoder = _Encoder()
    tree = encoder.value(estimator, "estimator")
    doc = {"format": MODEL_FORMAT, "versions": _versions(encoder.packages),
           "metadata": meta, "estimator": tree}
    header = json.dumps(doc, allow_nan=False, separators=(",", ":"))
    data = save_safetensors(encoder.arrays, metadata={HEADER_KEY: header})
    folder = path.absolute().parent
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot save the model to {path}: folder {folder} does not "
                                "exist")
    with atomic_write(path, "wb") as fh:
        fh.write(data)


def load_model(path, *, trusted=False):
    """Read a model file written by :func:`save_model`, running nothing stored in it.

    Before any object is built, the file's header, format, every class it
    names (against the allowlist of :func:`allowed_types`) and its tensor
    names are checked; objects are then rebuilt from their attributes, and
    networks from their weights (read as tensors only).

    Parameters
    ----------
    path : str or path-like
        The model file.
    trusted : bool, default=False
        Also load a file of the earlier format, a pickle (joblib) written by
        ``specgenre train`` before this format. Loading a pickle can run any
        code it contains: pass True only for a file whose source you trust.
        No effect on files of the current format.

    Returns
    -------
    model : TrainedModel
        The estimator with the facts saved with it (row, window, sample rate,
        genres, training counts, skipped files); other metadata in ``extra``.

    Raises
    ------
    ModelFileError
        The file is missing or unreadable, not a model file, damaged,
        truncated, altered, of a newer format, or a pickle while ``trusted``
        is False. The message is one line naming the file.

    Warns
    -----
    UserWarning
        The file was saved by other versions of specgenre or of its libraries
        (its predictions may differ), or it is a pickle loaded with
        ``trusted=True``.

    See Also
    --------
    save_model : Write a model file.
    """
    if not isinstance(trusted, bool):
        raise TypeError(f"trusted must be True or False; got {trusted!r}")
    path = Path(os.fspath(path))
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"model file {path} not found") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path} is a folder, not a model file") from None
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    from .training import TrainedModel

    saved = _read(path, data, trusted)
    return TrainedModel.from_metadata(saved.estimator, saved.metadata)


def _read(path, data, trusted):
    """The :class:`SavedModel` in ``data``, the bytes of the file ``path``."""
    try:
        if _is_safetensors(data):
            return _load_safetensors(data)
        if _is_pickle(data):
            if not trusted:
                raise _Invalid(
                    "is a pickle, the format of models saved by earlier specgenre versions: "
                    "loading it can run any code it contains; load it with trusted=True "
                    "(--trust) only if you trust its source")
            return _load_pickle(path)
        if not data:
            raise _Invalid("is empty: not a model file")
        if len(data) >= 9 and data[8:9] == b"{":
            raise _Invalid("is truncated or damaged: its header is longer than the file")
        raise _Invalid("is not a specgenre model file (unknown format)")
    except _Invalid as exc:
        raise ModelFileError(f"{path} {exc}") from None
    except RecursionError:
        raise ModelFileError(f"{path} is damaged: its description is nested too deeply") \
            from None


def _is_safetensors(data):
    if len(data) < 10:
        return False
    (n,) = struct.unpack("<Q", data[:8])
    return 2 <= n <= len(data) - 8 and data[8:9] == b"{"


def _is_pickle(data):
    head = data[:8]
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return True  # pickle protocol 2 to 5
    if len(head) >= 2 and head[0] == 0x78 and head[1] in (0x01, 0x5E, 0x9C, 0xDA):
        return True  # zlib (joblib's default compression)
    # joblib's other compressions: gzip, bz2, xz, lzma, lz4; "ZF": joblib < 0.10
    return head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x5d\x00\x00",
                            b"\x04\x22\x4d\x18", b"ZF"))


def _load_safetensors(data):
    from safetensors import SafetensorError
    from safetensors.numpy import load as load_safetensors

    (n,) = struct.unpack("<Q", data[:8])
    if n > _MAX_HEADER_BYTES:
        raise _Invalid("is not a specgenre model file (its header is too large)")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _Invalid("is damaged: its header is not valid JSON") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    text = meta.get(HEADER_KEY) if isinstance(meta, dict) else None
    if not isinstance(text, str):
        raise _Invalid("is a safetensors file but not a specgenre model file (no model "
                       "description in it)")
    try:
        doc = json.loads(text)
    except ValueError:
        raise _Invalid("is damaged: its model description is not valid JSON") from None
    if not isinstance(doc, dict):
        raise _Invalid("is damaged: its model description is malformed")
    fmt = doc.get("format")
    if fmt != MODEL_FORMAT:
        if isinstance(fmt, str) and fmt.startswith("specgenre-model-"):
            raise _Invalid(f"has the model format {fmt[:40]!r}, which this version of "
                           f"specgenre cannot read ({MODEL_FORMAT!r}); upgrade specgenre")
        raise _Invalid("is damaged: its model description has no known format")
    if set(doc) != {"format", "versions", "metadata", "estimator"} \
            or not isinstance(doc["metadata"], dict) or not isinstance(doc["versions"], dict):
        raise _Invalid("is damaged: its model description is malformed")
    try:
        arrays = load_safetensors(data)
    except (SafetensorError, ValueError, TypeError):
        raise _Invalid("is truncated or damaged: its tensors cannot be read") from None
    _check_tree(doc["estimator"], arrays)
    try:
        estimator = _Decoder(arrays).value(doc["estimator"])
    except (_Invalid, RecursionError):
        raise
    except Exception as exc:
        raise _Invalid("is damaged: its model cannot be rebuilt from it") from exc
    _warn_versions(doc["versions"])
    return SavedModel(estimator, doc["metadata"])


def _warn_versions(saved):
    """Warn when the file was saved with other versions of the packages its model uses."""
    from . import __version__

    modules = {"specgenre": sys.modules[__package__], "scikit-learn": sys.modules.get("sklearn")}
    differ = []
    for label, version in saved.items():
        module = modules.get(label, sys.modules.get(label))
        current = getattr(module, "__version__", None)
        if label == "specgenre":
            current = __version__
        if isinstance(version, str) and current is not None and version != current:
            differ.append(f"{label} {version[:40]} (this is {current})")
    if differ:
        warnings.warn(f"the model was saved with {', '.join(differ)}: its predictions may "
                      "differ or fail; retrain it to be sure", UserWarning, stacklevel=4)


def _load_pickle(path):
    import joblib

    warnings.warn(f"{path} is a pickle: loading it can run any code it contains, and is done "
                  "only because trusted=True; save the model again with "
                  "specgenre.modelfile.save_model to get a file that cannot run code",
                  UserWarning, stacklevel=3)
    try:
        with warnings.catch_warnings():
            # scikit-learn's InconsistentVersionWarning: the version check below says it
            warnings.filterwarnings("ignore", message=".*unpickle estimator.*")
            model = joblib.load(path)
    except Exception as exc:  # unpickling can raise anything
        raise _Invalid("cannot be read as a pickle: it is damaged or not a model file") \
            from exc
    if isinstance(model, dict):
        if model.get("format", LEGACY_FORMAT) != LEGACY_FORMAT \
                or not hasattr(model.get("estimator"), "predict"):
            raise _Invalid("holds a dict without a fitted estimator: not a specgenre model "
                           "file")
        meta = {k: v for k, v in model.items() if k not in ("estimator", "format")}
        if "duration" in meta:
            meta.setdefault("window_seconds", meta["duration"])
        return SavedModel(model["estimator"], meta)
    if hasattr(model, "predict"):  # a bare estimator saved with joblib.dump
        return SavedModel(model, {})
    raise _Invalid(f"holds a {type(model).__name__}, not a specgenre model")
