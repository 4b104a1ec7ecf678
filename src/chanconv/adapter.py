"""What every adapter shares: lazy framework import, version, identity kind handling.

Subclassing is optional: a third-party adapter only has to satisfy
[`chanconv.protocol.ArrayBackend`][chanconv.protocol.ArrayBackend].
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any, ClassVar

from chanconv.protocol import Tensor


class Adapter:
    """Base for the built-in adapters. The framework is imported on first use, never before."""

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    framework: ClassVar[str]

    @property
    def fw(self) -> Any:
        """The framework's top-level module. Read from ``sys.modules`` rather than cached
        with a lock (``functools.cached_property`` takes an RLock, which ``torch.compile``
        cannot trace through on a cold first call)."""
        try:
            return sys.modules[self.framework]
        except KeyError:
            return importlib.import_module(self.framework)

    def version(self) -> str:
        return str(self.fw.__version__)

    def shape(self, x: Tensor) -> tuple[int, ...]:
        return tuple(int(d) for d in x.shape)

    def restore_kind(self, y: Tensor, like: Tensor) -> Tensor:
        return y

    def __repr__(self) -> str:
        return f"<chanconv backend {self.name!r}>"


def framework_installed(framework: str) -> bool:
    """Whether ``framework`` can be imported, without importing it."""
    return importlib.util.find_spec(framework) is not None
