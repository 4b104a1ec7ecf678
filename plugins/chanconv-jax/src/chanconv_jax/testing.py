"""What chanconv's shipped conformance suite needs from JAX itself (the
``ConformanceHelpers`` extension): making ``jax.Array`` inputs, reading results, JAX's own
autograd and convolution, Flax layers, and, through the optional ``CompiledModeHelpers``
and ``ModelHelpers`` members, ``jax.jit`` as the suite's compiled mode and Flax's model
machinery (training under ``jax.jit``, ``flax.serialization``, ``jax.export``).
Everything here calls JAX directly, never chanconv, so the suite's assertions do not rest
on the adapter under test."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from chanconv.protocol import ModelRun, Tensor


class JaxHelpers:
    """``chanconv.protocol.FrameworkHelpers`` for JAX.

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

    def layer_bias(self, layer: Any) -> Any:
        return np.array(self._params(layer)["params"]["bias"])

    def layer_class_path(self) -> str:
        return "chanconv_jax.layers:Conv2D"

    # --- compiled modes: jax.jit retraces per input shape, so nothing is ever unknown in
    # a trace and the suite's shapes and batch flags have nothing to say to it.
    def compiled_modes(self) -> tuple[str, ...]:
        return ("jax.jit",)

    def compile_function(
        self, mode: str, fn: Callable[..., Any], shapes: Sequence[tuple[int, ...]],
        batched: Sequence[bool],
    ) -> Callable[..., Any]:  # fmt: skip
        if mode != "jax.jit":
            raise ValueError(f"unknown compiled mode {mode!r}")
        return jax.jit(fn)

    # --- model machinery ----------------------------------------------------------------
    def model_round_trip(self, layer: Any, x: Any, directory: Path, functional: bool) -> ModelRun:
        from flax import serialization

        xs = jnp.asarray(x)
        model, conv_name = _model(layer, functional)
        params = model.init(jax.random.PRNGKey(0), xs)
        eager = model.apply(params, xs)

        def loss(p: Any) -> Any:
            return jnp.mean((model.apply(p, xs) - 1.0) ** 2)

        @jax.jit
        def sgd_step(p: Any) -> Any:
            return jax.tree_util.tree_map(lambda w, g: w - 0.01 * g, p, jax.grad(loss)(p))

        trained = sgd_step(params)
        conv = trained["params"][conv_name]
        features = layer.apply({"params": conv}, xs)
        predicted = model.apply(trained, xs)

        saved = directory / "params.msgpack"
        saved.write_bytes(serialization.to_bytes(trained))
        # A fresh model of the same structure, initialized from another key: loading must
        # replace every parameter for the predictions to agree.
        fresh, _ = _model(layer.clone(), functional)
        template = fresh.init(jax.random.PRNGKey(1), xs)
        # from_bytes restores NumPy arrays; chanconv refuses a call mixing them with JAX's.
        loaded = jax.tree_util.tree_map(
            jnp.asarray, serialization.from_bytes(template, saved.read_bytes())
        )
        reloaded = fresh.apply(loaded, xs)

        exported = directory / "model.jax_export"
        artefact = jax.export.export(jax.jit(model.apply))(trained, xs)
        exported.write_bytes(artefact.serialize())
        restored = jax.export.deserialize(bytearray(exported.read_bytes()))
        served = restored.call(trained, xs)  # type: ignore[no-untyped-call]

        return ModelRun(
            eager=np.array(eager), weight_before=np.array(params["params"][conv_name]["weight"]),
            weight=np.array(conv["weight"]), bias=np.array(conv["bias"]),
            features=np.array(features), trained=np.array(predicted),
            reloaded=np.array(reloaded), exported=np.array(served),
        )  # fmt: skip


def _model(layer: Any, functional: bool) -> tuple[Any, str]:
    """A Flax model of ``layer``, flattened, then ``Dense(2)``, and the name of the layer's
    parameter collection in it: the functional form (a module of its own whose
    ``__call__`` composes them) or ``nn.Sequential``."""
    import flax.linen as nn

    def flatten(y: Any) -> Any:
        return jnp.reshape(y, (y.shape[0], -1))

    if not functional:
        return nn.Sequential([layer, flatten, nn.Dense(2)]), "layers_0"

    class Model(nn.Module):
        conv: Any

        @nn.compact
        def __call__(self, x: Any) -> Any:
            return nn.Dense(2)(flatten(self.conv(x)))

    return Model(conv=layer), "conv"
