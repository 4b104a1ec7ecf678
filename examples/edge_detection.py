"""Learn the edge-detection kernel [1, -1] from data, as d2l's conv-layer section does,
with chanconv's Conv2D and each framework's own training loop.

Run: ``CHANCONV_BACKEND=torch python examples/edge_detection.py`` (numpy, torch,
tensorflow, mxnet, dask, jax with the chanconv-jax plugin, or an Array API library such as
array_api_strict). Prints the learned kernel, which should be close to [[1, -1]].
"""

from __future__ import annotations

from typing import Any

import chanconv

# The chapter's image: a 6x8 white frame with a black band in columns 2-5 ...
X = [[[[1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]] * 6]]
# ... and what the edge kernel [1, -1] sees in it: +1 at the white-to-black edge,
# -1 at the black-to-white edge.
Y = [[[[0.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0]] * 6]]
TARGET = [[1.0, -1.0]]


def _layer() -> Any:
    return chanconv.Conv2D(1, 1, (1, 2), bias=False, seed=0)


def train_numpy(lr: float, epochs: int) -> Any:
    import numpy as np

    layer, x, y = _layer(), np.array(X, dtype="float32"), np.array(Y, dtype="float32")
    for _ in range(epochs):
        layer.backward(2 * (layer(x) - y))  # d/dY of sum((Y_hat - Y)^2)
        layer.sgd_step(lr)
    return layer.weight


def train_torch(lr: float, epochs: int) -> Any:
    import torch

    layer, x, y = _layer(), torch.tensor(X), torch.tensor(Y)
    optimizer = torch.optim.SGD(layer.parameters(), lr=lr)
    for _ in range(epochs):
        loss = ((layer(x) - y) ** 2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return layer.weight.detach().numpy()


def train_tensorflow(lr: float, epochs: int) -> Any:
    import keras
    import tensorflow as tf

    layer, x, y = _layer(), tf.constant(X), tf.constant(Y)
    optimizer = keras.optimizers.SGD(learning_rate=lr)
    for _ in range(epochs):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum((layer(x) - y) ** 2)
        grads = tape.gradient(loss, layer.trainable_variables)
        optimizer.apply_gradients(zip(grads, layer.trainable_variables, strict=True))
    return layer.kernel.numpy()


def train_mxnet(lr: float, epochs: int) -> Any:
    from mxnet import autograd, gluon, nd

    layer, x, y = _layer(), nd.array(X), nd.array(Y)
    trainer = gluon.Trainer(layer.collect_params(), "sgd", {"learning_rate": lr})
    for _ in range(epochs):
        with autograd.record():
            loss = ((layer(x) - y) ** 2).sum()
        loss.backward()
        trainer.step(1)
    return layer.weight.data().asnumpy()


def train_array_api(namespace: str, lr: float, epochs: int) -> Any:
    """Any Array API library, through chanconv's generic adapter: its own arrays and
    arithmetic, with chanconv's layer and its explicit backward pass (the standard has no
    autograd)."""
    import importlib

    import numpy as np

    xp = importlib.import_module(namespace)
    layer = _layer()
    x, y = xp.asarray(X, dtype=xp.float32), xp.asarray(Y, dtype=xp.float32)
    for _ in range(epochs):
        layer.backward(2 * (layer(x) - y))
        layer.sgd_step(lr)
    return np.from_dlpack(layer.weight)


def train_jax(lr: float, epochs: int) -> Any:
    # The jax backend comes from the chanconv-jax plugin; its Conv2D is a Flax module.
    import jax
    import jax.numpy as jnp
    import numpy as np

    layer, x, y = _layer(), jnp.array(X), jnp.array(Y)
    params = layer.init(jax.random.PRNGKey(0), x)

    def loss(params: Any) -> Any:
        return ((layer.apply(params, x) - y) ** 2).sum()

    @jax.jit
    def step(params: Any) -> Any:  # plain SGD on the parameter tree
        return jax.tree.map(lambda w, g: w - lr * g, params, jax.grad(loss)(params))

    for _ in range(epochs):
        params = step(params)
    return np.asarray(params["params"]["weight"])


def train_dask(lr: float, epochs: int) -> Any:
    import dask.array as da
    import numpy as np

    # The image in 3x4 chunks: every step runs lazily, chunk by chunk, across chunk borders.
    x = da.from_array(np.array(X, dtype="float32"), chunks=(1, 1, 3, 4))
    y = da.from_array(np.array(Y, dtype="float32"), chunks=(1, 1, 3, 4))
    layer = _layer()
    for _ in range(epochs):
        layer.backward(2 * (layer(x) - y))
        layer.sgd_step(lr)
        # Computed once per step: otherwise every step's graph would hold all the earlier.
        layer.weight = layer.weight.persist()
    return layer.weight.compute()


TRAINERS = {"numpy": train_numpy, "torch": train_torch, "tensorflow": train_tensorflow,
            "mxnet": train_mxnet, "dask": train_dask, "jax": train_jax}  # fmt: skip


def learn_edge_kernel(backend: str, lr: float = 3e-2, epochs: int = 30) -> list[list[float]]:
    """Train on ``backend`` and return the learned 1x2 kernel as nested lists."""
    with chanconv.use_backend(backend) as adapter:
        if chanconv.registry.is_generic(adapter):
            weight = train_array_api(adapter.framework, lr, epochs)
        else:
            weight = TRAINERS[adapter.name](lr, epochs)
    return [[float(v) for v in row] for row in weight.reshape(1, 2)]


if __name__ == "__main__":
    name = chanconv.active_name()
    print(f"learned kernel on {name}: {learn_edge_kernel(name)} (target {TARGET})")
