"""Finding adapters and choosing the active one.

Precedence, highest first: the framework of the tensors passed to an op (see
:func:`backend_for`), then :func:`use_backend`, then :func:`set_backend`, then the
``CHANCONV_BACKEND`` environment variable, then ``numpy``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from chanconv.adapter import framework_installed
from chanconv.protocol import ArrayBackend

ENTRY_POINT_GROUP = "chanconv.backends"
ENV_VAR = "CHANCONV_BACKEND"
DEFAULT_BACKEND = "numpy"

# Used when chanconv runs from a source tree without installed metadata; an installed
# package's entry points say the same and may add third-party backends.
_BUILTIN = {
    "numpy": "chanconv.backends.numpy:NumpyBackend",
    "torch": "chanconv.backends.torch:TorchBackend",
    "tensorflow": "chanconv.backends.tensorflow:TensorflowBackend",
    "mxnet": "chanconv.backends.mxnet:MxnetBackend",
}

_adapters: dict[str, ArrayBackend] | None = None
_names: dict[str, str] = {}  # every accepted spelling -> canonical name
_origins: dict[str, str] = {}  # canonical name -> "module:Class" it was loaded from
_type_cache: dict[type, ArrayBackend | None] = {}
_dependent_caches: list[dict[Any, Any]] = []  # cleared with _type_cache
_global_choice: str | None = None
_scoped_choice: ContextVar[str | None] = ContextVar("chanconv_backend", default=None)


def _load_adapter(target: str) -> ArrayBackend:
    module_name, _, attr = target.partition(":")
    adapter = getattr(import_module(module_name), attr)()
    if not isinstance(adapter, ArrayBackend):
        raise TypeError(f"{target} does not implement chanconv.protocol.ArrayBackend")
    return adapter


def adapters() -> dict[str, ArrayBackend]:
    """Every known adapter by canonical name: built-in ones and those registered under the
    entry-point group ``chanconv.backends``. Loading them imports no framework.

    Examples:
        >>> import chanconv
        >>> {"numpy", "torch", "tensorflow", "mxnet"} <= set(chanconv.adapters())
        True
    """
    global _adapters
    if _adapters is None:
        targets = dict(_BUILTIN)
        targets.update({ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)})
        loaded: dict[str, ArrayBackend] = {}
        for target in targets.values():
            adapter = _load_adapter(target)
            loaded[adapter.name] = adapter
            _origins[adapter.name] = target
            for spelling in (adapter.name, *adapter.aliases):
                _names[spelling.lower()] = adapter.name
        _adapters = loaded
    return _adapters


def register(adapter: ArrayBackend, origin: str = "register()") -> None:
    """Add (or replace) a backend at run time; entry points are the packaged way.

    Examples:
        >>> import chanconv
        >>> from chanconv.backends.numpy import NumpyBackend
        >>> class MyNumpy(NumpyBackend):
        ...     name, aliases = "mynumpy", ("mynp",)
        >>> chanconv.register(MyNumpy())
        >>> chanconv.get_adapter("mynp")
        <chanconv backend 'mynumpy'>
    """
    if not isinstance(adapter, ArrayBackend):
        raise TypeError(f"{adapter!r} does not implement chanconv.protocol.ArrayBackend")
    table = adapters()
    table[adapter.name] = adapter
    _origins[adapter.name] = origin
    for spelling in [s for s, target in _names.items() if target == adapter.name]:
        del _names[spelling]  # a replaced adapter's old aliases must not linger
    for spelling in (adapter.name, *adapter.aliases):
        _names[spelling.lower()] = adapter.name
    clear_caches()


def clear_caches() -> None:
    """Forget every type lookup and what was worked out from it (after the adapter table
    changes)."""
    _type_cache.clear()
    for cache in _dependent_caches:
        cache.clear()


def register_cache(cache: dict[Any, Any]) -> dict[Any, Any]:
    """Have ``cache`` (keyed on argument types) cleared whenever dispatch may change."""
    _dependent_caches.append(cache)
    return cache


def origin(name: str) -> str:
    """Where the adapter called ``name`` was loaded from (``module:Class``)."""
    return _origins[get_adapter(name, require_installed=False).name]


def canonical_name(name: str) -> str:
    """``"pytorch"`` -> ``"torch"``; ``ValueError`` listing the known backends otherwise."""
    adapters()
    try:
        return _names[name.strip().lower()]
    except (KeyError, AttributeError):
        known = ", ".join(sorted(_names))
        raise ValueError(f"unknown backend {name!r}; known backends: {known}") from None


def get_adapter(name: str, *, require_installed: bool = True) -> ArrayBackend:
    """The adapter called ``name``. ``ImportError`` naming the pip extra when its framework
    is not installed (checked without importing it).

    Examples:
        >>> import chanconv
        >>> np_backend = chanconv.get_adapter("np")  # aliases work too
        >>> np_backend
        <chanconv backend 'numpy'>
        >>> np_backend.shape(np_backend.asarray([[1.0, 2.0, 3.0]], "float32"))
        (1, 3)
        >>> chanconv.get_adapter("jax")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: unknown backend 'jax'; known backends: ...
    """
    adapter = adapters()[canonical_name(name)]
    if require_installed and adapter.framework not in sys.modules:
        if not framework_installed(adapter.framework):
            raise ImportError(
                f"the {adapter.name!r} backend needs the {adapter.framework!r} package, which "
                f"is not installed; install it with: pip install 'chanconv[{adapter.extra}]'"
            )
    return adapter


def backend_for(x: object) -> ArrayBackend | None:
    """The adapter whose framework made ``x``, or ``None`` (lists, scalars, unknown types).

    A cached lookup on ``type(x)``; on a miss, only frameworks already in ``sys.modules``
    are asked, so this never imports one (an object of a framework that is not imported
    cannot exist).

    Examples:
        >>> import numpy as np
        >>> import chanconv
        >>> chanconv.backend_for(np.zeros(3))
        <chanconv backend 'numpy'>
        >>> chanconv.backend_for([1.0, 2.0]) is None
        True
    """
    tp = type(x)
    try:
        return _type_cache[tp]
    except KeyError:
        pass
    found = None
    for adapter in adapters().values():
        if adapter.framework in sys.modules and adapter.is_tensor(x):
            found = adapter
            break
    _type_cache[tp] = found
    return found


def active_name() -> str:
    """The backend used for inputs that are not tensors: ``use_backend`` over
    ``set_backend`` over ``$CHANCONV_BACKEND`` over ``numpy``.

    Examples:
        >>> import chanconv
        >>> chanconv.active_name()  # nothing chosen, CHANCONV_BACKEND unset
        'numpy'
    """
    choice = _scoped_choice.get() or _global_choice
    if choice is not None:
        return choice
    env = os.environ.get(ENV_VAR)
    if env:
        try:
            return canonical_name(env)
        except ValueError as err:
            raise ValueError(f"{ENV_VAR}={env!r}: {err}") from None
    return DEFAULT_BACKEND


def active_backend() -> ArrayBackend:
    """The adapter of :func:`active_name`, its framework checked to be installed."""
    return get_adapter(active_name())


def set_backend(name: str | None) -> None:
    """Choose the process-wide backend for non-tensor inputs; ``None`` undoes the choice.

    Examples:
        >>> import chanconv
        >>> chanconv.set_backend("np")
        >>> chanconv.active_name()
        'numpy'
        >>> chanconv.set_backend(None)  # back to $CHANCONV_BACKEND, else numpy
    """
    global _global_choice
    _global_choice = None if name is None else get_adapter(name).name


@contextmanager
def use_backend(name: str) -> Iterator[ArrayBackend]:
    """Within the ``with`` block, in this thread or asyncio task only, use backend ``name``
    for non-tensor inputs. Yields the adapter.

    Examples:
        >>> import chanconv
        >>> with chanconv.use_backend("numpy") as backend:
        ...     y = chanconv.corr2d([[1, 2], [3, 4]], [[1]])
        >>> backend.name, type(y).__name__
        ('numpy', 'ndarray')
    """
    adapter = get_adapter(name)
    token = _scoped_choice.set(adapter.name)
    try:
        yield adapter
    finally:
        _scoped_choice.reset(token)
