"""The pytest plugin of chanconv's conformance suite (entry point ``pytest11: chanconv``):
its command-line options, the JSON report and the xfail file. It is inert in other test
suites: every hook acts only on the options below. The suite's fixtures live in
``chanconv.testing.fixtures``.

Options:

* ``--backend NAME``: the backend under test, built-in or registered by a plugin
  (default: ``$CHANCONV_BACKEND``, else numpy). An unknown or uninstalled backend is a usage
  error naming the known ones, never a run of zero tests.
* ``--report-json FILE``: one JSON record per item: id, backend, outcome and the worst
  relative error against the float64 oracle that the item measured (``null`` where it
  measures none).
* ``--xfail-file FILE``: item ids (one per line, ``#`` comments) the backend knowingly
  fails. They run and are reported as xfail (strict: one that passes fails the run), as in
  array-api-tests.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from chanconv import registry

_RESULTS = pytest.StashKey[dict[str, dict[str, Any]]]()
#: The attribute of a test item where ``record_error`` keeps the worst error it saw.
WORST_ERROR = "chanconv_worst_error"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chanconv", "chanconv conformance")
    group.addoption(
        "--backend",
        default=None,
        help="chanconv backend to test, built-in or third-party (default: $CHANCONV_BACKEND, "
        "else numpy)",
    )
    group.addoption(
        "--report-json", default=None, metavar="FILE",
        help="write a JSON report: per item, backend, outcome, worst error",
    )  # fmt: skip
    group.addoption(
        "--xfail-file", default=None, metavar="FILE",
        help="ids of items this backend knowingly fails, one per line",
    )  # fmt: skip


def backend_under_test(config: pytest.Config) -> str:
    """The canonical name of the backend under test; a usage error naming the known
    backends if it is unknown or its framework is not installed."""
    chosen = config.getoption("--backend") or os.environ.get(registry.ENV_VAR)
    try:
        name = registry.canonical_name(chosen or registry.DEFAULT_BACKEND)
        registry.get_adapter(name)
    except (ValueError, ImportError) as err:
        raise pytest.UsageError(f"--backend: {err}") from None
    return name


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_RESULTS] = {}
    if config.getoption("--backend"):
        backend_under_test(config)  # fail fast, before collecting anything


def pytest_report_header(config: pytest.Config) -> str | None:
    if not config.getoption("--backend"):
        return None
    name = backend_under_test(config)
    adapter = registry.get_adapter(name)
    where = registry.origin(name)
    return f"chanconv backend: {name} ({adapter.framework} {adapter.version()}; {where})"


def _xfail_ids(path: str) -> set[str]:
    lines = Path(path).read_text().splitlines()
    return {line.split("#", 1)[0].strip() for line in lines} - {""}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    path = config.getoption("--xfail-file")
    if not path:
        return
    known = _xfail_ids(str(path))
    reason = f"listed in {path}"
    for item in items:
        if item.nodeid in known or item.name in known:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if not item.config.getoption("--report-json"):
        return report
    results = item.config.stash[_RESULTS]
    record = results.setdefault(item.nodeid, {"id": item.nodeid, "outcome": "passed"})
    if report.when == "call" or report.outcome != "passed":
        outcome = "xfailed" if hasattr(report, "wasxfail") and report.skipped else report.outcome
        if hasattr(report, "wasxfail") and report.passed:
            outcome = "xpassed"
        if record["outcome"] == "passed" or report.when == "call":
            record["outcome"] = outcome
    record["worst_error"] = getattr(item, WORST_ERROR, None)
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = session.config.getoption("--report-json")
    if not path:
        return
    backend = backend_under_test(session.config)
    items = [{"backend": backend, **r} for r in session.config.stash[_RESULTS].values()]
    counts: dict[str, int] = {}
    for r in items:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    Path(str(path)).parent.mkdir(parents=True, exist_ok=True)
    Path(str(path)).write_text(
        json.dumps({"backend": backend, "summary": counts, "items": items}, indent=1) + "\n"
    )
