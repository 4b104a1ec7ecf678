"""Each framework's own API, called directly and never through chanconv: making native
tensors from NumPy arrays, reading results back, stacking, and autograd.

The conformance tests use these helpers to build what a user of that framework would pass
and to check what comes back, so a bug in chanconv's adapters cannot hide itself by being
used on both sides of an assertion.

The built-in backends' helpers are written out here; a third-party backend supplies its own
through the typed extension
[`chanconv.protocol.ConformanceHelpers`][chanconv.protocol.ConformanceHelpers] (see
``plugin_helpers``), so this module names no third-party framework.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

import numpy as np
import pytest

from chanconv import registry
from chanconv.protocol import ConformanceHelpers, implements

BACKENDS = ("numpy", "torch", "tensorflow", "mxnet", "dask")

#: Array API libraries the suite knows, served by chanconv's generic adapter. They have no
#: autograd and no convolution of their own; results are read back through DLPack.
ARRAY_API = ("array_api_strict",)


@functools.cache
def plugin_helpers(backend: str) -> Any:  # FrameworkHelpers | None, read unnarrowed here
    """The [`chanconv.protocol.FrameworkHelpers`][chanconv.protocol.FrameworkHelpers] of a backend
    that is not built in,
    from its adapter's ConformanceHelpers extension; None for the built-in ones."""
    if backend in BACKENDS or backend in ARRAY_API:
        return None
    adapter = registry.get_adapter(backend)
    if not implements(adapter, ConformanceHelpers):
        raise pytest.UsageError(
            f"the {backend} backend's adapter does not implement "
            "chanconv.protocol.ConformanceHelpers, which the conformance suite needs to "
            "make and read its tensors without going through chanconv"
        )
    return cast(ConformanceHelpers, adapter).conformance_helpers()


@dataclass(frozen=True)
class Kind:
    """One array kind of a framework: how to make it, and what a result in it looks like."""

    backend: str
    name: str
    construct: Callable[[np.ndarray], Any]
    #: A result in this kind is an instance of one of these...
    result_types: tuple[type, ...]
    #: ...and of none of these (MXNet's mx.np.ndarray subclasses mx.nd.NDArray).
    not_types: tuple[type, ...] = ()
    #: ...and, where given, passes this (array-api-strict: still on the inputs' device).
    where: Callable[[Any], bool] | None = None

    def tensor(self, array, dtype="float32"):
        """A tensor of this kind holding ``array`` cast to ``dtype`` (by NumPy, exactly)."""
        return self.construct(np.asarray(array, dtype=dtype))

    def is_result(self, y):
        return (isinstance(y, self.result_types) and not isinstance(y, self.not_types)
                and (self.where is None or self.where(y)))  # fmt: skip


def kinds(backend):
    """The array kinds a user of ``backend`` may pass; the first is the framework's default."""
    helpers = plugin_helpers(backend)
    if helpers is not None:
        types = tuple(helpers.result_types())
        return [Kind(backend, label, make, types) for label, make in helpers.kinds()]
    if backend == "numpy":
        return [Kind(backend, "np.ndarray", np.asarray, (np.ndarray,))]
    if backend == "torch":
        import torch

        return [Kind(backend, "torch.Tensor", torch.tensor, (torch.Tensor,))]
    if backend == "tensorflow":
        import tensorflow as tf

        # A Variable in gives a plain Tensor out, as TensorFlow's own ops do.
        return [
            Kind(backend, "tf.constant", tf.constant, (tf.Tensor,)),
            Kind(backend, "tf.Variable", tf.Variable, (tf.Tensor,)),
        ]
    if backend == "mxnet":
        import mxnet as mx

        # Both constructors default to float32 whatever the source dtype: pass it on.
        return [
            Kind(backend, "mx.nd.NDArray", lambda a: mx.nd.array(a, dtype=a.dtype),
                 (mx.nd.NDArray,), (mx.np.ndarray,)),
            Kind(backend, "mx.np.ndarray", lambda a: mx.np.array(a, dtype=a.dtype),
                 (mx.np.ndarray,)),
        ]  # fmt: skip
    if backend == "array_api_strict":
        import array_api_strict as xp

        # The standard's own asarray and reshape, from Python numbers (flat, so that empty
        # dimensions survive): nothing of NumPy's reaches the array. On another device than
        # the default, as on a second GPU: results must stay there, though chanconv's own
        # new arrays (padding, nested lists) start on the default one.
        device = xp.Device("device1")

        def construct(a):
            flat = xp.asarray(a.ravel().tolist(), dtype=getattr(xp, a.dtype.name),
                              device=device)  # fmt: skip
            return xp.reshape(flat, a.shape)

        return [Kind(backend, "array_api_strict.Array (device1)", construct,
                     (type(xp.asarray(0.0)),), where=lambda y: y.device == device)]  # fmt: skip
    if backend == "dask":
        import dask.array as da

        # Chunks of 2 along every axis: batches, channels and halos all cross chunk borders.
        return [Kind(backend, "dask.array", lambda a: da.from_array(a, chunks=2), (da.Array,))]
    raise ValueError(f"unknown backend {backend!r}")


def from_numpy(adapter, array):
    """``array`` as a tensor of ``adapter``'s backend: the framework's own constructor where
    it chooses more than the adapter's ``asarray`` would (Dask: small chunks, so the suite's
    inputs are chunked across batch and space), else the adapter's ``asarray``."""
    if adapter.name == "dask":
        return kinds("dask")[0].construct(np.asarray(array))
    return adapter.asarray(array)


def native_types(backend):
    """Every type a tensor of ``backend`` may have (any kind)."""
    return tuple({t for kind in kinds(backend) for t in kind.result_types})


def to_numpy(backend, t):
    """A NumPy copy of ``t`` in its own dtype, by the framework's own conversion."""
    if plugin_helpers(backend) is not None:
        return plugin_helpers(backend).to_numpy(t)
    if backend == "torch":
        return t.detach().numpy()
    if backend == "tensorflow":
        return t.numpy()
    if backend == "mxnet":
        return t.asnumpy()
    if backend in ARRAY_API:
        return np.from_dlpack(t).copy()
    if backend == "dask":
        return np.asarray(t.compute())
    return np.array(t)


def values(backend, t):
    """``t``'s values as float64 NumPy (exact for every narrower float)."""
    return to_numpy(backend, t).astype(np.float64)


def dtype_name(backend, t):
    """The standard name of ``t``'s dtype, read through the framework."""
    if plugin_helpers(backend) is not None:
        return plugin_helpers(backend).dtype_name(t)
    if backend == "torch":
        return str(t.dtype).removeprefix("torch.")
    if backend == "tensorflow":
        return t.dtype.name
    if backend in ARRAY_API:
        xp = t.__array_namespace__()
        names = ("float16", "bfloat16", "float32", "float64", "int32", "int64", "bool")
        return next(n for n in names if hasattr(xp, n) and t.dtype == getattr(xp, n))
    # NumPy, and MXNet, which describes dtypes with NumPy's types (mx.nd: a scalar type).
    return np.dtype(t.dtype).name


def shape(backend, t):
    """The shape as a tuple of ints (TensorFlow's is a TensorShape)."""
    return tuple(int(d) for d in t.shape)


def stack(backend, tensors):
    """The framework's own stack along a new first axis, in the tensors' kind."""
    if plugin_helpers(backend) is not None:
        return plugin_helpers(backend).stack(tensors)
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
    if backend in ARRAY_API:
        return tensors[0].__array_namespace__().stack(tensors, axis=0)
    if backend == "dask":
        import dask.array as da

        return da.stack(tensors, 0)
    return np.stack(tensors, 0)


def can_matmul(backend, dtype):
    """Whether the framework's own CPU matmul computes in ``dtype`` (MXNet 1.9 refuses
    float16, for instance). Tried, not looked up, so the answer follows the installed
    version."""
    a = np.eye(2, dtype=dtype)
    try:
        if plugin_helpers(backend) is not None:
            make = plugin_helpers(backend).kinds()[0][1]
            y = plugin_helpers(backend).matmul(make(a), make(a))
        elif backend == "torch":
            import torch

            y = torch.matmul(torch.tensor(a), torch.tensor(a))
        elif backend == "tensorflow":
            import tensorflow as tf

            y = tf.linalg.matmul(tf.constant(a), tf.constant(a))
        elif backend == "mxnet":
            import mxnet as mx

            y = mx.np.matmul(mx.np.array(a, dtype=dtype), mx.np.array(a, dtype=dtype))
        elif backend in ARRAY_API:
            t = kinds(backend)[0].tensor(a, dtype)
            y = t.__array_namespace__().matmul(t, t)
        elif backend == "dask":
            import dask.array as da

            y = da.matmul(da.from_array(a), da.from_array(a))
        else:
            y = np.matmul(a, a)
        got = to_numpy(backend, y)  # MXNet is asynchronous: errors surface on reading
    except Exception:
        return False
    return got.dtype == np.dtype(dtype) and np.array_equal(got, a)


@cache
def has_dtype(backend, dtype):
    """Whether the framework has ``dtype`` at all. The Array API standard has no float16
    (nor bfloat16), so array-api-strict has none: a capability it truly lacks, and the
    tests that need one say so rather than fail. Tried, not looked up."""
    try:
        t = kinds(backend)[0].tensor([1.0], dtype)
    except (AttributeError, TypeError, ValueError):
        return False
    return dtype_name(backend, t) == dtype


def has_autograd(backend):
    # Dask, like NumPy, has none: conv2d_vjp is its backward pass.
    return backend not in ("numpy", "dask") and backend not in ARRAY_API


def weighted_sum(backend, y, g):
    """sum(y * g) with the framework's own ops, in ``y``'s kind; ``g`` is NumPy."""
    if plugin_helpers(backend) is not None:
        return plugin_helpers(backend).weighted_sum(y, g)
    if backend == "torch":
        import torch

        return (y * torch.tensor(g, dtype=y.dtype)).sum()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.reduce_sum(y * tf.constant(g, dtype=y.dtype))
    if backend == "mxnet":
        import mxnet as mx

        if isinstance(y, mx.np.ndarray):
            return (y * mx.np.array(g, dtype=y.dtype)).sum()
        return (y * mx.nd.array(g, dtype=y.dtype)).sum()
    if backend in ARRAY_API:
        xp = y.__array_namespace__()
        return xp.sum(y * xp.asarray(g.tolist(), dtype=y.dtype))
    return (y * g).sum()


def gradients(kind, fn, arrays, dtype):
    """The gradients of the scalar ``fn(*tensors)`` with respect to each tensor, made of
    ``kind`` from the NumPy ``arrays`` in ``dtype``, by the framework's own autograd, as
    float64 NumPy. None on NumPy, which has no autograd."""
    backend = kind.backend
    if plugin_helpers(backend) is not None:
        grads = plugin_helpers(backend).gradients(lambda a: kind.tensor(a, dtype), fn, arrays)
        return [np.asarray(g).astype(np.float64) for g in grads]
    if backend == "torch":
        ts = [kind.tensor(a, dtype).requires_grad_(True) for a in arrays]
        fn(*ts).backward()
        return [values(backend, t.grad) for t in ts]
    if backend == "tensorflow":
        import tensorflow as tf

        ts = [kind.tensor(a, dtype) for a in arrays]
        with tf.GradientTape() as tape:
            for t in ts:  # Variables are watched anyway; constants must be asked for
                tape.watch(t)
            out = fn(*ts)
        return [values(backend, g) for g in tape.gradient(out, ts)]
    if backend == "mxnet":
        from mxnet import autograd

        ts = [kind.tensor(a, dtype) for a in arrays]
        for t in ts:
            t.attach_grad()
        with autograd.record():
            out = fn(*ts)
        out.backward()
        return [values(backend, t.grad) for t in ts]
    return None


def framework_conv(backend, x, k, b, stride, padding, dilation, groups):
    """The framework's own convolution on its own tensors (NCHW in and out), symmetric
    integer padding; None where the framework's CPU kernels cannot do the case and its
    gradient themselves (TensorFlow: groups, or any dilation above 1)."""
    (sh, sw), (dh, dw), (ph, pw) = stride, dilation, padding
    if plugin_helpers(backend) is not None:
        return plugin_helpers(backend).conv2d(x, k, b, stride, padding, dilation, groups)
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
        from mxnet import np as mnp
        from mxnet import npx

        x, k, b = (t if t is None or isinstance(t, mnp.ndarray) else t.as_np_ndarray()
                   for t in (x, k, b))  # fmt: skip
        co, _, kh, kw = k.shape
        return npx.convolution(x, k, b, kernel=(kh, kw), stride=stride, dilate=dilation,
                               pad=padding, num_filter=co, num_group=groups,
                               no_bias=b is None, layout="NCHW")  # fmt: skip
    return None


#: The layer type each built-in backend's Conv2D must be: the framework's module system, or
#: chanconv's own.
LAYER_BASES = {
    "numpy": ("chanconv.layers", "Conv2DLayer"),
    # The generic Array API adapter: no module system to join, so chanconv's own layer.
    "array_api_strict": ("chanconv.layers", "Conv2DLayer"),
    "torch": ("torch.nn", "Module"),
    "tensorflow": ("keras.layers", "Layer"),
    "mxnet": ("mxnet.gluon", "Block"),
    # Dask has no module system of its own either: chanconv's layer, on lazy arrays.
    "dask": ("chanconv.layers", "Conv2DLayer"),
}


def layer_base(backend):
    """The class a ``chanconv.Conv2D`` of ``backend`` must be an instance of."""
    if plugin_helpers(backend) is not None:
        return plugin_helpers(backend).layer_base()
    module_name, base = LAYER_BASES[backend]
    return getattr(importlib.import_module(module_name), base)


def layer_weight(backend, layer):
    """A Conv2D layer's kernel as NumPy, read the framework's way."""
    if plugin_helpers(backend) is not None:
        return plugin_helpers(backend).layer_weight(layer)
    if backend == "tensorflow":
        return layer.kernel.numpy()
    if backend == "mxnet":
        return layer.weight.data().asnumpy()
    if backend == "torch":
        return layer.weight.detach().numpy()
    return np.array(layer.weight)


def call_layer(backend, layer, x):
    """The layer applied to ``x`` the framework's way."""
    if plugin_helpers(backend) is not None:
        return plugin_helpers(backend).call_layer(layer, x)
    return layer(x)
