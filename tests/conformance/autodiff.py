"""Each framework's own autograd and own convolution, called directly (not through
chanconv), to check chanconv's gradients against."""

from __future__ import annotations

import numpy as np


def grads(backend, fn, arrays, dtype):
    """Gradients of the scalar ``fn(*tensors)`` with respect to each tensor, made from the
    NumPy ``arrays`` in ``dtype``, by the framework's autograd; None on NumPy (no autograd)."""
    if backend == "torch":
        import torch

        ts = [torch.tensor(a, dtype=getattr(torch, dtype), requires_grad=True) for a in arrays]
        fn(*ts).backward()
        return [t.grad.numpy().astype(np.float64) for t in ts]
    if backend == "tensorflow":
        import tensorflow as tf

        vs = [tf.Variable(a.astype(dtype)) for a in arrays]
        with tf.GradientTape() as tape:
            out = fn(*vs)
        return [g.numpy().astype(np.float64) for g in tape.gradient(out, vs)]
    if backend == "mxnet":
        from mxnet import autograd
        from mxnet import np as mnp

        ts = [mnp.array(a, dtype=dtype) for a in arrays]
        for t in ts:
            t.attach_grad()
        with autograd.record():
            out = fn(*ts)
        out.backward()
        return [t.grad.asnumpy().astype(np.float64) for t in ts]
    return None


def weighted_sum(backend, y, g):
    """sum(y * g) with the framework's own ops; g is a NumPy array of y's shape."""
    if backend == "torch":
        import torch

        return (y * torch.tensor(g, dtype=y.dtype)).sum()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.reduce_sum(y * tf.constant(g, dtype=y.dtype))
    if backend == "mxnet":
        from mxnet import np as mnp

        return (y * mnp.array(g, dtype=y.dtype)).sum()
    return (y * g).sum()


def framework_conv(backend, x, k, b, stride, padding, dilation, groups):
    """The framework's own convolution on its own tensors (NCHW in and out), symmetric
    integer padding; None where the framework's CPU kernels cannot do the case and its
    gradient themselves (TensorFlow: groups, or any dilation above 1)."""
    (sh, sw), (dh, dw), (ph, pw) = stride, dilation, padding
    if backend == "torch":
        import torch.nn.functional as F

        return F.conv2d(x, k, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    if backend == "tensorflow":
        if groups != 1 or max(dh, dw) > 1:
            return None
        import tensorflow as tf

        y = tf.nn.conv2d(tf.transpose(x, (0, 2, 3, 1)), tf.transpose(k, (2, 3, 1, 0)),
                         strides=(1, sh, sw, 1), padding=((0, 0), (ph, ph), (pw, pw), (0, 0)),
                         dilations=(1, dh, dw, 1))  # fmt: skip
        y = tf.transpose(y, (0, 3, 1, 2))
        return y if b is None else y + tf.reshape(b, (1, -1, 1, 1))
    if backend == "mxnet":
        from mxnet import npx

        co, _, kh, kw = k.shape
        return npx.convolution(x, k, b, kernel=(kh, kw), stride=stride, dilate=dilation,
                               pad=padding, num_filter=co, num_group=groups,
                               no_bias=b is None, layout="NCHW")  # fmt: skip
    return None
