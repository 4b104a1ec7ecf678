"""What chanconv's shipped conformance suite needs from JAX itself (the
``ConformanceHelpers`` extension): making ``jax.Array`` inputs, reading results, JAX's own
autograd and convolution, and Flax layers. Everything here calls JAX directly, never
chanconv, so the suite's assertions do not rest on the adapter under test."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from chanconv.protocol import Tensor


class JaxHelpers:
    """:class:`chanconv.protocol.FrameworkHelpers` for JAX.

    Made once at the start of a conformance session. The suite tests float64, which JAX
    computes only in its 64-bit mode, so this turns that mode on, as a user who wants
    float64 does (see the adapter's dtype rule)."""

    def __init__(self, adapter: Any) -> None:
        jax.config.update("jax_enable_x64", True)  # type: ignore[no-untyped-call]

    def kinds(self) -> Sequence[tuple[str, Callable[[Any], Tensor]]]:
        return [("jax.Array", lambda a: jnp.asarray(a, dtype=a.dtype))]

    def result_types(self) -> tuple[type, ...]:
        return (jax.Array,)

    def to_numpy(self, t: Tensor) -> Any:
        return np.array(t)

    def dtype_name(self, t: Tensor) -> str:
        return str(t.dtype.name)

    def stack(self, tensors: Sequence[Tensor]) -> Tensor:
        return jnp.stack(list(tensors), 0)

    def matmul(self, a: Tensor, b: Tensor) -> Tensor:
        return jnp.matmul(a, b)

    def weighted_sum(self, y: Tensor, g: Any) -> Tensor:
        return (y * jnp.asarray(g, dtype=y.dtype)).sum()

    def gradients(
        self, make: Callable[[Any], Tensor], fn: Callable[..., Tensor], arrays: Sequence[Any]
    ) -> list[Any]:
        tensors = [make(a) for a in arrays]
        grads = jax.grad(fn, argnums=tuple(range(len(tensors))))(*tensors)
        return [np.array(g) for g in grads]

    def conv2d(
        self, x: Tensor, k: Tensor, b: Tensor | None, stride: tuple[int, int],
        padding: tuple[int, int], dilation: tuple[int, int], groups: int,
    ) -> Tensor | None:  # fmt: skip
        (ph, pw) = padding
        y = jax.lax.conv_general_dilated(
            x, k, window_strides=stride, padding=((ph, ph), (pw, pw)), rhs_dilation=dilation,
            feature_group_count=groups, dimension_numbers=("NCHW", "OIHW", "NCHW"),
        )  # fmt: skip
        return y if b is None else y + jnp.reshape(b, (1, -1, 1, 1))

    def layer_base(self) -> type:
        import flax.linen as nn

        return nn.Module

    def _params(self, layer: Any, x: Tensor | None = None) -> Any:
        if x is None:  # an input every setting accepts: larger than the receptive field
            spec = layer.spec
            x = jnp.zeros((1, spec.in_channels, 32, 32), spec.dtype)
        return layer.init(jax.random.PRNGKey(0), x)

    def layer_weight(self, layer: Any) -> Any:
        return np.array(self._params(layer)["params"]["weight"])

    def call_layer(self, layer: Any, x: Tensor) -> Tensor:
        return layer.apply(self._params(layer, x), x)
