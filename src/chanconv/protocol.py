"""The thin tensor protocol that the backend-neutral core is written against.

Every framework adapter (``chanconv.backends.<name>``) implements :class:`ArrayBackend`.
Operation names and semantics follow the Python Array API standard
(https://data-apis.org/array-api/) wherever the standard has the operation:
``asarray``, ``astype``, ``reshape``, ``permute_dims``, ``stack``, ``concat``, ``matmul``,
``sum``, ``zeros``. Slicing uses the standard's ``__getitem__`` with basic slices, and the
core adds tensors with ``+``, which every framework differentiates.

What the standard does not have is named here explicitly, and kept to the minimum the core
needs: reading a dtype's name, converting to NumPy for display, and handing a result back in
the caller's array kind (MXNet has two: ``mx.nd.NDArray`` and ``mx.np.ndarray``).

Dtypes cross the protocol as their standard names (``"float32"``), never as framework
objects, so the core can reason about them without importing anything.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from chanconv.layers import LayerSpec

#: A framework's own tensor type. The core never looks inside one.
Tensor = Any

#: Floating dtypes the core computes in, narrowest first within each family.
FLOATING_DTYPES = ("float16", "bfloat16", "float32", "float64")


@runtime_checkable
class ArrayBackend(Protocol):
    """What an adapter provides. See ``backends/numpy.py`` for the shortest example.

    Examples:
        >>> import chanconv
        >>> isinstance(chanconv.get_adapter("numpy"), ArrayBackend)
        True
    """

    #: Canonical backend name, as used by ``use_backend`` and ``CHANCONV_BACKEND``.
    @property
    def name(self) -> str: ...
    #: Other accepted spellings (``"pytorch"``, ``"tf"``, ``"mx"``).
    @property
    def aliases(self) -> tuple[str, ...]: ...
    #: Import name of the framework; the adapter never imports it before the user has.
    @property
    def framework(self) -> str: ...
    #: The pip extra that installs the framework: ``pip install 'chanconv[<extra>]'``.
    @property
    def extra(self) -> str: ...
    #: d2l's per-framework aliases (``tensor``, ``normal``, ``reduce_sum``, ...), in the
    #: mini-language of :func:`chanconv.d2l.resolve_alias`.
    @property
    def d2l_aliases(self) -> Mapping[str, str]: ...

    def is_tensor(self, x: object) -> bool:
        """Whether ``x`` is this framework's tensor. Called only once the framework is
        imported, and cached per ``type(x)``."""
        ...

    def version(self) -> str:
        """The framework's version string."""
        ...

    # --- Array API standard -------------------------------------------------------------
    def asarray(self, obj: Any, dtype: str | None = None) -> Tensor:
        """A tensor from nested lists (or a tensor of this backend, returned as is)."""
        ...

    def astype(self, x: Tensor, dtype: str) -> Tensor: ...

    def reshape(self, x: Tensor, shape: tuple[int, ...]) -> Tensor: ...

    def permute_dims(self, x: Tensor, axes: tuple[int, ...]) -> Tensor: ...

    def stack(self, arrays: Sequence[Tensor], axis: int = 0) -> Tensor: ...

    def concat(self, arrays: Sequence[Tensor], axis: int = 0) -> Tensor: ...

    def matmul(self, x1: Tensor, x2: Tensor) -> Tensor:
        """Array API ``matmul``, broadcasting over leading dimensions."""
        ...

    def sum(self, x: Tensor, axis: int | tuple[int, ...] | None = None) -> Tensor: ...

    def zeros(self, shape: tuple[int, ...], dtype: str) -> Tensor: ...

    # --- beyond the standard --------------------------------------------------------------
    def shape(self, x: Tensor) -> tuple[int, ...]:
        """The shape as a tuple of Python ints (TensorFlow's is a ``TensorShape``). Inside a
        traced graph a dimension not known until run time may be ``None`` (a ``tf.function``
        input with a ``None`` batch); the core then keeps it symbolic (``-1`` in reshapes,
        :class:`ZerosLike` for zeros) and refuses what needs its value."""
        ...

    def dtype_name(self, x: Tensor) -> str:
        """The standard name of ``x``'s dtype (``"float32"``), whatever the framework."""
        ...

    def to_numpy(self, x: Tensor) -> Any:
        """A NumPy copy of ``x`` (detached from any autograd graph)."""
        ...

    def restore_kind(self, y: Tensor, like: Tensor) -> Tensor:
        """``y`` in the same array kind as the caller's ``like``."""
        ...


@runtime_checkable
class NativeConv2d(Protocol):
    """Optional extension: the framework's own 2-D convolution, used by
    ``algorithm="native"`` and preferred by ``"auto"``.

    Takes x (n, ci, h, w) and k (co, ci/groups, kh, kw) in the backend's working kind and
    one dtype, symmetric zero padding (ph, pw), and returns (n, co, oh, ow), differentiable
    by the framework's autograd. It must give the right answer for every combination the
    core accepts (the core checks arguments first); where the framework's own kernel
    refuses a combination, the adapter works around it rather than raising.

    An adapter with this extension may also set the class attribute
    ``pointwise_matmul = False`` when its framework's convolution beats its matmul on 1x1
    layers; ``auto`` then keeps the convolution there (see
    :func:`chanconv.algorithms.choose_algorithm`). It is read with a default of True, so it is
    not a protocol member.

    Examples:
        >>> import chanconv
        >>> isinstance(chanconv.get_adapter("numpy"), NativeConv2d)  # NumPy has none
        False
    """

    def conv2d_native(
        self,
        x: Tensor,
        k: Tensor,
        *,
        stride: tuple[int, int],
        padding: tuple[int, int],
        dilation: tuple[int, int],
        groups: int,
    ) -> Tensor: ...


@runtime_checkable
class NativeLayers(Protocol):
    """Optional extension: a trainable Conv2D layer that is one of the framework's own
    modules (``torch.nn.Module``, Keras layer, Gluon block), so its optimizers train it.
    Its forward pass must be ``spec.forward(x, weight, bias)``; parameters start from
    ``spec.initial_weight(rng)`` and ``spec.initial_bias(rng)``, and are named ``weight``
    and ``bias`` (Keras: ``kernel`` and ``bias``).

    Examples:
        >>> import chanconv
        >>> isinstance(chanconv.get_adapter("numpy"), NativeLayers)  # Conv2DLayer instead
        False
    """

    def conv2d_layer(self, spec: LayerSpec, rng: random.Random) -> Any: ...


@runtime_checkable
class DeviceList(Protocol):
    """Optional extension: the devices the framework can compute on in this process, in the
    framework's own spelling (``["cpu", "cuda:0"]``), for ``python -m chanconv backends``.
    May import the framework."""

    def devices(self) -> list[str]: ...


@runtime_checkable
class ZerosLike(Protocol):
    """Optional extension, the Array API's ``zeros_like``: zeros of ``x``'s shape and dtype.
    Needed only for tensors whose shape has a dimension unknown until run time (padding and
    strided gradients of a batch of unknown size), where :meth:`ArrayBackend.zeros` cannot
    be given a shape.

    Examples:
        >>> import chanconv
        >>> isinstance(chanconv.get_adapter("numpy"), ZerosLike)
        True
    """

    def zeros_like(self, x: Tensor) -> Tensor: ...
