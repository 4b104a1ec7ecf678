"""Conv2D on the backend under test: a module of the framework's own kind, trainable by its
own optimizer."""

from __future__ import annotations

import numpy as np
import pytest

import chanconv

from . import frameworks


def test_conv2d_layer_is_the_frameworks_own_kind(backend_name, adapter):
    layer = chanconv.Conv2D(4, 6, 3, padding=1, groups=2, seed=1)
    assert isinstance(layer, frameworks.layer_base(backend_name))
    x = adapter.asarray(np.random.default_rng(0).standard_normal((2, 4, 5, 5)).astype("float32"))
    y = frameworks.call_layer(backend_name, layer, x)
    assert adapter.is_tensor(y) and adapter.shape(y) == (2, 6, 5, 5)


def test_conv2d_layer_starts_like_pytorch_and_computes_conv2d(backend_name, adapter):
    layer = chanconv.Conv2D(3, 2, (2, 3), stride=2, seed=5)
    weight = frameworks.layer_weight(backend_name, layer)
    assert weight.shape == (2, 3, 2, 3)
    assert np.abs(weight).max() <= 1 / np.sqrt(3 * 2 * 3)  # PyTorch's default bound
    x = np.random.default_rng(1).standard_normal((1, 3, 7, 8)).astype("float32")
    y = adapter.to_numpy(frameworks.call_layer(backend_name, layer, adapter.asarray(x)))
    no_bias = adapter.to_numpy(chanconv.conv2d(adapter.asarray(x), adapter.asarray(weight),
                                               stride=2))  # fmt: skip
    bias = (y - no_bias)[0, :, 0, 0]
    np.testing.assert_allclose(y - no_bias, np.broadcast_to(bias[None, :, None, None], y.shape),
                               atol=1e-5)  # fmt: skip


def test_conv2d_layer_refuses_impossible_settings():
    with pytest.raises(ValueError, match=r"groups=4 must divide"):
        chanconv.Conv2D(6, 8, 3, groups=4)
    with pytest.raises(ValueError, match=r"unknown algorithm"):
        chanconv.Conv2D(2, 2, 3, algorithm="winograd")
    with pytest.raises(ValueError, match=r"must be positive"):
        chanconv.Conv2D(0, 2, 3)


def test_numpy_layer_backward_matches_conv2d_vjp(adapter):
    # The plain layer is protocol-only, so it runs on every backend, not just NumPy's.
    import random

    from chanconv.layers import Conv2DLayer, LayerSpec

    layer = Conv2DLayer(LayerSpec(2, 3, (3, 3), padding=1), adapter, random.Random(0))
    x = adapter.asarray(np.random.default_rng(2).standard_normal((1, 2, 4, 4)).astype("float32"))
    y = layer(x)
    dy = adapter.asarray(np.ones(adapter.shape(y), dtype="float32"))
    dx = layer.backward(dy)
    ex, ew, eb = chanconv.conv2d_vjp(x, layer.weight, dy, bias=layer.bias, padding=1)
    for got, want in ((dx, ex), (layer.weight_grad, ew), (layer.bias_grad, eb)):
        np.testing.assert_allclose(adapter.to_numpy(got), adapter.to_numpy(want))
    before = adapter.to_numpy(layer.weight)
    layer.sgd_step(0.1)
    np.testing.assert_allclose(adapter.to_numpy(layer.weight), before - 0.1 * adapter.to_numpy(ew),
                               rtol=1e-6)  # fmt: skip


def test_plain_layer_keeps_the_fourier_spectrum_only_while_weights_stand(adapter):
    """Conv2DLayer keeps its kernel spectrum between calls (inference), and an SGD step
    that changes the weights is seen at once: the output follows the new weights."""
    import random

    from chanconv.layers import Conv2DLayer, LayerSpec

    from . import oracle

    spec = LayerSpec(3, 4, (5, 5), padding=2, bias=False, algorithm="fourier", dtype="float64")
    layer = Conv2DLayer(spec, adapter, random.Random(0))
    x = np.random.default_rng(3).standard_normal((2, 3, 9, 9))
    X = adapter.asarray(x)
    geometry = dict(stride=(1, 1), pads=(2, 2, 2, 2), dilation=(1, 1), groups=1)
    for _ in range(2):
        ref = oracle.conv2d(x, adapter.to_numpy(layer.weight), None, **geometry)
        np.testing.assert_allclose(adapter.to_numpy(layer(X)), ref, rtol=1e-10, atol=1e-10)
    assert (layer._spectra.hits, layer._spectra.misses) == (1, 1)
    layer.backward(adapter.asarray(np.ones((2, 4, 9, 9))))
    layer.sgd_step(0.5)
    ref = oracle.conv2d(x, adapter.to_numpy(layer.weight), None, **geometry)
    np.testing.assert_allclose(adapter.to_numpy(layer(X)), ref, rtol=1e-10, atol=1e-10)
    assert layer._spectra.misses == 2
