"""The official musicnn weights: found, converted once to a torch state dict, cached, loaded.

The ``musicnn`` distribution on PyPI (v0.1.0, ISC license) ships the released
models as TensorFlow 1 checkpoints inside its package folder
(``musicnn/MSD_musicnn/.index`` + ``.data-00000-of-00001``, ...). Its
metadata pins ``numpy<1.17``, so it is installed without its dependencies:
``pip install --no-deps musicnn``. Its ``__init__`` is empty and the folder is
located with :func:`importlib.util.find_spec`, so TensorFlow is never
imported.

The checkpoint is read with :func:`~specgenre.musicnn._checkpoint.read_checkpoint`
(no TensorFlow), mapped onto :class:`MusicnnNet` / :class:`VggNet` and saved
where torchvision caches weights: ``torch.hub.get_dir()/checkpoints/
musicnn_<model>-<hash>.safetensors`` (``$TORCH_HOME/hub/checkpoints``, by
default under ``~/.cache/torch``), ``<hash>`` being the first 8 hex digits of
the SHA-256 of the source checkpoint files, so a changed source is converted
anew. The file is in the safetensors format: later loads read tensors only,
never pickled objects, so a tampered file cannot run code.
A converted file in the cache is also used when no source checkpoint can be
found (e.g. copied there from another machine).
"""

import glob
import hashlib
import importlib.util
import os
import warnings

import numpy as np

from .._files import atomic_write
from ..networks._weights import PretrainedWeightsNotFoundError
from ._checkpoint import read_checkpoint
from ._models import MusicnnNet, VggNet

__all__ = [
    "INSTALL_COMMAND",
    "MUSICNN_MODELS",
    "MUSICNN_TAGS",
    "MusicnnWeightsNotFoundError",
    "build_musicnn",
    "convert_checkpoint",
    "find_checkpoint",
    "load_musicnn",
    "musicnn_state_dict",
]

#: The released models the ``musicnn`` wheel carries.
MUSICNN_MODELS = ("MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg")

#: How the weights are installed.
INSTALL_COMMAND = "pip install --no-deps musicnn"

# Tag names in the order of the taggram's columns: MTT_LABELS and MSD_LABELS of the
# official musicnn/configuration.py (musicnn 0.1.0, https://github.com/jordipons/musicnn).
_MTT_TAGS = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast",
    "piano", "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera",
    "male", "singing", "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute",
    "woman", "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man", "classic",
    "choir", "voice", "new age", "dance", "male voice", "female vocal", "beats", "harp",
    "cello", "no voice", "weird", "country", "metal", "female voice", "choral",
)
_MSD_TAGS = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
    "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists",
    "classic rock", "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s",
    "chill", "instrumental", "punk", "oldies", "blues", "hard rock", "ambient", "acoustic",
    "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country",
    "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal", "Progressive rock",
    "60s", "rnb", "indie pop", "sad", "House", "happy",
)

#: Tag names of each model, in the order of its taggram's columns.
MUSICNN_TAGS = {
    "MTT_musicnn": _MTT_TAGS,
    "MSD_musicnn": _MSD_TAGS,
    "MTT_vgg": _MTT_TAGS,
    "MSD_vgg": _MSD_TAGS,
}

_DATA_FILE = ".data-00000-of-00001"


class MusicnnWeightsNotFoundError(PretrainedWeightsNotFoundError):
    """The official musicnn checkpoint is neither installed, in ``weights_dir``, nor cached.

    A subclass of :class:`~specgenre.networks.PretrainedWeightsNotFoundError`
    (and so of :class:`FileNotFoundError`); ``filename`` is the path looked for.
    """


def check_model(model):
    """Raise a ValueError naming ``model`` unless it is one of :data:`MUSICNN_MODELS`."""
    if model not in MUSICNN_MODELS:
        raise ValueError(f"model must be one of {list(MUSICNN_MODELS)}; got {model!r}.")


def _installed_package_dir():
    """The folder of the installed ``musicnn`` package, or None (TensorFlow is not imported)."""
    try:
        spec = importlib.util.find_spec("musicnn")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def _has_checkpoint(folder):
    return (os.path.isfile(os.path.join(folder, ".index"))
            and os.path.isfile(os.path.join(folder, _DATA_FILE)))


def find_checkpoint(model="MSD_musicnn", *, weights_dir=None):
    """The folder holding the official checkpoint of ``model``, or None.

    Parameters
    ----------
    model : str
        One of :data:`MUSICNN_MODELS`.
    weights_dir : str or path-like or None
        Look here (``weights_dir/<model>/`` or, when it holds the checkpoint
        files itself, ``weights_dir``) instead of in the installed ``musicnn``
        package.

    Returns
    -------
    folder : str or None
        Folder with ``.index`` and ``.data-00000-of-00001``.
    """
    check_model(model)
    if weights_dir is not None:
        base = os.fspath(weights_dir)
        for folder in (os.path.join(base, model), base):
            if _has_checkpoint(folder):
                return folder
        return None
    package = _installed_package_dir()
    if package is None:
        return None
    folder = os.path.join(package, model)
    return folder if _has_checkpoint(folder) else None


def build_musicnn(model="MSD_musicnn"):
    """An untrained network with the architecture of ``model`` (50 tags)."""
    check_model(model)
    n_tags = len(MUSICNN_TAGS[model])
    return VggNet(n_tags=n_tags) if model.endswith("_vgg") else MusicnnNet(n_tags=n_tags)


def _conv2d(kernel):  # TF (kh, kw, in, out) -> torch (out, in, kh, kw)
    return kernel.transpose(3, 2, 0, 1)


def _conv1d(kernel):  # TF (7, C, 1, out) used as a 1-D conv over time -> torch (out, C, 7)
    return kernel[:, :, 0, :].transpose(2, 1, 0)


def _bn(tensors, tf_name, prefix):
    return {
        f"{prefix}.weight": tensors[f"{tf_name}/gamma"],
        f"{prefix}.bias": tensors[f"{tf_name}/beta"],
        f"{prefix}.running_mean": tensors[f"{tf_name}/moving_mean"],
        f"{prefix}.running_var": tensors[f"{tf_name}/moving_variance"],
    }


def _dense(tensors, tf_name, prefix):
    return {f"{prefix}.weight": tensors[f"{tf_name}/kernel"].T,
            f"{prefix}.bias": tensors[f"{tf_name}/bias"]}


def _musicnn_mapping(t):
    """TF variable names of ``build_musicnn`` (creation order) -> our parameter names."""
    out = _bn(t, "batch_normalization", "body.input_bn")
    convs = ["body.timbral.0", "body.timbral.1",
             "body.temporal.0", "body.temporal.1", "body.temporal.2",
             "body.midend.0", "body.midend.1", "body.midend.2"]
    for i, prefix in enumerate(convs):
        tf_conv = "conv2d" if i == 0 else f"conv2d_{i}"
        kernel = t[f"{tf_conv}/kernel"]
        weight = _conv1d(kernel) if ".midend." in prefix else _conv2d(kernel)
        out[f"{prefix}.conv.weight"] = weight
        out[f"{prefix}.conv.bias"] = t[f"{tf_conv}/bias"]
        out.update(_bn(t, f"batch_normalization_{i + 1}", f"{prefix}.bn"))
    out.update(_bn(t, "batch_normalization_9", "body.pool_bn"))
    out.update(_dense(t, "dense", "body.dense"))
    out.update(_bn(t, "batch_normalization_10", "body.dense_bn"))
    out.update(_dense(t, "dense_1", "head"))
    return out


def _vgg_mapping(t):
    """TF variable names of ``vgg`` -> our parameter names."""
    out = _bn(t, "batch_normalization", "body.input_bn")
    for i in range(5):
        out[f"body.convs.{i}.weight"] = _conv2d(t[f"{i + 1}CNN/kernel"])
        out[f"body.convs.{i}.bias"] = t[f"{i + 1}CNN/bias"]
        out.update(_bn(t, f"batch_normalization_{i + 1}", f"body.bns.{i}"))
    out.update(_dense(t, "dense", "head"))
    return out


def convert_checkpoint(folder, model):
    """Read the official checkpoint in ``folder`` into a state dict for :func:`build_musicnn`.

    Parameters
    ----------
    folder : str or path-like
        Folder with the checkpoint files (``.index``, ``.data-00000-of-00001``).
    model : str
        One of :data:`MUSICNN_MODELS` (chooses the architecture).

    Returns
    -------
    state_dict : dict of str to torch.Tensor
        Complete (``load_state_dict(strict=True)`` succeeds); float32, CPU.

    Raises
    ------
    ValueError
        The checkpoint does not hold the variables of ``model`` with their shapes.
    """
    import torch

    check_model(model)
    tensors = read_checkpoint(os.path.join(os.fspath(folder), ""))
    mapping = _vgg_mapping if model.endswith("_vgg") else _musicnn_mapping
    try:
        arrays = mapping(tensors)
    except KeyError as exc:
        raise ValueError(
            f"checkpoint in {folder} lacks the variable {exc.args[0]!r} of {model}") from None
    net = build_musicnn(model)
    state = net.state_dict()
    for name, array in arrays.items():
        expected = tuple(state[name].shape)
        if array.shape != expected:
            raise ValueError(f"checkpoint in {folder}: {name} has shape {array.shape}, "
                             f"{model} needs {expected}")
        state[name] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    missing = [name for name in state if name not in arrays
               and not name.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(f"checkpoint in {folder} does not set {missing}")
    return state


def _source_hash(folder):
    sha = hashlib.sha256()
    for name in (".index", _DATA_FILE):
        with open(os.path.join(folder, name), "rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                sha.update(chunk)
    return sha.hexdigest()[:8]


def _cache_dir():
    import torch

    return os.path.join(torch.hub.get_dir(), "checkpoints")


def _cache_name(model, digest):
    return f"musicnn_{model}-{digest}.safetensors"


def _save(state, path):
    """Write ``state`` as a safetensors file, atomically (never half-written)."""
    from safetensors.torch import save

    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = save({name: tensor.contiguous() for name, tensor in state.items()})
    with atomic_write(path) as fh:
        fh.write(data)


def _load(path):
    """Read a converted state dict; anything but a safetensors file of tensors is refused."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ValueError(f"{path} is not a safetensors file of converted musicnn weights "
                         f"({reason}); delete it to convert the official checkpoint "
                         f"again") from None


def _not_found(model, weights_dir, cache):
    if weights_dir is not None:
        where = (f"no checkpoint of {model} in weights_dir={os.fspath(weights_dir)!r} "
                 f"(looked for {os.path.join(os.fspath(weights_dir), model, '.index')} and "
                 f"{os.path.join(os.fspath(weights_dir), '.index')})")
        filename = os.path.join(os.fspath(weights_dir), model)
    else:
        package = _installed_package_dir()
        where = ("the musicnn package is not installed" if package is None else
                 f"the installed musicnn package at {package} has no {model} checkpoint")
        filename = os.path.join(package, model) if package else None
    return MusicnnWeightsNotFoundError(
        f"Official weights of {model} not found: {where}, and no converted "
        f"{_cache_name(model, '*')} in {cache}. Install them with `{INSTALL_COMMAND}` "
        f"(--no-deps: the package pins numpy<1.17; only its checkpoint files are used, "
        f"TensorFlow is not needed), or pass weights_dir= a folder holding "
        f"<model>/.index and <model>/{_DATA_FILE} (the package folder of a musicnn "
        f"checkout or wheel).",
        filename=filename)


def musicnn_state_dict(model="MSD_musicnn", *, weights_dir=None):
    """The torch state dict of ``model``'s official weights, converted once and cached.

    Parameters
    ----------
    model : str, default="MSD_musicnn"
        One of :data:`MUSICNN_MODELS`.
    weights_dir : str or path-like or None, default=None
        Folder with the official checkpoint (``weights_dir/<model>/.index``);
        default: the installed ``musicnn`` package.

    Returns
    -------
    state_dict : dict of str to torch.Tensor
    path : str
        The cached ``.safetensors`` file it was read from (or written to).

    Raises
    ------
    MusicnnWeightsNotFoundError
        No checkpoint found and nothing converted in the cache.
    ValueError
        The cached file is not a safetensors file of tensors.
    """
    check_model(model)
    cache = _cache_dir()
    folder = find_checkpoint(model, weights_dir=weights_dir)
    if folder is None:
        cached = [] if weights_dir is not None else sorted(
            glob.glob(os.path.join(glob.escape(cache), _cache_name(model, "*"))),
            key=os.path.getmtime)
        if not cached:
            raise _not_found(model, weights_dir, cache)
        path = cached[-1]
    else:
        path = os.path.join(cache, _cache_name(model, _source_hash(folder)))
        if not os.path.isfile(path):
            state = convert_checkpoint(folder, model)
            try:
                _save(state, path)
            except OSError as exc:
                warnings.warn(f"could not cache the converted {model} weights at {path} "
                              f"({exc}); they will be converted again next time",
                              RuntimeWarning, stacklevel=2)
            return state, path
    return _load(path), path


def load_musicnn(model="MSD_musicnn", *, weights_dir=None, device="cpu"):
    """The official pretrained musicnn/vgg tagger as a PyTorch module, in eval mode.

    Parameters
    ----------
    model : {"MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg"}, default="MSD_musicnn"
        Released model: trained on MagnaTagATune (MTT) or the Million Song
        Dataset (MSD); musicnn or the vgg baseline.
    weights_dir : str or path-like or None, default=None
        Folder with the official checkpoint (``weights_dir/<model>/.index``);
        default: the installed ``musicnn`` package (``pip install --no-deps musicnn``).
    device : str or torch.device, default="cpu"

    Returns
    -------
    net : MusicnnNet or VggNet
        In eval mode, on ``device``; ``net.tags`` holds the tag names of the
        taggram's columns and ``net.model_name`` the model.

    Raises
    ------
    MusicnnWeightsNotFoundError
        The weights are neither installed, in ``weights_dir``, nor cached.
    ValueError
        The cached converted file is not a safetensors file of this model's tensors.
    """
    state, path = musicnn_state_dict(model, weights_dir=weights_dir)
    net = build_musicnn(model)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # the names or shapes of another network
        reason = " ".join(str(exc).split())
        raise ValueError(f"{path} does not hold the converted weights of {model} ({reason}); "
                         f"delete it to convert the official checkpoint again") from None
    net.tags = MUSICNN_TAGS[model]
    net.model_name = model
    return net.to(device).eval()
