"""examples/channels.ipynb, executed by nbclient on a real Jupyter kernel (``python3``, from
this virtualenv's ipykernel) with ``CHANCONV_BACKEND`` set to the backend under test.

Every code cell asserts its own results, so a wrong number fails the execution; the test
then checks what the cells printed, and that the kernel ran this virtualenv's Python."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebook test needs chanconv[test]")
nbclient = pytest.importorskip("nbclient", reason="the notebook test needs chanconv[test]")

NOTEBOOK = Path(__file__).parents[2] / "examples" / "channels.ipynb"
MULTI_IN = re.compile(r"\[\[\s*56\.\s+72\.\]\s*\[\s*104\.\s+120\.\]\]")


def stdout(cell) -> str:
    return "".join(o["text"] for o in cell.outputs if o.get("name") == "stdout")


@pytest.fixture(scope="module")
def executed(backend_name):
    """The notebook after running it top to bottom, its cells by id."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # The kernel is a child process and inherits this environment.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHANCONV_BACKEND", backend_name)
        mp.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
        client = nbclient.NotebookClient(
            nb, kernel_name="python3", timeout=120, startup_timeout=120,
            resources={"metadata": {"path": str(NOTEBOOK.parent)}},
        )  # fmt: skip
        client.execute()  # raises CellExecutionError if any cell's assert fails
    return {cell.id: cell for cell in nb.cells}


def test_the_kernel_runs_this_virtualenvs_python(executed):
    assert stdout(executed["setup"]).splitlines()[0] == sys.executable


def test_the_notebook_computes_on_the_backend_under_test(executed, backend_name):
    assert f"backend: {backend_name} (" in stdout(executed["setup"])
    assert stdout(executed["compose"]).strip().endswith(f"pass on {backend_name}")


def test_the_notebook_prints_the_books_numbers(executed):
    assert MULTI_IN.search(stdout(executed["multi-in"]))
    three = stdout(executed["multi-out"])
    assert "(3, 2, 2, 2)" in three and MULTI_IN.search(three)
    assert "53,678,702,592" in stdout(executed["cost"])


def test_every_code_cell_ran_without_error(executed):
    for cell in executed.values():
        if cell.cell_type == "code":
            assert cell.execution_count is not None, cell.id
            assert all(o.output_type != "error" for o in cell.outputs), cell.id


def test_the_committed_notebook_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.id
