"""d2l-style namespaces: ``from chanconv import torch as d2l`` and ``import chanconv as d2l``.

One mechanism serves every backend: a namespace offers chanconv's operations plus the
framework aliases the d2l book reaches through ``d2l.`` (``tensor``, ``normal``,
``reduce_sum``, ...). Each adapter lists its aliases in a two-form mini-language, so each
framework keeps the meaning its own d2l tab gives a name:

* ``"random.normal"``: an attribute path into the framework module (``tf.random.normal``);
* ``".sum"``: a method of the first argument (``d2l.reduce_sum(x, 0)`` is ``x.sum(0)``);
* ``"package.module:name"``: an object of another module (a plugin's own d2l helpers, such
  as the jax plugin's ``get_seed``).

``numpy`` and ``size`` mean the same everywhere and come from the protocol.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any, cast

from chanconv import compose, layers, operations
from chanconv.cost import conv2d_cost
from chanconv.protocol import ArrayBackend, D2lAliases, Tensor, implements
from chanconv.registry import active_name, backend_for, get_adapter, use_backend

#: d2l's aliases in NumPy's spelling, shared by the numpy adapter and MXNet's ``mx.np``
#: (under ``np.``): d2l's mxnet tab is exactly this.
NUMPY_D2L_ALIASES = {
    "ones": "ones", "zeros": "zeros", "tensor": "array", "arange": "arange",
    "meshgrid": "meshgrid", "sin": "sin", "sinh": "sinh", "cos": "cos", "cosh": "cosh",
    "tanh": "tanh", "linspace": "linspace", "exp": "exp", "log": "log",
    "normal": "random.normal", "rand": "random.rand", "matmul": "dot", "int32": "int32",
    "float32": "float32", "concat": "concatenate", "stack": "stack", "abs": "abs",
    "eye": "eye", "transpose": "transpose", "reshape": ".reshape", "reduce_sum": ".sum",
    "argmax": ".argmax", "astype": ".astype",
}  # fmt: skip

#: chanconv's own operations, offered by every namespace.
OPERATIONS: dict[str, Callable[..., Any]] = {
    "corr2d": operations.corr2d,
    "corr2d_multi_in": operations.corr2d_multi_in,
    "corr2d_multi_in_out": operations.corr2d_multi_in_out,
    "corr2d_multi_in_out_1x1": operations.corr2d_multi_in_out_1x1,
    "conv2d": operations.conv2d,
    "conv2d_vjp": operations.conv2d_vjp,
    "compose_kernels": compose.compose_kernels,
    "block_diagonal_kernel": compose.block_diagonal_kernel,
    "conv2d_cost": conv2d_cost,
    "Conv2D": layers.Conv2D,
}


def _to_numpy(x: Tensor) -> Any:
    backend = backend_for(x)
    if backend is None:
        raise TypeError(f"numpy() takes a tensor of a known backend, not {type(x).__name__}")
    return backend.to_numpy(x)


def _size(x: Tensor) -> int:
    backend = backend_for(x)
    if backend is None:
        raise TypeError(f"size() takes a tensor of a known backend, not {type(x).__name__}")
    return math.prod(backend.shape(x))


_PROTOCOL_ALIASES: dict[str, Callable[..., Any]] = {"numpy": _to_numpy, "size": _size}


def d2l_aliases(adapter: ArrayBackend) -> Mapping[str, str]:
    """The adapter's [D2lAliases][chanconv.protocol.D2lAliases], none without one."""
    return cast(D2lAliases, adapter).d2l_aliases if implements(adapter, D2lAliases) else {}


def resolve_alias(backend: ArrayBackend, spec: str) -> Any:
    """The object an alias spec names (see the module docstring)."""
    if spec.startswith("."):
        method = spec[1:]

        def call_method(x: Any, *args: Any, **kwargs: Any) -> Any:
            return getattr(x, method)(*args, **kwargs)

        call_method.__name__ = call_method.__qualname__ = method
        return call_method
    if ":" in spec:
        module, _, path = spec.partition(":")
        obj: Any = import_module(module)
    else:
        obj, path = import_module(backend.framework), spec
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _bind(op: Callable[..., Any], backend_name: str) -> Callable[..., Any]:
    def bound(*args: Any, **kwargs: Any) -> Any:
        with use_backend(backend_name):
            return op(*args, **kwargs)

    bound.__name__, bound.__qualname__, bound.__doc__ = op.__name__, op.__qualname__, op.__doc__
    return bound


def lookup(name: str, backend_name: str | None) -> Any:
    """``name`` in the namespace of ``backend_name`` (``None``: the active backend).
    ``AttributeError`` if it is neither an operation nor an alias."""
    if name in OPERATIONS:
        op = OPERATIONS[name]
        return op if backend_name is None else _bind(op, backend_name)
    if name in _PROTOCOL_ALIASES:
        return _PROTOCOL_ALIASES[name]
    adapter = get_adapter(backend_name or active_name())
    aliases = d2l_aliases(adapter)
    if name in aliases:
        return resolve_alias(adapter, aliases[name])
    raise AttributeError(f"chanconv's {adapter.name} namespace has no attribute {name!r}")


def names(backend_name: str | None) -> list[str]:
    adapter = get_adapter(backend_name or active_name(), require_installed=False)
    return sorted({*OPERATIONS, *_PROTOCOL_ALIASES, *d2l_aliases(adapter)})


class Namespace(types.ModuleType):
    """A module-like object bound to one backend: ``from chanconv import torch as d2l``."""

    def __init__(self, backend_name: str) -> None:
        super().__init__(f"chanconv.{backend_name}", f"chanconv bound to {backend_name}")
        self.backend_name = backend_name

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            value = lookup(name, self.backend_name)
        except ImportError as err:  # keep hasattr() and getattr(ns, name, default) working
            raise AttributeError(f"chanconv.{self.backend_name}.{name}: {err}") from err
        setattr(self, name, value)  # resolve once; later lookups are plain attributes
        return value

    def __dir__(self) -> list[str]:
        return names(self.backend_name)

    def __call__(self, x: Tensor) -> Any:
        # ``import chanconv as d2l; d2l.numpy(x)`` reaches this namespace object where
        # d2l code means the alias numpy(x), so the numpy namespace doubles as it.
        if self.backend_name != "numpy":
            raise TypeError(f"chanconv.{self.backend_name} is a namespace, not a function")
        return _to_numpy(x)
