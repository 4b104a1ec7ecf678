"""TensorFlow adapter. Accepts ``tf.Tensor`` and ``tf.Variable``; ``tf.GradientTape`` sees
through every operation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chanconv.adapter import Adapter
from chanconv.protocol import Tensor

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


class TensorflowBackend(Adapter):
    name = "tensorflow"
    aliases = ("tf",)
    framework = "tensorflow"
    extra = "tensorflow"
    d2l_aliases = TENSORFLOW_D2L_ALIASES

    def is_tensor(self, x: object) -> bool:
        return isinstance(x, (self.fw.Tensor, self.fw.Variable))

    def asarray(self, obj: Any, dtype: str | None = None) -> Tensor:
        if self.is_tensor(obj):
            return obj if dtype is None else self.fw.cast(obj, dtype)
        return self.fw.convert_to_tensor(obj, dtype=dtype)

    def astype(self, x: Tensor, dtype: str) -> Tensor:
        return self.fw.cast(x, dtype)

    def reshape(self, x: Tensor, shape: tuple[int, ...]) -> Tensor:
        return self.fw.reshape(x, shape)

    def permute_dims(self, x: Tensor, axes: tuple[int, ...]) -> Tensor:
        return self.fw.transpose(x, axes)

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

    def dtype_name(self, x: Tensor) -> str:
        return str(x.dtype.name)

    def to_numpy(self, x: Tensor) -> Any:
        return x.numpy()
