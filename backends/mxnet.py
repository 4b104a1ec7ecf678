"""MXNet adapter, for both array styles the d2l book uses: ``mx.nd.NDArray`` (older
chapters) and ``mx.np.ndarray``. The core computes in ``mx.np`` and hands each result back in
the caller's kind; the conversion shares memory and ``mxnet.autograd`` sees through it."""

from __future__ import annotations

import importlib
import math
import random
from collections.abc import Sequence
from functools import cached_property, lru_cache
from typing import Any

from chanconv.adapter import Adapter
from chanconv.d2l import NUMPY_D2L_ALIASES
from chanconv.geometry import conv_geometry
from chanconv.layers import LayerSpec, layer_class_on_first_use
from chanconv.protocol import Tensor
from chanconv.workarounds import NativeLimit

# d2l's mxnet tab is NumPy's spelling under ``mx.np``.
MXNET_D2L_ALIASES = {
    **{k: v if v.startswith(".") else f"np.{v}" for k, v in NUMPY_D2L_ALIASES.items()},
    "to": ".as_in_context",
}


class MxnetBackend(Adapter):
    name = "mxnet"
    aliases = ("mx",)
    framework = "mxnet"
    extra = "mxnet"
    d2l_aliases = MXNET_D2L_ALIASES
    # Its bundled BLAS reaches half the machine's SGEMM peak; its convolution does better.
    pointwise_matmul = False

    def is_tensor(self, x: object) -> bool:
        # mx.np.ndarray subclasses mx.nd.NDArray, so this accepts both styles.
        return isinstance(x, self.fw.nd.NDArray)

    def asarray(self, obj: Any, dtype: str | None = None) -> Tensor:
        if isinstance(obj, self.fw.nd.NDArray):
            arr = obj if isinstance(obj, self._np_ndarray) else self._as_np(obj)
            return arr if dtype is None else arr.astype(dtype)
        return self.fw.np.array(obj, dtype=dtype)

    def astype(self, x: Tensor, dtype: str) -> Tensor:
        return x.astype(dtype)

    def reshape(self, x: Tensor, shape: tuple[int, ...]) -> Tensor:
        if type(x) is not self._np_ndarray or 0 in shape or -1 in shape:
            return self.fw.np.reshape(x, shape)  # symbols, MXNet's special values
        if math.prod(shape) != x.size:
            raise ValueError(f"cannot reshape an array of shape {x.shape} into {shape}")
        # MXNet's C reshape: a view, recorded for autograd like the operator, in one C call
        # instead of an operator invocation (about 4 us against 35 us here, per call, and
        # the section's example makes three).
        base = self._mx_base
        return self._view(x, base._LIB.MXNDArrayReshape64, len(shape),
                          base.c_array(self._ctypes.c_int64, shape), False)  # fmt: skip

    def _as_np(self, x: Any) -> Any:
        """An ``mx.nd`` array as an ``mx.np`` one sharing its memory, as ``as_np_ndarray``
        makes it; a dense array (its own class, never a sparse subclass) in one C call,
        without that method's storage query and import (a third of a small call's cost)."""
        if type(x) is not self._nd_ndarray:
            return x.as_np_ndarray()  # sparse: MXNet's own refusal
        return self._view(x, self._mx_base._LIB.MXShallowCopyNDArray)

    def _view(self, x: Any, c_function: Any, *arguments: Any) -> Any:
        """An ``mx.np`` array on the new handle that MXNet's C function makes from x's
        (called as ``c_function(x.handle, *arguments, &handle)``)."""
        base = self._mx_base
        handle = base.NDArrayHandle()
        base.check_call(c_function(x.handle, *arguments, self._ctypes.byref(handle)))
        return self._np_ndarray(handle=handle, writable=x.writable)

    @cached_property
    def _nd_ndarray(self) -> Any:
        return self.fw.nd.NDArray

    @cached_property
    def _np_ndarray(self) -> Any:
        return self.fw.np.ndarray

    @cached_property
    def _mx_base(self) -> Any:
        return importlib.import_module("mxnet.base")

    @cached_property
    def _ctypes(self) -> Any:
        return importlib.import_module("ctypes")

    def permute_dims(self, x: Tensor, axes: tuple[int, ...]) -> Tensor:
        return self.fw.np.transpose(x, axes)

    def stack(self, arrays: Sequence[Tensor], axis: int = 0) -> Tensor:
        return self.fw.np.stack(list(arrays), axis=axis)

    def concat(self, arrays: Sequence[Tensor], axis: int = 0) -> Tensor:
        return self.fw.np.concatenate(list(arrays), axis=axis)

    def matmul(self, x1: Tensor, x2: Tensor) -> Tensor:
        if x1.dtype == self.fw.np.float16:
            # MXNet's CPU matmul refuses float16: compute in float32, round once at the end.
            return self.fw.np.matmul(x1.astype("float32"), x2.astype("float32")).astype("float16")
        return self.fw.np.matmul(x1, x2)

    def sum(self, x: Tensor, axis: int | tuple[int, ...] | None = None) -> Tensor:
        return self.fw.np.sum(x, axis=axis)

    def zeros(self, shape: tuple[int, ...], dtype: str) -> Tensor:
        return self.fw.np.zeros(shape, dtype=dtype)

    def native_limits(self) -> Sequence[NativeLimit]:
        # The fuzz campaign (chanconv.testing.test_fuzz) found no geometry MXNet 1.9.1's
        # convolution gets wrong or refuses.
        return ()

    def zeros_like(self, x: Tensor) -> Tensor:
        return self.fw.np.zeros_like(x)

    def conv2d_native(
        self, x: Tensor, k: Tensor, *, stride: tuple[int, int], padding: tuple[int, int],
        dilation: tuple[int, int], groups: int,
    ) -> Tensor:  # fmt: skip
        co, _, kh, kw = k.shape
        half = x.dtype == self._float16
        if half:  # MXNet's CPU convolution has no float16 kernel either
            x, k = x.astype("float32"), k.astype("float32")
        parameters = _convolution_parameters(co, kh, kw, stride, padding, dilation, groups)
        y = self._convolution(x, k, None, **parameters)
        return y.astype("float16") if half else y

    @cached_property
    def _float16(self) -> Any:
        return self.fw.np.float16

    @cached_property
    def _convolution(self) -> Any:
        return self.fw.npx.convolution

    def conv2d_layer(self, spec: LayerSpec, rng: random.Random) -> Any:
        return _conv2d_class()(spec, rng)

    def dtype_name(self, x: Tensor) -> str:
        import numpy  # MXNet depends on NumPy and describes dtypes with its types

        return str(numpy.dtype(x.dtype).name)

    def to_numpy(self, x: Tensor) -> Any:
        return x.asnumpy()

    def devices(self) -> list[str]:
        return ["cpu(0)", *(f"gpu({i})" for i in range(self.fw.context.num_gpus()))]

    def restore_kind(self, y: Tensor, like: Tensor) -> Tensor:
        if isinstance(like, self.fw.np.ndarray):
            return y
        return y.as_nd_ndarray()


def _gluon_conv2d() -> Any:
    import mxnet as mx

    class Conv2D(mx.gluon.HybridBlock):  # type: ignore[misc]
        """chanconv's Conv2D as a Gluon HybridBlock, initialized on construction:
        parameters ``weight`` and ``bias``. Imperatively it runs ``chanconv.conv2d``; in a
        hybridized (symbolic) graph, where shapes are hidden from Python, it runs MXNet's
        own Convolution, the ``native`` algorithm, which gives the same result."""

        def __init__(self, spec: LayerSpec, rng: random.Random | None = None,
                     **kwargs: Any) -> None:  # fmt: skip
            super().__init__(**kwargs)
            self.spec = spec
            rng = rng or random.Random(spec.seed)
            constant = mx.init.Constant
            with self.name_scope():
                self.weight = self.params.get(
                    "weight", shape=spec.kernel_shape,
                    init=constant(mx.nd.array(spec.initial_weight(rng))),
                )  # fmt: skip
                self.bias = None
                if spec.bias:
                    self.bias = self.params.get(
                        "bias", shape=(spec.out_channels,),
                        init=constant(mx.nd.array(spec.initial_bias(rng))),
                    )  # fmt: skip
            self.initialize()

        def hybrid_forward(self, F: Any, x: Any, weight: Any, bias: Any = None) -> Any:
            if isinstance(x, mx.sym.Symbol):
                return self._symbolic(F, x, weight, bias)
            return self.spec.forward(x, weight, bias)

        def _symbolic(self, F: Any, x: Any, weight: Any, bias: Any) -> Any:
            s = self.spec
            g = conv_geometry((1, s.in_channels, *s._smallest), s.kernel_shape,
                              stride=s.stride, padding=s.padding, dilation=s.dilation,
                              groups=s.groups)  # fmt: skip
            if g.symmetric_padding is None or (isinstance(s.padding, str)
                                               and s.padding.lower() == "same"):  # fmt: skip
                raise ValueError(
                    "Conv2D: padding='same' depends on the input's size, which a hybridized "
                    "MXNet graph hides; give the padding as numbers to hybridize this layer"
                )
            if s.data_format != "channels_first":
                raise ValueError(
                    "Conv2D: MXNet's CPU Convolution takes NCHW only; a hybridized block "
                    "needs data_format='channels_first'"
                )
            conv = F.Convolution
            if isinstance(x, mx.sym.np._Symbol):  # the mx.np style's graph: its parameters too
                conv, weight = F.npx.convolution, weight.as_np_ndarray()
                bias = None if bias is None else bias.as_np_ndarray()
            return conv(x, weight, bias, kernel=s.kernel_size, stride=g.stride,
                        dilate=g.dilation, pad=g.symmetric_padding, num_filter=s.out_channels,
                        num_group=s.groups, no_bias=bias is None, layout="NCHW")  # fmt: skip

    return Conv2D


@lru_cache(maxsize=1024)
def _convolution_parameters(
    co: int, kh: int, kw: int, stride: tuple[int, int], padding: tuple[int, int],
    dilation: tuple[int, int], groups: int,
) -> dict[str, Any]:  # fmt: skip
    """The Convolution operator's parameters, those at MXNet's default left out: MXNet
    parses every parameter from a string on each call (about 4 us apiece here), which on
    the section's small example is most of chanconv's cost over a direct call. Made
    once per setting; the caller only unpacks the mapping."""
    parameters: dict[str, Any] = {"kernel": (kh, kw), "num_filter": co, "no_bias": True}
    for name, value, default in (("stride", stride, (1, 1)), ("dilate", dilation, (1, 1)),
                                 ("pad", padding, (0, 0)), ("num_group", groups, 1)):  # fmt: skip
        if value != default:
            parameters[name] = value
    return parameters


# Made on first use, so that importing this adapter imports no framework; then the
# module's attribute chanconv.backends.mxnet.Conv2D.
_conv2d_class, __getattr__ = layer_class_on_first_use(__name__, _gluon_conv2d)
