"""Small torch helpers shared by the library's estimators: threads, devices, seeding.

torch is imported inside the functions, so importing this module stays cheap
(``import specgenre`` does not import torch).
"""

from contextlib import contextmanager

__all__ = ["resolve_device", "seeded", "torch_threads"]


@contextmanager
def torch_threads(n_jobs):
    """Run the block with ``n_jobs`` torch intra-op threads, restored afterwards.

    Parameters
    ----------
    n_jobs : int or None
        Threads, joblib's way (-1: all CPUs); None leaves torch's setting.
    """
    if n_jobs is None:
        yield
        return
    import torch
    from joblib import effective_n_jobs

    old = torch.get_num_threads()
    torch.set_num_threads(max(1, effective_n_jobs(n_jobs)))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def resolve_device(device):
    """``torch.device(device)``, checked to exist here; errors name the ``device`` argument.

    Parameters
    ----------
    device : str or torch.device
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.

    Returns
    -------
    device : torch.device

    Raises
    ------
    ValueError
        Not a torch device, or of an unsupported type.
    RuntimeError
        A CUDA (or MPS) device that is not available on this machine.
    """
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(
            f"device={device!r} is not a torch device; use 'cpu' or 'cuda' (or 'cuda:N')."
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        built = torch.version.cuda
        raise RuntimeError(
            f"device={device!r} was asked for, but CUDA is not available here "
            f"(torch {torch.__version__}, "
            + (f"built with CUDA {built}, but torch.cuda.is_available() is False: no GPU or "
               "driver found" if built else "built without CUDA support")
            + "); use device='cpu'."
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise RuntimeError(
            f"device={device!r} was asked for, but only {torch.cuda.device_count()} CUDA "
            "device(s) are available."
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"device={device!r} was asked for, but MPS is not available here.")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device={device!r}: only 'cpu', 'cuda' and 'mps' are supported.")
    return dev


@contextmanager
def seeded(device, seed):
    """Run the block with torch's global RNGs forked (restored on exit) and seeded with ``seed``.

    Parameters
    ----------
    device : torch.device
        The CUDA device's generator is forked too when it is a CUDA device.
    seed : int
    """
    import torch

    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
