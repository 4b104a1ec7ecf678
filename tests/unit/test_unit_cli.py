"""``python -m chanconv demo``."""

from __future__ import annotations

import re

import numpy as np
import pytest

import chanconv
from chanconv.tools import cli, reference

KNOWN = ("numpy", "torch", "tensorflow", "mxnet")


def _assert_demo_passed(proc, name: str, framework: str, version: str) -> None:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"chanconv demo on {name} ({framework} {version})" in proc.stdout
    assert proc.stdout.count("-> matches the book") == 3
    assert "DOES NOT MATCH" not in proc.stdout
    assert "all three match" in proc.stdout


def test_demo_on_the_default_backend(run_python):
    proc = run_python("-m", "chanconv", "demo")
    _assert_demo_passed(proc, "numpy", "numpy", np.__version__)
    assert "[[ 56.  72.]\n [104. 120.]]" in proc.stdout


def test_demo_with_an_unknown_env_var_names_the_variable(run_python):
    proc = run_python("-m", "chanconv", "demo", env={"CHANCONV_BACKEND": "nosuch"})
    assert proc.returncode != 0
    assert "CHANCONV_BACKEND" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_demo_on_each_installed_backend(installed_builtin, run_python):
    version = chanconv.get_adapter(installed_builtin.name).version()
    proc = run_python("-m", "chanconv", "demo", "--backend", installed_builtin.name)
    _assert_demo_passed(proc, installed_builtin.name, installed_builtin.framework, version)


def test_demo_with_an_unknown_backend_lists_the_known_ones(run_python):
    proc = run_python("-m", "chanconv", "demo", "--backend", "nosuch")
    assert proc.returncode != 0
    assert "nosuch" in proc.stderr
    for name in KNOWN:
        assert re.search(rf"\b{name}\b", proc.stderr), name
    assert "Traceback" not in proc.stderr


def test_demo_on_builtins_whose_framework_is_missing_names_the_extra(builtin, run_python):
    if builtin.installed:
        # covered by test_demo_on_each_installed_backend; here only check it is offered
        assert builtin.name in chanconv.adapters()
        return
    proc = run_python("-m", "chanconv", "demo", "--backend", builtin.name)
    assert proc.returncode != 0
    assert f"pip install 'chanconv[{builtin.extra}]'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_demo_in_process_on_a_backend_without_its_framework(ghost, capsys):
    assert cli.main(["demo", "--backend", "ghost"]) != 0
    assert "pip install 'chanconv[ghost]'" in capsys.readouterr().err


def test_demo_in_process_passes(capsys):
    assert cli.main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "chanconv demo on numpy" in out
    assert "all three match" in out


@pytest.mark.parametrize(
    ("attribute", "wrong"),
    [
        ("MULTI_IN", [[56.0, 72.0], [104.0, 121.0]]),
        ("MULTI_IN_OUT", [[[0.0, 0.0], [0.0, 0.0]]] * 3),
        ("ONE_BY_ONE_TOLERANCE", -1.0),
    ],
)
def test_demo_exits_nonzero_when_a_result_does_not_match(monkeypatch, capsys, attribute, wrong):
    monkeypatch.setattr(reference, attribute, wrong)
    assert cli.main(["demo"]) == 1
    out = capsys.readouterr().out
    assert out.count("DOES NOT MATCH the book") == 1
    assert out.count("-> matches the book") == 2
    assert "1 of 3 DO NOT MATCH" in out


def test_demo_needs_a_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code != 0
    assert "demo" in capsys.readouterr().err
