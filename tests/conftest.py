"""The backend under test: ``pytest --backend NAME``, else ``$CHANCONV_BACKEND``, else numpy.
The nox matrix runs the same suite once per backend, each in its own virtualenv."""

from __future__ import annotations

import os

import pytest

import chanconv
from chanconv import registry


def pytest_addoption(parser):
    parser.addoption(
        "--backend",
        default=os.environ.get(registry.ENV_VAR) or registry.DEFAULT_BACKEND,
        help="chanconv backend to test: numpy, torch, tensorflow or mxnet (aliases too)",
    )


def pytest_report_header(config):
    name = registry.canonical_name(config.getoption("--backend"))
    adapter = registry.get_adapter(name)
    return f"chanconv backend: {name} ({adapter.framework} {adapter.version()})"


@pytest.fixture(scope="session")
def backend_name(request):
    return registry.canonical_name(request.config.getoption("--backend"))


@pytest.fixture(scope="session")
def adapter(backend_name):
    return registry.get_adapter(backend_name)


@pytest.fixture(scope="session", autouse=True)
def _select_backend(backend_name):
    # Lists and other non-tensors follow the backend under test.
    chanconv.set_backend(backend_name)
    yield
    chanconv.set_backend(None)
