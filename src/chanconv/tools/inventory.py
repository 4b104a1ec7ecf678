"""``python -m chanconv backends``: every backend chanconv knows, built-in or registered by
another package under the entry-point group ``chanconv.backends``, and what this Python
environment has of each: installed or not, the framework's version, the devices it can
compute on, where the adapter comes from, and the command that installs a missing one.

Whether a framework is installed is found without importing it; an installed framework is
imported to read its version and devices, and a failing import is shown, not raised.

The generic Array API adapter has a row of its own, ``array-api (any library with
__array_namespace__)``, and each library it has served in this process a row named after
its namespace, marked ``(array-api)``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TextIO

from chanconv.adapter import framework_installed
from chanconv.protocol import ArrayBackend, DeviceList
from chanconv.registry import (
    DISTRIBUTION,
    adapters,
    distribution,
    install_command,
    is_generic,
    origin,
)


@dataclass(frozen=True)
class BackendInfo:
    """One backend as this environment has it."""

    name: str
    aliases: tuple[str, ...]
    framework: str
    installed: bool
    #: the framework's version; None when it is missing or its import failed
    version: str | None
    #: None when missing, failed, or the adapter does not list devices
    devices: tuple[str, ...] | None
    #: where the adapter was loaded from: ``module:Class``
    origin: str
    #: the pip command that installs the backend and its framework
    install_command: str
    #: the distribution that registered the adapter ("chanconv" for the built-in ones;
    #: None for one added by ``chanconv.register``)
    distribution: str | None
    #: the import (or version/devices) error, as ``Type: message``
    error: str | None = None
    #: served by the generic Array API adapter (or, with ``name == "array-api"``, that
    #: adapter itself)
    generic: bool = False

    @property
    def label(self) -> str:
        """The name as the table shows it."""
        if not self.generic:
            return self.name
        return f"{self.name} ({self.framework})" if self.name == "array-api" else (
            f"{self.name} (array-api)"
        )  # fmt: skip

    @property
    def third_party(self) -> bool:
        return self.distribution != DISTRIBUTION


def is_installed(adapter: ArrayBackend) -> bool:
    """Whether the adapter's framework is imported or importable (without importing it)."""
    return adapter.framework in sys.modules or framework_installed(adapter.framework)


def describe(name: str) -> BackendInfo:
    """The ``BackendInfo`` of one backend (imports its framework if installed)."""
    adapter = adapters()[name]
    info = BackendInfo(
        name=adapter.name, aliases=tuple(adapter.aliases), framework=adapter.framework,
        installed=False, version=None, devices=None, origin=origin(adapter.name),
        install_command=install_command(adapter.name), distribution=distribution(adapter.name),
        generic=is_generic(adapter),
    )  # fmt: skip
    try:
        if not is_installed(adapter):
            return info
    except (ImportError, ValueError) as err:  # a broken parent package, a bad __spec__
        return replace(info, error=f"{type(err).__name__}: {err}")
    try:
        version = adapter.version()
        devices = tuple(adapter.devices()) if isinstance(adapter, DeviceList) else None
    except Exception as err:  # any failure of a third-party import must not end the listing
        return replace(info, installed=True, error=f"{type(err).__name__}: {err}")
    return replace(info, installed=True, version=version, devices=devices)


def generic_row() -> BackendInfo:
    """The generic Array API adapter: built in, needing nothing, serving any array whose type
    has ``__array_namespace__`` and no adapter of its own."""
    from chanconv.registry import GENERIC

    return BackendInfo(
        name="array-api", aliases=(), framework="any library with __array_namespace__",
        installed=True, version=None, devices=None, origin=GENERIC, install_command="",
        distribution=DISTRIBUTION, generic=True,
    )  # fmt: skip


def inventory() -> list[BackendInfo]:
    """Every known backend, built-in ones first, in registration order; then the generic
    Array API adapter and the libraries it has served."""
    rows = [describe(name) for name in list(adapters())]
    dedicated = [row for row in rows if not row.generic]
    return [*dedicated, generic_row(), *(row for row in rows if row.generic)]


def format_inventory(rows: Sequence[BackendInfo]) -> str:
    """A plain-text table, then one line per import error."""
    header = ("backend", "installed", "version", "devices", "adapter", "from", "install")
    table = [header]
    for row in rows:
        table.append((
            row.label,
            ("yes" if row.error is None else "yes, import failed") if row.installed else "no",
            row.version or "-",
            ", ".join(row.devices) if row.devices else "-",
            row.origin,
            f"{row.distribution or 'register()'} (third-party)" if row.third_party else "built-in",
            "" if row.installed else row.install_command,
        ))  # fmt: skip
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
             for line in table]  # fmt: skip
    lines.insert(1, "  ".join("-" * width for width in widths))
    errors = [f"{row.name}: {row.error}" for row in rows if row.error]
    if errors:
        lines += ["", "errors:", *(f"  {line}" for line in errors)]
    return "\n".join(lines)


def run(stream: TextIO | None = None) -> int:
    """Print the table; 0 unless a framework that is installed failed to import."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    rows = inventory()
    print(format_inventory(rows), file=stream or sys.stdout)
    return 1 if any(row.installed and row.error for row in rows) else 0
