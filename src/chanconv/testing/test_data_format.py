"""``data_format="channels_last"`` (Keras's name): X (n, h, w, ci) or (h, w, ci), the result
in the same layout, K in the book's (co, ci/groups, kh, kw); against the float64 oracle,
eagerly and in the backend's compiled modes."""

from __future__ import annotations

import numpy as np
import pytest

import chanconv
from chanconv.algorithms import has_native, has_native_channels_last

from . import frameworks, oracle
from .compiled import compile_function, modes

NHWC, NCHW = (0, 2, 3, 1), (0, 3, 1, 2)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 7, 6, 4)).astype("float32")  # NHWC
    k = rng.standard_normal((6, 2, 3, 3)).astype("float32")
    b = rng.standard_normal(6).astype("float32")
    return x, k, b


def _want(x, k, b):
    y = oracle.conv2d(x.transpose(NCHW), k, b, stride=(2, 1), pads=(1, 1, 1, 1), groups=2)
    return y.transpose(NHWC)


@pytest.mark.parametrize("algorithm", ["auto", "direct", "im2col"])
def test_conv2d_channels_last_matches_the_oracle(adapter, algorithm):
    x, k, b = _data()
    t = [adapter.asarray(a) for a in (x, k, b)]
    y = chanconv.conv2d(*t, stride=(2, 1), padding=1, groups=2, algorithm=algorithm,
                        data_format="channels_last")  # fmt: skip
    assert adapter.shape(y) == (2, 4, 6, 6)
    np.testing.assert_allclose(adapter.to_numpy(y), _want(x, k, b), rtol=1e-4, atol=1e-4)
    one = chanconv.conv2d(adapter.asarray(x[0]), t[1], t[2], stride=(2, 1), padding=1, groups=2,
                          data_format="channels_last")  # fmt: skip
    np.testing.assert_allclose(adapter.to_numpy(one), _want(x, k, b)[0], rtol=1e-4, atol=1e-4)


def test_conv2d_channels_last_in_compiled_modes(adapter, backend_name):
    x, k, b = _data()
    want = _want(x, k, b)
    for mode in modes(backend_name):
        fn = compile_function(
            mode,
            lambda x, k, b: chanconv.conv2d(x, k, b, stride=(2, 1), padding=1, groups=2,
                                            data_format="channels_last"),
            [x.shape, k.shape, b.shape], [True, False, False],
        )  # fmt: skip
        got = adapter.to_numpy(fn(*(adapter.asarray(a) for a in (x, k, b))))
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_conv2d_vjp_channels_last(adapter):
    x, k, b = _data()
    dy = np.random.default_rng(1).standard_normal((2, 4, 6, 6)).astype("float32")
    dx, dk, db = chanconv.conv2d_vjp(*(adapter.asarray(a) for a in (x, k, dy)),
                                     bias=adapter.asarray(b), stride=(2, 1), padding=1,
                                     groups=2, data_format="channels_last")  # fmt: skip
    ex, ek, _ = oracle.conv2d_vjp(x.transpose(NCHW), k, dy.transpose(NCHW), stride=(2, 1),
                                  pads=(1, 1, 1, 1), groups=2)  # fmt: skip
    np.testing.assert_allclose(adapter.to_numpy(dx), ex.transpose(NHWC), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(adapter.to_numpy(dk), ek, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(adapter.to_numpy(db), dy.sum(axis=(0, 1, 2)), rtol=1e-4, atol=1e-4)


def test_conv2d_layer_channels_last(adapter):
    x, _, _ = _data()
    first = chanconv.Conv2D(4, 6, 3, padding=1, groups=2, seed=3)
    last = chanconv.Conv2D(4, 6, 3, padding=1, groups=2, seed=3, data_format="channels_last")
    # Called the framework's way (Flax: init, then apply), through the suite's helpers.
    y_first = adapter.to_numpy(
        frameworks.call_layer(adapter.name, first, adapter.asarray(x.transpose(NCHW).copy()))
    )
    y_last = adapter.to_numpy(frameworks.call_layer(adapter.name, last, adapter.asarray(x)))
    if adapter.name == "tensorflow":  # Keras layers draw from Keras's initializers
        last.set_weights(first.get_weights())
        y_last = adapter.to_numpy(last(adapter.asarray(x)))
    np.testing.assert_allclose(y_last, y_first.transpose(NHWC), rtol=1e-5, atol=1e-5)


def test_bad_data_format_names_both(adapter):
    x, k, _ = _data()
    with pytest.raises(ValueError, match=r"'channels_first'.*'channels_last'.*'NHWC'"):
        chanconv.conv2d(adapter.asarray(x), adapter.asarray(k), data_format="NHWC")
    with pytest.raises(ValueError, match=r"'channels_first'.*'channels_last'"):
        chanconv.Conv2D(4, 6, 3, data_format="nhwc")


#: Channels-last settings for the native path: groups with bias and a stride, and "same"
#: with an even kernel (asymmetric padding), at stride 1 and 2. (name, K shape, settings,
#: with bias.)
NATIVE_CASES = [
    ("groups-bias", (6, 2, 3, 3), {"stride": (2, 1), "padding": 1, "groups": 2}, True),
    ("same", (6, 4, 2, 3), {"padding": "same"}, False),
    ("same-stride2", (6, 4, 3, 2), {"padding": "same", "stride": 2}, True),
]


def _native_case(case, seed=0):
    """X (2, 7, 6, 4) channels last, K, bias or None, the settings and the oracle's
    channels-last result."""
    _, k_shape, settings, with_bias = next(c for c in NATIVE_CASES if c[0] == case)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 7, 6, 4)).astype("float32")
    k = rng.standard_normal(k_shape).astype("float32")
    b = rng.standard_normal(k_shape[0]).astype("float32") if with_bias else None
    return x, k, b, settings


def _oracle_last(x, k, b, settings):
    """The float64 oracle's result for channels-last ``x`` ((n, h, w, ci) or (h, w, ci))."""
    first = x.transpose(NCHW) if x.ndim == 4 else x.transpose(2, 0, 1)[None]
    stride = chanconv.geometry.as_pair("stride", settings.get("stride", 1))
    padding = settings.get("padding", 0)
    if not isinstance(padding, str):
        padding = chanconv.geometry.as_pair("padding", padding)
    pads = oracle.pads_for(first.shape[2], first.shape[3], k.shape[2], k.shape[3], stride,
                           padding, (1, 1))  # fmt: skip
    y = oracle.conv2d(first, k, b, stride=stride, pads=pads, groups=settings.get("groups", 1))
    return y.transpose(NHWC) if x.ndim == 4 else y[0].transpose(1, 2, 0)


def _spy_on_permutes(adapter, monkeypatch):
    """The shapes of the tensors the adapter permutes from now on, in a list the test may
    clear."""
    permuted: list[tuple[int, ...]] = []
    permute = adapter.permute_dims

    def spy(t, axes):
        permuted.append(tuple(adapter.shape(t)))
        return permute(t, axes)

    monkeypatch.setattr(adapter, "permute_dims", spy)
    return permuted


def _algorithms(adapter):
    return ["native", "auto"] if has_native(adapter) else ["auto"]


@pytest.mark.parametrize("case", [c[0] for c in NATIVE_CASES])
def test_channels_last_native_permutes_neither_x_nor_y(adapter, case, monkeypatch):
    """On an adapter with ``NativeChannelsLast``, a channels-last call that runs the native
    algorithm (explicit, or auto's choice) hands X to the framework's channels-last kernel:
    no tensor shaped like X or the result is ever permuted (the kernel's own permute of K
    is the adapter's business). Elsewhere X is permuted to channels first, the documented
    path. Either way the result is the oracle's, batched and unbatched."""
    x, k, b, settings = _native_case(case)
    permuted = _spy_on_permutes(adapter, monkeypatch)
    # Twice each: the second call is served by the remembered plan.
    for algorithm in [a for a in _algorithms(adapter) for _ in range(2)]:
        for xs in (x, x[0]):
            want = _oracle_last(xs, k, b, settings)
            permuted.clear()
            y = chanconv.conv2d(adapter.asarray(xs), adapter.asarray(k),
                                None if b is None else adapter.asarray(b), algorithm=algorithm,
                                data_format="channels_last", **settings)  # fmt: skip
            assert adapter.shape(y) == want.shape
            np.testing.assert_allclose(adapter.to_numpy(y), want, rtol=1e-4, atol=1e-4)
            if has_native_channels_last(adapter):
                assert xs.shape not in permuted and want.shape not in permuted, (
                    algorithm, permuted)  # fmt: skip
            else:
                assert xs.shape in permuted, (algorithm, permuted)  # permuted to channels first


def test_channels_last_pointwise_is_one_matmul(adapter, backend_name, monkeypatch):
    """A 1x1 kernel at stride 1, unpadded, one group: channels last is the matmul's own
    layout, so ``im2col`` (and ``auto`` where its rule multiplies matrices) permutes
    neither X nor the result, on every backend; equal to the oracle batched and unbatched,
    with and without bias, and differentiated by the framework's autograd."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 5, 6, 8)).astype("float32")
    k = rng.standard_normal((3, 8, 1, 1)).astype("float32")
    b = rng.standard_normal(3).astype("float32")
    permuted = _spy_on_permutes(adapter, monkeypatch)
    for algorithm in ("im2col", "im2col", "auto"):  # twice: the remembered plan too
        for xs in (x, x[0]):
            for bias in (None, b):
                want = _oracle_last(xs, k, bias, {})
                permuted.clear()
                y = chanconv.conv2d(adapter.asarray(xs), adapter.asarray(k),
                                    None if bias is None else adapter.asarray(bias),
                                    algorithm=algorithm, data_format="channels_last")  # fmt: skip
                assert adapter.shape(y) == want.shape
                np.testing.assert_allclose(adapter.to_numpy(y), want, rtol=1e-4, atol=1e-4)
                if algorithm == "im2col":
                    assert xs.shape not in permuted and want.shape not in permuted, permuted
    monkeypatch.undo()
    dy = rng.standard_normal((2, 5, 6, 3)).astype("float32")
    ex, ek, _ = oracle.conv2d_vjp(x.transpose(NCHW), k, dy.transpose(NCHW), stride=(1, 1),
                                  pads=(0, 0, 0, 0), groups=1)  # fmt: skip

    def loss(X, K, B):
        y = chanconv.conv2d(X, K, B, algorithm="im2col", data_format="channels_last")
        return frameworks.weighted_sum(backend_name, y, dy)

    got = frameworks.gradients(frameworks.kinds(backend_name)[0], loss, [x, k, b], "float32")
    if got is not None:  # NumPy has no autograd: conv2d_vjp is tested beside
        np.testing.assert_allclose(got[0], ex.transpose(NHWC), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(got[1], ek, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(got[2], dy.sum(axis=(0, 1, 2)), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", [c[0] for c in NATIVE_CASES])
def test_gradients_through_channels_last_native(adapter, backend_name, case):
    """The framework's autograd (GradientTape on TensorFlow) differentiates the
    channels-last native path; NumPy, with no autograd, has ``conv2d_vjp``."""
    x, k, b, settings = _native_case(case)
    b = np.zeros(k.shape[0], "float32") if b is None else b
    dy = np.random.default_rng(4).standard_normal(_oracle_last(x, k, b, settings).shape)
    dy = dy.astype("float32")
    pads = _oracle_pads(x, k, settings)
    ex, ek, _ = oracle.conv2d_vjp(x.transpose(NCHW), k, dy.transpose(NCHW), **pads)
    for algorithm in _algorithms(adapter):

        def loss(X, K, B, algorithm=algorithm):
            y = chanconv.conv2d(X, K, B, algorithm=algorithm, data_format="channels_last",
                                **settings)  # fmt: skip
            return frameworks.weighted_sum(backend_name, y, dy)

        got = frameworks.gradients(frameworks.kinds(backend_name)[0], loss, [x, k, b], "float32")
        if got is None:  # NumPy: the explicit backward pass
            got = [adapter.to_numpy(g) for g in chanconv.conv2d_vjp(
                *(adapter.asarray(a) for a in (x, k, dy)), bias=adapter.asarray(b),
                data_format="channels_last", **settings)]  # fmt: skip
        np.testing.assert_allclose(got[0], ex.transpose(NHWC), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(got[1], ek, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(got[2], dy.sum(axis=(0, 1, 2)), rtol=1e-4, atol=1e-4)


def _oracle_pads(x, k, settings):
    stride = chanconv.geometry.as_pair("stride", settings.get("stride", 1))
    padding = settings.get("padding", 0)
    if not isinstance(padding, str):
        padding = chanconv.geometry.as_pair("padding", padding)
    pads = oracle.pads_for(x.shape[1], x.shape[2], k.shape[2], k.shape[3], stride, padding,
                           (1, 1))  # fmt: skip
    return {"stride": stride, "pads": pads, "groups": settings.get("groups", 1)}


def _transposes_of_x_or_y(graph) -> list[str]:
    """The Transpose ops of a graph whose input is a placeholder (X) or whose output is
    what the function returns (Y): the two a channels-last native call must not have."""
    returned = {t.name for op in graph.get_operations() if op.type == "Identity"
                for t in op.inputs}  # fmt: skip
    found = []
    for op in graph.get_operations():
        if op.type != "Transpose":
            continue
        fed = [t.op for t in op.inputs[:1]]
        if any(f.type == "Placeholder" and f.name.startswith("x") for f in fed) or any(
            t.name in returned for t in op.outputs
        ):
            found.append(op.name)
    return found


@pytest.mark.parametrize("case", [c[0] for c in NATIVE_CASES if "stride2" not in c[0]])
def test_channels_last_native_in_graphs(adapter, backend_name, case):
    """Inside ``tf.function`` (and with XLA) a channels-last native call holds no Transpose
    of X or of Y, however many the channels-first call would: at most one Transpose at all
    (the kernel's, to HWIO). Batch, height and width are unknown in the signature: one
    trace serves two input sizes, equal to the oracle. In other compiled modes the result
    is the oracle's; a backend with no compiler has none (the documented capability)."""
    x, k, b, settings = _native_case(case)
    found = modes(backend_name)
    if not found:
        assert chanconv.testing.compiled.COMPILED_MODES.get(backend_name, ()) == ()
    sizes = [x, np.random.default_rng(5).standard_normal((3, 9, 5, 4)).astype("float32")]
    for mode, algorithm in [(m, a) for m in found for a in _algorithms(adapter)]:
        if mode.startswith("tf.function"):
            import tensorflow as tf

            spec = [tf.TensorSpec([None, None, None, 4]), tf.TensorSpec(list(k.shape))]
            if b is not None:
                spec.append(tf.TensorSpec(list(b.shape)))

            def fn(x, k, b=None, algorithm=algorithm):
                return chanconv.conv2d(x, k, b, algorithm=algorithm,
                                       data_format="channels_last", **settings)  # fmt: skip

            compiled = tf.function(fn, input_signature=spec, jit_compile=mode.endswith("xla"))
            graph = compiled.get_concrete_function().graph
            if has_native_channels_last(adapter):
                assert _transposes_of_x_or_y(graph) == [], (mode, algorithm)
                kinds = [op.type for op in graph.get_operations()]
                assert kinds.count("Transpose") <= 1, (mode, algorithm, kinds)
            for xs in sizes:
                args = [xs, k] if b is None else [xs, k, b]
                got = compiled(*(tf.constant(a) for a in args)).numpy()
                np.testing.assert_allclose(got, _oracle_last(xs, k, b, settings), rtol=1e-4,
                                           atol=1e-4)  # fmt: skip
            assert compiled.experimental_get_tracing_count() == 1
        else:
            compiled = compile_function(
                mode, lambda x, k, b, algorithm=algorithm: chanconv.conv2d(
                    x, k, b, algorithm=algorithm, data_format="channels_last", **settings),
                [x.shape, k.shape, (k.shape[0],)], [True, False, False],
            )  # fmt: skip
            bias = np.zeros(k.shape[0], "float32") if b is None else b
            got = adapter.to_numpy(compiled(*(adapter.asarray(a) for a in (x, k, bias))))
            np.testing.assert_allclose(got, _oracle_last(x, k, b, settings), rtol=1e-4,
                                       atol=1e-4)  # fmt: skip
