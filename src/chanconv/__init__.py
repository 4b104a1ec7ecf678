"""chanconv: d2l's "Multiple Input and Multiple Output Channels", written once and run on
NumPy, PyTorch, TensorFlow and MXNet.

>>> import chanconv
>>> chanconv.corr2d_multi_in([[[0, 1, 2], [3, 4, 5], [6, 7, 8]],
...                           [[1, 2, 3], [4, 5, 6], [7, 8, 9]]],
...                          [[[0, 1], [2, 3]], [[1, 2], [3, 4]]])
array([[ 56.,  72.],
       [104., 120.]], dtype=float32)

``from chanconv import torch as d2l`` gives a namespace bound to one backend; attributes
of ``chanconv`` itself that are not defined here (d2l's ``tensor``, ``normal``, ...) follow
the active backend, so ``import chanconv as d2l`` works too.
"""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

from chanconv import registry
from chanconv.algorithms import im2col_limit, set_im2col_limit
from chanconv.autotune import autotune_enabled, set_autotune
from chanconv.compose import block_diagonal_kernel, compose_kernels
from chanconv.cost import ConvCost, conv2d_cost
from chanconv.layers import Conv2D, Conv2DLayer
from chanconv.operations import (
    conv2d,
    conv2d_vjp,
    corr2d,
    corr2d_multi_in,
    corr2d_multi_in_out,
    corr2d_multi_in_out_1x1,
)
from chanconv.registry import (
    active_name,
    adapters,
    backend_for,
    get_adapter,
    register,
    set_backend,
    use_backend,
)

if TYPE_CHECKING:
    from chanconv.tools.explain import Explanation, explain

__all__ = [
    "Conv2D",
    "Conv2DLayer",
    "ConvCost",
    "Explanation",
    "active_name",
    "adapters",
    "autotune_enabled",
    "backend_for",
    "block_diagonal_kernel",
    "compose_kernels",
    "conv2d",
    "conv2d_cost",
    "conv2d_vjp",
    "corr2d",
    "corr2d_multi_in",
    "corr2d_multi_in_out",
    "corr2d_multi_in_out_1x1",
    "explain",
    "get_adapter",
    "im2col_limit",
    "register",
    "set_autotune",
    "set_backend",
    "set_im2col_limit",
    "use_backend",
]
__version__ = "0.1.0"


#: Public names served by the tools subpackage, imported on first use so that
#: ``import chanconv`` loads no tool (and not matplotlib).
_TOOL_NAMES = {"explain": "chanconv.tools.explain", "Explanation": "chanconv.tools.explain"}


def __getattr__(name: str) -> Any:
    if name in _TOOL_NAMES:
        value = getattr(import_module(_TOOL_NAMES[name]), name)
        globals()[name] = value
        return value
    # ``from chanconv import <submodule>`` asks here first: resolve nothing for those, and
    # import lazily through importlib, since ``from chanconv import d2l`` would recurse.
    if name.startswith("_") or find_spec(f"{__name__}.{name}") is not None:
        raise AttributeError(f"module 'chanconv' has no attribute {name!r}")
    d2l = import_module("chanconv.d2l")
    registry.adapters()
    if name in registry._names:
        namespace = d2l.Namespace(registry.canonical_name(name))
        globals()[name] = namespace
        return namespace
    try:
        return d2l.lookup(name, None)
    except (ImportError, ValueError) as err:
        # Still an AttributeError, so hasattr() works, but with the reason: the active
        # backend's framework is missing, or CHANCONV_BACKEND names no backend.
        raise AttributeError(f"module 'chanconv' has no attribute {name!r}: {err}") from err


def __dir__() -> list[str]:
    d2l = import_module("chanconv.d2l")
    try:
        aliases = d2l.names(None)
    except ValueError:  # an invalid CHANCONV_BACKEND must not break tab completion
        aliases = list(d2l.OPERATIONS)
    return sorted({*globals(), *aliases, *adapters()})
