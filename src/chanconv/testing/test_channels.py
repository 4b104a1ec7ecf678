"""Conformance of the section's four functions on the backend under test (``--backend``).

Every test item exists, with the same name, on every backend: what differs between
frameworks (array kinds, autograd) is looped over or dispatched inside a test through
``frameworks``, which builds and reads tensors with each framework's own API. Expected
values come from the book or from ``oracle``, float64 loops that share no code with chanconv.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chanconv

from . import frameworks, oracle

# d2l, "Multiple Input and Multiple Output Channels".
X = [[[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]]
K = [[[0, 1], [2, 3]], [[1, 2], [3, 4]]]
MULTI_IN = [[56.0, 72.0], [104.0, 120.0]]
MULTI_IN_OUT = [
    [[56.0, 72.0], [104.0, 120.0]],
    [[76.0, 100.0], [148.0, 172.0]],
    [[96.0, 128.0], [192.0, 224.0]],
]
# d2l, "Convolutions for Images".
X1 = [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
K1 = [[0, 1], [2, 3]]
CORR2D = [[19.0, 25.0], [37.0, 43.0]]

# (function, X's shape, K's shape, the output's shape) for shape and dtype checks.
SIGNATURES = [
    (chanconv.corr2d, (5, 4), (2, 3), (4, 2)),
    (chanconv.corr2d_multi_in, (3, 5, 4), (3, 2, 3), (4, 2)),
    (chanconv.corr2d_multi_in_out, (3, 5, 4), (2, 3, 2, 3), (2, 4, 2)),
    (chanconv.corr2d_multi_in_out_1x1, (3, 5, 4), (2, 3, 1, 1), (2, 5, 4)),
]


def _normal(seed, *shapes):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


def _exactly(backend, y):
    """The values as nested Python floats, for exact comparison with the book."""
    return frameworks.values(backend, y).tolist()


# --- the backend under test ---------------------------------------------------------------


def test_the_selected_backend_is_the_librarys_default(backend_name):
    assert chanconv.active_name() == backend_name
    adapter = chanconv.get_adapter(backend_name)
    assert adapter.name == backend_name
    framework = importlib.import_module(backend_name)  # canonical names are import names
    assert adapter.version() == framework.__version__
    assert not adapter.is_tensor(X)
    for kind in frameworks.kinds(backend_name):
        t = kind.tensor(X)
        assert adapter.is_tensor(t), kind.name
        got = np.asarray(adapter.to_numpy(t))
        assert got.dtype == np.float32 and got.tolist() == np.asarray(X).tolist(), kind.name


# --- the book's numbers, exactly ----------------------------------------------------------


def test_two_input_channels_give_the_books_numbers_in_every_kind(backend_name):
    for kind in frameworks.kinds(backend_name):
        y = chanconv.corr2d_multi_in(kind.tensor(X), kind.tensor(K))
        assert kind.is_result(y), kind.name
        assert _exactly(backend_name, y) == MULTI_IN, kind.name
    y = chanconv.corr2d_multi_in(X, K)
    assert _exactly(backend_name, y) == MULTI_IN


def test_three_output_channels_give_the_books_numbers_in_every_kind(backend_name):
    for kind in frameworks.kinds(backend_name):
        k = kind.tensor(K)
        stacked = frameworks.stack(backend_name, [k, k + 1, k + 2])  # the book's K + 1
        assert frameworks.shape(backend_name, stacked) == (3, 2, 2, 2), kind.name
        y = chanconv.corr2d_multi_in_out(kind.tensor(X), stacked)
        assert kind.is_result(y), kind.name
        assert _exactly(backend_name, y) == MULTI_IN_OUT, kind.name


def test_corr2d_gives_the_conv_layer_sections_numbers_in_every_kind(backend_name):
    for kind in frameworks.kinds(backend_name):
        y = chanconv.corr2d(kind.tensor(X1), kind.tensor(K1))
        assert kind.is_result(y), kind.name
        assert _exactly(backend_name, y) == CORR2D, kind.name
    assert _exactly(backend_name, chanconv.corr2d(X1, K1)) == CORR2D


def test_the_1x1_matmul_form_equals_the_general_form_and_the_oracle(backend_name):
    for kind in frameworks.kinds(backend_name):
        for seed in range(5):
            x, k = _normal(seed, (3, 3, 3), (2, 3, 1, 1))  # the book's shapes
            xt, kt = kind.tensor(x), kind.tensor(k)
            y1 = chanconv.corr2d_multi_in_out_1x1(xt, kt)
            y2 = chanconv.corr2d_multi_in_out(xt, kt)
            assert kind.is_result(y1), kind.name
            y1, y2 = frameworks.values(backend_name, y1), frameworks.values(backend_name, y2)
            assert float(np.abs(y1 - y2).sum()) < 1e-6, kind.name  # the book's check
            # Against inputs rounded to float32, as the tensors hold them.
            want = oracle.corr2d_multi_in_out(x.astype(np.float32), k.astype(np.float32))
            np.testing.assert_allclose(y1, want, rtol=1e-5, atol=1e-5, err_msg=kind.name)


# --- result type, shape and dtype ---------------------------------------------------------


def test_results_keep_the_inputs_kind_shape_and_dtype(backend_name):
    for kind in frameworks.kinds(backend_name):
        for dtype in ("float32", "float64"):
            for fn, x_shape, k_shape, out_shape in SIGNATURES:
                x, k = _normal(0, x_shape, k_shape)
                y = fn(kind.tensor(x, dtype), kind.tensor(k, dtype))
                where = f"{fn.__name__}, {kind.name}, {dtype}"
                assert kind.is_result(y), where
                assert frameworks.shape(backend_name, y) == out_shape, where
                assert frameworks.dtype_name(backend_name, y) == dtype, where


def test_float16_works_wherever_the_framework_computes_in_it(backend_name):
    # Where the framework's own CPU matmul refuses float16, chanconv may compute in a wider
    # type and round (it must then still hand back float16), or refuse with a clear error.
    # Where the framework can, chanconv has no excuse.
    if not frameworks.has_dtype(backend_name, "float16"):
        pytest.skip(f"capability: {backend_name} has no float16 (the Array API standard has none)")
    framework_can = frameworks.can_matmul(backend_name, "float16")
    x, k = (a.astype(np.float16) for a in _normal(1, (3, 5, 4), (2, 3, 2, 3)))
    want = oracle.corr2d_multi_in_out(x, k)
    for kind in frameworks.kinds(backend_name):
        for fn, kk in ((chanconv.corr2d_multi_in_out, k),
                       (chanconv.corr2d_multi_in_out_1x1, k[:, :, :1, :1])):  # fmt: skip
            where = f"{fn.__name__}, {kind.name}"
            try:
                y = fn(kind.tensor(x, "float16"), kind.tensor(kk, "float16"))
            except (TypeError, ValueError) as err:
                assert not framework_can, f"{where}: {err}"
                assert "float16" in str(err), where
                continue
            assert kind.is_result(y), where
            assert frameworks.dtype_name(backend_name, y) == "float16", where
            ref = want if kk is k else oracle.corr2d_multi_in_out(x, kk)
            # float16 keeps 11 bits: ~5e-4 relative per rounding, 18 products summed.
            np.testing.assert_allclose(
                frameworks.values(backend_name, y), ref, rtol=1e-2, atol=3e-2, err_msg=where
            )


def test_mixed_float_dtypes_give_the_promoted_dtype(backend_name):
    # TensorFlow refuses float32 * float64 by itself: chanconv must promote first.
    for kind in frameworks.kinds(backend_name):
        for x_dtype, k_dtype in (("float32", "float64"), ("float64", "float32")):
            where = f"{kind.name}, X {x_dtype}, K {k_dtype}"
            y = chanconv.corr2d_multi_in(kind.tensor(X, x_dtype), kind.tensor(K, k_dtype))
            assert kind.is_result(y), where
            assert frameworks.dtype_name(backend_name, y) == "float64", where
            assert _exactly(backend_name, y) == MULTI_IN, where
            y = chanconv.corr2d_multi_in_out(kind.tensor(X, x_dtype), kind.tensor([K], k_dtype))
            assert frameworks.dtype_name(backend_name, y) == "float64", where
            assert _exactly(backend_name, y) == [MULTI_IN], where


def test_two_kinds_of_one_framework_give_the_first_tensors_kind(backend_name):
    kinds = frameworks.kinds(backend_name)
    for x_kind in kinds:
        for k_kind in kinds:
            y = chanconv.corr2d_multi_in(x_kind.tensor(X), k_kind.tensor(K))
            assert x_kind.is_result(y), (x_kind.name, k_kind.name)
            assert _exactly(backend_name, y) == MULTI_IN


# --- nested lists -------------------------------------------------------------------------


def test_nested_lists_become_float32_tensors_of_the_selected_backend(backend_name):
    native = frameworks.native_types(backend_name)
    for fn, x, k in ((chanconv.corr2d, X1, K1), (chanconv.corr2d_multi_in, X, K),
                     (chanconv.corr2d_multi_in_out, X, [K, K])):  # fmt: skip
        for xs, ks in ((x, k), (np.asarray(x, float).tolist(), np.asarray(k, float).tolist())):
            y = fn(xs, ks)  # integers and floats alike
            assert isinstance(y, native), fn.__name__
            assert frameworks.dtype_name(backend_name, y) == "float32", fn.__name__
    assert _exactly(backend_name, chanconv.corr2d_multi_in(X, K)) == MULTI_IN


def test_a_tensor_with_a_list_gives_the_tensors_backend(backend_name, other_framework):
    # Make another backend the active one, so following the tensor is a choice.
    other, _ = other_framework
    with chanconv.use_backend(other):
        for kind in frameworks.kinds(backend_name):
            for dtype in ("float32", "float64"):
                where = f"{kind.name}, {dtype}"
                y = chanconv.corr2d_multi_in(kind.tensor(X, dtype), K)
                assert kind.is_result(y), where
                assert frameworks.dtype_name(backend_name, y) == dtype, where  # list: float32
                assert _exactly(backend_name, y) == MULTI_IN, where
                y = chanconv.corr2d_multi_in(X, kind.tensor(K, dtype))
                assert kind.is_result(y), where
                assert _exactly(backend_name, y) == MULTI_IN, where


# --- bad input ----------------------------------------------------------------------------


@pytest.fixture
def no_compute(monkeypatch):
    """Fails the test if any adapter starts computing: a refusal must come first."""

    def forbid(adapter, method):
        def computed(*args, **kwargs):
            raise AssertionError(f"{adapter.name}.{method} ran before the input was refused")

        return computed

    for adapter in chanconv.adapters().values():
        for method in ("matmul", "sum", "zeros", "conv2d_native"):
            if hasattr(adapter, method):
                monkeypatch.setattr(adapter, method, forbid(adapter, method))


def _channel_mismatch(kind):
    x = kind.tensor(np.ones((2, 3, 3)))
    rule = "X has 2 input channels but K expects 3"
    return [
        (chanconv.corr2d_multi_in, x, kind.tensor(np.ones((3, 2, 2))), ValueError,
         [rule, "(2, 3, 3)", "(3, 2, 2)"]),
        (chanconv.corr2d_multi_in_out, x, kind.tensor(np.ones((4, 3, 2, 2))), ValueError,
         [rule, "(2, 3, 3)", "(4, 3, 2, 2)"]),
        (chanconv.corr2d_multi_in_out_1x1, x, kind.tensor(np.ones((4, 3, 1, 1))), ValueError,
         [rule, "(2, 3, 3)", "(4, 3, 1, 1)"]),
    ]  # fmt: skip


def _kernel_larger_than_input(kind):
    return [
        (chanconv.corr2d, kind.tensor(np.ones((3, 3))), kind.tensor(np.ones((4, 2))),
         ValueError, ["(3, 3)", "(4, 2)"]),
        (chanconv.corr2d_multi_in, kind.tensor(np.ones((2, 3, 3))),
         kind.tensor(np.ones((2, 2, 4))), ValueError, ["(2, 3, 3)", "(2, 2, 4)"]),
        (chanconv.corr2d_multi_in_out, kind.tensor(np.ones((2, 3, 3))),
         kind.tensor(np.ones((1, 2, 4, 4))), ValueError, ["(2, 3, 3)", "(1, 2, 4, 4)"]),
    ]  # fmt: skip


def _wrong_number_of_dims(kind):
    t = kind.tensor
    return [
        (chanconv.corr2d, t(np.ones((1, 3, 3))), t(np.ones((2, 2))), ValueError, ["(1, 3, 3)"]),
        (chanconv.corr2d_multi_in, t(np.ones((3, 3))), t(np.ones((1, 2, 2))), ValueError,
         ["(3, 3)"]),
        (chanconv.corr2d_multi_in, t(np.ones((1, 3, 3))), t(np.ones((1, 1, 2, 2))), ValueError,
         ["(1, 1, 2, 2)"]),
        (chanconv.corr2d_multi_in_out, t(np.ones((2, 3, 3))), t(np.ones((2, 2, 2))), ValueError,
         ["(2, 2, 2)"]),
        (chanconv.corr2d_multi_in_out, t(np.ones((1, 2, 3, 3))), t(np.ones((1, 2, 2, 2))),
         ValueError, ["(1, 2, 3, 3)"]),
    ]  # fmt: skip


def _empty_tensor(kind):
    t = kind.tensor
    return [
        (chanconv.corr2d_multi_in, t(np.ones((2, 0, 3))), t(np.ones((2, 1, 1))), ValueError,
         ["(2, 0, 3)"]),
        (chanconv.corr2d_multi_in_out, t(np.ones((0, 3, 3))), t(np.ones((1, 0, 1, 1))),
         ValueError, ["(0, 3, 3)"]),
        (chanconv.corr2d, t(np.ones((3, 3))), t(np.ones((0, 2))), ValueError, ["(0, 2)"]),
    ]  # fmt: skip


def _empty_list(kind):
    k = kind.tensor(np.ones((1, 1, 1)))
    return [
        (chanconv.corr2d_multi_in, [], k, ValueError, ["X"]),
        (chanconv.corr2d_multi_in, [[[]]], k, ValueError, ["(1, 1, 0)"]),
        (chanconv.corr2d_multi_in, kind.tensor(np.ones((1, 3, 3))), [], ValueError, ["K"]),
    ]


def _ragged_list(kind):
    k = kind.tensor(np.ones((2, 1, 1)))
    return [
        (chanconv.corr2d_multi_in, [[[1, 2], [3]], [[1, 2], [3, 4]]], k, ValueError,
         ["ragged"]),
        (chanconv.corr2d_multi_in, [[[1, 2], [3, 4]], [[1, 2]]], k, ValueError, ["ragged"]),
    ]  # fmt: skip


def _non_numeric_list_items(kind):
    k = kind.tensor(np.ones((1, 1, 1)))
    return [
        (chanconv.corr2d_multi_in, [[["a", "b"]]], k, TypeError, ["'a'", "str"]),
        (chanconv.corr2d_multi_in, [[[1.0, None]]], k, TypeError, ["None"]),
        (chanconv.corr2d_multi_in, [[[1.0, True]]], k, TypeError, ["True", "bool"]),
        (chanconv.corr2d, [[1.0, 2.0]], [["x"]], TypeError, ["'x'", "str"]),
    ]


def _integer_or_bool_dtype(kind):
    x, k = np.ones((1, 3, 3)), np.ones((1, 2, 2))
    cases = []
    for dtype in ("int32", "int64", "bool"):
        cases += [(chanconv.corr2d_multi_in, kind.tensor(x, dtype), kind.tensor(k), TypeError,
                   ["X", dtype]),
                  (chanconv.corr2d_multi_in, kind.tensor(x), kind.tensor(k, dtype), TypeError,
                   ["K", dtype])]  # fmt: skip
    return cases


def _non_1x1_kernel_for_the_matmul_form(kind):
    x = kind.tensor(np.ones((2, 3, 3)))
    return [
        (chanconv.corr2d_multi_in_out_1x1, x, kind.tensor(np.ones((1, 2, 2, 2))), ValueError,
         ["(1, 2, 2, 2)", "1x1"]),
        (chanconv.corr2d_multi_in_out_1x1, x, kind.tensor(np.ones((1, 2, 1, 3))), ValueError,
         ["(1, 2, 1, 3)", "1x1"]),
    ]  # fmt: skip


def _unsupported_object(kind):
    x, k = kind.tensor(np.ones((1, 3, 3))), kind.tensor(np.ones((1, 2, 2)))
    return [
        (chanconv.corr2d_multi_in, None, k, TypeError, ["X is None"]),
        (chanconv.conv2d, frameworks.stack(kind.backend, [x]), None, TypeError, ["K is None"]),
        (chanconv.corr2d_multi_in, "X", k, TypeError, ["str"]),
        (chanconv.corr2d_multi_in, {"X": 1}, k, TypeError, ["dict"]),
        (chanconv.corr2d_multi_in, 3.0, k, TypeError, ["float"]),
        (chanconv.corr2d_multi_in, x, "K", TypeError, ["str"]),
        (chanconv.corr2d_multi_in_out, x, {"K": 1}, TypeError, ["dict"]),
    ]


BAD_INPUTS = {f.__name__.lstrip("_"): f for f in (
    _channel_mismatch, _kernel_larger_than_input, _wrong_number_of_dims, _empty_tensor,
    _empty_list, _ragged_list, _non_numeric_list_items, _integer_or_bool_dtype,
    _non_1x1_kernel_for_the_matmul_form, _unsupported_object,
)}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_refused_before_computing_naming_shapes_and_rule(
    backend_name, case, no_compute
):
    for kind in frameworks.kinds(backend_name):
        for fn, x, k, error, phrases in BAD_INPUTS[case](kind):
            with pytest.raises(error) as caught:
                fn(x, k)
            message = str(caught.value)
            for phrase in phrases:
                assert phrase in message, (kind.name, fn.__name__, phrase, message)


def test_tensors_of_two_frameworks_are_refused_naming_both(backend_name, other_framework):
    other, make = other_framework
    for kind in frameworks.kinds(backend_name):
        mine_x, mine_k = kind.tensor(X), kind.tensor(K)
        for x, k in ((mine_x, make(K)), (make(X), mine_k)):
            with pytest.raises(TypeError) as caught:
                chanconv.corr2d_multi_in(x, k)
            message = str(caught.value)
            assert backend_name in message and other in message, (kind.name, message)


# --- gradients ----------------------------------------------------------------------------


def test_gradients_flow_through_corr2d_multi_in_out(backend_name):
    x, k, g = _normal(2, (2, 5, 4), (3, 2, 2, 3), (3, 4, 2))
    want_dx, want_dk = oracle.corr2d_multi_in_out_grads(x, k, g)
    tolerance = {"float32": 1e-4, "float64": 1e-10}

    def loss(xt, kt):
        y = chanconv.corr2d_multi_in_out(xt, kt)
        dtype = frameworks.dtype_name(backend_name, y)
        return frameworks.weighted_sum(backend_name, y, g.astype(dtype))

    for kind in frameworks.kinds(backend_name):
        for dtype, tol in tolerance.items():
            where = f"{kind.name}, {dtype}"
            if frameworks.has_autograd(backend_name):
                dx, dk = frameworks.gradients(kind, loss, [x, k], dtype)
            else:
                # No autograd (NumPy, Array API libraries): the result must be the plain
                # array type (no graph, no wrapper), the forward values must be right, and
                # conv2d_vjp, chanconv's backward pass for such backends, must give the
                # gradients.
                plain = kind.result_types
                y = chanconv.corr2d_multi_in_out(kind.tensor(x, dtype), kind.tensor(k, dtype))
                assert type(y) in plain, where
                np.testing.assert_allclose(frameworks.values(backend_name, y),
                                           oracle.corr2d_multi_in_out(x, k), rtol=tol,
                                           atol=tol, err_msg=where)  # fmt: skip
                dx, dk, _ = chanconv.conv2d_vjp(kind.tensor(x, dtype), kind.tensor(k, dtype),
                                                kind.tensor(g, dtype))  # fmt: skip
                assert type(dx) in plain and type(dk) in plain, where
                dx, dk = frameworks.values(backend_name, dx), frameworks.values(backend_name, dk)
            np.testing.assert_allclose(dx, want_dx, rtol=tol, atol=tol, err_msg=f"dX, {where}")
            np.testing.assert_allclose(dk, want_dk, rtol=tol, atol=tol, err_msg=f"dK, {where}")


# --- property test against the oracle -----------------------------------------------------


@st.composite
def problems(draw):
    """A random valid problem: shapes, dtype, and a seed for the values."""
    h, w = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    return {
        "ci": draw(st.integers(1, 4)), "co": draw(st.integers(1, 4)), "h": h, "w": w,
        "kh": draw(st.integers(1, h)), "kw": draw(st.integers(1, w)),
        "dtype": draw(st.sampled_from(["float32", "float64"])),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }  # fmt: skip


def _tolerance(dtype, terms):
    """Rounding error of a float sum grows about as sqrt(terms) for random data."""
    if dtype == "float32":
        return 1e-5 * np.sqrt(terms)
    return 1e-12 * np.sqrt(terms)


# Derandomized, no example database: the same examples on every run and every machine.
@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(p=problems())
def test_section_functions_match_the_oracle_on_random_shapes(backend_name, p, record_error):
    ci, co, h, w, kh, kw, dtype = (p[n] for n in ("ci", "co", "h", "w", "kh", "kw", "dtype"))
    x, k = (a.astype(dtype) for a in _normal(p["seed"], (ci, h, w), (co, ci, kh, kw)))
    # The oracle sees the inputs exactly as the tensors hold them.
    checks = [
        ("corr2d_multi_in_out", chanconv.corr2d_multi_in_out, x, k,
         oracle.corr2d_multi_in_out(x, k), ci * kh * kw),
        ("corr2d_multi_in", chanconv.corr2d_multi_in, x, k[0],
         oracle.corr2d_multi_in(x, k[0]), ci * kh * kw),
        ("corr2d", chanconv.corr2d, x[0], k[0, 0], oracle.corr2d(x[0], k[0, 0]), kh * kw),
    ]  # fmt: skip
    for kind in frameworks.kinds(backend_name):
        for name, fn, xa, ka, want, terms in checks:
            y = fn(kind.tensor(xa, dtype), kind.tensor(ka, dtype))
            where = f"{name}, {kind.name}, {p}"
            assert kind.is_result(y), where
            assert frameworks.dtype_name(backend_name, y) == dtype, where
            tol = _tolerance(dtype, terms)
            got = frameworks.values(backend_name, y)
            scale = max(float(np.max(np.abs(want))), 1.0)
            record_error(float(np.max(np.abs(got - want))) / scale)
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=where)
