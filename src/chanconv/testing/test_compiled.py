"""Every public operation inside the backend's own compilers (``tf.function`` with a
``None`` batch, XLA, ``torch.compile(fullgraph=True)`` from cold): the compiled result
equals the eager one and the float64 oracle, gradients included. The modes are listed per
backend in ``chanconv.testing.compiled.COMPILED_MODES``; a backend with none (NumPy)
gets one item checking that capability instead of a skip."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pytest

import chanconv
from chanconv.algorithms import has_native, native_limit

from . import frameworks, oracle
from .compiled import COMPILED_MODES, compile_function, modes
from .plugin import backend_under_test

RTOL, ATOL = 1e-4, 1e-4

#: conv2d settings the compiled modes run: padding, strides, "same", dilation, groups, bias.
CASES: dict[str, tuple[tuple[int, ...], tuple[int, ...], dict[str, Any], bool]] = {
    "pad1": ((2, 4, 7, 6), (6, 4, 3, 3), {"padding": 1}, False),
    "same-stride2": ((2, 4, 7, 6), (6, 4, 3, 2), {"padding": "same", "stride": 2}, False),
    "dilated": ((2, 4, 8, 8), (6, 4, 3, 3), {"padding": 2, "dilation": 2}, False),
    "groups-bias": ((2, 4, 6, 6), (6, 2, 3, 3), {"stride": (2, 1), "groups": 2}, True),
    "pointwise": ((2, 4, 5, 5), (6, 4, 1, 1), {}, True),
}


#: Under a dynamic-shape compiler every extent is symbolic and tracing costs far more: the
#: dynamic modes run the cases that differ in kind (padding, groups with bias), not all.
DYNAMIC_CASES = ("pad1", "groups-bias")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "mode" not in metafunc.fixturenames:
        return
    found = modes(backend_under_test(metafunc.config)) or ("no-compiler",)
    if "case" in metafunc.fixturenames and metafunc.function.__name__.startswith("test_conv2d_"):
        pairs = [(m, c) for m in found for c in CASES
                 if not m.endswith("dynamic") or c in DYNAMIC_CASES]  # fmt: skip
        if found == ("no-compiler",):  # one item states the capability; cases are moot
            pairs = [("no-compiler", "pad1")]
        metafunc.parametrize(("mode", "case"), pairs, ids=[f"{m}-{c}" for m, c in pairs])
    else:
        metafunc.parametrize("mode", found)


def _data(*shapes: tuple[int, ...], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype("float32") for s in shapes]


def _pads(x_shape, k_shape, settings):
    stride = chanconv.geometry.as_pair("stride", settings.get("stride", 1))
    dilation = chanconv.geometry.as_pair("dilation", settings.get("dilation", 1))
    padding = settings.get("padding", 0)
    if not isinstance(padding, str):
        padding = chanconv.geometry.as_pair("padding", padding)
    h, w, kh, kw = x_shape[2], x_shape[3], k_shape[2], k_shape[3]
    pads = oracle.pads_for(h, w, kh, kw, stride, padding, dilation)
    return {"stride": stride, "pads": pads, "dilation": dilation,
            "groups": settings.get("groups", 1)}  # fmt: skip


def _close(got, want):
    np.testing.assert_allclose(np.asarray(got, dtype="float64"), want, rtol=RTOL, atol=ATOL)


def _assert_no_compiler(backend_name):
    """The documented capability: this backend has no compiler of its own, so it has no
    compiled mode (its eager results are checked against the oracle everywhere else)."""
    assert modes(backend_name) == () and COMPILED_MODES.get(backend_name, ()) == ()


@pytest.mark.parametrize("algorithm", ["auto", "direct", "im2col", "native"])
def test_conv2d_compiled_equals_eager_and_oracle(mode, case, algorithm, backend_name, adapter):
    if mode == "no-compiler":
        return _assert_no_compiler(backend_name)
    x_shape, k_shape, settings, with_bias = CASES[case]
    x, k, b = _data(x_shape, k_shape, (k_shape[0],))

    def fn(x, k, b):
        return chanconv.conv2d(x, k, b if with_bias else None, algorithm=algorithm, **settings)

    compiled = compile_function(mode, fn, [x_shape, k_shape, b.shape], [True, False, False])
    args = [adapter.asarray(a) for a in (x, k, b)]
    eager = adapter.to_numpy(fn(*args))
    got = adapter.to_numpy(compiled(*args))
    want = oracle.conv2d(x, k, b if with_bias else None, **_pads(x_shape, k_shape, settings))
    _close(got, want)
    np.testing.assert_allclose(got, eager, rtol=1e-5, atol=1e-5)
    # Another batch size: the same compiled function, no new static shape but the batch.
    (x3,) = _data((3, *x_shape[1:]), seed=1)
    got3 = adapter.to_numpy(compiled(adapter.asarray(x3), *args[1:]))
    _close(got3, oracle.conv2d(x3, k, b if with_bias else None,
                               **_pads(x_shape, k_shape, settings)))  # fmt: skip
    if mode.startswith("tf.function"):
        assert cast(Any, compiled).experimental_get_tracing_count() == 1  # one trace, any batch


@pytest.mark.parametrize("case", ["pad1", "same-stride2", "groups-bias"])
def test_gradients_through_compiled_conv2d(mode, case, backend_name, adapter):
    if mode == "no-compiler":
        return _assert_no_compiler(backend_name)
    x_shape, k_shape, settings, with_bias = CASES[case]
    x, k, b = _data(x_shape, k_shape, (k_shape[0],))
    pads = _pads(x_shape, k_shape, settings)
    y_ref = oracle.conv2d(x, k, b if with_bias else None, **pads)
    (dy,) = _data(y_ref.shape, seed=2)
    want = oracle.conv2d_vjp(x, k, dy, **pads)
    if mode.startswith("tf.function"):
        import tensorflow as tf

        def fn(x, k, b, dy):
            with tf.GradientTape() as tape:  # the tape inside the graph
                tape.watch([x, k, b])
                y = chanconv.conv2d(x, k, b if with_bias else None, **settings)
                loss = tf.reduce_sum(y * dy)
            return tape.gradient(loss, [x, k, b], unconnected_gradients="zero")

        compiled = compile_function(mode, fn, [x_shape, k_shape, b.shape, dy.shape],
                                    [True, False, False, True])  # fmt: skip
        grads = [g.numpy() for g in compiled(x, k, b, dy)]
    elif not mode.startswith("torch.compile"):
        # A third-party compiler (jax.jit): the framework's own autograd differentiates
        # the compiled function.
        fn = compile_function(mode, lambda x, k, b, dy: frameworks.weighted_sum(
            backend_name, chanconv.conv2d(x, k, b if with_bias else None, **settings), dy),
            [x_shape, k_shape, b.shape, dy.shape], [True, False, False, True])  # fmt: skip
        kind = frameworks.kinds(backend_name)[0]
        grads = frameworks.gradients(kind, lambda x, k, b: fn(x, k, b, dy), [x, k, b], "float32")
    else:
        import torch

        fn = compile_function(mode, lambda x, k, b: chanconv.conv2d(
            x, k, b if with_bias else None, **settings), [], [])  # fmt: skip
        leaves = [torch.tensor(a, requires_grad=True) for a in (x, k, b)]
        (fn(*leaves) * torch.tensor(dy)).sum().backward()
        grads = [np.zeros_like(a) if t.grad is None else t.grad.numpy()
                 for t, a in zip(leaves, (x, k, b), strict=True)]  # fmt: skip
    _close(grads[0], want[0])
    _close(grads[1], want[1])
    if with_bias:
        _close(grads[2], dy.sum(axis=(0, 2, 3)))


def test_conv2d_vjp_compiled(mode, backend_name, adapter):
    if mode == "no-compiler":
        return _assert_no_compiler(backend_name)
    # A strided "same" case where the shapes are static; under dynamic shapes, where every
    # kernel tap's slicing is traced symbolically, the 1x1 case.
    case = "pointwise" if mode.endswith("dynamic") else "same-stride2"
    x_shape, k_shape, settings, _ = CASES[case]
    x, k = _data(x_shape, k_shape)
    pads = _pads(x_shape, k_shape, settings)
    (dy,) = _data(oracle.conv2d(x, k, None, **pads).shape, seed=3)

    def fn(x, k, dy):
        dx, dk, _ = chanconv.conv2d_vjp(x, k, dy, **settings)
        return dx, dk

    compiled = compile_function(mode, fn, [x_shape, k_shape, dy.shape], [True, False, True])
    dx, dk = compiled(*(adapter.asarray(a) for a in (x, k, dy)))
    want = oracle.conv2d_vjp(x, k, dy, **pads)
    _close(adapter.to_numpy(dx), want[0])
    _close(adapter.to_numpy(dk), want[1])


SECTION = {
    "corr2d": ((5, 6), (2, 3), oracle.corr2d),
    "corr2d_multi_in": ((3, 5, 6), (3, 2, 3), oracle.corr2d_multi_in),
    "corr2d_multi_in_out": ((3, 5, 6), (4, 3, 2, 3), oracle.corr2d_multi_in_out),
    "corr2d_multi_in_out_1x1": ((3, 5, 6), (4, 3, 1, 1), oracle.corr2d_multi_in_out),
}


@pytest.mark.parametrize("op", list(SECTION))
def test_section_ops_compiled(mode, op, backend_name, adapter):
    if mode == "no-compiler":
        return _assert_no_compiler(backend_name)
    x_shape, k_shape, reference = SECTION[op]
    x, k = _data(x_shape, k_shape)
    compiled = compile_function(mode, getattr(chanconv, op), [x_shape, k_shape], [False, False])
    _close(adapter.to_numpy(compiled(adapter.asarray(x), adapter.asarray(k))), reference(x, k))


def test_unknown_extent_is_refused_by_name(mode, backend_name, adapter):
    """Only the batch may be unknown inside a graph, and h and w for the native algorithm:
    an unknown height is a ValueError naming the dimension and the algorithm, at trace
    time. (Under torch.compile every extent is a traced integer, so nothing is unknown
    there: it must simply compute.)"""
    if mode == "no-compiler":
        return _assert_no_compiler(backend_name)
    x, k = _data((2, 4, 7, 6), (6, 4, 3, 3))
    if mode.startswith("tf.function"):
        import tensorflow as tf

        spec = [tf.TensorSpec([None, 4, None, 6]), tf.TensorSpec([6, 4, 3, 3])]
        fn = tf.function(lambda x, k: chanconv.conv2d(x, k, padding=1, algorithm="im2col"),
                         input_signature=spec)  # fmt: skip
        with pytest.raises(ValueError, match=r"dimension h of X .* unknown .*'im2col'"):
            fn(x, k)
        # A geometry the adapter declares its native kernel wrong for, which an unknown
        # width may turn out to meet (depthwise, stride 2, maybe one output wide): refused
        # by name rather than risked; where no limit applies, it computes.
        (kd,) = _data((4, 1, 3, 3))
        g = chanconv.geometry.conv_geometry((None, 4, 7, None), kd.shape, stride=2, groups=4)
        limit = native_limit(adapter, g, "float32")
        depthwise = tf.function(
            lambda x, k: chanconv.conv2d(x, k, stride=2, groups=4, algorithm="native"),
            input_signature=[tf.TensorSpec([None, 4, 7, None]), tf.TensorSpec([4, 1, 3, 3])],
        )  # fmt: skip
        if limit is not None:
            with pytest.raises(ValueError, match=rf"dimension w of X .* unknown .*'im2col'"
                                                 rf".*{limit.key}"):  # fmt: skip
                depthwise(x, kd)
        else:
            got = depthwise(x, kd).numpy()
            _close(got, oracle.conv2d(x, kd, None, stride=(2, 2), pads=(0, 0, 0, 0), groups=4))
    else:  # torch.compile, jax.jit: tensors made by the framework itself
        make = frameworks.kinds(backend_name)[0].construct
        compiled = compile_function(mode, lambda x, k: chanconv.conv2d(x, k, padding=1), [], [])
        for h in (7, 9):
            (xh,) = _data((2, 4, h, 6))
            got = frameworks.to_numpy(backend_name, compiled(make(xh), make(k)))
            _close(got, oracle.conv2d(xh, k, None, pads=(1, 1, 1, 1)))


#: Settings whose padding needs no extent: numbers, "valid", and "same" at stride 1 (its
#: total is dilation*(k-1) whatever the size; a 3x2 kernel makes it asymmetric).
UNKNOWN_EXTENT_CASES: dict[str, tuple[tuple[int, ...], dict[str, Any]]] = {
    "pad1": ((6, 4, 3, 3), {"padding": 1}),
    "valid-stride2": ((6, 4, 3, 3), {"padding": "valid", "stride": 2}),
    "same": ((6, 4, 3, 2), {"padding": "same"}),
}


@pytest.mark.parametrize("case", list(UNKNOWN_EXTENT_CASES))
def test_native_runs_an_unknown_extent(mode, case, backend_name, adapter):
    """The framework's own convolution needs no extent: with h and w unknown until run
    time (a ``None`` batch, height and width in the signature), ``native`` and ``auto``
    (which chooses it, the one algorithm that can run) compute the oracle's result for two
    input sizes from one trace, and with XLA. A strided "same" padding, which depends on
    the extent, is a ValueError naming the dimension. (Under torch.compile extents are
    traced integers: the native result must simply be right for both sizes.)"""
    if mode == "no-compiler":
        return _assert_no_compiler(backend_name)
    k_shape, settings = UNKNOWN_EXTENT_CASES[case]
    (k,) = _data(k_shape)
    sizes = _data((2, 4, 7, 6), seed=1) + _data((3, 4, 9, 5), seed=2)
    algorithms = ["native", "auto"] if has_native(adapter) else ["auto"]
    for algorithm in algorithms:

        def fn(x, k, algorithm=algorithm):
            return chanconv.conv2d(x, k, algorithm=algorithm, **settings)

        if mode.startswith("tf.function"):
            import tensorflow as tf

            spec = [tf.TensorSpec([None, 4, None, None]), tf.TensorSpec(list(k_shape))]
            compiled = tf.function(fn, input_signature=spec, jit_compile=mode.endswith("xla"))
        else:
            compiled = compile_function(mode, fn, [], [])
        for x in sizes:
            got = adapter.to_numpy(compiled(adapter.asarray(x), adapter.asarray(k)))
            _close(got, oracle.conv2d(x, k, None, **_pads(x.shape, k_shape, settings)))
        if mode.startswith("tf.function"):
            assert cast(Any, compiled).experimental_get_tracing_count() == 1
            strided_same = tf.function(
                lambda x, k, algorithm=algorithm: chanconv.conv2d(
                    x, k, padding="same", stride=2, algorithm=algorithm),
                input_signature=[tf.TensorSpec([None, 4, 7, None]), spec[1]],
            )  # fmt: skip
            needs = r"padding='same' with stride \(2, 2\) needs extent w of X .* unknown"
            with pytest.raises(ValueError, match=needs):
                strided_same(sizes[0], k)
