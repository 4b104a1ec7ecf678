"""``backend_for``: a tensor's backend by its type, cached per type."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest

import chanconv
from chanconv import registry

NATIVE = {
    "numpy": ("numpy", "ndarray"),
    "torch": ("torch", "Tensor"),
    "tensorflow": ("tensorflow", "Tensor"),
    "mxnet": ("mxnet.numpy", "ndarray"),
}


@pytest.fixture
def fresh_cache(monkeypatch):
    cache: dict = {}
    monkeypatch.setattr(registry, "_type_cache", cache)
    return cache


@pytest.fixture
def calls(monkeypatch):
    """Counts is_tensor calls per adapter, for every adapter known now."""
    counts: dict[str, int] = {}
    for name, adapter in registry.adapters().items():
        counts[name] = 0

        def counting(x, _name=name, _inner=adapter.is_tensor):
            counts[_name] += 1
            return _inner(x)

        monkeypatch.setattr(adapter, "is_tensor", counting)
    return counts


def test_numpy_array_maps_to_the_numpy_adapter(fresh_cache):
    adapter = chanconv.backend_for(np.ones(2))
    assert adapter is chanconv.adapters()["numpy"]
    assert fresh_cache[np.ndarray] is adapter


def test_second_lookup_of_a_type_is_a_cache_hit(fresh_cache, calls):
    assert chanconv.backend_for(np.ones(2)).name == "numpy"
    assert calls["numpy"] == 1
    assert list(fresh_cache) == [np.ndarray]
    # another array of the same type: answered from the cache, no adapter asked
    assert chanconv.backend_for(np.zeros((3, 4), dtype=np.float64)).name == "numpy"
    assert chanconv.backend_for(np.ones(2)).name == "numpy"
    assert sum(calls.values()) == 1


@pytest.mark.parametrize(
    "value",
    [[1.0, 2.0], [[1.0]], (1.0,), {"a": 1}, "text", b"bytes", 3, 2.5, None],
    ids=lambda v: type(v).__name__,
)
def test_non_tensors_have_no_backend_and_are_cached_too(fresh_cache, calls, value):
    assert chanconv.backend_for(value) is None
    asked = sum(calls.values())
    assert asked >= 1  # numpy is always imported here, so at least numpy was asked
    assert fresh_cache == {type(value): None}
    assert chanconv.backend_for(value) is None
    assert sum(calls.values()) == asked


def test_installed_framework_tensor_maps_to_its_adapter(installed_builtin, fresh_cache):
    adapter = chanconv.get_adapter(installed_builtin.name)
    x = adapter.asarray([[1.0, 2.0]], "float32")
    module, cls = NATIVE[installed_builtin.name]
    assert isinstance(x, getattr(importlib.import_module(module), cls))
    assert chanconv.backend_for(x) is adapter
    assert fresh_cache[type(x)] is adapter


def test_lookup_asks_only_adapters_whose_framework_is_imported(
    ghost, grid_module, fresh_cache, calls
):
    # ghost would claim a Grid, but its framework is not imported (it does not exist), so
    # it is never asked: asking would import it and fail.
    assert ghost.framework not in sys.modules
    assert chanconv.backend_for(grid_module.Grid([1.0])) is None
    assert chanconv.backend_for(object()) is None
    assert calls["ghost"] == 0
    assert calls["numpy"] == 2


def test_registered_adapter_type_is_found_and_cached(grid, fresh_cache, calls):
    y = grid.asarray([[1.0, 2.0]], "float32")
    z = grid.asarray([3.0])
    before = dict(calls)
    assert chanconv.backend_for(y) is grid
    assert calls["grid"] == before["grid"] + 1
    assert calls["numpy"] == before["numpy"] + 1  # numpy is asked first, and says no
    assert fresh_cache == {type(y): grid}
    assert chanconv.backend_for(z) is grid
    assert chanconv.backend_for(y) is grid
    assert calls["grid"] == before["grid"] + 1
    assert calls["numpy"] == before["numpy"] + 1
