"""The adapter: chanconv's protocol over ``jax.numpy`` and ``jax.lax``.

Dtypes: float32, bfloat16 and float16 always; float64 only where the user enabled JAX's
64-bit mode (``jax.config.update("jax_enable_x64", True)`` or ``JAX_ENABLE_X64=1``). Without
it JAX would silently compute a float64 request in float32, so this adapter refuses such a
request with a ``TypeError`` instead. Integer tensors are refused by chanconv's core, as on
every backend.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import Any

from chanconv.layers import LayerSpec
from chanconv.protocol import FrameworkHelpers, Tensor
from chanconv.workarounds import NativeLimit

# d2l's d2l/jax.py aliases (its "Alias defined in config.ini" block), in chanconv's alias
# mini-language: paths into the jax module, ``.method`` of the first argument, or
# ``module:attribute`` for d2l's own helpers.
JAX_D2L_ALIASES = {
    "ones_like": "numpy.ones_like", "ones": "numpy.ones", "zeros_like": "numpy.zeros_like",
    "zeros": "numpy.zeros", "arange": "numpy.arange", "meshgrid": "numpy.meshgrid",
    "sin": "numpy.sin", "sinh": "numpy.sinh", "cos": "numpy.cos", "cosh": "numpy.cosh",
    "tanh": "numpy.tanh", "linspace": "numpy.linspace", "exp": "numpy.exp",
    "log": "numpy.log", "tensor": "numpy.array", "expand_dims": "numpy.expand_dims",
    "matmul": "numpy.matmul", "int32": "numpy.int32", "int64": "numpy.int64",
    "float32": "numpy.float32", "concat": "numpy.concatenate", "stack": "numpy.stack",
    "abs": "numpy.abs", "eye": "numpy.eye", "reshape": ".reshape", "reduce_sum": ".sum",
    "argmax": ".argmax", "astype": ".astype", "reduce_mean": ".mean",
    "swapaxes": ".swapaxes", "repeat": ".repeat", "to": "device_put",
    "transpose": ".transpose", "sigmoid": "nn.sigmoid",
    "get_seed": "chanconv_jax.d2l:get_seed",
}  # fmt: skip


class JaxBackend:
    """chanconv's protocol for ``jax.Array``. Written without chanconv's ``Adapter`` base
    class, to show what a third-party adapter has to provide: the compute primitives
    (``chanconv.protocol.ArrayBackend``) and the optional extensions it declares by
    implementing them: ``conv2d_native`` (NativeConv2d), ``conv2d_layer`` (NativeLayers),
    ``d2l_aliases`` (D2lAliases), ``devices`` (DeviceList), ``compile`` and ``wait``
    (Compiler, for the benchmarks), ``conformance_helpers`` (ConformanceHelpers)."""

    name = "jax"
    aliases: tuple[str, ...] = ()
    framework = "jax"
    d2l_aliases: Mapping[str, str] = JAX_D2L_ALIASES

    @cached_property
    def jax(self) -> Any:
        return importlib.import_module("jax")

    @cached_property
    def jnp(self) -> Any:
        return importlib.import_module("jax.numpy")

    def __repr__(self) -> str:
        return f"<chanconv backend {self.name!r}>"

    def version(self) -> str:
        return str(self.jax.__version__)

    def is_tensor(self, x: object) -> bool:
        # Tracers (under jit, grad, vmap) are jax.Array instances too.
        return isinstance(x, self.jax.Array)

    def _check_dtype(self, dtype: str | None) -> None:
        if dtype == "float64" and not self.jax.config.read("jax_enable_x64"):
            raise TypeError(
                "float64 on the jax backend needs JAX's 64-bit mode, which is off (JAX would "
                "compute in float32 instead): enable it with "
                "jax.config.update('jax_enable_x64', True) or JAX_ENABLE_X64=1, or use float32"
            )

    # --- Array API standard -------------------------------------------------------------
    def asarray(self, obj: Any, dtype: str | None = None) -> Tensor:
        if dtype is None and isinstance(obj, self.jax.Array):
            return obj
        self._check_dtype(dtype)
        return self.jnp.asarray(obj, dtype=dtype)

    def astype(self, x: Tensor, dtype: str) -> Tensor:
        self._check_dtype(dtype)
        return x.astype(dtype)

    def reshape(self, x: Tensor, shape: tuple[int, ...]) -> Tensor:
        return self.jnp.reshape(x, shape)

    def permute_dims(self, x: Tensor, axes: tuple[int, ...]) -> Tensor:
        return self.jnp.transpose(x, axes)

    def stack(self, arrays: Sequence[Tensor], axis: int = 0) -> Tensor:
        return self.jnp.stack(list(arrays), axis=axis)

    def concat(self, arrays: Sequence[Tensor], axis: int = 0) -> Tensor:
        return self.jnp.concatenate(list(arrays), axis=axis)

    def matmul(self, x1: Tensor, x2: Tensor) -> Tensor:
        return self.jnp.matmul(x1, x2)

    def sum(self, x: Tensor, axis: int | tuple[int, ...] | None = None) -> Tensor:
        return self.jnp.sum(x, axis=axis)

    def zeros(self, shape: tuple[int, ...], dtype: str) -> Tensor:
        self._check_dtype(dtype)
        return self.jnp.zeros(shape, dtype=dtype)

    # --- beyond the standard --------------------------------------------------------------
    def shape(self, x: Tensor) -> tuple[int, ...]:
        return tuple(int(d) for d in x.shape)

    def dtype_name(self, x: Tensor) -> str:
        return str(x.dtype.name)

    def to_numpy(self, x: Tensor) -> Any:
        import numpy as np

        y = np.asarray(x)
        if y.dtype.name == "bfloat16":  # NumPy has no bfloat16; float32 holds it exactly
            y = y.astype(np.float32)
        return np.array(y)

    def restore_kind(self, y: Tensor, like: Tensor) -> Tensor:
        return y

    # --- optional extensions --------------------------------------------------------------
    def native_limits(self) -> Sequence[NativeLimit]:
        # The shipped suite's fuzz campaign found no geometry that jax.lax's convolution
        # (jax 0.10, CPU) gets wrong or refuses.
        return ()

    def conv2d_native(
        self, x: Tensor, k: Tensor, *, stride: tuple[int, int], padding: tuple[int, int],
        dilation: tuple[int, int], groups: int,
    ) -> Tensor:  # fmt: skip
        (ph, pw) = padding
        return self.jax.lax.conv_general_dilated(
            x, k, window_strides=stride, padding=((ph, ph), (pw, pw)), rhs_dilation=dilation,
            feature_group_count=groups, dimension_numbers=("NCHW", "OIHW", "NCHW"),
        )  # fmt: skip

    def conv2d_layer(self, spec: LayerSpec, rng: random.Random) -> Any:
        try:
            import flax.linen  # noqa: F401
        except ImportError as err:
            raise ImportError(
                "chanconv.Conv2D on the jax backend is a flax.linen module, and flax is not "
                "installed: pip install 'chanconv-jax[flax]'"
            ) from err
        from chanconv_jax.layers import Conv2D

        weight = _tuples(spec.initial_weight(rng))
        bias = _tuples(spec.initial_bias(rng)) if spec.bias else None
        return Conv2D(spec=spec, initial_weight=weight, initial_bias=bias)

    def devices(self) -> list[str]:
        return [f"{d.platform}:{d.id}" for d in self.jax.devices()]

    def compile(self, fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
        return self.jax.jit(fn)  # type: ignore[no-any-return]

    def wait(self, y: Tensor) -> None:
        y.block_until_ready()

    def conformance_helpers(self) -> FrameworkHelpers:
        from chanconv_jax.testing import JaxHelpers

        return JaxHelpers(self)


def _tuples(values: Any) -> Any:
    """Nested lists as nested tuples: Flax modules are hashable dataclasses."""
    return tuple(_tuples(v) for v in values) if isinstance(values, list) else values
