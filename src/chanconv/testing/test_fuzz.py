"""Differential fuzz campaign: every conv2d algorithm of the backend under test, the
framework's own kernel included, against the float64 loop oracle, on drawn geometries aimed
at the edges where kernels go wrong: an output extent of 1, a stride larger than the input,
a kernel as large as the padded input, batch 1 and > 1, one channel, many groups, dilation
with stride, asymmetric "same" padding, strided (non-contiguous) and channels-last inputs,
float16/bfloat16 sums that overflow, and inf/NaN that must reach exactly the outputs whose
windows contain them.

Every backend's ``tests`` session runs it at a small budget with a fixed seed
(derandomized, no database). ``nox -s fuzz`` sets ``CHANCONV_FUZZ_EXAMPLES`` (examples per
test) and ``CHANCONV_FUZZ_DB`` (hypothesis's example database, kept under build/ so a
failure found once is replayed first on every later run).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

import chanconv
from chanconv.algorithms import has_native, set_im2col_limit

from . import oracle

EPS = {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float32": 2.0**-23, "float64": 2.0**-52}
HALF_MAX = {"float16": 65504.0, "bfloat16": 3.3895313892515355e38}
LAYOUTS = ("contiguous", "strided", "channels_last")

_budget = os.environ.get("CHANCONV_FUZZ_EXAMPLES")
_database = os.environ.get("CHANCONV_FUZZ_DB")
FUZZ = settings(
    max_examples=int(_budget) if _budget else 15,
    derandomize=not _budget,  # CI: a fixed seed, the same examples every run
    database=DirectoryBasedExampleDatabase(_database) if _database else None,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)  # fmt: skip


def algorithms(adapter: Any, *, windowed: bool = False) -> list[str]:
    """Every algorithm: ``im2col-tiled`` is im2col with a 1-byte limit (its tiled code).
    ``fourier`` is left out where the property is about single windows (``windowed``): its
    transforms mix every pixel of a tile into every output of the tile, so a NaN or inf
    reaches the whole tile, and its rounding error is relative to the tile's largest value
    rather than to each output's own terms (docs/algorithms.md)."""
    native = ["native"] if has_native(adapter) else []
    fourier = [] if windowed else ["fourier"]
    return ["auto", "direct", "im2col", "im2col-tiled", *native, *fourier]


def run(adapter: Any, algorithm: str, x: Any, k: Any, b: Any, g: dict[str, Any]) -> Any:
    tiled = algorithm == "im2col-tiled"
    previous = set_im2col_limit(1) if tiled else None
    try:
        return chanconv.conv2d(x, k, b, stride=g["stride"], padding=g["padding"],
                               dilation=g["dilation"], groups=g["groups"],
                               algorithm="im2col" if tiled else algorithm)  # fmt: skip
    finally:
        if previous is not None:
            set_im2col_limit(previous)


def span(k: int, d: int) -> int:
    return d * (k - 1) + 1


@st.composite
def geometries(draw: st.DrawFn) -> dict[str, Any]:
    groups = draw(st.sampled_from([1, 1, 1, 2, 3, 4]))
    ci = groups * draw(st.sampled_from([1, 1, 2]))  # one input channel per group, often
    co = groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))  # often beyond the input
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.one_of(st.sampled_from(["same", "valid"]), st.integers(0, 2),
                             st.tuples(st.integers(0, 2), st.integers(0, 2))))  # fmt: skip
    pair = padding if isinstance(padding, (str, tuple)) else (padding, padding)
    if isinstance(pair, tuple) and draw(st.booleans()):
        # The kernel exactly as large as the padded input: one output row or column.
        h = max(1, span(kh, dilation[0]) - 2 * pair[0])
        w = max(1, span(kw, dilation[1]) - 2 * pair[1])
    else:
        h, w = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    pads = oracle.pads_for(h, w, kh, kw, stride, pair, dilation)  # type: ignore[no-untyped-call]
    assume(h + pads[0] + pads[1] >= span(kh, dilation[0]))
    assume(w + pads[2] + pads[3] >= span(kw, dilation[1]))
    return {
        "n": draw(st.sampled_from([1, 2, 3])), "ci": ci, "co": co, "h": h, "w": w,
        "kh": kh, "kw": kw, "stride": stride, "dilation": dilation, "padding": padding,
        "pads": pads, "groups": groups,
    }  # fmt: skip


def oracle_of(x: Any, k: Any, b: Any, g: dict[str, Any]) -> Any:
    """The float64 loop oracle (an untyped test helper) on a drawn geometry."""
    return oracle.conv2d(  # type: ignore[no-untyped-call]
        x, k, b, stride=g["stride"], pads=g["pads"], dilation=g["dilation"], groups=g["groups"]
    )


def make_input(adapter: Any, x: Any, dtype: str, layout: str) -> Any:
    """X of ``dtype`` as a contiguous tensor, a strided view of a wider one whose skipped
    entries are NaN (a read outside the view shows), or a channels-last tensor seen as NCHW."""
    if layout == "strided":
        wide = np.full((*x.shape[:3], 2 * x.shape[3] + 1), np.nan, dtype=np.float64)
        wide[..., 1::2] = x
        return convert(adapter, wide, dtype)[:, :, :, 1::2]
    if layout == "channels_last":
        nhwc = convert(adapter, np.ascontiguousarray(x.transpose(0, 2, 3, 1)), dtype)
        return adapter.permute_dims(nhwc, (0, 3, 1, 2))
    return convert(adapter, x, dtype)


def convert(adapter: Any, a: Any, dtype: str) -> Any:
    """A NumPy float64 array as a backend tensor of ``dtype``: through float32 for the
    half-precision types NumPy lacks (bfloat16)."""
    if dtype in ("float32", "float64"):
        return adapter.asarray(np.asarray(a, dtype=dtype), dtype)
    return adapter.astype(adapter.asarray(np.asarray(a, dtype="float32"), "float32"), dtype)


def rounded(adapter: Any, a: Any, dtype: str) -> Any:
    """``a`` rounded to ``dtype`` by the framework, back as float64: the oracle's inputs."""
    return np.asarray(adapter.to_numpy(convert(adapter, a, dtype)), dtype=np.float64)


def result(adapter: Any, y: Any) -> Any:
    return np.asarray(adapter.to_numpy(y), dtype=np.float64)


def where(algorithm: str, g: dict[str, Any], layout: str, dtype: str) -> str:
    return f"{algorithm} on {layout} {dtype} {g}"


@FUZZ
@given(g=geometries(), data=st.data())
def test_fuzz_every_algorithm_matches_the_oracle(adapter: Any, g: dict[str, Any],
                                                 data: st.DataObject) -> None:  # fmt: skip
    dtype = data.draw(st.sampled_from(["float32", "float64"]), label="dtype")
    layout = data.draw(st.sampled_from(LAYOUTS), label="layout")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    x = rng.uniform(-1, 1, (g["n"], g["ci"], g["h"], g["w"])).astype(dtype).astype(np.float64)
    k = rng.uniform(-1, 1, (g["co"], g["ci"] // g["groups"], g["kh"], g["kw"]))
    k = k.astype(dtype).astype(np.float64)
    b = rng.uniform(-1, 1, g["co"]).astype(dtype).astype(np.float64) if rng.random() < 0.5 else None
    ref = oracle_of(x, k, b, g)
    magnitude = oracle_of(np.abs(x), np.abs(k), None if b is None else np.abs(b), g)
    taps = g["ci"] // g["groups"] * g["kh"] * g["kw"] + 1
    bound = 4 * EPS[dtype] * taps * magnitude + 8 * EPS[dtype]
    X, K = make_input(adapter, x, dtype, layout), convert(adapter, k, dtype)
    B = None if b is None else convert(adapter, b, dtype)
    for algorithm in algorithms(adapter):
        y = run(adapter, algorithm, X, K, B, g)
        out = result(adapter, y)
        at = where(algorithm, g, layout, dtype)
        assert out.shape == ref.shape, at
        assert adapter.dtype_name(y) == dtype, at
        err = np.abs(out - ref)
        worst = f"worst error {np.nanmax(err):.3g}, NaN: {np.isnan(err).any()}"
        assert np.all(err <= bound), f"{at}: {worst}"


@FUZZ
@given(g=geometries(), data=st.data())
def test_fuzz_nan_and_inf_reach_exactly_their_windows(adapter: Any, g: dict[str, Any],
                                                      data: st.DataObject) -> None:  # fmt: skip
    """One NaN or inf in X: the outputs whose windows contain it are non-finite, every
    other output is finite and right."""
    layout = data.draw(st.sampled_from(LAYOUTS), label="layout")
    bad = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]), label="value")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    x = rng.uniform(-1, 1, (g["n"], g["ci"], g["h"], g["w"])).astype(np.float32)
    k = rng.uniform(-1, 1, (g["co"], g["ci"] // g["groups"], g["kh"], g["kw"]))
    x, k = x.astype(np.float64), k.astype(np.float32).astype(np.float64)
    spot = tuple(data.draw(st.integers(0, s - 1), label="spot") for s in x.shape)
    indicator = np.zeros_like(x)
    indicator[spot] = 1.0
    # Ones in the kernel: an output is touched when a tap of its window meets the spot.
    touched = oracle_of(indicator, np.ones_like(k), None, g) > 0
    x[spot] = 0.0
    ref = oracle_of(x, k, None, g)
    magnitude = oracle_of(np.abs(x), np.abs(k), None, g)
    taps = g["ci"] // g["groups"] * g["kh"] * g["kw"] + 1
    bound = 4 * EPS["float32"] * taps * magnitude + 8 * EPS["float32"]
    x[spot] = bad
    X, K = make_input(adapter, x, "float32", layout), convert(adapter, k, "float32")
    for algorithm in algorithms(adapter, windowed=True):
        out = result(adapter, run(adapter, algorithm, X, K, None, g))
        at = where(algorithm, g, layout, "float32") + f", {bad} at {spot}"
        assert out.shape == ref.shape, at
        assert np.array_equal(~np.isfinite(out), touched), (
            f"{at}: non-finite at {np.argwhere(~np.isfinite(out)).tolist()}, "
            f"expected at {np.argwhere(touched).tolist()}")  # fmt: skip
        if np.isnan(bad):
            assert np.isnan(out[touched]).all(), at
        fine = ~touched
        assert np.all(np.abs(out[fine] - ref[fine]) <= bound[fine]), at


@FUZZ
@given(g=geometries(), data=st.data())
def test_fuzz_half_precision_sums_overflow_to_inf(adapter: Any, g: dict[str, Any],
                                                   data: st.DataObject) -> None:  # fmt: skip
    """float16/bfloat16 with non-negative terms near the top of the range: where the true
    sum exceeds the largest finite value the result is +inf, where it is clearly below it
    the result is finite and right (no cancellation, so no partial sum can overflow when
    the total does not). A framework that cannot compute in the dtype must refuse with an
    error naming it, never answer in another dtype."""
    dtype = data.draw(st.sampled_from(["float16", "bfloat16"]), label="dtype")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    scale = np.sqrt(HALF_MAX[dtype] / 3)  # three full-size products overflow
    try:
        x = rounded(adapter, rng.uniform(0, scale, (g["n"], g["ci"], g["h"], g["w"])), dtype)
        k = rounded(adapter, rng.uniform(0, scale, (g["co"], g["ci"] // g["groups"],
                                                    g["kh"], g["kw"])), dtype)  # fmt: skip
        X, K = convert(adapter, x, dtype), convert(adapter, k, dtype)
    except Exception as err:  # the framework has no such dtype
        assert dtype in str(err) or "bfloat" in str(err).lower(), err
        return
    ref = oracle_of(x, k, None, g)
    taps = g["ci"] // g["groups"] * g["kh"] * g["kw"] + 1
    tol = 4 * EPS[dtype] * taps
    for algorithm in algorithms(adapter, windowed=True):
        at = where(algorithm, g, "contiguous", dtype)
        try:
            with np.errstate(over="ignore"):  # NumPy warns of the overflow it is asked for
                y = run(adapter, algorithm, X, K, None, g)
        except (ValueError, TypeError) as err:
            assert dtype in str(err), f"{at}: {err}"
            continue
        assert adapter.dtype_name(y) == dtype, at
        out = result(adapter, y)
        over = ref > HALF_MAX[dtype] * (1 + tol)
        below = ref < HALF_MAX[dtype] / (1 + tol)
        assert np.all(out[over] == np.inf), f"{at}: finite where the sum overflows"
        assert np.all(np.isfinite(out[below])), f"{at}: non-finite where the sum fits"
        assert np.all(np.abs(out[below] - ref[below]) <= tol * ref[below] + 1e-30), at


ONE_WIDE = [
    # TensorFlow 2.21's oneDNN case (docs/known-bugs.md): batch 3, one channel, 1 wide.
    dict(x=(3, 1, 7, 4), k=(2, 1, 3, 2), stride=(1, 3), padding=0),
    dict(x=(2, 1, 2, 7), k=(2, 1, 2, 3), stride=(3, 1), padding=1),  # 1 tall
    dict(x=(2, 1, 3, 1), k=(2, 1, 1, 1), stride=(1, 3), padding=1),  # window in the padding
    dict(x=(2, 3, 5, 5), k=(3, 1, 2, 5), stride=(1, 4), padding=0),  # one channel a group
]


@pytest.mark.parametrize("case", ONE_WIDE, ids=lambda c: f"{c['x']}-{c['stride']}")
def test_one_wide_strided_convolutions_match_the_oracle(adapter: Any, case: dict[str, Any]) -> None:
    """Strided convolutions one output wide (or tall), by every algorithm: the geometry
    class where TensorFlow 2.21's oneDNN kernel returns garbage on AVX-512 CPUs."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, case["x"]).astype(np.float32).astype(np.float64)
    k = rng.uniform(-1, 1, case["k"]).astype(np.float32).astype(np.float64)
    groups = case["x"][1] // case["k"][1]
    p = case["padding"]
    g = {"stride": case["stride"], "padding": p, "dilation": (1, 1), "groups": groups,
         "pads": (p, p, p, p)}  # fmt: skip
    ref = oracle_of(x, k, None, g)
    magnitude = oracle_of(np.abs(x), np.abs(k), None, g)
    bound = 4 * EPS["float32"] * (k[0].size + 1) * magnitude + 8 * EPS["float32"]
    X, K = convert(adapter, x, "float32"), convert(adapter, k, "float32")
    for algorithm in algorithms(adapter):
        out = result(adapter, run(adapter, algorithm, X, K, None, g))
        assert out.shape == ref.shape, algorithm
        assert np.all(np.abs(out - ref) <= bound), f"{algorithm}: {np.abs(out - ref).max()}"
