"""Fixtures for chanconv's unit tests.

Every unit test starts from chanconv's defaults, whatever ``tests/conftest.py`` chose for the
session (``--backend``) and whatever the shell exported: no ``CHANCONV_BACKEND``, no
``set_backend()`` choice. The registry is put back as it was afterwards, so adapters a test
registers do not leak into other tests.

The unit suite runs in four virtualenvs (numpy alone, or numpy with exactly one of torch,
tensorflow, mxnet), so a test that needs "another backend" in every environment uses the
test-only backend ``grid``: a toy framework (``chanconv_test_gridfw``: numpy arrays inside a
``Grid`` type that is not a numpy array) and its adapter (``chanconv_test_grid``). Both are
written as source files to a temporary directory, the way a third-party package would be
installed, so the entry-point test can install exactly the same code with a dist-info.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

import chanconv
from chanconv import registry
from chanconv.d2l import Namespace

GRID_FRAMEWORK = "chanconv_test_gridfw"
GRID_ADAPTER_MODULE = "chanconv_test_grid"

GRID_FRAMEWORK_SOURCE = '''
"""A toy array framework for chanconv's tests: numpy arrays inside a Grid wrapper."""

import numpy as _np

__version__ = "0.0.1+test"
float32 = "float32"


def _raw(x):
    return x.data if isinstance(x, Grid) else x


class Grid:
    """An immutable n-d array that is not a numpy array."""

    def __init__(self, data, dtype=None):
        self.data = _np.array(_raw(data), dtype=dtype)

    shape = property(lambda self: tuple(self.data.shape))
    dtype = property(lambda self: self.data.dtype)

    def __getitem__(self, index):
        return Grid(self.data[index])

    def __iter__(self):
        return (Grid(row) for row in self.data)

    def __len__(self):
        return len(self.data)

    def __add__(self, other):
        return Grid(self.data + _raw(other))

    __radd__ = __add__

    def __sub__(self, other):
        return Grid(self.data - _raw(other))

    def __abs__(self):
        return Grid(abs(self.data))

    def __float__(self):
        return float(self.data)

    def sum(self, axis=None):
        return Grid(self.data.sum(axis=axis))

    def reshape(self, shape):
        return Grid(self.data.reshape(shape))

    def tolist(self):
        return self.data.tolist()

    def __repr__(self):
        return f"Grid({self.data.tolist()!r})"


def array(obj, dtype=None):
    return Grid(obj, dtype)


def zeros(shape, dtype="float32"):
    return Grid(_np.zeros(shape, dtype))


def ones(shape, dtype="float32"):
    return Grid(_np.ones(shape, dtype))


def stack(arrays, axis=0):
    return Grid(_np.stack([_raw(a) for a in arrays], axis))


def concat(arrays, axis=0):
    return Grid(_np.concatenate([_raw(a) for a in arrays], axis))


def matmul(a, b):
    return Grid(_np.matmul(_raw(a), _raw(b)))


def reshape(x, shape):
    return Grid(_np.reshape(_raw(x), shape))


def transpose(x, axes):
    return Grid(_np.transpose(_raw(x), axes))
'''

GRID_ADAPTER_SOURCE = '''
"""A chanconv adapter as a third-party package ships it: it satisfies
chanconv.protocol.ArrayBackend without subclassing or even importing chanconv, and imports
its framework only when first used."""

import importlib


class GridBackend:
    name = "grid"
    aliases = ("gridfw",)
    framework = "chanconv_test_gridfw"
    extra = "grid"
    d2l_aliases = {
        "tensor": "array", "zeros": "zeros", "ones": "ones", "stack": "stack",
        "concat": "concat", "matmul": "matmul", "reshape": "reshape", "float32": "float32",
        "reduce_sum": ".sum",
    }

    @property
    def fw(self):
        return importlib.import_module(self.framework)

    def is_tensor(self, x):
        return isinstance(x, self.fw.Grid)

    def version(self):
        return self.fw.__version__

    def asarray(self, obj, dtype=None):
        if self.is_tensor(obj) and dtype is None:
            return obj
        return self.fw.array(obj, dtype)

    def astype(self, x, dtype):
        return self.fw.array(x, dtype)

    def reshape(self, x, shape):
        return self.fw.reshape(x, shape)

    def permute_dims(self, x, axes):
        return self.fw.transpose(x, axes)

    def stack(self, arrays, axis=0):
        return self.fw.stack(arrays, axis)

    def concat(self, arrays, axis=0):
        return self.fw.concat(arrays, axis)

    def matmul(self, x1, x2):
        return self.fw.matmul(x1, x2)

    def sum(self, x, axis=None):
        return x.sum(axis)

    def zeros(self, shape, dtype):
        return self.fw.zeros(shape, dtype)

    def shape(self, x):
        return tuple(int(d) for d in x.shape)

    def dtype_name(self, x):
        return str(x.dtype.name)

    def to_numpy(self, x):
        return x.data.copy()

    def restore_kind(self, y, like):
        return y
'''


class Builtin(NamedTuple):
    name: str
    framework: str
    extra: str
    installed: bool


#: The four built-in backends: canonical name -> (framework import name, pip extra).
BUILTINS = {
    "numpy": ("numpy", "numpy"),
    "torch": ("torch", "torch"),
    "tensorflow": ("tensorflow", "tensorflow"),
    "mxnet": ("mxnet", "mxnet"),
}
ALL_BUILTINS = [
    Builtin(name, fw, extra, importlib.util.find_spec(fw) is not None)
    for name, (fw, extra) in BUILTINS.items()
]
INSTALLED_BUILTINS = [b for b in ALL_BUILTINS if b.installed]


@pytest.fixture(params=ALL_BUILTINS, ids=lambda b: b.name)
def builtin(request: pytest.FixtureRequest) -> Builtin:
    """Each of the four built-in backends, installed here or not."""
    return request.param


@pytest.fixture(params=INSTALLED_BUILTINS, ids=lambda b: b.name)
def installed_builtin(request: pytest.FixtureRequest) -> Builtin:
    """Each built-in backend whose framework this virtualenv has (numpy always)."""
    return request.param


@pytest.fixture(autouse=True)
def _pristine_chanconv(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """chanconv's defaults for the test (no env var, no global choice); afterwards the
    session's global choice, the registry's tables and chanconv's cached namespaces are put
    back. The test's own monkeypatches are undone first, so a test that swapped a registry
    table (to force a reload) gets the original ones restored, then repaired in place."""
    monkeypatch.delenv(registry.ENV_VAR, raising=False)
    saved_choice = registry._global_choice
    registry.set_backend(None)
    table = registry.adapters()
    monkeypatch.setattr(registry, "_adapters", table)  # a test may force a reload
    live = (table, registry._names, registry._origins)
    saved = [dict(d) for d in live]
    saved_globals = set(vars(chanconv))
    yield
    registry._global_choice = saved_choice
    monkeypatch.undo()
    for current, old in zip(live, saved, strict=True):
        current.clear()
        current.update(old)
    registry.clear_caches()
    for key in set(vars(chanconv)) - saved_globals:
        if isinstance(vars(chanconv)[key], Namespace):
            delattr(chanconv, key)


@pytest.fixture(scope="session")
def grid_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory holding the toy framework and its adapter, on sys.path for the session."""
    site = tmp_path_factory.mktemp("grid_site")
    (site / f"{GRID_FRAMEWORK}.py").write_text(textwrap.dedent(GRID_FRAMEWORK_SOURCE))
    (site / f"{GRID_ADAPTER_MODULE}.py").write_text(textwrap.dedent(GRID_ADAPTER_SOURCE))
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    yield site
    sys.path.remove(str(site))


@pytest.fixture
def grid_module(grid_site: Path):
    """The toy framework module (imported)."""
    return importlib.import_module(GRID_FRAMEWORK)


@pytest.fixture
def grid(grid_site: Path):
    """The ``grid`` backend, registered with ``chanconv.register()`` for this test only."""
    adapter = importlib.import_module(GRID_ADAPTER_MODULE).GridBackend()
    chanconv.register(adapter, origin=f"{GRID_ADAPTER_MODULE}:GridBackend")
    return adapter


@pytest.fixture
def ghost(grid_site: Path):
    """A registered backend ``ghost`` whose framework does not exist anywhere."""
    base = importlib.import_module(GRID_ADAPTER_MODULE).GridBackend

    class GhostBackend(base):
        name = "ghost"
        aliases = ("spectre",)
        framework = "chanconv_test_no_such_framework"
        extra = "ghost"

    assert importlib.util.find_spec(GhostBackend.framework) is None
    adapter = GhostBackend()
    chanconv.register(adapter)
    return adapter


@pytest.fixture
def clean_env() -> dict[str, str]:
    """os.environ for a subprocess, without CHANCONV_BACKEND and without TF's chatter."""
    env = {k: v for k, v in os.environ.items() if k != registry.ENV_VAR}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


@pytest.fixture
def run_python(clean_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``sys.executable`` with arguments in a fresh process; CHANCONV_BACKEND unset
    unless ``env`` adds it."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args],
            env={**clean_env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run
