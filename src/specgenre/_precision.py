"""Arithmetic precision of the torch networks: float32, or bfloat16 where the hardware has it.

``precision`` is a parameter of the library's torch estimators:

* ``"fp32"``: float32 throughout (what the reference results are computed in);
* ``"bf16"``: matrix products and convolutions in bfloat16 under ``torch.autocast``
  (accumulated in float32 by oneDNN/cuBLAS; element-wise work stays float32);
* ``"auto"``: ``"bf16"`` where the device computes bfloat16 natively (a CPU with
  AVX512_BF16 or AMX-BF16, a CUDA GPU that supports bfloat16), ``"fp32"`` elsewhere.

torch is imported inside the functions, so importing this module stays cheap.
"""

import contextlib
import functools
import sys

__all__ = ["PRECISIONS", "autocast", "cpu_has_native_bf16", "resolve_precision"]

#: Accepted values of a ``precision`` parameter.
PRECISIONS = ("auto", "bf16", "fp32")

#: CPU flags (``/proc/cpuinfo``) of native bfloat16 arithmetic.
_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16():
    """Whether this CPU computes bfloat16 products natively (AVX512_BF16 or AMX-BF16).

    Read from the ``flags`` of ``/proc/cpuinfo`` (Linux); False where they
    cannot be read (other systems: bfloat16 there is emulated, slower than float32).

    Returns
    -------
    native : bool
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return bool(_BF16_FLAGS & set(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return False


def resolve_precision(precision, device="cpu"):
    """``"fp32"`` or ``"bf16"``: what ``precision`` means on ``device``.

    Parameters
    ----------
    precision : {"auto", "bf16", "fp32"}
    device : str or torch.device, default="cpu"

    Returns
    -------
    precision : {"bf16", "fp32"}

    Raises
    ------
    ValueError
        ``precision`` is not one of :data:`PRECISIONS`.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}; got {precision!r}.")
    if precision != "auto":
        return precision
    kind = str(device).split(":", 1)[0]
    if kind == "cpu":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    if kind == "cuda":
        import torch

        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() \
            else "fp32"
    return "fp32"


def autocast(precision, device="cpu"):
    """A context running torch's matrix products in ``precision`` on ``device``.

    Parameters
    ----------
    precision : {"auto", "bf16", "fp32"}
    device : str or torch.device, default="cpu"

    Returns
    -------
    context : context manager
        ``torch.autocast(device_type, dtype=torch.bfloat16)`` for bf16, else a
        no-op context.
    """
    if resolve_precision(precision, device) == "fp32":
        return contextlib.nullcontext()
    import torch

    return torch.autocast(str(device).split(":", 1)[0], dtype=torch.bfloat16)
