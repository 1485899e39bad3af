"""ImageNet weights of ResNet18: found in the torch hub cache, downloaded only when allowed.

The weights are torchvision's ``ResNet18_Weights.IMAGENET1K_V1``. They are
looked for where torchvision itself caches them,
``torch.hub.get_dir()/checkpoints/<file name of the URL>``
(``$TORCH_HOME/hub/checkpoints/resnet18-f37072fd.pth``, by default under
``~/.cache/torch``), so a file downloaded once by torchvision or by hand is
reused offline. When the file is missing:

* with the environment variable ``SPECGENRE_OFFLINE`` set to anything but
  ``""``/``"0"``/``"false"``/``"no"``, nothing is downloaded;
* otherwise the file is downloaded from the weights' URL into that place by
  :func:`torch.hub.download_url_to_file`, which checks the SHA-256 prefix in
  the file name and moves the file into place only when it matches, with a
  socket timeout (:data:`DOWNLOAD_TIMEOUT` seconds for the connection and
  for every read, so a machine without internet fails in seconds rather
  than hanging).

Either way, if the file cannot be had, :class:`PretrainedWeightsNotFoundError`
(a :class:`FileNotFoundError`) names the file, the full expected path and
the URL. Files are read with ``torch.load(..., weights_only=True)`` only.
"""

import os
import re
import socket
from contextlib import contextmanager
from urllib.parse import urlparse

__all__ = [
    "DOWNLOAD_TIMEOUT",
    "PretrainedWeightsNotFoundError",
    "load_resnet18_imagenet",
    "resnet18_weights_path",
]

#: Seconds to wait for the connection and for each read when downloading.
DOWNLOAD_TIMEOUT = 10.0

_OFFLINE_ENV = "SPECGENRE_OFFLINE"
_HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")  # torch.hub's: "resnet18-f37072fd.pth"


class PretrainedWeightsNotFoundError(FileNotFoundError):
    """Pretrained weights are neither in the torch hub cache nor downloadable.

    A subclass of :class:`FileNotFoundError`; ``filename`` is the full path
    where the file was expected and ``url`` where it comes from.
    """

    def __init__(self, message, *, filename=None, url=None):
        super().__init__(message)
        self.filename = filename
        self.url = url

    def __str__(self):
        return self.args[0]


def _offline():
    value = os.environ.get(_OFFLINE_ENV, "").strip().lower()
    return value not in ("", "0", "false", "no", "off")


def _resnet18_weights():
    from torchvision.models import ResNet18_Weights

    return ResNet18_Weights.IMAGENET1K_V1


def resnet18_weights_path():
    """Where ResNet18's ImageNet weights are cached, and their URL.

    Returns
    -------
    path : str
        ``torch.hub.get_dir()/checkpoints/<file name of the URL>`` (follows
        ``$TORCH_HOME`` at call time).
    url : str
        torchvision's URL of ``ResNet18_Weights.IMAGENET1K_V1``.
    """
    import torch

    url = _resnet18_weights().url
    filename = os.path.basename(urlparse(url).path)
    return os.path.join(torch.hub.get_dir(), "checkpoints", filename), url


@contextmanager
def _socket_timeout(seconds):
    """Default socket timeout within the block (``torch.hub`` opens URLs without one)."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def _download(url, path, timeout):
    """Download ``url`` to ``path`` with :func:`torch.hub.download_url_to_file`.

    torch.hub writes a temporary file next to ``path``, checks the SHA-256
    prefix in the file name (``resnet18-f37072fd.pth``), moves the file into
    place only when it matches and removes the temporary file otherwise.
    ``download_url_to_file`` has no timeout argument: the process's default
    socket timeout is set to ``timeout`` seconds during the download.
    """
    import torch

    os.makedirs(os.path.dirname(path), exist_ok=True)
    match = _HASH_REGEX.search(os.path.basename(path))
    prefix = match.group(1) if match else None
    with _socket_timeout(timeout):
        try:
            torch.hub.download_url_to_file(url, path, hash_prefix=prefix, progress=False)
        except RuntimeError as exc:  # torch.hub's "invalid hash value"
            raise OSError(
                f"downloaded file's SHA-256 does not start with the prefix {prefix!r} in "
                f"its name (corrupted download): {exc}") from exc


def load_resnet18_imagenet(*, download=None, timeout=DOWNLOAD_TIMEOUT, url=None):
    """Load torchvision's ImageNet ResNet18 state dict from the cache, downloading if allowed.

    Parameters
    ----------
    download : bool or None, default=None
        Download the file when it is not cached. None: unless the
        environment variable ``SPECGENRE_OFFLINE`` is set (truthy).
    timeout : float, default=DOWNLOAD_TIMEOUT
        Socket timeout of the download, in seconds.
    url : str or None, default=None
        Where to download from (default: the weights' own URL). The cache
        path is always that of the weights' URL.

    Returns
    -------
    state_dict : dict of str to torch.Tensor
        On the CPU, read with ``torch.load(..., weights_only=True)``.

    Raises
    ------
    PretrainedWeightsNotFoundError
        The file is not cached and could not be downloaded (offline mode,
        no network, bad hash).
    ValueError
        The cached file does not hold a state dict of tensors (read without
        unpickling anything else, so a tampered file cannot run code).
    """
    path, weights_url = resnet18_weights_path()
    source = url or weights_url
    if not os.path.isfile(path):
        filename = os.path.basename(path)
        fix = (f"Download {weights_url} to {path} (e.g. on a machine with internet "
               f"run torchvision.models.resnet18(weights='IMAGENET1K_V1'), or "
               f"`curl -L -o {path} {weights_url}`), set TORCH_HOME to a directory whose "
               f"hub/checkpoints/ holds {filename}, or use pretrained=False.")
        if download is None:
            download = not _offline()
        if not download:
            raise PretrainedWeightsNotFoundError(
                f"ImageNet weights of ResNet18 not found: {filename} is not at {path} "
                f"and downloading is off ({_OFFLINE_ENV} is set). {fix}",
                filename=path, url=weights_url)
        try:
            _download(source, path, timeout)
        except (OSError, ValueError) as exc:  # URLError, timeouts, bad hash
            raise PretrainedWeightsNotFoundError(
                f"ImageNet weights of ResNet18 not found: {filename} is not at {path} "
                f"and downloading {source} failed ({type(exc).__name__}: {exc}). {fix}",
                filename=path, url=weights_url) from exc
    return _read_state_dict(path, weights_url)


def _read_state_dict(path, url):
    """``torch.load(path, weights_only=True)``: tensors only; anything else is a one-line error."""
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        raise ValueError(
            f"{path} is not a file of ResNet18 weights: torch.load(weights_only=True) refused "
            f"it ({type(exc).__name__}): it holds objects other than tensors or is damaged; "
            f"delete it and download {url} again") from None
    if not isinstance(state, dict) or not all(
            isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} is not a file of ResNet18 weights: it does not hold a state "
                         f"dict of tensors; delete it and download {url} again")
    return state
