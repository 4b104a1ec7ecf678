"""Finding adapters and choosing the active one.

Precedence, highest first: the framework of the tensors passed to an op (see
[`backend_for`][chanconv.backend_for]), then [`use_backend`][chanconv.use_backend], then
[`set_backend`][chanconv.set_backend], then the
``CHANCONV_BACKEND`` environment variable, then ``numpy``.

Arrays of a library with no adapter of its own but with ``__array_namespace__`` (the Python
Array API standard) get the generic adapter (``chanconv.backends.array_api``), one instance
per namespace, added to ``adapters`` on first sight or first use of its name.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any, cast

from chanconv.adapter import framework_installed
from chanconv.protocol import ArrayBackend, PipExtra, implements

ENTRY_POINT_GROUP = "chanconv.backends"
ENV_VAR = "CHANCONV_BACKEND"
DEFAULT_BACKEND = "numpy"
DISTRIBUTION = "chanconv"

# Used when chanconv runs from a source tree without installed metadata; an installed
# package's entry points say the same and may add third-party backends.
_BUILTIN = {
    "numpy": "chanconv.backends.numpy:NumpyBackend",
    "torch": "chanconv.backends.torch:TorchBackend",
    "tensorflow": "chanconv.backends.tensorflow:TensorflowBackend",
    "mxnet": "chanconv.backends.mxnet:MxnetBackend",
    "dask": "chanconv.backends.dask:DaskBackend",
}

#: The generic adapter for Array API libraries; not an entry point: it is the fallback.
GENERIC = "chanconv.backends.array_api:ArrayApiBackend"

_adapters: dict[str, ArrayBackend] | None = None
_names: dict[str, str] = {}  # every accepted spelling -> canonical name
_origins: dict[str, str] = {}  # canonical name -> "module:Class" it was loaded from
_distributions: dict[str, str] = {}  # canonical name -> distribution that registered it
_type_cache: dict[type, ArrayBackend | None] = {}
_dependent_caches: list[dict[Any, Any]] = []  # cleared with _type_cache
_global_choice: str | None = None
_scoped_choice: ContextVar[str | None] = ContextVar("chanconv_backend", default=None)


class PluginStillImporting(ImportError):
    """An entry point names a module that is itself in the middle of being imported: a
    plugin whose package imports chanconv (``import chanconv_jax`` before ``import
    chanconv``). The adapter table is then read on first use instead."""


def _load_adapter(target: str) -> ArrayBackend:
    module_name, _, attr = target.partition(":")
    module = import_module(module_name)
    cls = getattr(module, attr, None)
    if cls is None:
        spec = getattr(module, "__spec__", None)
        if spec is not None and getattr(spec, "_initializing", False):
            raise PluginStillImporting(f"{module_name} is still being imported")
        raise AttributeError(f"{target}: module {module_name!r} has no attribute {attr!r}")
    adapter = cls()
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
        targets = {name: (target, DISTRIBUTION) for name, target in _BUILTIN.items()}
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            targets[ep.name] = (ep.value, ep.dist.name if ep.dist is not None else ep.module)
        loaded: dict[str, ArrayBackend] = {}
        for target, dist in targets.values():
            adapter = _load_adapter(target)
            loaded[adapter.name] = adapter
            _origins[adapter.name] = target
            _distributions[adapter.name] = dist
            for spelling in (adapter.name, *adapter.aliases):
                _names[spelling.lower()] = adapter.name
        _adapters = loaded
    return _adapters


def register(adapter: ArrayBackend, origin: str = "register()") -> None:
    """Add (or replace) a backend at run time; entry points are the packaged way.

    The adapter is found under its ``name`` and each of its ``aliases`` (in any case); an
    adapter of the same name is replaced, its old aliases dropped. Every cached dispatch
    decision is forgotten, so tensors are matched against the new table from the next call.

    Args:
        adapter: An instance implementing
            [`ArrayBackend`][chanconv.protocol.ArrayBackend].
        origin: Where the adapter came from, as ``chanconv.registry.origin`` reports it
            (default ``"register()"``).

    Raises:
        TypeError: ``adapter`` does not implement the protocol.

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
    _distributions.pop(adapter.name, None)
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


def distribution(name: str) -> str | None:
    """The distribution (pip package) whose entry point registered backend ``name``:
    ``"chanconv"`` for the built-in ones, None for one added by [`register`][chanconv.register].

    Examples:
        >>> distribution("numpy")
        'chanconv'
    """
    return _distributions.get(get_adapter(name, require_installed=False).name)


def is_third_party(name: str) -> bool:
    """Whether backend ``name`` comes from another package than chanconv (or from
    [`register`][chanconv.register])."""
    return distribution(name) != DISTRIBUTION


def install_command(name: str) -> str:
    """The pip command that installs backend ``name`` with its framework: chanconv's extra
    for an adapter with [PipExtra][chanconv.protocol.PipExtra], else the distribution that
    registered it, else the framework itself.

    Examples:
        >>> install_command("torch")
        "pip install 'chanconv[torch]'"
    """
    adapter = get_adapter(name, require_installed=False)
    if implements(adapter, PipExtra):
        return f"pip install 'chanconv[{cast(PipExtra, adapter).extra}]'"
    return f"pip install {distribution(name) or adapter.framework}"


def canonical_name(name: str) -> str:
    """``"pytorch"`` -> ``"torch"``; the module name of an installed Array API library
    (``"array_api_strict"``, or ``"array-api-strict"``) -> its generic adapter's name;
    ``ValueError`` listing the known backends otherwise."""
    adapters()
    try:
        return _names[name.strip().lower()]
    except (KeyError, AttributeError):
        pass
    generic = _generic_by_name(name)
    if generic is not None:
        return generic.name
    known = ", ".join(sorted(_names))
    raise ValueError(
        f"unknown backend {name!r}; known backends: {known}, or the module name of an "
        "installed Array API library (e.g. array_api_strict)"
    ) from None


def is_generic(adapter: ArrayBackend) -> bool:
    """Whether ``adapter`` is the generic Array API adapter of some library (made by the
    registry itself, from ``GENERIC``), rather than a dedicated one."""
    return _origins.get(adapter.name) == GENERIC and adapters().get(adapter.name) is adapter


def _generic_for(namespace: Any) -> ArrayBackend | None:
    """The generic adapter of an Array API namespace module, made on first use. None if a
    dedicated adapter already holds that name (it did not claim the array, so neither
    may a stand-in under its name)."""
    table = adapters()
    existing = table.get(namespace.__name__)
    if existing is not None:
        return existing if is_generic(existing) else None
    module_name, _, attr = GENERIC.partition(":")
    adapter: ArrayBackend = getattr(import_module(module_name), attr)(namespace.__name__)
    table[adapter.name] = adapter
    _origins[adapter.name] = GENERIC
    for spelling in (adapter.name, *adapter.aliases):
        _names.setdefault(spelling.lower(), adapter.name)
    return adapter


def _generic_by_name(name: object) -> ArrayBackend | None:
    """The generic adapter of the Array API library whose namespace module is ``name``
    (dashes read as underscores; as spelled, else in lower case). A library not imported
    yet is imported: the caller named it to compute with it. None for anything that is not
    such a namespace."""
    if not isinstance(name, str):
        return None
    spelled = name.strip().replace("-", "_")
    for module_name in dict.fromkeys((spelled, spelled.lower())):
        module = _namespace_module(module_name)
        if module is not None:
            return _generic_for(module)
    return None


def _namespace_module(module_name: str) -> Any:
    """The module ``module_name`` if it is installed and an Array API namespace, else None."""
    if not all(part.isidentifier() for part in module_name.split(".")):
        return None
    module = sys.modules.get(module_name)
    if module is None:
        top = module_name.partition(".")[0]
        # find_spec of a dotted name imports its parent: only look where that is harmless.
        if top != module_name and top not in sys.modules:
            return None
        try:
            if not framework_installed(module_name):
                return None
            module = import_module(module_name)
        except (ImportError, ValueError):
            return None
    # The standard has every namespace state the version it implements.
    return module if isinstance(getattr(module, "__array_api_version__", None), str) else None


def get_adapter(name: str, *, require_installed: bool = True) -> ArrayBackend:
    """The adapter called ``name``. ``ImportError`` naming the pip extra when its framework
    is not installed (checked without importing it).

    Args:
        name: A backend's name or alias, in any case (``"torch"``, ``"pytorch"``,
            ``"np"``), or the module name of an installed Array API library
            (``"array_api_strict"``), whose generic adapter is then used.
        require_installed: Whether to check that the adapter's framework is installed
            (default True); False returns the adapter whatever is installed.

    Returns:
        The adapter, an [`ArrayBackend`][chanconv.protocol.ArrayBackend].

    Raises:
        ValueError: ``name`` is no known backend; the message lists the known ones.
        ImportError: ``require_installed`` is true and the framework is not installed;
            the message gives the pip command that installs it.

    Examples:
        >>> import chanconv
        >>> np_backend = chanconv.get_adapter("np")  # aliases work too
        >>> np_backend
        <chanconv backend 'numpy'>
        >>> np_backend.shape(np_backend.asarray([[1.0, 2.0, 3.0]], "float32"))
        (1, 3)
        >>> chanconv.get_adapter("theano")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: unknown backend 'theano'; known backends: ...
    """
    adapter = adapters()[canonical_name(name)]
    if require_installed and adapter.framework not in sys.modules:
        if not framework_installed(adapter.framework):
            raise ImportError(
                f"the {adapter.name!r} backend needs the {adapter.framework!r} package, which "
                f"is not installed; install it with: {install_command(adapter.name)}"
            )
    return adapter


def backend_for(x: object) -> ArrayBackend | None:
    """The adapter whose framework made ``x``, or ``None`` (lists, scalars, unknown types).

    A cached lookup on ``type(x)``; on a miss, only frameworks already in ``sys.modules``
    are asked, so this never imports one (an object of a framework that is not imported
    cannot exist). When no adapter claims ``x`` and its type has ``__array_namespace__``,
    the generic adapter of that namespace serves it (``<chanconv backend 'array_api_strict'
    (array-api)>``).

    Args:
        x: Any object: a tensor of some framework, a list, a scalar.

    Returns:
        The adapter that claims ``x``, or None for an object no adapter claims (nested
            lists, numbers, classes, arrays of a library that is neither adapted nor an Array
            API namespace).

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
        if is_generic(adapter):
            continue  # dedicated adapters first: the generic one is the fallback
        if adapter.framework in sys.modules and adapter.is_tensor(x):
            found = adapter
            break
    if found is None and not isinstance(x, type):
        get_namespace = getattr(tp, "__array_namespace__", None)
        if get_namespace is not None:
            try:
                namespace = get_namespace(x)
            except Exception:  # a library's own refusal: not an array chanconv can use
                namespace = None
            found = None if namespace is None else _generic_for(namespace)
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
    """The adapter of [`active_name`][chanconv.active_name], its framework checked to be
    installed."""
    return get_adapter(active_name())


def set_backend(name: str | None) -> None:
    """Choose the process-wide backend for non-tensor inputs; ``None`` undoes the choice.

    Tensors passed to an operation still decide its backend, and
    [`use_backend`][chanconv.use_backend] overrides this choice within its block.

    Args:
        name: A backend's name or alias, in any case (``"torch"``, ``"pytorch"``,
            ``"np"``), or the module name of an installed Array API library
            (``"array_api_strict"``), whose generic adapter is then used.
            None goes back to ``$CHANCONV_BACKEND``, else ``numpy``.

    Raises:
        ValueError: ``name`` is no known backend.
        ImportError: The backend's framework is not installed.

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

    The previous choice comes back when the block ends, also on an exception. Tensors
    passed to an operation still decide its backend.

    Args:
        name: A backend's name or alias, in any case (``"torch"``, ``"pytorch"``,
            ``"np"``), or the module name of an installed Array API library
            (``"array_api_strict"``), whose generic adapter is then used.

    Yields:
        The adapter, an [`ArrayBackend`][chanconv.protocol.ArrayBackend].

    Raises:
        ValueError: ``name`` is no known backend (raised on entering the block).
        ImportError: The backend's framework is not installed.

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
