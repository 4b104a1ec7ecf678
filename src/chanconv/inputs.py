"""Turning user arguments into tensors of one backend, with every rule checked before any
framework computes anything."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real
from typing import NamedTuple

from chanconv.protocol import FLOATING_DTYPES, ArrayBackend, Tensor
from chanconv.registry import active_backend, backend_for

#: Nested lists become this dtype, as the book's ``tensor([[0.0, 1.0], ...])`` does.
LIST_DTYPE = "float32"

_RANK = {"float16": 1, "bfloat16": 1, "float32": 2, "float64": 3}


class Operand(NamedTuple):
    """One argument of an op, converted: its tensor (in the backend's working kind), shape
    and dtype, and the caller's original object for handing the result back in kind. (A
    named tuple: built on every call, it must be cheap.)"""

    name: str
    tensor: Tensor
    shape: tuple[int, ...]
    dtype: str
    original: object

    @property
    def is_tensor(self) -> bool:
        return not isinstance(self.original, (list, tuple))


def result_dtype(dtypes: Sequence[str]) -> str:
    """Array API promotion among floating dtypes: the widest wins; float16 with bfloat16
    gives float32 (neither holds the other). TensorFlow does not promote by itself, so the
    core always casts to this before computing."""
    widest = max(dtypes, key=_RANK.__getitem__)
    if _RANK[widest] == 1 and len(set(dtypes)) > 1:
        return "float32"
    return widest


def _nested_shape(value: object, name: str) -> tuple[int, ...]:
    """The shape of nested lists of real numbers; ValueError if ragged, TypeError if any
    leaf is not a real number."""
    if isinstance(value, (list, tuple)):
        if not value:
            return (0,)
        shapes = {_nested_shape(item, name) for item in value}
        if len(shapes) > 1:
            raise ValueError(
                f"{name} is a ragged nested list: its rows have shapes {sorted(shapes)}; "
                "every row must have the same length"
            )
        return (len(value), *shapes.pop())
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(
            f"{name} holds {value!r} of type {type(value).__name__}; "
            "nested lists must hold real numbers only"
        )
    return ()


def _describe(x: object) -> str:
    backend = backend_for(x)
    return f"a {backend.name} tensor" if backend else f"a {type(x).__name__}"


def pick_backend(**arguments: object) -> ArrayBackend:
    """The backend of the tensors among ``arguments`` (``TypeError`` if they come from two
    frameworks), else the active backend. ``None`` arguments are skipped."""
    found: dict[str, str] = {}
    first: ArrayBackend | None = None
    for name, value in arguments.items():
        if value is None:
            continue
        backend = backend_for(value)
        if backend is not None:
            found.setdefault(backend.name, name)
            first = first or backend
        elif not isinstance(value, (list, tuple)):
            raise TypeError(
                f"{name} is {_describe(value)}; chanconv takes tensors of a known backend "
                "(numpy, torch, tensorflow, mxnet, one registered under the entry-point "
                "group 'chanconv.backends', or any array with __array_namespace__) or "
                "nested lists of numbers"
            )
    if len(found) > 1:
        pairs = " but ".join(f"{arg} is a {fw} tensor" for fw, arg in found.items())
        raise TypeError(
            f"{pairs}; one call cannot mix frameworks: convert the arguments to one framework"
        )
    return first if first is not None else active_backend()


def operand(
    backend: ArrayBackend, name: str, value: object, ndim: int | tuple[int, ...], layout: str
) -> Operand:
    """Check ``value`` (rank, emptiness, numeric floating dtype) and convert it to
    ``backend``. ``ndim`` is the rank required (or the ranks allowed); ``layout`` names the
    axes for messages, e.g. ``"(ci, h, w)"``."""
    ranks = (ndim,) if isinstance(ndim, int) else ndim
    if value is None:
        raise TypeError(f"{name} is None; it must be a tensor or nested lists of numbers")
    if isinstance(value, (list, tuple)):
        shape = _nested_shape(value, name)
        dtype = LIST_DTYPE
    else:
        shape = backend.shape(value)
        dtype = backend.dtype_name(value)
        if dtype not in FLOATING_DTYPES:
            raise TypeError(
                f"{name} has dtype {dtype}; chanconv convolves floating tensors "
                f"({', '.join(FLOATING_DTYPES)}): cast it first, e.g. to float32"
            )
    if len(shape) not in ranks:
        allowed = " or ".join(map(str, ranks))
        raise ValueError(
            f"{name} has shape {shape} ({len(shape)} dimensions) but must have {allowed} "
            f"dimensions, laid out as {layout}"
        )
    if 0 in shape:
        raise ValueError(f"{name} of shape {shape} is empty; every dimension must be >= 1")
    tensor = backend.asarray(value, dtype if isinstance(value, (list, tuple)) else None)
    return Operand(name, tensor, shape, dtype, value)


def unify_dtypes(backend: ArrayBackend, *operands: Operand) -> tuple[str, list[Tensor]]:
    """The promoted dtype and each operand's tensor cast to it (a no-op where equal)."""
    dtype = result_dtype([op.dtype for op in operands])
    tensors = [op.tensor if op.dtype == dtype else backend.astype(op.tensor, dtype)
               for op in operands]  # fmt: skip
    return dtype, tensors


def kind_source(*operands: Operand) -> object | None:
    """The caller's first tensor argument, whose array kind the result takes."""
    return next((op.original for op in operands if op.is_tensor), None)
