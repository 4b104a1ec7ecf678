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

import sys
from collections.abc import Sequence
from importlib import import_module
from importlib.abc import Loader, MetaPathFinder
from importlib.machinery import ModuleSpec
from importlib.util import find_spec
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

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
    if name.startswith("_"):
        raise AttributeError(f"module 'chanconv' has no attribute {name!r}")
    if _backend_spelling(name):
        # Through the import system, so that ``from chanconv import torch``,
        # ``import chanconv.torch`` and ``import_module("chanconv.torch")`` give one object.
        return import_module(f"{__name__}.{name}")
    # ``from chanconv import <submodule>`` asks here first: resolve nothing for those, and
    # import lazily through importlib, since ``from chanconv import d2l`` would recurse.
    if find_spec(f"{__name__}.{name}") is not None:
        raise AttributeError(f"module 'chanconv' has no attribute {name!r}")
    d2l = import_module("chanconv.d2l")
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


def _backend_spelling(name: str) -> bool:
    """Whether ``name`` is a backend's name or alias (built-in, entry point or registered)."""
    registry.adapters()
    if name.lower() in registry._names:
        return True
    try:  # an Array API library's module name: its generic adapter, made on first use
        registry.canonical_name(name)
    except ValueError:
        return False
    return True


class _BackendModules(MetaPathFinder, Loader):
    """Makes every backend's namespace a real submodule: ``import chanconv.torch`` and
    ``importlib.import_module("chanconv.<name>")`` work for each backend the registry knows,
    entry-point ones included, and give the ``chanconv.d2l.Namespace`` that
    ``from chanconv import torch`` gives. Last on ``sys.meta_path``, so it never shadows a
    file in the package; creating a namespace imports no framework."""

    _loading = False

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        package, _, name = fullname.partition(".")
        if package != __name__ or not name or "." in name or name.startswith("_"):
            return None
        if self._loading:  # loading the adapters imports chanconv.backends.*: not ours
            return None
        self._loading = True
        try:
            return ModuleSpec(fullname, self) if _backend_spelling(name) else None
        finally:
            self._loading = False

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        canonical = registry.canonical_name(spec.name.partition(".")[2])
        # An alias (``chanconv.pytorch``) shares the canonical name's object.
        existing = sys.modules.get(f"{__name__}.{canonical}")
        d2l = import_module("chanconv.d2l")
        if isinstance(existing, d2l.Namespace) and existing.backend_name == canonical:
            return cast(ModuleType, existing)
        namespace: ModuleType = d2l.Namespace(canonical)
        return namespace

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: a namespace resolves its names on first use. An alias's import
        must not leave its own spec on the shared object."""
        if module.__spec__ is not None and module.__spec__.name != module.__name__:
            module.__spec__ = ModuleSpec(module.__name__, self)


if not any(isinstance(finder, _BackendModules) for finder in sys.meta_path):
    sys.meta_path.append(_BackendModules())

# The adapter table (an entry-point scan, no framework imported) is read now, not on the
# first operation: that call may be inside torch.compile, which cannot trace
# importlib.metadata. Unless a plugin is importing chanconv from its own package (its
# entry point's module not yet complete): then on first use, once the plugin is imported.
try:
    registry.adapters()
except registry.PluginStillImporting:
    pass
