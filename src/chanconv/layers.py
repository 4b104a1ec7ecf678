"""A trainable convolution layer on every backend: ``chanconv.Conv2D``.

Where the framework has a module system the layer is one of its own modules (a
``torch.nn.Module``, a Keras layer, a Gluon block), built by the adapter through the optional
protocol extension [`chanconv.protocol.NativeLayers`][chanconv.protocol.NativeLayers], so the
framework's optimizers
train it. Elsewhere (NumPy) it is [`Conv2DLayer`][chanconv.Conv2DLayer], a plain object with an
explicit
``backward`` (through ``conv2d_vjp``) and an SGD step. Either way the forward pass is
``chanconv.conv2d`` and the settings live in one ``LayerSpec``.
"""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chanconv.algorithms import check_algorithm
from chanconv.fourier import SpectrumCache
from chanconv.geometry import IntPair, Padding, as_pair, conv_geometry
from chanconv.operations import check_data_format, conv2d, conv2d_vjp
from chanconv.protocol import ArrayBackend, NativeLayers, Tensor
from chanconv.registry import active_backend


@dataclass(frozen=True)
class LayerSpec:
    """Everything that defines a Conv2D layer except its parameter values."""

    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    stride: IntPair = 1
    padding: Padding = 0
    dilation: IntPair = 1
    groups: int = 1
    bias: bool = True
    algorithm: str = "auto"
    dtype: str = "float32"
    #: The seed the parameters are drawn from; None: layers with the framework's own
    #: initializers (Keras) follow its global seed (``keras.utils.set_random_seed``).
    seed: int | None = None
    #: "channels_first" (X (n, ci, h, w)) or "channels_last" (X (n, h, w, ci)).
    data_format: str = "channels_first"

    @property
    def kernel_shape(self) -> tuple[int, int, int, int]:
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)

    def check(self) -> None:
        """ValueError for settings no input could satisfy, before any tensor exists."""
        check_algorithm(self.algorithm, None, "Conv2D")
        check_data_format(self.data_format, "Conv2D")
        kh, kw = self.kernel_size
        dh, dw = as_pair("dilation", self.dilation)
        if min(self.in_channels, self.out_channels, kh, kw) < 1:
            raise ValueError(f"Conv2D: channels and kernel size must be positive, got {self}")
        # The smallest input the kernel fits settles every other rule once.
        smallest = (1, self.in_channels, dh * (kh - 1) + 1, dw * (kw - 1) + 1)
        conv_geometry(smallest, self.kernel_shape, stride=self.stride, padding=self.padding,
                      dilation=self.dilation, groups=self.groups, op="Conv2D")  # fmt: skip

    @property
    def init_bound(self) -> float:
        """PyTorch's default initialization bound, 1/sqrt(fan_in)."""
        _, cig, kh, kw = self.kernel_shape
        return 1 / math.sqrt(cig * kh * kw)

    def output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        """The layer's output shape for ``input_shape`` ((n, ci, h, w) or (ci, h, w)), any of
        n, h, w possibly None (unknown until run time), as symbolic model building asks."""
        shape = tuple(input_shape)
        if len(shape) not in (3, 4):
            raise ValueError(f"Conv2D: input shape {shape} must be (n, ci, h, w) or (ci, h, w)")
        if self.data_format == "channels_last":
            first = self._first((*shape[:-3], shape[-1], *shape[-3:-1]))
            return (*first[:-3], *first[-2:], first[-3])
        return self._first(shape)

    def _first(self, shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        batched = shape if len(shape) == 4 else (1, *shape)
        n, ci, h, w = batched
        if ci is not None and ci != self.in_channels:
            raise ValueError(
                f"Conv2D: the input has {ci} channels (shape {shape}) but the layer was made "
                f"for {self.in_channels}"
            )
        # Unknown extents: work the output out from a stand-in, then forget it again.
        probe = (n, self.in_channels, h or self._smallest[0], w or self._smallest[1])
        g = conv_geometry(probe, self.kernel_shape, stride=self.stride, padding=self.padding,
                          dilation=self.dilation, groups=self.groups, op="Conv2D")  # fmt: skip
        out = (n, self.out_channels, g.oh if h is not None else None,
               g.ow if w is not None else None)  # fmt: skip
        return out if len(shape) == 4 else out[1:]

    @property
    def _smallest(self) -> tuple[int, int]:
        kh, kw = self.kernel_size
        dh, dw = as_pair("dilation", self.dilation)
        return dh * (kh - 1) + 1, dw * (kw - 1) + 1

    def initial_weight(self, rng: random.Random) -> list[Any]:
        """PyTorch's default: uniform in +-1/sqrt(fan_in), fan_in = ci/groups * kh * kw."""
        co, cig, kh, kw = self.kernel_shape
        bound = 1 / math.sqrt(cig * kh * kw)
        return [[[[rng.uniform(-bound, bound) for _ in range(kw)] for _ in range(kh)]
                 for _ in range(cig)] for _ in range(co)]  # fmt: skip

    def initial_bias(self, rng: random.Random) -> list[float]:
        co, cig, kh, kw = self.kernel_shape
        bound = 1 / math.sqrt(cig * kh * kw)
        return [rng.uniform(-bound, bound) for _ in range(co)]

    def forward(self, x: Tensor, weight: Tensor, bias: Tensor | None,
                spectrum_cache: SpectrumCache | None = None) -> Tensor:  # fmt: skip
        return conv2d(x, weight, bias, stride=self.stride, padding=self.padding,
                      dilation=self.dilation, groups=self.groups, algorithm=self.algorithm,
                      spectrum_cache=spectrum_cache, data_format=self.data_format)  # fmt: skip


class Conv2DLayer:
    """Conv2D for backends without a module system: call it, then ``backward(dY)`` fills
    ``weight_grad`` and ``bias_grad``, and ``sgd_step(lr)`` updates the parameters.

    Examples:
        >>> layer = Conv2D(1, 1, 2, bias=False, seed=0)  # a Conv2DLayer on NumPy
        >>> y = layer([[[1, 2], [3, 4]]])
        >>> dx = layer.backward(y * 0 + 1)  # dY = 1: dK is the input itself
        >>> layer.weight_grad.tolist()
        [[[[1.0, 2.0], [3.0, 4.0]]]]
        >>> layer.sgd_step(0.1)
    """

    def __init__(self, spec: LayerSpec, backend: ArrayBackend, rng: random.Random) -> None:
        self.spec = spec
        self.weight = backend.asarray(spec.initial_weight(rng), spec.dtype)
        self.bias = backend.asarray(spec.initial_bias(rng), spec.dtype) if spec.bias else None
        # Tensor is Any: None until the first backward.
        self.weight_grad: Tensor = None
        self.bias_grad: Tensor = None
        self._input: Tensor | None = None
        # No autograd reads this layer's forward (backward recomputes from the weights),
        # so the fourier kernel spectrum may be kept; it is checked against the weights'
        # contents on every call, so sgd_step or an in-place edit is never missed.
        self._spectra = SpectrumCache()

    def __call__(self, x: Tensor) -> Tensor:
        self._input = x
        return self.spec.forward(x, self.weight, self.bias, self._spectra)

    def backward(self, dy: Tensor) -> Tensor:
        """Gradients for the last call's input; returns dX."""
        if self._input is None:
            raise RuntimeError("Conv2DLayer.backward needs a forward call first")
        s = self.spec
        dx, self.weight_grad, self.bias_grad = conv2d_vjp(
            self._input, self.weight, dy, bias=self.bias, stride=s.stride, padding=s.padding,
            dilation=s.dilation, groups=s.groups, data_format=s.data_format,
        )  # fmt: skip
        return dx

    def parameters(self) -> list[Tensor]:
        return [self.weight] if self.bias is None else [self.weight, self.bias]

    def sgd_step(self, lr: float) -> None:
        """One step of plain gradient descent with the gradients of the last backward."""
        if self.weight_grad is None:
            raise RuntimeError("Conv2DLayer.sgd_step needs a backward call first")
        self.weight = self.weight - lr * self.weight_grad
        if self.bias is not None:
            self.bias = self.bias - lr * self.bias_grad


def Conv2D(
    in_channels: int,
    out_channels: int,
    kernel_size: IntPair,
    *,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    bias: bool = True,
    algorithm: str = "auto",
    seed: int | None = None,
    data_format: str = "channels_first",
) -> Any:
    """A trainable 2-D convolution layer of the active backend: a ``torch.nn.Module``, a
    Keras layer, a Gluon block, or for NumPy a [`Conv2DLayer`][chanconv.Conv2DLayer].
    Parameters start as PyTorch's do (uniform in +-1/sqrt(fan_in)), drawn from ``seed``.
    Its forward pass is ``chanconv.conv2d`` with the settings below.

    Args:
        in_channels: ci, the input's channel count (at least 1, divisible by ``groups``).
        out_channels: co, the output's channel count (at least 1, divisible by
            ``groups``).
        kernel_size: The kernel's (kh, kw), or one int for a square kernel; each at least 1.
            The weight has shape (co, ci/groups, kh, kw).
        stride: The step between windows: an int or an (sh, sw) pair, each at least 1.
        padding: An int or a (ph, pw) pair of zeros added on both sides (not negative),
            ``"valid"`` or ``"same"``, as in ``conv2d``.
        dilation: The spacing between kernel taps: an int or a (dh, dw) pair, each at
            least 1.
        groups: The number of channel groups, dividing both channel counts.
        bias: Whether the layer has a (co,) bias parameter.
        algorithm: The ``conv2d`` algorithm of the forward pass: ``"auto"`` (the
            default), ``"direct"``, ``"im2col"``, ``"native"`` or ``"fourier"``.
        seed: The seed of the initial weight and bias; None (the default) draws them from
            an unseeded generator, and layers with the framework's own initializers (Keras)
            follow its global seed (``keras.utils.set_random_seed``).
        data_format: ``"channels_first"`` (the default: inputs (n, ci, h, w) or
            (ci, h, w)) or ``"channels_last"`` (inputs (n, h, w, ci) or (h, w, ci), as
            Keras lays them out).

    Returns:
        The layer, of the active backend's own kind (or a
            [`Conv2DLayer`][chanconv.Conv2DLayer] where the backend has no module system). It
            is called on a tensor or nested lists as above and returns the convolution's output.

    Raises:
        TypeError: ``kernel_size``, ``stride``, ``padding``, ``dilation`` or ``groups``
            has the wrong type.
        ValueError: A channel count or kernel size below 1, a stride, dilation or group
            count below 1, ``groups`` not dividing both channel counts, a negative or
            unknown padding, or an unknown ``algorithm`` or ``data_format``: checked before
            any parameter is made.
        ImportError: The active backend's framework is not installed.

    Examples:
        >>> layer = Conv2D(2, 3, 2, seed=0)   # on NumPy, the default backend
        >>> layer([[[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]]).shape
        (3, 2, 2)
    """
    spec = LayerSpec(in_channels, out_channels, as_pair("kernel_size", kernel_size), stride,
                     padding, dilation, groups, bias, algorithm, seed=seed,
                     data_format=data_format)  # fmt: skip
    spec.check()
    backend = active_backend()
    rng = random.Random(seed)
    if isinstance(backend, NativeLayers):
        return backend.conv2d_layer(spec, rng)
    return Conv2DLayer(spec, backend, rng)


def layer_class_on_first_use(
    module: str, make: Callable[[], type]
) -> tuple[Callable[[], Any], Callable[[str], Any]]:
    """For an adapter module whose ``Conv2D`` subclasses its framework's layer base, and so
    can only be made once the framework is imported: ``(get, module_getattr)``. ``get()``
    makes the class on first use, names it ``<module>.Conv2D`` and stores it as that
    module's attribute, so that pickling, ``isinstance``, serialization registries and the
    API docs find it at a stable import path; ``module_getattr`` is the module's
    ``__getattr__``, so that importing the adapter imports no framework."""

    def get() -> Any:
        namespace = sys.modules[module].__dict__
        cls = namespace.get("Conv2D")
        if cls is None:
            cls = make()
            cls.__module__, cls.__qualname__ = module, "Conv2D"
            namespace["Conv2D"] = cls
        return cls

    def module_getattr(name: str) -> Any:
        if name == "Conv2D":
            return get()
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return get, module_getattr
