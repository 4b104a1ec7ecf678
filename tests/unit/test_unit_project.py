"""The project's promises about itself: the README's two set-up commands, CI running the
README's test command, and the matrix covering all four backends with pinned versions."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).parents[2]
BACKENDS = ["numpy", "torch", "tensorflow", "mxnet"]
#: Libraries served by the generic Array API adapter: a nox session and pins, no entry point.
ARRAY_API = ["array-api-strict"]


def setup_commands():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)\n```", section, flags=re.S)


def test_readme_has_exactly_two_setup_commands_demo_and_matrix():
    demo, matrix = setup_commands()
    assert "python3 -m chanconv demo" in demo and "pip install ." in demo
    assert matrix.endswith("python3 -m nox")


def test_ci_runs_the_readmes_test_command():
    matrix = setup_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert matrix.split("&&")[-1].strip() in ci


def test_matrix_has_every_backend_with_its_own_pins():
    noxfile = (ROOT / "noxfile.py").read_text()
    assert (
        'BACKENDS = ["numpy", "torch", "tensorflow", "mxnet", "array-api-strict", *PLUGINS]'
        in noxfile
    )
    assert 'PLUGINS = {"jax": ("plugins/chanconv-jax", "flax")}' in noxfile
    assert "jax==" in (ROOT / "constraints" / "jax.txt").read_text()
    pins = {b: (ROOT / "constraints" / f"{b}.txt").read_text() for b in BACKENDS + ARRAY_API}
    assert "torch==2.13.0" in pins["torch"]
    assert "tensorflow==" in pins["tensorflow"]
    assert "mxnet==1.9.1" in pins["mxnet"] and "numpy==1.23" in pins["mxnet"]
    assert "array-api-strict==" in pins["array-api-strict"]


def test_extras_say_what_each_backend_needs_and_entry_points_name_the_adapters():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert set(BACKENDS + ARRAY_API) <= set(extras)
    assert "mxnet==1.9.1" in extras["mxnet"]
    assert any(req.replace(" ", "").endswith("<1.24") for req in extras["mxnet"])
    points = project["entry-points"]["chanconv.backends"]
    assert set(points) == set(BACKENDS)
    for name, target in points.items():
        assert target.startswith(f"chanconv.backends.{name}:")


def test_readme_layout_table_covers_every_module():
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout") : readme.index("## Adding a backend")]
    src = ROOT / "src" / "chanconv"
    for module in sorted(src.glob("*.py")):
        assert f"`{module.name}`" in layout or f"`src/chanconv/{module.name}`" in layout, module
    for package in ("testing", "tools"):
        assert f"`src/chanconv/{package}/`" in layout
    for module in sorted((src / "testing").glob("*.py")):
        if not module.name.startswith(("test_", "__")):
            assert f"`{module.name}`" in layout, module
    for module in sorted((src / "tools").glob("*.py")):
        if not module.name.startswith("__"):
            assert f"`{module.stem}`" in layout, module
    for plugin in sorted((ROOT / "plugins").iterdir()):
        assert f"`plugins/{plugin.name}/`" in layout
