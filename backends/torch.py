"""PyTorch adapter. Results stay on the autograd graph: ``backward()`` sees through chanconv."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from chanconv.adapter import Adapter
from chanconv.layers import LayerSpec, layer_class_on_first_use
from chanconv.protocol import Tensor
from chanconv.workarounds import NativeLimit

# As in d2l's torch tab: torch's own functions, and methods where d2l used a lambda.
TORCH_D2L_ALIASES = {
    "ones": "ones", "zeros": "zeros", "tensor": "tensor", "arange": "arange",
    "meshgrid": "meshgrid", "sin": "sin", "sinh": "sinh", "cos": "cos", "cosh": "cosh",
    "tanh": "tanh", "linspace": "linspace", "exp": "exp", "log": "log",
    "normal": "normal", "rand": "rand", "matmul": "matmul", "int32": "int32",
    "float32": "float32", "concat": "cat", "stack": "stack", "abs": "abs", "eye": "eye",
    "reshape": ".reshape", "to": ".to", "reduce_sum": ".sum", "argmax": ".argmax",
    "astype": ".type", "transpose": ".t",
}  # fmt: skip


class TorchBackend(Adapter):
    name = "torch"
    aliases = ("pytorch",)
    framework = "torch"
    extra = "torch"
    d2l_aliases = TORCH_D2L_ALIASES

    def is_tensor(self, x: object) -> bool:
        return isinstance(x, self.fw.Tensor)

    def asarray(self, obj: Any, dtype: str | None = None) -> Tensor:
        if dtype is None and isinstance(obj, self.fw.Tensor):
            return obj
        return self.fw.as_tensor(obj, dtype=None if dtype is None else getattr(self.fw, dtype))

    def shape(self, x: Tensor) -> tuple[int, ...]:
        return tuple(x.shape)

    def astype(self, x: Tensor, dtype: str) -> Tensor:
        return x.to(getattr(self.fw, dtype))

    def reshape(self, x: Tensor, shape: tuple[int, ...]) -> Tensor:
        return self.fw.reshape(x, shape)

    def permute_dims(self, x: Tensor, axes: tuple[int, ...]) -> Tensor:
        return self.fw.permute(x, axes)

    def stack(self, arrays: Sequence[Tensor], axis: int = 0) -> Tensor:
        return self.fw.stack(list(arrays), dim=axis)

    def concat(self, arrays: Sequence[Tensor], axis: int = 0) -> Tensor:
        return self.fw.cat(list(arrays), dim=axis)

    def matmul(self, x1: Tensor, x2: Tensor) -> Tensor:
        return self.fw.matmul(x1, x2)

    def sum(self, x: Tensor, axis: int | tuple[int, ...] | None = None) -> Tensor:
        return self.fw.sum(x) if axis is None else self.fw.sum(x, dim=axis)

    def zeros(self, shape: tuple[int, ...], dtype: str) -> Tensor:
        return self.fw.zeros(shape, dtype=getattr(self.fw, dtype))

    def native_limits(self) -> Sequence[NativeLimit]:
        # The fuzz campaign (chanconv.testing.test_fuzz) found no geometry PyTorch 2.13's
        # convolution gets wrong or refuses.
        return ()

    def zeros_like(self, x: Tensor) -> Tensor:
        return self.fw.zeros_like(x)

    def conv2d_native(
        self, x: Tensor, k: Tensor, *, stride: tuple[int, int], padding: tuple[int, int],
        dilation: tuple[int, int], groups: int,
    ) -> Tensor:  # fmt: skip
        # Positional, and ints where a pair is square: torch parses those fastest, which
        # is most of chanconv's cost on a small convolution.
        return self.fw.conv2d(x, k, None, _square(stride), _square(padding), _square(dilation),
                              groups)  # fmt: skip

    def conv2d_layer(self, spec: LayerSpec, rng: random.Random) -> Any:
        return _conv2d_class()(spec, rng)

    def dtype_name(self, x: Tensor) -> str:
        return str(x.dtype).removeprefix("torch.")

    def to_numpy(self, x: Tensor) -> Any:
        x = x.detach().cpu()
        if x.dtype == self.fw.bfloat16:  # NumPy has no bfloat16; float32 holds it exactly
            x = x.float()
        return x.numpy().copy()

    def devices(self) -> list[str]:
        return ["cpu", *(f"cuda:{i}" for i in range(self.fw.cuda.device_count()))]

    def compile(self, fn: Any) -> Any:
        """``torch.compile`` with its default backend (inductor): the Compiler extension,
        through which the benchmarks time chanconv and ``F.conv2d`` both compiled."""
        return self.fw.compile(fn)

    def wait(self, y: Tensor) -> None:
        # CPU kernels return computed; CUDA ones are queued on the device's stream.
        if isinstance(y, self.fw.Tensor) and y.is_cuda:
            self.fw.cuda.synchronize(y.device)


def _square(pair: tuple[int, int]) -> int | tuple[int, int]:
    return pair[0] if pair[0] == pair[1] else pair


def _torch_conv2d() -> Any:
    import torch

    class Conv2D(torch.nn.Module):  # type: ignore[misc]
        """chanconv's Conv2D as a torch module: parameters ``weight`` and ``bias``. Compiles
        (``torch.compile(fullgraph=True)``), exports (``torch.export``) and traces
        (``torch.jit.trace``) with no graph break; pickles by its import path."""

        def __init__(self, spec: LayerSpec, rng: random.Random) -> None:
            super().__init__()
            self.spec = spec
            self.weight = torch.nn.Parameter(torch.tensor(spec.initial_weight(rng)))
            bias = torch.nn.Parameter(torch.tensor(spec.initial_bias(rng))) if spec.bias else None
            self.bias = bias

        def forward(self, x: Any) -> Any:
            return self.spec.forward(x, self.weight, self.bias)

    return Conv2D


# Made on first use, so that importing this adapter imports no framework; then the
# module's attribute chanconv.backends.torch.Conv2D.
_conv2d_class, __getattr__ = layer_class_on_first_use(__name__, _torch_conv2d)
