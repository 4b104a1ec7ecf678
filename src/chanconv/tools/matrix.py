"""Merging ``python -m chanconv check --json`` reports, one per environment, into one matrix:
backend x operation x dtype, pass or fail, the worst error against the oracle, and the
largest difference between any two backends' outputs for the same shared inputs.

``python -m chanconv matrix-report build/matrix`` reads ``build/matrix/*.json`` and writes
``build/matrix.md`` and ``build/matrix.html``; ``nox -s matrix`` runs the checks and then
this. Plain Python and the standard library only: it needs no framework.
"""

from __future__ import annotations

import html
import json
import math
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any, TextIO

#: Status of a backend that was expected but has no report at all.
NO_REPORT = "no report"


@dataclass(frozen=True)
class Cell:
    """One backend, one operation, one dtype. ``status``: "pass", "fail", or the backend's
    own status when it was not checked ("missing", "error", "no report"); "-" when the
    backend's report has no such operation or dtype."""

    status: str
    checks: int = 0
    passed: int = 0
    worst_ratio: float | None = None
    worst_abs_error: float | None = None


@dataclass(frozen=True)
class Difference:
    """The largest ``|a - b|`` between two backends' outputs for one shared input, over every
    pair of backends, shared input and algorithm; None when fewer than two backends have
    outputs to compare."""

    operation: str
    dtype: str
    value: float | None
    backends: tuple[str, str] | None = None
    case: str | None = None
    #: pairs of backends that had at least one shared input in common
    pairs: int = 0


@dataclass(frozen=True)
class BackendSummary:
    name: str
    status: str
    version: str | None = None
    cases: int = 0
    checks: int = 0
    failed: int = 0
    worst_ratio: float | None = None
    worst_abs_error: float | None = None
    error: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class Matrix:
    backends: list[BackendSummary]
    operations: list[str]
    dtypes: list[str]
    cells: dict[tuple[str, str, str], Cell]
    differences: dict[tuple[str, str], Difference]
    expected: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """Every backend that was checked passed, and every expected backend was checked."""
        return all(
            b.status == "pass" or (b.status == "missing" and b.name not in self.expected)
            for b in self.backends
        )

    @property
    def largest_difference(self) -> Difference | None:
        found = [d for d in self.differences.values() if d.value is not None]
        return max(found, key=lambda d: d.value or 0.0, default=None)


def load_reports(folder: Path | str) -> dict[str, dict[str, Any]]:
    """Every backend's entry from ``folder/*.json``, by name, with ``"source"`` set to its
    file name. A backend checked in one file and "missing" (not installed) in another keeps
    the checked entry; between two checked entries, the later file (by name) wins."""
    found: dict[str, dict[str, Any]] = {}
    paths = sorted(Path(folder).glob("*.json"))
    for path in paths:
        document = json.loads(path.read_text())
        for name, entry in document.get("backends", {}).items():
            if entry.get("status") == "missing" and name in found:
                continue
            found[name] = {**entry, "source": path.name}
    return found


def _ordered(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _max_abs_difference(a: Mapping[str, Any], b: Mapping[str, Any]) -> float | None:
    if list(a["shape"]) != list(b["shape"]):
        return None
    values = zip(a["values"], b["values"], strict=True)
    return max((abs(float(x) - float(y)) for x, y in values), default=0.0)


def largest_difference(
    reports: Mapping[str, Mapping[str, Any]], operation: str, dtype: str
) -> Difference:
    """The largest difference between two backends on the same shared input, comparing
    every algorithm's output of one backend with every algorithm's output of the other."""
    shared: dict[str, Mapping[str, Any]] = {}
    for name, entry in reports.items():
        outputs = entry.get("results", {}).get(operation, {}).get(dtype, {}).get("shared")
        if outputs:
            shared[name] = outputs
    best = Difference(operation, dtype, None)
    pairs = 0
    for first, second in combinations(shared, 2):
        common = sorted(set(shared[first]) & set(shared[second]))
        pairs += bool(common)
        for case in common:
            for a in shared[first][case].values():
                for b in shared[second][case].values():
                    d = _max_abs_difference(a, b)
                    if d is not None and (best.value is None or d > best.value):
                        best = Difference(operation, dtype, d, (first, second), case)
    return Difference(operation, dtype, best.value, best.backends, best.case, pairs)


def _summary(name: str, entry: Mapping[str, Any] | None) -> BackendSummary:
    if entry is None:
        return BackendSummary(name, NO_REPORT)
    return BackendSummary(
        name, str(entry.get("status", "error")), entry.get("version"), int(entry.get("cases", 0)),
        int(entry.get("checks", 0)), int(entry.get("failed", 0)), entry.get("worst_ratio"),
        entry.get("worst_abs_error"), entry.get("error"), entry.get("source"),
    )  # fmt: skip


def merge(reports: Mapping[str, Mapping[str, Any]], expected: Sequence[str] = ()) -> Matrix:
    """The matrix of the backends in ``reports`` (as ``load_reports`` returns them),
    plus a "no report" row for each ``expected`` backend that has none."""
    names = _ordered([*expected, *reports])
    reports = {name: reports[name] for name in names if name in reports}  # pairs in this order
    backends = [_summary(name, reports.get(name)) for name in names]
    operations = _ordered(op for e in reports.values() for op in e.get("results", {}))
    dtypes = _ordered(dt for e in reports.values() for per in e.get("results", {}).values()
                      for dt in per)  # fmt: skip
    cells: dict[tuple[str, str, str], Cell] = {}
    for b in backends:
        results = reports.get(b.name, {}).get("results", {})
        for op in operations:
            for dt in dtypes:
                t = results.get(op, {}).get(dt)
                if b.status in ("missing", "error", NO_REPORT):
                    cells[b.name, op, dt] = Cell(b.status)
                elif t is None:
                    cells[b.name, op, dt] = Cell("-")
                else:
                    checks, passed = int(t["checks"]), int(t["passed"])
                    cells[b.name, op, dt] = Cell(
                        "pass" if passed == checks else "fail", checks, passed,
                        t.get("worst_ratio"), t.get("worst_abs_error"),
                    )  # fmt: skip
    differences = {(op, dt): largest_difference(reports, op, dt)
                   for op in operations for dt in dtypes}  # fmt: skip
    return Matrix(backends, operations, dtypes, cells, differences, tuple(expected))


def _num(value: float | None, digits: int = 2) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}g}"


def _ratio(value: float | None) -> str:
    return _num(value)


def _cell_text(cell: Cell) -> str:
    if cell.status == "pass":
        return f"pass · {_ratio(cell.worst_ratio)} · {_num(cell.worst_abs_error)}"
    if cell.status == "fail":
        return (f"FAIL {cell.checks - cell.passed}/{cell.checks} · {_ratio(cell.worst_ratio)} · "
                f"{_num(cell.worst_abs_error)}")  # fmt: skip
    return cell.status


def _difference_text(d: Difference) -> str:
    if d.value is None or d.backends is None:
        return "-"
    if d.value == 0.0:
        return "0 (identical)"
    return f"{_num(d.value)} ({d.backends[0]} vs {d.backends[1]}, {d.case})"


def _result_text(b: BackendSummary) -> str:
    return {"pass": "pass", "fail": f"FAIL ({b.failed})"}.get(b.status, b.status)


def _verdict(m: Matrix) -> str:
    checked = [b for b in m.backends if b.status in ("pass", "fail")]
    if m.passed:
        return f"all {len(checked)} checked backends pass"
    bad = [f"{b.name} ({_result_text(b)})" for b in m.backends
           if b.status != "pass" and (b.status != "missing" or b.name in m.expected)]  # fmt: skip
    return "FAILED: " + ", ".join(bad)


def summary_rows(m: Matrix) -> list[list[str]]:
    """The per-backend summary: header, then one row per backend."""
    rows = [["backend", "version", "cases", "checks", "failed", "worst err/tol", "worst abs err",
             "result"]]  # fmt: skip
    for b in m.backends:
        checked = b.status in ("pass", "fail")
        rows.append([
            b.name, b.version or "-", str(b.cases) if checked else "-",
            str(b.checks) if checked else "-", str(b.failed) if checked else "-",
            _ratio(b.worst_ratio) if checked else "-", _num(b.worst_abs_error) if checked else "-",
            _result_text(b),
        ])  # fmt: skip
    return rows


def detail_rows(m: Matrix) -> list[list[str]]:
    """operation x dtype rows, one column per backend, then the cross-backend difference."""
    names = [b.name for b in m.backends]
    rows = [["operation", "dtype", *names, "largest difference between backends"]]
    for op in m.operations:
        for dt in m.dtypes:
            cells = [_cell_text(m.cells[name, op, dt]) for name in names]
            rows.append([op, dt, *cells, _difference_text(m.differences[op, dt])])
    return rows


INTRO = (
    "Each backend is checked in its own environment by `python -m chanconv check --json` "
    "against chanconv's float64 loop oracle. A cell reads: result · worst error as a fraction "
    "of the tolerance (pass: at most 1) · worst absolute error. The last column is the "
    "largest difference between two backends' outputs for the same shared inputs (every "
    "algorithm of one against every algorithm of the other)."
)


def _md_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
              for row in rows[1:]]  # fmt: skip
    return "\n".join(lines)


def to_markdown(m: Matrix) -> str:
    largest = m.largest_difference
    lines = [
        "# chanconv conformance matrix", "", INTRO, "", f"**Result: {_verdict(m)}.**", "",
        "## Backends", "", _md_table(summary_rows(m)), "",
        "## Backend × operation × dtype", "", _md_table(detail_rows(m)), "",
    ]  # fmt: skip
    if largest is not None and largest.backends is not None:
        lines += [f"Largest difference between any two backends: {_num(largest.value)} "
                  f"({largest.operation}, {largest.dtype}, {largest.backends[0]} vs "
                  f"{largest.backends[1]}, {largest.case}).", ""]  # fmt: skip
    notes = [f"- {b.name}: {b.error}" for b in m.backends if b.error]
    if notes:
        lines += ["## Notes", "", *notes, ""]
    return "\n".join(lines)


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; white-space: nowrap; }
th { background: #f3f3f3; }
td.pass { background: #e6f4ea; } td.fail { background: #fce8e6; font-weight: bold; }
td.other { background: #f5f5f5; color: #777; }
p.verdict.pass { color: #137333; } p.verdict.fail { color: #c5221f; }
"""


def _html_class(text: str) -> str:
    if text.startswith("pass"):
        return "pass"
    if text.startswith("FAIL") or text in ("error", NO_REPORT):
        return "fail"
    if text in ("missing", "-"):
        return "other"
    return ""


def _html_table(rows: list[list[str]], status_columns: range) -> str:
    out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in rows[0]) + "</tr>"]
    for row in rows[1:]:
        cells = []
        for i, text in enumerate(row):
            cls = _html_class(text) if i in status_columns else ""
            attr = f' class="{cls}"' if cls else ""
            cells.append(f"<td{attr}>{html.escape(text)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def to_html(m: Matrix) -> str:
    summary = summary_rows(m)
    detail = detail_rows(m)
    verdict = "pass" if m.passed else "fail"
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        "<title>chanconv conformance matrix</title>", f"<style>{_CSS}</style>", "</head>",
        "<body>", "<h1>chanconv conformance matrix</h1>",
        "<p>" + re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(INTRO)) + "</p>",
        f'<p class="verdict {verdict}"><strong>Result: {html.escape(_verdict(m))}.</strong></p>',
        "<h2>Backends</h2>", _html_table(summary, range(len(summary[0]) - 1, len(summary[0]))),
        "<h2>Backend &times; operation &times; dtype</h2>",
        _html_table(detail, range(2, len(detail[0]) - 1)),
        *[f"<p>{html.escape(b.name)}: {html.escape(b.error)}</p>" for b in m.backends
          if b.error],
        "</body>", "</html>", "",
    ])  # fmt: skip


def write_report(
    folder: Path | str, markdown: Path | str | None = None, html_path: Path | str | None = None,
    expected: Sequence[str] = (),
) -> tuple[Matrix, Path, Path]:  # fmt: skip
    """Merge ``folder/*.json``; write the matrix as Markdown and HTML (by default next to the
    folder: ``build/matrix`` -> ``build/matrix.md``, ``build/matrix.html``)."""
    folder = Path(folder)
    m = merge(load_reports(folder), expected)
    md = Path(markdown) if markdown else folder.with_suffix(".md")
    page = Path(html_path) if html_path else folder.with_suffix(".html")
    md.parent.mkdir(parents=True, exist_ok=True)
    page.parent.mkdir(parents=True, exist_ok=True)
    md.write_text(to_markdown(m))
    page.write_text(to_html(m))
    return m, md, page


def run(
    folder: str, markdown: str | None = None, html_path: str | None = None,
    expected: Sequence[str] = (), out: TextIO | None = None,
) -> int:  # fmt: skip
    """The ``matrix-report`` command: 0 when every backend passed, 1 otherwise."""
    if not Path(folder).is_dir():
        raise ValueError(f"{folder} is not a folder of check reports (python -m chanconv "
                         "check --json FOLDER/NAME.json)")  # fmt: skip
    m, md, page = write_report(folder, markdown, html_path, expected)
    stream = out or sys.stdout
    rows = summary_rows(m)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(),
              file=stream)  # fmt: skip
    largest = m.largest_difference
    if largest is not None and largest.backends is not None:
        print(f"\nlargest difference between backends: {_num(largest.value)} "
              f"({largest.operation} {largest.dtype}, {largest.backends[0]} vs "
              f"{largest.backends[1]})", file=stream)  # fmt: skip
    print(f"\n{_verdict(m)}\nwrote {md}\nwrote {page}", file=stream)
    return 0 if m.passed else 1
