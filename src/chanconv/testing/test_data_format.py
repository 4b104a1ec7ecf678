"""``data_format="channels_last"`` (Keras's name): X (n, h, w, ci) or (h, w, ci), the result
in the same layout, K in the book's (co, ci/groups, kh, kw); against the float64 oracle,
eagerly and in the backend's compiled modes."""

from __future__ import annotations

import numpy as np
import pytest

import chanconv

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
