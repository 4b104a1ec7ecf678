"""``python -m chanconv matrix-report``: merging check reports (synthetic ones here) into the
backend x operation x dtype matrix, with the largest difference between backends."""

from __future__ import annotations

import copy
import json

import pytest

from chanconv.tools import cli, matrix


def _tally(checks, passed, ratio, abs_error, shared=None):
    return {"cases": checks, "checks": checks, "passed": passed, "failed": checks - passed,
            "worst_abs_error": abs_error, "worst_ratio": ratio, "variants": [],
            "shared": shared or {}}  # fmt: skip


def _out(*values):
    return {"shape": [len(values)], "values": list(values)}


def _backend(name, status, results, failed=0, version="1.0"):
    return {"name": name, "status": status, "version": version, "cases": 10, "checks": 20,
            "failed": failed, "worst_ratio": 0.1, "worst_abs_error": 1e-7, "error": None,
            "results": results}  # fmt: skip


def _reports():
    """numpy and torch pass, tensorflow fails conv2d float32, mxnet is not installed."""
    numpy = _backend("numpy", "pass", {
        "conv2d": {
            # within one backend the algorithms differ by 5: that is no cross-backend difference
            "float32": _tally(6, 6, 0.2, 1e-7, {"shared0": {"direct": _out(1.0, 2.0, 3.0),
                                                            "im2col": _out(1.0, 2.0, 8.0)},
                                                "shared1": {"direct": _out(0.0)}}),
            "float64": _tally(6, 6, 0.01, 1e-16, {"shared0": {"direct": _out(1.0, 2.0)}}),
        },
        "corr2d": {"float32": _tally(2, 2, 0.1, 5e-8, {"shared0": {"corr2d": _out(4.0)}}),
                   "float64": _tally(2, 2, 0.0, 0.0, {"shared0": {"corr2d": _out(4.0)}})},
    })  # fmt: skip
    torch = _backend("torch", "pass", {
        "conv2d": {
            "float32": _tally(8, 8, 0.3, 2e-7, {"shared0": {"native": _out(1.0, 2.5, 3.0)},
                                                "shared1": {"native": _out(0.25)}}),
            "float64": _tally(8, 8, 0.02, 2e-16, {"shared0": {"native": _out(1.0, 2.0)}}),
        },
        "corr2d": {"float32": _tally(2, 2, 0.1, 5e-8, {"shared0": {"corr2d": _out(4.0)}}),
                   "float64": _tally(2, 2, 0.0, 0.0, {"shared0": {"corr2d": _out(4.0)}})},
    })  # fmt: skip
    tensorflow = _backend("tensorflow", "fail", {
        "conv2d": {
            "float32": _tally(8, 5, 7.5, 1e-3, {"shared1": {"native": _out(-1.0)}}),
            "float64": _tally(8, 8, 0.03, 3e-16, {"shared0": {"native": _out(1.0, 2.0 + 2**-40)},
                                                  # a different shape: not comparable
                                                  "shared1": {"native": _out(9.0, 9.0)}}),
        },
        "corr2d": {"float32": _tally(2, 2, 0.1, 5e-8, {"shared0": {"corr2d": _out(4.0)}}),
                   "float64": _tally(2, 2, 0.0, 0.0, {"shared0": {"corr2d": _out(4.0)}})},
    }, failed=3)  # fmt: skip
    mxnet = {"name": "mxnet", "status": "missing", "version": None,
             "error": "not installed: pip install 'chanconv[mxnet]'"}  # fmt: skip
    return {"numpy": numpy, "torch": torch, "tensorflow": tensorflow, "mxnet": mxnet}


def test_largest_difference_compares_every_algorithm_across_backends_only():
    reports = _reports()
    d = matrix.largest_difference(reports, "conv2d", "float32")
    # shared0: numpy im2col 8.0 vs torch native 3.0 -> 5.0; numpy direct vs im2col (also 5.0)
    # is within one backend and must not be what is reported
    assert d.value == 5.0 and d.backends == ("numpy", "torch") and d.case == "shared0"
    assert d.pairs == 3  # numpy-torch, numpy-tensorflow, torch-tensorflow share inputs
    # shared1 alone: numpy 0 vs torch 0.25 vs tensorflow -1.0 -> 1.25 (torch vs tensorflow)
    for name in ("numpy", "torch"):
        del reports[name]["results"]["conv2d"]["float32"]["shared"]["shared0"]
    d = matrix.largest_difference(reports, "conv2d", "float32")
    assert (d.value, d.backends, d.case) == (1.25, ("torch", "tensorflow"), "shared1")


def test_largest_difference_skips_outputs_of_another_shape():
    d = matrix.largest_difference(_reports(), "conv2d", "float64")
    assert d.value == 2**-40 and set(d.backends) == {"numpy", "tensorflow"}


def test_largest_difference_needs_two_backends():
    reports = {"numpy": _reports()["numpy"]}
    d = matrix.largest_difference(reports, "conv2d", "float32")
    assert d.value is None and d.backends is None and d.pairs == 0


def test_merge_builds_the_pass_fail_matrix():
    m = matrix.merge(_reports(), expected=["numpy", "torch", "tensorflow", "mxnet", "cupy"])
    assert [b.name for b in m.backends] == ["numpy", "torch", "tensorflow", "mxnet", "cupy"]
    assert [b.status for b in m.backends] == ["pass", "pass", "fail", "missing", "no report"]
    assert m.operations == ["conv2d", "corr2d"] and m.dtypes == ["float32", "float64"]
    tf32 = m.cells["tensorflow", "conv2d", "float32"]
    assert (tf32.status, tf32.checks, tf32.passed, tf32.worst_ratio) == ("fail", 8, 5, 7.5)
    assert m.cells["tensorflow", "conv2d", "float64"].status == "pass"
    assert m.cells["mxnet", "corr2d", "float32"].status == "missing"
    assert m.cells["cupy", "corr2d", "float32"].status == "no report"
    assert m.differences["corr2d", "float32"].value == 0.0
    assert m.largest_difference.value == 5.0
    assert not m.passed


def test_missing_backends_fail_only_when_expected():
    reports = _reports()
    reports["tensorflow"]["status"] = "pass"
    assert matrix.merge(reports).passed  # mxnet not installed anywhere: not asked for
    assert not matrix.merge(reports, expected=["mxnet"]).passed


def test_markdown_and_html(tmp_path):
    m = matrix.merge(_reports(), expected=["numpy", "torch", "tensorflow", "mxnet"])
    md = matrix.to_markdown(m)
    assert "**Result: FAILED: tensorflow (FAIL (3)), mxnet (missing).**" in md
    summary = [line for line in md.splitlines() if line.startswith("| tensorflow |")]
    assert summary[0].split(" | ")[-1] == "FAIL (3) |"
    row = next(line for line in md.splitlines() if line.startswith("| conv2d | float32 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2].startswith("pass · 0.2 · 1e-07")
    assert cells[4] == "FAIL 3/8 · 7.5 · 0.001"
    assert cells[5] == "missing"
    assert cells[6] == "5 (numpy vs torch, shared0)"
    corr = next(line for line in md.splitlines() if line.startswith("| corr2d | float64 |"))
    assert corr.rstrip(" |").endswith("0 (identical)")
    page = matrix.to_html(m)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert '<td class="fail">FAIL 3/8 · 7.5 · 0.001</td>' in page
    assert '<td class="pass">pass' in page
    assert "mxnet: not installed: pip install &#x27;chanconv[mxnet]&#x27;" in page


def test_load_reports_prefers_a_checked_entry_to_a_missing_one(tmp_path):
    reports = _reports()
    checked = {"backends": {"numpy": reports["numpy"], "mxnet": reports["mxnet"]}}
    elsewhere = copy.deepcopy(reports["numpy"])
    elsewhere["status"] = "missing"
    (tmp_path / "a.json").write_text(json.dumps(checked))
    (tmp_path / "b.json").write_text(json.dumps({"backends": {"numpy": elsewhere}}))
    loaded = matrix.load_reports(tmp_path)
    assert loaded["numpy"]["status"] == "pass" and loaded["numpy"]["source"] == "a.json"
    assert loaded["mxnet"]["status"] == "missing"


def test_matrix_report_command_writes_both_files(tmp_path, capsys):
    folder = tmp_path / "matrix"
    folder.mkdir()
    reports = _reports()
    for name in ("numpy", "torch"):
        (folder / f"{name}.json").write_text(json.dumps({"backends": {name: reports[name]}}))
    assert cli.main(["matrix-report", str(folder), "--expect", "numpy,torch"]) == 0
    out = capsys.readouterr().out
    assert "all 2 checked backends pass" in out
    assert "largest difference between backends: 5 (conv2d float32, numpy vs torch)" in out
    assert (tmp_path / "matrix.md").read_text().startswith("# chanconv conformance matrix")
    assert "<table>" in (tmp_path / "matrix.html").read_text()
    assert cli.main(["matrix-report", str(folder), "--expect", "numpy,torch,mxnet"]) == 1
    assert "mxnet (no report)" in capsys.readouterr().out


def test_matrix_report_of_no_folder_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["matrix-report", str(tmp_path / "nowhere")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_real_check_reports_merge(tmp_path, capsys):
    # a real report, and a copy posing as a second backend whose one shared output is off
    assert cli.main(["check", "--backend", "numpy", "--cases", "5",
                     "--json", str(tmp_path / "numpy.json")]) == 0  # fmt: skip
    document = json.loads((tmp_path / "numpy.json").read_text())
    twin = copy.deepcopy(document["backends"]["numpy"])
    twin["name"] = "twin"
    shared = twin["results"]["conv2d"]["float64"]["shared"]["shared1"]["im2col"]
    shared["values"][0] += 0.125
    (tmp_path / "twin.json").write_text(json.dumps({"backends": {"twin": twin}}))
    capsys.readouterr()
    m = matrix.merge(matrix.load_reports(tmp_path))
    assert m.passed
    assert m.differences["conv2d", "float64"].value == pytest.approx(0.125, abs=1e-12)
    assert m.differences["conv2d", "float64"].case == "shared1"
    assert m.differences["reference", "float32"].value == 0.0
    assert m.largest_difference.value == pytest.approx(0.125, abs=1e-12)
