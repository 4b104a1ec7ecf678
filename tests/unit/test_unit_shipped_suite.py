"""The conformance suite as a plugin author runs it: ``pytest --pyargs chanconv.testing
--backend NAME`` from an empty folder, with no checkout on the path; its JSON report, its
xfail file, and the usage errors for a backend it cannot test."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import chanconv
from chanconv import registry

ORACLE_ITEM = "test_section_functions_match_the_oracle_on_random_shapes"
BOOK_ITEM = "test_two_input_channels_give_the_books_numbers_in_every_kind"


def run_suite(folder, *args):
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pyargs",
         "chanconv.testing", *args],
        cwd=folder, capture_output=True, text=True,
    )  # fmt: skip


def test_the_suite_runs_from_an_empty_folder_and_reports_json(tmp_path, backend_name):
    report = tmp_path / "out" / "report.json"
    proc = run_suite(tmp_path, f"--backend={backend_name}", f"--report-json={report}",
                     "-k", f"{ORACLE_ITEM} or {BOOK_ITEM}")  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"chanconv backend: {backend_name}" in proc.stdout
    data = json.loads(report.read_text())
    assert data["backend"] == backend_name and data["summary"] == {"passed": 2}
    items = {item["id"].rsplit("::", 1)[-1]: item for item in data["items"]}
    assert set(items) == {ORACLE_ITEM, BOOK_ITEM}
    for item in items.values():
        assert item["backend"] == backend_name and item["outcome"] == "passed"
    # the oracle item measures its error (float32 rounding: small, not zero); the book's
    # exact numbers measure none
    assert 0 < items[ORACLE_ITEM]["worst_error"] < 1e-3
    assert items[BOOK_ITEM]["worst_error"] is None


def test_an_xfail_listed_item_that_passes_fails_the_run(tmp_path, backend_name):
    listed = tmp_path / "xfail.txt"
    listed.write_text(f"# known failures of this backend\n{BOOK_ITEM}  # listed, but passes\n")
    report = tmp_path / "report.json"
    proc = run_suite(tmp_path, f"--backend={backend_name}", f"--xfail-file={listed}",
                     f"--report-json={report}", "-k", f"{BOOK_ITEM} or {ORACLE_ITEM}")  # fmt: skip
    assert proc.returncode == 1, proc.stdout
    assert "XPASS(strict)" in proc.stdout and "listed in" in proc.stdout
    outcomes = {i["id"].rsplit("::", 1)[-1]: i["outcome"]
                for i in json.loads(report.read_text())["items"]}  # fmt: skip
    assert outcomes == {BOOK_ITEM: "failed", ORACLE_ITEM: "passed"}


def test_an_unknown_backend_is_a_usage_error_naming_the_known_ones(tmp_path):
    proc = run_suite(tmp_path, "--backend=theano")
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR
    assert "unknown backend 'theano'" in proc.stderr
    for name in chanconv.adapters():
        assert name in proc.stderr
    assert "collected" not in proc.stdout  # an error, not a run of zero tests


def test_a_backend_whose_framework_is_missing_is_a_usage_error_naming_the_install(tmp_path):
    import importlib.util

    missing = [a for a in chanconv.adapters().values()
               if importlib.util.find_spec(a.framework) is None]  # fmt: skip
    if not missing:  # every framework is installed here: nothing to refuse
        return
    proc = run_suite(tmp_path, f"--backend={missing[0].name}")
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR
    assert registry.install_command(missing[0].name) in proc.stderr
