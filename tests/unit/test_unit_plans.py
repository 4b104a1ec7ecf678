"""conv2d remembers what its checks worked out per argument signature, so a layer called in
a loop pays for validation once; a new signature is checked in full."""

from __future__ import annotations

import numpy as np
import pytest

import chanconv
from chanconv import operations, registry


def test_a_repeated_signature_skips_the_checks(monkeypatch):
    operations._plans.clear()
    calls = []
    real = operations._conv_operands
    monkeypatch.setattr(operations, "_conv_operands", lambda *a: calls.append(a) or real(*a))
    x, k = np.ones((1, 2, 5, 5), "float32"), np.ones((3, 2, 3, 3), "float32")
    first = chanconv.conv2d(x, k, padding=1)
    second = chanconv.conv2d(x + 1, k, padding=1)
    assert len(calls) == 1
    np.testing.assert_array_equal(second, first * 2)
    # Any change of shape, dtype or setting is a new signature, checked in full.
    chanconv.conv2d(x.astype("float64"), k, padding=1)
    chanconv.conv2d(x, k, padding=2)
    assert len(calls) == 3
    with pytest.raises(ValueError, match="X has 2 input channels but K expects 4"):
        chanconv.conv2d(x, np.ones((3, 4, 3, 3), "float32"))


def test_promotions_are_remembered_too():
    operations._plans.clear()
    x, k = np.ones((2, 4, 4), "float32"), np.ones((1, 2, 2, 2), "float64")
    for _ in range(2):
        y = chanconv.conv2d(x, k)
        assert y.dtype == np.float64 and y.shape == (1, 3, 3)


def test_lists_are_never_remembered():
    operations._plans.clear()
    chanconv.conv2d([[[1.0, 2.0], [3.0, 4.0]]], [[[[1.0]]]])
    assert not operations._plans


def test_changing_the_adapters_forgets_every_plan():
    chanconv.conv2d(np.ones((1, 3, 3), "float32"), np.ones((1, 1, 2, 2), "float32"))
    assert operations._plans
    registry.clear_caches()
    assert not operations._plans
