"""Fixtures of chanconv's conformance suite, for ``conftest.py`` files to import: the backend
under test (``--backend``, see ``chanconv.testing.plugin``), its adapter, and the
selection of that backend for the whole session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import chanconv
from chanconv import registry
from chanconv.testing import frameworks
from chanconv.testing.plugin import WORST_ERROR, backend_under_test

__all__ = ["_select_backend", "adapter", "backend_name", "record_error"]


@pytest.fixture(scope="session")
def backend_name(request: pytest.FixtureRequest) -> str:
    return backend_under_test(request.config)


@pytest.fixture(scope="session")
def adapter(backend_name: str) -> Any:
    return registry.get_adapter(backend_name)


@pytest.fixture(scope="session", autouse=True)
def _select_backend(backend_name: str) -> Iterator[None]:
    # Lists and other non-tensors follow the backend under test.
    chanconv.set_backend(backend_name)
    # A plugin's conformance helpers may configure its framework: before any test runs.
    frameworks.plugin_helpers(backend_name)
    yield
    chanconv.set_backend(None)


@pytest.fixture
def record_error(request: pytest.FixtureRequest) -> Callable[[float], None]:
    """``record_error(e)``: note a relative error against the oracle; the item's JSON record
    keeps the worst."""

    def record(error: float) -> None:
        worst = getattr(request.node, WORST_ERROR, None)
        setattr(request.node, WORST_ERROR, float(error) if worst is None else max(worst, error))

    return record
