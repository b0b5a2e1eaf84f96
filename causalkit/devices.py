"""Which device a run computes on, checked before any work starts.

``torch.device("cuda")`` is accepted on every machine; the failure comes later, from
deep inside the first ``.to(device)``, as ``AssertionError: Torch not compiled with CUDA
enabled`` or a CUDA runtime error. :func:`resolve_device` checks the request up front
and says what is wrong in one line:

* a name torch does not know (``--device gpu``);
* CUDA asked for on a machine (or torch build) without it;
* a GPU index beyond the GPUs present (``cuda:3`` on a one-GPU machine);
* ``mps`` where it is not available.

``None`` means "the best there is": CUDA when available, else the CPU.

>>> resolve_device("cpu")
device(type='cpu')
>>> try:
...     resolve_device("gpu")
... except CausalKitError as exc:
...     print(str(exc)[:27])
unknown device 'gpu'; use c
"""

from __future__ import annotations

from typing import Any

from causalkit.errors import CausalKitError

__all__ = ["resolve_device"]


def resolve_device(device: Any = None, *, option: str = "--device") -> Any:
    """The :class:`torch.device` for ``device`` (a name, a device or ``None``), checked.

    Raises
    ------
    CausalKitError
        Unknown names, CUDA without CUDA, a GPU index that does not exist, MPS without
        MPS.
    """
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise CausalKitError(f"unknown device {str(device)!r}; use cpu, cuda or cuda:N (or "
                             f"leave {option} out)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "a CPU-only build" if torch.version.cuda is None else "no GPU found"
            raise CausalKitError(f"{option} {device}: CUDA is not available on this machine "
                                 f"(torch {torch.__version__}, {why}); use {option} cpu or "
                                 "run on a machine with a GPU")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise CausalKitError(f"{option} {device}: this machine has {count} GPU(s) "
                                 f"(cuda:0..cuda:{count - 1}); pick one of them")
    elif dev.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise CausalKitError(f"{option} {device}: MPS is not available here; use "
                                 f"{option} cpu")
    elif dev.type != "cpu":
        raise CausalKitError(f"{option} {device}: causalkit runs on cpu or cuda; use one "
                             "of them")
    return dev
