"""The conformance suite's options (``chanconv.testing.plugin``) and its fixtures for
"another framework" in every virtualenv.

Each test virtualenv has NumPy plus at most one framework, so a test about two frameworks
pairs the backend under test with NumPy, and NumPy itself with a tiny test-only framework
registered for the duration of one test.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest

import chanconv
from chanconv import registry
from chanconv.testing.fixtures import *  # noqa: F403 (pytest finds fixtures by name)

DUMMY = "conformance_dummy"  # unique, so it cannot shadow a real backend


class DummyTensor:
    """A tensor of the test-only framework: a NumPy array inside a type that is not one."""

    def __init__(self, data):
        self.data = np.asarray(data)

    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)


def _raw(x):
    return x.data if isinstance(x, DummyTensor) else np.asarray(x)


class DummyAdapter:
    """The whole ArrayBackend protocol over DummyTensor, written without chanconv's base
    class: what a third-party adapter has to provide."""

    name = DUMMY
    aliases = ()
    framework = __name__  # "imported" as soon as this conftest is
    extra = DUMMY
    d2l_aliases: dict[str, str] = {}  # noqa: RUF012 (the protocol reads it, nobody writes)

    def is_tensor(self, x):
        return isinstance(x, DummyTensor)

    def version(self):
        return "0+test"

    def asarray(self, obj, dtype=None):
        return DummyTensor(np.asarray(_raw(obj), dtype=dtype))

    def astype(self, x, dtype):
        return DummyTensor(x.data.astype(dtype))

    def reshape(self, x, shape):
        return DummyTensor(x.data.reshape(shape))

    def permute_dims(self, x, axes):
        return DummyTensor(x.data.transpose(axes))

    def stack(self, arrays, axis=0):
        return DummyTensor(np.stack([_raw(a) for a in arrays], axis))

    def concat(self, arrays, axis=0):
        return DummyTensor(np.concatenate([_raw(a) for a in arrays], axis))

    def matmul(self, x1, x2):
        return DummyTensor(_raw(x1) @ _raw(x2))

    def sum(self, x, axis=None):
        return DummyTensor(_raw(x).sum(axis=axis))

    def zeros(self, shape, dtype):
        return DummyTensor(np.zeros(shape, dtype))

    def shape(self, x):
        return tuple(int(d) for d in x.shape)

    def dtype_name(self, x):
        return x.dtype.name

    def to_numpy(self, x):
        return np.array(_raw(x))

    def restore_kind(self, y, like):
        return y


@pytest.fixture
def dummy_backend():
    """Registers the test-only backend for one test, then puts the registry back.

    chanconv has no public unregister(), so its tables are restored by hand; without this
    the dummy would linger in every later test's list of known backends."""
    tables: tuple[dict[str, Any], ...] = (chanconv.adapters(), registry._names, registry._origins)
    saved = [dict(t) for t in tables]
    assert sys.modules[DummyAdapter.framework]
    chanconv.register(DummyAdapter())
    yield DUMMY
    for table, old in zip(tables, saved, strict=True):
        table.clear()
        table.update(old)
    registry.clear_caches()


@pytest.fixture
def other_framework(backend_name, request):
    """(name, make) for a framework other than the one under test: ``make(array, dtype)``
    gives one of its tensors. NumPy for the others (it is in every virtualenv); the
    test-only backend for NumPy."""
    if backend_name != "numpy":
        return "numpy", lambda a, dtype="float32": np.asarray(a, dtype=dtype)
    name = request.getfixturevalue("dummy_backend")
    return name, lambda a, dtype="float32": DummyTensor(np.asarray(a, dtype=dtype))
