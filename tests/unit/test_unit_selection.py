"""Choosing the backend: tensors' framework > use_backend > set_backend > CHANCONV_BACKEND >
numpy; names, aliases, and the errors for unknown and uninstalled backends."""

from __future__ import annotations

import re

import numpy as np
import pytest

import chanconv
from chanconv import registry

X = [[[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]]
K = [[[0, 1], [2, 3]], [[1, 2], [3, 4]]]
MULTI_IN = [[56.0, 72.0], [104.0, 120.0]]
KNOWN = ("numpy", "torch", "tensorflow", "mxnet")


def _result_backend(X=X, K=K) -> str:
    """The name of the backend whose tensor an op on these arguments returns."""
    y = chanconv.corr2d_multi_in(X, K)
    adapter = chanconv.backend_for(y)
    assert adapter is not None, f"{type(y)} is no backend's tensor"
    assert adapter.to_numpy(y).tolist() == MULTI_IN
    return adapter.name


def _observed() -> tuple[str, str]:
    return chanconv.active_name(), _result_backend()


# --- defaults and the precedence ladder --------------------------------------------------


def test_default_is_numpy():
    assert chanconv.active_name() == "numpy"
    assert type(chanconv.corr2d_multi_in(X, K)) is np.ndarray


def test_env_var_beats_default(grid, monkeypatch):
    monkeypatch.setenv("CHANCONV_BACKEND", "grid")
    assert _observed() == ("grid", "grid")


def test_empty_env_var_means_default(monkeypatch):
    monkeypatch.setenv("CHANCONV_BACKEND", "")
    assert _observed() == ("numpy", "numpy")


@pytest.mark.parametrize(("low", "high"), [("grid", "numpy"), ("numpy", "grid")])
def test_each_level_beats_the_ones_below(grid, monkeypatch, low, high):
    """env=low, then set_backend(high) over it, then use_backend(low) over that; both ways
    round, so no level can be winning by accident of the name it was given."""
    monkeypatch.setenv("CHANCONV_BACKEND", low)
    assert _observed() == (low, low)
    chanconv.set_backend(high)
    assert _observed() == (high, high)
    with chanconv.use_backend(low):
        assert _observed() == (low, low)
        chanconv.set_backend(high)  # a global choice made inside does not override
        assert _observed() == (low, low)
    assert _observed() == (high, high)
    chanconv.set_backend(None)
    assert _observed() == (low, low)
    monkeypatch.delenv("CHANCONV_BACKEND")
    assert _observed() == ("numpy", "numpy")


def test_set_backend_none_resets(grid):
    chanconv.set_backend("grid")
    assert chanconv.active_name() == "grid"
    chanconv.set_backend(None)
    assert chanconv.active_name() == "numpy"
    assert registry._global_choice is None


def test_set_backend_accepts_any_spelling_and_stores_the_canonical_name(grid):
    chanconv.set_backend("  GridFW ")
    assert chanconv.active_name() == "grid"
    chanconv.set_backend("NumPy")
    assert chanconv.active_name() == "numpy"


# --- tensors beat every choice -----------------------------------------------------------


def _non_numpy_installed(grid) -> list[str]:
    """The test-only backend, and every installed non-numpy built-in."""
    names = [grid.name]
    for name in KNOWN[1:]:
        try:
            names.append(chanconv.get_adapter(name).name)
        except ImportError:
            pass
    return names


def test_numpy_arrays_compute_with_numpy_whatever_is_chosen(grid, monkeypatch):
    Xn, Kn = np.asarray(X, np.float32), np.asarray(K, np.float32)
    for other in _non_numpy_installed(grid):
        monkeypatch.setenv("CHANCONV_BACKEND", other)
        chanconv.set_backend(other)
        with chanconv.use_backend(other):
            assert chanconv.active_name() == other
            assert _result_backend() == other  # lists follow the choice...
            y = chanconv.corr2d_multi_in(Xn, Kn)  # ...numpy arrays do not
            assert type(y) is np.ndarray
            assert y.tolist() == MULTI_IN
            assert _result_backend(Xn, K) == "numpy"  # one tensor is enough


def test_other_tensors_compute_with_their_framework_under_a_numpy_choice(grid, monkeypatch):
    monkeypatch.setenv("CHANCONV_BACKEND", "numpy")
    chanconv.set_backend("numpy")
    for other in _non_numpy_installed(grid):
        adapter = chanconv.get_adapter(other)
        Xo, Ko = adapter.asarray(X, "float32"), adapter.asarray(K, "float32")
        with chanconv.use_backend("numpy"):
            y = chanconv.corr2d_multi_in(Xo, Ko)
            assert chanconv.backend_for(y) is adapter
            assert type(y) is type(Xo)
            assert adapter.to_numpy(y).tolist() == MULTI_IN
            assert _result_backend(X, Ko) == other


# --- names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("numpy", "numpy"), ("np", "numpy"), ("NumPy", "numpy"),
        ("torch", "torch"), ("pytorch", "torch"), ("PyTorch", "torch"), ("TORCH", "torch"),
        ("tensorflow", "tensorflow"), ("tf", "tensorflow"), ("TF", "tensorflow"),
        ("TensorFlow", "tensorflow"), ("mxnet", "mxnet"), ("mx", "mxnet"), ("MX", "mxnet"),
        ("MXNet", "mxnet"), (" tf ", "tensorflow"),
    ],
)  # fmt: skip
def test_aliases_and_case_map_to_canonical_names(spelling, canonical):
    assert registry.canonical_name(spelling) == canonical
    assert chanconv.get_adapter(spelling, require_installed=False).name == canonical


def _enter_use_backend(name: str) -> None:
    with chanconv.use_backend(name):
        pass


def _assert_lists_known(message: str) -> None:
    for name in KNOWN:
        assert re.search(rf"\b{name}\b", message), f"{name!r} not listed in: {message}"


@pytest.mark.parametrize(
    "choose",
    [
        registry.canonical_name,
        chanconv.set_backend,
        _enter_use_backend,
        chanconv.get_adapter,
    ],
    ids=["canonical_name", "set_backend", "use_backend", "get_adapter"],
)
def test_unknown_name_is_a_value_error_listing_known_backends(choose):
    with pytest.raises(ValueError, match="nosuch") as err:
        choose("nosuch")
    _assert_lists_known(str(err.value))
    assert chanconv.active_name() == "numpy"


def test_unknown_name_in_env_var_is_a_value_error_naming_the_variable(monkeypatch):
    monkeypatch.setenv("CHANCONV_BACKEND", "nosuch")
    with pytest.raises(ValueError, match="CHANCONV_BACKEND") as err:
        chanconv.active_name()
    assert "nosuch" in str(err.value)
    _assert_lists_known(str(err.value))
    with pytest.raises(ValueError, match="CHANCONV_BACKEND"):
        chanconv.corr2d_multi_in(X, K)
    # an explicit choice does not consult the variable
    chanconv.set_backend("numpy")
    assert _observed() == ("numpy", "numpy")


# --- backends whose framework is missing -------------------------------------------------


def _pip_hint(extra: str) -> str:
    return re.escape(f"pip install 'chanconv[{extra}]'")


def test_builtin_backend_needs_its_framework(builtin, monkeypatch):
    if builtin.installed:
        assert chanconv.get_adapter(builtin.name).name == builtin.name
        with chanconv.use_backend(builtin.name) as adapter:
            assert adapter.name == builtin.name
            assert chanconv.active_name() == builtin.name
        chanconv.set_backend(builtin.name)
        assert chanconv.active_name() == builtin.name
        return
    hint = _pip_hint(builtin.extra)
    with pytest.raises(ImportError, match=hint):
        chanconv.get_adapter(builtin.name)
    with pytest.raises(ImportError, match=hint):
        chanconv.set_backend(builtin.name)
    with pytest.raises(ImportError, match=hint):
        with chanconv.use_backend(builtin.name):
            pass
    assert chanconv.active_name() == "numpy"  # nothing was chosen
    monkeypatch.setenv("CHANCONV_BACKEND", builtin.name)
    with pytest.raises(ImportError, match=hint):
        chanconv.corr2d_multi_in(X, K)
    # the adapter itself is available for introspection without its framework
    assert chanconv.get_adapter(builtin.name, require_installed=False).extra == builtin.extra


def test_registered_backend_without_its_framework_names_its_extra(ghost, monkeypatch):
    hint = _pip_hint("ghost")
    for spelling in ("ghost", "Spectre"):
        with pytest.raises(ImportError, match=hint) as err:
            chanconv.get_adapter(spelling)
        assert "chanconv_test_no_such_framework" in str(err.value)
        with pytest.raises(ImportError, match=hint):
            chanconv.set_backend(spelling)
        with pytest.raises(ImportError, match=hint):
            with chanconv.use_backend(spelling):
                pass
    assert chanconv.active_name() == "numpy"
    monkeypatch.setenv("CHANCONV_BACKEND", "ghost")
    assert chanconv.active_name() == "ghost"  # a known name: the check comes on use
    with pytest.raises(ImportError, match=hint):
        chanconv.corr2d_multi_in(X, K)
    # tensors of an installed framework still compute
    y = chanconv.corr2d_multi_in(np.asarray(X, np.float32), np.asarray(K, np.float32))
    assert y.tolist() == MULTI_IN
