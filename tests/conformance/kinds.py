"""Each backend's array kinds, made with the framework's own constructors (not chanconv's),
so the suite feeds chanconv exactly what a user of that framework would."""

from __future__ import annotations

import numpy as np


def kinds(backend):
    """(kind name, constructor from a NumPy array, the result type expected back)."""
    if backend == "torch":
        import torch

        return [("torch.Tensor", torch.tensor, torch.Tensor)]
    if backend == "tensorflow":
        import tensorflow as tf

        return [("tf.constant", tf.constant, tf.Tensor), ("tf.Variable", tf.Variable, tf.Tensor)]
    if backend == "mxnet":
        import mxnet as mx

        # MXNet's constructors default to float32 whatever the source: pass the dtype on.
        return [
            ("mx.nd.NDArray", lambda a: mx.nd.array(a, dtype=a.dtype), mx.nd.NDArray),
            ("mx.np.ndarray", lambda a: mx.np.array(a, dtype=a.dtype), mx.np.ndarray),
        ]
    return [("np.ndarray", np.asarray, np.ndarray)]


def make(backend, array, dtype="float32", kind=0):
    """A tensor of ``backend`` holding ``array`` in ``dtype``, of its ``kind``-th kind."""
    _, construct, _ = kinds(backend)[kind]
    return construct(np.asarray(array, dtype=dtype))


def values(backend, tensor):
    """The tensor's values as float64 NumPy, through the framework's own conversion."""
    if backend == "torch":
        return tensor.detach().numpy().astype(np.float64)
    if backend == "mxnet":
        return tensor.asnumpy().astype(np.float64)
    if backend == "tensorflow":
        return tensor.numpy().astype(np.float64)
    return np.asarray(tensor, dtype=np.float64)


def stack(backend, tensors):
    """The framework's own stack along a new first axis."""
    if backend == "torch":
        import torch

        return torch.stack(tensors, 0)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.stack(tensors, 0)
    if backend == "mxnet":
        import mxnet as mx

        if isinstance(tensors[0], mx.np.ndarray):
            return mx.np.stack(tensors, 0)
        return mx.nd.stack(*tensors, axis=0)
    return np.stack(tensors, 0)


def integer_tensor(backend):
    """A 3x3 int32 tensor of the framework, for dtype rules."""
    return make(backend, np.arange(9).reshape(3, 3), "int32")
