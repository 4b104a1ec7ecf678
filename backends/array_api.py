"""The generic adapter: any array whose type has ``__array_namespace__`` (the Python Array
API standard), computed with that array's own namespace and the standard's names only.

One adapter instance serves one namespace (``array_api_strict``, ``cupy``, ``jax.numpy``,
...), made by ``chanconv.registry.backend_for`` on the first array of that library it
meets, or by name (``use_backend("array_api_strict")``) for nested lists. One instance per
namespace keeps two libraries apart: a call mixing them is refused naming both, as for any
two backends. A library with its own adapter (built-in or plugin) keeps it; this one is the
fallback, with the protocol-only algorithms (``direct``, ``im2col``) and no native
convolution or framework layer.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from functools import cached_property
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from typing import Any

from chanconv.adapter import Adapter
from chanconv.protocol import FLOATING_DTYPES, Tensor

#: The standard's dtype names; float16 and bfloat16 are not among them, but a namespace
#: that has them (NumPy, JAX) is read in them too.
_DTYPE_NAMES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                "uint64", *FLOATING_DTYPES, "complex64", "complex128")  # fmt: skip

#: d2l's aliases in the standard's spelling; the standard has no random numbers, so
#: ``normal`` and ``rand`` are absent.
ARRAY_API_D2L_ALIASES = {
    "ones": "ones", "zeros": "zeros", "tensor": "asarray", "arange": "arange",
    "meshgrid": "meshgrid", "sin": "sin", "sinh": "sinh", "cos": "cos", "cosh": "cosh",
    "tanh": "tanh", "linspace": "linspace", "exp": "exp", "log": "log", "matmul": "matmul",
    "int32": "int32", "float32": "float32", "concat": "concat", "stack": "stack",
    "abs": "abs", "eye": "eye", "transpose": "matrix_transpose", "reshape": "reshape",
    "reduce_sum": "sum", "argmax": "argmax", "astype": "astype",
}  # fmt: skip


class ArrayApiBackend(Adapter):
    """The adapter of one Array API namespace, named by its module (``array_api_strict``)
    and also by its dash spelling (``array-api-strict``, as pip and nox spell it)."""

    d2l_aliases: Mapping[str, str] = ARRAY_API_D2L_ALIASES

    def __init__(self, namespace: str) -> None:
        self.name = namespace  # type: ignore[misc]
        dashed = namespace.replace("_", "-")
        self.aliases = (dashed,) if dashed != namespace else ()  # type: ignore[misc]
        self.framework = namespace  # type: ignore[misc]
        self.extra = dashed

    @cached_property
    def _dtypes(self) -> dict[str, Any]:
        """Standard name -> this namespace's dtype object, for those it has."""
        found = {}
        for name in _DTYPE_NAMES:
            dtype = getattr(self.fw, name, None)
            if dtype is not None:
                found[name] = dtype
        return found

    @cached_property
    def _names_by_dtype(self) -> dict[Any, str]:
        found: dict[Any, str] = {}
        for name, dtype in self._dtypes.items():
            try:
                found.setdefault(dtype, name)
            except TypeError:  # an unhashable dtype: dtype_name compares instead
                pass
        return found

    def _dtype(self, name: str) -> Any:
        try:
            return self._dtypes[name]
        except KeyError:
            raise TypeError(
                f"the {self.name} namespace has no {name} dtype; it has "
                f"{', '.join(n for n in FLOATING_DTYPES if n in self._dtypes)}"
            ) from None

    def is_tensor(self, x: object) -> bool:
        get = getattr(type(x), "__array_namespace__", None)
        return get is not None and not isinstance(x, type) and get(x) is self.fw

    def version(self) -> str:
        found = getattr(self.fw, "__version__", None)
        top = self.name.partition(".")[0]
        if found is None:
            found = getattr(importlib.import_module(top), "__version__", None)
        if found is None:
            try:
                found = dist_version(top)
            except PackageNotFoundError:
                found = f"Array API {self.fw.__array_api_version__}"
        return str(found)

    def asarray(self, obj: Any, dtype: str | None = None) -> Tensor:
        if dtype is None:
            return obj if self.is_tensor(obj) else self.fw.asarray(obj)
        return self.fw.asarray(obj, dtype=self._dtype(dtype))

    def astype(self, x: Tensor, dtype: str) -> Tensor:
        return self.fw.astype(x, self._dtype(dtype))

    def reshape(self, x: Tensor, shape: tuple[int, ...]) -> Tensor:
        return self.fw.reshape(x, shape)

    def permute_dims(self, x: Tensor, axes: tuple[int, ...]) -> Tensor:
        return self.fw.permute_dims(x, axes)

    def stack(self, arrays: Sequence[Tensor], axis: int = 0) -> Tensor:
        return self.fw.stack(self._one_device(arrays), axis=axis)

    def concat(self, arrays: Sequence[Tensor], axis: int = 0) -> Tensor:
        return self.fw.concat(self._one_device(arrays), axis=axis)

    def matmul(self, x1: Tensor, x2: Tensor) -> Tensor:
        return self.fw.matmul(*self._one_device((x1, x2)))

    @cached_property
    def _default_device(self) -> Any:
        info = getattr(self.fw, "__array_namespace_info__", None)
        return None if info is None else info().default_device()

    def _one_device(self, arrays: Sequence[Tensor]) -> list[Tensor]:
        """``arrays`` on one device. The protocol's ``zeros`` (padding) and nested lists
        make arrays on the library's default device, while the caller's may live on another
        (a second GPU; array-api-strict's ``device1``): those follow the caller's, with the
        standard's ``to_device``. These three ops are where the two kinds meet."""
        devices = [getattr(a, "device", None) for a in arrays]
        if all(d == devices[0] for d in devices):
            return list(arrays)
        target = next((d for d in devices if d != self._default_device), devices[0])
        return [a if d == target else a.to_device(target)
                for a, d in zip(arrays, devices, strict=True)]  # fmt: skip

    def sum(self, x: Tensor, axis: int | tuple[int, ...] | None = None) -> Tensor:
        return self.fw.sum(x, axis=axis)

    def zeros(self, shape: tuple[int, ...], dtype: str) -> Tensor:
        return self.fw.zeros(shape, dtype=self._dtype(dtype))

    def shape(self, x: Tensor) -> tuple[int, ...]:
        # The standard allows None for a dimension unknown until computed (lazy libraries).
        if any(d is None for d in x.shape):
            raise ValueError(
                f"a {self.name} array of shape {tuple(x.shape)} has dimensions of unknown "
                "size; compute it first"
            )
        return tuple(int(d) for d in x.shape)

    def dtype_name(self, x: Tensor) -> str:
        try:
            return self._names_by_dtype[x.dtype]
        except (KeyError, TypeError):  # a dtype that is not hashable, or not standard
            for name, dtype in self._dtypes.items():
                if x.dtype == dtype:
                    return name
            return str(x.dtype).rpartition(".")[2]

    def to_numpy(self, x: Tensor) -> Any:
        np = importlib.import_module("numpy")
        try:  # the standard's interchange: no copy through Python objects
            return np.from_dlpack(x).copy()
        except (AttributeError, TypeError, ValueError, RuntimeError, BufferError):
            return np.array(x)

    def devices(self) -> list[str]:
        """The namespace's own list (``__array_namespace_info__``, standard since 2023.12)."""
        info = getattr(self.fw, "__array_namespace_info__", None)
        return [] if info is None else [str(d) for d in info().devices()]

    def __repr__(self) -> str:
        return f"<chanconv backend {self.name!r} (array-api)>"
