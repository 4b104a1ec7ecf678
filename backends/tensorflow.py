"""TensorFlow adapter. Accepts ``tf.Tensor`` and ``tf.Variable``; ``tf.GradientTape`` sees
through every operation."""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import cache
from typing import Any

from chanconv.adapter import Adapter
from chanconv.geometry import ConvGeometry
from chanconv.layers import LayerSpec
from chanconv.protocol import Tensor
from chanconv.workarounds import NativeLimit

# As in d2l's tensorflow tab; note ``normal`` takes (shape, mean, stddev) here.
TENSORFLOW_D2L_ALIASES = {
    "ones": "ones", "zeros": "zeros", "tensor": "constant", "arange": "range",
    "meshgrid": "meshgrid", "sin": "sin", "sinh": "sinh", "cos": "cos", "cosh": "cosh",
    "tanh": "tanh", "linspace": "linspace", "exp": "exp", "log": "math.log",
    "normal": "random.normal", "rand": "random.uniform", "matmul": "matmul",
    "int32": "int32", "float32": "float32", "concat": "concat", "stack": "stack",
    "abs": "abs", "eye": "eye", "reshape": "reshape", "reduce_sum": "reduce_sum",
    "argmax": "argmax", "astype": "cast", "transpose": "transpose",
}  # fmt: skip


def _dilated(g: ConvGeometry, dtype: str) -> bool:
    return max(g.dilation) > 1


def _onednn_one_wide(g: ConvGeometry, dtype: str) -> bool:
    # After canonical_geometry an axis one output wide has stride 1, unless its one window
    # lies wholly in the padding: that remainder of the bug is routed here.
    return g.n > 1 and g.ci // g.groups == 1 and g.ow == 1 and g.stride[1] > 1


#: TensorFlow's native kernel limits (docs/known-bugs.md), checked on this machine
#: (AMD EPYC Zen 4, AVX-512) with TensorFlow 2.21.0.
TENSORFLOW_NATIVE_LIMITS = (
    NativeLimit(
        key="tf-dilation",
        framework="TensorFlow 2.16-2.21 (CPU)",
        kind="refused",
        condition="dilation > 1: the Eigen CPU kernels' Conv2DBackpropInput refuses dilation "
                  "> 1 (no input gradient) when oneDNN is off",
        instead="im2col",
        applies=_dilated,
    ),
    NativeLimit(
        key="tf-onednn-one-wide",
        framework="TensorFlow 2.21 (oneDNN, x86 AVX-512)",
        kind="wrong result",
        condition="batch > 1, one input channel per group, output 1 wide and width stride "
                  "> 1: tf.nn.conv2d on NHWC returns wrong values, NaN or uninitialised "
                  "memory",
        instead="the core's canonical geometry (stride 1 on an axis one output wide); "
                "im2col where the one window lies wholly in the padding",
        applies=_onednn_one_wide,
    ),
)  # fmt: skip


class TensorflowBackend(Adapter):
    name = "tensorflow"
    aliases = ("tf",)
    framework = "tensorflow"
    extra = "tensorflow"
    d2l_aliases = TENSORFLOW_D2L_ALIASES

    def __init__(self) -> None:
        self._index_vectors: dict[tuple[int, ...], Any] = {}

    def is_tensor(self, x: object) -> bool:
        return isinstance(x, (self.fw.Tensor, self.fw.Variable))

    def asarray(self, obj: Any, dtype: str | None = None) -> Tensor:
        if self.is_tensor(obj):
            return obj if dtype is None else self.fw.cast(obj, dtype)
        return self.fw.convert_to_tensor(obj, dtype=dtype)

    def astype(self, x: Tensor, dtype: str) -> Tensor:
        return self.fw.cast(x, dtype)

    def _index_vector(self, values: tuple[int, ...]) -> Any:
        """A shape or permutation as a constant made once: eager TensorFlow spends more time
        converting a Python tuple on every call (about 0.1 ms here) than moving a small
        tensor. Inside a ``tf.function`` trace the tuple goes in as it is."""
        tf = self.fw
        if not tf.executing_eagerly():
            return values
        vector = self._index_vectors.get(values)
        if vector is None:
            if len(self._index_vectors) >= 1024:
                self._index_vectors.clear()
            with tf.device("CPU:0"):
                vector = self._index_vectors[values] = tf.constant(values, dtype=tf.int64)
        return vector

    def reshape(self, x: Tensor, shape: tuple[int, ...]) -> Tensor:
        return self.fw.raw_ops.Reshape(tensor=x, shape=self._index_vector(tuple(shape)))

    def permute_dims(self, x: Tensor, axes: tuple[int, ...]) -> Tensor:
        return self.fw.raw_ops.Transpose(x=x, perm=self._index_vector(tuple(axes)))

    def stack(self, arrays: Sequence[Tensor], axis: int = 0) -> Tensor:
        return self.fw.stack(list(arrays), axis=axis)

    def concat(self, arrays: Sequence[Tensor], axis: int = 0) -> Tensor:
        return self.fw.concat(list(arrays), axis=axis)

    def matmul(self, x1: Tensor, x2: Tensor) -> Tensor:
        return self.fw.linalg.matmul(x1, x2)

    def sum(self, x: Tensor, axis: int | tuple[int, ...] | None = None) -> Tensor:
        return self.fw.reduce_sum(x, axis=axis)

    def zeros(self, shape: tuple[int, ...], dtype: str) -> Tensor:
        return self.fw.zeros(shape, dtype=dtype)

    def shape(self, x: Tensor) -> tuple[int, ...]:
        return tuple(int(d) for d in x.shape.as_list())

    def native_limits(self) -> Sequence[NativeLimit]:
        return TENSORFLOW_NATIVE_LIMITS

    def conv2d_native(
        self, x: Tensor, k: Tensor, *, stride: tuple[int, int], padding: tuple[int, int],
        dilation: tuple[int, int], groups: int,
    ) -> Tensor:  # fmt: skip
        tf = self.fw
        (ph, pw), kernel = padding, self.permute_dims(k, (2, 3, 1, 0))  # HWIO
        pads = {"padding": "VALID"} if ph == pw == 0 else {
            "padding": "EXPLICIT", "explicit_paddings": [0, 0, ph, ph, pw, pw, 0, 0]}  # fmt: skip

        def one(xg: Tensor, kg: Tensor) -> Tensor:
            # The raw op: tf.nn.conv2d's Python argument handling costs as much as a small
            # convolution. Its gradient is the same registered Conv2D gradient.
            return tf.raw_ops.Conv2D(input=xg, filter=kg, strides=[1, *stride, 1], **pads)

        xs = self.permute_dims(x, (0, 2, 3, 1))  # the CPU kernels want NHWC
        if groups == 1:
            y = one(xs, kernel)
        else:  # no grouped convolution on CPU: one convolution per group
            pairs = zip(tf.split(xs, groups, axis=3), tf.split(kernel, groups, axis=3),
                        strict=True)  # fmt: skip
            y = tf.concat([one(xg, kg) for xg, kg in pairs], axis=3)
        return self.permute_dims(y, (0, 3, 1, 2))

    def conv2d_layer(self, spec: LayerSpec, rng: random.Random) -> Any:
        import keras

        return _layer_class(keras)(spec, rng)

    def dtype_name(self, x: Tensor) -> str:
        return str(x.dtype.name)

    def to_numpy(self, x: Tensor) -> Any:
        return x.numpy()

    def devices(self) -> list[str]:
        return [d.name.split(":", 1)[1] for d in self.fw.config.list_physical_devices()]


@cache
def _layer_class(keras: Any) -> Any:
    class Conv2D(keras.layers.Layer):  # type: ignore[misc]
        """chanconv's Conv2D as a Keras layer (NCHW, like the rest of chanconv): weights
        ``kernel`` and ``bias``."""

        def __init__(self, spec: LayerSpec, rng: random.Random, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.spec = spec
            constant = keras.initializers.Constant
            self.kernel = self.add_weight(
                shape=spec.kernel_shape, initializer=constant(spec.initial_weight(rng)),
                name="kernel",
            )  # fmt: skip
            self.bias = None
            if spec.bias:
                self.bias = self.add_weight(
                    shape=(spec.out_channels,), initializer=constant(spec.initial_bias(rng)),
                    name="bias",
                )  # fmt: skip

        def call(self, x: Any) -> Any:
            # Keras variables wrap the tf.Variable that GradientTape watches: pass that.
            bias = None if self.bias is None else self.bias.value
            return self.spec.forward(x, self.kernel.value, bias)

    return Conv2D
