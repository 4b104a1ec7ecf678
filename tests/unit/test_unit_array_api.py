"""The generic Array API adapter, in every virtualenv: dispatch falls back to it for arrays
with ``__array_namespace__`` and no adapter of their own, one adapter per namespace, and
namespace names select it for nested lists.

The libraries here are two toy Array API namespaces (NumPy arrays inside a type that is not
one), written to a temporary directory like the ``grid`` framework, so the tests run without
array-api-strict; the conformance session ``tests(array-api-strict)`` proves the adapter on
the real reference library.
"""

from __future__ import annotations

import importlib
import sys
import textwrap

import numpy as np
import pytest

import chanconv
from chanconv import registry
from chanconv.tools import cli, inventory

TOY_SOURCE = '''
"""A toy Array API namespace: numpy arrays inside Array, the standard's names only."""

import sys

import numpy as _np

__array_api_version__ = "2024.12"
__version__ = "0.0.1+test"
float32, float64, int32, bool = (_np.dtype(n) for n in ("float32", "float64", "int32", "bool"))


def _raw(x):
    return x._data if isinstance(x, Array) else x


class Array:
    def __init__(self, data):
        self._data = _np.asarray(data)

    def __array_namespace__(self, api_version=None):
        return sys.modules[__name__]

    shape = property(lambda self: tuple(self._data.shape))
    dtype = property(lambda self: self._data.dtype)

    def __getitem__(self, key):
        return Array(self._data[key])

    def __add__(self, other):
        return Array(self._data + _raw(other))

    def __dlpack__(self, **kwargs):
        return self._data.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()


def asarray(obj, dtype=None, device=None, copy=None):
    return obj if isinstance(obj, Array) and dtype is None else Array(
        _np.asarray(_raw(obj), dtype=dtype))


def astype(x, dtype, copy=True):
    return Array(x._data.astype(dtype))


def reshape(x, shape, copy=None):
    return Array(_np.reshape(x._data, shape))


def permute_dims(x, axes):
    return Array(_np.transpose(x._data, axes))


def stack(arrays, axis=0):
    return Array(_np.stack([_raw(a) for a in arrays], axis))


def concat(arrays, axis=0):
    return Array(_np.concatenate([_raw(a) for a in arrays], axis))


def matmul(x1, x2):
    return Array(_np.matmul(_raw(x1), _raw(x2)))


def sum(x, axis=None, dtype=None, keepdims=False):
    return Array(_np.sum(x._data, axis=axis))


def zeros(shape, dtype=None, device=None):
    return Array(_np.zeros(shape, dtype=dtype))
'''

X = [[[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]]
K = [[[0, 1], [2, 3]], [[1, 2], [3, 4]]]
MULTI_IN = [[56.0, 72.0], [104.0, 120.0]]


@pytest.fixture(scope="module")
def toys(tmp_path_factory):
    """Two toy Array API libraries, ``chanconv_test_xp_a`` and ``chanconv_test_xp_b``."""
    site = tmp_path_factory.mktemp("xp_site")
    names = ("chanconv_test_xp_a", "chanconv_test_xp_b")
    for name in names:
        (site / f"{name}.py").write_text(textwrap.dedent(TOY_SOURCE))
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    yield names
    sys.path.remove(str(site))
    for name in names:
        sys.modules.pop(name, None)


@pytest.fixture
def xp(toys):
    return importlib.import_module(toys[0])


@pytest.fixture
def xp_b(toys):
    return importlib.import_module(toys[1])


def test_an_array_api_array_is_served_by_the_generic_adapter_of_its_namespace(xp):
    x, k = xp.asarray(X, dtype=xp.float32), xp.asarray(K, dtype=xp.float32)
    adapter = chanconv.backend_for(x)
    assert adapter is not None and adapter.name == xp.__name__
    # which adapter served: the generic one
    assert chanconv.registry.is_generic(adapter) and "array-api" in repr(adapter)
    assert registry.origin(adapter.name) == registry.GENERIC
    assert registry._type_cache[xp.Array] is adapter  # cached per type, like the others
    y = chanconv.corr2d_multi_in(x, k)
    assert type(y) is xp.Array and adapter.dtype_name(y) == "float32"
    assert adapter.to_numpy(y).tolist() == MULTI_IN
    for algorithm in ("direct", "im2col", "auto"):
        y = chanconv.conv2d(x, xp.stack([k, k]), padding=1, stride=2, algorithm=algorithm)
        assert adapter.shape(y) == (2, 2, 2)
    with pytest.raises(ValueError, match=r"algorithm='native'.*" + xp.__name__):
        chanconv.conv2d(x, xp.stack([k]), algorithm="native")


def test_a_library_with_its_own_adapter_keeps_it(xp, grid):
    # NumPy 2's ndarray has __array_namespace__ too: the numpy adapter still serves it.
    assert chanconv.backend_for(np.ones(2)).name == "numpy"
    assert chanconv.backend_for(np.float32(1.0)) is None  # a scalar, not an array

    class XpBackend(type(grid)):
        name, aliases, framework = "xp-own", (), xp.__name__

        def is_tensor(self, x):
            return isinstance(x, xp.Array)

    assert chanconv.registry.is_generic(chanconv.backend_for(xp.asarray([1.0])))
    own = XpBackend()
    chanconv.register(own)  # a dedicated adapter, registered later, wins
    assert chanconv.backend_for(xp.asarray([1.0])) is own


def test_two_array_api_libraries_in_one_call_are_refused_naming_both(xp, xp_b):
    x, k = xp.asarray(X, dtype=xp.float32), xp_b.asarray(K, dtype=xp_b.float32)
    with pytest.raises(TypeError) as caught:
        chanconv.corr2d_multi_in(x, k)
    message = str(caught.value)
    assert xp.__name__ in message and xp_b.__name__ in message and "mix" in message
    with pytest.raises(TypeError, match="numpy"):
        chanconv.corr2d_multi_in(x, np.asarray(K, dtype="float32"))


def test_a_namespace_name_selects_the_generic_adapter_for_nested_lists(xp, monkeypatch):
    dashed = xp.__name__.replace("_", "-")
    with chanconv.use_backend(dashed) as adapter:
        assert adapter.name == xp.__name__ and chanconv.active_name() == xp.__name__
        y = chanconv.corr2d_multi_in(X, K)
    assert type(y) is xp.Array and adapter.to_numpy(y).tolist() == MULTI_IN
    assert registry.canonical_name(dashed.upper()) == xp.__name__  # names ignore case
    monkeypatch.setenv(registry.ENV_VAR, xp.__name__)
    assert chanconv.active_name() == xp.__name__
    assert type(chanconv.corr2d(X[0], K[0])) is xp.Array


@pytest.mark.parametrize("name", ["json", "chanconv_test_no_such_library", "os.path", "a b"])
def test_a_name_that_is_no_array_api_namespace_is_unknown(name):
    with pytest.raises(ValueError, match=r"unknown backend .*Array API library"):
        chanconv.get_adapter(name)


def test_the_adapter_reads_dtypes_and_refuses_ones_the_namespace_lacks(xp):
    adapter = registry.get_adapter(xp.__name__)
    assert adapter.dtype_name(xp.asarray([1], dtype=xp.int32)) == "int32"
    with pytest.raises(TypeError, match="float32, float64"):
        adapter.zeros((1,), "bfloat16")
    with pytest.raises(TypeError, match=r"X has dtype int32"):
        chanconv.corr2d(xp.asarray([[1, 2]], dtype=xp.int32), [[1.0]])


def test_backends_lists_the_generic_adapter_and_the_libraries_it_served(xp, capsys):
    assert cli.main(["backends"]) == 0
    assert "array-api (any library with __array_namespace__)" in capsys.readouterr().out
    chanconv.backend_for(xp.asarray([1.0]))
    labels = [row.label for row in inventory.inventory()]
    generic = labels.index("array-api (any library with __array_namespace__)")
    # After every dedicated adapter, before (or among) the libraries it served.
    assert all(not label.endswith("(array-api)") for label in labels[:generic])
    assert f"{xp.__name__} (array-api)" in labels[generic + 1 :]
