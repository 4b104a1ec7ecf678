"""``chanconv.<backend>`` is a real submodule for every backend the registry knows: built-in,
entry point or registered at run time. Importing it gives the object that
``from chanconv import <backend>`` gives, and imports no other framework."""

from __future__ import annotations

import importlib
import subprocess
import sys

import chanconv
from chanconv import registry
from chanconv.d2l import Namespace


def test_backend_is_an_importable_submodule(backend_name, adapter):
    module = importlib.import_module(f"chanconv.{backend_name}")
    scope: dict[str, object] = {}
    exec(f"import chanconv.{backend_name} as imported", scope)
    exec(f"from chanconv import {backend_name} as attribute", scope)
    assert isinstance(module, Namespace) and module.backend_name == backend_name
    assert scope["imported"] is module and scope["attribute"] is module
    assert sys.modules[f"chanconv.{backend_name}"] is module
    spec = importlib.util.find_spec(f"chanconv.{backend_name}")
    assert spec is not None and spec.name == f"chanconv.{backend_name}"
    # An alias that is a Python name is a submodule too; a dotted one ("dask.array") is a
    # backend name only, since chanconv.dask.array would be a module inside chanconv.dask.
    for alias in (a for a in adapter.aliases if a.isidentifier()):
        assert importlib.import_module(f"chanconv.{alias}") is module
    x = adapter.asarray(np_data())
    assert adapter.is_tensor(module.corr2d(x, x[:1, :1]))


def np_data():
    import numpy as np

    return np.arange(9, dtype="float32").reshape(3, 3)


def test_submodule_of_a_registered_backend(dummy_backend):
    module = importlib.import_module(f"chanconv.{dummy_backend}")
    assert module is getattr(chanconv, dummy_backend)
    assert module.backend_name == dummy_backend
    sys.modules.pop(f"chanconv.{dummy_backend}", None)
    chanconv.__dict__.pop(dummy_backend, None)


def test_unknown_submodule_is_still_an_import_error():
    try:
        importlib.import_module("chanconv.no_such_backend")
    except ModuleNotFoundError as err:
        assert err.name == "chanconv.no_such_backend"
    else:
        raise AssertionError("chanconv.no_such_backend imported")


def test_importing_one_backend_imports_no_framework(backend_name, adapter):
    """In a fresh interpreter: ``import chanconv.<name>`` loads neither its own framework
    nor any other (a namespace resolves names on first use). The generic Array API adapter
    is the exception for its own library: only importing it tells that it is one."""
    own = {adapter.framework} if chanconv.registry.is_generic(adapter) else set()
    frameworks = sorted({a.framework for a in registry.adapters().values()} - {"numpy"} - own)
    code = (
        f"import sys, chanconv.{backend_name}; "
        f"print([f for f in {frameworks!r} if f in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    assert out.strip().splitlines()[-1] == "[]"
