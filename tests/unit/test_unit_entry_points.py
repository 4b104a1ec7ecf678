"""Adapters are found through the entry-point group ``chanconv.backends``, so a third-party
package adds a backend without touching chanconv; ``chanconv.register()`` does it at run
time."""

from __future__ import annotations

import json
import textwrap
from importlib.metadata import EntryPoint, entry_points

import numpy as np
import pytest

import chanconv
from chanconv import registry
from chanconv.protocol import ArrayBackend

X = [[[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]]
K = [[[0, 1], [2, 3]], [[1, 2], [3, 4]]]
MULTI_IN = [[56.0, 72.0], [104.0, 120.0]]

BUILTIN_TARGETS = {
    "numpy": "chanconv.backends.numpy:NumpyBackend",
    "torch": "chanconv.backends.torch:TorchBackend",
    "tensorflow": "chanconv.backends.tensorflow:TensorflowBackend",
    "mxnet": "chanconv.backends.mxnet:MxnetBackend",
}


def test_installed_package_declares_the_four_builtin_entry_points():
    declared = {ep.name: ep.value for ep in entry_points(group="chanconv.backends")}
    for name, target in BUILTIN_TARGETS.items():
        assert declared.get(name) == target


@pytest.mark.parametrize("name", sorted(BUILTIN_TARGETS))
def test_each_entry_point_loads_an_adapter_of_that_name(name):
    (ep,) = [ep for ep in entry_points(group="chanconv.backends") if ep.name == name]
    adapter = ep.load()()
    assert isinstance(adapter, ArrayBackend)
    assert adapter.name == name
    assert type(chanconv.adapters()[name]) is type(adapter)
    assert registry.origin(name) == ep.value


def test_adapters_are_read_from_the_entry_point_group(grid_site, monkeypatch):
    """In-process: a reload of the registry takes whatever the group declares."""
    declared = [ep for ep in entry_points(group="chanconv.backends") if ep.name != "grid"]
    declared.append(
        EntryPoint(name="grid", value="chanconv_test_grid:GridBackend", group="chanconv.backends")
    )
    asked: list[str] = []

    def fake_entry_points(*, group):
        asked.append(group)
        return declared if group == "chanconv.backends" else []

    monkeypatch.setattr(registry, "entry_points", fake_entry_points)
    monkeypatch.setattr(registry, "_adapters", None)
    monkeypatch.setattr(registry, "_names", {})
    monkeypatch.setattr(registry, "_origins", {})
    table = chanconv.adapters()
    assert asked == ["chanconv.backends"]
    # the built-ins, grid, and any plugin installed here (the jax session has chanconv-jax)
    assert set(table) == {"numpy", "torch", "tensorflow", "mxnet", "dask"} | {
        ep.name for ep in declared
    }
    assert type(table["grid"]).__module__ == "chanconv_test_grid"
    assert registry.origin("grid") == "chanconv_test_grid:GridBackend"
    assert registry.canonical_name("GRIDFW") == "grid"
    assert chanconv.adapters() is table  # loaded once


def _install_third_party(site, tmp_path):
    """A dist-info that declares the grid adapter, as pip would leave it; returns sys.path."""
    dist = tmp_path / "dist" / "chanconv_test_grid-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: chanconv-test-grid\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[chanconv.backends]\ngrid = chanconv_test_grid:GridBackend\n"
    )
    return [str(site), str(dist.parent)]


def test_third_party_adapter_is_discovered_through_its_entry_point(grid_site, tmp_path, run_python):
    paths = _install_third_party(grid_site, tmp_path)
    code = textwrap.dedent(
        f"""
        import json, sys
        sys.path[:0] = {paths!r}

        import chanconv
        from chanconv import registry
        from importlib.metadata import entry_points

        X = {X!r}
        K = {K!r}
        declared = sorted(ep.name for ep in entry_points(group="chanconv.backends"))
        table = chanconv.adapters()
        with chanconv.use_backend("grid") as adapter:
            active = chanconv.active_name()
            y = chanconv.corr2d_multi_in(X, K)
        # a Grid now dispatches to its adapter with no use_backend around
        z = chanconv.corr2d_multi_in(adapter.asarray(X, "float32"), adapter.asarray(K, "float32"))
        print(json.dumps({{
            "declared": declared,
            "adapters": sorted(table),
            "origin": registry.origin("grid"),
            "alias": registry.canonical_name("GridFW"),
            "active": active,
            "adapter": type(adapter).__module__,
            "y_type": f"{{type(y).__module__}}.{{type(y).__name__}}",
            "y": y.tolist(),
            "z_type": f"{{type(z).__module__}}.{{type(z).__name__}}",
            "z": z.tolist(),
            "backend_for": chanconv.backend_for(y).name,
        }}))
        """
    )
    proc = run_python("-c", code)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "grid" in report["declared"]
    assert {"numpy", "torch", "tensorflow", "mxnet", "grid"} <= set(report["adapters"])
    assert report["origin"] == "chanconv_test_grid:GridBackend"
    assert report["alias"] == "grid"
    assert report["active"] == "grid"
    assert report["adapter"] == "chanconv_test_grid"
    assert report["y_type"] == report["z_type"] == "chanconv_test_gridfw.Grid"
    assert report["y"] == report["z"] == MULTI_IN
    assert report["backend_for"] == "grid"


def test_third_party_adapter_runs_the_cli_demo(grid_site, tmp_path, run_python):
    paths = _install_third_party(grid_site, tmp_path)
    env = {"PYTHONPATH": ":".join(paths), "CHANCONV_BACKEND": "GridFW"}  # alias, any case
    proc = run_python("-m", "chanconv", "demo", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "grid (chanconv_test_gridfw 0.0.1+test)" in proc.stdout
    assert "all three match" in proc.stdout


def test_register_adds_a_backend_at_run_time(grid_site):
    assert "grid" not in chanconv.adapters()
    with pytest.raises(ValueError, match="unknown backend 'grid'"):
        chanconv.set_backend("grid")

    import chanconv_test_grid

    adapter = chanconv_test_grid.GridBackend()
    chanconv.register(adapter)
    assert chanconv.adapters()["grid"] is adapter
    assert registry.origin("grid") == "register()"
    assert registry.canonical_name("gridfw") == "grid"
    assert chanconv.get_adapter("grid") is adapter
    with chanconv.use_backend("grid"):
        y = chanconv.corr2d_multi_in(X, K)
    assert type(y).__name__ == "Grid" and adapter.is_tensor(y)
    assert y.tolist() == MULTI_IN
    assert chanconv.backend_for(y) is adapter
    assert "grid" in dir(chanconv)


def test_register_replaces_an_adapter_and_forgets_cached_types(grid):
    y = grid.asarray(X, "float32")
    assert chanconv.backend_for(y) is grid
    replacement = type(grid)()
    chanconv.register(replacement)
    assert chanconv.adapters()["grid"] is replacement
    assert chanconv.backend_for(y) is replacement


def test_register_refuses_an_object_that_is_not_an_adapter():
    class Half:
        name = "half"

    with pytest.raises(TypeError, match="ArrayBackend"):
        chanconv.register(Half())  # type: ignore[arg-type]
    assert "half" not in chanconv.adapters()
    assert chanconv.backend_for(np.ones(2)).name == "numpy"


def test_a_plugin_imported_before_chanconv_loads(grid_site, tmp_path, run_python):
    """A plugin package that imports chanconv at its top (as chanconv-jax does), imported
    before chanconv: chanconv's import reads the entry points, which name the plugin's
    module, still half imported. chanconv then reads its table on first use, and the
    plugin imported first works as if imported second."""
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "chanconv_test_eager.py").write_text(
        "import chanconv  # before the adapter class exists\n"
        "from chanconv_test_grid import GridBackend\n"
    )
    dist = plugin / "chanconv_test_eager-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: chanconv-test-eager\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[chanconv.backends]\ngrid = chanconv_test_eager:GridBackend\n"
    )
    code = textwrap.dedent(
        f"""
        import json, sys
        sys.path[:0] = {[str(grid_site), str(plugin)]!r}

        import chanconv_test_eager
        import chanconv

        with chanconv.use_backend("grid") as adapter:
            y = chanconv.corr2d_multi_in({X!r}, {K!r})
        print(json.dumps({{"adapter": type(adapter).__module__, "y": y.tolist(),
                          "numpy": "numpy" in chanconv.adapters()}}))
        """
    )
    proc = run_python("-c", code)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report == {"adapter": "chanconv_test_grid", "y": MULTI_IN, "numpy": True}
