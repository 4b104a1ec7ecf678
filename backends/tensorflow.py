"""TensorFlow adapter. Accepts ``tf.Tensor`` and ``tf.Variable``; ``tf.GradientTape`` sees
through every operation."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from chanconv.adapter import Adapter
from chanconv.geometry import ConvGeometry, as_pair
from chanconv.layers import LayerSpec, layer_class_on_first_use
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
    # An unknown batch (inside a traced graph) may be > 1, and an unknown output width
    # (an input width unknown until run time) may be 1: either counts as meeting the bug.
    batch_over_one = g.n is None or g.n > 1
    one_wide = g.ow is None or g.ow == 1
    return batch_over_one and g.ci // g.groups == 1 and one_wide and g.stride[1] > 1


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

    def zeros_like(self, x: Tensor) -> Tensor:
        return self.fw.zeros_like(x)

    def shape(self, x: Tensor) -> tuple[int, ...]:
        # None: unknown until run time, a tf.function input's None batch.
        return tuple(None if d is None else int(d) for d in x.shape.as_list())  # type: ignore[misc]

    def native_limits(self) -> Sequence[NativeLimit]:
        return TENSORFLOW_NATIVE_LIMITS

    def conv2d_native(
        self, x: Tensor, k: Tensor, *, stride: tuple[int, int], padding: tuple[int, int],
        dilation: tuple[int, int], groups: int,
    ) -> Tensor:  # fmt: skip
        # The CPU kernels are NHWC only: an NCHW call is the channels-last one between two
        # permutes (a channels-last call of chanconv skips both).
        (ph, pw), xs = padding, self.permute_dims(x, (0, 2, 3, 1))
        y = self.conv2d_native_channels_last(xs, k, stride=stride, pads=(ph, ph, pw, pw),
                                             dilation=dilation, groups=groups)  # fmt: skip
        return self.permute_dims(y, (0, 3, 1, 2))

    def conv2d_native_channels_last(
        self, x: Tensor, k: Tensor, *, stride: tuple[int, int],
        pads: tuple[int, int, int, int], dilation: tuple[int, int], groups: int,
    ) -> Tensor:  # fmt: skip
        tf = self.fw
        kernel = self.permute_dims(k, (2, 3, 1, 0))  # HWIO
        # EXPLICIT takes each side's pad, so the asymmetric "same" needs no padded copy.
        padding: dict[str, Any] = {"padding": "VALID"} if not any(pads) else {
            "padding": "EXPLICIT", "explicit_paddings": [0, 0, *pads, 0, 0]}  # fmt: skip
        if dilation != (1, 1):  # (the tf-dilation limit keeps it from gradients on CPU)
            padding["dilations"] = [1, *dilation, 1]

        def one(xg: Tensor, kg: Tensor) -> Tensor:
            # The raw op: tf.nn.conv2d's Python argument handling costs as much as a small
            # convolution. Its gradient is the same registered Conv2D gradient.
            return tf.raw_ops.Conv2D(input=xg, filter=kg, strides=[1, *stride, 1], **padding)

        if groups == 1:
            return one(x, kernel)
        # No grouped convolution on CPU: one convolution per group.
        pairs = zip(tf.split(x, groups, axis=3), tf.split(kernel, groups, axis=3), strict=True)
        return tf.concat([one(xg, kg) for xg, kg in pairs], axis=3)

    def conv2d_layer(self, spec: LayerSpec, rng: random.Random) -> Any:
        return _conv2d_class().from_spec(spec)

    def dtype_name(self, x: Tensor) -> str:
        return str(x.dtype.name)

    def to_numpy(self, x: Tensor) -> Any:
        return x.numpy()

    def devices(self) -> list[str]:
        return [d.name.split(":", 1)[1] for d in self.fw.config.list_physical_devices()]

    def compile(self, fn: Any) -> Any:
        """``tf.function`` (a graph, without XLA): the Compiler extension, through which
        the benchmarks time chanconv and ``tf.nn.conv2d`` both compiled."""
        return self.fw.function(fn, jit_compile=False)

    def wait(self, y: Tensor) -> None:
        # On CPU, eager and tf.function calls return their results computed.
        pass


def _keras_conv2d() -> Any:
    import keras

    @keras.saving.register_keras_serializable(package="chanconv", name="Conv2D")
    class Conv2D(keras.layers.Layer):  # type: ignore[misc]
        """chanconv's Conv2D as a Keras 3 layer (NCHW, like the rest of chanconv): weights
        ``kernel`` (co, ci/groups, kh, kw) and ``bias``, drawn by Keras initializers as
        PyTorch's default does (uniform in +-1/sqrt(fan_in)); works on symbolic inputs,
        inside ``fit``, ``model.save``/``load_model`` and ``model.export``."""

        def __init__(
            self, in_channels: int, out_channels: int, kernel_size: Any, *, stride: Any = 1,
            padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
            algorithm: str = "auto", seed: int | None = None,
            data_format: str = "channels_first", **kwargs: Any,
        ) -> None:  # fmt: skip
            super().__init__(**kwargs)
            self.spec = LayerSpec(in_channels, out_channels, as_pair("kernel_size", kernel_size),
                                  _plain(stride), _plain(padding), _plain(dilation), groups, bias,
                                  algorithm, seed=seed, data_format=data_format)  # fmt: skip
            self.spec.check()
            # Every weight shape is known from the arguments: built now, so the weights
            # exist before the first call, as on the other backends.
            self.build(None)

        @classmethod
        def from_spec(cls, spec: LayerSpec) -> Any:
            return cls(spec.in_channels, spec.out_channels, spec.kernel_size,
                       stride=spec.stride, padding=spec.padding, dilation=spec.dilation,
                       groups=spec.groups, bias=spec.bias, algorithm=spec.algorithm,
                       seed=spec.seed, data_format=spec.data_format)  # fmt: skip

        def build(self, input_shape: Any) -> None:
            if getattr(self, "kernel", None) is not None:  # built in __init__ already
                return
            s = self.spec
            seeds = (None, None) if s.seed is None else (s.seed, s.seed + 1)
            uniform = keras.initializers.RandomUniform
            self.kernel = self.add_weight(
                shape=s.kernel_shape, name="kernel",
                initializer=uniform(-s.init_bound, s.init_bound, seed=seeds[0]),
            )  # fmt: skip
            self.bias = None
            if s.bias:
                self.bias = self.add_weight(
                    shape=(s.out_channels,), name="bias",
                    initializer=uniform(-s.init_bound, s.init_bound, seed=seeds[1]),
                )  # fmt: skip

        def call(self, x: Any) -> Any:
            # Keras variables wrap the tf.Variable that GradientTape watches: pass that.
            bias = None if self.bias is None else self.bias.value
            return self.spec.forward(x, self.kernel.value, bias)

        def compute_output_shape(self, input_shape: Any) -> Any:
            return self.spec.output_shape(tuple(input_shape))

        def get_config(self) -> dict[str, Any]:
            s = self.spec
            return {
                **super().get_config(), "in_channels": s.in_channels,
                "out_channels": s.out_channels, "kernel_size": list(s.kernel_size),
                "stride": s.stride, "padding": s.padding, "dilation": s.dilation,
                "groups": s.groups, "bias": s.bias, "algorithm": s.algorithm, "seed": s.seed,
                "data_format": s.data_format,
            }  # fmt: skip

    return Conv2D


def _plain(value: Any) -> Any:
    """A config's lists (JSON has no tuples) back as the pairs chanconv takes."""
    return tuple(value) if isinstance(value, list) else value


# Made on first use, so that importing this adapter imports no framework; then the
# module's attribute chanconv.backends.tensorflow.Conv2D.
_conv2d_class, __getattr__ = layer_class_on_first_use(__name__, _keras_conv2d)
