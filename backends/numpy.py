"""NumPy adapter: the default backend, and the shape every other adapter follows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chanconv.adapter import Adapter
from chanconv.d2l import NUMPY_D2L_ALIASES
from chanconv.protocol import Tensor


class NumpyBackend(Adapter):
    name = "numpy"
    aliases = ("np",)
    framework = "numpy"
    extra = "numpy"
    d2l_aliases = NUMPY_D2L_ALIASES

    def is_tensor(self, x: object) -> bool:
        return isinstance(x, self.fw.ndarray)

    def asarray(self, obj: Any, dtype: str | None = None) -> Tensor:
        return self.fw.asarray(obj, dtype=dtype)

    def astype(self, x: Tensor, dtype: str) -> Tensor:
        return x.astype(dtype)

    def reshape(self, x: Tensor, shape: tuple[int, ...]) -> Tensor:
        return self.fw.reshape(x, shape)

    def permute_dims(self, x: Tensor, axes: tuple[int, ...]) -> Tensor:
        return self.fw.transpose(x, axes)

    def stack(self, arrays: Sequence[Tensor], axis: int = 0) -> Tensor:
        return self.fw.stack(arrays, axis=axis)

    def concat(self, arrays: Sequence[Tensor], axis: int = 0) -> Tensor:
        return self.fw.concatenate(arrays, axis=axis)

    def matmul(self, x1: Tensor, x2: Tensor) -> Tensor:
        return self.fw.matmul(x1, x2)

    def sum(self, x: Tensor, axis: int | tuple[int, ...] | None = None) -> Tensor:
        return self.fw.sum(x, axis=axis)

    def zeros(self, shape: tuple[int, ...], dtype: str) -> Tensor:
        return self.fw.zeros(shape, dtype=dtype)

    def zeros_like(self, x: Tensor) -> Tensor:
        return self.fw.zeros_like(x)

    def shape(self, x: Tensor) -> tuple[int, ...]:
        return tuple(x.shape)

    def dtype_name(self, x: Tensor) -> str:
        return str(x.dtype.name)

    def to_numpy(self, x: Tensor) -> Any:
        return self.fw.array(x)

    # InPlaceWrites: NumPy releases the interpreter lock in its copies and its matmul.
    def empty(self, shape: tuple[int, ...], dtype: str) -> Tensor:
        return self.fw.empty(shape, dtype=dtype)

    def write(self, dst: Tensor, src: Tensor | float, *, accumulate: bool = False) -> None:
        if accumulate:
            dst += src
        else:
            dst[...] = src

    def matmul_into(self, x1: Tensor, x2: Tensor, out: Tensor) -> None:
        self.fw.matmul(x1, x2, out=out)

    def devices(self) -> list[str]:
        return ["cpu"]
