"""chanconv's Conv2D as a Flax module, a real class at a stable import path
(``chanconv_jax.layers:Conv2D``), so that pickling, ``isinstance`` and the API docs work.

This module imports Flax at its top: the adapter imports it only when a layer is made, so
that importing the plugin imports neither JAX nor Flax.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from chanconv.layers import LayerSpec


class Conv2D(nn.Module):
    """chanconv's Conv2D as a Flax module: parameters ``weight`` and ``bias``, starting from
    the values chanconv drew (whatever PRNG key ``init`` gets), forward pass
    ``chanconv.conv2d``. The initial values are nested tuples: Flax modules are hashable
    dataclasses, and tuples of floats pickle with them."""

    spec: LayerSpec
    initial_weight: Any
    initial_bias: Any = None

    @nn.compact
    def __call__(self, x: Any) -> Any:
        weight = self.param("weight", lambda _key: jnp.asarray(self.initial_weight,
                                                               self.spec.dtype))  # fmt: skip
        bias = None
        if self.spec.bias:
            bias = self.param("bias", lambda _key: jnp.asarray(self.initial_bias,
                                                               self.spec.dtype))  # fmt: skip
        return self.spec.forward(x, weight, bias)
