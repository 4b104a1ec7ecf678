"""Opt-in autotuning of ``auto``, like ``torch.backends.cudnn.benchmark``.

With ``set_autotune`` on, the first ``conv2d(..., algorithm="auto")`` of each plan
(backend, geometry, dtype) times every algorithm that can run it on the call's own
tensors and remembers the fastest for that plan; later calls use it without timing. Off
(the default), ``auto`` follows the deterministic rule of
``chanconv.algorithms.choose_algorithm``. Timing is wall clock in this process and so
as noisy as the machine: two runs may remember different winners, which is why it is
opt-in. Timing needs eager tensors; inside a traced function (``tf.function``, a
hybridized Gluon block) the plan is made from the rule instead.
"""

from __future__ import annotations

import time

from chanconv.algorithms import convolve, has_native
from chanconv.geometry import ConvGeometry
from chanconv.protocol import ArrayBackend, Tensor
from chanconv.registry import clear_caches, register_cache

_enabled = False
#: (adapter class, backend name, geometry, dtype) -> the algorithm that was fastest
_winners: dict[tuple[object, ...], str] = register_cache({})


def autotune_enabled() -> bool:
    """Whether ``auto`` times its candidates (off by default).

    Examples:
        >>> autotune_enabled()
        False
    """
    return _enabled


def set_autotune(enabled: bool) -> bool:
    """Turn autotuning of ``auto`` on or off; returns the previous setting. Either way
    the remembered plans are forgotten, so the next call of each chooses afresh.

    Args:
        enabled: True to time the candidate algorithms on the first ``auto`` call of each
            plan (backend, geometry, dtype) and keep the fastest; False (the default
            state) to follow the deterministic rule. Process-wide.

    Returns:
        The setting before this call.

    Raises:
        TypeError: ``enabled`` is not a bool.

    Examples:
        >>> previous = set_autotune(True)
        >>> set_autotune(previous)
        True
    """
    global _enabled
    if not isinstance(enabled, bool):
        raise TypeError(f"set_autotune takes True or False, not {enabled!r}")
    previous, _enabled = _enabled, enabled
    clear_caches()
    return previous


def candidates(backend: ArrayBackend, g: ConvGeometry) -> list[str]:
    """What autotuning times: the framework's own convolution where there is one,
    im2col, and fourier for kernels larger than 1x1 (direct never beat im2col)."""
    found = ["native"] if has_native(backend) else []
    found.append("im2col")
    if (g.kh, g.kw) != (1, 1):
        found.append("fourier")
    return found


def tuned_algorithm(
    backend: ArrayBackend, x: Tensor, k: Tensor, g: ConvGeometry, dtype: str
) -> str:
    """The remembered winner for this plan, timing the candidates on ``x`` and ``k`` the
    first time (each once to warm up, then once timed; ``to_numpy`` waits for
    asynchronous frameworks)."""
    key = (type(backend), backend.name, g, dtype)
    winner = _winners.get(key)
    if winner is None:
        seconds = {}
        for algorithm in candidates(backend, g):
            backend.to_numpy(convolve(backend, x, k, g, dtype, algorithm))
            start = time.perf_counter()
            backend.to_numpy(convolve(backend, x, k, g, dtype, algorithm))
            seconds[algorithm] = time.perf_counter() - start
        winner = _winners[key] = min(seconds, key=seconds.__getitem__)
    return winner
