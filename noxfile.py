"""The test matrix: one virtualenv per backend, each running the same suite.

``nox`` runs the tests on every backend (each session also runs ``chanconv check``
against the oracle on this machine's CPU), lint, and the merged matrix report;
``nox -s demo`` runs the demo. ``nox -s fuzz`` runs the differential fuzz campaign at a
large budget (not a default session).
``nox -s docs`` builds the documentation site (not part of the default sessions).
Exact versions per backend live in ``constraints/<backend>.txt``.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

#: Backends from plugin packages in plugins/, installed next to chanconv as a user would
#: (``pip install ./plugins/chanconv-jax``), each with the plugin's own extras.
PLUGINS = {"jax": ("plugins/chanconv-jax", "flax")}
# array-api-strict: any Array API library through the generic adapter, proven on the
# standard's strict reference library.
BACKENDS = ["numpy", "torch", "tensorflow", "mxnet", "array-api-strict", "dask", *PLUGINS]
#: The check of every dtype (``matrix``) includes float64, which JAX computes only where
#: the user enabled its 64-bit mode (the jax plugin's documented dtype rule).
FLOAT64_ENV = {"jax": {"JAX_ENABLE_X64": "1"}}
CONSTRAINTS = Path(__file__).parent / "constraints"

# The matrix is in the default run: each tests session also runs chanconv check on the CI
# machine's own CPU (in the virtualenv it already has, so no extra ones are built), and
# matrix_report fails the build when a framework kernel is wrong there (docs/known-bugs.md).
nox.options.sessions = ["tests", "lint", "matrix_report"]
nox.options.error_on_missing_interpreters = True


def install(session: nox.Session, backend: str, *extras: str) -> None:
    constraints = ("-c", str(CONSTRAINTS / f"{backend}.txt"))
    if backend in PLUGINS:
        path, plugin_extras = PLUGINS[backend]
        own = ",".join((plugin_extras, *(e for e in extras if e == "test")))
        core = f".[{','.join(extras)}]" if extras else "."
        session.install(*constraints, core, f"./{path}[{own}]")
        return
    spec = ",".join((backend, *extras))
    session.install(*constraints, f".[{spec}]")


def xfail_file(backend: str) -> list[str]:
    """A plugin's list of suite items it knowingly fails (``plugins/<name>/xfail.txt``)."""
    path = Path(PLUGINS[backend][0]) / "xfail.txt" if backend in PLUGINS else None
    return [f"--xfail-file={path}"] if path is not None and path.exists() else []


@nox.session
@nox.parametrize("backend", BACKENDS, ids=BACKENDS)
def tests(session: nox.Session, backend: str) -> None:
    """The shipped conformance suite, then the repository's unit and example tests, against
    one backend. The suite runs from the installed package, as a plugin author runs it."""
    install(session, backend, "test")
    env = {"CHANCONV_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2", "JAX_PLATFORMS": "cpu"}
    report = Path("build") / "conformance" / f"{backend}.json"
    session.run(
        "pytest", "--pyargs", "chanconv.testing", f"--backend={backend}",
        f"--report-json={report}", *xfail_file(backend), *session.posargs, env=env,
    )  # fmt: skip
    session.run("pytest", "tests", f"--backend={backend}", *session.posargs, env=env)
    if backend in PLUGINS:  # the plugin's own tests: jit, grad, vmap, Flax, the book's tab
        session.run("pytest", f"{PLUGINS[backend][0]}/tests", *session.posargs, env=env)
        # Type-checked here, where its framework is installed (lint's virtualenv has none).
        session.install("mypy>=1.10")
        session.run("mypy", "--strict", f"{PLUGINS[backend][0]}/src", env={"MYPYPATH": "src"})
    check(session, backend)


def check(session: nox.Session, backend: str, *options: str) -> None:
    """``chanconv check`` of one backend against the oracle, into build/matrix/<backend>.json
    for ``matrix_report``; a wrong result shows in the report, which then fails."""
    report = Path("build") / "matrix" / f"{backend}.json"
    report.unlink(missing_ok=True)  # a failed run must not leave an old report behind
    session.run(
        "python", "-m", "chanconv", "check", f"--backend={backend}", f"--json={report}",
        *options, success_codes=[0, 1],
        env={"TF_CPP_MIN_LOG_LEVEL": "2", **FLOAT64_ENV.get(backend, {})},
    )  # fmt: skip


@nox.session
@nox.parametrize("backend", BACKENDS, ids=BACKENDS)
def fuzz(session: nox.Session, backend: str) -> None:
    """The differential fuzz campaign (chanconv.testing.test_fuzz) at a large budget:
    ``CHANCONV_FUZZ_EXAMPLES`` examples per test (default 300), hypothesis's database in
    build/hypothesis/<backend>, so a failure found once is replayed first on every run."""
    install(session, backend, "test")
    database = Path("build") / "hypothesis" / backend
    env = {
        "CHANCONV_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2",
        "CHANCONV_FUZZ_EXAMPLES": os.environ.get("CHANCONV_FUZZ_EXAMPLES", "300"),
        "CHANCONV_FUZZ_DB": str(database.resolve()),
    }  # fmt: skip
    session.run(
        "pytest", "--pyargs", "chanconv.testing.test_fuzz", f"--backend={backend}",
        "--hypothesis-show-statistics", "-p", "no:cacheprovider", *session.posargs, env=env,
    )  # fmt: skip


@nox.session
@nox.parametrize("backend", BACKENDS, ids=BACKENDS)
def bench(session: nox.Session, backend: str) -> None:
    """Benchmarks (docs/performance.md): ``nox -s bench -- --quick`` for a smoke run."""
    # NumPy has no convolution of its own: its figures are ratios to torch's, in one run.
    install(session, backend, "plot", *(["torch"] if backend == "numpy" else []))
    session.run("python", "-m", "chanconv", "bench", f"--backend={backend}", *session.posargs)
    session.notify("bench_report")


@nox.session
def bench_report(session: nox.Session) -> None:
    """Merge build/bench/bench-*.json into build/bench/summary.md and summary.png."""
    session.install("-c", str(CONSTRAINTS / "numpy.txt"), ".[plot]")
    session.run("python", "-m", "chanconv", "bench-report", str(Path("build") / "bench"))


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


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site (docs/, mkdocs.yml), built with warnings as errors."""
    session.install("-c", str(CONSTRAINTS / "docs.txt"), ".[docs]")
    site = Path(session.create_tmp()) / "site"  # not in the working tree
    session.run("mkdocs", "build", "--strict", "--site-dir", str(site))


@nox.session
@nox.parametrize("backend", BACKENDS, ids=BACKENDS)
def matrix(session: nox.Session, backend: str) -> None:
    """Conformance check of one backend against the oracle, into build/matrix/<backend>.json
    (the tests sessions run the same check; this one installs no test tools).

    Then ``matrix_report`` merges the reports. Options go to the check:
    ``nox -s matrix -- --cases 1000``."""
    install(session, backend)
    check(session, backend, *session.posargs)
    session.notify("matrix_report")  # failures show in the report, which then fails


@nox.session
def matrix_report(session: nox.Session) -> None:
    """Merge build/matrix/*.json into build/matrix.md and build/matrix.html.

    Fails unless every backend has a report and passed."""
    session.install("-c", str(CONSTRAINTS / "numpy.txt"), ".")
    session.run(
        "python", "-m", "chanconv", "matrix-report", str(Path("build") / "matrix"),
        # Reports name backends canonically: array-api-strict is array_api_strict there.
        f"--expect={','.join(b.replace('-', '_') for b in BACKENDS)}",
    )  # fmt: skip
