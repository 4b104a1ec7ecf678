"""``python -m chanconv check``: the section's examples and seeded random cases against the
library's float64 loop oracle, on the backends installed here."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from chanconv.backends.numpy import NumpyBackend

import chanconv
from chanconv.tools import check, cli, oracle, reference

OPERATIONS = ["reference", "corr2d", "corr2d_multi_in", "corr2d_multi_in_out",
              "corr2d_multi_in_out_1x1", "conv2d"]  # fmt: skip


def _row(out: str, name: str) -> list[str]:
    for line in out.splitlines():
        if line.split()[:1] == [name]:
            return line.split()
    raise AssertionError(f"no row for {name} in:\n{out}")


class OffByAThousandth(NumpyBackend):
    """A numpy adapter whose matmul is subtly wrong, in both its forms."""

    def matmul(self, x1, x2):
        return self.fw.matmul(x1, x2) + 1e-3

    def matmul_into(self, x1, x2, out):
        self.fw.matmul(x1, x2, out=out)
        out += 1e-3


def test_numpy_passes_and_reports(capsys):
    assert cli.main(["check", "--backend", "numpy", "--cases", "20"]) == 0
    captured = capsys.readouterr()
    row = _row(captured.out, "numpy")
    shared = len(check.reference_cases()) + check.SHARED_PER_OPERATION * 5
    assert row[1] == np.__version__
    assert int(row[2]) == 20 + shared  # cases: random, shared and the book's examples
    assert int(row[3]) > 2 * int(row[2])  # checks: both dtypes, conv2d by each algorithm
    assert 0.0 <= float(row[4]) <= 1.0 and float(row[5]) < 1e-5
    assert row[6] == "pass"
    assert "rtol" in captured.out
    # stderr is not a terminal here: no progress bar, one closing line
    assert "\r" not in captured.err
    assert captured.err.startswith("checked ") and captured.err.count("\n") == 1


def test_a_subtly_wrong_adapter_fails(capsys):
    chanconv.register(OffByAThousandth(), origin="tests:OffByAThousandth")  # replaces numpy
    assert cli.main(["check", "--backend", "numpy", "--cases", "10"]) == 1
    out = capsys.readouterr().out
    row = _row(out, "numpy")
    assert row[6] == "FAIL"
    assert float(row[4]) > 1.0
    assert 5e-4 < float(row[5]) < 1e-2  # the 1e-3, possibly summed over a few matmuls
    assert "failures (" in out
    assert "instead of the book's" in out  # 56.001 is not 56
    assert "x the tolerance" in out


def test_an_adapter_whose_tensors_go_to_another_backend_is_an_error(capsys):
    class Impostor(OffByAThousandth):
        name = "impostor"
        aliases = ()

    chanconv.register(Impostor())
    assert cli.main(["check", "--backend", "impostor", "--cases", "5"]) == 1
    out = capsys.readouterr().out
    assert _row(out, "impostor")[-1] == "ERROR"
    assert "dispatched to the 'numpy' backend" in out


def test_a_third_party_backend_is_checked_too(grid, capsys):
    assert cli.main(["check", "--backend", "grid", "--cases", "10"]) == 0
    assert _row(capsys.readouterr().out, "grid")[-1] == "pass"


def test_without_a_backend_every_installed_one_is_checked_and_missing_ones_listed(
    ghost, capsys, monkeypatch
):
    monkeypatch.setattr(check, "SHARED_PER_OPERATION", 0)
    installed = [n for n, a in chanconv.adapters().items() if check.is_installed(a)]
    assert cli.main(["check", "--cases", "5"]) == 0
    out = capsys.readouterr().out
    for name in installed:
        assert _row(out, name)[-1] == "pass"
    assert _row(out, "ghost")[-2:] == ["not", "installed"]
    assert "ghost: not installed: pip install 'chanconv[ghost]'" in out


def test_a_missing_named_backend_is_a_usage_error(ghost, capsys):
    assert cli.main(["check", "--backend", "ghost"]) == 2
    assert "pip install 'chanconv[ghost]'" in capsys.readouterr().err


def test_json_has_every_operation_and_dtype_and_the_shared_outputs(tmp_path, capsys):
    path = tmp_path / "sub" / "numpy.json"
    assert cli.main(["check", "--backend", "numpy", "--cases", "10", "--json", str(path)]) == 0
    assert f"wrote {path}" in capsys.readouterr().out
    document = json.loads(path.read_text())
    entry = document["backends"]["numpy"]
    assert entry["status"] == "pass" and entry["version"] == np.__version__
    assert entry["origin"] == "chanconv.backends.numpy:NumpyBackend"
    assert list(entry["results"]) == OPERATIONS
    for op, per_dtype in entry["results"].items():
        assert list(per_dtype) == ["float32", "float64"]
        for tally in per_dtype.values():
            assert tally["cases"] >= 2 and tally["passed"] == tally["checks"]
            assert tally["worst_abs_error"] < 1e-5
            assert tally["shared"], op
    conv = entry["results"]["conv2d"]["float64"]
    assert conv["variants"] == ["direct", "im2col", "im2col-tiled"]
    assert conv["checks"] == 3 * conv["cases"]
    shared = entry["results"]["reference"]["float32"]["shared"]["corr2d_multi_in"]
    assert shared["corr2d_multi_in"] == {"shape": [2, 2], "values": [56.0, 72.0, 104.0, 120.0]}
    assert document["meta"]["rtol"] == check.RTOL


def test_shared_inputs_do_not_depend_on_cases_or_seed():
    def shared(cases):
        return [(c.operation, c.label, c.x.tolist(), c.k.tolist()) for c in cases if c.shared]

    assert shared(check.make_cases(3, seed=1)) == shared(check.make_cases(40, seed=9))
    assert len(shared(check.make_cases(0))) == 2 + 5 * check.SHARED_PER_OPERATION


def test_random_cases_are_seeded_and_a_longer_run_extends_a_shorter_one():
    short, long = check.make_cases(10, seed=3), check.make_cases(25, seed=3)
    assert [c.describe() for c in short] == [c.describe() for c in long[: len(short)]]
    other = check.make_cases(10, seed=4)
    assert [c.describe() for c in short] != [c.describe() for c in other]
    ops = [c.operation for c in long if c.label.startswith("random")]
    assert {op: ops.count(op) for op in set(ops)} == {op: 5 for op in OPERATIONS[1:]}


def test_random_conv2d_cases_vary_every_argument():
    cases = [c for c in check.make_cases(300) if c.operation == "conv2d"]
    assert {c.groups for c in cases} >= {1, 2, 3}
    assert {c.x.ndim for c in cases} == {3, 4}
    assert any(c.bias is not None for c in cases) and any(c.bias is None for c in cases)
    assert {"same", "valid"} <= {c.padding for c in cases if isinstance(c.padding, str)}
    assert any(c.stride not in (1, (1, 1)) for c in cases)
    assert any(c.dilation not in (1, (1, 1)) for c in cases)
    for c in cases:  # exactly representable in float32: one oracle serves both dtypes
        assert np.array_equal(c.x.astype(np.float32).astype(np.float64), c.x)


def test_the_library_oracle_gives_the_books_numbers():
    value, scale = oracle.corr2d_multi_in(reference.X, reference.K)
    assert value == reference.MULTI_IN
    assert scale == reference.MULTI_IN  # every term is >= 0
    assert oracle.corr2d_multi_in_out(reference.X, reference.K3)[0] == reference.MULTI_IN_OUT


def test_the_library_oracle_by_hand():
    x = [[[1.0, 2.0], [3.0, 4.0]]]  # (1, 2, 2)
    k = [[[[1.0, -1.0]]]]  # (1, 1, 1, 2)
    # padding 1: a zero ring, 4x4; the 1x2 kernel gives 4x3; stride 2 keeps rows/cols 0, 2
    value, scale = oracle.conv2d(x, k, [10.0], stride=2, padding=1)
    assert value == [[[10.0, 10.0], [10.0 - 3.0, 10.0 + 4.0]]]
    assert scale == [[[10.0, 10.0], [13.0, 14.0]]]
    # "same" with an even kernel: the odd pixel of padding goes after (right)
    assert oracle.padding_amounts(2, 2, 1, 2, 1, "same", 1) == (0, 0, 0, 1)
    assert oracle.conv2d(x, k, padding="same")[0] == [[[-1.0, 2.0], [-1.0, 4.0]]]
    # groups: output channel o sees only its group's input channels
    x2 = [[[1.0]], [[2.0]]]
    k2 = [[[[3.0]]], [[[5.0]]]]
    assert oracle.conv2d(x2, k2, groups=2)[0] == [[[3.0]], [[10.0]]]
    # dilation 2 on a 1x2 kernel reaches two columns apart
    x3 = [[[1.0, 2.0, 4.0]]]
    assert oracle.conv2d(x3, [[[[1.0, 1.0]]]], dilation=2)[0] == [[[5.0]]]


def test_progress_bar_redraws_in_place_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    bar = check.Progress(4, stream)
    for _ in range(4):
        bar.last_draw = -math.inf  # draw every step
        bar.advance("numpy conv2d float32")
    bar.close("checked 4 results")
    text = stream.getvalue()
    assert text.count("\r[") == 4 and "4/4 numpy conv2d float32" in text
    assert "[" + "#" * bar.width + "]" in text
    assert text.rstrip().endswith(" s") and "checked 4 results in" in text
    assert "\n" not in text[:-1]  # one line, overwritten


def test_progress_is_one_line_off_a_terminal():
    stream = io.StringIO()
    bar = check.Progress(3, stream)
    for _ in range(3):
        bar.advance("x")
    bar.close("checked 3 results")
    assert stream.getvalue().startswith("checked 3 results in ")
    assert stream.getvalue().count("\n") == 1 and "\r" not in stream.getvalue()


@pytest.mark.parametrize("cases", ["-1"])
def test_negative_cases_are_refused(cases, capsys):
    assert cli.main(["check", "--backend", "numpy", "--cases", cases]) == 2
    assert "--cases" in capsys.readouterr().err
