"""``python -m chanconv backends``: every known backend, installed or not, with its version,
devices, adapter and install command."""

from __future__ import annotations

import importlib.util

import pytest

import chanconv
from chanconv.tools import cli, inventory
from chanconv.tools.inventory import BackendInfo, format_inventory

#: name -> (framework, extra)
BUILTINS = {"numpy": ("numpy", "numpy"), "torch": ("torch", "torch"),
            "tensorflow": ("tensorflow", "tensorflow"), "mxnet": ("mxnet", "mxnet")}  # fmt: skip


def _table(out: str) -> dict[str, list[str]]:
    """backend name -> the row's cells (split on runs of two or more spaces)."""
    lines = out.splitlines()
    assert lines[0].split() == [
        "backend",
        "installed",
        "version",
        "devices",
        "adapter",
        "from",
        "install",
    ]
    assert set(lines[1]) <= {"-", " "}
    rows = {}
    for line in lines[2:]:
        if not line.strip():
            break
        cells = [c.strip() for c in line.split("  ") if c.strip()]
        rows[cells[0]] = cells
    return rows


def test_backends_lists_the_four_builtins_installed_or_not(capsys):
    assert cli.main(["backends"]) == 0
    rows = _table(capsys.readouterr().out)
    assert list(rows)[:4] == ["numpy", "torch", "tensorflow", "mxnet"]
    installed = 0
    for name, (framework, extra) in BUILTINS.items():
        row = rows[name]
        adapter = chanconv.get_adapter(name, require_installed=False)
        assert f"chanconv.backends.{name}:" in " ".join(row)
        assert "built-in" in row
        if importlib.util.find_spec(framework) is not None:
            installed += 1
            assert row[1] == "yes"
            assert row[2] == adapter.version()
            assert "pip install" not in " ".join(row)
        else:
            assert row[1:3] == ["no", "-"]
            assert row[-1] == f"pip install 'chanconv[{extra}]'"
    assert installed >= 1  # numpy, at least


def test_each_builtin_row(builtin):
    info = inventory.describe(builtin.name)
    assert info.name == builtin.name and info.framework == builtin.framework
    assert info.installed is builtin.installed
    assert info.error is None
    assert info.origin.startswith(f"chanconv.backends.{builtin.name}:")
    assert info.install_command == f"pip install 'chanconv[{builtin.extra}]'"
    assert info.distribution == "chanconv" and not info.third_party
    if builtin.installed:
        assert info.version == chanconv.get_adapter(builtin.name).version()
        assert info.devices, "an installed framework computes on at least one device"
        assert info.devices[0].lower().startswith("cpu")
    else:
        assert info.version is None and info.devices is None


def test_numpy_is_installed_everywhere_and_computes_on_the_cpu():
    numpy_row = next(r for r in inventory.inventory() if r.name == "numpy")
    assert numpy_row.installed and numpy_row.devices == ("cpu",)


def test_a_third_party_backend_shows_where_it_comes_from(grid, capsys):
    assert cli.main(["backends"]) == 0
    row = _table(capsys.readouterr().out)["grid"]
    # no devices() method: the column says so, and nothing breaks
    assert row == [
        "grid",
        "yes",
        "0.0.1+test",
        "-",
        "chanconv_test_grid:GridBackend",
        "register() (third-party)",
    ]


def test_a_registered_backend_without_its_framework_names_its_extra(ghost, capsys):
    assert cli.main(["backends"]) == 0
    row = _table(capsys.readouterr().out)["ghost"]
    assert row[1:3] == ["no", "-"]
    assert row[-1] == "pip install 'chanconv[ghost]'"


def test_a_framework_whose_import_fails_is_shown_not_raised(grid, capsys):
    class Broken(type(grid)):
        name = "brokenimport"
        aliases = ()

        def version(self):
            raise ImportError("libfoo.so: cannot open shared object file")

    chanconv.register(Broken(), origin="thirdparty:Broken")
    assert cli.main(["backends"]) == 1
    out = capsys.readouterr().out
    row = _table(out)["brokenimport"]
    assert row[1] == "yes, import failed"
    assert "brokenimport: ImportError: libfoo.so: cannot open shared object file" in out
    # the other rows are all there
    assert {"numpy", "torch", "tensorflow", "mxnet", "grid"} <= set(_table(out))


def test_format_inventory_of_synthetic_rows():
    rows = [
        BackendInfo("alpha", (), "alphafw", True, "1.2", ("cpu", "gpu:0"), "pkg.a:A",
                    "pip install 'chanconv[alpha]'", "chanconv"),
        BackendInfo("beta", ("b",), "betafw", False, None, None, "pkg.b:B",
                    "pip install beta-dist", "beta-dist"),
    ]  # fmt: skip
    lines = format_inventory(rows).splitlines()
    assert lines[2].split() == ["alpha", "yes", "1.2", "cpu,", "gpu:0", "pkg.a:A", "built-in"]
    assert lines[3].split() == ["beta", "no", "-", "-", "pkg.b:B", "beta-dist", "(third-party)",
                                "pip", "install", "beta-dist"]  # fmt: skip
    assert len(lines) == 4


@pytest.mark.parametrize("attribute", ["version", "devices"])
def test_installed_row_fields_are_filled(attribute):
    value = getattr(inventory.describe("numpy"), attribute)
    assert value
