"""conv2d on the backend under test: every algorithm against the float64 loop oracle,
gradients against the oracle and the framework's own convolution, and bad arguments."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import chanconv
from chanconv import algorithms as conv
from chanconv import fourier
from chanconv.geometry import conv_geometry

from . import frameworks, oracle

ALGORITHMS = ["auto", "direct", "im2col", "native", "fourier"]
EPS = {"float16": 2.0**-10, "float32": 2.0**-23, "float64": 2.0**-52}


def has_native(adapter):
    return isinstance(adapter, chanconv.protocol.NativeConv2d)


def relative_error(got, want, magnitude):
    """max |got - want| over the largest magnitude of the terms summed: the figure the
    JSON report keeps per item (``record_error``)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    scale = max(float(np.max(np.abs(magnitude))), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(got - want))) / scale


def assert_native_refused(adapter, call):
    """The documented capability: a backend without its own convolution (NumPy) refuses
    algorithm='native' with a ValueError naming it, before computing anything."""
    assert not has_native(adapter)
    with pytest.raises(ValueError, match=r"algorithm='native'.*" + adapter.name):
        call()


def tensor(adapter, array, dtype):
    return frameworks.from_numpy(adapter, np.asarray(array).astype(dtype))


def close_to_oracle(y, ref, magnitude, taps, dtype):
    """|y - ref| within a rounding bound: 4 * eps * taps * (|x| conv |k|) per element, the
    worst case of summing ``taps`` products in ``dtype``, plus a floor for tiny values."""
    bound = 4 * EPS[dtype] * (taps + 1) * magnitude + 8 * EPS[dtype]
    err = np.abs(np.asarray(y, np.float64) - ref)
    assert np.all(err <= bound), f"worst error {err.max():.3g}, bound {bound.max():.3g}"


@st.composite
def conv_cases(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    ci, co = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.one_of(st.sampled_from(["same", "valid"]), st.integers(0, 2),
                             st.tuples(st.integers(0, 2), st.integers(0, 2))))  # fmt: skip
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    pad_pair = padding if isinstance(padding, (str, tuple)) else (padding, padding)
    pads = oracle.pads_for(h, w, kh, kw, stride, pad_pair, dilation)
    assume(h + pads[0] + pads[1] >= dilation[0] * (kh - 1) + 1)
    assume(w + pads[2] + pads[3] >= dilation[1] * (kw - 1) + 1)
    return {
        "n": draw(st.integers(1, 2)), "ci": ci, "co": co, "h": h, "w": w, "kh": kh, "kw": kw,
        "stride": stride, "dilation": dilation, "padding": padding, "pads": pads,
        "groups": groups, "bias": draw(st.booleans()), "unbatched": draw(st.booleans()),
        "dtype": draw(st.sampled_from(["float32", "float64", "float16"])),
        "seed": draw(st.integers(0, 2**16)),
    }  # fmt: skip


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow,
                                 HealthCheck.function_scoped_fixture])  # fmt: skip
@given(case=conv_cases())
def test_conv2d_matches_the_loop_oracle(adapter, backend_name, algorithm, case, record_error):
    # record_error keeps the worst over all examples: one figure per item, as intended.
    c = case
    rng = np.random.default_rng(c["seed"])
    dtype = c["dtype"]
    # Capability: a library without float16 (the Array API standard has none) gets the
    # same number of cases, in the dtypes it has.
    assume(frameworks.has_dtype(backend_name, dtype))
    x = rng.standard_normal((c["n"], c["ci"], c["h"], c["w"])).astype(dtype)
    k = rng.standard_normal((c["co"], c["ci"] // c["groups"], c["kh"], c["kw"])).astype(dtype)
    b = rng.standard_normal(c["co"]).astype(dtype) if c["bias"] else None
    args = {"stride": c["stride"], "padding": c["padding"], "dilation": c["dilation"],
            "groups": c["groups"], "algorithm": algorithm}  # fmt: skip
    X = tensor(adapter, x[0] if c["unbatched"] else x, dtype)
    B = None if b is None else tensor(adapter, b, dtype)

    def call():
        return chanconv.conv2d(X, tensor(adapter, k, dtype), B, **args)

    if algorithm == "native" and not has_native(adapter):
        assert_native_refused(adapter, call)
        return
    y = call()
    geometry = dict(stride=c["stride"], pads=c["pads"], dilation=c["dilation"], groups=c["groups"])
    ref = oracle.conv2d(x, k, b, **geometry)
    magnitude = oracle.conv2d(np.abs(x), np.abs(k), None if b is None else np.abs(b), **geometry)
    if c["unbatched"]:
        ref, magnitude = ref[0], magnitude[0]
    assert adapter.is_tensor(y)
    assert adapter.shape(y) == ref.shape
    assert adapter.dtype_name(y) == dtype
    got = adapter.to_numpy(y)
    record_error(relative_error(got, ref, magnitude))
    close_to_oracle(got, ref, magnitude, x.shape[1] * c["kh"] * c["kw"], dtype)


def test_section_functions_are_conv2d_special_cases(adapter):
    rng = np.random.default_rng(1)
    x, k = rng.standard_normal((3, 6, 5)), rng.standard_normal((4, 3, 2, 3))
    X, K = tensor(adapter, x, "float32"), tensor(adapter, k, "float32")
    general = adapter.to_numpy(chanconv.conv2d(X, K))
    assert np.array_equal(adapter.to_numpy(chanconv.corr2d_multi_in_out(X, K)), general)
    first = adapter.to_numpy(chanconv.corr2d_multi_in(X, tensor(adapter, k[0], "float32")))
    # One output channel instead of four: another BLAS call shape, so equal up to rounding.
    np.testing.assert_allclose(first, general[0], rtol=1e-5, atol=1e-5)


GRADIENT_CASES = [
    dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1),
    dict(stride=(2, 1), padding=(1, 2), dilation=(1, 1), groups=1),
    dict(stride=(2, 2), padding=(1, 1), dilation=(2, 1), groups=1),
    dict(stride=(1, 2), padding=(2, 0), dilation=(1, 2), groups=2),
    dict(stride=(1, 1), padding="same", dilation=(1, 1), groups=2),  # asymmetric: even kernel
]


def _gradient_problem(case, seed=0):
    rng = np.random.default_rng(seed)
    g = case["groups"]
    x = rng.standard_normal((2, 2 * g, 7, 6))
    k = rng.standard_normal((3 * g, 2, 3, 2))
    b = rng.standard_normal(3 * g)
    pad_pair = case["padding"]
    pads = oracle.pads_for(7, 6, 3, 2, case["stride"], pad_pair, case["dilation"])
    geometry = dict(stride=case["stride"], pads=pads, dilation=case["dilation"], groups=g)
    dy = rng.standard_normal(oracle.conv2d(x, k, b, **geometry).shape)
    return x, k, b, dy, geometry


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("case", GRADIENT_CASES, ids=lambda c: "-".join(map(str, c.values())))
def test_gradients_flow_through_every_algorithm(
    adapter, backend_name, algorithm, case, record_error
):
    """Autograd of sum(conv2d(X, K, bias) * G) matches the oracle's backward loops; on NumPy,
    which has no autograd, conv2d_vjp is the backward pass and is checked instead."""
    x, k, b, dy, geometry = _gradient_problem(case)
    args: dict[str, Any] = {key: case[key] for key in ("stride", "padding", "dilation", "groups")}
    expected = oracle.conv2d_vjp(x, k, dy, **geometry)

    def loss(X, K, B):
        y = chanconv.conv2d(X, K, B, algorithm=algorithm, **args)
        return frameworks.weighted_sum(backend_name, y, dy.astype("float32"))

    if algorithm == "native" and not has_native(adapter):
        assert_native_refused(adapter, lambda: loss(*(tensor(adapter, a, "float32")
                                                       for a in (x, k, b))))  # fmt: skip
        return
    got = frameworks.gradients(frameworks.kinds(backend_name)[0], loss, [x, k, b], "float32")
    if got is None:  # NumPy: the explicit backward pass
        got = [adapter.to_numpy(g) for g in chanconv.conv2d_vjp(  # type: ignore[misc]
            *(tensor(adapter, a, "float32") for a in (x, k)), tensor(adapter, dy, "float32"),
            bias=tensor(adapter, b, "float32"), **args)]  # fmt: skip
    for name, g, e in zip(("dX", "dK", "dbias"), got, expected, strict=True):
        record_error(relative_error(g, e, np.abs(e)))
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4, err_msg=name)


@pytest.mark.parametrize("case", GRADIENT_CASES, ids=lambda c: "-".join(map(str, c.values())))
def test_conv2d_vjp_matches_oracle_framework_and_finite_differences(adapter, backend_name, case):
    x, k, b, dy, geometry = _gradient_problem(case, seed=3)
    args = {key: case[key] for key in ("stride", "padding", "dilation", "groups")}
    X, K, B, DY = (tensor(adapter, a, "float64") for a in (x, k, b, dy))
    dx, dk, db = (adapter.to_numpy(g) for g in chanconv.conv2d_vjp(X, K, DY, bias=B, **args))
    ex, ek, eb = oracle.conv2d_vjp(x, k, dy, **geometry)
    for got, want in ((dx, ex), (dk, ek), (db, eb)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)

    # Finite differences of chanconv.conv2d itself, on a few entries of X and K.
    def objective(xv, kv):
        y = chanconv.conv2d(tensor(adapter, xv, "float64"), tensor(adapter, kv, "float64"),
                            B, **args)  # fmt: skip
        return float((adapter.to_numpy(y) * dy).sum())

    rng, h = np.random.default_rng(7), 1e-6
    for array, grad, is_x in ((x, dx, True), (k, dk, False)):
        for _ in range(4):
            idx = tuple(int(rng.integers(0, s)) for s in array.shape)
            step = np.zeros_like(array)
            step[idx] = h
            plus = objective(x + step, k) if is_x else objective(x, k + step)
            minus = objective(x - step, k) if is_x else objective(x, k - step)
            assert abs((plus - minus) / (2 * h) - grad[idx]) < 1e-6

    # Against the framework's own convolution's autograd, where the framework has both.
    sym = case["padding"] if isinstance(case["padding"], tuple) else None
    if sym is not None and backend_name != "numpy":

        def native_loss(X_, K_, B_):
            y = frameworks.framework_conv(backend_name, X_, K_, B_, case["stride"], sym,
                                        case["dilation"], case["groups"])  # fmt: skip
            return None if y is None else frameworks.weighted_sum(backend_name, y, dy)

        probe = native_loss(*(tensor(adapter, a, "float64") for a in (x, k, b)))
        if probe is not None:
            native = frameworks.gradients(
                frameworks.kinds(backend_name)[0], native_loss, [x, k, b], "float64"
            )
            for got, want in zip((dx, dk, db), native, strict=True):
                np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_results_come_back_in_the_callers_kind_and_dtype(adapter):
    rng = np.random.default_rng(2)
    for dtype in ("float32", "float64"):
        X = tensor(adapter, rng.standard_normal((2, 4, 6, 6)), dtype)
        K = tensor(adapter, rng.standard_normal((6, 2, 3, 3)), dtype)
        y = chanconv.conv2d(X, K, groups=2, stride=2, padding="same")
        assert type(y) is type(X)
        assert adapter.is_tensor(y) and adapter.dtype_name(y) == dtype
        assert adapter.shape(y) == (2, 6, 3, 3)
    mixed = chanconv.conv2d(tensor(adapter, np.ones((1, 5, 5)), "float32"),
                            tensor(adapter, np.ones((2, 1, 3, 3)), "float64"))  # fmt: skip
    assert adapter.dtype_name(mixed) == "float64"
    assert adapter.shape(mixed) == (2, 3, 3)


BAD_ARGUMENTS = [
    (dict(groups=3), ValueError, r"groups=3 must divide"),
    (dict(groups=0), ValueError, r"groups must be positive"),
    (dict(stride=0), ValueError, r"stride must be positive"),
    (dict(stride=(1, -2)), ValueError, r"stride must be positive"),
    (dict(dilation=0), ValueError, r"dilation must be positive"),
    (dict(padding=-1), ValueError, r"padding must not be negative"),
    (dict(padding="full"), ValueError, r"padding must be an int, a pair, 'valid' or 'same'"),
    (dict(padding=1.5), TypeError, r"padding must be an int or a pair"),
    (dict(stride=(1, 2, 3)), TypeError, r"stride must be an int or a pair"),
    (dict(dilation=5), ValueError, r"output would be empty"),
    (dict(algorithm="fft"), ValueError, r"unknown algorithm 'fft'"),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), BAD_ARGUMENTS,
                         ids=[str(a[0]) for a in BAD_ARGUMENTS])  # fmt: skip
def test_bad_arguments_are_refused_with_the_rule(adapter, kwargs, error, message):
    X = tensor(adapter, np.ones((1, 4, 5, 5)), "float32")
    K = tensor(adapter, np.ones((6, 2, 2, 2)), "float32")
    base = {"groups": 2}
    with pytest.raises(error, match=message):
        chanconv.conv2d(X, K, **{**base, **kwargs})


def test_bad_shapes_are_refused_with_the_shapes(adapter):
    X = tensor(adapter, np.ones((1, 4, 5, 5)), "float32")
    with pytest.raises(ValueError, match=r"X has 4 input channels but K expects 3"):
        chanconv.conv2d(X, tensor(adapter, np.ones((2, 3, 2, 2)), "float32"))
    with pytest.raises(ValueError, match=r"bias has shape \(3,\).*must have shape \(2,\)"):
        chanconv.conv2d(X, tensor(adapter, np.ones((2, 4, 2, 2)), "float32"),
                        tensor(adapter, np.ones(3), "float32"))  # fmt: skip
    with pytest.raises(ValueError, match=r"output would be empty.*\(1, 4, 5, 5\)"):
        chanconv.conv2d(X, tensor(adapter, np.ones((2, 4, 6, 1)), "float32"))
    with pytest.raises(ValueError, match=r"must have 3 or 4 dimensions"):
        chanconv.conv2d(tensor(adapter, np.ones((4, 5)), "float32"),
                        tensor(adapter, np.ones((2, 4, 2, 2)), "float32"))  # fmt: skip
    with pytest.raises(ValueError, match=r"dY has shape \(1, 2, 5, 5\).*\(1, 2, 4, 4\)"):
        chanconv.conv2d_vjp(X, tensor(adapter, np.ones((2, 4, 2, 2)), "float32"),
                            tensor(adapter, np.ones((1, 2, 5, 5)), "float32"))  # fmt: skip


def test_auto_follows_its_stated_rule(adapter):
    """Pointwise (1x1, stride 1, unpadded) -> im2col unless the adapter prefers its own
    convolution there; else native where the backend has it; else im2col, whatever the
    im2col limit (its tiles obey it)."""
    pointwise = conv_geometry((8, 256, 56, 56), (64, 256, 1, 1))
    spatial = conv_geometry((8, 64, 56, 56), (64, 64, 3, 3), padding=1)
    native = has_native(adapter)
    hint = chanconv.protocol.PointwiseHint
    matmul_first = not native or not isinstance(adapter, hint) or adapter.pointwise_matmul
    for limit in (chanconv.im2col_limit(), 1024):
        previous = chanconv.set_im2col_limit(limit)
        try:
            assert conv.choose_algorithm(adapter, pointwise) == (
                "im2col" if matmul_first else "native"
            )
            assert conv.choose_algorithm(adapter, spatial) == ("native" if native else "im2col")
        finally:
            chanconv.set_im2col_limit(previous)
    # only MXNet's adapter prefers its convolution for 1x1
    assert matmul_first == (adapter.name != "mxnet")


@pytest.mark.parametrize("limit", [1, 2_000, 20_000, 10**9])
def test_im2col_tiles_agree_with_one_piece(adapter, limit):
    rng = np.random.default_rng(4)
    x, k = rng.standard_normal((3, 4, 11, 9)), rng.standard_normal((6, 2, 3, 3))
    args: dict[str, Any] = {"stride": (2, 1), "padding": 1, "groups": 2}
    ref = oracle.conv2d(x, k, None, stride=(2, 1), pads=(1, 1, 1, 1), groups=2)
    previous = chanconv.set_im2col_limit(limit)
    try:
        y = chanconv.conv2d(tensor(adapter, x, "float64"), tensor(adapter, k, "float64"),
                            algorithm="im2col", **args)  # fmt: skip
    finally:
        chanconv.set_im2col_limit(previous)
    np.testing.assert_allclose(adapter.to_numpy(y), ref, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="positive number of bytes"):
        chanconv.set_im2col_limit(0)


@pytest.mark.parametrize("limit", [1, 50_000, 10**9])
def test_fourier_chunks_agree_with_one_piece(adapter, limit):
    """Chunks of tile rows (limit 1), of whole images (50 kB) and one piece, with stride,
    dilation, groups and padding: the same result to float64 rounding."""
    rng = np.random.default_rng(5)
    x, k = rng.standard_normal((3, 4, 23, 19)), rng.standard_normal((6, 2, 5, 3))
    args: dict[str, Any] = {"stride": (3, 2), "padding": 2, "dilation": (1, 2), "groups": 2}
    ref = oracle.conv2d(x, k, None, stride=(3, 2), pads=(2, 2, 2, 2), dilation=(1, 2), groups=2)
    previous = chanconv.set_im2col_limit(limit)
    try:
        y = chanconv.conv2d(tensor(adapter, x, "float64"), tensor(adapter, k, "float64"),
                            algorithm="fourier", **args)  # fmt: skip
    finally:
        chanconv.set_im2col_limit(previous)
    np.testing.assert_allclose(adapter.to_numpy(y), ref, rtol=1e-11, atol=1e-11)


def test_fourier_large_kernel_float32_accuracy(adapter):
    """A 9x9 kernel over 8 channels, 20x20 outputs in several float32 tiles: within the
    oracle bound (small, since the oracle is a Python loop)."""
    rng = np.random.default_rng(6)
    x, k = rng.standard_normal((1, 8, 20, 20)), rng.standard_normal((2, 8, 9, 9))
    y = chanconv.conv2d(tensor(adapter, x, "float32"), tensor(adapter, k, "float32"),
                        padding=4, algorithm="fourier")  # fmt: skip
    geometry = dict(stride=(1, 1), pads=(4, 4, 4, 4), dilation=(1, 1), groups=1)
    ref = oracle.conv2d(x.astype("float32").astype("float64"),
                        k.astype("float32").astype("float64"), None, **geometry)  # fmt: skip
    magnitude = oracle.conv2d(np.abs(x), np.abs(k), None, **geometry)
    close_to_oracle(adapter.to_numpy(y), ref, magnitude, 8 * 81, "float32")


def test_auto_picks_fourier_by_its_cost_model(adapter):
    """auto takes fourier exactly where the direct multiplication count is the backend's
    margin times fourier's modelled cost, and never on small or pointwise layers."""
    d2l = conv_geometry((1, 128, 256, 256), (128, 128, 5, 5), padding=2)
    plan = fourier.fourier_plan(d2l, 4, chanconv.im2col_limit())
    mults, moved = fourier.fourier_cost(d2l, plan.th, plan.tw)
    direct = 128 * 128 * 25 * 256 * 256
    assert direct / (mults + fourier.MOVE_WEIGHT * moved) > 3  # what the margins are set by
    wins = direct >= conv.fourier_margin(adapter) * (mults + fourier.MOVE_WEIGHT * moved)
    assert (conv.choose_algorithm(adapter, d2l) == "fourier") == wins
    for small in (conv_geometry((256, 6, 14, 14), (16, 6, 5, 5)),
                  conv_geometry((8, 256, 56, 56), (64, 256, 1, 1))):  # fmt: skip
        assert conv.choose_algorithm(adapter, small) != "fourier"


def test_kept_spectrum_is_never_stale(adapter):
    """A SpectrumCache reuses the kernel's spectrum only while K's contents are the same:
    new values in a new tensor are seen, and so are the same values again."""
    rng = np.random.default_rng(8)
    x, k = rng.standard_normal((1, 3, 12, 12)), rng.standard_normal((2, 3, 5, 5))
    X = tensor(adapter, x, "float64")
    cache = fourier.SpectrumCache()
    for kv in (k, k, 2 * k, 2 * k, k):
        y = chanconv.conv2d(X, tensor(adapter, kv, "float64"), padding=2, algorithm="fourier",
                            spectrum_cache=cache)  # fmt: skip
        ref = oracle.conv2d(x, kv, None, stride=(1, 1), pads=(2, 2, 2, 2), dilation=(1, 1),
                            groups=1)  # fmt: skip
        np.testing.assert_allclose(adapter.to_numpy(y), ref, rtol=1e-11, atol=1e-11)
    assert (cache.hits, cache.misses) == (2, 3)
    if adapter.name == "numpy":  # an in-place update of the very same array
        K = tensor(adapter, k, "float64")
        chanconv.conv2d(X, K, padding=2, algorithm="fourier", spectrum_cache=cache)
        K[0, 0, 0, 0] += 1.0
        y = chanconv.conv2d(X, K, padding=2, algorithm="fourier", spectrum_cache=cache)
        ref = oracle.conv2d(x, K.copy(), None, stride=(1, 1), pads=(2, 2, 2, 2),
                            dilation=(1, 1), groups=1)  # fmt: skip
        np.testing.assert_allclose(y, ref, rtol=1e-11, atol=1e-11)


def test_autotune_times_once_per_plan_and_remembers(adapter):
    """Opt-in: the first auto call of a plan times the candidates and remembers one of
    them; the result is still the convolution; off again, auto follows its rule."""
    from chanconv import autotune

    rng = np.random.default_rng(9)
    x, k = rng.standard_normal((1, 4, 16, 16)), rng.standard_normal((4, 4, 5, 5))
    X, K = tensor(adapter, x, "float64"), tensor(adapter, k, "float64")
    ref = oracle.conv2d(x, k, None, stride=(1, 1), pads=(2, 2, 2, 2), dilation=(1, 1), groups=1)
    g = conv_geometry((1, 4, 16, 16), (4, 4, 5, 5), padding=2)
    assert not chanconv.autotune_enabled()
    previous = chanconv.set_autotune(True)
    try:
        y = chanconv.conv2d(X, K, padding=2)
        key = (type(adapter), adapter.name, g, "float64")
        winner = autotune._winners[key]
        assert winner in autotune.candidates(adapter, g)
        assert "fourier" in autotune.candidates(adapter, g)
        np.testing.assert_allclose(adapter.to_numpy(y), ref, rtol=1e-11, atol=1e-11)
        chanconv.conv2d(X, K, padding=2)
        assert autotune._winners[key] == winner  # remembered, not timed again
    finally:
        chanconv.set_autotune(previous)
    assert not autotune._winners  # forgotten with the setting
    with pytest.raises(TypeError, match="True or False"):
        chanconv.set_autotune("yes")  # type: ignore[arg-type]
