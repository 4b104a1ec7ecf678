"""The thin tensor protocol that the backend-neutral core is written against.

Every framework adapter (``chanconv.backends.<name>``) implements
[`ArrayBackend`][chanconv.protocol.ArrayBackend].
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pathlib import Path

    from chanconv.layers import LayerSpec
    from chanconv.workarounds import NativeLimit

#: A framework's own tensor type. The core never looks inside one.
Tensor = Any

#: Floating dtypes the core computes in, narrowest first within each family.
FLOATING_DTYPES = ("float16", "bfloat16", "float32", "float64")


@runtime_checkable
class ArrayBackend(Protocol):
    """What an adapter must provide: identity and the compute primitives. See
    ``backends/numpy.py`` for the shortest example. Everything else is one of the optional
    extensions below, declared by implementing it and found with ``isinstance`` (cached per
    adapter class by [implements][chanconv.protocol.implements]).

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
        ``ZerosLike`` for zeros) and refuses what needs its value."""
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
    core accepts (the core checks arguments first), except the combinations it declares
    through [NativeLimits][chanconv.protocol.NativeLimits]: where the framework's own
    kernel is wrong or refuses, the adapter says so there and the core never sends it those.

    An adapter with this extension may also implement
    [PointwiseHint][chanconv.protocol.PointwiseHint] when its framework's convolution
    beats its matmul on 1x1 layers.

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
class NativeChannelsLast(Protocol):
    """Optional extension of an adapter with [NativeConv2d][chanconv.protocol.NativeConv2d]
    whose framework convolves channels-last tensors natively (TensorFlow's NHWC kernels):
    ``conv2d(..., data_format="channels_last")`` then hands X to it as the user gave it,
    with no permute of X or of the result.

    Takes x (n, h, w, ci) and k (co, ci/groups, kh, kw) (the book's layout, as everywhere
    in chanconv) in the backend's working kind and one dtype, and zero padding per side,
    ``pads = (top, bottom, left, right)`` (asymmetric for ``"same"`` with an even total);
    returns (n, oh, ow, co), differentiable by the framework's autograd. ``h`` and ``w``
    (and n) may be unknown until run time inside a traced graph. The same
    [NativeLimits][chanconv.protocol.NativeLimits] apply as to ``conv2d_native``: the core
    sends neither method a geometry they declare.

    Examples:
        >>> import chanconv
        >>> isinstance(chanconv.get_adapter("numpy"), NativeChannelsLast)
        False
    """

    def conv2d_native_channels_last(
        self,
        x: Tensor,
        k: Tensor,
        *,
        stride: tuple[int, int],
        pads: tuple[int, int, int, int],
        dilation: tuple[int, int],
        groups: int,
    ) -> Tensor: ...


@runtime_checkable
class NativeLimits(Protocol):
    """Optional extension of an adapter with [NativeConv2d][chanconv.protocol.NativeConv2d]:
    the geometries ``conv2d_native`` must not be given. An extension of its own, so that an
    adapter which declares no limits keeps its native convolution.

    Examples:
        >>> import chanconv
        >>> isinstance(chanconv.get_adapter("numpy"), NativeLimits)  # no native kernel
        False
    """

    def native_limits(self) -> Sequence[NativeLimit]:
        """The geometries ``conv2d_native`` must not be given: where the framework's
        kernel is known to compute a wrong result or to refuse, with the framework's
        version and the condition (docs/known-bugs.md). Each ``applies`` sees the canonical
        geometry (``chanconv.geometry.canonical_geometry``). The core then runs
        ``im2col`` instead, for ``auto`` and for an explicit ``native`` alike, so
        ``conv2d_native`` never needs to call back into the core. ``()`` when none."""
        ...


@runtime_checkable
class FourierCalibration(Protocol):
    """Optional extension: this backend's calibration of the ``fourier`` algorithm's cost
    model. ``auto`` picks ``fourier`` when the direct multiplication count is at least
    ``fourier_margin`` times the model's cost of fourier
    (``chanconv.fourier.fourier_cost``); an adapter without this extension gets
    ``chanconv.algorithms.FOURIER_MARGIN``. A framework whose own convolution is fast
    declares a larger margin; ``float("inf")`` keeps ``auto`` off fourier altogether.
    Measured per backend in docs/performance.md.

    Examples:
        >>> import chanconv
        >>> isinstance(chanconv.get_adapter("numpy"), FourierCalibration)  # the default
        False
    """

    @property
    def fourier_margin(self) -> float: ...


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
class WrapsOperands(Protocol):
    """Optional extension: the names of backends whose tensors the adapter takes as
    operands beside its own (converting them with its ``asarray``), so a call mixing them
    is its call rather than a ``TypeError``. The Dask adapter wraps NumPy: a NumPy kernel
    beside a Dask image becomes a one-chunk Dask array. Mixing any other framework stays a
    ``TypeError`` naming both."""

    @property
    def wraps(self) -> tuple[str, ...]: ...


@runtime_checkable
class PointwiseHint(Protocol):
    """Optional extension, a speed hint for adapters with
    [NativeConv2d][chanconv.protocol.NativeConv2d]: ``pointwise_matmul = False`` when the
    framework's convolution beats its matmul on 1x1 layers, so ``auto`` keeps the
    convolution there (see ``chanconv.algorithms.choose_algorithm``).
    Without this extension ``auto`` uses the matmul."""

    @property
    def pointwise_matmul(self) -> bool: ...


@runtime_checkable
class PipExtra(Protocol):
    """Optional extension, metadata of the built-in adapters: the extra of chanconv that
    installs the framework, ``pip install 'chanconv[<extra>]'``. A third-party adapter
    does without it: its install command names the distribution that registered it (see
    ``chanconv.registry.install_command``)."""

    @property
    def extra(self) -> str: ...


@runtime_checkable
class D2lAliases(Protocol):
    """Optional extension: d2l's per-framework aliases (``tensor``, ``normal``,
    ``reduce_sum``, ...), in the mini-language of
    ``chanconv.d2l.resolve_alias``, so that ``from chanconv import <name> as
    d2l`` offers them. Without it the namespace holds chanconv's operations only."""

    @property
    def d2l_aliases(self) -> Mapping[str, str]: ...


class FrameworkHelpers(Protocol):
    """What the shipped conformance suite (``chanconv.testing``) needs to talk to a
    framework directly, never through chanconv: an adapter's own code cannot then hide
    a bug by sitting on both sides of an assertion. The built-in backends have theirs in
    ``chanconv.testing.frameworks``; a third-party adapter supplies them through
    [ConformanceHelpers][chanconv.protocol.ConformanceHelpers].

    Tensors go in and out as NumPy arrays (``to_numpy`` keeps the tensor's own dtype, with
    bfloat16 read as float32).

    Two optional groups of members, each its own protocol so that a framework without the
    capability need not pretend to have it, widen the suite's coverage when present:
    [CompiledModeHelpers][chanconv.protocol.CompiledModeHelpers] (the framework's compilers,
    for ``test_compiled.py``) and [ModelHelpers][chanconv.protocol.ModelHelpers] (its layer
    class and model machinery, for ``test_layer_modes.py``). Without them the suite checks
    that the backend has no compiler, and runs its layer modes on chanconv's plain layer."""

    #: ``(label, make)`` for each array kind a user may pass, the framework's default
    #: first; ``make(numpy_array)`` builds one in the array's dtype.
    def kinds(self) -> Sequence[tuple[str, Callable[[Any], Tensor]]]: ...

    #: Every type a result of this framework may have.
    def result_types(self) -> tuple[type, ...]: ...

    def to_numpy(self, t: Tensor) -> Any: ...

    def dtype_name(self, t: Tensor) -> str: ...

    def stack(self, tensors: Sequence[Tensor]) -> Tensor: ...

    def matmul(self, a: Tensor, b: Tensor) -> Tensor: ...

    def weighted_sum(self, y: Tensor, g: Any) -> Tensor:
        """``sum(y * g)`` by the framework, ``g`` a NumPy array in ``y``'s dtype."""
        ...

    def gradients(
        self, make: Callable[[Any], Tensor], fn: Callable[..., Tensor], arrays: Sequence[Any]
    ) -> list[Any]:
        """The gradients of the scalar ``fn(*tensors)``, tensors made by ``make`` from
        ``arrays``, by the framework's own autograd, as NumPy arrays."""
        ...

    def conv2d(
        self, x: Tensor, k: Tensor, b: Tensor | None, stride: tuple[int, int],
        padding: tuple[int, int], dilation: tuple[int, int], groups: int,
    ) -> Tensor | None:  # fmt: skip
        """The framework's own convolution (NCHW, symmetric padding), or None where it has
        none for the case."""
        ...

    #: The class every ``chanconv.Conv2D`` of this framework is an instance of.
    def layer_base(self) -> type: ...

    def layer_weight(self, layer: Any) -> Any:
        """A layer's kernel as a NumPy array, read the framework's way."""
        ...

    def call_layer(self, layer: Any, x: Tensor) -> Tensor:
        """The layer applied to ``x`` the framework's way (``layer(x)``, or Flax's
        ``init`` then ``apply``)."""
        ...


@runtime_checkable
class CompiledModeHelpers(Protocol):
    """Optional members of a third-party [FrameworkHelpers][chanconv.protocol.FrameworkHelpers]:
    the framework's compilers, run by the suite's compiled modes as the built-in backends'
    ``tf.function`` and ``torch.compile`` are (``chanconv.testing.compiled``)."""

    def compiled_modes(self) -> tuple[str, ...]:
        """The names of the framework's compiled modes (JAX: ``("jax.jit",)``)."""
        ...

    def compile_function(
        self, mode: str, fn: Callable[..., Any], shapes: Sequence[tuple[int, ...]],
        batched: Sequence[bool],
    ) -> Callable[..., Any]:  # fmt: skip
        """``fn`` compiled by ``mode``; ``shapes`` are the arguments' shapes and ``batched``
        says which leading dimensions a compiler with static signatures should leave
        unknown (a compiler that retraces per shape, as ``jax.jit``, may ignore both)."""
        ...


@dataclass(frozen=True)
class ModelRun:
    """What [ModelHelpers.model_round_trip][chanconv.protocol.ModelHelpers.model_round_trip]
    observed, as NumPy arrays, for the suite's assertions."""

    #: The model's prediction before training.
    eager: Any
    #: The Conv2D kernel before and after one training step, and its bias after it.
    weight_before: Any
    weight: Any
    bias: Any
    #: The trained Conv2D's own output on the input (checked against the float64 oracle).
    features: Any
    #: The trained model's prediction; after saving and loading it into a fresh model; and
    #: by the exported artefact, loaded back from its file.
    trained: Any
    reloaded: Any
    exported: Any


@runtime_checkable
class ModelHelpers(Protocol):
    """Optional members of a third-party [FrameworkHelpers][chanconv.protocol.FrameworkHelpers]:
    the framework's layer class and model machinery, for the suite's layer modes."""

    def layer_class_path(self) -> str:
        """``"module:Class"``, the stable import path of the framework's Conv2D class."""
        ...

    def layer_bias(self, layer: Any) -> Any:
        """A layer's bias as a NumPy array, read the framework's way."""
        ...

    def model_round_trip(self, layer: Any, x: Any, directory: Path, functional: bool) -> ModelRun:
        """The framework's model machinery end to end around ``layer`` (a fresh
        ``chanconv.Conv2D(3, 4, 3, padding=1)``) on the NumPy batch ``x`` (4, 3, 8, 8): a
        model of it, flattened, then a dense layer of 2 (``functional``: the framework's
        functional form; else its sequential container); one compiled training step; saved
        to and loaded from a file in ``directory``; exported and the export loaded back."""
        ...


@runtime_checkable
class ConformanceHelpers(Protocol):
    """Optional extension of a third-party adapter: the framework helpers the shipped
    conformance suite needs (see [FrameworkHelpers][chanconv.protocol.FrameworkHelpers]).
    May import the framework; called once, at the start of a conformance session, and may
    configure the framework as the suite needs (the jax plugin turns on 64-bit mode, since
    the suite tests float64)."""

    def conformance_helpers(self) -> FrameworkHelpers: ...


@runtime_checkable
class Compiler(Protocol):
    """Optional extension: the framework's compiler and its wait for a result computed
    asynchronously, so that the benchmarks (``chanconv bench``) time chanconv and the
    framework's own convolution both compiled (JAX: ``jax.jit`` and ``block_until_ready``)."""

    def compile(self, fn: Callable[..., Tensor]) -> Callable[..., Tensor]: ...

    def wait(self, y: Tensor) -> None: ...


_implemented: dict[tuple[type, type], bool] = {}


def implements(adapter: object, extension: type) -> bool:
    """Whether ``adapter`` implements the optional ``extension``, cached per adapter class:
    a runtime protocol check costs tens of microseconds, more than a small convolution.

    Examples:
        >>> import chanconv
        >>> implements(chanconv.get_adapter("numpy"), NativeConv2d)
        False
        >>> implements(chanconv.get_adapter("numpy"), D2lAliases)
        True
    """
    key = (type(adapter), extension)
    found = _implemented.get(key)
    if found is None:
        found = _implemented[key] = isinstance(adapter, extension)
    return found


@runtime_checkable
class InPlaceWrites(Protocol):
    """Optional extension: writing into preallocated tensors, for frameworks whose tensors
    are plain mutable buffers and whose result needs no autograd graph (NumPy).

    With it, ``im2col`` unfolds every window straight from the unpadded input into one
    reused, zero-bordered column buffer and multiplies into slices of one preallocated
    output, and ``conv2d_vjp`` folds the column gradients back by in-place accumulation:
    no padded copy, no tile joins, no fresh pages per call. Adapters without it (the
    frameworks whose autograd records every operation) run the same algorithms by
    ``stack``, ``concat`` and ``+``, which their autograd differentiates.

    ``dst`` is always a view obtained from a tensor this extension allocated, by basic
    slicing, ``reshape`` to a shape the view's strides allow, or ``permute_dims``; writes
    through it must land in that tensor. The three methods may be called from several
    threads at once on disjoint views, and should release the interpreter lock.

    Examples:
        >>> import chanconv
        >>> isinstance(chanconv.get_adapter("numpy"), InPlaceWrites)
        True
    """

    def empty(self, shape: tuple[int, ...], dtype: str) -> Tensor:
        """An uninitialized tensor (its contents are written before they are read)."""
        ...

    def write(self, dst: Tensor, src: Tensor | float, *, accumulate: bool = False) -> None:
        """``dst[...] = src`` (a tensor of dst's shape, or a scalar), or ``dst += src``."""
        ...

    def matmul_into(self, x1: Tensor, x2: Tensor, out: Tensor) -> None:
        """``out[...] = matmul(x1, x2)``, with no temporary of out's size."""
        ...


@runtime_checkable
class ZerosLike(Protocol):
    """Optional extension, the Array API's ``zeros_like``: zeros of ``x``'s shape and dtype.
    Needed only for tensors whose shape has a dimension unknown until run time (padding and
    strided gradients of a batch of unknown size), where ``ArrayBackend.zeros`` cannot
    be given a shape.

    Examples:
        >>> import chanconv
        >>> isinstance(chanconv.get_adapter("numpy"), ZerosLike)
        True
    """

    def zeros_like(self, x: Tensor) -> Tensor: ...
