"""The test matrix: one virtualenv per backend, each running the same suite.

``nox`` runs the tests on all four backends and lint; ``nox -s demo`` runs the demo.
Exact versions per backend live in ``constraints/<backend>.txt``.
"""

from __future__ import annotations

from pathlib import Path

import nox

BACKENDS = ["numpy", "torch", "tensorflow", "mxnet"]
CONSTRAINTS = Path(__file__).parent / "constraints"

nox.options.sessions = ["tests", "lint"]
nox.options.error_on_missing_interpreters = True


def install(session: nox.Session, backend: str, *extras: str) -> None:
    spec = ",".join((backend, *extras))
    session.install("-c", str(CONSTRAINTS / f"{backend}.txt"), f".[{spec}]")


@nox.session
@nox.parametrize("backend", BACKENDS, ids=BACKENDS)
def tests(session: nox.Session, backend: str) -> None:
    """The whole suite (conformance and unit tests) against one backend."""
    install(session, backend, "test")
    session.run(
        "pytest", f"--backend={backend}", *session.posargs,
        env={"CHANCONV_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )  # fmt: skip


@nox.session
@nox.parametrize("backend", BACKENDS, ids=BACKENDS)
def bench(session: nox.Session, backend: str) -> None:
    """Benchmarks (docs/performance.md): ``nox -s bench -- --quick`` for a smoke run."""
    # NumPy has no convolution of its own: its figures are ratios to torch's, in one run.
    install(session, backend, "plot", *(["torch"] if backend == "numpy" else []))
    session.run("python", "-m", "chanconv", "bench", f"--backend={backend}", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over everything; mypy (strict) over the core and the adapters."""
    session.install("-c", str(CONSTRAINTS / "numpy.txt"), ".[lint,test]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "src/chanconv", "backends")


@nox.session
@nox.parametrize("backend", BACKENDS, ids=BACKENDS)
def demo(session: nox.Session, backend: str) -> None:
    """The section's examples on one backend, checked against the book's outputs."""
    install(session, backend)
    session.run("python", "-m", "chanconv", "demo", f"--backend={backend}")
