"""The section's own computations on the backend under test: the book's outputs exactly,
in every array kind of the framework, its 1x1 check, dtypes, bad input, gradients, and a
property test against the float64 loop oracle."""

from __future__ import annotations

import numpy as np
import pytest
from chanconv.backends.numpy import NumpyBackend
from hypothesis import given, settings
from hypothesis import strategies as st

import chanconv
from chanconv import registry

from . import autodiff, kinds
from . import conv_oracle as oracle

X = [[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]],
     [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]]  # fmt: skip
K = [[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]]
MULTI_IN = [[56.0, 72.0], [104.0, 120.0]]
MULTI_IN_OUT = [[[56.0, 72.0], [104.0, 120.0]],
                [[76.0, 100.0], [148.0, 172.0]],
                [[96.0, 128.0], [192.0, 224.0]]]  # fmt: skip


def each_kind(backend_name):
    return range(len(kinds.kinds(backend_name)))


def test_two_input_channels_give_the_books_numbers_exactly(backend_name):
    for kind in each_kind(backend_name):
        name, _, expected_type = kinds.kinds(backend_name)[kind]
        y = chanconv.corr2d_multi_in(kinds.make(backend_name, X, kind=kind),
                                     kinds.make(backend_name, K, kind=kind))  # fmt: skip
        assert isinstance(y, expected_type), name
        assert kinds.values(backend_name, y).tolist() == MULTI_IN, name
    assert kinds.values(backend_name, chanconv.corr2d_multi_in(X, K)).tolist() == MULTI_IN


def test_three_output_channels_give_the_books_numbers_exactly(backend_name, adapter):
    for kind in each_kind(backend_name):
        k = kinds.make(backend_name, K, kind=kind)
        stacked = kinds.stack(backend_name, [k, k + 1, k + 2])
        assert adapter.shape(stacked) == (3, 2, 2, 2)
        y = chanconv.corr2d_multi_in_out(kinds.make(backend_name, X, kind=kind), stacked)
        assert isinstance(y, kinds.kinds(backend_name)[kind][2])
        assert kinds.values(backend_name, y).tolist() == MULTI_IN_OUT


def test_single_channel_corr2d_gives_the_conv_layer_sections_numbers(backend_name):
    x = kinds.make(backend_name, [[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    y = chanconv.corr2d(x, kinds.make(backend_name, [[0, 1], [2, 3]]))
    assert kinds.values(backend_name, y).tolist() == [[19.0, 25.0], [37.0, 43.0]]


@pytest.mark.parametrize("seed", range(5))
def test_one_by_one_convolution_is_the_matmul_form(backend_name, seed):
    rng = np.random.default_rng(seed)
    x, k = rng.standard_normal((3, 3, 3)), rng.standard_normal((2, 3, 1, 1))
    X_, K_ = kinds.make(backend_name, x), kinds.make(backend_name, k)
    y1 = kinds.values(backend_name, chanconv.corr2d_multi_in_out_1x1(X_, K_))
    y2 = kinds.values(backend_name, chanconv.corr2d_multi_in_out(X_, K_))
    assert float(np.abs(y1 - y2).sum()) < 1e-6  # the book's own check
    ref = oracle.conv2d(x.astype(np.float32)[None], k.astype(np.float32))[0]
    np.testing.assert_allclose(y1, ref, rtol=1e-5, atol=1e-5)


def test_dtypes_are_kept_and_promoted(backend_name, adapter):
    for dtype in ("float32", "float64"):
        y = chanconv.corr2d_multi_in(kinds.make(backend_name, X, dtype),
                                     kinds.make(backend_name, K, dtype))  # fmt: skip
        assert adapter.dtype_name(y) == dtype
    # float32 with float64 gives float64 on every backend, TensorFlow included.
    y = chanconv.corr2d_multi_in_out(kinds.make(backend_name, X, "float32"),
                                     kinds.make(backend_name, [K], "float64"))  # fmt: skip
    assert adapter.dtype_name(y) == "float64"
    assert kinds.values(backend_name, y).tolist() == [MULTI_IN]


def test_lists_become_float32_tensors_of_the_selected_backend(backend_name, adapter):
    y = chanconv.corr2d_multi_in(X, K)
    assert isinstance(y, kinds.kinds(backend_name)[0][2])
    assert adapter.dtype_name(y) == "float32"
    # A tensor with a list: the tensor's framework and dtype.
    y = chanconv.corr2d_multi_in(kinds.make(backend_name, X, "float64"), K)
    assert adapter.is_tensor(y) and adapter.dtype_name(y) == "float64"
    assert kinds.values(backend_name, y).tolist() == MULTI_IN


class _Foreign:
    """A tensor of a framework that is not the one under test (see the fixture below)."""

    shape = (2, 3, 3)
    dtype = "float32"


class _ForeignBackend(NumpyBackend):
    name = "foreign"
    aliases = ()
    extra = "foreign"

    def is_tensor(self, x):
        return isinstance(x, _Foreign)

    def dtype_name(self, x):
        return x.dtype


@pytest.fixture
def other_framework_tensor(backend_name):
    """A tensor of another framework than the one under test: NumPy's for the others
    (NumPy is in every environment), and a test-only registered one for NumPy itself."""
    if backend_name != "numpy":
        yield "numpy", np.ones((2, 3, 3), dtype="float32")
        return
    registry.register(_ForeignBackend())
    yield "foreign", _Foreign()
    registry.adapters().pop("foreign")
    registry._names.pop("foreign")
    registry._type_cache.clear()


def test_tensors_of_two_frameworks_are_refused_naming_both(backend_name, other_framework_tensor):
    other, tensor = other_framework_tensor
    mine = kinds.make(backend_name, K)
    with pytest.raises(TypeError, match=rf"X is a {other} tensor but K is a {backend_name}"):
        chanconv.corr2d_multi_in(tensor, mine)


def _bad_inputs(b):
    x, k = kinds.make(b, X), kinds.make(b, K)
    return [
        ((x, kinds.make(b, np.ones((3, 2, 2)))), ValueError,
         r"X has 2 input channels but K expects 3 \(X shape \(2, 3, 3\), K shape \(3, 2, 2\)\)"),
        ((x, kinds.make(b, np.ones((2, 4, 2)))), ValueError,
         r"4x2 kernel of K \(shape \(2, 4, 2\)\) does not fit in the 3x3 input X"),
        ((kinds.make(b, np.ones((3, 3))), k), ValueError,
         r"X has shape \(3, 3\) \(2 dimensions\) but must have 3 dimensions"),
        ((kinds.make(b, np.ones((2, 0, 3))), k), ValueError, r"X of shape \(2, 0, 3\) is empty"),
        (([], k), ValueError, r"X has shape \(0,\)"),
        (([[[1, 2], [3]], [[1, 2], [3, 4]]], k), ValueError, r"X is a ragged nested list"),
        (([[["a", "b"]]], k), TypeError, r"X holds 'a' of type str"),
        (([[[True]]], k), TypeError, r"X holds True of type bool"),
        ((kinds.integer_tensor(b), k), TypeError, r"X has dtype int32; chanconv convolves"),
        (("X", k), TypeError, r"X is a str; chanconv takes tensors of a known backend"),
        (({"X": 1}, k), TypeError, r"X is a dict"),
    ]  # fmt: skip


def test_bad_input_is_refused_with_the_shapes_and_the_rule(backend_name):
    for args, error, message in _bad_inputs(backend_name):
        with pytest.raises(error, match=message):
            chanconv.corr2d_multi_in(*args)
    with pytest.raises(ValueError, match=r"a 2x2 kernel; this form needs a 1x1 kernel"):
        chanconv.corr2d_multi_in_out_1x1(kinds.make(backend_name, X),
                                         kinds.make(backend_name, [K]))  # fmt: skip
    with pytest.raises(
        ValueError, match=r"K has shape \(2, 2, 2\) \(3 dimensions\) but must have 4"
    ):
        chanconv.corr2d_multi_in_out(kinds.make(backend_name, X), kinds.make(backend_name, K))


def test_gradients_flow_through_the_section_functions(backend_name, adapter):
    rng = np.random.default_rng(0)
    x, k = rng.standard_normal((2, 5, 4)), rng.standard_normal((3, 2, 2, 3))
    g = rng.standard_normal((3, 4, 2))

    def loss(X_, K_):
        return autodiff.weighted_sum(backend_name, chanconv.corr2d_multi_in_out(X_, K_),
                                     g.astype("float32"))  # fmt: skip

    got = autodiff.grads(backend_name, loss, [x, k], "float32")
    ex, ek, _ = oracle.conv2d_vjp(x[None], k, g[None])
    if got is None:
        # NumPy has no autograd: the result is a plain array (no graph to carry), and the
        # section's function agrees with the oracle; conv2d_vjp is the backward pass.
        y = chanconv.corr2d_multi_in_out(kinds.make(backend_name, x), kinds.make(backend_name, k))
        assert type(y) is np.ndarray
        got = [adapter.to_numpy(t) for t in chanconv.conv2d_vjp(x, k, g)[:2]]
    np.testing.assert_allclose(got[0], ex[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got[1], ek, rtol=1e-4, atol=1e-4)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    ci=st.integers(1, 4), co=st.integers(1, 4), h=st.integers(1, 8), w=st.integers(1, 8),
    kh=st.integers(1, 8), kw=st.integers(1, 8), dtype=st.sampled_from(["float32", "float64"]),
    seed=st.integers(0, 2**16),
)  # fmt: skip
def test_section_functions_match_the_loop_oracle(backend_name, ci, co, h, w, kh, kw, dtype, seed):
    kh, kw = min(kh, h), min(kw, w)
    rng = np.random.default_rng(seed)
    x, k = rng.standard_normal((ci, h, w)), rng.standard_normal((co, ci, kh, kw))
    x, k = x.astype(dtype), k.astype(dtype)
    ref = oracle.conv2d(x[None], k)[0]
    tol = {"float32": 1e-5 * np.sqrt(ci * kh * kw), "float64": 1e-12 * ci * kh * kw}[dtype]
    b = backend_name
    results = {
        "corr2d_multi_in_out": (chanconv.corr2d_multi_in_out(kinds.make(b, x, dtype),
                                                             kinds.make(b, k, dtype)), ref),
        "corr2d_multi_in": (chanconv.corr2d_multi_in(kinds.make(b, x, dtype),
                                                     kinds.make(b, k[0], dtype)), ref[0]),
        "corr2d": (chanconv.corr2d(kinds.make(b, x[0], dtype), kinds.make(b, k[0, 0], dtype)),
                   oracle.conv2d(x[None, :1], k[:1, :1])[0, 0]),
    }  # fmt: skip
    for name, (y, want) in results.items():
        np.testing.assert_allclose(kinds.values(b, y), want, rtol=tol, atol=tol, err_msg=name)
